/*
 * Conformance replay over HTTP: every YAML document of the .yaml files in
 * $KNIT_SHARED_DIR/conformance/cloudevents-conformance/yaml/v1.0/ and of
 * yaml/v1.yaml is turned into the HTTP message the conformance tool
 * (cloudevents/conformance) would send, then
 *   decode (ce_http_decode) → check against the YAML → encode in the same
 *   mode (ce_http_encode) → decode again → ce_event_equal.
 *
 * How the tool builds a message:
 * - binary (Mode empty or "binary"): ce-<attr> headers for specversion,
 *   type, time, id, source, subject, dataschema; Content-Type from
 *   datacontenttype; ce-<ext> per extension; TransportExtensions as plain
 *   headers. Values are whitespace-trimmed and empty ones are skipped. The
 *   body is Data as it is. The tool does not percent-encode, so the first
 *   decode is lenient (an extension value holds raw '"'); the re-encoded
 *   message is decoded strictly.
 * - structured: Content-Type "application/cloudevents+json; charset=UTF-8",
 *   body = a JSON object of the attributes and extensions (strings) with
 *   "data" = Data parsed as JSON (the tool needs Data to be JSON there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevents/cloudevents.h"
#include "conftest.h"

#define MAXH 32

typedef struct kv {
    char name[64];
    char *value;            /* trimmed, owned */
} kv;

typedef struct doc {
    char where[300];
    bool structured;
    kv attrs[16];
    size_t nattrs;
    kv exts[16];
    size_t nexts;
    kv transport[16];
    size_t ntransport;
    char *data;             /* raw, owned; NULL if absent */
} doc;

static char *trimmed(const char *s)
{
    size_t n;
    s = cf_trim(s, &n);
    char *r = strndup(s, n);
    assert_non_null(r);
    return r;
}

/* The node's text; the test fails when it is not a scalar. */
static const char *scalar(yaml_node_t *n)
{
    const char *s = cf_scalar(n);
    assert_non_null(s);
    return s;
}

/* Reads a mapping of scalars into kv[] (trimmed values). */
static size_t read_map(yaml_document_t *d, yaml_node_t *m, kv *out,
                       size_t max, const char *skip, yaml_node_t **skipped)
{
    size_t n = 0;
    assert_int_equal(m->type, YAML_MAPPING_NODE);
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
         p < m->data.mapping.pairs.top; p++) {
        const char *k = scalar(yaml_document_get_node(d, p->key));
        yaml_node_t *v = yaml_document_get_node(d, p->value);
        if (skip && strcmp(k, skip) == 0) {
            *skipped = v;
            continue;
        }
        assert_true(n < max);
        snprintf(out[n].name, sizeof out[n].name, "%s", k);
        out[n].value = trimmed(scalar(v));
        n++;
    }
    return n;
}

static void doc_free(doc *dc)
{
    for (size_t i = 0; i < dc->nattrs; i++)
        free(dc->attrs[i].value);
    for (size_t i = 0; i < dc->nexts; i++)
        free(dc->exts[i].value);
    for (size_t i = 0; i < dc->ntransport; i++)
        free(dc->transport[i].value);
    free(dc->data);
}

static void doc_read(yaml_document_t *d, doc *dc)
{
    yaml_node_t *root = yaml_document_get_root_node(d);
    assert_non_null(root);
    assert_int_equal(root->type, YAML_MAPPING_NODE);
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        const char *k = scalar(yaml_document_get_node(d, p->key));
        yaml_node_t *v = yaml_document_get_node(d, p->value);
        if (strcmp(k, "Mode") == 0) {
            dc->structured = strcmp(scalar(v), "structured") == 0;
        } else if (strcmp(k, "ContextAttributes") == 0) {
            yaml_node_t *ext = NULL;
            dc->nattrs = read_map(d, v, dc->attrs, 16, "Extensions", &ext);
            if (ext)
                dc->nexts = read_map(d, ext, dc->exts, 16, NULL, NULL);
        } else if (strcmp(k, "TransportExtensions") == 0) {
            dc->ntransport = read_map(d, v, dc->transport, 16, NULL, NULL);
        } else if (strcmp(k, "Data") == 0) {
            dc->data = strdup(scalar(v));
        } else {
            fail_msg("%s: unknown key %s", dc->where, k);
        }
    }
}

static const char *attr_of(const doc *dc, const char *name)
{
    for (size_t i = 0; i < dc->nattrs; i++)
        if (strcmp(dc->attrs[i].name, name) == 0)
            return dc->attrs[i].value;
    return NULL;
}

static void hadd(ce_headers *h, const char *prefix, const char *name,
                 const char *value)
{
    if (!value || !*value)
        return;
    char full[96];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    assert_int_equal(ce_headers_add(h, full, strlen(full), value,
                                    strlen(value)), CE_OK);
}

