/*
 * delivery.c: the pure parts of a delivery spec — defaults, range checks,
 * the backoff formula (DESIGN.md §4), which outcomes are retried, and
 * Retry-After parsing. No I/O, no state: safe from any thread.
 */
#include "sinks/sinks.h"

#include <ctype.h>
#include <string.h>

void kn_delivery_spec_default(kn_delivery_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->retry = KN_DELIVERY_DEFAULT_RETRY;
    spec->policy = KN_BACKOFF_EXPONENTIAL;
    spec->backoff_delay_ms = KN_DELIVERY_DEFAULT_DELAY_MS;
    spec->backoff_max_ms = KN_DELIVERY_UNSET;
    spec->timeout_ms = KN_DELIVERY_DEFAULT_TIMEOUT_MS;
    spec->retry_after_max_ms = KN_DELIVERY_DEFAULT_RETRY_AFTER_MAX_MS;
    spec->dead_letter_url = NULL;
    spec->format = KN_FORMAT_BINARY;
}

static int check_fail(kn_err *err, const char *field, const char *msg)
{
    kn_err_set(err, KN_INVAL, "%s", msg);
    if (err)
        snprintf(err->field, sizeof err->field, "%s", field);
    return KN_INVAL;
}

int kn_delivery_spec_check(const kn_delivery_spec *spec, kn_err *err)
{
    if (spec->retry < 0)
        return check_fail(err, "retry", "must be >= 0");
    if (spec->policy != KN_BACKOFF_EXPONENTIAL &&
        spec->policy != KN_BACKOFF_LINEAR)
        return check_fail(err, "backoffPolicy",
                          "must be linear or exponential");
    if (spec->backoff_delay_ms < 0)
        return check_fail(err, "backoffDelay", "must not be negative");
    if (spec->backoff_max_ms < KN_DELIVERY_UNSET)
        return check_fail(err, "backoffMax", "must not be negative");
    if (spec->timeout_ms < 0)
        return check_fail(err, "timeout", "must not be negative");
    if (spec->retry_after_max_ms < 0)
        return check_fail(err, "retryAfterMax", "must not be negative");
    if (spec->format != KN_FORMAT_BINARY && spec->format != KN_FORMAT_JSON)
        return check_fail(err, "format", "must be json or binary");
    if (spec->dead_letter_url && !spec->dead_letter_url[0])
        return check_fail(err, "deadLetterSink", "empty URL");
    return KN_OK;
}

int64_t kn_backoff_ms(const kn_delivery_spec *spec, int32_t n)
{
    int64_t d = spec->backoff_delay_ms, r;

    if (n <= 0 || d <= 0)
        return 0;
    if (spec->policy == KN_BACKOFF_LINEAR) {
        if (__builtin_mul_overflow(d, (int64_t)n, &r))
            r = INT64_MAX;
    } else {
        int shift = n - 1;
        if (shift >= 63 || d > (INT64_MAX >> shift))
            r = INT64_MAX;
        else
            r = d << shift;
    }
    if (spec->backoff_max_ms >= 0 && r > spec->backoff_max_ms)
        r = spec->backoff_max_ms;
    return r;
}

kn_attempt_class kn_delivery_classify(int http_code)
{
    if (http_code >= 200 && http_code < 300)
        return KN_ATTEMPT_SUCCESS;
    if (http_code < 100 || http_code >= 500)
        return KN_ATTEMPT_RETRY;   /* transport error, 5xx, >= 600 */
    switch (http_code) {
    case 404: case 408: case 409: case 429:
        return KN_ATTEMPT_RETRY;
    default:
        return KN_ATTEMPT_FAIL;    /* 1xx, 3xx, other 4xx */
    }
}

int64_t kn_retry_delay_ms(const kn_delivery_spec *spec, int32_t n,
                          int http_code, int64_t retry_after_ms)
{
    int64_t b = kn_backoff_ms(spec, n), ra;

    if ((http_code == 429 || http_code == 503) && retry_after_ms >= 0 &&
        spec->retry_after_max_ms > 0) {
        ra = retry_after_ms < spec->retry_after_max_ms
                 ? retry_after_ms : spec->retry_after_max_ms;
        return ra > b ? ra : b;
    }
    return b;
}

/* ------------------------------------------------------ Retry-After */

static const char *const month_names[12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};
static const char *const day_names[7] = {
    "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
};
static const char *const day_long[7] = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
    "Sunday",
};

/* A tiny cursor over the value being parsed. */
typedef struct scan {
    const char *p, *end;
} scan;

static bool sc_lit(scan *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || strncmp(s->p, lit, n) != 0)
        return false;
    s->p += n;
    return true;
}

/* Exactly `digits` digits (or 1..digits when `digits` < 0: -2 = 1 or 2). */
static bool sc_num(scan *s, int digits, int *out)
{
    int max = digits < 0 ? -digits : digits, n = 0, v = 0;
    while (n < max && s->p < s->end && isdigit((unsigned char)*s->p)) {
        v = v * 10 + (*s->p++ - '0');
        n++;
    }
    if (n == 0 || (digits > 0 && n != digits))
        return false;
    *out = v;
    return true;
}

