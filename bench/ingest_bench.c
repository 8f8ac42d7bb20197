/*
 * ingest_bench.c -- write-path benchmark over the public API: vectors/s of
 * upserts for a dimension, batch size, number of concurrent writers and
 * fsync mode, the time to reopen a collection of N vectors (checkpoint
 * mapped + graph loaded; nothing rebuilt), and the cost of a delete.
 *
 * Build:
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -Iinclude bench/ingest_bench.c build/libneedle.a \
 *       $(pkg-config --libs openblas jansson) -lpthread -lm -o build/ingest_bench
 * Examples:
 *   build/ingest_bench ingest --dim 128 --batch 1 --writers 8 --fsync always --seconds 3
 *   build/ingest_bench reopen --dim 128 --n 1000000 --index hnsw
 *   build/ingest_bench delete --dim 128 --n 20000 --fsync none
 * One JSON line per run on stdout. --dir is the scratch database
 * (default /tmp/needle-ingest-bench, removed first).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "needle.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct cfg {
    const char *mode, *dir, *fsync, *index;
    uint32_t dim, batch, writers;
    double seconds;
    uint64_t n;
} cfg;

typedef struct writer {
    ndl_collection *c;
    const cfg *k;
    uint32_t w;
    _Atomic int *stop;
    uint64_t written;
} writer;

static void fill(float *v, size_t n, uint64_t seed)
{
    uint64_t x = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (float)(x >> 40) / 16777216.0f;
    }
}

static void *write_loop(void *arg)
{
    writer *wr = arg;
    const cfg *k = wr->k;
    ndl_id *ids = malloc(k->batch * sizeof *ids);
    float *v = malloc((size_t)k->batch * k->dim * sizeof *v);
    fill(v, (size_t)k->batch * k->dim, wr->w + 1);
    uint64_t next = (uint64_t)wr->w << 40;
    while (!atomic_load(wr->stop)) {
        for (uint32_t i = 0; i < k->batch; i++)
            ids[i] = ndl_id_u64(next++);
        ndl_error e;
        if (ndl_collection_upsert(wr->c, k->batch, ids, v, NULL, &e) != NDL_OK) {
            fprintf(stderr, "upsert: %s\n", e.msg);
            break;
        }
        wr->written += k->batch;
    }
    free(ids);
    free(v);
    return NULL;
}

static ndl_db *open_db(const cfg *k)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    ndl_error e;
    if (ndl_fsync_parse(k->fsync, &o.fsync, &e) != NDL_OK) {
        fprintf(stderr, "%s\n", e.msg);
        exit(2);
    }
    ndl_db *db;
    if (ndl_db_open(k->dir, &o, &db, &e) != NDL_OK) {
        fprintf(stderr, "open: %s\n", e.msg);
        exit(1);
    }
    return db;
}

static ndl_collection *create(ndl_db *db, const cfg *k)
{
    ndl_collection_config c;
    ndl_collection_config_init(&c);
    c.dimension = k->dim;
    ndl_error e;
    if (ndl_index_parse(k->index, &c.index, &e) != NDL_OK) {
        fprintf(stderr, "%s\n", e.msg);
        exit(2);
    }
    ndl_collection *coll;
    if (ndl_collection_create(db, "bench", &c, &coll, &e) != NDL_OK) {
        fprintf(stderr, "create: %s\n", e.msg);
        exit(1);
    }
    return coll;
}

static void run_ingest(const cfg *k)
{
    ndl_db *db = open_db(k);
    ndl_collection *c = create(db, k);
    _Atomic int stop = 0;
    writer *ws = calloc(k->writers, sizeof *ws);
    pthread_t *t = calloc(k->writers, sizeof *t);
    double t0 = now_s();
    for (uint32_t i = 0; i < k->writers; i++) {
        ws[i] = (writer){c, k, i, &stop, 0};
        pthread_create(&t[i], NULL, write_loop, &ws[i]);
    }
    struct timespec d = {(time_t)k->seconds, (long)((k->seconds - (double)(time_t)k->seconds) * 1e9)};
    nanosleep(&d, NULL);
    atomic_store(&stop, 1);
    uint64_t total = 0;
    for (uint32_t i = 0; i < k->writers; i++) {
        pthread_join(t[i], NULL);
        total += ws[i].written;
    }
    double el = now_s() - t0;
    printf("{\"bench\":\"ingest\",\"dim\":%u,\"batch\":%u,\"writers\":%u,\"fsync\":\"%s\","
           "\"index\":\"%s\",\"vectors\":%llu,\"seconds\":%.2f,\"vectors_per_s\":%.1f}\n",
           k->dim, k->batch, k->writers, k->fsync, k->index, (unsigned long long)total, el,
           (double)total / el);
    ndl_db_close(db, NULL);
    free(ws);
    free(t);
}

static void run_reopen(const cfg *k)
{
    ndl_db *db = open_db(k);
    ndl_collection *c = create(db, k);
    const uint32_t chunk = 50000;
    ndl_id *ids = malloc(chunk * sizeof *ids);
    float *v = malloc((size_t)chunk * k->dim * sizeof *v);
    ndl_write_options w;
    ndl_write_options_init(&w);
    w.threads = 2;
    double tb = now_s();
    for (uint64_t first = 0; first < k->n; first += chunk) {
        uint32_t m = (uint32_t)(k->n - first < chunk ? k->n - first : chunk);
        fill(v, (size_t)m * k->dim, first + 7);
        for (uint32_t i = 0; i < m; i++)
            ids[i] = ndl_id_u64(first + i);
        ndl_error e;
        if (ndl_collection_upsert(c, m, ids, v, &w, &e) != NDL_OK) {
            fprintf(stderr, "upsert: %s\n", e.msg);
            exit(1);
        }
        fprintf(stderr, "\rbuilt %llu", (unsigned long long)(first + m));
    }
    double build = now_s() - tb;
    double tc = now_s();
    ndl_db_close(db, NULL); /* checkpoint */
    double close_s = now_s() - tc;
    double t0 = now_s();
    db = open_db(k);
    ndl_error e;
    if (ndl_collection_open(db, "bench", &c, &e) != NDL_OK) {
        fprintf(stderr, "reopen: %s\n", e.msg);
        exit(1);
    }
    double reopen = now_s() - t0;
    /* first search after reopen (touches the mapped pages it needs) */
    ndl_search_params p;
    ndl_search_params_init(&p);
    ndl_results *r;
    double ts = now_s();
    ndl_collection_search(c, v, &p, &r, NULL);
    double first = now_s() - ts;
    ndl_results_free(r);
    fprintf(stderr, "\n");
    printf("{\"bench\":\"reopen\",\"dim\":%u,\"n\":%llu,\"index\":\"%s\",\"build_s\":%.2f,"
           "\"checkpoint_s\":%.3f,\"reopen_s\":%.3f,\"first_search_ms\":%.2f,\"count\":%llu}\n",
           k->dim, (unsigned long long)k->n, k->index, build, close_s, reopen, first * 1e3,
           (unsigned long long)ndl_collection_count(c));
    ndl_db_close(db, NULL);
    free(ids);
    free(v);
}

