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
    const void *user;
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
static TS_UNUSED ts_server *ts_start(ts_handler handler, const void *user)
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

/* ------------------------------------------------ client-side helpers */

#include "sinks/sinks.h"

/* Copy of a delivery result, filled by tw_cb on the loop thread. */
typedef struct tw_result {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int done;
    kn_delivery_status status;
    int attempts, http_code, error_code, dls_attempts, dls_http_code;
    char error[256], dls_error[256], reply_error[256];
    char error_data[1100];
    size_t error_data_len;
    ce_event *reply;
    bool has_ttl;
    int32_t ttl;
    int64_t latency_ns;
    int64_t t_done_ns;
} tw_result;

static TS_UNUSED void tw_init(tw_result *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->m, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static TS_UNUSED void tw_fini(tw_result *w)
{
    ce_event_unref(w->reply);
    pthread_mutex_destroy(&w->m);
    pthread_cond_destroy(&w->cv);
}

static TS_UNUSED void tw_cb(const kn_delivery_result *r, void *arg)
{
    tw_result *w = arg;
    pthread_mutex_lock(&w->m);
    w->status = r->status;
    w->attempts = r->attempts;
    w->http_code = r->http_code;
    w->error_code = r->error_code;
    w->dls_attempts = r->dls_attempts;
    w->dls_http_code = r->dls_http_code;
    snprintf(w->error, sizeof w->error, "%s", r->error);
    snprintf(w->dls_error, sizeof w->dls_error, "%s", r->dls_error);
    snprintf(w->reply_error, sizeof w->reply_error, "%s", r->reply_error);
    w->error_data_len = r->error_data_len;
    if (r->error_data_len && r->error_data_len <= sizeof w->error_data)
        memcpy(w->error_data, r->error_data, r->error_data_len);
    w->reply = r->reply;
    w->has_ttl = r->has_ttl;
    w->ttl = r->ttl;
    w->latency_ns = r->latency_ns;
    w->t_done_ns = kn_now_mono_ns();
    w->done++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->m);
}

/* Waits until `count` callbacks ran (generous deadline: a hang guard, not
 * a speed check). Returns the count seen. */
static TS_UNUSED int tw_wait_n(tw_result *w, int count, int timeout_ms)
{
    struct timespec ts;
    kn_deadline_ms(&ts, CLOCK_REALTIME, timeout_ms);
    pthread_mutex_lock(&w->m);
    while (w->done < count &&
           pthread_cond_timedwait(&w->cv, &w->m, &ts) == 0)
        ;
    int n = w->done;
    pthread_mutex_unlock(&w->m);
    return n;
}

/* A frozen test event with JSON data, a TTL and a traceparent. */
static TS_UNUSED ce_event *tw_event(const char *id)
{
    ce_event *ev = ce_event_new();
    ce_event_set_str(ev, "specversion", "1.0", NULL);
    ce_event_set_str(ev, "id", id, NULL);
    ce_event_set_str(ev, "source", "/knit/tests", NULL);
    ce_event_set_str(ev, "type", "dev.knit.test", NULL);
    ce_event_set_str(ev, "datacontenttype", "application/json", NULL);
    ce_event_set_int(ev, "knativebrokerttl", 255, NULL);
    ce_event_set_str(ev, "traceparent",
                     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                     NULL);
    ce_event_set_str(ev, "myext", "hello world", NULL);
    ce_event_set_data(ev, "{\"n\":1}", 7);
    ce_event_freeze(ev);
    return ev;
}

/* A spec for tests: given retries, linear backoff of delay_ms. */
static TS_UNUSED kn_delivery_spec tw_spec(int retry, int64_t delay_ms)
{
    kn_delivery_spec s;
    kn_delivery_spec_default(&s);
    s.retry = retry;
    s.policy = KN_BACKOFF_LINEAR;
    s.backoff_delay_ms = delay_ms;
    s.timeout_ms = 10000;
    return s;
}

/* Submits one delivery and waits for its outcome (20 s hang guard). */
static TS_UNUSED int tw_deliver(kn_sink_client *c, const char *url,
                                const kn_delivery_spec *spec, ce_event *ev,
                                tw_result *w)
{
    kn_delivery_req req;
    kn_err err;
    memset(&req, 0, sizeof req);
    req.event = ev;
    req.url = url;
    req.spec = spec;
    req.ns = "ns1";
    int rc = kn_sink_submit(c, &req, tw_cb, w, &err);
    if (rc != KN_OK)
        return rc;
    return tw_wait_n(w, 1, 20000) == 1 ? KN_OK : KN_TIMEOUT;
}

#endif /* KNIT_SINK_TESTSRV_H */
