"""Helpers for the backend and scale-out system tests (tests/e2e/072x
Kafka, 082x NATS, 090x scale-out): a real `nats-server -js` on a free
loopback port with a temporary store (or $KNIT_TEST_NATS_URL), the Kafka
mock-cluster tool from the build directory, a tiny NATS text-protocol
client (CONNECT/PING/SUB/PUB/MSG/HMSG and JetStream API requests), broker
YAML for each class, Ready polling, and a fast keep-alive HTTP poster that
records which events were acknowledged. Python 3 standard library only.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_e2e import check, eq  # noqa: E402,F401

SKIP = 77


def skip(msg):
    """Exits 77 (skipped) with a loud message."""
    line = "*" * 72
    print("%s\nSKIP: %s\n%s" % (line, msg, line))
    sys.stdout.flush()
    sys.exit(SKIP)


def free_port():
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


# ------------------------------------------------------------- NATS server

def nats_server_binary():
    env = os.environ.get("KNIT_NATS_SERVER")
    cands = [env] if env else []
    cands += [shutil.which("nats-server") or "", "/usr/sbin/nats-server",
              "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    return None


class NatsServer:
    """`nats-server -js` on a free loopback port with its own store, or the
    server at $KNIT_TEST_NATS_URL (then it cannot be stopped/restarted:
    `external` is True)."""

    def __init__(self, allow_external=True):
        self.external = bool(allow_external and
                             os.environ.get("KNIT_TEST_NATS_URL"))
        self.proc = None
        self.dir = None
        if self.external:
            self.url = os.environ["KNIT_TEST_NATS_URL"].split(",")[0]
            hostport = self.url.split("://", 1)[-1]
            self.port = int(hostport.rsplit(":", 1)[1])
            return
        self.bin = nats_server_binary()
        if not self.bin:
            skip("nats-server is not installed (Debian package nats-server);"
                 " the NATS system tests need it, or set "
                 "KNIT_TEST_NATS_URL")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="knit-nats-")
        self.url = "nats://127.0.0.1:%d" % self.port

    def start(self):
        if self.external:
            return self
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [self.bin, "-js", "-a", "127.0.0.1", "-p", str(self.port),
             "-sd", os.path.join(self.dir, "store")],
            stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_port(self.port, 15):
            raise AssertionError("nats-server did not start:\n" +
                                 self.log_text())
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.external or not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.log.close()
        wait_port(self.port, 5, up=False)

    def restart(self):
        self.stop()
        return self.start()

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class NatsConn:
    """A minimal NATS client over the text protocol: enough to subscribe
    to a subject (MSG/HMSG with headers) and to make JetStream API
    requests. One reader thread; messages land in per-subscription
    lists."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        self.subs = {}       # sid -> list of (subject, headers, payload)
        self.next_sid = 1
        self.closed = False
        self.pongs = 0
        info = self._line()
        check(info.startswith(b"INFO "), "NATS INFO, got %r" % info)
        self.info = json.loads(info[5:])
        self._send(b'CONNECT {"verbose":false,"pedantic":false,'
                   b'"headers":true,"no_responders":true,"protocol":1,'
                   b'"lang":"python-e2e","version":"0"}\r\nPING\r\n')
        line = self._line()
        while line.startswith(b"INFO "):
            line = self._line()
        check(line == b"PONG", "NATS CONNECT answered %r" % line)
        self.sock.settimeout(None)
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()

    def _send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("NATS connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _read_loop(self):
        try:
            while True:
                line = self._line()
                if line.startswith(b"MSG "):
                    p = line.split()
                    data = self._bytes(int(p[-1]))
                    self._deliver(int(p[2]), p[1].decode(), {}, data)
                elif line.startswith(b"HMSG "):
                    p = line.split()
                    raw = self._bytes(int(p[-1]))
                    hlen = int(p[-2])
                    self._deliver(int(p[2]), p[1].decode(),
                                  parse_headers(raw[:hlen]), raw[hlen:])
                elif line == b"PING":
                    self._send(b"PONG\r\n")
                elif line == b"PONG":
                    with self.cv:
                        self.pongs += 1
                        self.cv.notify_all()
                elif line.startswith(b"-ERR"):
                    sys.stderr.write("NATS: %s\n" % line.decode())
        except (EOFError, OSError):
            pass
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def _deliver(self, sid, subject, headers, payload):
        with self.cv:
            if sid in self.subs:
                self.subs[sid].append((subject, headers, payload))
                self.cv.notify_all()

    def subscribe(self, subject):
        with self.cv:
            sid = self.next_sid
            self.next_sid += 1
            self.subs[sid] = []
        self._send(b"SUB %s %d\r\n" % (subject.encode(), sid))
        self.flush()
        return sid

    def flush(self, timeout=10):
        with self.cv:
            want = self.pongs + 1
        self._send(b"PING\r\n")
        with self.cv:
            ok = self.cv.wait_for(lambda: self.pongs >= want or self.closed,
                                  timeout)
        check(ok and not self.closed, "NATS flush")

    def messages(self, sid, count, timeout=15):
        """Waits until sid has count messages; returns them all."""
        with self.cv:
            self.cv.wait_for(lambda: len(self.subs[sid]) >= count or
                             self.closed, timeout)
            return list(self.subs[sid])

    def request(self, subject, payload=b"", timeout=10):
        inbox = "_INBOX.e2e.%d.%d" % (os.getpid(), self.next_sid)
        sid = self.subscribe(inbox)
        self._send(b"PUB %s %s %d\r\n%s\r\n" % (
            subject.encode(), inbox.encode(), len(payload), payload))
        got = self.messages(sid, 1, timeout)
        self._send(b"UNSUB %d\r\n" % sid)
        check(got, "no answer to NATS request %s" % subject)
        return got[0]

    def js(self, api, body=None, timeout=10):
        """A JetStream API request ($JS.API.<api>); the JSON answer."""
        payload = json.dumps(body).encode() if body is not None else b""
        _, hdrs, data = self.request("$JS.API." + api, payload, timeout)
        check(data, "JetStream %s: empty answer (%r)" % (api, hdrs))
        return json.loads(data)

    def stream_info(self, stream):
        return self.js("STREAM.INFO." + stream)

    def stream_msg(self, stream, seq):
        """Stored message seq of a stream: (subject, headers, data)."""
        r = self.js("STREAM.MSG.GET." + stream, {"seq": seq})
        check("message" in r, "STREAM.MSG.GET %s %d: %r" % (stream, seq, r))
        m = r["message"]
        hdrs = parse_headers(base64.b64decode(m.get("hdrs", "")))
        return m["subject"], hdrs, base64.b64decode(m.get("data", ""))

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def parse_headers(raw):
    """NATS headers block ("NATS/1.0\\r\\nK: V\\r\\n...") → dict with
    lower-case keys; multiple values are joined with ','. The status line
    (e.g. "NATS/1.0 503") is under the key ':status'."""
    out = {}
    if not raw:
        return out
    lines = raw.decode("utf-8", "replace").split("\r\n")
    out[":status"] = lines[0][len("NATS/1.0"):].strip()
    for ln in lines[1:]:
        if ":" not in ln:
            continue
        k, v = ln.split(":", 1)
        k = k.strip().lower()
        out[k] = out[k] + "," + v.strip() if k in out else v.strip()
    return out


def nats_stream_name(ns, name):
    return ("KN_BROKER_%s__%s" % (ns, name)).upper().replace("-", "_")


# ------------------------------------------------------------- Kafka mock

def kafka_mock_binary():
    build = os.environ.get("KNIT_BUILD_DIR", "")
    for c in (os.environ.get("KNIT_KAFKA_MOCK", ""),
              os.path.join(build, "tests", "kafka-mock"),
              os.path.join(build, "kafka-mock")):
        if c and os.access(c, os.X_OK):
            return c
    return None


class KafkaMock:
    """librdkafka's mock cluster through the kafka-mock tool of the build
    (tests/integration/tools/kafka_mock.c): `bootstrap` is its address;
    command() sends an error-injection command on its stdin."""

    def __init__(self, brokers=3):
        self.bin = kafka_mock_binary()
        if not self.bin:
            skip("the kafka-mock tool is not built (KNIT_BUILD_DIR/tests/"
                 "kafka-mock, target kafka_mock); the Kafka system tests "
                 "need it")
        self.brokers = brokers
        self.proc = None
        self.bootstrap = None
        self.lock = threading.Lock()

    def start(self):
        self.proc = subprocess.Popen([self.bin, "--brokers",
                                      str(self.brokers)],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True,
                                     bufsize=1)
        self.bootstrap = self.proc.stdout.readline().strip()
        ready = self.proc.stdout.readline().strip()
        check(self.bootstrap and ready == "ready",
              "kafka-mock did not start: %r %r" % (self.bootstrap, ready))
        return self

    def command(self, line):
        with self.lock:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline().strip()
        eq(answer, "ok", "kafka-mock %r" % line)

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.proc = None


def kcat_records(bootstrap, topic, timeout=30):
    """Every record of a topic as kcat's JSON envelopes (kcat -C -J -e);
    headers turned into a dict. None when kcat is not installed."""
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if not kcat:
        return None
    p = subprocess.run([kcat, "-b", bootstrap, "-C", "-t", topic, "-J", "-e",
                        "-q", "-X", "fetch.wait.max.ms=5"],
                       capture_output=True, text=True, timeout=timeout)
    check(p.returncode == 0, "kcat: rc=%d %s" % (p.returncode, p.stderr))
    out = []
    for line in p.stdout.splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        h = r.get("headers") or []
        r["headers"] = dict(zip(h[0::2], h[1::2]))
        out.append(r)
    return out


def kafka_broker_yaml(name, bootstrap, data=None, ns="default", cm=None,
                      annotations=None):
    """A Kafka-class broker and its ConfigMap; consumers get a small
    fetch.wait.max.ms, which librdkafka's mock cluster needs."""
    cm = cm or name + "-kafka"
    d = {"bootstrap.servers": bootstrap,
         "kafka.consumer.fetch.wait.max.ms": "5"}
    d.update(data or {})
    return configmap_yaml(cm, d, ns) + "---\n" + class_broker_yaml(
        name, "Kafka", cm, ns, annotations)


# ------------------------------------------------------------- resources

def nats_broker_yaml(name, url, data=None, ns="default", cm=None):
    """A NatsJetStreamBroker and its ConfigMap (url + data)."""
    cm = cm or name + "-nats"
    d = {"url": url}
    d.update(data or {})
    return configmap_yaml(cm, d, ns) + "---\n" + class_broker_yaml(
        name, "NatsJetStreamBroker", cm, ns)


def configmap_yaml(name, data, ns="default"):
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"
            "  namespace: %s\ndata:\n" % (name, ns))
    for k, v in data.items():
        text += "  %s: %s\n" % (k, json.dumps(str(v)))
    return text


