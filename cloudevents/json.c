/*
 * The CloudEvents JSON event format (single events and batches): a small
 * single-pass JSON reader that fills the event directly (no intermediate
 * tree), and a writer that never produces invalid JSON. Thread: any; each
 * call works only on its arguments.
 *
 * Data rules (formats/json-format.md):
 * - decode: `data` with a JSON (or absent) datacontenttype is stored as the
 *   compact JSON text of the value (a string keeps its quotes); with any
 *   other content type it must be a string and its characters are stored;
 *   `data_base64` is stored decoded. `null` attributes are unset.
 * - encode: JSON content type (or none) and data that is valid JSON ->
 *   `data` (compacted); textual content type and UTF-8 data -> `data` as a
 *   string; anything else -> `data_base64`.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevents/ce_int.h"

#define JSON_MAX_DEPTH 256
/* Largest rest-of-input reserved to compact `data` in one pass. */
#define JSON_ONE_PASS_MAX 4096

/* Bytes that end a fast string scan: controls, '"', '\\', non-ASCII. */
static const unsigned char str_stop[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1,
    [0x06] = 1, [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0A] = 1, [0x0B] = 1,
    [0x0C] = 1, [0x0D] = 1, [0x0E] = 1, [0x0F] = 1, [0x10] = 1, [0x11] = 1,
    [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1,
    [0x18] = 1, [0x19] = 1, [0x1A] = 1, [0x1B] = 1, [0x1C] = 1, [0x1D] = 1,
    [0x1E] = 1, [0x1F] = 1, ['"'] = 1, ['\\'] = 1,
#define R16(b) [b] = 1, [b + 1] = 1, [b + 2] = 1, [b + 3] = 1, [b + 4] = 1, \
    [b + 5] = 1, [b + 6] = 1, [b + 7] = 1, [b + 8] = 1, [b + 9] = 1,        \
    [b + 10] = 1, [b + 11] = 1, [b + 12] = 1, [b + 13] = 1, [b + 14] = 1,  \
    [b + 15] = 1
    R16(0x80), R16(0x90), R16(0xA0), R16(0xB0), R16(0xC0), R16(0xD0),
    R16(0xE0), R16(0xF0),
#undef R16
};

/* True when one of the 8 bytes at p is in str_stop (SWAR test). */
static inline bool word_stops(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ULL, high = ones * 0x80;
    uint64_t x, q, b;
    memcpy(&x, p, 8);
    q = x ^ (ones * '"');
    b = x ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) |
            ((x - ones * 0x20) & ~x) | x) & high;
}

/* ------------------------------------------------------------ reader */

typedef struct jp {
    const char *s;   /* start of the whole input (for offsets) */
    const char *p;   /* cursor */
    const char *end;
    ce_err *err;
} jp;

__attribute__((format(printf, 2, 3)))
static int perr(jp *j, const char *fmt, ...)
{
    if (!j->err)
        return CE_EPARSE;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    long off = (long)(j->p - j->s);
    return ce_err_set(j->err, CE_EPARSE, "", off, "JSON: %s at byte %ld",
                      msg, off);
}

static void ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' ||
                             *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at p (caller checked 4 bytes are available). */
static long hex4(const char *p)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at p (no surrogates), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    size_t len = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : 2;
    return len <= avail && ce__utf8_valid((const char *)p, len) ? len : 0;
}

/* Validates the escape at j->p ('\\' already seen at p[-1] is NOT consumed:
 * p points at the backslash). Advances past it. */
