/*
 * flat.c -- the exact ("flat") index. One query streams every arena chunk
 * through the many-record kernel of its metric (simd.h: one call per run of
 * up to 64 live slots, no call per vector), so it runs at memory bandwidth;
 * deleted and filtered slots are dropped before their distance is computed.
 * flat_search_batch turns many l2/ip/cosine queries into BLAS sgemm blocks
 * (compute-bound) and runs l1/hamming queries (or too few for sgemm) as
 * blocked scans that read each block of vectors once for all of a worker's
 * queries. Vectors live in the arena, so the index has no state.
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ scan */

/* Slots per group: one word of the deleted bitset, and the longest run of
 * records one many-kernel call covers. Groups start at multiples of 64 (chunks
 * hold a multiple of 64 slots), so a group is one bitset word. */
#define SCAN_GROUP 64

/* One query's scan state; also one row of a batch without BLAS. */
typedef struct scan {
    simd_dist_many_fn many; /* sibling of dist; NULL: call dist per record */
    simd_dist_fn dist;
    const void *query;
    size_t n;               /* kernel length */
    size_t rec;             /* bytes per arena record */
    dheap h;                /* best hits so far (storage: the caller's output) */
    float worst;            /* h.v[0].dist once h is full, +inf before */
    uint64_t visited;       /* distances computed */
    float dd[SCAN_GROUP];   /* distances of the current group */
} scan;

static void scan_init(scan *s, const index_space *sp, const vec_arena *a, const void *query,
                      uint32_t k, index_hit *out)
{
    s->many = simd_many_for(sp->dist);
    s->dist = sp->dist;
    s->query = query;
    s->n = sp->n;
    s->rec = a->rec_bytes;
    dheap_init(&s->h, out, k);
    s->worst = INFINITY;
    s->visited = 0;
    /* Entries of slots not computed are read (and ignored) by the reject
     * test: keep them defined. */
    for (size_t i = 0; i < SCAN_GROUP; i++)
        s->dd[i] = INFINITY;
}

/* Distances of cnt contiguous records from p into dd. */
static inline void scan_dists(scan *s, const char *p, uint32_t cnt, float *dd)
{
    if (NDL_LIKELY(s->many != NULL)) {
        s->many(s->query, p, s->rec, cnt, s->n, dd);
        return;
    }
    for (uint32_t i = 0; i < cnt; i++)
        dd[i] = s->dist(s->query, p + (size_t)i * s->rec, s->n);
}

/* A NaN distance (finite inputs can still overflow: inf - inf) ranks last, as
 * +inf: left as NaN it would sit at the heap's root, where no distance
 * compares below it, and freeze the heap. */
static inline float rank_dist(float d)
{
    return NDL_UNLIKELY(d != d) ? INFINITY : d;
}

/* Offer s->dd[t] for every bit t of `bits` (slots slot0 + t) to the heap.
 * NaN never passes the callers' `d < worst` tests, so it only gets here
 * while the heap is filling. */
static void scan_offer(scan *s, uint64_t bits, uint32_t slot0)
{
    while (bits) {
        unsigned t = (unsigned)__builtin_ctzll(bits);
        bits &= bits - 1;
        float d = rank_dist(s->dd[t]);
        if (s->h.n < s->h.cap) {
            maxheap_push(&s->h, d, slot0 + t);
            if (s->h.n == s->h.cap)
                s->worst = s->h.v[0].dist;
        } else if (d < s->worst) {
            maxheap_replace_top(&s->h, d, slot0 + t);
            s->worst = s->h.v[0].dist;
        }
    }
}

/* Records of slots slot0..slot0+gn-1 (gn <= 64, slot0 a multiple of 64, all
 * in one chunk from p), of which those in `live` may be returned. */
