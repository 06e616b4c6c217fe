/*
 * cli.h — internals of the `knit` command line (broker/main.c and
 * broker/cli*.c). Not part of the daemon's API.
 *
 * Pieces:
 * - kn_cli_command / kn_cli_dispatch: a table of subcommands {name, summary,
 *   fn}; main.c holds the top-level table, commands with subcommands
 *   (e.g. `knit dlq list|replay|purge`) reuse the dispatcher.
 * - kn_cli_opt / kn_cli_spec / kn_cli_args: a small table-driven option
 *   parser that also generates every command's `--help`.
 * - kn_cli: the client context (admin API address) shared by the commands
 *   that talk to a running daemon, and a thin libcurl wrapper.
 * - formatting helpers (tables, ages, kinds, event lines), unit-tested in
 *   tests/unit/045x.
 *
 * Threading: the CLI is single-threaded; nothing here is thread-safe.
 * Conventions: functions returning int return 0 on success and -1 on error
 * unless said otherwise; a command function returns the process exit status
 * (0 ok, 1 failure, 2 usage error).
 */
#ifndef KNIT_BROKER_CLI_H
#define KNIT_BROKER_CLI_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cloudevents/cloudevents.h"

/* Exit statuses of every command. */
enum { KN_EXIT_OK = 0, KN_EXIT_FAIL = 1, KN_EXIT_USAGE = 2 };

/* Default admin API address (DESIGN.md §3), overridden by KNIT_ADMIN or
 * --admin; default ingress base, overridden by KNIT_INGRESS or --url. */
#define KN_CLI_DEFAULT_ADMIN "127.0.0.1:9090"
#define KN_CLI_DEFAULT_INGRESS "http://127.0.0.1:8080"

/* ------------------------------------------------------- dispatching */

/* One row of a command table. fn gets argv[0] = the command's name and
 * returns the exit status. */
typedef struct kn_cli_command {
    const char *name;
    const char *summary; /* one line for `knit help` */
    int (*fn)(int argc, char **argv);
} kn_cli_command;

/* Runs the command named by argv[0] from cmds[0..n). `prog` is the
 * prefix used in messages ("knit", "knit dlq"). Handles `help [CMD]`,
 * `--help`/`-h` and no arguments (lists the commands). An unknown
 * command is a usage error. */
int kn_cli_dispatch(const char *prog, const kn_cli_command *cmds, size_t n,
                    int argc, char **argv);
/* Writes the command list ("Usage: PROG COMMAND ...") to f. */
void kn_cli_list_commands(FILE *f, const char *prog, const kn_cli_command *cmds,
                          size_t n);

/* --------------------------------------------------- option parsing */

typedef enum kn_cli_opt_kind {
    KN_CLI_FLAG = 0, /* --all-namespaces */
    KN_CLI_VALUE,    /* --output yaml; the last one given wins */
    KN_CLI_MULTI,    /* --ext a=b --ext c=d; every value is kept */
} kn_cli_opt_kind;

/* One option of a command. A table ends with a row whose name is NULL.
 * `--help`/`-h` is implicit in every command. */
typedef struct kn_cli_opt {
    const char *name; /* long name without "--" */
    char short_name;  /* one-letter alias or 0 */
    kn_cli_opt_kind kind;
    const char *metavar; /* "FILE" in the help; NULL for flags */
    const char *help;
} kn_cli_opt;

/* A command's interface: enough to parse its argv and print its help. */
typedef struct kn_cli_spec {
    const char *name;       /* "get", or "dlq list" */
    const char *args;       /* positional synopsis: "KIND [NAME]" */
    const char *summary;    /* first help paragraph */
    const kn_cli_opt *opts; /* NULL-name terminated, may be NULL */
    int min_pos;            /* positional arguments required */
    int max_pos;            /* at most (-1 = any number) */
    const char *details;    /* text after the flags (examples), or NULL */
} kn_cli_spec;

typedef struct kn_cli_arg_item {
    int opt;           /* index into spec->opts */
    const char *value; /* borrowed from argv; "" for a flag */
} kn_cli_arg_item;

/* Parsed arguments; strings are borrowed from argv. */
typedef struct kn_cli_args {
    const kn_cli_spec *spec;
    kn_cli_arg_item *items; /* options in command-line order */
    size_t nitems;
    const char **pos; /* positional arguments */
    size_t npos;
} kn_cli_args;

enum { KN_CLI_ARGS_OK = 0, KN_CLI_ARGS_HELP = 1, KN_CLI_ARGS_ERROR = -1 };

/* Parses argv[1..argc) (argv[0] is the command name). Accepts
 * `--name value`, `--name=value`, `-x value`, `-xvalue`, flags `-x`/
 * `--name`, and `--` ending the options; options and positionals may be
 * mixed. Returns KN_CLI_ARGS_OK, KN_CLI_ARGS_HELP (--help seen) or
 * KN_CLI_ARGS_ERROR with a one-line message in err ("unknown option --foo").
 * Free with kn_cli_args_free in every case. */
