"""The quick start (`make run`): examples/quickstart/ applied by knit serve
and the event display as the trigger's subscriber; `knit send` to
default/demo makes the display print the event (indented JSON with the
data, the extension given to send, and knativearrivaltime); an event
whose type does not start with demo. is not shown. The same YAML files
are used, with the display's port replaced by a free one. Also checks
that the Makefile's run target starts the display."""

import json
import os
import re
import signal
import subprocess

from knit_e2e import (Knit, TempDir, check, eq, knit_bin, run,  # noqa: E402
                      wait_for)


def main():
    src = os.environ.get("KNIT_SOURCE_DIR", "")
    qs = os.path.join(src, "examples", "quickstart")
    with open(os.path.join(src, "Makefile")) as f:
        mk = f.read()
    check("event-display --listen 127.0.0.1:8081" in mk,
          "make run starts the event display")
    tmp = TempDir()
    errpath = os.path.join(tmp.path, "display.err")
    outpath = os.path.join(tmp.path, "display.out")
    err, out = open(errpath, "w"), open(outpath, "w")
    display = subprocess.Popen([knit_bin(), "event-display", "--listen",
                                "127.0.0.1:0"], stdout=out, stderr=err)
    knit = None
    try:
        port = int(wait_for(lambda: re.search(
            r"\(port (\d+)\)", open(errpath).read()), "display port")
            .group(1))
        cfg = tmp.sub("config")
        for name in sorted(os.listdir(qs)):
            if not name.endswith(".yaml"):
                continue
            with open(os.path.join(qs, name)) as f:
                text = f.read()
            text = text.replace("http://127.0.0.1:8081/",
                                "http://127.0.0.1:%d/" % port)
            with open(os.path.join(cfg, name), "w") as f:
                f.write(text)
        check(os.path.exists(os.path.join(cfg, "trigger.yaml")),
              "the quick start has a trigger")
        knit = Knit(tmp.sub("data"), config_dir=cfg).start()
        env = dict(os.environ, KNIT_ADMIN="127.0.0.1:%d" % knit.admin,
                   KNIT_INGRESS="http://127.0.0.1:%d" % knit.ingress)
        p = subprocess.run([knit_bin(), "send", "--broker", "default/demo",
                            "--type", "demo.hello", "--source",
                            "/quickstart", "--id", "qs-1", "--data",
                            '{"hello":"world"}', "--ext", "region=eu"],
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        eq(p.returncode, 0, "knit send: " + p.stderr)
        p = subprocess.run([knit_bin(), "send", "--broker", "default/demo",
                            "--type", "other.thing", "--source", "/qs",
                            "--id", "qs-2"], env=env, timeout=30,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        eq(p.returncode, 0, "knit send other")
        p = subprocess.run([knit_bin(), "send", "--broker", "default/demo",
                            "--type", "demo.bye", "--source", "/qs",
                            "--id", "qs-3"], env=env, timeout=30,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        eq(p.returncode, 0, "knit send bye")
        text = wait_for(lambda: (lambda t: t if '"qs-3"' in t else None)(
            open(outpath).read()), "the display prints the events")
        docs = [json.loads(d) for d in text.strip().split("\n\n") if d]
        eq([d["id"] for d in docs], ["qs-1", "qs-3"], "displayed events")
        first = docs[0]
        eq(first["data"], {"hello": "world"}, "data")
        eq(first["region"], "eu", "extension")
        eq(first["type"], "demo.hello", "type")
        check("knativearrivaltime" in first, "arrival time")
        check("knativebrokerttl" not in first, "no TTL at the subscriber")
        p = subprocess.run([knit_bin(), "get", "triggers"], env=env,
                           stdout=subprocess.PIPE, text=True, timeout=30)
        check("display" in p.stdout and "True" in p.stdout, p.stdout)
        eq(knit.stop(), 0, "clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        display.send_signal(signal.SIGINT)
        try:
            display.wait(timeout=10)
        except subprocess.TimeoutExpired:
            display.kill()
        err.close()
        out.close()
        tmp.cleanup()


run(main)
