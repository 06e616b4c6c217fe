"""0701-kafka-wire: the real `knit serve` with a Kafka broker on the
kafka-mock tool (librdkafka's mock cluster, 3 brokers). Events posted to
the ingress are read back with kcat and must be CloudEvents Kafka binding
binary-mode records: ce_ headers, content-type = datacontenttype, value =
data, partitionkey = record key (same key → same partition), also for an
event posted in structured mode. The admin tail reads them back through
the channel's cursor. Skips (77) loudly when kcat is not installed."""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("KNIT_SOURCE_DIR", "."),
                                "tests", "e2e"))
from knit_e2e import Knit, TempDir, check, eq  # noqa: E402

SKIP = 77
TOPIC = "knative-broker-default-orders"


class Mock:
    """The kafka-mock tool: bootstrap address, commands on stdin."""

    def __init__(self, *args):
        path = os.path.join(os.environ.get("KNIT_BUILD_DIR", "build"),
                            "tests", "kafka-mock")
        if not os.access(path, os.X_OK):
            raise AssertionError("kafka-mock not built at " + path)
        self.proc = subprocess.Popen([path] + list(args),
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        self.bootstrap = self.proc.stdout.readline().decode().strip()
        eq(self.proc.stdout.readline().decode().strip(), "ready",
           "kafka-mock banner")

    def command(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        eq(self.proc.stdout.readline().decode().strip(), "ok", line)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def kcat_records(bootstrap, want, timeout=20):
    deadline = time.time() + timeout
    recs = []
    while time.time() < deadline:
        out = subprocess.run(
            ["kcat", "-b", bootstrap, "-C", "-t", TOPIC, "-J", "-e", "-q",
             "-o", "beginning", "-X", "fetch.wait.max.ms=5"],
            capture_output=True, timeout=60)
        recs = [json.loads(line) for line in out.stdout.decode().splitlines()
                if line.strip()]
        if len(recs) >= want:
            return recs
        time.sleep(0.2)
    raise AssertionError("kcat read %d records, want %d" % (len(recs), want))


def headers_of(rec):
    h = rec.get("headers") or []
    return {h[i]: h[i + 1] for i in range(0, len(h), 2)}


def config(tmp, bootstrap):
    tmp.write("config/orders.yaml", """\
apiVersion: v1
kind: ConfigMap
metadata: {name: kafka-config, namespace: default}
data:
  bootstrap.servers: "%s"
  kafka.consumer.fetch.wait.max.ms: "5"
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: orders
  namespace: default
  annotations:
    eventing.knative.dev/broker.class: Kafka
spec:
  config: {apiVersion: v1, kind: ConfigMap, name: kafka-config}
""" % bootstrap)


def post_binary(k, i, key=None):
    h = {"ce-specversion": "1.0", "ce-id": "e%d" % i,
         "ce-source": "/shop/orders", "ce-type": "shop.order.created",
         "ce-orderno": str(1000 + i), "content-type": "application/json"}
    if key:
        h["ce-partitionkey"] = key
    st, _, body = k.post("/default/orders",
                         json.dumps({"n": i}).encode(), h)
    eq(st, 202, "POST e%d (%s)" % (i, body))


def main():
    if not shutil.which("kcat"):
        print("SKIP: *** kcat is not installed: the Kafka wire format is "
              "NOT verified (apt install kcat) ***")
        return SKIP
    mock = Mock("--topic", TOPIC + ":10")
    tmp = TempDir()
    k = None
    try:
        config(tmp, mock.bootstrap)
        k = Knit(tmp.sub("data"), tmp.sub("config")).start()
        keys = ["cust-a", "cust-a", "cust-b", "cust-a", "cust-b", None]
        for i, key in enumerate(keys):
            post_binary(k, i, key)
        ev = {"specversion": "1.0", "id": "s1", "source": "/shop/orders",
              "type": "shop.order.paid", "partitionkey": "cust-b",
              "datacontenttype": "text/plain", "data": "paid"}
        st, _, body = k.post("/default/orders", json.dumps(ev).encode(),
                             {"content-type":
                              "application/cloudevents+json"})
        eq(st, 202, "structured POST (%s)" % body)

        recs = kcat_records(mock.bootstrap, 7)
        eq(len(recs), 7, "records in the topic")
        by_id = {}
        for r in recs:
            h = headers_of(r)
            by_id[h.get("ce_id")] = (r, h)
            eq(h.get("ce_specversion"), "1.0", "ce_specversion")
            eq(h.get("ce_source"), "/shop/orders", "ce_source")
            check("ce_knativearrivaltime" in h, "arrival time stamped")
            check("ce_datacontenttype" not in h,
                  "datacontenttype travels as content-type")
            check(not any(n.startswith("ce-") for n in h),
                  "no HTTP-style headers: %r" % h)
        for i, key in enumerate(keys):
            r, h = by_id["e%d" % i]
            eq(h.get("ce_type"), "shop.order.created", "ce_type")
            eq(h.get("ce_orderno"), str(1000 + i), "extension header")
            eq(h.get("content-type"), "application/json", "content-type")
            eq(json.loads(r["payload"]), {"n": i}, "payload = data")
            eq(r.get("key"), key, "key = partitionkey")
            if key:
                eq(h.get("ce_partitionkey"), key, "partitionkey kept")
        r, h = by_id["s1"]
        eq(h.get("content-type"), "text/plain", "structured → binary")
        eq(r["payload"], "paid", "structured data")
        eq(r.get("key"), "cust-b", "structured partitionkey")
        parts = {}
        for r, h in by_id.values():
            if r.get("key"):
                parts.setdefault(r["key"], set()).add(r["partition"])
        for key, ps in parts.items():
            eq(len(ps), 1, "one partition for key %s" % key)

        # The admin tail reads them through a cursor (a consumer group).
        events = k.tail("default", "orders", frm="start", count=7)
        eq(sorted(e["id"] for e in events),
           sorted(["e%d" % i for i in range(6)] + ["s1"]), "tail")
        eq(k.stop(), 0, "knit exit status")
        k = None
        print("ok: 7 records in binary mode, keys and partitions checked")
        return 0
    finally:
        if k and k.proc:
            k.kill()
            print(k.log_text())
        mock.stop()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
