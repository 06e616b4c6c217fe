"""A slow or dead subscriber affects only its own trigger: while one
trigger's subscriber refuses connections and another's answers after 2 s
one request at a time, a third trigger gets all of 5000 events (more than
the broker's ring holds, so the slow trigger falls behind the ring and
reads its own cursor); once the slow subscriber recovers, its trigger
catches up with every event, in order of the log, each exactly once; lag
and in-flight gauges are reported."""

import json
import socket

from knit_e2e import (PySink, TempDir, broker_yaml, check, docs,  # noqa: E402
                      eq, metric, run, start_knit, trigger_yaml, wait_for)

N = 5000
BATCH = 500


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    tmp = TempDir()
    state = {"slow": True}
    slow = PySink(lambda r: (202, {}, b"", 2.0 if state["slow"] else 0))
    fast = PySink()
    knit = None
    try:
        yaml = docs(
            broker_yaml("b"),
            trigger_yaml("dead", "b",
                         "http://127.0.0.1:%d/" % closed_port()),
            trigger_yaml("slow", "b", slow.url,
                         annotations={"knit.dev/max-in-flight": "1"}),
            trigger_yaml("fast", "b", fast.url))
        knit = start_knit(tmp, yaml)
        for b in range(N // BATCH):
            batch = [{"specversion": "1.0", "id": "e%d" % (b * BATCH + i),
                      "source": "/iso", "type": "t"}
                     for i in range(BATCH)]
            st, _, body = knit.post(
                "/default/b", json.dumps(batch).encode(),
                {"content-type": "application/cloudevents-batch+json"})
            eq(st, 202, "batch %d: %r" % (b, body))
        wait_for(lambda: len(fast.requests()) >= N, "fast trigger got all",
                 timeout=120)
        eq(len(set(fast.ids())), N, "fast: each event")
        check(len(slow.requests()) < 50, "slow trigger is slow (%d)" %
              len(slow.requests()))
        m = wait_for(lambda: (lambda t: t if (metric(
            t, "knit_trigger_lag_events", trigger="slow") or 0) > 1000
            else None)(knit.metrics()), "slow lag reported")
        eq(metric(m, "knit_trigger_in_flight", trigger="slow"), 1.0,
           "slow: max-in-flight 1")
        check(metric(m, "knit_trigger_lag_seconds", trigger="slow") > 0,
              "lag seconds")
        wait_for(lambda: metric(knit.metrics(), "knit_trigger_lag_events",
                                trigger="fast") == 0.0, "fast: lag 0")
        state["slow"] = False
        wait_for(lambda: len(set(slow.ids())) >= N, "slow caught up",
                 timeout=120)
        ids = slow.ids()
        eq(len(ids), N, "slow: each event exactly once")
        eq(ids, ["e%d" % i for i in range(N)],
           "max-in-flight 1 keeps the log order")
        eq(knit.stop(), 0, "clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        slow.stop()
        fast.stop()
        tmp.cleanup()


run(main)
