/*
 * ce_buf: a growable, always NUL-terminated byte buffer. Not thread-safe;
 * one owner at a time. Every appending function returns CE_OK or
 * CE_ENOMEM and leaves the buffer unchanged on failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevents/cloudevents.h"

/* Makes room for `extra` more bytes plus the terminating NUL. */
int ce_buf_reserve(ce_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return CE_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return CE_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return CE_ENOMEM;
    b->data = p;
    b->cap = cap;
    return CE_OK;
}

int ce_buf_append(ce_buf *b, const void *p, size_t n)
{
    if (ce_buf_reserve(b, n) != CE_OK)
        return CE_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CE_OK;
}

int ce_buf_puts(ce_buf *b, const char *s)
{
    return ce_buf_append(b, s, strlen(s));
}

/* Formats short output (under 256 bytes) in one vsnprintf pass through a
 * stack buffer; longer output is measured first, then written in place. */
int ce_buf_vprintf(ce_buf *b, const char *fmt, va_list ap)
{
    char small[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return CE_ENOMEM;
    if ((size_t)n < sizeof small)
        return ce_buf_append(b, small, (size_t)n);
    if (ce_buf_reserve(b, (size_t)n) != CE_OK)
        return CE_ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return CE_OK;
}

int ce_buf_printf(ce_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ce_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void ce_buf_reset(ce_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void ce_buf_free(ce_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
