/*
 * 0010-deadline: kn_deadline_ms, the absolute time of a timed wait, on
 * both clocks: normalised nanoseconds, whole and fractional seconds,
 * zero and negative offsets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "common/common.h"

static int64_t ns_of(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void check(clockid_t clk, int64_t ms)
{
    struct timespec before, at, after;
    clock_gettime(clk, &before);
    kn_deadline_ms(&at, clk, ms);
    clock_gettime(clk, &after);
    assert_true(at.tv_nsec >= 0 && at.tv_nsec < 1000000000);
    assert_true(ns_of(&at) >= ns_of(&before) + ms * 1000000);
    assert_true(ns_of(&at) <= ns_of(&after) + ms * 1000000);
}

static void test_deadline(void **state)
{
    (void)state;
    static const int64_t ms[] = {0, 1, 200, 999, 1000, 1500, 86400000, -1,
                                 -1500};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
        check(CLOCK_REALTIME, ms[i]);
        check(CLOCK_MONOTONIC, ms[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
