/*
 * Appends of the NATS channel: each event becomes one JetStream message
 * in the CloudEvents NATS binding, binary mode (ce- headers, payload =
 * data) with `Nats-Msg-Id` = the event id, published with
 * js_PublishMsgAsync (many in flight). The PubAck handler finds the
 * message's append call through a pointer map (natsMsg* -> call, index)
 * and completes the call when its last PubAck arrived: KN_OK with the
 * stream sequence of the first event, or the first error.
 *
 * All or nothing is what the caller sees, not what the stream holds: if
 * some events of a call were stored and others failed, the call fails and
 * the stored ones stay (at-least-once). A producer that retries sends the
 * same ids, which JetStream drops as duplicates within the stream's
 * duplicate window, so the retry is idempotent there.
 *
 * Threads: kn_nats_append runs on any thread; the PubAck handler on the
 * cnats thread of the JetStream reply subscription; completions run there,
 * on the connection's callback thread (disconnect), or on the maintenance
 * thread (empty appends, calls whose PubAcks all came back while the call
 * was still publishing).
 *
 * js_PublishMsgAsync puts the message in cnats's pending map before it
 * writes it out, without holding a lock in between; a disconnect that
 * takes the pending list (and frees the messages) at that moment would
 * free a message cnats is still encoding (seen as a crash inside
 * natsConn_publish when a server died under load). Publish calls
 * therefore hold ch->pub_lock for reading, and kn_nats_fail_pending takes
 * it for writing.
 */
#include <stdlib.h>
#include <string.h>

#include "channels/nats/nats_int.h"

/* ---------------------------------------------------------- pointer map */

static size_t home(const kn_pmap *pm, const natsMsg *m)
{
    uint64_t h = (uint64_t)(uintptr_t)m * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 29) & (pm->cap - 1);
}

static int pmap_grow(kn_pmap *pm)
{
    size_t cap = pm->cap ? pm->cap * 2 : 1024;
    kn_pslot *old = pm->slots, *ns = calloc(cap, sizeof *ns);
    size_t ocap = pm->cap;
    if (!ns)
        return KN_NOMEM;
    pm->slots = ns;
    pm->cap = cap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].msg)
            continue;
        size_t j = home(pm, old[i].msg);
        while (ns[j].msg)
            j = (j + 1) & (cap - 1);
        ns[j] = old[i];
    }
    free(old);
    return KN_OK;
}

static int pmap_put(kn_pmap *pm, const natsMsg *m, kn_pbatch *b, size_t idx)
{
    if ((pm->count + 1) * 2 > pm->cap && pmap_grow(pm) != KN_OK)
        return KN_NOMEM;
    size_t j = home(pm, m);
    while (pm->slots[j].msg)
        j = (j + 1) & (pm->cap - 1);
    pm->slots[j] = (kn_pslot){m, b, idx};
    pm->count++;
    return KN_OK;
}

/* Removes m; returns false if absent. Backward-shift deletion keeps the
 * probe chains intact without tombstones. */
static bool pmap_take(kn_pmap *pm, const natsMsg *m, kn_pslot *out)
{
    size_t mask = pm->cap - 1, i;
    if (!pm->cap)
        return false;
    for (i = home(pm, m); pm->slots[i].msg != m; i = (i + 1) & mask)
        if (!pm->slots[i].msg)
            return false;
    *out = pm->slots[i];
    for (size_t j = (i + 1) & mask; pm->slots[j].msg; j = (j + 1) & mask) {
        size_t k = home(pm, pm->slots[j].msg);
        bool move = i <= j ? (k <= i || k > j) : (k <= i && k > j);
        if (move) {
            pm->slots[i] = pm->slots[j];
            i = j;
        }
    }
    pm->slots[i].msg = NULL;
    pm->count--;
    return true;
}

