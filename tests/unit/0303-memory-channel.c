/*
 * 0303-memory-channel: the "memory" backend keeps the channel contract
 * (asynchronous all-or-nothing appends, consecutive offsets, cursors with
 * committed positions and seeks, notify fd) and its test hooks work:
 * programmed failures and paused completions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <poll.h>

#include <cmocka.h>

#include "logtest.h"

static kn_channel *open_mem(const char *keep)
{
    json_t *set = json_object();
    if (keep)
        json_object_set_new(set, "retention.events", json_string(keep));
    kn_err err = {0};
    kn_channel *ch = lt_open("memory", "/nonexistent", set, &err);
    json_decref(set);
    assert_non_null(ch);
    return ch;
}

static kn_cursor *cur(kn_channel *ch, const char *g, kn_seek_kind k,
                      uint64_t off)
{
    kn_seek sk = {k, off, 0};
    kn_cursor *c = NULL;
    assert_int_equal(ch->ops->cursor_open(ch, g, &sk, NULL, &c, NULL), KN_OK);
    return c;
}

static void test_semantics(void **state)
{
    (void)state;
    kn_channel *ch = open_mem(NULL);
    kn_cursor *c = cur(ch, "a", KN_SEEK_COMMITTED, 0); /* new: END */
    uint64_t first, expect = 0;
    int64_t t0 = kn_now_wall_ns();
    assert_int_equal(lt_append_range(ch, "m", 0, 5, 0), KN_OK);
    ce_event *b[3] = {tu_event("m", 5, 0), tu_event("m", 6, 0),
                      tu_event("m", 7, 0)};
    assert_int_equal(tu_append(ch, b, 3, &first), KN_OK);
    assert_int_equal(first, 5);
    for (int i = 0; i < 3; i++)
        ce_event_unref(b[i]);
    assert_int_equal(lt_drain(c, &expect, "m", 0), 8);
    assert_int_equal(ch->ops->cursor_commit(c, 0, 6), KN_OK);
    assert_int_equal(ch->ops->cursor_commit(c, 0, 9), KN_INVAL);
    ch->ops->cursor_close(c);
    c = cur(ch, "a", KN_SEEK_COMMITTED, 0);
    expect = 6;
    assert_int_equal(lt_drain(c, &expect, "m", 0), 2);
    kn_seek sk = {KN_SEEK_TIME, 0, t0};
    assert_int_equal(ch->ops->cursor_seek(c, &sk, NULL), KN_OK);
    expect = 0;
    assert_int_equal(lt_drain(c, &expect, "m", 0), 8);
    sk = (kn_seek){KN_SEEK_OFFSET, 3, 0};
    assert_int_equal(ch->ops->cursor_seek(c, &sk, NULL), KN_OK);
    expect = 3;
    assert_int_equal(lt_drain(c, &expect, "m", 0), 5);
    assert_int_equal(ch->ops->cursor_delete(ch, "a"), KN_EXISTS);
    ch->ops->cursor_close(c);
    assert_int_equal(ch->ops->cursor_delete(ch, "a"), KN_OK);
    assert_int_equal(ch->ops->cursor_delete(ch, "a"), KN_NOTFOUND);
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_int_equal(st.head_offset, 8);
    assert_int_equal(st.appended_events, 8);
    assert_true(st.healthy);
    kn_channel_close(ch);
}

