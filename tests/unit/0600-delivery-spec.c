/*
 * 0600-delivery-spec: the pure parts of delivery — defaults, the backoff
 * formula (incl. saturation for huge retry counts), the retryable set,
 * Retry-After parsing and how it combines with backoff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sinks/sinks.h"

static kn_delivery_spec spec(kn_backoff_policy p, int64_t delay, int64_t max)
{
    kn_delivery_spec s;
    kn_delivery_spec_default(&s);
    s.policy = p;
    s.backoff_delay_ms = delay;
    s.backoff_max_ms = max;
    return s;
}

static void test_defaults(void **state)
{
    kn_delivery_spec s;
    (void)state;
    kn_delivery_spec_default(&s);
    assert_int_equal(s.retry, 10);
    assert_int_equal(s.policy, KN_BACKOFF_EXPONENTIAL);
    assert_int_equal(s.backoff_delay_ms, 200);
    assert_int_equal(s.backoff_max_ms, KN_DELIVERY_UNSET);
    assert_int_equal(s.retry_after_max_ms, 600000);
    assert_int_equal(s.format, KN_FORMAT_BINARY);
    assert_null(s.dead_letter_url);
    assert_int_equal(kn_delivery_spec_check(&s, NULL), KN_OK);
    /* default schedule: 0.2, 0.4, ... 102.4 s; 204.6 s in all */
    int64_t total = 0;
    for (int n = 1; n <= s.retry; n++)
        total += kn_backoff_ms(&s, n);
    assert_int_equal(kn_backoff_ms(&s, 10), 102400);
    assert_int_equal(total, 204600);
}

typedef struct bcase {
    kn_backoff_policy p;
    int64_t delay, max;
    int32_t n;
    int64_t want;
} bcase;

static void test_backoff_table(void **state)
{
    const int64_t M = INT64_MAX;
    const bcase cases[] = {
        {KN_BACKOFF_EXPONENTIAL, 200, -1, 0, 0},
        {KN_BACKOFF_EXPONENTIAL, 200, -1, -5, 0},
        {KN_BACKOFF_EXPONENTIAL, 200, -1, 1, 200},
        {KN_BACKOFF_EXPONENTIAL, 200, -1, 2, 400},
        {KN_BACKOFF_EXPONENTIAL, 200, -1, 3, 800},
        {KN_BACKOFF_EXPONENTIAL, 1000, -1, 31, 1000LL << 30},
        {KN_BACKOFF_EXPONENTIAL, 1, -1, 63, 1LL << 62},
        {KN_BACKOFF_EXPONENTIAL, 1, -1, 64, M},
        {KN_BACKOFF_EXPONENTIAL, 1000, -1, 55, M},     /* 1000 * 2^54 */
        {KN_BACKOFF_EXPONENTIAL, 1000, -1, 54, 1000LL << 53},
        {KN_BACKOFF_EXPONENTIAL, 1000, -1, INT32_MAX, M},
        {KN_BACKOFF_EXPONENTIAL, M, -1, 2, M},
        {KN_BACKOFF_EXPONENTIAL, 1000, 60000, 5, 16000},
        {KN_BACKOFF_EXPONENTIAL, 1000, 60000, 7, 60000},
        {KN_BACKOFF_EXPONENTIAL, 1000, 60000, INT32_MAX, 60000},
        {KN_BACKOFF_EXPONENTIAL, 1000, 0, 3, 0},
        {KN_BACKOFF_EXPONENTIAL, 0, -1, 40, 0},
        {KN_BACKOFF_LINEAR, 200, -1, 1, 200},
        {KN_BACKOFF_LINEAR, 200, -1, 2, 400},
        {KN_BACKOFF_LINEAR, 200, -1, 5, 1000},
        {KN_BACKOFF_LINEAR, 1000, -1, INT32_MAX, 2147483647000LL},
        {KN_BACKOFF_LINEAR, M / 2, -1, 3, M},
        {KN_BACKOFF_LINEAR, M, -1, INT32_MAX, M},
        {KN_BACKOFF_LINEAR, M, 5000, INT32_MAX, 5000},
        {KN_BACKOFF_LINEAR, 300, 1000, 3, 900},
        {KN_BACKOFF_LINEAR, 300, 1000, 4, 1000},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kn_delivery_spec s = spec(cases[i].p, cases[i].delay, cases[i].max);
        int64_t got = kn_backoff_ms(&s, cases[i].n);
        if (got != cases[i].want)
            fail_msg("case %zu: n=%d got %lld want %lld", i, cases[i].n,
                     (long long)got, (long long)cases[i].want);
    }
}

/* Monotone and never negative over every n, for both policies. */
static void test_backoff_monotone(void **state)
{
    const int64_t delays[] = {1, 7, 200, 1000, INT64_MAX / 3, INT64_MAX};
    (void)state;
    for (int p = 0; p < 2; p++) {
        for (size_t d = 0; d < sizeof delays / sizeof *delays; d++) {
            kn_delivery_spec s = spec((kn_backoff_policy)p, delays[d], -1);
            int64_t prev = 0;
            for (int64_t n = 1; n <= INT32_MAX; n = n * 3 + 1) {
                int64_t b = kn_backoff_ms(&s, (int32_t)n);
                assert_true(b >= prev);
                prev = b;
            }
            assert_true(kn_backoff_ms(&s, INT32_MAX) >= prev);
        }
    }
}

