/*
 * cli_http.c — the HTTP side of the `knit` client commands: where the
 * admin API is (--admin, $KNIT_ADMIN), one-shot requests over libcurl's
 * easy interface, and turning transport failures and server error bodies
 * into one clear line. `knit tail` streams with its own loop (cli_tail.c).
 */
#include "broker/cli.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------- addresses */

int
kn_cli_base_url(const char *addr, char *out, size_t n)
{
    size_t len = strlen(addr);
    int w;

    while (len > 0 && addr[len - 1] == '/')
        len--;
    if (len == 0)
        return -1;
    if (strncmp(addr, "http://", 7) == 0 || strncmp(addr, "https://", 8) == 0)
        w = snprintf(out, n, "%.*s", (int)len, addr);
    else
        w = snprintf(out, n, "http://%.*s", (int)len, addr);
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
}

int
kn_cli_init(kn_cli *c, const char *admin_opt, char *err, size_t errn)
{
    const char *a = admin_opt;

    if (a == NULL || a[0] == '\0')
        a = getenv("KNIT_ADMIN");
    if (a == NULL || a[0] == '\0')
        a = KN_CLI_DEFAULT_ADMIN;
    if (strlen(a) >= sizeof(c->admin) ||
        kn_cli_base_url(a, c->base, sizeof(c->base)) != 0) {
        snprintf(err, errn, "invalid admin API address \"%s\"", a);
        return -1;
    }
    snprintf(c->admin, sizeof(c->admin), "%s", a);
    return 0;
}

int
kn_cli_url_escape(ce_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
            *p == '~') {
            rc = ce_buf_append(out, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = ce_buf_append(out, e, 3);
        }
    }
    return rc;
}

int
kn_cli_url_segments(ce_buf *out, const char *const *segs, size_t n)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = ce_buf_append(out, "/", 1);
        if (rc == 0)
            rc = kn_cli_url_escape(out, segs[i]);
    }
    return rc;
}

/* ------------------------------------------------------------ request */

static size_t
on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    kn_cli_http_resp *resp = ud;
    size_t n = size * nmemb;

    return ce_buf_append(&resp->body, p, n) == 0 ? n : 0;
}

/* curl's headers from an encoder's list, plus "Expect:" (no 100-continue
 * round trip) and the Content-Type (or its removal: curl would otherwise
 * send application/x-www-form-urlencoded for a POST body). */
static struct curl_slist *
build_headers(const kn_cli_http_req *req)
{
    struct curl_slist *l = NULL, *nl;
    bool have_ctype = false;
    ce_buf line = CE_BUF_INIT;
    size_t n = req->headers ? req->headers->count : 0;

    for (size_t i = 0; i < n; i++) {
        const ce_header *h = &req->headers->items[i];
        if (h->name_len == 12 && strncasecmp(h->name, "content-type", 12) == 0)
            have_ctype = true;
        ce_buf_reset(&line);
        if (ce_buf_printf(&line, "%.*s: %.*s", (int)h->name_len, h->name,
                          (int)h->value_len, h->value) != 0)
            goto fail;
        if ((nl = curl_slist_append(l, line.data)) == NULL)
            goto fail;
        l = nl;
    }
    ce_buf_reset(&line);
    if (!have_ctype && req->content_type != NULL)
        ce_buf_printf(&line, "Content-Type: %s", req->content_type);
    else if (!have_ctype)
        ce_buf_puts(&line, "Content-Type:");
    if (line.len > 0 && (nl = curl_slist_append(l, line.data)) != NULL)
        l = nl;
    if ((nl = curl_slist_append(l, "Expect:")) != NULL)
        l = nl;
    ce_buf_free(&line);
    return l;
fail:
    ce_buf_free(&line);
    curl_slist_free_all(l);
    return NULL;
}

void
kn_cli_http_curl_error(CURL *h, CURLcode cc, const char *detail,
                       const char *target, char *err, size_t errn)
{
    long os_errno = 0;
    const char *why = detail[0] ? detail : curl_easy_strerror(cc);

    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    if (os_errno != 0 && (cc == CURLE_COULDNT_CONNECT ||
                          cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR))
        why = strerror((int)os_errno);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        why = "timed out";
    snprintf(err, errn, "cannot reach %s: %s", target, why);
}

