/*
 * Persistence of the desired state: every applied resource, kept sorted in
 * memory and written as one JSON file DATA/resources/resources.json with
 * an atomic write (tmp + fsync + rename + fsync dir), so an apply that
 * spans several resources is all-or-nothing on disk too. On open the file
 * is read back and every resource is decoded again by its kind table.
 *
 * Not thread-safe: the reconciler serialises every call under its mutex.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/broker.h"

#define STORE_FILE "resources.json"
#define STORE_VERSION 1

struct kn_store {
    char dir[4096];
    char path[4200];
    kn_resource **items; /* sorted by kind, ns, name */
    size_t count;
};

const char *kn_apply_action_str(kn_apply_action a)
{
    static const char *const names[] = {"created", "configured", "unchanged",
                                        "deleted", "not found"};
    return (unsigned)a < 5 ? names[a] : "?";
}

static int kind_index(const kn_kind *k)
{
    for (int i = 0; kn_kinds[i]; i++)
        if (kn_kinds[i] == k)
            return i;
    return -1;
}

static int res_cmp(const kn_kind *k, const char *ns, const char *name,
                   const kn_resource *r)
{
    int c = kind_index(k) - kind_index(r->kind);
    if (c)
        return c;
    if ((c = strcmp(ns, r->ns)) != 0)
        return c;
    return strcmp(name, r->name);
}

static int res_qsort_cmp(const void *a, const void *b)
{
    const kn_resource *x = *(kn_resource *const *)a;
    const kn_resource *y = *(kn_resource *const *)b;
    return res_cmp(x->kind, x->ns, x->name, y);
}

/* Index of the match, or -(insertion point) - 1. */
static long store_search(kn_resource **items, size_t count, const kn_kind *k,
                         const char *ns, const char *name)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = res_cmp(k, ns, name, items[mid]);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -(long)lo - 1;
}

size_t kn_store_count(const kn_store *st)
{
    return st->count;
}

kn_resource *kn_store_at(const kn_store *st, size_t i)
{
    return i < st->count ? st->items[i] : NULL;
}

kn_resource *kn_store_find(const kn_store *st, const kn_kind *kind,
                           const char *ns, const char *name)
{
    long i = store_search(st->items, st->count, kind, ns, name);
    return i >= 0 ? st->items[i] : NULL;
}

/* Re-decodes a persisted object through its kind table, keeping the
 * output-only generation and creationTimestamp. */
static int load_one(kn_store *st, json_t *obj, size_t idx, kn_resource **out,
                    kn_err *err)
{
    char name[4300];
    snprintf(name, sizeof name, "%s[%zu]", st->path, idx);
    kn_yaml_doc doc = {.root = obj, .line = 0, .lines = NULL};
    json_t *meta = json_object_get(obj, "metadata");
    json_t *gen = json_incref(json_object_get(meta, "generation"));
    json_t *ts = json_incref(json_object_get(meta, "creationTimestamp"));
    kn_resource *r = NULL;
    int rc = kn_resource_decode(name, &doc, &r, err);
    if (rc == KN_OK && !r)
        rc = kn_err_set(err, KN_CORRUPT, "%s: empty resource", name);
    if (rc == KN_OK) {
        json_t *m = json_object_get(r->obj, "metadata");
        json_object_set_new(m, "generation",
                            gen ? gen : json_integer(1));
        json_object_set_new(m, "creationTimestamp",
                            ts ? ts : json_string(""));
        gen = ts = NULL;
        *out = r;
    }
    json_decref(gen);
    json_decref(ts);
    return rc;
}

static int store_load(kn_store *st, kn_err *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(st->path, 0, &jerr);
    if (!root) {
        struct stat sb;
        if (stat(st->path, &sb) != 0 && errno == ENOENT)
            return KN_OK;
        return kn_err_set(err, KN_CORRUPT, "%s:%d: %s", st->path, jerr.line,
                          jerr.text);
    }
    json_t *list = json_object_get(root, "resources");
    int rc = KN_OK;
    if (json_integer_value(json_object_get(root, "version")) !=
            STORE_VERSION || !json_is_array(list)) {
        rc = kn_err_set(err, KN_CORRUPT,
                        "%s: not a knit resource file (version %d)",
                        st->path, STORE_VERSION);
        goto out;
    }
    st->items = calloc(json_array_size(list) + 1, sizeof *st->items);
    if (!st->items) {
        rc = kn_err_set(err, KN_NOMEM, "out of memory");
        goto out;
    }
    size_t i;
    json_t *obj;
    json_array_foreach(list, i, obj) {
        kn_resource *r = NULL;
        if ((rc = load_one(st, obj, i, &r, err)) != KN_OK)
            goto out;
        st->items[st->count++] = r;
    }
    qsort(st->items, st->count, sizeof *st->items, res_qsort_cmp);
out:
    json_decref(root);
    return rc;
}

