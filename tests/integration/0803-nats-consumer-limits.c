/*
 * 0803-nats-consumer-limits: per-trigger AckWait and MaxAckPending of the
 * NATS channel's durable consumers, read back from a real nats-server.
 * Channel level: the cursor hints (kn_cursor_opts) give the limits
 * (AckWait = 2 x the attempt timeout within [10 s, 10 min], MaxAckPending
 * = the reader's window + fetch-batch), no hints give the channel
 * defaults, explicit "ack-wait" / "max-ack-pending" settings win, and
 * reopening a group with other hints updates its consumer. Dispatcher
 * level: two triggers of a NatsJetStreamBroker get consumers with their
 * own limits (from their delivery timeout and knit.dev/max-in-flight),
 * and changing one trigger updates its consumer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "broker/broker.h"
#include "channels/nats/nats_int.h"
#include "nats_test.h"

#define S (1000000000LL)

/* The consumer of `group` on broker default/<broker>: its AckWait (ns)
 * and MaxAckPending; -1 when it does not exist. */
static int limits(const char *broker, const char *group, int64_t *ack_wait,
                  int64_t *max_ack_pending)
{
    char *durable = NULL, *sname = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsConsumerInfo *ci = NULL;
    assert_int_equal(kn_nats_durable_name(group, &durable), KN_OK);
    assert_int_equal(kn_nats_stream_name("default", broker, &sname), KN_OK);
    assert_int_equal(nt_raw(nt_srv.url, &nc, &js), 0);
    natsStatus s = js_GetConsumerInfo(&ci, js, sname, durable, NULL, NULL);
    if (s == NATS_OK) {
        *ack_wait = ci->Config->AckWait;
        *max_ack_pending = ci->Config->MaxAckPending;
        assert_int_equal(ci->Config->AckPolicy, js_AckExplicit);
        assert_int_equal(ci->Config->MaxDeliver, -1);
    }
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(durable);
    free(sname);
    return s == NATS_OK ? 0 : -1;
}

static void expect_limits(const char *broker, const char *group,
                          int64_t ack_wait, int64_t max_ack_pending)
{
    int64_t aw = 0, map = 0;
    assert_int_equal(limits(broker, group, &aw, &map), 0);
    if (aw != ack_wait || map != max_ack_pending)
        fprintf(stderr, "%s: AckWait %lld (want %lld), MaxAckPending %lld "
                "(want %lld)\n", group, (long long)aw, (long long)ack_wait,
                (long long)map, (long long)max_ack_pending);
    assert_int_equal(aw, ack_wait);
    assert_int_equal(map, max_ack_pending);
}

static kn_cursor *open_with(kn_channel *ch, const char *group,
                            const kn_cursor_opts *o)
{
    kn_cursor *c = NULL;
    kn_err err = {0};
    int rc = ch->ops->cursor_open(ch, group, NULL, o, &c, &err);
    if (rc != KN_OK)
        fprintf(stderr, "cursor_open: %s\n", err.msg);
    assert_int_equal(rc, KN_OK);
    return c;
}

static void test_channel_hints(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "hints");
    kn_channel *ch = nt_open_ch(b, NULL, 0);
    const kn_cursor_opts a = {20 * S, 10, 64}, bb = {2 * S, 300, 1024},
                         inf = {-1, 1, 64}, a2 = {60 * S, 100, 256};

    kn_cursor *ca = open_with(ch, "a", &a);
    kn_cursor *cb = open_with(ch, "b", &bb);
    kn_cursor *cn = open_with(ch, "none", NULL);
    kn_cursor *ci = open_with(ch, "inf", &inf);
    expect_limits(b, "a", 40 * S, 64 + 256);       /* 2 x 20 s */
    expect_limits(b, "b", 10 * S, 1024 + 256);     /* 4 s -> floor */
    expect_limits(b, "none", 30 * S, 1000);        /* the defaults */
    expect_limits(b, "inf", 600 * S, 64 + 256);    /* no timeout: cap */

    /* reopening "a" with other hints updates its consumer, whose
     * position is kept (one event appended while it was closed is read) */
    ch->ops->cursor_close(ca);
    ce_event *ev = tu_event(b, 1, 0);
    assert_int_equal(tu_append(ch, &ev, 1, NULL), KN_OK);
    ca = open_with(ch, "a", &a2);
    expect_limits(b, "a", 120 * S, 256 + 256);
    kn_record r;
    assert_int_equal(tu_read(ca, &r, 1, 5000), 1);
    assert_true(nt_same_event(r.event, ev));
    ce_event_unref(r.event);
    ce_event_unref(ev);

    ch->ops->cursor_close(ca);
    ch->ops->cursor_close(cb);
    ch->ops->cursor_close(cn);
    ch->ops->cursor_close(ci);
    kn_channel_close(ch);
}

/* "ack-wait" and "max-ack-pending" in the settings apply to every
 * consumer of the broker, hints or not. */
