"""The harness every e2e test imports (tests/e2e/*.py, and the Python
integration tests): the real `knit serve` ($KNIT_BIN) on free loopback
ports with a temporary data directory (ports read from its log), HTTP to
the ingress and the admin API (including the streaming tail), `knit`
client commands, resource YAML, waiting for conditions, subscribers on
loopback (the C knit-test-sink and a scriptable Python one) and a
keep-alive load poster. NATS and Kafka pieces are in backends_e2e.py.
Python 3 standard library only."""

import contextlib
import http.client
import http.server
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77


# ------------------------------------------------------------- basics

def thread_stacks(pid):
    """Every thread's stack of a hung process (gdb, when installed), for
    the failure message; "" without gdb."""
    gdb = shutil.which("gdb")
    if not gdb:
        return ""
    try:
        p = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx", "-ex",
                            "thread apply all bt"], capture_output=True,
                           text=True, timeout=60)
        return "\n--- thread stacks (gdb) ---\n" + p.stdout[-20000:]
    except (OSError, subprocess.SubprocessError) as e:
        return "\n(gdb failed: %s)" % e


def skip(msg):
    """Exits 77 (skipped) with a loud message."""
    line = "*" * 72
    print("%s\nSKIP: %s\n%s" % (line, msg, line))
    sys.stdout.flush()
    sys.exit(SKIP)


def knit_bin():
    """$KNIT_BIN; skips the test when it is not built."""
    path = os.environ.get("KNIT_BIN", "")
    if not path or not os.access(path, os.X_OK):
        print("SKIP: knit binary not built (KNIT_BIN=%r)" % path)
        sys.exit(SKIP)
    return path


def check(cond, what, proc=None):
    """Fails the test when cond is false; with the exit status and output
    of a finished `proc` (a CompletedProcess) in the message."""
    if cond:
        return
    if proc is not None:
        what += "\n  rc=%r\n  stdout=%r\n  stderr=%r" % (
            proc.returncode, proc.stdout, proc.stderr)
    raise AssertionError(what)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def run(main):
    """Runs main(), printing the failure and exiting 1 on error."""
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
    print("ok")


def wait_for(pred, what, timeout=20.0, interval=0.02):
    """Polls pred() until it returns a true value (returned)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def free_port():
    """A loopback port with no listener (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0, up=True):
    """Waits until 127.0.0.1:port accepts (up) or refuses (not up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return True
        except OSError:
            if not up:
                return True
        time.sleep(0.02)
    return False


def write_file(path, text):
    """Writes text to path, creating its directory; returns path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


class TempDir:
    def __init__(self, prefix="knit-e2e-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def sub(self, *parts):
        p = os.path.join(self.path, *parts)
        os.makedirs(p, exist_ok=True)
        return p

    def write(self, rel, text):
        return write_file(os.path.join(self.path, rel), text)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


# ---------------------------------------------------------- knit serve

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

    @property
    def admin_addr(self):
        return "127.0.0.1:%d" % self.admin

    @property
    def ingress_addr(self):
        return "127.0.0.1:%d" % self.ingress

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
            stacks = thread_stacks(self.proc.pid)
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("knit did not stop:\n" + self.log_text() +
                                 stacks)
        self.log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def cli(self, *args, **kw):
        """`knit ARGS` against this daemon's admin API (see knit())."""
        kw.setdefault("admin", self.admin_addr)
        return knit(*args, **kw)

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
        events = []
        stream = tail_events(self.admin, ns, name, frm, timeout, idle)
        with contextlib.closing(stream):
            for ev in stream:
                if ev is None:
                    if count is None:
                        break
                    continue
                events.append(ev)
                if count is not None and len(events) >= count:
                    break
        return events

    def metrics(self):
        st, _, data = self.admin_request("GET", "/metrics")
        eq(st, 200, "GET /metrics")
        return data.decode()


class Daemon(Knit):
    """A Knit in its own temporary directory (`dir`), as a context
    manager: started on entry; on exit stopped and the directory removed,
    with the daemon's log printed when the block failed."""

    def __init__(self, config=None):
        self.dir = tempfile.mkdtemp(prefix="knit-cli-e2e-")
        super().__init__(os.path.join(self.dir, "data"), config_dir=config)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] is not None and self.proc:
            sys.stderr.write("--- knit serve log ---\n" + self.log_text())
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False


