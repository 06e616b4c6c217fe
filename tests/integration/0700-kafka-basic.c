/*
 * 0700-kafka-basic: the "kafka" channel against librdkafka's mock cluster
 * (3 brokers, in process): settings are checked and errors name the
 * setting; appends are acknowledged with the first event's offset; a new
 * group starts at the end; records come back with their partition and
 * offset; commits are stored under the Knative group id and a reopened
 * cursor resumes after them (uncommitted events come again, none lost);
 * stats count the appends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kafkatest.h"


static void expect_bad_setting(const char *kv[][2], size_t n,
                               const char *field, bool bootstrap)
{
    kn_err err = {0};
    json_t *s = tu_settings(kv, n);
    if (bootstrap)
        json_object_set_new(s, "bootstrap.servers",
                            json_string(g_mock.bootstrap));
    kn_channel_config cfg = {"default", "bad", NULL, s};
    kn_channel *ch = NULL;
    assert_int_equal(kn_channel_open("kafka", &cfg, &ch, &err), KN_INVAL);
    assert_null(ch);
    assert_string_equal(err.field, field);
    assert_true(strstr(err.msg, field) != NULL);
    json_decref(s);
}

static void test_settings(void **state)
{
    (void)state;
    const char *none[][2] = {{"default.topic.partitions", "3"}};
    expect_bad_setting(none, 1, "bootstrap.servers", false);
    const char *unknown[][2] = {{"no.such.setting", "1"}};
    expect_bad_setting(unknown, 1, "no.such.setting", true);
    const char *acks[][2] = {{"kafka.acks", "1"}};
    expect_bad_setting(acks, 1, "kafka.acks", true);
    const char *prop[][2] = {{"kafka.no.such.property", "1"}};
    expect_bad_setting(prop, 1, "kafka.no.such.property", true);
    const char *parts[][2] = {{"default.topic.partitions", "ten"}};
    expect_bad_setting(parts, 1, "default.topic.partitions", true);
    const char *rf[][2] = {{"default.topic.replication.factor", "0"}};
    expect_bad_setting(rf, 1, "default.topic.replication.factor", true);
    const char *topic[][2] = {{"topic", "bad topic"}};
    expect_bad_setting(topic, 1, "topic", true);
    const char *secret[][2] = {{"auth.secret.ref.name", "kafka-secret"}};
    expect_bad_setting(secret, 1, "auth.secret.ref.name", true);
}

/* Appends events "<prefix>-<from..to-1>" in calls of `batch` events;
 * checks each call's first offset against the first event's own record
 * later through `firsts`. */
static void append_range(kn_channel *ch, const char *prefix, unsigned from,
                         unsigned to, unsigned batch)
{
    for (unsigned i = from; i < to; i += batch) {
        ce_event *evs[16];
        unsigned n = to - i < batch ? to - i : batch;
        for (unsigned j = 0; j < n; j++)
            evs[j] = tu_event(prefix, i + j, 20);
        assert_int_equal(tu_append(ch, evs, n, NULL), KN_OK);
        for (unsigned j = 0; j < n; j++)
            ce_event_unref(evs[j]);
    }
}

/* Records → a bitmap of seen ids "<prefix>-<i>"; duplicates counted. */
static unsigned mark(const kn_record *r, size_t n, const char *prefix,
                     unsigned char *seen, unsigned max)
{
    unsigned dups = 0;
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        const char *id = ce_event_get(r[i].event, "id", NULL, NULL);
        assert_non_null(id);
        assert_memory_equal(id, prefix, pl);
        unsigned v = (unsigned)atoi(id + pl + 1);
        assert_true(v < max);
        dups += seen[v];
        seen[v] = 1;
    }
    return dups;
}

