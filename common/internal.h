/*
 * common/internal.h: helpers private to libknit-common. Not part of the
 * public contract; other modules use common/common.h.
 */
#ifndef KNIT_COMMON_INTERNAL_H
#define KNIT_COMMON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cloudevents/cloudevents.h"

/* YAML 1.2 core-schema typing of plain scalars (yaml_scalar.c). */
int kn__yaml_resolve_plain(const char *s, size_t n, json_t **out, char *why,
                           size_t whyn);
bool kn__yaml_plain_is_string(const char *s, size_t n);

#endif /* KNIT_COMMON_INTERNAL_H */
