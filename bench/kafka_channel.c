/*
 * bench/kafka_channel: append throughput of the Kafka channel (one event
 * per append, as the ingress does, many appends in flight, each completed
 * by its delivery report) next to the raw ceiling measured in the same run
 * against the same cluster: librdkafka's producer (the same configuration:
 * acks=all, idempotence, linger 2 ms, murmur2 partitioner) sending the same
 * bytes (the same ce_ headers, key and value, encoded before the clock
 * starts) with the same number in flight and its delivery reports served
 * by a poll thread, into a topic with the same partitions. Each round
 * measures raw then knit back to back; prints both rates and the CPU time
 * per event of the whole process (less sensitive to a shared, loaded
 * machine than the rates), the ratios per round and their medians.
 *
 * Usage: kafka_channel [events [in-flight [data-bytes [rounds]]]]
 *   defaults: 50000 events, 1024 in flight, 256 bytes of data, 3 rounds.
 *   Runs against an in-process librdkafka mock cluster (3 brokers, topics
 *   of 10 partitions), or the cluster in KNIT_KAFKA_BOOTSTRAP (its topics
 *   must exist or be auto-creatable).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "channels/kafka/kafka_int.h"
#include "tests/testutil.h"

#include <librdkafka/rdkafka_mock.h>

#define RAW_TOPIC "knit-bench-raw"

static double now_s(void)
{
    return (double)kn_now_mono_ns() / 1e9;
}

/* CPU seconds of the whole process (producer, channel, mock brokers). */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static ce_event *make_event(int round, long i, size_t data_len)
{
    char id[64], key[16], *data = malloc(data_len + 1);
    ce_event *ev = ce_event_new();
    snprintf(id, sizeof id, "bench-%d-%ld", round, i);
    snprintf(key, sizeof key, "k%ld", i % 64);
    memset(data, 'x', data_len);
    if (data_len >= 2) {
        data[0] = '"';
        data[data_len - 1] = '"';
    }
    if (!ev || ce_event_set_str(ev, "specversion", "1.0", NULL) ||
        ce_event_set_str(ev, "id", id, NULL) ||
        ce_event_set_str(ev, "source", "/bench/kafka", NULL) ||
        ce_event_set_str(ev, "type", "dev.knit.bench", NULL) ||
        ce_event_set_str(ev, "time", "2024-05-01T12:00:00Z", NULL) ||
        ce_event_set_str(ev, "datacontenttype", "application/json", NULL) ||
        ce_event_set_str(ev, "partitionkey", key, NULL) ||
        ce_event_set_str(ev, "knativearrivaltime",
                         "2024-05-01T12:00:00.123456789Z", NULL) ||
        ce_event_set_data(ev, data, data_len)) {
        fprintf(stderr, "kafka_channel: cannot build events\n");
        exit(1);
    }
    free(data);
    ce_event_freeze(ev);
    return ev;
}

/* ---------------------------------------------------------------- raw */

typedef struct raw_rec {
    ce_headers h;
    ce_buf value;
    const char *key;
    size_t klen;
} raw_rec;

typedef struct raw_ctx {
    rd_kafka_t *rk;
    atomic_bool stop;
} raw_ctx;

static void raw_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *op)
{
    (void)rk;
    (void)op;
    tu_window_release(m->_private, m->err == RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void *raw_poll(void *arg)
{
    raw_ctx *r = arg;
    while (!atomic_load(&r->stop))
        rd_kafka_poll(r->rk, 100);
    return NULL;
}

static double run_raw(const kn_kafka_settings *set, ce_event **evs, long n,
                      int inflight, long *failed, double *cpu_us)
{
    kn_err err;
    char es[256];
    raw_rec *rr = calloc((size_t)n, sizeof *rr);
    for (long i = 0; i < n; i++) { /* the encoding is not timed */
        bool hv;
        ce_err cerr;
        ce_kafka_encode(evs[i], CE_MODE_BINARY, &rr[i].h, &rr[i].value, &hv,
                        &rr[i].key, &rr[i].klen, &cerr);
    }
    rd_kafka_conf_t *c = kn_kafka_conf_new(set, false, &err);
    rd_kafka_conf_set(c, "log_level", "3", es, sizeof es);
    rd_kafka_conf_set_dr_msg_cb(c, raw_dr);
    raw_ctx ctx = {0};
    ctx.rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, es, sizeof es);
    if (!ctx.rk) {
        fprintf(stderr, "kafka_channel: raw producer: %s\n", es);
        exit(1);
    }
    rd_kafka_topic_t *t = rd_kafka_topic_new(ctx.rk, RAW_TOPIC, NULL);
    pthread_t th;
    pthread_create(&th, NULL, raw_poll, &ctx);
    tu_window w;
    tu_window_init(&w, inflight);
    double t0 = now_s(), c0 = cpu_s();
    for (long i = 0; i < n; i++) {
        tu_window_acquire(&w);
        rd_kafka_headers_t *h = rd_kafka_headers_new(rr[i].h.count);
        for (size_t j = 0; j < rr[i].h.count; j++)
            rd_kafka_header_add(h, rr[i].h.items[j].name,
                                (ssize_t)rr[i].h.items[j].name_len,
                                rr[i].h.items[j].value,
                                (ssize_t)rr[i].h.items[j].value_len);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            ctx.rk, RD_KAFKA_V_RKT(t),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY((void *)(uintptr_t)rr[i].key, rr[i].klen),
            RD_KAFKA_V_VALUE(rr[i].value.data, rr[i].value.len),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(&w), RD_KAFKA_V_END);
        if (e) {
            rd_kafka_headers_destroy(h);
            tu_window_release(&w, false);
        }
    }
    tu_window_drain(&w);
    double dt = now_s() - t0;
    *cpu_us = (cpu_s() - c0) * 1e6 / (double)n;
    atomic_store(&ctx.stop, true);
    pthread_join(th, NULL);
    *failed = w.failed;
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(ctx.rk);
    for (long i = 0; i < n; i++) {
        ce_headers_free(&rr[i].h);
        ce_buf_free(&rr[i].value);
    }
    free(rr);
    return (double)n / dt;
}

