/*
 * Appends of the NATS channel: each event becomes one JetStream message
 * in the CloudEvents NATS binding, binary mode (ce- headers, payload =
 * data) with `Nats-Msg-Id` = the event id, published on the stream's
 * subject with a reply subject "<inbox>.<id>". JetStream answers every
 * stored message with a PubAck on that subject; one subscription on
 * "<inbox>.*" receives them all, finds the message by its id (a ring of
 * messages in flight, O(1)) and completes the append call when its last
 * PubAck arrived: KN_OK with the stream sequence of the first event, or
 * the first error. Many messages are in flight at once.
 *
 * This is what js_PublishMsgAsync does, without its per-message costs
 * that the ingress pays on every event: a random reply token and a map
 * keyed by that string under the JetStream context's lock, the message
 * kept until its PubAck, a general JSON parse and an allocated jsPubAck
 * per PubAck. Here the message is sent and freed soon after (messages
 * are destroyed in bursts of KN_NATS_GRAVE: each natsMsg_Destroy hands
 * the message to the cnats GC thread and wakes it if idle), and the PubAck
 * is read in place ({"stream":..,"seq":N[,"duplicate":true]}, or
 * {"error":{..}} read with jansson). Overdue PubAcks ("publish-timeout")
 * fail their call from the maintenance thread; a 503 status (no
 * responders: the stream is gone) fails it at once and makes the
 * maintenance thread check the stream.
 *
 * All or nothing is what the caller sees, not what the stream holds: if
 * some events of a call were stored and others failed, the call fails and
 * the stored ones stay (at-least-once). A producer that retries sends the
 * same ids, which JetStream drops as duplicates within the stream's
 * duplicate window, so the retry is idempotent there.
 *
 * Threads: kn_nats_append runs on any thread; PubAcks on a cnats delivery
 * thread; completions run there, on the connection's callback thread
 * (disconnect), or on the maintenance thread (timeouts, empty appends,
 * calls whose PubAcks all came back while the call was still publishing).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channels/nats/nats_int.h"

#define RING_MIN 1024u
#define RING_MAX (1u << 18)   /* ids in flight (from the oldest unsettled) */

/* ---------------------------------------------------------------- ring */

static kn_pslot *slot_of(kn_pring *r, uint64_t id)
{
    return &r->slots[id & (r->cap - 1)];
}

static int ring_grow(kn_pring *r)
{
    uint64_t cap = r->cap ? r->cap * 2 : RING_MIN;
    kn_pslot *ns;
    if (cap > RING_MAX)
        return KN_UNAVAILABLE;
    if (!(ns = calloc(cap, sizeof *ns)))
        return KN_NOMEM;
    for (uint64_t id = r->tail; id < r->head; id++)
        ns[id & (cap - 1)] = *slot_of(r, id);
    free(r->slots);
    r->slots = ns;
    r->cap = cap;
    if (!r->head)
        r->head = r->tail = 1;
    return KN_OK;
}

/* Reserves n consecutive ids for the events of b; *first gets the first.
 * KN_UNAVAILABLE when too many are in flight. */
static int ring_put(kn_pring *r, kn_pbatch *b, size_t n, int64_t deadline,
                    uint64_t *first)
{
    int rc;
    while (!r->cap || r->head - r->tail + n > r->cap)
        if ((rc = ring_grow(r)) != KN_OK)
            return rc;
    *first = r->head;
    for (size_t i = 0; i < n; i++)
        *slot_of(r, r->head++) = (kn_pslot){b, i, deadline};
    r->count += n;
    return KN_OK;
}

/* Settles id: copies its slot to *out; false if it is not in flight (a
 * late PubAck of a message failed already). */
static bool ring_take(kn_pring *r, uint64_t id, kn_pslot *out)
{
    if (id < r->tail || id >= r->head)
        return false;
    kn_pslot *s = slot_of(r, id);
    if (!s->batch)
        return false;
    *out = *s;
    s->batch = NULL;
    r->count--;
    while (r->tail < r->head && !slot_of(r, r->tail)->batch)
        r->tail++;
    return true;
}

void kn_nats_pring_free(kn_pring *pr)
{
    free(pr->slots);
    memset(pr, 0, sizeof *pr);
}

/* --------------------------------------------------------- graveyard */

