/*
 * cli_send.c — `knit send`: builds one CloudEvent from flags with the
 * cloudevents API, validates it locally (errors name the attribute and the
 * flag that sets it), encodes it with ce_http_encode (binary or structured
 * mode) and POSTs it to a broker's ingress.
 *
 * Where it posts, first match wins: --url (the full URL); $KNIT_INGRESS
 * (a base such as http://host:8080) + /NS/NAME; the broker's
 * status.address.url from the admin API; http://127.0.0.1:8080/NS/NAME when
 * the admin API cannot be reached.
 */
#include "broker/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static const char *const core_attrs[] = {
    "specversion",     "id",         "source", "type",        "subject", "time",
    "datacontenttype", "dataschema", "data",   "data_base64",
};

/* The flag that sets a core attribute, for error hints. */
static const char *
flag_for(const char *attr)
{
    static const char *const map[][2] = {
        {"id", "--id"},
        {"source", "--source"},
        {"type", "--type"},
        {"subject", "--subject"},
        {"time", "--time"},
        {"datacontenttype", "--content-type"},
        {"dataschema", "--dataschema"},
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], attr) == 0)
            return map[i][1];
    return NULL;
}

static int
set_attr(ce_event *ev, const char *attr, const char *flag, const char *v,
         ce_type type, char *err, size_t errn)
{
    ce_err ce;

    memset(&ce, 0, sizeof(ce));
    if (ce_event_set(ev, attr, v, strlen(v), type, &ce) == CE_OK)
        return 0;
    if (strcmp(flag, "--ext") == 0) /* name the whole NAME=VALUE */
        snprintf(err, errn, "invalid --ext \"%s=%s\": %s", attr, v,
                 ce.msg[0] ? ce.msg : ce_code_str(ce.code));
    else
        snprintf(err, errn, "invalid %s \"%s\": %s", flag, v,
                 ce.msg[0] ? ce.msg : ce_code_str(ce.code));
    return -1;
}

static int
set_ext(ce_event *ev, const char *kv, char *err, size_t errn)
{
    const char *eq = strchr(kv, '=');
    char name[64];
    size_t nl;

    if (eq == NULL || eq == kv) {
        snprintf(err, errn, "--ext expects NAME=VALUE, got \"%s\"", kv);
        return -1;
    }
    nl = (size_t)(eq - kv);
    if (nl >= sizeof(name)) {
        snprintf(err, errn,
                 "--ext %.*s...: the name is too long (at most "
                 "%zu characters)",
                 20, kv, sizeof(name) - 1);
        return -1;
    }
    memcpy(name, kv, nl);
    name[nl] = '\0';
    for (size_t i = 0; i < sizeof(core_attrs) / sizeof(core_attrs[0]); i++)
        if (strcmp(core_attrs[i], name) == 0) {
            const char *f = flag_for(name);
            snprintf(err, errn, "--ext %s: \"%s\" is not an extension%s%s", kv,
                     name, f ? "; use " : "", f ? f : "");
            return -1;
        }
    return set_attr(ev, name, "--ext", eq + 1, CE_TYPE_STRING, err, errn);
}

/* The data and its content type (explicit, or guessed: JSON text →
 * application/json, other UTF-8 text → text/plain, else octet-stream). */
static int
set_data(ce_event *ev, const kn_cli_args *a, char *err, size_t errn)
{
    const char *d = kn_cli_args_get(a, "data");
    const char *file = kn_cli_args_get(a, "data-file");
    const char *ct = kn_cli_args_get(a, "content-type");
    ce_buf buf = CE_BUF_INIT;
    kn_err kerr;
    char kbuf[768];
    int rc = -1;

    memset(&kerr, 0, sizeof(kerr));
    if (file != NULL) {
        if (kn_read_file(file, &buf, &kerr) != 0) {
            snprintf(err, errn, "cannot read --data-file %s: %s", file,
                     kn_err_str(&kerr, kbuf, sizeof(kbuf)));
            goto out;
        }
    } else if (d != NULL) {
        if (ce_buf_append(&buf, d, strlen(d)) != 0)
            goto oom;
    }
    if (ct == NULL && (file != NULL || d != NULL)) {
        json_t *j = json_loadb(buf.data ? buf.data : "", buf.len,
                               JSON_DECODE_ANY, NULL);
        if (j != NULL)
            ct = "application/json";
        else if (kn_cli_is_utf8_text(buf.data ? buf.data : "", buf.len))
            ct = "text/plain; charset=utf-8";
        else
            ct = "application/octet-stream";
        json_decref(j);
    }
    if (ct != NULL && ct[0] != '\0' &&
        set_attr(ev, "datacontenttype", "--content-type", ct, CE_TYPE_STRING,
                 err, errn) != 0)
        goto out;
    if ((file != NULL || d != NULL) &&
        ce_event_set_data(ev, buf.data ? buf.data : "", buf.len) != CE_OK)
        goto oom;
    rc = 0;
    goto out;
oom:
    snprintf(err, errn, "out of memory");
out:
    ce_buf_free(&buf);
    return rc;
}

