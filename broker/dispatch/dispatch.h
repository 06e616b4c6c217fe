/*
 * The dispatcher: turns the events stored in brokers' channels into
 * deliveries to the subscribers of their triggers (DESIGN.md §4–5). This
 * header is what the rest of broker/ uses (reconciler, admin API, metrics,
 * the Trigger kind); broker/dispatch/dispatch_int.h holds the internals.
 *
 * Threads
 * - One event loop: the kn_sink_client loop thread (sinks/sinks.h) runs
 *   every trigger, every broker feed, the deliveries and their timers.
 * - One committer thread stores cursor positions (an fsync each), so the
 *   loop never waits for the disk.
 * - Channel writer threads complete reply and dead-letter appends; they
 *   hand the result back to the loop through kn_sink_client_run.
 * - The reconciler (admin/main threads, under the server's mutex) calls
 *   kn_dispatcher_sync; admin threads call the dlq/replay functions.
 */
#ifndef KNIT_BROKER_DISPATCH_H
#define KNIT_BROKER_DISPATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Trigger annotations (DESIGN.md §4). */
#define KN_ANN_DELIVERY_ORDER "kafka.eventing.knative.dev/delivery.order"
#define KN_ANN_MAX_IN_FLIGHT "knit.dev/max-in-flight"
#define KN_ANN_RATE_LIMIT "knit.dev/rate-limit"
#define KN_TRIGGER_DEFAULT_MAX_IN_FLIGHT 100u
#define KN_TRIGGER_MAX_IN_FLIGHT_MAX 10000u

/* The annotations of a trigger, decoded (kinds_trigger.c). */
typedef struct kn_trigger_opts {
    bool ordered;
    uint32_t max_in_flight; /* >= 1 */
    uint32_t rate_limit;    /* deliveries started per second; 0 = none */
} kn_trigger_opts;

/* Reads a trigger's annotations; KN_INVAL with err->field naming the
 * annotation when one is malformed. Pure; any thread. */
int kn_trigger_options(const kn_resource *t, kn_trigger_opts *o,
                       kn_err *err);
/* spec.broker of a Trigger (borrowed). */
const char *kn_trigger_broker(const kn_resource *t);

typedef struct kn_dispatcher kn_dispatcher;

/* Starts the loop and committer threads. Dead-letter stores live under
 * DATA/brokers/<ns>/<name>/dlq. Any thread. */
int kn_dispatcher_new(const char *data_dir, kn_dispatcher **out,
                      kn_err *err);

/* Stops delivering: in-flight deliveries are cancelled (redelivered after
 * a restart), pending reply and dead-letter appends are waited for
 * (bounded), every trigger's position is committed, cursors are closed
 * and the channel references released. Idempotent. Must run before the
 * brokers' channels close. Not on the loop thread. */
void kn_dispatcher_stop(kn_dispatcher *d);
/* Stops (if needed) and frees. NULL is ignored. */
void kn_dispatcher_free(kn_dispatcher *d);

/* The reconciler's hook, called under the server mutex after every pass:
 * `store` is the desired state, `brokers` the published graph (a broker
 * with chan == NULL is not ready), `ingress_url` the base URL of the
 * ingress (for refs to brokers). Works out every trigger's plan and
 * status, opens the cursors of new triggers (a new trigger starts at the
 * end of the log, a known one at its committed position), hands the plan
 * to the loop and waits until the loop runs it, then deletes the stored
 * positions of deleted triggers. `final` = false for the intermediate
 * pass that only releases channels about to close (statuses unchanged). */
void kn_dispatcher_sync(kn_dispatcher *d, const kn_store *store,
                        kn_broker_rt *const *brokers, size_t n,
                        const char *ingress_url, bool final);

/* The status object of a Trigger (conditions BrokerReady,
 * SubscriberResolved, DeadLetterSinkResolved, Ready; subscriberUri,
 * deadLetterSinkUri, observedGeneration). A new reference. Under the
 * server mutex (like kn_dispatcher_sync). */
json_t *kn_dispatcher_trigger_status(kn_dispatcher *d, const kn_resource *r);

/* Prometheus text of the dispatcher's metrics. Any thread. */
int kn_dispatcher_metrics(kn_dispatcher *d, ce_buf *out);

/* Admin API routes under /v1/dlq/ and /v1/replay/ (docs/delivery.md):
 *   GET  /v1/dlq/<ns>/<broker>[?trigger=T]
 *   POST /v1/dlq/<ns>/<broker>/replay[?trigger=T&id=ID]
 *   POST /v1/dlq/<ns>/<broker>/purge[?trigger=T&id=ID]
 *   POST /v1/replay/<ns>/<trigger>?from=start|end|OFFSET|RFC3339
 * `path` is the URL without its query; arg(ctx, name) returns a query
 * parameter or NULL. Returns the HTTP status and sets *body (JSON).
 * Admin threads. */
typedef const char *(*kn_query_fn)(void *ctx, const char *name);
unsigned kn_dispatcher_admin(kn_server *srv, const char *method,
                             const char *path, kn_query_fn arg, void *ctx,
                             json_t **body);
/* The server's dispatcher (reconcile.c). */
kn_dispatcher *kn_server_dispatcher(kn_server *srv);
/* True for the admin paths kn_dispatcher_admin serves. */
bool kn_dispatcher_admin_path(const char *path);

#ifdef __cplusplus
}
#endif
#endif /* KNIT_BROKER_DISPATCH_H */
