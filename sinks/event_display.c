/*
 * event_display.c: `knit event-display`, a sink that prints every
 * CloudEvent it receives (the JSON format, indented) and answers 202.
 * libmicrohttpd runs it on its own polling thread; printing is serialised
 * with a mutex so events never interleave in the output.
 */
#include "sinks/sinks.h"

#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BODY_MAX (4u << 20)
#define HDR_MAX 128

struct kn_event_display {
    struct MHD_Daemon *mhd;
    FILE *out;
    pthread_mutex_t lock;
    _Atomic uint64_t count;
    int port;
};

/* Per-request state: the body read so far. */
typedef struct req_ctx {
    ce_buf body;
    bool too_big;
} req_ctx;

typedef struct hdr_list {
    ce_header items[HDR_MAX];
    size_t count;
} hdr_list;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind,
                                      const char *key, const char *value)
{
    hdr_list *l = cls;
    (void)kind;
    if (l->count < HDR_MAX && key && value) {
        ce_header *h = &l->items[l->count++];
        h->name = key;
        h->name_len = strlen(key);
        h->value = value;
        h->value_len = strlen(value);
    }
    return MHD_YES;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *body, const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        body ? strlen(body) : 0, (void *)(uintptr_t)(body ? body : ""),
        MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;
    if (!r)
        return MHD_NO;
    if (body)
        MHD_add_response_header(r, "Content-Type", "application/json");
    if (allow)
        MHD_add_response_header(r, "Allow", allow);
    rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_error(struct MHD_Connection *conn,
                                   unsigned status, const char *msg,
                                   const char *field)
{
    json_t *j = json_pack("{s:s, s:s}", "error", msg, "field", field);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    enum MHD_Result rc = reply(conn, status, s ? s : "{}", NULL);
    free(s);
    json_decref(j);
    return rc;
}

/* Prints one event as indented JSON followed by a blank line. */
static void print_event(kn_event_display *d, const ce_event *ev)
{
    ce_buf b = CE_BUF_INIT;
    json_t *j = NULL;
    char *s = NULL;

    if (ce_json_encode(ev, &b, NULL) == CE_OK)
        j = json_loadb(b.data, b.len, 0, NULL);
    if (j)
        s = json_dumps(j, JSON_INDENT(2));
    pthread_mutex_lock(&d->lock);
    fprintf(d->out, "%s\n\n", s ? s : (b.data ? b.data : "{}"));
    fflush(d->out);
    pthread_mutex_unlock(&d->lock);
    atomic_fetch_add(&d->count, 1);
    free(s);
    json_decref(j);
    ce_buf_free(&b);
}

static enum MHD_Result handle_events(kn_event_display *d,
                                     struct MHD_Connection *conn,
                                     req_ctx *rc)
{
    hdr_list hl;
    ce_event **evs = NULL;
    size_t count = 0;
    ce_err err;

    hl.count = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &hl);
    memset(&err, 0, sizeof err);
    if (ce_http_decode(hl.items, hl.count, rc->body.data, rc->body.len, 0,
                       &evs, &count, &err) != CE_OK)
        return reply_error(conn, MHD_HTTP_BAD_REQUEST,
                           err.msg[0] ? err.msg : "invalid CloudEvent",
                           err.attr);
    for (size_t i = 0; i < count; i++)
        print_event(d, evs[i]);
    ce_events_free(evs, count);
    return reply(conn, MHD_HTTP_ACCEPTED, NULL, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    kn_event_display *d = cls;
    req_ctx *rc = *con_cls;
    (void)url;
    (void)version;

    if (!rc) {
        if (!(rc = calloc(1, sizeof *rc)))
            return MHD_NO;
        *con_cls = rc;
        return MHD_YES;
    }
    if (*data_size > 0) {
        if (rc->body.len + *data_size > BODY_MAX)
            rc->too_big = true;
        else if (ce_buf_append(&rc->body, data, *data_size) != CE_OK)
            return MHD_NO;
        *data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "POST") != 0) {
        if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
            return reply(conn, MHD_HTTP_OK, NULL, NULL);   /* health check */
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, "POST, GET");
    }
    if (rc->too_big)
        return reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                           "body larger than 4 MiB", "");
    return handle_events(d, conn, rc);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    req_ctx *rc = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (rc) {
        ce_buf_free(&rc->body);
        free(rc);
        *con_cls = NULL;
    }
}

/* "ADDR:PORT", ":PORT", "PORT" or "[V6]:PORT" → a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss,
                        socklen_t *len, kn_err *err)
{
    char host[256] = "", port[16];
    const char *colon = strrchr(listen, ':');
    struct addrinfo hints, *res = NULL;
    size_t hl;

    if (!colon) {
        colon = listen - 1;              /* just a port */
    } else if (listen[0] == '[') {
        if (colon < listen + 2 || colon[-1] != ']')
            goto bad;
        hl = (size_t)(colon - listen) - 2;
        if (hl >= sizeof host)
            goto bad;
        memcpy(host, listen + 1, hl);
        host[hl] = '\0';
    } else {
        hl = (size_t)(colon - listen);
        if (hl >= sizeof host)
            goto bad;
        memcpy(host, listen, hl);
        host[hl] = '\0';
    }
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof port ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        goto bad;
    snprintf(port, sizeof port, "%s", colon + 1);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = host[0] ? AF_UNSPEC : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || !res)
        goto bad;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return KN_OK;
bad:
    kn_err_set(err, KN_INVAL,
               "listen address \"%s\" is not ADDR:PORT, :PORT or [V6]:PORT",
               listen);
    return KN_INVAL;
}

kn_event_display *kn_event_display_start(const char *listen, FILE *out,
                                         kn_err *err)
{
    struct sockaddr_storage ss;
    socklen_t slen;
    kn_event_display *d;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

    if (parse_listen(listen ? listen : "", &ss, &slen, err) != KN_OK)
        return NULL;
    if (!(d = calloc(1, sizeof *d))) {
        kn_err_set(err, KN_NOMEM, "out of memory");
        return NULL;
    }
    d->out = out ? out : stdout;
    pthread_mutex_init(&d->lock, NULL);
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    d->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, d,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_NOTIFY_COMPLETED, on_done, d,
                              MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                              MHD_OPTION_END);
    if (!d->mhd) {
        kn_err_set(err, KN_IO, "cannot listen on %s", listen);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    info = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_BIND_PORT);
    d->port = info ? info->port : 0;
    return d;
}

int kn_event_display_port(const kn_event_display *d)
{
    return d->port;
}

uint64_t kn_event_display_count(const kn_event_display *d)
{
    return atomic_load(&((kn_event_display *)(uintptr_t)d)->count);
}

void kn_event_display_stop(kn_event_display *d)
{
    if (!d)
        return;
    MHD_stop_daemon(d->mhd);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

int kn_event_display_run(const char *listen, FILE *out, kn_err *err)
{
    sigset_t set, old;
    kn_event_display *d;
    int sig = 0;

    /* Block the signals before MHD's thread starts so it inherits the
     * mask and sigwait below is the only receiver. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    d = kn_event_display_start(listen, out, err);
    if (!d) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return err ? err->status : KN_IO;
    }
    fprintf(stderr, "event-display: listening on %s (port %d)\n", listen,
            d->port);
    sigwait(&set, &sig);
    kn_event_display_stop(d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return KN_OK;
}
