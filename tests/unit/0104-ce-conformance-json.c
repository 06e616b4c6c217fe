/*
 * Conformance replay through the JSON format: every YAML document of
 * cloudevents-conformance/yaml/v1.0/ *.yaml and yaml/v1.yaml (and, through
 * ce_event_upgrade_03, the 0.3 files) under $KNIT_SHARED_DIR/conformance
 * (fallback $KNIT_SOURCE_DIR/../shared) becomes an event:
 * - the event is built from ContextAttributes, Extensions (strings) and
 *   Data. Attribute values are whitespace-trimmed as an HTTP header value
 *   would be (YAML block scalars end in a newline a header cannot carry).
 * - structured-mode documents: the JSON object the conformance tool would
 *   send (attributes and extensions as strings, "data" = Data as a JSON
 *   value) is decoded, encoded and decoded again; both decodes must be
 *   equal, equal to the built event, and the encoding must be stable.
 * - binary-mode documents: the built event is encoded to JSON and decoded
 *   back and must be equal to it, except that JSON data is compacted (the
 *   JSON format keeps the value, not its insignificant whitespace).
 * libyaml is used directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <yaml.h>

#include "cloudevents/ce_int.h"

static char shared_dir[1024];
static int docs_seen, docs_03;

static const char *scalar(yaml_document_t *d, yaml_node_t *n)
{
    (void)d;
    return n && n->type == YAML_SCALAR_NODE
           ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *lookup(yaml_document_t *d, yaml_node_t *map,
                           const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        const char *k = scalar(d, yaml_document_get_node(d, p->key));
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* Value with surrounding whitespace removed, as a header would carry it. */
static void trim(const char *s, const char **out, size_t *n)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r' ||
                 s[l - 1] == '\n'))
        l--;
    *out = s;
    *n = l;
}

/* Calls fn(name, value, n) for every attribute and extension. */
typedef void (*attr_fn)(void *ctx, const char *name, const char *v,
                        size_t n);

static void each_attr(yaml_document_t *d, yaml_node_t *ca, attr_fn fn,
                      void *ctx)
{
    assert_non_null(ca);
    assert_int_equal(ca->type, YAML_MAPPING_NODE);
    for (yaml_node_pair_t *p = ca->data.mapping.pairs.start;
         p < ca->data.mapping.pairs.top; p++) {
        const char *k = scalar(d, yaml_document_get_node(d, p->key));
        yaml_node_t *vn = yaml_document_get_node(d, p->value);
        assert_non_null(k);
        if (strcmp(k, "Extensions") == 0) {
            each_attr(d, vn, fn, ctx);
            continue;
        }
        const char *v = scalar(d, vn);
        size_t n;
        if (!v)
            fail_msg("attribute %s is not a scalar", k);
        trim(v, &v, &n);
        if (n) /* the tool leaves empty attributes out */
            fn(ctx, k, v, n);
    }
}

static void set_attr(void *ctx, const char *name, const char *v, size_t n)
{
    ce_err err;
    if (ce_event_set(ctx, name, v, n, CE_TYPE_STRING, &err) != CE_OK)
        fail_msg("set %s: %s", name, err.msg);
}

static void json_attr(void *ctx, const char *name, const char *v, size_t n)
{
    ce_buf *b = ctx;
    ce_buf_puts(b, b->len > 1 ? "," : "");
    ce__json_put_string(b, name, strlen(name));
    ce_buf_puts(b, ":");
    ce__json_put_string(b, v, n);
}

static ce_event *decode(const char *where, const char *json, size_t n)
{
    ce_event *ev;
    ce_err err;
    if (ce_json_decode(json, n, &ev, &err) != CE_OK)
        fail_msg("%s: decode: %s: %s (offset %ld)\n%.*s", where, err.attr,
                 err.msg, err.offset, (int)n, json);
    return ev;
}

static void encode(const char *where, const ce_event *ev, ce_buf *out)
{
    ce_err err;
    ce_buf_reset(out);
    if (ce_json_encode(ev, out, &err) != CE_OK)
        fail_msg("%s: encode: %s: %s", where, err.attr, err.msg);
}

/* The event as the JSON format will hold it: JSON data compacted. */
static ce_event *expected_form(ce_event *built)
{
    size_t n, ctl = 0;
    const char *data = ce_event_data(built, &n);
    const char *ct = ce_event_get(built, "datacontenttype", &ctl, NULL);
    ce_event *ev = ce_event_clone(built);
    ce_buf c = CE_BUF_INIT;
    if (data && ce_media_is_json(ct, ctl) &&
        ce__json_compact(data, n, &c, NULL) == CE_OK)
        assert_int_equal(ce_event_set_data(ev, c.data, c.len), 0);
    ce_buf_free(&c);
    return ev;
}

