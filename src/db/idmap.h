/*
 * idmap.h -- external ids (u64 or string) <-> internal slots.
 *
 * slot -> id: one 16-byte record per slot in a vec_arena (stable, lock-free
 * reads, so searches turn slots into ids without locks).
 * id -> slot: an open-addressing hash table (linear probing, backward-shift
 * delete) of slots; the key is read back through the slot record.
 * Concurrency: the table is guarded by the owner's lock (writers exclusive);
 * slot records are written once before their slot is published.
 */
#ifndef NDL_DB_IDMAP_H
#define NDL_DB_IDMAP_H

#include <stdint.h>

#include "storage/arena.h"
#include "util/base.h"

#define IDMAP_EMPTY UINT32_MAX

/* What a slot holds: str == NULL for a u64 id; else str points at a private
 * copy of the string (len bytes, NUL-terminated), owned by the idmap. */
typedef struct slot_id {
    uint64_t num;       /* u64 id, or the string's length when str != NULL */
    const char *str;
} slot_id;

typedef struct idmap {
    vec_arena slots;    /* slot_id records, one per slot ever reserved */
    uint32_t *table;    /* IDMAP_EMPTY or a slot */
    uint32_t *tags;     /* high hash bits of the entry, for quick reject */
    size_t cap;         /* power of two */
    size_t live;        /* entries in table */
    size_t str_bytes;   /* bytes of string id copies */
} idmap;

ndl_status idmap_init(idmap *m, ndl_error *err);
void idmap_destroy(idmap *m);

/* Record the id of a newly reserved slot (slot == number of records so far).
 * Copies string ids. */
ndl_status idmap_set_slot(idmap *m, uint32_t slot, ndl_id id, ndl_error *err);

static inline const slot_id *idmap_slot(const idmap *m, uint32_t slot)
{
    return (const slot_id *)arena_rec(&m->slots, slot);
}

/* Turn a slot record into a public id (borrowing the string). */
static inline ndl_id idmap_slot_to_id(const slot_id *s)
{
    ndl_id id;
    id.str = s->str;
    id.len = s->str ? (uint32_t)s->num : 0;
    id.num = s->str ? 0 : s->num;
    return id;
}

/* Slot mapped to id, or IDMAP_EMPTY. */
uint32_t idmap_find(const idmap *m, ndl_id id);
/* Map id -> slot (replacing any previous mapping); *old receives the slot it
 * replaced or IDMAP_EMPTY. */
ndl_status idmap_put(idmap *m, ndl_id id, uint32_t slot, uint32_t *old, ndl_error *err);
/* Remove id; returns its slot or IDMAP_EMPTY. */
uint32_t idmap_remove(idmap *m, ndl_id id);

/* Validate an id as SPEC section 1 allows (strings: 1..256 bytes of UTF-8). */
ndl_status idmap_check_id(ndl_id id, ndl_error *err);
/* Equality of two ids (kind and value). */
bool ndl_id_equal(ndl_id a, ndl_id b);
uint64_t ndl_id_hash(ndl_id id);

size_t idmap_memory_bytes(const idmap *m);

#endif
