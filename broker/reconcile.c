/*
 * The reconciler: drives the running state (one open channel per Broker)
 * to the desired state in the store, keeps each resource's status
 * conditions, and publishes an immutable lookup graph for the ingress.
 *
 * Threads and locks:
 * - srv->mu serialises every change (apply, delete, resync, load) and
 *   guards the store and the slots (status). Taken by admin threads and
 *   the main thread; never by the ingress.
 * - srv->glock (rwlock) guards only the graph pointer. The ingress takes
 *   it for reading, finds a broker and takes a reference on its
 *   kn_broker_rt, so a swap never waits for requests and a request never
 *   sees a half-built graph.
 * - A channel is shared through kn_chanref; it closes when the last
 *   holder lets go. Reopening a broker's channel (settings changed) first
 *   publishes a graph without it (the ingress answers 503), waits for the
 *   old channel to close, then opens the new one.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/dispatch/dispatch.h"

/* ------------------------------------------------------ chanref */

static pthread_mutex_t chan_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t chan_cv = PTHREAD_COND_INITIALIZER;

kn_chanref *kn_chanref_ref(kn_chanref *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

static void chanref_destroy(kn_chanref *c)
{
    kn_channel_close(c->ch);
    json_decref(c->settings);
    free(c);
}

void kn_chanref_unref(kn_chanref *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (atomic_load(&c->closing)) {
        /* The reconciler waits for us in chanref_release_wait. */
        pthread_mutex_lock(&chan_mu);
        pthread_cond_broadcast(&chan_cv);
        pthread_mutex_unlock(&chan_mu);
        return;
    }
    chanref_destroy(c);
}

/* Drops the owner's reference, tells other holders (tails) to let go,
 * waits until they did, then closes the channel. */
static void chanref_release_wait(kn_chanref *c)
{
    atomic_store(&c->closing, true);
    if (atomic_fetch_sub(&c->refs, 1) != 1) {
        int64_t start = kn_now_mono_ms(), warned = start;
        pthread_mutex_lock(&chan_mu);
        while (atomic_load(&c->refs) > 0) {
            struct timespec ts;
            kn_deadline_ms(&ts, CLOCK_REALTIME, 200);
            pthread_cond_timedwait(&chan_cv, &chan_mu, &ts);
            if (kn_now_mono_ms() - warned > 5000) {
                warned = kn_now_mono_ms();
                KN_WARN("reconcile", "still waiting for %d users of %s",
                        atomic_load(&c->refs), c->path);
            }
        }
        pthread_mutex_unlock(&chan_mu);
    }
    chanref_destroy(c);
}

/* ------------------------------------------------------ broker rt */

void kn_broker_rt_unref(kn_broker_rt *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    kn_chanref_unref(b->chan);
    free(b);
}

static kn_broker_rt *broker_rt_ref(kn_broker_rt *b)
{
    atomic_fetch_add(&b->refs, 1);
    return b;
}

/* ------------------------------------------------------ server */

typedef struct kn_graph {
    kn_broker_rt **b; /* sorted by ns, name */
    size_t n;
} kn_graph;

/* Reconciler bookkeeping of one Broker (guarded by srv->mu). */
typedef struct kn_slot {
    char ns[64];
    char name[64];
    kn_chanref *chan;           /* the server's reference, or NULL */
    kn_broker_plan plan;        /* of the current pass */
    bool plan_ok;
    bool reopen;                /* open a channel in this pass */
    bool retry;                 /* open failed: retry on resync */
    bool seen;
    json_int_t observed_gen;
    char status[8];             /* "True" "False" "Unknown" */
    char reason[64];
    char message[512];
    char ltt[CE_TIME_MAX];
} kn_slot;

struct kn_server {
    char *data_dir;
    pthread_mutex_t mu;
    kn_store *store;
    kn_slot **slots;
    size_t nslots;
    pthread_rwlock_t glock;
    kn_graph *graph;
    atomic_bool loaded;
    atomic_bool channels_ok;
    char ingress_url[160];
    kn_dispatcher *disp;        /* triggers (broker/dispatch/) */
};

static void graph_free(kn_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        kn_broker_rt_unref(g->b[i]);
    free(g->b);
    free(g);
}

static int rt_cmp(const char *ns, const char *name, const kn_broker_rt *b)
{
    int c = strcmp(ns, b->ns);
    return c ? c : strcmp(name, b->name);
}

kn_broker_rt *kn_server_broker(kn_server *srv, const char *ns,
                               const char *name)
{
    kn_broker_rt *found = NULL;
    pthread_rwlock_rdlock(&srv->glock);
    kn_graph *g = srv->graph;
    size_t lo = 0, hi = g ? g->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = rt_cmp(ns, name, g->b[mid]);
        if (c == 0) {
            found = broker_rt_ref(g->b[mid]);
            break;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    pthread_rwlock_unlock(&srv->glock);
    return found;
}

static void graph_publish(kn_server *srv, kn_graph *g)
{
    pthread_rwlock_wrlock(&srv->glock);
    kn_graph *old = srv->graph;
    srv->graph = g;
    pthread_rwlock_unlock(&srv->glock);
    graph_free(old);
}

/* ------------------------------------------------------ conditions */

static void set_ready(kn_slot *s, const char *status, const char *reason,
                      const char *message)
{
    bool changed = strcmp(s->status, status) != 0;
    if (changed || strcmp(s->reason, reason) != 0 ||
        strcmp(s->message, message) != 0) {
        if (strcmp(status, "True") == 0)
            KN_INFO("reconcile", "broker %s/%s: Ready %s -> %s", s->ns,
                    s->name, s->status, status);
        else
            KN_WARN("reconcile", "broker %s/%s: Ready %s -> %s (%s: %s)",
                    s->ns, s->name, s->status, status, reason, message);
    }
    if (changed)
        kn_timestamp_now(s->ltt);
    snprintf(s->status, sizeof s->status, "%s", status);
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    snprintf(s->message, sizeof s->message, "%s", message);
}

static kn_slot *slot_find(kn_server *srv, const char *ns, const char *name)
{
    for (size_t i = 0; i < srv->nslots; i++)
        if (strcmp(srv->slots[i]->ns, ns) == 0 &&
            strcmp(srv->slots[i]->name, name) == 0)
            return srv->slots[i];
    return NULL;
}

static kn_slot *slot_get(kn_server *srv, const char *ns, const char *name)
{
    kn_slot *s = slot_find(srv, ns, name);
    if (s)
        return s;
    kn_slot **grown = realloc(srv->slots, (srv->nslots + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    srv->slots = grown;
    if (!(s = calloc(1, sizeof *s)))
        return NULL;
    snprintf(s->ns, sizeof s->ns, "%s", ns);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->status, sizeof s->status, "Unknown");
    snprintf(s->reason, sizeof s->reason, "Reconciling");
    kn_timestamp_now(s->ltt);
    srv->slots[srv->nslots++] = s;
    return s;
}

static void slot_remove(kn_server *srv, size_t i)
{
    kn_slot *s = srv->slots[i];
    kn_broker_plan_free(&s->plan);
    free(s);
    memmove(srv->slots + i, srv->slots + i + 1,
            (srv->nslots - i - 1) * sizeof *srv->slots);
    srv->nslots--;
}

/* ------------------------------------------------------ reconcile */

/* Works out the plan of one broker and whether its channel must be
 * (re)opened or closed. */
static void plan_broker(kn_server *srv, kn_slot *s, const kn_resource *b)
{
    char cns[64], cname[64];
    const kn_resource *cm = NULL;
    kn_broker_plan_free(&s->plan);
    s->seen = true;
    s->reopen = false;
    s->observed_gen = json_integer_value(
        json_object_get(json_object_get(b->obj, "metadata"), "generation"));
    if (kn_broker_config_ref(b, cns, sizeof cns, cname, sizeof cname)) {
        cm = kn_store_find(srv->store, &kn_kind_configmap, cns, cname);
        if (!cm) {
            memset(&s->plan, 0, sizeof s->plan);
            snprintf(s->plan.reason, sizeof s->plan.reason,
                     "ConfigNotFound");
            snprintf(s->plan.message, sizeof s->plan.message,
                     "ConfigMap %s/%s (spec.config) does not exist", cns,
                     cname);
            s->plan_ok = false;
            return;
        }
    }
    s->plan_ok = kn_broker_plan_make(b, cm, &s->plan) == KN_OK;
    if (!s->plan_ok)
        return;
    if (s->chan && strcmp(s->chan->backend, s->plan.backend) == 0 &&
        json_equal(s->chan->settings, s->plan.settings))
        return; /* keep the open channel */
    s->reopen = true;
}

static kn_broker_rt *rt_new(const kn_slot *s, bool with_chan)
{
    kn_broker_rt *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    atomic_init(&rt->refs, 1);
    snprintf(rt->ns, sizeof rt->ns, "%s", s->ns);
    snprintf(rt->name, sizeof rt->name, "%s", s->name);
    rt->max_event_size = s->plan_ok ? s->plan.max_event_size
                                    : KN_DEFAULT_MAX_EVENT_SIZE;
    rt->decode_flags = s->plan_ok ? s->plan.decode_flags : 0;
    rt->stats = kn_metrics_broker(s->ns, s->name);
    if (with_chan && s->chan)
        rt->chan = kn_chanref_ref(s->chan);
    return rt;
}

static int slot_cmp(const void *a, const void *b)
{
    const kn_slot *x = *(kn_slot *const *)a;
    const kn_slot *y = *(kn_slot *const *)b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

/* Builds a graph of every seen slot; channels are included only for
 * slots that keep theirs (final = true: all open ones). */
static kn_graph *graph_build(kn_server *srv, bool final)
{
    kn_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->b = calloc(srv->nslots + 1, sizeof *g->b);
    if (!g->b) {
        free(g);
        return NULL;
    }
    if (srv->nslots > 1)
        qsort(srv->slots, srv->nslots, sizeof *srv->slots, slot_cmp);
    for (size_t i = 0; i < srv->nslots; i++) {
        kn_slot *s = srv->slots[i];
        if (!s->seen)
            continue;
        bool keep = final || (s->plan_ok && !s->reopen);
        kn_broker_rt *rt = rt_new(s, keep);
        if (rt)
            g->b[g->n++] = rt;
    }
    return g;
}

/* The message of a channel open that failed on a setting: the backend
 * says "setting K: problem"; name where K came from (ConfigMap key or
 * annotation) instead. */
static void config_error_message(const kn_slot *s, const kn_err *err,
                                 char *msg, size_t n)
{
    const char *field = err->field;
    const char *src = field[0] && s->plan.sources
                          ? json_string_value(
                                json_object_get(s->plan.sources, field))
                          : NULL;
    char prefix[200];
    snprintf(prefix, sizeof prefix, "setting %s: ", field);
    const char *rest = err->msg;
    if (field[0] && strncmp(rest, prefix, strlen(prefix)) == 0)
        rest += strlen(prefix);
    if (src)
        snprintf(msg, n, "%.190s: %.380s", src, rest);
    else if (field[0] && s->plan.config[0])
        snprintf(msg, n, "%.150s key %.100s: %.300s", s->plan.config, field,
                 rest);
    else if (field[0])
        snprintf(msg, n, "%.380s (set %.100s in the ConfigMap named by "
                 "spec.config)", err->msg, field);
    else
        snprintf(msg, n, "%.500s", err->msg);
}

static void open_channel(kn_server *srv, kn_slot *s)
{
    char dir[4096];
    kn_err err = {0};
    kn_channel *ch = NULL;
    snprintf(dir, sizeof dir, "%s/brokers/%s/%s", srv->data_dir, s->ns,
             s->name);
    kn_channel_config cfg = {.ns = s->ns, .name = s->name, .data_dir = dir,
                             .settings = s->plan.settings};
    int rc = kn_channel_open(s->plan.backend, &cfg, &ch, &err);
    kn_chanref *c = rc == KN_OK ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        char msg[600];
        if (rc == KN_OK)
            kn_channel_close(ch);
        if (rc == KN_INVAL) {
            /* A bad setting: retrying cannot help; applying a fixed
             * ConfigMap or broker reconciles again. */
            config_error_message(s, &err, msg, sizeof msg);
            set_ready(s, "False", "InvalidConfig", msg);
            s->retry = false;
            return;
        }
        kn_err_str(&err, msg, sizeof msg);
        set_ready(s, "False", "ChannelOpenFailed",
                  rc == KN_OK ? "out of memory" : msg);
        s->retry = true;
        return;
    }
    atomic_init(&c->refs, 1);
    c->ch = ch;
    c->settings = json_incref(s->plan.settings);
    snprintf(c->backend, sizeof c->backend, "%s", s->plan.backend);
    snprintf(c->path, sizeof c->path, "%s", dir);
    s->chan = c;
    s->retry = false;
}

/* Why an open channel is unhealthy, from the backend when it can say. */
static void channel_trouble(const kn_chanref *c, char *buf, size_t n)
{
    buf[0] = '\0';
    if (strcmp(c->backend, "nats") == 0)
        kn_channel_nats_reason(c->ch, buf, n);
    else if (strcmp(c->backend, "kafka") == 0)
        kn_channel_kafka_reason(c->ch, buf, n);
    if (!buf[0])
        snprintf(buf, n, "the %s channel cannot store events", c->backend);
}

/* Health of an open channel → the Ready condition: a channel that is
 * open but cannot store (backend unreachable, disk full) makes the broker
 * not Ready with reason BackendUnavailable; the ingress answers 503 for it
 * (its appends fail) and both flip back on their own once the backend is
 * back. Returns whether it is healthy. The stats call may talk to the
 * backend (bounded by the backend). */
static bool slot_health(kn_slot *s, const kn_channel_stats *st,
                        const char *trouble)
{
    if (st->healthy) {
        set_ready(s, "True", "ChannelOpen", "");
        return true;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s; the ingress answers 503 until it "
             "recovers (retried automatically)", trouble);
    set_ready(s, "False", "BackendUnavailable", msg);
    return false;
}

static bool check_health(kn_slot *s)
{
    kn_channel_stats st = {0};
    char trouble[400] = "";
    s->chan->ch->ops->stats(s->chan->ch, &st);
    if (!st.healthy)
        channel_trouble(s->chan, trouble, sizeof trouble);
    return slot_health(s, &st, trouble);
}

/* Closes the channels of slots that lose theirs in this pass; the
 * intermediate graph without them must already be published. */
static void close_dropped(kn_server *srv)
{
    for (size_t i = 0; i < srv->nslots; i++) {
        kn_slot *s = srv->slots[i];
        bool drop = !s->seen || !s->plan_ok || s->reopen;
        if (!s->chan || !drop)
            continue;
        KN_INFO("reconcile", "broker %s/%s: closing channel %s", s->ns,
                s->name, s->chan->path);
        chanref_release_wait(s->chan);
        s->chan = NULL;
    }
}

/* Hands the triggers and graph g to the dispatcher. Caller holds srv->mu
 * (the graph pointer only changes under it). */
static void sync_dispatcher_graph(kn_server *srv, kn_graph *g, bool final)
{
    kn_dispatcher_sync(srv->disp, srv->store, g ? g->b : NULL, g ? g->n : 0,
                       srv->ingress_url, final);
}

/* The same with the published graph. */
static void sync_dispatcher(kn_server *srv, bool final)
{
    sync_dispatcher_graph(srv, srv->graph, final);
}

/* One pass: desired brokers in the store → open channels + graph.
 * Caller holds srv->mu. */
static void reconcile(kn_server *srv)
{
    for (size_t i = 0; i < srv->nslots; i++)
        srv->slots[i]->seen = false;
    for (size_t i = 0; i < kn_store_count(srv->store); i++) {
        kn_resource *r = kn_store_at(srv->store, i);
        if (r->kind != &kn_kind_broker)
            continue;
        kn_slot *s = slot_get(srv, r->ns, r->name);
        if (s)
            plan_broker(srv, s, r);
    }
    graph_publish(srv, graph_build(srv, false));
    sync_dispatcher(srv, false); /* lets go of channels about to close */
    close_dropped(srv);
    bool ok = true;
    for (size_t i = 0; i < srv->nslots;) {
        kn_slot *s = srv->slots[i];
        if (!s->seen) {
            KN_INFO("reconcile", "broker %s/%s: deleted", s->ns, s->name);
            slot_remove(srv, i);
            continue;
        }
        if (!s->plan_ok) {
            s->retry = false;
            set_ready(s, "False", s->plan.reason, s->plan.message);
        } else {
            if (s->reopen)
                open_channel(srv, s);
            if (s->chan)
                ok &= check_health(s);
        }
        ok &= !s->retry;
        i++;
    }
    /* The triggers' cursors open (new groups at the channel's end) before
     * the ingress can append to a new channel, so an event posted right
     * after a broker appears or changes class reaches its triggers. */
    kn_graph *g = graph_build(srv, true);
    sync_dispatcher_graph(srv, g, true);
    graph_publish(srv, g);
    atomic_store(&srv->channels_ok, ok);
}

/* ------------------------------------------------------ lifecycle */

int kn_server_new(const kn_serve_opts *o, kn_server **out, kn_err *err)
{
    kn_server *srv = calloc(1, sizeof *srv);
    if (!srv || !(srv->data_dir = strdup(o->data_dir))) {
        free(srv);
        return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    pthread_mutex_init(&srv->mu, NULL);
    /* Lookups are short and constant under load; prefer the (rare)
     * writer so a graph swap is never starved. */
    pthread_rwlockattr_t ga;
    pthread_rwlockattr_init(&ga);
    pthread_rwlockattr_setkind_np(&ga,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&srv->glock, &ga);
    pthread_rwlockattr_destroy(&ga);
    int rc = kn_store_open(srv->data_dir, &srv->store, err);
    if (rc == KN_OK)
        rc = kn_dispatcher_new(srv->data_dir, &srv->disp, err);
    if (rc != KN_OK) {
        kn_server_free(srv);
        return rc;
    }
    *out = srv;
    return KN_OK;
}

int kn_server_load(kn_server *srv, kn_err *err)
{
    (void)err;
    pthread_mutex_lock(&srv->mu);
    KN_INFO("reconcile", "loaded %zu resources from %s/resources",
            kn_store_count(srv->store), srv->data_dir);
    reconcile(srv);
    pthread_mutex_unlock(&srv->mu);
    return KN_OK;
}

void kn_server_set_loaded(kn_server *srv)
{
    atomic_store(&srv->loaded, true);
}

/* One channel's health, sampled without srv->mu (stats may talk to the
 * backend). */
typedef struct health_probe {
    char ns[64];
    char name[64];
    kn_chanref *chan;
    kn_channel_stats st;
    char trouble[400];
} health_probe;

/* Samples the health of every open channel and updates the brokers'
 * Ready conditions (and /readyz). Main thread. */
static void resync_health(kn_server *srv)
{
    health_probe *hp = NULL;
    size_t n = 0;
    pthread_mutex_lock(&srv->mu);
    if (srv->nslots && (hp = calloc(srv->nslots, sizeof *hp)) != NULL) {
        for (size_t i = 0; i < srv->nslots; i++) {
            kn_slot *s = srv->slots[i];
            if (!s->chan)
                continue;
            snprintf(hp[n].ns, sizeof hp[n].ns, "%s", s->ns);
            snprintf(hp[n].name, sizeof hp[n].name, "%s", s->name);
            hp[n++].chan = kn_chanref_ref(s->chan);
        }
    }
    pthread_mutex_unlock(&srv->mu);
    for (size_t i = 0; i < n; i++) {
        kn_channel *ch = hp[i].chan->ch;
        ch->ops->stats(ch, &hp[i].st);
        if (!hp[i].st.healthy)
            channel_trouble(hp[i].chan, hp[i].trouble,
                            sizeof hp[i].trouble);
    }
    pthread_mutex_lock(&srv->mu);
    for (size_t i = 0; i < n; i++) {
        kn_slot *s = slot_find(srv, hp[i].ns, hp[i].name);
        if (s && s->chan == hp[i].chan)
            slot_health(s, &hp[i].st, hp[i].trouble);
    }
    bool ok = true;
    for (size_t i = 0; i < srv->nslots; i++) {
        kn_slot *s = srv->slots[i];
        ok &= !s->retry &&
              (!s->chan || strcmp(s->reason, "BackendUnavailable") != 0);
    }
    atomic_store(&srv->channels_ok, ok);
    pthread_mutex_unlock(&srv->mu);
    for (size_t i = 0; i < n; i++)
        kn_chanref_unref(hp[i].chan);
    free(hp);
}

void kn_server_resync(kn_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    bool retry = false;
    for (size_t i = 0; i < srv->nslots; i++)
        retry |= srv->slots[i]->retry;
    if (retry)
        reconcile(srv);
    pthread_mutex_unlock(&srv->mu);
    resync_health(srv);
}

void kn_server_close_channels(kn_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    kn_dispatcher_stop(srv->disp); /* commits, then lets go of channels */
    graph_publish(srv, NULL);
    for (size_t i = 0; i < srv->nslots; i++) {
        kn_slot *s = srv->slots[i];
        if (s->chan) {
            chanref_release_wait(s->chan);
            s->chan = NULL;
        }
    }
    atomic_store(&srv->channels_ok, false);
    pthread_mutex_unlock(&srv->mu);
}

void kn_server_free(kn_server *srv)
{
    if (!srv)
        return;
    kn_server_close_channels(srv);
    kn_dispatcher_free(srv->disp);
    while (srv->nslots)
        slot_remove(srv, srv->nslots - 1);
    free(srv->slots);
    kn_store_close(srv->store);
    pthread_rwlock_destroy(&srv->glock);
    pthread_mutex_destroy(&srv->mu);
    free(srv->data_dir);
    free(srv);
}

kn_dispatcher *kn_server_dispatcher(kn_server *srv)
{
    return srv->disp;
}

bool kn_server_ready(kn_server *srv)
{
    return atomic_load(&srv->loaded) && atomic_load(&srv->channels_ok);
}

void kn_server_set_ingress_url(kn_server *srv, const char *url)
{
    pthread_mutex_lock(&srv->mu);
    snprintf(srv->ingress_url, sizeof srv->ingress_url, "%s", url);
    pthread_mutex_unlock(&srv->mu);
}

/* ------------------------------------------------------ apply/delete */

static int parse_files(const kn_yaml_file *files, size_t n,
                       kn_resource ***out, size_t *count, kn_err *err)
{
    kn_resource **all = NULL;
    size_t nall = 0;
    int rc = KN_OK;
    for (size_t f = 0; f < n && rc == KN_OK; f++) {
        kn_resource **rs = NULL;
        size_t nr = 0;
        rc = kn_resources_parse(files[f].name, files[f].buf, files[f].len,
                                &rs, &nr, err);
        if (rc != KN_OK)
            break;
        kn_resource **grown = realloc(all, (nall + nr + 1) * sizeof *all);
        if (!grown) {
            kn_resources_free(rs, nr);
            rc = kn_err_set(err, KN_NOMEM, "out of memory");
            break;
        }
        all = grown;
        memcpy(all + nall, rs, nr * sizeof *rs);
        nall += nr;
        free(rs);
    }
    if (rc == KN_OK)
        rc = kn_resources_check_dups(all, nall, err);
    if (rc != KN_OK) {
        kn_resources_free(all, nall);
        return rc;
    }
    *out = all;
    *count = nall;
    return KN_OK;
}

static json_t *results_json(kn_resource **rs, size_t n,
                            const kn_apply_action *acts)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:s, s:s}", "apiVersion",
                            rs[i]->kind->api_version, "kind",
                            rs[i]->kind->kind, "namespace", rs[i]->ns,
                            "name", rs[i]->name, "action",
                            kn_apply_action_str(acts[i])));
    return list;
}

