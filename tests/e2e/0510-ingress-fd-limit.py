"""0510-ingress-fd-limit: knit runs out of file descriptors (RLIMIT_NOFILE
64) because clients hold more connections open than it can accept. It
must keep serving the connections it has, pause accepting instead of
spinning on the ever-readable listening socket (the warning appears at
most once per HTTP loop, not once per attempt), and accept again once
descriptors are free: new connections then get their 202."""

import http.client
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import (Knit, TempDir, binary_headers, broker_yaml,  # noqa: E402
                      check, eq, run, wait_for)

LIMIT = 64
P = "/default/demo"


def low_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def post_on(conn, id_):
    conn.request("POST", P, body=b"x", headers=binary_headers(id_))
    r = conn.getresponse()
    r.read()
    return r.status


def main():
    tmp = TempDir()
    k = None
    held = []
    try:
        tmp.write("config/b.yaml", broker_yaml("demo"))
        k = Knit(tmp.sub("data"), tmp.sub("config"),
                 preexec=low_fd_limit).start()
        early = http.client.HTTPConnection("127.0.0.1", k.ingress,
                                           timeout=10)
        eq(post_on(early, "early-0"), 202, "before the limit")
        # more connections than knit has descriptors left: the kernel
        # completes them (backlog), knit can accept only some
        for _ in range(LIMIT + 40):
            held.append(socket.create_connection(("127.0.0.1", k.ingress),
                                                 timeout=10))
        wait_for(lambda: "cannot accept connections" in k.log_text(),
                 "the accept warning")
        time.sleep(1.0)  # a spinning loop would log (or burn CPU) here
        eq(post_on(early, "early-1"), 202,
           "an accepted connection is served while accept is paused")
        warnings = k.log_text().count("cannot accept connections")
        check(1 <= warnings <= 4,
              "accept warnings are rate-limited (%d)" % warnings)
        for s in held:
            s.close()
        held.clear()

        def fresh_post():
            try:
                c = http.client.HTTPConnection("127.0.0.1", k.ingress,
                                               timeout=5)
                try:
                    return post_on(c, "late-0") == 202
                finally:
                    c.close()
            except OSError:
                return False
        wait_for(fresh_post, "a new connection accepted and answered")
        early.close()
        eq(k.stop(), 0, "SIGTERM exit status")
    finally:
        for s in held:
            s.close()
        if k and k.proc:
            k.kill()
            print(k.log_text())
        tmp.cleanup()


run(main)
