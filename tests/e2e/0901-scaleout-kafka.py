"""0901-scaleout-kafka: three knit processes share a Kafka-class broker on
librdkafka's mock cluster (3 brokers, topic with 6 partitions). Events are
posted round-robin across the three ingresses ($KNIT_SCALEOUT_EVENTS,
default 10,000; 50,000 is the full run); one knit process is SIGKILLed in
the middle. Every acknowledged event reaches the trigger "all" at least
once and every acknowledged odd event the trigger "odd"; even events never
reach "odd". Duplicates (events the killed process had delivered but not
committed, redelivered after the consumer-group rebalance) are counted
and printed. The session timeout is 6 s so the killed member's
partitions move quickly. Skipped (loudly) only without the kafka-mock
tool.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backends_e2e import KafkaMock, kafka_broker_yaml  # noqa: E402
from knit_e2e import run  # noqa: E402
from scaleout_e2e import run_scaleout  # noqa: E402


def main():
    mock = KafkaMock().start()
    try:
        mock.command("topic_create knative-broker-default-b 6 3")
        run_scaleout("kafka", kafka_broker_yaml("b", mock.bootstrap, {
            "kafka.consumer.session.timeout.ms": "6000"}))
    finally:
        mock.stop()


if __name__ == "__main__":
    run(main)
