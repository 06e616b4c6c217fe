/*
 * 0451-cli-format: the CLI's output helpers — kind aliases, kubectl-style
 * references, JSON paths and conditions, ages, text tables, data
 * previews, `knit tail` event lines and the NDJSON line splitter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "broker/cli.h"

static void
test_kinds(void **state)
{
    const kn_cli_kind *b;
    char list[512];

    (void)state;
    b = kn_cli_kind_lookup("broker");
    assert_non_null(b);
    assert_string_equal(b->plural, "brokers");
    assert_ptr_equal(kn_cli_kind_lookup("brokers"), b);
    assert_ptr_equal(kn_cli_kind_lookup("Broker"), b);
    assert_ptr_equal(kn_cli_kind_lookup("BROKERS"), b);
    assert_ptr_equal(kn_cli_kind_lookup("brokers.eventing.knative.dev"), b);
    assert_null(kn_cli_kind_lookup("brokers.serving.knative.dev"));
    assert_string_equal(kn_cli_kind_lookup("cm")->kind, "ConfigMap");
    assert_string_equal(kn_cli_kind_lookup("configmap")->plural, "configmaps");
    assert_string_equal(kn_cli_kind_lookup("triggers")->kind, "Trigger");
    assert_string_equal(kn_cli_kind_lookup("imc")->kind, "InMemoryChannel");
    assert_string_equal(kn_cli_kind_lookup("ksvc")->kind, "Service");
    assert_string_equal(kn_cli_kind_lookup("pingsource")->kind, "PingSource");
    assert_null(kn_cli_kind_lookup("nonsense"));
    assert_null(kn_cli_kind_lookup(""));
    assert_null(kn_cli_kind_lookup("c")); /* no prefix matching */
    assert_ptr_equal(kn_cli_kind_by_kind("Broker"), b);
    assert_null(kn_cli_kind_by_kind("broker"));
    kn_cli_kind_list(list, sizeof(list));
    assert_true(strncmp(list, "brokers, triggers, configmaps", 29) == 0);
}

static void
test_refs(void **state)
{
    char buf[128];

    (void)state;
    kn_cli_resource_ref("Broker", "eventing.knative.dev/v1", "demo", buf,
                        sizeof(buf));
    assert_string_equal(buf, "broker.eventing.knative.dev/demo");
    kn_cli_resource_ref("ConfigMap", "v1", "cfg", buf, sizeof(buf));
    assert_string_equal(buf, "configmap/cfg");
    /* No apiVersion (delete results): the group comes from the table. */
    kn_cli_resource_ref("Trigger", NULL, "t1", buf, sizeof(buf));
    assert_string_equal(buf, "trigger.eventing.knative.dev/t1");
    kn_cli_resource_ref("Unheard", NULL, "x", buf, sizeof(buf));
    assert_string_equal(buf, "unheard/x");
}

static void
test_json_paths(void **state)
{
    json_t *r = json_loads(
        "{\"metadata\":{\"name\":\"demo\"},\"status\":{\"address\":"
        "{\"url\":\"http://h/x\"},\"conditions\":[{\"type\":\"Addressable\","
        "\"status\":\"True\"},{\"type\":\"Ready\",\"status\":\"False\","
        "\"reason\":\"ChannelDown\"}]}}",
        0, NULL);

    (void)state;
    assert_non_null(r);
    assert_string_equal(kn_cli_json_str(r, "status.address.url", "-"),
                        "http://h/x");
    assert_string_equal(kn_cli_json_str(r, "metadata.name", "-"), "demo");
    assert_string_equal(kn_cli_json_str(r, "metadata.name.deeper", "-"), "-");
    assert_string_equal(kn_cli_json_str(r, "spec.nothing", "-"), "-");
    assert_null(kn_cli_json_path(r, "status.address.url.x"));
    assert_string_equal(
        kn_cli_json_str(kn_cli_condition(r, "Ready"), "reason", ""),
        "ChannelDown");
    assert_null(kn_cli_condition(r, "SubscriberResolved"));
    json_decref(r);
}

