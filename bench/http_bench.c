/*
 * http_bench.c -- `needle serve` against the library in-process, on the
 * same data, threads and search settings (bench/http_bench.sh runs it all).
 *
 * One binary, one mode per call; arguments are key=value. Every measurement
 * prints one JSON line on stdout; diagnostics go to stderr.
 *
 *   gen        out=DIR n=100000 dim=128 nq=1000 [seed=1]
 *              clustered Gaussian blobs: DIR/base.fvecs, DIR/query.fvecs
 *   lib-ingest dir=DB name=C base=F [batch=1000] [callers=2] [index_threads=1]
 *              [fsync=none] [metric=l2]
 *              creates C (HNSW m=16 ef_construction=200 seed=100) and upserts
 *              F in batches from `callers` threads, each call with
 *              `index_threads` index threads: vectors/s
 *   lib-search dir=DB name=C queries=F [threads=2] [seconds=10] [warmup=2] [k=10] [ef=64]
 *              [json=0]
 *              ndl_collection_search from `threads` threads over an existing
 *              collection: QPS, CPU, and each call's latency. json=1 first
 *              parses the query's whole HTTP body with jansson (the server's
 *              path before fdcc172; it now reads the vector with
 *              src/server/fast_vector.c, so this is an upper bound) (QPS then includes the parse; the latency is still the search
 *              alone, to show what the parse between searches costs it)
 *   lib-json   queries=F [k=10] [ef=64] [seconds=2]
 *              jansson parse of the search bodies the HTTP runs send (the
 *              server's path before fdcc172): microseconds per body, one thread
 *   http-ingest url=http://H:P name=C base=F [batch=1000] [conns=4] [pid=SERVER]
 *              [metric=l2]
 *              PUT the collection, then POST every batch once as NDJSON
 *              over `conns` keep-alive connections: vectors/s
 *   http-search url=.. name=C queries=F [conns=16] [seconds=10] [warmup=2] [k=10]
 *              [ef=64] [rate=0] [expect=200] [pid=SERVER] [label=..]
 *              rate=0: closed loop (each connection sends its next request
 *              when the answer is in): QPS. rate=R: open loop at R requests/s
 *              spread over the connections; latency is measured from the
 *              scheduled send time, so a late send (connection still busy)
 *              counts (no coordinated omission).
 *   http-get   url=.. path=/v1/health [conns=16] [seconds=10] [warmup=2] [rate=0] [pid=..]
 *
 * Every HTTP mode drives `conns` connections from `threads=1` client
 * threads with epoll (HTTP/1.1 keep-alive, no pipelining), all connected
 * before the clock starts (connect_gap_ms=G: G ms between connects; a
 * burst of connects can land on one server thread). Reported over the
 * measured window: QPS, latency percentiles, the server's own "took_ms"
 * (search answers), this process's CPU, with pid= the server's CPU in all
 * and per thread (/proc/PID/task), and the machine's busy share, steal and
 * "other_cores" (what neither side used: other processes, kernel threads).
 *
 * build: see bench/http_bench.sh (libneedle.a with jansson, openblas, libm
 * and pthread; no HTTP library)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bench_util.h"

#include "needle.h"

/* ------------------------------------------------------------ small helpers */

static int g_argc;
static char **g_argv;

/* The value of key=value; the last one wins, so a script can override. */
static const char *arg(const char *key, const char *def)
{
    size_t n = strlen(key);
    for (int i = g_argc - 1; i >= 2; i--)
        if (strncmp(g_argv[i], key, n) == 0 && g_argv[i][n] == '=')
            return g_argv[i] + n + 1;
    return def;
}

static double argf(const char *key, double def)
{
    const char *v = arg(key, NULL);
    return v ? atof(v) : def;
}

static long argi(const char *key, long def)
{
    const char *v = arg(key, NULL);
    return v ? atol(v) : def;
}

static const char *need(const char *key)
{
    const char *v = arg(key, NULL);
    if (!v) {
        fprintf(stderr, "http_bench: %s=... is required\n", key);
        exit(2);
    }
    return v;
}

static _Noreturn void die(const char *what, const char *detail)
{
    fprintf(stderr, "http_bench: %s: %s\n", what, detail);
    exit(1);
}

static void sleep_until(double t)
{
    double d = t - bench_now();
    if (d <= 0)
        return;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A growing text buffer; out of memory ends the benchmark. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p)
        die("memory", "out of memory");
    b->cap = cap;
}

static void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            die("format", "vsnprintf failed");
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        buf_reserve(b, (size_t)n);
    }
}

/* %.9g reads back as the same float, so HTTP and in-process see equal vectors */
static void buf_vector(buf *b, const float *v, uint32_t dim)
{
    buf_printf(b, "[");
    for (uint32_t i = 0; i < dim; i++)
        buf_printf(b, i ? ",%.9g" : "%.9g", (double)v[i]);
    buf_printf(b, "]");
}

static void push(double **a, size_t *n, size_t *cap, double x)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 4096;
        *a = realloc(*a, *cap * sizeof **a);
        if (!*a)
            die("memory", "out of memory");
    }
    (*a)[(*n)++] = x;
}

/* ------------------------------------------------------------ CPU accounting */

