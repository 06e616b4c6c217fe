"""0821-nats-restart: the NATS server dies mid-stream and comes back.

A NatsJetStreamBroker takes a continuous stream of posts (4 keep-alive
connections). The nats-server is killed (SIGKILL) in the middle:
- the ingress answers 503 with Retry-After while it is down, and never
  202 for an event it could not store;
- the broker's Ready condition turns False (BackendUnavailable, naming
  the NATS URL) and /readyz answers 503;
- the server is started again on the same port and store: knit
  reconnects by itself, posts get 202 again, Ready turns True again and
  both changes are logged;
- every event that got 202 is read back from the broker (admin tail from
  the start of the stream), none twice.
Needs nats-server (skipped, loudly, without it; also skipped with
$KNIT_TEST_NATS_URL, whose server this test cannot restart).
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backends_e2e import NatsServer, nats_broker_yaml  # noqa: E402
from knit_e2e import (Knit, Poster, TempDir, apply_ok, check, eq,  # noqa: E402
                      read_back, run, skip, wait_condition, wait_for)


def main():
    if os.environ.get("KNIT_TEST_NATS_URL"):
        skip("0821 restarts its own nats-server; it does not run against "
             "KNIT_TEST_NATS_URL")
    ns = NatsServer(allow_external=False).start()
    tmp = TempDir()
    k = Knit(tmp.sub("data"))
    poster = None
    try:
        k.start()
        apply_ok(k, nats_broker_yaml("demo", ns.url,
                                     {"reconnect-wait-max": "200"}))
        wait_condition(k, "demo", "True")
        poster = Poster([k.ingress], "/default/demo", "r", threads=4,
                        max_wait=0.05)
        poster.start()
        wait_for(lambda: poster.count(202) >= 300, "202s before the kill")

        ns.stop(signal.SIGKILL)
        down_at = poster.count(202)
        wait_for(lambda: poster.count(503) >= 20, "503s while NATS is down")
        check(poster.retry_after_seen >= 20, "503 answers carry Retry-After")
        c = wait_condition(k, "demo", "False", "BackendUnavailable")
        check(ns.url in c["message"], "the reason names NATS: %r" % c)
        st, _, _ = k.request("GET", "/readyz")
        eq(st, 503, "/readyz while NATS is down")
        acked_while_down = poster.count(202) - down_at

        ns.start()
        up_503 = poster.count(503)
        wait_for(lambda: poster.count(202) >= down_at + 300,
                 "202s after NATS is back")
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
        print("posted %d: 202 %d, 503 %d (%d before the restart); 202 "
              "between the kill and Ready False: %d; stored %d, lost %d, "
              "duplicates %d" % (poster.posted(), poster.count(202),
                                 poster.count(503), up_503, acked_while_down,
                                 len(ids), len(lost), dups))
        check(not lost, "acknowledged events lost: %d, e.g. %r" % (
            len(lost), lost[:10]))
        eq(dups, 0, "events stored twice")
        others = set(poster.codes) - {202, 503}
        check(not others, "unexpected answers: %r" % poster.codes)
    except AssertionError:
        sys.stderr.write("--- knit log ---\n%s\n--- nats-server log ---\n"
                         "%s\n" % (k.log_text()[-6000:],
                                   ns.log_text()[-3000:]))
        raise
    finally:
        if poster:
            poster.stop()
        k.stop()
        ns.cleanup()
        tmp.cleanup()


if __name__ == "__main__":
    run(main)
