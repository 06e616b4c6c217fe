/*
 * cli_args.c — the command table dispatcher and the table-driven option
 * parser of the `knit` CLI, including the generated `--help` texts.
 * See cli.h for the contracts.
 */
#include "broker/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- dispatching */

void
kn_cli_list_commands(FILE *f, const char *prog, const kn_cli_command *cmds,
                     size_t n)
{
    size_t w = 4;

    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(cmds[i].name);
        if (l > w)
            w = l;
    }
    fprintf(f, "Usage: %s COMMAND [ARGS] [FLAGS]\n\nCommands:\n", prog);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-*s  %s\n", (int)w, cmds[i].name, cmds[i].summary);
    fprintf(f, "  %-*s  %s\n", (int)w, "help", "show help for a command");
    fprintf(f, "\nRun '%s COMMAND --help' for the flags of a command.\n", prog);
}

static const kn_cli_command *
find_command(const kn_cli_command *cmds, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    return NULL;
}

/* `PROG help [CMD]`: the list, or CMD's own --help. */
static int
dispatch_help(const char *prog, const kn_cli_command *cmds, size_t n, int argc,
              char **argv)
{
    const kn_cli_command *c;
    char help_flag[] = "--help";
    char *hargv[3];

    if (argc < 2) {
        kn_cli_list_commands(stdout, prog, cmds, n);
        return KN_EXIT_OK;
    }
    c = find_command(cmds, n, argv[1]);
    if (c == NULL) {
        fprintf(stderr, "%s: unknown command \"%s\" (see '%s help')\n", prog,
                argv[1], prog);
        return KN_EXIT_USAGE;
    }
    hargv[0] = argv[1];
    hargv[1] = help_flag;
    hargv[2] = NULL;
    return c->fn(2, hargv);
}

int
kn_cli_dispatch(const char *prog, const kn_cli_command *cmds, size_t n,
                int argc, char **argv)
{
    const kn_cli_command *c;

    if (argc < 1) {
        kn_cli_list_commands(stderr, prog, cmds, n);
        return KN_EXIT_USAGE;
    }
    if (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0 ||
        strcmp(argv[0], "-h") == 0)
        return dispatch_help(prog, cmds, n, argc, argv);
    c = find_command(cmds, n, argv[0]);
    if (c == NULL) {
        fprintf(stderr, "%s: unknown command \"%s\" (see '%s help')\n", prog,
                argv[0], prog);
        return KN_EXIT_USAGE;
    }
    return c->fn(argc, argv);
}

/* --------------------------------------------------- option parsing */

static const kn_cli_opt *
opt_at(const kn_cli_spec *spec, int i)
{
    return &spec->opts[i];
}

static int
find_long(const kn_cli_spec *spec, const char *name, size_t len)
{
    if (spec->opts == NULL)
        return -1;
    for (int i = 0; spec->opts[i].name != NULL; i++)
        if (strlen(spec->opts[i].name) == len &&
            strncmp(spec->opts[i].name, name, len) == 0)
            return i;
    return -1;
}

static int
find_short(const kn_cli_spec *spec, char c)
{
    if (spec->opts == NULL)
        return -1;
    for (int i = 0; spec->opts[i].name != NULL; i++)
        if (spec->opts[i].short_name == c)
            return i;
    return -1;
}

static void set_err(char *err, size_t errn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errn, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errn == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errn, fmt, ap);
    va_end(ap);
}

