/*
 * The generic resource model: turns one YAML document (already a jansson
 * tree, from kn_yaml_load) into a kn_resource — apiVersion/kind dispatch
 * to the kind table, metadata (name, namespace, labels, annotations) and
 * the kind's own members through the table-driven decoder.
 *
 * Pure functions; any thread. Resources are immutable and refcounted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/broker.h"

/* ------------------------------------------------------ name rules */

static bool is_alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_alnum_lower(c) || (c >= 'A' && c <= 'Z');
}

/* DNS-1123 subdomain: labels joined by dots, at most 253 chars. */
static bool dns1123_subdomain(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        size_t len = i - start;
        if (len == 0 || len > 63 || !is_alnum_lower(s[start]) ||
            !is_alnum_lower(s[i - 1]))
            return false;
        for (size_t j = start; j < i; j++)
            if (!is_alnum_lower(s[j]) && s[j] != '-')
                return false;
        start = i + 1;
    }
    return true;
}

/* Label value / qualified-name part: [A-Za-z0-9]([-A-Za-z0-9_.]*
 * [A-Za-z0-9])?, at most 63 chars (empty allowed when allow_empty). */
static bool name_part(const char *s, size_t n, bool allow_empty)
{
    if (n == 0)
        return allow_empty;
    if (n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

/* Kubernetes qualified name: [prefix/]name. */
static bool qualified_name(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        return name_part(s, strlen(s), false);
    return dns1123_subdomain(s, (size_t)(slash - s)) &&
           name_part(slash + 1, strlen(slash + 1), false);
}

static int check_dns_label(kn_decode_ctx *ctx, const kn_field *f,
                           json_t *v, const char *path)
{
    (void)f;
    if (!kn_dns1123_label(json_string_value(v)))
        return kn_decode_fail(ctx, KN_INVAL, path,
                              "\"%s\" is not a valid name: use at most 63 "
                              "lowercase letters, digits and '-', starting "
                              "and ending with a letter or digit",
                              json_string_value(v));
    return KN_OK;
}

static int check_labels(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                        const char *path)
{
    (void)f;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        char p[256];
        snprintf(p, sizeof p, "%s.%s", path, key);
        if (!qualified_name(key))
            return kn_decode_fail(ctx, KN_INVAL, p,
                                  "invalid label key (expected [prefix/]"
                                  "name, name at most 63 characters of "
                                  "[A-Za-z0-9-_.])");
        const char *s = json_string_value(val);
        if (!name_part(s, strlen(s), true))
            return kn_decode_fail(ctx, KN_INVAL, p,
                                  "invalid label value \"%s\" (at most 63 "
                                  "characters of [A-Za-z0-9-_.], starting "
                                  "and ending alphanumeric)", s);
    }
    return KN_OK;
}

static const kn_field metadata_fields[] = {
    {.name = "name", .type = KN_FT_STRING, .flags = KN_FF_REQUIRED,
     .check = check_dns_label, .doc = "resource name (DNS-1123 label)"},
    {.name = "namespace", .type = KN_FT_STRING, .check = check_dns_label,
     .doc = "namespace (DNS-1123 label), default \"default\""},
    {.name = "labels", .type = KN_FT_MAP_STRING, .check = check_labels,
     .doc = "labels"},
    {.name = "annotations", .type = KN_FT_MAP_STRING,
     .doc = "annotations (see the kind's table)"},
    {.name = "generation", .type = KN_FT_ANY, .flags = KN_FF_OUTPUT},
    {.name = "creationTimestamp", .type = KN_FT_ANY, .flags = KN_FF_OUTPUT},
    {.name = "uid", .type = KN_FT_ANY, .flags = KN_FF_OUTPUT},
    {.name = "resourceVersion", .type = KN_FT_ANY, .flags = KN_FF_OUTPUT},
    {.name = "selfLink", .type = KN_FT_ANY, .flags = KN_FF_OUTPUT},
    {.name = "managedFields", .type = KN_FT_ANY, .flags = KN_FF_OUTPUT},
    {.name = "generateName", .type = KN_FT_ANY,
     .unsupported = "set metadata.name"},
    {.name = "ownerReferences", .type = KN_FT_ANY,
     .unsupported = "knit does not garbage-collect by owner"},
    {.name = "finalizers", .type = KN_FT_ANY,
     .unsupported = "knit has no finalizers"},
    {.name = "deletionTimestamp", .type = KN_FT_ANY, .flags = KN_FF_OUTPUT},
    {.name = "deletionGracePeriodSeconds", .type = KN_FT_ANY,
     .flags = KN_FF_OUTPUT},
    {0},
};

/* ------------------------------------------------------ annotations */

static const kn_annotation *annotation_find(const kn_kind *k,
                                            const char *key)
{
    for (const kn_annotation *a = k->annotations; a && a->key; a++)
        if (strcmp(a->key, key) == 0)
            return a;
    return NULL;
}

static int check_annotation_value(kn_decode_ctx *ctx,
                                  const kn_annotation *a, const char *s,
                                  const char *path)
{
    uint64_t size;
    int64_t ms;
    kn_err derr = {0};
    switch (a->type) {
    case KN_FT_INT:
        if (kn_parse_size(s, &size) != KN_OK)
            return kn_decode_fail(ctx, KN_INVAL, path,
                                  "expected a size in bytes such as "
                                  "\"1048576\" or \"64Mi\", got \"%s\"", s);
        return KN_OK;
    case KN_FT_BOOL:
        if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
            return kn_decode_fail(ctx, KN_INVAL, path,
                                  "expected \"true\" or \"false\"");
        return KN_OK;
    case KN_FT_DURATION:
        if (kn_duration_parse(s, &ms, &derr) != KN_OK)
            return kn_decode_fail(ctx, KN_INVAL, path,
                                  "expected an ISO-8601 duration such as "
                                  "P7D: %s", derr.msg);
        if (ms <= 0)
            return kn_decode_fail(ctx, KN_INVAL, path,
                                  "must be a duration greater than zero");
        return KN_OK;
    case KN_FT_ENUM:
        for (size_t i = 0; a->values && a->values[i]; i++)
            if (strcmp(a->values[i], s) == 0)
                return KN_OK;
        {
            char list[256] = "";
            size_t used = 0;
            for (size_t i = 0; a->values && a->values[i]; i++) {
                int w = snprintf(list + used, sizeof list - used, "%s%s",
                                 i ? ", " : "", a->values[i]);
                if (w < 0 || (size_t)w >= sizeof list - used)
                    break;
                used += (size_t)w;
            }
            return kn_decode_fail(ctx, KN_INVAL, path,
                                  "\"%s\" is not one of: %s", s, list);
        }
    default:
        return KN_OK;
    }
}

static int check_annotations(kn_decode_ctx *ctx, const kn_kind *k,
                             json_t *ann)
{
    const char *key;
    json_t *val;
    json_object_foreach(ann, key, val) {
        char p[256];
        snprintf(p, sizeof p, "metadata.annotations.%s", key);
        if (!qualified_name(key))
            return kn_decode_fail(ctx, KN_INVAL, p,
                                  "invalid annotation key (expected "
                                  "[prefix/]name)");
        const kn_annotation *a = annotation_find(k, key);
        if (!a) {
            if (strncmp(key, "knit.dev/", 9) == 0)
                return kn_decode_fail(ctx, KN_INVAL, p,
                                      "unknown knit annotation for %s",
                                      k->kind);
            continue; /* foreign annotations are kept as they are */
        }
        int rc = check_annotation_value(ctx, a, json_string_value(val), p);
        if (rc != KN_OK)
            return rc;
    }
    return KN_OK;
}

/* ------------------------------------------------------------ kinds */

const kn_kind *kn_kind_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; kn_kinds[i]; i++) {
        const kn_kind *k = kn_kinds[i];
        if (strcasecmp(k->kind, name) == 0 ||
            strcasecmp(k->plural, name) == 0 ||
            strcasecmp(k->singular, name) == 0)
            return k;
    }
    return NULL;
}

