/*
 * Trigger filters: compiling a trigger spec's `filter.attributes` (legacy)
 * and `filters` (Subscriptions API dialects: exact, prefix, suffix, all,
 * any, not, cesql) into a flat node array, and evaluating it against an
 * event, optionally explaining the first clause that failed.
 *
 * Semantics (DESIGN.md §4, docs/filters.md):
 * - `filters` non-empty overrides `filter`; both are validated.
 * - Legacy attributes: every key present; "" = present with any value;
 *   otherwise an exact, case-sensitive match of the canonical string.
 * - exact/prefix/suffix compare the attribute's canonical string form.
 * - cesql matches only on Boolean true; an evaluation error is no match
 *   and is counted (kn_filter_cesql_errors).
 *
 * Evaluation allocates nothing: CESQL runs in a scratch context owned by
 * the calling thread (created on its first CESQL evaluation, freed when
 * the thread exits).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/filter/filter_int.h"

#define KF_MAX_DEPTH 64   /* nesting of all/any/not */
#define KF_PATH_MAX 512
#define KF_SHOW_MAX 64    /* bytes of a value shown in an explanation */

static const char *const dialects[] = {
    "exact", "prefix", "suffix", "all", "any", "not", "cesql", NULL,
};

/* ------------------------------------------------------ CESQL scratch */

static atomic_uint_fast64_t cesql_errors;
static pthread_key_t sql_key;
static pthread_once_t sql_once = PTHREAD_ONCE_INIT;
static _Thread_local ce_sql_ctx *tls_sql;

static void sql_ctx_dtor(void *p)
{
    ce_sql_ctx_free(p);
    tls_sql = NULL;
}

static void sql_key_init(void)
{
    if (pthread_key_create(&sql_key, sql_ctx_dtor) != 0)
        abort();
}

/* The calling thread's scratch context; NULL only when out of memory. */
static ce_sql_ctx *sql_ctx(void)
{
    if (tls_sql)
        return tls_sql;
    pthread_once(&sql_once, sql_key_init);
    tls_sql = ce_sql_ctx_new();
    if (tls_sql && pthread_setspecific(sql_key, tls_sql) != 0) {
        ce_sql_ctx_free(tls_sql);
        tls_sql = NULL;
    }
    return tls_sql;
}

uint64_t kn_filter_cesql_errors(void)
{
    return (uint64_t)atomic_load_explicit(&cesql_errors,
                                          memory_order_relaxed);
}

/* ------------------------------------------------------------ compile */

typedef struct kf_build {
    kn_filter *f;
    uint32_t cap_nodes, cap_kids;
    ce_buf pool;
    kn_err *err;
} kf_build;

