/*
 * HTTP binding, structured and batched modes: JSON format only (other
 * formats CE_EUNSUPPORTED), ce- headers ignored in structured mode, batch
 * decoding all-or-nothing with the failing index in the error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cloudevents/cloudevents.h"

static int decode(const char *ctype, const char *body, ce_event ***evs,
                  size_t *n, ce_err *err)
{
    ce_header h[2] = {
        {"Content-Type", 12, ctype, strlen(ctype)},
        {"ce-id", 5, "from-header", 11},
    };
    /* ce- headers of a structured message are ignored, even bad ones */
    ce_header bad[3] = {
        {"ce-id", 5, "100%", 4},
        {"ce-specversion", 14, "9", 1},
        {"Content-Type", 12, ctype, strlen(ctype)},
    };
    if (ce_http_mode(ctype, strlen(ctype)) != CE_MODE_BINARY) {
        ce_event **e2 = NULL;
        size_t n2 = 0;
        ce_err err2;
        int rc = ce_http_decode(bad, 3, body, strlen(body), 0, &e2, &n2,
                                &err2);
        int rc2 = ce_http_decode(h, 2, body, strlen(body), 0, evs, n, err);
        assert_int_equal(rc, rc2);
        if (rc == CE_OK)
            assert_int_equal(n2, *n);
        ce_events_free(e2, n2);
        return rc2;
    }
    return ce_http_decode(h, 2, body, strlen(body), 0, evs, n, err);
}

static const char ev1[] =
    "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
    "\"datacontenttype\":\"application/json\",\"data\":{\"x\":1}}";
static const char ev2[] =
    "{\"specversion\":\"1.0\",\"id\":\"2\",\"source\":\"/s\",\"type\":\"t2\","
    "\"myext\":\"v\"}";
static const char ev_bad[] =
    "{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"/s\",\"type\":\"t\"}";

static void test_structured(void **state)
{
    (void)state;
    static const char *const cts[] = {
        "application/cloudevents+json",
        "application/cloudevents+json; charset=UTF-8",
        "Application/CloudEvents+JSON;charset=utf-8",
    };
    for (size_t i = 0; i < 3; i++) {
        ce_event **evs;
        size_t n;
        ce_err err = {0};
        int rc = decode(cts[i], ev1, &evs, &n, &err);
        if (rc != CE_OK)
            fail_msg("%s: %s", cts[i], err.msg);
        assert_int_equal(n, 1);
        /* attributes come from the body, not from ce- headers */
        assert_string_equal(ce_event_get(evs[0], "id", NULL, NULL), "1");
        size_t len;
        const char *d = ce_event_data(evs[0], &len);
        assert_int_equal(len, 7);
        assert_memory_equal(d, "{\"x\":1}", 7);
        ce_events_free(evs, n);
    }
}

static void test_structured_errors(void **state)
{
    (void)state;
    ce_event **evs;
    size_t n;
    ce_err err = {0};
    assert_int_equal(decode("application/cloudevents+avro", ev1, &evs, &n,
                            &err), CE_EUNSUPPORTED);
    assert_null(evs);
    assert_string_equal(err.attr, "Content-Type");
    assert_string_equal(err.msg,
                        "Content-Type application/cloudevents+avro: only "
                        "the JSON event format (application/cloudevents+"
                        "json, application/cloudevents-batch+json) is "
                        "supported");
    assert_int_equal(decode("application/cloudevents+jsonx", ev1, &evs, &n,
                            &err), CE_EUNSUPPORTED);
    assert_int_equal(decode("application/cloudevents-batch+xml", "[]", &evs,
                            &n, &err), CE_EUNSUPPORTED);
    assert_int_equal(decode("application/cloudevents+json", "{", &evs, &n,
                            &err), CE_EPARSE);
    assert_int_equal(decode("application/cloudevents+json", ev_bad, &evs,
                            &n, &err), CE_EINVAL);
    assert_string_equal(err.attr, "id");
}

static void test_batch(void **state)
{
    (void)state;
    char body[1024];
    snprintf(body, sizeof body, "[%s,%s]", ev1, ev2);
    ce_event **evs;
    size_t n;
    ce_err err = {0};
    int rc = decode("application/cloudevents-batch+json", body, &evs, &n,
                    &err);
    if (rc != CE_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(n, 2);
    assert_string_equal(ce_event_get(evs[0], "id", NULL, NULL), "1");
    assert_string_equal(ce_event_get(evs[1], "myext", NULL, NULL), "v");
    ce_events_free(evs, n);

    assert_int_equal(decode("application/cloudevents-batch+json", "[]",
                            &evs, &n, &err), CE_OK);
    assert_int_equal(n, 0);
    ce_events_free(evs, n);
}

static void test_batch_all_or_nothing(void **state)
{
    (void)state;
    char body[1024];
    snprintf(body, sizeof body, "[%s,%s,%s]", ev1, ev_bad, ev2);
    ce_event **evs = (ce_event **)1;
    size_t n = 7;
    ce_err err = {0};
    assert_int_equal(decode("application/cloudevents-batch+json", body,
                            &evs, &n, &err), CE_EINVAL);
    assert_null(evs);
    assert_int_equal(n, 0);
    assert_string_equal(err.attr, "[1].id");
    /* not an array */
    assert_int_equal(decode("application/cloudevents-batch+json", ev1, &evs,
                            &n, &err), CE_EPARSE);
    assert_null(evs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structured),
        cmocka_unit_test(test_structured_errors),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_batch_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
