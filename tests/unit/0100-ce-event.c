/*
 * Event model: attributes (core and typed extensions), data (absent vs
 * empty), iteration order, refcounting, freezing, cloning, equality,
 * validation of the event-level rules and the 0.3 upgrade.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cloudevents/cloudevents.h"

static ce_event *minimal(void)
{
    ce_event *ev = ce_event_new();
    assert_non_null(ev);
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "id", "1", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "source", "/s", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "type", "t", NULL), 0);
    return ev;
}

static void test_set_get(void **state)
{
    (void)state;
    ce_event *ev = minimal();
    ce_err err;
    size_t len;
    ce_type t;
    assert_string_equal(ce_event_get(ev, "id", &len, &t), "1");
    assert_int_equal(len, 1);
    assert_int_equal(t, CE_TYPE_STRING);
    ce_event_get(ev, "source", NULL, &t);
    assert_int_equal(t, CE_TYPE_URI_REF);
    /* core attributes keep their own type whatever the caller passes */
    assert_int_equal(ce_event_set(ev, "time", "2024-01-02T03:04:05Z", 20,
                                  CE_TYPE_BOOLEAN, &err), 0);
    ce_event_get(ev, "time", NULL, &t);
    assert_int_equal(t, CE_TYPE_TIMESTAMP);
    assert_int_equal(ce_event_set_int(ev, "count", -42, &err), 0);
    assert_string_equal(ce_event_get(ev, "count", NULL, &t), "-42");
    assert_int_equal(t, CE_TYPE_INTEGER);
    assert_int_equal(ce_event_set_bool(ev, "flag", true, &err), 0);
    assert_string_equal(ce_event_get(ev, "flag", NULL, &t), "true");
    assert_int_equal(t, CE_TYPE_BOOLEAN);
    assert_int_equal(ce_event_set(ev, "bin", "AAEC", 4, CE_TYPE_BINARY, &err),
                     0);
    assert_int_equal(ce_event_set(ev, "u", "https://x/y", 11, CE_TYPE_URI,
                                  &err), 0);
    assert_int_equal(ce_event_set(ev, "ur", "../y", 4, CE_TYPE_URI_REF, &err),
                     0);
    assert_int_equal(ce_event_set(ev, "ts", "1985-04-12T23:20:50.52Z", 23,
                                  CE_TYPE_TIMESTAMP, &err), 0);
    /* replace keeps position and count */
    assert_int_equal(ce_event_set_str(ev, "count", "x", &err), 0);
    assert_string_equal(ce_event_get(ev, "count", NULL, &t), "x");
    assert_int_equal(t, CE_TYPE_STRING);
    assert_null(ce_event_get(ev, "nope", NULL, NULL));
    assert_string_equal(ce_event_getn(ev, "typeX", 4, NULL, NULL), "t");
    assert_int_equal(ce_event_validate(ev, &err), 0);
    ce_event_unref(ev);
}

static void test_iteration_order(void **state)
{
    (void)state;
    ce_event *ev = ce_event_new();
    ce_err err;
    assert_int_equal(ce_event_set_str(ev, "zext", "z", &err), 0);
    assert_int_equal(ce_event_set_str(ev, "time", "2020-01-01T00:00:00Z",
                                      &err), 0);
    assert_int_equal(ce_event_set_str(ev, "aext", "a", &err), 0);
    assert_int_equal(ce_event_set_str(ev, "type", "t", &err), 0);
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", &err), 0);
    const char *want[] = {"specversion", "type", "time", "zext", "aext"};
    ce_attr a;
    size_t i = 0;
    for (; ce_event_attr_at(ev, i, &a); i++) {
        assert_string_equal(a.name, want[i]);
        assert_int_equal(a.extension, i >= 3);
    }
    assert_int_equal(i, 5);
    assert_int_equal(ce_event_attr_count(ev), 5);
    assert_int_equal(ce_event_unset(ev, "zext"), 0);
    assert_int_equal(ce_event_unset(ev, "zext"), CE_ENOTFOUND);
    assert_int_equal(ce_event_unset(ev, "time"), 0);
    assert_true(ce_event_attr_at(ev, 2, &a));
    assert_string_equal(a.name, "aext");
    assert_false(ce_event_attr_at(ev, 3, &a));
    ce_event_unref(ev);
}

