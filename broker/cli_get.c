/*
 * cli_get.c — `knit get KIND [NAME]` (a table, or -o yaml|json|name) and
 * `knit describe KIND NAME` (metadata, spec, status conditions), both read
 * from the admin API's /v1/resources.
 */
#include "broker/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"

/* ------------------------------------------------------------ shared */

/* Resolves KIND or prints the usage error; NULL when unknown. */
static const kn_cli_kind *
kind_arg(const kn_cli_spec *spec, const char *s)
{
    const kn_cli_kind *k = kn_cli_kind_lookup(s);
    char list[512];

    if (k == NULL) {
        kn_cli_kind_list(list, sizeof(list));
        kn_cli_usage_error(spec, "unknown resource kind \"%s\" (known: %s)", s,
                           list);
    }
    return k;
}

/* /v1/resources/PLURAL[/NS/NAME | ?namespace=NS] */
static int
resource_path(ce_buf *path, const kn_cli_kind *k, const char *ns,
              const char *name, bool all)
{
    const char *segs[] = {"v1", "resources", k->plural, ns, name};
    int rc;

    if (name != NULL)
        return kn_cli_url_segments(path, segs, 5);
    rc = kn_cli_url_segments(path, segs, 3);
    if (rc == 0 && !all) {
        rc = ce_buf_puts(path, "?namespace=");
        if (rc == 0)
            rc = kn_cli_url_escape(path, ns);
    }
    return rc;
}

/* See cli.h. */
int
kn_cli_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    if (s == NULL)
        return kn_cli_fail("out of memory");
    printf("%s\n", s);
    free(s);
    return KN_EXIT_OK;
}

/* -o json or -o yaml. */
static int
emit(const json_t *j, const char *fmt)
{
    ce_buf b = CE_BUF_INIT;
    int rc = KN_EXIT_OK;

    if (strcmp(fmt, "json") == 0)
        return kn_cli_print_json(j);
    if (kn_yaml_emit(j, &b) != 0)
        rc = kn_cli_fail("cannot format the answer as YAML");
    else
        fputs(b.data ? b.data : "", stdout);
    ce_buf_free(&b);
    return rc;
}

static const char *
meta(const json_t *r, const char *field)
{
    const json_t *m = json_object_get(r, "metadata");
    const char *s = json_string_value(json_object_get(m, field));

    return s ? s : "";
}

/* ---------------------------------------------------------------- get */

static int
cmp_items(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(meta(x, "namespace"), meta(y, "namespace"));

    return c ? c : strcmp(meta(x, "name"), meta(y, "name"));
}

/* The items in namespace/name order (borrowed references). */
static json_t **
sorted_items(const json_t *items, size_t *n)
{
    size_t cnt = json_array_size(items);
    json_t **v = calloc(cnt ? cnt : 1, sizeof(*v));

    *n = 0;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < cnt; i++)
        v[i] = json_array_get(items, i);
    qsort(v, cnt, sizeof(*v), cmp_items);
    *n = cnt;
    return v;
}

static int
add_row(kn_cli_table *t, const kn_cli_kind *k, const json_t *r, int64_t now)
{
    const json_t *ready = kn_cli_condition(r, "Ready");
    const char *cells[7];
    char age[32];
    size_t n = 0;

    kn_cli_format_age_since(
        kn_cli_json_str(r, "metadata.creationTimestamp", NULL), now, age,
        sizeof(age));
    cells[n++] = meta(r, "name");
    cells[n++] = meta(r, "namespace");
    cells[n++] = ready ? kn_cli_json_str(ready, "status", "Unknown") : "-";
    cells[n++] = ready ? kn_cli_json_str(ready, "reason", "") : "";
    cells[n++] = age;
    for (int i = 0; i < 2 && k->col[i]; i++)
        cells[n++] = kn_cli_json_str(r, k->path[i], "");
    return kn_cli_table_add(t, cells);
}

static int
print_table(const kn_cli_kind *k, json_t **items, size_t n)
{
    const char *hdr[7] = {"NAME", "NAMESPACE", "READY", "REASON", "AGE"};
    size_t ncols = 5;
    kn_cli_table t;
    ce_buf out = CE_BUF_INIT;
    int64_t now = (int64_t)time(NULL);
    int rc = 0;

    for (int i = 0; i < 2 && k->col[i]; i++)
        hdr[ncols++] = k->col[i];
    rc = kn_cli_table_init(&t, hdr, ncols);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = add_row(&t, k, items[i], now);
    if (rc == 0)
        rc = kn_cli_table_render(&t, &out);
    if (rc == 0)
        fputs(out.data, stdout);
    kn_cli_table_free(&t);
    ce_buf_free(&out);
    return rc ? kn_cli_fail("out of memory") : KN_EXIT_OK;
}

