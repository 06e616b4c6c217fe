/*
 * 0006-yaml-lines: the path → line side table (nested maps, sequences,
 * flow collections, multi-document offsets), kn_yaml_line's parent
 * fallback, and every load error with its file:line, field and message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"

static const char *broker_yaml =
    "apiVersion: eventing.knative.dev/v1\n"        /* 1 */
    "kind: Trigger\n"                              /* 2 */
    "metadata:\n"                                  /* 3 */
    "  name: t1\n"                                 /* 4 */
    "  annotations:\n"                             /* 5 */
    "    knit.dev/max-in-flight: \"10\"\n"         /* 6 */
    "spec:\n"                                      /* 7 */
    "  delivery:\n"                                /* 8 */
    "    retry: 3\n"                               /* 9 */
    "    backoffDelay: PT0.2S\n"                   /* 10 */
    "  filters:\n"                                 /* 11 */
    "  - exact:\n"                                 /* 12 */
    "      type: com.example\n"                    /* 13 */
    "  - any:\n"                                   /* 14 */
    "    - prefix: {source: x,\n"                  /* 15 */
    "               id: y}\n"                      /* 16 */
    "    - suffix:\n"                              /* 17 */
    "        subject: .png\n"                      /* 18 */
    "  subscriber:\n"                              /* 19 */
    "    uri: [a,\n"                               /* 20 */
    "      b]\n";                                  /* 21 */

static void test_lines(void **state)
{
    (void)state;
    kn_yaml_doc *docs;
    size_t n;
    kn_err err = {0};
    assert_int_equal(kn_yaml_load("t.yaml", broker_yaml, strlen(broker_yaml),
                                  &docs, &n, &err), 1);
    const kn_yaml_doc *d = &docs[0];
    static const struct {
        const char *path;
        int line;
    } want[] = {
        {"", 1},
        {"apiVersion", 1},
        {"kind", 2},
        {"metadata", 3},
        {"metadata.name", 4},
        {"metadata.annotations", 5},
        {"metadata.annotations.knit.dev/max-in-flight", 6},
        {"spec", 7},
        {"spec.delivery", 8},
        {"spec.delivery.retry", 9},
        {"spec.delivery.backoffDelay", 10},
        {"spec.filters", 11},
        {"spec.filters[0]", 12},
        {"spec.filters[0].exact", 12},
        {"spec.filters[0].exact.type", 13},
        {"spec.filters[1]", 14},
        {"spec.filters[1].any", 14},
        {"spec.filters[1].any[0]", 15},
        {"spec.filters[1].any[0].prefix", 15},
        {"spec.filters[1].any[0].prefix.source", 15},
        {"spec.filters[1].any[0].prefix.id", 16},
        {"spec.filters[1].any[1].suffix", 17},
        {"spec.filters[1].any[1].suffix.subject", 18},
        {"spec.subscriber.uri", 20},
        {"spec.subscriber.uri[0]", 20},
        {"spec.subscriber.uri[1]", 21},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *v = json_object_get(d->lines, want[i].path);
        if (!v || json_integer_value(v) != want[i].line)
            fail_msg("%s: table has %lld, want %d", want[i].path,
                     v ? (long long)json_integer_value(v) : -1LL,
                     want[i].line);
        assert_int_equal(kn_yaml_line(d, want[i].path), want[i].line);
    }
    /* one entry per node */
    assert_int_equal(json_object_size(d->lines), 28);
    /* parent fallback for paths that do not exist */
    assert_int_equal(kn_yaml_line(d, "spec.delivery.timeout"), 8);
    assert_int_equal(kn_yaml_line(d, "spec.filters[7].exact"), 11);
    assert_int_equal(kn_yaml_line(d, "spec.filters[0].exact.nope.deeper"),
                     12);
    assert_int_equal(kn_yaml_line(d, "nothing.here"), 1);
    assert_int_equal(kn_yaml_line(d, NULL), 1);
    assert_int_equal(kn_yaml_line(NULL, "x"), 0);
    kn_yaml_docs_free(docs, n);
}

