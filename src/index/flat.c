/*
 * flat.c -- the exact ("flat") index: one query scans every arena slot
 * (bandwidth-bound, streamed chunk by chunk with software prefetch), and
 * flat_search_batch turns many l2/ip/cosine queries into BLAS sgemm blocks
 * (compute-bound). Vectors live in the arena, so the index has no state.
 */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ scan */

/* How far ahead of the record being compared to prefetch. The hardware
 * prefetcher follows the stream too; this keeps more misses in flight. */
#ifndef SCAN_PREFETCH_BYTES
#define SCAN_PREFETCH_BYTES 1024
#endif

typedef struct scan {
    simd_dist_fn dist;
    const void *query;
    size_t n;          /* kernel length */
    size_t rec;        /* bytes per arena record */
    dheap h;           /* best hits so far (storage: the caller's output) */
    float worst;       /* h.v[0].dist once h is full, +inf before */
    const char *pf;    /* next cache line to prefetch */
    uint64_t visited;  /* distances computed */
} scan;

/* Called only for d < worst or while the heap is not full. */
static inline void scan_keep(scan *s, float d, uint32_t slot)
{
    if (s->h.n < s->h.cap) {
        maxheap_push(&s->h, d, slot);
        if (s->h.n == s->h.cap)
            s->worst = s->h.v[0].dist;
    } else if (d < s->worst) {
        maxheap_replace_top(&s->h, d, slot);
        s->worst = s->h.v[0].dist;
    }
}

/* cnt contiguous records from p (slots slot..), all allowed: the hot loop.
 * end bounds prefetching to the chunk. */
static void scan_dense(scan *s, const char *p, uint32_t slot, uint32_t cnt, const char *end)
{
    const simd_dist_fn dist = s->dist;
    const void *qv = s->query;
    const size_t n = s->n, rec = s->rec;
    const size_t ahead = rec + SCAN_PREFETCH_BYTES;
    const char *pf = s->pf < p ? p : s->pf;
    float worst = s->worst;
    for (uint32_t i = 0; i < cnt; i++, p += rec) {
        const char *want = p + ahead < end ? p + ahead : end;
        for (; pf < want; pf += NDL_CACHELINE)
            __builtin_prefetch(pf, 0, 0);
        float d = dist(qv, p, n);
        /* Fast reject; the second test only matters for +inf distances. */
        if (NDL_UNLIKELY(d < worst) || NDL_UNLIKELY(s->h.n < s->h.cap)) {
            scan_keep(s, d, slot + i);
            worst = s->worst;
        }
    }
    s->pf = pf;
    s->visited += cnt;
}

/* The records of slots first..first+cnt-1 (one chunk, first chunk-aligned). */
static void scan_chunk(scan *s, const index_query *q, const char *base, uint32_t first,
                       uint32_t cnt)
{
    const char *end = base + (size_t)cnt * s->rec;
    s->pf = base;
    if (!q->deleted && !q->allow) {
        scan_dense(s, base, first, cnt, end);
        return;
    }
    /* 64 slots per deleted-bitset word: whole live words take the hot loop. */
    assert(first % 64 == 0);
    for (uint32_t g = 0; g < cnt; g += 64) {
        uint32_t gn = NDL_MIN(64u, cnt - g);
        uint64_t live = gn == 64 ? ~(uint64_t)0 : ((uint64_t)1 << gn) - 1;
        if (q->deleted)
            live &= ~atomic_load_explicit(&q->deleted->words[(first + g) >> 6],
                                          memory_order_relaxed);
        const char *gp = base + (size_t)g * s->rec;
        if (live == ~(uint64_t)0 && !q->allow) {
            scan_dense(s, gp, first + g, 64, end);
            continue;
        }
        while (live) {
            unsigned i = (unsigned)__builtin_ctzll(live);
            live &= live - 1;
            uint32_t slot = first + g + i;
            if (q->allow && !q->allow(q->allow_ctx, slot))
                continue;
            float d = s->dist(s->query, gp + (size_t)i * s->rec, s->n);
            s->visited++;
            if (d < s->worst || s->h.n < s->h.cap)
                scan_keep(s, d, slot);
        }
    }
}

