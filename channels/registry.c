/*
 * Channel backend registry: backends register their const ops table by
 * name; kn_channel_open looks one up and opens it. The built-in backends
 * are listed in kn_channels_register_builtin (a backend compiled into
 * libknit_channels adds its table there).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "channels/channel.h"

#define MAX_BACKENDS 16

static const kn_channel_ops *g_ops[MAX_BACKENDS];
static size_t g_count;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_builtin_once = PTHREAD_ONCE_INIT;

static bool ops_complete(const kn_channel_ops *o)
{
    return o->name && *o->name && o->version >= 1 && o->open &&
           o->append && o->cursor_open && o->cursor_next && o->cursor_fd &&
           o->cursor_drain_notify && o->cursor_commit && o->cursor_seek &&
           o->cursor_close && o->cursor_delete && o->stats && o->close;
}

int kn_channel_register(const kn_channel_ops *ops)
{
    int rc = KN_OK;
    if (!ops || !ops_complete(ops))
        return KN_INVAL;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_count; i++)
        if (strcmp(g_ops[i]->name, ops->name) == 0) {
            rc = g_ops[i] == ops ? KN_OK : KN_EXISTS;
            goto out;
        }
    if (g_count == MAX_BACKENDS)
        rc = KN_NOMEM;
    else
        g_ops[g_count++] = ops;
out:
    pthread_mutex_unlock(&g_mu);
    return rc;
}

const kn_channel_ops *kn_channel_find(const char *name)
{
    const kn_channel_ops *found = NULL;
    if (!name)
        return NULL;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_count && !found; i++)
        if (strcmp(g_ops[i]->name, name) == 0)
            found = g_ops[i];
    pthread_mutex_unlock(&g_mu);
    return found;
}

static void register_builtin(void)
{
    kn_channel_register(&kn_channel_log_ops);
    kn_channel_register(&kn_channel_memory_ops);
    kn_channel_register(&kn_channel_nats_ops);
    kn_channel_register(&kn_channel_kafka_ops);
}

void kn_channels_register_builtin(void)
{
    pthread_once(&g_builtin_once, register_builtin);
}

int kn_channel_open(const char *backend, const kn_channel_config *cfg,
                    kn_channel **out, kn_err *err)
{
    const kn_channel_ops *ops;
    char known[256] = "";
    size_t used = 0;

    *out = NULL;
    kn_channels_register_builtin();
    if (!backend || !*backend)
        backend = "log";
    if ((ops = kn_channel_find(backend)))
        return ops->open(cfg, out, err);
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_count && used < sizeof known; i++)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s",
                                 i ? ", " : "", g_ops[i]->name);
    pthread_mutex_unlock(&g_mu);
    return kn_err_set(err, KN_NOTFOUND, "unknown channel backend '%s' "
                      "(known: %s)", backend, known);
}
