/*
 * JSON event format: decoding (data rules, extension types, nulls,
 * data_base64, 0.3 input), encoding (data vs data_base64, escaping),
 * round trips, batches, and malformed input with byte offsets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cloudevents/cloudevents.h"

#define HEAD "\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\"," \
             "\"type\":\"t\""

static ce_event *dec_ok(const char *json)
{
    ce_event *ev = NULL;
    ce_err err;
    int rc = ce_json_decode(json, strlen(json), &ev, &err);
    if (rc != CE_OK)
        fail_msg("decode failed (%d) attr '%s': %s\ninput: %s", rc, err.attr,
                 err.msg, json);
    return ev;
}

static void dec_err(const char *json, int code, const char *attr,
                    const char *msg, long offset)
{
    ce_event *ev = (ce_event *)1;
    ce_err err;
    int rc = ce_json_decode(json, strlen(json), &ev, &err);
    if (rc != code)
        fail_msg("rc %d, want %d (%s: %s) for %s", rc, code, err.attr, err.msg,
                 json);
    assert_null(ev);
    assert_string_equal(err.attr, attr);
    if (!strstr(err.msg, msg))
        fail_msg("message '%s' lacks '%s'", err.msg, msg);
    if (offset >= 0)
        assert_int_equal(err.offset, offset);
}

static void data_is(const ce_event *ev, const char *want)
{
    size_t n;
    const char *d = ce_event_data(ev, &n);
    assert_non_null(d);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(d, want, n);
}

/* Encodes ev, decodes the result and checks equality; returns the text. */
static char *round_trip(const ce_event *ev)
{
    ce_buf b = CE_BUF_INIT;
    ce_err err;
    if (ce_json_encode(ev, &b, &err) != CE_OK)
        fail_msg("encode: %s: %s", err.attr, err.msg);
    json_error_t je; /* an independent parser must accept the output */
    json_t *j = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("jansson rejects our output: %s\n%s", je.text, b.data);
    json_decref(j);
    ce_event *back = dec_ok(b.data);
    assert_true(ce_event_equal(ev, back));
    ce_event_unref(back);
    return b.data;
}

static void test_decode_basic(void **state)
{
    (void)state;
    ce_event *ev = dec_ok(" {" HEAD ",\"subject\":\"sub\",\"time\":"
                          "\"2018-04-05T17:31:00Z\",\"dataschema\":"
                          "\"https://e.com/s\",\"x\":\"y\",\"n\":-5,"
                          "\"b\":false,\"gone\":null,\"datacontenttype\""
                          ":null} \n");
    ce_type t;
    assert_string_equal(ce_event_get(ev, "subject", NULL, NULL), "sub");
    assert_string_equal(ce_event_get(ev, "x", NULL, &t), "y");
    assert_int_equal(t, CE_TYPE_STRING);
    assert_string_equal(ce_event_get(ev, "n", NULL, &t), "-5");
    assert_int_equal(t, CE_TYPE_INTEGER);
    assert_string_equal(ce_event_get(ev, "b", NULL, &t), "false");
    assert_int_equal(t, CE_TYPE_BOOLEAN);
    assert_null(ce_event_get(ev, "gone", NULL, NULL));
    assert_null(ce_event_get(ev, "datacontenttype", NULL, NULL));
    assert_false(ce_event_has_data(ev));
    free(round_trip(ev));
    ce_event_unref(ev);
}

