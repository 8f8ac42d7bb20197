/*
 * test_flat.c -- the exact index (src/index/flat.c, space.c): single-query
 * scans and flat_search_batch against a naive brute force over the scalar
 * kernels, for every metric, with deleted slots, filters, several arena
 * chunks, k > n, threads and out-of-memory paths.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "index/index.h"
#include "util/alloc.h"

/* ---------------------------------------------------------------- fixtures */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* splitmix64: seeded, the same data on every run */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_float(void) { return (float)(rng_next() >> 40) / (float)(1u << 24) * 2.0f - 1.0f; }

/* One random vector in the stored form of metric (cosine: unit length;
 * hamming: packed bits, unused high bits zero). */
static void random_vec(const index_space *sp, void *out)
{
    if (sp->metric == NDL_METRIC_HAMMING) {
        uint8_t *b = out;
        for (size_t i = 0; i < sp->n; i++)
            b[i] = (uint8_t)rng_next();
        if (sp->dim % 8)
            b[sp->n - 1] &= (uint8_t)((1u << (sp->dim % 8)) - 1);
        return;
    }
    float *f = out;
    double norm = 0;
    for (uint32_t i = 0; i < sp->dim; i++) {
        f[i] = rng_float();
        norm += (double)f[i] * f[i];
    }
    if (sp->metric == NDL_METRIC_COSINE)
        for (uint32_t i = 0; i < sp->dim; i++)
            f[i] = (float)(f[i] / sqrt(norm));
}

typedef struct fixture {
    index_space sp;
    vec_arena arena;
    vindex *ix;
    char *queries; /* nq * vec_bytes */
    size_t nq;
} fixture;

static void fixture_init(fixture *fx, ndl_metric metric, uint32_t dim, uint32_t n, size_t nq,
                         uint64_t seed)
{
    rng_state = seed;
    index_space_init(&fx->sp, metric, dim);
    assert_int_equal(arena_init(&fx->arena, fx->sp.vec_bytes, NULL), NDL_OK);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot;
        void *rec;
        assert_int_equal(arena_reserve(&fx->arena, &slot, &rec, NULL), NDL_OK);
        assert_int_equal(slot, i);
        random_vec(&fx->sp, rec);
        arena_publish(&fx->arena, i + 1);
    }
    assert_int_equal(flat_index_create(&fx->sp, &fx->arena, &fx->ix, NULL), NDL_OK);
    fx->nq = nq;
    fx->queries = malloc(NDL_MAX(nq, 1) * fx->sp.vec_bytes);
    assert_non_null(fx->queries);
    for (size_t i = 0; i < nq; i++)
        random_vec(&fx->sp, fx->queries + i * fx->sp.vec_bytes);
}

static void fixture_destroy(fixture *fx)
{
    fx->ix->m->destroy(fx->ix);
    arena_destroy(&fx->arena);
    free(fx->queries);
}

static const void *fx_query(const fixture *fx, size_t i)
{
    return fx->queries + i * fx->sp.vec_bytes;
}

/* The scalar reference of each internal distance. */
static float ref_dist(const index_space *sp, const void *a, const void *b)
{
    const simd_kernels *s = &simd_scalar_kernels;
    switch (sp->metric) {
    case NDL_METRIC_L2:
        return s->l2sq_f32(a, b, sp->n);
    case NDL_METRIC_IP:
    case NDL_METRIC_COSINE:
        return s->negdot_f32(a, b, sp->n);
    case NDL_METRIC_L1:
        return s->l1_f32(a, b, sp->n);
    case NDL_METRIC_HAMMING:
        return s->hamming_u8(a, b, sp->n);
    }
    return NAN;
}

static int allow_mod3(void *ctx, uint32_t slot)
{
    (void)ctx;
    return slot % 3 == 0;
}

static int allow_listed(void *ctx, uint32_t slot)
{
    const uint32_t *list = ctx; /* list[0] entries follow */
    for (uint32_t i = 1; i <= list[0]; i++)
        if (list[i] == slot)
            return 1;
    return 0;
}

