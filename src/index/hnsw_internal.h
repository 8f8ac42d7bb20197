/*
 * hnsw_internal.h -- the HNSW graph shared by hnsw.c (life cycle, search),
 * hnsw_build.c (insert, neighbour selection, delete repair), hnsw_copy.c
 * (clone, compact) and hnsw_io.c (save/load). Malkov & Yashunin's
 * hierarchical navigable small world graph,
 * laid out for a vector arena that lives elsewhere:
 *
 *   - level-0 links in chunks of ARENA_CHUNK_SLOTS nodes, one fixed-size
 *     record per node: [count, link 0 .. link m0-1] (u32), so a node's
 *     neighbours are one contiguous read;
 *   - upper levels (rare: 1 node in m) in one block per node, level-major;
 *   - striped mutexes serialise writers of one node's links; readers never
 *     lock: every link word is read and written with relaxed atomics, and a
 *     link only ever holds a slot whose vector is already in the arena, so a
 *     reader racing a writer sees an old or new neighbour, both valid.
 */
#ifndef NDL_INDEX_HNSW_INTERNAL_H
#define NDL_INDEX_HNSW_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "index/index.h"

#define HNSW_MAX_LEVEL 15
#define HNSW_LOCK_STRIPES 4096u
#define HNSW_ENTRY_NONE UINT64_MAX

typedef struct hnsw_chunk {
    uint32_t *links0;      /* ARENA_CHUNK_SLOTS * link0_words */
    uint32_t **upper;      /* per node: level * upper_words, or NULL */
    uint8_t *level;        /* per node */
    uint8_t *removed;      /* per node: 1 once deleted (still navigable) */
} hnsw_chunk;

/* Per-search scratch: the visited set and the two heaps. The visited set is
 * one bit per slot, so a 100k-node graph's set (19 KB with its room to
 * grow) stays in L1/L2 while vectors stream through the caches; it is
 * cleared word by word from the list of words a walk dirtied, or whole once
 * that list overflows. */
typedef struct hnsw_ctx {
    uint64_t *seen;          /* seen_cap bits */
    uint32_t seen_cap;       /* slots, a multiple of 64 */
    uint32_t *dirty;         /* words of seen that are not zero */
    uint32_t dirty_n;        /* may exceed dirty_cap: then clear all */
    uint32_t dirty_cap;
    dist_slot *cand;
    uint32_t cand_cap;
    dist_slot *res;
    uint32_t res_cap;
    struct hnsw_ctx *next;  /* pool free list */
} hnsw_ctx;

typedef struct hnsw {
    vindex base;
    uint32_t m;               /* links per node on levels >= 1 */
    uint32_t m0;              /* links per node on level 0 (2m) */
    uint32_t ef_construction;
    uint64_t seed;
    double level_mult;        /* 1 / ln(m) */
    uint32_t link0_words;     /* 1 + m0 */
    uint32_t upper_words;     /* 1 + m */

    hnsw_chunk **chunks;      /* ARENA_MAX_CHUNKS entries, created on demand */
    pthread_mutex_t grow_lock;
    _Atomic uint64_t entry;   /* (max level << 32) | entry slot, or HNSW_ENTRY_NONE */
    pthread_mutex_t entry_lock;
    pthread_mutex_t locks[HNSW_LOCK_STRIPES];
    _Atomic uint32_t nodes;   /* highest inserted slot + 1 */
    _Atomic size_t upper_bytes;

    pthread_mutex_t pool_lock;
    hnsw_ctx *pool;
} hnsw;

/* ---- node access (callers guarantee the node's chunk exists) */

static inline hnsw_chunk *hnsw_chunk_of(const hnsw *h, uint32_t slot)
{
    return __atomic_load_n(&h->chunks[slot >> ARENA_CHUNK_SHIFT], __ATOMIC_ACQUIRE);
}

static inline uint32_t hnsw_node_level(const hnsw *h, uint32_t slot)
{
    return __atomic_load_n(&hnsw_chunk_of(h, slot)->level[slot & (ARENA_CHUNK_SLOTS - 1)],
                           __ATOMIC_RELAXED);
}

static inline bool hnsw_is_removed(const hnsw *h, uint32_t slot)
{
    return __atomic_load_n(&hnsw_chunk_of(h, slot)->removed[slot & (ARENA_CHUNK_SLOTS - 1)],
                           __ATOMIC_RELAXED);
}

