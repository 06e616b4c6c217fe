/*
 * 0001-status: the status table (text, retriable flag), the ce_code
 * mapping and kn_err formatting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"

static void test_codes_and_text(void **state)
{
    (void)state;
    assert_int_equal(KN_OK, 0);
    assert_true(KN_AGAIN < 0 && KN_INTERNAL < 0);
    assert_string_equal(kn_status_str(KN_OK), "ok");
    assert_string_equal(kn_status_str(KN_NOTFOUND), "not found");
    assert_string_equal(kn_status_str(KN_NOSPACE), "no space left on device");
    assert_string_equal(kn_status_str(KN_INTERNAL), "internal error");
    assert_string_equal(kn_status_str(1), "unknown status");
    assert_string_equal(kn_status_str(-1000), "unknown status");
    /* every code has a distinct, non-empty text */
    for (int i = 0; i < KN__STATUS_COUNT; i++) {
        assert_true(strlen(kn_status_str(-i)) > 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(kn_status_str(-i), kn_status_str(-j));
    }
}

static void test_retriable(void **state)
{
    (void)state;
    assert_true(kn_status_retriable(KN_AGAIN));
    assert_true(kn_status_retriable(KN_IO));
    assert_true(kn_status_retriable(KN_TIMEOUT));
    assert_true(kn_status_retriable(KN_UNAVAILABLE));
    assert_true(kn_status_retriable(KN_NOSPACE));
    assert_false(kn_status_retriable(KN_OK));
    assert_false(kn_status_retriable(KN_INVAL));
    assert_false(kn_status_retriable(KN_PARSE));
    assert_false(kn_status_retriable(KN_CORRUPT));
    assert_false(kn_status_retriable(KN_TTL));
    assert_false(kn_status_retriable(5));
    assert_false(kn_status_retriable(-999));
}

static void test_from_ce(void **state)
{
    (void)state;
    assert_int_equal(kn_status_from_ce(CE_OK), KN_OK);
    assert_int_equal(kn_status_from_ce(CE_ENOMEM), KN_NOMEM);
    assert_int_equal(kn_status_from_ce(CE_EINVAL), KN_INVAL);
    assert_int_equal(kn_status_from_ce(CE_EPARSE), KN_PARSE);
    assert_int_equal(kn_status_from_ce(CE_EUNSUPPORTED), KN_UNSUPPORTED);
    assert_int_equal(kn_status_from_ce(CE_ENOTFOUND), KN_NOTFOUND);
    assert_int_equal(kn_status_from_ce(CE_ERANGE), KN_INVAL);
    assert_int_equal(kn_status_from_ce(CE_EFROZEN), KN_INTERNAL);
    assert_int_equal(kn_status_from_ce(-77), KN_INTERNAL);
}

static void test_err(void **state)
{
    (void)state;
    kn_err err;
    char buf[1024];
    kn_err_clear(&err);
    assert_int_equal(kn_err_set(&err, KN_INVAL, "expected %s", "a number"),
                     KN_INVAL);
    assert_int_equal(err.status, KN_INVAL);
    assert_string_equal(kn_err_str(&err, buf, sizeof buf), "expected a number");

    snprintf(err.field, sizeof err.field, "spec.delivery.retry");
    assert_string_equal(kn_err_str(&err, buf, sizeof buf),
                        "spec.delivery.retry: expected a number");

    assert_int_equal(kn_err_set_at(&err, KN_PARSE, "brokers.yaml:12",
                                   "spec.delivery.retry",
                                   "expected a non-negative integer"),
                     KN_PARSE);
    assert_string_equal(kn_err_str(&err, buf, sizeof buf),
                        "brokers.yaml:12: spec.delivery.retry: expected a "
                        "non-negative integer");
    kn_err_set_at(&err, KN_IO, "f.yaml:3", NULL, "bad");
    assert_string_equal(kn_err_str(&err, buf, sizeof buf), "f.yaml:3: bad");

    /* empty message falls back to the status text */
    kn_err_clear(&err);
    err.status = KN_TIMEOUT;
    assert_string_equal(kn_err_str(&err, buf, sizeof buf), "timed out");

    /* NULL err is allowed and the status still comes back */
    assert_int_equal(kn_err_set(NULL, KN_IO, "x"), KN_IO);
    assert_int_equal(kn_err_set_at(NULL, KN_IO, "a", "b", "x"), KN_IO);

    /* truncation is safe */
    kn_err_set_at(&err, KN_INVAL, "where", "field", "message");
    char small[8];
    assert_string_equal(kn_err_str(&err, small, sizeof small), "where: ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_and_text),
        cmocka_unit_test(test_retriable),
        cmocka_unit_test(test_from_ce),
        cmocka_unit_test(test_err),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
