/*
 * Percent-encoding of header values (CloudEvents HTTP binding §3.1.3.2,
 * also used by the NATS binding) and UTF-8 validation.
 *
 * Encoding: space, '"', '%' and every byte outside U+0021-U+007E are
 * written as %XX (upper-case hex) of their UTF-8 bytes.
 *
 * Decoding, in this order:
 *  1. optional whitespace (SP, HTAB) around the value is dropped;
 *  2. a value that starts with '"' is an RFC 7230 quoted-string: the quotes
 *     and backslash escapes are undone;
 *  3. exactly one round of percent-decoding; lower-case hex is accepted and
 *     so are characters that did not need encoding;
 *  4. the result must be well-formed UTF-8 (overlongs such as %C0%A0,
 *     surrogates and code points above U+10FFFF are rejected).
 * Strict (default): a '%' not followed by two hex digits, a raw byte >= 0x80,
 * a raw control character, a raw '"' outside a quoted-string, or a broken
 * quoted-string is CE_EPARSE with the offset. Raw SP and HTAB inside the
 * value are accepted (they are legal in HTTP field values and unambiguous).
 * CE_DECODE_LENIENT: those are passed through as they are, because common
 * SDKs (sdk-go, sdk-java, the JS SDK) do not percent-encode. Step 4 applies
 * in both modes: an attribute value is Unicode text.
 */
#include <stdint.h>
#include <string.h>

#include "cloudevents/bind_int.h"

bool ce_bind_utf8_valid(const unsigned char *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;      /* overlong */
            else if (c == 0xED)
                hi = 0x9F;      /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;      /* overlong */
            else if (c == 0xF4)
                hi = 0x8F;      /* > U+10FFFF */
        } else {
            goto fail;          /* C0, C1, F5.., or a stray continuation */
        }
        if (n - i <= need)
            goto fail;
        if (s[i + 1] < lo || s[i + 1] > hi)
            goto fail;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                goto fail;
        i += need + 1;
    }
    return true;
fail:
    if (bad)
        *bad = i;
    return false;
}

/* SWAR helpers on 8 bytes at a time: a high bit per byte that is zero /
 * below n (exact as to whether any byte matches, for n <= 128). */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
static inline uint64_t has_zero(uint64_t v)
{
    return (v - ONES) & ~v & HIGHS;
}

static inline uint64_t has_less(uint64_t v, unsigned n)
{
    return (v - ONES * n) & ~v & HIGHS;
}

/* Non-zero when one of 8 bytes is not printable ASCII (0x20-0x7E), or,
 * with pct, is '%' or '"'. (v + 0x01..) turns 0x7F into 0x80; a carry out
 * of 0xFF only happens next to a byte that is flagged already. */
static inline uint64_t bad8(uint64_t v, bool pct)
{
    uint64_t bad = ((v | (v + ONES)) & HIGHS) | has_less(v, 0x20);
    if (pct)
        bad |= has_zero(v ^ (ONES * '%')) | has_zero(v ^ (ONES * '"'));
    return bad;
}

static inline bool plain1(unsigned char c, bool pct)
{
    return c >= 0x20 && c < 0x7F && !(pct && (c == '%' || c == '"'));
}

/* 16 bytes at a time with the compilers' generic vector extension (SSE2
 * on x86-64, NEON on arm64). Lanes of a comparison are 0 or all ones. */
typedef unsigned char v16u __attribute__((vector_size(16)));
typedef signed char v16s __attribute__((vector_size(16)));

static inline bool bad16(const char *p, bool pct)
{
    v16u v;
    memcpy(&v, p, 16);
    v16s bad = (v < 0x20) | (v > 0x7E);
    if (pct)
        bad |= (v == '%') | (v == '"');
    uint64_t w[2];
    memcpy(w, &bad, 16);
    return (w[0] | w[1]) != 0;
}

static inline bool plain_any(const char *s, size_t n, bool pct)
{
    if (n >= 16) {
        for (size_t i = 0; i + 16 <= n; i += 16)
            if (bad16(s + i, pct))
                return false;
        return !bad16(s + n - 16, pct);     /* the tail, overlapping */
    }
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        return !(bad8(a, pct) | bad8(b, pct));
    }
    for (size_t i = 0; i < n; i++)
        if (!plain1((unsigned char)s[i], pct))
            return false;
    return true;
}

