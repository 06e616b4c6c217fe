/*
 * 0302-log-basic: the log channel end to end in one process — append and
 * read back, batches, commit and resume after a restart, segment roll and
 * reading across segments, seeks (START, END, OFFSET, TIME, COMMITTED),
 * cursor_delete, stats, settings errors and the directory lock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "logtest.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    tu_mkdtemp(dir, sizeof dir, "log-basic");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(dir);
    return 0;
}

static kn_channel *open_log(const char *segbytes)
{
    const char *kv[][2] = {{"segment.bytes", segbytes},
                           {"index.interval.bytes", "256"}};
    json_t *set = tu_settings(kv, 2);
    kn_err err = {0};
    kn_channel *ch = lt_open("log", dir, set, &err);
    if (!ch)
        fprintf(stderr, "open: %s\n", err.msg);
    json_decref(set);
    assert_non_null(ch);
    return ch;
}

static kn_cursor *cur_open(kn_channel *ch, const char *group,
                           kn_seek_kind kind, uint64_t off, int64_t t)
{
    kn_seek sk = {kind, off, t};
    kn_cursor *c = NULL;
    kn_err err = {0};
    int rc = ch->ops->cursor_open(ch, group, &sk, NULL, &c, &err);
    if (rc != KN_OK)
        fprintf(stderr, "cursor_open: %s\n", err.msg);
    assert_int_equal(rc, KN_OK);
    return c;
}

static void test_append_read_restart(void **state)
{
    (void)state;
    kn_channel *ch = open_log("64Mi");
    uint64_t first = 99, expect = 0;

    /* a cursor at END sees only what comes after it */
    kn_cursor *tail = cur_open(ch, "t1", KN_SEEK_END, 0, 0);
    assert_int_equal(lt_append_range(ch, "e", 0, 10, 10), KN_OK);
    ce_event *batch[5];
    for (unsigned i = 0; i < 5; i++)
        batch[i] = tu_event("e", 10 + i, 10);
    assert_int_equal(tu_append(ch, batch, 5, &first), KN_OK);
    assert_int_equal(first, 10);
    for (unsigned i = 0; i < 5; i++)
        ce_event_unref(batch[i]);
    assert_int_equal(lt_drain(tail, &expect, "e", 0), 15);
    assert_int_equal(lt_drain(tail, &expect, "e", 0), 0);

    /* the record carries attributes, types, data and a timestamp */
    kn_cursor *c = cur_open(ch, "t2", KN_SEEK_OFFSET, 3, 0);
    kn_record r;
    assert_int_equal(ch->ops->cursor_next(c, &r, 1), 1);
    assert_int_equal(r.offset, 3);
    assert_int_equal(r.partition, 0);
    assert_true(r.timestamp_ns > 0);
    ce_type t;
    assert_string_equal(ce_event_get(r.event, "seq", NULL, &t), "3");
    assert_int_equal(t, CE_TYPE_INTEGER);
    size_t dl;
    const char *d = ce_event_data(r.event, &dl);
    assert_memory_equal(d, "payload-3", 9);
    ce_event_unref(r.event);
    assert_int_equal(ch->ops->cursor_commit(c, 0, 4), KN_OK);
    assert_int_equal(ch->ops->cursor_commit(c, 1, 4), KN_INVAL);
    assert_int_equal(ch->ops->cursor_commit(c, 0, 16), KN_INVAL);
    ch->ops->cursor_close(c);
    ch->ops->cursor_close(tail);

    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_int_equal(st.appended_events, 15);
    assert_int_equal(st.head_offset, 15);
    assert_int_equal(st.first_offset, 0);
    assert_int_equal(st.segments, 1);
    assert_true(st.healthy);
    assert_true(st.fsyncs >= 1 && st.fsyncs <= 11);
    kn_channel_close(ch);

    /* restart: everything is there, t2 resumes at its commit */
    ch = open_log("64Mi");
    ch->ops->stats(ch, &st);
    assert_int_equal(st.head_offset, 15);
    c = cur_open(ch, "t2", KN_SEEK_COMMITTED, 0, 0);
    expect = 4;
    assert_int_equal(lt_drain(c, &expect, "e", 0), 11);
    ch->ops->cursor_close(c);
    /* t1 was opened at END (offset 0) and never committed after that */
    c = cur_open(ch, "t1", KN_SEEK_COMMITTED, 0, 0);
    expect = 0;
    assert_int_equal(lt_drain(c, &expect, "e", 0), 15);
    assert_int_equal(ch->ops->cursor_delete(ch, "t1"), KN_EXISTS);
    ch->ops->cursor_close(c);
    assert_int_equal(ch->ops->cursor_delete(ch, "t1"), KN_OK);
    assert_int_equal(ch->ops->cursor_delete(ch, "t1"), KN_NOTFOUND);
    /* a deleted group starts again at END */
    c = cur_open(ch, "t1", KN_SEEK_COMMITTED, 0, 0);
    expect = 15;
    assert_int_equal(lt_drain(c, &expect, NULL, 0), 0);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
}

