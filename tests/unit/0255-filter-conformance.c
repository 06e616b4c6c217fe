/*
 * The trigger filter behaviours of Knative Eventing (reference:
 * knative-eventing.md §2), one test per row, with knit's deliberate
 * differences marked DIFFERS and documented in docs/filters.md:
 * - empty-value legacy attributes: present with any value, "" included
 *   (core fails "" values, EKB drops the condition);
 * - exact/prefix/suffix with an empty value, and empty filters, are
 *   rejected at apply (Knative skips them at run time: fails open);
 * - CESQL unknown functions (incl. EKB's KN_VERIFY_CORRELATION_ID) and
 *   non-Boolean expressions are rejected at apply;
 * - 0.3 attribute names (schemaurl, datacontentencoding) are not mapped:
 *   ingress upgrades events to 1.0, so they name extensions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/filtertest.h"

static void rejected(const char *yaml, const char *field, const char *msg)
{
    kn_err err;
    assert_int_equal(ft_compile_err(yaml, &err), KN_INVAL);
    assert_string_equal(err.field, field);
    if (!strstr(err.msg, msg))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg);
}

/* Legacy keys must match ^[a-z][a-z0-9]*$. */
static void test_legacy_key_validation(void **state)
{
    (void)state;
    rejected("filter: {attributes: {Type: a}}\n",
             "spec.filter.attributes.Type", "^[a-z][a-z0-9]*$");
    rejected("filter: {attributes: {'9a': a}}\n", "spec.filter.attributes.9a",
             "invalid attribute name");
    kn_filter_free(ft_compile("filter: {attributes: {a9: x}}\n"));
}

/* Every key present; non-empty value = exact, case-sensitive. */
static void test_legacy_exact(void **state)
{
    (void)state;
    ce_event *ev = ft_event("type=Order", "ext=1", NULL);
    assert_true(ft_match("filter: {attributes: {type: Order, ext: '1'}}\n",
                         ev));
    assert_false(ft_match("filter: {attributes: {type: order}}\n", ev));
    assert_false(ft_match("filter: {attributes: {type: Order, x: '1'}}\n",
                          ev));
    ce_event_unref(ev);
}

/* DIFFERS: "" = the attribute must be present, any value including "". */
static void test_legacy_empty_value(void **state)
{
    (void)state;
    const char *spec = "filter: {attributes: {ext: ''}}\n";
    ce_event *with = ft_event("ext=x", NULL);
    ce_event *empty = ft_event("ext=", NULL);
    ce_event *without = ft_event(NULL);
    assert_true(ft_match(spec, with));
    assert_true(ft_match(spec, empty));   /* core Knative: no match */
    assert_false(ft_match(spec, without)); /* EKB: match */
    ce_event_unref(with);
    ce_event_unref(empty);
    ce_event_unref(without);
}

/* Context attributes by name; time as its RFC 3339 text; DIFFERS: 0.3
 * names are not aliases. */
static void test_context_attributes(void **state)
{
    (void)state;
    ce_event *ev = ft_event("time=2018-04-26T14:48:09+02:00",
                            "dataschema=http://s/1", "subject=sub",
                            "datacontenttype=application/json", NULL);
    assert_true(ft_match("filter: {attributes: {specversion: '1.0', id: '1', "
                         "source: /src, type: t, subject: sub, time: "
                         "'2018-04-26T14:48:09+02:00', dataschema: "
                         "'http://s/1', datacontenttype: application/json}}"
                         "\n", ev));
    assert_false(ft_match("filter: {attributes: {schemaurl: 'http://s/1'}}\n",
                          ev));
    ce_event_unref(ev);
}

/* One dialect per element: "multiple dialects found". */
static void test_one_dialect(void **state)
{
    (void)state;
    rejected("filters:\n- exact: {type: a}\n  cesql: 'true'\n",
             "spec.filters[0]", "multiple dialects found");
}

/* The filters array is an implicit all; empty or absent = match all. */
static void test_implicit_all(void **state)
{
    (void)state;
    ce_event *ev = ft_event("type=a.b", NULL);
    assert_true(ft_match("filters:\n- prefix: {type: a}\n- suffix: {type: b}"
                         "\n", ev));
    assert_false(ft_match("filters:\n- prefix: {type: a}\n- suffix: "
                          "{type: c}\n", ev));
    assert_true(ft_match("filters: []\n", ev));
    assert_true(ft_match("subscriber: {uri: 'http://x'}\n", ev));
    ce_event_unref(ev);
}

