/*
 * hnsw_io.c -- the graph file, an sfile of kind "HNSW", version 1. Data
 * (all integers little-endian u32 unless noted):
 *
 *   m, m0, ef_construction, reserved(0), seed (u64),
 *   nodes, entry slot (0xffffffff = empty graph), top level, reserved(0),
 *   level[nodes] (u8), removed[nodes] (u8), zero padding to 8 bytes,
 *   level-0 records: nodes x (1 + m0) words [count, links...],
 *   upper records, for each node with level > 0 in slot order:
 *     level x (1 + m) words.
 *
 * Loading checks every count and link against the node count, so a damaged
 * file that still passes its CRC cannot send a search out of bounds.
 */
#include <string.h>

#include "index/hnsw_internal.h"
#include "storage/sfile.h"
#include "util/alloc.h"

#define HNSW_KIND SFILE_KIND('H', 'N', 'S', 'W')
#define HNSW_VERSION 1

static ndl_status put32(sfile_writer *w, uint32_t v, ndl_error *err)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return sfile_write(w, b, 4, err);
}

/* Links are stored little-endian; this code assumes a little-endian host
 * (x86-64, aarch64), checked at compile time. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian host required");

static ndl_status write_body(hnsw *h, sfile_writer *w, uint32_t nodes, ndl_error *err)
{
    uint64_t e = atomic_load(&h->entry);
    uint32_t entry = e == HNSW_ENTRY_NONE ? UINT32_MAX : (uint32_t)e;
    uint32_t top = e == HNSW_ENTRY_NONE ? 0 : (uint32_t)(e >> 32);
    ndl_status rc;
    if ((rc = put32(w, h->m, err)) || (rc = put32(w, h->m0, err)) ||
        (rc = put32(w, h->ef_construction, err)) || (rc = put32(w, 0, err)) ||
        (rc = put32(w, (uint32_t)h->seed, err)) || (rc = put32(w, (uint32_t)(h->seed >> 32), err)) ||
        (rc = put32(w, nodes, err)) || (rc = put32(w, entry, err)) || (rc = put32(w, top, err)) ||
        (rc = put32(w, 0, err)))
        return rc;
    /* per-node bytes, chunk by chunk */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t s = 0; s < nodes; s += ARENA_CHUNK_SLOTS) {
            hnsw_chunk *c = hnsw_chunk_of(h, s);
            uint32_t n = NDL_MIN(ARENA_CHUNK_SLOTS, nodes - s);
            if ((rc = sfile_write(w, pass ? c->removed : c->level, n, err)))
                return rc;
        }
    if ((rc = sfile_pad(w, 8, err)))
        return rc;
    for (uint32_t s = 0; s < nodes; s += ARENA_CHUNK_SLOTS) {
        hnsw_chunk *c = hnsw_chunk_of(h, s);
        uint32_t n = NDL_MIN(ARENA_CHUNK_SLOTS, nodes - s);
        if ((rc = sfile_write(w, c->links0, (size_t)n * h->link0_words * 4, err)))
            return rc;
    }
    for (uint32_t s = 0; s < nodes; s++) {
        uint32_t level = hnsw_node_level(h, s);
        if (level && (rc = sfile_write(w, hnsw_links(h, s, 1),
                                       (size_t)level * h->upper_words * 4, err)))
            return rc;
    }
    return NDL_OK;
}

ndl_status hnsw_save(vindex *ix, const char *path, ndl_error *err)
{
    hnsw *h = (hnsw *)ix;
    uint32_t nodes = atomic_load(&h->nodes);
    sfile_writer *w;
    ndl_status rc = sfile_create(path, HNSW_KIND, HNSW_VERSION, &w, err);
    if (rc != NDL_OK)
        return rc;
    if ((rc = write_body(h, w, nodes, err)) != NDL_OK) {
        sfile_abort(w);
        return rc;
    }
    return sfile_commit(w, err);
}

static ndl_status corrupt(ndl_error *err, const char *path, const char *what)
{
    return ndl_err(err, NDL_CORRUPT, "graph file '%s' is damaged: %s", path, what);
}

/* A link record at `level`: count within bounds, every link names a node
 * that exists and reaches that level (a search follows it there). */
