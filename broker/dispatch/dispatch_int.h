/*
 * Internals of the dispatcher, shared by the files of broker/dispatch/.
 *
 * Pieces and threads
 * - dispatcher.c: lifecycle, the committer thread, the commit tick.
 * - plan.c: the reconciler side (statuses, resolution, cursor opening)
 *   and the hand-over of a plan to the loop. Runs under the server mutex.
 * - feed.c: one feed per broker (loop thread): a cursor at the tail of
 *   the broker's channel, a bounded ring of recent decoded records and,
 *   per record, the bitset of matching triggers computed once through the
 *   filter index.
 * - trigger.c: one trigger (loop thread): its window of matched events in
 *   log order, ordering by key, rate limit, deliveries and their outcomes,
 *   its commit point.
 * - outcome.c: what happens after an attempt (loop thread): replies
 *   appended to the broker's channel, dead-letter sink, dead-letter store.
 * - dlq.c: the dead-letter store (any thread).
 * - admin.c: /v1/dlq and /v1/replay (admin threads, with work posted to
 *   the loop).
 * - metrics.c: per-trigger counters (atomics) and their exposition.
 *
 * Offsets and the commit point: a trigger reads records in offset order.
 * `pos` is the offset after the last record it has consumed (matched or
 * not); matched records enter the window in order; the commit point is the
 * offset of the oldest window entry not done, or `pos` when the window is
 * empty: every offset below it is delivered, dead-lettered, stored in the
 * dead-letter store or filtered out.
 */
#ifndef KNIT_BROKER_DISPATCH_INT_H
#define KNIT_BROKER_DISPATCH_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "broker/dispatch/dispatch.h"
#include "broker/filter/filter.h"
#include "sinks/sinks.h"

#define KN_DISP "dispatch"
#define KN_FEED_GROUP "knit-feed"
#define KN_RING_MAX 4096u               /* records in a feed's ring */
#define KN_RING_BYTES (32u << 20)       /* and their approximate bytes */
#define KN_FEED_BATCH 256               /* records per feed read */
#define KN_TRIG_BATCH 64                /* records per trigger cursor read */
#define KN_COMMIT_MS 100                /* commit tick */
#define KN_COMMITS_PER_TICK 20          /* position writes per tick, about */
#define KN_WINDOW_MIN 64u               /* window >= max(2*mif, this) */
#define KN_RETRY_IO_MS 1000             /* retry of a failed store/read */
#define KN_STOP_WAIT_MS 10000           /* bounded wait at shutdown */
#define KN_DISP_IDLE_CONNS 8192         /* kept-alive subscriber connections */

typedef struct kn_feed kn_feed;
typedef struct kn_trig kn_trig;
typedef struct kn_dlq kn_dlq;
typedef struct kn_tstats kn_tstats;

/* ------------------------------------------------------- config */

/* One trigger's resolved plan. Built by the reconciler, then owned by the
 * loop (reference counted there: a trigger and its zombie share it). */
typedef struct kn_tcfg {
    int refs;                    /* loop thread */
    char ns[64];
    char name[64];
    char broker[64];
    char key[130];               /* "ns/name" */
    char group[200];             /* cursor group "trigger.<ns>.<name>" */
    char *url;                   /* subscriber */
    char *dls;                   /* dead-letter sink, NULL = none */
    char *broker_url;            /* the broker's ingress URL (replies) */
    kn_delivery_spec spec;       /* spec.dead_letter_url == dls */
    kn_filter *filter;
    kn_trigger_opts opts;
    uint32_t window;             /* power of two */
    kn_resource *res;            /* the Trigger (reference) */
} kn_tcfg;

kn_tcfg *kn_tcfg_ref(kn_tcfg *c);
void kn_tcfg_unref(kn_tcfg *c);

/* ------------------------------------------------------- committer */

/* A position to store: every offset of `partition` below `offset` is
 * done. Single-partition backends use partition 0. */
typedef struct kn_cpos {
    int32_t partition;
    uint64_t offset;
} kn_cpos;

typedef struct kn_cpart {
    int32_t partition;
    uint64_t want;
    uint64_t stored;
    bool has_stored;
    bool dirty;
} kn_cpart;

/* A cursor whose positions the committer thread stores. The loop asks
 * (kn_cslot_request); the committer calls cursor_commit off the loop. */
