/*
 * 0800-nats-channel: the NATS JetStream channel against a real
 * `nats-server -js` (started on a free loopback port with a temporary
 * store, or KNIT_TEST_NATS_URL): append and PubAck offsets, reading,
 * commit and resuming after reopen, dedup by event id, the wire format
 * seen by a plain cnats subscriber, records that are not CloudEvents,
 * stats, names, consumer configuration, settings errors, stream updates
 * and cursor_delete.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "channels/nats/nats_int.h"
#include "nats_test.h"

static kn_cursor *cur_open(kn_channel *ch, const char *group,
                           kn_seek_kind kind, uint64_t off)
{
    kn_seek sk = {kind, off, 0};
    kn_cursor *c = NULL;
    kn_err err = {0};
    int rc = ch->ops->cursor_open(ch, group, &sk, NULL, &c, &err);
    if (rc != KN_OK)
        fprintf(stderr, "cursor_open: %s\n", err.msg);
    assert_int_equal(rc, KN_OK);
    return c;
}

/* Expects nothing to arrive within ms. */
static void expect_quiet(kn_cursor *c, int ms)
{
    kn_record r;
    size_t n = tu_read(c, &r, 1, ms);
    if (n)
        fprintf(stderr, "unexpected record offset %llu\n",
                (unsigned long long)r.offset);
    tu_release(&r, n);
    assert_int_equal(n, 0);
}

static void test_append_read_resume(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "basic");
    kn_channel *ch = nt_open_ch(b, NULL, 0);
    kn_cursor *c = cur_open(ch, "g1", KN_SEEK_START, 0);
    ce_event *evs[10];
    uint64_t first = 0;

    for (unsigned i = 0; i < 10; i++)
        evs[i] = tu_event(b, i, 0);
    assert_int_equal(tu_append(ch, evs, 3, &first), KN_OK);
    assert_int_equal(first, 1);
    assert_int_equal(tu_append(ch, evs + 3, 7, &first), KN_OK);
    assert_int_equal(first, 4);

    kn_record recs[16];
    size_t n = tu_read(c, recs, 10, 5000);
    assert_int_equal(n, 10);
    for (unsigned i = 0; i < 10; i++) {
        assert_int_equal(recs[i].offset, i + 1);
        assert_int_equal(recs[i].partition, 0);
        assert_true(recs[i].timestamp_ns > 0);
        assert_true(nt_same_event(recs[i].event, evs[i]));
    }
    tu_release(recs, n);
    assert_int_equal(ch->ops->cursor_commit(c, 0, 6), KN_OK);
    assert_int_equal(ch->ops->cursor_commit(c, 1, 6), KN_INVAL);
    ch->ops->cursor_close(c);

    /* Reopen at the committed position: 6..10 come back at once (the
     * close gave them back to JetStream). */
    c = cur_open(ch, "g1", KN_SEEK_COMMITTED, 0);
    n = tu_read(c, recs, 5, 5000);
    assert_int_equal(n, 5);
    unsigned seen = 0; /* redeliveries may come in any order */
    for (unsigned i = 0; i < 5; i++) {
        assert_in_range(recs[i].offset, 6, 10);
        seen |= 1u << recs[i].offset;
    }
    assert_int_equal(seen, 0x7c0);
    tu_release(recs, n);
    assert_int_equal(ch->ops->cursor_commit(c, 0, 11), KN_OK);
    ch->ops->cursor_close(c);

    /* Everything committed: a reopened cursor sees only new events. */
    c = cur_open(ch, "g1", KN_SEEK_COMMITTED, 0);
    expect_quiet(c, 300);
    ce_event *late = tu_event(b, 100, 0);
    assert_int_equal(tu_append(ch, &late, 1, &first), KN_OK);
    assert_int_equal(first, 11);
    n = tu_read(c, recs, 1, 5000);
    assert_int_equal(n, 1);
    assert_int_equal(recs[0].offset, 11);
    tu_release(recs, n);
    ch->ops->cursor_close(c);

    /* A new group opened at END sees nothing old. */
    c = cur_open(ch, "g2", KN_SEEK_END, 0);
    expect_quiet(c, 200);
    ch->ops->cursor_close(c);

    ce_event_unref(late);
    for (unsigned i = 0; i < 10; i++)
        ce_event_unref(evs[i]);
    kn_channel_close(ch);
}

