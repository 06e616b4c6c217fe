/*
 * 0005-yaml-load: YAML → JSON conversion: core-schema scalar typing,
 * quoted and block scalars, tags, anchors/aliases, multi-document streams
 * and empty documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"

/* Loads exactly one document and returns its root (a new reference). */
static json_t *load1(const char *text)
{
    kn_yaml_doc *docs = NULL;
    size_t n = 0;
    kn_err err = {0};
    int rc = kn_yaml_load("t.yaml", text, strlen(text), &docs, &n, &err);
    if (rc < 0)
        fail_msg("load failed: %s: %s: %s", err.where, err.field, err.msg);
    assert_int_equal(rc, 1);
    assert_int_equal(n, 1);
    json_t *root = json_incref(docs[0].root);
    kn_yaml_docs_free(docs, n);
    return root;
}

/* Asserts that the YAML loads to the same tree as the JSON text. */
static void same(const char *yaml, const char *json)
{
    json_error_t je;
    json_t *want = json_loads(json, JSON_DECODE_ANY, &je);
    if (!want)
        fail_msg("bad JSON in test: %s", je.text);
    json_t *got = load1(yaml);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        fail_msg("YAML:\n%s\ngot  %s\nwant %s", yaml, g, json);
    }
    json_decref(got);
    json_decref(want);
}

static void test_scalars(void **state)
{
    (void)state;
    same("a: true\nb: True\nc: TRUE\nd: false\ne: False\nf: FALSE",
         "{\"a\":true,\"b\":true,\"c\":true,\"d\":false,\"e\":false,"
         "\"f\":false}");
    /* YAML 1.1 booleans are strings in 1.2 */
    same("a: yes\nb: no\nc: on\nd: off\ne: tRUE",
         "{\"a\":\"yes\",\"b\":\"no\",\"c\":\"on\",\"d\":\"off\","
         "\"e\":\"tRUE\"}");
    same("a: null\nb: Null\nc: NULL\nd: ~\ne:\nf: nULL",
         "{\"a\":null,\"b\":null,\"c\":null,\"d\":null,\"e\":null,"
         "\"f\":\"nULL\"}");
    same("a: 0\nb: -12\nc: +7\nd: 0x1F\ne: 0o17\nf: 0123\n"
         "g: 9223372036854775807\nh: -9223372036854775808",
         "{\"a\":0,\"b\":-12,\"c\":7,\"d\":31,\"e\":15,\"f\":123,"
         "\"g\":9223372036854775807,\"h\":-9223372036854775808}");
    same("a: 1.5\nb: -0.25\nc: .5\nd: 1.\ne: 1e3\nf: 2.5E-1\ng: +1.0",
         "{\"a\":1.5,\"b\":-0.25,\"c\":0.5,\"d\":1.0,\"e\":1000.0,"
         "\"f\":0.25,\"g\":1.0}");
    same("a: 0x\nb: 0o8\nc: 1_000\nd: 12:30\ne: 1.2.3\nf: -a\ng: .\n"
         "h: 2024-01-02T03:04:05Z\ni: 0xG\nj: +0x1",
         "{\"a\":\"0x\",\"b\":\"0o8\",\"c\":\"1_000\",\"d\":\"12:30\","
         "\"e\":\"1.2.3\",\"f\":\"-a\",\"g\":\".\","
         "\"h\":\"2024-01-02T03:04:05Z\",\"i\":\"0xG\",\"j\":\"+0x1\"}");
    json_t *r = load1("a: 1.0\nb: 1");
    assert_true(json_is_real(json_object_get(r, "a")));
    assert_true(json_is_integer(json_object_get(r, "b")));
    json_decref(r);
}

static void test_strings(void **state)
{
    (void)state;
    same("a: 'true'\nb: \"42\"\nc: '~'\nd: \"\"\ne: ''\nf: 'null'",
         "{\"a\":\"true\",\"b\":\"42\",\"c\":\"~\",\"d\":\"\",\"e\":\"\","
         "\"f\":\"null\"}");
    same("a: |\n  line1\n  line2\nb: >\n  folded\n  text\nc: |-\n  12\n",
         "{\"a\":\"line1\\nline2\\n\",\"b\":\"folded text\\n\","
         "\"c\":\"12\"}");
    same("a: \"esc \\t \\u00e9 \\\"q\\\"\"\nb: it's\nc: 'it''s'",
         "{\"a\":\"esc \\t \\u00e9 \\\"q\\\"\",\"b\":\"it's\","
         "\"c\":\"it's\"}");
    same("a: caf\xc3\xa9\nb: hello world\nc: http://x/y?z=1#f",
         "{\"a\":\"caf\\u00e9\",\"b\":\"hello world\","
         "\"c\":\"http://x/y?z=1#f\"}");
    json_t *r = load1("a: \"x\\0y\"");
    assert_int_equal(json_string_length(json_object_get(r, "a")), 3);
    json_decref(r);
}

