/*
 * scroll.c -- ndl_collection_scroll: the live points a page at a time, in id
 * order (u64 ids ascending, then string ids bytewise), after a cursor id.
 *
 * Id order, not slot order, so a cursor stays meaningful across writes and
 * compactions (which renumber slots): a page holds the `limit` smallest ids
 * above the cursor as of that call (with a filter: the smallest matching
 * ones, the filter checked after the cursor, so each page checks only the
 * points above it). One pass over the id map's table (live
 * ids only, under its read lock, so a point being replaced is seen once:
 * with its old slot or its new one, never neither) with a bounded max-heap:
 * O(live * log limit) per page, no index to keep.
 */
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "util/alloc.h"

/* <0, 0, >0 as a sorts before, with, after b: every u64 id before every
 * string id; strings by bytes, a prefix first. */
static int id_cmp(ndl_id a, ndl_id b)
{
    if (!a.str != !b.str)
        return a.str ? 1 : -1;
    if (!a.str)
        return (a.num > b.num) - (a.num < b.num);
    int c = memcmp(a.str, b.str, NDL_MIN(a.len, b.len));
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* Max-heap on id order: heap[0] is the largest id kept so far. */
static void sift_down(ndl_id *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && id_cmp(h[l], h[m]) > 0)
            m = l;
        if (r < n && id_cmp(h[r], h[m]) > 0)
            m = r;
        if (m == i)
            return;
        ndl_id t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(ndl_id *h, size_t i)
{
    while (i > 0 && id_cmp(h[(i - 1) / 2], h[i]) < 0) {
        ndl_id t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static int cmp_ids(const void *a, const void *b)
{
    return id_cmp(*(const ndl_id *)a, *(const ndl_id *)b);
}

/* One allocation: the ids, then copies of their strings. */
static ndl_status copy_out(const ndl_id *ids, size_t n, ndl_id **out, ndl_error *err)
{
    size_t bytes = n * sizeof **out;
    for (size_t i = 0; i < n; i++)
        bytes += ids[i].str ? ids[i].len + 1u : 0;
    ndl_id *o = ndl_malloc(bytes ? bytes : 1);
    if (!o)
        return ndl_err(err, NDL_NOMEM, "out of memory for a page of %zu ids", n);
    char *s = (char *)(o + n);
    for (size_t i = 0; i < n; i++) {
        o[i] = ids[i];
        if (ids[i].str) {
            memcpy(s, ids[i].str, ids[i].len);
            s[ids[i].len] = '\0';
            o[i].str = s;
            s += ids[i].len + 1;
        }
    }
    *out = o;
    return NDL_OK;
}

NDL_API ndl_status ndl_collection_scroll(ndl_collection *c, const ndl_id *after, size_t limit,
                                         ndl_id **ids_out, size_t *n_out, ndl_error *err)
{
    return ndl_collection_scroll_where(c, NULL, after, limit, ids_out, n_out, err);
}

NDL_API ndl_status ndl_collection_scroll_where(ndl_collection *c, const ndl_filter *f,
                                               const ndl_id *after, size_t limit,
                                               ndl_id **ids_out, size_t *n_out,
                                               ndl_error *err)
{
    *ids_out = NULL;
    *n_out = 0;
    ndl_status rc = coll_check_intact(c, err);
    if (rc == NDL_OK && after)
        rc = idmap_check_id(*after, err);
    if (rc != NDL_OK)
        return rc;
    if (limit < 1 || limit > NDL_SCROLL_MAX)
        return ndl_err(err, NDL_INVALID, "limit %zu is outside 1..%u", limit, NDL_SCROLL_MAX);
    pthread_rwlock_rdlock(&c->swap_lock); /* no compaction swaps the map meanwhile */
    where_plan w;
    if (f)
        where_prepare(c, f, &w);
    pthread_rwlock_rdlock(&c->map_lock);  /* an upsert moves an id in one step */
    const idmap *m = &c->ids;
    size_t cap = NDL_MIN(limit, m->live);
    ndl_id *heap = ndl_malloc((cap ? cap : 1) * sizeof *heap);
    size_t n = 0;
    if (!heap) {
        rc = ndl_err(err, NDL_NOMEM, "out of memory for a page of %zu ids", limit);
    } else {
        for (size_t t = 0; t < m->cap; t++) {
            if (m->table[t] == IDMAP_EMPTY)
                continue;
            ndl_id id = idmap_slot_to_id(idmap_slot(m, m->table[t]));
            if (after && id_cmp(id, *after) <= 0)
                continue;
            if (f && !where_allows_locked(c, &w, m->table[t]))
                continue;
            if (n < cap) {
                heap[n] = id;
                sift_up(heap, n++);
            } else if (cap && id_cmp(id, heap[0]) < 0) {
                heap[0] = id;
                sift_down(heap, n, 0);
            }
        }
        qsort(heap, n, sizeof *heap, cmp_ids);
        rc = copy_out(heap, n, ids_out, err); /* strings copied before the locks go */
    }
    pthread_rwlock_unlock(&c->map_lock);
    if (f)
        where_release(&w);
    pthread_rwlock_unlock(&c->swap_lock);
    ndl_free(heap);
    if (rc == NDL_OK)
        *n_out = n;
    return rc;
}