typedef struct kn_cslot {
    kn_cursor *cur;
    kn_cpart *parts;
    size_t nparts, cap;
    bool busy;
    struct kn_cslot *next;
} kn_cslot;

/* Registers a cursor (any thread). NULL on ENOMEM. */
kn_cslot *kn_cslot_add(kn_dispatcher *d, kn_cursor *cur);
/* Asks for positions to be stored (loop thread). */
void kn_cslot_request(kn_dispatcher *d, kn_cslot *s, const kn_cpos *pos,
                      size_t n);
/* Waits until the committer is not using the cursor and drops pending
 * requests and what it knows was stored (before a seek that stores its
 * own position). */
void kn_cslot_quiesce(kn_dispatcher *d, kn_cslot *s);
/* Unregisters and frees the slot; with `commit`, stores `pos` first on
 * the calling thread (the partitions whose stored position differs). */
void kn_cslot_remove(kn_dispatcher *d, kn_cslot *s, bool commit,
                     const kn_cpos *pos, size_t n);

/* ------------------------------------------------------- trigger */

enum kn_estate {
    KN_E_WAIT = 0,  /* behind an earlier event of the same key */
    KN_E_READY,     /* in the ready queue */
    KN_E_FLIGHT,    /* submitted to the sink client */
    KN_E_STORING,   /* reply or dead letter being appended */
    KN_E_HOLD,      /* waiting for a timer before it is tried again */
    KN_E_DONE,
};

enum kn_ephase {
    KN_PH_SUB = 0,  /* delivering to the subscriber */
    KN_PH_DLS,      /* delivering `pending` to the dead-letter sink */
    KN_PH_DLQ,      /* storing `pending` in the dead-letter store */
};

typedef struct kn_entry {
    ce_event *ev;
    uint64_t offset;
    int32_t partition;
    int64_t ts_ns;              /* append time (wall clock) */
    uint64_t key;               /* ordered mode: hash of the key */
    int32_t key_next;           /* next window slot of the same key, -1 */
    uint8_t state;
    uint8_t phase;              /* enum kn_ephase */
    uint16_t reply_fails;
    kn_sink_delivery *h;        /* while KN_E_FLIGHT */
    kn_sink_timer *timer;       /* while KN_E_HOLD */
    ce_event *pending;          /* dead-letter entry waiting to be stored */
    kn_trig *t;
} kn_entry;

typedef struct kn_keyslot {
    uint64_t key;
    int32_t idx;                /* window slot of the key's last entry;
                                   -1 = empty */
} kn_keyslot;

struct kn_trig {
    kn_dispatcher *d;
    kn_tcfg *cfg;
    kn_feed *feed;              /* NULL once a zombie */
    kn_chanref *chan;           /* reference */
    kn_dlq *dlq;                /* reference */
    kn_tstats *stats;
    kn_cursor *cur;             /* NULL once a zombie */
    kn_cslot *slot;
    kn_sink_watch *watch;       /* cursor fd, in cursor mode */
    int ix;                     /* bit in the feed's index, -1 = none */
    bool single;                /* one partition, dense offsets (log):
                                   the feed's ring can serve it */
    bool ring_mode;
    bool pos_known;
    bool zombie;
    bool read_error;
    uint64_t pos;               /* single: next offset to consume */
    int64_t last_ts;
    /* several partitions or gapped offsets: per partition, the offset
     * after the highest one consumed */
    kn_cpos *parts;
    size_t nparts, pcap;
    /* window: circular, wcap slots (power of two) */
    kn_entry *win;
    uint32_t wcap, whead, wlen;
    uint32_t released;          /* entries left the window since the last
                                   commit request */
    /* ready queue: window slots, circular, wcap entries */
    uint32_t *ready;
    uint32_t rhead, rlen;
    /* ordered mode: key → last entry, open addressing, 2*wcap slots */
    kn_keyslot *keys;
    uint32_t kcap;
    uint32_t inflight;          /* deliveries at the sink client */
    uint32_t outstanding;       /* deliveries + appends + timers */
    /* rate limit */
    double tokens;
    int64_t tok_ns;
    kn_sink_timer *rate_timer;
    kn_sink_timer *io_timer;    /* retry after a read error */
    kn_trig *next;              /* dispatcher list (active or zombies) */
    kn_trig *fnext;             /* feed list */
};

/* Creates an active trigger on the loop (takes a cfg reference and the
 * cursor; chan and dlq are new references owned by the trigger). */
