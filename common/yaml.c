/*
 * yaml.c: YAML (libyaml event parser) → jansson trees, one per document,
 * with a side table mapping each node's JSON path to its 1-based line.
 *
 * Paths: object members are joined with '.', keys verbatim (no escaping:
 * "metadata.annotations.knit.dev/max-in-flight"), array items as "[i]";
 * the root is "". A member's line is the line of its key.
 *
 * Rules (each violation is KN_PARSE with where = "name:line" and, where it
 * applies, field = the path):
 * - scalar typing per YAML 1.2 core schema (yaml_scalar.c); quoted and
 *   block scalars are strings; the tags !!str !!int !!float !!bool !!null
 *   !!map !!seq and "!" are honoured, any other tag is rejected;
 * - mapping keys must be strings (not numbers, booleans, null, or
 *   collections), and unique; the YAML 1.1 merge key "<<" is rejected;
 * - anchors and aliases are supported: an alias is a deep copy of the
 *   anchored node; expansion is bounded (KN_YAML_MAX_ALIAS_NODES) and so
 *   is nesting (KN_YAML_MAX_DEPTH);
 * - empty documents (and documents that are just null) are skipped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/common.h"
#include "common/internal.h"

#define KN_YAML_MAX_DEPTH 256
#define KN_YAML_MAX_ALIAS_NODES 100000
#define YAML_TAG(x) "tag:yaml.org,2002:" x

typedef struct frame {
    json_t *node;     /* borrowed: owned by the parent or the doc root */
    bool is_map;
    size_t path_len;  /* length of this node's path */
    char *key;        /* pending key of a mapping (malloc'd) */
    int key_line;
    size_t index;     /* next index of a sequence */
    char *anchor;     /* to register when the node ends (malloc'd) */
    size_t nodes;     /* nodes in this subtree */
    int height;       /* nesting levels in this subtree (1 = leaf) */
} frame;

typedef struct loader {
    const char *name;
    kn_err *err;
    frame *stack;
    size_t depth, cap;
    ce_buf path;
    json_t *root, *lines;
    json_t *anchors;      /* name -> [node, nodes, height] */
    size_t alias_nodes;
    int doc_line;
    kn_yaml_doc *docs;
    size_t ndocs, capdocs;
} loader;