static void test_dedup(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "dedup");
    kn_channel *ch = nt_open_ch(b, NULL, 0);
    ce_event *a = tu_event(b, 1, 0), *other = tu_event(b, 2, 0);
    uint64_t f1 = 0, f2 = 0, f3 = 0;

    assert_int_equal(tu_append(ch, &a, 1, &f1), KN_OK);
    assert_int_equal(tu_append(ch, &a, 1, &f2), KN_OK); /* a retry */
    assert_int_equal(f1, f2);
    ce_event *batch[3] = {other, a, other};
    assert_int_equal(tu_append(ch, batch, 3, &f3), KN_OK);
    assert_int_equal(f3, f1 + 1);

    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_int_equal(st.head_offset, f1 + 2); /* two distinct events */
    assert_int_equal(st.first_offset, 1);
    assert_true(st.healthy);

    kn_cursor *c = cur_open(ch, "d", KN_SEEK_START, 0);
    kn_record recs[4];
    size_t n = tu_read(c, recs, 4, 1000);
    assert_int_equal(n, 2);
    tu_release(recs, n);
    ch->ops->cursor_close(c);
    ce_event_unref(a);
    ce_event_unref(other);
    kn_channel_close(ch);
}

static void test_wire_format(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64], subj[160], want_id[96];
    nt_broker(b, sizeof b, "wire");
    kn_channel *ch = nt_open_ch(b, NULL, 0);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    const char *v = NULL;

    assert_int_equal(nt_raw(nt_srv.url, &nc, &js), 0);
    snprintf(subj, sizeof subj, "knit.default.%s.events", b);
    assert_int_equal(natsConnection_SubscribeSync(&sub, nc, subj), NATS_OK);
    assert_int_equal(natsConnection_Flush(nc), NATS_OK);

    ce_event *ev = tu_event(b, 7, 0);
    assert_int_equal(tu_append(ch, &ev, 1, NULL), KN_OK);
    assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    snprintf(want_id, sizeof want_id, "%s-7", b);
    assert_int_equal(natsMsgHeader_Get(m, "ce-id", &v), NATS_OK);
    assert_string_equal(v, want_id);
    assert_int_equal(natsMsgHeader_Get(m, "Nats-Msg-Id", &v), NATS_OK);
    assert_string_equal(v, want_id);
    assert_int_equal(natsMsgHeader_Get(m, "ce-specversion", &v), NATS_OK);
    assert_string_equal(v, "1.0");
    assert_int_equal(natsMsgHeader_Get(m, "ce-type", &v), NATS_OK);
    assert_string_equal(v, "dev.knit.test");
    assert_int_equal(natsMsgHeader_Get(m, "ce-source", &v), NATS_OK);
    assert_string_equal(v, "/knit/test");
    assert_int_equal(natsMsgHeader_Get(m, "ce-datacontenttype", &v),
                     NATS_OK);
    assert_string_equal(v, "text/plain");
    assert_int_equal(natsMsgHeader_Get(m, "ce-seq", &v), NATS_OK);
    assert_string_equal(v, "7");
    assert_int_equal(natsMsgHeader_Get(m, "Content-Type", &v),
                     NATS_NOT_FOUND);
    assert_int_equal(natsMsg_GetDataLength(m), 9);
    assert_memory_equal(natsMsg_GetData(m), "payload-7", 9);
    natsMsg_Destroy(m);

    /* The stream exists under the documented name. */
    char *sname = NULL;
    jsStreamInfo *si = NULL;
    assert_int_equal(kn_nats_stream_name("default", b, &sname), KN_OK);
    assert_int_equal(js_GetStreamInfo(&si, js, sname, NULL, NULL), NATS_OK);
    assert_int_equal(si->Config->SubjectsLen, 1);
    assert_string_equal(si->Config->Subjects[0], subj);
    assert_int_equal(si->Config->Storage, js_FileStorage);
    assert_int_equal(si->Config->Duplicates, 120000000000LL);
    jsStreamInfo_Destroy(si);
    free(sname);

    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ce_event_unref(ev);
    kn_channel_close(ch);
}

