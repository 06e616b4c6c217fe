/*
 * client.c: one delivery from submission to its final outcome. The request
 * is encoded once on the submitting thread; the loop thread then runs the
 * attempts (libcurl easy handles on the shared multi, so connections are
 * reused), waits between them on the timer heap, sends the original event
 * with error extensions to the dead-letter sink when the subscriber gives
 * up, and calls the result callback.
 */
#include "sinks/sink_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define TTL_EXT "knativebrokerttl"
#define ERR_DATA_MAX 1024          /* knativeerrordata: bytes before base64 */
#define RESP_HDR_MAX 100           /* response headers kept */
#define RESP_HDR_BYTES (64 * 1024)

struct kn_delivery {
    kn_msg msg;                   /* first: the queue link */
    kn_tnode timer;               /* retry wait */
    kn_delivery *prev, *next;     /* client's active list */
    bool active, waiting, dls_phase, cancelled;
    kn_sink_client *c;
    ce_event *event;              /* the original (our reference) */
    kn_delivery_spec spec;        /* dead_letter_url → dls_url */
    char *url, *dls_url;
    struct curl_slist *extra;     /* Kn-Namespace, traceparent, caller's */
    struct curl_slist *hdrs;      /* request headers of the current phase */
    ce_buf body;                  /* request body of the current phase */
    CURL *easy;                   /* while an attempt runs */
    int64_t attempts, dls_attempts;
    /* the current attempt's response */
    ce_buf resp;
    size_t resp_cap;
    bool resp_cap_set, truncated;
    ce_headers rh;
    size_t rh_bytes;
    char errbuf[CURL_ERROR_SIZE];
    char error[256];
    /* the subscriber's failure (kept for the dead-letter sink + result) */
    int sub_code, err_code, dls_code;
    char sub_error[256], dls_error[256];
    ce_buf err_data;
    bool has_ttl;
    int32_t ttl;
    int64_t start_ns;
    kn_sink_done_cb cb;
    void *arg;
};

static void attempt_start(kn_sink_client *c, kn_delivery *d);
static void retry_fire(kn_sink_client *c, kn_tnode *t);

/* ---------------------------------------------------------- helpers */

static void delivery_free(kn_delivery *d)
{
    if (!d)
        return;
    ce_event_unref(d->event);
    free(d->url);
    free(d->dls_url);
    curl_slist_free_all(d->extra);
    curl_slist_free_all(d->hdrs);
    ce_buf_free(&d->body);
    ce_buf_free(&d->resp);
    ce_headers_free(&d->rh);
    ce_buf_free(&d->err_data);
    free(d);
}

static bool header_safe(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return false;
    return true;
}

static bool token_char(unsigned char ch)
{
    return ch > 32 && ch < 127 && !strchr("\"(),/:;<=>?@[\\]{}", ch);
}

/* Appends "name: value" to *list. */
static int slist_add(struct curl_slist **list, const char *name,
                     size_t nlen, const char *value, size_t vlen)
{
    ce_buf b = CE_BUF_INIT;
    struct curl_slist *l;
    if (ce_buf_append(&b, name, nlen) || ce_buf_puts(&b, ": ") ||
        ce_buf_append(&b, value, vlen)) {
        ce_buf_free(&b);
        return KN_NOMEM;
    }
    l = curl_slist_append(*list, b.data);
    ce_buf_free(&b);
    if (!l)
        return KN_NOMEM;
    *list = l;
    return KN_OK;
}

static int slist_add_raw(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return KN_NOMEM;
    *list = l;
    return KN_OK;
}

