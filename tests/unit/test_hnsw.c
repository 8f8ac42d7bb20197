/*
 * test_hnsw.c -- the HNSW index (src/index/hnsw.c, hnsw_build.c, hnsw_io.c)
 * against a brute force over the same kernels: recall for every metric,
 * determinism by seed, multi-threaded builds, searches racing inserts and
 * deletes, deletion and re-insertion, filters of every selectivity, k > n,
 * save/load and damaged graph files, and out-of-memory paths.
 *
 * Recall is tie-aware: a hit counts when its distance is no worse than the
 * k-th best allowed distance of the brute force (hamming distances are
 * integers and tie constantly). Hit distances must equal the kernel's
 * distance exactly (same kernel, same operand order). Graph invariants are
 * checked through hnsw_internal.h.
 *
 * Two tests document known bugs and skip (loudly) while they reproduce:
 * test_hnsw_load_rejects_upper_link_to_lower_node (hnsw_io.c) and
 * test_hnsw_delete_all_then_insert (hnsw_build.c). Turn the skips into
 * failures once fixed. HNSW_TEST_FILTER=<glob> runs a subset.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "index/hnsw_internal.h"
#include "index/index.h"
#include "storage/sfile.h"
#include "util/alloc.h"

#define KIND_HNSW SFILE_KIND('H', 'N', 'S', 'W')

/* ---------------------------------------------------------------- random */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float frand(void) { return (float)(rng_next() >> 40) / (float)(1u << 24); } /* [0,1) */
static float srand1(void) { return frand() * 2.0f - 1.0f; }                       /* [-1,1) */
static float grand(void) /* roughly N(0,1) */
{
    return (frand() + frand() + frand() + frand() - 2.0f) * 1.7320508f;
}

/* ---------------------------------------------------------------- data */

/* nb base vectors and nq queries in the stored form of sp->metric. Clustered
 * data: points scattered around 24 centres (hamming: centre bits, each bit
 * flipped with probability 1/8); otherwise uniform. Cosine vectors are
 * normalized here, as the collection does before storing them. */
static void make_data(const index_space *sp, size_t nb, size_t nq, int clustered, uint64_t seed,
                      char **base, char **queries)
{
    rng_state = seed;
    const size_t ncent = 24;
    size_t vb = sp->vec_bytes;
    char *cent = malloc(ncent * vb);
    char *all = malloc((nb + nq) * vb);
    assert_true(cent && all);
    bool ham = sp->metric == NDL_METRIC_HAMMING;
    uint8_t tail = sp->dim % 8 ? (uint8_t)((1u << (sp->dim % 8)) - 1) : 0xff;
    for (size_t c = 0; c < ncent; c++) {
        if (ham) {
            uint8_t *b = (uint8_t *)(cent + c * vb);
            for (size_t i = 0; i < sp->n; i++)
                b[i] = (uint8_t)rng_next();
        } else {
            float *f = (float *)(cent + c * vb);
            for (uint32_t i = 0; i < sp->dim; i++)
                f[i] = srand1();
        }
    }
    for (size_t v = 0; v < nb + nq; v++) {
        char *out = all + v * vb;
        const char *c = cent + (rng_next() % ncent) * vb;
        if (ham) {
            uint8_t *b = (uint8_t *)out;
            for (size_t i = 0; i < sp->n; i++) {
                if (!clustered) {
                    b[i] = (uint8_t)rng_next();
                    continue;
                }
                uint8_t flip = 0;
                for (int bit = 0; bit < 8; bit++)
                    if ((rng_next() & 7) == 0)
                        flip |= (uint8_t)(1u << bit);
                b[i] = (uint8_t)(((const uint8_t *)c)[i] ^ flip);
            }
            b[sp->n - 1] &= tail;
        } else {
            float *f = (float *)out;
            double norm = 0;
            for (uint32_t i = 0; i < sp->dim; i++) {
                f[i] = clustered ? ((const float *)c)[i] + 0.25f * grand() : srand1();
                norm += (double)f[i] * f[i];
            }
            if (sp->metric == NDL_METRIC_COSINE)
                for (uint32_t i = 0; i < sp->dim; i++)
                    f[i] = (float)(f[i] / sqrt(norm));
        }
    }
    free(cent);
    *base = all;
    if (queries) {
        *queries = malloc(NDL_MAX(nq, 1) * vb);
        assert_non_null(*queries);
        memcpy(*queries, all + nb * vb, nq * vb);
    }
}

/* ---------------------------------------------------------------- fixture */

typedef struct hfx {
    index_space sp;
    vec_arena arena;
    vindex *ix;
    hnsw_params p;
} hfx;

static void hfx_init(hfx *f, ndl_metric metric, uint32_t dim, uint32_t m, uint32_t efc,
                     uint64_t seed)
{
    memset(f, 0, sizeof *f);
    index_space_init(&f->sp, metric, dim);
    assert_int_equal(arena_init(&f->arena, f->sp.vec_bytes, NULL), NDL_OK);
    f->p = (hnsw_params){.m = m, .ef_construction = efc, .seed = seed};
    assert_int_equal(hnsw_index_create(&f->sp, &f->arena, &f->p, &f->ix, NULL), NDL_OK);
    assert_non_null(f->ix);
}

static void hfx_destroy(hfx *f)
{
    if (f->ix)
        f->ix->m->destroy(f->ix);
    arena_destroy(&f->arena);
}

/* Write and publish one vector; returns its slot (not inserted). */
static uint32_t hfx_append(hfx *f, const void *vec)
{
    uint32_t slot;
    void *rec;
    assert_int_equal(arena_reserve(&f->arena, &slot, &rec, NULL), NDL_OK);
    memcpy(rec, vec, f->sp.vec_bytes);
    arena_publish(&f->arena, slot + 1);
    return slot;
}

static void hfx_append_all(hfx *f, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hfx_append(f, data + i * f->sp.vec_bytes);
}

static void hfx_insert_range(hfx *f, uint32_t from, uint32_t to)
{
    for (uint32_t s = from; s < to; s++) {
        ndl_error err = {0};
        ndl_status rc = f->ix->m->insert(f->ix, s, &err);
        if (rc != NDL_OK)
            fail_msg("insert of slot %u failed: %s", s, err.msg);
    }
}

/* Append and insert n vectors, one thread. */
static void hfx_build(hfx *f, const char *data, size_t n)
{
    uint32_t first = arena_count(&f->arena);
    hfx_append_all(f, data, n);
    hfx_insert_range(f, first, first + (uint32_t)n);
}

/* Checks go through the index's own space and arena, so an hfx copy that
 * borrows another fixture's arena (a loaded index) sees its current count. */
static float kdist(const hfx *f, const void *query, uint32_t slot)
{
    const index_space *sp = f->ix->space;
    return sp->dist(query, arena_rec(f->ix->arena, slot), sp->n);
}

/* ---------------------------------------------------------------- checks */

static int hit_cmp(const void *pa, const void *pb)
{
    const index_hit *a = pa, *b = pb;
    if (a->dist != b->dist)
        return a->dist < b->dist ? -1 : 1;
    return (a->slot > b->slot) - (a->slot < b->slot);
}

/* Validate hits of one search against a brute force over every allowed
 * published slot; returns the tie-aware recall. The count must be exactly
 * min(k, allowed). */
static double check_hits(const hfx *f, const void *query, const index_query *q,
                         const index_hit *hits, size_t nh)
{
    uint32_t n = arena_count(f->ix->arena);
    index_hit *ref = malloc((size_t)NDL_MAX(n, 1) * sizeof *ref);
    assert_non_null(ref);
    size_t nref = 0;
    for (uint32_t s = 0; s < n; s++)
        if (index_query_allows(q, s))
            ref[nref++] = (index_hit){.dist = kdist(f, query, s), .slot = s};
    size_t nexp = NDL_MIN((size_t)q->k, nref);
    if (nh != nexp)
        fail_msg("search returned %zu hits, expected min(k=%u, allowed=%zu) = %zu", nh, q->k,
                 nref, nexp);
    for (size_t i = 0; i < nh; i++) {
        uint32_t s = hits[i].slot;
        assert_true(s < n);
        if (!index_query_allows(q, s))
            fail_msg("hit %zu is slot %u, which the query does not allow", i, s);
        assert_true(hits[i].dist == kdist(f, query, s));
        if (i)
            assert_true(hits[i - 1].dist <= hits[i].dist);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(hits[j].slot, s);
    }
    double recall = 1.0;
    if (nexp) {
        qsort(ref, nref, sizeof *ref, hit_cmp);
        float kth = ref[nexp - 1].dist;
        size_t good = 0;
        for (size_t i = 0; i < nh; i++)
            good += hits[i].dist <= kth;
        recall = (double)good / (double)nexp;
    }
    free(ref);
    return recall;
}

typedef struct eval {
    double recall;        /* mean over queries */
    double mean_visited;
    uint64_t max_visited;
} eval;

static eval evaluate(const hfx *f, const char *queries, size_t nq, const index_query *q)
{
    index_hit *hits = malloc((size_t)q->k * sizeof *hits);
    assert_non_null(hits);
    eval e = {0};
    uint64_t vsum = 0;
    for (size_t i = 0; i < nq; i++) {
        const void *qv = queries + i * f->ix->space->vec_bytes;
        index_stats st = {0};
        size_t nh = f->ix->m->search(f->ix, qv, q, hits, &st);
        e.recall += check_hits(f, qv, q, hits, nh);
        vsum += st.visited;
        e.max_visited = NDL_MAX(e.max_visited, st.visited);
    }
    e.recall /= (double)NDL_MAX(nq, 1);
    e.mean_visited = (double)vsum / (double)NDL_MAX(nq, 1);
    free(hits);
    return e;
}