static void test_append_read_resume(void **state)
{
    (void)state;
    kn_err err = {0};
    const char *topic = kt_topic("basic");
    assert_int_equal(rd_kafka_mock_topic_create(g_mock.mc, topic, 10, 3),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    kn_channel *ch = kt_open(&g_mock, "basic", NULL, 0, &err);
    assert_non_null(ch);
    const kn_channel_ops *ops = ch->ops;

    /* Events before the group exists are not its business. */
    append_range(ch, "old", 0, 5, 1);
    kn_cursor *c = kt_cursor(ch, "trigger.default.t1", KN_SEEK_COMMITTED,
                             &err);
    assert_non_null(c);

    /* Single appends report the event's own offset. */
    ce_event *ev = tu_event("ev", 0, 20);
    uint64_t first = UINT64_MAX;
    assert_int_equal(tu_append(ch, &ev, 1, &first), KN_OK);
    ce_event_unref(ev);
    append_range(ch, "ev", 1, 40, 7);

    kn_record r[64];
    unsigned char seen[64] = {0};
    size_t n = kt_read(c, r, 40, 20000);
    assert_int_equal(n, 40);
    assert_int_equal(mark(r, n, "ev", seen, 40), 0);
    int64_t next[10];
    for (int p = 0; p < 10; p++)
        next[p] = -1;
    for (size_t i = 0; i < n; i++) {
        assert_true(r[i].partition >= 0 && r[i].partition < 10);
        assert_true((int64_t)r[i].offset > next[r[i].partition] - 1);
        next[r[i].partition] = (int64_t)r[i].offset + 1;
        assert_true(r[i].timestamp_ns > 0);
        const char *id = ce_event_get(r[i].event, "id", NULL, NULL);
        if (strcmp(id, "ev-0") == 0)
            assert_int_equal(r[i].offset, first);
        size_t dl;
        const char *d = ce_event_data(r[i].event, &dl);
        assert_true(dl >= 20 && memcmp(d, "payload-", 8) == 0);
        assert_string_equal(ce_event_get(r[i].event, "datacontenttype",
                                         NULL, NULL), "text/plain");
        assert_string_equal(ce_event_get(r[i].event, "seq", NULL, NULL),
                            id + 3);
    }
    tu_release(r, n);
    assert_int_equal(kt_idle(c, 300), 0); /* nothing more, no "old-*" */

    /* Commit all but the last record of partition `hold`. */
    int hold = -1;
    for (int p = 0; p < 10; p++) {
        if (next[p] < 0)
            continue;
        if (hold < 0) {
            hold = p;
            assert_int_equal(ops->cursor_commit(c, p, (uint64_t)next[p] - 1),
                             KN_OK);
        } else {
            assert_int_equal(ops->cursor_commit(c, p, (uint64_t)next[p]),
                             KN_OK);
        }
    }
    ops->cursor_close(c);
    assert_int_equal(kt_committed(&g_mock, "knative-trigger-default-t1",
                                  topic, hold), next[hold] - 1);

    append_range(ch, "new", 0, 10, 3);
    c = kt_cursor(ch, "trigger.default.t1", KN_SEEK_COMMITTED, &err);
    assert_non_null(c);
    n = kt_read(c, r, 11, 20000);
    assert_int_equal(n, 11); /* the uncommitted one again + 10 new */
    unsigned again = 0;
    unsigned char seen2[16] = {0};
    for (size_t i = 0; i < n; i++) {
        const char *id = ce_event_get(r[i].event, "id", NULL, NULL);
        if (strncmp(id, "ev-", 3) == 0) {
            again++;
            assert_int_equal(r[i].partition, hold);
            assert_int_equal(r[i].offset, (uint64_t)next[hold] - 1);
        } else {
            assert_int_equal(mark(&r[i], 1, "new", seen2, 10), 0);
        }
    }
    assert_int_equal(again, 1);
    tu_release(r, n);
    assert_int_equal(kt_idle(c, 300), 0);
    ops->cursor_close(c);

    kn_channel_stats st;
    ops->stats(ch, &st);
    assert_int_equal(st.appended_events, 55);
    assert_true(st.appended_bytes > 55 * 20);
    assert_int_equal(st.append_errors, 0);
    assert_true(st.healthy);
    assert_int_equal(st.segments, 10); /* partitions of the topic */
    kn_channel_close(ch);
}

/* The mock has no controller: the topic is auto-created with its
 * defaults, and the channel still works. */
static void test_auto_created_topic(void **state)
{
    (void)state;
    kn_err err = {0};
    kn_channel *ch = kt_open(&g_mock, "auto", NULL, 0, &err);
    assert_non_null(ch);
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_true(st.healthy);
    assert_true(st.segments >= 1);
    char why[128];
    assert_string_equal(kn_channel_kafka_reason(ch, why, sizeof why), "");
    append_range(ch, "a", 0, 3, 3);
    kn_channel_close(ch);
}

/* An external topic that does not exist: the channel opens unhealthy,
 * appends fail at once with KN_UNAVAILABLE, and the reason says why;
 * once the topic exists it recovers by itself. */
static void test_external_topic(void **state)
{
    (void)state;
    kn_err err = {0};
    const char *kv[][2] = {{"topic", "preexisting-events"}};
    kn_channel *ch = kt_open(&g_mock, "ext", kv, 1, &err);
    assert_non_null(ch);
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_false(st.healthy);
    char why[256];
    assert_non_null(strstr(kn_channel_kafka_reason(ch, why, sizeof why),
                           "preexisting-events"));
    ce_event *ev = tu_event("x", 0, 0);
    assert_int_equal(kn_channel_append(ch, &ev, 1, tu_wait_cb, NULL),
                     KN_UNAVAILABLE);
    assert_int_equal(rd_kafka_mock_topic_create(g_mock.mc,
                                                "preexisting-events", 2, 3),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t end = kn_now_mono_ms() + 10000;
    do {
        ch->ops->stats(ch, &st);
        if (!st.healthy) {
            struct pollfd none;
            poll(&none, 0, 50);
        }
    } while (!st.healthy && kn_now_mono_ms() < end);
    if (!st.healthy)
        fprintf(stderr, "still unhealthy: %s\n",
                kn_channel_kafka_reason(ch, why, sizeof why));
    assert_true(st.healthy);
    assert_int_equal(tu_append(ch, &ev, 1, NULL), KN_OK);
    ce_event_unref(ev);
    kn_channel_close(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_append_read_resume),
        cmocka_unit_test(test_auto_created_topic),
        cmocka_unit_test(test_external_topic),
    };
    return cmocka_run_group_tests(tests, kt_group_setup, kt_group_teardown);
}
