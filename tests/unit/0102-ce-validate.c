/*
 * Every CloudEvents validation rule, one table row each, checked through
 * ce_event_set (the error names the attribute) and ce_check_value, with the
 * expected error text. Valid edge cases sit next to the invalid ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cloudevents/cloudevents.h"

typedef struct vcase {
    ce_type type;
    const char *value;
    size_t len;        /* 0 = strlen(value) */
    const char *error; /* NULL = valid; else a substring of err.msg */
} vcase;

#define OK(t, v) {t, v, 0, NULL}
#define BAD(t, v, e) {t, v, 0, e}
#define BADN(t, v, n, e) {t, v, n, e}

static const vcase cases[] = {
    /* String: characters */
    OK(CE_TYPE_STRING, ""),
    OK(CE_TYPE_STRING, "plain ASCII ~!@#$%^&*()"),
    OK(CE_TYPE_STRING, "\xc2\xa0 nbsp, \xe2\x82\xac euro, \xf0\x9f\x98\x80"),
    OK(CE_TYPE_STRING, "\xef\xb7\x8f U+FDCF, \xef\xbf\xbd U+FFFD"),
    OK(CE_TYPE_STRING, "\xf4\x8f\xbf\xbd U+10FFFD"),
    BADN(CE_TYPE_STRING, "a\0b", 3, "control character U+0000 at byte 1"),
    BAD(CE_TYPE_STRING, "tab\there", "control character U+0009 at byte 3"),
    BAD(CE_TYPE_STRING, "nl\n", "control character U+000A"),
    BAD(CE_TYPE_STRING, "\x1f", "control character U+001F"),
    BAD(CE_TYPE_STRING, "del\x7f", "control character U+007F at byte 3"),
    BAD(CE_TYPE_STRING, "\xc2\x80", "control character U+0080"),
    BAD(CE_TYPE_STRING, "\xc2\x9f", "control character U+009F"),
    BAD(CE_TYPE_STRING, "0123456789abcdef\x01", "control character U+0001 "
        "at byte 16"),
    BAD(CE_TYPE_STRING, "\xef\xb7\x90", "noncharacter U+FDD0"),
    BAD(CE_TYPE_STRING, "\xef\xb7\xaf", "noncharacter U+FDEF"),
    BAD(CE_TYPE_STRING, "x\xef\xbf\xbe", "noncharacter U+FFFE at byte 1"),
    BAD(CE_TYPE_STRING, "\xef\xbf\xbf", "noncharacter U+FFFF"),
    BAD(CE_TYPE_STRING, "\xf0\x9f\xbf\xbe", "noncharacter U+1FFFE"),
    BAD(CE_TYPE_STRING, "\xf4\x8f\xbf\xbf", "noncharacter U+10FFFF"),
    BAD(CE_TYPE_STRING, "\xed\xa0\x80", "surrogate code point at byte 0"),
    BAD(CE_TYPE_STRING, "\xed\xbf\xbf", "surrogate code point"),
    BAD(CE_TYPE_STRING, "\xc0\xa0", "invalid UTF-8 at byte 0"),
    BAD(CE_TYPE_STRING, "\xe0\x80\x80", "invalid UTF-8"),
    BAD(CE_TYPE_STRING, "\xf0\x80\x80\x80", "invalid UTF-8"),
    BAD(CE_TYPE_STRING, "\xf4\x90\x80\x80", "invalid UTF-8"),
    BAD(CE_TYPE_STRING, "\xf5\x80\x80\x80", "invalid UTF-8"),
    BAD(CE_TYPE_STRING, "ab\x80", "invalid UTF-8 at byte 2"),
    BAD(CE_TYPE_STRING, "\xe2\x82", "invalid UTF-8"),
    BAD(CE_TYPE_STRING, "\xff", "invalid UTF-8"),
    /* Boolean */
    OK(CE_TYPE_BOOLEAN, "true"),
    OK(CE_TYPE_BOOLEAN, "false"),
    BAD(CE_TYPE_BOOLEAN, "True", "must be 'true' or 'false'"),
    BAD(CE_TYPE_BOOLEAN, "1", "must be 'true' or 'false'"),
    BAD(CE_TYPE_BOOLEAN, "", "must be 'true' or 'false'"),
    /* Integer */
    OK(CE_TYPE_INTEGER, "0"),
    OK(CE_TYPE_INTEGER, "-2147483648"),
    OK(CE_TYPE_INTEGER, "2147483647"),
    OK(CE_TYPE_INTEGER, "-17"),
    BAD(CE_TYPE_INTEGER, "2147483648", "Integer out of range"),
    BAD(CE_TYPE_INTEGER, "-2147483649", "Integer out of range"),
    BAD(CE_TYPE_INTEGER, "99999999999999999999", "Integer out of range"),
    BAD(CE_TYPE_INTEGER, "+1", "not a canonical Integer"),
    BAD(CE_TYPE_INTEGER, "01", "not a canonical Integer"),
    BAD(CE_TYPE_INTEGER, "-01", "not a canonical Integer"),
    BAD(CE_TYPE_INTEGER, "1.0", "not a canonical Integer"),
    BAD(CE_TYPE_INTEGER, "1e3", "not a canonical Integer"),
    BAD(CE_TYPE_INTEGER, " 1", "not a canonical Integer"),
    BAD(CE_TYPE_INTEGER, "", "not a canonical Integer"),
    BAD(CE_TYPE_INTEGER, "-", "not a canonical Integer"),
    /* Binary */
    OK(CE_TYPE_BINARY, ""),
    OK(CE_TYPE_BINARY, "AA=="),
    OK(CE_TYPE_BINARY, "AAA="),
    OK(CE_TYPE_BINARY, "+/09azAZ"),
    BAD(CE_TYPE_BINARY, "abc", "length 3 is not a multiple of 4"),
    BAD(CE_TYPE_BINARY, "ab=c", "invalid character at byte 2"),
    BAD(CE_TYPE_BINARY, "a===", "invalid character at byte 1"),
    BAD(CE_TYPE_BINARY, "ab-_", "invalid character at byte 2"),
    BAD(CE_TYPE_BINARY, "ab c", "invalid character at byte 2"),
    /* URI (absolute, RFC 3986 section 4.3) */
    OK(CE_TYPE_URI, "https://example.com/a/b?c=d&e"),
    OK(CE_TYPE_URI, "urn:isbn:0451450523"),
    OK(CE_TYPE_URI, "mailto:a@b.example"),
    OK(CE_TYPE_URI, "http://user:pw@[::1]:8080/p%20q"),
    OK(CE_TYPE_URI, "http://[v1.fe:x]/"),
    OK(CE_TYPE_URI, "http://192.0.2.1:/x"),
    OK(CE_TYPE_URI, "file:///etc/hosts"),
    OK(CE_TYPE_URI, "x-y+z.1:"),
    BAD(CE_TYPE_URI, "", "absolute URI (RFC 3986): not an absolute URI: "
        "no scheme at byte 0"),
    BAD(CE_TYPE_URI, "/relative/path", "no scheme"),
    BAD(CE_TYPE_URI, "1http://x", "malformed scheme at byte 0"),
    BAD(CE_TYPE_URI, "ht_tp://x", "malformed scheme"),
    BAD(CE_TYPE_URI, "http://x/#frag", "must not have a fragment at byte 9"),
    BAD(CE_TYPE_URI, "http://x/a b", "character not allowed in a URI at "
        "byte 10"),
    BAD(CE_TYPE_URI, "http://x/\xc3\xa9", "character not allowed"),
    BAD(CE_TYPE_URI, "http://x/%zz", "malformed percent-encoding at byte 9"),
    BAD(CE_TYPE_URI, "http://x/%4", "malformed percent-encoding"),
    BAD(CE_TYPE_URI, "http://[zz]/", "malformed IPv6 address"),
    BAD(CE_TYPE_URI, "http://[::1/", "unterminated IP literal"),
    BAD(CE_TYPE_URI, "http://[v1]/", "malformed IPvFuture address"),
    BAD(CE_TYPE_URI, "http://x:80a/", "invalid character in authority"),
    BAD(CE_TYPE_URI, "http://a b@x/", "invalid character in authority"),
    BAD(CE_TYPE_URI, "http://a@b@x/", "invalid character in userinfo"),
    BAD(CE_TYPE_URI, "http://x\\y", "invalid character in authority"),
    /* URI-reference (RFC 3986 section 4.1) */
    OK(CE_TYPE_URI_REF, ""),
    OK(CE_TYPE_URI_REF, "/sensors/tn-1"),
    OK(CE_TYPE_URI_REF, "1-555-123-4567"),
    OK(CE_TYPE_URI_REF, "../up?q#frag"),
    OK(CE_TYPE_URI_REF, "#only-fragment"),
    OK(CE_TYPE_URI_REF, "//github.com/cloudevents"),
    OK(CE_TYPE_URI_REF, "a:b"),
    OK(CE_TYPE_URI_REF, "https://x/y#f?g/h"),
    BAD(CE_TYPE_URI_REF, "1a:b", "URI-reference (RFC 3986): ':' in the "
        "first segment"),
    BAD(CE_TYPE_URI_REF, ":x", "':' in the first segment"),
    BAD(CE_TYPE_URI_REF, "a b", "character not allowed in a URI at byte 1"),
    BAD(CE_TYPE_URI_REF, "x#a#b", "character not allowed in a URI at byte 3"),
    BAD(CE_TYPE_URI_REF, "/%g0", "malformed percent-encoding"),
    BAD(CE_TYPE_URI_REF, "x\"y", "character not allowed"),
    BAD(CE_TYPE_URI_REF, "//x:1:2/", "invalid character in authority"),
    /* Timestamp (RFC 3339 date-time) */
    OK(CE_TYPE_TIMESTAMP, "2018-04-05T17:31:00Z"),
    OK(CE_TYPE_TIMESTAMP, "2018-04-05t17:31:00z"),
    OK(CE_TYPE_TIMESTAMP, "2018-04-26T14:48:09+02:00"),
    OK(CE_TYPE_TIMESTAMP, "1985-04-12T23:20:50.52Z"),
    OK(CE_TYPE_TIMESTAMP, "1996-12-19T16:39:57-08:00"),
    OK(CE_TYPE_TIMESTAMP, "1990-12-31T23:59:60Z"),
    OK(CE_TYPE_TIMESTAMP, "2020-02-29T00:00:00.123456789123Z"),
    OK(CE_TYPE_TIMESTAMP, "0000-01-01T00:00:00Z"),
    BAD(CE_TYPE_TIMESTAMP, "", "not an RFC 3339 timestamp: expected YYYY-"),
    BAD(CE_TYPE_TIMESTAMP, "18-04-05T17:31:00Z", "expected YYYY-"),
    BAD(CE_TYPE_TIMESTAMP, "2018/04/05T17:31:00Z", "expected YYYY-"),
    BAD(CE_TYPE_TIMESTAMP, "2018-4-05T17:31:00Z", "expected MM-"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05 17:31:00Z", "expected DD followed "
        "by 'T'"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05", "expected DD followed by 'T'"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T1:31:00Z", "expected hh:"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T17:3:00Z", "expected mm:"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T17:31Z", "expected mm:"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T17:31:0Z", "expected ss"),
    BAD(CE_TYPE_TIMESTAMP, "2018-13-05T17:31:00Z", "month out of range"),
    BAD(CE_TYPE_TIMESTAMP, "2018-00-05T17:31:00Z", "month out of range"),
    BAD(CE_TYPE_TIMESTAMP, "2019-02-29T17:31:00Z", "day out of range for "
        "the month"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-31T17:31:00Z", "day out of range"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-00T17:31:00Z", "day out of range"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T24:00:00Z", "time of day out of "
        "range"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T23:60:00Z", "time of day out of "
        "range"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T23:59:61Z", "time of day out of "
        "range"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T17:31:00", "expected 'Z' or a "
        "+hh:mm offset"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T17:31:00.Z", "empty fraction of a "
        "second"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T17:31:00+0200", "malformed UTC "
        "offset"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T17:31:00+02", "malformed UTC offset"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T17:31:00+24:00", "UTC offset out of "
        "range"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T17:31:00-00:60", "UTC offset out of "
        "range"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T17:31:00ZZ", "trailing characters"),
    BAD(CE_TYPE_TIMESTAMP, "2018-04-05T17:31:00Z ", "trailing characters"),
};

static void test_value_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const vcase *c = &cases[i];
        size_t n = c->len ? c->len : strlen(c->value);
        ce_err err;
        memset(&err, 0, sizeof err);
        int rc = ce_check_value(c->type, c->value, n, &err);
        ce_event *ev = ce_event_new();
        ce_err err2;
        int rc2 = ce_event_set(ev, "myext", c->value, n, c->type, &err2);
        if (!c->error) {
            if (rc != CE_OK || rc2 != CE_OK)
                fail_msg("row %zu (%s '%s'): rejected: %s", i,
                         ce_type_str(c->type), c->value, err.msg);
            size_t got;
            ce_type t;
            const char *v = ce_event_get(ev, "myext", &got, &t);
            assert_int_equal(got, n);
            assert_memory_equal(v, c->value, n);
            assert_int_equal(t, c->type);
        } else {
            if (rc != CE_EINVAL || rc2 != CE_EINVAL)
                fail_msg("row %zu (%s '%s'): accepted", i,
                         ce_type_str(c->type), c->value);
            if (!strstr(err.msg, c->error))
                fail_msg("row %zu: message '%s' lacks '%s'", i, err.msg,
                         c->error);
            assert_string_equal(err.attr, "");
            assert_int_equal(err.code, CE_EINVAL);
            assert_string_equal(err2.attr, "myext");
            assert_string_equal(err2.msg, err.msg);
            assert_null(ce_event_get(ev, "myext", NULL, NULL));
        }
        ce_event_unref(ev);
    }
}