/* Structural invariants of the graph (through the internal layout): counts
 * within bounds, links in range, not to self, no duplicates, and an upper
 * link only to a node that has that level. With connected != 0 every node
 * has at least one level-0 link. */
static void check_graph(const hfx *f, bool connected)
{
    const hnsw *h = (const hnsw *)f->ix;
    uint32_t nodes = atomic_load(&h->nodes);
    uint64_t e = atomic_load(&h->entry);
    if (nodes == 0) {
        assert_true(e == HNSW_ENTRY_NONE);
        return;
    }
    assert_true(e != HNSW_ENTRY_NONE);
    assert_true((uint32_t)e < nodes);
    uint32_t top = (uint32_t)(e >> 32);
    assert_int_equal(hnsw_node_level(h, (uint32_t)e), top);
    for (uint32_t s = 0; s < nodes; s++) {
        uint32_t level = hnsw_node_level(h, s);
        /* only removed nodes may sit above the top (the entry moved off them) */
        assert_true(level <= top || hnsw_is_removed(h, s));
        for (uint32_t l = 0; l <= level; l++) {
            const uint32_t *w = hnsw_links(h, s, l);
            uint32_t cnt = w[0];
            assert_true(cnt <= (l ? h->m : h->m0));
            if (l == 0 && connected && nodes > 1 && cnt == 0)
                fail_msg("node %u has no level-0 links", s);
            for (uint32_t i = 1; i <= cnt; i++) {
                uint32_t t = w[i];
                assert_true(t < nodes);
                assert_int_not_equal(t, s);
                assert_true(hnsw_node_level(h, t) >= l);
                for (uint32_t j = 1; j < i; j++)
                    assert_int_not_equal(w[j], t);
            }
        }
    }
}

