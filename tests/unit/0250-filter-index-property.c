/*
 * Property test of the trigger index: for random trigger sets (legacy
 * attributes with empty and non-empty values, exact/prefix/suffix maps,
 * all, any, not, CESQL with and without indexable conjuncts, unused
 * slots) and random events, kn_filter_index_match and
 * kn_filter_index_match_ids give exactly the matches of kn_filter_match
 * on every filter.
 *
 * The seed is printed; set KNIT_FILTER_SEED=<n> to replay a run, and
 * KNIT_FILTER_ROUNDS=<n> to run more rounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>

#include "tests/unit/filtertest.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static unsigned pick(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static bool chance(unsigned percent)
{
    return pick(100) < percent;
}

/* Attributes: core string ones and extensions; `nattrs` grows in some
 * rounds past the index's scan threshold. */
static const char *const base_attrs[] = {"type", "source", "subject", "xa",
                                         "xb"};
static char extra_attrs[24][16];
static unsigned nextra;

static const char *any_attr(void)
{
    unsigned n = 5 + nextra;
    unsigned i = pick(n + 2); /* integer and boolean ones too */
    if (i == n)
        return "prio";
    if (i == n + 1)
        return "flag";
    return i < 5 ? base_attrs[i] : extra_attrs[i - 5];
}

static const char *str_attr(void)
{
    unsigned i = pick(5 + nextra);
    return i < 5 ? base_attrs[i] : extra_attrs[i - 5];
}

/* Short values over a tiny alphabet so that conditions collide. */
static void value(char *buf, size_t min)
{
    static const char alpha[] = "ab.";
    size_t n = min + pick(4);
    for (size_t i = 0; i < n; i++)
        buf[i] = alpha[pick(3)];
    buf[n] = 0;
}

static json_t *gen_filter(int depth);

static json_t *gen_map(void)
{
    json_t *m = json_object();
    unsigned n = 1 + pick(2);
    for (unsigned i = 0; i < n; i++) {
        char v[8];
        value(v, 1);
        if (chance(10)) /* canonical forms of non-string attributes */
            snprintf(v, sizeof v, "%s", chance(50) ? "3" : "true");
        json_object_set_new(m, any_attr(), json_string(v));
    }
    return m;
}

static json_t *gen_cesql(void)
{
    char a[8], b[8], e[160];
    value(a, 0);
    value(b, 1);
    const char *x = str_attr(), *y = str_attr();
    int k = (int)pick(6) - 1;
    switch (pick(16)) {
    case 0: snprintf(e, sizeof e, "%s = '%s'", x, a); break;
    case 1: snprintf(e, sizeof e, "%s LIKE '%s%%'", x, a); break;
    case 2: snprintf(e, sizeof e, "%s LIKE '%%%s'", x, a); break;
    case 3: snprintf(e, sizeof e, "%s LIKE '%s'", x, a); break;
    case 4: snprintf(e, sizeof e, "%s = '%s' AND %s LIKE '%s%%'", x, a, y,
                     b); break;
    case 5: snprintf(e, sizeof e, "%s = '%s' OR %s = '%s'", x, a, y, b);
        break;
    case 6: snprintf(e, sizeof e, "INT(prio) > %d", k); break;
    case 7: snprintf(e, sizeof e, "%s = '%s' AND INT(prio) > %d", x, a, k);
        break;
    case 8: snprintf(e, sizeof e, "EXISTS %s", x); break;
    case 9: snprintf(e, sizeof e, "NOT (%s = '%s')", x, a); break;
    case 10: snprintf(e, sizeof e, "flag"); break;
    case 11: snprintf(e, sizeof e, "%s = '%s' AND (%s = '%s' OR %s LIKE "
                      "'%%%s')", x, a, y, b, x, b); break;
    case 12: snprintf(e, sizeof e, "prio = '%d'", k); break;
    case 13: snprintf(e, sizeof e, "'%s' = %s", a, x); break;
    case 14: snprintf(e, sizeof e, "%s LIKE 'a_%s' AND prio = %d", x, a, k);
        break;
    default: snprintf(e, sizeof e, "%s LIKE '%s%%' AND %s LIKE '%%%s' AND "
                      "flag = true", x, a, x, b); break;
    }
    return json_pack("{s:s}", "cesql", e);
}

