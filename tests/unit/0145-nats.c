/*
 * NATS binding: binary mode with ce- headers including ce-datacontenttype
 * (Content-Type accepted too when decoding, and they must agree),
 * percent-encoding as in HTTP, structured mode, round trips, errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cloudevents/cloudevents.h"

#define H(n, v) {n, sizeof n - 1, v, sizeof v - 1}

static ce_event *decode_ok(const ce_header *h, size_t n, const char *p,
                           size_t len, unsigned flags)
{
    ce_event *ev = NULL;
    ce_err err = {0};
    int rc = ce_nats_decode(h, n, p, len, flags, &ev, &err);
    if (rc != CE_OK)
        fail_msg("decode: %s (%s)", err.msg, err.attr);
    return ev;
}

static void test_binary_decode(void **state)
{
    (void)state;
    ce_header hs[] = {
        H("ce-specversion", "1.0"), H("ce-id", "n1"), H("ce-source", "/s"),
        H("ce-type", "t"), H("ce-datacontenttype", "text/plain"),
        H("ce-subject", "a%20b"), H("Nats-Msg-Id", "n1"),
    };
    ce_event *ev = decode_ok(hs, 7, "hi", 2, 0);
    assert_string_equal(ce_event_get(ev, "datacontenttype", NULL, NULL),
                        "text/plain");
    assert_string_equal(ce_event_get(ev, "subject", NULL, NULL), "a b");
    assert_int_equal(ce_event_attr_count(ev), 6);
    ce_event_unref(ev);

    /* Content-Type instead of ce-datacontenttype (sdk-go JetStream) */
    hs[4] = (ce_header)H("Content-Type", "text/csv");
    ev = decode_ok(hs, 7, "", 0, 0);
    assert_string_equal(ce_event_get(ev, "datacontenttype", NULL, NULL),
                        "text/csv");
    assert_false(ce_event_has_data(ev));
    ce_event_unref(ev);

    /* both, agreeing up to case and spacing */
    ce_header both[] = {
        H("ce-specversion", "1.0"), H("ce-id", "n1"), H("ce-source", "/s"),
        H("ce-type", "t"), H("ce-datacontenttype", "text/plain;charset=utf-8"),
        H("content-type", "Text/Plain; charset=utf-8"),
    };
    ev = decode_ok(both, 6, "x", 1, 0);
    assert_string_equal(ce_event_get(ev, "datacontenttype", NULL, NULL),
                        "text/plain;charset=utf-8");
    ce_event_unref(ev);
}

static void test_decode_errors(void **state)
{
    (void)state;
    ce_err err = {0};
    ce_event *ev = (ce_event *)1;
    ce_header hs[] = {
        H("ce-specversion", "1.0"), H("ce-id", "n1"), H("ce-source", "/s"),
        H("ce-type", "t"), H("ce-datacontenttype", "text/plain"),
        H("Content-Type", "text/html"),
    };
    assert_int_equal(ce_nats_decode(hs, 6, "", 0, 0, &ev, &err), CE_EINVAL);
    assert_null(ev);
    assert_string_equal(err.msg, "header ce-datacontenttype disagrees with "
                                 "Content-Type");
    /* no ce-specversion and no structured Content-Type */
    assert_int_equal(ce_nats_decode(hs + 1, 3, "", 0, 0, &ev, &err),
                     CE_EINVAL);
    assert_string_equal(err.msg, "missing required header ce-specversion");
    /* strict percent-decoding, as HTTP */
    ce_header pct[] = {
        H("ce-specversion", "1.0"), H("ce-id", "50%"), H("ce-source", "/s"),
        H("ce-type", "t"),
    };
    assert_int_equal(ce_nats_decode(pct, 4, "", 0, 0, &ev, &err),
                     CE_EPARSE);
    assert_string_equal(err.attr, "ce-id");
    ev = decode_ok(pct, 4, "", 0, CE_DECODE_LENIENT);
    assert_string_equal(ce_event_get(ev, "id", NULL, NULL), "50%");
    ce_event_unref(ev);
    ce_header avro[] = {H("Content-Type", "application/cloudevents+avro")};
    assert_int_equal(ce_nats_decode(avro, 1, "", 0, 0, &ev, &err),
                     CE_EUNSUPPORTED);
}

static void test_round_trip(void **state)
{
    (void)state;
    ce_event *ev = ce_event_new();
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "id", "n-1", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "source", "/nats", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "type", "t", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "subject", "Euro € 😀", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "datacontenttype", "text/plain",
                                      NULL), 0);
    assert_int_equal(ce_event_set_data(ev, "payload", 7), 0);
    for (int mode = CE_MODE_BINARY; mode <= CE_MODE_STRUCTURED; mode++) {
        ce_headers h = {0};
        ce_buf p = CE_BUF_INIT;
        assert_int_equal(ce_nats_encode(ev, (ce_mode)mode, &h, &p, NULL), 0);
        if (mode == CE_MODE_BINARY) {
            assert_string_equal(
                ce_headers_find(h.items, h.count, "ce-datacontenttype")
                    ->value, "text/plain");
            assert_string_equal(
                ce_headers_find(h.items, h.count, "ce-subject")->value,
                "Euro%20%E2%82%AC%20%F0%9F%98%80");
            assert_null(ce_headers_find(h.items, h.count, "Content-Type"));
            assert_string_equal(p.data, "payload");
        } else {
            assert_int_equal(h.count, 1);
            assert_string_equal(h.items[0].value,
                                "application/cloudevents+json");
        }
        ce_event *back = decode_ok(h.items, h.count, p.data, p.len, 0);
        assert_true(ce_event_equal(ev, back));
        ce_event_unref(back);
        ce_headers_free(&h);
        ce_buf_free(&p);
    }
    ce_headers h = {0};
    ce_buf p = CE_BUF_INIT;
    assert_int_equal(ce_nats_encode(ev, CE_MODE_BATCH, &h, &p, NULL),
                     CE_EUNSUPPORTED);
    assert_int_equal(h.count, 0);
    ce_headers_free(&h);
    ce_buf_free(&p);
    ce_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_decode),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