static void test_lines_multi_doc(void **state)
{
    (void)state;
    const char *text = "a: 1\n---\n\nkind: Broker\nmetadata:\n  name: b\n"
                       "---\n- x\n- y\n";
    kn_yaml_doc *docs;
    size_t n;
    assert_int_equal(kn_yaml_load("m.yaml", text, strlen(text), &docs, &n,
                                  NULL), 3);
    assert_int_equal(docs[0].line, 1);
    assert_int_equal(kn_yaml_line(&docs[0], "a"), 1);
    assert_int_equal(docs[1].line, 2);
    assert_int_equal(kn_yaml_line(&docs[1], "kind"), 4);
    assert_int_equal(kn_yaml_line(&docs[1], "metadata.name"), 6);
    assert_int_equal(kn_yaml_line(&docs[1], "metadata.namespace"), 5);
    assert_int_equal(kn_yaml_line(&docs[2], "[1]"), 9);
    assert_int_equal(kn_yaml_line(&docs[2], "[5]"), 8);
    kn_yaml_docs_free(docs, n);
}

/* Asserts a load error: status, where, field and a message fragment. */
static void bad(const char *text, const char *where, const char *field,
                const char *msg)
{
    kn_yaml_doc *docs = (kn_yaml_doc *)1;
    size_t n = 99;
    kn_err err = {0};
    int rc = kn_yaml_load("bad.yaml", text, strlen(text), &docs, &n, &err);
    if (rc >= 0)
        fail_msg("loaded, want error %s", msg);
    assert_int_equal(rc, KN_PARSE);
    assert_int_equal(err.status, KN_PARSE);
    assert_null(docs);
    assert_int_equal(n, 0);
    if (strcmp(err.where, where) != 0 || strcmp(err.field, field) != 0 ||
        !strstr(err.msg, msg))
        fail_msg("got \"%s\" \"%s\" \"%s\"; want \"%s\" \"%s\" ~\"%s\"",
                 err.where, err.field, err.msg, where, field, msg);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    bad("a: 1\nb: [1, 2\nc: 3\n", "bad.yaml:3", "",
        "did not find expected ',' or ']'");
    bad("a: 1\n b: 2\n", "bad.yaml:2", "",
        "mapping values are not allowed in this context");
    bad("a:\n  - 1\n  b: 2\n", "bad.yaml:3", "", "did not find expected");
    bad("a: \"unterminated\n", "bad.yaml:2", "",
        "found unexpected end of stream");
    bad("a: 1\n\tb: 2\n", "bad.yaml:2", "", "");
    bad("ok: 1\n---\nx: *nope\n", "bad.yaml:3", "x",
        "alias *nope refers to no complete anchor");
    /* message includes libyaml's context */
    kn_err err = {0};
    kn_yaml_doc *docs;
    size_t n;
    const char *t = "a:\n  b: 1\n c: 2\n";
    kn_yaml_load("ctx.yaml", t, strlen(t), &docs, &n, &err);
    assert_string_equal(err.where, "ctx.yaml:3");
    assert_non_null(strstr(err.msg, "while parsing a block mapping at "
                                    "line 1"));
    /* NULL name */
    kn_yaml_load(NULL, "[", 1, &docs, &n, &err);
    assert_string_equal(err.where, "<input>:2");
}

