/*
 * Cursors of the Kafka channel: each cursor is one member of a consumer
 * group (one rd_kafka_t consumer), subscribed to the broker's topic, with
 * manual commits of explicit offsets.
 *
 * Positions: opening with KN_SEEK_COMMITTED initialises every partition
 * that has no committed offset to its end and commits that (a new trigger
 * sees events appended from its creation on, as Knative's initial offset
 * "latest", and keeps them across a restart before its first commit).
 * Other seeks resolve an offset per partition (ListOffsets / offsets for
 * times) and commit it. A commit the group refuses (it has other active
 * members) is applied to this cursor's partitions at its next assignment.
 *
 * Rebalances run inside cursor_next (the rebalance callback): on revoke
 * the done offsets of the revoked partitions are committed synchronously
 * and their tracking dropped; later commits for them are ignored (the new
 * owner resumes from the last commit: duplicates, never loss). On assign
 * each partition starts at its committed offset (missing → end,
 * committed).
 *
 * Records that are not CloudEvents are counted, logged and skipped; their
 * offsets count as done: they are committed as soon as every record handed
 * out before them is.
 *
 * Notification: the consumer queue writes to the cursor's eventfd when it
 * turns non-empty (rd_kafka_queue_io_event_enable); cursor_next drains it
 * until empty or writes the eventfd itself when it stopped at `max`.
 *
 * Threads: a cursor is read by one thread at a time (the dispatcher's
 * loop); all its librdkafka callbacks run on that thread, from
 * cursor_next, cursor_seek or cursor_close. cursor_commit may come from
 * another thread (the dispatcher's committer) concurrently: the partition
 * table is under the cursor's mutex, never held across a blocking call.
 * open/seek/close/delete block on the cluster (each call bounded by
 * KN_KAFKA_CALL_MS).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "channels/kafka/kafka_int.h"

#define GROUP_MAX 200

typedef struct kpart {
    bool owned;
    int64_t handed;   /* offset + 1 of the last record handed out, -1 */
    int64_t pos;      /* offset + 1 of the last record read, -1 */
    int64_t done;     /* highest next-offset committed, -1 */
} kpart;

typedef struct kn_kcursor {
    kn_cursor base;
    kn_kafka *k;
    char *group;          /* knit's name */
    char *gid;            /* Kafka group id */
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int efd;
    bool subscribed;
    pthread_mutex_t mu;   /* parts, nparts, pending */
    kpart *parts;
    int32_t nparts;
    kn_kafka_open node;   /* on k->open while open */
    int64_t *pending;     /* seek targets for the next assignment */
    int32_t npending;
    ce_header *hdrs;      /* scratch for decoding */
    size_t hcap;
} kn_kcursor;

static const kpart g_fresh = {false, -1, -1, -1};

/* ------------------------------------------------------------ helpers */

/* Under mu. */
static int parts_ensure(kn_kcursor *c, int32_t n)
{
    if (n <= c->nparts)
        return KN_OK;
    kpart *p = realloc(c->parts, (size_t)n * sizeof *p);
    if (!p)
        return KN_NOMEM;
    for (int32_t i = c->nparts; i < n; i++)
        p[i] = g_fresh;
    c->parts = p;
    c->nparts = n;
    return KN_OK;
}