/* CPU seconds of this process, of the server (pid), and the machine's busy
 * and total jiffies, at one moment. */
typedef struct cpu_snap {
    double self, server;
    unsigned long long busy, steal, total;
    int ntask;
    long tid[256];
    double task[256]; /* CPU seconds of each server thread */
} cpu_snap;

static double proc_cpu(const char *path)
{
    char text[2048];
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    /* fields after the ")" of the command name: state is field 3; utime 14, stime 15 */
    char *p = strrchr(text, ')');
    if (!p)
        return 0;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void cpu_take(cpu_snap *s, long pid)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s->self = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    char path[300];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    s->server = pid > 0 ? proc_cpu(path) : 0;
    /* each server thread too: an uneven share of connections shows here */
    s->ntask = 0;
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = pid > 0 ? opendir(path) : NULL;
    for (struct dirent *e; d && (e = readdir(d)) && s->ntask < 256;) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%ld/task/%.20s/stat", pid, e->d_name);
        s->tid[s->ntask] = atol(e->d_name);
        s->task[s->ntask++] = proc_cpu(path);
    }
    if (d)
        closedir(d);
    s->busy = s->steal = s->total = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        unsigned long long v[10] = {0};
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
            for (int i = 0; i < 8; i++) /* guest time is already in user */
                s->total += v[i];
            s->busy = s->total - v[3] - v[4]; /* minus idle and iowait */
            s->steal = v[7]; /* a virtual machine's time taken by the host */
        }
        fclose(f);
    }
}

/* cores used over the window of `secs` by this process and the server;
 * the machine's busy share (all cores, steal included) and steal share */
static void print_cpu(const cpu_snap *a, const cpu_snap *b, double secs, long pid)
{
    printf(",\"client_cores\":%.2f", (b->self - a->self) / secs);
    if (pid > 0) {
        printf(",\"server_cores\":%.2f,\"server_thread_cores\":[", (b->server - a->server) / secs);
        double used[256];
        int n = 0;
        for (int i = 0; i < b->ntask; i++)
            for (int j = 0; j < a->ntask; j++)
                if (a->tid[j] == b->tid[i] && b->task[i] - a->task[j] >= 0.01 * secs)
                    used[n++] = (b->task[i] - a->task[j]) / secs;
        qsort(used, (size_t)n, sizeof *used, bench_cmp_double);
        for (int i = n - 1; i >= 0; i--)
            printf(i == n - 1 ? "%.2f" : ",%.2f", used[i]);
        printf("]");
    }
    if (b->total > a->total) {
        double busy = (double)(b->busy - a->busy) / (double)(b->total - a->total);
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        /* what neither side used: the kernel's own threads, other processes */
        double other = busy * (double)cores - (b->self - a->self) / secs -
                       (pid > 0 ? (b->server - a->server) / secs : 0);
        printf(",\"machine_busy\":%.2f,\"other_cores\":%.2f,\"steal\":%.2f", busy,
               other > 0 ? other : 0, (double)(b->steal - a->steal) / (double)(b->total - a->total));
    }
}

/* ------------------------------------------------------------ gen */

static uint64_t rng_state = BENCH_SEED;
static double urand(void)
{
    return ((double)(bench_xorshift(&rng_state) >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
    return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand());
}

static void write_fvecs(const char *path, const float *v, size_t n, uint32_t dim)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        die(path, strerror(errno));
    int32_t d = (int32_t)dim;
    for (size_t i = 0; i < n; i++)
        if (fwrite(&d, 4, 1, f) != 1 || fwrite(v + i * dim, 4, dim, f) != dim)
            die(path, "write failed");
    if (fclose(f) != 0)
        die(path, "write failed");
}

/* 100 Gaussian blobs: HNSW behaves as on real data (uniform random vectors
 * in 128 dimensions have no neighbourhoods to speak of). */
static int mode_gen(void)
{
    const char *out = need("out");
    size_t n = (size_t)argi("n", 100000), nq = (size_t)argi("nq", 1000);
    uint32_t dim = (uint32_t)argi("dim", 128);
    rng_state ^= (uint64_t)argi("seed", 1) * 0x9e3779b97f4a7c15ull;
    enum { CENTERS = 100 };
    float *centers = malloc((size_t)CENTERS * dim * sizeof *centers);
    float *v = malloc((n > nq ? n : nq) * dim * sizeof *v);
    if (!centers || !v)
        die("gen", "out of memory");
    for (size_t i = 0; i < (size_t)CENTERS * dim; i++)
        centers[i] = (float)(urand() * 2 - 1);
    char path[4096];
    for (int part = 0; part < 2; part++) {
        size_t m = part ? nq : n;
        for (size_t i = 0; i < m; i++) {
            const float *c = centers + (size_t)(urand() * CENTERS) * dim;
            for (uint32_t j = 0; j < dim; j++)
                v[i * dim + j] = c[j] + (float)(0.25 * gauss());
        }
        snprintf(path, sizeof path, "%s/%s", out, part ? "query.fvecs" : "base.fvecs");
        write_fvecs(path, v, m, dim);
    }
    printf("{\"measure\":\"gen\",\"n\":%zu,\"nq\":%zu,\"dim\":%u}\n", n, nq, dim);
    free(centers);
    free(v);
    return 0;
}