int kn_cli_args_parse(const kn_cli_spec *spec, int argc, char **argv,
                      kn_cli_args *out, char *err, size_t errn);
void kn_cli_args_free(kn_cli_args *a);
/* Last value of the option named `name` (long name), NULL if not given. */
const char *kn_cli_args_get(const kn_cli_args *a, const char *name);
bool kn_cli_args_has(const kn_cli_args *a, const char *name);
/* The i-th value (0-based) of a MULTI option; NULL past the end. */
const char *kn_cli_args_nth(const kn_cli_args *a, const char *name, size_t i);

/* Writes the generated help of a command to buf. */
int kn_cli_help(const kn_cli_spec *spec, ce_buf *buf);

/* The common start of every command: parses, prints --help to stdout
 * (returns KN_CLI_ARGS_HELP) or a usage error to stderr (returns
 * KN_CLI_ARGS_ERROR). */
int kn_cli_parse(const kn_cli_spec *spec, int argc, char **argv,
                 kn_cli_args *out);
/* Prints "knit CMD: msg (see 'knit CMD --help')" to stderr; returns
 * KN_EXIT_USAGE. */
int kn_cli_usage_error(const kn_cli_spec *spec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "knit: msg" to stderr; returns KN_EXIT_FAIL. */
int kn_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints j as indented JSON (members in order) and a newline to stdout;
 * returns KN_EXIT_OK, or KN_EXIT_FAIL via kn_cli_fail when memory runs
 * out (cli_get.c). */
int kn_cli_print_json(const json_t *j);

/* The option row every client command includes. */
#define KN_CLI_OPT_ADMIN                                                   \
    {"admin", 0, KN_CLI_VALUE, "ADDR:PORT",                                \
     "admin API (default $KNIT_ADMIN or " KN_CLI_DEFAULT_ADMIN ")"}

/* --------------------------------------------------- admin API client */

typedef struct kn_cli {
    char admin[256]; /* as given: "127.0.0.1:9090" (for messages) */
    char base[300];  /* "http://127.0.0.1:9090" */
} kn_cli;

/* Address from --admin, else $KNIT_ADMIN, else the default. Accepts
 * "HOST:PORT", "[V6]:PORT" and "http://HOST:PORT[/]". -1 with err on an
 * empty or over-long address. */
int kn_cli_init(kn_cli *c, const char *admin_opt, char *err, size_t errn);
/* Turns "HOST:PORT" or a URL into a base URL without a trailing slash. */
int kn_cli_base_url(const char *addr, char *out, size_t n);

/* Appends s percent-encoded (RFC 3986 unreserved characters stay) for a
 * path segment or query value. */
int kn_cli_url_escape(ce_buf *out, const char *s);
/* Appends "/seg1/seg2..." from n NUL-terminated segments, each escaped. */
int kn_cli_url_segments(ce_buf *out, const char *const *segs, size_t n);

typedef struct kn_cli_http_resp {
    long status;
    ce_buf body;
    long retry_after; /* seconds from Retry-After, or -1 */
} kn_cli_http_resp;

typedef struct kn_cli_http_req {
    const char *method; /* "GET", "POST" */
    const char *url;
    const char *target;       /* "the admin API at 127.0.0.1:9090" */
    const char *content_type; /* NULL: no Content-Type header */
    const void *body;
    size_t body_len;
    const ce_headers *headers; /* extra headers, or NULL */
    long timeout_ms;           /* whole request; 0 = none */
} kn_cli_http_req;

/* Performs one request and reads the whole answer. Returns 0 when an HTTP
 * answer arrived (any status; resp->body owned by the caller, free with
 * kn_cli_http_resp_free), -1 on a transport failure with err =
 * "cannot reach TARGET: Connection refused". */
int kn_cli_http_do(const kn_cli_http_req *req, kn_cli_http_resp *resp,
                   char *err, size_t errn);
void kn_cli_http_resp_free(kn_cli_http_resp *resp);
/* "cannot reach TARGET: REASON" for a failed transfer, preferring the OS's
 * errno text ("Connection refused") over curl's. detail = curl's error
 * buffer (may be ""). */
void kn_cli_http_curl_error(CURL *h, CURLcode cc, const char *detail,
                            const char *target, char *err, size_t errn);
/* Standard reason phrase ("Not Found"), "" if unknown. */
const char *kn_cli_http_reason(long status);
/* The server's one-line error: the body's "error" member (plus
 * " (field F)" when given and not already in the message; returns true),
 * else "HTTP <status> <reason>[: first line of the body]" (returns
 * false). Line breaks become spaces. */
bool kn_cli_http_error_text(const kn_cli_http_resp *resp, char *buf, size_t n);

/* Admin API helpers on top of kn_cli_http_do. On a transport failure or a
 * non-2xx answer they print the error line to stderr and return -1. */
int kn_cli_admin_get(const kn_cli *c, const char *path, json_t **out);
int kn_cli_admin_post(const kn_cli *c, const char *path, const char *ctype,
                      const void *body, size_t n, json_t **out);
/* Same as kn_cli_admin_get but silent: returns the HTTP status (200...)
 * with *out set for a JSON body, or -1 on a transport failure with the
 * message in err. */
long kn_cli_admin_try_get(const kn_cli *c, const char *path, json_t **out,
                          char *err, size_t errn);

/* ------------------------------------------------------- formatting */

/* Resource kinds the CLI knows (for `get`/`describe` and result lines). */
typedef struct kn_cli_kind {
    const char *kind;    /* "Broker" */
    const char *plural;  /* "brokers" (the admin API path element) */
    const char *group;   /* "eventing.knative.dev", "" for core v1 */
    const char *aliases; /* space-separated short names: "cm" */
    const char *col[2];  /* extra table columns (headers) or NULL */
    const char *path[2]; /* their JSON paths ("status.address.url") */
} kn_cli_kind;

/* Looks up a kind by singular, plural, short name, Kind or
 * "plural.group", case-insensitively. NULL if unknown. */
const kn_cli_kind *kn_cli_kind_lookup(const char *s);
const kn_cli_kind *kn_cli_kind_by_kind(const char *kind);
/* Comma-separated list of the plurals, for error messages. */
void kn_cli_kind_list(char *buf, size_t n);
/* kubectl-style reference "broker.eventing.knative.dev/demo" from a Kind,
 * apiVersion (may be NULL: group from the kind table) and name. */
void kn_cli_resource_ref(const char *kind, const char *api_version,
                         const char *name, char *buf, size_t n);

/* Member at a dotted path ("status.address.url"), NULL if absent. */
json_t *kn_cli_json_path(const json_t *root, const char *path);
/* String at a path, or `dflt`. */
const char *kn_cli_json_str(const json_t *root, const char *path,
                            const char *dflt);
/* The condition of `type` in status.conditions, or NULL. */
json_t *kn_cli_condition(const json_t *res, const char *type);

/* kubectl-like human age of a duration in seconds: "45s", "3m20s",
 * "5h", "12d", "2y30d". Negative counts as 0. */
void kn_cli_format_age(int64_t secs, char *buf, size_t n);
/* Age of an RFC 3339 timestamp relative to now_sec (epoch seconds);
 * "<unknown>" if it does not parse, "" for NULL. */
void kn_cli_format_age_since(const char *rfc3339, int64_t now_sec, char *buf,
                             size_t n);

/* A text table: header row + rows, columns separated by 3 spaces, the last
 * column not padded, widths in UTF-8 code points. */
typedef struct kn_cli_table {
    size_t ncols;
    size_t nrows; /* rows including the header */
    size_t cap;
    char **cells; /* row-major, owned copies */
} kn_cli_table;
int kn_cli_table_init(kn_cli_table *t, const char *const *headers,
                      size_t ncols);
/* Copies ncols cells; NULL cells print as "". */
int kn_cli_table_add(kn_cli_table *t, const char *const *cells);
int kn_cli_table_render(const kn_cli_table *t, ce_buf *out);
void kn_cli_table_free(kn_cli_table *t);

/* One line for `knit tail`: "TIME  type=T  source=S  id=I  [subject=X]
 * [data=PREVIEW]". TIME is the `time` attribute, else
 * knativearrivaltime, else "-". The data preview is compact JSON for JSON
 * data, escaped text for UTF-8 text, "<N bytes>" otherwise, cut to
 * max_data code points with "...". No trailing newline. */
int kn_cli_format_event_line(const ce_event *ev, size_t max_data, ce_buf *out);
/* Appends a one-line preview of data bytes (see above) to out. */
int kn_cli_format_data_preview(const void *data, size_t n, const char *ctype,
                               size_t max, ce_buf *out);

/* True when the bytes are well-formed UTF-8 without NUL bytes. */
bool kn_cli_is_utf8_text(const void *data, size_t n);

/* NDJSON line splitter for streamed bodies: feed bytes, get complete
 * lines (without "\n" or "\r\n") through cb; a non-zero cb return stops
 * and is returned. */
typedef struct kn_cli_lines {
    ce_buf pending;
} kn_cli_lines;
int kn_cli_lines_feed(kn_cli_lines *l, const char *p, size_t n,
                      int (*cb)(void *ctx, const char *line, size_t len),
                      void *ctx);
void kn_cli_lines_free(kn_cli_lines *l);

/* ---------------------------------------------------------- commands */

int kn_cli_apply(int argc, char **argv);
int kn_cli_delete(int argc, char **argv);
int kn_cli_get(int argc, char **argv);
int kn_cli_describe(int argc, char **argv);
int kn_cli_send(int argc, char **argv);
int kn_cli_tail(int argc, char **argv);
int kn_cli_version(int argc, char **argv);
int kn_cli_event_display(int argc, char **argv);
int kn_cli_filter(int argc, char **argv);
int kn_cli_dlq(int argc, char **argv);
int kn_cli_replay(int argc, char **argv);

#endif /* KNIT_BROKER_CLI_H */
