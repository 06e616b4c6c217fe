"""0552-cli-send-tail: `knit send` and `knit tail` against a real
`knit serve`.

send in binary and structured mode, with JSON, text and binary
(--data-file) data, extensions and subject; the ingress address from the
admin API, from KNIT_INGRESS and from --url; what tail prints (-o json and
the one-line format), tail --filter (CESQL), tail from now vs
--from-start, unknown brokers on send and tail, Ctrl-C ends tail with exit
0, and tail's exit when the daemon stops.
"""
import base64
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import (CliTail, Daemon, check, cli_wait_ready,  # noqa: E402
                      fails, knit_bin, ok, write_file)

BROKER = """apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: demo
"""


def send(d, *args, **kw):
    return d.cli("send", "--broker", "default/demo", "--type",
                  "com.example.a", "--source", "/test", *args, **kw)


def test_send(d, tmp):
    p = ok(send(d, "--id", "e1", "--data", '{"n": 1}', "--ext",
                "region=eu", "--subject", "s1"), "send binary JSON")
    check(p.stdout.startswith("event e1 sent to http://") and
          p.stdout.endswith("/default/demo: 202 Accepted\n"),
          "send prints the status", p)
    ok(send(d, "--id", "e2", "--data", "hello world", "--mode", "structured"),
       "send structured text")
    blob = write_file(os.path.join(tmp, "blob.bin"), "")
    with open(blob, "wb") as f:
        f.write(bytes([0, 1, 2, 255]))
    ok(send(d, "--id", "e3", "--data-file", blob), "send --data-file")
    ok(send(d, "--id", "e4", env={"KNIT_INGRESS": d.ingress_addr}),
       "send via KNIT_INGRESS")
    ok(send(d, "--id", "e5", "--url",
            "http://%s/default/demo" % d.ingress_addr), "send via --url")


def test_tail_json(d):
    t = CliTail(d, "--from-start", "-o", "json")
    try:
        evs = [json.loads(x) for x in t.read(5, what="tail -o json")]
    finally:
        rc, err = t.interrupt()
    check(rc == 0 and err == "", "Ctrl-C: exit 0, nothing on stderr "
          "(rc=%r err=%r)" % (rc, err))
    check([e["id"] for e in evs] == ["e1", "e2", "e3", "e4", "e5"],
          "all events in order: %r" % evs)
    e1, e2, e3 = evs[0], evs[1], evs[2]
    check(e1["type"] == "com.example.a" and e1["source"] == "/test" and
          e1["subject"] == "s1" and e1["region"] == "eu" and
          e1["data"] == {"n": 1} and
          e1["datacontenttype"] == "application/json", "e1: %r" % e1)
    check("knativearrivaltime" in e1 and "time" in e1, "e1 times: %r" % e1)
    check(e2["data"] == "hello world" and
          e2["datacontenttype"].startswith("text/plain"), "e2: %r" % e2)
    check(base64.b64decode(e3["data_base64"]) == bytes([0, 1, 2, 255]) and
          e3["datacontenttype"] == "application/octet-stream", "e3: %r" % e3)


def test_tail_text(d):
    t = CliTail(d, "--from-start")
    try:
        lines = t.read(5, what="tail")
    finally:
        rc, _ = t.interrupt()
    check(rc == 0, "Ctrl-C exit 0")
    first = lines[0].split("  ")
    check(first[0][:4].isdigit() and first[0].endswith("Z"),
          "starts with the time: %r" % lines[0])
    check(first[1:] == ["type=com.example.a", "source=/test", "id=e1",
                        "subject=s1", 'data={"n":1}'],
          "one-line format: %r" % lines[0])
    check(lines[1].endswith("id=e2  data=hello world"), repr(lines[1]))
    check(lines[2].endswith("id=e3  data=<4 bytes>"), repr(lines[2]))


def test_tail_filter(d):
    """--filter (CESQL) drops what it does not match."""
    t = CliTail(d, "--from-start", "-o", "json", "--filter",
             "id IN ('e1', 'marker') AND source = '/test'")
    try:
        first = json.loads(t.read(1, what="filtered tail")[0])
        check(first["id"] == "e1", "e1 matches: %r" % first)
        ok(send(d, "--id", "marker"), "send marker")
        second = json.loads(t.read(2, what="filtered tail")[1])
        check(second["id"] == "marker", "e2..e5 skipped: %r" % t.lines)
    finally:
        rc, err = t.interrupt()
    check(rc == 0 and err == "", "exit 0, quiet: %r" % err)


def test_tail_from_now(d):
    """Without --from-start, history is not shown; new events are."""
    t = CliTail(d, "-o", "json")
    try:
        deadline = time.monotonic() + 15
        i = 0
        while not t.lines:
            check(time.monotonic() < deadline, "tail shows new events")
            ok(send(d, "--id", "new-%d" % i), "send new")
            i += 1
            t.poll(0.2)
        check(json.loads(t.lines[0])["id"].startswith("new-"),
              "first line is a new event: %r" % t.lines)
    finally:
        rc, _ = t.interrupt()
    check(rc == 0, "exit 0")


def test_unknown_broker(d):
    p = fails(d.cli("send", "--broker", "default/nope", "--type", "t",
                     "--source", "/s"), "send, unknown broker")
    check("nope" in p.stderr, "names the broker", p)
    p = fails(d.cli("send", "--broker", "default/nope", "--type", "t",
                     "--source", "/s", env={"KNIT_INGRESS": d.ingress_addr}),
              "send to the ingress, unknown broker")
    check("404 Not Found" in p.stderr and "/default/nope" in p.stderr,
          "the ingress's 404", p)
    p = fails(d.cli("tail", "default/nope"), "tail, unknown broker")
    check("nope" in p.stderr, "names the broker", p)


def test_daemon_stops(d):
    t = CliTail(d, "-o", "json")
    try:
        # Make sure the stream is open before stopping the daemon.
        deadline = time.monotonic() + 15
        i = 0
        while not t.lines:
            check(time.monotonic() < deadline, "tail is streaming")
            ok(send(d, "--id", "last-%d" % i), "send")
            i += 1
            t.poll(0.2)
        d.stop()
        t.proc.wait(timeout=15)
        err = t.proc.stderr.read()
        check(t.proc.returncode == 1 and len(err.strip().splitlines()) == 1,
              "tail exits 1 with one line when the daemon stops: %r %r" %
              (t.proc.returncode, err))
    finally:
        t.kill()


def main():
    knit_bin()
    with Daemon() as d:
        tmp = os.path.join(d.dir, "files")
        path = write_file(os.path.join(tmp, "broker.yaml"), BROKER)
        ok(d.cli("apply", "-f", path), "apply")
        cli_wait_ready(d, "demo")
        test_send(d, tmp)
        test_tail_json(d)
        test_tail_text(d)
        test_tail_filter(d)
        test_tail_from_now(d)
        test_unknown_broker(d)
        test_daemon_stops(d)
    print("ok")


if __name__ == "__main__":
    main()
