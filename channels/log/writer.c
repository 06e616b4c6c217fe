/*
 * The log's append path. Callers encode their events into a pending
 * buffer on their own thread and queue it; the single writer thread takes
 * everything queued (up to GROUP_MAX bytes), assigns offsets and
 * timestamps, writes the group with one pwritev, makes it durable with one
 * fdatasync (durability "fsync"), publishes it to cursors and runs every
 * completion. A failed write is truncated away, so the file never holds
 * a partial group that later records would follow. Appenders wake the
 * writer only when it sleeps on an empty queue or has gathered enough
 * (see gather()), so a busy writer costs them no wake-up.
 *
 * Also here: segment roll and retention, both on the writer thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "channels/log/codec.h"
#include "channels/log/crc32c.h"
#include "channels/log/log_int.h"

#define GROUP_MAX (8u << 20)
#define IOV_BATCH 1024
#define MAX_VICTIMS 64
/* Group gathering (durability fsync): wait at most half an fdatasync,
 * and never more than 2 ms, for the appenders of the last group. */
#define GATHER_DIV 2
#define GATHER_MAX_NS 2000000

static size_t retention_select(kn_log *lg, kn_seg **victims);
static void retention_unlink(kn_log *lg, kn_seg **victims, size_t nv);

/* ------------------------------------------------------------ appends */

static void pending_free(kn_pending *p)
{
    ce_buf_free(&p->buf);
    free(p);
}

static int encode_all(kn_pending *p, ce_event *const *evs, size_t n)
{
    static const unsigned char zero[KN_REC_HDR];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) /* one allocation for the whole call */
        if (evs[i] && total < KN_LOG_BATCH_MAX)
            total += KN_REC_HDR + kn_logcodec_size(evs[i]);
    if (ce_buf_reserve(&p->buf, total < KN_LOG_BATCH_MAX
                                    ? total : KN_LOG_BATCH_MAX) != CE_OK)
        return KN_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t at = p->buf.len;
        if (!evs[i])
            return KN_INVAL;
        if (ce_buf_append(&p->buf, zero, sizeof zero) != CE_OK)
            return KN_NOMEM;
        int rc = kn_logcodec_encode(evs[i], &p->buf);
        if (rc != KN_OK)
            return rc;
        size_t len = p->buf.len - at - KN_REC_HDR;
        if (len > KN_REC_MAX || p->buf.len > KN_LOG_BATCH_MAX)
            return KN_TOOBIG;
        kn_put32((unsigned char *)p->buf.data + at + 4, (uint32_t)len);
    }
    return KN_OK;
}

/* Wakes the writer; the appender that queued the awaited append has
 * already cleared writer_idle / q_want under qmu, so later appenders do
 * not signal again (possibly deferred to the end of a defer scope). */
static void wake_writer(void *arg)
{
    kn_log *lg = arg;
    pthread_cond_signal(&lg->cv);
}

int kn_log_append(kn_channel *ch, ce_event *const *evs, size_t n,
                  kn_append_cb cb, void *arg)
{
    kn_log *lg = (kn_log *)ch;
    kn_pending *p;
    int rc;

    if (n > 0 && !evs)
        return KN_INVAL;
    if (!(p = calloc(1, sizeof *p)))
        return KN_NOMEM;
    if ((rc = encode_all(p, evs, n)) != KN_OK) {
        pending_free(p);
        return rc;
    }
    p->n = n;
    p->cb = cb;
    p->arg = arg;
    pthread_mutex_lock(&lg->qmu);
    if (lg->stopping) {
        pthread_mutex_unlock(&lg->qmu);
        pending_free(p);
        return KN_CLOSED;
    }
    *lg->q_tail = p;
    lg->q_tail = &p->next;
    lg->q_count++;
    /* wake the writer only when it waits for exactly this */
    bool wake = lg->writer_idle || (lg->q_want && lg->q_count >= lg->q_want);
    if (wake) {
        lg->writer_idle = false;
        lg->q_want = 0;
    }
    pthread_mutex_unlock(&lg->qmu);
    if (wake && !kn_channel_defer_wake(wake_writer, lg))
        wake_writer(lg);
    return KN_OK;
}

/* -------------------------------------------------------------- index */

