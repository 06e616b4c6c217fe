/*
 * Internals of the embedded log channel shared by its files:
 *   log.c     open (recovery), settings, stats, close
 *   writer.c  append queue, the writer thread (group commit), segment
 *             roll, retention
 *   cursor.c  cursors, checkpoints, seeking
 *
 * Locking: kn_log.mu protects the segment list, each segment's durable
 * size/next offset/index, the group list, the cursor list and the stats;
 * kn_log.qmu protects the append queue (taken alone, never with mu). The writer thread is the only one that writes
 * segment files; it holds mu only to publish results. Segment files below
 * a segment's durable size never change, so readers pread them unlocked
 * while holding a reference to the segment.
 */
#ifndef KNIT_LOG_INT_H
#define KNIT_LOG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "channels/channel.h"
#include "channels/log/segment.h"

#define KN_LOG_COMP "log"
#define KN_LOG_GROUP_MAX 200       /* bytes of a cursor group name */
#define KN_LOG_BATCH_MAX (256u << 20) /* bytes of one append call */

typedef struct kn_seg {
    atomic_int refs;
    uint64_t base;
    uint64_t next_offset;  /* offset after the last durable record */
    uint64_t size;         /* durable bytes (header included) */
    int64_t first_ts, last_ts; /* 0 while empty */
    int fd;                /* -1 until opened (sealed segments lazily) */
    bool sealed;
    char *path;            /* ".../<base>.log" */
    /* active segment only: sparse index kept in memory */
    kn_idx_entry *idx;
    size_t nidx, capidx;
    uint64_t last_idx_pos;
} kn_seg;

typedef struct kn_group {
    struct kn_group *next;
    char *name;
    char *path;            /* checkpoint file */
    uint64_t committed;    /* next offset to deliver */
    int opens;             /* open cursors of this group */
} kn_group;

typedef struct kn_pending {
    struct kn_pending *next;
    ce_buf buf;            /* records, header + payload each */
    size_t n;              /* records */
    kn_append_cb cb;
    void *arg;
    uint64_t first;
} kn_pending;

typedef struct kn_lcursor kn_lcursor;

typedef struct kn_log_settings {
    bool fsync;                 /* durability "fsync" (else "write") */
    uint64_t segment_bytes;
    uint64_t retention_bytes;   /* 0 = unlimited */
    int64_t retention_ms;       /* 0 = unlimited */
    uint64_t retention_max_bytes; /* hard limit ignoring cursors; 0 = none */
    uint32_t index_interval;
    bool recovery_truncate;     /* "recovery": "truncate" */
} kn_log_settings;

typedef struct kn_log {
    kn_channel base;
    char *dir;
    char *label;           /* "ns/name" or the directory, for messages */
    kn_log_settings set;
    int dir_fd, lock_fd;

    pthread_mutex_t mu;
    /* The append queue has its own lock, so appenders never wait for the
     * writer's work under mu (publishing, stats, cursors). */
    pthread_mutex_t qmu;
    pthread_cond_t cv;     /* writer wake-up (CLOCK_MONOTONIC), under qmu */
    kn_pending *q_head, **q_tail;
    size_t q_count;        /* appends queued */
    size_t q_want;         /* writer gathering: wake it at this count */
    bool writer_idle;      /* writer waits for an empty queue to fill */
    bool stopping;         /* under qmu */
    pthread_t writer;
    bool writer_started;

    kn_seg **segs;         /* oldest first; the last one is active */
    size_t nsegs, capsegs;
    uint64_t head;         /* next offset to assign == durable end */
    kn_group *groups;
    kn_lcursor *cursors;
    kn_channel_stats st;
    pthread_mutex_t ckpt_mu; /* serialises checkpoint file writes */

    /* writer thread only */
    int64_t last_ts;
    int64_t sync_ns;       /* moving average of one fdatasync */
    size_t gather;         /* appends to wait for before the next group */
    bool need_truncate;
    int last_errno;        /* cause of the last failed write */
} kn_log;

struct kn_lcursor {
    kn_cursor base;
    kn_lcursor *next;      /* in log->cursors (under mu) */
    kn_log *log;
    kn_group *group;
    kn_seg *seg;           /* reference held */
    uint64_t pos;          /* byte position in seg */
    uint64_t off;          /* offset of the record at pos */
    int efd;
    atomic_int armed;      /* writer signals efd when set */
    unsigned char *buf;    /* read buffer: file bytes [buf_pos, +buf_len) */
    size_t buf_cap, buf_len;
    uint64_t buf_pos;
    uint64_t bad_pos;      /* last corrupt position reported (+1) */
};

/* log.c */
void kn_seg_ref(kn_seg *s);
void kn_seg_unref(kn_seg *s);
int kn_seg_fd(kn_log *lg, kn_seg *s); /* under mu; opens lazily */
int kn_log_status_errno(int e);       /* errno -> KN_NOSPACE / KN_IO */
kn_seg *kn_seg_new(const char *dir, uint64_t base);
int kn_seg_index_add(kn_seg *s, uint64_t off, uint64_t pos, int64_t ts);
/* Reads a sealed segment's index entries from its .idx file; *out is
 * malloc'd. Returns the count or a negative status. Any thread. */
int kn_seg_index_load(const kn_seg *s, kn_idx_entry **out);
char *kn_log_path(const char *dir, uint64_t base, const char *ext);
/* Creates the file of a new segment (header written and synced). */
int kn_seg_create(kn_log *lg, kn_seg *s);
int kn_log_push_seg(kn_log *lg, kn_seg *s); /* under mu */

/* writer.c */
void *kn_log_writer_main(void *arg);
int kn_log_append(kn_channel *ch, ce_event *const *evs, size_t n,
                  kn_append_cb cb, void *arg);
/* Writes the .idx of a segment being sealed (writer thread or open). */
int kn_log_write_index(kn_log *lg, kn_seg *s, const kn_idx_entry *e,
                       size_t n);
/* Applies retention now (writer thread). */
void kn_log_retention(kn_log *lg);

/* cursor.c */
int kn_log_groups_load(kn_log *lg, kn_err *err);
void kn_log_groups_free(kn_log *lg);
void kn_log_notify_cursors(kn_log *lg); /* under mu */
int kn_log_cursor_open(kn_channel *ch, const char *group,
                       const kn_seek *start, const kn_cursor_opts *opts,
                       kn_cursor **out, kn_err *err);
int kn_log_cursor_next(kn_cursor *c, kn_record *recs, size_t max);
int kn_log_cursor_fd(kn_cursor *c);
void kn_log_cursor_drain(kn_cursor *c);
int kn_log_cursor_commit(kn_cursor *c, int32_t partition, uint64_t next);
int kn_log_cursor_seek(kn_cursor *c, const kn_seek *to, kn_err *err);
void kn_log_cursor_close(kn_cursor *c);
int kn_log_cursor_delete(kn_channel *ch, const char *group);

#endif
