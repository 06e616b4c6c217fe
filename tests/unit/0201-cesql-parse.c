/*
 * CESQL lexer and parser: precedence and associativity as the ANTLR
 * grammar gives them (checked through ce_sql_format's fully bracketed
 * rendering of the unfolded parse), literal and identifier rules, and
 * parse errors with their byte position and message.
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

static void check_format(const char *src, const char *want)
{
    ce_sql_expr *x = NULL;
    ce_err err = {0};
    int rc = ce_sql_compile(src, strlen(src), CE_SQL_NO_FOLD, &x, &err);
    if (rc != CE_OK)
        fail_msg("%s: compile failed at %ld: %s", src, err.offset, err.msg);
    char buf[512];
    size_t n = ce_sql_format(x, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    if (strcmp(buf, want))
        fail_msg("%s: formatted as %s, want %s", src, buf, want);
    ce_sql_free(x);
}

static void test_precedence(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        /* the three traps of the reference */
        {"NOT a = b", "((NOT a) = b)"},
        {"1 + x LIKE 'a'", "(1 + (x LIKE 'a'))"},
        {"a AND b OR c", "(a AND (b OR c))"},
        {"a OR b AND c", "(a OR (b AND c))"},
        /* levels */
        {"a = b AND c = d", "((a = b) AND (c = d))"},
        {"a AND b = c", "(a AND (b = c))"},
        {"4 * 2 + 4 / 2", "((4 * 2) + (4 / 2))"},
        {"4 * (2 + 4) / 2", "((4 * (2 + 4)) / 2)"},
        {"a - b - c", "((a - b) - c)"},
        {"a / b % c", "((a / b) % c)"},
        {"a + b * c", "(a + (b * c))"},
        {"a < b + 1", "(a < (b + 1))"},
        {"1 < 2 < 3", "((1 < 2) < 3)"},
        {"a <> b", "(a <> b)"},
        {"a != b", "(a != b)"},
        {"a >= b", "(a >= b)"},
        {"a <= b", "(a <= b)"},
        /* logical runs become one node, right-associative */
        {"a AND b AND c", "(a AND b AND c)"},
        {"a XOR b XOR c", "(a XOR b XOR c)"},
        {"a AND b OR c OR d AND e", "(a AND (b OR c OR (d AND e)))"},
        {"(a AND b) AND c", "((a AND b) AND c)"},
        /* prefix operators take a primary */
        {"- x * 2", "((- x) * 2)"},
        {"NOT x IN (1, 2)", "((NOT x) IN (1, 2))"},
        {"NOT x LIKE 'a%'", "((NOT x) LIKE 'a%')"},
        {"NOT NOT x", "(NOT (NOT x))"},
        {"NOT -x", "(NOT (- x))"},
        {"- NOT x", "(- (NOT x))"},
        {"NOT (a = b)", "(NOT (a = b))"},
        /* postfix LIKE / IN */
        {"x NOT IN (1, 2)", "(x NOT IN (1, 2))"},
        {"x NOT LIKE 'a%'", "(x NOT LIKE 'a%')"},
        {"a = b LIKE 'x'", "(a = (b LIKE 'x'))"},
        {"a * b IN (1)", "(a * (b IN (1)))"},
        {"a IN (1) LIKE 'x'", "((a IN (1)) LIKE 'x')"},
        {"x LIKE 'a' IN (TRUE)", "((x LIKE 'a') IN (TRUE))"},
        {"x IN (a + 1, b AND c)", "(x IN ((a + 1), (b AND c)))"},
        {"EXISTS a AND b", "((EXISTS a) AND b)"},
        {"NOT EXISTS a", "(NOT (EXISTS a))"},
        /* the sign belongs to the literal */
        {"--10", "(- -10)"},
        {"- 10", "(- 10)"},
        {"-10", "-10"},
        {"+7", "7"},
        {"-4 - 1", "(-4 - 1)"},
        {"4 + -1", "(4 + -1)"},
        {"ABS(-2147483648)", "ABS(-2147483648)"},
        /* functions, case-insensitivity */
        {"lower(A) = 'x'", "(LOWER(a) = 'x')"},
        {"Concat_Ws(',', a)", "CONCAT_WS(',', a)"},
        {"concat()", "CONCAT()"},
        {"foo(1, x)", "FOO(1, x)"},
        {"substring(x, 1, 2)", "SUBSTRING(x, 1, 2)"},
        {"TrUe AnD fAlSe", "(TRUE AND FALSE)"},
        {"SOURCE", "source"},
        {"EXISTS SOURCE", "(EXISTS source)"},
        {"123abc", "123abc"},
        {" \t\r\nx\n", "x"},
        /* strings */
        {"'it\\'s'", "'it\\'s'"},
        {"\"a'b\"", "'a\\'b'"},
        {"\"a\\\"b\"", "'a\"b'"},
        {"'a''b'", "'a\\'b'"},
        {"'ab\\c'", "'ab\\c'"},
        {"''", "''"},
        {"'日本'", "'日本'"},
        {"\"x\\'y\"", "\"x\\'y\""},        /* needs double quotes */
        {"'x\\\\'", "'x\\\\'"},            /* even backslash run */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_format(cases[i][0], cases[i][1]);
}