/* Core attributes check their own type, and errors name them. */
static void test_core_types(void **state)
{
    (void)state;
    static const struct {
        const char *name, *bad, *msg;
    } core[] = {
        {"specversion", "1.0\n", "control character U+000A"},
        {"id", "\x01", "control character U+0001"},
        {"source", "a b", "not a valid URI-reference"},
        {"type", "\xff", "invalid UTF-8"},
        {"datacontenttype", "\x7f", "control character U+007F"},
        {"dataschema", "rel/x", "not a valid absolute URI"},
        {"dataschema", "", "no scheme"},
        {"subject", "\xed\xa0\x80", "surrogate"},
        {"time", "2018-04-05", "RFC 3339"},
    };
    ce_event *ev = ce_event_new();
    for (size_t i = 0; i < sizeof core / sizeof *core; i++) {
        ce_err err;
        int rc = ce_event_set(ev, core[i].name, core[i].bad,
                              strlen(core[i].bad), CE_TYPE_STRING, &err);
        assert_int_equal(rc, CE_EINVAL);
        assert_string_equal(err.attr, core[i].name);
        if (!strstr(err.msg, core[i].msg))
            fail_msg("%s: message '%s' lacks '%s'", core[i].name, err.msg,
                     core[i].msg);
    }
    ce_event_unref(ev);
}

