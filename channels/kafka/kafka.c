/*
 * The Kafka channel ("kafka" backend): one topic per broker, events as
 * records in the CloudEvents Kafka binding (binary mode), an idempotent
 * acks=all producer shared by every append of the channel, and cursors
 * that are consumer-group members (cursor.c). See docs/channels-kafka.md.
 *
 * Appends: each event is produced with a pointer to its call's batch as
 * the message opaque (the first event's pointer tagged in bit 0). The
 * poll thread serves delivery reports; the report that brings the batch's
 * outstanding count to zero completes the call, with KN_OK and the offset
 * of the first event, or the first error (a success report without an
 * offset counts as an error: see unconfirmed()). Kafka has no
 * all-or-nothing write without transactions: on failure some events of a
 * batch may be stored (the producer retries each within
 * message.timeout.ms; the caller retries the call, so at-least-once,
 * never loss of an acknowledged one).
 *
 * Health: the channel is unhealthy (appends fail with KN_UNAVAILABLE at
 * once) until its topic is set up, while librdkafka reports every broker
 * down, after a fatal producer error, and while delivery reports fail. The
 * admin thread sets the topic up and probes a down cluster; a successful
 * probe or delivery makes the channel healthy again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channels/kafka/kafka_int.h"

typedef struct kbatch {
    struct kbatch *next;      /* on the ready list */
    atomic_size_t left;       /* events without a delivery report */
    atomic_int status;        /* first error, KN_OK */
    atomic_uint_fast64_t first; /* offset of the first event */
    uint64_t bytes;
    size_t n;
    kn_append_cb cb;
    void *arg;
} kbatch;

/* Poll-thread state kept apart from the rest: the ready list of batches
 * whose last event was accounted outside a delivery report. */
typedef struct kpoll {
    pthread_mutex_t mu;
    kbatch *ready;
    atomic_bool stop;
    atomic_size_t pending;   /* batches not yet completed */
    pthread_cond_t idle;     /* signalled when pending drops to 0 */
} kpoll;

typedef struct kn_kafka_full {
    kn_kafka k;
    kpoll p;
} kn_kafka_full;

static kpoll *poll_of(kn_kafka *k)
{
    return &((kn_kafka_full *)k)->p;
}

/* ------------------------------------------------------------ health */

static bool healthy_locked(const kn_kafka *k)
{
    return k->topic_ready && !k->down && !k->fatal && !k->failing;
}

/* Under mu, after a change of topic_ready, down or fatal. */
static void update_accepting(kn_kafka *k)
{
    atomic_store(&k->accepting, k->topic_ready && !k->down && !k->fatal);
}

/* Under mu: the most telling reason the channel is unhealthy, or "". */
static const char *reason_locked(const kn_kafka *k)
{
    if (k->fatal)
        return k->fatal_reason;
    if (!k->topic_ready)
        return k->setup_reason;
    if (k->down)
        return k->down_reason;
    if (k->failing)
        return k->fail_reason;
    return "";
}

/* See kafka_int.h. */
bool kn_kafka_warn_ok(kn_kafka *k)
{
    int64_t now = kn_now_mono_ns();
    bool ok;
    pthread_mutex_lock(&k->mu);
    ok = now - k->last_warn_ns >= 1000000000 || k->last_warn_ns == 0;
    if (ok)
        k->last_warn_ns = now;
    pthread_mutex_unlock(&k->mu);
    return ok;
}

/* See kafka_int.h. */
bool kn_kafka_admin_api(kn_kafka *k)
{
    pthread_mutex_lock(&k->mu);
    bool ok = k->admin_api == 1;
    pthread_mutex_unlock(&k->mu);
    return ok;
}

/* ------------------------------------------------- delivery reports */