/* ------------------------------------------------------------ in-process */

static ndl_db *lib_open(const char *dir)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    ndl_error e;
    if (ndl_fsync_parse(arg("fsync", "none"), &o.fsync, &e) != NDL_OK)
        die("fsync", e.msg);
    ndl_db *db;
    if (ndl_db_open(dir, &o, &db, &e) != NDL_OK)
        die(dir, e.msg);
    return db;
}

typedef struct lib_ingest {
    ndl_collection *c;
    const float *v;
    size_t n, batch;
    uint32_t dim, index_threads;
    _Atomic size_t next;
} lib_ingest;

static void *lib_ingest_run(void *arg)
{
    lib_ingest *L = arg;
    ndl_id *ids = malloc(L->batch * sizeof *ids);
    ndl_write_options o;
    ndl_write_options_init(&o);
    o.threads = L->index_threads;
    for (;;) {
        size_t b = atomic_fetch_add(&L->next, 1), start = b * L->batch;
        if (start >= L->n)
            break;
        size_t m = L->n - start < L->batch ? L->n - start : L->batch;
        for (size_t i = 0; i < m; i++)
            ids[i] = ndl_id_u64(start + i);
        ndl_error e;
        if (ndl_collection_upsert_points(L->c, m, ids, L->v + start * L->dim, NULL, &o, &e) != NDL_OK)
            die("upsert", e.msg);
    }
    free(ids);
    return NULL;
}

static int mode_lib_ingest(void)
{
    lib_ingest L = {.batch = (size_t)argi("batch", 1000),
                    .index_threads = (uint32_t)argi("index_threads", 1)};
    int callers = (int)argi("callers", 2);
    float *v = bench_read_vecs(need("base"), &L.n, &L.dim);
    L.v = v;
    ndl_db *db = lib_open(need("dir"));
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = L.dim;
    ndl_error e;
    if (ndl_metric_parse(arg("metric", "l2"), &cfg.metric, &e) != NDL_OK)
        die("metric", e.msg);
    if (ndl_collection_create(db, need("name"), &cfg, &L.c, &e) != NDL_OK)
        die("create", e.msg);
    pthread_t th[64];
    if (callers < 1 || callers > 64)
        die("callers", "1..64");
    cpu_snap a, b;
    cpu_take(&a, 0);
    double t0 = bench_now();
    for (int i = 0; i < callers; i++)
        pthread_create(&th[i], NULL, lib_ingest_run, &L);
    for (int i = 0; i < callers; i++)
        pthread_join(th[i], NULL);
    double secs = bench_now() - t0;
    cpu_take(&b, 0);
    printf("{\"measure\":\"ingest_lib\",\"n\":%zu,\"dim\":%u,\"batch\":%zu,\"callers\":%d,"
           "\"index_threads\":%u,\"fsync\":\"%s\",\"seconds\":%.2f,\"vectors_per_s\":%.0f",
           L.n, L.dim, L.batch, callers, L.index_threads, arg("fsync", "none"), secs,
           (double)L.n / secs);
    print_cpu(&a, &b, secs, 0);
    printf("}\n");
    fflush(stdout);
    ndl_collection_close(L.c, NULL);
    ndl_db_close(db, NULL);
    free(v);
    return 0;
}

typedef struct lib_search {
    ndl_collection *c;
    const float *q;
    size_t nq;
    uint32_t dim;
    ndl_search_params p;
    int threads;
    buf *bodies; /* json=1: each query's HTTP search body, parsed before each search */
    double t_warm, t_end;
    _Atomic uint64_t done;
} lib_search;

static void search_body(buf *b, const float *q, uint32_t dim, long k, long ef);

typedef struct lib_worker {
    lib_search *L;
    int id;
    double *lat;
    size_t nlat, cap;
} lib_worker;

static void *lib_search_run(void *arg)
{
    lib_worker *w = arg;
    lib_search *L = w->L;
    uint64_t done = 0;
    float *vec = malloc(L->dim * sizeof *vec);
    for (size_t i = (size_t)w->id;; i += (size_t)L->threads) {
        const float *q = L->q + (i % L->nq) * L->dim;
        if (L->bodies) { /* as the server did: parse, then search the parsed vector */
            json_error_t je;
            const buf *b = &L->bodies[i % L->nq];
            json_t *v = json_loadb(b->p, b->len, JSON_REJECT_DUPLICATES, &je);
            json_t *a = json_object_get(v, "vector");
            for (size_t j = 0; j < L->dim; j++)
                vec[j] = (float)json_number_value(json_array_get(a, j));
            json_decref(v);
            q = vec;
        }
        ndl_results *r;
        ndl_error e;
        double t = bench_now();
        if (ndl_collection_search(L->c, q, &L->p, &r, &e) != NDL_OK)
            die("search", e.msg);
        ndl_results_free(r);
        double t1 = bench_now();
        if (t1 >= L->t_end)
            break;
        if (t1 >= L->t_warm) {
            done++;
            push(&w->lat, &w->nlat, &w->cap, t1 - t);
        }
    }
    free(vec);
    atomic_fetch_add(&L->done, done);
    return NULL;
}

