/*
 * dist_avx2.c -- AVX2+FMA distance kernels (built with -mavx2 -mfma -mpopcnt;
 * only called after dispatch.c has seen those features). Main loops run four
 * independent 8-float accumulators; the last n % 8 floats use a masked load.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "simd/simd.h"

#define NDL_INLINE static inline __attribute__((always_inline))

/* Eight -1 then eight 0: loading 8 ints at &tail_mask_tab[8 - r] gives a mask
 * with the first r lanes set. */
static const int32_t tail_mask_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                          0,  0,  0,  0,  0,  0,  0,  0};

NDL_INLINE __m256i tail_mask(size_t r)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)&tail_mask_tab[8 - r]);
}

NDL_INLINE float hsum256(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

static float l2sq_f32_avx2(const void *va, const void *vb, size_t n)
{
    const float *a = va, *b = vb;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    /* Up to three whole vectors left: rotate accumulators to keep chains apart. */
    if (i + 8 <= n) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
        i += 8;
    }
    if (i + 8 <= n) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s1 = _mm256_fmadd_ps(d, d, s1);
        i += 8;
    }
    if (i + 8 <= n) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s2 = _mm256_fmadd_ps(d, d, s2);
        i += 8;
    }
    if (i < n) {
        /* Masked-off lanes read as 0 and do not fault past the end. */
        __m256i m = tail_mask(n - i);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

NDL_INLINE float dot_core(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    if (i + 8 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        i += 8;
    }
    if (i + 8 <= n) {
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s1);
        i += 8;
    }
    if (i + 8 <= n) {
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s2);
        i += 8;
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        s3 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s3);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static float dot_f32_avx2(const void *a, const void *b, size_t n)
{
    return dot_core(a, b, n);
}

static float negdot_f32_avx2(const void *a, const void *b, size_t n)
{
    return -dot_core(a, b, n);
}

static float l1_f32_avx2(const void *va, const void *vb, size_t n)
{
    const float *a = va, *b = vb;
    /* |x| = x with the sign bit cleared (andnot with -0.0f). */
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_add_ps(s0, _mm256_andnot_ps(sign, d0));
        s1 = _mm256_add_ps(s1, _mm256_andnot_ps(sign, d1));
        s2 = _mm256_add_ps(s2, _mm256_andnot_ps(sign, d2));
        s3 = _mm256_add_ps(s3, _mm256_andnot_ps(sign, d3));
    }
    if (i + 8 <= n) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_add_ps(s0, _mm256_andnot_ps(sign, d));
        i += 8;
    }
    if (i + 8 <= n) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s1 = _mm256_add_ps(s1, _mm256_andnot_ps(sign, d));
        i += 8;
    }
    if (i + 8 <= n) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s2 = _mm256_add_ps(s2, _mm256_andnot_ps(sign, d));
        i += 8;
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        s3 = _mm256_add_ps(s3, _mm256_andnot_ps(sign, d));
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static float cosine_f32_avx2(const void *va, const void *vb, size_t n)
{
    const float *a = va, *b = vb;
    /* One pass for a.b, a.a and b.b; two accumulators each (six chains). */
    __m256 ab0 = _mm256_setzero_ps(), aa0 = _mm256_setzero_ps(), bb0 = _mm256_setzero_ps();
    __m256 ab1 = _mm256_setzero_ps(), aa1 = _mm256_setzero_ps(), bb1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 x0 = _mm256_loadu_ps(a + i), y0 = _mm256_loadu_ps(b + i);
        __m256 x1 = _mm256_loadu_ps(a + i + 8), y1 = _mm256_loadu_ps(b + i + 8);
        ab0 = _mm256_fmadd_ps(x0, y0, ab0);
        aa0 = _mm256_fmadd_ps(x0, x0, aa0);
        bb0 = _mm256_fmadd_ps(y0, y0, bb0);
        ab1 = _mm256_fmadd_ps(x1, y1, ab1);
        aa1 = _mm256_fmadd_ps(x1, x1, aa1);
        bb1 = _mm256_fmadd_ps(y1, y1, bb1);
    }
    if (i + 8 <= n) {
        __m256 x = _mm256_loadu_ps(a + i), y = _mm256_loadu_ps(b + i);
        ab0 = _mm256_fmadd_ps(x, y, ab0);
        aa0 = _mm256_fmadd_ps(x, x, aa0);
        bb0 = _mm256_fmadd_ps(y, y, bb0);
        i += 8;
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 x = _mm256_maskload_ps(a + i, m), y = _mm256_maskload_ps(b + i, m);
        ab1 = _mm256_fmadd_ps(x, y, ab1);
        aa1 = _mm256_fmadd_ps(x, x, aa1);
        bb1 = _mm256_fmadd_ps(y, y, bb1);
    }
    float ab = hsum256(_mm256_add_ps(ab0, ab1));
    float aa = hsum256(_mm256_add_ps(aa0, aa1));
    float bb = hsum256(_mm256_add_ps(bb0, bb1));
    if (aa == 0.0f || bb == 0.0f)
        return 1.0f;
    /* Same finish as the scalar kernel: double avoids aa * bb overflowing. */
    double cos = (double)ab / sqrt((double)aa * (double)bb);
    if (cos > 1.0)
        cos = 1.0;
    if (cos < -1.0)
        cos = -1.0;
    return (float)(1.0 - cos);
}

