/*
 * CESQL evaluation semantics beyond the TCK: typed extensions, 32-bit
 * overflow, casting corner cases, fail-fast zero values, short-circuits,
 * LIKE (UTF-8 aware, escapes, backtracking), IN, every built-in function
 * with Unicode input and error cases. Each expression is checked both
 * folded and unfolded (CE_SQL_NO_FOLD), which must agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevents/cesql.h"

static ce_event *event;
static ce_sql_ctx *ctx;

static int setup(void **state)
{
    (void)state;
    event = ce_event_new();
    ctx = ce_sql_ctx_new();
    if (!event || !ctx)
        return -1;
    ce_err err;
    int rc = 0;
    rc |= ce_event_set_str(event, "specversion", "1.0", &err);
    rc |= ce_event_set_str(event, "id", "A234-1234-1234", &err);
    rc |= ce_event_set_str(event, "source", "https://example.com/src", &err);
    rc |= ce_event_set_str(event, "type", "com.example.object.created", &err);
    rc |= ce_event_set_str(event, "subject", "  héllo wörld\u00a0", &err);
    rc |= ce_event_set_str(event, "time", "2018-04-26T14:48:09+02:00", &err);
    rc |= ce_event_set_int(event, "myint", 10, &err);
    rc |= ce_event_set_int(event, "negint", -2147483647 - 1, &err);
    rc |= ce_event_set_bool(event, "mybool", true, &err);
    rc |= ce_event_set_bool(event, "myfalse", false, &err);
    rc |= ce_event_set_str(event, "mystr", "10", &err);
    rc |= ce_event_set_str(event, "word", "TRUE", &err);
    rc |= ce_event_set_str(event, "jp", "日本語", &err);
    rc |= ce_event_set_str(event, "empty", "", &err);
    rc |= ce_event_set(event, "mybin", "AQID", 4, CE_TYPE_BINARY, &err);
    rc |= ce_event_set(event, "myuri", "https://x.example/a?b=c", 23,
                       CE_TYPE_URI, &err);
    if (rc)
        fprintf(stderr, "setup: %s: %s\n", err.attr, err.msg);
    return rc ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    ce_event_unref(event);
    ce_sql_ctx_free(ctx);
    return 0;
}

/* Evaluates src folded and unfolded; both must give (want_err, value). */
static void check(const char *src, ce_sql_error want_err, ce_sql_type t,
                  bool b, int32_t i, const char *s)
{
    for (int pass = 0; pass < 2; pass++) {
        ce_sql_expr *x = NULL;
        ce_err err = {0};
        int rc = ce_sql_compile(src, strlen(src),
                                pass ? CE_SQL_NO_FOLD : 0, &x, &err);
        if (rc != CE_OK)
            fail_msg("%s: compile: %s at %ld", src, err.msg, err.offset);
        ce_sql_value v;
        ce_sql_error e = ce_sql_eval(x, event, ctx, &v);
        char why[200];
        ce_sql_ctx_explain(ctx, x, why, sizeof why);
        const char *how = pass ? "unfolded" : "folded";
        if (e != want_err)
            fail_msg("%s (%s): error %s, want %s (%s)", src, how,
                     ce_sql_error_str(e), ce_sql_error_str(want_err), why);
        if (v.type != t)
            fail_msg("%s (%s): type %s, want %s", src, how,
                     ce_sql_type_str(v.type), ce_sql_type_str(t));
        if (t == CE_SQL_BOOLEAN && v.b != b)
            fail_msg("%s (%s): got %d, want %d", src, how, v.b, b);
        if (t == CE_SQL_INTEGER && v.i != i)
            fail_msg("%s (%s): got %d, want %d", src, how, (int)v.i,
                     (int)i);
        if (t == CE_SQL_STRING) {
            assert_non_null(v.s);
            if (v.len != strlen(s) || memcmp(v.s, s, v.len))
                fail_msg("%s (%s): got '%.*s', want '%s'", src, how,
                         (int)v.len, v.s, s);
        }
        ce_sql_free(x);
    }
}

