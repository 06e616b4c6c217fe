/*
 * Library helpers: RFC 3339 parsing to instants and UTC formatting, Base64,
 * media-type comparison and JSON detection, integer parsing, ce_buf and
 * error codes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cloudevents/cloudevents.h"

static ce_time parse(const char *s)
{
    ce_time t;
    ce_err err;
    if (ce_time_parse(s, strlen(s), &t, &err) != CE_OK)
        fail_msg("%s: %s", s, err.msg);
    return t;
}

static void fmt_is(const char *in, const char *want)
{
    ce_time t = parse(in);
    char buf[CE_TIME_MAX];
    size_t n = ce_time_format_utc(&t, buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_time(void **state)
{
    (void)state;
    ce_time t = parse("1970-01-01T00:00:00Z");
    assert_int_equal(t.sec, 0);
    assert_int_equal(t.nsec, 0);
    t = parse("2018-04-26T14:48:09+02:00");
    assert_int_equal(t.sec, 1524746889);
    assert_int_equal(t.offset_min, 120);
    t = parse("1985-04-12T23:20:50.52Z");
    assert_int_equal(t.nsec, 520000000);
    t = parse("1969-12-31T23:59:59.999999999999-00:30");
    assert_int_equal(t.sec, 1799);
    assert_int_equal(t.nsec, 999999999);
    assert_int_equal(t.offset_min, -30);
    t = parse("1990-12-31T23:59:60Z"); /* leap second */
    assert_int_equal(t.sec, 662687999);
    assert_int_equal(t.nsec, 999999999);
    fmt_is("2018-04-26T14:48:09+02:00", "2018-04-26T12:48:09Z");
    fmt_is("1996-12-19T16:39:57-08:00", "1996-12-20T00:39:57Z");
    fmt_is("2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05.123456789Z");
    fmt_is("2024-01-02T03:04:05.5z", "2024-01-02T03:04:05.500000000Z");
    fmt_is("0001-01-01T00:30:00+01:00", "0000-12-31T23:30:00Z");
    fmt_is("2000-02-29T23:59:59-23:59", "2000-03-01T23:58:59Z");
    fmt_is("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z");
    /* years without four digits take the snprintf path */
    fmt_is("9999-12-31T23:59:59.25-01:00", "10000-01-01T00:59:59.250000000Z");
    fmt_is("0000-01-01T00:00:00+01:00", "-001-12-31T23:00:00Z");
    ce_time now = ce_time_now();
    assert_true(now.sec > 1700000000);
    assert_true(now.nsec >= 0 && now.nsec < 1000000000);
    char buf[CE_TIME_MAX];
    ce_time_format_utc(&now, buf);
    ce_time back = parse(buf);
    assert_int_equal(back.sec, now.sec);
    assert_int_equal(back.nsec, now.nsec);
    ce_err err;
    assert_int_equal(ce_time_parse("2018-02-30T00:00:00Z", 20, &t, &err),
                     CE_EINVAL);
    assert_non_null(strstr(err.msg, "day out of range"));
    assert_int_equal(err.offset, 8);
}

static void b64_round(const char *raw, size_t n, const char *enc)
{
    ce_buf b = CE_BUF_INIT;
    assert_int_equal(ce_base64_encode(&b, raw, n), 0);
    assert_string_equal(b.data, enc);
    ce_buf d = CE_BUF_INIT;
    assert_int_equal(ce_base64_decode(&d, b.data, b.len, NULL), 0);
    assert_int_equal(d.len, n);
    if (n)
        assert_memory_equal(d.data, raw, n);
    ce_buf_free(&b);
    ce_buf_free(&d);
}

