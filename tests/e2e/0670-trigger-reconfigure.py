"""Reconfiguring under load: while events are posted continuously, the
broker's channel is reopened twice (a log setting changes) and the
trigger's subscriber is moved to another sink and its filter widened.
Every acknowledged event still reaches a subscriber at least once (the
trigger restarts at its commit point when its channel is reopened), the
change of subscriber takes effect without a restart, and the status stays
Ready."""

import time

from knit_e2e import (Poster, PySink, TempDir, broker_yaml, check,
                      condition, docs, eq, run, start_knit, trigger_status,
                      trigger_yaml, wait_for)


def main():
    tmp = TempDir()
    s1, s2 = PySink(), PySink()
    knit = None
    try:
        knit = start_knit(tmp, docs(
            broker_yaml("b"),
            trigger_yaml("t", "b", s1.url,
                         attributes={"type": "e2e.load"})))
        poster = Poster([knit.ingress], "/default/b", "r", threads=2,
                        retry=True, max_wait=0.2).start(limit=1500)
        wait_for(lambda: poster.posted() > 200, "posting started")
        st, res = knit.apply(broker_yaml(
            "b", annotations={"knit.dev/segment-bytes": "1Mi"}))
        eq(st, 200, "reopen 1: %r" % res)
        wait_for(lambda: poster.posted() > 500, "posting continues")
        st, res = knit.apply(trigger_yaml("t", "b", s2.url))
        eq(st, 200, "move the subscriber: %r" % res)
        n1 = len(s1.ids())
        wait_for(lambda: len(s2.ids()) > 0, "the new subscriber gets events")
        time.sleep(0.2)
        check(len(s1.ids()) - n1 < 600, "the old subscriber stops getting "
              "new events")
        st, res = knit.apply(broker_yaml(
            "b", annotations={"knit.dev/segment-bytes": "2Mi"}))
        eq(st, 200, "reopen 2: %r" % res)
        poster.join(60)
        acked = set(poster.acked)
        check(len(acked) >= 1000, "most posts acknowledged (%d)" %
              len(acked))
        wait_for(lambda: acked <= set(s1.ids()) | set(s2.ids()),
                 "every acknowledged event delivered", timeout=60)
        st = trigger_status(knit, "t")
        eq(condition(st, "Ready")["status"], "True", "trigger Ready")
        eq(st["status"]["subscriberUri"], s2.url, "subscriberUri")
        eq(knit.stop(), 0, "clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        s1.stop()
        s2.stop()
        tmp.cleanup()


run(main)
