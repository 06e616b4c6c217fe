/*
 * Input framing shared by the header fuzz targets (fuzz_http_headers.c,
 * fuzz_kafka_headers.c), so that a corpus file is readable text:
 *
 *     name: value\n        one header per line ('\r' before '\n' dropped;
 *     name: value\n        the name ends at the first ':'; a line without
 *     \n                   ':' is a header with an empty value)
 *     body bytes...        everything after the first empty line
 *
 * With no empty line the whole input is headers and the body is empty. At
 * most FRAME_MAX_HEADERS headers are kept (later lines are ignored).
 * Header names and values point into the input (no copies).
 * frame_same_event is the round-trip comparison both targets make.
 */
#ifndef KNIT_FUZZ_FRAME_H
#define KNIT_FUZZ_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "cloudevents/cloudevents.h"

#define FRAME_MAX_HEADERS 64

typedef struct frame {
    ce_header h[FRAME_MAX_HEADERS];
    size_t nh;
    const char *body;
    size_t body_len;
    bool has_body;          /* an empty line was present */
} frame;

static inline void frame_parse(const uint8_t *data, size_t size, frame *f)
{
    const char *p = (const char *)data, *end = p + size;
    f->nh = 0;
    f->body = end;
    f->body_len = 0;
    f->has_body = false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        if (le > p && le[-1] == '\r')
            le--;
        if (le == p && nl) {
            f->body = next;
            f->body_len = (size_t)(end - next);
            f->has_body = true;
            return;
        }
        if (f->nh < FRAME_MAX_HEADERS) {
            const char *colon = memchr(p, ':', (size_t)(le - p));
            ce_header *h = &f->h[f->nh++];
            h->name = p;
            h->name_len = (size_t)((colon ? colon : le) - p);
            h->value = colon ? colon + 1 : le;
            h->value_len = (size_t)(le - h->value);
        }
        p = next;
    }
}

/* Equal, allowing for the one documented change a binary round trip may
 * make: data that is compact JSON without a datacontenttype is announced
 * as application/json (the JSON format's default). */
static inline bool frame_same_event(const ce_event *a, ce_event *b)
{
    if (ce_event_equal(a, b))
        return true;
    size_t n;
    const char *ct = ce_event_get(b, "datacontenttype", &n, NULL);
    if (ce_event_get(a, "datacontenttype", NULL, NULL) || !ct ||
        n != 16 || memcmp(ct, "application/json", 16) != 0)
        return false;
    ce_event *c = ce_event_clone(b);
    if (!c)
        abort();
    ce_event_unset(c, "datacontenttype");
    bool same = ce_event_equal(a, c);
    ce_event_unref(c);
    return same;
}

#endif /* KNIT_FUZZ_FRAME_H */