static int hit_cmp(const void *pa, const void *pb)
{
    const index_hit *a = pa, *b = pb;
    if (a->dist != b->dist)
        return a->dist < b->dist ? -1 : 1;
    return (a->slot > b->slot) - (a->slot < b->slot);
}

static int near(float a, float b, float rel)
{
    return fabsf(a - b) <= rel * fmaxf(1.0f, fmaxf(fabsf(a), fabsf(b)));
}

/* Check hits against a brute force over every allowed slot: the count is
 * min(k, allowed), distances ascend and match the reference (rank by rank
 * and slot by slot), slots are distinct and allowed; where the reference has
 * no near-tie the slots must be the reference's. */
static void check_brute(const fixture *fx, const void *query, const index_query *q,
                        const index_hit *hits, size_t nhits)
{
    uint32_t n = arena_count(&fx->arena);
    index_hit *ref = malloc((size_t)NDL_MAX(n, 1) * sizeof *ref);
    assert_non_null(ref);
    size_t nref = 0;
    for (uint32_t s = 0; s < n; s++)
        if (index_query_allows(q, s))
            ref[nref++] = (index_hit){.dist = ref_dist(&fx->sp, query, arena_rec(&fx->arena, s)),
                                      .slot = s};
    qsort(ref, nref, sizeof *ref, hit_cmp);
    assert_int_equal(nhits, NDL_MIN((size_t)q->k, nref));
    const float tol = 1e-4f;
    for (size_t i = 0; i < nhits; i++) {
        uint32_t s = hits[i].slot;
        assert_true(s < n);
        assert_true(index_query_allows(q, s));
        assert_true(near(hits[i].dist, ref_dist(&fx->sp, query, arena_rec(&fx->arena, s)), tol));
        assert_true(near(hits[i].dist, ref[i].dist, tol));
        if (i > 0)
            assert_true(hits[i - 1].dist <= hits[i].dist);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(hits[j].slot, s);
        bool tie_before = i > 0 && near(ref[i - 1].dist, ref[i].dist, 1e-3f);
        bool tie_after = i + 1 < nref && near(ref[i + 1].dist, ref[i].dist, 1e-3f);
        if (!tie_before && !tie_after)
            assert_int_equal(s, ref[i].slot);
    }
    free(ref);
}

/* Batch rows equal single-query results: same counts, same slots where there
 * is no near-tie, distances within 1e-3 relative. */
static void check_same(const index_hit *a, size_t na, const index_hit *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_true(near(a[i].dist, b[i].dist, 1e-3f));
        bool tie = (i > 0 && near(a[i - 1].dist, a[i].dist, 1e-3f)) ||
                   (i + 1 < na && near(a[i + 1].dist, a[i].dist, 1e-3f));
        if (!tie)
            assert_int_equal(a[i].slot, b[i].slot);
    }
}

/* Every query of fx through search (against brute force), then through
 * flat_search_batch with 1 and 2 threads (against the single results). */
static void check_all(const fixture *fx, const index_query *q)
{
    size_t k = q->k, nq = fx->nq;
    index_hit *single = malloc(NDL_MAX(nq, 1) * k * sizeof *single);
    size_t *nsingle = malloc(NDL_MAX(nq, 1) * sizeof *nsingle);
    index_hit *batch = malloc(NDL_MAX(nq, 1) * k * sizeof *batch);
    size_t *counts = malloc(NDL_MAX(nq, 1) * sizeof *counts);
    assert_true(single && nsingle && batch && counts);
    uint32_t allowed = 0;
    for (uint32_t s = 0; s < arena_count(&fx->arena); s++)
        allowed += index_query_allows(q, s);
    for (size_t i = 0; i < nq; i++) {
        index_stats st = {0};
        nsingle[i] = fx->ix->m->search(fx->ix, fx_query(fx, i), q, single + i * k, &st);
        check_brute(fx, fx_query(fx, i), q, single + i * k, nsingle[i]);
        /* a distance for every allowed slot, none for the others */
        assert_int_equal(st.visited, allowed);
    }
    for (uint32_t threads = 1; threads <= 2; threads++) {
        memset(batch, 0xff, nq * k * sizeof *batch);
        assert_int_equal(flat_search_batch(&fx->sp, &fx->arena, nq, fx->queries, q, threads, batch,
                                           counts, NULL),
                         NDL_OK);
        for (size_t i = 0; i < nq; i++)
            check_same(single + i * k, nsingle[i], batch + i * k, counts[i]);
    }
    free(single);
    free(nsingle);
    free(batch);
    free(counts);
}

