/*
 * 0401-broker-resources: Broker and ConfigMap documents through
 * kn_resources_parse — a full valid Broker (every DeliverySpec field and
 * annotation), defaults (namespace), and every kind of config mistake with
 * its exact "file:line: field.path: message": names, labels, annotations,
 * delivery fields, destinations, references, kinds and apiVersions, YAML
 * syntax, duplicates, and that one bad document rejects the whole file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/broker.h"

static const char full_broker[] =
    "# a broker with everything set\n"
    "apiVersion: eventing.knative.dev/v1\n"
    "kind: Broker\n"
    "metadata:\n"
    "  name: demo\n"
    "  namespace: team-a\n"
    "  labels:\n"
    "    app.kubernetes.io/name: demo\n"
    "    tier: \"\"\n"
    "  annotations:\n"
    "    eventing.knative.dev/broker.class: MTChannelBasedBroker\n"
    "    knit.dev/max-event-size: 64Ki\n"
    "    knit.dev/durability: write\n"
    "    knit.dev/retention-bytes: 1Gi\n"
    "    knit.dev/retention: P7D\n"
    "    knit.dev/segment-bytes: 64Mi\n"
    "    knit.dev/retention-max-bytes: 2Gi\n"
    "    knit.dev/recovery: truncate\n"
    "    knit.dev/header-decoding: lenient\n"
    "    example.com/owner: someone\n"
    "spec:\n"
    "  config:\n"
    "    apiVersion: v1\n"
    "    kind: ConfigMap\n"
    "    name: demo-config\n"
    "  delivery:\n"
    "    deadLetterSink:\n"
    "      uri: http://dls.example.com/events\n"
    "    retry: 5\n"
    "    backoffPolicy: linear\n"
    "    backoffDelay: PT0.5S\n"
    "    backoffMax: PT1M\n"
    "    timeout: PT30S\n"
    "    retryAfterMax: PT10M\n"
    "    format: json\n"
    "status:\n"
    "  conditions: []\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: ConfigMap\n"
    "metadata:\n"
    "  name: demo-config\n"
    "  namespace: team-a\n"
    "data:\n"
    "  retention: PT1H\n"
    "  segment-bytes: \"1048576\"\n";

static int parse(const char *text, kn_resource ***rs, size_t *n, char *msg,
                 size_t msgn, kn_err *errout)
{
    kn_err err = {0};
    int rc = kn_resources_parse("brokers.yaml", text, strlen(text), rs, n,
                                &err);
    kn_err_str(&err, msg, msgn);
    if (errout)
        *errout = err;
    return rc;
}

static void expect_error(const char *text, const char *want)
{
    kn_resource **rs = NULL;
    size_t n = 0;
    char msg[1024];
    int rc = parse(text, &rs, &n, msg, sizeof msg, NULL);
    if (rc == KN_OK || strcmp(msg, want) != 0)
        fail_msg("input:\n%s\nwant: %s\ngot (%d): %s", text, want, rc, msg);
    assert_null(rs);
    assert_int_equal(n, 0);
}

/* A minimal broker with `extra` appended under the given prefix. */
static void broker_with(char *buf, size_t n, const char *meta_extra,
                        const char *body)
{
    snprintf(buf, n,
             "apiVersion: eventing.knative.dev/v1\n" /* 1 */
             "kind: Broker\n"                        /* 2 */
             "metadata:\n"                           /* 3 */
             "  name: demo\n"                        /* 4 */
             "%s"                                    /* 5.. */
             "%s",
             meta_extra, body);
}