static int scan_escape(jp *j)
{
    const char *p = j->p + 1;
    if (p >= j->end)
        return perr(j, "unterminated string");
    if (strchr("\"\\/bfnrt", *p) && *p) {
        j->p = p + 1;
        return CE_OK;
    }
    if (*p != 'u')
        return perr(j, "invalid escape '\\%c'", *p);
    if (j->end - p < 5 || hex4(p + 1) < 0)
        return perr(j, "invalid \\u escape");
    long u = hex4(p + 1);
    p += 5;
    if (u >= 0xDC00 && u <= 0xDFFF)
        return perr(j, "unpaired surrogate \\u%04lX", u);
    if (u >= 0xD800 && u <= 0xDBFF) {
        long lo = j->end - p >= 6 && p[0] == '\\' && p[1] == 'u'
                  ? hex4(p + 2) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return perr(j, "unpaired surrogate \\u%04lX", u);
        p += 6;
    }
    j->p = p;
    return CE_OK;
}

/* Scans the string whose opening quote is at j->p. Sets *raw and *rawlen to
 * the text between the quotes and *esc when it holds escapes; leaves j->p
 * after the closing quote. */
static int scan_string(jp *j, const char **raw, size_t *rawlen, bool *esc)
{
    const char *start = j->p + 1;
    const unsigned char *p = (const unsigned char *)start;
    const unsigned char *end = (const unsigned char *)j->end;
    *esc = false;
    for (;;) {
        while (end - p >= 8 && !word_stops(p))
            p += 8;
        while (p < end && !str_stop[*p])
            p++;
        j->p = (const char *)p;
        if (p >= end)
            return perr(j, "unterminated string");
        if (*p == '"')
            break;
        if (*p == '\\') {
            *esc = true;
            if (scan_escape(j) != CE_OK)
                return CE_EPARSE;
            p = (const unsigned char *)j->p;
        } else if (*p < 0x20) {
            return perr(j, "control character 0x%02X in string", *p);
        } else {
            size_t l = utf8_len(p, (size_t)(end - p));
            if (!l)
                return perr(j, "invalid UTF-8 in string");
            p += l;
        }
    }
    *raw = start;
    *rawlen = (size_t)((const char *)p - start);
    j->p = (const char *)p + 1;
    return CE_OK;
}

static char *put_utf8(char *o, long cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Decodes the escapes of a string already checked by scan_string into o
 * (room for n bytes is enough: decoding never grows). Returns the length. */
static size_t unescape(const char *r, size_t n, char *o)
{
    char *o0 = o;
    for (size_t i = 0; i < n;) {
        if (r[i] != '\\') {
            *o++ = r[i++];
            continue;
        }
        char c = r[i + 1];
        i += 2;
        switch (c) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            long cp = hex4(r + i);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = hex4(r + i + 2);
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o = put_utf8(o, cp);
            break;
        }
        default: *o++ = c; break; /* " \ / */
        }
    }
    return (size_t)(o - o0);
}

/* Scans a JSON number; *is_int is false when it has a fraction/exponent. */
static int scan_number(jp *j, bool *is_int)
{
    const char *p = j->p, *e = j->end;
    *is_int = true;
    if (p < e && *p == '-')
        p++;
    if (p < e && *p == '0') {
        p++;
    } else if (p < e && *p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    } else {
        j->p = p;
        return perr(j, "malformed number");
    }
    if (p < e && *p == '.') {
        *is_int = false;
        const char *d = ++p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p == d) {
            j->p = p;
            return perr(j, "malformed number: digits expected after '.'");
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *is_int = false;
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        const char *d = p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p == d) {
            j->p = p;
            return perr(j, "malformed number: digits expected in exponent");
        }
    }
    j->p = p;
    return CE_OK;
}

static int literal(jp *j, const char *word, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return perr(j, "invalid literal (expected '%s')", word);
    j->p += n;
    return CE_OK;
}

static void emit(char **o, const char *p, size_t n)
{
    if (o) {
        memcpy(*o, p, n);
        *o += n;
    }
}

static int value(jp *j, char **o, int depth);

