"""0570-filter-test: `knit filter test -f TRIGGER.yaml --event EVENT.json`.

Offline (no daemon): match / no match with the failing clause and reason
for each dialect, CESQL values and errors, several triggers in one file,
stdin, and invalid triggers or events (exit 2, file:line and field).
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from knit_e2e import check, knit, knit_bin, write_file  # noqa: E402

TRIGGER = """\
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: orders
spec:
  broker: default
%s
  subscriber:
    uri: http://127.0.0.1:9/
"""

EVENT = """{
  "specversion": "1.0",
  "id": "42",
  "source": "/shop/eu",
  "type": "com.example.order.created",
  "subject": "img/cat.png",
  "priority": %s,
  "datacontenttype": "application/json",
  "data": {"total": 12}
}
"""


def write(d, name, text):
    return write_file(os.path.join(d, name), text)


def run(d, filt, prio='"5"', *extra):
    t = write(d, "trigger.yaml", TRIGGER % filt)
    e = write(d, "event.json", EVENT % prio)
    return knit("filter", "test", "-f", t, "--event", e, *extra)


def expect(p, rc, out=None, err=None, what=""):
    check(p.returncode == rc, "%s: exit %d" % (what, rc), p)
    if out is not None:
        check(p.stdout.strip() == out,
              "%s: stdout %r" % (what, out), p)
    if err is not None:
        check(err in p.stderr, "%s: stderr contains %r" % (what, err), p)


def test_dialects(d):
    cases = [
        ("  filter:\n    attributes:\n      type: com.example.order.created",
         0, "match"),
        ("  filter:\n    attributes:\n      type: com.example.order",
         1, 'no match: spec.filter.attributes.type: type is '
            '"com.example.order.created", not "com.example.order"'),
        ("  filter:\n    attributes:\n      region: ''",
         1, "no match: spec.filter.attributes.region: attribute region is "
            "missing"),
        ("  filters:\n  - exact:\n      source: /shop/eu", 0, "match"),
        ("  filters:\n  - prefix:\n      type: com.example.\n"
         "  - suffix:\n      subject: .gif",
         1, 'no match: spec.filters[1].suffix.subject: subject '
            '"img/cat.png" does not end with ".gif"'),
        ("  filters:\n  - any:\n    - exact: {type: a}\n"
         "    - exact: {source: /shop/eu}", 0, "match"),
        ("  filters:\n  - not:\n      prefix: {type: com.}",
         1, "no match: spec.filters[0].not: the negated filter "
            "spec.filters[0].not.prefix.type matched"),
        ("  filters:\n  - all:\n    - exact: {type: com.example.order."
         "created}\n    - cesql: \"INT(priority) > 3\"", 0, "match"),
        ("  filters:\n  - cesql: \"INT(priority) > 7\"",
         1, "no match: spec.filters[0].cesql: CESQL expression evaluated "
            "to false"),
        # filters overrides filter
        ("  filter:\n    attributes:\n      type: nope\n"
         "  filters:\n  - exact: {id: '42'}", 0, "match"),
        # no filter at all: everything matches
        ("", 0, "match"),
    ]
    for filt, rc, out in cases:
        expect(run(d, filt), rc, out, what=filt.strip()[:60])


def test_cesql_outcomes(d):
    p = run(d, "  filters:\n  - cesql: \"INT(priority) > 3\"", '"high"')
    expect(p, 1, what="cast error")
    check("CESQL evaluation error (cast)" in p.stdout and "'high'" in p.stdout,
          "cast error names the kind and the value", p)
    p = run(d, "  filters:\n  - cesql: \"missing = 'x'\"")
    expect(p, 1, what="missing attribute")
    check("(missingAttribute)" in p.stdout and "'missing'" in p.stdout,
          "missing attribute is explained", p)
    p = run(d, "  filters:\n  - cesql: priority")
    expect(p, 1, 'no match: spec.filters[0].cesql: CESQL expression '
           'evaluated to String "5", not Boolean true', what="string value")
    # an Integer extension in JSON is an Integer attribute
    p = run(d, "  filters:\n  - cesql: \"priority + 1 = 6\"", "5")
    expect(p, 0, "match", what="integer attribute")


def test_invalid(d):
    p = run(d, "  filters:\n  - cesql: \"type = \"")
    expect(p, 2, what="CESQL parse error")
    check("trigger.yaml:8: spec.filters[0].cesql: CESQL parse error at "
          "position 8" in p.stderr, "parse error names file:line, path and "
          "position", p)
    check(p.stdout == "", "nothing on stdout for an invalid trigger", p)
    p = run(d, "  filters:\n  - exact: {type: a}\n    prefix: {type: b}")
    expect(p, 2, err="trigger.yaml:8: spec.filters[0]: multiple dialects "
           "found", what="multiple dialects")
    p = run(d, "  filter:\n    attributes:\n      Type: a")
    expect(p, 2, err="trigger.yaml:9: spec.filter.attributes.Type: invalid "
           "attribute name", what="legacy name")
    t = write(d, "trigger.yaml", TRIGGER % "")
    e = write(d, "bad.json", '{"specversion": "1.0",\n "id": 5}\n')
    p = knit("filter", "test", "-f", t, "--event", e)
    expect(p, 2, err="bad.json:2: invalid event: id:", what="bad event")
    e = write(d, "bad.json", '{"specversion": "1.0", "id": "1"}')
    p = knit("filter", "test", "-f", t, "--event", e)
    expect(p, 2, err="invalid event", what="event without source/type")
    b = write(d, "broker.yaml", "apiVersion: eventing.knative.dev/v1\n"
              "kind: Broker\nmetadata:\n  name: default\n")
    p = knit("filter", "test", "-f", b, "--event", write(d, "ev.json",
                                                          EVENT % "1"))
    expect(p, 2, err="no Trigger in the file", what="no trigger")
    p = knit("filter", "test", "-f", os.path.join(d, "nosuch.yaml"),
             "--event", e)
    expect(p, 2, err="nosuch.yaml", what="missing file")
    p = knit("filter", "test", "-f", t)
    expect(p, 2, err="required", what="usage: no --event")
    p = knit("filter", "frob")
    expect(p, 2, what="unknown subcommand")


def test_several_and_stdin(d):
    two = (TRIGGER % "  filters:\n  - prefix: {type: com.}") + "---\n" + (
        TRIGGER % "  filters:\n  - exact: {type: other}").replace(
            "name: orders", "name: others\n  namespace: shop")
    t = write(d, "two.yaml", two)
    e = write(d, "event.json", EVENT % '"1"')
    p = knit("filter", "test", "-f", t, "--event", e)
    expect(p, 1, what="two triggers")
    check(p.stdout.splitlines() == [
        "default/orders: match",
        'shop/others: no match: spec.filters[0].exact.type: type is '
        '"com.example.order.created", not "other"'],
        "one line per trigger", p)
    p = knit("filter", "test", "-f", t, "--event", "-", stdin=EVENT % '"1"')
    expect(p, 1, what="event on stdin")
    p = knit("filter", "test", "-f", "-", "--event", e,
             stdin=TRIGGER % "  filters:\n  - prefix: {type: com.}")
    expect(p, 0, "match", what="trigger on stdin")
    p = knit("filter", "test", "-f", "-", "--event", "-", stdin="")
    expect(p, 2, err="stdin", what="both on stdin")
    p = knit("filter", "test", "--help")
    expect(p, 0, what="--help")
    check("Exit status: 0 match, 1 no match, 2 invalid" in p.stdout,
          "help documents the exit statuses", p)


def main():
    knit_bin()
    with tempfile.TemporaryDirectory(prefix="knit-0570-") as d:
        test_dialects(d)
        test_cesql_outcomes(d)
        test_invalid(d)
        test_several_and_stdin(d)
    print("ok")


if __name__ == "__main__":
    main()
