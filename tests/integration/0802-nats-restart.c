/*
 * 0802-nats-restart: the NATS channel when the server goes away. The
 * server is killed (SIGKILL) mid-stream and restarted on the same port
 * with the same store: while it is down appends fail fast with
 * KN_UNAVAILABLE and stats say unhealthy; they succeed again on their own
 * once it is back; every acknowledged event is in the stream and reaches
 * the cursor that was open across the restart. Also: a channel and a
 * cursor opened while the server is not up yet start working when it
 * comes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "nats_test.h"

static const char *g_kv[][2] = {{"publish-timeout", "PT2S"},
                                {"api-timeout", "1000"},
                                {"reconnect-wait-max", "PT0.2S"},
                                {"fetch-expires", "PT1S"}};

/* ------------------------------------------------ concurrent producer */

enum { MAXEV = 20000, INFLIGHT = 64 };

typedef struct producer {
    kn_channel *ch;
    const char *prefix;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    unsigned next;            /* events started */
    int inflight;
    unsigned acked, failed, refused, unavailable;
    uint8_t state[MAXEV];     /* 0 none, 1 in flight, 2 acked, 3 failed */
} producer;

typedef struct pctx {
    producer *p;
    unsigned i;
} pctx;

static void prod_cb(void *arg, int status, uint64_t first)
{
    pctx *x = arg;
    producer *p = x->p;
    (void)first;
    pthread_mutex_lock(&p->mu);
    p->state[x->i] = status == KN_OK ? 2 : 3;
    if (status == KN_OK)
        p->acked++;
    else
        p->failed++;
    p->inflight--;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    free(x);
}

static void *prod_main(void *arg)
{
    producer *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->next < MAXEV) {
        if (p->inflight >= INFLIGHT) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        unsigned i = p->next++;
        pctx *x = malloc(sizeof *x);
        x->p = p;
        x->i = i;
        p->state[i] = 1;
        p->inflight++;
        pthread_mutex_unlock(&p->mu);
        ce_event *ev = tu_event(p->prefix, i, 0);
        int rc = kn_channel_append(p->ch, &ev, 1, prod_cb, x);
        ce_event_unref(ev);
        pthread_mutex_lock(&p->mu);
        if (rc != KN_OK) {
            p->state[i] = 3;
            p->inflight--;
            p->refused++;
            if (rc == KN_UNAVAILABLE)
                p->unavailable++;
            free(x);
            pthread_mutex_unlock(&p->mu);
            tu_sleep_ms(2); /* a producer backing off */
            pthread_mutex_lock(&p->mu);
        }
    }
    while (p->inflight > 0)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static unsigned acked_now(producer *p)
{
    pthread_mutex_lock(&p->mu);
    unsigned a = p->acked;
    pthread_mutex_unlock(&p->mu);
    return a;
}

static int wait_acked(producer *p, unsigned n, int timeout_ms)
{
    int64_t end = tu_now_ms() + timeout_ms;
    while (acked_now(p) < n && tu_now_ms() < end)
        tu_sleep_ms(5);
    return acked_now(p) >= n;
}

/* Index of a test event from its id "<prefix>-<i>". */
static long event_index(const ce_event *ev, const char *prefix)
{
    const char *id = ce_event_get(ev, "id", NULL, NULL);
    size_t n = strlen(prefix);
    if (!id || strncmp(id, prefix, n) != 0 || id[n] != '-')
        return -1;
    return strtol(id + n + 1, NULL, 10);
}

/* Reads from c until every acked event was seen (or timeout); commits
 * as it goes. Returns how many acked events were never seen. */
static unsigned read_all_acked(kn_cursor *c, producer *p, uint8_t *seen,
                               unsigned *extra, int timeout_ms)
{
    kn_record recs[256];
    int64_t end = tu_now_ms() + timeout_ms;
    unsigned missing = 0;
    for (;;) {
        missing = 0;
        for (unsigned i = 0; i < p->next; i++)
            if (p->state[i] == 2 && !seen[i])
                missing++;
        if (!missing || tu_now_ms() >= end)
            break;
        size_t n = tu_read(c, recs, 256, 200);
        uint64_t top = 0;
        for (size_t i = 0; i < n; i++) {
            long k = event_index(recs[i].event, p->prefix);
            assert_true(k >= 0 && k < MAXEV);
            if (p->state[k] != 2 && !seen[k])
                (*extra)++; /* stored although its append failed */
            seen[k] = 1;
            if (recs[i].offset + 1 > top)
                top = recs[i].offset + 1;
        }
        tu_release(recs, n);
        if (n)
            c->channel->ops->cursor_commit(c, 0, top);
    }
    return missing;
}

