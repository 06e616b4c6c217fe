/*
 * nats_test.h: helpers for the NATS channel tests (08xx) and
 * bench/nats_channel.c. Starts a real `nats-server -js` on a free loopback
 * port with a temporary store directory (or uses KNIT_TEST_NATS_URL when
 * set), restarts it on the same port and store, stops it; opens the nats
 * channel on it; makes test events and waits for appends and records.
 * Header-only; no cmocka inside so the benchmark can use it too.
 */
#ifndef KNIT_NATS_TEST_H
#define KNIT_NATS_TEST_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "channels/channel.h"

#define NT_UNUSED __attribute__((unused))

typedef struct nt_server {
    pid_t pid;
    int port;
    char dir[64];          /* store directory (and server log) */
    char url[128];
    int external;          /* KNIT_TEST_NATS_URL: not ours to start/stop */
} nt_server;

/* Finds the nats-server binary; NULL if missing. */
static NT_UNUSED const char *nt_binary(void)
{
    static const char *const cands[] = {"/usr/sbin/nats-server",
                                        "/usr/bin/nats-server",
                                        "/usr/local/bin/nats-server"};
    const char *env = getenv("KNIT_NATS_SERVER");
    if (env && access(env, X_OK) == 0)
        return env;
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return NULL;
}

static NT_UNUSED int nt_free_port(void)
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

static NT_UNUSED void nt_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static NT_UNUSED int64_t nt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True once JetStream answers on url (within timeout_ms); false at once
 * if the child `pid` (when > 0) exited. */
static NT_UNUSED int nt_wait_ready_pid(const char *url, int timeout_ms,
                                       pid_t pid)
{
    int64_t end = nt_now_ms() + timeout_ms;
    while (nt_now_ms() < end) {
        if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        jsAccountInfo *ai = NULL;
        natsOptions *o = NULL;
        int ok = 0;
        natsOptions_Create(&o);
        natsOptions_SetURL(o, url);
        natsOptions_SetTimeout(o, 500);
        natsOptions_SetAllowReconnect(o, false);
        if (natsConnection_Connect(&nc, o) == NATS_OK &&
            natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
            js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK)
            ok = 1;
        jsAccountInfo_Destroy(ai);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        natsOptions_Destroy(o);
        if (ok)
            return 1;
        nt_sleep_ms(20);
    }
    return 0;
}

static NT_UNUSED int nt_wait_ready(const char *url, int timeout_ms)
{
    return nt_wait_ready_pid(url, timeout_ms, 0) > 0;
}

/* Spawns nats-server on s->port with store s->dir and waits until
 * JetStream answers. Returns 0 or -1. */
