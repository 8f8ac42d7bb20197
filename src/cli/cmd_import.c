/*
 * cmd_import.c -- `needle import NAME FILE`: bulk load. The whole file is
 * read and validated (format, dimension against the collection, finite
 * values, JSON lines payloads against the payload rules and the size limit)
 * before the database or the collection is created or touched, so a bad file
 * leaves nothing behind; then the rows are upserted in batches. Only
 * a library failure (memory, disk) can stop it between batches: a collection
 * this run created is then dropped again.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cmd_create.h"
#include "cli/progress.h"
#include "cli/readers.h"

#define IMPORT_BATCH_DEFAULT 10000u
#define IMPORT_BATCH_MAX 1000000u
#define IMPORT_BATCH_BYTES ((size_t)256 << 20)

enum {
    O_DATA, O_FORMAT, O_DIM, O_METRIC, O_INDEX, O_M, O_EFC, O_NLIST, O_QUANT, O_FIELD,
    O_THREADS, O_BATCH, O_FSYNC, O_MAX_PAYLOAD, O_N
};

typedef struct import_progress {
    cli_progress bar;
    uint64_t base;   /* rows written before the current batch */
} import_progress;

static int on_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)total;
    import_progress *p = ctx;
    progress_update(&p->bar, p->base + done);
    return 0;
}

/* An existing collection must agree with every config option given. */
static int check_existing(const char *name, const ndl_collection_config *have,
                          const ndl_collection_config *want, const cli_opt *o)
{
    if (o[O_DIM].value && have->dimension != want->dimension)
        return cli_fail(CLI_ERR, "collection '%s' has dimension %u; --dim is %u", name,
                        have->dimension, want->dimension);
    if (o[O_METRIC].value && have->metric != want->metric)
        return cli_fail(CLI_ERR, "collection '%s' has metric %s; --metric is %s", name,
                        ndl_metric_name(have->metric), ndl_metric_name(want->metric));
    if (o[O_INDEX].value && have->index != want->index)
        return cli_fail(CLI_ERR, "collection '%s' has index %s; --index is %s", name,
                        ndl_index_name(have->index), ndl_index_name(want->index));
    if (o[O_M].value && have->hnsw_m != want->hnsw_m)
        return cli_fail(CLI_ERR, "collection '%s' has m %u; --m is %u", name, have->hnsw_m,
                        want->hnsw_m);
    if (o[O_EFC].value && have->hnsw_ef_construction != want->hnsw_ef_construction)
        return cli_fail(CLI_ERR, "collection '%s' has ef_construction %u; --ef-construction is %u",
                        name, have->hnsw_ef_construction, want->hnsw_ef_construction);
    return CLI_OK;
}

/* Rows in the write starting at row first: at most batch of them and, past
 * the first, at most IMPORT_BATCH_BYTES of vectors and payloads together (a
 * batch is one log record; 10000 points of 16 MiB payloads would not fit). */
static size_t batch_rows(const cli_vecs *v, size_t first, uint32_t batch)
{
    size_t row_bytes = (size_t)v->dim * sizeof(float), bytes = 0, cnt = 0;
    while (cnt < batch && first + cnt < v->n) {
        const char *p = vecs_payload(v, first + cnt);
        size_t b = row_bytes + (p ? strlen(p) : 0);
        if (cnt && bytes + b > IMPORT_BATCH_BYTES)
            break;
        bytes += b;
        cnt++;
    }
    return cnt;
}

