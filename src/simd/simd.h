/*
 * simd.h -- distance kernels: a scalar reference plus AVX2 and AVX-512
 * variants (dist_scalar.c, dist_avx2.c, dist_avx512.c), one picked once at
 * start-up by CPU detection in dispatch.c. NEEDLE_SIMD=scalar|avx2|avx512
 * forces one (an unsupported forced level falls back to the best available).
 *
 * Every kernel takes any length n >= 1 (not only multiples of the vector
 * width) and unaligned pointers. Names say what they return:
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

typedef struct simd_kernels {
    simd_level level;
    const char *name;        /* "scalar", "avx2", "avx512" */
    simd_dist_fn l2sq_f32;   /* sum (a-b)^2 */
    simd_dist_fn dot_f32;    /* sum a*b */
    simd_dist_fn negdot_f32; /* -sum a*b (ip / normalized-cosine ordering) */
    simd_dist_fn l1_f32;     /* sum |a-b| */
    simd_dist_fn cosine_f32; /* 1 - cos(a,b); 1 if either vector is all zero */
    simd_dist_fn hamming_u8; /* popcount(a xor b) over n bytes, as float */
} simd_kernels;

/* The kernels chosen for this process (thread-safe, decided once). */
const simd_kernels *simd_get(void);

/* Kernels of one level, or NULL when this CPU (or build) cannot run them.
 * For tests that compare every variant with the scalar reference. */
const simd_kernels *simd_kernels_for(simd_level level);

/* Per-variant tables, defined in dist_<variant>.c. */
extern const simd_kernels simd_scalar_kernels;
extern const simd_kernels simd_avx2_kernels;
extern const simd_kernels simd_avx512_kernels;

/* Squared norm helper (scalar path through dot of the active kernels). */
static inline float simd_norm_sq(const float *a, size_t n) { return simd_get()->dot_f32(a, a, n); }

#endif
