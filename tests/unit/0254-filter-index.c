/*
 * The trigger index, case by case: which condition each trigger is filed
 * under (the most selective one; CESQL conjuncts only where safe), the
 * always list, verification of the remaining predicates, prefix/suffix
 * lookups at several lengths, many attributes, unused slots, an empty
 * index, large sets, and stats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/filter/filter_int.h"
#include "tests/unit/filtertest.h"

typedef struct set {
    kn_filter *f[64];
    size_t n;
    kn_filter_index *ix;
} set;

static void set_build(set *s, const char *const *yamls)
{
    memset(s, 0, sizeof *s);
    for (; yamls[s->n]; s->n++)
        s->f[s->n] = ft_compile(yamls[s->n]);
    kn_err err;
    assert_int_equal(kn_filter_index_build(s->f, s->n, &s->ix, &err), KN_OK);
}

static void set_free(set *s)
{
    kn_filter_index_free(s->ix);
    for (size_t i = 0; i < s->n; i++)
        kn_filter_free(s->f[i]);
}

/* "exact type=a" / "prefix type=a" / "suffix type=a" / "present type" /
 * "always" for trigger i. */
static void key_of(const set *s, size_t i, char *buf, size_t n)
{
    static const char *const kinds[] = {"exact", "prefix", "suffix",
                                        "present"};
    kf_cond c;
    if (!kf_index_key(s->ix, i, &c))
        snprintf(buf, n, "always");
    else if (c.kind == KF_COND_PRESENT)
        snprintf(buf, n, "present %.*s", (int)c.attr_len, c.attr);
    else
        snprintf(buf, n, "%s %.*s=%.*s", kinds[c.kind], (int)c.attr_len,
                 c.attr, (int)c.val_len, c.val);
}

