"""Helpers for the CLI end-to-end tests (tests/e2e/055x-*.py).

Starts the real `knit serve` ($KNIT_BIN) on ephemeral loopback ports with a
temporary data directory, reads the bound ports from its startup log, and
runs `knit` client commands against it. Python 3 standard library only.
"""
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

KNIT = os.environ.get("KNIT_BIN", "")
STARTUP_TIMEOUT = 20.0


def need_binary():
    """Exit 77 (skipped) when the knit binary is not built."""
    if not KNIT or not os.access(KNIT, os.X_OK):
        print("skip: KNIT_BIN not built: %r" % KNIT)
        sys.exit(77)


def closed_port():
    """A loopback port with no listener (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def knit(*args, env=None, stdin=None, timeout=30, admin=None, cwd=None):
    """Runs `knit ARGS`; returns CompletedProcess with text stdout/stderr."""
    e = dict(os.environ)
    e.pop("KNIT_ADMIN", None)
    e.pop("KNIT_INGRESS", None)
    if admin is not None:
        e["KNIT_ADMIN"] = admin
    if env:
        e.update(env)
    return subprocess.run([KNIT] + list(args), input=stdin, env=e, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def check(cond, what, proc=None):
    """Fails the test with context when cond is false."""
    if cond:
        return
    msg = "FAIL: " + what
    if proc is not None:
        msg += "\n  rc=%r\n  stdout=%r\n  stderr=%r" % (
            proc.returncode, proc.stdout, proc.stderr)
    raise AssertionError(msg)


def ok(proc, what):
    check(proc.returncode == 0, what + " (exit 0)", proc)
    return proc


def fails(proc, what, rc=1):
    check(proc.returncode == rc, "%s (exit %d)" % (what, rc), proc)
    check(proc.stderr.strip() != "", what + " (a message on stderr)", proc)
    check(len(proc.stderr.strip().splitlines()) == 1,
          what + " (one line on stderr)", proc)
    return proc


class Daemon:
    """`knit serve` on 127.0.0.1:0 (ingress and admin) in a temp dir."""

    def __init__(self, config=None):
        self.dir = tempfile.mkdtemp(prefix="knit-cli-e2e-")
        self.log_path = os.path.join(self.dir, "serve.log")
        self.config = config
        self.proc = None
        self.admin = None
        self.ingress = None

    def start(self):
        args = [KNIT, "serve", "--data", os.path.join(self.dir, "data"),
                "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]
        if self.config:
            args += ["--config", self.config]
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(args, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                text = f.read()
            a = re.search(r"admin listening on ([0-9.]+:\d+)", text)
            i = re.search(r"ingress listening on ([0-9.]+:\d+)", text)
            if a and i and self._healthy(a.group(1)):
                self.admin, self.ingress = a.group(1), i.group(1)
                return self
            if self.proc.poll() is not None:
                raise AssertionError("knit serve exited with %r:\n%s" % (
                    self.proc.returncode, text))
            time.sleep(0.05)
        raise AssertionError("knit serve did not start:\n" + self.logtext())

    def _healthy(self, addr):
        host, port = addr.rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        except OSError:
            return False

    def logtext(self):
        with open(self.log_path) as f:
            return f.read()

    def knit(self, *args, **kw):
        kw.setdefault("admin", self.admin)
        return knit(*args, **kw)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] is not None and self.proc:
            sys.stderr.write("--- knit serve log ---\n" + self.logtext())
        self.cleanup()
        return False


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def wait_ready(d, name, ns="default", timeout=15.0):
    """Polls `knit get broker NAME -o json` until its Ready condition is
    True (the channel is open); returns the resource."""
    deadline = time.monotonic() + timeout
    while True:
        p = ok(d.knit("get", "broker", name, "-n", ns, "-o", "json"),
               "get -o json")
        res = json.loads(p.stdout)
        conds = res.get("status", {}).get("conditions", [])
        ready = [c for c in conds if c.get("type") == "Ready"]
        if ready and ready[0].get("status") == "True":
            return res
        check(time.monotonic() < deadline, "broker %s/%s Ready" % (ns, name),
              p)
        time.sleep(0.1)
