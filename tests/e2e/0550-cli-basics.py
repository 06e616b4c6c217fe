"""0550-cli-basics: the `knit` command line without a daemon.

help and --help on every command, version, usage errors (exit 2),
"cannot reach the admin API" (one line, exit 1, --admin and KNIT_ADMIN),
and `knit send`'s local validation, which names the attribute and flag.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import check, fails, free_port, knit, knit_bin, ok  # noqa: E402

COMMANDS = ["serve", "apply", "delete", "get", "describe", "send", "tail",
            "event-display", "version"]


def test_help():
    p = knit()
    check(p.returncode == 2 and "Usage: knit COMMAND" in p.stderr,
          "no arguments: the command list on stderr, exit 2", p)
    p = ok(knit("help"), "knit help")
    for c in COMMANDS:
        check("\n  %s " % c in p.stdout, "knit help lists " + c, p)
    ok(knit("--help"), "knit --help")
    for c in COMMANDS:
        p = ok(knit(c, "--help"), "knit %s --help" % c)
        check("usage" in p.stdout.lower() and c in p.stdout,
              "knit %s --help prints its usage" % c, p)
    p = ok(knit("help", "get"), "knit help get")
    check(p.stdout.startswith("Usage: knit get KIND [NAME]"),
          "help get = get --help", p)
    p = ok(knit("send", "-h"), "-h")
    for flag in ["--broker", "--type", "--source", "--id", "--data",
                 "--data-file", "--content-type", "--ext", "--mode",
                 "--url", "--admin"]:
        check(flag in p.stdout, "send --help mentions " + flag, p)


def test_usage_errors():
    p = fails(knit("frobnicate"), "unknown command", rc=2)
    check('unknown command "frobnicate"' in p.stderr, "names it", p)
    p = fails(knit("get", "brokers", "--bogus"), "unknown flag", rc=2)
    check(p.stderr.startswith("knit get: unknown option --bogus"),
          "names the flag", p)
    p = fails(knit("get"), "missing KIND", rc=2)
    p = fails(knit("get", "gizmos"), "unknown kind", rc=2)
    check('unknown resource kind "gizmos"' in p.stderr and
          "brokers" in p.stderr, "lists the known kinds", p)
    fails(knit("get", "brokers", "-o", "xml"), "bad -o", rc=2)
    fails(knit("get", "brokers", "x", "-A"), "NAME with -A", rc=2)
    fails(knit("apply"), "apply without -f", rc=2)
    fails(knit("tail", "nonsense"), "tail without NS/NAME", rc=2)
    p = fails(knit("tail", "a/b", "--filter", "type = "), "bad CESQL", rc=2)
    check("invalid --filter at byte 7" in p.stderr, "says where", p)
    fails(knit("tail", "a/b", "--filter", "1 + 1"), "non-Boolean", rc=2)
    fails(knit("send", "--type", "t", "--source", "/s"),
          "send without --broker", rc=2)
    fails(knit("send", "--broker", "demo", "--type", "t", "--source", "/s"),
          "--broker not NS/NAME", rc=2)
    fails(knit("send", "--broker", "a/b", "--mode", "batch", "--type", "t",
               "--source", "/s"), "bad --mode", rc=2)


def test_version():
    port = free_port()
    p = ok(knit("version", "--admin", "127.0.0.1:%d" % port),
           "version without a daemon")
    check("Client: knit 0." in p.stdout, "client version", p)
    check("not reachable" in p.stdout, "server not reachable", p)
    p = ok(knit("--version", admin="127.0.0.1:%d" % port), "--version")
    check("Client: knit" in p.stdout, "--version = version", p)


def test_daemon_down():
    port = free_port()
    addr = "127.0.0.1:%d" % port
    want = ("knit: cannot reach the admin API at %s: Connection refused"
            % addr)
    for args in (["get", "brokers"], ["describe", "broker", "demo"],
                 ["tail", "default/demo"]):
        p = fails(knit(*args, "--admin", addr), "%s, daemon down" % args)
        check(p.stderr.strip() == want, "exact message for %s" % args, p)
    # KNIT_ADMIN is used when --admin is absent; --admin wins over it.
    p = fails(knit("get", "brokers", admin=addr), "KNIT_ADMIN")
    check(p.stderr.strip() == want, "KNIT_ADMIN honoured", p)
    p = fails(knit("get", "brokers", "--admin", addr,
                   admin="127.0.0.1:1"), "--admin over KNIT_ADMIN")
    check(addr in p.stderr, "--admin wins", p)
    here = os.path.dirname(os.path.abspath(__file__))
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                       "knit-0550-%d.yaml" % os.getpid())
    with open(tmp, "w") as f:
        f.write("apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
                "metadata:\n  name: demo\n")
    try:
        p = fails(knit("apply", "-f", tmp, "--admin", addr), "apply, down")
        check(p.stderr.strip() == want, "apply message", p)
    finally:
        os.unlink(tmp)
    p = fails(knit("apply", "-f", os.path.join(here, "no-such.yaml"),
                   "--admin", addr), "apply, missing file")
    check("cannot read" in p.stderr and "no-such.yaml" in p.stderr,
          "names the file", p)


def test_send_validation():
    port = free_port()
    base = ["send", "--broker", "default/demo", "--admin",
            "127.0.0.1:%d" % port]
    env = {"KNIT_INGRESS": "127.0.0.1:%d" % port}
    p = fails(knit(*base, "--source", "/s", env=env), "missing --type")
    check("type" in p.stderr and "--type" in p.stderr, "names type", p)
    p = fails(knit(*base, "--type", "t", env=env), "missing --source")
    check("source" in p.stderr and "--source" in p.stderr, "names source",
          p)
    p = fails(knit(*base, "--type", "t", "--source", "has space", env=env),
              "bad source")
    check("--source" in p.stderr and "has space" in p.stderr,
          "names the value", p)
    p = fails(knit(*base, "--type", "t", "--source", "/s", "--ext",
                   "Region=eu", env=env), "bad extension name")
    check("Region=eu" in p.stderr, "names the extension", p)
    p = fails(knit(*base, "--type", "t", "--source", "/s", "--ext", "id=x",
                   env=env), "core attribute via --ext")
    check("--id" in p.stderr, "points to --id", p)
    p = fails(knit(*base, "--type", "t", "--source", "/s", "--time",
                   "yesterday", env=env), "bad time")
    check("--time" in p.stderr, "names --time", p)
    # A valid event, nobody listening: the ingress URL is in the message.
    p = fails(knit(*base, "--type", "t", "--source", "/s", env=env),
              "ingress down")
    check(p.stderr.strip() == "knit: cannot reach the ingress at "
          "http://127.0.0.1:%d/default/demo: Connection refused" % port,
          "ingress message", p)


def main():
    knit_bin()
    test_help()
    test_usage_errors()
    test_version()
    test_daemon_down()
    test_send_validation()
    print("ok")


if __name__ == "__main__":
    main()