/* The link record of slot at level: word 0 is the count, then the links. */
static inline uint32_t *hnsw_links(const hnsw *h, uint32_t slot, uint32_t level)
{
    hnsw_chunk *c = hnsw_chunk_of(h, slot);
    uint32_t i = slot & (ARENA_CHUNK_SLOTS - 1);
    if (level == 0)
        return c->links0 + (size_t)i * h->link0_words;
    uint32_t *up = __atomic_load_n(&c->upper[i], __ATOMIC_ACQUIRE);
    return up + (size_t)(level - 1) * h->upper_words;
}

static inline uint32_t hnsw_link_get(const uint32_t *w, uint32_t i)
{
    return __atomic_load_n(&w[i], __ATOMIC_RELAXED);
}

static inline void hnsw_link_set(uint32_t *w, uint32_t i, uint32_t v)
{
    __atomic_store_n(&w[i], v, __ATOMIC_RELAXED);
}

/* The count word orders the links: written after them (release), read
 * before them (acquire), so a reader never sees a count covering unwritten
 * link words. */
static inline uint32_t hnsw_count_get(const uint32_t *w)
{
    return __atomic_load_n(&w[0], __ATOMIC_ACQUIRE);
}

static inline void hnsw_count_set(uint32_t *w, uint32_t n)
{
    __atomic_store_n(&w[0], n, __ATOMIC_RELEASE);
}

static inline pthread_mutex_t *hnsw_lock_of(hnsw *h, uint32_t slot)
{
    return &h->locks[slot & (HNSW_LOCK_STRIPES - 1)];
}

static inline const void *hnsw_vec(const hnsw *h, uint32_t slot)
{
    return arena_rec(h->base.arena, slot);
}

static inline float hnsw_dist(const hnsw *h, const void *a, uint32_t slot)
{
    return h->base.space->dist(a, hnsw_vec(h, slot), h->base.space->n);
}

/* ---- hnsw.c */
ndl_status hnsw_ensure_chunk(hnsw *h, uint32_t slot, ndl_error *err);
hnsw_ctx *hnsw_ctx_acquire(hnsw *h, uint32_t slots, uint32_t ef);
void hnsw_ctx_release(hnsw *h, hnsw_ctx *cx);
/* Greedy walk on one upper level from *cur towards query. */
void hnsw_greedy(const hnsw *h, const void *query, uint32_t level, uint32_t *cur, float *curd,
                 uint64_t *visited);
/* Best-first search of one level from the entry points eps. Results go to
 * cx->res as a max-heap; returns how many. With q == NULL (index build) a
 * node is a result unless removed or `self`; otherwise iff q allows it. */
uint32_t hnsw_search_level(const hnsw *h, hnsw_ctx *cx, const void *query, const dist_slot *eps,
                           uint32_t neps, uint32_t ef, uint32_t level, const index_query *q,
                           uint32_t self, uint64_t *visited);

/* ---- hnsw_build.c */
ndl_status hnsw_insert(vindex *ix, uint32_t slot, ndl_error *err);
void hnsw_remove(vindex *ix, uint32_t slot);
uint32_t hnsw_random_level(const hnsw *h, uint32_t slot);
/* The neighbour heuristic: from cand (ascending by distance to the base
 * point) keep, after the `kept` already in out, up to max in all that no
 * kept one is closer to; returns how many out holds. */
uint32_t hnsw_select_neighbors(const hnsw *h, const dist_slot *cand, uint32_t n, uint32_t max,
                               uint32_t *out, uint32_t kept);
int hnsw_dist_slot_cmp(const void *a, const void *b); /* by distance, then slot */

/* ---- hnsw_copy.c */
ndl_status hnsw_compact(const vindex *ix, const uint32_t *remap, uint32_t old_count,
                        const vec_arena *arena,
                        vindex **out, ndl_error *err);
ndl_status hnsw_clone(const vindex *ix, vindex **out, ndl_error *err);

/* ---- hnsw_io.c */
ndl_status hnsw_save(vindex *ix, const char *path, ndl_error *err);
ndl_status hnsw_load(vindex *ix, const char *path, ndl_error *err);

#endif