static int
print_names(json_t **items, size_t n)
{
    char ref[320];

    for (size_t i = 0; i < n; i++) {
        const char *api = kn_cli_json_str(items[i], "apiVersion", NULL);
        const char *kind = kn_cli_json_str(items[i], "kind", "unknown");
        kn_cli_resource_ref(kind, api, meta(items[i], "name"), ref,
                            sizeof(ref));
        printf("%s\n", ref);
    }
    return KN_EXIT_OK;
}

/* Output of a list answer in the chosen format. */
static int
print_list(const kn_cli_kind *k, const json_t *items, const char *fmt,
           const char *ns)
{
    size_t n;
    json_t **v = sorted_items(items, &n);
    json_t *list;
    int rc;

    if (v == NULL)
        return kn_cli_fail("out of memory");
    if (fmt == NULL && n == 0) {
        if (ns)
            fprintf(stderr, "No resources found in %s namespace.\n", ns);
        else
            fprintf(stderr, "No resources found.\n");
        free(v);
        return KN_EXIT_OK;
    }
    if (fmt == NULL) {
        rc = print_table(k, v, n);
    } else if (strcmp(fmt, "name") == 0) {
        rc = print_names(v, n);
    } else {
        list = json_pack("{s:s, s:s, s:[]}", "apiVersion", "v1", "kind", "List",
                         "items");
        for (size_t i = 0; list && i < n; i++)
            json_array_append(json_object_get(list, "items"), v[i]);
        if (list == NULL)
            rc = kn_cli_fail("out of memory");
        else
            rc = emit(list, fmt);
        json_decref(list);
    }
    free(v);
    return rc;
}

static int
print_one(const kn_cli_kind *k, json_t *r, const char *fmt)
{
    if (fmt == NULL)
        return print_table(k, &r, 1);
    if (strcmp(fmt, "name") == 0)
        return print_names(&r, 1);
    return emit(r, fmt);
}

