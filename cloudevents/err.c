/*
 * Error detail for libknit-cloudevents: ce_err_set fills the caller's
 * optional ce_err (code, attribute at fault, message, byte offset) and
 * returns the code, so failing paths read `return ce_err_set(...)`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cloudevents/cloudevents.h"

/* Thread: any. Never fails; a NULL err only returns the code. */
int ce_err_set(ce_err *err, ce_code code, const char *attr, long offset,
               const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    err->offset = offset;
    snprintf(err->attr, sizeof err->attr, "%s", attr ? attr : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

/* Static text for a code; never NULL. */
const char *ce_code_str(ce_code code)
{
    switch (code) {
    case CE_OK: return "ok";
    case CE_ENOMEM: return "out of memory";
    case CE_EINVAL: return "invalid event";
    case CE_EPARSE: return "malformed input";
    case CE_EUNSUPPORTED: return "unsupported";
    case CE_EFROZEN: return "event is frozen";
    case CE_ENOTFOUND: return "not found";
    case CE_ERANGE: return "out of range";
    }
    return "unknown error";
}
