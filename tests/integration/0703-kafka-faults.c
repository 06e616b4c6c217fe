/*
 * 0703-kafka-faults: broker errors injected into the mock cluster.
 * - Produce requests failing with retriable errors (NOT_ENOUGH_REPLICAS,
 *   NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, disconnects) while four
 *   threads append: appends succeed (the idempotent producer retries) or
 *   fail, and every acknowledged event is in the topic exactly once, both
 *   in the log itself (kt_scan) and through a cursor. An injected error
 *   on a request while a later one of the same partition is in flight is
 *   what 0706 reproduces deterministically: the mock does not check
 *   sequences, so librdkafka's implicit acknowledgement would be a loss;
 *   knit fails such appends instead.
 *   KT_FILTER=test_produce_errors KT_DEBUG=1 KT_RDDEBUG=msg,eos,protocol
 *   KT_MOCKDEBUG=mock runs only this case with both debug logs, for the
 *   stress loop in docs/channels-kafka.md.
 * - Every broker down: appends fail with KN_UNAVAILABLE within a bounded
 *   time, later ones at once; the channel is unhealthy with a reason; once
 *   the brokers are back it recovers by itself, and nothing acknowledged
 *   is lost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kafkatest.h"

#define THREADS 4
#define PER_THREAD 150
#define TOTAL (THREADS * PER_THREAD)

static int setup(void **state)
{
    (void)state;
    kn_log_set_level(getenv("KT_DEBUG") ? KN_LOG_DEBUG : KN_LOG_ERROR);
    return 0;
}

typedef struct worker {
    kn_channel *ch;
    int id;
    unsigned char acked[PER_THREAD];
    uint64_t off[PER_THREAD]; /* offset in the delivery report */
    int ok, failed;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "w%d", w->id);
        ce_event *ev = tu_event(prefix, (unsigned)i, 30);
        int rc = tu_append(w->ch, &ev, 1, &w->off[i]);
        ce_event_unref(ev);
        w->acked[i] = rc == KN_OK;
        if (rc == KN_OK)
            w->ok++;
        else
            w->failed++;
    }
    return NULL;
}

/* Reads the whole topic with a fresh group; counts each event. */
static void read_all(kn_channel *ch, const char *group, unsigned *count,
                     size_t want)
{
    kn_err err = {0};
    kn_cursor *c = kt_cursor(ch, group, KN_SEEK_START, &err);
    assert_non_null(c);
    kn_record *r = calloc(want + 64, sizeof *r);
    size_t n = kt_read(c, r, want, 20000);
    n += kt_read(c, r + n, 64, 300); /* and nothing more */
    for (size_t i = 0; i < n; i++) {
        const char *id = ce_event_get(r[i].event, "id", NULL, NULL);
        int w, k;
        assert_int_equal(sscanf(id, "w%d-%d", &w, &k), 2);
        assert_true(w >= 0 && w < THREADS && k >= 0 && k < PER_THREAD);
        count[w * PER_THREAD + k]++;
    }
    tu_release(r, n);
    free(r);
    ch->ops->cursor_close(c);
}

/* kt_scan callback: counts each event id of this test. */
static void count_id(void *arg, const char *id, int32_t p, int64_t off)
{
    unsigned *count = arg;
    int w, k;
    (void)p;
    (void)off;
    if (sscanf(id, "w%d-%d", &w, &k) == 2 && w >= 0 && w < THREADS &&
        k >= 0 && k < PER_THREAD)
        count[w * PER_THREAD + k]++;
}

static void test_produce_errors(void **state)
{
    (void)state;
    kn_err err = {0};
    kt_mock_start(&g_mock);
    assert_int_equal(rd_kafka_mock_topic_create(g_mock.mc, kt_topic("flt"),
                                                4, 3), 0);
    const char *dbg = getenv("KT_RDDEBUG"); /* e.g. msg,eos,protocol */
    const char *kv[][2] = {{"kafka.message.timeout.ms", "5000"},
                           {"kafka.producer.debug", dbg ? dbg : ""}};
    kn_channel *ch = kt_open(&g_mock, "flt", kv, dbg && *dbg ? 2 : 1, &err);
    assert_non_null(ch);
    worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].ch = ch;
        w[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int round = 0; round < 5; round++) {
        rd_kafka_mock_push_request_errors(
            g_mock.mc, 0 /* Produce */, 6,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR__TRANSPORT,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
        struct pollfd none;
        poll(&none, 0, 60);
    }
    int ok = 0, failed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        failed += w[i].failed;
    }
    print_message("injected errors: %d appends acknowledged, %d failed\n",
                  ok, failed);
    assert_true(ok > 0);
    static unsigned count[TOTAL], raw[TOTAL];
    memset(raw, 0, sizeof raw);
    long held = kt_scan(&g_mock, kt_topic("flt"), 4, count_id, raw);
    print_message("the topic holds %ld records\n", held);
    assert_true(held >= ok);
    for (int i = 0; i < THREADS; i++) /* the log itself, without cursors */
        for (int k = 0; k < PER_THREAD; k++)
            if (w[i].acked[k] && raw[i * PER_THREAD + k] != 1)
                print_message("acked w%d-%d (reported offset %llu) is in "
                              "the topic %u time(s)\n", i, k,
                              (unsigned long long)w[i].off[k],
                              raw[i * PER_THREAD + k]);
    memset(count, 0, sizeof count);
    read_all(ch, "check-produce-errors", count, (size_t)ok);
    for (int i = 0; i < THREADS; i++) /* say which ones before failing */
        for (int k = 0; k < PER_THREAD; k++)
            if (w[i].acked[k] && count[i * PER_THREAD + k] != 1)
                print_message("acked w%d-%d (reported offset %llu) read "
                              "back %u time(s)\n", i, k,
                              (unsigned long long)w[i].off[k],
                              count[i * PER_THREAD + k]);
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < PER_THREAD; k++) {
            unsigned c = count[i * PER_THREAD + k];
            if (w[i].acked[k]) {
                assert_int_equal(raw[i * PER_THREAD + k], 1);
                assert_int_equal(c, 1); /* acked: stored once */
            } else {
                assert_true(c <= 1);
            }
        }
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_int_equal(st.appended_events, (uint64_t)ok);
    assert_int_equal(st.append_errors, (uint64_t)failed);
    kn_channel_close(ch);
    kt_mock_stop(&g_mock);
}