static void test_data(void **state)
{
    (void)state;
    ce_event *ev = minimal();
    size_t n = 99;
    assert_false(ce_event_has_data(ev));
    assert_null(ce_event_data(ev, &n));
    assert_int_equal(n, 0);
    assert_int_equal(ce_event_set_data(ev, "", 0), 0);
    assert_true(ce_event_has_data(ev));
    assert_non_null(ce_event_data(ev, &n));
    assert_int_equal(n, 0);
    ce_event *other = minimal();
    assert_false(ce_event_equal(ev, other)); /* empty != absent */
    char big[5000];
    memset(big, 'x', sizeof big);
    assert_int_equal(ce_event_set_data(ev, big, sizeof big), 0);
    assert_memory_equal(ce_event_data(ev, &n), big, sizeof big);
    assert_int_equal(n, sizeof big);
    assert_int_equal(ce_event_clear_data(ev), 0);
    assert_false(ce_event_has_data(ev));
    assert_true(ce_event_equal(ev, other));
    ce_event_unref(ev);
    ce_event_unref(other);
}

static void test_many_extensions_and_growth(void **state)
{
    (void)state;
    ce_event *ev = minimal();
    char name[16], val[64];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "ext%d", i);
        snprintf(val, sizeof val, "value-%d-%0*d", i, 40, i);
        assert_int_equal(ce_event_set_str(ev, name, val, NULL), 0);
    }
    assert_int_equal(ce_event_attr_count(ev), 104);
    assert_string_equal(ce_event_get(ev, "ext77", NULL, NULL),
                        "value-77-0000000000000000000000000000000000000077");
    ce_event *c = ce_event_clone(ev);
    assert_non_null(c);
    assert_true(ce_event_equal(ev, c));
    assert_int_equal(ce_event_set_str(c, "ext5", "changed", NULL), 0);
    assert_false(ce_event_equal(ev, c));
    ce_event_unref(c);
    ce_event_unref(ev);
}

static void test_refcount_freeze_clone(void **state)
{
    (void)state;
    ce_event *ev = minimal();
    ce_err err;
    assert_int_equal(ce_event_set_data(ev, "{}", 2), 0);
    assert_false(ce_event_frozen(ev));
    assert_ptr_equal(ce_event_ref(ev), ev);
    ce_event_freeze(ev);
    ce_event_freeze(ev);
    assert_true(ce_event_frozen(ev));
    assert_int_equal(ce_event_set_str(ev, "id", "2", &err), CE_EFROZEN);
    assert_int_equal(err.code, CE_EFROZEN);
    assert_string_equal(err.attr, "id");
    assert_int_equal(ce_event_set_data(ev, "x", 1), CE_EFROZEN);
    assert_int_equal(ce_event_clear_data(ev), CE_EFROZEN);
    assert_int_equal(ce_event_unset(ev, "id"), CE_EFROZEN);
    ce_event *c = ce_event_clone(ev);
    assert_false(ce_event_frozen(c));
    assert_true(ce_event_equal(ev, c));
    assert_int_equal(ce_event_set_str(c, "id", "2", &err), 0);
    assert_false(ce_event_equal(ev, c));
    ce_event_unref(c);
    ce_event_unref(ev);
    ce_event_unref(ev);
    ce_event_unref(NULL);
}

static void test_equal(void **state)
{
    (void)state;
    ce_event *a = minimal(), *b = minimal();
    assert_int_equal(ce_event_set_str(a, "x", "1", NULL), 0);
    assert_int_equal(ce_event_set_str(a, "y", "2", NULL), 0);
    assert_int_equal(ce_event_set_str(b, "y", "2", NULL), 0);
    assert_int_equal(ce_event_set_str(b, "x", "1", NULL), 0);
    assert_true(ce_event_equal(a, b)); /* extension order does not matter */
    assert_int_equal(ce_event_set(b, "x", "1", 1, CE_TYPE_INTEGER, NULL), 0);
    assert_false(ce_event_equal(a, b)); /* types do */
    ce_event_unref(a);
    ce_event_unref(b);
}

static void check_invalid(ce_event *ev, const char *attr, const char *msg)
{
    ce_err err;
    assert_int_equal(ce_event_validate(ev, &err), CE_EINVAL);
    assert_int_equal(err.code, CE_EINVAL);
    assert_string_equal(err.attr, attr);
    if (!strstr(err.msg, msg))
        fail_msg("message '%s' lacks '%s'", err.msg, msg);
}

