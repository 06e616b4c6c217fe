/*
 * Kafka channel configuration: the channel settings (strings from the
 * broker's ConfigMap) parsed and checked, the librdkafka configurations
 * built from them (knit's defaults, the user's "kafka.*" properties, then
 * what knit's guarantees require), group naming and error mapping.
 *
 * Pure functions; any thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels/kafka/kafka_int.h"
#include "channels/settings.h"

#define TOPIC_CFG_PREFIX "default.topic.config."
#define KAFKA_PREFIX "kafka."

/* librdkafka properties knit sets and the user may change. */
static const char *const g_producer_defaults[][2] = {
    {"client.id", "knit"},
    {"linger.ms", "2"},
    {"message.timeout.ms", "10000"},
    {"partitioner", "murmur2_random"},
    {"reconnect.backoff.max.ms", "1000"},
    {"allow.auto.create.topics", "false"}, /* knit creates the topic */
};
static const char *const g_consumer_defaults[][2] = {
    {"client.id", "knit"},
    {"fetch.wait.max.ms", "100"},
    {"session.timeout.ms", "10000"},
    {"max.poll.interval.ms", "86400000"}, /* see docs/channels-kafka.md */
    {"auto.offset.reset", "earliest"},
    {"reconnect.backoff.max.ms", "1000"},
};
/* Properties knit's guarantees rest on: set last, never the user's. */
static const char *const g_producer_required[][2] = {
    {"acks", "all"},
    {"enable.idempotence", "true"},
};
static const char *const g_consumer_required[][2] = {
    {"enable.auto.commit", "false"},
    {"enable.auto.offset.store", "false"},
};
static const struct {
    const char *prop;
    const char *why;
} g_forbidden[] = {
    {"acks", "knit acknowledges an event only once every in-sync replica "
             "has it (acks=all)"},
    {"request.required.acks", "knit requires acks=all"},
    {"enable.idempotence", "knit's producer is always idempotent"},
    {"enable.auto.commit", "knit commits the offsets of delivered events "
                           "itself"},
    {"enable.auto.offset.store", "knit commits explicit offsets"},
    {"group.id", "each trigger has its own consumer group"},
    {"bootstrap.servers", "use the setting bootstrap.servers"},
    {"metadata.broker.list", "use the setting bootstrap.servers"},
    {"transactional.id", "transactions are not used"},
};

/* The setting's value as a string (integers are formatted into buf);
 * NULL for other JSON types. */
static const char *value_str(const json_t *v, char *buf, size_t n)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    return NULL;
}

static int parse_int(const char *key, const char *s, long lo, long hi,
                     int *out, kn_err *err)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return kn_setting_error(err, key, "'%s' is not an integer in "
                                "%ld..%ld", s, lo, hi);
    *out = (int)v;
    return KN_OK;
}

static bool topic_name_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > KN_KAFKA_TOPIC_MAX || strcmp(t, ".") == 0 ||
        strcmp(t, "..") == 0)
        return false;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-'))
            return false;
    return true;
}

static int put(json_t *obj, const char *key, const char *val)
{
    return json_object_set_new(obj, key, json_string(val)) == 0 ? KN_OK
                                                                : KN_NOMEM;
}

static int parse_kafka_prop(kn_kafka_settings *s, const char *key,
                            const char *val, kn_err *err)
{
    const char *prop = key + strlen(KAFKA_PREFIX), *bare = prop;
    if (strncmp(prop, "producer.", 9) == 0)
        bare = prop + 9;
    else if (strncmp(prop, "consumer.", 9) == 0)
        bare = prop + 9;
    if (!*bare)
        return kn_setting_error(err, key, "no librdkafka property named");
    for (size_t i = 0; i < sizeof g_forbidden / sizeof *g_forbidden; i++)
        if (strcmp(bare, g_forbidden[i].prop) == 0)
            return kn_setting_error(err, key, "cannot be set: %s",
                                    g_forbidden[i].why);
    if (strcmp(bare, "message.timeout.ms") == 0 ||
        strcmp(bare, "delivery.timeout.ms") == 0) {
        int ms = 0; /* set by parse_int; gcc -O2 cannot tell */
        if (parse_int(key, val, 1, 900000000, &ms, err) != KN_OK)
            return KN_INVAL;
        s->message_timeout_ms = ms;
    }
    return put(s->props, prop, val) == KN_OK
               ? KN_OK
               : kn_err_set(err, KN_NOMEM, "out of memory");
}

