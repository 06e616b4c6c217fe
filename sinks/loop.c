/*
 * loop.c: the sink client's single event-loop thread. One epoll set holds
 * the wake-up eventfd, libcurl's sockets (CURLMOPT_SOCKETFUNCTION) and the
 * caller's watched fds; epoll_wait's timeout is the earlier of libcurl's
 * timer (CURLMOPT_TIMERFUNCTION) and the top of a min-heap of timers
 * (retry backoffs and the caller's one-shot timers). Other threads talk to
 * the loop only through the mutex-protected message queue + eventfd.
 */
#include "sinks/sink_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* epoll_event.data.u64 tags: pointers (watches) have the low bits clear. */
#define TAG_EVENTFD 2u
#define TAG_CURL 1u
#define POOL_MAX 64

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_ALL); }

/* ------------------------------------------------------------- heap */

static bool tn_less(const kn_tnode *a, const kn_tnode *b)
{
    return a->due_ns < b->due_ns ||
           (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_set(kn_sink_client *c, size_t i, kn_tnode *t)
{
    c->heap[i] = t;
    t->idx = i;
}

static void heap_up(kn_sink_client *c, size_t i)
{
    kn_tnode *t = c->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tn_less(t, c->heap[p]))
            break;
        heap_set(c, i, c->heap[p]);
        i = p;
    }
    heap_set(c, i, t);
}

static void heap_down(kn_sink_client *c, size_t i)
{
    kn_tnode *t = c->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        kn_tnode *best = t;
        if (l < c->heap_len && tn_less(c->heap[l], best))
            best = c->heap[m = l];
        if (l + 1 < c->heap_len && tn_less(c->heap[l + 1], best))
            best = c->heap[m = l + 1];
        if (m == i)
            break;
        heap_set(c, i, best);
        i = m;
    }
    heap_set(c, i, t);
}

/* Queues t to fire after delay_ms. Aborts on ENOMEM: a lost timer would
 * strand a delivery forever, and the heap only grows by doubling. */
void kn_heap_push(kn_sink_client *c, kn_tnode *t, int64_t delay_ms)
{
    if (c->heap_len == c->heap_cap) {
        size_t cap = c->heap_cap ? c->heap_cap * 2 : 64;
        kn_tnode **h = realloc(c->heap, cap * sizeof *h);
        if (!h) {
            KN_ERROR("sinks", "out of memory growing the timer heap");
            abort();
        }
        c->heap = h;
        c->heap_cap = cap;
    }
    if (delay_ms < 0)
        delay_ms = 0;
    int64_t now = kn_now_mono_ns();
    t->due_ns = delay_ms >= (INT64_MAX - now) / 1000000
                    ? INT64_MAX : now + delay_ms * 1000000;
    t->seq = c->seq++;
    c->heap[c->heap_len] = t;
    t->idx = c->heap_len++;
    heap_up(c, t->idx);
}

void kn_heap_remove(kn_sink_client *c, kn_tnode *t)
{
    size_t i = t->idx;
    if (i == SIZE_MAX || i >= c->heap_len || c->heap[i] != t)
        return;
    t->idx = SIZE_MAX;
    kn_tnode *last = c->heap[--c->heap_len];
    if (last == t)
        return;
    heap_set(c, i, last);
    heap_up(c, i);
    heap_down(c, last->idx);
}

/* Fires timers due now, but not ones added while firing. */
static void heap_run(kn_sink_client *c)
{
    int64_t now = kn_now_mono_ns();
    uint64_t seq_limit = c->seq;
    while (c->heap_len > 0 && !c->quit) {
        kn_tnode *t = c->heap[0];
        if (t->due_ns > now || t->seq >= seq_limit)
            break;
        kn_heap_remove(c, t);
        t->fire(c, t);
    }
}

/* ------------------------------------------------------ easy handles */

CURL *kn_easy_get(kn_sink_client *c)
{
    if (c->pool_len > 0)
        return c->pool[--c->pool_len];
    return curl_easy_init();
}

