/*
 * 0650-delivery-retries: retries against a real loopback subscriber —
 * N failures then success means N+1 calls with at least the configured
 * gaps; non-retryable codes stop at once; retries run out; Retry-After
 * (seconds and HTTP-date) is honoured and capped by retryAfterMax; a
 * per-attempt timeout and a refused connection are transport errors.
 * Timing is only checked from below (never "fast enough").
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
    (void)state;
    client = kn_sink_client_new(NULL, NULL);
    return client ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    kn_sink_client_free(client);
    return 0;
}

/* Fails the first 3 calls with 503, then answers 200 (empty). */
static void h_fail3(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)s;
    (void)rq;
    r->status = idx < 3 ? 503 : 200;
}

static void assert_gap_at_least(ts_server *s, int i, int64_t ms)
{
    int64_t gap = s->reqs[i].t_ns - s->reqs[i - 1].t_ns;
    if (gap < ms * 1000000 - 1000000)   /* 1 ms clock slack */
        fail_msg("gap before call %d is %lld us, want >= %lld ms", i,
                 (long long)(gap / 1000), (long long)ms);
}

static void test_fail_then_succeed_linear(void **state)
{
    ts_server *s = ts_start(h_fail3, NULL);
    kn_delivery_spec spec = tw_spec(5, 60);
    ce_event *ev = tw_event("retry-1");
    tw_result w;
    (void)state;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_int_equal(w.attempts, 4);
    assert_int_equal(w.http_code, 200);
    assert_int_equal(ts_count(s), 4);
    assert_null(w.reply);
    for (int i = 1; i < 4; i++)
        assert_gap_at_least(s, i, 60 * i);       /* linear: delay * n */
    /* every attempt carries the same event */
    for (int i = 0; i < 4; i++)
        assert_string_equal(ts_header(s, i, "ce-id"), "retry-1");
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(s);
}

static void test_fail_then_succeed_exponential(void **state)
{
    ts_server *s = ts_start(h_fail3, NULL);
    kn_delivery_spec spec = tw_spec(3, 40);
    ce_event *ev = tw_event("retry-2");
    tw_result w;
    (void)state;
    spec.policy = KN_BACKOFF_EXPONENTIAL;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_int_equal(w.attempts, 4);
    assert_int_equal(ts_count(s), 4);
    assert_gap_at_least(s, 1, 40);
    assert_gap_at_least(s, 2, 80);
    assert_gap_at_least(s, 3, 160);
    assert_true(w.latency_ns >= (40 + 80 + 160) * 1000000LL);
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(s);
}

static void h_status(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)idx;
    (void)rq;
    r->status = (unsigned)(uintptr_t)s->user;
    r->body = "{\"error\":\"no\"}";
}

static void test_non_retryable_codes(void **state)
{
    const unsigned codes[] = {400, 401, 403, 405, 413, 422, 301, 302};
    (void)state;
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        ts_server *s = ts_start(h_status, (const void *)(uintptr_t)codes[i]);
        kn_delivery_spec spec = tw_spec(5, 10);
        ce_event *ev = tw_event("nr");
        tw_result w;
        tw_init(&w);
        assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
        assert_int_equal(w.status, KN_DELIVERY_FAILED);
        assert_int_equal(w.attempts, 1);
        assert_int_equal(w.http_code, (int)codes[i]);
        assert_int_equal(w.error_code, (int)codes[i]);
        assert_int_equal(ts_count(s), 1);
        assert_int_equal(w.error_data_len, 14);
        assert_memory_equal(w.error_data, "{\"error\":\"no\"}", 14);
        tw_fini(&w);
        ce_event_unref(ev);
        ts_stop(s);
    }
}

static void test_retryable_codes_run_out(void **state)
{
    const unsigned codes[] = {404, 408, 409, 429, 500, 502, 504, 600};
    (void)state;
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        ts_server *s = ts_start(h_status, (const void *)(uintptr_t)codes[i]);
        kn_delivery_spec spec = tw_spec(2, 5);
        ce_event *ev = tw_event("r");
        tw_result w;
        tw_init(&w);
        assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
        assert_int_equal(w.status, KN_DELIVERY_FAILED);
        assert_int_equal(w.attempts, 3);
        assert_int_equal(ts_count(s), 3);
        assert_int_equal(w.http_code, (int)codes[i]);
        tw_fini(&w);
        ce_event_unref(ev);
        ts_stop(s);
    }
}

