/*
 * e2e_load: end-to-end load generator for bench/e2e.sh — producer → knit
 * ingress → trigger(s) → subscriber, in one process on loopback.
 *
 *   e2e_load --url http://127.0.0.1:PORT/NS/BROKER --sinks PORT[,PORT...]
 *            [--rate EVENTS_PER_S | 0 = saturation] [--duration S]
 *            [--conns N] [--size BYTES] [--fanout N] [--warmup S]
 *            [--drain S]
 *   e2e_load --sinks PORT[,PORT...] --expect N [--drain S]
 *            (subscribers only: wait for N deliveries, report their rate)
 *
 * The producer is an epoll loop over N keep-alive HTTP/1.1 connections
 * sending binary-mode CloudEvents (open loop at --rate: each event is
 * sent at its scheduled time, or as soon as a connection frees up; at 0,
 * every idle connection sends at once). Each event carries its send time
 * (CLOCK_MONOTONIC ns) in the extension `benchts`. The subscribers are
 * libmicrohttpd servers (one per port, answering 202 with keep-alive, like
 * knit-test-sink) that record, per delivery, now − benchts: the latency
 * from the producer's send to the subscriber's receipt (it includes the
 * ingress, the fsync and the dispatch). --fanout N: each event is expected
 * N times (N matching triggers); the run then waits for all deliveries.
 *
 * Prints one line: sent=, acked=, errors=, delivered=, send_rate=,
 * deliver_rate= (deliveries/s over the run), p50_us=, p99_us=, p999_us=,
 * max_us=, lost= (deliveries still missing after waiting --drain
 * seconds, default 30, once the producer stopped), stalled= (requests
 * the ingress left unanswered for 5 s; their connection is replaced),
 * closed= (connections the ingress closed; replaced).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SINKS 64
#define MAX_CONNS 1024
#define LAT_CAP (8u << 20)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------- subscribers */

static atomic_uint_fast64_t delivered;
static atomic_uint_fast64_t lat_n;
static int64_t *lat;            /* microseconds, LAT_CAP entries */
static atomic_bool recording;
static struct MHD_Response *resp_202;
static char empty_body[1];

static enum MHD_Result on_sink(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)data;
    if (*con_cls == NULL) { /* headers: remember the send time */
        const char *ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     "ce-benchts");
        *con_cls = (void *)(uintptr_t)(ts ? strtoll(ts, NULL, 10) : 1);
        return MHD_YES;
    }
    if (*size) {
        *size = 0;
        return MHD_YES;
    }
    int64_t sent = (int64_t)(uintptr_t)*con_cls;
    atomic_fetch_add(&delivered, 1);
    if (sent > 1 && atomic_load(&recording)) {
        uint64_t i = atomic_fetch_add(&lat_n, 1);
        if (i < LAT_CAP)
            lat[i] = (now_ns() - sent) / 1000;
    }
    return MHD_queue_response(c, MHD_HTTP_ACCEPTED, resp_202);
}

static struct MHD_Daemon *start_sink(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD |
                                MHD_USE_ERROR_LOG,
                            0, NULL, NULL, on_sink, NULL,
                            MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                            MHD_OPTION_END);
}

/* ------------------------------------------------------- producer */

typedef struct conn {
    int fd;
    bool busy;
    int64_t sent_ns;
    char out[4096];
    size_t olen, ooff;
    char in[4096];
    size_t ilen;
} conn;

static struct {
    char host[64];
    int port;
    char path[256];
    int size;
    uint64_t sent, acked, errors, stalled, closed, seq;
} P;

