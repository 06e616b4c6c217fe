/*
 * 0653-delivery-client: the request a subscriber sees (binary and
 * structured, Prefer: reply, Kn-Namespace, traceparent, no
 * knativebrokerttl), keep-alive reuse counted on the server side, many
 * concurrent deliveries from two submitting threads, counters, the
 * caller's fds / timers / run-on-loop on the same loop, cancellation at
 * shutdown, and submit-time errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "sink_testsrv.h"

static void test_binary_request(void **state)
{
    kn_sink_client *c = kn_sink_client_new(NULL, NULL);
    ts_server *s = ts_start(NULL, NULL);
    kn_delivery_spec spec = tw_spec(0, 10);
    ce_event *ev = tw_event("b-1");
    ce_header extra = {"X-Trigger", 9, "default/t1", 10};
    kn_delivery_req req;
    tw_result w;
    (void)state;
    tw_init(&w);
    memset(&req, 0, sizeof req);
    req.event = ev;
    req.url = s->url;
    req.spec = &spec;
    req.ns = "team-a";
    req.headers = &extra;
    req.nheaders = 1;
    assert_int_equal(kn_sink_submit(c, &req, tw_cb, &w, NULL), KN_OK);
    assert_int_equal(tw_wait_n(&w, 1, 20000), 1);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_int_equal(w.http_code, 202);
    assert_int_equal(ts_count(s), 1);
    assert_string_equal(s->reqs[0].method, "POST");
    assert_string_equal(s->reqs[0].path, "/sub");
    assert_string_equal(ts_header(s, 0, "ce-specversion"), "1.0");
    assert_string_equal(ts_header(s, 0, "ce-id"), "b-1");
    assert_string_equal(ts_header(s, 0, "ce-source"), "/knit/tests");
    assert_string_equal(ts_header(s, 0, "ce-type"), "dev.knit.test");
    assert_string_equal(ts_header(s, 0, "content-type"), "application/json");
    assert_string_equal(ts_header(s, 0, "prefer"), "reply");
    assert_string_equal(ts_header(s, 0, "kn-namespace"), "team-a");
    assert_string_equal(ts_header(s, 0, "x-trigger"), "default/t1");
    assert_string_equal(ts_header(s, 0, "traceparent"),
                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    assert_null(ts_header(s, 0, "ce-knativebrokerttl"));
    assert_null(ts_header(s, 0, "expect"));
    assert_string_equal(s->reqs[0].body, "{\"n\":1}");
    assert_true(w.has_ttl);
    assert_int_equal(w.ttl, 255);
    tw_fini(&w);
    ce_event_unref(ev);
    kn_sink_client_free(c);
    ts_stop(s);
}

static void test_structured_request(void **state)
{
    kn_sink_client *c = kn_sink_client_new(NULL, NULL);
    ts_server *s = ts_start(NULL, NULL);
    kn_delivery_spec spec = tw_spec(0, 10);
    ce_event *ev = tw_event("s-1"), *got = NULL;
    tw_result w;
    (void)state;
    spec.format = KN_FORMAT_JSON;
    tw_init(&w);
    assert_int_equal(tw_deliver(c, s->url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_non_null(strstr(ts_header(s, 0, "content-type"),
                           "application/cloudevents+json"));
    assert_null(ts_header(s, 0, "ce-id"));
    assert_string_equal(ts_header(s, 0, "prefer"), "reply");
    assert_int_equal(ce_json_decode(s->reqs[0].body, s->reqs[0].len, &got,
                                    NULL), CE_OK);
    assert_string_equal(ce_event_get(got, "id", NULL, NULL), "s-1");
    assert_string_equal(ce_event_get(got, "myext", NULL, NULL),
                        "hello world");
    assert_null(ce_event_get(got, "knativebrokerttl", NULL, NULL));
    /* the caller's event is untouched */
    assert_non_null(ce_event_get(ev, "knativebrokerttl", NULL, NULL));
    ce_event_unref(got);
    tw_fini(&w);
    ce_event_unref(ev);
    kn_sink_client_free(c);
    ts_stop(s);
}

static void test_keepalive_reuse(void **state)
{
    kn_sink_client *c = kn_sink_client_new(NULL, NULL);
    ts_server *s = ts_start(NULL, NULL);
    kn_delivery_spec spec = tw_spec(0, 10);
    ce_event *ev = tw_event("k");
    kn_sink_stats st;
    (void)state;
    for (int i = 0; i < 50; i++) {
        tw_result w;
        tw_init(&w);
        assert_int_equal(tw_deliver(c, s->url, &spec, ev, &w), KN_OK);
        assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
        tw_fini(&w);
    }
    assert_int_equal(ts_count(s), 50);
    assert_int_equal(ts_connections(s), 1);       /* one TCP connection */
    kn_sink_client_stats(c, &st);
    assert_int_equal(st.connections, 1);
    assert_int_equal(st.delivered, 50);
    assert_int_equal(st.attempts, 50);
    assert_int_equal(st.resp_2xx, 50);
    assert_int_equal(st.in_flight, 0);
    ce_event_unref(ev);
    kn_sink_client_free(c);
    ts_stop(s);
}