static void log_results(kn_resource **rs, size_t n,
                        const kn_apply_action *acts)
{
    for (size_t i = 0; i < n; i++)
        if (acts[i] != KN_ACT_UNCHANGED && acts[i] != KN_ACT_NOT_FOUND)
            KN_INFO("reconcile", "%s %s/%s %s", rs[i]->kind->kind,
                    rs[i]->ns, rs[i]->name, kn_apply_action_str(acts[i]));
}

static int change(kn_server *srv, const kn_yaml_file *files, size_t n,
                  bool del, json_t **results, kn_err *err)
{
    kn_resource **rs = NULL;
    size_t nr = 0;
    int rc = parse_files(files, n, &rs, &nr, err);
    if (rc != KN_OK)
        return rc;
    kn_apply_action *acts = calloc(nr + 1, sizeof *acts);
    if (!acts) {
        kn_resources_free(rs, nr);
        return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&srv->mu);
    for (size_t i = 0; !del && rc == KN_OK && i < nr; i++)
        rc = kn_trigger_check_update(
            kn_store_find(srv->store, rs[i]->kind, rs[i]->ns, rs[i]->name),
            rs[i], err);
    if (rc == KN_OK)
        rc = del ? kn_store_delete(srv->store, rs, nr, acts, err)
                 : kn_store_apply(srv->store, rs, nr, acts, err);
    if (rc == KN_OK) {
        log_results(rs, nr, acts);
        reconcile(srv);
    }
    pthread_mutex_unlock(&srv->mu);
    if (rc == KN_OK && results)
        *results = results_json(rs, nr, acts);
    free(acts);
    kn_resources_free(rs, nr);
    return rc;
}

