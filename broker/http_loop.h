/*
 * HTTP event loops for the ingress: one libmicrohttpd daemon per thread
 * in "external epoll" mode, all sharing one listening socket, each run by
 * a thread of ours. What this adds over MHD's own thread pool is a cheap
 * cross-thread resume: a connection suspended on one loop is resumed from
 * any thread by pushing it on that loop's lock-free ready list; only the
 * push that finds the list empty wakes the loop (one eventfd write), and
 * the loop resumes everything on the list before running MHD once. So a
 * group commit that completes 30 requests costs each loop at most one
 * wake-up instead of one ITC write (and a contended MHD mutex) per
 * request.
 *
 * Threads: kn_http_loops_* are called by the thread that owns the ingress
 * (main); MHD callbacks run on the loop threads; kn_http_suspend only on
 * a loop thread (inside a callback); kn_http_resume from any thread.
 */
#ifndef KNIT_BROKER_HTTP_LOOP_H
#define KNIT_BROKER_HTTP_LOOP_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/common.h"

typedef struct kn_http_loops kn_http_loops;
typedef struct kn_http_loop kn_http_loop;

/* A suspended connection waiting to be resumed; embedded in the caller's
 * per-request state, which must stay alive until the loop resumed it. */
typedef struct kn_http_waiter {
    struct kn_http_waiter *next;
    struct MHD_Connection *conn;
    kn_http_loop *loop;
} kn_http_waiter;

typedef struct kn_http_loops_cfg {
    const struct sockaddr *addr;
    socklen_t addr_len;
    unsigned threads;              /* loops (>= 1) */
    unsigned conn_limit;           /* connections over all loops */
    unsigned conn_timeout_s;
    unsigned backlog;
    MHD_AccessHandlerCallback handler;
    void *handler_cls;
    MHD_RequestCompletedCallback completed;
    void *completed_cls;
    MHD_LogCallback logger;        /* may be NULL */
    const char *thread_name;       /* at most 15 characters */
} kn_http_loops_cfg;

/* Binds and listens on cfg->addr (port 0 = any free one), starts the
 * loops. *port_out = the bound port. Returns KN_OK, or KN_IO / KN_NOMEM
 * with err set. */
int kn_http_loops_start(const kn_http_loops_cfg *cfg, kn_http_loops **out,
                        uint16_t *port_out, kn_err *err);
/* Stops accepting: every loop quiesces its daemon, then the listening
 * socket is closed. Open connections keep being served. */
void kn_http_loops_quiesce(kn_http_loops *ls);
/* Stops the loop threads and the daemons (connections are closed). */
void kn_http_loops_stop(kn_http_loops *ls);

/* Inside an MHD callback on a loop thread: suspends the connection and
 * records in *r where to resume it. */
void kn_http_suspend(struct MHD_Connection *c, kn_http_waiter *r);
/* Any thread: has the loop resume the connection of r (once per
 * suspend). The loop calls the access handler again afterwards. */
void kn_http_resume(kn_http_waiter *r);

#endif
