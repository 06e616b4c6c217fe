"""0501-admin-resources: the admin API of the real knit binary — version,
apply (created / configured / unchanged, generation), errors as one line
with where/field, atomic apply (a bad document, or a bad file of a
multi-file apply, changes nothing), get/list with status conditions and
address, delete, unknown types, tail 404 — then persistence: resources
and events survive a restart; a --config error is fatal with file:line;
a second knit on the same data directory is refused."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import (Knit, TempDir, binary_headers, broker_yaml,  # noqa: E402
                      check, eq, run)

BAD_RETRY = """apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: good
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: bad
spec:
  delivery:
    retry: -1
"""


def condition(obj):
    conds = obj["status"]["conditions"]
    ready = [c for c in conds if c["type"] == "Ready"]
    eq(len(ready), 1, "one Ready condition")
    return ready[0]


def test_apply_get(k):
    st, body = k.admin_json("GET", "/v1/version")
    eq(st, 200, "version")
    check(body["version"], "version string")

    st, body = k.apply(broker_yaml("demo"), "brokers.yaml")
    eq(st, 200, "apply")
    eq(body["results"], [{"apiVersion": "eventing.knative.dev/v1",
                          "kind": "Broker", "namespace": "default",
                          "name": "demo", "action": "created"}], "results")
    st, body = k.apply(broker_yaml("demo"), "brokers.yaml")
    eq(body["results"][0]["action"], "unchanged", "re-apply")
    st, body = k.apply(broker_yaml("demo", {"knit.dev/durability": "write"}))
    eq(body["results"][0]["action"], "configured", "changed apply")

    st, obj = k.admin_json("GET", "/v1/resources/brokers/default/demo")
    eq(st, 200, "get broker")
    eq(obj["metadata"]["generation"], 2, "generation")
    check(obj["metadata"]["creationTimestamp"].endswith("Z"),
          "creationTimestamp")
    c = condition(obj)
    eq(c["status"], "True", "Ready")
    check(c["lastTransitionTime"], "lastTransitionTime")
    eq(obj["status"]["address"]["url"],
       "http://127.0.0.1:%d/default/demo" % k.ingress, "address")
    eq(obj["status"]["observedGeneration"], 2, "observedGeneration")

    st, body = k.admin_json("GET", "/v1/resources/brokers")
    eq([i["metadata"]["name"] for i in body["items"]], ["demo"], "list")
    st, body = k.admin_json("GET", "/v1/resources/brokers?namespace=x")
    eq(body["items"], [], "list other namespace")
    st, body = k.admin_json("GET", "/v1/resources/triggers")
    eq((st, body["items"]), (200, []), "known kind, none yet")
    st, body = k.admin_json("GET", "/v1/resources/pods")
    eq(st, 404, "unknown type")
    check("pods" in body["error"], body["error"])
    st, body = k.admin_json("GET", "/v1/resources/brokers/default/nope")
    eq(st, 404, "unknown broker")

    # not Ready: a class without its backend
    k.apply(broker_yaml("kafka", {
        "eventing.knative.dev/broker.class": "Kafka"}))
    st, obj = k.admin_json("GET", "/v1/resources/brokers/default/kafka")
    c = condition(obj)
    # (InvalidConfig when the kafka channel is built in: no
    # bootstrap.servers, as there is no spec.config)
    eq(c["status"], "False", "Kafka broker")
    check(c["reason"] in ("BackendNotAvailable", "InvalidConfig"),
          "Kafka broker reason: %r" % c)
    check("address" not in obj["status"], "no address when not ready")


def test_errors(k):
    st, body = k.apply(BAD_RETRY, "brokers.yaml")
    eq(st, 400, "bad apply")
    eq(body["error"], "brokers.yaml:12: spec.delivery.retry: expected a "
       "non-negative integer", "error line")
    eq(body["where"], "brokers.yaml:12", "where")
    eq(body["field"], "spec.delivery.retry", "field")
    st, _ = k.admin_json("GET", "/v1/resources/brokers/default/good")
    eq(st, 404, "atomic: nothing of the file applied")

    st, body = k.apply("apiVersion: flows.knative.dev/v1\n"
                       "kind: Sequence\nmetadata:\n  name: t\n", "t.yaml")
    eq((st, body["error"]), (400, "t.yaml:2: kind Sequence is not supported "
                                  "yet"), "unsupported kind")
    st, body = k.apply("a: [", "broken.yaml")
    eq(st, 400, "YAML syntax error")
    check(body["error"].startswith("broken.yaml:"), body["error"])

    # several files in one atomic apply
    files = {"files": [
        {"name": "one.yaml", "content": broker_yaml("one")},
        {"name": "two.yaml", "content": broker_yaml("two") +
         "spec:\n  delivery:\n    backoffPolicy: random\n"},
    ]}
    st, body = k.admin_json("POST", "/v1/apply", json.dumps(files).encode(),
                            {"Content-Type": "application/json"})
    eq(st, 400, "multi-file apply with a bad file")
    check(body["error"].startswith("two.yaml:8: spec.delivery.backoffPolicy"),
          body["error"])
    st, _ = k.admin_json("GET", "/v1/resources/brokers/default/one")
    eq(st, 404, "atomic over files")
    files["files"].pop()
    st, body = k.admin_json("POST", "/v1/apply", json.dumps(files).encode(),
                            {"Content-Type": "application/json"})
    eq((st, body["results"][0]["action"]), (200, "created"), "one.yaml")

    st, body = k.admin_json("GET", "/v1/apply")
    eq(st, 405, "GET /v1/apply")
    st, body = k.admin_json("GET", "/v1/tail/default/nope")
    eq(st, 404, "tail of an unknown broker")
    st, body = k.admin_json("GET", "/v1/nothing")
    eq(st, 404, "unknown path")


def test_delete(k):
    st, body = k.admin_json("POST", "/v1/delete?file=x.yaml",
                            broker_yaml("one").encode())
    eq((st, body["results"][0]["action"]), (200, "deleted"), "delete")
    st, body = k.admin_json("POST", "/v1/delete?file=x.yaml",
                            broker_yaml("one").encode())
    eq(body["results"][0]["action"], "not found", "delete again")
    st, _, _ = k.post("/default/one", b"x", binary_headers("d1"))
    eq(st, 404, "deleted broker is gone from the ingress")


def main():
    tmp = TempDir()
    try:
        data = tmp.sub("data")
        k = Knit(data).start()
        try:
            test_apply_get(k)
            test_errors(k)
            test_delete(k)
            for i in range(3):
                st, _, _ = k.post("/default/demo", b"e%d" % i,
                                  binary_headers("p%d" % i))
                eq(st, 202, "event before restart")
            # a second knit on the same data directory is refused
            rc = Knit(data).start(expect_exit=True)
            eq(rc, 1, "second knit on the same data dir")
            eq(k.stop(), 0, "SIGTERM exit status")
            check("SIGTERM received" in k.log_text(), "shutdown logged")
            check("broker default/demo: Ready Unknown -> True" in
                  k.log_text(), "state change logged")

            # restart: resources and events are back
            k = Knit(data).start()
            st, body = k.admin_json("GET", "/v1/resources/brokers")
            eq(sorted(i["metadata"]["name"] for i in body["items"]),
               ["demo", "kafka"], "brokers after restart")
            st, obj = k.admin_json("GET",
                                   "/v1/resources/brokers/default/demo")
            eq(obj["metadata"]["generation"], 2, "generation kept")
            eq(condition(obj)["status"], "True", "Ready after restart")
            evs = k.tail("default", "demo")
            eq([e["id"] for e in evs], ["p0", "p1", "p2"], "events kept")
            eq(k.stop(), 0, "SIGTERM exit status")

            # a bad --config is fatal and names file:line
            cfg = tmp.sub("config")
            tmp.write("config/10-ok.yaml", broker_yaml("fromcfg"))
            tmp.write("config/20-bad.yaml", BAD_RETRY)
            k = Knit(data, cfg)
            rc = k.start(expect_exit=True)
            eq(rc, 1, "exit status with a bad --config")
            check("20-bad.yaml:12: spec.delivery.retry: expected a "
                  "non-negative integer" in k.log_text(), k.log_text())
            os.unlink(os.path.join(cfg, "20-bad.yaml"))
            k = Knit(data, cfg).start()
            st, obj = k.admin_json("GET",
                                   "/v1/resources/brokers/default/fromcfg")
            eq(st, 200, "broker from --config")
            eq(k.stop(signal_int()), 0, "SIGINT exit status")
        finally:
            if k.proc:
                k.kill()
                print(k.log_text())
    finally:
        tmp.cleanup()


def signal_int():
    import signal
    return signal.SIGINT


run(main)