/* The optional String-or-typed attributes that map 1:1 to a flag. */
static int
set_simple(ce_event *ev, const kn_cli_args *a, char *err, size_t errn)
{
    static const char *const simple[][2] = {
        {"type", "type"},
        {"source", "source"},
        {"subject", "subject"},
        {"dataschema", "dataschema"},
    };
    char flag[32];

    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        const char *v = kn_cli_args_get(a, simple[i][0]);
        snprintf(flag, sizeof(flag), "--%s", simple[i][0]);
        if (v != NULL &&
            set_attr(ev, simple[i][1], flag, v, CE_TYPE_STRING, err, errn) != 0)
            return -1;
    }
    return 0;
}

/* Builds and validates the event; -1 with a message naming the flag. */
static int
build_event(const kn_cli_args *a, ce_event **out, char *err, size_t errn)
{
    ce_event *ev = ce_event_new();
    const char *id = kn_cli_args_get(a, "id");
    const char *t = kn_cli_args_get(a, "time");
    const char *x;
    char uuid[37], now[CE_TIME_MAX];
    ce_time tnow;
    ce_err ce;

    *out = NULL;
    if (ev == NULL) {
        snprintf(err, errn, "out of memory");
        return -1;
    }
    if (id == NULL) {
        kn_uuid(uuid);
        id = uuid;
    }
    if (t == NULL) {
        tnow = ce_time_now();
        ce_time_format_utc(&tnow, now);
        t = now;
    }
    if (set_attr(ev, "specversion", "specversion", "1.0", CE_TYPE_STRING, err,
                 errn) != 0 ||
        set_attr(ev, "id", "--id", id, CE_TYPE_STRING, err, errn) != 0 ||
        set_simple(ev, a, err, errn) != 0 ||
        (t[0] != '\0' &&
         set_attr(ev, "time", "--time", t, CE_TYPE_TIMESTAMP, err, errn)) ||
        set_data(ev, a, err, errn) != 0)
        goto fail;
    for (size_t i = 0; (x = kn_cli_args_nth(a, "ext", i)) != NULL; i++)
        if (set_ext(ev, x, err, errn) != 0)
            goto fail;
    memset(&ce, 0, sizeof(ce));
    if (ce_event_validate(ev, &ce) != CE_OK) {
        const char *f = flag_for(ce.attr);
        snprintf(err, errn, "invalid event: %s%s%s%s%s%s", ce.attr,
                 ce.attr[0] ? ": " : "",
                 ce.msg[0] ? ce.msg : ce_code_str(ce.code),
                 f ? " (set it with " : "", f ? f : "", f ? ")" : "");
        goto fail;
    }
    *out = ev;
    return 0;
fail:
    ce_event_unref(ev);
    return -1;
}

/* A broker without an address yet: say why (its Ready condition). */
static int
not_addressable(const json_t *res, const char *ns, const char *name)
{
    const json_t *ready = kn_cli_condition(res, "Ready");
    const char *reason = kn_cli_json_str(ready, "reason", "");
    const char *msg = kn_cli_json_str(ready, "message", "");

    kn_cli_fail("broker %s/%s has no address yet (Ready %s%s%s%s%s)", ns,
                name, kn_cli_json_str(ready, "status", "Unknown"),
                reason[0] ? ", " : "", reason, msg[0] ? ": " : "", msg);
    return -1;
}

/* The broker's address from the admin API: 1 found (url filled), 0 the
 * admin API is not reachable (fall back to the default address), -1 the
 * broker is not there or has no address (message printed). */
