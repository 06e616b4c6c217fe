/*
 * One trigger on the loop thread: its window of matched events (in log
 * order, bounded), the ready queue, per-key ordering, the rate limit, the
 * reading of records (from its broker's feed ring, or through its own
 * cursor while it is behind the ring), and its lifecycle (active →
 * zombie → freed).
 *
 * Unordered: every admitted entry is ready at once; up to max-in-flight
 * are at the sink client. Ordered: an entry is ready only when no earlier
 * entry of the same key (partitionkey, else source) is still not done, so
 * a key's events are delivered one at a time in log order while other
 * keys proceed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "broker/dispatch/dispatch_int.h"

/* ------------------------------------------------------- keys */

static uint64_t key_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t event_key(const ce_event *ev)
{
    size_t n = 0;
    const char *k = ce_event_get(ev, "partitionkey", &n, NULL);
    if (!k)
        k = ce_event_get(ev, "source", &n, NULL);
    return key_hash(k ? k : "", k ? n : 0);
}

static uint32_t kslot(const kn_trig *t, uint64_t key)
{
    return (uint32_t)(key ^ (key >> 29)) & (t->kcap - 1);
}

static kn_keyslot *key_find(kn_trig *t, uint64_t key)
{
    for (uint32_t i = kslot(t, key);; i = (i + 1) & (t->kcap - 1)) {
        kn_keyslot *s = &t->keys[i];
        if (s->idx < 0 || s->key == key)
            return s;
    }
}

/* Removes a key (backward-shift deletion keeps probe chains intact). */
static void key_remove(kn_trig *t, kn_keyslot *s)
{
    uint32_t i = (uint32_t)(s - t->keys), mask = t->kcap - 1;
    t->keys[i].idx = -1;
    for (uint32_t j = (i + 1) & mask; t->keys[j].idx >= 0;
         j = (j + 1) & mask) {
        uint32_t home = kslot(t, t->keys[j].key);
        /* move j to i when home is not cyclically in (i, j] */
        bool stay = i <= j ? (home > i && home <= j)
                           : (home > i || home <= j);
        if (stay)
            continue;
        t->keys[i] = t->keys[j];
        t->keys[j].idx = -1;
        i = j;
    }
}

/* ------------------------------------------------------- window */

static uint32_t slot_of(const kn_trig *t, const kn_entry *e)
{
    return (uint32_t)(e - t->win);
}

void kn_trig_ready_push(kn_trig *t, kn_entry *e)
{
    e->state = KN_E_READY;
    t->ready[(t->rhead + t->rlen) & (t->wcap - 1)] = slot_of(t, e);
    t->rlen++;
}

static kn_entry *ready_pop(kn_trig *t)
{
    kn_entry *e = &t->win[t->ready[t->rhead]];
    t->rhead = (t->rhead + 1) & (t->wcap - 1);
    t->rlen--;
    return e;
}

void kn_trig_admit(kn_trig *t, ce_event *ev, int32_t partition,
                   uint64_t offset, int64_t ts)
{
    uint32_t idx = (t->whead + t->wlen) & (t->wcap - 1);
    kn_entry *e = &t->win[idx];
    memset(e, 0, sizeof *e);
    e->ev = ce_event_ref(ev);
    e->partition = partition;
    e->offset = offset;
    e->ts_ns = ts;
    e->key_next = -1;
    e->t = t;
    t->wlen++;
    if (!t->cfg->opts.ordered) {
        kn_trig_ready_push(t, e);
        return;
    }
    e->key = event_key(ev);
    kn_keyslot *s = key_find(t, e->key);
    if (s->idx >= 0) {
        t->win[s->idx].key_next = (int32_t)idx;
        s->idx = (int32_t)idx;
        e->state = KN_E_WAIT;
        return;
    }
    s->key = e->key;
    s->idx = (int32_t)idx;
    kn_trig_ready_push(t, e);
}

/* On backends whose reads wait for commits (ops->commit_often: a NATS
 * consumer stops handing out messages at MaxAckPending unacknowledged
 * ones), asks for a commit as soon as an eighth of the window has left it,
 * rather than waiting for the next tick: with commits only every
 * KN_COMMIT_MS, a trigger could not pass MaxAckPending events per tick.
 * Loop thread. */
static void commit_early(kn_trig *t)
{
    if (!t->slot || !t->cur || !t->chan->ch->ops->commit_often ||
        t->released < (t->wcap / 8 ? t->wcap / 8 : 1))
        return;
    kn_cpos *pos = NULL;
    size_t n = kn_trig_commit_points(t, &pos);
    if (n)
        kn_cslot_request(t->d, t->slot, pos, n);
    free(pos);
    t->released = 0;
}

