/*
 * ce_headers: the owned header list encoders fill. Many adds (the store is
 * re-allocated and items must follow it), case-insensitive lookup,
 * NUL-terminated names and values, reuse after free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cloudevents/cloudevents.h"

static void test_add_find(void **state)
{
    (void)state;
    ce_headers h = {0};
    assert_int_equal(ce_headers_add(&h, "Content-Type", 12, "text/plain",
                                    10), CE_OK);
    assert_int_equal(ce_headers_add(&h, "ce-id", 5, "1", 1), CE_OK);
    assert_int_equal(h.count, 2);
    const ce_header *f = ce_headers_find(h.items, h.count, "content-type");
    assert_non_null(f);
    assert_int_equal(f->value_len, 10);
    assert_string_equal(f->value, "text/plain");   /* NUL-terminated */
    f = ce_headers_find(h.items, h.count, "CE-ID");
    assert_non_null(f);
    assert_string_equal(f->name, "ce-id");
    assert_null(ce_headers_find(h.items, h.count, "ce-i"));
    assert_null(ce_headers_find(h.items, h.count, "ce-idx"));
    assert_null(ce_headers_find(NULL, 0, "x"));
    ce_headers_free(&h);
    assert_int_equal(h.count, 0);
    assert_null(h.items);
    /* reusable after free; free twice is harmless */
    assert_int_equal(ce_headers_add(&h, "a", 1, "", 0), CE_OK);
    assert_int_equal(h.items[0].value_len, 0);
    assert_string_equal(h.items[0].value, "");
    ce_headers_free(&h);
    ce_headers_free(&h);
}

static void test_many_adds_keep_pointers_valid(void **state)
{
    (void)state;
    ce_headers h = {0};
    char name[32], value[600];
    memset(value, 'v', sizeof value);
    for (int i = 0; i < 500; i++) {
        int n = snprintf(name, sizeof name, "X-Header-%d", i);
        assert_int_equal(ce_headers_add(&h, name, (size_t)n, value,
                                         (size_t)(i % 600)), CE_OK);
    }
    assert_int_equal(h.count, 500);
    for (int i = 0; i < 500; i++) {
        int n = snprintf(name, sizeof name, "x-header-%d", i);
        const ce_header *f = ce_headers_find(h.items, h.count, name);
        assert_non_null(f);
        assert_int_equal(f->name_len, (size_t)n);
        assert_int_equal(f->value_len, (size_t)(i % 600));
        assert_memory_equal(f->value, value, f->value_len);
        assert_int_equal(f->value[f->value_len], '\0');
    }
    ce_headers_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find),
        cmocka_unit_test(test_many_adds_keep_pointers_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
