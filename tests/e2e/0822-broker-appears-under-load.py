"""0822-broker-appears-under-load: producers already post to a broker URL
when the broker and its trigger are applied (one apply). Posts get 404
until the broker exists, then 202; every event that got 202 must reach
the trigger — its cursor has to be open on the new channel before the
ingress stores anything there (a new trigger starts at the channel's
end, so an event stored first would be skipped for good).

Run for a NatsJetStreamBroker (a new stream) and for the log, each a few
times in a row (delete, apply again under load). Skipped (loudly) only
without nats-server.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backends_e2e import NatsServer, nats_broker_yaml  # noqa: E402
from knit_e2e import (Knit, Poster, PySink, TempDir, apply_ok,  # noqa: E402
                      broker_yaml, check, docs, run, trigger_yaml,
                      wait_for)

ROUNDS = 3


def one_round(k, sink, name, broker_docs, prefix):
    yaml = docs(broker_docs, trigger_yaml("t-" + name, name, sink.url))
    poster = Poster([k.ingress], "/default/" + name, prefix, threads=4)
    poster.start()
    try:
        wait_for(lambda: poster.count(404) >= 50, "404s before the broker")
        apply_ok(k, yaml)
        wait_for(lambda: poster.count(202) >= 500, "202s after the apply")
    finally:
        poster.stop()
    acked = poster.acked
    wait_for(lambda: acked <= set(sink.ids()), "%s: every acknowledged event "
             "at the trigger (%d acked, %d missing, e.g. %r)" % (
                 prefix, len(acked), len(acked - set(sink.ids())),
                 sorted(acked - set(sink.ids()))[:5]), timeout=30)
    # 503: the broker exists a moment before its channel is open
    others = set(poster.codes) - {202, 404, 503}
    check(not others, "%s: unexpected answers %r" % (prefix, poster.codes))
    print("%s: %d posts got 404, %d got 202, all delivered" % (
        prefix, poster.count(404), poster.count(202)))
    st, _ = k.admin_json("POST", "/v1/delete?file=d.yaml", yaml.encode())
    check(st == 200, "delete %s" % name)
    time.sleep(0.2)


def main():
    ns = NatsServer().start()
    tmp = TempDir()
    k = Knit(tmp.sub("data"))
    sink = PySink()
    try:
        k.start()
        for i in range(ROUNDS):
            one_round(k, sink, "n%d" % i,
                      nats_broker_yaml("n%d" % i, ns.url), "nats%d" % i)
            one_round(k, sink, "l%d" % i, broker_yaml("l%d" % i),
                      "log%d" % i)
    except AssertionError:
        sys.stderr.write("--- knit log ---\n%s\n" % k.log_text()[-6000:])
        raise
    finally:
        sink.stop()
        k.stop()
        ns.cleanup()
        tmp.cleanup()


if __name__ == "__main__":
    run(main)