#define B(src, err, val) check(src, err, CE_SQL_BOOLEAN, val, 0, NULL)
#define I(src, err, val) check(src, err, CE_SQL_INTEGER, false, val, NULL)
#define S(src, err, val) check(src, err, CE_SQL_STRING, false, 0, val)
#define OK CE_SQL_OK
#define EMATH CE_SQL_EMATH
#define ECAST CE_SQL_ECAST
#define EMISS CE_SQL_EMISSING_ATTRIBUTE
#define EFUNC CE_SQL_EFUNCTION
#define ENOFN CE_SQL_EMISSING_FUNCTION

static void test_attributes(void **state)
{
    (void)state;
    I("myint", OK, 10);
    I("myint + 1", OK, 11);
    B("myint = 10", OK, true);
    B("myint = '10'", OK, true);     /* left cast to String */
    B("'10' = myint", OK, true);     /* left cast to Integer */
    B("'010' = myint", OK, true);
    B("myint = '010'", OK, false);
    B("mybool", OK, true);
    B("NOT mybool", OK, false);
    B("mybool = 'true'", OK, true);
    B("myfalse = FALSE", OK, true);
    B("TRUE = word", OK, false);     /* "true" = "TRUE" */
    B("word = TRUE", OK, true);
    S("mystr", OK, "10");
    B("mystr > 9", OK, true);
    I("mystr + 1", OK, 11);
    S("mybin", OK, "AQID");
    S("myuri", OK, "https://x.example/a?b=c");
    S("time", OK, "2018-04-26T14:48:09+02:00");
    S("SOURCE", OK, "https://example.com/src");
    S("Type", OK, "com.example.object.created");
    B("missing", EMISS, false);
    I("-missing", EMISS, 0);
    S("UPPER(missing)", EMISS, "");
    I("LENGTH(missing)", EMISS, 0);
    B("missing IN (1)", EMISS, false);
    B("1 IN (missing)", EMISS, false);
    B("missing LIKE '%'", EMISS, false);
    B("EXISTS myint AND EXISTS mybin AND NOT EXISTS missing", OK, true);
    B("EXISTS empty", OK, true);
    S("empty", OK, "");
    I("negint", OK, -2147483647 - 1);
}

static void test_integers(void **state)
{
    (void)state;
    I("2147483647 + 0", OK, 2147483647);
    I("2147483647 + 1", EMATH, 0);
    I("-2147483648 - 1", EMATH, 0);
    I("-2147483648 + -1", EMATH, 0);
    I("65536 * 65536", EMATH, 0);
    I("-65536 * 32768", OK, -2147483647 - 1);
    I("-2147483648 / -1", EMATH, 0);
    I("-2147483648 % -1", OK, 0);
    I("- -2147483648", EMATH, 0);
    I("-negint", EMATH, 0);
    I("negint / -1", EMATH, 0);
    I("ABS(negint)", EMATH, 2147483647);
    I("ABS(-7)", OK, 7);
    I("7 / -2", OK, -3);
    I("-7 / 2", OK, -3);
    I("-7 % 2", OK, -1);
    I("7 % -2", OK, 1);
    I("myint / 0", EMATH, 0);
    I("myint % 0", EMATH, 0);
    I("0 / myint", OK, 0);
    I("--10", OK, 10);
    I("- - -10", OK, -10);
    I("+5", OK, 5);
    B("2147483647 > -2147483648", OK, true);
    B("myint >= 10 AND myint <= 10 AND NOT myint < 10", OK, true);
    I("(1 + 2) * (3 + 4) - 10 / 3 % 2", OK, 20);
}

