/*
 * 0304-log-recovery: what open does with damaged files.
 * - torn tail (cut inside a record), garbage tail, a batch cut in the
 *   middle: truncated to the last complete append, logged with counts;
 * - a corrupt record followed by intact ones in the active segment: open
 *   fails with KN_CORRUPT naming file and byte (recovery=truncate drops);
 * - a corrupt record in a sealed segment: reads stop there with
 *   KN_CORRUPT, a seek gets past it;
 * - a lost index is rebuilt, a torn new-segment header is rewritten, a
 *   missing segment in the middle is reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>

#include <cmocka.h>

#include "channels/log/segment.h"
#include "logtest.h"

/* What the log wrote since the last call. */
static const char *logged(void)
{
    return lt_logcap_text(&lt_cap, true);
}

static kn_channel *open_with(const char *seg, const char *recovery,
                             kn_err *err)
{
    const char *kv[][2] = {{"segment.bytes", seg},
                           {"recovery", recovery}};
    json_t *set = tu_settings(kv, 2);
    kn_channel *ch = lt_open("log", lt_dir, set, err);
    json_decref(set);
    return ch;
}

static kn_channel *open_ok(const char *seg)
{
    kn_err err = {0};
    kn_channel *ch = open_with(seg, "strict", &err);
    if (!ch)
        fprintf(stderr, "open: %s\n", err.msg);
    assert_non_null(ch);
    return ch;
}

static char *seg_path(uint64_t base)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%020llu.log", lt_dir, (unsigned long long)base);
    return p;
}

/* Byte position of the record with offset `off` in segment `base`. */
static long rec_pos(uint64_t base, uint64_t off)
{
    int fd = open(seg_path(base), O_RDONLY);
    unsigned char h[KN_REC_HDR];
    long pos = KN_SEG_HDR;
    assert_true(fd >= 0);
    for (uint64_t o = base; o < off; o++) {
        assert_int_equal(pread(fd, h, sizeof h, pos), (ssize_t)sizeof h);
        pos += KN_REC_HDR + (long)kn_get32(h + 4);
    }
    close(fd);
    return pos;
}

static void flip(const char *path, long pos)
{
    int fd = open(path, O_RDWR);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, pos), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, pos), 1);
    close(fd);
}

static uint64_t head_of(kn_channel *ch)
{
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    return st.head_offset;
}

static int read_all(kn_channel *ch, uint64_t from, uint64_t *expect)
{
    kn_seek sk = {KN_SEEK_OFFSET, from, 0};
    kn_cursor *c = NULL;
    assert_int_equal(ch->ops->cursor_open(ch, "reader", &sk, NULL, &c, NULL),
                     KN_OK);
    *expect = from;
    int n = lt_drain(c, expect, "e", 0);
    ch->ops->cursor_close(c);
    return n;
}

