/*
 * compact_bench.c -- what a compaction costs and does to recall.
 * Builds an HNSW collection of N random 128-d vectors (m=16,
 * ef_construction=64, 2 threads), deletes every 4th point, then prints the
 * build, delete and compaction (including its checkpoint) times and
 * recall@10 at ef 128 against exact search (200 queries) before and after.
 * With "fields": every point has a payload {"tag": keyword of 100,
 * "n": int, "title": two words of 50} and the three fields are indexed;
 * a writer thread upserts one new point at a time during the compaction,
 * and the longest of those upserts is printed (how long writes wait for
 * the compaction's locked steps, the payload indexes' included).
 * usage: compact_bench [N=50000] [fields]   (DIR /var/tmp/compact-bench-db)
 * build and run: bench/compact_bench.sh [N] [fields]
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include "needle.h"

#define DIR "/var/tmp/compact-bench-db"
#define DIM 128

static void check(ndl_status rc, const ndl_error *e, const char *what)
{
    if (rc != NDL_OK) {
        fprintf(stderr, "compact_bench: %s: %s\n", what, e->msg);
        exit(1);
    }
}

/* recall@10 at ef 128 against exact search, over 200 base vectors as queries */
static void recall(ndl_collection *c, const float *v, uint32_t n, const char *when)
{
    srand(7);
    ndl_search_params p, x;
    ndl_search_params_init(&p);
    p.k = 10;
    p.ef = 128;
    x = p;
    x.exact = 1;
    double hit = 0, total = 0;
    ndl_error e;
    for (int q = 0; q < 200; q++) {
        const float *qv = v + (size_t)((uint32_t)rand() % n) * DIM;
        ndl_results *a, *b;
        check(ndl_collection_search(c, qv, &p, &a, &e), &e, "search");
        check(ndl_collection_search(c, qv, &x, &b, &e), &e, "exact search");
        for (size_t i = 0; i < ndl_results_count(b, 0); i++, total++)
            for (size_t j = 0; j < ndl_results_count(a, 0); j++)
                if (ndl_results_hits(a, 0)[j].distance == ndl_results_hits(b, 0)[i].distance) {
                    hit++;
                    break;
                }
        ndl_results_free(a);
        ndl_results_free(b);
    }
    printf("recall@10 ef128 %s %.3f\n", when, total ? hit / total : 0);
}

/* One new point at a time until told to stop; the longest upsert. */
typedef struct writer {
    ndl_collection *c;
    uint32_t next_id;
    bool fields;
    atomic_bool stop;
    double worst_s;
    uint32_t writes;
} writer;

static void payload_of(uint32_t i, char *buf, size_t size)
{
    snprintf(buf, size, "{\"tag\":\"t%u\",\"n\":%u,\"title\":\"w%u x%u\"}", i % 100, i,
             i % 50, i % 7);
}

static void *write_loop(void *arg)
{
    writer *w = arg;
    float v[DIM];
    char text[128];
    uint64_t rng = 0x9e3779b97f4a7c15u; /* its own: rand() is the main thread's */
    const char *p[1] = {text};
    while (!atomic_load(&w->stop)) {
        for (int j = 0; j < DIM; j++)
            v[j] = (float)(bench_xorshift(&rng) >> 40) / (float)(1u << 24);
        payload_of(w->next_id, text, sizeof text);
        ndl_id id = ndl_id_u64(w->next_id++);
        ndl_error e;
        double t0 = bench_now();
        check(ndl_collection_upsert_points(w->c, 1, &id, v, w->fields ? p : NULL, NULL, &e), &e,
              "upsert during compaction");
        double dt = bench_now() - t0;
        w->worst_s = dt > w->worst_s ? dt : w->worst_s;
        w->writes++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)atoi(argv[1]) : 50000;
    bool fields = argc > 2 && strcmp(argv[2], "fields") == 0;
    if (n < 4 || (argc > 2 && !fields)) {
        fprintf(stderr, "usage: compact_bench [N >= 4] [fields]\n");
        return 2;
    }
    if (system("rm -rf " DIR) != 0)
        return 1;
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.fsync = NDL_FSYNC_NONE;
    o.checkpoint_interval_ms = 0;
    o.checkpoint_wal_bytes = 0;
    ndl_db *db;
    ndl_error e;
    check(ndl_db_open(DIR, &o, &db, &e), &e, "open");
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = DIM;
    cfg.hnsw_ef_construction = 64;
    ndl_collection *c;
    check(ndl_collection_create(db, "c", &cfg, &c, &e), &e, "create");
    float *v = malloc((size_t)n * DIM * sizeof *v);
    ndl_id *ids = malloc((size_t)n * sizeof *ids);
    if (!v || !ids)
        return 1;
    srand(1);
    for (size_t i = 0; i < (size_t)n * DIM; i++)
        v[i] = (float)rand() / (float)RAND_MAX;
    for (uint32_t i = 0; i < n; i++)
        ids[i] = ndl_id_u64(i);
    ndl_write_options w;
    ndl_write_options_init(&w);
    w.threads = 2;
    char **texts = malloc((size_t)n * sizeof *texts);
    if (!texts)
        return 1;
    for (uint32_t i = 0; i < n; i++) {
        char buf[128];
        payload_of(i, buf, sizeof buf);
        if (!(texts[i] = strdup(buf)))
            return 1;
    }
    if (fields) {
        check(ndl_collection_add_field(c, "tag", NDL_FIELD_KEYWORD, &e), &e, "field tag");
        check(ndl_collection_add_field(c, "n", NDL_FIELD_INT, &e), &e, "field n");
        check(ndl_collection_add_field(c, "title", NDL_FIELD_TEXT, &e), &e, "field title");
    }
    double t0 = bench_now();
    check(ndl_collection_upsert_points(c, n, ids, v, fields ? (const char *const *)texts : NULL,
                                       &w, &e),
          &e, "upsert");
    printf("build %.1f s\n", bench_now() - t0);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i += 4)
        ids[k++] = ndl_id_u64(i);
    t0 = bench_now();
    check(ndl_collection_delete(c, k, ids, NULL, &e), &e, "delete");
    printf("delete %u: %.2f s\n", k, bench_now() - t0);
    recall(c, v, n, "before compaction");
    writer wr = {.c = c, .next_id = n, .fields = fields};
    atomic_init(&wr.stop, false);
    pthread_t th;
    if (pthread_create(&th, NULL, write_loop, &wr) != 0)
        return 1;
    t0 = bench_now();
    check(ndl_collection_compact(c, &e), &e, "compact");
    printf("compact (+flush): %.2f s\n", bench_now() - t0);
    atomic_store(&wr.stop, true);
    pthread_join(th, NULL);
    printf("upserts during compaction: %u, longest %.1f ms\n", wr.writes, wr.worst_s * 1e3);
    recall(c, v, n, "after compaction");
    for (uint32_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(v);
    free(ids);
    check(ndl_db_close(db, &e), &e, "close");
    return 0;
}
