/*
 * simd_bench.c -- speed of every distance kernel (src/simd) at d = 100, 128,
 * 784 and 1536 (or the dimensions given as arguments), for each SIMD level
 * this CPU runs: ns per pair call, and GB/s of records scanned (bytes of the
 * second operand per second; the query stays in L1) through the pair kernel
 * called per record and through the many kernel (one call per pool, the flat
 * scan's path). Data in cache: NVEC records (-DNVEC=...). hamming gets the d
 * bits packed into ceil(d/8) bytes. Not built by CMake or run by ctest.
 * Build and run (by hand, or link build/libneedle.a instead of the objects):
 *
 *   cd /work/main && mkdir -p build-bench && B=build-bench &&
 *   F="-std=c11 -O3 -DNDEBUG -D_GNU_SOURCE -Iinclude -Isrc" &&
 *   cc $F -c src/simd/dist_scalar.c -o $B/dist_scalar.o &&
 *   cc $F -mavx2 -mfma -mpopcnt -c src/simd/dist_avx2.c -o $B/dist_avx2.o &&
 *   cc $F -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vpopcntdq -mfma \
 *      -mpopcnt -c src/simd/dist_avx512.c -o $B/dist_avx512.o &&
 *   cc $F -c src/simd/dispatch.c -o $B/dispatch.o &&
 *   cc $F bench/simd_bench.c $B/dist_*.o $B/dispatch.o -o $B/simd_bench -lpthread -lm &&
 *   ./build-bench/simd_bench [d ...]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "simd/simd.h"

#ifndef NVEC
#define NVEC 64 /* vectors per pool: 64 x 1536 floats stay in L2 (-DNVEC=4: in L1) */
#endif
#define TARGET_NS 1e6    /* time per measurement: short, so some runs see no preemption */
#define RUNS 61          /* report the fastest run (the machine may be busy) */

static volatile float sink;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Calls fn(query, pool[j], n) over the pool `reps` times; ns per call. */
static double time_calls(simd_dist_fn fn, const char *q, const char *pool, size_t stride,
                         size_t n, long reps)
{
    float acc = 0.0f;
    uint64_t t0 = now_ns();
    for (long r = 0; r < reps; r++)
        for (size_t j = 0; j < NVEC; j++)
            acc += fn(q, pool + j * stride, n);
    uint64_t t1 = now_ns();
    sink = acc;
    return (double)(t1 - t0) / ((double)reps * NVEC);
}

/* The same through the many kernel: one call per pass over the pool. */
static double time_many(simd_dist_many_fn fn, const char *q, const char *pool, size_t stride,
                        size_t n, long reps)
{
    static float out[NVEC];
    float acc = 0.0f;
    uint64_t t0 = now_ns();
    for (long r = 0; r < reps; r++) {
        fn(q, pool, stride, NVEC, n, out);
        acc += out[r % NVEC];
    }
    uint64_t t1 = now_ns();
    sink = acc;
    return (double)(t1 - t0) / ((double)reps * NVEC);
}

/* Repetitions for one measurement of about TARGET_NS. */
static long calibrate(simd_dist_fn fn, const char *q, const char *pool, size_t stride, size_t n)
{
    long reps = 1;
    while (time_calls(fn, q, pool, stride, n, reps) * (double)reps * NVEC < TARGET_NS)
        reps *= 2;
    return reps;
}

int main(int argc, char **argv)
{
    size_t dims[32] = {100, 128, 784, 1536};
    size_t ndims = 4;
    if (argc > 1) {
        ndims = 0;
        for (int i = 1; i < argc && ndims < 32; i++) {
            long d = atol(argv[i]);
            if (d < 1 || d > 65536) {
                fprintf(stderr, "usage: %s [d ...] (1 <= d <= 65536)\n", argv[0]);
                return 2;
            }
            dims[ndims++] = (size_t)d;
        }
    }
    static const char *const kernel_names[] = {"l2sq", "dot", "negdot", "l1", "cosine", "hamming"};
    const simd_kernels *levels[3];
    int nlevels = 0;
    for (int l = SIMD_SCALAR; l <= SIMD_AVX512; l++)
        if (simd_kernels_for((simd_level)l))
            levels[nlevels++] = simd_kernels_for((simd_level)l);

    printf("fastest of %d runs, %d records in cache; chosen level: %s\n", RUNS, NVEC,
           simd_get()->name);
    printf("GB/s = bytes of records compared per second (the query stays in L1)\n");
    printf("%-8s %6s %-7s %9s %10s %10s\n", "kernel", "d", "level", "ns/pair", "GB/s pair",
           "GB/s many");

    for (size_t di = 0; di < ndims; di++) {
        size_t d = dims[di];
        /* Rows padded to 64 bytes, plus 4 bytes so rows are not 32-aligned
         * (vectors in a collection need not be). */
        size_t stride = (d * sizeof(float) + 63) / 64 * 64 + 4;
        char *pool = malloc(stride * NVEC + 64), *q = malloc(stride + 64);
        if (!pool || !q)
            return 1;
        srand(42);
        for (size_t j = 0; j < NVEC; j++) {
            float *row = (float *)(void *)(pool + j * stride);
            for (size_t i = 0; i < d; i++)
                row[i] = (float)((double)rand() / RAND_MAX - 0.5);
        }
        for (size_t i = 0; i < d; i++)
            ((float *)(void *)q)[i] = (float)((double)rand() / RAND_MAX - 0.5);

        for (int kid = 0; kid < 6; kid++) {
            size_t n = kid == 5 ? (d + 7) / 8 : d;
            size_t bytes = kid == 5 ? n : n * sizeof(float);
            simd_dist_fn fns[3];
            simd_dist_many_fn manys[3];
            long reps[3];
            double ns[3], ns_many[3];
            for (int l = 0; l < nlevels; l++) {
                const simd_kernels *k = levels[l];
                simd_dist_fn all[6] = {k->l2sq_f32, k->dot_f32,    k->negdot_f32,
                                       k->l1_f32,   k->cosine_f32, k->hamming_u8};
                simd_dist_many_fn all_many[6] = {k->l2sq_f32_many, k->dot_f32_many,
                                                 k->negdot_f32_many, k->l1_f32_many,
                                                 k->cosine_f32_many, k->hamming_u8_many};
                fns[l] = all[kid];
                manys[l] = all_many[kid];
                reps[l] = calibrate(fns[l], q, pool, stride, n);
                ns[l] = ns_many[l] = 1e30;
            }
            /* Levels take turns, so a busy moment slows all of them alike. */
            for (int run = 0; run < RUNS; run++) {
                for (int l = 0; l < nlevels; l++) {
                    double t = time_calls(fns[l], q, pool, stride, n, reps[l]);
                    if (t < ns[l])
                        ns[l] = t;
                    t = time_many(manys[l], q, pool, stride, n, reps[l]);
                    if (t < ns_many[l])
                        ns_many[l] = t;
                }
            }
            for (int l = 0; l < nlevels; l++)
                printf("%-8s %6zu %-7s %9.2f %10.1f %10.1f\n", kernel_names[kid], d,
                       levels[l]->name, ns[l], (double)bytes / ns[l], (double)bytes / ns_many[l]);
        }
        free(pool);
        free(q);
    }
    return 0;
}
