/*
 * Encoding and decoding of events in the log's compact binary payload
 * form. Every length is an unsigned LEB128 varint; decoding checks each
 * length against the bytes left and reports the first fault with its byte
 * position, so a damaged payload never reads out of bounds.
 */
#include "channels/log/codec.h"

#include <stdio.h>
#include <string.h>

#include "common/common.h"

#define TAG_CORE 0x80u
#define TAG_TYPE_MASK 0x07u
#define FLAG_HAS_DATA 0x01u
#define MAX_ATTRS 4096u

static const char *const g_core[] = {
    "specversion", "id", "source", "type",
    "datacontenttype", "dataschema", "subject", "time",
};
#define N_CORE (sizeof g_core / sizeof g_core[0])

/* Index of a core attribute name in g_core, else -1. Keyed on the first
 * letter so an event costs one string compare per attribute. */
static int core_id(const char *name)
{
    int id;
    switch (name[0]) {
    case 'd':
        id = name[1] == 'a' && name[2] == 't' && name[3] == 'a' &&
                     name[4] == 'c' ? 4 : 5;
        break;
    case 'i':
        id = 1;
        break;
    case 's':
        id = name[1] == 'p' ? 0 : name[1] == 'o' ? 2 : 6;
        break;
    case 't':
        id = name[1] == 'y' ? 3 : 7;
        break;
    default:
        return -1;
    }
    return strcmp(g_core[id], name) == 0 ? id : -1;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >>= 7)
        n++;
    return n;
}

static unsigned char *put_varint(unsigned char *p, uint64_t v)
{
    do {
        unsigned char b = v & 0x7f;
        v >>= 7;
        *p++ = (unsigned char)(b | (v ? 0x80 : 0));
    } while (v);
    return p;
}

static unsigned char *put_bytes(unsigned char *p, const void *b, size_t n)
{
    p = put_varint(p, n);
    if (n)
        memcpy(p, b, n);
    return p + n;
}

/* Size of the payload form of ev, or 0 on an internal error. */
size_t kn_logcodec_size(const ce_event *ev)
{
    size_t count = ce_event_attr_count(ev);
    size_t need = 2 + varint_len(count);
    for (size_t i = 0; i < count; i++) {
        ce_attr a;
        if (!ce_event_attr_at(ev, i, &a))
            return 0;
        if (a.extension || core_id(a.name) < 0) {
            size_t nl = strlen(a.name);
            need += 1 + varint_len(nl) + nl;
        } else {
            need += 2;
        }
        need += varint_len(a.len) + a.len;
    }
    if (ce_event_has_data(ev)) {
        size_t dlen = 0;
        ce_event_data(ev, &dlen);
        need += varint_len(dlen) + dlen;
    }
    return need;
}

int kn_logcodec_encode(const ce_event *ev, ce_buf *out)
{
    size_t count = ce_event_attr_count(ev);
    size_t dlen = 0, need = kn_logcodec_size(ev);
    const void *data = NULL;
    bool has_data = ce_event_has_data(ev);

    if (need == 0)
        return KN_INTERNAL;
    if (ce_buf_reserve(out, need) != CE_OK)
        return KN_NOMEM;
    if (has_data)
        data = ce_event_data(ev, &dlen);
    unsigned char *p = (unsigned char *)out->data + out->len;
    *p++ = KN_LOGCODEC_VERSION;
    *p++ = has_data ? FLAG_HAS_DATA : 0;
    p = put_varint(p, count);
    for (size_t i = 0; i < count; i++) {
        ce_attr a;
        if (!ce_event_attr_at(ev, i, &a))
            return KN_INTERNAL;
        int id = a.extension ? -1 : core_id(a.name);
        unsigned char tag = (unsigned char)(a.type & TAG_TYPE_MASK);
        if (id >= 0) {
            *p++ = (unsigned char)(tag | TAG_CORE);
            *p++ = (unsigned char)id;
        } else {
            *p++ = tag;
            p = put_bytes(p, a.name, strlen(a.name));
        }
        p = put_bytes(p, a.value, a.len);
    }
    if (has_data)
        p = put_bytes(p, data, dlen);
    out->len += need;
    out->data[out->len] = '\0';
    return KN_OK;
}

/* ----------------------------------------------------------- decoding */

typedef struct rd {
    const unsigned char *p;
    size_t n;
    size_t pos;
    char *why;
    size_t whylen;
} rd;