/* filters non-empty overrides filter. */
static void test_override(void **state)
{
    (void)state;
    ce_event *ev = ft_event("type=a", NULL);
    assert_true(ft_match("filter: {attributes: {type: z}}\nfilters:\n"
                         "- exact: {type: a}\n", ev));
    ce_event_unref(ev);
}

/* CESQL parsed at apply; evaluation error = no match. */
static void test_cesql(void **state)
{
    (void)state;
    rejected("filters:\n- cesql: 'type ='\n", "spec.filters[0].cesql",
             "CESQL parse error at position");
    ce_event *ev = ft_event(NULL);
    uint64_t before = kn_filter_cesql_errors();
    assert_false(ft_match("filters:\n- cesql: 'INT(type) > 0'\n", ev));
    assert_true(kn_filter_cesql_errors() > before);
    ce_event_unref(ev);
    /* DIFFERS: EKB's custom function is not available, and is reported
     * at apply rather than failing every event */
    rejected("filters:\n- cesql: \"KN_VERIFY_CORRELATION_ID(id, 'a', 'b', "
             "'c', 0, 1)\"\n", "spec.filters[0].cesql", "unknown function");
}

/* Filtering on data is not supported: `data` is no attribute. */
static void test_no_data(void **state)
{
    (void)state;
    ce_event *frozen = ft_event(NULL);
    ce_event *ev = ce_event_clone(frozen);
    ce_event_unref(frozen);
    assert_int_equal(ce_event_set_data(ev, "x", 1), 0);
    assert_false(ft_match("filter: {attributes: {data: x}}\n", ev));
    assert_false(ft_match("filters:\n- exact: {data: x}\n", ev));
    assert_false(ft_match("filters:\n- cesql: \"data = 'x'\"\n", ev));
    ce_event_unref(ev);
}

/* DIFFERS: empty exact/prefix/suffix values are rejected at apply
 * instead of being skipped at run time (which fails open). */
static void test_empty_values_rejected(void **state)
{
    (void)state;
    rejected("filters:\n- exact: {type: ''}\n", "spec.filters[0].exact.type",
             "must not be empty");
    rejected("filters:\n- prefix: {}\n", "spec.filters[0].prefix",
             "at least one attribute");
    rejected("filters:\n- {}\n", "spec.filters[0]", "empty filter");
}

/* Non-string attributes are compared by their string form. */
static void test_string_form(void **state)
{
    (void)state;
    ce_event *ev = ft_event("i:count=10", "b:ok=false", NULL);
    assert_true(ft_match("filters:\n- exact: {count: '10'}\n", ev));
    assert_true(ft_match("filters:\n- suffix: {count: '0'}\n", ev));
    assert_true(ft_match("filters:\n- exact: {ok: 'false'}\n", ev));
    ce_event_unref(ev);
}

/* all/any reorder themselves in Knative for speed; order never changes
 * the result, only the cost (knit keeps document order). */
static void test_order_irrelevant(void **state)
{
    (void)state;
    ce_event *ev = ft_event("type=a", NULL);
    assert_true(ft_match("filters:\n- any: [{exact: {type: b}}, {exact: "
                         "{type: a}}]\n", ev));
    assert_true(ft_match("filters:\n- any: [{exact: {type: a}}, {exact: "
                         "{type: b}}]\n", ev));
    ce_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy_key_validation),
        cmocka_unit_test(test_legacy_exact),
        cmocka_unit_test(test_legacy_empty_value),
        cmocka_unit_test(test_context_attributes),
        cmocka_unit_test(test_one_dialect),
        cmocka_unit_test(test_implicit_all),
        cmocka_unit_test(test_override),
        cmocka_unit_test(test_cesql),
        cmocka_unit_test(test_no_data),
        cmocka_unit_test(test_empty_values_rejected),
        cmocka_unit_test(test_string_form),
        cmocka_unit_test(test_order_irrelevant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
