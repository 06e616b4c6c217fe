/*
 * 0452-cli-http: the CLI's HTTP helpers — admin addresses, URL escaping,
 * server error lines — and kn_cli_http_do against a real loopback server
 * (libmicrohttpd on an ephemeral port): the request it sends (method,
 * headers, no stray form Content-Type, body) and the "cannot reach"
 * message when nothing listens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/cli.h"

static void
test_addresses(void **state)
{
    char out[128], err[256];
    kn_cli c;

    (void)state;
    assert_int_equal(kn_cli_base_url("127.0.0.1:9090", out, sizeof(out)), 0);
    assert_string_equal(out, "http://127.0.0.1:9090");
    assert_int_equal(kn_cli_base_url("http://h:1/", out, sizeof(out)), 0);
    assert_string_equal(out, "http://h:1");
    assert_int_equal(kn_cli_base_url("[::1]:9090", out, sizeof(out)), 0);
    assert_string_equal(out, "http://[::1]:9090");
    assert_int_equal(kn_cli_base_url("", out, sizeof(out)), -1);
    assert_int_equal(kn_cli_base_url("/", out, sizeof(out)), -1);

    /* --admin wins over KNIT_ADMIN, which wins over the default. */
    unsetenv("KNIT_ADMIN");
    assert_int_equal(kn_cli_init(&c, NULL, err, sizeof(err)), 0);
    assert_string_equal(c.admin, KN_CLI_DEFAULT_ADMIN);
    assert_string_equal(c.base, "http://" KN_CLI_DEFAULT_ADMIN);
    setenv("KNIT_ADMIN", "10.0.0.1:1", 1);
    assert_int_equal(kn_cli_init(&c, NULL, err, sizeof(err)), 0);
    assert_string_equal(c.base, "http://10.0.0.1:1");
    assert_int_equal(kn_cli_init(&c, "h:2", err, sizeof(err)), 0);
    assert_string_equal(c.admin, "h:2");
    unsetenv("KNIT_ADMIN");
}

static void
test_escape(void **state)
{
    ce_buf b = CE_BUF_INIT;
    const char *segs[] = {"v1", "resources", "a b", "x/y"};

    (void)state;
    assert_int_equal(kn_cli_url_escape(&b, "dir/my file.yaml?&=ż"), 0);
    assert_string_equal(b.data, "dir%2Fmy%20file.yaml%3F%26%3D%C5%BC");
    ce_buf_reset(&b);
    assert_int_equal(kn_cli_url_segments(&b, segs, 4), 0);
    assert_string_equal(b.data, "/v1/resources/a%20b/x%2Fy");
    ce_buf_free(&b);
}

static void
error_of(long status, const char *body, char *buf, size_t n, bool *server)
{
    kn_cli_http_resp r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    ce_buf_puts(&r.body, body);
    *server = kn_cli_http_error_text(&r, buf, n);
    ce_buf_free(&r.body);
}

static void
test_error_text(void **state)
{
    char buf[256];
    bool server;

    (void)state;
    error_of(400,
             "{\"error\":\"b.yaml:3: spec.x: unknown field\","
             "\"where\":\"b.yaml:3\",\"field\":\"spec.x\"}",
             buf, sizeof(buf), &server);
    assert_true(server);
    assert_string_equal(buf, "b.yaml:3: spec.x: unknown field");
    error_of(400, "{\"error\":\"missing attribute\",\"field\":\"type\"}", buf,
             sizeof(buf), &server);
    assert_string_equal(buf, "missing attribute (field type)");
    error_of(500, "{\"error\":\"two\\nlines\"}", buf, sizeof(buf), &server);
    assert_string_equal(buf, "two lines");
    error_of(404, "\n  Not here\nmore", buf, sizeof(buf), &server);
    assert_false(server);
    assert_string_equal(buf, "HTTP 404 Not Found: Not here");
    error_of(503, "", buf, sizeof(buf), &server);
    assert_false(server);
    assert_string_equal(buf, "HTTP 503 Service Unavailable");
    assert_string_equal(kn_cli_http_reason(202), "Accepted");
    assert_string_equal(kn_cli_http_reason(299), "");
}

