/*
 * CESQL built-in functions (spec section 3.5 plus the casting functions
 * the TCK uses): LENGTH, CONCAT, CONCAT_WS, LOWER, UPPER, TRIM, LEFT,
 * RIGHT, SUBSTRING (2 and 3 arguments), ABS, BOOL, INT, STRING, IS_BOOL,
 * IS_INT. Functions are looked up by name (any case) and arity. String
 * positions and lengths count characters (code points), not bytes.
 *
 * Arguments arrive already evaluated and cast to the declared parameter
 * types. A function that fails returns the value the TCK expects with its
 * error (LEFT('abc', -2) is 'abc' + functionEvaluation).
 */
#include <string.h>

#include "cloudevents/cesql_int.h"

static void ret_str(cs_val *out, const char *s, size_t n)
{
    out->t = CS_T_STR;
    out->s = s;
    out->n = n;
}

static void ret_int(cs_val *out, int32_t i)
{
    out->t = CS_T_INT;
    out->i = i;
}

static void ret_bool(cs_val *out, bool b)
{
    out->t = CS_T_BOOL;
    out->i = b;
}

static int nomem(cs_eval *st, const cs_node *nd, cs_val *out)
{
    ret_str(out, "", 0);
    return cs_raise(st, nd, CE_SQL_EGENERIC, D_NOMEM, 0);
}

static int fn_length(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                     cs_val *out)
{
    (void)st, (void)nd, (void)n;
    size_t c = cs_utf8_count(a[0].s, a[0].n);
    ret_int(out, c > INT32_MAX ? INT32_MAX : (int32_t)c);
    return 0;
}

/* CONCAT(s...) and CONCAT_WS(sep, s...). */
static int join(cs_eval *st, const cs_node *nd, const cs_val *a, uint32_t n,
                const cs_val *sep, cs_val *out)
{
    if (n == 0) {
        ret_str(out, "", 0);
        return 0;
    }
    if (n == 1) {
        *out = a[0];
        return 0;
    }
    size_t total = sep ? sep->n * (n - 1) : 0;
    for (uint32_t k = 0; k < n; k++)
        total += a[k].n;
    char *buf = cs_scratch(st->ctx, total);
    if (!buf)
        return nomem(st, nd, out);
    size_t o = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (k && sep) {
            memcpy(buf + o, sep->s, sep->n);
            o += sep->n;
        }
        memcpy(buf + o, a[k].s, a[k].n);
        o += a[k].n;
    }
    ret_str(out, buf, total);
    return 0;
}

static int fn_concat(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                     cs_val *out)
{
    return join(st, nd, a, n, NULL, out);
}

static int fn_concat_ws(cs_eval *st, const cs_node *nd, cs_val *a,
                        uint32_t n, cs_val *out)
{
    return join(st, nd, a + 1, n - 1, &a[0], out);
}

/* LOWER / UPPER with Unicode simple case mapping. Returns the argument
 * itself when nothing changes (no copy). */
static int change_case(cs_eval *st, const cs_node *nd, const cs_val *a,
                       cs_val *out, uint32_t (*map)(uint32_t))
{
    const char *s = a->s;
    size_t n = a->n, need = 0, len;
    bool changed = false, ok;
    char tmp[4];
    for (size_t i = 0; i < n; i += len) {
        uint32_t cp = cs_utf8_decode(s + i, n - i, &len, &ok);
        uint32_t m = ok ? map(cp) : cp;
        changed = changed || m != cp;
        need += m != cp ? cs_utf8_encode(m, tmp) : len;
    }
    if (!changed) {
        *out = *a;
        return 0;
    }
    char *buf = cs_scratch(st->ctx, need);
    if (!buf)
        return nomem(st, nd, out);
    size_t o = 0;
    for (size_t i = 0; i < n; i += len) {
        uint32_t cp = cs_utf8_decode(s + i, n - i, &len, &ok);
        uint32_t m = ok ? map(cp) : cp;
        if (m != cp) {
            o += cs_utf8_encode(m, buf + o);
        } else {
            memcpy(buf + o, s + i, len);
            o += len;
        }
    }
    ret_str(out, buf, o);
    return 0;
}

