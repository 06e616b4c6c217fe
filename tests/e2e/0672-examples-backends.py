"""The backend examples (examples/nats/broker.yaml, examples/kafka/
broker.yaml) stay true: each, with the quick start's trigger.yaml beside
it, is loaded by `knit serve --config DIR` (only the server address and
the subscriber's port replaced), the broker becomes Ready on its backend
(a real nats-server; librdkafka's mock cluster), and an event sent to
default/demo reaches the trigger's subscriber while a non-matching one
does not. This is the "switch a broker by changing one annotation and a
ConfigMap" promise of docs/configuration.md. Skipped parts: whichever
backend is not available."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backends_e2e import each_backend  # noqa: E402
from knit_e2e import (Knit, PySink, TempDir, check, eq, run,  # noqa: E402
                      send, wait_condition, wait_for)

SRC = os.environ.get("KNIT_SOURCE_DIR", "")


def example(path, old, new):
    with open(os.path.join(SRC, "examples", path)) as f:
        text = f.read()
    check(old in text, "%s names %s" % (path, old))
    return text.replace(old, new)


def exercise(label, broker_text):
    tmp = TempDir()
    sink = PySink()
    knit = None
    try:
        cfg = tmp.sub("config")
        with open(os.path.join(cfg, "broker.yaml"), "w") as f:
            f.write(broker_text)
        with open(os.path.join(cfg, "trigger.yaml"), "w") as f:
            f.write(example("quickstart/trigger.yaml",
                            "http://127.0.0.1:8081/", sink.url))
        knit = Knit(tmp.sub("data"), config_dir=cfg).start()
        wait_condition(knit, "demo", "True", timeout=60)
        send(knit, label + "-1", type_="demo.hello", broker="default/demo")
        send(knit, label + "-2", type_="other", broker="default/demo")
        send(knit, label + "-3", type_="demo.bye", broker="default/demo")
        wait_for(lambda: label + "-3" in sink.ids(), label + ": delivered",
                 timeout=60)
        eq(sorted(set(sink.ids())), [label + "-1", label + "-3"],
           label + ": the trigger's filter")
        eq(knit.stop(), 0, label + ": clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        sink.stop()
        tmp.cleanup()


def main():
    def one(label, addr):
        if label == "nats":
            exercise(label, example("nats/broker.yaml",
                                    "nats://127.0.0.1:4222", addr))
            return
        text = example("kafka/broker.yaml", "127.0.0.1:9092", addr)
        # the mock needs a short fetch wait (DESIGN section 2)
        text = text.replace("  kafka.client.id: knit-demo\n",
                            "  kafka.client.id: knit-demo\n"
                            "  kafka.consumer.fetch.wait.max.ms: \"5\"\n")
        exercise(label, text)
    each_backend(one)


run(main)
