/*
 * 0309-channel-settings: the helpers the channel backends share to read
 * their settings (channels/settings.h): values as text, errors naming the
 * setting, sizes with and without unit suffixes (limits, overflow),
 * durations, and the warning for unused keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "channels/settings.h"
#include "tests/unit/logtest.h"

static void test_str(void **state)
{
    (void)state;
    char buf[32];
    json_t *set = json_pack("{s:s, s:i, s:b}", "s", "v", "i", 42, "b", 1);
    assert_string_equal(kn_setting_str(set, "s", buf, sizeof buf), "v");
    assert_string_equal(kn_setting_str(set, "i", buf, sizeof buf), "42");
    assert_string_equal(kn_setting_str(set, "b", buf, sizeof buf), "");
    assert_null(kn_setting_str(set, "none", buf, sizeof buf));
    assert_null(kn_setting_str(NULL, "s", buf, sizeof buf));
    json_decref(set);
}

static void test_error(void **state)
{
    (void)state;
    kn_err err = {0};
    assert_int_equal(kn_setting_error(&err, "k.x", "'%s' is bad", "v"),
                     KN_INVAL);
    assert_string_equal(err.msg, "setting k.x: 'v' is bad");
    assert_string_equal(err.field, "k.x");
    assert_int_equal(kn_setting_error(NULL, "k", "x"), KN_INVAL);
}

static void test_size(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(kn_setting_size("0", true, UINT64_MAX, &v), KN_OK);
    assert_int_equal(v, 0);
    assert_int_equal(kn_setting_size("12k", true, UINT64_MAX, &v), KN_OK);
    assert_int_equal(v, 12000);
    assert_int_equal(kn_setting_size("3Mi", true, UINT64_MAX, &v), KN_OK);
    assert_int_equal(v, 3u << 20);
    assert_int_equal(kn_setting_size("2T", true, UINT64_MAX, &v), KN_OK);
    assert_int_equal(v, 2000000000000ull);
    /* suffixes only when asked for */
    assert_int_equal(kn_setting_size("12k", false, UINT64_MAX, &v), KN_INVAL);
    assert_int_equal(kn_setting_size("12", false, 100, &v), KN_OK);
    assert_int_equal(v, 12);
    /* not a size */
    const char *bad[] = {"", "k", "-1", "+1", " 1", "1 ", "1x", "1kb", "1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(kn_setting_size(bad[i], true, UINT64_MAX, &v),
                         KN_INVAL);
    /* the number itself beyond the limit (or uint64) is not a size … */
    assert_int_equal(kn_setting_size("101", true, 100, &v), KN_INVAL);
    assert_int_equal(kn_setting_size("18446744073709551616", true,
                                     UINT64_MAX, &v), KN_INVAL);
    /* … the suffix taking it beyond is too big */
    assert_int_equal(kn_setting_size("1k", true, 100, &v), KN_TOOBIG);
    assert_int_equal(kn_setting_size("16777216Ti", true, UINT64_MAX, &v),
                     KN_TOOBIG);
    assert_int_equal(kn_setting_size("9223372036854775807", true,
                                     INT64_MAX, &v), KN_OK);
    assert_int_equal(v, INT64_MAX);
}

static void test_ms(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(kn_setting_ms("250", &v), KN_OK);
    assert_int_equal(v, 250);
    assert_int_equal(kn_setting_ms("PT1.5S", &v), KN_OK);
    assert_int_equal(v, 1500);
    assert_int_equal(kn_setting_ms("P1D", &v), KN_OK);
    assert_int_equal(v, 86400000);
    assert_int_equal(kn_setting_ms("", &v), KN_INVAL);
    assert_int_equal(kn_setting_ms("1s", &v), KN_INVAL);
    assert_int_equal(kn_setting_ms("-5", &v), KN_INVAL);
    assert_int_equal(kn_setting_ms("Pxyz", &v), KN_INVAL);
    assert_int_equal(kn_setting_ms("99999999999999999999", &v), KN_INVAL);
}

static void test_warn_unknown(void **state)
{
    (void)state;
    char dir[64];
    tu_mkdtemp(dir, sizeof dir, "settings");
    lt_logcap cap;
    lt_logcap_start(&cap, dir);
    static const char *const known[] = {"a", "b"};
    json_t *set = json_pack("{s:s, s:s, s:s}", "a", "1", "zz", "2", "b", "3");
    kn_settings_warn_unknown(set, known, 2, "test", "demo");
    const char *text = lt_logcap_text(&cap, false);
    assert_non_null(strstr(text, "channel setting 'zz' is not used by the "
                           "demo backend"));
    assert_null(strstr(text, "'a'"));
    assert_null(strstr(text, "'b'"));
    kn_settings_warn_unknown(NULL, known, 2, "test", "demo");
    json_decref(set);
    lt_logcap_stop(&cap);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_ms),
        cmocka_unit_test(test_warn_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
