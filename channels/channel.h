/*
 * The channel interface: where a broker's events are stored durably and
 * read back by per-trigger cursors. Backends (log, memory, later kafka,
 * nats) each provide one const kn_channel_ops table, register it by name,
 * and embed `kn_channel` / `kn_cursor` as the first member of their own
 * structs (see DESIGN.md §5).
 *
 * Threads: append() may be called from any thread; its completion runs on
 * the backend's writer (or library) thread and must not block. A cursor is
 * used by one thread at a time (the dispatcher loop); its notify fd becomes
 * readable when new records may be available, so the loop can wait in
 * epoll/poll instead of sleeping.
 */
#ifndef KNIT_CHANNEL_H
#define KNIT_CHANNEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloudevents/cloudevents.h"
#include "common/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kn_channel kn_channel;
typedef struct kn_cursor kn_cursor;
typedef struct kn_channel_ops kn_channel_ops;

typedef struct kn_channel_config {
    const char *ns;         /* broker namespace */
    const char *name;       /* broker name */
    const char *data_dir;   /* directory owned by this channel (log files,
                               checkpoints); created if missing */
    const json_t *settings; /* borrowed; object of string values, e.g.
                               "durability": "fsync"|"write",
                               "segment.bytes", "retention.bytes",
                               "retention.ms", backend settings */
} kn_channel_config;

/* Completion of an append: status KN_OK when every event of the call is
 * durable (first_offset = offset of the first one; the rest follow
 * consecutively on single-partition backends), else a negative status and
 * nothing of the call is stored. Runs on the backend's thread.
 * nats: offsets are stream sequences, in order but not consecutive (other
 * processes append too), and a failed call may have stored some of its
 * events (the producer's retry is deduplicated by event id); a cursor
 * sharing its group with other processes sees offsets with gaps. See
 * docs/channels-nats.md. */
typedef void (*kn_append_cb)(void *arg, int status, uint64_t first_offset);

/* A record handed out by a cursor. The caller owns one reference to
 * `event` and must ce_event_unref it. */
typedef struct kn_record {
    ce_event *event;
    uint64_t offset;
    int32_t partition;     /* 0 for single-partition backends */
    int64_t timestamp_ns;  /* append time, wall clock */
} kn_record;

typedef enum kn_seek_kind {
    KN_SEEK_END = 0,   /* only events appended from now on */
    KN_SEEK_START,     /* oldest retained event */
    KN_SEEK_OFFSET,    /* a given offset (clamped to what is retained) */
    KN_SEEK_TIME,      /* first event appended at or after time_ns */
    KN_SEEK_COMMITTED, /* the group's committed position, else END */
} kn_seek_kind;

typedef struct kn_seek {
    kn_seek_kind kind;
    uint64_t offset;
    int64_t time_ns;
} kn_seek;

/* Hints from the opener of a cursor about how it will read, so a backend
 * can size what it keeps on the reader's behalf (nats: the consumer's
 * AckWait and MaxAckPending). A plain value: cursor_open copies what it
 * needs, the caller keeps ownership. Every field 0 = not known (the
 * backend's defaults); a NULL pointer means all 0. Backends without such
 * knobs (log, memory, kafka) ignore the hints. */
typedef struct kn_cursor_opts {
    /* Longest time one record may take to process in a single attempt
     * (the trigger's delivery timeout), in ns; < 0 = no limit. Retries
     * come on top: the reader keeps records across them. */
    int64_t attempt_timeout_ns;
    /* Records processed at the same time (knit.dev/max-in-flight). */
    uint32_t max_in_flight;
    /* Records the reader may hold handed out but not committed at once
     * (its read-ahead window; >= max_in_flight when both are set). */
    uint32_t max_held;
} kn_cursor_opts;

typedef struct kn_channel_stats {
    uint64_t appended_events;
    uint64_t appended_bytes;
    uint64_t head_offset;      /* next offset to be assigned */
    uint64_t first_offset;     /* oldest retained */
    uint64_t stored_bytes;
    uint64_t segments;
    uint64_t retention_deleted_events;
    uint64_t retention_deleted_bytes;
    uint64_t retention_forced;  /* deletions past a cursor's position */
    uint64_t fsyncs;
    uint64_t append_errors;
    bool healthy;               /* false: appends fail (disk full, down) */
    uint64_t skipped_records;   /* stored records that were not
                                   CloudEvents, skipped by cursors (nats,
                                   kafka) */
} kn_channel_stats;

struct kn_channel_ops {
    const char *name;
    int version; /* 1 */
    /* true when cursor_open uses its kn_cursor_opts: a reader whose hints
     * change reopens its cursor for them to apply (nats). */
    bool cursor_hints;
    /* true when a cursor's reads are flow-controlled by its commits (nats:
     * the consumer hands out at most MaxAckPending unacknowledged
     * messages): readers commit as soon as a part of their window is done
     * instead of only on their periodic tick. */
    bool commit_often;

