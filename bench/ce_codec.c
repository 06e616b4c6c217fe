/*
 * bench/ce_codec: events/s per core of the CloudEvents codecs, printed next
 * to a reference measured in the same run (jansson's raw json_loadb of the
 * same bytes for the JSON format). Single-threaded; time is the thread's
 * CPU time, so the figures are per core.
 *
 * Usage: ce_codec [seconds-per-case [name-filter]]
 *   seconds default 0.3 (env CE_BENCH_SECONDS); with a filter only rows whose
 *   name contains it run (references are then skipped unless they match).
 *
 * Adding a row: write a run function (one event per call; return 0 on
 * success) and optionally setup/teardown for per-case state, then append an
 * entry to bench_cases[] below; `ref` names the row used as the reference
 * (its time per event divides this row's) and `target` the largest
 * acceptable ratio (0 = none). The shared fixture `fx` holds the sample
 * event in JSON and as a decoded event.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudevents/cloudevents.h"

/* A ~500-byte structured-mode event. */
static const char sample_json[] =
    "{\"specversion\":\"1.0\",\"id\":\"6f0e1d2c-9b8a-4c7d-8e6f-5a4b3c2d1e0f\","
    "\"source\":\"https://orders.example.com/eu-west/checkout\","
    "\"type\":\"com.example.orders.order.created.v1\","
    "\"subject\":\"orders/2024/05/order-1234567\","
    "\"time\":\"2024-05-01T12:34:56.789012Z\","
    "\"datacontenttype\":\"application/json\","
    "\"partitionkey\":\"customer-4242\","
    "\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\","
    "\"data\":{\"orderId\":1234567,\"customer\":{\"id\":4242,\"tier\":\"gold\"},"
    "\"items\":[{\"sku\":\"BK-1001\",\"qty\":2,\"price\":12.5},"
    "{\"sku\":\"PN-2002\",\"qty\":1,\"price\":3.75}],"
    "\"currency\":\"EUR\",\"total\":28.75,\"express\":false}}";

/* Shared fixture, filled once before the cases run. */
typedef struct bench_fixture {
    const char *json;
    size_t json_len;
    ce_event *event;       /* sample_json decoded, frozen */
    const void *data;      /* its data bytes */
    size_t data_len;
} bench_fixture;

static bench_fixture fx;

typedef struct bench_case {
    const char *name;
    int (*setup)(void **state);  /* optional */
    int (*run)(void *state);     /* one event; 0 on success */
    void (*teardown)(void *state);
    const char *ref;             /* reference row name, or NULL */
    double target;               /* max ratio vs ref; 0 = none */
} bench_case;

/* ------------------------------------------------------- JSON format rows */

static int run_jansson_loadb(void *state)
{
    (void)state;
    json_t *j = json_loadb(fx.json, fx.json_len, 0, NULL);
    if (!j)
        return -1;
    json_decref(j);
    return 0;
}

static int run_json_decode(void *state)
{
    (void)state;
    ce_event *ev;
    if (ce_json_decode(fx.json, fx.json_len, &ev, NULL) != CE_OK)
        return -1;
    ce_event_unref(ev);
    return 0;
}

static int setup_buf(void **state)
{
    ce_buf *b = calloc(1, sizeof *b);
    *state = b;
    return b ? 0 : -1;
}

static void teardown_buf(void *state)
{
    ce_buf_free(state);
    free(state);
}

static int run_json_encode(void *state)
{
    ce_buf *b = state;
    ce_buf_reset(b);
    return ce_json_encode(fx.event, b, NULL);
}

static int run_jansson_dumpb(void *state)
{
    json_t **j = state;
    char buf[1024];
    return json_dumpb(*j, buf, sizeof buf, JSON_COMPACT) ? 0 : -1;
}

static int setup_jansson_tree(void **state)
{
    json_t **j = malloc(sizeof *j);
    if (!j || !(*j = json_loadb(fx.json, fx.json_len, 0, NULL))) {
        free(j);
        return -1;
    }
    *state = j;
    return 0;
}

