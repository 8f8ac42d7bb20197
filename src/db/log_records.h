/*
 * log_records.h -- what a collection writes to its write-ahead log: one
 * record per mutation, encoded so that applying the same records in the
 * same order always gives the same state (replay = the original writes).
 *
 * Layouts (little-endian):
 *   LOG_UPSERT_P: u32 n, u32 dim, n ids, n payloads, zero bytes up to a
 *               multiple of 4, then n*dim float32 (as the caller gave
 *               them; encoded on apply, deterministically)
 *   LOG_UPSERT: (written before payloads existed; still replayed) as
 *               LOG_UPSERT_P without the payloads and the padding
 *   LOG_DELETE: u32 n, n ids
 *   LOG_CANCEL: u64 lsn -- the record at lsn failed to apply (out of
 *               memory) and must be skipped on replay
 *   LOG_PAYLOAD: one id, one payload -- the point's whole new payload
 *               (a merge is resolved before logging, so replay needs no
 *               merge and no size limit)
 *   LOG_FIELD:  u32 type, u32 length, the field's name -- a payload index
 *               added (built again on replay from the payloads then)
 * An id is u32 tag then, for tag 0xffffffff, a u64 number, else `tag`
 * bytes of a string id. A payload is u32 length then that many bytes of
 * canonical JSON, or the tag 0xffffffff alone for "no payload".
 */
#ifndef NDL_DB_LOG_RECORDS_H
#define NDL_DB_LOG_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "util/base.h"

enum { LOG_UPSERT = 1, LOG_DELETE = 2, LOG_CANCEL = 3, LOG_UPSERT_P = 4, LOG_PAYLOAD = 5,
       LOG_FIELD = 6 };

/* A payload text in a record: p == NULL for none. */
typedef struct log_text {
    const char *p;
    uint32_t len;
} log_text;

/* A growable byte buffer for encoding. */
typedef struct log_buf {
    uint8_t *p;
    size_t len, cap;
    bool failed; /* an allocation failed; len is not meaningful */
} log_buf;

void log_buf_free(log_buf *b);

/* Encode into b (which starts empty). Returns NDL_OK or NDL_NOMEM.
 * An upsert (LOG_UPSERT_P) is its head -- everything before the vectors --
 * followed by the vectors, which the write path appends to the log as a
 * second part so a large batch is not copied (log_encode_upsert_head);
 * log_encode_upsert puts both in b. payloads may be NULL (none). */
ndl_status log_encode_upsert_head(log_buf *b, size_t n, const ndl_id *ids, uint32_t dim,
                                  const log_text *payloads, ndl_error *err);
ndl_status log_encode_upsert(log_buf *b, size_t n, const ndl_id *ids, uint32_t dim,
                             const log_text *payloads, const float *vectors, ndl_error *err);
ndl_status log_encode_delete(log_buf *b, size_t n, const ndl_id *ids, ndl_error *err);
ndl_status log_encode_payload(log_buf *b, ndl_id id, log_text payload, ndl_error *err);
ndl_status log_encode_field(log_buf *b, uint32_t type, const char *name, ndl_error *err);

/* Decoded views: ids point into the record (string ids borrow its bytes),
 * vectors too when aligned, else into a copy the caller frees. */
typedef struct log_batch {
    size_t n;
    ndl_id *ids;        /* ndl_malloc'd array */
    log_text *payloads; /* ndl_malloc'd array pointing into the record, or
                           NULL (a LOG_UPSERT record) */
    const float *vectors;
    float *owned;       /* non-NULL when vectors had to be copied */
} log_batch;

/* Parse a record's payload; NDL_CORRUPT (naming what is wrong) when it does
 * not fit its declared counts, or when dim differs from expected_dim. */
ndl_status log_decode_upsert(const void *data, size_t len, uint32_t type, uint32_t expected_dim,
                             log_batch *out, ndl_error *err);
/* LOG_PAYLOAD: *id and *payload point into the record. */
ndl_status log_decode_payload(const void *data, size_t len, ndl_id *id, log_text *payload,
                              ndl_error *err);
ndl_status log_decode_delete(const void *data, size_t len, log_batch *out, ndl_error *err);
void log_batch_free(log_batch *b);

/* A LOG_FIELD record: *name points into data (not terminated: name_len). */
ndl_status log_decode_field(const void *data, size_t len, uint32_t *type, const char **name,
                            size_t *name_len, ndl_error *err);

#endif