static NT_UNUSED int nt_spawn(nt_server *s)
{
    char port[16], log[96];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* a crashed test must not leave its server behind */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        dup2(2, 1);
        execl(nt_binary(), "nats-server", "-js", "-a", "127.0.0.1", "-p",
              port, "-sd", s->dir, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    int r = nt_wait_ready_pid(s->url, 10000, pid);
    if (r > 0)
        return 0;
    if (r == 0) { /* still running but not answering */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    s->pid = 0;
    return -1;
}

/* Starts a server on a free port with a new store directory. Returns 0
 * on success, 77 when nats-server is not installed, -1 on failure. */
static NT_UNUSED int nt_start(nt_server *s)
{
    const char *ext = getenv("KNIT_TEST_NATS_URL");

    memset(s, 0, sizeof *s);
    if (ext && *ext) {
        s->external = 1;
        snprintf(s->url, sizeof s->url, "%s", ext);
        return nt_wait_ready(s->url, 5000) ? 0 : -1;
    }
    if (!nt_binary())
        return 77;
    snprintf(s->dir, sizeof s->dir, "/tmp/knit-nats-XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = nt_free_port();
        if (nt_spawn(s) == 0)
            return 0;
    }
    return -1;
}

/* Stops the server (SIGKILL when hard, else SIGTERM) and waits. */
static NT_UNUSED void nt_stop(nt_server *s, int hard)
{
    if (s->external || s->pid <= 0)
        return;
    kill(s->pid, hard ? SIGKILL : SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

/* Restarts on the same port and store directory (the port may take a
 * moment to be free again). */
static NT_UNUSED int nt_restart(nt_server *s)
{
    if (s->external)
        return -1;
    for (int attempt = 0; attempt < 20; attempt++) {
        if (nt_spawn(s) == 0)
            return 0;
        nt_sleep_ms(100);
    }
    return -1;
}

static NT_UNUSED void nt_cleanup(nt_server *s)
{
    char cmd[128];
    nt_stop(s, 0);
    if (!s->external && s->dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", s->dir);
    }
}

/* A broker name unique to this process and tag (the server may be shared
 * through KNIT_TEST_NATS_URL). */
static NT_UNUSED void nt_broker(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "%s-%ld", tag, (long)getpid());
}

/* Settings object {"url": url, kv...}; caller json_decref's it. */
static NT_UNUSED json_t *nt_settings(const char *url, const char *(*kv)[2],
                                     size_t n)
{
    json_t *o = json_object();
    json_object_set_new(o, "url", json_string(url));
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i][0], json_string(kv[i][1]));
    return o;
}

static NT_UNUSED kn_channel *nt_open(const char *broker, json_t *settings,
                                     kn_err *err)
{
    kn_channel_config cfg = {"default", broker, "/nonexistent", settings};
    kn_channel *ch = NULL;
    kn_channels_register_builtin();
    if (kn_channel_open("nats", &cfg, &ch, err) != KN_OK)
        return NULL;
    return ch;
}

/* A frozen event with id "<prefix>-<i>" and data "payload-<i>". */
static NT_UNUSED ce_event *nt_event(const char *prefix, unsigned i)
{
    char id[96], data[64];
    ce_event *ev = ce_event_new();
    snprintf(id, sizeof id, "%s-%u", prefix, i);
    int n = snprintf(data, sizeof data, "payload-%u", i);
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

/* Same attributes (names and values; binary mode does not carry
 * extension types) and data. */
static NT_UNUSED int nt_same_event(const ce_event *a, const ce_event *b)
{
    size_t n = ce_event_attr_count(a), an = 0, bn = 0;
    const void *ad, *bd;
    if (n != ce_event_attr_count(b))
        return 0;
    for (size_t i = 0; i < n; i++) {
        ce_attr x;
        size_t len;
        ce_event_attr_at(a, i, &x);
        const char *v = ce_event_get(b, x.name, &len, NULL);
        if (!v || len != x.len || memcmp(v, x.value, len) != 0)
            return 0;
    }
    if (ce_event_has_data(a) != ce_event_has_data(b))
        return 0;
    ad = ce_event_data(a, &an);
    bd = ce_event_data(b, &bn);
    return an == bn && (an == 0 || memcmp(ad, bd, an) == 0);
}

/* Waits for append completions. */
typedef struct nt_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;       /* last status */
    int failed;       /* completions with a status != KN_OK */
    uint64_t first;   /* last first_offset */
} nt_wait;

static NT_UNUSED void nt_wait_init(nt_wait *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->done = w->failed = 0;
    w->status = 1;
    w->first = 0;
}

static NT_UNUSED void nt_wait_cb(void *arg, int status, uint64_t first)
{
    nt_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done++;
    w->status = status;
    w->first = first;
    if (status != KN_OK)
        w->failed++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Waits until w->done >= count (at most timeout_ms). Returns done. */
static NT_UNUSED int nt_wait_for(nt_wait *w, int count, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (w->done < count)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT)
            break;
    int d = w->done;
    pthread_mutex_unlock(&w->mu);
    return d;
}

/* Appends evs synchronously; returns the status (KN_OK, an error the call
 * returned, or the completion's) and the first offset. */
static NT_UNUSED int nt_append(kn_channel *ch, ce_event *const *evs,
                               size_t n, uint64_t *first)
{
    nt_wait w;
    nt_wait_init(&w);
    int rc = kn_channel_append(ch, evs, n, nt_wait_cb, &w);
    if (rc != KN_OK)
        return rc;
    if (nt_wait_for(&w, 1, 30000) < 1)
        return KN_TIMEOUT;
    if (first)
        *first = w.first;
    return w.status;
}

static NT_UNUSED int nt_append_one(kn_channel *ch, ce_event *ev,
                                   uint64_t *first)
{
    return nt_append(ch, &ev, 1, first);
}

/* Reads up to `want` records from the cursor, waiting on its fd up to
 * timeout_ms in total. Returns how many were read into recs. */
static NT_UNUSED size_t nt_read(kn_cursor *c, kn_record *recs, size_t want,
                                int timeout_ms)
{
    const kn_channel_ops *ops = c->channel->ops;
    int64_t end = nt_now_ms() + timeout_ms;
    size_t n = 0;
    while (n < want) {
        int got = ops->cursor_next(c, recs + n, want - n);
        if (got < 0)
            break;
        n += (size_t)got;
        if (n >= want)
            break;
        int64_t left = end - nt_now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {ops->cursor_fd(c), POLLIN, 0};
        if (poll(&p, 1, (int)left) > 0)
            ops->cursor_drain_notify(c);
    }
    return n;
}

static NT_UNUSED void nt_release(kn_record *recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ce_event_unref(recs[i].event);
}

/* A raw cnats connection + JetStream context for checks. */
static NT_UNUSED int nt_raw(const char *url, natsConnection **nc,
                            jsCtx **js)
{
    if (natsConnection_ConnectTo(nc, url) != NATS_OK)
        return -1;
    if (natsConnection_JetStream(js, *nc, NULL) != NATS_OK) {
        natsConnection_Destroy(*nc);
        return -1;
    }
    return 0;
}

#endif
