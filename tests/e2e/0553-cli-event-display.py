"""0553-cli-event-display: `knit event-display` end to end.

Starts it on an ephemeral port, sends events to it with `knit send --url`
(binary and structured mode), checks what it prints (indented JSON
format, one document per event), that Ctrl-C stops it with exit 0, and
that a bad --listen is one clear line and exit 1.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import check, fails, knit, knit_bin, ok  # noqa: E402


def start_display(errpath):
    err = open(errpath, "w+")
    proc = subprocess.Popen([knit_bin(), "event-display", "--listen",
                             "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=err, text=True)
    deadline = time.monotonic() + 15
    while True:
        with open(errpath) as f:
            m = re.search(r"\(port (\d+)\)", f.read())
        if m:
            return proc, err, int(m.group(1))
        check(proc.poll() is None, "event-display is running")
        check(time.monotonic() < deadline, "event-display announces its port")
        time.sleep(0.05)


def main():
    knit_bin()
    errpath = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                           "knit-0553-%d.err" % os.getpid())
    proc, err, port = start_display(errpath)
    try:
        url = "http://127.0.0.1:%d/" % port
        p = ok(knit("send", "--url", url, "--type", "com.example.a",
                    "--source", "/test", "--id", "d1", "--data", '{"n": 1}',
                    "--ext", "region=eu"), "send binary")
        check(p.stdout.endswith(": 202 Accepted\n"), "202 from the display",
              p)
        ok(knit("send", "--url", url, "--type", "com.example.b", "--source",
                "/test", "--id", "d2", "--data", "hi", "--mode",
                "structured"), "send structured")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
        check(proc.returncode == 0, "Ctrl-C: exit 0 (rc=%r)" %
              proc.returncode)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()
        os.unlink(errpath)
    docs = [json.loads(d) for d in out.split("\n\n") if d.strip()]
    check(len(docs) == 2, "two events printed: %r" % out)
    check(docs[0]["id"] == "d1" and docs[0]["data"] == {"n": 1} and
          docs[0]["region"] == "eu", "first event: %r" % docs[0])
    check(docs[1]["id"] == "d2" and docs[1]["data"] == "hi",
          "second event: %r" % docs[1])
    check("\n  \"specversion\": \"1.0\"," in out, "indented JSON: %r" % out)

    p = fails(knit("event-display", "--listen", "not-an-address"),
              "bad --listen")
    check("not-an-address" in p.stderr, "names the address", p)
    print("ok")


if __name__ == "__main__":
    main()