static int conn_open(conn *c, int ep)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)P.port)};
    inet_pton(AF_INET, P.host, &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect to knit");
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_send(conn *c, const char *body)
{
    int64_t t = now_ns();
    c->olen = (size_t)snprintf(
        c->out, sizeof c->out,
        "POST %s HTTP/1.1\r\nHost: %s\r\nce-specversion: 1.0\r\n"
        "ce-id: b-%" PRIu64 "\r\nce-type: bench.event\r\n"
        "ce-source: /bench\r\nce-benchts: %" PRId64 "\r\n"
        "content-type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
        P.path, P.host, P.seq++, t, P.size, body);
    c->ooff = 0;
    c->busy = true;
    c->sent_ns = t;
    ssize_t n = write(c->fd, c->out, c->olen);
    if (n > 0)
        c->ooff = (size_t)n;
    if (c->ooff < c->olen) { /* rare: finish blocking */
        while (c->ooff < c->olen) {
            n = write(c->fd, c->out + c->ooff, c->olen - c->ooff);
            if (n <= 0 && errno != EAGAIN && errno != EINTR)
                break;
            if (n > 0)
                c->ooff += (size_t)n;
        }
    }
    P.sent++;
}

/* Reads the response(s); marks the connection idle after a full one. */
static void conn_read(conn *c)
{
    ssize_t n = read(c->fd, c->in + c->ilen, sizeof c->in - c->ilen - 1);
    if (n <= 0) { /* closed by knit: count it, reconnect */
        P.closed++;
        if (c->busy)
            P.errors++;
        c->sent_ns = 0;
        c->busy = true; /* reap_stalled replaces it */
        return;
    }
    c->ilen += (size_t)n;
    c->in[c->ilen] = '\0';
    for (;;) {
        char *end = strstr(c->in, "\r\n\r\n");
        if (!end)
            return;
        size_t hl = (size_t)(end - c->in) + 4, bl = 0;
        int code = atoi(c->in + 9);
        for (char *p = c->in; p < end; p = strstr(p, "\r\n") + 2)
            if (strncasecmp(p, "content-length:", 15) == 0)
                bl = strtoul(p + 15, NULL, 10);
        if (c->ilen < hl + bl)
            return;
        if (code == 202)
            P.acked++;
        else
            P.errors++;
        memmove(c->in, c->in + hl + bl, c->ilen - hl - bl);
        c->ilen -= hl + bl;
        c->in[c->ilen] = '\0';
        c->busy = false;
    }
}

/* A request unanswered for STALL_NS: counted, and the connection is
 * replaced (knit's ingress should never leave one waiting that long). */
#define STALL_NS (5 * 1000000000LL)

static void reap_stalled(conn *conns, int n, int ep)
{
    int64_t now = now_ns();
    for (int i = 0; i < n; i++) {
        conn *c = &conns[i];
        if (!c->busy || (c->sent_ns && now - c->sent_ns < STALL_NS))
            continue;
        if (c->sent_ns)
            P.stalled++;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->busy = false;
        c->ilen = 0;
        if (conn_open(c, ep) != 0)
            exit(1);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int parse_url(const char *url)
{
    if (sscanf(url, "http://%63[^:]:%d%255s", P.host, &P.port, P.path) != 3)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *sinks = NULL;
    double rate = 0, duration = 5, warmup = 0.5, drain = 30;
    int nconns = 64, fanout = 1;
    long long expect = -1;
    if (argc == 1) { /* scripts/bench.sh runs every bench program */
        printf("e2e_load is driven by bench/e2e.sh (BENCH=e2e make bench)\n");
        return 0;
    }
    P.size = 256;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--url")) url = v;
        else if (!strcmp(a, "--sinks")) sinks = v;
        else if (!strcmp(a, "--rate")) rate = atof(v);
        else if (!strcmp(a, "--duration")) duration = atof(v);
        else if (!strcmp(a, "--warmup")) warmup = atof(v);
        else if (!strcmp(a, "--conns")) nconns = atoi(v);
        else if (!strcmp(a, "--size")) P.size = atoi(v);
        else if (!strcmp(a, "--fanout")) fanout = atoi(v);
        else if (!strcmp(a, "--drain")) drain = atof(v);
        else if (!strcmp(a, "--expect")) expect = atoll(v);
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (expect < 0 && (!url || parse_url(url) != 0))
        sinks = NULL;
    if (!sinks || nconns < 1 ||
        nconns > MAX_CONNS || P.size < 1 || P.size > 2048 || fanout < 0) {
        fprintf(stderr, "usage: e2e_load --url http://HOST:PORT/NS/BROKER "
                "--sinks PORT[,PORT...] [--rate R] [--duration S] "
                "[--conns N] [--size B] [--fanout N] [--warmup S]\n");
        return 2;
    }
    lat = malloc(LAT_CAP * sizeof *lat);
    resp_202 = MHD_create_response_from_buffer(0, empty_body,
                                               MHD_RESPMEM_PERSISTENT);
    struct MHD_Daemon *d[MAX_SINKS];
    int nd = 0;
    for (const char *p = sinks; *p && nd < MAX_SINKS;) {
        if (!(d[nd] = start_sink(atoi(p)))) {
            fprintf(stderr, "cannot listen on sink port %d\n", atoi(p));
            return 1;
        }
        nd++;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    if (expect >= 0) { /* subscribers only */
        int64_t start = 0, last = 0, give_up = now_ns() + (int64_t)(drain * 1e9);
        while (atomic_load(&delivered) < (uint64_t)expect &&
               now_ns() < give_up) {
            if (!start && atomic_load(&delivered))
                start = now_ns();
            usleep(1000);
        }
        last = now_ns();
        uint64_t got = atomic_load(&delivered);
        printf("RESULT delivered=%" PRIu64 " deliver_rate=%.0f lost=%" PRIu64
               "\n", got,
               start && last > start ? (double)got / ((double)(last - start) / 1e9)
                                     : 0.0,
               (uint64_t)expect > got ? (uint64_t)expect - got : 0);
        for (int i = 0; i < nd; i++)
            MHD_stop_daemon(d[i]);
        MHD_destroy_response(resp_202);
        free(lat);
        return 0;
    }
    char *body = malloc((size_t)P.size + 1);
    memset(body, 'x', (size_t)P.size);
    body[P.size] = '\0';
    int ep = epoll_create1(0);
    conn *conns = calloc((size_t)nconns, sizeof *conns);
    for (int i = 0; i < nconns; i++)
        if (conn_open(&conns[i], ep) != 0)
            return 1;

    int64_t t0 = now_ns(), rec_start = t0 + (int64_t)(warmup * 1e9);
    int64_t end = rec_start + (int64_t)(duration * 1e9);
    double next = (double)t0, gap = rate > 0 ? 1e9 / rate : 0;
    uint64_t sent_at_rec = 0, deliv_at_rec = 0;
    bool rec = false;
    struct epoll_event evs[256];
    while (now_ns() < end) {
        int64_t now = now_ns();
        if (!rec && now >= rec_start) {
            rec = true;
            atomic_store(&recording, true);
            sent_at_rec = P.sent;
            deliv_at_rec = atomic_load(&delivered);
        }
        for (int i = 0; i < nconns; i++) {
            if (conns[i].busy)
                continue;
            if (rate > 0 && (double)now < next)
                break;
            conn_send(&conns[i], body);
            next += gap;
        }
        /* Wait for responses (1 ms at most), or until the next send is
         * due when a connection is free; never spin while all are busy,
         * never pass a negative timeout (that would block). */
        int timeout = 1;
        bool idle = false;
        for (int i = 0; i < nconns && !idle; i++)
            idle = !conns[i].busy;
        if (rate > 0 && idle) {
            int64_t w = (int64_t)(next - (double)now_ns()) / 1000000;
            timeout = w < 0 ? 0 : w > 1 ? 1 : (int)w;
        }
        int n = epoll_wait(ep, evs, 256, timeout);
        for (int i = 0; i < n; i++)
            conn_read(evs[i].data.ptr);
        reap_stalled(conns, nconns, ep);
    }
    int64_t t_end = now_ns();
    atomic_store(&recording, false);
    uint64_t sent_window = P.sent - sent_at_rec;
    uint64_t deliv_window = atomic_load(&delivered) - deliv_at_rec;
    /* finish the in-flight requests, then wait for the deliveries */
    for (int k = 0; k < 10000; k++) { /* 10 s at most */
        bool busy = false;
        for (int i = 0; i < nconns; i++)
            busy |= conns[i].busy;
        if (!busy)
            break;
        int n = epoll_wait(ep, evs, 256, 1);
        for (int i = 0; i < n; i++)
            conn_read(evs[i].data.ptr);
        reap_stalled(conns, nconns, ep);
    }
    uint64_t want = P.acked * (uint64_t)fanout;
    int64_t give_up = now_ns() + (int64_t)(drain * 1e9);
    while (atomic_load(&delivered) < want && now_ns() < give_up)
        usleep(10000);
    double secs = (double)(t_end - rec_start) / 1e9;
    uint64_t nl = atomic_load(&lat_n);
    if (nl > LAT_CAP)
        nl = LAT_CAP;
    qsort(lat, nl, sizeof *lat, cmp_i64);
#define PCT(p) (nl ? lat[(size_t)((double)(nl - 1) * (p))] : 0)
    uint64_t got = atomic_load(&delivered);
    printf("RESULT sent=%" PRIu64 " acked=%" PRIu64 " errors=%" PRIu64
           " delivered=%" PRIu64 " send_rate=%.0f deliver_rate=%.0f"
           " p50_us=%" PRId64 " p99_us=%" PRId64 " p999_us=%" PRId64
           " max_us=%" PRId64 " lost=%" PRIu64 " stalled=%" PRIu64
           " closed=%" PRIu64 "\n",
           P.sent, P.acked, P.errors, got, (double)sent_window / secs,
           (double)deliv_window / secs, PCT(0.5), PCT(0.99), PCT(0.999),
           nl ? lat[nl - 1] : 0, want > got ? want - got : 0, P.stalled,
           P.closed);
    for (int i = 0; i < nconns; i++)
        close(conns[i].fd);
    for (int i = 0; i < nd; i++)
        MHD_stop_daemon(d[i]);
    MHD_destroy_response(resp_202);
    free(conns);
    free(body);
    free(lat);
    return 0;
}