def class_broker_yaml(name, cls, cm=None, ns="default", annotations=None):
    text = ("apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
            "metadata:\n  name: %s\n  namespace: %s\n  annotations:\n"
            "    eventing.knative.dev/broker.class: %s\n" % (name, ns, cls))
    for k, v in (annotations or {}).items():
        text += "    %s: %s\n" % (k, json.dumps(v))
    if cm:
        text += ("spec:\n  config:\n    apiVersion: v1\n    kind: ConfigMap\n"
                 "    name: %s\n" % cm)
    return text


def condition(knit, name, ns="default"):
    st, obj = knit.admin_json("GET", "/v1/resources/brokers/%s/%s" %
                              (ns, name))
    eq(st, 200, "GET broker %s/%s" % (ns, name))
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == "Ready":
            return c
    raise AssertionError("no Ready condition: %r" % obj)


def wait_condition(knit, name, status, reason=None, ns="default",
                   timeout=20.0):
    """Polls the broker's Ready condition until it has status (and
    reason); returns it."""
    deadline = time.monotonic() + timeout
    while True:
        c = condition(knit, name, ns)
        if c["status"] == status and (reason is None or
                                      c["reason"] == reason):
            return c
        if time.monotonic() > deadline:
            raise AssertionError("broker %s/%s: want Ready %s %s, have %r\n"
                                 "--- knit log ---\n%s" %
                                 (ns, name, status, reason or "", c,
                                  knit.log_text()[-4000:]))
        time.sleep(0.05)


