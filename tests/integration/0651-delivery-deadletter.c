/*
 * 0651-delivery-deadletter: after the last attempt the ORIGINAL event goes
 * to the dead-letter sink with knativeerrordest / knativeerrorcode /
 * knativeerrordata (body cut to 1024 bytes, then base64) — checked exactly,
 * including a 1 MB HTML error page and a transport error. The dead-letter
 * sink is retried with the same policy; when it fails too the outcome is
 * "failed" with both errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sink_testsrv.h"

static kn_sink_client *client;
static char *big_html;          /* 1 MB error page */
#define BIG_LEN (1u << 20)

static int setup(void **state)
{
    (void)state;
    big_html = malloc(BIG_LEN + 1);
    memcpy(big_html, "<html><body>", 12);
    static const char pat[] = "<p>\"oops\" \r\n\x01\x7f</p>";
    for (size_t i = 12; i < BIG_LEN; i++)
        big_html[i] = pat[i % (sizeof pat - 1)];
    big_html[BIG_LEN] = '\0';
    client = kn_sink_client_new(NULL, NULL);
    return client ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    kn_sink_client_free(client);
    free(big_html);
    return 0;
}

static void h_big500(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)s;
    (void)idx;
    (void)rq;
    r->status = 500;
    r->body = big_html;
    r->body_len = BIG_LEN;
    r->hdr[0][0] = "Content-Type";
    r->hdr[0][1] = "text/html";
}

static void h_accept(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)s;
    (void)idx;
    (void)rq;
    r->status = 202;
}

static void h_fail(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)s;
    (void)idx;
    (void)rq;
    r->status = 503;
    r->body = "dls down";
}

static char *b64(const void *p, size_t n)
{
    ce_buf b = CE_BUF_INIT;
    assert_int_equal(ce_base64_encode(&b, p, n), CE_OK);
    return b.data;
}

static void test_dead_letter_big_html(void **state)
{
    ts_server *sub = ts_start(h_big500, NULL);
    ts_server *dls = ts_start(h_accept, NULL);
    kn_delivery_spec spec = tw_spec(1, 10);
    ce_event *ev = tw_event("dl-1");
    tw_result w;
    (void)state;
    spec.dead_letter_url = dls->url;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, sub->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DEAD_LETTERED);
    assert_int_equal(w.attempts, 2);
    assert_int_equal(ts_count(sub), 2);
    assert_int_equal(w.http_code, 500);
    assert_int_equal(w.error_code, 500);
    assert_int_equal(w.dls_attempts, 1);
    assert_int_equal(w.dls_http_code, 202);
    assert_int_equal(w.error_data_len, 1024);
    assert_memory_equal(w.error_data, big_html, 1024);
    assert_int_equal(ts_count(dls), 1);
    /* the original event, with the error extensions */
    assert_string_equal(ts_header(dls, 0, "ce-id"), "dl-1");
    assert_string_equal(ts_header(dls, 0, "ce-type"), "dev.knit.test");
    assert_string_equal(ts_header(dls, 0, "ce-myext"), "hello%20world");
    assert_string_equal(ts_header(dls, 0, "ce-knativeerrordest"), sub->url);
    assert_string_equal(ts_header(dls, 0, "ce-knativeerrorcode"), "500");
    char *want = b64(big_html, 1024);
    assert_int_equal(strlen(want), 1368);
    assert_string_equal(ts_header(dls, 0, "ce-knativeerrordata"), want);
    free(want);
    assert_string_equal(dls->reqs[0].body, "{\"n\":1}");
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(sub);
    ts_stop(dls);
}