/* Under ch->mu: keeps *m to destroy with others (*m becomes NULL; when
 * the graveyard is full it stays, for the caller to destroy). Returns
 * true when full: the caller calls kn_nats_flush_grave after unlocking. */
static bool grave_put_locked(kn_nats *ch, natsMsg **m)
{
    if (*m && ch->ngrave < KN_NATS_GRAVE) {
        ch->grave[ch->ngrave++] = *m;
        *m = NULL;
    }
    return ch->ngrave == KN_NATS_GRAVE;
}

void kn_nats_flush_grave(kn_nats *ch)
{
    natsMsg *local[KN_NATS_GRAVE];
    pthread_mutex_lock(&ch->mu);
    size_t n = ch->ngrave;
    memcpy(local, ch->grave, n * sizeof *local);
    ch->ngrave = 0;
    pthread_mutex_unlock(&ch->mu);
    for (size_t i = 0; i < n; i++)
        natsMsg_Destroy(local[i]);
}

/* --------------------------------------------------------- completion */

/* Under ch->mu: the batch is done; account it. */
static void batch_done_locked(kn_nats *ch, kn_pbatch *b)
{
    ch->batches--;
    if (b->status == KN_OK) {
        ch->st.appended_events += b->n;
        ch->st.appended_bytes += b->bytes;
    } else {
        ch->st.append_errors += b->n;
    }
}

static void batch_complete(kn_pbatch *b)
{
    if (b->cb)
        b->cb(b->arg, b->status, b->first);
    free(b);
}

/* Under ch->mu: hands b to the maintenance thread for completion. */
static void queue_done_locked(kn_nats *ch, kn_pbatch *b)
{
    b->next = NULL;
    *ch->done_tail = b;
    ch->done_tail = &b->next;
    pthread_cond_signal(&ch->cv);
}

void kn_nats_run_done(kn_nats *ch)
{
    pthread_mutex_lock(&ch->mu);
    kn_pbatch *list = ch->done_head;
    ch->done_head = NULL;
    ch->done_tail = &ch->done_head;
    pthread_mutex_unlock(&ch->mu);
    while (list) {
        kn_pbatch *b = list;
        list = b->next;
        batch_complete(b);
    }
}

/* Under ch->mu: records the outcome of one message; returns the batch if
 * this was its last outstanding message. */
static kn_pbatch *settle_locked(kn_nats *ch, const kn_pslot *sl, int status,
                                uint64_t seq)
{
    kn_pbatch *b = sl->batch;
    if (status == KN_OK) {
        if (sl->idx == 0)
            b->first = seq;
        if (seq + 1 > ch->head_seen)
            ch->head_seen = seq + 1;
    } else if (b->status == KN_OK) {
        b->status = status;
    }
    if (--b->left > 0)
        return NULL;
    batch_done_locked(ch, b);
    return b;
}

/* Settles every message in flight that `fail` selects, completing the
 * batches that end (outside the lock). */
static void fail_where(kn_nats *ch, int status, int64_t now, int64_t *next)
{
    kn_pbatch *done = NULL;
    pthread_mutex_lock(&ch->mu);
    kn_pring *r = &ch->pr;
    for (uint64_t id = r->tail; id < r->head; id++) {
        kn_pslot *s = slot_of(r, id), sl = {0};
        if (!s->batch)
            continue;
        if (next && s->deadline_ms > now) { /* deadlines grow with ids */
            *next = s->deadline_ms;
            break;
        }
        if (!ring_take(r, id, &sl))
            continue;
        kn_pbatch *b = settle_locked(ch, &sl, status, 0);
        if (b) {
            b->next = done;
            done = b;
        }
    }
    pthread_mutex_unlock(&ch->mu);
    while (done) {
        kn_pbatch *b = done;
        done = b->next;
        batch_complete(b);
    }
}

void kn_nats_fail_pending(kn_nats *ch, int status)
{
    fail_where(ch, status, 0, NULL);
}

int64_t kn_nats_expire_pending(kn_nats *ch, int64_t now)
{
    int64_t next = INT64_MAX;
    fail_where(ch, KN_TIMEOUT, now, &next);
    return next;
}

size_t kn_nats_pending(kn_nats *ch)
{
    pthread_mutex_lock(&ch->mu);
    size_t n = ch->pr.count;
    pthread_mutex_unlock(&ch->mu);
    return n;
}

