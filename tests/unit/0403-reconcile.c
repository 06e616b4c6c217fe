/*
 * 0403-reconcile: the server's reconciler with the real log channel in a
 * temporary data directory — a Broker becomes Ready with an address and a
 * lookup entry for the ingress; ingress-only settings swap without
 * reopening the channel; channel settings reopen it (waiting for holders
 * of the old one); unavailable backends, missing ConfigMaps and invalid
 * ConfigMap keys give Ready False with a reason; an apply over several
 * files is atomic; delete removes the broker; state survives a restart.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/broker.h"
#include "tests/testutil.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    kn_log_init(KN_LOG_ERROR, false);
    kn_channels_register_builtin();
    tu_mkdtemp(dir, sizeof dir, "rec");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmrf(dir);
}

static kn_server *server(void)
{
    kn_serve_opts o = {.data_dir = dir};
    kn_server *srv = NULL;
    kn_err err = {0};
    assert_int_equal(kn_server_new(&o, &srv, &err), KN_OK);
    assert_int_equal(kn_server_load(srv, &err), KN_OK);
    assert_false(kn_server_ready(srv));
    kn_server_set_loaded(srv);
    kn_server_set_ingress_url(srv, "http://localhost:8080");
    return srv;
}

static int apply(kn_server *srv, const char *yaml, char *msg, size_t n)
{
    kn_yaml_file f = {"t.yaml", yaml, strlen(yaml)};
    json_t *res = NULL;
    kn_err err = {0};
    int rc = kn_server_apply(srv, &f, 1, &res, &err);
    if (msg)
        kn_err_str(&err, msg, n);
    json_decref(res);
    return rc;
}

/* Ready condition of broker ns/name: "True"/"False"/"Unknown"; reason
 * copied to reason. */
static const char *ready(kn_server *srv, const char *name, char *reason)
{
    static char status[16];
    json_t *o = kn_server_get(srv, &kn_kind_broker, "default", name);
    assert_non_null(o);
    json_t *c = json_array_get(
        json_object_get(json_object_get(o, "status"), "conditions"), 0);
    snprintf(status, sizeof status, "%s",
             json_string_value(json_object_get(c, "status")));
    if (reason)
        strcpy(reason, json_string_value(json_object_get(c, "reason")));
    json_decref(o);
    return status;
}

#define BROKER(name, ann)                                                   \
    "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n"       \
    "  name: " name "\n" ann

static void test_ready_and_swap(void **state)
{
    (void)state;
    kn_server *srv = server();
    assert_true(kn_server_ready(srv));
    assert_int_equal(apply(srv, BROKER("demo", ""), NULL, 0), KN_OK);
    assert_string_equal(ready(srv, "demo", NULL), "True");
    json_t *o = kn_server_get(srv, &kn_kind_broker, "default", "demo");
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                            json_object_get(o, "status"), "address"),
                                                           "url")),
                        "http://localhost:8080/default/demo");
    json_decref(o);
    kn_broker_rt *rt = kn_server_broker(srv, "default", "demo");
    assert_non_null(rt);
    assert_non_null(rt->chan);
    assert_int_equal(rt->max_event_size, KN_DEFAULT_MAX_EVENT_SIZE);
    kn_chanref *first = rt->chan;
    kn_broker_rt_unref(rt);
    assert_null(kn_server_broker(srv, "default", "nope"));

    /* ingress-only setting: same channel, new limit */
    assert_int_equal(apply(srv, BROKER("demo", "  annotations:\n"
                                               "    knit.dev/max-event-size:"
                                               " \"2048\"\n"),
                           NULL, 0),
                     KN_OK);
    rt = kn_server_broker(srv, "default", "demo");
    assert_int_equal(rt->max_event_size, 2048);
    assert_ptr_equal(rt->chan, first);
    kn_broker_rt_unref(rt);

    /* list */
    json_t *items = kn_server_list(srv, &kn_kind_broker, NULL);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    items = kn_server_list(srv, &kn_kind_broker, "other");
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);

    ce_buf m = CE_BUF_INIT;
    assert_int_equal(kn_server_metrics(srv, &m), KN_OK);
    assert_non_null(strstr(m.data, "knit_broker_ready{namespace=\"default\","
                                   "broker=\"demo\"} 1"));
    assert_non_null(strstr(m.data, "knit_channel_segments{"));
    assert_non_null(strstr(m.data, "process_resident_memory_bytes "));
    ce_buf_free(&m);
    kn_server_free(srv);
}