static void test_folding(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"1 + 2 * 3", "7"},
        {"LOWER('ABC') = 'abc'", "TRUE"},
        {"x = 1 + 1", "(x = 2)"},
        {"FALSE AND x", "FALSE"},
        {"TRUE OR x", "TRUE"},
        {"TRUE AND x", "(x)"},
        {"TRUE AND TRUE AND x AND y", "(x AND y)"},
        {"x AND FALSE", "(x AND FALSE)"},
        {"EXISTS id AND EXISTS subject", "((EXISTS subject))"},
        {"5 / 0", "5 / 0"},
        {"x + (5 / 0)", "(x + 5 / 0)"},
        {"'ab' LIKE 'a%'", "TRUE"},
        {"2 IN (1, 2)", "TRUE"},
        {"CONCAT('a', 'b', 'c')", "'abc'"},
        {"LEFT('abc', 2)", "'ab'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ce_sql_expr *x = NULL;
        const char *src = cases[i][0];
        assert_int_equal(ce_sql_compile(src, strlen(src), 0, &x, NULL),
                         CE_OK);
        char buf[256];
        ce_sql_format(x, buf, sizeof buf);
        if (strcmp(buf, cases[i][1]))
            fail_msg("%s: folded to %s, want %s", src, buf, cases[i][1]);
        ce_sql_free(x);
    }
}

static void check_error(const char *src, size_t n, int code, long offset,
                        const char *needle)
{
    ce_sql_expr *x = (ce_sql_expr *)&x; /* must be reset to NULL */
    ce_err err = {0};
    int rc = ce_sql_compile(src, n, 0, &x, &err);
    if (rc != code)
        fail_msg("%s: rc %d, want %d (%s)", src, rc, code, err.msg);
    assert_null(x);
    assert_int_equal(err.code, code);
    assert_string_equal(err.attr, "cesql");
    if (err.offset != offset)
        fail_msg("%s: offset %ld, want %ld (%s)", src, err.offset, offset,
                 err.msg);
    if (!strstr(err.msg, needle))
        fail_msg("%s: message '%s' lacks '%s'", src, err.msg, needle);
}

#define ERR(src, code, off, needle) \
    check_error(src, sizeof(src) - 1, code, off, needle)

