/*
 * nats_test.h: helpers for the NATS channel tests (08xx) and
 * bench/nats_channel.c. Starts a real `nats-server -js` on a free loopback
 * port with a temporary store directory (or uses KNIT_TEST_NATS_URL when
 * set), restarts it on the same port and store, stops it; opens the nats
 * channel on it; compares events. Events, appends and reads come from
 * tests/testutil.h. Header-only; no cmocka inside so the benchmark can
 * use it too.
 */
#ifndef KNIT_NATS_TEST_H
#define KNIT_NATS_TEST_H

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <nats/nats.h>

#include "common/common.h"
#include "tests/testutil.h"

#define NT_UNUSED __attribute__((unused))

typedef struct nt_server {
    pid_t pid;
    int port;
    char dir[64];          /* store directory (and server log) */
    char url[128];
    int external;          /* KNIT_TEST_NATS_URL: not ours to start/stop */
} nt_server;

/* Finds the nats-server binary; NULL if missing. */
static NT_UNUSED const char *nt_binary(void)
{
    static const char *const cands[] = {"/usr/sbin/nats-server",
                                        "/usr/bin/nats-server",
                                        "/usr/local/bin/nats-server"};
    const char *env = getenv("KNIT_NATS_SERVER");
    if (env && access(env, X_OK) == 0)
        return env;
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return NULL;
}

/* True once JetStream answers on url (within timeout_ms); false at once
 * if the child `pid` (when > 0) exited. */
static NT_UNUSED int nt_wait_ready_pid(const char *url, int timeout_ms,
                                       pid_t pid)
{
    int64_t end = tu_now_ms() + timeout_ms;
    while (tu_now_ms() < end) {
        if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        jsAccountInfo *ai = NULL;
        natsOptions *o = NULL;
        int ok = 0;
        natsOptions_Create(&o);
        natsOptions_SetURL(o, url);
        natsOptions_SetTimeout(o, 500);
        natsOptions_SetAllowReconnect(o, false);
        if (natsConnection_Connect(&nc, o) == NATS_OK &&
            natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
            js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK)
            ok = 1;
        jsAccountInfo_Destroy(ai);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        natsOptions_Destroy(o);
        if (ok)
            return 1;
        tu_sleep_ms(20);
    }
    return 0;
}

static NT_UNUSED int nt_wait_ready(const char *url, int timeout_ms)
{
    return nt_wait_ready_pid(url, timeout_ms, 0) > 0;
}

/* Spawns nats-server on s->port with store s->dir and waits until
 * JetStream answers. Returns 0 or -1. */
