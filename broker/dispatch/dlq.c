/*
 * The dead-letter store of a broker: a second log channel at
 * DATA/brokers/<ns>/<name>/dlq (durability fsync) holding
 * - entries: the original event plus knitdlq* extensions (trigger,
 *   reason, last code, last error, the URL that failed, the response body
 *   in base64, the time, the offset in the broker's channel), and
 * - tombstones: small events (type dev.knit.dlq.removed) whose
 *   knitdlqremove extension names the id (the store offset) of an entry
 *   that was re-delivered or purged.
 * Reading the store = two passes from the start: the tombstones, then the
 * live entries. See docs/storage.md.
 *
 * Threads: the registry of open stores is guarded by d->dmu; appends may
 * come from any thread (their completion runs on the store's writer
 * thread); scans run on admin threads with their own temporary cursor.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dispatch/dispatch_int.h"

#define TOMBSTONE_TYPE "dev.knit.dlq.removed"
#define SCAN_BATCH 128

struct kn_dlq {
    atomic_int refs;
    kn_dispatcher *d;
    char ns[64];
    char name[64];
    kn_channel *ch;
    kn_dlq *next;
};

static const char *const meta_ext[] = {
    "knitdlqtrigger", "knitdlqreason", "knitdlqcode", "knitdlqerror",
    "knitdlqdest", "knitdlqdata", "knitdlqtime", "knitdlqoffset", NULL};

/* ------------------------------------------------------- registry */

kn_dlq *kn_dlq_ref(kn_dlq *q)
{
    if (q)
        atomic_fetch_add(&q->refs, 1);
    return q;
}

void kn_dlq_unref(kn_dlq *q)
{
    if (!q || atomic_fetch_sub(&q->refs, 1) != 1)
        return;
    kn_channel_close(q->ch);
    free(q);
}

static kn_dlq *find_locked(kn_dispatcher *d, const char *ns,
                           const char *name)
{
    for (kn_dlq *q = d->dlqs; q; q = q->next)
        if (!strcmp(q->ns, ns) && !strcmp(q->name, name))
            return q;
    return NULL;
}

kn_dlq *kn_dlq_get(kn_dispatcher *d, const char *ns, const char *name,
                   kn_err *err)
{
    pthread_mutex_lock(&d->dmu);
    kn_dlq *q = kn_dlq_ref(find_locked(d, ns, name));
    pthread_mutex_unlock(&d->dmu);
    if (q)
        return q;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/brokers/%s/%s/dlq", d->data_dir, ns,
             name);
    json_t *settings = json_pack("{s:s}", "durability", "fsync");
    kn_channel_config cfg = {.ns = ns, .name = name, .data_dir = dir,
                             .settings = settings};
    kn_channel *ch = NULL;
    int rc = settings ? kn_channel_open("log", &cfg, &ch, err)
                      : kn_err_set(err, KN_NOMEM, "out of memory");
    json_decref(settings);
    if (rc != KN_OK)
        return NULL;
    q = calloc(1, sizeof *q);
    if (!q) {
        kn_channel_close(ch);
        kn_err_set(err, KN_NOMEM, "out of memory");
        return NULL;
    }
    atomic_init(&q->refs, 2); /* the registry's and the caller's */
    q->d = d;
    q->ch = ch;
    snprintf(q->ns, sizeof q->ns, "%s", ns);
    snprintf(q->name, sizeof q->name, "%s", name);
    pthread_mutex_lock(&d->dmu);
    kn_dlq *other = find_locked(d, ns, name);
    if (other) { /* opened concurrently: keep the first */
        kn_dlq_ref(other);
        pthread_mutex_unlock(&d->dmu);
        kn_channel_close(q->ch);
        free(q);
        return other;
    }
    q->next = d->dlqs;
    d->dlqs = q;
    pthread_mutex_unlock(&d->dmu);
    return q;
}

void kn_dlq_close_all(kn_dispatcher *d)
{
    pthread_mutex_lock(&d->dmu);
    kn_dlq *q = d->dlqs;
    d->dlqs = NULL;
    pthread_mutex_unlock(&d->dmu);
    while (q) {
        kn_dlq *next = q->next;
        kn_dlq_unref(q);
        q = next;
    }
}

