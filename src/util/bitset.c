/* bitset.c -- reservation of the slot bitset (see bitset.h). */
#include "util/bitset.h"

#include <sys/mman.h>

#define BITSET_BYTES ((size_t)1 << 29) /* 2^32 bits */

ndl_status bitset_init(bitset *b, ndl_error *err)
{
    void *p = mmap(NULL, BITSET_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        b->words = NULL;
        return ndl_err(err, NDL_NOMEM, "cannot reserve slot bitset");
    }
    b->words = p;
    return NDL_OK;
}

void bitset_destroy(bitset *b)
{
    if (b->words)
        munmap((void *)b->words, BITSET_BYTES);
    b->words = NULL;
}

void bitset_copy_prefix(bitset *dst, const bitset *src, uint32_t n)
{
    size_t words = ((size_t)n + 63) / 64;
    for (size_t i = 0; i < words; i++)
        atomic_store_explicit(&dst->words[i],
                              atomic_load_explicit(&src->words[i], memory_order_relaxed),
                              memory_order_relaxed);
    if (n & 63) /* bits from n on are not part of the copy */
        atomic_fetch_and_explicit(&dst->words[n / 64], ((uint64_t)1 << (n & 63)) - 1,
                                  memory_order_relaxed);
}