static void teardown_jansson_tree(void *state)
{
    json_t **j = state;
    json_decref(*j);
    free(j);
}

/* The floor of any binary-mode decoder: a new event, the attributes one
 * by one from their canonical strings, the data, and validation. */
static int run_build_event6(void *state)
{
    (void)state;
    static const struct {
        const char *name, *value;
    } attrs[] = {
        {"specversion", "1.0"},
        {"id", "6f0e1d2c-9b8a-4c7d-8e6f-5a4b3c2d1e0f"},
        {"source", "https://orders.example.com/eu-west/checkout"},
        {"type", "com.example.orders.order.created.v1"},
        {"time", "2024-05-01T12:34:56.789012Z"},
        {"datacontenttype", "application/json"},
    };
    static size_t nl[6], vl[6];
    if (!nl[0])
        for (int i = 0; i < 6; i++) {
            nl[i] = strlen(attrs[i].name);
            vl[i] = strlen(attrs[i].value);
        }
    ce_event *ev = ce_event_new();
    int rc = ev ? 0 : -1;
    for (int i = 0; rc == 0 && i < 6; i++)
        rc = ce_event_setn(ev, attrs[i].name, nl[i], attrs[i].value, vl[i],
                           CE_TYPE_STRING, NULL);
    if (rc == 0)
        rc = ce_event_set_data(ev, fx.data, fx.data_len);
    if (rc == 0)
        rc = ce_event_validate(ev, NULL);
    ce_event_unref(ev);
    return rc;
}

/* Same with every attribute of the sample event (9, 2 of them extensions). */
static int run_build_event(void *state)
{
    (void)state;
    ce_event *ev = ce_event_new();
    ce_attr a;
    int rc = ev ? 0 : -1;
    for (size_t i = 0; rc == 0 && ce_event_attr_at(fx.event, i, &a); i++)
        rc = ce_event_set(ev, a.name, a.value, a.len, a.type, NULL);
    if (rc == 0)
        rc = ce_event_set_data(ev, fx.data, fx.data_len);
    if (rc == 0)
        rc = ce_event_validate(ev, NULL);
    ce_event_unref(ev);
    return rc;
}

static int run_clone(void *state)
{
    (void)state;
    ce_event *ev = ce_event_clone(fx.event);
    ce_event_unref(ev);
    return ev ? 0 : -1;
}

/* ------------------------------------------------------ binding rows */

/* A message of one binding: headers as a receiver sees them (the encoded
 * ce- headers plus a few transport headers) and the body, or the output
 * buffers of an encoder. */
typedef struct bench_msg {
    ce_headers enc;        /* encoder output / source of hs */
    ce_buf body;
    ce_header hs[32];
    size_t nh;
} bench_msg;

static int msg_setup(void **state, int binding, ce_mode mode)
{
    bench_msg *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    *state = m;
    static const ce_header transport[] = {
        {"Host", 4, "broker.example.com:8080", 23},
        {"User-Agent", 10, "bench/1.0", 9},
        {"Content-Length", 14, "191", 3},
        {"Accept", 6, "*/*", 3},
    };
    int rc;
    bool has_value;
    const char *key;
    size_t klen;
    if (binding == 0)
        rc = ce_http_encode(fx.event, mode, &m->enc, &m->body, NULL);
    else if (binding == 1)
        rc = ce_kafka_encode(fx.event, mode, &m->enc, &m->body, &has_value,
                             &key, &klen, NULL);
    else
        rc = ce_nats_encode(fx.event, mode, &m->enc, &m->body, NULL);
    if (rc != CE_OK)
        return -1;
    if (binding == 0)
        for (size_t i = 0; i < 4; i++)
            m->hs[m->nh++] = transport[i];
    for (size_t i = 0; i < m->enc.count && m->nh < 32; i++)
        m->hs[m->nh++] = m->enc.items[i];
    return 0;
}

