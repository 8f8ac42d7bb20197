/* vector_codec.c -- validation and encoding of vectors (see vector_codec.h). */
#include "db/vector_codec.h"

#include <math.h>
#include <string.h>

ndl_status codec_check(const index_space *space, const float *v, const char *what, size_t index,
                       ndl_error *err)
{
    for (uint32_t j = 0; j < space->dim; j++) {
        if (!isfinite(v[j]))
            return ndl_err(err, NDL_INVALID, "%s %zu has a non-finite value (%s) at position %u",
                           what, index, isnan(v[j]) ? "NaN" : "Inf", j);
        if (space->metric == NDL_METRIC_HAMMING && v[j] != 0.0f && v[j] != 1.0f)
            return ndl_err(err, NDL_INVALID,
                           "%s %zu has value %g at position %u; hamming vectors take 0 or 1",
                           what, index, (double)v[j], j);
    }
    return NDL_OK;
}

void codec_encode(const index_space *space, const float *v, void *rec)
{
    switch (space->metric) {
    case NDL_METRIC_HAMMING: {
        uint8_t *b = rec;
        memset(b, 0, space->vec_bytes);
        for (uint32_t j = 0; j < space->dim; j++)
            if (v[j] != 0.0f)
                b[j >> 3] |= (uint8_t)(1u << (j & 7));
        return;
    }
    case NDL_METRIC_COSINE: {
        /* stored unit-length so cosine becomes a dot product; zero stays zero
         * (its cosine with anything is then 0: distance 1) */
        double ss = 0;
        for (uint32_t j = 0; j < space->dim; j++)
            ss += (double)v[j] * v[j];
        float *o = rec;
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (uint32_t j = 0; j < space->dim; j++)
            o[j] = v[j] * inv;
        return;
    }
    default:
        memcpy(rec, v, space->vec_bytes);
    }
}

void codec_decode(const index_space *space, const void *rec, float *out)
{
    if (space->metric == NDL_METRIC_HAMMING) {
        const uint8_t *b = rec;
        for (uint32_t j = 0; j < space->dim; j++)
            out[j] = (float)((b[j >> 3] >> (j & 7)) & 1u);
    } else {
        memcpy(out, rec, space->vec_bytes);
    }
}
