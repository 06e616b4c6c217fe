/*
 * 0009-misc: kn_uuid (format, version, uniqueness), DNS-1123 labels and
 * "ns/name" splitting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"

static void test_uuid(void **state)
{
    (void)state;
    char a[37], b[37];
    kn_uuid(a);
    kn_uuid(b);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(a[14], '4');                 /* version 4 */
    assert_non_null(strchr("89ab", a[19]));       /* RFC 4122 variant */
}

static void test_dns1123(void **state)
{
    (void)state;
    assert_true(kn_dns1123_label("a"));
    assert_true(kn_dns1123_label("default"));
    assert_true(kn_dns1123_label("my-broker-2"));
    assert_true(kn_dns1123_label("0abc"));
    char max[64];
    memset(max, 'a', 63);
    max[63] = '\0';
    assert_true(kn_dns1123_label(max));
    char over[65];
    memset(over, 'a', 64);
    over[64] = '\0';
    assert_false(kn_dns1123_label(over));
    assert_false(kn_dns1123_label(""));
    assert_false(kn_dns1123_label(NULL));
    assert_false(kn_dns1123_label("-a"));
    assert_false(kn_dns1123_label("a-"));
    assert_false(kn_dns1123_label("My-Broker"));
    assert_false(kn_dns1123_label("a.b"));
    assert_false(kn_dns1123_label("a_b"));
    assert_false(kn_dns1123_label("a b"));
}

static void test_split(void **state)
{
    (void)state;
    char ns[16], name[16];
    assert_true(kn_split_ns_name("default/my-broker", ns, sizeof ns, name,
                                 sizeof name));
    assert_string_equal(ns, "default");
    assert_string_equal(name, "my-broker");
    assert_false(kn_split_ns_name("noslash", ns, sizeof ns, name,
                                  sizeof name));
    assert_false(kn_split_ns_name("/x", ns, sizeof ns, name, sizeof name));
    assert_false(kn_split_ns_name("x/", ns, sizeof ns, name, sizeof name));
    assert_false(kn_split_ns_name("a/b/c", ns, sizeof ns, name, sizeof name));
    assert_false(kn_split_ns_name(NULL, ns, sizeof ns, name, sizeof name));
    assert_false(kn_split_ns_name("averyveryverylongnamespace/x", ns,
                                  sizeof ns, name, sizeof name));
    assert_false(kn_split_ns_name("a/averyveryverylongname", ns, sizeof ns,
                                  name, sizeof name));
    assert_true(kn_split_ns_name("a/b", ns, 2, name, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_dns1123),
        cmocka_unit_test(test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
