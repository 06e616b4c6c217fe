/*
 * 0307-channel-defer: the per-thread scope that batches writer wake-ups
 * (kn_channel_defer_begin/end, kn_channel_defer_wake): outside a scope a
 * backend must wake at once; inside, each distinct wake runs exactly once
 * when the outermost scope ends; a full table falls back to waking at
 * once. Then the log: a burst of appends made inside a scope (as an HTTP
 * loop does) all complete once the scope ends, in order; an append by
 * another thread during the scope completes too (at the latest when the
 * scope ends: it may find the wake-up already pending).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "logtest.h"

static int calls[20];

static void count_call(void *arg)
{
    calls[(int *)arg - calls]++;
}

static void test_scope_rules(void **state)
{
    (void)state;
    memset(calls, 0, sizeof calls);
    /* no scope: the caller wakes now */
    assert_false(kn_channel_defer_wake(count_call, &calls[0]));
    kn_channel_defer_begin();
    assert_true(kn_channel_defer_wake(count_call, &calls[0]));
    assert_true(kn_channel_defer_wake(count_call, &calls[0])); /* dedup */
    kn_channel_defer_begin(); /* nested */
    assert_true(kn_channel_defer_wake(count_call, &calls[1]));
    kn_channel_defer_end();
    assert_int_equal(calls[0] + calls[1], 0); /* inner end: nothing yet */
    kn_channel_defer_end();
    assert_int_equal(calls[0], 1);
    assert_int_equal(calls[1], 1);
    kn_channel_defer_end(); /* unbalanced end: harmless */
    assert_int_equal(calls[0], 1);
    assert_false(kn_channel_defer_wake(count_call, &calls[0]));
}

static void test_table_full(void **state)
{
    (void)state;
    memset(calls, 0, sizeof calls);
    kn_channel_defer_begin();
    int deferred = 0;
    for (int i = 0; i < 20; i++)
        deferred += kn_channel_defer_wake(count_call, &calls[i]);
    assert_true(deferred >= 1 && deferred < 20); /* bounded table */
    kn_channel_defer_end();
    for (int i = 0; i < deferred; i++)
        assert_int_equal(calls[i], 1);
    for (int i = deferred; i < 20; i++)
        assert_int_equal(calls[i], 0); /* those the backend woke itself */
}

#define BURST 40

typedef struct other {
    kn_channel *ch;
    int status;
} other;

/* Another thread's append while the main thread's scope is open. */
static void *append_other(void *arg)
{
    other *o = arg;
    ce_event *ev = tu_event("other", 0, 10);
    o->status = tu_append(o->ch, &ev, 1, NULL);
    ce_event_unref(ev);
    return NULL;
}

static void test_log_burst(void **state)
{
    char dir[64];
    kn_err err = {0};
    (void)state;
    tu_mkdtemp(dir, sizeof dir, "log-defer");
    kn_channel *ch = lt_open("log", dir, NULL, &err);
    assert_non_null(ch);

    tu_wait w;
    tu_wait_init(&w);
    kn_channel_defer_begin();
    for (unsigned i = 0; i < BURST; i++) {
        ce_event *ev = tu_event("b", i, 30);
        assert_int_equal(kn_channel_append(ch, &ev, 1, tu_wait_cb, &w),
                         KN_OK);
        ce_event_unref(ev);
    }
    /* a thread outside the scope appends meanwhile */
    other o = {ch, 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, append_other, &o), 0);
    usleep(20000); /* let it queue its append (order is not asserted) */
    kn_channel_defer_end();
    assert_int_equal(tu_wait_for(&w, BURST, 30000), BURST);
    assert_int_equal(w.status, KN_OK);
    pthread_join(t, NULL);
    assert_int_equal(o.status, KN_OK);

    /* all stored: the burst in submission order, plus the other one */
    kn_cursor *c = NULL;
    kn_seek start = {.kind = KN_SEEK_START};
    assert_int_equal(ch->ops->cursor_open(ch, "g", &start, NULL, &c, &err),
                     KN_OK);
    kn_record recs[BURST + 1];
    int got = 0, n;
    unsigned next = 0;
    bool seen_other = false;
    while ((n = ch->ops->cursor_next(c, recs, BURST + 1 - got)) > 0) {
        for (int i = 0; i < n; i++) {
            const char *id = ce_event_get(recs[i].event, "id", NULL, NULL);
            char want[32];
            snprintf(want, sizeof want, "b-%u", next);
            if (strcmp(id, "other-0") == 0) {
                seen_other = true;
            } else {
                assert_string_equal(id, want);
                next++;
            }
            ce_event_unref(recs[i].event);
        }
        got += n;
    }
    assert_int_equal(got, BURST + 1);
    assert_int_equal(next, BURST);
    assert_true(seen_other);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
    tu_rmrf(dir);
}

int main(void)
{
    kn_channels_register_builtin();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_rules),
        cmocka_unit_test(test_table_full),
        cmocka_unit_test(test_log_burst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
