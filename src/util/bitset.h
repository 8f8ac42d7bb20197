/*
 * bitset.h -- a bitset over all 2^32 internal slots, reserved once as lazily
 * committed anonymous memory (512 MiB of address space; only touched pages
 * cost memory), so it never moves and readers need no lock. Bits are set and
 * cleared atomically; tests are relaxed loads.
 */
#ifndef NDL_UTIL_BITSET_H
#define NDL_UTIL_BITSET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/base.h"

typedef struct bitset {
    _Atomic uint64_t *words; /* 2^26 words, mapped with MAP_NORESERVE */
} bitset;

ndl_status bitset_init(bitset *b, ndl_error *err);
void bitset_destroy(bitset *b);
/* Copy bits [0, n) of src into dst (a fresh bitset); dst's other bits stay 0. */
void bitset_copy_prefix(bitset *dst, const bitset *src, uint32_t n);

static inline bool bitset_test(const bitset *b, uint32_t i)
{
    return (atomic_load_explicit(&b->words[i >> 6], memory_order_relaxed) >> (i & 63)) & 1u;
}
static inline void bitset_set(bitset *b, uint32_t i)
{
    atomic_fetch_or_explicit(&b->words[i >> 6], (uint64_t)1 << (i & 63), memory_order_release);
}
static inline void bitset_clear(bitset *b, uint32_t i)
{
    atomic_fetch_and_explicit(&b->words[i >> 6], ~((uint64_t)1 << (i & 63)), memory_order_release);
}

#endif
