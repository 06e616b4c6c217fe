/*
 * 0910-nats-disconnect-publish: regression test for a crash of the NATS
 * channel, and so of `knit serve` with a NATS broker, when the server
 * dies while appends are being published. The disconnect handler took
 * cnats's list of publishes awaiting their PubAck and freed those
 * messages while another thread was still inside js_PublishMsgAsync with
 * one of them (a use-after-free in natsConn_publish; under ASan the
 * process died at once, and cmocka's signal handler hid the report).
 *
 * Several threads append batches without pause while the server is killed
 * (SIGKILL) and restarted a few times on the same port and store. The
 * process must survive; every append call must complete exactly once;
 * appends must succeed again after each restart; the stream must hold at
 * least every acknowledged event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>

#include <cmocka.h>

#include "channels/nats/nats_int.h"
#include "nats_test.h"

enum {
    NPROD = 4,          /* appending threads */
    BATCH = 4,          /* events per append call */
    MAXCALLS = 40000,   /* append calls per thread at most */
    INFLIGHT = 64,      /* calls in flight per thread */
    CYCLES = 6          /* kill + restart rounds */
};

static const char *g_kv[][2] = {{"publish-timeout", "PT2S"},
                                {"api-timeout", "1000"},
                                {"reconnect-wait-max", "PT0.2S"}};

typedef struct call {
    struct prod *p;
    atomic_int done;          /* completions seen (must end at 1) */
} call;

typedef struct prod {
    kn_channel *ch;
    char prefix[80];
    pthread_t thr;
    atomic_int stop;
    atomic_int inflight;
    atomic_uint started, refused, acked, failed, twice;
    call calls[MAXCALLS];
} prod;

static void prod_cb(void *arg, int status, uint64_t first)
{
    call *c = arg;
    prod *p = c->p;
    (void)first;
    if (atomic_fetch_add(&c->done, 1) != 0) {
        atomic_fetch_add(&p->twice, 1);
        return;
    }
    atomic_fetch_add(status == KN_OK ? &p->acked : &p->failed, 1);
    atomic_fetch_sub(&p->inflight, 1);
}

/* Appends calls of BATCH events until told to stop; a refused call is
 * retried at once with new events (keeps publishers busy at the moment
 * the connection drops). */
static void *prod_main(void *arg)
{
    prod *p = arg;
    unsigned next_event = 0;
    while (!atomic_load(&p->stop)) {
        unsigned i = atomic_load(&p->started);
        if (i >= MAXCALLS)
            break;
        if (atomic_load(&p->inflight) >= INFLIGHT) {
            tu_sleep_ms(1);
            continue;
        }
        ce_event *evs[BATCH];
        for (int k = 0; k < BATCH; k++)
            evs[k] = tu_event(p->prefix, next_event++, 0);
        call *c = &p->calls[i];
        c->p = p;
        atomic_store(&p->started, i + 1);
        atomic_fetch_add(&p->inflight, 1);
        int rc = kn_channel_append(p->ch, evs, BATCH, prod_cb, c);
        for (int k = 0; k < BATCH; k++)
            ce_event_unref(evs[k]);
        if (rc != KN_OK) {
            /* refused: no callback may come; count it done ourselves */
            if (atomic_fetch_add(&c->done, 1) != 0)
                atomic_fetch_add(&p->twice, 1);
            atomic_fetch_sub(&p->inflight, 1);
            atomic_fetch_add(&p->refused, 1);
            if (rc != KN_UNAVAILABLE)
                fprintf(stderr, "append: %s\n", kn_status_str(rc));
            tu_sleep_ms(2); /* a producer backing off */
        }
    }
    return NULL;
}

static unsigned total(prod **ps, size_t field)
{
    unsigned n = 0;
    for (int i = 0; i < NPROD; i++)
        n += atomic_load((atomic_uint *)((char *)ps[i] + field));
    return n;
}

#define TOTAL(ps, f) total(ps, offsetof(prod, f))

