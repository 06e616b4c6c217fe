/*
 * 0402-store: persistence of the desired state — created / configured /
 * unchanged / deleted / not found actions, generation and
 * creationTimestamp, the atomic file on disk, reload after reopen (with
 * re-validation), and a corrupt file reported with its path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/broker.h"
#include "tests/testutil.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    tu_mkdtemp(dir, sizeof dir, "store");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmrf(dir);
}

static kn_resource **parse(const char *text, size_t *n)
{
    kn_resource **rs = NULL;
    kn_err err = {0};
    assert_int_equal(kn_resources_parse("s.yaml", text, strlen(text), &rs, n,
                                        &err),
                     KN_OK);
    return rs;
}

static const char two[] =
    "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n"
    "  name: b1\n---\n"
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\n"
    "  namespace: ns2\ndata:\n  k: v\n";

static json_int_t generation(const kn_resource *r)
{
    return json_integer_value(json_object_get(
        json_object_get(r->obj, "metadata"), "generation"));
}

static void test_apply_cycle(void **state)
{
    (void)state;
    kn_store *st = NULL;
    kn_err err = {0};
    assert_int_equal(kn_store_open(dir, &st, &err), KN_OK);
    assert_int_equal(kn_store_count(st), 0);

    size_t n = 0;
    kn_resource **rs = parse(two, &n);
    kn_apply_action acts[2];
    assert_int_equal(kn_store_apply(st, rs, n, acts, &err), KN_OK);
    assert_int_equal(acts[0], KN_ACT_CREATED);
    assert_int_equal(acts[1], KN_ACT_CREATED);
    assert_int_equal(kn_store_count(st), 2);
    kn_resource *b = kn_store_find(st, &kn_kind_broker, "default", "b1");
    assert_non_null(b);
    assert_int_equal(generation(b), 1);
    const char *ts = json_string_value(json_object_get(
        json_object_get(b->obj, "metadata"), "creationTimestamp"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 20); /* 2024-01-02T03:04:05Z */
    char created[32];
    snprintf(created, sizeof created, "%s", ts);

    /* same again: unchanged, generation kept */
    assert_int_equal(kn_store_apply(st, rs, n, acts, &err), KN_OK);
    assert_int_equal(acts[0], KN_ACT_UNCHANGED);
    assert_int_equal(acts[1], KN_ACT_UNCHANGED);
    kn_resources_free(rs, n);

    /* a changed broker: configured, generation 2, creation time kept */
    rs = parse("apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
               "metadata:\n  name: b1\n  annotations:\n"
               "    knit.dev/durability: write\n", &n);
    assert_int_equal(kn_store_apply(st, rs, n, acts, &err), KN_OK);
    assert_int_equal(acts[0], KN_ACT_CONFIGURED);
    b = kn_store_find(st, &kn_kind_broker, "default", "b1");
    assert_int_equal(generation(b), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(b->obj, "metadata"),
                            "creationTimestamp")),
                        created);
    kn_resources_free(rs, n);
    kn_store_close(st);

    /* reopen: everything is back, with generations */
    assert_int_equal(kn_store_open(dir, &st, &err), KN_OK);
    assert_int_equal(kn_store_count(st), 2);
    b = kn_store_find(st, &kn_kind_broker, "default", "b1");
    assert_non_null(b);
    assert_int_equal(generation(b), 2);
    assert_string_equal(kn_resource_annotation(b, "knit.dev/durability"),
                        "write");
    kn_resource *c = kn_store_find(st, &kn_kind_configmap, "ns2", "c1");
    assert_non_null(c);
    /* sorted: kind order (Broker first), then namespace, name */
    assert_ptr_equal(kn_store_at(st, 0), b);
    assert_ptr_equal(kn_store_at(st, 1), c);
    assert_null(kn_store_at(st, 2));

    /* delete one that exists and one that does not */
    rs = parse(two, &n);
    kn_resource *gone[2] = {rs[1], rs[1]};
    assert_int_equal(kn_store_delete(st, gone, 2, acts, &err), KN_OK);
    assert_int_equal(acts[0], KN_ACT_DELETED);
    assert_int_equal(acts[1], KN_ACT_NOT_FOUND);
    assert_int_equal(kn_store_count(st), 1);
    kn_resources_free(rs, n);
    kn_store_close(st);
    assert_int_equal(kn_store_open(dir, &st, &err), KN_OK);
    assert_int_equal(kn_store_count(st), 1);
    assert_null(kn_store_find(st, &kn_kind_configmap, "ns2", "c1"));
    kn_store_close(st);
    assert_string_equal(kn_apply_action_str(KN_ACT_NOT_FOUND), "not found");
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_corrupt(void **state)
{
    (void)state;
    char path[256];
    kn_store *st = NULL;
    kn_err err = {0};
    char msg[1024];
    snprintf(path, sizeof path, "%s/resources", dir);
    assert_int_equal(kn_mkdirs(path, 0755), 0);
    snprintf(path, sizeof path, "%s/resources/resources.json", dir);

    write_text(path, "{\"version\": 1, \"resources\": [");
    assert_int_equal(kn_store_open(dir, &st, &err), KN_CORRUPT);
    kn_err_str(&err, msg, sizeof msg);
    assert_non_null(strstr(msg, "resources.json:"));

    write_text(path, "{\"version\": 9, \"resources\": []}");
    assert_int_equal(kn_store_open(dir, &st, &err), KN_CORRUPT);
    kn_err_str(&err, msg, sizeof msg);
    assert_non_null(strstr(msg, "not a knit resource file"));

    /* a stored resource that no longer validates names its index/field */
    write_text(path, "{\"version\": 1, \"resources\": [{\"apiVersion\": "
                     "\"v1\", \"kind\": \"ConfigMap\", \"metadata\": "
                     "{\"name\": \"a\"}, \"data\": {\"x\": 1}}]}");
    memset(&err, 0, sizeof err);
    assert_int_equal(kn_store_open(dir, &st, &err), KN_INVAL);
    kn_err_str(&err, msg, sizeof msg);
    assert_non_null(strstr(msg, "resources.json[0]: data.x: expected a "
                                "string"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_apply_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