static int supported_list(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; kn_kinds[i]; i++) {
        if (!kn_kinds[i]->supported)
            continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "",
                         kn_kinds[i]->kind);
        if (w < 0 || (size_t)w >= n - used)
            break;
        used += (size_t)w;
    }
    return (int)used;
}

static int decode_kind(kn_decode_ctx *ctx, json_t *root, const kn_kind **out)
{
    json_t *kind = json_object_get(root, "kind");
    json_t *api = json_object_get(root, "apiVersion");
    if (!kind || json_is_null(kind))
        return kn_decode_fail(ctx, KN_INVAL, "kind",
                              "required field is missing");
    if (!json_is_string(kind))
        return kn_decode_fail(ctx, KN_INVAL, "kind", "expected a string");
    const char *ks = json_string_value(kind);
    const kn_kind *k = NULL;
    for (size_t i = 0; kn_kinds[i]; i++)
        if (strcmp(kn_kinds[i]->kind, ks) == 0)
            k = kn_kinds[i];
    char list[256];
    if (!k) {
        supported_list(list, sizeof list);
        return kn_decode_fail(ctx, KN_UNSUPPORTED, "kind",
                              "unknown kind \"%s\" (knit supports: %s)", ks,
                              list);
    }
    if (!k->supported) {
        kn_decode_fail(ctx, KN_UNSUPPORTED, "kind",
                       "kind %s is not supported yet", ks);
        if (ctx->err)
            ctx->err->field[0] = '\0';
        return KN_UNSUPPORTED;
    }
    if (!api || json_is_null(api))
        return kn_decode_fail(ctx, KN_INVAL, "apiVersion",
                              "required field is missing (%s is %s)", ks,
                              k->api_version);
    if (!json_is_string(api) ||
        strcmp(json_string_value(api), k->api_version) != 0)
        return kn_decode_fail(ctx, KN_INVAL, "apiVersion",
                              "%s is served as %s, not %s", ks,
                              k->api_version,
                              json_is_string(api) ? json_string_value(api)
                                                  : "a non-string");
    *out = k;
    return KN_OK;
}