int kn_store_open(const char *data_dir, kn_store **out, kn_err *err)
{
    kn_store *st = calloc(1, sizeof *st);
    if (!st)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    snprintf(st->dir, sizeof st->dir, "%s/resources", data_dir);
    snprintf(st->path, sizeof st->path, "%s/%s", st->dir, STORE_FILE);
    if (kn_mkdirs(st->dir, 0755) != 0) {
        int rc = kn_err_set(err, KN_IO, "cannot create %s: %s", st->dir,
                            strerror(errno));
        free(st);
        return rc;
    }
    int rc = store_load(st, err);
    if (rc != KN_OK) {
        kn_store_close(st);
        return rc;
    }
    *out = st;
    return KN_OK;
}

void kn_store_close(kn_store *st)
{
    if (!st)
        return;
    kn_resources_free(st->items, st->count);
    free(st);
}

static int store_write(kn_store *st, kn_resource **items, size_t count,
                       kn_err *err)
{
    json_t *root = json_pack("{s:i, s:[]}", "version", STORE_VERSION,
                             "resources");
    if (!root)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    json_t *list = json_object_get(root, "resources");
    for (size_t i = 0; i < count; i++)
        json_array_append(list, items[i]->obj);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    int rc = kn_write_file_atomic(st->path, text, strlen(text), err);
    free(text);
    return rc;
}

/* A stored copy of r with generation/creationTimestamp set. */
static kn_resource *stored_copy(const kn_resource *r, json_int_t gen,
                                json_t *created)
{
    json_t *obj = json_deep_copy(r->obj);
    if (!obj)
        return NULL;
    json_t *meta = json_object_get(obj, "metadata");
    json_object_set_new(meta, "generation", json_integer(gen));
    if (created) {
        json_object_set(meta, "creationTimestamp", created);
    } else {
        char ts[CE_TIME_MAX];
        kn_timestamp_now(ts);
        json_object_set_new(meta, "creationTimestamp", json_string(ts));
    }
    kn_resource *c = kn_resource_wrap(r->kind, obj, r->where);
    if (!c)
        json_decref(obj);
    return c;
}

/* Applies one upsert to the working array (which holds references). */
static int work_upsert(kn_resource ***items, size_t *count, kn_resource *r,
                       kn_apply_action *act)
{
    long i = store_search(*items, *count, r->kind, r->ns, r->name);
    kn_resource *old = i >= 0 ? (*items)[i] : NULL;
    if (old && kn_resource_same(old, r)) {
        *act = KN_ACT_UNCHANGED;
        return KN_OK;
    }
    json_t *meta = old ? json_object_get(old->obj, "metadata") : NULL;
    json_int_t gen = old ? json_integer_value(
                               json_object_get(meta, "generation")) + 1
                         : 1;
    kn_resource *c =
        stored_copy(r, gen, old ? json_object_get(meta, "creationTimestamp")
                                : NULL);
    if (!c)
        return KN_NOMEM;
    if (old) {
        kn_resource_decref(old);
        (*items)[i] = c;
        *act = KN_ACT_CONFIGURED;
        return KN_OK;
    }
    size_t at = (size_t)(-i - 1);
    memmove(*items + at + 1, *items + at, (*count - at) * sizeof **items);
    (*items)[at] = c;
    (*count)++;
    *act = KN_ACT_CREATED;
    return KN_OK;
}

static void work_delete(kn_resource **items, size_t *count,
                        const kn_resource *r, kn_apply_action *act)
{
    long i = store_search(items, *count, r->kind, r->ns, r->name);
    if (i < 0) {
        *act = KN_ACT_NOT_FOUND;
        return;
    }
    kn_resource_decref(items[i]);
    memmove(items + i, items + i + 1,
            (*count - (size_t)i - 1) * sizeof *items);
    (*count)--;
    *act = KN_ACT_DELETED;
}

/* Copies the current items into a working array with room for n more. */
static kn_resource **work_begin(const kn_store *st, size_t n)
{
    kn_resource **w = calloc(st->count + n + 1, sizeof *w);
    for (size_t i = 0; w && i < st->count; i++)
        w[i] = kn_resource_incref(st->items[i]);
    return w;
}

static int work_commit(kn_store *st, kn_resource **w, size_t count,
                       bool changed, kn_err *err)
{
    if (changed) {
        int rc = store_write(st, w, count, err);
        if (rc != KN_OK) {
            kn_resources_free(w, count);
            return rc;
        }
    }
    kn_resources_free(st->items, st->count);
    st->items = w;
    st->count = count;
    return KN_OK;
}

int kn_store_apply(kn_store *st, kn_resource **rs, size_t n,
                   kn_apply_action *actions, kn_err *err)
{
    kn_resource **w = work_begin(st, n);
    size_t count = st->count;
    bool changed = false;
    if (!w)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (work_upsert(&w, &count, rs[i], &actions[i]) != KN_OK) {
            kn_resources_free(w, count);
            return kn_err_set(err, KN_NOMEM, "out of memory");
        }
        changed |= actions[i] != KN_ACT_UNCHANGED;
    }
    return work_commit(st, w, count, changed, err);
}

int kn_store_delete(kn_store *st, kn_resource **rs, size_t n,
                    kn_apply_action *actions, kn_err *err)
{
    kn_resource **w = work_begin(st, 0);
    size_t count = st->count;
    bool changed = false;
    if (!w)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        work_delete(w, &count, rs[i], &actions[i]);
        changed |= actions[i] == KN_ACT_DELETED;
    }
    return work_commit(st, w, count, changed, err);
}
