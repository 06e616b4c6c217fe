"""Dead letters end to end: the dead-letter sink gets the original event
with knativeerrordest / knativeerrorcode / knativeerrordata (the body cut
to 1024 bytes, then base64; a 1 MB HTML error page breaks nothing); with
no sink, or when the sink fails too, the event is kept in the broker's
dead-letter store; `knit dlq list / replay / purge` show, re-deliver and
remove them; the store survives a restart."""

import base64
import json

from knit_e2e import (Knit, PySink, TempDir, broker_yaml, check,  # noqa: E402
                      docs, eq, knit_cli, metric, run, send, start_knit,
                      trigger_yaml, wait_for)

HTML = (b"<html><body>" + b"x" * (1024 * 1024) + b"</body></html>")


def main():
    tmp = TempDir()
    state = {"heal": False}
    html = PySink(lambda r: (500, {"Content-Type": "text/html"}, HTML, 0))
    dls = PySink()
    down = PySink(lambda r: (202 if state["heal"] else 503, {}, b"", 0))
    dls_bad = PySink(lambda r: (500, {}, b"dls down", 0))
    other = PySink(lambda r: (500, {}, b"nope", 0))
    sinks = [html, dls, down, dls_bad, other]
    knit = None
    fast = {"retry": 1, "backoffDelay": "PT0.01S"}
    try:
        yaml = docs(
            broker_yaml("b"),
            trigger_yaml("withdls", "b", html.url,
                         attributes={"type": "html"},
                         delivery=dict(fast, deadLetterSink={"uri": dls.url})),
            trigger_yaml("nodls", "b", down.url, attributes={"type": "down"},
                         delivery=fast),
            trigger_yaml("dlsfails", "b", other.url,
                         attributes={"type": "other"},
                         delivery=dict(fast,
                                       deadLetterSink={"uri": dls_bad.url})))
        knit = start_knit(tmp, yaml)
        send(knit, "h1", type_="html", data=b"payload")
        for i in range(3):
            send(knit, "d%d" % i, type_="down")
        send(knit, "o1", type_="other")
        dls.wait_count(1)
        r = dls.requests()[0]
        h = r["headers"]
        eq(h.get("ce-id"), "h1", "DLS got the original")
        eq(r["body"], b"payload", "original data")
        eq(h.get("ce-knativeerrordest"), html.url, "knativeerrordest")
        eq(h.get("ce-knativeerrorcode"), "500", "knativeerrorcode")
        data = base64.b64decode(h.get("ce-knativeerrordata"))
        eq(data, HTML[:1024], "knativeerrordata = base64(body[:1024])")
        eq(len(html.requests()), 2, "subscriber tried retry+1 times")

        # No sink, and a failing sink: the dead-letter store.
        wait_for(lambda: knit.admin_json("GET", "/v1/dlq/default/b")[1]
                 ["total"] >= 4, "4 dead letters stored")
        rc, out, err = knit_cli(knit, "dlq", "list", "default/b")
        eq(rc, 0, "dlq list: " + err)
        for want in ("nodls", "dlsfails", "d0", "d2", "o1", "delivery",
                     "dead-letter-sink", "503"):
            check(want in out, "%r in dlq list:\n%s" % (want, out))
        rc, out, err = knit_cli(knit, "dlq", "list", "default/b",
                                "--trigger", "dlsfails", "-o", "json")
        eq(rc, 0, "dlq list -o json")
        body = json.loads(out)
        eq(body["total"], 1, "dlsfails entries")
        it = body["items"][0]
        eq(it["reason"], "dead-letter-sink", "reason")
        eq(it["event"]["id"], "o1", "event")
        check("dead-letter sink" in it["error"], it["error"])
        check(not any(k.startswith("knitdlq") for k in it["event"]),
              "metadata not in the listed event: %r" % it["event"])
        m = knit.metrics()
        eq(metric(m, "knit_trigger_dead_letters_total", trigger="withdls",
                  destination="sink"), 1.0, "DLS metric")
        eq(metric(m, "knit_trigger_dead_letters_total", trigger="nodls",
                  destination="store"), 3.0, "store metric")

        # The store survives a restart.
        eq(knit.stop(), 0, "stop")
        knit = Knit(knit.data_dir, config_dir=knit.config_dir).start()
        rc, out, err = knit_cli(knit, "dlq", "list", "default/b",
                                "-o", "json")
        eq(json.loads(out)["total"], 4, "after restart")

        # Replay once the subscriber works again.
        state["heal"] = True
        n_before = len(down.requests())
        rc, out, err = knit_cli(knit, "dlq", "replay", "default/b",
                                "--trigger", "nodls")
        eq(rc, 0, "dlq replay: " + err)
        check("replaying 3" in out, out)
        wait_for(lambda: len(down.requests()) >= n_before + 3,
                 "re-delivered")
        eq(sorted(r["headers"]["ce-id"]
                  for r in down.requests()[n_before:]),
           ["d0", "d1", "d2"], "re-delivered events")
        check(all(not any(k.startswith("ce-knitdlq") for k in r["headers"])
                  for r in down.requests()[n_before:]),
              "no knitdlq metadata sent to the subscriber")
        wait_for(lambda: knit.admin_json(
            "GET", "/v1/dlq/default/b?trigger=nodls")[1]["total"] == 0,
            "replayed entries removed")
        # Replay of one that fails again: it is stored again.
        rc, out, err = knit_cli(knit, "dlq", "replay", "default/b",
                                "--trigger", "dlsfails")
        eq(rc, 0, "dlq replay dlsfails")
        wait_for(lambda: len(dls_bad.requests()) >= 4, "DLS tried again")
        wait_for(lambda: [i["id"] for i in knit.admin_json(
            "GET", "/v1/dlq/default/b?trigger=dlsfails")[1]["items"]] !=
            [it["id"]], "entry replaced")
        eq(knit.admin_json("GET", "/v1/dlq/default/b?trigger=dlsfails")[1]
           ["total"], 1, "failed again: stored again, once")
        # Purge.
        rc, out, err = knit_cli(knit, "dlq", "purge", "default/b",
                                "--trigger", "dlsfails")
        eq((rc, out.strip()), (0, "purged 1 dead letters"), "purge")
        rc, out, err = knit_cli(knit, "dlq", "list", "default/b")
        eq(rc, 0, "list")
        check("No dead letters." in out, out)
        rc, out, err = knit_cli(knit, "dlq", "list", "default/nobroker")
        eq(rc, 1, "unknown broker")
        check("not found" in err, err)
        eq(knit.stop(), 0, "clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        for s in sinks:
            s.stop()
        tmp.cleanup()


run(main)
