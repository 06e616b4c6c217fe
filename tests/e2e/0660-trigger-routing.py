"""Triggers end to end: events stored in a broker reach the subscribers of
the triggers whose filter matches (legacy attributes, exact and prefix
filters, match-all), each exactly once, in binary mode with Prefer: reply
and Kn-Namespace, without knativebrokerttl; status conditions and
subscriberUri are reported; a trigger created later starts at the end."""

from knit_e2e import (PySink, TempDir, broker_yaml, check,  # noqa: E402
                      condition, docs, eq, run, send, start_knit,
                      trigger_status, trigger_yaml, wait_for)


def main():
    tmp = TempDir()
    a, b, pre, every = PySink(), PySink(), PySink(), PySink()
    knit = None
    try:
        yaml = docs(
            broker_yaml("b"),
            trigger_yaml("ta", "b", a.url, attributes={"type": "a"}),
            trigger_yaml("tb", "b", b.url,
                         filters=[{"exact": {"type": "b"}}]),
            trigger_yaml("tp", "b", pre.url,
                         filters=[{"prefix": {"source": "/orders/"}}]),
            trigger_yaml("tall", "b", every.url))
        knit = start_knit(tmp, yaml)
        for i in range(10):
            send(knit, "a%d" % i, type_="a")
            send(knit, "b%d" % i, type_="b", source="/orders/%d" % i)
            send(knit, "c%d" % i, type_="c")
        wait_for(lambda: len(every.requests()) >= 30, "match-all trigger")
        wait_for(lambda: len(a.requests()) >= 10 and
                 len(b.requests()) >= 10 and len(pre.requests()) >= 10,
                 "filtered triggers")
        eq(sorted(a.ids()), sorted("a%d" % i for i in range(10)), "ta ids")
        eq(sorted(b.ids()), sorted("b%d" % i for i in range(10)), "tb ids")
        eq(sorted(pre.ids()), sorted("b%d" % i for i in range(10)),
           "tp ids")
        eq(len(every.ids()), 30, "tall count")
        eq(len(set(every.ids())), 30, "tall distinct")
        r = a.requests()[0]
        h = r["headers"]
        eq(h.get("ce-type"), "a", "binary mode ce-type")
        eq(h.get("prefer"), "reply", "Prefer header")
        eq(h.get("kn-namespace"), "default", "Kn-Namespace header")
        check("ce-knativebrokerttl" not in h, "TTL not sent: %r" % h)
        check("ce-knativearrivaltime" in h, "arrival time sent")
        eq(r["body"], b"x", "body")
        st = trigger_status(knit, "ta")
        eq(condition(st, "Ready")["status"], "True", "ta Ready")
        eq(condition(st, "BrokerReady")["status"], "True", "BrokerReady")
        eq(condition(st, "DeadLetterSinkResolved")["reason"],
           "DeadLetterSinkNotConfigured", "no DLS")
        eq(st["status"]["subscriberUri"], a.url, "subscriberUri")
        # A new trigger starts at the end: it sees only later events.
        late = PySink()
        st_, res = knit.apply(trigger_yaml("tlate", "b", late.url))
        eq(st_, 200, "apply tlate: %r" % res)
        send(knit, "after", type_="zzz")
        wait_for(lambda: "after" in late.ids(), "late trigger delivery")
        wait_for(lambda: "after" in every.ids(), "tall gets 'after'")
        eq(late.ids(), ["after"], "late trigger sees only new events")
        late.stop()
        # A trigger on a broker that does not exist is not ready.
        st_, res = knit.apply(trigger_yaml("orphan", "nobroker", a.url))
        eq(st_, 200, "apply orphan")
        st = trigger_status(knit, "orphan")
        eq(condition(st, "BrokerReady")["reason"], "BrokerDoesNotExist",
           "orphan BrokerReady")
        eq(condition(st, "Ready")["status"], "False", "orphan Ready")
        # spec.broker is immutable.
        st_, res = knit.apply(trigger_yaml("ta", "other", a.url))
        eq(st_, 400, "moving a trigger: %r" % res)
        check("immutable" in res["error"], res["error"])
        eq(knit.stop(), 0, "clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        for s in (a, b, pre, every):
            s.stop()
        tmp.cleanup()


run(main)
