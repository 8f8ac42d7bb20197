/*
 * where.c -- payload filters (ndl_filter) applied to a collection: checking
 * one slot, estimating how many points match, and count, scroll and delete
 * of the matching points. The language itself is payload/filter.h.
 *
 * A slot's payload text may be replaced by a writer holding map_lock
 * exclusively, so every check reads it under map_lock (shared).
 */
#include <string.h>

#include "db/db_internal.h"
#include "payload/filter.h"
#include "payload/filter_candidates.h"
#include "util/alloc.h"

struct ndl_filter {
    filter *root;
};

NDL_API ndl_status ndl_filter_parse(const char *json, size_t len, ndl_filter **out,
                                    ndl_error *err)
{
    *out = NULL;
    if (!json)
        return ndl_err(err, NDL_INVALID, "filter: a JSON object is needed");
    ndl_filter *f = ndl_calloc(1, sizeof *f);
    if (!f)
        return ndl_err(err, NDL_NOMEM, "out of memory for a filter");
    ndl_status rc = filter_parse_text(json, len, "filter", &f->root, err);
    if (rc != NDL_OK) {
        ndl_free(f);
        return rc;
    }
    *out = f;
    return NDL_OK;
}

NDL_API void ndl_filter_free(ndl_filter *f)
{
    if (!f)
        return;
    filter_free(f->root);
    ndl_free(f);
}

void where_prepare(ndl_collection *c, const ndl_filter *f, where_plan *w)
{
    memset(w, 0, sizeof *w);
    pthread_rwlock_rdlock(&c->map_lock);
    if (c->fields_built && c->nfields)
        w->cand = filter_candidates(f->root, c->fields, c->nfields, arena_count(&c->vectors),
                                    &w->exact);
    else /* no indexes (or being rebuilt): every slot, checked on its payload */
        w->exact = f->root->root->kind == FILTER_TRUE;
    pthread_rwlock_unlock(&c->map_lock);
    w->f = f;
}

void where_release(where_plan *w)
{
    bitmap_free(w->cand);
    w->cand = NULL;
}

/* slot's payload against the filter itself (map_lock held) */
static bool payload_matches(ndl_collection *c, const where_plan *w, uint32_t slot)
{
    const payload_ref *p = payload_store_ref(&c->payloads, slot);
    return filter_match_text(w->f->root, p->text, p->text ? p->len : 0);
}

bool where_allows_locked(ndl_collection *c, const where_plan *w, uint32_t slot)
{
    if (w->cand && !roaring_bitmap_contains(w->cand, slot))
        return false;
    return w->exact || payload_matches(c, w, slot);
}

bool where_allows(ndl_collection *c, const where_plan *w, uint32_t slot)
{
    if (w->exact) /* the bitmap answers: no payload read, no lock */
        return !w->cand || roaring_bitmap_contains(w->cand, slot);
    pthread_rwlock_rdlock(&c->map_lock);
    bool ok = where_allows_locked(c, w, slot);
    pthread_rwlock_unlock(&c->map_lock);
    return ok;
}

/* Candidates scaled to the live share of the slots (hidden ones are in
 * the bitmaps until a compaction). */
static double live_candidates(ndl_collection *c, const where_plan *w)
{
    uint32_t slots = arena_count(&c->vectors);
    double live = (double)atomic_load(&c->live);
    if (!w->cand)
        return live;
    return slots ? (double)roaring_bitmap_get_cardinality(w->cand) * live / slots : 0;
}

uint64_t where_estimate(ndl_collection *c, const where_plan *w, uint64_t *checked)
{
    double base = live_candidates(c, w);
    if (w->exact || base < 1)
        return (uint64_t)(base + 0.5);
    /* a spread sample of the candidates, checked on their payloads */
    uint32_t slots = arena_count(&c->vectors);
    uint64_t card = w->cand ? roaring_bitmap_get_cardinality(w->cand) : slots;
    uint64_t step = card > WHERE_SAMPLE ? card / WHERE_SAMPLE : 1;
    uint64_t seen = 0, hit = 0;
    pthread_rwlock_rdlock(&c->map_lock);
    for (uint64_t r = step / 2; r < card; r += step) {
        uint32_t s = (uint32_t)r;
        if (w->cand && !roaring_bitmap_select(w->cand, (uint32_t)r, &s))
            break;
        if (s >= slots || bitset_test(&c->hidden, s))
            continue;
        seen++;
        hit += where_allows_locked(c, w, s);
    }
    pthread_rwlock_unlock(&c->map_lock);
    *checked += seen;
    if (!seen)
        return (uint64_t)(base + 0.5);
    return (uint64_t)((double)hit / (double)seen * base + 0.5);
}