static int fail_at(loader *ld, int status, int line, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail_at(loader *ld, int status, int line, const char *field,
                   const char *fmt, ...)
{
    kn_err *err = ld->err;
    if (!err)
        return status;
    err->status = status;
    snprintf(err->where, sizeof err->where, "%s:%d", ld->name, line);
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return status;
}

static int nomem(loader *ld, int line)
{
    return fail_at(ld, KN_NOMEM, line, NULL, "out of memory");
}

static frame *top(loader *ld)
{
    return ld->depth ? &ld->stack[ld->depth - 1] : NULL;
}

static void path_truncate(loader *ld, size_t len)
{
    ld->path.len = len;
    if (ld->path.data)
        ld->path.data[len] = '\0';
}

static const char *path_str(loader *ld)
{
    return ld->path.data ? ld->path.data : "";
}

/* Appends the child segment for the next node under the top frame. */
static int path_push_child(loader *ld, frame *t)
{
    if (!t)
        return ce_buf_append(&ld->path, "", 0);
    path_truncate(ld, t->path_len);
    if (t->is_map)
        return ce_buf_printf(&ld->path, "%s%s", t->path_len ? "." : "",
                             t->key);
    return ce_buf_printf(&ld->path, "[%zu]", t->index);
}

/* Records the line of the node at the current path and inserts node (a
 * new reference, consumed) into the parent or as the document root. */
static int place(loader *ld, json_t *node, int line, size_t nodes, int height)
{
    frame *t = top(ld);
    if (path_push_child(ld, t) != 0) {
        json_decref(node);
        return nomem(ld, line);
    }
    int rc = 0;
    if (t && t->is_map)
        line = t->key_line;
    if (json_object_set_new(ld->lines, path_str(ld), json_integer(line)))
        rc = -1;
    if (!t) {
        ld->root = node;
    } else if (t->is_map) {
        rc |= json_object_set_new(t->node, t->key, node);
        free(t->key);
        t->key = NULL;
    } else {
        rc |= json_array_append_new(t->node, node);
        t->index++;
    }
    if (t) {
        t->nodes += nodes;
        if (height + 1 > t->height)
            t->height = height + 1;
    }
    return rc ? nomem(ld, line) : KN_OK;
}

static int anchor_register(loader *ld, const char *name, json_t *node,
                           size_t nodes, int height, int line)
{
    json_t *rec = json_pack("[OII]", node, (json_int_t)nodes,
                            (json_int_t)height);
    if (!rec || json_object_set_new(ld->anchors, name, rec) != 0)
        return nomem(ld, line);
    return KN_OK;
}

/* A scalar in key position: must resolve to a string without NUL. */
static int take_key(loader *ld, frame *t, json_t *v, int line,
                    const char *shown)
{
    char where[1024];
    size_t base = t->path_len;
    snprintf(where, sizeof where, "%.*s", (int)base, path_str(ld));
    if (!json_is_string(v)) {
        json_decref(v);
        return fail_at(ld, KN_PARSE, line, where, "mapping key %s is not a "
                       "string (quote it)", shown);
    }
    const char *k = json_string_value(v);
    if (strlen(k) != json_string_length(v)) {
        json_decref(v);
        return fail_at(ld, KN_PARSE, line, where, "mapping key contains a "
                       "NUL character");
    }
    if (json_object_get(t->node, k)) {
        ce_buf p = CE_BUF_INIT;
        if (ce_buf_printf(&p, "%.*s%s%s", (int)base, path_str(ld),
                          base ? "." : "", k) != 0) {
            json_decref(v);
            return nomem(ld, line);
        }
        json_int_t first = json_integer_value(json_object_get(ld->lines,
                                                              p.data));
        fail_at(ld, KN_PARSE, line, p.data, "duplicate key \"%.200s\" "
                "(first defined at line %lld)", k, (long long)first);
        free(p.data);
        json_decref(v);
        return KN_PARSE;
    }
    t->key = strdup(k);
    t->key_line = line;
    json_decref(v);
    return t->key ? KN_OK : nomem(ld, line);
}

static bool tag_is(const yaml_char_t *tag, const char *full)
{
    return tag && strcmp((const char *)tag, full) == 0;
}

/* Converts a scalar event to a JSON value honouring style and tag. */
static int scalar_value(loader *ld, const yaml_event_t *ev, json_t **out)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const yaml_char_t *tag = ev->data.scalar.tag;
    int line = (int)ev->start_mark.line + 1;
    char why[256] = "";
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if ((!tag && !plain) || tag_is(tag, "!") || tag_is(tag, YAML_TAG("str"))) {
        *out = json_stringn(s, n);
        if (!*out)
            return nomem(ld, line); /* libyaml output is valid UTF-8 */
        return KN_OK;
    }
    int rc = kn__yaml_resolve_plain(s, n, out, why, sizeof why);
    if (rc == KN_NOMEM)
        return nomem(ld, line);
    if (rc != KN_OK)
        return fail_at(ld, rc, line, path_str(ld), "%s", why);
    if (!tag)
        return KN_OK;
    const char *want = NULL;
    bool ok = false;
    if (tag_is(tag, YAML_TAG("int")))
        ok = json_is_integer(*out), want = "an integer";
    else if (tag_is(tag, YAML_TAG("float")))
        ok = json_is_number(*out), want = "a float";
    else if (tag_is(tag, YAML_TAG("bool")))
        ok = json_is_boolean(*out), want = "a boolean";
    else if (tag_is(tag, YAML_TAG("null")))
        ok = json_is_null(*out), want = "null";
    if (json_is_integer(*out) && tag_is(tag, YAML_TAG("float"))) {
        json_t *r = json_real((double)json_integer_value(*out));
        json_decref(*out);
        *out = r;
        if (!r)
            return nomem(ld, line);
    }
    if (ok)
        return KN_OK;
    json_decref(*out);
    *out = NULL;
    if (want)
        return fail_at(ld, KN_PARSE, line, path_str(ld), "value \"%.*s\" "
                       "tagged %s "
                       "is not %s", (int)(n > 60 ? 60 : n), s,
                       (const char *)tag, want);
    return fail_at(ld, KN_PARSE, line, path_str(ld), "unsupported tag "
                   "%.100s", (const char *)tag);
}

static int on_scalar(loader *ld, const yaml_event_t *ev)
{
    int line = (int)ev->start_mark.line + 1;
    frame *t = top(ld);
    json_t *v = NULL;
    bool is_key = t && t->is_map && !t->key;
    /* Errors about a value name its own path, key errors the parent's. */
    if (is_key)
        path_truncate(ld, t->path_len);
    else if (path_push_child(ld, t) != 0)
        return nomem(ld, line);
    int rc = scalar_value(ld, ev, &v);
    if (rc != KN_OK)
        return rc;
    if (is_key) {
        const char *s = (const char *)ev->data.scalar.value;
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.
            scalar.tag && strcmp(s, "<<") == 0) {
            json_decref(v);
            return fail_at(ld, KN_PARSE, line, path_str(ld), "merge keys "
                           "(<<) are not supported; repeat the fields");
        }
        char shown[80];
        snprintf(shown, sizeof shown, "\"%.60s\"", s);
        return take_key(ld, t, v, line, shown);
    }
    const char *anchor = (const char *)ev->data.scalar.anchor;
    if (anchor && anchor_register(ld, anchor, v, 1, 1, line) != KN_OK) {
        json_decref(v);
        return KN_NOMEM;
    }
    return place(ld, v, line, 1, 1);
}

