/*
 * The dispatcher's lifecycle: the sink client whose loop thread runs all
 * delivery work, the committer thread that stores cursor positions off the
 * loop, the commit tick (every KN_COMMIT_MS: commit points, lag gauges,
 * zombie reaping), and the orderly stop (cancel, wait, commit, close).
 *
 * Threads: kn_dispatcher_new/stop/free on the main or reconciler thread;
 * the tick on the loop; the committer on its own thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/dispatch/dispatch_int.h"

/* ------------------------------------------------------- committer */

kn_cslot *kn_cslot_add(kn_dispatcher *d, kn_cursor *cur)
{
    kn_cslot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cur = cur;
    pthread_mutex_lock(&d->cmu);
    s->next = d->slots;
    d->slots = s;
    pthread_mutex_unlock(&d->cmu);
    return s;
}

/* The slot's record of a partition (added if new; NULL on ENOMEM).
 * Under cmu. */
static kn_cpart *part_get(kn_cslot *s, int32_t partition)
{
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i].partition == partition)
            return &s->parts[i];
    if (s->nparts == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        kn_cpart *p = realloc(s->parts, cap * sizeof *p);
        if (!p)
            return NULL;
        s->parts = p;
        s->cap = cap;
    }
    kn_cpart *p = &s->parts[s->nparts++];
    memset(p, 0, sizeof *p);
    p->partition = partition;
    return p;
}

void kn_cslot_request(kn_dispatcher *d, kn_cslot *s, const kn_cpos *pos,
                      size_t n)
{
    bool wake = false;
    pthread_mutex_lock(&d->cmu);
    for (size_t i = 0; i < n; i++) {
        kn_cpart *p = part_get(s, pos[i].partition);
        if (!p)
            break;
        if (p->dirty ? p->want == pos[i].offset
                     : p->has_stored && p->stored == pos[i].offset)
            continue;
        p->want = pos[i].offset;
        p->dirty = wake = true;
    }
    if (wake)
        pthread_cond_broadcast(&d->ccv);
    pthread_mutex_unlock(&d->cmu);
}

void kn_cslot_quiesce(kn_dispatcher *d, kn_cslot *s)
{
    pthread_mutex_lock(&d->cmu);
    while (s->busy)
        pthread_cond_wait(&d->ccv, &d->cmu);
    s->nparts = 0; /* the seek stores its own positions */
    pthread_mutex_unlock(&d->cmu);
}

static void commit_now(kn_cursor *cur, int32_t partition, uint64_t pos)
{
    int rc = cur->channel->ops->cursor_commit(cur, partition, pos);
    if (rc != KN_OK)
        KN_WARN(KN_DISP, "cannot store a cursor position (partition %d, "
                "offset %llu): %s", (int)partition, (unsigned long long)pos,
                kn_status_str(rc));
}

