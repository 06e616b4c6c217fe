"""`knit replay trigger NS/NAME --from start|OFFSET|TIME` moves a trigger's
position: history is delivered again with the filter applied again; other
triggers are not affected; the new position survives a restart; a
deleted and re-created trigger starts at the end again."""

import datetime
import time

from knit_e2e import (Knit, PySink, TempDir, broker_yaml, check,  # noqa: E402
                      docs, eq, knit_cli, run, send, start_knit, trigger_yaml,
                      wait_for)


def main():
    tmp = TempDir()
    s, other = PySink(), PySink()
    knit = None
    try:
        yaml = docs(broker_yaml("b"),
                    trigger_yaml("t", "b", s.url, attributes={"type": "a"}),
                    trigger_yaml("o", "b", other.url))
        knit = start_knit(tmp, yaml)
        for i in range(5):
            send(knit, "a%d" % i, type_="a")
            send(knit, "b%d" % i, type_="b")
        wait_for(lambda: len(s.ids()) >= 5 and len(other.ids()) >= 10,
                 "first pass")
        time.sleep(1.1)
        mark = datetime.datetime.now(datetime.timezone.utc)
        time.sleep(0.1)
        send(knit, "a5", type_="a")
        wait_for(lambda: "a5" in s.ids(), "a5")
        first = ["a%d" % i for i in range(6)]
        eq(sorted(s.ids()), first, "first pass, filtered")

        rc, out, err = knit_cli(knit, "replay", "trigger", "default/t",
                                "--from", "start")
        eq(rc, 0, "replay from start: " + err)
        wait_for(lambda: len(s.ids()) >= 12, "replayed")
        eq(sorted(s.ids()[6:]), first, "replay: the same, filter applied")
        eq(len(other.ids()), 11, "other trigger not replayed")

        # From an offset: offsets 0..10 hold a0 b0 a1 b1 ... a4 b4 a5.
        rc, out, err = knit_cli(knit, "replay", "trigger", "default/t",
                                "--from", "6")
        eq(rc, 0, "replay from offset: " + err)
        wait_for(lambda: len(s.ids()) >= 15, "replayed from offset")
        eq(sorted(s.ids()[12:]), ["a3", "a4", "a5"], "from offset 6")

        # From a time: only a5 was stored after the mark.
        rc, out, err = knit_cli(knit, "replay", "trigger", "default/t",
                                "--from", mark.strftime(
                                    "%Y-%m-%dT%H:%M:%S.%fZ"))
        eq(rc, 0, "replay from time: " + err)
        wait_for(lambda: len(s.ids()) >= 16, "replayed from time")
        eq(s.ids()[15:], ["a5"], "from a time")

        rc, out, err = knit_cli(knit, "replay", "trigger", "default/none",
                                "--from", "start")
        eq(rc, 1, "unknown trigger")
        check("not found" in err, err)
        rc, out, err = knit_cli(knit, "replay", "trigger", "default/t",
                                "--from", "yesterday")
        eq(rc, 1, "bad --from")
        check("yesterday" in err, err)

        # Positions survive a restart: nothing is delivered again.
        time.sleep(0.3)
        n = len(s.ids())
        eq(knit.stop(), 0, "stop")
        knit = Knit(knit.data_dir, config_dir=knit.config_dir).start()
        send(knit, "a6", type_="a")
        wait_for(lambda: "a6" in s.ids(), "a6 after restart")
        eq(s.ids()[n:], ["a6"], "no redelivery after a clean restart")

        # Delete and re-create: starts at the end.
        st, res = knit.admin_json("POST", "/v1/delete?file=t.yaml",
                                  trigger_yaml("t", "b", s.url).encode())
        eq(st, 200, "delete: %r" % res)
        send(knit, "gone", type_="a")
        wait_for(lambda: "gone" in other.ids(), "gone stored")
        st, res = knit.apply(trigger_yaml("t", "b", s.url,
                                          attributes={"type": "a"}))
        eq(st, 200, "re-create")
        send(knit, "a7", type_="a")
        wait_for(lambda: "a7" in s.ids(), "a7")
        check("gone" not in s.ids(), "re-created trigger starts at the end")
        eq(knit.stop(), 0, "clean stop")
        knit = None
    finally:
        if knit:
            knit.stop()
        s.stop()
        other.stop()
        tmp.cleanup()


run(main)
