/*
 * libknit-cloudevents: the CloudEvents 1.0 event model, validation, the JSON
 * event format (single and batch) and the HTTP, Kafka and NATS protocol
 * bindings. No I/O, no threads, no dependency on the rest of knit: every
 * function works on memory the caller gives it.
 *
 * Conventions
 * - Functions returning int return CE_OK (0) or a negative ce_code; detail
 *   goes to the optional `ce_err *err` out-parameter (may be NULL).
 * - Strings passed in are copied unless a comment says otherwise; strings
 *   returned point into the event and live as long as the caller's reference.
 * - Events are reference-counted. A new event is mutable; once it is shared
 *   (ce_event_freeze, done by ce_event_ref on a second reference holder's
 *   behalf by convention: call ce_event_freeze before handing it to another
 *   thread) setters fail with CE_EFROZEN. Refcounting is atomic, so a frozen
 *   event may be read and released from any thread.
 * - Attribute values are held as their canonical string form together with
 *   their CloudEvents type (see ce_type), so bindings never re-format them.
 */
#ifndef KNIT_CLOUDEVENTS_H
#define KNIT_CLOUDEVENTS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

typedef enum ce_code {
    CE_OK = 0,
    CE_ENOMEM = -1,      /* allocation failed */
    CE_EINVAL = -2,      /* the event breaks a CloudEvents rule */
    CE_EPARSE = -3,      /* the bytes are not well-formed (JSON, header) */
    CE_EUNSUPPORTED = -4,/* well-formed but not supported (e.g. format) */
    CE_EFROZEN = -5,     /* setter on an event that is shared */
    CE_ENOTFOUND = -6,   /* no such attribute */
    CE_ERANGE = -7,      /* a number out of range, a buffer too small */
} ce_code;

/* Error detail. `attr` names the attribute or field at fault ("" if none),
 * `offset` is the byte position in the input where relevant (else -1). */
typedef struct ce_err {
    ce_code code;
    char attr[64];
    char msg[192];
    long offset;
} ce_err;

