/*
 * bench/nats_channel: append throughput of the NATS JetStream channel
 * (one event per append, as the ingress does, many appends in flight,
 * each completed by its PubAck) next to the raw ceiling measured in the
 * same run against the same server: cnats js_PublishMsgAsync of the same
 * bytes (the same ce- headers, Nats-Msg-Id and payload, prepared before
 * the clock starts) with the same number in flight, into a stream with
 * the same configuration. Prints both rates and their ratio (target
 * >= 0.6). Rounds alternate raw / channel; the best round of each counts.
 *
 * Usage: nats_channel [events [in-flight [data-bytes [rounds]]]]
 *   defaults: 50000 events, 1024 in flight, 256 bytes of data, 2 rounds.
 *   It starts `nats-server -js` on a free loopback port with a temporary
 *   store (as the tests do), or uses KNIT_TEST_NATS_URL.
 */
#include "channels/nats/nats_int.h"
#include "tests/integration/nats_test.h"

typedef struct window {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight, max;
    long done, failed;
} window;

static void win_init(window *w, int max)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->inflight = 0;
    w->max = max;
    w->done = w->failed = 0;
}

static void win_acquire(window *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->inflight >= w->max)
        pthread_cond_wait(&w->cv, &w->mu);
    w->inflight++;
    pthread_mutex_unlock(&w->mu);
}

static void win_release(window *w, int ok)
{
    pthread_mutex_lock(&w->mu);
    w->inflight--;
    w->done++;
    if (!ok)
        w->failed++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void win_drain(window *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->inflight > 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

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
    win_release(closure, pa != NULL);
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
    window w;
    char subj[128];
    const char *subjects[1] = {subj};

    snprintf(subj, sizeof subj, "bench.raw.%s", stream);
    win_init(&w, inflight);
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
        win_acquire(&w);
        natsStatus s = natsMsg_Create(&m, subj, NULL, msgs[i].payload,
                                      (int)msgs[i].len);
        for (size_t k = 0; s == NATS_OK && k < msgs[i].nkv; k += 2)
            s = natsMsgHeader_Add(m, msgs[i].kv[k], msgs[i].kv[k + 1]);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(js, &m, &po);
        if (s != NATS_OK) {
            natsMsg_Destroy(m);
            win_release(&w, 0);
        }
    }
    win_drain(&w);
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
    win_release(arg, status == KN_OK);
}

static double run_channel(const char *url, const char *broker,
                          ce_event **evs, long n, int inflight, long *failed)
{
    json_t *set = nt_settings(url, NULL, 0);
    kn_err err = {0};
    kn_channel *ch = nt_open(broker, set, &err);
    window w;

    json_decref(set);
    if (!ch) {
        fprintf(stderr, "nats_channel: open: %s\n", err.msg);
        exit(1);
    }
    win_init(&w, inflight);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        win_acquire(&w);
        if (kn_channel_append(ch, &evs[i], 1, chan_done, &w) != KN_OK)
            win_release(&w, 0);
    }
    win_drain(&w);
    double dt = now_s() - t0;
    *failed = w.failed;
    kn_channel_close(ch);

    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    char *stream = NULL;
    if (nt_raw(url, &nc, &js) == 0 &&
        kn_nats_stream_name("default", broker, &stream) == KN_OK)
        js_DeleteStream(js, stream, NULL, NULL);
    free(stream);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return dt;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 50000;
    int inflight = argc > 2 ? atoi(argv[2]) : 1024;
    size_t data_len = argc > 3 ? (size_t)atol(argv[3]) : 256;
    int rounds = argc > 4 ? atoi(argv[4]) : 2;
    nt_server srv;
    double best_raw = 0, best_chan = 0;

    if (n <= 0 || inflight <= 0 || rounds <= 0) {
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
    kn_log_set_level(KN_LOG_WARN);
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
        double t_chan = run_channel(srv.url, broker, evs, n, inflight,
                                    &f_chan);
        double raw_rate = (double)n / t_raw, chan_rate = (double)n / t_chan;
        printf("round %d: raw cnats js_PublishMsgAsync %9.0f events/s | "
               "knit nats channel append %9.0f events/s | ratio %.2f%s\n",
               r + 1, raw_rate, chan_rate, chan_rate / raw_rate,
               f_raw || f_chan ? " (FAILURES)" : "");
        if (f_raw || f_chan)
            fprintf(stderr, "failed: raw %ld, channel %ld\n", f_raw, f_chan);
        if (raw_rate > best_raw)
            best_raw = raw_rate;
        if (chan_rate > best_chan)
            best_chan = chan_rate;
        for (long i = 0; i < n; i++) {
            ce_event_unref(evs[i]);
            raw_free(&msgs[i]);
        }
        free(evs);
        free(msgs);
    }
    printf("best: raw %.0f events/s, channel %.0f events/s, ratio %.2f "
           "(target >= 0.60)\n", best_raw, best_chan, best_chan / best_raw);
    nt_cleanup(&srv);
    return 0;
}
