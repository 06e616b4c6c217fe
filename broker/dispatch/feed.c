/*
 * A broker's feed (loop thread): one cursor at the tail of the broker's
 * channel reads each record once into a bounded ring of recent decoded
 * records (shared, reference-counted events) and computes, once per
 * record, the bitset of the triggers whose filter matches through the
 * broker's filter index. Triggers that are within the ring take their
 * records from it (no decode, no evaluation); a trigger that falls below
 * the ring (slow subscriber, backlog, replay) reads through its own cursor
 * and evaluates its own filter until it catches up (trigger.c).
 *
 * Memory: at most KN_RING_MAX records and about KN_RING_BYTES bytes; the
 * oldest records are dropped first, whoever still wanted them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "broker/dispatch/dispatch_int.h"

static kn_ringrec *rec_at(const kn_feed *f, uint32_t i)
{
    return &f->ring[(f->rhead + i) % f->rcap];
}

static uint64_t *bits_at(const kn_feed *f, uint32_t i)
{
    return f->bits + (size_t)((f->rhead + i) % f->rcap) * f->words;
}

static size_t rec_bytes(const ce_event *ev)
{
    size_t n = 0;
    ce_event_data(ev, &n);
    return n + 512; /* attributes and bookkeeping, roughly */
}

static void drop_oldest(kn_feed *f)
{
    kn_ringrec *r = rec_at(f, 0);
    f->rbytes -= r->bytes;
    ce_event_unref(r->ev);
    r->ev = NULL;
    f->rhead = (f->rhead + 1) % f->rcap;
    f->rlen--;
    f->lo = f->rlen ? rec_at(f, 0)->offset : f->hi;
}

static void match_record(kn_feed *f, uint32_t i)
{
    uint64_t *b = bits_at(f, i);
    if (f->ix && f->nix)
        kn_filter_index_match(f->ix, rec_at(f, i)->ev, b);
    else
        memset(b, 0, f->words * sizeof *b);
}

static void push_record(kn_feed *f, const kn_record *r)
{
    size_t bytes = rec_bytes(r->event);
    while (f->rlen && (f->rlen == f->rcap ||
                       f->rbytes + bytes > KN_RING_BYTES))
        drop_oldest(f);
    if (!f->known || r->offset < f->hi) {
        /* first record, or the log went backwards (it never should):
         * start the ring over at this record */
        while (f->rlen)
            drop_oldest(f);
        f->known = true;
    }
    uint32_t i = f->rlen++;
    kn_ringrec *slot = rec_at(f, i);
    slot->ev = r->event; /* the cursor's reference */
    slot->offset = r->offset;
    slot->ts_ns = r->timestamp_ns;
    slot->bytes = bytes;
    f->rbytes += bytes;
    f->hi = r->offset + 1;
    f->lo = rec_at(f, 0)->offset;
    match_record(f, i);
}

bool kn_feed_covers(const kn_feed *f, uint64_t pos)
{
    return f->has_ring && f->known && !f->broken && pos >= f->lo;
}

bool kn_feed_ring_capable(const kn_chanref *chan)
{
    return strcmp(chan->backend, "log") == 0 ||
           strcmp(chan->backend, "memory") == 0;
}

/* Triggers in ring mode whose position fell below the ring. */
static void check_fallen(kn_feed *f)
{
    for (kn_trig *t = f->trigs; t; t = t->fnext)
        if (t->ring_mode && !kn_feed_covers(f, t->pos))
            kn_trig_fall_back(t);
}

static void feed_retry(kn_sink_client *c, void *arg);

static void feed_read(kn_feed *f)
{
    kn_record recs[KN_FEED_BATCH];
    const kn_channel_ops *ops = f->chan->ch->ops;
    ops->cursor_drain_notify(f->cur);
    int n = ops->cursor_next(f->cur, recs, KN_FEED_BATCH);
    if (n < 0) {
        if (!f->broken)
            KN_ERROR(KN_DISP, "broker %s/%s: feed read failed: %s; "
                     "triggers read through their own cursors", f->ns,
                     f->name, kn_status_str(n));
        f->broken = true;
        check_fallen(f);
        if (!f->io_timer)
            f->io_timer = kn_sink_timer_add(f->d->client, KN_RETRY_IO_MS,
                                            feed_retry, f);
        return;
    }
    f->broken = false;
    for (int i = 0; i < n; i++)
        push_record(f, &recs[i]);
    check_fallen(f);
    for (kn_trig *t = f->trigs; t; t = t->fnext)
        if (t->ring_mode)
            kn_trig_pump(t);
}

static void feed_retry(kn_sink_client *c, void *arg)
{
    kn_feed *f = arg;
    (void)c;
    f->io_timer = NULL;
    if (!f->d->stopping)
        feed_read(f);
}

static void on_feed_fd(kn_sink_client *c, int fd, uint32_t events,
                       void *arg)
{
    (void)c;
    (void)fd;
    (void)events;
    kn_feed *f = arg;
    if (!f->d->stopping)
        feed_read(f);
}