static void test_semantic_errors(void **state)
{
    (void)state;
    bad("a: 1\nspec:\n  x: 1\n  x: 2\n", "bad.yaml:4", "spec.x",
        "duplicate key \"x\" (first defined at line 3)");
    bad("a: 1\na: 1\n", "bad.yaml:2", "a", "duplicate key");
    bad("a: 1\n'a': 2\n", "bad.yaml:2", "a", "duplicate key");
    bad("k: &v a\na: 1\n*v : 2\n", "bad.yaml:3", "a", "duplicate key \"a\" "
        "(first defined at line 2)");
    bad("spec:\n  404: x\n", "bad.yaml:2", "spec",
        "mapping key \"404\" is not a string (quote it)");
    bad("true: x\n", "bad.yaml:1", "", "mapping key \"true\" is not a string");
    bad("~: x\n", "bad.yaml:1", "", "is not a string");
    bad("? [a]\n: x\n", "bad.yaml:1", "", "mapping keys must be strings, "
        "not sequences");
    bad("? {a: 1}\n: x\n", "bad.yaml:1", "", "not mappings");
    bad("a: &n 1\n*n : x\n", "bad.yaml:2", "", "alias *n used as a mapping "
        "key is not a string");
    bad("\"a\\0b\": 1\n", "bad.yaml:1", "", "NUL");
    bad("base: &b {x: 1}\nd:\n  <<: *b\n", "bad.yaml:3", "d",
        "merge keys (<<) are not supported");
    bad("a:\n  b: 99999999999999999999\n", "bad.yaml:2", "a.b",
        "integer 99999999999999999999 is outside the 64-bit range");
    bad("a: [1, 0x10000000000000000]\n", "bad.yaml:1", "a[1]", "outside");
    bad("a: 1e999\n", "bad.yaml:1", "a", "out of range");
    bad("x:\n- .inf\n", "bad.yaml:2", "x[0]", "infinity or NaN");
    bad("x: -.Inf\n", "bad.yaml:1", "x", "infinity or NaN");
    bad("x: .nan\n", "bad.yaml:1", "x", "infinity or NaN");
    bad("a: !Ref foo\n", "bad.yaml:1", "a", "unsupported tag !Ref");
    bad("a: !!binary aGk=\n", "bad.yaml:1", "a",
        "unsupported tag tag:yaml.org,2002:binary");
    bad("a: !!int abc\n", "bad.yaml:1", "a", "value \"abc\" tagged "
        "tag:yaml.org,2002:int is not an integer");
    bad("a: !!bool yes\n", "bad.yaml:1", "a", "is not a boolean");
    bad("a: !!seq {x: 1}\n", "bad.yaml:1", "a", "unsupported tag");
    bad("a: !custom [1]\n", "bad.yaml:1", "a", "unsupported tag !custom");
}

static void test_limits(void **state)
{
    (void)state;
    /* nesting */
    char deep[1200];
    memset(deep, '[', 600);
    memset(deep + 600, ']', 600);
    deep[1199] = '\0';
    kn_yaml_doc *docs;
    size_t n;
    kn_err err = {0};
    deep[599] = '1'; /* 599 '[' then '1' then 599 ']' */
    deep[600] = ']';
    int rc = kn_yaml_load("deep", deep, strlen(deep), &docs, &n, &err);
    assert_int_equal(rc, KN_PARSE);
    assert_non_null(strstr(err.msg, "nesting deeper than 256 levels"));
    assert_string_equal(err.where, "deep:1");

    /* "billion laughs" expansion */
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    rc = kn_yaml_load("bomb", bomb, strlen(bomb), &docs, &n, &err);
    assert_int_equal(rc, KN_PARSE);
    assert_non_null(strstr(err.msg, "aliases expand to more than 100000 "
                                    "nodes"));
    assert_string_equal(err.where, "bomb:5");

    /* an alias that would nest beyond the limit where it is used */
    char text[1024], *p = text;
    p += sprintf(p, "a: &a ");
    for (int i = 0; i < 200; i++)
        *p++ = '[';
    *p++ = '1';
    for (int i = 0; i < 200; i++)
        *p++ = ']';
    p += sprintf(p, "\nb: ");
    for (int i = 0; i < 100; i++)
        *p++ = '[';
    p += sprintf(p, "*a");
    for (int i = 0; i < 100; i++)
        *p++ = ']';
    *p = '\0';
    rc = kn_yaml_load("da", text, strlen(text), &docs, &n, &err);
    assert_int_equal(rc, KN_PARSE);
    assert_non_null(strstr(err.msg, "alias *a nests deeper than 256"));
    assert_string_equal(err.where, "da:2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_lines_multi_doc),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_semantic_errors),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
