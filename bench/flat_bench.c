/*
 * flat_bench.c -- micro-benchmark of exact search (src/index/flat.c): one
 * query at a time through the index's search method (reports GB/s of vectors
 * scanned, the figure to compare with the machine's memory bandwidth) and
 * flat_search_batch (reports QPS and GFLOP/s). Not part of the CMake build or
 * of ctest. Build and run (after the library is built):
 *
 *   cmake -S . -B build && cmake --build build --target needle_static
 *   gcc -std=c11 -O3 -D_GNU_SOURCE -Iinclude -Isrc bench/flat_bench.c \
 *       build/libneedle.a $(pkg-config --cflags --libs openblas jansson) -lroaring -lm -lpthread \
 *       -o build/flat_bench
 *   OPENBLAS_NUM_THREADS=1 build/flat_bench --base base.bvecs --queries query.bvecs --metric l2
 *   OPENBLAS_NUM_THREADS=1 build/flat_bench --random 1000000 128 --metric l2
 *
 * Options: --metric l2|ip|cosine|l1|hamming (default l2), --k K (10),
 * --nq N (queries used; default all of the file, 200 with --random),
 * --threads T (batch threads, 1), --seconds S (time per single-query
 * measurement, 1), --rounds R (single-query measurements, best reported, 5),
 * --no-batch. --random N D makes N uniform random vectors of dimension D
 * (bits for hamming) instead of reading files.
 *
 * Files: TEXMEX .fvecs/.bvecs (uint8 .bvecs rows are stored as float32), e.g.
 * fashion-mnist (apt-get install dataset-fashion-mnist, or the ann-benchmarks
 * HDF5 converted to .bvecs) or SIFT/BIGANN from http://corpus-texmex.irisa.fr.
 * Run with OPENBLAS_NUM_THREADS=1 so --threads alone sets the parallelism.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#include "index/index.h"

static void die(const char *msg, const char *arg)
{
    fprintf(stderr, "flat_bench: %s%s\n", msg, arg ? arg : "");
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory", NULL);
    return p;
}

/* Read a .fvecs or .bvecs file as float rows; returns rows, sets *dim. */
static float *read_vecs(const char *path, uint32_t *dim, size_t *rows)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open ", path);
    size_t len = strlen(path);
    int bytes = len > 6 && strcmp(path + len - 6, ".bvecs") == 0;
    int32_t d;
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > NDL_DIM_MAX)
        die("bad header in ", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t rec = 4 + (size_t)d * (bytes ? 1 : 4);
    size_t n = (size_t)size / rec;
    float *out = xmalloc(n * (size_t)d * sizeof(float));
    unsigned char *buf = xmalloc(rec);
    for (size_t i = 0; i < n; i++) {
        if (fread(buf, rec, 1, f) != 1)
            die("short read in ", path);
        for (int32_t j = 0; j < d; j++) {
            if (bytes)
                out[i * (size_t)d + (size_t)j] = buf[4 + j];
            else
                memcpy(&out[i * (size_t)d + (size_t)j], buf + 4 + 4 * j, 4);
        }
    }
    free(buf);
    fclose(f);
    *dim = (uint32_t)d;
    *rows = n;
    return out;
}

static uint64_t rng_state = 42;