__attribute__((format(printf, 3, 4)))
static int fail(kf_build *b, const char *path, const char *fmt, ...)
{
    char msg[sizeof b->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kn_err_set_at(b->err, KN_INVAL, NULL, path, "%s", msg);
}

/* snprintf for clause paths (truncation is acceptable: paths are shown
 * to people and bounded by KF_PATH_MAX). */
__attribute__((format(printf, 3, 4)))
static void path_fmt(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static int nomem(kf_build *b)
{
    return kn_err_set(b->err, KN_NOMEM, "out of memory compiling a filter");
}

/* Appends a NUL-terminated string to the pool; its offset in *off. */
static int pool_add(kf_build *b, const char *s, size_t n, uint32_t *off)
{
    if (b->pool.len + n + 1 > UINT32_MAX)
        return fail(b, "", "filter too large");
    *off = (uint32_t)b->pool.len;
    if (ce_buf_append(&b->pool, s, n) != CE_OK ||
        ce_buf_append(&b->pool, "", 1) != CE_OK)
        return nomem(b);
    return KN_OK;
}

/* A new zeroed node; its index in *idx. The path is copied. */
static int node_new(kf_build *b, kf_op op, const char *path, uint32_t *idx)
{
    kn_filter *f = b->f;
    if (f->nnodes == b->cap_nodes) {
        uint32_t cap = b->cap_nodes ? b->cap_nodes * 2 : 8;
        kf_node *p = realloc(f->nodes, cap * sizeof *p);
        if (!p)
            return nomem(b);
        f->nodes = p;
        b->cap_nodes = cap;
    }
    kf_node *n = &f->nodes[f->nnodes];
    memset(n, 0, sizeof *n);
    n->op = (uint8_t)op;
    *idx = f->nnodes++;
    return pool_add(b, path, strlen(path), &f->nodes[*idx].path_off);
}

/* Appends the children of an ALL/ANY node (contiguous in f->kids). */
static int kids_add(kf_build *b, uint32_t node, const uint32_t *kids,
                    uint32_t n)
{
    kn_filter *f = b->f;
    if (f->nkids + n > b->cap_kids) {
        uint32_t cap = b->cap_kids ? b->cap_kids : 8;
        while (cap < f->nkids + n)
            cap *= 2;
        uint32_t *p = realloc(f->kids, cap * sizeof *p);
        if (!p)
            return nomem(b);
        f->kids = p;
        b->cap_kids = cap;
    }
    memcpy(f->kids + f->nkids, kids, n * sizeof *kids);
    f->nodes[node].kid0 = f->nkids;
    f->nodes[node].nkids = n;
    f->nkids += n;
    return KN_OK;
}

/* An ALL/ANY node over kids[0..n); a single child stands for itself. */
static int group(kf_build *b, kf_op op, const char *path,
                 const uint32_t *kids, uint32_t n, uint32_t *out)
{
    if (n == 1) {
        *out = kids[0];
        return KN_OK;
    }
    int rc = node_new(b, op, path, out);
    return rc ? rc : kids_add(b, *out, kids, n);
}

static bool name_ok(const char *s, bool legacy)
{
    if (!*s || (legacy && !(*s >= 'a' && *s <= 'z')))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static int leaf(kf_build *b, kf_op op, const char *path, const char *attr,
                const char *val, size_t vlen, uint32_t *out)
{
    int rc = node_new(b, op, path, out);
    if (rc)
        return rc;
    kf_node tmp = b->f->nodes[*out];
    rc = pool_add(b, attr, strlen(attr), &tmp.attr_off);
    if (!rc && val)
        rc = pool_add(b, val, vlen, &tmp.val_off);
    if (rc)
        return rc;
    tmp.attr_len = (uint32_t)strlen(attr);
    tmp.val_len = (uint32_t)vlen;
    b->f->nodes[*out] = tmp;
    return KN_OK;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a map";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* A scalar YAML would have typed (5, true) gets a hint to quote it. */
static int not_a_string(kf_build *b, const char *path, const json_t *v)
{
    if (json_is_number(v) || json_is_boolean(v)) {
        char *txt = json_dumps(v, JSON_ENCODE_ANY);
        int rc = fail(b, path, "expected a string, got %s (quote it in "
                      "YAML: \"%s\")", json_kind(v), txt ? txt : "");
        free(txt);
        return rc;
    }
    return fail(b, path, "expected a string, got %s", json_kind(v));
}

/* exact / prefix / suffix: a non-empty map of attribute → non-empty
 * string; several entries are an implicit all. */
static int compile_map(kf_build *b, kf_op op, const char *dialect,
                       const json_t *map, const char *path, uint32_t *out)
{
    char p[KF_PATH_MAX];
    if (!json_is_object(map))
        return fail(b, path, "%s expects a map of attribute names to "
                    "values, got %s", dialect, json_kind(map));
    size_t n = json_object_size(map);
    if (n == 0)
        return fail(b, path, "%s needs at least one attribute", dialect);
    uint32_t *kids = malloc(n * sizeof *kids);
    if (!kids)
        return nomem(b);
    uint32_t k = 0;
    const char *key;
    json_t *v;
    int rc = KN_OK;
    json_object_foreach((json_t *)(uintptr_t)map, key, v) {
        path_fmt(p, sizeof p, "%s.%s", path, key);
        if (!name_ok(key, false))
            rc = fail(b, p, "invalid attribute name \"%s\": CloudEvents "
                      "attribute names are lower-case letters and digits",
                      key);
        else if (!json_is_string(v))
            rc = not_a_string(b, p, v);
        else if (json_string_length(v) == 0)
            rc = fail(b, p, "%s value must not be empty", dialect);
        else
            rc = leaf(b, op, p, key, json_string_value(v),
                      json_string_length(v), &kids[k++]);
        if (rc)
            break;
    }
    if (!rc)
        rc = group(b, KF_ALL, path, kids, k, out);
    free(kids);
    return rc;
}

static int compile_one(kf_build *b, const json_t *elem, const char *path,
                       int depth, uint32_t *out);

/* all / any: a non-empty list of filters. */
static int compile_list(kf_build *b, kf_op op, const char *dialect,
                        const json_t *list, const char *path, int depth,
                        uint32_t *out)
{
    char p[KF_PATH_MAX];
    if (!json_is_array(list))
        return fail(b, path, "%s expects a list of filters, got %s",
                    dialect, json_kind(list));
    size_t n = json_array_size(list);
    if (n == 0)
        return fail(b, path, "%s needs at least one filter", dialect);
    uint32_t *kids = malloc(n * sizeof *kids);
    if (!kids)
        return nomem(b);
    int rc = KN_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        path_fmt(p, sizeof p, "%s[%zu]", path, i);
        rc = compile_one(b, json_array_get(list, i), p, depth + 1, &kids[i]);
    }
    if (!rc)
        rc = group(b, op, path, kids, (uint32_t)n, out);
    free(kids);
    return rc;
}

static int compile_cesql(kf_build *b, const json_t *v, const char *path,
                         uint32_t *out)
{
    if (!json_is_string(v))
        return not_a_string(b, path, v);
    const char *src = json_string_value(v);
    size_t n = json_string_length(v);
    size_t i = 0;
    while (i < n && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' ||
                     src[i] == '\r'))
        i++;
    if (i == n)
        return fail(b, path, "CESQL expression must not be empty");
    ce_sql_expr *x = NULL;
    ce_err ce;
    memset(&ce, 0, sizeof ce);
    int rc = ce_sql_compile(src, n, CE_SQL_STRICT, &x, &ce);
    if (rc == CE_ENOMEM)
        return nomem(b);
    if (rc == CE_EPARSE || rc == CE_EINVAL)
        return fail(b, path, "CESQL %s at position %ld: %s",
                    rc == CE_EPARSE ? "parse error" : "error",
                    ce.offset + 1, ce.msg);
    if (rc != CE_OK)
        return fail(b, path, "CESQL error: %s", ce.msg);
    ce_sql_type t = ce_sql_result_type(x);
    if (t == CE_SQL_INTEGER || t == CE_SQL_STRING) {
        ce_sql_free(x);
        return fail(b, path, "CESQL expression yields %s %s; a filter "
                    "needs a Boolean (compare it, e.g. \"... = 'x'\")",
                    t == CE_SQL_INTEGER ? "an" : "a", ce_sql_type_str(t));
    }
    rc = node_new(b, KF_CESQL, path, out);
    if (rc) {
        ce_sql_free(x);
        return rc;
    }
    b->f->nodes[*out].sql = x;
    return KN_OK;
}

/* One element of `filters` (or of all/any, or the body of not). */
static int compile_one(kf_build *b, const json_t *elem, const char *path,
                       int depth, uint32_t *out)
{
    char p[KF_PATH_MAX];
    if (depth > KF_MAX_DEPTH)
        return fail(b, path, "filters nested deeper than %d levels",
                    KF_MAX_DEPTH);
    if (!json_is_object(elem))
        return fail(b, path, "expected a filter (a map with one of exact, "
                    "prefix, suffix, all, any, not, cesql), got %s",
                    json_kind(elem));
    char found[96] = "";
    const char *which = NULL;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)elem, key, v) {
        size_t d = 0;
        while (dialects[d] && strcmp(dialects[d], key) != 0)
            d++;
        path_fmt(p, sizeof p, "%s.%s", path, key);
        if (!dialects[d])
            return fail(b, p, "unknown filter dialect \"%s\" (expected "
                        "exact, prefix, suffix, all, any, not or cesql)%s",
                        key, strcmp(key, "sql") == 0 ?
                        "; CESQL is written \"cesql\"" : "");
        size_t used = strlen(found);
        snprintf(found + used, sizeof found - used, "%s%s",
                 used ? ", " : "", key);
        which = which ? "" : key;
    }
    if (!which)
        return fail(b, path, "empty filter: set one of exact, prefix, "
                    "suffix, all, any, not, cesql");
    if (!*which)
        return fail(b, path, "multiple dialects found (%s): use one per "
                    "filter and combine them with all", found);
    v = json_object_get(elem, which);
    path_fmt(p, sizeof p, "%s.%s", path, which);
    if (strcmp(which, "exact") == 0)
        return compile_map(b, KF_EXACT, which, v, p, out);
    if (strcmp(which, "prefix") == 0)
        return compile_map(b, KF_PREFIX, which, v, p, out);
    if (strcmp(which, "suffix") == 0)
        return compile_map(b, KF_SUFFIX, which, v, p, out);
    if (strcmp(which, "all") == 0)
        return compile_list(b, KF_ALL, which, v, p, depth, out);
    if (strcmp(which, "any") == 0)
        return compile_list(b, KF_ANY, which, v, p, depth, out);
    if (strcmp(which, "cesql") == 0)
        return compile_cesql(b, v, p, out);
    /* not */
    uint32_t kid;
    int rc = compile_one(b, v, p, depth + 1, &kid);
    if (!rc)
        rc = node_new(b, KF_NOT, p, out);
    if (!rc)
        b->f->nodes[*out].kid0 = kid;
    return rc;
}

