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
