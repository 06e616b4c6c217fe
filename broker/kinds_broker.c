/*
 * The Broker kind (eventing.knative.dev/v1): its field table (spec.config,
 * spec.delivery with the full DeliverySpec), its annotations, and the
 * plan the reconciler derives from it — channel backend, channel settings
 * (annotations override the referenced ConfigMap's data) and ingress
 * limits, or the reason it cannot be Ready.
 *
 * Pure functions; any thread.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"

/* A referenced name (DNS-1123 label); see broker.h. */
int kn_check_name(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                  const char *path)
{
    (void)f;
    if (!kn_dns1123_label(json_string_value(v)))
        return kn_decode_fail(ctx, KN_INVAL, path,
                              "\"%s\" is not a valid name (DNS-1123 label)",
                              json_string_value(v));
    return KN_OK;
}

static const kn_field kref_fields[] = {
    {.name = "apiVersion", .type = KN_FT_STRING,
     .doc = "API version of the referent"},
    {.name = "kind", .type = KN_FT_STRING,
     .flags = KN_FF_REQUIRED | KN_FF_NONEMPTY, .doc = "kind of the referent"},
    {.name = "name", .type = KN_FT_STRING, .flags = KN_FF_REQUIRED,
     .check = kn_check_name, .doc = "name of the referent"},
    {.name = "namespace", .type = KN_FT_STRING, .check = kn_check_name,
     .doc = "namespace of the referent (default: the broker's)"},
    {.name = "group", .type = KN_FT_ANY,
     .unsupported = "use apiVersion instead"},
    {.name = "address", .type = KN_FT_ANY,
     .unsupported = "addresses are resolved by knit"},
    {0},
};

