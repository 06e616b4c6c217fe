"""0900-scaleout-nats: three knit processes share a NatsJetStreamBroker
(one nats-server). Events are posted round-robin across the three
ingresses ($KNIT_SCALEOUT_EVENTS, default 10,000; 50,000 is the full run);
one knit process is SIGKILLed in the middle. Every acknowledged event
reaches the trigger "all" at least once and every acknowledged odd event
the trigger "odd" (attribute filter); even events never reach "odd".
Duplicates (redeliveries of what the killed process held) are counted
and printed. The triggers' shared durable consumers spread the deliveries
over the processes; ack-wait is 3 s so the killed process's messages come
back quickly. Skipped (loudly) only without nats-server.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backends_e2e import NatsServer, nats_broker_yaml  # noqa: E402
from knit_e2e import run  # noqa: E402
from scaleout_e2e import run_scaleout  # noqa: E402


def main():
    ns = NatsServer().start()
    try:
        run_scaleout("nats", nats_broker_yaml("b", ns.url, {
            "ack-wait": "PT3S"}))
    finally:
        ns.cleanup()


if __name__ == "__main__":
    run(main)