static rd_kafka_topic_partition_list_t *list_all(const char *topic,
                                                 int32_t n, int64_t off)
{
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(n);
    for (int32_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = off;
    return l;
}

/* Partitions of the topic, asked on the cursor's own handle (a consumer:
 * no auto-creation). */
static int topic_partitions(kn_kcursor *c, int32_t *n, kn_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(c->rk, c->k->set.topic, NULL);
    rd_kafka_resp_err_t e = t ? rd_kafka_metadata(c->rk, 0, t, &md,
                                                  KN_KAFKA_CALL_MS)
                              : rd_kafka_last_error();
    int rc = KN_OK;
    if (t)
        rd_kafka_topic_destroy(t);
    if (!e && (md->topic_cnt != 1 || md->topics[0].err ||
               md->topics[0].partition_cnt <= 0))
        e = md->topic_cnt == 1 && md->topics[0].err
                ? md->topics[0].err
                : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (e)
        rc = kn_err_set(err, KN_UNAVAILABLE, "kafka %s: metadata of topic "
                        "%s: %s", c->k->label, c->k->set.topic,
                        rd_kafka_err2str(e));
    else
        *n = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    return rc;
}

/* ListOffsets for every entry of l (offset fields hold timestamps in ms,
 * or -1 = end, -2 = start); results replace them. */
static int list_offsets(kn_kcursor *c, rd_kafka_topic_partition_list_t *l,
                        kn_err *err)
{
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(c->rk, l,
                                                       KN_KAFKA_CALL_MS);
    for (int i = 0; !e && i < l->cnt; i++)
        e = l->elems[i].err;
    if (e)
        return kn_err_set(err, KN_UNAVAILABLE, "kafka %s: cannot list the "
                          "offsets of topic %s: %s", c->k->label,
                          c->k->set.topic, rd_kafka_err2str(e));
    return KN_OK;
}

/* Commits l and waits for the answer for at most KN_KAFKA_CALL_MS:
 * rd_kafka_commit(.., 0) waits without a bound, and a coordinator that
 * never answers (seen with the mock cluster while a group rebalances
 * during a shutdown) would hold the calling thread for good. Per-partition
 * errors are in l only when the answer came. Any thread. */
static rd_kafka_resp_err_t commit_bounded(kn_kcursor *c,
                                          rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    if (!q)
        return RD_KAFKA_RESP_ERR__FAIL;
    rd_kafka_resp_err_t e = rd_kafka_commit_queue(c->rk, l, q, NULL, NULL);
    if (!e) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, KN_KAFKA_CALL_MS);
        if (!ev) {
            e = RD_KAFKA_RESP_ERR__TIMED_OUT;
        } else {
            e = rd_kafka_event_error(ev);
            const rd_kafka_topic_partition_list_t *r =
                rd_kafka_event_topic_partition_list(ev);
            for (int i = 0; !e && r && i < r->cnt; i++)
                e = r->elems[i].err;
            rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q);
    return e;
}

/* The group's committed offsets into l (RD_KAFKA_OFFSET_INVALID where
 * there is none); entries without one get the partition's end and, with
 * init, that end is committed. */
static int committed_or_end(kn_kcursor *c, rd_kafka_topic_partition_list_t *l,
                            bool init, kn_err *err)
{
    rd_kafka_resp_err_t e = rd_kafka_committed(c->rk, l, KN_KAFKA_CALL_MS);
    for (int i = 0; !e && i < l->cnt; i++)
        e = l->elems[i].err;
    if (e)
        return kn_err_set(err, KN_UNAVAILABLE, "kafka %s: cannot read the "
                          "committed offsets of group %s: %s", c->k->label,
                          c->gid, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_t *miss =
        rd_kafka_topic_partition_list_new(l->cnt);
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].offset < 0)
            rd_kafka_topic_partition_list_add(miss, l->elems[i].topic,
                                              l->elems[i].partition)
                ->offset = RD_KAFKA_OFFSET_END;
    int rc = KN_OK;
    if (miss->cnt > 0 && (rc = list_offsets(c, miss, err)) == KN_OK) {
        for (int i = 0; i < miss->cnt; i++)
            rd_kafka_topic_partition_list_find(l, miss->elems[i].topic,
                                               miss->elems[i].partition)
                ->offset = miss->elems[i].offset;
        if (init && (e = commit_bounded(c, miss)))
            rc = kn_err_set(err, e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID
                                     ? KN_EXISTS : KN_UNAVAILABLE,
                            "kafka %s: cannot store the initial offsets of "
                            "group %s: %s", c->k->label, c->gid,
                            rd_kafka_err2str(e));
        else if (init)
            KN_INFO(KN_KAFKA_COMP, "kafka %s: group %s starts at the end "
                    "of %d partition(s)", c->k->label, c->gid, miss->cnt);
    }
    rd_kafka_topic_partition_list_destroy(miss);
    return rc;
}