static void test_validate_required(void **state)
{
    (void)state;
    static const char *req[] = {"specversion", "id", "source", "type"};
    for (size_t i = 0; i < 4; i++) {
        ce_event *ev = minimal();
        assert_int_equal(ce_event_unset(ev, req[i]), 0);
        check_invalid(ev, req[i], "required attribute is missing");
        assert_int_equal(ce_event_set_str(ev, req[i], "", NULL), 0);
        check_invalid(ev, req[i], "required attribute must not be empty");
        ce_event_unref(ev);
    }
    ce_event *ev = minimal();
    assert_int_equal(ce_event_set_str(ev, "specversion", "0.3", NULL), 0);
    check_invalid(ev, "specversion", "unsupported specversion '0.3'");
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "subject", "", NULL), 0);
    check_invalid(ev, "subject", "must not be empty when present");
    assert_int_equal(ce_event_unset(ev, "subject"), 0);
    assert_int_equal(ce_event_set_str(ev, "datacontenttype", "", NULL), 0);
    check_invalid(ev, "datacontenttype", "must not be empty when present");
    assert_int_equal(ce_event_set_str(ev, "datacontenttype", "json", NULL), 0);
    check_invalid(ev, "datacontenttype", "not a media type");
    assert_int_equal(ce_event_set_str(ev, "datacontenttype",
                                      "text/plain; charset=utf-8", NULL), 0);
    assert_int_equal(ce_event_validate(ev, NULL), 0);
    ce_event_unref(ev);
}

static void test_upgrade_03(void **state)
{
    (void)state;
    ce_event *ev = minimal();
    ce_err err;
    assert_int_equal(ce_event_set_str(ev, "specversion", "0.3", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "schemaurl", "https://s/x", NULL),
                     0);
    assert_int_equal(ce_event_set_str(ev, "datacontentencoding", "base64",
                                      NULL), 0);
    assert_int_equal(ce_event_set_data(ev, "\"aGk=\"", 6), 0);
    assert_int_equal(ce_event_upgrade_03(ev, &err), 0);
    assert_string_equal(ce_event_get(ev, "specversion", NULL, NULL), "1.0");
    assert_string_equal(ce_event_get(ev, "dataschema", NULL, NULL),
                        "https://s/x");
    assert_null(ce_event_get(ev, "schemaurl", NULL, NULL));
    assert_null(ce_event_get(ev, "datacontentencoding", NULL, NULL));
    size_t n;
    assert_memory_equal(ce_event_data(ev, &n), "hi", 2);
    assert_int_equal(n, 2);
    assert_int_equal(ce_event_validate(ev, &err), 0);
    assert_int_equal(ce_event_upgrade_03(ev, &err), 0); /* 1.0: no-op */
    assert_int_equal(ce_event_set_str(ev, "specversion", "0.2", NULL), 0);
    assert_int_equal(ce_event_upgrade_03(ev, &err), CE_EINVAL);
    assert_string_equal(err.attr, "specversion");
    assert_int_equal(ce_event_set_str(ev, "specversion", "0.3", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "datacontentencoding", "7bit",
                                      NULL), 0);
    assert_int_equal(ce_event_upgrade_03(ev, &err), CE_EINVAL);
    assert_string_equal(err.attr, "datacontentencoding");
    assert_non_null(strstr(err.msg, "only base64"));
    assert_int_equal(ce_event_set_str(ev, "datacontentencoding", "base64",
                                      NULL), 0);
    assert_int_equal(ce_event_set_data(ev, "!!", 2), 0);
    assert_int_equal(ce_event_upgrade_03(ev, &err), CE_EINVAL);
    assert_string_equal(err.attr, "data");
    assert_int_equal(ce_event_unset(ev, "datacontentencoding"), 0);
    assert_int_equal(ce_event_set_str(ev, "schemaurl", "rel/x", NULL), 0);
    assert_int_equal(ce_event_upgrade_03(ev, &err), CE_EINVAL);
    assert_string_equal(err.attr, "schemaurl");
    assert_non_null(strstr(err.msg, "cannot become dataschema"));
    ce_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get),
        cmocka_unit_test(test_iteration_order),
        cmocka_unit_test(test_data),
        cmocka_unit_test(test_many_extensions_and_growth),
        cmocka_unit_test(test_refcount_freeze_clone),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_validate_required),
        cmocka_unit_test(test_upgrade_03),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
