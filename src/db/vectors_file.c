/*
 * vectors_file.c -- writing, mapping and verifying a checkpoint's vectors
 * file (format and design: vectors_file.h).
 */
#include "db/vectors_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "storage/sfile.h"
#include "util/alloc.h"
#include "util/crc32c.h"
#include "util/le.h"

#define VECS_KIND SFILE_KIND('V', 'E', 'C', 'S')
#define TRAILER_BYTES 12

static uint32_t chunks_for(uint32_t slots)
{
    return (uint32_t)(((uint64_t)slots + ARENA_CHUNK_SLOTS - 1) >> ARENA_CHUNK_SHIFT);
}

/* Records in chunk ci of a file of `slots` records. */
static uint32_t chunk_records(uint32_t slots, uint32_t ci)
{
    uint32_t first = ci << ARENA_CHUNK_SHIFT;
    return NDL_MIN(ARENA_CHUNK_SLOTS, slots - first);
}

/* ---------------------------------------------------------------- the seal */

void vectors_seal_init(vectors_seal *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->state, SEAL_VERIFIED);
}

void vectors_seal_destroy(vectors_seal *s)
{
    pthread_mutex_destroy(&s->lock);
    ndl_free(s->path);
    s->path = NULL;
}

/* The message for a mismatch in chunk ci of a file of `slots` records. */
static void mismatch(char *out, size_t cap, const char *path, uint32_t slots, uint32_t ci)
{
    uint32_t first = ci << ARENA_CHUNK_SHIFT;
    snprintf(out, cap, "checksum mismatch in '%s', vectors chunk %u (slots %u..%u)", path, ci,
             first, first + chunk_records(slots, ci) - 1);
}

/* lock held */
static void seal_fail_locked(vectors_seal *s, uint32_t ci)
{
    if (atomic_load(&s->state) == SEAL_DAMAGED)
        return;
    mismatch(s->damage, sizeof s->damage, s->path, s->slots, ci);
    atomic_store_explicit(&s->state, SEAL_DAMAGED, memory_order_release);
}

bool vectors_seal_pending(vectors_seal *s)
{
    return atomic_load_explicit(&s->state, memory_order_acquire) == SEAL_PENDING;
}

