/*
 * Binary content mode shared by the HTTP, Kafka and NATS bindings: one
 * header per attribute (prefix + name), the data in the body. A binding
 * describes its differences in a ce_bind_binary (prefix, percent-encoding,
 * where datacontenttype travels).
 *
 * Decoding makes a single pass over the headers and copies nothing but what
 * the event model stores: values that need no decoding are handed to the
 * event as they are, others are decoded into a stack buffer (a heap scratch
 * buffer only for values longer than it).
 */
#include <stdio.h>
#include <string.h>

#include "cloudevents/bind_int.h"
#include "cloudevents/ce_int.h"

enum {
    REQ_SPECVERSION = 1u << 0,
    REQ_ID = 1u << 1,
    REQ_SOURCE = 1u << 2,
    REQ_TYPE = 1u << 3,
};

/* Bit of a required attribute, 0 for others. */
static unsigned required_bit(const char *name, size_t n)
{
    switch (n) {
    case 2:
        return memcmp(name, "id", 2) == 0 ? REQ_ID : 0;
    case 4:
        return memcmp(name, "type", 4) == 0 ? REQ_TYPE : 0;
    case 6:
        return memcmp(name, "source", 6) == 0 ? REQ_SOURCE : 0;
    case 11:
        return memcmp(name, "specversion", 11) == 0 ? REQ_SPECVERSION : 0;
    default:
        return 0;
    }
}

/* Rewrites an error from the event model so that it names the header. */
static int blame_header(ce_err *err, int rc, const char *hname)
{
    if (!err)
        return rc;
    char msg[sizeof err->msg];
    memcpy(msg, err->msg, sizeof msg);
    msg[sizeof msg - 1] = '\0';
    snprintf(err->attr, sizeof err->attr, "%s", hname);
    size_t k = (size_t)snprintf(err->msg, sizeof err->msg, "header %s: ",
                                hname);
    if (k < sizeof err->msg)
        snprintf(err->msg + k, sizeof err->msg - k, "%.*s",
                 (int)(sizeof err->msg - k - 1), msg);
    err->code = (ce_code)rc;
    return rc;
}

/* Lower-cased NUL-terminated copy of a header name into dst (which holds
 * CE_BIND_NAME_MAX + 1 bytes); false when it is too long. */