static bool url_ok(const char *url)
{
    CURLU *u;
    char *scheme = NULL;
    bool ok;
    if (!url || !(u = curl_url()))
        return false;
    ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
         curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
         (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

/* --------------------------------------------------- request building */

/* Headers every request of this delivery carries: Kn-Namespace, W3C trace
 * context from the event's extensions, then the caller's. */
static int build_extra(kn_delivery *d, const kn_delivery_req *req,
                       kn_err *err)
{
    static const char *const trace[] = {"traceparent", "tracestate"};
    size_t len;

    if (req->ns) {
        if (!header_safe(req->ns, strlen(req->ns)))
            return kn_err_set(err, KN_INVAL, "namespace has CR/LF");
        if (slist_add(&d->extra, "Kn-Namespace", 12, req->ns,
                      strlen(req->ns)))
            return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < 2; i++) {
        const char *v = ce_event_get(d->event, trace[i], &len, NULL);
        if (v && len > 0 && header_safe(v, len) &&
            slist_add(&d->extra, trace[i], strlen(trace[i]), v, len))
            return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const ce_header *h = &req->headers[i];
        bool ok = h->name_len > 0;
        for (size_t j = 0; ok && j < h->name_len; j++)
            ok = token_char((unsigned char)h->name[j]);
        if (!ok || !header_safe(h->value, h->value_len))
            return kn_err_set(err, KN_INVAL,
                              "headers[%zu]: invalid header name or value",
                              i);
        if (slist_add(&d->extra, h->name, h->name_len, h->value,
                      h->value_len))
            return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    return KN_OK;
}

static bool name_is(const ce_header *h, const char *s)
{
    return h->name_len == strlen(s) && strncasecmp(h->name, s,
                                                   h->name_len) == 0;
}

/* Encodes ev into d->hdrs / d->body. For the subscriber: without
 * knativebrokerttl and with `Prefer: reply`. */
static int build_request(kn_delivery *d, const ce_event *ev, bool subscriber,
                         kn_err *err)
{
    ce_mode mode = d->spec.format == KN_FORMAT_JSON ? CE_MODE_STRUCTURED
                                                    : CE_MODE_BINARY;
    ce_headers h;
    ce_err cerr;
    ce_event *tmp = NULL;
    bool has_ct = false;
    int rc = KN_NOMEM;

    memset(&h, 0, sizeof h);
    memset(&cerr, 0, sizeof cerr);
    curl_slist_free_all(d->hdrs);
    d->hdrs = NULL;
    ce_buf_reset(&d->body);
    if (subscriber && mode == CE_MODE_STRUCTURED && d->has_ttl) {
        if (!(tmp = ce_event_clone(ev)))
            goto fail;
        ce_event_unset(tmp, TTL_EXT);
        ev = tmp;
    }
    if (ce_http_encode(ev, mode, &h, &d->body, &cerr) != CE_OK) {
        rc = kn_err_set(err, KN_INVAL, "cannot encode the event: %s%s%s",
                        cerr.attr, cerr.attr[0] ? ": " : "", cerr.msg);
        goto out;
    }
    for (size_t i = 0; i < h.count; i++) {
        const ce_header *x = &h.items[i];
        if (subscriber && name_is(x, "ce-" TTL_EXT))
            continue;
        has_ct |= name_is(x, "content-type");
        if (slist_add(&d->hdrs, x->name, x->name_len, x->value,
                      x->value_len))
            goto fail;
    }
    /* curl would otherwise invent a form Content-Type and Expect. */
    if ((!has_ct && slist_add_raw(&d->hdrs, "Content-Type:")) ||
        slist_add_raw(&d->hdrs, "Expect:") ||
        (subscriber && slist_add_raw(&d->hdrs, "Prefer: reply")))
        goto fail;
    for (struct curl_slist *l = d->extra; l; l = l->next)
        if (slist_add_raw(&d->hdrs, l->data))
            goto fail;
    rc = KN_OK;
    goto out;
fail:
    rc = kn_err_set(err, KN_NOMEM, "out of memory");
out:
    ce_headers_free(&h);
    ce_event_unref(tmp);
    return rc;
}

/* ------------------------------------------------------------ submit */

static int submit_prepare(kn_delivery *d, const kn_delivery_req *req,
                          kn_err *err)
{
    const char *ttl;
    size_t len;

    if (req->spec)
        d->spec = *req->spec;
    else
        kn_delivery_spec_default(&d->spec);
    if (kn_delivery_spec_check(&d->spec, err) != KN_OK)
        return KN_INVAL;
    if (!url_ok(req->url))
        return kn_err_set(err, KN_INVAL, "url: not an http(s) URL: %s",
                          req->url ? req->url : "(null)");
    if (d->spec.dead_letter_url && !url_ok(d->spec.dead_letter_url))
        return kn_err_set(err, KN_INVAL,
                          "deadLetterSink: not an http(s) URL: %s",
                          d->spec.dead_letter_url);
    if (!(d->url = strdup(req->url)) ||
        (d->spec.dead_letter_url &&
         !(d->dls_url = strdup(d->spec.dead_letter_url))))
        return kn_err_set(err, KN_NOMEM, "out of memory");
    d->spec.dead_letter_url = d->dls_url;
    d->event = ce_event_ref(req->event);
    ttl = ce_event_get(d->event, TTL_EXT, &len, NULL);
    d->has_ttl = ttl && ce_parse_int(ttl, len, &d->ttl) == CE_OK;
    if (build_extra(d, req, err) != KN_OK)
        return err ? err->status : KN_INVAL;
    return build_request(d, d->event, true, err);
}

int kn_sink_submit(kn_sink_client *c, const kn_delivery_req *req,
                   kn_sink_done_cb cb, void *arg, kn_err *err)
{
    return kn_sink_submit_h(c, req, cb, arg, NULL, err);
}

int kn_sink_submit_h(kn_sink_client *c, const kn_delivery_req *req,
                     kn_sink_done_cb cb, void *arg, kn_sink_delivery **out,
                     kn_err *err)
{
    kn_delivery *d;
    int rc;

    if (!c || !req || !req->event || !cb)
        return kn_err_set(err, KN_INVAL, "kn_sink_submit: missing %s",
                          !c ? "client" : !req ? "request"
                          : !req->event ? "event" : "callback");
    if (!(d = calloc(1, sizeof *d)))
        return kn_err_set(err, KN_NOMEM, "out of memory");
    d->c = c;
    d->msg.kind = KN_MSG_DELIVERY;
    d->timer.idx = SIZE_MAX;
    d->timer.fire = retry_fire;
    d->cb = cb;
    d->arg = arg;
    d->start_ns = kn_now_mono_ns();
    if ((rc = submit_prepare(d, req, err)) != KN_OK)
        goto fail;
    KN_CNT_ADD(c, in_flight, 1);
    if ((rc = kn_queue_push(c, &d->msg)) != KN_OK) {
        KN_CNT_SUB(c, in_flight, 1);
        kn_err_set(err, rc, "the sink client is stopping");
        goto fail;
    }
    KN_CNT_ADD(c, submitted, 1);
    if (out)
        *out = d;
    return KN_OK;
fail:
    delivery_free(d);
    return rc;
}

/* ------------------------------------------------------------ finish */

static void active_unlink(kn_sink_client *c, kn_delivery *d)
{
    if (!d->active)
        return;
    if (d->prev)
        d->prev->next = d->next;
    else
        c->active = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->active = false;
}

static void count_status(kn_sink_client *c, kn_delivery_status st)
{
    switch (st) {
    case KN_DELIVERY_DELIVERED: KN_CNT_ADD(c, delivered, 1); break;
    case KN_DELIVERY_DEAD_LETTERED: KN_CNT_ADD(c, dead_lettered, 1); break;
    case KN_DELIVERY_FAILED: KN_CNT_ADD(c, failed, 1); break;
    case KN_DELIVERY_CANCELLED: KN_CNT_ADD(c, cancelled, 1); break;
    }
}

static int clamp_int(int64_t v)
{
    return v > INT_MAX ? INT_MAX : (int)v;
}

static void finish(kn_sink_client *c, kn_delivery *d, kn_delivery_status st,
                   ce_event *reply, const char *reply_error)
{
    kn_delivery_result r;
    uint64_t lat, max;

    active_unlink(c, d);
    memset(&r, 0, sizeof r);
    r.status = st;
    r.attempts = clamp_int(d->attempts);
    r.http_code = d->sub_code;
    r.error = d->sub_error;
    r.error_code = d->err_code;
    r.error_data = d->err_data.data;
    r.error_data_len = d->err_data.len;
    r.dls_attempts = clamp_int(d->dls_attempts);
    r.dls_http_code = d->dls_code;
    r.dls_error = d->dls_error;
    r.reply = reply;
    r.reply_error = reply_error ? reply_error : "";
    r.has_ttl = d->has_ttl;
    r.ttl = d->ttl;
    r.latency_ns = kn_now_mono_ns() - d->start_ns;
    lat = (uint64_t)r.latency_ns;
    count_status(c, st);
    KN_CNT_SUB(c, in_flight, 1);
    KN_CNT_ADD(c, latency_sum, lat);
    max = atomic_load_explicit(&c->cnt.latency_max, memory_order_relaxed);
    while (lat > max && !atomic_compare_exchange_weak(&c->cnt.latency_max,
                                                      &max, lat))
        ;
    if (reply)
        KN_CNT_ADD(c, replies, 1);
    d->cb(&r, d->arg);
    delivery_free(d);
}

/* ------------------------------------------------------ the response */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    kn_delivery *d = ud;
    size_t len = sz * n, room, take;

    if (!d->resp_cap_set) {
        long code = 0;
        curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &code);
        d->resp_cap = code == 200 && !d->dls_phase
                          ? d->c->opts.max_reply_bytes : ERR_DATA_MAX;
        d->resp_cap_set = true;
    }
    room = d->resp_cap > d->resp.len ? d->resp_cap - d->resp.len : 0;
    take = len < room ? len : room;
    if (take && ce_buf_append(&d->resp, p, take) != CE_OK)
        take = 0;
    if (take < len)
        d->truncated = true;      /* the rest is read and dropped */
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    kn_delivery *d = ud;
    size_t len = sz * n, nl, vs, ve;
    const char *colon;

    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        ce_headers_free(&d->rh);        /* a new (final or 1xx) response */
        memset(&d->rh, 0, sizeof d->rh);
        d->rh_bytes = 0;
        return len;
    }
    if (!(colon = memchr(p, ':', len)) || d->rh.count >= RESP_HDR_MAX ||
        d->rh_bytes + len > RESP_HDR_BYTES)
        return len;
    nl = (size_t)(colon - p);
    while (nl > 0 && (p[nl - 1] == ' ' || p[nl - 1] == '\t'))
        nl--;
    vs = (size_t)(colon - p) + 1;
    while (vs < len && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    ve = len;
    while (ve > vs && strchr(" \t\r\n", p[ve - 1]))
        ve--;
    if (nl > 0 && ce_headers_add(&d->rh, p, nl, p + vs, ve - vs) == CE_OK)
        d->rh_bytes += len;
    return len;
}

static void reset_response(kn_delivery *d)
{
    ce_buf_reset(&d->resp);
    ce_headers_free(&d->rh);
    memset(&d->rh, 0, sizeof d->rh);
    d->rh_bytes = 0;
    d->resp_cap_set = d->truncated = false;
    d->errbuf[0] = '\0';
    d->error[0] = '\0';
}

/* A 200 from the subscriber: is its body a CloudEvent? */
static ce_event *take_reply(kn_delivery *d, char *why, size_t whyn)
{
    ce_event **evs = NULL, *ev;
    size_t count = 0;
    ce_err cerr;

    if (d->truncated) {
        snprintf(why, whyn, "reply body larger than %zu bytes ignored",
                 d->c->opts.max_reply_bytes);
        return NULL;
    }
    if (d->resp.len == 0 &&
        !ce_headers_find(d->rh.items, d->rh.count, "ce-specversion"))
        return NULL;                    /* empty body: no reply */
    memset(&cerr, 0, sizeof cerr);
    if (ce_http_decode(d->rh.items, d->rh.count, d->resp.data, d->resp.len,
                       0, &evs, &count, &cerr) != CE_OK) {
        snprintf(why, whyn, "response body is not a CloudEvent: %.60s%s%.150s",
                 cerr.attr, cerr.attr[0] ? ": " : "", cerr.msg);
        return NULL;
    }
    if (count != 1) {
        snprintf(why, whyn, "a batch of %zu events is not a reply", count);
        ce_events_free(evs, count);
        return NULL;
    }
    ev = evs[0];
    free(evs);
    return ev;
}

static int64_t retry_after(kn_delivery *d, long code)
{
    const ce_header *h;
    int64_t ms;
    if (code != 429 && code != 503)
        return -1;
    h = ce_headers_find(d->rh.items, d->rh.count, "retry-after");
    if (!h || kn_retry_after_parse(h->value, h->value_len,
                                   kn_now_wall_ns() / 1000000, &ms) != KN_OK)
        return -1;
    return ms;
}

static void count_response(kn_sink_client *c, long code)
{
    if (code == 0)
        KN_CNT_ADD(c, transport, 1);
    else if (code >= 200 && code < 300)
        KN_CNT_ADD(c, resp_2xx, 1);
    else if (code >= 400 && code < 500)
        KN_CNT_ADD(c, resp_4xx, 1);
    else if (code >= 500 && code < 600)
        KN_CNT_ADD(c, resp_5xx, 1);
    else
        KN_CNT_ADD(c, resp_other, 1);
}

/* -------------------------------------------------- dead-letter sink */

/* Records the subscriber's final failure (for the DLS and the result). */
static void record_failure(kn_delivery *d, long code)
{
    d->sub_code = (int)code;
    snprintf(d->sub_error, sizeof d->sub_error, "%s", d->error);
    d->err_code = code ? (int)code : 500;
    ce_buf_reset(&d->err_data);
    if (code)
        ce_buf_append(&d->err_data, d->resp.data,
                      d->resp.len < ERR_DATA_MAX ? d->resp.len
                                                 : ERR_DATA_MAX);
    else
        ce_buf_printf(&d->err_data, "dispatch error: %s", d->error);
    if (d->err_data.len > ERR_DATA_MAX)
        d->err_data.len = ERR_DATA_MAX;
}

/* Builds the dead-letter request: the original event + error extensions. */
static int start_dls(kn_sink_client *c, kn_delivery *d)
{
    ce_event *ev = ce_event_clone(d->event);
    ce_buf b64 = CE_BUF_INIT;
    kn_err err;
    int rc = KN_NOMEM;

    memset(&err, 0, sizeof err);
    if (!ev)
        goto out;
    if (ce_event_set_str(ev, "knativeerrordest", d->url, NULL) ||
        ce_event_set_int(ev, "knativeerrorcode", d->err_code, NULL))
        goto out;
    if (d->err_data.len > 0 &&
        (ce_base64_encode(&b64, d->err_data.data, d->err_data.len) ||
         ce_event_set_str(ev, "knativeerrordata", b64.data, NULL)))
        goto out;
    rc = build_request(d, ev, false, &err);
out:
    ce_event_unref(ev);
    ce_buf_free(&b64);
    if (rc != KN_OK) {
        snprintf(d->dls_error, sizeof d->dls_error,
                 "cannot build the dead-letter event: %.200s",
                 err.msg[0] ? err.msg : kn_status_str(rc));
        return rc;
    }
    d->dls_phase = true;
    attempt_start(c, d);
    return KN_OK;
}

/* --------------------------------------------------------- outcomes */

static void retry_fire(kn_sink_client *c, kn_tnode *t)
{
    kn_delivery *d = (kn_delivery *)((char *)t -
                                     offsetof(kn_delivery, timer));
    d->waiting = false;
    KN_CNT_SUB(c, waiting_retry, 1);
    attempt_start(c, d);
}

/* The attempt ended with `code` (0 = transport error, d->error set). */
static void outcome(kn_sink_client *c, kn_delivery *d, long code)
{
    kn_attempt_class cls = kn_delivery_classify((int)code);
    int64_t n = d->dls_phase ? d->dls_attempts : d->attempts;
    char why[256] = "";

    count_response(c, code);
    if (cls == KN_ATTEMPT_SUCCESS) {
        if (d->dls_phase) {
            d->dls_code = (int)code;
            finish(c, d, KN_DELIVERY_DEAD_LETTERED, NULL, NULL);
            return;
        }
        d->sub_code = (int)code;
        ce_event *reply = code == 200 ? take_reply(d, why, sizeof why)
                                      : NULL;
        finish(c, d, KN_DELIVERY_DELIVERED, reply, why);
        return;
    }
    if (code != 0)
        snprintf(d->error, sizeof d->error, "HTTP %ld", code);
    if (cls == KN_ATTEMPT_RETRY && n <= d->spec.retry) {
        int64_t delay = kn_retry_delay_ms(&d->spec, (int32_t)n, (int)code,
                                          retry_after(d, code));
        d->waiting = true;
        KN_CNT_ADD(c, waiting_retry, 1);
        kn_heap_push(c, &d->timer, delay);
        return;
    }
    if (d->dls_phase) {
        d->dls_code = (int)code;
        snprintf(d->dls_error, sizeof d->dls_error, "%s", d->error);
        finish(c, d, KN_DELIVERY_FAILED, NULL, NULL);
        return;
    }
    record_failure(d, code);
    if (!d->dls_url || start_dls(c, d) != KN_OK)
        finish(c, d, KN_DELIVERY_FAILED, NULL, NULL);
}

static void attempt_start(kn_sink_client *c, kn_delivery *d)
{
    CURL *e = kn_easy_get(c);
    long timeout;

    reset_response(d);
    if (d->dls_phase) {
        d->dls_attempts++;
        KN_CNT_ADD(c, dls_attempts, 1);
    } else {
        d->attempts++;
    }
    KN_CNT_ADD(c, attempts, 1);
    if ((d->dls_phase ? d->dls_attempts : d->attempts) > 1)
        KN_CNT_ADD(c, retries, 1);
    if (!e) {
        snprintf(d->error, sizeof d->error, "cannot create a curl handle");
        outcome(c, d, 0);
        return;
    }
    d->easy = e;
    timeout = d->spec.timeout_ms > LONG_MAX ? LONG_MAX
                                            : (long)d->spec.timeout_ms;
    curl_easy_setopt(e, CURLOPT_URL, d->dls_phase ? d->dls_url : d->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body.data ? d->body.data : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->body.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, d);
    curl_easy_setopt(e, CURLOPT_PRIVATE, d);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     c->opts.h2_prior_knowledge
                         ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                         : (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        d->easy = NULL;
        kn_easy_put(c, e);
        snprintf(d->error, sizeof d->error, "cannot start the transfer");
        outcome(c, d, 0);
    }
}

/* ------------------------------------------------ called by the loop */

void kn_delivery_begin(kn_sink_client *c, kn_msg *m)
{
    kn_delivery *d = (kn_delivery *)m;
    if (d->cancelled) {
        finish(c, d, KN_DELIVERY_CANCELLED, NULL, NULL);
        return;
    }
    d->active = true;
    d->prev = NULL;
    d->next = c->active;
    if (c->active)
        c->active->prev = d;
    c->active = d;
    attempt_start(c, d);
}

void kn_delivery_done(kn_sink_client *c, CURL *e, CURLcode rc)
{
    kn_delivery *d = NULL;
    long code = 0, conns = 0;

    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&d);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &conns);
    if (conns > 0)
        KN_CNT_ADD(c, connections, (uint64_t)conns);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    } else {
        snprintf(d->error, sizeof d->error, "%s",
                 d->errbuf[0] ? d->errbuf : curl_easy_strerror(rc));
    }
    d->easy = NULL;
    kn_easy_put(c, e);
    outcome(c, d, code);
}