kn_trig *kn_trig_new(kn_dispatcher *d, kn_tcfg *cfg, kn_feed *f,
                     kn_chanref *chan, kn_dlq *dlq, kn_cursor *cur);
/* Makes t a zombie: no new work, deliveries cancelled, timers dropped,
 * removed from its feed (the caller re-indexes the feed), its cursor
 * closed (with `commit`, after storing the commit point; a caller that
 * keeps the cursor sets t->cur and t->slot to NULL first). The zombie is
 * freed once nothing is outstanding. Loop thread. */
void kn_trig_zombify(kn_trig *t, bool commit);
/* Frees a zombie when nothing is outstanding (returns true if freed). */
bool kn_trig_reap(kn_trig *t);
/* Frees a trigger whatever its state (after the loop stopped). */
void kn_trig_destroy(kn_trig *t);
/* Fills the window and starts deliveries. Loop thread. */
void kn_trig_pump(kn_trig *t);
/* The commit point (see the top of this file; single partition). */
uint64_t kn_trig_commit_point(const kn_trig *t);
/* The commit points of every partition seen (malloc'd array in *out;
 * returns the count, 0 when nothing is known). */
size_t kn_trig_commit_points(const kn_trig *t, kn_cpos **out);
/* Cancels every delivery and timer (shutdown). Loop thread. */
void kn_trig_cancel_all(kn_trig *t);
/* Leaves ring mode for cursor mode (fell behind the ring). */
void kn_trig_fall_back(kn_trig *t);
/* Takes a record into the window (the event reference is shared). */
void kn_trig_admit(kn_trig *t, ce_event *ev, int32_t partition,
                   uint64_t offset, int64_t ts);
/* Window room. */
static inline uint32_t kn_trig_room(const kn_trig *t)
{
    return t->wcap - t->wlen;
}

/* Outcome handling (outcome.c), loop thread. */
void kn_entry_done(kn_entry *e);
void kn_outcome_result(const kn_delivery_result *res, void *arg);
/* Sends the original event of e to the dead-letter sink (when the trigger
 * has one) or the dead-letter store. */
void kn_outcome_dead_letter(kn_entry *e, const char *reason, int code,
                            const char *error, const void *data,
                            size_t data_len);
/* Starts (or restarts) the delivery of a ready entry. */
void kn_entry_start(kn_entry *e);
/* Puts an entry back in the ready queue after delay_ms. */
void kn_entry_hold(kn_entry *e, int64_t delay_ms);
/* Puts an entry in the ready queue now. */
void kn_trig_ready_push(kn_trig *t, kn_entry *e);

/* ------------------------------------------------------- feed */

typedef struct kn_ringrec {
    ce_event *ev;
    uint64_t offset;
    int64_t ts_ns;
    size_t bytes;
} kn_ringrec;

struct kn_feed {
    kn_dispatcher *d;
    bool has_ring;              /* false: the backend has partitions or
                                   gapped offsets; no ring, no cursor */
    char ns[64];
    char name[64];
    kn_chanref *chan;           /* reference */
    kn_cursor *cur;
    kn_cslot *slot;
    kn_sink_watch *watch;
    bool known;                 /* lo/hi valid (a record was read) */
    bool broken;                /* read error: triggers use cursors */
    uint64_t lo, hi;            /* ring covers offsets [lo, hi) */
    kn_ringrec *ring;
    uint32_t rcap, rhead, rlen;
    size_t rbytes;
    uint64_t *bits;             /* rcap * words */
    size_t words;
    kn_filter_index *ix;
    kn_filter **ixf;            /* filters of the index (borrowed) */
    kn_trig **ixt;              /* index position → trigger */
    size_t nix;
    kn_trig *trigs;             /* active triggers (fnext) */
    kn_sink_timer *io_timer;
    uint64_t head;              /* channel head at the last tick */
    kn_feed *next;
};

/* cur NULL: a feed without a ring (bookkeeping only). */
kn_feed *kn_feed_new(kn_dispatcher *d, const char *ns, const char *name,
                     kn_chanref *chan, kn_cursor *cur);
/* Whether a backend gives one partition with dense offsets (the log and
 * memory channels), so a broker-level ring can serve its triggers. */
bool kn_feed_ring_capable(const kn_chanref *chan);
/* Closes the cursor and frees (no triggers left). Loop thread, or the
 * stopping thread once the loop is gone. */