static int mode_lib_search(void)
{
    lib_search L = {.threads = (int)argi("threads", 2)};
    float *q = bench_read_vecs(need("queries"), &L.nq, &L.dim);
    L.q = q;
    ndl_search_params_init(&L.p);
    L.p.k = (uint32_t)argi("k", 10);
    L.p.ef = (uint32_t)argi("ef", 64);
    L.p.with_payload = 0;
    if (argi("json", 0)) {
        L.bodies = calloc(L.nq, sizeof *L.bodies);
        for (size_t i = 0; i < L.nq; i++)
            search_body(&L.bodies[i], q + i * L.dim, L.dim, L.p.k, L.p.ef);
    }
    ndl_db *db = lib_open(need("dir"));
    ndl_error e;
    if (ndl_collection_open(db, need("name"), &L.c, &e) != NDL_OK)
        die("open", e.msg);
    double secs = argf("seconds", 10), warm = argf("warmup", 2);
    L.t_warm = bench_now() + warm;
    L.t_end = L.t_warm + secs;
    pthread_t th[64];
    lib_worker w[64];
    if (L.threads < 1 || L.threads > 64)
        die("threads", "1..64");
    for (int i = 0; i < L.threads; i++) {
        w[i] = (lib_worker){.L = &L, .id = i};
        pthread_create(&th[i], NULL, lib_search_run, &w[i]);
    }
    cpu_snap a, b;
    sleep_until(L.t_warm);
    cpu_take(&a, 0);
    sleep_until(L.t_end);
    cpu_take(&b, 0);
    size_t nlat = 0;
    for (int i = 0; i < L.threads; i++) {
        pthread_join(th[i], NULL);
        nlat += w[i].nlat;
    }
    double *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
    for (int i = 0, at = 0; i < L.threads; i++) {
        if (w[i].nlat) /* memcpy from NULL is undefined even for 0 bytes */
            memcpy(lat + at, w[i].lat, w[i].nlat * sizeof *lat);
        at += (int)w[i].nlat;
        free(w[i].lat);
    }
    qsort(lat, nlat, sizeof *lat, bench_cmp_double);
    uint64_t done = atomic_load(&L.done);
    printf("{\"measure\":\"search_lib\",\"label\":\"%s\",\"json\":%d,\"threads\":%d,\"k\":%u,\"ef\":%u,"
           "\"seconds\":%.1f,\"requests\":%llu,\"qps\":%.0f,\"cpu_us_per_query\":%.1f",
           arg("label", ""), L.bodies != NULL, L.threads, L.p.k, L.p.ef, secs, (unsigned long long)done,
           (double)done / secs, done ? (b.self - a.self) / (double)done * 1e6 : 0.0);
    printf(",\"p50_ms\":%.3f,\"p99_ms\":%.3f", bench_pct(lat, nlat, 0.5) * 1e3, bench_pct(lat, nlat, 0.99) * 1e3);
    free(lat);
    print_cpu(&a, &b, secs, 0);
    for (size_t i = 0; L.bodies && i < L.nq; i++)
        free(L.bodies[i].p);
    free(L.bodies);
    printf("}\n");
    fflush(stdout);
    ndl_collection_close(L.c, NULL);
    ndl_db_close(db, NULL);
    free(q);
    return 0;
}

/* The search body both HTTP modes send, for query i. */
static void search_body(buf *b, const float *q, uint32_t dim, long k, long ef)
{
    buf_printf(b, "{\"vector\":");
    buf_vector(b, q, dim);
    buf_printf(b, ",\"k\":%ld,\"ef\":%ld,\"with_payload\":false}", k, ef);
}

/* What the server did to a search body before fdcc172: a jansson parse of
 * all of it, then the vector into floats (src/server/body.c parse_vector). */
static int mode_lib_json(void)
{
    size_t nq;
    uint32_t dim;
    float *q = bench_read_vecs(need("queries"), &nq, &dim);
    buf *bodies = calloc(nq, sizeof *bodies);
    float *out = malloc(dim * sizeof *out);
    for (size_t i = 0; i < nq; i++)
        search_body(&bodies[i], q + i * dim, dim, argi("k", 10), argi("ef", 64));
    double secs = argf("seconds", 2), t0 = bench_now(), t;
    uint64_t done = 0;
    double sum = 0;
    do {
        for (size_t i = 0; i < nq; i++) {
            json_error_t e;
            json_t *v = json_loadb(bodies[i].p, bodies[i].len, JSON_REJECT_DUPLICATES, &e);
            json_t *vec = json_object_get(v, "vector");
            for (size_t j = 0; j < json_array_size(vec); j++)
                out[j] = (float)json_number_value(json_array_get(vec, j));
            sum += out[0];
            json_decref(v);
        }
        done += nq;
        t = bench_now();
    } while (t - t0 < secs);
    printf("{\"measure\":\"json_parse_lib\",\"dim\":%u,\"body_bytes\":%zu,\"us_per_body\":%.1f,"
           "\"check\":%d}\n",
           dim, bodies[0].len, (t - t0) / (double)done * 1e6, sum != 0);
    for (size_t i = 0; i < nq; i++)
        free(bodies[i].p);
    free(bodies);
    free(out);
    free(q);
    return 0;
}

/* ------------------------------------------------------------ HTTP load */