static void cancel_fire(kn_sink_client *c, kn_tnode *t)
{
    kn_delivery *d = (kn_delivery *)((char *)t -
                                     offsetof(kn_delivery, timer));
    finish(c, d, KN_DELIVERY_CANCELLED, NULL, NULL);
}

/* Stops whatever the delivery is doing (attempt or backoff wait). */
static void delivery_stop(kn_sink_client *c, kn_delivery *d)
{
    if (d->easy) {
        curl_multi_remove_handle(c->multi, d->easy);
        kn_easy_put(c, d->easy);
        d->easy = NULL;
    }
    if (d->waiting) {
        kn_heap_remove(c, &d->timer);
        d->waiting = false;
        KN_CNT_SUB(c, waiting_retry, 1);
    }
}

void kn_sink_cancel(kn_sink_delivery *d)
{
    kn_sink_client *c;
    if (!d || d->cancelled)
        return;
    c = d->c;
    d->cancelled = true;
    if (!d->active)
        return;                 /* still queued: begin() finishes it */
    delivery_stop(c, d);
    d->timer.fire = cancel_fire;
    kn_heap_push(c, &d->timer, 0);
}

void kn_delivery_discard_msg(kn_sink_client *c, kn_msg *m)
{
    finish(c, (kn_delivery *)m, KN_DELIVERY_CANCELLED, NULL, NULL);
}

void kn_delivery_cancel_all(kn_sink_client *c)
{
    while (c->active) {
        kn_delivery *d = c->active;
        delivery_stop(c, d);
        kn_heap_remove(c, &d->timer);     /* a pending cancel_fire */
        finish(c, d, KN_DELIVERY_CANCELLED, NULL, NULL);
    }
}
