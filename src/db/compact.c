/*
 * compact.c -- reclaiming the slots of deleted and replaced points, online.
 *
 * Slots are append-only (an upsert takes a fresh slot; the old one is only
 * hidden), so dead slots pile up: their vectors, ids, payloads and graph
 * nodes. Compaction copies the live slots, in order, into new structures,
 * in three steps:
 *   1. snapshot (write_lock, briefly): the slot count, a copy of the hidden
 *      set, a frozen clone of the graph;
 *   2. copy (no lock: writers and readers go on): the vectors and ids of
 *      the slots live in the snapshot, and the graph through the index's
 *      compact method (the long part: links to removed nodes re-filled);
 *   3. catch up: slots the writers added meanwhile are appended and
 *      inserted into the new graph on every core, first without the lock
 *      (a few rounds, while there is much), then under write_lock in
 *      slices of CATCH_UP_SLICE_MS with pauses between them for the
 *      writers: a writer as fast as the unlocked catch-up (it shares the
 *      cores) would otherwise keep the backlog from shrinking and then
 *      wait for all of it at once; inside a slice the catch-up has every
 *      core. Once at most CATCH_UP_LAST slots are left, the slice takes
 *      the rest and goes on to the swap; under the lock
 *      too, slots hidden since the snapshot are hidden in the copy (and
 *      removed from its graph), ids point at the new slots, payload
 *      references are taken as they are now; then the structures are
 *      swapped in under swap_lock, which every reader holds for the length
 *      of its read.
 * So writers wait only for the snapshot, a slice, and the last catch-up,
 * and searches only for the swap.
 *
 * Compaction changes slot numbers, not contents: the log records ids, so
 * the checkpoint on disk plus the log still describe the same points. The
 * checkpoint that follows (ndl_collection_compact flushes; a checkpoint
 * compacts first when due, both under checkpoint_lock) writes the
 * compacted files and so reclaims the disk too.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/db_internal.h"
#include "util/alloc.h"

#define CATCH_UP_UNLOCKED_ROUNDS 4
#define CATCH_UP_LAST 64           /* slots left for the final catch-up */
#define CATCH_UP_SLICE_MS 20       /* the longest a slice holds write_lock ... */
#define CATCH_UP_BATCH 128         /* ... checked after each batch of slots */
#define CATCH_UP_PAUSE_MS 5        /* the lock let go between slices */

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

/* What step 1 took. */
typedef struct compact_snapshot {
    uint32_t slots;
    bitset dead;       /* hidden slots then */
    vindex *graph;     /* frozen clone of c->ann, or NULL */
} compact_snapshot;

static void compact_snapshot_free(compact_snapshot *s)
{
    if (s->graph)
        s->graph->m->destroy(s->graph);
    bitset_destroy(&s->dead);
}

/* Append slot s of c (vector and id) to n as its next slot. */
static ndl_status append_slot(ndl_collection *c, compacted *n, uint32_t s, uint32_t *ns,
                              ndl_error *err)
{
    void *rec;
    ndl_status rc = arena_reserve(&n->vectors, ns, &rec, err);
    if (rc != NDL_OK)
        return rc;
    memcpy(rec, arena_rec(&c->vectors, s), c->vectors.rec_bytes);
    arena_publish(&n->vectors, *ns + 1);
    return idmap_set_slot(&n->ids, *ns, idmap_slot_to_id(idmap_slot(&c->ids, s)), err);
}

/* Step 2: the slots live in the snapshot into n; remap[old] = new slot
 * or UINT32_MAX. Reads only what no writer changes: vectors and ids of
 * slots below the snapshot's count, the frozen graph. */
static ndl_status copy_live(ndl_collection *c, compacted *n, const compact_snapshot *snap,
                            uint32_t *remap, ndl_error *err)
{
    ndl_status rc;
    if ((rc = arena_init(&n->vectors, c->vectors.rec_bytes, err)) != NDL_OK ||
        (rc = idmap_init(&n->ids, err)) != NDL_OK ||
        (rc = payload_store_init(&n->payloads, err)) != NDL_OK ||
        (rc = bitset_init(&n->hidden, err)) != NDL_OK)
        return rc;
    for (uint32_t s = 0; s < snap->slots; s++) {
        remap[s] = UINT32_MAX;
        if (bitset_test(&snap->dead, s))
            continue;
        uint32_t ns, old;
        if ((rc = append_slot(c, n, s, &ns, err)) != NDL_OK ||
            (rc = idmap_put(&n->ids, idmap_slot_to_id(idmap_slot(&n->ids, ns)), ns, &old, err)) !=
                NDL_OK)
            return rc;
        remap[s] = ns;
    }
    if (snap->graph && snap->graph->m->compact)
        rc = snap->graph->m->compact(snap->graph, remap, snap->slots, &n->vectors, &n->ann, err);
    return rc;
}

