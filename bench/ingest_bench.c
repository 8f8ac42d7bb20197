/*
 * ingest_bench.c -- write-path benchmark over the public API: vectors/s of
 * upserts for a dimension, batch size, number of concurrent writers and
 * fsync mode; the time to reopen a collection of N vectors (checkpoint
 * mapped + graph loaded; nothing rebuilt) and the resident memory after it;
 * the peak memory of one large upsert; and the cost of a delete.
 *
 * Build: the CMake target ingest_bench (option NEEDLE_BENCH, on by default)
 * gives BUILD/bench/ingest_bench, e.g.
 *   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DNEEDLE_TESTS=OFF
 *   cmake --build build-rel -j2 --target ingest_bench
 * or by hand against a release libneedle.a:
 *   gcc -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude bench/ingest_bench.c \
 *       build/libneedle.a $(pkg-config --libs openblas jansson) -lroaring -lpthread -lm \
 *       -o build/ingest_bench
 * Examples:
 *   build-rel/bench/ingest_bench ingest --dim 128 --batch 1 --writers 8 --fsync always --seconds 3
 *   build-rel/bench/ingest_bench reopen --dim 128 --n 1000000 --threads 2 --dir /tmp/n1m
 *   build-rel/bench/ingest_bench reopen --dim 128 --reuse 1 --dir /tmp/n1m   # reopen only
 *   build-rel/bench/ingest_bench memory --base ../shared/data/fashion-mnist/base.bvecs --threads 2
 *   build-rel/bench/ingest_bench delete --dim 128 --n 20000 --fsync none
 *   bench/ingest_grid.sh build-rel/bench/ingest_bench   # the ingest grid, a table
 *   bench/reopen_bench.sh build-rel/bench/ingest_bench  # reopen + peak memory
 *
 * ingest: `writers` threads upsert batches of `batch` fresh random vectors
 *   (uniform [0,1), a new seed per batch, so no two vectors are equal) into
 *   an empty collection for `seconds` (a batch under way then finishes), or
 *   until --max-vectors have been handed out (0 = no cap); vectors/s =
 *   vectors acknowledged / wall time until the last writer's last batch
 *   returned. `threads` index threads per upsert call (default 1: the
 *   writer builds its own batch). --reuse 1 adds to the collection already
 *   in --dir (e.g. a copy of one from `build`) instead of an empty one.
 * build: upserts n vectors (as reopen does) and closes the database.
 * reopen: builds n vectors in upserts of `chunk` (on `threads` index
 *   threads), closes the database (checkpoint), then times ndl_db_open +
 *   ndl_collection_open and the first search (ef 64, k 10), then the mean
 *   of 100 more searches. --reuse 1 skips the build and reopens the
 *   collection already in --dir (drop the page cache before it for a cold
 *   figure). Memory after the reopen is read from /proc/self/status.
 * --base FILE (.fvecs or .bvecs, e.g. fashion-mnist's base.bvecs) gives
 *   reopen and memory real vectors: its first n rows (all without --n),
 *   its dimension.
 * memory: one upsert of n vectors on `threads` threads; peak (VmHWM, reset
 *   through /proc/self/clear_refs once the input is generated) and resident
 *   growth against the raw size n * dim * 4. Leaves the database in --dir
 *   (reopen it with `reopen --reuse 1`).
 * delete: build n vectors, delete every third id in one call.
 *
 * One JSON line per run on stdout. --dir is the scratch database
 * (default /tmp/needle-ingest-bench), removed first unless --reuse 1.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_util.h"

#include "needle.h"

typedef struct cfg {
    const char *mode, *dir, *fsync, *index, *base;
    uint32_t dim, batch, writers, threads, m, ef_construction, chunk;
    int reuse;
    double seconds;
    uint64_t n, max_vectors;
    float *data; /* --base: n x dim floats read from the file */
} cfg;

