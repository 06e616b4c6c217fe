/*
 * Conformance replay through the JSON format: every YAML document of
 * cloudevents-conformance/yaml/v1.0/ *.yaml and yaml/v1.yaml (and, through
 * ce_event_upgrade_03, the 0.3 files) under $KNIT_SHARED_DIR/conformance
 * (fallback $KNIT_SOURCE_DIR/../shared; see conftest.h) becomes an event:
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

#include "cloudevents/ce_int.h"
#include "conftest.h"

static int docs_seen, docs_03;

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
        const char *k = cf_scalar(yaml_document_get_node(d, p->key));
        yaml_node_t *vn = yaml_document_get_node(d, p->value);
        assert_non_null(k);
        if (strcmp(k, "Extensions") == 0) {
            each_attr(d, vn, fn, ctx);
            continue;
        }
        const char *v = cf_scalar(vn);
        size_t n;
        if (!v)
            fail_msg("attribute %s is not a scalar", k);
        v = cf_trim(v, &n);
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
    const char *mode = cf_scalar(cf_map_get(d, root, "Mode"));
    const char *data = cf_scalar(cf_map_get(d, root, "Data"));
    yaml_node_t *ca = cf_map_get(d, root, "ContextAttributes");
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

static void replay_one(void *ctx, const char *path, size_t i,
                       yaml_document_t *d)
{
    char where[1200];
    (void)ctx;
    snprintf(where, sizeof where, "%s#%zu", strrchr(path, '/') + 1, i);
    replay_doc(where, d);
}

static size_t replay_dir(const char *dir)
{
    size_t n;
    char **files = cf_yaml_files(dir, &n);
    for (size_t i = 0; i < n; i++)
        cf_each_doc(files[i], replay_one, NULL);
    cf_free_files(files);
    return n;
}

static void test_conformance_json(void **state)
{
    (void)state;
    char path[1100];
    cf_path(path, sizeof path, "cloudevents-conformance/yaml/v1.0");
    assert_true(replay_dir(path) >= 1);
    cf_path(path, sizeof path, "cloudevents-conformance/yaml/v1.yaml");
    cf_each_doc(path, replay_one, NULL);
    int v1 = docs_seen;
    cf_path(path, sizeof path, "cloudevents-conformance/yaml/v0.3");
    replay_dir(path);
    cf_path(path, sizeof path, "cloudevents-conformance/yaml/v03.yaml");
    cf_each_doc(path, replay_one, NULL);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance_json),
        cmocka_unit_test(test_string_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
