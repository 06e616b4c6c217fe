/*
 * knit-sink-bench: drives the delivery client alone against a subscriber
 * and prints deliveries/s, mean submit→outcome latency and connections.
 *
 *   knit-sink-bench URL COUNT WINDOW [MAX_HOST_CONNECTIONS]
 *
 * WINDOW deliveries are kept in flight: each result callback (on the loop
 * thread) submits the next one, like the dispatcher does. Pair it with
 * `knit-test-sink --threads 2` for a fast 202 subscriber.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sinks/sinks.h"

static kn_sink_client *client;
static ce_event *event;
static const char *url;
static kn_delivery_spec spec;
static int total;
static atomic_int done, sent, failed;
static int64_t latency_sum;     /* loop thread only */

static void submit_one(void);

static void on_result(const kn_delivery_result *r, void *arg)
{
    (void)arg;
    if (r->status != KN_DELIVERY_DELIVERED && failed++ < 5)
        fprintf(stderr, "delivery %s: %s\n",
                kn_delivery_status_str(r->status), r->error);
    latency_sum += r->latency_ns;
    done++;
    if (sent < total)
        submit_one();
}

static void submit_one(void)
{
    kn_delivery_req req;
    kn_err err;
    memset(&req, 0, sizeof req);
    req.event = event;
    req.url = url;
    req.spec = &spec;
    req.ns = "default";
    sent++;
    if (kn_sink_submit(client, &req, on_result, NULL, &err) != KN_OK) {
        fprintf(stderr, "submit: %s\n", err.msg);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    kn_sink_client_opts o;
    kn_sink_stats st;
    kn_err err;
    int window;

    if (argc < 4) {
        fprintf(stderr, "usage: knit-sink-bench URL COUNT WINDOW "
                        "[MAX_HOST_CONNECTIONS]\n");
        return 2;
    }
    url = argv[1];
    total = atoi(argv[2]);
    window = atoi(argv[3]);
    if (total <= 0 || window <= 0)
        return fprintf(stderr, "COUNT and WINDOW must be > 0\n"), 2;
    memset(&o, 0, sizeof o);
    o.max_host_connections = argc > 4 ? atol(argv[4]) : 16;
    if (!(client = kn_sink_client_new(&o, &err)))
        return fprintf(stderr, "%s\n", err.msg), 1;
    kn_delivery_spec_default(&spec);
    spec.retry = 0;
    event = ce_event_new();
    ce_event_set_str(event, "specversion", "1.0", NULL);
    ce_event_set_str(event, "id", "bench-1", NULL);
    ce_event_set_str(event, "source", "/knit/bench", NULL);
    ce_event_set_str(event, "type", "dev.knit.bench", NULL);
    ce_event_set_str(event, "datacontenttype", "application/json", NULL);
    ce_event_set_data(event, "{\"hello\":\"world\"}", 17);
    ce_event_freeze(event);

    int64_t t0 = kn_now_mono_ns();
    for (int i = 0; i < window && i < total; i++)
        submit_one();
    while (done < total) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    double secs = (double)(kn_now_mono_ns() - t0) / 1e9;
    kn_sink_client_stats(client, &st);
    kn_sink_client_free(client);        /* joins: latency_sum is final */
    printf("%d deliveries in %.2f s = %.0f/s, mean latency %.2f ms, "
           "%llu connections, %d failed\n", total, secs, total / secs,
           (double)latency_sum / 1e6 / total,
           (unsigned long long)st.connections, (int)failed);
    ce_event_unref(event);
    return failed ? 1 : 0;
}
