/*
 * time.c: monotonic and wall clocks, and RFC 3339 timestamps as int64
 * nanoseconds since the Unix epoch (UTC). The calendar work is the
 * CloudEvents library's (ce_time_parse, ce_time_format_utc); this file
 * adds what knit's callers rely on: a fixed nine-digit fraction when
 * formatting, at most nine fractional digits and the int64-ns range when
 * parsing, and its own wording of errors.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/common.h"

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

void kn_deadline_ms(struct timespec *ts, clockid_t clock, int64_t ms)
{
    clock_gettime(clock, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= NS_PER_SEC) {
        ts->tv_sec++;
        ts->tv_nsec -= NS_PER_SEC;
    } else if (ts->tv_nsec < 0) { /* ms < 0: in the past */
        ts->tv_sec--;
        ts->tv_nsec += NS_PER_SEC;
    }
}

/* Always "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (fixed width, so values sort as
 * text; int64 nanoseconds always have a 4-digit year, which
 * ce_time_format_utc writes without snprintf: this runs for every
 * ingested event). Returns the length written (30). */
size_t kn_time_format_ns(int64_t wall_ns, char *buf)
{
    int64_t sec = wall_ns / NS_PER_SEC, ns = wall_ns % NS_PER_SEC;
    if (ns < 0) {
        ns += NS_PER_SEC;
        sec--;
    }
    ce_time t = {sec, (int32_t)ns, 0};
    size_t len = ce_time_format_utc(&t, buf);
    if (ns == 0 && len > 0) { /* ce writes no fraction for whole seconds */
        memcpy(buf + len - 1, ".000000000Z", sizeof ".000000000Z");
        len += 10;
    }
    return len;
}

static int bad_time(kn_err *err, const char *s, const char *why)
{
    return kn_err_set(err, KN_INVAL, "invalid RFC 3339 timestamp \"%.64s\": "
                      "%s", s, why);
}

/* True when s starts with "YYYY-MM-DDTHH:MM:SS" and goes on after it. */
static bool date_time_shape(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd";
    for (size_t k = 0; k < sizeof pat - 1; k++) {
        bool ok = pat[k] == 'd' ? s[k] >= '0' && s[k] <= '9'
                                : s[k] == pat[k] || (k == 10 && s[k] == 't');
        if (!ok)
            return false;
    }
    return s[19] != '\0';
}

/* Parses RFC 3339 date-time ("T"/"Z" in either case, optional fraction of
 * up to 9 digits, leap second 60 read as :59.999999999) into ns since the
 * epoch in UTC. KN_INVAL with a message naming the problem; range is
 * what int64 ns can hold (1677-09-21 to 2262-04-11). */
int kn_time_parse_ns(const char *s, int64_t *ns_out, kn_err *err)
{
    if (!s)
        return kn_err_set(err, KN_INVAL, "missing timestamp");
    if (!date_time_shape(s))
        return bad_time(err, s, "expected YYYY-MM-DDTHH:MM:SS[.frac]Z or "
                        "an offset");
    if (s[19] == '.' && strspn(s + 20, "0123456789") > 9)
        return bad_time(err, s, "more than 9 fractional digits");
    ce_time ct;
    ce_err cerr;
    if (ce_time_parse(s, strlen(s), &ct, &cerr) != CE_OK) {
        const char *why = strstr(cerr.msg, ": "); /* after ce's prefix */
        return bad_time(err, s, why ? why + 2 : cerr.msg);
    }
    int64_t t = ct.sec, ns = ct.nsec, out;
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