/* ------------------------------------------------------- entries */

ce_event *kn_dlq_entry(const ce_event *orig, const kn_dlq_meta *m)
{
    ce_event *ev = ce_event_clone(orig);
    ce_err cerr = {0};
    char num[32], now[CE_TIME_MAX];
    ce_buf b64 = CE_BUF_INIT;
    if (!ev)
        return NULL;
    for (size_t i = 0; meta_ext[i]; i++)
        ce_event_unset(ev, meta_ext[i]);
    kn_time_format_ns(kn_now_wall_ns(), now);
    snprintf(num, sizeof num, "%" PRIu64, m->offset);
    int rc = ce_event_set_str(ev, "knitdlqtrigger",
                              m->trigger ? m->trigger : "", &cerr);
    if (rc == CE_OK)
        rc = ce_event_set_str(ev, "knitdlqreason", m->reason, &cerr);
    if (rc == CE_OK && m->code > 0)
        rc = ce_event_set_int(ev, "knitdlqcode", m->code, &cerr);
    if (rc == CE_OK && m->error && *m->error)
        rc = ce_event_set_str(ev, "knitdlqerror", m->error, &cerr);
    if (rc == CE_OK && m->dest && *m->dest)
        rc = ce_event_set_str(ev, "knitdlqdest", m->dest, &cerr);
    if (rc == CE_OK && m->data && m->data_len) {
        rc = ce_base64_encode(&b64, m->data,
                              m->data_len > 1024 ? 1024 : m->data_len);
        if (rc == CE_OK)
            rc = ce_event_set_str(ev, "knitdlqdata", b64.data, &cerr);
    }
    if (rc == CE_OK)
        rc = ce_event_set(ev, "knitdlqtime", now, strlen(now),
                          CE_TYPE_TIMESTAMP, &cerr);
    if (rc == CE_OK)
        rc = ce_event_set_str(ev, "knitdlqoffset", num, &cerr);
    ce_buf_free(&b64);
    if (rc != CE_OK) {
        KN_ERROR(KN_DISP, "cannot build a dead letter: %s", cerr.msg);
        ce_event_unref(ev);
        return NULL;
    }
    ce_event_freeze(ev);
    return ev;
}

int kn_dlq_append(kn_dlq *q, ce_event *entry, kn_append_cb cb, void *arg)
{
    return kn_channel_append(q->ch, &entry, 1, cb, arg);
}

ce_event *kn_dlq_original(const ce_event *entry)
{
    ce_event *ev = ce_event_clone(entry);
    if (!ev)
        return NULL;
    for (size_t i = 0; meta_ext[i]; i++)
        ce_event_unset(ev, meta_ext[i]);
    ce_event_freeze(ev);
    return ev;
}

const char *kn_dlq_trigger_of(const ce_event *entry)
{
    return ce_event_get(entry, "knitdlqtrigger", NULL, NULL);
}

static ce_event *tombstone(uint64_t id)
{
    ce_event *ev = ce_event_new();
    ce_err cerr = {0};
    char uuid[37], num[32];
    if (!ev)
        return NULL;
    kn_uuid(uuid);
    snprintf(num, sizeof num, "%" PRIu64, id);
    int rc = ce_event_set_str(ev, "specversion", "1.0", &cerr);
    if (rc == CE_OK)
        rc = ce_event_set_str(ev, "id", uuid, &cerr);
    if (rc == CE_OK)
        rc = ce_event_set_str(ev, "source", "/knit/dlq", &cerr);
    if (rc == CE_OK)
        rc = ce_event_set_str(ev, "type", TOMBSTONE_TYPE, &cerr);
    if (rc == CE_OK)
        rc = ce_event_set_str(ev, "knitdlqremove", num, &cerr);
    if (rc != CE_OK) {
        ce_event_unref(ev);
        return NULL;
    }
    ce_event_freeze(ev);
    return ev;
}

/* ------------------------------------------------------- removal */

typedef struct wait_append {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
} wait_append;

