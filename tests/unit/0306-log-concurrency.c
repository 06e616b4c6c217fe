/*
 * 0306-log-concurrency: many threads append at once; every append is
 * acknowledged, offsets are unique and consecutive, each thread's events
 * are stored in the order it submitted them, and the writer shares
 * fdatasyncs between them (group commit: fsyncs < appends). A cursor's
 * notify fd wakes poll() when another thread's append commits, and a
 * reader following the tail sees every event exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <poll.h>

#include <cmocka.h>

#include "logtest.h"

#define THREADS 8
#define PER_THREAD 150

static char dir[64];

static int setup(void **state)
{
    (void)state;
    tu_mkdtemp(dir, sizeof dir, "log-conc");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(dir);
    return 0;
}

typedef struct ack {
    tu_wait *w;
    uint64_t offset;
    int status;
} ack;

static void ack_cb(void *arg, int status, uint64_t first)
{
    ack *a = arg;
    a->offset = first;
    a->status = status;
    tu_wait_cb(a->w, status, first);
}

typedef struct worker {
    kn_channel *ch;
    int id;
    ack acks[PER_THREAD];
    tu_wait w;
} worker;

/* Submits all appends without waiting in between, then waits for them. */
static void *work(void *arg)
{
    worker *wk = arg;
    char prefix[16];
    snprintf(prefix, sizeof prefix, "t%d", wk->id);
    tu_wait_init(&wk->w);
    for (unsigned i = 0; i < PER_THREAD; i++) {
        ce_event *ev = tu_event(prefix, i, 60);
        wk->acks[i] = (ack){&wk->w, UINT64_MAX, 1};
        if (kn_channel_append(wk->ch, &ev, 1, ack_cb, &wk->acks[i]) != KN_OK)
            abort();
        ce_event_unref(ev);
        if (i % 10 == 9)
            sched_yield();
    }
    tu_wait_for(&wk->w, PER_THREAD, -1);
    return NULL;
}

typedef struct tailer {
    kn_channel *ch;
    kn_cursor *c;
    int got;
    int want;
    int wakeups;
    bool order_ok;
} tailer;

/* Follows the tail with poll() only: no sleeps, no busy loop. */
static void *tail(void *arg)
{
    tailer *t = arg;
    kn_record recs[32];
    uint64_t next = 0;
    t->order_ok = true;
    while (t->got < t->want) {
        struct pollfd p = {t->ch->ops->cursor_fd(t->c), POLLIN, 0};
        if (poll(&p, 1, 10000) != 1)
            break;
        t->wakeups++;
        t->ch->ops->cursor_drain_notify(t->c);
        int n;
        while ((n = t->ch->ops->cursor_next(t->c, recs, 32)) > 0)
            for (int i = 0; i < n; i++) {
                t->order_ok &= recs[i].offset == next++;
                t->got++;
                ce_event_unref(recs[i].event);
            }
        if (n < 0)
            break;
    }
    return NULL;
}

