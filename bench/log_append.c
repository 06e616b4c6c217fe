/*
 * bench/log_append: appends/s of the embedded log in durability "fsync"
 * with N concurrent appenders, each waiting for its acknowledgement
 * before the next append (like HTTP requests waiting for their 202).
 * Reference, measured in the same run on the same filesystem: one thread
 * doing write(500 bytes) + fdatasync per event, i.e. what the log would
 * reach without group commit. Also prints fsyncs, appends per fsync and
 * the append latency (p50/p99).
 *
 * Usage: log_append [seconds-per-case [threads,threads,... [dir]]]
 *   defaults: 1 second, threads 1,8,64, a fresh directory under /tmp.
 *   KNIT_BENCH_DURABILITY=write measures durability "write" instead (the
 *   CPU cost of the append path without the disk flush).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "channels/channel.h"

#define MAX_LAT 4000000

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, status;
} waiter;

typedef struct ctx {
    kn_channel *ch;
    ce_event *ev;
    int64_t until;
    atomic_long count;
    atomic_long lat_n;
    int64_t *lat;
} ctx;

static double now_s(void)
{
    return (double)kn_now_mono_ns() / 1e9;
}

static void on_ack(void *arg, int status, uint64_t first)
{
    waiter *w = arg;
    (void)first;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->status = status;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void *appender(void *arg)
{
    ctx *c = arg;
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    while (kn_now_mono_ns() < c->until) {
        int64_t t0 = kn_now_mono_ns();
        w.done = 0;
        if (kn_channel_append(c->ch, &c->ev, 1, on_ack, &w) != KN_OK)
            abort();
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        if (w.status != KN_OK)
            abort();
        long i = atomic_fetch_add(&c->lat_n, 1);
        if (i < MAX_LAT)
            c->lat[i] = kn_now_mono_ns() - t0;
        atomic_fetch_add(&c->count, 1);
    }
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static ce_event *sample_event(void)
{
    char data[400];
    memset(data, 'x', sizeof data);
    ce_event *ev = ce_event_new();
    ce_event_set_str(ev, "specversion", "1.0", NULL);
    ce_event_set_str(ev, "id", "6f0e1d2c-9b8a-4c7d-8e6f-5a4b3c2d1e0f", NULL);
    ce_event_set_str(ev, "source", "https://orders.example.com/checkout",
                     NULL);
    ce_event_set_str(ev, "type", "com.example.orders.order.created.v1",
                     NULL);
    ce_event_set_str(ev, "datacontenttype", "application/json", NULL);
    ce_event_set_data(ev, data, sizeof data);
    ce_event_freeze(ev);
    return ev;
}

/* Reference: write + fdatasync per event, one thread. */
static double reference(const char *dir, double secs)
{
    char path[512], buf[500];
    memset(buf, 'r', sizeof buf);
    snprintf(path, sizeof path, "%s/reference.dat", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0)
        abort();
    long n = 0;
    double t0 = now_s(), t;
    while ((t = now_s()) - t0 < secs) {
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf ||
            fdatasync(fd) != 0)
            abort();
        n++;
    }
    close(fd);
    unlink(path);
    return (double)n / (t - t0);
}

static void run_case(const char *dir, int threads, double secs, double ref)
{
    char sub[512];
    snprintf(sub, sizeof sub, "%s/log-%d", dir, threads);
    const char *dur = getenv("KNIT_BENCH_DURABILITY");
    json_t *set = json_pack("{s:s}", "durability", dur ? dur : "fsync");
    kn_channel_config cfg = {"bench", "log", sub, set};
    kn_err err;
    ctx c = {0};
    if (kn_channel_open("log", &cfg, &c.ch, &err) != KN_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    c.ev = sample_event();
    c.lat = malloc(MAX_LAT * sizeof *c.lat);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    double t0 = now_s();
    c.until = kn_now_mono_ns() + (int64_t)(secs * 1e9);
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, appender, &c);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double el = now_s() - t0;
    kn_channel_stats st;
    c.ch->ops->stats(c.ch, &st);
    long n = atomic_load(&c.count);
    long ln = atomic_load(&c.lat_n) < MAX_LAT ? atomic_load(&c.lat_n)
                                              : MAX_LAT;
    qsort(c.lat, (size_t)ln, sizeof *c.lat, cmp64);
    double rate = (double)n / el;
    printf("%-8d %12.0f %10.2f %10llu %10.1f %9.2f %9.2f\n", threads, rate,
           rate / ref, (unsigned long long)st.fsyncs,
           st.fsyncs ? (double)n / (double)st.fsyncs : 0.0,
           (double)c.lat[ln / 2] / 1e6, (double)c.lat[ln * 99 / 100] / 1e6);
    kn_channel_close(c.ch);
    json_decref(set);
    ce_event_unref(c.ev);
    free(c.lat);
    free(th);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    const char *list = argc > 2 ? argv[2] : "1,8,64";
    char dir[256];
    if (argc > 3) {
        snprintf(dir, sizeof dir, "%s", argv[3]);
    } else {
        snprintf(dir, sizeof dir, "/tmp/knit-bench-log-XXXXXX");
        if (!mkdtemp(dir))
            return 1;
    }
    kn_log_set_level(KN_LOG_WARN);
    double ref = reference(dir, secs);
    const char *dur = getenv("KNIT_BENCH_DURABILITY");
    printf("log_append: durability %s, ~530-byte events, %.1f s per "
           "case, dir %s\n", dur ? dur : "fsync", secs, dir);
    printf("reference (write+fdatasync per event, 1 thread): %.0f/s\n", ref);
    printf("%-8s %12s %10s %10s %10s %9s %9s\n", "threads", "appends/s",
           "x ref", "fsyncs", "per fsync", "p50 ms", "p99 ms");
    char *copy = strdup(list);
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
        run_case(dir, atoi(tok), secs, ref);
    free(copy);
    if (argc <= 3) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
