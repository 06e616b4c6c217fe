/*
 * The embedded log channel ("log" backend): open with recovery, settings,
 * stats and close. The append path and writer thread are in writer.c,
 * cursors in cursor.c; file formats in segment.c and docs/storage.md.
 *
 * Open trusts sealed segments by their index file (size and offsets must
 * match) and scans only the last (active) segment, so opening a large log
 * costs one small read per sealed segment plus one pass over at most
 * segment.bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channels/log/crc32c.h"
#include "channels/log/log_int.h"
#include "channels/settings.h"

/* ----------------------------------------------------------- segments */

char *kn_log_path(const char *dir, uint64_t base, const char *ext)
{
    size_t n = strlen(dir) + 32;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%020" PRIu64 ".%s", dir, base, ext);
    return p;
}

kn_seg *kn_seg_new(const char *dir, uint64_t base)
{
    kn_seg *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->path = kn_log_path(dir, base, "log");
    if (!s->path) {
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->base = s->next_offset = base;
    s->size = KN_SEG_HDR;
    s->fd = -1;
    return s;
}

void kn_seg_ref(kn_seg *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void kn_seg_unref(kn_seg *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->idx);
    free(s->path);
    free(s);
}

int kn_seg_fd(kn_log *lg, kn_seg *s)
{
    if (s->fd < 0) {
        s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0)
            KN_ERROR(KN_LOG_COMP, "log %s: cannot open %s: %s", lg->label,
                     s->path, strerror(errno));
    }
    return s->fd;
}

int kn_log_status_errno(int e)
{
    switch (e) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return KN_NOSPACE;
    case ENOMEM:
        return KN_NOMEM;
    default:
        return KN_IO;
    }
}

int kn_seg_index_add(kn_seg *s, uint64_t off, uint64_t pos, int64_t ts)
{
    if (s->nidx == s->capidx) {
        size_t cap = s->capidx ? s->capidx * 2 : 64;
        kn_idx_entry *e = realloc(s->idx, cap * sizeof *e);
        if (!e)
            return KN_NOMEM;
        s->idx = e;
        s->capidx = cap;
    }
    s->idx[s->nidx++] = (kn_idx_entry){off, pos, ts};
    s->last_idx_pos = pos;
    return KN_OK;
}

static int read_full(int fd, void *p, size_t n, off_t at)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)p + done, n - done, at + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

int kn_seg_index_load(const kn_seg *s, kn_idx_entry **out)
{
    char *path = NULL;
    unsigned char hdr[KN_IDX_HDR], *raw = NULL;
    kn_idx_hdr h;
    int fd = -1, rc = KN_CORRUPT;

    *out = NULL;
    size_t plen = strlen(s->path);
    if (!(path = strdup(s->path)))
        return KN_NOMEM;
    memcpy(path + plen - 3, "idx", 3);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read_full(fd, hdr, sizeof hdr, 0) != 0 ||
        kn_idx_header_check(hdr, sizeof hdr, &h, NULL, 0) != 0 ||
        h.base != s->base || h.count == 0)
        goto fail;
    size_t bytes = (size_t)h.count * KN_IDX_ENTRY;
    if (!(raw = malloc(bytes)) || !(*out = malloc(h.count * sizeof **out))) {
        rc = KN_NOMEM;
        goto fail;
    }
    if (read_full(fd, raw, bytes, KN_IDX_HDR) != 0 ||
        kn_crc32c(0, raw, bytes) != h.entries_crc)
        goto fail;
    for (uint32_t i = 0; i < h.count; i++)
        kn_idx_entry_parse(raw + (size_t)i * KN_IDX_ENTRY, s->base,
                           &(*out)[i]);
    rc = (int)h.count;
fail:
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    free(raw);
    free(path);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ----------------------------------------------------------- settings */

/* Sizes: an integer with an optional k, M, G, T (powers of 1000) or Ki,
 * Mi, Gi, Ti (powers of 1024) suffix; 0 is always accepted. */
static int parse_size(const char *key, const char *s, uint64_t min,
                      uint64_t max, uint64_t *out, kn_err *err)
{
    uint64_t v;
    if (kn_setting_size(s, true, UINT64_MAX, &v) != KN_OK)
        return kn_setting_error(err, key, "'%s' is not a size (bytes, "
                                "optionally with k/M/G/T or Ki/Mi/Gi/Ti)",
                                s);
    if (v != 0 && (v < min || v > max))
        return kn_setting_error(err, key, "%" PRIu64 " is outside %" PRIu64
                                "..%" PRIu64, v, min, max);
    *out = v;
    return KN_OK;
}

