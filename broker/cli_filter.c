/*
 * cli_filter.c — `knit filter test -f TRIGGER.yaml --event EVENT.json`:
 * evaluates the filter of each Trigger in a YAML file against one event
 * in the CloudEvents JSON format, offline (no daemon), and says why it
 * does not match: the first failing clause and the reason, with the value
 * or the error of a CESQL expression.
 *
 * Output: "match" or "no match: CLAUSE: REASON" (prefixed "NS/NAME: "
 * when the file holds several triggers). Exit status: 0 every trigger
 * matches, 1 one does not, 2 the trigger or the event is invalid (the
 * message names file:line and the field).
 *
 * Triggers are decoded with the resource decoder when the Trigger kind is
 * available (full validation, as `knit apply` does); otherwise only their
 * apiVersion, kind, metadata and filters are checked here.
 */
#include "broker/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/filter/filter.h"
#include "common/common.h"

enum { EXIT_INVALID = 2 };

static const kn_cli_opt test_opts[] = {
    {"filename", 'f', KN_CLI_VALUE, "FILE",
     "YAML file with one or more Triggers (- = stdin)"},
    {"event", 'e', KN_CLI_VALUE, "FILE",
     "the event, CloudEvents JSON format (- = stdin)"},
    {NULL, 0, 0, NULL, NULL},
};

static const kn_cli_spec test_spec = {
    .name = "filter test",
    .summary =
        "Evaluates the filters of the Triggers in a YAML file against one\n"
        "event, without a daemon, and explains a non-match.",
    .opts = test_opts,
    .details =
        "Prints \"match\", or \"no match: CLAUSE: REASON\" where CLAUSE is\n"
        "the path of the first filter that failed (e.g.\n"
        "spec.filters[1].prefix.type) and REASON says why; for a cesql\n"
        "filter, the value it evaluated to or its error. With several\n"
        "triggers each line starts with NS/NAME.\n\n"
        "Exit status: 0 match, 1 no match, 2 invalid trigger or event.\n\n"
        "Example:\n"
        "  knit filter test -f trigger.yaml --event event.json\n",
};

/* "file:line" of a byte offset in buf (1-based line). */
static int
line_of(const char *buf, size_t n, long offset)
{
    int line = 1;
    for (long i = 0; i < offset && (size_t)i < n; i++)
        line += buf[i] == '\n';
    return line;
}

static int
load_event(const char *path, ce_event **out)
{
    ce_buf buf = CE_BUF_INIT;
    kn_err err;
    ce_err ce;

    memset(&ce, 0, sizeof(ce));
    if (kn_read_file(path, &buf, &err) != KN_OK) {
        fprintf(stderr, "knit: %s\n", err.msg);
        ce_buf_free(&buf);
        return -1;
    }
    if (ce_json_decode(buf.data, buf.len, out, &ce) != CE_OK) {
        if (ce.offset >= 0)
            fprintf(stderr, "knit: %s:%d: ", path,
                    line_of(buf.data, buf.len, ce.offset));
        else
            fprintf(stderr, "knit: %s: ", path);
        fprintf(stderr, "invalid event: %s%s%s\n", ce.attr,
                ce.attr[0] ? ": " : "", ce.msg[0] ? ce.msg :
                ce_code_str(ce.code));
        ce_buf_free(&buf);
        return -1;
    }
    ce_buf_free(&buf);
    ce_event_freeze(*out);
    return 0;
}

static const char *
json_str_at(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);
    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

/* Prints "file:line: field: msg" for an error found in doc. */
static void
report(const char *file, const kn_yaml_doc *doc, const kn_err *err)
{
    char buf[1024];

    if (err->where[0]) {
        fprintf(stderr, "knit: %s\n", kn_err_str(err, buf, sizeof(buf)));
        return;
    }
    fprintf(stderr, "knit: %s:%d: %s%s%s\n", file,
            kn_yaml_line(doc, err->field), err->field,
            err->field[0] ? ": " : "", err->msg);
}

/* Checks a Trigger document without the Trigger kind's decoder. */
static int
check_trigger_doc(const char *file, const kn_yaml_doc *doc)
{
    kn_err err;
    const char *api = json_str_at(doc->root, "apiVersion", NULL);
    const char *name = json_str_at(doc->root, "metadata", "name");

    memset(&err, 0, sizeof(err));
    if (!api || strcmp(api, "eventing.knative.dev/v1") != 0)
        kn_err_set_at(&err, KN_INVAL, NULL, "apiVersion",
                      "a Trigger has apiVersion eventing.knative.dev/v1");
    else if (!name || !*name)
        kn_err_set_at(&err, KN_INVAL, NULL, "metadata.name",
                      "a Trigger needs a name");
    else if (!json_is_object(json_object_get(doc->root, "spec")))
        kn_err_set_at(&err, KN_INVAL, NULL, "spec",
                      "a Trigger needs a spec (with broker and subscriber)");
    else
        return 0;
    report(file, doc, &err);
    return -1;
}