static void test_casts(void **state)
{
    (void)state;
    I("'abc' + 1", ECAST, 0);
    I("1 + 'abc'", ECAST, 0);
    I("'+5' + 0", OK, 5);
    I("'-0' + 0", OK, 0);
    I("'007' + 0", OK, 7);
    I("' 5' + 0", ECAST, 0);
    I("'5 ' + 0", ECAST, 0);
    I("'' + 0", ECAST, 0);
    I("'-' + 0", ECAST, 0);
    I("INT('2147483647')", OK, 2147483647);
    I("INT('2147483648')", ECAST, 0);
    I("INT('-2147483648')", OK, -2147483647 - 1);
    I("INT(subject)", ECAST, 0);
    I("5 + TRUE", OK, 6);
    I("-TRUE", OK, -1);
    I("-FALSE", OK, 0);
    B("BOOL('TrUe')", OK, true);
    B("BOOL('fAlSe')", OK, false);
    B("BOOL('yes')", ECAST, false);
    B("BOOL('1')", ECAST, false);
    B("BOOL(0)", OK, false);
    B("NOT 0", OK, true);
    B("NOT 10", OK, false);
    B("NOT 'x'", ECAST, false);
    S("STRING(-5)", OK, "-5");
    S("STRING(-2147483648)", OK, "-2147483648");
    S("STRING(myint)", OK, "10");
    S("STRING(mybool)", OK, "true");
    S("STRING(FALSE)", OK, "false");
    I("LENGTH(TRUE)", OK, 4);
    I("LENGTH(-123)", OK, 4);
    B("IS_INT('12')", OK, true);
    B("IS_INT('-2147483648')", OK, true);
    B("IS_INT('2147483648')", OK, false);
    B("IS_INT('x')", OK, false);
    B("IS_INT(TRUE)", OK, true);
    B("IS_INT(mystr)", OK, true);
    B("IS_BOOL('FALSE')", OK, true);
    B("IS_BOOL(0)", OK, true);
    B("IS_BOOL('0')", OK, false);
    B("IS_BOOL(word)", OK, true);
    B("1 = TRUE", OK, true);      /* 1 cast to Boolean */
    B("TRUE = 1", OK, true);      /* TRUE cast to Integer 1 */
    B("2 = TRUE", OK, true);
    B("TRUE = 2", OK, false);
    B("'abc' = 1", ECAST, false);
    B("1 = 'abc'", OK, false);    /* "1" = "abc" */
}

static void test_logic(void **state)
{
    (void)state;
    B("FALSE AND 'abc'", OK, false);
    B("'abc' AND TRUE", ECAST, false);
    B("TRUE AND 'abc'", ECAST, false);
    B("TRUE OR missing", OK, true);
    B("missing OR TRUE", EMISS, false);
    B("FALSE AND missing", OK, false);
    B("TRUE AND missing", EMISS, false);
    B("TRUE XOR missing", EMISS, false);
    B("TRUE XOR TRUE XOR TRUE", OK, true);
    B("'true' AND 'TRUE' AND 1", OK, true);
    B("FALSE OR FALSE OR 0 OR 'false'", OK, false);
    B("myint = 10 AND (mybool OR missing)", OK, true);
    B("myint = 11 AND 1 / 0 = 0", OK, false);
    B("myint = 10 AND 1 / 0 = 0", EMATH, false);
    B("TRUE AND TRUE AND myint = 10", OK, true);
    B("FALSE OR myint = 10", OK, true);
    /* right associativity is visible with mixed operators */
    B("FALSE AND TRUE OR TRUE", OK, false);   /* FALSE AND (TRUE OR TRUE) */
    B("TRUE OR FALSE AND FALSE", OK, true);   /* TRUE OR (FALSE AND FALSE) */
    /* NOT binds to the primary */
    B("NOT myint = 10", OK, false);           /* (NOT 10) = 10 -> false = true */
    B("NOT (myint = 10)", OK, false);
    B("NOT FALSE = TRUE", OK, true);
}

