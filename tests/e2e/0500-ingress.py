"""0500-ingress: every case of the ingress table (DESIGN.md §3) against
the real knit binary, in binary, structured and batched mode: 202 with
knativearrivaltime/knativebrokerttl added, OPTIONS, 405, 404, 400 with a
JSON {"error","field"} body (nothing of a bad batch stored), 413 from
Content-Length and from a streamed body, 503 with Retry-After, TTL rules,
percent-encoded headers (strict and lenient), JSON and non-JSON data,
extension types, /healthz and /readyz. Stored events are read back with
the admin tail from the start."""

import json
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import (Knit, TempDir, binary_headers, broker_yaml,  # noqa: E402
                      check, eq, run)

ARRIVAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
P = "/default/demo"


def err_body(data, field=None):
    body = json.loads(data)
    check(isinstance(body.get("error"), str) and body["error"],
          "error body has an error text: %r" % data)
    check("field" in body, "error body has a field: %r" % data)
    if field is not None:
        eq(body["field"], field, "error field")
    return body


def stored(k, broker="demo"):
    return k.tail("default", broker)


def test_binary(k):
    st, h, data = k.post(P, b"hello", binary_headers("b1"))
    eq(st, 202, "binary text")
    eq(data, b"", "202 body")
    st, _, _ = k.post(P, b'{"a": 1, "b": [true]}',
                      binary_headers("b2", ctype="application/json"))
    eq(st, 202, "binary json")
    raw = bytes(range(256))
    st, _, _ = k.post(P, raw, binary_headers(
        "b3", ctype="application/octet-stream"))
    eq(st, 202, "binary octets")
    # percent-encoded header values are decoded; extensions are strings
    st, _, _ = k.post(P, b"x", binary_headers("b4", extra={
        "ce-subject": "caf%C3%A9 100%25",
        "ce-myext": "v%20x",
        "ce-num": "5",
    }))
    eq(st, 202, "percent-encoded")
    # no data at all
    st, _, _ = k.post(P, b"", binary_headers("b5", ctype=None))
    eq(st, 202, "no data")
    evs = stored(k)
    eq([e["id"] for e in evs], ["b1", "b2", "b3", "b4", "b5"], "ids")
    e = evs[0]
    eq(e["data"], "hello", "text data")
    eq(e["datacontenttype"], "text/plain", "content type")
    check(ARRIVAL.match(e["knativearrivaltime"]),
          "knativearrivaltime RFC 3339 UTC: %r" % e["knativearrivaltime"])
    eq(e["knativebrokerttl"], 255, "default TTL (an Integer)")
    eq(evs[1]["data"], {"a": 1, "b": [True]}, "JSON data")
    import base64
    eq(base64.b64decode(evs[2]["data_base64"]), raw, "binary data")
    eq(evs[3]["subject"], "caf\u00e9 100%", "decoded subject")
    eq(evs[3]["myext"], "v x", "decoded extension")
    eq(evs[3]["num"], "5", "binary-mode extension is a String")
    check("data" not in evs[4] and "data_base64" not in evs[4],
          "absent data stays absent: %r" % evs[4])


def test_structured(k):
    ev = {"specversion": "1.0", "id": "s1", "type": "t", "source": "/s",
          "subject": "sub", "time": "2024-01-02T03:04:05.123Z",
          "intext": 42, "boolext": True, "strext": "x",
          "datacontenttype": "application/json", "data": {"k": "v"}}
    hdr = {"content-type": "application/cloudevents+json"}
    st, _, _ = k.post(P, json.dumps(ev).encode(), hdr)
    eq(st, 202, "structured")
    ev2 = {"specversion": "1.0", "id": "s2", "type": "t", "source": "/s",
           "datacontenttype": "text/plain", "data": "plain text"}
    st, _, _ = k.post(P, json.dumps(ev2).encode(), hdr)
    eq(st, 202, "structured text data")
    evs = stored(k)[-2:]
    eq(evs[0]["id"], "s1", "structured id")
    eq(evs[0]["intext"], 42, "integer extension")
    eq(evs[0]["boolext"], True, "boolean extension")
    eq(evs[0]["strext"], "x", "string extension")
    eq(evs[0]["data"], {"k": "v"}, "structured JSON data")
    eq(evs[0]["knativebrokerttl"], 255, "TTL on structured")
    eq(evs[1]["data"], "plain text", "structured text data")
    # TTL rules in structured mode too
    ev3 = dict(ev2, id="s3", knativebrokerttl=1)
    st, _, data = k.post(P, json.dumps(ev3).encode(), hdr)
    eq(st, 400, "structured TTL 1")
    err_body(data, "knativebrokerttl")
    ev4 = dict(ev2, id="s4", knativebrokerttl=7)
    st, _, _ = k.post(P, json.dumps(ev4).encode(), hdr)
    eq(st, 202, "structured TTL 7")
    eq(stored(k)[-1]["knativebrokerttl"], 6, "structured TTL decremented")


