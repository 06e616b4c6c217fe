/*
 * The table-driven field decoder: walks a jansson object against a
 * kn_field table (see broker.h), checks types, required fields and
 * validators, drops output-only members and reports the first mistake as
 * "file:line: field.path: message". One generic walker serves every kind.
 *
 * Pure functions; any thread.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"

#define KN_PATH_MAX 256

int kn_decode_fail(kn_decode_ctx *ctx, int status, const char *path,
                   const char *fmt, ...)
{
    kn_err *err = ctx->err;
    if (!err)
        return status;
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kn_err_set(err, status, "%s", msg);
    int line = 0;
    if (ctx->doc) {
        line = kn_yaml_line(ctx->doc, path ? path : "");
        if (line <= 0)
            line = ctx->doc->line;
    }
    if (line > 0)
        snprintf(err->where, sizeof err->where, "%s:%d", ctx->file, line);
    else
        snprintf(err->where, sizeof err->where, "%s", ctx->file);
    snprintf(err->field, sizeof err->field, "%s", path ? path : "");
    return status;
}

static void join_path(char *out, const char *path, const char *key)
{
    if (!path || !*path)
        snprintf(out, KN_PATH_MAX, "%s", key);
    else
        snprintf(out, KN_PATH_MAX, "%s.%s", path, key);
}

static const char *json_kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a mapping";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

static int enum_list(const char *const *values, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; values && values[i]; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "",
                         values[i]);
        if (w < 0 || (size_t)w >= n - used)
            break;
        used += (size_t)w;
    }
    return (int)used;
}

static bool enum_has(const char *const *values, const char *s)
{
    for (size_t i = 0; values && values[i]; i++)
        if (strcmp(values[i], s) == 0)
            return true;
    return false;
}

static int decode_value(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                        const char *path);

static int decode_int(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                      const char *path)
{
    bool pos = f->flags & KN_FF_POSITIVE;
    if (!json_is_integer(v) || json_integer_value(v) < (pos ? 1 : 0))
        return kn_decode_fail(ctx, KN_INVAL, path, "expected a %s integer",
                              pos ? "positive" : "non-negative");
    if (f->max > 0 && json_integer_value(v) > f->max)
        return kn_decode_fail(ctx, KN_INVAL, path,
                              "must be at most %" PRId64, f->max);
    return KN_OK;
}

static int decode_duration(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                           const char *path)
{
    if (!json_is_string(v))
        return kn_decode_fail(ctx, KN_INVAL, path,
                              "expected an ISO-8601 duration such as PT0.2S,"
                              " got %s", json_kind_name(v));
    int64_t ms = 0;
    kn_err derr = {0};
    if (kn_duration_parse(json_string_value(v), &ms, &derr) != KN_OK)
        return kn_decode_fail(ctx, KN_INVAL, path,
                              "expected an ISO-8601 duration such as PT0.2S:"
                              " %s", derr.msg[0] ? derr.msg : "invalid");
    if ((f->flags & KN_FF_POSITIVE) && ms <= 0)
        return kn_decode_fail(ctx, KN_INVAL, path,
                              "must be a duration greater than zero");
    return KN_OK;
}

static int decode_enum(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                       const char *path)
{
    char list[256];
    if (json_is_string(v) && enum_has(f->values, json_string_value(v)))
        return KN_OK;
    enum_list(f->values, list, sizeof list);
    if (json_is_string(v))
        return kn_decode_fail(ctx, KN_INVAL, path,
                              "\"%s\" is not one of: %s",
                              json_string_value(v), list);
    return kn_decode_fail(ctx, KN_INVAL, path, "expected one of: %s", list);
}

static int decode_map(kn_decode_ctx *ctx, json_t *v, const char *path)
{
    if (!json_is_object(v))
        return kn_decode_fail(ctx, KN_INVAL, path,
                              "expected a mapping of strings, got %s",
                              json_kind_name(v));
    const char *key;
    json_t *item;
    json_object_foreach(v, key, item) {
        if (!json_is_string(item)) {
            char p[KN_PATH_MAX];
            join_path(p, path, key);
            return kn_decode_fail(ctx, KN_INVAL, p,
                                  "expected a string, got %s (quote the "
                                  "value)", json_kind_name(item));
        }
    }
    return KN_OK;
}

static int decode_list(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                       const char *path)
{
    if (!json_is_array(v))
        return kn_decode_fail(ctx, KN_INVAL, path, "expected a list, got %s",
                              json_kind_name(v));
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        char p[KN_PATH_MAX];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        int rc = decode_value(ctx, &f->children[0], item, p);
        if (rc != KN_OK)
            return rc;
    }
    return KN_OK;
}

static bool is_empty(const json_t *v)
{
    if (json_is_string(v))
        return json_string_length(v) == 0;
    if (json_is_object(v))
        return json_object_size(v) == 0;
    if (json_is_array(v))
        return json_array_size(v) == 0;
    return false;
}

static int decode_type(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                       const char *path)
{
    switch (f->type) {
    case KN_FT_STRING:
        if (!json_is_string(v))
            return kn_decode_fail(ctx, KN_INVAL, path,
                                  "expected a string, got %s",
                                  json_kind_name(v));
        return KN_OK;
    case KN_FT_INT: return decode_int(ctx, f, v, path);
    case KN_FT_BOOL:
        if (!json_is_boolean(v))
            return kn_decode_fail(ctx, KN_INVAL, path,
                                  "expected true or false, got %s",
                                  json_kind_name(v));
        return KN_OK;
    case KN_FT_DURATION: return decode_duration(ctx, f, v, path);
    case KN_FT_ENUM: return decode_enum(ctx, f, v, path);
    case KN_FT_MAP_STRING: return decode_map(ctx, v, path);
    case KN_FT_OBJECT:
        if (!json_is_object(v))
            return kn_decode_fail(ctx, KN_INVAL, path,
                                  "expected a mapping, got %s",
                                  json_kind_name(v));
        return kn_decode_object(ctx, f->children, v, path);
    case KN_FT_LIST: return decode_list(ctx, f, v, path);
    case KN_FT_ANY: return KN_OK;
    }
    return kn_decode_fail(ctx, KN_INTERNAL, path, "field table error");
}

static int decode_value(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                        const char *path)
{
    int rc = decode_type(ctx, f, v, path);
    if (rc != KN_OK)
        return rc;
    if ((f->flags & KN_FF_NONEMPTY) && is_empty(v))
        return kn_decode_fail(ctx, KN_INVAL, path, "must not be empty");
    if (f->check)
        return f->check(ctx, f, v, path);
    return KN_OK;
}

static const kn_field *field_find(const kn_field *fields, const char *key)
{
    for (const kn_field *f = fields; f && f->name; f++)
        if (strcmp(f->name, key) == 0)
            return f;
    return NULL;
}

static int known_list(const kn_field *fields, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const kn_field *f = fields; f && f->name; f++) {
        if (f->unsupported || (f->flags & KN_FF_OUTPUT))
            continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "",
                         f->name);
        if (w < 0 || (size_t)w >= n - used)
            break;
        used += (size_t)w;
    }
    return (int)used;
}

/* One member of an object: unknown, unsupported, output-only or decoded.
 * *drop is set when the member must be removed. */
