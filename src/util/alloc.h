/*
 * alloc.h -- every heap allocation of the library goes through these, so tests
 * can inject out-of-memory failures (ndl_alloc_fail_after) and reach error paths.
 */
#ifndef NDL_UTIL_ALLOC_H
#define NDL_UTIL_ALLOC_H

#include <stddef.h>

void *ndl_malloc(size_t n);
void *ndl_calloc(size_t count, size_t size);
void *ndl_realloc(void *p, size_t n);
/* Aligned to `align` (a power of two >= sizeof(void*)); free with ndl_free. */
void *ndl_aligned_alloc(size_t align, size_t n);
char *ndl_strndup(const char *s, size_t n);
/* ndl_free is public (needle.h). */

/* Test hook: the next `n` allocations succeed, every one after fails.
 * n < 0 disables injection (the default). Not thread-safe; tests only. */
void ndl_alloc_fail_after(long n);

#endif