static int setup_http_binary(void **s) { return msg_setup(s, 0, CE_MODE_BINARY); }
static int setup_http_structured(void **s)
{
    return msg_setup(s, 0, CE_MODE_STRUCTURED);
}
static int setup_kafka_binary(void **s) { return msg_setup(s, 1, CE_MODE_BINARY); }
static int setup_nats_binary(void **s) { return msg_setup(s, 2, CE_MODE_BINARY); }

static void msg_teardown(void *state)
{
    bench_msg *m = state;
    ce_headers_free(&m->enc);
    ce_buf_free(&m->body);
    free(m);
}

static int run_http_decode(void *state)
{
    bench_msg *m = state;
    ce_event **evs;
    size_t n;
    if (ce_http_decode(m->hs, m->nh, m->body.data, m->body.len, 0, &evs, &n,
                       NULL) != CE_OK)
        return -1;
    ce_events_free(evs, n);
    return 0;
}

static int run_http_binary_encode(void *state)
{
    bench_msg *m = state;
    ce_headers_reset(&m->enc);
    ce_buf_reset(&m->body);
    return ce_http_encode(fx.event, CE_MODE_BINARY, &m->enc, &m->body, NULL);
}

static int run_kafka_decode(void *state)
{
    bench_msg *m = state;
    ce_kafka_record rec = {"customer-4242", 13, m->body.data, m->body.len,
                           m->hs, m->nh};
    ce_event *ev;
    if (ce_kafka_decode(&rec, 0, &ev, NULL) != CE_OK)
        return -1;
    ce_event_unref(ev);
    return 0;
}

static int run_kafka_encode(void *state)
{
    bench_msg *m = state;
    bool has_value;
    const char *key;
    size_t klen;
    ce_headers_reset(&m->enc);
    ce_buf_reset(&m->body);
    return ce_kafka_encode(fx.event, CE_MODE_BINARY, &m->enc, &m->body,
                           &has_value, &key, &klen, NULL);
}

static int run_nats_decode(void *state)
{
    bench_msg *m = state;
    ce_event *ev;
    if (ce_nats_decode(m->hs, m->nh, m->body.data, m->body.len, 0, &ev,
                       NULL) != CE_OK)
        return -1;
    ce_event_unref(ev);
    return 0;
}

static int run_nats_encode(void *state)
{
    bench_msg *m = state;
    ce_headers_reset(&m->enc);
    ce_buf_reset(&m->body);
    return ce_nats_encode(fx.event, CE_MODE_BINARY, &m->enc, &m->body, NULL);
}

/* ------------------------------------------------------------ the table */

/* Binding rows (HTTP binary/structured/batch, Kafka, NATS) go at the end
 * of this table; they share `fx`. */
static const bench_case bench_cases[] = {
    {"jansson json_loadb (reference)", NULL, run_jansson_loadb, NULL,
     NULL, 0},
    {"json structured decode+validate", NULL, run_json_decode, NULL,
     "jansson json_loadb (reference)", 1.5},
    {"jansson json_dumpb (reference)", setup_jansson_tree, run_jansson_dumpb,
     teardown_jansson_tree, NULL, 0},
    {"json structured encode", setup_buf, run_json_encode, teardown_buf,
     "jansson json_dumpb (reference)", 0},
    {"event build: new+6 setn+data+validate", NULL, run_build_event6, NULL,
     NULL, 0},
    {"event build: new+9 set+data+validate", NULL, run_build_event, NULL,
     NULL, 0},
    {"event clone", NULL, run_clone, NULL, NULL, 0},
    {"http binary decode+validate", setup_http_binary, run_http_decode,
     msg_teardown, "event build: new+9 set+data+validate", 0},
    {"http structured decode+validate", setup_http_structured,
     run_http_decode, msg_teardown, "jansson json_loadb (reference)", 1.5},
    {"http binary encode", setup_http_binary, run_http_binary_encode,
     msg_teardown, "event clone", 0},
    {"kafka binary decode+validate", setup_kafka_binary, run_kafka_decode,
     msg_teardown, "event build: new+9 set+data+validate", 0},
    {"kafka binary encode", setup_kafka_binary, run_kafka_encode,
     msg_teardown, "event clone", 0},
    {"nats binary decode+validate", setup_nats_binary, run_nats_decode,
     msg_teardown, "event build: new+9 set+data+validate", 0},
    {"nats binary encode", setup_nats_binary, run_nats_encode, msg_teardown,
     "event clone", 0},
};

