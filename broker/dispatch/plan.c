/*
 * The reconciler side of the dispatcher (under the server mutex): for
 * every Trigger in the desired state it resolves the subscriber and the
 * dead-letter sink (uri, or a ref to a Broker → its ingress URL, plus a
 * relative uri), picks the delivery spec (the trigger's, else the
 * broker's, else the defaults; as a whole), compiles the filter, computes
 * the status conditions, opens the cursors the loop will need (disk work
 * stays off the loop), and hands the plan to the loop, waiting until the
 * loop has applied it. Deleted triggers get their stored position deleted
 * afterwards.
 *
 * It keeps a mirror of what the loop runs (kn_rtrig, kn_rfeed) to decide
 * which triggers are new, changed or gone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dispatch/dispatch_int.h"

/* ------------------------------------------------------- config */

kn_tcfg *kn_tcfg_ref(kn_tcfg *c)
{
    if (c)
        c->refs++;
    return c;
}

static void tcfg_free(kn_tcfg *c)
{
    if (!c)
        return;
    free(c->url);
    free(c->dls);
    free(c->broker_url);
    kn_filter_free(c->filter);
    kn_resource_decref(c->res);
    free(c);
}

void kn_tcfg_unref(kn_tcfg *c)
{
    if (c && --c->refs <= 0)
        tcfg_free(c);
}

/* ------------------------------------------------------- plan message */

enum { P_KEEP = 0, P_UPDATE, P_CREATE };

typedef struct pitem {
    int act;
    char ns[64];
    char name[64];
    kn_tcfg *cfg;       /* UPDATE/CREATE: passed to the loop */
    kn_chanref *chan;   /* CREATE: reference */
    kn_cursor *cur;     /* CREATE */
    kn_dlq *dlq;        /* CREATE: reference */
    bool failed;        /* set by the loop: could not start it */
} pitem;

typedef struct pfeed {
    char ns[64];
    char name[64];
    kn_chanref *chan;   /* reference */
    kn_cursor *cur;
} pfeed;

typedef struct pdrop {
    kn_chanref *chan;   /* reference */
    char group[200];
} pdrop;

typedef struct plan_msg {
    kn_dispatcher *d;
    pitem *items;
    size_t n, cap;
    pfeed *feeds;
    size_t nfeeds, capfeeds;
    char (*deleted)[130];
    size_t ndeleted, capdeleted;
    pdrop *drops;
    size_t ndrops, capdrops;
} plan_msg;