static bool uri_absolute_http(const char *s)
{
    const char *host = NULL;
    if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    if (!host || !*host || *host == '/' || *host == ':')
        return false;
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

int kn_check_destination(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                         const char *path)
{
    (void)f;
    json_t *ref = json_object_get(v, "ref");
    json_t *uri = json_object_get(v, "uri");
    char p[256];
    snprintf(p, sizeof p, "%s.uri", path);
    if (!ref && !uri)
        return kn_decode_fail(ctx, KN_INVAL, path,
                              "set ref or uri (or both)");
    if (!uri)
        return KN_OK;
    const char *s = json_string_value(uri);
    if (!ref && !uri_absolute_http(s))
        return kn_decode_fail(ctx, KN_INVAL, p,
                              "expected an absolute http:// or https:// "
                              "URL, got \"%s\"", s);
    if (ref && strstr(s, "://"))
        return kn_decode_fail(ctx, KN_INVAL, p,
                              "with ref set, uri must be a path relative "
                              "to the ref's address, got \"%s\"", s);
    return KN_OK;
}

const kn_field kn_destination_fields[] = {
    {.name = "ref", .type = KN_FT_OBJECT, .children = kref_fields,
     .doc = "reference to an addressable resource"},
    {.name = "uri", .type = KN_FT_STRING, .flags = KN_FF_NONEMPTY,
     .doc = "absolute URL, or a path relative to ref"},
    {.name = "CACerts", .type = KN_FT_ANY,
     .unsupported = "TLS CA certificates are not supported yet"},
    {.name = "audience", .type = KN_FT_ANY,
     .unsupported = "OIDC audiences are not supported"},
    {0},
};

static const char *const backoff_policies[] = {"linear", "exponential",
                                               NULL};
static const char *const formats[] = {"json", "binary", NULL};

const kn_field kn_delivery_fields[] = {
    {.name = "deadLetterSink", .type = KN_FT_OBJECT,
     .children = kn_destination_fields, .check = kn_check_destination,
     .doc = "where events go after the last failed attempt"},
    {.name = "retry", .type = KN_FT_INT, .max = INT32_MAX,
     .doc = "retries after the first attempt"},
    {.name = "backoffPolicy", .type = KN_FT_ENUM, .values = backoff_policies,
     .doc = "linear or exponential"},
    {.name = "backoffDelay", .type = KN_FT_DURATION,
     .doc = "base delay between retries (ISO-8601)"},
    {.name = "backoffMax", .type = KN_FT_DURATION,
     .doc = "cap of the delay between retries (ISO-8601)"},
    {.name = "timeout", .type = KN_FT_DURATION, .flags = KN_FF_POSITIVE,
     .doc = "per-attempt timeout (ISO-8601, > 0)"},
    {.name = "retryAfterMax", .type = KN_FT_DURATION,
     .doc = "cap on a subscriber's Retry-After (ISO-8601)"},
    {.name = "format", .type = KN_FT_ENUM, .values = formats,
     .doc = "json (structured) or binary content mode for deliveries"},
    {0},
};

static int check_config_ref(kn_decode_ctx *ctx, const kn_field *f,
                            json_t *v, const char *path)
{
    (void)f;
    const char *kind = json_string_value(json_object_get(v, "kind"));
    const char *api = json_string_value(json_object_get(v, "apiVersion"));
    char p[256];
    snprintf(p, sizeof p, "%s.kind", path);
    if (strcmp(kind, "ConfigMap") != 0)
        return kn_decode_fail(ctx, KN_INVAL, p,
                              "a broker's config must be a ConfigMap, got "
                              "%s", kind);
    snprintf(p, sizeof p, "%s.apiVersion", path);
    if (api && strcmp(api, "v1") != 0)
        return kn_decode_fail(ctx, KN_INVAL, p,
                              "ConfigMap is served as v1, not %s", api);
    return KN_OK;
}

static const kn_field broker_spec_fields[] = {
    {.name = "config", .type = KN_FT_OBJECT, .children = kref_fields,
     .check = check_config_ref,
     .doc = "reference to a ConfigMap with channel settings"},
    {.name = "delivery", .type = KN_FT_OBJECT, .children = kn_delivery_fields,
     .doc = "default delivery spec of the broker's triggers"},
    {0},
};

static const kn_field broker_fields[] = {
    {.name = "spec", .type = KN_FT_OBJECT, .children = broker_spec_fields,
     .doc = "desired state"},
    {.name = "status", .type = KN_FT_ANY, .flags = KN_FF_OUTPUT},
    {0},
};

static const char *const broker_classes[] = {
    "MTChannelBasedBroker", "Log", "Kafka", "NatsJetStreamBroker", NULL};
static const char *const durabilities[] = {"fsync", "write", NULL};
static const char *const decodings[] = {"strict", "lenient", NULL};
static const char *const recoveries[] = {"strict", "truncate", NULL};

static const kn_annotation broker_annotations[] = {
    {"eventing.knative.dev/broker.class", KN_FT_ENUM, broker_classes,
     "MTChannelBasedBroker (default) or Log: the embedded log; Kafka; "
     "NatsJetStreamBroker"},
    {"kafka.eventing.knative.dev/external.topic", KN_FT_STRING, NULL,
     "Kafka class: use this existing topic instead of creating "
     "knative-broker-<ns>-<name>"},
    {"knit.dev/max-event-size", KN_FT_INT, NULL,
     "largest accepted request body (default 1Mi)"},
    {"knit.dev/durability", KN_FT_ENUM, durabilities,
     "fsync (default) or write"},
    {"knit.dev/retention-bytes", KN_FT_INT, NULL,
     "delete oldest segments beyond this size"},
    {"knit.dev/retention", KN_FT_DURATION, NULL,
     "delete segments older than this (ISO-8601)"},
    {"knit.dev/segment-bytes", KN_FT_INT, NULL, "segment roll size"},
    {"knit.dev/retention-max-bytes", KN_FT_INT, NULL,
     "hard size limit: deletes even what a trigger has not passed "
     "(counted and logged)"},
    {"knit.dev/recovery", KN_FT_ENUM, recoveries,
     "strict (default) or truncate: what opening the log does with a "
     "corrupt record that has intact records after it"},
    {"knit.dev/header-decoding", KN_FT_ENUM, decodings,
     "strict (default) or lenient percent-decoding of ce- headers"},
    {0},
};

const kn_kind kn_kind_broker = {
    .api_version = "eventing.knative.dev/v1",
    .kind = "Broker",
    .plural = "brokers",
    .singular = "broker",
    .supported = true,
    .fields = broker_fields,
    .annotations = broker_annotations,
};

/* ------------------------------------------------------------ plan */

void kn_broker_plan_free(kn_broker_plan *p)
{
    json_decref(p->settings);
    json_decref(p->sources);
    p->settings = NULL;
    p->sources = NULL;
}

static int plan_fail(kn_broker_plan *p, const char *reason,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int plan_fail(kn_broker_plan *p, const char *reason,
                     const char *fmt, ...)
{
    va_list ap;
    snprintf(p->reason, sizeof p->reason, "%s", reason);
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
    return KN_INVAL;
}

static void set_u64(json_t *settings, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    json_object_set_new(settings, key, json_string(buf));
}

/* One log setting from `src` ("annotation knit.dev/x" or "ConfigMap key
 * x") into the plan. */
static int plan_log_key(kn_broker_plan *p, const char *key, const char *val,
                        const char *src)
{
    uint64_t n = 0;
    int64_t ms = 0;
    kn_err derr = {0};
    if (strcmp(key, "durability") == 0) {
        if (strcmp(val, "fsync") && strcmp(val, "write"))
            return plan_fail(p, "InvalidConfig",
                             "%s: \"%s\" is not one of: fsync, write", src,
                             val);
        json_object_set_new(p->settings, "durability", json_string(val));
    } else if (strcmp(key, "recovery") == 0) {
        if (strcmp(val, "strict") && strcmp(val, "truncate"))
            return plan_fail(p, "InvalidConfig",
                             "%s: \"%s\" is not one of: strict, truncate", src,
                             val);
        json_object_set_new(p->settings, "recovery", json_string(val));
    } else if (strcmp(key, "segment-bytes") == 0 ||
               strcmp(key, "retention-bytes") == 0 ||
               strcmp(key, "retention-max-bytes") == 0 ||
               strcmp(key, "max-event-size") == 0) {
        if (kn_parse_size(val, &n) != KN_OK)
            return plan_fail(p, "InvalidConfig",
                             "%s: expected a size in bytes, got \"%s\"", src,
                             val);
        if (strcmp(key, "max-event-size") == 0)
            p->max_event_size = n;
        else if (strcmp(key, "retention-max-bytes") == 0)
            set_u64(p->settings, "retention.max.bytes", n);
        else
            set_u64(p->settings,
                    key[0] == 's' ? "segment.bytes" : "retention.bytes", n);
    } else if (strcmp(key, "retention") == 0) {
        if (kn_duration_parse(val, &ms, &derr) != KN_OK || ms <= 0)
            return plan_fail(p, "InvalidConfig",
                             "%s: expected an ISO-8601 duration > 0, got "
                             "\"%s\"", src, val);
        set_u64(p->settings, "retention.ms", (uint64_t)ms);
    } else if (strcmp(key, "header-decoding") == 0) {
        if (strcmp(val, "strict") && strcmp(val, "lenient"))
            return plan_fail(p, "InvalidConfig",
                             "%s: \"%s\" is not one of: strict, lenient",
                             src, val);
        p->decode_flags = strcmp(val, "lenient") == 0 ? CE_DECODE_LENIENT
                                                      : 0;
    } else {
        return plan_fail(p, "InvalidConfig",
                         "%s: unknown setting (known: durability, "
                         "segment-bytes, retention-bytes, retention, "
                         "retention-max-bytes, recovery, max-event-size, "
                         "header-decoding)", src);
    }
    return KN_OK;
}

/* Broker class → channel backend. */
static const char *class_backend(const char *cls)
{
    if (!cls || strcmp(cls, "MTChannelBasedBroker") == 0 ||
        strcmp(cls, "Log") == 0)
        return "log";
    if (strcmp(cls, "Kafka") == 0)
        return "kafka";
    if (strcmp(cls, "NatsJetStreamBroker") == 0)
        return "nats";
    return NULL;
}

/* Settings of the nats backend (docs/channels-nats.md). The backend only
 * warns about keys it does not know; the broker refuses them, so a typo
 * in a ConfigMap is an InvalidConfig and not a silently default stream. */
static const char *const nats_keys[] = {
    "url", "credentials", "user", "password", "token", "storage",
    "replicas", "max-age", "max-bytes", "duplicate-window", "ack-wait",
    "max-ack-pending", "publish-timeout", "fetch-batch", "fetch-expires",
    "reconnect-wait-max", "api-timeout", NULL,
};

/* Keys of a ConfigMap that configure the broker itself (the ingress), on
 * every backend, instead of its channel. */
static bool broker_level_key(const char *key)
{
    return strcmp(key, "max-event-size") == 0 ||
           strcmp(key, "header-decoding") == 0;
}

static const char *const external_topic_ann =
    "kafka.eventing.knative.dev/external.topic";

/* Records where channel setting `key` came from, for error messages. */
static void note_source(kn_broker_plan *p, const char *key, const char *src)
{
    if (p->sources)
        json_object_set_new(p->sources, key, json_string(src));
}

/* One ConfigMap key of a Kafka or NATS broker. */
static int plan_backend_key(kn_broker_plan *p, const char *cls,
                            const char *key, json_t *val, const char *src)
{
    if (broker_level_key(key))
        return plan_log_key(p, key, json_string_value(val), src);
    if (strcmp(p->backend, "nats") == 0) {
        size_t i = 0;
        while (nats_keys[i] && strcmp(nats_keys[i], key) != 0)
            i++;
        if (!nats_keys[i])
            return plan_fail(p, "InvalidConfig",
                             "%s: unknown setting for broker class %s "
                             "(known: url, credentials, user, password, "
                             "token, storage, replicas, max-age, max-bytes, "
                             "duplicate-window, ack-wait, max-ack-pending, "
                             "publish-timeout, fetch-batch, fetch-expires, "
                             "reconnect-wait-max, api-timeout, "
                             "max-event-size, header-decoding)", src, cls);
    } else if (strcmp(key, "topic") == 0) {
        /* The kafka backend's external-topic setting has its own
         * annotation, as in Knative. */
        return plan_fail(p, "InvalidConfig",
                         "%s: set an existing topic with the annotation %s",
                         src, external_topic_ann);
    }
    /* The kafka backend checks its keys (and names a bad one) itself. */
    json_object_set(p->settings, key, val);
    note_source(p, key, src);
    return KN_OK;
}

/* Annotations of a Kafka or NATS broker: the ingress ones apply, the
 * log's are refused (they would silently do nothing). */
static int plan_backend_annotations(kn_broker_plan *p, const char *cls,
                                    json_t *ann)
{
    const char *key;
    json_t *v;
    json_object_foreach(ann, key, v) {
        char src[192];
        snprintf(src, sizeof src, "annotation %s", key);
        if (strcmp(key, external_topic_ann) == 0) {
            if (strcmp(p->backend, "kafka") != 0)
                return plan_fail(p, "InvalidConfig",
                                 "%s applies to broker class Kafka only, "
                                 "not %s", src, cls);
            json_object_set(p->settings, "topic", v);
            note_source(p, "topic", src);
            continue;
        }
        if (strncmp(key, "knit.dev/", 9) != 0)
            continue;
        if (!broker_level_key(key + 9))
            return plan_fail(p, "InvalidConfig",
                             "%s applies to the Log class only; broker "
                             "class %s takes its storage settings from the "
                             "ConfigMap named by spec.config", src, cls);
        int rc = plan_log_key(p, key + 9, json_string_value(v), src);
        if (rc != KN_OK)
            return rc;
    }
    return KN_OK;
}

/* Plan of a Kafka or NATS broker: the ConfigMap's data become the
 * channel settings (annotations override). */
static int plan_backend(kn_broker_plan *p, const char *cls,
                        const kn_resource *b, const kn_resource *cm)
{
    json_t *data = cm ? json_object_get(cm->obj, "data") : NULL;
    const char *key;
    json_t *v;
    p->sources = json_object();
    json_object_foreach(data, key, v) {
        char src[192];
        snprintf(src, sizeof src, "ConfigMap %s/%s key %s", cm->ns,
                 cm->name, key);
        int rc = plan_backend_key(p, cls, key, v, src);
        if (rc != KN_OK)
            return rc;
    }
    json_t *ann = json_object_get(json_object_get(b->obj, "metadata"),
                                  "annotations");
    return plan_backend_annotations(p, cls, ann);
}

static int plan_log(kn_broker_plan *p, const kn_resource *b,
                    const kn_resource *cm)
{
    json_t *data = cm ? json_object_get(cm->obj, "data") : NULL;
    const char *key;
    json_t *v;
    int rc;
    json_object_foreach(data, key, v) {
        char src[192];
        snprintf(src, sizeof src, "ConfigMap %s/%s key %s", cm->ns,
                 cm->name, key);
        if ((rc = plan_log_key(p, key, json_string_value(v), src)) != KN_OK)
            return rc;
    }
    json_t *ann = json_object_get(json_object_get(b->obj, "metadata"),
                                  "annotations");
    json_object_foreach(ann, key, v) {
        char src[192];
        snprintf(src, sizeof src, "annotation %s", key);
        if (strcmp(key, external_topic_ann) == 0)
            return plan_fail(p, "InvalidConfig",
                             "%s applies to broker class Kafka only", src);
        if (strncmp(key, "knit.dev/", 9) != 0)
            continue;
        if ((rc = plan_log_key(p, key + 9, json_string_value(v), src)) !=
            KN_OK)
            return rc;
    }
    if (!json_object_get(p->settings, "durability"))
        json_object_set_new(p->settings, "durability", json_string("fsync"));
    return KN_OK;
}

int kn_broker_plan_make(const kn_resource *b, const kn_resource *cm,
                        kn_broker_plan *p)
{
    memset(p, 0, sizeof *p);
    p->max_event_size = KN_DEFAULT_MAX_EVENT_SIZE;
    p->settings = json_object();
    if (!p->settings)
        return plan_fail(p, "InternalError", "out of memory");
    const char *cls =
        kn_resource_annotation(b, "eventing.knative.dev/broker.class");
    const char *backend = class_backend(cls);
    if (!backend)
        return plan_fail(p, "InvalidConfig", "unknown broker class %s",
                         cls);
    snprintf(p->backend, sizeof p->backend, "%s", backend);
    if (!kn_channel_find(backend))
        return plan_fail(p, "BackendNotAvailable",
                         "broker class %s needs the %s channel, which this "
                         "build of knit does not provide", cls, backend);
    if (cm)
        snprintf(p->config, sizeof p->config, "ConfigMap %s/%s", cm->ns,
                 cm->name);
    if (strcmp(backend, "log") == 0)
        return plan_log(p, b, cm);
    return plan_backend(p, cls, b, cm);
}

bool kn_broker_config_ref(const kn_resource *b, char *ns, size_t nsn,
                          char *name, size_t namen)
{
    json_t *ref = json_object_get(json_object_get(b->obj, "spec"), "config");
    if (!ref)
        return false;
    const char *rns = json_string_value(json_object_get(ref, "namespace"));
    snprintf(ns, nsn, "%s", rns ? rns : b->ns);
    snprintf(name, namen, "%s",
             json_string_value(json_object_get(ref, "name")));
    return true;
}
