/*
 * lib_bench.c -- needle's side of the peer benchmarks (bench/compare.py).
 *
 * A driver over the public API only (needle.h). It loads .fvecs/.bvecs base and
 * query files and an .ivecs ground truth, creates one collection in a fresh
 * temporary database directory, upserts every base vector in one call with
 * --build-threads index threads (timed: "build_s"), records the process's
 * memory before and after (VmRSS, RssAnon, VmHWM of /proc/self/status ->
 * "bytes_per_vector", "anon_bytes_per_vector", "peak_bytes_per_vector"; the
 * method bench/peer_memory.py uses for hnswlib), then measures:
 *
 *   --index hnsw : for each ef in --ef, one thread searches every query, one
 *                  ndl_collection_search() call per query; QPS = queries /
 *                  wall time of the loop (best of --repeat), recall@k against
 *                  the truth file, latency percentiles.
 *   --index flat : "single": ndl_collection_search(exact=1) once per query;
 *                  "batch": one ndl_collection_search_batch(exact=1,
 *                  threads=1) over all queries (BLAS path).
 *
 * Output: one JSON object per line on stdout (the shape of peers.py's lines,
 * "system":"needle"); diagnostics on stderr.
 *
 * Build (bench/run.sh does this):
 *   gcc -O2 -std=c11 -Iinclude bench/lib_bench.c build/libneedle.a \
 *       $(pkg-config --libs openblas) -ljansson -lroaring -lpthread -lm -o build/lib_bench
 *
 * Example:
 *   OPENBLAS_NUM_THREADS=1 build/lib_bench --base base.bvecs --queries query.bvecs \
 *       --truth groundtruth.ivecs --metric l2 --index hnsw --ef 16,32,64 --build-threads 2
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#include "needle.h"

/* ------------------------------------------------------------ helpers */

static void die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "lib_bench: ");
    fprintf(stderr, fmt, a ? a : "", b ? b : "");
    fputc('\n', stderr);
    exit(1);
}

static void die_err(const char *what, const ndl_error *e)
{
    fprintf(stderr, "lib_bench: %s: %s (%s)\n", what, e->msg, ndl_status_name(e->status));
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "lib_bench: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* Memory of this process from /proc/self/status (kB -> bytes): VmRSS
 * (resident), RssAnon (its anonymous part) and VmHWM (peak resident). The
 * same fields bench/peer_memory.py reads for hnswlib. -1 when unavailable. */
typedef struct {
    long long rss, anon, hwm;
} mem_status;

static mem_status proc_status(void)
{
    mem_status m = {-1, -1, -1};
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    if (!f)
        return m;
    while (fgets(line, sizeof line, f)) {
        long long kb;
        if (sscanf(line, "VmRSS: %lld", &kb) == 1)
            m.rss = kb * 1024;
        else if (sscanf(line, "RssAnon: %lld", &kb) == 1)
            m.anon = kb * 1024;
        else if (sscanf(line, "VmHWM: %lld", &kb) == 1)
            m.hwm = kb * 1024;
    }
    fclose(f);
    return m;
}

/* Reset the peak-RSS mark (VmHWM) to the current RSS: Linux >= 4.0 lets a
 * process write "5" to its clear_refs. Returns 1 on success. */
static int reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return 0;
    int ok = fputs("5", f) >= 0;
    return (fclose(f) == 0) && ok;
}

/* ------------------------------------------------------------ vector files */

typedef struct {
    size_t n, dim;
    float *f;    /* fvecs / bvecs converted to float32 */
    int32_t *i;  /* ivecs */
} vecs;

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0)
        die("cannot seek %s%s", path, NULL);
    long sz = ftell(f);
    if (sz < 0)
        die("cannot size %s%s", path, NULL);
    rewind(f);
    unsigned char *buf = xmalloc((size_t)sz);
    if (sz && fread(buf, 1, (size_t)sz, f) != (size_t)sz)
        die("short read on %s%s", path, NULL);
    fclose(f);
    *len = (size_t)sz;
    return buf;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Load .fvecs, .bvecs (uint8 -> float32) or .ivecs; keep at most `limit`
 * rows when limit > 0. */