void kn_easy_put(kn_sink_client *c, CURL *e)
{
    if (!e)
        return;
    if (c->pool_len < POOL_MAX) {
        curl_easy_reset(e);
        c->pool[c->pool_len++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* ------------------------------------------------------ curl glue */

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp,
                   void *socketp)
{
    kn_sink_client *c = userp;
    struct epoll_event ev;
    (void)e;

    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL); /* may be closed */
        curl_multi_assign(c->multi, s, NULL);
        return 0;
    }
    memset(&ev, 0, sizeof ev);
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    ev.data.u64 = ((uint64_t)(unsigned)s << 2) | TAG_CURL;
    if (socketp) {
        if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev) == 0)
            return 0;
        if (errno != ENOENT)
            goto fail;
    }
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev) != 0 &&
        (errno != EEXIST || epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev) != 0))
        goto fail;
    curl_multi_assign(c->multi, s, &c->curl_sentinel);
    return 0;
fail:
    KN_ERROR("sinks", "epoll_ctl(fd %d): %s", (int)s, strerror(errno));
    return -1;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    kn_sink_client *c = userp;
    (void)m;
    c->curl_due_ns = timeout_ms < 0 ? -1
                                    : kn_now_mono_ns() + timeout_ms * 1000000;
    return 0;
}

static void drain_multi(kn_sink_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle(c->multi, e);
        kn_delivery_done(c, e, rc);
    }
}

static void curl_action(kn_sink_client *c, curl_socket_t fd, int flags)
{
    int running;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    drain_multi(c);
}

/* ------------------------------------------------------------ queue */

int kn_queue_push(kn_sink_client *c, kn_msg *m)
{
    uint64_t one = 1;
    m->next = NULL;
    pthread_mutex_lock(&c->qlock);
    if (c->stopping) {
        pthread_mutex_unlock(&c->qlock);
        return KN_CLOSED;
    }
    bool was_empty = c->qhead == NULL;
    *c->qtail = m;
    c->qtail = &m->next;
    pthread_mutex_unlock(&c->qlock);
    if (was_empty && write(c->evfd, &one, sizeof one) < 0 && errno != EAGAIN)
        KN_ERROR("sinks", "eventfd write: %s", strerror(errno));
    return KN_OK;
}

static kn_msg *queue_take(kn_sink_client *c)
{
    pthread_mutex_lock(&c->qlock);
    kn_msg *m = c->qhead;
    c->qhead = NULL;
    c->qtail = &c->qhead;
    pthread_mutex_unlock(&c->qlock);
    return m;
}

/* Runs queued messages. With `cancel`, deliveries end as cancelled. */
static void queue_run(kn_sink_client *c, bool cancel)
{
    uint64_t v;
    if (read(c->evfd, &v, sizeof v) < 0 && errno != EAGAIN)
        KN_ERROR("sinks", "eventfd read: %s", strerror(errno));
    for (kn_msg *m = queue_take(c), *next; m; m = next) {
        next = m->next;
        if (m->kind == KN_MSG_QUIT) {
            c->quit = true;       /* embedded in the client: not freed */
        } else if (m->kind == KN_MSG_RUN) {
            m->fn(c, m->arg);
            free(m);
        } else if (cancel) {
            kn_delivery_discard_msg(c, m);
        } else {
            kn_delivery_begin(c, m);
        }
    }
}

/* ------------------------------------------------------------- loop */

static int wait_timeout_ms(kn_sink_client *c)
{
    int64_t due = c->curl_due_ns;
    if (c->heap_len > 0 && (due < 0 || c->heap[0]->due_ns < due))
        due = c->heap[0]->due_ns;
    if (due < 0)
        return -1;
    int64_t left = due - kn_now_mono_ns();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;   /* round up: no busy spin */
    return ms > 60000 ? 60000 : (int)ms;
}