static void expect_key(const set *s, size_t i, const char *want)
{
    char got[128];
    key_of(s, i, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("trigger %zu is filed as \"%s\", want \"%s\"", i, got,
                 want);
}

/* The matching trigger numbers as "0,3,7". */
static void matches(const set *s, const ce_event *ev, char *buf, size_t n)
{
    uint64_t bits[2] = {0, 0};
    size_t count = kn_filter_index_match(s->ix, ev, bits);
    size_t len = 0, seen = 0;
    buf[0] = 0;
    for (size_t i = 0; i < s->n; i++) {
        bool naive = kn_filter_match(s->f[i], ev, NULL);
        bool got = bits[i / 64] >> (i % 64) & 1;
        assert_int_equal(naive, got);
        if (got) {
            len += (size_t)snprintf(buf + len, n - len, "%s%zu",
                                    seen ? "," : "", i);
            seen++;
        }
    }
    assert_int_equal(count, seen);
}

static void expect_matches(const set *s, const ce_event *ev,
                           const char *want)
{
    char got[256];
    matches(s, ev, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("matches \"%s\", want \"%s\"", got, want);
}

static void test_keys(void **state)
{
    (void)state;
    static const char *const specs[] = {
        /* 0 */ "filter: {attributes: {type: order, source: /shop}}\n",
        /* 1 */ "filter: {attributes: {type: order, source: /crm}}\n",
        /* 2 */ "filter: {attributes: {type: order, subject: ''}}\n",
        /* 3 */ "filters:\n- prefix: {type: ord}\n",
        /* 4 */ "filters:\n- suffix: {subject: .png}\n- exact: {type: img}\n",
        /* 5 */ "filters:\n- cesql: \"type = 'order' AND INT(n) > 3\"\n",
        /* 6 */ "filters:\n- cesql: \"type = 'order' OR source = '/x'\"\n",
        /* 7 */ "filters:\n- any: [{exact: {type: a}}, {exact: {type: b}}]\n",
        /* 8 */ "filters:\n- not: {exact: {type: order}}\n",
        /* 9 */ "broker: b\n",
        /* 10 */ "filters:\n- all: [{exact: {xx: '1'}}, {cesql: 'true'}]\n",
        /* 11 */ "filters:\n- cesql: \"'order' = type\"\n",
        /* 12 */ "filters:\n- cesql: \"source LIKE '/sh%' AND type LIKE "
                 "'%der'\"\n",
        /* 13 */ "filter: {attributes: {myext: ''}}\n",
        /* 14 */ "filters:\n- cesql: \"type LIKE 'o_der'\"\n",
        NULL,
    };
    set s;
    set_build(&s, specs);
    /* type=order is shared by 0, 1, 2, 5: the unique source wins */
    expect_key(&s, 0, "exact source=/shop");
    expect_key(&s, 1, "exact source=/crm");
    /* presence is a weak condition: type=order (4 triggers) beats it */
    expect_key(&s, 2, "exact type=order");
    expect_key(&s, 3, "prefix type=ord");
    expect_key(&s, 4, "exact type=img");
    expect_key(&s, 5, "exact type=order");
    expect_key(&s, 6, "always"); /* OR: no necessary condition */
    expect_key(&s, 7, "always");
    expect_key(&s, 8, "always");
    expect_key(&s, 9, "always");
    expect_key(&s, 10, "exact xx=1");
    expect_key(&s, 11, "always"); /* literal on the left: not used */
    expect_key(&s, 12, "prefix source=/sh");
    expect_key(&s, 13, "present myext");
    expect_key(&s, 14, "always"); /* `_` is not a plain prefix/suffix */

    ce_event *ev = ft_event("type=order", "source=/shop", "i:n=5", NULL);
    expect_matches(&s, ev, "0,3,5,6,9,11,12,14");
    ce_event_unref(ev);
    ev = ft_event("type=order", "source=/crm", "subject=a.png", "i:n=1",
                  "myext=", NULL);
    expect_matches(&s, ev, "1,2,3,6,9,11,13,14");
    ce_event_unref(ev);
    ev = ft_event("type=img", "source=/x", "subject=a.png", "xx=1", NULL);
    expect_matches(&s, ev, "4,6,8,9,10");
    ce_event_unref(ev);

    kn_filter_index_stats st;
    kn_filter_index_stats_get(s.ix, &st);
    assert_int_equal(st.triggers, 15);
    assert_int_equal(st.always, 6);
    assert_int_equal(st.indexed, 9);
    /* only 3 and 13 are exactly their condition */
    assert_int_equal(st.verified, 7);
    assert_true(st.bytes > 0);
    set_free(&s);
}

static void test_prefix_suffix_lengths(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "filters:\n- prefix: {type: a}\n",
        "filters:\n- prefix: {type: ab}\n",
        "filters:\n- prefix: {type: abc}\n",
        "filters:\n- prefix: {type: abcdefghijklmnopqrstuvwxyz0123456789}\n",
        "filters:\n- prefix: {type: b}\n",
        "filters:\n- suffix: {type: c}\n",
        "filters:\n- suffix: {type: bc}\n",
        "filters:\n- suffix: {type: zabc}\n",
        "filters:\n- exact: {type: abc}\n",
        "filters:\n- cesql: \"type LIKE 'ab%'\"\n",
        "filters:\n- cesql: \"type LIKE '%'\"\n",
        "filters:\n- cesql: \"type = ''\"\n",
        NULL,
    };
    set s;
    set_build(&s, specs);
    expect_key(&s, 10, "always"); /* no term for a bare % */
    expect_key(&s, 11, "exact type=");
    ce_event *ev = ft_event("type=abc", NULL);
    expect_matches(&s, ev, "0,1,2,5,6,8,9,10");
    ce_event_unref(ev);
    ev = ft_event("type=abcdefghijklmnopqrstuvwxyz0123456789", NULL);
    expect_matches(&s, ev, "0,1,2,3,9,10");
    ce_event_unref(ev);
    ev = ft_event("type=zabc", NULL);
    expect_matches(&s, ev, "5,6,7,10");
    ce_event_unref(ev);
    ev = ft_event("type=", NULL);
    expect_matches(&s, ev, "10,11");
    ce_event_unref(ev);
    set_free(&s);
}

static void test_many_attributes(void **state)
{
    (void)state;
    /* More distinct attributes than the scan threshold: the event's own
     * attributes drive the lookup. */
    char yaml[40][64];
    const char *specs[41];
    for (int i = 0; i < 40; i++) {
        snprintf(yaml[i], sizeof yaml[i], "filters:\n- %s: {ext%d: v%d}\n",
                 i % 3 == 0 ? "exact" : i % 3 == 1 ? "prefix" : "suffix",
                 i % 20, i % 20);
        specs[i] = yaml[i];
    }
    specs[40] = NULL;
    set s;
    set_build(&s, specs);
    kn_filter_index_stats st;
    kn_filter_index_stats_get(s.ix, &st);
    assert_int_equal(st.attributes, 20);
    ce_event *ev = ft_event("ext3=v3", "ext5=xv5", "ext7=v7", NULL);
    expect_matches(&s, ev, "3,5,7,23,27");
    ce_event_unref(ev);
    set_free(&s);
}

static void test_empty_and_unused(void **state)
{
    (void)state;
    kn_filter_index *ix = NULL;
    kn_err err;
    ce_event *ev = ft_event(NULL);
    uint64_t bits[1] = {~0ull};
    uint32_t ids[4];
    assert_int_equal(kn_filter_index_build(NULL, 0, &ix, &err), KN_OK);
    assert_int_equal(kn_filter_index_size(ix), 0);
    assert_int_equal(kn_filter_index_match(ix, ev, bits), 0);
    assert_int_equal(kn_filter_index_match_ids(ix, ev, ids, 4), 0);
    kn_filter_index_free(ix);
    kn_filter_index_free(NULL);

    kn_filter *fs[3] = {NULL, ft_compile("broker: x\n"), NULL};
    assert_int_equal(kn_filter_index_build(fs, 3, &ix, &err), KN_OK);
    assert_int_equal(kn_filter_index_size(ix), 3);
    assert_int_equal(kn_filter_index_match(ix, ev, bits), 1);
    assert_int_equal(bits[0], 2);
    assert_int_equal(kn_filter_index_match_ids(ix, ev, ids, 4), 1);
    assert_int_equal(ids[0], 1);
    kn_filter_index_free(ix);
    kn_filter_free(fs[1]);
    ce_event_unref(ev);
}

static void test_large(void **state)
{
    (void)state;
    /* 20,000 triggers: 10,000 exact types, 5,000 sharing one type with a
     * distinct source, 5,000 prefixes. One event matches a handful. */
    enum { N = 20000 };
    kn_filter **fs = calloc(N, sizeof *fs);
    assert_non_null(fs);
    for (int i = 0; i < N; i++) {
        json_t *spec;
        char v[64];
        if (i < 10000) {
            snprintf(v, sizeof v, "com.example.t%d", i);
            spec = json_pack("{s:{s:{s:s}}}", "filter", "attributes", "type",
                             v);
        } else if (i < 15000) {
            snprintf(v, sizeof v, "/src/%d", i);
            spec = json_pack("{s:[{s:{s:s,s:s}}]}", "filters", "exact",
                             "type", "shared", "source", v);
        } else {
            snprintf(v, sizeof v, "com.example.t%d", i - 15000);
            spec = json_pack("{s:[{s:{s:s}}]}", "filters", "prefix", "type",
                             v);
        }
        kn_err err;
        assert_int_equal(kn_filter_compile(spec, "spec", &fs[i], &err), 0);
        json_decref(spec);
    }
    kn_filter_index *ix = NULL;
    kn_err err;
    assert_int_equal(kn_filter_index_build(fs, N, &ix, &err), KN_OK);
    kn_filter_index_stats st;
    kn_filter_index_stats_get(ix, &st);
    assert_int_equal(st.always, 0);
    assert_int_equal(st.keys, N); /* every trigger on its own key */
    uint32_t ids[16];
    ce_event *ev = ft_event("type=com.example.t123", NULL);
    /* exact t123 and prefixes t1, t12, t123 */
    assert_int_equal(kn_filter_index_match_ids(ix, ev, ids, 16), 4);
    ce_event_unref(ev);
    ev = ft_event("type=shared", "source=/src/12345", NULL);
    assert_int_equal(kn_filter_index_match_ids(ix, ev, ids, 16), 1);
    assert_int_equal(ids[0], 12345);
    ce_event_unref(ev);
    kn_filter_index_free(ix);
    for (int i = 0; i < N; i++)
        kn_filter_free(fs[i]);
    free(fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_prefix_suffix_lengths),
        cmocka_unit_test(test_many_attributes),
        cmocka_unit_test(test_empty_and_unused),
        cmocka_unit_test(test_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