/* Upsert all rows of v (with their payloads) in batches. */
static int write_all(ndl_collection *c, const char *name, const cli_vecs *v, uint32_t batch,
                     uint32_t threads)
{
    /* A batch never exceeds the file, nor IMPORT_BATCH_BYTES of floats: the
     * default of 10000 rows would be 2.6 GB at dimension 65536. */
    size_t row_bytes = (size_t)v->dim * sizeof(float);
    if (batch > v->n)
        batch = (uint32_t)v->n;
    if ((size_t)batch * row_bytes > IMPORT_BATCH_BYTES)
        batch = (uint32_t)(IMPORT_BATCH_BYTES / row_bytes > 0 ? IMPORT_BATCH_BYTES / row_bytes : 1);
    float *buf = malloc((size_t)batch * row_bytes);
    ndl_id *ids = v->ids ? NULL : malloc((size_t)batch * sizeof *ids);
    const char **pays = v->pay_off ? malloc((size_t)batch * sizeof *pays) : NULL;
    if (!buf || (!v->ids && !ids) || (v->pay_off && !pays)) {
        free(buf);
        free(ids);
        free(pays);
        return cli_fail(CLI_ERR, "out of memory for a batch of %u vectors", batch);
    }
    import_progress prog;
    progress_start(&prog.bar, "importing", v->n);
    prog.base = 0;
    ndl_write_options wo;
    ndl_write_options_init(&wo);
    wo.threads = threads;
    wo.progress = on_progress;
    wo.progress_ctx = &prog;
    int rc = CLI_OK;
    size_t cnt;
    for (size_t first = 0; first < v->n; first += cnt) {
        cnt = batch_rows(v, first, batch);
        vecs_rows(v, first, cnt, buf);
        const ndl_id *bids = v->ids ? v->ids + first : ids;
        if (!v->ids)
            for (size_t i = 0; i < cnt; i++)
                ids[i] = ndl_id_u64(first + i);
        for (size_t i = 0; pays && i < cnt; i++)
            pays[i] = vecs_payload(v, first + i);
        prog.base = first;
        ndl_error err = {0};
        ndl_status st = ndl_collection_upsert_points(c, cnt, bids, buf, pays, &wo, &err);
        if (st != NDL_OK) {
            progress_finish(&prog.bar);
            cli_fail_lib(st, &err);
            rc = cli_fail(CLI_ERR, "import into '%s' stopped after %zu of %zu vectors", name,
                          first, v->n);
            break;
        }
        progress_update(&prog.bar, first + cnt);
    }
    progress_finish(&prog.bar);
    free(buf);
    free(ids);
    free(pays);
    return rc;
}

