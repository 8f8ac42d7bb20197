/*
 * dist_avx2.c -- AVX2+FMA distance kernels (built with -mavx2 -mfma -mpopcnt;
 * only called after dispatch.c has seen those features). Float loops run four
 * independent 8-float accumulators; the last n % 8 floats use a masked load,
 * which never touches memory past the end. Hamming counts bits with pshufb
 * nibble look-ups, 32 bytes at a time, and popcnt for the last bytes.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "simd/many.h"
#include "simd/simd.h"

#define NDL_INLINE static inline __attribute__((always_inline))
/* Pair kernels: in the table by address, and inlined into the many loops. */
#define NDL_PAIR NDL_INLINE

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

NDL_PAIR float l2sq_f32_avx2(const void *va, const void *vb, size_t n)
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

NDL_PAIR float dot_f32_avx2(const void *a, const void *b, size_t n)
{
    return dot_core(a, b, n);
}

NDL_PAIR float negdot_f32_avx2(const void *a, const void *b, size_t n)
{
    return -dot_core(a, b, n);
}

NDL_PAIR float l1_f32_avx2(const void *va, const void *vb, size_t n)
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

NDL_PAIR float cosine_f32_avx2(const void *va, const void *vb, size_t n)
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

/* Bits set in each byte of x (0..8), by two 16-entry table look-ups (pshufb),
 * one per nibble (Mula's method). */
NDL_INLINE __m256i popcnt_bytes(__m256i x)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                         1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(x, low);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

NDL_INLINE __m256i xor_load(const unsigned char *a, const unsigned char *b)
{
    return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)a),
                            _mm256_loadu_si256((const __m256i *)(const void *)b));
}

NDL_PAIR float hamming_u8_avx2(const void *va, const void *vb, size_t n)
{
    const unsigned char *a = va, *b = vb;
    /* 32-byte blocks: per-byte counts by pshufb (two blocks' counts, <= 16 per
     * byte, are added before vpsadbw sums them into four 64-bit lanes); about
     * 1.5x the speed of four scalar popcnt chains from 64 bytes up. */
    __m256i acc = _mm256_setzero_si256();
    const __m256i zero = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i c = _mm256_add_epi8(popcnt_bytes(xor_load(a + i, b + i)),
                                    popcnt_bytes(xor_load(a + i + 32, b + i + 32)));
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(c, zero));
    }
    if (i + 32 <= n) {
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(popcnt_bytes(xor_load(a + i, b + i)), zero));
        i += 32;
    }
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    uint64_t c0 = (uint64_t)_mm_cvtsi128_si64(s) + (uint64_t)_mm_extract_epi64(s, 1);
    /* Last 0..31 bytes: scalar popcnt on 8-, 4-, 2- and 1-byte loads, never
     * past the end (fixed-size memcpy compiles to plain loads). */
    uint64_t c1 = 0, c2 = 0, c3 = 0;
    for (; i + 8 <= n; i += 8)
        c1 += (uint64_t)_mm_popcnt_u64(load_u64(a + i) ^ load_u64(b + i));
    size_t r = n - i;
    if (r & 4) {
        uint32_t x, y;
        memcpy(&x, a + i, 4);
        memcpy(&y, b + i, 4);
        c2 += (uint64_t)_mm_popcnt_u32(x ^ y);
        i += 4;
    }
    if (r & 2) {
        uint16_t x, y;
        memcpy(&x, a + i, 2);
        memcpy(&y, b + i, 2);
        c3 += (uint64_t)_mm_popcnt_u32((uint32_t)(x ^ y));
        i += 2;
    }
    if (r & 1)
        c3 += (uint64_t)_mm_popcnt_u32((uint32_t)(a[i] ^ b[i]));
    return (float)((c0 + c1) + (c2 + c3));
}

SIMD_DEFINE_MANY(l2sq_f32_many_avx2, l2sq_f32_avx2)
SIMD_DEFINE_MANY(dot_f32_many_avx2, dot_f32_avx2)
SIMD_DEFINE_MANY(negdot_f32_many_avx2, negdot_f32_avx2)
SIMD_DEFINE_MANY(l1_f32_many_avx2, l1_f32_avx2)
SIMD_DEFINE_MANY(cosine_f32_many_avx2, cosine_f32_avx2)
SIMD_DEFINE_MANY(hamming_u8_many_avx2, hamming_u8_avx2)

const simd_kernels simd_avx2_kernels = {
    .level = SIMD_AVX2,
    .name = "avx2",
    .l2sq_f32 = l2sq_f32_avx2,
    .dot_f32 = dot_f32_avx2,
    .negdot_f32 = negdot_f32_avx2,
    .l1_f32 = l1_f32_avx2,
    .cosine_f32 = cosine_f32_avx2,
    .hamming_u8 = hamming_u8_avx2,
    .l2sq_f32_many = l2sq_f32_many_avx2,
    .dot_f32_many = dot_f32_many_avx2,
    .negdot_f32_many = negdot_f32_many_avx2,
    .l1_f32_many = l1_f32_many_avx2,
    .cosine_f32_many = cosine_f32_many_avx2,
    .hamming_u8_many = hamming_u8_many_avx2,
};