static void handle_event(kn_sink_client *c, const struct epoll_event *ev)
{
    uint64_t tag = ev->data.u64;
    if (tag == TAG_EVENTFD) {
        queue_run(c, false);
    } else if ((tag & 3u) == TAG_CURL) {
        int flags = 0;
        if (ev->events & EPOLLIN)
            flags |= CURL_CSELECT_IN;
        if (ev->events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (ev->events & (EPOLLERR | EPOLLHUP))
            flags |= CURL_CSELECT_ERR;
        curl_action(c, (curl_socket_t)(tag >> 2), flags);
    } else {
        kn_sink_watch *w = (kn_sink_watch *)(uintptr_t)tag;
        if (!w->dead)
            w->cb(c, w->fd, ev->events, w->arg);
    }
}

static void free_dead_watches(kn_sink_client *c)
{
    while (c->dead_watches) {
        kn_sink_watch *w = c->dead_watches;
        c->dead_watches = w->next_dead;
        free(w);
    }
}

static void shutdown_loop(kn_sink_client *c)
{
    pthread_mutex_lock(&c->qlock);
    c->stopping = true;               /* callbacks below cannot submit */
    pthread_mutex_unlock(&c->qlock);
    queue_run(c, true);               /* runs RUN msgs, cancels deliveries */
    kn_delivery_cancel_all(c);
    for (size_t i = 0; i < c->heap_len; i++) {
        /* Only caller timers remain (deliveries removed theirs). */
        c->heap[i]->idx = SIZE_MAX;
        free(c->heap[i]);             /* kn_tnode is first in kn_sink_timer */
    }
    c->heap_len = 0;
    free_dead_watches(c);
}

static void *loop_main(void *arg)
{
    kn_sink_client *c = arg;
    struct epoll_event evs[64];

    while (!c->quit) {
        int n = epoll_wait(c->epfd, evs, 64, wait_timeout_ms(c));
        if (n < 0 && errno != EINTR) {
            KN_ERROR("sinks", "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n && !c->quit; i++)
            handle_event(c, &evs[i]);
        if (c->curl_due_ns >= 0 && c->curl_due_ns <= kn_now_mono_ns()) {
            c->curl_due_ns = -1;
            curl_action(c, CURL_SOCKET_TIMEOUT, 0);
        }
        heap_run(c);
        free_dead_watches(c);
    }
    shutdown_loop(c);
    return NULL;
}

/* ------------------------------------------------------- lifecycle */

static void client_destroy(kn_sink_client *c)
{
    for (size_t i = 0; i < c->pool_len; i++)
        curl_easy_cleanup(c->pool[i]);
    free(c->pool);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->epfd >= 0)
        close(c->epfd);
    if (c->evfd >= 0)
        close(c->evfd);
    free(c->heap);
    free(c->user_agent);
    pthread_mutex_destroy(&c->qlock);
    free(c);
}

static int client_setup(kn_sink_client *c, kn_err *err)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_EVENTFD};

    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->epfd < 0 || c->evfd < 0 ||
        epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->evfd, &ev) != 0)
        return kn_err_set(err, KN_IO, "epoll/eventfd: %s", strerror(errno));
    c->multi = curl_multi_init();
    c->pool = calloc(POOL_MAX, sizeof *c->pool);
    if (!c->multi || !c->pool)
        return kn_err_set(err, KN_NOMEM, "cannot create the curl multi");
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
                      c->opts.max_idle_connections);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      c->opts.max_host_connections);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    return KN_OK;
}

kn_sink_client *kn_sink_client_new(const kn_sink_client_opts *opts,
                                   kn_err *err)
{
    kn_sink_client *c = calloc(1, sizeof *c);
    if (!c) {
        kn_err_set(err, KN_NOMEM, "out of memory");
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    c->epfd = c->evfd = -1;
    c->curl_due_ns = -1;
    c->qtail = &c->qhead;
    pthread_mutex_init(&c->qlock, NULL);
    if (opts)
        c->opts = *opts;
    if (c->opts.max_idle_connections <= 0)
        c->opts.max_idle_connections = 256;
    if (c->opts.max_host_connections <= 0)
        c->opts.max_host_connections = 256;
    if (c->opts.max_reply_bytes == 0)
        c->opts.max_reply_bytes = 1u << 20;
    c->user_agent = strdup(c->opts.user_agent ? c->opts.user_agent
                                              : "knit/" KNIT_VERSION);
    c->opts.user_agent = c->user_agent;
    if (!c->user_agent) {
        kn_err_set(err, KN_NOMEM, "out of memory");
        goto fail;
    }
    if (client_setup(c, err) != KN_OK)
        goto fail;
    if (pthread_create(&c->thread, NULL, loop_main, c) != 0) {
        kn_err_set(err, KN_IO, "cannot start the sink loop thread");
        goto fail;
    }
    c->started = true;
    return c;
fail:
    client_destroy(c);
    return NULL;
}

void kn_sink_client_free(kn_sink_client *c)
{
    if (!c)
        return;
    if (kn_sink_client_on_loop(c)) {
        KN_ERROR("sinks", "kn_sink_client_free called on its own loop "
                 "thread: ignored (it would deadlock)");
        return;
    }
    c->quit_msg.kind = KN_MSG_QUIT;
    if (kn_queue_push(c, &c->quit_msg) == KN_OK) {
        pthread_mutex_lock(&c->qlock);
        c->stopping = true;
        pthread_mutex_unlock(&c->qlock);
        pthread_join(c->thread, NULL);
    }
    client_destroy(c);
}

/* ------------------------------------------------ hosting the caller */

int kn_sink_client_run(kn_sink_client *c, kn_sink_run_fn fn, void *arg)
{
    kn_msg *m = calloc(1, sizeof *m);
    int rc;
    if (!m)
        return KN_NOMEM;
    m->kind = KN_MSG_RUN;
    m->fn = fn;
    m->arg = arg;
    if ((rc = kn_queue_push(c, m)) != KN_OK)
        free(m);
    return rc;
}

bool kn_sink_client_on_loop(const kn_sink_client *c)
{
    return c->started && pthread_equal(pthread_self(), c->thread);
}

kn_sink_watch *kn_sink_watch_fd(kn_sink_client *c, int fd, uint32_t events,
                                kn_sink_fd_cb cb, void *arg, kn_err *err)
{
    struct epoll_event ev;
    kn_sink_watch *w;

    if (!kn_sink_client_on_loop(c)) {
        kn_err_set(err, KN_INVAL, "kn_sink_watch_fd: not on the loop thread");
        return NULL;
    }
    if (!(w = calloc(1, sizeof *w))) {
        kn_err_set(err, KN_NOMEM, "out of memory");
        return NULL;
    }
    w->c = c;
    w->fd = fd;
    w->cb = cb;
    w->arg = arg;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = (uint64_t)(uintptr_t)w;
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        kn_err_set(err, KN_INVAL, "epoll_ctl(fd %d): %s", fd,
                   strerror(errno));
        free(w);
        return NULL;
    }
    return w;
}

