/*
 * 0654-event-display: the event-display sink prints each event it gets
 * (binary, structured and batched) as indented JSON and answers 202;
 * malformed events get 400 with {"error","field"}; bad listen addresses
 * are refused with a clear message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "sink_testsrv.h"

typedef struct post_result {
    long code;
    ce_buf body;
} post_result;

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    ce_buf_append(&((post_result *)ud)->body, p, sz * n);
    return sz * n;
}

static void post(int port, const char *method, const char *ctype,
                 const char *body, post_result *out)
{
    char url[64], ct[128];
    struct curl_slist *h = NULL;
    CURL *e = curl_easy_init();
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
    h = curl_slist_append(h, ct);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->code);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
}

static void test_display(void **state)
{
    FILE *out = tmpfile();
    kn_err err;
    kn_event_display *d = kn_event_display_start("127.0.0.1:0", out, &err);
    kn_sink_client *c = kn_sink_client_new(NULL, NULL);
    kn_delivery_spec spec = tw_spec(0, 10);
    ce_event *ev = tw_event("disp-1");
    char url[64];
    tw_result w;
    post_result pr;
    (void)state;
    assert_non_null(d);
    assert_true(kn_event_display_port(d) > 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/",
             kn_event_display_port(d));
    /* binary, through the delivery client */
    tw_init(&w);
    assert_int_equal(tw_deliver(c, url, &spec, ev, &w), KN_OK);
    assert_int_equal(w.status, KN_DELIVERY_DELIVERED);
    assert_int_equal(w.http_code, 202);
    tw_fini(&w);
    /* structured */
    memset(&pr, 0, sizeof pr);
    post(kn_event_display_port(d), "POST", "application/cloudevents+json",
         "{\"specversion\":\"1.0\",\"id\":\"disp-2\",\"source\":\"/s\","
         "\"type\":\"t\",\"data\":{\"k\":\"v\"}}", &pr);
    assert_int_equal(pr.code, 202);
    ce_buf_free(&pr.body);
    /* a batch of two */
    memset(&pr, 0, sizeof pr);
    post(kn_event_display_port(d), "POST",
         "application/cloudevents-batch+json",
         "[{\"specversion\":\"1.0\",\"id\":\"disp-3\",\"source\":\"/s\","
         "\"type\":\"t\"},{\"specversion\":\"1.0\",\"id\":\"disp-4\","
         "\"source\":\"/s\",\"type\":\"t\"}]", &pr);
    assert_int_equal(pr.code, 202);
    ce_buf_free(&pr.body);
    /* malformed: 400 with a JSON error naming the field */
    memset(&pr, 0, sizeof pr);
    post(kn_event_display_port(d), "POST", "application/cloudevents+json",
         "{\"specversion\":\"1.0\",\"source\":\"/s\",\"type\":\"t\"}", &pr);
    assert_int_equal(pr.code, 400);
    json_t *j = json_loads(pr.body.data, 0, NULL);
    assert_non_null(j);
    assert_non_null(json_string_value(json_object_get(j, "error")));
    assert_string_equal(json_string_value(json_object_get(j, "field")), "id");
    json_decref(j);
    ce_buf_free(&pr.body);
    /* other methods */
    memset(&pr, 0, sizeof pr);
    post(kn_event_display_port(d), "PUT", "text/plain", "x", &pr);
    assert_int_equal(pr.code, 405);
    ce_buf_free(&pr.body);
    assert_int_equal(kn_event_display_count(d), 4);
    kn_sink_client_free(c);
    kn_event_display_stop(d);
    ce_event_unref(ev);

    /* the output: four indented JSON documents separated by blank lines */
    ce_buf all = CE_BUF_INIT;
    char chunk[4096];
    size_t n;
    rewind(out);
    while ((n = fread(chunk, 1, sizeof chunk, out)) > 0)
        ce_buf_append(&all, chunk, n);
    fclose(out);
    const char *want[] = {"disp-1", "disp-2", "disp-3", "disp-4"};
    int docs = 0;
    for (char *p = all.data, *end; p && *p; p = end ? end + 2 : NULL) {
        end = strstr(p, "\n\n");
        if (end)
            *end = '\0';
        json_t *doc = json_loads(p, 0, NULL);
        assert_non_null(doc);
        assert_true(docs < 4);
        assert_string_equal(json_string_value(json_object_get(doc, "id")),
                            want[docs]);
        json_decref(doc);
        docs++;
    }
    assert_int_equal(docs, 4);
    ce_buf_free(&all);
}

static void test_display_output(void **state)
{
    FILE *out = tmpfile();
    kn_event_display *d = kn_event_display_start(":0", out, NULL);
    post_result pr;
    (void)state;
    assert_non_null(d);
    memset(&pr, 0, sizeof pr);
    post(kn_event_display_port(d), "POST", "application/cloudevents+json",
         "{\"specversion\":\"1.0\",\"id\":\"o-1\",\"source\":\"/s\","
         "\"type\":\"t\",\"datacontenttype\":\"application/json\","
         "\"data\":{\"k\":[1,2]}}", &pr);
    assert_int_equal(pr.code, 202);
    ce_buf_free(&pr.body);
    memset(&pr, 0, sizeof pr);
    post(kn_event_display_port(d), "POST", "text/plain", "hello", &pr);
    assert_int_equal(pr.code, 400);            /* no ce-* headers */
    ce_buf_free(&pr.body);
    kn_event_display_stop(d);

    char text[4096];
    rewind(out);
    size_t n = fread(text, 1, sizeof text - 1, out);
    text[n] = '\0';
    fclose(out);
    /* one document, indented, ending with a blank line */
    assert_true(n > 2 && strcmp(text + n - 2, "}\n") != 0);
    assert_string_equal(text + n - 2, "\n\n");
    assert_non_null(strstr(text, "\n  \"id\": \"o-1\""));
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "o-1");
    assert_int_equal(json_integer_value(json_array_get(
                         json_object_get(json_object_get(j, "data"), "k"),
                         1)), 2);
    json_decref(j);
}

static void test_bad_listen(void **state)
{
    const char *bad[] = {"", "abc", "127.0.0.1:", "127.0.0.1:http",
                         "[::1:80", "no.such.host.invalid:80"};
    kn_err err;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&err, 0, sizeof err);
        assert_null(kn_event_display_start(bad[i], NULL, &err));
        assert_int_equal(err.status, KN_INVAL);
        assert_non_null(strstr(err.msg, "listen address"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_display),
        cmocka_unit_test(test_display_output),
        cmocka_unit_test(test_bad_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
