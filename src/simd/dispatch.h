/*
 * dispatch.h -- internals of the SIMD level choice made once by dispatch.c
 * (CPU detection and the NEEDLE_SIMD parser), exposed so the unit test can
 * check them without depending on the process environment.
 */
#ifndef NDL_SIMD_DISPATCH_H
#define NDL_SIMD_DISPATCH_H

#include "simd/simd.h"

/* Highest level this CPU (and OS, which must save the wider registers) can
 * run. Levels are nested: AVX-512 here implies AVX2+FMA. */
simd_level simd_best_level(void);

/* The level to use when NEEDLE_SIMD has `value` (NULL when unset) and the CPU
 * can run up to `best`: the named level ("scalar", "avx2", "avx512", any
 * case) if it is <= best, else best. Unset, empty, "auto" or unknown names
 * give best. */
simd_level simd_level_from_env(const char *value, simd_level best);

#endif
