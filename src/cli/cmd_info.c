/*
 * cmd_info.c -- `needle info [NAME] [--json]`: without NAME the collections
 * and their counts; with NAME its config, count, deleted points, memory and
 * disk bytes. The JSON shapes follow the HTTP API (SPEC section 3).
 */
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"

enum { O_DATA, O_JSON, O_SALVAGE, O_N };

static int get_info(ndl_db *db, const char *name, ndl_collection_info *info)
{
    ndl_collection *c;
    int rc = cli_coll_open(db, name, &c);
    if (rc != CLI_OK)
        return rc;
    rc = cli_coll_info(c, info);
    return cli_coll_close(c, rc);
}

static void print_one_json(const ndl_collection_info *in)
{
    const ndl_collection_config *c = &in->config;
    fputs("{\"name\":", stdout);
    cli_json_string(stdout, in->name, strlen(in->name));
    printf(",\"dimension\":%u,\"metric\":\"%s\",\"index\":{\"type\":\"%s\"", c->dimension,
           ndl_metric_name(c->metric), ndl_index_name(c->index));
    if (c->index == NDL_INDEX_HNSW)
        printf(",\"m\":%u,\"ef_construction\":%u", c->hnsw_m, c->hnsw_ef_construction);
    fputs("},\"quantization\":{\"type\":\"none\"},\"fields\":{},", stdout);
    if (c->index == NDL_INDEX_HNSW) {
        printf("\"search\":{\"ef\":%u,\"recall\":", in->search_ef);
        if (in->search_ef_queries)
            printf("%.4f", in->search_ef_recall);
        else
            fputs("null", stdout);
        printf(",\"sample_queries\":%u},", in->search_ef_queries);
    }
    cli_print_sizes_json(in);
    if (in->salvaged[0]) {
        fputs(",\"salvaged\":", stdout);
        cli_json_string(stdout, in->salvaged, strlen(in->salvaged));
    }
    fputs("}\n", stdout);
}

static void print_one_text(const ndl_collection_info *in)
{
    const ndl_collection_config *c = &in->config;
    char mem[32], disk[32];
    cli_human_bytes(in->memory_bytes, mem, sizeof mem);
    cli_human_bytes(in->disk_bytes, disk, sizeof disk);
    printf("name:          %s\n", in->name);
    printf("dimension:     %u\n", c->dimension);
    printf("metric:        %s\n", ndl_metric_name(c->metric));
    if (c->index == NDL_INDEX_HNSW)
        printf("index:         hnsw (m=%u, ef_construction=%u)\n", c->hnsw_m,
               c->hnsw_ef_construction);
    else
        printf("index:         %s\n", ndl_index_name(c->index));
    printf("quantization:  none\n");
    if (c->index == NDL_INDEX_HNSW) {
        if (in->search_ef_queries)
            printf("search ef:     %u (recall@10 %.4f on %u sampled queries)\n", in->search_ef,
                   in->search_ef_recall, in->search_ef_queries);
        else
            printf("search ef:     %u (not yet learned from queries)\n", in->search_ef);
    }
    printf("count:         %llu\n", (unsigned long long)in->count);
    printf("deleted:       %llu\n", (unsigned long long)in->deleted);
    printf("memory:        %s (%llu bytes)\n", mem, (unsigned long long)in->memory_bytes);
    printf("disk:          %s (%llu bytes)\n", disk, (unsigned long long)in->disk_bytes);
    if (in->dropped_log_bytes)
        printf("log tail:      %llu unacknowledged bytes dropped at open (%s)\n",
               (unsigned long long)in->dropped_log_bytes, in->dropped_log_at);
    if (in->salvaged[0])
        printf("salvaged:      %s\n", in->salvaged);
}

static int list_all(ndl_db *db, const char *dir, int json)
{
    char **names = NULL;
    size_t n = 0;
    ndl_error err = {0};
    ndl_status st = ndl_collection_list(db, &names, &n, &err);
    if (st != NDL_OK)
        return cli_fail_lib(st, &err);
    int rc = CLI_OK;
    /* Gather first so a failure prints nothing half-way. */
    ndl_collection_info *infos = n ? calloc(n, sizeof *infos) : NULL;
    if (n && !infos) {
        ndl_free(names);
        return cli_fail(CLI_ERR, "out of memory");
    }
    for (size_t i = 0; i < n && rc == CLI_OK; i++)
        rc = get_info(db, names[i], &infos[i]);
    if (rc == CLI_OK) {
        if (json) {
            fputs("{\"collections\":[", stdout);
            for (size_t i = 0; i < n; i++) {
                fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
                cli_json_string(stdout, names[i], strlen(names[i]));
                printf(",\"count\":%llu}", (unsigned long long)infos[i].count);
            }
            fputs("]}\n", stdout);
        } else if (n == 0) {
            printf("no collections in '%s'\n", dir);
        } else {
            printf("%-24s %7s  %-8s %-6s %12s\n", "NAME", "DIM", "METRIC", "INDEX", "COUNT");
            for (size_t i = 0; i < n; i++)
                printf("%-24s %7u  %-8s %-6s %12llu\n", names[i], infos[i].config.dimension,
                       ndl_metric_name(infos[i].config.metric),
                       ndl_index_name(infos[i].config.index),
                       (unsigned long long)infos[i].count);
        }
    }
    free(infos);
    ndl_free(names);
    return rc;
}

int cmd_info(int argc, char **argv)
{
    cli_opt o[O_N] = {[O_DATA] = {"data", 1, NULL, 0},
                       [O_JSON] = {"json", 0, NULL, 0},
                       [O_SALVAGE] = {"salvage", 0, NULL, 0}};
    const char *pos[1];
    size_t npos;
    int help;
    int rc = cli_parse(argc, argv, o, O_N, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    if (npos == 1 && (rc = cli_check_name(pos[0])) != CLI_OK)
        return rc;
    const char *dir = o[O_DATA].value ? o[O_DATA].value : CLI_DEFAULT_DATA;
    int json = o[O_JSON].value != NULL;
    ndl_db *db;
    cli_salvage = o[O_SALVAGE].value != NULL;
    if ((rc = cli_db_open(dir, CLI_DB_READ_ONLY, &db)) != CLI_OK)
        return rc;
    if (npos == 0) {
        rc = list_all(db, dir, json);
    } else {
        ndl_collection_info info;
        rc = get_info(db, pos[0], &info);
        if (rc == CLI_OK) {
            if (json)
                print_one_json(&info);
            else
                print_one_text(&info);
        }
    }
    return cli_db_close(db, rc);
}
