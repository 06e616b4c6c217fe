/*
 * sinks: delivers one CloudEvent to one HTTP destination with a Knative
 * delivery spec (retries, backoff, Retry-After, timeout, dead-letter sink)
 * and reports the outcome. It knows nothing about brokers or triggers: the
 * broker's dispatcher drives it.
 *
 * Pieces
 * - kn_delivery_spec and its pure helpers (delivery.c): defaults, the
 *   backoff formula, the retryable classification, Retry-After parsing.
 * - kn_sink_client (client.c, loop.c): ONE event-loop thread running
 *   libcurl multi with the socket API on epoll. Connections are kept alive
 *   and reused; backoff waits are entries in a min-heap of timers (no
 *   sleeping, no thread per delivery). The same loop can host the caller's
 *   own fds and timers, so a dispatcher can run entirely on it.
 * - kn_event_display_* (event_display.c): a sink that prints every event it
 *   receives, for `knit event-display` and the quick start.
 *
 * Threads: each function says where it may be called. "any thread" means
 * thread-safe; "loop thread" means only from a callback this client runs
 * (result, fd, timer or run-on-loop callbacks).
 *
 * Errors: functions returning int return KN_OK (0) or a negative kn status
 * (common/common.h), with detail in the optional kn_err.
 */
#ifndef KNIT_SINKS_H
#define KNIT_SINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cloudevents/cloudevents.h"
#include "common/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------ delivery spec */

typedef enum kn_backoff_policy {
    KN_BACKOFF_EXPONENTIAL = 0,
    KN_BACKOFF_LINEAR,
} kn_backoff_policy;

typedef enum kn_delivery_format {
    KN_FORMAT_BINARY = 0,   /* binary content mode (default) */
    KN_FORMAT_JSON,         /* structured content mode (`format: json`) */
} kn_delivery_format;

/* "No value" for the optional millisecond fields. */
#define KN_DELIVERY_UNSET ((int64_t)-1)

#define KN_DELIVERY_DEFAULT_RETRY 10
#define KN_DELIVERY_DEFAULT_DELAY_MS 200
#define KN_DELIVERY_DEFAULT_TIMEOUT_MS 600000          /* PT10M per attempt */
#define KN_DELIVERY_DEFAULT_RETRY_AFTER_MAX_MS 600000  /* PT10M */

/* A delivery spec (Knative `delivery`). A plain value: copy it freely.
 * dead_letter_url is borrowed; kn_sink_submit copies it. */
typedef struct kn_delivery_spec {
    int32_t retry;               /* retries after the first attempt, >= 0 */
    kn_backoff_policy policy;
    int64_t backoff_delay_ms;    /* >= 0 */
    int64_t backoff_max_ms;      /* cap per wait; KN_DELIVERY_UNSET = none */
    int64_t timeout_ms;          /* per attempt; 0 = no timeout */
    int64_t retry_after_max_ms;  /* Retry-After cap; 0 = ignore the header */
    const char *dead_letter_url; /* NULL = no dead-letter sink */
    kn_delivery_format format;
} kn_delivery_spec;

/* The defaults: retry 10, exponential, 200 ms, no backoffMax, timeout
 * 10 min, retryAfterMax 10 min, no dead-letter sink, binary. */
void kn_delivery_spec_default(kn_delivery_spec *spec);

/* Checks ranges (retry >= 0, delays >= 0, timeout >= 0). KN_INVAL with
 * err->field naming the field ("retry", "backoffDelay", ...). */
int kn_delivery_spec_check(const kn_delivery_spec *spec, kn_err *err);

/* Reads a Knative `delivery` object (jansson) over `spec` (fields not
 * present keep their value, so start from kn_delivery_spec_default):
 * retry, backoffPolicy, backoffDelay, backoffMax, timeout, retryAfterMax
 * (ISO-8601 durations) and format. `deadLetterSink` is a Destination the
 * caller resolves: it is only checked to be an object and is not read.
 * Unknown fields are rejected. err->field is `prefix` + "." + field
 * (prefix may be NULL, e.g. "spec.delivery"). */