static vecs load_vecs(const char *path, size_t limit)
{
    vecs v = {0, 0, NULL, NULL};
    size_t len;
    unsigned char *buf = read_file(path, &len);
    if (len < 4)
        die("%s: empty or truncated%s", path, NULL);
    int32_t d32;
    memcpy(&d32, buf, 4);
    if (d32 <= 0 || d32 > 1000000)
        die("%s: bad dimension in the first record%s", path, NULL);
    size_t dim = (size_t)d32;
    int isb = ends_with(path, ".bvecs"), isf = ends_with(path, ".fvecs"), isi = ends_with(path, ".ivecs");
    if (!isb && !isf && !isi)
        die("%s: expected .fvecs, .bvecs or .ivecs%s", path, NULL);
    size_t rec = 4 + dim * (isb ? 1 : 4);
    if (len % rec)
        die("%s: size is not a whole number of records%s", path, NULL);
    size_t n = len / rec;
    if (limit && limit < n)
        n = limit;
    v.n = n;
    v.dim = dim;
    if (isi)
        v.i = xmalloc(n * dim * sizeof(int32_t));
    else
        v.f = xmalloc(n * dim * sizeof(float));
    for (size_t r = 0; r < n; r++) {
        const unsigned char *p = buf + r * rec;
        memcpy(&d32, p, 4);
        if ((size_t)d32 != dim)
            die("%s: records of different dimensions%s", path, NULL);
        p += 4;
        if (isb) {
            float *o = v.f + r * dim;
            for (size_t j = 0; j < dim; j++)
                o[j] = (float)p[j];
        } else if (isf) {
            memcpy(v.f + r * dim, p, dim * sizeof(float));
        } else {
            memcpy(v.i + r * dim, p, dim * sizeof(int32_t));
        }
    }
    free(buf);
    return v;
}

/* ------------------------------------------------------------ temp dir */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------ options */

typedef struct {
    const char *base, *queries, *truth, *data, *metric, *index, *ef_list, *label, *fsync;
    unsigned m, efc, k, build_threads, repeat, batch_threads;
    size_t limit, nq;
    int keep, modes; /* modes bit 1 = single, bit 2 = batch (flat) */
} opts;

static void usage(void)
{
    fputs("usage: lib_bench --base FILE --queries FILE [--truth FILE.ivecs] [--metric l2|cosine|ip]\n"
          "                 [--index hnsw|flat] [--m 16] [--ef-construction 200] [--ef 16,32,64]\n"
          "                 [--k 10] [--build-threads 2] [--repeat 1] [--queries-limit N]\n"
          "                 [--limit N] [--flat-modes single,batch] [--batch-threads 1]\n"
          "                 [--data DIR] [--keep] [--label NAME] [--fsync always|batch|none]\n"
          "Prints one JSON line per measurement. Without --truth, the truth is computed\n"
          "with an exact needle search (batch). --data defaults to a fresh directory\n"
          "under $TMPDIR (or /tmp), removed at exit unless --keep. --fsync sets the\n"
          "database's write-ahead-log sync mode (default: the library's, always);\n"
          "the build time includes logging the upsert.\n",
          stderr);
    exit(2);
}

static unsigned long parse_u(const char *s, const char *name)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s)
        die("bad value for %s: %s", name, s);
    return v;
}

static opts parse_args(int argc, char **argv)
{
    opts o = {NULL, NULL, NULL, NULL, "l2", "hnsw", "16,32,64,128", "", NULL,
              16, 200, 10, 2, 1, 1, 0, 0, 0, 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--keep")) { o.keep = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage();
        if (i + 1 >= argc) { fprintf(stderr, "lib_bench: %s needs a value\n", a); usage(); }
        const char *v = argv[++i];
        if (!strcmp(a, "--base")) o.base = v;
        else if (!strcmp(a, "--queries")) o.queries = v;
        else if (!strcmp(a, "--truth")) o.truth = v;
        else if (!strcmp(a, "--data")) o.data = v;
        else if (!strcmp(a, "--metric")) o.metric = v;
        else if (!strcmp(a, "--index")) o.index = v;
        else if (!strcmp(a, "--ef")) o.ef_list = v;
        else if (!strcmp(a, "--label")) o.label = v;
        else if (!strcmp(a, "--fsync")) o.fsync = v;
        else if (!strcmp(a, "--m")) o.m = (unsigned)parse_u(v, a);
        else if (!strcmp(a, "--ef-construction")) o.efc = (unsigned)parse_u(v, a);
        else if (!strcmp(a, "--k")) o.k = (unsigned)parse_u(v, a);
        else if (!strcmp(a, "--build-threads")) o.build_threads = (unsigned)parse_u(v, a);
        else if (!strcmp(a, "--batch-threads")) o.batch_threads = (unsigned)parse_u(v, a);
        else if (!strcmp(a, "--repeat")) o.repeat = (unsigned)parse_u(v, a);
        else if (!strcmp(a, "--limit")) o.limit = parse_u(v, a);
        else if (!strcmp(a, "--queries-limit")) o.nq = parse_u(v, a);
        else if (!strcmp(a, "--flat-modes")) {
            o.modes = (strstr(v, "single") ? 1 : 0) | (strstr(v, "batch") ? 2 : 0);
            if (!o.modes) die("--flat-modes: expected single, batch or single,batch%s%s", NULL, NULL);
        } else { fprintf(stderr, "lib_bench: unknown option %s\n", a); usage(); }
    }
    if (!o.base || !o.queries) usage();
    if (o.repeat < 1) o.repeat = 1;
    if (o.k < 1) die("--k must be >= 1%s%s", NULL, NULL);
    return o;
}

