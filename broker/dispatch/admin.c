/*
 * Admin API of the dispatcher (called by broker/admin.c on admin threads):
 *   GET  /v1/dlq/<ns>/<broker>[?trigger=T&id=ID&limit=N]   list
 *   POST /v1/dlq/<ns>/<broker>/replay[?trigger=T&id=ID]     re-drive
 *   POST /v1/dlq/<ns>/<broker>/purge[?trigger=T&id=ID]      remove
 *   POST /v1/replay/<ns>/<trigger>?from=start|end|OFFSET|RFC3339
 * Re-drives and replays run on the loop (posted, waited for): a re-drive
 * is a delivery to the trigger's current subscriber with its delivery
 * spec; once it is delivered (or taken by the dead-letter sink) the entry
 * is removed; if it fails again it is stored again (a new entry, with the
 * old one removed in the same atomic append). A replay moves the
 * trigger's cursor: the trigger is restarted there (in-flight deliveries
 * are cancelled) and reads history through its cursor, filters applied.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dispatch/dispatch_int.h"

#define LIST_LIMIT 1000
#define REDRIVE_CHUNK 128

static json_t *err_body(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static json_t *err_body(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:s}", "error", msg);
}

/* Splits "a/b[/c]" into up to 3 segments; returns the count (0 = bad). */
static int split(const char *p, char seg[3][64])
{
    int n = 0;
    while (*p && n < 3) {
        size_t l = strcspn(p, "/");
        if (l == 0 || l >= 64)
            return 0;
        memcpy(seg[n], p, l);
        seg[n][l] = '\0';
        n++;
        p += l;
        if (*p == '/')
            p++;
    }
    return *p ? 0 : n;
}

bool kn_dispatcher_admin_path(const char *path)
{
    return strncmp(path, "/v1/dlq/", 8) == 0 ||
           strncmp(path, "/v1/replay/", 11) == 0;
}

/* ------------------------------------------------------- replay */

typedef struct replay_req {
    kn_dispatcher *d;
    char ns[64];
    char name[64];
    kn_seek seek;
    unsigned code;
    char msg[800];
} replay_req;