static bool links_valid(const uint32_t *w, uint32_t max, uint32_t nodes, const uint8_t *levels,
                        uint32_t level)
{
    if (w[0] > max)
        return false;
    for (uint32_t i = 1; i <= w[0]; i++)
        if (w[i] >= nodes || levels[w[i]] < level)
            return false;
    return true;
}

static ndl_status load_body(hnsw *h, sfile_cursor *cur, const sfile_map *map, const char *path,
                            ndl_error *err)
{
    uint32_t m = sfile_get_u32(cur), m0 = sfile_get_u32(cur);
    sfile_get_u32(cur); /* ef_construction: the collection's config wins */
    sfile_get_u32(cur);
    sfile_get_u64(cur); /* seed */
    uint32_t nodes = sfile_get_u32(cur), entry = sfile_get_u32(cur), top = sfile_get_u32(cur);
    sfile_get_u32(cur);
    if (cur->overrun)
        return corrupt(err, path, "header is truncated");
    if (m != h->m || m0 != h->m0)
        return corrupt(err, path, "m does not match the collection");
    if (nodes > arena_count(h->base.arena))
        return corrupt(err, path, "more nodes than vectors");
    if ((entry == UINT32_MAX) != (nodes == 0) || (nodes && entry >= nodes) || top > HNSW_MAX_LEVEL)
        return corrupt(err, path, "bad entry point");
    const uint8_t *levels = sfile_get_bytes(cur, nodes);
    const uint8_t *removed = sfile_get_bytes(cur, nodes);
    sfile_cursor_align(cur, map, 8);
    const uint32_t *links0 = sfile_get_bytes(cur, (size_t)nodes * h->link0_words * 4);
    if (cur->overrun || (nodes && (!levels || !removed || !links0)))
        return corrupt(err, path, "node table is truncated");
    if (nodes && levels[entry] != top)
        return corrupt(err, path, "entry point level mismatch");
    ndl_status rc;
    for (uint32_t s = 0; s < nodes; s++) {
        /* a removed node may sit above the top: the entry moved off it */
        if (levels[s] > (removed[s] ? HNSW_MAX_LEVEL : top))
            return corrupt(err, path, "node level above the top level");
        if (!links_valid(links0 + (size_t)s * h->link0_words, h->m0, nodes, levels, 0))
            return corrupt(err, path, "level-0 link out of range");
        if ((rc = hnsw_ensure_chunk(h, s, err)) != NDL_OK)
            return rc;
        hnsw_chunk *c = hnsw_chunk_of(h, s);
        uint32_t i = s & (ARENA_CHUNK_SLOTS - 1);
        c->level[i] = levels[s];
        c->removed[i] = removed[s] != 0;
        memcpy(c->links0 + (size_t)i * h->link0_words, links0 + (size_t)s * h->link0_words,
               h->link0_words * 4);
        if (levels[s]) {
            size_t words = (size_t)levels[s] * h->upper_words;
            const uint32_t *up = sfile_get_bytes(cur, words * 4);
            if (!up)
                return corrupt(err, path, "upper levels are truncated");
            for (uint32_t l = 0; l < levels[s]; l++)
                if (!links_valid(up + (size_t)l * h->upper_words, h->m, nodes, levels, l + 1))
                    return corrupt(err, path, "upper-level link out of range");
            uint32_t *copy = ndl_malloc(words * 4);
            if (!copy)
                return ndl_err(err, NDL_NOMEM, "out of memory loading '%s'", path);
            memcpy(copy, up, words * 4);
            c->upper[i] = copy;
            atomic_fetch_add(&h->upper_bytes, words * 4);
        }
    }
    if (cur->p != cur->end)
        return corrupt(err, path, "trailing bytes");
    atomic_store(&h->nodes, nodes);
    atomic_store(&h->entry, nodes ? (uint64_t)top << 32 | entry : HNSW_ENTRY_NONE);
    return NDL_OK;
}

ndl_status hnsw_load(vindex *ix, const char *path, ndl_error *err)
{
    hnsw *h = (hnsw *)ix;
    sfile_map map;
    ndl_status rc = sfile_map_open(path, HNSW_KIND, HNSW_VERSION, 1, &map, err);
    if (rc != NDL_OK)
        return rc;
    sfile_cursor cur;
    sfile_cursor_init(&cur, &map);
    rc = load_body(h, &cur, &map, path, err);
    sfile_map_close(&map);
    return rc;
}
