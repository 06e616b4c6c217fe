/*
 * 0004-time: clocks, RFC 3339 formatting with nanoseconds and parsing
 * (offsets, fractions, leap seconds, every error).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/common.h"

#define NS INT64_C(1000000000)

static void test_clocks(void **state)
{
    (void)state;
    int64_t a = kn_now_mono_ns(), b = kn_now_mono_ns();
    assert_true(a > 0 && b >= a);
    assert_true(kn_now_mono_ms() >= a / 1000000);
    int64_t w = kn_now_wall_ns();
    time_t t = time(NULL);
    assert_true(w / NS >= t - 5 && w / NS <= t + 5);
}

static void fmt(int64_t ns, const char *want)
{
    char buf[CE_TIME_MAX];
    assert_int_equal(kn_time_format_ns(ns, buf), strlen(want));
    assert_string_equal(buf, want);
    int64_t back = 0;
    assert_int_equal(kn_time_parse_ns(buf, &back, NULL), KN_OK);
    assert_int_equal(back, ns);
}

static void test_format(void **state)
{
    (void)state;
    fmt(0, "1970-01-01T00:00:00.000000000Z");
    fmt(1, "1970-01-01T00:00:00.000000001Z");
    fmt(-1, "1969-12-31T23:59:59.999999999Z");
    fmt(1704164645 * NS + 123456789, "2024-01-02T03:04:05.123456789Z");
    fmt(951782400 * NS, "2000-02-29T00:00:00.000000000Z");
    fmt(4107542399 * NS, "2100-02-28T23:59:59.000000000Z");
    fmt(INT64_MAX, "2262-04-11T23:47:16.854775807Z");
    fmt(INT64_MIN, "1677-09-21T00:12:43.145224192Z");
}

static int64_t parse(const char *s)
{
    int64_t ns = 0;
    kn_err err = {0};
    if (kn_time_parse_ns(s, &ns, &err) != KN_OK)
        fail_msg("%s: %s", s, err.msg);
    return ns;
}

static void bad(const char *s, const char *want)
{
    int64_t ns = 42;
    kn_err err = {0};
    assert_int_equal(kn_time_parse_ns(s, &ns, &err), KN_INVAL);
    assert_int_equal(ns, 42);
    if (!strstr(err.msg, want))
        fail_msg("%s: message \"%s\" lacks \"%s\"", s ? s : "(null)", err.msg,
                 want);
}

static void test_parse(void **state)
{
    (void)state;
    int64_t base = 1704164645 * NS;
    assert_int_equal(parse("2024-01-02T03:04:05Z"), base);
    assert_int_equal(parse("2024-01-02t03:04:05z"), base);
    assert_int_equal(parse("2024-01-02T03:04:05.5Z"), base + 500000000);
    assert_int_equal(parse("2024-01-02T03:04:05.000000001Z"), base + 1);
    assert_int_equal(parse("2024-01-02T05:04:05+02:00"), base);
    assert_int_equal(parse("2024-01-01T22:34:05-04:30"), base);
    assert_int_equal(parse("2024-01-02T03:04:05-00:00"), base);
    /* leap second is read as the last nanosecond of :59 */
    assert_int_equal(parse("2016-12-31T23:59:60Z"),
                     1483228799 * NS + 999999999);
    assert_int_equal(parse("2024-02-29T00:00:00Z"), 1709164800 * NS);
}

static void test_parse_errors(void **state)
{
    (void)state;
    bad(NULL, "missing");
    bad("", "expected YYYY-MM-DD");
    bad("2024-01-02", "expected YYYY-MM-DD");
    bad("2024-01-02 03:04:05Z", "expected YYYY-MM-DD");
    bad("2024/01/02T03:04:05Z", "expected YYYY-MM-DD");
    bad("2024-01-02T03:04:05", "expected YYYY-MM-DD");
    bad("2024-13-02T03:04:05Z", "no such date");
    bad("2023-02-29T03:04:05Z", "no such date");
    bad("2024-04-31T03:04:05Z", "no such date");
    bad("2024-01-00T03:04:05Z", "no such date");
    bad("2024-01-02T24:04:05Z", "time of day");
    bad("2024-01-02T03:60:05Z", "time of day");
    bad("2024-01-02T03:04:61Z", "time of day");
    bad("2024-01-02T03:04:05.Z", "digits after '.'");
    bad("2024-01-02T03:04:05.1234567890Z", "more than 9 fractional digits");
    bad("2024-01-02T03:04:05+0200", "offset");
    bad("2024-01-02T03:04:05+24:00", "offset out of range");
    bad("2024-01-02T03:04:05Zjunk", "trailing");
    bad("2024-01-02T03:04:05+02:00x", "offset");
    bad("2263-01-01T00:00:00Z", "outside the range");
    bad("1600-01-01T00:00:00Z", "outside the range");
    kn_err err = {0};
    int64_t ns;
    kn_time_parse_ns("yesterday", &ns, &err);
    assert_string_equal(err.msg, "invalid RFC 3339 timestamp \"yesterday\": "
                        "expected YYYY-MM-DDTHH:MM:SS[.frac]Z or an offset");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
