/*
 * cmd_bench.c -- `needle bench NAME --queries FILE --k K`: for each search
 * setting (HNSW ef values, or one exact run), T threads take queries from a
 * shared counter and time each search; reports recall@k against --truth
 * (ivecs ids) or against exact search, QPS = queries / wall time, and
 * p50/p95/p99 latency. --json prints one SPEC section 2 line per setting.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "cli/readers.h"
#include "cli/search_common.h"
#include "cli/text.h"

#define BENCH_MAX_SETTINGS 64

enum {
    O_DATA, O_QUERIES, O_TRUTH, O_K, O_EF, O_NPROBE, O_THREADS, O_JSON, O_EXACT, O_PLOT,
    O_SALVAGE, O_N
};

/* The true neighbours: per query a sorted list of keys (u64 ids for an ivecs
 * file, slots for computed truth) and its length (the recall denominator). */
typedef struct truth_set {
    int by_id;          /* keys are ids (else slots) */
    uint32_t k;
    uint64_t *keys;     /* nq * k, row i sorted, first len[i] used */
    uint32_t *len;
} truth_set;

typedef struct setting {
    const char *index;  /* "hnsw" or "flat" */
    uint32_t ef;        /* 0: the default (adaptive) ef, or null in the output */
    int exact;
    int hnsw;           /* ef 0 means "auto" (the library's default) */
} setting;

typedef struct bench_run {
    ndl_collection *c;
    const float *queries;
    size_t nq;
    uint32_t dim;
    ndl_search_params sp;
    const truth_set *truth;
    _Atomic size_t next;       /* next query to take */
    uint64_t *lat_ns;          /* per query */
    uint32_t *matched;         /* per query */
    pthread_mutex_t err_lock;
    int failed;                /* guarded by err_lock */
    ndl_status err_st;
    ndl_error err;
    char err_extra[200];       /* a CLI-side problem (string id vs ivecs truth) */
} bench_run;

/* One thread's view: only the calling thread draws the progress bar. */
typedef struct bench_worker_arg {
    bench_run *b;
    cli_progress *bar;         /* NULL in the started threads */
} bench_worker_arg;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int key_in(const uint64_t *keys, uint32_t n, uint64_t key)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && keys[lo] == key;
}

static void run_fail(bench_run *b, ndl_status st, const ndl_error *err, const char *extra)
{
    pthread_mutex_lock(&b->err_lock);
    if (!b->failed) {
        b->failed = 1;
        b->err_st = st;
        if (err)
            b->err = *err;
        if (extra)
            snprintf(b->err_extra, sizeof b->err_extra, "%s", extra);
    }
    pthread_mutex_unlock(&b->err_lock);
}

static void *bench_worker(void *arg)
{
    bench_worker_arg *wa = arg;
    bench_run *b = wa->b;
    for (;;) {
        size_t i = atomic_fetch_add(&b->next, 1);
        if (i >= b->nq)
            break;
        ndl_results *r = NULL;
        ndl_error err = {0};
        uint64_t t0 = cli_now_ns();
        ndl_status st = ndl_collection_search(b->c, b->queries + i * b->dim, &b->sp, &r, &err);
        b->lat_ns[i] = cli_now_ns() - t0;
        if (st != NDL_OK) {
            run_fail(b, st, &err, NULL);
            atomic_store(&b->next, b->nq);
            break;
        }
        const ndl_hit *h = ndl_results_hits(r, 0);
        size_t n = ndl_results_count(r, 0);
        const truth_set *t = b->truth;
        const uint64_t *keys = t->keys + i * (size_t)t->k;
        uint32_t m = 0;
        for (size_t j = 0; j < n && j < t->k; j++) {
            if (t->by_id && h[j].id.str) {
                char msg[200], shown[80];
                snprintf(msg, sizeof msg, "--truth holds integer ids, but the collection returned "
                         "the string id \"%s\"",
                         cli_safe_text(h[j].id.str, h[j].id.len, shown, sizeof shown));
                run_fail(b, NDL_INVALID, NULL, msg);
                atomic_store(&b->next, b->nq);
                break;
            }
            m += (uint32_t)key_in(keys, t->len[i], t->by_id ? h[j].id.num : h[j].slot);
        }
        b->matched[i] = m;
        ndl_results_free(r);
        if (wa->bar)
            progress_update(wa->bar, atomic_load(&b->next));
    }
    return NULL;
}

