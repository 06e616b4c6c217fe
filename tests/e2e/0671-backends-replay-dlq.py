"""`knit replay trigger` and `knit dlq` on brokers backed by NATS
JetStream (a real nats-server) and Kafka (librdkafka's mock cluster, one
partition so offsets are those of the log): replay from the start and
from an offset re-delivers history with the filter applied again and
leaves other triggers alone; a trigger whose subscriber keeps failing
fills the dead-letter store; `knit dlq list` shows the entries,
`knit dlq replay` re-delivers them once the subscriber works, and the
store is then empty. The same commands and answers as on the log
(0662, 0666). Skipped parts: whichever backend is not available."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backends_e2e import (each_backend,  # noqa: E402
                          kafka_broker_yaml, nats_broker_yaml)
from knit_e2e import (PySink, TempDir, check, docs, eq, knit_cli,  # noqa: E402
                      run, send, start_knit, trigger_yaml, wait_condition,
                      wait_for)

N = 6
FAST = {"retry": 1, "backoffDelay": "PT0.01S"}


def dlq_total(knit, trigger):
    st, body = knit.admin_json("GET", "/v1/dlq/default/b?trigger=" + trigger)
    eq(st, 200, "dlq get: %r" % body)
    return body["total"]


def check_replay(knit, s, other, label, first_offset):
    """Events a0..a5 and b0..b5 were stored alternately (a0 b0 a1 ...),
    s matches type a, other takes everything."""
    want = ["a%d" % i for i in range(N)]
    rc, out, err = knit_cli(knit, "replay", "trigger", "default/t",
                            "--from", "start")
    eq(rc, 0, label + ": replay from start: " + err)
    wait_for(lambda: len(s.ids()) >= 2 * N, label + ": replayed", timeout=60)
    eq(sorted(s.ids()[N:]), want, label + ": replay, filter applied again")
    # From an offset: the 7th stored event is a3 (a0 b0 a1 b1 a2 b2 a3 ...).
    rc, out, err = knit_cli(knit, "replay", "trigger", "default/t",
                            "--from", str(first_offset + 6))
    eq(rc, 0, label + ": replay from offset: " + err)
    wait_for(lambda: len(s.ids()) >= 2 * N + 3, label + ": from offset",
             timeout=60)
    eq(sorted(s.ids()[2 * N:]), ["a3", "a4", "a5"], label + ": from offset")
    eq(len(other.ids()), 2 * N, label + ": other trigger not replayed")


def check_dlq(knit, down, state, label):
    wait_for(lambda: dlq_total(knit, "down") >= 3, label + ": dead letters",
             timeout=60)
    rc, out, err = knit_cli(knit, "dlq", "list", "default/b", "-o", "json")
    eq(rc, 0, label + ": dlq list: " + err)
    body = json.loads(out)
    eq(body["total"], 3, label + ": dead letters stored")
    eq(sorted(it["event"]["id"] for it in body["items"]),
       ["d0", "d1", "d2"], label + ": dead letters")
    check(all(it["trigger"] == "down" for it in body["items"]),
          label + ": trigger named: %r" % body["items"])
    state["heal"] = True
    n = len(down.requests())
    rc, out, err = knit_cli(knit, "dlq", "replay", "default/b",
                            "--trigger", "down")
    eq(rc, 0, label + ": dlq replay: " + err)
    check("replaying 3" in out, out)
    wait_for(lambda: len(down.requests()) >= n + 3, label + ": re-delivered",
             timeout=60)
    eq(sorted(r["headers"]["ce-id"] for r in down.requests()[n:]),
       ["d0", "d1", "d2"], label + ": re-delivered events")
    wait_for(lambda: dlq_total(knit, "down") == 0,
             label + ": replayed entries removed", timeout=60)


def exercise(tmp, broker_docs, label, first_offset):
    state = {"heal": False}
    s, other = PySink(), PySink()
    down = PySink(lambda r: (202 if state["heal"] else 503, {}, b"", 0))
    knit = None
    try:
        yaml = docs(broker_docs,
                    trigger_yaml("t", "b", s.url, attributes={"type": "a"}),
                    trigger_yaml("o", "b", other.url,
                                 attributes={"source": "knit-test"}),
                    trigger_yaml("down", "b", down.url,
                                 attributes={"type": "d"}, delivery=FAST))
        knit = start_knit(tmp, yaml)
        wait_condition(knit, "b", "True", timeout=60)
        for i in range(N):
            send(knit, "a%d" % i, type_="a", source="knit-test")
            send(knit, "b%d" % i, type_="b", source="knit-test")
        wait_for(lambda: len(s.ids()) >= N and len(other.ids()) >= 2 * N,
                 label + ": first pass", timeout=60)
        eq(sorted(s.ids()), ["a%d" % i for i in range(N)],
           label + ": first pass, filtered")
        for i in range(3):
            send(knit, "d%d" % i, type_="d", source="elsewhere")
        check_replay(knit, s, other, label, first_offset)
        check_dlq(knit, down, state, label)
        eq(knit.stop(), 0, label + ": clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        for x in (s, other, down):
            x.stop()


def main():
    def one(label, addr):
        tmp = TempDir()
        try:
            if label == "nats":   # stream sequences start at 1
                exercise(tmp, nats_broker_yaml("b", addr), label, 1)
            else:                 # one partition, offsets from 0
                exercise(tmp, kafka_broker_yaml("b", addr), label, 0)
        finally:
            tmp.cleanup()
    each_backend(one, kafka_topics=["knative-broker-default-b:1"])


run(main)