static void test_errors(void **state)
{
    (void)state;
    ERR("", CE_EPARSE, 0, "expected an expression, found end of input");
    ERR("   ", CE_EPARSE, 3, "found end of input");
    ERR("ABC(", CE_EPARSE, 4, "found end of input");
    ERR("5-3", CE_EPARSE, 1, "write 'a - 1'");
    ERR("x -1", CE_EPARSE, 2, "integer -1");
    ERR("x LIKE 123", CE_EPARSE, 7, "string literal pattern after LIKE");
    ERR("x LIKE y", CE_EPARSE, 7, "found identifier y");
    ERR("x NOT LIKE", CE_EPARSE, 10, "pattern after LIKE");
    ERR("x IN ()", CE_EPARSE, 6, "cannot be empty");
    ERR("x IN 1", CE_EPARSE, 5, "'(' after IN");
    ERR("x IN (1, 2", CE_EPARSE, 10, "',' or ')' in the IN set");
    ERR("(1 + 2", CE_EPARSE, 6, "')' to close '(' at byte 0");
    ERR("1 +", CE_EPARSE, 3, "expected a value");
    ERR("1 + )", CE_EPARSE, 4, "found ')'");
    ERR("'abc", CE_EPARSE, 0, "unterminated string literal");
    ERR("\"abc'", CE_EPARSE, 0, "unterminated string literal");
    ERR("'ab\\'", CE_EPARSE, 0, "unterminated");
    ERR("2147483648", CE_EPARSE, 0, "out of range");
    ERR("-2147483649", CE_EPARSE, 0, "out of range");
    ERR("99999999999999999999999", CE_EPARSE, 0, "out of range");
    ERR("a ! b", CE_EPARSE, 2, "'!' must be followed by '='");
    ERR("a NOT b", CE_EPARSE, 2, "NOT here must be followed by LIKE or IN");
    ERR("EXISTS 1", CE_EPARSE, 7, "attribute name after EXISTS");
    ERR("EXISTS", CE_EPARSE, 6, "attribute name after EXISTS");
    ERR("EXISTS foo(1)", CE_EPARSE, 10, "operator or end of input");
    ERR("my_attr", CE_EPARSE, 7, "'(' after a function name");
    ERR("_x", CE_EPARSE, 0, "invalid name");
    ERR("a_1(2)", CE_EPARSE, 0, "invalid name");
    ERR("abc1(2)", CE_EPARSE, 0, "without digits");
    ERR("a = 1 2", CE_EPARSE, 6, "operator or end of input");
    ERR("a = 1)", CE_EPARSE, 5, "found ')'");
    ERR("a\x01", CE_EPARSE, 1, "unexpected character");
    ERR("a = é", CE_EPARSE, 4, "unexpected character");
    ERR("'\xff'", CE_EPARSE, 1, "invalid UTF-8");
    ERR("'a\xc0\xa0'", CE_EPARSE, 2, "invalid UTF-8");
    ERR("a\0b", CE_EPARSE, 1, "NUL byte");
    ERR("LEFT('a',)", CE_EPARSE, 9, "expected a value");
    ERR("LEFT('a' 1)", CE_EPARSE, 9, "',' or ')' after a function argument");
    ERR("a AND", CE_EPARSE, 5, "expected a value");
    ERR("AND a", CE_EPARSE, 0, "found keyword AND");
    ERR("a = = b", CE_EPARSE, 4, "found '='");
    check_error(NULL, 0, CE_EPARSE, 0, "expected an expression");
    /* no error detail wanted */
    ce_sql_expr *x = NULL;
    assert_int_equal(ce_sql_compile("1 +", 3, 0, &x, NULL), CE_EPARSE);
    assert_null(x);
    ERR("TRUE(1)", CE_EPARSE, 4, "operator or end of input");
}