/* Handles "--name[=value]" at argv[*i]. */
static int
parse_long(const kn_cli_spec *spec, int argc, char **argv, int *i,
           kn_cli_args *a, char *err, size_t errn)
{
    const char *s = argv[*i] + 2;
    const char *eq = strchr(s, '=');
    size_t len = eq ? (size_t)(eq - s) : strlen(s);
    int o;

    if (len == 4 && strncmp(s, "help", 4) == 0)
        return KN_CLI_ARGS_HELP;
    o = find_long(spec, s, len);
    if (o < 0) {
        set_err(err, errn, "unknown option --%.*s", (int)len, s);
        return KN_CLI_ARGS_ERROR;
    }
    a->items[a->nitems].opt = o;
    if (opt_at(spec, o)->kind == KN_CLI_FLAG) {
        if (eq != NULL) {
            set_err(err, errn, "option --%s takes no value",
                    opt_at(spec, o)->name);
            return KN_CLI_ARGS_ERROR;
        }
        a->items[a->nitems++].value = "";
        return KN_CLI_ARGS_OK;
    }
    if (eq != NULL) {
        a->items[a->nitems++].value = eq + 1;
        return KN_CLI_ARGS_OK;
    }
    if (*i + 1 >= argc) {
        set_err(err, errn, "option --%s needs a value (%s)",
                opt_at(spec, o)->name, opt_at(spec, o)->metavar);
        return KN_CLI_ARGS_ERROR;
    }
    a->items[a->nitems++].value = argv[++*i];
    return KN_CLI_ARGS_OK;
}

/* Handles "-x", "-xVALUE" and "-x VALUE" at argv[*i]. */
static int
parse_short(const kn_cli_spec *spec, int argc, char **argv, int *i,
            kn_cli_args *a, char *err, size_t errn)
{
    const char *s = argv[*i] + 1;
    int o;

    if (s[0] == 'h' && s[1] == '\0')
        return KN_CLI_ARGS_HELP;
    o = find_short(spec, s[0]);
    if (o < 0) {
        set_err(err, errn, "unknown option -%c", s[0]);
        return KN_CLI_ARGS_ERROR;
    }
    a->items[a->nitems].opt = o;
    if (opt_at(spec, o)->kind == KN_CLI_FLAG) {
        if (s[1] != '\0') {
            set_err(err, errn, "option -%c takes no value (got \"%s\")", s[0],
                    argv[*i]);
            return KN_CLI_ARGS_ERROR;
        }
        a->items[a->nitems++].value = "";
        return KN_CLI_ARGS_OK;
    }
    if (s[1] != '\0') {
        a->items[a->nitems++].value = s + 1;
        return KN_CLI_ARGS_OK;
    }
    if (*i + 1 >= argc) {
        set_err(err, errn, "option -%c needs a value (%s)", s[0],
                opt_at(spec, o)->metavar);
        return KN_CLI_ARGS_ERROR;
    }
    a->items[a->nitems++].value = argv[++*i];
    return KN_CLI_ARGS_OK;
}

static int
check_positionals(const kn_cli_spec *spec, const kn_cli_args *a, char *err,
                  size_t errn)
{
    if ((int)a->npos < spec->min_pos) {
        set_err(err, errn, "missing argument: expected %s",
                spec->args ? spec->args : "more arguments");
        return KN_CLI_ARGS_ERROR;
    }
    if (spec->max_pos >= 0 && (int)a->npos > spec->max_pos) {
        if (spec->max_pos == 0)
            set_err(err, errn, "unexpected argument \"%s\"",
                    a->pos[a->npos - 1]);
        else
            set_err(err, errn, "too many arguments (\"%s\"); expected %s",
                    a->pos[spec->max_pos], spec->args);
        return KN_CLI_ARGS_ERROR;
    }
    return KN_CLI_ARGS_OK;
}