static void batch_complete(kn_kafka *k, kbatch *b)
{
    kpoll *p = poll_of(k);
    int st = atomic_load(&b->status);
    if (st == KN_OK) {
        atomic_fetch_add(&k->appended_events, b->n);
        atomic_fetch_add(&k->appended_bytes, b->bytes);
    } else {
        atomic_fetch_add(&k->append_errors, b->n);
    }
    if (b->cb)
        b->cb(b->arg, st, (uint64_t)atomic_load(&b->first));
    free(b);
    if (atomic_fetch_sub(&p->pending, 1) == 1) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->idle);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Accounts cnt events of b; the last one completes the batch. */
static void batch_account(kn_kafka *k, kbatch *b, size_t cnt, bool poll_thr)
{
    if (atomic_fetch_sub(&b->left, cnt) != cnt)
        return;
    if (poll_thr) {
        batch_complete(k, b);
        return;
    }
    kpoll *p = poll_of(k); /* completions run on the poll thread */
    pthread_mutex_lock(&p->mu);
    b->next = p->ready;
    p->ready = b;
    pthread_mutex_unlock(&p->mu);
    rd_kafka_yield(k->prod);
}

static void note_delivery_error(kn_kafka *k, rd_kafka_resp_err_t e)
{
    pthread_mutex_lock(&k->mu);
    bool was = k->failing;
    k->failing = true;
    atomic_store(&k->trouble, true);
    snprintf(k->fail_reason, sizeof k->fail_reason,
             "deliveries to topic %s fail: %s",
             k->set.topic, rd_kafka_err2str(e));
    pthread_mutex_unlock(&k->mu);
    if (!was || kn_kafka_warn_ok(k))
        KN_WARN(KN_KAFKA_COMP, "kafka %s: delivery to topic %s failed: %s",
                k->label, k->set.topic, rd_kafka_err2str(e));
}

static void note_delivery_ok(kn_kafka *k)
{
    pthread_mutex_lock(&k->mu);
    if (k->failing || k->down) {
        k->failing = false;
        k->down = false;
        update_accepting(k);
        atomic_store(&k->trouble, false);
        KN_INFO(KN_KAFKA_COMP, "kafka %s: deliveries succeed again",
                k->label);
    }
    pthread_mutex_unlock(&k->mu);
}

/* A delivery report that says success without placing the message at an
 * offset: librdkafka's "implicit ack". When a request of a partition
 * fails and a later one (sent while it was in flight) succeeds, the
 * idempotent producer infers that the earlier messages were stored, and
 * reports them delivered with no offset. A real broker makes that sound
 * (it refuses a batch whose sequence does not follow the last stored
 * one), but a cluster that does not check sequences acks the later batch
 * with the earlier one missing: librdkafka's mock cluster does not (for
 * a producer without transactional.id), and lost acknowledged events in
 * test 0703. knit acknowledges only what a response placed at an offset;
 * such a report fails its append (the client retries: a duplicate at
 * worst, never a loss). Poll thread. */
static bool unconfirmed(kn_kafka *k, const rd_kafka_message_t *m)
{
    rd_kafka_msg_status_t ms = rd_kafka_message_status(m);
    if (m->offset >= 0 && ms == RD_KAFKA_MSG_STATUS_PERSISTED)
        return false;
    if (kn_kafka_warn_ok(k))
        KN_WARN(KN_KAFKA_COMP, "kafka %s: topic %s partition %" PRId32
                ": a delivery report said success without an offset "
                "(status %d; an implicit acknowledgement after a failed "
                "request); the append fails so that the client retries",
                k->label, k->set.topic, m->partition, (int)ms);
    return true;
}

