/*
 * many.h -- the one-query-many-records loop (simd_dist_many_fn, simd.h),
 * included only by the dist_<variant>.c files: each instantiates it over its
 * own always-inline pair kernels, so a many kernel returns exactly what the
 * pair kernel returns and pays no call per record.
 */
#ifndef NDL_SIMD_MANY_H
#define NDL_SIMD_MANY_H

#include <stddef.h>
#include <stdint.h>

/* Software prefetch distance in bytes ahead of the record being compared;
 * 0 (the default) leaves streaming to the hardware prefetchers. Measured on
 * a 2-core Zen 3 VM (best of 12 interleaved runs): 512-2048 bytes ahead, T0
 * hint, gained nothing on DRAM-bound scans (400k x 128 and 60k x 784 floats,
 * ~18 GB/s either way) and cost 0-5% on L3-resident ones and 20% on short
 * records (128 bytes; the prefetches take load slots). Build with
 * -DSIMD_MANY_PREFETCH=1024 to try it on another machine. */
#ifndef SIMD_MANY_PREFETCH
#define SIMD_MANY_PREFETCH 0
#endif
/* __builtin_prefetch locality: 3 = T0 (all cache levels), 0 = NTA. */
#ifndef SIMD_MANY_PREFETCH_LOCALITY
#define SIMD_MANY_PREFETCH_LOCALITY 3
#endif
#define SIMD_MANY_LINE 64
/* Records longer than this are never prefetched: their own sequential reads
 * keep the hardware prefetchers busy, and a record's worth of prefetches
 * issued at once would only queue up behind each other. */
#define SIMD_MANY_PREFETCH_MAX_STRIDE 4096

/* Defines `static void name(...)`, a simd_dist_many_fn over `pair`.
 * Addresses are computed as integers: the prefetch pointer runs past the end
 * of the run, which would be undefined pointer arithmetic. */
#define SIMD_DEFINE_MANY(name, pair)                                                              \
    static void name(const void *q, const void *base, size_t stride, size_t count, size_t n,      \
                     float *out)                                                                  \
    {                                                                                             \
        uintptr_t p = (uintptr_t)base;                                                            \
        uintptr_t pf = p + SIMD_MANY_PREFETCH;                                                    \
        if (SIMD_MANY_PREFETCH == 0 || stride > SIMD_MANY_PREFETCH_MAX_STRIDE) {                  \
            for (size_t i = 0; i < count; i++, p += stride)                                       \
                out[i] = pair(q, (const void *)p, n);                                             \
            return;                                                                               \
        }                                                                                         \
        for (size_t i = 0; i < count; i++, p += stride) {                                         \
            for (uintptr_t want = p + stride + SIMD_MANY_PREFETCH; pf < want;                     \
                 pf += SIMD_MANY_LINE)                                                            \
                __builtin_prefetch((const void *)pf, 0, SIMD_MANY_PREFETCH_LOCALITY);             \
            out[i] = pair(q, (const void *)p, n);                                                 \
        }                                                                                         \
    }

#endif