/* Best q->k of slots 0..count-1 into out, sorted; returns how many. */
static size_t flat_scan(const index_space *sp, const vec_arena *a, uint32_t count,
                        const void *query, const index_query *q, index_hit *out,
                        uint64_t *visited)
{
    scan s = {.dist = sp->dist, .query = query, .n = sp->n, .rec = a->rec_bytes,
              .worst = INFINITY};
    dheap_init(&s.h, out, q->k);
    if (q->k == 0)
        return 0;
    for (uint64_t first = 0; first < count; first += ARENA_CHUNK_SLOTS) {
        uint32_t cnt = (uint32_t)NDL_MIN((uint64_t)ARENA_CHUNK_SLOTS, count - first);
        scan_chunk(&s, q, arena_rec(a, (uint32_t)first), (uint32_t)first, cnt);
    }
    if (visited)
        *visited += s.visited;
    return maxheap_drain_sorted(&s.h, out);
}

/* ------------------------------------------------------------------ index */

typedef struct flat_index {
    vindex base; /* first: the collection holds a vindex * */
} flat_index;

/* Vectors are already in the arena; the scan finds them there. */
static ndl_status flat_insert(vindex *ix, uint32_t slot, ndl_error *err)
{
    (void)ix, (void)slot, (void)err;
    return NDL_OK;
}

/* Deleted slots are skipped through the query's bitset. */
static void flat_remove(vindex *ix, uint32_t slot) { (void)ix, (void)slot; }

/* stats->visited counts distances computed (slots scanned and allowed). */
static size_t flat_search(vindex *ix, const void *query, const index_query *q, index_hit *out,
                          index_stats *st)
{
    uint64_t visited = 0;
    size_t n = flat_scan(ix->space, ix->arena, arena_count(ix->arena), query, q, out, &visited);
    if (st)
        st->visited = visited;
    return n;
}

/* Nothing to persist: the arena is the index. */
static ndl_status flat_save(vindex *ix, const char *path, ndl_error *err)
{
    (void)ix, (void)path, (void)err;
    return NDL_OK;
}

static ndl_status flat_load(vindex *ix, const char *path, ndl_error *err)
{
    (void)ix, (void)path, (void)err;
    return NDL_OK;
}

static size_t flat_memory_bytes(const vindex *ix)
{
    (void)ix;
    return sizeof(flat_index);
}

static void flat_destroy(vindex *ix) { ndl_free(ix); }

static const index_methods flat_methods = {
    .version = 1,
    .name = "flat",
    .insert = flat_insert,
    .remove = flat_remove,
    .search = flat_search,
    .save = flat_save,
    .load = flat_load,
    .memory_bytes = flat_memory_bytes,
    .destroy = flat_destroy,
};

ndl_status flat_index_create(const index_space *space, const vec_arena *arena, vindex **out,
                             ndl_error *err)
{
    *out = NULL;
    flat_index *f = ndl_calloc(1, sizeof *f);
    if (!f)
        return ndl_err(err, NDL_NOMEM, "out of memory for a flat index");
    f->base.m = &flat_methods;
    f->base.space = space;
    f->base.arena = arena;
    *out = &f->base;
    return NDL_OK;
}

/* ------------------------------------------------------------------ batch */

/* One sgemm computes a query block x base block of dot products; the
 * product (BATCH_QB * BATCH_BB floats) stays in cache while the heaps
 * consume it. Base blocks never span arena chunks. */
#define BATCH_QB 256
#define BATCH_BB 1024
/* Below this many queries per thread, streaming scans beat sgemm. */
#define BATCH_MIN_QUERIES 4

typedef struct batch_query {
    dheap h;     /* storage: this query's row of the output */
    float worst; /* h.v[0].dist once full, +inf before */
    float norm;  /* ||q||^2 (l2) */
} batch_query;

typedef struct batch_job {
    const index_space *sp;
    const vec_arena *a;
    uint32_t count;           /* slots 0..count-1 */
    const char *queries;      /* nq * vec_bytes */
    const index_query *q;
    size_t q0, q1;            /* this worker's queries */
    index_hit *out;
    size_t *counts;
    batch_query *bq;          /* nq entries, shared; each worker uses its range */
    float *prod;              /* BATCH_QB * BATCH_BB (sgemm path) */
    float *xnorm;             /* BATCH_BB (l2) */
    bool blas;
} batch_job;

