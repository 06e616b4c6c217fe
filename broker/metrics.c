/*
 * Metrics: per-broker ingress counters (requests by code, events stored,
 * bytes, append latency histogram) kept in a process-wide list, and the
 * Prometheus text exposition of them plus each channel's kn_channel_stats
 * and the process RSS.
 *
 * Threads: counters are atomics updated from ingress threads and channel
 * writer threads; the list is append-only under a mutex, so a kn_bstats
 * pointer stays valid until kn_metrics_shutdown (main thread, at exit).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"

static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static kn_bstats *stats_head;

static const int code_slots[] = {200, 202, 400, 404, 405, 413, 500, 503};
#define N_CODE_SLOTS (sizeof code_slots / sizeof code_slots[0])

/* Upper bounds of the latency buckets in microseconds; the last bucket
 * (+Inf) is implicit. */
static const int64_t lat_bounds_us[KN_HIST_BUCKETS - 1] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 5000000};

kn_bstats *kn_metrics_broker(const char *ns, const char *name)
{
    if (!ns || !name) {
        ns = "";
        name = "";
    }
    pthread_mutex_lock(&stats_mu);
    kn_bstats *s = stats_head;
    for (; s; s = s->next)
        if (strcmp(s->ns, ns) == 0 && strcmp(s->name, name) == 0)
            break;
    if (!s && (s = calloc(1, sizeof *s)) != NULL) {
        snprintf(s->ns, sizeof s->ns, "%s", ns);
        snprintf(s->name, sizeof s->name, "%s", name);
        s->next = stats_head;
        stats_head = s;
    }
    pthread_mutex_unlock(&stats_mu);
    return s;
}

void kn_metrics_request(kn_bstats *s, int http_code)
{
    if (!s)
        return;
    size_t slot = N_CODE_SLOTS; /* "other" */
    for (size_t i = 0; i < N_CODE_SLOTS; i++)
        if (code_slots[i] == http_code)
            slot = i;
    atomic_fetch_add(&s->requests[slot], 1);
}

void kn_metrics_append_latency(kn_bstats *s, int64_t ns)
{
    if (!s)
        return;
    int64_t us = ns / 1000;
    size_t b = 0;
    while (b < KN_HIST_BUCKETS - 1 && us > lat_bounds_us[b])
        b++;
    atomic_fetch_add(&s->lat_buckets[b], 1);
    atomic_fetch_add(&s->lat_count, 1);
    atomic_fetch_add(&s->lat_sum_us, (uint64_t)(us > 0 ? us : 0));
}

void kn_metrics_shutdown(void)
{
    pthread_mutex_lock(&stats_mu);
    while (stats_head) {
        kn_bstats *n = stats_head->next;
        free(stats_head);
        stats_head = n;
    }
    pthread_mutex_unlock(&stats_mu);
}

static uint64_t process_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void render_requests(ce_buf *out)
{
    ce_buf_puts(out,
                "# HELP knit_ingress_requests_total Ingress requests by "
                "broker and HTTP status.\n"
                "# TYPE knit_ingress_requests_total counter\n");
    for (kn_bstats *s = stats_head; s; s = s->next) {
        for (size_t i = 0; i <= N_CODE_SLOTS; i++) {
            uint64_t v = atomic_load(&s->requests[i]);
            if (!v)
                continue;
            char code[8];
            if (i < N_CODE_SLOTS)
                snprintf(code, sizeof code, "%d", code_slots[i]);
            else
                snprintf(code, sizeof code, "other");
            ce_buf_printf(out,
                          "knit_ingress_requests_total{namespace=\"%s\","
                          "broker=\"%s\",code=\"%s\"} %" PRIu64 "\n",
                          s->ns, s->name, code, v);
        }
    }
}

static void render_counters(ce_buf *out)
{
    ce_buf_puts(out, "# HELP knit_ingress_events_stored_total Events "
                     "acknowledged (durably stored) by the ingress.\n"
                     "# TYPE knit_ingress_events_stored_total counter\n");
    for (kn_bstats *s = stats_head; s; s = s->next)
        if (s->ns[0])
            ce_buf_printf(out,
                          "knit_ingress_events_stored_total{namespace="
                          "\"%s\",broker=\"%s\"} %" PRIu64 "\n",
                          s->ns, s->name,
                          (uint64_t)atomic_load(&s->events_stored));
    ce_buf_puts(out, "# HELP knit_ingress_bytes_received_total Request "
                     "body bytes received by the ingress.\n"
                     "# TYPE knit_ingress_bytes_received_total counter\n");
    for (kn_bstats *s = stats_head; s; s = s->next)
        if (s->ns[0])
            ce_buf_printf(out,
                          "knit_ingress_bytes_received_total{namespace="
                          "\"%s\",broker=\"%s\"} %" PRIu64 "\n",
                          s->ns, s->name,
                          (uint64_t)atomic_load(&s->bytes_received));
}

