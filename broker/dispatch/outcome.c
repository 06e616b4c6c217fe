/*
 * What happens to a window entry after its delivery ends (loop thread):
 * - delivered: done, unless the subscriber replied with an event, which is
 *   stamped like an ingress event (knativebrokerttl re-attached from the
 *   original and decremented; arrival time) and appended to the broker's
 *   channel; the entry is done when the append is durable. A reply whose
 *   TTL is exhausted is not stored and the original is dead-lettered
 *   (reason ttl). A reply that cannot be stored makes the delivery fail:
 *   it is retried after the delivery spec's backoff, and dead-lettered
 *   (reason reply) once the retries are used up.
 * - dead-lettered by the sink client: done.
 * - failed (no dead-letter sink, or it failed too): the event goes to the
 *   broker's dead-letter store; done once that append is durable, retried
 *   every KN_RETRY_IO_MS until it is.
 * Appends complete on the channel's writer thread, which posts the result
 * back to the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dispatch/dispatch_int.h"

typedef struct append_ctx {
    kn_entry *e;
    int status;
} append_ctx;

static void after(kn_trig *t)
{
    if (t->zombie) {
        if (t->outstanding == 0)
            kn_disp_reap(t->d);
    } else {
        kn_trig_pump(t);
    }
}

static void track(kn_trig *t, int delta)
{
    t->outstanding = (uint32_t)((int)t->outstanding + delta);
    atomic_fetch_add(&t->d->outstanding, delta);
}

/* ------------------------------------------------------- holding */

static void dlq_append(kn_entry *e);
static void dlq_store(kn_entry *e, const kn_dlq_meta *m);

static void hold_fire(kn_sink_client *c, void *arg)
{
    kn_entry *e = arg;
    kn_trig *t = e->t;
    (void)c;
    e->timer = NULL;
    t->outstanding--;
    if (e->phase == KN_PH_DLQ) {
        dlq_append(e);
    } else if (!t->zombie) {
        kn_trig_ready_push(t, e);
    } else {
        e->state = KN_E_READY;
    }
    after(t);
}

void kn_entry_hold(kn_entry *e, int64_t delay_ms)
{
    kn_trig *t = e->t;
    if (t->zombie) { /* no new attempts: it goes away (and lets go of its
                        channel) once nothing is outstanding */
        e->state = KN_E_READY;
        return;
    }
    e->state = KN_E_HOLD;
    e->timer = kn_sink_timer_add(t->d->client, delay_ms, hold_fire, e);
    if (e->timer)
        t->outstanding++;
    else
        e->state = KN_E_READY; /* the loop is stopping */
}

/* ------------------------------------------------------- starting */

void kn_entry_start(kn_entry *e)
{
    kn_trig *t = e->t;
    kn_tcfg *cfg = t->cfg;
    kn_delivery_spec spec = cfg->spec;
    kn_delivery_req req = {.event = e->ev, .url = cfg->url, .spec = &spec,
                           .ns = cfg->ns};
    if (e->phase == KN_PH_DLS) {
        req.event = e->pending;
        req.url = cfg->dls;
        spec.dead_letter_url = NULL;
    }
    kn_err err = {0};
    int rc = kn_sink_submit_h(t->d->client, &req, kn_outcome_result, e,
                              &e->h, &err);
    if (rc == KN_OK) {
        e->state = KN_E_FLIGHT;
        t->inflight++;
        track(t, 1);
        return;
    }
    if (rc == KN_CLOSED || rc == KN_NOMEM) {
        e->state = KN_E_READY; /* stopping: redelivered after restart */
        return;
    }
    KN_WARN(KN_DISP, "trigger %s: cannot send event at offset %llu: %s",
            cfg->key, (unsigned long long)e->offset, err.msg);
    if (e->phase == KN_PH_DLS) {
        kn_dlq_meta m = {.trigger = cfg->name, .reason = "dead-letter-sink",
                         .error = err.msg, .dest = cfg->dls,
                         .offset = e->offset};
        dlq_store(e, &m);
        return;
    }
    kn_outcome_dead_letter(e, "invalid", 0, err.msg, NULL, 0);
}

/* ------------------------------------------------------- dead letters */

static void dlq_appended_loop(kn_sink_client *c, void *arg)
{
    append_ctx *ctx = arg;
    kn_entry *e = ctx->e;
    kn_trig *t = e->t;
    (void)c;
    track(t, -1);
    if (ctx->status == KN_OK) {
        size_t n = 0;
        const char *id = ce_event_get(e->ev, "id", &n, NULL);
        KN_WARN(KN_DISP, "trigger %s: event %.*s (offset %llu) kept in the "
                "dead-letter store of broker %s/%s", t->cfg->key, (int)n,
                id ? id : "", (unsigned long long)e->offset, t->cfg->ns,
                t->cfg->broker);
        atomic_fetch_add(&t->stats->dead_store, 1);
        e->phase = KN_PH_SUB;
        kn_entry_done(e);
    } else {
        KN_ERROR(KN_DISP, "trigger %s: cannot store a dead letter "
                 "(offset %llu): %s; retrying", t->cfg->key,
                 (unsigned long long)e->offset, kn_status_str(ctx->status));
        kn_entry_hold(e, KN_RETRY_IO_MS);
    }
    free(ctx);
    after(t);
}