int kn_delivery_spec_from_json(const json_t *delivery, const char *prefix,
                               kn_delivery_spec *spec, kn_err *err);

/* Wait before retry n (n = 1 for the first retry): linear delay*n,
 * exponential delay*2^(n-1), then capped by backoff_max_ms when set.
 * Saturates at INT64_MAX instead of overflowing, for any n. n <= 0 → 0. */
int64_t kn_backoff_ms(const kn_delivery_spec *spec, int32_t n);

/* What an attempt's outcome means. http_code 0 = transport error
 * (connection refused/reset, DNS, timeout). */
typedef enum kn_attempt_class {
    KN_ATTEMPT_SUCCESS = 0, /* 2xx */
    KN_ATTEMPT_RETRY,       /* transport error, 404, 408, 409, 429, 5xx,
                               >= 600 */
    KN_ATTEMPT_FAIL,        /* 1xx, 3xx and the other 4xx: no retry */
} kn_attempt_class;

kn_attempt_class kn_delivery_classify(int http_code);

/* Parses a Retry-After value: delay-seconds (digits, saturating) or an
 * HTTP-date (IMF-fixdate, RFC 850 or asctime; RFC 9110 §5.6.7), relative
 * to now_wall_ms (ms since the epoch). A date in the past gives 0.
 * Surrounding whitespace is allowed. KN_PARSE if malformed. */
int kn_retry_after_parse(const char *value, size_t n, int64_t now_wall_ms,
                         int64_t *delay_ms);

/* The wait before retry n after an attempt that ended with http_code:
 * kn_backoff_ms, or for 429/503 with a Retry-After (retry_after_ms >= 0)
 * and retry_after_max_ms > 0: max(backoff, min(retry_after, cap)). */
int64_t kn_retry_delay_ms(const kn_delivery_spec *spec, int32_t n,
                          int http_code, int64_t retry_after_ms);

/* --------------------------------------------------------- the client */

typedef struct kn_sink_client kn_sink_client;

typedef struct kn_sink_client_opts {
    /* Idle connections kept for reuse (CURLMOPT_MAXCONNECTS). 0 = 256. */
    long max_idle_connections;
    /* Connections per host (CURLMOPT_MAX_HOST_CONNECTIONS); transfers
     * beyond it wait in curl's queue (the wait counts toward timeout).
     * 0 = 256. */
    long max_host_connections;
    /* Largest reply body read from a 200 (default 1 MiB when 0). A larger
     * body is read and discarded; the delivery is done without a reply. */
    size_t max_reply_bytes;
    /* Speak HTTP/2 with prior knowledge over cleartext (h2c). Default
     * false: HTTP/1.1 on http://, HTTP/2 on https:// when ALPN offers it. */
    bool h2_prior_knowledge;
    /* User-Agent header; NULL = "knit/VERSION". Copied. */
    const char *user_agent;
} kn_sink_client_opts;

/* Starts the loop thread. opts may be NULL (defaults). Any thread. */
kn_sink_client *kn_sink_client_new(const kn_sink_client_opts *opts,
                                   kn_err *err);

/* Stops the loop: deliveries still in flight or waiting for a retry end
 * with KN_DELIVERY_CANCELLED (their callbacks run on the loop thread
 * before it exits), queued run-on-loop calls run, watches and timers are
 * dropped without callbacks. Joins the thread and frees everything.
 * Any thread EXCEPT the loop thread. NULL is ignored. */
void kn_sink_client_free(kn_sink_client *c);

/* Final outcome of one delivery. */
typedef enum kn_delivery_status {
    KN_DELIVERY_DELIVERED = 0,  /* the subscriber answered 2xx */
    KN_DELIVERY_DEAD_LETTERED,  /* failed; the dead-letter sink took it */
    KN_DELIVERY_FAILED,         /* failed; no dead-letter sink, or it
                                   failed too: store it in the DLQ */
    KN_DELIVERY_CANCELLED,      /* the client was freed first: neither
                                   delivered nor failed, redeliver later */
} kn_delivery_status;

