/*
 * RFC 3339 timestamps (CloudEvents Timestamp type): strict parsing of
 * `date-time`, formatting in UTC, and the wall clock. Pure functions;
 * thread-safe.
 */
#include <stdio.h>
#include <time.h>

#include "cloudevents/cloudevents.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly `w` digits at s[*i]; -1 when they are not all digits. */
static int digits(const char *s, size_t n, size_t *i, int w)
{
    int v = 0;
    for (int k = 0; k < w; k++, (*i)++) {
        if (*i >= n || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[*i] - '0');
    }
    return v;
}

static int bad(ce_err *err, size_t at, const char *what)
{
    return ce_err_set(err, CE_EINVAL, "", (long)at,
                      "not an RFC 3339 timestamp: %s", what);
}

static int expect(const char *s, size_t n, size_t *i, char c)
{
    if (*i < n && (s[*i] == c || (c == 'T' && s[*i] == 't')))
        return (*i)++, 1;
    return 0;
}

/* Parses the UTC offset ("Z" or "+hh:mm"/"-hh:mm") at s[*i]. */
static int parse_offset(const char *s, size_t n, size_t *i, int *off,
                        ce_err *err)
{
    if (*i < n && (s[*i] == 'Z' || s[*i] == 'z')) {
        (*i)++;
        *off = 0;
        return CE_OK;
    }
    if (*i >= n || (s[*i] != '+' && s[*i] != '-'))
        return bad(err, *i, "expected 'Z' or a +hh:mm offset");
    int sign = s[(*i)++] == '-' ? -1 : 1;
    int oh = digits(s, n, i, 2);
    if (oh < 0 || !expect(s, n, i, ':'))
        return bad(err, *i, "malformed UTC offset");
    int om = digits(s, n, i, 2);
    if (om < 0)
        return bad(err, *i, "malformed UTC offset");
    if (oh > 23 || om > 59)
        return bad(err, *i, "UTC offset out of range");
    *off = sign * (oh * 60 + om);
    return CE_OK;
}

/* Reads "YYYY-MM-DDThh:mm:ss" into f[0..5] with error detail; *i ends
 * after the seconds. */
static int fields_slow(const char *s, size_t n, size_t *i, int f[6],
                       ce_err *err)
{
    static const char sep[] = "--T::";
    static const char *const what[] = {
        "expected YYYY-", "expected MM-", "expected DD followed by 'T'",
        "expected hh:", "expected mm:", "expected ss"};
    for (int k = 0; k < 6; k++) {
        f[k] = digits(s, n, i, k == 0 ? 4 : 2);
        if (f[k] < 0 || (k < 5 && !expect(s, n, i, sep[k])))
            return bad(err, *i, what[k]);
    }
    return CE_OK;
}

/* The same for well-formed input without bounds checks per character. */
static bool fields_fast(const char *s, size_t n, int f[6])
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd";
    if (n < 20)
        return false;
    for (int k = 0; k < 19; k++) {
        if (pat[k] == 'd') {
            if ((unsigned)(s[k] - '0') > 9)
                return false;
        } else if (s[k] != pat[k] && !(k == 10 && s[k] == 't')) {
            return false;
        }
    }
#define D2(k) ((s[k] - '0') * 10 + (s[k + 1] - '0'))
    f[0] = D2(0) * 100 + D2(2);
    f[1] = D2(5);
    f[2] = D2(8);
    f[3] = D2(11);
    f[4] = D2(14);
    f[5] = D2(17);
#undef D2
    return true;
}

/* Parses RFC 3339 date-time; see cloudevents.h. Thread: any. */
int ce_time_parse(const char *s, size_t n, ce_time *out, ce_err *err)
{
    size_t i = 19;
    int f[6];
    if (!fields_fast(s, n, f)) {
        i = 0;
        if (fields_slow(s, n, &i, f, err) != CE_OK)
            return CE_EINVAL;
    }
    int y = f[0], mo = f[1], d = f[2], h = f[3], mi = f[4], se = f[5];
    if (mo < 1 || mo > 12)
        return bad(err, 5, "no such date (month out of range)");
    if (d < 1 || d > days_in_month(y, mo))
        return bad(err, 8, "no such date (day out of range for "
                   "the month)");
    if (h > 23 || mi > 59 || se > 60)
        return bad(err, 11, "time of day out of range");
    int32_t ns = 0;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        int scale = 100000000;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            ns += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start)
            return bad(err, i, "empty fraction of a second "
                       "(expected digits after '.')");
    }
    int off = 0;
    if (parse_offset(s, n, &i, &off, err) != CE_OK)
        return CE_EINVAL;
    if (i != n)
        return bad(err, i, "trailing characters after the offset");
    if (se == 60) { /* leap second: clamp to the last instant of :59 */
        se = 59;
        ns = 999999999;
    }
    if (out) {
        int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
        out->sec = days * 86400 + h * 3600 + mi * 60 + se - off * 60;
        out->nsec = ns;
        out->offset_min = (int16_t)off;
    }
    return CE_OK;
}

/* Writes v as exactly n decimal digits (zero-padded). */
static void put_digits(char *p, uint64_t v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* ce_time_format_utc for years outside 0000..9999 (or a bad nsec). */
static size_t format_slow(int64_t y, unsigned m, unsigned d, int h, int mi,
                          int s, int32_t nsec, char *buf)
{
    int n;
    if (nsec)
        n = snprintf(buf, CE_TIME_MAX, "%04lld-%02u-%02uT%02d:%02d:%02d.%09dZ",
                     (long long)y, m, d, h, mi, s, (int)nsec);
    else
        n = snprintf(buf, CE_TIME_MAX, "%04lld-%02u-%02uT%02d:%02d:%02dZ",
                     (long long)y, m, d, h, mi, s);
    return n < 0 ? 0 : (size_t)n;
}

/* Formats t in UTC; buf holds CE_TIME_MAX bytes. Returns the length.
 * Written by hand for 4-digit years (knit formats a time for every event
 * it ingests); other years go through snprintf. */
size_t ce_time_format_utc(const ce_time *t, char *buf)
{
    int64_t days = t->sec / 86400, rem = t->sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int h = (int)(rem / 3600), mi = (int)(rem / 60 % 60), s = (int)(rem % 60);
    if (y < 0 || y > 9999 || t->nsec < 0 || t->nsec > 999999999)
        return format_slow(y, m, d, h, mi, s, t->nsec, buf);
    put_digits(buf, (uint64_t)y, 4);
    buf[4] = '-';
    put_digits(buf + 5, m, 2);
    buf[7] = '-';
    put_digits(buf + 8, d, 2);
    buf[10] = 'T';
    put_digits(buf + 11, (uint64_t)h, 2);
    buf[13] = ':';
    put_digits(buf + 14, (uint64_t)mi, 2);
    buf[16] = ':';
    put_digits(buf + 17, (uint64_t)s, 2);
    size_t n = 19;
    if (t->nsec) {
        buf[n++] = '.';
        put_digits(buf + n, (uint64_t)t->nsec, 9);
        n += 9;
    }
    buf[n++] = 'Z';
    buf[n] = '\0';
    return n;
}

ce_time ce_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ce_time t = {(int64_t)ts.tv_sec, (int32_t)ts.tv_nsec, 0};
    return t;
}
