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

/* Days since 1970-01-01 of a proleptic Gregorian civil date, and back. */
int64_t kn__days_from_civil(int64_t y, unsigned m, unsigned d);
void kn__civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* YAML 1.2 core-schema typing of plain scalars (yaml_scalar.c). */
int kn__yaml_resolve_plain(const char *s, size_t n, json_t **out, char *why,
                           size_t whyn);
bool kn__yaml_plain_is_string(const char *s, size_t n);

#endif /* KNIT_COMMON_INTERNAL_H */
