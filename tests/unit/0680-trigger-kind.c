/*
 * 0680-trigger-kind: Trigger documents through kn_resources_parse — a full
 * valid trigger (filters, subscriber ref + relative uri, delivery with a
 * dead-letter sink ref, every annotation), the defaults of its options,
 * and each mistake with its "file:line: field: message": missing broker
 * or subscriber, refs knit cannot resolve (Service: not supported yet),
 * brokerRef, bad filters (compiled at apply time), bad annotations; and
 * the immutability of spec.broker (kn_trigger_check_update).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/broker.h"
#include "broker/dispatch/dispatch.h"

static const char full[] =
    "apiVersion: eventing.knative.dev/v1\n"
    "kind: Trigger\n"
    "metadata:\n"
    "  name: orders\n"
    "  namespace: shop\n"
    "  annotations:\n"
    "    kafka.eventing.knative.dev/delivery.order: ordered\n"
    "    knit.dev/max-in-flight: \"7\"\n"
    "    knit.dev/rate-limit: \"250\"\n"
    "spec:\n"
    "  broker: main\n"
    "  filter:\n"
    "    attributes:\n"
    "      type: order.created\n"
    "  filters:\n"
    "    - prefix:\n"
    "        type: order.\n"
    "    - not:\n"
    "        exact:\n"
    "          source: /test\n"
    "  subscriber:\n"
    "    ref:\n"
    "      apiVersion: eventing.knative.dev/v1\n"
    "      kind: Broker\n"
    "      name: audit\n"
    "    uri: /incoming\n"
    "  delivery:\n"
    "    retry: 3\n"
    "    backoffDelay: PT1S\n"
    "    deadLetterSink:\n"
    "      ref:\n"
    "        kind: Broker\n"
    "        name: dead\n"
    "status:\n"
    "  conditions: []\n";

static int parse(const char *text, kn_resource ***rs, size_t *n, char *msg,
                 size_t msgn)
{
    kn_err err = {0};
    int rc = kn_resources_parse("t.yaml", text, strlen(text), rs, n, &err);
    kn_err_str(&err, msg, msgn);
    return rc;
}

static void expect_error(const char *text, const char *want)
{
    kn_resource **rs = NULL;
    size_t n = 0;
    char msg[1024];
    int rc = parse(text, &rs, &n, msg, sizeof msg);
    if (rc == KN_OK || !strstr(msg, want))
        fail_msg("input:\n%s\nwant: %s\ngot (%d): %s", text, want, rc, msg);
    assert_null(rs);
}

/* A trigger with `meta` lines after the name and `spec` lines. */
static void trigger_with(char *buf, size_t n, const char *meta,
                         const char *spec)
{
    snprintf(buf, n,
             "apiVersion: eventing.knative.dev/v1\n" /* 1 */
             "kind: Trigger\n"                       /* 2 */
             "metadata:\n"                           /* 3 */
             "  name: t\n"                           /* 4 */
             "%s"
             "spec:\n"
             "%s",
             meta, spec);
}

static void test_full(void **state)
{
    (void)state;
    kn_resource **rs = NULL;
    size_t n = 0;
    char msg[1024];
    assert_int_equal(parse(full, &rs, &n, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 1);
    kn_resource *r = rs[0];
    assert_ptr_equal(r->kind, &kn_kind_trigger);
    assert_string_equal(r->ns, "shop");
    assert_string_equal(kn_trigger_broker(r), "main");
    assert_null(json_object_get(r->obj, "status"));
    kn_trigger_opts o;
    kn_err err = {0};
    assert_int_equal(kn_trigger_options(r, &o, &err), KN_OK);
    assert_true(o.ordered);
    assert_int_equal(o.max_in_flight, 7);
    assert_int_equal(o.rate_limit, 250);
    kn_resources_free(rs, n);
}

static void test_defaults(void **state)
{
    (void)state;
    char buf[1024];
    kn_resource **rs = NULL;
    size_t n = 0;
    char msg[1024];
    trigger_with(buf, sizeof buf, "",
                 "  broker: b\n  subscriber:\n    uri: http://x:1/\n");
    assert_int_equal(parse(buf, &rs, &n, msg, sizeof msg), KN_OK);
    kn_trigger_opts o;
    assert_int_equal(kn_trigger_options(rs[0], &o, NULL), KN_OK);
    assert_false(o.ordered);
    assert_int_equal(o.max_in_flight, KN_TRIGGER_DEFAULT_MAX_IN_FLIGHT);
    assert_int_equal(o.rate_limit, 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(rs[0]->obj, "metadata"),
                            "namespace")),
                        "default");
    kn_resources_free(rs, n);
}