static void scan_group(scan *s, const char *p, uint32_t slot0, uint32_t gn, uint64_t live)
{
    const uint64_t all = gn == 64 ? ~(uint64_t)0 : ((uint64_t)1 << gn) - 1;
    if (live == all) {
        scan_dists(s, p, gn, s->dd);
    } else {
        /* Each run of consecutive live slots is one kernel call. */
        for (uint64_t m = live; m;) {
            unsigned first = (unsigned)__builtin_ctzll(m);
            uint64_t rest = m >> first;
            unsigned len = rest == ~(uint64_t)0 ? 64u : (unsigned)__builtin_ctzll(~rest);
            scan_dists(s, p + (size_t)first * s->rec, len, s->dd + first);
            m &= len == 64 ? 0 : ~((((uint64_t)1 << len) - 1) << first);
        }
    }
    s->visited += (uint64_t)__builtin_popcountll(live);
    if (NDL_UNLIKELY(s->h.n < s->h.cap)) {
        scan_offer(s, live, slot0);
        return;
    }
    /* Fast reject, 16 at a time (vectorizes): the heap rarely changes once
     * the scan is under way. */
    const float w = s->worst;
    for (uint32_t j = 0; j < gn; j += 16) {
        int any = 0;
        for (uint32_t t = 0; t < 16; t++)
            any |= s->dd[j + t] < w;
        uint64_t bits = (live >> j) & 0xffff;
        if (NDL_UNLIKELY(any) && bits)
            scan_offer(s, bits << j, slot0);
    }
}

/* The bits of `live` (slots slot0 + bit, slot0 a multiple of 64) that q
 * allows: not deleted, and passing its filter. */
static inline uint64_t allowed(const index_query *q, uint32_t slot0, uint64_t live)
{
    if (q->deleted)
        live &= ~atomic_load_explicit(&q->deleted->words[slot0 >> 6], memory_order_relaxed);
    if (!q->allow)
        return live;
    uint64_t ok = 0;
    for (uint64_t m = live; m; m &= m - 1) {
        unsigned t = (unsigned)__builtin_ctzll(m);
        if (q->allow(q->allow_ctx, slot0 + t))
            ok |= (uint64_t)1 << t;
    }
    return ok;
}

/* Slots first..first+cnt-1 of one chunk (first a multiple of 64). Slots the
 * query does not allow are skipped before their distance is computed: a
 * selective filter then reads little of the chunk. */
static void scan_range(scan *s, const vec_arena *a, const index_query *q, uint32_t first,
                       uint32_t cnt)
{
    assert(first % SCAN_GROUP == 0);
    const char *base = arena_rec(a, first);
    for (uint32_t g = 0; g < cnt; g += SCAN_GROUP) {
        uint32_t gn = NDL_MIN((uint32_t)SCAN_GROUP, cnt - g);
        uint32_t slot0 = first + g;
        uint64_t live = allowed(q, slot0, gn == 64 ? ~(uint64_t)0 : ((uint64_t)1 << gn) - 1);
        if (live)
            scan_group(s, base + (size_t)g * s->rec, slot0, gn, live);
    }
}

/* Length of the piece of slots 0..count-1 that starts at `first`: at most
 * `most` (a multiple of 64) slots, all in first's chunk. */
static inline uint32_t piece_len(uint64_t first, uint32_t count, uint32_t most)
{
    uint64_t chunk_end = (first / ARENA_CHUNK_SLOTS + 1) * (uint64_t)ARENA_CHUNK_SLOTS;
    return (uint32_t)NDL_MIN(NDL_MIN((uint64_t)most, (uint64_t)count - first), chunk_end - first);
}

/* Hits sorted by distance get equal distances ordered by slot, so results do
 * not depend on the heap's history (single and batch searches agree). An
 * insertion sort: linear unless there are many ties. */
static void order_ties(index_hit *o, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        index_hit x = o[i];
        size_t j = i;
        for (; j > 0 && o[j - 1].dist == x.dist && o[j - 1].slot > x.slot; j--)
            o[j] = o[j - 1];
        o[j] = x;
    }
}

/* Best q->k of slots 0..count-1 into out, sorted by distance, then slot;
 * returns how many. */
static size_t flat_scan(const index_space *sp, const vec_arena *a, uint32_t count,
                        const void *query, const index_query *q, index_hit *out,
                        uint64_t *visited)
{
    if (q->k == 0)
        return 0;
    scan s;
    scan_init(&s, sp, a, query, q->k, out);
    for (uint64_t first = 0, len; first < count; first += len) {
        len = piece_len(first, count, ARENA_CHUNK_SLOTS);
        scan_range(&s, a, q, (uint32_t)first, (uint32_t)len);
    }
    if (visited)
        *visited += s.visited;
    size_t n = maxheap_drain_sorted(&s.h, out);
    order_ties(out, n);
    return n;
}