void kn_cslot_remove(kn_dispatcher *d, kn_cslot *s, bool commit,
                     const kn_cpos *pos, size_t n)
{
    if (!s)
        return;
    pthread_mutex_lock(&d->cmu);
    while (s->busy)
        pthread_cond_wait(&d->ccv, &d->cmu);
    for (kn_cslot **pp = &d->slots; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    pthread_mutex_unlock(&d->cmu);
    for (size_t i = 0; commit && i < n; i++) {
        bool stale = true;
        for (size_t j = 0; j < s->nparts; j++)
            if (s->parts[j].partition == pos[i].partition)
                stale = !s->parts[j].has_stored ||
                        s->parts[j].stored != pos[i].offset;
        if (stale)
            commit_now(s->cur, pos[i].partition, pos[i].offset);
    }
    free(s->parts);
    free(s);
}

static kn_cslot *dirty_slot(kn_dispatcher *d)
{
    for (kn_cslot *s = d->slots; s; s = s->next) {
        if (s->busy)
            continue;
        for (size_t i = 0; i < s->nparts; i++)
            if (s->parts[i].dirty)
                return s;
    }
    return NULL;
}

static void *committer_main(void *arg)
{
    kn_dispatcher *d = arg;
    kn_cpos *due = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&d->cmu);
    while (!d->cquit) {
        kn_cslot *s = dirty_slot(d);
        if (!s) {
            pthread_cond_wait(&d->ccv, &d->cmu);
            continue;
        }
        if (cap < s->nparts) {
            kn_cpos *t = realloc(due, s->nparts * sizeof *t);
            if (!t) {
                pthread_mutex_unlock(&d->cmu);
                struct timespec ts = {0, 10 * 1000000L};
                nanosleep(&ts, NULL);
                pthread_mutex_lock(&d->cmu);
                continue;
            }
            due = t;
            cap = s->nparts;
        }
        size_t n = 0;
        for (size_t i = 0; i < s->nparts; i++)
            if (s->parts[i].dirty) {
                s->parts[i].dirty = false;
                due[n++] = (kn_cpos){s->parts[i].partition,
                                      s->parts[i].want};
            }
        s->busy = true;
        kn_cursor *cur = s->cur;
        pthread_mutex_unlock(&d->cmu);
        int rc[64];
        for (size_t i = 0; i < n; i++) {
            int r = cur->channel->ops->cursor_commit(cur, due[i].partition,
                                                     due[i].offset);
            if (i < 64)
                rc[i] = r;
            if (r != KN_OK)
                KN_WARN(KN_DISP, "cannot store a cursor position "
                        "(partition %d, offset %llu): %s",
                        (int)due[i].partition,
                        (unsigned long long)due[i].offset,
                        kn_status_str(r));
        }
        pthread_mutex_lock(&d->cmu);
        s->busy = false;
        for (size_t i = 0; i < n && i < 64; i++) {
            if (rc[i] != KN_OK)
                continue;
            for (size_t j = 0; j < s->nparts; j++)
                if (s->parts[j].partition == due[i].partition) {
                    s->parts[j].stored = due[i].offset;
                    s->parts[j].has_stored = true;
                }
        }
        pthread_cond_broadcast(&d->ccv);
    }
    pthread_mutex_unlock(&d->cmu);
    free(due);
    return NULL;
}

/* ------------------------------------------------------- loop calls */

typedef struct disp_call {
    kn_sink_run_fn fn;
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} disp_call;

static void call_run(kn_sink_client *c, void *arg)
{
    disp_call *dc = arg;
    dc->fn(c, dc->arg);
    pthread_mutex_lock(&dc->mu);
    dc->done = true;
    pthread_cond_signal(&dc->cv);
    pthread_mutex_unlock(&dc->mu);
}

int kn_disp_post(kn_dispatcher *d, kn_sink_run_fn fn, void *arg)
{
    pthread_mutex_lock(&d->dmu);
    int rc = d->client && !d->client_gone
                 ? kn_sink_client_run(d->client, fn, arg)
                 : KN_CLOSED;
    pthread_mutex_unlock(&d->dmu);
    return rc;
}

int kn_disp_call(kn_dispatcher *d, kn_sink_run_fn fn, void *arg)
{
    disp_call dc = {.fn = fn, .arg = arg};
    pthread_mutex_init(&dc.mu, NULL);
    pthread_cond_init(&dc.cv, NULL);
    int rc = kn_disp_post(d, call_run, &dc);
    if (rc == KN_OK) {
        pthread_mutex_lock(&dc.mu);
        while (!dc.done)
            pthread_cond_wait(&dc.cv, &dc.mu);
        pthread_mutex_unlock(&dc.mu);
    }
    pthread_cond_destroy(&dc.cv);
    pthread_mutex_destroy(&dc.mu);
    return rc;
}

kn_trig *kn_disp_find(kn_dispatcher *d, const char *ns, const char *name)
{
    for (kn_trig *t = d->trigs; t; t = t->next)
        if (strcmp(t->cfg->ns, ns) == 0 && strcmp(t->cfg->name, name) == 0)
            return t;
    return NULL;
}

void kn_disp_reap(kn_dispatcher *d)
{
    for (kn_trig **pp = &d->zombies; *pp;) {
        kn_trig *t = *pp;
        if (t->outstanding == 0) {
            *pp = t->next;
            kn_trig_reap(t);
        } else {
            pp = &t->next;
        }
    }
}