/* Durations: milliseconds as an integer, or ISO-8601 ("P7D", "PT1H"). */
static int parse_ms(const char *key, const char *s, int64_t *out,
                    kn_err *err)
{
    if (kn_setting_ms(s, out) != KN_OK)
        return kn_setting_error(err, key, "'%s' is not a duration "
                                "(milliseconds or ISO-8601 such as P7D)", s);
    return KN_OK;
}

static const char *const g_known[] = {
    "durability", "segment.bytes", "retention.bytes", "retention.ms",
    "retention.max.bytes", "index.interval.bytes", "recovery",
};

static int parse_settings(const json_t *set, kn_log_settings *o,
                          kn_err *err)
{
    char buf[32];
    const char *v;
    uint64_t u = 0;
    int rc;

    *o = (kn_log_settings){true, 64u << 20, 0, 0, 0, 4096, false};
    if (set && !json_is_object(set))
        return kn_err_set(err, KN_INVAL, "channel settings: not an object");
    if ((v = kn_setting_str(set, "durability", buf, sizeof buf))) {
        if (strcmp(v, "fsync") == 0)
            o->fsync = true;
        else if (strcmp(v, "write") == 0)
            o->fsync = false;
        else
            return kn_err_set(err, KN_INVAL,
                              "setting durability: '%s' is not one of "
                              "fsync, write", v);
    }
    if ((v = kn_setting_str(set, "segment.bytes", buf, sizeof buf)) &&
        (rc = parse_size("segment.bytes", v, 256, 1ull << 30,
                         &o->segment_bytes, err)))
        return rc;
    if (o->segment_bytes == 0)
        o->segment_bytes = 64u << 20;
    if ((v = kn_setting_str(set, "retention.bytes", buf, sizeof buf)) &&
        (rc = parse_size("retention.bytes", v, 1, UINT64_MAX,
                         &o->retention_bytes, err)))
        return rc;
    if ((v = kn_setting_str(set, "retention.max.bytes", buf, sizeof buf)) &&
        (rc = parse_size("retention.max.bytes", v, 1, UINT64_MAX,
                         &o->retention_max_bytes, err)))
        return rc;
    if ((v = kn_setting_str(set, "retention.ms", buf, sizeof buf)) &&
        (rc = parse_ms("retention.ms", v, &o->retention_ms, err)))
        return rc;
    if ((v = kn_setting_str(set, "index.interval.bytes", buf, sizeof buf))) {
        if ((rc = parse_size("index.interval.bytes", v, 64, 1u << 20, &u,
                             err)))
            return rc;
        o->index_interval = u ? (uint32_t)u : 4096;
    }
    if ((v = kn_setting_str(set, "recovery", buf, sizeof buf))) {
        if (strcmp(v, "truncate") == 0)
            o->recovery_truncate = true;
        else if (strcmp(v, "strict") != 0)
            return kn_err_set(err, KN_INVAL,
                              "setting recovery: '%s' is not one of "
                              "strict, truncate", v);
    }
    kn_settings_warn_unknown(set, g_known, sizeof g_known / sizeof *g_known,
                             KN_LOG_COMP, "log");
    return KN_OK;
}

/* ------------------------------------------------------ segment files */

int kn_seg_create(kn_log *lg, kn_seg *s)
{
    unsigned char hdr[KN_SEG_HDR];
    int fd, e;

    fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
        /* leftover of a roll that failed before it was published */
        unlink(s->path);
        fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    }
    if (fd < 0)
        return kn_log_status_errno(errno);
    kn_seg_header_build(hdr, s->base);
    ssize_t w = pwrite(fd, hdr, sizeof hdr, 0);
    if (w != (ssize_t)sizeof hdr || fdatasync(fd) != 0 ||
        fsync(lg->dir_fd) != 0) {
        e = w >= 0 && w != (ssize_t)sizeof hdr ? ENOSPC : errno;
        close(fd);
        unlink(s->path);
        errno = e;
        return kn_log_status_errno(e);
    }
    s->fd = fd;
    s->size = KN_SEG_HDR;
    return KN_OK;
}