static void b64_bad(const char *s, const char *msg, long off)
{
    ce_buf d = CE_BUF_INIT;
    ce_buf_puts(&d, "keep");
    ce_err err;
    assert_int_equal(ce_base64_decode(&d, s, strlen(s), &err), CE_EPARSE);
    if (!strstr(err.msg, msg))
        fail_msg("'%s': '%s' lacks '%s'", s, err.msg, msg);
    assert_int_equal(err.offset, off);
    assert_string_equal(d.data, "keep");
    ce_buf_free(&d);
}

static void test_base64(void **state)
{
    (void)state;
    /* RFC 4648 section 10 test vectors */
    b64_round("", 0, "");
    b64_round("f", 1, "Zg==");
    b64_round("fo", 2, "Zm8=");
    b64_round("foo", 3, "Zm9v");
    b64_round("foob", 4, "Zm9vYg==");
    b64_round("fooba", 5, "Zm9vYmE=");
    b64_round("foobar", 6, "Zm9vYmFy");
    b64_round("\x00\xff\xfe\x3e\x3f", 5, "AP/+Pj8=");
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    ce_buf e = CE_BUF_INIT, d = CE_BUF_INIT;
    assert_int_equal(ce_base64_encode(&e, all, 256), 0);
    assert_int_equal(e.len, 344);
    assert_int_equal(ce_base64_decode(&d, e.data, e.len, NULL), 0);
    assert_memory_equal(d.data, all, 256);
    ce_buf_free(&e);
    ce_buf_free(&d);
    b64_bad("Zg=", "length 3 is not a multiple of 4", 3);
    b64_bad("Zg==Zg==", "misplaced padding at offset 2", 2);
    b64_bad("Z===", "misplaced padding at offset 1", 1);
    b64_bad("Zm9v\nYg==", "length 9", 9);
    b64_bad("Zm9-", "invalid character at offset 3", 3);
    b64_bad("Zm=v", "data after padding at offset 3", 3);
}

static void test_media(void **state)
{
    (void)state;
    static const char *json[] = {
        NULL, "", "application/json", "APPLICATION/JSON",
        "application/json; charset=utf-8", "text/json",
        "application/cloudevents+json", "application/vnd.api+Json ;x=1",
        " application/json"};
    for (size_t i = 0; i < sizeof json / sizeof *json; i++)
        assert_true(ce_media_is_json(json[i], json[i] ? strlen(json[i]) : 0));
    static const char *not_json[] = {
        "text/plain", "application/jsonx", "application/xjson",
        "application/json-seq", "application/octet-stream", "json",
        "application/+json", "image/png; x=json"};
    for (size_t i = 0; i < sizeof not_json / sizeof *not_json; i++)
        if (ce_media_is_json(not_json[i], strlen(not_json[i])))
            fail_msg("'%s' taken as JSON", not_json[i]);
    static const char *eq[][2] = {
        {"text/plain; charset=utf-8", "TEXT/Plain; CharSet=UTF-8"},
        {"text/plain;charset=utf-8", "text/plain ;  charset=utf-8"},
        {"text/plain; charset=\"utf-8\"", "text/plain; charset=utf-8"},
        {"application/json", "Application/JSON"},
        {"a/b; x=1; y=2", "a/b;x=1;y=2"},
    };
    for (size_t i = 0; i < sizeof eq / sizeof *eq; i++)
        if (!ce_media_equal(eq[i][0], strlen(eq[i][0]), eq[i][1],
                            strlen(eq[i][1])))
            fail_msg("'%s' != '%s'", eq[i][0], eq[i][1]);
    static const char *ne[][2] = {
        {"text/plain", "text/html"},
        {"text/plain", "text/plain; charset=utf-8"},
        {"a/b; x=1; y=2", "a/b; y=2; x=1"},       /* order matters */
        {"a/b; boundary=X", "a/b; boundary=x"},   /* values other than
                                                     charset are exact */
        {"text/plain; charset=utf-8", "text/plain; charset=utf-16"},
        {"bogus", "Bogus"},
    };
    for (size_t i = 0; i < sizeof ne / sizeof *ne; i++)
        if (ce_media_equal(ne[i][0], strlen(ne[i][0]), ne[i][1],
                           strlen(ne[i][1])))
            fail_msg("'%s' == '%s'", ne[i][0], ne[i][1]);
    assert_true(ce_media_equal("bogus", 5, "bogus", 5));
}