static int on_alias(loader *ld, const yaml_event_t *ev)
{
    int line = (int)ev->start_mark.line + 1;
    const char *name = (const char *)ev->data.alias.anchor;
    json_t *rec = json_object_get(ld->anchors, name);
    frame *t = top(ld);
    bool is_key = t && t->is_map && !t->key;
    if (is_key)
        path_truncate(ld, t->path_len);
    else if (path_push_child(ld, t) != 0)
        return nomem(ld, line);
    if (!rec)
        return fail_at(ld, KN_PARSE, line, path_str(ld), "alias *%.100s "
                       "refers to no complete anchor above it", name);
    json_t *node = json_array_get(rec, 0);
    size_t nodes = (size_t)json_integer_value(json_array_get(rec, 1));
    int height = (int)json_integer_value(json_array_get(rec, 2));
    if (is_key) {
        if (!json_is_string(node))
            return fail_at(ld, KN_PARSE, line, path_str(ld), "alias *%.100s "
                           "used as a mapping key is not a string", name);
        char shown[128];
        snprintf(shown, sizeof shown, "*%.100s", name);
        return take_key(ld, t, json_incref(node), line, shown);
    }
    ld->alias_nodes += nodes;
    if (ld->alias_nodes > KN_YAML_MAX_ALIAS_NODES)
        return fail_at(ld, KN_PARSE, line, path_str(ld), "aliases expand to "
                       "more than %d nodes", KN_YAML_MAX_ALIAS_NODES);
    if (ld->depth + (size_t)height > KN_YAML_MAX_DEPTH)
        return fail_at(ld, KN_PARSE, line, path_str(ld), "alias *%.100s "
                       "nests deeper than %d levels", name,
                       KN_YAML_MAX_DEPTH);
    json_t *copy = json_deep_copy(node);
    if (!copy)
        return nomem(ld, line);
    return place(ld, copy, line, nodes, height);
}

static int on_collection_start(loader *ld, const yaml_event_t *ev, bool map)
{
    int line = (int)ev->start_mark.line + 1;
    frame *t = top(ld);
    if (t)
        path_truncate(ld, t->path_len);
    if (t && t->is_map && !t->key)
        return fail_at(ld, KN_PARSE, line, path_str(ld), "mapping keys must "
                       "be strings, not %s", map ? "mappings" : "sequences");
    if (path_push_child(ld, t) != 0)
        return nomem(ld, line);
    const yaml_char_t *tag = map ? ev->data.mapping_start.tag
                                 : ev->data.sequence_start.tag;
    if (tag && !tag_is(tag, map ? YAML_TAG("map") : YAML_TAG("seq")) &&
        !tag_is(tag, "!"))
        return fail_at(ld, KN_PARSE, line, path_str(ld), "unsupported tag "
                       "%.100s", (const char *)tag);
    if (ld->depth >= KN_YAML_MAX_DEPTH)
        return fail_at(ld, KN_PARSE, line, path_str(ld), "nesting deeper "
                       "than %d levels", KN_YAML_MAX_DEPTH);
    if (ld->depth == ld->cap) {
        size_t cap = ld->cap ? ld->cap * 2 : 16;
        frame *s = realloc(ld->stack, cap * sizeof *s);
        if (!s)
            return nomem(ld, line);
        ld->stack = s;
        ld->cap = cap;
    }
    json_t *node = map ? json_object() : json_array();
    if (!node)
        return nomem(ld, line);
    int rc = place(ld, node, line, 0, 0);
    if (rc != KN_OK)
        return rc;
    const yaml_char_t *anchor = map ? ev->data.mapping_start.anchor
                                    : ev->data.sequence_start.anchor;
    frame *f = &ld->stack[ld->depth++];
    *f = (frame){.node = node, .is_map = map, .path_len = ld->path.len,
                 .nodes = 1, .height = 1};
    if (anchor && !(f->anchor = strdup((const char *)anchor)))
        return nomem(ld, line);
    return KN_OK;
}

static int on_collection_end(loader *ld, const yaml_event_t *ev)
{
    int line = (int)ev->start_mark.line + 1;
    frame f = ld->stack[--ld->depth];
    int rc = KN_OK;
    if (f.anchor)
        rc = anchor_register(ld, f.anchor, f.node, f.nodes, f.height, line);
    free(f.anchor);
    free(f.key);
    frame *t = top(ld);
    if (t) {
        t->nodes += f.nodes;
        if (f.height + 1 > t->height)
            t->height = f.height + 1;
        path_truncate(ld, t->path_len);
    } else {
        path_truncate(ld, 0);
    }
    return rc;
}

