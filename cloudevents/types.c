/*
 * CloudEvents type system: the canonical-string rules of every attribute
 * type (String, Boolean, Integer, Binary, URI, URI-reference, Timestamp),
 * attribute names, and media types (RFC 2045/2046). Pure functions on
 * caller memory; thread-safe. Errors are CE_EINVAL with err->msg naming
 * the rule and err->offset the byte position in the value.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cloudevents/ce_int.h"

const char *ce_type_str(ce_type t)
{
    switch (t) {
    case CE_TYPE_STRING: return "String";
    case CE_TYPE_BOOLEAN: return "Boolean";
    case CE_TYPE_INTEGER: return "Integer";
    case CE_TYPE_BINARY: return "Binary";
    case CE_TYPE_URI: return "URI";
    case CE_TYPE_URI_REF: return "URI-reference";
    case CE_TYPE_TIMESTAMP: return "Timestamp";
    }
    return "unknown";
}

/* ------------------------------------------------------------ names */

int ce_check_attr_name(const char *name, size_t n, ce_err *err)
{
    char attr[64];
    size_t al = n < sizeof attr - 1 ? n : sizeof attr - 1;
    memcpy(attr, name, al);
    attr[al] = '\0';
    if (n == 0)
        return ce_err_set(err, CE_EINVAL, attr, 0,
                          "attribute name must not be empty");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return ce_err_set(err, CE_EINVAL, attr, (long)i,
                              "attribute name has character 0x%02X at "
                              "position %zu; only a-z and 0-9 are allowed",
                              c, i);
    }
    if (n > 20)
        return ce_err_set(err, CE_EINVAL, attr, 20,
                          "attribute name is %zu characters long; at most "
                          "20 are allowed", n);
    if (n == 4 && memcmp(name, "data", 4) == 0)
        return ce_err_set(err, CE_EINVAL, attr, 0,
                          "attribute name 'data' is reserved");
    return CE_OK;
}

/* ------------------------------------------------------------ UTF-8 */

/* Decodes one UTF-8 sequence at s[*i]; returns the code point or -1 for
 * invalid UTF-8, -2 for an encoded surrogate (U+D800..U+DFFF). */
static long utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    size_t len;
    long cp;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return -1;
    }
    if (n - *i < len)
        return -1;
    for (size_t k = 1; k < len; k++) {
        unsigned char cc = s[*i + k];
        if (cc < (k == 1 ? lo : 0x80) || cc > (k == 1 ? hi : 0xBF))
            return -1;
        cp = cp << 6 | (cc & 0x3F);
    }
    *i += len;
    return cp >= 0xD800 && cp <= 0xDFFF ? -2 : cp;
}

bool ce__utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        if (utf8_next(u, n, &i) < 0)
            return false;
    }
    return true;
}

static bool is_nonchar(long cp)
{
    return (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
}

/* True when none of the 8 bytes is outside 0x20..0x7E. */
static bool word_printable(const unsigned char *p)
{
    uint64_t x;
    const uint64_t ones = 0x0101010101010101ULL, high = ones * 0x80;
    memcpy(&x, p, 8);
    uint64_t below = (x - ones * 0x20) & ~x & high; /* a byte < 0x20 */
    uint64_t above = ((x + ones) | x) & high;       /* a byte >= 0x7F */
    return !(below | above);
}

int ce__check_string(const char *v, size_t n, const char *attr, ce_err *err)
{
    const unsigned char *u = (const unsigned char *)v;
    size_t i = 0;
    while (i + 8 <= n && word_printable(u + i))
        i += 8;
    while (i < n) {
        if (u[i] >= 0x20 && u[i] < 0x7F) {
            i++;
            continue;
        }
        size_t at = i;
        long cp = utf8_next(u, n, &i);
        if (cp == -1)
            return ce_err_set(err, CE_EINVAL, attr, (long)at,
                              "invalid UTF-8 at byte %zu", at);
        if (cp == -2)
            return ce_err_set(err, CE_EINVAL, attr, (long)at,
                              "surrogate code point at byte %zu is not "
                              "allowed in a String", at);
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            return ce_err_set(err, CE_EINVAL, attr, (long)at,
                              "control character U+%04lX at byte %zu is not "
                              "allowed in a String", cp, at);
        if (is_nonchar(cp))
            return ce_err_set(err, CE_EINVAL, attr, (long)at,
                              "noncharacter U+%04lX at byte %zu is not "
                              "allowed in a String", cp, at);
    }
    return CE_OK;
}

/* ------------------------------------------------------------ integers */

int ce_parse_int(const char *s, size_t n, int32_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && s[i] == '-')
        neg = true, i++;
    if (i == n)
        return CE_EINVAL;
    if (s[i] == '0' && n - i > 1)
        return CE_EINVAL;
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CE_EINVAL;
        v = v * 10 + (s[i] - '0');
        if (v > 2147483648LL)
            return CE_ERANGE;
    }
    if (neg)
        v = -v;
    if (v > INT32_MAX)
        return CE_ERANGE;
    if (out)
        *out = (int32_t)v;
    return CE_OK;
}

