/*
 * arena.h -- the vector arena of a collection: fixed-size records (one per
 * internal slot) stored in chunks of ARENA_CHUNK_SLOTS records. Chunks never
 * move once created, so readers may hold pointers while a writer appends;
 * the chunk table is allocated once at full size (ARENA_MAX_CHUNKS) and never
 * reallocated. A chunk is anonymous memory, a read-only mapping of a
 * checkpoint file, or (the file's last, partial chunk) a private writable
 * mapping of it over anonymous memory (arena_adopt_mapping), so reopening
 * maps vectors without reading or copying them.
 *
 * Concurrency: one appender at a time (the caller serializes appends);
 * any number of readers. arena_count() is published with release semantics
 * after the record is written.
 */
#ifndef NDL_STORAGE_ARENA_H
#define NDL_STORAGE_ARENA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util/base.h"

#define ARENA_CHUNK_SHIFT 16
#define ARENA_CHUNK_SLOTS (1u << ARENA_CHUNK_SHIFT)
#define ARENA_MAX_CHUNKS (1u << (32 - ARENA_CHUNK_SHIFT))
#define ARENA_ALIGN 64

typedef struct vec_arena {
    size_t rec_bytes;          /* bytes per record (a vector), fixed */
    _Atomic uint32_t count;    /* records written: slots 0..count-1 are valid */
    char **chunks;             /* ARENA_MAX_CHUNKS entries; NULL = not created */
    uint8_t *chunk_mapped;     /* 1 if the chunk points into `map` (do not free) */
    void *map;                 /* file mapping (NULL if none) */
    size_t map_len;
    uint32_t nchunks;          /* chunks created */
    uint32_t nmapped;          /* chunks 0..nmapped-1 point into `map` */
    size_t chunk_alloc;        /* bytes mmapped per anonymous chunk (page multiple) */
    void *tail_region;         /* the adopted last partial chunk's region (a private
                                  file mapping over anonymous memory), or NULL;
                                  it is chunk nmapped */
    size_t tail_region_len;
} vec_arena;

ndl_status arena_init(vec_arena *a, size_t rec_bytes, ndl_error *err);
void arena_destroy(vec_arena *a);

/* Pointer to the record of slot (slot < capacity of created chunks). */
static inline void *arena_rec(const vec_arena *a, uint32_t slot)
{
    return a->chunks[slot >> ARENA_CHUNK_SHIFT] + (size_t)(slot & (ARENA_CHUNK_SLOTS - 1)) * a->rec_bytes;
}

static inline uint32_t arena_count(const vec_arena *a)
{
    return atomic_load_explicit(&a->count, memory_order_acquire);
}

/* Reserve the next slot, which is arena_count() (creating its chunk if
 * needed), and return its record pointer for the caller to fill; publish with
 * arena_publish(slot + 1). Until then readers do not see the slot, and another
 * reserve returns the same slot, so an abandoned fill needs no undo.
 * Returns NDL_OK, or NDL_NOMEM (no memory for a chunk, or all 2^32-1 slots
 * used). */
ndl_status arena_reserve(vec_arena *a, uint32_t *slot, void **rec, ndl_error *err);
void arena_publish(vec_arena *a, uint32_t new_count);

/* Adopt `count` records that lie contiguously at `data` inside a read-only
 * mapping [map, map+map_len) of the whole file open as fd (ownership of the
 * mapping passes to the arena; fd stays the caller's and may be closed).
 * Full chunks point into the mapping. A last partial chunk is mapped again,
 * privately and writable, over anonymous memory for the rest of the chunk:
 * appends fill it without a copy at open (only the page an append touches
 * is copied, by the kernel) and the file never changes. The arena must be
 * empty.
 * Returns NDL_OK (the arena now munmaps the mapping in arena_destroy);
 * NDL_CORRUPT if the records do not fit in the mapping; NDL_INTERNAL if the
 * arena is not empty; NDL_NOMEM. On failure the mapping stays the caller's. */
ndl_status arena_adopt_mapping(vec_arena *a, void *map, size_t map_len, const void *data,
                               uint32_t count, int fd, ndl_error *err);

/* Bytes of records held in anonymous chunks plus bytes of records mapped. */
size_t arena_memory_bytes(const vec_arena *a);

#endif
