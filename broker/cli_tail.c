/*
 * cli_tail.c — `knit tail NS/NAME`: streams /v1/tail/NS/NAME from the admin
 * API (NDJSON, one JSON-format CloudEvent per line) and prints each event
 * as one human-readable line, or the JSON lines as received (-o json).
 *
 * The loop is curl multi + curl_multi_poll with one extra descriptor: the
 * read end of a self-pipe that the SIGINT/SIGTERM handler writes to, so
 * Ctrl-C ends the stream at once, cleanly, with exit status 0.
 */
#include "broker/cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloudevents/cesql.h"
#include "common/common.h"

#define TAIL_DATA_PREVIEW 120
#define TAIL_ERRBODY_MAX 65536

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_seen;

static void
on_signal(int sig)
{
    int saved = errno;
    char c = 1;

    (void)sig;
    sig_seen = 1;
    if (sig_pipe[1] >= 0 && write(sig_pipe[1], &c, 1) < 0) {
        /* the pipe is full: a byte is already waiting */
    }
    errno = saved;
}

typedef struct tail_ctx {
    bool json;
    long status; /* HTTP status once known, else 0 */
    CURL *h;
    kn_cli_lines lines;
    ce_buf errbody; /* body of a non-200 answer */
    bool out_failed;
    const ce_sql_expr *filter; /* --filter, or NULL */
    ce_sql_ctx *sql;
} tail_ctx;

static int
on_line(void *ud, const char *line, size_t len)
{
    tail_ctx *t = ud;
    ce_event *ev = NULL;
    ce_buf out = CE_BUF_INIT;
    ce_err ce;

    if (len == 0)
        return 0;
    memset(&ce, 0, sizeof(ce));
    /* -o json without a filter passes the line through untouched. */
    if ((!t->json || t->filter) &&
        ce_json_decode(line, len, &ev, &ce) != CE_OK) {
        fprintf(stderr,
                "knit: skipping a line of the stream that is not a "
                "valid event: %s%s%s\n",
                ce.attr, ce.attr[0] ? ": " : "", ce.msg);
    } else if (t->filter && !ce_sql_match(t->filter, ev, t->sql)) {
        /* filtered out */
    } else if (t->json) {
        fwrite(line, 1, len, stdout);
        fputc('\n', stdout);
    } else if (kn_cli_format_event_line(ev, TAIL_DATA_PREVIEW, &out) == 0) {
        fputs(out.data, stdout);
        fputc('\n', stdout);
    }
    ce_event_unref(ev);
    ce_buf_free(&out);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        t->out_failed = true;
        return -1;
    }
    return 0;
}

static size_t
on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    tail_ctx *t = ud;
    size_t n = size * nmemb;

    if (t->status == 0)
        curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &t->status);
    if (t->status != 200) {
        if (t->errbody.len < TAIL_ERRBODY_MAX &&
            ce_buf_append(&t->errbody, p, n) != 0)
            return 0;
        return n;
    }
    return kn_cli_lines_feed(&t->lines, p, n, on_line, t) == 0 ? n : 0;
}