/* spec.filter: only `attributes`, a map of name → string ("" = present).
 * *out = UINT32_MAX when it puts no condition. */
static int compile_legacy(kf_build *b, const json_t *filter,
                          const char *path, uint32_t *out)
{
    char p[KF_PATH_MAX];
    *out = UINT32_MAX;
    if (!filter || json_is_null(filter))
        return KN_OK;
    if (!json_is_object(filter))
        return fail(b, path, "expected a map with \"attributes\", got %s",
                    json_kind(filter));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)filter, key, v) {
        if (strcmp(key, "attributes") != 0) {
            path_fmt(p, sizeof p, "%s.%s", path, key);
            return fail(b, p, "unknown field (filter has only "
                        "\"attributes\"; use spec.filters for the other "
                        "dialects)");
        }
    }
    const json_t *attrs = json_object_get(filter, "attributes");
    path_fmt(p, sizeof p, "%s.attributes", path);
    if (!attrs || json_is_null(attrs))
        return KN_OK;
    if (!json_is_object(attrs))
        return fail(b, p, "expected a map of attribute names to values, "
                    "got %s", json_kind(attrs));
    size_t n = json_object_size(attrs);
    if (n == 0)
        return KN_OK;
    uint32_t *kids = malloc(n * sizeof *kids);
    if (!kids)
        return nomem(b);
    uint32_t k = 0;
    int rc = KN_OK;
    json_object_foreach((json_t *)(uintptr_t)attrs, key, v) {
        char ap[KF_PATH_MAX];
        path_fmt(ap, sizeof ap, "%s.%s", p, key);
        if (!name_ok(key, true))
            rc = fail(b, ap, "invalid attribute name \"%s\": must match "
                      "^[a-z][a-z0-9]*$", key);
        else if (!json_is_string(v))
            rc = not_a_string(b, ap, v);
        else if (json_string_length(v) == 0)
            rc = leaf(b, KF_PRESENT, ap, key, NULL, 0, &kids[k++]);
        else
            rc = leaf(b, KF_EXACT, ap, key, json_string_value(v),
                      json_string_length(v), &kids[k++]);
        if (rc)
            break;
    }
    if (!rc)
        rc = group(b, KF_ALL, p, kids, k, out);
    free(kids);
    return rc;
}