static void test_tags(void **state)
{
    (void)state;
    same("a: !!str 42\nb: !!int \"42\"\nc: !!float 1\nd: !!bool \"true\"\n"
         "e: !!null ''\nf: ! 12\ng: !!map {x: 1}\nh: !!seq [1]",
         "{\"a\":\"42\",\"b\":42,\"c\":1.0,\"d\":true,\"e\":null,"
         "\"f\":\"12\",\"g\":{\"x\":1},\"h\":[1]}");
}

static void test_collections(void **state)
{
    (void)state;
    same("apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n"
         "  name: t1\n  annotations:\n    knit.dev/max-in-flight: \"10\"\n"
         "spec:\n  filters:\n  - exact:\n      type: a.b\n  - prefix: {source: x}\n"
         "  list: [1, two, [3], {}]\n  empty: []\n",
         "{\"apiVersion\":\"eventing.knative.dev/v1\",\"kind\":\"Trigger\","
         "\"metadata\":{\"name\":\"t1\",\"annotations\":"
         "{\"knit.dev/max-in-flight\":\"10\"}},"
         "\"spec\":{\"filters\":[{\"exact\":{\"type\":\"a.b\"}},"
         "{\"prefix\":{\"source\":\"x\"}}],"
         "\"list\":[1,\"two\",[3],{}],\"empty\":[]}}");
    same("- 1\n- - a\n  - b\n-\n", "[1,[\"a\",\"b\"],null]");
    same("plain root", "\"plain root\"");
    same("? long key\n: value\n", "{\"long key\":\"value\"}");
}

static void test_anchors(void **state)
{
    (void)state;
    same("base: &b\n  retry: 3\n  policy: linear\nx: *b\ny: &s hello\n"
         "z: [*s, *b]\n*s : key-from-alias\n",
         "{\"base\":{\"retry\":3,\"policy\":\"linear\"},"
         "\"x\":{\"retry\":3,\"policy\":\"linear\"},\"y\":\"hello\","
         "\"z\":[\"hello\",{\"retry\":3,\"policy\":\"linear\"}],"
         "\"hello\":\"key-from-alias\"}");
    /* an alias is a copy: changing one leaves the other alone */
    json_t *r = load1("a: &x {k: 1}\nb: *x\n");
    json_object_set_new(json_object_get(r, "a"), "k", json_integer(2));
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(r, "b"), "k")), 1);
    json_decref(r);
}

static void test_multi_doc(void **state)
{
    (void)state;
    const char *text = "# leading comment\n---\na: 1\n---\n---\n# only a "
                       "comment\n---\nb: 2\n...\n---\n~\n---\n- c\n";
    kn_yaml_doc *docs = NULL;
    size_t n = 0;
    kn_err err = {0};
    assert_int_equal(kn_yaml_load("m.yaml", text, strlen(text), &docs, &n,
                                  &err), 3);
    assert_int_equal(n, 3);
    assert_int_equal(json_integer_value(json_object_get(docs[0].root, "a")),
                     1);
    assert_int_equal(docs[0].line, 2);
    assert_int_equal(json_integer_value(json_object_get(docs[1].root, "b")),
                     2);
    assert_int_equal(docs[1].line, 7);
    assert_true(json_is_array(docs[2].root));
    assert_int_equal(docs[2].line, 12);
    kn_yaml_docs_free(docs, n);

    /* empty input and comment-only input have no documents */
    assert_int_equal(kn_yaml_load("e", "", 0, &docs, &n, &err), 0);
    assert_int_equal(n, 0);
    kn_yaml_docs_free(docs, n);
    assert_int_equal(kn_yaml_load("e", "# x\n", 4, &docs, &n, &err), 0);
    kn_yaml_docs_free(docs, n);

    assert_int_equal(kn_yaml_load("e", NULL, 0, &docs, &n, &err), 0);
    kn_yaml_docs_free(docs, n);

    /* the length is honoured: no NUL terminator needed */
    char buf[] = {'a', ':', ' ', '1', 'X'};
    assert_int_equal(kn_yaml_load("n", buf, 4, &docs, &n, &err), 1);
    assert_int_equal(json_integer_value(json_object_get(docs[0].root, "a")),
                     1);
    kn_yaml_docs_free(docs, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_collections),
        cmocka_unit_test(test_anchors),
        cmocka_unit_test(test_multi_doc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