static void replay_run(kn_sink_client *c, void *arg)
{
    replay_req *r = arg;
    kn_dispatcher *d = r->d;
    kn_err err = {0};
    (void)c;
    kn_trig *t = kn_disp_find(d, r->ns, r->name);
    if (!t) {
        r->code = 409;
        snprintf(r->msg, sizeof r->msg, "trigger %s/%s is not running (see "
                 "knit describe trigger %s -n %s)", r->ns, r->name, r->name,
                 r->ns);
        return;
    }
    kn_feed *f = t->feed;
    kn_cursor *cur = t->cur;
    kn_cslot_remove(d, t->slot, false, NULL, 0);
    t->slot = NULL;
    t->cur = NULL;
    kn_trig_zombify(t, false);
    if (cur->channel->ops->cursor_seek(cur, &r->seek, &err) != KN_OK) {
        r->code = 500;
        snprintf(r->msg, sizeof r->msg, "seek: %s", err.msg);
    }
    kn_trig *nt = kn_trig_new(d, t->cfg, f, t->chan, t->dlq, cur);
    if (!nt) {
        cur->channel->ops->cursor_close(cur);
        r->code = 500;
        snprintf(r->msg, sizeof r->msg, "out of memory");
        return;
    }
    kn_feed_reindex(f);
    kn_disp_reap(d);
    if (!r->code)
        r->code = 200;
    KN_INFO(KN_DISP, "trigger %s/%s: replaying from the requested "
            "position", r->ns, r->name);
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static unsigned do_replay(kn_dispatcher *d, const char *ns,
                          const char *name, const char *from, json_t **body)
{
    replay_req r = {.d = d};
    kn_err err = {0};
    if (!from || !*from) {
        *body = err_body("from: required (start, end, an offset or an "
                         "RFC 3339 time)");
        return 400;
    }
    if (strcmp(from, "start") == 0) {
        r.seek.kind = KN_SEEK_START;
    } else if (strcmp(from, "end") == 0) {
        r.seek.kind = KN_SEEK_END;
    } else if (all_digits(from)) {
        r.seek.kind = KN_SEEK_OFFSET;
        r.seek.offset = strtoull(from, NULL, 10);
    } else if (kn_time_parse_ns(from, &r.seek.time_ns, &err) == KN_OK) {
        r.seek.kind = KN_SEEK_TIME;
    } else {
        *body = err_body("from: \"%s\" is not start, end, an offset or an "
                         "RFC 3339 time", from);
        return 400;
    }
    snprintf(r.ns, sizeof r.ns, "%s", ns);
    snprintf(r.name, sizeof r.name, "%s", name);
    if (kn_disp_call(d, replay_run, &r) != KN_OK) {
        *body = err_body("the dispatcher is stopping");
        return 503;
    }
    if (r.code != 200) {
        *body = err_body("%s", r.msg);
        return r.code;
    }
    *body = json_pack("{s:s, s:s, s:s}", "namespace", ns, "trigger", name,
                      "from", from);
    return 200;
}

/* ------------------------------------------------------- re-drive */

static void redrive_free(kn_redrive *rd)
{
    ce_event_unref(rd->ev);
    kn_tcfg_unref(rd->cfg);
    kn_chanref_unref(rd->chan);
    kn_dlq_unref(rd->dlq);
    free(rd);
}

static void unlink_rd(kn_dispatcher *d, kn_redrive *rd)
{
    for (kn_redrive **pp = &d->redrives; *pp; pp = &(*pp)->next)
        if (*pp == rd) {
            *pp = rd->next;
            return;
        }
}

typedef struct reply_ctx {
    kn_chanref *chan;
    char key[130];
} reply_ctx;

static void redrive_reply_stored(void *arg, int status, uint64_t first)
{
    reply_ctx *rc = arg;
    (void)first;
    if (status != KN_OK)
        KN_ERROR(KN_DISP, "trigger %s: the reply to a re-delivered dead "
                 "letter could not be stored: %s", rc->key,
                 kn_status_str(status));
    kn_chanref_unref(rc->chan);
    free(rc);
}

static void redrive_reply(kn_redrive *rd, ce_event *reply,
                          const kn_delivery_result *res)
{
    ce_err cerr = {0};
    char arrival[CE_TIME_MAX];
    kn_time_format_ns(kn_now_wall_ns(), arrival);
    if (res->has_ttl)
        ce_event_set_int(reply, "knativebrokerttl", res->ttl, &cerr);
    else
        ce_event_unset(reply, "knativebrokerttl");
    reply_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx || kn_event_stamp(reply, arrival, &cerr) != CE_OK) {
        KN_WARN(KN_DISP, "trigger %s: reply to a re-delivered dead letter "
                "dropped: %s", rd->cfg->key, ctx ? cerr.msg : "no memory");
        free(ctx);
        return;
    }
    ce_event_freeze(reply);
    ctx->chan = kn_chanref_ref(rd->chan);
    snprintf(ctx->key, sizeof ctx->key, "%s", rd->cfg->key);
    if (kn_channel_append(rd->chan->ch, &reply, 1, redrive_reply_stored,
                          ctx) != KN_OK)
        redrive_reply_stored(ctx, KN_UNAVAILABLE, 0);
}

static void restored(void *arg, int status, uint64_t first)
{
    kn_dlq *q = arg;
    (void)first;
    if (status != KN_OK)
        KN_ERROR(KN_DISP, "a re-delivered dead letter failed again and could "
                 "not be stored again: %s (the old entry stays)",
                 kn_status_str(status));
    kn_dlq_unref(q);
}

/* Failed again: a new entry and the old one's tombstone, atomically. */
static void redrive_failed(kn_redrive *rd, const kn_delivery_result *res)
{
    kn_dlq_meta m = {.trigger = rd->cfg->name,
                     .reason = res->dls_attempts ? "dead-letter-sink"
                                                 : "delivery",
                     .code = res->error_code, .error = res->error,
                     .dest = rd->cfg->url, .data = res->error_data,
                     .data_len = res->error_data_len};
    ce_event *entry = kn_dlq_entry(rd->ev, &m);
    int rc = KN_NOMEM;
    if (entry) {
        kn_dlq_ref(rd->dlq);
        rc = kn_dlq_replace(rd->dlq, entry, rd->id, restored, rd->dlq);
        if (rc != KN_OK)
            kn_dlq_unref(rd->dlq);
        ce_event_unref(entry);
    }
    if (rc != KN_OK)
        KN_ERROR(KN_DISP, "trigger %s: a re-delivered dead letter failed "
                 "again and could not be stored again: %s (the old entry "
                 "stays)", rd->cfg->key, kn_status_str(rc));
}

static void redrive_done(const kn_delivery_result *res, void *arg)
{
    kn_redrive *rd = arg;
    kn_dispatcher *d = rd->d;
    atomic_fetch_sub(&d->outstanding, 1);
    unlink_rd(d, rd);
    switch (res->status) {
    case KN_DELIVERY_DELIVERED:
        if (res->reply)
            redrive_reply(rd, res->reply, res);
        /* fallthrough */
    case KN_DELIVERY_DEAD_LETTERED:
        if (kn_dlq_remove_async(rd->dlq, rd->id) != KN_OK)
            KN_ERROR(KN_DISP, "trigger %s: dead letter %" PRIu64 " was "
                     "re-delivered but stays listed (no memory)",
                     rd->cfg->key, rd->id);
        break;
    case KN_DELIVERY_FAILED:
        redrive_failed(rd, res);
        break;
    case KN_DELIVERY_CANCELLED:
        break;
    }
    if (res->reply)
        ce_event_unref(res->reply);
    redrive_free(rd);
}