static void
test_age(void **state)
{
    static const struct {
        int64_t secs;
        const char *want;
    } cases[] = {
        {-5, "0s"},
        {0, "0s"},
        {59, "59s"},
        {119, "119s"},
        {120, "2m"},
        {200, "3m20s"},
        {600, "10m"},
        {179 * 60, "179m"},
        {3 * 3600, "3h"},
        {3 * 3600 + 60, "3h1m"},
        {8 * 3600 + 60, "8h"},
        {47 * 3600, "47h"},
        {50 * 3600, "2d2h"},
        {3 * 86400, "3d"},
        {10 * 86400 + 7, "10d"},
        {800 * 86400, "2y70d"},
        {3650 * 86400, "10y"},
    };
    char buf[32];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kn_cli_format_age(cases[i].secs, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
    }
    /* 2024-01-01T00:00:00Z = 1704067200. */
    kn_cli_format_age_since("2024-01-01T00:00:00Z", 1704067200 + 90, buf,
                            sizeof(buf));
    assert_string_equal(buf, "90s");
    kn_cli_format_age_since("2024-01-01T01:00:00+01:00", 1704067200 + 30, buf,
                            sizeof(buf));
    assert_string_equal(buf, "30s");
    kn_cli_format_age_since("yesterday", 0, buf, sizeof(buf));
    assert_string_equal(buf, "<unknown>");
    kn_cli_format_age_since(NULL, 0, buf, sizeof(buf));
    assert_string_equal(buf, "");
}

static void
test_table(void **state)
{
    const char *hdr[] = {"NAME", "READY", "URL"};
    const char *r1[] = {"demo", "True", "http://x/default/demo"};
    const char *r2[] = {"a-much-longer-name", NULL, ""};
    const char *r3[] = {"żółw", "False", "u"};
    kn_cli_table t;
    ce_buf b = CE_BUF_INIT;

    (void)state;
    assert_int_equal(kn_cli_table_init(&t, hdr, 3), 0);
    assert_int_equal(kn_cli_table_add(&t, r1), 0);
    assert_int_equal(kn_cli_table_add(&t, r2), 0);
    assert_int_equal(kn_cli_table_add(&t, r3), 0);
    assert_int_equal(kn_cli_table_render(&t, &b), 0);
    assert_string_equal(b.data,
                        "NAME                 READY   URL\n"
                        "demo                 True    http://x/default/demo\n"
                        "a-much-longer-name\n"
                        "żółw                 False   u\n");
    kn_cli_table_free(&t);
    ce_buf_free(&b);
}

static void
test_preview(void **state)
{
    ce_buf b = CE_BUF_INIT;
    const char bin[] = {'a', 0, (char)0xff};
    const char js[] = "{\n  \"a\": 1,\n  \"b\": [1, 2]\n}";

    (void)state;
    /* JSON is re-printed compactly on one line. */
    assert_int_equal(
        kn_cli_format_data_preview(js, strlen(js), "application/json", 100, &b),
        0);
    assert_string_equal(b.data, "{\"a\":1,\"b\":[1,2]}");
    ce_buf_reset(&b);
    /* Text: control characters escaped, cut at max code points. */
    assert_int_equal(kn_cli_format_data_preview("line1\nline2\tx", 13,
                                                "text/plain", 100, &b),
                     0);
    assert_string_equal(b.data, "line1\\nline2\\tx");
    ce_buf_reset(&b);
    assert_int_equal(
        kn_cli_format_data_preview("ąbcdefgh", 9, "text/plain", 3, &b), 0);
    assert_string_equal(b.data, "ąbc...");
    ce_buf_reset(&b);
    /* Not JSON despite a JSON type: shown as text. */
    assert_int_equal(kn_cli_format_data_preview("not json", 8, NULL, 100, &b),
                     0);
    assert_string_equal(b.data, "not json");
    ce_buf_reset(&b);
    /* Binary. */
    assert_int_equal(
        kn_cli_format_data_preview(bin, 3, "application/x", 100, &b), 0);
    assert_string_equal(b.data, "<3 bytes>");
    ce_buf_free(&b);

    assert_true(kn_cli_is_utf8_text("plain ąę", 10));
    assert_false(kn_cli_is_utf8_text(bin, 3));
    assert_false(kn_cli_is_utf8_text("\xc0\xaf", 2));     /* overlong */
    assert_false(kn_cli_is_utf8_text("\xed\xa0\x80", 3)); /* surrogate */
    assert_false(kn_cli_is_utf8_text("\xe2\x82", 2));     /* truncated */
}

