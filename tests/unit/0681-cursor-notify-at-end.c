/*
 * 0681-cursor-notify-at-end: a reader that consumes exactly what is
 * stored (cursor_next returns `max` records and the log has no more) must
 * still be woken by the next append. The dispatcher's feed reads batches
 * of a fixed size; before the fix, a batch that ended exactly at the end
 * of the log left the cursor unarmed and delivery stalled under load.
 * Checked on the log and memory backends.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/testutil.h"

static void append(kn_channel *ch, int n, int base)
{
    ce_event *evs[16];
    for (int i = 0; i < n; i++)
        evs[i] = tu_event("e", (unsigned)(base + i), 0);
    assert_int_equal(tu_append(ch, evs, (size_t)n, NULL), KN_OK);
    for (int i = 0; i < n; i++)
        ce_event_unref(evs[i]);
}

static void check_backend(const char *backend)
{
    char dir[64];
    tu_mkdtemp(dir, sizeof dir, "0681");
    json_t *settings = json_pack("{s:s}", "durability", "write");
    kn_channel_config cfg = {.ns = "default", .name = "b", .data_dir = dir,
                             .settings = settings};
    kn_channel *ch = NULL;
    kn_err err = {0};
    assert_int_equal(kn_channel_open(backend, &cfg, &ch, &err), KN_OK);
    kn_seek start = {.kind = KN_SEEK_START};
    kn_cursor *cur = NULL;
    assert_int_equal(ch->ops->cursor_open(ch, "g", &start, NULL, &cur, &err),
                     KN_OK);
    int fd = ch->ops->cursor_fd(cur);
    int base = 0;
    for (int round = 0; round < 20; round++) {
        int n = 1 + round % 4;
        append(ch, n, base);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 5000), 1); /* woken by the append */
        ch->ops->cursor_drain_notify(cur);
        kn_record recs[8];
        int got = ch->ops->cursor_next(cur, recs, (size_t)n); /* exactly */
        assert_int_equal(got, n);
        for (int i = 0; i < got; i++) {
            assert_int_equal(recs[i].offset, (uint64_t)(base + i));
            ce_event_unref(recs[i].event);
        }
        base += n;
    }
    ch->ops->cursor_close(cur);
    kn_channel_close(ch);
    json_decref(settings);
    assert_int_equal(tu_rmrf(dir), 0);
}

static void test_log(void **state)
{
    (void)state;
    check_backend("log");
}

static void test_memory(void **state)
{
    (void)state;
    check_backend("memory");
}

int main(void)
{
    kn_channels_register_builtin();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
