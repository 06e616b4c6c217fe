/*
 * Kafka binding: binary mode (ce_ headers without percent-encoding,
 * content-type ⇔ datacontenttype, null value = no data), structured mode,
 * partitionkey → record key on encode (the key never becomes an attribute
 * on decode), round trips in both modes and the error texts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cloudevents/cloudevents.h"

#define H(n, v) {n, sizeof n - 1, v, sizeof v - 1}

static ce_event *make(void)
{
    ce_event *ev = ce_event_new();
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "id", "k-1", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "source", "/orders", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "type", "order.created", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "partitionkey", "customer-7",
                                      NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "subject", "naïve 100%", NULL), 0);
    return ev;
}

static ce_event *decode_ok(const ce_kafka_record *rec)
{
    ce_event *ev = NULL;
    ce_err err = {0};
    int rc = ce_kafka_decode(rec, 0, &ev, &err);
    if (rc != CE_OK)
        fail_msg("decode: %s (%s)", err.msg, err.attr);
    return ev;
}

static void test_binary_decode(void **state)
{
    (void)state;
    ce_header hs[] = {
        H("ce_specversion", "1.0"), H("ce_id", "1"), H("ce_source", "/s"),
        H("ce_type", "t"), H("content-type", "application/json"),
        H("ce_subject", "100% raw"),      /* no percent-decoding in Kafka */
        H("CE_Traceparent", "00-1"),
        H("other", "ignored"),
    };
    ce_kafka_record rec = {.key = "the-key", .key_len = 7, .value = "{}",
                           .value_len = 2, .headers = hs, .nheaders = 8};
    /* a header with a null value (librdkafka gives NULL) is an empty one */
    ce_header nullv[] = {
        H("ce_specversion", "1.0"), H("ce_id", "1"), H("ce_source", "/s"),
        H("ce_type", "t"), {"ce_subject", 10, NULL, 0},
    };
    ce_kafka_record nrec = {.headers = nullv, .nheaders = 5};
    ce_err nerr = {0};
    ce_event *nev = NULL;
    assert_int_equal(ce_kafka_decode(&nrec, CE_DECODE_NO_VALIDATE, &nev,
                                     &nerr), CE_OK);
    assert_string_equal(ce_event_get(nev, "subject", NULL, NULL), "");
    ce_event_unref(nev);
    assert_int_equal(ce_kafka_decode(&nrec, 0, &nev, &nerr), CE_EINVAL);
    assert_string_equal(nerr.attr, "subject");
    ce_event *ev = decode_ok(&rec);
    assert_string_equal(ce_event_get(ev, "subject", NULL, NULL), "100% raw");
    assert_string_equal(ce_event_get(ev, "traceparent", NULL, NULL), "00-1");
    assert_string_equal(ce_event_get(ev, "datacontenttype", NULL, NULL),
                        "application/json");
    /* the record key is not an attribute */
    assert_null(ce_event_get(ev, "partitionkey", NULL, NULL));
    assert_null(ce_event_get(ev, "key", NULL, NULL));
    assert_int_equal(ce_event_attr_count(ev), 7);
    size_t n;
    assert_memory_equal(ce_event_data(ev, &n), "{}", 2);
    ce_event_unref(ev);

    /* null value = no data; empty value = empty data */
    rec.value = NULL;
    rec.value_len = 0;
    ev = decode_ok(&rec);
    assert_false(ce_event_has_data(ev));
    ce_event_unref(ev);
    rec.value = "";
    ev = decode_ok(&rec);
    assert_true(ce_event_has_data(ev));
    ce_event_data(ev, &n);
    assert_int_equal(n, 0);
    ce_event_unref(ev);
}

static void test_binary_decode_errors(void **state)
{
    (void)state;
    ce_header hs[] = {
        H("ce_specversion", "1.0"), H("ce_id", "1"), H("ce_source", "/s"),
        H("ce_type", "t"), H("content-type", "text/plain"),
        H("ce_datacontenttype", "text/plain"),
    };
    ce_kafka_record rec = {.value = "x", .value_len = 1, .headers = hs,
                           .nheaders = 6};
    /* ce_datacontenttype next to content-type (JS SDK) is fine if equal */
    ce_event *ev = decode_ok(&rec);
    assert_string_equal(ce_event_get(ev, "datacontenttype", NULL, NULL),
                        "text/plain");
    ce_event_unref(ev);

    ce_err err = {0};
    hs[5].value = "text/html";
    hs[5].value_len = 9;
    assert_int_equal(ce_kafka_decode(&rec, 0, &ev, &err), CE_EINVAL);
    assert_null(ev);
    assert_string_equal(err.msg, "header ce_datacontenttype disagrees with "
                                 "content-type");

    rec.nheaders = 3;       /* no ce_type */
    assert_int_equal(ce_kafka_decode(&rec, 0, &ev, &err), CE_EINVAL);
    assert_string_equal(err.attr, "ce_type");
    assert_string_equal(err.msg, "missing required header ce_type");

    ce_header bad[] = {
        H("ce_specversion", "1.0"), H("ce_id", "1"), H("ce_source", "/s"),
        H("ce_type", "t"), H("ce_subject", "caf\xe9"),   /* Latin-1 */
    };
    rec.headers = bad;
    rec.nheaders = 5;
    assert_int_equal(ce_kafka_decode(&rec, 0, &ev, &err), CE_EPARSE);
    assert_string_equal(err.attr, "ce_subject");
    assert_string_equal(err.msg, "header ce_subject: value is not valid "
                                 "UTF-8 (byte 3)");
}