/* ---------------------------------------------------------------- files */

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle-test-hnsw-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tpath(const char *name)
{
    static char p[4][512];
    static int next;
    char *out = p[next++ & 3];
    snprintf(out, sizeof p[0], "%s/%s", tmpdir, name);
    return out;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static void write_all(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static bool file_exists(const char *path)
{
    struct stat stt;
    return stat(path, &stt) == 0;
}

/* Data section of a valid graph file (copy, caller frees). */
static uint8_t *graph_data(const char *path, size_t *len)
{
    sfile_map map;
    assert_int_equal(sfile_map_open(path, KIND_HNSW, 1, 1, &map, NULL), NDL_OK);
    uint8_t *d = malloc(map.data_len + 1);
    assert_non_null(d);
    memcpy(d, map.data, map.data_len);
    *len = map.data_len;
    sfile_map_close(&map);
    return d;
}

/* A graph file with the given data and valid checksums. */
static void write_graph(const char *path, const uint8_t *data, size_t len)
{
    sfile_writer *w;
    assert_int_equal(sfile_create(path, KIND_HNSW, 1, &w, NULL), NDL_OK);
    assert_int_equal(sfile_write(w, data, len, NULL), NDL_OK);
    assert_int_equal(sfile_commit(w, NULL), NDL_OK);
}

static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Layout of a graph file's data (see hnsw_io.c). */
typedef struct graph_layout {
    uint32_t m, m0, nodes, entry, top;
    size_t levels, removed, links0, upper; /* offsets */
} graph_layout;

static graph_layout parse_layout(const uint8_t *d, size_t len)
{
    graph_layout g;
    assert_true(len >= 40);
    g.m = get32(d);
    g.m0 = get32(d + 4);
    g.nodes = get32(d + 24);
    g.entry = get32(d + 28);
    g.top = get32(d + 32);
    g.levels = 40;
    g.removed = g.levels + g.nodes;
    g.links0 = (g.removed + g.nodes + 7) & ~(size_t)7;
    g.upper = g.links0 + (size_t)g.nodes * (1 + g.m0) * 4;
    assert_true(g.upper <= len);
    return g;
}

/* Offset of the level-l (l >= 1) record of node s in the upper section. */
static size_t upper_record(const uint8_t *d, const graph_layout *g, uint32_t s, uint32_t l)
{
    size_t off = g->upper;
    for (uint32_t t = 0; t < s; t++)
        off += (size_t)d[g->levels + t] * (1 + g->m) * 4;
    return off + (size_t)(l - 1) * (1 + g->m) * 4;
}

/* ---------------------------------------------------------------- tests */

static void test_hnsw_create_and_methods(void **state)
{
    (void)state;
    index_space sp;
    index_space_init(&sp, NDL_METRIC_L2, 8);
    vec_arena a;
    assert_int_equal(arena_init(&a, sp.vec_bytes, NULL), NDL_OK);
    vindex *ix = (vindex *)&sp;
    ndl_error err = {0};
    hnsw_params bad1 = {.m = NDL_HNSW_M_MIN - 1, .ef_construction = 64, .seed = 1};
    assert_int_equal(hnsw_index_create(&sp, &a, &bad1, &ix, &err), NDL_INVALID);
    assert_null(ix);
    assert_int_equal(err.status, NDL_INVALID);
    hnsw_params bad2 = {.m = NDL_HNSW_M_MAX + 1, .ef_construction = 64, .seed = 1};
    ix = (vindex *)&sp;
    assert_int_equal(hnsw_index_create(&sp, &a, &bad2, &ix, NULL), NDL_INVALID);
    assert_null(ix);

    hnsw_params p = {.m = 16, .ef_construction = 64, .seed = 7};
    for (long ok = 0; ok < 2; ok++) {
        ix = (vindex *)&sp;
        err = (ndl_error){0};
        ndl_alloc_fail_after(ok);
        ndl_status rc = hnsw_index_create(&sp, &a, &p, &ix, &err);
        ndl_alloc_fail_after(-1);
        assert_int_equal(rc, NDL_NOMEM);
        assert_int_equal(err.status, NDL_NOMEM);
        assert_null(ix);
    }

    /* the extreme m values are accepted and work */
    const uint32_t ms[] = {NDL_HNSW_M_MIN, NDL_HNSW_M_MAX};
    for (size_t i = 0; i < NDL_ARRAY_LEN(ms); i++) {
        hfx f;
        hfx_init(&f, NDL_METRIC_L2, 8, ms[i], 32, 3);
        char *data, *queries;
        make_data(&f.sp, 300, 10, 1, 11, &data, &queries);
        hfx_build(&f, data, 300);
        check_graph(&f, true);
        index_query q = {.k = 5, .ef = 64};
        eval e = evaluate(&f, queries, 10, &q);
        assert_true(e.recall >= 0.9);
        free(data);
        free(queries);
        hfx_destroy(&f);
    }

    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 8, 16, 64, 5);
    assert_string_equal(f.ix->m->name, "hnsw");
    assert_int_equal(f.ix->m->version, 1);
    assert_ptr_equal(f.ix->space, &f.sp);
    assert_ptr_equal(f.ix->arena, &f.arena);
    size_t mem0 = f.ix->m->memory_bytes(f.ix);
    assert_true(mem0 >= sizeof(vindex));
    char *data;
    make_data(&f.sp, 500, 0, 0, 12, &data, NULL);
    hfx_build(&f, data, 500);
    assert_true(f.ix->m->memory_bytes(f.ix) >= mem0 + 500 * (1 + 32) * sizeof(uint32_t));
    free(data);
    hfx_destroy(&f);
    arena_destroy(&a);
}

static void test_hnsw_empty_and_small(void **state)
{
    (void)state;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 8, 8, 32, 1);
    char *data, *queries;
    make_data(&f.sp, 60, 4, 0, 21, &data, &queries);
    index_hit hits[128];
    index_query q = {.k = 10, .ef = 64};
    /* empty index (no vectors), then vectors in the arena but none inserted */
    assert_int_equal(f.ix->m->search(f.ix, queries, &q, hits, NULL), 0);
    hfx_append_all(&f, data, 60);
    index_stats st = {0};
    assert_int_equal(f.ix->m->search(f.ix, queries, &q, hits, &st), 0);
    assert_int_equal(st.visited, 0);
    /* removing a slot that was never inserted is harmless */
    f.ix->m->remove(f.ix, 3);
    f.ix->m->remove(f.ix, 59);

    /* one node */
    hfx_insert_range(&f, 0, 1);
    check_graph(&f, true);
    assert_int_equal(f.ix->m->search(f.ix, queries, &q, hits, NULL), 1);
    assert_int_equal(hits[0].slot, 0);
    q.k = 0;
    assert_int_equal(f.ix->m->search(f.ix, queries, &q, hits, NULL), 0);

    /* k > n returns every node exactly once, best first, even with ef < k */
    hfx_insert_range(&f, 1, 50);
    check_graph(&f, true);
    const uint32_t efs[] = {1, 10, 200};
    for (size_t i = 0; i < NDL_ARRAY_LEN(efs); i++) {
        index_query qk = {.k = 100, .ef = efs[i]};
        for (size_t j = 0; j < 4; j++) {
            size_t nh = f.ix->m->search(f.ix, queries + j * f.sp.vec_bytes, &qk, hits, NULL);
            assert_int_equal(nh, 50); /* only 50 of the 60 published slots are in the graph */
            bool seen[50] = {0};
            for (size_t h = 0; h < nh; h++) {
                assert_true(hits[h].slot < 50);
                assert_false(seen[hits[h].slot]);
                seen[hits[h].slot] = true;
                if (h)
                    assert_true(hits[h - 1].dist <= hits[h].dist);
            }
        }
    }
    /* a query equal to a stored vector finds it first at distance 0 */
    index_query q1 = {.k = 1, .ef = 16};
    assert_int_equal(f.ix->m->search(f.ix, data + 17 * f.sp.vec_bytes, &q1, hits, NULL), 1);
    assert_int_equal(hits[0].slot, 17);
    assert_true(hits[0].dist == 0.0f);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

/* Build n points of metric/dim, check recall@10 at ef 128 and that the
 * search visits far fewer nodes than a scan would. */
static void recall_case(ndl_metric metric, uint32_t dim, int clustered, uint32_t n, uint64_t seed)
{
    hfx f;
    hfx_init(&f, metric, dim, 16, 100, seed);
    char *data, *queries;
    const size_t nq = 100;
    make_data(&f.sp, n, nq, clustered, seed * 31 + 7, &data, &queries);
    hfx_build(&f, data, n);
    check_graph(&f, true);
    index_query q = {.k = 10, .ef = 128};
    eval e = evaluate(&f, queries, nq, &q);
    print_message("  metric %d dim %u n %u %s: recall@10 %.4f, visited mean %.0f max %llu\n",
                  (int)metric, dim, n, clustered ? "clustered" : "uniform", e.recall,
                  e.mean_visited, (unsigned long long)e.max_visited);
    assert_true(e.recall >= 0.95);
    assert_true(e.max_visited < n);
    assert_true(e.mean_visited < 0.6 * n);
    /* k = 1 at the default ef finds the point itself for stored vectors */
    index_query q1 = {.k = 1, .ef = NDL_HNSW_EF_DEFAULT};
    size_t found = 0;
    for (uint32_t s = 0; s < n; s += n / 50) {
        index_hit hit;
        assert_int_equal(f.ix->m->search(f.ix, data + (size_t)s * f.sp.vec_bytes, &q1, &hit, NULL),
                         1);
        found += hit.dist <= kdist(&f, data + (size_t)s * f.sp.vec_bytes, s);
    }
    assert_true(found >= 48);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

static void test_hnsw_recall_l2(void **state)
{
    (void)state;
    recall_case(NDL_METRIC_L2, 16, 0, 4000, 101);
    recall_case(NDL_METRIC_L2, 32, 1, 3000, 102);
}

static void test_hnsw_recall_cosine(void **state)
{
    (void)state;
    recall_case(NDL_METRIC_COSINE, 16, 0, 4000, 103);
    recall_case(NDL_METRIC_COSINE, 24, 1, 3000, 104);
}

static void test_hnsw_recall_ip(void **state)
{
    (void)state;
    recall_case(NDL_METRIC_IP, 16, 0, 4000, 105);
    recall_case(NDL_METRIC_IP, 24, 1, 3000, 106);
}

static void test_hnsw_recall_l1(void **state)
{
    (void)state;
    recall_case(NDL_METRIC_L1, 16, 0, 4000, 107);
    recall_case(NDL_METRIC_L1, 24, 1, 3000, 108);
}

static void test_hnsw_recall_hamming(void **state)
{
    (void)state;
    recall_case(NDL_METRIC_HAMMING, 64, 1, 4000, 109);
    recall_case(NDL_METRIC_HAMMING, 100, 1, 3000, 110); /* a partial last byte */
}

/* Same seed, same insertion order, one thread: identical graphs (file bytes)
 * and identical results. Another seed: another graph, as good. */
static void test_hnsw_deterministic_seed(void **state)
{
    (void)state;
    const uint32_t n = 3000;
    const size_t nq = 60;
    hfx f[3];
    char *data, *queries;
    const uint64_t seeds[3] = {42, 42, 43};
    for (int i = 0; i < 3; i++) {
        hfx_init(&f[i], NDL_METRIC_L2, 16, 12, 64, seeds[i]);
        if (i == 0)
            make_data(&f[0].sp, n, nq, 1, 77, &data, &queries);
        hfx_build(&f[i], data, n);
        check_graph(&f[i], true);
    }
    index_query q = {.k = 10, .ef = 128};
    index_hit a[10], b[10];
    for (size_t i = 0; i < nq; i++) {
        const void *qv = queries + i * f[0].sp.vec_bytes;
        index_stats sa = {0}, sb = {0};
        size_t na = f[0].ix->m->search(f[0].ix, qv, &q, a, &sa);
        size_t nb = f[1].ix->m->search(f[1].ix, qv, &q, b, &sb);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof *a);
        assert_int_equal(sa.visited, sb.visited);
    }
    const char *pa = tpath("det-a.hnsw"), *pb = tpath("det-b.hnsw"), *pc = tpath("det-c.hnsw");
    assert_int_equal(f[0].ix->m->save(f[0].ix, pa, NULL), NDL_OK);
    assert_int_equal(f[1].ix->m->save(f[1].ix, pb, NULL), NDL_OK);
    assert_int_equal(f[2].ix->m->save(f[2].ix, pc, NULL), NDL_OK);
    size_t la, lb, lc;
    unsigned char *ba = read_all(pa, &la), *bb = read_all(pb, &lb), *bc = read_all(pc, &lc);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    assert_true(la != lc || memcmp(ba, bc, la) != 0);
    free(ba);
    free(bb);
    free(bc);
    eval e = evaluate(&f[2], queries, nq, &q);
    assert_true(e.recall >= 0.95);
    for (int i = 0; i < 3; i++)
        hfx_destroy(&f[i]);
    free(data);
    free(queries);
}

/* ---- multi-threaded build */

typedef struct par_ctx {
    hfx *f;
    uint32_t n;
    _Atomic uint32_t next;
    _Atomic int failures;
} par_ctx;

static void *par_inserter(void *arg)
{
    par_ctx *c = arg;
    for (;;) {
        uint32_t s = atomic_fetch_add(&c->next, 1);
        if (s >= c->n)
            break;
        if (c->f->ix->m->insert(c->f->ix, s, NULL) != NDL_OK)
            atomic_fetch_add(&c->failures, 1);
    }
    return NULL;
}

static void test_hnsw_parallel_build(void **state)
{
    (void)state;
    const uint32_t threads[] = {2, 4};
    for (size_t ti = 0; ti < NDL_ARRAY_LEN(threads); ti++) {
        const uint32_t n = 4000;
        hfx f;
        hfx_init(&f, ti ? NDL_METRIC_COSINE : NDL_METRIC_L2, 16, 16, 100, 9);
        char *data, *queries;
        make_data(&f.sp, n, 100, (int)ti, 300 + ti, &data, &queries);
        hfx_append_all(&f, data, n);
        par_ctx c = {.f = &f, .n = n};
        pthread_t th[4];
        for (uint32_t t = 0; t < threads[ti]; t++)
            assert_int_equal(pthread_create(&th[t], NULL, par_inserter, &c), 0);
        for (uint32_t t = 0; t < threads[ti]; t++)
            pthread_join(th[t], NULL);
        assert_int_equal(atomic_load(&c.failures), 0);
        check_graph(&f, true);
        index_query q = {.k = 10, .ef = 128};
        eval e = evaluate(&f, queries, 100, &q);
        print_message("  %u threads: recall@10 %.4f, visited mean %.0f\n", threads[ti], e.recall,
                      e.mean_visited);
        assert_true(e.recall >= 0.95);
        assert_true(e.max_visited < n);
        free(data);
        free(queries);
        hfx_destroy(&f);
    }
}

/* ---- searches racing inserts and deletes */

typedef struct live_ctx {
    hfx *f;
    const char *data;
    const char *queries;
    uint32_t n;
    size_t nq;
    bitset *del;
    pthread_mutex_t append_lock;
    _Atomic uint32_t next;       /* next data index to append */
    _Atomic uint32_t started;    /* slots < started are published and handed to insert */
    _Atomic uint32_t ninserted;  /* inserts that returned */
    _Atomic uint8_t *inserted;   /* per slot: insert returned */
    _Atomic uint32_t del_upto;   /* every slot % 7 == 3 below this is deleted */
    _Atomic int writers_left;
    _Atomic int insert_fail;
    _Atomic int bad_slot;        /* hit not published/handed to insert */
    _Atomic int bad_dist;
    _Atomic int bad_order;
    _Atomic int bad_deleted;
    _Atomic int short_result;
    _Atomic uint64_t searches;
} live_ctx;

static void *live_inserter(void *arg)
{
    live_ctx *c = arg;
    hfx *f = c->f;
    for (;;) {
        pthread_mutex_lock(&c->append_lock);
        uint32_t i = atomic_load(&c->next);
        if (i >= c->n) {
            pthread_mutex_unlock(&c->append_lock);
            break;
        }
        uint32_t slot;
        void *rec;
        if (arena_reserve(&f->arena, &slot, &rec, NULL) != NDL_OK || slot != i) {
            atomic_fetch_add(&c->insert_fail, 1);
            pthread_mutex_unlock(&c->append_lock);
            break;
        }
        memcpy(rec, c->data + (size_t)i * f->sp.vec_bytes, f->sp.vec_bytes);
        arena_publish(&f->arena, slot + 1);
        atomic_store(&c->started, slot + 1);
        atomic_store(&c->next, i + 1);
        pthread_mutex_unlock(&c->append_lock);
        if (f->ix->m->insert(f->ix, slot, NULL) != NDL_OK)
            atomic_fetch_add(&c->insert_fail, 1);
        atomic_store(&c->inserted[slot], 1);
        atomic_fetch_add(&c->ninserted, 1);
    }
    atomic_fetch_sub(&c->writers_left, 1);
    return NULL;
}

/* Deletes every slot with slot % 7 == 3 once its insert returned, in order
 * (removes are serialized: this is the only deleter). */
static void *live_deleter(void *arg)
{
    live_ctx *c = arg;
    for (uint32_t s = 3; s < c->n; s += 7) {
        while (!atomic_load(&c->inserted[s]))
            sched_yield();
        bitset_set(c->del, s);
        c->f->ix->m->remove(c->f->ix, s);
        atomic_store(&c->del_upto, s + 1);
    }
    return NULL;
}

static void *live_searcher(void *arg)
{
    live_ctx *c = arg;
    hfx *f = c->f;
    index_hit hits[10];
    uint64_t i = 0;
    while (atomic_load(&c->writers_left) > 0) {
        const void *qv = c->queries + (i++ % c->nq) * f->sp.vec_bytes;
        uint32_t done_before = atomic_load(&c->ninserted);
        uint32_t du = atomic_load(&c->del_upto);
        index_query q = {.k = 10, .ef = 32, .deleted = (i & 1) ? c->del : NULL};
        size_t nh = f->ix->m->search(f->ix, qv, &q, hits, NULL);
        uint32_t started = atomic_load(&c->started);
        for (size_t h = 0; h < nh; h++) {
            uint32_t s = hits[h].slot;
            if (s >= started) {
                atomic_fetch_add(&c->bad_slot, 1);
                continue;
            }
            if (hits[h].dist != kdist(f, qv, s))
                atomic_fetch_add(&c->bad_dist, 1);
            if (h && hits[h - 1].dist > hits[h].dist)
                atomic_fetch_add(&c->bad_order, 1);
            for (size_t j = 0; j < h; j++)
                if (hits[j].slot == s)
                    atomic_fetch_add(&c->bad_order, 1);
            if (q.deleted && s % 7 == 3 && s < du)
                atomic_fetch_add(&c->bad_deleted, 1);
        }
        /* enough nodes for 10 hits are in the graph; see the test's comment */
        if (done_before >= 100 && nh < 10)
            atomic_fetch_add(&c->short_result, 1);
        atomic_fetch_add(&c->searches, 1);
    }
    return NULL;
}

static void test_hnsw_search_during_insert(void **state)
{
    (void)state;
    const uint32_t n = 3000;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 12, 12, 64, 5);
    char *data, *queries;
    make_data(&f.sp, n, 64, 1, 555, &data, &queries);
    bitset del;
    assert_int_equal(bitset_init(&del, NULL), NDL_OK);
    live_ctx c = {.f = &f, .data = data, .queries = queries, .n = n, .nq = 64, .del = &del};
    c.inserted = calloc(n, sizeof *c.inserted);
    assert_non_null(c.inserted);
    pthread_mutex_init(&c.append_lock, NULL);
    atomic_store(&c.writers_left, 2);
    pthread_t ins[2], srch[2], dl;
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&srch[t], NULL, live_searcher, &c), 0);
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&ins[t], NULL, live_inserter, &c), 0);
    assert_int_equal(pthread_create(&dl, NULL, live_deleter, &c), 0);
    for (int t = 0; t < 2; t++)
        pthread_join(ins[t], NULL);
    pthread_join(dl, NULL);
    for (int t = 0; t < 2; t++)
        pthread_join(srch[t], NULL);
    print_message("  %llu searches raced %u inserts; %d returned fewer than k\n",
                  (unsigned long long)atomic_load(&c.searches), n, atomic_load(&c.short_result));
    assert_int_equal(atomic_load(&c.insert_fail), 0);
    assert_int_equal(atomic_load(&c.bad_slot), 0);
    assert_int_equal(atomic_load(&c.bad_dist), 0);
    assert_int_equal(atomic_load(&c.bad_order), 0);
    assert_int_equal(atomic_load(&c.bad_deleted), 0);
    /* KNOWN ISSUE (hnsw_build.c, hnsw_insert): a node with upper levels gets
     * linked on its upper levels before its own level-0 links exist, so a
     * search whose descent lands on it mid-insert returns just that node (or
     * the few nodes its half-linked neighbourhood reaches) although k = 10
     * are available. Tolerated here while rare; tighten to 0 once the insert
     * links level 0 first. */
    assert_true((uint64_t)atomic_load(&c.short_result) * 100 <= atomic_load(&c.searches));
    assert_true(atomic_load(&c.searches) > 0);
    assert_int_equal(arena_count(&f.arena), n);
    check_graph(&f, true);
    index_query q = {.k = 10, .ef = 128, .deleted = &del};
    eval e = evaluate(&f, queries, 64, &q);
    assert_true(e.recall >= 0.95);
    pthread_mutex_destroy(&c.append_lock);
    free(c.inserted);
    bitset_destroy(&del);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