static uint64_t rng_next(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Rows of float (in [-1, 1)) or, for hamming, 0/1 floats. */
static float *random_vecs(size_t n, uint32_t d, int bits)
{
    float *out = xmalloc(n * d * sizeof(float));
    for (size_t i = 0; i < n * d; i++)
        out[i] = bits ? (float)(rng_next() >> 63)
                      : (float)(rng_next() >> 40) / (float)(1u << 23) - 1.0f;
    return out;
}

/* One row in the stored form of sp: floats (cosine: unit length) or packed
 * bits (hamming: value != 0 sets the bit, LSB first). */
static void encode(const index_space *sp, const float *v, void *out)
{
    if (sp->metric == NDL_METRIC_HAMMING) {
        unsigned char *b = out;
        memset(b, 0, sp->n);
        for (uint32_t i = 0; i < sp->dim; i++)
            if (v[i] != 0.0f)
                b[i / 8] |= (unsigned char)(1u << (i % 8));
        return;
    }
    float *f = out;
    memcpy(f, v, sp->vec_bytes);
    if (sp->metric == NDL_METRIC_COSINE) {
        double s = 0;
        for (uint32_t i = 0; i < sp->dim; i++)
            s += (double)f[i] * f[i];
        if (s > 0)
            for (uint32_t i = 0; i < sp->dim; i++)
                f[i] = (float)(f[i] / sqrt(s));
    }
}

int main(int argc, char **argv)
{
    const char *base_path = NULL, *query_path = NULL, *metric_name = "l2";
    size_t rand_n = 0, nq_arg = 0;
    uint32_t rand_d = 0, k = 10, threads = 1;
    double seconds = 1.0;
    int rounds = 5, batch = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--base") && v)
            base_path = argv[++i];
        else if (!strcmp(a, "--queries") && v)
            query_path = argv[++i];
        else if (!strcmp(a, "--metric") && v)
            metric_name = argv[++i];
        else if (!strcmp(a, "--k") && v)
            k = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--nq") && v)
            nq_arg = (size_t)atol(argv[++i]);
        else if (!strcmp(a, "--threads") && v)
            threads = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--seconds") && v)
            seconds = atof(argv[++i]);
        else if (!strcmp(a, "--rounds") && v)
            rounds = atoi(argv[++i]);
        else if (!strcmp(a, "--no-batch"))
            batch = 0;
        else if (!strcmp(a, "--random") && i + 2 < argc) {
            rand_n = (size_t)atol(argv[++i]);
            rand_d = (uint32_t)atoi(argv[++i]);
        } else {
            fprintf(stderr,
                    "usage: %s (--base FILE --queries FILE | --random N D) [--metric "
                    "l2|ip|cosine|l1|hamming] [--k 10] [--nq N] [--threads 1] [--seconds 1] "
                    "[--rounds 5] [--no-batch]\n",
                    argv[0]);
            return 2;
        }
    }
    ndl_metric metric;
    if (ndl_metric_parse(metric_name, &metric, NULL) != NDL_OK)
        die("unknown metric ", metric_name);
    if (k < 1 || threads < 1 || rounds < 1 || seconds <= 0)
        die("--k, --threads, --rounds and --seconds must be positive", NULL);

    uint32_t d, dq;
    size_t n, nq;
    float *base, *qs;
    if (rand_n) {
        if (rand_d < 1 || rand_d > NDL_DIM_MAX)
            die("bad --random dimension", NULL);
        d = dq = rand_d;
        n = rand_n;
        nq = nq_arg ? nq_arg : 200;
        base = random_vecs(n, d, metric == NDL_METRIC_HAMMING);
        qs = random_vecs(nq, d, metric == NDL_METRIC_HAMMING);
    } else {
        if (!base_path || !query_path)
            die("give --base and --queries, or --random N D", NULL);
        base = read_vecs(base_path, &d, &n);
        qs = read_vecs(query_path, &dq, &nq);
        if (nq_arg && nq_arg < nq)
            nq = nq_arg;
        if (d != dq)
            die("base and queries differ in dimension", NULL);
    }
    if (n == 0 || nq == 0)
        die("no vectors", NULL);

    index_space sp;
    index_space_init(&sp, metric, d);
    vec_arena a;
    if (arena_init(&a, sp.vec_bytes, NULL) != NDL_OK)
        die("arena_init failed", NULL);
    for (size_t i = 0; i < n; i++) {
        uint32_t slot;
        void *rec;
        if (arena_reserve(&a, &slot, &rec, NULL) != NDL_OK)
            die("arena_reserve failed", NULL);
        encode(&sp, base + i * d, rec);
        arena_publish(&a, slot + 1);
    }
    free(base);
    char *enc = xmalloc(nq * sp.vec_bytes);
    for (size_t i = 0; i < nq; i++)
        encode(&sp, qs + i * d, enc + i * sp.vec_bytes);
    free(qs);

    vindex *ix;
    if (flat_index_create(&sp, &a, &ix, NULL) != NDL_OK)
        die("flat_index_create failed", NULL);
    /* A deleted bitset, as collections always pass one (nothing deleted). */
    bitset del;
    if (bitset_init(&del, NULL) != NDL_OK)
        die("bitset_init failed", NULL);
    index_query q = {.k = k, .ef = k, .deleted = &del};
    index_hit *single = xmalloc(nq * k * sizeof *single);
    size_t *nsingle = xmalloc(nq * sizeof *nsingle);

    /* Single queries: rounds of about `seconds` each (cycling through the
     * queries), best and median round reported. */
    double bytes_per_query = (double)n * (double)sp.vec_bytes;
    for (size_t i = 0; i < nq; i++) /* warm-up, and the results to compare with */
        nsingle[i] = ix->m->search(ix, enc + i * sp.vec_bytes, &q, single + i * k, NULL);
    double *gbs = xmalloc((size_t)rounds * sizeof *gbs);
    index_hit *scratch = xmalloc(k * sizeof *scratch);
    for (int r = 0; r < rounds; r++) {
        size_t done = 0;
        uint64_t t0 = ndl_now_ns(), t1;
        do {
            ix->m->search(ix, enc + (done % nq) * sp.vec_bytes, &q, scratch, NULL);
            done++;
            t1 = ndl_now_ns();
        } while ((double)(t1 - t0) < seconds * 1e9);
        gbs[r] = bytes_per_query * (double)done / (double)(t1 - t0);
    }
    qsort(gbs, (size_t)rounds, sizeof *gbs, bench_cmp_double);
    double best = gbs[rounds - 1], median = gbs[rounds / 2];
    printf("{\"system\":\"needle\",\"mode\":\"single\",\"level\":\"%s\",\"n\":%zu,\"d\":%u,"
           "\"metric\":\"%s\",\"k\":%u,\"data_mb\":%.1f,\"qps\":%.1f,\"gb_s\":%.2f,"
           "\"gb_s_median\":%.2f}\n",
           simd_get()->name, n, d, metric_name, k, bytes_per_query / 1e6,
           best * 1e9 / bytes_per_query, best, median);
    fflush(stdout);

    if (batch) {
        index_hit *bh = xmalloc(nq * k * sizeof *bh);
        size_t *counts = xmalloc(nq * sizeof *counts);
        double bestb = INFINITY;
        for (int r = 0; r < NDL_MIN(rounds, 3); r++) {
            uint64_t t0 = ndl_now_ns();
            if (flat_search_batch(&sp, &a, nq, enc, &q, threads, bh, counts, NULL) != NDL_OK)
                die("flat_search_batch failed", NULL);
            double s = (double)(ndl_now_ns() - t0) / 1e9;
            if (s < bestb)
                bestb = s;
        }
        /* Share of batch hits that the single query found too. */
        size_t same = 0, total = 0;
        for (size_t i = 0; i < nq; i++)
            for (size_t j = 0; j < counts[i]; j++, total++)
                for (size_t t = 0; t < nsingle[i]; t++)
                    if (single[i * k + t].slot == bh[i * k + j].slot) {
                        same++;
                        break;
                    }
        printf("{\"system\":\"needle\",\"mode\":\"batch\",\"n\":%zu,\"d\":%u,\"metric\":\"%s\","
               "\"k\":%u,\"nq\":%zu,\"threads\":%u,\"qps\":%.1f,\"gflop_s\":%.1f,"
               "\"agree_with_single\":%.4f}\n",
               n, d, metric_name, k, nq, threads, (double)nq / bestb,
               2.0 * (double)n * d * (double)nq / bestb / 1e9,
               total ? (double)same / (double)total : 1.0);
        free(bh);
        free(counts);
    }
    ix->m->destroy(ix);
    bitset_destroy(&del);
    arena_destroy(&a);
    free(enc);
    free(single);
    free(nsingle);
    free(gbs);
    free(scratch);
    return 0;
}