static void test_names(void **state)
{
    (void)state;
    static const struct {
        const char *name, *msg;
    } bad[] = {
        {"", "attribute name must not be empty"},
        {"Upper", "character 0x55 at position 0; only a-z and 0-9 are "
                  "allowed"},
        {"with-dash", "character 0x2D at position 4"},
        {"under_score", "character 0x5F at position 5"},
        {"sp ace", "character 0x20"},
        {"\xc3\xa9t\xc3\xa9", "character 0xC3 at position 0"},
        {"abcdefghijklmnopqrstu", "21 characters long; at most 20"},
        {"data", "attribute name 'data' is reserved"},
    };
    ce_event *ev = ce_event_new();
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ce_err err;
        const char *n = bad[i].name;
        assert_int_equal(ce_check_attr_name(n, strlen(n), &err), CE_EINVAL);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("'%s': message '%s' lacks '%s'", n, err.msg, bad[i].msg);
        assert_string_equal(err.attr, n);
        assert_int_equal(ce_event_set_str(ev, n, "v", &err), CE_EINVAL);
        assert_string_equal(err.attr, n);
        assert_non_null(strstr(err.msg, bad[i].msg));
        assert_int_equal(ce_event_setn(ev, n, strlen(n), "v", 1,
                                       CE_TYPE_STRING, &err), CE_EINVAL);
    }
    static const char *good[] = {"a", "0", "9lives", "abcdefghijklmnopqrst",
                                 "datacontentencoding2", "dataref", "x1"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        assert_int_equal(ce_check_attr_name(good[i], strlen(good[i]), NULL),
                         CE_OK);
        assert_int_equal(ce_event_set_str(ev, good[i], "v", NULL), CE_OK);
    }
    ce_err err;
    assert_int_equal(ce_event_set(ev, "x", "v", 1, (ce_type)99, &err),
                     CE_EINVAL);
    assert_non_null(strstr(err.msg, "unknown attribute type 99"));
    ce_event_unref(ev);
}

