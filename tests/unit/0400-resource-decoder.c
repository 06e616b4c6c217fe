/*
 * 0400-resource-decoder: the generic table-driven field decoder
 * (kn_decode_object) against a test table — every type, required and
 * non-empty fields, output-only and unsupported fields, unknown fields,
 * validators, lists — and that each error says file:line: path: message.
 * Also kn_parse_size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/broker.h"

static int check_even(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                      const char *path)
{
    (void)f;
    if (json_integer_value(v) % 2)
        return kn_decode_fail(ctx, KN_INVAL, path, "must be even");
    return KN_OK;
}

static const char *const colours[] = {"red", "green", NULL};

static const kn_field item_fields[] = {
    {.name = "id", .type = KN_FT_STRING, .flags = KN_FF_REQUIRED},
    {.name = "weight", .type = KN_FT_INT, .max = 10},
    {0},
};

static const kn_field inner_fields[] = {
    {.name = "count", .type = KN_FT_INT, .check = check_even},
    {.name = "flag", .type = KN_FT_BOOL},
    {0},
};

static const kn_field test_fields[] = {
    {.name = "name", .type = KN_FT_STRING,
     .flags = KN_FF_REQUIRED | KN_FF_NONEMPTY},
    {.name = "retries", .type = KN_FT_INT},
    {.name = "positive", .type = KN_FT_INT, .flags = KN_FF_POSITIVE},
    {.name = "delay", .type = KN_FT_DURATION},
    {.name = "timeout", .type = KN_FT_DURATION, .flags = KN_FF_POSITIVE},
    {.name = "colour", .type = KN_FT_ENUM, .values = colours},
    {.name = "tags", .type = KN_FT_MAP_STRING},
    {.name = "inner", .type = KN_FT_OBJECT, .children = inner_fields},
    {.name = "items", .type = KN_FT_LIST,
     .children = (const kn_field[]){{.name = "item", .type = KN_FT_OBJECT,
                                     .children = item_fields}}},
    {.name = "status", .type = KN_FT_ANY, .flags = KN_FF_OUTPUT},
    {.name = "legacy", .type = KN_FT_ANY, .unsupported = "use name"},
    {0},
};

/* Decodes YAML `text` against test_fields; returns the status and fills
 * msg with kn_err_str. */
static int decode(const char *text, char *msg, size_t n, json_t **out)
{
    kn_yaml_doc *docs = NULL;
    size_t count = 0;
    kn_err err = {0};
    int rc = kn_yaml_load("t.yaml", text, strlen(text), &docs, &count, &err);
    assert_true(rc >= 0);
    assert_int_equal(count, 1);
    kn_decode_ctx ctx = {.file = "t.yaml", .doc = &docs[0], .err = &err};
    rc = kn_decode_object(&ctx, test_fields, docs[0].root, "");
    kn_err_str(&err, msg, n);
    if (out)
        *out = json_incref(docs[0].root);
    kn_yaml_docs_free(docs, count);
    return rc;
}

static void expect_error(const char *text, const char *want)
{
    char msg[1024];
    int rc = decode(text, msg, sizeof msg, NULL);
    if (rc == KN_OK || strcmp(msg, want) != 0)
        fail_msg("input:\n%s\nwant: %s\ngot (%d): %s", text, want, rc, msg);
}

static void test_valid(void **state)
{
    (void)state;
    char msg[512];
    json_t *root = NULL;
    int rc = decode("name: a\n"
                    "retries: 0\n"
                    "positive: 3\n"
                    "delay: PT0.2S\n"
                    "timeout: PT1S\n"
                    "colour: green\n"
                    "tags: {a: b}\n"
                    "inner: {count: 4, flag: true}\n"
                    "items:\n"
                    "- id: x\n"
                    "  weight: 10\n"
                    "status: {anything: [1, 2]}\n"
                    "retries2:\n",
                    msg, sizeof msg, &root);
    /* retries2 is unknown even though it is null */
    assert_int_equal(rc, KN_INVAL);
    assert_string_equal(msg, "t.yaml:13: retries2: unknown field (known "
                             "fields: name, retries, positive, delay, "
                             "timeout, colour, tags, inner, items)");
    json_decref(root);

    rc = decode("name: a\nretries:\nstatus: {x: 1}\n", msg, sizeof msg,
                &root);
    assert_int_equal(rc, KN_OK);
    /* output-only and null members are dropped */
    assert_null(json_object_get(root, "status"));
    assert_null(json_object_get(root, "retries"));
    assert_non_null(json_object_get(root, "name"));
    json_decref(root);
}

