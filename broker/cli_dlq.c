/*
 * cli_dlq.c — `knit dlq list|replay|purge NS/BROKER [--trigger T]
 * [--id ID]`: the broker's dead-letter store through the admin API
 * (/v1/dlq/NS/BROKER[/replay|/purge]). list prints a table (or the JSON
 * answer with -o json); replay re-drives the entries to their trigger's
 * subscriber; purge removes them.
 */
#include "broker/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"

#define ERROR_COL_MAX 60

static const kn_cli_opt list_opts[] = {
    {"trigger", 't', KN_CLI_VALUE, "NAME", "only this trigger's entries"},
    {"id", 0, KN_CLI_VALUE, "ID", "only this entry (entry id or event id)"},
    {"output", 'o', KN_CLI_VALUE, "FORMAT", "table (default) or json"},
    KN_CLI_OPT_ADMIN,
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_opt change_opts[] = {
    {"trigger", 't', KN_CLI_VALUE, "NAME", "only this trigger's entries"},
    {"id", 0, KN_CLI_VALUE, "ID", "only this entry (entry id or event id)"},
    {"output", 'o', KN_CLI_VALUE, "FORMAT", "text (default) or json"},
    KN_CLI_OPT_ADMIN,
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_spec list_spec = {
    .name = "dlq list",
    .args = "NS/BROKER",
    .summary = "Lists the events kept in a broker's dead-letter store: the\n"
               "ones whose delivery failed with no dead-letter sink (or\n"
               "whose dead-letter sink failed too), with the reason and\n"
               "the last error.",
    .opts = list_opts,
    .min_pos = 1,
    .max_pos = 1,
    .details = "Examples:\n"
               "  knit dlq list default/demo\n"
               "  knit dlq list default/demo --trigger orders -o json\n\n",
};

static const kn_cli_spec replay_spec = {
    .name = "dlq replay",
    .args = "NS/BROKER",
    .summary = "Delivers the events of a broker's dead-letter store again,\n"
               "each to its trigger's current subscriber with the trigger's\n"
               "delivery spec. An entry leaves the store once delivered;\n"
               "if it fails again it is stored again.",
    .opts = change_opts,
    .min_pos = 1,
    .max_pos = 1,
    .details = "Examples:\n"
               "  knit dlq replay default/demo\n"
               "  knit dlq replay default/demo --trigger orders --id 12\n\n",
};

static const kn_cli_spec purge_spec = {
    .name = "dlq purge",
    .args = "NS/BROKER",
    .summary = "Removes events from a broker's dead-letter store (all of\n"
               "them, a trigger's, or one).",
    .opts = change_opts,
    .min_pos = 1,
    .max_pos = 1,
    .details = "Examples:\n"
               "  knit dlq purge default/demo --trigger orders\n\n",
};

/* /v1/dlq/NS/BROKER[/ACTION]?trigger=..&id=.. */
static int
dlq_path(ce_buf *path, const kn_cli_args *a, const char *action,
         const kn_cli_spec *spec)
{
    char ns[64], name[64];
    const char *trig = kn_cli_args_get(a, "trigger");
    const char *id = kn_cli_args_get(a, "id");
    const char *segs[] = {"v1", "dlq", ns, name, action};
    char sep = '?';

    if (!kn_split_ns_name(a->pos[0], ns, sizeof(ns), name, sizeof(name))) {
        if (strchr(a->pos[0], '/') != NULL || strlen(a->pos[0]) >= 64)
            return kn_cli_usage_error(spec, "expected NS/BROKER, got \"%s\"",
                                      a->pos[0]),
                   -1;
        snprintf(ns, sizeof(ns), "default");
        snprintf(name, sizeof(name), "%s", a->pos[0]);
    }
    if (kn_cli_url_segments(path, segs, action ? 5 : 4) != 0)
        return -1;
    if (trig != NULL) {
        ce_buf_printf(path, "%ctrigger=", sep);
        kn_cli_url_escape(path, trig);
        sep = '&';
    }
    if (id != NULL) {
        ce_buf_printf(path, "%cid=", sep);
        kn_cli_url_escape(path, id);
    }
    return path->data ? 0 : -1;
}

/* The error column: one line, cut to ERROR_COL_MAX characters. */
static void
short_error(const char *s, char *out, size_t n)
{
    size_t i = 0;

    for (; s && *s && i + 4 < n && i < ERROR_COL_MAX; s++)
        out[i++] = (*s == '\n' || *s == '\r' || *s == '\t') ? ' ' : *s;
    if (s && *s && i + 4 < n) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

static int
print_table(const json_t *items, long total)
{
    static const char *const hdr[] = {"ID",   "TRIGGER", "REASON", "CODE",
                                      "AGE",  "EVENT-ID", "TYPE",  "ERROR"};
    kn_cli_table t;
    ce_buf out = CE_BUF_INIT;
    int64_t now = (int64_t)time(NULL);
    size_t i;
    json_t *it;

    if (json_array_size(items) == 0) {
        printf("No dead letters.\n");
        return KN_EXIT_OK;
    }
    if (kn_cli_table_init(&t, hdr, 8) != 0)
        return kn_cli_fail("out of memory");
    json_array_foreach(items, i, it) {
        char id[32], code[16], age[32], err[ERROR_COL_MAX + 8];
        const json_t *ev = json_object_get(it, "event");
        const char *cells[8];

        snprintf(id, sizeof(id), "%lld",
                 (long long)json_integer_value(json_object_get(it, "id")));
        snprintf(code, sizeof(code), "%lld",
                 (long long)json_integer_value(json_object_get(it, "code")));
        kn_cli_format_age_since(kn_cli_json_str(it, "time", NULL), now, age,
                                sizeof(age));
        short_error(kn_cli_json_str(it, "error", ""), err, sizeof(err));
        cells[0] = id;
        cells[1] = kn_cli_json_str(it, "trigger", "");
        cells[2] = kn_cli_json_str(it, "reason", "");
        cells[3] = strcmp(code, "0") ? code : "-";
        cells[4] = age;
        cells[5] = kn_cli_json_str(ev, "id", "");
        cells[6] = kn_cli_json_str(ev, "type", "");
        cells[7] = err;
        kn_cli_table_add(&t, cells);
    }
    if (kn_cli_table_render(&t, &out) == 0)
        fputs(out.data ? out.data : "", stdout);
    if (total > (long)json_array_size(items))
        printf("(%zu of %ld shown)\n", json_array_size(items), total);
    ce_buf_free(&out);
    kn_cli_table_free(&t);
    return KN_EXIT_OK;
}

/* Common body of the three commands. */
static int
dlq_run(const kn_cli_spec *spec, int argc, char **argv, const char *action)
{
    kn_cli_args a;
    kn_cli c;
    ce_buf path = CE_BUF_INIT;
    json_t *res = NULL;
    char err[512];
    const char *fmt;
    int rc = kn_cli_parse(spec, argc, argv, &a);

    if (rc != KN_CLI_ARGS_OK) {
        kn_cli_args_free(&a);
        return rc == KN_CLI_ARGS_HELP ? KN_EXIT_OK : KN_EXIT_USAGE;
    }
    fmt = kn_cli_args_get(&a, "output");
    if (fmt != NULL && strcmp(fmt, "json") != 0 &&
        strcmp(fmt, action ? "text" : "table") != 0) {
        rc = kn_cli_usage_error(spec, "--output: \"%s\" is not one of %s, "
                                "json", fmt, action ? "text" : "table");
        goto out;
    }
    if (kn_cli_init(&c, kn_cli_args_get(&a, "admin"), err, sizeof(err)) !=
        0) {
        rc = kn_cli_fail("%s", err);
        goto out;
    }
    if (dlq_path(&path, &a, action, spec) != 0) {
        rc = KN_EXIT_USAGE;
        goto out;
    }
    rc = KN_EXIT_FAIL;
    if (action == NULL ? kn_cli_admin_get(&c, path.data, &res) != 0
                       : kn_cli_admin_post(&c, path.data, NULL, "", 0,
                                           &res) != 0)
        goto out;
    if (fmt != NULL && strcmp(fmt, "json") == 0) {
        rc = kn_cli_print_json(res);
    } else if (action == NULL) {
        rc = print_table(json_object_get(res, "items"),
                         (long)json_integer_value(
                             json_object_get(res, "total")));
    } else if (strcmp(action, "purge") == 0) {
        printf("purged %lld dead letters\n",
               (long long)json_integer_value(json_object_get(res, "purged")));
        rc = KN_EXIT_OK;
    } else {
        size_t i;
        json_t *s;
        long long busy = json_integer_value(json_object_get(res,
                                                            "in_progress"));
        printf("replaying %lld dead letters\n",
               (long long)json_integer_value(
                   json_object_get(res, "replayed")));
        if (busy)
            printf("%lld already being replayed\n", busy);
        json_array_foreach(json_object_get(res, "skipped"), i, s)
            printf("skipped %lld (trigger %s): %s\n",
                   (long long)json_integer_value(json_object_get(s, "id")),
                   kn_cli_json_str(s, "trigger", ""),
                   kn_cli_json_str(s, "reason", ""));
        rc = KN_EXIT_OK;
    }
out:
    json_decref(res);
    ce_buf_free(&path);
    kn_cli_args_free(&a);
    return rc;
}

static int
dlq_list(int argc, char **argv)
{
    return dlq_run(&list_spec, argc, argv, NULL);
}

static int
dlq_replay(int argc, char **argv)
{
    return dlq_run(&replay_spec, argc, argv, "replay");
}

static int
dlq_purge(int argc, char **argv)
{
    return dlq_run(&purge_spec, argc, argv, "purge");
}

static const kn_cli_command dlq_commands[] = {
    {"list", "list a broker's dead letters", dlq_list},
    {"replay", "deliver dead letters again", dlq_replay},
    {"purge", "remove dead letters", dlq_purge},
};

int
kn_cli_dlq(int argc, char **argv)
{
    return kn_cli_dispatch("knit dlq", dlq_commands,
                           sizeof(dlq_commands) / sizeof(dlq_commands[0]),
                           argc - 1, argv + 1);
}
