/*
 * bench_util.h -- small pieces every benchmark program here uses: a
 * monotonic clock, sorting doubles and reading percentiles, and the
 * xorshift64 generator the data generators share (same seed, same data).
 * Header-only so each bench stays one .c file with its own gcc line.
 */
#ifndef NDL_BENCH_UTIL_H
#define NDL_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* qsort comparator of doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-quantile (0..1, nearest rank) of n sorted values; 0 when n is 0. */
static inline double bench_pct(const double *sorted, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

#define BENCH_SEED 88172645463325252ull

/* xorshift64 (Marsaglia): the next value of *state (never 0). */
static inline uint64_t bench_xorshift(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

#endif
