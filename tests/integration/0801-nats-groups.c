/*
 * 0801-nats-groups: cursors of the NATS channel against a real
 * nats-server. Two channel instances (two connections, as two knit
 * processes would have) opening the same group split the events between
 * them; uncommitted events of a closed cursor go to the other at once;
 * held events are kept alive past ack-wait; seeks by sequence, time,
 * START and END; a seek by one process while another shares the group.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "nats_test.h"

static kn_cursor *cur_open(kn_channel *ch, const char *group,
                           const kn_seek *sk)
{
    kn_cursor *c = NULL;
    kn_err err = {0};
    int rc = ch->ops->cursor_open(ch, group, sk, NULL, &c, &err);
    if (rc != KN_OK)
        fprintf(stderr, "cursor_open: %s\n", err.msg);
    assert_int_equal(rc, KN_OK);
    return c;
}

static void seek(kn_cursor *c, kn_seek_kind kind, uint64_t off, int64_t t)
{
    kn_seek sk = {kind, off, t};
    kn_err err = {0};
    int rc = c->channel->ops->cursor_seek(c, &sk, &err);
    if (rc != KN_OK)
        fprintf(stderr, "seek: %s\n", err.msg);
    assert_int_equal(rc, KN_OK);
}

static void append_n(kn_channel *ch, const char *prefix, unsigned from,
                     unsigned n)
{
    for (unsigned i = from; i < from + n; i++) {
        ce_event *ev = tu_event(prefix, i, 0);
        assert_int_equal(tu_append(ch, &ev, 1, NULL), KN_OK);
        ce_event_unref(ev);
    }
}

/* Reads what is there now (up to timeout) and commits it. */
static size_t drain(kn_cursor *c, uint8_t *seen, size_t nseen,
                    int timeout_ms, size_t *dups)
{
    kn_record recs[64];
    size_t n = tu_read(c, recs, 64, timeout_ms), top = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(recs[i].offset < nseen);
        if (seen[recs[i].offset]++)
            (*dups)++;
        if (recs[i].offset + 1 > top)
            top = recs[i].offset + 1;
    }
    tu_release(recs, n);
    if (n)
        assert_int_equal(c->channel->ops->cursor_commit(c, 0, top), KN_OK);
    return n;
}

static void test_split(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "split");
    const char *kv[][2] = {{"fetch-batch", "8"}};
    kn_channel *ch1 = nt_open_ch(b, kv, 1), *ch2 = nt_open_ch(b, kv, 1);
    kn_seek start = {KN_SEEK_START, 0, 0};
    kn_cursor *c1 = cur_open(ch1, "workers", &start);
    kn_seek committed = {KN_SEEK_COMMITTED, 0, 0};
    kn_cursor *c2 = cur_open(ch2, "workers", &committed);
    enum { N = 200 };
    uint8_t seen[N + 1] = {0};
    size_t got1 = 0, got2 = 0, dups = 0;

    append_n(ch1, b, 0, N);
    int64_t end = tu_now_ms() + 15000;
    while (got1 + got2 - dups < N && tu_now_ms() < end) {
        got1 += drain(c1, seen, sizeof seen, 50, &dups);
        got2 += drain(c2, seen, sizeof seen, 50, &dups);
    }
    fprintf(stderr, "split: %zu + %zu (%zu duplicates)\n", got1, got2,
            dups);
    for (unsigned i = 1; i <= N; i++)
        assert_true(seen[i] >= 1);
    assert_true(got1 > 0);
    assert_true(got2 > 0);
    assert_int_equal(dups, 0);

    /* c1 holds 5 events without committing and closes: c2 gets them
     * at once (far sooner than the 30 s ack-wait). */
    kn_record recs[8];
    ch2->ops->cursor_close(c2);
    append_n(ch1, b, N, 5);
    assert_int_equal(tu_read(c1, recs, 5, 5000), 5);
    tu_release(recs, 5);
    c2 = cur_open(ch2, "workers", &committed);
    int64_t t0 = tu_now_ms();
    ch1->ops->cursor_close(c1);
    assert_int_equal(tu_read(c2, recs, 5, 5000), 5);
    assert_true(tu_now_ms() - t0 < 5000);
    for (int i = 0; i < 5; i++)
        assert_in_range(recs[i].offset, N + 1, N + 5);
    tu_release(recs, 5);
    ch2->ops->cursor_close(c2);
    kn_channel_close(ch1);
    kn_channel_close(ch2);
}

/* Held events get keep-alives, so ack-wait (1 s here) does not hand them
 * to the other member of the group while this one still works on them. */
static void test_keep_alive(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "alive");
    const char *kv[][2] = {{"ack-wait", "PT1S"}};
    kn_channel *ch1 = nt_open_ch(b, kv, 1), *ch2 = nt_open_ch(b, kv, 1);
    kn_seek start = {KN_SEEK_START, 0, 0};
    kn_seek committed = {KN_SEEK_COMMITTED, 0, 0};
    kn_cursor *c1 = cur_open(ch1, "slow", &start);
    kn_record r;

    append_n(ch1, b, 0, 1);
    assert_int_equal(tu_read(c1, &r, 1, 5000), 1);
    kn_cursor *c2 = cur_open(ch2, "slow", &committed);
    kn_record r2;
    assert_int_equal(tu_read(c2, &r2, 1, 2500), 0); /* 2.5 x ack-wait */
    assert_int_equal(ch1->ops->cursor_commit(c1, 0, r.offset + 1), KN_OK);
    ce_event_unref(r.event);
    ch1->ops->cursor_close(c1);
    assert_int_equal(tu_read(c2, &r2, 1, 300), 0); /* acked: gone */
    ch2->ops->cursor_close(c2);
    kn_channel_close(ch1);
    kn_channel_close(ch2);
}