static const ndl_metric all_metrics[] = {NDL_METRIC_L2, NDL_METRIC_IP, NDL_METRIC_COSINE,
                                         NDL_METRIC_L1, NDL_METRIC_HAMMING};

/* ---------------------------------------------------------------- tests */

static void test_flat_space_init(void **state)
{
    (void)state;
    const simd_kernels *k = simd_get();
    index_space s;
    index_space_init(&s, NDL_METRIC_L2, 100);
    assert_true(s.dist == k->l2sq_f32 && s.n == 100 && s.vec_bytes == 400 && s.dim == 100);
    index_space_init(&s, NDL_METRIC_IP, 7);
    assert_true(s.dist == k->negdot_f32 && s.n == 7 && s.vec_bytes == 28);
    index_space_init(&s, NDL_METRIC_COSINE, 3);
    assert_true(s.dist == k->negdot_f32 && s.n == 3 && s.vec_bytes == 12);
    index_space_init(&s, NDL_METRIC_L1, 5);
    assert_true(s.dist == k->l1_f32 && s.n == 5 && s.vec_bytes == 20);
    index_space_init(&s, NDL_METRIC_HAMMING, 70);
    assert_true(s.dist == k->hamming_u8 && s.n == 9 && s.vec_bytes == 9 && s.dim == 70);
    index_space_init(&s, NDL_METRIC_HAMMING, 64);
    assert_true(s.n == 8 && s.vec_bytes == 8);
}

static void test_flat_methods(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, NDL_METRIC_L2, 8, 10, 0, 1);
    vindex *ix = fx.ix;
    assert_string_equal(ix->m->name, "flat");
    assert_int_equal(ix->m->version, 1);
    assert_ptr_equal(ix->space, &fx.sp);
    assert_ptr_equal(ix->arena, &fx.arena);
    assert_int_equal(ix->m->insert(ix, 3, NULL), NDL_OK);
    ix->m->remove(ix, 3);
    assert_int_equal(ix->m->save(ix, "/nonexistent/flat.idx", NULL), NDL_OK);
    assert_int_equal(ix->m->load(ix, "/nonexistent/flat.idx", NULL), NDL_OK);
    assert_true(ix->m->memory_bytes(ix) >= sizeof(vindex));
    fixture_destroy(&fx);
}

static void test_flat_create_nomem(void **state)
{
    (void)state;
    index_space sp;
    index_space_init(&sp, NDL_METRIC_L2, 4);
    vec_arena a;
    assert_int_equal(arena_init(&a, sp.vec_bytes, NULL), NDL_OK);
    vindex *ix = (vindex *)&sp;
    ndl_error err = {0};
    ndl_alloc_fail_after(0);
    assert_int_equal(flat_index_create(&sp, &a, &ix, &err), NDL_NOMEM);
    ndl_alloc_fail_after(-1);
    assert_null(ix);
    assert_int_equal(err.status, NDL_NOMEM);
    arena_destroy(&a);
}

/* Every metric, dimensions that are and are not multiples of the SIMD
 * widths, k = 1, 10 and k > n. */
