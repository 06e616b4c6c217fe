/*
 * Deferred writer wake-ups for bursts of appends (see channel.h). The
 * scope is per thread: a small table of (fn, arg) pairs, each called once
 * when the outermost scope ends. A full table makes the backend wake at
 * once, so nothing is ever lost, only not batched.
 */
#include <stddef.h>

#include "channels/channel.h"

#define MAX_DEFERRED 16

typedef struct defer_scope {
    int depth;
    size_t n;
    struct {
        void (*fn)(void *);
        void *arg;
    } w[MAX_DEFERRED];
} defer_scope;

static _Thread_local defer_scope g_defer;

void kn_channel_defer_begin(void)
{
    g_defer.depth++;
}

void kn_channel_defer_end(void)
{
    if (g_defer.depth <= 0 || --g_defer.depth > 0)
        return;
    /* a wake may run appends' completions elsewhere, never here: the
     * table is read in full before anything is called again */
    size_t n = g_defer.n;
    g_defer.n = 0;
    for (size_t i = 0; i < n; i++)
        g_defer.w[i].fn(g_defer.w[i].arg);
}

bool kn_channel_defer_wake(void (*fn)(void *), void *arg)
{
    defer_scope *d = &g_defer;
    if (d->depth <= 0)
        return false;
    for (size_t i = 0; i < d->n; i++)
        if (d->w[i].fn == fn && d->w[i].arg == arg)
            return true;
    if (d->n == MAX_DEFERRED)
        return false;
    d->w[d->n].fn = fn;
    d->w[d->n].arg = arg;
    d->n++;
    return true;
}
