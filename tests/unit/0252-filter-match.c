/*
 * Trigger filter semantics, dialect by dialect: legacy attributes (exact,
 * case-sensitive, "" = present with any value), exact/prefix/suffix on
 * canonical strings (Integer, Boolean, URI, Timestamp attributes), all,
 * any, not, cesql (true only; errors are no match and are counted),
 * `filters` overriding `filter`, match-all specs, NULL filter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "tests/unit/filtertest.h"

static void test_legacy(void **state)
{
    (void)state;
    ce_event *ev = ft_event("type=com.example.a", "myext=Val", "empty=", NULL);
    const char *f1 = "filter: {attributes: {type: com.example.a}}\n";
    assert_true(ft_match(f1, ev));
    assert_false(ft_match("filter: {attributes: {type: com.example.A}}\n",
                          ev));
    assert_false(ft_match("filter: {attributes: {type: com.example}}\n", ev));
    assert_true(ft_match("filter: {attributes: {type: com.example.a, "
                         "myext: Val}}\n", ev));
    assert_false(ft_match("filter: {attributes: {type: com.example.a, "
                          "myext: val}}\n", ev));
    /* "" = the attribute must be present, with any value ... */
    assert_true(ft_match("filter: {attributes: {myext: ''}}\n", ev));
    assert_false(ft_match("filter: {attributes: {other: ''}}\n", ev));
    /* ... including an empty one (knit's choice, see docs/filters.md) */
    assert_true(ft_match("filter: {attributes: {empty: ''}}\n", ev));
    /* an empty value only matches "" when written "" */
    assert_false(ft_match("filter: {attributes: {empty: x}}\n", ev));
    /* every key must hold */
    assert_false(ft_match("filter: {attributes: {type: com.example.a, "
                          "other: ''}}\n", ev));
    ce_event_unref(ev);
}

static void test_no_filter(void **state)
{
    (void)state;
    ce_event *ev = ft_event(NULL);
    assert_true(ft_match("broker: b\n", ev));
    assert_true(ft_match("filter: {}\n", ev));
    assert_true(ft_match("filter: {attributes: {}}\n", ev));
    assert_true(ft_match("filters: []\n", ev));
    assert_true(ft_match("filter: null\nfilters: null\n", ev));
    assert_false(kn_filter_match(NULL, ev, NULL));
    ce_event_unref(ev);
}

static void test_exact_prefix_suffix(void **state)
{
    (void)state;
    ce_event *ev = ft_event("type=com.example.order.created",
                            "subject=img/cat.PNG", NULL);
    assert_true(ft_match("filters:\n- exact: {type: com.example.order."
                         "created}\n", ev));
    assert_false(ft_match("filters:\n- exact: {type: com.example.order}\n",
                          ev));
    assert_true(ft_match("filters:\n- prefix: {type: com.example.}\n", ev));
    assert_true(ft_match("filters:\n- prefix: {type: com.example.order."
                         "created}\n", ev));
    assert_false(ft_match("filters:\n- prefix: {type: Com.}\n", ev));
    assert_false(ft_match("filters:\n- prefix: {type: com.example.order."
                          "created.x}\n", ev));
    assert_true(ft_match("filters:\n- suffix: {subject: .PNG}\n", ev));
    assert_false(ft_match("filters:\n- suffix: {subject: .png}\n", ev));
    assert_true(ft_match("filters:\n- suffix: {subject: img/cat.PNG}\n", ev));
    assert_false(ft_match("filters:\n- suffix: {subject: /img/cat.PNG}\n",
                          ev));
    /* several entries: all must match; a missing attribute never does */
    assert_true(ft_match("filters:\n- exact: {type: com.example.order."
                         "created, source: /src}\n", ev));
    assert_false(ft_match("filters:\n- exact: {type: com.example.order."
                          "created, source: /other}\n", ev));
    assert_false(ft_match("filters:\n- prefix: {nosuch: a}\n", ev));
    assert_false(ft_match("filters:\n- suffix: {nosuch: a}\n", ev));
    assert_false(ft_match("filters:\n- exact: {nosuch: a}\n", ev));
    ce_event_unref(ev);
}

static void test_string_forms(void **state)
{
    (void)state;
    ce_event *ev = ft_event("i:prio=42", "b:flag=true",
                            "time=2024-05-06T07:08:09+02:00",
                            "source=https://example.com/x", NULL);
    assert_true(ft_match("filters:\n- exact: {prio: '42'}\n", ev));
    assert_false(ft_match("filters:\n- exact: {prio: '042'}\n", ev));
    assert_true(ft_match("filters:\n- prefix: {prio: '4'}\n", ev));
    assert_true(ft_match("filters:\n- exact: {flag: 'true'}\n", ev));
    assert_true(ft_match("filter: {attributes: {flag: 'true'}}\n", ev));
    /* the timestamp as written (offset kept, not converted to UTC) */
    assert_true(ft_match("filters:\n- exact: {time: '2024-05-06T07:08:09"
                         "+02:00'}\n", ev));
    assert_true(ft_match("filters:\n- suffix: {time: '+02:00'}\n", ev));
    assert_true(ft_match("filters:\n- prefix: {source: 'https://'}\n", ev));
    ce_event_unref(ev);
}

