/*
 * compact.c -- reclaiming the slots of deleted and replaced points, online.
 *
 * Slots are append-only (an upsert takes a fresh slot; the old one is only
 * hidden), so dead slots pile up: their vectors, ids, payloads and graph
 * nodes. Compaction copies the live slots, in order, into new structures
 * (vectors, id map, payload references, graph via the index's compact
 * method), then swaps them in under swap_lock, which every reader holds
 * for the length of its read. Writers wait on write_lock meanwhile
 * (a copy: about a second per million d=128 points); searches go on
 * against the old structures until the swap, which takes microseconds.
 *
 * Compaction changes slot numbers, not contents: the log records ids, so
 * the checkpoint on disk plus the log still describe the same points. The
 * next checkpoint (compaction runs inside checkpoint_locked) writes the
 * compacted files and so reclaims the disk too.
 */
#include <string.h>

#include "db/db_internal.h"
#include "util/alloc.h"

/* The new structures being built. */
typedef struct compacted {
    vec_arena vectors;
    idmap ids;
    payload_store payloads;
    bitset hidden;
    vindex *ann;
} compacted;

static void compacted_free(compacted *n)
{
    if (n->ann)
        n->ann->m->destroy(n->ann);
    bitset_destroy(&n->hidden);
    payload_store_destroy(&n->payloads);
    idmap_destroy(&n->ids);
    arena_destroy(&n->vectors);
}

/* Copy the live slots of c into n; remap[old] = new slot or UINT32_MAX. */
static ndl_status copy_live(ndl_collection *c, compacted *n, uint32_t slots, uint32_t *remap,
                            ndl_error *err)
{
    ndl_status rc;
    if ((rc = arena_init(&n->vectors, c->vectors.rec_bytes, err)) != NDL_OK ||
        (rc = idmap_init(&n->ids, err)) != NDL_OK ||
        (rc = payload_store_init(&n->payloads, err)) != NDL_OK ||
        (rc = bitset_init(&n->hidden, err)) != NDL_OK)
        return rc;
    for (uint32_t s = 0; s < slots; s++) {
        remap[s] = UINT32_MAX;
        if (bitset_test(&c->hidden, s))
            continue;
        uint32_t ns;
        void *rec;
        if ((rc = arena_reserve(&n->vectors, &ns, &rec, err)) != NDL_OK)
            return rc;
        memcpy(rec, arena_rec(&c->vectors, s), c->vectors.rec_bytes);
        arena_publish(&n->vectors, ns + 1);
        ndl_id id = idmap_slot_to_id(idmap_slot(&c->ids, s));
        uint32_t old;
        if ((rc = idmap_set_slot(&n->ids, ns, id, err)) != NDL_OK ||
            (rc = idmap_put(&n->ids, id, ns, &old, err)) != NDL_OK ||
            (rc = payload_store_append_ref(&n->payloads, ns, payload_store_ref(&c->payloads, s),
                                           err)) != NDL_OK)
            return rc;
        remap[s] = ns;
    }
    if (c->ann && c->ann->m->compact)
        rc = c->ann->m->compact(c->ann, remap, slots, &n->ann, err);
    return rc;
}

/* Exchange the contents of two objects of the same type. */
static void swap_bytes(void *a, void *b, size_t n)
{
    unsigned char tmp[256];
    _Static_assert(sizeof(vec_arena) <= sizeof tmp && sizeof(idmap) <= sizeof tmp &&
                       sizeof(payload_store) <= sizeof tmp && sizeof(bitset) <= sizeof tmp,
                   "swap buffer too small");
    memcpy(tmp, a, n);
    memcpy(a, b, n);
    memcpy(b, tmp, n);
}

bool coll_compaction_due(const ndl_collection *c)
{
    uint32_t slots = arena_count(&c->vectors);
    uint64_t dead = slots - atomic_load(&c->live);
    return dead >= COMPACT_MIN_DEAD && dead * COMPACT_DEAD_DIVISOR >= slots;
}

ndl_status coll_compact_locked(ndl_collection *c, ndl_error *err)
{
    uint32_t slots = arena_count(&c->vectors);
    if (atomic_load(&c->live) == slots)
        return NDL_OK;
    /* the copy must not carry a flipped bit of the mapped vectors over */
    ndl_status rc = vectors_seal_verify(&c->seal, SIZE_MAX, err);
    if (rc != NDL_OK)
        return coll_check_intact(c, err);
    compacted n;
    memset(&n, 0, sizeof n);
    uint32_t *remap = ndl_malloc((slots ? slots : 1) * sizeof *remap);
    rc = remap ? copy_live(c, &n, slots, remap, err)
                          : ndl_err(err, NDL_NOMEM, "out of memory compacting '%s'", c->name);
    if (rc == NDL_OK) {
        /* readers hold swap_lock for a whole read; map_lock too keeps the
         * payload readers (get, search results) out */
        pthread_rwlock_wrlock(&c->swap_lock);
        pthread_rwlock_wrlock(&c->map_lock);
        payload_store_take(&n.payloads, &c->payloads, remap, slots);
        swap_bytes(&c->vectors, &n.vectors, sizeof c->vectors);
        swap_bytes(&c->ids, &n.ids, sizeof c->ids);
        swap_bytes(&c->payloads, &n.payloads, sizeof c->payloads);
        swap_bytes(&c->hidden, &n.hidden, sizeof c->hidden);
        if (n.ann) {
            vindex *old = c->ann;
            c->ann = n.ann;
            n.ann = old;
        }
        pthread_rwlock_unlock(&c->map_lock);
        pthread_rwlock_unlock(&c->swap_lock);
        vectors_seal_retire(&c->seal); /* its records are unmapped below */
        c->dirty = true;
        c->compactions++;
    }
    compacted_free(&n); /* the old structures after a swap, else the partial new ones */
    ndl_free(remap);
    return rc;
}

NDL_API ndl_status ndl_collection_compact(ndl_collection *c, ndl_error *err)
{
    ndl_status rc = coll_check_writable(c, err);
    if (rc != NDL_OK)
        return rc;
    pthread_mutex_lock(&c->checkpoint_lock); /* a checkpoint reads the structures we swap */
    pthread_mutex_lock(&c->write_lock);
    rc = coll_compact_locked(c, err);
    pthread_mutex_unlock(&c->write_lock);
    pthread_mutex_unlock(&c->checkpoint_lock);
    return rc == NDL_OK ? ndl_collection_flush(c, err) : rc;
}
