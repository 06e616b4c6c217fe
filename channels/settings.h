/*
 * channels/settings.h: helpers for channel backends reading their
 * settings (kn_channel_config.settings, the data of a broker's ConfigMap):
 * a value as text, an error naming the setting, sizes with unit suffixes,
 * durations, and a warning for keys a backend does not use. Pure; any
 * thread. Private to libknit-channels.
 */
#ifndef KNIT_CHANNELS_SETTINGS_H
#define KNIT_CHANNELS_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/common.h"

/* The value of `key` in set as text: a string as is, an integer formatted
 * into buf (n bytes); NULL when set or the key is absent, "" for other
 * JSON types. The result lives as long as set and buf. */
const char *kn_setting_str(const json_t *set, const char *key, char *buf,
                           size_t n);

/* Returns KN_INVAL with err->msg "setting KEY: <fmt...>" and err->field =
 * key (err may be NULL). */
int kn_setting_error(kn_err *err, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Decimal digits, with `units` an optional suffix k, M, G, T (powers of
 * 1000) or Ki, Mi, Gi, Ti (powers of 1024), at most `limit` before the
 * suffix. KN_OK with *out; KN_INVAL when s is not of that form; KN_TOOBIG
 * when the value with its suffix exceeds limit. */
int kn_setting_size(const char *s, bool units, uint64_t limit,
                    uint64_t *out);

/* Milliseconds as decimal digits, or an ISO-8601 duration ("PT30S").
 * KN_OK with *out, else KN_INVAL (no message). */
int kn_setting_ms(const char *s, int64_t *out);

/* Logs a warning from `comp` for each key of set not in known[0..n):
 * "channel setting 'K' is not used by the <backend> backend". */
void kn_settings_warn_unknown(const json_t *set, const char *const *known,
                              size_t n, const char *comp,
                              const char *backend);

#endif /* KNIT_CHANNELS_SETTINGS_H */
