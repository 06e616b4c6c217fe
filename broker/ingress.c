/*
 * HTTP ingress: `POST /<ns>/<broker>` in binary, structured or batched
 * mode (libmicrohttpd, epoll, a thread pool sized to the cores), plus
 * GET /healthz and /readyz. Implements the ingress table of DESIGN.md §3:
 * 202 only once the append is durable, 400 with {"error","field"} for a
 * bad event (nothing of a batch stored), 404 unknown broker, 405 other
 * methods, 413 over the broker's size limit (from Content-Length before
 * reading the body), 503 + Retry-After when storage is unavailable.
 *
 * Threads: requests run on the HTTP loop threads (http_loop.c: one MHD
 * daemon per core). While an append waits for its group commit the
 * connection is SUSPENDED (no thread blocked); the channel's completion
 * callback, on the channel writer thread, records the outcome and hands
 * the connection back to its loop, which resumes it and answers.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/http_loop.h"

#define ALLOW_BROKER "POST, OPTIONS"

struct kn_ingress {
    kn_server *srv;
    kn_http_loops *loops;
    struct MHD_Response *resp_202;
    atomic_int inflight;   /* POST requests between begin and completed */
    atomic_bool stopping;  /* shutdown: new requests get 503 */
    kn_bstats *unknown; /* requests for unknown brokers */
};

static char empty_body[1];

enum req_state { REQ_READING = 0, REQ_WAITING, REQ_DONE };

typedef struct req {
    kn_ingress *in;
    struct MHD_Connection *conn;
    kn_http_waiter waiter;
    kn_broker_rt *rt;
    ce_buf body;
    enum req_state state;
    size_t nevents;
    int64_t t_append;
    atomic_bool appended;
    int append_status;
} req;

/* ------------------------------------------------------ responses */

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code,
                                 json_t *body, const char *hname,
                                 const char *hval)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct MHD_Response *r = MHD_create_response_from_buffer(
        text ? strlen(text) : 0, text ? text : empty_body,
        text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    if (hname)
        MHD_add_response_header(r, hname, hval);
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned code,
                                  const char *msg, const char *field,
                                  const char *hname, const char *hval)
{
    json_t *b = json_pack("{s:s, s:s}", "error", msg, "field",
                          field ? field : "");
    return send_json(c, code, b, hname, hval);
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned code,
                                 const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_options(struct MHD_Connection *c)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(0, empty_body,
                                        MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, ALLOW_BROKER);
    MHD_add_response_header(r, "WebHook-Allowed-Origin", "*");
    MHD_add_response_header(r, "WebHook-Allowed-Rate", "*");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

/* ------------------------------------------------------ routing */

/* "/ns/name" or "/ns/name/" → ns, name. */
static bool split_path(const char *url, char *ns, char *name)
{
    if (*url != '/')
        return false;
    const char *a = url + 1, *slash = strchr(a, '/');
    if (!slash || slash == a || (size_t)(slash - a) >= 64)
        return false;
    const char *b = slash + 1;
    size_t bl = strcspn(b, "/");
    if (bl == 0 || bl >= 64 || (b[bl] == '/' && b[bl + 1] != '\0'))
        return false;
    memcpy(ns, a, (size_t)(slash - a));
    ns[slash - a] = '\0';
    memcpy(name, b, bl);
    name[bl] = '\0';
    return kn_dns1123_label(ns) && kn_dns1123_label(name);
}

static enum MHD_Result probe(kn_ingress *in, struct MHD_Connection *c,
                             const char *url, const char *method)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!get)
        return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "method not allowed", "", MHD_HTTP_HEADER_ALLOW,
                          "GET, HEAD");
    if (strcmp(url, "/healthz") == 0)
        return send_text(c, MHD_HTTP_OK, "ok\n");
    if (kn_server_ready(in->srv))
        return send_text(c, MHD_HTTP_OK, "ready\n");
    return send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready\n");
}

/* A POST for broker ns/name: checks the broker and the announced size,
 * then installs a new req in *con_cls, or queues the answer. */