static void test_seeks(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "seek");
    kn_channel *ch = nt_open_ch(b, NULL, 0);
    kn_seek start = {KN_SEEK_START, 0, 0};
    kn_cursor *c = cur_open(ch, "s", &start);
    kn_record recs[16];

    append_n(ch, b, 0, 5);
    tu_sleep_ms(20); /* distinct stored times around the TIME seek */
    append_n(ch, b, 5, 5);
    assert_int_equal(tu_read(c, recs, 10, 5000), 10);
    int64_t t6 = recs[5].timestamp_ns;
    for (int i = 0; i < 10; i++)
        assert_int_equal(recs[i].offset, (uint64_t)i + 1);
    assert_true(recs[5].timestamp_ns >= recs[4].timestamp_ns + 10000000);
    tu_release(recs, 10);

    seek(c, KN_SEEK_OFFSET, 4, 0);
    assert_int_equal(tu_read(c, recs, 7, 5000), 7);
    assert_int_equal(recs[0].offset, 4);
    assert_int_equal(recs[6].offset, 10);
    tu_release(recs, 7);

    seek(c, KN_SEEK_TIME, 0, t6);
    assert_int_equal(tu_read(c, recs, 5, 5000), 5);
    assert_int_equal(recs[0].offset, 6);
    tu_release(recs, 5);

    seek(c, KN_SEEK_START, 0, 0);
    assert_int_equal(tu_read(c, recs, 10, 5000), 10);
    assert_int_equal(recs[0].offset, 1);
    tu_release(recs, 10);

    seek(c, KN_SEEK_END, 0, 0);
    assert_int_equal(tu_read(c, recs, 1, 300), 0);
    append_n(ch, b, 10, 1);
    assert_int_equal(tu_read(c, recs, 1, 5000), 1);
    assert_int_equal(recs[0].offset, 11);
    tu_release(recs, 1);

    /* an offset past the end is clamped to the end (as on the log) */
    seek(c, KN_SEEK_OFFSET, 100, 0);
    append_n(ch, b, 11, 2);
    assert_int_equal(tu_read(c, recs, 3, 1000), 2);
    assert_int_equal(recs[0].offset, 12);
    assert_int_equal(recs[1].offset, 13);
    tu_release(recs, 2);

    /* a time whose fraction starts with a zero (cnats 3.4 would send
     * ".05..." as ".5...", half a second later) */
    struct timespec now;
    do {
        tu_sleep_ms(1);
        clock_gettime(CLOCK_REALTIME, &now);
    } while (now.tv_nsec < 20000000L || now.tv_nsec >= 60000000L);
    int64_t t_zero = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
    tu_sleep_ms(2);
    append_n(ch, b, 14, 2); /* offsets 14, 15 */
    seek(c, KN_SEEK_TIME, 0, t_zero);
    assert_int_equal(tu_read(c, recs, 3, 1000), 2);
    assert_int_equal(recs[0].offset, 14);
    tu_release(recs, 2);

    kn_seek bad = {(kn_seek_kind)42, 0, 0};
    kn_err err = {0};
    assert_int_equal(ch->ops->cursor_seek(c, &bad, &err), KN_INVAL);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
}

/* One process seeks the shared group back to the start; the other keeps
 * reading from the re-created consumer. */
static void test_seek_shared(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "shared");
    kn_channel *ch1 = nt_open_ch(b, NULL, 0), *ch2 = nt_open_ch(b, NULL, 0);
    kn_seek start = {KN_SEEK_START, 0, 0};
    kn_seek committed = {KN_SEEK_COMMITTED, 0, 0};
    kn_cursor *c1 = cur_open(ch1, "g", &start);
    kn_cursor *c2 = cur_open(ch2, "g", &committed);
    uint8_t seen[64] = {0};
    size_t got = 0, dups = 0;

    append_n(ch1, b, 0, 10);
    int64_t end = tu_now_ms() + 10000;
    while (got < 10 && tu_now_ms() < end) {
        got += drain(c1, seen, sizeof seen, 50, &dups);
        got += drain(c2, seen, sizeof seen, 50, &dups);
    }
    assert_int_equal(got, 10);

    seek(c1, KN_SEEK_START, 0, 0); /* replay: 10 again, shared */
    append_n(ch1, b, 10, 10);
    memset(seen, 0, sizeof seen);
    got = dups = 0;
    size_t got2 = 0;
    end = tu_now_ms() + 15000;
    while (got + got2 - dups < 20 && tu_now_ms() < end) {
        got += drain(c1, seen, sizeof seen, 50, &dups);
        got2 += drain(c2, seen, sizeof seen, 50, &dups);
    }
    for (unsigned i = 1; i <= 20; i++)
        assert_true(seen[i] >= 1);
    ch1->ops->cursor_close(c1);
    ch2->ops->cursor_close(c2);
    kn_channel_close(ch1);
    kn_channel_close(ch2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_seeks),
        cmocka_unit_test(test_seek_shared),
    };
    return cmocka_run_group_tests(tests, nt_group_setup, nt_group_teardown);
}