int cmd_import(int argc, char **argv)
{
    uint64_t t0 = cli_now_ns();
    cli_opt o[O_N] = {
        [O_DATA] = {"data", 1, NULL, 0},       [O_FORMAT] = {"format", 1, NULL, 0},
        [O_DIM] = {"dim", 1, NULL, 0},         [O_METRIC] = {"metric", 1, NULL, 0},
        [O_INDEX] = {"index", 1, NULL, 0},     [O_M] = {"m", 1, NULL, 0},
        [O_EFC] = {"ef-construction", 1, NULL, 0}, [O_NLIST] = {"nlist", 1, NULL, 0},
        [O_QUANT] = {"quantization", 1, NULL, 0},  [O_FIELD] = {"field", 1, NULL, 0},
        [O_THREADS] = {"threads", 1, NULL, 0}, [O_BATCH] = {"batch", 1, NULL, 0},
        [O_FSYNC] = {"fsync", 1, NULL, 0},   [O_MAX_PAYLOAD] = {"max-payload-bytes", 1, NULL, 0},
    };
    const char *pos[2];
    size_t npos;
    int help;
    int rc = cli_parse(argc, argv, o, O_N, pos, 2, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    if ((rc = cli_name_arg("import", "a collection NAME and a FILE", pos, npos)) != CLI_OK)
        return rc;
    if (npos < 2)
        return cli_missing("import", "a FILE to read");
    const char *name = pos[0], *path = pos[1];
    cli_format fmt = FMT_UNKNOWN;
    if (o[O_FORMAT].value) {
        fmt = cli_format_parse(o[O_FORMAT].value);
        if (fmt == FMT_UNKNOWN) {
            if (strcmp(o[O_FORMAT].value, "csv") == 0)
                return cli_fail(CLI_USAGE, "--format csv is not supported yet");
            return cli_fail(CLI_USAGE,
                            "--format: unknown format '%s' (use fvecs, bvecs, npy or jsonl)",
                            o[O_FORMAT].value);
        }
    } else {
        cli_format f = cli_format_of_path(path);
        if (f == FMT_UNKNOWN || f == FMT_IVECS)
            return cli_fail(CLI_USAGE, "cannot tell the format of '%s' from its name; give "
                            "--format fvecs, bvecs, npy or jsonl", path);
    }
#define OPT(i) (o[i].value ? &o[i] : NULL)
    create_opts co = {OPT(O_DIM), OPT(O_METRIC), OPT(O_INDEX), OPT(O_M),
                      OPT(O_EFC), OPT(O_NLIST), OPT(O_QUANT), OPT(O_FIELD)};
#undef OPT
    ndl_collection_config want;
    if ((rc = create_opts_parse(&co, &want)) != CLI_OK)
        return rc;
    uint32_t threads = cli_cpus(), batch = IMPORT_BATCH_DEFAULT;
    if (o[O_THREADS].value && (rc = cli_opt_u32(&o[O_THREADS], 1, 1024, &threads)) != CLI_OK)
        return rc;
    if (o[O_BATCH].value && (rc = cli_opt_u32(&o[O_BATCH], 1, IMPORT_BATCH_MAX, &batch)) != CLI_OK)
        return rc;
    if (o[O_FSYNC].value) {
        ndl_error ferr = {0};
        if (ndl_fsync_parse(o[O_FSYNC].value, &cli_fsync_mode, &ferr) != NDL_OK)
            return cli_fail(CLI_USAGE, "--fsync: %s", ferr.msg);
    }
    if (o[O_MAX_PAYLOAD].value &&
        (rc = cli_opt_u32(&o[O_MAX_PAYLOAD], 2, NDL_PAYLOAD_BYTES_MAX, &cli_max_payload_bytes)) !=
            CLI_OK)
        return rc;
    int creating = o[O_METRIC].value != NULL;
    const char *dir = o[O_DATA].value ? o[O_DATA].value : CLI_DEFAULT_DATA;

    /* Learn what the file must match: an existing collection's config, or the
     * options. The database is created only after the file proved good. */
    ndl_db *db = NULL;
    ndl_collection *c = NULL;
    ndl_collection_config cfg = want;
    int exists = 0;
    cli_vecs v;
    memset(&v, 0, sizeof v);
    size_t n = 0;
    int db_exists = 0;
    if ((rc = cli_db_exists(dir, &db_exists)) != CLI_OK)
        return rc;
    if (db_exists || !creating) {
        if ((rc = cli_db_open(dir, 0, &db)) != CLI_OK)
            return rc;
        ndl_error err = {0};
        ndl_status s = ndl_collection_open(db, name, &c, &err);
        if (s == NDL_OK) {
            exists = 1;
            ndl_collection_info info;
            s = ndl_collection_info_get(c, &info, &err);
            if (s != NDL_OK)
                rc = cli_fail_lib(s, &err);
            else
                rc = check_existing(name, &info.config, &want, o);
            cfg = info.config;
        } else if (s == NDL_NOT_FOUND && !creating) {
            rc = cli_fail(CLI_ERR, "collection '%s' does not exist; give --metric (and --dim) "
                          "to create it", name);
        } else if (s != NDL_NOT_FOUND) {
            rc = cli_fail_lib(s, &err);
        }
        if (rc != CLI_OK)
            goto out;
    }

    char why[128];
    vec_expect ex = {0};
    if (exists) {
        ex.dim = cfg.dimension;
        snprintf(why, sizeof why, "collection '%s' has dimension %u", name, cfg.dimension);
    } else if (o[O_DIM].value) {
        ex.dim = cfg.dimension;
        snprintf(why, sizeof why, "--dim is %u", cfg.dimension);
    }
    ex.dim_why = why;
    ex.binary01 = cfg.metric == NDL_METRIC_HAMMING;
    ex.need_ids = 1;
    ex.max_payload_bytes = cli_max_payload_bytes;
    if ((rc = vecs_load(path, fmt, &ex, &v)) != CLI_OK)
        goto out;
    n = v.n;

    if (!exists) {
        cfg.dimension = v.dim;
        if (!db && (rc = cli_db_open(dir, CLI_DB_CREATE, &db)) != CLI_OK)
            goto out_vecs;
        ndl_error err = {0};
        ndl_status s = ndl_collection_create(db, name, &cfg, &c, &err);
        if (s != NDL_OK) {
            rc = cli_fail_lib(s, &err);
            goto out_vecs;
        }
    }
    rc = write_all(c, name, &v, batch, threads);
    if (rc != CLI_OK && !exists) {
        /* Only a library failure (memory, disk) gets here, after some
         * batches landed: a collection this run created goes again, so a
         * failed import never leaves a half-filled new collection. */
        ndl_collection_close(c, NULL);
        c = NULL;
        ndl_error err = {0};
        if (ndl_collection_drop(db, name, &err) != NDL_OK)
            cli_fail(CLI_ERR, "could not remove the partly imported collection '%s': %s", name,
                     err.msg);
    }

out_vecs:
    vecs_free(&v);
out:
    rc = cli_coll_close(c, rc);
    if (db)
        rc = cli_db_close(db, rc);
    if (rc == CLI_OK)
        printf("imported %zu vectors into '%s' in %.1f s\n", n, name,
               (double)(cli_now_ns() - t0) / 1e9);
    return rc;
}