/* Delivery report: poll thread (or, for purged messages, librdkafka's
 * internal enqueue; still served by rd_kafka_poll). */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                      void *opaque)
{
    kn_kafka *k = opaque;
    uintptr_t tag = (uintptr_t)m->_private;
    kbatch *b = (kbatch *)(tag & ~(uintptr_t)1);
    (void)rk;
    KN_DEBUG(KN_KAFKA_COMP, "kafka %s: delivery report %p%s: %s, "
             "partition %" PRId32 " offset %" PRId64 " status %d",
             k->label, (void *)b, tag & 1 ? " (first)" : "",
             rd_kafka_err2name(m->err), m->partition, m->offset,
             (int)rd_kafka_message_status(m));
    if (m->err) {
        int st = kn_kafka_status(m->err), zero = KN_OK;
        atomic_compare_exchange_strong(&b->status, &zero, st);
        note_delivery_error(k, m->err);
    } else if (unconfirmed(k, m)) {
        int zero = KN_OK;
        atomic_compare_exchange_strong(&b->status, &zero, KN_UNAVAILABLE);
    } else {
        if (tag & 1)
            atomic_store(&b->first, (uint64_t)m->offset);
        if (atomic_load(&k->trouble))
            note_delivery_ok(k);
    }
    batch_account(k, b, 1, true);
}

/* Errors of the producer: poll thread. Must not block. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque)
{
    kn_kafka *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[200];
        rd_kafka_resp_err_t fe = rd_kafka_fatal_error(rk, buf, sizeof buf);
        pthread_mutex_lock(&k->mu);
        k->fatal = true;
        update_accepting(k);
        snprintf(k->fatal_reason, sizeof k->fatal_reason,
                 "fatal producer error %s: %s",
                 rd_kafka_err2name(fe), buf);
        pthread_mutex_unlock(&k->mu);
        KN_ERROR(KN_KAFKA_COMP, "kafka %s: fatal producer error %s: %s; "
                 "appends fail until the channel is reopened", k->label,
                 rd_kafka_err2name(fe), buf);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        pthread_mutex_lock(&k->mu);
        k->down = true;
        update_accepting(k);
        atomic_store(&k->trouble, true);
        snprintf(k->down_reason, sizeof k->down_reason,
                 "all Kafka brokers are down: %s", reason);
        pthread_cond_broadcast(&k->cv);
        pthread_mutex_unlock(&k->mu);
        KN_WARN(KN_KAFKA_COMP, "kafka %s: all brokers are down (%s); "
                "appends fail until one is back", k->label, reason);
        /* Queued (not yet sent) events fail now rather than at their
         * timeout; those in flight finish on their own. */
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE |
                               RD_KAFKA_PURGE_F_NON_BLOCKING);
        return;
    }
    if (kn_kafka_warn_ok(k))
        KN_WARN(KN_KAFKA_COMP, "kafka %s: %s: %s", k->label,
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void *poll_main(void *arg)
{
    kn_kafka *k = arg;
    kpoll *p = poll_of(k);
    for (;;) {
        bool stop = atomic_load(&p->stop);
        rd_kafka_poll(k->prod, stop ? 0 : 1000);
        pthread_mutex_lock(&p->mu);
        kbatch *r = p->ready;
        p->ready = NULL;
        pthread_mutex_unlock(&p->mu);
        while (r) {
            kbatch *next = r->next;
            batch_complete(k, r);
            r = next;
        }
        if (stop)
            break;
    }
    return NULL;
}

/* ------------------------------------------------------------ appends */

static int produce_one(kn_kafka *k, const ce_event *ev, void *opaque,
                       ce_headers *h, ce_buf *val, uint64_t *bytes)
{
    const char *key;
    size_t klen;
    bool has_value;
    ce_err cerr;
    int rc;

    ce_headers_reset(h);
    ce_buf_reset(val);
    if ((rc = ce_kafka_encode(ev, CE_MODE_BINARY, h, val, &has_value, &key,
                              &klen, &cerr)) != CE_OK) {
        if (kn_kafka_warn_ok(k))
            KN_WARN(KN_KAFKA_COMP, "kafka %s: cannot encode event: %s",
                    k->label, cerr.msg);
        return kn_status_from_ce(rc);
    }
    rd_kafka_headers_t *rh = rd_kafka_headers_new(h->count);
    if (!rh)
        return KN_NOMEM;
    *bytes += val->len + klen;
    for (size_t i = 0; i < h->count; i++) {
        const ce_header *x = &h->items[i];
        rd_kafka_header_add(rh, x->name, (ssize_t)x->name_len, x->value,
                            (ssize_t)x->value_len);
        *bytes += x->name_len + x->value_len;
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        k->prod, RD_KAFKA_V_RKT(k->rkt),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)(uintptr_t)key, klen),
        RD_KAFKA_V_VALUE(has_value ? val->data : NULL,
                         has_value ? val->len : 0),
        RD_KAFKA_V_HEADERS(rh), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(rh);
        if (kn_kafka_warn_ok(k))
            KN_WARN(KN_KAFKA_COMP, "kafka %s: cannot produce to %s: %s",
                    k->label, k->set.topic, rd_kafka_err2str(e));
        return kn_kafka_status(e);
    }
    return KN_OK;
}