def batch(ids, bad=None):
    out = []
    for i in ids:
        e = {"specversion": "1.0", "id": i, "type": "t", "source": "/b"}
        if bad and i in bad:
            e.update(bad[i])
        out.append(e)
    return json.dumps(out).encode()


BATCH = {"content-type": "application/cloudevents-batch+json"}


def test_batch(k):
    before = len(stored(k))
    st, _, _ = k.post(P, batch(["k1", "k2", "k3"]), BATCH)
    eq(st, 202, "batch")
    st, _, _ = k.post(P, b"[]", BATCH)
    eq(st, 202, "empty batch")
    # one bad event: 400 naming it, nothing stored
    st, _, data = k.post(P, batch(["x1", "x2", "x3"],
                                  {"x2": {"id": ""}}), BATCH)
    eq(st, 400, "batch with a bad event")
    body = err_body(data)
    check(body["field"].startswith("[1]"), "field names the index: %r" %
          body)
    st, _, data = k.post(P, batch(["y1", "y2"],
                                  {"y2": {"knativebrokerttl": 1}}), BATCH)
    eq(st, 400, "batch with an exhausted TTL")
    eq(err_body(data)["field"], "[1].knativebrokerttl", "TTL field")
    st, _, data = k.post(P, b'[{"specversion": "1.0"', BATCH)
    eq(st, 400, "truncated batch")
    err_body(data)
    evs = stored(k)
    eq([e["id"] for e in evs[before:]], ["k1", "k2", "k3"],
       "only the good batch is stored")


def test_invalid(k):
    before = len(stored(k))
    h = binary_headers("i1")
    del h["ce-id"]
    st, _, data = k.post(P, b"x", h)
    eq(st, 400, "missing ce-id")
    err_body(data, "ce-id")
    st, _, data = k.post(P, b"x", binary_headers("i2", source=""))
    eq(st, 400, "empty source")
    st, _, data = k.post(P, b"x", binary_headers(
        "i3", extra={"ce-specversion": "2.0"}))
    eq(st, 400, "bad specversion")
    st, _, data = k.post(P, b"x", binary_headers(
        "i4", extra={"ce-time": "yesterday"}))
    eq(st, 400, "bad time")
    err_body(data, "ce-time")
    st, _, data = k.post(P, b"{not json",
                         {"content-type": "application/cloudevents+json"})
    eq(st, 400, "malformed structured")
    err_body(data)
    st, _, data = k.post(P, b'{"specversion":"1.0","id":"x","type":"t"}',
                         {"content-type": "application/cloudevents+json"})
    eq(st, 400, "structured without source")
    err_body(data, "source")
    # strict percent-decoding by default
    st, _, data = k.post(P, b"x", binary_headers(
        "i5", extra={"ce-subject": "bad%ZZ"}))
    eq(st, 400, "invalid percent-escape (strict)")
    err_body(data)
    eq(len(stored(k)), before, "nothing stored by bad requests")
    # the lenient broker takes it as is
    st, _, data = k.post("/default/lenient", b"x", binary_headers(
        "l1", extra={"ce-subject": "bad%ZZ"}))
    eq(st, 202, "invalid percent-escape (lenient)")
    eq(stored(k, "lenient")[0]["subject"], "bad%ZZ", "lenient subject")


def test_ttl(k):
    for ttl, code in (("1", 400), ("0", 400), ("-4", 400)):
        st, _, data = k.post(P, b"x", binary_headers(
            "t" + ttl, extra={"ce-knativebrokerttl": ttl}))
        eq(st, code, "TTL %s" % ttl)
        err_body(data, "knativebrokerttl")
    st, _, _ = k.post(P, b"x", binary_headers(
        "t5", extra={"ce-knativebrokerttl": "5"}))
    eq(st, 202, "TTL 5")
    st, _, _ = k.post(P, b"x", binary_headers(
        "tx", extra={"ce-knativebrokerttl": "abc"}))
    eq(st, 202, "TTL not an integer")
    evs = stored(k)
    eq(evs[-2]["knativebrokerttl"], 4, "TTL decremented")
    eq(evs[-1]["knativebrokerttl"], 255, "non-integer TTL reset")


def test_methods_and_paths(k):
    st, h, _ = k.request("OPTIONS", P)
    eq(st, 200, "OPTIONS")
    eq(h.get("allow"), "POST, OPTIONS", "Allow")
    eq(h.get("webhook-allowed-origin"), "*", "WebHook-Allowed-Origin")
    eq(h.get("webhook-allowed-rate"), "*", "WebHook-Allowed-Rate")
    for m in ("GET", "PUT", "DELETE", "PATCH"):
        st, h, data = k.request(m, P, b"" if m != "GET" else None)
        eq(st, 405, m)
        eq(h.get("allow"), "POST, OPTIONS", m + " Allow")
        err_body(data)
    for path in ("/default/nope", "/other/demo"):
        st, _, data = k.post(path, b"x", binary_headers("n1"))
        eq(st, 404, "unknown broker " + path)
        err_body(data)
    for path in ("/", "/default", "/default/demo/extra", "/Default/demo"):
        st, _, _ = k.post(path, b"x", binary_headers("n2"))
        eq(st, 404, "bad path " + path)
    eq(k.request("GET", "/healthz")[0], 200, "healthz")
    eq(k.request("GET", "/readyz")[0], 200, "readyz")


