/*
 * settings.c: what the channel backends share to read their settings;
 * see settings.h. Each backend keeps its own keys, limits and messages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels/settings.h"

const char *kn_setting_str(const json_t *set, const char *key, char *buf,
                           size_t n)
{
    const json_t *v = set ? json_object_get(set, key) : NULL;
    if (!v)
        return NULL;
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    return "";
}

int kn_setting_error(kn_err *err, const char *key, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kn_err_set(err, KN_INVAL, "setting %s: %s", key, msg);
    if (err)
        snprintf(err->field, sizeof err->field, "%s", key);
    return KN_INVAL;
}

int kn_setting_size(const char *s, bool units, uint64_t limit,
                    uint64_t *out)
{
    static const struct { const char *sfx; uint64_t mul; } tab[] = {
        {"", 1}, {"k", 1000}, {"M", 1000000}, {"G", 1000000000},
        {"T", 1000000000000}, {"Ki", 1ull << 10}, {"Mi", 1ull << 20},
        {"Gi", 1ull << 30}, {"Ti", 1ull << 40},
    };
    if (*s < '0' || *s > '9')
        return KN_INVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || v > limit)
        return KN_INVAL;
    for (size_t i = 0; i < (units ? sizeof tab / sizeof *tab : 1); i++) {
        if (strcmp(end, tab[i].sfx) != 0)
            continue;
        if (v > limit / tab[i].mul)
            return KN_TOOBIG;
        *out = v * tab[i].mul;
        return KN_OK;
    }
    return KN_INVAL;
}

int kn_setting_ms(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s >= '0' && *s <= '9' && *end == '\0' && !errno) {
        *out = v;
        return KN_OK;
    }
    return *s == 'P' && kn_duration_parse(s, out, NULL) == KN_OK ? KN_OK
                                                                 : KN_INVAL;
}

void kn_settings_warn_unknown(const json_t *set, const char *const *known,
                              size_t n, const char *comp,
                              const char *backend)
{
    const char *key;
    json_t *val;
    json_t *mset = (json_t *)(uintptr_t)set; /* jansson lacks const */
    json_object_foreach(mset, key, val) {
        size_t i = 0;
        while (i < n && strcmp(known[i], key) != 0)
            i++;
        if (i == n)
            KN_WARN(comp, "channel setting '%s' is not used by the %s "
                    "backend", key, backend);
    }
}