static void test_like(void **state)
{
    (void)state;
    B("'' LIKE ''", OK, true);
    B("'a' LIKE ''", OK, false);
    B("'' LIKE '%'", OK, true);
    B("'' LIKE '_'", OK, false);
    B("'abc' LIKE '%%'", OK, true);
    B("'abc' LIKE '%b%'", OK, true);
    B("'abc' LIKE '%d%'", OK, false);
    B("'abc' LIKE '_%_'", OK, true);
    B("'a' LIKE '_%_'", OK, false);
    B("'aaa' LIKE '%a%a%a%'", OK, true);
    B("'aa' LIKE '%a%a%a%'", OK, false);
    B("'abcabd' LIKE '%ab_'", OK, true);
    B("'mississippi' LIKE '%iss%ipp%'", OK, true);
    B("'mississippi' LIKE 'm%iss%s_ppi'", OK, true);
    B("'mississippi' LIKE 'm%iss%x%'", OK, false);
    B("'héllo' LIKE 'h_llo'", OK, true);
    B("'héllo' LIKE 'h__llo'", OK, false);
    B("jp LIKE '_本_'", OK, true);
    B("jp LIKE '日%'", OK, true);
    B("jp LIKE '%語'", OK, true);
    B("jp LIKE '___'", OK, true);
    B("jp LIKE '____'", OK, false);
    B("'50%' LIKE '%\\%'", OK, true);
    B("'50' LIKE '%\\%'", OK, false);
    B("'a_b' LIKE 'a\\_b'", OK, true);
    B("'axb' LIKE 'a\\_b'", OK, false);
    B("'a\\b' LIKE 'a\\b'", OK, true);          /* \b is literal */
    B("'a\\\\b' LIKE 'a\\\\b'", OK, true);       /* \\ is two chars */
    B("'a\\%' LIKE 'a\\\\%'", OK, true);         /* \ then \% */
    B("'abc' LIKE 'ABC'", OK, false);           /* case-sensitive */
    B("10 LIKE '1%'", OK, true);
    B("myint LIKE '1_'", OK, true);
    B("mybool LIKE 't%'", OK, true);
    B("type LIKE 'com.example.%'", OK, true);
    B("type NOT LIKE 'com.example.%'", OK, false);
    B("type LIKE '%.created'", OK, true);
    B("type LIKE '%example%'", OK, true);
    B("type LIKE 'com.example.object.created'", OK, true);
    B("type LIKE 'com.example.object.create'", OK, false);
    B("type LIKE 'com%object%created'", OK, true);
    B("type LIKE \"com.%\"", OK, true);
}

static void test_in(void **state)
{
    (void)state;
    B("mystr IN (1, '10')", OK, true);
    B("mystr IN (10)", OK, true);            /* 10 cast to "10" */
    B("myint IN ('010')", OK, true);         /* '010' cast to 10 */
    B("5 IN ('a', 5)", ECAST, false);        /* 'a' cannot be an Integer */
    B("5 IN (5, 'a')", OK, true);            /* stops at the match */
    B("5 NOT IN (5, 'a')", OK, false);
    B("5 NOT IN (1, 2)", OK, true);
    B("5 NOT IN ('a')", ECAST, false);
    B("type IN (source, id, 'com.example.object.created')", OK, true);
    B("TRUE IN (0, 1)", OK, true);
    B("FALSE IN ('x')", ECAST, false);
    B("myint IN (myint + 0)", OK, true);
}