static void test_skip_non_cloudevents(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64], subj[160];
    nt_broker(b, sizeof b, "skip");
    kn_channel *ch = nt_open_ch(b, NULL, 0);
    kn_cursor *c = cur_open(ch, "s", KN_SEEK_START, 0);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;

    assert_int_equal(nt_raw(nt_srv.url, &nc, &js), 0);
    snprintf(subj, sizeof subj, "knit.default.%s.events", b);
    /* no ce- headers at all, then a bad specversion */
    assert_int_equal(js_Publish(NULL, js, subj, "junk", 4, NULL, NULL),
                     NATS_OK);
    natsMsg *m = NULL;
    natsMsg_Create(&m, subj, NULL, "x", 1);
    natsMsgHeader_Set(m, "ce-specversion", "0.1");
    natsMsgHeader_Set(m, "ce-id", "bad");
    assert_int_equal(js_PublishMsg(NULL, js, m, NULL, NULL), NATS_OK);
    natsMsg_Destroy(m);
    ce_event *ev = tu_event(b, 3, 0);
    uint64_t first = 0;
    assert_int_equal(tu_append(ch, &ev, 1, &first), KN_OK);
    assert_int_equal(first, 3);

    kn_record r[4];
    size_t n = tu_read(c, r, 1, 5000);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].offset, 3);
    assert_true(nt_same_event(r[0].event, ev));
    tu_release(r, n);
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_int_equal(st.skipped_records, 2);
    assert_int_equal(ch->ops->cursor_commit(c, 0, 4), KN_OK);
    ch->ops->cursor_close(c);

    /* the skipped records were acked: a reopened cursor sees nothing */
    c = cur_open(ch, "s", KN_SEEK_COMMITTED, 0);
    expect_quiet(c, 300);
    ch->ops->cursor_close(c);

    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ce_event_unref(ev);
    kn_channel_close(ch);
}

static void test_stats_and_consumer(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "stats");
    const char *kv[][2] = {{"ack-wait", "PT7S"}, {"max-ack-pending", "33"},
                           {"max-age", "PT1H"}, {"max-bytes", "10Mi"},
                           {"duplicate-window", "PT30S"}};
    kn_channel *ch = nt_open_ch(b, kv, 5);
    kn_channel_stats st;

    ch->ops->stats(ch, &st);
    assert_true(st.healthy);
    assert_int_equal(st.head_offset, 1);
    assert_int_equal(st.first_offset, 1);
    assert_int_equal(st.appended_events, 0);

    ce_event *evs[4];
    for (unsigned i = 0; i < 4; i++)
        evs[i] = tu_event(b, i, 0);
    assert_int_equal(tu_append(ch, evs, 4, NULL), KN_OK);
    ch->ops->stats(ch, &st);
    assert_int_equal(st.head_offset, 5);
    assert_int_equal(st.first_offset, 1);
    assert_int_equal(st.appended_events, 4);
    assert_true(st.appended_bytes > 4 * 9);
    assert_true(st.stored_bytes > 0);
    assert_int_equal(st.append_errors, 0);

    /* consumer: durable name derived from the group, configuration */
    const char *group = "ns/trigger.a b_c";
    kn_cursor *c = cur_open(ch, group, KN_SEEK_COMMITTED, 0);
    char *durable = NULL, *sname = NULL;
    assert_int_equal(kn_nats_durable_name(group, &durable), KN_OK);
    assert_string_equal(durable, "ns_2Ftrigger_2Ea_20b__c");
    assert_int_equal(kn_nats_stream_name("default", b, &sname), KN_OK);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsConsumerInfo *ci = NULL;
    jsStreamInfo *si = NULL;
    assert_int_equal(nt_raw(nt_srv.url, &nc, &js), 0);
    assert_int_equal(js_GetConsumerInfo(&ci, js, sname, durable, NULL,
                                        NULL), NATS_OK);
    assert_int_equal(ci->Config->AckPolicy, js_AckExplicit);
    assert_int_equal(ci->Config->AckWait, 7000000000LL);
    assert_int_equal(ci->Config->MaxAckPending, 33);
    assert_int_equal(ci->Config->MaxDeliver, -1);
    assert_int_equal(ci->Config->BackOffLen, 0);
    assert_int_equal(ci->Config->DeliverPolicy, js_DeliverNew);
    jsConsumerInfo_Destroy(ci);
    assert_int_equal(js_GetStreamInfo(&si, js, sname, NULL, NULL), NATS_OK);
    assert_int_equal(si->Config->MaxAge, 3600000000000LL);
    assert_int_equal(si->Config->MaxBytes, 10 << 20);
    assert_int_equal(si->Config->Duplicates, 30000000000LL);
    jsStreamInfo_Destroy(si);
    ch->ops->cursor_close(c);

    /* cursor_delete removes the durable; an open group cannot be */
    c = cur_open(ch, group, KN_SEEK_COMMITTED, 0);
    assert_int_equal(ch->ops->cursor_delete(ch, group), KN_EXISTS);
    ch->ops->cursor_close(c);
    assert_int_equal(ch->ops->cursor_delete(ch, group), KN_OK);
    assert_int_equal(js_GetConsumerInfo(&ci, js, sname, durable, NULL,
                                        NULL), NATS_NOT_FOUND);
    assert_int_equal(ch->ops->cursor_delete(ch, group), KN_NOTFOUND);
    kn_channel_close(ch);

    /* reopening with other settings updates the existing stream */
    const char *kv2[][2] = {{"max-age", "PT2H"}};
    ch = nt_open_ch(b, kv2, 1);
    assert_int_equal(js_GetStreamInfo(&si, js, sname, NULL, NULL), NATS_OK);
    assert_int_equal(si->Config->MaxAge, 7200000000000LL);
    assert_int_equal(si->Config->MaxBytes, -1);
    assert_int_equal(si->State.Msgs, 4);
    jsStreamInfo_Destroy(si);
    kn_channel_close(ch);

    /* storage cannot change */
    const char *kv3[][2] = {{"storage", "memory"}};
    json_t *set = nt_settings(nt_srv.url, kv3, 1);
    kn_err err = {0};
    assert_null(nt_open(b, set, &err));
    assert_int_equal(err.status, KN_INVAL);
    assert_string_equal(err.field, "storage");
    assert_non_null(strstr(err.msg, "file storage"));
    json_decref(set);

    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(durable);
    free(sname);
    for (unsigned i = 0; i < 4; i++)
        ce_event_unref(evs[i]);
}