/* Object or array whose opening bracket is at j->p. */
static int container(jp *j, char **o, int depth)
{
    char close = *j->p == '{' ? '}' : ']';
    bool obj = close == '}';
    if (depth >= JSON_MAX_DEPTH)
        return perr(j, "nesting deeper than %d levels", JSON_MAX_DEPTH);
    emit(o, j->p++, 1);
    ws(j);
    if (j->p < j->end && *j->p == close) {
        emit(o, j->p++, 1);
        return CE_OK;
    }
    for (;;) {
        ws(j);
        if (obj) {
            const char *st = j->p, *raw;
            size_t rl;
            bool esc;
            if (j->p >= j->end || *j->p != '"')
                return perr(j, "expected a string key");
            if (scan_string(j, &raw, &rl, &esc) != CE_OK)
                return CE_EPARSE;
            emit(o, st, (size_t)(j->p - st));
            ws(j);
            if (j->p >= j->end || *j->p != ':')
                return perr(j, "expected ':'");
            emit(o, j->p++, 1);
        }
        if (value(j, o, depth + 1) != CE_OK)
            return CE_EPARSE;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            emit(o, j->p++, 1);
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            emit(o, j->p++, 1);
            return CE_OK;
        }
        return perr(j, "expected ',' or '%c'", close);
    }
}

/* Validates one JSON value at j->p (after whitespace); when o is non-NULL
 * appends its compact form at *o. */
static int value(jp *j, char **o, int depth)
{
    ws(j);
    if (j->p >= j->end)
        return perr(j, "unexpected end of input, expected a value");
    const char *st = j->p;
    int rc;
    switch (*j->p) {
    case '"': {
        const char *raw;
        size_t rl;
        bool esc;
        rc = scan_string(j, &raw, &rl, &esc);
        break;
    }
    case '{':
    case '[':
        return container(j, o, depth);
    case 't': rc = literal(j, "true", 4); break;
    case 'f': rc = literal(j, "false", 5); break;
    case 'n': rc = literal(j, "null", 4); break;
    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
            bool is_int;
            rc = scan_number(j, &is_int);
        } else if (*j->p > 0x20 && *j->p < 0x7F) {
            return perr(j, "unexpected character '%c'", *j->p);
        } else {
            return perr(j, "unexpected byte 0x%02X",
                        (unsigned char)*j->p);
        }
    }
    if (rc == CE_OK)
        emit(o, st, (size_t)(j->p - st));
    return rc;
}

int ce__json_compact(const char *s, size_t n, ce_buf *out, ce_err *err)
{
    jp j = {s, s, s + n, err};
    char *o = NULL;
    if (out) {
        if (ce_buf_reserve(out, n) != CE_OK)
            return ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
        o = out->data + out->len;
    }
    int rc = value(&j, out ? &o : NULL, 0);
    if (rc == CE_OK) {
        ws(&j);
        if (j.p != j.end)
            rc = perr(&j, "trailing characters after the value");
    }
    if (rc == CE_OK && out) {
        out->len = (size_t)(o - out->data);
        out->data[out->len] = '\0';
    } else if (out) {
        out->data[out->len] = '\0';
    }
    return rc;
}

/* ------------------------------------------------------------ decoding */

enum { DK_NONE = 0, DK_DATA, DK_BASE64 };

/* Decoder state for one event object. */
typedef struct dec {
    jp j;
    ce_event *ev;
    ce_buf scratch;   /* unescaped strings (only when escapes occur) */
    unsigned seen;    /* core attributes met, including nulls */
    int dkind;
    bool dnull;
    bool dcompact;    /* data already stored as compact JSON */
    const char *dval; /* raw text of the data / data_base64 value */
    size_t dlen;
    long doff;
} dec;

/* Adds value-relative detail to an attribute error. */
static int at_value(dec *d, int rc, long off)
{
    if (d->j.err && rc != CE_ENOMEM)
        d->j.err->offset = off + (d->j.err->offset > 0 ? d->j.err->offset : 0);
    return rc;
}

static int attr_err(dec *d, const char *name, long off, const char *msg)
{
    return ce_err_set(d->j.err, CE_EINVAL, name, off, "%s", msg);
}