/* Per-thread encoding buffers, kept between appends (freed when the
 * thread exits; a buffer grown past 1 MiB is dropped after use). */
typedef struct kscratch {
    ce_headers h;
    ce_buf val;
} kscratch;

static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    kscratch *s = p;
    ce_headers_free(&s->h);
    ce_buf_free(&s->val);
    free(s);
}

static void scratch_key(void)
{
    pthread_key_create(&g_scratch_key, scratch_free);
}

static kscratch *scratch_get(void)
{
    pthread_once(&g_scratch_once, scratch_key);
    kscratch *s = pthread_getspecific(g_scratch_key);
    if (!s && (s = calloc(1, sizeof *s)) &&
        pthread_setspecific(g_scratch_key, s) != 0) {
        free(s);
        s = NULL;
    }
    return s;
}

static void scratch_trim(kscratch *s)
{
    if (s->val.cap > (1u << 20))
        ce_buf_free(&s->val);
    if (s->h.store.cap > (1u << 20)) {
        ce_headers_free(&s->h);
        memset(&s->h, 0, sizeof s->h);
    }
}

/* Any thread. See channel.h; an empty call is KN_INVAL. */
static int kafka_append(kn_channel *ch, ce_event *const *evs, size_t n,
                        kn_append_cb cb, void *arg)
{
    kn_kafka *k = (kn_kafka *)ch;
    size_t queued = 0;
    int st = KN_OK;
    kbatch *b;

    if (n == 0 || !evs)
        return KN_INVAL;
    if (atomic_load(&k->stopping))
        return KN_CLOSED;
    if (!atomic_load(&k->accepting)) {
        atomic_fetch_add(&k->append_errors, n);
        return KN_UNAVAILABLE;
    }
    kscratch *sc = scratch_get();
    if (!sc || !(b = calloc(1, sizeof *b)))
        return KN_NOMEM;
    atomic_init(&b->left, n);
    atomic_init(&b->status, KN_OK);
    b->n = n;
    b->cb = cb;
    b->arg = arg;
    atomic_fetch_add(&poll_of(k)->pending, 1);
    for (; queued < n && st == KN_OK; queued++) {
        if (!evs[queued]) {
            st = KN_INVAL;
            break;
        }
        void *op = (void *)((uintptr_t)b | (queued == 0 ? 1u : 0u));
        st = produce_one(k, evs[queued], op, &sc->h, &sc->val, &b->bytes);
        if (st != KN_OK)
            break;
    }
    scratch_trim(sc);
    if (st == KN_OK)
        return KN_OK;
    if (queued == 0) { /* nothing sent: fail the call itself */
        free(b);
        atomic_fetch_sub(&poll_of(k)->pending, 1);
        atomic_fetch_add(&k->append_errors, n);
        return st;
    }
    int zero = KN_OK;
    atomic_compare_exchange_strong(&b->status, &zero, st);
    batch_account(k, b, n - queued, false);
    return KN_OK;
}

/* ------------------------------------------------------ topic set-up */