/* -------------------------------------------------------------- PubAcks */

/* The outcome a PubAck carries: KN_OK and *seq, or an error (*lost: the
 * stream does not answer or is gone). */
static int read_puback(natsMsg *m, uint64_t *seq, bool *lost)
{
    const char *d = natsMsg_GetData(m), *st = NULL, *p;
    int len = natsMsg_GetDataLength(m);

    *lost = false;
    if (len == 0) { /* a status: 503 = no responders */
        natsMsgHeader_Get(m, "Status", &st);
        if (st && strncmp(st, "503", 3) == 0) {
            *lost = true;
            return kn_nats_status(NATS_NO_RESPONDERS);
        }
        return KN_IO;
    }
    if (strstr(d, "\"error\"")) {
        json_t *j = json_loadb(d, (size_t)len, 0, NULL);
        json_t *e = json_object_get(j, "error");
        jsErrCode ec = (jsErrCode)json_integer_value(
            json_object_get(e, "err_code"));
        json_decref(j);
        *lost = ec == JSStreamNotFoundErr;
        return kn_nats_js_status(NATS_ERR, ec);
    }
    if (!(p = strstr(d, "\"seq\":")))
        return KN_IO;
    char *end;
    *seq = strtoull(p + 6, &end, 10);
    return end != p + 6 && *seq ? KN_OK : KN_IO;
}

/* cnats delivery thread: the PubAck (or status) of one message. */
static void on_puback(natsConnection *nc, natsSubscription *sub,
                      natsMsg *m, void *closure)
{
    kn_nats *ch = closure;
    const char *dot = strrchr(natsMsg_GetSubject(m), '.');
    uint64_t id = dot ? strtoull(dot + 1, NULL, 10) : 0, seq = 0;
    bool lost = false;
    int status = read_puback(m, &seq, &lost);
    kn_pbatch *done = NULL;
    kn_pslot sl;
    (void)nc;
    (void)sub;

    pthread_mutex_lock(&ch->mu);
    if (ring_take(&ch->pr, id, &sl))
        done = settle_locked(ch, &sl, status, seq);
    bool full = grave_put_locked(ch, &m);
    pthread_mutex_unlock(&ch->mu);
    if (full)
        kn_nats_flush_grave(ch);
    natsMsg_Destroy(m); /* NULL unless the graveyard was full */
    if (done)
        batch_complete(done);
    if (lost) {
        KN_WARN(KN_NATS_COMP, "broker %s: stream %s does not answer; "
                "checking it", ch->label, ch->stream);
        atomic_store(&ch->stream_ok, false);
        kn_nats_wake(ch, true);
    }
}

