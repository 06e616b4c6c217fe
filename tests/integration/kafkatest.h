/*
 * Helpers shared by the Kafka channel tests (07xx): an in-process
 * librdkafka mock cluster (3 brokers), opening a "kafka" channel on it,
 * reading a cursor with a deadline (waiting on its fd, never sleeping),
 * and a raw consumer to look at committed offsets. Header-only; each test
 * binary includes it once. Builds on tests/testutil.h (test events,
 * synchronous appends, settings).
 */
#ifndef KNIT_TESTS_KAFKATEST_H
#define KNIT_TESTS_KAFKATEST_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>

#include "tests/testutil.h"

typedef struct kt_mock {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char bootstrap[256];
} kt_mock;

static inline void kt_mock_start(kt_mock *m)
{
    char es[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "3", es, sizeof es);
    if (getenv("KT_MOCKDEBUG")) /* the mock brokers' log, on stderr */
        rd_kafka_conf_set(c, "debug", getenv("KT_MOCKDEBUG"), es, sizeof es);
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, es, sizeof es);
    if (!m->rk || !(m->mc = rd_kafka_mock_cluster_new(m->rk, 3)))
        abort();
    snprintf(m->bootstrap, sizeof m->bootstrap, "%s",
             rd_kafka_mock_cluster_bootstraps(m->mc));
}

static inline void kt_mock_stop(kt_mock *m)
{
    rd_kafka_mock_cluster_destroy(m->mc);
    rd_kafka_destroy(m->rk);
}

/* The test program's mock cluster: kt_group_setup starts it (a cmocka
 * group fixture; KT_DEBUG=1 in the environment logs at debug level),
 * kt_group_teardown stops it. */
static kt_mock g_mock __attribute__((unused));

static inline int kt_group_setup(void **state)
{
    (void)state;
    kn_log_set_level(getenv("KT_DEBUG") ? KN_LOG_DEBUG : KN_LOG_ERROR);
    kt_mock_start(&g_mock);
    return 0;
}

static inline int kt_group_teardown(void **state)
{
    (void)state;
    kt_mock_stop(&g_mock);
    return 0;
}

static inline char *kt_topic(const char *name)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "knative-broker-default-%s", name);
    return buf;
}

/* Opens channel default/<name> on the mock with extra settings. */
static inline kn_channel *kt_open(kt_mock *m, const char *name,
                                  const char *kv[][2], size_t n, kn_err *err)
{
    json_t *s = tu_settings(kv, n);
    json_object_set_new(s, "bootstrap.servers", json_string(m->bootstrap));
    if (!json_object_get(s, "kafka.consumer.fetch.wait.max.ms"))
        json_object_set_new(s, "kafka.consumer.fetch.wait.max.ms",
                            json_string("5"));
    kn_channel_config cfg = {"default", name, NULL, s};
    kn_channel *ch = NULL;
    int rc = kn_channel_open("kafka", &cfg, &ch, err);
    json_decref(s);
    return rc == KN_OK ? ch : NULL;
}

static inline kn_cursor *kt_cursor(kn_channel *ch, const char *group,
                                   kn_seek_kind kind, kn_err *err)
{
    kn_seek s = {kind, 0, 0};
    kn_cursor *c = NULL;
    return ch->ops->cursor_open(ch, group, &s, NULL, &c, err) == KN_OK ? c
                                                                  : NULL;
}

/* Reads until `want` records arrived or timeout_ms passed, waiting on the
 * cursor's fd. Returns the count read (records go to out[0..]). */
static inline size_t kt_read(kn_cursor *c, kn_record *out, size_t want,
                             int timeout_ms)
{
    const kn_channel_ops *ops = c->channel->ops;
    int64_t end = kn_now_mono_ms() + timeout_ms;
    size_t got = 0;
    while (got < want) {
        int64_t left = end - kn_now_mono_ms();
        if (left <= 0)
            break;
        struct pollfd pf = {ops->cursor_fd(c), POLLIN, 0};
        if (poll(&pf, 1, (int)left) <= 0)
            continue;
        ops->cursor_drain_notify(c);
        int n = ops->cursor_next(c, out + got, want - got);
        if (n < 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* Serves a cursor (rebalances, commits) for ms without keeping records;
 * returns how many records it dropped. */
static inline size_t kt_idle(kn_cursor *c, int ms)
{
    kn_record r[16];
    size_t dropped = 0, n;
    int64_t end = kn_now_mono_ms() + ms;
    while (kn_now_mono_ms() < end) {
        n = kt_read(c, r, 16, (int)(end - kn_now_mono_ms()));
        tu_release(r, n);
        dropped += n;
    }
    return dropped;
}

/* Committed offset of a partition for a Kafka group id (-1 if none). */
static inline int64_t kt_committed(kt_mock *m, const char *gid,
                                   const char *topic, int32_t p)
{
    char es[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", m->bootstrap, es, sizeof es);
    rd_kafka_conf_set(c, "group.id", gid, es, sizeof es);
    rd_kafka_conf_set(c, "log_level", "3", es, sizeof es);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, es, sizeof es);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, p);
    int64_t off = -1;
    if (rd_kafka_committed(rk, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        l->elems[0].offset >= 0)
        off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return off;
}

/* Reads partitions 0..nparts-1 of a topic without a group or any of
 * knit's cursor code (a plain consumer from the low to the high
 * watermark), calling fn with each record's ce_id header ("" if none),
 * partition and offset. Returns the number of records, or -1 if a
 * partition could not be read to its high watermark within 20 s. */
typedef void kt_scan_fn(void *arg, const char *id, int32_t p, int64_t off);

static inline long kt_scan(kt_mock *m, const char *topic, int32_t nparts,
                           kt_scan_fn *fn, void *arg)
{
    char es[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", m->bootstrap, es, sizeof es);
    rd_kafka_conf_set(c, "fetch.wait.max.ms", "5", es, sizeof es);
    rd_kafka_conf_set(c, "log_level", "3", es, sizeof es);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, es, sizeof es);
    if (!rk)
        abort();
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    long total = 0;
    for (int32_t p = 0; p < nparts && total >= 0; p++) {
        int64_t lo, hi, next;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000)) {
            total = -1;
            break;
        }
        if (hi <= lo)
            continue;
        rd_kafka_consume_start(t, p, lo);
        int64_t end = kn_now_mono_ms() + 20000;
        for (next = lo; next < hi && kn_now_mono_ms() < end;) {
            rd_kafka_message_t *r = rd_kafka_consume(t, p, 500);
            if (!r)
                continue;
            if (!r->err) {
                rd_kafka_headers_t *h = NULL;
                const void *v = NULL;
                size_t vn = 0;
                char id[128] = "";
                if (!rd_kafka_message_headers(r, &h) &&
                    !rd_kafka_header_get_last(h, "ce_id", &v, &vn) &&
                    vn < sizeof id) {
                    memcpy(id, v, vn);
                    id[vn] = '\0';
                }
                fn(arg, id, p, r->offset);
                next = r->offset + 1;
                total++;
            }
            rd_kafka_message_destroy(r);
        }
        rd_kafka_consume_stop(t, p);
        if (next < hi)
            total = -1;
    }
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
    return total;
}

/* A raw producer on the mock, for records knit did not write. */
static inline rd_kafka_t *kt_producer(kt_mock *m)
{
    char es[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", m->bootstrap, es, sizeof es);
    rd_kafka_conf_set(c, "log_level", "3", es, sizeof es);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, es, sizeof es);
    if (!rk)
        abort();
    return rk;
}

#endif
