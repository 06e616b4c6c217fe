/*
 * The log's binary event form (the payload of a record; byte layout in
 * docs/storage.md "Event payload"). Attributes are stored as
 * (type, name, canonical value) with short ids for the core attributes,
 * then the data bytes if present. Internal to channels/log; also used by
 * the segment fuzz target.
 */
#ifndef KNIT_LOG_CODEC_H
#define KNIT_LOG_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "cloudevents/cloudevents.h"

#define KN_LOGCODEC_VERSION 1

/* Appends the payload form of ev to out (one reservation, no regrowth).
 * Returns KN_OK or KN_NOMEM. Reads ev only (any thread holding a
 * reference may call it). */
int kn_logcodec_encode(const ce_event *ev, ce_buf *out);
/* Bytes kn_logcodec_encode appends for ev (0 on an internal error). */
size_t kn_logcodec_size(const ce_event *ev);

/* Decodes one payload into a new frozen event (*out, refcount 1). Returns
 * KN_OK, KN_NOMEM, or KN_CORRUPT with a reason naming the byte position
 * inside the payload written to why (may be NULL). */
int kn_logcodec_decode(const void *p, size_t n, ce_event **out, char *why,
                       size_t whylen);

#endif
