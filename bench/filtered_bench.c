/*
 * filtered_bench.c -- filtered search in-process (ndl_collection_search with
 * a payload filter), for bench/filtered.sh, which runs FAISS on the same
 * points, payloads and filters in the same run (bench/filtered_faiss.py).
 *
 *   filtered_bench build dir=D base=F [metric=l2] [labels=F] [threads=2]
 *       a collection "f" over base (.fvecs/.bvecs) with payloads sel, r
 *       and, with labels (one int32 per point), cluster: see payload_of;
 *       then indexes on them (keyword, int, int), timed: built from the
 *       stored payloads, as every reopen does
 *   filtered_bench run dir=D queries=F [nq=N] [k=10] [efs=0,32,64,128,256]
 *       [labels=1 far_cluster=C] [seconds=2] [filters=all|NAME,...] [warm=W]
 *       per filter (sel_*, r_*, and with labels=1 cluster_far: cluster C)
 *       and ef (0: the default): recall@k against the exact filtered
 *       answer, whether every query got exactly min(k, matching) results,
 *       QPS on one thread, the plan, and the means over the queries of the
 *       estimate and of the nodes visited; one JSON line each. First, W
 *       held-out queries (those after the first N) are searched with the
 *       default ef, as traffic the collection learns its default ef from
 *
 * The payloads come from a hash of the point's row, u(i, salt) in [0, 1),
 * which filtered_faiss.py computes the same way:
 *   sel: "p50" if u(i,1) < 0.5, "p10" if < 0.1, "p1", "p01", "p001" likewise
 *        (nested: a point in p1 is in p10 and p50), so {"sel":"p1"} keeps 1%
 *   r:   floor(u(i,2) * 1e6), so {"r":{"$lt":10000}} keeps 1%
 * Build: gcc -O2 -std=c11 -Iinclude bench/filtered_bench.c build/libneedle.a
 *        -lopenblas -ljansson -lroaring -lm -lpthread -o build/filtered_bench
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "needle.h"

static int g_argc;
static char **g_argv;

static const char *arg(const char *key, const char *def)
{
    size_t n = strlen(key);
    for (int i = 2; i < g_argc; i++)
        if (strncmp(g_argv[i], key, n) == 0 && g_argv[i][n] == '=')
            return g_argv[i] + n + 1;
    return def;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "filtered_bench: %s: %s\n", what, msg);
    exit(1);
}

/* splitmix64 of (row, salt) -> [0, 1): the same in filtered_faiss.py. */
static double u(uint64_t row, uint64_t salt)
{
    uint64_t z = row * 0x9E3779B97F4A7C15ull + salt * 0xD1B54A32D192ED03ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static const struct {
    const char *tag;
    double share;
} tags[] = {{"p50", 0.5}, {"p10", 0.1}, {"p1", 0.01}, {"p01", 0.001}, {"p001", 0.0001}};
#define NTAGS (sizeof tags / sizeof *tags)

static void payload_of(uint64_t row, const int32_t *labels, char *out, size_t cap)
{
    double a = u(row, 1);
    int n = snprintf(out, cap, "{\"sel\":[");
    int first = 1;
    for (size_t t = 0; t < NTAGS; t++)
        if (a < tags[t].share) {
            n += snprintf(out + n, cap - (size_t)n, "%s\"%s\"", first ? "" : ",", tags[t].tag);
            first = 0;
        }
    n += snprintf(out + n, cap - (size_t)n, "],\"r\":%d", (int)floor(u(row, 2) * 1e6));
    if (labels)
        n += snprintf(out + n, cap - (size_t)n, ",\"cluster\":%d", labels[row]);
    snprintf(out + n, cap - (size_t)n, "}");
}

static int32_t *read_labels(const char *path, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, "cannot open");
    int32_t *l = malloc(n * sizeof *l);
    if (!l || fread(l, sizeof *l, n, f) != n)
        die(path, "short labels file");
    fclose(f);
    return l;
}

