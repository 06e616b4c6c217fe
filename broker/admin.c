/*
 * Admin API (see ADMIN-API.md in the project notes and docs/
 * configuration.md): version, apply, delete, get/list resources with
 * status, live tail of a broker's events, /metrics and /healthz.
 *
 * Threads: libmicrohttpd with one thread per connection, so a long
 * request (an apply that opens channels, a tail that streams for hours)
 * never blocks another. A tail reads its own cursor on the broker's
 * channel and waits on the cursor's notify fd together with the client
 * socket (to notice a disconnect) in poll(), waking every 250 ms to
 * notice shutdown or the channel being closed by the reconciler.
 */
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/dispatch/dispatch.h"

#define ADMIN_MAX_BODY (16u * 1024u * 1024u)
#define TAIL_BATCH 64

struct kn_admin {
    kn_server *srv;
    struct MHD_Daemon *d;
    atomic_bool stopping;
};

typedef struct admin_req {
    ce_buf body;
    bool too_big;
} admin_req;

/* ------------------------------------------------------ responses */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code,
                             const char *ctype, char *text, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned code,
                                  json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return MHD_NO;
    return reply(c, code, "application/json", text, strlen(text));
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code,
                                   const char *msg)
{
    return reply_json(c, code, json_pack("{s:s}", "error", msg));
}

static unsigned err_code(int status)
{
    switch (status) {
    case KN_INVAL:
    case KN_PARSE:
    case KN_UNSUPPORTED:
    case KN_EXISTS:
        return MHD_HTTP_BAD_REQUEST;
    case KN_NOTFOUND: return MHD_HTTP_NOT_FOUND;
    case KN_AGAIN:
    case KN_UNAVAILABLE:
    case KN_NOSPACE:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

static enum MHD_Result reply_kn_err(struct MHD_Connection *c,
                                    const kn_err *err)
{
    char line[1024];
    kn_err_str(err, line, sizeof line);
    json_t *b = json_pack("{s:s}", "error", line);
    if (b && err->where[0])
        json_object_set_new(b, "where", json_string(err->where));
    if (b && err->field[0])
        json_object_set_new(b, "field", json_string(err->field));
    return reply_json(c, err_code(err->status), b);
}

/* ------------------------------------------------------ apply/delete */

/* The request body as files: raw YAML named by ?file=, or (Content-Type
 * application/json) {"files":[{"name","content"}...]} for an atomic
 * apply of several files. */
static int body_files(struct MHD_Connection *c, admin_req *r,
                      json_t **holder, kn_yaml_file **files, size_t *n,
                      kn_err *err)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "Content-Type");
    const char *body = r->body.data ? r->body.data : "";
    if (ct && strncmp(ct, "application/json", 16) == 0) {
        json_error_t jerr;
        json_t *root = json_loadb(body, r->body.len, 0, &jerr);
        json_t *list = json_object_get(root, "files");
        if (!json_is_array(list)) {
            json_decref(root);
            return kn_err_set(err, KN_PARSE, "expected {\"files\": "
                              "[{\"name\", \"content\"}]}");
        }
        *files = calloc(json_array_size(list) + 1, sizeof **files);
        size_t i;
        json_t *f;
        json_array_foreach(list, i, f) {
            const char *name = json_string_value(json_object_get(f, "name"));
            json_t *content = json_object_get(f, "content");
            if (!*files || !json_is_string(content)) {
                json_decref(root);
                free(*files);
                *files = NULL;
                return kn_err_set(err, KN_PARSE, "files[%zu]: expected "
                                  "{\"name\", \"content\"}", i);
            }
            (*files)[i] = (kn_yaml_file){name ? name : "-",
                                         json_string_value(content),
                                         json_string_length(content)};
        }
        *n = json_array_size(list);
        *holder = root;
        return KN_OK;
    }
    const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                   "file");
    *files = calloc(1, sizeof **files);
    if (!*files)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    (*files)[0] = (kn_yaml_file){name && *name ? name : "-", body,
                                 r->body.len};
    *n = 1;
    *holder = NULL;
    return KN_OK;
}

