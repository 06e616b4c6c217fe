/*
 * Per-trigger delivery metrics: counters and gauges kept as atomics in a
 * list owned by the dispatcher (entries live until it is freed, so a
 * re-created trigger keeps counting), and their Prometheus exposition.
 *
 * Threads: counters are updated on the loop; the gauges (lag, in flight)
 * by the commit tick; rendering runs on admin threads under d->smu.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dispatch/dispatch_int.h"

/* Upper bounds of the dispatch latency buckets in microseconds; the last
 * bucket (+Inf) is implicit. */
static const int64_t lat_bounds_us[KN_DLAT_BUCKETS - 1] = {
    250,    500,    1000,   2500,    5000,    10000,    25000,   50000,
    100000, 250000, 500000, 1000000, 5000000, 30000000, 60000000};

static const char *const rc_names[KN_RC_N] = {"2xx", "4xx", "5xx", "other",
                                              "error"};

kn_tstats *kn_tstats_get(kn_dispatcher *d, const char *ns, const char *name,
                         const char *broker)
{
    pthread_mutex_lock(&d->smu);
    kn_tstats *s = d->stats;
    for (; s; s = s->next)
        if (!strcmp(s->ns, ns) && !strcmp(s->name, name))
            break;
    if (!s && (s = calloc(1, sizeof *s)) != NULL) {
        snprintf(s->ns, sizeof s->ns, "%s", ns);
        snprintf(s->name, sizeof s->name, "%s", name);
        s->next = d->stats;
        d->stats = s;
    }
    if (s)
        snprintf(s->broker, sizeof s->broker, "%s", broker);
    pthread_mutex_unlock(&d->smu);
    return s;
}

void kn_tstats_free_all(kn_dispatcher *d)
{
    pthread_mutex_lock(&d->smu);
    while (d->stats) {
        kn_tstats *n = d->stats->next;
        free(d->stats);
        d->stats = n;
    }
    pthread_mutex_unlock(&d->smu);
}

void kn_tstats_latency(kn_tstats *s, int64_t ns)
{
    int64_t us = ns > 0 ? ns / 1000 : 0;
    size_t b = 0;
    while (b < KN_DLAT_BUCKETS - 1 && us > lat_bounds_us[b])
        b++;
    atomic_fetch_add(&s->lat[b], 1);
    atomic_fetch_add(&s->lat_count, 1);
    atomic_fetch_add(&s->lat_sum_us, (uint64_t)us);
}

void kn_tstats_response(kn_tstats *s, int code)
{
    int c = code == 0                  ? KN_RC_ERROR
            : code >= 200 && code < 300 ? KN_RC_2XX
            : code >= 400 && code < 500 ? KN_RC_4XX
            : code >= 500 && code < 600 ? KN_RC_5XX
                                        : KN_RC_OTHER;
    atomic_fetch_add(&s->responses[c], 1);
}

/* ------------------------------------------------------- exposition */

#define LABELS "namespace=\"%s\",trigger=\"%s\",broker=\"%s\""
#define LABEL_ARGS(s) (s)->ns, (s)->name, (s)->broker

static void family(ce_buf *out, const char *name, const char *type,
                   const char *help)
{
    ce_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                  type);
}

static void counter(ce_buf *out, kn_dispatcher *d, const char *name,
                    const char *help, size_t off, bool gauge)
{
    family(out, name, gauge ? "gauge" : "counter", help);
    for (kn_tstats *s = d->stats; s; s = s->next) {
        if (gauge && !atomic_load(&s->active))
            continue;
        const atomic_uint_fast64_t *v =
            (const atomic_uint_fast64_t *)((const char *)s + off);
        ce_buf_printf(out, "%s{" LABELS "} %" PRIu64 "\n", name,
                      LABEL_ARGS(s), (uint64_t)atomic_load(v));
    }
}

