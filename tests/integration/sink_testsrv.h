/*
 * sink_testsrv.h: a scripted HTTP subscriber for the delivery tests
 * (06xx), running libmicrohttpd in the test process on a free loopback
 * port. Each request is recorded (arrival time, lower-cased headers, body);
 * a per-test handler picks the response (status, headers, body, delay).
 * New TCP connections are counted, so tests can check keep-alive reuse.
 * Header-only: include it from one test file.
 */
#ifndef KNIT_SINK_TESTSRV_H
#define KNIT_SINK_TESTSRV_H

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"

#define TS_MAX_REQS 4096
#define TS_UNUSED __attribute__((unused))

typedef struct ts_req {
    int64_t t_ns;          /* monotonic arrival time */
    json_t *headers;       /* lower-cased name -> value */
    char *body;
    size_t len;
    char method[16];
    char path[256];
} ts_req;

typedef struct ts_resp {
    unsigned status;
    const char *body;      /* copied; NULL = empty */
    size_t body_len;       /* 0 = strlen(body) */
    const char *hdr[8][2]; /* name/value pairs, NULL-terminated */
    int delay_ms;          /* sleep before answering */
} ts_resp;

typedef struct ts_server ts_server;
/* Picks the response for request number idx (0-based). */
typedef void (*ts_handler)(ts_server *s, int idx, const ts_req *req,
                           ts_resp *resp);

struct ts_server {
    struct MHD_Daemon *mhd;
    int port;
    char url[64];
    ts_handler handler;
    void *user;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    ts_req reqs[TS_MAX_REQS];
    int nreqs;
    int connections;
};

typedef struct ts_ctx {
    char *body;
    size_t len, cap;
} ts_ctx;

static enum MHD_Result ts_hdr(void *cls, enum MHD_ValueKind kind,
                              const char *key, const char *value)
{
    char name[128];
    size_t i;
    (void)kind;
    for (i = 0; key[i] && i < sizeof name - 1; i++)
        name[i] = (char)tolower((unsigned char)key[i]);
    name[i] = '\0';
    json_object_set_new((json_t *)cls, name, json_string(value ? value : ""));
    return MHD_YES;
}

static enum MHD_Result ts_on_request(void *cls, struct MHD_Connection *conn,
                                     const char *url, const char *method,
                                     const char *version, const char *data,
                                     size_t *size, void **con_cls)
{
    ts_server *s = cls;
    ts_ctx *ctx = *con_cls;
    ts_req rq;
    ts_resp resp;
    struct MHD_Response *r;
    enum MHD_Result rc;
    int idx;
    (void)version;

    if (!ctx) {
        *con_cls = calloc(1, sizeof(ts_ctx));
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*size) {
        if (ctx->len + *size + 1 > ctx->cap) {
            ctx->cap = (ctx->len + *size + 1) * 2;
            ctx->body = realloc(ctx->body, ctx->cap);
        }
        memcpy(ctx->body + ctx->len, data, *size);
        ctx->len += *size;
        ctx->body[ctx->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    memset(&rq, 0, sizeof rq);
    rq.t_ns = kn_now_mono_ns();
    rq.headers = json_object();
    MHD_get_connection_values(conn, MHD_HEADER_KIND, ts_hdr, rq.headers);
    rq.body = ctx->body ? ctx->body : strdup("");
    rq.len = ctx->len;
    ctx->body = NULL;
    snprintf(rq.method, sizeof rq.method, "%s", method);
    snprintf(rq.path, sizeof rq.path, "%s", url);
    pthread_mutex_lock(&s->lock);
    idx = s->nreqs;
    if (idx < TS_MAX_REQS)
        s->reqs[s->nreqs++] = rq;
    pthread_mutex_unlock(&s->lock);
    memset(&resp, 0, sizeof resp);
    resp.status = 202;
    if (s->handler)
        s->handler(s, idx, &rq, &resp);
    if (idx >= TS_MAX_REQS) {
        json_decref(rq.headers);
        free(rq.body);
    }
    if (resp.delay_ms > 0) {
        struct timespec ts = {resp.delay_ms / 1000,
                              (resp.delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    r = MHD_create_response_from_buffer(
        resp.body ? (resp.body_len ? resp.body_len : strlen(resp.body)) : 0,
        (void *)(uintptr_t)(resp.body ? resp.body : ""),
        MHD_RESPMEM_MUST_COPY);
    for (int i = 0; i < 8 && resp.hdr[i][0]; i++)
        MHD_add_response_header(r, resp.hdr[i][0], resp.hdr[i][1]);
    rc = MHD_queue_response(conn, resp.status, r);
    MHD_destroy_response(r);
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void ts_on_done(void *cls, struct MHD_Connection *conn,
                       void **con_cls, enum MHD_RequestTerminationCode toe)
{
    ts_ctx *ctx = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (ctx) {
        free(ctx->body);
        free(ctx);
        *con_cls = NULL;
    }
}

static void ts_on_conn(void *cls, struct MHD_Connection *conn,
                       void **socket_ctx, enum MHD_ConnectionNotificationCode t)
{
    ts_server *s = cls;
    (void)conn;
    (void)socket_ctx;
    if (t == MHD_CONNECTION_NOTIFY_STARTED) {
        pthread_mutex_lock(&s->lock);
        s->connections++;
        pthread_mutex_unlock(&s->lock);
    }
}

/* Starts a server on 127.0.0.1, any free port. */
static TS_UNUSED ts_server *ts_start(ts_handler handler, void *user)
{
    ts_server *s = calloc(1, sizeof *s);
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sa;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->handler = handler;
    s->user = user;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->mhd = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, ts_on_request, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, ts_on_done, s,
        MHD_OPTION_NOTIFY_CONNECTION, ts_on_conn, s,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!s->mhd) {
        free(s);
        return NULL;
    }
    info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info->port;
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/sub", s->port);
    return s;
}

static TS_UNUSED void ts_stop(ts_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->mhd);
    for (int i = 0; i < s->nreqs; i++) {
        json_decref(s->reqs[i].headers);
        free(s->reqs[i].body);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

static TS_UNUSED int ts_count(ts_server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->nreqs;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static TS_UNUSED int ts_connections(ts_server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->connections;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* Value of header `name` (lower-case) of request i, or NULL. */
static TS_UNUSED const char *ts_header(ts_server *s, int i, const char *name)
{
    return json_string_value(json_object_get(s->reqs[i].headers, name));
}

/* A port with nothing listening (bound then closed). */
static TS_UNUSED int ts_dead_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

#endif /* KNIT_SINK_TESTSRV_H */
