/*
 * cmd_check.c -- `needle check [NAME]`: open each collection (or NAME)
 * read-only and verify every checksum and invariant; print one line per
 * collection and exit 1 when any is damaged, naming what is wrong. Under
 * --salvage a damaged collection that salvage can open says SALVAGED and
 * what that costs, and still exits 1.
 */
#include <stdlib.h>

#include "cli/args.h"
#include "cli/cli.h"

enum { O_DATA, O_SALVAGE, O_N };

static int check_one(ndl_db *db, const char *name)
{
    ndl_collection *c;
    ndl_error err = {0};
    ndl_collection_info info;
    info.salvaged[0] = 0;
    ndl_status st = ndl_collection_open(db, name, &c, &err);
    if (st == NDL_OK) {
        st = ndl_collection_check(c, &err);
        if (st == NDL_OK)
            st = ndl_collection_info_get(c, &info, &err);
        ndl_collection_close(c, NULL);
    }
    if (st == NDL_OK && info.salvaged[0]) {
        /* --salvage opened it: what is left passes, but it was damaged */
        printf("%s: SALVAGED: %s\n", name, info.salvaged);
        fprintf(stderr, "needle: collection '%s' is damaged; salvage would: %s\n", name,
                info.salvaged);
        return CLI_ERR;
    }
    if (st != NDL_OK) {
        printf("%s: DAMAGED: %s\n", name, err.msg);
        fprintf(stderr, "needle: collection '%s': %s\n", name, err.msg);
        return CLI_ERR;
    }
    printf("%s: ok\n", name);
    return CLI_OK;
}

int cmd_check(int argc, char **argv)
{
    cli_opt o[O_N] = {[O_DATA] = {"data", 1, NULL, 0}, [O_SALVAGE] = {"salvage", 0, NULL, 0}};
    const char *pos[1];
    size_t npos;
    int help;
    int rc = cli_parse(argc, argv, o, O_N, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    if (npos == 1 && (rc = cli_check_name(pos[0])) != CLI_OK)
        return rc;
    const char *dir = o[O_DATA].value ? o[O_DATA].value : CLI_DEFAULT_DATA;
    ndl_db *db;
    cli_salvage = o[O_SALVAGE].value != NULL;
    if ((rc = cli_db_open(dir, CLI_DB_READ_ONLY, &db)) != CLI_OK)
        return rc;
    if (npos == 1) {
        rc = check_one(db, pos[0]);
    } else {
        char **names = NULL;
        size_t n = 0;
        ndl_error err = {0};
        ndl_status st = ndl_collection_list(db, &names, &n, &err);
        if (st != NDL_OK)
            rc = cli_fail_lib(st, &err);
        for (size_t i = 0; i < n; i++)
            if (check_one(db, names[i]) != CLI_OK)
                rc = CLI_ERR;
        ndl_free(names);
    }
    return cli_db_close(db, rc);
}
