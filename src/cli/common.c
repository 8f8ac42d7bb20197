/*
 * common.c -- helpers every needle command uses: error printing with the
 * "needle: " prefix, opening the database and collections with errors
 * printed, CPU count, clock and human-readable sizes.
 */
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/text.h"

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("needle: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_fail_lib(ndl_status st, const ndl_error *err)
{
    if (err && err->msg[0])
        return cli_fail(CLI_ERR, "%s", err->msg);
    return cli_fail(CLI_ERR, "%s", ndl_status_str(st));
}

int cli_db_exists(const char *dir, int *exists)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.read_only = 1;
    o.create_if_missing = 0;
    ndl_db *db = NULL;
    ndl_error err = {0};
    ndl_status st = ndl_db_open(dir, &o, &db, &err);
    *exists = st == NDL_OK;
    if (st == NDL_NOT_FOUND)
        return CLI_OK;
    if (st != NDL_OK)
        return cli_fail_lib(st, &err);
    ndl_db_close(db, NULL);  /* read-only: nothing to save */
    return CLI_OK;
}

ndl_fsync cli_fsync_mode = NDL_FSYNC_ALWAYS;
uint32_t cli_max_payload_bytes = NDL_PAYLOAD_BYTES_DEFAULT;
int cli_salvage = 0;

int cli_db_open(const char *dir, int flags, ndl_db **out)
{
    *out = NULL;
    int read_only = (flags & CLI_DB_READ_ONLY) != 0, create = (flags & CLI_DB_CREATE) != 0;
    if (!read_only && !create) {
        /* A read-write open marks an empty directory as a database even
         * without create_if_missing; look read-only first so commands that
         * only change existing data never write into a directory that is
         * not a database yet. */
        int exists;
        int rc = cli_db_exists(dir, &exists);
        if (rc != CLI_OK)
            return rc;
        if (!exists)
            return cli_fail(CLI_ERR, "database '%s' does not exist", dir);
    }
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.read_only = read_only;
    o.create_if_missing = create;
    o.fsync = cli_fsync_mode;
    o.max_payload_bytes = cli_max_payload_bytes;
    o.salvage = cli_salvage;
    o.verify_on_open = (flags & CLI_DB_VERIFY) != 0;
    ndl_error err = {0};
    ndl_status st = ndl_db_open(dir, &o, out, &err);
    if (st != NDL_OK)
        return cli_fail_lib(st, &err);
    ndl_db_info info;
    if (ndl_db_info_get(*out, &info, NULL) == NDL_OK && info.dropped_catalog_bytes)
        fprintf(stderr,
                "needle: warning: the catalog log ended in a torn record (%llu bytes at %s), "
                "cut off: the create or drop it held was never acknowledged and did not "
                "happen\n",
                (unsigned long long)info.dropped_catalog_bytes, info.dropped_catalog_at);
    return CLI_OK;
}

/* The exit code after a close that returned st, given the one so far: an
 * error is printed and turns success into CLI_ERR. */
static int after_close(ndl_status st, const ndl_error *err, int rc)
{
    if (st == NDL_OK)
        return rc;
    cli_fail_lib(st, err);
    return rc == CLI_OK ? CLI_ERR : rc;
}

int cli_db_close(ndl_db *db, int rc)
{
    ndl_error err = {0};
    ndl_status st = ndl_db_close(db, &err);
    return after_close(st, &err, rc);
}

int cli_check_name(const char *name)
{
    if (!ndl_name_valid(name)) {
        char shown[100];
        return cli_fail(CLI_USAGE, "bad collection name '%s': use 1 to %d of A-Z a-z 0-9 _ -",
                        cli_safe_text(name, strlen(name), shown, sizeof shown), NDL_NAME_MAX);
    }
    return CLI_OK;
}

int cli_name_arg(const char *command, const char *missing, const char *const *pos, size_t npos)
{
    if (npos < 1)
        return cli_missing(command, missing);
    return cli_check_name(pos[0]);
}

int cli_coll_open(ndl_db *db, const char *name, ndl_collection **out)
{
    ndl_error err = {0};
    ndl_status st = ndl_collection_open(db, name, out, &err);
    if (st != NDL_OK)
        return cli_fail_lib(st, &err);
    ndl_collection_info info; /* --salvage: say what it cost, every time */
    if (cli_salvage && ndl_collection_info_get(*out, &info, NULL) == NDL_OK && info.salvaged[0])
        fprintf(stderr, "needle: warning: '%s' opened by salvage, read-only: %s\n", name,
                info.salvaged);
    return CLI_OK;
}

int cli_coll_close(ndl_collection *c, int rc)
{
    ndl_error err = {0};
    ndl_status st = ndl_collection_close(c, &err);
    return after_close(st, &err, rc);
}

int cli_coll_info(ndl_collection *c, ndl_collection_info *out)
{
    ndl_error err = {0};
    ndl_status st = ndl_collection_info_get(c, out, &err);
    if (st != NDL_OK)
        return cli_fail_lib(st, &err);
    return CLI_OK;
}

uint32_t cli_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (uint32_t)n;
}

uint64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void cli_human_bytes(uint64_t n, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
}

void cli_print_sizes_json(const ndl_collection_info *in)
{
    printf("\"count\":%llu,\"deleted\":%llu,\"memory_bytes\":%llu,\"disk_bytes\":%llu",
           (unsigned long long)in->count, (unsigned long long)in->deleted,
           (unsigned long long)in->memory_bytes, (unsigned long long)in->disk_bytes);
}