void kn_nats_pmap_free(kn_pmap *pm)
{
    free(pm->slots);
    memset(pm, 0, sizeof *pm);
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

void kn_nats_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa,
                    jsPubAckErr *pae, void *closure)
{
    kn_nats *ch = closure;
    kn_pslot sl;
    kn_pbatch *done = NULL;
    int status = KN_OK;
    bool lost_stream = false;
    (void)js;

    if (!pa) {
        status = pae ? kn_nats_js_status(pae->Err, pae->ErrCode) : KN_IO;
        lost_stream = pae && (pae->Err == NATS_NO_RESPONDERS ||
                              pae->ErrCode == JSStreamNotFoundErr);
    }
    pthread_mutex_lock(&ch->mu);
    if (pmap_take(&ch->pm, msg, &sl))
        done = settle_locked(ch, &sl, status, pa ? pa->Sequence : 0);
    pthread_mutex_unlock(&ch->mu);
    natsMsg_Destroy(msg);
    if (done)
        batch_complete(done);
    if (lost_stream) {
        KN_WARN(KN_NATS_COMP, "broker %s: stream %s does not answer; "
                "checking it", ch->label, ch->stream);
        atomic_store(&ch->stream_ok, false);
        kn_nats_wake(ch, true);
    }
}

void kn_nats_fail_pending(kn_nats *ch, int status)
{
    natsMsgList list = {0};
    /* no publish call in progress: none uses a message of the list */
    pthread_rwlock_wrlock(&ch->pub_lock);
    /* (cnats 3.4 crashes here before the first async publish) */
    bool taken = ch->js && atomic_load(&ch->published) &&
                 js_PublishAsyncGetPendingList(&list, ch->js) == NATS_OK;
    pthread_rwlock_unlock(&ch->pub_lock);
    if (!taken)
        return;
    for (int i = 0; i < list.Count; i++) {
        kn_pslot sl;
        kn_pbatch *done = NULL;
        pthread_mutex_lock(&ch->mu);
        if (pmap_take(&ch->pm, list.Msgs[i], &sl))
            done = settle_locked(ch, &sl, status, 0);
        pthread_mutex_unlock(&ch->mu);
        if (done)
            batch_complete(done);
    }
    natsMsgList_Destroy(&list);
}

/* ------------------------------------------------------------ encoding */

/* Builds the NATS message of one event. */
static int encode(kn_nats *ch, const ce_event *ev, ce_headers *h,
                  ce_buf *payload, ce_buf *scratch, natsMsg **out,
                  uint64_t *bytes)
{
    ce_err cerr;
    natsMsg *m = NULL;
    const char *id = ce_event_get(ev, "id", NULL, NULL);
    int rc;

    h->count = 0;
    h->store.len = 0;
    payload->len = 0;
    scratch->len = 0;
    if ((rc = ce_nats_encode(ev, CE_MODE_BINARY, h, payload, &cerr)))
        return kn_status_from_ce(rc);
    if (!id || !*id)
        return KN_INVAL;
    /* cnats wants NUL-terminated names and values. */
    for (size_t i = 0; i < h->count; i++) {
        const ce_header *x = &h->items[i];
        if (ce_buf_append(scratch, x->name, x->name_len) ||
            ce_buf_append(scratch, "", 1) ||
            ce_buf_append(scratch, x->value, x->value_len) ||
            ce_buf_append(scratch, "", 1))
            return KN_NOMEM;
    }
    if (payload->len > (size_t)INT32_MAX)
        return KN_TOOBIG;
    natsStatus s = natsMsg_Create(&m, ch->subject, NULL, payload->data,
                                  (int)payload->len);
    const char *p = scratch->data;
    *bytes = payload->len;
    for (size_t i = 0; s == NATS_OK && i < h->count; i++) {
        const char *name = p, *value = p + h->items[i].name_len + 1;
        p = value + h->items[i].value_len + 1;
        s = natsMsgHeader_Add(m, name, value);
        *bytes += h->items[i].name_len + h->items[i].value_len + 4;
    }
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return kn_nats_status(s);
    }
    *out = m;
    return KN_OK;
}

static void destroy_msgs(natsMsg **msgs, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++)
        natsMsg_Destroy(msgs[i]);
}

/* Encodes all events of a call; on error nothing is left allocated. */
static int encode_all(kn_nats *ch, ce_event *const *evs, size_t n,
                      natsMsg **msgs, uint64_t *bytes)
{
    ce_headers h = {0};
    ce_buf payload = CE_BUF_INIT, scratch = CE_BUF_INIT;
    int rc = KN_OK;
    size_t i;

    *bytes = 0;
    for (i = 0; i < n && rc == KN_OK; i++) {
        uint64_t b = 0;
        rc = evs[i] ? encode(ch, evs[i], &h, &payload, &scratch, &msgs[i],
                             &b)
                    : KN_INVAL;
        *bytes += b;
    }
    if (rc != KN_OK)
        destroy_msgs(msgs, 0, i - 1);
    ce_headers_free(&h);
    ce_buf_free(&payload);
    ce_buf_free(&scratch);
    return rc;
}

