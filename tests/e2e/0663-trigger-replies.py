"""Replies end to end: a 200 with a CloudEvent is stored in the broker like
an ingress event (knativebrokerttl re-attached and decremented, arrival
time set) and matched by another trigger; a 202 with an event is not a
reply; a reply loop stops when the TTL runs out and the original is
dead-lettered (reason ttl) instead of spinning forever, both with a small
TTL and with the default 255."""

import json
import threading

from knit_e2e import (PySink, TempDir, broker_yaml, check, docs,  # noqa: E402
                      eq, metric, run, send, start_knit, trigger_yaml,
                      wait_for)


def replier(type_, code=200):
    n = [0]
    lock = threading.Lock()

    def behave(req):
        with lock:
            n[0] += 1
            k = n[0]
        ev = {"specversion": "1.0", "id": "reply-%d" % k, "source": "/r",
              "type": type_, "datacontenttype": "application/json",
              "data": {"in_reply_to": req["headers"].get("ce-id")}}
        return (code, {"Content-Type": "application/cloudevents+json"},
                json.dumps(ev).encode(), 0)
    return behave


def main():
    tmp = TempDir()
    req = PySink(replier("resp"))
    resp = PySink()
    accepted = PySink(replier("resp", code=202))
    loop = PySink(replier("loop"))
    sinks = [req, resp, accepted, loop]
    knit = None
    try:
        yaml = docs(
            broker_yaml("b"),
            trigger_yaml("req", "b", req.url, attributes={"type": "req"}),
            trigger_yaml("resp", "b", resp.url, attributes={"type": "resp"}),
            trigger_yaml("acc", "b", accepted.url,
                         attributes={"type": "acc"}),
            trigger_yaml("loop", "b", loop.url, attributes={"type": "loop"}))
        knit = start_knit(tmp, yaml)
        send(knit, "q1", type_="req")
        resp.wait_count(1)
        r = resp.requests()[0]
        eq(json.loads(r["body"]), {"in_reply_to": "q1"}, "reply data")
        eq(r["headers"]["ce-id"], "reply-1", "reply id")
        check("ce-knativearrivaltime" in r["headers"], "reply stamped")
        # the stored reply carries TTL 254 (255 at ingress, minus one)
        ev = knit.tail("default", "b", count=2)
        eq([e["id"] for e in ev], ["q1", "reply-1"], "stored events")
        eq(ev[0]["knativebrokerttl"], 255, "ingress TTL")
        eq(ev[1]["knativebrokerttl"], 254, "reply TTL decremented")

        # 202 + event: not a reply.
        send(knit, "a1", type_="acc")
        accepted.wait_count(1)
        send(knit, "marker", type_="resp")
        wait_for(lambda: "marker" in resp.ids(), "marker")
        eq(resp.ids(), ["reply-1", "marker"], "no reply from a 202")

        # A loop with a small TTL: 4 hops, then dead-lettered.
        send(knit, "l1", type_="loop", extra={"ce-knativebrokerttl": "5"})
        wait_for(lambda: knit.admin_json(
            "GET", "/v1/dlq/default/b?trigger=loop")[1]["total"] >= 1,
            "loop dead-lettered")
        eq(len(loop.requests()), 4, "hops before the TTL ran out")
        item = knit.admin_json("GET", "/v1/dlq/default/b?trigger=loop")[1][
            "items"][0]
        eq(item["reason"], "ttl", "dead-letter reason")
        eq(item["event"]["knativebrokerttl"], 1, "the last original")

        # The default TTL: the loop stops after 255 deliveries.
        n0 = len(loop.requests())
        send(knit, "l2", type_="loop")
        wait_for(lambda: knit.admin_json(
            "GET", "/v1/dlq/default/b?trigger=loop")[1]["total"] >= 2,
            "default-TTL loop dead-lettered", timeout=120)
        eq(len(loop.requests()) - n0, 255, "hops with the default TTL")
        m = knit.metrics()
        eq(metric(m, "knit_trigger_ttl_exhausted_total", trigger="loop"),
           2.0, "ttl metric")
        check(metric(m, "knit_trigger_replies_total", trigger="loop") >= 256,
              "replies metric")
        eq(knit.stop(), 0, "clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        for s in sinks:
            s.stop()
        tmp.cleanup()


run(main)
