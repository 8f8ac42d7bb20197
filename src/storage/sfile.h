/*
 * sfile.h -- needle's checksummed file container. Every file a collection
 * writes (vectors, ids, graph, tombstones, manifest) is one sfile:
 *
 *   offset  size  field
 *   0       8     magic "NEEDLE\r\n"  (CR LF catch text-mode mangling)
 *   8       4     kind: four ASCII bytes naming the content ("VECS", "HNSW", ...)
 *   12      4     format version of that kind (u32 little-endian)
 *   16      8     data length in bytes (u64 LE)
 *   24      4     CRC32C of the data
 *   28      4     flags (0)
 *   32      28    reserved, zero
 *   60      4     CRC32C of bytes 0..59
 *   64      ...   data (so data is 64-byte aligned in a mapping)
 *
 * A file is valid iff the magic, kind and header CRC match, the file is at
 * least 64 + data length bytes, and (when verified) the data CRC matches.
 * Files are written to "<path>.tmp", fsynced, renamed over <path>, and the
 * directory is fsynced: a reader sees the old file or the new, never half.
 */
#ifndef NDL_STORAGE_SFILE_H
#define NDL_STORAGE_SFILE_H

#include <stddef.h>
#include <stdint.h>

#include "util/base.h"
#include "util/crc32c.h"

#define SFILE_HEADER_BYTES 64
#define SFILE_KIND(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

typedef struct sfile_writer sfile_writer;

/* Start writing path (through path.tmp). */
ndl_status sfile_create(const char *path, uint32_t kind, uint32_t version, sfile_writer **out,
                        ndl_error *err);
/* Append bytes (buffered). */
ndl_status sfile_write(sfile_writer *w, const void *data, size_t len, ndl_error *err);
/* Append zero bytes until the data length is a multiple of align. */
ndl_status sfile_pad(sfile_writer *w, size_t align, ndl_error *err);
/* Append a little-endian integer. */
ndl_status sfile_put_u32(sfile_writer *w, uint32_t v, ndl_error *err);
ndl_status sfile_put_u64(sfile_writer *w, uint64_t v, ndl_error *err);
/* Data bytes written so far. */
uint64_t sfile_written(const sfile_writer *w);
/* Finish: header, fsync, rename, fsync directory. Frees w either way. */
ndl_status sfile_commit(sfile_writer *w, ndl_error *err);
/* Give up: remove path.tmp, free w. NULL is a no-op. */
void sfile_abort(sfile_writer *w);

typedef struct sfile_map {
    void *base;           /* whole-file mapping (read-only) */
    size_t len;
    const uint8_t *data;  /* base + 64 */
    uint64_t data_len;
    uint32_t version;
    uint32_t data_crc;
} sfile_map;

/* Map path read-only and check its header (magic, kind, header CRC, length;
 * version must be <= max_version). verify_data also checks the data CRC
 * (reads the whole file). Errors name the file and what is wrong:
 * NDL_NOT_FOUND, NDL_CORRUPT, NDL_UNSUPPORTED (newer version), NDL_IO. */
ndl_status sfile_map_open(const char *path, uint32_t kind, uint32_t max_version, int verify_data,
                          sfile_map *out, ndl_error *err);
/* Verify the data CRC of an open mapping. NDL_OK or NDL_CORRUPT. */
ndl_status sfile_verify(const sfile_map *m, const char *path, ndl_error *err);
void sfile_map_close(sfile_map *m);

/* fsync a directory (after renames in it). */
ndl_status sfile_sync_dir(const char *dir, ndl_error *err);

/* Sequential reader over a mapping's data, for parsing with bounds checks. */
typedef struct sfile_cursor {
    const uint8_t *p;
    const uint8_t *end;
    int overrun;          /* set once a read went past end; reads return zeros */
} sfile_cursor;

void sfile_cursor_init(sfile_cursor *c, const sfile_map *m);
uint32_t sfile_get_u32(sfile_cursor *c);
uint64_t sfile_get_u64(sfile_cursor *c);
/* Pointer to the next len bytes (NULL and overrun if fewer remain). */
const void *sfile_get_bytes(sfile_cursor *c, size_t len);
/* Skip padding to align relative to the data start. */
void sfile_cursor_align(sfile_cursor *c, const sfile_map *m, size_t align);

#endif