static void test_decode_data(void **state)
{
    (void)state;
    /* JSON (absent) content type: compact JSON text of the value */
    ce_event *ev = dec_ok("{" HEAD ",\"data\": { \"a\" : [1, 2,\n\"x y\"] }}");
    data_is(ev, "{\"a\":[1,2,\"x y\"]}");
    free(round_trip(ev));
    ce_event_unref(ev);
    /* a JSON string keeps its quotes and escapes */
    ev = dec_ok("{" HEAD ",\"datacontenttype\":\"application/json\","
                "\"data\":\"I'm \\\"q\\\"\"}");
    data_is(ev, "\"I'm \\\"q\\\"\"");
    free(round_trip(ev));
    ce_event_unref(ev);
    /* data before datacontenttype; +json suffix; explicit null */
    ev = dec_ok("{" HEAD ",\"data\":null,\"datacontenttype\":"
                "\"application/vnd.x+JSON; charset=utf-8\"}");
    data_is(ev, "null");
    free(round_trip(ev));
    ce_event_unref(ev);
    /* data read before a non-JSON datacontenttype */
    ev = dec_ok("{" HEAD ",\"data\":\"a\\u0041\",\"datacontenttype\":"
                "\"text/plain\"}");
    data_is(ev, "aA");
    free(round_trip(ev));
    ce_event_unref(ev);
    dec_err("{" HEAD ",\"data\":[1],\"datacontenttype\":\"text/csv\"}",
            CE_EINVAL, "data", "must be a JSON string", 62);
    /* non-JSON type: the string's characters */
    ev = dec_ok("{" HEAD ",\"datacontenttype\":\"text/plain\","
                "\"data\":\"line\\nnext \\u00e9\\ud83d\\ude00\"}");
    data_is(ev, "line\nnext \xc3\xa9\xf0\x9f\x98\x80");
    char *txt = round_trip(ev);
    assert_non_null(strstr(txt, "\"data\":\"line\\nnext"));
    free(txt);
    ce_event_unref(ev);
    /* non-JSON type with null data: no data */
    ev = dec_ok("{" HEAD ",\"datacontenttype\":\"text/plain\",\"data\":null}");
    assert_false(ce_event_has_data(ev));
    ce_event_unref(ev);
    /* data_base64 */
    ev = dec_ok("{" HEAD ",\"data_base64\":\"AAEC/w==\"}");
    size_t n;
    const unsigned char *d = ce_event_data(ev, &n);
    assert_int_equal(n, 4);
    assert_int_equal(d[3], 0xff);
    assert_null(ce_event_get(ev, "datacontenttype", NULL, NULL));
    txt = round_trip(ev);
    assert_non_null(strstr(txt, "\"data_base64\":\"AAEC/w==\""));
    assert_null(strstr(txt, "datacontenttype"));
    free(txt);
    ce_event_unref(ev);
    ev = dec_ok("{" HEAD ",\"data_base64\":\"\"}");
    data_is(ev, "");
    ce_event_unref(ev);
}

static void test_encode_choices(void **state)
{
    (void)state;
    ce_event *ev = dec_ok("{" HEAD ",\"x\":\"q \\\" \\\\ \\/\"}");
    ce_buf b = CE_BUF_INIT;
    ce_err err;
    /* JSON content type but the bytes are not JSON: data_base64 */
    assert_int_equal(ce_event_set_data(ev, "not json", 8), 0);
    assert_int_equal(ce_json_encode(ev, &b, &err), 0);
    assert_non_null(strstr(b.data, "\"data_base64\":\"bm90IGpzb24=\""));
    assert_non_null(strstr(b.data, "\"x\":\"q \\\" \\\\ /\""));
    free(round_trip(ev));
    /* octet-stream: base64 even when printable */
    assert_int_equal(ce_event_set_str(ev, "datacontenttype",
                                      "application/octet-stream", NULL), 0);
    ce_buf_reset(&b);
    assert_int_equal(ce_json_encode(ev, &b, &err), 0);
    assert_non_null(strstr(b.data, "\"data_base64\""));
    /* text but invalid UTF-8: base64 */
    assert_int_equal(ce_event_set_str(ev, "datacontenttype", "text/plain",
                                      NULL), 0);
    assert_int_equal(ce_event_set_data(ev, "\xff\xfe", 2), 0);
    ce_buf_reset(&b);
    assert_int_equal(ce_json_encode(ev, &b, &err), 0);
    assert_non_null(strstr(b.data, "\"data_base64\":\"//4=\""));
    free(round_trip(ev));
    /* text data: controls escaped */
    assert_int_equal(ce_event_set_data(ev, "a\tb\x01\"\\", 6), 0);
    ce_buf_reset(&b);
    assert_int_equal(ce_json_encode(ev, &b, &err), 0);
    assert_non_null(strstr(b.data, "\"data\":\"a\\tb\\u0001\\\"\\\\\"}"));
    free(round_trip(ev));
    /* pretty JSON data is written compactly */
    assert_int_equal(ce_event_set_str(ev, "datacontenttype",
                                      "application/json", NULL), 0);
    assert_int_equal(ce_event_set_data(ev, " [ 1 , {} ] \n", 13), 0);
    ce_buf_reset(&b);
    assert_int_equal(ce_json_encode(ev, &b, &err), 0);
    assert_non_null(strstr(b.data, ",\"data\":[1,{}]}"));
    /* 0.3 is never written */
    assert_int_equal(ce_event_set_str(ev, "specversion", "0.3", NULL), 0);
    size_t before = b.len;
    assert_int_equal(ce_json_encode(ev, &b, &err), CE_EINVAL);
    assert_string_equal(err.attr, "specversion");
    assert_int_equal(b.len, before);
    ce_buf_free(&b);
    ce_event_unref(ev);
}

