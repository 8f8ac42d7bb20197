/*
 * dist_scalar.c -- portable distance kernels: the reference every SIMD variant
 * is tested against, and the fallback on CPUs without AVX2+FMA. Contract of
 * each kernel: see simd.h.
 */
#include <math.h>
#include <string.h>

#include "simd/many.h"
#include "simd/simd.h"

/* Pair kernels: in the table by address, and inlined into the many loops. */
#define NDL_PAIR static inline __attribute__((always_inline))

/* Four partial sums instead of one: shorter dependency chains, and the
 * rounding error grows more slowly on long vectors. */

NDL_PAIR float l2sq_f32_scalar(const void *va, const void *vb, size_t n)
{
    const float *a = va, *b = vb;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
        float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

NDL_PAIR float dot_f32_scalar(const void *va, const void *vb, size_t n)
{
    const float *a = va, *b = vb;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

NDL_PAIR float negdot_f32_scalar(const void *a, const void *b, size_t n)
{
    return -dot_f32_scalar(a, b, n);
}

NDL_PAIR float l1_f32_scalar(const void *va, const void *vb, size_t n)
{
    const float *a = va, *b = vb;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += fabsf(a[i] - b[i]);
        s1 += fabsf(a[i + 1] - b[i + 1]);
        s2 += fabsf(a[i + 2] - b[i + 2]);
        s3 += fabsf(a[i + 3] - b[i + 3]);
    }
    for (; i < n; i++)
        s0 += fabsf(a[i] - b[i]);
    return (s0 + s1) + (s2 + s3);
}

NDL_PAIR float cosine_f32_scalar(const void *va, const void *vb, size_t n)
{
    const float *a = va, *b = vb;
    float ab = 0.0f, aa = 0.0f, bb = 0.0f;
    float ab1 = 0.0f, aa1 = 0.0f, bb1 = 0.0f;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        ab += a[i] * b[i];
        aa += a[i] * a[i];
        bb += b[i] * b[i];
        ab1 += a[i + 1] * b[i + 1];
        aa1 += a[i + 1] * a[i + 1];
        bb1 += b[i + 1] * b[i + 1];
    }
    for (; i < n; i++) {
        ab += a[i] * b[i];
        aa += a[i] * a[i];
        bb += b[i] * b[i];
    }
    ab += ab1;
    aa += aa1;
    bb += bb1;
    if (aa == 0.0f || bb == 0.0f)
        return 1.0f;
    /* In double: aa * bb overflows float for inputs near 1e18. Clamped so
     * rounding cannot give a distance outside [0, 2]. */
    double cos = (double)ab / sqrt((double)aa * (double)bb);
    if (cos > 1.0)
        cos = 1.0;
    if (cos < -1.0)
        cos = -1.0;
    return (float)(1.0 - cos);
}

NDL_PAIR float hamming_u8_scalar(const void *va, const void *vb, size_t n)
{
    const unsigned char *a = va, *b = vb;
    uint64_t count = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8); /* unaligned-safe load */
        memcpy(&y, b + i, 8);
        count += (uint64_t)__builtin_popcountll(x ^ y);
    }
    for (; i < n; i++)
        count += (uint64_t)__builtin_popcount((unsigned)(a[i] ^ b[i]));
    return (float)count;
}

SIMD_DEFINE_MANY(l2sq_f32_many_scalar, l2sq_f32_scalar)
SIMD_DEFINE_MANY(dot_f32_many_scalar, dot_f32_scalar)
SIMD_DEFINE_MANY(negdot_f32_many_scalar, negdot_f32_scalar)
SIMD_DEFINE_MANY(l1_f32_many_scalar, l1_f32_scalar)
SIMD_DEFINE_MANY(cosine_f32_many_scalar, cosine_f32_scalar)
SIMD_DEFINE_MANY(hamming_u8_many_scalar, hamming_u8_scalar)

const simd_kernels simd_scalar_kernels = {
    .level = SIMD_SCALAR,
    .name = "scalar",
    .l2sq_f32 = l2sq_f32_scalar,
    .dot_f32 = dot_f32_scalar,
    .negdot_f32 = negdot_f32_scalar,
    .l1_f32 = l1_f32_scalar,
    .cosine_f32 = cosine_f32_scalar,
    .hamming_u8 = hamming_u8_scalar,
    .l2sq_f32_many = l2sq_f32_many_scalar,
    .dot_f32_many = dot_f32_many_scalar,
    .negdot_f32_many = negdot_f32_many_scalar,
    .l1_f32_many = l1_f32_many_scalar,
    .cosine_f32_many = cosine_f32_many_scalar,
    .hamming_u8_many = hamming_u8_many_scalar,
};