/* Build n vectors, then delete every third id in one call: the cost of
 * HNSW delete repair per point. */
static void run_delete(const cfg *k)
{
    ndl_db *db = open_db(k);
    ndl_collection *c = create(db, k);
    ndl_id *ids = malloc(k->n * sizeof *ids);
    float *v = malloc((size_t)k->n * k->dim * sizeof *v);
    fill(v, (size_t)k->n * k->dim, 11);
    for (uint64_t i = 0; i < k->n; i++)
        ids[i] = ndl_id_u64(i);
    ndl_write_options w;
    ndl_write_options_init(&w);
    w.threads = 2;
    ndl_error e;
    if (ndl_collection_upsert(c, k->n, ids, v, &w, &e) != NDL_OK) {
        fprintf(stderr, "upsert: %s\n", e.msg);
        exit(1);
    }
    size_t nd = 0;
    for (uint64_t i = 0; i < k->n; i += 3)
        ids[nd++] = ndl_id_u64(i);
    double t0 = now_s();
    if (ndl_collection_delete(c, nd, ids, NULL, &e) != NDL_OK) {
        fprintf(stderr, "delete: %s\n", e.msg);
        exit(1);
    }
    double el = now_s() - t0;
    printf("{\"bench\":\"delete\",\"dim\":%u,\"n\":%llu,\"index\":\"%s\",\"deleted\":%zu,"
           "\"seconds\":%.3f,\"us_per_delete\":%.1f}\n",
           k->dim, (unsigned long long)k->n, k->index, nd, el, el / (double)nd * 1e6);
    ndl_db_close(db, NULL);
    free(ids);
    free(v);
}

int main(int argc, char **argv)
{
    cfg k = {.mode = argc > 1 ? argv[1] : "", .dir = "/tmp/needle-ingest-bench",
             .fsync = "always", .index = "hnsw", .dim = 128, .batch = 1, .writers = 1,
             .seconds = 3, .n = 100000};
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--dim")) k.dim = (uint32_t)atoi(v);
        else if (!strcmp(a, "--batch")) k.batch = (uint32_t)atoi(v);
        else if (!strcmp(a, "--writers")) k.writers = (uint32_t)atoi(v);
        else if (!strcmp(a, "--fsync")) k.fsync = v;
        else if (!strcmp(a, "--index")) k.index = v;
        else if (!strcmp(a, "--seconds")) k.seconds = atof(v);
        else if (!strcmp(a, "--n")) k.n = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--dir")) k.dir = v;
        else { fprintf(stderr, "unknown option %s\n", a); return 2; }
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", k.dir);
    if (system(cmd) != 0)
        return 1;
    if (!strcmp(k.mode, "ingest"))
        run_ingest(&k);
    else if (!strcmp(k.mode, "reopen"))
        run_reopen(&k);
    else if (!strcmp(k.mode, "delete"))
        run_delete(&k);
    else {
        fprintf(stderr, "usage: ingest_bench ingest|reopen|delete [--dim D] [--batch B] [--writers W] "
                        "[--fsync always|batch|none] [--index flat|hnsw] [--seconds S] [--n N]\n");
        return 2;
    }
    return 0;
}
