/*
 * hnsw_build.c -- changing the graph: insert (with the neighbour-selection
 * heuristic of the HNSW paper, as hnswlib), and delete repair.
 *
 * Inserts run on many threads at once. A node's level comes from a hash of
 * (seed, slot), not a shared random stream, so one-thread builds are
 * deterministic for a seed and the level of a slot never depends on timing.
 * Each thread holds at most one stripe lock at a time (plus, for the rare
 * insert that raises the top level, the entry lock first), so no deadlock.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index/hnsw_internal.h"
#include "util/alloc.h"

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint32_t hnsw_random_level(const hnsw *h, uint32_t slot)
{
    uint64_t r = splitmix64(h->seed ^ splitmix64(slot));
    double u = ((double)(r >> 11) + 0.5) * (1.0 / 9007199254740992.0); /* (0,1) */
    double l = -log(u) * h->level_mult;
    return l >= HNSW_MAX_LEVEL ? HNSW_MAX_LEVEL : (uint32_t)l;
}

/* The paper's heuristic: walk candidates from closest; keep one unless it
 * is closer to an already kept neighbour than to the base point (it would
 * be reached through that neighbour anyway). cand is sorted ascending by
 * distance to the base point; out[0..kept) are kept already (compaction
 * keeps a node's live links); more go after them, up to max in all.
 * Returns the number kept. */
uint32_t hnsw_select_neighbors(const hnsw *h, const dist_slot *cand, uint32_t n, uint32_t max,
                               uint32_t *out, uint32_t kept)
{
    const index_space *sp = h->base.space;
    for (uint32_t i = 0; i < n && kept < max; i++) {
        const void *v = hnsw_vec(h, cand[i].slot);
        bool good = true;
        for (uint32_t j = 0; j < kept; j++)
            if (sp->dist(v, hnsw_vec(h, out[j]), sp->n) < cand[i].dist) {
                good = false;
                break;
            }
        if (good)
            out[kept++] = cand[i].slot;
    }
    return kept;
}

int hnsw_dist_slot_cmp(const void *pa, const void *pb)
{
    const dist_slot *a = pa, *b = pb;
    if (a->dist != b->dist)
        return a->dist < b->dist ? -1 : 1;
    return a->slot < b->slot ? -1 : a->slot > b->slot;
}

static void write_links(uint32_t *w, const uint32_t *links, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        hnsw_link_set(w, i + 1, links[i]);
    hnsw_count_set(w, n);
}

/* Add a link e -> slot; when e is full, re-select e's neighbours among its
 * links plus slot. Called under e's stripe lock. */
static void add_backlink(hnsw *h, uint32_t e, uint32_t slot, uint32_t level, float d_es)
{
    uint32_t max = level ? h->m : h->m0;
    uint32_t *w = hnsw_links(h, e, level);
    uint32_t cnt = NDL_MIN(hnsw_count_get(w), max);
    for (uint32_t i = 1; i <= cnt; i++)
        if (hnsw_link_get(w, i) == slot)
            return;
    if (cnt < max) {
        hnsw_link_set(w, cnt + 1, slot);
        hnsw_count_set(w, cnt + 1);
        return;
    }
    dist_slot cand[2 * NDL_HNSW_M_MAX + 1];
    const void *ev = hnsw_vec(h, e);
    uint32_t n = 0;
    for (uint32_t i = 1; i <= cnt; i++) {
        uint32_t s = hnsw_link_get(w, i);
        cand[n++] = (dist_slot){hnsw_dist(h, ev, s), s};
    }
    cand[n++] = (dist_slot){d_es, slot};
    qsort(cand, n, sizeof *cand, hnsw_dist_slot_cmp);
    uint32_t keep[2 * NDL_HNSW_M_MAX + 1];
    uint32_t k = hnsw_select_neighbors(h, cand, n, max, keep, 0);
    write_links(w, keep, k);
}

/* Link slot into one level given the search results res[0..n) (sorted). */
static void connect_level(hnsw *h, uint32_t slot, uint32_t level, const dist_slot *res,
                          uint32_t n)
{
    uint32_t keep[2 * NDL_HNSW_M_MAX + 1];
    uint32_t k = hnsw_select_neighbors(h, res, n, h->m, keep, 0);
    pthread_mutex_t *own = hnsw_lock_of(h, slot);
    pthread_mutex_lock(own);
    write_links(hnsw_links(h, slot, level), keep, k);
    pthread_mutex_unlock(own);
    for (uint32_t i = 0; i < k; i++) {
        float d = 0;
        for (uint32_t j = 0; j < n; j++)
            if (res[j].slot == keep[i]) {
                d = res[j].dist;
                break;
            }
        pthread_mutex_t *lk = hnsw_lock_of(h, keep[i]);
        pthread_mutex_lock(lk);
        add_backlink(h, keep[i], slot, level, d);
        pthread_mutex_unlock(lk);
    }
}

/* Find slot's neighbours on every level it shares with the graph (entry e),
 * then link it bottom-up: level 0 first, so a search that reaches the node
 * through a fresh upper-level link always finds its level-0 links. */