int kn_log_write_index(kn_log *lg, kn_seg *s, const kn_idx_entry *e,
                       size_t n)
{
    size_t len = KN_IDX_HDR + n * KN_IDX_ENTRY;
    unsigned char *buf = malloc(len);
    char *path = kn_log_path(lg->dir, s->base, "idx");
    kn_err err;
    int rc = KN_NOMEM;

    if (!buf || !path)
        goto out;
    for (size_t i = 0; i < n; i++)
        kn_idx_entry_build(buf + KN_IDX_HDR + i * KN_IDX_ENTRY, s->base,
                           &e[i]);
    kn_idx_hdr h = {(uint32_t)n, s->base, s->next_offset, s->size,
                    s->first_ts, s->last_ts,
                    kn_crc32c(0, buf + KN_IDX_HDR, n * KN_IDX_ENTRY)};
    kn_idx_header_build(buf, &h);
    rc = kn_write_file_atomic(path, buf, len, &err);
    if (rc != KN_OK)
        KN_ERROR(KN_LOG_COMP, "log %s: cannot write %s: %s", lg->label,
                 path, err.msg);
out:
    free(buf);
    free(path);
    return rc;
}

/* --------------------------------------------------------------- roll */

/* Seals the active segment (synced, index written) and starts a new one
 * at the head offset. On failure the old segment stays active. */
static int roll(kn_log *lg)
{
    kn_seg *old = lg->segs[lg->nsegs - 1], *s;
    int rc;

    if (!lg->set.fsync) {
        if (fdatasync(old->fd) != 0) {
            lg->last_errno = errno;
            return kn_log_status_errno(errno);
        }
        pthread_mutex_lock(&lg->mu);
        lg->st.fsyncs++;
        pthread_mutex_unlock(&lg->mu);
    }
    if ((rc = kn_log_write_index(lg, old, old->idx, old->nidx)) != KN_OK)
        return rc;
    if (!(s = kn_seg_new(lg->dir, lg->head)))
        return KN_NOMEM;
    if ((rc = kn_seg_create(lg, s)) != KN_OK) {
        lg->last_errno = errno;
        KN_ERROR(KN_LOG_COMP, "log %s: cannot create segment %s: %s",
                 lg->label, s->path, kn_status_str(rc));
        kn_seg_unref(s);
        return rc;
    }
    pthread_mutex_lock(&lg->mu);
    rc = kn_log_push_seg(lg, s);
    if (rc == KN_OK) {
        old->sealed = true;
        free(old->idx);
        old->idx = NULL;
        old->nidx = old->capidx = 0;
    }
    pthread_mutex_unlock(&lg->mu);
    if (rc != KN_OK) {
        unlink(s->path);
        kn_seg_unref(s);
        return rc;
    }
    KN_DEBUG(KN_LOG_COMP, "log %s: sealed %s (%" PRIu64 " bytes), new "
             "segment %s", lg->label, old->path, old->size, s->path);
    return KN_OK;
}

/* -------------------------------------------------------------- write */

static void seal_group(kn_log *lg, kn_pending *g, int64_t ts)
{
    uint64_t off = lg->head;
    for (kn_pending *p = g; p; p = p->next) {
        unsigned char *b = (unsigned char *)p->buf.data;
        size_t pos = 0;
        uint32_t left = (uint32_t)p->n;
        p->first = off;
        while (pos < p->buf.len) {
            uint32_t len = kn_get32(b + pos + 4);
            kn_rec_seal(b + pos, len, off++, ts, --left);
            pos += KN_REC_HDR + len;
        }
    }
}

/* Writes the group at the end of the active segment; on failure cuts the
 * file back to its durable size. Returns KN_OK or the failure status. */
