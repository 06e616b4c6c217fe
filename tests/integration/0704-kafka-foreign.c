/*
 * 0704-kafka-foreign: records in a broker's topic that knit did not write.
 * Records that are not CloudEvents (plain values, ce_ headers missing a
 * required attribute, a structured value that is not JSON) are skipped,
 * counted in the channel stats and their offsets count as done: a commit
 * covering every event before them moves past them, and with nothing
 * handed out the cursor commits past them by itself. A structured-mode
 * record from another producer is read as an event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kafkatest.h"

#define GID "knative-trigger-default-foreign"

/* Produces one raw record (headers as name/value pairs, NULL-ended). */
static void raw(rd_kafka_t *p, const char *value, const char *const *hdrs)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    for (; hdrs && hdrs[0]; hdrs += 2)
        rd_kafka_header_add(h, hdrs[0], -1, hdrs[1], -1);
    assert_int_equal(rd_kafka_producev(
                         p, RD_KAFKA_V_TOPIC(kt_topic("foreign")),
                         RD_KAFKA_V_PARTITION(0),
                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                         RD_KAFKA_V_VALUE((void *)(uintptr_t)value,
                                          value ? strlen(value) : 0),
                         RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(p, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void knit_event(kn_channel *ch, unsigned i)
{
    ce_event *ev = tu_event("k", i, 0);
    assert_int_equal(tu_append(ch, &ev, 1, NULL), KN_OK);
    ce_event_unref(ev);
}

static int64_t wait_committed(int64_t want, int ms)
{
    int64_t end = kn_now_mono_ms() + ms, got;
    do {
        got = kt_committed(&g_mock, GID, kt_topic("foreign"), 0);
    } while (got != want && kn_now_mono_ms() < end);
    return got;
}

static void test_foreign_records(void **state)
{
    (void)state;
    kn_err err = {0};
    assert_int_equal(rd_kafka_mock_topic_create(
                         g_mock.mc, kt_topic("foreign"), 1, 3), 0);
    kn_channel *ch = kt_open(&g_mock, "foreign", NULL, 0, &err);
    assert_non_null(ch);
    const kn_channel_ops *ops = ch->ops;
    kn_cursor *c = kt_cursor(ch, "trigger.default.foreign",
                             KN_SEEK_COMMITTED, &err);
    assert_non_null(c);
    rd_kafka_t *p = kt_producer(&g_mock);
    static const char *const no_id[] = {
        "ce_specversion", "1.0", "ce_source", "/x", "ce_type", "t", NULL};
    static const char *const bad_json[] = {
        "content-type", "application/cloudevents+json", NULL};
    static const char *const structured[] = {
        "content-type", "application/cloudevents+json", NULL};

    knit_event(ch, 0);                             /* offset 0 */
    raw(p, "hello", NULL);                         /* 1: plain value */
    knit_event(ch, 1);                             /* 2 */
    raw(p, "{}", no_id);                           /* 3: no ce_id */
    raw(p, "{not json", bad_json);                 /* 4: bad JSON */
    raw(p, "{\"specversion\":\"1.0\",\"id\":\"s1\",\"source\":\"/o\","
           "\"type\":\"t\",\"data\":{\"x\":1}}", structured); /* 5 */
    raw(p, NULL, NULL);                            /* 6: null value */

    kn_record r[8];
    size_t n = kt_read(c, r, 3, 15000);
    assert_int_equal(n, 3);
    n += kt_read(c, r + n, 5, 300);
    assert_int_equal(n, 3);
    assert_string_equal(ce_event_get(r[0].event, "id", NULL, NULL), "k-0");
    assert_int_equal(r[0].offset, 0);
    assert_string_equal(ce_event_get(r[1].event, "id", NULL, NULL), "k-1");
    assert_int_equal(r[1].offset, 2);
    assert_string_equal(ce_event_get(r[2].event, "id", NULL, NULL), "s1");
    assert_int_equal(r[2].offset, 5);
    size_t dl;
    const char *d = ce_event_data(r[2].event, &dl);
    assert_int_equal(dl, 7);
    assert_memory_equal(d, "{\"x\":1}", 7);
    kn_channel_stats st;
    ops->stats(ch, &st);
    assert_int_equal(st.skipped_records, 4);

    /* Done with everything handed out: the commit covers offset 6 too. */
    assert_int_equal(ops->cursor_commit(c, 0, 3), KN_OK);
    assert_int_equal(ops->cursor_commit(c, 0, 6), KN_OK);
    assert_int_equal(kt_idle(c, 200), 0); /* serves the commit result */
    assert_int_equal(wait_committed(7, 5000), 7);

    /* Nothing handed out is pending: skipped records commit by
     * themselves. */
    raw(p, "junk", NULL);                          /* 7 */
    raw(p, "junk", NULL);                          /* 8 */
    assert_int_equal(kt_idle(c, 500), 0);
    assert_int_equal(wait_committed(9, 5000), 9);

    /* With a record in flight they wait for it. */
    knit_event(ch, 2);                             /* 9 */
    raw(p, "junk", NULL);                          /* 10 */
    tu_release(r, n);
    n = kt_read(c, r, 1, 5000);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].offset, 9);
    assert_int_equal(kt_idle(c, 300), 0);
    assert_int_equal(kt_committed(&g_mock, GID, kt_topic("foreign"), 0), 9);
    assert_int_equal(ops->cursor_commit(c, 0, 10), KN_OK);
    assert_int_equal(kt_idle(c, 200), 0);
    assert_int_equal(wait_committed(11, 5000), 11);
    ops->stats(ch, &st);
    assert_int_equal(st.skipped_records, 7);
    tu_release(r, n);

    rd_kafka_destroy(p);
    ops->cursor_close(c);
    kn_channel_close(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreign_records),
    };
    return cmocka_run_group_tests(tests, kt_group_setup, kt_group_teardown);
}