/* ---- delete and re-insert */

static void test_hnsw_delete_and_upsert(void **state)
{
    (void)state;
    const ndl_metric metrics[] = {NDL_METRIC_L2, NDL_METRIC_COSINE};
    for (size_t mi = 0; mi < NDL_ARRAY_LEN(metrics); mi++) {
        const uint32_t n = 4000;
        const size_t nq = 100;
        hfx f;
        hfx_init(&f, metrics[mi], 16, 16, 100, 17 + mi);
        char *data, *queries;
        make_data(&f.sp, 2 * n, nq, 1, 900 + mi, &data, &queries);
        hfx_build(&f, data, n);
        bitset del;
        assert_int_equal(bitset_init(&del, NULL), NDL_OK);
        /* 30% of the slots, at random (30% of a random permutation) */
        uint32_t *perm = malloc(n * sizeof *perm);
        assert_non_null(perm);
        for (uint32_t i = 0; i < n; i++)
            perm[i] = i;
        rng_state = 4242 + mi;
        for (uint32_t i = n - 1; i > 0; i--) {
            uint32_t j = (uint32_t)(rng_next() % (i + 1));
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        const uint32_t ndel = n * 3 / 10;
        for (uint32_t i = 0; i < ndel; i++) {
            bitset_set(&del, perm[i]);
            f.ix->m->remove(f.ix, perm[i]);
        }
        check_graph(&f, false);
        index_query q = {.k = 10, .ef = 128, .deleted = &del};
        eval e = evaluate(&f, queries, nq, &q);
        print_message("  metric %d after deleting 30%%: recall %.4f\n", (int)metrics[mi], e.recall);
        assert_true(e.recall >= 0.95);
        /* queries right at deleted points: their own slot must not come back */
        char *dq = malloc(50 * f.sp.vec_bytes);
        assert_non_null(dq);
        for (uint32_t i = 0; i < 50; i++)
            memcpy(dq + i * f.sp.vec_bytes, arena_rec(&f.arena, perm[i]), f.sp.vec_bytes);
        e = evaluate(&f, dq, 50, &q);
        assert_true(e.recall >= 0.95);

        /* upsert over the old ids: each deleted slot's record gets a new slot
         * with a new vector (new data plus moved copies of old vectors) */
        for (uint32_t i = 0; i < ndel; i++) {
            const void *v = i % 2 ? data + (size_t)(n + i) * f.sp.vec_bytes
                                  : arena_rec(&f.arena, perm[i]);
            char tmp[256];
            memcpy(tmp, v, f.sp.vec_bytes);
            uint32_t s = hfx_append(&f, tmp);
            assert_int_equal(f.ix->m->insert(f.ix, s, NULL), NDL_OK);
        }
        assert_int_equal(arena_count(&f.arena), n + ndel);
        check_graph(&f, false);
        e = evaluate(&f, queries, nq, &q);
        print_message("  metric %d after re-inserting: recall %.4f\n", (int)metrics[mi], e.recall);
        assert_true(e.recall >= 0.95);
        e = evaluate(&f, dq, 50, &q);
        assert_true(e.recall >= 0.95);

        /* a second round: delete some of the new slots and older ones too */
        for (uint32_t s = n; s < n + ndel; s += 3) {
            bitset_set(&del, s);
            f.ix->m->remove(f.ix, s);
        }
        for (uint32_t i = ndel; i < ndel + 200; i++) {
            bitset_set(&del, perm[i]);
            f.ix->m->remove(f.ix, perm[i]);
        }
        e = evaluate(&f, queries, nq, &q);
        assert_true(e.recall >= 0.95);
        free(dq);
        free(perm);
        bitset_destroy(&del);
        free(data);
        free(queries);
        hfx_destroy(&f);
    }
}

/* Upsert every id as the collection does (write.c): a batch of new slots is
 * inserted, then the slots they replace are removed; after every node has
 * been replaced this way the graph must still find the new ones. */
static void test_hnsw_replace_every_node(void **state)
{
    (void)state;
    const uint32_t n = 2000, batch = 250;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 12, 12, 64, 28);
    char *data, *queries;
    make_data(&f.sp, 2 * n, 50, 1, 2828, &data, &queries);
    hfx_build(&f, data, n);
    bitset del;
    assert_int_equal(bitset_init(&del, NULL), NDL_OK);
    index_query q = {.k = 10, .ef = 128, .deleted = &del};
    for (uint32_t b = 0; b < n; b += batch) {
        hfx_build(&f, data + (size_t)(n + b) * f.sp.vec_bytes, batch);
        for (uint32_t s = b; s < b + batch; s++) {
            bitset_set(&del, s);
            f.ix->m->remove(f.ix, s);
        }
        eval e = evaluate(&f, queries, 50, &q);
        assert_true(e.recall >= 0.95);
    }
    check_graph(&f, false);
    eval e = evaluate(&f, queries, 50, &q);
    print_message("  recall after replacing every node in batches: %.4f\n", e.recall);
    assert_true(e.recall >= 0.95);
    bitset_destroy(&del);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

/* Every node deleted, then new ones inserted: the new nodes must link to
 * each other although every node the insert search meets is removed. */
static void test_hnsw_delete_all_then_insert(void **state)
{
    (void)state;
    const uint32_t n = 1000;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 8, 8, 64, 29);
    char *data, *queries;
    make_data(&f.sp, 2 * n, 30, 1, 2929, &data, &queries);
    hfx_build(&f, data, n);
    bitset del;
    assert_int_equal(bitset_init(&del, NULL), NDL_OK);
    for (uint32_t s = 0; s < n; s++) {
        bitset_set(&del, s);
        f.ix->m->remove(f.ix, s);
    }
    index_query q = {.k = 10, .ef = 64, .deleted = &del};
    eval e = evaluate(&f, queries, 30, &q); /* 0 hits each */
    hfx_build(&f, data + (size_t)n * f.sp.vec_bytes, n);
    index_hit hits[10];
    size_t nh = f.ix->m->search(f.ix, queries, &q, hits, NULL);
    /* the entry point moved off the removed nodes: new nodes are reachable */
    assert_true(nh > 0);
    e = evaluate(&f, queries, 30, &q);
    print_message("  recall after deleting every node and inserting new ones: %.4f\n", e.recall);
    assert_true(e.recall >= 0.95);
    bitset_destroy(&del);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

/* ---- filters */

static int allow_bytes(void *ctx, uint32_t slot) { return ((const uint8_t *)ctx)[slot]; }

/* Pick allowed slots among the live ones: permille of them at random, or
 * exactly three (the first, a middle and the last live slot of a shuffle).
 * Returns how many match. */
static uint32_t pick_filter(uint8_t *allow, uint32_t n, const bitset *del, int kind,
                            uint32_t permille, uint64_t seed)
{
    memset(allow, 0, n);
    rng_state = seed;
    uint32_t matches = 0;
    if (kind == 1) {
        while (matches < 3) {
            uint32_t s = (uint32_t)(rng_next() % n);
            if (!allow[s] && !(del && bitset_test(del, s))) {
                allow[s] = 1;
                matches++;
            }
        }
        return matches;
    }
    for (uint32_t s = 0; s < n; s++)
        if (rng_next() % 1000 < permille && !(del && bitset_test(del, s))) {
            allow[s] = 1;
            matches++;
        }
    return matches;
}

static void test_hnsw_filter_selectivity(void **state)
{
    (void)state;
    const uint32_t n = 4000;
    const size_t nq = 40;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 16, 16, 100, 23);
    char *data, *queries;
    make_data(&f.sp, n, nq, 1, 2323, &data, &queries);
    hfx_build(&f, data, n);
    uint8_t *allow = calloc(n, 1);
    assert_non_null(allow);
    bitset del;
    assert_int_equal(bitset_init(&del, NULL), NDL_OK);
    /* per mille: 50%, 5%, 0.5%; exactly three points; none */
    const uint32_t permille[] = {500, 50, 5, 0, 0};
    const int kinds[] = {0, 0, 0, 1, 0};
    /* pass 0: filters alone; pass 1: after deleting 20% of the slots, filters
     * over the live slots with the deleted set in the query too */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            rng_state = 999;
            for (uint32_t s = 0; s < n; s++)
                if (rng_next() % 5 == 0) {
                    bitset_set(&del, s);
                    f.ix->m->remove(f.ix, s);
                }
        }
        for (size_t si = 0; si < NDL_ARRAY_LEN(permille); si++) {
            uint32_t matches = pick_filter(allow, n, pass ? &del : NULL, kinds[si], permille[si],
                                           77 + si + 10 * (uint64_t)pass);
            index_query q = {.k = 10, .ef = 128, .allow = allow_bytes, .allow_ctx = allow,
                             .deleted = pass ? &del : NULL};
            eval e = evaluate(&f, queries, nq, &q); /* asserts exactly min(k, matches) hits */
            print_message("  %sfilter of %u matches: recall %.4f, visited mean %.0f\n",
                          pass ? "deletions + " : "", matches, e.recall, e.mean_visited);
            assert_true(e.recall >= 0.9);
            q.k = 1;
            e = evaluate(&f, queries, nq, &q);
            assert_true(e.recall >= 0.9);
            q.k = 50; /* k > matches for the sparse filters */
            q.ef = 50;
            e = evaluate(&f, queries, nq, &q);
            assert_true(e.recall >= 0.9);
        }
    }
    bitset_destroy(&del);
    free(allow);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

