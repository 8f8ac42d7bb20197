/*
 * heap.h -- binary heaps of (distance, slot) pairs, the working sets of every
 * search: a max-heap keeps the best k seen so far (root = worst of them, the
 * one to evict), a min-heap orders candidates to expand (root = closest).
 * Storage is caller-provided; all functions are static inline for speed.
 */
#ifndef NDL_UTIL_HEAP_H
#define NDL_UTIL_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct dist_slot {
    float dist;
    uint32_t slot;
} dist_slot;

typedef struct dheap {
    dist_slot *v;   /* caller-owned array of at least cap entries */
    uint32_t n;     /* entries in use */
    uint32_t cap;
} dheap;

static inline void dheap_init(dheap *h, dist_slot *storage, uint32_t cap)
{
    h->v = storage;
    h->n = 0;
    h->cap = cap;
}

/* ---- max-heap (root is the largest distance) */

static inline void maxheap_sift_down(dist_slot *v, uint32_t n, uint32_t i)
{
    dist_slot x = v[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && v[c + 1].dist > v[c].dist)
            c++;
        if (v[c].dist <= x.dist)
            break;
        v[i] = v[c];
        i = c;
    }
    v[i] = x;
}

static inline void maxheap_push(dheap *h, float dist, uint32_t slot)
{
    uint32_t i = h->n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->v[p].dist >= dist)
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i].dist = dist;
    h->v[i].slot = slot;
}

static inline void maxheap_replace_top(dheap *h, float dist, uint32_t slot)
{
    h->v[0].dist = dist;
    h->v[0].slot = slot;
    maxheap_sift_down(h->v, h->n, 0);
}

/* Keep the best cap entries: push while not full, else replace the worst if
 * better. Returns 1 if the pair was kept. */
static inline int maxheap_offer(dheap *h, float dist, uint32_t slot)
{
    if (h->n < h->cap) {
        maxheap_push(h, dist, slot);
        return 1;
    }
    if (dist < h->v[0].dist) {
        maxheap_replace_top(h, dist, slot);
        return 1;
    }
    return 0;
}

static inline void maxheap_pop(dheap *h)
{
    h->v[0] = h->v[--h->n];
    maxheap_sift_down(h->v, h->n, 0);
}

/* Empty the heap into out[0..n) sorted ascending by distance (best first);
 * returns n. out may alias h->v. */
static inline uint32_t maxheap_drain_sorted(dheap *h, dist_slot *out)
{
    uint32_t n = h->n;
    for (uint32_t i = n; i > 0; i--) {
        dist_slot top = h->v[0];
        maxheap_pop(h);
        out[i - 1] = top;
    }
    return n;
}

/* ---- min-heap (root is the smallest distance) */

static inline void minheap_push(dheap *h, float dist, uint32_t slot)
{
    uint32_t i = h->n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->v[p].dist <= dist)
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i].dist = dist;
    h->v[i].slot = slot;
}

static inline void minheap_pop(dheap *h)
{
    dist_slot x = h->v[--h->n];
    uint32_t n = h->n, i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h->v[c + 1].dist < h->v[c].dist)
            c++;
        if (h->v[c].dist >= x.dist)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n)
        h->v[i] = x;
}

#endif