#define MANY 1000

typedef struct many_ctx {
    kn_sink_client *c;
    const char *url;
    tw_result *w;
    int from, to;
} many_ctx;

static void *submit_many(void *arg)
{
    many_ctx *m = arg;
    kn_delivery_spec spec = tw_spec(0, 10);
    for (int i = m->from; i < m->to; i++) {
        char id[32];
        snprintf(id, sizeof id, "m-%d", i);
        ce_event *ev = tw_event(id);
        kn_delivery_req req;
        memset(&req, 0, sizeof req);
        req.event = ev;
        req.url = m->url;
        req.spec = &spec;
        if (kn_sink_submit(m->c, &req, tw_cb, m->w, NULL) != KN_OK)
            abort();
        ce_event_unref(ev);             /* the client holds its own ref */
    }
    return NULL;
}

static void test_many_concurrent(void **state)
{
    kn_sink_client_opts o;
    memset(&o, 0, sizeof o);
    o.max_host_connections = 16;
    kn_sink_client *c = kn_sink_client_new(&o, NULL);
    ts_server *s = ts_start(NULL, NULL);
    tw_result w;
    pthread_t th[2];
    many_ctx m[2] = {{c, s->url, &w, 0, MANY / 2},
                     {c, s->url, &w, MANY / 2, MANY}};
    kn_sink_stats st;
    (void)state;
    tw_init(&w);
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, submit_many, &m[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(tw_wait_n(&w, MANY, 60000), MANY);
    assert_int_equal(ts_count(s), MANY);
    assert_true(ts_connections(s) <= 16);
    kn_sink_client_stats(c, &st);
    assert_int_equal(st.submitted, MANY);
    assert_int_equal(st.delivered, MANY);
    assert_int_equal(st.in_flight, 0);
    assert_true(st.connections <= 16);
    /* every event arrived exactly once */
    char *seen = calloc(MANY, 1);
    for (int i = 0; i < MANY; i++) {
        int n = atoi(ts_header(s, i, "ce-id") + 2);
        assert_true(n >= 0 && n < MANY);
        assert_int_equal(seen[n], 0);
        seen[n] = 1;
    }
    free(seen);
    tw_fini(&w);
    kn_sink_client_free(c);
    ts_stop(s);
}

/* ------------------------------------------------ hosting the caller */

typedef struct host_ctx {
    int efd;
    kn_sink_watch *watch;
    kn_sink_timer *cancelled;
    _Atomic int fd_calls, timer_calls, cancelled_calls, runs;
    _Atomic int64_t timer_at;
    int64_t armed_at;
    bool on_loop;
} host_ctx;

static void on_fd(kn_sink_client *c, int fd, uint32_t events, void *arg)
{
    host_ctx *h = arg;
    uint64_t v;
    (void)c;
    assert_true(events & EPOLLIN);
    assert_int_equal(read(fd, &v, sizeof v), 8);
    h->fd_calls++;
    kn_sink_unwatch(h->watch);            /* inside its own callback */
}

static void on_timer(kn_sink_client *c, void *arg)
{
    host_ctx *h = arg;
    (void)c;
    h->timer_at = kn_now_mono_ns();
    h->timer_calls++;
}

static void on_cancelled_timer(kn_sink_client *c, void *arg)
{
    host_ctx *h = arg;
    (void)c;
    h->cancelled_calls++;
}

static void setup_on_loop(kn_sink_client *c, void *arg)
{
    host_ctx *h = arg;
    h->on_loop = kn_sink_client_on_loop(c);
    h->watch = kn_sink_watch_fd(c, h->efd, EPOLLIN, on_fd, h, NULL);
    h->armed_at = kn_now_mono_ns();
    kn_sink_timer_add(c, 80, on_timer, h);
    h->cancelled = kn_sink_timer_add(c, 40, on_cancelled_timer, h);
    kn_sink_timer_cancel(h->cancelled);
    h->runs++;
}

static void test_hosting(void **state)
{
    kn_sink_client *c = kn_sink_client_new(NULL, NULL);
    host_ctx h;
    uint64_t one = 1;
    (void)state;
    memset(&h, 0, sizeof h);
    h.efd = eventfd(0, EFD_NONBLOCK);
    assert_false(kn_sink_client_on_loop(c));
    assert_null(kn_sink_watch_fd(c, h.efd, EPOLLIN, on_fd, &h, NULL));
    assert_int_equal(kn_sink_client_run(c, setup_on_loop, &h), KN_OK);
    for (int i = 0; i < 2000 && h.runs == 0; i++)
        usleep(1000);
    assert_int_equal(h.runs, 1);
    assert_true(h.on_loop);
    assert_non_null(h.watch);
    assert_int_equal(write(h.efd, &one, sizeof one), 8);
    for (int i = 0; i < 5000 && (h.fd_calls == 0 || h.timer_calls == 0); i++)
        usleep(1000);
    assert_int_equal(h.fd_calls, 1);
    assert_int_equal(h.timer_calls, 1);
    assert_true(h.timer_at - h.armed_at >= 80 * 1000000LL);
    /* unwatched: a second write does not call back */
    assert_int_equal(write(h.efd, &one, sizeof one), 8);
    usleep(100000);
    assert_int_equal(h.fd_calls, 1);
    assert_int_equal(h.cancelled_calls, 0);
    kn_sink_client_free(c);
    close(h.efd);
}

/* --------------------------------------------------- cancel, errors */

static void h_hang(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)s;
    (void)idx;
    (void)rq;
    r->status = 202;
    r->delay_ms = 1000;
}