static int fn_lower(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                    cs_val *out)
{
    (void)n;
    return change_case(st, nd, &a[0], out, cs_to_lower);
}

static int fn_upper(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                    cs_val *out)
{
    (void)n;
    return change_case(st, nd, &a[0], out, cs_to_upper);
}

/* Start of the last character of s[0..n), n > 0. */
static size_t last_char(const char *s, size_t n)
{
    size_t i = n - 1;
    for (int k = 0; k < 3 && i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80;
         k++)
        i--;
    if (i + cs_utf8_len(s + i, n - i) != n)
        return n - 1;   /* not a valid sequence ending at n: one byte */
    return i;
}

static int fn_trim(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                   cs_val *out)
{
    (void)st, (void)nd, (void)n;
    const char *s = a[0].s;
    size_t b = 0, e = a[0].n, len;
    bool ok;
    while (b < e) {
        uint32_t cp = cs_utf8_decode(s + b, e - b, &len, &ok);
        if (!ok || !cs_is_space(cp))
            break;
        b += len;
    }
    while (e > b) {
        size_t i = last_char(s + b, e - b) + b;
        uint32_t cp = cs_utf8_decode(s + i, e - i, &len, &ok);
        if (!ok || !cs_is_space(cp))
            break;
        e = i;
    }
    ret_str(out, s + b, e - b);
    return 0;
}

/* LEFT(s, n) / RIGHT(s, n): n < 0 returns s with an error. */
static int left_right(cs_eval *st, const cs_node *nd, cs_val *a,
                      cs_val *out, bool left)
{
    const char *s = a[0].s;
    size_t n = a[0].n;
    int32_t k = a[1].i;
    if (k < 0) {
        ret_str(out, s, n);
        return cs_raise(st, nd, CE_SQL_EFUNCTION, D_NEG_LEN, k);
    }
    if (left) {
        ret_str(out, s, cs_utf8_offset(s, n, (size_t)k));
        return 0;
    }
    size_t count = cs_utf8_count(s, n);
    size_t skip = count > (size_t)k ? count - (size_t)k : 0;
    size_t off = cs_utf8_offset(s, n, skip);
    ret_str(out, s + off, n - off);
    return 0;
}

static int fn_left(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                   cs_val *out)
{
    (void)n;
    return left_right(st, nd, a, out, true);
}

static int fn_right(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                    cs_val *out)
{
    (void)n;
    return left_right(st, nd, a, out, false);
}

/* SUBSTRING(s, pos [, len]): pos counts from 1, negative from the end;
 * pos 0 gives ''; |pos| beyond the length or len < 0 give '' + error;
 * a len past the end stops at the end. */
static int fn_substring(cs_eval *st, const cs_node *nd, cs_val *a,
                        uint32_t n, cs_val *out)
{
    const char *s = a[0].s;
    int64_t pos = a[1].i;
    int64_t count = (int64_t)cs_utf8_count(s, a[0].n);
    ret_str(out, "", 0);
    if (pos == 0)
        return 0;
    if (pos > count || -pos > count)
        return cs_raise(st, nd, CE_SQL_EFUNCTION, D_SUBSTR_POS, a[1].i);
    if (n == 3 && a[2].i < 0)
        return cs_raise(st, nd, CE_SQL_EFUNCTION, D_NEG_LEN, a[2].i);
    int64_t begin = pos > 0 ? pos - 1 : count + pos;
    int64_t end = count;
    if (n == 3 && begin + a[2].i < count)
        end = begin + a[2].i;
    size_t b = cs_utf8_offset(s, a[0].n, (size_t)begin);
    size_t e = cs_utf8_offset(s + b, a[0].n - b, (size_t)(end - begin)) + b;
    ret_str(out, s + b, e - b);
    return 0;
}