typedef struct apply_job {
    kn_server *srv;
    const char *yaml;
    int rc;
    volatile int done;
} apply_job;

static void *apply_thread(void *arg)
{
    apply_job *j = arg;
    j->rc = apply(j->srv, j->yaml, NULL, 0);
    j->done = 1;
    return NULL;
}

static void test_reopen_waits(void **state)
{
    (void)state;
    kn_server *srv = server();
    assert_int_equal(apply(srv, BROKER("demo", ""), NULL, 0), KN_OK);
    kn_broker_rt *held = kn_server_broker(srv, "default", "demo");
    assert_non_null(held->chan);

    /* a channel setting changes: the channel is reopened, but only after
     * the holder of the old one lets go */
    apply_job j = {srv, BROKER("demo", "  annotations:\n"
                                       "    knit.dev/durability: write\n"),
                   -1, 0};
    pthread_t t;
    pthread_create(&t, NULL, apply_thread, &j);
    usleep(300 * 1000);
    assert_false(j.done);
    assert_true(atomic_load(&held->chan->closing));
    /* meanwhile the ingress sees the broker without a channel (503) */
    kn_broker_rt *now = kn_server_broker(srv, "default", "demo");
    assert_non_null(now);
    assert_null(now->chan);
    kn_broker_rt_unref(now);
    kn_broker_rt_unref(held);
    pthread_join(t, NULL);
    assert_int_equal(j.rc, KN_OK);
    now = kn_server_broker(srv, "default", "demo");
    assert_non_null(now->chan);
    assert_string_equal(
        json_string_value(json_object_get(now->chan->settings,
                                          "durability")),
        "write");
    kn_broker_rt_unref(now);
    assert_string_equal(ready(srv, "demo", NULL), "True");
    kn_server_free(srv);
}

static void test_not_ready_reasons(void **state)
{
    (void)state;
    char reason[64];
    kn_server *srv = server();
    assert_int_equal(apply(srv, BROKER("k", "  annotations:\n"
                                            "    eventing.knative.dev/"
                                            "broker.class: Kafka\n"),
                           NULL, 0),
                     KN_OK);
    assert_string_equal(ready(srv, "k", reason), "False");
    /* with the kafka channel built in, the missing bootstrap.servers */
    assert_string_equal(reason, kn_channel_find("kafka")
                                    ? "InvalidConfig"
                                    : "BackendNotAvailable");
    kn_broker_rt *rt = kn_server_broker(srv, "default", "k");
    assert_non_null(rt);
    assert_null(rt->chan);
    kn_broker_rt_unref(rt);
    /* a user config problem does not make the daemon unready */
    assert_true(kn_server_ready(srv));

    const char *with_cfg = BROKER("c", "spec:\n  config:\n"
                                       "    kind: ConfigMap\n"
                                       "    name: cfg\n");
    assert_int_equal(apply(srv, with_cfg, NULL, 0), KN_OK);
    assert_string_equal(ready(srv, "c", reason), "False");
    assert_string_equal(reason, "ConfigNotFound");
    assert_int_equal(apply(srv, "apiVersion: v1\nkind: ConfigMap\n"
                                "metadata:\n  name: cfg\ndata:\n"
                                "  retention: PT1H\n",
                           NULL, 0),
                     KN_OK);
    assert_string_equal(ready(srv, "c", reason), "True");
    assert_int_equal(apply(srv, "apiVersion: v1\nkind: ConfigMap\n"
                                "metadata:\n  name: cfg\ndata:\n"
                                "  colour: blue\n",
                           NULL, 0),
                     KN_OK);
    assert_string_equal(ready(srv, "c", reason), "False");
    assert_string_equal(reason, "InvalidConfig");
    kn_server_free(srv);
}