static const rd_kafka_metadata_topic_t *
find_topic(const struct rd_kafka_metadata *md, const char *t)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, t) == 0)
            return &md->topics[i];
    return NULL;
}

/* Whether the cluster names a controller among its brokers: CreateTopics
 * and DeleteGroups need a real one (librdkafka's mock cluster has none,
 * and its admin requests hang or abort there). */
static int admin_api_of(kn_kafka *k, const struct rd_kafka_metadata *md)
{
    int32_t ctl = rd_kafka_controllerid(k->prod, 0);
    for (int i = 0; i < md->broker_cnt; i++)
        if (md->brokers[i].id == ctl)
            return 1;
    return 0;
}

static int create_topic(kn_kafka *k, int brokers, char *why, size_t wn)
{
    char es[256];
    int rf = k->set.replication;
    if (rf == 0)
        rf = brokers < 3 ? (brokers > 0 ? brokers : 1) : 3;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(
        k->set.topic, k->set.partitions, rf, es, sizeof es);
    if (!nt) {
        snprintf(why, wn, "cannot create topic %s: %s", k->set.topic, es);
        return KN_INVAL;
    }
    const char *name;
    json_t *v;
    json_object_foreach(k->set.topic_config, name, v)
        rd_kafka_NewTopic_set_config(nt, name, json_string_value(v));
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->prod);
    rd_kafka_AdminOptions_t *ao =
        rd_kafka_AdminOptions_new(k->prod, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, KN_KAFKA_CALL_MS, es,
                                              sizeof es);
    rd_kafka_AdminOptions_set_operation_timeout(ao, KN_KAFKA_CALL_MS, es,
                                                sizeof es);
    rd_kafka_CreateTopics(k->prod, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 3 * KN_KAFKA_CALL_MS);
    int rc = KN_UNAVAILABLE;
    if (!ev) {
        snprintf(why, wn, "creating topic %s timed out", k->set.topic);
    } else if (rd_kafka_event_error(ev)) {
        snprintf(why, wn, "cannot create topic %s: %s", k->set.topic,
                 rd_kafka_event_error_string(ev));
    } else {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(
                rd_kafka_event_CreateTopics_result(ev), &cnt);
        rd_kafka_resp_err_t e = cnt ? rd_kafka_topic_result_error(tr[0])
                                    : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR ||
            e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            rc = KN_OK;
            if (!e)
                KN_INFO(KN_KAFKA_COMP, "kafka %s: created topic %s (%d "
                        "partitions, replication factor %d)", k->label,
                        k->set.topic, k->set.partitions, rf);
        } else {
            const char *es2 = rd_kafka_topic_result_error_string(tr[0]);
            snprintf(why, wn, "cannot create topic %s: %s", k->set.topic,
                     es2 ? es2 : rd_kafka_err2str(e));
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Asks for the topic's metadata until it has partitions (auto-creation
 * and a fresh CreateTopics take a moment to show). Admin thread. */
static int await_topic(kn_kafka *k, char *why, size_t wn)
{
    for (int i = 0; i < 25 && !atomic_load(&k->stopping); i++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(k->prod, 0, k->rkt, &md,
                                                  KN_KAFKA_CALL_MS);
        int parts = 0;
        if (!e && md->topic_cnt == 1 && !md->topics[0].err)
            parts = md->topics[0].partition_cnt;
        if (md)
            rd_kafka_metadata_destroy(md);
        if (parts > 0) {
            pthread_mutex_lock(&k->mu);
            k->nparts = parts;
            pthread_mutex_unlock(&k->mu);
            return KN_OK;
        }
        if (e) {
            snprintf(why, wn, "metadata of topic %s: %s", k->set.topic,
                     rd_kafka_err2str(e));
            return KN_UNAVAILABLE;
        }
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL);
    }
    snprintf(why, wn, "topic %s does not show up in the cluster's metadata",
             k->set.topic);
    return KN_UNAVAILABLE;
}

