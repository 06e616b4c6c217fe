/*
 * CESQL API: scratch contexts (reuse, growth, no allocation once warm,
 * on-stack use by ce_sql_match), filter semantics of ce_sql_match,
 * ce_sql_ctx_explain messages, ce_sql_terms for the trigger index, static
 * result types and constants, and concurrent evaluation of one expression
 * from several threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevents/cesql.h"
#include "cloudevents/cesql_int.h"   /* white-box: scratch chunk list */

static ce_sql_expr *compile(const char *src)
{
    ce_sql_expr *x = NULL;
    ce_err err = {0};
    if (ce_sql_compile(src, strlen(src), 0, &x, &err) != CE_OK)
        fail_msg("%s: %s at %ld", src, err.msg, err.offset);
    return x;
}

static ce_event *mkevent(const char *type, const char *big)
{
    ce_event *ev = ce_event_new();
    assert_non_null(ev);
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "id", "1", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "source", "/s", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "type", type, NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "priority", "5", NULL), 0);
    if (big)
        assert_int_equal(ce_event_set_str(ev, "big", big, NULL), 0);
    return ev;
}

static size_t chunks(const ce_sql_ctx *ctx)
{
    size_t n = 0;
    for (const cs_chunk *c = ctx->head; c; c = c->next)
        n++;
    return n;
}

static void test_scratch(void **state)
{
    (void)state;
    size_t bigsz = 20000;
    char *big = malloc(bigsz + 1);
    assert_non_null(big);
    for (size_t i = 0; i < bigsz; i++)
        big[i] = (char)('a' + i % 26);
    big[bigsz] = 0;
    ce_event *ev = mkevent("com.example.a", big);
    ce_sql_expr *x = compile("CONCAT(UPPER(big), '|', big, STRING(-12))");
    ce_sql_ctx *ctx = ce_sql_ctx_new();
    assert_non_null(ctx);
    ce_sql_value v;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(ce_sql_eval(x, ev, ctx, &v), CE_SQL_OK);
        assert_int_equal(v.type, CE_SQL_STRING);
        assert_int_equal(v.len, 2 * bigsz + 1 + 3);
        assert_int_equal(v.s[0], 'A');
        assert_memory_equal(v.s + bigsz + 1, big, bigsz);
        assert_memory_equal(v.s + 2 * bigsz + 1, "-12", 3);
    }
    /* warm: further evaluations allocate nothing */
    size_t warm = chunks(ctx);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ce_sql_eval(x, ev, ctx, &v), CE_SQL_OK);
    assert_int_equal(chunks(ctx), warm);
    ce_sql_free(x);

    /* LOWER of an already lower-case attribute is the attribute itself */
    x = compile("LOWER(big)");
    assert_int_equal(ce_sql_eval(x, ev, ctx, &v), CE_SQL_OK);
    assert_ptr_equal(v.s, ce_event_get(ev, "big", NULL, NULL));
    ce_sql_free(x);

    /* ce_sql_match without a context: on-stack scratch, heap only for the
     * long strings (ASan checks nothing leaks) */
    x = compile("LENGTH(CONCAT(big, big)) = 40000 AND type LIKE 'com.%'");
    assert_true(ce_sql_match(x, ev, NULL));
    assert_true(ce_sql_match(x, ev, ctx));
    ce_sql_free(x);
    ce_sql_ctx_free(ctx);
    ce_sql_ctx_free(NULL);
    ce_event_unref(ev);
    free(big);
}

static void test_match(void **state)
{
    (void)state;
    ce_event *ev = mkevent("com.example.order.created", NULL);
    static const struct {
        const char *src;
        bool match;
    } cases[] = {
        {"type LIKE 'com.example.%' AND INT(priority) > 3", true},
        {"type LIKE 'com.example.%' AND INT(priority) > 5", false},
        {"type", false},                 /* String, not Boolean */
        {"1", false},
        {"TRUE", true},
        {"missing = 'x'", false},        /* error: no match */
        {"NOT (missing = 'x')", false},  /* still an error */
        {"NOT EXISTS missing", true},
        {"'true'", false},               /* a String, even if "true" */
        {"BOOL('true')", true},
        {"1 / 0 = 0", false},
    };
    ce_sql_ctx *ctx = ce_sql_ctx_new();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ce_sql_expr *x = compile(cases[i].src);
        if (ce_sql_match(x, ev, ctx) != cases[i].match ||
            ce_sql_match(x, ev, NULL) != cases[i].match)
            fail_msg("%s: match should be %d", cases[i].src, cases[i].match);
        ce_sql_free(x);
    }
    ce_sql_ctx_free(ctx);
    ce_event_unref(ev);
}

