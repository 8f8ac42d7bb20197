/*
 * metrics.c -- Prometheus text exposition at GET /metrics: requests and
 * their latency by route and status, searches by plan, points and bytes per
 * collection, the log's fsync latency, process memory. Counters are relaxed
 * atomics in fixed tables (routes and statuses are few), so counting costs a
 * request nothing it would notice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server_internal.h"

static const unsigned statuses[] = {200, 201, 400, 401, 403, 404, 405, 408,
                                    409, 413, 500, 501, 503, 507};
#define NSTATUS (sizeof statuses / sizeof statuses[0])
static const double le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                            0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NLE (sizeof le / sizeof le[0])

static _Atomic uint64_t requests[ROUTE_N][NSTATUS + 1]; /* last: any other status */
static _Atomic uint64_t latency[ROUTE_N][NLE + 1];      /* per bucket, last: above */
static _Atomic uint64_t latency_ns[ROUTE_N];
static _Atomic uint64_t searches[2][2]; /* [exact][filtered] */

void metrics_request(int route, unsigned status, double seconds)
{
    size_t s = 0;
    while (s < NSTATUS && statuses[s] != status)
        s++;
    atomic_fetch_add_explicit(&requests[route][s], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < NLE && seconds > le[b])
        b++;
    atomic_fetch_add_explicit(&latency[route][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&latency_ns[route], (uint64_t)(seconds * 1e9), memory_order_relaxed);
}

void metrics_search(const char *plan, int filtered)
{
    atomic_fetch_add_explicit(&searches[strcmp(plan, "exact") == 0][filtered != 0], 1,
                              memory_order_relaxed);
}

/* Each collection's info, read once per scrape. */
typedef struct coll_infos {
    size_t n, cap;
    char (*name)[NDL_NAME_MAX + 1];
    ndl_collection_info *info;
} coll_infos;

static void collect(void *ctx, const char *name, ndl_collection *c)
{
    coll_infos *ci = ctx;
    if (ci->n == ci->cap) {
        size_t cap = ci->cap ? ci->cap * 2 : 16;
        void *nn = realloc(ci->name, cap * sizeof *ci->name);
        if (nn)
            ci->name = nn;
        void *ni = realloc(ci->info, cap * sizeof *ci->info);
        if (ni)
            ci->info = ni;
        if (!nn || !ni)
            return; /* out of memory: this collection goes unreported */
        ci->cap = cap;
    }
    if (ndl_collection_info_get(c, &ci->info[ci->n], NULL) == NDL_OK)
        snprintf(ci->name[ci->n++], sizeof ci->name[0], "%s", name);
}

static void head(sbuf *o, const char *name, const char *type, const char *help)
{
    sbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_requests(sbuf *o)
{
    head(o, "needle_http_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (int r = 0; r < ROUTE_N; r++)
        for (size_t s = 0; s <= NSTATUS; s++) {
            uint64_t n = atomic_load_explicit(&requests[r][s], memory_order_relaxed);
            if (!n)
                continue;
            if (s < NSTATUS)
                sbuf_printf(o, "needle_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                            route_names[r], statuses[s], (unsigned long long)n);
            else
                sbuf_printf(o, "needle_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                            route_names[r], (unsigned long long)n);
        }
    head(o, "needle_http_request_duration_seconds", "histogram",
         "Time from a request's headers to its answer, by route.");
    for (int r = 0; r < ROUTE_N; r++) {
        uint64_t run = 0;
        for (size_t b = 0; b < NLE; b++)
            run += atomic_load_explicit(&latency[r][b], memory_order_relaxed);
        uint64_t all = run + atomic_load_explicit(&latency[r][NLE], memory_order_relaxed);
        if (!all)
            continue;
        run = 0;
        for (size_t b = 0; b < NLE; b++) {
            run += atomic_load_explicit(&latency[r][b], memory_order_relaxed);
            sbuf_printf(o, "needle_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                        route_names[r], le[b], (unsigned long long)run);
        }
        sbuf_printf(o, "needle_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                    route_names[r], (unsigned long long)all);
        sbuf_printf(o, "needle_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
                    route_names[r],
                    (double)atomic_load_explicit(&latency_ns[r], memory_order_relaxed) * 1e-9);
        sbuf_printf(o, "needle_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                    route_names[r], (unsigned long long)all);
    }
}

static void render_fsync(sbuf *o)
{
    ndl_fsync_stats f;
    ndl_fsync_stats_get(&f);
    head(o, "needle_wal_fsync_duration_seconds", "histogram",
         "Duration of the write-ahead logs' fdatasync calls (group commits).");
    for (size_t b = 0; b < NDL_FSYNC_BUCKETS; b++)
        sbuf_printf(o, "needle_wal_fsync_duration_seconds_bucket{le=\"%g\"} %llu\n", f.le[b],
                    (unsigned long long)f.bucket[b]);
    sbuf_printf(o, "needle_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)f.count);
    sbuf_printf(o, "needle_wal_fsync_duration_seconds_sum %.6f\n", f.sum_seconds);
    sbuf_printf(o, "needle_wal_fsync_duration_seconds_count %llu\n", (unsigned long long)f.count);
}

static unsigned long long resident_bytes(void)
{
    unsigned long long size = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (unsigned long long)sysconf(_SC_PAGESIZE);
}

void metrics_render(srv *s, sbuf *o)
{
    render_requests(o);
    head(o, "needle_searches_total", "counter", "Searches run, by plan and whether a payload filter took part.");
    for (int exact = 0; exact < 2; exact++)
        for (int filtered = 0; filtered < 2; filtered++)
            sbuf_printf(o, "needle_searches_total{plan=\"%s\",filtered=\"%s\"} %llu\n",
                        exact ? "exact" : "hnsw", filtered ? "true" : "false",
                        (unsigned long long)atomic_load(&searches[exact][filtered]));
    static const char *const gauges[4][2] = {
        {"needle_collection_points", "Live points per collection."},
        {"needle_collection_deleted_points", "Deleted or replaced points not yet reclaimed."},
        {"needle_collection_memory_bytes", "Memory of each collection."},
        {"needle_collection_disk_bytes", "Bytes of each collection's files."}};
    coll_infos ci = {0};
    registry_each(s->reg, collect, &ci);
    for (int g = 0; g < 4; g++) { /* a family's lines stay together */
        head(o, gauges[g][0], "gauge", gauges[g][1]);
        for (size_t i = 0; i < ci.n; i++) {
            const ndl_collection_info *in = &ci.info[i];
            uint64_t v[4] = {in->count, in->deleted, in->memory_bytes, in->disk_bytes};
            sbuf_printf(o, "%s{collection=\"%s\"} %llu\n", gauges[g][0], ci.name[i],
                        (unsigned long long)v[g]);
        }
    }
    free(ci.name);
    free(ci.info);
    render_fsync(o);
    head(o, "needle_process_resident_memory_bytes", "gauge", "Resident memory of the server.");
    sbuf_printf(o, "needle_process_resident_memory_bytes %llu\n", resident_bytes());
}
