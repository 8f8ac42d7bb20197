/*
 * cli.h -- shared declarations of the `needle` command-line program: exit
 * codes, error printing, the command entry points and small helpers used by
 * more than one command. The CLI talks to the engine only through needle.h,
 * except for the payload rules (payload/json.h), which the JSON lines reader
 * applies so that import can check a whole file before writing any of it.
 */
#ifndef NDL_CLI_H
#define NDL_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "needle.h"

/* Exit codes (SPEC section 2). */
enum {
    CLI_OK = 0,     /* success */
    CLI_ERR = 1,    /* runtime error: bad input data, missing file, library error */
    CLI_USAGE = 2   /* usage error: unknown command/option, bad option value */
};

#define CLI_DEFAULT_DATA "./needle-data"

#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Print "needle: <message>" on stderr and return code, so callers can write
 * `return cli_fail(CLI_USAGE, "...")`. */
int cli_fail(int code, const char *fmt, ...) CLI_PRINTF(2, 3);

/* Print a library error ("needle: <err.msg>") and return CLI_ERR. */
int cli_fail_lib(ndl_status st, const ndl_error *err);

/* Commands: argv[0] is the command name. Each returns an exit code. */
int cmd_create(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_drop(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Print the help of one command (or the overview for NULL) to f.
 * Returns 0, or -1 if the command is unknown. */
int cli_print_help(FILE *f, const char *command);

/* How cli_db_open opens. */
enum {
    CLI_DB_READ_ONLY = 1, /* ndl_db_options.read_only */
    CLI_DB_CREATE = 2,    /* ndl_db_options.create_if_missing */
    /* ndl_db_options.verify_on_open: commands that read vectors (search,
     * get, bench) end before a background verification would be through,
     * so they verify before using them. The others need not: check and
     * compact verify anyway, info and drop read no vector, a checkpoint
     * compares what it copies. */
    CLI_DB_VERIFY = 4,
};

/* Open the database at dir with CLI_DB_* flags. Prints the error; returns
 * an exit code. */
int cli_db_open(const char *dir, int flags, ndl_db **out);
/* The --fsync mode writes use (commands that take --fsync set it). */
extern ndl_fsync cli_fsync_mode;
/* The database's limit of one payload (import --max-payload-bytes sets it). */
extern uint32_t cli_max_payload_bytes;
/* Nonzero: open damaged collections read-only (ndl_db_options.salvage; the
 * read commands' --salvage sets it). */
extern int cli_salvage;

/* Whether dir holds a needle database (*exists), without changing anything.
 * An absent or empty directory is "no database"; a directory holding other
 * files is an error (printed), as are I/O errors. Returns an exit code. */
int cli_db_exists(const char *dir, int *exists);

/* Close the database, printing any error. Returns the exit code to use given
 * the one so far (rc): a close error turns success into CLI_ERR. */
int cli_db_close(ndl_db *db, int rc);

/* Check a collection name given on the command line (usage error if bad). */
int cli_check_name(const char *name);
/* The first of a command's npos positional arguments must be a collection
 * NAME: a usage error "'command' needs <missing>" when there is none, or the
 * cli_check_name error. Returns an exit code. */
int cli_name_arg(const char *command, const char *missing, const char *const *pos, size_t npos);

/* Open collection name of db, printing the error. */
int cli_coll_open(ndl_db *db, const char *name, ndl_collection **out);
/* Close c (NULL: nothing), printing any error; returns the exit code to use
 * given the one so far, as cli_db_close. */
int cli_coll_close(ndl_collection *c, int rc);
/* ndl_collection_info_get, printing the error; returns an exit code. */
int cli_coll_info(ndl_collection *c, ndl_collection_info *out);

/* Number of online CPUs (at least 1). */
uint32_t cli_cpus(void);

/* Monotonic clock in nanoseconds. */
uint64_t cli_now_ns(void);

/* JSON output (json_out.c). */
void cli_json_string(FILE *f, const char *s, size_t len);
void cli_json_number(FILE *f, double v);  /* shortest text that reads back as the same float */
void cli_json_id(FILE *f, const ndl_id *id);

/* "12.3 MiB" into buf. */
void cli_human_bytes(uint64_t n, char *buf, size_t size);
/* The members "count","deleted","memory_bytes","disk_bytes" of a JSON
 * object (no braces), as info --json and compact --json print them. */
void cli_print_sizes_json(const ndl_collection_info *in);

#endif