static int
lookup_address(const kn_cli_args *a, const char *ns, const char *name,
               ce_buf *url)
{
    const char *segs[] = {"v1", "resources", "brokers", ns, name};
    ce_buf path = CE_BUF_INIT;
    char err[512];
    json_t *res = NULL;
    const char *u;
    kn_cli c;
    long st = -1;
    int rc = 0;

    if (kn_cli_init(&c, kn_cli_args_get(a, "admin"), err, sizeof(err)) != 0 ||
        kn_cli_url_segments(&path, segs, 5) != 0)
        goto out;
    st = kn_cli_admin_try_get(&c, path.data, &res, err, sizeof(err));
    if (st == 404) {
        u = json_string_value(json_object_get(res, "error"));
        if (u != NULL)
            fprintf(stderr, "%s\n", u);
        else
            kn_cli_fail("broker %s/%s not found", ns, name);
        rc = -1;
    } else if (st == 200) {
        u = kn_cli_json_str(res, "status.address.url", NULL);
        if (u != NULL && u[0] != '\0')
            rc = ce_buf_puts(url, u) == 0 ? 1 : 0;
        else
            rc = not_addressable(res, ns, name);
    }
out:
    json_decref(res);
    ce_buf_free(&path);
    return rc;
}

/* Fills url; -1 when the command must stop (message printed). */
static int
resolve_url(const kn_cli_args *a, const char *ns, const char *name, ce_buf *url)
{
    const char *u = kn_cli_args_get(a, "url");
    const char *env = getenv("KNIT_INGRESS");
    const char *segs[] = {ns, name};
    char base[512];
    int rc;

    if (u != NULL)
        return ce_buf_puts(url, u);
    if (env != NULL && env[0] != '\0') {
        if (kn_cli_base_url(env, base, sizeof(base)) != 0)
            return kn_cli_fail("invalid KNIT_INGRESS \"%s\"", env), -1;
    } else {
        rc = lookup_address(a, ns, name, url);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        snprintf(base, sizeof(base), "%s", KN_CLI_DEFAULT_INGRESS);
    }
    if (ce_buf_puts(url, base) != 0 || kn_cli_url_segments(url, segs, 2) != 0)
        return kn_cli_fail("out of memory"), -1;
    return 0;
}

static int
post_event(const ce_event *ev, ce_mode mode, const char *url)
{
    ce_headers hdrs;
    ce_buf body = CE_BUF_INIT;
    kn_cli_http_req req = {0};
    kn_cli_http_resp resp;
    char target[600], err[768];
    ce_err ce;
    int rc = KN_EXIT_FAIL;

    memset(&hdrs, 0, sizeof(hdrs));
    memset(&ce, 0, sizeof(ce));
    if (ce_http_encode(ev, mode, &hdrs, &body, &ce) != CE_OK) {
        rc = kn_cli_fail("cannot encode the event: %s%s%s", ce.attr,
                         ce.attr[0] ? ": " : "", ce.msg);
        goto out;
    }
    snprintf(target, sizeof(target), "the ingress at %s", url);
    req.method = "POST";
    req.url = url;
    req.target = target;
    req.body = body.data;
    req.body_len = body.len;
    req.headers = &hdrs;
    req.timeout_ms = 60000;
    if (kn_cli_http_do(&req, &resp, err, sizeof(err)) != 0) {
        rc = kn_cli_fail("%s", err);
        goto out;
    }
    if (resp.status >= 200 && resp.status <= 299) {
        printf("event %s sent to %s: %ld %s\n",
               ce_event_get(ev, "id", NULL, NULL), url, resp.status,
               kn_cli_http_reason(resp.status));
        rc = KN_EXIT_OK;
    } else {
        kn_cli_http_error_text(&resp, err, sizeof(err));
        if (resp.retry_after > 0)
            kn_cli_fail("%s answered %ld %s: %s (retry after %lds)", url,
                        resp.status, kn_cli_http_reason(resp.status), err,
                        resp.retry_after);
        else
            kn_cli_fail("%s answered %ld %s: %s", url, resp.status,
                        kn_cli_http_reason(resp.status), err);
    }
    kn_cli_http_resp_free(&resp);
out:
    ce_headers_free(&hdrs);
    ce_buf_free(&body);
    return rc;
}