bool ce_bind_plain(const char *s, size_t n, bool pct)
{
    if (!pct)
        return plain_any(s, n, false);
    return plain_any(s, n, true) && !(n && (s[0] == ' ' || s[n - 1] == ' '));
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Label for error messages: the header name, or "value". */
static const char *label(const char *hname)
{
    return hname ? hname : "value";
}

/* Undoes a quoted-string s[0..n) (s[0] == '"') into dst. Returns the
 * length, or -1 when it is not a well-formed quoted-string. */
static long unquote(char *dst, const char *s, size_t n, size_t *bad)
{
    size_t o = 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i] == '\\') {
            if (++i >= n)
                break;
            dst[o++] = s[i];
        } else if (s[i] == '"') {
            if (i != n - 1) {
                *bad = i;
                return -1;
            }
            return (long)o;
        } else {
            dst[o++] = s[i];
        }
    }
    *bad = n;
    return -1;
}

/* One round of percent-decoding of s[0..n) into dst (may alias s: output
 * never runs ahead of input). `base` is added to error offsets. */
static long pct_round(char *dst, const char *s, size_t n, unsigned flags,
                      bool quoted, const char *hname, long base, ce_err *err)
{
    bool strict = !(flags & CE_DECODE_LENIENT);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int h1 = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int h2 = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (h1 >= 0 && h2 >= 0) {
                dst[o++] = (char)(h1 << 4 | h2);
                i += 2;
                continue;
            }
            if (strict)
                return ce_err_set(err, CE_EPARSE, hname ? hname : "",
                                  base + (long)i,
                                  "%s: invalid percent-escape at "
                                  "offset %ld (use %%25 for a literal '%%')",
                                  label(hname), base + (long)i);
        } else if (strict && (c >= 0x80 || (c < 0x20 && c != '\t') ||
                              c == 0x7F || (c == '"' && !quoted))) {
            return ce_err_set(err, CE_EPARSE, hname ? hname : "",
                              base + (long)i,
                              "%s: byte 0x%02X at offset %ld must be "
                              "percent-encoded", label(hname), c,
                              base + (long)i);
        }
        dst[o++] = (char)c;
    }
    return (long)o;
}

long ce_bind_pct_decode_into(char *dst, const char *s, size_t n,
                             unsigned flags, const char *hname, ce_err *err)
{
    size_t start = 0;
    while (start < n && (s[start] == ' ' || s[start] == '\t'))
        start++;
    while (n > start && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    s += start;
    n -= start;
    long len;
    if (n > 0 && s[0] == '"') {
        size_t bad = 0;
        long q = unquote(dst, s, n, &bad);
        if (q >= 0) {
            len = pct_round(dst, dst, (size_t)q, flags, true, hname,
                            (long)start, err);
        } else if (!(flags & CE_DECODE_LENIENT)) {
            return ce_err_set(err, CE_EPARSE, hname ? hname : "",
                              (long)(start + bad),
                              "%s: malformed quoted-string at "
                              "offset %ld", label(hname),
                              (long)(start + bad));
        } else {
            len = pct_round(dst, s, n, flags, false, hname, (long)start,
                            err);
        }
    } else {
        len = pct_round(dst, s, n, flags, false, hname, (long)start, err);
    }
    if (len < 0)
        return len;
    size_t bad = 0;
    if (!ce_bind_utf8_valid((const unsigned char *)dst, (size_t)len, &bad))
        return ce_err_set(err, CE_EPARSE, hname ? hname : "", -1,
                          "%s: decoded value is not valid UTF-8 "
                          "(byte %zu of the decoded value)", label(hname),
                          bad);
    return len;
}

/* Appends the percent-encoded form of s[0..n) to out. Thread: any.
 * Errors: CE_ENOMEM. */
int ce_pct_encode(ce_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t extra = n;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7E || c == '"' || c == '%')
            extra += 2;
    }
    if (ce_buf_reserve(out, extra + 1) != CE_OK)
        return CE_ENOMEM;
    char *p = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7E || c == '"' || c == '%') {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    out->len = (size_t)(p - out->data);
    out->data[out->len] = '\0';
    return CE_OK;
}

/* Appends the decoded form of header value s[0..n) to out (see the file
 * comment for the rules). flags: CE_DECODE_LENIENT. Errors: CE_EPARSE with
 * err->offset at the bad byte, CE_ENOMEM. On error out is unchanged. */
int ce_pct_decode(ce_buf *out, const char *s, size_t n, unsigned flags,
                  ce_err *err)
{
    if (ce_buf_reserve(out, n + 1) != CE_OK)
        return ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
    long len = ce_bind_pct_decode_into(out->data + out->len, s, n, flags,
                                       NULL, err);
    if (len < 0) {
        out->data[out->len] = '\0';
        return (int)len;
    }
    out->len += (size_t)len;
    out->data[out->len] = '\0';
    return CE_OK;
}