/* Offer dd[0..m) (slots slot0..) to query b's heap; w is its worst. */
static void batch_keep(batch_query *b, const float *dd, uint32_t m, uint32_t slot0,
                       const index_query *q, float *w)
{
    for (uint32_t t = 0; t < m; t++) {
        if (!(dd[t] < *w) && b->h.n == b->h.cap)
            continue;
        /* Filters are checked only for candidates: most slots never get here. */
        if (!index_query_allows(q, slot0 + t))
            continue;
        if (b->h.n < b->h.cap) {
            maxheap_push(&b->h, dd[t], slot0 + t);
            if (b->h.n == b->h.cap)
                *w = b->h.v[0].dist;
        } else {
            maxheap_replace_top(&b->h, dd[t], slot0 + t);
            *w = b->h.v[0].dist;
        }
    }
}

/* Offer one row of a product block to query b. l2 is a constant at each
 * call site, so the 16-wide distance and reject loops vectorize. */
static inline __attribute__((always_inline)) void
batch_consume(batch_query *b, const float *row, const float *xn, uint32_t bb, uint32_t slot0,
              const index_query *q, const bool l2)
{
    float w = b->worst;
    float dd[16];
    uint32_t j = 0;
    for (; j + 16 <= bb; j += 16) {
        int any = 0;
        for (uint32_t t = 0; t < 16; t++) {
            /* l2: ||q||^2 + ||x||^2 - 2q.x, which cancellation can push below 0 */
            float d = l2 ? b->norm + xn[j + t] + row[j + t] : row[j + t];
            dd[t] = l2 && d < 0 ? 0 : d;
        }
        for (uint32_t t = 0; t < 16; t++)
            any |= dd[t] < w;
        if (NDL_UNLIKELY(any) || NDL_UNLIKELY(b->h.n < b->h.cap))
            batch_keep(b, dd, 16, slot0 + j, q, &w);
    }
    if (j < bb) {
        uint32_t m = bb - j;
        for (uint32_t t = 0; t < m; t++) {
            float d = l2 ? b->norm + xn[j + t] + row[j + t] : row[j + t];
            dd[t] = l2 && d < 0 ? 0 : d;
        }
        batch_keep(b, dd, m, slot0 + j, q, &w);
    }
    b->worst = w;
}

static int hit_cmp(const void *pa, const void *pb)
{
    const index_hit *a = pa, *b = pb;
    if (a->dist != b->dist)
        return a->dist < b->dist ? -1 : 1;
    return (a->slot > b->slot) - (a->slot < b->slot);
}

static void batch_blas(batch_job *j)
{
    const index_space *sp = j->sp;
    const vec_arena *a = j->a;
    const bool l2 = sp->metric == NDL_METRIC_L2;
    const simd_kernels *kern = simd_get();
    const int d = (int)sp->dim;
    const int ldx = (int)(a->rec_bytes / sizeof(float));
    const uint32_t k = j->q->k;

    for (size_t i = j->q0; i < j->q1; i++) {
        batch_query *b = &j->bq[i];
        dheap_init(&b->h, j->out + i * k, k);
        b->worst = INFINITY;
        const float *qv = (const float *)(const void *)(j->queries + i * sp->vec_bytes);
        b->norm = l2 ? kern->dot_f32(qv, qv, sp->n) : 0;
    }
    for (uint64_t x0 = 0; x0 < j->count;) {
        /* Clip the block at the chunk end: chunks are not contiguous. */
        uint64_t chunk_end = (x0 / ARENA_CHUNK_SLOTS + 1) * (uint64_t)ARENA_CHUNK_SLOTS;
        uint32_t bb = (uint32_t)NDL_MIN((uint64_t)BATCH_BB, NDL_MIN(chunk_end, j->count) - x0);
        const float *xs = arena_rec(a, (uint32_t)x0);
        if (l2)
            for (uint32_t t = 0; t < bb; t++)
                j->xnorm[t] = kern->dot_f32(xs + (size_t)t * ldx, xs + (size_t)t * ldx, sp->n);
        for (size_t qb = j->q0; qb < j->q1; qb += BATCH_QB) {
            int m = (int)NDL_MIN((size_t)BATCH_QB, j->q1 - qb);
            const float *qs = (const float *)(const void *)(j->queries + qb * sp->vec_bytes);
            /* prod = alpha Q X^T: -2q.x for l2 (norms are added per row), -q.x for ip */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, (int)bb, d, l2 ? -2.0f : -1.0f,
                        qs, d, xs, ldx, 0.0f, j->prod, (int)bb);
            for (int i = 0; i < m; i++) {
                batch_query *b = &j->bq[qb + (size_t)i];
                const float *row = j->prod + (size_t)i * bb;
                if (l2)
                    batch_consume(b, row, j->xnorm, bb, (uint32_t)x0, j->q, true);
                else
                    batch_consume(b, row, NULL, bb, (uint32_t)x0, j->q, false);
            }
        }
        x0 += bb;
    }
    /* The expansion ||q||^2 + ||x||^2 - 2q.x loses digits (a point's distance
     * to itself need not be 0): recompute the k winners with the kernel so
     * batch distances equal single-query ones, and re-sort. */
    for (size_t i = j->q0; i < j->q1; i++) {
        batch_query *b = &j->bq[i];
        index_hit *o = j->out + i * k;
        const char *qv = j->queries + i * sp->vec_bytes;
        uint32_t n = maxheap_drain_sorted(&b->h, o);
        for (uint32_t t = 0; t < n; t++)
            o[t].dist = sp->dist(qv, arena_rec(a, o[t].slot), sp->n);
        qsort(o, n, sizeof *o, hit_cmp);
        j->counts[i] = n;
    }
}