/* One offset per partition of the topic for a seek (not COMMITTED). */
static int resolve(kn_kcursor *c, const kn_seek *to,
                   rd_kafka_topic_partition_list_t **out, kn_err *err)
{
    const char *t = c->k->set.topic;
    rd_kafka_topic_partition_list_t *l = NULL, *hi = NULL;
    int32_t n;
    int rc;

    *out = NULL;
    if ((rc = topic_partitions(c, &n, err)) != KN_OK)
        return rc;
    switch (to->kind) {
    case KN_SEEK_END:
        l = list_all(t, n, RD_KAFKA_OFFSET_END);
        break;
    case KN_SEEK_START:
    case KN_SEEK_OFFSET:
        l = list_all(t, n, RD_KAFKA_OFFSET_BEGINNING);
        break;
    case KN_SEEK_TIME:
        l = list_all(t, n, to->time_ns < 0 ? 0 : to->time_ns / 1000000);
        break;
    default:
        return kn_err_set(err, KN_INVAL, "kafka: seek kind %d here",
                          to->kind);
    }
    if ((rc = list_offsets(c, l, err)) != KN_OK)
        goto out;
    if (to->kind == KN_SEEK_OFFSET || to->kind == KN_SEEK_TIME) {
        hi = list_all(t, n, RD_KAFKA_OFFSET_END);
        if ((rc = list_offsets(c, hi, err)) != KN_OK)
            goto out;
        for (int i = 0; i < n; i++) {
            int64_t *o = &l->elems[i].offset, end = hi->elems[i].offset;
            if (to->kind == KN_SEEK_TIME && *o < 0)
                *o = end; /* nothing at or after that time */
            if (to->kind == KN_SEEK_OFFSET)
                *o = to->offset > (uint64_t)end ? end
                     : (int64_t)to->offset < *o ? *o
                                                : (int64_t)to->offset;
        }
    }
out:
    if (hi)
        rd_kafka_topic_partition_list_destroy(hi);
    if (rc == KN_OK)
        *out = l;
    else
        rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

static void keep_pending(kn_kcursor *c,
                         const rd_kafka_topic_partition_list_t *l)
{
    int32_t n = 0;
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].partition + 1 > n)
            n = l->elems[i].partition + 1;
    int64_t *p = malloc((size_t)n * sizeof *p);
    if (!p)
        return;
    for (int32_t i = 0; i < n; i++)
        p[i] = -1;
    for (int i = 0; i < l->cnt; i++)
        p[l->elems[i].partition] = l->elems[i].offset;
    pthread_mutex_lock(&c->mu);
    free(c->pending);
    c->pending = p;
    c->npending = n;
    pthread_mutex_unlock(&c->mu);
}

/* ---------------------------------------------------------- callbacks */

static void on_assign(kn_kcursor *c, rd_kafka_topic_partition_list_t *l)
{
    kn_err err;
    int32_t maxp = 0;
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].partition + 1 > maxp)
            maxp = l->elems[i].partition + 1;
    pthread_mutex_lock(&c->mu);
    int rc = parts_ensure(c, maxp);
    int64_t *pending = c->pending;
    int32_t npending = c->npending;
    c->pending = NULL;
    c->npending = 0;
    pthread_mutex_unlock(&c->mu);
    if (rc != KN_OK)
        KN_ERROR(KN_KAFKA_COMP, "kafka %s: out of memory", c->k->label);
    if (pending) {
        rd_kafka_topic_partition_list_t *mine =
            rd_kafka_topic_partition_list_new(l->cnt);
        for (int i = 0; i < l->cnt; i++) {
            int32_t p = l->elems[i].partition;
            if (p < npending && pending[p] >= 0) {
                l->elems[i].offset = pending[p];
                rd_kafka_topic_partition_list_add(mine, l->elems[i].topic,
                                                  p)->offset = pending[p];
            }
        }
        rd_kafka_resp_err_t e = mine->cnt ? commit_bounded(c, mine)
                                          : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (e)
            KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: cannot commit the "
                    "seek position: %s", c->k->label, c->gid,
                    rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(mine);
        free(pending);
    }
    rd_kafka_topic_partition_list_t *rest =
        rd_kafka_topic_partition_list_new(l->cnt);
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].offset < 0)
            rd_kafka_topic_partition_list_add(rest, l->elems[i].topic,
                                              l->elems[i].partition);
    if (rest->cnt > 0) {
        if (committed_or_end(c, rest, true, &err) != KN_OK)
            KN_WARN(KN_KAFKA_COMP, "%s; librdkafka picks the start "
                    "positions", err.msg);
        for (int i = 0; i < rest->cnt; i++)
            rd_kafka_topic_partition_list_find(l, rest->elems[i].topic,
                                               rest->elems[i].partition)
                ->offset = rest->elems[i].offset >= 0
                               ? rest->elems[i].offset
                               : RD_KAFKA_OFFSET_INVALID;
    }
    rd_kafka_topic_partition_list_destroy(rest);
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < l->cnt; i++) {
        int32_t p = l->elems[i].partition;
        if (p < c->nparts) {
            c->parts[p] = g_fresh;
            c->parts[p].owned = true;
        }
        KN_DEBUG(KN_KAFKA_COMP, "kafka %s: group %s: partition %" PRId32
                 " assigned at %" PRId64, c->k->label, c->gid, p,
                 l->elems[i].offset);
    }
    pthread_mutex_unlock(&c->mu);
}

