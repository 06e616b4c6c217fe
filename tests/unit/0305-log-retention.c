/*
 * 0305-log-retention: whole sealed segments are deleted by size and by
 * age with the deleted events/bytes counted; a cursor that has not
 * committed protects its segments unless retention.max.bytes forces the
 * deletion, which is counted, logged with the group, and the cursor
 * resumes at the oldest retained event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>

#include <cmocka.h>

#include "logtest.h"

static bool logged_has(const char *what)
{
    return strstr(lt_logcap_text(&lt_cap, false), what) != NULL;
}

static kn_channel *open_ret(const char *kv[][2], size_t n)
{
    json_t *set = tu_settings(kv, n);
    kn_err err = {0};
    kn_channel *ch = lt_open("log", lt_dir, set, &err);
    if (!ch)
        fprintf(stderr, "open: %s\n", err.msg);
    json_decref(set);
    assert_non_null(ch);
    return ch;
}

static void test_by_size(void **state)
{
    (void)state;
    const char *kv[][2] = {{"durability", "write"},
                           {"segment.bytes", "1024"},
                           {"retention.bytes", "3000"}};
    kn_channel *ch = open_ret(kv, 3);
    kn_channel_stats st;
    assert_int_equal(lt_append_range(ch, "e", 0, 60, 100), KN_OK);
    ch->ops->stats(ch, &st);
    assert_true(st.retention_deleted_events > 0);
    assert_int_equal(st.first_offset, st.retention_deleted_events);
    assert_true(st.retention_deleted_bytes > 0);
    assert_true(st.stored_bytes <= 3000);
    assert_int_equal(st.retention_forced, 0);
    assert_int_equal(st.head_offset, 60);
    /* what is left reads back from START */
    kn_seek sk = {KN_SEEK_START, 0, 0};
    kn_cursor *c = NULL;
    assert_int_equal(ch->ops->cursor_open(ch, "late", &sk, NULL, &c, NULL),
                     KN_OK);
    uint64_t expect = st.first_offset;
    assert_int_equal(lt_drain(c, &expect, "e", 0),
                     (int)(60 - st.first_offset));
    ch->ops->cursor_close(c);
    /* deleted files are gone from the directory */
    char p[128];
    snprintf(p, sizeof p, "%s/%020d.log", lt_dir, 0);
    assert_int_equal(lt_file_size(p), -1);
    assert_true(logged_has("retention deleted"));
    kn_channel_close(ch);
    /* and a restart agrees */
    ch = open_ret(kv, 3);
    kn_channel_stats st2;
    ch->ops->stats(ch, &st2);
    assert_int_equal(st2.first_offset, st.first_offset);
    assert_int_equal(st2.head_offset, 60);
    kn_channel_close(ch);
}

static void test_cursor_protects(void **state)
{
    (void)state;
    const char *kv[][2] = {{"durability", "write"},
                           {"segment.bytes", "1024"},
                           {"retention.bytes", "2000"}};
    kn_channel *ch = open_ret(kv, 3);
    kn_seek sk = {KN_SEEK_START, 0, 0};
    kn_cursor *c = NULL;
    kn_channel_stats st;
    assert_int_equal(ch->ops->cursor_open(ch, "slow", &sk, NULL, &c, NULL),
                     KN_OK);
    assert_int_equal(lt_append_range(ch, "e", 0, 40, 100), KN_OK);
    ch->ops->stats(ch, &st);
    assert_int_equal(st.first_offset, 0); /* nothing "slow" still needs */
    assert_int_equal(st.retention_deleted_events, 0);
    assert_true(st.stored_bytes > 2000);
    /* once it commits, the next append lets retention go up to there */
    assert_int_equal(ch->ops->cursor_commit(c, 0, 20), KN_OK);
    assert_int_equal(lt_append_range(ch, "e", 40, 41, 100), KN_OK);
    ch->ops->stats(ch, &st);
    assert_true(st.first_offset > 0);
    assert_true(st.first_offset <= 20);
    assert_int_equal(st.retention_forced, 0);
    ch->ops->cursor_close(c);
    /* a closed cursor's checkpoint still protects after a restart */
    kn_channel_close(ch);
    ch = open_ret(kv, 3);
    assert_int_equal(lt_append_range(ch, "e", 41, 60, 100), KN_OK);
    ch->ops->stats(ch, &st);
    assert_true(st.first_offset <= 20);
    assert_int_equal(ch->ops->cursor_delete(ch, "slow"), KN_OK);
    assert_int_equal(lt_append_range(ch, "e", 60, 61, 100), KN_OK);
    ch->ops->stats(ch, &st);
    assert_true(st.first_offset > 20);
    assert_true(st.stored_bytes <= 2000);
    kn_channel_close(ch);
}

