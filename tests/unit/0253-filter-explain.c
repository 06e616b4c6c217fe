/*
 * kn_filter_explain: the path of the first failing clause and the
 * sentence saying why, for each dialect — including CESQL values and
 * error kinds — and an empty explanation on a match.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/filtertest.h"

static ce_event *ev;

static void expect(const char *yaml, const char *clause, const char *reason)
{
    kn_filter *f = ft_compile(yaml);
    kn_filter_explain why;
    memset(&why, 'x', sizeof why);
    bool m = kn_filter_match(f, ev, &why);
    kn_filter_free(f);
    if (!clause) {
        if (!m || why.clause[0] || why.reason[0])
            fail_msg("%s: expected a match with an empty explanation, got "
                     "%d [%s] [%s]", yaml, m, why.clause, why.reason);
        return;
    }
    if (m || strcmp(why.clause, clause) != 0 || !strstr(why.reason, reason))
        fail_msg("%s\ngot %d [%s] [%s]\nwant [%s] [...%s...]", yaml, m,
                 why.clause, why.reason, clause, reason);
}

static void test_attributes(void **state)
{
    (void)state;
    expect("filter: {attributes: {type: com.x}}\n", NULL, NULL);
    expect("filter: {attributes: {type: com.y}}\n",
           "spec.filter.attributes.type", "type is \"com.x\", not \"com.y\"");
    expect("filter: {attributes: {type: com.x, nope: ''}}\n",
           "spec.filter.attributes.nope", "attribute nope is missing");
    expect("filters:\n- exact: {type: com.x}\n- prefix: {type: org.}\n",
           "spec.filters[1].prefix.type",
           "type \"com.x\" does not start with \"org.\"");
    expect("filters:\n- suffix: {type: .y}\n", "spec.filters[0].suffix.type",
           "type \"com.x\" does not end with \".y\"");
    expect("filters:\n- exact: {type: com.x, source: /a}\n",
           "spec.filters[0].exact.source", "source is \"/src\", not \"/a\"");
    expect("filters:\n- all:\n  - exact: {type: com.x}\n"
           "  - exact: {n: '6'}\n", "spec.filters[0].all[1].exact.n",
           "n is \"5\", not \"6\"");
}

static void test_long_values(void **state)
{
    (void)state;
    char yaml[512];
    snprintf(yaml, sizeof yaml, "filters:\n- exact: {long: '%0200d'}\n", 7);
    kn_filter *f = ft_compile(yaml);
    kn_filter_explain why;
    assert_false(kn_filter_match(f, ev, &why));
    assert_non_null(strstr(why.reason, "attribute long is missing"));
    kn_filter_free(f);
    ce_event *big = ft_event("long=ab", NULL);
    f = ft_compile(yaml);
    assert_false(kn_filter_match(f, big, &why));
    /* the expected value is cut with "..." and the sentence fits */
    assert_non_null(strstr(why.reason, "...\""));
    assert_true(strlen(why.reason) < sizeof why.reason - 1);
    kn_filter_free(f);
    ce_event_unref(big);
}

static void test_combinators(void **state)
{
    (void)state;
    expect("filters:\n- any: [{exact: {type: a}}, {exact: {type: b}}]\n",
           "spec.filters[0].any",
           "none of the 2 filters matched; the first failed at "
           "spec.filters[0].any[0].exact.type: type is \"com.x\", not \"a\"");
    expect("filters:\n- any: [{exact: {type: a}}, {exact: {type: com.x}}]\n",
           NULL, NULL);
    expect("filters:\n- not: {prefix: {type: com}}\n", "spec.filters[0].not",
           "the negated filter spec.filters[0].not.prefix.type matched");
    expect("filters:\n- not: {prefix: {type: org}}\n", NULL, NULL);
}

static void test_cesql(void **state)
{
    (void)state;
    expect("filters:\n- cesql: \"INT(priority) > 3\"\n",
           "spec.filters[0].cesql",
           "CESQL evaluation error (cast): cast error: cannot cast 'abc' to "
           "Integer");
    expect("filters:\n- cesql: \"myext = 'a'\"\n", "spec.filters[0].cesql",
           "CESQL evaluation error (missingAttribute): missing attribute "
           "'myext'");
    expect("filters:\n- cesql: \"LEFT(type, -1) = 'x'\"\n",
           "spec.filters[0].cesql", "(functionEvaluation)");
    expect("filters:\n- cesql: 'n > 7'\n", "spec.filters[0].cesql",
           "CESQL expression evaluated to false");
    expect("filters:\n- cesql: type\n", "spec.filters[0].cesql",
           "evaluated to String \"com.x\", not Boolean true");
    expect("filters:\n- cesql: n\n", "spec.filters[0].cesql",
           "evaluated to Integer 5, not Boolean true");
    expect("filters:\n- exact: {type: com.x}\n- cesql: 'n > 1'\n", NULL, NULL);
    expect("filters:\n- exact: {type: com.x}\n- cesql: 'n % 0 = 0'\n",
           "spec.filters[1].cesql", "(math)");
}

static void test_match_all(void **state)
{
    (void)state;
    expect("broker: x\n", NULL, NULL);
    kn_filter_explain why;
    assert_false(kn_filter_match(NULL, ev, &why));
    assert_string_equal(why.reason, "no filter");
}

int main(void)
{
    ev = ft_event("type=com.x", "priority=abc", "i:n=5", NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_long_values),
        cmocka_unit_test(test_combinators),
        cmocka_unit_test(test_cesql),
        cmocka_unit_test(test_match_all),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ce_event_unref(ev);
    return rc;
}
