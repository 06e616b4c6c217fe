/*
 * 0706-kafka-implicit-ack: the way acknowledged events went missing in
 * 0703, made deterministic.
 *
 * Request R1 (event A) to a partition's leader fails with an injected
 * error whose response is delayed 300 ms; R2 (event B, same partition) is
 * sent while R1 is in flight and succeeds. A real broker would refuse R2
 * (its sequence does not follow the last stored one); librdkafka's mock
 * cluster does not check sequences for a producer without
 * transactional.id and stores B. librdkafka then "implicitly acks" A —
 * success, no offset — although A is not in the log (and never retried).
 *
 * For each error kind: B is acknowledged and stored; A is acknowledged
 * only if the topic holds it, and here (where the mock dropped it) its
 * append fails, so the client retries it. Checked on the log itself
 * (kt_scan), not through knit's cursors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kafkatest.h"

#define LEADER 1
#define KINDS 4

static const rd_kafka_resp_err_t kinds[KINDS] = {
    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
};

/* Records in the topic by id: "w-0" (warm-up), "a-<k>", "b-<k>". */
typedef struct seen {
    int w, a[KINDS], b[KINDS], other;
} seen;

static void count_id(void *arg, const char *id, int32_t p, int64_t off)
{
    seen *s = arg;
    char c;
    int k;
    (void)p;
    (void)off;
    if (strcmp(id, "w-0") == 0)
        s->w++;
    else if (sscanf(id, "%c-%d", &c, &k) == 2 && (c == 'a' || c == 'b') &&
             k >= 0 && k < KINDS)
        (c == 'a' ? s->a : s->b)[k]++;
    else
        s->other++;
}

/* Waits until the leader has taken the first injected error (R1 is at
 * the mock); false after 5 s. */
static bool r1_received(void)
{
    int64_t end = kn_now_mono_ms() + 5000;
    while (kn_now_mono_ms() < end) {
        size_t cnt = 0;
        rd_kafka_mock_broker_error_stack_cnt(g_mock.mc, LEADER, 0, &cnt);
        if (cnt < 2)
            return true;
        tu_sleep_ms(1);
    }
    return false;
}

/* R1 = append of a-<k> fails with kinds[k] (after 300 ms), R2 = append
 * of b-<k> is sent meanwhile and succeeds. Statuses into sa, sb. */
static void one_case(kn_channel *ch, int k, int *sa, int *sb)
{
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                         g_mock.mc, LEADER, 0 /* Produce */, 2, kinds[k],
                         300, RD_KAFKA_RESP_ERR_NO_ERROR, 0), 0);
    tu_wait wa, wb;
    tu_wait_init(&wa);
    tu_wait_init(&wb);
    ce_event *a = tu_event("a", (unsigned)k, 10);
    ce_event *b = tu_event("b", (unsigned)k, 10);
    assert_int_equal(kn_channel_append(ch, &a, 1, tu_wait_cb, &wa), KN_OK);
    assert_true(r1_received());
    assert_int_equal(kn_channel_append(ch, &b, 1, tu_wait_cb, &wb), KN_OK);
    assert_int_equal(tu_wait_for(&wa, 1, 30000), 1);
    assert_int_equal(tu_wait_for(&wb, 1, 30000), 1);
    ce_event_unref(a);
    ce_event_unref(b);
    *sa = wa.status;
    *sb = wb.status;
}

static void test_error_on_first_of_two_in_flight(void **state)
{
    (void)state;
    kn_err err = {0};
    assert_int_equal(rd_kafka_mock_topic_create(g_mock.mc, kt_topic("iack"),
                                                1, 3), 0);
    assert_int_equal(rd_kafka_mock_partition_set_leader(
                         g_mock.mc, kt_topic("iack"), 0, LEADER), 0);
    /* one request per append: no linger */
    const char *kv[][2] = {{"kafka.producer.linger.ms", "0"}};
    kn_channel *ch = kt_open(&g_mock, "iack", kv, 1, &err);
    assert_non_null(ch);
    ce_event *w = tu_event("w", 0, 10); /* producer id, connection */
    assert_int_equal(tu_append(ch, &w, 1, NULL), KN_OK);
    ce_event_unref(w);

    int sa[KINDS], sb[KINDS];
    for (int k = 0; k < KINDS; k++)
        one_case(ch, k, &sa[k], &sb[k]);

    seen s = {0};
    long n = kt_scan(&g_mock, kt_topic("iack"), 1, count_id, &s);
    assert_true(n >= 0);
    for (int k = 0; k < KINDS; k++)
        print_message("%s on R1: A %s, B %s; in the topic: A %d, B %d\n",
                      rd_kafka_err2name(kinds[k]),
                      sa[k] == KN_OK ? "acknowledged" : "failed",
                      sb[k] == KN_OK ? "acknowledged" : "failed", s.a[k],
                      s.b[k]);
    assert_int_equal(s.w, 1);
    assert_int_equal(s.other, 0);
    for (int k = 0; k < KINDS; k++) {
        assert_int_equal(sb[k], KN_OK);
        assert_int_equal(s.b[k], 1);
        if (sa[k] == KN_OK)
            assert_int_equal(s.a[k], 1); /* acknowledged: stored */
        else
            assert_int_equal(sa[k], KN_UNAVAILABLE);
        assert_true(s.a[k] <= 1);
    }
    kn_channel_close(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_on_first_of_two_in_flight),
    };
    return cmocka_run_group_tests(tests, kt_group_setup, kt_group_teardown);
}