/* Asks for the topic's metadata from a client that lets the cluster
 * auto-create it (the channel's producer does not). Admin thread. */
static void auto_create(kn_kafka *k)
{
    char es[256];
    kn_err err;
    rd_kafka_conf_t *c = kn_kafka_conf_new(&k->set, false, &err);
    if (!c)
        return;
    rd_kafka_conf_set(c, "allow.auto.create.topics", "true", es, sizeof es);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, es, sizeof es);
    if (!rk) {
        rd_kafka_conf_destroy(c);
        return;
    }
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, k->set.topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    if (t)
        rd_kafka_metadata(rk, 0, t, &md, KN_KAFKA_CALL_MS);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (t)
        rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
}

/* Makes sure the topic exists. Admin thread (or open, before it starts).
 * Blocks on the cluster, each call bounded by KN_KAFKA_CALL_MS. */
static int setup_topic(kn_kafka *k, char *why, size_t wn)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(k->prod, 1, NULL, &md,
                                              KN_KAFKA_CALL_MS);
    if (e) {
        snprintf(why, wn, "cannot reach the Kafka cluster: %s",
                 rd_kafka_err2str(e));
        return KN_UNAVAILABLE;
    }
    int admin = admin_api_of(k, md), brokers = md->broker_cnt;
    const rd_kafka_metadata_topic_t *t = find_topic(md, k->set.topic);
    bool exists = t && !t->err && t->partition_cnt > 0;
    rd_kafka_metadata_destroy(md);
    pthread_mutex_lock(&k->mu);
    k->admin_api = admin;
    pthread_mutex_unlock(&k->mu);
    if (!exists && k->set.external) {
        snprintf(why, wn, "external topic %s does not exist", k->set.topic);
        return KN_NOTFOUND;
    }
    if (!exists && admin) {
        int rc = create_topic(k, brokers, why, wn);
        if (rc != KN_OK)
            return rc;
    } else if (!exists) {
        KN_WARN(KN_KAFKA_COMP, "kafka %s: the cluster names no controller "
                "(librdkafka's mock cluster?), so topic %s is left to the "
                "cluster's auto-creation with its defaults; the "
                "default.topic.* settings do not apply", k->label,
                k->set.topic);
        auto_create(k);
    }
    /* The topic handle only now: asking for a topic's metadata makes some
     * clusters (the mock, or auto.create.topics.enable with an old
     * client) create it. */
    if (!k->rkt && !(k->rkt = rd_kafka_topic_new(k->prod, k->set.topic,
                                                 NULL))) {
        snprintf(why, wn, "topic %s: %s", k->set.topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return KN_INVAL;
    }
    return await_topic(k, why, wn);
}

/* A down cluster answers metadata again. Admin thread. */
static bool probe(kn_kafka *k)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(k->prod, 0, k->rkt, &md,
                                              2000);
    if (md)
        rd_kafka_metadata_destroy(md);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void wait_ms(kn_kafka *k, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&k->cv, &k->mu, &ts);
}