static ce_event *valid_event(void)
{
    ce_event *ev = ce_event_new();
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "id", "A234-1234-1234", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "source",
                                      "https://github.com/cloudevents", NULL),
                     0);
    assert_int_equal(ce_event_set_str(ev, "type", "com.example.x", NULL), 0);
    assert_int_equal(ce_event_validate(ev, NULL), CE_OK);
    return ev;
}

static void expect_invalid(const ce_event *ev, const char *attr,
                           const char *msg)
{
    ce_err err;
    assert_int_equal(ce_event_validate(ev, &err), CE_EINVAL);
    assert_string_equal(err.attr, attr);
    if (!strstr(err.msg, msg))
        fail_msg("%s: message '%s' lacks '%s'", attr, err.msg, msg);
}

static void test_event_rules(void **state)
{
    (void)state;
    static const char *required[] = {"specversion", "id", "source", "type"};
    for (size_t i = 0; i < 4; i++) {
        ce_event *ev = valid_event();
        assert_int_equal(ce_event_unset(ev, required[i]), 0);
        expect_invalid(ev, required[i], "required attribute is missing");
        assert_int_equal(ce_event_set_str(ev, required[i], "", NULL), 0);
        expect_invalid(ev, required[i], "required attribute must not be "
                                        "empty");
        ce_event_unref(ev);
    }
    ce_event *ev = valid_event();
    static const char *versions[] = {"0.3", "1", "1.0.2", "2.0", " 1.0"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(ce_event_set_str(ev, "specversion", versions[i],
                                          NULL), 0);
        expect_invalid(ev, "specversion", "unsupported specversion");
    }
    expect_invalid(ev, "specversion", "must be 1.0");
    assert_int_equal(ce_event_set_str(ev, "specversion", "0.3", NULL), 0);
    expect_invalid(ev, "specversion", "ce_event_upgrade_03");
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", NULL), 0);
    /* optional attributes, when present, must not be empty */
    assert_int_equal(ce_event_set_str(ev, "subject", "", NULL), 0);
    expect_invalid(ev, "subject", "attribute must not be empty when "
                                  "present");
    assert_int_equal(ce_event_set_str(ev, "subject", "s", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "datacontenttype", "", NULL), 0);
    expect_invalid(ev, "datacontenttype", "must not be empty when present");
    /* datacontenttype must be a media type */
    static const struct {
        const char *v, *msg;
    } media[] = {
        {"json", "not a media type (RFC 2046): expected type/subtype"},
        {"application/", "expected type/subtype"},
        {"/json", "expected type/subtype"},
        {"text/plain charset=x", "expected type/subtype"},
        {"text/plain;", "malformed parameter at byte 10"},
        {"text/plain; charset", "malformed parameter"},
        {"text/plain; charset=", "malformed parameter"},
        {"text/plain; charset=\"utf-8", "malformed parameter"},
        {"text/pl@in", "expected type/subtype"},
    };
    for (size_t i = 0; i < sizeof media / sizeof *media; i++) {
        assert_int_equal(ce_event_set_str(ev, "datacontenttype", media[i].v,
                                          NULL), 0);
        expect_invalid(ev, "datacontenttype", media[i].msg);
    }
    static const char *good_media[] = {
        "application/json", "text/plain; charset=utf-8",
        "TEXT/Plain;CharSet=UTF-8", "application/vnd.a+json ; x=\"a b;c\"",
        "multipart/form-data; boundary=\"--x\"; charset=us-ascii"};
    for (size_t i = 0; i < sizeof good_media / sizeof *good_media; i++) {
        assert_int_equal(ce_event_set_str(ev, "datacontenttype",
                                          good_media[i], NULL), 0);
        assert_int_equal(ce_event_validate(ev, NULL), CE_OK);
    }
    ce_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_rules),
        cmocka_unit_test(test_core_types),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_event_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
