/*
 * 0804-nats-pubacks: the PubAck side of NATS appends against a real
 * nats-server. Several appends in flight (each of several events) get
 * their own, increasing stream sequences; a retried event id is
 * deduplicated by JetStream and its append completes with the first
 * one's sequence; an append to a stream deleted behind the channel's
 * back fails (no responders), the channel re-creates the stream and the
 * next append succeeds; an append whose PubAck does not come (the server
 * is frozen with SIGSTOP) fails with KN_TIMEOUT after publish-timeout;
 * closing the channel completes every append in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "channels/nats/nats_int.h"
#include "nats_test.h"

#define CALLS 40
#define PER 5

typedef struct done_t {
    pthread_mutex_t mu;
    int n, status[CALLS];
    uint64_t first[CALLS];
} done_t;

typedef struct call_t {
    done_t *d;
    int i;
} call_t;

static void on_done(void *arg, int status, uint64_t first)
{
    call_t *c = arg;
    pthread_mutex_lock(&c->d->mu);
    c->d->status[c->i] = status;
    c->d->first[c->i] = first;
    c->d->n++;
    pthread_mutex_unlock(&c->d->mu);
}

static int wait_n(done_t *d, int n, int timeout_ms)
{
    int64_t end = tu_now_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        int got = d->n;
        pthread_mutex_unlock(&d->mu);
        if (got >= n || tu_now_ms() > end)
            return got;
        tu_sleep_ms(5);
    }
}

static void test_in_flight_and_dedup(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "acks");
    kn_channel *ch = nt_open_ch(b, NULL, 0);
    done_t d = {.mu = PTHREAD_MUTEX_INITIALIZER};
    call_t calls[CALLS];
    ce_event *evs[CALLS][PER];

    for (int i = 0; i < CALLS; i++) {
        for (int k = 0; k < PER; k++)
            evs[i][k] = tu_event(b, (unsigned)(i * PER + k), 0);
        calls[i] = (call_t){&d, i};
        assert_int_equal(kn_channel_append(ch, evs[i], PER, on_done,
                                           &calls[i]), KN_OK);
    }
    assert_int_equal(wait_n(&d, CALLS, 10000), CALLS);
    /* every call stored; calls went out in order, so their first
     * sequences grow, PER apart */
    for (int i = 0; i < CALLS; i++) {
        assert_int_equal(d.status[i], KN_OK);
        assert_int_equal(d.first[i], 1 + (uint64_t)i * PER);
    }
    /* the same id again: deduplicated, same sequence */
    uint64_t first = 0;
    assert_int_equal(tu_append(ch, &evs[7][0], 1, &first), KN_OK);
    assert_int_equal(first, 1 + 7 * PER);
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_int_equal(st.head_offset, 1 + CALLS * PER);
    assert_int_equal(st.appended_events, CALLS * PER + 1);
    for (int i = 0; i < CALLS; i++)
        for (int k = 0; k < PER; k++)
            ce_event_unref(evs[i][k]);
    kn_channel_close(ch);
}

static void test_stream_deleted(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64], *sname = NULL;
    nt_broker(b, sizeof b, "gone");
    kn_channel *ch = nt_open_ch(b, NULL, 0);
    ce_event *ev = tu_event(b, 1, 0);
    assert_int_equal(tu_append(ch, &ev, 1, NULL), KN_OK);

    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(nt_raw(nt_srv.url, &nc, &js), 0);
    assert_int_equal(kn_nats_stream_name("default", b, &sname), KN_OK);
    assert_int_equal(js_DeleteStream(js, sname, NULL, NULL), NATS_OK);

    /* the first append after the delete fails (or, if the channel
     * noticed already, succeeds on the re-created stream); appends
     * succeed again within seconds */
    int rc = tu_append(ch, &ev, 1, NULL);
    assert_true(rc == KN_OK || rc == KN_UNAVAILABLE || rc == KN_NOTFOUND);
    int64_t end = tu_now_ms() + 10000;
    unsigned i = 2;
    while ((rc = tu_append(ch, &ev, 1, NULL)) != KN_OK &&
           tu_now_ms() < end) {
        ce_event_unref(ev);
        ev = tu_event(b, i++, 0);
        tu_sleep_ms(50);
    }
    assert_int_equal(rc, KN_OK);
    jsStreamInfo *si = NULL;
    assert_int_equal(js_GetStreamInfo(&si, js, sname, NULL, NULL), NATS_OK);
    assert_true(si->State.Msgs >= 1);
    jsStreamInfo_Destroy(si);
    ce_event_unref(ev);
    free(sname);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    kn_channel_close(ch);
}

static void test_timeout_and_close(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    if (nt_srv.external)
        skip(); /* cannot freeze a server we did not start */
    char b[64];
    nt_broker(b, sizeof b, "frozen");
    const char *kv[][2] = {{"publish-timeout", "300"}};
    kn_channel *ch = nt_open_ch(b, kv, 1);
    ce_event *ev = tu_event(b, 1, 0);
    assert_int_equal(tu_append(ch, &ev, 1, NULL), KN_OK);

    done_t d = {.mu = PTHREAD_MUTEX_INITIALIZER};
    call_t c0 = {&d, 0}, c1 = {&d, 1};
    kill(nt_srv.pid, SIGSTOP);
    int64_t t0 = tu_now_ms();
    ce_event *ev2 = tu_event(b, 2, 0), *ev3 = tu_event(b, 3, 0);
    int rc2 = kn_channel_append(ch, &ev2, 1, on_done, &c0);
    int got = rc2 == KN_OK ? wait_n(&d, 1, 5000) : 0;
    int64_t took = tu_now_ms() - t0;
    /* one more in flight, then close: it completes (not lost) */
    int rc3 = kn_channel_append(ch, &ev3, 1, on_done, &c1);
    kill(nt_srv.pid, SIGCONT); /* before any assertion can fail */
    kn_channel_close(ch);
    assert_int_equal(rc2, KN_OK);
    assert_int_equal(got, 1);
    assert_int_equal(d.status[0], KN_TIMEOUT);
    assert_true(took >= 250);
    if (rc3 == KN_OK)
        assert_int_equal(wait_n(&d, 2, 1000), 2);
    ce_event_unref(ev);
    ce_event_unref(ev2);
    ce_event_unref(ev3);
}

int main(void)
{
    kn_log_init(KN_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_flight_and_dedup),
        cmocka_unit_test(test_stream_deleted),
        cmocka_unit_test(test_timeout_and_close),
    };
    return cmocka_run_group_tests(tests, nt_group_setup, nt_group_teardown);
}