static int write_group_bytes(kn_log *lg, kn_seg *act, kn_pending *g)
{
    struct iovec iov[IOV_BATCH];
    off_t at = (off_t)act->size;
    kn_pending *p = g;
    size_t poff = 0;
    int e = 0;

    while (p) {
        int k = 0;
        kn_pending *q = p;
        size_t qoff = poff;
        while (q && k < IOV_BATCH) {
            if (q->buf.len > qoff)
                iov[k++] = (struct iovec){q->buf.data + qoff,
                                          q->buf.len - qoff};
            q = q->next;
            qoff = 0;
        }
        if (k == 0)
            break;
        ssize_t w = pwritev(act->fd, iov, k, at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w == 0 ? ENOSPC : errno;
            break;
        }
        at += w;
        size_t left = (size_t)w;
        while (p && left >= p->buf.len - poff) {
            left -= p->buf.len - poff;
            p = p->next;
            poff = 0;
        }
        poff += left;
    }
    if (e == 0 && lg->set.fsync) {
        int64_t t0 = kn_now_mono_ns();
        if (fdatasync(act->fd) != 0)
            e = errno;
        int64_t took = kn_now_mono_ns() - t0;
        lg->sync_ns = lg->sync_ns ? lg->sync_ns + (took - lg->sync_ns) / 8
                                  : took;
        pthread_mutex_lock(&lg->mu);
        lg->st.fsyncs++;
        pthread_mutex_unlock(&lg->mu);
    }
    if (e == 0)
        return KN_OK;
    if (ftruncate(act->fd, (off_t)act->size) != 0) {
        lg->need_truncate = true;
        KN_ERROR(KN_LOG_COMP, "log %s: cannot cut %s back to %" PRIu64
                 " bytes after a failed write: %s; appends stay refused "
                 "until it succeeds", lg->label, act->path, act->size,
                 strerror(errno));
    }
    lg->last_errno = e;
    return kn_log_status_errno(e);
}

/* Publishes a written group: index points, sizes, head, stats; wakes
 * cursors. */
static void publish(kn_log *lg, kn_seg *act, kn_pending *g, size_t bytes,
                    size_t count, int64_t ts)
{
    pthread_mutex_lock(&lg->mu);
    uint64_t pos = act->size;
    for (kn_pending *p = g; p; p = p->next) {
        const unsigned char *b = (const unsigned char *)p->buf.data;
        for (size_t i = 0, r = 0; i < p->buf.len; r++) {
            uint32_t len = kn_get32(b + i + 4);
            if (act->nidx == 0 ||
                pos - act->last_idx_pos >= lg->set.index_interval)
                kn_seg_index_add(act, p->first + r, pos, ts);
            pos += KN_REC_HDR + len;
            i += KN_REC_HDR + len;
        }
    }
    if (count > 0) {
        if (act->next_offset == act->base)
            act->first_ts = ts;
        act->last_ts = ts;
    }
    act->size += bytes;
    lg->head += count;
    act->next_offset = lg->head;
    lg->st.appended_events += count;
    lg->st.appended_bytes += bytes;
    if (!lg->st.healthy)
        KN_INFO(KN_LOG_COMP, "log %s: appends succeed again", lg->label);
    lg->st.healthy = true;
    kn_log_notify_cursors(lg);
    pthread_mutex_unlock(&lg->mu);
}

static void fail_group(kn_log *lg, size_t count, int st)
{
    pthread_mutex_lock(&lg->mu);
    bool was = lg->st.healthy;
    lg->st.healthy = false;
    lg->st.append_errors += count;
    pthread_mutex_unlock(&lg->mu);
    if (was)
        KN_ERROR(KN_LOG_COMP, "log %s: append failed: %s (%s); appends fail "
                 "until it clears", lg->label, kn_status_str(st),
                 lg->last_errno ? strerror(lg->last_errno) : "see above");
    else
        KN_DEBUG(KN_LOG_COMP, "log %s: append failed again: %s", lg->label,
                 kn_status_str(st));
}

