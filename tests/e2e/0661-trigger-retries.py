"""Retries end to end (real HTTP subscribers on loopback): a subscriber
that fails N times then succeeds is called N+1 times with at least the
configured gaps (lower bounds only: a slow machine only widens them); a
non-retryable code stops at once; Retry-After on 429 is honoured, and
capped by retryAfterMax; a 404 is retried."""

import threading

from knit_e2e import (PySink, TempDir, broker_yaml, check, docs,  # noqa: E402
                      eq, run, send, start_knit, trigger_yaml, wait_for)


def failing(n_fail, code, headers=None):
    """Fails the first n_fail requests of each event id with `code`."""
    seen = {}
    lock = threading.Lock()

    def behave(req):
        i = req["headers"].get("ce-id")
        with lock:
            seen[i] = seen.get(i, 0) + 1
            k = seen[i]
        if k <= n_fail:
            return code, headers or {}, b"try again", 0
        return 202, {}, b"", 0
    return behave


def gaps(reqs):
    return [b["t"] - a["t"] for a, b in zip(reqs, reqs[1:])]


def main():
    tmp = TempDir()
    lin = PySink(failing(3, 503))
    expo = PySink(failing(2, 500))
    bad = PySink(failing(99, 400))
    ra = PySink(failing(1, 429, {"Retry-After": "1"}))
    cap = PySink(failing(1, 429, {"Retry-After": "30"}))
    nf = PySink(failing(2, 404))
    sinks = [lin, expo, bad, ra, cap, nf]
    knit = None
    try:
        yaml = docs(
            broker_yaml("b"),
            trigger_yaml("lin", "b", lin.url, attributes={"type": "lin"},
                         delivery={"retry": 3, "backoffPolicy": "linear",
                                   "backoffDelay": "PT0.2S"}),
            trigger_yaml("expo", "b", expo.url, attributes={"type": "expo"},
                         delivery={"retry": 5,
                                   "backoffPolicy": "exponential",
                                   "backoffDelay": "PT0.15S"}),
            trigger_yaml("bad", "b", bad.url, attributes={"type": "bad"},
                         delivery={"retry": 5, "backoffDelay": "PT0.01S"}),
            trigger_yaml("ra", "b", ra.url, attributes={"type": "ra"},
                         delivery={"retry": 2, "backoffDelay": "PT0.01S"}),
            trigger_yaml("cap", "b", cap.url, attributes={"type": "cap"},
                         delivery={"retry": 2, "backoffDelay": "PT0.01S",
                                   "retryAfterMax": "PT0.3S"}),
            trigger_yaml("nf", "b", nf.url, attributes={"type": "nf"},
                         delivery={"retry": 3, "backoffDelay": "PT0.05S"}))
        knit = start_knit(tmp, yaml)
        for t in ("lin", "expo", "bad", "ra", "cap", "nf"):
            send(knit, t + "-1", type_=t)
        lin.wait_count(4)
        expo.wait_count(3)
        ra.wait_count(2)
        cap.wait_count(2)
        nf.wait_count(3)
        tol = 0.02  # timer granularity
        g = gaps(lin.requests())
        eq(len(lin.requests()), 4, "linear: 3 failures + 1 success")
        for n, want in enumerate([0.2, 0.4, 0.6]):
            check(g[n] >= want - tol, "linear gap %d: %.3f < %.3f" %
                  (n + 1, g[n], want))
        g = gaps(expo.requests())
        for n, want in enumerate([0.15, 0.3]):
            check(g[n] >= want - tol, "exponential gap %d: %.3f < %.3f" %
                  (n + 1, g[n], want))
        g = gaps(ra.requests())
        check(g[0] >= 1.0 - tol, "Retry-After 1 honoured: %.3f" % g[0])
        g = gaps(cap.requests())
        check(g[0] >= 0.3 - tol, "capped Retry-After >= cap: %.3f" % g[0])
        check(g[0] < 25, "Retry-After 30 capped by retryAfterMax PT0.3S: "
              "%.3f" % g[0])
        eq(len(nf.requests()), 3, "404 retried")
        # 400 is not retried: one request, then the dead-letter store.
        wait_for(lambda: knit.admin_json("GET", "/v1/dlq/default/b")[1]
                 ["total"] >= 1, "400 dead-lettered")
        eq(len(bad.requests()), 1, "400 not retried")
        st, body = knit.admin_json("GET", "/v1/dlq/default/b?trigger=bad")
        eq(st, 200, "dlq list")
        item = body["items"][0]
        eq((item["reason"], item["code"]), ("delivery", 400), "dlq entry")
        # nothing else went to the store
        eq(body["total"], 1, "one dead letter for 'bad'")
        st, body = knit.admin_json("GET", "/v1/dlq/default/b")
        eq(body["total"], 1, "only 'bad' failed")
        for s in (lin, expo, ra, cap, nf):
            eq(len(set(s.ids())), 1, "one event per trigger")
        eq(knit.stop(), 0, "clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        for s in sinks:
            s.stop()
        tmp.cleanup()


run(main)