/* Builds the request the conformance tool would send. */
static void build(const doc *dc, ce_headers *h, ce_buf *body)
{
    if (!dc->structured) {
        static const char *const order[] = {"specversion", "type", "time",
                                            "id", "source", "subject",
                                            "dataschema"};
        for (size_t i = 0; i < 7; i++)
            hadd(h, "ce-", order[i], attr_of(dc, order[i]));
        hadd(h, "", "Content-Type", attr_of(dc, "datacontenttype"));
        for (size_t i = 0; i < dc->nexts; i++)
            hadd(h, "ce-", dc->exts[i].name, dc->exts[i].value);
        if (dc->data)
            assert_int_equal(ce_buf_puts(body, dc->data), CE_OK);
    } else {
        hadd(h, "", "Content-Type",
             "application/cloudevents+json; charset=UTF-8");
        json_t *o = json_object();
        for (size_t i = 0; i < dc->nattrs; i++)
            if (strcmp(dc->attrs[i].name, "dataschema") != 0)
                json_object_set_new(o, dc->attrs[i].name,
                                    json_string(dc->attrs[i].value));
        for (size_t i = 0; i < dc->nexts; i++)
            json_object_set_new(o, dc->exts[i].name,
                                json_string(dc->exts[i].value));
        if (dc->data) {
            json_error_t je;
            json_t *data = json_loads(dc->data, JSON_DECODE_ANY, &je);
            if (!data)
                fail_msg("%s: structured Data is not JSON: %s", dc->where,
                         je.text);
            json_object_set_new(o, "data", data);
        }
        char *s = json_dumps(o, JSON_COMPACT);
        assert_int_equal(ce_buf_puts(body, s), CE_OK);
        free(s);
        json_decref(o);
    }
    for (size_t i = 0; i < dc->ntransport; i++)
        hadd(h, "", dc->transport[i].name, dc->transport[i].value);
}

static ce_event *decode(const doc *dc, const ce_headers *h,
                        const ce_buf *body, unsigned flags)
{
    ce_event **evs = NULL;
    size_t n = 0;
    ce_err err = {0};
    int rc = ce_http_decode(h->items, h->count, body->data, body->len, flags,
                            &evs, &n, &err);
    if (rc != CE_OK)
        fail_msg("%s: decode failed: %s (%s)", dc->where, err.msg, err.attr);
    assert_int_equal(n, 1);
    ce_event *ev = ce_event_ref(evs[0]);
    ce_events_free(evs, n);
    return ev;
}

/* The decoded event carries what the YAML says. */
static void check(const doc *dc, const ce_event *ev)
{
    for (size_t i = 0; i < dc->nattrs; i++) {
        const char *got = ce_event_get(ev, dc->attrs[i].name, NULL, NULL);
        if (!got || strcmp(got, dc->attrs[i].value) != 0)
            fail_msg("%s: %s is '%s', want '%s'", dc->where,
                     dc->attrs[i].name, got ? got : "(absent)",
                     dc->attrs[i].value);
    }
    for (size_t i = 0; i < dc->nexts; i++) {
        const char *got = ce_event_get(ev, dc->exts[i].name, NULL, NULL);
        if (!got || strcmp(got, dc->exts[i].value) != 0)
            fail_msg("%s: extension %s is '%s'", dc->where,
                     dc->exts[i].name, got ? got : "(absent)");
    }
    size_t n;
    const char *d = ce_event_data(ev, &n);
    if (!dc->data) {
        assert_false(ce_event_has_data(ev));
    } else if (!dc->structured) {
        assert_int_equal(n, strlen(dc->data));
        assert_memory_equal(d, dc->data, n);
    } else {
        json_t *a = json_loadb(d, n, JSON_DECODE_ANY, NULL);
        json_t *b = json_loads(dc->data, JSON_DECODE_ANY, NULL);
        assert_non_null(a);
        assert_true(json_equal(a, b));
        json_decref(a);
        json_decref(b);
    }
}

static void replay(doc *dc)
{
    ce_headers h = {0};
    ce_buf body = CE_BUF_INIT;
    build(dc, &h, &body);
    ce_event *first = decode(dc, &h, &body, CE_DECODE_LENIENT);
    check(dc, first);
    ce_headers h2 = {0};
    ce_buf body2 = CE_BUF_INIT;
    ce_err err = {0};
    ce_mode mode = dc->structured ? CE_MODE_STRUCTURED : CE_MODE_BINARY;
    if (ce_http_encode(first, mode, &h2, &body2, &err) != CE_OK)
        fail_msg("%s: encode failed: %s", dc->where, err.msg);
    ce_event *second = decode(dc, &h2, &body2, 0);
    if (!ce_event_equal(first, second))
        fail_msg("%s: event changed in the round trip", dc->where);
    ce_event_unref(first);
    ce_event_unref(second);
    ce_headers_free(&h);
    ce_headers_free(&h2);
    ce_buf_free(&body);
    ce_buf_free(&body2);
}

static void replay_one(void *ctx, const char *path, size_t i,
                       yaml_document_t *d)
{
    doc dc = {0};
    (void)ctx;
    snprintf(dc.where, sizeof dc.where, "%s doc %zu", path, i + 1);
    doc_read(d, &dc);
    replay(&dc);
    doc_free(&dc);
}

static void test_conformance(void **state)
{
    (void)state;
    char path[1024];
    size_t docs = 0, nfiles = 0;
    cf_path(path, sizeof path, "cloudevents-conformance/yaml/v1.yaml");
    docs += cf_each_doc(path, replay_one, NULL);
    cf_path(path, sizeof path, "cloudevents-conformance/yaml/v1.0");
    char **files = cf_yaml_files(path, &nfiles);
    for (size_t i = 0; i < nfiles; i++)
        docs += cf_each_doc(files[i], replay_one, NULL);
    cf_free_files(files);
    nfiles++; /* and v1.yaml */
    printf("conformance: %zu documents from %zu files round-tripped\n", docs,
           nfiles);
    assert_true(nfiles >= 2);
    assert_true(docs >= 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
