/*
 * cli_apply.c — `knit apply -f` and `knit delete -f`: send raw YAML to the
 * admin API (/v1/apply, /v1/delete) and print kubectl-style result lines
 * ("broker.eventing.knative.dev/demo created").
 *
 * Inputs: each -f is a file, "-" (stdin, shown as "<stdin>" in messages) or
 * a directory. A directory stands for its *.yaml and *.yml files (not
 * recursive, hidden files skipped) in byte order of their names. All the
 * files of one command go in ONE request ({"files":[{"name","content"}]})
 * and are applied atomically: one bad document in any file changes
 * nothing. Errors still name the file and line they come from.
 */
#include "broker/cli.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"

typedef struct apply_op {
    const char *verb;      /* "apply" | "delete" */
    const char *endpoint;  /* "/v1/apply" */
    bool ignore_not_found; /* delete only */
    int not_found;         /* delete: results that were "not found" */
} apply_op;

static void
print_result(const json_t *r)
{
    const char *kind = json_string_value(json_object_get(r, "kind"));
    const char *api = json_string_value(json_object_get(r, "apiVersion"));
    const char *ns = json_string_value(json_object_get(r, "namespace"));
    const char *name = json_string_value(json_object_get(r, "name"));
    const char *action = json_string_value(json_object_get(r, "action"));
    char ref[320];

    kn_cli_resource_ref(kind ? kind : "unknown", api, name ? name : "?", ref,
                        sizeof(ref));
    if (ns != NULL && strcmp(ns, "default") != 0)
        printf("%s %s (namespace %s)\n", ref, action ? action : "done", ns);
    else
        printf("%s %s\n", ref, action ? action : "done");
}

/* Reads one file (or stdin) into the request's file list. */
static int
add_file(json_t *files, const char *path, const char *display)
{
    ce_buf body = CE_BUF_INIT;
    kn_err kerr;
    char ebuf[1024];
    int rc = KN_EXIT_FAIL;

    memset(&kerr, 0, sizeof(kerr));
    if (kn_read_file(path, &body, &kerr) != 0) {
        kn_cli_fail("cannot read %s: %s", display,
                    kn_err_str(&kerr, ebuf, sizeof(ebuf)));
        goto out;
    }
    if (json_array_append_new(files,
                              json_pack("{s:s, s:s%}", "name", display,
                                        "content", body.data ? body.data : "",
                                        body.len)) != 0) {
        kn_cli_fail("%s: not valid UTF-8 text or out of memory", display);
        goto out;
    }
    rc = KN_EXIT_OK;
out:
    ce_buf_free(&body);
    return rc;
}

/* POSTs every collected file as one atomic request; prints the results. */
static int
send_files(const kn_cli *c, apply_op *op, json_t *files)
{
    json_t *req = json_pack("{s:O}", "files", files);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_t *res = NULL, *results, *r;
    size_t i;
    int rc = KN_EXIT_FAIL;

    if (!text) {
        kn_cli_fail("out of memory");
        goto out;
    }
    if (kn_cli_admin_post(c, op->endpoint, "application/json", text,
                          strlen(text), &res) != 0)
        goto out;
    results = json_object_get(res, "results");
    if (!json_is_array(results)) {
        kn_cli_fail("the admin API answered %s without a results list",
                    op->endpoint);
        goto out;
    }
    if (json_array_size(results) == 0)
        fprintf(stderr, "knit: warning: no resources in the given files\n");
    json_array_foreach (results, i, r) {
        const char *action = json_string_value(json_object_get(r, "action"));
        print_result(r);
        if (action != NULL && strcmp(action, "not found") == 0)
            op->not_found++;
    }
    rc = KN_EXIT_OK;
out:
    free(text);
    json_decref(req);
    json_decref(res);
    return rc;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
is_yaml_name(const char *n)
{
    size_t l = strlen(n);

    if (n[0] == '.')
        return false;
    return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
           (l > 4 && strcmp(n + l - 4, ".yml") == 0);
}

/* The sorted .yaml and .yml regular files of dir; -1 with a message. */
static int
list_dir(const char *dir, char ***out, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **v = NULL;
    size_t n = 0, cap = 0, dl = strlen(dir);

    *out = NULL;
    *count = 0;
    if (d == NULL)
        return kn_cli_fail("cannot read directory %s: %s", dir,
                           strerror(errno)),
               -1;
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        char *p;

        if (!is_yaml_name(e->d_name))
            continue;
        if (asprintf(&p, "%.*s/%s", (int)dl, dir, e->d_name) < 0)
            goto fail;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nv = realloc(v, nc * sizeof(*nv));
            if (nv == NULL) {
                free(p);
                goto fail;
            }
            v = nv;
            cap = nc;
        }
        v[n++] = p;
    }
    closedir(d);
    if (n > 0)
        qsort(v, n, sizeof(*v), cmp_str);
    *out = v;
    *count = n;
    return 0;
