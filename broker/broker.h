/*
 * broker: the knit daemon (`knit serve`) — resource model and table-driven
 * decoder, persistence, reconciler, admin API, metrics and HTTP ingress.
 *
 * This header is the module's contract:
 * - kn_serve_main() is what broker/main.c calls for `knit serve`.
 * - The resource model (kinds, field tables, decoder) is shared by the
 *   daemon and by tests; later kinds (Trigger, sources, Service) plug in
 *   as kn_kind tables, not as new parsers.
 * - The rest (store, reconciler, listeners) is the internal API between
 *   the files of broker/ and is documented with its thread rules.
 *
 * Threads: the decoder and kind tables are pure functions, safe from any
 * thread. The server object is driven by serve.c; the admin API runs on
 * libmicrohttpd threads and serialises resource changes under one mutex;
 * the ingress looks brokers up under a read lock (see reconcile.c).
 */
#ifndef KNIT_BROKER_H
#define KNIT_BROKER_H

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channels/channel.h"
#include "cloudevents/cloudevents.h"
#include "common/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- entry */

/* `knit serve [--config DIR] [--data DIR] [--listen ADDR:PORT]
 * [--admin ADDR:PORT] [--log-level L] [--log-format text|json]`.
 * argv[0] is "serve" (or the program name). Runs until SIGTERM/SIGINT and
 * returns the process exit status (0 after a clean shutdown, 1 on a
 * startup/config error, 2 on a usage error). Call from the main thread. */
int kn_serve_main(int argc, char **argv);

#define KN_DEFAULT_DATA_DIR "./knit-data"
#define KN_DEFAULT_LISTEN "0.0.0.0:8080"
#define KN_DEFAULT_ADMIN "127.0.0.1:9090"
#define KN_DEFAULT_MAX_EVENT_SIZE (1024u * 1024u)
#define KN_DEFAULT_BROKER_TTL 255

/* ----------------------------------------------------- field tables */

/* Types a field table can declare. */
typedef enum kn_ftype {
    KN_FT_STRING = 1, /* JSON string */
    KN_FT_INT,        /* integer >= 0 (bounded by kn_field.max if set) */
    KN_FT_BOOL,       /* true/false */
    KN_FT_DURATION,   /* ISO-8601 duration string, e.g. PT0.2S */
    KN_FT_ENUM,       /* string, one of kn_field.values */
    KN_FT_MAP_STRING, /* object of string values */
    KN_FT_OBJECT,     /* object with the fields of kn_field.children */
    KN_FT_LIST,       /* array; elements decoded by kn_field.children[0] */
    KN_FT_ANY,        /* any JSON value (only for output-only fields) */
} kn_ftype;

/* kn_field.flags */
enum {
    KN_FF_REQUIRED = 1u << 0,  /* absent (or null) is an error */
    KN_FF_NONEMPTY = 1u << 1,  /* "" / {} / [] is an error */
    KN_FF_OUTPUT = 1u << 2,    /* output-only (status, generation …):
                                  accepted on input and dropped */
    KN_FF_POSITIVE = 1u << 3,  /* INT/DURATION must be > 0 */
};

typedef struct kn_field kn_field;
typedef struct kn_decode_ctx kn_decode_ctx;

/* Extra check of a field after its type check passed. `value` is the
 * (borrowed, mutable) node, `path` its JSON path ("spec.delivery.retry").
 * Returns KN_OK, or reports through kn_decode_fail() and returns its
 * status. Runs on the caller's thread. */
typedef int (*kn_field_check)(kn_decode_ctx *ctx, const kn_field *f,
                              json_t *value, const char *path);

struct kn_field {
    const char *name;           /* key in the parent object; NULL ends */
    kn_ftype type;
    unsigned flags;             /* KN_FF_* */
    const kn_field *children;   /* OBJECT: fields; LIST: children[0] is
                                   the element spec */
    const char *const *values;  /* ENUM: NULL-terminated */
    kn_field_check check;       /* optional */
    int64_t max;                /* INT: inclusive maximum (0 = none) */
    const char *unsupported;    /* non-NULL: a known field knit rejects;
                                   the text says why */
    const char *doc;            /* one-line description */
};