static void on_revoke(kn_kcursor *c, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_topic_partition_list_t *done =
        rd_kafka_topic_partition_list_new(l->cnt);
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < l->cnt; i++) {
        int32_t p = l->elems[i].partition;
        if (p >= c->nparts)
            continue;
        if (c->parts[p].owned && c->parts[p].done >= 0)
            rd_kafka_topic_partition_list_add(done, l->elems[i].topic, p)
                ->offset = c->parts[p].done;
        c->parts[p] = g_fresh;
    }
    pthread_mutex_unlock(&c->mu);
    rd_kafka_resp_err_t e = done->cnt ? commit_bounded(c, done)
                                      : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (e)
        KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: commit on revoke "
                "failed: %s (the next owner may repeat some events)",
                c->k->label, c->gid, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(done);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *l, void *opaque)
{
    kn_kcursor *c = opaque;
    /* NULL while the consumer is closing (its last revoke) */
    const char *proto = rd_kafka_rebalance_protocol(rk);
    bool coop = proto && strcmp(proto, "COOPERATIVE") == 0;
    rd_kafka_error_t *ce = NULL;

    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(c, l);
        if (coop)
            ce = rd_kafka_incremental_assign(rk, l);
        else
            e = rd_kafka_assign(rk, l);
    } else if (e == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(c, l);
        if (coop)
            ce = rd_kafka_incremental_unassign(rk, l);
        else
            e = rd_kafka_assign(rk, NULL);
    } else {
        KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: rebalance error: %s",
                c->k->label, c->gid, rd_kafka_err2str(e));
        pthread_mutex_lock(&c->mu);
        for (int32_t i = 0; i < c->nparts; i++)
            c->parts[i] = g_fresh;
        pthread_mutex_unlock(&c->mu);
        if (!coop)
            rd_kafka_assign(rk, NULL);
        return;
    }
    if (ce) {
        KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: %s", c->k->label,
                c->gid, rd_kafka_error_string(ce));
        rd_kafka_error_destroy(ce);
    } else if (!coop && e) {
        KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: assign: %s",
                c->k->label, c->gid, rd_kafka_err2str(e));
    }
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                      rd_kafka_topic_partition_list_t *l, void *opaque)
{
    kn_kcursor *c = opaque;
    (void)rk;
    for (int i = 0; !e && l && i < l->cnt; i++)
        e = l->elems[i].err;
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET && kn_kafka_warn_ok(c->k))
        KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: commit failed: %s (a "
                "later commit or the next owner covers it; events may "
                "repeat)", c->k->label, c->gid, rd_kafka_err2str(e));
}

static void consumer_error_cb(rd_kafka_t *rk, int e, const char *reason,
                              void *opaque)
{
    kn_kcursor *c = opaque;
    (void)rk;
    if (kn_kafka_warn_ok(c->k))
        KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: %s: %s", c->k->label,
                c->gid, rd_kafka_err2name((rd_kafka_resp_err_t)e), reason);
}

/* -------------------------------------------------------------- read */

static void commit_async(kn_kcursor *c, int32_t p, int64_t next)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->k->set.topic, p)->offset = next;
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, l, 1);
    if (e && kn_kafka_warn_ok(c->k))
        KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: commit: %s",
                c->k->label, c->gid, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

/* Under mu. */
static void skip_record(kn_kcursor *c, const rd_kafka_message_t *m,
                        const char *why)
{
    kpart *pp = &c->parts[m->partition];
    uint64_t n = atomic_fetch_add(&c->k->skipped_records, 1) + 1;
    if (n <= 10 || kn_kafka_warn_ok(c->k))
        KN_WARN(KN_KAFKA_COMP, "kafka %s: topic %s partition %" PRId32
                " offset %" PRId64 " is not a CloudEvent (%s); skipped "
                "(%" PRIu64 " so far)", c->k->label, c->k->set.topic,
                m->partition, m->offset, why, n);
    pp->pos = m->offset + 1;
    if (pp->owned && (pp->handed < 0 || pp->done >= pp->handed)) {
        pp->done = pp->pos; /* nothing handed out is pending */
        commit_async(c, m->partition, pp->done);
    }
}

