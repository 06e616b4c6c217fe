/*
 * status.c: the kn status table (text and retriable flag per code, from the
 * KN_STATUS_MAP X-macro), the mapping from ce_code, and kn_err helpers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"

static const struct {
    const char *text;
    bool retriable;
} status_table[] = {
#define KN_X_ROW(name, text, retry) {text, retry},
    KN_STATUS_MAP(KN_X_ROW)
#undef KN_X_ROW
};

_Static_assert(sizeof status_table / sizeof status_table[0] ==
                   KN__STATUS_COUNT,
               "status table matches the enum");

static bool status_index(int status, int *idx)
{
    if (status > 0 || status <= -(int)KN__STATUS_COUNT)
        return false;
    *idx = -status;
    return true;
}

/* Text for a status; "unknown status" for values outside the table.
 * Thread-safe; the string is static. */
const char *kn_status_str(int status)
{
    int idx;
    return status_index(status, &idx) ? status_table[idx].text
                                      : "unknown status";
}

/* True when an operation that failed with `status` may succeed later
 * unchanged (AGAIN, NOMEM, IO, NOSPACE, TIMEOUT, UNAVAILABLE). */
bool kn_status_retriable(int status)
{
    int idx;
    return status_index(status, &idx) && status_table[idx].retriable;
}

int kn_status_from_ce(int code)
{
    switch (code) {
    case CE_OK:
        return KN_OK;
    case CE_ENOMEM:
        return KN_NOMEM;
    case CE_EINVAL:
    case CE_ERANGE:
        return KN_INVAL;
    case CE_EPARSE:
        return KN_PARSE;
    case CE_EUNSUPPORTED:
        return KN_UNSUPPORTED;
    case CE_ENOTFOUND:
        return KN_NOTFOUND;
    case CE_EFROZEN:
    default:
        return KN_INTERNAL;
    }
}

/* Sets err->status and err->msg (printf-style); where and field are left
 * as they are (callers fill them, or use kn_err_set_at). NULL err is
 * allowed. Returns status so callers can `return kn_err_set(...)`. */
int kn_err_set(kn_err *err, int status, const char *fmt, ...)
{
    if (!err)
        return status;
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return status;
}

int kn_err_set_at(kn_err *err, int status, const char *where,
                  const char *field, const char *fmt, ...)
{
    if (!err)
        return status;
    err->status = status;
    snprintf(err->where, sizeof err->where, "%s", where ? where : "");
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return status;
}

void kn_err_clear(kn_err *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

const char *kn_err_str(const kn_err *err, char *buf, size_t n)
{
    if (!buf || n == 0)
        return "";
    if (!err) {
        snprintf(buf, n, "%s", "no error");
        return buf;
    }
    const char *msg = err->msg[0] ? err->msg : kn_status_str(err->status);
    const char *w = err->where, *f = err->field;
    snprintf(buf, n, "%s%s%s%s%s", w, w[0] ? ": " : "", f, f[0] ? ": " : "",
             msg);
    return buf;
}