static void test_restart_mid_stream(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "restart");
    kn_channel *ch = nt_open_at(nt_srv.url, b, g_kv, 4);
    kn_seek start = {KN_SEEK_START, 0, 0};
    kn_cursor *c = NULL;
    kn_err err = {0};
    assert_int_equal(ch->ops->cursor_open(ch, "live", &start, NULL, &c, &err),
                     KN_OK);
    producer *p = calloc(1, sizeof *p);
    uint8_t *seen = calloc(MAXEV, 1);
    unsigned extra = 0;
    kn_channel_stats st;

    p->ch = ch;
    p->prefix = b;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    assert_int_equal(pthread_create(&p->thr, NULL, prod_main, p), 0);
    assert_true(wait_acked(p, 500, 20000));

    /* the server dies with appends in flight */
    nt_stop(&nt_srv, 1);
    unsigned acked_at_kill = acked_now(p);
    int64_t t_down = tu_now_ms();
    int unhealthy = 0;
    while (tu_now_ms() - t_down < 1500) {
        ch->ops->stats(ch, &st);
        if (!st.healthy)
            unhealthy = 1;
        tu_sleep_ms(20);
    }
    assert_true(unhealthy);
    pthread_mutex_lock(&p->mu);
    unsigned refused = p->refused, unavailable = p->unavailable;
    unsigned acked_down = p->acked;
    pthread_mutex_unlock(&p->mu);
    /* fail fast: the producer was refused many times, not blocked */
    assert_true(refused > 10);
    assert_true(unavailable == refused);
    assert_true(acked_down - acked_at_kill < INFLIGHT + 1);

    /* back on the same port and store: appends recover on their own */
    assert_int_equal(nt_restart(&nt_srv), 0);
    int64_t t_up = tu_now_ms();
    assert_true(wait_acked(p, acked_down + 500, 20000));
    fprintf(stderr, "restart: %u acked before the kill, %u refused while "
            "down, appends recovered %lld ms after the restart\n",
            acked_at_kill, refused, (long long)(tu_now_ms() - t_up));
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thr, NULL);
    ch->ops->stats(ch, &st);
    assert_true(st.healthy);

    /* the cursor open across the restart gets every acked event */
    unsigned missing = read_all_acked(c, p, seen, &extra, 20000);
    fprintf(stderr, "restart: %u events acked, %u failed, %u missing, "
            "%u stored although their append failed\n", p->acked,
            p->failed + p->refused, missing, extra);
    assert_int_equal(missing, 0);
    ch->ops->cursor_close(c);

    /* and so does a new cursor reading the stream from the start */
    memset(seen, 0, MAXEV);
    extra = 0;
    assert_int_equal(ch->ops->cursor_open(ch, "audit", &start, NULL, &c, &err),
                     KN_OK);
    assert_int_equal(read_all_acked(c, p, seen, &extra, 20000), 0);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
    free(seen);
    free(p);
}

/* Channel and cursor opened before the server exists. */
static void test_open_before_server(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    nt_server late = {0};
    char b[64];
    kn_channel_stats st;
    nt_broker(b, sizeof b, "late");
    snprintf(late.dir, sizeof late.dir, "/tmp/knit-nats-XXXXXX");
    assert_non_null(mkdtemp(late.dir));
    late.port = tu_free_port();
    snprintf(late.url, sizeof late.url, "nats://127.0.0.1:%d", late.port);

    kn_channel *ch = nt_open_at(late.url, b, g_kv, 4);
    ch->ops->stats(ch, &st);
    assert_false(st.healthy);
    ce_event *ev = tu_event(b, 1, 0);
    int64_t t0 = tu_now_ms();
    assert_int_equal(kn_channel_append(ch, &ev, 1, tu_wait_cb, NULL),
                     KN_UNAVAILABLE);
    assert_true(tu_now_ms() - t0 < 100);
    kn_seek start = {KN_SEEK_START, 0, 0};
    kn_cursor *c = NULL;
    kn_err err = {0};
    assert_int_equal(ch->ops->cursor_open(ch, "early", &start, NULL, &c, &err),
                     KN_OK);

    assert_int_equal(nt_restart(&late), 0);
    int rc = KN_UNAVAILABLE;
    int64_t end = tu_now_ms() + 20000;
    uint64_t first = 0;
    while (rc != KN_OK && tu_now_ms() < end) {
        rc = tu_append(ch, &ev, 1, &first);
        if (rc != KN_OK)
            tu_sleep_ms(20);
    }
    assert_int_equal(rc, KN_OK);
    assert_int_equal(first, 1);
    kn_record r;
    assert_int_equal(tu_read(c, &r, 1, 10000), 1);
    assert_int_equal(r.offset, 1);
    assert_true(nt_same_event(r.event, ev));
    tu_release(&r, 1);
    ch->ops->stats(ch, &st);
    assert_true(st.healthy);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
    ce_event_unref(ev);
    nt_cleanup(&late);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_mid_stream),
        cmocka_unit_test(test_open_before_server),
    };
    return cmocka_run_group_tests(tests, nt_group_setup_own, nt_group_teardown);
}