static void expect_bad(const char *key, const char *value, const char *msg)
{
    const char *kv[][2] = {{key, value}};
    json_t *set = nt_settings(nt_srv.url, kv, 1);
    kn_err err = {0};
    kn_channel *ch = nt_open("bad", set, &err);
    json_decref(set);
    if (ch)
        kn_channel_close(ch);
    assert_null(ch);
    assert_int_equal(err.status, KN_INVAL);
    if (!strstr(err.msg, msg))
        fprintf(stderr, "message: %s\n", err.msg);
    assert_non_null(strstr(err.msg, msg));
    if (strcmp(key, "password") != 0)
        assert_string_equal(err.field, key);
}

static void test_settings_errors(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    expect_bad("storage", "disk", "is not one of file, memory");
    expect_bad("replicas", "0", "outside 1..5");
    expect_bad("replicas", "three", "not a non-negative integer");
    expect_bad("max-age", "1 hour", "not a duration");
    expect_bad("max-bytes", "12X", "not a size");
    expect_bad("duplicate-window", "PT-1S", "not a duration");
    expect_bad("ack-wait", "10", "at least 1000 ms");
    expect_bad("max-ack-pending", "-1", "not a non-negative integer");
    expect_bad("url", " , ", "holds no URL");
    expect_bad("password", "secret", "needs the setting user");

    /* max-age shorter than the duplicate window */
    const char *kv[][2] = {{"max-age", "PT1M"}};
    json_t *set = nt_settings(nt_srv.url, kv, 1);
    kn_err err = {0};
    assert_null(nt_open("bad", set, &err));
    assert_string_equal(err.field, "duplicate-window");
    json_decref(set);

    /* names NATS cannot carry */
    set = nt_settings(nt_srv.url, NULL, 0);
    assert_null(nt_open("a.b", set, &err));
    assert_int_equal(err.status, KN_INVAL);
    json_decref(set);
}

static void test_names(void **state)
{
    (void)state;
    char *s = NULL;
    assert_int_equal(kn_nats_stream_name("my-ns", "my-broker", &s), KN_OK);
    assert_string_equal(s, "KN_BROKER_MY_NS__MY_BROKER");
    free(s);
    assert_int_equal(kn_nats_stream_name("ns", "a*b", &s), KN_INVAL);
    assert_int_equal(kn_nats_stream_name("ns", "", &s), KN_INVAL);
    assert_int_equal(kn_nats_durable_name("Abc-09", &s), KN_OK);
    assert_string_equal(s, "Abc-09");
    free(s);
    /* injective: '_' and its escape differ */
    char *x = NULL, *y = NULL;
    assert_int_equal(kn_nats_durable_name("a_2E", &x), KN_OK);
    assert_int_equal(kn_nats_durable_name("a.", &y), KN_OK);
    assert_string_not_equal(x, y);
    free(x);
    free(y);
    char longname[600];
    memset(longname, 'g', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(kn_nats_durable_name(longname, &x), KN_OK);
    assert_int_equal(strlen(x), KN_NATS_NAME_MAX);
    longname[590] = 'h'; /* same prefix, other hash */
    assert_int_equal(kn_nats_durable_name(longname, &y), KN_OK);
    assert_string_not_equal(x, y);
    free(x);
    free(y);
    assert_int_equal(kn_nats_durable_name("", &x), KN_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_append_read_resume),
        cmocka_unit_test(test_dedup),
        cmocka_unit_test(test_wire_format),
        cmocka_unit_test(test_skip_non_cloudevents),
        cmocka_unit_test(test_stats_and_consumer),
        cmocka_unit_test(test_settings_errors),
    };
    return cmocka_run_group_tests(tests, nt_group_setup, nt_group_teardown);
}