static int decode_member(kn_decode_ctx *ctx, const kn_field *fields,
                         const char *key, json_t *v, const char *path,
                         bool *drop)
{
    char p[KN_PATH_MAX];
    join_path(p, path, key);
    const kn_field *f = field_find(fields, key);
    *drop = false;
    if (!f) {
        char known[256];
        known_list(fields, known, sizeof known);
        if (known[0])
            return kn_decode_fail(ctx, KN_INVAL, p,
                                  "unknown field (known fields: %s)", known);
        return kn_decode_fail(ctx, KN_INVAL, p, "unknown field");
    }
    if (f->unsupported)
        return kn_decode_fail(ctx, KN_UNSUPPORTED, p,
                              "field is not supported by knit: %s",
                              f->unsupported);
    if ((f->flags & KN_FF_OUTPUT) || json_is_null(v)) {
        /* Output-only members and explicit nulls (YAML `key:` with no
         * value) mean "not set", as in Kubernetes. */
        *drop = true;
        return KN_OK;
    }
    return decode_value(ctx, f, v, p);
}

int kn_decode_object(kn_decode_ctx *ctx, const kn_field *fields,
                     json_t *obj, const char *path)
{
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, v) {
        bool drop = false;
        int rc = decode_member(ctx, fields, key, v, path, &drop);
        if (rc != KN_OK)
            return rc;
        if (drop)
            json_object_del(obj, key);
    }
    for (const kn_field *f = fields; f && f->name; f++) {
        if (!(f->flags & KN_FF_REQUIRED) || json_object_get(obj, f->name))
            continue;
        char p[KN_PATH_MAX];
        join_path(p, path, f->name);
        return kn_decode_fail(ctx, KN_INVAL, p,
                              "required field is missing");
    }
    return KN_OK;
}

int kn_parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"k", 1000ull},
        {"K", 1000ull},
        {"M", 1000ull * 1000},
        {"G", 1000ull * 1000 * 1000},
        {"Ki", 1024ull},
        {"Mi", 1024ull * 1024},
        {"Gi", 1024ull * 1024 * 1024},
        {"Ti", 1024ull * 1024 * 1024 * 1024},
    };
    if (!s || *s < '0' || *s > '9')
        return KN_INVAL;
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return KN_INVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        if (v > UINT64_MAX / units[i].mult)
            return KN_INVAL;
        *out = v * units[i].mult;
        return KN_OK;
    }
    return KN_INVAL;
}
