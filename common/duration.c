/*
 * duration.c: ISO-8601 durations as used by Knative delivery specs
 * ("PT0.2S", "PT1H30M", "P1D", "P1W", "P1DT2H") to and from milliseconds.
 *
 * Accepted: 'P', then optional weeks 'W' and days 'D', then optionally 'T'
 * with hours 'H', minutes 'M', seconds 'S', each at most once and in that
 * order. Any component may carry a decimal fraction ('.' or ','), but only
 * the last one given. Precision is the millisecond: finer fractions are
 * truncated. Rejected with a message: years and months (no fixed length),
 * negative durations, empty "P"/"PT", unknown designators, overflow of
 * int64 milliseconds.
 */
#include <stdio.h>
#include <string.h>

#include "common/common.h"

#define MS_S INT64_C(1000)
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)
#define MS_W (7 * MS_D)

typedef struct unit {
    char c;
    int64_t ms;
    bool time_part; /* after 'T' */
} unit;

static const unit units[] = {
    {'W', MS_W, false}, {'D', MS_D, false},
    {'H', MS_H, true},  {'M', MS_M, true},  {'S', MS_S, true},
};
#define TOO_LARGE "too large (overflows 64-bit milliseconds)"
#define N_UNITS (sizeof units / sizeof units[0])

static int bad(kn_err *err, const char *s, const char *why)
{
    return kn_err_set(err, KN_INVAL, "invalid duration \"%.64s\": %s", s,
                      why);
}

/* Reads "digits[.digits]" at *p: integer part in *ip, fraction as
 * numerator *fn over denominator *fd (capped at 10^9). */
static int read_number(const char **p, int64_t *ip, int64_t *fn,
                       int64_t *fd, bool *frac, const char *s, kn_err *err)
{
    const char *q = *p;
    int64_t v = 0;
    if (*q < '0' || *q > '9')
        return bad(err, s, "expected a number");
    for (; *q >= '0' && *q <= '9'; q++) {
        if (v > (INT64_MAX - 9) / 10)
            return bad(err, s, TOO_LARGE);
        v = v * 10 + (*q - '0');
    }
    *ip = v;
    *fn = 0;
    *fd = 1;
    *frac = false;
    if (*q == '.' || *q == ',') {
        q++;
        if (*q < '0' || *q > '9')
            return bad(err, s, "expected digits after the decimal mark");
        *frac = true;
        for (; *q >= '0' && *q <= '9'; q++) {
            if (*fd < INT64_C(1000000000)) { /* finer digits are dropped */
                *fn = *fn * 10 + (*q - '0');
                *fd *= 10;
            }
        }
    }
    *p = q;
    return KN_OK;
}

static int designator_error(kn_err *err, const char *s, char c, bool in_t)
{
    if (c == 'Y')
        return bad(err, s, "years are not supported (not a fixed length); "
                   "use days (P365D) or weeks");
    if (c == 'M' && !in_t)
        return bad(err, s, "months are not supported (not a fixed "
                   "length); use days (P30D), or PT..M for minutes");
    if (c == '\0')
        return bad(err, s, "number without a unit designator");
    char why[64];
    snprintf(why, sizeof why, "unexpected '%c' %s", c,
             in_t ? "after 'T' (expected H, M or S)"
                  : "(expected W or D, or T before H/M/S)");
    return bad(err, s, why);
}

/* Adds value * unit to *total with overflow checks. */
static int add_part(int64_t *total, int64_t ip, int64_t fn, int64_t fd,
                    int64_t ums, const char *s, kn_err *err)
{
    if (ip > INT64_MAX / ums)
        return bad(err, s, TOO_LARGE);
    int64_t v = ip * ums;
    /* fn < fd <= 1e9 and ums <= 6.048e8: split to avoid overflow. */
    int64_t f = fn * (ums / fd) + fn * (ums % fd) / fd;
    if (v > INT64_MAX - f || *total > INT64_MAX - (v + f))
        return bad(err, s, TOO_LARGE);
    *total += v + f;
    return KN_OK;
}

/* Parses an ISO-8601 duration into *ms_out (ms). KN_INVAL on error with
 * err->msg quoting the input and the reason. Thread-safe. */