static void test_errors(void **state)
{
    (void)state;
    char buf[2048];
    trigger_with(buf, sizeof buf, "", "  subscriber:\n    uri: http://x/\n");
    expect_error(buf, "spec.broker: required field is missing");
    trigger_with(buf, sizeof buf, "", "  broker: b\n");
    expect_error(buf, "spec.subscriber: required field is missing");
    trigger_with(buf, sizeof buf, "",
                 "  broker: b\n  subscriber:\n    uri: /relative\n");
    expect_error(buf, "t.yaml:8: spec.subscriber.uri: expected an absolute "
                      "http:// or https:// URL");
    trigger_with(buf, sizeof buf, "",
                 "  broker: b\n  subscriber:\n    ref:\n"
                 "      apiVersion: serving.knative.dev/v1\n"
                 "      kind: Service\n      name: svc\n");
    expect_error(buf, "spec.subscriber.ref.kind: a ref to a Service is not "
                      "supported yet");
    trigger_with(buf, sizeof buf, "",
                 "  broker: b\n  subscriber:\n    ref:\n"
                 "      kind: Channel\n      name: c\n");
    expect_error(buf, "spec.subscriber.ref.kind: knit resolves refs to a "
                      "Broker only, got Channel");
    trigger_with(buf, sizeof buf, "",
                 "  broker: b\n  subscriber:\n    uri: http://x/\n"
                 "  delivery:\n    deadLetterSink:\n      ref:\n"
                 "        kind: Service\n        name: s\n");
    expect_error(buf, "spec.delivery.deadLetterSink.ref.kind: a ref to a "
                      "Service is not supported yet");
    trigger_with(buf, sizeof buf, "",
                 "  brokerRef:\n    name: b\n  broker: b\n"
                 "  subscriber:\n    uri: http://x/\n");
    expect_error(buf, "spec.brokerRef: ");
    trigger_with(buf, sizeof buf, "",
                 "  broker: b\n  subscriber:\n    uri: http://x/\n"
                 "  filters:\n    - exact:\n        type: a\n"
                 "      prefix:\n        type: b\n");
    expect_error(buf, "t.yaml:");
    expect_error(buf, "spec.filters[0]");
    trigger_with(buf, sizeof buf, "",
                 "  broker: b\n  subscriber:\n    uri: http://x/\n"
                 "  filters:\n    - cesql: \"type = \"\n");
    expect_error(buf, "spec.filters[0].cesql");
    trigger_with(buf, sizeof buf, "",
                 "  broker: B_b\n  subscriber:\n    uri: http://x/\n");
    expect_error(buf, "spec.broker: \"B_b\" is not a valid name");
    trigger_with(buf, sizeof buf,
                 "  annotations:\n    knit.dev/max-in-flight: \"0\"\n",
                 "  broker: b\n  subscriber:\n    uri: http://x/\n");
    expect_error(buf, "knit.dev/max-in-flight: expected an integer from 1 "
                      "to 10000, got \"0\"");
    trigger_with(buf, sizeof buf,
                 "  annotations:\n    knit.dev/rate-limit: fast\n",
                 "  broker: b\n  subscriber:\n    uri: http://x/\n");
    expect_error(buf, "knit.dev/rate-limit: expected events per second");
    trigger_with(buf, sizeof buf,
                 "  annotations:\n"
                 "    kafka.eventing.knative.dev/delivery.order: random\n",
                 "  broker: b\n  subscriber:\n    uri: http://x/\n");
    expect_error(buf, "\"random\" is not one of: ordered, unordered");
    trigger_with(buf, sizeof buf,
                 "  annotations:\n    knit.dev/max-event-size: 1Mi\n",
                 "  broker: b\n  subscriber:\n    uri: http://x/\n");
    expect_error(buf, "unknown knit annotation for Trigger");
}

static kn_resource *one(const char *broker)
{
    char buf[1024];
    char spec[256];
    kn_resource **rs = NULL;
    size_t n = 0;
    char msg[1024];
    snprintf(spec, sizeof spec,
             "  broker: %s\n  subscriber:\n    uri: http://x:1/\n", broker);
    trigger_with(buf, sizeof buf, "", spec);
    assert_int_equal(parse(buf, &rs, &n, msg, sizeof msg), KN_OK);
    kn_resource *r = rs[0];
    free(rs);
    return r;
}

static void test_immutable_broker(void **state)
{
    (void)state;
    kn_resource *a = one("b1"), *same = one("b1"), *moved = one("b2");
    kn_err err = {0};
    assert_int_equal(kn_trigger_check_update(a, same, &err), KN_OK);
    assert_int_equal(kn_trigger_check_update(NULL, moved, &err), KN_OK);
    assert_int_equal(kn_trigger_check_update(a, moved, &err), KN_INVAL);
    assert_string_equal(err.field, "spec.broker");
    assert_non_null(strstr(err.msg, "immutable"));
    assert_non_null(strstr(err.where, "t.yaml:"));
    kn_resource_decref(a);
    kn_resource_decref(same);
    kn_resource_decref(moved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_immutable_broker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