static ndl_status link_node(hnsw *h, hnsw_ctx *cx, uint32_t slot, uint32_t level, uint64_t e,
                            ndl_error *err)
{
    const void *v = hnsw_vec(h, slot);
    uint32_t top = (uint32_t)(e >> 32);
    uint32_t cur = (uint32_t)e;
    float curd = hnsw_dist(h, v, cur);
    uint64_t visited = 0;
    for (uint32_t l = top; l > level; l--)
        hnsw_greedy(h, v, l, &cur, &curd, &visited);
    uint32_t levels = NDL_MIN(level, top) + 1;
    dist_slot *found[HNSW_MAX_LEVEL + 1] = {0};
    uint32_t nfound[HNSW_MAX_LEVEL + 1] = {0};
    dist_slot first = {curd, cur};
    ndl_status rc = NDL_OK;
    for (uint32_t l = levels; l-- > 0;) {
        const dist_slot *eps = l + 1 < levels && nfound[l + 1] ? found[l + 1] : &first;
        uint32_t neps = l + 1 < levels && nfound[l + 1] ? nfound[l + 1] : 1;
        uint32_t n = hnsw_search_level(h, cx, v, eps, neps, h->ef_construction, l, NULL, slot,
                                       &visited);
        dheap res = {cx->res, n, h->ef_construction};
        maxheap_drain_sorted(&res, cx->res);
        /* copy out of the scratch the next search reuses */
        if (n && !(found[l] = ndl_malloc((size_t)n * sizeof **found))) {
            rc = ndl_err(err, NDL_NOMEM, "out of memory for an HNSW insert");
            break;
        }
        if (n)
            memcpy(found[l], cx->res, (size_t)n * sizeof **found);
        nfound[l] = n;
    }
    for (uint32_t l = 0; rc == NDL_OK && l < levels; l++)
        if (nfound[l])
            connect_level(h, slot, l, found[l], nfound[l]);
    for (uint32_t l = 0; l < levels; l++)
        ndl_free(found[l]);
    return rc;
}

