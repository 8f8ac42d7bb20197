/*
 * search_common.c -- query loading shared by search and bench (see
 * search_common.h).
 */
#include "cli/search_common.h"

#include <stdlib.h>

#include "cli/cli.h"
#include "cli/readers.h"

int load_queries(ndl_collection *c, const char *name, const char *path, float **out, size_t *nq,
                 uint32_t *dim)
{
    *out = NULL;
    ndl_collection_info info;
    int rc = cli_coll_info(c, &info);
    if (rc != CLI_OK)
        return rc;
    char why[128];
    snprintf(why, sizeof why, "collection '%s' has dimension %u", name, info.config.dimension);
    vec_expect ex = {info.config.dimension, why, info.config.metric == NDL_METRIC_HAMMING, 0, 0};
    cli_vecs v;
    rc = vecs_load(path, FMT_UNKNOWN, &ex, &v);
    if (rc != CLI_OK)
        return rc;
    float *q = malloc(v.n * (size_t)v.dim * sizeof *q);
    if (!q) {
        vecs_free(&v);
        return cli_fail(CLI_ERR, "out of memory for %zu queries", v.n);
    }
    vecs_rows(&v, 0, v.n, q);
    *out = q;
    *nq = v.n;
    *dim = v.dim;
    vecs_free(&v);
    return CLI_OK;
}

int query_args_check(const char *command, const char *const *pos, size_t npos,
                     const cli_opt *queries, const cli_opt *k, const cli_opt *nprobe,
                     const char **name)
{
    int rc = cli_name_arg(command, "a collection NAME", pos, npos);
    if (rc != CLI_OK)
        return rc;
    *name = pos[0];
    if (!queries->value)
        return cli_missing(command, "--queries FILE");
    if (!k->value)
        return cli_missing(command, "--k");
    if (nprobe->value)
        return cli_fail(CLI_USAGE, "--nprobe is not supported yet (it belongs to the ivf index)");
    return CLI_OK;
}