static int check_int(const char *v, size_t n, const char *attr, ce_err *err)
{
    int rc = ce_parse_int(v, n, NULL);
    if (rc == CE_ERANGE)
        return ce_err_set(err, CE_EINVAL, attr, 0,
                          "Integer out of range: must be within "
                          "-2147483648..2147483647");
    if (rc != CE_OK)
        return ce_err_set(err, CE_EINVAL, attr, 0,
                          "not a canonical Integer: expected an optional "
                          "'-' and decimal digits without leading zeros");
    return CE_OK;
}

/* ------------------------------------------------------------ base64 */

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static int check_base64(const char *v, size_t n, const char *attr,
                        ce_err *err)
{
    if (n % 4)
        return ce_err_set(err, CE_EINVAL, attr, (long)n,
                          "not Base64: length %zu is not a multiple of 4", n);
    size_t pad = 0;
    while (pad < 2 && pad < n && v[n - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++)
        if (!b64_char((unsigned char)v[i]))
            return ce_err_set(err, CE_EINVAL, attr, (long)i,
                              "not Base64: invalid character at byte %zu", i);
    return CE_OK;
}

/* ------------------------------------------------------------ URIs */

/* Character classes of ASCII bytes (bytes >= 0x80 are in none). */
enum {
    CC_URI = 1,    /* RFC 3986 unreserved / sub-delims */
    CC_COLON = 2,
    CC_AT = 4,
    CC_SLASH = 8,
    CC_QMARK = 16,
    CC_HEX = 32,
    CC_TOKEN = 64, /* RFC 2045 token character */
};

static const unsigned char cclass[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 65, 0, 64, 65, 64, 65, 65, 1, 1, 65, 65, 1, 65, 65, 8,
    97, 97, 97, 97, 97, 97, 97, 97, 97, 97, 2, 1, 0, 1, 0, 16,
    4, 97, 97, 97, 97, 97, 97, 65, 65, 65, 65, 65, 65, 65, 65, 65,
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 0, 0, 0, 64, 65,
    64, 97, 97, 97, 97, 97, 97, 65, 65, 65, 65, 65, 65, 65, 65, 65,
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 64, 64, 64, 65, 0,
};

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return cclass[c] & CC_HEX;
}

static bool is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

static bool is_subdelim(unsigned char c)
{
    return (cclass[c] & CC_URI) && !is_unreserved(c);
}

/* A URI syntax problem: message and byte offset. */
typedef struct uri_fault {
    const char *why;
    size_t at;
} uri_fault;

static bool fault(uri_fault *f, const char *why, size_t at)
{
    f->why = why;
    f->at = at;
    return false;
}

/* Scans s[*i..end) over unreserved, sub-delims, pct-encoded and the
 * characters of class mask `extra`; stops at any other character. */