typedef struct writer {
    ndl_collection *c;
    const cfg *k;
    uint32_t w;
    _Atomic int *stop;
    _Atomic uint64_t *claimed; /* vectors handed out so far (--max-vectors) */
    uint64_t written;
    int failed;
} writer;

/* Uniform [0,1) floats from a 64-bit LCG; the seed picks the stream. */
static void fill(float *v, size_t n, uint64_t seed)
{
    uint64_t x = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (float)(x >> 40) / 16777216.0f;
    }
}

/* Read up to max_n records of an .fvecs (int32 d, d float32) or .bvecs
 * (int32 d, d uint8) file as floats; *n and *dim get what was read. */
static float *load_base(const char *path, uint64_t max_n, uint64_t *n, uint32_t *dim)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t pl = strlen(path);
    int bytes = pl > 6 && !strcmp(path + pl - 6, ".bvecs");
    if (!bytes && !(pl > 6 && !strcmp(path + pl - 6, ".fvecs"))) {
        fprintf(stderr, "%s: expected .fvecs or .bvecs\n", path);
        exit(2);
    }
    int32_t d;
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > NDL_DIM_MAX) {
        fprintf(stderr, "%s: bad dimension\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t rec = 4 + (size_t)d * (bytes ? 1 : 4);
    uint64_t rows = (uint64_t)size / rec;
    if (max_n && rows > max_n)
        rows = max_n;
    float *out = malloc((size_t)rows * (size_t)d * sizeof *out);
    uint8_t *buf = malloc(rec);
    if (!out || !buf) {
        fprintf(stderr, "out of memory for %s\n", path);
        exit(1);
    }
    for (uint64_t i = 0; i < rows; i++) {
        int32_t di;
        if (fread(buf, rec, 1, f) != 1 || (memcpy(&di, buf, 4), di != d)) {
            fprintf(stderr, "%s: record %llu is damaged\n", path, (unsigned long long)i);
            exit(1);
        }
        float *o = out + i * (size_t)d;
        if (bytes)
            for (int32_t j = 0; j < d; j++)
                o[j] = (float)buf[4 + j];
        else
            memcpy(o, buf + 4, (size_t)d * 4);
    }
    free(buf);
    fclose(f);
    *n = rows;
    *dim = (uint32_t)d;
    return out;
}

/* kB value of a "Key:" line of /proc/self/status, in bytes (0 if absent). */
static uint64_t status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    size_t kl = strlen(key);
    uint64_t v = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtoull(line + kl + 1, NULL, 10) * 1024;
            break;
        }
    fclose(f);
    return v;
}

/* Reset VmHWM to the current RSS (Linux >= 4.0). Returns 0 on success. */
static int reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return -1;
    int rc = fputs("5", f) < 0;
    return fclose(f) != 0 || rc ? -1 : 0;
}

/* Bytes of the write-ahead log segments of collection "bench" in dir
 * (what an open scans). */
