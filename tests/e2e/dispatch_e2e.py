"""Helpers for the delivery e2e tests (066x-069x): subscribers on loopback
(the C knit-test-sink, and a scriptable Python one), trigger YAML, and
waiting for conditions. Builds on broker_e2e (knit serve, HTTP helpers).
Python 3 standard library only."""

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_e2e import (SKIP, Knit, TempDir, binary_headers,  # noqa: F401
                        broker_yaml, check, eq, knit_bin, run)


def wait_for(pred, what, timeout=20.0, interval=0.02):
    """Polls pred() until it returns a true value (returned)."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def trigger_yaml(name, broker, uri=None, ref_broker=None, ref_uri=None,
                 attributes=None, filters=None, delivery=None,
                 annotations=None, ns="default"):
    spec = {"broker": broker}
    if attributes is not None:
        spec["filter"] = {"attributes": attributes}
    if filters is not None:
        spec["filters"] = filters
    sub = {}
    if uri:
        sub["uri"] = uri
    if ref_broker:
        sub["ref"] = {"apiVersion": "eventing.knative.dev/v1",
                      "kind": "Broker", "name": ref_broker}
        if ref_uri:
            sub["uri"] = ref_uri
    spec["subscriber"] = sub
    if delivery is not None:
        spec["delivery"] = delivery
    meta = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    doc = {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
           "metadata": meta, "spec": spec}
    # JSON is YAML: no quoting surprises.
    return json.dumps(doc) + "\n"


def docs(*texts):
    return "---\n".join(texts)


class TestSink:
    """The C subscriber (build/knit-test-sink) with its request log."""

    def __init__(self, tmp, name, status=None, retry_after=None,
                 delay_ms=None, reply=None, extra=()):
        build = os.environ.get("KNIT_BUILD_DIR", "")
        self.bin = os.path.join(build, "knit-test-sink")
        if not os.access(self.bin, os.X_OK):
            print("SKIP: knit-test-sink not built")
            sys.exit(SKIP)
        self.log_path = os.path.join(tmp, name + ".jsonl")
        port_file = os.path.join(tmp, name + ".port")
        args = [self.bin, "--listen", "127.0.0.1:0", "--port-file",
                port_file, "--log", self.log_path]
        if status:
            args += ["--status", ",".join(str(s) for s in status)]
        if retry_after is not None:
            args += ["--retry-after", str(retry_after)]
        if delay_ms:
            args += ["--delay-ms", str(delay_ms)]
        if reply:
            rp = os.path.join(tmp, name + ".reply.json")
            with open(rp, "w") as f:
                f.write(json.dumps(reply))
            args += ["--reply", rp]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        text = wait_for(lambda: os.path.exists(port_file) and
                        open(port_file).read().strip(), "test sink port")
        self.port = int(text)
        self.url = "http://127.0.0.1:%d/" % self.port

    def requests(self):
        if not os.path.exists(self.log_path):
            return []
        out = []
        with open(self.log_path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
        return out

    def ids(self):
        return [r["headers"].get("ce-id") for r in self.requests()]

    def wait_count(self, n, timeout=20.0):
        return wait_for(lambda: len(self.requests()) >= n and
                        self.requests(), "%d requests at %s" % (n, self.url),
                        timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


class PySink:
    """A scriptable subscriber: behave(request) → (status, headers, body,
    delay_s). Records every request as {"t": monotonic, "headers",
    "body", "path"} (lower-case header names)."""

    def __init__(self, behave=None):
        self.behave = behave or (lambda req: (202, {}, b"", 0))
        self.lock = threading.Lock()
        self.reqs = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                req = {"t": time.monotonic(), "path": self.path,
                       "headers": {k.lower(): v for k, v in
                                   self.headers.items()},
                       "body": body}
                with sink.lock:
                    sink.reqs.append(req)
                status, hdrs, rbody, delay = sink.behave(req)
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                for k, v in (hdrs or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(rbody)))
                self.end_headers()
                if rbody:
                    self.wfile.write(rbody)

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 1024  # the dispatcher opens many at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def requests(self):
        with self.lock:
            return list(self.reqs)

    def ids(self):
        return [r["headers"].get("ce-id") for r in self.requests()]

    def wait_count(self, n, timeout=20.0):
        return wait_for(lambda: len(self.requests()) >= n and
                        self.requests(), "%d requests at %s" % (n, self.url),
                        timeout)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def send(knit, id_, type_="test.type", source="/e2e", data=b"x",
         extra=None, broker="default/b"):
    st, _, body = knit.post("/" + broker, data,
                            binary_headers(id_, type_, source, extra))
    eq(st, 202, "POST event %s (%r)" % (id_, body))


def trigger_status(knit, name, ns="default"):
    st, obj = knit.admin_json("GET", "/v1/resources/triggers/%s/%s" %
                              (ns, name))
    eq(st, 200, "GET trigger %s" % name)
    return obj


def condition(obj, type_):
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c
    return None


def metric(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if "{" in head:
            mname, _, rest = head.partition("{")
            lab = dict(kv.split("=", 1) for kv in
                       rest.rstrip("}").split(",") if kv)
            lab = {k: v.strip('"') for k, v in lab.items()}
        else:
            mname, lab = head, {}
        if mname != name:
            continue
        if all(lab.get(k) == str(v) for k, v in labels.items()):
            total += float(value)
            found = True
    return total if found else None


def start_knit(tmp, yaml_text, extra=()):
    cfg = tmp.sub("config")
    with open(os.path.join(cfg, "resources.yaml"), "w") as f:
        f.write(yaml_text)
    k = Knit(tmp.sub("data"), config_dir=cfg, extra=extra)
    k.start()
    return k


def knit_cli(knit, *args, timeout=30):
    env = dict(os.environ)
    env["KNIT_ADMIN"] = "127.0.0.1:%d" % knit.admin
    p = subprocess.run([knit_bin()] + list(args), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def tmpfile(prefix):
    fd, path = tempfile.mkstemp(prefix=prefix)
    os.close(fd)
    return path