/* Compiles one Trigger's filter. Returns 0, or -1 after reporting. */
static int
compile_trigger(const char *file, const kn_yaml_doc *doc, kn_filter **out)
{
    const kn_kind *k = kn_kind_find("Trigger");
    kn_resource *r = NULL;
    const json_t *spec;
    kn_err err;
    int rc;

    memset(&err, 0, sizeof(err));
    if (k && k->supported) {
        if (kn_resource_decode(file, doc, &r, &err) != KN_OK) {
            report(file, doc, &err);
            return -1;
        }
        spec = json_object_get(r->obj, "spec");
    } else {
        if (check_trigger_doc(file, doc) != 0)
            return -1;
        spec = json_object_get(doc->root, "spec");
    }
    rc = kn_filter_compile(spec, "spec", out, &err);
    if (r)
        kn_resource_decref(r);
    if (rc != KN_OK) {
        report(file, doc, &err);
        return -1;
    }
    return 0;
}

static bool
is_trigger(const kn_yaml_doc *doc)
{
    const char *kind = json_str_at(doc->root, "kind", NULL);
    return kind && strcmp(kind, "Trigger") == 0;
}

/* Evaluates every Trigger of the file; returns the exit status. */
static int
run_test(const char *file, const kn_yaml_doc *docs, size_t ndocs,
         const ce_event *ev)
{
    size_t ntrig = 0;
    kn_filter **fs = calloc(ndocs ? ndocs : 1, sizeof(*fs));
    int rc = KN_EXIT_OK;

    if (!fs)
        return kn_cli_fail("out of memory");
    for (size_t i = 0; i < ndocs; i++) {
        if (!is_trigger(&docs[i]))
            continue;
        ntrig++;
        if (compile_trigger(file, &docs[i], &fs[i]) != 0)
            rc = EXIT_INVALID;
    }
    if (ntrig == 0) {
        fprintf(stderr, "knit: %s: no Trigger in the file\n", file);
        rc = EXIT_INVALID;
    }
    for (size_t i = 0; i < ndocs && rc != EXIT_INVALID; i++) {
        kn_filter_explain why;
        const char *ns, *name;

        if (!fs[i])
            continue;
        if (ntrig > 1) {
            ns = json_str_at(docs[i].root, "metadata", "namespace");
            name = json_str_at(docs[i].root, "metadata", "name");
            printf("%s/%s: ", ns && *ns ? ns : "default", name ? name : "");
        }
        if (kn_filter_match(fs[i], ev, &why)) {
            printf("match\n");
        } else {
            printf("no match: %s: %s\n", why.clause, why.reason);
            rc = KN_EXIT_FAIL;
        }
    }
    for (size_t i = 0; i < ndocs; i++)
        kn_filter_free(fs[i]);
    free(fs);
    return rc;
}

static int
filter_test(int argc, char **argv)
{
    kn_cli_args a;
    const char *file, *event;
    ce_buf buf = CE_BUF_INIT;
    kn_yaml_doc *docs = NULL;
    size_t ndocs = 0;
    ce_event *ev = NULL;
    kn_err err;
    int rc = kn_cli_parse(&test_spec, argc, argv, &a);

    if (rc != KN_CLI_ARGS_OK) {
        kn_cli_args_free(&a);
        return rc == KN_CLI_ARGS_HELP ? KN_EXIT_OK : KN_EXIT_USAGE;
    }
    file = kn_cli_args_get(&a, "filename");
    event = kn_cli_args_get(&a, "event");
    if (!file || !event) {
        rc = kn_cli_usage_error(&test_spec, "both -f FILE and --event FILE "
                                "are required");
    } else if (strcmp(file, "-") == 0 && strcmp(event, "-") == 0) {
        rc = kn_cli_usage_error(&test_spec, "only one of -f and --event can "
                                "read stdin");
    } else if (kn_read_file(file, &buf, &err) != KN_OK) {
        fprintf(stderr, "knit: %s\n", err.msg);
        rc = EXIT_INVALID;
    } else if (kn_yaml_load(strcmp(file, "-") == 0 ? "<stdin>" : file,
                            buf.data, buf.len, &docs, &ndocs, &err) < 0) {
        char msg[1024];
        fprintf(stderr, "knit: %s\n", kn_err_str(&err, msg, sizeof(msg)));
        rc = EXIT_INVALID;
    } else if (load_event(event, &ev) != 0) {
        rc = EXIT_INVALID;
    } else {
        rc = run_test(strcmp(file, "-") == 0 ? "<stdin>" : file, docs, ndocs,
                      ev);
    }
    ce_event_unref(ev);
    kn_yaml_docs_free(docs, ndocs);
    ce_buf_free(&buf);
    kn_cli_args_free(&a);
    return rc;
}

static const kn_cli_command filter_commands[] = {
    {"test", "evaluate Trigger filters against an event, offline",
     filter_test},
};

/* `knit filter SUBCOMMAND`. */
int
kn_cli_filter(int argc, char **argv)
{
    return kn_cli_dispatch("knit filter", filter_commands,
                           sizeof(filter_commands) / sizeof(filter_commands[0]),
                           argc - 1, argv + 1);
}