static void test_full_broker(void **state)
{
    (void)state;
    kn_resource **rs = NULL;
    size_t n = 0;
    char msg[512];
    assert_int_equal(parse(full_broker, &rs, &n, msg, sizeof msg, NULL),
                     KN_OK);
    assert_int_equal(n, 2);
    assert_ptr_equal(rs[0]->kind, &kn_kind_broker);
    assert_string_equal(rs[0]->ns, "team-a");
    assert_string_equal(rs[0]->name, "demo");
    assert_string_equal(rs[0]->where, "brokers.yaml:2");
    assert_ptr_equal(rs[1]->kind, &kn_kind_configmap);
    assert_string_equal(rs[1]->where, "brokers.yaml:39");
    /* status (output-only) is dropped; the rest is kept */
    assert_null(json_object_get(rs[0]->obj, "status"));
    json_t *d = json_object_get(json_object_get(rs[0]->obj, "spec"),
                                "delivery");
    assert_int_equal(json_integer_value(json_object_get(d, "retry")), 5);
    assert_string_equal(kn_resource_annotation(rs[0], "example.com/owner"),
                        "someone");
    assert_string_equal(
        json_string_value(json_object_get(rs[0]->obj, "apiVersion")),
        "eventing.knative.dev/v1");
    /* the plan: annotations override the ConfigMap */
    kn_channels_register_builtin();
    kn_broker_plan p;
    assert_int_equal(kn_broker_plan_make(rs[0], rs[1], &p), KN_OK);
    assert_string_equal(p.backend, "log");
    assert_int_equal(p.max_event_size, 64 * 1024);
    assert_int_equal(p.decode_flags, CE_DECODE_LENIENT);
    json_t *s = p.settings;
    assert_string_equal(json_string_value(json_object_get(s, "durability")),
                        "write");
    assert_string_equal(
        json_string_value(json_object_get(s, "segment.bytes")), "67108864");
    assert_string_equal(
        json_string_value(json_object_get(s, "retention.bytes")),
        "1073741824");
    assert_string_equal(
        json_string_value(json_object_get(s, "retention.ms")), "604800000");
    assert_string_equal(
        json_string_value(json_object_get(s, "retention.max.bytes")),
        "2147483648");
    assert_string_equal(json_string_value(json_object_get(s, "recovery")),
                        "truncate");
    kn_broker_plan_free(&p);
    char ns[64], name[64];
    assert_true(kn_broker_config_ref(rs[0], ns, sizeof ns, name,
                                     sizeof name));
    assert_string_equal(ns, "team-a");
    assert_string_equal(name, "demo-config");
    kn_resources_free(rs, n);
}

static void test_defaults_and_plan(void **state)
{
    (void)state;
    char y[2048];
    kn_resource **rs = NULL;
    size_t n = 0;
    char msg[512];
    broker_with(y, sizeof y, "", "---\n\n");
    assert_int_equal(parse(y, &rs, &n, msg, sizeof msg, NULL), KN_OK);
    assert_int_equal(n, 1); /* the empty document is skipped */
    assert_string_equal(rs[0]->ns, "default");
    assert_null(json_object_get(rs[0]->obj, "spec"));
    kn_channels_register_builtin();
    kn_broker_plan p;
    assert_int_equal(kn_broker_plan_make(rs[0], NULL, &p), KN_OK);
    assert_string_equal(p.backend, "log");
    assert_int_equal(p.max_event_size, KN_DEFAULT_MAX_EVENT_SIZE);
    assert_int_equal(p.decode_flags, 0);
    assert_string_equal(
        json_string_value(json_object_get(p.settings, "durability")),
        "fsync");
    kn_broker_plan_free(&p);
    kn_resources_free(rs, n);

    /* Kafka / NATS classes: accepted, but not Ready yet */
    broker_with(y, sizeof y,
                "  annotations:\n"
                "    eventing.knative.dev/broker.class: Kafka\n", "");
    assert_int_equal(parse(y, &rs, &n, msg, sizeof msg, NULL), KN_OK);
    if (!kn_channel_find("kafka")) { /* else: 0420-broker-class */
        assert_int_equal(kn_broker_plan_make(rs[0], NULL, &p), KN_INVAL);
        assert_string_equal(p.reason, "BackendNotAvailable");
        assert_non_null(strstr(p.message, "Kafka"));
        kn_broker_plan_free(&p);
    }
    kn_resources_free(rs, n);

    /* a bad ConfigMap key makes the plan fail, naming the key */
    const char *cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                     "  name: c\ndata:\n  durability: maybe\n";
    broker_with(y, sizeof y, "", "");
    kn_resource **cms = NULL;
    size_t ncm = 0;
    assert_int_equal(parse(y, &rs, &n, msg, sizeof msg, NULL), KN_OK);
    assert_int_equal(parse(cm, &cms, &ncm, msg, sizeof msg, NULL), KN_OK);
    assert_int_equal(kn_broker_plan_make(rs[0], cms[0], &p), KN_INVAL);
    assert_string_equal(p.reason, "InvalidConfig");
    assert_string_equal(p.message, "ConfigMap default/c key durability: "
                                   "\"maybe\" is not one of: fsync, write");
    kn_broker_plan_free(&p);
    kn_resources_free(cms, ncm);
    kn_resources_free(rs, n);
}

