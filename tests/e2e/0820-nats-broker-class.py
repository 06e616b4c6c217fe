"""0820-nats-broker-class: switching a broker from knit's log to NATS
JetStream and back with one annotation and a ConfigMap, against a real
`nats-server -js` (started here on a free port, or $KNIT_TEST_NATS_URL).

- Log broker: events posted and read back with the admin tail.
- Class NatsJetStreamBroker + ConfigMap {url, duplicate-window}: Ready,
  `knit send` and raw HTTP posts (binary, structured, batch) → 202, and
  `knit tail` / the admin tail show them; the stream
  KN_BROKER_DEFAULT__DEMO exists and holds them.
- Wire format, checked with a raw NATS client: a live subscriber on
  knit.default.demo.events and JetStream's STREAM.MSG.GET see ce-
  headers, Nats-Msg-Id = the event id, content-type and the data as the
  payload, plus the ingress extensions.
- A repeated event id inside the duplicate window: 202, stored once.
- A bad ConfigMap key / value: Ready False InvalidConfig naming the key,
  ingress 503; fixed: Ready again.
- Back to the log by removing the annotation: new events go to the log
  (after its earlier events), the NATS stream does not grow.
- A trigger on the broker follows it: it gets the events posted in each
  phase (log, NATS, log again) — also those posted right after the
  switch — and nothing twice.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backends_e2e import NatsConn, NatsServer, nats_stream_name  # noqa: E402
from knit_e2e import (CliTail, Knit, PySink, TempDir,  # noqa: E402
                      apply_ok, binary_headers, broker_condition,
                      broker_yaml, check, configmap_yaml, eq, knit_send,
                      post_all_modes, run, trigger_yaml, wait_condition,
                      wait_for)

STREAM = nats_stream_name("default", "demo")
SUBJECT = "knit.default.demo.events"


def nats_yaml(url, extra=None):
    data = {"url": url, "duplicate-window": "PT1M"}
    data.update(extra or {})
    return (configmap_yaml("demo-nats", data) + "---\n" +
            broker_yaml("demo", cls="NatsJetStreamBroker", cm="demo-nats"))


def sink_got(sink, ids, what):
    """The trigger's subscriber receives exactly `ids` (as a set) from
    now on; its request list is cleared."""
    wait_for(lambda: set(sink.ids()) >= set(ids), what, timeout=30)
    time.sleep(0.3)
    eq(sorted(sink.ids()), sorted(ids), what)
    with sink.lock:
        sink.reqs.clear()


def test_log_then_nats(k, ns, nc, sink):
    apply_ok(k, broker_yaml("demo") + "---\n" +
             trigger_yaml("every", "demo", sink.url))
    wait_condition(k, "demo", "True")
    log_ids = post_all_modes(k, "log")
    sink_got(sink, log_ids, "the trigger on the log")
    eq([e["id"] for e in k.tail("default", "demo")], log_ids, "log events")

    # one annotation and a ConfigMap: the broker moves to NATS
    sid = nc.subscribe(SUBJECT)
    apply_ok(k, nats_yaml(ns.url))
    c = wait_condition(k, "demo", "True")
    eq(c["reason"], "ChannelOpen", "Ready reason")
    check("created stream %s" % STREAM in k.log_text() or ns.external,
          "stream created (log)")
    tail = CliTail(k, "--from-start", "-o", "json")
    try:
        knit_send(k, "--type", "t.cli", "--source", "/cli", "--id",
                  "nats-cli", "--data", '{"hello":"nats"}', "--ext",
                  "region=eu")
        ids = ["nats-cli"] + post_all_modes(k, "nats")
        got = tail.events(len(ids))
        eq([e["id"] for e in got], ids, "knit tail on NATS")
        eq(got[0]["data"], {"hello": "nats"}, "data through NATS")
        eq(got[0]["region"], "eu", "extension through NATS")
    finally:
        tail.stop()
    eq([e["id"] for e in k.tail("default", "demo")], ids,
       "admin tail from the start of the NATS stream")
    sink_got(sink, ids, "the same trigger on NATS")
    return sid, ids


def test_wire_format(nc, sid, ids):
    msgs = nc.messages(sid, len(ids))
    eq(len(msgs), len(ids), "raw subscriber messages")
    subj, h, payload = msgs[0]
    eq(subj, SUBJECT, "subject")
    eq(h.get("ce-id"), "nats-cli", "ce-id header")
    eq(h.get("nats-msg-id"), "nats-cli", "Nats-Msg-Id = event id")
    eq(h.get("ce-type"), "t.cli", "ce-type")
    eq(h.get("ce-source"), "/cli", "ce-source")
    eq(h.get("ce-specversion"), "1.0", "ce-specversion")
    eq(h.get("ce-region"), "eu", "extension header")
    eq(h.get("ce-datacontenttype"), "application/json",
       "datacontenttype (a ce- header in the NATS binding)")
    check("ce-knativearrivaltime" in h, "arrival time header: %r" % h)
    eq(h.get("ce-knativebrokerttl"), "255", "ttl header")
    eq(json.loads(payload), {"hello": "nats"}, "payload = data")
    # binary post: partitionkey extension and text data
    _, h, payload = msgs[1]
    eq((h.get("ce-id"), h.get("ce-partitionkey"), payload),
       ("nats-bin", "p1", b"hello"), "binary post on the wire")

    info = nc.stream_info(STREAM)
    check("config" in info, "stream info: %r" % info)
    eq(info["config"]["subjects"], [SUBJECT], "stream subjects")
    eq(info["config"]["duplicate_window"], 60 * 10**9, "duplicate window")
    eq(info["state"]["messages"], len(ids), "stored messages")
    subj, h, payload = nc.stream_msg(STREAM, info["state"]["first_seq"])
    eq((subj, h.get("ce-id"), h.get("nats-msg-id")),
       (SUBJECT, "nats-cli", "nats-cli"), "stored message 1")
    eq(json.loads(payload), {"hello": "nats"}, "stored payload")
    _, h, payload = nc.stream_msg(STREAM, info["state"]["last_seq"])
    eq((h.get("ce-id"), h.get("ce-type")), ("nats-b2", "t.batch"),
       "stored last message")


def test_dedup(k, nc):
    before = nc.stream_info(STREAM)["state"]["messages"]
    for _ in range(2):
        st, _, _ = k.post("/default/demo", b"dup",
                          binary_headers("dup-1", "t.dup"))
        eq(st, 202, "post of a repeated id")
    eq(nc.stream_info(STREAM)["state"]["messages"], before + 1,
       "the repeated id is stored once (Nats-Msg-Id window)")


def test_invalid_config(k, ns):
    apply_ok(k, nats_yaml(ns.url, {"max_age": "PT1H"}))
    c = wait_condition(k, "demo", "False", "InvalidConfig")
    check("ConfigMap default/demo-nats key max_age" in c["message"],
          "message names the key: %r" % c)
    st, hdrs, _ = k.post("/default/demo", b"x", binary_headers("bad-1"))
    eq(st, 503, "ingress while the config is invalid")
    check("retry-after" in hdrs, "Retry-After on 503")
    apply_ok(k, nats_yaml(ns.url, {"replicas": "9"}))
    c = wait_condition(k, "demo", "False", "InvalidConfig")
    check("ConfigMap default/demo-nats key replicas: '9'" in c["message"],
          "message names the key and value: %r" % c)
    apply_ok(k, nats_yaml(ns.url, {"max-age": "PT1H"}))
    wait_condition(k, "demo", "True")
    st, _, _ = k.post("/default/demo", b"x", binary_headers("fixed-1"))
    eq(st, 202, "ingress after the fix")


def test_back_to_log(k, nc, sink):
    before = nc.stream_info(STREAM)["state"]["messages"]
    apply_ok(k, broker_yaml("demo"))  # no class annotation: the log
    wait_condition(k, "demo", "True")
    eq(broker_condition(k, "demo")["reason"], "ChannelOpen", "log Ready")
    ids = post_all_modes(k, "back")
    got = [e["id"] for e in k.tail("default", "demo")]
    eq(got, ["log-bin", "log-struct", "log-b1", "log-b2"] + ids,
       "the log continues after its earlier events")
    eq(nc.stream_info(STREAM)["state"]["messages"], before,
       "nothing more went to NATS")
    sink_got(sink, ids, "the trigger back on the log")


def main():
    ns = NatsServer().start()
    tmp = TempDir()
    k = Knit(tmp.sub("data"))
    nc = None
    sink = PySink()
    try:
        k.start()
        nc = NatsConn(ns.port)
        sid, ids = test_log_then_nats(k, ns, nc, sink)
        test_wire_format(nc, sid, ids)
        test_dedup(k, nc)
        test_invalid_config(k, ns)
        # the repeated id once, the event after the fixed config
        sink_got(sink, ["dup-1", "fixed-1"], "the trigger on NATS after "
                 "the dedup and config steps")
        test_back_to_log(k, nc, sink)
        if not ns.external:
            nc.js("STREAM.DELETE." + STREAM)
    except AssertionError:
        sys.stderr.write("--- knit log ---\n%s\n" % k.log_text()[-6000:])
        raise
    finally:
        if nc:
            nc.close()
        sink.stop()
        k.stop()
        ns.cleanup()
        tmp.cleanup()


if __name__ == "__main__":
    run(main)