static json_t *gen_list(int depth)
{
    json_t *l = json_array();
    unsigned n = 1 + pick(3);
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(l, gen_filter(depth + 1));
    return l;
}

static json_t *gen_filter(int depth)
{
    unsigned d = pick(depth > 2 ? 4 : 8);
    switch (d) {
    case 0: return json_pack("{s:o}", "exact", gen_map());
    case 1: return json_pack("{s:o}", "prefix", gen_map());
    case 2: return json_pack("{s:o}", "suffix", gen_map());
    case 3: return gen_cesql();
    case 4: return json_pack("{s:o}", "all", gen_list(depth));
    case 5: return json_pack("{s:o}", "any", gen_list(depth));
    case 6: return json_pack("{s:o}", "not", gen_filter(depth + 1));
    default: return json_pack("{s:o}", "exact", gen_map());
    }
}

static json_t *gen_spec(void)
{
    json_t *spec = json_object();
    if (chance(30)) {
        json_t *attrs = json_object();
        unsigned n = pick(4);
        for (unsigned i = 0; i < n; i++) {
            char v[8] = "";
            if (!chance(30))
                value(v, 1);
            const char *name = any_attr();
            json_object_set_new(attrs, name, json_string(v));
        }
        json_object_set_new(spec, "filter",
                            json_pack("{s:o}", "attributes", attrs));
    }
    if (chance(75)) {
        json_t *l = json_array();
        unsigned n = pick(4); /* 0: the legacy filter (if any) applies */
        for (unsigned i = 0; i < n; i++)
            json_array_append_new(l, gen_filter(0));
        json_object_set_new(spec, "filters", l);
    }
    return spec;
}

static ce_event *gen_event(void)
{
    ce_event *ev = ce_event_new();
    char v[8];
    assert_non_null(ev);
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "id", "1", NULL), 0);
    value(v, 1);
    assert_int_equal(ce_event_set_str(ev, "type", v, NULL), 0);
    value(v, 1);
    assert_int_equal(ce_event_set_str(ev, "source", v, NULL), 0);
    for (unsigned i = 2; i < 5 + nextra; i++) {
        if (!chance(60))
            continue;
        value(v, 0);
        const char *name = i < 5 ? base_attrs[i] : extra_attrs[i - 5];
        assert_int_equal(ce_event_set_str(ev, name, v, NULL), 0);
    }
    if (chance(60))
        assert_int_equal(ce_event_set_int(ev, "prio", (int32_t)pick(7) - 2,
                                          NULL), 0);
    else if (chance(20)) /* a string that INT() cannot cast: an error */
        assert_int_equal(ce_event_set_str(ev, "prio", "a", NULL), 0);
    if (chance(50))
        assert_int_equal(ce_event_set_bool(ev, "flag", chance(50), NULL), 0);
    ce_event_freeze(ev);
    return ev;
}

static size_t words(size_t n)
{
    return (n + 63) / 64;
}