int
kn_cli_args_parse(const kn_cli_spec *spec, int argc, char **argv,
                  kn_cli_args *out, char *err, size_t errn)
{
    bool only_pos = false;
    size_t cap = argc > 0 ? (size_t)argc : 1;

    memset(out, 0, sizeof(*out));
    out->spec = spec;
    out->items = calloc(cap, sizeof(*out->items));
    out->pos = calloc(cap, sizeof(*out->pos));
    if (out->items == NULL || out->pos == NULL) {
        set_err(err, errn, "out of memory");
        return KN_CLI_ARGS_ERROR;
    }
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int rc = KN_CLI_ARGS_OK;

        if (only_pos || s[0] != '-' || s[1] == '\0') {
            out->pos[out->npos++] = s; /* "-" alone is stdin */
            continue;
        }
        if (strcmp(s, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (s[1] == '-')
            rc = parse_long(spec, argc, argv, &i, out, err, errn);
        else
            rc = parse_short(spec, argc, argv, &i, out, err, errn);
        if (rc != KN_CLI_ARGS_OK)
            return rc;
    }
    return check_positionals(spec, out, err, errn);
}

void
kn_cli_args_free(kn_cli_args *a)
{
    free(a->items);
    free((void *)a->pos);
    a->items = NULL;
    a->pos = NULL;
    a->nitems = a->npos = 0;
}

const char *
kn_cli_args_nth(const kn_cli_args *a, const char *name, size_t i)
{
    int o = find_long(a->spec, name, strlen(name));

    if (o < 0)
        return NULL;
    for (size_t k = 0; k < a->nitems; k++)
        if (a->items[k].opt == o && i-- == 0)
            return a->items[k].value;
    return NULL;
}

const char *
kn_cli_args_get(const kn_cli_args *a, const char *name)
{
    int o = find_long(a->spec, name, strlen(name));
    const char *v = NULL;

    if (o < 0)
        return NULL;
    for (size_t k = 0; k < a->nitems; k++)
        if (a->items[k].opt == o)
            v = a->items[k].value;
    return v;
}

bool
kn_cli_args_has(const kn_cli_args *a, const char *name)
{
    return kn_cli_args_get(a, name) != NULL;
}

/* ------------------------------------------------------------- help */

static int
help_opt_line(const kn_cli_opt *o, size_t w, ce_buf *b)
{
    char left[96];

    if (o->short_name)
        snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
                 o->metavar ? " " : "", o->metavar ? o->metavar : "");
    else
        snprintf(left, sizeof(left), "    --%s%s%s", o->name,
                 o->metavar ? " " : "", o->metavar ? o->metavar : "");
    return ce_buf_printf(b, "  %-*s  %s%s\n", (int)w, left, o->help,
                         o->kind == KN_CLI_MULTI ? " (repeatable)" : "");
}

static size_t
help_opt_width(const kn_cli_opt *opts)
{
    size_t w = strlen("-h, --help");

    for (int i = 0; opts && opts[i].name; i++) {
        size_t l = 8 + strlen(opts[i].name);
        if (opts[i].metavar)
            l += 1 + strlen(opts[i].metavar);
        if (l > w)
            w = l;
    }
    return w;
}

int
kn_cli_help(const kn_cli_spec *spec, ce_buf *b)
{
    size_t w = help_opt_width(spec->opts);
    static const kn_cli_opt help = {"help", 'h', KN_CLI_FLAG, NULL,
                                    "show this help"};
    int rc = 0;

    rc |= ce_buf_printf(b, "Usage: knit %s%s%s [flags]\n\n%s\n", spec->name,
                        spec->args ? " " : "", spec->args ? spec->args : "",
                        spec->summary);
    rc |= ce_buf_puts(b, "\nFlags:\n");
    for (int i = 0; spec->opts && spec->opts[i].name; i++)
        rc |= help_opt_line(&spec->opts[i], w, b);
    rc |= help_opt_line(&help, w, b);
    if (spec->details)
        rc |= ce_buf_printf(b, "\n%s", spec->details);
    return rc ? -1 : 0;
}

int
kn_cli_parse(const kn_cli_spec *spec, int argc, char **argv, kn_cli_args *out)
{
    char err[256] = "";
    int rc = kn_cli_args_parse(spec, argc, argv, out, err, sizeof(err));

    if (rc == KN_CLI_ARGS_HELP) {
        ce_buf b = CE_BUF_INIT;
        if (kn_cli_help(spec, &b) == 0)
            fputs(b.data, stdout);
        ce_buf_free(&b);
    } else if (rc == KN_CLI_ARGS_ERROR) {
        kn_cli_usage_error(spec, "%s", err);
    }
    return rc;
}

int
kn_cli_usage_error(const kn_cli_spec *spec, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "knit %s: ", spec->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'knit %s --help')\n", spec->name);
    return KN_EXIT_USAGE;
}

int
kn_cli_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("knit: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return KN_EXIT_FAIL;
}
