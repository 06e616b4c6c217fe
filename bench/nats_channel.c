/*
 * bench/nats_channel: append throughput of the NATS JetStream channel
 * (one event per append, as the ingress does, many appends in flight,
 * each completed by its PubAck) next to the raw ceiling measured in the
 * same run against the same server: cnats js_PublishMsgAsync of the same
 * bytes (the same ce- headers, Nats-Msg-Id and payload, prepared before
 * the clock starts) with the same number in flight, into a stream with
 * the same configuration. Prints both rates and their ratio (target
 * >= 0.6). Then the read side: a cursor reading the same events from the
 * start (decode, commit per batch) next to a raw cnats pull subscription
 * (natsSubscription_Fetch of 256, ack each, no decoding) on the same
 * stream. Each round measures raw then knit back to back; the median of
 * the rounds' ratios is the figure (the machine is shared and noisy).
 *
 * Usage: nats_channel [events [in-flight [data-bytes [rounds]]]]
 *   defaults: 50000 events, 1024 in flight, 256 bytes of data, 3 rounds.
 *   KNIT_BENCH_DEBUG=1 prints the channel's debug log (pull requests).
 *   It starts `nats-server -js` on a free loopback port with a temporary
 *   store (as the tests do), or uses KNIT_TEST_NATS_URL.
 */
#include "channels/nats/nats_int.h"
#include "tests/integration/nats_test.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------- events */

static ce_event *make_event(int round, long i, size_t data_len)
{
    char id[64], *data = malloc(data_len + 1);
    ce_event *ev = ce_event_new();
    snprintf(id, sizeof id, "bench-%d-%ld-%ld", round, (long)getpid(), i);
    for (size_t k = 0; k < data_len; k++)
        data[k] = (char)('a' + (i + (long)k) % 26);
    if (!ev || !data || ce_event_set_str(ev, "specversion", "1.0", NULL) ||
        ce_event_set_str(ev, "id", id, NULL) ||
        ce_event_set_str(ev, "source", "/bench/nats", NULL) ||
        ce_event_set_str(ev, "type", "dev.knit.bench", NULL) ||
        ce_event_set_str(ev, "datacontenttype", "text/plain", NULL) ||
        ce_event_set_str(ev, "time", "2024-05-01T12:34:56.789Z", NULL) ||
        ce_event_set_data(ev, data, data_len))
        abort();
    free(data);
    ce_event_freeze(ev);
    return ev;
}

/* The raw side's message: NUL-terminated header names/values and the
 * payload, encoded before the clock starts. */
typedef struct raw_msg {
    char **kv;         /* name, value, name, value, ... */
    size_t nkv;
    char *payload;
    size_t len;
} raw_msg;

static void raw_prepare(raw_msg *m, const ce_event *ev)
{
    ce_headers h = {0};
    ce_buf p = CE_BUF_INIT;
    if (ce_nats_encode(ev, CE_MODE_BINARY, &h, &p, NULL) != CE_OK)
        abort();
    m->nkv = 2 * h.count + 2;
    m->kv = calloc(m->nkv, sizeof *m->kv);
    for (size_t i = 0; i < h.count; i++) {
        m->kv[2 * i] = strndup(h.items[i].name, h.items[i].name_len);
        m->kv[2 * i + 1] = strndup(h.items[i].value, h.items[i].value_len);
    }
    m->kv[m->nkv - 2] = strdup("Nats-Msg-Id");
    m->kv[m->nkv - 1] = strdup(ce_event_get(ev, "id", NULL, NULL));
    m->payload = malloc(p.len + 1);
    memcpy(m->payload, p.data, p.len);
    m->len = p.len;
    ce_headers_free(&h);
    ce_buf_free(&p);
}

static void raw_free(raw_msg *m)
{
    for (size_t i = 0; i < m->nkv; i++)
        free(m->kv[i]);
    free(m->kv);
    free(m->payload);
}

/* ------------------------------------------------------------ raw run */

static void raw_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
                    void *closure)
{
    (void)js;
    (void)pae;
    tu_window_release(closure, pa != NULL);
    natsMsg_Destroy(msg);
}