NDL_INLINE uint64_t load_u64(const unsigned char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static float hamming_u8_avx2(const void *va, const void *vb, size_t n)
{
    const unsigned char *a = va, *b = vb;
    /* Scalar 64-bit popcnt beats the pshufb method at the sizes binary
     * vectors have (<= 8 KiB); four counters keep the popcnts independent. */
    uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        c0 += (uint64_t)_mm_popcnt_u64(load_u64(a + i) ^ load_u64(b + i));
        c1 += (uint64_t)_mm_popcnt_u64(load_u64(a + i + 8) ^ load_u64(b + i + 8));
        c2 += (uint64_t)_mm_popcnt_u64(load_u64(a + i + 16) ^ load_u64(b + i + 16));
        c3 += (uint64_t)_mm_popcnt_u64(load_u64(a + i + 24) ^ load_u64(b + i + 24));
    }
    for (; i + 8 <= n; i += 8)
        c0 += (uint64_t)_mm_popcnt_u64(load_u64(a + i) ^ load_u64(b + i));
    /* Last 1..7 bytes as 4-, 2- and 1-byte loads: never past the end, and
     * fixed-size memcpy compiles to plain loads (a variable one to a call). */
    size_t r = n - i;
    if (r & 4) {
        uint32_t x, y;
        memcpy(&x, a + i, 4);
        memcpy(&y, b + i, 4);
        c1 += (uint64_t)_mm_popcnt_u32(x ^ y);
        i += 4;
    }
    if (r & 2) {
        uint16_t x, y;
        memcpy(&x, a + i, 2);
        memcpy(&y, b + i, 2);
        c2 += (uint64_t)_mm_popcnt_u32((uint32_t)(x ^ y));
        i += 2;
    }
    if (r & 1)
        c3 += (uint64_t)_mm_popcnt_u32((uint32_t)(a[i] ^ b[i]));
    return (float)((c0 + c1) + (c2 + c3));
}

const simd_kernels simd_avx2_kernels = {
    .level = SIMD_AVX2,
    .name = "avx2",
    .l2sq_f32 = l2sq_f32_avx2,
    .dot_f32 = dot_f32_avx2,
    .negdot_f32 = negdot_f32_avx2,
    .l1_f32 = l1_f32_avx2,
    .cosine_f32 = cosine_f32_avx2,
    .hamming_u8 = hamming_u8_avx2,
};