/* The kind's own members, with apiVersion/kind/metadata handled here. */
static int decode_members(kn_decode_ctx *ctx, const kn_kind *k,
                          json_t *root, json_t *out)
{
    const char *key;
    json_t *v;
    json_t *rest = json_object();
    if (!rest)
        return kn_decode_fail(ctx, KN_NOMEM, "", "out of memory");
    json_object_foreach(root, key, v) {
        if (strcmp(key, "apiVersion") && strcmp(key, "kind") &&
            strcmp(key, "metadata"))
            json_object_set(rest, key, v);
    }
    int rc = kn_decode_object(ctx, k->fields, rest, "");
    if (rc == KN_OK)
        rc = json_object_update(out, rest) == 0 ? KN_OK : KN_NOMEM;
    json_decref(rest);
    return rc;
}

static int decode_metadata(kn_decode_ctx *ctx, const kn_kind *k,
                           json_t *root, json_t *meta_out)
{
    json_t *meta = json_object_get(root, "metadata");
    if (!meta || json_is_null(meta))
        return kn_decode_fail(ctx, KN_INVAL, "metadata.name",
                              "required field is missing");
    if (!json_is_object(meta))
        return kn_decode_fail(ctx, KN_INVAL, "metadata",
                              "expected a mapping");
    int rc = kn_decode_object(ctx, metadata_fields, meta, "metadata");
    if (rc != KN_OK)
        return rc;
    json_t *ann = json_object_get(meta, "annotations");
    if (ann && (rc = check_annotations(ctx, k, ann)) != KN_OK)
        return rc;
    json_object_set(meta_out, "name", json_object_get(meta, "name"));
    json_t *ns = json_object_get(meta, "namespace");
    json_object_set_new(meta_out, "namespace",
                        ns ? json_incref(ns) : json_string("default"));
    json_t *labels = json_object_get(meta, "labels");
    if (labels && json_object_size(labels))
        json_object_set(meta_out, "labels", labels);
    if (ann && json_object_size(ann))
        json_object_set(meta_out, "annotations", ann);
    return KN_OK;
}

static kn_resource *resource_new(const kn_kind *k, json_t *obj,
                                 const char *where)
{
    kn_resource *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    r->kind = k;
    r->obj = obj;
    json_t *meta = json_object_get(obj, "metadata");
    snprintf(r->ns, sizeof r->ns, "%s",
             json_string_value(json_object_get(meta, "namespace")));
    snprintf(r->name, sizeof r->name, "%s",
             json_string_value(json_object_get(meta, "name")));
    snprintf(r->where, sizeof r->where, "%s", where ? where : "");
    return r;
}