static void test_flat_matches_brute_force(void **state)
{
    (void)state;
    const uint32_t f32_dims[] = {1, 7, 24, 37, 130};
    const uint32_t bit_dims[] = {1, 70, 256, 1001};
    for (size_t mi = 0; mi < NDL_ARRAY_LEN(all_metrics); mi++) {
        bool bits = all_metrics[mi] == NDL_METRIC_HAMMING;
        size_t ndims = bits ? NDL_ARRAY_LEN(bit_dims) : NDL_ARRAY_LEN(f32_dims);
        for (size_t di = 0; di < ndims; di++) {
            fixture fx;
            fixture_init(&fx, all_metrics[mi], bits ? bit_dims[di] : f32_dims[di], 600, 9,
                         100 + mi * 10 + di);
            const uint32_t ks[] = {1, 10, 650};
            for (size_t ki = 0; ki < NDL_ARRAY_LEN(ks); ki++) {
                index_query q = {.k = ks[ki], .ef = ks[ki]};
                check_all(&fx, &q);
            }
            fixture_destroy(&fx);
        }
    }
}

/* Deleted slots and an allow filter, alone and together. */
static void test_flat_deleted_and_filter(void **state)
{
    (void)state;
    bitset del;
    assert_int_equal(bitset_init(&del, NULL), NDL_OK);
    for (size_t mi = 0; mi < NDL_ARRAY_LEN(all_metrics); mi++) {
        fixture fx;
        uint32_t dim = all_metrics[mi] == NDL_METRIC_HAMMING ? 33 : 17;
        fixture_init(&fx, all_metrics[mi], dim, 1500, 8, 200 + mi);
        /* a whole 64-slot word, a scatter, the last slot */
        for (uint32_t s = 128; s < 192; s++)
            bitset_set(&del, s);
        for (uint32_t s = 0; s < 1500; s += 7)
            bitset_set(&del, s);
        bitset_set(&del, 1499);
        const uint32_t ks[] = {1, 10, 2000};
        for (size_t ki = 0; ki < NDL_ARRAY_LEN(ks); ki++) {
            index_query q = {.k = ks[ki], .deleted = &del};
            check_all(&fx, &q);
            q.allow = allow_mod3;
            check_all(&fx, &q);
            q.deleted = NULL;
            check_all(&fx, &q);
        }
        for (uint32_t s = 0; s < 1500; s++)
            bitset_clear(&del, s);
        fixture_destroy(&fx);
    }
    bitset_destroy(&del);
}

/* A filter that matches fewer than k slots returns exactly those. */
static void test_flat_filter_fewer_than_k(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, NDL_METRIC_L2, 12, 3000, 6, 300);
    uint32_t list[] = {5, 0, 17, 1024, 2047, 2999};
    index_query q = {.k = 10, .allow = allow_listed, .allow_ctx = list};
    check_all(&fx, &q);
    index_hit hits[10];
    size_t n = fx.ix->m->search(fx.ix, fx_query(&fx, 0), &q, hits, NULL);
    assert_int_equal(n, 5);
    fixture_destroy(&fx);
}

/* Enough queries for several sgemm query blocks, enough points for several
 * base blocks with a ragged last one. */
static void test_flat_batch_many_blocks(void **state)
{
    (void)state;
    const ndl_metric ms[] = {NDL_METRIC_L2, NDL_METRIC_IP, NDL_METRIC_COSINE};
    for (size_t mi = 0; mi < NDL_ARRAY_LEN(ms); mi++) {
        fixture fx;
        fixture_init(&fx, ms[mi], 9, 2500, 300, 400 + mi);
        index_query q = {.k = 5};
        check_all(&fx, &q);
        fixture_destroy(&fx);
    }
}