static int compile_spec(kf_build *b, const json_t *spec, const char *pre)
{
    char p[KF_PATH_MAX];
    const char *dot = *pre ? "." : "";
    uint32_t legacy, root = UINT32_MAX;
    if (!json_is_object(spec))
        return fail(b, pre, "expected a map, got %s", json_kind(spec));

    path_fmt(p, sizeof p, "%s%sfilter", pre, dot);
    int rc = compile_legacy(b, json_object_get(spec, "filter"), p, &legacy);
    if (rc)
        return rc;

    const json_t *list = json_object_get(spec, "filters");
    path_fmt(p, sizeof p, "%s%sfilters", pre, dot);
    if (list && !json_is_null(list) && !json_is_array(list))
        return fail(b, p, "expected a list of filters, got %s",
                    json_kind(list));
    if (json_array_size(list) > 0) {
        rc = compile_list(b, KF_ALL, "filters", list, p, 0, &root);
        if (rc)
            return rc;
    } else {
        root = legacy;
    }
    if (root == UINT32_MAX) {
        path_fmt(p, sizeof p, "%s%sfilter", pre, dot);
        rc = node_new(b, KF_TRUE, p, &root);
    }
    b->f->root = root;
    return rc;
}

int kn_filter_compile(const json_t *spec, const char *path_prefix,
                      kn_filter **out, kn_err *err)
{
    kf_build b;
    memset(&b, 0, sizeof b);
    b.err = err;
    *out = NULL;
    b.f = calloc(1, sizeof *b.f);
    if (!b.f)
        return nomem(&b);
    int rc = compile_spec(&b, spec, path_prefix ? path_prefix : "");
    b.f->pool = b.pool.data;
    b.f->pool_len = b.pool.len;
    if (rc) {
        kn_filter_free(b.f);
        return rc;
    }
    *out = b.f;
    return KN_OK;
}