static enum MHD_Result do_change(kn_admin *ad, struct MHD_Connection *c,
                                 admin_req *r, bool del)
{
    kn_err err = {0};
    json_t *holder = NULL, *results = NULL;
    kn_yaml_file *files = NULL;
    size_t n = 0;
    int rc = body_files(c, r, &holder, &files, &n, &err);
    if (rc == KN_OK)
        rc = del ? kn_server_delete(ad->srv, files, n, &results, &err)
                 : kn_server_apply(ad->srv, files, n, &results, &err);
    free(files);
    json_decref(holder);
    if (rc != KN_OK)
        return reply_kn_err(c, &err);
    return reply_json(c, MHD_HTTP_OK,
                      json_pack("{s:o}", "results",
                                results ? results : json_array()));
}

/* ------------------------------------------------------ resources */

static enum MHD_Result do_resources(kn_admin *ad, struct MHD_Connection *c,
                                    const char *path)
{
    char plural[64] = "", ns[64] = "", name[64] = "";
    const char *slash = strchr(path, '/');
    size_t pl = slash ? (size_t)(slash - path) : strlen(path);
    if (pl == 0 || pl >= sizeof plural)
        return reply_error(c, MHD_HTTP_NOT_FOUND, "unknown resource type");
    memcpy(plural, path, pl);
    const kn_kind *k = kn_kind_find(plural);
    if (!k) {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown resource type \"%s\"", plural);
        return reply_error(c, MHD_HTTP_NOT_FOUND, msg);
    }
    if (!slash || !slash[1]) {
        const char *qns = MHD_lookup_connection_value(
            c, MHD_GET_ARGUMENT_KIND, "namespace");
        json_t *items = kn_server_list(ad->srv, k, qns && *qns ? qns : NULL);
        return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "items",
                                                    items));
    }
    if (!kn_split_ns_name(slash + 1, ns, sizeof ns, name, sizeof name))
        return reply_error(c, MHD_HTTP_NOT_FOUND,
                           "expected /v1/resources/<type>/<ns>/<name>");
    json_t *o = kn_server_get(ad->srv, k, ns, name);
    if (!o) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s %s/%s not found", k->kind, ns, name);
        return reply_error(c, MHD_HTTP_NOT_FOUND, msg);
    }
    return reply_json(c, MHD_HTTP_OK, o);
}

/* ------------------------------------------------------ tail */

typedef struct tail {
    kn_admin *ad;
    kn_chanref *chan;
    kn_cursor *cur;
    char group[64];
    int client_fd;
    ce_buf buf;
    size_t off;
} tail;

static void tail_free(void *cls)
{
    tail *t = cls;
    const kn_channel_ops *ops = t->chan->ch->ops;
    ops->cursor_close(t->cur);
    ops->cursor_delete(t->chan->ch, t->group);
    kn_chanref_unref(t->chan);
    ce_buf_free(&t->buf);
    free(t);
}

/* Reads what is available into t->buf as JSON lines. Returns the count
 * of records or a negative status. */
static int tail_fill(tail *t)
{
    kn_record recs[TAIL_BATCH];
    const kn_channel_ops *ops = t->chan->ch->ops;
    ops->cursor_drain_notify(t->cur);
    int got = ops->cursor_next(t->cur, recs, TAIL_BATCH);
    /* A tail is not a delivery: what it read is done at once. Without
     * the commit, backends that bound unacknowledged records per group
     * (NATS max-ack-pending, Kafka) would stall a long tail. */
    for (int i = 0; i < got; i++) {
        int j = i + 1;
        while (j < got && recs[j].partition != recs[i].partition)
            j++;
        if (j == got) /* the partition's last record of the batch */
            ops->cursor_commit(t->cur, recs[i].partition,
                               recs[i].offset + 1);
    }
    for (int i = 0; i < got; i++) {
        ce_err cerr = {0};
        if (ce_json_encode(recs[i].event, &t->buf, &cerr) == CE_OK)
            ce_buf_puts(&t->buf, "\n");
        else
            KN_WARN("admin", "tail: cannot encode offset %llu: %s",
                    (unsigned long long)recs[i].offset, cerr.msg);
        ce_event_unref(recs[i].event);
    }
    return got;
}