static void test_parse_int(void **state)
{
    (void)state;
    int32_t v;
    assert_int_equal(ce_parse_int("0", 1, &v), CE_OK);
    assert_int_equal(v, 0);
    assert_int_equal(ce_parse_int("-2147483648", 11, &v), CE_OK);
    assert_int_equal(v, INT32_MIN);
    assert_int_equal(ce_parse_int("2147483647", 10, &v), CE_OK);
    assert_int_equal(v, INT32_MAX);
    assert_int_equal(ce_parse_int("2147483648", 10, &v), CE_ERANGE);
    assert_int_equal(ce_parse_int("12a", 3, &v), CE_EINVAL);
    assert_int_equal(ce_parse_int("00", 2, &v), CE_EINVAL);
    assert_int_equal(ce_parse_int("", 0, &v), CE_EINVAL);
    assert_int_equal(ce_parse_int("123", 2, &v), CE_OK); /* length-bound */
    assert_int_equal(v, 12);
}

static void test_buf_and_err(void **state)
{
    (void)state;
    ce_buf b = CE_BUF_INIT;
    assert_int_equal(ce_buf_append(&b, "ab", 2), 0);
    assert_int_equal(ce_buf_puts(&b, "cd"), 0);
    assert_int_equal(ce_buf_printf(&b, "-%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "abcd-42-x");
    assert_int_equal(b.len, 9);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ce_buf_printf(&b, "%04d", i), 0);
    assert_int_equal(b.len, 4009);
    assert_int_equal(b.data[b.len], '\0');
    /* output longer than ce_buf_vprintf's stack buffer */
    assert_int_equal(ce_buf_printf(&b, "%300s|", "x"), 0);
    assert_int_equal(b.len, 4310);
    assert_int_equal(b.data[4308], 'x');
    assert_int_equal(b.data[4309], '|');
    assert_int_equal(b.data[b.len], '\0');
    ce_buf_reset(&b);
    assert_int_equal(ce_buf_printf(&b, "%s", ""), 0);
    assert_string_equal(b.data, "");
    ce_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_true(b.cap > 4310);
    ce_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(ce_buf_reserve(&b, SIZE_MAX), CE_ENOMEM);

    ce_err err;
    assert_int_equal(ce_err_set(&err, CE_EINVAL, "source", 7, "bad %s", "x"),
                     CE_EINVAL);
    assert_string_equal(err.attr, "source");
    assert_string_equal(err.msg, "bad x");
    assert_int_equal(err.offset, 7);
    assert_int_equal(ce_err_set(NULL, CE_EPARSE, NULL, 0, "x"), CE_EPARSE);
    char longattr[200];
    memset(longattr, 'a', sizeof longattr - 1);
    longattr[199] = '\0';
    ce_err_set(&err, CE_EINVAL, longattr, -1, "%s", longattr);
    assert_int_equal(strlen(err.attr), sizeof err.attr - 1);
    assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
    static const ce_code codes[] = {CE_OK, CE_ENOMEM, CE_EINVAL, CE_EPARSE,
                                    CE_EUNSUPPORTED, CE_EFROZEN,
                                    CE_ENOTFOUND, CE_ERANGE};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        assert_string_not_equal(ce_code_str(codes[i]), "unknown error");
    assert_string_equal(ce_code_str((ce_code)-99), "unknown error");
    assert_string_equal(ce_type_str(CE_TYPE_URI_REF), "URI-reference");
    assert_string_equal(ce_type_str(CE_TYPE_TIMESTAMP), "Timestamp");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_media),
        cmocka_unit_test(test_parse_int),
        cmocka_unit_test(test_buf_and_err),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
