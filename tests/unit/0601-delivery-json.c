/*
 * 0601-delivery-json: reading a Knative `delivery` object into a spec —
 * every field, defaults kept for absent fields, and errors that name the
 * field path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sinks/sinks.h"

static int parse(const char *text, kn_delivery_spec *s, kn_err *err)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    kn_delivery_spec_default(s);
    memset(err, 0, sizeof *err);
    int rc = kn_delivery_spec_from_json(j, "spec.delivery", s, err);
    json_decref(j);
    return rc;
}

static void test_all_fields(void **state)
{
    kn_delivery_spec s;
    kn_err err;
    (void)state;
    assert_int_equal(parse("{\"retry\": 3, \"backoffPolicy\": \"linear\","
                           " \"backoffDelay\": \"PT0.5S\","
                           " \"backoffMax\": \"PT10S\", \"timeout\": \"PT2S\","
                           " \"retryAfterMax\": \"PT1M\", \"format\": \"json\","
                           " \"deadLetterSink\": {\"uri\": \"http://x/\"}}",
                           &s, &err), KN_OK);
    assert_int_equal(s.retry, 3);
    assert_int_equal(s.policy, KN_BACKOFF_LINEAR);
    assert_int_equal(s.backoff_delay_ms, 500);
    assert_int_equal(s.backoff_max_ms, 10000);
    assert_int_equal(s.timeout_ms, 2000);
    assert_int_equal(s.retry_after_max_ms, 60000);
    assert_int_equal(s.format, KN_FORMAT_JSON);
    assert_null(s.dead_letter_url);        /* the caller resolves it */
    assert_int_equal(kn_delivery_spec_check(&s, &err), KN_OK);
}

static void test_partial_keeps_defaults(void **state)
{
    kn_delivery_spec s;
    kn_err err;
    (void)state;
    assert_int_equal(parse("{\"retry\": 0}", &s, &err), KN_OK);
    assert_int_equal(s.retry, 0);
    assert_int_equal(s.policy, KN_BACKOFF_EXPONENTIAL);
    assert_int_equal(s.backoff_delay_ms, 200);
    assert_int_equal(s.backoff_max_ms, KN_DELIVERY_UNSET);
    assert_int_equal(parse("{}", &s, &err), KN_OK);
    assert_int_equal(s.retry, 10);
    /* PT0S retryAfterMax disables Retry-After; PT0S backoffMax is 0 */
    assert_int_equal(parse("{\"retryAfterMax\": \"PT0S\", "
                           "\"backoffMax\": \"PT0S\", "
                           "\"backoffPolicy\": \"exponential\"}",
                           &s, &err), KN_OK);
    assert_int_equal(s.retry_after_max_ms, 0);
    assert_int_equal(s.backoff_max_ms, 0);
    assert_int_equal(parse("{\"retry\": 2147483647}", &s, &err), KN_OK);
    assert_int_equal(s.retry, INT32_MAX);
}

static void expect_err(const char *text, const char *field)
{
    kn_delivery_spec s;
    kn_err err;
    if (parse(text, &s, &err) != KN_INVAL)
        fail_msg("%s: accepted", text);
    if (strcmp(err.field, field) != 0)
        fail_msg("%s: field \"%s\", want \"%s\"", text, err.field, field);
    assert_true(strlen(err.msg) > 0);
}

static void test_errors(void **state)
{
    (void)state;
    expect_err("{\"retry\": -1}", "spec.delivery.retry");
    expect_err("{\"retry\": 2147483648}", "spec.delivery.retry");
    expect_err("{\"retry\": \"3\"}", "spec.delivery.retry");
    expect_err("{\"retry\": 1.5}", "spec.delivery.retry");
    expect_err("{\"backoffPolicy\": \"quadratic\"}",
               "spec.delivery.backoffPolicy");
    expect_err("{\"backoffPolicy\": 1}", "spec.delivery.backoffPolicy");
    expect_err("{\"backoffDelay\": \"bogus\"}", "spec.delivery.backoffDelay");
    expect_err("{\"backoffDelay\": 200}", "spec.delivery.backoffDelay");
    expect_err("{\"backoffMax\": \"1s\"}", "spec.delivery.backoffMax");
    expect_err("{\"timeout\": \"PT0S\"}", "spec.delivery.timeout");
    expect_err("{\"retryAfterMax\": \"soon\"}",
               "spec.delivery.retryAfterMax");
    expect_err("{\"format\": \"xml\"}", "spec.delivery.format");
    expect_err("{\"deadLetterSink\": \"http://x\"}",
               "spec.delivery.deadLetterSink");
    expect_err("{\"retries\": 3}", "spec.delivery.retries");
    expect_err("[]", "spec.delivery");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_fields),
        cmocka_unit_test(test_partial_keeps_defaults),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