static void *batch_worker(void *arg)
{
    batch_job *j = arg;
    if (j->blas) {
        batch_blas(j);
        return NULL;
    }
    for (size_t i = j->q0; i < j->q1; i++)
        j->counts[i] = flat_scan(j->sp, j->a, j->count, j->queries + i * j->sp->vec_bytes, j->q,
                                 j->out + i * j->q->k, NULL);
    return NULL;
}

ndl_status flat_search_batch(const index_space *space, const vec_arena *arena, size_t nq,
                             const void *queries, const index_query *q, uint32_t threads,
                             index_hit *out, size_t *counts, ndl_error *err)
{
    if (nq == 0)
        return NDL_OK;
    uint32_t count = arena_count(arena);
    if (count == 0 || q->k == 0) {
        memset(counts, 0, nq * sizeof *counts);
        return NDL_OK;
    }
    size_t nt = NDL_MAX(1u, threads);
    if (nt > nq)
        nt = nq;
    bool blas = space->metric != NDL_METRIC_L1 && space->metric != NDL_METRIC_HAMMING &&
                nq / nt >= BATCH_MIN_QUERIES;

    /* Everything is allocated here, before any thread starts, so a failure
     * leaves nothing half done. */
    ndl_status rc = NDL_OK;
    batch_job *jobs = ndl_calloc(nt, sizeof *jobs);
    pthread_t *tids = ndl_calloc(nt, sizeof *tids);
    bool *started = ndl_calloc(nt, sizeof *started);
    batch_query *bq = blas ? ndl_malloc(nq * sizeof *bq) : NULL;
    if (!jobs || !tids || !started || (blas && !bq)) {
        rc = ndl_err(err, NDL_NOMEM, "out of memory for a batch of %zu queries", nq);
        goto leave;
    }
    for (size_t t = 0; t < nt; t++) {
        batch_job *j = &jobs[t];
        *j = (batch_job){.sp = space, .a = arena, .count = count, .queries = queries, .q = q,
                         .q0 = nq * t / nt, .q1 = nq * (t + 1) / nt, .out = out,
                         .counts = counts, .bq = bq, .blas = blas};
        if (blas) {
            j->prod = ndl_aligned_alloc(NDL_CACHELINE, (size_t)BATCH_QB * BATCH_BB * sizeof(float));
            j->xnorm = ndl_aligned_alloc(NDL_CACHELINE, BATCH_BB * sizeof(float));
            if (!j->prod || !j->xnorm) {
                rc = ndl_err(err, NDL_NOMEM, "out of memory for batch search buffers");
                goto leave;
            }
        }
    }
    /* Worker 0 runs here; a thread that fails to start runs here too. */
    for (size_t t = 1; t < nt; t++)
        started[t] = pthread_create(&tids[t], NULL, batch_worker, &jobs[t]) == 0;
    batch_worker(&jobs[0]);
    for (size_t t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            batch_worker(&jobs[t]);
    }
leave:
    if (jobs)
        for (size_t t = 0; t < nt; t++) {
            ndl_free(jobs[t].prod);
            ndl_free(jobs[t].xnorm);
        }
    ndl_free(jobs);
    ndl_free(tids);
    ndl_free(started);
    ndl_free(bq);
    return rc;
}