static void dlq_appended(void *arg, int status, uint64_t first)
{
    append_ctx *ctx = arg;
    kn_dispatcher *d = ctx->e->t->d;
    (void)first;
    ctx->status = status;
    if (kn_disp_post(d, dlq_appended_loop, ctx) != KN_OK) {
        atomic_fetch_sub(&d->outstanding, 1);
        free(ctx);
    }
}

static void dlq_append(kn_entry *e)
{
    kn_trig *t = e->t;
    append_ctx *ctx = calloc(1, sizeof *ctx);
    e->state = KN_E_STORING;
    if (!ctx) {
        kn_entry_hold(e, KN_RETRY_IO_MS);
        return;
    }
    ctx->e = e;
    track(t, 1);
    int rc = t->dlq ? kn_dlq_append(t->dlq, e->pending, dlq_appended, ctx)
                    : KN_UNAVAILABLE;
    if (rc != KN_OK) {
        track(t, -1);
        free(ctx);
        KN_ERROR(KN_DISP, "trigger %s: cannot store a dead letter (offset "
                 "%llu): %s; retrying", t->cfg->key,
                 (unsigned long long)e->offset, kn_status_str(rc));
        kn_entry_hold(e, KN_RETRY_IO_MS);
    }
}

static void dlq_store(kn_entry *e, const kn_dlq_meta *m)
{
    ce_event_unref(e->pending);
    e->pending = kn_dlq_entry(e->ev, m);
    if (!e->pending) {
        e->phase = KN_PH_SUB;
        KN_ERROR(KN_DISP, "trigger %s: cannot build a dead letter (offset "
                 "%llu); delivering again later", e->t->cfg->key,
                 (unsigned long long)e->offset);
        kn_entry_hold(e, KN_RETRY_IO_MS);
        return;
    }
    e->phase = KN_PH_DLQ;
    dlq_append(e);
}

/* The original with knativeerrordest/code/data, for the dead-letter sink
 * (the same extensions the sink client adds, DESIGN.md §4). */
static ce_event *dls_event(const ce_event *orig, const char *dest, int code,
                           const char *error, const void *data, size_t n)
{
    ce_event *ev = ce_event_clone(orig);
    ce_buf b64 = CE_BUF_INIT;
    ce_err cerr = {0};
    if (!ev)
        return NULL;
    if (!data || !n) {
        data = error;
        n = error ? strlen(error) : 0;
    }
    if (n > 1024)
        n = 1024;
    int rc = ce_event_set_str(ev, "knativeerrordest", dest, &cerr);
    if (rc == CE_OK)
        rc = ce_event_set_int(ev, "knativeerrorcode", code > 0 ? code : 500,
                              &cerr);
    if (rc == CE_OK && n) {
        rc = ce_base64_encode(&b64, data, n);
        if (rc == CE_OK)
            rc = ce_event_set_str(ev, "knativeerrordata", b64.data, &cerr);
    }
    ce_buf_free(&b64);
    if (rc != CE_OK) {
        ce_event_unref(ev);
        return NULL;
    }
    ce_event_freeze(ev);
    return ev;
}

void kn_outcome_dead_letter(kn_entry *e, const char *reason, int code,
                            const char *error, const void *data,
                            size_t data_len)
{
    kn_trig *t = e->t;
    kn_tcfg *cfg = t->cfg;
    const char *dest = strcmp(reason, "ttl") == 0 ? cfg->broker_url
                                                  : cfg->url;
    if (cfg->dls && e->phase == KN_PH_SUB) {
        ce_event_unref(e->pending);
        e->pending = dls_event(e->ev, dest, code, error, data, data_len);
        if (e->pending) {
            e->phase = KN_PH_DLS;
            kn_entry_start(e);
            return;
        }
    }
    kn_dlq_meta m = {.trigger = cfg->name, .reason = reason, .code = code,
                     .error = error, .dest = dest, .data = data,
                     .data_len = data_len, .offset = e->offset};
    dlq_store(e, &m);
}

/* ------------------------------------------------------- replies */

static void reply_failed(kn_entry *e, int status)
{
    kn_trig *t = e->t;
    kn_tcfg *cfg = t->cfg;
    char msg[256];
    e->reply_fails++;
    snprintf(msg, sizeof msg, "cannot store the reply in broker %s/%s: %s",
             cfg->ns, cfg->broker, kn_status_str(status));
    if (e->reply_fails > (uint32_t)cfg->spec.retry) {
        kn_outcome_dead_letter(e, "reply", 0, msg, NULL, 0);
        return;
    }
    KN_WARN(KN_DISP, "trigger %s: %s; delivering again", cfg->key, msg);
    kn_entry_hold(e, kn_backoff_ms(&cfg->spec, e->reply_fails));
}