static enum MHD_Result request_admit(kn_ingress *in, struct MHD_Connection *c,
                                     const char *ns, const char *name,
                                     void **con_cls)
{
    kn_broker_rt *rt = kn_server_broker(in->srv, ns, name);
    if (!rt) {
        char msg[200];
        snprintf(msg, sizeof msg, "broker %s/%s not found", ns, name);
        kn_metrics_request(in->unknown, 404);
        return send_error(c, MHD_HTTP_NOT_FOUND, msg, "", NULL, NULL);
    }
    if (!rt->chan) {
        char msg[200];
        snprintf(msg, sizeof msg, "broker %s/%s is not ready", ns, name);
        kn_metrics_request(rt->stats, 503);
        kn_broker_rt_unref(rt);
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg, "",
                          MHD_HTTP_HEADER_RETRY_AFTER, "1");
    }
    const char *cl = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long len = cl ? strtoull(cl, NULL, 10) : 0;
    if (len > rt->max_event_size) {
        char msg[160];
        snprintf(msg, sizeof msg, "request body of %llu bytes exceeds the "
                 "broker's limit of %llu bytes", len,
                 (unsigned long long)rt->max_event_size);
        kn_metrics_request(rt->stats, 413);
        kn_broker_rt_unref(rt);
        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, msg, "", NULL,
                          NULL);
    }
    req *r = calloc(1, sizeof *r);
    if (!r || (len && ce_buf_reserve(&r->body, (size_t)len) != CE_OK)) {
        free(r);
        kn_broker_rt_unref(rt);
        return MHD_NO;
    }
    r->in = in;
    r->conn = c;
    r->rt = rt;
    *con_cls = r;
    return MHD_YES;
}

/* First call of a request: route and check the method. A POST counts as
 * in flight from here on (before the stopping check, so the shutdown
 * drain cannot miss it) until on_completed. */
static enum MHD_Result request_begin(kn_ingress *in, struct MHD_Connection *c,
                                     const char *url, const char *method,
                                     void **con_cls)
{
    char ns[64], name[64];
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0)
        return probe(in, c, url, method);
    if (!split_path(url, ns, name)) {
        kn_metrics_request(in->unknown, 404);
        return send_error(c, MHD_HTTP_NOT_FOUND,
                          "not found: expected POST /<namespace>/<broker>",
                          "", NULL, NULL);
    }
    if (strcmp(method, "OPTIONS") == 0)
        return send_options(c);
    if (strcmp(method, "POST") != 0)
        return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "method not allowed", "", MHD_HTTP_HEADER_ALLOW,
                          ALLOW_BROKER);
    atomic_fetch_add(&in->inflight, 1);
    enum MHD_Result res;
    if (atomic_load(&in->stopping))
        res = send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                         "knit is shutting down", "",
                         MHD_HTTP_HEADER_CONNECTION, "close");
    else
        res = request_admit(in, c, ns, name, con_cls);
    if (!*con_cls)
        atomic_fetch_sub(&in->inflight, 1);
    return res;
}

/* ------------------------------------------------------ events */

typedef struct hdr_list {
    ce_header h[128];
    size_t n;
    bool overflow;
} hdr_list;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind,
                                      const char *key, const char *value)
{
    hdr_list *l = cls;
    (void)kind;
    if (l->n == sizeof l->h / sizeof l->h[0]) {
        l->overflow = true;
        return MHD_NO;
    }
    l->h[l->n++] = (ce_header){key, strlen(key), value ? value : "",
                               value ? strlen(value) : 0};
    return MHD_YES;
}

/* knativebrokerttl: absent → default; present → decremented (floor 0;
 * non-integer → default); ≤ 0 → rejected. Arrival time added. Shared with
 * the dispatcher, which stamps replies the same way. */
int kn_event_stamp(ce_event *ev, const char *arrival, ce_err *err)
{
    size_t len = 0;
    int32_t ttl = KN_DEFAULT_BROKER_TTL, v;
    const char *s = ce_event_get(ev, "knativebrokerttl", &len, NULL);
    if (s && ce_parse_int(s, len, &v) == CE_OK)
        ttl = v > 0 ? v - 1 : 0;
    if (ttl <= 0)
        return ce_err_set(err, CE_EINVAL, "knativebrokerttl", -1,
                          "knativebrokerttl exhausted: the event looped "
                          "through brokers too many times");
    int rc = ce_event_set_int(ev, "knativebrokerttl", ttl, err);
    if (rc == CE_OK)
        rc = ce_event_set(ev, "knativearrivaltime", arrival,
                          strlen(arrival), CE_TYPE_TIMESTAMP, err);
    return rc;
}