static ndl_db *open_db(const char *dir)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.create_if_missing = 1;
    o.fsync = NDL_FSYNC_NONE;
    ndl_db *db;
    ndl_error e;
    if (ndl_db_open(dir, &o, &db, &e) != NDL_OK)
        die(dir, e.msg);
    return db;
}

static int mode_build(void)
{
    size_t n;
    uint32_t dim;
    float *v = bench_read_vecs(arg("base", ""), &n, &dim);
    const char *lp = arg("labels", NULL);
    int32_t *labels = lp ? read_labels(lp, n) : NULL;
    ndl_db *db = open_db(arg("dir", "/var/tmp/needle-filtered"));
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = dim;
    ndl_error e;
    if (ndl_metric_parse(arg("metric", "l2"), &cfg.metric, &e) != NDL_OK)
        die("metric", e.msg);
    ndl_collection *c;
    if (ndl_collection_create(db, "f", &cfg, &c, &e) != NDL_OK)
        die("create", e.msg);
    ndl_write_options wo;
    ndl_write_options_init(&wo);
    wo.threads = (uint32_t)atoi(arg("threads", "2"));
    double t0 = bench_now();
    enum { BATCH = 5000 };
    ndl_id *ids = malloc(BATCH * sizeof *ids);
    char **pl = malloc(BATCH * sizeof *pl);
    for (size_t i = 0; i < BATCH; i++)
        pl[i] = malloc(256);
    for (size_t first = 0; first < n; first += BATCH) {
        size_t cnt = n - first < BATCH ? n - first : BATCH;
        for (size_t i = 0; i < cnt; i++) {
            ids[i] = ndl_id_u64(first + i);
            payload_of(first + i, labels, pl[i], 256);
        }
        if (ndl_collection_upsert_points(c, cnt, ids, v + first * dim, (const char *const *)pl,
                                         &wo, &e) != NDL_OK)
            die("upsert", e.msg);
    }
    double t1 = bench_now();
    /* the payload indexes over the stored payloads: what a reopen rebuilds */
    if (ndl_collection_add_field(c, "sel", NDL_FIELD_KEYWORD, &e) != NDL_OK ||
        ndl_collection_add_field(c, "r", NDL_FIELD_INT, &e) != NDL_OK ||
        (labels && ndl_collection_add_field(c, "cluster", NDL_FIELD_INT, &e) != NDL_OK))
        die("add_field", e.msg);
    double t2 = bench_now();
    if (ndl_collection_flush(c, &e) != NDL_OK)
        die("flush", e.msg);
    printf("{\"measure\":\"build\",\"n\":%zu,\"dim\":%u,\"seconds\":%.2f,\"vectors_per_s\":%.0f,"
           "\"fields\":%d,\"fields_seconds\":%.3f}\n",
           n, dim, t1 - t0, (double)n / (t1 - t0), labels ? 3 : 2, t2 - t1);
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
    for (size_t i = 0; i < BATCH; i++)
        free(pl[i]);
    free(pl);
    free(ids);
    free(labels);
    free(v);
    return 0;
}

typedef struct filter_case {
    char name[32];
    char json[128];
} filter_case;

static size_t make_filters(filter_case *out, int with_cluster, int far_cluster)
{
    size_t n = 0;
    for (size_t t = 0; t < NTAGS; t++) {
        snprintf(out[n].name, sizeof out[n].name, "sel_%s", tags[t].tag);
        snprintf(out[n].json, sizeof out[n].json, "{\"sel\":\"%s\"}", tags[t].tag);
        n++;
    }
    for (size_t t = 0; t < NTAGS; t++) {
        snprintf(out[n].name, sizeof out[n].name, "r_%s", tags[t].tag);
        snprintf(out[n].json, sizeof out[n].json, "{\"r\":{\"$lt\":%d}}",
                 (int)(tags[t].share * 1e6));
        n++;
    }
    if (with_cluster) {
        snprintf(out[n].name, sizeof out[n].name, "cluster_far");
        snprintf(out[n].json, sizeof out[n].json, "{\"cluster\":%d}", far_cluster);
        n++;
    }
    return n;
}