/* 70000 points span two arena chunks; a deleted run crosses the boundary. */
static void test_flat_multi_chunk(void **state)
{
    (void)state;
    bitset del;
    assert_int_equal(bitset_init(&del, NULL), NDL_OK);
    for (uint32_t s = ARENA_CHUNK_SLOTS - 100; s < ARENA_CHUNK_SLOTS + 100; s++)
        bitset_set(&del, s);
    const ndl_metric ms[] = {NDL_METRIC_L2, NDL_METRIC_IP, NDL_METRIC_L1};
    for (size_t mi = 0; mi < NDL_ARRAY_LEN(ms); mi++) {
        fixture fx;
        fixture_init(&fx, ms[mi], 4, 70000, 8, 500 + mi);
        /* queries next to stored points of both chunks */
        memcpy(fx.queries, arena_rec(&fx.arena, 3), fx.sp.vec_bytes);
        memcpy(fx.queries + fx.sp.vec_bytes, arena_rec(&fx.arena, 69999), fx.sp.vec_bytes);
        index_query q = {.k = 10};
        check_all(&fx, &q);
        q.deleted = &del;
        check_all(&fx, &q);
        if (ms[mi] == NDL_METRIC_L2) {
            /* a query equal to a stored point finds it at distance 0, batch too */
            index_hit hits[10];
            size_t counts[8];
            assert_int_equal(fx.ix->m->search(fx.ix, fx_query(&fx, 1), &q, hits, NULL), 10);
            assert_int_equal(hits[0].slot, 69999);
            assert_true(hits[0].dist == 0.0f);
            index_hit *b = malloc(8 * 10 * sizeof *b);
            assert_non_null(b);
            assert_int_equal(flat_search_batch(&fx.sp, &fx.arena, 8, fx.queries, &q, 1, b, counts,
                                               NULL),
                             NDL_OK);
            assert_int_equal(b[10].slot, 69999);
            assert_true(b[10].dist == 0.0f);
            free(b);
        }
        fixture_destroy(&fx);
    }
    bitset_destroy(&del);
}

/* k up to NDL_K_MAX, more than the points there are. */
static void test_flat_large_k(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, NDL_METRIC_L2, 6, 3000, 5, 600);
    index_query q = {.k = NDL_K_MAX};
    check_all(&fx, &q);
    fixture_destroy(&fx);
    fixture_init(&fx, NDL_METRIC_IP, 6, 12000, 5, 601);
    check_all(&fx, &q);
    fixture_destroy(&fx);
}

static void test_flat_empty_arena(void **state)
{
    (void)state;
    for (size_t mi = 0; mi < NDL_ARRAY_LEN(all_metrics); mi++) {
        fixture fx;
        fixture_init(&fx, all_metrics[mi], 16, 0, 8, 700);
        index_query q = {.k = 10};
        index_hit hits[8 * 10];
        size_t counts[8];
        assert_int_equal(fx.ix->m->search(fx.ix, fx_query(&fx, 0), &q, hits, NULL), 0);
        memset(counts, 0xff, sizeof counts);
        assert_int_equal(flat_search_batch(&fx.sp, &fx.arena, 8, fx.queries, &q, 2, hits, counts,
                                           NULL),
                         NDL_OK);
        for (size_t i = 0; i < 8; i++)
            assert_int_equal(counts[i], 0);
        /* zero queries is not an error either */
        assert_int_equal(flat_search_batch(&fx.sp, &fx.arena, 0, fx.queries, &q, 1, hits, counts,
                                           NULL),
                         NDL_OK);
        fixture_destroy(&fx);
    }
}

/* More threads than queries, and few queries per thread (the scan path). */
static void test_flat_batch_threads_exceed_queries(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, NDL_METRIC_L2, 20, 900, 3, 800);
    index_query q = {.k = 7};
    index_hit single[3 * 7], batch[3 * 7];
    size_t counts[3];
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(fx.ix->m->search(fx.ix, fx_query(&fx, i), &q, single + i * 7, NULL), 7);
    assert_int_equal(flat_search_batch(&fx.sp, &fx.arena, 3, fx.queries, &q, 16, batch, counts,
                                       NULL),
                     NDL_OK);
    for (size_t i = 0; i < 3; i++)
        check_same(single + i * 7, 7, batch + i * 7, counts[i]);
    fixture_destroy(&fx);
}

/* Every allocation of a batch search may fail: NDL_NOMEM with a message,
 * until enough succeed and the results are right. */