/* ---------------------------------------------- a loopback HTTP server */

struct seen {
    char method[16];
    char url[256];
    char ctype[128];
    char ce_type[128];
    bool has_expect;
    ce_buf body;
};

static enum MHD_Result
count_header(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    struct seen *s = cls;

    (void)kind;
    (void)v;
    if (strcasecmp(k, "Expect") == 0)
        s->has_expect = true;
    return MHD_YES;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *conn, const char *url,
        const char *method, const char *version, const char *data, size_t *size,
        void **ctx)
{
    static int marker;
    struct seen *s = cls;
    struct MHD_Response *r;
    const char *v;
    const char *answer = "{\"error\":\"nope\",\"field\":\"type\"}";
    enum MHD_Result ret;

    (void)version;
    if (*ctx == NULL) {
        *ctx = &marker;
        return MHD_YES;
    }
    if (*size > 0) {
        ce_buf_append(&s->body, data, *size);
        *size = 0;
        return MHD_YES;
    }
    snprintf(s->method, sizeof(s->method), "%s", method);
    snprintf(s->url, sizeof(s->url), "%s", url);
    v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    snprintf(s->ctype, sizeof(s->ctype), "%s", v ? v : "(none)");
    v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "ce-type");
    snprintf(s->ce_type, sizeof(s->ce_type), "%s", v ? v : "(none)");
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, s);
    r = MHD_create_response_from_buffer(
        strlen(answer), (void *)(uintptr_t)answer, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Retry-After", "7");
    ret = MHD_queue_response(conn, 503, r);
    MHD_destroy_response(r);
    return ret;
}

static void
test_request(void **state)
{
    struct seen s;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    char url[128], err[256];
    ce_headers h;
    kn_cli_http_req req = {0};
    kn_cli_http_resp resp;

    (void)state;
    memset(&s, 0, sizeof(s));
    memset(&h, 0, sizeof(h));
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                         handler, &s, MHD_OPTION_END);
    assert_non_null(d);
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/default/demo",
             (unsigned)info->port);
    assert_int_equal(ce_headers_add(&h, "ce-type", 7, "t%20x", 5), 0);

    /* A POST with headers but no Content-Type: curl must not add one. */
    req.method = "POST";
    req.url = url;
    req.target = "the test server";
    req.body = "hello";
    req.body_len = 5;
    req.headers = &h;
    req.timeout_ms = 10000;
    assert_int_equal(kn_cli_http_do(&req, &resp, err, sizeof(err)), 0);
    assert_int_equal(resp.status, 503);
    assert_int_equal(resp.retry_after, 7);
    assert_string_equal(resp.body.data,
                        "{\"error\":\"nope\",\"field\":\"type\"}");
    assert_string_equal(s.method, "POST");
    assert_string_equal(s.url, "/default/demo");
    assert_string_equal(s.ctype, "(none)");
    assert_string_equal(s.ce_type, "t%20x");
    assert_false(s.has_expect);
    assert_string_equal(s.body.data, "hello");
    kn_cli_http_resp_free(&resp);

    /* With a content type. */
    ce_buf_reset(&s.body);
    req.content_type = "application/yaml";
    req.headers = NULL;
    assert_int_equal(kn_cli_http_do(&req, &resp, err, sizeof(err)), 0);
    assert_string_equal(s.ctype, "application/yaml");
    kn_cli_http_resp_free(&resp);

    MHD_stop_daemon(d);
    ce_headers_free(&h);
    ce_buf_free(&s.body);
}

static void
test_refused(void **state)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    char url[128], err[256];
    kn_cli_http_req req = {0};
    kn_cli_http_resp resp;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    /* A port that was free a moment ago and has no listener. */
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/version",
             (unsigned)ntohs(sa.sin_port));
    req.method = "GET";
    req.url = url;
    req.target = "the admin API at here";
    assert_int_equal(kn_cli_http_do(&req, &resp, err, sizeof(err)), -1);
    assert_string_equal(err, "cannot reach the admin API at here: "
                             "Connection refused");
    close(fd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),  cmocka_unit_test(test_escape),
        cmocka_unit_test(test_error_text), cmocka_unit_test(test_request),
        cmocka_unit_test(test_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