/* Where step 3 is: the slots of c in n so far, and their remap. */
typedef struct catch_up_state {
    uint32_t *remap;            /* taken entries */
    uint32_t taken;
    uint32_t *fresh;            /* new slots of n to insert, per call */
    ndl_write_options insert;   /* on every core */
} catch_up_state;

/* Step 3: append the slots writers added since the last call, up to upto,
 * to n and insert them into its graph (on every core). Without the lock a
 * slot may still be staged, so all are inserted and catch_up decides what
 * stays; under it (locked), hidden ones are hidden in n at once. */
static ndl_status take_new_slots(ndl_collection *c, compacted *n, catch_up_state *st,
                                 uint32_t upto, bool locked, ndl_error *err)
{
    if (upto <= st->taken)
        return NDL_OK;
    uint32_t *remap = ndl_realloc(st->remap, (size_t)upto * sizeof *remap);
    uint32_t *fresh = remap ? ndl_realloc(st->fresh, (size_t)(upto - st->taken) * sizeof *fresh)
                            : NULL;
    if (remap)
        st->remap = remap;
    if (fresh)
        st->fresh = fresh;
    if (!remap || !fresh)
        return ndl_err(err, NDL_NOMEM, "out of memory compacting '%s'", c->name);
    ndl_status rc = NDL_OK;
    size_t k = 0;
    for (uint32_t s = st->taken; s < upto && rc == NDL_OK; s++) {
        uint32_t ns;
        if ((rc = append_slot(c, n, s, &ns, err)) != NDL_OK)
            break;
        remap[s] = ns;
        st->taken = s + 1;
        if (locked && bitset_test(&c->hidden, s))
            bitset_set(&n->hidden, ns);
        else
            fresh[k++] = ns;
    }
    return rc == NDL_OK ? coll_index_slots(n->ann, fresh, k, &st->insert, err) : rc;
}

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Step 3 under the lock, a slice at a time: returns holding write_lock,
 * with at most CATCH_UP_LAST slots left to take (or an error). A slice
 * takes batches until that is so -- then the final catch-up and the swap
 * follow under the same hold -- or until CATCH_UP_SLICE_MS have passed;
 * then the lock is let go for CATCH_UP_PAUSE_MS so writers get in (the lock
 * is not fair: without the pause it could be taken again at once). A
 * writer waits at most about a slice. Writers gain only during pauses, so
 * the backlog shrinks unless they are faster than the catch-up on every
 * core by the slice-to-pause ratio; if it has not shrunk for 4 slices, the
 * slices double until it does. */
static ndl_status lock_caught_up(ndl_collection *c, compacted *n, catch_up_state *st,
                                 ndl_error *err)
{
    uint64_t slice = CATCH_UP_SLICE_MS;
    uint32_t least = UINT32_MAX;
    int stalled = 0;
    for (;;) {
        pthread_mutex_lock(&c->write_lock);
        uint32_t now = arena_count(&c->vectors); /* fixed while the lock is held */
        uint64_t until = now_ms() + slice;
        ndl_status rc = NDL_OK;
        while (rc == NDL_OK && now - st->taken > CATCH_UP_LAST && now_ms() < until)
            rc = take_new_slots(c, n, st, NDL_MIN(now, st->taken + CATCH_UP_BATCH), true, err);
        if (rc != NDL_OK || now - st->taken <= CATCH_UP_LAST)
            return rc;
        pthread_mutex_unlock(&c->write_lock);
        if (now - st->taken < least) {
            least = now - st->taken;
            stalled = 0;
        } else if (++stalled == 4) {
            slice *= 2;
            stalled = 0;
        }
        nanosleep(&(struct timespec){0, CATCH_UP_PAUSE_MS * 1000000L}, NULL);
    }
}

