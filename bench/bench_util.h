/*
 * bench_util.h -- small pieces every benchmark program here uses: a
 * monotonic clock, sorting doubles and reading percentiles, the xorshift64
 * generator the data generators share (same seed, same data), and reading
 * .fvecs / .bvecs files.
 * Header-only so each bench stays one .c file with its own gcc line.
 */
#ifndef NDL_BENCH_UTIL_H
#define NDL_BENCH_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Every vector of an .fvecs file (or .bvecs: bytes, widened) as n * dim
 * floats (malloc'd); exits with a message on any problem. */
static inline float *bench_read_vecs(const char *path, size_t *n_out, uint32_t *dim_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t plen = strlen(path);
    int bytes = plen > 6 && strcmp(path + plen - 6, ".bvecs") == 0;
    int32_t d;
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > 65536) {
        fprintf(stderr, "%s: not an fvecs/bvecs file\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t rec = 4 + (size_t)d * (bytes ? 1 : 4);
    size_t n = (size_t)size / rec;
    float *v = malloc((n ? n : 1) * (size_t)d * sizeof *v);
    unsigned char *row = malloc(rec);
    if (!v || !row) {
        fprintf(stderr, "%s: out of memory\n", path);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        if (fread(row, 1, rec, f) != rec) {
            fprintf(stderr, "%s: short read\n", path);
            exit(1);
        }
        for (int32_t j = 0; j < d; j++) {
            if (bytes)
                v[i * (size_t)d + (size_t)j] = row[4 + j];
            else
                memcpy(&v[i * (size_t)d + (size_t)j], row + 4 + 4 * (size_t)j, 4);
        }
    }
    free(row);
    fclose(f);
    *n_out = n;
    *dim_out = (uint32_t)d;
    return v;
}

#endif
