/*
 * dist_avx512.c -- AVX-512 distance kernels (F/BW/VL/DQ/VPOPCNTDQ + FMA; only
 * called after dispatch.c has seen every one of those features). Main loops
 * run four independent 16-float accumulators; the tail is one masked load.
 */
#include <immintrin.h>
#include <math.h>

#include "simd/many.h"
#include "simd/simd.h"

#define NDL_INLINE static inline __attribute__((always_inline))
/* Pair kernels: in the table by address, and inlined into the many loops. */
#define NDL_PAIR NDL_INLINE

/* First r lanes set, 0 <= r <= 16. */
NDL_INLINE __mmask16 tail_mask16(size_t r)
{
    return (__mmask16)((1u << r) - 1u);
}

NDL_INLINE float dot_core(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    /* Up to three whole vectors left: rotate accumulators to keep chains apart. */
    if (i + 16 <= n) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i + 16 <= n) {
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s1);
        i += 16;
    }
    if (i + 16 <= n) {
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s2);
        i += 16;
    }
    if (i < n) {
        /* Masked-off lanes read as 0 and never fault past the end. */
        __mmask16 m = tail_mask16(n - i);
        s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s3);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

NDL_PAIR float l2sq_f32_avx512(const void *va, const void *vb, size_t n)
{
    const float *a = va, *b = vb;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    if (i + 16 <= n) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
        i += 16;
    }
    if (i + 16 <= n) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
        i += 16;
    }
    if (i + 16 <= n) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s2 = _mm512_fmadd_ps(d, d, s2);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = tail_mask16(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s3 = _mm512_fmadd_ps(d, d, s3);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

NDL_PAIR float dot_f32_avx512(const void *a, const void *b, size_t n)
{
    return dot_core(a, b, n);
}

NDL_PAIR float negdot_f32_avx512(const void *a, const void *b, size_t n)
{
    return -dot_core(a, b, n);
}

NDL_PAIR float l1_f32_avx512(const void *va, const void *vb, size_t n)
{
    const float *a = va, *b = vb;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_add_ps(s0, _mm512_abs_ps(d0));
        s1 = _mm512_add_ps(s1, _mm512_abs_ps(d1));
        s2 = _mm512_add_ps(s2, _mm512_abs_ps(d2));
        s3 = _mm512_add_ps(s3, _mm512_abs_ps(d3));
    }
    if (i + 16 <= n) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_add_ps(s0, _mm512_abs_ps(d));
        i += 16;
    }
    if (i + 16 <= n) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s1 = _mm512_add_ps(s1, _mm512_abs_ps(d));
        i += 16;
    }
    if (i + 16 <= n) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s2 = _mm512_add_ps(s2, _mm512_abs_ps(d));
        i += 16;
    }
    if (i < n) {
        __mmask16 m = tail_mask16(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s3 = _mm512_add_ps(s3, _mm512_abs_ps(d));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

NDL_PAIR float cosine_f32_avx512(const void *va, const void *vb, size_t n)
{
    const float *a = va, *b = vb;
    /* One pass for a.b, a.a and b.b; two accumulators each (six chains). */
    __m512 ab0 = _mm512_setzero_ps(), aa0 = _mm512_setzero_ps(), bb0 = _mm512_setzero_ps();
    __m512 ab1 = _mm512_setzero_ps(), aa1 = _mm512_setzero_ps(), bb1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 x0 = _mm512_loadu_ps(a + i), y0 = _mm512_loadu_ps(b + i);
        __m512 x1 = _mm512_loadu_ps(a + i + 16), y1 = _mm512_loadu_ps(b + i + 16);
        ab0 = _mm512_fmadd_ps(x0, y0, ab0);
        aa0 = _mm512_fmadd_ps(x0, x0, aa0);
        bb0 = _mm512_fmadd_ps(y0, y0, bb0);
        ab1 = _mm512_fmadd_ps(x1, y1, ab1);
        aa1 = _mm512_fmadd_ps(x1, x1, aa1);
        bb1 = _mm512_fmadd_ps(y1, y1, bb1);
    }
    if (i + 16 <= n) {
        __m512 x = _mm512_loadu_ps(a + i), y = _mm512_loadu_ps(b + i);
        ab0 = _mm512_fmadd_ps(x, y, ab0);
        aa0 = _mm512_fmadd_ps(x, x, aa0);
        bb0 = _mm512_fmadd_ps(y, y, bb0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = tail_mask16(n - i);
        __m512 x = _mm512_maskz_loadu_ps(m, a + i), y = _mm512_maskz_loadu_ps(m, b + i);
        ab1 = _mm512_fmadd_ps(x, y, ab1);
        aa1 = _mm512_fmadd_ps(x, x, aa1);
        bb1 = _mm512_fmadd_ps(y, y, bb1);
    }
    float ab = _mm512_reduce_add_ps(_mm512_add_ps(ab0, ab1));
    float aa = _mm512_reduce_add_ps(_mm512_add_ps(aa0, aa1));
    float bb = _mm512_reduce_add_ps(_mm512_add_ps(bb0, bb1));
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

NDL_PAIR float hamming_u8_avx512(const void *va, const void *vb, size_t n)
{
    const unsigned char *a = va, *b = vb;
    /* Per-lane 64-bit popcounts (VPOPCNTDQ) summed into two accumulators. */
    __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
        __m512i x1 =
            _mm512_xor_si512(_mm512_loadu_si512(a + i + 64), _mm512_loadu_si512(b + i + 64));
        c0 = _mm512_add_epi64(c0, _mm512_popcnt_epi64(x0));
        c1 = _mm512_add_epi64(c1, _mm512_popcnt_epi64(x1));
    }
    if (i + 64 <= n) {
        __m512i x = _mm512_xor_si512(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
        c0 = _mm512_add_epi64(c0, _mm512_popcnt_epi64(x));
        i += 64;
    }
    if (i < n) {
        /* Byte-masked load (AVX512BW): 1..63 bytes, zeros elsewhere. */
        __mmask64 m = (__mmask64)((UINT64_C(1) << (n - i)) - 1u);
        __m512i x =
            _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i));
        c1 = _mm512_add_epi64(c1, _mm512_popcnt_epi64(x));
    }
    return (float)_mm512_reduce_add_epi64(_mm512_add_epi64(c0, c1));
}

SIMD_DEFINE_MANY(l2sq_f32_many_avx512, l2sq_f32_avx512)
SIMD_DEFINE_MANY(dot_f32_many_avx512, dot_f32_avx512)
SIMD_DEFINE_MANY(negdot_f32_many_avx512, negdot_f32_avx512)
SIMD_DEFINE_MANY(l1_f32_many_avx512, l1_f32_avx512)
SIMD_DEFINE_MANY(cosine_f32_many_avx512, cosine_f32_avx512)
SIMD_DEFINE_MANY(hamming_u8_many_avx512, hamming_u8_avx512)

const simd_kernels simd_avx512_kernels = {
    .level = SIMD_AVX512,
    .name = "avx512",
    .l2sq_f32 = l2sq_f32_avx512,
    .dot_f32 = dot_f32_avx512,
    .negdot_f32 = negdot_f32_avx512,
    .l1_f32 = l1_f32_avx512,
    .cosine_f32 = cosine_f32_avx512,
    .hamming_u8 = hamming_u8_avx512,
    .l2sq_f32_many = l2sq_f32_many_avx512,
    .dot_f32_many = dot_f32_many_avx512,
    .negdot_f32_many = negdot_f32_many_avx512,
    .l1_f32_many = l1_f32_many_avx512,
    .cosine_f32_many = cosine_f32_many_avx512,
    .hamming_u8_many = hamming_u8_many_avx512,
};