int kn_server_apply(kn_server *srv, const kn_yaml_file *files, size_t n,
                    json_t **results, kn_err *err)
{
    return change(srv, files, n, false, results, err);
}

int kn_server_delete(kn_server *srv, const kn_yaml_file *files, size_t n,
                     json_t **results, kn_err *err)
{
    return change(srv, files, n, true, results, err);
}

static int yaml_name(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    if (d->d_name[0] == '.')
        return 0;
    return (n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(d->d_name + n - 4, ".yml") == 0);
}

int kn_server_apply_dir(kn_server *srv, const char *dir, json_t **results,
                        kn_err *err)
{
    struct dirent **names = NULL;
    int nn = scandir(dir, &names, yaml_name, alphasort);
    if (nn < 0)
        return kn_err_set(err, KN_IO, "%s: %s", dir, strerror(errno));
    kn_yaml_file *files = calloc((size_t)nn + 1, sizeof *files);
    ce_buf *bufs = calloc((size_t)nn + 1, sizeof *bufs);
    char **paths = calloc((size_t)nn + 1, sizeof *paths);
    int rc = files && bufs && paths ? KN_OK
                                    : kn_err_set(err, KN_NOMEM, "no memory");
    for (int i = 0; rc == KN_OK && i < nn; i++) {
        if (asprintf(&paths[i], "%s/%s", dir, names[i]->d_name) < 0) {
            paths[i] = NULL;
            rc = kn_err_set(err, KN_NOMEM, "out of memory");
            break;
        }
        rc = kn_read_file(paths[i], &bufs[i], err);
        files[i] = (kn_yaml_file){paths[i], bufs[i].data ? bufs[i].data : "",
                                  bufs[i].len};
    }
    if (rc == KN_OK)
        rc = kn_server_apply(srv, files, (size_t)nn, results, err);
    for (int i = 0; i < nn; i++) {
        if (bufs)
            ce_buf_free(&bufs[i]);
        if (paths)
            free(paths[i]);
        free(names[i]);
    }
    free(names);
    free(files);
    free(bufs);
    free(paths);
    return rc;
}

