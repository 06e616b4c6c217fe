"""0502-crash-safety: several producers send events concurrently over
keep-alive connections; knit is killed with SIGKILL mid-stream and
restarted. Every event that got a 202 must be in the log exactly once,
events of one connection must be in send order, and nothing is
duplicated. Then the same with SIGTERM mid-stream: knit exits 0 (in-flight
appends finish and are answered) and again nothing acknowledged is lost.
Read back with the admin tail from the start."""

import http.client
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import (Knit, TempDir, binary_headers, broker_yaml,  # noqa: E402
                      check, eq, run)

CONNS = 6


def producer(port, conn_id, acked, stop):
    """Sends c<conn>-<seq> events one after another until stopped or the
    server goes away; records the ids that got 202."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    seq = 0
    try:
        while not stop.is_set():
            eid = "c%d-%d" % (conn_id, seq)
            conn.request("POST", "/default/demo", body=b"x" * 200,
                         headers=binary_headers(eid))
            r = conn.getresponse()
            r.read()
            if r.status != 202:
                break
            acked.append(eid)
            seq += 1
    except (OSError, http.client.HTTPException):
        pass  # the server was killed
    finally:
        conn.close()


def send_until(k, sig, min_acked, prefix_conns):
    """Runs the producers until min_acked events got 202, then sends sig
    to knit; returns (per-connection acked ids, knit's exit status)."""
    acked = [[] for _ in range(CONNS)]
    stop = threading.Event()
    threads = [threading.Thread(target=producer,
                                args=(k.ingress, prefix_conns + i,
                                      acked[i], stop))
               for i in range(CONNS)]
    for t in threads:
        t.start()
    deadline = time.time() + 20
    while sum(map(len, acked)) < min_acked and time.time() < deadline:
        time.sleep(0.01)
    rc = k.stop(sig)
    stop.set()
    for t in threads:
        t.join()
    return acked, rc


def verify(k, acked, prefix_conns):
    evs = k.tail("default", "demo")
    ids = [e["id"] for e in evs]
    eq(len(ids), len(set(ids)), "no event stored twice")
    stored = set(ids)
    for i in range(CONNS):
        c = prefix_conns + i
        missing = [e for e in acked[i] if e not in stored]
        eq(missing, [], "acknowledged events of connection %d" % c)
        seqs = [int(x.split("-")[1]) for x in ids
                if x.startswith("c%d-" % c)]
        eq(seqs, sorted(seqs), "order of connection %d" % c)
        check(len(seqs) <= len(acked[i]) + 1,
              "connection %d: %d stored, %d acked" %
              (c, len(seqs), len(acked[i])))
    return ids


def main_graceful(tmp, data, cfg):
    k = Knit(data, cfg).start()
    try:
        acked, rc = send_until(k, signal.SIGTERM, 600, 100)
        eq(rc, 0, "exit status after SIGTERM under load")
        check(sum(map(len, acked)) >= 100, "enough acknowledged events")
        k = Knit(data, cfg).start()
        verify(k, acked, 100)
        eq(k.stop(), 0, "SIGTERM exit status")
    finally:
        if k.proc:
            k.kill()
            print(k.log_text())


def main():
    tmp = TempDir()
    try:
        cfg = tmp.sub("config")
        tmp.write("config/b.yaml", broker_yaml("demo"))
        data = tmp.sub("data")
        k = Knit(data, cfg).start()
        try:
            acked, _ = send_until(k, signal.SIGKILL, 600, 0)
            total = sum(map(len, acked))
            check(total >= 100, "enough acknowledged events (%d)" % total)
            k = Knit(data, cfg).start()
            ids = verify(k, acked, 0)
            # the log keeps working after recovery
            st, _, _ = k.post("/default/demo", b"y",
                              binary_headers("after"))
            eq(st, 202, "append after recovery")
            print("acked %d events, stored %d" % (total, len(ids)))
            eq(k.stop(), 0, "SIGTERM exit status")
        finally:
            if k.proc:
                k.kill()
                print(k.log_text())
        main_graceful(tmp, data, cfg)
    finally:
        tmp.cleanup()


run(main)