def apply_ok(knit, yaml_text):
    st, body = knit.apply(yaml_text)
    eq(st, 200, "apply: %r" % (body,))
    return body


# ------------------------------------------------------------- posting

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


def read_back(port, ns, name, want, timeout=60.0, idle=1.0):
    """Reads broker ns/name from the start through the admin tail of the
    knit at admin port `port` until every id in `want` was seen and then
    nothing more came for `idle` seconds (or the timeout). Returns the
    list of ids read, in order (duplicates kept)."""
    from broker_e2e import decode_chunks
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("GET /v1/tail/%s/%s?from=start HTTP/1.1\r\nHost: x\r\n"
               "\r\n" % (ns, name)).encode())
    want = set(want)
    seen = set()
    ids = []
    buf = body = b""
    head_done = False
    deadline = time.monotonic() + timeout
    s.settimeout(idle)
    try:
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(1 << 16)
            except socket.timeout:
                if want <= seen:
                    break
                continue
            if not chunk:
                break
            buf += chunk
            if not head_done:
                if b"\r\n\r\n" not in buf:
                    continue
                head, buf = buf.split(b"\r\n\r\n", 1)
                check(int(head.split()[1]) == 200, "tail: %r" % head[:80])
                head_done = True
            body, buf = decode_chunks(body, buf)
            while b"\n" in body:
                line, body = body.split(b"\n", 1)
                if line.strip():
                    eid = json.loads(line).get("id")
                    ids.append(eid)
                    seen.add(eid)
    finally:
        s.close()
    return ids


def event_ids(events):
    """The ids of events as the admin tail returns them (JSON format)."""
    return [e.get("id") for e in events]
