/*
 * Cursors of the log: named groups whose committed position lives in a
 * checkpoint file (cursors/<group>.json, written atomically), readers that
 * pread durable records through a bounded buffer, seeking by offset or
 * time through the sparse segment index, and tail notification through an
 * eventfd that the writer signals after a commit when the cursor has
 * caught up (armed).
 *
 * Threads: a cursor is used by one thread at a time; several cursors may
 * run in parallel with the writer. Shared state is read under log->mu.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "channels/log/codec.h"
#include "channels/log/log_int.h"

#define CUR_BUF (256u << 10)      /* default read buffer */
#define NEXT_BYTES_MAX (4u << 20) /* record bytes per cursor_next call */
#define NO_POS UINT64_MAX

/* ------------------------------------------------------------- groups */

static char *group_path(const kn_log *lg, const char *name)
{
    size_t n = strlen(lg->dir) + 16 + 3 * strlen(name);
    char *p = malloc(n), *o;
    if (!p)
        return NULL;
    o = p + sprintf(p, "%s/cursors/", lg->dir);
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        bool keep = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
                    (*s == '.' && s != (const unsigned char *)name);
        o += keep ? sprintf(o, "%c", *s) : sprintf(o, "%%%02X", *s);
    }
    strcpy(o, ".json");
    return p;
}

static kn_group *group_find(kn_log *lg, const char *name)
{
    for (kn_group *g = lg->groups; g; g = g->next)
        if (strcmp(g->name, name) == 0)
            return g;
    return NULL;
}

static kn_group *group_add(kn_log *lg, const char *name, uint64_t committed)
{
    kn_group *g = calloc(1, sizeof *g);
    if (!g || !(g->name = strdup(name)) ||
        !(g->path = group_path(lg, name))) {
        if (g)
            free(g->name);
        free(g);
        return NULL;
    }
    g->committed = committed;
    g->next = lg->groups;
    lg->groups = g;
    return g;
}

static void group_free(kn_group *g)
{
    free(g->name);
    free(g->path);
    free(g);
}

void kn_log_groups_free(kn_log *lg)
{
    while (lg->groups) {
        kn_group *g = lg->groups;
        lg->groups = g->next;
        group_free(g);
    }
}

static int load_one(kn_log *lg, const char *path, kn_err *err)
{
    ce_buf b = CE_BUF_INIT;
    json_error_t je;
    json_t *root = NULL, *jg, *jo;
    int rc = kn_read_file(path, &b, err);
    if (rc != KN_OK)
        return rc;
    root = json_loadb(b.data, b.len, 0, &je);
    jg = json_object_get(root, "group");
    jo = json_object_get(root, "next_offset");
    if (!json_is_string(jg) || !json_is_integer(jo) ||
        json_integer_value(jo) < 0) {
        rc = kn_err_set(err, KN_CORRUPT, "log %s: checkpoint %s is not "
                        "{\"group\": string, \"next_offset\": integer}",
                        lg->label, path);
        goto out;
    }
    kn_group *g = group_add(lg, json_string_value(jg),
                            (uint64_t)json_integer_value(jo));
    if (!g) {
        rc = kn_err_set(err, KN_NOMEM, "out of memory");
        goto out;
    }
    if (strcmp(g->path, path) != 0)
        rc = kn_err_set(err, KN_CORRUPT, "log %s: checkpoint %s names group "
                        "'%s', whose file would be %s", lg->label, path,
                        g->name, g->path);
out:
    json_decref(root);
    ce_buf_free(&b);
    return rc;
}

int kn_log_groups_load(kn_log *lg, kn_err *err)
{
    char dir[4096], path[4400];
    struct dirent *de;
    DIR *d;
    int rc = KN_OK;

    snprintf(dir, sizeof dir, "%s/cursors", lg->dir);
    if (!(d = opendir(dir)))
        return kn_err_set(err, KN_IO, "log %s: cannot list %s: %s",
                          lg->label, dir, strerror(errno));
    while (rc == KN_OK && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0)
            unlink(path);
        else if (len > 5 && strcmp(de->d_name + len - 5, ".json") == 0)
            rc = load_one(lg, path, err);
    }
    closedir(d);
    return rc;
}

