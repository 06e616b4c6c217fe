"""0720-kafka-broker-class: switching a broker from knit's log to Kafka
with one annotation and a ConfigMap, against librdkafka's mock cluster
(the kafka-mock tool of the build, 3 brokers).

- Log broker first; then class Kafka + ConfigMap {bootstrap.servers, …}:
  Ready, `knit send` and raw HTTP posts (binary, structured, batch) → 202,
  and `knit tail --from-start` shows them.
- Wire format read with kcat from knative-broker-default-demo: ce_
  headers, content-type, partitionkey → record key, the data as the value.
- Bad ConfigMap keys (a bad partition count, a forbidden librdkafka
  property, a `topic` key): Ready False InvalidConfig naming the key,
  ingress 503; fixed: Ready again.
- The annotation kafka.eventing.knative.dev/external.topic moves the
  broker to an existing topic (created in the mock beforehand).
Skipped (loudly) only when the kafka-mock tool is not built.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backends_e2e import (KafkaMock, kafka_broker_yaml,  # noqa: E402
                          kcat_records)
from knit_e2e import (CliTail, Knit, TempDir, apply_ok,  # noqa: E402
                      binary_headers, broker_yaml, check, eq, knit_send,
                      post_all_modes, run, wait_condition)

TOPIC = "knative-broker-default-demo"


def cli_tail(k, n, timeout=30):
    """The first n events of `knit tail --from-start -o json`."""
    t = CliTail(k, "--from-start", "-o", "json")
    try:
        return t.events(n, timeout)
    finally:
        t.stop()


def test_switch(k, mock):
    apply_ok(k, broker_yaml("demo"))
    wait_condition(k, "demo", "True")
    post_all_modes(k, "log")

    apply_ok(k, kafka_broker_yaml("demo", mock.bootstrap,
                                  {"default.topic.partitions": "3"}))
    c = wait_condition(k, "demo", "True")
    eq(c["reason"], "ChannelOpen", "Ready reason")
    knit_send(k, "--type", "t.cli", "--source", "/cli", "--id", "k-cli",
              "--data", '{"hello":"kafka"}', "--ext", "partitionkey=order-7",
              "--ext", "region=eu")
    ids = ["k-cli"] + post_all_modes(k, "k")
    got = cli_tail(k, len(ids))
    eq(sorted(e["id"] for e in got), sorted(ids), "knit tail on Kafka")
    cli = [e for e in got if e["id"] == "k-cli"][0]
    eq((cli["data"], cli["region"], cli["partitionkey"]),
       ({"hello": "kafka"}, "eu", "order-7"), "event through Kafka")
    return ids


def test_wire_format(mock, ids):
    recs = kcat_records(mock.bootstrap, TOPIC)
    check(recs is not None, "kcat is not installed (Debian package kcat; "
          "scripts/deps.sh installs it): the wire-format check needs it")
    by_id = {r["headers"].get("ce_id"): r for r in recs}
    eq(sorted(by_id), sorted(ids), "records in %s (kcat)" % TOPIC)
    r = by_id["k-cli"]
    h = r["headers"]
    eq((h.get("ce_specversion"), h.get("ce_type"), h.get("ce_source")),
       ("1.0", "t.cli", "/cli"), "ce_ headers")
    eq(h.get("ce_region"), "eu", "extension header")
    eq(h.get("content-type"), "application/json", "content-type header")
    check("ce_knativearrivaltime" in h, "arrival time header: %r" % h)
    eq(r["key"], "order-7", "partitionkey → record key")
    eq(json.loads(r["payload"]), {"hello": "kafka"}, "value = data")
    b = by_id["k-bin"]
    eq((b["key"], b["payload"], b["headers"].get("content-type")),
       ("p1", "hello", "text/plain"), "binary post on the wire")
    s = by_id["k-struct"]
    eq(s["key"], None, "no partitionkey → no key")
    eq(json.loads(s["payload"]), {"n": 1}, "structured post's data")


def test_invalid_config(k, mock):
    cases = [
        ({"default.topic.partitions": "x"},
         "ConfigMap default/demo-kafka key default.topic.partitions: 'x'"),
        ({"kafka.acks": "1"},
         "ConfigMap default/demo-kafka key kafka.acks: cannot be set"),
        ({"topic": "other"},
         "ConfigMap default/demo-kafka key topic: set an existing topic "
         "with the annotation kafka.eventing.knative.dev/external.topic"),
    ]
    for data, want in cases:
        apply_ok(k, kafka_broker_yaml("demo", mock.bootstrap, data))
        c = wait_condition(k, "demo", "False", "InvalidConfig")
        check(want in c["message"], "message %r should contain %r" % (
            c["message"], want))
        st, hdrs, _ = k.post("/default/demo", b"x", binary_headers("bad"))
        eq(st, 503, "ingress while the config is invalid")
        check("retry-after" in hdrs, "Retry-After on 503")
    apply_ok(k, kafka_broker_yaml("demo", mock.bootstrap))
    wait_condition(k, "demo", "True")


def test_external_topic(k, mock):
    mock.command("topic_create ext-orders 2")
    apply_ok(k, kafka_broker_yaml(
        "demo", mock.bootstrap,
        annotations={"kafka.eventing.knative.dev/external.topic":
                     "ext-orders"}))
    wait_condition(k, "demo", "True")
    st, _, _ = k.post("/default/demo", b"ext",
                      binary_headers("ext-1", "t.ext"))
    eq(st, 202, "post to the external topic")
    recs = kcat_records(mock.bootstrap, "ext-orders")
    eq([r["headers"].get("ce_id") for r in recs], ["ext-1"],
       "the event is in the external topic")
    eq(len([r for r in kcat_records(mock.bootstrap, TOPIC)
            if r["headers"].get("ce_id") == "ext-1"]), 0,
       "and not in the broker's own topic")


def main():
    mock = KafkaMock().start()
    tmp = TempDir()
    k = Knit(tmp.sub("data"))
    try:
        k.start()
        ids = test_switch(k, mock)
        test_wire_format(mock, ids)
        test_invalid_config(k, mock)
        test_external_topic(k, mock)
    except AssertionError:
        sys.stderr.write("--- knit log ---\n%s\n" % k.log_text()[-6000:])
        raise
    finally:
        k.stop()
        mock.stop()
        tmp.cleanup()


if __name__ == "__main__":
    run(main)
