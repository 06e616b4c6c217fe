/*
 * The "memory" channel backend, for unit tests of the layers above: the
 * same interface and semantics as the log (asynchronous all-or-nothing
 * appends completed on a backend thread, consecutive offsets, named
 * cursors with committed positions, seeks, an eventfd per cursor) but
 * nothing is durable: events and positions live until close.
 *
 * Tests can program failures (kn_channel_memory_fail: the next appends
 * complete with a given status) and hold completions back
 * (kn_channel_memory_pause) to observe appends in flight.
 *
 * Settings: "retention.events" (keep at most N events; older ones are
 * dropped unless a cursor has not committed them). Other keys are
 * ignored (the broker passes log settings through).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "channels/channel.h"

#define COMP "memory"

typedef struct mrec {
    ce_event *ev;
    int64_t ts;
} mrec;

typedef struct mpend {
    struct mpend *next;
    ce_event **evs;
    size_t n;
    kn_append_cb cb;
    void *arg;
} mpend;

typedef struct mgroup {
    struct mgroup *next;
    char *name;
    uint64_t committed;
    bool stored;
    int opens;
} mgroup;

typedef struct mcursor mcursor;

typedef struct kn_mem {
    kn_channel base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thr;
    bool stopping, paused;
    mpend *q_head, **q_tail;
    mrec *recs;          /* recs[i] has offset first + i */
    size_t n, cap;
    uint64_t first;
    uint64_t keep;       /* retention.events, 0 = all */
    int64_t last_ts;
    mgroup *groups;
    mcursor *cursors;
    int fail_status;
    unsigned fail_count;
    kn_channel_stats st;
} kn_mem;

struct mcursor {
    kn_cursor base;
    mcursor *next;
    kn_mem *m;
    mgroup *g;
    uint64_t off;
    int efd;
    bool armed;
};

static uint64_t head(const kn_mem *m)
{
    return m->first + m->n;
}

/* ------------------------------------------------------------ appends */

static void mpend_free(mpend *p)
{
    for (size_t i = 0; i < p->n; i++)
        ce_event_unref(p->evs[i]);
    free(p->evs);
    free(p);
}

static int grow(kn_mem *m, size_t extra)
{
    if (m->n + extra <= m->cap)
        return KN_OK;
    size_t cap = m->cap ? m->cap : 64;
    while (cap < m->n + extra)
        cap *= 2;
    mrec *r = realloc(m->recs, cap * sizeof *r);
    if (!r)
        return KN_NOMEM;
    m->recs = r;
    m->cap = cap;
    return KN_OK;
}

static uint64_t min_committed(const kn_mem *m)
{
    uint64_t v = UINT64_MAX;
    for (const mgroup *g = m->groups; g; g = g->next)
        if (g->stored && g->committed < v)
            v = g->committed;
    return v;
}

/* Under mu: drops the oldest events beyond retention.events that every
 * cursor has committed. */
static void retain(kn_mem *m)
{
    if (!m->keep || m->n <= m->keep)
        return;
    uint64_t drop = m->n - m->keep, minc = min_committed(m);
    if (minc != UINT64_MAX && m->first + drop > minc)
        drop = minc > m->first ? minc - m->first : 0;
    for (size_t i = 0; i < drop; i++)
        ce_event_unref(m->recs[i].ev);
    memmove(m->recs, m->recs + drop, (m->n - drop) * sizeof *m->recs);
    m->n -= drop;
    m->first += drop;
    m->st.retention_deleted_events += drop;
}

static void notify(kn_mem *m)
{
    for (mcursor *c = m->cursors; c; c = c->next)
        if (c->armed) {
            c->armed = false;
            eventfd_write(c->efd, 1);
        }
}

/* Under mu: stores one pending append, returns its status. */
static int store(kn_mem *m, mpend *p, uint64_t *first)
{
    if (m->fail_count > 0) {
        m->fail_count--;
        m->st.healthy = false;
        m->st.append_errors += p->n;
        return m->fail_status;
    }
    if (grow(m, p->n) != KN_OK) {
        m->st.append_errors += p->n;
        return KN_NOMEM;
    }
    int64_t ts = kn_now_wall_ns();
    if (ts < m->last_ts)
        ts = m->last_ts;
    m->last_ts = ts;
    *first = head(m);
    for (size_t i = 0; i < p->n; i++) {
        m->recs[m->n++] = (mrec){p->evs[i], ts};
        p->evs[i] = NULL; /* the store owns the reference now */
    }
    m->st.appended_events += p->n;
    m->st.healthy = true;
    retain(m);
    notify(m);
    return KN_OK;
}

