/*
 * testutil.h: helpers shared by the C tests (unit, integration) and the
 * channel benchmarks: temporary directories, clocks and free loopback
 * ports, test events, synchronous appends to a channel, settings objects,
 * reading a cursor with a deadline, and an in-flight window for
 * benchmarks. Header-only, no cmocka inside (the benchmarks use it too);
 * each program includes it once. Channel-specific pieces build on it:
 * tests/unit/logtest.h, tests/integration/kafkatest.h and nats_test.h.
 */
#ifndef KNIT_TESTS_TESTUTIL_H
#define KNIT_TESTS_TESTUTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "channels/channel.h"

/* A new directory "/tmp/knit-<tag>-XXXXXX" in buf; aborts on failure. */
static inline void tu_mkdtemp(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/knit-%s-XXXXXX", tag);
    if (!mkdtemp(buf))
        abort();
}

/* rm -rf dir; 0, or -1 (with a message) when it could not. */
static inline int tu_rmrf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) == 0)
        return 0;
    fprintf(stderr, "cannot remove %s\n", dir);
    return -1;
}

static inline int64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void tu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A loopback TCP port nobody listens on (bound, then released); -1 on
 * failure. */
static inline int tu_free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t n = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A frozen event with id "<prefix>-<i>", extension seq = i and data
 * "payload-<i>" padded with 'x' to at least pad bytes. */
static inline ce_event *tu_event(const char *prefix, unsigned i, size_t pad)
{
    char id[96], data[4096];
    ce_event *ev = ce_event_new();
    snprintf(id, sizeof id, "%s-%u", prefix, i);
    int n = snprintf(data, sizeof data, "payload-%u", i);
    while ((size_t)n < pad && (size_t)n < sizeof data - 1)
        data[n++] = 'x';
    if (!ev || ce_event_set_str(ev, "specversion", "1.0", NULL) ||
        ce_event_set_str(ev, "id", id, NULL) ||
        ce_event_set_str(ev, "source", "/knit/test", NULL) ||
        ce_event_set_str(ev, "type", "dev.knit.test", NULL) ||
        ce_event_set_str(ev, "datacontenttype", "text/plain", NULL) ||
        ce_event_set_int(ev, "seq", (int32_t)i, NULL) ||
        ce_event_set_data(ev, data, (size_t)n))
        abort();
    ce_event_freeze(ev);
    return ev;
}

/* Counts append completions (a kn_append_cb with arg = the tu_wait). */
typedef struct tu_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;       /* last status */
    int failed;       /* completions with a status != KN_OK */
    uint64_t first;   /* last first_offset */
} tu_wait;

static inline void tu_wait_init(tu_wait *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->done = w->failed = 0;
    w->status = 1;
    w->first = 0;
}

static inline void tu_wait_cb(void *arg, int status, uint64_t first)
{
    tu_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done++;
    w->status = status;
    w->first = first;
    if (status != KN_OK)
        w->failed++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Waits until w->done >= count, at most timeout_ms (< 0: no limit).
 * Returns done. */
static inline int tu_wait_for(tu_wait *w, int count, int timeout_ms)
{
    struct timespec ts;
    kn_deadline_ms(&ts, CLOCK_REALTIME, timeout_ms);
    pthread_mutex_lock(&w->mu);
    while (w->done < count) {
        if (timeout_ms < 0)
            pthread_cond_wait(&w->cv, &w->mu);
        else if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT)
            break;
    }
    int d = w->done;
    pthread_mutex_unlock(&w->mu);
    return d;
}

/* Appends evs synchronously; returns the status (an error the call
 * returned, the completion's, or KN_TIMEOUT after 30 s) and the first
 * offset in *first. */
static inline int tu_append(kn_channel *ch, ce_event *const *evs, size_t n,
                            uint64_t *first)
{
    tu_wait w;
    tu_wait_init(&w);
    int rc = kn_channel_append(ch, evs, n, tu_wait_cb, &w);
    if (rc != KN_OK)
        return rc;
    if (tu_wait_for(&w, 1, 30000) < 1)
        return KN_TIMEOUT;
    if (first)
        *first = w.first;
    return w.status;
}

/* A settings object of string values {kv[i][0]: kv[i][1]}; the caller
 * json_decref's it. */
static inline json_t *tu_settings(const char *kv[][2], size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i][0], json_string(kv[i][1]));
    return o;
}

/* Reads up to `want` records from the cursor, waiting on its fd up to
 * timeout_ms in total. Returns how many were read into recs. */
static inline size_t tu_read(kn_cursor *c, kn_record *recs, size_t want,
                             int timeout_ms)
{
    const kn_channel_ops *ops = c->channel->ops;
    int64_t end = tu_now_ms() + timeout_ms;
    size_t n = 0;
    while (n < want) {
        int got = ops->cursor_next(c, recs + n, want - n);
        if (got < 0)
            break;
        n += (size_t)got;
        if (n >= want)
            break;
        int64_t left = end - tu_now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {ops->cursor_fd(c), POLLIN, 0};
        if (poll(&p, 1, (int)left) > 0)
            ops->cursor_drain_notify(c);
    }
    return n;
}

/* Drops the events of records read. */
static inline void tu_release(kn_record *recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ce_event_unref(recs[i].event);
}

/* An in-flight window for benchmarks: acquire before an asynchronous
 * call, release from its completion; drain waits for all of them. */
typedef struct tu_window {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight, max;
    long done, failed;
} tu_window;

static inline void tu_window_init(tu_window *w, int max)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->inflight = 0;
    w->max = max;
    w->done = w->failed = 0;
}

static inline void tu_window_acquire(tu_window *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->inflight >= w->max)
        pthread_cond_wait(&w->cv, &w->mu);
    w->inflight++;
    pthread_mutex_unlock(&w->mu);
}

static inline void tu_window_release(tu_window *w, bool ok)
{
    pthread_mutex_lock(&w->mu);
    w->inflight--;
    w->done++;
    if (!ok)
        w->failed++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static inline void tu_window_drain(tu_window *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->inflight > 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

#endif