def test_too_large(k):
    small = "/default/small"  # limit 2048 bytes
    st, _, _ = k.post(small, b"a" * 2048, binary_headers("z1"))
    eq(st, 202, "exactly at the limit")
    st, _, data = k.post(small, b"a" * 2049, binary_headers("z2"))
    eq(st, 413, "over the limit (Content-Length)")
    err_body(data)
    # Content-Length far over the limit: answered before the body is sent
    s = socket.create_connection(("127.0.0.1", k.ingress), timeout=5)
    s.sendall(b"POST /default/small HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 100000000\r\nce-specversion: 1.0\r\n"
              b"ce-id: z3\r\nce-type: t\r\nce-source: /s\r\n\r\n")
    resp = s.recv(4096)
    s.close()
    check(resp.startswith(b"HTTP/1.1 413"), "early 413: %r" % resp[:40])
    # a streamed (chunked) body: 413 once it passes the limit
    s = socket.create_connection(("127.0.0.1", k.ingress), timeout=5)
    s.sendall(b"POST /default/small HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\nce-specversion: 1.0\r\n"
              b"ce-id: z4\r\nce-type: t\r\nce-source: /s\r\n\r\n")
    s.sendall(b"1000\r\n" + b"a" * 4096 + b"\r\n")
    resp = s.recv(4096)
    s.close()
    check(resp.startswith(b"HTTP/1.1 413"), "streamed 413: %r" % resp[:40])
    # structured and batched bodies count as a whole
    big = {"specversion": "1.0", "id": "z5", "type": "t", "source": "/s",
           "data": "a" * 3000}
    st, _, data = k.post(small, json.dumps(big).encode(),
                         {"content-type": "application/cloudevents+json"})
    eq(st, 413, "structured over the limit")
    err_body(data)
    st, _, data = k.post(small, batch(["z6"])[:-1] + b"," +
                         json.dumps(big).encode() + b"]", BATCH)
    eq(st, 413, "batch over the limit")
    # a chunked body under the limit is fine
    s = socket.create_connection(("127.0.0.1", k.ingress), timeout=5)
    s.sendall(b"POST /default/small HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\nce-specversion: 1.0\r\n"
              b"ce-id: z7\r\nce-type: t\r\nce-source: /s\r\n\r\n"
              b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n")
    resp = s.recv(4096)
    s.close()
    check(resp.startswith(b"HTTP/1.1 202"), "chunked 202: %r" % resp[:40])
    evs = stored(k, "small")
    eq([e["id"] for e in evs], ["z1", "z7"], "only z1 and z7 stored")
    import base64
    eq(base64.b64decode(evs[1]["data_base64"]), b"helloworld",
       "chunked body (no content type: binary data)")


def test_unavailable(k):
    st, h, data = k.post("/default/kafka", b"x", binary_headers("u1"))
    eq(st, 503, "broker without storage")
    check(h.get("retry-after"), "Retry-After present")
    err_body(data)


def test_metrics(k):
    m = k.metrics()
    for code in ("202", "400", "404", "413", "503"):
        check(re.search(r'knit_ingress_requests_total\{[^}]*code="%s"\} '
                        r'[1-9]' % code, m), "requests with code " + code)
    check(re.search(r'knit_ingress_events_stored_total\{namespace="default",'
                    r'broker="demo"\} [1-9]', m), "events stored")
    check('knit_append_latency_seconds_count{namespace="default",'
          'broker="demo"}' in m, "latency histogram")
    check(re.search(r'knit_channel_fsyncs_total\{namespace="default",'
                    r'broker="demo"\} [1-9]', m), "fsyncs")
    check("knit_channel_retention_deleted_events_total" in m,
          "retention deletions")
    check(re.search(r"process_resident_memory_bytes [1-9]", m), "RSS")


def main():
    tmp = TempDir()
    try:
        cfg = tmp.sub("config")
        tmp.write("config/brokers.yaml", "---\n".join([
            broker_yaml("demo"),
            broker_yaml("small", {"knit.dev/max-event-size": "2048"}),
            broker_yaml("lenient", {"knit.dev/header-decoding": "lenient"}),
            broker_yaml("kafka",
                        {"eventing.knative.dev/broker.class": "Kafka"}),
        ]))
        k = Knit(tmp.sub("data"), cfg).start()
        try:
            test_binary(k)
            test_structured(k)
            test_batch(k)
            test_invalid(k)
            test_ttl(k)
            test_methods_and_paths(k)
            test_too_large(k)
            test_unavailable(k)
            test_metrics(k)
            eq(k.stop(), 0, "exit status after SIGTERM")
        finally:
            if k.proc:
                k.kill()
                print(k.log_text())
    finally:
        tmp.cleanup()


run(main)