static void test_all_any_not(void **state)
{
    (void)state;
    ce_event *ev = ft_event("type=a.b", "x=1", NULL);
    assert_true(ft_match("filters:\n- all:\n  - exact: {type: a.b}\n"
                         "  - exact: {x: '1'}\n", ev));
    assert_false(ft_match("filters:\n- all:\n  - exact: {type: a.b}\n"
                          "  - exact: {x: '2'}\n", ev));
    assert_true(ft_match("filters:\n- any:\n  - exact: {type: zzz}\n"
                         "  - exact: {x: '1'}\n", ev));
    assert_false(ft_match("filters:\n- any:\n  - exact: {type: zzz}\n"
                          "  - exact: {x: '2'}\n", ev));
    assert_true(ft_match("filters:\n- not: {exact: {type: zzz}}\n", ev));
    assert_false(ft_match("filters:\n- not: {exact: {type: a.b}}\n", ev));
    /* not of a missing attribute matches */
    assert_true(ft_match("filters:\n- not: {exact: {nosuch: a}}\n", ev));
    assert_true(ft_match("filters:\n- not: {not: {prefix: {type: a.}}}\n",
                         ev));
    /* the filters array is an implicit all */
    assert_true(ft_match("filters:\n- prefix: {type: a.}\n"
                         "- suffix: {type: .b}\n- exact: {x: '1'}\n", ev));
    assert_false(ft_match("filters:\n- prefix: {type: a.}\n"
                          "- suffix: {type: .c}\n", ev));
    /* nesting */
    assert_true(ft_match("filters:\n- any:\n  - all:\n    - exact: {x: '2'}\n"
                         "  - all:\n    - not: {exact: {x: '2'}}\n"
                         "    - cesql: \"type = 'a.b'\"\n", ev));
    ce_event_unref(ev);
}

static void test_cesql(void **state)
{
    (void)state;
    ce_event *ev = ft_event("type=com.example.x", "priority=5", "s=abc",
                            "b:flag=true", "i:n=7", NULL);
    const char *like = "filters:\n- cesql: \"type LIKE 'com.example.%' AND "
                       "INT(priority) > 3\"\n";
    assert_true(ft_match(like, ev));
    assert_false(ft_match("filters:\n- cesql: \"INT(priority) > 5\"\n", ev));
    assert_true(ft_match("filters:\n- cesql: flag\n", ev));
    /* a bare non-Boolean attribute is no match (and no error) */
    uint64_t e0 = kn_filter_cesql_errors();
    assert_false(ft_match("filters:\n- cesql: s\n", ev));
    assert_int_equal(kn_filter_cesql_errors(), e0);
    assert_true(ft_match("filters:\n- cesql: 'n = 7'\n", ev));
    assert_true(ft_match("filters:\n- cesql: \"n = '7'\"\n", ev));
    /* errors: no match, counted (twice per ft_match: plain + explained) */
    assert_false(ft_match("filters:\n- cesql: 'INT(s) > 1'\n", ev));
    assert_int_equal(kn_filter_cesql_errors(), e0 + 2);
    assert_false(ft_match("filters:\n- cesql: \"missing = 'x'\"\n", ev));
    assert_int_equal(kn_filter_cesql_errors(), e0 + 4);
    /* NOT over an error is still an error: no match, not a match */
    assert_false(ft_match("filters:\n- cesql: \"NOT (missing = 'x')\"\n",
                          ev));
    /* ... but a knit `not` around a CESQL error matches (the inner filter
     * did not match) */
    assert_true(ft_match("filters:\n- not: {cesql: \"missing = 'x'\"}\n",
                         ev));
    assert_true(ft_match("filters:\n- cesql: 'true'\n", ev));
    assert_false(ft_match("filters:\n- cesql: 'false'\n", ev));
    ce_event_unref(ev);
}

static void test_override(void **state)
{
    (void)state;
    ce_event *ev = ft_event("type=a", NULL);
    /* filters non-empty wins, whichever way the legacy filter goes */
    assert_true(ft_match("filter: {attributes: {type: b}}\nfilters:\n"
                         "- exact: {type: a}\n", ev));
    assert_false(ft_match("filter: {attributes: {type: a}}\nfilters:\n"
                          "- exact: {type: b}\n", ev));
    /* an empty filters list does not override */
    assert_false(ft_match("filter: {attributes: {type: b}}\nfilters: []\n",
                          ev));
    assert_true(ft_match("filter: {attributes: {type: a}}\nfilters: []\n",
                         ev));
    ce_event_unref(ev);
}

static void *eval_thread(void *arg)
{
    const kn_filter *f = arg;
    ce_event *ev = ft_event("priority=9", "type=com.example.y", NULL);
    ce_event *bad = ft_event("priority=x", "type=com.example.y", NULL);
    long ok = 0;
    for (int i = 0; i < 2000; i++)
        ok += kn_filter_match(f, ev, NULL) && !kn_filter_match(f, bad, NULL);
    ce_event_unref(ev);
    ce_event_unref(bad);
    return (void *)ok;
}

static void test_threads(void **state)
{
    (void)state;
    kn_filter *f = ft_compile("filters:\n- cesql: \"type LIKE 'com.%' AND "
                              "INT(priority) > 3\"\n");
    uint64_t e0 = kn_filter_cesql_errors();
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, eval_thread, f), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_int_equal((long)r, 2000);
    }
    assert_int_equal(kn_filter_cesql_errors() - e0, 4 * 2000);
    kn_filter_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_no_filter),
        cmocka_unit_test(test_exact_prefix_suffix),
        cmocka_unit_test(test_string_forms),
        cmocka_unit_test(test_all_any_not),
        cmocka_unit_test(test_cesql),
        cmocka_unit_test(test_override),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