static void test_metadata_errors(void **state)
{
    (void)state;
    char y[2048];
    expect_error("apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
                 "metadata:\n  name: Demo_1\n",
                 "brokers.yaml:4: metadata.name: \"Demo_1\" is not a valid "
                 "name: use at most 63 lowercase letters, digits and '-', "
                 "starting and ending with a letter or digit");
    expect_error("apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
                 "metadata:\n  namespace: x\n",
                 "brokers.yaml:3: metadata.name: required field is missing");
    expect_error("apiVersion: eventing.knative.dev/v1\nkind: Broker\n",
                 "brokers.yaml:1: metadata.name: required field is missing");
    broker_with(y, sizeof y, "  namespace: -bad\n", "");
    expect_error(y, "brokers.yaml:5: metadata.namespace: \"-bad\" is not a "
                    "valid name: use at most 63 lowercase letters, digits "
                    "and '-', starting and ending with a letter or digit");
    broker_with(y, sizeof y, "  labels:\n    \"bad key!\": x\n", "");
    expect_error(y, "brokers.yaml:6: metadata.labels.bad key!: invalid "
                    "label key (expected [prefix/]name, name at most 63 "
                    "characters of [A-Za-z0-9-_.])");
    broker_with(y, sizeof y, "  labels:\n    ok: \"-no\"\n", "");
    expect_error(y, "brokers.yaml:6: metadata.labels.ok: invalid label "
                    "value \"-no\" (at most 63 characters of "
                    "[A-Za-z0-9-_.], starting and ending alphanumeric)");
    broker_with(y, sizeof y, "  labels:\n    n: 5\n", "");
    expect_error(y, "brokers.yaml:6: metadata.labels.n: expected a string, "
                    "got an integer (quote the value)");
    broker_with(y, sizeof y, "  finalizers: [x]\n", "");
    expect_error(y, "brokers.yaml:5: metadata.finalizers: field is not "
                    "supported by knit: knit has no finalizers");
    broker_with(y, sizeof y, "  nmae: typo\n", "");
    expect_error(y, "brokers.yaml:5: metadata.nmae: unknown field (known "
                    "fields: name, namespace, labels, annotations)");
}

static void test_annotation_errors(void **state)
{
    (void)state;
    char y[2048];
    broker_with(y, sizeof y,
                "  annotations:\n"
                "    eventing.knative.dev/broker.class: RabbitMQ\n", "");
    expect_error(y, "brokers.yaml:6: metadata.annotations.eventing.knative."
                    "dev/broker.class: \"RabbitMQ\" is not one of: "
                    "MTChannelBasedBroker, Log, Kafka, NatsJetStreamBroker");
    broker_with(y, sizeof y,
                "  annotations:\n    knit.dev/max-event-size: 1MB\n", "");
    expect_error(y, "brokers.yaml:6: metadata.annotations.knit.dev/"
                    "max-event-size: expected a size in bytes such as "
                    "\"1048576\" or \"64Mi\", got \"1MB\"");
    broker_with(y, sizeof y,
                "  annotations:\n    knit.dev/max-event-size: 1048576\n",
                "");
    expect_error(y, "brokers.yaml:6: metadata.annotations.knit.dev/"
                    "max-event-size: expected a string, got an integer "
                    "(quote the value)");
    broker_with(y, sizeof y,
                "  annotations:\n    knit.dev/durability: always\n", "");
    expect_error(y, "brokers.yaml:6: metadata.annotations.knit.dev/"
                    "durability: \"always\" is not one of: fsync, write");
    broker_with(y, sizeof y,
                "  annotations:\n    knit.dev/retention: 7 days\n", "");
    kn_resource **rs = NULL;
    size_t n = 0;
    char msg[1024];
    assert_int_equal(parse(y, &rs, &n, msg, sizeof msg, NULL), KN_INVAL);
    assert_non_null(strstr(msg, "brokers.yaml:6: metadata.annotations."
                                "knit.dev/retention: expected an ISO-8601 "
                                "duration such as P7D"));
    broker_with(y, sizeof y,
                "  annotations:\n    knit.dev/retention: PT0S\n", "");
    expect_error(y, "brokers.yaml:6: metadata.annotations.knit.dev/"
                    "retention: must be a duration greater than zero");
    broker_with(y, sizeof y,
                "  annotations:\n    knit.dev/retention-byte: \"1\"\n", "");
    expect_error(y, "brokers.yaml:6: metadata.annotations.knit.dev/"
                    "retention-byte: unknown knit annotation for Broker");
    broker_with(y, sizeof y,
                "  annotations:\n    knit.dev/header-decoding: loose\n", "");
    expect_error(y, "brokers.yaml:6: metadata.annotations.knit.dev/"
                    "header-decoding: \"loose\" is not one of: strict, "
                    "lenient");
}