/* The string value at raw[0..rl) with escapes decoded (maybe in scratch). */
static int string_value(dec *d, const char *raw, size_t rl, bool esc,
                        const char **v, size_t *n)
{
    if (!esc) {
        *v = raw;
        *n = rl;
        return CE_OK;
    }
    ce_buf_reset(&d->scratch);
    if (ce_buf_reserve(&d->scratch, rl) != CE_OK)
        return ce_err_set(d->j.err, CE_ENOMEM, "", -1, "out of memory");
    *n = unescape(raw, rl, d->scratch.data);
    *v = d->scratch.data;
    return CE_OK;
}

/* A member that is an attribute (core or extension) named name[0..nl). */
static int attr_member(dec *d, const char *name, size_t nl, int core)
{
    jp *j = &d->j;
    long off = (long)(j->p - j->s);
    char c = j->p < j->end ? *j->p : '\0';
    if (c == 'n') {
        return literal(j, "null", 4); /* null = unset */
    }
    if (c == '"') {
        const char *raw, *v = NULL;
        size_t rl, n = 0;
        bool esc;
        int rc = scan_string(j, &raw, &rl, &esc);
        if (rc == CE_OK)
            rc = string_value(d, raw, rl, esc, &v, &n);
        if (rc != CE_OK)
            return rc;
        ce_type t = core >= 0 ? ce__core_types[core] : CE_TYPE_STRING;
        rc = ce__check_value(t, v, n, name, j->err);
        if (rc != CE_OK)
            return at_value(d, rc, off + 1);
        return ce__event_set_raw(d->ev, core, name, nl, v, n, t, j->err);
    }
    if (core >= 0 && c != '\0')
        return attr_err(d, name, off, "must be a JSON string");
    if (c == 't' || c == 'f') {
        bool t = c == 't';
        if (literal(j, t ? "true" : "false", t ? 4 : 5) != CE_OK)
            return CE_EPARSE;
        return ce__event_set_raw(d->ev, -1, name, nl, t ? "true" : "false",
                                 t ? 4 : 5, CE_TYPE_BOOLEAN, j->err);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        bool is_int;
        if (scan_number(j, &is_int) != CE_OK)
            return CE_EPARSE;
        const char *v = j->s + off;
        size_t n = (size_t)(j->p - v);
        if (!is_int)
            return attr_err(d, name, off, "not an Integer: JSON numbers "
                            "with a fraction or exponent have no "
                            "CloudEvents type");
        if (ce_parse_int(v, n, NULL) != CE_OK)
            return attr_err(d, name, off, "Integer out of range: must be "
                            "within -2147483648..2147483647");
        return ce__event_set_raw(d->ev, -1, name, nl, v, n, CE_TYPE_INTEGER,
                                 j->err);
    }
    if (c == '{' || c == '[')
        return attr_err(d, name, off, "JSON objects and arrays are not "
                        "CloudEvents types; an extension must be a string, "
                        "integer or boolean");
    return value(j, NULL, 0); /* reports the syntax error */
}

/* `data` or `data_base64`: remember the raw value for finish_data. */
static int data_member(dec *d, int kind, const char *name)
{
    jp *j = &d->j;
    long off = (long)(j->p - j->s);
    if (d->dkind != DK_NONE)
        return attr_err(d, name, off, d->dkind == kind
                        ? "member appears more than once"
                        : "data and data_base64 must not both be present");
    d->dkind = kind;
    d->doff = off;
    d->dval = j->p;
    d->dnull = j->p < j->end && *j->p == 'n';
    if (kind == DK_BASE64 && !d->dnull && (j->p >= j->end || *j->p != '"')) {
        if (j->p >= j->end)
            return value(j, NULL, 0);
        return attr_err(d, name, off, "must be a JSON string");
    }
    /* One pass for the usual case: JSON data (as far as the content type
     * read so far tells) that is small enough to reserve the rest of the
     * input for it; finish_data redoes it if a non-JSON type follows. */
    size_t ctl = 0, room = (size_t)(j->end - j->p);
    const char *ct = ce_event_get(d->ev, "datacontenttype", &ctl, NULL);
    char *o = NULL, *o0 = NULL;
    if (kind == DK_DATA && room <= JSON_ONE_PASS_MAX &&
        ce_media_is_json(ct, ctl)) {
        if (!(o0 = o = ce__event_data_alloc(d->ev, room)))
            return ce_err_set(j->err, CE_ENOMEM, "", -1, "out of memory");
    }
    if (value(j, o ? &o : NULL, 0) != CE_OK)
        return CE_EPARSE;
    if (o0) {
        ce__event_data_truncate(d->ev, (size_t)(o - o0));
        d->dcompact = true;
    }
    d->dlen = (size_t)(j->p - d->dval);
    return CE_OK;
}

