/*
 * index.h -- the interface every index type implements (flat.c, hnsw.c):
 * one method table, as pgvector fills PostgreSQL's index routine. Indexes
 * know the vector arena, a distance kernel and a filter over internal slots;
 * never ids, payloads or files other than their own.
 *
 * Distances inside indexes are "internal": smaller is closer, and for l2 the
 * squared distance (l2sq), for ip and cosine -dot (cosine vectors are stored
 * normalized), for l1 sum|a-b|, for hamming differing bits. The collection
 * converts to reported distances (SPEC section 1).
 */
#ifndef NDL_INDEX_H
#define NDL_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "simd/simd.h"
#include "storage/arena.h"
#include "util/base.h"
#include "util/bitset.h"
#include "util/heap.h"

typedef struct index_space {
    ndl_metric metric;
    uint32_t dim;         /* user dimension */
    size_t n;             /* kernel length: floats, or bytes for hamming */
    size_t vec_bytes;     /* bytes of one stored vector (arena record) */
    simd_dist_fn dist;    /* internal distance */
} index_space;

/* Fill space for metric and dimension using the active kernels. */
void index_space_init(index_space *s, ndl_metric metric, uint32_t dim);

/* A hit: internal distance and slot (same layout as the heaps use). */
typedef dist_slot index_hit;

/* What a search may return: slots not in `deleted` (may be NULL) for which
 * allow(ctx, slot) != 0 (allow may be NULL = all). Indexes check this during
 * traversal, so a filtered search still fills k results when k match. */
typedef struct index_query {
    uint32_t k;
    uint32_t ef;                 /* HNSW candidate list size (>= k) */
    const bitset *deleted;
    ndl_filter_fn allow;
    void *allow_ctx;
} index_query;

static inline bool index_query_allows(const index_query *q, uint32_t slot)
{
    if (q->deleted && bitset_test(q->deleted, slot))
        return false;
    return q->allow == NULL || q->allow(q->allow_ctx, slot);
}

typedef struct index_stats {
    uint64_t visited;         /* graph nodes whose distance was computed */
} index_stats;

/* NOTE: named vindex, not index: <strings.h> declares a function index(). */
typedef struct vindex vindex;

typedef struct index_methods {
    uint32_t version;         /* 1 */
    const char *name;         /* "flat", "hnsw" */
    /* Add slot (its vector is already in the arena and published). Safe to
     * call from many threads at once and concurrently with search. */
    ndl_status (*insert)(vindex *ix, uint32_t slot, ndl_error *err);
    /* slot has just been marked in the deleted bitset: repair neighbours.
     * Serialized by the caller with respect to other removes; concurrent with
     * inserts and searches. */
    void (*remove)(vindex *ix, uint32_t slot);
    /* Up to q->k hits, best first; returns how many. */
    size_t (*search)(vindex *ix, const void *query, const index_query *q, index_hit *out,
                     index_stats *st);
    /* Persist to / restore from `path` (a storage/sfile file). save is not
     * concurrent with insert or remove (a checkpoint saves a clone); load
     * is called on a freshly created index over an arena that already
     * holds the vectors. */
    ndl_status (*save)(vindex *ix, const char *path, ndl_error *err);
    ndl_status (*load)(vindex *ix, const char *path, ndl_error *err);
    size_t (*memory_bytes)(const vindex *ix);
    /* Verify internal invariants (links in range, levels, entry point);
     * NDL_CORRUPT naming the first problem. NULL = nothing to check. Not
     * concurrent with insert or remove. */
    ndl_status (*check)(const vindex *ix, ndl_error *err);
    /* A new index over the same space and `arena` holding only the slots
     * with remap[old] != UINT32_MAX, renumbered to remap[old] (arena holds
     * their vectors at the new slots; the caller may point the new index's
     * arena elsewhere later). NULL = the index keeps no per-slot state
     * (flat). Not concurrent with insert/remove on ix (compaction passes a
     * clone). */
    ndl_status (*compact)(const vindex *ix, const uint32_t *remap, uint32_t old_count,
                          const vec_arena *arena, vindex **out, ndl_error *err);
    /* A frozen copy over the same space and arena (every node, link and
     * removed mark as they are now), for a checkpoint to save or a
     * compaction to copy from while the original changes. NULL = nothing to copy (flat). Not concurrent with
     * insert or remove. */
    ndl_status (*clone)(const vindex *ix, vindex **out, ndl_error *err);
    void (*destroy)(vindex *ix);
} index_methods;

/* Common header of every index object (first member of each implementation). */
struct vindex {
    const index_methods *m;
    const index_space *space;   /* borrowed from the collection */
    const vec_arena *arena;     /* borrowed from the collection (compaction
                                   re-points it at its swap) */
};

/* Constructors (the collection picks one by config). */
typedef struct hnsw_params {
    uint32_t m;
    uint32_t ef_construction;
    uint64_t seed;
} hnsw_params;

ndl_status flat_index_create(const index_space *space, const vec_arena *arena, vindex **out,
                             ndl_error *err);
ndl_status hnsw_index_create(const index_space *space, const vec_arena *arena,
                             const hnsw_params *p, vindex **out, ndl_error *err);

/* The best q->k of the given slots (ascending, each below the arena's
 * count), with q's deleted set and filter, as a flat search would rank
 * them: an exact search over the few slots a selective filter leaves. */
size_t flat_scan_slots(const index_space *sp, const vec_arena *a, const uint32_t *slots, size_t n,
                       const void *query, const index_query *q, index_hit *out, uint64_t *visited);

/* Exact search of many queries at once over slots 0..arena_count-1.
 * out holds nq * q->k hits (row per query), counts[i] receives how many hits
 * query i got. For l2/ip/cosine uses BLAS sgemm on blocks; other metrics loop
 * the kernels. threads >= 1. */
ndl_status flat_search_batch(const index_space *space, const vec_arena *arena, size_t nq,
                             const void *queries, const index_query *q, uint32_t threads,
                             index_hit *out, size_t *counts, ndl_error *err);

#endif