static void test_concurrent_appends(void **state)
{
    (void)state;
    kn_err err = {0};
    kn_channel *ch = lt_open("log", dir, NULL, &err); /* fsync, default */
    assert_non_null(ch);
    static worker wk[THREADS];
    pthread_t th[THREADS], tt;
    tailer t = {ch, NULL, 0, THREADS * PER_THREAD, 0, false};
    kn_seek sk = {KN_SEEK_END, 0, 0};
    assert_int_equal(ch->ops->cursor_open(ch, "tail", &sk, NULL, &t.c, NULL),
                     KN_OK);
    assert_int_equal(pthread_create(&tt, NULL, tail, &t), 0);
    for (int i = 0; i < THREADS; i++) {
        wk[i].ch = ch;
        wk[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, work, &wk[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_join(tt, NULL);

    /* all acked, unique offsets, per-thread submission order */
    static bool seen[THREADS * PER_THREAD];
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < PER_THREAD; j++) {
            ack *a = &wk[i].acks[j];
            assert_int_equal(a->status, KN_OK);
            assert_true(a->offset < THREADS * PER_THREAD);
            assert_false(seen[a->offset]);
            seen[a->offset] = true;
            if (j > 0)
                assert_true(a->offset > wk[i].acks[j - 1].offset);
        }
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_int_equal(st.appended_events, THREADS * PER_THREAD);
    fprintf(stderr, "appends=%d fsyncs=%llu tail wakeups=%d\n",
            THREADS * PER_THREAD, (unsigned long long)st.fsyncs, t.wakeups);
    assert_true(st.fsyncs < (uint64_t)(THREADS * PER_THREAD)); /* shared */
    assert_int_equal(t.got, THREADS * PER_THREAD);
    assert_true(t.order_ok);
    ch->ops->cursor_close(t.c);

    /* the acked offset holds the event that was appended */
    kn_cursor *c = NULL;
    sk = (kn_seek){KN_SEEK_START, 0, 0};
    assert_int_equal(ch->ops->cursor_open(ch, "check", &sk, NULL, &c, NULL),
                     KN_OK);
    kn_record recs[64];
    int n;
    while ((n = ch->ops->cursor_next(c, recs, 64)) > 0)
        for (int i = 0; i < n; i++) {
            int tid;
            unsigned seq;
            const char *id = ce_event_get(recs[i].event, "id", NULL, NULL);
            assert_int_equal(sscanf(id, "t%d-%u", &tid, &seq), 2);
            assert_int_equal(wk[tid].acks[seq].offset, recs[i].offset);
            ce_event_unref(recs[i].event);
        }
    assert_int_equal(n, 0);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
}

static void test_notify_fd(void **state)
{
    (void)state;
    kn_channel *ch = lt_open("log", dir, NULL, NULL);
    assert_non_null(ch);
    kn_cursor *a = NULL, *b = NULL;
    kn_seek sk = {KN_SEEK_END, 0, 0};
    assert_int_equal(ch->ops->cursor_open(ch, "a", &sk, NULL, &a, NULL), KN_OK);
    assert_int_equal(ch->ops->cursor_open(ch, "b", &sk, NULL, &b, NULL), KN_OK);
    kn_record r;
    /* caught up: read until empty, then the fd stays quiet */
    ch->ops->cursor_drain_notify(a);
    ch->ops->cursor_drain_notify(b);
    assert_int_equal(ch->ops->cursor_next(a, &r, 1), 0);
    assert_int_equal(ch->ops->cursor_next(b, &r, 1), 0);
    struct pollfd p[2] = {{ch->ops->cursor_fd(a), POLLIN, 0},
                          {ch->ops->cursor_fd(b), POLLIN, 0}};
    assert_int_equal(poll(p, 2, 50), 0);
    /* a commit wakes both */
    assert_int_equal(lt_append_range(ch, "n", 0, 1, 0), KN_OK);
    assert_int_equal(poll(p, 2, 5000), 2);
    ch->ops->cursor_drain_notify(a);
    assert_int_equal(ch->ops->cursor_next(a, &r, 1), 1);
    ce_event_unref(r.event);
    assert_int_equal(ch->ops->cursor_next(a, &r, 1), 0);
    p[0].revents = 0;
    assert_int_equal(poll(p, 1, 20), 0);
    ch->ops->cursor_close(a);
    ch->ops->cursor_close(b);
    kn_channel_close(ch);
}

static void test_close_flushes(void **state)
{
    (void)state;
    kn_channel *ch = lt_open("log", dir, NULL, NULL);
    assert_non_null(ch);
    tu_wait w;
    tu_wait_init(&w);
    ce_event *ev = tu_event("c", 0, 10);
    for (int i = 0; i < 50; i++)
        assert_int_equal(kn_channel_append(ch, &ev, 1, tu_wait_cb, &w),
                         KN_OK);
    ce_event_unref(ev);
    kn_channel_close(ch); /* runs every pending completion */
    assert_int_equal(w.done, 50);
    assert_int_equal(w.status, KN_OK);
    ch = lt_open("log", dir, NULL, NULL);
    kn_channel_stats st;
    ch->ops->stats(ch, &st);
    assert_int_equal(st.head_offset, 50);
    kn_channel_close(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_concurrent_appends, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_notify_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_flushes, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
