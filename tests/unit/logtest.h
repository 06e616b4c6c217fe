/*
 * Helpers shared by the log channel tests (03xx, 035x): temporary
 * directories, test events, synchronous appends and reading a cursor to
 * its end. Header-only; each test binary includes it once.
 */
#ifndef KNIT_TESTS_LOGTEST_H
#define KNIT_TESTS_LOGTEST_H

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channels/channel.h"

static inline void lt_mkdtemp(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/knit-%s-XXXXXX", tag);
    if (!mkdtemp(buf))
        abort();
}

static inline void lt_rmrf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* A frozen event with id "<prefix>-<i>" and data "payload-<i>" padded to
 * at least pad bytes. */
static inline ce_event *lt_event(const char *prefix, unsigned i, size_t pad)
{
    char id[64], data[4096];
    ce_event *ev = ce_event_new();
    snprintf(id, sizeof id, "%s-%u", prefix, i);
    int n = snprintf(data, sizeof data, "payload-%u", i);
    while ((size_t)n < pad && (size_t)n < sizeof data - 1)
        data[n++] = 'x';
    if (!ev || ce_event_set_str(ev, "specversion", "1.0", NULL) ||
        ce_event_set_str(ev, "id", id, NULL) ||
        ce_event_set_str(ev, "source", "/knit/test", NULL) ||
        ce_event_set_str(ev, "type", "dev.knit.test", NULL) ||
        ce_event_set_str(ev, "datacontenttype", "text/plain", NULL) ||
        ce_event_set_int(ev, "seq", (int32_t)i, NULL) ||
        ce_event_set_data(ev, data, (size_t)n))
        abort();
    ce_event_freeze(ev);
    return ev;
}

typedef struct lt_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
    uint64_t first;
} lt_wait;

static inline void lt_wait_init(lt_wait *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->done = 0;
    w->status = 1;
    w->first = 0;
}

static inline void lt_wait_cb(void *arg, int status, uint64_t first)
{
    lt_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done++;
    w->status = status;
    w->first = first;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static inline void lt_wait_for(lt_wait *w, int count)
{
    pthread_mutex_lock(&w->mu);
    while (w->done < count)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

/* Appends evs synchronously; returns the completion status (or the
 * append's own error) and the first offset in *first. */
static inline int lt_append(kn_channel *ch, ce_event *const *evs, size_t n,
                            uint64_t *first)
{
    lt_wait w;
    lt_wait_init(&w);
    int rc = kn_channel_append(ch, evs, n, lt_wait_cb, &w);
    if (rc != KN_OK)
        return rc;
    lt_wait_for(&w, 1);
    if (first)
        *first = w.first;
    return w.status;
}

/* Appends events prefix-from .. prefix-(to-1), one per call. */
static inline int lt_append_range(kn_channel *ch, const char *prefix,
                                  unsigned from, unsigned to, size_t pad)
{
    for (unsigned i = from; i < to; i++) {
        ce_event *ev = lt_event(prefix, i, pad);
        int rc = lt_append(ch, &ev, 1, NULL);
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

static inline json_t *lt_settings(const char *kv[][2], size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i][0], json_string(kv[i][1]));
    return o;
}

static inline long lt_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

#endif
