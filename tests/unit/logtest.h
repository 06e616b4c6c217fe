/*
 * Helpers shared by the log channel tests (03xx, 035x) on top of
 * tests/testutil.h: appending ranges of test events, opening a channel on
 * a directory, reading a cursor to its end, file sizes and capturing
 * knit's log output. Header-only; each test binary includes it once.
 */
#ifndef KNIT_TESTS_LOGTEST_H
#define KNIT_TESTS_LOGTEST_H

#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "common/common.h"
#include "tests/testutil.h"

/* Appends events prefix-from .. prefix-(to-1), one per call. */
static inline int lt_append_range(kn_channel *ch, const char *prefix,
                                  unsigned from, unsigned to, size_t pad)
{
    for (unsigned i = from; i < to; i++) {
        ce_event *ev = tu_event(prefix, i, pad);
        int rc = tu_append(ch, &ev, 1, NULL);
        ce_event_unref(ev);
        if (rc != KN_OK)
            return rc;
    }
    return KN_OK;
}

static inline kn_channel *lt_open(const char *backend, const char *dir,
                                  json_t *settings, kn_err *err)
{
    kn_channel_config cfg = {"default", "test", dir, settings};
    kn_channel *ch = NULL;
    int rc = kn_channel_open(backend, &cfg, &ch, err);
    return rc == KN_OK ? ch : NULL;
}

/* Reads everything currently available; returns the count or a negative
 * status. Checks offsets are consecutive from *expect (updated) and
 * ids "<prefix>-<offset + id_base>" when prefix is given. */
static inline int lt_drain(kn_cursor *c, uint64_t *expect,
                           const char *prefix, long id_base)
{
    kn_record recs[16];
    int total = 0;
    for (;;) {
        int n = c->channel->ops->cursor_next(c, recs, 16);
        if (n < 0)
            return n;
        if (n == 0)
            return total;
        for (int i = 0; i < n; i++) {
            int bad = recs[i].offset != *expect;
            if (prefix) {
                char id[64];
                snprintf(id, sizeof id, "%s-%ld", prefix,
                         (long)recs[i].offset + id_base);
                const char *got = ce_event_get(recs[i].event, "id", NULL,
                                               NULL);
                bad |= !got || strcmp(got, id) != 0;
            }
            ce_event_unref(recs[i].event);
            if (bad)
                return -1000 - (int)*expect;
            (*expect)++;
            total++;
        }
    }
}

static inline long lt_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* knit's log written to "<dir>.out" instead of stderr, for tests that
 * check what was logged. */
typedef struct lt_logcap {
    char path[96];
    int fd;
} lt_logcap;

static inline void lt_logcap_start(lt_logcap *lc, const char *dir)
{
    snprintf(lc->path, sizeof lc->path, "%s.out", dir);
    lc->fd = open(lc->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (lc->fd < 0)
        abort();
    kn_log_set_fd(lc->fd);
}

static inline void lt_logcap_stop(lt_logcap *lc)
{
    kn_log_set_fd(2);
    close(lc->fd);
    unlink(lc->path);
}

/* What was logged so far (a static buffer; echoed to stderr when
 * KNIT_TEST_VERBOSE is set); `reset` empties the file afterwards. */
static inline const char *lt_logcap_text(lt_logcap *lc, bool reset)
{
    static char buf[16384];
    ssize_t n = pread(lc->fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    if (getenv("KNIT_TEST_VERBOSE"))
        fputs(buf, stderr);
    if (reset && (ftruncate(lc->fd, 0) != 0 ||
                  lseek(lc->fd, 0, SEEK_SET) != 0))
        abort();
    return buf;
}

/* A group fixture for the tests that read what knit logged: lt_dir is a
 * new temporary directory (tag "log"), knit's log goes to lt_cap. */
static char lt_dir[64] __attribute__((unused));
static lt_logcap lt_cap __attribute__((unused));

static inline int lt_logcap_setup(void **state)
{
    (void)state;
    tu_mkdtemp(lt_dir, sizeof lt_dir, "log");
    lt_logcap_start(&lt_cap, lt_dir);
    return 0;
}

static inline int lt_logcap_teardown(void **state)
{
    (void)state;
    lt_logcap_stop(&lt_cap);
    return tu_rmrf(lt_dir);
}

#endif
