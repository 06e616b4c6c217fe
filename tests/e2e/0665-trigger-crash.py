"""At-least-once across a crash: knit is killed with SIGKILL while events
are being stored and delivered; after a restart every event that was
acknowledged (202) is delivered at least once to every matching trigger,
never to a non-matching one, and the duplicates are bounded by what was in
flight or not yet committed (the commit runs every 100 ms)."""

import collections
import signal

from knit_e2e import (Knit, PySink, TempDir, binary_headers,  # noqa: E402
                      broker_yaml, check, docs, eq, run, start_knit,
                      trigger_yaml, wait_for)

N = 600
KILL_AT = 300
MIF = 10


def main():
    tmp = TempDir()
    s_all = PySink(lambda r: (202, {}, b"", 0.01))
    s_even = PySink(lambda r: (202, {}, b"", 0.01))
    knit = None
    ann = {"knit.dev/max-in-flight": str(MIF)}
    try:
        yaml = docs(broker_yaml("b"),
                    trigger_yaml("all", "b", s_all.url, annotations=ann),
                    trigger_yaml("even", "b", s_even.url,
                                 attributes={"type": "even"},
                                 annotations=ann))
        knit = start_knit(tmp, yaml)
        acked = []
        for i in range(N):
            if i == KILL_AT:
                knit.proc.send_signal(signal.SIGKILL)
                knit.proc.wait()
                break
            t = "even" if i % 2 == 0 else "odd"
            st, _, _ = knit.post("/default/b", b"x",
                                 binary_headers("e%d" % i, t))
            eq(st, 202, "POST e%d" % i)
            acked.append(("e%d" % i, t))
        knit.log.close()
        knit.proc = None
        before_all = len(s_all.requests())
        knit = Knit(knit.data_dir, config_dir=knit.config_dir).start()
        want_all = {i for i, _ in acked}
        want_even = {i for i, t in acked if t == "even"}
        wait_for(lambda: want_all <= set(s_all.ids()), "all delivered",
                 timeout=60)
        wait_for(lambda: want_even <= set(s_even.ids()), "even delivered",
                 timeout=60)
        check(set(s_even.ids()) <= want_even, "only even events to 'even'")
        for name, s in (("all", s_all), ("even", s_even)):
            c = collections.Counter(s.ids())
            dups = sum(n - 1 for n in c.values())
            print("%s: %d delivered, %d duplicates" % (name, len(c), dups))
            check(dups <= MIF + 100, "%s: %d duplicates" % (name, dups))
        check(before_all > 0, "deliveries were running at the kill")
        # and it keeps working
        st, _, _ = knit.post("/default/b", b"x",
                             binary_headers("after", "even"))
        eq(st, 202, "POST after restart")
        wait_for(lambda: "after" in s_even.ids(), "delivery after restart")
        eq(knit.stop(), 0, "clean stop")
        knit = None
    finally:
        if knit and knit.proc:
            knit.stop()
        s_all.stop()
        s_even.stop()
        tmp.cleanup()


run(main)