static void on_removed(void *arg, int status, uint64_t first)
{
    wait_append *w = arg;
    (void)first;
    pthread_mutex_lock(&w->mu);
    w->status = status;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int kn_dlq_remove(kn_dlq *q, const uint64_t *ids, size_t n, kn_err *err)
{
    if (n == 0)
        return KN_OK;
    ce_event **evs = calloc(n, sizeof *evs);
    int rc = evs ? KN_OK : KN_NOMEM;
    for (size_t i = 0; rc == KN_OK && i < n; i++)
        if (!(evs[i] = tombstone(ids[i])))
            rc = KN_NOMEM;
    wait_append w = {.status = KN_OK};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    if (rc == KN_OK)
        rc = kn_channel_append(q->ch, evs, n, on_removed, &w);
    if (rc == KN_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.status;
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    if (evs)
        ce_events_free(evs, n);
    if (rc != KN_OK)
        return kn_err_set(err, rc, "cannot update the dead-letter store of "
                          "%s/%s: %s", q->ns, q->name, kn_status_str(rc));
    return KN_OK;
}

static void on_removed_async(void *arg, int status, uint64_t first)
{
    kn_dlq *q = arg;
    (void)first;
    if (status != KN_OK)
        KN_ERROR(KN_DISP, "dead-letter store of %s/%s: cannot record a "
                 "re-delivered entry as removed: %s (it stays listed)",
                 q->ns, q->name, kn_status_str(status));
    kn_dlq_unref(q);
}

int kn_dlq_remove_async(kn_dlq *q, uint64_t id)
{
    ce_event *ev = tombstone(id);
    if (!ev)
        return KN_NOMEM;
    kn_dlq_ref(q);
    int rc = kn_channel_append(q->ch, &ev, 1, on_removed_async, q);
    ce_event_unref(ev);
    if (rc != KN_OK)
        kn_dlq_unref(q);
    return rc;
}

int kn_dlq_replace(kn_dlq *q, ce_event *entry, uint64_t old_id,
                   kn_append_cb cb, void *arg)
{
    ce_event *evs[2] = {entry, tombstone(old_id)};
    if (!evs[1])
        return KN_NOMEM;
    int rc = kn_channel_append(q->ch, evs, 2, cb, arg);
    ce_event_unref(evs[1]);
    return rc;
}

/* ------------------------------------------------------- scanning */

typedef struct idset {
    uint64_t *v;
    size_t n, cap;
} idset;

static int idset_add(idset *s, uint64_t id)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        uint64_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return KN_NOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = id;
    return KN_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool idset_has(const idset *s, uint64_t id)
{
    return s->n && bsearch(&id, s->v, s->n, sizeof *s->v, cmp_u64);
}

/* Reads the whole store once, calling fn on every record. */
static int read_all(kn_dlq *q, int (*fn)(void *, kn_record *), void *arg,
                    kn_err *err)
{
    static const kn_seek start = {.kind = KN_SEEK_START};
    const kn_channel_ops *ops = q->ch->ops;
    char group[64], uuid[37];
    kn_cursor *cur = NULL;
    kn_uuid(uuid);
    snprintf(group, sizeof group, "knit-dlq-%s", uuid);
    int rc = ops->cursor_open(q->ch, group, &start, NULL, &cur, err);
    if (rc != KN_OK)
        return rc;
    kn_record recs[SCAN_BATCH];
    int n = 0;
    while (rc == KN_OK && (n = ops->cursor_next(cur, recs, SCAN_BATCH)) > 0)
        for (int i = 0; i < n; i++) {
            if (rc == KN_OK)
                rc = fn(arg, &recs[i]);
            ce_event_unref(recs[i].event);
        }
    if (rc == KN_OK && n < 0)
        rc = kn_err_set(err, n, "dead-letter store of %s/%s: read failed: "
                        "%s", q->ns, q->name, kn_status_str(n));
    ops->cursor_close(cur);
    ops->cursor_delete(q->ch, group);
    return rc;
}

static int collect_removed(void *arg, kn_record *r)
{
    size_t len = 0;
    const char *v = ce_event_get(r->event, "knitdlqremove", &len, NULL);
    if (!v)
        return KN_OK;
    return idset_add(arg, strtoull(v, NULL, 10));
}

typedef struct scan_ctx {
    idset removed;
    const char *trigger;
    const char *id;
    kn_dlq_item *items;
    size_t n, cap;
} scan_ctx;

static bool wanted(const scan_ctx *s, const kn_record *r)
{
    const char *trig = kn_dlq_trigger_of(r->event);
    if (!trig || ce_event_get(r->event, "knitdlqremove", NULL, NULL))
        return false; /* a tombstone */
    if (s->trigger && strcmp(trig, s->trigger) != 0)
        return false;
    if (s->id) {
        char num[32];
        snprintf(num, sizeof num, "%" PRIu64, r->offset);
        const char *eid = ce_event_get(r->event, "id", NULL, NULL);
        if (strcmp(num, s->id) != 0 && (!eid || strcmp(eid, s->id) != 0))
            return false;
    }
    return !idset_has(&s->removed, r->offset);
}

static int collect_live(void *arg, kn_record *r)
{
    scan_ctx *s = arg;
    if (!wanted(s, r))
        return KN_OK;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        kn_dlq_item *v = realloc(s->items, cap * sizeof *v);
        if (!v)
            return KN_NOMEM;
        s->items = v;
        s->cap = cap;
    }
    s->items[s->n].id = r->offset;
    s->items[s->n].entry = ce_event_ref(r->event);
    s->n++;
    return KN_OK;
}

int kn_dlq_scan(kn_dlq *q, const char *trigger, const char *id,
                kn_dlq_item **items, size_t *n, kn_err *err)
{
    scan_ctx s = {.trigger = trigger && *trigger ? trigger : NULL,
                  .id = id && *id ? id : NULL};
    int rc = read_all(q, collect_removed, &s.removed, err);
    if (rc == KN_OK) {
        if (s.removed.n)
            qsort(s.removed.v, s.removed.n, sizeof *s.removed.v, cmp_u64);
        rc = read_all(q, collect_live, &s, err);
    }
    free(s.removed.v);
    if (rc != KN_OK) {
        kn_dlq_items_free(s.items, s.n);
        if (err && !err->msg[0])
            kn_err_set(err, rc, "dead-letter store of %s/%s: %s", q->ns,
                       q->name, kn_status_str(rc));
        return rc;
    }
    *items = s.items;
    *n = s.n;
    return KN_OK;
}

void kn_dlq_items_free(kn_dlq_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ce_event_unref(items[i].entry);
    free(items);
}

static const char *ext(const ce_event *e, const char *name)
{
    const char *v = ce_event_get(e, name, NULL, NULL);
    return v ? v : "";
}

json_t *kn_dlq_item_json(const kn_dlq_item *it)
{
    const ce_event *e = it->entry;
    ce_event *orig = kn_dlq_original(e);
    ce_buf js = CE_BUF_INIT;
    ce_err cerr = {0};
    json_t *event = NULL;
    if (orig && ce_json_encode(orig, &js, &cerr) == CE_OK)
        event = json_loadb(js.data, js.len, 0, NULL);
    ce_buf_free(&js);
    ce_event_unref(orig);
    const char *code = ce_event_get(e, "knitdlqcode", NULL, NULL);
    const char *off = ce_event_get(e, "knitdlqoffset", NULL, NULL);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}",
                          "id", (json_int_t)it->id,
                          "trigger", ext(e, "knitdlqtrigger"),
                          "reason", ext(e, "knitdlqreason"),
                          "error", ext(e, "knitdlqerror"),
                          "dest", ext(e, "knitdlqdest"),
                          "time", ext(e, "knitdlqtime"));
    if (!o) {
        json_decref(event);
        return NULL;
    }
    json_object_set_new(o, "code", json_integer(code ? atoi(code) : 0));
    if (off)
        json_object_set_new(o, "offset",
                            json_integer((json_int_t)strtoull(off, NULL,
                                                              10)));
    const char *data = ce_event_get(e, "knitdlqdata", NULL, NULL);
    if (data)
        json_object_set_new(o, "data", json_string(data));
    json_object_set_new(o, "event", event ? event : json_null());
    return o;
}