static void
test_event_line(void **state)
{
    ce_event *ev = ce_event_new();
    ce_buf b = CE_BUF_INIT;

    (void)state;
    assert_int_equal(ce_event_set_str(ev, "specversion", "1.0", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "id", "e-1", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "source", "/shop", NULL), 0);
    assert_int_equal(ce_event_set_str(ev, "type", "order.created", NULL), 0);
    assert_int_equal(kn_cli_format_event_line(ev, 50, &b), 0);
    assert_string_equal(b.data, "-  type=order.created  source=/shop  id=e-1");
    ce_buf_reset(&b);

    assert_int_equal(ce_event_set_str(ev, "knativearrivaltime",
                                      "2024-05-01T10:00:00Z", NULL),
                     0);
    assert_int_equal(ce_event_set_str(ev, "subject", "o/1", NULL), 0);
    assert_int_equal(
        ce_event_set_str(ev, "datacontenttype", "application/json", NULL), 0);
    assert_int_equal(ce_event_set_data(ev, "{ \"n\" : 42 }", 12), 0);
    assert_int_equal(kn_cli_format_event_line(ev, 50, &b), 0);
    assert_string_equal(b.data,
                        "2024-05-01T10:00:00Z  type=order.created  "
                        "source=/shop  id=e-1  subject=o/1  data={\"n\":42}");
    ce_buf_reset(&b);

    /* The event's own time wins over the arrival time. */
    assert_int_equal(ce_event_set(ev, "time", "2023-01-01T00:00:00Z", 20,
                                  CE_TYPE_TIMESTAMP, NULL),
                     0);
    assert_int_equal(kn_cli_format_event_line(ev, 50, &b), 0);
    assert_true(strncmp(b.data, "2023-01-01T00:00:00Z  ", 22) == 0);
    ce_buf_free(&b);
    ce_event_unref(ev);
}

struct collected {
    char lines[8][32];
    int n;
    int stop_at;
};

static int
collect(void *ctx, const char *line, size_t len)
{
    struct collected *c = ctx;

    snprintf(c->lines[c->n], sizeof(c->lines[0]), "%.*s", (int)len, line);
    c->n++;
    return c->n == c->stop_at ? 9 : 0;
}

static void
test_lines(void **state)
{
    kn_cli_lines l = {CE_BUF_INIT};
    struct collected c = {.n = 0, .stop_at = -1};

    (void)state;
    assert_int_equal(kn_cli_lines_feed(&l, "{\"a\"", 4, collect, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(kn_cli_lines_feed(&l, ":1}\r\n\n{\"b", 9, collect, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.lines[0], "{\"a\":1}");
    assert_string_equal(c.lines[1], "");
    assert_int_equal(kn_cli_lines_feed(&l, "\":2}\n", 5, collect, &c), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.lines[2], "{\"b\":2}");
    assert_int_equal(l.pending.len, 0);
    /* A non-zero callback stops and is returned. */
    c.stop_at = 4;
    assert_int_equal(kn_cli_lines_feed(&l, "x\ny\n", 4, collect, &c), 9);
    assert_int_equal(c.n, 4);
    kn_cli_lines_free(&l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),      cmocka_unit_test(test_refs),
        cmocka_unit_test(test_json_paths), cmocka_unit_test(test_age),
        cmocka_unit_test(test_table),      cmocka_unit_test(test_preview),
        cmocka_unit_test(test_event_line), cmocka_unit_test(test_lines),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
