/*
 * HTTP event loops: libmicrohttpd daemons in external-epoll mode, one per
 * thread, with batched cross-thread resume (see http_loop.h for the why).
 *
 * Each loop thread waits in its own epoll set on three descriptors: the
 * daemon's epoll fd (its connections), the shared non-blocking listening
 * socket, and an eventfd that other threads write to when they push the
 * first item on one of the loop's empty lists (connections to resume,
 * accepted sockets to adopt) or change its command (quiesce, quit).
 * Whichever loop sees the listening socket readable accepts everything
 * pending and deals the sockets out round-robin, so connections that
 * arrive together spread evenly over the loops (MHD's own accept would
 * put a burst on one thread). Then the loop adopts its new sockets,
 * resumes every connection on its list and runs MHD once.
 */
#include "broker/http_loop.h"

#include "channels/channel.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum { LOOP_RUN = 0, LOOP_QUIESCE, LOOP_QUIT };
enum { TAG_MHD = 0, TAG_WAKE, TAG_LISTEN };

/* An accepted socket handed to a loop. */
typedef struct adopt {
    struct adopt *next;
    int fd;
    socklen_t len;
    struct sockaddr_storage addr;
} adopt;

struct kn_http_loop {
    kn_http_loops *ls;
    struct MHD_Daemon *d;
    pthread_t th;
    bool started;
    int epfd, efd;
    _Atomic(kn_http_waiter *) ready; /* LIFO, pushed by any thread */
    _Atomic(adopt *) adopt;          /* LIFO, pushed by any loop */
    atomic_int cmd;
    atomic_bool quiesced;
    /* loop thread only: accepting, or paused after a resource error */
    bool listening;
    int64_t accept_again_ms;         /* mono ms to listen again (paused) */
    int64_t warned_ms;               /* last accept warning */
    unsigned long pauses;            /* pauses since that warning */
};

#define ACCEPT_PAUSE_MS 100
#define ACCEPT_WARN_MS 10000

struct kn_http_loops {
    int lfd;
    bool lfd_closed;
    size_t n;
    kn_http_loop *loops;
    atomic_uint next;                /* round-robin for new sockets */
};

/* The loop the current thread runs (NULL off loop threads). */
static _Thread_local kn_http_loop *cur_loop;

/* ------------------------------------------------------------ resume */

static void wake(kn_http_loop *l)
{
    uint64_t one = 1;
    ssize_t w;
    do
        w = write(l->efd, &one, sizeof one);
    while (w < 0 && errno == EINTR);
    /* EAGAIN means the counter is saturated: the loop is woken anyway */
}

void kn_http_suspend(struct MHD_Connection *c, kn_http_waiter *r)
{
    r->next = NULL;
    r->conn = c;
    r->loop = cur_loop;
    MHD_suspend_connection(c);
}

void kn_http_resume(kn_http_waiter *r)
{
    kn_http_loop *l = r->loop;
    kn_http_waiter *head = atomic_load_explicit(&l->ready,
                                                memory_order_relaxed);
    do
        r->next = head;
    while (!atomic_compare_exchange_weak_explicit(
        &l->ready, &head, r, memory_order_release, memory_order_relaxed));
    if (!head)
        wake(l);
}

/* Loop thread: resumes everything pushed so far, oldest first. */
static void resume_ready(kn_http_loop *l)
{
    kn_http_waiter *r = atomic_exchange_explicit(&l->ready, NULL,
                                                 memory_order_acquire);
    kn_http_waiter *fifo = NULL;
    while (r) {
        kn_http_waiter *next = r->next;
        r->next = fifo;
        fifo = r;
        r = next;
    }
    while (fifo) {
        kn_http_waiter *next = fifo->next;
        MHD_resume_connection(fifo->conn);
        fifo = next;
    }
}

/* ------------------------------------------------------------ accept */

/* Loop thread: gives MHD the sockets other loops accepted for it. */
static void adopt_ready(kn_http_loop *l)
{
    adopt *a = atomic_exchange_explicit(&l->adopt, NULL,
                                        memory_order_acquire);
    while (a) {
        adopt *next = a->next;
        /* on failure MHD closes the socket and logs why */
        MHD_add_connection(l->d, a->fd, (struct sockaddr *)&a->addr, a->len);
        free(a);
        a = next;
    }
}

static void give(kn_http_loop *to, adopt *a)
{
    adopt *head = atomic_load_explicit(&to->adopt, memory_order_relaxed);
    do
        a->next = head;
    while (!atomic_compare_exchange_weak_explicit(
        &to->adopt, &head, a, memory_order_release, memory_order_relaxed));
    if (!head)
        wake(to);
}

static int listen_add(kn_http_loop *l)
{
    /* exclusive: a new connection wakes one waiting loop, not all */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE,
                             .data.u32 = TAG_LISTEN};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->ls->lfd, &ev);
}

