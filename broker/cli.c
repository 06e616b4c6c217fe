/*
 * cli.c — `knit version`: the client's version, and the daemon's when its
 * admin API answers. The other client commands live in cli_apply.c,
 * cli_get.c, cli_send.c and cli_tail.c; the command table is in main.c.
 */
#include "broker/cli.h"

#include <stdio.h>
#include <string.h>

static const kn_cli_opt version_opts[] = {
    KN_CLI_OPT_ADMIN,
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_spec version_spec = {
    .name = "version",
    .summary =
        "Prints the version of this knit binary and, when the admin API is\n"
        "reachable, the version of the running daemon. Exits 0 either way.",
    .opts = version_opts,
};

int
kn_cli_version(int argc, char **argv)
{
    char err[512];
    json_t *res = NULL;
    const char *v;
    kn_cli c;
    kn_cli_args a;
    long st;
    int rc = kn_cli_parse(&version_spec, argc, argv, &a);

    if (rc != KN_CLI_ARGS_OK) {
        kn_cli_args_free(&a);
        return rc == KN_CLI_ARGS_HELP ? KN_EXIT_OK : KN_EXIT_USAGE;
    }
    printf("Client: knit %s\n", KNIT_VERSION);
    if (kn_cli_init(&c, kn_cli_args_get(&a, "admin"), err, sizeof(err)) != 0) {
        kn_cli_args_free(&a);
        return kn_cli_fail("%s", err);
    }
    st = kn_cli_admin_try_get(&c, "/v1/version", &res, err, sizeof(err));
    v = json_string_value(json_object_get(res, "version"));
    if (st == 200 && v != NULL)
        printf("Server: knit %s (admin API at %s)\n", v, c.admin);
    else if (st < 0)
        printf("Server: not reachable (%s)\n", err);
    else
        printf("Server: unknown (the admin API at %s answered %ld)\n", c.admin,
               st);
    json_decref(res);
    kn_cli_args_free(&a);
    return KN_EXIT_OK;
}