static void test_flat_batch_nomem(void **state)
{
    (void)state;
    const ndl_metric ms[] = {NDL_METRIC_L2, NDL_METRIC_L1};
    for (size_t mi = 0; mi < NDL_ARRAY_LEN(ms); mi++) {
        fixture fx;
        fixture_init(&fx, ms[mi], 8, 500, 40, 900);
        index_query q = {.k = 4};
        index_hit hits[40 * 4];
        size_t counts[40];
        ndl_status rc = NDL_NOMEM;
        long fails = 0;
        for (long ok = 0; rc != NDL_OK; ok++) {
            ndl_error err = {0};
            ndl_alloc_fail_after(ok);
            rc = flat_search_batch(&fx.sp, &fx.arena, 40, fx.queries, &q, 2, hits, counts, &err);
            ndl_alloc_fail_after(-1);
            if (rc != NDL_OK) {
                assert_int_equal(rc, NDL_NOMEM);
                assert_int_equal(err.status, NDL_NOMEM);
                assert_true(err.msg[0] != 0);
                fails++;
            }
            assert_true(ok < 100);
        }
        assert_true(fails >= 1);
        for (size_t i = 0; i < 40; i++)
            check_brute(&fx, fx_query(&fx, i), &q, hits + i * 4, counts[i]);
        fixture_destroy(&fx);
    }
}


/* Deleted and filtered patterns that cut 64-slot groups into runs: every
 * other slot, runs of 3 in 5, whole groups gone, one slot left per group. */
static int allow_runs(void *ctx, uint32_t slot)
{
    (void)ctx;
    return slot % 5 < 3;
}

static int allow_none(void *ctx, uint32_t slot)
{
    (void)ctx, (void)slot;
    return 0;
}

static void test_flat_sparse_patterns(void **state)
{
    (void)state;
    bitset del;
    assert_int_equal(bitset_init(&del, NULL), NDL_OK);
    const ndl_metric ms[] = {NDL_METRIC_L2, NDL_METRIC_L1, NDL_METRIC_HAMMING};
    for (size_t mi = 0; mi < NDL_ARRAY_LEN(ms); mi++) {
        fixture fx;
        fixture_init(&fx, ms[mi], ms[mi] == NDL_METRIC_HAMMING ? 100 : 11, 1000, 4, 1000 + mi);
        for (uint32_t s = 0; s < 256; s += 2)          /* every other slot */
            bitset_set(&del, s);
        for (uint32_t s = 256; s < 512; s++)           /* four whole groups */
            bitset_set(&del, s);
        for (uint32_t s = 512; s < 1000; s++)          /* one slot per group */
            if (s % 64 != 17)
                bitset_set(&del, s);
        index_query q = {.k = 20, .deleted = &del};
        check_all(&fx, &q);
        q.allow = allow_runs;
        check_all(&fx, &q);
        q.deleted = NULL;
        check_all(&fx, &q);
        q.allow = allow_none;
        check_all(&fx, &q);
        index_hit hits[20];
        assert_int_equal(fx.ix->m->search(fx.ix, fx_query(&fx, 0), &q, hits, NULL), 0);
        for (uint32_t s = 0; s < 1000; s++)
            bitset_clear(&del, s);
        fixture_destroy(&fx);
    }
    bitset_destroy(&del);
}

