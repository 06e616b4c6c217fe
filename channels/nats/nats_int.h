/*
 * Internals of the NATS JetStream channel ("nats" backend), shared by:
 *   nats.c     settings, connection, stream set-up, maintenance thread,
 *              stats, open/close
 *   publish.c  asynchronous appends (publish with a reply inbox, PubAcks
 *              matched by id, timeouts)
 *   cursor.c   cursors: durable pull consumers, the pull flow, commit
 *              (acks), seeks, keep-alive of held messages
 *
 * Locking (always in this order, never the reverse):
 *   ch->cur_mu  the cursor list (maintenance thread, open/close)
 *   c->op_mu    a cursor's consumer set-up and seeks (JetStream API calls)
 *   c->mu       a cursor's queue, held messages and pull-request state
 *               (taken by the cnats delivery thread too)
 *   ch->mu      the publish map, stats, flags and the maintenance wake-up
 * Library callbacks only take c->mu and/or ch->mu and never block.
 */
#ifndef KNIT_NATS_INT_H
#define KNIT_NATS_INT_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "channels/channel.h"

#define KN_NATS_COMP "nats"
#define KN_NATS_NAME_MAX 200   /* bytes of a derived consumer name */
#define KN_NATS_GRAVE 128      /* messages destroyed in one burst */

typedef struct kn_nats_settings {
    char **urls;                /* owned */
    int nurls;
    char *credentials, *user, *password, *token; /* owned, may be NULL */
    jsStorageType storage;
    int64_t replicas;
    int64_t max_age_ns;         /* 0 = unlimited */
    int64_t max_bytes;          /* -1 = unlimited */
    int64_t dup_window_ns;
    int64_t ack_wait_ns;        /* cursors without hints */
    int64_t max_ack_pending;    /* cursors without hints */
    bool ack_wait_set;          /* "ack-wait" given: applies to all */
    bool max_ack_pending_set;   /* "max-ack-pending" given: to all */
    int64_t publish_timeout_ms;
    int64_t fetch_batch;
    int64_t fetch_expires_ms;
    int64_t reconnect_wait_max_ms;
    int64_t api_timeout_ms;     /* JetStream API requests */
} kn_nats_settings;

/* One append call in flight. */
typedef struct kn_pbatch {
    struct kn_pbatch *next;     /* in the "complete now" list */
    kn_append_cb cb;
    void *arg;
    size_t n, left;             /* events, PubAcks still awaited */
    uint64_t bytes;
    uint64_t first;             /* stream sequence of event 0 */
    int status;
} kn_pbatch;

/* A message awaiting its PubAck. */
typedef struct kn_pslot {
    kn_pbatch *batch;           /* NULL = settled */
    size_t idx;                 /* the event's index in its call */
    int64_t deadline_ms;        /* publish-timeout (monotonic) */
} kn_pslot;

/* Messages awaiting their PubAck, by publish id (the last token of the
 * reply subject): ids [tail, head) live in slots[id % cap]; ids are
 * handed out in order, so deadlines grow with them. */
typedef struct kn_pring {
    kn_pslot *slots;
    uint64_t cap;               /* power of two; 0 before the first use */
    uint64_t tail, head;        /* ids start at 1 */
    size_t count;               /* not settled */
} kn_pring;

typedef struct kn_ncursor kn_ncursor;

/* A delivered message the caller has not committed yet. */
typedef struct kn_held {
    uint64_t seq;
    char *reply;                /* the message's ack subject (owned) */
} kn_held;

/* Closure of one subscription of a cursor; freed when cnats says the
 * subscription is done (natsSubscription_SetOnCompleteCB). */
typedef struct kn_nsub {
    kn_ncursor *c;
    unsigned epoch;
} kn_nsub;

struct kn_ncursor {
    kn_cursor base;
    kn_ncursor *next;           /* in ch->cursors (cur_mu) */
    struct kn_nats *ch;
    char *group, *durable;
    char *next_subj;            /* $JS.API.CONSUMER.MSG.NEXT.<s>.<d> */
    int64_t ack_wait_ns;        /* the consumer's AckWait and */
    int64_t max_ack_pending;    /* MaxAckPending (fixed at open) */
    int efd;
    pthread_mutex_t op_mu;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* live_subs changes */

    /* under mu */
    natsSubscription *sub;
    char inbox[128];
    unsigned epoch;             /* messages of older subscriptions drop */
    int live_subs;
    bool ready;                 /* consumer and subscription are up */
    bool closing;
    bool setup_pending;         /* deferred set-up (NATS was down) */
    kn_seek want;               /* what the deferred set-up applies */
    int64_t setup_at_ms, setup_backoff_ms;
    bool verify;                /* the consumer may be gone: check */
    int64_t verify_at_ms;
    natsMsg **q;                /* received, not yet handed out */
    size_t qhead, qlen, qcap;
    uint64_t req_id;            /* current pull request */
    int64_t req_left, req_deadline_ms, retry_at_ms;
    bool req_open;
    kn_held *held;              /* handed out, not committed */
    size_t nheld, capheld;
    uint64_t last_seq;          /* highest stream sequence handed out */
    int64_t wpi_at_ms;          /* next keep-alive of held messages */
    bool armed;                 /* signal efd on the next arrival */
    uint64_t skipped;
};

