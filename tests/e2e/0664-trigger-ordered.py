"""Ordered delivery: with delivery.order=ordered, events with the same
partitionkey (else the same source) reach the subscriber one at a time in
the order they were stored, while different keys proceed in parallel;
10 keys interleave and the subscriber answers after random delays (and
fails some first attempts, so retries must not reorder a key). Unordered
keeps several deliveries in flight; the rate limit spaces deliveries."""

import random
import threading
import time

from knit_e2e import (PySink, TempDir, broker_yaml, check, docs,  # noqa: E402
                      eq, run, send, start_knit, trigger_yaml, wait_for)

KEYS = 10
PER_KEY = 15


class Tracker:
    """Records concurrency and per-key overlap at the subscriber."""

    def __init__(self, key_of, fail_first=False):
        self.lock = threading.Lock()
        self.active = {}
        self.inflight = 0
        self.max_inflight = 0
        self.overlap = []
        self.tries = {}
        self.key_of = key_of
        self.fail_first = fail_first
        self.rng = random.Random(7)

    def behave(self, req):
        h = req["headers"]
        key = self.key_of(h)
        with self.lock:
            if self.active.get(key):
                self.overlap.append(key)
            self.active[key] = True
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            delay = self.rng.uniform(0, 0.02)
            self.tries[h["ce-id"]] = self.tries.get(h["ce-id"], 0) + 1
            fail = self.fail_first and self.tries[h["ce-id"]] == 1 and \
                self.rng.random() < 0.2
        time.sleep(delay)
        with self.lock:
            self.active[key] = False
            self.inflight -= 1
        return (500 if fail else 202), {}, b"", 0


def main():
    tmp = TempDir()
    ordered = Tracker(lambda h: h.get("ce-partitionkey"), fail_first=True)
    by_source = Tracker(lambda h: h.get("ce-source"))
    unordered = Tracker(lambda h: h.get("ce-partitionkey"))
    s_ord, s_src, s_un = (PySink(ordered.behave), PySink(by_source.behave),
                          PySink(unordered.behave))
    s_rate = PySink()
    sinks = [s_ord, s_src, s_un, s_rate]
    knit = None
    order = {"kafka.eventing.knative.dev/delivery.order": "ordered",
             "knit.dev/max-in-flight": "50"}
    fast = {"retry": 3, "backoffDelay": "PT0.01S"}
    try:
        yaml = docs(
            broker_yaml("b"),
            trigger_yaml("ord", "b", s_ord.url, attributes={"type": "k"},
                         annotations=order, delivery=fast),
            trigger_yaml("src", "b", s_src.url, attributes={"type": "s"},
                         annotations=order),
            trigger_yaml("un", "b", s_un.url, attributes={"type": "k"},
                         annotations={"knit.dev/max-in-flight": "50"}),
            trigger_yaml("rate", "b", s_rate.url, attributes={"type": "r"},
                         annotations={"knit.dev/rate-limit": "20"}))
        knit = start_knit(tmp, yaml)
        sent = {}
        for i in range(PER_KEY):
            for k in range(KEYS):
                id_ = "k%d-%d" % (k, i)
                send(knit, id_, type_="k",
                     extra={"ce-partitionkey": "key%d" % k})
                sent.setdefault("key%d" % k, []).append(id_)
                send(knit, "s%d-%d" % (k, i), type_="s",
                     source="/src/%d" % k)
        total = KEYS * PER_KEY
        wait_for(lambda: len(set(s_ord.ids())) >= total, "ordered done",
                 timeout=60)
        wait_for(lambda: len(set(s_src.ids())) >= total, "by source done",
                 timeout=60)
        wait_for(lambda: len(set(s_un.ids())) >= total, "unordered done",
                 timeout=60)
        # Per key: the first delivery of each event follows the sent
        # order, and no two deliveries of one key overlapped.
        for key, ids in sent.items():
            got = []
            for r in s_ord.requests():
                if r["headers"].get("ce-partitionkey") == key and \
                        r["headers"]["ce-id"] not in got:
                    got.append(r["headers"]["ce-id"])
            eq(got, ids, "order of %s" % key)
        eq(ordered.overlap, [], "one delivery at a time per key")
        check(ordered.max_inflight >= 2, "keys in parallel (max %d)" %
              ordered.max_inflight)
        check(sum(ordered.tries.values()) > total, "some retries happened")
        for k in range(KEYS):
            got = [r["headers"]["ce-id"] for r in s_src.requests()
                   if r["headers"]["ce-source"] == "/src/%d" % k]
            eq(got, ["s%d-%d" % (k, i) for i in range(PER_KEY)],
               "order by source /src/%d" % k)
        eq(by_source.overlap, [], "one at a time per source")
        check(unordered.max_inflight >= 2, "unordered runs in parallel")
        # Rate limit 20/s (burst 2): 30 deliveries take at least 1.4 s.
        t0 = time.monotonic()
        for i in range(30):
            send(knit, "r%d" % i, type_="r")
        s_rate.wait_count(30, timeout=60)
        reqs = s_rate.requests()
        # Only lower bounds (a slow machine makes them longer, never
        # shorter): the last delivery cannot come before 28/20 s after the
        # first send. Between the sink's first and last receipt the bound
        # is looser, since the first receipt may itself have been delayed
        # on a loaded machine (without a limit all 30 take ~0.05 s).
        span = reqs[-1]["t"] - reqs[0]["t"]
        check(reqs[-1]["t"] - t0 >= 1.35, "rate limit from the start")
        check(span >= 0.9, "rate limit: 30 events in %.2f s" % span)
        eq(knit.stop(), 0, "clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        for s in sinks:
            s.stop()
        tmp.cleanup()


run(main)
