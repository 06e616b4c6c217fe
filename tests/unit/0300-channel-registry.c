/*
 * 0300-channel-registry: built-in backends are registered by name, an
 * unknown backend is a clear error, incomplete or clashing tables are
 * refused, and the default backend is "log".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "logtest.h"

static void test_builtin(void **state)
{
    (void)state;
    kn_channels_register_builtin();
    kn_channels_register_builtin(); /* idempotent */
    assert_ptr_equal(kn_channel_find("log"), &kn_channel_log_ops);
    assert_ptr_equal(kn_channel_find("memory"), &kn_channel_memory_ops);
    assert_null(kn_channel_find("nope"));
    assert_null(kn_channel_find(NULL));
    /* registering the same table again is fine */
    assert_int_equal(kn_channel_register(&kn_channel_log_ops), KN_OK);
}

static void test_unknown(void **state)
{
    (void)state;
    kn_channel_config cfg = {"default", "b", "/tmp", NULL};
    kn_channel *ch = (kn_channel *)1;
    kn_err err = {0};
    assert_int_equal(kn_channel_open("carrier-pigeon", &cfg, &ch, &err),
                     KN_NOTFOUND);
    assert_null(ch);
    assert_non_null(strstr(err.msg, "carrier-pigeon"));
    assert_non_null(strstr(err.msg, "memory"));
}

static int fake_open(const kn_channel_config *cfg, kn_channel **out,
                     kn_err *err)
{
    (void)cfg;
    (void)out;
    return kn_err_set(err, KN_UNAVAILABLE, "fake");
}

static void test_register_rules(void **state)
{
    (void)state;
    kn_channel_ops partial = {.name = "partial", .version = 1,
                              .open = fake_open};
    assert_int_equal(kn_channel_register(&partial), KN_INVAL);
    assert_int_equal(kn_channel_register(NULL), KN_INVAL);

    kn_channel_ops clash = kn_channel_memory_ops; /* other table, same name */
    assert_int_equal(kn_channel_register(&clash), KN_EXISTS);

    static kn_channel_ops fake;
    fake = kn_channel_memory_ops;
    fake.name = "fake";
    fake.open = fake_open;
    assert_int_equal(kn_channel_register(&fake), KN_OK);
    kn_channel_config cfg = {"default", "b", "/tmp", NULL};
    kn_channel *ch = NULL;
    kn_err err = {0};
    assert_int_equal(kn_channel_open("fake", &cfg, &ch, &err),
                     KN_UNAVAILABLE);
    assert_string_equal(err.msg, "fake");
}

static void test_default_is_log(void **state)
{
    (void)state;
    char dir[64];
    kn_err err = {0};
    tu_mkdtemp(dir, sizeof dir, "reg");
    kn_channel_config cfg = {"default", "b", dir, NULL};
    kn_channel *ch = NULL;
    assert_int_equal(kn_channel_open(NULL, &cfg, &ch, &err), KN_OK);
    assert_ptr_equal(ch->ops, &kn_channel_log_ops);
    kn_channel_close(ch);
    kn_channel_close(NULL);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_register_rules),
        cmocka_unit_test(test_default_is_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