void kn_feed_free(kn_feed *f);
void kn_feed_add(kn_feed *f, kn_trig *t);
void kn_feed_remove(kn_feed *f, kn_trig *t);
/* Rebuilds the filter index over the feed's triggers and recomputes the
 * ring's bitsets. */
void kn_feed_reindex(kn_feed *f);
/* Moves ring records at or after t->pos into t's window while there is
 * room; returns false when t->pos is below the ring (t must fall back). */
bool kn_feed_take(kn_feed *f, kn_trig *t);
/* Whether t (at a known pos) can take its records from the ring. */
bool kn_feed_covers(const kn_feed *f, uint64_t pos);

/* ------------------------------------------------------- dlq */

/* Metadata stored with a dead letter (as knitdlq* extensions). */
typedef struct kn_dlq_meta {
    const char *trigger;
    const char *reason;     /* delivery, dead-letter-sink, ttl, reply,
                               invalid */
    int code;               /* last HTTP status (0 = none/transport) */
    const char *error;      /* last error */
    const char *dest;       /* the URL that failed */
    const void *data;       /* response body (≤ 1024 bytes) */
    size_t data_len;
    uint64_t offset;        /* offset in the broker's channel */
} kn_dlq_meta;

/* The broker's store, opened on first use (disk I/O: not the loop). A new
 * reference. */
kn_dlq *kn_dlq_get(kn_dispatcher *d, const char *ns, const char *name,
                   kn_err *err);
kn_dlq *kn_dlq_ref(kn_dlq *q);
void kn_dlq_unref(kn_dlq *q);
/* Closes every store (dispatcher free). */
void kn_dlq_close_all(kn_dispatcher *d);
/* A new frozen entry event: the original with knitdlq* extensions. */
ce_event *kn_dlq_entry(const ce_event *orig, const kn_dlq_meta *m);
/* Appends an entry asynchronously (cb on the channel's thread). */
int kn_dlq_append(kn_dlq *q, ce_event *entry, kn_append_cb cb, void *arg);
/* One stored entry, as read back. */
typedef struct kn_dlq_item {
    uint64_t id;            /* offset in the store */
    ce_event *entry;        /* with the knitdlq* extensions (reference) */
} kn_dlq_item;
/* Reads the live entries (not tombstoned), optionally only those of
 * `trigger` and/or with entry id or event id `id`. Admin threads. */
int kn_dlq_scan(kn_dlq *q, const char *trigger, const char *id,
                kn_dlq_item **items, size_t *n, kn_err *err);
void kn_dlq_items_free(kn_dlq_item *items, size_t n);
/* Removes entries (appends tombstones); waits for durability. */
int kn_dlq_remove(kn_dlq *q, const uint64_t *ids, size_t n, kn_err *err);
/* Appends a new entry and removes entry old_id, atomically (async). */
int kn_dlq_replace(kn_dlq *q, ce_event *entry, uint64_t old_id,
                   kn_append_cb cb, void *arg);
/* Removes asynchronously (loop thread: no wait). */
int kn_dlq_remove_async(kn_dlq *q, uint64_t id);
/* The original event of an entry (knitdlq* removed), new and frozen. */
ce_event *kn_dlq_original(const ce_event *entry);
/* The entry's metadata as JSON {id, trigger, reason, code, error, dest,
 * time, offset, event}. */
json_t *kn_dlq_item_json(const kn_dlq_item *it);
const char *kn_dlq_trigger_of(const ce_event *entry);

/* ------------------------------------------------------- metrics */

enum { KN_DLAT_BUCKETS = 16 };
enum { KN_RC_2XX = 0, KN_RC_4XX, KN_RC_5XX, KN_RC_OTHER, KN_RC_ERROR,
       KN_RC_N };

struct kn_tstats {
    char ns[64];
    char name[64];
    char broker[64];
    atomic_uint_fast64_t responses[KN_RC_N]; /* final subscriber answer */
    atomic_uint_fast64_t delivered;
    atomic_uint_fast64_t retries;
    atomic_uint_fast64_t dead_sink;          /* taken by the DLS */
    atomic_uint_fast64_t dead_store;         /* kept in the DLQ store */
    atomic_uint_fast64_t replies;            /* replies stored */
    atomic_uint_fast64_t ttl_exhausted;
    atomic_uint_fast64_t matched;
    atomic_uint_fast64_t filtered;
    atomic_uint_fast64_t lat[KN_DLAT_BUCKETS];
    atomic_uint_fast64_t lat_count;
    atomic_uint_fast64_t lat_sum_us;
    atomic_uint_fast64_t lag_events;         /* gauges */
    atomic_uint_fast64_t lag_ms;
    atomic_uint_fast64_t in_flight;
    atomic_bool active;
    kn_tstats *next;
};