static void test_settings_override(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64];
    nt_broker(b, sizeof b, "override");
    const char *kv[][2] = {{"ack-wait", "PT7S"}, {"max-ack-pending", "33"}};
    kn_channel *ch = nt_open_ch(b, kv, 2);
    const kn_cursor_opts a = {20 * S, 10, 64};
    kn_cursor *c = open_with(ch, "a", &a);
    expect_limits(b, "a", 7 * S, 33);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);

    /* only one of them: the other comes from the hints */
    const char *kv2[][2] = {{"max-ack-pending", "50"}};
    ch = nt_open_ch(b, kv2, 1);
    c = open_with(ch, "a", &a);
    expect_limits(b, "a", 40 * S, 50);
    ch->ops->cursor_close(c);
    kn_channel_close(ch);
}

/* ------------------------------------------------ through the broker */

static int apply(kn_server *srv, const char *yaml)
{
    kn_yaml_file f = {"t.yaml", yaml, strlen(yaml)};
    json_t *res = NULL;
    kn_err err = {0};
    int rc = kn_server_apply(srv, &f, 1, &res, &err);
    if (rc != KN_OK)
        fprintf(stderr, "apply: %s\n", err.msg);
    json_decref(res);
    return rc;
}

static void apply_trigger(kn_server *srv, const char *broker,
                          const char *name, const char *mif,
                          const char *timeout)
{
    char y[1024];
    snprintf(y, sizeof y,
             "apiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
             "metadata:\n  name: %s\n  annotations:\n"
             "    knit.dev/max-in-flight: \"%s\"\n"
             "spec:\n  broker: %s\n  delivery:\n    timeout: %s\n"
             "  subscriber:\n    uri: http://127.0.0.1:9/\n",
             name, mif, broker, timeout);
    assert_int_equal(apply(srv, y), KN_OK);
}

/* Waits until the consumer of trigger default/<name> shows the limits. */
static void wait_limits(const char *broker, const char *name,
                        int64_t ack_wait, int64_t max_ack_pending)
{
    char group[200];
    snprintf(group, sizeof group, "trigger.default.%s", name);
    int64_t aw = 0, map = 0, end = tu_now_ms() + 10000;
    while (tu_now_ms() < end) {
        if (limits(broker, group, &aw, &map) == 0 && aw == ack_wait &&
            map == max_ack_pending)
            break;
        tu_sleep_ms(50);
    }
    expect_limits(broker, group, ack_wait, max_ack_pending);
}

static void test_triggers(void **state)
{
    (void)state;
    NT_NEED_SERVER();
    char b[64], dir[64], y[1024];
    nt_broker(b, sizeof b, "trig");
    tu_mkdtemp(dir, sizeof dir, "lim");
    kn_serve_opts o = {.data_dir = dir};
    kn_server *srv = NULL;
    kn_err err = {0};
    assert_int_equal(kn_server_new(&o, &srv, &err), KN_OK);
    assert_int_equal(kn_server_load(srv, &err), KN_OK);
    kn_server_set_loaded(srv);
    kn_server_set_ingress_url(srv, "http://127.0.0.1:9");
    snprintf(y, sizeof y,
             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: natscfg\n"
             "data:\n  url: %s\n---\n"
             "apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
             "metadata:\n  name: %s\n  annotations:\n"
             "    eventing.knative.dev/broker.class: NatsJetStreamBroker\n"
             "spec:\n  config:\n    apiVersion: v1\n    kind: ConfigMap\n"
             "    name: natscfg\n",
             nt_srv.url, b);
    assert_int_equal(apply(srv, y), KN_OK);

    /* window = the power of two >= max(2 x max-in-flight, 64) */
    apply_trigger(srv, b, "fast", "10", "PT20S");
    apply_trigger(srv, b, "slow", "300", "PT2S");
    wait_limits(b, "fast", 40 * S, 64 + 256);
    wait_limits(b, "slow", 10 * S, 1024 + 256);

    /* a changed trigger updates its consumer; the other one stays */
    apply_trigger(srv, b, "fast", "100", "PT1M");
    wait_limits(b, "fast", 120 * S, 256 + 256);
    wait_limits(b, "slow", 10 * S, 1024 + 256);
    /* the delivery timeout alone (same window) updates it too */
    apply_trigger(srv, b, "slow", "300", "PT30S");
    wait_limits(b, "slow", 60 * S, 1024 + 256);
    wait_limits(b, "fast", 120 * S, 256 + 256);

    kn_server_free(srv);
    tu_rmrf(dir);
}

int main(void)
{
    kn_log_init(KN_LOG_WARN, false);
    kn_channels_register_builtin();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_hints),
        cmocka_unit_test(test_settings_override),
        cmocka_unit_test(test_triggers),
    };
    return cmocka_run_group_tests(tests, nt_group_setup, nt_group_teardown);
}