static void test_atomic_and_delete(void **state)
{
    (void)state;
    char msg[512];
    kn_server *srv = server();
    kn_yaml_file files[2] = {
        {"a.yaml", BROKER("a", ""), strlen(BROKER("a", ""))},
        {"b.yaml", BROKER("b", "spec:\n  delivery:\n    retry: x\n"),
         strlen(BROKER("b", "spec:\n  delivery:\n    retry: x\n"))},
    };
    kn_err err = {0};
    json_t *res = NULL;
    assert_int_equal(kn_server_apply(srv, files, 2, &res, &err), KN_INVAL);
    kn_err_str(&err, msg, sizeof msg);
    assert_string_equal(msg, "b.yaml:7: spec.delivery.retry: expected a "
                             "non-negative integer");
    assert_null(kn_server_get(srv, &kn_kind_broker, "default", "a"));

    /* the same name in two files */
    files[1] = files[0];
    files[1].name = "c.yaml";
    assert_int_equal(kn_server_apply(srv, files, 2, &res, &err), KN_EXISTS);
    kn_err_str(&err, msg, sizeof msg);
    assert_string_equal(msg, "c.yaml:1: Broker default/a is defined twice "
                             "(first at a.yaml:1)");

    assert_int_equal(kn_server_apply(srv, files, 1, &res, &err), KN_OK);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(res, 0), "action")),
                        "created");
    json_decref(res);
    kn_server_free(srv);

    /* restart: the broker comes back Ready */
    srv = server();
    assert_string_equal(ready(srv, "a", NULL), "True");
    kn_broker_rt *rt = kn_server_broker(srv, "default", "a");
    assert_non_null(rt->chan);
    kn_broker_rt_unref(rt);
    res = NULL;
    assert_int_equal(kn_server_delete(srv, files, 1, &res, &err), KN_OK);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(res, 0), "action")),
                        "deleted");
    json_decref(res);
    assert_null(kn_server_broker(srv, "default", "a"));
    assert_null(kn_server_get(srv, &kn_kind_broker, "default", "a"));
    assert_int_equal(kn_server_delete(srv, files, 1, &res, &err), KN_OK);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(res, 0), "action")),
                        "not found");
    json_decref(res);
    kn_server_free(srv);
}

static void test_apply_dir(void **state)
{
    (void)state;
    char cfg[128], path[256], msg[512];
    snprintf(cfg, sizeof cfg, "%s/config", dir);
    assert_int_equal(kn_mkdirs(cfg, 0755), 0);
    snprintf(path, sizeof path, "%s/10-broker.yaml", cfg);
    FILE *f = fopen(path, "w");
    fputs(BROKER("x", ""), f);
    fclose(f);
    snprintf(path, sizeof path, "%s/README.md", cfg);
    f = fopen(path, "w");
    fputs("not yaml: [", f);
    fclose(f);
    kn_server *srv = server();
    json_t *res = NULL;
    kn_err err = {0};
    assert_int_equal(kn_server_apply_dir(srv, cfg, &res, &err), KN_OK);
    assert_int_equal(json_array_size(res), 1);
    json_decref(res);
    snprintf(path, sizeof path, "%s/20-bad.yml", cfg);
    f = fopen(path, "w");
    fputs(BROKER("y", "spec:\n  nope: 1\n"), f);
    fclose(f);
    assert_int_equal(kn_server_apply_dir(srv, cfg, &res, &err), KN_INVAL);
    kn_err_str(&err, msg, sizeof msg);
    assert_non_null(strstr(msg, "20-bad.yml:6: spec.nope: unknown field"));
    assert_null(kn_server_get(srv, &kn_kind_broker, "default", "y"));
    kn_server_free(srv);
}

static void test_open_failure_retried(void **state)
{
    (void)state;
    char path[256], reason[64];
    kn_server *srv = server();
    /* a file where the broker's log directory must go */
    snprintf(path, sizeof path, "%s/brokers/default", dir);
    assert_int_equal(kn_mkdirs(path, 0755), 0);
    snprintf(path, sizeof path, "%s/brokers/default/x", dir);
    FILE *f = fopen(path, "w");
    fclose(f);
    assert_int_equal(apply(srv, BROKER("x", ""), NULL, 0), KN_OK);
    assert_string_equal(ready(srv, "x", reason), "False");
    assert_string_equal(reason, "ChannelOpenFailed");
    assert_false(kn_server_ready(srv));
    kn_broker_rt *rt = kn_server_broker(srv, "default", "x");
    assert_null(rt->chan);
    kn_broker_rt_unref(rt);
    kn_server_resync(srv); /* still failing */
    assert_string_equal(ready(srv, "x", NULL), "False");
    unlink(path);
    kn_server_resync(srv);
    assert_string_equal(ready(srv, "x", NULL), "True");
    assert_true(kn_server_ready(srv));
    kn_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ready_and_swap, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reopen_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_ready_reasons, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_atomic_and_delete, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_failure_retried, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
