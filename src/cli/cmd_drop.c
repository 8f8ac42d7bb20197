/*
 * cmd_drop.c -- `needle drop NAME`: delete a collection and its files.
 */
#include "cli/args.h"
#include "cli/cli.h"

enum { O_DATA, O_N };

int cmd_drop(int argc, char **argv)
{
    cli_opt o[O_N] = {[O_DATA] = {"data", 1, NULL, 0}};
    const char *pos[1];
    size_t npos;
    int help;
    int rc = cli_parse(argc, argv, o, O_N, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    if ((rc = cli_name_arg("drop", "a collection NAME", pos, npos)) != CLI_OK)
        return rc;
    const char *dir = o[O_DATA].value ? o[O_DATA].value : CLI_DEFAULT_DATA;
    ndl_db *db;
    if ((rc = cli_db_open(dir, 0, &db)) != CLI_OK)
        return rc;
    ndl_error err = {0};
    ndl_status st = ndl_collection_drop(db, pos[0], &err);
    if (st != NDL_OK)
        rc = cli_fail_lib(st, &err);
    rc = cli_db_close(db, rc);
    if (rc == CLI_OK)
        printf("dropped collection '%s'\n", pos[0]);
    return rc;
}