typedef struct req {
    char *p;
    size_t len;
} req;

typedef struct conn {
    int fd;
    int busy;          /* a request is out, its answer not all in */
    int want_out;      /* EPOLLOUT registered */
    const req *rq;
    size_t sent;
    double t_ref;      /* closed loop: when sent; open loop: when scheduled */
    double next_due;   /* open loop: the next scheduled send */
    char *in;
    size_t in_len, in_cap, need; /* need: header + body bytes, 0 until the header is in */
    int status, close_after;
} conn;

typedef struct load {
    struct sockaddr_in addr;
    req *reqs;
    size_t nreq;
    int once;             /* each request once (ingest), else cycle through them */
    _Atomic size_t next;
    int conns, threads;
    double rate;          /* open loop: requests/s over all connections; 0: closed */
    double t0, t_warm, t_end;
    int expect;
    conn *c;
} load;

typedef struct worker {
    load *L;
    int first, n;         /* its connections: L->c[first .. first+n) */
    double *lat;
    size_t nlat, cap;
    double *took;         /* the server's own "took_ms" of each answer that has one */
    size_t ntook, took_cap;
    uint64_t done, errors, bad_status, reconnects;
    int last_status;
    double last_done;
} worker;

static int tcp_connect(const struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket", strerror(errno));
    int one = 1;
    /* requests go out whole; Nagle would only hold up the body's tail */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)a, sizeof *a) != 0)
        die("connect", strerror(errno));
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        die("fcntl", strerror(errno));
    return fd;
}

/* Latency of one answer, and the handler's own time when the body says it
 * (search answers end in "took_ms":x): the difference is HTTP's share. */
static void lat_add(worker *w, const conn *c, double x)
{
    push(&w->lat, &w->nlat, &w->cap, x);
    const char *t = c->need > 40 ? memmem(c->in + c->need - 40, 40, "\"took_ms\":", 10) : NULL;
    if (t)
        push(&w->took, &w->ntook, &w->took_cap, atof(t + 10) * 1e-3);
}

static void set_out(int ep, conn *c, int idx, int want)
{
    if (c->want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u32 = (uint32_t)idx};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

/* Send what is left of c's request; 0 ok (maybe partly), -1 broken. */
static int send_more(int ep, conn *c, int idx)
{
    while (c->sent < c->rq->len) {
        ssize_t n = send(c->fd, c->rq->p + c->sent, c->rq->len - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_out(ep, c, idx, 1);
                return 0;
            }
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->sent += (size_t)n;
    }
    set_out(ep, c, idx, 0);
    return 0;
}

/* The next request, or NULL when an ingest has sent them all. */
static const req *next_req(load *L)
{
    size_t i = atomic_fetch_add(&L->next, 1);
    if (L->once)
        return i < L->nreq ? &L->reqs[i] : NULL;
    return &L->reqs[i % L->nreq];
}

static int start(int ep, conn *c, int idx, const req *rq, double t_ref)
{
    c->rq = rq;
    c->sent = 0;
    c->busy = 1;
    c->t_ref = t_ref;
    c->in_len = c->need = 0;
    return send_more(ep, c, idx);
}

static void reconnect(load *L, worker *w, int ep, conn *c, int idx)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = tcp_connect(&L->addr);
    c->want_out = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)idx};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    w->reconnects++;
}

/* start(), and on a broken connection (the server closed an idle one)
 * once more on a fresh one. */
static void go(load *L, worker *w, int ep, conn *c, int idx, const req *rq, double t_ref)
{
    if (start(ep, c, idx, rq, t_ref) == 0)
        return;
    w->errors++;
    reconnect(L, w, ep, c, idx);
    if (start(ep, c, idx, rq, t_ref) != 0)
        die("send", strerror(errno));
}

/* Parse the header once it is all in: status, Content-Length, Connection. */
static int parse_head(conn *c)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->in) + 4;
    if (c->in_len < 12 || strncmp(c->in, "HTTP/1.", 7) != 0)
        return -1;
    c->status = atoi(c->in + 9);
    long clen = -1;
    c->close_after = 0;
    for (char *line = strchr(c->in, '\n') + 1; line < end;) {
        char *eol = strchr(line, '\n');
        *eol = '\0'; /* one line at a time for the searches below; put back after */
        if (strncasecmp(line, "content-length:", 15) == 0)
            clen = atol(line + 15);
        else if (strncasecmp(line, "connection:", 11) == 0 && strcasestr(line, "close"))
            c->close_after = 1;
        *eol = '\n';
        line = eol + 1;
    }
    if (clen < 0) /* every needle answer has a length; chunked is not expected */
        return -1;
    c->need = head + (size_t)clen;
    return 0;
}

/* Read what is there; 1 when the answer is complete, 0 not yet, -1 broken. */
static int recv_more(conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            c->in_cap = c->in_cap ? 2 * c->in_cap : 65536;
            c->in = realloc(c->in, c->in_cap + 1);
            if (!c->in)
                die("memory", "out of memory");
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n == 0)
            return -1;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->in_len += (size_t)n;
        c->in[c->in_len] = '\0';
    }
    if (!c->need && parse_head(c) != 0)
        return -1;
    if (!c->need || c->in_len < c->need)
        return 0;
    return c->in_len == c->need ? 1 : -1; /* more than one answer: not HTTP as we speak it */
}

