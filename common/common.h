/*
 * common: what every part of knit shares — the status enum, levelled
 * logging, ISO-8601 durations, time, YAML→JSON loading with line numbers,
 * and small utilities. Depends only on libknit-cloudevents, jansson, libyaml.
 *
 * Threading: everything here is thread-safe unless a comment says otherwise.
 */
#ifndef KNIT_COMMON_H
#define KNIT_COMMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cloudevents/cloudevents.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ status */

/* X(name, text, retriable). KN_OK must stay first (0); codes are
 * negative so functions can return counts >= 0 alongside them. */
#define KN_STATUS_MAP(X)                                                    \
    X(OK, "ok", false)                                                      \
    X(AGAIN, "try again later", true)                                       \
    X(NOMEM, "out of memory", true)                                         \
    X(INVAL, "invalid argument", false)                                     \
    X(PARSE, "malformed input", false)                                      \
    X(NOTFOUND, "not found", false)                                         \
    X(EXISTS, "already exists", false)                                      \
    X(IO, "I/O error", true)                                                \
    X(NOSPACE, "no space left on device", true)                             \
    X(CORRUPT, "data is corrupt", false)                                    \
    X(TIMEOUT, "timed out", true)                                           \
    X(UNAVAILABLE, "backend unavailable", true)                             \
    X(TOOBIG, "too large", false)                                           \
    X(CLOSED, "closed", false)                                              \
    X(UNSUPPORTED, "not supported", false)                                  \
    X(TTL, "TTL exhausted", false)                                          \
    X(INTERNAL, "internal error", false)

typedef enum kn_status {
#define KN_X_ENUM(name, text, retry) KN__IDX_##name,
    KN_STATUS_MAP(KN_X_ENUM)
#undef KN_X_ENUM
    KN__STATUS_COUNT
} kn_status_idx;

/* The codes themselves: KN_OK = 0, KN_AGAIN = -1, ... */
enum kn_status_code {
#define KN_X_CODE(name, text, retry) KN_##name = -(int)KN__IDX_##name,
    KN_STATUS_MAP(KN_X_CODE)
#undef KN_X_CODE
};

const char *kn_status_str(int status);
bool kn_status_retriable(int status);
/* Maps a ce_code to the matching kn status. */
int kn_status_from_ce(int ce_code);

/* Error detail travels out of band: a status, a message and the place
 * (file:line for config, JSON path for fields). */
typedef struct kn_err {
    int status;
    char where[256]; /* "brokers.yaml:12" or "" */
    char field[128]; /* "spec.delivery.retry" or "" */
    char msg[512];
} kn_err;