static void test_structured_decode(void **state)
{
    (void)state;
    static const char js[] =
        "{\"specversion\":\"1.0\",\"id\":\"s1\",\"source\":\"/s\","
        "\"type\":\"t\",\"partitionkey\":\"pk\"}";
    ce_header hs[] = {
        H("content-type", "application/cloudevents+json; charset=UTF-8")};
    ce_kafka_record rec = {.value = js, .value_len = sizeof js - 1,
                           .headers = hs, .nheaders = 1};
    ce_event *ev = decode_ok(&rec);
    assert_string_equal(ce_event_get(ev, "partitionkey", NULL, NULL), "pk");
    assert_false(ce_event_has_data(ev));
    ce_event_unref(ev);

    ce_err err = {0};
    rec.value = NULL;
    assert_int_equal(ce_kafka_decode(&rec, 0, &ev, &err), CE_EINVAL);
    assert_string_equal(err.msg, "structured-mode record has a null value");
    hs[0] = (ce_header)H("content-type", "application/cloudevents+avro");
    rec.value = js;
    assert_int_equal(ce_kafka_decode(&rec, 0, &ev, &err), CE_EUNSUPPORTED);
    hs[0] = (ce_header)H("content-type", "application/cloudevents-batch+json");
    assert_int_equal(ce_kafka_decode(&rec, 0, &ev, &err), CE_EUNSUPPORTED);
}

static void test_encode_round_trip(void **state)
{
    (void)state;
    ce_event *ev = make();
    for (int with_data = 0; with_data < 2; with_data++) {
        if (with_data) {
            assert_int_equal(ce_event_set_str(ev, "datacontenttype",
                                              "application/xml", NULL), 0);
            assert_int_equal(ce_event_set_data(ev, "<a/>", 4), 0);
        }
        for (int mode = CE_MODE_BINARY; mode <= CE_MODE_STRUCTURED; mode++) {
            ce_headers h = {0};
            ce_buf val = CE_BUF_INIT;
            bool has_value = true;
            const char *key;
            size_t klen;
            assert_int_equal(ce_kafka_encode(ev, (ce_mode)mode, &h, &val,
                                             &has_value, &key, &klen, NULL),
                             0);
            assert_int_equal(klen, 10);
            assert_memory_equal(key, "customer-7", 10);
            const ce_header *ct = ce_headers_find(h.items, h.count,
                                                  "content-type");
            if (mode == CE_MODE_BINARY) {
                assert_int_equal(has_value, with_data);
                assert_string_equal(
                    ce_headers_find(h.items, h.count, "ce_subject")->value,
                    "naïve 100%");
                assert_string_equal(
                    ce_headers_find(h.items, h.count, "ce_partitionkey")
                        ->value, "customer-7");
                if (with_data)
                    assert_string_equal(ct->value, "application/xml");
                else
                    assert_null(ct);
                assert_null(ce_headers_find(h.items, h.count,
                                            "ce_datacontenttype"));
            } else {
                assert_true(has_value);
                assert_string_equal(ct->value, "application/cloudevents+"
                                               "json; charset=utf-8");
                assert_int_equal(h.count, 1);
            }
            ce_kafka_record rec = {key, klen, has_value ? val.data : NULL,
                                   val.len, h.items, h.count};
            ce_event *back = decode_ok(&rec);
            assert_true(ce_event_equal(ev, back));
            ce_event_unref(back);
            ce_headers_free(&h);
            ce_buf_free(&val);
        }
    }
    /* no partitionkey → no key */
    assert_int_equal(ce_event_unset(ev, "partitionkey"), 0);
    ce_headers h = {0};
    ce_buf val = CE_BUF_INIT;
    bool has_value;
    const char *key = "x";
    size_t klen = 9;
    assert_int_equal(ce_kafka_encode(ev, CE_MODE_BINARY, &h, &val,
                                     &has_value, &key, &klen, NULL), 0);
    assert_null(key);
    assert_int_equal(klen, 0);
    ce_err err = {0};
    assert_int_equal(ce_kafka_encode(ev, CE_MODE_BATCH, &h, &val,
                                     &has_value, &key, &klen, &err),
                     CE_EUNSUPPORTED);
    ce_headers_free(&h);
    ce_buf_free(&val);
    ce_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_decode),
        cmocka_unit_test(test_binary_decode_errors),
        cmocka_unit_test(test_structured_decode),
        cmocka_unit_test(test_encode_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