static int parse_one(kn_kafka_settings *s, const char *key, const char *val,
                     bool *have_bootstrap, kn_err *err)
{
    if (strcmp(key, "bootstrap.servers") == 0) {
        if (!*val)
            return kn_setting_error(err, key, "empty (a comma-separated "
                                    "host:port list is required)");
        *have_bootstrap = true;
        return put(s->props, key, val);
    }
    if (strcmp(key, "default.topic.partitions") == 0)
        return parse_int(key, val, 1, 1000000, &s->partitions, err);
    if (strcmp(key, "default.topic.replication.factor") == 0) {
        if (parse_int(key, val, -1, 32767, &s->replication, err) != KN_OK)
            return KN_INVAL;
        if (s->replication == 0)
            return kn_setting_error(err, key, "0 is not a replication "
                                    "factor (use -1 for the broker's "
                                    "default)");
        return KN_OK;
    }
    if (strncmp(key, TOPIC_CFG_PREFIX, strlen(TOPIC_CFG_PREFIX)) == 0) {
        if (!key[strlen(TOPIC_CFG_PREFIX)])
            return kn_setting_error(err, key, "no topic configuration named");
        return put(s->topic_config, key + strlen(TOPIC_CFG_PREFIX), val);
    }
    if (strcmp(key, "topic") == 0) {
        if (!topic_name_ok(val))
            return kn_setting_error(err, key, "'%s' is not a Kafka topic "
                                    "name (1 to 249 of [a-zA-Z0-9._-])",
                                    val);
        free(s->topic);
        s->topic = strdup(val);
        s->external = true;
        return s->topic ? KN_OK : KN_NOMEM;
    }
    if (strncmp(key, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0)
        return parse_kafka_prop(s, key, val, err);
    if (strcmp(key, "auth.secret.ref.name") == 0)
        return kn_setting_error(err, key, "Kubernetes secrets are not "
                                "available; give the security settings as "
                                "kafka.security.protocol, kafka.sasl.* and "
                                "kafka.ssl.* keys");
    return kn_setting_error(err, key, "unknown setting (known: "
                            "bootstrap.servers, default.topic.partitions, "
                            "default.topic.replication.factor, "
                            "default.topic.config.<name>, topic, "
                            "kafka.<librdkafka property>)");
}

/* Parses cfg->settings (see kafka_int.h). */
int kn_kafka_settings_parse(const kn_channel_config *cfg,
                            kn_kafka_settings *s, kn_err *err)
{
    const json_t *set = cfg ? cfg->settings : NULL;
    bool have_bootstrap = false;
    const char *key;
    json_t *v;
    int rc = KN_OK;

    memset(s, 0, sizeof *s);
    s->partitions = 10;
    s->message_timeout_ms = 10000;
    s->topic_config = json_object();
    s->props = json_object();
    if (!s->topic_config || !s->props) {
        rc = kn_err_set(err, KN_NOMEM, "out of memory");
        goto fail;
    }
    if (set && !json_is_object(set)) {
        rc = kn_err_set(err, KN_INVAL, "channel settings: not an object");
        goto fail;
    }
    json_object_foreach((json_t *)(uintptr_t)set, key, v) {
        char buf[32];
        const char *val = value_str(v, buf, sizeof buf);
        if (!val) {
            rc = kn_setting_error(err, key, "expected a string");
            goto fail;
        }
        if ((rc = parse_one(s, key, val, &have_bootstrap, err)) != KN_OK) {
            if (rc == KN_NOMEM)
                kn_err_set(err, KN_NOMEM, "out of memory");
            goto fail;
        }
    }
    if (!have_bootstrap) {
        rc = kn_setting_error(err, "bootstrap.servers", "required (the "
                              "Kafka cluster's host:port list)");
        goto fail;
    }
    if (!s->topic) {
        if (!cfg->ns || !*cfg->ns || !cfg->name || !*cfg->name) {
            rc = kn_err_set(err, KN_INVAL, "kafka channel: no broker "
                            "namespace/name to name its topic after and no "
                            "topic setting");
            goto fail;
        }
        if (asprintf(&s->topic, "knative-broker-%s-%s", cfg->ns,
                     cfg->name) < 0) {
            s->topic = NULL;
            rc = kn_err_set(err, KN_NOMEM, "out of memory");
            goto fail;
        }
        if (!topic_name_ok(s->topic)) {
            rc = kn_err_set(err, KN_INVAL, "kafka channel: topic name '%s' "
                            "(from the broker's namespace and name) is not "
                            "a valid Kafka topic name", s->topic);
            goto fail;
        }
    }
    return KN_OK;
fail:
    kn_kafka_settings_free(s);
    return rc;
}

void kn_kafka_settings_free(kn_kafka_settings *s)
{
    free(s->topic);
    json_decref(s->topic_config);
    json_decref(s->props);
    memset(s, 0, sizeof *s);
}

static int conf_set(rd_kafka_conf_t *c, const char *name, const char *val,
                    const char *src, kn_err *err)
{
    char es[256];
    if (rd_kafka_conf_set(c, name, val, es, sizeof es) == RD_KAFKA_CONF_OK)
        return KN_OK;
    kn_err_set(err, KN_INVAL, "setting %s: %s", src, es);
    if (err)
        snprintf(err->field, sizeof err->field, "%.127s", src);
    return KN_INVAL;
}

static int set_table(rd_kafka_conf_t *c, const char *const (*t)[2],
                     size_t n, kn_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (conf_set(c, t[i][0], t[i][1], t[i][0], err) != KN_OK)
            return KN_INVAL;
    return KN_OK;
}

/* The user's properties that apply to this kind of client. */
static int set_user_props(rd_kafka_conf_t *c, const kn_kafka_settings *s,
                          bool consumer, kn_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(s->props, key, v) {
        const char *prop = key;
        char src[300];
        if (strncmp(key, "producer.", 9) == 0) {
            if (consumer)
                continue;
            prop = key + 9;
        } else if (strncmp(key, "consumer.", 9) == 0) {
            if (!consumer)
                continue;
            prop = key + 9;
        }
        if (strcmp(key, "bootstrap.servers") == 0)
            snprintf(src, sizeof src, "%s", key);
        else
            snprintf(src, sizeof src, KAFKA_PREFIX "%s", key);
        if (conf_set(c, prop, json_string_value(v), src, err) != KN_OK)
            return KN_INVAL;
    }
    return KN_OK;
}

/* See kafka_int.h. */
rd_kafka_conf_t *kn_kafka_conf_new(const kn_kafka_settings *s, bool consumer,
                                   kn_err *err)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int rc;
    if (!c) {
        kn_err_set(err, KN_NOMEM, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(c, kn_kafka_log_cb);
    if (consumer)
        rc = set_table(c, g_consumer_defaults, sizeof g_consumer_defaults /
                       sizeof *g_consumer_defaults, err);
    else
        rc = set_table(c, g_producer_defaults, sizeof g_producer_defaults /
                       sizeof *g_producer_defaults, err);
    if (rc == KN_OK)
        rc = set_user_props(c, s, consumer, err);
    if (rc == KN_OK && consumer)
        rc = set_table(c, g_consumer_required, sizeof g_consumer_required /
                       sizeof *g_consumer_required, err);
    else if (rc == KN_OK)
        rc = set_table(c, g_producer_required, sizeof g_producer_required /
                       sizeof *g_producer_required, err);
    if (rc != KN_OK) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return c;
}

/* See kafka_int.h. Namespaces and names are DNS-1123 labels (no dots), so
 * "trigger.<ns>.<name>" splits without ambiguity. */
char *kn_kafka_group_id(const char *group)
{
    const char *ns = group + 8, *dot;
    char *out;
    if (strncmp(group, "trigger.", 8) != 0 || !(dot = strchr(ns, '.')) ||
        dot == ns || !dot[1] || strchr(dot + 1, '.'))
        return strdup(group);
    if (asprintf(&out, "knative-trigger-%.*s-%s", (int)(dot - ns), ns,
                 dot + 1) < 0)
        return NULL;
    return out;
}

/* See kafka_int.h. */
int kn_kafka_status(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return KN_OK;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return KN_TOOBIG;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return KN_AGAIN;
    default:
        return KN_UNAVAILABLE;
    }
}

/* See kafka_int.h. Runs on librdkafka's threads. */
void kn_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                     const char *buf)
{
    /* Connection failures ("FAIL") also reach the error callbacks, which
     * log them once a second at most. */
    kn_log_level lvl = strcmp(fac, "FAIL") == 0 ? KN_LOG_DEBUG
                       : level <= 2             ? KN_LOG_ERROR
                       : level <= 4             ? KN_LOG_WARN
                       : level <= 6             ? KN_LOG_INFO
                                                : KN_LOG_DEBUG;
    KN_LOG(lvl, KN_KAFKA_COMP, "librdkafka %s %s: %s", rd_kafka_name(rk),
           fac, buf);
}