static void *admin_main(void *arg)
{
    kn_kafka *k = arg;
    char why[512];
    pthread_mutex_lock(&k->mu);
    while (!atomic_load(&k->stopping)) {
        if (!k->topic_ready) {
            pthread_mutex_unlock(&k->mu);
            int rc = setup_topic(k, why, sizeof why);
            pthread_mutex_lock(&k->mu);
            if (rc == KN_OK) {
                k->topic_ready = true;
                k->down = false;
                update_accepting(k);
                atomic_store(&k->trouble, k->failing);
                KN_INFO(KN_KAFKA_COMP, "kafka %s: topic %s ready", k->label,
                        k->set.topic);
            } else {
                snprintf(k->setup_reason, sizeof k->setup_reason, "%s", why);
                wait_ms(k, 1000);
            }
        } else if (k->down) {
            pthread_mutex_unlock(&k->mu);
            bool up = probe(k);
            pthread_mutex_lock(&k->mu);
            if (up && k->down) {
                /* the failures came from the outage */
                k->down = false;
                update_accepting(k);
                k->failing = false;
                atomic_store(&k->trouble, false);
                KN_INFO(KN_KAFKA_COMP, "kafka %s: the cluster answers "
                        "again", k->label);
            } else if (!up) {
                wait_ms(k, 500);
            }
        } else {
            pthread_cond_wait(&k->cv, &k->mu);
        }
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* ------------------------------------------------------ open / close */

static void kafka_stats(kn_channel *ch, kn_channel_stats *out)
{
    kn_kafka *k = (kn_kafka *)ch;
    memset(out, 0, sizeof *out);
    out->appended_events = atomic_load(&k->appended_events);
    out->appended_bytes = atomic_load(&k->appended_bytes);
    out->append_errors = atomic_load(&k->append_errors);
    out->skipped_records = atomic_load(&k->skipped_records);
    pthread_mutex_lock(&k->mu);
    out->healthy = healthy_locked(k);
    out->segments = k->nparts > 0 ? (uint64_t)k->nparts : 0;
    pthread_mutex_unlock(&k->mu);
}

static void kafka_free(kn_kafka *k)
{
    kpoll *p = poll_of(k);
    if (k->rkt)
        rd_kafka_topic_destroy(k->rkt);
    if (k->prod)
        rd_kafka_destroy(k->prod);
    kn_kafka_settings_free(&k->set);
    free(k->label);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->idle);
    free(k);
}

/* Waits until every append has completed or ms passed. */
static bool wait_idle(kn_kafka *k, int64_t ms)
{
    kpoll *p = poll_of(k);
    int64_t end = kn_now_mono_ms() + ms;
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending) > 0 && kn_now_mono_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->idle, &p->mu, &ts);
    }
    bool idle = atomic_load(&p->pending) == 0;
    pthread_mutex_unlock(&p->mu);
    return idle;
}

static void kafka_close(kn_channel *ch)
{
    kn_kafka *k = (kn_kafka *)ch;
    kpoll *p;
    if (!k)
        return;
    p = poll_of(k);
    atomic_store(&k->stopping, true);
    if (atomic_load(&k->cursors) > 0)
        KN_ERROR(KN_KAFKA_COMP, "kafka %s: channel closed with cursors "
                 "still open", k->label);
    if (k->admin_started) {
        pthread_mutex_lock(&k->mu);
        pthread_cond_broadcast(&k->cv);
        pthread_mutex_unlock(&k->mu);
        pthread_join(k->admin_thr, NULL);
    }
    if (k->poll_started) {
        if (!wait_idle(k, k->set.message_timeout_ms + 2000)) {
            KN_WARN(KN_KAFKA_COMP, "kafka %s: appends still in flight at "
                    "close; failing them", k->label);
            rd_kafka_purge(k->prod, RD_KAFKA_PURGE_F_QUEUE |
                                        RD_KAFKA_PURGE_F_INFLIGHT);
            wait_idle(k, 5000);
        }
        atomic_store(&p->stop, true);
        rd_kafka_yield(k->prod);
        pthread_join(k->poll_thr, NULL);
    }
    if (atomic_load(&p->pending) > 0)
        KN_ERROR(KN_KAFKA_COMP, "kafka %s: %zu appends never completed",
                 k->label, atomic_load(&p->pending));
    kafka_free(k);
}