static void check_explain(const char *src, const char *want)
{
    ce_event *ev = mkevent("t", NULL);
    ce_sql_ctx *ctx = ce_sql_ctx_new();
    ce_sql_expr *x = compile(src);
    ce_sql_value v;
    char buf[256];
    assert_int_not_equal(ce_sql_eval(x, ev, ctx, &v), CE_SQL_OK);
    size_t n = ce_sql_ctx_explain(ctx, x, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    if (strcmp(buf, want))
        fail_msg("%s:\n  got  %s\n  want %s", src, buf, want);
    /* a successful evaluation clears it */
    ce_sql_free(x);
    x = compile("TRUE");
    assert_int_equal(ce_sql_eval(x, ev, ctx, &v), CE_SQL_OK);
    assert_int_equal(ce_sql_ctx_explain(ctx, x, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    ce_sql_free(x);
    ce_sql_ctx_free(ctx);
    ce_event_unref(ev);
}

static void test_explain(void **state)
{
    (void)state;
    check_explain("type = 't' AND myext = 'x'",
                  "missing attribute 'myext' in \"myext\" (at byte 15)");
    check_explain("INT(type) > 1",
                  "cast error: cannot cast 't' to Integer in \"INT(type)\" "
                  "(at byte 0)");
    check_explain("type + 1", "cast error: cannot cast 't' to Integer in "
                              "\"type + 1\" (at byte 0)");
    check_explain("priority = 5 AND 5 / 0 = 0",
                  "math error: division by zero in \"5 / 0\" (at byte 17)");
    check_explain("INT(priority) * 2147483647 > 0",
                  "math error: integer overflow in \"INT(priority) * "
                  "2147483647\" (at byte 0)");
    check_explain("type = 't' AND NOSUCH(1, 2)",
                  "missing function: no function of that name takes 2 "
                  "arguments in \"NOSUCH(1, 2)\" (at byte 15)");
    check_explain("LEFT(type, -3) = ''",
                  "function error: length -3 is negative in "
                  "\"LEFT(type, -3)\" (at byte 0)");
    check_explain("SUBSTRING(type, 5) = ''",
                  "function error: position 5 is beyond the string in "
                  "\"SUBSTRING(type, 5)\" (at byte 0)");
    check_explain("BOOL('maybe')",
                  "cast error: cannot cast to Boolean in \"BOOL('maybe')\" "
                  "(at byte 0)");
}

static void test_terms(void **state)
{
    (void)state;
    ce_sql_expr *x = compile(
        "type = 'com.a' AND source LIKE 'http://%' AND (x OR y) AND "
        "Subject LIKE '%.txt' AND id LIKE 'abc' AND z LIKE 'a_c' AND "
        "w NOT LIKE 'q%' AND 'v' = v AND n = 5");
    ce_sql_term t[8];
    size_t n = ce_sql_terms(x, t, 8);
    assert_int_equal(n, 4);
    assert_int_equal(t[0].kind, CE_SQL_TERM_EXACT);
    assert_string_equal(t[0].attr, "type");
    assert_string_equal(t[0].value, "com.a");
    assert_int_equal(t[0].value_len, 5);
    assert_int_equal(t[1].kind, CE_SQL_TERM_PREFIX);
    assert_string_equal(t[1].attr, "source");
    assert_string_equal(t[1].value, "http://");
    assert_int_equal(t[2].kind, CE_SQL_TERM_SUFFIX);
    assert_string_equal(t[2].attr, "subject");
    assert_int_equal(t[2].attr_len, 7);
    assert_string_equal(t[2].value, ".txt");
    assert_int_equal(t[3].kind, CE_SQL_TERM_EXACT);
    assert_string_equal(t[3].value, "abc");
    assert_int_equal(ce_sql_terms(x, t, 2), 4);     /* total, 2 filled */
    ce_sql_free(x);

    x = compile("type = 'a' OR type = 'b'");
    assert_int_equal(ce_sql_terms(x, t, 8), 0);
    ce_sql_free(x);
    x = compile("type LIKE 'a\\%b%'");              /* escaped % */
    assert_int_equal(ce_sql_terms(x, t, 8), 1);
    assert_int_equal(t[0].kind, CE_SQL_TERM_PREFIX);
    assert_string_equal(t[0].value, "a%b");
    ce_sql_free(x);
    x = compile("type = CONCAT('a', 'b') AND type LIKE ''");  /* folded */
    assert_int_equal(ce_sql_terms(x, t, 8), 2);
    assert_string_equal(t[0].value, "ab");
    assert_string_equal(t[1].value, "");
    ce_sql_free(x);
}

static void test_types(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        ce_sql_type type;
        bool constant;
    } cases[] = {
        {"type", CE_SQL_ANY, false},
        {"1 + 1", CE_SQL_INTEGER, true},
        {"LOWER(x)", CE_SQL_STRING, false},
        {"x = 1", CE_SQL_BOOLEAN, false},
        {"1 = 1", CE_SQL_BOOLEAN, true},
        {"FALSE AND x", CE_SQL_BOOLEAN, true},
        {"TRUE AND x", CE_SQL_BOOLEAN, false},
        {"x AND FALSE", CE_SQL_BOOLEAN, false},
        {"EXISTS source", CE_SQL_BOOLEAN, true},
        {"EXISTS subject", CE_SQL_BOOLEAN, false},
        {"NOSUCH(x)", CE_SQL_BOOLEAN, true},
        {"-x", CE_SQL_INTEGER, false},
        {"x LIKE 'a'", CE_SQL_BOOLEAN, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ce_sql_expr *x = compile(cases[i].src);
        if (ce_sql_result_type(x) != cases[i].type ||
            ce_sql_is_constant(x) != cases[i].constant)
            fail_msg("%s: type %s constant %d", cases[i].src,
                     ce_sql_type_str(ce_sql_result_type(x)),
                     ce_sql_is_constant(x));
        ce_sql_free(x);
    }
    assert_string_equal(ce_sql_error_str(CE_SQL_OK), "");
    assert_string_equal(ce_sql_error_str(CE_SQL_EPARSE), "parse");
    assert_string_equal(ce_sql_error_str(CE_SQL_EMATH), "math");
    assert_string_equal(ce_sql_error_str(CE_SQL_ECAST), "cast");
    assert_string_equal(ce_sql_error_str(CE_SQL_EMISSING_ATTRIBUTE),
                        "missingAttribute");
    assert_string_equal(ce_sql_error_str(CE_SQL_EMISSING_FUNCTION),
                        "missingFunction");
    assert_string_equal(ce_sql_error_str(CE_SQL_EFUNCTION),
                        "functionEvaluation");
    assert_string_equal(ce_sql_error_str(CE_SQL_EGENERIC), "generic");
    assert_string_equal(ce_sql_type_str(CE_SQL_STRING), "String");
}

typedef struct worker {
    const ce_sql_expr *x;
    ce_event *ev;
    int matches;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    ce_sql_ctx *ctx = ce_sql_ctx_new();
    for (int i = 0; i < 2000; i++) {
        ce_sql_value v;
        if (ce_sql_eval(w->x, w->ev, ctx, &v) == CE_SQL_OK &&
            v.type == CE_SQL_STRING && v.len == 17 &&
            !memcmp(v.s, "COM.EXAMPLE.A/5/X", 17))
            w->matches++;
    }
    ce_sql_ctx_free(ctx);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    ce_event *ev = mkevent("com.example.a", NULL);
    ce_event_freeze(ev);
    ce_sql_expr *x = compile("CONCAT_WS('/', UPPER(type), priority, 'X')");
    worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){x, ev, 0};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].matches, 2000);
    }
    ce_sql_free(x);
    ce_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scratch),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_terms),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
