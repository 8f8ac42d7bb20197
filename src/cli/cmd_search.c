/*
 * cmd_search.c -- `needle search NAME --queries FILE --k K`: one JSON line per
 * query ({"query":i,"results":[{"id":..,"score":..,"distance":..}]}; with
 * --with-payload each result also carries "payload": the stored canonical
 * JSON object verbatim, or null; --filter JSON keeps the points whose
 * payload matches, SPEC section 4), or the result ids as ivecs with --output
 * X.ivecs. Output files are written under a temporary name and renamed when
 * complete.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/readers.h"
#include "cli/search_common.h"
#include "cli/text.h"

#define SEARCH_CHUNK 1024  /* queries per batch call: bounds result memory */

enum {
    O_DATA, O_QUERIES, O_K, O_EF, O_EXACT, O_FILTER, O_OUTPUT, O_THREADS, O_NPROBE, O_PAYLOAD,
    O_SALVAGE, O_N
};

static int write_json(FILE *f, const ndl_results *r, size_t base, int with_payload)
{
    for (size_t q = 0; q < ndl_results_queries(r); q++) {
        const ndl_hit *h = ndl_results_hits(r, q);
        size_t n = ndl_results_count(r, q);
        fprintf(f, "{\"query\":%zu,\"results\":[", base + q);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ",{\"id\":" : "{\"id\":", f);
            cli_json_id(f, &h[i].id);
            fputs(",\"score\":", f);
            cli_json_number(f, h[i].score);
            fputs(",\"distance\":", f);
            cli_json_number(f, h[i].distance);
            if (with_payload) {
                const char *p = ndl_results_payload(r, q, i);
                fputs(",\"payload\":", f);
                fputs(p ? p : "null", f);  /* canonical JSON already */
            }
            fputc('}', f);
        }
        fputs("]}\n", f);
    }
    return CLI_OK;
}

static int write_ivecs(FILE *f, const ndl_results *r, size_t base)
{
    for (size_t q = 0; q < ndl_results_queries(r); q++) {
        const ndl_hit *h = ndl_results_hits(r, q);
        int32_t n = (int32_t)ndl_results_count(r, q);
        fwrite(&n, 4, 1, f);
        for (int32_t i = 0; i < n; i++) {
            if (h[i].id.str) {
                char shown[80];
                return cli_fail(CLI_ERR, "query %zu: result id \"%s\" is a string; ivecs output "
                                "holds integer ids only", base + q,
                                cli_safe_text(h[i].id.str, h[i].id.len, shown, sizeof shown));
            }
            if (h[i].id.num > INT32_MAX)
                return cli_fail(CLI_ERR, "query %zu: result id %llu does not fit ivecs (int32)",
                                base + q, (unsigned long long)h[i].id.num);
            int32_t id = (int32_t)h[i].id.num;
            fwrite(&id, 4, 1, f);
        }
    }
    return CLI_OK;
}

static int run_search(ndl_collection *c, const float *queries, size_t nq, uint32_t dim,
                      const ndl_search_params *sp, FILE *f, int ivecs)
{
    for (size_t first = 0; first < nq; first += SEARCH_CHUNK) {
        size_t cnt = nq - first < SEARCH_CHUNK ? nq - first : SEARCH_CHUNK;
        ndl_results *r = NULL;
        ndl_error err = {0};
        ndl_status st = ndl_collection_search_batch(c, cnt, queries + first * dim, sp, &r, &err);
        if (st != NDL_OK)
            return cli_fail_lib(st, &err);
        int rc = ivecs ? write_ivecs(f, r, first) : write_json(f, r, first, sp->with_payload);
        ndl_results_free(r);
        if (rc != CLI_OK)
            return rc;
    }
    return CLI_OK;
}

