/*
 * cli_event_display.c — `knit event-display --listen ADDR:PORT`: a sink
 * that prints every CloudEvent it receives (JSON format, indented) and
 * answers 202; the quick start's subscriber. The sink itself lives in
 * sinks/ (kn_event_display_run); this is its command-line face.
 */
#include "broker/cli.h"

#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "sinks/sinks.h"

#define DEFAULT_LISTEN "127.0.0.1:8081"

static const kn_cli_opt display_opts[] = {
    {"listen", 'l', KN_CLI_VALUE, "ADDR:PORT",
     "where to listen (default " DEFAULT_LISTEN "; port 0 = any)"},
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_spec display_spec = {
    .name = "event-display",
    .summary =
        "Runs a sink that prints every CloudEvent it receives (the JSON\n"
        "format, indented, a blank line between events) and answers 202.\n"
        "Point a trigger's subscriber at it. Stops on Ctrl-C.",
    .opts = display_opts,
    .details =
        "Example:\n"
        "  knit event-display --listen 127.0.0.1:8081\n\n",
};

int
kn_cli_event_display(int argc, char **argv)
{
    const char *listen;
    char ebuf[768];
    kn_cli_args a;
    kn_err err;
    int rc = kn_cli_parse(&display_spec, argc, argv, &a);

    if (rc != KN_CLI_ARGS_OK) {
        kn_cli_args_free(&a);
        return rc == KN_CLI_ARGS_HELP ? KN_EXIT_OK : KN_EXIT_USAGE;
    }
    listen = kn_cli_args_get(&a, "listen");
    if (listen == NULL)
        listen = DEFAULT_LISTEN;
    memset(&err, 0, sizeof(err));
    if (kn_event_display_run(listen, stdout, &err) != KN_OK)
        rc = kn_cli_fail("event-display on %s: %s", listen,
                         kn_err_str(&err, ebuf, sizeof(ebuf)));
    else
        rc = KN_EXIT_OK;
    kn_cli_args_free(&a);
    return rc;
}