int
kn_cli_http_do(const kn_cli_http_req *req, kn_cli_http_resp *resp, char *err,
               size_t errn)
{
    char detail[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    CURL *h = curl_easy_init();
    CURLcode cc;
    curl_off_t ra = -1;
    int rc = -1;

    memset(resp, 0, sizeof(*resp));
    resp->retry_after = -1;
    if (h == NULL) {
        snprintf(err, errn, "cannot reach %s: out of memory", req->target);
        return -1;
    }
    hdrs = build_headers(req);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "knit/" KNIT_VERSION);
    if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)req->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS,
                         req->body ? req->body : (const void *)"");
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        kn_cli_http_curl_error(h, cc, detail, req->target, err, errn);
        ce_buf_free(&resp->body);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        resp->retry_after = (long)ra;
    if (resp->body.data == NULL)
        ce_buf_puts(&resp->body, ""); /* always a string */
    rc = 0;
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}

void
kn_cli_http_resp_free(kn_cli_http_resp *resp)
{
    ce_buf_free(&resp->body);
}

const char *
kn_cli_http_reason(long status)
{
    static const struct {
        long code;
        const char *text;
    } reasons[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };

    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].code == status)
            return reasons[i].text;
    return "";
}

bool
kn_cli_http_error_text(const kn_cli_http_resp *resp, char *buf, size_t n)
{
    const char *body = resp->body.data ? resp->body.data : "";
    json_t *j = json_loadb(body, resp->body.len, 0, NULL);
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *f = json_string_value(json_object_get(j, "field"));
    bool from_server = e != NULL && e[0] != '\0';
    size_t l;

    if (from_server) {
        if (f != NULL && f[0] != '\0' && strstr(e, f) == NULL)
            snprintf(buf, n, "%s (field %s)", e, f);
        else
            snprintf(buf, n, "%s", e);
    } else {
        while (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n')
            body++;
        l = strcspn(body, "\r\n");
        if (l > 200)
            l = 200;
        if (l > 0)
            snprintf(buf, n, "HTTP %ld %s: %.*s", resp->status,
                     kn_cli_http_reason(resp->status), (int)l, body);
        else
            snprintf(buf, n, "HTTP %ld %s", resp->status,
                     kn_cli_http_reason(resp->status));
    }
    json_decref(j);
    for (char *p = buf; *p; p++) /* one line, whatever the server sent */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return from_server;
}

/* ---------------------------------------------------------- admin API */

static long
admin_call(const kn_cli *c, const char *method, const char *path,
           const char *ctype, const void *body, size_t n, json_t **out,
           kn_cli_http_resp *resp, char *err, size_t errn)
{
    char url[1024], target[320];
    kn_cli_http_req req = {0};

    *out = NULL;
    snprintf(url, sizeof(url), "%s%s", c->base, path);
    snprintf(target, sizeof(target), "the admin API at %s", c->admin);
    req.method = method;
    req.url = url;
    req.target = target;
    req.content_type = ctype;
    req.body = body;
    req.body_len = n;
    req.timeout_ms = 120000;
    if (kn_cli_http_do(&req, resp, err, errn) != 0)
        return -1;
    *out = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    return resp->status;
}

long
kn_cli_admin_try_get(const kn_cli *c, const char *path, json_t **out, char *err,
                     size_t errn)
{
    kn_cli_http_resp resp;
    long st = admin_call(c, "GET", path, NULL, NULL, 0, out, &resp, err, errn);

    if (st >= 0)
        kn_cli_http_resp_free(&resp);
    return st;
}

/* Shared tail of the loud helpers: a 2xx JSON answer or one error line. */
static int
admin_loud(const kn_cli *c, const char *method, const char *path,
           const char *ctype, const void *body, size_t n, json_t **out)
{
    kn_cli_http_resp resp;
    char err[768];
    long st = admin_call(c, method, path, ctype, body, n, out, &resp, err,
                         sizeof(err));

    if (st < 0)
        return kn_cli_fail("%s", err), -1;
    if (st < 200 || st > 299) {
        if (kn_cli_http_error_text(&resp, err, sizeof(err)))
            fprintf(stderr, "%s\n", err); /* the contract: as is */
        else
            kn_cli_fail("the admin API at %s answered %s %s with %s", c->admin,
                        method, path, err);
        goto fail;
    }
    if (*out == NULL) {
        kn_cli_fail("the admin API at %s answered %s %s with a body that "
                    "is not JSON",
                    c->admin, method, path);
        goto fail;
    }
    kn_cli_http_resp_free(&resp);
    return 0;
fail:
    json_decref(*out);
    *out = NULL;
    kn_cli_http_resp_free(&resp);
    return -1;
}

int
kn_cli_admin_get(const kn_cli *c, const char *path, json_t **out)
{
    return admin_loud(c, "GET", path, NULL, NULL, 0, out);
}

int
kn_cli_admin_post(const kn_cli *c, const char *path, const char *ctype,
                  const void *body, size_t n, json_t **out)
{
    return admin_loud(c, "POST", path, ctype, body, n, out);
}