/* Many identical vectors: every result ties, still k distinct slots. */
static void test_flat_duplicates(void **state)
{
    (void)state;
    const ndl_metric ms[] = {NDL_METRIC_L2, NDL_METRIC_IP, NDL_METRIC_HAMMING};
    for (size_t mi = 0; mi < NDL_ARRAY_LEN(ms); mi++) {
        fixture fx;
        fixture_init(&fx, ms[mi], 19, 700, 12, 1100 + mi);
        for (uint32_t s = 1; s < 700; s++)
            memcpy(arena_rec(&fx.arena, s), arena_rec(&fx.arena, 0), fx.sp.vec_bytes);
        index_query q = {.k = 15};
        check_all(&fx, &q);
        /* ties are ordered by slot: the scan keeps the first 15 slots; sgemm
         * may round copies at different block positions differently, so the
         * batch may keep other ones, but still in slot order */
        index_hit hits[12 * 15];
        size_t counts[12];
        assert_int_equal(fx.ix->m->search(fx.ix, fx_query(&fx, 0), &q, hits, NULL), 15);
        for (uint32_t r = 0; r < 15; r++)
            assert_int_equal(hits[r].slot, r);
        assert_int_equal(flat_search_batch(&fx.sp, &fx.arena, 12, fx.queries, &q, 2, hits, counts,
                                           NULL),
                         NDL_OK);
        for (size_t i = 0; i < 12; i++) {
            assert_int_equal(counts[i], 15);
            for (uint32_t r = 1; r < 15; r++)
                assert_true(hits[i * 15 + r - 1].slot < hits[i * 15 + r].slot);
        }
        fixture_destroy(&fx);
    }
}

/* The l1 and hamming batch scans a block of records per turn: enough points
 * for several blocks (and a second chunk), enough queries for both threads. */
static void test_flat_batch_scan_blocks(void **state)
{
    (void)state;
    bitset del;
    assert_int_equal(bitset_init(&del, NULL), NDL_OK);
    for (uint32_t s = 0; s < 70000; s += 3)
        bitset_set(&del, s);
    fixture fx;
    fixture_init(&fx, NDL_METRIC_HAMMING, 1000, 5000, 20, 1200); /* 125 bytes: 2048 per block */
    index_query q = {.k = 7, .deleted = &del, .allow = allow_mod3};
    check_all(&fx, &q);
    q.allow = NULL;
    check_all(&fx, &q);
    fixture_destroy(&fx);
    fixture_init(&fx, NDL_METRIC_L1, 3, 66000, 9, 1201); /* 12 bytes: 21824 per block */
    check_all(&fx, &q);
    fixture_destroy(&fx);
    bitset_destroy(&del);
}

/* A space whose kernel is not one of the SIMD tables' still scans (one call
 * per record instead of the many kernel). */
static float l2sq_by_hand(const void *va, const void *vb, size_t n)
{
    const float *a = va, *b = vb;
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
}

static void test_flat_custom_kernel(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, NDL_METRIC_L1, 13, 900, 5, 1300);
    fx.sp.metric = NDL_METRIC_L2; /* l2 data is any float data */
    fx.sp.dist = l2sq_by_hand;
    assert_null(simd_many_for(fx.sp.dist));
    bitset del;
    assert_int_equal(bitset_init(&del, NULL), NDL_OK);
    for (uint32_t s = 5; s < 900; s += 11)
        bitset_set(&del, s);
    index_query q = {.k = 9, .deleted = &del};
    check_all(&fx, &q);
    bitset_destroy(&del);
    fixture_destroy(&fx);
}

/* Searches from several threads at once share the index (it has no state). */
typedef struct search_arg {
    const fixture *fx;
    const index_query *q;
    index_hit hits[4][10];
    size_t n[4];
} search_arg;

static void *search_thread(void *p)
{
    search_arg *a = p;
    for (int rep = 0; rep < 20; rep++)
        for (size_t i = 0; i < 4; i++)
            a->n[i] = a->fx->ix->m->search(a->fx->ix, fx_query(a->fx, i), a->q, a->hits[i], NULL);
    return NULL;
}

