/*
 * Header lists for the protocol bindings: the owned list encoders fill
 * (ce_headers), case-insensitive lookup, and small ASCII helpers shared by
 * the bindings (bind_int.h).
 *
 * A ce_headers keeps every name and value in one byte store; items point
 * into it. When the store has to grow, the items are moved to the new
 * block before the old one is freed, so pointers handed out earlier by
 * ce_headers_find stay valid only until the next add (documented in
 * cloudevents.h by "names/values point into `store`").
 */
#include <stdlib.h>
#include <string.h>

#include "cloudevents/bind_int.h"

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool ce_bind_ieq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

bool ce_bind_iprefix(const char *s, size_t n, const char *prefix)
{
    size_t pn = strlen(prefix);
    return n >= pn && ce_bind_ieq(s, pn, prefix, pn);
}

/* Grows the store so that `extra` more bytes fit, re-pointing every item
 * into the new block. Returns CE_OK or CE_ENOMEM. */
static int store_grow(ce_headers *h, size_t extra)
{
    ce_buf *st = &h->store;
    if (st->cap - st->len >= extra && st->data)
        return CE_OK;
    size_t need = st->len + extra;
    if (need < extra)
        return CE_ENOMEM;
    size_t cap = st->cap ? st->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return CE_ENOMEM;
        cap *= 2;
    }
    char *nd = malloc(cap);
    if (!nd)
        return CE_ENOMEM;
    if (st->data) {
        memcpy(nd, st->data, st->len);
        for (size_t i = 0; i < h->count; i++) {
            h->items[i].name = nd + (h->items[i].name - st->data);
            h->items[i].value = nd + (h->items[i].value - st->data);
        }
        free(st->data);
    }
    st->data = nd;
    st->cap = cap;
    return CE_OK;
}

static int items_grow(ce_headers *h)
{
    if (h->count < h->cap)
        return CE_OK;
    size_t cap = h->cap ? h->cap * 2 : 16;
    ce_header *ni = realloc(h->items, cap * sizeof *ni);
    if (!ni)
        return CE_ENOMEM;
    h->items = ni;
    h->cap = cap;
    return CE_OK;
}

static const char hexdig[] = "0123456789ABCDEF";

/* Bytes a percent-encoded value keeps as they are: U+0021-U+007E except
 * '"' and '%'. */
static inline bool pct_keep(unsigned char c)
{
    return c >= 0x21 && c <= 0x7E && c != '"' && c != '%';
}

int ce_bind_headers_add2(ce_headers *h, const char *prefix, const char *name,
                         size_t nlen, const char *value, size_t vlen,
                         bool pct)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    size_t venc = vlen;
    if (pct && vlen && ce_bind_plain(value, vlen, true)) {
        const char *sp = value, *end = value + vlen;  /* only spaces */
        while ((sp = memchr(sp, ' ', (size_t)(end - sp))) != NULL) {
            venc += 2;
            sp++;
        }
    } else if (pct) {
        for (size_t i = 0; i < vlen; i++)
            if (!pct_keep((unsigned char)value[i]))
                venc += 2;
    }
    if (plen + nlen < nlen || venc < vlen || plen + nlen + venc + 2 < venc)
        return CE_ENOMEM;
    if (items_grow(h) != CE_OK || store_grow(h, plen + nlen + venc + 2))
        return CE_ENOMEM;
    ce_buf *st = &h->store;
    char *p = st->data + st->len;
    ce_header *it = &h->items[h->count];
    it->name = p;
    it->name_len = plen + nlen;
    if (plen)
        memcpy(p, prefix, plen);
    memcpy(p + plen, name, nlen);
    p += plen + nlen;
    *p++ = '\0';
    it->value = p;
    it->value_len = venc;
    if (!pct || venc == vlen) {
        if (vlen)
            memcpy(p, value, vlen);
        p += vlen;
    } else {
        for (size_t i = 0; i < vlen; i++) {
            unsigned char c = (unsigned char)value[i];
            if (pct_keep(c)) {
                *p++ = (char)c;
            } else {
                *p++ = '%';
                *p++ = hexdig[c >> 4];
                *p++ = hexdig[c & 15];
            }
        }
    }
    *p++ = '\0';
    st->len = (size_t)(p - st->data);
    h->count++;
    return CE_OK;
}

/* Appends a copy of name/value. Owner: the list; thread: caller's. Returns
 * CE_OK or CE_ENOMEM (the list is unchanged then). */
int ce_headers_add(ce_headers *h, const char *name, size_t nlen,
                   const char *value, size_t vlen)
{
    return ce_bind_headers_add2(h, NULL, name, nlen, value, vlen, false);
}

/* Frees the list's memory and leaves it empty (reusable). */
void ce_headers_free(ce_headers *h)
{
    if (!h)
        return;
    free(h->items);
    free(h->store.data);
    h->items = NULL;
    h->count = h->cap = 0;
    h->store.data = NULL;
    h->store.len = h->store.cap = 0;
}

/* Empties the list, keeping its memory (items and store) for reuse. */
void ce_headers_reset(ce_headers *h)
{
    h->count = 0;
    h->store.len = 0;
    if (h->store.data)
        h->store.data[0] = '\0';
}

/* First header named `name` (ASCII case-insensitive), or NULL. */
const ce_header *ce_headers_find(const ce_header *h, size_t n,
                                 const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (ce_bind_ieq(h[i].name, h[i].name_len, name, nl))
            return &h[i];
    return NULL;
}
