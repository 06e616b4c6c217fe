/*
 * 0420-broker-class: the broker class switch of kn_broker_plan_make —
 * class → backend, ConfigMap data → channel settings for Kafka/NATS (with
 * where each setting came from), the ingress-level keys that apply on
 * every backend, the external-topic annotation, and the InvalidConfig
 * reasons (unknown NATS key, log-only annotations on other classes,
 * Kafka-only annotation elsewhere), each naming the key. Through the
 * reconciler: a bad setting value the backend refuses at open is an
 * InvalidConfig naming the ConfigMap key; an unreachable backend leaves
 * the broker not Ready (BackendUnavailable, the backend's reason) and
 * /readyz unready.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>

#include "broker/broker.h"
#include "tests/testutil.h"

/* Parses one YAML document into a resource; fails the test otherwise. */
static kn_resource *res(const char *yaml)
{
    kn_resource **rs = NULL;
    size_t n = 0;
    kn_err err = {0};
    char msg[600];
    int rc = kn_resources_parse("t.yaml", yaml, strlen(yaml), &rs, &n, &err);
    if (rc != KN_OK)
        fail_msg("parse: %s", kn_err_str(&err, msg, sizeof msg));
    assert_int_equal(n, 1);
    kn_resource *r = rs[0];
    free(rs);
    return r;
}

static kn_resource *broker(const char *cls, const char *more_ann)
{
    char y[1024];
    snprintf(y, sizeof y,
             "apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
             "metadata:\n  name: b\n  annotations:\n"
             "    eventing.knative.dev/broker.class: %s\n%s"
             "spec:\n  config:\n    apiVersion: v1\n    kind: ConfigMap\n"
             "    name: cfg\n",
             cls, more_ann ? more_ann : "");
    return res(y);
}

static kn_resource *configmap(const char *data)
{
    char y[1024];
    snprintf(y, sizeof y,
             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n"
             "data:\n%s", data);
    return res(y);
}

static const char *setting(const kn_broker_plan *p, const char *key)
{
    return json_string_value(json_object_get(p->settings, key));
}

static const char *source(const kn_broker_plan *p, const char *key)
{
    return json_string_value(json_object_get(p->sources, key));
}

/* Plans broker (class, annotations) with ConfigMap data; returns the
 * status, the plan in *p (caller frees). */
static int plan(const char *cls, const char *ann, const char *data,
                kn_broker_plan *p)
{
    kn_resource *b = broker(cls, ann);
    kn_resource *cm = data ? configmap(data) : NULL;
    int rc = kn_broker_plan_make(b, cm, p);
    kn_resource_decref(b);
    if (cm)
        kn_resource_decref(cm);
    return rc;
}

static void test_log_classes(void **state)
{
    (void)state;
    kn_broker_plan p;
    assert_int_equal(plan("Log", NULL, "  durability: write\n", &p), KN_OK);
    assert_string_equal(p.backend, "log");
    assert_string_equal(setting(&p, "durability"), "write");
    kn_broker_plan_free(&p);
    assert_int_equal(plan("MTChannelBasedBroker", NULL, NULL, &p), KN_OK);
    assert_string_equal(p.backend, "log");
    kn_broker_plan_free(&p);
    /* the Kafka topic annotation means nothing to the log: refused */
    assert_int_equal(plan("Log",
                          "    kafka.eventing.knative.dev/external.topic: "
                          "t1\n", NULL, &p),
                     KN_INVAL);
    assert_string_equal(p.reason, "InvalidConfig");
    assert_non_null(strstr(p.message, "annotation kafka.eventing.knative."
                                      "dev/external.topic"));
    kn_broker_plan_free(&p);
}

