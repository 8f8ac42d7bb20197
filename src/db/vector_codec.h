/*
 * vector_codec.h -- user vectors <-> stored records: validation (finite
 * values; 0/1 for hamming), normalization for cosine, bit packing for
 * hamming. Shared by the write path (upsert) and the read paths (get, search).
 */
#ifndef NDL_DB_VECTOR_CODEC_H
#define NDL_DB_VECTOR_CODEC_H

#include "index/index.h"

/* Check one user vector of space->dim floats; `what` names it in errors
 * ("vector 3", "query"). */
ndl_status codec_check(const index_space *space, const float *v, const char *what, size_t index,
                       ndl_error *err);
/* Encode a checked vector into a record of space->vec_bytes bytes. */
void codec_encode(const index_space *space, const float *v, void *rec);
/* Decode a record into space->dim floats. */
void codec_decode(const index_space *space, const void *rec, float *out);

#endif
