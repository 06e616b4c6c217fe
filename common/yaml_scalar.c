/*
 * yaml_scalar.c: YAML 1.2 core-schema resolution of plain scalars, shared
 * by the loader (yaml.c) and the emitter (yaml_emit.c, which quotes any
 * string that would not load back as a string).
 *
 *   null   null Null NULL ~ and the empty scalar
 *   bool   true True TRUE false False FALSE
 *   int    [-+]?[0-9]+  0o[0-7]+  0x[0-9a-fA-F]+   (must fit int64)
 *   float  [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
 *          (.inf/.nan match the schema but JSON cannot hold them: error)
 *   else   string
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/internal.h"

static bool one_of(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(s, *words, n) == 0)
            return true;
    return false;
}

static bool is_digit(char c, int base)
{
    if (base == 8)
        return c >= '0' && c <= '7';
    if (base == 16)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
               (c >= 'A' && c <= 'F');
    return c >= '0' && c <= '9';
}

static int digit_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return (c | 0x20) - 'a' + 10;
}

/* Matches the int patterns; *overflow when it matches but does not fit. */
static bool match_int(const char *s, size_t n, json_int_t *out,
                      bool *overflow)
{
    size_t i = 0;
    int base = 10;
    bool neg = false;
    if (n > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        base = s[1] == 'o' ? 8 : 16;
        i = 2;
    } else if (n > 1 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return false;
    for (size_t k = i; k < n; k++)
        if (!is_digit(s[k], base))
            return false;
    /* Accumulate as a negative number so INT64_MIN fits. */
    json_int_t v = 0, lim = INT64_MIN;
    for (; i < n; i++) {
        int d = digit_val(s[i]);
        if (v < (lim + d) / base) {
            *overflow = true;
            return true;
        }
        v = v * base - d;
    }
    if (!neg && v == INT64_MIN) {
        *overflow = true;
        return true;
    }
    *out = neg ? v : -v;
    return true;
}

static size_t skip_digits(const char *s, size_t i, size_t n)
{
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

static bool match_float(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t a = i;
    i = skip_digits(s, i, n);
    bool int_digits = i > a;
    if (i < n && s[i] == '.') {
        size_t b = ++i;
        i = skip_digits(s, i, n);
        if (!int_digits && i == b)
            return false;
    } else if (!int_digits) {
        return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t e = i;
        i = skip_digits(s, i, n);
        if (i == e)
            return false;
    }
    return i == n;
}

static bool match_special_float(const char *s, size_t n)
{
    static const char *const inf[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nan[] = {".nan", ".NaN", ".NAN", NULL};
    if (one_of(s, n, nan))
        return true;
    if (n > 0 && (s[0] == '-' || s[0] == '+'))
        return one_of(s + 1, n - 1, inf);
    return one_of(s, n, inf);
}

/* Resolves the plain scalar s[0..n) to a new JSON value in *out. Returns
 * KN_OK, or KN_PARSE with a reason in why[] for values of a non-string
 * type that JSON cannot hold (int64 overflow, infinities, NaN), or
 * KN_NOMEM. A result that is a string is always the exact input. */
int kn__yaml_resolve_plain(const char *s, size_t n, json_t **out, char *why,
                           size_t whyn)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL",
                                        NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    json_int_t iv;
    bool overflow = false;
    if (one_of(s, n, nulls))
        *out = json_null();
    else if (one_of(s, n, trues))
        *out = json_true();
    else if (one_of(s, n, falses))
        *out = json_false();
    else if (match_int(s, n, &iv, &overflow)) {
        if (overflow) {
            snprintf(why, whyn, "integer %.40s%s is outside the 64-bit "
                     "range (quote it to make it a string)", s,
                     n > 40 ? "..." : "");
            return KN_PARSE;
        }
        *out = json_integer(iv);
    } else if (match_float(s, n)) {
        char tmp[512];
        if (n >= sizeof tmp) {
            snprintf(why, whyn, "number too long (%zu characters)", n);
            return KN_PARSE;
        }
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        double d = strtod(tmp, NULL);
        if (isinf(d)) {
            snprintf(why, whyn, "number %.40s%s is out of range", tmp,
                     n > 40 ? "..." : "");
            return KN_PARSE;
        }
        *out = json_real(d);
    } else if (match_special_float(s, n)) {
        snprintf(why, whyn, "%.*s (infinity or NaN) cannot be represented "
                 "in JSON (quote it to make it a string)", (int)n, s);
        return KN_PARSE;
    } else {
        *out = json_stringn(s, n);
        if (!*out) {
            snprintf(why, whyn, "string is not valid UTF-8");
            return KN_PARSE;
        }
    }
    return *out ? KN_OK : KN_NOMEM;
}

/* True when the plain scalar s[0..n) loads as the string itself. */
bool kn__yaml_plain_is_string(const char *s, size_t n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL",
                                        NULL};
    static const char *const bools[] = {"true", "True", "TRUE", "false",
                                        "False", "FALSE", NULL};
    json_int_t iv;
    bool overflow = false;
    if (one_of(s, n, nulls) || one_of(s, n, bools) ||
        match_int(s, n, &iv, &overflow) || match_float(s, n) ||
        match_special_float(s, n))
        return false;
    return !(n == 2 && memcmp(s, "<<", 2) == 0);
}
