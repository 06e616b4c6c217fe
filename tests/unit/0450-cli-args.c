/*
 * 0450-cli-args: the CLI's option parser (long/short forms, values,
 * repeatable options, "--", positional bounds, errors) and the generated
 * --help text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "broker/cli.h"

static const kn_cli_opt opts[] = {
    {"namespace", 'n', KN_CLI_VALUE, "NS", "namespace"},
    {"all-namespaces", 'A', KN_CLI_FLAG, NULL, "all of them"},
    {"filename", 'f', KN_CLI_MULTI, "FILE", "input"},
    {"output", 'o', KN_CLI_VALUE, "FORMAT", "format"},
    KN_CLI_OPT_ADMIN,
    {NULL, 0, KN_CLI_FLAG, NULL, NULL},
};

static const kn_cli_spec spec = {
    "get", "KIND [NAME]", "Lists things.", opts, 1, 2, "Example:\n  x\n",
};

/* Parses a NULL-terminated list of words (argv[0] = "get"). */
static int
parse(kn_cli_args *a, char *err, size_t errn, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;

    argv[argc++] = (char *)(uintptr_t) "get";
    va_start(ap, errn);
    for (char *s; (s = va_arg(ap, char *)) != NULL;)
        argv[argc++] = s;
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    return kn_cli_args_parse(&spec, argc, argv, a, err, errn);
}

#define W(s) ((char *)(uintptr_t)(s))

static void
test_forms(void **state)
{
    kn_cli_args a;
    char err[256];

    (void)state;
    assert_int_equal(parse(&a, err, sizeof(err), W("brokers"), W("-n"),
                           W("team"), W("--output=yaml"), W("demo"),
                           W("--admin"), W("h:1"), NULL),
                     KN_CLI_ARGS_OK);
    assert_int_equal(a.npos, 2);
    assert_string_equal(a.pos[0], "brokers");
    assert_string_equal(a.pos[1], "demo");
    assert_string_equal(kn_cli_args_get(&a, "namespace"), "team");
    assert_string_equal(kn_cli_args_get(&a, "output"), "yaml");
    assert_string_equal(kn_cli_args_get(&a, "admin"), "h:1");
    assert_false(kn_cli_args_has(&a, "all-namespaces"));
    kn_cli_args_free(&a);

    /* -xVALUE, --name value, flags, the last value wins. */
    assert_int_equal(parse(&a, err, sizeof(err), W("-nfirst"), W("-A"), W("b"),
                           W("--namespace"), W("second"), NULL),
                     KN_CLI_ARGS_OK);
    assert_string_equal(kn_cli_args_get(&a, "namespace"), "second");
    assert_true(kn_cli_args_has(&a, "all-namespaces"));
    assert_string_equal(kn_cli_args_get(&a, "all-namespaces"), "");
    kn_cli_args_free(&a);
}

static void
test_multi_and_dash(void **state)
{
    kn_cli_args a;
    char err[256];

    (void)state;
    /* "-" is a positional/value (stdin); "--" ends the options. */
    assert_int_equal(parse(&a, err, sizeof(err), W("-f"), W("-"), W("-fa"),
                           W("--filename=b.yaml"), W("k"), W("--"),
                           W("--not-an-option"), NULL),
                     KN_CLI_ARGS_OK);
    assert_string_equal(kn_cli_args_nth(&a, "filename", 0), "-");
    assert_string_equal(kn_cli_args_nth(&a, "filename", 1), "a");
    assert_string_equal(kn_cli_args_nth(&a, "filename", 2), "b.yaml");
    assert_null(kn_cli_args_nth(&a, "filename", 3));
    assert_null(kn_cli_args_nth(&a, "no-such-option", 0));
    assert_int_equal(a.npos, 2);
    assert_string_equal(a.pos[1], "--not-an-option");
    kn_cli_args_free(&a);

    /* A value that looks like an option is still taken as the value. */
    assert_int_equal(
        parse(&a, err, sizeof(err), W("k"), W("-o"), W("-weird"), NULL),
        KN_CLI_ARGS_OK);
    assert_string_equal(kn_cli_args_get(&a, "output"), "-weird");
    kn_cli_args_free(&a);
}