static bool scan_chars(const char *s, size_t end, size_t *i, unsigned extra,
                       uri_fault *f)
{
    unsigned ok = CC_URI | extra;
    while (*i < end) {
        unsigned char c = (unsigned char)s[*i];
        if (cclass[c] & ok) {
            (*i)++;
        } else if (c == '%') {
            if (end - *i < 3 || !is_hex((unsigned char)s[*i + 1]) ||
                !is_hex((unsigned char)s[*i + 2]))
                return fault(f, "malformed percent-encoding", *i);
            *i += 3;
        } else {
            break;
        }
    }
    return true;
}

static bool check_ip_literal(const char *s, size_t a, size_t b, uri_fault *f)
{
    /* s[a..b) is the text between '[' and ']' */
    if (b > a && (s[a] == 'v' || s[a] == 'V')) {
        size_t i = a + 1, h = i;
        while (i < b && is_hex((unsigned char)s[i]))
            i++;
        if (i == h || i >= b || s[i] != '.' || i + 1 >= b)
            return fault(f, "malformed IPvFuture address", a);
        for (i++; i < b; i++) {
            unsigned char c = (unsigned char)s[i];
            if (!is_unreserved(c) && !is_subdelim(c) && c != ':')
                return fault(f, "malformed IPvFuture address", i);
        }
        return true;
    }
    char tmp[INET6_ADDRSTRLEN + 1];
    unsigned char addr[16];
    if (b - a >= sizeof tmp)
        return fault(f, "malformed IPv6 address", a);
    memcpy(tmp, s + a, b - a);
    tmp[b - a] = '\0';
    if (inet_pton(AF_INET6, tmp, addr) != 1)
        return fault(f, "malformed IPv6 address", a);
    return true;
}

/* authority = [ userinfo "@" ] host [ ":" port ], starting at s[*i];
 * leaves *i at the end of the authority ('/', '?', '#' or the end). */
static bool check_authority(const char *s, size_t n, size_t *i, uri_fault *f)
{
    size_t a = *i;
    if (!scan_chars(s, n, i, CC_COLON, f)) /* userinfo, or host ":" port */
        return false;
    if (*i < n && s[*i] == '@')
        a = ++*i;
    *i = a;
    if (*i < n && s[*i] == '[') {
        const char *close = memchr(s + *i, ']', n - *i);
        if (!close)
            return fault(f, "unterminated IP literal", *i);
        if (!check_ip_literal(s, *i + 1, (size_t)(close - s), f))
            return false;
        *i = (size_t)(close - s) + 1;
    } else if (!scan_chars(s, n, i, 0, f)) {
        return false;
    }
    if (*i < n && s[*i] == ':')
        for (++*i; *i < n && is_digit((unsigned char)s[*i]); ++*i)
            ;
    if (*i < n && s[*i] != '/' && s[*i] != '?' && s[*i] != '#')
        return fault(f, s[*i] == '@' ? "invalid character in userinfo"
                                     : "invalid character in authority", *i);
    return true;
}

/* RFC 3986 URI (need_scheme: absolute-URI, no fragment) or URI-reference. */
static bool uri_ok(const char *s, size_t n, bool absolute, uri_fault *f)
{
    size_t i = 0, k = 0;
    while (k < n && s[k] != ':' && s[k] != '/' && s[k] != '?' && s[k] != '#')
        k++;
    bool scheme = false;
    if (k < n && s[k] == ':') {
        scheme = k > 0 && is_alpha((unsigned char)s[0]);
        for (size_t j = 1; scheme && j < k; j++) {
            unsigned char c = (unsigned char)s[j];
            scheme = is_alpha(c) || is_digit(c) || c == '+' || c == '-' ||
                     c == '.';
        }
        if (!scheme && absolute)
            return fault(f, "malformed scheme", 0);
        if (!scheme)
            return fault(f, "':' in the first segment of a relative "
                            "reference (or a malformed scheme)", k);
        i = k + 1;
    } else if (absolute) {
        return fault(f, "not an absolute URI: no scheme", 0);
    }
    if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        i += 2;
        if (!check_authority(s, n, &i, f))
            return false;
    }
    if (!scan_chars(s, n, &i, CC_COLON | CC_AT | CC_SLASH, f))
        return false;
    if (i < n && s[i] == '?') {
        i++;
        if (!scan_chars(s, n, &i, CC_COLON | CC_AT | CC_SLASH | CC_QMARK,
                        f))
            return false;
    }
    if (i < n && s[i] == '#') {
        if (absolute)
            return fault(f, "an absolute URI must not have a fragment", i);
        i++;
        if (!scan_chars(s, n, &i, CC_COLON | CC_AT | CC_SLASH | CC_QMARK,
                        f))
            return false;
    }
    if (i != n)
        return fault(f, "character not allowed in a URI", i);
    return true;
}