/* ------------------------------------------------------------ measuring */

static double recall_at_k(const uint64_t *found, const int32_t *truth, size_t tdim,
                          size_t nq, unsigned k)
{
    /* as peers.py: |set(found[:k]) & set(truth[:k])| / (nq * k) */
    size_t hits = 0;
    for (size_t q = 0; q < nq; q++) {
        const uint64_t *f = found + q * k;
        const int32_t *t = truth + q * tdim;
        for (unsigned a = 0; a < k; a++) {
            if (f[a] == UINT64_MAX)
                continue;
            int dup = 0;
            for (unsigned b = 0; b < a; b++)
                if (f[b] == f[a]) { dup = 1; break; }
            if (dup)
                continue;
            for (unsigned b = 0; b < k && b < tdim; b++)
                if ((uint64_t)(int64_t)t[b] == f[a]) { hits++; break; }
        }
    }
    return (double)hits / ((double)nq * k);
}

static void store_hits(const ndl_results *r, size_t rq, uint64_t *out, unsigned k)
{
    size_t cnt = ndl_results_count(r, rq);
    const ndl_hit *h = ndl_results_hits(r, rq);
    for (unsigned j = 0; j < k; j++)
        out[j] = (j < cnt && !h[j].id.str) ? h[j].id.num : UINT64_MAX;
}

/* One thread, one ndl_collection_search() per query. Returns the best wall
 * time over `repeat` runs; fills found (nq*k) and lat (per-query seconds of
 * the best run). */
static double run_single(ndl_collection *c, const vecs *q, size_t nq, const ndl_search_params *p,
                         unsigned repeat, uint64_t *found, double *lat, uint64_t *visited)
{
    double best = -1;
    double *cur = xmalloc(nq * sizeof(double));
    ndl_error err;
    for (unsigned rep = 0; rep < repeat; rep++) {
        uint64_t vis = 0;
        double t0 = bench_now();
        for (size_t i = 0; i < nq; i++) {
            double a = bench_now();
            ndl_results *r = NULL;
            if (ndl_collection_search(c, q->f + i * q->dim, p, &r, &err) != NDL_OK)
                die_err("search", &err);
            store_hits(r, 0, found + i * p->k, p->k);
            vis += ndl_results_visited(r);
            ndl_results_free(r);
            cur[i] = bench_now() - a;
        }
        double dt = bench_now() - t0;
        if (best < 0 || dt < best) {
            best = dt;
            memcpy(lat, cur, nq * sizeof(double));
            *visited = vis;
        }
    }
    free(cur);
    return best;
}