static void on_appended(void *arg, int status, uint64_t first_offset)
{
    req *r = arg;
    (void)first_offset;
    r->append_status = status;
    kn_metrics_append_latency(r->rt->stats, kn_now_mono_ns() - r->t_append);
    atomic_store(&r->appended, true);
    kn_http_resume(&r->waiter);
}

static enum MHD_Result answer_append(req *r)
{
    int st = r->append_status;
    r->state = REQ_DONE;
    if (st == KN_OK) {
        atomic_fetch_add(&r->rt->stats->events_stored, r->nevents);
        kn_metrics_request(r->rt->stats, 202);
        return MHD_queue_response(r->conn, MHD_HTTP_ACCEPTED,
                                  r->in->resp_202);
    }
    if (st == KN_TOOBIG) {
        kn_metrics_request(r->rt->stats, 413);
        return send_error(r->conn, MHD_HTTP_CONTENT_TOO_LARGE,
                          "event too large for the channel", "", NULL, NULL);
    }
    char msg[160];
    snprintf(msg, sizeof msg, "storage unavailable: %s", kn_status_str(st));
    kn_metrics_request(r->rt->stats, 503);
    return send_error(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, msg, "",
                      MHD_HTTP_HEADER_RETRY_AFTER,
                      st == KN_NOSPACE ? "5" : "1");
}

static enum MHD_Result reject(req *r, unsigned code, const char *msg,
                              const char *field)
{
    r->state = REQ_DONE;
    kn_metrics_request(r->rt->stats, (int)code);
    return send_error(r->conn, code, msg, field, NULL, NULL);
}

/* Body complete: decode, stamp, freeze, append (suspending the
 * connection until the append completes). */
static enum MHD_Result request_events(req *r)
{
    hdr_list hl; /* not zeroed: only the first hl.n entries are used */
    ce_event **evs = NULL;
    size_t n = 0;
    ce_err cerr = {0};
    hl.n = 0;
    hl.overflow = false;
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_header, &hl);
    if (hl.overflow)
        return reject(r, MHD_HTTP_BAD_REQUEST, "too many headers", "");
    atomic_fetch_add(&r->rt->stats->bytes_received, r->body.len);
    if (ce_http_decode(hl.h, hl.n, r->body.data ? r->body.data : "",
                       r->body.len, r->rt->decode_flags, &evs, &n,
                       &cerr) != CE_OK)
        return reject(r, MHD_HTTP_BAD_REQUEST,
                      cerr.msg[0] ? cerr.msg : "invalid CloudEvent",
                      cerr.attr);
    const ce_header *ct = ce_headers_find(hl.h, hl.n, "content-type");
    bool batch = ct && ce_http_mode(ct->value, ct->value_len) ==
                           CE_MODE_BATCH;
    char arrival[CE_TIME_MAX];
    kn_time_format_ns(kn_now_wall_ns(), arrival);
    for (size_t i = 0; i < n; i++) {
        if (kn_event_stamp(evs[i], arrival, &cerr) != CE_OK) {
            char field[96];
            if (batch)
                snprintf(field, sizeof field, "[%zu].%s", i, cerr.attr);
            else
                snprintf(field, sizeof field, "%s", cerr.attr);
            ce_events_free(evs, n);
            return reject(r, MHD_HTTP_BAD_REQUEST, cerr.msg, field);
        }
        ce_event_freeze(evs[i]);
    }
    if (n == 0) { /* an empty batch: nothing to store */
        ce_events_free(evs, n);
        r->append_status = KN_OK;
        return answer_append(r);
    }
    r->nevents = n;
    r->state = REQ_WAITING;
    r->t_append = kn_now_mono_ns();
    kn_http_suspend(r->conn, &r->waiter);
    int rc = kn_channel_append(r->rt->chan->ch, evs, n, on_appended, r);
    ce_events_free(evs, n);
    if (rc != KN_OK) {
        r->append_status = rc;
        atomic_store(&r->appended, true);
        kn_http_resume(&r->waiter);
    }
    return MHD_YES;
}

/* A streamed (chunked) body passed the limit: MHD 0.9 cannot queue a
 * response while the upload is in progress, so the 413 is written on the
 * socket directly, the write side is shut down, and MHD_NO makes MHD
 * close the connection without reading the rest. */