static uint64_t percentile(const uint64_t *sorted, size_t n, double p)
{
    /* nearest rank */
    size_t rank = (size_t)(p * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static unsigned long long us_round(uint64_t ns)
{
    return (unsigned long long)((ns + 500) / 1000);
}

/* Run one setting and print its line. */
static int run_setting(ndl_collection *c, const char *name, const setting *s, const float *queries,
                       size_t nq, uint32_t dim, uint32_t k, uint32_t threads,
                       const truth_set *truth, int json)
{
    bench_run b;
    memset(&b, 0, sizeof b);
    b.c = c;
    b.queries = queries;
    b.nq = nq;
    b.dim = dim;
    ndl_search_params_init(&b.sp);
    b.sp.k = k;
    b.sp.ef = s->ef;
    b.sp.exact = s->exact;
    b.truth = truth;
    atomic_init(&b.next, 0);
    b.lat_ns = calloc(nq, sizeof *b.lat_ns);
    b.matched = calloc(nq, sizeof *b.matched);
    pthread_t *tids = calloc(threads, sizeof *tids);
    if (!b.lat_ns || !b.matched || !tids) {
        free(b.lat_ns);
        free(b.matched);
        free(tids);
        return cli_fail(CLI_ERR, "out of memory");
    }
    pthread_mutex_init(&b.err_lock, NULL);
    char label[32];
    if (s->ef)
        snprintf(label, sizeof label, "ef=%u", s->ef);
    else
        snprintf(label, sizeof label, "%s", s->exact ? "exact" : s->hnsw ? "ef=auto" : s->index);
    cli_progress bar;
    progress_start(&bar, label, nq);

    uint64_t t0 = cli_now_ns();
    uint32_t started = 0;
    int rc = CLI_OK;
    bench_worker_arg others = {&b, NULL}, mine = {&b, &bar};
    for (uint32_t t = 1; t < threads; t++) {
        if (pthread_create(&tids[t], NULL, bench_worker, &others) != 0) {
            rc = cli_fail(CLI_ERR, "cannot start thread %u", t);
            atomic_store(&b.next, nq);
            break;
        }
        started++;
    }
    bench_worker(&mine);
    for (uint32_t t = 1; t <= started; t++)
        pthread_join(tids[t], NULL);
    uint64_t wall = cli_now_ns() - t0;
    progress_finish(&bar);

    if (rc == CLI_OK && b.failed) {
        if (b.err_extra[0])
            rc = cli_fail(CLI_ERR, "%s", b.err_extra);
        else
            rc = cli_fail_lib(b.err_st, &b.err);
    }
    if (rc == CLI_OK) {
        uint64_t hit = 0, den = 0;
        for (size_t i = 0; i < nq; i++) {
            hit += b.matched[i];
            den += truth->len[i];
        }
        double recall = den ? (double)hit / (double)den : 1.0;
        double qps = wall ? (double)nq / ((double)wall / 1e9) : 0.0;
        qsort(b.lat_ns, nq, sizeof *b.lat_ns, cmp_u64);
        unsigned long long p50 = us_round(percentile(b.lat_ns, nq, 0.50));
        unsigned long long p95 = us_round(percentile(b.lat_ns, nq, 0.95));
        unsigned long long p99 = us_round(percentile(b.lat_ns, nq, 0.99));
        if (json) {
            fputs("{\"collection\":", stdout);
            cli_json_string(stdout, name, strlen(name));
            printf(",\"index\":\"%s\",\"ef\":", s->index);
            if (s->ef)
                printf("%u", s->ef);
            else
                fputs(s->hnsw ? "\"auto\"" : "null", stdout);
            printf(",\"nprobe\":null,\"k\":%u,\"threads\":%u,\"queries\":%zu,\"recall\":%.4f,"
                   "\"qps\":%.1f,\"p50_us\":%llu,\"p95_us\":%llu,\"p99_us\":%llu}\n",
                   k, threads, nq, recall, qps, p50, p95, p99);
        } else {
            char ef[16] = "-";
            if (s->hnsw)
                snprintf(ef, sizeof ef, "auto");
            if (s->ef)
                snprintf(ef, sizeof ef, "%u", s->ef);
            printf("%-6s %6s %8.4f %11.1f %8llu %8llu %8llu\n", s->exact ? "exact" : s->index, ef,
                   recall, qps, p50, p95, p99);
        }
        fflush(stdout);
    }
    pthread_mutex_destroy(&b.err_lock);
    free(b.lat_ns);
    free(b.matched);
    free(tids);
    return rc;
}

/* A reopened collection's vectors are mapped: open verifies them through
 * the file's shared mapping, but the last, partial chunk is a second,
 * private mapping whose pages still fault in. One exact scan touches every
 * vector so the first timed setting does not pay for page faults (exact
 * truth does this anyway). */
static void warm_up(ndl_collection *c, const float *query, uint32_t k)
{
    ndl_search_params sp;
    ndl_search_params_init(&sp);
    sp.k = k;
    sp.exact = 1;
    ndl_results *r = NULL;
    if (ndl_collection_search(c, query, &sp, &r, NULL) == NDL_OK)
        ndl_results_free(r);
}

/* Truth from an ivecs file: the first k ids of each row. */
static int truth_from_ivecs(const char *path, size_t nq, uint32_t k, const char *qpath,
                            truth_set *t)
{
    cli_ivecs iv;
    int rc = ivecs_load(path, &iv);
    if (rc != CLI_OK)
        return rc;
    if (iv.n != nq) {
        rc = cli_fail(CLI_ERR, "%s has %zu rows; %s has %zu queries", path, iv.n, qpath, nq);
        goto out;
    }
    t->by_id = 1;
    t->k = k;
    t->keys = malloc(nq * (size_t)k * sizeof *t->keys);
    t->len = malloc(nq * sizeof *t->len);
    if (!t->keys || !t->len) {
        rc = cli_fail(CLI_ERR, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nq; i++) {
        if (iv.len[i] < k) {
            rc = cli_fail(CLI_ERR, "%s: row %zu has %u ids; --k is %u", path, i, iv.len[i], k);
            goto out;
        }
        uint64_t *row = t->keys + i * (size_t)k;
        uint32_t n = 0;
        for (uint32_t j = 0; j < k; j++) {
            int32_t id = ivecs_at(&iv, i, j);
            if (id < 0) {
                rc = cli_fail(CLI_ERR, "%s: row %zu holds the negative id %d", path, i, (int)id);
                goto out;
            }
            row[n++] = (uint64_t)id;
        }
        qsort(row, n, sizeof *row, cmp_u64);
        t->len[i] = k;
    }
out:
    ivecs_free(&iv);
    return rc;
}

/* Truth from exact search (all CPUs), as slots. */
static int truth_exact(ndl_collection *c, const float *queries, size_t nq, uint32_t dim,
                       uint32_t k, truth_set *t)
{
    t->by_id = 0;
    t->k = k;
    t->keys = malloc(nq * (size_t)k * sizeof *t->keys);
    t->len = malloc(nq * sizeof *t->len);
    if (!t->keys || !t->len)
        return cli_fail(CLI_ERR, "out of memory");
    ndl_search_params sp;
    ndl_search_params_init(&sp);
    sp.k = k;
    sp.exact = 1;
    sp.threads = cli_cpus();
    const size_t chunk = 1024;
    for (size_t first = 0; first < nq; first += chunk) {
        size_t cnt = nq - first < chunk ? nq - first : chunk;
        ndl_results *r = NULL;
        ndl_error err = {0};
        ndl_status st = ndl_collection_search_batch(c, cnt, queries + first * dim, &sp, &r, &err);
        if (st != NDL_OK)
            return cli_fail_lib(st, &err);
        for (size_t q = 0; q < cnt; q++) {
            const ndl_hit *h = ndl_results_hits(r, q);
            size_t n = ndl_results_count(r, q);
            uint64_t *row = t->keys + (first + q) * (size_t)k;
            if (n > k)
                n = k;
            for (size_t j = 0; j < n; j++)
                row[j] = h[j].slot;
            qsort(row, n, sizeof *row, cmp_u64);
            t->len[first + q] = (uint32_t)n;
        }
        ndl_results_free(r);
    }
    return CLI_OK;
}

int cmd_bench(int argc, char **argv)
{
    cli_opt o[O_N] = {
        [O_DATA] = {"data", 1, NULL, 0},     [O_QUERIES] = {"queries", 1, NULL, 0},
        [O_TRUTH] = {"truth", 1, NULL, 0},   [O_K] = {"k", 1, NULL, 0},
        [O_EF] = {"ef", 1, NULL, 0},         [O_NPROBE] = {"nprobe", 1, NULL, 0},
        [O_THREADS] = {"threads", 1, NULL, 0}, [O_JSON] = {"json", 0, NULL, 0},
        [O_EXACT] = {"exact", 0, NULL, 0},   [O_PLOT] = {"plot", 1, NULL, 0},
        [O_SALVAGE] = {"salvage", 0, NULL, 0},
    };
    const char *pos[1];
    size_t npos;
    int help;
    int rc = cli_parse(argc, argv, o, O_N, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    const char *name;
    if ((rc = query_args_check("bench", pos, npos, &o[O_QUERIES], &o[O_K], &o[O_NPROBE], &name)) !=
        CLI_OK)
        return rc;
    if (o[O_PLOT].value)
        return cli_fail(CLI_USAGE, "--plot is not supported yet");
    uint32_t k, threads = 1;
    if ((rc = cli_opt_u32(&o[O_K], NDL_K_MIN, NDL_K_MAX, &k)) != CLI_OK)
        return rc;
    if (o[O_THREADS].value && (rc = cli_opt_u32(&o[O_THREADS], 1, 1024, &threads)) != CLI_OK)
        return rc;
    uint32_t efs[BENCH_MAX_SETTINGS];
    size_t nef = 0;
    if (o[O_EF].value) {
        /* "auto": 0, the collection's default ef (ndl_search_params.ef) */
        rc = cli_opt_u32_list(&o[O_EF], NDL_HNSW_EF_MIN, NDL_HNSW_EF_MAX, "auto", efs,
                              BENCH_MAX_SETTINGS, &nef);
        if (rc != CLI_OK)
            return rc;
        for (size_t i = 0; i < nef; i++)
            if (efs[i] && efs[i] < k)
                return cli_fail(CLI_USAGE, "--ef %u is less than --k %u (ef must be >= k)", efs[i], k);
    }
    int json = o[O_JSON].value != NULL;

    const char *dir = o[O_DATA].value ? o[O_DATA].value : CLI_DEFAULT_DATA;
    ndl_db *db;
    cli_salvage = o[O_SALVAGE].value != NULL;
    if ((rc = cli_db_open(dir, CLI_DB_READ_ONLY | CLI_DB_VERIFY, &db)) != CLI_OK)
        return rc;
    ndl_collection *c = NULL;
    float *queries = NULL;
    size_t nq = 0;
    uint32_t dim = 0;
    truth_set truth = {0};
    ndl_collection_info info;
    if ((rc = cli_coll_open(db, name, &c)) != CLI_OK)
        goto out;
    if ((rc = cli_coll_info(c, &info)) != CLI_OK)
        goto out;
    int hnsw = info.config.index == NDL_INDEX_HNSW;
    if (!hnsw && nef) {
        rc = cli_fail(CLI_USAGE, "--ef applies to hnsw collections; '%s' uses index %s", name,
                      ndl_index_name(info.config.index));
        goto out;
    }
    if ((rc = load_queries(c, name, o[O_QUERIES].value, &queries, &nq, &dim)) != CLI_OK)
        goto out;

    setting settings[BENCH_MAX_SETTINGS + 1];
    size_t ns = 0;
    if (hnsw) {
        if (!nef) {
            /* Defaults, raised to k and deduplicated. */
            static const uint32_t defaults[] = {16, 32, 64, 128};
            for (size_t i = 0; i < 4; i++) {
                uint32_t e = defaults[i] < k ? k : defaults[i];
                if (nef == 0 || efs[nef - 1] != e)
                    efs[nef++] = e;
            }
        }
        for (size_t i = 0; i < nef; i++)
            settings[ns++] = (setting){"hnsw", efs[i], 0, efs[i] == 0};
        if (o[O_EXACT].value)
            settings[ns++] = (setting){"flat", 0, 1, 0};
    } else {
        settings[ns++] = (setting){ndl_index_name(info.config.index), 0, 0, 0};
    }

    if (o[O_TRUTH].value) {
        rc = truth_from_ivecs(o[O_TRUTH].value, nq, k, o[O_QUERIES].value, &truth);
        if (rc == CLI_OK)
            warm_up(c, queries, k);
    } else
        rc = truth_exact(c, queries, nq, dim, k, &truth);
    if (rc != CLI_OK)
        goto out;

    if (!json) {
        printf("collection '%s': %s, %llu vectors, dimension %u, metric %s\n", name,
               ndl_index_name(info.config.index), (unsigned long long)info.count,
               info.config.dimension, ndl_metric_name(info.config.metric));
        printf("%zu queries, k=%u, %u thread%s, recall against %s\n", nq, k, threads,
               threads == 1 ? "" : "s", o[O_TRUTH].value ? o[O_TRUTH].value : "exact search");
        printf("%-6s %6s %8s %11s %8s %8s %8s\n", "index", "ef", "recall", "qps", "p50_us",
               "p95_us", "p99_us");
        fflush(stdout);
    }
    for (size_t i = 0; i < ns && rc == CLI_OK; i++)
        rc = run_setting(c, name, &settings[i], queries, nq, dim, k, threads, &truth, json);

out:
    free(truth.keys);
    free(truth.len);
    free(queries);
    rc = cli_coll_close(c, rc);
    return cli_db_close(db, rc);
}
