/*
 * HTTP binding, binary mode decoding: ce- headers to attributes (names
 * case-insensitive, values percent-decoded, extensions as Strings),
 * Content-Type to datacontenttype, the body to data; and every error a
 * binary message can produce, with its text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cloudevents/cloudevents.h"

#define H(n, v) {n, sizeof n - 1, v, sizeof v - 1}

/* The four required headers, then up to 8 more from the caller. */
typedef struct msg {
    ce_header h[12];
    size_t n;
} msg;

static msg base(void)
{
    msg m = {.h = {H("ce-specversion", "1.0"), H("ce-id", "A234-1234"),
                   H("ce-source", "/mycontext"),
                   H("ce-type", "com.example.someevent")},
             .n = 4};
    return m;
}

static void add(msg *m, const char *name, const char *value)
{
    m->h[m->n++] = (ce_header){name, strlen(name), value, strlen(value)};
}

/* Decodes m with body; expects success and returns the one event. */
static ce_event *ok(const msg *m, const char *body, unsigned flags)
{
    ce_event **evs = NULL;
    size_t n = 0;
    ce_err err = {0};
    int rc = ce_http_decode(m->h, m->n, body, body ? strlen(body) : 0, flags,
                            &evs, &n, &err);
    if (rc != CE_OK)
        fail_msg("decode failed: %s (attr %s)", err.msg, err.attr);
    assert_int_equal(n, 1);
    ce_event *ev = ce_event_ref(evs[0]);
    ce_events_free(evs, n);
    return ev;
}

/* Decodes m; expects failure with `code` and returns the error. */
static ce_err bad(const msg *m, unsigned flags, int code)
{
    ce_event **evs = (ce_event **)1;
    size_t n = 99;
    ce_err err = {0};
    assert_int_equal(ce_http_decode(m->h, m->n, "", 0, flags, &evs, &n,
                                    &err), code);
    assert_null(evs);
    assert_int_equal(n, 0);
    assert_int_equal(err.code, code);
    return err;
}

static void test_mode(void **state)
{
    (void)state;
    assert_int_equal(ce_http_mode(NULL, 0), CE_MODE_BINARY);
    assert_int_equal(ce_http_mode("text/plain", 10), CE_MODE_BINARY);
    assert_int_equal(ce_http_mode("application/json", 16), CE_MODE_BINARY);
    const char *s = "application/cloudevents+json; charset=UTF-8";
    assert_int_equal(ce_http_mode(s, strlen(s)), CE_MODE_STRUCTURED);
    s = "Application/CloudEvents+avro";
    assert_int_equal(ce_http_mode(s, strlen(s)), CE_MODE_STRUCTURED);
    s = "application/cloudevents-batch+json";
    assert_int_equal(ce_http_mode(s, strlen(s)), CE_MODE_BATCH);
    s = " APPLICATION/CLOUDEVENTS-BATCH+JSON";
    assert_int_equal(ce_http_mode(s, strlen(s)), CE_MODE_BATCH);
    /* a prefix of the media type is not enough */
    assert_int_equal(ce_http_mode("application/cloudevent", 22),
                     CE_MODE_BINARY);
}