static void test_failures(void **state)
{
    (void)state;
    kn_channel *ch = open_mem(NULL);
    kn_channel_stats st;
    assert_int_equal(kn_channel_memory_fail(ch, KN_NOSPACE, 2), KN_OK);
    assert_int_equal(lt_append_range(ch, "f", 0, 1, 0), KN_NOSPACE);
    ce_event *b[2] = {tu_event("f", 0, 0), tu_event("f", 1, 0)};
    assert_int_equal(tu_append(ch, b, 2, NULL), KN_NOSPACE);
    ch->ops->stats(ch, &st);
    assert_false(st.healthy);
    assert_int_equal(st.append_errors, 3);
    assert_int_equal(st.head_offset, 0); /* nothing of a failed call */
    uint64_t first;
    assert_int_equal(tu_append(ch, b, 2, &first), KN_OK);
    assert_int_equal(first, 0);
    ch->ops->stats(ch, &st);
    assert_true(st.healthy);
    ce_event_unref(b[0]);
    ce_event_unref(b[1]);
    /* the hooks refuse other backends and bad statuses */
    assert_int_equal(kn_channel_memory_fail(ch, KN_OK, 1), KN_INVAL);
    char dir[64];
    tu_mkdtemp(dir, sizeof dir, "mem");
    kn_channel *lg = lt_open("log", dir, NULL, NULL);
    assert_non_null(lg);
    assert_int_equal(kn_channel_memory_fail(lg, KN_IO, 1), KN_INVAL);
    assert_int_equal(kn_channel_memory_pause(lg, true), KN_INVAL);
    kn_channel_close(lg);
    tu_rmrf(dir);
    kn_channel_close(ch);
}

static void test_pause_and_notify(void **state)
{
    (void)state;
    kn_channel *ch = open_mem(NULL);
    kn_cursor *c = cur(ch, "n", KN_SEEK_END, 0);
    kn_record r;
    assert_int_equal(ch->ops->cursor_next(c, &r, 1), 0);
    ch->ops->cursor_drain_notify(c);
    assert_int_equal(kn_channel_memory_pause(ch, true), KN_OK);
    tu_wait w;
    tu_wait_init(&w);
    ce_event *ev = tu_event("p", 0, 0);
    assert_int_equal(kn_channel_append(ch, &ev, 1, tu_wait_cb, &w), KN_OK);
    struct pollfd pfd = {ch->ops->cursor_fd(c), POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, 50), 0); /* held back */
    assert_int_equal(w.done, 0);
    assert_int_equal(kn_channel_memory_pause(ch, false), KN_OK);
    tu_wait_for(&w, 1, -1);
    assert_int_equal(w.status, KN_OK);
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_int_equal(ch->ops->cursor_next(c, &r, 1), 1);
    assert_string_equal(ce_event_get(r.event, "id", NULL, NULL), "p-0");
    ce_event_unref(r.event);
    /* close completes appends still held */
    assert_int_equal(kn_channel_memory_pause(ch, true), KN_OK);
    tu_wait_init(&w);
    assert_int_equal(kn_channel_append(ch, &ev, 1, tu_wait_cb, &w), KN_OK);
    ce_event_unref(ev);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
    assert_int_equal(w.done, 1);
    assert_int_equal(w.status, KN_OK);
}

static void test_retention(void **state)
{
    (void)state;
    kn_channel *ch = open_mem("5");
    kn_cursor *c = cur(ch, "slow", KN_SEEK_START, 0);
    assert_int_equal(lt_append_range(ch, "k", 0, 10, 0), KN_OK);
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_int_equal(st.first_offset, 0); /* "slow" has not committed */
    assert_int_equal(ch->ops->cursor_commit(c, 0, 8), KN_OK);
    assert_int_equal(lt_append_range(ch, "k", 10, 11, 0), KN_OK);
    ch->ops->stats(ch, &st);
    assert_int_equal(st.first_offset, 6);
    assert_int_equal(st.retention_deleted_events, 6);
    uint64_t expect = 6;
    assert_int_equal(lt_drain(c, &expect, "k", 0), 5);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
    json_t *set = json_pack("{s:s}", "retention.events", "-3");
    kn_err err = {0};
    assert_null(lt_open("memory", "/x", set, &err));
    assert_non_null(strstr(err.msg, "retention.events"));
    json_decref(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semantics),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_pause_and_notify),
        cmocka_unit_test(test_retention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