def start_knit(tmp, yaml_text, extra=()):
    """A started Knit with yaml_text as its config directory (in the
    TempDir tmp)."""
    tmp.write("config/resources.yaml", yaml_text)
    k = Knit(tmp.sub("data"), config_dir=tmp.sub("config"), extra=extra)
    k.start()
    return k


# ----------------------------------------------------------- knit CLI

def knit(*args, env=None, stdin=None, timeout=30, admin=None, cwd=None):
    """Runs `knit ARGS` (KNIT_ADMIN = admin, KNIT_INGRESS unset unless env
    sets it); returns the CompletedProcess with text stdout/stderr."""
    e = dict(os.environ)
    e.pop("KNIT_ADMIN", None)
    e.pop("KNIT_INGRESS", None)
    if admin is not None:
        e["KNIT_ADMIN"] = admin
    if env:
        e.update(env)
    return subprocess.run([knit_bin()] + list(args), input=stdin, env=e,
                          cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def ok(proc, what):
    check(proc.returncode == 0, what + " (exit 0)", proc)
    return proc


def fails(proc, what, rc=1):
    check(proc.returncode == rc, "%s (exit %d)" % (what, rc), proc)
    check(proc.stderr.strip() != "", what + " (a message on stderr)", proc)
    check(len(proc.stderr.strip().splitlines()) == 1,
          what + " (one line on stderr)", proc)
    return proc


def knit_cli(k, *args, timeout=30):
    """`knit ARGS` against k: (exit status, stdout, stderr)."""
    p = k.cli(*args, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def knit_send(k, *args, broker="default/demo"):
    """`knit send --broker BROKER ARGS` against k; must answer 202."""
    p = k.cli("send", "--broker", broker, *args)
    check(p.returncode == 0 and "202" in p.stdout, "knit send", p)


def cli_wait_ready(k, name, ns="default", timeout=15.0):
    """Polls `knit get broker NAME -o json` until its Ready condition is
    True (the channel is open); returns the resource."""
    def ready():
        p = ok(k.cli("get", "broker", name, "-n", ns, "-o", "json"),
               "get -o json")
        res = json.loads(p.stdout)
        c = condition(res, "Ready")
        return res if c and c.get("status") == "True" else None
    return wait_for(ready, "broker %s/%s Ready" % (ns, name), timeout, 0.1)


class CliTail:
    """A running `knit tail BROKER ARGS` against k; a thread collects its
    stdout lines."""

    def __init__(self, k, *args, broker="default/demo"):
        self.proc = subprocess.Popen([knit_bin(), "tail", broker] +
                                     list(args),
                                     env=dict(os.environ,
                                              KNIT_ADMIN=k.admin_addr),
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.queue = queue.Queue()
        self.lines = []
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        for line in self.proc.stdout:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def poll(self, timeout):
        """Takes the lines that arrive within timeout; True if any."""
        try:
            line = self.queue.get(timeout=timeout)
        except queue.Empty:
            return False
        if line is None:
            self.proc.wait(timeout=10)
            raise AssertionError("knit tail ended early (rc %r): %r" % (
                self.proc.returncode, self.proc.stderr.read()))
        self.lines.append(line)
        return True

    def read(self, n, timeout=15.0, what="tail output"):
        """Waits until n lines have arrived in total; returns them."""
        deadline = time.monotonic() + timeout
        while len(self.lines) < n:
            left = deadline - time.monotonic()
            check(left > 0, "%s: %d lines, got %r" % (what, n, self.lines))
            self.poll(left)
        return self.lines[:n]

    def events(self, n, timeout=15.0):
        """The first n lines (of -o json) as events."""
        return [json.loads(x) for x in self.read(n, timeout, "tail events")]

    def interrupt(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=15)
        self.thread.join(timeout=15)
        return self.proc.returncode, self.proc.stderr.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- HTTP

def binary_headers(id_, type_="test.type", source="/e2e", extra=None,
                   ctype="text/plain"):
    h = {"ce-specversion": "1.0", "ce-id": id_, "ce-type": type_,
         "ce-source": source}
    if ctype:
        h["content-type"] = ctype
    h.update(extra or {})
    return h


def send(knit, id_, type_="test.type", source="/e2e", data=b"x",
         extra=None, broker="default/b"):
    st, _, body = knit.post("/" + broker, data,
                            binary_headers(id_, type_, source, extra))
    eq(st, 202, "POST event %s (%r)" % (id_, body))


def post_all_modes(k, prefix, broker="default/demo"):
    """Binary, structured and a batch of two; returns the ids."""
    path = "/" + broker
    st, _, _ = k.post(path, b"hello",
                      binary_headers(prefix + "-bin", "t.bin",
                                     extra={"ce-partitionkey": "p1"}))
    eq(st, 202, "binary post")
    ev = {"specversion": "1.0", "id": prefix + "-struct", "type": "t.struct",
          "source": "/e2e", "datacontenttype": "application/json",
          "data": {"n": 1}}
    st, _, _ = k.post(path, json.dumps(ev).encode(),
                      {"content-type": "application/cloudevents+json"})
    eq(st, 202, "structured post")
    batch = [dict(ev, id=prefix + "-b1", type="t.batch"),
             dict(ev, id=prefix + "-b2", type="t.batch")]
    st, _, _ = k.post(path, json.dumps(batch).encode(),
                      {"content-type":
                       "application/cloudevents-batch+json"})
    eq(st, 202, "batch post")
    return [prefix + s for s in ("-bin", "-struct", "-b1", "-b2")]


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


def tail_events(port, ns, name, frm="start", timeout=20.0, idle=0.7):
    """Generator over the admin tail of broker ns/name at 127.0.0.1:port:
    yields each event (a dict), and None whenever nothing came for `idle`
    seconds; ends when the stream ends or after `timeout` seconds."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(("GET /v1/tail/%s/%s?from=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                   % (ns, name, frm)).encode())
        s.settimeout(idle)
        buf = body = b""
        head_done = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(1 << 16)
            except socket.timeout:
                yield None
                continue
            if not chunk:
                return
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
                    yield json.loads(line)
    finally:
        s.close()


def read_back(port, ns, name, want, timeout=60.0, idle=1.0):
    """Reads broker ns/name from the start through the admin tail of the
    knit at admin port `port` until every id in `want` was seen and then
    nothing more came for `idle` seconds (or the timeout). Returns the
    list of ids read, in order (duplicates kept)."""
    want = set(want)
    seen = set()
    ids = []
    stream = tail_events(port, ns, name, "start", timeout, idle)
    with contextlib.closing(stream):
        for ev in stream:
            if ev is None:
                if want <= seen:
                    break
                continue
            ids.append(ev.get("id"))
            seen.add(ev.get("id"))
    return ids


# ----------------------------------------------------------- resources

def broker_yaml(name, annotations=None, ns="default", cls=None, cm=None):
    """A Broker; `cls` sets the broker class annotation (first), `cm` the
    ConfigMap of spec.config."""
    ann = {}
    if cls:
        ann["eventing.knative.dev/broker.class"] = cls
    ann.update(annotations or {})
    text = ("apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
            "metadata:\n  name: %s\n  namespace: %s\n" % (name, ns))
    if ann:
        text += "  annotations:\n"
        for k, v in ann.items():
            text += "    %s: %s\n" % (k, json.dumps(v))
    if cm:
        text += ("spec:\n  config:\n    apiVersion: v1\n    kind: ConfigMap\n"
                 "    name: %s\n" % cm)
    return text


def configmap_yaml(name, data, ns="default"):
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"
            "  namespace: %s\ndata:\n" % (name, ns))
    for k, v in data.items():
        text += "  %s: %s\n" % (k, json.dumps(str(v)))
    return text


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


def apply_ok(knit, yaml_text):
    st, body = knit.apply(yaml_text)
    eq(st, 200, "apply: %r" % (body,))
    return body


def condition(obj, type_):
    """The condition of type_ in a resource's status, or None."""
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == type_:
            return c
    return None


def broker_condition(knit, name, ns="default"):
    """The Ready condition of broker ns/name, read from the admin API."""
    st, obj = knit.admin_json("GET", "/v1/resources/brokers/%s/%s" %
                              (ns, name))
    eq(st, 200, "GET broker %s/%s" % (ns, name))
    c = condition(obj, "Ready")
    if c is None:
        raise AssertionError("no Ready condition: %r" % obj)
    return c


def wait_condition(knit, name, status, reason=None, ns="default",
                   timeout=20.0):
    """Polls the broker's Ready condition until it has status (and
    reason); returns it."""
    deadline = time.monotonic() + timeout
    while True:
        c = broker_condition(knit, name, ns)
        if c["status"] == status and (reason is None or
                                      c["reason"] == reason):
            return c
        if time.monotonic() > deadline:
            raise AssertionError("broker %s/%s: want Ready %s %s, have %r\n"
                                 "--- knit log ---\n%s" %
                                 (ns, name, status, reason or "", c,
                                  knit.log_text()[-4000:]))
        time.sleep(0.05)


def trigger_status(knit, name, ns="default"):
    st, obj = knit.admin_json("GET", "/v1/resources/triggers/%s/%s" %
                              (ns, name))
    eq(st, 200, "GET trigger %s" % name)
    return obj


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


# ---------------------------------------------------------------- load

class Poster:
    """Posts binary-mode events with ids PREFIX-N from `threads` threads
    over keep-alive connections, spreading them round-robin over the
    given ingress ports (one connection per thread and port). Records per
    id the last status; `acked` holds the ids answered 202. Retries 503
    (Retry-After honoured up to `max_wait`) when `retry` is set, else
    records it, backs off the same way and moves on to the next id.
    `etype` is the event type, or a function of the event number."""

    def __init__(self, ports, path, prefix, threads=4, retry=False,
                 etype="e2e.load", max_wait=0.2, body=b"x"):
        self.ports = list(ports)
        self.path = path
        self.prefix = prefix
        self.threads = threads
        self.retry = retry
        self.etype = etype
        self.max_wait = max_wait
        self.body = body
        self.lock = threading.Lock()
        self.acked = set()
        self.codes = {}
        self.retry_after_seen = 0
        self.errors = 0
        self.next = 0
        self.limit = None
        self.stopped = threading.Event()
        self.workers = []

    def _take(self):
        with self.lock:
            if self.limit is not None and self.next >= self.limit:
                return None
            n = self.next
            self.next += 1
            return n

    def _conn(self, conns, port):
        c = conns.get(port)
        if c is None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conns[port] = c
        return c

    def _post_one(self, conns, port, eid, etype):
        headers = {"ce-specversion": "1.0", "ce-id": eid,
                   "ce-type": etype, "ce-source": "/e2e/poster",
                   "content-type": "text/plain"}
        c = self._conn(conns, port)
        try:
            c.request("POST", self.path, body=self.body, headers=headers)
            r = c.getresponse()
            r.read()
            st, ra = r.status, r.getheader("Retry-After")
            if r.getheader("Connection", "").lower() == "close":
                c.close()
                conns.pop(port, None)
            return st, ra
        except (OSError, http.client.HTTPException):
            c.close()
            conns.pop(port, None)
            return 0, None

    def _run(self, widx):
        conns = {}
        k = widx
        while not self.stopped.is_set():
            n = self._take()
            if n is None:
                break
            eid = "%s-%d" % (self.prefix, n)
            etype = self.etype(n) if callable(self.etype) else self.etype
            while True:
                ports = self.ports
                port = ports[k % len(ports)]
                k += 1
                st, ra = self._post_one(conns, port, eid, etype)
                with self.lock:
                    self.codes[st] = self.codes.get(st, 0) + 1
                    if st == 503 and ra:
                        self.retry_after_seen += 1
                    if st == 202:
                        self.acked.add(eid)
                if st == 202 or self.stopped.is_set():
                    break
                if st == 0 or st == 503:
                    # back off as Retry-After says (capped), like a client
                    try:
                        wait = float(ra) if ra else 0.05
                    except ValueError:
                        wait = 0.05
                    time.sleep(min(wait, self.max_wait))
                if not self.retry or st not in (0, 503):
                    break
        for c in conns.values():
            c.close()

    def start(self, limit=None):
        self.limit = limit
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.workers.append(t)
        return self

    def stop(self):
        self.stopped.set()
        self.join()

    def join(self, timeout=None):
        for t in self.workers:
            t.join(timeout)

    def count(self, code):
        with self.lock:
            return self.codes.get(code, 0)

    def posted(self):
        with self.lock:
            return self.next


# ---------------------------------------------------------- subscribers

class _Sink:
    """What both subscribers offer on top of requests()."""

    def ids(self):
        return [r["headers"].get("ce-id") for r in self.requests()]

    def wait_count(self, n, timeout=20.0):
        return wait_for(lambda: len(self.requests()) >= n and
                        self.requests(), "%d requests at %s" % (n, self.url),
                        timeout)


class TestSink(_Sink):
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
            args += ["--reply", write_file(os.path.join(
                tmp, name + ".reply.json"), json.dumps(reply))]
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

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


class PySink(_Sink):
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

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