/* One "key": value member of the event object; j->p at the key. */
static int member(dec *d)
{
    jp *j = &d->j;
    const char *raw;
    size_t rl;
    bool esc;
    char kbuf[64];
    if (j->p >= j->end || *j->p != '"')
        return perr(j, "expected a string key");
    long koff = (long)(j->p - j->s) + 1;
    if (scan_string(j, &raw, &rl, &esc) != CE_OK)
        return CE_EPARSE;
    if (esc && rl < sizeof kbuf) {
        rl = unescape(raw, rl, kbuf);
        raw = kbuf;
    }
    ws(j);
    if (j->p >= j->end || *j->p != ':')
        return perr(j, "expected ':' after a member name");
    j->p++;
    ws(j);
    if (rl == 4 && memcmp(raw, "data", 4) == 0)
        return data_member(d, DK_DATA, "data");
    if (rl == 11 && memcmp(raw, "data_base64", 11) == 0)
        return data_member(d, DK_BASE64, "data_base64");
    int core = ce__core_index(raw, rl);
    char name[24];
    if (rl < sizeof name) { /* longer names fail ce_check_attr_name */
        memcpy(name, raw, rl);
        name[rl] = '\0';
    }
    if (core < 0) {
        int rc = ce_check_attr_name(raw, rl, j->err);
        if (rc != CE_OK)
            return at_value(d, rc, koff);
        if (ce_event_getn(d->ev, raw, rl, NULL, NULL))
            return ce_err_set(j->err, CE_EINVAL, name, koff,
                              "attribute appears more than once");
    } else {
        if (d->seen & (1u << core))
            return ce_err_set(j->err, CE_EINVAL, ce__core_names[core],
                              koff,
                              "attribute appears more than once");
        d->seen |= 1u << core;
    }
    int rc = attr_member(d, name, rl, core);
    if (rc == CE_EINVAL && j->err && !j->err->attr[0])
        snprintf(j->err->attr, sizeof j->err->attr, "%s", name);
    return rc;
}

/* Stores the remembered data value per the content type. */
static int finish_data(dec *d)
{
    if (d->dkind == DK_NONE)
        return CE_OK;
    size_t ctl = 0;
    const char *ct = ce_event_get(d->ev, "datacontenttype", &ctl, NULL);
    jp sub = {d->j.s, d->dval, d->dval + d->dlen, d->j.err};
    const char *raw, *v = NULL;
    size_t rl, n = 0;
    bool esc;
    if (d->dkind == DK_DATA && ce_media_is_json(ct, ctl)) {
        if (d->dcompact)
            return CE_OK;
        char *o = ce__event_data_alloc(d->ev, d->dlen);
        if (!o)
            return ce_err_set(d->j.err, CE_ENOMEM, "", -1, "out of memory");
        char *o0 = o;
        if (value(&sub, &o, 0) != CE_OK)
            return CE_EPARSE;
        ce__event_data_truncate(d->ev, (size_t)(o - o0));
        return CE_OK;
    }
    if (d->dcompact) /* the content type read later is not JSON */
        ce_event_clear_data(d->ev);
    if (d->dnull)
        return CE_OK;
    const char *name = d->dkind == DK_DATA ? "data" : "data_base64";
    if (*d->dval != '"')
        return attr_err(d, name, d->doff, "datacontenttype is not JSON, so "
                        "data must be a JSON string (or use data_base64)");
    if (scan_string(&sub, &raw, &rl, &esc) != CE_OK ||
        string_value(d, raw, rl, esc, &v, &n) != CE_OK)
        return CE_EPARSE;
    if (d->dkind == DK_DATA)
        return ce_event_set_data(d->ev, v, n) == CE_OK ? CE_OK
               : ce_err_set(d->j.err, CE_ENOMEM, "", -1, "out of memory");
    ce_buf bin = CE_BUF_INIT;
    int rc = ce_base64_decode(&bin, v, n, d->j.err);
    if (rc == CE_EPARSE) {
        rc = ce_err_set(d->j.err, CE_EINVAL, "data_base64",
                        d->doff + 1, "not valid Base64 (RFC 4648 with "
                        "padding): %.120s", d->j.err ? d->j.err->msg : "");
    } else if (rc == CE_OK &&
               ce_event_set_data(d->ev, bin.data ? bin.data : "", bin.len)) {
        rc = ce_err_set(d->j.err, CE_ENOMEM, "", -1, "out of memory");
    }
    ce_buf_free(&bin);
    return rc;
}