/* Whether name is one of the comma-separated names in list (whole names:
 * "sel_p10" does not list "sel_p1"). */
static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *at = list; at; at = strchr(at, ',')) {
        at += *at == ',';
        if (strncmp(at, name, n) == 0 && (at[n] == ',' || at[n] == 0))
            return 1;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int mode_run(void)
{
    size_t nq, nfile;
    uint32_t dim;
    float *q = bench_read_vecs(arg("queries", ""), &nfile, &dim);
    size_t limit = (size_t)atol(arg("nq", "0"));
    nq = limit && limit < nfile ? limit : nfile;
    size_t warm = (size_t)atol(arg("warm", "0"));
    if (warm > nfile - nq)
        warm = nfile - nq;
    uint32_t k = (uint32_t)atoi(arg("k", "10"));
    double secs = atof(arg("seconds", "2"));
    ndl_db *db = open_db(arg("dir", "/var/tmp/needle-filtered"));
    ndl_collection *c;
    ndl_error e;
    double t_open = bench_now();
    if (ndl_collection_open(db, "f", &c, &e) != NDL_OK)
        die("open", e.msg);
    t_open = bench_now() - t_open;
    ndl_collection_info info;
    ndl_collection_info_get(c, &info, &e);
    printf("{\"measure\":\"open\",\"points\":%llu,\"seconds\":%.3f,\"memory_bytes\":%zu,"
           "\"fields\":%zu}\n",
           (unsigned long long)info.count, t_open, (size_t)info.memory_bytes,
           ndl_collection_field_count(c));
    /* Traffic before the measurement: the held-out queries after the first
     * nq, searched with the default ef, from which the collection learns
     * its default ef (ndl_collection_info.search_ef); then wait for it. */
    ndl_search_params wp;
    ndl_search_params_init(&wp);
    wp.k = k;
    /* passes over them until a pass brings no new tuning (the sample is
     * tuned at 100 queries and again when it has doubled) */
    uint32_t tuned_from = 0;
    for (int pass = 0; warm && pass < 5; pass++) {
        for (size_t i = 0; i < warm; i++) {
            ndl_results *r;
            if (ndl_collection_search(c, q + (nq + i) * dim, &wp, &r, &e) != NDL_OK)
                die("warm-up", e.msg);
            ndl_results_free(r);
        }
        bool changed = false;
        for (int tries = 0; tries < 100 && !changed; tries++) {
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
            ndl_collection_info_get(c, &info, &e);
            changed = info.search_ef_queries != tuned_from;
        }
        if (!changed)
            break;
        tuned_from = info.search_ef_queries;
    }
    ndl_collection_info_get(c, &info, &e);
    printf("{\"measure\":\"default_ef\",\"warm_queries\":%zu,\"search_ef\":%u,"
           "\"sample_recall\":%.4f,\"sample_queries\":%u}\n",
           warm, info.search_ef, info.search_ef_recall, info.search_ef_queries);
    fflush(stdout);
    filter_case fc[16];
    size_t nf = make_filters(fc, atoi(arg("labels", "0")), atoi(arg("far_cluster", "0")));
    const char *only = arg("filters", "all");
    uint64_t *truth = malloc(nq * k * sizeof *truth);
    size_t *tlen = malloc(nq * sizeof *tlen);
    for (size_t fi = 0; fi < nf; fi++) {
        if (strcmp(only, "all") != 0 && !listed(only, fc[fi].name))
            continue;
        ndl_filter *f;
        if (ndl_filter_parse(fc[fi].json, strlen(fc[fi].json), &f, &e) != NDL_OK)
            die(fc[fi].json, e.msg);
        uint64_t matching;
        if (ndl_collection_count_where(c, f, &matching, &e) != NDL_OK)
            die("count", e.msg);
        /* the exact filtered answer */
        ndl_search_params p;
        ndl_search_params_init(&p);
        p.k = k;
        p.exact = 1;
        p.where = f;
        p.threads = 2;
        ndl_results *r;
        double t0 = bench_now();
        if (ndl_collection_search_batch(c, nq, q, &p, &r, &e) != NDL_OK)
            die("exact", e.msg);
        double exact_qps = (double)nq / (bench_now() - t0) / 2; /* per thread */
        for (size_t i = 0; i < nq; i++) {
            const ndl_hit *h = ndl_results_hits(r, i);
            tlen[i] = ndl_results_count(r, i);
            for (size_t j = 0; j < tlen[i]; j++)
                truth[i * k + j] = h[j].id.num;
            qsort(truth + i * k, tlen[i], sizeof *truth, cmp_u64);
        }
        ndl_results_free(r);
        printf("{\"measure\":\"filter\",\"filter\":\"%s\",\"json\":%s,\"matching\":%llu,"
               "\"exact_qps_1_thread\":%.0f}\n",
               fc[fi].name, fc[fi].json, (unsigned long long)matching, exact_qps);
        char efs[256];
        snprintf(efs, sizeof efs, "%s", arg("efs", "0,32,64,128,256"));
        for (char *tok = strtok(efs, ","); tok; tok = strtok(NULL, ",")) {
            uint32_t ef = (uint32_t)atoi(tok);
            if (ef && ef < k)
                continue;
            ndl_search_params_init(&p);
            p.k = k;
            p.ef = ef;
            p.where = f;
            size_t found = 0, want = 0, wrong_count = 0, runs = 0;
            uint64_t est = 0, visited = 0;
            const char *plan = "";
            uint32_t ef_used = 0;
            double start = bench_now(), t_end = start + secs;
            for (size_t i = 0;; i = (i + 1) % nq) {
                if (ndl_collection_search(c, q + i * dim, &p, &r, &e) != NDL_OK)
                    die("search", e.msg);
                runs++;
                if (runs <= nq) { /* quality over one pass of the queries */
                    size_t got = ndl_results_count(r, 0);
                    const ndl_hit *h = ndl_results_hits(r, 0);
                    size_t expect = matching < k ? matching : k;
                    wrong_count += got != expect;
                    want += tlen[i];
                    for (size_t j = 0; j < got; j++)
                        found += bsearch(&h[j].id.num, truth + i * k, tlen[i], sizeof *truth,
                                         cmp_u64) != NULL;
                    ndl_explain ex;
                    ndl_results_explain(r, &ex);
                    plan = ex.plan;
                    ef_used = ex.ef;
                    est += ex.estimated;
                    visited += ex.visited;
                }
                ndl_results_free(r);
                if (runs >= nq && bench_now() >= t_end)
                    break;
            }
            double el = bench_now() - start;
            printf("{\"measure\":\"search\",\"filter\":\"%s\",\"ef\":%u,\"matching\":%llu,"
                   "\"recall\":%.4f,\"queries_with_wrong_count\":%zu,\"qps\":%.0f,"
                   "\"plan\":\"%s\",\"ef_used\":%u,\"estimated_mean\":%.0f,\"visited_mean\":%.0f}\n",
                   fc[fi].name, ef, (unsigned long long)matching,
                   want ? (double)found / (double)want : 1.0, wrong_count, (double)runs / el, plan,
                   ef_used,
                   (double)est / (double)nq, (double)visited / (double)nq);
            fflush(stdout);
        }
        ndl_filter_free(f);
    }
    free(truth);
    free(tlen);
    free(q);
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    if (argc < 2) {
        fprintf(stderr, "usage: filtered_bench build|run key=value...\n");
        return 2;
    }
    if (strcmp(argv[1], "build") == 0)
        return mode_build();
    if (strcmp(argv[1], "run") == 0)
        return mode_run();
    die(argv[1], "unknown mode");
    return 2;
}