static bool wait_health(kn_channel *ch, bool want, int ms)
{
    kn_channel_stats st;
    int64_t end = kn_now_mono_ms() + ms;
    for (;;) {
        ch->ops->stats(ch, &st);
        if (st.healthy == want || kn_now_mono_ms() >= end)
            return st.healthy == want;
        struct pollfd none;
        poll(&none, 0, 50);
    }
}

static void test_all_brokers_down(void **state)
{
    (void)state;
    kn_err err = {0};
    kt_mock_start(&g_mock);
    assert_int_equal(rd_kafka_mock_topic_create(g_mock.mc, kt_topic("down"),
                                                4, 3), 0);
    kn_channel *ch = kt_open(&g_mock, "down", NULL, 0, &err);
    assert_non_null(ch);
    int acked = 0;
    unsigned char ok[PER_THREAD] = {0};
    for (; acked < 20; acked++) {
        ce_event *ev = tu_event("w0", (unsigned)acked, 10);
        assert_int_equal(tu_append(ch, &ev, 1, NULL), KN_OK);
        ok[acked] = 1;
        ce_event_unref(ev);
    }

    assert_int_equal(rd_kafka_mock_broker_set_down(g_mock.mc, -1), 0);
    int64_t t0 = kn_now_mono_ms(), first_fail = -1;
    int i = acked;
    while (first_fail < 0 && i < PER_THREAD) { /* bounded: 10 s timeout */
        ce_event *ev = tu_event("w0", (unsigned)i, 10);
        int rc = tu_append(ch, &ev, 1, NULL);
        ce_event_unref(ev);
        if (rc == KN_OK) {
            ok[i] = 1;
        } else {
            assert_int_equal(rc, KN_UNAVAILABLE);
            first_fail = kn_now_mono_ms() - t0;
        }
        i++;
    }
    assert_true(first_fail >= 0 && first_fail < 12000);
    /* the next ones fail at once */
    assert_true(wait_health(ch, false, 5000));
    int64_t t1 = kn_now_mono_ms();
    ce_event *ev = tu_event("w0", (unsigned)i++, 10);
    assert_int_equal(tu_append(ch, &ev, 1, NULL), KN_UNAVAILABLE);
    ce_event_unref(ev);
    assert_true(kn_now_mono_ms() - t1 < 1000);
    char why[256];
    print_message("all brokers down: first failure after %lld ms; reason: "
                  "%s\n", (long long)first_fail,
                  kn_channel_kafka_reason(ch, why, sizeof why));
    assert_true(why[0] != '\0');

    assert_int_equal(rd_kafka_mock_broker_set_up(g_mock.mc, -1), 0);
    int64_t t2 = kn_now_mono_ms();
    assert_true(wait_health(ch, true, 15000));
    print_message("recovered %lld ms after the brokers came back\n",
                  (long long)(kn_now_mono_ms() - t2));
    for (int j = 0; j < 10 && i < PER_THREAD; j++, i++) {
        ev = tu_event("w0", (unsigned)i, 10);
        assert_int_equal(tu_append(ch, &ev, 1, NULL), KN_OK);
        ok[i] = 1;
        ce_event_unref(ev);
    }
    static unsigned count[TOTAL];
    int nok = 0;
    for (int k = 0; k < PER_THREAD; k++)
        nok += ok[k];
    read_all(ch, "check-down", count, (size_t)nok);
    for (int k = 0; k < PER_THREAD; k++)
        if (ok[k])
            assert_int_equal(count[k], 1);
    kn_channel_close(ch);
    kt_mock_stop(&g_mock);
}

int main(void)
{
    if (getenv("KT_FILTER")) /* e.g. test_produce_errors, for loops */
        cmocka_set_test_filter(getenv("KT_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_produce_errors),
        cmocka_unit_test(test_all_brokers_down),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