static void render_histogram(ce_buf *out)
{
    ce_buf_puts(out, "# HELP knit_append_latency_seconds Time from append "
                     "to durable completion.\n"
                     "# TYPE knit_append_latency_seconds histogram\n");
    for (kn_bstats *s = stats_head; s; s = s->next) {
        if (!s->ns[0])
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < KN_HIST_BUCKETS; b++) {
            cum += atomic_load(&s->lat_buckets[b]);
            char le[32];
            if (b < KN_HIST_BUCKETS - 1)
                snprintf(le, sizeof le, "%g",
                         (double)lat_bounds_us[b] / 1e6);
            else
                snprintf(le, sizeof le, "+Inf");
            ce_buf_printf(out,
                          "knit_append_latency_seconds_bucket{namespace="
                          "\"%s\",broker=\"%s\",le=\"%s\"} %" PRIu64 "\n",
                          s->ns, s->name, le, cum);
        }
        ce_buf_printf(out,
                      "knit_append_latency_seconds_sum{namespace=\"%s\","
                      "broker=\"%s\"} %.6f\n"
                      "knit_append_latency_seconds_count{namespace=\"%s\","
                      "broker=\"%s\"} %" PRIu64 "\n",
                      s->ns, s->name,
                      (double)atomic_load(&s->lat_sum_us) / 1e6, s->ns,
                      s->name, (uint64_t)atomic_load(&s->lat_count));
    }
}

/* One channel metric family over every broker with an open channel. */
static void render_channel_family(ce_buf *out, const char *name,
                                  const char *type, const char *help,
                                  kn_broker_rt *const *b,
                                  const kn_channel_stats *st, size_t n,
                                  size_t field_off)
{
    ce_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                  type);
    for (size_t i = 0; i < n; i++) {
        if (!b[i]->chan)
            continue;
        uint64_t v;
        if (field_off == (size_t)-1)
            v = st[i].healthy ? 1 : 0;
        else
            memcpy(&v, (const char *)&st[i] + field_off, sizeof v);
        ce_buf_printf(out, "%s{namespace=\"%s\",broker=\"%s\"} %" PRIu64
                           "\n", name, b[i]->ns, b[i]->name, v);
    }
}

static void render_channels(ce_buf *out, kn_broker_rt *const *b, size_t n)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } fams[] = {
#define F(n, t, h, f) {n, t, h, offsetof(kn_channel_stats, f)}
        F("knit_channel_appended_events_total", "counter",
          "Events appended to the channel since open.", appended_events),
        F("knit_channel_appended_bytes_total", "counter",
          "Bytes appended to the channel since open.", appended_bytes),
        F("knit_channel_head_offset", "gauge",
          "Next offset the channel will assign.", head_offset),
        F("knit_channel_first_offset", "gauge",
          "Oldest retained offset.", first_offset),
        F("knit_channel_stored_bytes", "gauge", "Bytes stored on disk.",
          stored_bytes),
        F("knit_channel_segments", "gauge", "Segment files.", segments),
        F("knit_channel_retention_deleted_events_total", "counter",
          "Events deleted by retention.", retention_deleted_events),
        F("knit_channel_retention_deleted_bytes_total", "counter",
          "Bytes deleted by retention.", retention_deleted_bytes),
        F("knit_channel_retention_forced_total", "counter",
          "Retention deletions past a cursor's position.", retention_forced),
        F("knit_channel_fsyncs_total", "counter", "fdatasync calls.",
          fsyncs),
        F("knit_channel_append_errors_total", "counter", "Failed appends.",
          append_errors),
#undef F
    };
    kn_channel_stats *st = calloc(n ? n : 1, sizeof *st);
    if (!st)
        return;
    for (size_t i = 0; i < n; i++)
        if (b[i]->chan)
            b[i]->chan->ch->ops->stats(b[i]->chan->ch, &st[i]);
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++)
        render_channel_family(out, fams[f].name, fams[f].type, fams[f].help,
                              b, st, n, fams[f].off);
    render_channel_family(out, "knit_channel_healthy", "gauge",
                          "1 when appends can succeed.", b, st, n,
                          (size_t)-1);
    free(st);
}

int kn_metrics_render(ce_buf *out, kn_broker_rt *const *brokers, size_t n)
{
    pthread_mutex_lock(&stats_mu);
    render_requests(out);
    render_counters(out);
    render_histogram(out);
    pthread_mutex_unlock(&stats_mu);
    ce_buf_puts(out, "# HELP knit_broker_ready 1 when the broker's channel "
                     "is open.\n# TYPE knit_broker_ready gauge\n");
    for (size_t i = 0; i < n; i++)
        ce_buf_printf(out, "knit_broker_ready{namespace=\"%s\",broker="
                           "\"%s\"} %d\n", brokers[i]->ns, brokers[i]->name,
                      brokers[i]->chan ? 1 : 0);
    render_channels(out, brokers, n);
    ce_buf_printf(out, "# HELP process_resident_memory_bytes Resident "
                       "memory size in bytes.\n"
                       "# TYPE process_resident_memory_bytes gauge\n"
                       "process_resident_memory_bytes %" PRIu64 "\n",
                  process_rss());
    return out->data ? KN_OK : KN_NOMEM;
}
