/*
 * 0652-delivery-replies: a 200 carrying a CloudEvent (binary or structured)
 * is handed back as the reply; a 202 with an event, an empty 200 and a
 * 200 with a non-event body are delivered without a reply; an oversized
 * reply is dropped, not truncated into a bogus event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sink_testsrv.h"

static kn_sink_client *client;

static int setup(void **state)
{
    kn_sink_client_opts o;
    (void)state;
    memset(&o, 0, sizeof o);
    o.max_reply_bytes = 64 * 1024;
    client = kn_sink_client_new(&o, NULL);
    return client ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    kn_sink_client_free(client);
    return 0;
}

/* Binary-mode reply with the status in s->user. */
static void h_binary(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)idx;
    (void)rq;
    r->status = (unsigned)(uintptr_t)s->user;
    r->body = "{\"reply\":true}";
    r->hdr[0][0] = "ce-specversion";
    r->hdr[0][1] = "1.0";
    r->hdr[1][0] = "ce-id";
    r->hdr[1][1] = "reply-1";
    r->hdr[2][0] = "ce-source";
    r->hdr[2][1] = "/subscriber";
    r->hdr[3][0] = "ce-type";
    r->hdr[3][1] = "dev.knit.reply";
    r->hdr[4][0] = "Content-Type";
    r->hdr[4][1] = "application/json";
    r->hdr[5][0] = "ce-note";
    r->hdr[5][1] = "caf%C3%A9";
}

static void test_reply_binary(void **state)
{
    ts_server *s = ts_start(h_binary, (const void *)200);
    kn_delivery_spec spec = tw_spec(0, 10);
    ce_event *ev = tw_event("q-1");
    tw_result w;
    size_t n;
    (void)state;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_int_equal(w.http_code, 200);
    assert_non_null(w.reply);
    assert_string_equal(w.reply_error, "");
    assert_string_equal(ce_event_get(w.reply, "id", NULL, NULL), "reply-1");
    assert_string_equal(ce_event_get(w.reply, "type", NULL, NULL),
                        "dev.knit.reply");
    assert_string_equal(ce_event_get(w.reply, "note", NULL, NULL),
                        "caf\xc3\xa9");
    const char *data = ce_event_data(w.reply, &n);
    assert_int_equal(n, 14);
    assert_memory_equal(data, "{\"reply\":true}", 14);
    /* the TTL the caller re-attaches to the reply */
    assert_true(w.has_ttl);
    assert_int_equal(w.ttl, 255);
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(s);
}

static void h_structured(ts_server *s, int idx, const ts_req *rq,
                         ts_resp *r)
{
    (void)s;
    (void)idx;
    (void)rq;
    r->status = 200;
    r->body = "{\"specversion\":\"1.0\",\"id\":\"reply-2\",\"source\":\"/s\","
              "\"type\":\"dev.knit.reply\",\"datacontenttype\":"
              "\"application/json\",\"data\":{\"x\":[1,2]}}";
    r->hdr[0][0] = "Content-Type";
    r->hdr[0][1] = "application/cloudevents+json; charset=utf-8";
}

static void test_reply_structured(void **state)
{
    ts_server *s = ts_start(h_structured, NULL);
    kn_delivery_spec spec = tw_spec(0, 10);
    ce_event *ev = tw_event("q-2");
    tw_result w;
    (void)state;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_non_null(w.reply);
    assert_string_equal(ce_event_get(w.reply, "id", NULL, NULL), "reply-2");
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(s);
}

static void test_202_with_event_is_not_a_reply(void **state)
{
    ts_server *s = ts_start(h_binary, (const void *)202);
    kn_delivery_spec spec = tw_spec(0, 10);
    ce_event *ev = tw_event("q-3");
    tw_result w;
    (void)state;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_int_equal(w.http_code, 202);
    assert_null(w.reply);
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(s);
}

/* 200 with the body in s->user (text/plain), or empty when NULL. */
static void h_plain(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)idx;
    (void)rq;
    r->status = 200;
    r->body = s->user;
    if (s->user) {
        r->hdr[0][0] = "Content-Type";
        r->hdr[0][1] = "text/plain";
    }
}

static void test_200_without_event(void **state)
{
    const char *bodies[] = {NULL, "ok", "<html>fine</html>"};
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        ts_server *s = ts_start(h_plain, bodies[i]);
        kn_delivery_spec spec = tw_spec(3, 10);
        ce_event *ev = tw_event("q-4");
        tw_result w;
        tw_init(&w);
        assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
        assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
        assert_int_equal(w.attempts, 1);
        assert_null(w.reply);
        if (bodies[i])
            assert_true(strlen(w.reply_error) > 0);
        else
            assert_string_equal(w.reply_error, "");
        tw_fini(&w);
        ce_event_unref(ev);
        ts_stop(s);
    }
}

static char *huge_reply;

static void h_huge(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)s;
    (void)idx;
    (void)rq;
    r->status = 200;
    r->body = huge_reply;
    r->hdr[0][0] = "Content-Type";
    r->hdr[0][1] = "application/cloudevents+json";
}

static void test_reply_too_big(void **state)
{
    ce_buf b = CE_BUF_INIT;
    (void)state;
    ce_buf_puts(&b, "{\"specversion\":\"1.0\",\"id\":\"big\",\"source\":\"/s\","
                    "\"type\":\"t\",\"data\":\"");
    for (int i = 0; i < 100000; i++)
        ce_buf_puts(&b, "x");
    ce_buf_puts(&b, "\"}");
    huge_reply = b.data;
    ts_server *s = ts_start(h_huge, NULL);
    kn_delivery_spec spec = tw_spec(0, 10);
    ce_event *ev = tw_event("q-5");
    tw_result w;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_null(w.reply);
    assert_non_null(strstr(w.reply_error, "larger than"));
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(s);
    ce_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_binary),
        cmocka_unit_test(test_reply_structured),
        cmocka_unit_test(test_202_with_event_is_not_a_reply),
        cmocka_unit_test(test_200_without_event),
        cmocka_unit_test(test_reply_too_big),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