static int decode_members(dec *d)
{
    jp *j = &d->j;
    ws(j);
    if (j->p >= j->end || *j->p != '{')
        return perr(j, "expected '{' (a CloudEvent is a JSON object)");
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return CE_OK;
    }
    for (;;) {
        ws(j);
        int rc = member(d);
        if (rc != CE_OK)
            return rc;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            return CE_OK;
        }
        return perr(j, "expected ',' or '}' after a member");
    }
}

/* Decodes the event object at j->p into a new event. *v03 tells whether it
 * was a specversion 0.3 event (converted to 1.0). */
static int decode_event(jp *j, ce_event **out, bool *v03)
{
    dec d = {.j = *j, .scratch = CE_BUF_INIT};
    int rc = CE_ENOMEM;
    *out = NULL;
    d.ev = ce_event_new();
    if (!d.ev) {
        ce_err_set(j->err, CE_ENOMEM, "", -1, "out of memory");
        goto fail;
    }
    if ((rc = decode_members(&d)) != CE_OK || (rc = finish_data(&d)) != CE_OK)
        goto fail;
    size_t svl;
    const char *sv = ce_event_get(d.ev, "specversion", &svl, NULL);
    *v03 = sv && svl == 3 && memcmp(sv, "0.3", 3) == 0;
    if (*v03 && (rc = ce_event_upgrade_03(d.ev, j->err)) != CE_OK)
        goto fail;
    if ((rc = ce_event_validate(d.ev, j->err)) != CE_OK)
        goto fail;
    ce_buf_free(&d.scratch);
    j->p = d.j.p;
    *out = d.ev;
    return CE_OK;
fail:
    ce_buf_free(&d.scratch);
    j->p = d.j.p;
    ce_event_unref(d.ev);
    return rc;
}

/* Decodes and validates one JSON-format event; see cloudevents.h. */
int ce_json_decode(const char *buf, size_t n, ce_event **out, ce_err *err)
{
    if (!buf)
        buf = "", n = 0;
    jp j = {buf, buf, buf + n, err};
    bool v03;
    *out = NULL;
    int rc = decode_event(&j, out, &v03);
    if (rc != CE_OK)
        return rc;
    ws(&j);
    if (j.p != j.end) {
        ce_event_unref(*out);
        *out = NULL;
        return perr(&j, "trailing characters after the event");
    }
    return CE_OK;
}

void ce_events_free(ce_event **evs, size_t count)
{
    if (!evs)
        return;
    for (size_t i = 0; i < count; i++)
        ce_event_unref(evs[i]);
    free(evs);
}