static void on_ack_sub_done(void *closure)
{
    kn_nats *ch = closure;
    pthread_mutex_lock(&ch->mu);
    ch->ack_sub_done = true;
    pthread_cond_broadcast(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
}

int kn_nats_acks_start(kn_nats *ch, kn_err *err)
{
    natsInbox *inbox = NULL;
    char subj[160];
    natsStatus s = natsInbox_Create(&inbox);

    if (s == NATS_OK && strlen(inbox) > 160) /* reply_subject's room */
        s = NATS_INVALID_SUBJECT;
    if (s == NATS_OK && !(ch->ack_prefix = strdup(inbox)))
        s = NATS_NO_MEMORY;
    natsInbox_Destroy(inbox);
    if (s == NATS_OK) {
        snprintf(subj, sizeof subj, "%s.*", ch->ack_prefix);
        s = natsConnection_Subscribe(&ch->ack_sub, ch->nc, subj, on_puback,
                                     ch);
    }
    if (s == NATS_OK) /* never drop a PubAck as a slow consumer */
        s = natsSubscription_SetPendingLimits(ch->ack_sub, -1, -1);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(ch->ack_sub, on_ack_sub_done,
                                             ch);
    if (s != NATS_OK)
        return kn_err_set(err, kn_nats_status(s), "nats channel: PubAck "
                          "subscription: %s", natsStatus_GetText(s));
    return KN_OK;
}

void kn_nats_acks_stop(kn_nats *ch)
{
    struct timespec ts;
    if (!ch->ack_sub)
        return;
    natsSubscription_Unsubscribe(ch->ack_sub);
    kn_deadline_ms(&ts, CLOCK_MONOTONIC, 5000);
    pthread_mutex_lock(&ch->mu);
    while (!ch->ack_sub_done)
        if (pthread_cond_timedwait(&ch->cv, &ch->mu, &ts) != 0)
            break;
    bool done = ch->ack_sub_done;
    pthread_mutex_unlock(&ch->mu);
    if (!done) { /* a callback may still run: leak rather than free */
        KN_ERROR(KN_NATS_COMP, "broker %s: PubAck subscription did not "
                 "finish", ch->label);
        return;
    }
    natsSubscription_Destroy(ch->ack_sub);
    ch->ack_sub = NULL;
}

/* ------------------------------------------------------------ encoding */

typedef struct enc_bufs {
    ce_headers h;
    ce_buf payload;
} enc_bufs;

/* Encodes ev into e (ce- headers and the payload). */
static int encode(const ce_event *ev, enc_bufs *e)
{
    ce_err cerr;
    const char *id = ev ? ce_event_get(ev, "id", NULL, NULL) : NULL;
    int rc;

    if (!id || !*id)
        return KN_INVAL;
    e->h.count = 0;
    e->h.store.len = 0;
    e->payload.len = 0;
    if ((rc = ce_nats_encode(ev, CE_MODE_BINARY, &e->h, &e->payload,
                             &cerr)))
        return kn_status_from_ce(rc);
    if (e->payload.len > (size_t)INT32_MAX)
        return KN_TOOBIG;
    return KN_OK;
}

/* "<prefix>.<id>" into buf (n >= strlen(prefix) + 22). */
static void reply_subject(const char *prefix, uint64_t id, char *buf)
{
    char digits[24];
    int k = 0;
    size_t pl = strlen(prefix);
    do
        digits[k++] = (char)('0' + id % 10);
    while ((id /= 10) > 0);
    memcpy(buf, prefix, pl);
    buf[pl++] = '.';
    while (k > 0)
        buf[pl++] = digits[--k];
    buf[pl] = '\0';
}

/* Adds one header; cnats wants NUL-terminated strings (and copies them). */
static natsStatus add_header(natsMsg *m, const ce_header *x)
{
    char stack[1024], *buf = stack;
    size_t need = x->name_len + x->value_len + 2;
    if (need > sizeof stack && !(buf = malloc(need)))
        return NATS_NO_MEMORY;
    memcpy(buf, x->name, x->name_len);
    buf[x->name_len] = '\0';
    memcpy(buf + x->name_len + 1, x->value, x->value_len);
    buf[need - 1] = '\0';
    natsStatus s = natsMsgHeader_Add(m, buf, buf + x->name_len + 1);
    if (buf != stack)
        free(buf);
    return s;
}

/* Builds the message of the encoded event with reply <prefix>.<id>. */
static natsStatus build(kn_nats *ch, const ce_event *ev, const enc_bufs *e,
                        uint64_t id, natsMsg **out, uint64_t *bytes)
{
    char reply[224];
    natsMsg *m = NULL;
    reply_subject(ch->ack_prefix, id, reply);
    natsStatus s = natsMsg_Create(&m, ch->subject, reply, e->payload.data,
                                  (int)e->payload.len);
    *bytes = e->payload.len;
    for (size_t i = 0; s == NATS_OK && i < e->h.count; i++) {
        s = add_header(m, &e->h.items[i]);
        *bytes += e->h.items[i].name_len + e->h.items[i].value_len + 4;
    }
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id",
                              ce_event_get(ev, "id", NULL, NULL));
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return s;
    }
    *out = m;
    return NATS_OK;
}

/* ------------------------------------------------------------- append */

/* Publishes the events of b (ids first..first+n). Returns how many went
 * out; the rest are settled with the error in *st. The sent messages
 * (cnats copied them) are left in *last (one event) or destroyed. */