static bool lower_name(char *dst, const char *s, size_t n)
{
    if (n > CE_BIND_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    dst[n] = '\0';
    return true;
}

/* Trims SP/HTAB around s[0..*n). */
static const char *trim(const char *s, size_t *n)
{
    size_t a = 0, b = *n;
    while (a < b && (s[a] == ' ' || s[a] == '\t'))
        a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
        b--;
    *n = b - a;
    return s + a;
}

/* Decodes header value h into (*v, *vn): as-is, or into stack/scratch. */
static int header_value(const ce_bind_binary *b, const ce_header *h,
                        const char *hname, char *stack, size_t stack_cap,
                        ce_buf *scratch, unsigned flags, const char **v,
                        size_t *vn, ce_err *err)
{
    if (!b->pct) {
        size_t bad;
        if (!ce_bind_utf8_valid((const unsigned char *)h->value,
                                h->value_len, &bad))
            return ce_err_set(err, CE_EPARSE, hname, (long)bad,
                              "header %s: value is not valid UTF-8 "
                              "(byte %zu)", hname, bad);
        *v = h->value;
        *vn = h->value_len;
        return CE_OK;
    }
    if (ce_bind_pct_plain(h->value, h->value_len)) {
        *v = h->value;
        *vn = h->value_len;
        return CE_OK;
    }
    char *dst = stack;
    if (h->value_len > stack_cap) {
        ce_buf_reset(scratch);
        if (ce_buf_reserve(scratch, h->value_len + 1) != CE_OK)
            return ce_err_set(err, CE_ENOMEM, hname, -1, "out of memory");
        dst = scratch->data;
    }
    long r = ce_bind_pct_decode_into(dst, h->value, h->value_len, flags,
                                     hname, err);
    if (r < 0)
        return (int)r;
    *v = dst;
    *vn = (size_t)r;
    return CE_OK;
}

/* Sets datacontenttype from the content-type header. When the prefixed
 * datacontenttype header already set it (NATS accepts both), the two must
 * agree. */
static int set_ctype(const ce_bind_binary *b, ce_event *ev,
                     const ce_header *ctype, ce_err *err)
{
    size_t vn = ctype->value_len;
    const char *v = trim(ctype->value, &vn);
    size_t bad;
    if (!ce_bind_utf8_valid((const unsigned char *)v, vn, &bad))
        return ce_err_set(err, CE_EPARSE, b->ctype_header, (long)bad,
                          "header %s: value is not valid UTF-8",
                          b->ctype_header);
    if (vn == 0)
        return CE_OK;
    size_t dn;
    const char *dct = ce_event_get(ev, "datacontenttype", &dn, NULL);
    if (dct) {
        if (ce_media_equal(v, vn, dct, dn))
            return CE_OK;
        char hname[CE_BIND_NAME_MAX + 1];
        snprintf(hname, sizeof hname, "%sdatacontenttype", b->prefix);
        return ce_err_set(err, CE_EINVAL, hname, -1,
                          "header %s disagrees with %s", hname,
                          b->ctype_header);
    }
    int rc = ce_event_set(ev, "datacontenttype", v, vn, CE_TYPE_STRING, err);
    if (rc != CE_OK)
        return blame_header(err, rc, b->ctype_header);
    return CE_OK;
}

static int missing(const ce_bind_binary *b, unsigned seen, ce_err *err)
{
    static const char *const names[] = {"specversion", "id", "source",
                                        "type"};
    for (unsigned i = 0; i < 4; i++) {
        if (seen & (1u << i))
            continue;
        char hname[CE_BIND_NAME_MAX + 1];
        snprintf(hname, sizeof hname, "%s%s", b->prefix, names[i]);
        return ce_err_set(err, CE_EINVAL, hname, -1,
                          "missing required header %s", hname);
    }
    return CE_OK;
}

/* One prefixed header → one attribute. */
static int map_header(const ce_bind_binary *b, ce_event *ev,
                      const ce_header *h, size_t plen, char *stack,
                      size_t stack_cap, ce_buf *scratch, unsigned flags,
                      unsigned *seen, ce_err *err)
{
    char hname[CE_BIND_NAME_MAX + 1];
    if (!lower_name(hname, h->name, h->name_len)) {
        char shown[CE_BIND_NAME_MAX + 1];
        snprintf(shown, sizeof shown, "%.*s", CE_BIND_NAME_MAX - 3,
                 h->name);
        return ce_err_set(err, CE_EINVAL, shown, -1,
                          "header %s...: attribute name too long", shown);
    }
    const char *name = hname + plen;
    size_t nlen = h->name_len - plen;
    if (!b->ce_dct_allowed && nlen == 15 &&
        memcmp(name, "datacontenttype", 15) == 0)
        return ce_err_set(err, CE_EINVAL, hname, -1,
                          "header %s must not be sent in binary mode: "
                          "%s carries datacontenttype", hname,
                          b->ctype_header);
    const char *v = NULL;
    size_t vn = 0;
    int rc = header_value(b, h, hname, stack, stack_cap, scratch, flags, &v,
                          &vn, err);
    if (rc != CE_OK)
        return rc;
    if (ce_event_getn(ev, name, nlen, NULL, NULL))
        return ce_err_set(err, CE_EINVAL, hname, -1,
                          "header %s appears more than once", hname);
    rc = ce_event_set(ev, name, v, vn, CE_TYPE_STRING, err);
    if (rc != CE_OK)
        return blame_header(err, rc, hname);
    *seen |= required_bit(name, nlen);
    return CE_OK;
}

int ce_bind_decode_binary(const ce_bind_binary *b, const ce_header *hs,
                          size_t nh, const void *data, size_t len,
                          bool has_data, unsigned flags, ce_event **out,
                          ce_err *err)
{
    *out = NULL;
    ce_event *ev = ce_event_new();
    if (!ev)
        return ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
    char stack[512];
    ce_buf scratch = CE_BUF_INIT;
    const ce_header *ctype = NULL;
    size_t plen = strlen(b->prefix);
    unsigned seen = 0;
    size_t ctlen = b->ctype_header ? strlen(b->ctype_header) : 0;
    int rc = CE_OK;
    for (size_t i = 0; i < nh; i++) {
        const ce_header *h = &hs[i];
        if (h->name_len > plen && ce_bind_ieq(h->name, plen, b->prefix, plen)) {
            rc = map_header(b, ev, h, plen, stack, sizeof stack, &scratch,
                            flags, &seen, err);
            if (rc != CE_OK)
                goto fail;
        } else if (ctlen && ce_bind_ieq(h->name, h->name_len,
                                        b->ctype_header, ctlen)) {
            if (ctype) {
                rc = ce_err_set(err, CE_EINVAL, b->ctype_header, -1,
                                "header %s appears more than once",
                                b->ctype_header);
                goto fail;
            }
            ctype = h;
        } else if (h->name_len == plen &&
                   ce_bind_ieq(h->name, plen, b->prefix, plen)) {
            rc = ce_err_set(err, CE_EINVAL, b->prefix, -1,
                            "header %s: empty attribute name", b->prefix);
            goto fail;
        }
    }
    if ((rc = missing(b, seen, err)) != CE_OK)
        goto fail;
    if (ctype && (rc = set_ctype(b, ev, ctype, err)) != CE_OK)
        goto fail;
    if (has_data && ce_event_set_data(ev, data, len) != CE_OK) {
        rc = ce_err_set(err, CE_ENOMEM, "data", -1, "out of memory");
        goto fail;
    }
    const char *sv = ce_event_get(ev, "specversion", NULL, NULL);
    if (sv && strcmp(sv, "0.3") == 0 &&
        (rc = ce_event_upgrade_03(ev, err)) != CE_OK)
        goto fail;
    if (!(flags & CE_DECODE_NO_VALIDATE) &&
        (rc = ce_event_validate(ev, err)) != CE_OK)
        goto fail;
    ce_buf_free(&scratch);
    *out = ev;
    return CE_OK;
fail:
    ce_buf_free(&scratch);
    ce_event_unref(ev);
    return rc;
}

/* True when data is exactly the compact JSON text the JSON format stores
 * for a `data` member (valid JSON, no insignificant whitespace). */
static bool is_compact_json(const char *d, size_t n)
{
    bool ws = false;
    for (size_t i = 0; i < n && !ws; i++)
        ws = d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r';
    if (!ws)
        return ce__json_compact(d, n, NULL, NULL) == CE_OK;
    ce_buf c = CE_BUF_INIT;
    bool same = ce__json_compact(d, n, &c, NULL) == CE_OK && c.len == n;
    ce_buf_free(&c);
    return same;
}

/* An event without datacontenttype whose data is compact JSON text came
 * from the JSON format (its decoder stores `data` that way), where an
 * absent datacontenttype means application/json: bindings then announce
 * it explicitly, as the spec recommends. Data received in binary mode
 * without a content type is left unlabelled unless it happens to be compact
 * JSON (bodies that are not, e.g. with a trailing newline, keep no type). */
const char *ce_bind_data_ctype(const ce_event *ev, size_t *len)
{
    const char *ct = ce_event_get(ev, "datacontenttype", len, NULL);
    if (ct)
        return ct;
    *len = 0;
    size_t n;
    const char *d = ce_event_data(ev, &n);
    if (!ce_event_has_data(ev) || n == 0 || !is_compact_json(d, n))
        return NULL;
    *len = 16;
    return "application/json";
}

int ce_bind_encode_binary(const ce_bind_binary *b, const ce_event *ev,
                          ce_headers *headers, ce_err *err)
{
    ce_attr a;
    for (size_t i = 0; ce_event_attr_at(ev, i, &a); i++) {
        if (strcmp(a.name, "datacontenttype") == 0)
            continue;
        if (ce_bind_headers_add2(headers, b->prefix, a.name, strlen(a.name),
                                 a.value, a.len, b->pct) != CE_OK)
            return ce_err_set(err, CE_ENOMEM, a.name, -1, "out of memory");
    }
    size_t ctn;
    const char *ct = ce_bind_data_ctype(ev, &ctn);
    if (!ct)
        return CE_OK;
    if (b->ctype_written && ce_bind_is_ce_media(ct, ctn))
        return ce_err_set(err, CE_EUNSUPPORTED, "datacontenttype", -1,
                          "datacontenttype %.*s cannot be carried in binary "
                          "mode (%s would announce a structured message); "
                          "use structured mode", (int)(ctn > 60 ? 60 : ctn),
                          ct, b->ctype_header);
    if (b->ce_dct_written &&
        ce_bind_headers_add2(headers, b->prefix, "datacontenttype", 15, ct,
                             ctn, b->pct) != CE_OK)
        return ce_err_set(err, CE_ENOMEM, "datacontenttype", -1,
                          "out of memory");
    if (b->ctype_written &&
        ce_bind_headers_add2(headers, NULL, b->ctype_header,
                             strlen(b->ctype_header), ct, ctn, false))
        return ce_err_set(err, CE_ENOMEM, "datacontenttype", -1,
                          "out of memory");
    return CE_OK;
}

bool ce_bind_is_ce_json(const char *ct, size_t n)
{
    static const char mt[] = "application/cloudevents+json";
    size_t mn = sizeof mt - 1;
    ct = trim(ct, &n);
    if (n < mn || !ce_bind_ieq(ct, mn, mt, mn))
        return false;
    return n == mn || ct[mn] == ';' || ct[mn] == ' ' || ct[mn] == '\t';
}

bool ce_bind_is_ce_media(const char *ct, size_t n)
{
    ct = trim(ct, &n);
    return ce_bind_iprefix(ct, n, "application/cloudevents");
}