static void test_torn_tail(void **state)
{
    (void)state;
    uint64_t expect;
    kn_channel *ch = open_ok("64Mi");
    assert_int_equal(lt_append_range(ch, "e", 0, 10, 50), KN_OK);
    kn_channel_close(ch);
    long end9 = rec_pos(0, 9), size = lt_file_size(seg_path(0));
    assert_int_equal(truncate(seg_path(0), end9 + 20), 0); /* mid-record */
    logged();
    ch = open_ok("64Mi");
    assert_int_equal(head_of(ch), 9);
    const char *msg = logged();
    assert_non_null(strstr(msg, "WARN"));
    assert_non_null(strstr(msg, "keeping 9 records"));
    assert_non_null(strstr(msg, "truncated 20 bytes"));
    assert_int_equal(lt_file_size(seg_path(0)), end9);
    assert_int_equal(read_all(ch, 0, &expect), 9);
    /* the log goes on from there */
    assert_int_equal(lt_append_range(ch, "e", 9, 12, 50), KN_OK);
    assert_int_equal(read_all(ch, 0, &expect), 12);
    kn_channel_close(ch);
    assert_true(lt_file_size(seg_path(0)) > size);

    /* garbage after the last record */
    FILE *f = fopen(seg_path(0), "ab");
    for (int i = 0; i < 300; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    ch = open_ok("64Mi");
    assert_int_equal(head_of(ch), 12);
    assert_non_null(strstr(logged(), "truncated 300 bytes"));
    assert_int_equal(read_all(ch, 0, &expect), 12);
    kn_channel_close(ch);

    /* zeros after the last record (preallocated, never written) */
    assert_int_equal(truncate(seg_path(0), lt_file_size(seg_path(0)) + 4096),
                     0);
    ch = open_ok("64Mi");
    assert_int_equal(head_of(ch), 12);
    kn_channel_close(ch);
}

static void test_torn_batch(void **state)
{
    (void)state;
    uint64_t expect;
    kn_channel *ch = open_ok("64Mi");
    assert_int_equal(lt_append_range(ch, "e", 0, 3, 50), KN_OK);
    ce_event *b[5];
    for (unsigned i = 0; i < 5; i++)
        b[i] = tu_event("e", 3 + i, 50);
    assert_int_equal(tu_append(ch, b, 5, NULL), KN_OK);
    for (unsigned i = 0; i < 5; i++)
        ce_event_unref(b[i]);
    kn_channel_close(ch);
    /* keep 3 whole records of the batch and half of the 4th */
    assert_int_equal(truncate(seg_path(0), rec_pos(0, 6) + 40), 0);
    logged();
    ch = open_ok("64Mi");
    assert_int_equal(head_of(ch), 3); /* the whole batch goes */
    assert_non_null(strstr(logged(), "dropping 3 records"));
    assert_int_equal(lt_file_size(seg_path(0)), rec_pos(0, 3));
    assert_int_equal(read_all(ch, 0, &expect), 3);
    kn_channel_close(ch);
}

static void test_corrupt_middle_active(void **state)
{
    (void)state;
    kn_err err = {0};
    kn_channel *ch = open_ok("64Mi");
    assert_int_equal(lt_append_range(ch, "e", 0, 10, 50), KN_OK);
    kn_channel_close(ch);
    long pos = rec_pos(0, 3);
    flip(seg_path(0), pos + KN_REC_HDR + 5);
    assert_null(open_with("64Mi", "strict", &err));
    assert_int_equal(err.status, KN_CORRUPT);
    char want[256];
    snprintf(want, sizeof want, "%s: corrupt record at byte %ld (offset 3)",
             seg_path(0), pos);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "recovery=truncate"));
    /* nothing was changed by the refused open */
    assert_int_equal(lt_file_size(seg_path(0)), rec_pos(0, 10));
    /* the operator's choice: drop from the damage on */
    ch = open_with("64Mi", "truncate", &err);
    assert_non_null(ch);
    assert_int_equal(head_of(ch), 3);
    kn_channel_close(ch);
}

static void test_corrupt_sealed(void **state)
{
    (void)state;
    kn_channel *ch = open_ok("1024");
    assert_int_equal(lt_append_range(ch, "e", 0, 30, 100), KN_OK);
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_true(st.segments >= 3);
    kn_channel_close(ch);
    /* damage the length field of offset 2 in the first, sealed segment */
    long pos2 = rec_pos(0, 2);
    flip(seg_path(0), pos2 + 5);
    logged();
    ch = open_ok("1024"); /* sealed segments are trusted by their index */
    kn_seek sk = {KN_SEEK_START, 0, 0};
    kn_cursor *c = NULL;
    assert_int_equal(ch->ops->cursor_open(ch, "r", &sk, NULL, &c, NULL), KN_OK);
    kn_record recs[8];
    assert_int_equal(ch->ops->cursor_next(c, recs, 8), 2);
    ce_event_unref(recs[0].event);
    ce_event_unref(recs[1].event);
    assert_int_equal(ch->ops->cursor_next(c, recs, 8), KN_CORRUPT);
    assert_int_equal(ch->ops->cursor_next(c, recs, 8), KN_CORRUPT);
    const char *msg = logged();
    char want[256];
    snprintf(want, sizeof want, "%s byte %ld", seg_path(0), pos2);
    assert_non_null(strstr(msg, want));
    assert_non_null(strstr(msg, "before offset 2"));
    /* seeking past the damage finds the next intact record */
    sk = (kn_seek){KN_SEEK_OFFSET, 3, 0};
    assert_int_equal(ch->ops->cursor_seek(c, &sk, NULL), KN_OK);
    uint64_t expect = 3;
    assert_int_equal(lt_drain(c, &expect, "e", 0), 27);
    assert_non_null(strstr(logged(), "corrupt region"));
    ch->ops->cursor_close(c);
    kn_channel_close(ch);

    /* without its index the sealed segment is scanned: open refuses */
    char idx[128];
    snprintf(idx, sizeof idx, "%s/%020d.idx", lt_dir, 0);
    assert_int_equal(unlink(idx), 0);
    kn_err err = {0};
    assert_null(open_with("1024", "strict", &err));
    assert_int_equal(err.status, KN_CORRUPT);
    assert_non_null(strstr(err.msg, "sealed segment"));
    assert_non_null(strstr(err.msg, seg_path(0)));
}