static void h_500(ts_server *s, int idx, const ts_req *rq, ts_resp *r)
{
    (void)s;
    (void)idx;
    (void)rq;
    r->status = 500;
}

static void test_cancel_on_free(void **state)
{
    kn_sink_client *c = kn_sink_client_new(NULL, NULL);
    ts_server *slow = ts_start(h_hang, NULL), *bad = ts_start(h_500, NULL);
    kn_delivery_spec spec = tw_spec(3, 60000);   /* a minute of backoff */
    ce_event *ev = tw_event("c");
    kn_delivery_req req;
    tw_result w1, w2;
    kn_sink_stats st;
    (void)state;
    tw_init(&w1);
    tw_init(&w2);
    memset(&req, 0, sizeof req);
    req.event = ev;
    req.spec = &spec;
    req.url = slow->url;
    assert_int_equal(kn_sink_submit(c, &req, tw_cb, &w1, NULL), KN_OK);
    req.url = bad->url;
    assert_int_equal(kn_sink_submit(c, &req, tw_cb, &w2, NULL), KN_OK);
    for (int i = 0; i < 5000 && (ts_count(slow) < 1 || ts_count(bad) < 1);
         i++)
        usleep(1000);
    usleep(50000);                      /* let the 500 come back */
    kn_sink_client_stats(c, &st);
    assert_int_equal(st.waiting_retry, 1);
    kn_sink_client_free(c);             /* runs both callbacks */
    assert_int_equal(w1.done, 1);
    assert_int_equal(w2.done, 1);
    assert_int_equal(w1.status, KN_DELIVERY_CANCELLED);
    assert_int_equal(w2.status, KN_DELIVERY_CANCELLED);
    assert_int_equal(w2.attempts, 1);
    tw_fini(&w1);
    tw_fini(&w2);
    ce_event_unref(ev);
    ts_stop(slow);
    ts_stop(bad);
}

typedef struct cancel_ctx {
    const char *slow_url, *bad_url;
    kn_sink_delivery *h[3];
    tw_result w[3];
    _Atomic int step;
} cancel_ctx;

static void submit_on_loop(kn_sink_client *c, void *arg)
{
    cancel_ctx *x = arg;
    static kn_delivery_spec spec;
    ce_event *ev = tw_event("cx");
    kn_delivery_req req;
    spec = tw_spec(3, 60000);
    memset(&req, 0, sizeof req);
    req.event = ev;
    req.spec = &spec;
    req.url = x->slow_url;
    assert_int_equal(kn_sink_submit_h(c, &req, tw_cb, &x->w[0], &x->h[0],
                                      NULL), KN_OK);
    req.url = x->bad_url;
    assert_int_equal(kn_sink_submit_h(c, &req, tw_cb, &x->w[1], &x->h[1],
                                      NULL), KN_OK);
    assert_int_equal(kn_sink_submit_h(c, &req, tw_cb, &x->w[2], &x->h[2],
                                      NULL), KN_OK);
    kn_sink_cancel(x->h[2]);            /* still queued */
    kn_sink_cancel(x->h[2]);            /* idempotent */
    ce_event_unref(ev);
    x->step = 1;
}

static void cancel_on_loop(kn_sink_client *c, void *arg)
{
    cancel_ctx *x = arg;
    (void)c;
    kn_sink_cancel(x->h[0]);            /* attempt in progress */
    kn_sink_cancel(x->h[1]);            /* waiting for a retry */
    assert_int_equal(x->w[0].done + x->w[1].done, 0);  /* not inside */
    x->step = 2;
}