/* Step 3 before the swap (write_lock held): the last new slots, then what
 * the writers changed since the snapshot: slots hidden since (deleted,
 * replaced, a failed write) are hidden in n and removed from its graph,
 * the ids of new live slots point at them (ascending, so a replacement's
 * new slot comes after its old one), payload references as they are now
 * (set_payload changes texts in place). */
static ndl_status catch_up(ndl_collection *c, compacted *n, const compact_snapshot *snap,
                           catch_up_state *st, ndl_error *err)
{
    uint32_t slots = arena_count(&c->vectors);
    ndl_status rc = take_new_slots(c, n, st, slots, true, err);
    for (uint32_t s = 0; s < slots && rc == NDL_OK; s++) {
        uint32_t ns = st->remap[s], old;
        if (ns == UINT32_MAX || bitset_test(&n->hidden, ns))
            continue;
        ndl_id id = idmap_slot_to_id(idmap_slot(&n->ids, ns));
        if (bitset_test(&c->hidden, s)) {
            bitset_set(&n->hidden, ns);
            if (n->ann)
                n->ann->m->remove(n->ann, ns);
            if (idmap_find(&n->ids, id) == ns)
                idmap_remove(&n->ids, id);
        } else if (s >= snap->slots) {
            rc = idmap_put(&n->ids, id, ns, &old, err);
        }
    }
    for (uint32_t s = 0; s < slots && rc == NDL_OK; s++)
        if (st->remap[s] != UINT32_MAX)
            rc = payload_store_append_ref(&n->payloads, st->remap[s],
                                          payload_store_ref(&c->payloads, s), err);
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

/* Step 3, the swap (write_lock held). *fields: the payload indexes
 * renumbered for the new slots (coll_fields_remapped), swapped in too and
 * *fields then holds the old ones; NULL: filters check payloads until the
 * indexes are rebuilt. */
static void swap_in(ndl_collection *c, compacted *n, const uint32_t *remap, uint32_t slots,
                    field_index ***fields)
{
    /* readers hold swap_lock for a whole read; map_lock too keeps the
     * payload readers (get, search results) out */
    pthread_rwlock_wrlock(&c->swap_lock);
    pthread_rwlock_wrlock(&c->map_lock);
    payload_store_take(&n->payloads, &c->payloads, remap, slots);
    swap_bytes(&c->vectors, &n->vectors, sizeof c->vectors);
    swap_bytes(&c->ids, &n->ids, sizeof c->ids);
    swap_bytes(&c->payloads, &n->payloads, sizeof c->payloads);
    swap_bytes(&c->hidden, &n->hidden, sizeof c->hidden);
    if (*fields) {
        field_index **old = c->fields;
        c->fields = *fields;
        *fields = old;
    } else {
        c->fields_built = false; /* their slots are the old ones */
    }
    if (n->ann) {
        vindex *old = c->ann;
        c->ann = n->ann;
        c->ann->arena = &c->vectors; /* it was built over n->vectors */
        n->ann = old;
    }
    pthread_rwlock_unlock(&c->map_lock);
    pthread_rwlock_unlock(&c->swap_lock);
}

static void (*copy_hook)(ndl_collection *, void *);
static void *copy_hook_ctx;
static atomic_int unlocked_rounds = -1;
static _Atomic uint32_t last_takes[3];

void coll_compact_set_unlocked_rounds(int rounds) { atomic_store(&unlocked_rounds, rounds); }

void coll_compact_last_takes(uint32_t out[3])
{
    for (int i = 0; i < 3; i++)
        out[i] = atomic_load(&last_takes[i]);
}

void coll_compact_set_hook(void (*fn)(ndl_collection *, void *), void *ctx)
{
    copy_hook = fn;
    copy_hook_ctx = ctx;
}

bool coll_compaction_due(const ndl_collection *c)
{
    uint32_t slots = arena_count(&c->vectors);
    uint64_t dead = slots - atomic_load(&c->live);
    return dead >= COMPACT_MIN_DEAD && dead * COMPACT_DEAD_DIVISOR >= slots;
}

ndl_status coll_compact(ndl_collection *c, ndl_error *err)
{
    /* the copy must not carry a flipped bit of the mapped vectors over */
    ndl_status rc = vectors_seal_verify(&c->seal, SIZE_MAX, err);
    if (rc != NDL_OK)
        return coll_check_intact(c, err);
    compact_snapshot snap;
    memset(&snap, 0, sizeof snap);
    pthread_mutex_lock(&c->write_lock);
    snap.slots = arena_count(&c->vectors);
    bool nothing = atomic_load(&c->live) == snap.slots;
    if (!nothing && (rc = bitset_init(&snap.dead, err)) == NDL_OK) {
        bitset_copy_prefix(&snap.dead, &c->hidden, snap.slots);
        if (c->ann && c->ann->m->clone)
            rc = c->ann->m->clone(c->ann, &snap.graph, err);
    }
    pthread_mutex_unlock(&c->write_lock);
    if (nothing || rc != NDL_OK) {
        compact_snapshot_free(&snap);
        return rc;
    }

    if (copy_hook)
        copy_hook(c, copy_hook_ctx);
    compacted n;
    memset(&n, 0, sizeof n);
    catch_up_state st = {.taken = snap.slots};
    ndl_write_options_init(&st.insert);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    st.insert.threads = cpus > 0 ? (uint32_t)cpus : 1;
    st.remap = ndl_malloc((st.taken ? st.taken : 1) * sizeof *st.remap);
    rc = st.remap ? copy_live(c, &n, &snap, st.remap, err)
                  : ndl_err(err, NDL_NOMEM, "out of memory compacting '%s'", c->name);
    if (snap.graph) { /* not needed any more: free it before the catch-up */
        snap.graph->m->destroy(snap.graph);
        snap.graph = NULL;
    }

    /* writers went on meanwhile: take what they added, a few times while
     * that is much, then in slices under the lock */
    int rounds = atomic_load(&unlocked_rounds);
    rounds = rounds < 0 ? CATCH_UP_UNLOCKED_ROUNDS : rounds;
    uint32_t mark[3] = {st.taken};
    for (int round = 0; round < rounds && rc == NDL_OK; round++) {
        uint32_t now = arena_count(&c->vectors);
        if (now - st.taken < CATCH_UP_LAST)
            break;
        rc = take_new_slots(c, &n, &st, now, false, err);
    }
    mark[1] = st.taken;
    if (rc == NDL_OK)
        rc = lock_caught_up(c, &n, &st, err); /* returns holding write_lock */
    else
        pthread_mutex_lock(&c->write_lock);
    mark[2] = st.taken;
    if (rc == NDL_OK)
        rc = catch_up(c, &n, &snap, &st, err);
    atomic_store(&last_takes[0], mark[1] - mark[0]);
    atomic_store(&last_takes[1], mark[2] - mark[1]);
    atomic_store(&last_takes[2], st.taken - mark[2]);
    if (rc == NDL_OK) {
        /* the payload indexes on the new slots: renumbered, a pass over
         * their entries (writes wait for it, not for a parse of every
         * payload); if that fails, rebuilt from the payloads after the swap
         * (on failure again filters check payloads until the next open) */
        field_index **fields = coll_fields_remapped(c, st.remap, st.taken);
        bool remapped = fields != NULL;
        swap_in(c, &n, st.remap, st.taken, &fields);
        coll_fields_list_free(fields, c->nfields); /* the old ones */
        vectors_seal_retire(&c->seal); /* its records are unmapped below */
        c->dirty = true;
        ndl_error ignored;
        if (c->nfields && !remapped)
            coll_fields_build(c, &ignored);
    }
    pthread_mutex_unlock(&c->write_lock);
    compacted_free(&n); /* the old structures after a swap, else the partial new ones */
    compact_snapshot_free(&snap);
    ndl_free(st.remap);
    ndl_free(st.fresh);
    return rc;
}

NDL_API ndl_status ndl_collection_compact(ndl_collection *c, ndl_error *err)
{
    ndl_status rc = coll_check_writable(c, err);
    if (rc != NDL_OK)
        return rc;
    pthread_mutex_lock(&c->checkpoint_lock); /* a checkpoint reads the structures we swap */
    rc = coll_compact(c, err);
    pthread_mutex_unlock(&c->checkpoint_lock);
    return rc == NDL_OK ? ndl_collection_flush(c, err) : rc;
}