static const kn_cli_opt get_opts[] = {
    {"namespace", 'n', KN_CLI_VALUE, "NS", "namespace (default \"default\")"},
    {"all-namespaces", 'A', KN_CLI_FLAG, NULL, "list across all namespaces"},
    {"output", 'o', KN_CLI_VALUE, "FORMAT",
     "yaml, json or name (default: a table)"},
    KN_CLI_OPT_ADMIN,
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_spec get_spec = {
    .name = "get",
    .args = "KIND [NAME]",
    .summary =
        "Lists resources of a kind, or shows one, with their Ready condition.\n"
        "KIND is singular, plural or short: broker(s), trigger(s), cm, imc,\n"
        "ksvc, ...",
    .opts = get_opts,
    .min_pos = 1,
    .max_pos = 2,
    .details =
        "Examples:\n"
        "  knit get brokers\n"
        "  knit get broker demo -o yaml\n"
        "  knit get triggers -A\n\n",
};

static int
get_run(const kn_cli_args *a, const kn_cli_kind *k)
{
    const char *fmt = kn_cli_args_get(a, "output");
    const char *ns = kn_cli_args_get(a, "namespace");
    bool all = kn_cli_args_has(a, "all-namespaces");
    ce_buf path = CE_BUF_INIT;
    char err[512];
    json_t *res = NULL;
    kn_cli c;
    int rc = KN_EXIT_FAIL;

    if (kn_cli_init(&c, kn_cli_args_get(a, "admin"), err, sizeof(err)) != 0)
        return kn_cli_fail("%s", err);
    if (ns == NULL)
        ns = "default";
    if (resource_path(&path, k, ns, a->npos == 2 ? a->pos[1] : NULL, all) !=
        0) {
        rc = kn_cli_fail("out of memory");
        goto out;
    }
    if (kn_cli_admin_get(&c, path.data, &res) != 0)
        goto out;
    if (a->npos == 2)
        rc = print_one(k, res, fmt);
    else if (!json_is_array(json_object_get(res, "items")))
        rc = kn_cli_fail("the admin API answered %s without an items list",
                         path.data);
    else
        rc = print_list(k, json_object_get(res, "items"), fmt, all ? NULL : ns);
out:
    json_decref(res);
    ce_buf_free(&path);
    return rc;
}

int
kn_cli_get(int argc, char **argv)
{
    const kn_cli_spec *spec = &get_spec;
    const kn_cli_kind *k;
    const char *fmt;
    kn_cli_args a;
    int rc = kn_cli_parse(spec, argc, argv, &a);

    if (rc != KN_CLI_ARGS_OK) {
        kn_cli_args_free(&a);
        return rc == KN_CLI_ARGS_HELP ? KN_EXIT_OK : KN_EXIT_USAGE;
    }
    fmt = kn_cli_args_get(&a, "output");
    if ((k = kind_arg(spec, a.pos[0])) == NULL)
        rc = KN_EXIT_USAGE;
    else if (fmt && strcmp(fmt, "yaml") && strcmp(fmt, "json") &&
             strcmp(fmt, "name"))
        rc = kn_cli_usage_error(spec,
                                "unknown output format \"%s\" "
                                "(yaml, json or name)",
                                fmt);
    else if (kn_cli_args_has(&a, "all-namespaces") && a.npos == 2)
        rc = kn_cli_usage_error(spec, "a NAME cannot be used with -A");
    else if (kn_cli_args_has(&a, "all-namespaces") &&
             kn_cli_args_has(&a, "namespace"))
        rc = kn_cli_usage_error(spec, "-n and -A cannot be used together");
    else
        rc = get_run(&a, k);
    kn_cli_args_free(&a);
    return rc;
}

/* ----------------------------------------------------------- describe */

/* Appends text with every line prefixed by `indent`. */
static int
put_indented(ce_buf *out, const char *text, const char *indent)
{
    int rc = 0;

    while (*text && rc == 0) {
        size_t l = strcspn(text, "\n");
        rc = ce_buf_printf(out, "%s%.*s\n", indent, (int)l, text);
        text += l + (text[l] == '\n');
    }
    return rc;
}

static int
put_map(ce_buf *out, const char *label, const json_t *m)
{
    const char *key;
    json_t *v;
    bool first = true;
    int rc = 0;

    if (json_object_size(m) == 0)
        return ce_buf_printf(out, "%-14s<none>\n", label);
    json_object_foreach ((json_t *)(uintptr_t)m, key, v) {
        const char *s = json_string_value(v);
        rc |= ce_buf_printf(out, "%-14s%s=%s\n", first ? label : "", key,
                            s ? s : "");
        first = false;
    }
    return rc;
}

/* A section such as "Spec:" with the member as indented YAML. */
static int
put_section(ce_buf *out, const char *key, const json_t *v)
{
    ce_buf y = CE_BUF_INIT;
    int rc;

    if ((json_is_object(v) && json_object_size(v) == 0) || json_is_null(v))
        return ce_buf_printf(out, "\n%c%s:  <none>\n", (char)(key[0] & ~0x20),
                             key + 1);
    rc = ce_buf_printf(out, "\n%c%s:\n", (char)(key[0] & ~0x20), key + 1);
    if (rc == 0 && (rc = kn_yaml_emit(v, &y)) == 0)
        rc = put_indented(out, y.data ? y.data : "", "  ");
    ce_buf_free(&y);
    return rc;
}

static int
put_conditions(ce_buf *out, const json_t *conds)
{
    const char *hdr[] = {"TYPE", "STATUS", "REASON", "LAST TRANSITION",
                         "MESSAGE"};
    kn_cli_table t;
    ce_buf tb = CE_BUF_INIT;
    size_t i;
    json_t *c;
    int rc;

    if (json_array_size(conds) == 0)
        return ce_buf_puts(out, "\nConditions:  <none>\n");
    rc = kn_cli_table_init(&t, hdr, 5);
    json_array_foreach (conds, i, c) {
        const char *row[] = {
            kn_cli_json_str(c, "type", ""),
            kn_cli_json_str(c, "status", ""),
            kn_cli_json_str(c, "reason", ""),
            kn_cli_json_str(c, "lastTransitionTime", ""),
            kn_cli_json_str(c, "message", ""),
        };
        rc |= kn_cli_table_add(&t, row);
    }
    rc |= ce_buf_puts(out, "\nConditions:\n");
    if (rc == 0 && (rc = kn_cli_table_render(&t, &tb)) == 0)
        rc = put_indented(out, tb.data, "  ");
    kn_cli_table_free(&t);
    ce_buf_free(&tb);
    return rc;
}

/* Status members other than conditions/address, as YAML. */
static int
put_status_rest(ce_buf *out, const json_t *status)
{
    json_t *rest = json_deep_copy(status);
    int rc = 0;

    if (rest == NULL)
        return 0;
    json_object_del(rest, "conditions");
    json_object_del(rest, "address");
    if (json_object_size(rest) > 0)
        rc = put_section(out, "status", rest);
    json_decref(rest);
    return rc;
}

static int
describe_text(const json_t *r, ce_buf *out)
{
    const json_t *m = json_object_get(r, "metadata");
    const char *created =
        kn_cli_json_str(r, "metadata.creationTimestamp", NULL);
    const char *url = kn_cli_json_str(r, "status.address.url", NULL);
    json_t *gen = json_object_get(m, "generation");
    const char *key;
    json_t *v;
    char age[32];
    int rc = 0;

    kn_cli_format_age_since(created, (int64_t)time(NULL), age, sizeof(age));
    rc |= ce_buf_printf(out, "%-14s%s\n%-14s%s\n%-14s%s (%s)\n",
                        "Name:", meta(r, "name"),
                        "Namespace:", meta(r, "namespace"),
                        "Kind:", kn_cli_json_str(r, "kind", ""),
                        kn_cli_json_str(r, "apiVersion", ""));
    rc |= put_map(out, "Labels:", json_object_get(m, "labels"));
    rc |= put_map(out, "Annotations:", json_object_get(m, "annotations"));
    if (json_is_integer(gen))
        rc |= ce_buf_printf(out, "%-14s%lld\n",
                            "Generation:", (long long)json_integer_value(gen));
    if (created)
        rc |=
            ce_buf_printf(out, "%-14s%s (%s ago)\n", "Created:", created, age);
    if (url)
        rc |= ce_buf_printf(out, "%-14s%s\n", "Address:", url);
    json_object_foreach ((json_t *)(uintptr_t)r, key, v) {
        if (strcmp(key, "apiVersion") && strcmp(key, "kind") &&
            strcmp(key, "metadata") && strcmp(key, "status") && key[0])
            rc |= put_section(out, key, v);
    }
    rc |= put_status_rest(out, json_object_get(r, "status"));
    rc |= put_conditions(out, kn_cli_json_path(r, "status.conditions"));
    return rc ? -1 : 0;
}

static const kn_cli_opt describe_opts[] = {
    {"namespace", 'n', KN_CLI_VALUE, "NS", "namespace (default \"default\")"},
    KN_CLI_OPT_ADMIN,
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_spec describe_spec = {
    .name = "describe",
    .args = "KIND NAME",
    .summary =
        "Shows one resource in detail: metadata, spec, and its status\n"
        "conditions (type, status, reason, last transition, message).",
    .opts = describe_opts,
    .min_pos = 2,
    .max_pos = 2,
    .details =
        "Example:\n"
        "  knit describe broker demo\n\n",
};

int
kn_cli_describe(int argc, char **argv)
{
    const kn_cli_spec *spec = &describe_spec;
    const kn_cli_kind *k;
    const char *ns;
    ce_buf path = CE_BUF_INIT, out = CE_BUF_INIT;
    char err[512];
    json_t *res = NULL;
    kn_cli c;
    kn_cli_args a;
    int rc = kn_cli_parse(spec, argc, argv, &a);

    if (rc != KN_CLI_ARGS_OK) {
        kn_cli_args_free(&a);
        return rc == KN_CLI_ARGS_HELP ? KN_EXIT_OK : KN_EXIT_USAGE;
    }
    rc = KN_EXIT_FAIL;
    if ((k = kind_arg(spec, a.pos[0])) == NULL) {
        rc = KN_EXIT_USAGE;
        goto out;
    }
    if (kn_cli_init(&c, kn_cli_args_get(&a, "admin"), err, sizeof(err)) != 0) {
        rc = kn_cli_fail("%s", err);
        goto out;
    }
    ns = kn_cli_args_get(&a, "namespace");
    if (resource_path(&path, k, ns ? ns : "default", a.pos[1], false) != 0) {
        rc = kn_cli_fail("out of memory");
        goto out;
    }
    if (kn_cli_admin_get(&c, path.data, &res) != 0)
        goto out;
    if (describe_text(res, &out) != 0) {
        rc = kn_cli_fail("cannot format the resource");
        goto out;
    }
    fputs(out.data, stdout);
    rc = KN_EXIT_OK;
out:
    json_decref(res);
    ce_buf_free(&path);
    ce_buf_free(&out);
    kn_cli_args_free(&a);
    return rc;
}