static int fn_abs(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                  cs_val *out)
{
    (void)n;
    if (a[0].i == INT32_MIN) {
        ret_int(out, INT32_MAX);
        return cs_raise(st, nd, CE_SQL_EMATH, D_OVERFLOW, 0);
    }
    ret_int(out, a[0].i < 0 ? -a[0].i : a[0].i);
    return 0;
}

static int fn_bool(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                   cs_val *out)
{
    (void)n;
    *out = a[0];
    return cs_to_bool(st, nd, out);
}

static int fn_int(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                  cs_val *out)
{
    (void)n;
    *out = a[0];
    return cs_to_int(st, nd, out);
}

static int fn_string(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                     cs_val *out)
{
    (void)n;
    *out = a[0];
    return cs_to_str(st, nd, out);
}

static int fn_is_bool(cs_eval *st, const cs_node *nd, cs_val *a,
                      uint32_t n, cs_val *out)
{
    (void)st, (void)nd, (void)n;
    ret_bool(out, cs_can_cast(&a[0], CS_T_BOOL));
    return 0;
}

static int fn_is_int(cs_eval *st, const cs_node *nd, cs_val *a, uint32_t n,
                     cs_val *out)
{
    (void)st, (void)nd, (void)n;
    ret_bool(out, cs_can_cast(&a[0], CS_T_INT));
    return 0;
}

#define B CS_T_BOOL
#define I CS_T_INT
#define S CS_T_STR
#define A CS_T_ANY
const cs_fn cs_functions[] = {
    {"LENGTH", 1, false, I, {S}, 0, false, fn_length},
    {"CONCAT", 0, true, S, {0}, S, false, fn_concat},
    {"CONCAT_WS", 1, true, S, {S}, S, false, fn_concat_ws},
    {"LOWER", 1, false, S, {S}, 0, false, fn_lower},
    {"UPPER", 1, false, S, {S}, 0, false, fn_upper},
    {"TRIM", 1, false, S, {S}, 0, false, fn_trim},
    {"LEFT", 2, false, S, {S, I}, 0, false, fn_left},
    {"RIGHT", 2, false, S, {S, I}, 0, false, fn_right},
    {"SUBSTRING", 2, false, S, {S, I}, 0, false, fn_substring},
    {"SUBSTRING", 3, false, S, {S, I, I}, 0, false, fn_substring},
    {"ABS", 1, false, I, {I}, 0, false, fn_abs},
    {"BOOL", 1, false, B, {A}, 0, true, fn_bool},
    {"INT", 1, false, I, {A}, 0, true, fn_int},
    {"STRING", 1, false, S, {A}, 0, true, fn_string},
    {"IS_BOOL", 1, false, B, {A}, 0, false, fn_is_bool},
    {"IS_INT", 1, false, B, {A}, 0, false, fn_is_int},
};
#undef B
#undef I
#undef S
#undef A
const size_t cs_nfunctions = sizeof cs_functions / sizeof cs_functions[0];

int cs_fn_arg_type(const cs_fn *f, uint32_t i)
{
    return i < f->nfixed ? f->arg[i] : f->vtype;
}

static bool name_eq(const char *upper, const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && upper[i]; i++)
        if ((s[i] & ~0x20) != upper[i])
            return false;
    return i == n && !upper[i];
}

int cs_fn_lookup(const char *name, size_t len, uint32_t nargs)
{
    int found = -1;
    for (size_t k = 0; k < cs_nfunctions; k++) {
        const cs_fn *f = &cs_functions[k];
        if (!name_eq(f->name, name, len))
            continue;
        if (nargs == f->nfixed || (f->variadic && nargs > f->nfixed))
            return (int)k;
        found = -2;
    }
    return found;
}
