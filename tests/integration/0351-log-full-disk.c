/*
 * 0351-log-full-disk: appends while the disk is full fail with
 * KN_NOSPACE and store nothing of the failed call, the partial write is
 * cut away so the segment stays valid, stats.healthy goes false, and
 * once space is back appends succeed again (healthy true) with nothing
 * acknowledged lost across a reopen. Two ways to fill the disk:
 * RLIMIT_FSIZE (writes past the limit fail with EFBIG) and, when mount
 * is permitted, a small tmpfs (ENOSPC, including during segment roll and
 * checkpoint writes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "../unit/logtest.h"

static char top[64], dir[128];

static int setup(void **state)
{
    (void)state;
    tu_mkdtemp(top, sizeof top, "log-full");
    snprintf(dir, sizeof dir, "%s/log", top);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    umount2(top, MNT_DETACH); /* harmless when nothing is mounted */
    tu_rmrf(top);
    return 0;
}

static uint64_t head_of(kn_channel *ch, kn_channel_stats *st)
{
    ch->ops->stats(ch, st);
    return st->head_offset;
}

/* Appends single events until one fails; returns how many succeeded. */
static unsigned fill(kn_channel *ch, unsigned from, size_t pad, int *fail)
{
    unsigned i = from;
    for (;; i++) {
        int rc = lt_append_range(ch, "e", i, i + 1, pad);
        if (rc != KN_OK) {
            *fail = rc;
            return i - from;
        }
        if (i - from > 100000)
            return i - from;
    }
}

/* Every offset below head holds event "e-<offset>". */
static void verify_all(kn_channel *ch, uint64_t head)
{
    kn_seek sk = {KN_SEEK_START, 0, 0};
    kn_cursor *c = NULL;
    assert_int_equal(ch->ops->cursor_open(ch, "verify", &sk, NULL, &c, NULL),
                     KN_OK);
    uint64_t expect = 0;
    assert_int_equal(lt_drain(c, &expect, "e", 0), (int)head);
    ch->ops->cursor_close(c);
    ch->ops->cursor_delete(ch, "verify");
}

static void test_rlimit_fsize(void **state)
{
    (void)state;
    struct rlimit old, lim;
    kn_channel_stats st;
    int fail = 0;
    kn_channel *ch = lt_open("log", dir, NULL, NULL);
    assert_non_null(ch);
    assert_int_equal(lt_append_range(ch, "e", 0, 5, 100), KN_OK);
    char seg[160];
    snprintf(seg, sizeof seg, "%s/%020d.log", dir, 0);
    long size = lt_file_size(seg);

    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)size + 3000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

    unsigned ok = fill(ch, 5, 200, &fail);
    assert_int_equal(fail, KN_NOSPACE);
    assert_true(ok > 0);
    uint64_t head = head_of(ch, &st);
    assert_int_equal(head, 5 + ok);
    assert_false(st.healthy);
    assert_true(st.append_errors >= 1);
    /* the failed write left nothing behind */
    assert_int_equal(lt_file_size(seg), (long)st.stored_bytes);
    /* a batch fails as a whole */
    ce_event *b[3] = {tu_event("e", (unsigned)head, 200),
                      tu_event("e", (unsigned)head + 1, 200),
                      tu_event("e", (unsigned)head + 2, 200)};
    assert_int_equal(tu_append(ch, b, 3, NULL), KN_NOSPACE);
    assert_int_equal(head_of(ch, &st), head);
    /* readers see exactly the acknowledged events */
    verify_all(ch, head);

    /* space is back: the same batch goes in, healthy again */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    uint64_t first;
    assert_int_equal(tu_append(ch, b, 3, &first), KN_OK);
    assert_int_equal(first, head);
    for (int i = 0; i < 3; i++)
        ce_event_unref(b[i]);
    assert_int_equal(head_of(ch, &st), head + 3);
    assert_true(st.healthy);
    kn_channel_close(ch);

    ch = lt_open("log", dir, NULL, NULL);
    assert_non_null(ch);
    assert_int_equal(head_of(ch, &st), head + 3);
    verify_all(ch, head + 3);
    kn_channel_close(ch);
}