/* Makes room for one more element; 0 or -1 (ENOMEM, array unchanged). */
static int grow(void *arrp, size_t n, size_t *cap, size_t elem)
{
    void **arr = arrp;
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

#define GROW(arr, n, cap) grow(&(arr), (n), &(cap), sizeof *(arr))

/* ------------------------------------------------------- mirror */

static kn_rtrig *rtrig_find(kn_dispatcher *d, const char *ns,
                            const char *name)
{
    for (size_t i = 0; i < d->nrt; i++)
        if (!strcmp(d->rt[i]->ns, ns) && !strcmp(d->rt[i]->name, name))
            return d->rt[i];
    return NULL;
}

static void cond_init(kn_rcond *c)
{
    snprintf(c->status, sizeof c->status, "Unknown");
    kn_timestamp_now(c->ltt);
}

static kn_rtrig *rtrig_get(kn_dispatcher *d, const char *ns,
                           const char *name)
{
    kn_rtrig *r = rtrig_find(d, ns, name);
    if (r)
        return r;
    kn_rtrig **grown = realloc(d->rt, (d->nrt + 1) * sizeof *grown);
    if (!grown || !(r = calloc(1, sizeof *r)))
        return NULL;
    d->rt = grown;
    snprintf(r->ns, sizeof r->ns, "%s", ns);
    snprintf(r->name, sizeof r->name, "%s", name);
    for (int i = 0; i < KN_C_N; i++)
        cond_init(&r->cond[i]);
    d->rt[d->nrt++] = r;
    return r;
}

static void rtrig_stop(kn_rtrig *r)
{
    kn_chanref_unref(r->chan);
    r->chan = NULL;
    kn_resource_decref(r->res);
    r->res = NULL;
    free(r->url);
    free(r->dls);
    r->url = r->dls = NULL;
    r->running = false;
}

static kn_rfeed *rfeed_find(kn_dispatcher *d, const char *ns,
                            const char *name)
{
    for (size_t i = 0; i < d->nrf; i++)
        if (!strcmp(d->rf[i]->ns, ns) && !strcmp(d->rf[i]->name, name))
            return d->rf[i];
    return NULL;
}

static void set_cond(kn_rcond *c, const char *status, const char *reason,
                     const char *msg)
{
    if (strcmp(c->status, status) != 0)
        kn_timestamp_now(c->ltt);
    snprintf(c->status, sizeof c->status, "%s", status);
    snprintf(c->reason, sizeof c->reason, "%s", reason);
    /* a long message is cut to the slot (precision keeps gcc -O2 quiet) */
    snprintf(c->message, sizeof c->message, "%.*s",
             (int)sizeof c->message - 1, msg);
}

static void set_str(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? strdup(v) : NULL;
}

/* ------------------------------------------------------- resolution */

/* A Destination {ref?, uri?} in namespace ns → absolute URL (malloc'd).
 * KN_NOTFOUND / KN_UNAVAILABLE with a message. */
static int resolve_dest(const json_t *dest, const char *ns,
                        const kn_store *store, const char *ingress,
                        char **out, char *msg, size_t msgn)
{
    const char *uri = json_string_value(json_object_get(dest, "uri"));
    json_t *ref = json_object_get(dest, "ref");
    *out = NULL;
    if (!ref) {
        *out = uri ? strdup(uri) : NULL;
        return *out ? KN_OK : KN_NOMEM;
    }
    const char *rns = json_string_value(json_object_get(ref, "namespace"));
    const char *rname = json_string_value(json_object_get(ref, "name"));
    rns = rns ? rns : ns;
    if (!kn_store_find(store, &kn_kind_broker, rns, rname)) {
        snprintf(msg, msgn, "broker %s/%s (ref) does not exist", rns,
                 rname);
        return KN_NOTFOUND;
    }
    if (!ingress || !*ingress) {
        snprintf(msg, msgn, "the ingress address is not known yet");
        return KN_UNAVAILABLE;
    }
    const char *sep = !uri ? "" : uri[0] == '/' ? "" : "/";
    if (asprintf(out, "%s/%s/%s%s%s", ingress, rns, rname, sep,
                 uri ? uri : "") < 0) {
        *out = NULL;
        return KN_NOMEM;
    }
    return KN_OK;
}

static uint32_t window_for(uint32_t mif)
{
    uint32_t w = mif * 2 > KN_WINDOW_MIN ? mif * 2 : KN_WINDOW_MIN, p = 1;
    while (p < w)
        p <<= 1;
    return p;
}

static kn_broker_rt *graph_find(kn_broker_rt *const *b, size_t n,
                                const char *ns, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(b[i]->ns, ns) && !strcmp(b[i]->name, name))
            return b[i];
    return NULL;
}

typedef struct sync_ctx {
    kn_dispatcher *d;
    const kn_store *store;
    kn_broker_rt *const *brokers;
    size_t n;
    const char *ingress;
    bool final;
} sync_ctx;

/* Broker part of the status. Returns the broker runtime when ready. */
static kn_broker_rt *status_broker(const sync_ctx *sc, kn_rtrig *rt,
                                   const kn_resource *r, const char *bname)
{
    char msg[256];
    kn_broker_rt *b = graph_find(sc->brokers, sc->n, r->ns, bname);
    if (!kn_store_find(sc->store, &kn_kind_broker, r->ns, bname)) {
        snprintf(msg, sizeof msg, "broker %s/%s does not exist", r->ns,
                 bname);
        set_cond(&rt->cond[KN_C_BROKER], "False", "BrokerDoesNotExist",
                 msg);
        return NULL;
    }
    if (!b || !b->chan) {
        snprintf(msg, sizeof msg, "broker %s/%s is not ready (see knit "
                 "describe broker %s -n %s)", r->ns, bname, bname, r->ns);
        set_cond(&rt->cond[KN_C_BROKER], "False", "BrokerNotReady", msg);
        return NULL;
    }
    set_cond(&rt->cond[KN_C_BROKER], "True", "", "");
    return b;
}