const char *kn_delivery_status_str(kn_delivery_status s);

/* What a result callback sees. Pointers are valid during the callback
 * only, except `reply`, whose reference passes to the callback. */
typedef struct kn_delivery_result {
    kn_delivery_status status;
    int attempts;            /* attempts made to the subscriber (>= 1) */
    int http_code;           /* subscriber's last HTTP code, 0 = transport
                                error */
    const char *error;       /* subscriber's last error ("" if delivered),
                                e.g. "HTTP 500" or "Connection refused" */
    /* The knativeerrorcode / knativeerrordata of the failure: the last
     * code (500 for transport errors) and the response body truncated to
     * 1024 bytes (for a transport error, "dispatch error: <error>"). */
    int error_code;
    const void *error_data;
    size_t error_data_len;
    /* Dead-letter sink, when one was tried. */
    int dls_attempts;
    int dls_http_code;
    const char *dls_error;
    /* A 200 carrying a CloudEvent: a new mutable event, owned by the
     * callback (unref it). NULL otherwise. */
    ce_event *reply;
    /* Why a 200 body was not taken as a reply ("" if none was expected,
     * e.g. an empty body or a 202), for logging. */
    const char *reply_error;
    /* knativebrokerttl of the event (stripped from the request), so the
     * caller can re-attach it to the reply. */
    bool has_ttl;
    int32_t ttl;
    /* Time from kn_sink_submit to this callback (monotonic ns). */
    int64_t latency_ns;
} kn_delivery_result;

/* Runs on the loop thread, once per accepted submission. */
typedef void (*kn_sink_done_cb)(const kn_delivery_result *res, void *arg);

/* One delivery. Everything is copied or referenced by kn_sink_submit;
 * the struct and its strings may be freed once it returns. */
typedef struct kn_delivery_req {
    ce_event *event;        /* frozen event; submit takes a reference */
    const char *url;        /* subscriber URL (http:// or https://) */
    const kn_delivery_spec *spec;  /* NULL = kn_delivery_spec_default */
    const char *ns;         /* Kn-Namespace header; NULL = not sent */
    const ce_header *headers; /* extra request headers (may be NULL) */
    size_t nheaders;
} kn_delivery_req;

/* Queues a delivery. The event is encoded on the calling thread (binary,
 * or structured when spec->format is JSON) without knativebrokerttl, with
 * `Prefer: reply`, `Kn-Namespace` and W3C `traceparent`/`tracestate`
 * headers when the event has those extensions. Errors (nothing queued,
 * cb not called): KN_INVAL (bad URL, spec, header with CR/LF, event that
 * cannot be encoded), KN_CLOSED (client stopping), KN_NOMEM.
 * Any thread, including the loop thread. */
int kn_sink_submit(kn_sink_client *c, const kn_delivery_req *req,
                   kn_sink_done_cb cb, void *arg, kn_err *err);

/* The same, also returning a handle for kn_sink_cancel. The handle is
 * valid until the delivery's callback starts; only the loop thread may
 * use it (callers on other threads must not keep it). */
typedef struct kn_delivery kn_sink_delivery;
int kn_sink_submit_h(kn_sink_client *c, const kn_delivery_req *req,
                     kn_sink_done_cb cb, void *arg, kn_sink_delivery **out,
                     kn_err *err);

/* Abandons a delivery: a running attempt is aborted, a backoff wait
 * dropped, and the callback runs with KN_DELIVERY_CANCELLED on a later
 * loop turn (never inside this call). Idempotent until the callback runs.
 * Loop thread. */
void kn_sink_cancel(kn_sink_delivery *h);

/* Counters since the client started. Any thread; a consistent snapshot
 * of each counter, not of all of them together. */
