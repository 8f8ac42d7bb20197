/*
 * log_records.h -- what a collection writes to its write-ahead log: one
 * record per mutation, encoded so that applying the same records in the
 * same order always gives the same state (replay = the original writes).
 *
 * Layouts (little-endian):
 *   LOG_UPSERT: u32 n, u32 dim, n ids, then n*dim float32 (as the caller
 *               gave them; encoded on apply, deterministically)
 *   LOG_DELETE: u32 n, n ids
 *   LOG_CANCEL: u64 lsn -- the record at lsn failed to apply (out of
 *               memory) and must be skipped on replay
 * An id is u32 tag then, for tag 0xffffffff, a u64 number, else `tag`
 * bytes of a string id.
 */
#ifndef NDL_DB_LOG_RECORDS_H
#define NDL_DB_LOG_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "util/base.h"

enum { LOG_UPSERT = 1, LOG_DELETE = 2, LOG_CANCEL = 3 };

/* A growable byte buffer for encoding. */
typedef struct log_buf {
    uint8_t *p;
    size_t len, cap;
    bool failed; /* an allocation failed; len is not meaningful */
} log_buf;

void log_buf_free(log_buf *b);

/* Encode into b (which starts empty). Returns NDL_OK or NDL_NOMEM. */
ndl_status log_encode_upsert(log_buf *b, size_t n, const ndl_id *ids, uint32_t dim,
                             const float *vectors, ndl_error *err);
ndl_status log_encode_delete(log_buf *b, size_t n, const ndl_id *ids, ndl_error *err);

/* Decoded views: ids point into the record (string ids borrow its bytes),
 * vectors too when aligned, else into a copy the caller frees. */
typedef struct log_batch {
    size_t n;
    ndl_id *ids;        /* ndl_malloc'd array */
    const float *vectors;
    float *owned;       /* non-NULL when vectors had to be copied */
} log_batch;

/* Parse a record's payload; NDL_CORRUPT (naming what is wrong) when it does
 * not fit its declared counts, or when dim differs from expected_dim. */
ndl_status log_decode_upsert(const void *data, size_t len, uint32_t expected_dim,
                             log_batch *out, ndl_error *err);
ndl_status log_decode_delete(const void *data, size_t len, log_batch *out, ndl_error *err);
void log_batch_free(log_batch *b);

#endif