static ssize_t tail_read(void *cls, uint64_t pos, char *out, size_t max)
{
    tail *t = cls;
    (void)pos;
    for (;;) {
        if (t->off < t->buf.len) {
            size_t n = t->buf.len - t->off;
            n = n < max ? n : max;
            memcpy(out, t->buf.data + t->off, n);
            t->off += n;
            return (ssize_t)n;
        }
        ce_buf_reset(&t->buf);
        t->off = 0;
        if (atomic_load(&t->ad->stopping) || atomic_load(&t->chan->closing))
            return MHD_CONTENT_READER_END_OF_STREAM;
        int got = tail_fill(t);
        if (got < 0) {
            KN_WARN("admin", "tail of %s: %s", t->chan->path,
                    kn_status_str(got));
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (got > 0)
            continue;
        struct pollfd p[2] = {
            {.fd = t->chan->ch->ops->cursor_fd(t->cur), .events = POLLIN},
            {.fd = t->client_fd, .events = POLLRDHUP},
        };
        int n = poll(p, t->client_fd >= 0 ? 2 : 1, 250);
        if (n > 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)))
            return MHD_CONTENT_READER_END_WITH_ERROR; /* client left */
    }
}

static enum MHD_Result do_tail(kn_admin *ad, struct MHD_Connection *c,
                               const char *path)
{
    char ns[64], name[64];
    if (!kn_split_ns_name(path, ns, sizeof ns, name, sizeof name))
        return reply_error(c, MHD_HTTP_NOT_FOUND,
                           "expected /v1/tail/<ns>/<broker>");
    const char *from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                   "from");
    kn_seek seek = {.kind = KN_SEEK_END};
    if (from && strcmp(from, "start") == 0)
        seek.kind = KN_SEEK_START;
    else if (from && *from >= '0' && *from <= '9') {
        seek.kind = KN_SEEK_OFFSET;
        seek.offset = strtoull(from, NULL, 10);
    } else if (from && strcmp(from, "end") != 0)
        return reply_error(c, MHD_HTTP_BAD_REQUEST,
                           "from: expected start, end or an offset");
    kn_broker_rt *rt = kn_server_broker(ad->srv, ns, name);
    if (!rt) {
        char msg[200];
        snprintf(msg, sizeof msg, "broker %s/%s not found", ns, name);
        return reply_error(c, MHD_HTTP_NOT_FOUND, msg);
    }
    if (!rt->chan) {
        kn_broker_rt_unref(rt);
        return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "broker is not ready");
    }
    tail *t = calloc(1, sizeof *t);
    kn_err err = {0};
    if (!t) {
        kn_broker_rt_unref(rt);
        return MHD_NO;
    }
    t->ad = ad;
    t->chan = kn_chanref_ref(rt->chan);
    kn_broker_rt_unref(rt);
    char uuid[37];
    kn_uuid(uuid);
    snprintf(t->group, sizeof t->group, "knit-tail-%s", uuid);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    t->client_fd = ci ? ci->connect_fd : -1;
    int rc = t->chan->ch->ops->cursor_open(t->chan->ch, t->group, &seek, NULL,
                                           &t->cur, &err);
    if (rc != KN_OK) {
        kn_chanref_unref(t->chan);
        free(t);
        return reply_kn_err(c, &err);
    }
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 64 * 1024, tail_read, t, tail_free);
    if (!r) {
        tail_free(t);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/x-ndjson");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

/* ------------------------------------------------------ dispatcher */

static const char *query_arg(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

/* /v1/dlq/... and /v1/replay/... (broker/dispatch/admin.c). */
static enum MHD_Result do_dispatch(kn_admin *ad, struct MHD_Connection *c,
                                   const char *url, const char *method)
{
    json_t *body = NULL;
    unsigned code = kn_dispatcher_admin(ad->srv, method, url, query_arg, c,
                                        &body);
    return reply_json(c, code, body ? body : json_object());
}

/* ------------------------------------------------------ routing */

static bool is_post_route(const char *url)
{
    return strcmp(url, "/v1/apply") == 0 || strcmp(url, "/v1/delete") == 0 ||
           kn_dispatcher_admin_path(url);
}

static enum MHD_Result route_get(kn_admin *ad, struct MHD_Connection *c,
                                 const char *url)
{
    if (strcmp(url, "/healthz") == 0) {
        char *t = strdup("ok\n");
        return t ? reply(c, MHD_HTTP_OK, "text/plain", t, 3) : MHD_NO;
    }
    if (strcmp(url, "/v1/version") == 0)
        return reply_json(c, MHD_HTTP_OK,
                          json_pack("{s:s}", "version", KNIT_VERSION));
    if (strcmp(url, "/metrics") == 0) {
        ce_buf out = CE_BUF_INIT;
        if (kn_server_metrics(ad->srv, &out) != KN_OK) {
            ce_buf_free(&out);
            return MHD_NO;
        }
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", out.data,
                     out.len);
    }
    if (strncmp(url, "/v1/resources/", 14) == 0)
        return do_resources(ad, c, url + 14);
    if (strncmp(url, "/v1/tail/", 9) == 0)
        return do_tail(ad, c, url + 9);
    if (kn_dispatcher_admin_path(url))
        return do_dispatch(ad, c, url, "GET");
    if (is_post_route(url))
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                           "method not allowed (use POST)");
    return reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    kn_admin *ad = cls;
    admin_req *r = *con_cls;
    (void)version;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!r && get)
        return route_get(ad, c, url);
    if (!r && !(is_post_route(url) && strcmp(method, "POST") == 0)) {
        if (is_post_route(url))
            return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                               "method not allowed (use POST)");
        return reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
    }
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->body.len + *upload_size > ADMIN_MAX_BODY)
            r->too_big = true;
        else if (ce_buf_append(&r->body, upload_data, *upload_size) != CE_OK)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_big)
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                           "request body over 16 MiB");
    if (kn_dispatcher_admin_path(url))
        return do_dispatch(ad, c, url, "POST");
    return do_change(ad, c, r, strcmp(url, "/v1/delete") == 0);
}

static void on_completed(void *cls, struct MHD_Connection *c,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
    admin_req *r = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (!r)
        return;
    ce_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

int kn_admin_start(kn_server *srv, const char *addr, kn_admin **out,
                   uint16_t *port_out, kn_err *err)
{
    struct sockaddr_storage ss;
    size_t sslen = 0;
    int rc = kn_parse_listen(addr, &ss, &sslen, err);
    if (rc != KN_OK)
        return rc;
    kn_admin *ad = calloc(1, sizeof *ad);
    if (!ad)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    ad->srv = srv;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    ad->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, ad,
        MHD_OPTION_EXTERNAL_LOGGER, kn_mhd_log, "admin",
        MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, ad,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0,
        MHD_OPTION_END);
    if (!ad->d) {
        rc = kn_err_set(err, KN_IO, "cannot listen on %s: %s", addr,
                        strerror(errno));
        free(ad);
        return rc;
    }
    *port_out = kn_mhd_port(ad->d);
    *out = ad;
    return KN_OK;
}

void kn_admin_stop(kn_admin *ad)
{
    if (!ad)
        return;
    atomic_store(&ad->stopping, true);
    MHD_stop_daemon(ad->d);
    free(ad);
}