static void test_roll_and_seek(void **state)
{
    (void)state;
    kn_channel *ch = open_log("2048");
    kn_channel_stats st;
    int64_t t_before = kn_now_wall_ns();
    assert_int_equal(lt_append_range(ch, "r", 0, 40, 100), KN_OK);
    int64_t t_mid = kn_now_wall_ns();
    usleep(2000);
    assert_int_equal(lt_append_range(ch, "r", 40, 60, 100), KN_OK);
    ch->ops->stats(ch, &st);
    assert_true(st.segments > 3);
    assert_int_equal(st.head_offset, 60);

    uint64_t expect = 0;
    kn_cursor *c = cur_open(ch, "all", KN_SEEK_START, 0, 0);
    assert_int_equal(lt_drain(c, &expect, "r", 0), 60);
    /* every offset is reachable by seek, inside and across segments */
    for (uint64_t o = 0; o <= 60; o += 7) {
        kn_seek sk = {KN_SEEK_OFFSET, o, 0};
        assert_int_equal(ch->ops->cursor_seek(c, &sk, NULL), KN_OK);
        expect = o;
        assert_int_equal(lt_drain(c, &expect, "r", 0), (int)(60 - o));
    }
    kn_seek sk = {KN_SEEK_OFFSET, 1000, 0}; /* clamped to the head */
    assert_int_equal(ch->ops->cursor_seek(c, &sk, NULL), KN_OK);
    expect = 60;
    assert_int_equal(lt_drain(c, &expect, NULL, 0), 0);
    /* time: before everything, in the middle, after everything */
    sk = (kn_seek){KN_SEEK_TIME, 0, t_before};
    assert_int_equal(ch->ops->cursor_seek(c, &sk, NULL), KN_OK);
    expect = 0;
    assert_int_equal(lt_drain(c, &expect, "r", 0), 60);
    sk.time_ns = t_mid;
    assert_int_equal(ch->ops->cursor_seek(c, &sk, NULL), KN_OK);
    expect = 40;
    assert_int_equal(lt_drain(c, &expect, "r", 0), 20);
    sk.time_ns = kn_now_wall_ns() + 1000000000;
    assert_int_equal(ch->ops->cursor_seek(c, &sk, NULL), KN_OK);
    expect = 60;
    assert_int_equal(lt_drain(c, &expect, NULL, 0), 0);
    /* seek also moves the committed position */
    sk = (kn_seek){KN_SEEK_OFFSET, 33, 0};
    assert_int_equal(ch->ops->cursor_seek(c, &sk, NULL), KN_OK);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);

    /* reopen: sealed segments come from their index files */
    ch = open_log("2048");
    ch->ops->stats(ch, &st);
    assert_int_equal(st.head_offset, 60);
    c = cur_open(ch, "all", KN_SEEK_COMMITTED, 0, 0);
    expect = 33;
    assert_int_equal(lt_drain(c, &expect, "r", 0), 27);
    sk = (kn_seek){KN_SEEK_TIME, 0, t_mid};
    assert_int_equal(ch->ops->cursor_seek(c, &sk, NULL), KN_OK);
    expect = 40;
    assert_int_equal(lt_drain(c, &expect, "r", 0), 20);
    /* and appending continues after them */
    assert_int_equal(lt_append_range(ch, "r", 60, 70, 100), KN_OK);
    assert_int_equal(lt_drain(c, &expect, "r", 0), 10);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
}

