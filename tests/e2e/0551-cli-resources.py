"""0551-cli-resources: apply / get / describe / delete against a real
`knit serve`.

apply from a file, a directory and stdin (created / unchanged /
configured), get as a table and as -o json|yaml|name with -n and -A, kind
aliases, describe with conditions, a bad YAML file reported as
file:line: path and applying nothing (exit 1), a directory applied
atomically, delete and "not found".
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import (Daemon, check, cli_wait_ready, fails,  # noqa: E402
                      knit_bin, ok, write_file)

BROKER = """apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: {name}
  namespace: {ns}
spec:
  delivery:
    retry: {retry}
"""


def broker(name, ns="default", retry=3):
    return BROKER.format(name=name, ns=ns, retry=retry)


def test_apply(d, tmp):
    demo = write_file(os.path.join(tmp, "demo.yaml"), broker("demo"))
    p = ok(d.cli("apply", "-f", demo), "apply demo")
    check(p.stdout == "broker.eventing.knative.dev/demo created\n",
          "created line", p)
    p = ok(d.cli("apply", "-f", demo), "apply again")
    check(p.stdout == "broker.eventing.knative.dev/demo unchanged\n",
          "unchanged line", p)
    write_file(demo, broker("demo", retry=5))
    p = ok(d.cli("apply", "-f", demo), "apply changed")
    check(p.stdout == "broker.eventing.knative.dev/demo configured\n",
          "configured line", p)

    cfg = os.path.join(tmp, "cfg")
    write_file(os.path.join(cfg, "a.yaml"), broker("alpha"))
    write_file(os.path.join(cfg, "b.yml"), broker("beta", ns="team"))
    write_file(os.path.join(cfg, "notes.txt"), "not yaml: [")
    write_file(os.path.join(cfg, ".hidden.yaml"), "not yaml: [")
    p = ok(d.cli("apply", "-f", cfg), "apply a directory")
    check(p.stdout == "broker.eventing.knative.dev/alpha created\n"
          "broker.eventing.knative.dev/beta created (namespace team)\n",
          "one line per resource, in file order", p)

    p = ok(d.cli("apply", "-f", "-", stdin=broker("gamma")), "stdin")
    check(p.stdout == "broker.eventing.knative.dev/gamma created\n",
          "stdin created", p)


def test_get(d):
    res = cli_wait_ready(d, "demo")
    check(res["kind"] == "Broker" and res["metadata"]["name"] == "demo" and
          res["spec"]["delivery"]["retry"] == 5, "-o json is the resource")
    url = res["status"]["address"]["url"]
    check(url.endswith("/default/demo"), "address url %r" % url)

    p = ok(d.cli("get", "brokers"), "get brokers")
    lines = p.stdout.splitlines()
    check(lines[0].split() == ["NAME", "NAMESPACE", "READY", "REASON", "AGE",
                               "URL"], "table header", p)
    names = [line.split()[0] for line in lines[1:]]
    check(names == ["alpha", "demo", "gamma"], "default namespace rows", p)
    row = [line for line in lines if line.startswith("demo ")][0].split()
    check(row[1] == "default" and row[2] == "True" and row[-1] == url,
          "demo row: namespace, READY, URL", p)

    p = ok(d.cli("get", "brokers", "-n", "team"), "-n team")
    check([x.split()[0] for x in p.stdout.splitlines()[1:]] == ["beta"],
          "-n filters", p)
    p = ok(d.cli("get", "brokers", "-A"), "-A")
    check(len(p.stdout.splitlines()) == 5, "-A lists all four", p)
    p = ok(d.cli("get", "brokers", "-n", "empty"), "empty namespace")
    check(p.stdout == "" and "No resources found" in p.stderr,
          "nothing found message", p)

    for alias in ("broker", "Broker", "BROKERS",
                  "brokers.eventing.knative.dev"):
        p = ok(d.cli("get", alias, "demo", "-o", "name"), "alias " + alias)
        check(p.stdout == "broker.eventing.knative.dev/demo\n",
              "-o name via " + alias, p)
    p = ok(d.cli("get", "brokers", "-A", "-o", "json"), "list json")
    lst = json.loads(p.stdout)
    check(lst["kind"] == "List" and len(lst["items"]) == 4, "List of 4", p)
    p = ok(d.cli("get", "broker", "demo", "-o", "yaml"), "yaml")
    check("kind: Broker\n" in p.stdout and "name: demo\n" in p.stdout and
          "retry: 5\n" in p.stdout, "yaml output", p)

    p = fails(d.cli("get", "broker", "nope"), "unknown name")
    check("nope" in p.stderr, "names the broker", p)


def test_describe(d):
    p = ok(d.cli("describe", "broker", "demo"), "describe")
    out = p.stdout
    for want in ("Name:         demo\n", "Namespace:    default\n",
                 "Kind:         Broker (eventing.knative.dev/v1)\n",
                 "\nSpec:\n", "retry: 5", "\nConditions:\n", "Ready",
                 "LAST TRANSITION"):
        check(want in out, "describe shows %r" % want, p)
    p = ok(d.cli("describe", "broker", "beta", "-n", "team"), "-n")
    check("Namespace:    team\n" in p.stdout, "describe -n", p)
    fails(d.cli("describe", "broker", "nope"), "describe unknown")


def test_bad_yaml(d, tmp):
    # Atomic: a good document and a bad one → nothing is applied.
    bad = write_file(os.path.join(tmp, "bad.yaml"),
                broker("fine") + "---\n" + broker("broken", retry=-1))
    p = fails(d.cli("apply", "-f", "bad.yaml", cwd=tmp), "bad value")
    check(p.stderr.startswith("bad.yaml:17: spec.delivery.retry: "),
          "file:line: path: message", p)
    fails(d.cli("get", "broker", "fine"), "nothing applied")
    write_file(bad, "apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
          "metadata:\n  name: x\n  bogus: [1, 2\n")
    p = fails(d.cli("apply", "-f", "bad.yaml", cwd=tmp), "syntax error")
    check(p.stderr.startswith("bad.yaml:"), "syntax error has file:line", p)
    p = fails(d.cli("apply", "-f", "-", stdin="kind: Broker\n" +
                     "metadata: {name: Bad_Name}\n"), "stdin error")
    check(p.stderr.startswith("<stdin>:"), "stdin is named <stdin>", p)
    # Atomic across the files of a directory: a good file and a bad one in
    # one apply → nothing is applied, and the error names the bad file.
    mixed = os.path.join(tmp, "mixed")
    write_file(os.path.join(mixed, "a-good.yaml"), broker("dirgood"))
    write_file(os.path.join(mixed, "b-bad.yaml"), broker("dirbad", retry=-1))
    p = fails(d.cli("apply", "-f", mixed), "directory with a bad file")
    check("b-bad.yaml:" in p.stderr and "spec.delivery.retry" in p.stderr,
          "error names the bad file and field", p)
    fails(d.cli("get", "broker", "dirgood"), "good file not applied either")


def test_delete(d, tmp):
    demo = os.path.join(tmp, "demo.yaml")
    p = ok(d.cli("delete", "-f", demo), "delete")
    check(p.stdout == "broker.eventing.knative.dev/demo deleted\n",
          "deleted line", p)
    fails(d.cli("get", "broker", "demo"), "gone")
    p = d.cli("delete", "-f", demo)
    check(p.returncode == 1 and "demo not found" in p.stdout,
          "deleting again: not found, exit 1", p)
    p = ok(d.cli("delete", "-f", demo, "--ignore-not-found"),
           "--ignore-not-found")
    p = ok(d.cli("delete", "-f", os.path.join(tmp, "cfg")), "delete dir")
    check("alpha deleted" in p.stdout and "beta deleted" in p.stdout,
          "directory deleted", p)


def main():
    knit_bin()
    with Daemon() as d:
        tmp = os.path.join(d.dir, "yaml")
        test_apply(d, tmp)
        test_get(d)
        test_describe(d)
        test_bad_yaml(d, tmp)
        test_delete(d, tmp)
    print("ok")


if __name__ == "__main__":
    main()