static int list_segments(kn_log *lg, uint64_t **bases, size_t *count,
                         kn_err *err)
{
    DIR *d = opendir(lg->dir);
    struct dirent *de;
    size_t n = 0, cap = 0;
    uint64_t *v = NULL;

    if (!d)
        return kn_err_set(err, KN_IO, "log %s: cannot list %s: %s",
                          lg->label, lg->dir, strerror(errno));
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        size_t len = strlen(nm);
        if (len > 4 && strcmp(nm + len - 4, ".tmp") == 0) {
            unlinkat(lg->dir_fd, nm, 0); /* unfinished atomic write */
            continue;
        }
        if (len != 24 || strcmp(nm + 20, ".log") != 0 ||
            strspn(nm, "0123456789") != 20)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                free(v);
                closedir(d);
                return kn_err_set(err, KN_NOMEM, "out of memory");
            }
            v = nv;
        }
        v[n++] = strtoull(nm, NULL, 10);
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) /* insertion sort; n is small */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *bases = v;
    *count = n;
    return KN_OK;
}

static void scan_index_cb(void *arg, uint64_t off, uint64_t pos, int64_t ts)
{
    kn_seg_index_add(arg, off, pos, ts);
}

/* Scans the segment file through a private read-only mapping. */
static int scan_file(kn_log *lg, kn_seg *s, int fd, bool look_ahead,
                     kn_seg_scan *sc, kn_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return kn_err_set(err, KN_IO, "log %s: %s: %s", lg->label, s->path,
                          strerror(errno));
    size_t n = (size_t)st.st_size;
    if (n == 0)
        return kn_seg_scan_buf((const unsigned char *)"", 0, 1, false, NULL,
                               NULL, sc) == 0 ? KN_OK : KN_CORRUPT;
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        return kn_err_set(err, KN_IO, "log %s: cannot map %s: %s",
                          lg->label, s->path, strerror(errno));
    madvise(m, n, MADV_SEQUENTIAL);
    s->nidx = 0;
    int rc = kn_seg_scan_buf(m, n, lg->set.index_interval, look_ahead,
                             scan_index_cb, s, sc);
    munmap(m, n);
    while (s->nidx > 0 && s->idx[s->nidx - 1].offset >= sc->next_offset)
        s->nidx--;
    s->last_idx_pos = s->nidx ? s->idx[s->nidx - 1].pos : 0;
    return rc == 0 ? KN_OK : KN_CORRUPT;
}

static int open_sealed(kn_log *lg, kn_seg *s, kn_err *err)
{
    unsigned char hdr[KN_IDX_HDR];
    char why[200] = "missing";
    struct stat st;
    kn_idx_hdr h;
    char *ipath = kn_log_path(lg->dir, s->base, "idx");
    int fd, rc = KN_OK;

    if (!ipath)
        return kn_err_set(err, KN_NOMEM, "out of memory");
    if (stat(s->path, &st) != 0) {
        free(ipath);
        return kn_err_set(err, KN_IO, "log %s: %s: %s", lg->label, s->path,
                          strerror(errno));
    }
    fd = open(ipath, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read_full(fd, hdr, sizeof hdr, 0) != 0)
            snprintf(why, sizeof why, "truncated");
        else if (kn_idx_header_check(hdr, sizeof hdr, &h, why,
                                     sizeof why) == 0) {
            if (h.base == s->base && h.seg_size == (uint64_t)st.st_size) {
                s->next_offset = h.next_offset;
                s->size = h.seg_size;
                s->first_ts = h.first_ts;
                s->last_ts = h.last_ts;
                s->sealed = true;
                close(fd);
                free(ipath);
                return KN_OK;
            }
            snprintf(why, sizeof why, "it describes %" PRIu64
                     " bytes, the segment has %lld", h.seg_size,
                     (long long)st.st_size);
        }
        close(fd);
    }
    KN_WARN(KN_LOG_COMP, "log %s: index %s is unusable (%s); rebuilding it "
            "by scanning the segment", lg->label, ipath, why);
    free(ipath);
    fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kn_err_set(err, KN_IO, "log %s: %s: %s", lg->label, s->path,
                          strerror(errno));
    kn_seg_scan sc;
    rc = scan_file(lg, s, fd, false, &sc, err);
    close(fd);
    if (rc != KN_OK || sc.base != s->base || sc.stop != KN_REC_VALID) {
        uint64_t at = rc != KN_OK ? 0 : sc.stop_pos;
        if (rc == KN_OK && sc.base != s->base)
            snprintf(sc.why, sizeof sc.why, "header names base offset %"
                     PRIu64, sc.base);
        return kn_err_set(err, KN_CORRUPT, "log %s: sealed segment %s is "
                          "corrupt at byte %" PRIu64 ": %s", lg->label,
                          s->path, at, sc.why);
    }
    s->next_offset = sc.next_offset;
    s->size = sc.valid_bytes;
    s->first_ts = sc.first_ts;
    s->last_ts = sc.last_ts;
    s->sealed = true;
    rc = kn_log_write_index(lg, s, s->idx, s->nidx);
    free(s->idx);
    s->idx = NULL;
    s->nidx = s->capidx = 0;
    if (rc != KN_OK)
        return kn_err_set(err, rc, "log %s: cannot write the index of %s",
                          lg->label, s->path);
    return KN_OK;
}