static NT_UNUSED int nt_spawn(nt_server *s)
{
    char port[16], log[96];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* a crashed test must not leave its server behind */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        dup2(2, 1);
        execl(nt_binary(), "nats-server", "-js", "-a", "127.0.0.1", "-p",
              port, "-sd", s->dir, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    int r = nt_wait_ready_pid(s->url, 10000, pid);
    if (r > 0)
        return 0;
    if (r == 0) { /* still running but not answering */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    s->pid = 0;
    return -1;
}

/* Starts a server on a free port with a new store directory. Returns 0
 * on success, 77 when nats-server is not installed, -1 on failure. */
static NT_UNUSED int nt_start(nt_server *s)
{
    const char *ext = getenv("KNIT_TEST_NATS_URL");

    memset(s, 0, sizeof *s);
    if (ext && *ext) {
        s->external = 1;
        snprintf(s->url, sizeof s->url, "%s", ext);
        return nt_wait_ready(s->url, 5000) ? 0 : -1;
    }
    if (!nt_binary())
        return 77;
    snprintf(s->dir, sizeof s->dir, "/tmp/knit-nats-XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = tu_free_port();
        if (nt_spawn(s) == 0)
            return 0;
    }
    return -1;
}

/* Stops the server (SIGKILL when hard, else SIGTERM) and waits. */
static NT_UNUSED void nt_stop(nt_server *s, int hard)
{
    if (s->external || s->pid <= 0)
        return;
    kill(s->pid, hard ? SIGKILL : SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

/* Restarts on the same port and store directory (the port may take a
 * moment to be free again). */
static NT_UNUSED int nt_restart(nt_server *s)
{
    if (s->external)
        return -1;
    for (int attempt = 0; attempt < 20; attempt++) {
        if (nt_spawn(s) == 0)
            return 0;
        tu_sleep_ms(100);
    }
    return -1;
}

static NT_UNUSED void nt_cleanup(nt_server *s)
{
    nt_stop(s, 0);
    if (!s->external && s->dir[0])
        tu_rmrf(s->dir);
}

/* A broker name unique to this process and tag (the server may be shared
 * through KNIT_TEST_NATS_URL). */
static NT_UNUSED void nt_broker(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "%s-%ld", tag, (long)getpid());
}

/* Settings object {"url": url, kv...} (a "url" in kv wins); caller
 * json_decref's it. */
static NT_UNUSED json_t *nt_settings(const char *url, const char *kv[][2],
                                     size_t n)
{
    json_t *o = tu_settings(kv, n);
    if (!json_object_get(o, "url"))
        json_object_set_new(o, "url", json_string(url));
    return o;
}

static NT_UNUSED kn_channel *nt_open(const char *broker, json_t *settings,
                                     kn_err *err)
{
    kn_channel_config cfg = {"default", broker, "/nonexistent", settings};
    kn_channel *ch = NULL;
    kn_channels_register_builtin();
    if (kn_channel_open("nats", &cfg, &ch, err) != KN_OK)
        return NULL;
    return ch;
}

/* Same attributes (names and values; binary mode does not carry
 * extension types) and data. */
static NT_UNUSED int nt_same_event(const ce_event *a, const ce_event *b)
{
    size_t n = ce_event_attr_count(a), an = 0, bn = 0;
    const void *ad, *bd;
    if (n != ce_event_attr_count(b))
        return 0;
    for (size_t i = 0; i < n; i++) {
        ce_attr x;
        size_t len;
        ce_event_attr_at(a, i, &x);
        const char *v = ce_event_get(b, x.name, &len, NULL);
        if (!v || len != x.len || memcmp(v, x.value, len) != 0)
            return 0;
    }
    if (ce_event_has_data(a) != ce_event_has_data(b))
        return 0;
    ad = ce_event_data(a, &an);
    bd = ce_event_data(b, &bn);
    return an == bn && (an == 0 || memcmp(ad, bd, an) == 0);
}

/* A raw cnats connection + JetStream context for checks. */
static NT_UNUSED int nt_raw(const char *url, natsConnection **nc,
                            jsCtx **js)
{
    if (natsConnection_ConnectTo(nc, url) != NATS_OK)
        return -1;
    if (natsConnection_JetStream(js, *nc, NULL) != NATS_OK) {
        natsConnection_Destroy(*nc);
        return -1;
    }
    return 0;
}

#ifdef cmocka_unit_test
/* ----------------------------------------- for the cmocka tests (08xx) */

/* The test program's server: nt_group_setup starts it (nt_srv_rc 0, or
 * 77 without nats-server: tests begin with NT_NEED_SERVER() to skip). */
static nt_server nt_srv;
static int nt_srv_rc;

static NT_UNUSED int nt_group_setup(void **state)
{
    (void)state;
    if (getenv("KNIT_TEST_DEBUG"))
        kn_log_set_level(KN_LOG_DEBUG);
    nt_srv_rc = nt_start(&nt_srv);
    if (nt_srv_rc == -1)
        fprintf(stderr, "cannot start nats-server\n");
    return nt_srv_rc == -1 ? -1 : 0;
}

/* nt_group_setup for tests that kill and restart the server: they skip
 * (77) when it is KNIT_TEST_NATS_URL's, which cannot be restarted. */
static NT_UNUSED int nt_group_setup_own(void **state)
{
    int rc = nt_group_setup(state);
    if (nt_srv_rc == 0 && nt_srv.external)
        nt_srv_rc = 77;
    return rc;
}

static NT_UNUSED int nt_group_teardown(void **state)
{
    (void)state;
    nt_cleanup(&nt_srv);
    return 0;
}

#define NT_NEED_SERVER()                                                   \
    do {                                                                   \
        if (nt_srv_rc == 77)                                               \
            skip();                                                        \
    } while (0)

/* Opens channel default/<broker> on the server at url with settings kv;
 * the test fails (with the error) when it does not open. */
static NT_UNUSED kn_channel *nt_open_at(const char *url, const char *broker,
                                        const char *kv[][2], size_t n)
{
    json_t *set = nt_settings(url, kv, n);
    kn_err err = {0};
    kn_channel *ch = nt_open(broker, set, &err);
    if (!ch)
        fprintf(stderr, "open: %s\n", err.msg);
    json_decref(set);
    assert_non_null(ch);
    return ch;
}

/* The same on the test program's server. */
static NT_UNUSED kn_channel *nt_open_ch(const char *broker,
                                        const char *kv[][2], size_t n)
{
    return nt_open_at(nt_srv.url, broker, kv, n);
}
#endif /* cmocka_unit_test */

#endif