static int decode(kn_kcursor *c, const rd_kafka_message_t *m,
                  ce_event **out, ce_err *cerr)
{
    rd_kafka_headers_t *hs = NULL;
    size_t nh = 0;
    if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        nh = rd_kafka_header_cnt(hs);
    if (nh > c->hcap) {
        ce_header *h = realloc(c->hdrs, nh * sizeof *h);
        if (!h)
            return ce_err_set(cerr, CE_ENOMEM, "", -1, "out of memory");
        c->hdrs = h;
        c->hcap = nh;
    }
    for (size_t i = 0; i < nh; i++) {
        const char *name;
        const void *val;
        size_t len;
        rd_kafka_header_get_all(hs, i, &name, &val, &len);
        c->hdrs[i] = (ce_header){name, strlen(name), val ? val : "",
                                 val ? len : 0};
    }
    ce_kafka_record rec = {m->key, m->key_len, m->payload, m->len, c->hdrs,
                           nh};
    return ce_kafka_decode(&rec, 0, out, cerr);
}

/* Non-blocking: serves callbacks, returns up to max records. */
int kn_kafka_cursor_next(kn_cursor *cur, kn_record *recs, size_t max)
{
    kn_kcursor *c = (kn_kcursor *)cur;
    size_t n = 0;
    while (n < max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
        if (!m)
            break;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                kn_kafka_warn_ok(c->k))
                KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: %s",
                        c->k->label, c->gid, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        ce_event *ev = NULL;
        ce_err cerr = {0};
        int drc = decode(c, m, &ev, &cerr);
        pthread_mutex_lock(&c->mu);
        if (parts_ensure(c, m->partition + 1) != KN_OK) {
            pthread_mutex_unlock(&c->mu);
            ce_event_unref(ev);
            rd_kafka_message_destroy(m);
            eventfd_write(c->efd, 1);
            return n > 0 ? (int)n : KN_NOMEM;
        }
        if (drc != CE_OK) {
            skip_record(c, m, cerr.msg);
        } else {
            c->parts[m->partition].handed = m->offset + 1;
            c->parts[m->partition].pos = m->offset + 1;
        }
        pthread_mutex_unlock(&c->mu);
        if (drc == CE_OK) {
            rd_kafka_timestamp_type_t tt;
            int64_t ts = rd_kafka_message_timestamp(m, &tt);
            ce_event_freeze(ev);
            recs[n++] = (kn_record){ev, (uint64_t)m->offset, m->partition,
                                    ts >= 0 ? ts * 1000000
                                            : kn_now_wall_ns()};
        }
        rd_kafka_message_destroy(m);
    }
    if (n == max) /* maybe more: the queue will not signal again */
        eventfd_write(c->efd, 1);
    return (int)n;
}

int kn_kafka_cursor_fd(kn_cursor *cur)
{
    return ((kn_kcursor *)cur)->efd;
}

void kn_kafka_cursor_drain(kn_cursor *cur)
{
    eventfd_t v;
    eventfd_read(((kn_kcursor *)cur)->efd, &v);
}

/* Commits `next` for the partition asynchronously (errors are logged by
 * the commit callback). Partitions this cursor no longer owns are
 * ignored. Raised past records skipped as non-CloudEvents when
 * everything handed out is done. Any thread (see the file comment). */
int kn_kafka_cursor_commit(kn_cursor *cur, int32_t partition, uint64_t next)
{
    kn_kcursor *c = (kn_kcursor *)cur;
    if (partition < 0 || next > (uint64_t)INT64_MAX)
        return KN_INVAL;
    pthread_mutex_lock(&c->mu);
    if (partition >= c->nparts || !c->parts[partition].owned) {
        pthread_mutex_unlock(&c->mu);
        KN_DEBUG(KN_KAFKA_COMP, "kafka %s: group %s: commit of partition "
                 "%" PRId32 " ignored (not assigned here)", c->k->label,
                 c->gid, partition);
        return KN_OK;
    }
    kpart *pp = &c->parts[partition];
    int64_t v = (int64_t)next;
    if (pp->handed >= 0 && v >= pp->handed && pp->pos > v)
        v = pp->pos;
    if (v > pp->done) {
        pp->done = v;
        commit_async(c, partition, v);
    }
    pthread_mutex_unlock(&c->mu);
    return KN_OK;
}

/* ------------------------------------------------------------- seek */

/* Moves the position of the partitions assigned here now; the committed
 * position of every partition (when the group accepts the commit). */
