/*
 * Internals of the Kafka channel ("kafka" backend, librdkafka) shared by
 * its files:
 *   config.c  settings → librdkafka configuration, naming, error mapping
 *   kafka.c   open (topic set-up), the producer, appends, health, close
 *   cursor.c  cursors: one consumer (group member) each, commits, seeks
 *
 * Threads of a channel: the caller's threads (append, open, close, stats),
 * the poll thread (serves the producer's delivery reports and errors, runs
 * append completions, never blocks) and the admin thread (creates the
 * topic, probes the cluster while it is down; the only one that makes
 * blocking cluster calls on the channel's behalf). librdkafka runs its own
 * threads inside each rd_kafka_t. Cursors run on the caller's thread: their
 * rebalance and commit callbacks are served from cursor_next.
 */
#ifndef KNIT_KAFKA_INT_H
#define KNIT_KAFKA_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "channels/channel.h"

#define KN_KAFKA_COMP "kafka"
#define KN_KAFKA_TOPIC_MAX 249     /* Kafka's limit on topic names */
#define KN_KAFKA_CALL_MS 5000      /* bound of one blocking cluster call */
#define KN_KAFKA_CLOSE_MS 10000    /* bound of a consumer leaving its group */

typedef struct kn_kafka_settings {
    char *topic;             /* topic name (owned) */
    bool external;           /* topic given by "topic": never created */
    int partitions;          /* default.topic.partitions */
    int replication;         /* 0 = auto (3 capped to brokers), -1 =
                                broker default, else the factor */
    json_t *topic_config;    /* default.topic.config.* (names stripped) */
    json_t *props;           /* librdkafka properties, both clients */
    int64_t message_timeout_ms; /* for the close/flush bound */
} kn_kafka_settings;

/* A cursor's group while the cursor is open (for cursor_delete). */
typedef struct kn_kafka_open {
    struct kn_kafka_open *next;
    const char *group;
} kn_kafka_open;

typedef struct kn_kafka {
    kn_channel base;
    char *label;             /* "ns/name", for messages */
    kn_kafka_settings set;
    rd_kafka_t *prod;
    rd_kafka_topic_t *rkt;
    pthread_t poll_thr, admin_thr;
    bool poll_started, admin_started;
    atomic_bool stopping;

    pthread_mutex_t mu;      /* state below, cv wakes the admin thread */
    pthread_cond_t cv;
    bool topic_ready;        /* the topic exists with its partitions */
    bool down;               /* all brokers down: appends fail fast */
    bool fatal;              /* the producer hit a fatal error */
    bool failing;            /* the last delivery report was an error */
    int admin_api;           /* -1 unknown, 0 no (e.g. librdkafka's mock
                                cluster), 1 CreateTopics/DeleteGroups ok */
    int32_t nparts;          /* partitions of the topic (0 unknown) */
    kn_kafka_open *open;     /* groups of the open cursors */
    char setup_reason[512];  /* why the topic is not ready */
    char down_reason[256];   /* last "all brokers down" */
    char fail_reason[256];   /* last failed delivery */
    char fatal_reason[256];  /* the fatal producer error */
    int64_t last_warn_ns;    /* rate limit of repeated warnings */

    atomic_bool trouble;     /* down || failing, read without mu */
    atomic_bool accepting;   /* topic_ready && !down && !fatal */
    atomic_uint_fast64_t appended_events, appended_bytes, append_errors;
    atomic_uint_fast64_t skipped_records;
    atomic_int cursors;      /* open cursors, for the close check */
} kn_kafka;

/* ---- config.c */

/* Parses cfg->settings into *s (see docs/channels-kafka.md). KN_INVAL
 * naming the setting on any bad or unknown key. Any thread. */
int kn_kafka_settings_parse(const kn_channel_config *cfg,
                            kn_kafka_settings *s, kn_err *err);
void kn_kafka_settings_free(kn_kafka_settings *s);
/* A librdkafka configuration for the channel's producer (consumer = false)
 * or a cursor's consumer: knit's defaults, then the "kafka.*" properties,
 * then what knit requires. NULL with err set on a property librdkafka
 * rejects. Callbacks and opaque are the caller's to add. */
rd_kafka_conf_t *kn_kafka_conf_new(const kn_kafka_settings *s, bool consumer,
                                   kn_err *err);
/* Kafka group id of a cursor group: "trigger.<ns>.<name>" becomes
 * "knative-trigger-<ns>-<name>", anything else is used as it is. Returns
 * a malloc'd string or NULL. */
char *kn_kafka_group_id(const char *group);
/* Maps a librdkafka error to a kn status: KN_TOOBIG for sizes,
 * KN_AGAIN for a full local queue, KN_UNAVAILABLE otherwise. */
int kn_kafka_status(rd_kafka_resp_err_t e);
/* Routes librdkafka's log lines to knit's log (set as log_cb). */
void kn_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                     const char *buf);

/* ---- kafka.c */

/* Whether the cluster supports the admin API (waits for the admin
 * thread's first look, bounded). */
bool kn_kafka_admin_api(kn_kafka *k);
/* True at most once per second per channel: for repeated warnings. */
bool kn_kafka_warn_ok(kn_kafka *k);

/* ---- cursor.c */
int kn_kafka_cursor_open(kn_channel *ch, const char *group,
                         const kn_seek *start, const kn_cursor_opts *opts,
                         kn_cursor **out, kn_err *err);
int kn_kafka_cursor_next(kn_cursor *c, kn_record *recs, size_t max);
int kn_kafka_cursor_fd(kn_cursor *c);
void kn_kafka_cursor_drain(kn_cursor *c);
int kn_kafka_cursor_commit(kn_cursor *c, int32_t partition, uint64_t next);
int kn_kafka_cursor_seek(kn_cursor *c, const kn_seek *to, kn_err *err);
void kn_kafka_cursor_close(kn_cursor *c);
int kn_kafka_cursor_delete(kn_channel *ch, const char *group);

#endif /* KNIT_KAFKA_INT_H */