/* ------------------------------------------------------ read side */

static json_t *status_json(kn_server *srv, const kn_resource *r)
{
    json_t *st = json_object();
    json_t *meta = json_object_get(r->obj, "metadata");
    json_t *gen = json_object_get(meta, "generation");
    const char *status = "True", *reason = "Stored", *msg = "";
    const char *ltt =
        json_string_value(json_object_get(meta, "creationTimestamp"));
    kn_slot *s = r->kind == &kn_kind_broker
                     ? slot_find(srv, r->ns, r->name)
                     : NULL;
    if (r->kind == &kn_kind_broker) {
        status = s ? s->status : "Unknown";
        reason = s ? s->reason : "Reconciling";
        msg = s ? s->message : "";
        ltt = s ? s->ltt : ltt;
        if (s && strcmp(s->status, "True") == 0 && srv->ingress_url[0]) {
            char url[512];
            snprintf(url, sizeof url, "%s/%s/%s", srv->ingress_url, r->ns,
                     r->name);
            json_object_set_new(st, "address",
                                json_pack("{s:s}", "url", url));
        }
        if (s)
            json_object_set_new(st, "observedGeneration",
                                json_integer(s->observed_gen));
    } else if (gen) {
        json_object_set(st, "observedGeneration", gen);
    }
    json_t *cond = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "Ready",
                             "status", status, "reason", reason, "message",
                             msg, "lastTransitionTime", ltt ? ltt : "");
    json_object_set_new(st, "conditions", json_pack("[o]", cond));
    return st;
}