void kn_redrive_cancel_all(kn_dispatcher *d)
{
    for (kn_redrive *rd = d->redrives; rd; rd = rd->next)
        if (rd->h)
            kn_sink_cancel(rd->h);
}

void kn_redrive_free_all(kn_dispatcher *d)
{
    while (d->redrives) {
        kn_redrive *rd = d->redrives;
        d->redrives = rd->next;
        redrive_free(rd);
    }
}

typedef struct redrive_batch {
    kn_dispatcher *d;
    kn_dlq *dlq;
    char ns[64];
    kn_dlq_item *items;
    size_t n;
    size_t started, busy, not_running;
    json_t *skipped;
} redrive_batch;

static bool redriving(const kn_dispatcher *d, const kn_dlq *q, uint64_t id)
{
    for (const kn_redrive *rd = d->redrives; rd; rd = rd->next)
        if (rd->dlq == q && rd->id == id)
            return true;
    return false;
}

static void redrive_run(kn_sink_client *c, void *arg)
{
    redrive_batch *b = arg;
    kn_dispatcher *d = b->d;
    for (size_t i = 0; i < b->n; i++) {
        kn_dlq_item *it = &b->items[i];
        const char *trig = kn_dlq_trigger_of(it->entry);
        if (redriving(d, b->dlq, it->id)) {
            b->busy++;
            continue;
        }
        kn_trig *t = kn_disp_find(d, b->ns, trig);
        if (!t) {
            b->not_running++;
            json_array_append_new(b->skipped, json_pack(
                "{s:I, s:s, s:s}", "id", (json_int_t)it->id, "trigger",
                trig, "reason", "the trigger is not running"));
            continue;
        }
        kn_redrive *rd = calloc(1, sizeof *rd);
        ce_event *ev = kn_dlq_original(it->entry);
        kn_err err = {0};
        if (!rd || !ev) {
            free(rd);
            ce_event_unref(ev);
            continue;
        }
        rd->d = d;
        rd->dlq = kn_dlq_ref(b->dlq);
        rd->id = it->id;
        rd->ev = ev;
        rd->cfg = kn_tcfg_ref(t->cfg);
        rd->chan = kn_chanref_ref(t->chan);
        kn_delivery_req req = {.event = ev, .url = t->cfg->url,
                               .spec = &t->cfg->spec, .ns = t->cfg->ns};
        if (kn_sink_submit_h(c, &req, redrive_done, rd, &rd->h, &err) !=
            KN_OK) {
            json_array_append_new(b->skipped, json_pack(
                "{s:I, s:s, s:s}", "id", (json_int_t)it->id, "trigger",
                trig, "reason", err.msg));
            redrive_free(rd);
            continue;
        }
        atomic_fetch_add(&d->outstanding, 1);
        rd->next = d->redrives;
        d->redrives = rd;
        b->started++;
    }
}

/* ------------------------------------------------------- dlq routes */

static const char *qarg(kn_query_fn arg, void *ctx, const char *name)
{
    const char *v = arg ? arg(ctx, name) : NULL;
    return v && *v ? v : NULL;
}

static unsigned dlq_list(kn_dlq *q, kn_query_fn arg, void *ctx,
                         json_t **body)
{
    kn_dlq_item *items = NULL;
    size_t n = 0;
    kn_err err = {0};
    const char *lim = qarg(arg, ctx, "limit");
    size_t limit = lim && all_digits(lim) ? strtoul(lim, NULL, 10)
                                          : LIST_LIMIT;
    if (kn_dlq_scan(q, qarg(arg, ctx, "trigger"), qarg(arg, ctx, "id"),
                    &items, &n, &err) != KN_OK) {
        *body = err_body("%s", err.msg);
        return 503;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < n && i < limit; i++)
        json_array_append_new(list, kn_dlq_item_json(&items[i]));
    kn_dlq_items_free(items, n);
    *body = json_pack("{s:o, s:I}", "items", list ? list : json_array(),
                      "total", (json_int_t)n);
    return 200;
}