/* Durably stores a group's position (any thread; serialised). */
static int checkpoint(kn_log *lg, kn_group *g, uint64_t next)
{
    char body[KN_LOG_GROUP_MAX * 6 + 96];
    json_t *o = json_pack("{s:s, s:I}", "group", g->name, "next_offset",
                          (json_int_t)next);
    char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
    kn_err err;
    int rc = KN_NOMEM;

    json_decref(o);
    if (!js)
        return rc;
    int n = snprintf(body, sizeof body, "%s\n", js);
    free(js);
    pthread_mutex_lock(&lg->ckpt_mu);
    rc = kn_write_file_atomic(g->path, body, (size_t)n, &err);
    pthread_mutex_unlock(&lg->ckpt_mu);
    if (rc != KN_OK) {
        KN_ERROR(KN_LOG_COMP, "log %s: cannot store the position of cursor "
                 "'%s': %s", lg->label, g->name, err.msg);
        return rc;
    }
    pthread_mutex_lock(&lg->mu);
    g->committed = next;
    pthread_mutex_unlock(&lg->mu);
    return KN_OK;
}

/* ------------------------------------------------------------ reading */

static int read_at(int fd, void *p, size_t n, uint64_t at)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)p + done, n - done,
                          (off_t)(at + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return KN_IO;
        if (r == 0)
            return KN_CORRUPT; /* shorter than its durable size */
        done += (size_t)r;
    }
    return KN_OK;
}

/* Makes file bytes [pos, pos+need) available in the cursor buffer. */
static int fill(kn_lcursor *c, int fd, uint64_t pos, size_t need,
                uint64_t end)
{
    if (pos >= c->buf_pos && pos + need <= c->buf_pos + c->buf_len)
        return KN_OK;
    size_t want = need > CUR_BUF ? need : CUR_BUF;
    if (want > end - pos)
        want = (size_t)(end - pos);
    if (want > c->buf_cap) {
        unsigned char *b = realloc(c->buf, want);
        if (!b)
            return KN_NOMEM;
        c->buf = b;
        c->buf_cap = want;
    }
    c->buf_len = 0;
    int rc = read_at(fd, c->buf, want, pos);
    if (rc != KN_OK)
        return rc;
    c->buf_pos = pos;
    c->buf_len = want;
    return KN_OK;
}

static void report_corrupt(kn_lcursor *c, const char *why)
{
    if (c->bad_pos == c->pos + 1)
        return; /* said once already */
    c->bad_pos = c->pos + 1;
    KN_ERROR(KN_LOG_COMP, "log %s: cursor '%s': %s byte %" PRIu64 ": %s; "
             "reads stop before offset %" PRIu64 " (seek past it to skip)",
             c->log->label, c->group->name, c->seg->path, c->pos, why,
             c->off);
}

/* Reads and decodes the record at the cursor position; end is the
 * segment's durable size. */
static int read_record(kn_lcursor *c, int fd, uint64_t end, kn_record *r,
                       size_t *bytes)
{
    char why[200];
    kn_rec_hdr h;
    int rc;

    if (end - c->pos < KN_REC_HDR) {
        report_corrupt(c, "record header cut short");
        return KN_CORRUPT;
    }
    if ((rc = fill(c, fd, c->pos, KN_REC_HDR, end)) != KN_OK)
        goto io;
    uint32_t len = kn_get32(c->buf + (c->pos - c->buf_pos) + 4);
    if (len > KN_REC_MAX || len > end - c->pos - KN_REC_HDR) {
        snprintf(why, sizeof why, "record length %u does not fit", len);
        report_corrupt(c, why);
        return KN_CORRUPT;
    }
    if ((rc = fill(c, fd, c->pos, KN_REC_HDR + len, end)) != KN_OK)
        goto io;
    const unsigned char *p = c->buf + (c->pos - c->buf_pos);
    if (kn_rec_check(p, KN_REC_HDR + len, c->off, &h, why, sizeof why) !=
        KN_REC_VALID) {
        report_corrupt(c, why);
        return KN_CORRUPT;
    }
    rc = kn_logcodec_decode(p + KN_REC_HDR, len, &r->event, why, sizeof why);
    if (rc == KN_CORRUPT)
        report_corrupt(c, why);
    if (rc != KN_OK)
        return rc;
    r->offset = h.offset;
    r->partition = 0;
    r->timestamp_ns = h.ts_ns;
    c->pos += KN_REC_HDR + len;
    c->off++;
    *bytes += KN_REC_HDR + len;
    return KN_OK;
io:
    if (rc == KN_CORRUPT)
        report_corrupt(c, "segment file shorter than its durable size");
    else
        KN_ERROR(KN_LOG_COMP, "log %s: cursor '%s': reading %s: %s",
                 c->log->label, c->group->name, c->seg->path,
                 strerror(errno));
    return rc;
}