int cmd_search(int argc, char **argv)
{
    cli_opt o[O_N] = {
        [O_DATA] = {"data", 1, NULL, 0},     [O_QUERIES] = {"queries", 1, NULL, 0},
        [O_K] = {"k", 1, NULL, 0},           [O_EF] = {"ef", 1, NULL, 0},
        [O_EXACT] = {"exact", 0, NULL, 0},   [O_FILTER] = {"filter", 1, NULL, 0},
        [O_OUTPUT] = {"output", 1, NULL, 0}, [O_THREADS] = {"threads", 1, NULL, 0},
        [O_NPROBE] = {"nprobe", 1, NULL, 0}, [O_PAYLOAD] = {"with-payload", 0, NULL, 0},
        [O_SALVAGE] = {"salvage", 0, NULL, 0},
    };
    const char *pos[1];
    size_t npos;
    int help;
    int rc = cli_parse(argc, argv, o, O_N, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    const char *name;
    if ((rc = query_args_check("search", pos, npos, &o[O_QUERIES], &o[O_K], &o[O_NPROBE], &name)) !=
        CLI_OK)
        return rc;
    ndl_search_params sp;
    ndl_search_params_init(&sp);
    if ((rc = cli_opt_u32(&o[O_K], NDL_K_MIN, NDL_K_MAX, &sp.k)) != CLI_OK)
        return rc;
    if (o[O_EF].value) {
        if ((rc = cli_opt_u32(&o[O_EF], NDL_HNSW_EF_MIN, NDL_HNSW_EF_MAX, &sp.ef)) != CLI_OK)
            return rc;
        if (sp.ef < sp.k)
            return cli_fail(CLI_USAGE, "--ef %u is less than --k %u (ef must be >= k)", sp.ef, sp.k);
    }
    sp.exact = o[O_EXACT].value != NULL;
    sp.threads = cli_cpus();
    if (o[O_THREADS].value && (rc = cli_opt_u32(&o[O_THREADS], 1, 1024, &sp.threads)) != CLI_OK)
        return rc;
    const char *out_path = o[O_OUTPUT].value;
    int ivecs = out_path && cli_format_of_path(out_path) == FMT_IVECS;
    if (out_path && !*out_path)
        return cli_fail(CLI_USAGE, "--output needs a file name");
    sp.with_payload = o[O_PAYLOAD].value != NULL;
    if (sp.with_payload && ivecs)
        return cli_fail(CLI_USAGE, "--with-payload does not go with ivecs output (ids only)");

    ndl_filter *where = NULL; /* --filter JSON: SPEC section 4 */
    if (o[O_FILTER].value) {
        ndl_error e;
        ndl_status st = ndl_filter_parse(o[O_FILTER].value, strlen(o[O_FILTER].value), &where, &e);
        if (st != NDL_OK)
            return st == NDL_INVALID ? cli_fail(CLI_USAGE, "--filter: %s", e.msg)
                                     : cli_fail_lib(st, &e);
        sp.where = where;
    }

    const char *dir = o[O_DATA].value ? o[O_DATA].value : CLI_DEFAULT_DATA;
    ndl_db *db;
    cli_salvage = o[O_SALVAGE].value != NULL;
    if ((rc = cli_db_open(dir, CLI_DB_READ_ONLY | CLI_DB_VERIFY, &db)) != CLI_OK) {
        ndl_filter_free(where);
        return rc;
    }
    ndl_collection *c = NULL;
    float *queries = NULL;
    size_t nq = 0;
    uint32_t dim = 0;
    char *tmp = NULL;
    FILE *f = stdout;
    if ((rc = cli_coll_open(db, name, &c)) != CLI_OK)
        goto out;
    if ((rc = load_queries(c, name, o[O_QUERIES].value, &queries, &nq, &dim)) != CLI_OK)
        goto out;
    if (out_path) {
        size_t len = strlen(out_path) + 32;
        tmp = malloc(len);
        if (!tmp) {
            rc = cli_fail(CLI_ERR, "out of memory");
            goto out;
        }
        snprintf(tmp, len, "%s.tmp.%ld", out_path, (long)getpid());
        f = fopen(tmp, "wb");
        if (!f) {
            rc = cli_fail(CLI_ERR, "%s: %s", out_path, strerror(errno));
            f = stdout;
            goto out;
        }
    }
    rc = run_search(c, queries, nq, dim, &sp, f, ivecs);
    if (fflush(f) != 0 || ferror(f)) {
        if (rc == CLI_OK)
            rc = cli_fail(CLI_ERR, "%s: write error: %s", out_path ? out_path : "stdout",
                          strerror(errno));
    }
    if (f != stdout) {
        if (fclose(f) != 0 && rc == CLI_OK)
            rc = cli_fail(CLI_ERR, "%s: write error: %s", out_path, strerror(errno));
        if (rc == CLI_OK && rename(tmp, out_path) != 0)
            rc = cli_fail(CLI_ERR, "%s: %s", out_path, strerror(errno));
        if (rc != CLI_OK)
            unlink(tmp);
    }
out:
    ndl_filter_free(where);
    free(tmp);
    free(queries);
    rc = cli_coll_close(c, rc);
    return cli_db_close(db, rc);
}