static void test_nats_class(void **state)
{
    (void)state;
    kn_broker_plan p;
    assert_int_equal(plan("NatsJetStreamBroker",
                          "    knit.dev/max-event-size: 64Ki\n",
                          "  url: nats://127.0.0.1:4222\n"
                          "  replicas: \"3\"\n"
                          "  duplicate-window: PT2M\n"
                          "  header-decoding: lenient\n",
                          &p),
                     KN_OK);
    assert_string_equal(p.backend, "nats");
    assert_string_equal(setting(&p, "url"), "nats://127.0.0.1:4222");
    assert_string_equal(setting(&p, "replicas"), "3");
    assert_string_equal(setting(&p, "duplicate-window"), "PT2M");
    assert_string_equal(source(&p, "replicas"),
                        "ConfigMap default/cfg key replicas");
    assert_string_equal(p.config, "ConfigMap default/cfg");
    /* ingress-level keys configure the broker, not the channel */
    assert_null(json_object_get(p.settings, "header-decoding"));
    assert_int_equal(p.decode_flags, CE_DECODE_LENIENT);
    assert_int_equal(p.max_event_size, 64 * 1024);
    /* the log's durability default is not added */
    assert_null(json_object_get(p.settings, "durability"));
    kn_broker_plan_free(&p);

    /* a typo is an error naming the key, not a silent default */
    assert_int_equal(plan("NatsJetStreamBroker", NULL,
                          "  max_age: PT1H\n", &p),
                     KN_INVAL);
    assert_string_equal(p.reason, "InvalidConfig");
    assert_non_null(strstr(p.message, "ConfigMap default/cfg key max_age: "
                                      "unknown setting"));
    assert_non_null(strstr(p.message, "duplicate-window"));
    kn_broker_plan_free(&p);

    /* log-only annotations on another class are refused */
    assert_int_equal(plan("NatsJetStreamBroker",
                          "    knit.dev/durability: write\n", NULL, &p),
                     KN_INVAL);
    assert_string_equal(p.reason, "InvalidConfig");
    assert_non_null(strstr(p.message, "annotation knit.dev/durability "
                                      "applies to the Log class only"));
    kn_broker_plan_free(&p);
    assert_int_equal(plan("NatsJetStreamBroker",
                          "    kafka.eventing.knative.dev/external.topic: "
                          "t1\n", NULL, &p),
                     KN_INVAL);
    assert_non_null(strstr(p.message, "Kafka only"));
    kn_broker_plan_free(&p);

    /* no ConfigMap: the backend's defaults */
    kn_resource *b = res("apiVersion: eventing.knative.dev/v1\n"
                         "kind: Broker\nmetadata:\n  name: n\n"
                         "  annotations:\n    eventing.knative.dev/"
                         "broker.class: NatsJetStreamBroker\n");
    assert_int_equal(kn_broker_plan_make(b, NULL, &p), KN_OK);
    assert_string_equal(p.backend, "nats");
    assert_int_equal(json_object_size(p.settings), 0);
    assert_string_equal(p.config, "");
    kn_broker_plan_free(&p);
    kn_resource_decref(b);
}

static void test_kafka_class(void **state)
{
    (void)state;
    kn_broker_plan p;
    int rc = plan("Kafka",
                  "    kafka.eventing.knative.dev/external.topic: "
                  "orders\n",
                  "  bootstrap.servers: 127.0.0.1:9092\n"
                  "  default.topic.partitions: \"6\"\n"
                  "  default.topic.config.retention.ms: \"3600000\"\n"
                  "  kafka.security.protocol: plaintext\n",
                  &p);
    if (!kn_channel_find("kafka")) {
        /* a build without the kafka channel: not Ready, saying why */
        assert_int_equal(rc, KN_INVAL);
        assert_string_equal(p.reason, "BackendNotAvailable");
        assert_non_null(strstr(p.message, "Kafka"));
        kn_broker_plan_free(&p);
        return;
    }
    assert_int_equal(rc, KN_OK);
    assert_string_equal(p.backend, "kafka");
    assert_string_equal(setting(&p, "bootstrap.servers"), "127.0.0.1:9092");
    assert_string_equal(setting(&p, "default.topic.partitions"), "6");
    assert_string_equal(setting(&p, "default.topic.config.retention.ms"),
                        "3600000");
    assert_string_equal(setting(&p, "kafka.security.protocol"), "plaintext");
    assert_string_equal(setting(&p, "topic"), "orders");
    assert_string_equal(source(&p, "topic"),
                        "annotation kafka.eventing.knative.dev/"
                        "external.topic");
    kn_broker_plan_free(&p);
    /* the topic comes from the annotation only */
    assert_int_equal(plan("Kafka", NULL,
                          "  bootstrap.servers: h:1\n  topic: x\n", &p),
                     KN_INVAL);
    assert_string_equal(p.reason, "InvalidConfig");
    assert_non_null(strstr(p.message, "ConfigMap default/cfg key topic"));
    kn_broker_plan_free(&p);
}