static void test_type_errors(void **state)
{
    (void)state;
    expect_error("name: a\nretries: -1\n",
                 "t.yaml:2: retries: expected a non-negative integer");
    expect_error("name: a\nretries: \"3\"\n",
                 "t.yaml:2: retries: expected a non-negative integer");
    expect_error("name: a\nretries: 1.5\n",
                 "t.yaml:2: retries: expected a non-negative integer");
    expect_error("name: a\npositive: 0\n",
                 "t.yaml:2: positive: expected a positive integer");
    expect_error("name: 5\n", "t.yaml:1: name: expected a string, got an "
                              "integer");
    expect_error("name: a\ninner:\n  flag: yes please\n",
                 "t.yaml:3: inner.flag: expected true or false, got a "
                 "string");
}

static void test_duration_enum_map(void **state)
{
    (void)state;
    char msg[1024];
    /* the duration message carries the parser's detail after the colon */
    assert_int_equal(decode("name: a\ndelay: 5s\n", msg, sizeof msg, NULL),
                     KN_INVAL);
    assert_non_null(strstr(msg, "t.yaml:2: delay: expected an ISO-8601 "
                                "duration such as PT0.2S"));
    expect_error("name: a\ndelay: 7\n",
                 "t.yaml:2: delay: expected an ISO-8601 duration such as "
                 "PT0.2S, got an integer");
    expect_error("name: a\ntimeout: PT0S\n",
                 "t.yaml:2: timeout: must be a duration greater than zero");
    expect_error("name: a\ncolour: blue\n",
                 "t.yaml:2: colour: \"blue\" is not one of: red, green");
    expect_error("name: a\ncolour: [red]\n",
                 "t.yaml:2: colour: expected one of: red, green");
    expect_error("name: a\ntags:\n  a: b\n  n: 1\n",
                 "t.yaml:4: tags.n: expected a string, got an integer "
                 "(quote the value)");
    expect_error("name: a\ntags: [a]\n",
                 "t.yaml:2: tags: expected a mapping of strings, got a "
                 "list");
}

static void test_structure(void **state)
{
    (void)state;
    expect_error("retries: 1\n", "t.yaml:1: name: required field is "
                                 "missing");
    expect_error("name: \"\"\n", "t.yaml:1: name: must not be empty");
    expect_error("name: a\ninner: 3\n",
                 "t.yaml:2: inner: expected a mapping, got an integer");
    expect_error("name: a\ninner:\n  count: 3\n",
                 "t.yaml:3: inner.count: must be even");
    expect_error("name: a\ninner:\n  size: 3\n",
                 "t.yaml:3: inner.size: unknown field (known fields: "
                 "count, flag)");
    expect_error("name: a\nitems: {id: x}\n",
                 "t.yaml:2: items: expected a list, got a mapping");
    expect_error("name: a\nitems:\n- id: x\n- weight: 2\n",
                 "t.yaml:4: items[1].id: required field is missing");
    expect_error("name: a\nitems:\n- id: x\n  weight: 11\n",
                 "t.yaml:4: items[0].weight: must be at most 10");
    expect_error("name: a\nlegacy: true\n",
                 "t.yaml:2: legacy: field is not supported by knit: use "
                 "name");
}

static void test_parse_size(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(kn_parse_size("1048576", &v), KN_OK);
    assert_int_equal(v, 1048576);
    assert_int_equal(kn_parse_size("64Mi", &v), KN_OK);
    assert_int_equal(v, 64ull << 20);
    assert_int_equal(kn_parse_size("2G", &v), KN_OK);
    assert_int_equal(v, 2000000000ull);
    assert_int_equal(kn_parse_size("3k", &v), KN_OK);
    assert_int_equal(v, 3000);
    assert_int_equal(kn_parse_size("1Ki", &v), KN_OK);
    assert_int_equal(v, 1024);
    assert_int_equal(kn_parse_size("0", &v), KN_OK);
    assert_int_equal(v, 0);
    assert_int_equal(kn_parse_size("", &v), KN_INVAL);
    assert_int_equal(kn_parse_size("-1", &v), KN_INVAL);
    assert_int_equal(kn_parse_size("1MB", &v), KN_INVAL);
    assert_int_equal(kn_parse_size("1 Mi", &v), KN_INVAL);
    assert_int_equal(kn_parse_size("99999999999999999999", &v), KN_INVAL);
    assert_int_equal(kn_parse_size("99999999999Ti", &v), KN_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_duration_enum_map),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_parse_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