/* Repairs a segment whose creation was cut short (shorter than its
 * header): it cannot hold records, so it is rewritten empty. */
static int rewrite_header(kn_log *lg, kn_seg *s, kn_err *err)
{
    unsigned char hdr[KN_SEG_HDR];
    kn_seg_header_build(hdr, s->base);
    if (ftruncate(s->fd, 0) != 0 ||
        pwrite(s->fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr ||
        fdatasync(s->fd) != 0)
        return kn_err_set(err, kn_log_status_errno(errno),
                          "log %s: cannot repair %s: %s", lg->label,
                          s->path, strerror(errno));
    return KN_OK;
}

static int recover_active(kn_log *lg, kn_seg *s, kn_err *err)
{
    struct stat st;
    kn_seg_scan sc;
    int rc;
    char *ipath = kn_log_path(lg->dir, s->base, "idx");

    if (ipath) { /* the active segment has no index file */
        unlink(ipath);
        free(ipath);
    }
    s->fd = open(s->path, O_RDWR | O_CLOEXEC);
    if (s->fd < 0 || fstat(s->fd, &st) != 0)
        return kn_err_set(err, KN_IO, "log %s: %s: %s", lg->label, s->path,
                          strerror(errno));
    if (st.st_size < (off_t)KN_SEG_HDR) {
        if (st.st_size > 0)
            KN_WARN(KN_LOG_COMP, "log %s: %s: header torn (%lld bytes); "
                    "rewriting the empty segment", lg->label, s->path,
                    (long long)st.st_size);
        return rewrite_header(lg, s, err);
    }
    if ((rc = scan_file(lg, s, s->fd, true, &sc, err)) != KN_OK)
        return kn_err_set(err, KN_CORRUPT, "log %s: %s: %s", lg->label,
                          s->path, sc.why);
    if (sc.base != s->base)
        return kn_err_set(err, KN_CORRUPT, "log %s: %s: header names base "
                          "offset %" PRIu64 ", the file name %" PRIu64,
                          lg->label, s->path, sc.base, s->base);
    s->next_offset = sc.next_offset;
    s->size = sc.valid_bytes;
    s->first_ts = sc.first_ts;
    s->last_ts = sc.last_ts;
    if (sc.stop == KN_REC_VALID)
        return KN_OK;
    if (sc.later_valid && !lg->set.recovery_truncate)
        return kn_err_set(err, KN_CORRUPT, "log %s: %s: corrupt record at "
                          "byte %" PRIu64 " (offset %" PRIu64 "): %s; intact "
                          "records follow at byte %" PRIu64 ", so this is "
                          "not a torn tail; refusing to drop them (setting "
                          "recovery=truncate discards everything from byte %"
                          PRIu64 ")", lg->label, s->path, sc.stop_pos,
                          sc.next_offset + sc.dropped, sc.why, sc.later_pos,
                          sc.valid_bytes);
    uint64_t cut = (uint64_t)st.st_size - sc.valid_bytes;
    if (ftruncate(s->fd, (off_t)sc.valid_bytes) != 0 ||
        fdatasync(s->fd) != 0)
        return kn_err_set(err, kn_log_status_errno(errno), "log %s: cannot "
                          "truncate %s: %s", lg->label, s->path,
                          strerror(errno));
    KN_WARN(KN_LOG_COMP, "log %s: recovered %s: %s at byte %" PRIu64
            "; truncated %" PRIu64 " bytes from byte %" PRIu64 ", keeping %"
            PRIu64 " records (offsets [%" PRIu64 ", %" PRIu64 ")), dropping %"
            PRIu64 " records of an unfinished append", lg->label, s->path,
            sc.why, sc.stop_pos, cut, sc.valid_bytes, sc.records, s->base,
            sc.next_offset, sc.dropped);
    return KN_OK;
}

static int push_seg(kn_log *lg, kn_seg *s)
{
    if (lg->nsegs == lg->capsegs) {
        size_t cap = lg->capsegs ? lg->capsegs * 2 : 16;
        kn_seg **v = realloc(lg->segs, cap * sizeof *v);
        if (!v)
            return KN_NOMEM;
        lg->segs = v;
        lg->capsegs = cap;
    }
    lg->segs[lg->nsegs++] = s;
    return KN_OK;
}

int kn_log_push_seg(kn_log *lg, kn_seg *s)
{
    return push_seg(lg, s);
}

static int load_segments(kn_log *lg, kn_err *err)
{
    uint64_t *bases = NULL;
    size_t n = 0;
    int rc = list_segments(lg, &bases, &n, err);
    if (rc != KN_OK)
        return rc;
    if (n == 0) {
        kn_seg *s = kn_seg_new(lg->dir, 0);
        if (!s || push_seg(lg, s) != KN_OK) {
            kn_seg_unref(s);
            return kn_err_set(err, KN_NOMEM, "out of memory");
        }
        if ((rc = kn_seg_create(lg, s)) != KN_OK)
            return kn_err_set(err, rc, "log %s: cannot create %s: %s",
                              lg->label, s->path, kn_status_str(rc));
        KN_INFO(KN_LOG_COMP, "log %s: created in %s", lg->label, lg->dir);
        return KN_OK;
    }
    for (size_t i = 0; i < n && rc == KN_OK; i++) {
        kn_seg *s = kn_seg_new(lg->dir, bases[i]);
        if (!s || push_seg(lg, s) != KN_OK) {
            kn_seg_unref(s);
            rc = kn_err_set(err, KN_NOMEM, "out of memory");
            break;
        }
        rc = i + 1 < n ? open_sealed(lg, s, err) : recover_active(lg, s, err);
        if (rc == KN_OK && i > 0 &&
            lg->segs[i - 1]->next_offset != s->base)
            rc = kn_err_set(err, KN_CORRUPT, "log %s: offsets [%" PRIu64
                            ", %" PRIu64 ") are missing: %s ends at %" PRIu64
                            " but the next segment is %s", lg->label,
                            lg->segs[i - 1]->next_offset, s->base,
                            lg->segs[i - 1]->path,
                            lg->segs[i - 1]->next_offset, s->path);
    }
    free(bases);
    return rc;
}

/* --------------------------------------------------------- open/close */

static void log_destroy(kn_log *lg)
{
    if (!lg)
        return;
    for (size_t i = 0; i < lg->nsegs; i++)
        kn_seg_unref(lg->segs[i]);
    free(lg->segs);
    kn_log_groups_free(lg);
    if (lg->dir_fd >= 0)
        close(lg->dir_fd);
    if (lg->lock_fd >= 0)
        close(lg->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&lg->mu);
    pthread_mutex_destroy(&lg->qmu);
    pthread_mutex_destroy(&lg->ckpt_mu);
    pthread_cond_destroy(&lg->cv);
    free(lg->dir);
    free(lg->label);
    free(lg);
}

static int open_dirs(kn_log *lg, kn_err *err)
{
    char path[4096];
    if (kn_mkdirs(lg->dir, 0755) != KN_OK)
        return kn_err_set(err, KN_IO, "log %s: cannot create %s: %s",
                          lg->label, lg->dir, strerror(errno));
    snprintf(path, sizeof path, "%s/cursors", lg->dir);
    if (kn_mkdirs(path, 0755) != KN_OK)
        return kn_err_set(err, KN_IO, "log %s: cannot create %s: %s",
                          lg->label, path, strerror(errno));
    lg->dir_fd = open(lg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    snprintf(path, sizeof path, "%s/LOCK", lg->dir);
    lg->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lg->dir_fd < 0 || lg->lock_fd < 0)
        return kn_err_set(err, KN_IO, "log %s: cannot open %s: %s",
                          lg->label, lg->dir_fd < 0 ? lg->dir : path,
                          strerror(errno));
    if (flock(lg->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return kn_err_set(err, errno == EWOULDBLOCK ? KN_EXISTS : KN_IO,
                          "log %s: %s is in use by another open log (%s)",
                          lg->label, lg->dir, strerror(errno));
    return KN_OK;
}

static kn_log *log_alloc(const kn_channel_config *cfg)
{
    pthread_condattr_t ca;
    kn_log *lg = calloc(1, sizeof *lg);
    if (!lg)
        return NULL;
    lg->base.ops = &kn_channel_log_ops;
    lg->dir_fd = lg->lock_fd = -1;
    lg->q_tail = &lg->q_head;
    pthread_mutex_init(&lg->mu, NULL);
    pthread_mutex_init(&lg->qmu, NULL);
    pthread_mutex_init(&lg->ckpt_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&lg->cv, &ca);
    pthread_condattr_destroy(&ca);
    lg->dir = strdup(cfg->data_dir);
    if (cfg->ns && cfg->name) {
        size_t n = strlen(cfg->ns) + strlen(cfg->name) + 2;
        if ((lg->label = malloc(n)))
            snprintf(lg->label, n, "%s/%s", cfg->ns, cfg->name);
    } else {
        lg->label = strdup(cfg->data_dir);
    }
    if (!lg->dir || !lg->label) {
        log_destroy(lg);
        return NULL;
    }
    lg->st.healthy = true;
    return lg;
}

static int log_open(const kn_channel_config *cfg, kn_channel **out,
                    kn_err *err)
{
    kn_log *lg = NULL;
    kn_log_settings set;
    int rc;

    *out = NULL;
    if (!cfg || !cfg->data_dir || !*cfg->data_dir)
        return kn_err_set(err, KN_INVAL, "log: no data directory given");
    if ((rc = parse_settings(cfg->settings, &set, err)) != KN_OK)
        return rc;
    if (!(lg = log_alloc(cfg)))
        return kn_err_set(err, KN_NOMEM, "out of memory");
    lg->set = set;
    if ((rc = open_dirs(lg, err)) != KN_OK ||
        (rc = load_segments(lg, err)) != KN_OK ||
        (rc = kn_log_groups_load(lg, err)) != KN_OK)
        goto fail;
    kn_seg *act = lg->segs[lg->nsegs - 1];
    lg->head = act->next_offset;
    lg->last_ts = act->last_ts;
    if ((rc = pthread_create(&lg->writer, NULL, kn_log_writer_main, lg))) {
        rc = kn_err_set(err, KN_NOMEM, "log %s: cannot start the writer "
                        "thread: %s", lg->label, strerror(rc));
        goto fail;
    }
    lg->writer_started = true;
    KN_DEBUG(KN_LOG_COMP, "log %s: open, %zu segments, offsets [%" PRIu64
             ", %" PRIu64 ")", lg->label, lg->nsegs, lg->segs[0]->base, lg->head);
    *out = &lg->base;
    return KN_OK;
fail:
    log_destroy(lg);
    return rc;
}

static void log_close(kn_channel *ch)
{
    kn_log *lg = (kn_log *)ch;
    if (!lg)
        return;
    pthread_mutex_lock(&lg->qmu);
    lg->stopping = true;
    pthread_cond_broadcast(&lg->cv);
    pthread_mutex_unlock(&lg->qmu);
    if (lg->writer_started)
        pthread_join(lg->writer, NULL);
    kn_seg *act = lg->segs[lg->nsegs - 1];
    if (act->fd >= 0 && fdatasync(act->fd) != 0)
        KN_ERROR(KN_LOG_COMP, "log %s: fdatasync %s at close: %s", lg->label,
                 act->path, strerror(errno));
    if (lg->cursors)
        KN_ERROR(KN_LOG_COMP, "log %s: closed with cursors still open",
                 lg->label);
    log_destroy(lg);
}

static void log_stats(kn_channel *ch, kn_channel_stats *out)
{
    kn_log *lg = (kn_log *)ch;
    pthread_mutex_lock(&lg->mu);
    *out = lg->st;
    out->head_offset = lg->head;
    out->first_offset = lg->segs[0]->base;
    out->segments = lg->nsegs;
    out->stored_bytes = 0;
    for (size_t i = 0; i < lg->nsegs; i++)
        out->stored_bytes += lg->segs[i]->size;
    pthread_mutex_unlock(&lg->mu);
}

const kn_channel_ops kn_channel_log_ops = {
    .name = "log",
    .version = 1,
    .open = log_open,
    .append = kn_log_append,
    .cursor_open = kn_log_cursor_open,
    .cursor_next = kn_log_cursor_next,
    .cursor_fd = kn_log_cursor_fd,
    .cursor_drain_notify = kn_log_cursor_drain,
    .cursor_commit = kn_log_cursor_commit,
    .cursor_seek = kn_log_cursor_seek,
    .cursor_close = kn_log_cursor_close,
    .cursor_delete = kn_log_cursor_delete,
    .stats = log_stats,
    .close = log_close,
};
