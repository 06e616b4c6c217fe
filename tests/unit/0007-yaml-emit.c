/*
 * 0007-yaml-emit: JSON → YAML text for `knit get -o yaml`: exact output
 * for a resource, quoting of strings that would change type, block
 * strings, and load(emit(x)) == x round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"

static char *emit(const char *json)
{
    json_error_t je;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &je);
    if (!j)
        fail_msg("bad JSON in test: %s", je.text);
    ce_buf b = CE_BUF_INIT;
    assert_int_equal(kn_yaml_emit(j, &b), KN_OK);
    json_decref(j);
    return b.data;
}

static void test_resource(void **state)
{
    (void)state;
    char *y = emit("{\"apiVersion\":\"eventing.knative.dev/v1\","
                   "\"kind\":\"Broker\",\"metadata\":{\"name\":\"default\","
                   "\"namespace\":\"default\",\"labels\":{},"
                   "\"annotations\":{\"knit.dev/max-event-size\":\"1048576\""
                   "}},\"spec\":{\"delivery\":{\"retry\":10,"
                   "\"backoffDelay\":\"PT0.2S\",\"ratio\":0.5,"
                   "\"enabled\":true,\"sink\":null}},\"status\":"
                   "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\""
                   "}]}}");
    assert_string_equal(y,
                        "apiVersion: eventing.knative.dev/v1\n"
                        "kind: Broker\n"
                        "metadata:\n"
                        "  name: default\n"
                        "  namespace: default\n"
                        "  labels: {}\n"
                        "  annotations:\n"
                        "    knit.dev/max-event-size: '1048576'\n"
                        "spec:\n"
                        "  delivery:\n"
                        "    retry: 10\n"
                        "    backoffDelay: PT0.2S\n"
                        "    ratio: 0.5\n"
                        "    enabled: true\n"
                        "    sink: null\n"
                        "status:\n"
                        "  conditions:\n"
                        "  - type: Ready\n"
                        "    status: 'True'\n");
    free(y);
}

static void test_quoting(void **state)
{
    (void)state;
    static const struct {
        const char *json, *yaml;
    } cases[] = {
        {"\"plain text\"", "plain text"},
        {"\"true\"", "'true'"},
        {"\"FALSE\"", "'FALSE'"},
        {"\"yes\"", "yes"},
        {"\"null\"", "'null'"},
        {"\"~\"", "'~'"},
        {"\"\"", "''"},
        {"\"42\"", "'42'"},
        {"\"0x1F\"", "'0x1F'"},
        {"\"1.5\"", "'1.5'"},
        {"\"1e3\"", "'1e3'"},
        {"\".inf\"", "'.inf'"},
        {"\"<<\"", "'<<'"},
        {"\"- a\"", "'- a'"},
        {"\"a: b\"", "'a: b'"},
        {"\"#x\"", "'#x'"},
        {"\" lead\"", "' lead'"},
        {"\"tab\\there\"", "\"tab\\there\""},
        {"1.0", "1.0"},
        {"-0.0", "-0.0"},
        {"1e300", "1e+300"},
        {"0.1", "0.1"},
        {"-7", "-7"},
        {"[]", "[]"},
        {"{}", "{}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *y = emit(cases[i].json);
        size_t n = strlen(cases[i].yaml);
        /* a scalar document may be followed by a "..." end marker */
        if (strncmp(y, cases[i].yaml, n) != 0 || y[n] != '\n' ||
            (y[n + 1] != '\0' && strcmp(y + n + 1, "...\n") != 0))
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].json, y,
                     cases[i].yaml);
        free(y);
    }
    char *y = emit("{\"s\":\"line1\\nline2\\n\",\"t\":\"a\\nb\"}");
    assert_string_equal(y, "s: |\n  line1\n  line2\nt: |-\n  a\n  b\n");
    free(y);
}

/* load(emit(x)) == x */
static void round_trip(const char *json)
{
    json_error_t je;
    json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("bad JSON in test: %s", je.text);
    ce_buf b = CE_BUF_INIT;
    assert_int_equal(kn_yaml_emit(j, &b), KN_OK);
    kn_yaml_doc *docs;
    size_t n;
    kn_err err = {0};
    int rc = kn_yaml_load("rt", b.data, b.len, &docs, &n, &err);
    if (rc != 1)
        fail_msg("%s\nemitted:\n%s\nreload: %d %s %s", json, b.data, rc,
                 err.where, err.msg);
    if (!json_equal(docs[0].root, j))
        fail_msg("%s\nemitted:\n%s\nreloads differently", json, b.data);
    kn_yaml_docs_free(docs, n);
    json_decref(j);
    free(b.data);
}

static void test_round_trip(void **state)
{
    (void)state;
    round_trip("{\"a\":[\"x\",1,2.5,true,false,null,\"true\",\"\",\"null\","
               "\"12\",\" lead\",\"trail \",\"multi\\nline\\n\",\"m\\n\","
               "\"\\n\",\"\\n\\n\",\"  indented\\nblock\",\"tab\\t\","
               "\"caf\\u00e9 \\u2603\",\"\\u0000nul\",\"\\ufeffbom\","
               "\"'q'\",\"\\\"dq\\\"\",\"a #b\",\"[x]\",\"{y}\",\"*ref\","
               "\"&anc\",\"!tag\",\"%pct\",\"@at\",\"`bt\",\"? q\",\"|\","
               "\">\",\"---\",\"...\",\"- \",\":\",\"-1\",\"+1\",\"0o7\","
               "\"1_0\",\".5\",\"-.inf\",\".NaN\",\"~\",\"Null\"],"
               "\"nested\":{\"k\":[[[{\"z\":{}}]]],\"e\":[]},"
               "\"true\":1,\"1\":2,\"\":3,\"a: b\":4,\"- x\":5,"
               "\"num\":[0,-9223372036854775808,9223372036854775807,"
               "1e-300,1.7976931348623157e308,0.30000000000000004,"
               "-0.0,100.0]}");
    char longkey[400];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    char json[1024];
    snprintf(json, sizeof json, "{\"%s\":\"%s\"}", longkey, longkey);
    round_trip(json);
    round_trip("[1,[2,[3]],{\"a\":null}]");
    round_trip("\"just a string\"");
    round_trip("42");
}

static void test_append_and_errors(void **state)
{
    (void)state;
    ce_buf b = CE_BUF_INIT;
    json_t *a = json_pack("{s:i}", "a", 1), *c = json_pack("{s:i}", "c", 2);
    assert_int_equal(kn_yaml_emit(a, &b), KN_OK);
    ce_buf_append(&b, "---\n", 4);
    assert_int_equal(kn_yaml_emit(c, &b), KN_OK);
    assert_string_equal(b.data, "a: 1\n---\nc: 2\n");
    assert_int_equal(kn_yaml_emit(NULL, &b), KN_INVAL);
    assert_int_equal(kn_yaml_emit(a, NULL), KN_INVAL);
    json_decref(a);
    json_decref(c);
    free(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resource),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_append_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