int kn_err_set(kn_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* kn_err_set leaves where/field as they are; kn_err_set_at sets all
 * four (NULL where/field = ""). Both accept err == NULL and return
 * status. */
int kn_err_set_at(kn_err *err, int status, const char *where,
                  const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void kn_err_clear(kn_err *err);
/* "where: field: msg" with empty parts left out, into buf. */
const char *kn_err_str(const kn_err *err, char *buf, size_t n);

/* ----------------------------------------------------------- logging */

typedef enum kn_log_level {
    KN_LOG_DEBUG = 0,
    KN_LOG_INFO,
    KN_LOG_WARN,
    KN_LOG_ERROR,
} kn_log_level;

/* Global logger settings. Default: info, text, stderr. Format "json"
 * writes one JSON object per line ({"ts","level","msg",...}). */
void kn_log_init(kn_log_level level, bool json);
void kn_log_set_level(kn_log_level level);
bool kn_log_enabled(kn_log_level level);
int kn_log_level_parse(const char *s, kn_log_level *out);
const char *kn_log_level_str(kn_log_level level); /* "debug", "info", … */
/* Where lines go (default STDERR_FILENO); mainly for tests. */
void kn_log_set_fd(int fd);
void kn_log_write(kn_log_level level, const char *component, const char *fmt,
                  ...) __attribute__((format(printf, 3, 4)));

#define KN_LOG(lvl, comp, ...)                                              \
    do {                                                                    \
        if (kn_log_enabled(lvl))                                            \
            kn_log_write(lvl, comp, __VA_ARGS__);                           \
    } while (0)
#define KN_DEBUG(comp, ...) KN_LOG(KN_LOG_DEBUG, comp, __VA_ARGS__)
#define KN_INFO(comp, ...) KN_LOG(KN_LOG_INFO, comp, __VA_ARGS__)
#define KN_WARN(comp, ...) KN_LOG(KN_LOG_WARN, comp, __VA_ARGS__)
#define KN_ERROR(comp, ...) KN_LOG(KN_LOG_ERROR, comp, __VA_ARGS__)

/* --------------------------------------------------- durations, time */

/* ISO-8601 duration ("PT0.2S", "PT1H30M", "P1D", "P1W", "PT-1S" rejected)
 * to milliseconds. Years/months are rejected (not fixed lengths). Errors
 * for garbage, empty designators and overflow of int64 ms. */
int kn_duration_parse(const char *s, int64_t *ms_out, kn_err *err);
/* Canonical form, e.g. 200 → "PT0.2S", 5400000 → "PT1H30M". */
size_t kn_duration_format(int64_t ms, char *buf, size_t n);

/* Monotonic clock in nanoseconds / milliseconds. */
int64_t kn_now_mono_ns(void);
int64_t kn_now_mono_ms(void);
/* Wall clock in nanoseconds since the epoch. */
int64_t kn_now_wall_ns(void);
/* *ts = `ms` milliseconds from now on `clock`, for a timed wait
 * (CLOCK_REALTIME for pthread_cond_timedwait on a default condition
 * variable, CLOCK_MONOTONIC for one set to that clock). */
void kn_deadline_ms(struct timespec *ts, clockid_t clock, int64_t ms);
/* RFC 3339 UTC with nanoseconds of a wall-clock ns value, always nine
 * fractional digits ("2024-01-02T03:04:05.123456789Z", sorts as text).
 * buf must hold CE_TIME_MAX bytes. Returns the length. */
size_t kn_time_format_ns(int64_t wall_ns, char *buf);
/* Parses RFC 3339 to wall-clock ns (any offset; fraction up to 9 digits;
 * leap second 60 read as :59.999999999). KN_INVAL with err->msg naming
 * the problem, including values outside int64 ns (1677..2262). */
int kn_time_parse_ns(const char *s, int64_t *ns_out, kn_err *err);

/* ------------------------------------------------------ YAML → JSON */

/* One YAML document converted to a jansson tree, with a side table that
 * maps JSON paths ("spec.delivery.retry", "spec.filters[0].exact") to the
 * 1-based line where the node starts, so errors can say file:line.
 * Path syntax: members joined with '.', keys verbatim (no escaping, e.g.
 * "metadata.annotations.knit.dev/max-in-flight"), array items "[i]", the
 * root "". A member's line is the line of its key. */
typedef struct kn_yaml_doc {
    json_t *root;        /* owned */
    int line;            /* line of the document start */
    json_t *lines;       /* owned: object path -> integer line */
} kn_yaml_doc;

/* Parses every document in buf (multi-document streams). Scalars are typed
 * by YAML 1.2 core-schema rules (null, bool, int, float, else string;
 * quoted and block scalars are always strings; !!str/!!int/!!float/!!bool/
 * !!null tags honoured, other tags rejected). Mapping keys must be unique
 * strings. Anchors/aliases are supported (an alias is a deep copy; total
 * expansion and nesting are bounded). Empty (null) documents are skipped.
 * Returns the count of documents in *docs (malloc'd array, free with
 * kn_yaml_docs_free) or a negative status (KN_PARSE, KN_NOMEM) with
 * err->where = "name:line", err->field = the path when it applies, and
 * err->msg = the problem (libyaml's text for syntax errors); on error
 * *docs = NULL and *count = 0. buf need not be NUL-terminated. */
int kn_yaml_load(const char *name, const char *buf, size_t n,
                 kn_yaml_doc **docs, size_t *count, kn_err *err);
void kn_yaml_docs_free(kn_yaml_doc *docs, size_t count);
/* Line of a path (0 if unknown); falls back to the nearest parent path,
 * then to the document's line. */
int kn_yaml_line(const kn_yaml_doc *doc, const char *path);
/* Appends a JSON tree as one YAML document (block style, no "---") to
 * out, for `-o yaml`. Strings that would load back as another type
 * ("true", "12", "", "null", …) are quoted, so kn_yaml_load gives back an
 * equal tree. KN_INVAL / KN_NOMEM / KN_TOOBIG (nesting > 1024). */
int kn_yaml_emit(const json_t *root, ce_buf *out);

/* ------------------------------------------------------------- files */

/* Reads a whole file (or "-" = stdin) into a NUL-terminated buffer,
 * replacing out's content. KN_NOTFOUND / KN_INVAL (a directory) / KN_IO /
 * KN_NOMEM with err->msg naming the file and the reason. */
int kn_read_file(const char *path, ce_buf *out, kn_err *err);
/* Writes atomically: path.tmp.<pid>.<seq>, fsync, rename, fsync dir. A
 * crash leaves the old or the new content, never a mix. KN_NOSPACE /
 * KN_NOTFOUND / KN_IO with err->msg naming the failed step. */
int kn_write_file_atomic(const char *path, const void *p, size_t n,
                         kn_err *err);
/* mkdir -p; existing directories are fine. KN_EXISTS if a component is
 * not a directory, else KN_IO / KN_NOTFOUND with errno set. */
int kn_mkdirs(const char *path, int mode);

/* ------------------------------------------------------------- misc */

/* A new random UUID v4 string in buf (37 bytes). */
void kn_uuid(char buf[37]);
/* DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 chars. */
bool kn_dns1123_label(const char *s);
/* "ns/name" split; false if not of that shape. */
bool kn_split_ns_name(const char *s, char *ns, size_t nsn, char *name,
                      size_t namen);

#ifdef __cplusplus
}
#endif
#endif /* KNIT_COMMON_H */