/* Stats of trigger ns/name (created on first use, kept until the
 * dispatcher is freed). Any thread. */
kn_tstats *kn_tstats_get(kn_dispatcher *d, const char *ns, const char *name,
                         const char *broker);
void kn_tstats_free_all(kn_dispatcher *d);
void kn_tstats_latency(kn_tstats *s, int64_t ns);
void kn_tstats_response(kn_tstats *s, int http_code);

/* ------------------------------------------------------- dispatcher */

/* Reconciler-side record of one trigger (under the server mutex). */
typedef struct kn_rcond {
    char status[8];
    char reason[64];
    char message[800];
    char ltt[CE_TIME_MAX];
} kn_rcond;

enum { KN_C_BROKER = 0, KN_C_SUBSCRIBER, KN_C_DLS, KN_C_READY, KN_C_N };

typedef struct kn_rtrig {
    char ns[64];
    char name[64];
    bool seen;
    bool running;               /* the loop runs it */
    kn_chanref *chan;           /* reference while running */
    bool ordered;
    uint32_t window;
    kn_cursor_opts copts;       /* the hints its cursor was opened with */
    kn_resource *res;           /* reference while running */
    char *url, *dls;            /* what the loop runs */
    json_int_t gen;
    char *sub_uri, *dls_uri;    /* status */
    kn_rcond cond[KN_C_N];
    char dispatch_error[800];
} kn_rtrig;

typedef struct kn_rfeed {
    char ns[64];
    char name[64];
    kn_chanref *chan;           /* reference */
    bool seen;
} kn_rfeed;

/* A DLQ re-drive in progress (loop thread list). */
typedef struct kn_redrive {
    kn_dispatcher *d;
    kn_dlq *dlq;
    uint64_t id;
    ce_event *ev;
    kn_tcfg *cfg;
    kn_chanref *chan;
    kn_sink_delivery *h;
    struct kn_redrive *next;
} kn_redrive;

struct kn_dispatcher {
    char *data_dir;
    kn_sink_client *client;
    /* loop thread */
    kn_feed *feeds;
    kn_trig *trigs;
    kn_trig *zombies;
    kn_redrive *redrives;
    kn_sink_timer *tick;
    uint64_t ticks;
    bool stopping;
    /* any thread */
    atomic_int outstanding;     /* callbacks the loop still expects */
    atomic_bool stopped;
    /* committer */
    pthread_t cthr;
    bool cthr_started;
    pthread_mutex_t cmu;
    pthread_cond_t ccv;
    bool cquit;
    kn_cslot *slots;
    /* reconciler side (server mutex) */
    kn_rtrig **rt;
    size_t nrt;
    kn_rfeed **rf;
    size_t nrf;
    /* dead-letter stores and re-drives in progress */
    pthread_mutex_t dmu;
    bool client_gone;           /* under dmu */
    kn_dlq *dlqs;
    /* trigger stats */
    pthread_mutex_t smu;
    kn_tstats *stats;
};

/* Queues fn on the loop (any thread; safe against a concurrent stop).
 * KN_CLOSED when the loop is gone: fn will not run. */
int kn_disp_post(kn_dispatcher *d, kn_sink_run_fn fn, void *arg);
/* Runs fn on the loop and waits for it (not on the loop thread). Returns
 * KN_CLOSED when the loop is gone. */
int kn_disp_call(kn_dispatcher *d, kn_sink_run_fn fn, void *arg);
/* Finds an active trigger by ns/name (loop thread). */
kn_trig *kn_disp_find(kn_dispatcher *d, const char *ns, const char *name);
void kn_disp_reap(kn_dispatcher *d);
/* Applies a plan on the loop (plan.c). */
void kn_disp_apply_plan(kn_sink_client *c, void *arg);
/* The admin replay/dlq re-drive entry points on the loop (admin.c). */
void kn_redrive_cancel_all(kn_dispatcher *d);
/* Frees the re-drives left when the loop is gone (stop). */
void kn_redrive_free_all(kn_dispatcher *d);

#endif /* KNIT_BROKER_DISPATCH_INT_H */
