"""The scale-out system test shared by 0900 (NATS) and 0901 (Kafka):
three `knit serve` processes with the same config (separate data dirs,
loopback ports) and one broker on a shared backend; events posted
round-robin across the three ingresses; one knit process SIGKILLed in the
middle; every acknowledged event must reach every matching trigger at
least once. Duplicates are counted and printed.

The event count is $KNIT_SCALEOUT_EVENTS (default 10,000 so `make test`
stays short on a 2-core machine; the full run of issue 6 is 50,000).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import (Knit, Poster, TempDir, TestSink, check,  # noqa: E402
                      docs, eq, trigger_yaml, wait_condition)

DEFAULT_EVENTS = 10000
INSTANCES = 3


def event_count():
    try:
        return max(100, int(os.environ.get("KNIT_SCALEOUT_EVENTS",
                                           DEFAULT_EVENTS)))
    except ValueError:
        return DEFAULT_EVENTS


class SinkLog:
    """Incremental reader of a knit-test-sink request log: ce-id counts."""

    def __init__(self, sink):
        self.sink = sink
        self.pos = 0
        self.counts = {}
        self.total = 0
        self.partial = b""

    def poll(self):
        try:
            with open(self.sink.log_path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return
        self.pos += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for ln in lines:
            if not ln.strip():
                continue
            eid = json.loads(ln)["headers"].get("ce-id")
            self.counts[eid] = self.counts.get(eid, 0) + 1
            self.total += 1

    def duplicates(self):
        return {k: v for k, v in self.counts.items() if v > 1}


def start_instances(tmp, yaml_text, n=INSTANCES):
    cfg = tmp.sub("config")
    with open(os.path.join(cfg, "resources.yaml"), "w") as f:
        f.write(yaml_text)
    ks = []
    for i in range(n):
        k = Knit(tmp.sub("data%d" % i), config_dir=cfg)
        k.start(wait_ready=False)
        ks.append(k)
    return ks


def run_scaleout(label, backend_docs, broker="b", settle_timeout=120.0):
    """Runs the scenario against `backend_docs` (YAML of a broker named
    `broker` and its ConfigMap). Returns a summary dict."""
    total = event_count()
    tmp = TempDir()
    all_sink = TestSink(tmp.path, "all", extra=["--threads", "4"])
    odd_sink = TestSink(tmp.path, "odd", extra=["--threads", "2"])
    ks = []
    poster = None
    try:
        yaml = docs(backend_docs,
                    trigger_yaml("all", broker, all_sink.url),
                    trigger_yaml("odd", broker, odd_sink.url,
                                 attributes={"type": "e2e.odd"}))
        ks = start_instances(tmp, yaml)
        for k in ks:
            wait_condition(k, broker, "True", timeout=60)
            k.wait_ready(timeout=60)
        ports = [k.ingress for k in ks]
        poster = Poster(ports, "/default/" + broker, label, threads=6,
                        retry=True, max_wait=0.1,
                        etype=lambda n: "e2e.odd" if n % 2 else "e2e.even")
        t0 = time.monotonic()
        poster.start(limit=total)
        deadline = time.monotonic() + 120
        while poster.posted() < total // 2:
            check(time.monotonic() < deadline, "posting stalled at %d" %
                  poster.posted())
            time.sleep(0.01)
        victim = ks[1]
        victim.kill()  # SIGKILL in the middle of the stream
        killed_at = poster.posted()
        poster.ports.remove(victim.ingress)
        poster.join(timeout=300)
        post_s = time.monotonic() - t0
        check(poster.posted() >= total, "all events posted")
        acked = set(poster.acked)
        odd_acked = {e for e in acked if int(e.rsplit("-", 1)[1]) % 2}

        logs = (SinkLog(all_sink), SinkLog(odd_sink))
        deadline = time.monotonic() + settle_timeout
        while True:
            for lg in logs:
                lg.poll()
            missing_all = acked - logs[0].counts.keys()
            missing_odd = odd_acked - logs[1].counts.keys()
            if not missing_all and not missing_odd:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        done_s = time.monotonic() - t0
        time.sleep(1.0)  # stragglers (redeliveries) still count as dups
        for lg in logs:
            lg.poll()
        missing_all = acked - logs[0].counts.keys()
        missing_odd = odd_acked - logs[1].counts.keys()
        # events delivered to the wrong trigger
        wrong = [e for e in logs[1].counts
                 if e and not int(e.rsplit("-", 1)[1]) % 2]
        summary = {
            "backend": label, "events": total, "posted": poster.posted(),
            "acked": len(acked), "codes": dict(poster.codes),
            "killed_after": killed_at, "post_s": round(post_s, 1),
            "delivered_s": round(done_s, 1),
            "all": {"deliveries": logs[0].total,
                    "distinct": len(logs[0].counts),
                    "missing": len(missing_all),
                    "duplicated_events": len(logs[0].duplicates()),
                    "extra_deliveries": logs[0].total - len(logs[0].counts)},
            "odd": {"deliveries": logs[1].total,
                    "distinct": len(logs[1].counts),
                    "missing": len(missing_odd),
                    "duplicated_events": len(logs[1].duplicates()),
                    "extra_deliveries": logs[1].total - len(logs[1].counts)},
        }
        print(json.dumps(summary, indent=1, sort_keys=True))
        for name, lg in (("all", logs[0]), ("odd", logs[1])):
            d = lg.duplicates()
            if d:
                sample = sorted(d.items())[:20]
                print("duplicates at trigger %s (%d events; first %d): %s" %
                      (name, len(d), len(sample), ", ".join(
                          "%s×%d" % kv for kv in sample)))
        check(not missing_all, "%s: %d acknowledged events never reached "
              "trigger 'all', e.g. %r" % (label, len(missing_all),
                                          sorted(missing_all)[:10]))
        check(not missing_odd, "%s: %d acknowledged odd events never "
              "reached trigger 'odd', e.g. %r" % (label, len(missing_odd),
                                                  sorted(missing_odd)[:10]))
        eq(wrong, [], "%s: even events delivered to trigger 'odd'" % label)
        for k in ks:
            if k is not victim:
                eq(k.stop(), 0, "clean stop of a surviving knit")
        return summary
    except AssertionError:
        for i, k in enumerate(ks):
            sys.stderr.write("--- knit %d log (tail) ---\n%s\n" % (
                i, k.log_text()[-3000:]))
        raise
    finally:
        if poster:
            poster.stop()
        for k in ks:
            if k.proc:
                k.stop()
        all_sink.stop()
        odd_sink.stop()
        if os.environ.get("KNIT_E2E_KEEP"):
            print("kept %s (KNIT_E2E_KEEP)" % tmp.path)
        else:
            tmp.cleanup()