static void test_decode_03(void **state)
{
    (void)state;
    ce_event *ev = dec_ok("{\"specversion\":\"0.3\",\"id\":\"1\",\"source\":"
                          "\"/s\",\"type\":\"t\",\"schemaurl\":\"http://s\","
                          "\"datacontentencoding\":\"base64\","
                          "\"datacontenttype\":\"text/plain\","
                          "\"data\":\"aGVsbG8=\"}");
    assert_string_equal(ce_event_get(ev, "specversion", NULL, NULL), "1.0");
    assert_string_equal(ce_event_get(ev, "dataschema", NULL, NULL),
                        "http://s");
    data_is(ev, "hello");
    free(round_trip(ev));
    ce_event_unref(ev);
}

static void test_decode_errors(void **state)
{
    (void)state;
    dec_err("", CE_EPARSE, "", "expected '{'", 0);
    dec_err("[]", CE_EPARSE, "", "expected '{'", 0);
    dec_err("{\"id\":\"1\"", CE_EPARSE, "", "expected ',' or '}'", 9);
    dec_err("{\"id\":\"1\",}", CE_EPARSE, "", "expected a string key", 10);
    dec_err("{\"id\" \"1\"}", CE_EPARSE, "", "expected ':'", 6);
    dec_err("{\"id\":\"1\x01\"}", CE_EPARSE, "", "control character", 8);
    dec_err("{\"id\":\"\\x\"}", CE_EPARSE, "", "invalid escape", 7);
    dec_err("{\"id\":\"\\ud800\"}", CE_EPARSE, "", "unpaired surrogate", 7);
    dec_err("{\"id\":\"\\udc00\"}", CE_EPARSE, "", "unpaired surrogate", 7);
    dec_err("{\"id\":\"\xc0\xa0\"}", CE_EPARSE, "", "invalid UTF-8", 7);
    dec_err("{\"id\":\"abc", CE_EPARSE, "", "unterminated string", 10);
    dec_err("{\"x\":tru}", CE_EPARSE, "", "invalid literal", 5);
    dec_err("{\"x\":01}", CE_EPARSE, "", "expected ',' or '}'", 6);
    dec_err("{\"data\":[1,]}", CE_EPARSE, "", "unexpected character ']'", 11);
    dec_err("{\"data\":1.}", CE_EPARSE, "", "digits expected after '.'", 10);
    dec_err("{" HEAD "} x", CE_EPARSE, "", "trailing characters", 56);
    dec_err("{" HEAD ",\"data\":" "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            CE_EPARSE, "", "nesting deeper", -1);
    /* CloudEvents-level errors name the attribute */
    dec_err("{" HEAD ",\"id\":\"2\"}", CE_EINVAL, "id", "more than once", -1);
    dec_err("{" HEAD ",\"x\":1,\"x\":2}", CE_EINVAL, "x", "more than once", -1);
    dec_err("{" HEAD ",\"data\":1,\"data_base64\":\"\"}", CE_EINVAL,
            "data_base64", "must not both be present", -1);
    dec_err("{" HEAD ",\"data\":1,\"data\":2}", CE_EINVAL, "data",
            "more than once", -1);
    dec_err("{\"id\":5}", CE_EINVAL, "id", "must be a JSON string", 6);
    dec_err("{\"specversion\":\"1.0\",\"id\":\"1\",\"type\":\"t\"}",
            CE_EINVAL, "source", "required attribute is missing", -1);
    dec_err("{" HEAD ",\"source\":null}", CE_EINVAL, "source",
            "more than once", -1);
    dec_err("{\"specversion\":\"1.0\",\"id\":\"1\",\"type\":\"t\","
            "\"source\":null}", CE_EINVAL, "source",
            "required attribute is missing", -1);
    dec_err("{" HEAD ",\"x\":1.5}", CE_EINVAL, "x", "not an Integer", 59);
    dec_err("{" HEAD ",\"x\":1e3}", CE_EINVAL, "x", "not an Integer", -1);
    dec_err("{" HEAD ",\"x\":2147483648}", CE_EINVAL, "x", "out of range",
            -1);
    dec_err("{" HEAD ",\"x\":{}}", CE_EINVAL, "x", "objects and arrays", -1);
    dec_err("{" HEAD ",\"x\":[]}", CE_EINVAL, "x", "objects and arrays", -1);
    dec_err("{" HEAD ",\"X\":1}", CE_EINVAL, "X", "only a-z and 0-9", -1);
    dec_err("{" HEAD ",\"time\":\"yesterday\"}", CE_EINVAL, "time",
            "RFC 3339", -1);
    dec_err("{" HEAD ",\"x\":\"\\u0007\"}", CE_EINVAL, "x",
            "control character U+0007", -1);
    dec_err("{" HEAD ",\"datacontenttype\":\"text/plain\",\"data\":{}}",
            CE_EINVAL, "data", "must be a JSON string", -1);
    dec_err("{" HEAD ",\"data_base64\":5}", CE_EINVAL, "data_base64",
            "must be a JSON string", -1);
    dec_err("{" HEAD ",\"data_base64\":\"abc\"}", CE_EINVAL, "data_base64",
            "not valid Base64", -1);
    dec_err("{\"specversion\":\"2.0\",\"id\":\"1\",\"source\":\"/s\","
            "\"type\":\"t\"}", CE_EINVAL, "specversion",
            "unsupported specversion '2.0'", -1);
}

static void test_long_values_and_growth(void **state)
{
    (void)state;
    ce_buf in = CE_BUF_INIT;
    ce_buf_puts(&in, "{" HEAD ",\"subject\":\"");
    for (int i = 0; i < 3000; i++)
        ce_buf_puts(&in, "abc\\u00e9");
    ce_buf_puts(&in, "\",\"data\":[");
    for (int i = 0; i < 2000; i++)
        ce_buf_printf(&in, "%s{\"k\": %d}", i ? ", " : "", i);
    ce_buf_puts(&in, "]}");
    ce_event *ev = dec_ok(in.data);
    size_t n;
    ce_event_get(ev, "subject", &n, NULL);
    assert_int_equal(n, 3000 * 5);
    free(round_trip(ev));
    ce_event_unref(ev);
    ce_buf_free(&in);
}

static void test_batch(void **state)
{
    (void)state;
    ce_event **evs;
    size_t n;
    ce_err err;
    assert_int_equal(ce_json_decode_batch(" [ ] ", 5, &evs, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_non_null(evs);
    ce_events_free(evs, n);
    const char *two = "[{" HEAD "},{" HEAD ",\"id\":null,\"x\":true}]";
    assert_int_equal(ce_json_decode_batch(two, strlen(two), &evs, &n, &err),
                     CE_EINVAL);
    assert_string_equal(err.attr, "[1].id");
    assert_null(evs);
    assert_int_equal(n, 0);
    two = "[{" HEAD "},\n{\"specversion\":\"1.0\",\"id\":\"2\",\"source\":"
          "\"/s\",\"type\":\"t\",\"x\":true}]";
    assert_int_equal(ce_json_decode_batch(two, strlen(two), &evs, &n, &err),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(ce_event_get(evs[1], "id", NULL, NULL), "2");
    ce_buf b = CE_BUF_INIT;
    assert_int_equal(ce_json_encode_batch(evs, n, &b, &err), 0);
    ce_event **back;
    size_t m;
    assert_int_equal(ce_json_decode_batch(b.data, b.len, &back, &m, &err), 0);
    assert_int_equal(m, 2);
    assert_true(ce_event_equal(evs[0], back[0]));
    assert_true(ce_event_equal(evs[1], back[1]));
    ce_events_free(back, m);
    ce_buf_reset(&b);
    assert_int_equal(ce_json_encode_batch(NULL, 0, &b, &err), 0);
    assert_string_equal(b.data, "[]");
    assert_int_equal(ce_event_set_str(evs[1], "type", "", NULL), 0);
    ce_buf_reset(&b);
    assert_int_equal(ce_json_encode_batch(evs, n, &b, &err), CE_EINVAL);
    assert_string_equal(err.attr, "[1].type");
    assert_int_equal(b.len, 0);
    ce_buf_free(&b);
    ce_events_free(evs, n);
    const char *bad[] = {"", "{}", "[", "[{" HEAD "}", "[{" HEAD "},]",
                         "[{" HEAD "}] x", "[1]"};
    const char *attr[] = {"", "", "[0]", "", "[1]", "", "[0]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        evs = (ce_event **)1;
        int rc = ce_json_decode_batch(bad[i], strlen(bad[i]), &evs, &n, &err);
        if (rc != CE_EPARSE)
            fail_msg("case %zu: rc %d %s", i, rc, err.msg);
        assert_string_equal(err.attr, attr[i]);
        assert_null(evs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_basic),
        cmocka_unit_test(test_decode_data),
        cmocka_unit_test(test_encode_choices),
        cmocka_unit_test(test_decode_03),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_long_values_and_growth),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