static void test_dead_letter_structured(void **state)
{
    ts_server *sub = ts_start(h_big500, NULL);
    ts_server *dls = ts_start(h_accept, NULL);
    kn_delivery_spec spec = tw_spec(0, 10);
    ce_event *ev = tw_event("dl-json");
    tw_result w;
    ce_event *got = NULL;
    (void)state;
    spec.dead_letter_url = dls->url;
    spec.format = KN_FORMAT_JSON;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, sub->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DEAD_LETTERED);
    assert_int_equal(ts_count(dls), 1);
    assert_int_equal(ce_json_decode(dls->reqs[0].body, dls->reqs[0].len,
                                    &got, NULL), CE_OK);
    assert_string_equal(ce_event_get(got, "id", NULL, NULL), "dl-json");
    ce_type t;
    assert_string_equal(ce_event_get(got, "knativeerrorcode", NULL, &t),
                        "500");
    assert_int_equal(t, CE_TYPE_INTEGER);
    char *want = b64(big_html, 1024);
    assert_string_equal(ce_event_get(got, "knativeerrordata", NULL, NULL),
                        want);
    free(want);
    ce_event_unref(got);
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(sub);
    ts_stop(dls);
}

static void test_dead_letter_transport_error(void **state)
{
    ts_server *dls = ts_start(h_accept, NULL);
    kn_delivery_spec spec = tw_spec(1, 10);
    ce_event *ev = tw_event("dl-2");
    char url[64];
    tw_result w;
    ce_buf dec = CE_BUF_INIT;
    (void)state;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/gone", ts_dead_port());
    spec.dead_letter_url = dls->url;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DEAD_LETTERED);
    assert_int_equal(w.attempts, 2);
    assert_int_equal(w.http_code, 0);
    assert_int_equal(ts_count(dls), 1);
    assert_string_equal(ts_header(dls, 0, "ce-knativeerrordest"), url);
    assert_string_equal(ts_header(dls, 0, "ce-knativeerrorcode"), "500");
    const char *data = ts_header(dls, 0, "ce-knativeerrordata");
    assert_non_null(data);
    assert_int_equal(ce_base64_decode(&dec, data, strlen(data), NULL), CE_OK);
    assert_true(dec.len > 16 && memcmp(dec.data, "dispatch error: ", 16) == 0);
    ce_buf_free(&dec);
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(dls);
}

static void h_400(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)s;
    (void)idx;
    (void)rq;
    r->status = 400;
}

static void test_dead_letter_400_once(void **state)
{
    ts_server *sub = ts_start(h_400, NULL);
    ts_server *dls = ts_start(h_accept, NULL);
    kn_delivery_spec spec = tw_spec(5, 10);
    ce_event *ev = tw_event("dl-4");
    tw_result w;
    (void)state;
    spec.dead_letter_url = dls->url;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, sub->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DEAD_LETTERED);
    assert_int_equal(w.attempts, 1);
    assert_int_equal(ts_count(sub), 1);
    assert_int_equal(ts_count(dls), 1);
    assert_string_equal(ts_header(dls, 0, "ce-knativeerrorcode"), "400");
    /* an empty error body adds no knativeerrordata */
    assert_null(ts_header(dls, 0, "ce-knativeerrordata"));
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(sub);
    ts_stop(dls);
}

static void test_dead_letter_sink_fails(void **state)
{
    ts_server *sub = ts_start(h_big500, NULL);
    ts_server *dls = ts_start(h_fail, NULL);
    kn_delivery_spec spec = tw_spec(2, 10);
    ce_event *ev = tw_event("dl-5");
    tw_result w;
    (void)state;
    spec.dead_letter_url = dls->url;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, sub->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_FAILED);
    assert_int_equal(w.attempts, 3);
    assert_int_equal(w.dls_attempts, 3);      /* same policy */
    assert_int_equal(ts_count(dls), 3);
    assert_int_equal(w.http_code, 500);       /* the subscriber's */
    assert_int_equal(w.error_code, 500);
    assert_int_equal(w.dls_http_code, 503);
    assert_string_equal(w.dls_error, "HTTP 503");
    assert_string_equal(w.error, "HTTP 500");
    assert_int_equal(w.error_data_len, 1024);
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(sub);
    ts_stop(dls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_letter_big_html),
        cmocka_unit_test(test_dead_letter_structured),
        cmocka_unit_test(test_dead_letter_transport_error),
        cmocka_unit_test(test_dead_letter_400_once),
        cmocka_unit_test(test_dead_letter_sink_fails),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