void kn_filter_free(kn_filter *f)
{
    if (!f)
        return;
    for (uint32_t i = 0; i < f->nnodes; i++)
        ce_sql_free(f->nodes[i].sql);
    free(f->nodes);
    free(f->kids);
    free(f->pool);
    free(f);
}

/* ----------------------------------------------------------- evaluate */

static const char *attr_of(const kn_filter *f, const kf_node *n,
                           const ce_event *ev, size_t *len)
{
    return ce_event_getn(ev, kf_str(f, n->attr_off), n->attr_len, len, NULL);
}

static bool leaf_test(const kn_filter *f, const kf_node *n, const char *v,
                      size_t len)
{
    const char *want = kf_str(f, n->val_off);
    switch (n->op) {
    case KF_EXACT:
        return len == n->val_len && memcmp(v, want, len) == 0;
    case KF_PREFIX:
        return len >= n->val_len && memcmp(v, want, n->val_len) == 0;
    case KF_SUFFIX:
        return len >= n->val_len &&
               memcmp(v + len - n->val_len, want, n->val_len) == 0;
    default: /* KF_PRESENT */
        return true;
    }
}

/* Runs a CESQL leaf; errors are counted. On return val and e hold the
 * outcome for an explanation (ctx is the scratch used, or NULL). */
static bool sql_run(const ce_sql_expr *x, const ce_event *ev,
                    ce_sql_value *val, ce_sql_error *e, ce_sql_ctx **ctxp)
{
    ce_sql_ctx *ctx = sql_ctx();
    *ctxp = ctx;
    if (!ctx) { /* out of memory: on-stack scratch, no detail */
        *e = CE_SQL_OK;
        memset(val, 0, sizeof *val);
        val->type = CE_SQL_BOOLEAN;
        val->b = ce_sql_match(x, ev, NULL);
        return val->b;
    }
    *e = ce_sql_eval(x, ev, ctx, val);
    if (*e) {
        atomic_fetch_add_explicit(&cesql_errors, 1, memory_order_relaxed);
        return false;
    }
    return val->type == CE_SQL_BOOLEAN && val->b;
}

bool kf_eval(const kn_filter *f, uint32_t i, const ce_event *ev)
{
    const kf_node *n = &f->nodes[i];
    switch ((kf_op)n->op) {
    case KF_TRUE:
        return true;
    case KF_ALL:
        for (uint32_t k = 0; k < n->nkids; k++)
            if (!kf_eval(f, f->kids[n->kid0 + k], ev))
                return false;
        return true;
    case KF_ANY:
        for (uint32_t k = 0; k < n->nkids; k++)
            if (kf_eval(f, f->kids[n->kid0 + k], ev))
                return true;
        return false;
    case KF_NOT:
        return !kf_eval(f, n->kid0, ev);
    case KF_CESQL: {
        ce_sql_value val;
        ce_sql_error e;
        ce_sql_ctx *ctx;
        return sql_run(n->sql, ev, &val, &e, &ctx);
    }
    default: {
        size_t len;
        const char *v = attr_of(f, n, ev, &len);
        return v && leaf_test(f, n, v, len);
    }
    }
}

/* ------------------------------------------------------------ explain */

/* Appends s (at most KF_SHOW_MAX bytes, then "...") quoted. */
static void show(char *buf, size_t size, const char *s, size_t n)
{
    bool cut = n > KF_SHOW_MAX;
    snprintf(buf, size, "\"%.*s%s\"", (int)(cut ? KF_SHOW_MAX : n), s,
             cut ? "..." : "");
}