static uint64_t wal_bytes_on_disk(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/bench/wal", dir);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char f[1400];
        struct stat st;
        snprintf(f, sizeof f, "%s/%s", path, de->d_name);
        if (de->d_name[0] != '.' && stat(f, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

/* Major page faults (pages read from disk) of this process so far. */
static long major_faults(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_majflt;
}

static void *write_loop(void *arg)
{
    writer *wr = arg;
    const cfg *k = wr->k;
    ndl_id *ids = malloc(k->batch * sizeof *ids);
    float *v = malloc((size_t)k->batch * k->dim * sizeof *v);
    ndl_write_options wo;
    ndl_write_options_init(&wo);
    wo.threads = k->threads;
    /* writer w's ids start at (w + 1) << 40: never one of a prebuilt
     * collection's 0..n-1 (--reuse 1), so every upsert inserts */
    uint64_t next = (uint64_t)(wr->w + 1) << 40, batch_no = 0;
    while (!atomic_load(wr->stop)) {
        if (k->max_vectors &&
            atomic_fetch_add(wr->claimed, k->batch) + k->batch > k->max_vectors)
            break; /* the cell's vector cap is reached */
        /* a fresh stream per (writer, batch): ~1 ns per float, under 1% of
         * an insert at d=128 */
        fill(v, (size_t)k->batch * k->dim, ((uint64_t)wr->w << 32) + batch_no++);
        for (uint32_t i = 0; i < k->batch; i++)
            ids[i] = ndl_id_u64(next++);
        ndl_error e;
        if (ndl_collection_upsert(wr->c, k->batch, ids, v, &wo, &e) != NDL_OK) {
            fprintf(stderr, "upsert: %s\n", e.msg);
            wr->failed = 1;
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
    c.hnsw_m = k->m;
    c.hnsw_ef_construction = k->ef_construction;
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

static void close_db(ndl_db *db)
{
    ndl_error e;
    if (ndl_db_close(db, &e) != NDL_OK) {
        fprintf(stderr, "close: %s\n", e.msg);
        exit(1);
    }
}

/* The collection "bench" of an existing database (--reuse 1). */
static ndl_collection *open_existing(ndl_db *db)
{
    ndl_collection *c;
    ndl_error e;
    if (ndl_collection_open(db, "bench", &c, &e) != NDL_OK) {
        fprintf(stderr, "open: %s\n", e.msg);
        exit(1);
    }
    return c;
}

static void run_ingest(const cfg *k)
{
    ndl_db *db = open_db(k);
    ndl_collection *c = k->reuse ? open_existing(db) : create(db, k);
    ndl_collection_info info;
    ndl_collection_info_get(c, &info, NULL);
    if (info.config.dimension != k->dim) {
        fprintf(stderr, "the collection in %s has dimension %u, not %u\n", k->dir,
                info.config.dimension, k->dim);
        exit(2);
    }
    uint64_t before = ndl_collection_count(c);
    _Atomic int stop = 0;
    _Atomic uint64_t claimed = 0;
    writer *ws = calloc(k->writers, sizeof *ws);
    pthread_t *t = calloc(k->writers, sizeof *t);
    double t0 = bench_now();
    for (uint32_t i = 0; i < k->writers; i++) {
        ws[i] = (writer){c, k, i, &stop, &claimed, 0, 0};
        pthread_create(&t[i], NULL, write_loop, &ws[i]);
    }
    /* sleep in 10 ms steps until `seconds` pass or the cap is handed out */
    while (bench_now() - t0 < k->seconds &&
           !(k->max_vectors && atomic_load(&claimed) >= k->max_vectors)) {
        struct timespec d = {0, 10000000};
        nanosleep(&d, NULL);
    }
    atomic_store(&stop, 1);
    uint64_t total = 0;
    int failed = 0;
    for (uint32_t i = 0; i < k->writers; i++) {
        pthread_join(t[i], NULL);
        total += ws[i].written;
        failed |= ws[i].failed;
    }
    double el = bench_now() - t0;
    printf("{\"bench\":\"ingest\",\"dim\":%u,\"batch\":%u,\"writers\":%u,\"fsync\":\"%s\","
           "\"index\":\"%s\",\"m\":%u,\"ef_construction\":%u,\"threads\":%u,"
           "\"max_seconds\":%.1f,\"max_vectors\":%llu,\"count_before\":%llu,\"vectors\":%llu,"
           "\"seconds\":%.2f,\"vectors_per_s\":%.1f}\n",
           k->dim, k->batch, k->writers, k->fsync, ndl_index_name(info.config.index),
           info.config.hnsw_m, info.config.hnsw_ef_construction, k->threads, k->seconds,
           (unsigned long long)k->max_vectors, (unsigned long long)before,
           (unsigned long long)total, el, (double)total / el);
    fflush(stdout);
    close_db(db);
    free(ws);
    free(t);
    if (failed)
        exit(1);
}

static int progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)total;
    fprintf(stderr, "\rbuilt %llu", (unsigned long long)(*(uint64_t *)ctx + done));
    return 0;
}

/* Upsert ids first..first+n-1 (vectors seeded by position) in calls of
 * k->chunk on k->threads index threads. */
static void build(ndl_collection *c, const cfg *k, uint64_t n)
{
    uint32_t chunk = k->chunk ? k->chunk : 50000;
    ndl_id *ids = malloc(chunk * sizeof *ids);
    float *v = malloc((size_t)chunk * k->dim * sizeof *v);
    ndl_write_options w;
    ndl_write_options_init(&w);
    w.threads = k->threads;
    uint64_t first = 0;
    w.progress = progress;
    w.progress_ctx = &first;
    for (first = 0; first < n; first += chunk) {
        uint32_t m = (uint32_t)(n - first < chunk ? n - first : chunk);
        if (k->data)
            memcpy(v, k->data + (size_t)first * k->dim, (size_t)m * k->dim * sizeof *v);
        else
            fill(v, (size_t)m * k->dim, first + 7);
        for (uint32_t i = 0; i < m; i++)
            ids[i] = ndl_id_u64(first + i);
        ndl_error e;
        if (ndl_collection_upsert(c, m, ids, v, &w, &e) != NDL_OK) {
            fprintf(stderr, "upsert: %s\n", e.msg);
            exit(1);
        }
    }
    fprintf(stderr, "\n");
    free(ids);
    free(v);
}

/* Build n vectors and close (checkpoint): a collection for ingest
 * --reuse 1 or reopen --reuse 1 to start from. */
static void run_build(const cfg *k)
{
    ndl_db *db = open_db(k);
    ndl_collection *c = create(db, k);
    double tb = bench_now();
    build(c, k, k->n);
    double build_s = bench_now() - tb;
    double tc = bench_now();
    close_db(db);
    printf("{\"bench\":\"build\",\"base\":\"%s\",\"dim\":%u,\"n\":%llu,\"index\":\"%s\","
           "\"m\":%u,\"ef_construction\":%u,\"threads\":%u,\"build_s\":%.2f,"
           "\"checkpoint_s\":%.3f}\n",
           k->base ? k->base : "random", k->dim, (unsigned long long)k->n, k->index, k->m,
           k->ef_construction, k->threads, build_s, bench_now() - tc);
}

static void run_reopen(const cfg *k)
{
    double build_s = 0, close_s = 0;
    if (!k->reuse) {
        ndl_db *db = open_db(k);
        ndl_collection *c = create(db, k);
        double tb = bench_now();
        build(c, k, k->n);
        build_s = bench_now() - tb;
        double tc = bench_now();
        close_db(db); /* checkpoint */
        close_s = bench_now() - tc;
    }
    uint64_t wal0 = wal_bytes_on_disk(k->dir);
    uint64_t rss0 = status_bytes("VmRSS"), anon0 = status_bytes("RssAnon");
    long mf0 = major_faults();
    double t0 = bench_now();
    ndl_db *db = open_db(k);
    double db_open = bench_now() - t0;
    ndl_error e;
    ndl_collection *c;
    if (ndl_collection_open(db, "bench", &c, &e) != NDL_OK) {
        fprintf(stderr, "reopen: %s\n", e.msg);
        exit(1);
    }
    double reopen = bench_now() - t0;
    long mf1 = major_faults();
    uint64_t rss1 = status_bytes("VmRSS"), anon1 = status_bytes("RssAnon"),
             file1 = status_bytes("RssFile");
    ndl_collection_info info;
    ndl_collection_info_get(c, &info, NULL);
    uint32_t dim = info.config.dimension;
    /* queries: base rows when the data came from --base, else random */
    float *q = malloc((size_t)101 * dim * sizeof *q);
    if (k->data && k->n >= 101 && dim == k->dim)
        memcpy(q, k->data, (size_t)101 * dim * sizeof *q);
    else
        fill(q, (size_t)101 * dim, 987654321);
    /* first search after reopen (touches the mapped pages it needs) */
    ndl_search_params p;
    ndl_search_params_init(&p);
    ndl_results *r;
    double ts = bench_now();
    if (ndl_collection_search(c, q, &p, &r, &e) != NDL_OK) {
        fprintf(stderr, "search: %s\n", e.msg);
        exit(1);
    }
    double first = bench_now() - ts;
    long mf2 = major_faults();
    ndl_results_free(r);
    ts = bench_now();
    for (int i = 1; i <= 100; i++) {
        if (ndl_collection_search(c, q + (size_t)i * dim, &p, &r, &e) != NDL_OK) {
            fprintf(stderr, "search: %s\n", e.msg);
            exit(1);
        }
        ndl_results_free(r);
    }
    double next = (bench_now() - ts) / 100;
    /* what the background verification of the vectors had left (the
     * thread started at open; this finishes it here) */
    ts = bench_now();
    if (ndl_collection_verify(c, &e) != NDL_OK) {
        fprintf(stderr, "verify: %s\n", e.msg);
        exit(1);
    }
    double verify_rest = bench_now() - ts;
    double verified_after = bench_now() - t0;
    uint64_t rss2 = status_bytes("VmRSS"), anon2 = status_bytes("RssAnon"),
             file2 = status_bytes("RssFile");
    printf("{\"bench\":\"reopen\",\"base\":\"%s\",\"dim\":%u,\"n\":%llu,\"index\":\"%s\",\"m\":%u,"
           "\"ef_construction\":%u,\"reused\":%d,\"build_s\":%.2f,\"checkpoint_s\":%.3f,"
           "\"db_open_s\":%.4f,\"reopen_s\":%.3f,\"first_search_ms\":%.2f,\"next_search_ms\":%.3f,"
           "\"verify_rest_s\":%.3f,\"verified_after_open_s\":%.3f,"
           "\"major_faults_open\":%ld,\"major_faults_first_search\":%ld,"
           "\"rss_before_mb\":%.1f,\"rss_after_open_mb\":%.1f,\"anon_growth_mb\":%.1f,"
           "\"file_rss_mb\":%.1f,\"rss_after_searches_mb\":%.1f,\"anon_growth_after_searches_mb\":%.1f,"
           "\"file_rss_after_searches_mb\":%.1f,\"disk_mb\":%.1f,\"wal_mb_at_open\":%.1f,\"count\":%llu}\n",
           k->base ? k->base : k->reuse ? "reused" : "random", dim,
           (unsigned long long)(info.count + info.deleted),
           info.config.index == NDL_INDEX_HNSW ? "hnsw" : "flat",
           info.config.hnsw_m, info.config.hnsw_ef_construction, k->reuse, build_s, close_s,
           db_open, reopen, first * 1e3, next * 1e3, verify_rest, verified_after, mf1 - mf0, mf2 - mf1, (double)rss0 / 1048576.0,
           (double)rss1 / 1048576.0, (double)(anon1 - anon0) / 1048576.0,
           (double)file1 / 1048576.0, (double)rss2 / 1048576.0,
           (double)(anon2 - anon0) / 1048576.0, (double)file2 / 1048576.0,
           (double)info.disk_bytes / 1048576.0, (double)wal0 / 1048576.0,
           (unsigned long long)ndl_collection_count(c));
    fflush(stdout);
    close_db(db);
    free(q);
}

/* One upsert of n vectors: peak and resident memory against the raw size. */
static void run_memory(const cfg *k)
{
    size_t raw = (size_t)k->n * k->dim * sizeof(float);
    float *v = k->data ? k->data : malloc(raw);
    ndl_id *ids = malloc(k->n * sizeof *ids);
    if (!v || !ids) {
        fprintf(stderr, "out of memory for the input\n");
        exit(1);
    }
    if (!k->data)
        fill(v, (size_t)k->n * k->dim, 7); /* touches every input page */
    for (uint64_t i = 0; i < k->n; i++)
        ids[i] = ndl_id_u64(i);
    if (reset_peak() != 0) {
        fprintf(stderr, "cannot reset VmHWM through /proc/self/clear_refs\n");
        exit(1);
    }
    uint64_t rss0 = status_bytes("VmRSS"), anon0 = status_bytes("RssAnon");
    uint64_t hwm0 = status_bytes("VmHWM");
    ndl_db *db = open_db(k);
    ndl_collection *c = create(db, k);
    ndl_write_options w;
    ndl_write_options_init(&w);
    w.threads = k->threads;
    ndl_error e;
    double t0 = bench_now();
    if (ndl_collection_upsert(c, k->n, ids, v, &w, &e) != NDL_OK) {
        fprintf(stderr, "upsert: %s\n", e.msg);
        exit(1);
    }
    double el = bench_now() - t0;
    uint64_t hwm1 = status_bytes("VmHWM"), rss1 = status_bytes("VmRSS"),
             anon1 = status_bytes("RssAnon");
    ndl_collection_info info;
    ndl_collection_info_get(c, &info, NULL);
    double tc = bench_now();
    close_db(db); /* checkpoint */
    double close_s = bench_now() - tc;
    uint64_t hwm2 = status_bytes("VmHWM");
    const double mb = 1048576.0;
    printf("{\"bench\":\"memory\",\"base\":\"%s\",\"dim\":%u,\"n\":%llu,\"fsync\":\"%s\","
           "\"index\":\"%s\",\"m\":%u,\"ef_construction\":%u,\"threads\":%u,\"peak_rss_mb\":%.1f,"
           "\"upsert_s\":%.2f,\"checkpoint_s\":%.2f,\"raw_mb\":%.1f,\"rss_before_mb\":%.1f,"
           "\"hwm_before_mb\":%.1f,\"peak_growth_mb\":%.1f,\"rss_growth_mb\":%.1f,"
           "\"anon_growth_mb\":%.1f,\"peak_growth_with_checkpoint_mb\":%.1f,"
           "\"collection_memory_mb\":%.1f,\"peak_over_raw\":%.2f,\"rss_over_raw\":%.2f}\n",
           k->base ? k->base : "random", k->dim, (unsigned long long)k->n, k->fsync, k->index,
           k->m, k->ef_construction, k->threads, hwm1 / mb, el, close_s, raw / mb,
           rss0 / mb, hwm0 / mb, (double)(hwm1 - rss0) / mb, ((double)rss1 - (double)rss0) / mb,
           ((double)anon1 - (double)anon0) / mb, (double)(hwm2 - rss0) / mb,
           (double)info.memory_bytes / mb, (double)(hwm1 - rss0) / (double)raw,
           ((double)rss1 - (double)rss0) / (double)raw);
    if (!k->data)
        free(v);
    free(ids);
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
    w.threads = k->threads;
    ndl_error e;
    if (ndl_collection_upsert(c, k->n, ids, v, &w, &e) != NDL_OK) {
        fprintf(stderr, "upsert: %s\n", e.msg);
        exit(1);
    }
    size_t nd = 0;
    for (uint64_t i = 0; i < k->n; i += 3)
        ids[nd++] = ndl_id_u64(i);
    double t0 = bench_now();
    if (ndl_collection_delete(c, nd, ids, NULL, &e) != NDL_OK) {
        fprintf(stderr, "delete: %s\n", e.msg);
        exit(1);
    }
    double el = bench_now() - t0;
    printf("{\"bench\":\"delete\",\"dim\":%u,\"n\":%llu,\"index\":\"%s\",\"deleted\":%zu,"
           "\"seconds\":%.3f,\"us_per_delete\":%.1f}\n",
           k->dim, (unsigned long long)k->n, k->index, nd, el, el / (double)nd * 1e6);
    close_db(db);
    free(ids);
    free(v);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: ingest_bench ingest|build|reopen|memory|delete [--dim D] [--batch B] [--writers W]\n"
            "       [--fsync always|batch|none] [--index flat|hnsw] [--seconds S] [--n N]\n"
            "       [--threads T] [--m M] [--ef-construction E] [--chunk C] [--reuse 0|1]\n"
            "       [--max-vectors V] [--base FILE.fvecs|FILE.bvecs] [--dir DIR]\n");
}

int main(int argc, char **argv)
{
    cfg k = {.mode = argc > 1 ? argv[1] : "", .dir = "/tmp/needle-ingest-bench",
             .fsync = "always", .index = "hnsw", .dim = 128, .batch = 1, .writers = 1,
             .threads = 0, .m = 16, .ef_construction = 200, .chunk = 50000, .reuse = 0,
             .seconds = 3, .n = 100000};
    int n_given = 0, dim_given = 0;
    if ((argc - 2) % 2 != 0) {
        usage();
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--dim")) k.dim = (uint32_t)atoi(v), dim_given = 1;
        else if (!strcmp(a, "--batch")) k.batch = (uint32_t)atoi(v);
        else if (!strcmp(a, "--writers")) k.writers = (uint32_t)atoi(v);
        else if (!strcmp(a, "--fsync")) k.fsync = v;
        else if (!strcmp(a, "--index")) k.index = v;
        else if (!strcmp(a, "--seconds")) k.seconds = atof(v);
        else if (!strcmp(a, "--n")) k.n = strtoull(v, NULL, 10), n_given = 1;
        else if (!strcmp(a, "--base")) k.base = v;
        else if (!strcmp(a, "--max-vectors")) k.max_vectors = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) k.threads = (uint32_t)atoi(v);
        else if (!strcmp(a, "--m")) k.m = (uint32_t)atoi(v);
        else if (!strcmp(a, "--ef-construction")) k.ef_construction = (uint32_t)atoi(v);
        else if (!strcmp(a, "--chunk")) k.chunk = (uint32_t)atoi(v);
        else if (!strcmp(a, "--reuse")) k.reuse = atoi(v);
        else if (!strcmp(a, "--dir")) k.dir = v;
        else { fprintf(stderr, "unknown option %s\n", a); usage(); return 2; }
    }
    if (k.dim == 0 || k.batch == 0 || k.writers == 0 || k.n == 0) {
        usage();
        return 2;
    }
    if (k.base && !k.reuse &&
        (!strcmp(k.mode, "reopen") || !strcmp(k.mode, "memory") || !strcmp(k.mode, "build"))) {
        uint32_t d;
        k.data = load_base(k.base, n_given ? k.n : 0, &k.n, &d);
        if (dim_given && d != k.dim) {
            fprintf(stderr, "%s has dimension %u, not %u\n", k.base, d, k.dim);
            return 2;
        }
        k.dim = d;
    } else if (k.base) {
        fprintf(stderr, "--base is for build, reopen (without --reuse 1) and memory\n");
        return 2;
    }
    /* index threads per upsert call: 1 for ingest (the writer builds its
     * own batch), 2 for the bulk builds of reopen/memory/delete */
    if (k.threads == 0)
        k.threads = !strcmp(k.mode, "ingest") ? 1 : 2;
    if (k.reuse && strcmp(k.mode, "ingest") && strcmp(k.mode, "reopen")) {
        fprintf(stderr, "--reuse 1 is for ingest and reopen\n");
        return 2;
    }
    if (!k.reuse) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", k.dir);
        if (system(cmd) != 0)
            return 1;
    }
    if (!strcmp(k.mode, "ingest"))
        run_ingest(&k);
    else if (!strcmp(k.mode, "reopen"))
        run_reopen(&k);
    else if (!strcmp(k.mode, "memory"))
        run_memory(&k);
    else if (!strcmp(k.mode, "build"))
        run_build(&k);
    else if (!strcmp(k.mode, "delete"))
        run_delete(&k);
    else {
        usage();
        return 2;
    }
    free(k.data);
    return 0;
}