static kn_server *server(char *dir, size_t n)
{
    tu_mkdtemp(dir, n, "class");
    kn_serve_opts o = {.data_dir = dir};
    kn_server *srv = NULL;
    kn_err err = {0};
    assert_int_equal(kn_server_new(&o, &srv, &err), KN_OK);
    assert_int_equal(kn_server_load(srv, &err), KN_OK);
    kn_server_set_loaded(srv);
    return srv;
}

static void apply(kn_server *srv, const char *yaml)
{
    kn_yaml_file f = {"t.yaml", yaml, strlen(yaml)};
    json_t *res = NULL;
    kn_err err = {0};
    char msg[600];
    if (kn_server_apply(srv, &f, 1, &res, &err) != KN_OK)
        fail_msg("apply: %s", kn_err_str(&err, msg, sizeof msg));
    json_decref(res);
}

/* Ready condition of default/b: status returned, reason and message
 * copied. */
static const char *ready(kn_server *srv, char *reason, char *message)
{
    static char status[16];
    json_t *o = kn_server_get(srv, &kn_kind_broker, "default", "b");
    assert_non_null(o);
    json_t *c = json_array_get(
        json_object_get(json_object_get(o, "status"), "conditions"), 0);
    snprintf(status, sizeof status, "%s",
             json_string_value(json_object_get(c, "status")));
    snprintf(reason, 64, "%s",
             json_string_value(json_object_get(c, "reason")));
    snprintf(message, 512, "%s",
             json_string_value(json_object_get(c, "message")));
    json_decref(o);
    return status;
}

#define NATS_BROKER                                                     \
    "apiVersion: eventing.knative.dev/v1\nkind: Broker\n"               \
    "metadata:\n  name: b\n  annotations:\n"                           \
    "    eventing.knative.dev/broker.class: NatsJetStreamBroker\n"      \
    "spec:\n  config:\n    kind: ConfigMap\n    name: cfg\n---\n"       \
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n"

static void test_reconcile_nats(void **state)
{
    (void)state;
    char dir[64], reason[64], message[512];
    kn_server *srv = server(dir, sizeof dir);

    /* a value the backend refuses: InvalidConfig naming the key */
    apply(srv, NATS_BROKER "  replicas: \"9\"\n");
    assert_string_equal(ready(srv, reason, message), "False");
    assert_string_equal(reason, "InvalidConfig");
    assert_non_null(strstr(message, "ConfigMap default/cfg key replicas: "
                                    "'9'"));
    kn_broker_rt *rt = kn_server_broker(srv, "default", "b");
    assert_non_null(rt);
    assert_null(rt->chan); /* the ingress answers 503 */
    kn_broker_rt_unref(rt);

    /* nothing listens there: open, but not Ready, with the reason */
    apply(srv, NATS_BROKER "  url: nats://127.0.0.1:1\n"
               "  reconnect-wait-max: \"50\"\n");
    assert_string_equal(ready(srv, reason, message), "False");
    assert_string_equal(reason, "BackendUnavailable");
    assert_non_null(strstr(message, "no connection to NATS at "
                                    "nats://127.0.0.1:1"));
    assert_false(kn_server_ready(srv));
    kn_server_resync(srv);
    assert_string_equal(ready(srv, reason, message), "False");
    assert_string_equal(reason, "BackendUnavailable");
    assert_false(kn_server_ready(srv));

    /* back to the log by dropping the class: Ready */
    apply(srv, "apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
               "metadata:\n  name: b\n");
    assert_string_equal(ready(srv, reason, message), "True");
    kn_server_resync(srv);
    assert_true(kn_server_ready(srv));
    kn_server_free(srv);
    assert_int_equal(tu_rmrf(dir), 0);
}

int main(void)
{
    kn_log_init(KN_LOG_ERROR, false);
    kn_channels_register_builtin();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_classes),
        cmocka_unit_test(test_nats_class),
        cmocka_unit_test(test_kafka_class),
        cmocka_unit_test(test_reconcile_nats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
