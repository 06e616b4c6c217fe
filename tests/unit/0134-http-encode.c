/*
 * HTTP binding, encoding: binary mode (percent-encoded ce- headers,
 * Content-Type from datacontenttype, body = data), structured mode (the
 * exact Content-Type the JS SDK needs, body = JSON format), and round trips
 * encode → decode → ce_event_equal in both modes for events with typed
 * extensions, binary data, no data and non-ASCII values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cloudevents/cloudevents.h"

static ce_event *make(bool with_data)
{
    ce_event *ev = ce_event_new();
    assert_non_null(ev);
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "id", "id-1", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "source", "/sensors/tn-1", NULL),
                     0);
    assert_int_equal(ce_event_set_str(ev, "type", "com.example.t", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "subject", "Euro € 😀", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "time",
                                      "2018-04-05T17:31:00.5+02:00", NULL),
                     0);
    assert_int_equal(ce_event_set_str(ev, "myext", "100% \"quoted\"", NULL),
                     0);
    if (with_data) {
        assert_int_equal(ce_event_set_str(ev, "datacontenttype",
                                          "text/plain; charset=utf-8", NULL),
                         0);
        assert_int_equal(ce_event_set_data(ev, "hello\n", 6), 0);
    }
    return ev;
}

static const ce_header *find(const ce_headers *h, const char *name)
{
    return ce_headers_find(h->items, h->count, name);
}

static ce_event *decode_one(const ce_headers *h, const ce_buf *body)
{
    ce_event **evs;
    size_t n;
    ce_err err = {0};
    int rc = ce_http_decode(h->items, h->count, body->data, body->len, 0,
                            &evs, &n, &err);
    if (rc != CE_OK)
        fail_msg("decode: %s (%s)", err.msg, err.attr);
    assert_int_equal(n, 1);
    ce_event *ev = ce_event_ref(evs[0]);
    ce_events_free(evs, n);
    return ev;
}

static void test_binary_encode(void **state)
{
    (void)state;
    ce_event *ev = make(true);
    ce_headers h = {0};
    ce_buf body = CE_BUF_INIT;
    assert_int_equal(ce_http_encode(ev, CE_MODE_BINARY, &h, &body, NULL), 0);
    assert_string_equal(find(&h, "ce-specversion")->value, "1.0");
    assert_string_equal(find(&h, "ce-subject")->value,
                        "Euro%20%E2%82%AC%20%F0%9F%98%80");
    assert_string_equal(find(&h, "ce-myext")->value,
                        "100%25%20%22quoted%22");
    assert_string_equal(find(&h, "ce-time")->value,
                        "2018-04-05T17:31:00.5+02:00");
    assert_string_equal(find(&h, "Content-Type")->value,
                        "text/plain; charset=utf-8");
    assert_null(find(&h, "ce-datacontenttype"));
    assert_int_equal(h.count, 8);
    assert_int_equal(body.len, 6);
    assert_memory_equal(body.data, "hello\n", 6);
    /* every header name is ce-<lower-case name> or Content-Type */
    for (size_t i = 0; i < h.count; i++)
        assert_true(strncmp(h.items[i].name, "ce-", 3) == 0 ||
                    strcmp(h.items[i].name, "Content-Type") == 0);
    ce_event *back = decode_one(&h, &body);
    assert_true(ce_event_equal(ev, back));
    ce_event_unref(back);
    ce_headers_free(&h);
    ce_buf_free(&body);
    ce_event_unref(ev);
}

static void test_binary_no_data(void **state)
{
    (void)state;
    ce_event *ev = make(false);
    ce_headers h = {0};
    ce_buf body = CE_BUF_INIT;
    assert_int_equal(ce_http_encode(ev, CE_MODE_BINARY, &h, &body, NULL), 0);
    assert_null(find(&h, "Content-Type"));
    assert_int_equal(body.len, 0);
    ce_event *back = decode_one(&h, &body);
    assert_true(ce_event_equal(ev, back));
    assert_false(ce_event_has_data(back));
    ce_event_unref(back);
    ce_headers_free(&h);
    ce_buf_free(&body);
    ce_event_unref(ev);
}

static void test_structured_encode(void **state)
{
    (void)state;
    ce_event *ev = make(true);
    assert_int_equal(ce_event_set_int(ev, "count", -7, NULL), 0);
    assert_int_equal(ce_event_set_bool(ev, "flag", true, NULL), 0);
    ce_headers h = {0};
    ce_buf body = CE_BUF_INIT;
    assert_int_equal(ce_http_encode(ev, CE_MODE_STRUCTURED, &h, &body, NULL),
                     0);
    assert_int_equal(h.count, 1);
    assert_string_equal(h.items[0].name, "Content-Type");
    assert_string_equal(h.items[0].value,
                        "application/cloudevents+json; charset=utf-8");
    ce_event *direct = NULL;
    assert_int_equal(ce_json_decode(body.data, body.len, &direct, NULL), 0);
    assert_true(ce_event_equal(ev, direct));
    /* structured keeps extension types, unlike binary mode */
    ce_event *back = decode_one(&h, &body);
    assert_true(ce_event_equal(ev, back));
    ce_type t;
    assert_string_equal(ce_event_get(back, "count", NULL, &t), "-7");
    assert_int_equal(t, CE_TYPE_INTEGER);
    ce_event_unref(back);
    ce_event_unref(direct);
    ce_headers_free(&h);
    ce_buf_free(&body);
    ce_event_unref(ev);
}