/* ------------------------------------------------------------ harness */

static double now_s(void)
{
    struct timespec ts;
    /* CPU time of this thread: "per core" figures that other load on the
     * machine does not inflate (it still shares caches, though). */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Seconds per event: best of three runs of about `budget` seconds each. */
static double measure(const bench_case *c, void *state, double budget)
{
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        long n = 0;
        double t0 = now_s(), t;
        do {
            for (int k = 0; k < 256; k++)
                if (c->run(state) != 0) {
                    fprintf(stderr, "%s: run failed\n", c->name);
                    exit(1);
                }
            n += 256;
            t = now_s() - t0;
        } while (t < budget / 3);
        double per = t / (double)n;
        if (rep == 0 || per < best)
            best = per;
    }
    return best;
}

static int fixture_init(void)
{
    ce_err err;
    fx.json = sample_json;
    fx.json_len = strlen(sample_json);
    if (ce_json_decode(fx.json, fx.json_len, &fx.event, &err) != CE_OK) {
        fprintf(stderr, "sample event: %s: %s\n", err.attr, err.msg);
        return -1;
    }
    ce_event_freeze(fx.event);
    fx.data = ce_event_data(fx.event, &fx.data_len);
    return 0;
}

int main(int argc, char **argv)
{
    double budget = 0.3;
    const char *env = getenv("CE_BENCH_SECONDS");
    if (argc > 1)
        budget = atof(argv[1]);
    else if (env)
        budget = atof(env);
    if (budget <= 0)
        budget = 0.3;
    if (fixture_init() != 0)
        return 1;
    size_t nc = sizeof bench_cases / sizeof *bench_cases;
    double *per = calloc(nc, sizeof *per);
    int rc = 0;
    printf("ce_codec: sample event %zu bytes (JSON format), data %zu bytes, "
           "%.2f s per case, 1 thread\n", fx.json_len, fx.data_len, budget);
    printf("%-42s %12s %10s  %s\n", "case", "events/s", "ns/event",
           "ratio vs reference");
    for (size_t i = 0; i < nc; i++) {
        const bench_case *c = &bench_cases[i];
        void *state = NULL;
        if (argc > 2 && !strstr(c->name, argv[2]))
            continue;
        if (c->setup && c->setup(&state) != 0) {
            fprintf(stderr, "%s: setup failed\n", c->name);
            return 1;
        }
        per[i] = measure(c, state, budget);
        if (c->teardown)
            c->teardown(state);
        printf("%-42s %12.0f %10.1f", c->name, 1 / per[i], per[i] * 1e9);
        for (size_t r = 0; c->ref && r < i; r++) {
            if (per[r] == 0 || strcmp(bench_cases[r].name, c->ref) != 0)
                continue;
            double ratio = per[i] / per[r];
            printf("  %.2fx the time of '%s'", ratio, c->ref);
            if (c->target > 0) {
                printf(" (target <= %.2f: %s)", c->target,
                       ratio <= c->target ? "met" : "MISSED");
                rc |= ratio > c->target;
            }
        }
        printf("\n");
    }
    printf("targets: %s\n", rc ? "some MISSED (see above)" : "all met");
    free(per);
    ce_event_unref(fx.event);
    return 0; /* a benchmark reports; it does not fail on speed */
}