static void listen_stop(kn_http_loop *l)
{
    if (l->listening)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->ls->lfd, NULL);
    l->listening = false;
}

/* accept failed for want of a resource (descriptors, memory): the
 * listening socket stays readable, so stop watching it for a while
 * instead of spinning; warn at most every ACCEPT_WARN_MS. */
static void accept_pause(kn_http_loop *l, int e)
{
    int64_t now = kn_now_mono_ms();
    listen_stop(l);
    l->accept_again_ms = now + ACCEPT_PAUSE_MS;
    l->pauses++;
    if (now - l->warned_ms >= ACCEPT_WARN_MS) {
        KN_WARN("http", "cannot accept connections: %s; pausing accept for "
                "%d ms (%lu pauses since the last warning)", strerror(e),
                ACCEPT_PAUSE_MS, l->pauses);
        l->warned_ms = now;
        l->pauses = 0;
    }
}

/* Loop thread: listens again once a pause is over; returns the ms left
 * of the pause (-1: none). */
static int accept_resume(kn_http_loop *l)
{
    if (l->listening || !l->accept_again_ms || atomic_load(&l->quiesced))
        return -1;
    int64_t left = l->accept_again_ms - kn_now_mono_ms();
    if (left > 0)
        return left > INT_MAX ? INT_MAX : (int)left;
    l->accept_again_ms = 0;
    if (listen_add(l) == 0)
        l->listening = true;
    else
        accept_pause(l, errno);
    return -1;
}

