/*
 * yaml_emit.c: JSON tree → YAML text (block style) through libyaml's
 * emitter, for `knit get -o yaml`. Strings that would load back as another
 * type under the core schema ("true", "1.5", "null", "", "~", "<<", …) are
 * single-quoted; multi-line strings use literal block style when libyaml
 * allows it. kn_yaml_load(kn_yaml_emit(x)) equals x for every tree whose
 * root is not null.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/common.h"
#include "common/internal.h"

#define EMIT_MAX_DEPTH 1024

static int write_cb(void *data, unsigned char *buf, size_t size)
{
    return ce_buf_append(data, buf, size) == 0;
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev, int init_ok)
{
    if (!init_ok)
        return KN_NOMEM;
    return yaml_emitter_emit(em, ev) ? KN_OK : KN_INVAL;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, size_t n,
                       bool is_string)
{
    yaml_event_t ev;
    yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
    int plain_ok = 1;
    if (is_string) {
        plain_ok = kn__yaml_plain_is_string(s, n);
        if (memchr(s, '\n', n))
            style = YAML_LITERAL_SCALAR_STYLE;
    }
    /* With no tag and plain_implicit = 0, libyaml picks a quoted style. */
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL,
                                          (yaml_char_t *)(uintptr_t)s,
                                          (int)n, plain_ok, 1, style);
    return emit(em, &ev, ok);
}

static int format_real(double d, char *buf, size_t n)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!strpbrk(buf, ".eE"))
        strncat(buf, ".0", n - strlen(buf) - 1);
    return (int)strlen(buf);
}

static int emit_node(yaml_emitter_t *em, const json_t *v, int depth);

static int emit_object(yaml_emitter_t *em, const json_t *v, int depth)
{
    yaml_event_t ev;
    int rc = emit(em, &ev, yaml_mapping_start_event_initialize(
                               &ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)(uintptr_t)v, key, val) {
        if (rc == KN_OK)
            rc = emit_scalar(em, key, strlen(key), true);
        if (rc == KN_OK)
            rc = emit_node(em, val, depth + 1);
    }
    if (rc == KN_OK)
        rc = emit(em, &ev, yaml_mapping_end_event_initialize(&ev));
    return rc;
}

static int emit_array(yaml_emitter_t *em, const json_t *v, int depth)
{
    yaml_event_t ev;
    int rc = emit(em, &ev, yaml_sequence_start_event_initialize(
                               &ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
    for (size_t i = 0; rc == KN_OK && i < json_array_size(v); i++)
        rc = emit_node(em, json_array_get(v, i), depth + 1);
    if (rc == KN_OK)
        rc = emit(em, &ev, yaml_sequence_end_event_initialize(&ev));
    return rc;
}

static int emit_node(yaml_emitter_t *em, const json_t *v, int depth)
{
    char num[64];
    if (depth > EMIT_MAX_DEPTH)
        return KN_TOOBIG;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return emit_object(em, v, depth);
    case JSON_ARRAY:
        return emit_array(em, v, depth);
    case JSON_STRING:
        return emit_scalar(em, json_string_value(v), json_string_length(v),
                           true);
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
        return emit_scalar(em, num, (size_t)n, false);
    }
    case JSON_REAL: {
        int n = format_real(json_real_value(v), num, sizeof num);
        return emit_scalar(em, num, (size_t)n, false);
    }
    case JSON_TRUE:
        return emit_scalar(em, "true", 4, false);
    case JSON_FALSE:
        return emit_scalar(em, "false", 5, false);
    case JSON_NULL:
        return emit_scalar(em, "null", 4, false);
    }
    return KN_INVAL;
}

/* Appends root as one YAML document (no "---" marker) to out. KN_INVAL if
 * libyaml rejects the content (e.g. a string that is not UTF-8), KN_TOOBIG
 * beyond EMIT_MAX_DEPTH levels of nesting, KN_NOMEM. On error out may hold
 * a partial document. Any thread. */
int kn_yaml_emit(const json_t *root, ce_buf *out)
{
    if (!root || !out)
        return KN_INVAL;
    yaml_emitter_t em;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&em))
        return KN_NOMEM;
    yaml_emitter_set_output(&em, write_cb, out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_indent(&em, 2);
    yaml_emitter_set_width(&em, -1);
    int rc = emit(&em, &ev, yaml_stream_start_event_initialize(
                               &ev, YAML_UTF8_ENCODING));
    if (rc == KN_OK)
        rc = emit(&em, &ev, yaml_document_start_event_initialize(
                                &ev, NULL, NULL, NULL, 1));
    if (rc == KN_OK)
        rc = emit_node(&em, root, 0);
    if (rc == KN_OK)
        rc = emit(&em, &ev, yaml_document_end_event_initialize(&ev, 1));
    if (rc == KN_OK)
        rc = emit(&em, &ev, yaml_stream_end_event_initialize(&ev));
    if (rc == KN_OK && !yaml_emitter_flush(&em))
        rc = KN_NOMEM;
    yaml_emitter_delete(&em);
    return rc;
}
