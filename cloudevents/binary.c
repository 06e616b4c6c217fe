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
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cloudevents/bind_int.h"
#include "cloudevents/ce_int.h"

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
static inline uint64_t lower8(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = ones * 0x80;
    uint64_t h = v & (ones * 0x7F);
    uint64_t ge_a = h + ones * (0x80 - 'A');
    uint64_t gt_z = h + ones * (0x7F - 'Z');
    return v | ((~v & (ge_a ^ gt_z) & highs) >> 2);
}

static bool lower_name(char *dst, const char *s, size_t n)
{
    if (n > CE_BIND_NAME_MAX)
        return false;
    if (n < 8) {
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
    } else {            /* 8 bytes at a time, the last chunk overlapping */
        uint64_t v;
        for (size_t i = 0; i + 8 <= n; i += 8) {
            memcpy(&v, s + i, 8);
            v = lower8(v);
            memcpy(dst + i, &v, 8);
        }
        memcpy(&v, s + n - 8, 8);
        v = lower8(v);
        memcpy(dst + n - 8, &v, 8);
    }
    dst[n] = '\0';
    return true;
}

/* True when name starts with the 3-byte binding prefix ("ce-", "ce_"),
 * letters compared case-insensitively. */
static inline bool has_prefix(const char *name, const char *prefix)
{
    return (name[0] | 0x20) == prefix[0] && (name[1] | 0x20) == prefix[1] &&
           name[2] == prefix[2];
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

/* Decodes header value h into (*v, *vn): as-is, or into stack/scratch.
 * *plain tells that the value is printable ASCII (a valid String). */
static int header_value(const ce_bind_binary *b, const ce_header *h,
                        const char *hname, char *stack, size_t stack_cap,
                        ce_buf *scratch, unsigned flags, const char **v,
                        size_t *vn, bool *plain, ce_err *err)
{
    *v = h->value ? h->value : "";   /* librdkafka: NULL = null value */
    *vn = h->value ? h->value_len : 0;
    *plain = ce_bind_plain(*v, *vn, b->pct);
    if (*plain)
        return CE_OK;
    if (!b->pct) {
        size_t bad;
        if (!ce_bind_utf8_valid((const unsigned char *)*v, *vn, &bad))
            return ce_err_set(err, CE_EPARSE, hname, (long)bad,
                              "header %s: value is not valid UTF-8 "
                              "(byte %zu)", hname, bad);
        return CE_OK;
    }
    char *dst = stack;
    if (*vn > stack_cap) {
        ce_buf_reset(scratch);
        if (ce_buf_reserve(scratch, *vn + 1) != CE_OK)
            return ce_err_set(err, CE_ENOMEM, hname, -1, "out of memory");
        dst = scratch->data;
    }
    long r = ce_bind_pct_decode_into(dst, *v, *vn, flags,
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
    if (!ce_bind_plain(v, vn, false) &&
        !ce_bind_utf8_valid((const unsigned char *)v, vn, &bad))
        return ce_err_set(err, CE_EPARSE, b->ctype_header, (long)bad,
                          "header %s: value is not valid UTF-8",
                          b->ctype_header);
    if (vn == 0)
        return CE_OK;
    size_t dn = 0;
    const char *dct = b->ce_dct_allowed
        ? ce_event_get(ev, "datacontenttype", &dn, NULL) : NULL;
    if (dct) {
        if (ce_media_equal(v, vn, dct, dn))
            return CE_OK;
        char hname[CE_BIND_NAME_MAX + 1];
        snprintf(hname, sizeof hname, "%sdatacontenttype", b->prefix);
        return ce_err_set(err, CE_EINVAL, hname, -1,
                          "header %s disagrees with %s", hname,
                          b->ctype_header);
    }
    int rc = ce__check_value(CE_TYPE_STRING, v, vn, "datacontenttype", err);
    if (rc == CE_OK)
        rc = ce__event_set_raw(ev, CE_A_DATACONTENTTYPE, "datacontenttype",
                               15, v, vn, CE_TYPE_STRING, err);
    if (rc != CE_OK)
        return blame_header(err, rc, b->ctype_header);
    return CE_OK;
}

static int missing(const ce_bind_binary *b, unsigned seen, ce_err *err)
{
    static const int req[] = {CE_A_SPECVERSION, CE_A_ID, CE_A_SOURCE,
                              CE_A_TYPE};
    for (unsigned i = 0; i < 4; i++) {
        if (seen & (1u << req[i]))
            continue;
        char hname[CE_BIND_NAME_MAX + 1];
        snprintf(hname, sizeof hname, "%s%s", b->prefix,
                 ce__core_names[req[i]]);
        return ce_err_set(err, CE_EINVAL, hname, -1,
                          "missing required header %s", hname);
    }
    return CE_OK;
}

/* Fast check of an extension name: [a-z0-9]{1,20}, not "data". When it
 * fails, ce_check_attr_name says why. */
static bool name_ok(const char *n, size_t len)
{
    if (len == 0 || len > 20 || (len == 4 && memcmp(n, "data", 4) == 0))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9')))
            return false;
    return true;
}

/* One prefixed header → one attribute. *seen has a bit per core
 * attribute already set (duplicate detection without a lookup). */
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
    int core = ce__core_index(name, nlen);
    if (core == CE_A_DATACONTENTTYPE && !b->ce_dct_allowed)
        return ce_err_set(err, CE_EINVAL, hname, -1,
                          "header %s must not be sent in binary mode: "
                          "%s carries datacontenttype", hname,
                          b->ctype_header);
    int rc;
    if (core < 0 && !name_ok(name, nlen) &&
        (rc = ce_check_attr_name(name, nlen, err)) != CE_OK)
        return blame_header(err, rc, hname);
    if (core >= 0 ? (*seen & (1u << core)) != 0
                  : ce_event_getn(ev, name, nlen, NULL, NULL) != NULL)
        return ce_err_set(err, CE_EINVAL, hname, -1,
                          "header %s appears more than once", hname);
    const char *v = NULL;
    size_t vn = 0;
    bool plain = false;
    rc = header_value(b, h, hname, stack, stack_cap, scratch, flags, &v, &vn,
                      &plain, err);
    if (rc != CE_OK)
        return rc;
    ce_type t = core >= 0 ? ce__core_types[core] : CE_TYPE_STRING;
    if (!(plain && t == CE_TYPE_STRING) &&
        (rc = ce__check_value(t, v, vn, name, err)) != CE_OK)
        return blame_header(err, rc, hname);
    rc = ce__event_set_raw(ev, core, name, nlen, v, vn, t, err);
    if (rc != CE_OK)
        return blame_header(err, rc, hname);
    if (core >= 0)
        *seen |= 1u << core;
    return CE_OK;
}

/* True when a content-type header among hs announces a structured or
 * batched message. */
static bool structured_announced(const ce_bind_binary *b, const ce_header *hs,
                              size_t nh, size_t ctlen)
{
    for (size_t i = 0; ctlen && i < nh; i++)
        if (ce_bind_ieq(hs[i].name, hs[i].name_len, b->ctype_header, ctlen))
            return ce_bind_is_ce_media(hs[i].value, hs[i].value_len);
    return false;
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
    size_t plen = 3; /* has_prefix() compares exactly 3 bytes */
    unsigned seen = 0;
    size_t ctlen = b->ctype_header ? strlen(b->ctype_header) : 0;
    int rc = CE_OK;
    for (size_t i = 0; i < nh; i++) {
        const ce_header *h = &hs[i];
        if (h->name_len > plen && has_prefix(h->name, b->prefix)) {
            rc = map_header(b, ev, h, plen, stack, sizeof stack, &scratch,
                            flags, &seen, err);
            if (rc != CE_OK) {
                /* ce- headers of a structured message do not count */
                if (structured_announced(b, hs + i + 1, nh - i - 1, ctlen))
                    rc = CE_BIND_NOT_BINARY;
                goto fail;
            }
        } else if (ctlen && ce_bind_ieq(h->name, h->name_len,
                                        b->ctype_header, ctlen)) {
            if (ctype) {
                rc = ce_err_set(err, CE_EINVAL, b->ctype_header, -1,
                                "header %s appears more than once",
                                b->ctype_header);
                goto fail;
            }
            if (ce_bind_is_ce_media(h->value, h->value_len)) {
                rc = CE_BIND_NOT_BINARY;
                goto fail;
            }
            ctype = h;
        } else if (h->name_len == plen && has_prefix(h->name, b->prefix)) {
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
    size_t svn;
    const char *sv = ce_event_get(ev, "specversion", &svn, NULL);
    if (svn == 3 && memcmp(sv, "0.3", 3) == 0 &&
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