__attribute__((format(printf, 4, 5)))
static void say(kn_filter_explain *why, const kn_filter *f,
                const kf_node *n, const char *fmt, ...)
{
    snprintf(why->clause, sizeof why->clause, "%s", kf_str(f, n->path_off));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->reason, sizeof why->reason, fmt, ap);
    va_end(ap);
}

static void explain_leaf(const kn_filter *f, const kf_node *n,
                         const char *v, size_t len, kn_filter_explain *why)
{
    const char *name = kf_str(f, n->attr_off);
    char got[KF_SHOW_MAX + 8], want[KF_SHOW_MAX + 8];
    if (!v) {
        say(why, f, n, "attribute %s is missing", name);
        return;
    }
    show(got, sizeof got, v, len);
    show(want, sizeof want, kf_str(f, n->val_off), n->val_len);
    if (n->op == KF_EXACT)
        say(why, f, n, "%s is %s, not %s", name, got, want);
    else if (n->op == KF_PREFIX)
        say(why, f, n, "%s %s does not start with %s", name, got, want);
    else
        say(why, f, n, "%s %s does not end with %s", name, got, want);
}

static void explain_sql(const kn_filter *f, const kf_node *n,
                        const ce_sql_value *val, ce_sql_error e,
                        const ce_sql_ctx *ctx, kn_filter_explain *why)
{
    char detail[200], shown[KF_SHOW_MAX + 8];
    if (e) {
        detail[0] = 0;
        if (ctx)
            ce_sql_ctx_explain(ctx, n->sql, detail, sizeof detail);
        say(why, f, n, "CESQL evaluation error (%s): %s",
            ce_sql_error_str(e), detail[0] ? detail : "no detail");
    } else if (val->type == CE_SQL_BOOLEAN) {
        say(why, f, n, "CESQL expression evaluated to false");
    } else if (val->type == CE_SQL_INTEGER) {
        say(why, f, n, "CESQL expression evaluated to Integer %d, not "
            "Boolean true", (int)val->i);
    } else {
        show(shown, sizeof shown, val->s, val->len);
        say(why, f, n, "CESQL expression evaluated to String %s, not "
            "Boolean true", shown);
    }
}

/* kf_eval that fills *why with the first failing clause. */
static bool eval_why(const kn_filter *f, uint32_t i, const ce_event *ev,
                     kn_filter_explain *why)
{
    const kf_node *n = &f->nodes[i];
    switch ((kf_op)n->op) {
    case KF_TRUE:
        return true;
    case KF_ALL:
        for (uint32_t k = 0; k < n->nkids; k++)
            if (!eval_why(f, f->kids[n->kid0 + k], ev, why))
                return false;
        return true;
    case KF_ANY: {
        kn_filter_explain first;
        for (uint32_t k = 0; k < n->nkids; k++)
            if (eval_why(f, f->kids[n->kid0 + k], ev,
                         k == 0 ? &first : why))
                return true;
        say(why, f, n, "none of the %u filters matched; the first failed "
            "at %.100s: %.100s", (unsigned)n->nkids, first.clause,
            first.reason);
        return false;
    }
    case KF_NOT: {
        kn_filter_explain inner;
        if (!eval_why(f, n->kid0, ev, &inner))
            return true;
        say(why, f, n, "the negated filter %s matched",
            kf_str(f, f->nodes[n->kid0].path_off));
        return false;
    }
    case KF_CESQL: {
        ce_sql_value val;
        ce_sql_error e;
        ce_sql_ctx *ctx;
        if (sql_run(n->sql, ev, &val, &e, &ctx))
            return true;
        explain_sql(f, n, &val, e, ctx, why);
        return false;
    }
    default: {
        size_t len = 0;
        const char *v = attr_of(f, n, ev, &len);
        if (v && leaf_test(f, n, v, len))
            return true;
        explain_leaf(f, n, v, len, why);
        return false;
    }
    }
}

bool kn_filter_match(const kn_filter *f, const ce_event *ev,
                     kn_filter_explain *why)
{
    if (!why)
        return f && kf_eval(f, f->root, ev);
    memset(why, 0, sizeof *why);
    if (!f) {
        snprintf(why->reason, sizeof why->reason, "no filter");
        return false;
    }
    return eval_why(f, f->root, ev, why);
}
