/*
 * Trigger filter compilation: what is accepted, and every rejection with
 * the path it names (err->field) and its message — bad dialects, several
 * dialects in one element, empty names/values/lists, legacy name rules,
 * non-string values, CESQL parse errors with their position, non-Boolean
 * CESQL, nesting limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/filtertest.h"

/* Expects a KN_INVAL naming `field` whose message contains `msg`. */
static void expect_err(const char *yaml, const char *field, const char *msg)
{
    kn_err err;
    int rc = ft_compile_err(yaml, &err);
    if (rc != KN_INVAL || strcmp(err.field, field) != 0 ||
        !strstr(err.msg, msg))
        fail_msg("for\n%s\ngot rc %d field \"%s\" msg \"%s\"; want field "
                 "\"%s\" msg containing \"%s\"", yaml, rc, err.field,
                 err.msg, field, msg);
}

static void test_accepts(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "broker: default\n",
        "filter: {}\n",
        "filter: {attributes: {}}\n",
        "filter: {attributes: {type: a, myext: ''}}\n",
        "filters: []\n",
        "filters:\n- exact: {type: a, source: b}\n",
        "filters:\n- prefix: {type: com.}\n- suffix: {subject: .png}\n",
        "filters:\n- all: [{exact: {type: a}}, {not: {exact: {x: y}}}]\n",
        "filters:\n- any: [{exact: {type: a}}, {cesql: \"source = 'x'\"}]\n",
        "filters:\n- cesql: \"type LIKE 'com.%' AND INT(prio) > 3\"\n",
        "filters:\n- cesql: myboolext\n",
        "filters:\n- cesql: 'true'\n",
        "filters:\n- exact: {x1: '5'}\n",
        "filter: {attributes: {type: a}}\nfilters:\n- exact: {type: b}\n",
        NULL,
    };
    for (size_t i = 0; ok[i]; i++)
        kn_filter_free(ft_compile(ok[i]));
}

static void test_dialect_errors(void **state)
{
    (void)state;
    expect_err("filters:\n- exact: {type: a}\n  prefix: {type: b}\n",
               "spec.filters[0]", "multiple dialects found (exact, prefix)");
    expect_err("filters:\n- exact: {type: a}\n- any:\n  - exact: {a: b}\n"
               "    cesql: 'true'\n",
               "spec.filters[1].any[0]", "multiple dialects found");
    expect_err("filters:\n- {}\n", "spec.filters[0]", "empty filter");
    expect_err("filters:\n- exactly: {type: a}\n", "spec.filters[0].exactly",
               "unknown filter dialect \"exactly\"");
    expect_err("filters:\n- sql: 'true'\n", "spec.filters[0].sql",
               "CESQL is written \"cesql\"");
    expect_err("filters:\n- exact\n", "spec.filters[0]",
               "expected a filter");
    expect_err("filters: {exact: {type: a}}\n", "spec.filters",
               "expected a list of filters");
    expect_err("filters:\n- exact: [a]\n", "spec.filters[0].exact",
               "exact expects a map");
    expect_err("filters:\n- exact: {}\n", "spec.filters[0].exact",
               "exact needs at least one attribute");
    expect_err("filters:\n- prefix: {type: ''}\n",
               "spec.filters[0].prefix.type", "prefix value must not be empty");
    expect_err("filters:\n- suffix: {subject: ''}\n",
               "spec.filters[0].suffix.subject", "must not be empty");
    expect_err("filters:\n- exact: {Type: a}\n", "spec.filters[0].exact.Type",
               "invalid attribute name \"Type\"");
    expect_err("filters:\n- exact: {prio: 5}\n", "spec.filters[0].exact.prio",
               "quote it in YAML: \"5\"");
    expect_err("filters:\n- exact: {on: true}\n", "spec.filters[0].exact.on",
               "expected a string, got a boolean");
    expect_err("filters:\n- all: []\n", "spec.filters[0].all",
               "all needs at least one filter");
    expect_err("filters:\n- any: {exact: {a: b}}\n", "spec.filters[0].any",
               "any expects a list");
    expect_err("filters:\n- not: []\n", "spec.filters[0].not",
               "expected a filter");
    expect_err("filters:\n- not: {exact: {a: ''}}\n",
               "spec.filters[0].not.exact.a", "must not be empty");
}