/* Under mu: index of the segment holding offset off (the active one when
 * off is at the head); off below the first retained gives 0. */
static size_t seg_for_offset(const kn_log *lg, uint64_t off)
{
    size_t lo = 0, hi = lg->nsegs - 1;
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        if (lg->segs[mid]->base <= off)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static void set_seg(kn_lcursor *c, kn_seg *s, uint64_t pos, uint64_t off)
{
    if (c->seg != s) {
        kn_seg_ref(s);
        kn_seg_unref(c->seg);
        c->seg = s;
        c->buf_len = 0;
    }
    c->pos = pos;
    c->off = off;
}

/* Under mu: the cursor finished a sealed segment; moves to the next. */
static void next_segment(kn_lcursor *c)
{
    kn_log *lg = c->log;
    kn_seg *s = lg->segs[seg_for_offset(lg, c->off)];
    if (s->base > c->off)
        KN_WARN(KN_LOG_COMP, "log %s: cursor '%s' skips offsets [%" PRIu64
                ", %" PRIu64 ") deleted by retention", lg->label,
                c->group->name, c->off, s->base);
    if (s != c->seg)
        set_seg(c, s, KN_SEG_HDR, s->base);
}

int kn_log_cursor_next(kn_cursor *cur, kn_record *recs, size_t max)
{
    kn_lcursor *c = (kn_lcursor *)cur;
    kn_log *lg = c->log;
    size_t n = 0, bytes = 0;
    int rc = KN_OK;
    bool more = false;

    while (n < max && bytes < NEXT_BYTES_MAX) {
        pthread_mutex_lock(&lg->mu);
        kn_seg *s = c->seg;
        uint64_t end = s->size;
        if (c->pos >= end && s->sealed) {
            next_segment(c);
            pthread_mutex_unlock(&lg->mu);
            continue;
        }
        if (c->pos >= end) {
            atomic_store(&c->armed, 1); /* writer signals the next commit */
            pthread_mutex_unlock(&lg->mu);
            break;
        }
        int fd = kn_seg_fd(lg, s);
        pthread_mutex_unlock(&lg->mu);
        if (fd < 0) {
            rc = KN_IO;
            break;
        }
        if ((rc = read_record(c, fd, end, &recs[n], &bytes)) != KN_OK)
            break;
        n++;
    }
    if (n == max || bytes >= NEXT_BYTES_MAX) {
        pthread_mutex_lock(&lg->mu);
        more = c->pos < c->seg->size || c->seg->sealed;
        if (!more) /* stopped exactly at the end: the next commit signals */
            atomic_store(&c->armed, 1);
        pthread_mutex_unlock(&lg->mu);
    }
    if (more) /* keep the fd readable while a backlog remains */
        eventfd_write(c->efd, 1);
    if (c->buf_cap > 4 * CUR_BUF) { /* drop a buffer grown for a big one */
        free(c->buf);
        c->buf = NULL;
        c->buf_cap = c->buf_len = 0;
    }
    return n > 0 ? (int)n : rc;
}

void kn_log_notify_cursors(kn_log *lg)
{
    for (kn_lcursor *c = lg->cursors; c; c = c->next)
        if (atomic_exchange(&c->armed, 0))
            eventfd_write(c->efd, 1);
}

int kn_log_cursor_fd(kn_cursor *cur)
{
    return ((kn_lcursor *)cur)->efd;
}

void kn_log_cursor_drain(kn_cursor *cur)
{
    eventfd_t v;
    eventfd_read(((kn_lcursor *)cur)->efd, &v);
}

/* ------------------------------------------------------------ seeking */

/* Last index entry before the wanted record: offset <= target, or with
 * by_time ts < t. Entries are ordered by offset and by time. */
static void pick_entry(const kn_idx_entry *e, size_t n, uint64_t target,
                       bool by_time, int64_t t, uint64_t *pos, uint64_t *off)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        bool before = by_time ? e[mid].ts_ns < t : e[mid].offset <= target;
        if (before)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0) {
        *pos = e[lo - 1].pos;
        *off = e[lo - 1].offset;
    }
}