static void *mem_thread(void *arg)
{
    kn_mem *m = arg;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        while ((!m->q_head || m->paused) && !m->stopping)
            pthread_cond_wait(&m->cv, &m->mu);
        if (!m->q_head)
            break;
        mpend *p = m->q_head;
        m->q_head = p->next;
        if (!m->q_head)
            m->q_tail = &m->q_head;
        uint64_t first = 0;
        int st = store(m, p, &first);
        pthread_mutex_unlock(&m->mu);
        if (p->cb)
            p->cb(p->arg, st, first);
        mpend_free(p);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static int mem_append(kn_channel *ch, ce_event *const *evs, size_t n,
                      kn_append_cb cb, void *arg)
{
    kn_mem *m = (kn_mem *)ch;
    mpend *p = calloc(1, sizeof *p);

    if (!p || (n && !(p->evs = calloc(n, sizeof *p->evs)))) {
        free(p);
        return KN_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!evs[i]) {
            mpend_free(p);
            return KN_INVAL;
        }
        p->evs[p->n++] = ce_event_ref(evs[i]);
    }
    p->cb = cb;
    p->arg = arg;
    pthread_mutex_lock(&m->mu);
    if (m->stopping) {
        pthread_mutex_unlock(&m->mu);
        mpend_free(p);
        return KN_CLOSED;
    }
    *m->q_tail = p;
    m->q_tail = &p->next;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return KN_OK;
}

int kn_channel_memory_fail(kn_channel *ch, int status, unsigned count)
{
    if (!ch || ch->ops != &kn_channel_memory_ops || status >= 0)
        return KN_INVAL;
    kn_mem *m = (kn_mem *)ch;
    pthread_mutex_lock(&m->mu);
    m->fail_status = status;
    m->fail_count = count;
    pthread_mutex_unlock(&m->mu);
    return KN_OK;
}

int kn_channel_memory_pause(kn_channel *ch, bool paused)
{
    if (!ch || ch->ops != &kn_channel_memory_ops)
        return KN_INVAL;
    kn_mem *m = (kn_mem *)ch;
    pthread_mutex_lock(&m->mu);
    m->paused = paused;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return KN_OK;
}

/* ------------------------------------------------------------ cursors */

static mgroup *group_get(kn_mem *m, const char *name)
{
    for (mgroup *g = m->groups; g; g = g->next)
        if (strcmp(g->name, name) == 0)
            return g;
    mgroup *g = calloc(1, sizeof *g);
    if (!g || !(g->name = strdup(name))) {
        free(g);
        return NULL;
    }
    g->next = m->groups;
    m->groups = g;
    return g;
}

/* Under mu: first offset whose timestamp is >= t. */
static uint64_t offset_for_time(const kn_mem *m, int64_t t)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->recs[mid].ts < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return m->first + lo;
}

static int mem_seek(kn_cursor *cur, const kn_seek *to, kn_err *err)
{
    mcursor *c = (mcursor *)cur;
    kn_mem *m = c->m;
    uint64_t off;
    bool persist = true;

    pthread_mutex_lock(&m->mu);
    switch (to->kind) {
    case KN_SEEK_COMMITTED:
        persist = !c->g->stored;
        off = c->g->stored ? c->g->committed : head(m);
        break;
    case KN_SEEK_END:
        off = head(m);
        break;
    case KN_SEEK_START:
        off = m->first;
        break;
    case KN_SEEK_OFFSET:
        off = to->offset;
        break;
    case KN_SEEK_TIME:
        off = offset_for_time(m, to->time_ns);
        break;
    default:
        pthread_mutex_unlock(&m->mu);
        return kn_err_set(err, KN_INVAL, "unknown seek kind %d", to->kind);
    }
    if (off > head(m))
        off = head(m);
    if (off < m->first)
        off = m->first;
    c->off = off;
    if (persist) {
        c->g->committed = off;
        c->g->stored = true;
    }
    pthread_mutex_unlock(&m->mu);
    eventfd_write(c->efd, 1);
    return KN_OK;
}

static void mem_cursor_close(kn_cursor *cur);

