/*
 * bench/log_open: how long opening (recovering) a large log takes. Builds
 * a log of SIZE bytes (default 1 GiB, 1 KiB events, 64 MiB segments,
 * durability "write" to build it fast), then times kn_channel_open with
 * the files in the page cache (warm) and after evicting them with
 * posix_fadvise(DONTNEED) (cold). The log is built so its active
 * segment (the one open scans) is nearly full: the worst case. Reference, same run: reading every
 * segment file once (what a full scan on open would at least cost).
 *
 * Usage: log_open [size-MiB [dir]]   (default 1024, a directory in /tmp)
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channels/channel.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long acked;

static void on_ack(void *arg, int status, uint64_t first)
{
    (void)arg;
    (void)first;
    if (status != KN_OK)
        abort();
    pthread_mutex_lock(&mu);
    acked++;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static double now_s(void)
{
    return (double)kn_now_mono_ns() / 1e9;
}

/* Size of the newest segment file (the active one). */
static long long active_size(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char best[64] = "";
    while ((de = readdir(d)))
        if (strlen(de->d_name) == 24 && strstr(de->d_name, ".log") &&
            strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", de->d_name);
    closedir(d);
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, best);
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

static void build(const char *dir, long mib)
{
    const char *kv = "{\"durability\": \"write\"}";
    json_t *set = json_loads(kv, 0, NULL);
    kn_channel_config cfg = {"bench", "open", dir, set};
    kn_channel *ch;
    kn_err err;
    if (kn_channel_open("log", &cfg, &ch, &err) != KN_OK)
        exit(1);
    char data[960];
    memset(data, 'd', sizeof data);
    ce_event *ev = ce_event_new();
    ce_event_set_str(ev, "specversion", "1.0", NULL);
    ce_event_set_str(ev, "id", "id-000000000000", NULL);
    ce_event_set_str(ev, "source", "/bench", NULL);
    ce_event_set_str(ev, "type", "bench.open", NULL);
    ce_event_set_data(ev, data, sizeof data);
    ce_event_freeze(ev);
    ce_event *batch[64];
    for (int i = 0; i < 64; i++)
        batch[i] = ev;
    long calls = mib * 1024 / 64; /* ~1 KiB per event */
    /* then on until the active segment is nearly full: the worst case,
     * since open scans the active segment */
    for (long i = 0; i < calls || (i % 16 != 0 ||
                                   active_size(dir) < (60ll << 20)); i++) {
        pthread_mutex_lock(&mu);
        while (i - acked > 32)
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
        if (kn_channel_append(ch, batch, 64, on_ack, NULL) != KN_OK)
            abort();
    }
    kn_channel_close(ch);
    ce_event_unref(ev);
    json_decref(set);
}

/* Reads (reference) or evicts every file of the log directory. */
static long long each_file(const char *dir, int evict)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    static char buf[1 << 20];
    long long total = 0;
    while ((de = readdir(d))) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        int fd = open(p, O_RDONLY);
        if (fd < 0)
            continue;
        if (evict) {
            fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        } else {
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) > 0)
                total += n;
        }
        close(fd);
    }
    closedir(d);
    return total;
}

static double time_open(const char *dir, kn_channel_stats *st)
{
    kn_channel_config cfg = {"bench", "open", dir, NULL};
    kn_channel *ch;
    kn_err err;
    double t0 = now_s();
    if (kn_channel_open("log", &cfg, &ch, &err) != KN_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    double t = now_s() - t0;
    ch->ops->stats(ch, st);
    kn_channel_close(ch);
    return t;
}

int main(int argc, char **argv)
{
    long mib = argc > 1 ? atol(argv[1]) : 1024;
    char dir[256];
    if (argc > 2) {
        snprintf(dir, sizeof dir, "%s", argv[2]);
    } else {
        snprintf(dir, sizeof dir, "/tmp/knit-bench-open-XXXXXX");
        if (!mkdtemp(dir))
            return 1;
    }
    kn_log_set_level(KN_LOG_WARN);
    double t0 = now_s();
    build(dir, mib);
    printf("log_open: built %ld MiB in %.1f s in %s\n", mib, now_s() - t0,
           dir);
    kn_channel_stats st;
    double warm = time_open(dir, &st);
    warm = time_open(dir, &st) < warm ? time_open(dir, &st) : warm;
    each_file(dir, 1);
    double cold = time_open(dir, &st);
    each_file(dir, 1);
    t0 = now_s();
    long long bytes = each_file(dir, 0);
    double ref = now_s() - t0;
    printf("events %llu, segments %llu, stored %.0f MiB\n",
           (unsigned long long)st.head_offset,
           (unsigned long long)st.segments, (double)st.stored_bytes / 1048576);
    printf("active segment: %.1f MiB (scanned on open)\n",
           (double)active_size(dir) / 1048576);
    printf("open, warm cache: %8.3f s\n", warm);
    printf("open, cold cache: %8.3f s\n", cold);
    printf("reference, reading all %lld MiB cold: %.3f s (open = %.3f of "
           "it)\n", bytes >> 20, ref, cold / ref);
    if (argc <= 2) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