static void test_bounded_batches(void **state)
{
    (void)state;
    kn_channel *ch = open_log("64Mi");
    kn_cursor *c = cur_open(ch, "b", KN_SEEK_END, 0, 0);
    assert_int_equal(lt_append_range(ch, "b", 0, 25, 10), KN_OK);
    kn_record recs[10];
    int n = ch->ops->cursor_next(c, recs, 10);
    assert_int_equal(n, 10); /* never more than asked */
    for (int i = 0; i < n; i++)
        ce_event_unref(recs[i].event);
    /* a backlog keeps the notify fd readable */
    ch->ops->cursor_drain_notify(c);
    n = ch->ops->cursor_next(c, recs, 10);
    assert_int_equal(n, 10);
    for (int i = 0; i < n; i++)
        ce_event_unref(recs[i].event);
    struct timeval tv = {0, 0};
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(ch->ops->cursor_fd(c), &fds);
    assert_int_equal(select(ch->ops->cursor_fd(c) + 1, &fds, NULL, NULL,
                            &tv), 1);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
}

static void test_settings_and_lock(void **state)
{
    (void)state;
    const char *bad[][2] = {
        {"durability", "sometimes"}, {"segment.bytes", "12"},
        {"segment.bytes", "lots"},   {"retention.ms", "soon"},
        {"recovery", "pray"},        {"retention.bytes", "5Xi"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *set = tu_settings(&bad[i], 1);
        kn_err err = {0};
        assert_null(lt_open("log", dir, set, &err));
        assert_int_equal(err.status, KN_INVAL);
        assert_non_null(strstr(err.msg, bad[i][0]));
        json_decref(set);
    }
    const char *good[][2] = {{"durability", "write"},
                             {"retention.ms", "P7D"},
                             {"retention.bytes", "10Gi"},
                             {"segment.bytes", "1M"}};
    json_t *set = tu_settings(good, 4);
    kn_err err = {0};
    kn_channel *ch = lt_open("log", dir, set, &err);
    assert_non_null(ch);
    /* a second open of the same directory is refused while it is open */
    assert_null(lt_open("log", dir, NULL, &err));
    assert_int_equal(err.status, KN_EXISTS);
    assert_non_null(strstr(err.msg, "in use"));
    assert_int_equal(lt_append_range(ch, "w", 0, 3, 0), KN_OK);
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_int_equal(st.fsyncs, 0); /* durability "write" */
    kn_channel_close(ch);
    json_decref(set);
    kn_channel_config cfg = {"default", "x", NULL, NULL};
    assert_int_equal(kn_channel_open("log", &cfg, &ch, &err), KN_INVAL);
}

static void test_append_errors(void **state)
{
    (void)state;
    kn_channel *ch = open_log("64Mi");
    ce_event *null_ev = NULL;
    assert_int_equal(kn_channel_append(ch, &null_ev, 1, NULL, NULL),
                     KN_INVAL);
    /* empty append completes at the head */
    uint64_t first = 7;
    assert_int_equal(tu_append(ch, NULL, 0, &first), KN_OK);
    assert_int_equal(first, 0);
    /* an event over the record limit is refused up front */
    ce_event *big = ce_event_new();
    ce_event_set_str(big, "specversion", "1.0", NULL);
    ce_event_set_str(big, "id", "big", NULL);
    ce_event_set_str(big, "source", "/s", NULL);
    ce_event_set_str(big, "type", "t", NULL);
    char *data = calloc(1, (64u << 20) + 1);
    ce_event_set_data(big, data, (64u << 20) + 1);
    free(data);
    ce_event_freeze(big);
    assert_int_equal(kn_channel_append(ch, &big, 1, tu_wait_cb, NULL),
                     KN_TOOBIG);
    ce_event_unref(big);
    kn_channel_close(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_read_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_roll_and_seek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_batches, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_settings_and_lock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_append_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
