/*
 * delivery_json.c: reads a Knative `delivery` object (as loaded from YAML
 * or JSON by common/) into a kn_delivery_spec, naming the field at fault.
 * Any thread.
 */
#include "sinks/sinks.h"

#include <stdarg.h>
#include <string.h>

static int field_err(kn_err *err, const char *prefix, const char *field,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int field_err(kn_err *err, const char *prefix, const char *field,
                     const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kn_err_set(err, KN_INVAL, "%s", msg);
    if (err)
        snprintf(err->field, sizeof err->field, "%s%s%s",
                 prefix ? prefix : "", prefix && *prefix ? "." : "", field);
    return KN_INVAL;
}

static int read_duration(const json_t *v, const char *prefix,
                         const char *field, bool allow_zero, int64_t *out,
                         kn_err *err)
{
    kn_err derr;
    int64_t ms;

    if (!json_is_string(v))
        return field_err(err, prefix, field, "%s",
                         "must be an ISO-8601 duration string (e.g. PT1S)");
    memset(&derr, 0, sizeof derr);
    if (kn_duration_parse(json_string_value(v), &ms, &derr) != KN_OK)
        return field_err(err, prefix, field, "%s", derr.msg[0]
                         ? derr.msg : "not an ISO-8601 duration");
    if (ms < 0 || (!allow_zero && ms == 0))
        return field_err(err, prefix, field, "%s",
                         allow_zero ? "must not be negative"
                                    : "must be greater than zero");
    *out = ms;
    return KN_OK;
}

static int read_enum(const json_t *v, const char *prefix, const char *field,
                     const char *a, const char *b, int *out, kn_err *err)
{
    const char *s = json_string_value(v);
    if (s && strcmp(s, a) == 0)
        *out = 0;
    else if (s && strcmp(s, b) == 0)
        *out = 1;
    else
        return field_err(err, prefix, field, "must be \"%s\"",
                         strcmp(field, "format") == 0
                             ? "json\" or \"binary"
                             : "exponential\" or \"linear");
    return KN_OK;
}

static int read_field(const char *key, const json_t *v, const char *prefix,
                      kn_delivery_spec *spec, kn_err *err)
{
    int e;

    if (strcmp(key, "retry") == 0) {
        json_int_t r = json_integer_value(v);
        if (!json_is_integer(v) || r < 0 || r > INT32_MAX)
            return field_err(err, prefix, key, "%s",
                             "must be an integer from 0 to 2147483647");
        spec->retry = (int32_t)r;
        return KN_OK;
    }
    if (strcmp(key, "backoffPolicy") == 0) {
        int f = 0;
        if ((e = read_enum(v, prefix, key, "exponential", "linear", &f,
                           err)) < 0)
            return e;
        spec->policy = f ? KN_BACKOFF_LINEAR : KN_BACKOFF_EXPONENTIAL;
        return KN_OK;
    }
    if (strcmp(key, "format") == 0) {
        int f = 0;
        if ((e = read_enum(v, prefix, key, "binary", "json", &f, err)) < 0)
            return e;
        spec->format = f ? KN_FORMAT_JSON : KN_FORMAT_BINARY;
        return KN_OK;
    }
    if (strcmp(key, "backoffDelay") == 0)
        return read_duration(v, prefix, key, true, &spec->backoff_delay_ms,
                             err);
    if (strcmp(key, "backoffMax") == 0)
        return read_duration(v, prefix, key, true, &spec->backoff_max_ms,
                             err);
    if (strcmp(key, "timeout") == 0)
        return read_duration(v, prefix, key, false, &spec->timeout_ms, err);
    if (strcmp(key, "retryAfterMax") == 0)
        return read_duration(v, prefix, key, true,
                             &spec->retry_after_max_ms, err);
    if (strcmp(key, "deadLetterSink") == 0) {
        if (!json_is_object(v))
            return field_err(err, prefix, key, "%s",
                             "must be a destination object (uri or ref)");
        return KN_OK;
    }
    return field_err(err, prefix, key, "%s",
                     "unknown field (supported: retry, backoffPolicy, "
                     "backoffDelay, backoffMax, timeout, retryAfterMax, "
                     "deadLetterSink, format)");
}

int kn_delivery_spec_from_json(const json_t *delivery, const char *prefix,
                               kn_delivery_spec *spec, kn_err *err)
{
    const char *key;
    json_t *v;
    int e;

    if (!json_is_object(delivery)) {
        kn_err_set(err, KN_INVAL, "must be an object");
        if (err)
            snprintf(err->field, sizeof err->field, "%s",
                     prefix ? prefix : "");
        return KN_INVAL;
    }
    json_object_foreach((json_t *)(uintptr_t)delivery, key, v) {
        if ((e = read_field(key, v, prefix, spec, err)) < 0)
            return e;
    }
    return KN_OK;
}
