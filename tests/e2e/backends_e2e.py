"""NATS and Kafka pieces of the e2e tests that need a backend (072x
Kafka, 082x NATS, 0668, 090x scale-out): a real `nats-server -js` on a
free loopback port with a temporary store (or $KNIT_TEST_NATS_URL), a tiny
NATS text-protocol client (CONNECT/PING/SUB/PUB/MSG/HMSG and JetStream API
requests), the Kafka mock-cluster tool from the build directory, kcat, and
broker YAML for each class. The rest of the harness is knit_e2e.py.
Python 3 standard library only.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import (broker_yaml, check, configmap_yaml, eq,  # noqa: E402
                      free_port, skip, wait_port)


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


def nats_broker_yaml(name, url, data=None, ns="default", cm=None):
    """A NatsJetStreamBroker and its ConfigMap (url + data)."""
    cm = cm or name + "-nats"
    d = {"url": url}
    d.update(data or {})
    return configmap_yaml(cm, d, ns) + "---\n" + broker_yaml(
        name, None, ns, "NatsJetStreamBroker", cm)


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
    command() sends an error-injection command on its stdin. `topics`
    are created up front ("NAME:PARTITIONS[:REPLICAS]")."""

    def __init__(self, brokers=3, topics=()):
        self.bin = kafka_mock_binary()
        if not self.bin:
            skip("the kafka-mock tool is not built (KNIT_BUILD_DIR/tests/"
                 "kafka-mock, target kafka_mock); the Kafka system tests "
                 "need it")
        self.brokers = brokers
        self.topics = list(topics)
        self.proc = None
        self.bootstrap = None
        self.lock = threading.Lock()

    def start(self):
        args = [self.bin, "--brokers", str(self.brokers)]
        for t in self.topics:
            args += ["--topic", t]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE,
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
    return configmap_yaml(cm, d, ns) + "---\n" + broker_yaml(
        name, annotations, ns, "Kafka", cm)


# ------------------------------------------------------------ both backends

def each_backend(fn, kafka_topics=()):
    """Runs fn("nats", url) against a fresh nats-server (or
    $KNIT_TEST_NATS_URL) and fn("kafka", bootstrap) against a fresh Kafka
    mock (topics created up front, "NAME:PARTITIONS"), each when it is
    available; stops the server afterwards, also when fn fails. Exits 77
    (skipped) when neither is available."""
    ran = 0
    if nats_server_binary() or os.environ.get("KNIT_TEST_NATS_URL"):
        nats = NatsServer().start()
        try:
            fn("nats", nats.url)
        finally:
            nats.cleanup()
        ran += 1
        print("ok: nats")
    if kafka_mock_binary():
        mock = KafkaMock(topics=kafka_topics).start()
        try:
            fn("kafka", mock.bootstrap)
        finally:
            mock.stop()
        ran += 1
        print("ok: kafka")
    if not ran:
        skip("neither nats-server nor the kafka mock is available")