static int wait_acked(prod **ps, unsigned n, int timeout_ms)
{
    int64_t end = tu_now_ms() + timeout_ms;
    while (TOTAL(ps, acked) < n && tu_now_ms() < end)
        tu_sleep_ms(5);
    return TOTAL(ps, acked) >= n;
}

/* Number of messages in broker default/<broker>'s stream (from a
 * separate connection); 0 when it cannot be read. */
static uint64_t stream_msgs(const char *broker)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    char *name = NULL;
    uint64_t n = 0;
    if (kn_nats_stream_name("default", broker, &name) != KN_OK ||
        nt_raw(nt_srv.url, &nc, &js) != 0) {
        free(name);
        return 0;
    }
    if (js_GetStreamInfo(&si, js, name, NULL, NULL) == NATS_OK)
        n = si->State.Msgs;
    else
        fprintf(stderr, "no stream info for %s\n", name);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(name);
    return n;
}

static void test_kill_while_publishing(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "dcpub");
    kn_channel *ch = nt_open_at(nt_srv.url, b, g_kv, 3);
    prod *ps[NPROD];
    kn_channel_stats st;

    for (int i = 0; i < NPROD; i++) {
        ps[i] = calloc(1, sizeof *ps[i]);
        assert_non_null(ps[i]);
        ps[i]->ch = ch;
        snprintf(ps[i]->prefix, sizeof ps[i]->prefix, "%s-t%d", b, i);
        assert_int_equal(pthread_create(&ps[i]->thr, NULL, prod_main,
                                        ps[i]), 0);
    }
    assert_true(wait_acked(ps, 100, 20000));

    for (int cycle = 0; cycle < CYCLES; cycle++) {
        /* the server dies while every thread is publishing */
        nt_stop(&nt_srv, 1);
        int64_t t0 = tu_now_ms();
        int unhealthy = 0;
        while (!unhealthy && tu_now_ms() - t0 < 3000) {
            ch->ops->stats(ch, &st);
            unhealthy = !st.healthy;
            tu_sleep_ms(10);
        }
        assert_true(unhealthy);
        unsigned refused = TOTAL(ps, refused);
        tu_sleep_ms(100);
        assert_true(TOTAL(ps, refused) > refused); /* fails fast */
        assert_int_equal(nt_restart(&nt_srv), 0);
        unsigned acked = TOTAL(ps, acked);
        assert_true(wait_acked(ps, acked + 100, 20000));
    }

    for (int i = 0; i < NPROD; i++) {
        atomic_store(&ps[i]->stop, 1);
        pthread_join(ps[i]->thr, NULL);
    }
    /* every call completes exactly once, within the publish timeout */
    int64_t end = tu_now_ms() + 15000;
    unsigned inflight = 1;
    while (tu_now_ms() < end) {
        inflight = 0;
        for (int i = 0; i < NPROD; i++)
            inflight += (unsigned)atomic_load(&ps[i]->inflight);
        if (!inflight)
            break;
        tu_sleep_ms(10);
    }
    unsigned started = TOTAL(ps, started), acked = TOTAL(ps, acked);
    unsigned failed = TOTAL(ps, failed), refused = TOTAL(ps, refused);
    fprintf(stderr, "%d kills: %u append calls of %d events, %u acked, "
            "%u failed, %u refused, %u completed twice\n", CYCLES, started,
            BATCH, acked, failed, refused, TOTAL(ps, twice));
    assert_int_equal(inflight, 0);
    assert_int_equal(TOTAL(ps, twice), 0);
    assert_int_equal(acked + failed + refused, started);
    for (int i = 0; i < NPROD; i++)
        for (unsigned k = 0; k < atomic_load(&ps[i]->started); k++)
            assert_int_equal(atomic_load(&ps[i]->calls[k].done), 1);
    ch->ops->stats(ch, &st);
    assert_true(st.healthy);
    assert_true(stream_msgs(b) >= (uint64_t)acked * BATCH);

    kn_channel_close(ch);
    for (int i = 0; i < NPROD; i++)
        free(ps[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_while_publishing),
    };
    return cmocka_run_group_tests(tests, nt_group_setup_own, nt_group_teardown);
}
