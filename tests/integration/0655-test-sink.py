#!/usr/bin/env python3
"""0655-test-sink: knit-test-sink (the scriptable subscriber other tests and
benchmarks use) answers the scripted codes in order, adds Retry-After,
serves the reply event on 200 and logs every request as a JSON line."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

build = os.environ.get("KNIT_BUILD_DIR", "build")
binary = os.path.join(build, "knit-test-sink")
if not os.path.exists(binary):
    print("knit-test-sink not built", file=sys.stderr)
    sys.exit(77)

tmp = tempfile.mkdtemp()
log = os.path.join(tmp, "log.jsonl")
reply = os.path.join(tmp, "reply.json")
with open(reply, "w") as f:
    json.dump({"specversion": "1.0", "id": "r1", "source": "/s", "type": "t"}, f)

proc = subprocess.Popen([binary, "--status", "503,200,202", "--retry-after", "7",
                         "--log", log, "--reply", reply,
                         "--port-file", os.path.join(tmp, "port")],
                        stdout=subprocess.PIPE, text=True)
try:
    port = int(proc.stdout.readline())
    assert open(os.path.join(tmp, "port")).read().strip() == str(port)
    url = "http://127.0.0.1:%d/hook" % port

    def post(body):
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "ce-specversion": "1.0", "ce-id": "e1", "ce-source": "/x",
            "ce-type": "t", "Content-Type": "text/plain"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    code, hdrs, _ = post(b"one")
    assert code == 503, code
    assert hdrs.get("Retry-After") == "7", hdrs
    code, hdrs, body = post(b"two")
    assert code == 200, code
    assert hdrs["Content-Type"] == "application/cloudevents+json"
    assert json.loads(body)["id"] == "r1"
    for _ in range(3):                       # the last code repeats
        code, _, _ = post(b"more")
        assert code == 202, code
finally:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0

lines = [json.loads(l) for l in open(log)]
assert len(lines) == 5, lines
assert [l["n"] for l in lines] == [0, 1, 2, 3, 4]
assert lines[0]["body"] == "one" and lines[1]["body"] == "two"
assert lines[0]["path"] == "/hook" and lines[0]["method"] == "POST"
assert lines[0]["headers"]["ce-id"] == "e1"
print("ok")