static void test_decode_full(void **state)
{
    (void)state;
    msg m = base();
    add(&m, "CE-Time", "2018-04-05T17:31:00Z");
    add(&m, "Ce-Subject", "Euro%20%E2%82%AC%20%F0%9F%98%80");
    add(&m, "ce-dataschema", "https://example.com/schema");
    add(&m, "Content-Type", "application/json; charset=utf-8");
    add(&m, "ce-myext", "42");
    add(&m, "User-Agent", "curl/8");           /* not an attribute */
    add(&m, "traceparent", "00-abc");          /* only ce- headers count */
    ce_event *ev = ok(&m, "{\"a\":1}", 0);
    size_t len;
    ce_type t;
    assert_string_equal(ce_event_get(ev, "specversion", NULL, NULL), "1.0");
    assert_string_equal(ce_event_get(ev, "id", NULL, NULL), "A234-1234");
    assert_string_equal(ce_event_get(ev, "source", NULL, NULL),
                        "/mycontext");
    assert_string_equal(ce_event_get(ev, "time", NULL, NULL),
                        "2018-04-05T17:31:00Z");
    assert_string_equal(ce_event_get(ev, "subject", NULL, NULL),
                        "Euro € 😀");
    assert_string_equal(ce_event_get(ev, "datacontenttype", NULL, NULL),
                        "application/json; charset=utf-8");
    /* an extension from a header is a String even when it looks numeric */
    assert_string_equal(ce_event_get(ev, "myext", &len, &t), "42");
    assert_int_equal(t, CE_TYPE_STRING);
    assert_null(ce_event_get(ev, "user-agent", NULL, NULL));
    assert_null(ce_event_get(ev, "traceparent", NULL, NULL));
    assert_int_equal(ce_event_attr_count(ev), 9);
    assert_true(ce_event_has_data(ev));
    const char *d = ce_event_data(ev, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(d, "{\"a\":1}", 7);
    ce_event_unref(ev);
}

static void test_empty_body_no_ctype(void **state)
{
    (void)state;
    msg m = base();
    ce_event *ev = ok(&m, NULL, 0);
    assert_false(ce_event_has_data(ev));
    assert_null(ce_event_get(ev, "datacontenttype", NULL, NULL));
    assert_int_equal(ce_event_attr_count(ev), 4);
    ce_event_unref(ev);
    /* an empty Content-Type is no Content-Type */
    add(&m, "Content-Type", " ");
    ev = ok(&m, "", 0);
    assert_null(ce_event_get(ev, "datacontenttype", NULL, NULL));
    ce_event_unref(ev);
}

static void test_missing_required(void **state)
{
    (void)state;
    static const char *const req[] = {"ce-specversion", "ce-id",
                                      "ce-source", "ce-type"};
    for (size_t skip = 0; skip < 4; skip++) {
        msg full = base(), m = {.n = 0};
        for (size_t i = 0; i < 4; i++)
            if (i != skip)
                m.h[m.n++] = full.h[i];
        ce_err e = bad(&m, 0, CE_EINVAL);
        assert_string_equal(e.attr, req[skip]);
        char want[64];
        snprintf(want, sizeof want, "missing required header %s",
                 req[skip]);
        assert_string_equal(e.msg, want);
        /* not skipped by NO_VALIDATE: it is not a CloudEvent at all */
        bad(&m, CE_DECODE_NO_VALIDATE, CE_EINVAL);
    }
    msg none = {.n = 0};
    ce_err e = bad(&none, 0, CE_EINVAL);
    assert_string_equal(e.attr, "ce-specversion");
}

static void test_header_errors(void **state)
{
    (void)state;
    msg m = base();
    add(&m, "ce-datacontenttype", "text/plain");
    ce_err e = bad(&m, 0, CE_EINVAL);
    assert_string_equal(e.attr, "ce-datacontenttype");
    assert_string_equal(e.msg, "header ce-datacontenttype must not be sent "
                               "in binary mode: Content-Type carries "
                               "datacontenttype");

    m = base();
    add(&m, "CE-ID", "again");
    e = bad(&m, 0, CE_EINVAL);
    assert_string_equal(e.attr, "ce-id");
    assert_string_equal(e.msg, "header ce-id appears more than once");

    m = base();
    add(&m, "Content-Type", "text/plain");
    add(&m, "content-type", "text/html");
    e = bad(&m, 0, CE_EINVAL);
    assert_string_equal(e.msg, "header Content-Type appears more than once");

    m = base();
    add(&m, "ce-", "x");
    e = bad(&m, 0, CE_EINVAL);
    assert_string_equal(e.msg, "header ce-: empty attribute name");

    m = base();
    add(&m, "ce-Bad_Name", "x");
    e = bad(&m, 0, CE_EINVAL);
    assert_string_equal(e.attr, "ce-bad_name");
    assert_non_null(strstr(e.msg, "header ce-bad_name: "));

    m = base();
    add(&m, "ce-averyveryveryveryveryveryveryveryveryveryveryveryveryvery"
             "veryverylongname",
        "x");
    e = bad(&m, 0, CE_EINVAL);
    assert_non_null(strstr(e.msg, "attribute name too long"));

    m = base();
    add(&m, "ce-time", "yesterday");
    e = bad(&m, 0, CE_EINVAL);
    assert_string_equal(e.attr, "ce-time");
    assert_non_null(strstr(e.msg, "header ce-time: "));
}

static void test_strict_lenient(void **state)
{
    (void)state;
    msg m = base();
    add(&m, "ce-subject", "100%");
    ce_err e = bad(&m, 0, CE_EPARSE);
    assert_string_equal(e.attr, "ce-subject");
    assert_string_equal(e.msg, "ce-subject: invalid percent-escape at "
                               "offset 3 (use %25 for a literal '%')");
    ce_event *ev = ok(&m, NULL, CE_DECODE_LENIENT);
    assert_string_equal(ce_event_get(ev, "subject", NULL, NULL), "100%");
    ce_event_unref(ev);

    /* a raw UTF-8 value as sdk-go / the JS SDK send it */
    m = base();
    add(&m, "ce-subject", "caf\xc3\xa9");
    e = bad(&m, 0, CE_EPARSE);
    assert_string_equal(e.msg, "ce-subject: byte 0xC3 at offset 3 must be "
                               "percent-encoded");
    ev = ok(&m, NULL, CE_DECODE_LENIENT);
    assert_string_equal(ce_event_get(ev, "subject", NULL, NULL),
                        "caf\xc3\xa9");
    ce_event_unref(ev);

    /* overlong UTF-8 is rejected in both modes */
    m = base();
    add(&m, "ce-subject", "a%C0%A0b");
    e = bad(&m, 0, CE_EPARSE);
    assert_non_null(strstr(e.msg, "ce-subject: decoded value is not valid "
                                  "UTF-8"));
    bad(&m, CE_DECODE_LENIENT, CE_EPARSE);
}

static void test_quoted_and_long_values(void **state)
{
    (void)state;
    msg m = base();
    add(&m, "ce-subject", "\"quoted \\\"value\\\"\"");
    ce_event *ev = ok(&m, NULL, 0);
    assert_string_equal(ce_event_get(ev, "subject", NULL, NULL),
                        "quoted \"value\"");
    ce_event_unref(ev);

    /* a value longer than the decoder's stack buffer */
    static char longv[3 * 700 + 1], want[701];
    for (int i = 0; i < 700; i++) {
        memcpy(longv + 3 * i, "%41", 3);
        want[i] = 'A';
    }
    m = base();
    add(&m, "ce-subject", longv);
    ev = ok(&m, NULL, 0);
    assert_string_equal(ce_event_get(ev, "subject", NULL, NULL), want);
    ce_event_unref(ev);
}

static void test_no_validate(void **state)
{
    (void)state;
    msg m = {.h = {H("ce-specversion", "2.0"), H("ce-id", "1"),
                   H("ce-source", "/s"), H("ce-type", "t")},
             .n = 4};
    ce_err e = bad(&m, 0, CE_EINVAL);
    assert_string_equal(e.attr, "specversion");
    ce_event *ev = ok(&m, NULL, CE_DECODE_NO_VALIDATE);
    assert_string_equal(ce_event_get(ev, "specversion", NULL, NULL), "2.0");
    ce_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode),
        cmocka_unit_test(test_decode_full),
        cmocka_unit_test(test_empty_body_no_ctype),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_strict_lenient),
        cmocka_unit_test(test_quoted_and_long_values),
        cmocka_unit_test(test_no_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