static int
install_signals(struct sigaction *old_int, struct sigaction *old_term)
{
    struct sigaction sa;

    if (pipe(sig_pipe) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
        fcntl(sig_pipe[i], F_SETFL, O_NONBLOCK);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
    return 0;
}

static void
restore_signals(const struct sigaction *old_int,
                const struct sigaction *old_term)
{
    sigaction(SIGINT, old_int, NULL);
    sigaction(SIGTERM, old_term, NULL);
    for (int i = 0; i < 2; i++) {
        if (sig_pipe[i] >= 0)
            close(sig_pipe[i]);
        sig_pipe[i] = -1;
    }
}

/* Runs the transfer until it ends or a signal arrives. Returns the
 * transfer's result, or -1 when interrupted. */
static int
pump(CURLM *m)
{
    struct curl_waitfd wfd;
    CURLMsg *msg;
    int running = 1, left;

    while (running && !sig_seen) {
        if (curl_multi_perform(m, &running) != CURLM_OK)
            return CURLE_FAILED_INIT;
        if (!running)
            break;
        memset(&wfd, 0, sizeof(wfd));
        wfd.fd = sig_pipe[0];
        wfd.events = CURL_WAIT_POLLIN;
        if (curl_multi_poll(m, &wfd, 1, 1000, NULL) != CURLM_OK)
            return CURLE_FAILED_INIT;
        if (wfd.revents & CURL_WAIT_POLLIN)
            sig_seen = 1;
    }
    if (sig_seen)
        return -1;
    while ((msg = curl_multi_info_read(m, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE)
            return (int)msg->data.result;
    return CURLE_OK;
}

/* Exit status and message once the transfer is over. */
static int
finish(tail_ctx *t, int res, const char *detail, const kn_cli *c,
       const char *path)
{
    kn_cli_http_resp resp;
    char err[768], target[320];

    snprintf(target, sizeof(target), "the admin API at %s", c->admin);
    if (res < 0)
        return KN_EXIT_OK; /* SIGINT/SIGTERM: a clean stop */
    if (t->out_failed)
        return kn_cli_fail("cannot write to the standard output");
    if (t->status == 0)
        curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &t->status);
    if (res != CURLE_OK && t->status != 200) {
        kn_cli_http_curl_error(t->h, (CURLcode)res, detail, target, err,
                               sizeof(err));
        return kn_cli_fail("%s", err);
    }
    if (t->status != 200) {
        memset(&resp, 0, sizeof(resp));
        resp.status = t->status;
        resp.body = t->errbody;
        if (kn_cli_http_error_text(&resp, err, sizeof(err)))
            fprintf(stderr, "%s\n", err);
        else
            kn_cli_fail("the admin API at %s answered GET %s with %s", c->admin,
                        path, err);
        return KN_EXIT_FAIL;
    }
    if (res != CURLE_OK) {
        kn_cli_http_curl_error(t->h, (CURLcode)res, detail, target, err,
                               sizeof(err));
        return kn_cli_fail("the event stream ended: %s", err);
    }
    return kn_cli_fail("the daemon at %s closed the event stream", c->admin);
}

static int
stream(const kn_cli *c, const char *path, bool json,
       const ce_sql_expr *filter)
{
    char url[1024], detail[CURL_ERROR_SIZE] = "";
    struct sigaction old_int, old_term;
    tail_ctx t;
    CURLM *m = curl_multi_init();
    int rc = KN_EXIT_FAIL, res;

    memset(&t, 0, sizeof(t));
    t.json = json;
    t.filter = filter;
    t.h = curl_easy_init();
    if (filter != NULL)
        t.sql = ce_sql_ctx_new();
    if (m == NULL || t.h == NULL || (filter != NULL && t.sql == NULL) ||
        install_signals(&old_int, &old_term)) {
        rc = kn_cli_fail("cannot set up the stream: %s", strerror(errno));
        goto out;
    }
    snprintf(url, sizeof(url), "%s%s", c->base, path);
    curl_easy_setopt(t.h, CURLOPT_URL, url);
    curl_easy_setopt(t.h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t.h, CURLOPT_ERRORBUFFER, detail);
    curl_easy_setopt(t.h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(t.h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(t.h, CURLOPT_USERAGENT, "knit/" KNIT_VERSION);
    curl_easy_setopt(t.h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(t.h, CURLOPT_WRITEDATA, &t);
    curl_multi_add_handle(m, t.h);
    res = pump(m);
    rc = finish(&t, res, detail, c, path);
    curl_multi_remove_handle(m, t.h);
    restore_signals(&old_int, &old_term);
out:
    fflush(stdout);
    if (t.h)
        curl_easy_cleanup(t.h);
    if (m)
        curl_multi_cleanup(m);
    kn_cli_lines_free(&t.lines);
    ce_buf_free(&t.errbody);
    ce_sql_ctx_free(t.sql);
    return rc;
}

static const kn_cli_opt tail_opts[] = {
    {"from-start", 0, KN_CLI_FLAG, NULL,
     "print the stored history first, then follow"},
    {"filter", 0, KN_CLI_VALUE, "CESQL",
     "print only the events this CESQL expression matches"},
    {"output", 'o', KN_CLI_VALUE, "FORMAT",
     "json: one JSON-format event per line (default: one summary line)"},
    KN_CLI_OPT_ADMIN,
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_spec tail_spec = {
    .name = "tail",
    .args = "NS/NAME",
    .summary =
        "Prints the events a broker stores, as they are stored (from now, or\n"
        "from the start of its log with --from-start), until Ctrl-C.",
    .opts = tail_opts,
    .min_pos = 1,
    .max_pos = 1,
    .details =
        "Default output, one line per event:\n"
        "  TIME  type=T  source=S  id=I  [subject=X]  [data=PREVIEW]\n"
        "TIME is the event's time (else its arrival time); long data is\n"
        "shortened. --filter is evaluated here, on each event, with the\n"
        "semantics of a trigger's cesql filter (an error = no match).\n\n"
        "Examples:\n"
        "  knit tail default/demo --from-start -o json\n"
        "  knit tail default/demo --filter \"type LIKE 'order.%' AND "
        "region = 'eu'\"\n\n",
};

/* Compiles --filter; a usage error (exit 2) when it is not a valid
 * Boolean CESQL expression. */
static int
compile_filter(const char *src, ce_sql_expr **out)
{
    ce_sql_type t;
    ce_err ce;

    *out = NULL;
    if (src == NULL)
        return KN_EXIT_OK;
    memset(&ce, 0, sizeof(ce));
    ce.offset = -1;
    if (ce_sql_compile(src, strlen(src), CE_SQL_STRICT, out, &ce) != CE_OK) {
        if (ce.offset >= 0)
            return kn_cli_usage_error(&tail_spec,
                                      "invalid --filter at byte %ld: %s",
                                      ce.offset, ce.msg);
        return kn_cli_usage_error(&tail_spec, "invalid --filter: %s",
                                  ce.msg[0] ? ce.msg : ce_code_str(ce.code));
    }
    t = ce_sql_result_type(*out);
    if (t == CE_SQL_INTEGER || t == CE_SQL_STRING) {
        ce_sql_free(*out);
        *out = NULL;
        return kn_cli_usage_error(&tail_spec,
                                  "--filter must be a Boolean expression "
                                  "(this one is %s)", ce_sql_type_str(t));
    }
    return KN_EXIT_OK;
}

static int
tail_run(const kn_cli_args *a, const char *ns, const char *name,
         const ce_sql_expr *filter)
{
    const char *segs[] = {"v1", "tail", ns, name};
    ce_buf path = CE_BUF_INIT;
    char err[512];
    kn_cli c;
    int rc;

    if (kn_cli_init(&c, kn_cli_args_get(a, "admin"), err, sizeof(err)) != 0)
        return kn_cli_fail("%s", err);
    if (kn_cli_url_segments(&path, segs, 4) != 0 ||
        ce_buf_puts(&path, kn_cli_args_has(a, "from-start")
                               ? "?from=start"
                               : "?from=end") != 0)
        rc = kn_cli_fail("out of memory");
    else
        rc = stream(&c, path.data, kn_cli_args_has(a, "output"), filter);
    ce_buf_free(&path);
    return rc;
}

int
kn_cli_tail(int argc, char **argv)
{
    const kn_cli_spec *spec = &tail_spec;
    char ns[254], name[254];
    ce_sql_expr *filter = NULL;
    const char *fmt;
    kn_cli_args a;
    int rc = kn_cli_parse(spec, argc, argv, &a);

    if (rc != KN_CLI_ARGS_OK) {
        kn_cli_args_free(&a);
        return rc == KN_CLI_ARGS_HELP ? KN_EXIT_OK : KN_EXIT_USAGE;
    }
    fmt = kn_cli_args_get(&a, "output");
    if (!kn_split_ns_name(a.pos[0], ns, sizeof(ns), name, sizeof(name)))
        rc = kn_cli_usage_error(spec, "expected NS/NAME, not \"%s\"",
                                a.pos[0]);
    else if (fmt != NULL && strcmp(fmt, "json") != 0)
        rc = kn_cli_usage_error(spec, "unknown output format \"%s\" (json)",
                                fmt);
    else if ((rc = compile_filter(kn_cli_args_get(&a, "filter"), &filter)) ==
             KN_EXIT_OK)
        rc = tail_run(&a, ns, name, filter);
    ce_sql_free(filter);
    kn_cli_args_free(&a);
    return rc;
}