static int check_uri(const char *v, size_t n, bool absolute,
                     const char *attr, ce_err *err)
{
    uri_fault f = {NULL, 0};
    if (uri_ok(v, n, absolute, &f))
        return CE_OK;
    return ce_err_set(err, CE_EINVAL, attr, (long)f.at,
                      "not a valid %s (RFC 3986): %s at byte %zu",
                      absolute ? "absolute URI" : "URI-reference", f.why,
                      f.at);
}

/* ------------------------------------------------------------ values */

int ce__check_value(ce_type t, const char *v, size_t n, const char *attr,
                    ce_err *err)
{
    switch (t) {
    case CE_TYPE_STRING:
        return ce__check_string(v, n, attr, err);
    case CE_TYPE_BOOLEAN:
        if ((n == 4 && memcmp(v, "true", 4) == 0) ||
            (n == 5 && memcmp(v, "false", 5) == 0))
            return CE_OK;
        return ce_err_set(err, CE_EINVAL, attr, 0,
                          "not a Boolean: must be 'true' or 'false'");
    case CE_TYPE_INTEGER:
        return check_int(v, n, attr, err);
    case CE_TYPE_BINARY:
        return check_base64(v, n, attr, err);
    case CE_TYPE_URI:
        return check_uri(v, n, true, attr, err);
    case CE_TYPE_URI_REF:
        return check_uri(v, n, false, attr, err);
    case CE_TYPE_TIMESTAMP: {
        int rc = ce_time_parse(v, n, NULL, err);
        if (rc != CE_OK && err)
            snprintf(err->attr, sizeof err->attr, "%s", attr);
        return rc;
    }
    }
    return ce_err_set(err, CE_EINVAL, attr, -1, "unknown attribute type %d",
                      (int)t);
}

int ce_check_value(ce_type t, const char *v, size_t n, ce_err *err)
{
    return ce__check_value(t, v, n, "", err);
}

/* ------------------------------------------------------------ media types */