/* Calls fn for each live id whose point matches w (all when w is NULL),
 * under map_lock: ids and their slots stay put while it runs. With a
 * candidate bitmap only its slots are visited (a live slot is one below
 * the count and not hidden), else every entry of the id table. */
static void each_match(ndl_collection *c, const where_plan *w,
                       void (*fn)(void *ctx, ndl_id id), void *ctx)
{
    const idmap *m = &c->ids;
    if (w && w->cand) {
        uint32_t slots = arena_count(&c->vectors);
        roaring_uint32_iterator_t it;
        roaring_init_iterator(w->cand, &it);
        for (; it.has_value && it.current_value < slots; roaring_advance_uint32_iterator(&it)) {
            uint32_t slot = it.current_value;
            if (bitset_test(&c->hidden, slot) || (!w->exact && !payload_matches(c, w, slot)))
                continue;
            fn(ctx, idmap_slot_to_id(idmap_slot(m, slot)));
        }
        return;
    }
    for (size_t t = 0; t < m->cap; t++) {
        uint32_t slot = m->table[t];
        if (slot == IDMAP_EMPTY)
            continue;
        if (w && !where_allows_locked(c, w, slot))
            continue;
        fn(ctx, idmap_slot_to_id(idmap_slot(m, slot)));
    }
}

static void count_one(void *ctx, ndl_id id)
{
    (void)id;
    (*(uint64_t *)ctx)++;
}

NDL_API ndl_status ndl_collection_count_where(ndl_collection *c, const ndl_filter *f,
                                              uint64_t *out, ndl_error *err)
{
    *out = 0;
    ndl_status rc = coll_check_intact(c, err);
    if (rc != NDL_OK)
        return rc;
    if (!f) {
        *out = atomic_load(&c->live);
        return NDL_OK;
    }
    pthread_rwlock_rdlock(&c->swap_lock);
    where_plan w;
    where_prepare(c, f, &w);
    pthread_rwlock_rdlock(&c->map_lock);
    if (w.exact && !w.cand)
        *out = atomic_load(&c->live);
    else
        each_match(c, &w, count_one, out);
    pthread_rwlock_unlock(&c->map_lock);
    where_release(&w);
    pthread_rwlock_unlock(&c->swap_lock);
    return NDL_OK;
}

/* The matching ids, copied (strings included) so they outlive the locks. */
typedef struct id_list {
    const ndl_filter *f;
    ndl_id *ids;
    size_t n, cap;
    bool failed;
} id_list;

static void collect_one(void *ctx, ndl_id id)
{
    id_list *l = ctx;
    if (l->failed)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        ndl_id *ids = ndl_realloc(l->ids, cap * sizeof *ids);
        if (!ids) {
            l->failed = true;
            return;
        }
        l->ids = ids;
        l->cap = cap;
    }
    if (id.str) {
        char *s = ndl_malloc(id.len + 1u);
        if (!s) {
            l->failed = true;
            return;
        }
        memcpy(s, id.str, id.len);
        s[id.len] = '\0';
        id.str = s;
    }
    l->ids[l->n++] = id;
}

static void id_list_free(id_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        ndl_free((char *)l->ids[i].str);
    ndl_free(l->ids);
}

static ndl_status choose_matching(ndl_collection *c, void *ctx, const ndl_id **ids, size_t *n,
                                  ndl_error *err)
{
    id_list *l = ctx;
    where_plan w;
    where_prepare(c, l->f, &w);
    pthread_rwlock_rdlock(&c->map_lock);
    each_match(c, &w, collect_one, l);
    pthread_rwlock_unlock(&c->map_lock);
    where_release(&w);
    if (l->failed)
        return ndl_err(err, NDL_NOMEM, "out of memory collecting %zu matching ids", l->n);
    *ids = l->ids;
    *n = l->n;
    return NDL_OK;
}

NDL_API ndl_status ndl_collection_delete_where(ndl_collection *c, const ndl_filter *f,
                                               size_t *deleted, ndl_error *err)
{
    size_t dummy;
    if (!deleted)
        deleted = &dummy;
    *deleted = 0;
    if (!f)
        return ndl_err(err, NDL_INVALID, "delete by filter needs a filter ({} deletes all)");
    id_list l = {.f = f};
    ndl_status rc = coll_delete_chosen(c, choose_matching, &l, deleted, err);
    id_list_free(&l);
    return rc;
}