static void test_legacy_errors(void **state)
{
    (void)state;
    expect_err("filter: {attributes: {Type: a}}\n",
               "spec.filter.attributes.Type", "^[a-z][a-z0-9]*$");
    expect_err("filter: {attributes: {1type: a}}\n",
               "spec.filter.attributes.1type", "invalid attribute name");
    expect_err("filter: {attributes: {my-ext: a}}\n",
               "spec.filter.attributes.my-ext", "invalid attribute name");
    expect_err("filter: {attributes: {prio: 5}}\n",
               "spec.filter.attributes.prio", "expected a string");
    expect_err("filter: {attribute: {type: a}}\n", "spec.filter.attribute",
               "unknown field");
    expect_err("filter: {attributes: [type]}\n", "spec.filter.attributes",
               "expected a map");
    expect_err("filter: [type]\n", "spec.filter", "expected a map");
    /* `filter` is validated even when `filters` overrides it */
    expect_err("filter: {attributes: {Type: a}}\nfilters:\n"
               "- exact: {type: a}\n", "spec.filter.attributes.Type",
               "invalid attribute name");
}

static void test_cesql_errors(void **state)
{
    (void)state;
    expect_err("filters:\n- cesql: 'type = '\n", "spec.filters[0].cesql",
               "CESQL parse error at position 8: expected a value");
    expect_err("filters:\n- exact: {a: b}\n- cesql: \"a AND AND b\"\n",
               "spec.filters[1].cesql",
               "CESQL parse error at position 7: expected a value");
    expect_err("filters:\n- cesql: \"source = 'x\"\n", "spec.filters[0].cesql",
               "unterminated string");
    expect_err("filters:\n- cesql: 'NOSUCH(type)'\n", "spec.filters[0].cesql",
               "CESQL error at position 1: unknown function NOSUCH");
    expect_err("filters:\n- cesql: 'LENGTH(type)'\n", "spec.filters[0].cesql",
               "yields an Integer; a filter needs a Boolean");
    expect_err("filters:\n- cesql: \"CONCAT(type, 'x')\"\n",
               "spec.filters[0].cesql", "yields a String");
    expect_err("filters:\n- cesql: '  '\n", "spec.filters[0].cesql",
               "must not be empty");
    expect_err("filters:\n- cesql: 3\n", "spec.filters[0].cesql",
               "expected a string, got a number");
    expect_err("filters:\n- all:\n  - cesql: '(('\n",
               "spec.filters[0].all[0].cesql", "CESQL parse error at position");
}

static void test_prefix_and_depth(void **state)
{
    (void)state;
    /* A caller-chosen prefix, and none at all. */
    json_t *spec = ft_spec("filters:\n- exact: {A: b}\n");
    kn_filter *f = NULL;
    kn_err err;
    memset(&err, 0, sizeof err);
    assert_int_equal(kn_filter_compile(spec, "", &f, &err), KN_INVAL);
    assert_string_equal(err.field, "filters[0].exact.A");
    assert_int_equal(kn_filter_compile(spec, "items[3].spec", &f, &err),
                     KN_INVAL);
    assert_string_equal(err.field, "items[3].spec.filters[0].exact.A");
    assert_null(f);
    json_decref(spec);

    /* A spec that is not a map. */
    spec = json_string("x");
    assert_int_equal(kn_filter_compile(spec, "spec", &f, &err), KN_INVAL);
    assert_string_equal(err.field, "spec");
    json_decref(spec);

    /* Nesting: 60 levels of not are fine, 70 are not. */
    for (int depth = 60; depth <= 70; depth += 10) {
        json_t *leaf = json_pack("{s:{s:s}}", "exact", "type", "a");
        for (int i = 0; i < depth; i++)
            leaf = json_pack("{s:o}", "not", leaf);
        spec = json_pack("{s:[o]}", "filters", leaf);
        int rc = kn_filter_compile(spec, "spec", &f, &err);
        if (depth == 60) {
            assert_int_equal(rc, KN_OK);
            kn_filter_free(f);
        } else {
            assert_int_equal(rc, KN_INVAL);
            assert_non_null(strstr(err.msg, "nested deeper"));
        }
        json_decref(spec);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_dialect_errors),
        cmocka_unit_test(test_legacy_errors),
        cmocka_unit_test(test_cesql_errors),
        cmocka_unit_test(test_prefix_and_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
