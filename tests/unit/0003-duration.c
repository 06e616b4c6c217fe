/*
 * 0003-duration: ISO-8601 duration parsing (accepted forms, every kind of
 * error with its message, overflow) and the canonical format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"

static int64_t ok(const char *s)
{
    int64_t ms = -1;
    kn_err err = {0};
    int rc = kn_duration_parse(s, &ms, &err);
    if (rc != KN_OK)
        fail_msg("%s: %s", s, err.msg);
    return ms;
}

/* Asserts a parse error whose message contains `want`. */
static void bad(const char *s, const char *want)
{
    int64_t ms = 12345;
    kn_err err = {0};
    assert_int_equal(kn_duration_parse(s, &ms, &err), KN_INVAL);
    assert_int_equal(err.status, KN_INVAL);
    assert_int_equal(ms, 12345);
    if (!strstr(err.msg, want))
        fail_msg("%s: message \"%s\" lacks \"%s\"", s ? s : "(null)", err.msg,
                 want);
}

static void test_valid(void **state)
{
    (void)state;
    assert_int_equal(ok("PT0.2S"), 200);
    assert_int_equal(ok("PT1S"), 1000);
    assert_int_equal(ok("PT0S"), 0);
    assert_int_equal(ok("PT1H30M"), 5400000);
    assert_int_equal(ok("PT10M"), 600000);
    assert_int_equal(ok("P1D"), 86400000);
    assert_int_equal(ok("P1W"), 604800000);
    assert_int_equal(ok("P1DT2H"), 93600000);
    assert_int_equal(ok("P1W1D"), 691200000);
    assert_int_equal(ok("PT1H2M3.456S"), 3723456);
    assert_int_equal(ok("PT0,5S"), 500);
    assert_int_equal(ok("PT1.5H"), 5400000);
    assert_int_equal(ok("P0.5D"), 43200000);
    assert_int_equal(ok("PT0.0009S"), 0);     /* below 1 ms: truncated */
    assert_int_equal(ok("PT1.23456789012S"), 1234);
    assert_int_equal(ok("PT90M"), 5400000);   /* not normalised on input */
    assert_int_equal(ok("PT100000S"), 100000000);
    assert_int_equal(ok("PT9223372036854775.807S"), INT64_MAX);
}

static void test_errors(void **state)
{
    (void)state;
    bad("P1Y", "years are not supported");
    bad("P1M", "months are not supported");
    bad("P1Y2M3D", "years are not supported");
    bad("", "empty");
    bad(NULL, "empty");
    bad("P", "no components");
    bad("PT", "no components");
    bad("P1DT", "'T' must be followed");
    bad("1S", "must start with 'P'");
    bad("pt1s", "must start with 'P'");
    bad("-PT1S", "negative");
    bad("PT-1S", "negative");
    bad("+PT1S", "signed");
    bad("PT1", "without a unit");
    bad("PT1X", "unexpected 'X'");
    bad("PT1D", "unexpected 'D' after 'T'");
    bad("P1H", "unexpected 'H'");
    bad("PT1S1M", "out of order");
    bad("PT1M1M", "out of order or repeated");
    bad("PTT1S", "'T' appears twice");
    bad("PT1.5M30S", "only the last component");
    bad("PT.5S", "expected a number");
    bad("PT1.S", "expected digits after the decimal mark");
    bad("PT 1S", "expected a number");
    bad("PT1S ", "expected a number");
    bad("PT9223372036854775.808S", "overflows 64-bit");
    bad("P106751991168D", "overflows 64-bit");
    bad("PT99999999999999999999S", "overflows 64-bit");
    bad("P106751991167DT8H", "overflows 64-bit");
    /* the message quotes the input */
    kn_err err = {0};
    int64_t ms;
    kn_duration_parse("P1Y", &ms, &err);
    assert_string_equal(err.msg, "invalid duration \"P1Y\": years are not "
                        "supported (not a fixed length); use days (P365D) "
                        "or weeks");
}

static void fmt(int64_t ms, const char *want)
{
    char buf[64];
    size_t n = kn_duration_format(ms, buf, sizeof buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
    if (ms >= 0) { /* canonical text parses back to the same value */
        int64_t back = -1;
        assert_int_equal(kn_duration_parse(buf, &back, NULL), KN_OK);
        assert_int_equal(back, ms);
    }
}

static void test_format(void **state)
{
    (void)state;
    fmt(0, "PT0S");
    fmt(200, "PT0.2S");
    fmt(1, "PT0.001S");
    fmt(1500, "PT1.5S");
    fmt(1000, "PT1S");
    fmt(60000, "PT1M");
    fmt(5400000, "PT1H30M");
    fmt(3723456, "PT1H2M3.456S");
    fmt(86400000, "P1D");
    fmt(93600000, "P1DT2H");
    fmt(604800000, "P7D");
    fmt(600000, "PT10M");
    fmt(INT64_MAX, "P106751991167DT7H12M55.807S");
    fmt(-1500, "-PT1.5S");
    fmt(INT64_MIN, "-P106751991167DT7H12M55.808S");
    /* truncating output still reports the full length */
    char small[4];
    assert_int_equal(kn_duration_format(5400000, small, sizeof small), 7);
    assert_string_equal(small, "PT1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