static int start_producer(kn_kafka *k, kn_err *err)
{
    char es[512];
    rd_kafka_conf_t *c = kn_kafka_conf_new(&k->set, true, err);
    if (!c) /* the consumer side is checked now, not at cursor_open */
        return KN_INVAL;
    rd_kafka_conf_destroy(c);
    if (!(c = kn_kafka_conf_new(&k->set, false, err)))
        return KN_INVAL;
    rd_kafka_conf_set_opaque(c, k);
    rd_kafka_conf_set_dr_msg_cb(c, dr_msg_cb);
    rd_kafka_conf_set_error_cb(c, error_cb);
    if (!(k->prod = rd_kafka_new(RD_KAFKA_PRODUCER, c, es, sizeof es))) {
        rd_kafka_conf_destroy(c);
        return kn_err_set(err, KN_INVAL, "kafka %s: cannot create the "
                          "producer: %s", k->label, es);
    }
    return KN_OK;
}

/* Opens the channel: settings, producer, first topic set-up (bounded; an
 * unreachable cluster leaves the channel open but unhealthy, and the
 * admin thread keeps trying). Caller's thread. KN_INVAL for settings. */
static int kafka_open(const kn_channel_config *cfg, kn_channel **out,
                      kn_err *err)
{
    kn_kafka_full *f = calloc(1, sizeof *f);
    kn_kafka *k = &f->k;
    char why[512];
    int rc;

    *out = NULL;
    if (!f)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    k->base.ops = &kn_channel_kafka_ops;
    k->admin_api = -1;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    pthread_mutex_init(&f->p.mu, NULL);
    pthread_cond_init(&f->p.idle, NULL);
    if (asprintf(&k->label, "%s/%s", cfg && cfg->ns ? cfg->ns : "-",
                 cfg && cfg->name ? cfg->name : "-") < 0) {
        k->label = NULL;
        kafka_free(k);
        return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    if ((rc = kn_kafka_settings_parse(cfg, &k->set, err)) != KN_OK ||
        (rc = start_producer(k, err)) != KN_OK) {
        kafka_free(k);
        return rc;
    }
    if ((rc = pthread_create(&k->poll_thr, NULL, poll_main, k)) != 0) {
        kafka_free(k);
        return kn_err_set(err, KN_NOMEM, "kafka: cannot start a thread: %s",
                          strerror(rc));
    }
    k->poll_started = true;
    if (setup_topic(k, why, sizeof why) == KN_OK) {
        k->topic_ready = true;
        update_accepting(k);
    } else {
        snprintf(k->setup_reason, sizeof k->setup_reason, "%s", why);
        KN_WARN(KN_KAFKA_COMP, "kafka %s: %s; appends fail until it is "
                "fixed (retrying)", k->label, why);
    }
    if ((rc = pthread_create(&k->admin_thr, NULL, admin_main, k)) != 0) {
        kafka_close(&k->base);
        return kn_err_set(err, KN_NOMEM, "kafka: cannot start a thread: %s",
                          strerror(rc));
    }
    k->admin_started = true;
    *out = &k->base;
    return KN_OK;
}

/* Why the channel is unhealthy ("" when it is healthy), into buf. */
const char *kn_channel_kafka_reason(kn_channel *ch, char *buf, size_t n)
{
    kn_kafka *k = (kn_kafka *)ch;
    if (!ch || ch->ops != &kn_channel_kafka_ops) {
        snprintf(buf, n, "not a kafka channel");
        return buf;
    }
    pthread_mutex_lock(&k->mu);
    snprintf(buf, n, "%s", reason_locked(k));
    pthread_mutex_unlock(&k->mu);
    return buf;
}

const kn_channel_ops kn_channel_kafka_ops = {
    .name = "kafka",
    .version = 1,
    .open = kafka_open,
    .append = kafka_append,
    .cursor_open = kn_kafka_cursor_open,
    .cursor_next = kn_kafka_cursor_next,
    .cursor_fd = kn_kafka_cursor_fd,
    .cursor_drain_notify = kn_kafka_cursor_drain,
    .cursor_commit = kn_kafka_cursor_commit,
    .cursor_seek = kn_kafka_cursor_seek,
    .cursor_close = kn_kafka_cursor_close,
    .cursor_delete = kn_kafka_cursor_delete,
    .stats = kafka_stats,
    .close = kafka_close,
};