static void test_delivery_errors(void **state)
{
    (void)state;
    char y[2048];
    broker_with(y, sizeof y, "",
                "spec:\n"             /* 5 */
                "  delivery:\n"       /* 6 */
                "    backoffDelay: PT1S\n"
                "    retry: -3\n");   /* 8 */
    expect_error(y, "brokers.yaml:8: spec.delivery.retry: expected a "
                    "non-negative integer");
    broker_with(y, sizeof y, "",
                "spec:\n  delivery:\n    retry: 3000000000\n");
    expect_error(y, "brokers.yaml:7: spec.delivery.retry: must be at most "
                    "2147483647");
    broker_with(y, sizeof y, "",
                "spec:\n  delivery:\n    backoffPolicy: random\n");
    expect_error(y, "brokers.yaml:7: spec.delivery.backoffPolicy: "
                    "\"random\" is not one of: linear, exponential");
    broker_with(y, sizeof y, "", "spec:\n  delivery:\n    timeout: PT0S\n");
    expect_error(y, "brokers.yaml:7: spec.delivery.timeout: must be a "
                    "duration greater than zero");
    broker_with(y, sizeof y, "", "spec:\n  delivery:\n    format: xml\n");
    expect_error(y, "brokers.yaml:7: spec.delivery.format: \"xml\" is not "
                    "one of: json, binary");
    broker_with(y, sizeof y, "",
                "spec:\n  delivery:\n    retries: 3\n");
    expect_error(y, "brokers.yaml:7: spec.delivery.retries: unknown field "
                    "(known fields: deadLetterSink, retry, backoffPolicy, "
                    "backoffDelay, backoffMax, timeout, retryAfterMax, "
                    "format)");
    broker_with(y, sizeof y, "",
                "spec:\n  delivery:\n    deadLetterSink: {}\n");
    expect_error(y, "brokers.yaml:7: spec.delivery.deadLetterSink: set ref "
                    "or uri (or both)");
    broker_with(y, sizeof y, "",
                "spec:\n  delivery:\n    deadLetterSink:\n"
                "      uri: /relative\n");
    expect_error(y, "brokers.yaml:8: spec.delivery.deadLetterSink.uri: "
                    "expected an absolute http:// or https:// URL, got "
                    "\"/relative\"");
    broker_with(y, sizeof y, "",
                "spec:\n  delivery:\n    deadLetterSink:\n"
                "      ref: {kind: Service, name: dls}\n"
                "      uri: http://x/\n");
    expect_error(y, "brokers.yaml:9: spec.delivery.deadLetterSink.uri: with "
                    "ref set, uri must be a path relative to the ref's "
                    "address, got \"http://x/\"");
    broker_with(y, sizeof y, "",
                "spec:\n  delivery:\n    deadLetterSink:\n"
                "      ref: {kind: Service}\n");
    expect_error(y, "brokers.yaml:8: spec.delivery.deadLetterSink.ref.name: "
                    "required field is missing");
    broker_with(y, sizeof y, "",
                "spec:\n  delivery:\n    deadLetterSink:\n"
                "      uri: http://x/\n      CACerts: abc\n");
    expect_error(y, "brokers.yaml:9: spec.delivery.deadLetterSink.CACerts: "
                    "field is not supported by knit: TLS CA certificates "
                    "are not supported yet");
}

static void test_spec_errors(void **state)
{
    (void)state;
    char y[2048];
    broker_with(y, sizeof y, "", "spec:\n  config:\n    kind: Secret\n"
                                 "    name: x\n");
    expect_error(y, "brokers.yaml:7: spec.config.kind: a broker's config "
                    "must be a ConfigMap, got Secret");
    broker_with(y, sizeof y, "", "spec:\n  config:\n    kind: ConfigMap\n"
                                 "    apiVersion: v2\n    name: x\n");
    expect_error(y, "brokers.yaml:8: spec.config.apiVersion: ConfigMap is "
                    "served as v1, not v2");
    broker_with(y, sizeof y, "", "spec: []\n");
    expect_error(y, "brokers.yaml:5: spec: expected a mapping, got a list");
    broker_with(y, sizeof y, "", "spec:\n  class: Kafka\n");
    expect_error(y, "brokers.yaml:6: spec.class: unknown field (known "
                    "fields: config, delivery)");
    broker_with(y, sizeof y, "", "data: {}\n");
    expect_error(y, "brokers.yaml:5: data: unknown field (known fields: "
                    "spec)");
    expect_error("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
                 "data:\n  n: 5\n",
                 "brokers.yaml:6: data.n: expected a string, got an integer "
                 "(quote the value)");
    expect_error("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
                 "binaryData:\n  n: AAAA\n",
                 "brokers.yaml:5: binaryData: field is not supported by "
                 "knit: use data with text values");
}