static void test_forced(void **state)
{
    (void)state;
    const char *kv[][2] = {{"durability", "write"},
                           {"segment.bytes", "1024"},
                           {"retention.bytes", "2000"},
                           {"retention.max.bytes", "4000"}};
    kn_channel *ch = open_ret(kv, 4);
    kn_seek sk = {KN_SEEK_START, 0, 0};
    kn_cursor *c = NULL;
    kn_channel_stats st;
    assert_int_equal(ch->ops->cursor_open(ch, "stuck", &sk, NULL, &c, NULL),
                     KN_OK);
    ch->ops->cursor_close(c);
    assert_int_equal(lt_append_range(ch, "e", 0, 60, 100), KN_OK);
    ch->ops->stats(ch, &st);
    assert_true(st.retention_forced > 0);
    assert_true(st.first_offset > 0);
    assert_true(st.stored_bytes <= 4000);
    assert_true(logged_has("forces deleting"));
    assert_true(logged_has("stuck@0"));
    /* the stuck group resumes at the oldest retained event */
    assert_int_equal(ch->ops->cursor_open(ch, "stuck", NULL, NULL, &c, NULL),
                     KN_OK);
    uint64_t expect = st.first_offset;
    assert_int_equal(lt_drain(c, &expect, "e", 0),
                     (int)(60 - st.first_offset));
    assert_true(logged_has("resuming at the oldest retained event"));
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
}

static void test_reader_keeps_deleted_segment(void **state)
{
    (void)state;
    /* a cursor in the middle of a segment that retention deletes keeps
     * reading it, then jumps to the oldest retained segment */
    const char *kv[][2] = {{"durability", "write"},
                           {"segment.bytes", "1024"},
                           {"retention.max.bytes", "2500"}};
    kn_channel *ch = open_ret(kv, 3);
    kn_seek sk = {KN_SEEK_START, 0, 0};
    kn_cursor *c = NULL;
    assert_int_equal(ch->ops->cursor_open(ch, "mid", &sk, NULL, &c, NULL),
                     KN_OK);
    assert_int_equal(lt_append_range(ch, "e", 0, 5, 100), KN_OK);
    kn_record r;
    assert_int_equal(ch->ops->cursor_next(c, &r, 1), 1);
    ce_event_unref(r.event);
    assert_int_equal(lt_append_range(ch, "e", 5, 60, 100), KN_OK);
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_true(st.first_offset > 10);
    kn_record recs[64];
    uint64_t last = 0, got = 0;
    int n;
    while ((n = ch->ops->cursor_next(c, recs, 64)) > 0)
        for (int i = 0; i < n; i++) {
            assert_true(recs[i].offset > last || got == 0);
            last = recs[i].offset;
            got++;
            ce_event_unref(recs[i].event);
        }
    assert_int_equal(n, 0);
    assert_int_equal(last, 59);
    assert_true(logged_has("deleted by retention"));
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
}

static void test_by_age(void **state)
{
    (void)state;
    const char *kv[][2] = {{"durability", "write"},
                           {"segment.bytes", "1024"},
                           {"retention.ms", "150"}};
    kn_channel *ch = open_ret(kv, 3);
    kn_channel_stats st;
    assert_int_equal(lt_append_range(ch, "e", 0, 30, 100), KN_OK);
    ch->ops->stats(ch, &st);
    uint64_t segs = st.segments;
    assert_true(segs > 2);
    /* no more appends: the writer's timer expires old segments */
    for (int i = 0; i < 500; i++) {
        ch->ops->stats(ch, &st);
        if (st.segments == 1)
            break;
        usleep(10000);
    }
    assert_int_equal(st.segments, 1); /* only the active one stays */
    assert_true(st.retention_deleted_events > 0);
    assert_int_equal(st.first_offset, st.retention_deleted_events);
    kn_channel_close(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_by_size,
                                        lt_logcap_setup, lt_logcap_teardown),
        cmocka_unit_test_setup_teardown(test_cursor_protects,
                                        lt_logcap_setup, lt_logcap_teardown),
        cmocka_unit_test_setup_teardown(test_forced,
                                        lt_logcap_setup, lt_logcap_teardown),
        cmocka_unit_test_setup_teardown(test_reader_keeps_deleted_segment,
                                        lt_logcap_setup, lt_logcap_teardown),
        cmocka_unit_test_setup_teardown(test_by_age,
                                        lt_logcap_setup, lt_logcap_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