static void test_classify(void **state)
{
    const int success[] = {200, 201, 202, 204, 299};
    const int retry[] = {0, 404, 408, 409, 429, 500, 502, 503, 504, 599,
                         600, 700, 999};
    const int failc[] = {100, 101, 199, 300, 301, 302, 304, 399, 400, 401,
                         403, 405, 406, 410, 411, 413, 415, 422, 451, 499};
    (void)state;
    for (size_t i = 0; i < sizeof success / sizeof *success; i++)
        assert_int_equal(kn_delivery_classify(success[i]), KN_ATTEMPT_SUCCESS);
    for (size_t i = 0; i < sizeof retry / sizeof *retry; i++)
        if (kn_delivery_classify(retry[i]) != KN_ATTEMPT_RETRY)
            fail_msg("%d should be retried", retry[i]);
    for (size_t i = 0; i < sizeof failc / sizeof *failc; i++)
        if (kn_delivery_classify(failc[i]) != KN_ATTEMPT_FAIL)
            fail_msg("%d should fail at once", failc[i]);
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
#define NOW_MS (784111777LL * 1000)

static int64_t ra(const char *v, int want_rc)
{
    int64_t ms = -42;
    int rc = kn_retry_after_parse(v, strlen(v), NOW_MS, &ms);
    if (rc != want_rc)
        fail_msg("\"%s\": rc %d want %d", v, rc, want_rc);
    return ms;
}

static void test_retry_after(void **state)
{
    (void)state;
    assert_int_equal(ra("120", KN_OK), 120000);
    assert_int_equal(ra("0", KN_OK), 0);
    assert_int_equal(ra(" 5\t", KN_OK), 5000);
    assert_int_equal(ra("99999999999999999999999999", KN_OK), INT64_MAX);
    assert_int_equal(ra("Sun, 06 Nov 1994 08:50:37 GMT", KN_OK), 60000);
    assert_int_equal(ra("Sunday, 06-Nov-94 08:49:47 GMT", KN_OK), 10000);
    assert_int_equal(ra("Sun Nov  6 08:49:57 1994", KN_OK), 20000);
    assert_int_equal(ra("Mon, 07 Nov 1994 08:49:37 GMT", KN_OK), 86400000);
    assert_int_equal(ra("Thu, 01 Jan 1970 00:00:00 GMT", KN_OK), 0);
    assert_int_equal(ra("Wed, 29 Feb 2040 00:00:00 GMT", KN_OK),
                     (2214086400LL - 784111777LL) * 1000);
    ra("", KN_PARSE);
    ra("   ", KN_PARSE);
    ra("-5", KN_PARSE);
    ra("1.5", KN_PARSE);
    ra("12abc", KN_PARSE);
    ra("soon", KN_PARSE);
    ra("Sun, 32 Nov 1994 08:49:37 GMT", KN_PARSE);
    ra("Sun, 06 Nov 1994 25:49:37 GMT", KN_PARSE);
    ra("Sun, 06 Nov 1994 08:49:37 UTC", KN_PARSE);
    ra("Sun, 06 Foo 1994 08:49:37 GMT", KN_PARSE);
    ra("Sun, 06 Nov 1994 08:49:37 GMT trailing", KN_PARSE);
    ra("Sun, 6 Nov 1994 08:49:37 GMT", KN_PARSE);
}

static void test_retry_delay(void **state)
{
    kn_delivery_spec s = spec(KN_BACKOFF_EXPONENTIAL, 200, -1);
    (void)state;
    /* max(backoff, min(retryAfter, cap)) on 429 / 503 only */
    assert_int_equal(kn_retry_delay_ms(&s, 1, 429, 5000), 5000);
    assert_int_equal(kn_retry_delay_ms(&s, 1, 503, 5000), 5000);
    assert_int_equal(kn_retry_delay_ms(&s, 1, 429, 50), 200);
    assert_int_equal(kn_retry_delay_ms(&s, 3, 503, 100), 800);
    assert_int_equal(kn_retry_delay_ms(&s, 1, 429, INT64_MAX), 600000);
    assert_int_equal(kn_retry_delay_ms(&s, 1, 500, 5000), 200);
    assert_int_equal(kn_retry_delay_ms(&s, 1, 0, 5000), 200);
    assert_int_equal(kn_retry_delay_ms(&s, 2, 429, -1), 400);
    s.retry_after_max_ms = 1000;
    assert_int_equal(kn_retry_delay_ms(&s, 1, 429, 5000), 1000);
    s.retry_after_max_ms = 0;                  /* PT0S: header ignored */
    assert_int_equal(kn_retry_delay_ms(&s, 1, 429, 5000), 200);
}

static void test_check(void **state)
{
    kn_delivery_spec s;
    kn_err err;
    (void)state;
    kn_delivery_spec_default(&s);
    s.retry = -1;
    memset(&err, 0, sizeof err);
    assert_int_equal(kn_delivery_spec_check(&s, &err), KN_INVAL);
    assert_string_equal(err.field, "retry");
    kn_delivery_spec_default(&s);
    s.backoff_delay_ms = -1;
    assert_int_equal(kn_delivery_spec_check(&s, &err), KN_INVAL);
    assert_string_equal(err.field, "backoffDelay");
    kn_delivery_spec_default(&s);
    s.timeout_ms = -5;
    assert_int_equal(kn_delivery_spec_check(&s, &err), KN_INVAL);
    assert_string_equal(err.field, "timeout");
    kn_delivery_spec_default(&s);
    s.dead_letter_url = "";
    assert_int_equal(kn_delivery_spec_check(&s, &err), KN_INVAL);
    kn_delivery_spec_default(&s);
    s.backoff_max_ms = 0;
    s.retry = INT32_MAX;
    assert_int_equal(kn_delivery_spec_check(&s, &err), KN_OK);
    assert_string_equal(kn_delivery_status_str(KN_DELIVERY_DEAD_LETTERED),
                        "dead-lettered");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_backoff_table),
        cmocka_unit_test(test_backoff_monotone),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_retry_delay),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
