/*
 * arena.c -- the chunked record arena (design: arena.h). Anonymous chunks are
 * lazily committed MAP_NORESERVE mappings, so a fresh chunk costs address
 * space only; adopted chunks point into a checkpoint file's mapping, and an
 * adopted partial last chunk is a private (copy-on-write) file mapping.
 */
#include "storage/arena.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/alloc.h"

/* Largest count: slots are u32 and count must be representable. */
#define ARENA_MAX_SLOTS UINT32_MAX

ndl_status arena_init(vec_arena *a, size_t rec_bytes, ndl_error *err)
{
    memset(a, 0, sizeof *a);
    atomic_init(&a->count, 0);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (rec_bytes == 0 || rec_bytes > (SIZE_MAX - page) / ARENA_CHUNK_SLOTS)
        return ndl_err(err, NDL_INVALID, "arena record size %zu is out of range", rec_bytes);
    a->rec_bytes = rec_bytes;
    a->chunk_alloc = (rec_bytes * ARENA_CHUNK_SLOTS + page - 1) / page * page;
    a->chunks = ndl_calloc(ARENA_MAX_CHUNKS, sizeof *a->chunks);
    a->chunk_mapped = ndl_calloc(ARENA_MAX_CHUNKS, 1);
    if (!a->chunks || !a->chunk_mapped) {
        arena_destroy(a);
        return ndl_err(err, NDL_NOMEM, "out of memory for the arena chunk table");
    }
    return NDL_OK;
}

void arena_destroy(vec_arena *a)
{
    if (a->chunks) {
        /* Scan the whole table: chunks are created by slot index, not in
         * order of nchunks, so none can be missed. */
        for (uint32_t i = 0; i < ARENA_MAX_CHUNKS; i++)
            if (a->chunks[i] && !a->chunk_mapped[i] && !(a->tail_region && i == a->nmapped))
                munmap(a->chunks[i], a->chunk_alloc);
    }
    if (a->tail_region)
        munmap(a->tail_region, a->tail_region_len);
    a->tail_region = NULL;
    if (a->map)
        munmap(a->map, a->map_len);
    ndl_free(a->chunks);
    ndl_free(a->chunk_mapped);
    a->chunks = NULL;
    a->chunk_mapped = NULL;
    a->map = NULL;
    a->map_len = 0;
    a->nchunks = 0;
    a->nmapped = 0;
    atomic_store_explicit(&a->count, 0, memory_order_relaxed);
}

/* Create anonymous chunk ci (which must not exist). */
static ndl_status chunk_create(vec_arena *a, uint32_t ci, ndl_error *err)
{
    void *p = mmap(NULL, a->chunk_alloc, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return ndl_err(err, NDL_NOMEM, "cannot map an arena chunk of %zu bytes: %s",
                       a->chunk_alloc, strerror(errno));
    a->chunks[ci] = p;
    a->chunk_mapped[ci] = 0;
    a->nchunks++;
    return NDL_OK;
}

ndl_status arena_reserve(vec_arena *a, uint32_t *slot, void **rec, ndl_error *err)
{
    /* Only the (serialized) appender writes count, so a relaxed load sees
     * its own latest value. */
    uint32_t s = atomic_load_explicit(&a->count, memory_order_relaxed);
    if (s == ARENA_MAX_SLOTS)
        return ndl_err(err, NDL_NOMEM, "arena is full (%u slots)", (unsigned)ARENA_MAX_SLOTS);
    uint32_t ci = s >> ARENA_CHUNK_SHIFT;
    if (!a->chunks[ci]) {
        ndl_status rc = chunk_create(a, ci, err);
        if (rc != NDL_OK)
            return rc;
    }
    *slot = s;
    *rec = arena_rec(a, s);
    return NDL_OK;
}

void arena_publish(vec_arena *a, uint32_t new_count)
{
    atomic_store_explicit(&a->count, new_count, memory_order_release);
}

/* Make chunk ci from the tail records at file offset off of fd (n bytes):
 * anonymous memory for the whole chunk (plus the page the offset is into),
 * with the file's pages mapped privately over its start. */
static ndl_status tail_map(vec_arena *a, uint32_t ci, int fd, uint64_t off, size_t n,
                           ndl_error *err)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t delta = (size_t)(off % page);
    size_t len = a->chunk_alloc + page;
    char *region = mmap(NULL, len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED)
        return ndl_err(err, NDL_NOMEM, "cannot map an arena chunk of %zu bytes: %s", len,
                       strerror(errno));
    /* only the file's pages: a page wholly past its end would fault */
    if (mmap(region, delta + n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
             (off_t)(off - delta)) == MAP_FAILED) {
        int e = errno;
        munmap(region, len);
        return ndl_err(err, e == ENOMEM ? NDL_NOMEM : NDL_IO,
                       "cannot map the last vectors of the file: %s", strerror(e));
    }
    a->tail_region = region;
    a->tail_region_len = len;
    a->chunks[ci] = region + delta;
    a->chunk_mapped[ci] = 0;
    a->nchunks++;
    return NDL_OK;
}

ndl_status arena_adopt_mapping(vec_arena *a, void *map, size_t map_len, const void *data,
                               uint32_t count, int fd, ndl_error *err)
{
    if (a->nchunks || a->map || atomic_load_explicit(&a->count, memory_order_relaxed))
        return ndl_err(err, NDL_INTERNAL, "cannot adopt a mapping into a non-empty arena");
    const char *d = data, *m = map;
    uint64_t need = (uint64_t)count * a->rec_bytes;
    if (d < m || (uint64_t)(d - m) > map_len || need > map_len - (size_t)(d - m))
        return ndl_err(err, NDL_CORRUPT,
                       "%u records of %zu bytes do not fit in a mapping of %zu bytes",
                       (unsigned)count, a->rec_bytes, map_len);

    uint32_t nfull = count >> ARENA_CHUNK_SHIFT;
    uint32_t tail = count & (ARENA_CHUNK_SLOTS - 1);
    size_t chunk_bytes = a->rec_bytes * ARENA_CHUNK_SLOTS;
    if (tail) {
        /* The tail gets its own writable chunk so appends can fill it. */
        uint64_t off = (uint64_t)(d - m) + (uint64_t)nfull * chunk_bytes;
        ndl_status rc = tail_map(a, nfull, fd, off, (size_t)tail * a->rec_bytes, err);
        if (rc != NDL_OK)
            return rc;
    }
    for (uint32_t i = 0; i < nfull; i++) {
        a->chunks[i] = (char *)(uintptr_t)(d + (size_t)i * chunk_bytes); /* read-only */
        a->chunk_mapped[i] = 1;
    }
    a->nchunks += nfull;
    a->nmapped = nfull;
    a->map = map;
    a->map_len = map_len;
    arena_publish(a, count);
    return NDL_OK;
}

size_t arena_memory_bytes(const vec_arena *a)
{
    uint64_t count = arena_count(a);
    uint64_t mapped = (uint64_t)a->nmapped << ARENA_CHUNK_SHIFT;
    if (mapped > count)
        mapped = count;
    uint64_t anon = count - mapped;
    return (size_t)(anon * a->rec_bytes + mapped * a->rec_bytes);
}