static enum MHD_Result reject_streaming(req *r)
{
    char body[160], msg[512];
    snprintf(body, sizeof body,
             "{\"error\":\"request body exceeds the broker's limit of "
             "%llu bytes\",\"field\":\"\"}",
             (unsigned long long)r->rt->max_event_size);
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 413 Content Too Large\r\n"
                     "Connection: close\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    kn_metrics_request(r->rt->stats, 413);
    r->state = REQ_DONE;
    if (ci && n > 0 && send(ci->connect_fd, msg, (size_t)n,
                            MSG_NOSIGNAL) == n)
        shutdown(ci->connect_fd, SHUT_WR);
    return MHD_NO;
}

/* A chunk of body, kept up to the broker's limit. */
static enum MHD_Result request_body(req *r, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (r->body.len + n > r->rt->max_event_size)
        return reject_streaming(r);
    return ce_buf_append(&r->body, data, n) == CE_OK ? MHD_YES : MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    kn_ingress *in = cls;
    req *r = *con_cls;
    (void)version;
    if (!r)
        return request_begin(in, c, url, method, con_cls);
    switch (r->state) {
    case REQ_READING:
        if (*upload_size)
            return request_body(r, upload_data, upload_size);
        return request_events(r);
    case REQ_WAITING:
        if (!atomic_load(&r->appended))
            return MHD_YES;
        return answer_append(r);
    case REQ_DONE:
        break;
    }
    *upload_size = 0;
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
    kn_ingress *in = cls;
    req *r = *con_cls;
    (void)c;
    (void)toe;
    if (!r)
        return;
    *con_cls = NULL;
    ce_buf_free(&r->body);
    kn_broker_rt_unref(r->rt);
    free(r);
    atomic_fetch_sub(&in->inflight, 1);
}

/* ------------------------------------------------------ lifecycle */

/* See broker.h. */
void kn_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    KN_DEBUG(cls ? (const char *)cls : "http", "%s", buf);
}

uint16_t kn_mhd_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (!info || getsockname(info->listen_fd, (struct sockaddr *)&ss,
                             &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int kn_ingress_start(kn_server *srv, const char *addr, kn_ingress **out,
                     uint16_t *port_out, kn_err *err)
{
    struct sockaddr_storage ss;
    size_t sslen = 0;
    int rc = kn_parse_listen(addr, &ss, &sslen, err);
    if (rc != KN_OK)
        return rc;
    kn_ingress *in = calloc(1, sizeof *in);
    if (!in)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    in->srv = srv;
    in->unknown = kn_metrics_broker(NULL, NULL);
    in->resp_202 = MHD_create_response_from_buffer(0, empty_body,
                                                   MHD_RESPMEM_PERSISTENT);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    kn_http_loops_cfg cfg = {
        .addr = (const struct sockaddr *)&ss,
        .addr_len = (socklen_t)sslen,
        .threads = (unsigned)(cores > 0 ? cores : 1),
        .conn_limit = 8192,
        .conn_timeout_s = 60,
        .backlog = 1024,
        .handler = on_request,
        .handler_cls = in,
        .completed = on_completed,
        .completed_cls = in,
        .logger = kn_mhd_log,
        .thread_name = "knit-http",
    };
    kn_err lerr = {0};
    if (!in->resp_202)
        rc = kn_err_set(&lerr, KN_NOMEM, "out of memory");
    else
        rc = kn_http_loops_start(&cfg, &in->loops, port_out, &lerr);
    if (rc != KN_OK) {
        rc = kn_err_set(err, rc, "cannot listen on %s: %s", addr, lerr.msg);
        if (in->resp_202)
            MHD_destroy_response(in->resp_202);
        free(in);
        return rc;
    }
    *out = in;
    return KN_OK;
}

void kn_ingress_quiesce(kn_ingress *in)
{
    if (!in || !in->loops)
        return;
    atomic_store(&in->stopping, true);
    kn_http_loops_quiesce(in->loops);
}

void kn_ingress_drain(kn_ingress *in, int timeout_ms)
{
    int64_t end = kn_now_mono_ms() + timeout_ms;
    while (in && atomic_load(&in->inflight) > 0 && kn_now_mono_ms() < end)
        usleep(5000);
    if (in && atomic_load(&in->inflight) > 0)
        KN_WARN("http", "%d requests still in flight after %d ms",
                atomic_load(&in->inflight), timeout_ms);
}

void kn_ingress_stop(kn_ingress *in)
{
    if (!in)
        return;
    kn_http_loops_stop(in->loops);
    MHD_destroy_response(in->resp_202);
    free(in);
}