int kn_kafka_cursor_seek(kn_cursor *cur, const kn_seek *to, kn_err *err)
{
    kn_kcursor *c = (kn_kcursor *)cur;
    rd_kafka_topic_partition_list_t *l = NULL;
    int32_t n;
    int rc;

    if (to->kind == KN_SEEK_COMMITTED) {
        if ((rc = topic_partitions(c, &n, err)) != KN_OK)
            return rc;
        l = list_all(c->k->set.topic, n, RD_KAFKA_OFFSET_INVALID);
        rc = committed_or_end(c, l, true, err);
        if (rc == KN_EXISTS)
            rc = KN_OK; /* in use: the other members initialised it */
    } else if ((rc = resolve(c, to, &l, err)) == KN_OK) {
        rd_kafka_resp_err_t e = commit_bounded(c, l);
        if (e) {
            KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: cannot commit the "
                    "seek position now (%s); it applies at the next "
                    "assignment", c->k->label, c->gid, rd_kafka_err2str(e));
            keep_pending(c, l);
        }
    }
    if (rc != KN_OK) {
        if (l)
            rd_kafka_topic_partition_list_destroy(l);
        return rc;
    }
    rd_kafka_topic_partition_list_t *mine =
        rd_kafka_topic_partition_list_new(l->cnt);
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < l->cnt; i++) {
        int32_t p = l->elems[i].partition;
        if (p < c->nparts && c->parts[p].owned && l->elems[i].offset >= 0) {
            rd_kafka_topic_partition_list_add(mine, l->elems[i].topic, p)
                ->offset = l->elems[i].offset;
            c->parts[p] = g_fresh;
            c->parts[p].owned = true;
        }
    }
    pthread_mutex_unlock(&c->mu);
    rd_kafka_error_t *se = mine->cnt ? rd_kafka_seek_partitions(
                                           c->rk, mine, KN_KAFKA_CALL_MS)
                                     : NULL;
    for (int i = 0; !se && i < mine->cnt; i++)
        if (mine->elems[i].err)
            rc = kn_err_set(err, KN_UNAVAILABLE, "kafka %s: group %s: seek "
                            "of partition %" PRId32 ": %s", c->k->label,
                            c->gid, mine->elems[i].partition,
                            rd_kafka_err2str(mine->elems[i].err));
    if (se) {
        rc = kn_err_set(err, KN_UNAVAILABLE, "kafka %s: group %s: seek: %s",
                        c->k->label, c->gid, rd_kafka_error_string(se));
        rd_kafka_error_destroy(se);
    }
    rd_kafka_topic_partition_list_destroy(mine);
    rd_kafka_topic_partition_list_destroy(l);
    eventfd_write(c->efd, 1);
    return rc;
}

/* ---------------------------------------------------- open and close */

/* Leaves the group (the last revoke commits what is done), serving the
 * rebalance callbacks on this thread, for at most KN_KAFKA_CLOSE_MS:
 * rd_kafka_consumer_close() has no bound, and a cluster that never
 * answers the leave (seen with the mock cluster in the middle of a
 * rebalance) would hold a shutdown forever. Returns whether the consumer
 * closed; if not, the group notices the member is gone after its session
 * timeout and the next owner resumes at the last commit. */
static bool consumer_leave(kn_kcursor *c)
{
    rd_kafka_queue_t *cq = rd_kafka_queue_new(c->rk);
    rd_kafka_error_t *er = cq ? rd_kafka_consumer_close_queue(c->rk, cq)
                              : NULL;
    bool closed = false;
    if (!cq || er) {
        KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: close: %s", c->k->label,
                c->gid, er ? rd_kafka_error_string(er) : "out of memory");
    } else {
        int64_t end = kn_now_mono_ns() + KN_KAFKA_CLOSE_MS * 1000000LL;
        while (!(closed = rd_kafka_consumer_closed(c->rk)) &&
               kn_now_mono_ns() < end)
            rd_kafka_queue_poll_callback(cq, 100);
        if (!closed)
            KN_WARN(KN_KAFKA_COMP, "kafka %s: group %s: leaving the group "
                    "did not finish within %d s; closing without it (the "
                    "group drops this member after its session timeout)",
                    c->k->label, c->gid, KN_KAFKA_CLOSE_MS / 1000);
    }
    if (er)
        rd_kafka_error_destroy(er);
    if (cq)
        rd_kafka_queue_destroy(cq);
    return closed;
}