size_t flat_scan_slots(const index_space *sp, const vec_arena *a, const uint32_t *slots, size_t n,
                       const void *query, const index_query *q, index_hit *out, uint64_t *visited)
{
    if (q->k == 0)
        return 0;
    scan s;
    scan_init(&s, sp, a, query, q->k, out);
    uint32_t count = arena_count(a);
    for (size_t i = 0; i < n;) {
        uint32_t slot0 = slots[i] & ~(uint32_t)(SCAN_GROUP - 1);
        uint64_t live = 0;
        for (; i < n && (slots[i] & ~(uint32_t)(SCAN_GROUP - 1)) == slot0; i++)
            if (slots[i] < count)
                live |= (uint64_t)1 << (slots[i] - slot0);
        live = allowed(q, slot0, live);
        if (live)
            scan_group(&s, arena_rec(a, slot0), slot0, NDL_MIN((uint32_t)SCAN_GROUP, count - slot0),
                       live);
    }
    if (visited)
        *visited += s.visited;
    size_t got = maxheap_drain_sorted(&s.h, out);
    order_ties(out, got);
    return got;
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
#ifndef BATCH_QB
#define BATCH_QB 256
#endif
#ifndef BATCH_BB
#define BATCH_BB 1024
#endif
/* Below this many queries per thread, blocked scans beat sgemm. */
#define BATCH_MIN_QUERIES 4
/* Without sgemm, every query of a worker scans a block of about this many
 * bytes of records while the block is in (L2) cache. */
#define BATCH_SCAN_BYTES (256u * 1024u)

typedef struct batch_query {
    dheap h;       /* storage: this query's row of the output */
    float worst;   /* h.v[0].dist once full, +inf before */
    float norm;    /* ||q||^2 (l2) */
    bool overflow; /* some product distance was inf or NaN */
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
    batch_query *bq;          /* nq entries (sgemm path), shared; each worker uses its range */
    scan *sc;                 /* nq entries (scan path), shared likewise */
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
            maxheap_push(&b->h, rank_dist(dd[t]), slot0 + t);
            if (b->h.n == b->h.cap)
                *w = b->h.v[0].dist;
        } else {
            maxheap_replace_top(&b->h, dd[t], slot0 + t);
            *w = b->h.v[0].dist;
        }
    }
}