/* ---- save / load */

static void same_results(hfx *a, hfx *b, const char *queries, size_t nq, const index_query *q)
{
    index_hit ha[32], hb[32];
    assert_true(q->k <= 32);
    for (size_t i = 0; i < nq; i++) {
        const void *qv = queries + i * a->sp.vec_bytes;
        size_t na = a->ix->m->search(a->ix, qv, q, ha, NULL);
        size_t nb = b->ix->m->search(b->ix, qv, q, hb, NULL);
        assert_int_equal(na, nb);
        assert_memory_equal(ha, hb, na * sizeof *ha);
    }
}

/* A fresh index with f's space and parameters over arena `a` (vectors
 * already there), loaded from path; returns the status. */
static ndl_status load_fresh(const hfx *f, const vec_arena *a, uint32_t m, const char *path,
                             vindex **out, ndl_error *err)
{
    hnsw_params p = f->p;
    p.m = m;
    assert_int_equal(hnsw_index_create(&f->sp, a, &p, out, NULL), NDL_OK);
    return (*out)->m->load(*out, path, err);
}

static void test_hnsw_save_load(void **state)
{
    (void)state;
    const uint32_t n = 3000;
    const size_t nq = 50;
    hfx f;
    hfx_init(&f, NDL_METRIC_IP, 16, 12, 64, 31);
    char *data, *queries;
    make_data(&f.sp, n + 500, nq, 1, 3131, &data, &queries);
    const char *path = tpath("graph.hnsw");

    /* empty graph round trip */
    assert_int_equal(f.ix->m->save(f.ix, path, NULL), NDL_OK);
    vindex *ix2;
    assert_int_equal(load_fresh(&f, &f.arena, f.p.m, path, &ix2, NULL), NDL_OK);
    index_query q = {.k = 10, .ef = 128};
    index_hit hits[10];
    assert_int_equal(ix2->m->search(ix2, queries, &q, hits, NULL), 0);
    ix2->m->destroy(ix2);

    hfx_build(&f, data, n);
    bitset del;
    assert_int_equal(bitset_init(&del, NULL), NDL_OK);
    for (uint32_t s = 5; s < n; s += 9) {
        bitset_set(&del, s);
        f.ix->m->remove(f.ix, s);
    }
    assert_int_equal(f.ix->m->save(f.ix, path, NULL), NDL_OK);
    assert_false(file_exists(tpath("graph.hnsw.tmp")));

    /* a fresh index over the same arena */
    hfx g = f;
    g.ix = NULL;
    assert_int_equal(load_fresh(&f, &f.arena, f.p.m, path, &g.ix, NULL), NDL_OK);
    check_graph(&g, false);
    const hnsw *hf = (const hnsw *)f.ix, *hg = (const hnsw *)g.ix;
    assert_int_equal(atomic_load(&hf->nodes), atomic_load(&hg->nodes));
    assert_true(atomic_load(&hf->entry) == atomic_load(&hg->entry));
    for (uint32_t s = 0; s < n; s++)
        assert_int_equal(hnsw_is_removed(hg, s), s >= 5 && (s - 5) % 9 == 0);
    assert_int_equal(f.ix->m->memory_bytes(f.ix), g.ix->m->memory_bytes(g.ix));
    same_results(&f, &g, queries, nq, &q);
    q.deleted = &del;
    same_results(&f, &g, queries, nq, &q);
    eval e = evaluate(&g, queries, nq, &q);
    assert_true(e.recall >= 0.95);
    /* saving the loaded index gives the same bytes */
    const char *path2 = tpath("graph2.hnsw");
    assert_int_equal(g.ix->m->save(g.ix, path2, NULL), NDL_OK);
    size_t l1, l2;
    unsigned char *b1 = read_all(path, &l1), *b2 = read_all(path2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    free(b1);
    free(b2);

    /* the loaded index keeps growing like the original */
    for (uint32_t i = n; i < n + 500; i++) {
        uint32_t s = hfx_append(&f, data + (size_t)i * f.sp.vec_bytes);
        assert_int_equal(f.ix->m->insert(f.ix, s, NULL), NDL_OK);
        assert_int_equal(g.ix->m->insert(g.ix, s, NULL), NDL_OK);
    }
    same_results(&f, &g, queries, nq, &q);
    check_graph(&g, false);
    e = evaluate(&g, queries, nq, &q);
    assert_true(e.recall >= 0.95);

    /* saving into a missing directory fails cleanly */
    ndl_error err = {0};
    assert_int_not_equal(g.ix->m->save(g.ix, tpath("no/such/dir.hnsw"), &err), NDL_OK);
    assert_true(err.msg[0] != 0);
    g.ix->m->destroy(g.ix);
    bitset_destroy(&del);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

/* A checkpoint saves a clone while the writer changes the original: the
 * clone saves to the same bytes as the original did when cloned, and stays
 * so while the original grows and loses nodes. */
static void test_hnsw_clone_is_frozen(void **state)
{
    (void)state;
    const uint32_t n = 2500;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 16, 12, 64, 5);
    char *data, *queries;
    make_data(&f.sp, n, 10, 1, 555, &data, &queries);
    hfx_build(&f, data, 2000);
    for (uint32_t s = 3; s < 2000; s += 11)
        f.ix->m->remove(f.ix, s);
    vindex *clone;
    assert_int_equal(f.ix->m->clone(f.ix, &clone, NULL), NDL_OK);
    const char *pa = tpath("orig.hnsw"), *pb = tpath("clone.hnsw"), *pc = tpath("clone2.hnsw");
    assert_int_equal(f.ix->m->save(f.ix, pa, NULL), NDL_OK);
    assert_int_equal(clone->m->save(clone, pb, NULL), NDL_OK);
    size_t la, lb, lc;
    unsigned char *ba = read_all(pa, &la), *bb = read_all(pb, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    assert_int_equal(clone->m->memory_bytes(clone), f.ix->m->memory_bytes(f.ix));

    hfx_build(&f, data + (size_t)2000 * f.sp.vec_bytes, n - 2000); /* links into the old nodes */
    for (uint32_t s = 4; s < n; s += 7)
        f.ix->m->remove(f.ix, s);
    assert_int_equal(clone->m->save(clone, pc, NULL), NDL_OK);
    unsigned char *bc = read_all(pc, &lc);
    assert_int_equal(lc, lb);
    assert_memory_equal(bc, bb, lb);
    hfx g = f;
    g.ix = clone;
    check_graph(&g, false);
    clone->m->destroy(clone);
    check_graph(&f, false);
    free(ba);
    free(bb);
    free(bc);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

/* Live nodes a level-0 walk from the entry point cannot reach. */
static uint32_t unreachable_live(const hnsw *h, const bitset *dead)
{
    uint32_t nodes = atomic_load(&h->nodes);
    uint64_t e = atomic_load(&h->entry);
    if (nodes == 0 || e == HNSW_ENTRY_NONE)
        return 0;
    uint8_t *seen = calloc(nodes, 1);
    uint32_t *stack = malloc((size_t)nodes * sizeof *stack);
    uint32_t top = 0;
    stack[top++] = (uint32_t)e;
    seen[(uint32_t)e] = 1;
    while (top) {
        uint32_t s = stack[--top];
        const uint32_t *w = hnsw_links(h, s, 0);
        for (uint32_t i = 1; i <= w[0]; i++)
            if (!seen[w[i]]) {
                seen[w[i]] = 1;
                stack[top++] = w[i];
            }
    }
    uint32_t lost = 0;
    for (uint32_t s = 0; s < nodes; s++)
        lost += !seen[s] && !(dead && bitset_test(dead, s));
    free(seen);
    free(stack);
    return lost;
}

/* Heavy churn (every point replaced many times, like a collection under
 * upserts), then compaction: every live node stays reachable from the
 * entry point at level 0, although the removed nodes that linked to them
 * are gone. (An invariant check: the ring test in test_compact.c is the
 * one that failed before the places of links to removed nodes were
 * filled.) */
static void test_hnsw_compact_keeps_everything_reachable(void **state)
{
    (void)state;
    const uint32_t live = 400, rounds = 12;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 8, 8, 32, 99);
    char *data, *queries;
    make_data(&f.sp, (size_t)live * (rounds + 1), 1, 0, 4242, &data, &queries);
    bitset dead;
    assert_int_equal(bitset_init(&dead, NULL), NDL_OK);
    uint32_t *slot_of = malloc(live * sizeof *slot_of);
    for (uint32_t i = 0; i < live; i++)
        slot_of[i] = i;
    hfx_build(&f, data, live);
    uint32_t next = live;
    for (uint32_t r = 0; r < rounds; r++)
        for (uint32_t i = (r * 37) % 7; i < live; i += 1 + (r % 3)) {
            uint32_t s = hfx_append(&f, data + (size_t)next * f.sp.vec_bytes);
            assert_int_equal(f.ix->m->insert(f.ix, s, NULL), NDL_OK);
            bitset_set(&dead, slot_of[i]);
            f.ix->m->remove(f.ix, slot_of[i]);
            slot_of[i] = s;
            next++;
        }
    uint32_t n = arena_count(&f.arena);
    uint32_t *remap = malloc((size_t)n * sizeof *remap);
    uint32_t k = 0;
    for (uint32_t s = 0; s < n; s++)
        remap[s] = bitset_test(&dead, s) ? UINT32_MAX : k++;
    assert_int_equal(k, live);
    vindex *c;
    assert_int_equal(hnsw_compact(f.ix, remap, n, &f.arena, &c, NULL), NDL_OK);
    uint32_t lost = unreachable_live((const hnsw *)c, NULL);
    if (lost)
        fail_msg("%u of %u live nodes unreachable after compaction", lost, live);
    c->m->destroy(c);
    free(remap);
    free(slot_of);
    bitset_destroy(&dead);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

/* Does node s of h link to t at level? */
static bool links_to(const hnsw *h, uint32_t s, uint32_t level, uint32_t t)
{
    const uint32_t *w = hnsw_links(h, s, level);
    for (uint32_t i = 1; i <= w[0]; i++)
        if (w[i] == t)
            return true;
    return false;
}

/* Compaction keeps every link between two live nodes (renumbered), at
 * every level: a live node keeps every in-link it had, so it stays as
 * reachable as it was. Re-choosing a node's links all over again (as
 * compaction did for nodes that linked to removed ones) could drop the
 * last in-link of a point, which a search then never found
 * (tests/e2e/test_cli_storage.py, about one run in 50). */
static void test_hnsw_compact_keeps_live_links(void **state)
{
    (void)state;
    const uint32_t n = 3000;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 4, 6, 40, 7);
    char *data, *queries;
    make_data(&f.sp, n, 1, 0, 777, &data, &queries);
    hfx_build(&f, data, n);
    uint32_t *remap = malloc((size_t)n * sizeof *remap);
    uint32_t k = 0, removed = 0;
    for (uint32_t s = 0; s < n; s++) {
        bool dead = (s * 2654435761u) >> 29 == 3; /* an eighth, scattered */
        if (dead) {
            f.ix->m->remove(f.ix, s);
            removed++;
        }
        remap[s] = dead ? UINT32_MAX : k++;
    }
    assert_true(removed > n / 10);
    vindex *c;
    assert_int_equal(hnsw_compact(f.ix, remap, n, &f.arena, &c, NULL), NDL_OK);
    const hnsw *h = (const hnsw *)f.ix, *nh = (const hnsw *)c;
    uint64_t kept = 0;
    for (uint32_t s = 0; s < n; s++) {
        if (remap[s] == UINT32_MAX)
            continue;
        assert_int_equal(hnsw_node_level(nh, remap[s]), hnsw_node_level(h, s));
        for (uint32_t l = 0; l <= hnsw_node_level(h, s); l++) {
            const uint32_t *w = hnsw_links(h, s, l);
            for (uint32_t i = 1; i <= w[0]; i++) {
                if (remap[w[i]] == UINT32_MAX)
                    continue;
                if (!links_to(nh, remap[s], l, remap[w[i]]))
                    fail_msg("the link %u -> %u at level %u is gone after compaction", s, w[i], l);
                kept++;
            }
        }
    }
    assert_true(kept > n); /* the check saw links */
    assert_int_equal(unreachable_live(nh, NULL), 0);
    c->m->destroy(c);
    free(remap);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

static void expect_corrupt(const hfx *f, const vec_arena *a, uint32_t m, const char *path,
                           const char *what)
{
    vindex *ix;
    ndl_error err = {0};
    ndl_status rc = load_fresh(f, a, m, path, &ix, &err);
    if (rc != NDL_CORRUPT)
        fail_msg("%s: load returned %s (%s), expected NDL_CORRUPT", what, ndl_status_name(rc),
                 err.msg);
    assert_int_equal(err.status, NDL_CORRUPT);
    assert_true(err.msg[0] != 0);
    ix->m->destroy(ix);
}

static void test_hnsw_load_rejects_damage(void **state)
{
    (void)state;
    const uint32_t n = 2000;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 8, 8, 48, 41);
    char *data, *queries;
    make_data(&f.sp, n, 20, 0, 4141, &data, &queries);
    hfx_build(&f, data, n);
    const char *good = tpath("good.hnsw"), *bad = tpath("bad.hnsw");
    assert_int_equal(f.ix->m->save(f.ix, good, NULL), NDL_OK);
    size_t len;
    unsigned char *orig = read_all(good, &len);
    assert_true(len > SFILE_HEADER_BYTES + 40);

    /* missing file */
    vindex *ix;
    assert_int_equal(load_fresh(&f, &f.arena, 8, tpath("missing.hnsw"), &ix, NULL), NDL_NOT_FOUND);
    ix->m->destroy(ix);

    /* truncated: inside the header, at the data start, in the data, one byte short */
    const size_t cuts[] = {0, 10, SFILE_HEADER_BYTES, SFILE_HEADER_BYTES + 20, len / 2, len - 1};
    for (size_t i = 0; i < NDL_ARRAY_LEN(cuts); i++) {
        write_all(bad, orig, cuts[i]);
        expect_corrupt(&f, &f.arena, 8, bad, "truncated");
    }
    /* one bit flipped: header fields, header CRC, data (several places) */
    const size_t flips[] = {0, 9, 13, 17, 25, 61, SFILE_HEADER_BYTES, SFILE_HEADER_BYTES + 25,
                            SFILE_HEADER_BYTES + 41, len / 2, len - 1};
    for (size_t i = 0; i < NDL_ARRAY_LEN(flips); i++) {
        unsigned char *b = malloc(len);
        assert_non_null(b);
        memcpy(b, orig, len);
        b[flips[i]] ^= 0x10;
        write_all(bad, b, len);
        free(b);
        expect_corrupt(&f, &f.arena, 8, bad, "bit flip");
    }
    /* trailing garbage after the data */
    {
        unsigned char *b = malloc(len + 8);
        assert_non_null(b);
        memcpy(b, orig, len);
        memset(b + len, 0xab, 8);
        write_all(bad, b, len + 8);
        free(b);
        /* the header's length covers the data; extra bytes past it are not
         * data: either rejected or ignored, never a crash */
        ndl_status rc = load_fresh(&f, &f.arena, 8, bad, &ix, NULL);
        assert_true(rc == NDL_OK || rc == NDL_CORRUPT);
        ix->m->destroy(ix);
    }
    /* the index was created with another m */
    expect_corrupt(&f, &f.arena, 12, good, "m differs");
    expect_corrupt(&f, &f.arena, 4, good, "m differs");
    /* more nodes than the arena holds */
    {
        vec_arena small;
        assert_int_equal(arena_init(&small, f.sp.vec_bytes, NULL), NDL_OK);
        for (uint32_t i = 0; i < n / 2; i++) {
            uint32_t s;
            void *rec;
            assert_int_equal(arena_reserve(&small, &s, &rec, NULL), NDL_OK);
            memcpy(rec, data + (size_t)i * f.sp.vec_bytes, f.sp.vec_bytes);
            arena_publish(&small, s + 1);
        }
        expect_corrupt(&f, &small, 8, good, "more nodes than vectors");
        arena_destroy(&small);
    }

    /* damage behind valid checksums: every count and link is checked */
    size_t dlen;
    uint8_t *d = graph_data(good, &dlen);
    graph_layout g = parse_layout(d, dlen);
    assert_int_equal(g.m, 8);
    assert_int_equal(g.m0, 16);
    assert_int_equal(g.nodes, n);
    uint8_t *w = malloc(dlen + 64);
    assert_non_null(w);
#define DAMAGE(what, stmt)                                                                         \
    do {                                                                                           \
        memcpy(w, d, dlen);                                                                        \
        stmt;                                                                                      \
        write_graph(bad, w, dlen);                                                                 \
        expect_corrupt(&f, &f.arena, 8, bad, what);                                                \
    } while (0)
    DAMAGE("m0 differs", put32(w + 4, 18));
    DAMAGE("nodes > vectors", put32(w + 24, n + 1));
    DAMAGE("entry out of range", put32(w + 28, n));
    DAMAGE("empty entry with nodes", put32(w + 28, UINT32_MAX));
    DAMAGE("top level too high", put32(w + 32, HNSW_MAX_LEVEL + 1));
    DAMAGE("top level mismatch", put32(w + 32, g.top + 1));
    DAMAGE("node level above top", w[g.levels + (g.entry == 0 ? 1 : 0)] = (uint8_t)(g.top + 1));
    DAMAGE("level-0 count too big", put32(w + g.links0 + 10 * (1 + g.m0) * 4, g.m0 + 1));
    DAMAGE("level-0 link out of range", put32(w + g.links0 + 10 * (1 + g.m0) * 4 + 4, n));
    DAMAGE("last level-0 link out of range", {
        put32(w + g.links0 + (size_t)(n - 1) * (1 + g.m0) * 4, g.m0);
        put32(w + g.links0 + ((size_t)n * (1 + g.m0) - 1) * 4, UINT32_MAX);
    });
    {
        /* an upper-level record: the entry's level 1 */
        assert_true(g.top >= 1);
        size_t off = upper_record(d, &g, g.entry, 1);
        assert_true(get32(d + off) >= 1);
        DAMAGE("upper count too big", put32(w + off, g.m + 1));
        DAMAGE("upper link out of range", put32(w + off + 4, n + 5));
    }
    /* truncated data with a valid checksum: the upper section, the node table */
    memcpy(w, d, dlen);
    write_graph(bad, w, dlen - 4);
    expect_corrupt(&f, &f.arena, 8, bad, "upper levels truncated");
    write_graph(bad, w, g.links0 + 8);
    expect_corrupt(&f, &f.arena, 8, bad, "links truncated");
    write_graph(bad, w, 30);
    expect_corrupt(&f, &f.arena, 8, bad, "header truncated");
    /* trailing bytes inside the data */
    memset(w + dlen, 0, 8);
    write_graph(bad, w, dlen + 8);
    expect_corrupt(&f, &f.arena, 8, bad, "trailing data");
#undef DAMAGE

    /* after all that, the good file still loads and answers like the original */
    hfx g2 = f;
    assert_int_equal(load_fresh(&f, &f.arena, 8, good, &g2.ix, NULL), NDL_OK);
    index_query q = {.k = 10, .ef = 64};
    same_results(&f, &g2, queries, 20, &q);
    g2.ix->m->destroy(g2.ix);
    free(w);
    free(d);
    free(orig);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

/* An upper-level link to a node that does not reach that level passes the
 * range check, but a search that follows it reads that node's upper links,
 * which do not exist (NULL + offset, or past its block). Loading must reject
 * such a file even though its checksums are right. */
static void test_hnsw_load_rejects_upper_link_to_lower_node(void **state)
{
    (void)state;
    const uint32_t n = 2000;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 8, 8, 48, 43);
    char *data;
    make_data(&f.sp, n, 0, 0, 4343, &data, NULL);
    hfx_build(&f, data, n);
    const char *good = tpath("up-good.hnsw"), *bad = tpath("up-bad.hnsw");
    assert_int_equal(f.ix->m->save(f.ix, good, NULL), NDL_OK);
    size_t dlen;
    uint8_t *d = graph_data(good, &dlen);
    graph_layout g = parse_layout(d, dlen);
    assert_true(g.top >= 1);
    uint32_t low = UINT32_MAX; /* a level-0 node */
    for (uint32_t s = 0; s < n && low == UINT32_MAX; s++)
        if (d[g.levels + s] == 0)
            low = s;
    assert_true(low != UINT32_MAX);
    /* the entry's only top-level link -> the level-0 node: a search for that
     * node's vector steps onto it at the top level */
    size_t off = upper_record(d, &g, g.entry, g.top);
    put32(d + off, 1);
    put32(d + off + 4, low);
    write_graph(bad, d, dlen);
    vindex *ix;
    ndl_error err = {0};
    ndl_status rc = load_fresh(&f, &f.arena, 8, bad, &ix, &err);
    ix->m->destroy(ix);
    free(d);
    free(data);
    hfx_destroy(&f);
    assert_int_equal(rc, NDL_CORRUPT);
    assert_int_equal(err.status, NDL_CORRUPT);
}

/* ---- out of memory */

static void test_hnsw_insert_nomem(void **state)
{
    (void)state;
    const uint32_t n = 2000;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 12, 8, 48, 51);
    char *data, *queries;
    make_data(&f.sp, n, 50, 1, 5151, &data, &queries);
    hfx_append_all(&f, data, n / 2);
    const hnsw *h = (const hnsw *)f.ix;
    /* the first insert (chunk creation), the first node with upper levels,
     * a plain node, and the first insert after the arena outgrew the pooled
     * scratch's visited set (the scratch must grow) */
    uint32_t upper_slot = UINT32_MAX;
    for (uint32_t s = 1; s < n && upper_slot == UINT32_MAX; s++)
        if (hnsw_random_level(h, s) > 0)
            upper_slot = s;
    assert_true(upper_slot != UINT32_MAX && upper_slot < 100);
    const uint32_t probes[] = {0, upper_slot, upper_slot + 1, n / 2};
    uint32_t next = 0;
    long total_fails = 0;
    for (size_t pi = 0; pi < NDL_ARRAY_LEN(probes); pi++) {
        hfx_insert_range(&f, next, probes[pi]);
        if (probes[pi] == n / 2) /* more slots than the pooled scratch's visited set covers */
            hfx_append_all(&f, data + (size_t)(n / 2) * f.sp.vec_bytes, n - n / 2);
        ndl_status rc = NDL_NOMEM;
        long fails = 0;
        for (long ok = 0; rc != NDL_OK; ok++) {
            ndl_error err = {0};
            ndl_alloc_fail_after(ok);
            rc = f.ix->m->insert(f.ix, probes[pi], &err);
            ndl_alloc_fail_after(-1);
            if (rc != NDL_OK) {
                assert_int_equal(rc, NDL_NOMEM);
                assert_int_equal(err.status, NDL_NOMEM);
                assert_true(err.msg[0] != 0);
                fails++;
            }
            assert_true(ok < 50);
        }
        print_message("  insert of slot %u: %ld injected failures\n", probes[pi], fails);
        if (pi != 2)
            assert_true(fails >= 1);
        total_fails += fails;
        next = probes[pi] + 1;
    }
    assert_true(total_fails >= 3);
    hfx_insert_range(&f, next, n);
    check_graph(&f, true);
    index_query q = {.k = 10, .ef = 128};
    eval e = evaluate(&f, queries, 50, &q);
    assert_true(e.recall >= 0.95);

    /* searches under memory pressure: the pooled scratch serves them */
    index_hit hits[10];
    ndl_alloc_fail_after(0);
    size_t nh = f.ix->m->search(f.ix, queries, &q, hits, NULL);
    ndl_alloc_fail_after(-1);
    assert_true(nh == 10 || nh == 0);
    /* a loaded index has no pooled scratch yet: its first search finds no
     * memory and returns nothing, the next one works */
    const char *p2 = tpath("nomem-small.hnsw");
    hfx f2;
    hfx_init(&f2, NDL_METRIC_L2, 12, 8, 48, 52);
    hfx_build(&f2, data, 100);
    assert_int_equal(f2.ix->m->save(f2.ix, p2, NULL), NDL_OK);
    hfx fresh = f2;
    assert_int_equal(load_fresh(&f2, &f2.arena, 8, p2, &fresh.ix, NULL), NDL_OK);
    ndl_alloc_fail_after(0);
    nh = fresh.ix->m->search(fresh.ix, queries, &q, hits, NULL);
    ndl_alloc_fail_after(-1);
    assert_int_equal(nh, 0);
    assert_int_equal(fresh.ix->m->search(fresh.ix, queries, &q, hits, NULL), 10);
    fresh.ix->m->destroy(fresh.ix);

    /* save under memory pressure fails cleanly, leaves no temporary */
    const char *path = tpath("nomem.hnsw");
    ndl_status rc = NDL_NOMEM;
    long save_fails = 0;
    for (long ok = 0; rc != NDL_OK; ok++) {
        ndl_error err = {0};
        ndl_alloc_fail_after(ok);
        rc = f.ix->m->save(f.ix, path, &err);
        ndl_alloc_fail_after(-1);
        if (rc != NDL_OK) {
            assert_int_equal(rc, NDL_NOMEM);
            assert_false(file_exists(path));
            assert_false(file_exists(tpath("nomem.hnsw.tmp")));
            save_fails++;
        }
        assert_true(ok < 50);
    }
    assert_true(save_fails >= 1);

    /* load under memory pressure: NDL_NOMEM from a fresh index each time */
    rc = NDL_NOMEM;
    long load_fails = 0;
    for (long ok = 0; rc != NDL_OK; ok++) {
        vindex *ix;
        assert_int_equal(hnsw_index_create(&f.sp, &f.arena, &f.p, &ix, NULL), NDL_OK);
        ndl_error err = {0};
        ndl_alloc_fail_after(ok);
        rc = ix->m->load(ix, path, &err);
        ndl_alloc_fail_after(-1);
        if (rc != NDL_OK) {
            assert_int_equal(rc, NDL_NOMEM);
            assert_int_equal(err.status, NDL_NOMEM);
            load_fails++;
            ix->m->destroy(ix);
        } else {
            hfx g = f;
            g.ix = ix;
            same_results(&f, &g, queries, 50, &q);
            ix->m->destroy(ix);
        }
        assert_true(ok < 2000);
    }
    print_message("  load: %ld injected failures\n", load_fails);
    assert_true(load_fails >= 2);
    hfx_destroy(&f2);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

/* ---- more than one chunk of nodes */

static void test_hnsw_multi_chunk(void **state)
{
    (void)state;
    const uint32_t n = ARENA_CHUNK_SLOTS + 1500;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 3, 6, 24, 71);
    char *data, *queries;
    make_data(&f.sp, n, 20, 0, 7171, &data, &queries);
    hfx_append_all(&f, data, n);
    par_ctx c = {.f = &f, .n = n};
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&th[t], NULL, par_inserter, &c), 0);
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(atomic_load(&c.failures), 0);
    check_graph(&f, true);
    /* queries: random ones and stored vectors on both sides of the boundary */
    char *qs = malloc(40 * f.sp.vec_bytes);
    assert_non_null(qs);
    memcpy(qs, queries, 20 * f.sp.vec_bytes);
    for (uint32_t i = 0; i < 20; i++)
        memcpy(qs + (20 + i) * f.sp.vec_bytes,
               arena_rec(&f.arena, ARENA_CHUNK_SLOTS - 250 + 25 * i), f.sp.vec_bytes);
    index_query q = {.k = 10, .ef = 64};
    eval e = evaluate(&f, qs, 40, &q);
    assert_true(e.recall >= 0.95);
    assert_true(e.max_visited < n / 10);
    /* a deleted run across the boundary */
    bitset del;
    assert_int_equal(bitset_init(&del, NULL), NDL_OK);
    for (uint32_t s = ARENA_CHUNK_SLOTS - 300; s < ARENA_CHUNK_SLOTS + 300; s++) {
        bitset_set(&del, s);
        f.ix->m->remove(f.ix, s);
    }
    q.deleted = &del;
    e = evaluate(&f, qs, 40, &q);
    assert_true(e.recall >= 0.95);
    /* the file round trip spans both chunks */
    const char *path = tpath("chunks.hnsw"), *path2 = tpath("chunks2.hnsw");
    assert_int_equal(f.ix->m->save(f.ix, path, NULL), NDL_OK);
    hfx g = f;
    assert_int_equal(load_fresh(&f, &f.arena, f.p.m, path, &g.ix, NULL), NDL_OK);
    check_graph(&g, false);
    same_results(&f, &g, qs, 40, &q);
    assert_int_equal(g.ix->m->save(g.ix, path2, NULL), NDL_OK);
    size_t l1, l2;
    unsigned char *b1 = read_all(path, &l1), *b2 = read_all(path2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    free(b1);
    free(b2);
    g.ix->m->destroy(g.ix);
    bitset_destroy(&del);
    free(qs);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

/* ---- scratch reuse */

/* A pooled scratch's visited set is empty at the start of every walk, both
 * when it is cleared word by word (a small walk) and whole (a walk that
 * dirtied more words than the list holds): searches in a mixed order, after
 * walks of every size, give exactly what each gives as the first search of a
 * fresh clone of the graph (whose scratch is new). */
static void test_hnsw_visited_set_cleared(void **state)
{
    (void)state;
    const uint32_t n = 20000;
    hfx f;
    hfx_init(&f, NDL_METRIC_L2, 8, 8, 40, 61);
    char *data, *queries;
    make_data(&f.sp, n, 8, 0, 6161, &data, &queries);
    hfx_build(&f, data, n);
    const hnsw *h = (const hnsw *)f.ix;
    const uint32_t efs[] = {3, 10, 3000};
    index_hit first[8][3][3], hits[3];
    size_t nfirst[8][3];
    for (size_t i = 0; i < 8; i++)
        for (size_t e = 0; e < 3; e++) {
            index_query q = {.k = 3, .ef = efs[e]};
            vindex *fresh;
            assert_int_equal(f.ix->m->clone(f.ix, &fresh, NULL), NDL_OK);
            nfirst[i][e] = fresh->m->search(fresh, queries + i * f.sp.vec_bytes, &q, first[i][e],
                                            NULL);
            fresh->m->destroy(fresh);
        }
    uint32_t by_word = 0, whole = 0;
    for (uint32_t it = 0; it < 500; it++) {
        size_t i = (it * 5) & 7, e = (it * 7 + it / 8) % 3;
        index_query q = {.k = 3, .ef = efs[e]};
        size_t nh = f.ix->m->search(f.ix, queries + i * f.sp.vec_bytes, &q, hits, NULL);
        if (nh != nfirst[i][e] || memcmp(hits, first[i][e], nh * sizeof *hits) != 0)
            fail_msg("search %u (query %zu, ef %u) differs from the first results", it, i,
                     efs[e]);
        /* how the next walk will clear what this one left (one pooled scratch) */
        assert_non_null(h->pool);
        assert_null(h->pool->next);
        if (h->pool->dirty_n > h->pool->dirty_cap)
            whole++;
        else
            by_word++;
    }
    assert_true(by_word > 0);
    assert_true(whole > 0);
    free(data);
    free(queries);
    hfx_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hnsw_create_and_methods),
        cmocka_unit_test(test_hnsw_empty_and_small),
        cmocka_unit_test(test_hnsw_recall_l2),
        cmocka_unit_test(test_hnsw_recall_cosine),
        cmocka_unit_test(test_hnsw_recall_ip),
        cmocka_unit_test(test_hnsw_recall_l1),
        cmocka_unit_test(test_hnsw_recall_hamming),
        cmocka_unit_test(test_hnsw_deterministic_seed),
        cmocka_unit_test(test_hnsw_parallel_build),
        cmocka_unit_test(test_hnsw_search_during_insert),
        cmocka_unit_test(test_hnsw_delete_and_upsert),
        cmocka_unit_test(test_hnsw_replace_every_node),
        cmocka_unit_test(test_hnsw_delete_all_then_insert),
        cmocka_unit_test(test_hnsw_filter_selectivity),
        cmocka_unit_test(test_hnsw_save_load),
        cmocka_unit_test(test_hnsw_clone_is_frozen),
        cmocka_unit_test(test_hnsw_compact_keeps_everything_reachable),
        cmocka_unit_test(test_hnsw_compact_keeps_live_links),
        cmocka_unit_test(test_hnsw_load_rejects_damage),
        cmocka_unit_test(test_hnsw_load_rejects_upper_link_to_lower_node),
        cmocka_unit_test(test_hnsw_insert_nomem),
        cmocka_unit_test(test_hnsw_multi_chunk),
        cmocka_unit_test(test_hnsw_visited_set_cleared),
    };
    /* HNSW_TEST_FILTER=pattern runs the matching tests only (e.g. to repeat
     * the threaded ones) */
    const char *filter = getenv("HNSW_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