static void test_strings(void **state)
{
    (void)state;
    I("LENGTH(jp)", OK, 3);
    I("LENGTH(subject)", OK, 14);
    I("LENGTH('')", OK, 0);
    S("UPPER(jp)", OK, "日本語");
    S("UPPER('straße')", OK, "STRAßE");     /* simple mapping only */
    S("LOWER('ÀÉÎ ΑΒΓ ДЖ')", OK, "àéî αβγ дж");
    S("UPPER('àéî αβγ дж')", OK, "ÀÉÎ ΑΒΓ ДЖ");
    S("LOWER('İ')", OK, "i");
    S("UPPER('ı')", OK, "I");
    S("LOWER('\u212a')", OK, "k");      /* Kelvin sign: 3 -> 1 byte */
    S("UPPER('\u0250')", OK, "\u2c6f");   /* 2 -> 3 bytes */
    S("UPPER(subject)", OK, "  HÉLLO WÖRLD\u00a0");
    S("TRIM(subject)", OK, "héllo wörld");
    S("TRIM('\u00a0\u3000 x \u2003')", OK, "x");
    S("TRIM('   ')", OK, "");
    S("TRIM('')", OK, "");
    S("TRIM('x')", OK, "x");
    S("LEFT(jp, 2)", OK, "日本");
    S("RIGHT(jp, 2)", OK, "本語");
    S("LEFT(jp, 0)", OK, "");
    S("RIGHT(jp, 0)", OK, "");
    S("LEFT(jp, 2147483647)", OK, "日本語");
    S("RIGHT(jp, -1)", EFUNC, "日本語");
    S("LEFT(jp, -1)", EFUNC, "日本語");
    S("SUBSTRING(jp, 2)", OK, "本語");
    S("SUBSTRING(jp, -1)", OK, "語");
    S("SUBSTRING(jp, 3)", OK, "語");
    S("SUBSTRING(jp, -3)", OK, "日本語");
    S("SUBSTRING(jp, 4)", EFUNC, "");
    S("SUBSTRING(jp, -4)", EFUNC, "");
    S("SUBSTRING(jp, 0, 5)", OK, "");
    S("SUBSTRING(jp, 2, 1)", OK, "本");
    S("SUBSTRING(jp, 1, 0)", OK, "");
    S("SUBSTRING(jp, 1, -1)", EFUNC, "");
    S("SUBSTRING(jp, 2, 2147483647)", OK, "本語");
    S("SUBSTRING(jp, -2147483648)", EFUNC, "");
    S("SUBSTRING('', 1)", EFUNC, "");
    S("SUBSTRING('', 0)", OK, "");
    S("CONCAT(1, TRUE, 'x', jp)", OK, "1truex日本語");
    S("CONCAT(jp)", OK, "日本語");
    S("CONCAT()", OK, "");
    S("CONCAT_WS('-', 'a', myint, mybool)", OK, "a-10-true");
    S("CONCAT_WS(', ', jp)", OK, "日本語");
    S("CONCAT_WS(jp)", OK, "");
    S("CONCAT(id, '/', type, '/', source, '/', subject, '/', myint, '/', "
      "mybool)", OK,
      "A234-1234-1234/com.example.object.created/https://example.com/src/"
      "  héllo wörld\u00a0/10/true");
    S("CONCAT_WS(',', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', myint)",
      OK, "a,b,c,d,e,f,g,h,i,10");
    B("LOWER(type) = type AND UPPER(LEFT(type, 3)) = 'COM'", OK, true);
    S("LEFT(missing, 1)", EMISS, "");
    S("LEFT('abc', 'x')", ECAST, "");
    B("FOO(missing)", ENOFN, false);
    B("LEFT('a') = 'a'", ENOFN, false);
    B("CONCAT_WS()", ENOFN, false);
    B("myint = 10 AND NOSUCH()", ENOFN, false);
    B("myint = 11 AND NOSUCH()", OK, false);
}

static void test_no_event(void **state)
{
    (void)state;
    ce_sql_expr *x = NULL;
    ce_sql_value v;
    const char *src = "EXISTS id AND NOT EXISTS subject";
    assert_int_equal(ce_sql_compile(src, strlen(src), 0, &x, NULL), CE_OK);
    assert_int_equal(ce_sql_eval(x, NULL, ctx, &v), CE_SQL_OK);
    assert_true(v.b);
    ce_sql_free(x);
    src = "id";
    assert_int_equal(ce_sql_compile(src, strlen(src), 0, &x, NULL), CE_OK);
    assert_int_equal(ce_sql_eval(x, NULL, ctx, &v),
                     CE_SQL_EMISSING_ATTRIBUTE);
    assert_int_equal(v.type, CE_SQL_BOOLEAN);
    assert_false(v.b);
    ce_sql_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_casts),
        cmocka_unit_test(test_logic),
        cmocka_unit_test(test_like),
        cmocka_unit_test(test_in),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_no_event),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