/* Loop thread: accepts every pending connection and deals them out. */
static void accept_all(kn_http_loop *l)
{
    kn_http_loops *ls = l->ls;
    for (;;) {
        adopt *a = malloc(sizeof *a);
        if (!a) {
            accept_pause(l, ENOMEM);
            return;
        }
        a->len = sizeof a->addr;
        a->fd = accept4(ls->lfd, (struct sockaddr *)&a->addr, &a->len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (a->fd < 0) {
            int e = errno;
            free(a);
            if (e == EINTR || e == ECONNABORTED || e == EPROTO ||
                e == EPERM)
                continue; /* that connection is gone; try the next */
            if (e != EAGAIN && e != EWOULDBLOCK)
                accept_pause(l, e);
            return;
        }
        kn_http_loop *to = &ls->loops[atomic_fetch_add(&ls->next, 1) %
                                      ls->n];
        if (to == l) {
            MHD_add_connection(l->d, a->fd, (struct sockaddr *)&a->addr,
                               a->len);
            free(a);
        } else {
            give(to, a);
        }
    }
}

/* -------------------------------------------------------------- loop */

/* epoll timeout: MHD's (connection timeouts, pending work), or the end
 * of an accept pause (pause ms, -1 = none) if sooner; -1 = none. */
static int loop_timeout(kn_http_loop *l, int pause)
{
    MHD_UNSIGNED_LONG_LONG t;
    int ms = -1;
    if (MHD_get_timeout(l->d, &t) == MHD_YES)
        ms = t > INT_MAX ? INT_MAX : (int)t;
    if (pause >= 0 && (ms < 0 || pause < ms))
        ms = pause;
    return ms;
}

static void *loop_main(void *arg)
{
    kn_http_loop *l = arg;
    struct epoll_event ev[3];
    cur_loop = l;
    for (;;) {
        int cmd = atomic_load(&l->cmd);
        if (cmd == LOOP_QUIT)
            break;
        if (cmd == LOOP_QUIESCE && !atomic_load(&l->quiesced)) {
            listen_stop(l);
            atomic_store(&l->quiesced, true);
        }
        adopt_ready(l);
        /* appends made while MHD runs the ready connections wake their
         * channel writers once, when the round ends */
        kn_channel_defer_begin();
        resume_ready(l);
        MHD_run(l->d);
        kn_channel_defer_end();
        int pause = accept_resume(l);
        int n = epoll_wait(l->epfd, ev, 3, loop_timeout(l, pause));
        for (int i = 0; i < n; i++) {
            uint64_t v;
            if (ev[i].data.u32 == TAG_LISTEN && l->listening)
                accept_all(l);
            else if (ev[i].data.u32 == TAG_WAKE &&
                     read(l->efd, &v, sizeof v) < 0 && errno != EAGAIN)
                KN_WARN("http", "loop wake-up read: %s", strerror(errno));
        }
        if (n < 0 && errno != EINTR) {
            KN_ERROR("http", "epoll_wait: %s", strerror(errno));
            usleep(10000);
        }
    }
    cur_loop = NULL;
    return NULL;
}

static void command(kn_http_loops *ls, int cmd)
{
    for (size_t i = 0; i < ls->n; i++) {
        kn_http_loop *l = &ls->loops[i];
        if (!l->started)
            continue;
        atomic_store(&l->cmd, cmd);
        wake(l);
    }
}

/* ------------------------------------------------------- lifecycle */

static int listen_socket(const kn_http_loops_cfg *cfg, int *out,
                         kn_err *err)
{
    int one = 1;
    int fd = socket(cfg->addr->sa_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return kn_err_set(err, KN_IO, "socket: %s", strerror(errno));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (cfg->addr->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        bind(fd, cfg->addr, cfg->addr_len) != 0 ||
        listen(fd, (int)cfg->backlog) != 0) {
        int e = errno;
        close(fd);
        return kn_err_set(err, KN_IO, "%s", strerror(e));
    }
    *out = fd;
    return KN_OK;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int epoll_add(int epfd, int fd, uint32_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Creates the loop's daemon and epoll set (its thread starts later, once
 * every loop exists, since any loop may hand sockets to any other). */
static int loop_setup(kn_http_loops *ls, kn_http_loop *l,
                      const kn_http_loops_cfg *cfg, kn_err *err)
{
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG;
    unsigned limit = (cfg->conn_limit + cfg->threads - 1) / cfg->threads;
    const union MHD_DaemonInfo *info;

    if (cfg->addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    l->ls = ls;
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->efd < 0 || l->epfd < 0)
        return kn_err_set(err, KN_IO, "eventfd/epoll: %s", strerror(errno));
    l->d = MHD_start_daemon(
        flags, 0, NULL, NULL, cfg->handler, cfg->handler_cls,
        MHD_OPTION_EXTERNAL_LOGGER, cfg->logger, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, cfg->completed, cfg->completed_cls,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->conn_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_END);
    if (!l->d)
        return kn_err_set(err, KN_IO, "cannot start the HTTP daemon");
    info = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || epoll_add(l->epfd, info->epoll_fd, TAG_MHD) != 0 ||
        epoll_add(l->epfd, l->efd, TAG_WAKE) != 0 || listen_add(l) != 0)
        return kn_err_set(err, KN_IO, "epoll_ctl: %s", strerror(errno));
    l->listening = true;
    return KN_OK;
}

static int loop_start(kn_http_loop *l, const kn_http_loops_cfg *cfg,
                      kn_err *err)
{
    int rc = pthread_create(&l->th, NULL, loop_main, l);
    if (rc != 0)
        return kn_err_set(err, KN_NOMEM, "cannot start an HTTP thread: %s",
                          strerror(rc));
    l->started = true;
    if (cfg->thread_name)
        pthread_setname_np(l->th, cfg->thread_name);
    return KN_OK;
}

int kn_http_loops_start(const kn_http_loops_cfg *cfg, kn_http_loops **out,
                        uint16_t *port_out, kn_err *err)
{
    kn_http_loops *ls = calloc(1, sizeof *ls);
    int rc;

    *out = NULL;
    if (!ls || !cfg->threads ||
        !(ls->loops = calloc(cfg->threads, sizeof *ls->loops))) {
        free(ls);
        return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < cfg->threads; i++)
        ls->loops[i].efd = ls->loops[i].epfd = -1;
    ls->lfd = -1;
    if ((rc = listen_socket(cfg, &ls->lfd, err)) != KN_OK)
        goto fail;
    ls->n = cfg->threads;
    for (size_t i = 0; i < ls->n; i++)
        if ((rc = loop_setup(ls, &ls->loops[i], cfg, err)) != KN_OK)
            goto fail;
    for (size_t i = 0; i < ls->n; i++)
        if ((rc = loop_start(&ls->loops[i], cfg, err)) != KN_OK)
            goto fail;
    *port_out = bound_port(ls->lfd);
    *out = ls;
    return KN_OK;
fail:
    kn_http_loops_stop(ls);
    return rc;
}

void kn_http_loops_quiesce(kn_http_loops *ls)
{
    if (!ls || ls->lfd_closed)
        return;
    command(ls, LOOP_QUIESCE);
    for (size_t i = 0; i < ls->n; i++)
        while (ls->loops[i].started && !atomic_load(&ls->loops[i].quiesced))
            usleep(1000);
    if (ls->lfd >= 0)
        close(ls->lfd);
    ls->lfd_closed = true;
}

void kn_http_loops_stop(kn_http_loops *ls)
{
    if (!ls)
        return;
    command(ls, LOOP_QUIT);
    for (size_t i = 0; i < ls->n; i++)
        if (ls->loops[i].started)
            pthread_join(ls->loops[i].th, NULL);
    for (size_t i = 0; i < ls->n; i++) {
        kn_http_loop *l = &ls->loops[i];
        if (l->d) {
            adopt_ready(l);
            resume_ready(l);
            MHD_stop_daemon(l->d);
        }
        if (l->efd >= 0)
            close(l->efd);
        if (l->epfd >= 0)
            close(l->epfd);
    }
    if (ls->lfd >= 0 && !ls->lfd_closed)
        close(ls->lfd);
    free(ls->loops);
    free(ls);
}