/* ------------------------------------------------------------- append */

/* Publishes msgs[0..n) of batch b. Returns KN_OK when at least one was
 * handed to cnats (b completes through PubAcks), else the error (nothing
 * in flight; the caller still owns b). Holds ch->pub_lock (read). */
static int publish_all(kn_nats *ch, kn_pbatch *b, natsMsg **msgs, size_t n)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = ch->set.publish_timeout_ms;
    pthread_rwlock_rdlock(&ch->pub_lock);
    for (size_t i = 0; i < n; i++) {
        natsMsg *m = msgs[i];
        natsStatus s = js_PublishMsgAsync(ch->js, &m, &po);
        if (s == NATS_OK) {
            atomic_store(&ch->published, true);
            continue;
        }
        int st = kn_nats_status(s);
        kn_pslot sl;
        pthread_mutex_lock(&ch->mu);
        for (size_t j = i; j < n; j++)
            if (pmap_take(&ch->pm, msgs[j], &sl))
                b->left--;
        if (b->status == KN_OK)
            b->status = st;
        pthread_mutex_unlock(&ch->mu);
        destroy_msgs(msgs, i, n);
        pthread_rwlock_unlock(&ch->pub_lock);
        if (i == 0)
            return st;
        KN_WARN(KN_NATS_COMP, "broker %s: publish failed after %zu of %zu "
                "events of one append: %s", ch->label, i, n,
                kn_status_str(st));
        return KN_OK;
    }
    pthread_rwlock_unlock(&ch->pub_lock);
    return KN_OK;
}

int kn_nats_append(kn_channel *base, ce_event *const *evs, size_t n,
                   kn_append_cb cb, void *arg)
{
    kn_nats *ch = (kn_nats *)base;
    kn_pbatch *b;
    natsMsg *one, **msgs = n > 1 ? calloc(n, sizeof *msgs) : &one;
    int rc = KN_OK;

    if (!msgs || !(b = calloc(1, sizeof *b))) {
        if (msgs != &one)
            free(msgs);
        return KN_NOMEM;
    }
    *b = (kn_pbatch){NULL, cb, arg, n, n + 1, 0, 0, KN_OK};
    if (!atomic_load(&ch->connected) || !atomic_load(&ch->stream_ok))
        rc = KN_UNAVAILABLE;
    else if (n > 0)
        rc = encode_all(ch, evs, n, msgs, &b->bytes);
    if (rc != KN_OK)
        goto fail;
    pthread_mutex_lock(&ch->mu);
    if (ch->stopping)
        rc = KN_CLOSED;
    for (size_t i = 0; i < n && rc == KN_OK; i++)
        if ((rc = pmap_put(&ch->pm, msgs[i], b, i)) != KN_OK) {
            kn_pslot sl;
            for (size_t j = 0; j < i; j++)
                pmap_take(&ch->pm, msgs[j], &sl);
        }
    if (rc == KN_OK)
        ch->batches++;
    pthread_mutex_unlock(&ch->mu);
    if (rc != KN_OK) {
        destroy_msgs(msgs, 0, n);
        goto fail;
    }
    if ((rc = publish_all(ch, b, msgs, n)) != KN_OK) {
        pthread_mutex_lock(&ch->mu);
        ch->batches--;
        ch->st.append_errors += n;
        pthread_mutex_unlock(&ch->mu);
        free(b);
        goto out;
    }
    /* Drop the guard reference; complete here if every PubAck came. */
    pthread_mutex_lock(&ch->mu);
    if (--b->left == 0) {
        batch_done_locked(ch, b);
        queue_done_locked(ch, b);
    }
    pthread_mutex_unlock(&ch->mu);
    goto out;
fail:
    pthread_mutex_lock(&ch->mu);
    ch->st.append_errors += n;
    pthread_mutex_unlock(&ch->mu);
    free(b);
out:
    if (msgs != &one)
        free(msgs);
    return rc;
}
