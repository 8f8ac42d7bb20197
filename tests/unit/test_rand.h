/*
 * test_rand.h -- the xorshift64 generator the randomized unit tests share:
 * each test sets rng_state to its own fixed seed, so every run checks the
 * same cases. Header-only; include it once per test file.
 */
#ifndef NDL_TEST_RAND_H
#define NDL_TEST_RAND_H

#include <stdint.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static inline uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* 0..n-1 (n > 0). */
static inline int rnd_below(int n) { return (int)(rnd() % (uint64_t)n); }

#endif
