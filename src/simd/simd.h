/*
 * simd.h -- distance kernels: a scalar reference plus AVX2 and AVX-512
 * variants (dist_scalar.c, dist_avx2.c, dist_avx512.c), one picked once at
 * start-up by CPU detection in dispatch.c. NEEDLE_SIMD=scalar|avx2|avx512
 * forces one (an unsupported forced level falls back to the best available).
 *
 * Every kernel takes any length n >= 1 (not only multiples of the vector
 * width) and pointers with no alignment beyond their element type's (float
 * vectors 4-byte aligned, byte vectors anywhere). Names say what they return:
 * l2sq = squared Euclidean distance, never its root.
 */
#ifndef NDL_SIMD_H
#define NDL_SIMD_H

#include <stddef.h>
#include <stdint.h>

typedef enum simd_level { SIMD_SCALAR = 0, SIMD_AVX2 = 1, SIMD_AVX512 = 2 } simd_level;

/* Uniform kernel signature so indexes can hold one pointer per metric.
 * For f32 kernels n is the number of floats; for hamming n is bytes. */
typedef float (*simd_dist_fn)(const void *a, const void *b, size_t n);

/* One query against a run of records: out[i] = dist(q, base + i * stride, n)
 * for i < count, bit for bit what the pair kernel of the same table returns.
 * For scans (the flat index): one indirect call per run instead of one per
 * record, with the pair kernel inlined. Reads only the records (a build with
 * SIMD_MANY_PREFETCH, see many.h, also prefetches past them, which never
 * faults). stride is in bytes, a multiple of 4 for float records (no wider
 * alignment needed); count may be 0. */
typedef void (*simd_dist_many_fn)(const void *q, const void *base, size_t stride, size_t count,
                                  size_t n, float *out);

typedef struct simd_kernels {
    simd_level level;
    const char *name;        /* "scalar", "avx2", "avx512" */
    simd_dist_fn l2sq_f32;   /* sum (a-b)^2 */
    simd_dist_fn dot_f32;    /* sum a*b */
    simd_dist_fn negdot_f32; /* -sum a*b (ip / normalized-cosine ordering) */
    simd_dist_fn l1_f32;     /* sum |a-b| */
    simd_dist_fn cosine_f32; /* 1 - cos(a,b); 1 if either vector is all zero */
    simd_dist_fn hamming_u8; /* popcount(a xor b) over n bytes, as float */
    /* The same six, one query against many records (see simd_dist_many_fn). */
    simd_dist_many_fn l2sq_f32_many;
    simd_dist_many_fn dot_f32_many;
    simd_dist_many_fn negdot_f32_many;
    simd_dist_many_fn l1_f32_many;
    simd_dist_many_fn cosine_f32_many;
    simd_dist_many_fn hamming_u8_many;
} simd_kernels;

/* The kernels chosen for this process (thread-safe, decided once). */
const simd_kernels *simd_get(void);

/* Kernels of one level, or NULL when this CPU (or build) cannot run them.
 * For tests that compare every variant with the scalar reference. */
const simd_kernels *simd_kernels_for(simd_level level);

/* The many-record kernel that matches pair kernel `pair` (from any level's
 * table), or NULL if pair is not one of the tables' kernels. Lets code that
 * holds only a pair kernel (index_space.dist) scan with the matching one. */
simd_dist_many_fn simd_many_for(simd_dist_fn pair);

/* Per-variant tables, defined in dist_<variant>.c. */
extern const simd_kernels simd_scalar_kernels;
extern const simd_kernels simd_avx2_kernels;
extern const simd_kernels simd_avx512_kernels;


#endif
