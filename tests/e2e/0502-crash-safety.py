"""0502-crash-safety: several producers send events concurrently over
keep-alive connections; knit is killed with SIGKILL mid-stream and
restarted. Every event that got a 202 must be in the log exactly once,
events of one connection must be in send order, and nothing is
duplicated. Read back with the admin tail from the start."""

import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_e2e import (Knit, TempDir, binary_headers, broker_yaml, check,
                        eq, run)

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


def main():
    tmp = TempDir()
    try:
        cfg = tmp.sub("config")
        tmp.write("config/b.yaml", broker_yaml("demo"))
        data = tmp.sub("data")
        k = Knit(data, cfg).start()
        try:
            acked = [[] for _ in range(CONNS)]
            stop = threading.Event()
            threads = [threading.Thread(target=producer,
                                        args=(k.ingress, i, acked[i], stop))
                       for i in range(CONNS)]
            for t in threads:
                t.start()
            # kill once a good number of events went through
            deadline = time.time() + 20
            while sum(map(len, acked)) < 600 and time.time() < deadline:
                time.sleep(0.01)
            k.kill()
            stop.set()
            for t in threads:
                t.join()
            total = sum(map(len, acked))
            check(total >= 100, "enough acknowledged events (%d)" % total)

            k = Knit(data, cfg).start()
            evs = k.tail("default", "demo")
            ids = [e["id"] for e in evs]
            eq(len(ids), len(set(ids)), "no event stored twice")
            stored = set(ids)
            for i in range(CONNS):
                missing = [e for e in acked[i] if e not in stored]
                eq(missing, [], "acknowledged events of connection %d" % i)
                seqs = [int(x.split("-")[1]) for x in ids
                        if x.startswith("c%d-" % i)]
                eq(seqs, sorted(seqs), "order of connection %d" % i)
                # at most the one in-flight event beyond the acked ones
                check(len(seqs) <= len(acked[i]) + 1,
                      "connection %d: %d stored, %d acked" %
                      (i, len(seqs), len(acked[i])))
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
    finally:
        tmp.cleanup()


run(main)