static void test_flat_concurrent_searches(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, NDL_METRIC_L2, 32, 3000, 4, 1400);
    index_query q = {.k = 10};
    search_arg args[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (search_arg){.fx = &fx, .q = &q};
        assert_int_equal(pthread_create(&t[i], NULL, search_thread, &args[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 3; i++)
        for (size_t j = 0; j < 4; j++) {
            check_brute(&fx, fx_query(&fx, j), &q, args[i].hits[j], args[i].n[j]);
            assert_memory_equal(args[i].hits[j], args[0].hits[j], sizeof args[0].hits[j]);
        }
    fixture_destroy(&fx);
}

/* Finite vectors whose inner product overflows to inf - inf = NaN rank last
 * (as +inf) instead of freezing the heap; single and batch agree. */
static void test_flat_nan_distances_rank_last(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, NDL_METRIC_IP, 2, 200, 8, 1500);
    for (uint32_t s = 0; s < 200; s += 10) { /* 20 poisoned slots, first among them */
        float *v = arena_rec(&fx.arena, s);
        v[0] = 1e30f;
        v[1] = -1e30f;
    }
    for (size_t i = 0; i < 8; i++) {
        float *qv = (float *)(void *)(fx.queries + i * fx.sp.vec_bytes);
        qv[0] = qv[1] = 1e30f;
    }
    const uint32_t ks[] = {5, 190};
    for (size_t ki = 0; ki < NDL_ARRAY_LEN(ks); ki++) {
        uint32_t k = ks[ki];
        index_query q = {.k = k};
        index_hit *hits = malloc(8 * k * sizeof *hits);
        size_t counts[8];
        assert_non_null(hits);
        for (int batch = 0; batch < 2; batch++) {
            if (batch)
                assert_int_equal(flat_search_batch(&fx.sp, &fx.arena, 8, fx.queries, &q, 1, hits,
                                                   counts, NULL),
                                 NDL_OK);
            for (size_t i = 0; i < 8; i++) {
                const index_hit *h = hits + i * k;
                size_t n = batch ? counts[i]
                                 : fx.ix->m->search(fx.ix, fx_query(&fx, i), &q, hits + i * k, NULL);
                assert_int_equal(n, k);
                /* the 180 finite slots first, best first, then the poisoned ones */
                for (size_t r = 0; r < n; r++) {
                    if (r < 180) {
                        assert_true(h[r].slot % 10 != 0);
                        assert_true(isfinite(h[r].dist));
                    } else {
                        assert_true(h[r].slot % 10 == 0);
                        assert_true(h[r].dist == INFINITY);
                    }
                    if (r > 0)
                        assert_true(h[r - 1].dist <= h[r].dist);
                }
            }
        }
        free(hits);
    }
    fixture_destroy(&fx);

    /* l2 near 1e20: the norms overflow in the sgemm expansion, the
     * differences do not; batch still finds the kernel's nearest. */
    fixture_init(&fx, NDL_METRIC_L2, 3, 300, 6, 1501);
    for (uint32_t s = 0; s < 300; s++) {
        float *v = arena_rec(&fx.arena, s);
        for (int c = 0; c < 3; c++)
            v[c] = 1e20f + v[c] * 1e17f;
    }
    for (size_t i = 0; i < 6; i++) {
        float *qv = (float *)(void *)(fx.queries + i * fx.sp.vec_bytes);
        for (int c = 0; c < 3; c++)
            qv[c] = 1e20f + qv[c] * 1e17f;
    }
    index_query q = {.k = 10};
    check_all(&fx, &q);
    fixture_destroy(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_space_init),
        cmocka_unit_test(test_flat_methods),
        cmocka_unit_test(test_flat_create_nomem),
        cmocka_unit_test(test_flat_matches_brute_force),
        cmocka_unit_test(test_flat_deleted_and_filter),
        cmocka_unit_test(test_flat_filter_fewer_than_k),
        cmocka_unit_test(test_flat_batch_many_blocks),
        cmocka_unit_test(test_flat_multi_chunk),
        cmocka_unit_test(test_flat_large_k),
        cmocka_unit_test(test_flat_empty_arena),
        cmocka_unit_test(test_flat_batch_threads_exceed_queries),
        cmocka_unit_test(test_flat_batch_nomem),
        cmocka_unit_test(test_flat_sparse_patterns),
        cmocka_unit_test(test_flat_duplicates),
        cmocka_unit_test(test_flat_batch_scan_blocks),
        cmocka_unit_test(test_flat_custom_kernel),
        cmocka_unit_test(test_flat_concurrent_searches),
        cmocka_unit_test(test_flat_nan_distances_rank_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
