/*
 * Internal helpers shared by the files of libknit-cloudevents (not part of
 * the public API; other knit modules must use cloudevents.h only).
 */
#ifndef KNIT_CE_INT_H
#define KNIT_CE_INT_H

#include "cloudevents/cloudevents.h"

/* Index of the core attributes, in iteration order. */
enum {
    CE_A_SPECVERSION = 0,
    CE_A_ID,
    CE_A_SOURCE,
    CE_A_TYPE,
    CE_A_DATACONTENTTYPE,
    CE_A_DATASCHEMA,
    CE_A_SUBJECT,
    CE_A_TIME,
    CE_A_NCORE
};

/* Name and fixed type of core attribute i (0 <= i < CE_A_NCORE). */
extern const char *const ce__core_names[CE_A_NCORE];
extern const ce_type ce__core_types[CE_A_NCORE];

/* Index of the core attribute called name[0..n), or -1. */
int ce__core_index(const char *name, size_t n);

/* Checks a canonical value of type t; on error fills err naming `attr`
 * (NUL-terminated, may be ""). */
int ce__check_value(ce_type t, const char *v, size_t n, const char *attr,
                    ce_err *err);
/* String rules only (valid UTF-8, no controls, noncharacters, surrogates). */
int ce__check_string(const char *v, size_t n, const char *attr, ce_err *err);
/* Media type syntax (RFC 2045 type "/" subtype *(";" parameter)). */
int ce__check_media(const char *v, size_t n, const char *attr, ce_err *err);
/* True when bytes are valid UTF-8 (no surrogates, no overlongs). */
bool ce__utf8_valid(const char *s, size_t n);
/* True when the media type is textual (type "text", subtype "xml" or
 * "...+xml", or a charset parameter): its bytes are meant as a string. */
bool ce__media_is_text(const char *mt, size_t n);

/* Validates JSON text s[0..n) (one value, surrounded by optional
 * whitespace) and appends its compact form (insignificant whitespace
 * removed, strings copied verbatim) to out, if out is non-NULL.
 * CE_EPARSE with err->offset on malformed input. */
int ce__json_compact(const char *s, size_t n, ce_buf *out, ce_err *err);
/* Appends s[0..n) as a JSON string literal (with quotes, escaped). */
int ce__json_put_string(ce_buf *out, const char *s, size_t n);

/* Sets an attribute without re-checking its value (the caller already has);
 * the name is still resolved. Used by decoders on their hot path. core is
 * the core index or -1 for an extension. */
int ce__event_set_raw(ce_event *ev, int core, const char *name, size_t nlen,
                      const char *value, size_t n, ce_type type, ce_err *err);
/* Reserves n bytes of data storage in the event (data becomes present,
 * length n) and returns a pointer to fill. NULL on ENOMEM or frozen. */
char *ce__event_data_alloc(ce_event *ev, size_t n);
/* Shrinks data to n bytes (n <= current length); when the data is the
 * newest allocation of the event the rest is reused. */
void ce__event_data_truncate(ce_event *ev, size_t n);

#endif /* KNIT_CE_INT_H */