fail:
    closedir(d);
    while (n > 0)
        free(v[--n]);
    free(v);
    return kn_cli_fail("out of memory listing %s", dir), -1;
}

/* Adds a file, "-" or a directory's YAML files to the file list. */
static int
add_path(json_t *files, const char *path)
{
    struct stat st;
    char **names;
    size_t n;
    int rc = KN_EXIT_OK;

    if (strcmp(path, "-") == 0)
        return add_file(files, "-", "<stdin>");
    if (stat(path, &st) != 0)
        return kn_cli_fail("cannot read %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return add_file(files, path, path);
    if (list_dir(path, &names, &n) != 0)
        return KN_EXIT_FAIL;
    if (n == 0)
        rc = kn_cli_fail("no *.yaml or *.yml files in %s", path);
    for (size_t i = 0; i < n && rc == KN_EXIT_OK; i++)
        rc = add_file(files, names[i], names[i]);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int
run(const kn_cli_spec *spec, apply_op *op, int argc, char **argv)
{
    kn_cli_args a;
    kn_cli c;
    char err[512];
    const char *f;
    json_t *files = NULL;
    int rc = kn_cli_parse(spec, argc, argv, &a);

    if (rc != KN_CLI_ARGS_OK) {
        kn_cli_args_free(&a);
        return rc == KN_CLI_ARGS_HELP ? KN_EXIT_OK : KN_EXIT_USAGE;
    }
    if (!kn_cli_args_has(&a, "filename")) {
        rc = kn_cli_usage_error(spec, "-f FILE|DIR|- is required");
        goto out;
    }
    if (kn_cli_init(&c, kn_cli_args_get(&a, "admin"), err, sizeof(err)) != 0) {
        rc = kn_cli_fail("%s", err);
        goto out;
    }
    op->ignore_not_found = kn_cli_args_has(&a, "ignore-not-found");
    files = json_array();
    rc = files ? KN_EXIT_OK : kn_cli_fail("out of memory");
    for (size_t i = 0;
         rc == KN_EXIT_OK && (f = kn_cli_args_nth(&a, "filename", i)) != NULL;
         i++)
        rc = add_path(files, f);
    if (rc == KN_EXIT_OK)
        rc = send_files(&c, op, files);
    if (rc == KN_EXIT_OK && op->not_found > 0 && !op->ignore_not_found)
        rc = KN_EXIT_FAIL;
out:
    json_decref(files);
    kn_cli_args_free(&a);
    return rc;
}

#define FILES_HELP                                                             \
    "A directory stands for its *.yaml and *.yml files (not recursive),\n"     \
    "in name order. Everything given in one command is applied atomically:\n"  \
    "one bad document in any file changes nothing.\n"

static const kn_cli_opt apply_opts[] = {
    {"filename", 'f', KN_CLI_MULTI, "FILE|DIR|-",
     "YAML file, directory of YAML files, or - for stdin"},
    KN_CLI_OPT_ADMIN,
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_spec apply_spec = {
    .name = "apply",
    .summary =
        "Creates or updates resources (Knative YAML, multi-document files) in\n"
        "the running daemon, and prints one line per resource.",
    .opts = apply_opts,
    .details =
        FILES_HELP "\nExamples:\n"
        "  knit apply -f broker.yaml\n"
        "  knit apply -f examples/quickstart/\n"
        "  cat triggers.yaml | knit apply -f -\n\n",
};

int
kn_cli_apply(int argc, char **argv)
{
    apply_op op = {"apply", "/v1/apply", false, 0};

    return run(&apply_spec, &op, argc, argv);
}

static const kn_cli_opt delete_opts[] = {
    {"filename", 'f', KN_CLI_MULTI, "FILE|DIR|-",
     "YAML file, directory of YAML files, or - for stdin"},
    {"ignore-not-found", 0, KN_CLI_FLAG, NULL,
     "exit 0 even when a resource does not exist"},
    KN_CLI_OPT_ADMIN,
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_spec delete_spec = {
    .name = "delete",
    .summary =
        "Deletes the resources named in YAML files (only apiVersion, kind and\n"
        "metadata are used). A resource that does not exist is reported as\n"
        "\"not found\" and makes the exit status 1 unless --ignore-not-found.",
    .opts = delete_opts,
    .details =
        FILES_HELP "\nExample:\n"
        "  knit delete -f broker.yaml\n\n",
};

int
kn_cli_delete(int argc, char **argv)
{
    apply_op op = {"delete", "/v1/delete", false, 0};

    return run(&delete_spec, &op, argc, argv);
}