static size_t publish_all(kn_nats *ch, kn_pbatch *b, ce_event *const *evs,
                          size_t n, uint64_t first, enc_bufs *e, int *st,
                          natsMsg **last)
{
    size_t i;
    for (i = 0; i < n; i++) {
        natsMsg *m = NULL;
        uint64_t bytes = 0;
        int rc = encode(evs[i], e);
        natsStatus s = NATS_OK;
        if (rc == KN_OK) {
            s = build(ch, evs[i], e, first + i, &m, &bytes);
            if (s == NATS_OK)
                s = natsConnection_PublishMsg(ch->nc, m);
            rc = kn_nats_status(s);
        }
        if (n == 1 && rc == KN_OK)
            *last = m;  /* to the graveyard with the batch's lock */
        else
            natsMsg_Destroy(m);
        if (rc != KN_OK) {
            *st = rc;
            break;
        }
        b->bytes += bytes;
    }
    if (i == n)
        return n;
    pthread_mutex_lock(&ch->mu);
    for (size_t j = i; j < n; j++) {
        kn_pslot sl;
        if (ring_take(&ch->pr, first + j, &sl))
            b->left--;
    }
    if (b->status == KN_OK)
        b->status = *st;
    pthread_mutex_unlock(&ch->mu);
    return i;
}

int kn_nats_append(kn_channel *base, ce_event *const *evs, size_t n,
                   kn_append_cb cb, void *arg)
{
    kn_nats *ch = (kn_nats *)base;
    enc_bufs e = {{0}, CE_BUF_INIT};
    uint64_t first = 0;
    kn_pbatch *b = calloc(1, sizeof *b);
    int rc = KN_OK;

    if (!b)
        return KN_NOMEM;
    *b = (kn_pbatch){NULL, cb, arg, n, n + 1, 0, 0, KN_OK};
    if (!atomic_load(&ch->connected) || !atomic_load(&ch->stream_ok))
        rc = KN_UNAVAILABLE;
    /* all or nothing: a call with an event that cannot be encoded
     * publishes none (one event: found while publishing it) */
    for (size_t i = 0; n > 1 && i < n && rc == KN_OK; i++)
        rc = encode(evs[i], &e);
    if (rc != KN_OK)
        goto fail;
    pthread_mutex_lock(&ch->mu);
    int64_t deadline = kn_nats_now_ms() + ch->set.publish_timeout_ms;
    bool was_idle = ch->pr.count == 0;
    if (ch->stopping)
        rc = KN_CLOSED;
    else if (n > 0)
        rc = ring_put(&ch->pr, b, n, deadline, &first);
    if (rc == KN_OK) {
        ch->batches++;
        /* the maintenance thread sleeps past this deadline: wake it */
        if (n > 0 && was_idle && deadline < ch->maint_wake_at) {
            ch->kick = true;
            pthread_cond_signal(&ch->cv);
        }
    }
    pthread_mutex_unlock(&ch->mu);
    if (rc != KN_OK) {
        if (rc == KN_UNAVAILABLE)
            KN_WARN(KN_NATS_COMP, "broker %s: too many appends awaiting "
                    "their PubAck", ch->label);
        goto fail;
    }
    natsMsg *sent_msg = NULL;
    size_t sent = publish_all(ch, b, evs, n, first, &e, &rc, &sent_msg);
    if (sent == 0 && n > 0) { /* nothing in flight: the call fails now */
        pthread_mutex_lock(&ch->mu);
        ch->batches--;
        ch->st.append_errors += n;
        pthread_mutex_unlock(&ch->mu);
        free(b);
        goto out;
    }
    if (sent < n)
        KN_WARN(KN_NATS_COMP, "broker %s: publish failed after %zu of %zu "
                "events of one append: %s", ch->label, sent, n,
                kn_status_str(rc));
    rc = KN_OK;
    /* Drop the guard reference; complete here if every PubAck came. */
    pthread_mutex_lock(&ch->mu);
    if (--b->left == 0) {
        batch_done_locked(ch, b);
        queue_done_locked(ch, b);
    }
    bool full = grave_put_locked(ch, &sent_msg);
    pthread_mutex_unlock(&ch->mu);
    if (full)
        kn_nats_flush_grave(ch);
    natsMsg_Destroy(sent_msg); /* NULL unless the graveyard was full */
    goto out;
fail:
    pthread_mutex_lock(&ch->mu);
    ch->st.append_errors += n;
    pthread_mutex_unlock(&ch->mu);
    free(b);
out:
    ce_headers_free(&e.h);
    ce_buf_free(&e.payload);
    return rc;
}
