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
 */
#ifndef KNIT_FUZZ_FRAME_H
#define KNIT_FUZZ_FRAME_H

#include <stddef.h>
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

#endif /* KNIT_FUZZ_FRAME_H */