void kn_entry_done(kn_entry *e)
{
    kn_trig *t = e->t;
    e->state = KN_E_DONE;
    if (e->pending) {
        ce_event_unref(e->pending);
        e->pending = NULL;
    }
    if (t->cfg->opts.ordered) {
        if (e->key_next >= 0) {
            kn_entry *n = &t->win[e->key_next];
            if (n->state == KN_E_WAIT)
                kn_trig_ready_push(t, n);
        } else {
            kn_keyslot *s = key_find(t, e->key);
            if (s->idx == (int32_t)slot_of(t, e))
                key_remove(t, s);
        }
    }
    while (t->wlen && t->win[t->whead].state == KN_E_DONE) {
        kn_entry *f = &t->win[t->whead];
        ce_event_unref(f->ev);
        f->ev = NULL;
        t->whead = (t->whead + 1) & (t->wcap - 1);
        t->wlen--;
        t->released++;
    }
    commit_early(t);
}

uint64_t kn_trig_commit_point(const kn_trig *t)
{
    return t->wlen ? t->win[t->whead].offset : t->pos;
}

size_t kn_trig_commit_points(const kn_trig *t, kn_cpos **out)
{
    *out = NULL;
    if (t->single) {
        if (!t->pos_known && !t->wlen)
            return 0;
        if (!(*out = malloc(sizeof **out)))
            return 0;
        (*out)->partition = 0;
        (*out)->offset = kn_trig_commit_point(t);
        return 1;
    }
    if (!t->nparts || !(*out = malloc(t->nparts * sizeof **out)))
        return 0;
    kn_cpos *p = *out;
    memcpy(p, t->parts, t->nparts * sizeof *p);
    for (uint32_t i = 0; i < t->wlen; i++) {
        const kn_entry *e = &t->win[(t->whead + i) & (t->wcap - 1)];
        if (e->state == KN_E_DONE)
            continue;
        for (size_t j = 0; j < t->nparts; j++)
            if (p[j].partition == e->partition && e->offset < p[j].offset)
                p[j].offset = e->offset;
    }
    return t->nparts;
}

/* Several partitions: remembers the offset after one consumed. */
static void part_seen(kn_trig *t, int32_t partition, uint64_t next)
{
    for (size_t i = 0; i < t->nparts; i++)
        if (t->parts[i].partition == partition) {
            if (next > t->parts[i].offset)
                t->parts[i].offset = next;
            return;
        }
    if (t->nparts == t->pcap) {
        size_t cap = t->pcap ? t->pcap * 2 : 4;
        kn_cpos *p = realloc(t->parts, cap * sizeof *p);
        if (!p)
            return; /* not committed: redelivered after a restart */
        t->parts = p;
        t->pcap = cap;
    }
    t->parts[t->nparts++] = (kn_cpos){partition, next};
}

/* Stores the commit points now on this thread and closes the cursor. */
static void close_cursor(kn_trig *t, bool commit)
{
    kn_cpos *pos = NULL;
    size_t n = commit ? kn_trig_commit_points(t, &pos) : 0;
    kn_cslot_remove(t->d, t->slot, commit, pos, n);
    free(pos);
    t->cur->channel->ops->cursor_close(t->cur);
    t->slot = NULL;
    t->cur = NULL;
}

/* ------------------------------------------------------- reading */

static void on_cursor_fd(kn_sink_client *c, int fd, uint32_t events,
                         void *arg);

static void watch_cursor(kn_trig *t, bool on)
{
    if (on && !t->watch) {
        kn_err err = {0};
        t->watch = kn_sink_watch_fd(t->d->client,
                                    t->chan->ch->ops->cursor_fd(t->cur),
                                    EPOLLIN, on_cursor_fd, t, &err);
        if (!t->watch)
            KN_ERROR(KN_DISP, "trigger %s: cannot watch its cursor: %s",
                     t->cfg->key, err.msg);
    } else if (!on && t->watch) {
        kn_sink_unwatch(t->watch);
        t->watch = NULL;
    }
}

void kn_trig_fall_back(kn_trig *t)
{
    static const kn_seek committed = {.kind = KN_SEEK_COMMITTED};
    kn_err err = {0};
    t->ring_mode = false;
    /* The stored position is at or below pos (the commit point only
     * moves up to pos); records below pos are skipped when read again.
     * A COMMITTED seek does not store anything: no disk wait here. */
    if (t->cur->channel->ops->cursor_seek(t->cur, &committed, &err) !=
        KN_OK)
        KN_ERROR(KN_DISP, "trigger %s: seek: %s", t->cfg->key, err.msg);
    watch_cursor(t, true);
    KN_DEBUG(KN_DISP, "trigger %s: behind the ring at %llu, reading its "
             "cursor", t->cfg->key, (unsigned long long)t->pos);
}

