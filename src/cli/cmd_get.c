/*
 * cmd_get.c -- `needle get NAME ID [ID...] [--no-vector] [--string-ids]`:
 * one JSON line per point found, {"id":..,"vector":[..],"payload":{..}}
 * ("payload" null for a point without one; no "vector" with --no-vector). An ID
 * written as a plain decimal number that fits in 64 bits (no sign, no
 * leading zero) is a u64 id, anything else a string id; --string-ids makes
 * every ID a string. Like cat, it goes through every ID: an absent one is
 * reported on stderr and the exit status is 1 once all are done.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/text.h"

enum { O_DATA, O_NO_VECTOR, O_STRING, O_SALVAGE, O_N };

/* The id an argument names (see the top of the file). */
static ndl_id parse_id(const char *s, int strings)
{
    size_t len = strlen(s);
    int digits = len > 0 && (s[0] != '0' || len == 1);
    uint64_t v = 0;
    for (size_t i = 0; digits && i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            digits = 0;
        else
            v = v * 10 + d;
    }
    if (digits && !strings)
        return ndl_id_u64(v);
    ndl_id id = {s, (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len), 0};
    return id;
}

/* A string id must be 1..NDL_ID_STR_MAX bytes of valid UTF-8. */
static int check_id(const ndl_id *id)
{
    if (!id->str)
        return CLI_OK;
    char shown[80];
    const unsigned char *p = (const unsigned char *)id->str, *end = p + id->len;
    if (id->len == 0)
        return cli_fail(CLI_USAGE, "an ID is empty (ids are numbers or 1 to %d bytes of text)",
                        NDL_ID_STR_MAX);
    if (id->len > NDL_ID_STR_MAX)
        return cli_fail(CLI_USAGE, "id \"%s\" is %u bytes long; string ids hold at most %d bytes",
                        cli_safe_text(id->str, id->len, shown, sizeof shown), id->len,
                        NDL_ID_STR_MAX);
    while (p < end) {
        size_t k = cli_utf8_seq(p, end);
        if (k == 0)
            return cli_fail(CLI_USAGE, "id \"%s\" is not valid UTF-8",
                            cli_safe_text(id->str, id->len, shown, sizeof shown));
        p += k;
    }
    return CLI_OK;
}

/* Print one point, or report it absent. vec (NULL: no vector) has room
 * for dim floats. */
static int get_one(ndl_collection *c, const char *name, const ndl_id *id, float *vec, uint32_t dim)
{
    char *payload = NULL;
    ndl_error err = {0};
    ndl_status st = ndl_collection_get_point(c, *id, vec, &payload, &err);
    if (st == NDL_NOT_FOUND) {
        char shown[80];
        if (id->str)
            return cli_fail(CLI_ERR, "no point with id \"%s\" in '%s'",
                            cli_safe_text(id->str, id->len, shown, sizeof shown), name);
        return cli_fail(CLI_ERR, "no point with id %llu in '%s'", (unsigned long long)id->num,
                        name);
    }
    if (st != NDL_OK)
        return cli_fail_lib(st, &err);
    fputs("{\"id\":", stdout);
    cli_json_id(stdout, id);
    if (vec) {
        fputs(",\"vector\":[", stdout);
        for (uint32_t i = 0; i < dim; i++) {
            if (i)
                fputc(',', stdout);
            cli_json_number(stdout, vec[i]);
        }
        fputc(']', stdout);
    }
    fputs(",\"payload\":", stdout);
    fputs(payload ? payload : "null", stdout);  /* canonical JSON already */
    fputs("}\n", stdout);
    ndl_free(payload);
    return CLI_OK;
}

int cmd_get(int argc, char **argv)
{
    cli_opt o[O_N] = {
        [O_DATA] = {"data", 1, NULL, 0},
        [O_NO_VECTOR] = {"no-vector", 0, NULL, 0},
        [O_STRING] = {"string-ids", 0, NULL, 0},
        [O_SALVAGE] = {"salvage", 0, NULL, 0},
    };
    const char **pos = malloc((size_t)(argc > 1 ? argc : 1) * sizeof *pos);
    if (!pos)
        return cli_fail(CLI_ERR, "out of memory");
    size_t npos;
    int help;
    int rc = cli_parse(argc, argv, o, O_N, pos, (size_t)argc, &npos, &help);
    if (rc != CLI_OK || help) {
        free(pos);
        return rc;
    }
    ndl_id *ids = NULL;
    size_t n = npos > 1 ? npos - 1 : 0;
    rc = cli_name_arg("get", "a collection NAME and at least one ID", pos, npos);
    if (rc == CLI_OK && n == 0)
        rc = cli_missing("get", "at least one ID");
    if (rc == CLI_OK && !(ids = malloc(n * sizeof *ids)))
        rc = cli_fail(CLI_ERR, "out of memory");
    for (size_t i = 0; rc == CLI_OK && i < n; i++) {
        ids[i] = parse_id(pos[1 + i], o[O_STRING].value != NULL);
        rc = check_id(&ids[i]);
    }
    const char *name = npos ? pos[0] : NULL;
    free(pos);
    if (rc != CLI_OK) {
        free(ids);
        return rc;
    }

    const char *dir = o[O_DATA].value ? o[O_DATA].value : CLI_DEFAULT_DATA;
    ndl_db *db;
    cli_salvage = o[O_SALVAGE].value != NULL;
    if ((rc = cli_db_open(dir, CLI_DB_READ_ONLY | CLI_DB_VERIFY, &db)) != CLI_OK) {
        free(ids);
        return rc;
    }
    ndl_collection *c = NULL;
    float *vec = NULL;
    uint32_t dim = 0;
    if ((rc = cli_coll_open(db, name, &c)) != CLI_OK)
        goto out;
    if (!o[O_NO_VECTOR].value) {
        ndl_collection_info info;
        if ((rc = cli_coll_info(c, &info)) != CLI_OK)
            goto out;
        dim = info.config.dimension;
        if (!(vec = malloc((size_t)dim * sizeof *vec))) {
            rc = cli_fail(CLI_ERR, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int r = get_one(c, name, &ids[i], vec, dim);
        if (r != CLI_OK)
            rc = r;
    }
out:
    free(vec);
    free(ids);
    rc = cli_coll_close(c, rc);
    return cli_db_close(db, rc);
}
