/*
 * Private helpers shared by the protocol bindings (headers.c, pct.c, http.c,
 * kafka.c, nats.c). Not part of the public API: include only from the
 * .c files of cloudevents/.
 */
#ifndef KNIT_CLOUDEVENTS_BIND_INT_H
#define KNIT_CLOUDEVENTS_BIND_INT_H

#include "cloudevents/cloudevents.h"

/* Longest header name a binding maps to an attribute (prefix included);
 * longer ce- headers are rejected with CE_EINVAL. */
#define CE_BIND_NAME_MAX 63

/* ASCII case-insensitive comparisons (locale-free). */
bool ce_bind_ieq(const char *a, size_t an, const char *b, size_t bn);
/* True when s[0..n) starts with `prefix` (ASCII case-insensitive). */
bool ce_bind_iprefix(const char *s, size_t n, const char *prefix);

/* Validates UTF-8 (no overlongs, no surrogates, <= U+10FFFF). On failure
 * returns false and *bad (optional) is the offset of the first bad byte. */
bool ce_bind_utf8_valid(const unsigned char *s, size_t n, size_t *bad);

/* Decodes one header value per the HTTP binding (trim OWS, undo a quoted
 * string, one round of percent-decoding, UTF-8 check) into dst, which must
 * hold at least n bytes. `hname` names the header in errors. Returns the
 * decoded length (>= 0) or a negative ce_code. */
long ce_bind_pct_decode_into(char *dst, const char *s, size_t n,
                             unsigned flags, const char *hname, ce_err *err);

/* True when every byte is printable ASCII (0x20-0x7E): the value is a
 * valid String as it is. With pct, also no '%' or '"' and no space at
 * either end, so it needs no percent-decoding, unquoting or trimming. */
bool ce_bind_plain(const char *s, size_t n, bool pct);

/* Appends a header whose name is prefix+name and whose value is `value`,
 * percent-encoded when `pct` is true. Names and values stored in h->store
 * are NUL-terminated. */
int ce_bind_headers_add2(ce_headers *h, const char *prefix, const char *name,
                         size_t nlen, const char *value, size_t vlen,
                         bool pct);

/* How a binding maps attributes to headers in binary mode. */
typedef struct ce_bind_binary {
    const char *prefix;       /* "ce-" (HTTP, NATS) or "ce_" (Kafka) */
    const char *ctype_header; /* "Content-Type"/"content-type" or NULL */
    bool pct;                 /* percent-encoding of values */
    bool ce_dct_allowed;      /* a prefix+"datacontenttype" header is OK */
    bool ce_dct_written;      /* encoder writes prefix+"datacontenttype" */
    bool ctype_written;       /* encoder writes ctype_header */
} ce_bind_binary;

/* Returned by ce_bind_decode_binary when the content-type header starts
 * with application/cloudevents: the message is not in binary mode. */
#define CE_BIND_NOT_BINARY 1

/* Binary-mode decode shared by all bindings, in one pass over the headers:
 * maps them to a new event, sets the data (when has_data), upgrades 0.3
 * and validates unless CE_DECODE_NO_VALIDATE. Errors name the header at
 * fault. Returns CE_BIND_NOT_BINARY (nothing decoded, err untouched) when
 * the content-type header announces a structured or batched message. */
int ce_bind_decode_binary(const ce_bind_binary *b, const ce_header *hs,
                          size_t nh, const void *data, size_t len,
                          bool has_data, unsigned flags, ce_event **out,
                          ce_err *err);

/* Binary-mode encode of the attributes (not the data) into *headers. */
int ce_bind_encode_binary(const ce_bind_binary *b, const ce_event *ev,
                          ce_headers *headers, ce_err *err);

/* The datacontenttype to announce for ev in binary mode: its own value,
 * "application/json" for events without one whose data is JSON text
 * (the JSON format's default), or NULL (length 0) for none. */
const char *ce_bind_data_ctype(const ce_event *ev, size_t *len);

/* True when the media type starts with application/cloudevents (leading
 * whitespace skipped, case-insensitive): a structured or batched message. */
bool ce_bind_is_ce_media(const char *ct, size_t n);

/* True when the media type is application/cloudevents+json (parameters
 * ignored, case-insensitive). */
bool ce_bind_is_ce_json(const char *ct, size_t n);

#endif /* KNIT_CLOUDEVENTS_BIND_INT_H */