static void enter_ring(kn_trig *t)
{
    t->ring_mode = true;
    watch_cursor(t, false);
}

static void io_retry(kn_sink_client *c, void *arg)
{
    kn_trig *t = arg;
    (void)c;
    t->io_timer = NULL;
    t->outstanding--;
    kn_trig_pump(t);
}

/* Reads through the trigger's own cursor while there is room. */
static void cursor_fill(kn_trig *t)
{
    kn_record recs[KN_TRIG_BATCH];
    const kn_channel_ops *ops = t->cur->channel->ops;
    ops->cursor_drain_notify(t->cur);
    while (kn_trig_room(t) > 0) {
        uint32_t want = kn_trig_room(t);
        int n = ops->cursor_next(t->cur, recs,
                                 want < KN_TRIG_BATCH ? want : KN_TRIG_BATCH);
        if (n < 0) {
            if (!t->read_error)
                KN_ERROR(KN_DISP, "trigger %s: read failed at %llu: %s",
                         t->cfg->key, (unsigned long long)t->pos,
                         kn_status_str(n));
            t->read_error = true;
            if (!t->io_timer) {
                t->io_timer = kn_sink_timer_add(t->d->client,
                                                KN_RETRY_IO_MS, io_retry, t);
                if (t->io_timer)
                    t->outstanding++;
            }
            return;
        }
        t->read_error = false;
        if (n == 0) { /* at the end: the feed serves from here on */
            if (t->pos_known && t->feed && t->feed->known &&
                !t->feed->broken && t->pos >= t->feed->lo)
                enter_ring(t);
            return;
        }
        for (int i = 0; i < n; i++) {
            kn_record *r = &recs[i];
            if (t->single && t->pos_known && r->offset < t->pos) {
                ce_event_unref(r->event); /* read again after a seek */
                continue;
            }
            if (t->single)
                t->pos = r->offset + 1;
            else
                part_seen(t, r->partition, r->offset + 1);
            t->pos_known = true;
            t->last_ts = r->timestamp_ns;
            if (kn_filter_match(t->cfg->filter, r->event, NULL)) {
                atomic_fetch_add(&t->stats->matched, 1);
                kn_trig_admit(t, r->event, r->partition, r->offset,
                              r->timestamp_ns);
            } else {
                atomic_fetch_add(&t->stats->filtered, 1);
            }
            ce_event_unref(r->event);
        }
        if (t->feed && kn_feed_covers(t->feed, t->pos) &&
            t->pos <= t->feed->hi) {
            enter_ring(t);
            return;
        }
    }
}

static void on_cursor_fd(kn_sink_client *c, int fd, uint32_t events,
                         void *arg)
{
    (void)c;
    (void)fd;
    (void)events;
    kn_trig *t = arg;
    if (t->ring_mode) /* switched while the event was queued */
        t->cur->channel->ops->cursor_drain_notify(t->cur);
    kn_trig_pump(t);
}

static void fill(kn_trig *t)
{
    if (t->read_error && t->io_timer)
        return;
    if (t->ring_mode) {
        if (kn_feed_take(t->feed, t))
            return;
        kn_trig_fall_back(t);
    }
    cursor_fill(t);
    if (t->ring_mode && kn_trig_room(t) > 0)
        kn_feed_take(t->feed, t);
}

/* ------------------------------------------------------- starting */

static void rate_fire(kn_sink_client *c, void *arg)
{
    kn_trig *t = arg;
    (void)c;
    t->rate_timer = NULL;
    t->outstanding--;
    kn_trig_pump(t);
}

/* Token bucket: rate per second, burst max(1, rate/10). */
static bool take_token(kn_trig *t)
{
    uint32_t rate = t->cfg->opts.rate_limit;
    if (!rate)
        return true;
    double burst = rate / 10.0 > 1.0 ? rate / 10.0 : 1.0;
    int64_t now = kn_now_mono_ns();
    t->tokens += (double)(now - t->tok_ns) * rate / 1e9;
    if (t->tokens > burst)
        t->tokens = burst;
    t->tok_ns = now;
    if (t->tokens >= 1.0) {
        t->tokens -= 1.0;
        return true;
    }
    if (!t->rate_timer) {
        int64_t ms = (int64_t)((1.0 - t->tokens) * 1000.0 / rate) + 1;
        t->rate_timer = kn_sink_timer_add(t->d->client, ms, rate_fire, t);
        if (t->rate_timer)
            t->outstanding++;
    }
    return false;
}