static void
test_errors(void **state)
{
    kn_cli_args a;
    char err[256];

    (void)state;
    assert_int_equal(parse(&a, err, sizeof(err), W("k"), W("--bogus"), NULL),
                     KN_CLI_ARGS_ERROR);
    assert_string_equal(err, "unknown option --bogus");
    kn_cli_args_free(&a);

    assert_int_equal(parse(&a, err, sizeof(err), W("k"), W("-z"), NULL),
                     KN_CLI_ARGS_ERROR);
    assert_string_equal(err, "unknown option -z");
    kn_cli_args_free(&a);

    assert_int_equal(parse(&a, err, sizeof(err), W("k"), W("-n"), NULL),
                     KN_CLI_ARGS_ERROR);
    assert_string_equal(err, "option -n needs a value (NS)");
    kn_cli_args_free(&a);

    assert_int_equal(parse(&a, err, sizeof(err), W("k"), W("--output"), NULL),
                     KN_CLI_ARGS_ERROR);
    assert_string_equal(err, "option --output needs a value (FORMAT)");
    kn_cli_args_free(&a);

    assert_int_equal(
        parse(&a, err, sizeof(err), W("k"), W("--all-namespaces=yes"), NULL),
        KN_CLI_ARGS_ERROR);
    assert_string_equal(err, "option --all-namespaces takes no value");
    kn_cli_args_free(&a);

    assert_int_equal(parse(&a, err, sizeof(err), W("k"), W("-Ax"), NULL),
                     KN_CLI_ARGS_ERROR);
    assert_non_null(strstr(err, "option -A takes no value"));
    kn_cli_args_free(&a);

    assert_int_equal(parse(&a, err, sizeof(err), NULL), KN_CLI_ARGS_ERROR);
    assert_string_equal(err, "missing argument: expected KIND [NAME]");
    kn_cli_args_free(&a);

    assert_int_equal(parse(&a, err, sizeof(err), W("a"), W("b"), W("c"), NULL),
                     KN_CLI_ARGS_ERROR);
    assert_string_equal(err,
                        "too many arguments (\"c\"); expected KIND [NAME]");
    kn_cli_args_free(&a);
}

static void
test_help(void **state)
{
    kn_cli_args a;
    char err[256];
    ce_buf b = CE_BUF_INIT;

    (void)state;
    /* --help wins even when the rest would be an error. */
    assert_int_equal(parse(&a, err, sizeof(err), W("--help"), NULL),
                     KN_CLI_ARGS_HELP);
    kn_cli_args_free(&a);
    assert_int_equal(parse(&a, err, sizeof(err), W("x"), W("-h"), NULL),
                     KN_CLI_ARGS_HELP);
    kn_cli_args_free(&a);

    assert_int_equal(kn_cli_help(&spec, &b), 0);
    assert_non_null(strstr(b.data, "Usage: knit get KIND [NAME] [flags]\n"
                                   "\nLists things.\n\nFlags:\n"));
    assert_non_null(strstr(b.data, "  -n, --namespace NS "));
    assert_non_null(strstr(b.data, "      --admin ADDR:PORT "));
    assert_non_null(strstr(b.data, "input (repeatable)\n"));
    assert_non_null(strstr(b.data, "  -h, --help "));
    assert_non_null(strstr(b.data, "\nExample:\n  x\n"));
    ce_buf_free(&b);
}

static int calls;

static int
cmd_ok(int argc, char **argv)
{
    (void)argv;
    calls++;
    return argc == 2 ? 7 : 3;
}

static void
test_dispatch(void **state)
{
    static const kn_cli_command cmds[] = {
        {"alpha", "first", cmd_ok},
        {"beta", "second", cmd_ok},
    };
    char *argv1[] = {W("beta"), W("x"), NULL};
    char *argv2[] = {W("gamma"), NULL};
    char *argv3[] = {W("help"), W("alpha"), NULL};

    (void)state;
    calls = 0;
    assert_int_equal(kn_cli_dispatch("t", cmds, 2, 2, argv1), 7);
    assert_int_equal(calls, 1);
    assert_int_equal(kn_cli_dispatch("t", cmds, 2, 1, argv2), KN_EXIT_USAGE);
    assert_int_equal(kn_cli_dispatch("t", cmds, 2, 0, argv2), KN_EXIT_USAGE);
    /* help CMD runs CMD --help. */
    assert_int_equal(kn_cli_dispatch("t", cmds, 2, 2, argv3), 7);
    assert_int_equal(calls, 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),    cmocka_unit_test(test_multi_and_dash),
        cmocka_unit_test(test_errors),   cmocka_unit_test(test_help),
        cmocka_unit_test(test_dispatch),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
