/*
 * args.h -- command-line option parsing for the needle commands: a table of
 * long options per command ("--name value" or "--name=value"), positional
 * arguments, and strict number parsing with errors that name the option.
 */
#ifndef NDL_CLI_ARGS_H
#define NDL_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* One long option. The parser fills value/seen; the command reads them. */
typedef struct cli_opt {
    const char *name;     /* without the leading "--" */
    int takes_value;      /* 0: a flag */
    const char *value;    /* OUT: last value given (flags: "") or NULL if absent */
    int seen;             /* OUT: how many times it was given */
} cli_opt;

/* Parse argv[1..argc) (argv[0] is the command name) against opts.
 * Positional arguments go to pos (at most pos_max; the count to *npos).
 * "--help" / "-h" set *help and stop checking positionals; the command's
 * help is then printed on stdout (when parsing succeeds), so the caller only
 * returns CLI_OK. "--" ends options.
 * Prints a usage error and returns CLI_USAGE on an unknown option, a missing
 * value, a value given to a flag, or too many positionals; else CLI_OK. */
int cli_parse(int argc, char **argv, cli_opt *opts, size_t nopts, const char **pos,
              size_t pos_max, size_t *npos, int *help);

/* Parse the value of option o (which must be present) as an unsigned integer
 * in min..max. Prints a usage error naming the option and returns CLI_USAGE
 * on failure. */
int cli_opt_u32(const cli_opt *o, uint32_t min, uint32_t max, uint32_t *out);

/* Parse o's value as a comma-separated list of integers in min..max (at most
 * cap of them); zero_word (if not NULL) is also accepted and read as 0. */
int cli_opt_u32_list(const cli_opt *o, uint32_t min, uint32_t max, const char *zero_word,
                     uint32_t *out, size_t cap, size_t *n);

/* Usage error for a missing required option. */
int cli_missing(const char *command, const char *what);

#endif