void kn_trig_pump(kn_trig *t)
{
    if (t->zombie || t->d->stopping)
        return;
    fill(t);
    while (t->rlen && t->inflight < t->cfg->opts.max_in_flight) {
        if (!take_token(t))
            break;
        kn_entry_start(ready_pop(t));
    }
}

/* ------------------------------------------------------- lifecycle */

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

kn_trig *kn_trig_new(kn_dispatcher *d, kn_tcfg *cfg, kn_feed *f,
                     kn_chanref *chan, kn_dlq *dlq, kn_cursor *cur)
{
    kn_trig *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->d = d;
    t->wcap = pow2_at_least(cfg->window);
    t->win = calloc(t->wcap, sizeof *t->win);
    t->ready = calloc(t->wcap, sizeof *t->ready);
    t->kcap = cfg->opts.ordered ? t->wcap * 2 : 0;
    t->keys = t->kcap ? malloc(t->kcap * sizeof *t->keys) : NULL;
    t->slot = kn_cslot_add(d, cur);
    if (!t->win || !t->ready || (t->kcap && !t->keys) || !t->slot) {
        kn_cslot_remove(d, t->slot, false, NULL, 0);
        free(t->win);
        free(t->ready);
        free(t->keys);
        free(t);
        return NULL;
    }
    for (uint32_t i = 0; i < t->kcap; i++)
        t->keys[i].idx = -1;
    t->cfg = kn_tcfg_ref(cfg);
    t->chan = kn_chanref_ref(chan);
    t->dlq = kn_dlq_ref(dlq);
    t->cur = cur;
    t->ix = -1;
    t->single = f->has_ring;
    t->stats = kn_tstats_get(d, cfg->ns, cfg->name, cfg->broker);
    if (t->stats)
        atomic_store(&t->stats->active, true);
    t->tok_ns = kn_now_mono_ns();
    t->tokens = cfg->opts.rate_limit / 10.0 > 1.0
                    ? cfg->opts.rate_limit / 10.0 : 1.0;
    kn_feed_add(f, t);
    t->next = d->trigs;
    d->trigs = t;
    watch_cursor(t, true); /* cursor mode until the position is known */
    return t;
}

void kn_trig_cancel_all(kn_trig *t)
{
    for (uint32_t i = 0; i < t->wlen; i++) {
        kn_entry *e = &t->win[(t->whead + i) & (t->wcap - 1)];
        if (e->state == KN_E_FLIGHT && e->h)
            kn_sink_cancel(e->h);
        if (e->state == KN_E_HOLD && e->timer) {
            kn_sink_timer_cancel(e->timer);
            e->timer = NULL;
            t->outstanding--;
            e->state = KN_E_READY; /* not done: stays below the commit */
        }
    }
    if (t->rate_timer) {
        kn_sink_timer_cancel(t->rate_timer);
        t->rate_timer = NULL;
        t->outstanding--;
    }
    if (t->io_timer) {
        kn_sink_timer_cancel(t->io_timer);
        t->io_timer = NULL;
        t->outstanding--;
    }
    if (t->watch) {
        kn_sink_unwatch(t->watch);
        t->watch = NULL;
    }
}

void kn_trig_zombify(kn_trig *t, bool commit)
{
    kn_dispatcher *d = t->d;
    kn_trig_cancel_all(t);
    t->zombie = true;
    if (t->stats)
        atomic_store(&t->stats->active, false);
    if (t->feed)
        kn_feed_remove(t->feed, t);
    t->feed = NULL;
    if (t->cur)
        close_cursor(t, commit);
    for (kn_trig **pp = &d->trigs; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    t->next = d->zombies;
    d->zombies = t;
}

void kn_trig_destroy(kn_trig *t)
{
    if (t->cur)
        close_cursor(t, true);
    for (uint32_t i = 0; i < t->wlen; i++) {
        kn_entry *e = &t->win[(t->whead + i) & (t->wcap - 1)];
        ce_event_unref(e->ev);
        ce_event_unref(e->pending);
    }
    if (t->stats)
        atomic_store(&t->stats->active, false);
    kn_chanref_unref(t->chan);
    kn_dlq_unref(t->dlq);
    kn_tcfg_unref(t->cfg);
    free(t->win);
    free(t->ready);
    free(t->keys);
    free(t->parts);
    free(t);
}

bool kn_trig_reap(kn_trig *t)
{
    if (t->outstanding)
        return false;
    kn_trig_destroy(t);
    return true;
}