static const kn_cli_opt send_opts[] = {
    {"broker", 0, KN_CLI_VALUE, "NS/NAME", "the broker to send to"},
    {"type", 0, KN_CLI_VALUE, "TYPE", "event type (required)"},
    {"source", 0, KN_CLI_VALUE, "URI-REF", "event source (required)"},
    {"id", 0, KN_CLI_VALUE, "ID", "event id (default: a new UUID)"},
    {"subject", 0, KN_CLI_VALUE, "SUBJECT", "event subject"},
    {"time", 0, KN_CLI_VALUE, "RFC3339",
     "event time (default: now; \"\" for none)"},
    {"dataschema", 0, KN_CLI_VALUE, "URI", "event dataschema"},
    {"data", 'd', KN_CLI_VALUE, "STRING", "event data"},
    {"data-file", 0, KN_CLI_VALUE, "FILE",
     "read the data from FILE (- = "
     "stdin)"},
    {"content-type", 0, KN_CLI_VALUE, "MEDIA-TYPE",
     "datacontenttype (default: guessed)"},
    {"ext", 0, KN_CLI_MULTI, "NAME=VALUE", "extension attribute (String)"},
    {"mode", 0, KN_CLI_VALUE, "MODE",
     "binary (default) or structured HTTP mode"},
    {"url", 0, KN_CLI_VALUE, "URL",
     "post here instead of the broker's address"},
    KN_CLI_OPT_ADMIN,
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_spec send_spec = {
    .name = "send",
    .summary =
        "Sends one CloudEvent built from flags to a broker's ingress and\n"
        "prints the answer. The event is validated before it is sent.",
    .opts = send_opts,
    .details =
        "Without --content-type, data that parses as JSON is sent as\n"
        "application/json, other UTF-8 text as text/plain, anything else as\n"
        "application/octet-stream.\n\n"
        "The ingress URL is --url if given, else $KNIT_INGRESS + /NS/NAME,\n"
        "else the broker's address from the admin API, else (admin API\n"
        "not reachable) " KN_CLI_DEFAULT_INGRESS "/NS/NAME.\n\n"
        "Example:\n"
        "  knit send --broker default/demo --type order.created \\\n"
        "      --source /shop --data '{\"order\": 42}' --ext region=eu\n\n",
};

static int
parse_mode(const char *s, ce_mode *m)
{
    if (s == NULL || strcmp(s, "binary") == 0)
        *m = CE_MODE_BINARY;
    else if (strcmp(s, "structured") == 0)
        *m = CE_MODE_STRUCTURED;
    else
        return -1;
    return 0;
}

int
kn_cli_send(int argc, char **argv)
{
    const kn_cli_spec *spec = &send_spec;
    const char *broker;
    char ns[254] = "", name[254] = "", err[768];
    ce_buf url = CE_BUF_INIT;
    ce_event *ev = NULL;
    ce_mode mode;
    kn_cli_args a;
    int rc = kn_cli_parse(spec, argc, argv, &a);

    if (rc != KN_CLI_ARGS_OK) {
        kn_cli_args_free(&a);
        return rc == KN_CLI_ARGS_HELP ? KN_EXIT_OK : KN_EXIT_USAGE;
    }
    broker = kn_cli_args_get(&a, "broker");
    if (parse_mode(kn_cli_args_get(&a, "mode"), &mode) != 0)
        rc = kn_cli_usage_error(spec,
                                "--mode must be binary or structured, "
                                "not \"%s\"",
                                kn_cli_args_get(&a, "mode"));
    else if (kn_cli_args_has(&a, "data") && kn_cli_args_has(&a, "data-file"))
        rc = kn_cli_usage_error(spec, "use --data or --data-file, not both");
    else if (broker == NULL && !kn_cli_args_has(&a, "url"))
        rc = kn_cli_usage_error(spec, "--broker NS/NAME is required");
    else if (broker != NULL &&
             !kn_split_ns_name(broker, ns, sizeof(ns), name, sizeof(name)))
        rc = kn_cli_usage_error(spec, "--broker must be NS/NAME, not \"%s\"",
                                broker);
    else if (build_event(&a, &ev, err, sizeof(err)) != 0)
        rc = kn_cli_fail("%s", err);
    else if (resolve_url(&a, ns, name, &url) != 0)
        rc = KN_EXIT_FAIL;
    else
        rc = post_event(ev, mode, url.data);
    ce_event_unref(ev);
    ce_buf_free(&url);
    kn_cli_args_free(&a);
    return rc;
}
