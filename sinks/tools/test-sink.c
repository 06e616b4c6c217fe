/*
 * knit-test-sink: a scriptable HTTP subscriber for tests and benchmarks.
 *
 *   knit-test-sink [--listen ADDR:PORT] [--port-file FILE] [--log FILE]
 *                  [--status 500,500,202] [--retry-after VALUE]
 *                  [--delay-ms N] [--reply FILE] [--threads N]
 *
 * Answers the Nth request with the Nth code of --status (the last one
 * repeats; default 202), after --delay-ms, with Retry-After on 429/503
 * when given, and with the structured CloudEvent in --reply as the body of
 * a 200. --log appends one JSON line per request: {"n", "t_ms" (monotonic),
 * "method", "path", "headers" (lower-case names), "body"}. The bound port
 * is printed on stdout and written to --port-file. Runs until SIGINT or
 * SIGTERM. With no delay it serves from a pool of --threads polling
 * threads (default 2) with keep-alive, fast enough for benchmarks.
 */
#include <ctype.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/common.h"

static struct {
    int codes[64];
    int ncodes;
    const char *retry_after;
    int delay_ms;
    char *reply;
    FILE *log;
    pthread_mutex_t lock;
    atomic_int n;
} cfg = {.codes = {202}, .ncodes = 1, .lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct body {
    char *p;
    size_t len, cap;
} body;

static enum MHD_Result add_hdr(void *cls, enum MHD_ValueKind kind,
                               const char *key, const char *value)
{
    char name[128];
    size_t i;
    (void)kind;
    for (i = 0; key[i] && i < sizeof name - 1; i++)
        name[i] = (char)tolower((unsigned char)key[i]);
    name[i] = '\0';
    json_object_set_new(cls, name, json_string(value ? value : ""));
    return MHD_YES;
}

static void log_request(struct MHD_Connection *conn, int n, const char *url,
                        const char *method, const body *b)
{
    json_t *h = json_object(), *j;
    char *line;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_hdr, h);
    j = json_pack("{s:i, s:I, s:s, s:s, s:o, s:s%}", "n", n, "t_ms",
                  (json_int_t)kn_now_mono_ms(), "method", method, "path",
                  url, "headers", h, "body", b->p ? b->p : "", b->len);
    if (!j) /* body not UTF-8: log its length only */
        j = json_pack("{s:i, s:s, s:s, s:i}", "n", n, "method", method,
                      "path", url, "body_len", (int)b->len);
    line = json_dumps(j, JSON_COMPACT);
    pthread_mutex_lock(&cfg.lock);
    fprintf(cfg.log, "%s\n", line ? line : "{}");
    fflush(cfg.log);
    pthread_mutex_unlock(&cfg.lock);
    free(line);
    json_decref(j);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *size, void **ctx)
{
    body *b = *ctx;
    struct MHD_Response *r;
    enum MHD_Result rc;
    int n, code;
    const char *payload = "";
    (void)cls;
    (void)version;

    if (!b) {
        *ctx = calloc(1, sizeof(body));
        return *ctx ? MHD_YES : MHD_NO;
    }
    if (*size) {
        if (cfg.log) {
            if (b->len + *size + 1 > b->cap) {
                b->cap = (b->len + *size + 1) * 2;
                if (!(b->p = realloc(b->p, b->cap)))
                    return MHD_NO;
            }
            memcpy(b->p + b->len, data, *size);
            b->len += *size;
            b->p[b->len] = '\0';
        }
        *size = 0;
        return MHD_YES;
    }
    n = atomic_fetch_add(&cfg.n, 1);
    code = cfg.codes[n < cfg.ncodes ? n : cfg.ncodes - 1];
    if (cfg.log)
        log_request(conn, n, url, method, b);
    if (cfg.delay_ms > 0) {
        struct timespec ts = {cfg.delay_ms / 1000,
                              (cfg.delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (code == 200 && cfg.reply)
        payload = cfg.reply;
    r = MHD_create_response_from_buffer(strlen(payload),
                                        (void *)(uintptr_t)payload,
                                        MHD_RESPMEM_PERSISTENT);
    if (code == 200 && cfg.reply)
        MHD_add_response_header(r, "Content-Type",
                                "application/cloudevents+json");
    if ((code == 429 || code == 503) && cfg.retry_after)
        MHD_add_response_header(r, "Retry-After", cfg.retry_after);
    rc = MHD_queue_response(conn, (unsigned)code, r);
    MHD_destroy_response(r);
    return rc;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **ctx,
                    enum MHD_RequestTerminationCode toe)
{
    body *b = *ctx;
    (void)cls;
    (void)conn;
    (void)toe;
    if (b) {
        free(b->p);
        free(b);
        *ctx = NULL;
    }
}

static int usage(void)
{
    fprintf(stderr,
            "usage: knit-test-sink [--listen ADDR:PORT] [--port-file FILE]\n"
            "  [--log FILE] [--status C1,C2,...] [--retry-after VALUE]\n"
            "  [--delay-ms N] [--reply FILE] [--threads N]\n");
    return 2;
}

static int parse_codes(const char *s)
{
    cfg.ncodes = 0;
    while (*s && cfg.ncodes < 64) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 100 || v > 999 || (*end && *end != ','))
            return -1;
        cfg.codes[cfg.ncodes++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return cfg.ncodes > 0 ? 0 : -1;
}

static int resolve(const char *listen, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    struct addrinfo hints, *res;
    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0)
        return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0", *port_file = NULL;
    unsigned threads = 2;
    struct sockaddr_storage ss;
    struct MHD_Daemon *d;
    sigset_t set;
    int sig;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--listen") == 0) {
            listen = v;
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = v;
        } else if (strcmp(a, "--log") == 0) {
            if (!(cfg.log = fopen(v, "a")))
                return perror(v), 1;
        } else if (strcmp(a, "--status") == 0) {
            if (parse_codes(v) != 0)
                return fprintf(stderr, "--status: bad list %s\n", v), 2;
        } else if (strcmp(a, "--retry-after") == 0) {
            cfg.retry_after = v;
        } else if (strcmp(a, "--delay-ms") == 0) {
            cfg.delay_ms = atoi(v);
        } else if (strcmp(a, "--threads") == 0) {
            threads = (unsigned)atoi(v);
        } else if (strcmp(a, "--reply") == 0) {
            ce_buf b = CE_BUF_INIT;
            kn_err err;
            if (kn_read_file(v, &b, &err) != KN_OK)
                return fprintf(stderr, "--reply: %s\n", err.msg), 1;
            cfg.reply = b.data;
        } else {
            return usage();
        }
    }
    if (resolve(listen, &ss) != 0)
        return fprintf(stderr, "bad --listen %s\n", listen), 2;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (cfg.delay_ms > 0)
        d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
                                 MHD_USE_INTERNAL_POLLING_THREAD |
                                 MHD_USE_ERROR_LOG,
                             0, NULL, NULL, on_request, NULL,
                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                             MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                             MHD_OPTION_END);
    else
        d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD |
                                 MHD_USE_ERROR_LOG,
                             0, NULL, NULL, on_request, NULL,
                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                             MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                             MHD_OPTION_THREAD_POOL_SIZE,
                             threads ? threads : 1u,
                             MHD_OPTION_CONNECTION_LIMIT, 10000u,
                             MHD_OPTION_END);
    if (!d)
        return fprintf(stderr, "cannot listen on %s\n", listen), 1;
    int port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    if (port_file) {
        /* written whole, then renamed: readers never see half a port */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0)
            return perror(port_file), 1;
    }
    printf("%d\n", port);            /* after the port file: ready */
    fflush(stdout);
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    if (cfg.log)
        fclose(cfg.log);
    free(cfg.reply);
    return 0;
}