    /* Opens (creating if needed) the channel. Recovery happens here. */
    int (*open)(const kn_channel_config *cfg, kn_channel **out, kn_err *err);
    /* Asynchronously appends n frozen events, all or nothing. Takes its own
     * references; the caller keeps theirs. Returns KN_OK if queued (cb will
     * run exactly once) or an error (cb will not run). */
    int (*append)(kn_channel *ch, ce_event *const *evs, size_t n,
                  kn_append_cb cb, void *arg);
    /* Opens a named cursor (group) positioned per `start` (NULL =
     * COMMITTED), tuned by `opts` (may be NULL; see kn_cursor_opts). Both
     * are borrowed for the call. Any thread but a backend callback; may
     * block on the backend (nats, kafka: API round trips). */
    int (*cursor_open)(kn_channel *ch, const char *group,
                       const kn_seek *start, const kn_cursor_opts *opts,
                       kn_cursor **out, kn_err *err);
    /* Non-blocking read of up to max records. Returns the count (0 = none
     * available now) or a negative status. Records that fail to decode are
     * reported (logged, counted) and skipped only on backends that say so;
     * the log returns KN_CORRUPT. */
    int (*cursor_next)(kn_cursor *c, kn_record *recs, size_t max);
    /* fd that becomes readable when new records may be available; the
     * caller calls cursor_drain_notify before reading again. */
    int (*cursor_fd)(kn_cursor *c);
    void (*cursor_drain_notify)(kn_cursor *c);
    /* Durably records that every offset below `next_offset` of `partition`
     * is done. */
    int (*cursor_commit)(kn_cursor *c, int32_t partition,
                         uint64_t next_offset);
    /* Moves the read position (and, for SEEK kinds other than COMMITTED,
     * the committed position) of the cursor. */
    int (*cursor_seek)(kn_cursor *c, const kn_seek *to, kn_err *err);
    void (*cursor_close)(kn_cursor *c);
    /* Deletes a group's stored position (the trigger was deleted). */
    int (*cursor_delete)(kn_channel *ch, const char *group);
    void (*stats)(kn_channel *ch, kn_channel_stats *out);
    /* Flushes pending appends (their callbacks run), then frees. */
    void (*close)(kn_channel *ch);
};

/* Base structs; backends embed them first. */
struct kn_channel {
    const kn_channel_ops *ops;
};
struct kn_cursor {
    kn_channel *channel;
};

/* Registry by name. The built-in backends ("log", "memory", and those
 * compiled in) are registered by kn_channels_register_builtin. */
int kn_channel_register(const kn_channel_ops *ops);
const kn_channel_ops *kn_channel_find(const char *name);
void kn_channels_register_builtin(void);

/* Convenience wrappers that dispatch through ch->ops. */
int kn_channel_open(const char *backend, const kn_channel_config *cfg,
                    kn_channel **out, kn_err *err);
static inline int kn_channel_append(kn_channel *ch, ce_event *const *evs,
                                    size_t n, kn_append_cb cb, void *arg)
{
    return ch->ops->append(ch, evs, n, cb, arg);
}
static inline void kn_channel_close(kn_channel *ch)
{
    if (ch)
        ch->ops->close(ch);
}

/* Batching of writer wake-ups. A thread that submits a burst of appends
 * (an HTTP loop handling every ready connection) may bracket the burst
 * with kn_channel_defer_begin() / kn_channel_defer_end(): a backend that
 * supports it then wakes its writer thread once, at the end of the
 * scope, instead of at the first append of the burst. Appends and their
 * completions are otherwise unchanged. A thread must end the scope
 * promptly: it delays the burst's appends until then, and other threads'
 * appends to the same channel may wait for that same wake-up. Scopes
 * nest; they are per thread. Channels a scope appended to must stay open
 * until it ends (true for callers holding a reference across the
 * append). */
void kn_channel_defer_begin(void);
void kn_channel_defer_end(void);
/* For backends: inside a scope, records that fn(arg) must run when the
 * outermost scope ends (once per distinct pair) and returns true; else
 * (no scope, or too many pairs) returns false and the caller wakes now. */
bool kn_channel_defer_wake(void (*fn)(void *), void *arg);

extern const kn_channel_ops kn_channel_log_ops;
extern const kn_channel_ops kn_channel_memory_ops;
extern const kn_channel_ops kn_channel_nats_ops;
extern const kn_channel_ops kn_channel_kafka_ops;

/* Why a "kafka" channel is unhealthy ("" when healthy), into buf; for
 * Ready conditions. Any thread. */
const char *kn_channel_kafka_reason(kn_channel *ch, char *buf, size_t n);

/* Why a "nats" channel is unhealthy ("" when it is healthy), into buf;
 * for the broker's Ready condition. Any thread. */
const char *kn_channel_nats_reason(kn_channel *ch, char *buf, size_t n);

/* Test hooks of the "memory" backend (they return KN_INVAL for any other
 * backend). _fail: the next `count` appends complete with `status` (< 0)
 * and store nothing; count 0 clears it. _pause: while paused, appends
 * queue up and their completions wait (close still completes them). */
int kn_channel_memory_fail(kn_channel *ch, int status, unsigned count);
int kn_channel_memory_pause(kn_channel *ch, bool paused);

#ifdef __cplusplus
}
#endif
#endif /* KNIT_CHANNEL_H */