static void test_binary_data_round_trip(void **state)
{
    (void)state;
    ce_event *ev = make(false);
    unsigned char bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    assert_int_equal(ce_event_set_str(ev, "datacontenttype",
                                      "application/octet-stream", NULL), 0);
    assert_int_equal(ce_event_set_data(ev, bytes, sizeof bytes), 0);
    for (int mode = CE_MODE_BINARY; mode <= CE_MODE_STRUCTURED; mode++) {
        ce_headers h = {0};
        ce_buf body = CE_BUF_INIT;
        assert_int_equal(ce_http_encode(ev, (ce_mode)mode, &h, &body, NULL),
                         0);
        ce_event *back = decode_one(&h, &body);
        assert_true(ce_event_equal(ev, back));
        ce_event_unref(back);
        ce_headers_free(&h);
        ce_buf_free(&body);
    }
    ce_event_unref(ev);
}

static void test_encode_appends_and_batch_refused(void **state)
{
    (void)state;
    ce_event *ev = make(true);
    ce_headers h = {0};
    ce_buf body = CE_BUF_INIT;
    assert_int_equal(ce_headers_add(&h, "Host", 4, "x", 1), 0);
    assert_int_equal(ce_buf_puts(&body, "pre"), 0);
    ce_err err = {0};
    assert_int_equal(ce_http_encode(ev, CE_MODE_BATCH, &h, &body, &err),
                     CE_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "ce_json_encode_batch"));
    assert_int_equal(h.count, 1);
    assert_int_equal(body.len, 3);
    assert_int_equal(ce_http_encode(ev, CE_MODE_BINARY, &h, &body, NULL), 0);
    assert_string_equal(h.items[0].name, "Host");
    assert_int_equal(h.count, 9);
    assert_string_equal(body.data, "prehello\n");
    ce_headers_free(&h);
    ce_buf_free(&body);
    ce_event_unref(ev);
}

/* JSON-format events without datacontenttype: JSON data is announced as
 * application/json; data_base64 bytes and non-compact bodies received in
 * binary mode without Content-Type stay unlabelled. */
static void test_json_default_content_type(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\","
         "\"type\":\"t\",\"data\":{\"a\": [1, 2]}}", "application/json"},
        {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\","
         "\"type\":\"t\",\"data\":\"I'm just a string\"}",
         "application/json"},
        {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\","
         "\"type\":\"t\",\"data_base64\":\"AAECAw==\"}", NULL},
    };
    static const char *const bodies[] = {"{\"a\":[1,2]}",
                                         "\"I'm just a string\"", NULL};
    for (size_t i = 0; i < 3; i++) {
        ce_event *ev = NULL;
        assert_int_equal(ce_json_decode(cases[i][0], strlen(cases[i][0]),
                                        &ev, NULL), 0);
        ce_headers h = {0};
        ce_buf body = CE_BUF_INIT;
        assert_int_equal(ce_http_encode(ev, CE_MODE_BINARY, &h, &body, NULL),
                         0);
        const ce_header *ct = find(&h, "Content-Type");
        if (cases[i][1]) {
            assert_non_null(ct);
            assert_string_equal(ct->value, cases[i][1]);
            assert_string_equal(body.data, bodies[i]);
        } else {
            assert_null(ct);
            assert_int_equal(body.len, 4);
        }
        ce_headers_free(&h);
        ce_buf_free(&body);
        ce_event_unref(ev);
    }
    /* a binary-mode body with a trailing newline and no Content-Type
     * round-trips without gaining one */
    ce_header in[] = {{"ce-specversion", 14, "1.0", 3}, {"ce-id", 5, "1", 1},
                      {"ce-source", 9, "/s", 2}, {"ce-type", 7, "t", 1}};
    ce_event **evs;
    size_t n;
    assert_int_equal(ce_http_decode(in, 4, "{\"a\":1}\n", 8, 0, &evs, &n,
                                    NULL), 0);
    ce_headers h = {0};
    ce_buf body = CE_BUF_INIT;
    assert_int_equal(ce_http_encode(evs[0], CE_MODE_BINARY, &h, &body, NULL),
                     0);
    assert_null(find(&h, "Content-Type"));
    ce_headers_free(&h);
    ce_buf_free(&body);
    ce_events_free(evs, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_encode),
        cmocka_unit_test(test_binary_no_data),
        cmocka_unit_test(test_structured_encode),
        cmocka_unit_test(test_binary_data_round_trip),
        cmocka_unit_test(test_encode_appends_and_batch_refused),
        cmocka_unit_test(test_json_default_content_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