static void test_cancel_handle(void **state)
{
    kn_sink_client *c = kn_sink_client_new(NULL, NULL);
    ts_server *slow = ts_start(h_hang, NULL), *bad = ts_start(h_500, NULL);
    cancel_ctx x;
    kn_sink_stats st;
    (void)state;
    memset(&x, 0, sizeof x);
    x.slow_url = slow->url;
    x.bad_url = bad->url;
    for (int i = 0; i < 3; i++)
        tw_init(&x.w[i]);
    assert_int_equal(kn_sink_client_run(c, submit_on_loop, &x), KN_OK);
    assert_int_equal(tw_wait_n(&x.w[2], 1, 20000), 1);
    assert_int_equal(x.w[2].status, KN_DELIVERY_CANCELLED);
    assert_int_equal(x.w[2].attempts, 0);
    for (int i = 0; i < 5000; i++) {
        kn_sink_client_stats(c, &st);
        if (ts_count(slow) == 1 && st.waiting_retry == 1)
            break;
        usleep(1000);
    }
    assert_int_equal(st.waiting_retry, 1);
    assert_int_equal(kn_sink_client_run(c, cancel_on_loop, &x), KN_OK);
    assert_int_equal(tw_wait_n(&x.w[0], 1, 20000), 1);
    assert_int_equal(tw_wait_n(&x.w[1], 1, 20000), 1);
    assert_int_equal(x.w[0].status, KN_DELIVERY_CANCELLED);
    assert_int_equal(x.w[1].status, KN_DELIVERY_CANCELLED);
    assert_int_equal(x.w[1].attempts, 1);
    assert_int_equal(ts_count(bad), 1);
    kn_sink_client_stats(c, &st);
    assert_int_equal(st.cancelled, 3);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.waiting_retry, 0);
    kn_sink_client_free(c);
    for (int i = 0; i < 3; i++)
        tw_fini(&x.w[i]);
    ts_stop(slow);
    ts_stop(bad);
}

static void test_submit_errors(void **state)
{
    kn_sink_client *c = kn_sink_client_new(NULL, NULL);
    ce_event *ev = tw_event("e");
    kn_delivery_spec spec = tw_spec(0, 10);
    ce_header bad = {"X-Bad", 5, "a\r\nInjected: 1", 14};
    ce_header badname = {"X Bad", 5, "v", 1};
    kn_delivery_req req;
    tw_result w;
    kn_err err;
    kn_sink_stats st;
    (void)state;
    tw_init(&w);
    memset(&req, 0, sizeof req);
    req.event = ev;
    req.url = "ftp://example.com/x";
    assert_int_equal(kn_sink_submit(c, &req, tw_cb, &w, &err), KN_INVAL);
    req.url = "not a url";
    assert_int_equal(kn_sink_submit(c, &req, tw_cb, &w, &err), KN_INVAL);
    req.url = "http://127.0.0.1:1/x";
    req.headers = &bad;
    req.nheaders = 1;
    assert_int_equal(kn_sink_submit(c, &req, tw_cb, &w, &err), KN_INVAL);
    req.headers = &badname;
    assert_int_equal(kn_sink_submit(c, &req, tw_cb, &w, &err), KN_INVAL);
    req.headers = NULL;
    req.nheaders = 0;
    req.ns = "a\nb";
    assert_int_equal(kn_sink_submit(c, &req, tw_cb, &w, &err), KN_INVAL);
    req.ns = NULL;
    spec.retry = -1;
    req.spec = &spec;
    assert_int_equal(kn_sink_submit(c, &req, tw_cb, &w, &err), KN_INVAL);
    assert_string_equal(err.field, "retry");
    spec.retry = 0;
    spec.dead_letter_url = "mailto:x@example.com";
    assert_int_equal(kn_sink_submit(c, &req, tw_cb, &w, &err), KN_INVAL);
    assert_int_equal(kn_sink_submit(c, &req, NULL, &w, &err), KN_INVAL);
    usleep(20000);
    assert_int_equal(w.done, 0);
    kn_sink_client_stats(c, &st);
    assert_int_equal(st.submitted, 0);
    assert_int_equal(st.in_flight, 0);
    tw_fini(&w);
    ce_event_unref(ev);
    kn_sink_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_request),
        cmocka_unit_test(test_structured_request),
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_many_concurrent),
        cmocka_unit_test(test_hosting),
        cmocka_unit_test(test_cancel_on_free),
        cmocka_unit_test(test_cancel_handle),
        cmocka_unit_test(test_submit_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