static double run_raw(const char *url, const char *stream, raw_msg *msgs,
                      long n, int inflight, long *failed)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsStreamConfig sc;
    jsPubOptions po;
    tu_window w;
    char subj[128];
    const char *subjects[1] = {subj};

    snprintf(subj, sizeof subj, "bench.raw.%s", stream);
    tu_window_init(&w, inflight);
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 65536;
    jo.PublishAsync.AckHandler = raw_ack;
    jo.PublishAsync.AckHandlerClosure = &w;
    if (natsConnection_ConnectTo(&nc, url) != NATS_OK ||
        natsConnection_JetStream(&js, nc, &jo) != NATS_OK)
        abort();
    jsStreamConfig_Init(&sc);
    sc.Name = stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Retention = js_LimitsPolicy;
    sc.Storage = js_FileStorage;
    sc.Duplicates = 120000000000LL;
    if (js_AddStream(NULL, js, &sc, NULL, NULL) != NATS_OK)
        abort();
    jsPubOptions_Init(&po);
    po.MaxWait = 5000;

    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        natsMsg *m = NULL;
        tu_window_acquire(&w);
        natsStatus s = natsMsg_Create(&m, subj, NULL, msgs[i].payload,
                                      (int)msgs[i].len);
        for (size_t k = 0; s == NATS_OK && k < msgs[i].nkv; k += 2)
            s = natsMsgHeader_Add(m, msgs[i].kv[k], msgs[i].kv[k + 1]);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(js, &m, &po);
        if (s != NATS_OK) {
            natsMsg_Destroy(m);
            tu_window_release(&w, 0);
        }
    }
    tu_window_drain(&w);
    double dt = now_s() - t0;
    *failed = w.failed;
    js_DeleteStream(js, stream, NULL, NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return dt;
}

/* -------------------------------------------------------- channel run */

static void chan_done(void *arg, int status, uint64_t first)
{
    (void)first;
    tu_window_release(arg, status == KN_OK);
}

static double run_channel(kn_channel *ch, ce_event **evs, long n,
                          int inflight, long *failed)
{
    tu_window w;
    tu_window_init(&w, inflight);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        tu_window_acquire(&w);
        if (kn_channel_append(ch, &evs[i], 1, chan_done, &w) != KN_OK)
            tu_window_release(&w, 0);
    }
    tu_window_drain(&w);
    *failed = w.failed;
    return now_s() - t0;
}

/* ----------------------------------------------------------- reading */

/* A cursor reads the n events from the start, committing each batch. */
static double read_channel(kn_channel *ch, long n)
{
    kn_seek start = {KN_SEEK_START, 0, 0};
    kn_cursor *c = NULL;
    kn_err err = {0};
    kn_record recs[256];
    long got = 0;

    if (ch->ops->cursor_open(ch, "bench-read", &start, NULL, &c, &err) !=
        KN_OK) {
        fprintf(stderr, "nats_channel: cursor: %s\n", err.msg);
        exit(1);
    }
    double t0 = now_s();
    while (got < n) {
        size_t want = n - got < 256 ? (size_t)(n - got) : 256;
        size_t k = tu_read(c, recs, want, 5000);
        if (!k)
            break;
        uint64_t top = 0;
        for (size_t i = 0; i < k; i++) {
            if (recs[i].offset + 1 > top)
                top = recs[i].offset + 1;
            ce_event_unref(recs[i].event);
        }
        ch->ops->cursor_commit(c, 0, top);
        got += (long)k;
    }
    double dt = now_s() - t0;
    ch->ops->cursor_close(c);
    if (got < n)
        fprintf(stderr, "nats_channel: cursor read only %ld of %ld\n", got,
                n);
    return dt;
}

/* Raw: a durable pull subscription on the same stream with the same
 * max-ack-pending, natsSubscription_Fetch of 256, every message acked
 * (no decoding). */
static double read_raw(const char *url, const char *stream,
                       const char *broker, long n)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    char subj[160];
    long got = 0;

    if (nt_raw(url, &nc, &js) != 0)
        abort();
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.MaxAckPending = 1000;
    snprintf(subj, sizeof subj, "knit.default.%s.events", broker);
    if (js_PullSubscribe(&sub, js, subj, "raw-read", NULL, &so, NULL) !=
        NATS_OK) {
        fprintf(stderr, "nats_channel: raw pull subscribe: %s\n",
                nats_GetLastError(NULL));
        exit(1);
    }
    double t0 = now_s();
    while (got < n) {
        natsMsgList list = {0};
        if (natsSubscription_Fetch(&list, sub, 256, 5000, NULL) != NATS_OK)
            break;
        for (int i = 0; i < list.Count; i++)
            natsMsg_Ack(list.Msgs[i], NULL);
        got += list.Count;
        natsMsgList_Destroy(&list);
    }
    double dt = now_s() - t0;
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    if (got < n)
        fprintf(stderr, "nats_channel: raw read only %ld of %ld\n", got, n);
    return dt;
}

