"""0504-reconfigure-under-load: the ingress keeps serving while resources
change. Producers send continuously; an ingress-only change
(knit.dev/max-event-size) and applying other brokers cause no failed
request; a channel setting change (knit.dev/durability) reopens the
channel, during which requests may get 503 with Retry-After but nothing
else; afterwards every acknowledged event is in the log exactly once and
the new limit is enforced."""

import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import (Knit, TempDir, binary_headers, broker_yaml,  # noqa: E402
                      check, eq, run)

CONNS = 4


class Producer(threading.Thread):
    def __init__(self, port, cid):
        super().__init__()
        self.port, self.cid = port, cid
        self.acked, self.codes = [], {}
        self.bad_503 = 0
        self.stop = threading.Event()

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        seq = 0
        while not self.stop.is_set():
            eid = "p%d-%d" % (self.cid, seq)
            conn.request("POST", "/default/demo", body=b"x" * 100,
                         headers=binary_headers(eid))
            r = conn.getresponse()
            r.read()
            self.codes[r.status] = self.codes.get(r.status, 0) + 1
            if r.status == 202:
                self.acked.append(eid)
            elif r.status == 503 and not r.getheader("Retry-After"):
                self.bad_503 += 1
            seq += 1
        conn.close()

    def snapshot(self):
        return dict(self.codes)


def total(ps, code):
    return sum(p.codes.get(code, 0) for p in ps)


def main():
    tmp = TempDir()
    try:
        k = Knit(tmp.sub("data")).start()
        try:
            st, _ = k.apply(broker_yaml("demo"))
            eq(st, 200, "apply demo")
            ps = [Producer(k.ingress, i) for i in range(CONNS)]
            for p in ps:
                p.start()
            time.sleep(0.3)
            # ingress-only change and other brokers: no failure at all
            for i in range(5):
                st, body = k.apply(broker_yaml(
                    "demo", {"knit.dev/max-event-size": str(4096 + i)}))
                eq(st, 200, "apply max-event-size")
                st, _ = k.apply(broker_yaml("other%d" % i))
                eq(st, 200, "apply other broker")
                time.sleep(0.05)
            time.sleep(0.2)
            eq(sum(len(p.codes) == 1 and 202 in p.codes for p in ps),
               CONNS, "only 202 during ingress-only changes: %r" %
               [p.snapshot() for p in ps])
            # a channel setting: reopen; 503 with Retry-After allowed
            st, _ = k.apply(broker_yaml("demo", {
                "knit.dev/max-event-size": "4100",
                "knit.dev/durability": "write"}))
            eq(st, 200, "apply durability")
            time.sleep(0.3)
            for p in ps:
                p.stop.set()
            for p in ps:
                p.join()
            codes = set()
            for p in ps:
                codes |= set(p.codes)
            check(codes <= {202, 503}, "codes seen: %r" % codes)
            eq(sum(p.bad_503 for p in ps), 0, "503 without Retry-After")
            after = sum(len(p.acked) for p in ps)
            check(after > 50, "events acked (%d)" % after)
            st, obj = k.admin_json("GET",
                                   "/v1/resources/brokers/default/demo")
            eq(obj["status"]["conditions"][0]["status"], "True", "Ready")
            eq(obj["metadata"]["generation"], 7, "generation")
            st, _, _ = k.post("/default/demo", b"a" * 4101,
                              binary_headers("big"))
            eq(st, 413, "new limit enforced")
            ids = [e["id"] for e in k.tail("default", "demo")]
            eq(len(ids), len(set(ids)), "no duplicates")
            stored = set(ids)
            for p in ps:
                eq([e for e in p.acked if e not in stored], [],
                   "acked events of producer %d" % p.cid)
            print("acked %d, 503 during reopen: %d" %
                  (after, total(ps, 503)))
            eq(k.stop(), 0, "SIGTERM exit status")
        finally:
            if k.proc:
                k.kill()
                print(k.log_text())
    finally:
        tmp.cleanup()


run(main)
