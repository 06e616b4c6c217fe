/*
 * time.c: monotonic and wall clocks, and RFC 3339 timestamps as int64
 * nanoseconds since the Unix epoch (UTC). Self-contained (no dependency on
 * the CloudEvents library's time code); the civil-date conversion follows
 * the well-known days-from-civil algorithm on the proleptic Gregorian
 * calendar.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "common/internal.h"

#define NS_PER_SEC INT64_C(1000000000)

int64_t kn_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t kn_now_mono_ms(void)
{
    return kn_now_mono_ns() / 1000000;
}

int64_t kn_now_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t kn__days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void kn__civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Writes v as exactly n decimal digits (zero-padded). */
static void put_digits(char *p, uint64_t v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Always "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (fixed width, so values sort as
 * text; int64 nanoseconds always have a 4-digit year). Returns the length
 * written (30). Written by hand: it runs for every ingested event. */
size_t kn_time_format_ns(int64_t wall_ns, char *buf)
{
    int64_t sec = wall_ns / NS_PER_SEC, ns = wall_ns % NS_PER_SEC;
    if (ns < 0) {
        ns += NS_PER_SEC;
        sec--;
    }
    int64_t days = sec / 86400, sod = sec % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    kn__civil_from_days(days, &y, &m, &d);
    put_digits(buf, (uint64_t)y, 4);
    buf[4] = '-';
    put_digits(buf + 5, m, 2);
    buf[7] = '-';
    put_digits(buf + 8, d, 2);
    buf[10] = 'T';
    put_digits(buf + 11, (uint64_t)(sod / 3600), 2);
    buf[13] = ':';
    put_digits(buf + 14, (uint64_t)(sod / 60 % 60), 2);
    buf[16] = ':';
    put_digits(buf + 17, (uint64_t)(sod % 60), 2);
    buf[19] = '.';
    put_digits(buf + 20, (uint64_t)ns, 9);
    buf[29] = 'Z';
    buf[30] = '\0';
    return 30;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

static int bad_time(kn_err *err, const char *s, const char *why)
{
    return kn_err_set(err, KN_INVAL, "invalid RFC 3339 timestamp \"%.64s\": "
                      "%s", s, why);
}

/* Parses the fraction ".ddd" at *p (up to 9 digits) into ns. */
static int parse_fraction(const char **p, int64_t *ns, const char *s,
                          kn_err *err)
{
    const char *q = *p + 1;
    int n = 0;
    int64_t v = 0;
    while (*q >= '0' && *q <= '9') {
        if (++n > 9)
            return bad_time(err, s, "more than 9 fractional digits");
        v = v * 10 + (*q++ - '0');
    }
    if (n == 0)
        return bad_time(err, s, "expected digits after '.'");
    for (int i = n; i < 9; i++)
        v *= 10;
    *ns = v;
    *p = q;
    return KN_OK;
}

static int parse_offset(const char *p, int *off_min, const char *s,
                        kn_err *err)
{
    if (*p == 'Z' || *p == 'z') {
        *off_min = 0;
        return p[1] ? bad_time(err, s, "trailing characters") : KN_OK;
    }
    int oh, om;
    if ((*p != '+' && *p != '-') || strlen(p) != 6 || p[3] != ':' ||
        !digits(p + 1, 2, &oh) || !digits(p + 4, 2, &om))
        return bad_time(err, s, "expected 'Z' or a +HH:MM offset");
    if (oh > 23 || om > 59)
        return bad_time(err, s, "UTC offset out of range");
    *off_min = (*p == '-' ? -1 : 1) * (oh * 60 + om);
    return KN_OK;
}

/* Parses RFC 3339 date-time ("T"/"Z" in either case, optional fraction of
 * up to 9 digits, leap second 60 read as :59.999999999) into ns since the
 * epoch in UTC. KN_INVAL with a message naming the problem; range is
 * what int64 ns can hold (1677-09-21 to 2262-04-11). */
int kn_time_parse_ns(const char *s, int64_t *ns_out, kn_err *err)
{
    if (!s)
        return kn_err_set(err, KN_INVAL, "missing timestamp");
    int y, mo, d, h, mi, sec;
    if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' ||
        !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return bad_time(err, s, "expected YYYY-MM-DDTHH:MM:SS[.frac]Z or "
                        "an offset");
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return bad_time(err, s, "no such date");
    if (h > 23 || mi > 59 || sec > 60)
        return bad_time(err, s, "time of day out of range");
    const char *p = s + 19;
    int64_t ns = 0;
    if (*p == '.' && parse_fraction(&p, &ns, s, err) != KN_OK)
        return KN_INVAL;
    int off;
    if (parse_offset(p, &off, s, err) != KN_OK)
        return KN_INVAL;
    if (sec == 60) {
        sec = 59;
        ns = NS_PER_SEC - 1;
    }
    int64_t t = kn__days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
                h * 3600 + mi * 60 + sec - (int64_t)off * 60;
    int64_t out;
    if (__builtin_mul_overflow(t, NS_PER_SEC, &out) ||
        __builtin_add_overflow(out, ns, &out)) {
        /* the one representable case the product misses: 1677 + ns */
        if (t != INT64_MIN / NS_PER_SEC - 1 ||
            __builtin_mul_overflow(t + 1, NS_PER_SEC, &out) ||
            __builtin_add_overflow(out, ns - NS_PER_SEC, &out))
            return bad_time(err, s, "outside the range of 64-bit "
                            "nanoseconds (1677-09-21 to 2262-04-11)");
    }
    *ns_out = out;
    return KN_OK;
}