static unsigned dlq_replay(kn_dispatcher *d, kn_dlq *q, const char *ns,
                           kn_query_fn arg, void *ctx, json_t **body)
{
    kn_dlq_item *items = NULL;
    size_t n = 0;
    kn_err err = {0};
    if (kn_dlq_scan(q, qarg(arg, ctx, "trigger"), qarg(arg, ctx, "id"),
                    &items, &n, &err) != KN_OK) {
        *body = err_body("%s", err.msg);
        return 503;
    }
    redrive_batch b = {.d = d, .dlq = q, .skipped = json_array()};
    snprintf(b.ns, sizeof b.ns, "%s", ns);
    int rc = KN_OK;
    for (size_t i = 0; rc == KN_OK && i < n; i += REDRIVE_CHUNK) {
        b.items = items + i;
        b.n = n - i < REDRIVE_CHUNK ? n - i : REDRIVE_CHUNK;
        rc = kn_disp_call(d, redrive_run, &b);
    }
    kn_dlq_items_free(items, n);
    if (rc != KN_OK) {
        json_decref(b.skipped);
        *body = err_body("the dispatcher is stopping");
        return 503;
    }
    *body = json_pack("{s:I, s:I, s:I, s:o}", "replayed",
                      (json_int_t)b.started, "in_progress",
                      (json_int_t)b.busy, "not_running",
                      (json_int_t)b.not_running, "skipped",
                      b.skipped ? b.skipped : json_array());
    return 200;
}

static unsigned dlq_purge(kn_dlq *q, kn_query_fn arg, void *ctx,
                          json_t **body)
{
    kn_dlq_item *items = NULL;
    size_t n = 0;
    kn_err err = {0};
    if (kn_dlq_scan(q, qarg(arg, ctx, "trigger"), qarg(arg, ctx, "id"),
                    &items, &n, &err) != KN_OK) {
        *body = err_body("%s", err.msg);
        return 503;
    }
    uint64_t *ids = calloc(n + 1, sizeof *ids);
    int rc = ids ? KN_OK : kn_err_set(&err, KN_NOMEM, "out of memory");
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = items[i].id;
    kn_dlq_items_free(items, n);
    if (rc == KN_OK)
        rc = kn_dlq_remove(q, ids, n, &err);
    free(ids);
    if (rc != KN_OK) {
        *body = err_body("%s", err.msg);
        return 503;
    }
    *body = json_pack("{s:I}", "purged", (json_int_t)n);
    return 200;
}

static bool resource_exists(kn_server *srv, const kn_kind *k,
                            const char *ns, const char *name)
{
    json_t *o = kn_server_get(srv, k, ns, name);
    json_decref(o);
    return o != NULL;
}

unsigned kn_dispatcher_admin(kn_server *srv, const char *method,
                             const char *path, kn_query_fn arg, void *ctx,
                             json_t **body)
{
    kn_dispatcher *d = kn_server_dispatcher(srv);
    char seg[3][64];
    bool post = strcmp(method, "POST") == 0;
    bool replay = strncmp(path, "/v1/replay/", 11) == 0;
    int n = split(path + (replay ? 11 : 8), seg);
    *body = NULL;
    if (!d) {
        *body = err_body("the dispatcher is not running");
        return 503;
    }
    if (replay) {
        if (n != 2) {
            *body = err_body("expected POST /v1/replay/<ns>/<trigger>");
            return 404;
        }
        if (!post) {
            *body = err_body("method not allowed (use POST)");
            return 405;
        }
        if (!resource_exists(srv, &kn_kind_trigger, seg[0], seg[1])) {
            *body = err_body("trigger %s/%s not found", seg[0], seg[1]);
            return 404;
        }
        return do_replay(d, seg[0], seg[1], qarg(arg, ctx, "from"), body);
    }
    if (n < 2 || (n == 3 && strcmp(seg[2], "replay") &&
                  strcmp(seg[2], "purge"))) {
        *body = err_body("expected /v1/dlq/<ns>/<broker>[/replay|/purge]");
        return 404;
    }
    if (post != (n == 3)) {
        *body = err_body("method not allowed (use %s)", post ? "GET"
                                                             : "POST");
        return 405;
    }
    if (!resource_exists(srv, &kn_kind_broker, seg[0], seg[1])) {
        *body = err_body("broker %s/%s not found", seg[0], seg[1]);
        return 404;
    }
    kn_err err = {0};
    kn_dlq *q = kn_dlq_get(d, seg[0], seg[1], &err);
    if (!q) {
        *body = err_body("dead-letter store of %s/%s: %s", seg[0], seg[1],
                         err.msg);
        return 503;
    }
    unsigned code;
    if (n == 2)
        code = dlq_list(q, arg, ctx, body);
    else if (strcmp(seg[2], "replay") == 0)
        code = dlq_replay(d, q, seg[0], arg, ctx, body);
    else
        code = dlq_purge(q, arg, ctx, body);
    kn_dlq_unref(q);
    return code;
}
