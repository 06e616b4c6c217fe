"""0721-kafka-outage: every broker of the Kafka cluster goes down
mid-stream and comes back (librdkafka's mock cluster through the
kafka-mock tool: `broker_down -1` / `broker_up -1`).

A Kafka-class broker takes a continuous stream of posts (4 keep-alive
connections):
- while the cluster is down the ingress answers 503 with Retry-After,
  the broker's Ready condition is False (BackendUnavailable, with the
  kafka channel's reason) and /readyz answers 503;
- once the brokers are back knit recovers by itself: 202 again, Ready
  True again, both changes logged;
- every event that got 202 is in the topic (read back with the admin
  tail from the start); duplicates are counted and printed (Kafka's
  at-least-once allows them; the idempotent producer should make them 0).
Skipped (loudly) only when the kafka-mock tool is not built.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backends_e2e import KafkaMock, kafka_broker_yaml  # noqa: E402
from knit_e2e import (Knit, Poster, TempDir, apply_ok, check, eq,  # noqa: E402
                      read_back, run, wait_condition, wait_for)


def main():
    mock = KafkaMock().start()
    tmp = TempDir()
    k = Knit(tmp.sub("data"))
    poster = None
    try:
        k.start()
        apply_ok(k, kafka_broker_yaml("demo", mock.bootstrap,
                                      {"kafka.message.timeout.ms": "3000"}))
        wait_condition(k, "demo", "True")
        poster = Poster([k.ingress], "/default/demo", "k", threads=4,
                        max_wait=0.05)
        poster.start()
        wait_for(lambda: poster.count(202) >= 300, "202s before the outage",
                 timeout=30)

        mock.command("broker_down -1")
        down_at = poster.count(202)
        wait_for(lambda: poster.count(503) >= 20, "503s while Kafka is down",
                 timeout=30)
        check(poster.retry_after_seen >= 20, "503 answers carry Retry-After")
        c = wait_condition(k, "demo", "False", "BackendUnavailable")
        print("Ready while down: %s" % c["message"])
        st, _, _ = k.request("GET", "/readyz")
        eq(st, 503, "/readyz while Kafka is down")
        acked_in_outage = poster.count(202) - down_at

        mock.command("broker_up -1")
        up_503 = poster.count(503)
        wait_for(lambda: poster.count(202) >= down_at + acked_in_outage +
                 300, "202s after Kafka is back", timeout=30)
        wait_condition(k, "demo", "True")
        st, _, _ = k.request("GET", "/readyz")
        eq(st, 200, "/readyz after recovery")
        poster.stop()

        log = k.log_text()
        check("Ready True -> False (BackendUnavailable" in log,
              "the outage is logged")
        check("Ready False -> True" in log, "the recovery is logged")
        acked = poster.acked
        ids = read_back(k.admin, "default", "demo", acked)
        seen = set(ids)
        lost = sorted(acked - seen)
        dups = len(ids) - len(seen)
        print("posted %d: 202 %d, 503 %d (%d before the brokers came "
              "back); 202 between broker_down and Ready False: %d; stored "
              "%d, lost %d, duplicates %d" % (
                  poster.posted(), poster.count(202), poster.count(503),
                  up_503, acked_in_outage, len(ids), len(lost), dups))
        check(not lost, "acknowledged events lost: %d, e.g. %r" % (
            len(lost), lost[:10]))
        others = set(poster.codes) - {202, 503}
        check(not others, "unexpected answers: %r" % poster.codes)
    except AssertionError:
        sys.stderr.write("--- knit log ---\n%s\n" % k.log_text()[-6000:])
        raise
    finally:
        if poster:
            poster.stop()
        k.stop()
        mock.stop()
        tmp.cleanup()


if __name__ == "__main__":
    run(main)
