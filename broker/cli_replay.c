/*
 * cli_replay.c — `knit replay trigger NS/NAME --from start|end|OFFSET|TIME`:
 * moves a trigger's position in its broker's log through the admin API
 * (POST /v1/replay/NS/NAME?from=...). The events from there on are
 * delivered again, with the trigger's filter applied again.
 */
#include "broker/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static const kn_cli_opt replay_opts[] = {
    {"from", 'f', KN_CLI_VALUE, "WHERE",
     "start (oldest retained event), end, an offset, or an RFC 3339 time"},
    KN_CLI_OPT_ADMIN,
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_spec trigger_spec = {
    .name = "replay trigger",
    .args = "NS/NAME",
    .summary =
        "Moves a trigger's position in its broker's log: the events stored\n"
        "from there on are delivered again (filters applied again).\n"
        "Deliveries in flight are cancelled; the new position is stored\n"
        "at once.",
    .opts = replay_opts,
    .min_pos = 1,
    .max_pos = 1,
    .details = "Examples:\n"
               "  knit replay trigger default/orders --from start\n"
               "  knit replay trigger default/orders --from "
               "2024-05-01T10:00:00Z\n"
               "  knit replay trigger default/orders --from 1200\n\n",
};

static int
replay_trigger(int argc, char **argv)
{
    kn_cli_args a;
    kn_cli c;
    ce_buf path = CE_BUF_INIT;
    json_t *res = NULL;
    char err[512], ns[64], name[64];
    const char *from;
    int rc = kn_cli_parse(&trigger_spec, argc, argv, &a);

    if (rc != KN_CLI_ARGS_OK) {
        kn_cli_args_free(&a);
        return rc == KN_CLI_ARGS_HELP ? KN_EXIT_OK : KN_EXIT_USAGE;
    }
    from = kn_cli_args_get(&a, "from");
    if (from == NULL || *from == '\0') {
        rc = kn_cli_usage_error(&trigger_spec, "--from is required");
        goto out;
    }
    if (!kn_split_ns_name(a.pos[0], ns, sizeof(ns), name, sizeof(name))) {
        rc = kn_cli_usage_error(&trigger_spec, "expected NS/NAME, got \"%s\"",
                                a.pos[0]);
        goto out;
    }
    if (kn_cli_init(&c, kn_cli_args_get(&a, "admin"), err, sizeof(err)) !=
        0) {
        rc = kn_cli_fail("%s", err);
        goto out;
    }
    {
        const char *segs[] = {"v1", "replay", ns, name};
        if (kn_cli_url_segments(&path, segs, 4) != 0 ||
            ce_buf_puts(&path, "?from=") != 0 ||
            kn_cli_url_escape(&path, from) != 0) {
            rc = kn_cli_fail("out of memory");
            goto out;
        }
    }
    rc = KN_EXIT_FAIL;
    if (kn_cli_admin_post(&c, path.data, NULL, "", 0, &res) != 0)
        goto out;
    printf("trigger %s/%s: replaying from %s\n", ns, name, from);
    rc = KN_EXIT_OK;
out:
    json_decref(res);
    ce_buf_free(&path);
    kn_cli_args_free(&a);
    return rc;
}

static const kn_cli_command replay_commands[] = {
    {"trigger", "re-deliver a trigger's history from a position",
     replay_trigger},
};

int
kn_cli_replay(int argc, char **argv)
{
    return kn_cli_dispatch("knit replay", replay_commands,
                           sizeof(replay_commands) /
                               sizeof(replay_commands[0]),
                           argc - 1, argv + 1);
}