kn_feed *kn_feed_new(kn_dispatcher *d, const char *ns, const char *name,
                     kn_chanref *chan, kn_cursor *cur)
{
    kn_feed *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->d = d;
    snprintf(f->ns, sizeof f->ns, "%s", ns);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->has_ring = cur != NULL;
    f->rcap = f->has_ring ? KN_RING_MAX : 1;
    f->words = 1;
    f->ring = calloc(f->rcap, sizeof *f->ring);
    f->bits = calloc((size_t)f->rcap * f->words, sizeof *f->bits);
    f->slot = cur ? kn_cslot_add(d, cur) : NULL;
    kn_err err = {0};
    if (f->has_ring && f->ring && f->bits && f->slot)
        f->watch = kn_sink_watch_fd(d->client,
                                    chan->ch->ops->cursor_fd(cur), EPOLLIN,
                                    on_feed_fd, f, &err);
    if (cur ? !f->watch : !f->ring || !f->bits) {
        KN_ERROR(KN_DISP, "broker %s/%s: cannot start the feed: %s", ns,
                 name, err.msg[0] ? err.msg : "out of memory");
        kn_cslot_remove(d, f->slot, false, NULL, 0);
        free(f->ring);
        free(f->bits);
        free(f);
        return NULL;
    }
    f->chan = kn_chanref_ref(chan);
    f->cur = cur;
    return f;
}

void kn_feed_free(kn_feed *f)
{
    if (!f)
        return;
    if (f->watch && !f->d->stopping)
        kn_sink_unwatch(f->watch);
    if (f->io_timer && !f->d->stopping)
        kn_sink_timer_cancel(f->io_timer);
    kn_cslot_remove(f->d, f->slot, false, NULL, 0);
    while (f->rlen)
        drop_oldest(f);
    kn_filter_index_free(f->ix);
    free(f->ixf);
    free(f->ixt);
    const kn_channel_ops *ops = f->chan->ch->ops;
    if (f->cur) {
        ops->cursor_close(f->cur);
        ops->cursor_delete(f->chan->ch, KN_FEED_GROUP);
    }
    kn_chanref_unref(f->chan);
    free(f->ring);
    free(f->bits);
    free(f);
}

void kn_feed_add(kn_feed *f, kn_trig *t)
{
    t->feed = f;
    t->fnext = f->trigs;
    f->trigs = t;
}

void kn_feed_remove(kn_feed *f, kn_trig *t)
{
    for (kn_trig **pp = &f->trigs; *pp; pp = &(*pp)->fnext)
        if (*pp == t) {
            *pp = t->fnext;
            break;
        }
    t->fnext = NULL;
    t->ix = -1;
}

void kn_feed_reindex(kn_feed *f)
{
    if (!f->has_ring)
        return; /* no ring to serve: every trigger reads alone */
    size_t n = 0;
    for (kn_trig *t = f->trigs; t; t = t->fnext)
        n++;
    kn_filter **ixf = calloc(n + 1, sizeof *ixf);
    kn_trig **ixt = calloc(n + 1, sizeof *ixt);
    size_t words = n ? (n + 63) / 64 : 1;
    uint64_t *bits = words == f->words
                         ? f->bits
                         : calloc((size_t)f->rcap * words, sizeof *bits);
    kn_filter_index *ix = NULL;
    kn_err err = {0};
    size_t i = 0;
    for (kn_trig *t = f->trigs; ixf && ixt && t; t = t->fnext, i++) {
        ixf[i] = t->cfg->filter;
        ixt[i] = t;
    }
    if (!ixf || !ixt || !bits ||
        kn_filter_index_build(ixf, n, &ix, &err) != KN_OK) {
        /* Without an index the ring cannot serve: every trigger reads
         * its own cursor and evaluates its own filter. */
        KN_ERROR(KN_DISP, "broker %s/%s: cannot build the trigger index: "
                 "%s", f->ns, f->name, err.msg[0] ? err.msg : "no memory");
        free(ixf);
        free(ixt);
        if (bits != f->bits)
            free(bits);
        f->broken = true;
        check_fallen(f);
        return;
    }
    kn_filter_index_free(f->ix);
    free(f->ixf);
    free(f->ixt);
    if (bits != f->bits) {
        free(f->bits);
        f->bits = bits;
        f->words = words;
    }
    f->ix = ix;
    f->ixf = ixf;
    f->ixt = ixt;
    f->nix = n;
    for (i = 0; i < n; i++)
        ixt[i]->ix = (int)i;
    for (uint32_t r = 0; r < f->rlen; r++)
        match_record(f, r);
}

/* First ring index whose offset is >= pos (rlen if none). */
static uint32_t ring_find(const kn_feed *f, uint64_t pos)
{
    uint32_t lo = 0, hi = f->rlen;
    if (f->rlen && pos >= f->lo && pos - f->lo < f->rlen &&
        rec_at(f, (uint32_t)(pos - f->lo))->offset == pos)
        return (uint32_t)(pos - f->lo); /* offsets are dense */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (rec_at(f, mid)->offset < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool kn_feed_take(kn_feed *f, kn_trig *t)
{
    if (!kn_feed_covers(f, t->pos) || t->ix < 0)
        return false;
    uint32_t i = ring_find(f, t->pos);
    uint64_t bit = 1ull << ((unsigned)t->ix % 64);
    size_t word = (size_t)t->ix / 64;
    while (i < f->rlen && kn_trig_room(t) > 0) {
        kn_ringrec *r = rec_at(f, i);
        if (bits_at(f, i)[word] & bit) {
            atomic_fetch_add(&t->stats->matched, 1);
            kn_trig_admit(t, r->ev, 0, r->offset, r->ts_ns);
        } else {
            atomic_fetch_add(&t->stats->filtered, 1);
        }
        t->pos = r->offset + 1;
        t->last_ts = r->ts_ns;
        i++;
    }
    return true;
}