static bool is_token_char(unsigned char c)
{
    return cclass[c] & CC_TOKEN;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* A media type split into type/subtype and an iterator over parameters. */
typedef struct media {
    const char *s;
    size_t n, i;
    const char *type, *sub;
    size_t tlen, slen;
} media;

static size_t token(const char *s, size_t n, size_t i)
{
    size_t j = i;
    while (j < n && is_token_char((unsigned char)s[j]))
        j++;
    return j - i;
}

/* Parses "type/subtype"; false on bad syntax. */
static bool media_open(media *m, const char *s, size_t n)
{
    m->s = s;
    m->n = n;
    m->i = n;
    m->type = m->sub = s;
    m->tlen = m->slen = 0;
    size_t i = 0;
    while (i < n && is_ows(s[i]))
        i++;
    m->type = s + i;
    m->tlen = token(s, n, i);
    i += m->tlen;
    if (!m->tlen || i >= n || s[i] != '/')
        return false;
    i++;
    m->sub = s + i;
    m->slen = token(s, n, i);
    i += m->slen;
    if (!m->slen)
        return false;
    while (i < n && is_ows(s[i]))
        i++;
    m->i = i;
    return i == n || s[i] == ';';
}

/* Next parameter: 1 with name/value spans (value without quotes), 0 at
 * the end, -1 on bad syntax. */
static int media_param(media *m, const char **name, size_t *nlen,
                       const char **val, size_t *vlen)
{
    const char *s = m->s;
    size_t n = m->n, i = m->i;
    if (i >= n)
        return 0;
    if (s[i] != ';')
        return -1;
    for (i++; i < n && is_ows(s[i]); i++)
        ;
    *name = s + i;
    *nlen = token(s, n, i);
    i += *nlen;
    if (!*nlen || i >= n || s[i] != '=')
        return -1;
    i++;
    if (i < n && s[i] == '"') {
        size_t start = ++i;
        while (i < n && s[i] != '"')
            i += s[i] == '\\' && i + 1 < n ? 2 : 1;
        if (i >= n)
            return -1;
        *val = s + start;
        *vlen = i - start;
        i++;
    } else {
        *val = s + i;
        *vlen = token(s, n, i);
        i += *vlen;
        if (!*vlen)
            return -1;
    }
    while (i < n && is_ows(s[i]))
        i++;
    m->i = i;
    return 1;
}

int ce__check_media(const char *v, size_t n, const char *attr, ce_err *err)
{
    media m;
    const char *pn, *pv;
    size_t pnl, pvl;
    if (!media_open(&m, v, n))
        return ce_err_set(err, CE_EINVAL, attr, 0,
                          "not a media type (RFC 2046): expected "
                          "type/subtype");
    int rc;
    while ((rc = media_param(&m, &pn, &pnl, &pv, &pvl)) == 1)
        ;
    if (rc < 0)
        return ce_err_set(err, CE_EINVAL, attr, (long)m.i,
                          "not a media type (RFC 2046): malformed parameter "
                          "at byte %zu", m.i);
    return CE_OK;
}

static bool ieq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && strncasecmp(a, b, an) == 0;
}

bool ce_media_is_json(const char *mt, size_t n)
{
    if (!mt || n == 0)
        return true;
    media m;
    if (!media_open(&m, mt, n) && m.slen == 0)
        return false;
    if (ieq(m.sub, m.slen, "json", 4))
        return true;
    return m.slen > 5 && ieq(m.sub + m.slen - 5, 5, "+json", 5);
}

bool ce__media_is_text(const char *mt, size_t n)
{
    media m;
    if (!mt || !media_open(&m, mt, n))
        return false;
    if (ieq(m.type, m.tlen, "text", 4) || ieq(m.sub, m.slen, "xml", 3) ||
        (m.slen > 4 && ieq(m.sub + m.slen - 4, 4, "+xml", 4)))
        return true;
    const char *pn, *pv;
    size_t pnl, pvl;
    while (media_param(&m, &pn, &pnl, &pv, &pvl) == 1)
        if (ieq(pn, pnl, "charset", 7))
            return true;
    return false;
}

bool ce_media_equal(const char *a, size_t an, const char *b, size_t bn)
{
    media ma, mb;
    if (!media_open(&ma, a, an) || !media_open(&mb, b, bn))
        return an == bn && memcmp(a, b, an) == 0;
    if (!ieq(ma.type, ma.tlen, mb.type, mb.tlen) ||
        !ieq(ma.sub, ma.slen, mb.sub, mb.slen))
        return false;
    for (;;) {
        const char *an_, *av, *bn_, *bv;
        size_t anl, avl, bnl, bvl;
        int ra = media_param(&ma, &an_, &anl, &av, &avl);
        int rb = media_param(&mb, &bn_, &bnl, &bv, &bvl);
        if (ra != rb)
            return false;
        if (ra <= 0)
            return ra == 0;
        if (!ieq(an_, anl, bn_, bnl))
            return false;
        /* charset values are case-insensitive (RFC 2046 4.1.2) */
        if (ieq(an_, anl, "charset", 7) ? !ieq(av, avl, bv, bvl)
                                        : avl != bvl || memcmp(av, bv, avl))
            return false;
    }
}