/* The header at *pos is damaged: finds the next intact record of the
 * segment so a seek can get past a corrupt region. */
static int resync(kn_lcursor *c, kn_seg *s, int fd, uint64_t end,
                  uint64_t *pos, uint64_t *off)
{
    void *m = mmap(NULL, (size_t)end, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        return KN_IO;
    uint64_t q = kn_seg_resync(m, (size_t)end, *pos + 1, *off + 1);
    uint64_t o2 = s->next_offset;
    if (q != UINT64_MAX) {
        kn_rec_hdr h;
        kn_rec_check((const unsigned char *)m + q, (size_t)(end - q),
                     UINT64_MAX, &h, NULL, 0);
        o2 = h.offset;
    }
    munmap(m, (size_t)end);
    KN_WARN(KN_LOG_COMP, "log %s: cursor '%s' seeks over a corrupt region "
            "of %s from byte %" PRIu64 " (offsets [%" PRIu64 ", %" PRIu64
            ") skipped)", c->log->label, c->group->name, s->path, *pos, *off,
            o2);
    *pos = q != UINT64_MAX ? q : end;
    *off = o2;
    return KN_OK;
}

/* Walks record headers from (*pos, *off) to the record with offset
 * target or, by_time, to the first record stamped at or after t. */
static int walk(kn_lcursor *c, kn_seg *s, int fd, uint64_t end,
                uint64_t *pos, uint64_t *off, uint64_t target, bool by_time,
                int64_t t)
{
    unsigned char h[KN_REC_HDR];
    while (*pos < end && (by_time || *off < target)) {
        int rc = KN_CORRUPT;
        if (end - *pos >= KN_REC_HDR)
            rc = read_at(fd, h, KN_REC_HDR, *pos);
        if (rc == KN_IO)
            return rc;
        uint32_t len = kn_get32(h + 4);
        if (rc != KN_OK || len > KN_REC_MAX ||
            len > end - *pos - KN_REC_HDR || kn_get64(h + 8) != *off) {
            if ((rc = resync(c, s, fd, end, pos, off)) != KN_OK)
                return rc;
            continue;
        }
        if (by_time && (int64_t)kn_get64(h + 16) >= t)
            break;
        *pos += KN_REC_HDR + len;
        (*off)++;
    }
    return KN_OK;
}

/* Under mu: the first segment holding a record stamped at or after t,
 * or nsegs when there is none. */
static size_t seg_for_time(const kn_log *lg, int64_t t)
{
    for (size_t i = 0; i < lg->nsegs; i++) {
        const kn_seg *s = lg->segs[i];
        if (s->next_offset > s->base && s->last_ts >= t)
            return i;
    }
    return lg->nsegs;
}

/* Positions the cursor on offset target (clamped to what is retained)
 * or, by_time, on the first record stamped at or after t. */
static int position(kn_lcursor *c, uint64_t target, bool by_time, int64_t t)
{
    kn_log *lg = c->log;
    kn_idx_entry *e = NULL;
    size_t i = 0;

    pthread_mutex_lock(&lg->mu);
    if (by_time && (i = seg_for_time(lg, t)) == lg->nsegs) {
        by_time = false;
        target = lg->head;
    }
    if (!by_time) {
        if (target > lg->head)
            target = lg->head;
        if (target < lg->segs[0]->base)
            target = lg->segs[0]->base;
        i = seg_for_offset(lg, target);
    }
    kn_seg *s = lg->segs[i];
    kn_seg_ref(s);
    uint64_t end = s->size, pos = KN_SEG_HDR, off = s->base;
    bool sealed = s->sealed, done = !by_time && target == s->next_offset;
    int fd = kn_seg_fd(lg, s);
    if (done) {
        pos = end;
        off = target;
    } else if (!sealed) {
        pick_entry(s->idx, s->nidx, target, by_time, t, &pos, &off);
    }
    pthread_mutex_unlock(&lg->mu);

    int rc = fd < 0 ? KN_IO : KN_OK;
    if (rc == KN_OK && !done && sealed) {
        int n = kn_seg_index_load(s, &e);
        if (n > 0)
            pick_entry(e, (size_t)n, target, by_time, t, &pos, &off);
        free(e);
    }
    if (rc == KN_OK && !done)
        rc = walk(c, s, fd, end, &pos, &off, target, by_time, t);
    if (rc == KN_OK)
        set_seg(c, s, pos, off);
    kn_seg_unref(s);
    return rc;
}

/* strict: a position that cannot be stored fails the seek; else (open)
 * it is kept in memory, still protects retention, and is stored by the
 * next commit, so a full disk does not keep consumers from starting. */
static int seek_impl(kn_cursor *cur, const kn_seek *to, bool strict,
                     kn_err *err)
{
    kn_lcursor *c = (kn_lcursor *)cur;
    kn_log *lg = c->log;
    uint64_t target = 0, committed, head, first;
    bool persist = true, by_time = false;
    int rc;

    pthread_mutex_lock(&lg->mu);
    committed = c->group->committed;
    head = lg->head;
    first = lg->segs[0]->base;
    pthread_mutex_unlock(&lg->mu);
    switch (to->kind) {
    case KN_SEEK_COMMITTED:
        target = committed == NO_POS ? head : committed;
        persist = committed == NO_POS;
        if (!persist && committed > head)
            KN_WARN(KN_LOG_COMP, "log %s: cursor '%s' committed %" PRIu64
                    " beyond the head %" PRIu64 "; resuming at the head",
                    lg->label, c->group->name, committed, head);
        if (!persist && committed < first)
            KN_WARN(KN_LOG_COMP, "log %s: cursor '%s' committed %" PRIu64
                    " but retention deleted up to %" PRIu64 "; resuming at "
                    "the oldest retained event", lg->label, c->group->name,
                    committed, first);
        break;
    case KN_SEEK_END:
        target = head;
        break;
    case KN_SEEK_START:
        target = 0;
        break;
    case KN_SEEK_OFFSET:
        target = to->offset;
        break;
    case KN_SEEK_TIME:
        by_time = true;
        break;
    default:
        return kn_err_set(err, KN_INVAL, "unknown seek kind %d", to->kind);
    }
    if ((rc = position(c, target, by_time, to->time_ns)) != KN_OK)
        return kn_err_set(err, rc, "log %s: cursor '%s': seek failed: %s",
                          lg->label, c->group->name, kn_status_str(rc));
    if (persist && (rc = checkpoint(lg, c->group, c->off)) != KN_OK) {
        if (strict)
            return kn_err_set(err, rc, "log %s: cursor '%s': cannot store "
                              "its position", lg->label, c->group->name);
        KN_WARN(KN_LOG_COMP, "log %s: cursor '%s' opens at offset %" PRIu64
                " without storing it (%s); the next commit stores it",
                lg->label, c->group->name, c->off, kn_status_str(rc));
        pthread_mutex_lock(&lg->mu);
        c->group->committed = c->off;
        pthread_mutex_unlock(&lg->mu);
    }
    c->bad_pos = 0;
    eventfd_write(c->efd, 1);
    return KN_OK;
}

int kn_log_cursor_seek(kn_cursor *cur, const kn_seek *to, kn_err *err)
{
    return seek_impl(cur, to, true, err);
}

/* ---------------------------------------------------- open and close */

/* The hints (opts) are ignored: the log holds no per-reader state that
 * depends on them (records stay on disk until retention). */
int kn_log_cursor_open(kn_channel *ch, const char *group,
                       const kn_seek *start, const kn_cursor_opts *opts,
                       kn_cursor **out, kn_err *err)
{
    static const kn_seek committed = {KN_SEEK_COMMITTED, 0, 0};
    kn_log *lg = (kn_log *)ch;
    kn_lcursor *c;
    int rc;

    (void)opts;
    *out = NULL;
    if (!group || !*group || strlen(group) > KN_LOG_GROUP_MAX)
        return kn_err_set(err, KN_INVAL, "cursor group name must have 1 to "
                          "%d bytes", KN_LOG_GROUP_MAX);
    if (!(c = calloc(1, sizeof *c)))
        return kn_err_set(err, KN_NOMEM, "out of memory");
    c->base.channel = ch;
    c->log = lg;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->efd < 0) {
        free(c);
        return kn_err_set(err, KN_IO, "eventfd: %s", strerror(errno));
    }
    pthread_mutex_lock(&lg->mu);
    kn_group *g = group_find(lg, group);
    if (!g && !(g = group_add(lg, group, NO_POS))) {
        pthread_mutex_unlock(&lg->mu);
        close(c->efd);
        free(c);
        return kn_err_set(err, KN_NOMEM, "out of memory");
    }
    g->opens++;
    c->group = g;
    c->next = lg->cursors;
    lg->cursors = c;
    kn_seg *act = lg->segs[lg->nsegs - 1];
    set_seg(c, act, act->size, lg->head);
    pthread_mutex_unlock(&lg->mu);
    if ((rc = seek_impl(&c->base, start ? start : &committed, false,
                        err)) != KN_OK) {
        kn_log_cursor_close(&c->base);
        return rc;
    }
    *out = &c->base;
    return KN_OK;
}