static void doc_reset(loader *ld)
{
    while (ld->depth) {
        frame *f = &ld->stack[--ld->depth];
        free(f->anchor);
        free(f->key);
    }
    json_decref(ld->root);
    json_decref(ld->lines);
    json_decref(ld->anchors);
    ld->root = ld->lines = ld->anchors = NULL;
    path_truncate(ld, 0);
}

static int on_doc_start(loader *ld, const yaml_event_t *ev)
{
    doc_reset(ld);
    ld->doc_line = (int)ev->start_mark.line + 1;
    ld->lines = json_object();
    ld->anchors = json_object();
    return ld->lines && ld->anchors ? KN_OK : nomem(ld, ld->doc_line);
}

static int on_doc_end(loader *ld)
{
    if (!ld->root || json_is_null(ld->root)) {
        doc_reset(ld);
        return KN_OK;
    }
    if (ld->ndocs == ld->capdocs) {
        size_t cap = ld->capdocs ? ld->capdocs * 2 : 4;
        kn_yaml_doc *d = realloc(ld->docs, cap * sizeof *d);
        if (!d)
            return nomem(ld, ld->doc_line);
        ld->docs = d;
        ld->capdocs = cap;
    }
    ld->docs[ld->ndocs++] = (kn_yaml_doc){ld->root, ld->doc_line, ld->lines};
    ld->root = ld->lines = NULL;
    doc_reset(ld);
    return KN_OK;
}

static int on_event(loader *ld, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        return on_doc_start(ld, ev);
    case YAML_DOCUMENT_END_EVENT:
        return on_doc_end(ld);
    case YAML_SCALAR_EVENT:
        return on_scalar(ld, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(ld, ev);
    case YAML_MAPPING_START_EVENT:
        return on_collection_start(ld, ev, true);
    case YAML_SEQUENCE_START_EVENT:
        return on_collection_start(ld, ev, false);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        return on_collection_end(ld, ev);
    default:
        return KN_OK;
    }
}

static int parser_error(loader *ld, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return nomem(ld, (int)p->problem_mark.line + 1);
    const char *problem = p->problem ? p->problem : "malformed YAML";
    int line = (int)p->problem_mark.line + 1;
    if (p->context)
        return fail_at(ld, KN_PARSE, line, NULL, "%s (%s at line %d)",
                       problem, p->context, (int)p->context_mark.line + 1);
    return fail_at(ld, KN_PARSE, line, NULL, "%s", problem);
}

void kn_yaml_docs_free(kn_yaml_doc *docs, size_t count)
{
    for (size_t i = 0; docs && i < count; i++) {
        json_decref(docs[i].root);
        json_decref(docs[i].lines);
    }
    free(docs);
}

/* See common.h. The caller owns *docs (kn_yaml_docs_free). On error
 * nothing is returned (*docs = NULL, *count = 0). Any thread. */
int kn_yaml_load(const char *name, const char *buf, size_t n,
                 kn_yaml_doc **docs, size_t *count, kn_err *err)
{
    loader ld = {.name = name ? name : "<input>", .err = err};
    yaml_parser_t parser;
    *docs = NULL;
    *count = 0;
    if (!yaml_parser_initialize(&parser))
        return kn_err_set(err, KN_NOMEM, "out of memory");
    if (!buf) {
        buf = "";
        n = 0;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, n);
    int rc = KN_OK;
    for (bool done = false; !done && rc == KN_OK;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = parser_error(&ld, &parser);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(&ld, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    doc_reset(&ld);
    free(ld.stack);
    free(ld.path.data);
    if (rc != KN_OK || ld.ndocs > INT32_MAX) {
        kn_yaml_docs_free(ld.docs, ld.ndocs);
        return rc != KN_OK ? rc : kn_err_set(err, KN_TOOBIG, "too many "
                                             "documents");
    }
    *docs = ld.docs;
    *count = ld.ndocs;
    return (int)ld.ndocs;
}

int kn_yaml_line(const kn_yaml_doc *doc, const char *path)
{
    if (!doc || !doc->lines)
        return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path ? path : "");
    for (;;) {
        json_t *v = json_object_get(doc->lines, buf);
        if (v)
            return (int)json_integer_value(v);
        if (!buf[0])
            return doc->line;
        char *dot = strrchr(buf, '.'), *br = strrchr(buf, '[');
        char *cut = dot > br ? dot : br;
        if (!cut)
            cut = buf;
        *cut = '\0';
    }
}