static void test_tmpfs_enospc(void **state)
{
    (void)state;
    if (mount("tmpfs", top, "tmpfs", 0, "size=256k") != 0) {
        fprintf(stderr, "tmpfs mount not permitted (%s); skipping\n",
                strerror(errno));
        skip();
    }
    kn_channel_stats st;
    int fail = 0;
    const char *kv[][2] = {{"segment.bytes", "16384"}};
    json_t *set = tu_settings(kv, 1);
    kn_err err = {0};
    kn_channel *ch = lt_open("log", dir, set, &err);
    assert_non_null(ch);
    kn_cursor *c = NULL;
    kn_seek sk = {KN_SEEK_START, 0, 0};
    assert_int_equal(ch->ops->cursor_open(ch, "g", &sk, NULL, &c, NULL), KN_OK);

    /* fill the filesystem: segment rolls and writes hit ENOSPC */
    unsigned ok = fill(ch, 0, 900, &fail);
    assert_int_equal(fail, KN_NOSPACE);
    uint64_t head = head_of(ch, &st);
    assert_int_equal(head, ok);
    assert_false(st.healthy);
    assert_true(st.segments > 3);
    /* keep failing while full, nothing stored */
    assert_int_equal(lt_append_range(ch, "e", ok, ok + 1, 900), KN_NOSPACE);
    assert_int_equal(head_of(ch, &st), head);
    /* a checkpoint cannot be written either, and says so */
    int rc = ch->ops->cursor_commit(c, 0, 3);
    assert_true(rc == KN_OK || rc == KN_NOSPACE);
    verify_all(ch, head);

    /* free space: the consumer commits, retention would free segments;
     * here the operator removes a file that takes space */
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
    ch = lt_open("log", dir, set, &err);
    assert_non_null(ch);
    assert_int_equal(head_of(ch, &st), head);
    verify_all(ch, head);
    kn_channel_close(ch);
    /* grow the filesystem (the same as freeing space) */
    assert_int_equal(mount("tmpfs", top, "tmpfs", MS_REMOUNT, "size=1m"),
                     0);
    ch = lt_open("log", dir, set, &err);
    assert_non_null(ch);
    assert_int_equal(lt_append_range(ch, "e", (unsigned)head,
                                     (unsigned)head + 20, 900), KN_OK);
    assert_true(head_of(ch, &st) == head + 20 && st.healthy);
    verify_all(ch, head + 20);
    kn_channel_close(ch);
    json_decref(set);
}

static void test_tmpfs_recover_live(void **state)
{
    (void)state;
    /* the same log keeps running through full → space freed */
    if (mount("tmpfs", top, "tmpfs", 0, "size=128k") != 0)
        skip();
    kn_channel_stats st;
    int fail = 0;
    kn_channel *ch = lt_open("log", dir, NULL, NULL);
    assert_non_null(ch);
    char filler[160];
    snprintf(filler, sizeof filler, "%s/filler", top);
    int fd = open(filler, O_WRONLY | O_CREAT, 0644);
    char buf[4096] = {0};
    for (int i = 0; i < 20; i++)
        assert_int_equal(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    close(fd);
    unsigned ok = fill(ch, 0, 500, &fail);
    assert_int_equal(fail, KN_NOSPACE);
    assert_false(head_of(ch, &st) != ok || st.healthy);
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(lt_append_range(ch, "e", ok, ok + 10, 500), KN_OK);
    assert_int_equal(head_of(ch, &st), ok + 10);
    assert_true(st.healthy);
    verify_all(ch, ok + 10);
    kn_channel_close(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rlimit_fsize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmpfs_enospc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmpfs_recover_live, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
