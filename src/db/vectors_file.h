/*
 * vectors_file.h -- a checkpoint's vectors file (sfile "VECS") and the
 * verification of its checksums after open.
 *
 * Version 2 data, little-endian:
 *   records      slots * rec_bytes in slot order (at data offset 0, so 64-byte
 *                aligned in a mapping)
 *   chunk CRCs   one u32 per chunk of ARENA_CHUNK_SLOTS slots (the last may
 *                be partial): CRC32C of that chunk's records
 *   trailer      u32 chunk_slots, u32 nchunks, u32 CRC32C of the chunk CRCs
 *                and the two fields before it
 * Version 1 (still read) is the records alone.
 *
 * Opening maps the records and checks only the header and the trailer, so
 * a large collection opens without reading its vectors. The records are
 * verified afterwards, chunk by chunk, against their CRCs: by a background
 * thread, by ndl_collection_verify, at open when the database asks for it
 * (the CLI), and by every checkpoint and compaction that copies them, so a
 * flipped bit is never rewritten under a fresh checksum. A mismatch marks
 * the seal damaged; the collection then answers NDL_CORRUPT to every read
 * and write (docs/DESIGN.md, bit flips).
 */
#ifndef NDL_DB_VECTORS_FILE_H
#define NDL_DB_VECTORS_FILE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/arena.h"
#include "util/base.h"

#define VECS_VERSION 2 /* 2 adds the chunk CRCs; 1 still read */

enum { SEAL_PENDING, SEAL_VERIFIED, SEAL_DAMAGED };

/* What is left to verify of the vectors a collection was opened from. */
typedef struct vectors_seal {
    pthread_mutex_t lock;     /* one verifier at a time; guards the progress */
    _Atomic int state;        /* SEAL_PENDING, SEAL_VERIFIED or SEAL_DAMAGED */
    char damage[320];         /* SEAL_DAMAGED: what was found (written before state) */
    char *path;               /* the file, for messages */
    const uint8_t *records;   /* in the arena's mapping of the file */
    const uint8_t *crcs;      /* u32 per chunk, in the same mapping */
    size_t rec_bytes;
    uint32_t slots;           /* records the file holds (0 once retired) */
    uint32_t nchunks;
    uint32_t next;            /* chunks below are verified */
    size_t next_done;         /* bytes of chunk `next` verified ... */
    uint32_t next_crc;        /* ... and their CRC so far */
} vectors_seal;

/* An empty seal: nothing to verify. */
void vectors_seal_init(vectors_seal *s);
void vectors_seal_destroy(vectors_seal *s);

/* Write the first `slots` records of a to path as a version 2 file. The
 * records a (not retired) seal covers are compared with its CRCs as they
 * are copied: NDL_CORRUPT (and the seal damaged) on a mismatch, and no file
 * is left; once written, the seal has nothing left to verify. */
ndl_status vectors_file_write(const vec_arena *a, uint32_t slots, vectors_seal *seal,
                              const char *path, ndl_error *err);

/* Map path (which must hold `slots` records of a's size) into the empty
 * arena a and set seal up to verify them; version 1 files are verified in
 * full here. NDL_OK, NDL_CORRUPT (naming the file), NDL_NOT_FOUND, NDL_IO,
 * NDL_UNSUPPORTED, NDL_NOMEM. */
ndl_status vectors_file_load(vec_arena *a, const char *path, uint32_t slots, vectors_seal *seal,
                             ndl_error *err);

/* Verify up to max_bytes more of the sealed records (SIZE_MAX: all).
 * NDL_OK (vectors_seal_pending tells whether work is left) or NDL_CORRUPT
 * naming the file and chunk; later calls repeat that answer. */
ndl_status vectors_seal_verify(vectors_seal *s, size_t max_bytes, ndl_error *err);
bool vectors_seal_pending(vectors_seal *s);

/* Every sealed record was verified by other means (a checkpoint compared
 * them, check read the same file): nothing left to do. */
void vectors_seal_settle(vectors_seal *s);

/* The records moved (compaction, after vectors_seal_verify of them all):
 * the seal covers nothing any more. */
void vectors_seal_retire(vectors_seal *s);

/* ndl_collection_check: verify every byte of path, a file of `slots`
 * records of rec_bytes (layout, trailer, every chunk CRC naming the chunk;
 * version 1: the data CRC). */
ndl_status vectors_file_check(const char *path, size_t rec_bytes, uint32_t slots,
                              ndl_error *err);

#endif
