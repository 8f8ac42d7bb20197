/*
 * cmd_create.c -- `needle create NAME --dim D --metric M [--index flat|hnsw]
 * [--m M] [--ef-construction E] [--quantization none]`. The option checks
 * are shared with `needle import`, which can create collections too.
 */
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cmd_create.h"

int create_opts_parse(const create_opts *in, ndl_collection_config *cfg)
{
    ndl_collection_config_init(cfg);
    ndl_error err = {0};
    int rc;
    if (in->dim && (rc = cli_opt_u32(in->dim, NDL_DIM_MIN, NDL_DIM_MAX, &cfg->dimension)) != CLI_OK)
        return rc;
    if (in->metric) {
        ndl_metric m;
        if (ndl_metric_parse(in->metric->value, &m, &err) != NDL_OK)
            return cli_fail(CLI_USAGE, "--metric: %s", err.msg);
        cfg->metric = m;
    }
    if (in->index) {
        const char *v = in->index->value;
        if (strcmp(v, "ivf") == 0)
            return cli_fail(CLI_USAGE, "--index ivf is not supported yet (use flat or hnsw)");
        ndl_index_type t;
        if (ndl_index_parse(v, &t, &err) != NDL_OK)
            return cli_fail(CLI_USAGE, "--index: %s", err.msg);
        cfg->index = t;
    }
    if (in->nlist)
        return cli_fail(CLI_USAGE, "--nlist is not supported yet (it belongs to the ivf index)");
    if (in->quantization && strcmp(in->quantization->value, "none") != 0)
        return cli_fail(CLI_USAGE, "--quantization %s is not supported yet (only 'none')",
                        in->quantization->value);
    if (in->field)
        return cli_fail(CLI_USAGE, "--field is not supported yet (payload fields come later)");
    if ((in->m || in->ef_construction) && cfg->index != NDL_INDEX_HNSW)
        return cli_fail(CLI_USAGE, "--m and --ef-construction apply only to --index hnsw");
    if (in->m && (rc = cli_opt_u32(in->m, NDL_HNSW_M_MIN, NDL_HNSW_M_MAX, &cfg->hnsw_m)) != CLI_OK)
        return rc;
    if (in->ef_construction &&
        (rc = cli_opt_u32(in->ef_construction, NDL_HNSW_EF_CONSTRUCTION_MIN,
                          NDL_HNSW_EF_CONSTRUCTION_MAX, &cfg->hnsw_ef_construction)) != CLI_OK)
        return rc;
    return CLI_OK;
}

void create_describe(const ndl_collection_config *cfg, char *buf, size_t size)
{
    if (cfg->index == NDL_INDEX_HNSW)
        snprintf(buf, size, "dimension %u, metric %s, index hnsw (m=%u, ef_construction=%u)",
                 cfg->dimension, ndl_metric_name(cfg->metric), cfg->hnsw_m,
                 cfg->hnsw_ef_construction);
    else
        snprintf(buf, size, "dimension %u, metric %s, index %s", cfg->dimension,
                 ndl_metric_name(cfg->metric), ndl_index_name(cfg->index));
}

enum { O_DATA, O_DIM, O_METRIC, O_INDEX, O_M, O_EFC, O_NLIST, O_QUANT, O_FIELD, O_N };

int cmd_create(int argc, char **argv)
{
    cli_opt o[O_N] = {
        [O_DATA] = {"data", 1, NULL, 0},     [O_DIM] = {"dim", 1, NULL, 0},
        [O_METRIC] = {"metric", 1, NULL, 0}, [O_INDEX] = {"index", 1, NULL, 0},
        [O_M] = {"m", 1, NULL, 0},           [O_EFC] = {"ef-construction", 1, NULL, 0},
        [O_NLIST] = {"nlist", 1, NULL, 0},   [O_QUANT] = {"quantization", 1, NULL, 0},
        [O_FIELD] = {"field", 1, NULL, 0},
    };
    const char *pos[1];
    size_t npos;
    int help;
    int rc = cli_parse(argc, argv, o, O_N, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    if ((rc = cli_name_arg("create", "a collection NAME", pos, npos)) != CLI_OK)
        return rc;
    if (!o[O_DIM].value)
        return cli_missing("create", "--dim");
    if (!o[O_METRIC].value)
        return cli_missing("create", "--metric");
#define OPT(i) (o[i].value ? &o[i] : NULL)
    create_opts co = {OPT(O_DIM), OPT(O_METRIC), OPT(O_INDEX), OPT(O_M),
                      OPT(O_EFC), OPT(O_NLIST), OPT(O_QUANT), OPT(O_FIELD)};
#undef OPT
    ndl_collection_config cfg;
    if ((rc = create_opts_parse(&co, &cfg)) != CLI_OK)
        return rc;

    const char *dir = o[O_DATA].value ? o[O_DATA].value : CLI_DEFAULT_DATA;
    ndl_db *db;
    if ((rc = cli_db_open(dir, CLI_DB_CREATE, &db)) != CLI_OK)
        return rc;
    ndl_error err = {0};
    ndl_collection *c = NULL;
    ndl_status st = ndl_collection_create(db, pos[0], &cfg, &c, &err);
    if (st != NDL_OK) {
        rc = cli_fail_lib(st, &err);
    } else {
        st = ndl_collection_close(c, &err);
        if (st != NDL_OK)
            rc = cli_fail_lib(st, &err);
    }
    rc = cli_db_close(db, rc);
    if (rc == CLI_OK) {
        char desc[160];
        create_describe(&cfg, desc, sizeof desc);
        printf("created collection '%s' (%s)\n", pos[0], desc);
    }
    return rc;
}
