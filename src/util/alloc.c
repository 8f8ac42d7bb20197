/* alloc.c -- allocation wrappers with an out-of-memory injection hook. */
#include "util/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/base.h"

static _Atomic long fail_after = -1; /* -1: never fail */

void ndl_alloc_fail_after(long n) { atomic_store(&fail_after, n); }

static bool should_fail(void)
{
    long v = atomic_load_explicit(&fail_after, memory_order_relaxed);
    if (NDL_LIKELY(v < 0))
        return false;
    if (v == 0)
        return true;
    atomic_fetch_sub(&fail_after, 1);
    return false;
}

void *ndl_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }

void *ndl_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *ndl_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }

void *ndl_aligned_alloc(size_t align, size_t n)
{
    if (should_fail())
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align, n ? n : align) != 0)
        return NULL;
    return p;
}

char *ndl_strndup(const char *s, size_t n)
{
    char *p = ndl_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

NDL_API void ndl_free(void *p) { free(p); }