static void write_group(kn_log *lg, kn_pending *g, size_t bytes)
{
    kn_seg *act = lg->segs[lg->nsegs - 1];
    size_t count = 0;
    int st = KN_OK;
    int64_t ts = kn_now_wall_ns();

    for (kn_pending *p = g; p; p = p->next)
        count += p->n;
    if (ts < lg->last_ts)
        ts = lg->last_ts; /* keep timestamps non-decreasing */
    lg->last_errno = 0;
    if (lg->need_truncate) {
        if (ftruncate(act->fd, (off_t)act->size) == 0) {
            lg->need_truncate = false;
        } else {
            lg->last_errno = errno;
            st = kn_log_status_errno(errno);
        }
    }
    if (st == KN_OK && bytes > 0 && act->size > KN_SEG_HDR &&
        act->size + bytes > lg->set.segment_bytes) {
        st = roll(lg);
        act = lg->segs[lg->nsegs - 1];
    }
    if (st == KN_OK && bytes > 0) {
        seal_group(lg, g, ts);
        st = write_group_bytes(lg, act, g);
    }
    if (st == KN_OK) {
        for (kn_pending *p = g; p && bytes == 0; p = p->next)
            p->first = lg->head;
        publish(lg, act, g, bytes, count, ts);
        lg->last_ts = ts;
    } else {
        fail_group(lg, count, st);
    }
    /* retention settles before the acks, so stats are exact for them */
    kn_seg *victims[MAX_VICTIMS];
    size_t nv = st == KN_OK ? retention_select(lg, victims) : 0;
    while (g) {
        kn_pending *next = g->next;
        if (g->cb)
            g->cb(g->arg, st, st == KN_OK ? g->first : 0);
        pending_free(g);
        g = next;
    }
    retention_unlink(lg, victims, nv);
    if (nv == MAX_VICTIMS)
        kn_log_retention(lg);
}

/* Under qmu: takes the queued appends, at most GROUP_MAX bytes (at least
 * one); *count = how many appends. */
static kn_pending *take_group(kn_log *lg, size_t *bytes, size_t *count)
{
    kn_pending *g = lg->q_head, *last = g;
    size_t b = g->buf.len, n = 1;
    while (last->next && b + last->next->buf.len <= GROUP_MAX) {
        last = last->next;
        b += last->buf.len;
        n++;
    }
    lg->q_head = last->next;
    if (!lg->q_head)
        lg->q_tail = &lg->q_head;
    last->next = NULL;
    lg->q_count -= n;
    *bytes = b;
    *count = n;
    return g;
}

static bool retention_on(const kn_log *lg)
{
    return lg->set.retention_bytes || lg->set.retention_ms ||
           lg->set.retention_max_bytes;
}

static void deadline_in(struct timespec *ts, int64_t ns)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ns / 1000000000);
    ts->tv_nsec += (long)(ns % 1000000000);
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Under qmu: sleeps until an append is queued or the log stops. Age
 * retention also runs while no appends arrive. */
static void wait_for_appends(kn_log *lg)
{
    while (!lg->q_head && !lg->stopping) {
        lg->writer_idle = true;
        if (!lg->set.retention_ms) {
            pthread_cond_wait(&lg->cv, &lg->qmu);
            continue;
        }
        struct timespec ts;
        deadline_in(&ts, (lg->set.retention_ms < 1000
                          ? lg->set.retention_ms : 1000) * 1000000);
        if (pthread_cond_timedwait(&lg->cv, &lg->qmu, &ts) == ETIMEDOUT) {
            lg->writer_idle = false;
            pthread_mutex_unlock(&lg->qmu);
            kn_log_retention(lg);
            pthread_mutex_lock(&lg->qmu);
        }
    }
    lg->writer_idle = false;
}

/* Under qmu, durability fsync: the appenders completed by the last group
 * usually come back at once with their next append. Starting the next
 * fdatasync with only the first of them would split the appenders into
 * two alternating groups, each waiting for the other's fdatasync; so the
 * writer waits, for a fraction of one fdatasync at most, until as many
 * appends are queued as were in flight around the last group. */
static void gather(kn_log *lg)
{
    int64_t wait = lg->sync_ns / GATHER_DIV;
    if (wait > GATHER_MAX_NS)
        wait = GATHER_MAX_NS;
    if (wait <= 0)
        return;
    struct timespec ts;
    deadline_in(&ts, wait);
    lg->q_want = lg->gather;
    while (lg->q_want && lg->q_count < lg->q_want && !lg->stopping)
        if (pthread_cond_timedwait(&lg->cv, &lg->qmu, &ts) == ETIMEDOUT)
            break;
    lg->q_want = 0;
}

void *kn_log_writer_main(void *arg)
{
    kn_log *lg = arg;
    pthread_mutex_lock(&lg->qmu);
    for (;;) {
        wait_for_appends(lg);
        if (!lg->q_head)
            break;
        if (lg->set.fsync && lg->gather > lg->q_count && !lg->stopping)
            gather(lg);
        size_t bytes, n;
        kn_pending *g = take_group(lg, &bytes, &n);
        pthread_mutex_unlock(&lg->qmu);
        write_group(lg, g, bytes);
        pthread_mutex_lock(&lg->qmu);
        lg->gather = n + lg->q_count;
    }
    pthread_mutex_unlock(&lg->qmu);
    return NULL;
}