/* Everything of the plan except the cursor. NULL when the trigger cannot
 * run (the reason is in the conditions). */
static kn_tcfg *cfg_build(const sync_ctx *sc, kn_rtrig *rt, kn_resource *r)
{
    char msg[700];
    json_t *spec = json_object_get(r->obj, "spec");
    const char *bname = kn_trigger_broker(r);
    kn_tcfg *c = calloc(1, sizeof *c);
    kn_err err = {0};
    if (!c)
        return NULL;
    c->refs = 1;
    snprintf(c->ns, sizeof c->ns, "%s", r->ns);
    snprintf(c->name, sizeof c->name, "%s", r->name);
    snprintf(c->broker, sizeof c->broker, "%s", bname);
    snprintf(c->key, sizeof c->key, "%s/%s", r->ns, r->name);
    snprintf(c->group, sizeof c->group, "trigger.%s.%s", r->ns, r->name);
    c->res = kn_resource_incref(r);
    bool ok = status_broker(sc, rt, r, bname) != NULL;
    /* subscriber */
    int rc = resolve_dest(json_object_get(spec, "subscriber"), r->ns,
                          sc->store, sc->ingress, &c->url, msg, sizeof msg);
    if (rc == KN_OK) {
        set_cond(&rt->cond[KN_C_SUBSCRIBER], "True", "", "");
    } else {
        set_cond(&rt->cond[KN_C_SUBSCRIBER], "False", "Unresolved",
                 rc == KN_NOMEM ? "out of memory" : msg);
        ok = false;
    }
    set_str(&rt->sub_uri, c->url);
    /* delivery: the trigger's, else the broker's, as a whole */
    const kn_resource *b = kn_store_find(sc->store, &kn_kind_broker, r->ns,
                                         bname);
    json_t *delivery = json_object_get(spec, "delivery");
    const char *prefix = "spec.delivery";
    const char *dns = r->ns;
    if (!delivery && b) {
        delivery = json_object_get(json_object_get(b->obj, "spec"),
                                   "delivery");
        prefix = "broker spec.delivery";
        dns = b->ns;
    }
    kn_delivery_spec_default(&c->spec);
    if (delivery &&
        kn_delivery_spec_from_json(delivery, prefix, &c->spec, &err) !=
            KN_OK) {
        snprintf(msg, sizeof msg, "%.150s: %.500s", err.field, err.msg);
        set_cond(&rt->cond[KN_C_DLS], "False", "InvalidDelivery", msg);
        ok = false;
    } else {
        json_t *dls = json_object_get(delivery, "deadLetterSink");
        rc = dls ? resolve_dest(dls, dns, sc->store, sc->ingress, &c->dls,
                                msg, sizeof msg)
                 : KN_OK;
        if (rc != KN_OK) {
            set_cond(&rt->cond[KN_C_DLS], "False", "Unresolved",
                     rc == KN_NOMEM ? "out of memory" : msg);
            ok = false;
        } else if (dls) {
            set_cond(&rt->cond[KN_C_DLS], "True", "", "");
        } else {
            set_cond(&rt->cond[KN_C_DLS], "True",
                     "DeadLetterSinkNotConfigured",
                     "no dead-letter sink: failed events are kept in the "
                     "broker's dead-letter store (knit dlq)");
        }
    }
    c->spec.dead_letter_url = c->dls;
    set_str(&rt->dls_uri, c->dls);
    if (kn_trigger_options(r, &c->opts, &err) != KN_OK ||
        kn_filter_compile(spec, "spec", &c->filter, &err) != KN_OK) {
        snprintf(rt->dispatch_error, sizeof rt->dispatch_error,
                 "%.150s: %.500s", err.field, err.msg);
        ok = false;
    }
    c->window = window_for(c->opts.max_in_flight);
    if (sc->ingress && *sc->ingress &&
        asprintf(&c->broker_url, "%s/%s/%s", sc->ingress, r->ns, bname) < 0)
        c->broker_url = NULL;
    if (!ok) {
        tcfg_free(c);
        return NULL;
    }
    return c;
}