static void reply_appended_loop(kn_sink_client *c, void *arg)
{
    append_ctx *ctx = arg;
    kn_entry *e = ctx->e;
    kn_trig *t = e->t;
    (void)c;
    track(t, -1);
    if (ctx->status == KN_OK) {
        atomic_fetch_add(&t->stats->replies, 1);
        kn_entry_done(e);
    } else {
        reply_failed(e, ctx->status);
    }
    free(ctx);
    after(t);
}

static void reply_appended(void *arg, int status, uint64_t first)
{
    append_ctx *ctx = arg;
    kn_dispatcher *d = ctx->e->t->d;
    (void)first;
    ctx->status = status;
    if (kn_disp_post(d, reply_appended_loop, ctx) != KN_OK) {
        atomic_fetch_sub(&d->outstanding, 1);
        free(ctx);
    }
}

static void store_reply(kn_entry *e, ce_event *reply,
                        const kn_delivery_result *res)
{
    kn_trig *t = e->t;
    ce_err cerr = {0};
    char arrival[CE_TIME_MAX];
    kn_time_format_ns(kn_now_wall_ns(), arrival);
    int rc = res->has_ttl
                 ? ce_event_set_int(reply, "knativebrokerttl", res->ttl,
                                    &cerr)
                 : (ce_event_unset(reply, "knativebrokerttl"), CE_OK);
    if (rc == CE_OK && kn_event_stamp(reply, arrival, &cerr) != CE_OK) {
        atomic_fetch_add(&t->stats->ttl_exhausted, 1);
        KN_WARN(KN_DISP, "trigger %s: reply dropped: %s; the original event "
                "(offset %llu) is dead-lettered", t->cfg->key, cerr.msg,
                (unsigned long long)e->offset);
        ce_event_unref(reply);
        /* 400: what the ingress answers for an exhausted TTL */
        kn_outcome_dead_letter(e, "ttl", 400, cerr.msg, NULL, 0);
        return;
    }
    if (rc != CE_OK) {
        ce_event_unref(reply);
        reply_failed(e, KN_NOMEM);
        return;
    }
    ce_event_freeze(reply);
    append_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        ce_event_unref(reply);
        reply_failed(e, KN_NOMEM);
        return;
    }
    ctx->e = e;
    e->state = KN_E_STORING;
    track(t, 1);
    rc = kn_channel_append(t->chan->ch, &reply, 1, reply_appended, ctx);
    ce_event_unref(reply);
    if (rc != KN_OK) {
        track(t, -1);
        free(ctx);
        reply_failed(e, rc);
    }
}

/* ------------------------------------------------------- results */

static void subscriber_result(kn_entry *e, const kn_delivery_result *res)
{
    kn_trig *t = e->t;
    kn_tstats *s = t->stats;
    kn_tstats_response(s, res->http_code);
    if (res->attempts > 1)
        atomic_fetch_add(&s->retries, (uint64_t)(res->attempts - 1));
    switch (res->status) {
    case KN_DELIVERY_DELIVERED:
        atomic_fetch_add(&s->delivered, 1);
        kn_tstats_latency(s, kn_now_wall_ns() - e->ts_ns);
        if (res->reply)
            store_reply(e, res->reply, res);
        else
            kn_entry_done(e);
        return;
    case KN_DELIVERY_DEAD_LETTERED:
        atomic_fetch_add(&s->dead_sink, 1);
        kn_entry_done(e);
        break;
    case KN_DELIVERY_FAILED:
        kn_outcome_dead_letter(e, res->dls_attempts ? "dead-letter-sink"
                                                    : "delivery",
                               res->error_code, res->error, res->error_data,
                               res->error_data_len);
        break;
    case KN_DELIVERY_CANCELLED:
        break;
    }
    if (res->reply)
        ce_event_unref(res->reply);
}

static void dls_result(kn_entry *e, const kn_delivery_result *res)
{
    kn_trig *t = e->t;
    if (res->reply)
        ce_event_unref(res->reply); /* a DLS's reply is not routed */
    if (res->status == KN_DELIVERY_DELIVERED) {
        atomic_fetch_add(&t->stats->dead_sink, 1);
        e->phase = KN_PH_SUB;
        kn_entry_done(e);
        return;
    }
    char msg[600];
    snprintf(msg, sizeof msg, "dead-letter sink %.300s: %.280s",
             t->cfg->dls, res->error);
    kn_dlq_meta m = {.trigger = t->cfg->name, .reason = "dead-letter-sink",
                     .code = res->error_code, .error = msg,
                     .dest = t->cfg->dls, .data = res->error_data,
                     .data_len = res->error_data_len, .offset = e->offset};
    dlq_store(e, &m);
}

void kn_outcome_result(const kn_delivery_result *res, void *arg)
{
    kn_entry *e = arg;
    kn_trig *t = e->t;
    e->h = NULL;
    t->inflight--;
    track(t, -1);
    if (res->status == KN_DELIVERY_CANCELLED) {
        e->state = KN_E_READY; /* not done: stays below the commit point */
        if (res->reply)
            ce_event_unref(res->reply);
        after(t);
        return;
    }
    if (e->phase == KN_PH_DLS)
        dls_result(e, res);
    else
        subscriber_result(e, res);
    after(t);
}