static void replay_doc(const char *where, yaml_document_t *d)
{
    yaml_node_t *root = yaml_document_get_root_node(d);
    const char *mode = scalar(d, lookup(d, root, "Mode"));
    const char *data = scalar(d, lookup(d, root, "Data"));
    yaml_node_t *ca = lookup(d, root, "ContextAttributes");
    bool structured = mode && strcmp(mode, "structured") == 0;
    ce_event *built = ce_event_new();
    each_attr(d, ca, set_attr, built);
    if (data)
        assert_int_equal(ce_event_set_data(built, data, strlen(data)), 0);
    size_t svl;
    const char *sv = ce_event_get(built, "specversion", &svl, NULL);
    if (sv && strcmp(sv, "0.3") == 0) {
        ce_err err;
        if (ce_event_upgrade_03(built, &err) != CE_OK)
            fail_msg("%s: upgrade: %s: %s", where, err.attr, err.msg);
        docs_03++;
    }
    ce_err err;
    if (ce_event_validate(built, &err) != CE_OK)
        fail_msg("%s: invalid: %s: %s", where, err.attr, err.msg);
    ce_event *want = expected_form(built);
    ce_buf text = CE_BUF_INIT, text2 = CE_BUF_INIT;
    ce_event *first;
    if (structured) {
        ce_buf_puts(&text, "{");
        each_attr(d, ca, json_attr, &text);
        if (data)
            ce_buf_printf(&text, ",\"data\":%s", data);
        ce_buf_puts(&text, "}");
        first = decode(where, text.data, text.len);
    } else {
        first = ce_event_ref(built);
    }
    if (structured && !ce_event_equal(first, want))
        fail_msg("%s: decoded event differs from the YAML", where);
    encode(where, first, &text);
    ce_event *second = decode(where, text.data, text.len);
    if (!ce_event_equal(second, want) ||
        (structured && !ce_event_equal(first, second)))
        fail_msg("%s: round trip differs:\n%s", where, text.data);
    encode(where, second, &text2);
    assert_string_equal(text.data, text2.data);
    printf("  %s (%s): ok, %zu bytes of JSON\n", where,
           structured ? "structured" : "binary", text.len);
    docs_seen++;
    ce_event_unref(second);
    ce_event_unref(first);
    ce_event_unref(want);
    ce_event_unref(built);
    ce_buf_free(&text);
    ce_buf_free(&text2);
}

static void replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    for (int i = 0;; i++) {
        yaml_document_t d;
        if (!yaml_parser_load(&p, &d))
            fail_msg("%s: YAML error: %s", path, p.problem);
        if (!yaml_document_get_root_node(&d)) {
            yaml_document_delete(&d);
            break;
        }
        char where[1200];
        snprintf(where, sizeof where, "%s#%d", strrchr(path, '/') + 1, i);
        replay_doc(where, &d);
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&p);
    fclose(f);
}

static int replay_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        fail_msg("cannot open %s", dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dp)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".yaml") == 0) {
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            replay_file(path);
            n++;
        }
    }
    closedir(dp);
    return n;
}

static void test_conformance_json(void **state)
{
    (void)state;
    char path[1100];
    const char *root = "conformance/cloudevents-conformance/yaml";
    snprintf(path, sizeof path, "%s/%s/v1.0", shared_dir, root);
    assert_true(replay_dir(path) >= 1);
    snprintf(path, sizeof path, "%s/%s/v1.yaml", shared_dir, root);
    replay_file(path);
    int v1 = docs_seen;
    snprintf(path, sizeof path, "%s/%s/v0.3", shared_dir, root);
    replay_dir(path);
    snprintf(path, sizeof path, "%s/%s/v03.yaml", shared_dir, root);
    replay_file(path);
    printf("  %d documents replayed (%d of them 1.0, %d upgraded from "
           "0.3)\n", docs_seen, v1, docs_03);
    assert_true(v1 >= 8);
    assert_true(docs_03 >= 1);
}

/* A JSON format peculiarity the conformance files do not cover: a JSON
 * string as data keeps its quotes, so the binary body is the JSON text. */
static void test_string_data(void **state)
{
    (void)state;
    const char *in = "{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"/\","
                     "\"type\":\"t\",\"data\":\"I'm just a string\"}";
    ce_event *ev = decode("string", in, strlen(in));
    size_t n;
    const char *d = ce_event_data(ev, &n);
    assert_int_equal(n, 19);
    assert_memory_equal(d, "\"I'm just a string\"", 19);
    ce_event_unref(ev);
}

static int find_shared(void **state)
{
    (void)state;
    const char *s = getenv("KNIT_SHARED_DIR");
    const char *src = getenv("KNIT_SOURCE_DIR");
    if (s && *s)
        snprintf(shared_dir, sizeof shared_dir, "%s", s);
    else
        snprintf(shared_dir, sizeof shared_dir, "%s/../shared",
                 src && *src ? src : ".");
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance_json),
        cmocka_unit_test(test_string_data),
    };
    return cmocka_run_group_tests(tests, find_shared, NULL);
}