ndl_status hnsw_insert(vindex *ix, uint32_t slot, ndl_error *err)
{
    hnsw *h = (hnsw *)ix;
    ndl_status rc = hnsw_ensure_chunk(h, slot, err);
    if (rc != NDL_OK)
        return rc;
    hnsw_chunk *ch = hnsw_chunk_of(h, slot);
    uint32_t ci = slot & (ARENA_CHUNK_SLOTS - 1);
    uint32_t level = hnsw_random_level(h, slot);
    if (level > 0 && !ch->upper[ci]) {
        size_t bytes = (size_t)level * h->upper_words * sizeof(uint32_t);
        uint32_t *up = ndl_calloc(1, bytes);
        if (!up)
            return ndl_err(err, NDL_NOMEM, "out of memory for HNSW links");
        atomic_fetch_add(&h->upper_bytes, bytes);
        __atomic_store_n(&ch->upper[ci], up, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&ch->level[ci], (uint8_t)level, __ATOMIC_RELAXED);
    uint32_t nodes = atomic_load(&h->nodes);
    while (nodes < slot + 1 && !atomic_compare_exchange_weak(&h->nodes, &nodes, slot + 1))
        ;

    hnsw_ctx *cx = hnsw_ctx_acquire(h, arena_count(ix->arena), h->ef_construction);
    if (!cx)
        return ndl_err(err, NDL_NOMEM, "out of memory for an HNSW insert");

    uint64_t e = atomic_load_explicit(&h->entry, memory_order_acquire);
    bool raise = e == HNSW_ENTRY_NONE || level > (uint32_t)(e >> 32);
    if (raise) { /* this node may become the entry: hold the lock throughout */
        pthread_mutex_lock(&h->entry_lock);
        e = atomic_load_explicit(&h->entry, memory_order_acquire);
        raise = e == HNSW_ENTRY_NONE || level > (uint32_t)(e >> 32);
        if (!raise)
            pthread_mutex_unlock(&h->entry_lock);
    }
    if (e != HNSW_ENTRY_NONE)
        rc = link_node(h, cx, slot, level, e, err);
    if (raise) {
        if (rc == NDL_OK)
            atomic_store_explicit(&h->entry, (uint64_t)level << 32 | slot, memory_order_release);
        pthread_mutex_unlock(&h->entry_lock);
    }
    hnsw_ctx_release(h, cx);
    return rc;
}

/* When the entry point is removed, the live node of highest level takes
 * over (a linear scan of level bytes, run only when the top node goes); with
 * no live node left the graph restarts empty, so later inserts do not hang
 * off a dead entry with no live neighbours to link to. */
static void move_entry_off(hnsw *h, uint32_t slot)
{
    pthread_mutex_lock(&h->entry_lock);
    uint64_t e = atomic_load(&h->entry);
    if (e != HNSW_ENTRY_NONE && (uint32_t)e == slot) {
        uint32_t nodes = atomic_load(&h->nodes), best = UINT32_MAX, best_level = 0;
        for (uint32_t s = 0; s < nodes; s++) {
            if (!hnsw_chunk_of(h, s)) {
                s |= ARENA_CHUNK_SLOTS - 1;
                continue;
            }
            uint32_t l = hnsw_node_level(h, s);
            if ((best == UINT32_MAX || l > best_level) && !hnsw_is_removed(h, s) &&
                (l > 0 || hnsw_count_get(hnsw_links(h, s, 0)) > 0 || nodes == 1)) {
                best = s;
                best_level = l;
            }
        }
        atomic_store(&h->entry, best == UINT32_MAX ? HNSW_ENTRY_NONE
                                                   : (uint64_t)best_level << 32 | best);
    }
    pthread_mutex_unlock(&h->entry_lock);
}

/* Delete repair: slot stays in the graph (its own links keep it
 * navigable for searches already walking through it) but every live
 * neighbour that links to it gets its link replaced by the closest of
 * slot's other live neighbours, so the graph routes around the hole
 * instead of through more and more deleted nodes. */
void hnsw_remove(vindex *ix, uint32_t slot)
{
    hnsw *h = (hnsw *)ix;
    if (slot >= atomic_load(&h->nodes) || !hnsw_chunk_of(h, slot))
        return;
    hnsw_chunk *ch = hnsw_chunk_of(h, slot);
    __atomic_store_n(&ch->removed[slot & (ARENA_CHUNK_SLOTS - 1)], 1, __ATOMIC_RELAXED);
    move_entry_off(h, slot);
    uint32_t top = hnsw_node_level(h, slot);
    for (uint32_t l = 0; l <= top; l++) {
        uint32_t max = l ? h->m : h->m0;
        uint32_t nb[2 * NDL_HNSW_M_MAX + 1];
        pthread_mutex_t *own = hnsw_lock_of(h, slot);
        pthread_mutex_lock(own);
        const uint32_t *sw = hnsw_links(h, slot, l);
        uint32_t nn = NDL_MIN(hnsw_count_get(sw), max);
        for (uint32_t i = 0; i < nn; i++)
            nb[i] = hnsw_link_get(sw, i + 1);
        pthread_mutex_unlock(own);

        for (uint32_t i = 0; i < nn; i++) {
            uint32_t y = nb[i];
            if (y == slot || hnsw_is_removed(h, y))
                continue;
            pthread_mutex_t *lk = hnsw_lock_of(h, y);
            pthread_mutex_lock(lk);
            uint32_t *yw = hnsw_links(h, y, l);
            uint32_t yc = NDL_MIN(hnsw_count_get(yw), max);
            uint32_t at = UINT32_MAX;
            for (uint32_t j = 1; j <= yc; j++)
                if (hnsw_link_get(yw, j) == slot)
                    at = j;
            if (at != UINT32_MAX) {
                /* best replacement: a live neighbour of slot, closest to y,
                 * that y does not link to yet */
                const void *yv = hnsw_vec(h, y);
                uint32_t best = UINT32_MAX;
                float bestd = INFINITY;
                for (uint32_t c = 0; c < nn; c++) {
                    uint32_t z = nb[c];
                    if (z == y || z == slot || hnsw_is_removed(h, z))
                        continue;
                    bool linked = false;
                    for (uint32_t j = 1; j <= yc && !linked; j++)
                        linked = hnsw_link_get(yw, j) == z;
                    if (linked)
                        continue;
                    float d = hnsw_dist(h, yv, z);
                    if (d < bestd) {
                        bestd = d;
                        best = z;
                    }
                }
                if (best != UINT32_MAX && yc < max) {
                    hnsw_link_set(yw, yc + 1, best);
                    hnsw_count_set(yw, yc + 1);
                } else if (best != UINT32_MAX) {
                    hnsw_link_set(yw, at, best);
                }
            }
            pthread_mutex_unlock(lk);
        }
        /* slot's out-links were some nodes' way in: give every live
         * neighbour x of slot an in-link from the live neighbour of slot
         * closest to it (the heuristic re-selects if that one is full), so
         * nothing slot led to becomes unreachable as slot drops out. */
        for (uint32_t i = 0; i < nn; i++) {
            uint32_t x = nb[i];
            if (x == slot || hnsw_is_removed(h, x))
                continue;
            const void *xv = hnsw_vec(h, x);
            uint32_t best = UINT32_MAX;
            float bestd = INFINITY;
            for (uint32_t j = 0; j < nn; j++) {
                uint32_t y = nb[j];
                if (y == x || y == slot || hnsw_is_removed(h, y))
                    continue;
                float d = hnsw_dist(h, xv, y);
                if (d < bestd) {
                    bestd = d;
                    best = y;
                }
            }
            if (best == UINT32_MAX)
                continue;
            pthread_mutex_t *lk = hnsw_lock_of(h, best);
            pthread_mutex_lock(lk);
            add_backlink(h, best, x, l, bestd);
            pthread_mutex_unlock(lk);
        }
    }
}
