"""Helpers for the broker e2e tests (05xx): start the real `knit serve`
($KNIT_BIN) on free loopback ports with a temporary data directory, parse
the bound ports from its log, and talk HTTP to the ingress and the admin
API (including the streaming tail). Python 3 standard library only."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77


def knit_bin():
    path = os.environ.get("KNIT_BIN", "")
    if not path or not os.access(path, os.X_OK):
        print("SKIP: knit binary not built (KNIT_BIN=%r)" % path)
        sys.exit(SKIP)
    return path


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


class Knit:
    """One knit serve process."""

    def __init__(self, data_dir, config_dir=None, extra=(), env=None,
                 preexec=None):
        self.data_dir = data_dir
        self.config_dir = config_dir
        self.extra = list(extra)
        self.env = env
        self.preexec = preexec
        self.proc = None
        self.log_path = None
        self.ingress = None
        self.admin = None

    def start(self, wait_ready=True, expect_exit=False):
        fd, self.log_path = tempfile.mkstemp(prefix="knit-e2e-",
                                             suffix=".log")
        os.close(fd)
        args = [knit_bin(), "serve", "--data", self.data_dir,
                "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]
        if self.config_dir:
            args += ["--config", self.config_dir]
        args += self.extra
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     preexec_fn=self.preexec)
        if expect_exit:
            self.proc.wait(timeout=20)
            return self.proc.returncode
        deadline = time.time() + 20
        while time.time() < deadline:
            text = self.log_text()
            m1 = re.search(r"ingress listening on [^:\s]+:(\d+)", text)
            m2 = re.search(r"admin listening on [^:\s]+:(\d+)", text)
            if m1 and m2:
                self.ingress = int(m1.group(1))
                self.admin = int(m2.group(1))
                break
            if self.proc.poll() is not None:
                raise AssertionError("knit exited (%d):\n%s" %
                                     (self.proc.returncode, text))
            time.sleep(0.02)
        else:
            raise AssertionError("knit did not log its ports:\n" +
                                 self.log_text())
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                st, _, _ = self.request("GET", "/readyz")
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("knit not ready:\n" + self.log_text())

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("knit did not stop:\n" + self.log_text())
        self.log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    # ---------------------------------------------------------- HTTP
    def request(self, method, path, body=None, headers=None, port=None,
                timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.ingress,
                                          timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def post(self, path, body=b"", headers=None):
        return self.request("POST", path, body, headers)

    def admin_request(self, method, path, body=None, headers=None):
        st, hdrs, data = self.request(method, path, body, headers,
                                      port=self.admin)
        return st, hdrs, data

    def admin_json(self, method, path, body=None, headers=None):
        st, _, data = self.admin_request(method, path, body, headers)
        return st, json.loads(data) if data else None

    def apply(self, yaml_text, name="test.yaml"):
        return self.admin_json("POST", "/v1/apply?file=" + name,
                               yaml_text.encode())

    def tail(self, ns, name, frm="start", count=None, idle=0.7,
             timeout=20):
        """Events of a broker via /v1/tail: reads until `count` events
        arrived, or (count None) until no line came for `idle` seconds."""
        s = socket.create_connection(("127.0.0.1", self.admin), timeout=5)
        s.sendall(("GET /v1/tail/%s/%s?from=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                   % (ns, name, frm)).encode())
        buf = b""
        deadline = time.time() + timeout
        s.settimeout(idle)
        events = []
        head_done = False
        body = b""
        try:
            while time.time() < deadline:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    if count is None:
                        break
                    continue
                if not chunk:
                    break
                buf += chunk
                if not head_done:
                    if b"\r\n\r\n" not in buf:
                        continue
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    status = int(head.split()[1])
                    if status != 200:
                        raise AssertionError("tail: HTTP %d" % status)
                    head_done = True
                body, buf = decode_chunks(body, buf)
                while b"\n" in body:
                    line, body = body.split(b"\n", 1)
                    if line.strip():
                        events.append(json.loads(line))
                if count is not None and len(events) >= count:
                    break
        finally:
            s.close()
        return events

    def metrics(self):
        st, _, data = self.admin_request("GET", "/metrics")
        eq(st, 200, "GET /metrics")
        return data.decode()


def decode_chunks(body, buf):
    """Moves complete HTTP/1.1 chunks from buf to body."""
    while True:
        if b"\r\n" not in buf:
            return body, buf
        size_line, rest = buf.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if len(rest) < size + 2:
            return body, buf
        body += rest[:size]
        buf = rest[size + 2:]


def binary_headers(id_, type_="test.type", source="/e2e", extra=None,
                   ctype="text/plain"):
    h = {"ce-specversion": "1.0", "ce-id": id_, "ce-type": type_,
         "ce-source": source}
    if ctype:
        h["content-type"] = ctype
    h.update(extra or {})
    return h


class TempDir:
    def __init__(self, prefix="knit-e2e-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def sub(self, *parts):
        p = os.path.join(self.path, *parts)
        os.makedirs(p, exist_ok=True)
        return p

    def write(self, rel, text):
        p = os.path.join(self.path, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        return p

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def broker_yaml(name, annotations=None, ns="default"):
    text = ("apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
            "metadata:\n  name: %s\n  namespace: %s\n" % (name, ns))
    if annotations:
        text += "  annotations:\n"
        for k, v in annotations.items():
            text += "    %s: %s\n" % (k, json.dumps(v))
    return text


def run(main):
    """Runs main(), printing the failure and exiting 1 on error."""
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
    print("ok")