static void test_limits(void **state)
{
    (void)state;
    char *buf = malloc(16384);
    assert_non_null(buf);
    ce_sql_expr *x = NULL;
    ce_err err = {0};

    /* nesting by parentheses and by prefix operators */
    size_t n = 0;
    for (int i = 0; i < 600; i++)
        buf[n++] = '(';
    buf[n++] = '1';
    for (int i = 0; i < 600; i++)
        buf[n++] = ')';
    assert_int_equal(ce_sql_compile(buf, n, 0, &x, &err), CE_ERANGE);
    assert_non_null(strstr(err.msg, "nested deeper"));
    n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)sprintf(buf + n, "NOT ");
    n += (size_t)sprintf(buf + n, "TRUE");
    assert_int_equal(ce_sql_compile(buf, n, 0, &x, &err), CE_ERANGE);

    /* a long left-associative chain nests the tree (not the parser) */
    n = (size_t)sprintf(buf, "a");
    for (int i = 0; i < 200; i++)
        n += (size_t)sprintf(buf + n, " + a");
    assert_int_equal(ce_sql_compile(buf, n, 0, &x, &err), CE_ERANGE);

    /* ...but long AND/OR chains are flat */
    n = (size_t)sprintf(buf, "a = 0");
    for (int i = 1; i < 1000; i++)
        n += (size_t)sprintf(buf + n, " OR a = %d", i);
    assert_int_equal(ce_sql_compile(buf, n, 0, &x, &err), CE_OK);
    ce_sql_free(x);
    x = NULL;

    /* moderate nesting is fine; parentheses alone do not nest the tree */
    n = 0;
    for (int i = 0; i < 300; i++)
        buf[n++] = '(';
    buf[n++] = 'x';
    for (int i = 0; i < 300; i++)
        buf[n++] = ')';
    assert_int_equal(ce_sql_compile(buf, n, 0, &x, &err), CE_OK);
    ce_sql_free(x);
    free(buf);

    /* source size limit */
    size_t big = CE_SQL_MAX_SOURCE + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    huge[0] = 'x';
    assert_int_equal(ce_sql_compile(huge, big, 0, &x, &err), CE_ERANGE);
    free(huge);
}

static void test_strict(void **state)
{
    (void)state;
    ce_sql_expr *x = NULL;
    ce_err err = {0};
    const char *s = "x AND FOO(1)";
    assert_int_equal(ce_sql_compile(s, strlen(s), CE_SQL_STRICT, &x, &err),
                     CE_EINVAL);
    assert_int_equal(err.offset, 6);
    assert_non_null(strstr(err.msg, "unknown function FOO"));
    s = "LEFT('a') = 'a'";
    assert_int_equal(ce_sql_compile(s, strlen(s), CE_SQL_STRICT, &x, &err),
                     CE_EINVAL);
    assert_int_equal(err.offset, 0);
    assert_non_null(strstr(err.msg, "LEFT does not take 1 argument"));
    s = "concat_ws()";
    assert_int_equal(ce_sql_compile(s, strlen(s), CE_SQL_STRICT, &x, &err),
                     CE_EINVAL);
    /* known functions at every arity they have */
    s = "SUBSTRING(x, 1) = SUBSTRING(x, 1, 2) AND CONCAT() = CONCAT_WS(',')";
    assert_int_equal(ce_sql_compile(s, strlen(s), CE_SQL_STRICT, &x, &err),
                     CE_OK);
    ce_sql_free(x);
    /* without STRICT an unknown function compiles */
    s = "FOO(1)";
    assert_int_equal(ce_sql_compile(s, strlen(s), 0, &x, &err), CE_OK);
    assert_true(ce_sql_is_constant(x));
    ce_sql_free(x);
}

static void test_format_truncation(void **state)
{
    (void)state;
    ce_sql_expr *x = NULL;
    const char *s = "alpha = 'beta' AND gamma LIKE 'd%'";
    assert_int_equal(ce_sql_compile(s, strlen(s), 0, &x, NULL), CE_OK);
    char full[128], small[8];
    size_t n = ce_sql_format(x, full, sizeof full);
    assert_string_equal(full, "((alpha = 'beta') AND (gamma LIKE 'd%'))");
    assert_int_equal(ce_sql_format(x, small, sizeof small), n);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(ce_sql_format(x, NULL, 0), n);
    assert_string_equal(ce_sql_source(x), s);
    ce_sql_free(x);
    ce_sql_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_folding),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_format_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