static void set_ready(kn_rtrig *rt)
{
    for (int i = 0; i < KN_C_READY; i++) {
        kn_rcond *c = &rt->cond[i];
        if (strcmp(c->status, "True") != 0) {
            set_cond(&rt->cond[KN_C_READY], c->status, c->reason,
                     c->message);
            return;
        }
    }
    if (rt->dispatch_error[0])
        set_cond(&rt->cond[KN_C_READY], "False", "DispatchFailed",
                 rt->dispatch_error);
    else
        set_cond(&rt->cond[KN_C_READY], "True", "", "");
}

/* ------------------------------------------------------- building */

static int open_cursor(kn_chanref *chan, const char *group,
                       const kn_seek *start, const kn_cursor_opts *opts,
                       kn_cursor **cur, kn_err *err)
{
    return chan->ch->ops->cursor_open(chan->ch, group, start, opts, cur,
                                      err);
}

/* What a trigger's cursor is told about its reader: the delivery
 * timeout of one attempt (the trigger's delivery spec, else the
 * broker's, else the default; 0 there = no timeout), max-in-flight, and
 * the window: every record the trigger may hold un-committed, in both
 * modes (ordered triggers hold the events waiting behind their key in
 * the same window, so the whole window must be available for other keys
 * to move on). */
static kn_cursor_opts cursor_opts(const kn_tcfg *cfg)
{
    int64_t t = cfg->spec.timeout_ms;
    return (kn_cursor_opts){
        .attempt_timeout_ns = t <= 0 ? -1
                              : t > INT64_MAX / 1000000 ? -1
                                                        : t * 1000000,
        .max_in_flight = cfg->opts.max_in_flight,
        .max_held = cfg->window,
    };
}

static bool same_copts(const kn_cursor_opts *a, const kn_cursor_opts *b)
{
    return a->attempt_timeout_ns == b->attempt_timeout_ns &&
           a->max_in_flight == b->max_in_flight &&
           a->max_held == b->max_held;
}