typedef struct kn_sink_stats {
    uint64_t submitted;      /* accepted by kn_sink_submit */
    uint64_t attempts;       /* HTTP attempts, subscriber + dead-letter */
    uint64_t retries;        /* attempts after a first one */
    uint64_t resp_2xx, resp_4xx, resp_5xx;
    uint64_t resp_other;     /* 1xx, 3xx, >= 600 */
    uint64_t transport_errors;
    uint64_t delivered, dead_lettered, failed, cancelled;
    uint64_t dls_attempts;
    uint64_t replies;        /* replies handed to callbacks */
    uint64_t connections;    /* new connections opened */
    uint64_t in_flight;      /* gauge: deliveries not finished */
    uint64_t waiting_retry;  /* gauge: deliveries in a backoff wait */
    uint64_t latency_ns_sum; /* of finished deliveries */
    uint64_t latency_ns_max;
} kn_sink_stats;

void kn_sink_client_stats(kn_sink_client *c, kn_sink_stats *out);

/* ------------------------------------------- hosting the caller's work */

/* Runs fn(c, arg) on the loop thread, in order with other calls and
 * submissions from the same thread. KN_CLOSED if the client is stopping
 * (fn not called). Any thread. */
typedef void (*kn_sink_run_fn)(kn_sink_client *c, void *arg);
int kn_sink_client_run(kn_sink_client *c, kn_sink_run_fn fn, void *arg);

/* True on the client's loop thread. Any thread. */
bool kn_sink_client_on_loop(const kn_sink_client *c);

/* Watches fd with epoll (events: EPOLLIN, EPOLLOUT, ...; level-triggered).
 * cb runs on the loop thread with the ready events. The fd stays the
 * caller's: unwatch before closing it. NULL on error (KN_INVAL when not
 * on the loop thread or epoll refuses the fd). Loop thread. */
typedef struct kn_sink_watch kn_sink_watch;
typedef void (*kn_sink_fd_cb)(kn_sink_client *c, int fd, uint32_t events,
                              void *arg);
kn_sink_watch *kn_sink_watch_fd(kn_sink_client *c, int fd, uint32_t events,
                                kn_sink_fd_cb cb, void *arg, kn_err *err);
/* Changes the events watched. Loop thread. */
int kn_sink_watch_modify(kn_sink_watch *w, uint32_t events);
/* Stops watching (safe inside its own callback). Loop thread. */
void kn_sink_unwatch(kn_sink_watch *w);

/* One-shot timer: cb runs on the loop thread after delay_ms (>= 0).
 * The handle is valid until the callback starts or it is cancelled.
 * Loop thread. */
typedef struct kn_sink_timer kn_sink_timer;
typedef void (*kn_sink_timer_cb)(kn_sink_client *c, void *arg);
kn_sink_timer *kn_sink_timer_add(kn_sink_client *c, int64_t delay_ms,
                                 kn_sink_timer_cb cb, void *arg);
void kn_sink_timer_cancel(kn_sink_timer *t);

/* ------------------------------------------------------ event display */

/* A sink that prints every event it receives (the JSON format, indented,
 * one document per event, separated by a blank line) to `out` and answers
 * 202; malformed events get 400 with {"error","field"}. Batches are
 * accepted. Listens on "ADDR:PORT", ":PORT", "PORT" or "[V6]:PORT"
 * (port 0 = any free port). */
typedef struct kn_event_display kn_event_display;

/* Starts listening (own thread). NULL with err on failure. Any thread. */
kn_event_display *kn_event_display_start(const char *listen, FILE *out,
                                         kn_err *err);
/* The bound port. */
int kn_event_display_port(const kn_event_display *d);
/* Events printed so far. */
uint64_t kn_event_display_count(const kn_event_display *d);
void kn_event_display_stop(kn_event_display *d);

/* Starts, prints "listening on ADDR:PORT" to stderr, and blocks until
 * SIGINT or SIGTERM. Returns KN_OK after a signal, or an error. Meant for
 * `knit event-display --listen ADDR:PORT`. */
int kn_event_display_run(const char *listen, FILE *out, kn_err *err);

#ifdef __cplusplus
}
#endif
#endif /* KNIT_SINKS_H */
