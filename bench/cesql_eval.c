/*
 * bench/cesql_eval: nanoseconds per CESQL evaluation (ce_sql_eval with a
 * warm per-thread context) for a few typical filter expressions, printed
 * next to a reference measured in the same run: the same filter written by
 * hand in C over ce_event_getn (two attribute lookups, a prefix compare
 * and an integer parse). Also the cost of compiling an expression.
 * Single-threaded; time is the thread's CPU time.
 *
 * Usage: cesql_eval [seconds-per-case]   (default 0.3, env CE_BENCH_SECONDS)
 * Issue 5 target: "type LIKE 'com.example.%' AND INT(priority) > 3" in
 * <= 100 ns per evaluation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudevents/cesql.h"
#include "cloudevents/cloudevents.h"

#define TARGET_NS 100.0
#define TARGET_EXPR "type LIKE 'com.example.%' AND INT(priority) > 3"

static ce_event *event;
static ce_sql_ctx *ctx;
static volatile int sink;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs fn in batches until `secs` of CPU time pass; returns ns per call. */
static double measure(int (*fn)(const void *), const void *arg, double secs)
{
    for (int i = 0; i < 1000; i++)     /* warm-up */
        sink += fn(arg);
    long long calls = 0;
    double start = cpu_now(), now;
    do {
        for (int i = 0; i < 1000; i++)
            sink += fn(arg);
        calls += 1000;
        now = cpu_now();
    } while (now - start < secs);
    return (now - start) * 1e9 / (double)calls;
}

/* The target filter written by hand: the reference. */
static int native_filter(const void *arg)
{
    (void)arg;
    size_t tl, pl;
    const char *t = ce_event_getn(event, "type", 4, &tl, NULL);
    const char *p = ce_event_getn(event, "priority", 8, &pl, NULL);
    if (!t || !p || tl < 12 || memcmp(t, "com.example.", 12))
        return 0;
    int32_t v;
    return ce_parse_int(p, pl, &v) == CE_OK && v > 3;
}

static int eval_expr(const void *arg)
{
    ce_sql_value v;
    return ce_sql_eval(arg, event, ctx, &v) == CE_SQL_OK && v.b;
}

static int compile_expr(const void *arg)
{
    ce_sql_expr *x = NULL;
    const char *src = arg;
    int rc = ce_sql_compile(src, strlen(src), 0, &x, NULL);
    ce_sql_free(x);
    return rc;
}

static int setup(void)
{
    event = ce_event_new();
    ctx = ce_sql_ctx_new();
    if (!event || !ctx)
        return -1;
    static const char *const attrs[][2] = {
        {"specversion", "1.0"},
        {"id", "6f0e1d2c-9b8a-4c7d-8e6f-5a4b3c2d1e0f"},
        {"source", "https://orders.example.com/eu-west/checkout"},
        {"type", "com.example.orders.order.created.v1"},
        {"subject", "orders/2024/05/order-1234567"},
        {"time", "2024-05-01T12:34:56.789012Z"},
        {"datacontenttype", "application/json"},
        {"partitionkey", "customer-4242"},
        {"traceparent",
         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        {"priority", "5"},
    };
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        if (ce_event_set_str(event, attrs[i][0], attrs[i][1], NULL) != CE_OK)
            return -1;
    ce_event_freeze(event);
    return 0;
}

int main(int argc, char **argv)
{
    double secs = 0.3;
    const char *env = getenv("CE_BENCH_SECONDS");
    if (argc > 1)
        secs = atof(argv[1]);
    else if (env)
        secs = atof(env);
    if (secs <= 0 || setup() != 0) {
        fprintf(stderr, "cesql_eval: setup failed\n");
        return 1;
    }
    static char chain[2048];
    size_t n = 0;
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(chain + n, sizeof chain - n,
                              "%stype = 'com.example.t%d'", i ? " OR " : "",
                              i);
    const char *exprs[] = {
        TARGET_EXPR,
        "type = 'com.example.orders.order.created.v1'",
        "source LIKE '%checkout'",
        "subject LIKE 'orders/%/order-_______'",
        "partitionkey IN ('customer-1', 'customer-4242', 'customer-7')",
        "EXISTS traceparent AND NOT EXISTS dataschema",
        "UPPER(SUBSTRING(type, 5, 7)) = 'EXAMPLE'",
        "CONCAT_WS('/', source, subject) LIKE '%order-1234567'",
        "myext = 'x' OR type LIKE 'com.%'",     /* error path, then match */
        chain,                                  /* 50 comparisons, no match */
    };
    double ref = measure(native_filter, NULL, secs);
    printf("cesql_eval: ns per evaluation, one thread (CPU time), "
           "ratio to the hand-written C filter\n");
    printf("  %-58s %8.1f ns   1.00x  (reference)\n",
           "hand-written C: type prefix + priority > 3", ref);
    int rc = 0;
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        ce_sql_expr *x = NULL;
        ce_err err;
        if (ce_sql_compile(exprs[i], strlen(exprs[i]), 0, &x, &err)) {
            fprintf(stderr, "compile %s: %s\n", exprs[i], err.msg);
            return 1;
        }
        double ns = measure(eval_expr, x, secs);
        char label[60];
        if (strlen(exprs[i]) > 57)
            snprintf(label, sizeof label, "%.50s ...", exprs[i]);
        else
            snprintf(label, sizeof label, "%s", exprs[i]);
        printf("  %-58s %8.1f ns  %5.2fx", label, ns, ns / ref);
        if (i == 0) {
            printf("  target <= %.0f ns: %s", TARGET_NS,
                   ns <= TARGET_NS ? "ok" : "MISSED");
            rc = ns <= TARGET_NS ? 0 : 2;
        }
        printf("\n");
        ce_sql_free(x);
    }
    double c = measure(compile_expr, TARGET_EXPR, secs);
    printf("  %-58s %8.1f ns  (compile once per trigger)\n",
           "compile: " TARGET_EXPR, c);
    ce_sql_ctx_free(ctx);
    ce_event_unref(event);
    return rc;
}
