"""0503-full-disk: the data directory fills up while producers send.
Appends that cannot be stored get 503 with Retry-After (never 202), the
daemon stays up, and once space is back appends succeed again; after a
restart every acknowledged event is there exactly once. The disk is a
small tmpfs when mounting is permitted, else RLIMIT_FSIZE (prlimit) on
the knit process."""

import os
import resource
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import (Knit, TempDir, binary_headers, broker_yaml,  # noqa: E402
                      check, eq, run)


def try_mount(path, size):
    if os.geteuid() != 0 or os.environ.get("KNIT_E2E_NO_MOUNT"):
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size,
                        "tmpfs", path], capture_output=True)
    return r.returncode == 0


def fill(k, prefix, limit=4000):
    """Posts 4 KiB events until one is refused; returns (acked ids, the
    refusing response)."""
    acked = []
    for i in range(limit):
        eid = "%s%d" % (prefix, i)
        st, h, data = k.post("/default/demo", b"z" * 4096,
                             binary_headers(eid))
        if st != 202:
            return acked, (st, h, data)
        acked.append(eid)
    raise AssertionError("the disk never filled up")


def check_full(resp):
    st, h, data = resp
    eq(st, 503, "status while full")
    check(h.get("retry-after"), "Retry-After while full")
    check(b"storage unavailable" in data, "error body: %r" % data)


def main():
    tmp = TempDir()
    mnt = tmp.sub("disk")
    mounted = try_mount(mnt, "1m")
    try:
        cfg = tmp.sub("config")
        tmp.write("config/b.yaml", broker_yaml(
            "demo", {"knit.dev/segment-bytes": "256Ki"}))
        data = os.path.join(mnt, "data")
        limit = None
        if not mounted:
            limit = 600 * 1024  # bytes per file

            def limit_fsize():
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            k = Knit(data, cfg, preexec=limit_fsize)
            # segments larger than the per-file limit
            tmp.write("config/b.yaml", broker_yaml(
                "demo", {"knit.dev/segment-bytes": "64Mi"}))
        else:
            k = Knit(data, cfg)
        k.start()
        try:
            acked, resp = fill(k, "a")
            check(len(acked) > 10, "some events stored before full")
            check_full(resp)
            # still full: refused again, the daemon is alive
            st, _, _ = k.post("/default/demo", b"z" * 4096,
                              binary_headers("again"))
            eq(st, 503, "still full")
            eq(k.request("GET", "/healthz")[0], 200, "alive while full")
            if mounted:
                subprocess.run(["mount", "-o", "remount,size=16m", mnt],
                               check=True)
                st, _, _ = k.post("/default/demo", b"z",
                                  binary_headers("b0"))
                eq(st, 202, "append once space is back")
                acked.append("b0")
            eq(k.stop(), 0, "SIGTERM exit status")
            k = Knit(data, cfg).start()  # restarted without a limit
            ids = [e["id"] for e in k.tail("default", "demo")]
            eq(len(ids), len(set(ids)), "no duplicates")
            missing = [e for e in acked if e not in set(ids)]
            eq(missing, [], "acknowledged events after restart")
            check("again" not in ids, "refused event not stored")
            st, _, _ = k.post("/default/demo", b"z", binary_headers("c0"))
            eq(st, 202, "append after restart")
            print("%s: %d events acked before full" %
                  ("tmpfs" if mounted else "RLIMIT_FSIZE", len(acked)))
            eq(k.stop(), 0, "SIGTERM exit status")
        finally:
            if k.proc:
                k.kill()
                print(k.log_text())
    finally:
        if mounted:
            subprocess.run(["umount", "-l", mnt])
        tmp.cleanup()


run(main)