/* Makes sure the loop will have a feed for broker b. */
static int ensure_feed(sync_ctx *sc, plan_msg *m, kn_broker_rt *b,
                       kn_err *err)
{
    static const kn_seek end = {.kind = KN_SEEK_END};
    kn_dispatcher *d = sc->d;
    kn_rfeed *rf = rfeed_find(d, b->ns, b->name);
    if (rf && rf->chan == b->chan) {
        rf->seen = true;
        return KN_OK;
    }
    kn_cursor *cur = NULL;
    int rc = kn_feed_ring_capable(b->chan)
                 ? open_cursor(b->chan, KN_FEED_GROUP, &end, NULL, &cur,
                               err)
                 : KN_OK; /* partitions or gaps: triggers read alone */
    if (rc != KN_OK)
        return rc;
    if (!rf) {
        kn_rfeed **grown = realloc(d->rf, (d->nrf + 1) * sizeof *grown);
        if (!grown || !(rf = calloc(1, sizeof *rf))) {
            if (cur)
                b->chan->ch->ops->cursor_close(cur);
            return kn_err_set(err, KN_NOMEM, "out of memory");
        }
        d->rf = grown;
        d->rf[d->nrf++] = rf;
        snprintf(rf->ns, sizeof rf->ns, "%s", b->ns);
        snprintf(rf->name, sizeof rf->name, "%s", b->name);
    }
    if (GROW(m->feeds, m->nfeeds, m->capfeeds) != 0) {
        if (cur)
            b->chan->ch->ops->cursor_close(cur);
        return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    kn_chanref_unref(rf->chan);
    rf->chan = kn_chanref_ref(b->chan);
    rf->seen = true;
    pfeed *pf = &m->feeds[m->nfeeds++];
    memset(pf, 0, sizeof *pf);
    snprintf(pf->ns, sizeof pf->ns, "%s", b->ns);
    snprintf(pf->name, sizeof pf->name, "%s", b->name);
    pf->chan = kn_chanref_ref(b->chan);
    pf->cur = cur;
    return KN_OK;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* One trigger resource → a plan item (or none when it cannot run). */
static void plan_trigger(sync_ctx *sc, plan_msg *m, kn_resource *r)
{
    kn_dispatcher *d = sc->d;
    kn_rtrig *rt = rtrig_get(d, r->ns, r->name);
    if (!rt)
        return;
    rt->seen = true;
    rt->gen = json_integer_value(
        json_object_get(json_object_get(r->obj, "metadata"), "generation"));
    if (sc->final)
        rt->dispatch_error[0] = '\0';
    kn_rcond saved[KN_C_N];
    memcpy(saved, rt->cond, sizeof saved);
    kn_tcfg *cfg = cfg_build(sc, rt, r);
    if (!sc->final) /* conditions are only updated by final passes */
        memcpy(rt->cond, saved, sizeof saved);
    kn_broker_rt *b = graph_find(sc->brokers, sc->n, r->ns,
                                 kn_trigger_broker(r));
    kn_err err = {0};
    if (!cfg || !b || !b->chan || GROW(m->items, m->n, m->cap) != 0) {
        if (cfg)
            tcfg_free(cfg);
        rtrig_stop(rt);
        return;
    }
    kn_cursor_opts copts = cursor_opts(cfg);
    /* new hints reach the backend by reopening the cursor (nats: the
     * consumer's AckWait and MaxAckPending are updated then) */
    bool create = !rt->running || rt->chan != b->chan ||
                  rt->ordered != cfg->opts.ordered ||
                  rt->window != cfg->window ||
                  (b->chan->ch->ops->cursor_hints &&
                   !same_copts(&rt->copts, &copts));
    pitem *it = &m->items[m->n];
    memset(it, 0, sizeof *it);
    snprintf(it->ns, sizeof it->ns, "%s", r->ns);
    snprintf(it->name, sizeof it->name, "%s", r->name);
    if (ensure_feed(sc, m, b, &err) != KN_OK)
        goto fail;
    if (create) {
        if (open_cursor(b->chan, cfg->group, NULL, &copts, &it->cur,
                        &err) != KN_OK)
            goto fail;
        it->dlq = kn_dlq_get(d, r->ns, cfg->broker, &err);
        if (!it->dlq) {
            b->chan->ch->ops->cursor_close(it->cur);
            goto fail;
        }
        it->act = P_CREATE;
        it->chan = kn_chanref_ref(b->chan);
    } else if (!kn_resource_same(rt->res, r) || !same_str(rt->url, cfg->url)
               || !same_str(rt->dls, cfg->dls)) {
        it->act = P_UPDATE;
    } else {
        it->act = P_KEEP;
    }
    m->n++;
    if (it->act == P_KEEP) {
        tcfg_free(cfg);
    } else {
        it->cfg = cfg;
        kn_chanref_unref(rt->chan);
        rt->chan = kn_chanref_ref(b->chan);
        kn_resource_decref(rt->res);
        rt->res = kn_resource_incref(r);
        set_str(&rt->url, cfg->url);
        set_str(&rt->dls, cfg->dls);
        rt->ordered = cfg->opts.ordered;
        rt->window = cfg->window;
        rt->copts = copts;
    }
    rt->running = true;
    return;
fail:
    KN_ERROR(KN_DISP, "trigger %s/%s: cannot start: %s", r->ns, r->name,
             err.msg);
    snprintf(rt->dispatch_error, sizeof rt->dispatch_error, "%.700s",
             err.msg);
    tcfg_free(cfg);
    rtrig_stop(rt);
}

static void plan_free(plan_msg *m)
{
    for (size_t i = 0; i < m->n; i++) {
        pitem *it = &m->items[i];
        tcfg_free(it->cfg); /* not taken by the loop: still ours alone */
        if (it->cur)
            it->chan->ch->ops->cursor_close(it->cur);
        kn_chanref_unref(it->chan);
        kn_dlq_unref(it->dlq);
    }
    for (size_t i = 0; i < m->nfeeds; i++) {
        if (m->feeds[i].cur)
            m->feeds[i].chan->ch->ops->cursor_close(m->feeds[i].cur);
        kn_chanref_unref(m->feeds[i].chan);
    }
    free(m->items);
    free(m->feeds);
    free(m->deleted);
    free(m->drops);
}

/* ------------------------------------------------------- the loop side */

static kn_feed *loop_feed(kn_dispatcher *d, const kn_chanref *chan)
{
    for (kn_feed *f = d->feeds; f; f = f->next)
        if (f->chan == chan)
            return f;
    return NULL;
}

static bool is_deleted(const plan_msg *m, const char *key)
{
    for (size_t i = 0; i < m->ndeleted; i++)
        if (strcmp(m->deleted[i], key) == 0)
            return true;
    return false;
}

static void drop_group(plan_msg *m, kn_chanref *chan, const char *group)
{
    if (GROW(m->drops, m->ndrops, m->capdrops) != 0)
        return;
    pdrop *p = &m->drops[m->ndrops++];
    p->chan = kn_chanref_ref(chan);
    snprintf(p->group, sizeof p->group, "%s", group);
}

static void apply_items(kn_dispatcher *d, plan_msg *m, kn_tcfg **old,
                        size_t *nold)
{
    for (size_t i = 0; i < m->n; i++) {
        pitem *it = &m->items[i];
        kn_trig *t = kn_disp_find(d, it->ns, it->name);
        if (it->act != P_CREATE && !t) {
            it->failed = true; /* an earlier start failed */
        } else if (it->act == P_UPDATE) {
            old[(*nold)++] = t->cfg;
            t->cfg = it->cfg; /* the reference passes to the trigger */
            it->cfg = NULL;
        } else if (it->act == P_CREATE) {
            if (t)
                kn_trig_zombify(t, true);
            kn_feed *f = loop_feed(d, it->chan);
            kn_trig *nt = f ? kn_trig_new(d, it->cfg, f, it->chan, it->dlq,
                                          it->cur)
                            : NULL;
            if (!nt) {
                it->failed = true; /* plan_free closes the cursor */
                continue;
            }
            it->cur = NULL;
            kn_tcfg_unref(it->cfg); /* the trigger took its own */
            it->cfg = NULL;
        }
    }
}

static bool in_items(const plan_msg *m, const kn_trig *t)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->items[i].ns, t->cfg->ns) &&
            !strcmp(m->items[i].name, t->cfg->name))
            return true;
    return false;
}