/* ------------------------------------------------------- tick */

static void tick(kn_sink_client *c, void *arg);

static void tick_trigger(kn_trig *t, int64_t now_wall, bool commit)
{
    kn_cpos *pos = NULL;
    size_t n = commit ? kn_trig_commit_points(t, &pos) : 0;
    if (n) {
        kn_cslot_request(t->d, t->slot, pos, n);
        t->released = 0;
    }
    free(pos);
    uint64_t lag = t->wlen;
    if (t->single) {
        uint64_t cp = kn_trig_commit_point(t);
        uint64_t head = t->feed ? t->feed->head : cp;
        lag = head > cp ? head - cp : 0;
    }
    int64_t oldest = t->wlen ? t->win[t->whead].ts_ns : 0;
    if (!oldest && lag)
        oldest = t->last_ts;
    atomic_store(&t->stats->lag_events, lag);
    atomic_store(&t->stats->lag_ms,
                 lag && oldest && now_wall > oldest
                     ? (uint64_t)((now_wall - oldest) / 1000000)
                     : 0);
    atomic_store(&t->stats->in_flight, t->inflight);
}

static void tick(kn_sink_client *c, void *arg)
{
    kn_dispatcher *d = arg;
    d->tick = NULL;
    if (d->stopping)
        return;
    int64_t now_wall = kn_now_wall_ns();
    for (kn_feed *f = d->feeds; f; f = f->next) {
        kn_channel_stats st;
        memset(&st, 0, sizeof st);
        f->chan->ch->ops->stats(f->chan->ch, &st);
        f->head = st.head_offset;
        if (f->has_ring && f->known) {
            kn_cpos lo = {0, f->lo};
            kn_cslot_request(d, f->slot, &lo, 1);
        }
    }
    /* Each position write is an fsync'd file: with many triggers each one
     * commits every `stride` ticks, round robin, so the committer writes
     * at most about KN_COMMITS_PER_TICK positions per tick. */
    size_t ntrig = 0, i = 0;
    for (kn_trig *t = d->trigs; t; t = t->next)
        ntrig++;
    uint64_t stride = 1 + ntrig / KN_COMMITS_PER_TICK;
    d->ticks++;
    for (kn_trig *t = d->trigs; t; t = t->next, i++)
        tick_trigger(t, now_wall, (d->ticks + i) % stride == 0);
    kn_disp_reap(d);
    d->tick = kn_sink_timer_add(c, KN_COMMIT_MS, tick, d);
}

static void start_tick(kn_sink_client *c, void *arg)
{
    kn_dispatcher *d = arg;
    d->tick = kn_sink_timer_add(c, KN_COMMIT_MS, tick, d);
}

/* ------------------------------------------------------- lifecycle */