static struct timespec ts_from(double d)
{
    if (d < 0)
        d = 0;
    return (struct timespec){(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
}

static void *worker_run(void *arg)
{
    worker *w = arg;
    load *L = w->L;
    int ep = epoll_create1(0);
    for (int i = w->first; i < w->first + w->n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, L->c[i].fd, &ev);
    }
    double gap = L->rate > 0 ? (double)L->conns / L->rate : 0; /* per connection */
    sleep_until(L->t0);
    for (int i = w->first; i < w->first + w->n; i++) {
        conn *c = &L->c[i];
        if (L->rate > 0) {
            c->next_due = L->t0 + (double)i / L->rate; /* request j goes to connection j % conns */
        } else {
            const req *rq = next_req(L);
            if (rq)
                go(L, w, ep, c, i, rq, bench_now());
        }
    }
    struct epoll_event evs[64];
    for (;;) {
        double t = bench_now();
        int stopping = !L->once && t >= L->t_end;
        int busy = 0;
        double wake = stopping ? t + 0.1 : L->once ? t + 1 : L->t_end;
        for (int i = w->first; i < w->first + w->n; i++) {
            conn *c = &L->c[i];
            if (L->rate > 0 && !c->busy && c->next_due < L->t_end) {
                if (c->next_due <= t) {
                    go(L, w, ep, c, i, next_req(L), c->next_due);
                    c->next_due += gap;
                } else if (c->next_due < wake) {
                    wake = c->next_due;
                }
            }
            busy += c->busy;
        }
        /* an ingest ends when all is answered; a timed run after its answers
         * are in (an open loop's late ones count), within 5 s */
        if (!busy && (stopping || (L->once && atomic_load(&L->next) >= L->nreq)))
            break;
        if (stopping && t > L->t_end + 5)
            break;
        struct timespec ts = ts_from(wake - t);
        int n = epoll_pwait2(ep, evs, 64, &ts, NULL);
        if (n < 0 && errno != EINTR)
            die("epoll", strerror(errno));
        for (int e = 0; e < n; e++) {
            int i = (int)evs[e].data.u32;
            conn *c = &L->c[i];
            if ((evs[e].events & EPOLLOUT) && c->busy && send_more(ep, c, i) != 0) {
                w->errors++;
                reconnect(L, w, ep, c, i);
                go(L, w, ep, c, i, c->rq, c->t_ref); /* again, from the same reference time */
                continue;
            }
            if (!(evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                continue;
            int r = c->busy ? recv_more(c) : -1;
            double tc = bench_now();
            if (r == 0)
                continue;
            if (r < 0 || c->sent < c->rq->len) { /* closed, garbled, or answered early */
                w->errors++;
                reconnect(L, w, ep, c, i);
                if (c->busy && !stopping)
                    go(L, w, ep, c, i, c->rq, c->t_ref);
                else
                    c->busy = 0;
                continue;
            }
            c->busy = 0;
            w->last_status = c->status;
            if (c->status != L->expect)
                w->bad_status++;
            if (L->once) {
                w->done++;
                lat_add(w, c, tc - c->t_ref);
                w->last_done = tc;
            } else if (L->rate > 0 ? (c->t_ref >= L->t_warm && c->t_ref < L->t_end)
                                   : (tc >= L->t_warm && tc < L->t_end)) {
                w->done++;
                lat_add(w, c, tc - c->t_ref);
            }
            if (c->close_after)
                reconnect(L, w, ep, c, i);
            if (L->rate == 0 && (L->once || tc < L->t_end)) {
                const req *rq = next_req(L);
                if (rq)
                    go(L, w, ep, c, i, rq, tc);
            }
        }
    }
    close(ep);
    return NULL;
}

static void parse_url(const char *url, struct sockaddr_in *a, char *hostport, size_t cap)
{
    if (strncmp(url, "http://", 7) == 0)
        url += 7;
    snprintf(hostport, cap, "%s", url);
    char *slash = strchr(hostport, '/');
    if (slash)
        *slash = '\0';
    char host[256];
    snprintf(host, sizeof host, "%s", hostport);
    char *colon = strrchr(host, ':');
    if (!colon)
        die("url", "expected http://HOST:PORT");
    *colon = '\0';
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        die("url", "the host must be a numeric IPv4 address");
}

static void add_req(req **reqs, size_t *n, const char *method, const char *hostport,
                    const char *path, const char *ctype, const buf *body)
{
    buf b = {0};
    buf_printf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, hostport);
    if (body)
        buf_printf(&b, "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n%s", ctype, body->len,
                   body->p);
    else
        buf_printf(&b, "\r\n");
    *reqs = realloc(*reqs, (*n + 1) * sizeof **reqs);
    if (!*reqs)
        die("memory", "out of memory");
    (*reqs)[(*n)++] = (req){b.p, b.len};
}

/* One request on a fresh connection, blocking; the status. */
static int http_once(const struct sockaddr_in *a, const req *rq)
{
    conn c = {.fd = tcp_connect(a), .rq = rq};
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    int r = start(ep, &c, 0, rq, bench_now());
    while (r == 0) {
        struct epoll_event got;
        if (epoll_wait(ep, &got, 1, 30000) <= 0)
            die("http", "no answer in 30 s");
        if ((got.events & EPOLLOUT) && send_more(ep, &c, 0) != 0)
            die("http", "send failed");
        if (got.events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            r = recv_more(&c);
    }
    if (r < 0)
        die("http", "connection broken");
    if (c.status >= 300)
        fprintf(stderr, "http_bench: %d: %.*s\n", c.status, (int)c.in_len, c.in);
    close(ep);
    close(c.fd);
    free(c.in);
    return c.status;
}

/* Run the load in L with L->conns connections on `threads` threads and print
 * the JSON line's measured part. */
static double run_load(load *L, const char *measure, long pid, double warm, double secs)
{
    L->c = calloc((size_t)L->conns, sizeof *L->c);
    double gap = argf("connect_gap_ms", 0) * 1e-3;
    for (int i = 0; i < L->conns; i++) {
        if (i && gap > 0) /* a burst of connects can land on one server thread */
            sleep_until(bench_now() + gap);
        L->c[i].fd = tcp_connect(&L->addr);
    }
    int nt = L->threads < L->conns ? L->threads : L->conns;
    worker *w = calloc((size_t)nt, sizeof *w);
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    L->t0 = bench_now() + 0.05;
    L->t_warm = L->once ? L->t0 : L->t0 + warm;
    L->t_end = L->t_warm + secs;
    for (int i = 0, first = 0; i < nt; i++) {
        int n = L->conns / nt + (i < L->conns % nt);
        w[i] = (worker){.L = L, .first = first, .n = n};
        first += n;
        pthread_create(&th[i], NULL, worker_run, &w[i]);
    }
    cpu_snap a, b;
    if (!L->once) {
        sleep_until(L->t_warm);
        cpu_take(&a, pid);
        sleep_until(L->t_end);
        cpu_take(&b, pid);
    } else {
        cpu_take(&a, pid);
    }
    for (int i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    double end = 0;
    if (L->once) {
        cpu_take(&b, pid);
        for (int i = 0; i < nt; i++)
            end = w[i].last_done > end ? w[i].last_done : end;
        secs = end - L->t0;
    }
    uint64_t done = 0, errors = 0, bad = 0, reconn = 0;
    size_t nlat = 0;
    int last_status = 0;
    for (int i = 0; i < nt; i++) {
        done += w[i].done;
        errors += w[i].errors;
        bad += w[i].bad_status;
        reconn += w[i].reconnects;
        nlat += w[i].nlat;
        if (w[i].last_status)
            last_status = w[i].last_status;
    }
    double *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
    for (int i = 0, at = 0; i < nt; i++) {
        if (w[i].nlat) /* memcpy from NULL is undefined even for 0 bytes */
            memcpy(lat + at, w[i].lat, w[i].nlat * sizeof *lat);
        at += (int)w[i].nlat;
        free(w[i].lat);
    }
    qsort(lat, nlat, sizeof *lat, bench_cmp_double);
    size_t ntook = 0;
    for (int i = 0; i < nt; i++)
        ntook += w[i].ntook;
    double *took = malloc((ntook ? ntook : 1) * sizeof *took), took_sum = 0;
    for (int i = 0, at = 0; i < nt; i++) {
        if (w[i].ntook)
            memcpy(took + at, w[i].took, w[i].ntook * sizeof *took);
        at += (int)w[i].ntook;
        free(w[i].took);
    }
    for (size_t i = 0; i < ntook; i++)
        took_sum += took[i];
    qsort(took, ntook, sizeof *took, bench_cmp_double);
    printf("{\"measure\":\"%s\",\"conns\":%d,\"client_threads\":%d", measure, L->conns, nt);
    if (!L->once)
        printf(",\"rate\":%.0f", L->rate);
    printf(",\"seconds\":%.2f,\"requests\":%llu,\"qps\":%.0f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"errors\":%llu,"
           "\"unexpected_status\":%llu,\"last_status\":%d,\"reconnects\":%llu",
           secs, (unsigned long long)done, (double)done / secs, bench_pct(lat, nlat, 0.5) * 1e3,
           bench_pct(lat, nlat, 0.9) * 1e3, bench_pct(lat, nlat, 0.99) * 1e3, bench_pct(lat, nlat, 0.999) * 1e3,
           nlat ? lat[nlat - 1] * 1e3 : 0.0, (unsigned long long)errors,
           (unsigned long long)bad, last_status, (unsigned long long)reconn);
    if (ntook)
        printf(",\"took_ms_p50\":%.3f,\"took_ms_mean\":%.3f", bench_pct(took, ntook, 0.5) * 1e3,
               took_sum / (double)ntook * 1e3);
    free(took);
    if (pid > 0 && done)
        printf(",\"server_cpu_us_per_request\":%.1f", (b.server - a.server) / (double)done * 1e6);
    if (done)
        printf(",\"client_cpu_us_per_request\":%.1f", (b.self - a.self) / (double)done * 1e6);
    print_cpu(&a, &b, secs, pid);
    free(lat);
    for (int i = 0; i < L->conns; i++) {
        close(L->c[i].fd);
        free(L->c[i].in);
    }
    free(L->c);
    free(w);
    free(th);
    return secs;
}

static void load_init(load *L, char *hostport, size_t cap)
{
    memset(L, 0, sizeof *L);
    parse_url(need("url"), &L->addr, hostport, cap);
    L->conns = (int)argi("conns", 16);
    L->threads = (int)argi("threads", 1);
    L->rate = argf("rate", 0);
    L->expect = (int)argi("expect", 200);
    if (L->conns < 1 || L->threads < 1)
        die("conns/threads", "must be at least 1");
}

static int mode_http_search(int get)
{
    load L;
    char hostport[300], path[400];
    load_init(&L, hostport, sizeof hostport);
    long pid = argi("pid", 0);
    if (get) {
        add_req(&L.reqs, &L.nreq, "GET", hostport, arg("path", "/v1/health"), NULL, NULL);
    } else {
        size_t nq;
        uint32_t dim;
        float *q = bench_read_vecs(need("queries"), &nq, &dim);
        snprintf(path, sizeof path, "/v1/collections/%s/search", need("name"));
        for (size_t i = 0; i < nq; i++) {
            buf b = {0};
            search_body(&b, q + i * dim, dim, argi("k", 10), argi("ef", 64));
            add_req(&L.reqs, &L.nreq, "POST", hostport, path, "application/json", &b);
            free(b.p);
        }
        free(q);
    }
    run_load(&L, get ? "get_http" : "search_http", pid, argf("warmup", 2), argf("seconds", 10));
    printf(",\"label\":\"%s\"", arg("label", ""));
    if (get)
        printf(",\"path\":\"%s\"}\n", arg("path", "/v1/health"));
    else
        printf(",\"k\":%ld,\"ef\":%ld,\"request_bytes\":%zu}\n", argi("k", 10), argi("ef", 64),
               L.reqs[0].len);
    fflush(stdout);
    for (size_t i = 0; i < L.nreq; i++)
        free(L.reqs[i].p);
    free(L.reqs);
    return 0;
}

static int mode_http_ingest(void)
{
    load L;
    char hostport[300], path[400];
    load_init(&L, hostport, sizeof hostport);
    L.conns = (int)argi("conns", 4);
    L.once = 1;
    long pid = argi("pid", 0);
    size_t n, batch = (size_t)argi("batch", 1000);
    uint32_t dim;
    float *v = bench_read_vecs(need("base"), &n, &dim);
    const char *name = need("name");
    /* the collection as lib-ingest makes it (the library's default seed) */
    buf cfg = {0};
    buf_printf(&cfg,
               "{\"dimension\":%u,\"metric\":\"%s\",\"index\":{\"type\":\"hnsw\",\"m\":16,"
               "\"ef_construction\":200,\"seed\":100}}",
               dim, arg("metric", "l2"));
    snprintf(path, sizeof path, "/v1/collections/%s", name);
    req *put = NULL;
    size_t nput = 0;
    add_req(&put, &nput, "PUT", hostport, path, "application/json", &cfg);
    int st = http_once(&L.addr, put);
    if (st != 200 && st != 201)
        die("create", "the PUT failed");
    free(put[0].p);
    free(put);
    free(cfg.p);
    /* every body is made before the clock starts: the client's JSON
     * formatting is not the server's ingest rate */
    snprintf(path, sizeof path, "/v1/collections/%s/points", name);
    size_t bytes = 0;
    for (size_t start = 0; start < n; start += batch) {
        buf b = {0};
        for (size_t i = start; i < n && i < start + batch; i++) {
            buf_printf(&b, "{\"id\":%zu,\"vector\":", i);
            buf_vector(&b, v + i * dim, dim);
            buf_printf(&b, "}\n");
        }
        add_req(&L.reqs, &L.nreq, "POST", hostport, path, "application/x-ndjson", &b);
        bytes += b.len;
        free(b.p);
    }
    free(v);
    double secs = run_load(&L, "ingest_http", pid, 0, 0);
    printf(",\"n\":%zu,\"dim\":%u,\"batch\":%zu,\"body_mb\":%.1f,\"vectors_per_s\":%.0f}\n", n,
           dim, batch, (double)bytes / 1e6, (double)n / secs);
    fflush(stdout);
    for (size_t i = 0; i < L.nreq; i++)
        free(L.reqs[i].p);
    free(L.reqs);
    return 0;
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    if (argc < 2) {
        fprintf(stderr, "usage: http_bench gen|lib-ingest|lib-search|lib-json|http-ingest|"
                        "http-search|http-get key=value... (see the header of bench/http_bench.c)\n");
        return 2;
    }
    const char *m = argv[1];
    if (!strcmp(m, "gen"))
        return mode_gen();
    if (!strcmp(m, "lib-ingest"))
        return mode_lib_ingest();
    if (!strcmp(m, "lib-search"))
        return mode_lib_search();
    if (!strcmp(m, "lib-json"))
        return mode_lib_json();
    if (!strcmp(m, "http-ingest"))
        return mode_http_ingest();
    if (!strcmp(m, "http-search"))
        return mode_http_search(0);
    if (!strcmp(m, "http-get"))
        return mode_http_search(1);
    fprintf(stderr, "http_bench: unknown mode '%s'\n", m);
    return 2;
}