/* Prefixes err->attr with "[i]" or "[i].". */
static void index_attr(ce_err *err, size_t i)
{
    if (!err)
        return;
    char a[sizeof err->attr + 32];
    if (err->attr[0])
        snprintf(a, sizeof a, "[%zu].%s", i, err->attr);
    else
        snprintf(a, sizeof a, "[%zu]", i);
    snprintf(err->attr, sizeof err->attr, "%.*s",
             (int)sizeof err->attr - 1, a);
}

static int batch_push(ce_event ***evs, size_t *n, size_t *cap, ce_event *ev)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        ce_event **p = realloc(*evs, c * sizeof *p);
        if (!p)
            return CE_ENOMEM;
        *evs = p;
        *cap = c;
    }
    (*evs)[(*n)++] = ev;
    return CE_OK;
}

static int decode_items(jp *j, ce_event ***evs, size_t *count)
{
    size_t cap = 0;
    bool first03 = false;
    for (size_t i = 0;; i++) {
        ce_event *ev;
        bool v03;
        int rc = decode_event(j, &ev, &v03);
        if (rc == CE_OK && i > 0 && v03 != first03) {
            ce_event_unref(ev);
            rc = ce_err_set(j->err, CE_EINVAL, "specversion", -1,
                            "all events of a batch must have the same "
                            "specversion");
        }
        if (rc == CE_OK && batch_push(evs, count, &cap, ev) != CE_OK) {
            ce_event_unref(ev);
            rc = ce_err_set(j->err, CE_ENOMEM, "", -1, "out of memory");
        }
        if (rc != CE_OK) {
            index_attr(j->err, i);
            return rc;
        }
        first03 = i == 0 ? v03 : first03;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return CE_OK;
        }
        return perr(j, "expected ',' or ']' after batch item %zu", i);
    }
}

/* Decodes a JSON batch, all or nothing; see cloudevents.h. */
int ce_json_decode_batch(const char *buf, size_t n, ce_event ***out,
                         size_t *count, ce_err *err)
{
    if (!buf)
        buf = "", n = 0;
    jp j = {buf, buf, buf + n, err};
    ce_event **evs = NULL;
    size_t cnt = 0;
    int rc = CE_OK;
    *out = NULL;
    *count = 0;
    ws(&j);
    if (j.p >= j.end || *j.p != '[') {
        rc = perr(&j, "expected '[' (a batch is a JSON array)");
        goto fail;
    }
    j.p++;
    ws(&j);
    if (j.p < j.end && *j.p == ']')
        j.p++;
    else if ((rc = decode_items(&j, &evs, &cnt)) != CE_OK)
        goto fail;
    ws(&j);
    if (j.p != j.end) {
        rc = perr(&j, "trailing characters after the batch");
        goto fail;
    }
    if (!evs && !(evs = malloc(sizeof *evs))) {
        rc = ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
        goto fail;
    }
    *out = evs;
    *count = cnt;
    return CE_OK;
fail:
    ce_events_free(evs, cnt);
    return rc;
}

/* ------------------------------------------------------------ encoding */

/* True when one of the 8 bytes at p needs escaping in a JSON string. */
static inline bool word_escapes(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ULL, high = ones * 0x80;
    uint64_t x, q, b;
    memcpy(&x, p, 8);
    q = x ^ (ones * '"');
    b = x ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) |
            ((x - ones * 0x20) & ~x)) & ~x & high;
}

/* Writes the escape of control/quote/backslash byte c at o; returns end. */
static char *put_escape(char *o, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '\\';
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    default:
        memcpy(o, "u00", 3);
        o[3] = hex[c >> 4];
        o[4] = hex[c & 15];
        o += 5;
    }
    return o;
}

/* Appends s[0..n) (valid UTF-8) as a JSON string literal. Keeps room for
 * the rest of the string plus the closing quote reserved at all times. */
