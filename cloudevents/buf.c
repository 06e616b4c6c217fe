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

int ce_buf_printf(ce_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || ce_buf_reserve(b, (size_t)n) != CE_OK)
        return CE_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CE_OK;
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
