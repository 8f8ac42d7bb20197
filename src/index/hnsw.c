/*
 * hnsw.c -- the HNSW index object: creation, node storage, per-search
 * scratch, and search (greedy descent through the upper levels, then a
 * best-first search of level 0 that checks the filter on every node it
 * reaches, so filtered and deletion-heavy searches still fill k results).
 * Construction lives in hnsw_build.c, files in hnsw_io.c.
 */
#include <math.h>
#include <string.h>

#include "index/hnsw_internal.h"
#include "util/alloc.h"

/* How much of a neighbour's vector a walk prefetches before measuring it
 * (see prefetch_vec). */
#ifndef HNSW_PREFETCH_BYTES
#define HNSW_PREFETCH_BYTES 512
#endif
#ifndef HNSW_PREFETCH_AHEAD
#define HNSW_PREFETCH_AHEAD 2
#endif

/* ------------------------------------------------------------ node storage */

static void chunk_free(hnsw_chunk *c)
{
    if (!c)
        return;
    if (c->upper)
        for (uint32_t i = 0; i < ARENA_CHUNK_SLOTS; i++)
            ndl_free(c->upper[i]);
    ndl_free(c->links0);
    ndl_free(c->upper);
    ndl_free(c->level);
    ndl_free(c->removed);
    ndl_free(c);
}

