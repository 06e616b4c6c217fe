/*
 * main.c — the `knit` entry point: one table of subcommands
 * {name, summary, fn}. `knit help`, `knit help CMD`, `knit --version` and
 * `--help` on every command come from the table and from each command's
 * option spec (broker/cli_args.c). A new command is one row here; a
 * command with subcommands (e.g. `knit dlq list|replay|purge`) calls
 * kn_cli_dispatch with its own table.
 *
 * Exit statuses: 0 success, 1 failure, 2 usage error.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/cli.h"

static const kn_cli_command commands[] = {
    {"serve", "run the daemon: ingress, admin API, storage", kn_serve_main},
    {"apply", "create or update resources from YAML (-f FILE|DIR|-)",
     kn_cli_apply},
    {"delete", "delete the resources named in YAML files", kn_cli_delete},
    {"get", "list resources of a kind, or show one", kn_cli_get},
    {"describe", "show one resource with its status conditions",
     kn_cli_describe},
    {"send", "send one CloudEvent to a broker", kn_cli_send},
    {"tail", "print a broker's events as they are stored", kn_cli_tail},
    {"filter", "test Trigger filters against an event, offline",
     kn_cli_filter},
    {"event-display", "run a sink that prints the events it receives",
     kn_cli_event_display},
    {"replay", "re-deliver a trigger's history (replay trigger NS/NAME)",
     kn_cli_replay},
    {"dlq", "list, re-deliver or purge a broker's dead letters",
     kn_cli_dlq},
    {"version", "print the client and daemon versions", kn_cli_version},
};

int
main(int argc, char **argv)
{
    char version[] = "version";
    int rc;

    if (argc >= 2 &&
        (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0))
        argv[1] = version;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "knit: cannot initialise libcurl\n");
        return KN_EXIT_FAIL;
    }
    rc = kn_cli_dispatch("knit", commands,
                         sizeof(commands) / sizeof(commands[0]), argc - 1,
                         argv + 1);
    curl_global_cleanup();
    return rc;
}