static void unlink_group(kn_log *lg, kn_group *g)
{
    for (kn_group **pp = &lg->groups; *pp; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            return;
        }
}

void kn_log_cursor_close(kn_cursor *cur)
{
    kn_lcursor *c = (kn_lcursor *)cur;
    kn_log *lg;
    kn_group *drop = NULL;

    if (!c)
        return;
    lg = c->log;
    pthread_mutex_lock(&lg->mu);
    for (kn_lcursor **pp = &lg->cursors; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    if (--c->group->opens == 0 && c->group->committed == NO_POS) {
        drop = c->group; /* never stored: forget it */
        unlink_group(lg, drop);
    }
    pthread_mutex_unlock(&lg->mu);
    if (drop)
        group_free(drop);
    kn_seg_unref(c->seg);
    close(c->efd);
    free(c->buf);
    free(c);
}

int kn_log_cursor_commit(kn_cursor *cur, int32_t partition, uint64_t next)
{
    kn_lcursor *c = (kn_lcursor *)cur;
    kn_log *lg = c->log;

    if (partition != 0)
        return KN_INVAL;
    pthread_mutex_lock(&lg->mu);
    uint64_t head = lg->head;
    pthread_mutex_unlock(&lg->mu);
    if (next > head)
        return KN_INVAL;
    return checkpoint(lg, c->group, next);
}

int kn_log_cursor_delete(kn_channel *ch, const char *group)
{
    kn_log *lg = (kn_log *)ch;
    pthread_mutex_lock(&lg->mu);
    kn_group *g = group ? group_find(lg, group) : NULL;
    if (!g || g->opens > 0) {
        pthread_mutex_unlock(&lg->mu);
        return g ? KN_EXISTS : KN_NOTFOUND;
    }
    unlink_group(lg, g);
    pthread_mutex_unlock(&lg->mu);
    int rc = KN_OK;
    if (unlink(g->path) != 0 && errno != ENOENT)
        rc = KN_IO;
    char *slash = strrchr(g->path, '/');
    *slash = '\0'; /* fsync the cursors directory so the unlink holds */
    int dfd = open(g->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    group_free(g);
    return rc;
}
