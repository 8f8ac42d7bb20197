/*
 * store.h -- the payloads of a collection: one canonical JSON text (or none)
 * per internal slot, kept in step with the vector arena (slot i's payload is
 * record i), saved by checkpoints as one "PAYL" file and mapped back on open.
 *
 * A text is either a heap copy (written since the last open) or points into
 * the mapped checkpoint file. Texts are never shared between slots.
 *
 * Concurrency: one writer (the collection's write lock). Appending a slot's
 * record happens before the slot is published, so readers need no lock for
 * slots that cannot change; replacing or clearing the text of a published
 * slot frees the old text, so readers of such slots must hold a lock that
 * the replacing writer holds exclusively (the collection's map_lock) --
 * except a snapshot's reader: while one is out, old texts are retired.
 *
 * PAYL file data (version 1), little-endian:
 *   u32 slots, u32 reserved (0),
 *   (slots + 1) u64 offsets into the text area (offset[i+1] - offset[i] is
 *   slot i's length; a length of 0 means no payload),
 *   the text area: texts back to back, no terminators.
 */
#ifndef NDL_PAYLOAD_STORE_H
#define NDL_PAYLOAD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "storage/arena.h"
#include "util/base.h"
#include "util/bitset.h"

#define PAYL_VERSION 1

typedef struct payload_ref {
    const char *text;   /* NULL: no payload; else len bytes, not terminated */
    uint32_t len;
    uint32_t owned;     /* 1: heap copy owned by the store */
} payload_ref;

typedef struct payload_store {
    vec_arena refs;     /* payload_ref per slot */
    void *map;          /* mapped checkpoint file, or NULL */
    size_t map_len;
    size_t heap_bytes;  /* bytes of owned texts */
    uint32_t snapshots; /* outstanding payload_store_snapshot()s */
    char **retired;     /* texts replaced while a snapshot may read them */
    size_t nretired, retired_cap;
} payload_store;

ndl_status payload_store_init(payload_store *s, ndl_error *err);
void payload_store_destroy(payload_store *s);

/* Number of slot records (in step with the vector arena). */
static inline uint32_t payload_store_count(const payload_store *s) { return arena_count(&s->refs); }

static inline const payload_ref *payload_store_ref(const payload_store *s, uint32_t slot)
{
    return (const payload_ref *)arena_rec(&s->refs, slot);
}

/* Record the payload of the next slot (slot must equal payload_store_count);
 * text == NULL for none. Copies the text. NDL_OK or NDL_NOMEM. */
ndl_status payload_store_append(payload_store *s, uint32_t slot, const char *text, size_t len,
                                ndl_error *err);

/* Replace the text of a published slot (text == NULL clears it). The caller
 * excludes readers of slot. NDL_OK or NDL_NOMEM (nothing changed). */
ndl_status payload_store_replace(payload_store *s, uint32_t slot, const char *text, size_t len,
                                 ndl_error *err);

/* Compaction: build a new store whose records borrow the texts of the old
 * one (payload_store_append_ref), then, once nothing can fail any more,
 * payload_store_take(dst, src, remap, n) hands dst the ownership of every
 * moved text (remap[old] = new slot, or UINT32_MAX for a dropped slot) and
 * of src's mapped file. src keeps the texts of dropped slots and frees
 * them when destroyed. Destroying dst before take frees nothing of src. */
ndl_status payload_store_append_ref(payload_store *s, uint32_t slot, const payload_ref *r,
                                    ndl_error *err);
void payload_store_take(payload_store *dst, payload_store *src, const uint32_t *remap,
                        uint32_t n);

/* A checkpoint's view of slots [0, slots): a copy of their records whose
 * texts stay valid (replaced texts are retired, not freed) until released,
 * so the file is written without blocking the writer. */
typedef struct payload_snapshot {
    payload_ref *refs;
    uint32_t slots;
} payload_snapshot;

/* Take (writer's lock held). NDL_OK or NDL_NOMEM. */
ndl_status payload_store_snapshot(payload_store *s, uint32_t slots, payload_snapshot *out,
                                  ndl_error *err);
/* Write the snapshot to path as a PAYL file, leaving out slots for which
 * skip is set (dead slots). Needs no lock. */
ndl_status payload_snapshot_write(const payload_snapshot *snap, const char *path,
                                  const bitset *skip, ndl_error *err);
/* Give back (writer's lock held): retired texts are freed with the last. */
void payload_store_release(payload_store *s, payload_snapshot *snap);

/* Map a PAYL file written for `slots` slots into an empty store: every
 * offset is checked (NDL_CORRUPT naming the file and slot); the data CRC is
 * verified. On failure the store must be destroyed, not used. */
ndl_status payload_store_load(payload_store *s, const char *path, uint32_t slots, ndl_error *err);

/* Fill records for slots [count, slots) with "no payload" (a collection
 * saved before payloads existed). */
ndl_status payload_store_extend(payload_store *s, uint32_t slots, ndl_error *err);

/* Heap bytes of records and owned texts, plus mapped text bytes. */
size_t payload_store_memory_bytes(const payload_store *s);

#endif