/* Known annotation of a kind: its value (always a string in YAML) is
 * decoded as `type` (STRING, INT = size in bytes with optional suffix
 * Ki/Mi/Gi/k/M/G, BOOL, DURATION, ENUM). */
typedef struct kn_annotation {
    const char *key;            /* NULL ends the table */
    kn_ftype type;
    const char *const *values;  /* ENUM */
    const char *doc;
} kn_annotation;

/* Decoder state for one document. `name` is the file name shown in
 * errors, `doc` the YAML document (for path → line; may be NULL). */
struct kn_decode_ctx {
    const char *file;
    const kn_yaml_doc *doc;
    kn_err *err;
};

/* Reports an error at `path` (line looked up in ctx->doc): sets
 * ctx->err->where = "file:line", ->field = path and the message.
 * Returns status. */
int kn_decode_fail(kn_decode_ctx *ctx, int status, const char *path,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Decodes (checks and normalises in place) the members of object `obj`
 * at `path` ("" for the top) against `fields`. Unknown members, members
 * marked unsupported and type errors are reported with their path.
 * Output-only members are removed. Returns KN_OK or KN_INVAL. */
int kn_decode_object(kn_decode_ctx *ctx, const kn_field *fields,
                     json_t *obj, const char *path);

/* Parses a size annotation value ("1048576", "64Mi", "1G"). */
int kn_parse_size(const char *s, uint64_t *out);

/* ------------------------------------------------------------ kinds */

typedef struct kn_kind kn_kind;
typedef struct kn_resource kn_resource;

struct kn_kind {
    const char *api_version;      /* "eventing.knative.dev/v1" */
    const char *kind;             /* "Broker" */
    const char *plural;           /* "brokers" */
    const char *singular;         /* "broker" */
    bool supported;               /* false: known Knative kind, rejected
                                     with "kind X is not supported yet" */
    /* Top-level members besides apiVersion/kind/metadata (e.g. spec,
     * data, status as output-only). */
    const kn_field *fields;
    /* Annotations this kind understands; other keys under a knit-owned
     * prefix (knit.dev/) are rejected, foreign ones are kept as is. */
    const kn_annotation *annotations;
    /* Cross-field checks after the table pass; may be NULL. */
    int (*validate)(kn_decode_ctx *ctx, json_t *obj);
};

/* All known kinds (supported or not), NULL-terminated. */
extern const kn_kind *const kn_kinds[];
extern const kn_kind kn_kind_broker;
extern const kn_kind kn_kind_configmap;
extern const kn_kind kn_kind_trigger;

/* Field tables shared by kinds (kinds_broker.c): a Knative Destination
 * ({ref, uri}) with its cross-field check, and a DeliverySpec. */
extern const kn_field kn_destination_fields[];
extern const kn_field kn_delivery_fields[];
int kn_check_destination(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                         const char *path);
/* Field check: the string is a DNS-1123 label (a referenced name or
 * namespace), else "\"X\" is not a valid name (DNS-1123 label)". */
int kn_check_name(kn_decode_ctx *ctx, const kn_field *f, json_t *v,
                  const char *path);

/* spec.broker of a Trigger is immutable: KN_INVAL naming the new
 * document's place and field when `next` moves trigger `prev` to another
 * broker (kinds_trigger.c). Pure; any thread. */
int kn_trigger_check_update(const kn_resource *prev, const kn_resource *next,
                            kn_err *err);

/* Finds a kind by Kind name ("Broker"), plural ("brokers") or singular
 * ("broker"), case-insensitively. NULL if unknown. */
const kn_kind *kn_kind_find(const char *name);

/* What the reconciler derives from a Broker (kinds_broker.c). */
typedef struct kn_broker_plan {
    char backend[16];        /* channel backend: "log", "kafka", "nats" */
    json_t *settings;        /* channel settings, string values (owned) */
    uint64_t max_event_size; /* ingress body limit */
    unsigned decode_flags;   /* CE_DECODE_LENIENT or 0 */
    char reason[64];         /* set when the broker cannot be Ready */
    char message[512];
    /* Kafka/NATS: where each channel setting came from, key → "ConfigMap
     * ns/name key K" or "annotation A" (owned; NULL for the log), so an
     * error the backend reports about a setting names its source. */
    json_t *sources;
    char config[160];        /* "ConfigMap ns/name" of spec.config or "" */
} kn_broker_plan;

/* Builds the plan of Broker `b`; `cm` is its spec.config ConfigMap (NULL
 * if none). Annotations override ConfigMap keys. Class → backend: Log and
 * MTChannelBasedBroker (default) → "log", Kafka → "kafka",
 * NatsJetStreamBroker → "nats"; for Kafka/NATS the ConfigMap's data are
 * the channel settings (max-event-size and header-decoding excepted, they
 * configure the ingress) and kafka.eventing.knative.dev/external.topic
 * becomes the kafka setting "topic". KN_OK, or KN_INVAL with
 * p->reason/message (e.g. "BackendNotAvailable", "InvalidConfig"). The
 * caller frees with kn_broker_plan_free in both cases. Needs the channel
 * registry filled (kn_channels_register_builtin). */
int kn_broker_plan_make(const kn_resource *b, const kn_resource *cm,
                        kn_broker_plan *p);
void kn_broker_plan_free(kn_broker_plan *p);
/* spec.config of a Broker as ns/name; false if it has none. */
bool kn_broker_config_ref(const kn_resource *b, char *ns, size_t nsn,
                          char *name, size_t namen);

/* ------------------------------------------------------- resources */

/* A decoded, validated resource. `obj` is the normalised object:
 * apiVersion, kind, metadata {name, namespace, labels?, annotations?,
 * generation, creationTimestamp} and the kind's members. Immutable once
 * built; shared by reference count between the store, the reconciler's
 * graph and API responses. */
struct kn_resource {
    atomic_int refs;
    const kn_kind *kind;
    char ns[64];
    char name[64];
    char where[256];  /* "file:line" of the document ("" if unknown) */
    json_t *obj;      /* owned */
};

kn_resource *kn_resource_incref(kn_resource *r);
void kn_resource_decref(kn_resource *r);

/* Decodes one YAML document into a new resource (refcount 1). An empty
 * document gives *out = NULL and KN_OK. Errors name file:line and the
 * field path. Does not set generation/creationTimestamp (the store does).
 * Pure; any thread. */
int kn_resource_decode(const char *file, const kn_yaml_doc *doc,
                       kn_resource **out, kn_err *err);

/* Decodes every document of a YAML buffer. All or nothing: on error no
 * resource is returned. Two documents naming the same kind/ns/name are an
 * error. *out is a malloc'd array of *count resources (free with
 * kn_resources_free). */
int kn_resources_parse(const char *file, const char *buf, size_t n,
                       kn_resource ***out, size_t *count, kn_err *err);
void kn_resources_free(kn_resource **rs, size_t count);
/* KN_EXISTS naming both places when two resources share kind/ns/name. */
int kn_resources_check_dups(kn_resource **rs, size_t n, kn_err *err);
/* A resource around an already normalised object (takes ownership of
 * obj; ns/name read from its metadata). NULL on ENOMEM. */
kn_resource *kn_resource_wrap(const kn_kind *k, json_t *obj,
                              const char *where);

/* Current wall-clock time as RFC 3339 UTC with whole seconds
 * ("2024-01-02T03:04:05Z"), as Kubernetes prints timestamps. */
void kn_timestamp_now(char buf[CE_TIME_MAX]);

/* Adds the ingress extensions to an event that enters a broker (ingress
 * request or reply): knativebrokerttl absent → default (255), present →
 * decremented (a non-integer counts as absent); ≤ 0 after that → CE_EINVAL
 * with err->attr "knativebrokerttl" and nothing changed for the caller to
 * store. knativearrivaltime = `arrival` (RFC 3339). The event must not be
 * frozen. Any thread (ingress.c). */
int kn_event_stamp(ce_event *ev, const char *arrival, ce_err *err);

/* Looks up a string annotation of a resource (NULL if absent). */
const char *kn_resource_annotation(const kn_resource *r, const char *key);
/* The spec-ish comparison used for "unchanged": the objects without
 * generation/creationTimestamp are equal. */
bool kn_resource_same(const kn_resource *a, const kn_resource *b);

/* --------------------------------------------------------- store */

/* The desired state: every applied resource, persisted atomically as one
 * JSON file DATA/resources/resources.json. Not thread-safe: the owner
 * (the reconciler) serialises access under its mutex. */
typedef struct kn_store kn_store;

int kn_store_open(const char *data_dir, kn_store **out, kn_err *err);
void kn_store_close(kn_store *st);
size_t kn_store_count(const kn_store *st);
/* i-th resource (sorted by kind, namespace, name); borrowed. */
kn_resource *kn_store_at(const kn_store *st, size_t i);
kn_resource *kn_store_find(const kn_store *st, const kn_kind *kind,
                           const char *ns, const char *name);

typedef enum kn_apply_action {
    KN_ACT_CREATED = 0,
    KN_ACT_CONFIGURED,
    KN_ACT_UNCHANGED,
    KN_ACT_DELETED,
    KN_ACT_NOT_FOUND,
} kn_apply_action;
const char *kn_apply_action_str(kn_apply_action a);

/* Applies (upserts) or deletes resources atomically: the new state is
 * written to disk first; on failure nothing changes. actions[i] receives
 * the outcome for rs[i] (array of n). Sets generation (1, +1 on change)
 * and creationTimestamp on the stored copies. */
int kn_store_apply(kn_store *st, kn_resource **rs, size_t n,
                   kn_apply_action *actions, kn_err *err);
int kn_store_delete(kn_store *st, kn_resource **rs, size_t n,
                    kn_apply_action *actions, kn_err *err);

/* -------------------------------------------------------- metrics */

/* Per-broker counters. Created on first use and kept until exit (so a
 * reconfigured broker keeps counting). Increments are atomic. */
enum { KN_HIST_BUCKETS = 14 };
typedef struct kn_bstats {
    char ns[64];
    char name[64];
    atomic_uint_fast64_t requests[9]; /* by kn_code_slot() */
    atomic_uint_fast64_t events_stored;
    atomic_uint_fast64_t bytes_received;
    atomic_uint_fast64_t lat_buckets[KN_HIST_BUCKETS];
    atomic_uint_fast64_t lat_count;
    atomic_uint_fast64_t lat_sum_us;
    struct kn_bstats *next;
} kn_bstats;

/* Stats of broker ns/name (created if needed; never freed before
 * kn_metrics_shutdown). NULL ns/name = requests for unknown brokers. */
kn_bstats *kn_metrics_broker(const char *ns, const char *name);
void kn_metrics_request(kn_bstats *s, int http_code);
void kn_metrics_append_latency(kn_bstats *s, int64_t ns);
void kn_metrics_shutdown(void);

typedef struct kn_broker_rt kn_broker_rt;
/* Prometheus text of every counter plus, for the given brokers, their
 * readiness and channel stats. Any thread. */
int kn_metrics_render(ce_buf *out, kn_broker_rt *const *brokers, size_t n);

/* ------------------------------------------------------- reconciler */

typedef struct kn_server kn_server;

/* A broker's open channel, shared by reference count between the graph,
 * in-flight ingress requests and admin tails. The channel closes when
 * the last reference goes. `closing` tells long-lived holders (tails) to
 * let go. */
typedef struct kn_chanref {
    atomic_int refs;
    atomic_bool closing;
    kn_channel *ch;
    json_t *settings;   /* the settings it was opened with (owned) */
    char backend[32];
    char path[4096];
} kn_chanref;

kn_chanref *kn_chanref_ref(kn_chanref *c);
void kn_chanref_unref(kn_chanref *c);

/* The running view of one Broker, immutable once published; in-flight
 * requests hold a reference. */
struct kn_broker_rt {
    atomic_int refs;
    char ns[64];
    char name[64];
    kn_chanref *chan;        /* NULL: not ready (ingress answers 503) */
    uint64_t max_event_size;
    unsigned decode_flags;   /* CE_DECODE_* for ingress */
    kn_bstats *stats;
};

void kn_broker_rt_unref(kn_broker_rt *b);

/* Looks up a broker for the ingress/admin: a new reference or NULL.
 * Any thread (read lock). */
kn_broker_rt *kn_server_broker(kn_server *srv, const char *ns,
                               const char *name);

/* Options of `knit serve`. */
typedef struct kn_serve_opts {
    const char *config_dir;  /* NULL: none */
    const char *data_dir;
    const char *listen;
    const char *admin;
} kn_serve_opts;

int kn_server_new(const kn_serve_opts *o, kn_server **out, kn_err *err);
void kn_server_free(kn_server *srv);

/* Loads persisted resources and reconciles them. Main thread, once. */
int kn_server_load(kn_server *srv, kn_err *err);

/* Parses, validates and applies YAML (one or several files, atomic over
 * all of them), then reconciles. `results` receives an array of
 * {apiVersion, kind, namespace, name, action}. Admin threads. */
typedef struct kn_yaml_file {
    const char *name;
    const char *buf;
    size_t len;
} kn_yaml_file;
int kn_server_apply(kn_server *srv, const kn_yaml_file *files, size_t n,
                    json_t **results, kn_err *err);
int kn_server_delete(kn_server *srv, const kn_yaml_file *files, size_t n,
                     json_t **results, kn_err *err);
/* Applies every *.yaml / *.yml of a directory (sorted), atomically. */
int kn_server_apply_dir(kn_server *srv, const char *dir, json_t **results,
                        kn_err *err);

/* Resource objects with status for the admin API: a new JSON array of
 * `kind` resources (ns NULL = all namespaces), or one resource (NULL if
 * absent). */
json_t *kn_server_list(kn_server *srv, const kn_kind *kind, const char *ns);
json_t *kn_server_get(kn_server *srv, const kn_kind *kind, const char *ns,
                      const char *name);

/* Prometheus exposition of every metric into out. */
int kn_server_metrics(kn_server *srv, ce_buf *out);

/* Marks startup (persisted resources + --config) as done: /readyz may
 * answer 200 from now on. */
void kn_server_set_loaded(kn_server *srv);
/* True once resources are loaded and every broker's channel is open. */
bool kn_server_ready(kn_server *srv);
/* The ingress base URL ("http://127.0.0.1:8080") for status.address. */
void kn_server_set_ingress_url(kn_server *srv, const char *url);

/* Closes every channel (after in-flight appends finish). Main thread,
 * after the listeners stopped accepting. */
void kn_server_close_channels(kn_server *srv);

/* ---------------------------------------------------- HTTP servers */

typedef struct kn_ingress kn_ingress;
typedef struct kn_admin kn_admin;

/* Binds "ADDR:PORT" (port 0 = any free one) and starts serving; the
 * actual port is in *port_out. Main thread. */
int kn_ingress_start(kn_server *srv, const char *addr, kn_ingress **out,
                     uint16_t *port_out, kn_err *err);
/* Stops accepting new connections (in-flight requests continue). */
void kn_ingress_quiesce(kn_ingress *in);
/* Waits (bounded by timeout_ms) until no request is in flight. */
void kn_ingress_drain(kn_ingress *in, int timeout_ms);
void kn_ingress_stop(kn_ingress *in);

int kn_admin_start(kn_server *srv, const char *addr, kn_admin **out,
                   uint16_t *port_out, kn_err *err);
void kn_admin_stop(kn_admin *ad);

/* The port an MHD daemon is bound to (0 if unknown). */
struct MHD_Daemon;
uint16_t kn_mhd_port(struct MHD_Daemon *d);
/* libmicrohttpd's error log (MHD_OPTION_EXTERNAL_LOGGER) as one debug
 * line of component `cls` (a string; NULL = "http"). Any thread. */
void kn_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Periodic retry of brokers whose channel failed to open (main thread). */
void kn_server_resync(kn_server *srv);

/* Splits "ADDR:PORT" / "[v6]:PORT" / ":PORT" into a sockaddr. */
struct sockaddr_storage;
int kn_parse_listen(const char *s, struct sockaddr_storage *ss,
                    size_t *sslen, kn_err *err);

#ifdef __cplusplus
}
#endif
#endif /* KNIT_BROKER_H */