static void test_kind_errors(void **state)
{
    (void)state;
    expect_error("apiVersion: flows.knative.dev/v1\nkind: Sequence\n"
                 "metadata:\n  name: t\n",
                 "brokers.yaml:2: kind Sequence is not supported yet");
    expect_error("---\napiVersion: serving.knative.dev/v1\nkind: Service\n"
                 "metadata:\n  name: s\n",
                 "brokers.yaml:3: kind Service is not supported yet");
    expect_error("apiVersion: sources.knative.dev/v1\nkind: PingSource\n",
                 "brokers.yaml:2: kind PingSource is not supported yet");
    expect_error("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n",
                 "brokers.yaml:2: kind: unknown kind \"Pod\" (knit supports: "
                 "Broker, ConfigMap, Trigger)");
    expect_error("kind: Broker\nmetadata:\n  name: b\n",
                 "brokers.yaml:1: apiVersion: required field is missing "
                 "(Broker is eventing.knative.dev/v1)");
    expect_error("apiVersion: eventing.knative.dev/v1beta1\nkind: Broker\n"
                 "metadata:\n  name: b\n",
                 "brokers.yaml:1: apiVersion: Broker is served as "
                 "eventing.knative.dev/v1, not eventing.knative.dev/v1beta1");
    expect_error("apiVersion: v1\nmetadata:\n  name: b\n",
                 "brokers.yaml:1: kind: required field is missing");
    expect_error("- a\n- b\n", "brokers.yaml:1: expected a mapping with "
                               "apiVersion, kind and metadata");
}

static void test_file_level(void **state)
{
    (void)state;
    /* one bad document rejects the whole file: nothing is returned */
    expect_error("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
                 "---\n"
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"
                 "data:\n  x: [1]\n",
                 "brokers.yaml:11: data.x: expected a string, got a list "
                 "(quote the value)");
    /* the same resource twice */
    expect_error("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
                 "---\n"
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
                 "  namespace: default\n",
                 "brokers.yaml:6: ConfigMap default/a is defined twice "
                 "(first at brokers.yaml:1)");
    /* YAML syntax errors carry the loader's position */
    kn_resource **rs = NULL;
    size_t n = 0;
    char msg[1024];
    kn_err err;
    assert_int_not_equal(parse("a: [1, 2\nb: c\n", &rs, &n, msg, sizeof msg,
                               &err),
                         KN_OK);
    assert_null(rs);
    assert_true(strncmp(err.where, "brokers.yaml:", 13) == 0);
    /* same name, different kinds: fine */
    assert_int_equal(parse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                           "  name: a\n---\n"
                           "apiVersion: eventing.knative.dev/v1\n"
                           "kind: Broker\nmetadata:\n  name: a\n",
                           &rs, &n, msg, sizeof msg, NULL),
                     KN_OK);
    assert_int_equal(n, 2);
    kn_resources_free(rs, n);
}

static void test_kind_lookup(void **state)
{
    (void)state;
    assert_ptr_equal(kn_kind_find("brokers"), &kn_kind_broker);
    assert_ptr_equal(kn_kind_find("Broker"), &kn_kind_broker);
    assert_ptr_equal(kn_kind_find("configmap"), &kn_kind_configmap);
    assert_ptr_equal(kn_kind_find("triggers"), &kn_kind_trigger);
    assert_true(kn_kind_trigger.supported);
    const kn_kind *t = kn_kind_find("sequences");
    assert_non_null(t);
    assert_false(t->supported);
    assert_null(kn_kind_find("pods"));
    assert_null(kn_kind_find(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_broker),
        cmocka_unit_test(test_defaults_and_plan),
        cmocka_unit_test(test_metadata_errors),
        cmocka_unit_test(test_annotation_errors),
        cmocka_unit_test(test_delivery_errors),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_kind_errors),
        cmocka_unit_test(test_file_level),
        cmocka_unit_test(test_kind_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