static void check_round(unsigned ntrig, unsigned nev, uint64_t *cases,
                        uint64_t *matches)
{
    kn_filter **fs = calloc(ntrig ? ntrig : 1, sizeof *fs);
    assert_non_null(fs);
    for (unsigned i = 0; i < ntrig; i++) {
        if (chance(3))
            continue; /* an unused slot */
        json_t *spec = gen_spec();
        kn_err err;
        if (kn_filter_compile(spec, "spec", &fs[i], &err) != KN_OK) {
            char *s = json_dumps(spec, 0);
            fail_msg("generated spec rejected: %s: %s: %s", s, err.field,
                     err.msg);
        }
        json_decref(spec);
    }
    kn_filter_index *ix = NULL;
    kn_err err;
    assert_int_equal(kn_filter_index_build(fs, ntrig, &ix, &err), KN_OK);
    assert_int_equal(kn_filter_index_size(ix), ntrig);
    uint64_t *want = calloc(words(ntrig) + 1, sizeof *want);
    uint64_t *got = calloc(words(ntrig) + 1, sizeof *got);
    uint32_t *ids = calloc(ntrig + 1, sizeof *ids);
    assert_true(want && got && ids);
    for (unsigned e = 0; e < nev; e++) {
        ce_event *ev = gen_event();
        size_t nwant = 0;
        memset(want, 0, (words(ntrig) + 1) * sizeof *want);
        for (unsigned i = 0; i < ntrig; i++)
            if (kn_filter_match(fs[i], ev, NULL)) {
                want[i / 64] |= 1ull << (i % 64);
                nwant++;
            }
        got[words(ntrig)] = 0x5a5a; /* past the end: must stay untouched */
        size_t ngot = kn_filter_index_match(ix, ev, got);
        size_t nids = kn_filter_index_match_ids(ix, ev, ids, ntrig);
        bool same = ngot == nwant && nids == nwant &&
                    got[words(ntrig)] == 0x5a5a &&
                    memcmp(want, got, words(ntrig) * sizeof *got) == 0;
        for (size_t k = 0; same && k < nids; k++)
            same = ids[k] < ntrig &&
                   (want[ids[k] / 64] >> (ids[k] % 64) & 1);
        if (!same) {
            ce_buf b = CE_BUF_INIT;
            ce_attr at;
            for (size_t k = 0; ce_event_attr_at(ev, k, &at); k++)
                ce_buf_printf(&b, "%s=\"%s\" ", at.name, at.value);
            for (unsigned i = 0; i < ntrig; i++) {
                bool w = want[i / 64] >> (i % 64) & 1;
                bool g = got[i / 64] >> (i % 64) & 1;
                if (w != g)
                    fprintf(stderr, "trigger %u: naive %d index %d\n", i, w,
                            g);
            }
            fail_msg("index and naive differ (naive %zu, bitmap %zu, ids "
                     "%zu) for event %s", nwant, ngot, nids, b.data);
        }
        /* a short ids buffer: the count is still the total */
        if (nwant > 1)
            assert_int_equal(kn_filter_index_match_ids(ix, ev, ids, 1),
                             nwant);
        *matches += nwant;
        (*cases)++;
        ce_event_unref(ev);
    }
    kn_filter_index_free(ix);
    for (unsigned i = 0; i < ntrig; i++)
        kn_filter_free(fs[i]);
    free(fs);
    free(want);
    free(got);
    free(ids);
}

static void test_property(void **state)
{
    (void)state;
    uint64_t seed = 0x6b6e6974u; /* "knit" */
    unsigned rounds = 400;
    const char *s = getenv("KNIT_FILTER_SEED");
    if (s && *s)
        seed = strtoull(s, NULL, 0);
    s = getenv("KNIT_FILTER_ROUNDS");
    if (s && *s)
        rounds = (unsigned)strtoul(s, NULL, 0);
    printf("filter index property test: seed %" PRIu64 " (set "
           "KNIT_FILTER_SEED to replay), %u rounds\n", seed, rounds);
    rng_state = seed ? seed : 1;
    uint64_t cases = 0, matches = 0;
    for (unsigned r = 0; r < rounds; r++) {
        /* every 8th round has many attributes (event-driven lookup) */
        nextra = r % 8 == 7 ? 12 + pick(12) : 0;
        for (unsigned i = 0; i < nextra; i++)
            snprintf(extra_attrs[i], sizeof extra_attrs[i], "e%u", i);
        unsigned ntrig = r % 50 == 0 ? pick(3) : 1 + pick(r % 5 ? 60 : 400);
        check_round(ntrig, 40, &cases, &matches);
    }
    printf("%" PRIu64 " events checked, %" PRIu64 " matches\n", cases,
           matches);
    assert_true(cases >= 10000);
    assert_true(matches > cases); /* the sets do match things */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