int kn_dispatcher_new(const char *data_dir, kn_dispatcher **out,
                      kn_err *err)
{
    kn_dispatcher *d = calloc(1, sizeof *d);
    if (!d || !(d->data_dir = strdup(data_dir))) {
        free(d);
        return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    pthread_mutex_init(&d->cmu, NULL);
    pthread_cond_init(&d->ccv, NULL);
    pthread_mutex_init(&d->dmu, NULL);
    pthread_mutex_init(&d->smu, NULL);
    /* Keep every connection the triggers use open (many triggers × their
     * max-in-flight): a smaller idle cache closes and reopens connections
     * all the time. Per host, curl queues beyond 256. */
    kn_sink_client_opts o = {.max_idle_connections = KN_DISP_IDLE_CONNS};
    d->client = kn_sink_client_new(&o, err);
    if (!d->client)
        goto fail;
    if (pthread_create(&d->cthr, NULL, committer_main, d) != 0) {
        kn_err_set(err, KN_IO, "cannot start the committer thread");
        goto fail;
    }
    d->cthr_started = true;
    if (kn_sink_client_run(d->client, start_tick, d) != KN_OK) {
        kn_err_set(err, KN_NOMEM, "cannot start the commit tick");
        goto fail;
    }
    *out = d;
    return KN_OK;
fail:
    kn_dispatcher_free(d);
    return err ? err->status : KN_IO;
}

static void loop_stop(kn_sink_client *c, void *arg)
{
    kn_dispatcher *d = arg;
    (void)c;
    d->stopping = true;
    if (d->tick)
        kn_sink_timer_cancel(d->tick);
    d->tick = NULL;
    for (kn_trig *t = d->trigs; t; t = t->next)
        kn_trig_cancel_all(t);
    for (kn_trig *t = d->zombies; t; t = t->next)
        kn_trig_cancel_all(t);
    for (kn_feed *f = d->feeds; f; f = f->next) {
        if (f->watch)
            kn_sink_unwatch(f->watch);
        f->watch = NULL;
        if (f->io_timer)
            kn_sink_timer_cancel(f->io_timer);
        f->io_timer = NULL;
    }
    kn_redrive_cancel_all(d);
}

/* Waits (bounded) until every callback the loop expects has run. */
static void wait_outstanding(kn_dispatcher *d)
{
    int64_t end = kn_now_mono_ms() + KN_STOP_WAIT_MS;
    while (atomic_load(&d->outstanding) > 0 && kn_now_mono_ms() < end) {
        struct timespec ts = {0, 2 * 1000000L};
        nanosleep(&ts, NULL);
    }
    int left = atomic_load(&d->outstanding);
    if (left > 0)
        KN_WARN(KN_DISP, "stopping with %d deliveries or appends still "
                "pending; they will be redelivered after a restart", left);
}

static void release_mirror(kn_dispatcher *d)
{
    for (size_t i = 0; i < d->nrt; i++) {
        kn_rtrig *r = d->rt[i];
        kn_chanref_unref(r->chan);
        kn_resource_decref(r->res);
        free(r->url);
        free(r->dls);
        free(r->sub_uri);
        free(r->dls_uri);
        free(r);
    }
    free(d->rt);
    d->rt = NULL;
    d->nrt = 0;
    for (size_t i = 0; i < d->nrf; i++) {
        kn_chanref_unref(d->rf[i]->chan);
        free(d->rf[i]);
    }
    free(d->rf);
    d->rf = NULL;
    d->nrf = 0;
}

void kn_dispatcher_stop(kn_dispatcher *d)
{
    if (!d || atomic_exchange(&d->stopped, true))
        return;
    if (d->client) {
        kn_disp_call(d, loop_stop, d);
        wait_outstanding(d);
        pthread_mutex_lock(&d->dmu);
        d->client_gone = true; /* late completions are dropped */
        pthread_mutex_unlock(&d->dmu);
        kn_sink_client_free(d->client);
        d->client = NULL;
    }
    if (d->cthr_started) {
        pthread_mutex_lock(&d->cmu);
        d->cquit = true;
        pthread_cond_broadcast(&d->ccv);
        pthread_mutex_unlock(&d->cmu);
        pthread_join(d->cthr, NULL);
        d->cthr_started = false;
    }
    /* The loop is gone: its state is ours now. */
    while (d->trigs) {
        kn_trig *t = d->trigs;
        d->trigs = t->next;
        kn_trig_destroy(t);
    }
    while (d->zombies) {
        kn_trig *t = d->zombies;
        d->zombies = t->next;
        kn_trig_destroy(t);
    }
    while (d->feeds) {
        kn_feed *f = d->feeds;
        d->feeds = f->next;
        kn_feed_free(f);
    }
    kn_redrive_free_all(d);
    release_mirror(d);
}

void kn_dispatcher_free(kn_dispatcher *d)
{
    if (!d)
        return;
    kn_dispatcher_stop(d);
    kn_dlq_close_all(d);
    kn_tstats_free_all(d);
    pthread_mutex_destroy(&d->smu);
    pthread_mutex_destroy(&d->dmu);
    pthread_cond_destroy(&d->ccv);
    pthread_mutex_destroy(&d->cmu);
    free(d->data_dir);
    free(d);
}