static bool sc_name(scan *s, const char *const *names, int count, int *idx)
{
    for (int i = 0; i < count; i++) {
        if (sc_lit(s, names[i])) {
            *idx = i;
            return true;
        }
    }
    return false;
}

typedef struct hdate {
    int year, mon, day, hh, mm, ss;
} hdate;

static bool sc_clock(scan *s, hdate *d)
{
    return sc_num(s, 2, &d->hh) && sc_lit(s, ":") && sc_num(s, 2, &d->mm) &&
           sc_lit(s, ":") && sc_num(s, 2, &d->ss);
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static bool parse_imf(scan s, hdate *d)
{
    int wd;
    return sc_name(&s, day_names, 7, &wd) && sc_lit(&s, ", ") &&
           sc_num(&s, 2, &d->day) && sc_lit(&s, " ") &&
           sc_name(&s, month_names, 12, &d->mon) && sc_lit(&s, " ") &&
           sc_num(&s, 4, &d->year) && sc_lit(&s, " ") && sc_clock(&s, d) &&
           sc_lit(&s, " GMT") && s.p == s.end;
}

/* "Sunday, 06-Nov-94 08:49:37 GMT" */
static bool parse_rfc850(scan s, hdate *d)
{
    int wd;
    if (!(sc_name(&s, day_long, 7, &wd) && sc_lit(&s, ", ") &&
          sc_num(&s, 2, &d->day) && sc_lit(&s, "-") &&
          sc_name(&s, month_names, 12, &d->mon) && sc_lit(&s, "-") &&
          sc_num(&s, 2, &d->year) && sc_lit(&s, " ") && sc_clock(&s, d) &&
          sc_lit(&s, " GMT") && s.p == s.end))
        return false;
    d->year += d->year < 70 ? 2000 : 1900;
    return true;
}

/* "Sun Nov  6 08:49:37 1994" */
static bool parse_asctime(scan s, hdate *d)
{
    int wd;
    if (!(sc_name(&s, day_names, 7, &wd) && sc_lit(&s, " ") &&
          sc_name(&s, month_names, 12, &d->mon) && sc_lit(&s, " ")))
        return false;
    if (s.p < s.end && *s.p == ' ')
        s.p++;
    return sc_num(&s, -2, &d->day) && sc_lit(&s, " ") && sc_clock(&s, d) &&
           sc_lit(&s, " ") && sc_num(&s, 4, &d->year) && s.p == s.end;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (mon 0-based). */
static int64_t days_from_civil(int64_t y, int mon, int day)
{
    int m = mon + 1;
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool hdate_valid(const hdate *d)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    return d->day >= 1 && d->day <= mdays[d->mon] && d->hh < 24 &&
           d->mm < 60 && d->ss <= 60;
}

int kn_retry_after_parse(const char *value, size_t n, int64_t now_wall_ms,
                         int64_t *delay_ms)
{
    scan s = {value, value + n};
    hdate d;

    while (s.p < s.end && (*s.p == ' ' || *s.p == '\t'))
        s.p++;
    while (s.end > s.p && (s.end[-1] == ' ' || s.end[-1] == '\t'))
        s.end--;
    if (s.p == s.end)
        return KN_PARSE;
    if (isdigit((unsigned char)*s.p)) {
        int64_t secs = 0;
        bool big = false;
        for (const char *q = s.p; q < s.end; q++) {
            if (!isdigit((unsigned char)*q))
                return KN_PARSE;
            if (secs > INT64_MAX / 10000)
                big = true;     /* keeps scanning for garbage */
            else
                secs = secs * 10 + (*q - '0');
        }
        *delay_ms = big ? INT64_MAX : secs * 1000;
        return KN_OK;
    }
    memset(&d, 0, sizeof d);
    if (!parse_imf(s, &d) && !parse_rfc850(s, &d) && !parse_asctime(s, &d))
        return KN_PARSE;
    if (!hdate_valid(&d))
        return KN_PARSE;
    int64_t t = days_from_civil(d.year, d.mon, d.day) * 86400 +
                d.hh * 3600 + d.mm * 60 + d.ss;
    int64_t now_s = now_wall_ms / 1000;
    *delay_ms = t <= now_s ? 0 : (t - now_s) * 1000 - now_wall_ms % 1000;
    if (*delay_ms < 0)
        *delay_ms = 0;
    return KN_OK;
}

const char *kn_delivery_status_str(kn_delivery_status s)
{
    switch (s) {
    case KN_DELIVERY_DELIVERED: return "delivered";
    case KN_DELIVERY_DEAD_LETTERED: return "dead-lettered";
    case KN_DELIVERY_FAILED: return "failed";
    case KN_DELIVERY_CANCELLED: return "cancelled";
    }
    return "unknown";
}