static void json_lat(const double *lat, size_t nq)
{
    double *s = xmalloc(nq * sizeof(double));
    memcpy(s, lat, nq * sizeof(double));
    qsort(s, nq, sizeof(double), bench_cmp_double);
    printf(",\"p50_us\":%.1f,\"p95_us\":%.1f,\"p99_us\":%.1f", bench_pct(s, nq, 0.50) * 1e6,
           bench_pct(s, nq, 0.95) * 1e6, bench_pct(s, nq, 0.99) * 1e6);
    free(s);
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    opts o = parse_args(argc, argv);
    ndl_error err;
    memset(&err, 0, sizeof err);

    ndl_metric metric;
    ndl_index_type itype;
    if (ndl_metric_parse(o.metric, &metric, &err) != NDL_OK)
        die_err("--metric", &err);
    if (ndl_index_parse(o.index, &itype, &err) != NDL_OK)
        die_err("--index", &err);

    /* data first: it is in the RSS baseline, as in the hnswlib measurement */
    double t_load = bench_now();
    vecs base = load_vecs(o.base, o.limit);
    vecs qs = load_vecs(o.queries, o.nq);
    if (base.dim != qs.dim)
        die("base and queries have different dimensions (%s vs %s)", o.base, o.queries);
    vecs truth = {0, 0, NULL, NULL};
    if (o.truth && !o.limit) {
        truth = load_vecs(o.truth, o.nq);
        if (!truth.i)
            die("%s: truth must be .ivecs%s", o.truth, NULL);
        if (truth.n < qs.n)
            die("%s: fewer truth rows than queries%s", o.truth, NULL);
        if (truth.dim < o.k)
            die("%s: truth rows shorter than k%s", o.truth, NULL);
    }
    size_t nq = qs.n, n = base.n, dim = base.dim;
    ndl_id *ids = xmalloc(n * sizeof(ndl_id));
    for (size_t i = 0; i < n; i++)
        ids[i] = ndl_id_u64(i);
    uint64_t *found = xmalloc(nq * o.k * sizeof(uint64_t));
    double *lat = xmalloc(nq * sizeof(double));
    memset(found, 0xff, nq * o.k * sizeof(uint64_t));
    memset(lat, 0, nq * sizeof(double));
    fprintf(stderr, "lib_bench: loaded %zu x %zu base, %zu queries in %.1f s\n", n, dim, nq,
            bench_now() - t_load);

    /* database directory */
    char tmpl[4096];
    const char *dir = o.data;
    if (!dir) {
        const char *td = getenv("TMPDIR");
        snprintf(tmpl, sizeof tmpl, "%s/needle-bench-XXXXXX", td && *td ? td : "/tmp");
        if (!mkdtemp(tmpl))
            die("mkdtemp %s: %s", tmpl, strerror(errno));
        dir = tmpl;
    }

    /* memory baseline: after the input is loaded and the ids are made (as in
     * bench/peer_memory.py); the peak mark is reset so VmHWM afterwards is
     * the peak during the build */
    int hwm_reset = reset_peak();
    mem_status m0 = proc_status();
    ndl_db_options dbo;
    ndl_db_options_init(&dbo);
    if (o.fsync && ndl_fsync_parse(o.fsync, &dbo.fsync, &err) != NDL_OK)
        die_err("--fsync", &err);
    ndl_db *db = NULL;
    if (ndl_db_open(dir, &dbo, &db, &err) != NDL_OK)
        die_err("open database", &err);
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = (uint32_t)dim;
    cfg.metric = metric;
    cfg.index = itype;
    cfg.hnsw_m = o.m;
    cfg.hnsw_ef_construction = o.efc;
    ndl_collection *c = NULL;
    if (ndl_collection_create(db, "bench", &cfg, &c, &err) != NDL_OK)
        die_err("create collection", &err);
    ndl_write_options wo;
    ndl_write_options_init(&wo);
    wo.threads = o.build_threads;
    double t0 = bench_now();
    if (ndl_collection_upsert(c, n, ids, base.f, &wo, &err) != NDL_OK)
        die_err("upsert", &err);
    double build_s = bench_now() - t0;
    mem_status m1 = proc_status();
    ndl_collection_info info;
    memset(&info, 0, sizeof info);
    if (ndl_collection_info_get(c, &info, &err) != NDL_OK)
        die_err("info", &err);
    double bpv = (double)(m1.rss - m0.rss) / (double)n;
    printf("{\"system\":\"needle\",\"event\":\"build\",\"label\":\"%s\",\"index\":\"%s\","
           "\"metric\":\"%s\",\"n\":%zu,\"dim\":%zu,\"m\":%u,\"ef_construction\":%u,"
           "\"build_threads\":%u,\"build_s\":%.3f,\"rss_before\":%lld,\"rss_after\":%lld,"
           "\"bytes_per_vector\":%.1f,\"anon_bytes_per_vector\":%.1f,",
           o.label, ndl_index_name(itype), ndl_metric_name(metric), n, dim, o.m, o.efc,
           o.build_threads, build_s, m0.rss, m1.rss, bpv,
           (double)(m1.anon - m0.anon) / (double)n);
    if (hwm_reset && m1.hwm >= 0)
        printf("\"peak_bytes_per_vector\":%.1f,", (double)(m1.hwm - m0.rss) / (double)n);
    else
        printf("\"peak_bytes_per_vector\":null,");
    printf("\"hwm_reset\":%s,\"fsync\":\"%s\",\"reported_memory_bytes\":%llu,\"count\":%llu,"
           "\"version\":\"%s\"}\n",
           hwm_reset ? "true" : "false", ndl_fsync_name(dbo.fsync), (unsigned long long)info.memory_bytes,
           (unsigned long long)info.count, ndl_version());
    if (info.count != n)
        fprintf(stderr, "lib_bench: WARNING: collection holds %llu points, expected %zu\n",
                (unsigned long long)info.count, n);
    fflush(stdout);
    free(ids);

    /* ground truth: exact needle search when no file was given */
    const int32_t *tr = truth.i;
    size_t tdim = truth.dim;
    int32_t *own_truth = NULL;
    if (!tr) {
        ndl_search_params tp;
        ndl_search_params_init(&tp);
        tp.k = o.k;
        tp.exact = 1;
        tp.threads = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
        ndl_results *r = NULL;
        if (ndl_collection_search_batch(c, nq, qs.f, &tp, &r, &err) != NDL_OK)
            die_err("exact truth", &err);
        own_truth = xmalloc(nq * o.k * sizeof(int32_t));
        for (size_t i = 0; i < nq; i++) {
            uint64_t tmp[NDL_K_MAX];
            store_hits(r, i, tmp, o.k);
            for (unsigned j = 0; j < o.k; j++)
                own_truth[i * o.k + j] = (int32_t)tmp[j];
        }
        ndl_results_free(r);
        tr = own_truth;
        tdim = o.k;
        fprintf(stderr, "lib_bench: computed exact truth (no --truth given)\n");
    }

    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = o.k;
    p.threads = 1;

    if (itype == NDL_INDEX_HNSW) {
        const char *s = o.ef_list;
        while (*s) {
            char *end;
            unsigned long ef = strtoul(s, &end, 10);
            if (end == s)
                die("--ef: bad list %s%s", o.ef_list, NULL);
            s = *end == ',' ? end + 1 : end;
            p.ef = (uint32_t)(ef < o.k ? o.k : ef);
            p.exact = 0;
            uint64_t visited = 0;
            double dt = run_single(c, &qs, nq, &p, o.repeat, found, lat, &visited);
            printf("{\"system\":\"needle\",\"label\":\"%s\",\"index\":\"hnsw\",\"m\":%u,"
                   "\"ef_construction\":%u,\"ef\":%lu,\"k\":%u,\"threads\":1,\"build_threads\":%u,"
                   "\"queries\":%zu,\"recall\":%.4f,\"qps\":%.1f,\"build_s\":%.2f,"
                   "\"bytes_per_vector\":%.1f,\"visited_per_query\":%.1f",
                   o.label, o.m, o.efc, ef, o.k, o.build_threads, nq,
                   recall_at_k(found, tr, tdim, nq, o.k), (double)nq / dt, build_s, bpv,
                   (double)visited / (double)nq);
            json_lat(lat, nq);
            printf("}\n");
            fflush(stdout);
        }
    } else {
        p.exact = 1;
        if (o.modes & 1) {
            uint64_t visited = 0;
            double dt = run_single(c, &qs, nq, &p, o.repeat, found, lat, &visited);
            printf("{\"system\":\"needle\",\"label\":\"%s\",\"index\":\"flat\",\"mode\":\"single\","
                   "\"k\":%u,\"threads\":1,\"queries\":%zu,\"recall\":%.4f,\"qps\":%.1f",
                   o.label, o.k, nq, recall_at_k(found, tr, tdim, nq, o.k), (double)nq / dt);
            json_lat(lat, nq);
            printf("}\n");
            fflush(stdout);
        }
        if (o.modes & 2) {
            p.threads = o.batch_threads;
            double best = -1;
            for (unsigned rep = 0; rep < o.repeat; rep++) {
                ndl_results *r = NULL;
                double a = bench_now();
                if (ndl_collection_search_batch(c, nq, qs.f, &p, &r, &err) != NDL_OK)
                    die_err("search_batch", &err);
                for (size_t i = 0; i < nq; i++)
                    store_hits(r, i, found + i * o.k, o.k);
                ndl_results_free(r);
                double dt = bench_now() - a;
                if (best < 0 || dt < best)
                    best = dt;
            }
            printf("{\"system\":\"needle\",\"label\":\"%s\",\"index\":\"flat\",\"mode\":\"batch\","
                   "\"k\":%u,\"threads\":%u,\"queries\":%zu,\"recall\":%.4f,\"qps\":%.1f}\n",
                   o.label, o.k, o.batch_threads, nq, recall_at_k(found, tr, tdim, nq, o.k),
                   (double)nq / best);
            fflush(stdout);
        }
    }

    if (ndl_collection_close(c, &err) != NDL_OK)
        die_err("close collection", &err);
    if (ndl_db_close(db, &err) != NDL_OK)
        die_err("close database", &err);
    if (!o.data && !o.keep)
        rm_rf(dir);
    free(own_truth);
    free(found);
    free(lat);
    free(base.f);
    free(qs.f);
    free(truth.i);
    return 0;
}
