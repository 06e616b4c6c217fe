/*
 * buf.c: minimal growable-buffer helpers used inside libknit-common (see
 * internal.h). They operate on the public ce_buf struct so buffers handed
 * back to callers can be freed with ce_buf_free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"

static int buf_grow(ce_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return -1;
    size_t need = b->len + extra + 1;
    if (b->data && need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

/* Ensures room for `extra` more bytes plus the NUL. */
int kn__buf_reserve(ce_buf *b, size_t extra)
{
    if (buf_grow(b, extra) != 0)
        return -1;
    b->data[b->len] = '\0';
    return 0;
}

int kn__buf_append(ce_buf *b, const void *p, size_t n)
{
    if (buf_grow(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int kn__buf_puts(ce_buf *b, const char *s)
{
    return kn__buf_append(b, s, strlen(s));
}

int kn__buf_vprintf(ce_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return kn__buf_append(b, small, (size_t)n);
    if (buf_grow(b, (size_t)n) != 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int kn__buf_printf(ce_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = kn__buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}