void kn_disp_apply_plan(kn_sink_client *c, void *arg)
{
    plan_msg *m = arg;
    kn_dispatcher *d = m->d;
    (void)c;
    for (size_t i = 0; i < m->nfeeds; i++) {
        pfeed *pf = &m->feeds[i];
        kn_feed *f = kn_feed_new(d, pf->ns, pf->name, pf->chan, pf->cur);
        if (f) {
            pf->cur = NULL;
            f->next = d->feeds;
            d->feeds = f;
        }
    }
    kn_tcfg **old = calloc(m->n + 1, sizeof *old);
    size_t nold = 0;
    if (!old) {
        KN_ERROR(KN_DISP, "out of memory applying a trigger plan");
        return;
    }
    /* Triggers not in the plan go first (their feed index changes). */
    for (kn_trig *t = d->trigs, *next; t; t = next) {
        next = t->next;
        if (in_items(m, t))
            continue;
        bool deleted = is_deleted(m, t->cfg->key);
        if (deleted)
            drop_group(m, t->chan, t->cfg->group);
        kn_trig_zombify(t, !deleted);
    }
    apply_items(d, m, old, &nold);
    for (kn_feed **pp = &d->feeds; *pp;) {
        kn_feed *f = *pp;
        if (f->trigs) {
            kn_feed_reindex(f);
            pp = &f->next;
            continue;
        }
        *pp = f->next;
        kn_feed_free(f); /* deletes its group */
    }
    for (size_t i = 0; i < nold; i++)
        kn_tcfg_unref(old[i]);
    free(old);
    kn_disp_reap(d);
    for (kn_trig *t = d->trigs; t; t = t->next)
        kn_trig_pump(t);
}

/* ------------------------------------------------------- sync */

