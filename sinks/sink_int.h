/*
 * sink_int.h: internals shared by loop.c (the epoll + libcurl multi event
 * loop, timers, watches, the submission queue) and client.c (the delivery
 * state machine). Not part of the public API.
 */
#ifndef KNIT_SINK_INT_H
#define KNIT_SINK_INT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "sinks/sinks.h"

/* A timer in the client's min-heap (ordered by due time, then seq). */
typedef struct kn_tnode kn_tnode;
typedef void (*kn_tnode_fire)(kn_sink_client *c, kn_tnode *t);
struct kn_tnode {
    int64_t due_ns;          /* monotonic */
    uint64_t seq;            /* insertion order among equal due times */
    size_t idx;              /* position in the heap; SIZE_MAX = not queued */
    kn_tnode_fire fire;
};

struct kn_sink_timer {
    kn_tnode node;
    kn_sink_client *c;
    kn_sink_timer_cb cb;
    void *arg;
};

struct kn_sink_watch {
    kn_sink_client *c;
    int fd;
    bool dead;
    kn_sink_fd_cb cb;
    void *arg;
    kn_sink_watch *next_dead;
};

/* A message for the loop thread (submission or run-on-loop). */
typedef struct kn_msg kn_msg;
enum { KN_MSG_DELIVERY = 1, KN_MSG_RUN, KN_MSG_QUIT };
struct kn_msg {
    kn_msg *next;
    int kind;
    kn_sink_run_fn fn;       /* KN_MSG_RUN */
    void *arg;
};

typedef struct kn_delivery kn_delivery;

/* Counters: written on the loop thread (submitted: any), read anywhere. */
typedef struct kn_counters {
    _Atomic uint64_t submitted, attempts, retries;
    _Atomic uint64_t resp_2xx, resp_4xx, resp_5xx, resp_other, transport;
    _Atomic uint64_t delivered, dead_lettered, failed, cancelled;
    _Atomic uint64_t dls_attempts, replies, connections;
    _Atomic uint64_t in_flight, waiting_retry;
    _Atomic uint64_t latency_sum, latency_max;
} kn_counters;

#define KN_CNT_ADD(c, field, n)                                             \
    atomic_fetch_add_explicit(&(c)->cnt.field, (n), memory_order_relaxed)
#define KN_CNT_SUB(c, field, n)                                             \
    atomic_fetch_sub_explicit(&(c)->cnt.field, (n), memory_order_relaxed)

struct kn_sink_client {
    pthread_t thread;
    bool started;
    int epfd, evfd;
    CURLM *multi;
    kn_sink_client_opts opts;
    char *user_agent;

    /* Submission queue (any thread → loop thread). */
    pthread_mutex_t qlock;
    kn_msg *qhead, **qtail;
    bool stopping;           /* under qlock: no new messages accepted */
    kn_msg quit_msg;

    /* Loop thread only. */
    bool quit;
    int curl_sentinel;       /* address marks sockets added to epoll */
    int64_t curl_due_ns;     /* curl's timer, -1 = none */
    kn_tnode **heap;
    size_t heap_len, heap_cap;
    uint64_t seq;
    kn_sink_watch *dead_watches;
    kn_delivery *active;     /* every delivery not yet finished */
    CURL **pool;             /* idle easy handles */
    size_t pool_len;

    kn_counters cnt;
};

/* loop.c */
void kn_heap_push(kn_sink_client *c, kn_tnode *t, int64_t delay_ms);
void kn_heap_remove(kn_sink_client *c, kn_tnode *t);
int kn_queue_push(kn_sink_client *c, kn_msg *m);
CURL *kn_easy_get(kn_sink_client *c);
void kn_easy_put(kn_sink_client *c, CURL *e);

/* client.c: called by the loop. */
void kn_delivery_begin(kn_sink_client *c, kn_msg *m);   /* from queue */
void kn_delivery_done(kn_sink_client *c, CURL *e, CURLcode rc);
void kn_delivery_cancel_all(kn_sink_client *c);
void kn_delivery_discard_msg(kn_sink_client *c, kn_msg *m);

#endif /* KNIT_SINK_INT_H */