ndl_status hnsw_ensure_chunk(hnsw *h, uint32_t slot, ndl_error *err)
{
    uint32_t ci = slot >> ARENA_CHUNK_SHIFT;
    if (__atomic_load_n(&h->chunks[ci], __ATOMIC_ACQUIRE))
        return NDL_OK;
    pthread_mutex_lock(&h->grow_lock);
    ndl_status rc = NDL_OK;
    if (!h->chunks[ci]) {
        /* calloc of this size is fresh zero pages: untouched nodes cost nothing */
        hnsw_chunk *c = ndl_calloc(1, sizeof *c);
        if (c) {
            c->links0 = ndl_calloc((size_t)ARENA_CHUNK_SLOTS * h->link0_words, sizeof(uint32_t));
            c->upper = ndl_calloc(ARENA_CHUNK_SLOTS, sizeof *c->upper);
            c->level = ndl_calloc(ARENA_CHUNK_SLOTS, 1);
            c->removed = ndl_calloc(ARENA_CHUNK_SLOTS, 1);
        }
        if (!c || !c->links0 || !c->upper || !c->level || !c->removed) {
            chunk_free(c);
            rc = ndl_err(err, NDL_NOMEM, "out of memory for HNSW links");
        } else {
            __atomic_store_n(&h->chunks[ci], c, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&h->grow_lock);
    return rc;
}

/* ------------------------------------------------------- per-search scratch */

static bool ctx_fit(hnsw_ctx *cx, uint32_t slots, uint32_t ef)
{
    if (cx->seen_cap < slots) {
        uint64_t cap = NDL_MAX(slots, 1024u);
        cap += cap / 2; /* room to grow without reallocating every insert */
        cap = NDL_MIN((cap + 63) & ~(uint64_t)63, (uint64_t)UINT32_MAX + 1 - 64);
        size_t words = (size_t)(cap / 64);
        /* Clearing more dirty words one by one than a quarter of the set
         * costs about what clearing it whole does. */
        uint32_t dcap = (uint32_t)NDL_MAX(words / 4, (size_t)64);
        uint64_t *seen = ndl_calloc(words, sizeof *seen);
        uint32_t *dirty = ndl_malloc((size_t)dcap * sizeof *dirty);
        if (!seen || !dirty) {
            ndl_free(seen);
            ndl_free(dirty);
            return false;
        }
        ndl_free(cx->seen);
        ndl_free(cx->dirty);
        cx->seen = seen;
        cx->seen_cap = (uint32_t)cap;
        cx->dirty = dirty;
        cx->dirty_cap = dcap;
        cx->dirty_n = 0;
    }
    if (cx->res_cap < ef + 1) {
        dist_slot *r = ndl_malloc((size_t)(ef + 1) * sizeof *r);
        if (!r)
            return false;
        ndl_free(cx->res);
        cx->res = r;
        cx->res_cap = ef + 1;
    }
    if (cx->cand_cap < 2 * ef + 64) {
        dist_slot *c = ndl_malloc((size_t)(2 * ef + 64) * sizeof *c);
        if (!c)
            return false;
        ndl_free(cx->cand);
        cx->cand = c;
        cx->cand_cap = 2 * ef + 64;
    }
    return true;
}

static void ctx_free(hnsw_ctx *cx)
{
    ndl_free(cx->seen);
    ndl_free(cx->dirty);
    ndl_free(cx->cand);
    ndl_free(cx->res);
    ndl_free(cx);
}

/* A scratch sized for `slots` nodes and lists of ef; NULL when out of memory. */
hnsw_ctx *hnsw_ctx_acquire(hnsw *h, uint32_t slots, uint32_t ef)
{
    pthread_mutex_lock(&h->pool_lock);
    hnsw_ctx *cx = h->pool;
    if (cx)
        h->pool = cx->next;
    pthread_mutex_unlock(&h->pool_lock);
    if (!cx && !(cx = ndl_calloc(1, sizeof *cx)))
        return NULL;
    if (!ctx_fit(cx, slots, ef)) {
        ctx_free(cx);
        return NULL;
    }
    return cx;
}

void hnsw_ctx_release(hnsw *h, hnsw_ctx *cx)
{
    pthread_mutex_lock(&h->pool_lock);
    cx->next = h->pool;
    h->pool = cx;
    pthread_mutex_unlock(&h->pool_lock);
}

/* Empty the visited set for the next walk. */
static void seen_clear(hnsw_ctx *cx)
{
    if (cx->dirty_n > cx->dirty_cap)
        memset(cx->seen, 0, (size_t)(cx->seen_cap / 64) * sizeof *cx->seen);
    else
        for (uint32_t i = 0; i < cx->dirty_n; i++)
            cx->seen[cx->dirty[i]] = 0;
    cx->dirty_n = 0;
}

/* Marks slot s (< seen_cap) visited; true if it already was. */
static inline bool seen_test_set(hnsw_ctx *cx, uint32_t s)
{
    uint64_t *w = &cx->seen[s >> 6];
    uint64_t bit = (uint64_t)1 << (s & 63);
    if (*w & bit)
        return true;
    if (*w == 0) {
        if (cx->dirty_n < cx->dirty_cap)
            cx->dirty[cx->dirty_n] = s >> 6;
        cx->dirty_n++;
    }
    *w |= bit;
    return false;
}

/* ------------------------------------------------------------------ search */

void hnsw_greedy(const hnsw *h, const void *query, uint32_t level, uint32_t *cur, float *curd,
                 uint64_t *visited)
{
    bool changed = true;
    while (changed) {
        changed = false;
        const uint32_t *w = hnsw_links(h, *cur, level);
        uint32_t cnt = NDL_MIN(hnsw_count_get(w), h->m);
        for (uint32_t i = 1; i <= cnt; i++)
            __builtin_prefetch(hnsw_vec(h, hnsw_link_get(w, i)));
        for (uint32_t i = 1; i <= cnt; i++) {
            uint32_t s = hnsw_link_get(w, i);
            float d = hnsw_dist(h, query, s);
            (*visited)++;
            if (d < *curd) {
                *curd = d;
                *cur = s;
                changed = true;
            }
        }
    }
}

static inline bool accepts(const hnsw *h, const index_query *q, uint32_t slot, uint32_t self)
{
    if (q)
        return index_query_allows(q, slot);
    return slot != self && !hnsw_is_removed(h, slot);
}

static bool cand_grow(hnsw_ctx *cx)
{
    uint32_t cap = cx->cand_cap * 2;
    dist_slot *c = ndl_realloc(cx->cand, (size_t)cap * sizeof *c);
    if (!c)
        return false;
    cx->cand = c;
    cx->cand_cap = cap;
    return true;
}

/* The first lines of slot's vector: a walk reads vectors in random order, so
 * the hardware prefetchers only help past the first few lines. */
static inline void prefetch_vec(const hnsw *h, uint32_t slot)
{
    const char *v = hnsw_vec(h, slot);
    size_t n = NDL_MIN(h->base.arena->rec_bytes, (size_t)HNSW_PREFETCH_BYTES);
    for (size_t off = 0; off < n; off += 64)
        __builtin_prefetch(v + off);
}

uint32_t hnsw_search_level(const hnsw *h, hnsw_ctx *cx, const void *query, const dist_slot *eps,
                           uint32_t neps, uint32_t ef, uint32_t level, const index_query *q,
                           uint32_t self, uint64_t *visited)
{
    seen_clear(cx);
    uint32_t cap = cx->seen_cap;
    uint32_t maxlinks = level ? h->m : h->m0;
    dheap cand, res;
    dheap_init(&cand, cx->cand, cx->cand_cap);
    dheap_init(&res, cx->res, ef);
    float bound = INFINITY;

    for (uint32_t i = 0; i < neps; i++) {
        uint32_t s = eps[i].slot;
        if (s >= cap || seen_test_set(cx, s))
            continue;
        if (cand.n == cand.cap && !cand_grow(cx))
            break;
        cand.v = cx->cand;
        cand.cap = cx->cand_cap;
        minheap_push(&cand, eps[i].dist, s);
        if (accepts(h, q, s, self)) {
            maxheap_offer(&res, eps[i].dist, s);
            if (res.n == ef)
                bound = res.v[0].dist;
        }
    }

    uint32_t todo[2 * NDL_HNSW_M_MAX + 1];
    while (cand.n) {
        dist_slot c = cand.v[0];
        if (c.dist > bound)
            break;
        minheap_pop(&cand);
        /* The next node to expand is likely the new top: fetch its links
         * while this one's neighbours are measured. */
        if (cand.n)
            __builtin_prefetch(hnsw_links(h, cand.v[0].slot, level));
        const uint32_t *w = hnsw_links(h, c.slot, level);
        uint32_t cnt = NDL_MIN(hnsw_count_get(w), maxlinks);
        uint32_t nt = 0;
        for (uint32_t i = 1; i <= cnt; i++) {
            uint32_t s = hnsw_link_get(w, i);
            if (s >= cap || seen_test_set(cx, s))
                continue;
            todo[nt++] = s;
        }
        for (uint32_t i = 0; i < NDL_MIN(nt, (uint32_t)HNSW_PREFETCH_AHEAD); i++)
            prefetch_vec(h, todo[i]);
        for (uint32_t i = 0; i < nt; i++) {
            uint32_t s = todo[i];
            if (i + HNSW_PREFETCH_AHEAD < nt)
                prefetch_vec(h, todo[i + HNSW_PREFETCH_AHEAD]);
            float d = hnsw_dist(h, query, s);
            if (d >= bound)
                continue;
            if (cand.n == cand.cap) {
                if (!cand_grow(cx))
                    continue; /* out of memory: search what we have */
                cand.v = cx->cand;
                cand.cap = cx->cand_cap;
            }
            minheap_push(&cand, d, s);
            if (cand.v[0].slot == s) /* the new next to expand */
                __builtin_prefetch(hnsw_links(h, s, level));
            if (accepts(h, q, s, self)) {
                maxheap_offer(&res, d, s);
                if (res.n == ef)
                    bound = res.v[0].dist;
            }
        }
        *visited += nt;
    }
    return res.n;
}

static size_t hnsw_search(vindex *ix, const void *query, const index_query *q, index_hit *out,
                          index_stats *st)
{
    hnsw *h = (hnsw *)ix;
    uint64_t e = atomic_load_explicit(&h->entry, memory_order_acquire);
    if (e == HNSW_ENTRY_NONE || q->k == 0)
        return 0;
    uint32_t ef = NDL_MAX(q->ef, q->k);
    hnsw_ctx *cx = hnsw_ctx_acquire(h, arena_count(ix->arena), ef);
    if (!cx)
        return 0;
    uint64_t visited = 1;
    uint32_t cur = (uint32_t)e;
    float curd = hnsw_dist(h, query, cur);
    for (uint32_t l = (uint32_t)(e >> 32); l > 0; l--)
        hnsw_greedy(h, query, l, &cur, &curd, &visited);
    dist_slot ep = {curd, cur};
    uint32_t n = hnsw_search_level(h, cx, query, &ep, 1, ef, 0, q, UINT32_MAX, &visited);
    dheap res = {cx->res, n, ef};
    maxheap_drain_sorted(&res, cx->res);
    n = NDL_MIN(n, q->k);
    memcpy(out, cx->res, (size_t)n * sizeof *out);
    hnsw_ctx_release(h, cx);
    if (st)
        st->visited += visited;
    return n;
}

/* -------------------------------------------------------------- life cycle */

static size_t hnsw_memory_bytes(const vindex *ix)
{
    const hnsw *h = (const hnsw *)ix;
    size_t n = atomic_load(&h->nodes);
    size_t per_node = h->link0_words * sizeof(uint32_t) + sizeof(uint32_t *) + 2;
    return sizeof *h + n * per_node + atomic_load(&h->upper_bytes);
}

static ndl_status hnsw_check(const vindex *ix, ndl_error *err)
{
    const hnsw *h = (const hnsw *)ix;
    uint32_t nodes = atomic_load(&h->nodes);
    uint64_t e = atomic_load(&h->entry);
    if (nodes > arena_count(ix->arena))
        return ndl_err(err, NDL_CORRUPT, "graph has %u nodes but %u vectors", nodes,
                       arena_count(ix->arena));
    if (e != HNSW_ENTRY_NONE && ((uint32_t)e >= nodes ||
                                 hnsw_node_level(h, (uint32_t)e) != (uint32_t)(e >> 32)))
        return ndl_err(err, NDL_CORRUPT, "graph entry point %u is invalid", (uint32_t)e);
    for (uint32_t s = 0; s < nodes; s++) {
        if (!hnsw_chunk_of(h, s))
            return ndl_err(err, NDL_CORRUPT, "graph node %u has no storage", s);
        uint32_t level = hnsw_node_level(h, s);
        for (uint32_t l = 0; l <= level; l++) {
            const uint32_t *w = hnsw_links(h, s, l);
            uint32_t cnt = hnsw_count_get(w);
            if (cnt > (l ? h->m : h->m0))
                return ndl_err(err, NDL_CORRUPT, "graph node %u has %u links on level %u", s,
                               cnt, l);
            for (uint32_t i = 1; i <= cnt; i++) {
                uint32_t t = hnsw_link_get(w, i);
                if (t >= nodes || t == s || hnsw_node_level(h, t) < l)
                    return ndl_err(err, NDL_CORRUPT,
                                   "graph node %u links to %u on level %u, which is invalid", s,
                                   t, l);
            }
        }
    }
    return NDL_OK;
}

static void hnsw_destroy(vindex *ix)
{
    hnsw *h = (hnsw *)ix;
    if (!h)
        return;
    for (uint32_t i = 0; i < ARENA_MAX_CHUNKS && h->chunks; i++)
        chunk_free(h->chunks[i]);
    ndl_free(h->chunks);
    while (h->pool) {
        hnsw_ctx *cx = h->pool;
        h->pool = cx->next;
        ctx_free(cx);
    }
    for (uint32_t i = 0; i < HNSW_LOCK_STRIPES; i++)
        pthread_mutex_destroy(&h->locks[i]);
    pthread_mutex_destroy(&h->grow_lock);
    pthread_mutex_destroy(&h->entry_lock);
    pthread_mutex_destroy(&h->pool_lock);
    ndl_free(h);
}

static const index_methods hnsw_methods = {
    .version = 1,
    .name = "hnsw",
    .insert = hnsw_insert,
    .remove = hnsw_remove,
    .search = hnsw_search,
    .save = hnsw_save,
    .load = hnsw_load,
    .memory_bytes = hnsw_memory_bytes,
    .check = hnsw_check,
    .compact = hnsw_compact,
    .clone = hnsw_clone,
    .destroy = hnsw_destroy,
};

ndl_status hnsw_index_create(const index_space *space, const vec_arena *arena,
                             const hnsw_params *p, vindex **out, ndl_error *err)
{
    *out = NULL;
    if (p->m < NDL_HNSW_M_MIN || p->m > NDL_HNSW_M_MAX)
        return ndl_err(err, NDL_INVALID, "m %u is out of range %d..%d", p->m, NDL_HNSW_M_MIN,
                       NDL_HNSW_M_MAX);
    hnsw *h = ndl_calloc(1, sizeof *h);
    if (!h)
        return ndl_err(err, NDL_NOMEM, "out of memory for an HNSW index");
    h->chunks = ndl_calloc(ARENA_MAX_CHUNKS, sizeof *h->chunks);
    if (!h->chunks) {
        ndl_free(h);
        return ndl_err(err, NDL_NOMEM, "out of memory for an HNSW index");
    }
    h->base.m = &hnsw_methods;
    h->base.space = space;
    h->base.arena = arena;
    h->m = p->m;
    h->m0 = 2 * p->m;
    h->ef_construction = NDL_MAX(p->ef_construction, p->m);
    h->seed = p->seed;
    h->level_mult = 1.0 / log((double)NDL_MAX(p->m, 2u));
    h->link0_words = 1 + h->m0;
    h->upper_words = 1 + h->m;
    atomic_init(&h->entry, HNSW_ENTRY_NONE);
    pthread_mutex_init(&h->grow_lock, NULL);
    pthread_mutex_init(&h->entry_lock, NULL);
    pthread_mutex_init(&h->pool_lock, NULL);
    for (uint32_t i = 0; i < HNSW_LOCK_STRIPES; i++)
        pthread_mutex_init(&h->locks[i], NULL);
    *out = &h->base;
    return NDL_OK;
}