void kn_dispatcher_sync(kn_dispatcher *d, const kn_store *store,
                        kn_broker_rt *const *brokers, size_t n,
                        const char *ingress_url, bool final)
{
    if (!d || atomic_load(&d->stopped))
        return;
    sync_ctx sc = {d, store, brokers, n, ingress_url, final};
    plan_msg m = {.d = d};
    for (size_t i = 0; i < d->nrt; i++)
        d->rt[i]->seen = false;
    for (size_t i = 0; i < d->nrf; i++)
        d->rf[i]->seen = false;
    for (size_t i = 0; i < kn_store_count(store); i++) {
        kn_resource *r = kn_store_at(store, i);
        if (r->kind == &kn_kind_trigger)
            plan_trigger(&sc, &m, r);
    }
    for (size_t i = 0; i < d->nrt;) {
        kn_rtrig *rt = d->rt[i];
        if (rt->seen) {
            if (final)
                set_ready(rt);
            i++;
            continue;
        }
        if (rt->running && GROW(m.deleted, m.ndeleted, m.capdeleted) == 0)
            snprintf(m.deleted[m.ndeleted++], sizeof m.deleted[0], "%s/%s",
                     rt->ns, rt->name);
        rtrig_stop(rt);
        free(rt->sub_uri);
        free(rt->dls_uri);
        free(rt);
        d->rt[i] = d->rt[--d->nrt];
    }
    for (size_t i = 0; i < d->nrf;) {
        if (d->rf[i]->seen) {
            i++;
            continue;
        }
        kn_chanref_unref(d->rf[i]->chan);
        free(d->rf[i]);
        d->rf[i] = d->rf[--d->nrf];
    }
    if (kn_disp_call(d, kn_disp_apply_plan, &m) != KN_OK)
        KN_WARN(KN_DISP, "the dispatcher loop is gone; plan not applied");
    for (size_t i = 0; i < m.n; i++) {
        kn_rtrig *rt = m.items[i].failed
                           ? rtrig_find(d, m.items[i].ns, m.items[i].name)
                           : NULL;
        if (!rt)
            continue;
        KN_ERROR(KN_DISP, "trigger %s/%s: cannot start (out of memory)",
                 rt->ns, rt->name);
        snprintf(rt->dispatch_error, sizeof rt->dispatch_error,
                 "the dispatcher could not start it (out of memory)");
        rtrig_stop(rt);
        if (final)
            set_ready(rt);
    }
    for (size_t i = 0; i < m.ndrops; i++) {
        pdrop *p = &m.drops[i];
        int rc = p->chan->ch->ops->cursor_delete(p->chan->ch, p->group);
        if (rc != KN_OK && rc != KN_NOTFOUND)
            KN_WARN(KN_DISP, "cannot delete the position of %s: %s",
                    p->group, kn_status_str(rc));
        kn_chanref_unref(p->chan);
    }
    plan_free(&m);
}

/* ------------------------------------------------------- status */

static json_t *cond_json(const char *type, const kn_rcond *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", type, "status",
                     c->status, "reason", c->reason, "message", c->message,
                     "lastTransitionTime", c->ltt);
}

json_t *kn_dispatcher_trigger_status(kn_dispatcher *d, const kn_resource *r)
{
    static const char *const types[KN_C_N] = {
        "BrokerReady", "SubscriberResolved", "DeadLetterSinkResolved",
        "Ready"};
    kn_rtrig *rt = d ? rtrig_find(d, r->ns, r->name) : NULL;
    json_t *st = json_object(), *conds = json_array();
    if (!st || !conds) {
        json_decref(st);
        json_decref(conds);
        return NULL;
    }
    for (int i = 0; i < KN_C_N; i++) {
        kn_rcond unknown = {.status = "Unknown", .reason = "Reconciling"};
        json_array_append_new(conds, cond_json(types[i],
                                               rt ? &rt->cond[i] : &unknown));
    }
    if (rt) {
        json_object_set_new(st, "observedGeneration",
                            json_integer(rt->gen));
        if (rt->sub_uri)
            json_object_set_new(st, "subscriberUri",
                                json_string(rt->sub_uri));
        if (rt->dls_uri)
            json_object_set_new(st, "deadLetterSinkUri",
                                json_string(rt->dls_uri));
    }
    json_object_set_new(st, "conditions", conds);
    return st;
}