/* The hints (opts) are ignored: nothing here depends on them. */
static int mem_cursor_open(kn_channel *ch, const char *group,
                           const kn_seek *start, const kn_cursor_opts *opts,
                           kn_cursor **out, kn_err *err)
{
    static const kn_seek committed = {KN_SEEK_COMMITTED, 0, 0};
    kn_mem *m = (kn_mem *)ch;
    mcursor *c;

    (void)opts;
    *out = NULL;
    if (!group || !*group)
        return kn_err_set(err, KN_INVAL, "cursor group name is empty");
    if (!(c = calloc(1, sizeof *c)))
        return kn_err_set(err, KN_NOMEM, "out of memory");
    c->base.channel = ch;
    c->m = m;
    if ((c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        free(c);
        return kn_err_set(err, KN_IO, "eventfd: %s", strerror(errno));
    }
    pthread_mutex_lock(&m->mu);
    c->g = group_get(m, group);
    if (c->g) {
        c->g->opens++;
        c->next = m->cursors;
        m->cursors = c;
    }
    pthread_mutex_unlock(&m->mu);
    if (!c->g) {
        close(c->efd);
        free(c);
        return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    int rc = mem_seek(&c->base, start ? start : &committed, err);
    if (rc != KN_OK) {
        mem_cursor_close(&c->base);
        return rc;
    }
    *out = &c->base;
    return KN_OK;
}

static int mem_cursor_next(kn_cursor *cur, kn_record *recs, size_t max)
{
    mcursor *c = (mcursor *)cur;
    kn_mem *m = c->m;
    size_t n = 0;

    pthread_mutex_lock(&m->mu);
    if (c->off < m->first)
        c->off = m->first; /* dropped by retention */
    while (n < max && c->off < head(m)) {
        const mrec *r = &m->recs[c->off - m->first];
        recs[n++] = (kn_record){ce_event_ref(r->ev), c->off, 0, r->ts};
        c->off++;
    }
    bool more = c->off < head(m);
    if (!more)
        c->armed = true;
    pthread_mutex_unlock(&m->mu);
    if (more)
        eventfd_write(c->efd, 1);
    return (int)n;
}

static int mem_cursor_fd(kn_cursor *cur)
{
    return ((mcursor *)cur)->efd;
}

static void mem_cursor_drain(kn_cursor *cur)
{
    eventfd_t v;
    eventfd_read(((mcursor *)cur)->efd, &v);
}

static int mem_cursor_commit(kn_cursor *cur, int32_t partition,
                             uint64_t next)
{
    mcursor *c = (mcursor *)cur;
    int rc = KN_OK;
    if (partition != 0)
        return KN_INVAL;
    pthread_mutex_lock(&c->m->mu);
    if (next > head(c->m)) {
        rc = KN_INVAL;
    } else {
        c->g->committed = next;
        c->g->stored = true;
    }
    pthread_mutex_unlock(&c->m->mu);
    return rc;
}

static void mem_cursor_close(kn_cursor *cur)
{
    mcursor *c = (mcursor *)cur;
    if (!c)
        return;
    kn_mem *m = c->m;
    pthread_mutex_lock(&m->mu);
    for (mcursor **pp = &m->cursors; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    c->g->opens--;
    pthread_mutex_unlock(&m->mu);
    close(c->efd);
    free(c);
}

static int mem_cursor_delete(kn_channel *ch, const char *group)
{
    kn_mem *m = (kn_mem *)ch;
    int rc = KN_NOTFOUND;
    pthread_mutex_lock(&m->mu);
    for (mgroup **pp = &m->groups; *pp; pp = &(*pp)->next) {
        mgroup *g = *pp;
        if (strcmp(g->name, group) != 0)
            continue;
        if (g->opens > 0) {
            rc = KN_EXISTS;
        } else {
            *pp = g->next;
            free(g->name);
            free(g);
            rc = KN_OK;
        }
        break;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ------------------------------------------------------ open / close */

static void mem_stats(kn_channel *ch, kn_channel_stats *out)
{
    kn_mem *m = (kn_mem *)ch;
    pthread_mutex_lock(&m->mu);
    *out = m->st;
    out->head_offset = head(m);
    out->first_offset = m->first;
    out->segments = 1;
    pthread_mutex_unlock(&m->mu);
}

static void mem_free(kn_mem *m)
{
    for (size_t i = 0; i < m->n; i++)
        ce_event_unref(m->recs[i].ev);
    free(m->recs);
    while (m->groups) {
        mgroup *g = m->groups;
        m->groups = g->next;
        free(g->name);
        free(g);
    }
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}

static int mem_open(const kn_channel_config *cfg, kn_channel **out,
                    kn_err *err)
{
    kn_mem *m = calloc(1, sizeof *m);
    const json_t *keep = cfg && cfg->settings
                             ? json_object_get(cfg->settings,
                                               "retention.events")
                             : NULL;
    *out = NULL;
    if (!m)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    m->base.ops = &kn_channel_memory_ops;
    m->q_tail = &m->q_head;
    m->st.healthy = true;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    if (keep) {
        const char *s = json_is_string(keep) ? json_string_value(keep) : "";
        char *end;
        long long v = json_is_integer(keep) ? json_integer_value(keep)
                                            : strtoll(s, &end, 10);
        if (v < 0 || (json_is_string(keep) && (!*s || *end))) {
            mem_free(m);
            return kn_err_set(err, KN_INVAL, "setting retention.events: "
                              "expected a non-negative integer");
        }
        m->keep = (uint64_t)v;
    }
    int rc = pthread_create(&m->thr, NULL, mem_thread, m);
    if (rc != 0) {
        mem_free(m);
        return kn_err_set(err, KN_NOMEM, "memory channel: cannot start its "
                          "thread: %s", strerror(rc));
    }
    *out = &m->base;
    return KN_OK;
}

static void mem_close(kn_channel *ch)
{
    kn_mem *m = (kn_mem *)ch;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    m->paused = false; /* pending appends still complete */
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thr, NULL);
    if (m->cursors)
        KN_ERROR(COMP, "memory channel closed with cursors still open");
    mem_free(m);
}

const kn_channel_ops kn_channel_memory_ops = {
    .name = "memory",
    .version = 1,
    .open = mem_open,
    .append = mem_append,
    .cursor_open = mem_cursor_open,
    .cursor_next = mem_cursor_next,
    .cursor_fd = mem_cursor_fd,
    .cursor_drain_notify = mem_cursor_drain,
    .cursor_commit = mem_cursor_commit,
    .cursor_seek = mem_seek,
    .cursor_close = mem_cursor_close,
    .cursor_delete = mem_cursor_delete,
    .stats = mem_stats,
    .close = mem_close,
};