/* Four floats (GCC/clang vector extensions: SSE on the baseline x86-64
 * the library is built for; the compilers left the plain 16-wide loop
 * scalar, and at d = 100 this loop cost a fifth of a batch search). */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f v4f_load(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Offer one row of a product block to query b: 16 distances at a time,
 * and only blocks holding one below the worst kept reach the heap. l2 is
 * a constant at each call site. */
static inline __attribute__((always_inline)) void
batch_consume(batch_query *b, const float *row, const float *xn, uint32_t bb, uint32_t slot0,
              const index_query *q, const bool l2)
{
    float w = b->worst;
    float dd[16];
    int bad = 0;
    const v4f zero = {0, 0, 0, 0}, norm = {b->norm, b->norm, b->norm, b->norm};
    v4f wv = {w, w, w, w};
    /* d * 0 is 0 for finite d and NaN for inf or NaN: one multiply-add per
     * distance finds overflow (tested once per row) */
    v4f poison = zero;
    uint32_t j = 0;
    for (; j + 16 <= bb; j += 16) {
        v4i any = {0, 0, 0, 0};
        for (uint32_t u = 0; u < 16; u += 4) {
            v4f d = v4f_load(row + j + u);
            if (l2) {
                /* ||q||^2 + ||x||^2 - 2q.x, which cancellation can push below 0 */
                d = norm + v4f_load(xn + j + u) + d;
                d = (v4f)((v4i)d & ~(d < zero)); /* negative: +0 (NaN stays) */
            }
            memcpy(dd + u, &d, sizeof d);
            any |= d < wv;
            poison += d * zero;
        }
        if (NDL_UNLIKELY(any[0] | any[1] | any[2] | any[3]) || NDL_UNLIKELY(b->h.n < b->h.cap)) {
            batch_keep(b, dd, 16, slot0 + j, q, &w);
            wv = (v4f){w, w, w, w};
        }
    }
    if (j < bb) {
        uint32_t m = bb - j;
        for (uint32_t t = 0; t < m; t++) {
            float d = l2 ? b->norm + xn[j + t] + row[j + t] : row[j + t];
            dd[t] = l2 && d < 0 ? 0 : d;
            bad |= !(fabsf(dd[t]) <= FLT_MAX);
        }
        batch_keep(b, dd, m, slot0 + j, q, &w);
    }
    for (int t = 0; t < 4; t++)
        bad |= poison[t] != 0.0f; /* NaN != 0 */
    b->worst = w;
    b->overflow |= bad;
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
        b->overflow = false;
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
     * batch distances equal single-query ones, and re-sort. Where sgemm or
     * the kernel overflowed (huge values: the two can disagree even on which
     * vectors are at inf), the query is scanned again with the kernel. */
    for (size_t i = j->q0; i < j->q1; i++) {
        batch_query *b = &j->bq[i];
        index_hit *o = j->out + i * k;
        const char *qv = j->queries + i * sp->vec_bytes;
        uint32_t n = maxheap_drain_sorted(&b->h, o);
        bool redo = b->overflow || !(fabsf(b->norm) <= FLT_MAX);
        for (uint32_t t = 0; t < n && !redo; t++) {
            float d = sp->dist(qv, arena_rec(a, o[t].slot), sp->n);
            redo = !(fabsf(d) <= FLT_MAX);
            o[t].dist = d;
        }
        if (NDL_UNLIKELY(redo)) {
            j->counts[i] = flat_scan(sp, a, j->count, qv, j->q, o, NULL);
            continue;
        }
        qsort(o, n, sizeof *o, hit_cmp);
        j->counts[i] = n;
    }
}

/* Without sgemm (l1, hamming, or few queries per worker): the worker's
 * queries take turns on one block of records while it is in cache, so the
 * arena is read from memory once per worker rather than once per query. */
static void batch_scan(batch_job *j)
{
    const size_t k = j->q->k;
    const size_t vb = j->sp->vec_bytes;
    for (size_t i = j->q0; i < j->q1; i++)
        scan_init(&j->sc[i], j->sp, j->a, j->queries + i * vb, (uint32_t)k, j->out + i * k);
    size_t per_block = BATCH_SCAN_BYTES / j->a->rec_bytes / SCAN_GROUP * SCAN_GROUP;
    uint32_t most = (uint32_t)NDL_MAX((size_t)SCAN_GROUP, per_block);
    for (uint64_t first = 0, len; first < j->count; first += len) {
        len = piece_len(first, j->count, most);
        for (size_t i = j->q0; i < j->q1; i++)
            scan_range(&j->sc[i], j->a, j->q, (uint32_t)first, (uint32_t)len);
    }
    for (size_t i = j->q0; i < j->q1; i++) {
        j->counts[i] = maxheap_drain_sorted(&j->sc[i].h, j->out + i * k);
        order_ties(j->out + i * k, j->counts[i]);
    }
}

static void *batch_worker(void *arg)
{
    batch_job *j = arg;
    if (j->blas)
        batch_blas(j);
    else
        batch_scan(j);
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
    scan *sc = blas ? NULL : ndl_malloc(nq * sizeof *sc);
    if (!jobs || !tids || !started || (blas ? !bq : !sc)) {
        rc = ndl_err(err, NDL_NOMEM, "out of memory for a batch of %zu queries", nq);
        goto leave;
    }
    for (size_t t = 0; t < nt; t++) {
        batch_job *j = &jobs[t];
        *j = (batch_job){.sp = space, .a = arena, .count = count, .queries = queries, .q = q,
                         .q0 = nq * t / nt, .q1 = nq * (t + 1) / nt, .out = out,
                         .counts = counts, .bq = bq, .sc = sc, .blas = blas};
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
    ndl_free(sc);
    return rc;
}