ndl_status vectors_seal_verify(vectors_seal *s, size_t max_bytes, ndl_error *err)
{
    pthread_mutex_lock(&s->lock);
    size_t budget = max_bytes;
    while (atomic_load(&s->state) == SEAL_PENDING && budget > 0) {
        uint32_t first = s->next << ARENA_CHUNK_SHIFT;
        size_t bytes = (size_t)chunk_records(s->slots, s->next) * s->rec_bytes;
        size_t step = NDL_MIN(bytes - s->next_done, budget);
        s->next_crc = crc32c(s->next_crc, s->records + (size_t)first * s->rec_bytes + s->next_done,
                             step);
        s->next_done += step;
        budget -= step;
        if (s->next_done < bytes)
            break;
        if (s->next_crc != le_get32(s->crcs + 4 * (size_t)s->next)) {
            seal_fail_locked(s, s->next);
            break;
        }
        s->next++;
        s->next_done = 0;
        s->next_crc = 0;
        if (s->next == s->nchunks)
            atomic_store_explicit(&s->state, SEAL_VERIFIED, memory_order_release);
    }
    ndl_status rc = NDL_OK;
    if (atomic_load(&s->state) == SEAL_DAMAGED)
        rc = ndl_err(err, NDL_CORRUPT, "%s", s->damage);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void vectors_seal_settle(vectors_seal *s)
{
    pthread_mutex_lock(&s->lock);
    if (atomic_load(&s->state) == SEAL_PENDING) {
        s->next = s->nchunks;
        atomic_store_explicit(&s->state, SEAL_VERIFIED, memory_order_release);
    }
    pthread_mutex_unlock(&s->lock);
}

void vectors_seal_retire(vectors_seal *s)
{
    pthread_mutex_lock(&s->lock);
    s->records = s->crcs = NULL;
    s->slots = s->nchunks = s->next = 0;
    if (atomic_load(&s->state) == SEAL_PENDING)
        atomic_store(&s->state, SEAL_VERIFIED);
    pthread_mutex_unlock(&s->lock);
}

/* ---------------------------------------------------------------- writing */

ndl_status vectors_file_write(const vec_arena *a, uint32_t slots, vectors_seal *seal,
                              const char *path, ndl_error *err)
{
    uint32_t nchunks = chunks_for(slots);
    uint8_t *table = ndl_malloc((size_t)nchunks * 4 + TRAILER_BYTES);
    if (!table)
        return ndl_err(err, NDL_NOMEM, "out of memory writing '%s'", path);
    sfile_writer *w;
    ndl_status rc = sfile_create(path, VECS_KIND, VECS_VERSION, &w, err);
    if (rc != NDL_OK) {
        ndl_free(table);
        return rc;
    }
    size_t rb = a->rec_bytes;
    for (uint32_t ci = 0; ci < nchunks && rc == NDL_OK; ci++) {
        const uint8_t *p = arena_rec(a, ci << ARENA_CHUNK_SHIFT);
        size_t n = chunk_records(slots, ci);
        size_t sealed = ci < seal->nchunks ? NDL_MIN(n, chunk_records(seal->slots, ci)) : 0;
        uint32_t crc = crc32c(0, p, sealed * rb);
        if (sealed && crc != le_get32(seal->crcs + 4 * (size_t)ci)) {
            /* never copy a flipped bit under a fresh checksum */
            pthread_mutex_lock(&seal->lock);
            seal_fail_locked(seal, ci);
            pthread_mutex_unlock(&seal->lock);
            rc = ndl_err(err, NDL_CORRUPT, "%s", seal->damage);
            break;
        }
        crc = crc32c(crc, p + sealed * rb, (n - sealed) * rb);
        le_put32(table + 4 * (size_t)ci, crc);
        rc = sfile_write(w, p, n * rb, err);
    }
    if (rc == NDL_OK)
        vectors_seal_settle(seal); /* every sealed record was compared on the way */
    uint8_t *trailer = table + (size_t)nchunks * 4;
    le_put32(trailer, ARENA_CHUNK_SLOTS);
    le_put32(trailer + 4, nchunks);
    le_put32(trailer + 8, crc32c(0, table, (size_t)nchunks * 4 + 8));
    if (rc == NDL_OK)
        rc = sfile_write(w, table, (size_t)nchunks * 4 + TRAILER_BYTES, err);
    ndl_free(table);
    if (rc != NDL_OK) {
        sfile_abort(w);
        return rc;
    }
    return sfile_commit(w, err);
}

/* ---------------------------------------------------------------- reading */

/* Check the layout and the trailer of a version 2 file; *crcs = its table. */
static ndl_status parse_v2(const sfile_map *m, const char *path, size_t rec_bytes,
                           uint32_t slots, const uint8_t **crcs, ndl_error *err)
{
    uint32_t nchunks = chunks_for(slots);
    uint64_t records = (uint64_t)slots * rec_bytes;
    uint64_t want = records + (uint64_t)nchunks * 4 + TRAILER_BYTES;
    if (m->data_len != want)
        return ndl_err(err, NDL_CORRUPT,
                       "'%s' holds %llu bytes; %u vectors of %zu bytes and their checksums "
                       "take %llu",
                       path, (unsigned long long)m->data_len, slots, rec_bytes,
                       (unsigned long long)want);
    const uint8_t *table = m->data + records;
    const uint8_t *trailer = table + (size_t)nchunks * 4;
    if (le_get32(trailer + 8) != crc32c(0, table, (size_t)nchunks * 4 + 8))
        return ndl_err(err, NDL_CORRUPT, "'%s': the vectors' chunk checksums are damaged", path);
    if (le_get32(trailer) != ARENA_CHUNK_SLOTS || le_get32(trailer + 4) != nchunks)
        return ndl_err(err, NDL_CORRUPT, "'%s': %u chunks of %u vectors; expected %u of %u",
                       path, le_get32(trailer + 4), le_get32(trailer), nchunks,
                       ARENA_CHUNK_SLOTS);
    *crcs = table;
    return NDL_OK;
}

ndl_status vectors_file_load(vec_arena *a, const char *path, uint32_t slots, vectors_seal *seal,
                             ndl_error *err)
{
    sfile_map map;
    ndl_status rc = sfile_map_open(path, VECS_KIND, VECS_VERSION, 0, &map, err);
    if (rc != NDL_OK)
        return rc;
    const uint8_t *crcs = NULL;
    if (map.version >= 2) {
        rc = parse_v2(&map, path, a->rec_bytes, slots, &crcs, err);
    } else if (map.data_len != (uint64_t)slots * a->rec_bytes) {
        rc = ndl_err(err, NDL_CORRUPT, "'%s' holds %llu bytes; %u vectors of %zu bytes expected",
                     path, (unsigned long long)map.data_len, slots, a->rec_bytes);
    } else {
        /* version 1 has no chunk checksums: the whole file, now */
        rc = sfile_verify(&map, path, err);
    }
    char *name = rc == NDL_OK ? ndl_strndup(path, strlen(path)) : NULL;
    if (rc == NDL_OK && !name)
        rc = ndl_err(err, NDL_NOMEM, "out of memory");
    int fd = -1;
    if (rc == NDL_OK && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        rc = ndl_err(err, NDL_IO, "cannot open '%s': %s", path, strerror(errno));
    if (rc == NDL_OK)
        rc = arena_adopt_mapping(a, map.base, map.len, map.data, slots, fd, err);
    if (fd >= 0)
        close(fd);
    if (rc != NDL_OK) {
        ndl_free(name);
        sfile_map_close(&map);
        return rc;
    }
    pthread_mutex_lock(&seal->lock);
    ndl_free(seal->path);
    seal->path = name;
    seal->records = map.data;
    seal->crcs = crcs;
    seal->rec_bytes = a->rec_bytes;
    seal->slots = crcs ? slots : 0;
    seal->nchunks = crcs ? chunks_for(slots) : 0;
    seal->next = 0;
    seal->next_done = 0;
    seal->next_crc = 0;
    atomic_store(&seal->state, seal->nchunks ? SEAL_PENDING : SEAL_VERIFIED);
    pthread_mutex_unlock(&seal->lock);
    return NDL_OK;
}

ndl_status vectors_file_check(const char *path, size_t rec_bytes, uint32_t slots,
                              ndl_error *err)
{
    sfile_map m;
    ndl_status rc = sfile_map_open(path, VECS_KIND, VECS_VERSION, 0, &m, err);
    if (rc != NDL_OK)
        return rc;
    const uint8_t *crcs = NULL;
    if (m.version < 2) {
        rc = m.data_len == (uint64_t)slots * rec_bytes
                 ? sfile_verify(&m, path, err)
                 : ndl_err(err, NDL_CORRUPT, "'%s' holds %llu bytes; %u vectors of %zu bytes "
                           "expected", path, (unsigned long long)m.data_len, slots, rec_bytes);
    } else if ((rc = parse_v2(&m, path, rec_bytes, slots, &crcs, err)) == NDL_OK) {
        /* the chunk CRCs cover the records, the trailer's CRC the rest */
        for (uint32_t ci = 0; ci < chunks_for(slots); ci++) {
            const uint8_t *p = m.data + ((size_t)ci << ARENA_CHUNK_SHIFT) * rec_bytes;
            if (crc32c(0, p, (size_t)chunk_records(slots, ci) * rec_bytes) !=
                le_get32(crcs + 4 * (size_t)ci)) {
                char msg[sizeof ((vectors_seal *)0)->damage];
                mismatch(msg, sizeof msg, path, slots, ci);
                rc = ndl_err(err, NDL_CORRUPT, "%s", msg);
                break;
            }
        }
    }
    sfile_map_close(&m);
    return rc;
}
