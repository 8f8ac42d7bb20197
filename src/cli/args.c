/*
 * args.c -- option parsing shared by every needle command (see args.h): long
 * options from a per-command table, positionals, strict integer values.
 */
#include "cli/args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static cli_opt *find_opt(cli_opt *opts, size_t nopts, const char *name, size_t len)
{
    for (size_t i = 0; i < nopts; i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

int cli_parse(int argc, char **argv, cli_opt *opts, size_t nopts, const char **pos,
              size_t pos_max, size_t *npos, int *help)
{
    const char *cmd = argv[0];
    int only_pos = 0;
    *npos = 0;
    *help = 0;
    for (size_t i = 0; i < nopts; i++) {
        opts[i].value = NULL;
        opts[i].seen = 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            *help = 1;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            if (a[1] != '-')
                return cli_fail(CLI_USAGE, "unknown option '%s' for '%s' (see 'needle help %s')",
                                a, cmd, cmd);
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            cli_opt *o = find_opt(opts, nopts, name, len);
            if (!o)
                return cli_fail(CLI_USAGE, "unknown option '--%.*s' for '%s' (see 'needle help %s')",
                                (int)len, name, cmd, cmd);
            if (!o->takes_value) {
                if (eq)
                    return cli_fail(CLI_USAGE, "option '--%s' takes no value", o->name);
                o->value = "";
            } else if (eq) {
                o->value = eq + 1;
            } else {
                if (i + 1 >= argc)
                    return cli_fail(CLI_USAGE, "option '--%s' needs a value", o->name);
                o->value = argv[++i];
            }
            o->seen++;
            continue;
        }
        if (*npos >= pos_max) {
            if (*help)
                continue;
            return cli_fail(CLI_USAGE, "unexpected argument '%s' for '%s' (see 'needle help %s')",
                            a, cmd, cmd);
        }
        pos[(*npos)++] = a;
    }
    if (*help)
        cli_print_help(stdout, cmd);
    return CLI_OK;
}

/* Strict decimal: optional '-', digits, nothing else. */
static int parse_int(const char *s, long long *out)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -2;
    *out = v;
    return 0;
}

int cli_opt_u32(const cli_opt *o, uint32_t min, uint32_t max, uint32_t *out)
{
    long long v;
    int r = parse_int(o->value, &v);
    if (r == -1)
        return cli_fail(CLI_USAGE, "--%s: '%s' is not a whole number", o->name, o->value);
    if (r == -2 || v < (long long)min || v > (long long)max)
        return cli_fail(CLI_USAGE, "--%s must be in %u..%u, got %s", o->name, min, max, o->value);
    *out = (uint32_t)v;
    return CLI_OK;
}

int cli_opt_u32_list(const cli_opt *o, uint32_t min, uint32_t max, const char *zero_word,
                     uint32_t *out, size_t cap, size_t *n)
{
    *n = 0;
    const char *p = o->value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        if (len == 0 || len >= sizeof item)
            return cli_fail(CLI_USAGE, "--%s: '%s' is not a comma-separated list of numbers%s%s%s",
                            o->name, o->value, zero_word ? " or '" : "",
                            zero_word ? zero_word : "", zero_word ? "'" : "");
        memcpy(item, p, len);
        item[len] = '\0';
        if (*n >= cap)
            return cli_fail(CLI_USAGE, "--%s: at most %zu values", o->name, cap);
        cli_opt one = {o->name, 1, item, 1};
        int rc = CLI_OK;
        if (zero_word && strcmp(item, zero_word) == 0)
            out[*n] = 0;
        else
            rc = cli_opt_u32(&one, min, max, &out[*n]);
        if (rc != CLI_OK)
            return rc;
        (*n)++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return CLI_OK;
}

int cli_missing(const char *command, const char *what)
{
    return cli_fail(CLI_USAGE, "'%s' needs %s (see 'needle help %s')", command, what, command);
}