int kn_duration_parse(const char *s, int64_t *ms_out, kn_err *err)
{
    if (!s || !*s)
        return kn_err_set(err, KN_INVAL, "invalid duration \"\": empty");
    const char *p = s;
    if (*p == '-' || *p == '+')
        return bad(err, s, "negative or signed durations are not allowed");
    if (*p != 'P')
        return bad(err, s, "must start with 'P' (e.g. PT0.2S, PT1H30M, "
                   "P1D)");
    p++;
    int64_t total = 0;
    size_t next = 0; /* index in units of the next allowed designator */
    bool in_t = false, any = false, any_t = false, had_frac = false;
    while (*p) {
        if (*p == 'T') {
            if (in_t)
                return bad(err, s, "'T' appears twice");
            in_t = true;
            while (next < N_UNITS && !units[next].time_part)
                next++;
            p++;
            continue;
        }
        if (*p == '-')
            return bad(err, s, "negative durations are not allowed");
        if (had_frac)
            return bad(err, s, "only the last component may have a "
                       "fraction");
        int64_t ip = 0, fn = 0, fd = 1;
        if (read_number(&p, &ip, &fn, &fd, &had_frac, s, err) != KN_OK)
            return KN_INVAL;
        size_t u = next;
        while (u < N_UNITS && (units[u].c != *p || units[u].time_part != in_t))
            u++;
        if (u == N_UNITS) {
            for (size_t k = 0; k < N_UNITS; k++)
                if (units[k].c == *p && units[k].time_part == in_t)
                    return bad(err, s, "designators out of order or "
                               "repeated");
            return designator_error(err, s, *p, in_t);
        }
        if (add_part(&total, ip, fn, fd, units[u].ms, s, err) != KN_OK)
            return KN_INVAL;
        next = u + 1;
        any = true;
        any_t |= in_t;
        p++;
    }
    if (!any)
        return bad(err, s, "no components (e.g. PT1S)");
    if (in_t && !any_t)
        return bad(err, s, "'T' must be followed by hours, minutes or "
                   "seconds");
    *ms_out = total;
    return KN_OK;
}

/* Canonical form: days, then T hours/minutes/seconds, seconds with up to
 * three fractional digits and no trailing zeros; 0 is "PT0S"; negative
 * values get a leading '-'. Returns the length the full text needs (as
 * snprintf); writes at most n bytes including the NUL. */
size_t kn_duration_format(int64_t ms, char *buf, size_t n)
{
    char tmp[64];
    size_t len = 0;
    uint64_t v = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    if (ms < 0)
        tmp[len++] = '-';
    tmp[len++] = 'P';
    uint64_t d = v / MS_D, h = v / MS_H % 24, m = v / MS_M % 60;
    uint64_t sec = v / MS_S % 60, frac = v % MS_S;
    if (d)
        len += (size_t)snprintf(tmp + len, sizeof tmp - len, "%lluD",
                                (unsigned long long)d);
    if (h || m || sec || frac || !d) {
        tmp[len++] = 'T';
        if (h)
            len += (size_t)snprintf(tmp + len, sizeof tmp - len, "%lluH",
                                    (unsigned long long)h);
        if (m)
            len += (size_t)snprintf(tmp + len, sizeof tmp - len, "%lluM",
                                    (unsigned long long)m);
        if (sec || frac || (!h && !m)) {
            len += (size_t)snprintf(tmp + len, sizeof tmp - len, "%llu",
                                    (unsigned long long)sec);
            if (frac) {
                /* frac is 1..999: ".d", ".dd" or ".ddd" without
                 * trailing zeros. */
                unsigned fr = (unsigned)frac, digits = 3;
                while (fr % 10 == 0) {
                    fr /= 10;
                    digits--;
                }
                len += (size_t)snprintf(tmp + len, sizeof tmp - len,
                                        ".%0*u", (int)digits, fr);
            }
            tmp[len++] = 'S';
        }
    }
    tmp[len] = '\0';
    if (buf && n)
        snprintf(buf, n, "%s", tmp);
    return len;
}