static json_t *resource_json(kn_server *srv, const kn_resource *r)
{
    json_t *o = json_deep_copy(r->obj);
    if (o)
        json_object_set_new(o, "status",
                            r->kind == &kn_kind_trigger
                                ? kn_dispatcher_trigger_status(srv->disp, r)
                                : status_json(srv, r));
    return o;
}

json_t *kn_server_list(kn_server *srv, const kn_kind *kind, const char *ns)
{
    json_t *items = json_array();
    pthread_mutex_lock(&srv->mu);
    for (size_t i = 0; items && i < kn_store_count(srv->store); i++) {
        kn_resource *r = kn_store_at(srv->store, i);
        if (r->kind != kind || (ns && strcmp(ns, r->ns) != 0))
            continue;
        json_array_append_new(items, resource_json(srv, r));
    }
    pthread_mutex_unlock(&srv->mu);
    return items;
}

json_t *kn_server_get(kn_server *srv, const kn_kind *kind, const char *ns,
                      const char *name)
{
    pthread_mutex_lock(&srv->mu);
    kn_resource *r = kn_store_find(srv->store, kind, ns, name);
    json_t *o = r ? resource_json(srv, r) : NULL;
    pthread_mutex_unlock(&srv->mu);
    return o;
}

int kn_server_metrics(kn_server *srv, ce_buf *out)
{
    kn_broker_rt **b = NULL;
    size_t n = 0;
    pthread_rwlock_rdlock(&srv->glock);
    if (srv->graph && (b = calloc(srv->graph->n + 1, sizeof *b)) != NULL) {
        for (size_t i = 0; i < srv->graph->n; i++)
            b[n++] = broker_rt_ref(srv->graph->b[i]);
    }
    pthread_rwlock_unlock(&srv->glock);
    int rc = kn_metrics_render(out, b, n);
    if (rc == KN_OK)
        rc = kn_dispatcher_metrics(srv->disp, out);
    for (size_t i = 0; i < n; i++)
        kn_broker_rt_unref(b[i]);
    free(b);
    return rc;
}