/* Fills *err (if non-NULL) and returns code. printf-style message. */
int ce_err_set(ce_err *err, ce_code code, const char *attr, long offset,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
const char *ce_code_str(ce_code code);

/* --------------------------------------------------------------- buffers */

/* A growable byte buffer. Zero-initialise (CE_BUF_INIT) before use; the
 * data is always NUL-terminated (not counted in len). Owner frees with
 * ce_buf_free. */
typedef struct ce_buf {
    char *data;
    size_t len;
    size_t cap;
} ce_buf;
#define CE_BUF_INIT {NULL, 0, 0}

int ce_buf_reserve(ce_buf *b, size_t extra);
int ce_buf_append(ce_buf *b, const void *p, size_t n);
int ce_buf_puts(ce_buf *b, const char *s);
int ce_buf_printf(ce_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int ce_buf_vprintf(ce_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void ce_buf_reset(ce_buf *b);  /* len = 0, keeps memory */
void ce_buf_free(ce_buf *b);

/* Base64 (RFC 4648, with padding). Decode rejects invalid input. */
int ce_base64_encode(ce_buf *out, const void *p, size_t n);
int ce_base64_decode(ce_buf *out, const char *s, size_t n, ce_err *err);

/* -------------------------------------------------------------- types */

typedef enum ce_type {
    CE_TYPE_STRING = 0,
    CE_TYPE_BOOLEAN,
    CE_TYPE_INTEGER,
    CE_TYPE_BINARY,     /* canonical form: base64 */
    CE_TYPE_URI,
    CE_TYPE_URI_REF,
    CE_TYPE_TIMESTAMP,
} ce_type;

const char *ce_type_str(ce_type t);

/* RFC 3339 timestamp: seconds since the epoch (UTC) + nanoseconds and the
 * original UTC offset in minutes (kept so formatting can round-trip). */
typedef struct ce_time {
    int64_t sec;
    int32_t nsec;
    int16_t offset_min;
} ce_time;

/* Parses RFC 3339 `date-time` (case-insensitive T and Z, fraction up to 9
 * digits, leap second 60 accepted as :59.999999999). */
int ce_time_parse(const char *s, size_t n, ce_time *out, ce_err *err);
/* Formats in UTC with nanoseconds when non-zero ("2024-01-02T03:04:05.
 * 123456789Z"). buf must hold CE_TIME_MAX bytes. Returns length. */
#define CE_TIME_MAX 40
size_t ce_time_format_utc(const ce_time *t, char *buf);
/* Current wall-clock time. */
ce_time ce_time_now(void);

/* Validation helpers on canonical strings; each returns CE_OK or CE_EINVAL
 * with err->msg naming the rule broken. */
int ce_check_attr_name(const char *name, size_t n, ce_err *err);
int ce_check_value(ce_type t, const char *v, size_t n, ce_err *err);
/* Parses a canonical Integer (JSON integer grammar, int32 range). */
int ce_parse_int(const char *s, size_t n, int32_t *out);
/* True when the media type (parameters ignored, case-insensitive) is JSON:
 * application/json, any "x/json", any "x/y+json". NULL or "" counts as JSON
 * (the JSON format's default). */
bool ce_media_is_json(const char *mt, size_t n);
/* Compares two media types case-insensitively, ignoring whitespace around
 * parameters; parameter order matters. */
bool ce_media_equal(const char *a, size_t an, const char *b, size_t bn);

/* ---------------------------------------------------------- event model */

typedef struct ce_event ce_event;

/* The core context attributes have fixed types:
 *   specversion, id, type, subject, datacontenttype: String
 *   source: URI-reference; dataschema: URI; time: Timestamp */

/* New empty mutable event with refcount 1 (specversion unset). */
ce_event *ce_event_new(void);
/* Takes another reference. Returns ev. */
ce_event *ce_event_ref(ce_event *ev);
/* Drops a reference; frees at zero. NULL is ignored. */
void ce_event_unref(ce_event *ev);
/* Marks the event immutable (idempotent). */
void ce_event_freeze(ce_event *ev);
bool ce_event_frozen(const ce_event *ev);
/* Deep copy, mutable, refcount 1. NULL on ENOMEM. */
ce_event *ce_event_clone(const ce_event *ev);

/* Sets an attribute (core or extension) from its canonical string. For a
 * core attribute `type` is ignored (the core type is used); for an
 * extension it is the extension's type. The value is checked against the
 * type's canonical-string rules (not the event-level rules such as
 * "required"), and the name against the naming rules. */
int ce_event_set(ce_event *ev, const char *name, const char *value, size_t n,
                 ce_type type, ce_err *err);
/* Same as ce_event_set with a name that need not be NUL-terminated
 * (e.g. borrowed from a header). */
int ce_event_setn(ce_event *ev, const char *name, size_t nlen,
                  const char *value, size_t n, ce_type type, ce_err *err);
/* Convenience: NUL-terminated value, type String for extensions. */
int ce_event_set_str(ce_event *ev, const char *name, const char *value,
                     ce_err *err);
int ce_event_set_int(ce_event *ev, const char *name, int32_t v, ce_err *err);
int ce_event_set_bool(ce_event *ev, const char *name, bool v, ce_err *err);
/* Removes an attribute; CE_ENOTFOUND if absent. */
int ce_event_unset(ce_event *ev, const char *name);

/* Looks up an attribute. Returns its canonical NUL-terminated value (and
 * length/type through the optional out-params) or NULL if absent. */
const char *ce_event_get(const ce_event *ev, const char *name, size_t *len,
                         ce_type *type);
/* Same with a non-terminated name. */
const char *ce_event_getn(const ce_event *ev, const char *name, size_t nlen,
                          size_t *len, ce_type *type);

/* Iterates all attributes that are set (core first, in the order
 * specversion id source type datacontenttype dataschema subject time, then
 * extensions in insertion order). Returns false past the end. */
typedef struct ce_attr {
    const char *name;
    const char *value;
    size_t len;
    ce_type type;
    bool extension;
} ce_attr;
bool ce_event_attr_at(const ce_event *ev, size_t i, ce_attr *out);
size_t ce_event_attr_count(const ce_event *ev);

/* Data. Absent data and empty data are different (has_data). For the JSON
 * format with a JSON content type, data holds the JSON text of the value
 * (a JSON string keeps its quotes). Copies the bytes. */
int ce_event_set_data(ce_event *ev, const void *data, size_t n);
int ce_event_clear_data(ce_event *ev);
bool ce_event_has_data(const ce_event *ev);
const void *ce_event_data(const ce_event *ev, size_t *n);

/* Validates the whole event per CloudEvents 1.0: specversion "1.0",
 * required attributes present and non-empty, every value well-formed for
 * its type, names legal. First error wins; err->attr names the attribute. */
int ce_event_validate(const ce_event *ev, ce_err *err);

/* Converts a specversion 0.3 event (schemaurl → dataschema,
 * datacontentencoding base64 → binary data) to 1.0 in place. */
int ce_event_upgrade_03(ce_event *ev, ce_err *err);

/* Equality of attributes (names, values, types) and data bytes. */
bool ce_event_equal(const ce_event *a, const ce_event *b);

/* --------------------------------------------------------- JSON format */

#define CE_MEDIA_JSON "application/cloudevents+json"
#define CE_MEDIA_BATCH "application/cloudevents-batch+json"

/* Decodes one event in the JSON format and validates it. On success *out
 * holds a new mutable event (refcount 1). */
int ce_json_decode(const char *buf, size_t n, ce_event **out, ce_err *err);
/* Decodes a JSON batch (array, may be empty). All or nothing: on any error
 * no event is returned, err->attr is prefixed with "[i]." for the index.
 * *out is a malloc'd array of *count events; free with ce_events_free. */
int ce_json_decode_batch(const char *buf, size_t n, ce_event ***out,
                         size_t *count, ce_err *err);
/* Appends the JSON format of ev to out. */
int ce_json_encode(const ce_event *ev, ce_buf *out, ce_err *err);
int ce_json_encode_batch(ce_event *const *evs, size_t count, ce_buf *out,
                         ce_err *err);
/* Unrefs each event and frees the array. */
void ce_events_free(ce_event **evs, size_t count);

/* ------------------------------------------------- protocol bindings */

/* A header as seen by a binding: name and value are NOT NUL-terminated
 * and are borrowed from the caller. */
typedef struct ce_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} ce_header;

/* Owned header list produced by encoders. */
typedef struct ce_headers {
    ce_header *items;   /* names/values point into `store` */
    size_t count;
    size_t cap;
    ce_buf store;
} ce_headers;
int ce_headers_add(ce_headers *h, const char *name, size_t nlen,
                   const char *value, size_t vlen);
void ce_headers_free(ce_headers *h);
/* Empties the list but keeps its memory for reuse (count = 0). */
void ce_headers_reset(ce_headers *h);
/* Case-insensitive lookup; NULL if absent. */
const ce_header *ce_headers_find(const ce_header *h, size_t n,
                                 const char *name);

typedef enum ce_mode {
    CE_MODE_BINARY = 0,
    CE_MODE_STRUCTURED,
    CE_MODE_BATCH,
} ce_mode;

/* Decoding options. */
enum {
    CE_DECODE_LENIENT = 1u << 0, /* accept invalid percent-escapes and raw
                                    non-ASCII in header values as-is */
    CE_DECODE_NO_VALIDATE = 1u << 1,
};

/* Which mode an HTTP message uses, from its Content-Type (may be NULL). */
ce_mode ce_http_mode(const char *content_type, size_t n);

/* Decodes an HTTP message (request or response) in any mode. *out is a
 * malloc'd array of *count new events (1 for binary/structured, 0..n for
 * batch); free with ce_events_free. A binary-mode message without
 * ce-specversion/ce-id is CE_EINVAL naming the missing header. */
int ce_http_decode(const ce_header *headers, size_t nheaders,
                   const void *body, size_t body_len, unsigned flags,
                   ce_event ***out, size_t *count, ce_err *err);

/* Encodes one event for HTTP. Binary: ce-* headers (percent-encoded) and
 * Content-Type, body = data. Structured: Content-Type
 * "application/cloudevents+json; charset=utf-8", body = JSON format.
 * Headers are appended to *headers, the body to *body. */
int ce_http_encode(const ce_event *ev, ce_mode mode, ce_headers *headers,
                   ce_buf *body, ce_err *err);

/* Percent-encoding of header values (CloudEvents HTTP binding §3.1.3.2). */
int ce_pct_encode(ce_buf *out, const char *s, size_t n);
int ce_pct_decode(ce_buf *out, const char *s, size_t n, unsigned flags,
                  ce_err *err);

/* Kafka binding. A record is key + value + headers (header values are byte
 * strings). Binary mode: ce_<name> headers, content-type header, value =
 * data (absent data → value NULL), and `partitionkey` → key. Structured:
 * content-type application/cloudevents+json, value = JSON format, key =
 * partitionkey. */
typedef struct ce_kafka_record {
    const void *key;
    size_t key_len;
    const void *value;     /* NULL for a null (tombstone) value */
    size_t value_len;
    const ce_header *headers;
    size_t nheaders;
} ce_kafka_record;

int ce_kafka_decode(const ce_kafka_record *rec, unsigned flags,
                    ce_event **out, ce_err *err);
/* Fills headers/value/key. *key_out points into the event (or NULL);
 * has_value is false when the value must be a Kafka null. */
int ce_kafka_encode(const ce_event *ev, ce_mode mode, ce_headers *headers,
                    ce_buf *value, bool *has_value, const char **key_out,
                    size_t *key_len, ce_err *err);

/* NATS binding (NATS >= 2.2 headers). Binary mode: every attribute as a
 * ce-<name> header (datacontenttype included), percent-encoded, payload =
 * data. Structured: Content-Type application/cloudevents+json, payload =
 * JSON format. Decoding picks structured when Content-Type starts with
 * application/cloudevents, binary when ce-specversion is present. */
int ce_nats_decode(const ce_header *headers, size_t nheaders,
                   const void *payload, size_t len, unsigned flags,
                   ce_event **out, ce_err *err);
int ce_nats_encode(const ce_event *ev, ce_mode mode, ce_headers *headers,
                   ce_buf *payload, ce_err *err);

#ifdef __cplusplus
}
#endif
#endif /* KNIT_CLOUDEVENTS_H */