/* ---------------------------------------------------------- retention */

/* Under mu: the lowest committed position over all groups. */
static uint64_t min_committed(const kn_log *lg)
{
    uint64_t m = UINT64_MAX;
    for (const kn_group *g = lg->groups; g; g = g->next)
        if (g->committed < m)
            m = g->committed;
    return m;
}

static void warn_forced(const kn_log *lg, const kn_seg *s)
{
    char names[512] = "";
    size_t used = 0;
    for (const kn_group *g = lg->groups; g && used < sizeof names - 1;
         g = g->next)
        if (g->committed < s->next_offset)
            used += (size_t)snprintf(names + used, sizeof names - used,
                                     "%s%s@%" PRIu64, used ? ", " : "",
                                     g->name, g->committed);
    KN_WARN(KN_LOG_COMP, "log %s: retention.max.bytes forces deleting %s "
            "(offsets [%" PRIu64 ", %" PRIu64 ")) before these cursors "
            "committed it: %s", lg->label, s->path, s->base,
            s->next_offset, names);
}

/* Takes the segments retention deletes out of the list (stats updated at
 * once, so they are exact when appends complete); the files are removed
 * by retention_unlink. Writer thread. */
static size_t retention_select(kn_log *lg, kn_seg **victims)
{
    size_t nv = 0;
    const kn_log_settings *c = &lg->set;
    int64_t now = kn_now_wall_ns();
    /* segments whose newest record is older than this expire by age */
    int64_t age_cut = c->retention_ms > 0 && c->retention_ms < now / 1000000
                          ? now - c->retention_ms * 1000000 : INT64_MIN;

    if (!retention_on(lg))
        return 0;
    pthread_mutex_lock(&lg->mu);
    uint64_t total = 0, minc = min_committed(lg);
    for (size_t i = 0; i < lg->nsegs; i++)
        total += lg->segs[i]->size;
    while (lg->nsegs > 1 && nv < MAX_VICTIMS) {
        kn_seg *s = lg->segs[0];
        bool by_size = c->retention_bytes && total > c->retention_bytes;
        bool by_age = s->last_ts < age_cut;
        bool by_max = c->retention_max_bytes &&
                      total > c->retention_max_bytes;
        if (!by_size && !by_age && !by_max)
            break;
        if (s->next_offset > minc) {
            if (!by_max)
                break; /* a cursor still needs it */
            lg->st.retention_forced++;
            warn_forced(lg, s);
        }
        memmove(lg->segs, lg->segs + 1, (lg->nsegs - 1) * sizeof *lg->segs);
        lg->nsegs--;
        total -= s->size;
        lg->st.retention_deleted_events += s->next_offset - s->base;
        lg->st.retention_deleted_bytes += s->size;
        victims[nv++] = s;
    }
    pthread_mutex_unlock(&lg->mu);
    return nv;
}

/* Removes the files of selected segments (cursors still reading one keep
 * its open descriptor). Writer thread. */
static void retention_unlink(kn_log *lg, kn_seg **victims, size_t nv)
{
    for (size_t i = 0; i < nv; i++) {
        kn_seg *s = victims[i];
        char *ipath = kn_log_path(lg->dir, s->base, "idx");
        if (unlink(s->path) != 0)
            KN_ERROR(KN_LOG_COMP, "log %s: cannot delete %s: %s", lg->label,
                     s->path, strerror(errno));
        if (ipath)
            unlink(ipath);
        free(ipath);
        KN_INFO(KN_LOG_COMP, "log %s: retention deleted %s (%" PRIu64
                " events, %" PRIu64 " bytes)", lg->label, s->path,
                s->next_offset - s->base, s->size);
        kn_seg_unref(s);
    }
    if (nv > 0)
        fsync(lg->dir_fd);
}

void kn_log_retention(kn_log *lg)
{
    kn_seg *victims[MAX_VICTIMS];
    size_t nv;
    do {
        nv = retention_select(lg, victims);
        retention_unlink(lg, victims, nv);
    } while (nv == MAX_VICTIMS);
}