static int bad(rd *r, const char *what)
{
    if (r->why && r->whylen)
        snprintf(r->why, r->whylen, "event payload byte %zu: %s", r->pos,
                 what);
    return KN_CORRUPT;
}

static int get_varint(rd *r, uint64_t max, uint64_t *out, const char *what)
{
    uint64_t v = 0;
    size_t start = r->pos;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->pos >= r->n) {
            r->pos = start;
            return bad(r, "truncated length");
        }
        unsigned char b = r->p[r->pos++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (v > max) {
                r->pos = start;
                return bad(r, what);
            }
            *out = v;
            return KN_OK;
        }
    }
    r->pos = start;
    return bad(r, "length varint too long");
}

/* A length-prefixed byte string; *s points into the payload. */
static int get_bytes(rd *r, const char **s, size_t *len, const char *what)
{
    uint64_t v;
    int rc = get_varint(r, r->n - r->pos, &v, what);
    if (rc != KN_OK)
        return rc;
    if (v > r->n - r->pos)
        return bad(r, what);
    *s = (const char *)r->p + r->pos;
    *len = (size_t)v;
    r->pos += (size_t)v;
    return KN_OK;
}

static int get_attr(rd *r, ce_event *ev)
{
    char name[256];
    const char *nm, *val;
    size_t nlen, vlen;
    ce_err cerr;
    int rc;

    if (r->pos >= r->n)
        return bad(r, "truncated attribute");
    size_t at = r->pos;
    unsigned tag = r->p[r->pos++];
    if ((tag & ~(TAG_CORE | TAG_TYPE_MASK)) ||
        (tag & TAG_TYPE_MASK) > CE_TYPE_TIMESTAMP) {
        r->pos = at;
        return bad(r, "invalid attribute tag");
    }
    if (tag & TAG_CORE) {
        if (r->pos >= r->n || r->p[r->pos] >= N_CORE)
            return bad(r, "invalid core attribute id");
        nm = g_core[r->p[r->pos++]];
        nlen = strlen(nm);
    } else if ((rc = get_bytes(r, &nm, &nlen, "bad name length")) != KN_OK) {
        return rc;
    }
    if (nlen == 0 || nlen >= sizeof name)
        return bad(r, "attribute name length out of range");
    memcpy(name, nm, nlen);
    name[nlen] = '\0';
    if ((rc = get_bytes(r, &val, &vlen, "bad value length")) != KN_OK)
        return rc;
    rc = ce_event_set(ev, name, val, vlen, (ce_type)(tag & TAG_TYPE_MASK),
                      &cerr);
    if (rc == CE_ENOMEM)
        return KN_NOMEM;
    if (rc != CE_OK) {
        char msg[300];
        snprintf(msg, sizeof msg, "attribute '%.64s' rejected: %.192s", name,
                 cerr.msg);
        r->pos = at;
        return bad(r, msg);
    }
    return KN_OK;
}

int kn_logcodec_decode(const void *p, size_t n, ce_event **out, char *why,
                       size_t whylen)
{
    rd r = {p, n, 0, why, whylen};
    uint64_t count;
    ce_event *ev = NULL;
    int rc;

    *out = NULL;
    if (n < 2)
        return bad(&r, "payload shorter than 2 bytes");
    if (r.p[0] != KN_LOGCODEC_VERSION)
        return bad(&r, "unknown payload version");
    unsigned flags = r.p[1];
    r.pos = 1;
    if (flags & ~FLAG_HAS_DATA)
        return bad(&r, "unknown payload flags");
    r.pos = 2;
    if ((rc = get_varint(&r, MAX_ATTRS, &count, "too many attributes")))
        return rc;
    ev = ce_event_new();
    if (!ev)
        return KN_NOMEM;
    for (uint64_t i = 0; i < count; i++)
        if ((rc = get_attr(&r, ev)) != KN_OK)
            goto fail;
    if (flags & FLAG_HAS_DATA) {
        const char *d;
        size_t dlen;
        if ((rc = get_bytes(&r, &d, &dlen, "bad data length")) != KN_OK)
            goto fail;
        if (ce_event_set_data(ev, d, dlen) != CE_OK) {
            rc = KN_NOMEM;
            goto fail;
        }
    }
    if (r.pos != r.n) {
        rc = bad(&r, "trailing bytes after event");
        goto fail;
    }
    ce_event_freeze(ev);
    *out = ev;
    return KN_OK;
fail:
    ce_event_unref(ev);
    return rc;
}