typedef struct kn_nats {
    kn_channel base;
    kn_nats_settings set;
    char *label;                /* "ns/name" for messages */
    char *stream;               /* KN_BROKER_<NS>__<NAME> */
    char *subject;              /* knit.<ns>.<name>.events */
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;

    pthread_mutex_t mu;
    pthread_cond_t cv;          /* maintenance wake-up (CLOCK_MONOTONIC) */
    pthread_t maint;
    bool maint_started;
    bool stopping;
    bool kick;                  /* run a maintenance pass now */
    bool need_ensure;           /* stream must be (re)checked */
    int64_t ensure_at_ms;       /* earliest next attempt (monotonic) */
    int64_t ensure_backoff_ms;
    unsigned reconnects;        /* bumped by the reconnected callback */
    kn_pring pr;                /* publishes awaiting their PubAck */
    char *ack_prefix;           /* "<inbox>": PubAcks go to <inbox>.<id> */
    natsSubscription *ack_sub;  /* <inbox>.* */
    bool ack_sub_done;          /* cnats finished with ack_sub */
    int64_t maint_wake_at;      /* when the maintenance thread wakes */
    /* messages to destroy, in bursts: natsMsg_Destroy hands each to the
     * cnats GC thread and wakes it when idle (a wake-up per message when
     * destroyed one by one) */
    natsMsg *grave[KN_NATS_GRAVE];
    size_t ngrave;
    kn_pbatch *done_head, **done_tail; /* batches to complete on maint */
    size_t batches;             /* append calls not completed yet */
    kn_channel_stats st;
    uint64_t head_seen;         /* highest acked sequence + 1 */
    uint64_t skipped;           /* records that were not CloudEvents */
    bool closed;                /* the connection's closed callback ran */
    atomic_bool connected;
    atomic_bool stream_ok;
    char last_error[256];       /* why unhealthy, for logs */

    pthread_mutex_t cur_mu;
    kn_ncursor *cursors;
} kn_nats;

/* nats.c */
int kn_nats_status(natsStatus s);           /* natsStatus -> KN_* */
int kn_nats_js_status(natsStatus s, jsErrCode ec);
/* Wakes the maintenance thread; asks for a stream check if `ensure`.
 * Any thread; takes ch->mu. */
void kn_nats_wake(kn_nats *ch, bool ensure);
/* Checks/creates/updates the stream. Caller: any thread but callbacks.
 * *created tells whether it was created now. */
int kn_nats_ensure_stream(kn_nats *ch, bool *created, kn_err *err);
int64_t kn_nats_now_ms(void);
/* Stream name for a broker and the durable name for a group; *out is
 * malloc'd. KN_INVAL for characters NATS cannot carry. */
int kn_nats_stream_name(const char *ns, const char *name, char **out);
int kn_nats_durable_name(const char *group, char **out);

/* publish.c */
int kn_nats_append(kn_channel *ch, ce_event *const *evs, size_t n,
                   kn_append_cb cb, void *arg);
/* Subscribes the PubAck inbox (after the connection is created; cnats
 * renews the subscription after reconnects). Open only. */
int kn_nats_acks_start(kn_nats *ch, kn_err *err);
/* Unsubscribes it and waits until cnats ran its last PubAck callback.
 * Close only (after the last append). */
void kn_nats_acks_stop(kn_nats *ch);
/* Fails every publish still awaiting its PubAck with `status` (used on
 * disconnect and at close). Any thread but a PubAck callback. */
void kn_nats_fail_pending(kn_nats *ch, int status);
/* Fails the publishes whose PubAck is overdue (KN_TIMEOUT); returns the
 * next deadline (INT64_MAX: none). Maintenance thread, without ch->mu. */
int64_t kn_nats_expire_pending(kn_nats *ch, int64_t now);
/* Publishes still awaiting their PubAck. Any thread. */
size_t kn_nats_pending(kn_nats *ch);
/* Destroys the messages kept for a burst (maintenance thread, close). */
void kn_nats_flush_grave(kn_nats *ch);
/* Runs the completions queued in ch->done_* (maintenance thread). */
void kn_nats_run_done(kn_nats *ch);
void kn_nats_pring_free(kn_pring *pr);

/* cursor.c */
int kn_nats_cursor_open(kn_channel *ch, const char *group,
                        const kn_seek *start, const kn_cursor_opts *opts,
                        kn_cursor **out, kn_err *err);
/* The consumer limits a cursor opened with `opts` (may be NULL) gets
 * under settings `set` (see docs/channels-nats.md). Pure; any thread. */
void kn_nats_consumer_limits(const kn_nats_settings *set,
                             const kn_cursor_opts *opts,
                             int64_t *ack_wait_ns, int64_t *max_ack_pending);
int kn_nats_cursor_next(kn_cursor *c, kn_record *recs, size_t max);
int kn_nats_cursor_fd(kn_cursor *c);
void kn_nats_cursor_drain(kn_cursor *c);
int kn_nats_cursor_commit(kn_cursor *c, int32_t partition, uint64_t next);
int kn_nats_cursor_seek(kn_cursor *c, const kn_seek *to, kn_err *err);
void kn_nats_cursor_close(kn_cursor *c);
int kn_nats_cursor_delete(kn_channel *ch, const char *group);
/* Maintenance of one cursor (deferred set-up, pull-request watchdog and
 * retries, keep-alive of held messages). Called with ch->cur_mu held on
 * the maintenance thread; returns the next time (monotonic ms) it wants
 * to run. `reconnected` is true once after each reconnect. */
int64_t kn_nats_cursor_maint(kn_ncursor *c, int64_t now, bool reconnected,
                             bool stream_created);

#endif