int kn_sink_watch_modify(kn_sink_watch *w, uint32_t events)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = (uint64_t)(uintptr_t)w;
    if (w->dead || epoll_ctl(w->c->epfd, EPOLL_CTL_MOD, w->fd, &ev) != 0)
        return KN_INVAL;
    return KN_OK;
}

void kn_sink_unwatch(kn_sink_watch *w)
{
    if (!w || w->dead)
        return;
    epoll_ctl(w->c->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->dead = true;
    w->next_dead = w->c->dead_watches;   /* freed after this turn */
    w->c->dead_watches = w;
}

static void timer_fire(kn_sink_client *c, kn_tnode *t)
{
    kn_sink_timer *tm = (kn_sink_timer *)t;
    kn_sink_timer_cb cb = tm->cb;
    void *arg = tm->arg;
    free(tm);
    cb(c, arg);
}

kn_sink_timer *kn_sink_timer_add(kn_sink_client *c, int64_t delay_ms,
                                 kn_sink_timer_cb cb, void *arg)
{
    kn_sink_timer *t;
    if (!kn_sink_client_on_loop(c) || !(t = calloc(1, sizeof *t)))
        return NULL;
    t->c = c;
    t->cb = cb;
    t->arg = arg;
    t->node.fire = timer_fire;
    kn_heap_push(c, &t->node, delay_ms);
    return t;
}

void kn_sink_timer_cancel(kn_sink_timer *t)
{
    if (!t)
        return;
    kn_heap_remove(t->c, &t->node);
    free(t);
}

/* ------------------------------------------------------------ stats */

#define LD(f) atomic_load_explicit(&c->cnt.f, memory_order_relaxed)

void kn_sink_client_stats(kn_sink_client *c, kn_sink_stats *o)
{
    memset(o, 0, sizeof *o);
    o->submitted = LD(submitted);
    o->attempts = LD(attempts);
    o->retries = LD(retries);
    o->resp_2xx = LD(resp_2xx);
    o->resp_4xx = LD(resp_4xx);
    o->resp_5xx = LD(resp_5xx);
    o->resp_other = LD(resp_other);
    o->transport_errors = LD(transport);
    o->delivered = LD(delivered);
    o->dead_lettered = LD(dead_lettered);
    o->failed = LD(failed);
    o->cancelled = LD(cancelled);
    o->dls_attempts = LD(dls_attempts);
    o->replies = LD(replies);
    o->connections = LD(connections);
    o->in_flight = LD(in_flight);
    o->waiting_retry = LD(waiting_retry);
    o->latency_ns_sum = LD(latency_sum);
    o->latency_ns_max = LD(latency_max);
}