static void test_rebuild_and_repair(void **state)
{
    (void)state;
    uint64_t expect;
    kn_channel *ch = open_ok("1024");
    assert_int_equal(lt_append_range(ch, "e", 0, 30, 100), KN_OK);
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    uint64_t nseg = st.segments;
    kn_channel_close(ch);
    /* a lost index is rebuilt from the segment */
    char idx[128];
    snprintf(idx, sizeof idx, "%s/%020d.idx", lt_dir, 0);
    assert_int_equal(unlink(idx), 0);
    logged();
    ch = open_ok("1024");
    assert_non_null(strstr(logged(), "rebuilding"));
    assert_true(lt_file_size(idx) > 0);
    assert_int_equal(read_all(ch, 0, &expect), 30);
    kn_channel_close(ch);

    /* a crash while creating a segment leaves a short file: rewritten */
    int fd = open(seg_path(30), O_RDWR | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "KNITL", 5), 5);
    close(fd);
    /* the segment before it has an index; it is sealed */
    ch = open_ok("1024");
    ch->ops->stats(ch, &st);
    assert_int_equal(st.head_offset, 30);
    assert_int_equal(st.segments, nseg + 1);
    assert_int_equal(lt_append_range(ch, "e", 30, 35, 100), KN_OK);
    assert_int_equal(read_all(ch, 0, &expect), 35);
    kn_channel_close(ch);

    /* a segment missing in the middle is reported, not papered over */
    char moved[160];
    snprintf(moved, sizeof moved, "%s.moved", lt_dir);
    long second = 0;
    for (uint64_t b = 1; b < 30 && !second; b++)
        if (lt_file_size(seg_path(b)) > 0)
            second = (long)b;
    assert_true(second > 0);
    char secpath[128];
    snprintf(secpath, sizeof secpath, "%s", seg_path((uint64_t)second));
    long third = 0;
    for (uint64_t b = (uint64_t)second + 1; b < 35 && !third; b++)
        if (lt_file_size(seg_path(b)) > 0)
            third = (long)b;
    assert_true(third > 0);
    assert_int_equal(rename(secpath, moved), 0);
    kn_err err = {0};
    assert_null(open_with("1024", "strict", &err));
    assert_int_equal(err.status, KN_CORRUPT);
    assert_non_null(strstr(err.msg, "missing"));
    assert_int_equal(rename(moved, secpath), 0);
    ch = open_ok("1024");
    kn_channel_close(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_torn_tail,
                                        lt_logcap_setup, lt_logcap_teardown),
        cmocka_unit_test_setup_teardown(test_torn_batch,
                                        lt_logcap_setup, lt_logcap_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_active,
                                        lt_logcap_setup, lt_logcap_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_sealed,
                                        lt_logcap_setup, lt_logcap_teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_and_repair,
                                        lt_logcap_setup, lt_logcap_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