static void drop_stream(const char *url, const char *stream)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    if (nt_raw(url, &nc, &js) == 0)
        js_DeleteStream(js, stream, NULL, NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 50000;
    int inflight = argc > 2 ? atoi(argv[2]) : 1024;
    size_t data_len = argc > 3 ? (size_t)atol(argv[3]) : 256;
    int rounds = argc > 4 ? atoi(argv[4]) : 3;
    nt_server srv;
    double best_raw = 0, best_chan = 0, best_rraw = 0, best_rchan = 0;
    double ratios[2][64];

    if (n <= 0 || inflight <= 0 || rounds <= 0 || rounds > 64) {
        fprintf(stderr, "usage: nats_channel [events [in-flight "
                "[data-bytes [rounds]]]]\n");
        return 2;
    }
    int rc = nt_start(&srv);
    if (rc == 77) {
        printf("nats_channel: skipped (nats-server not installed)\n");
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "nats_channel: cannot start nats-server\n");
        return 1;
    }
    kn_log_set_level(getenv("KNIT_BENCH_DEBUG") ? KN_LOG_DEBUG : KN_LOG_WARN);
    printf("nats_channel: %ld events, %zu bytes of data, %d in flight, "
           "file storage, server %s\n", n, data_len, inflight, srv.url);
    for (int r = 0; r < rounds; r++) {
        ce_event **evs = calloc((size_t)n, sizeof *evs);
        raw_msg *msgs = calloc((size_t)n, sizeof *msgs);
        char stream[64], broker[64];
        long f_raw = 0, f_chan = 0;
        for (long i = 0; i < n; i++) {
            ce_event *ev = make_event(2 * r, i, data_len);
            raw_prepare(&msgs[i], ev);
            ce_event_unref(ev);
            evs[i] = make_event(2 * r + 1, i, data_len);
        }
        snprintf(stream, sizeof stream, "BENCH_RAW_%ld_%d", (long)getpid(),
                 r);
        snprintf(broker, sizeof broker, "bench-%ld-%d", (long)getpid(), r);
        double t_raw = run_raw(srv.url, stream, msgs, n, inflight, &f_raw);
        json_t *set = nt_settings(srv.url, NULL, 0);
        kn_err err = {0};
        kn_channel *ch = nt_open(broker, set, &err);
        json_decref(set);
        if (!ch) {
            fprintf(stderr, "nats_channel: open: %s\n", err.msg);
            return 1;
        }
        double t_chan = run_channel(ch, evs, n, inflight, &f_chan);
        double raw_rate = (double)n / t_raw, chan_rate = (double)n / t_chan;
        printf("round %d append: raw cnats js_PublishMsgAsync %8.0f/s | "
               "knit channel append %8.0f/s | ratio %.2f%s\n",
               r + 1, raw_rate, chan_rate, chan_rate / raw_rate,
               f_raw || f_chan ? " (FAILURES)" : "");
        if (f_raw || f_chan)
            fprintf(stderr, "failed: raw %ld, channel %ld\n", f_raw, f_chan);
        ratios[0][r] = chan_rate / raw_rate;
        if (raw_rate > best_raw)
            best_raw = raw_rate;
        if (chan_rate > best_chan)
            best_chan = chan_rate;

        char *cstream = NULL;
        kn_nats_stream_name("default", broker, &cstream);
        double rr = (double)n / read_raw(srv.url, cstream, broker, n);
        double rc2 = (double)n / read_channel(ch, n);
        printf("round %d read:   raw cnats pull fetch+ack     %8.0f/s | "
               "knit cursor next+commit %8.0f/s | ratio %.2f\n", r + 1, rr,
               rc2, rc2 / rr);
        ratios[1][r] = rc2 / rr;
        if (rr > best_rraw)
            best_rraw = rr;
        if (rc2 > best_rchan)
            best_rchan = rc2;
        kn_channel_close(ch);
        drop_stream(srv.url, cstream);
        free(cstream);
        for (long i = 0; i < n; i++) {
            ce_event_unref(evs[i]);
            raw_free(&msgs[i]);
        }
        free(evs);
        free(msgs);
    }
    printf("append: best raw %.0f/s, best channel %.0f/s; median ratio of "
           "the rounds %.2f (target >= 0.60)\n", best_raw, best_chan,
           median(ratios[0], rounds));
    printf("read:   best raw %.0f/s, best cursor %.0f/s; median ratio of "
           "the rounds %.2f\n", best_rraw, best_rchan,
           median(ratios[1], rounds));
    nt_cleanup(&srv);
    return 0;
}
