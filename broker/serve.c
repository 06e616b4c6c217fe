/*
 * `knit serve`: parses the options, locks the data directory, starts the
 * admin and ingress listeners, loads the persisted resources and the
 * --config directory, then waits for SIGTERM/SIGINT (retrying failed
 * channels every few seconds). Shutdown: stop accepting, let in-flight
 * appends finish and answer, stop the listeners, close (flush) every
 * channel, exit 0.
 *
 * Threads: everything here runs on the main thread; SIGTERM/SIGINT are
 * blocked in every thread and taken with sigtimedwait.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"

#define RESYNC_SECONDS 3
#define DRAIN_MS 30000

static const char usage[] =
    "usage: knit serve [--config DIR] [--data DIR] [--listen ADDR:PORT]\n"
    "                  [--admin ADDR:PORT] [--log-level debug|info|warn|"
    "error]\n"
    "                  [--log-format text|json]\n"
    "\n"
    "Runs the knit daemon.\n"
    "  --config DIR      apply every *.yaml/*.yml of DIR at startup\n"
    "  --data DIR        data directory (default " KN_DEFAULT_DATA_DIR ")\n"
    "  --listen A:P      HTTP ingress (default " KN_DEFAULT_LISTEN ")\n"
    "  --admin A:P       admin API and /metrics (default " KN_DEFAULT_ADMIN
    ")\n"
    "  --log-level L     debug, info (default), warn or error\n"
    "  --log-format F    text (default) or json\n"
    "Port 0 picks a free port; the bound ports are logged at startup.\n";

int kn_parse_listen(const char *s, struct sockaddr_storage *ss,
                    size_t *sslen, kn_err *err)
{
    char host[256];
    const char *port;
    if (!s || !*s)
        return kn_err_set(err, KN_INVAL, "empty listen address");
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host)
            return kn_err_set(err, KN_INVAL,
                              "%s: expected [ADDR]:PORT", s);
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host)
            return kn_err_set(err, KN_INVAL, "%s: expected ADDR:PORT", s);
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    char *endp = NULL;
    long p = strtol(port, &endp, 10);
    if (!*port || *endp || p < 0 || p > 65535)
        return kn_err_set(err, KN_INVAL, "%s: invalid port \"%s\"", s, port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0 || !res)
        return kn_err_set(err, KN_INVAL, "%s: %s", s, gai_strerror(rc));
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return KN_OK;
}

typedef struct serve_args {
    kn_serve_opts o;
    const char *log_level;
    const char *log_format;
} serve_args;

static int opt_value(int argc, char **argv, int *i, const char *name,
                     const char **out)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *out = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "knit serve: %s needs a value\n", name);
        return -1;
    }
    *out = argv[++*i];
    return 1;
}

/* 0 ok, 1 help printed, -1 usage error. */
static int parse_args(int argc, char **argv, serve_args *a)
{
    static const char *const names[] = {"--config", "--data", "--listen",
                                        "--admin", "--log-level",
                                        "--log-format"};
    const char **slots[] = {&a->o.config_dir, &a->o.data_dir, &a->o.listen,
                            &a->o.admin, &a->log_level, &a->log_format};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 1;
        }
        int hit = 0;
        for (size_t k = 0; k < 6 && !hit; k++)
            hit = opt_value(argc, argv, &i, names[k], slots[k]);
        if (hit < 0)
            return -1;
        if (!hit) {
            fprintf(stderr, "knit serve: unknown argument \"%s\"\n%s",
                    argv[i], usage);
            return -1;
        }
    }
    return 0;
}

static int setup_logging(const serve_args *a)
{
    kn_log_level lvl = KN_LOG_INFO;
    if (a->log_level && kn_log_level_parse(a->log_level, &lvl) != KN_OK) {
        fprintf(stderr, "knit serve: --log-level: \"%s\" is not one of "
                "debug, info, warn, error\n", a->log_level);
        return -1;
    }
    bool json = false;
    if (a->log_format) {
        if (strcmp(a->log_format, "json") == 0)
            json = true;
        else if (strcmp(a->log_format, "text") != 0) {
            fprintf(stderr, "knit serve: --log-format: \"%s\" is not one "
                    "of text, json\n", a->log_format);
            return -1;
        }
    }
    kn_log_init(lvl, json);
    return 0;
}

/* One knit per data directory: an exclusive flock held until exit. */
static int lock_data_dir(const char *dir, int *fd_out, kn_err *err)
{
    char path[4200];
    if (kn_mkdirs(dir, 0755) != 0)
        return kn_err_set(err, KN_IO, "cannot create %s: %s", dir,
                          strerror(errno));
    snprintf(path, sizeof path, "%s/knit.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return kn_err_set(err, KN_IO, "%s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return kn_err_set(err, KN_EXISTS, "data directory %s is in use by "
                          "another knit process", dir);
    }
    *fd_out = fd;
    return KN_OK;
}

