/*
 * checkpoint_pause.c -- how long a checkpoint holds up writers.
 *
 * Builds an HNSW collection of N random vectors (d dims), then runs one
 * writer upserting single points (fsync none, so the write itself is cheap)
 * while another thread checkpoints (ndl_collection_flush) ROUNDS times.
 * Prints, as one JSON line: the checkpoint duration (median), and the write
 * latency median and maximum outside and during checkpoints (a write is
 * "during" only if it began after the checkpoint or compaction started; one
 * that began before counts outside, whatever it waited for: the untimed
 * delete below, or the start of the checkpoint). A checkpoint
 * that blocked writers would show a maximum as long as the checkpoint.
 * With MODE "compact" each round first deletes an eighth of the loaded
 * points (untimed), then compacts (ndl_collection_compact, which ends with
 * a checkpoint) instead of only checkpointing.
 *
 * usage: checkpoint_pause DIR [N=200000] [DIM=128] [ROUNDS=5] [MODE=checkpoint|compact]
 * build: see bench/checkpoint_pause.sh
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include "needle.h"

static uint64_t rng = BENCH_SEED;
static float frand(void) { return (float)(bench_xorshift(&rng) >> 40) / (float)(1u << 24); }

typedef struct run {
    ndl_collection *c;
    uint32_t dim;
    atomic_int stop;
    atomic_int in_checkpoint;
    _Atomic double since; /* when in_checkpoint was last set */
    double *lat_in, *lat_out;
    size_t n_in, n_out, cap;
} run;

static void *writer(void *arg)
{
    run *r = arg;
    float *v = malloc(r->dim * sizeof *v);
    for (uint64_t i = 0; !atomic_load(&r->stop); i++) {
        for (uint32_t j = 0; j < r->dim; j++)
            v[j] = frand();
        ndl_id id = ndl_id_u64(10000000 + i % 50000);
        int during = atomic_load(&r->in_checkpoint);
        double t0 = bench_now();
        if (ndl_collection_upsert(r->c, 1, &id, v, NULL, NULL) != NDL_OK) {
            fprintf(stderr, "upsert failed\n");
            exit(1);
        }
        double dt = bench_now() - t0;
        /* a write that began earlier counts only if it waited for nothing
         * before the checkpoint began (the untimed delete holds the lock) */
        during |= atomic_load(&r->in_checkpoint) && t0 >= atomic_load(&r->since);
        if (during && r->n_in < r->cap)
            r->lat_in[r->n_in++] = dt;
        else if (!during && r->n_out < r->cap)
            r->lat_out[r->n_out++] = dt;
    }
    free(v);
    return NULL;
}

static double median(double *v, size_t n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [N] [DIM] [ROUNDS] [checkpoint|compact]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    uint32_t n = argc > 2 ? (uint32_t)atoi(argv[2]) : 200000;
    uint32_t dim = argc > 3 ? (uint32_t)atoi(argv[3]) : 128;
    int rounds = argc > 4 ? atoi(argv[4]) : 5;
    if (argc > 5 && strcmp(argv[5], "compact") != 0 && strcmp(argv[5], "checkpoint") != 0) {
        fprintf(stderr, "checkpoint_pause: MODE is checkpoint or compact, not '%s'\n", argv[5]);
        return 2;
    }
    int compact = argc > 5 && strcmp(argv[5], "compact") == 0;
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.fsync = NDL_FSYNC_NONE;
    o.checkpoint_interval_ms = 0;
    o.checkpoint_wal_bytes = 0;
    ndl_db *db;
    ndl_error e;
    if (ndl_db_open(dir, &o, &db, &e) != NDL_OK) {
        fprintf(stderr, "open: %s\n", e.msg);
        return 1;
    }
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = dim;
    cfg.hnsw_ef_construction = 64;
    ndl_collection *c;
    if (ndl_collection_create(db, "pause", &cfg, &c, &e) != NDL_OK) {
        fprintf(stderr, "create: %s\n", e.msg);
        return 1;
    }
    const uint32_t batch = 10000;
    float *v = malloc((size_t)batch * dim * sizeof *v);
    ndl_id *ids = malloc(batch * sizeof *ids);
    ndl_write_options wo;
    ndl_write_options_init(&wo);
    wo.threads = 2;
    for (uint32_t done = 0; done < n; done += batch) {
        uint32_t m = n - done < batch ? n - done : batch;
        for (uint32_t i = 0; i < m; i++) {
            ids[i] = ndl_id_u64(done + i);
            for (uint32_t j = 0; j < dim; j++)
                v[(size_t)i * dim + j] = frand();
        }
        if (ndl_collection_upsert(c, m, ids, v, &wo, &e) != NDL_OK) {
            fprintf(stderr, "load: %s\n", e.msg);
            return 1;
        }
    }
    ndl_collection_flush(c, NULL);

    run r = {.c = c, .dim = dim, .cap = 1 << 22};
    r.lat_in = malloc(r.cap * sizeof *r.lat_in);
    r.lat_out = malloc(r.cap * sizeof *r.lat_out);
    pthread_t t;
    pthread_create(&t, NULL, writer, &r);
    double *ck = malloc((size_t)rounds * sizeof *ck);
    for (int i = 0; i < rounds; i++) {
        struct timespec gap = {0, 300000000};
        nanosleep(&gap, NULL);
        if (compact) {
            uint32_t nd = 0;
            ndl_id *dels = malloc(((size_t)n / 8 + 1) * sizeof *dels);
            for (uint32_t k = (uint32_t)i % 8; k < n; k += 8)
                dels[nd++] = ndl_id_u64(k);
            if (ndl_collection_delete(c, nd, dels, NULL, &e) != NDL_OK) {
                fprintf(stderr, "delete: %s\n", e.msg);
                return 1;
            }
            free(dels);
        }
        double t0 = bench_now();
        atomic_store(&r.since, t0);
        atomic_store(&r.in_checkpoint, 1);
        if ((compact ? ndl_collection_compact(c, &e) : ndl_collection_flush(c, &e)) != NDL_OK) {
            fprintf(stderr, "checkpoint: %s\n", e.msg);
            return 1;
        }
        ck[i] = bench_now() - t0;
        atomic_store(&r.in_checkpoint, 0);
    }
    atomic_store(&r.stop, 1);
    pthread_join(t, NULL);
    double max_in = 0, max_out = 0;
    for (size_t i = 0; i < r.n_in; i++)
        max_in = r.lat_in[i] > max_in ? r.lat_in[i] : max_in;
    for (size_t i = 0; i < r.n_out; i++)
        max_out = r.lat_out[i] > max_out ? r.lat_out[i] : max_out;
    printf("{\"bench\":\"checkpoint_pause\",\"op\":\"%s\",\"n\":%u,\"dim\":%u,\"rounds\":%d,"
           "\"checkpoint_s_median\":%.3f,\"writes_during\":%zu,\"write_ms_p50_during\":%.3f,"
           "\"write_ms_max_during\":%.2f,\"writes_outside\":%zu,\"write_ms_p50_outside\":%.3f,"
           "\"write_ms_max_outside\":%.2f}\n",
           compact ? "compact" : "checkpoint", n, dim, rounds, median(ck, (size_t)rounds), r.n_in, median(r.lat_in, r.n_in) * 1e3,
           max_in * 1e3, r.n_out, median(r.lat_out, r.n_out) * 1e3, max_out * 1e3);
    ndl_db_close(db, NULL);
    return 0;
}
