/*
 * cmd_compact.c -- `needle compact NAME [--json]`: reclaim the slots of
 * deleted and replaced points now (ndl_collection_compact: memory, then a
 * checkpoint rewrites the files) and print the live and deleted points,
 * memory and disk bytes before and after. The JSON keys are those of
 * `needle info --json`.
 */
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"

enum { O_DATA, O_JSON, O_N };

/* "label: 1.2 MiB -> 1.0 MiB (1258291 -> 1048576 bytes)" */
static void print_bytes_text(const char *label, uint64_t before, uint64_t after)
{
    char b[32], a[32];
    cli_human_bytes(before, b, sizeof b);
    cli_human_bytes(after, a, sizeof a);
    printf("%-15s%s -> %s (%llu -> %llu bytes)\n", label, b, a, (unsigned long long)before,
           (unsigned long long)after);
}

static void print_result(const ndl_collection_info *before, const ndl_collection_info *after,
                         int json)
{
    if (json) {
        fputs("{\"name\":", stdout);
        cli_json_string(stdout, after->name, strlen(after->name));
        fputs(",\"before\":{", stdout);
        cli_print_sizes_json(before);
        fputs("},\"after\":{", stdout);
        cli_print_sizes_json(after);
        fputs("}}\n", stdout);
        return;
    }
    printf("compacted:     %s\n", after->name);
    printf("count:         %llu -> %llu\n", (unsigned long long)before->count,
           (unsigned long long)after->count);
    printf("deleted:       %llu -> %llu\n", (unsigned long long)before->deleted,
           (unsigned long long)after->deleted);
    print_bytes_text("memory:", before->memory_bytes, after->memory_bytes);
    print_bytes_text("disk:", before->disk_bytes, after->disk_bytes);
}

int cmd_compact(int argc, char **argv)
{
    cli_opt o[O_N] = {[O_DATA] = {"data", 1, NULL, 0}, [O_JSON] = {"json", 0, NULL, 0}};
    const char *pos[1];
    size_t npos;
    int help;
    int rc = cli_parse(argc, argv, o, O_N, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    if ((rc = cli_name_arg("compact", "a collection NAME", pos, npos)) != CLI_OK)
        return rc;
    const char *dir = o[O_DATA].value ? o[O_DATA].value : CLI_DEFAULT_DATA;
    ndl_db *db;
    if ((rc = cli_db_open(dir, 0, &db)) != CLI_OK)
        return rc;
    ndl_collection *c = NULL;
    ndl_collection_info before, after;
    if ((rc = cli_coll_open(db, pos[0], &c)) != CLI_OK ||
        (rc = cli_coll_info(c, &before)) != CLI_OK)
        goto out;
    ndl_error err = {0};
    ndl_status st = ndl_collection_compact(c, &err);
    if (st != NDL_OK) {
        rc = cli_fail_lib(st, &err);
        goto out;
    }
    if ((rc = cli_coll_info(c, &after)) == CLI_OK)
        print_result(&before, &after, o[O_JSON].value != NULL);
out:
    rc = cli_coll_close(c, rc);
    return cli_db_close(db, rc);
}
