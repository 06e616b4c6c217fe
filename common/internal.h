/*
 * common/internal.h: helpers private to libknit-common. Not part of the
 * public contract; other modules use common/common.h.
 */
#ifndef KNIT_COMMON_INTERNAL_H
#define KNIT_COMMON_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloudevents/cloudevents.h"

/* Append helpers on a ce_buf (malloc'd storage, always NUL-terminated, so
 * the result may be released with ce_buf_free or free(b->data)). They do
 * not depend on libknit-cloudevents' implementation. Return 0 or -1 when
 * memory runs out (the buffer is then unchanged). */
int kn__buf_reserve(ce_buf *b, size_t extra);
int kn__buf_append(ce_buf *b, const void *p, size_t n);
int kn__buf_puts(ce_buf *b, const char *s);
int kn__buf_vprintf(ce_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
int kn__buf_printf(ce_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Days since 1970-01-01 of a proleptic Gregorian civil date, and back. */
int64_t kn__days_from_civil(int64_t y, unsigned m, unsigned d);
void kn__civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* YAML 1.2 core-schema typing of plain scalars (yaml_scalar.c). */
int kn__yaml_resolve_plain(const char *s, size_t n, json_t **out, char *why,
                           size_t whyn);
bool kn__yaml_plain_is_string(const char *s, size_t n);

#endif /* KNIT_COMMON_INTERNAL_H */