int kn_resource_decode(const char *file, const kn_yaml_doc *doc,
                       kn_resource **out, kn_err *err)
{
    kn_decode_ctx ctx = {.file = file ? file : "-", .doc = doc, .err = err};
    *out = NULL;
    if (!doc->root || json_is_null(doc->root))
        return KN_OK; /* empty document */
    if (!json_is_object(doc->root))
        return kn_decode_fail(&ctx, KN_INVAL, "",
                              "expected a mapping with apiVersion, kind "
                              "and metadata");
    /* Work on a copy: decoding normalises in place. */
    json_t *root = json_deep_copy(doc->root);
    json_t *obj = json_object();
    json_t *meta = json_object();
    const kn_kind *k = NULL;
    int rc = KN_NOMEM;
    if (!root || !obj || !meta)
        goto fail;
    if ((rc = decode_kind(&ctx, root, &k)) != KN_OK)
        goto fail;
    json_object_set_new(obj, "apiVersion", json_string(k->api_version));
    json_object_set_new(obj, "kind", json_string(k->kind));
    if ((rc = decode_metadata(&ctx, k, root, meta)) != KN_OK)
        goto fail;
    json_object_set(obj, "metadata", meta);
    if ((rc = decode_members(&ctx, k, root, obj)) != KN_OK)
        goto fail;
    if (k->validate && (rc = k->validate(&ctx, obj)) != KN_OK)
        goto fail;
    char where[256];
    int line = kn_yaml_line(doc, "");
    snprintf(where, sizeof where, "%s:%d", ctx.file,
             line > 0 ? line : doc->line);
    *out = resource_new(k, obj, where);
    if (!*out) {
        rc = kn_decode_fail(&ctx, KN_NOMEM, "", "out of memory");
        goto fail;
    }
    obj = NULL;
    rc = KN_OK;
fail:
    if (rc == KN_NOMEM && err && !err->msg[0])
        kn_decode_fail(&ctx, KN_NOMEM, "", "out of memory");
    json_decref(meta);
    json_decref(obj);
    json_decref(root);
    return rc;
}

kn_resource *kn_resource_incref(kn_resource *r)
{
    if (r)
        atomic_fetch_add(&r->refs, 1);
    return r;
}

void kn_resource_decref(kn_resource *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    json_decref(r->obj);
    free(r);
}

kn_resource *kn_resource_wrap(const kn_kind *k, json_t *obj,
                              const char *where)
{
    return resource_new(k, obj, where);
}

void kn_resources_free(kn_resource **rs, size_t count)
{
    for (size_t i = 0; rs && i < count; i++)
        kn_resource_decref(rs[i]);
    free(rs);
}

int kn_resources_check_dups(kn_resource **rs, size_t n, kn_err *err)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (rs[i]->kind != rs[j]->kind ||
                strcmp(rs[i]->ns, rs[j]->ns) != 0 ||
                strcmp(rs[i]->name, rs[j]->name) != 0)
                continue;
            kn_err_set(err, KN_EXISTS,
                       "%s %s/%s is defined twice (first at %s)",
                       rs[i]->kind->kind, rs[i]->ns, rs[i]->name,
                       rs[j]->where);
            snprintf(err->where, sizeof err->where, "%s", rs[i]->where);
            err->field[0] = '\0';
            return KN_EXISTS;
        }
    }
    return KN_OK;
}

int kn_resources_parse(const char *file, const char *buf, size_t n,
                       kn_resource ***out, size_t *count, kn_err *err)
{
    kn_yaml_doc *docs = NULL;
    size_t ndocs = 0;
    *out = NULL;
    *count = 0;
    int rc = kn_yaml_load(file, buf, n, &docs, &ndocs, err);
    if (rc < 0)
        return rc;
    kn_resource **rs = calloc(ndocs ? ndocs : 1, sizeof *rs);
    size_t nr = 0;
    if (!rs) {
        rc = kn_err_set(err, KN_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < ndocs; i++) {
        kn_resource *r = NULL;
        if ((rc = kn_resource_decode(file, &docs[i], &r, err)) != KN_OK)
            goto fail;
        if (r)
            rs[nr++] = r;
    }
    if ((rc = kn_resources_check_dups(rs, nr, err)) != KN_OK)
        goto fail;
    kn_yaml_docs_free(docs, ndocs);
    *out = rs;
    *count = nr;
    return KN_OK;
fail:
    kn_resources_free(rs, nr);
    kn_yaml_docs_free(docs, ndocs);
    return rc;
}

const char *kn_resource_annotation(const kn_resource *r, const char *key)
{
    json_t *meta = json_object_get(r->obj, "metadata");
    return json_string_value(
        json_object_get(json_object_get(meta, "annotations"), key));
}

bool kn_resource_same(const kn_resource *a, const kn_resource *b)
{
    json_t *x = json_deep_copy(a->obj);
    json_t *y = json_deep_copy(b->obj);
    bool same = false;
    if (x && y) {
        const char *out_only[] = {"generation", "creationTimestamp"};
        for (size_t i = 0; i < 2; i++) {
            json_object_del(json_object_get(x, "metadata"), out_only[i]);
            json_object_del(json_object_get(y, "metadata"), out_only[i]);
        }
        same = json_equal(x, y);
    }
    json_decref(x);
    json_decref(y);
    return same;
}

void kn_timestamp_now(char buf[CE_TIME_MAX])
{
    kn_time_format_ns(kn_now_wall_ns(), buf);
    char *dot = strchr(buf, '.');
    if (dot)
        memcpy(dot, "Z", 2);
}
