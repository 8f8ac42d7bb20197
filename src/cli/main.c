/*
 * main.c -- entry point of the `needle` program: picks the command from
 * argv[1] and returns its exit code (0 ok, 1 runtime error, 2 usage error;
 * SPEC section 2). Commands live in cmd_*.c.
 */
#include <errno.h>
#include <string.h>

#include "cli/cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"create", cmd_create}, {"import", cmd_import}, {"search", cmd_search},
    {"bench", cmd_bench},   {"info", cmd_info},     {"drop", cmd_drop},
    {"check", cmd_check},   {"get", cmd_get},       {"compact", cmd_compact},
    {"help", cmd_help},     {"serve", cmd_serve},
};

/* In the SPEC, not written yet. */
static const char *const later[] = {"snapshot", "restore"};

/* Output that did not reach stdout (a full disk, a closed pipe with SIGPIPE
 * ignored) must not end in success: scripts would read a cut result. */
static int finish(int rc)
{
    errno = 0;
    if ((fflush(stdout) != 0 || ferror(stdout)) && rc == CLI_OK)
        return cli_fail(CLI_ERR, "cannot write to stdout: %s",
                        errno ? strerror(errno) : "write error");
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_print_help(stderr, NULL);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        cli_print_help(stdout, NULL);
        return finish(CLI_OK);
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("needle %s\n", ndl_version());
        return finish(CLI_OK);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            return finish(commands[i].run(argc - 1, argv + 1));
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++)
        if (strcmp(name, later[i]) == 0)
            return cli_fail(CLI_USAGE, "'%s' is not available yet", name);
    return cli_fail(CLI_USAGE, "unknown command '%s' (see 'needle help')", name);
}