int ce__json_put_string(ce_buf *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (ce_buf_reserve(out, n + 2) != CE_OK)
        return CE_ENOMEM;
    char *o = out->data + out->len;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        while (n - i >= 8 && !word_escapes(u + i)) {
            memcpy(o, u + i, 8);
            o += 8;
            i += 8;
        }
        if (i == n)
            break;
        unsigned char c = u[i++];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        out->len = (size_t)(o - out->data);
        if (ce_buf_reserve(out, (n - i) + 6 + 1) != CE_OK)
            return CE_ENOMEM;
        o = put_escape(out->data + out->len, c);
    }
    *o++ = '"';
    out->len = (size_t)(o - out->data);
    *o = '\0';
    return CE_OK;
}

static int put_data(const ce_event *ev, ce_buf *out)
{
    size_t n, ctl = 0;
    const char *data = ce_event_data(ev, &n);
    const char *ct = ce_event_get(ev, "datacontenttype", &ctl, NULL);
    if (ce_media_is_json(ct, ctl)) {
        size_t mark = out->len;
        if (ce_buf_puts(out, ",\"data\":") != CE_OK)
            return CE_ENOMEM;
        int rc = ce__json_compact(data, n, out, NULL);
        if (rc != CE_EPARSE)
            return rc;
        out->len = mark; /* not JSON after all: fall back to base64 */
        out->data[mark] = '\0';
    } else if (ce__media_is_text(ct, ctl) && ce__utf8_valid(data, n)) {
        if (ce_buf_puts(out, ",\"data\":") != CE_OK)
            return CE_ENOMEM;
        return ce__json_put_string(out, data, n);
    }
    if (ce_buf_puts(out, ",\"data_base64\":\"") != CE_OK ||
        ce_base64_encode(out, data, n) != CE_OK)
        return CE_ENOMEM;
    return ce_buf_append(out, "\"", 1);
}

static int encode_one(const ce_event *ev, ce_buf *out)
{
    ce_attr a;
    if (ce_buf_append(out, "{", 1) != CE_OK)
        return CE_ENOMEM;
    for (size_t i = 0; ce_event_attr_at(ev, i, &a); i++) {
        if ((i && ce_buf_append(out, ",", 1) != CE_OK) ||
            ce_buf_append(out, "\"", 1) != CE_OK ||
            ce_buf_puts(out, a.name) != CE_OK ||
            ce_buf_append(out, "\":", 2) != CE_OK)
            return CE_ENOMEM;
        int rc = a.extension && (a.type == CE_TYPE_INTEGER ||
                                 a.type == CE_TYPE_BOOLEAN)
                 ? ce_buf_append(out, a.value, a.len)
                 : ce__json_put_string(out, a.value, a.len);
        if (rc != CE_OK)
            return rc;
    }
    if (ce_event_has_data(ev) && put_data(ev, out) != CE_OK)
        return CE_ENOMEM;
    return ce_buf_append(out, "}", 1);
}

/* Appends the JSON format of ev; the event must validate (so a 0.3 event
 * is never written). On error out is left as it was. */
int ce_json_encode(const ce_event *ev, ce_buf *out, ce_err *err)
{
    int rc = ce_event_validate(ev, err);
    if (rc != CE_OK)
        return rc;
    size_t mark = out->len;
    if (encode_one(ev, out) != CE_OK) {
        if (out->data) {
            out->len = mark;
            out->data[mark] = '\0';
        }
        return ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
    }
    return CE_OK;
}

int ce_json_encode_batch(ce_event *const *evs, size_t count, ce_buf *out,
                         ce_err *err)
{
    size_t mark = out->len;
    int rc = ce_buf_append(out, "[", 1);
    for (size_t i = 0; rc == CE_OK && i < count; i++) {
        if (i)
            rc = ce_buf_append(out, ",", 1);
        if (rc == CE_OK && (rc = ce_json_encode(evs[i], out, err)) != CE_OK)
            index_attr(err, i);
    }
    if (rc == CE_OK)
        rc = ce_buf_append(out, "]", 1);
    if (rc != CE_OK && out->data) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    if (rc == CE_ENOMEM)
        ce_err_set(err, CE_ENOMEM, "", -1, "out of memory");
    return rc;
}