static void ingress_url(const char *listen, uint16_t port, char *out,
                        size_t n)
{
    char host[256] = "localhost";
    const char *colon = strrchr(listen, ':');
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    if (hl && hl < sizeof host && strncmp(listen, "0.0.0.0", hl) != 0 &&
        strncmp(listen, "[::]", hl) != 0) {
        memcpy(host, listen, hl);
        host[hl] = '\0';
    }
    snprintf(out, n, "http://%s:%u", host, (unsigned)port);
}

typedef struct daemon_state {
    kn_server *srv;
    kn_admin *admin;
    kn_ingress *ingress;
    int lock_fd;
} daemon_state;

static int start(const serve_args *a, daemon_state *d, kn_err *err)
{
    uint16_t aport = 0, iport = 0;
    int rc = lock_data_dir(a->o.data_dir, &d->lock_fd, err);
    if (rc == KN_OK)
        rc = kn_server_new(&a->o, &d->srv, err);
    if (rc == KN_OK)
        rc = kn_admin_start(d->srv, a->o.admin, &d->admin, &aport, err);
    if (rc != KN_OK)
        return rc;
    KN_INFO("serve", "admin listening on %.*s:%u",
            (int)(strrchr(a->o.admin, ':') - a->o.admin), a->o.admin,
            (unsigned)aport);
    rc = kn_ingress_start(d->srv, a->o.listen, &d->ingress, &iport, err);
    if (rc != KN_OK)
        return rc;
    KN_INFO("serve", "ingress listening on %.*s:%u",
            (int)(strrchr(a->o.listen, ':') - a->o.listen), a->o.listen,
            (unsigned)iport);
    char url[300];
    ingress_url(a->o.listen, iport, url, sizeof url);
    kn_server_set_ingress_url(d->srv, url);
    if ((rc = kn_server_load(d->srv, err)) != KN_OK)
        return rc;
    if (a->o.config_dir) {
        json_t *results = NULL;
        rc = kn_server_apply_dir(d->srv, a->o.config_dir, &results, err);
        json_decref(results);
    }
    if (rc == KN_OK)
        kn_server_set_loaded(d->srv);
    return rc;
}

/* Shutdown order: stop accepting (new requests on open connections get
 * 503), let in-flight appends finish and be answered, end tails, close
 * the channels (this waits for any request still holding one, and
 * completes what is pending), answer those, then stop the listeners —
 * never with a connection still suspended on an append. */
static void stop(daemon_state *d)
{
    kn_ingress_quiesce(d->ingress);
    kn_ingress_drain(d->ingress, DRAIN_MS);
    kn_admin_stop(d->admin);
    if (d->srv)
        kn_server_close_channels(d->srv);
    kn_ingress_drain(d->ingress, DRAIN_MS);
    kn_ingress_stop(d->ingress);
    kn_server_free(d->srv);
    kn_metrics_shutdown();
    if (d->lock_fd >= 0)
        close(d->lock_fd);
}

static void wait_for_signal(kn_server *srv)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    for (;;) {
        struct timespec ts = {.tv_sec = RESYNC_SECONDS};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            KN_INFO("serve", "%s received, shutting down",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return;
        }
        kn_server_resync(srv);
    }
}

int kn_serve_main(int argc, char **argv)
{
    serve_args a = {.o = {.data_dir = KN_DEFAULT_DATA_DIR,
                          .listen = KN_DEFAULT_LISTEN,
                          .admin = KN_DEFAULT_ADMIN}};
    int pr = parse_args(argc, argv, &a);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    if (setup_logging(&a) != 0)
        return 2;
    /* Block the shutdown signals before any thread starts, so only the
     * main thread takes them (sigtimedwait). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Under a file-size limit (RLIMIT_FSIZE) a write past it must fail
     * with EFBIG (→ 503) instead of killing the daemon. */
    signal(SIGXFSZ, SIG_IGN);
    kn_channels_register_builtin();

    daemon_state d = {.lock_fd = -1};
    kn_err err = {0};
    int rc = start(&a, &d, &err);
    if (rc != KN_OK) {
        char line[1024];
        KN_ERROR("serve", "%s", kn_err_str(&err, line, sizeof line));
        stop(&d);
        return 1;
    }
    KN_INFO("serve", "knit %s ready (data %s)", KNIT_VERSION, a.o.data_dir);
    wait_for_signal(d.srv);
    stop(&d);
    KN_INFO("serve", "stopped");
    return 0;
}
