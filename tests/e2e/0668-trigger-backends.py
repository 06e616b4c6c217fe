"""Triggers on brokers backed by NATS JetStream (a real nats-server) and by
Kafka (librdkafka's mock cluster, 4 partitions): every event reaches the
matching triggers once, per-partitionkey order holds for an ordered
trigger, and after a clean restart nothing is delivered again (the
positions were committed per partition / acknowledged). These backends
have partitions or gapped offsets, so their triggers read through their
own cursors (no broker ring). Skipped parts: whichever backend is not
available."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backends_e2e import (each_backend,  # noqa: E402
                          kafka_broker_yaml, nats_broker_yaml)
from knit_e2e import (Knit, PySink, TempDir, docs, eq, run, send,  # noqa: E402
                      start_knit, trigger_yaml, wait_condition, wait_for)

KEYS = 4
PER_KEY = 10


def exercise(tmp, broker_docs, label):
    every, ordered, typed = PySink(), PySink(), PySink()
    knit = None
    try:
        yaml = docs(broker_docs,
                    trigger_yaml("every", "b", every.url),
                    trigger_yaml("ord", "b", ordered.url, annotations={
                        "kafka.eventing.knative.dev/delivery.order":
                            "ordered"}),
                    trigger_yaml("typed", "b", typed.url,
                                 attributes={"type": "even"}))
        knit = start_knit(tmp, yaml)
        wait_condition(knit, "b", "True", timeout=60)
        sent = []
        for i in range(PER_KEY):
            for k in range(KEYS):
                id_ = "%s-k%d-%d" % (label, k, i)
                send(knit, id_, type_="even" if i % 2 == 0 else "odd",
                     extra={"ce-partitionkey": "key%d" % k})
                sent.append(id_)
        n = KEYS * PER_KEY
        wait_for(lambda: len(set(every.ids())) >= n, label + ": every",
                 timeout=60)
        wait_for(lambda: len(set(ordered.ids())) >= n, label + ": ordered",
                 timeout=60)
        want_even = {s for s in sent if int(s.rsplit("-", 1)[1]) % 2 == 0}
        wait_for(lambda: set(typed.ids()) >= want_even, label + ": typed",
                 timeout=60)
        eq(sorted(set(every.ids())), sorted(sent), label + ": all events")
        eq(set(typed.ids()), want_even, label + ": filter")
        for k in range(KEYS):
            got = [i for i in ordered.ids() if "-k%d-" % k in i]
            eq(got, [i for i in sent if "-k%d-" % k in i],
               label + ": order of key%d" % k)
        # clean restart: positions were committed, nothing comes again
        wait_for(lambda: True, "settle")
        before = len(every.ids())
        eq(knit.stop(), 0, label + ": stop")
        knit = Knit(knit.data_dir, config_dir=knit.config_dir).start()
        wait_condition(knit, "b", "True", timeout=60)
        send(knit, label + "-after", type_="even")
        wait_for(lambda: label + "-after" in every.ids(),
                 label + ": after restart", timeout=60)
        extra = every.ids()[before:]
        eq(extra, [label + "-after"], label + ": no redelivery after a "
           "clean restart")
        eq(knit.stop(), 0, label + ": clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        for s in (every, ordered, typed):
            s.stop()


def main():
    def one(label, addr):
        tmp = TempDir()
        try:
            yaml = (nats_broker_yaml("b", addr) if label == "nats"
                    else kafka_broker_yaml("b", addr))
            exercise(tmp, yaml, label)
        finally:
            tmp.cleanup()
    each_backend(one, kafka_topics=["knative-broker-default-b:4"])


run(main)