static void render_histogram(ce_buf *out, kn_dispatcher *d)
{
    const char *n = "knit_trigger_dispatch_latency_seconds";
    family(out, n, "histogram", "Time from the event's append to the "
           "broker to the subscriber's 2xx.");
    for (kn_tstats *s = d->stats; s; s = s->next) {
        uint64_t cum = 0;
        for (size_t b = 0; b < KN_DLAT_BUCKETS; b++) {
            char le[32];
            cum += atomic_load(&s->lat[b]);
            if (b < KN_DLAT_BUCKETS - 1)
                snprintf(le, sizeof le, "%g",
                         (double)lat_bounds_us[b] / 1e6);
            else
                snprintf(le, sizeof le, "+Inf");
            ce_buf_printf(out, "%s_bucket{" LABELS ",le=\"%s\"} %" PRIu64
                          "\n", n, LABEL_ARGS(s), le, cum);
        }
        ce_buf_printf(out, "%s_sum{" LABELS "} %.6f\n%s_count{" LABELS
                      "} %" PRIu64 "\n", n, LABEL_ARGS(s),
                      (double)atomic_load(&s->lat_sum_us) / 1e6, n,
                      LABEL_ARGS(s), (uint64_t)atomic_load(&s->lat_count));
    }
}

int kn_dispatcher_metrics(kn_dispatcher *d, ce_buf *out)
{
    if (!d)
        return KN_OK;
    pthread_mutex_lock(&d->smu);
    family(out, "knit_trigger_deliveries_total", "counter",
           "Finished deliveries by the subscriber's last response class "
           "(error = no HTTP response).");
    for (kn_tstats *s = d->stats; s; s = s->next)
        for (int c = 0; c < KN_RC_N; c++)
            ce_buf_printf(out, "knit_trigger_deliveries_total{" LABELS
                          ",class=\"%s\"} %" PRIu64 "\n", LABEL_ARGS(s),
                          rc_names[c],
                          (uint64_t)atomic_load(&s->responses[c]));
    family(out, "knit_trigger_dead_letters_total", "counter",
           "Events dead-lettered, by where they went (sink = the "
           "dead-letter sink, store = the broker's dead-letter store).");
    for (kn_tstats *s = d->stats; s; s = s->next)
        ce_buf_printf(out, "knit_trigger_dead_letters_total{" LABELS
                      ",destination=\"sink\"} %" PRIu64 "\n"
                      "knit_trigger_dead_letters_total{" LABELS
                      ",destination=\"store\"} %" PRIu64 "\n",
                      LABEL_ARGS(s), (uint64_t)atomic_load(&s->dead_sink),
                      LABEL_ARGS(s), (uint64_t)atomic_load(&s->dead_store));
#define C(n, h, f) counter(out, d, n, h, offsetof(kn_tstats, f), false)
#define G(n, h, f) counter(out, d, n, h, offsetof(kn_tstats, f), true)
    C("knit_trigger_delivered_total", "Events the subscriber accepted "
      "(2xx).", delivered);
    C("knit_trigger_retries_total", "Attempts after the first one.",
      retries);
    C("knit_trigger_replies_total", "Reply events stored in the broker.",
      replies);
    C("knit_trigger_ttl_exhausted_total", "Replies dropped because "
      "knativebrokerttl ran out (the original was dead-lettered).",
      ttl_exhausted);
    C("knit_trigger_events_matched_total", "Events that matched the "
      "trigger's filter.", matched);
    C("knit_trigger_events_filtered_total", "Events the trigger's filter "
      "did not match.", filtered);
    G("knit_trigger_lag_events", "Events stored after the trigger's "
      "commit point.", lag_events);
    G("knit_trigger_in_flight", "Deliveries at the subscriber now.",
      in_flight);
#undef C
#undef G
    family(out, "knit_trigger_lag_seconds", "gauge", "Age of the oldest "
           "event the trigger has not finished (0 when caught up).");
    for (kn_tstats *s = d->stats; s; s = s->next)
        if (atomic_load(&s->active))
            ce_buf_printf(out, "knit_trigger_lag_seconds{" LABELS "} %.3f\n",
                          LABEL_ARGS(s),
                          (double)atomic_load(&s->lag_ms) / 1e3);
    render_histogram(out, d);
    pthread_mutex_unlock(&d->smu);
    family(out, "knit_trigger_cesql_errors_total", "counter",
           "CESQL filter evaluations that failed (counted as no match).");
    ce_buf_printf(out, "knit_trigger_cesql_errors_total %" PRIu64 "\n",
                  kn_filter_cesql_errors());
    return out->data ? KN_OK : KN_NOMEM;
}