/* 429 with the Retry-After value in s->user on the first call. */
static void h_retry_after(ts_server *s, int idx, const ts_req *rq,
                          ts_resp *r)
{
    (void)rq;
    r->status = idx == 0 ? 429 : 202;
    if (idx == 0) {
        r->hdr[0][0] = "Retry-After";
        r->hdr[0][1] = s->user;
    }
}

static void test_retry_after_seconds(void **state)
{
    ts_server *s = ts_start(h_retry_after, "1");
    kn_delivery_spec spec = tw_spec(3, 10);
    ce_event *ev = tw_event("ra");
    tw_result w;
    (void)state;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_int_equal(ts_count(s), 2);
    assert_gap_at_least(s, 1, 1000);     /* not the 10 ms backoff */
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(s);
}

static void test_retry_after_capped(void **state)
{
    ts_server *s = ts_start(h_retry_after, "3600");
    kn_delivery_spec spec = tw_spec(3, 10);
    ce_event *ev = tw_event("ra-cap");
    tw_result w;
    (void)state;
    spec.retry_after_max_ms = 250;
    tw_init(&w);
    /* An uncapped wait would be an hour: the 20 s guard catches it. */
    assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_int_equal(ts_count(s), 2);
    assert_gap_at_least(s, 1, 250);
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(s);
}

static void test_retry_after_http_date(void **state)
{
    char date[64];
    time_t t = time(NULL) + 2;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    ts_server *s = ts_start(h_retry_after, date);
    kn_delivery_spec spec = tw_spec(3, 10);
    ce_event *ev = tw_event("ra-date");
    tw_result w;
    (void)state;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_int_equal(ts_count(s), 2);
    assert_gap_at_least(s, 1, 900);      /* date has 1 s granularity */
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(s);
}

static void h_slow(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)s;
    (void)rq;
    r->status = 202;
    r->delay_ms = idx == 0 ? 1500 : 0;
}

static void test_timeout_then_success(void **state)
{
    ts_server *s = ts_start(h_slow, NULL);
    /* The first request hangs past the timeout; a retry succeeds. On a
     * loaded machine the retry itself may land while the server is still
     * busy with the hung request and time out too, so allow a few
     * retries: what matters is that a timeout is retried, not failed. */
    kn_delivery_spec spec = tw_spec(5, 10);
    ce_event *ev = tw_event("slow");
    tw_result w;
    (void)state;
    spec.timeout_ms = 200;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_true(w.attempts >= 2);
    assert_int_equal(ts_count(s), w.attempts);
    assert_true(w.latency_ns >= 200 * 1000000LL);
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(s);
}

static void test_timeout_fails(void **state)
{
    ts_server *s = ts_start(h_slow, NULL);
    kn_delivery_spec spec = tw_spec(0, 10);
    ce_event *ev = tw_event("slow2");
    tw_result w;
    (void)state;
    spec.timeout_ms = 150;
    tw_init(&w);
    assert_int_equal(tw_deliver(client, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_FAILED);
    assert_int_equal(w.attempts, 1);
    assert_int_equal(w.http_code, 0);
    assert_int_equal(w.error_code, 500);
    assert_non_null(strcasestr(w.error, "timeout") ? w.error
                    : strcasestr(w.error, "timed out"));
    tw_fini(&w);
    ce_event_unref(ev);
    ts_stop(s);
}

static void test_connection_refused(void **state)
{
    char url[64];
    kn_delivery_spec spec = tw_spec(2, 20);
    ce_event *ev = tw_event("refused");
    tw_result w;
    (void)state;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ts_dead_port());
    tw_init(&w);
    assert_int_equal(tw_deliver(client, url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_FAILED);
    assert_int_equal(w.attempts, 3);
    assert_int_equal(w.http_code, 0);
    assert_int_equal(w.error_code, 500);
    assert_true(strlen(w.error) > 0);
    assert_true(w.error_data_len > 16);
    assert_memory_equal(w.error_data, "dispatch error: ", 16);
    assert_true(w.latency_ns >= (20 + 40) * 1000000LL);
    tw_fini(&w);
    ce_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_then_succeed_linear),
        cmocka_unit_test(test_fail_then_succeed_exponential),
        cmocka_unit_test(test_non_retryable_codes),
        cmocka_unit_test(test_retryable_codes_run_out),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_capped),
        cmocka_unit_test(test_retry_after_http_date),
        cmocka_unit_test(test_timeout_then_success),
        cmocka_unit_test(test_timeout_fails),
        cmocka_unit_test(test_connection_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