static void cursor_free(kn_kcursor *c, bool leave)
{
    if (c->rk) {
        if (c->subscribed && leave)
            leave = consumer_leave(c);
        if (c->q) {
            rd_kafka_queue_io_event_enable(c->q, -1, NULL, 0);
            rd_kafka_queue_destroy(c->q);
        }
        rd_kafka_destroy_flags(c->rk, leave ? 0
                                   : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    if (c->efd >= 0)
        close(c->efd);
    pthread_mutex_destroy(&c->mu);
    free(c->parts);
    free(c->pending);
    free(c->hdrs);
    free(c->group);
    free(c->gid);
    free(c);
}

static int consumer_new(kn_kcursor *c, kn_err *err)
{
    char es[512];
    rd_kafka_conf_t *conf = kn_kafka_conf_new(&c->k->set, true, err);
    if (!conf)
        return KN_INVAL;
    if (rd_kafka_conf_set(conf, "group.id", c->gid, es, sizeof es) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return kn_err_set(err, KN_INVAL, "kafka: group %s: %s", c->gid, es);
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof es))) {
        rd_kafka_conf_destroy(conf);
        return kn_err_set(err, KN_INVAL, "kafka: cannot create a consumer "
                          "for group %s: %s", c->gid, es);
    }
    rd_kafka_poll_set_consumer(c->rk);
    c->q = rd_kafka_queue_get_consumer(c->rk);
    if ((c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return kn_err_set(err, KN_IO, "eventfd: %s", strerror(errno));
    static const uint64_t one = 1;
    rd_kafka_queue_io_event_enable(c->q, c->efd, &one, sizeof one);
    return KN_OK;
}

/* Positions the group before joining (see the file comment). */
static int initial_position(kn_kcursor *c, const kn_seek *start, kn_err *err)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    int32_t n;
    int rc;
    if (start->kind == KN_SEEK_COMMITTED) {
        if ((rc = topic_partitions(c, &n, err)) == KN_OK) {
            l = list_all(c->k->set.topic, n, RD_KAFKA_OFFSET_INVALID);
            rc = committed_or_end(c, l, true, err);
            rd_kafka_topic_partition_list_destroy(l);
        }
        if (rc != KN_OK && rc != KN_EXISTS)
            KN_WARN(KN_KAFKA_COMP, "%s; partitions without a committed "
                    "offset start at their end when assigned", err->msg);
        return KN_OK;
    }
    if ((rc = resolve(c, start, &l, err)) != KN_OK)
        return rc;
    rd_kafka_resp_err_t e = commit_bounded(c, l);
    if (e) /* the group has members: apply at our assignment */
        keep_pending(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    return KN_OK;
}

/* The hints (opts) are ignored: a consumer group keeps no per-record
 * lease (no redelivery timer), and the read-ahead is librdkafka's. */
int kn_kafka_cursor_open(kn_channel *ch, const char *group,
                         const kn_seek *start, const kn_cursor_opts *opts,
                         kn_cursor **out, kn_err *err)
{
    static const kn_seek committed = {KN_SEEK_COMMITTED, 0, 0};
    kn_kafka *k = (kn_kafka *)ch;
    kn_err scratch;
    kn_kcursor *c;
    int rc;

    (void)opts;
    *out = NULL;
    if (!err)
        err = &scratch;
    if (!group || !*group || strlen(group) > GROUP_MAX)
        return kn_err_set(err, KN_INVAL, "cursor group name must have 1 to "
                          "%d bytes", GROUP_MAX);
    if (start && (start->kind < KN_SEEK_END ||
                  start->kind > KN_SEEK_COMMITTED))
        return kn_err_set(err, KN_INVAL, "unknown seek kind %d",
                          start->kind);
    if (!(c = calloc(1, sizeof *c)))
        return kn_err_set(err, KN_NOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->base.channel = ch;
    c->k = k;
    c->efd = -1;
    if (!(c->group = strdup(group)) || !(c->gid = kn_kafka_group_id(group))) {
        cursor_free(c, false);
        return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    if ((rc = consumer_new(c, err)) != KN_OK ||
        (rc = initial_position(c, start ? start : &committed, err)) !=
            KN_OK) {
        cursor_free(c, false);
        return rc;
    }
    rd_kafka_topic_partition_list_t *sub =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, k->set.topic,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        cursor_free(c, false);
        return kn_err_set(err, KN_UNAVAILABLE, "kafka %s: group %s: cannot "
                          "subscribe to %s: %s", k->label, c->gid,
                          k->set.topic, rd_kafka_err2str(e));
    }
    c->subscribed = true;
    atomic_fetch_add(&k->cursors, 1);
    c->node.group = c->group;
    pthread_mutex_lock(&k->mu);
    c->node.next = k->open;
    k->open = &c->node;
    pthread_mutex_unlock(&k->mu);
    eventfd_write(c->efd, 1);
    *out = &c->base;
    return KN_OK;
}

/* Leaves the group (committing the done offsets of its partitions) and
 * frees. When the cluster is down the group is not left cleanly (its
 * members expire after session.timeout.ms). */
void kn_kafka_cursor_close(kn_cursor *cur)
{
    kn_kcursor *c = (kn_kcursor *)cur;
    if (!c)
        return;
    kn_kafka *k = c->k;
    pthread_mutex_lock(&k->mu);
    bool down = k->down;
    for (kn_kafka_open **pp = &k->open; *pp; pp = &(*pp)->next)
        if (*pp == &c->node) {
            *pp = c->node.next;
            break;
        }
    pthread_mutex_unlock(&k->mu);
    cursor_free(c, !down);
    atomic_fetch_sub(&k->cursors, 1);
}

/* ------------------------------------------------------------ delete */

static int delete_group(kn_kafka *k, const char *gid)
{
    char es[256];
    rd_kafka_DeleteGroup_t *dg = rd_kafka_DeleteGroup_new(gid);
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->prod);
    rd_kafka_AdminOptions_t *ao =
        rd_kafka_AdminOptions_new(k->prod, RD_KAFKA_ADMIN_OP_DELETEGROUPS);
    rd_kafka_AdminOptions_set_request_timeout(ao, KN_KAFKA_CALL_MS, es,
                                              sizeof es);
    rd_kafka_DeleteGroups(k->prod, &dg, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 3 * KN_KAFKA_CALL_MS);
    int rc = KN_UNAVAILABLE;
    const char *why = "timed out";
    if (ev && rd_kafka_event_error(ev)) {
        why = rd_kafka_event_error_string(ev);
    } else if (ev) {
        size_t cnt = 0;
        const rd_kafka_group_result_t **gr =
            rd_kafka_DeleteGroups_result_groups(
                rd_kafka_event_DeleteGroups_result(ev), &cnt);
        const rd_kafka_error_t *ge = cnt ? rd_kafka_group_result_error(gr[0])
                                         : NULL;
        rd_kafka_resp_err_t e = ge ? rd_kafka_error_code(ge)
                                   : RD_KAFKA_RESP_ERR_NO_ERROR;
        rc = e == RD_KAFKA_RESP_ERR_NO_ERROR ? KN_OK
             : e == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND ? KN_NOTFOUND
             : e == RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP    ? KN_EXISTS
                                                         : KN_UNAVAILABLE;
        why = ge ? rd_kafka_error_string(ge) : "ok";
    }
    if (rc != KN_OK && rc != KN_NOTFOUND)
        KN_WARN(KN_KAFKA_COMP, "kafka %s: cannot delete consumer group %s: "
                "%s", k->label, gid, why);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteGroup_destroy(dg);
    return rc;
}

/* Deletes the group (DeleteGroups). KN_EXISTS while it has members (a
 * cursor open here, or another process's), KN_NOTFOUND for an unknown
 * group, KN_UNSUPPORTED on clusters without the admin API (librdkafka's
 * mock cluster: its admin requests hang or abort in librdkafka 2.0, and it
 * refuses offset commits from non-members of a group that existed).
 * Caller's thread. */
int kn_kafka_cursor_delete(kn_channel *ch, const char *group)
{
    kn_kafka *k = (kn_kafka *)ch;
    if (!group || !*group || strlen(group) > GROUP_MAX)
        return KN_INVAL;
    bool open = false;
    pthread_mutex_lock(&k->mu);
    for (kn_kafka_open *o = k->open; o && !open; o = o->next)
        open = strcmp(o->group, group) == 0;
    pthread_mutex_unlock(&k->mu);
    if (open)
        return KN_EXISTS;
    if (!kn_kafka_admin_api(k)) {
        KN_INFO(KN_KAFKA_COMP, "kafka %s: cannot delete group %s: the "
                "cluster has no admin API (its committed offsets stay)",
                k->label, group);
        return KN_UNSUPPORTED;
    }
    char *gid = kn_kafka_group_id(group);
    if (!gid)
        return KN_NOMEM;
    int rc = delete_group(k, gid);
    free(gid);
    return rc;
}