/* --------------------------------------------------------------- knit */

static void knit_ack(void *arg, int status, uint64_t first)
{
    (void)first;
    tu_window_release(arg, status == KN_OK);
}

static double run_knit(kn_channel *ch, ce_event **evs, long n, int inflight,
                       long *failed, double *cpu_us)
{
    tu_window w;
    tu_window_init(&w, inflight);
    double t0 = now_s(), c0 = cpu_s();
    for (long i = 0; i < n; i++) {
        tu_window_acquire(&w);
        if (kn_channel_append(ch, &evs[i], 1, knit_ack, &w) != KN_OK)
            tu_window_release(&w, false);
    }
    tu_window_drain(&w);
    double dt = now_s() - t0;
    *cpu_us = (cpu_s() - c0) * 1e6 / (double)n;
    *failed = w.failed;
    return (double)n / dt;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 50000;
    int inflight = argc > 2 ? atoi(argv[2]) : 1024;
    size_t dlen = argc > 3 ? (size_t)atol(argv[3]) : 256;
    int rounds = argc > 4 ? atoi(argv[4]) : 3;
    const char *boot = getenv("KNIT_KAFKA_BOOTSTRAP");
    rd_kafka_t *mrk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    char es[256];
    kn_err err = {0};

    if (n <= 0 || inflight <= 0 || rounds <= 0 || rounds > 15) {
        fprintf(stderr, "usage: kafka_channel [events [in-flight "
                "[data-bytes [rounds]]]]\n");
        return 2;
    }
    kn_log_set_level(KN_LOG_WARN);
    if (!boot) {
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "log_level", "3", es, sizeof es);
        mrk = rd_kafka_new(RD_KAFKA_PRODUCER, c, es, sizeof es);
        mc = mrk ? rd_kafka_mock_cluster_new(mrk, 3) : NULL;
        if (!mc) {
            fprintf(stderr, "kafka_channel: no mock cluster\n");
            return 1;
        }
        boot = rd_kafka_mock_cluster_bootstraps(mc);
        rd_kafka_mock_topic_create(mc, RAW_TOPIC, 10, 3);
        rd_kafka_mock_topic_create(mc, "knative-broker-bench-kafka", 10, 3);
    }
    json_t *s = json_pack("{s:s}", "bootstrap.servers", boot);
    kn_channel_config cfg = {"bench", "kafka", NULL, s};
    kn_channel *ch = NULL;
    kn_kafka_settings set;
    if (kn_channel_open("kafka", &cfg, &ch, &err) != KN_OK ||
        kn_kafka_settings_parse(&cfg, &set, &err) != KN_OK) {
        fprintf(stderr, "kafka_channel: %s\n", err.msg);
        return 1;
    }
    printf("kafka channel append: %ld events of %zu data bytes, %d in "
           "flight, %s\n", n, dlen, inflight,
           mc ? "librdkafka mock cluster (3 brokers, 10 partitions)"
              : boot);
    double ratios[16], cpu[16];
    for (int r = 0; r < rounds; r++) {
        ce_event **evs = malloc((size_t)n * sizeof *evs);
        for (long i = 0; i < n; i++)
            evs[i] = make_event(r, i, dlen);
        long fr = 0, fk = 0;
        double cr, ck;
        double raw = run_raw(&set, evs, n, inflight, &fr, &cr);
        double knit = run_knit(ch, evs, n, inflight, &fk, &ck);
        ratios[r] = knit / raw;
        cpu[r] = cr / ck;
        printf("round %d: raw librdkafka %7.0f ev/s (%5.1f CPU us/ev)   "
               "knit channel %7.0f ev/s (%5.1f CPU us/ev)   ratio %.2f "
               "(CPU %.2f)%s\n", r + 1, raw, cr, knit, ck, ratios[r],
               cpu[r], fr || fk ? "   (failures!)" : "");
        for (long i = 0; i < n; i++)
            ce_event_unref(evs[i]);
        free(evs);
    }
    qsort(ratios, (size_t)rounds, sizeof *ratios, cmp_double);
    qsort(cpu, (size_t)rounds, sizeof *cpu, cmp_double);
    printf("median ratio knit/raw: %.2f in events/s, %.2f in CPU per event "
           "(raw CPU / knit CPU; process-wide, mock brokers included)\n",
           ratios[rounds / 2], cpu[rounds / 2]);
    kn_channel_close(ch);
    kn_kafka_settings_free(&set);
    json_decref(s);
    if (mc) {
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(mrk);
    }
    return 0;
}
