/*
 * dispatch.c -- picks the distance kernels once per process: runtime CPU
 * detection, optionally lowered by NEEDLE_SIMD=scalar|avx2|avx512. No
 * intrinsics here: this file is built without ISA flags.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <strings.h>

#include "simd/dispatch.h"

simd_level simd_best_level(void)
{
    /* __builtin_cpu_supports also checks that the OS enabled the AVX/AVX-512
     * register state (XCR0), so a "yes" means the instructions can run. */
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                __builtin_cpu_supports("popcnt");
    if (!avx2)
        return SIMD_SCALAR;
    /* Every subset dist_avx512.c is compiled for, since the compiler may use
     * any of them anywhere in that file. */
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vpopcntdq");
    return avx512 ? SIMD_AVX512 : SIMD_AVX2;
}

simd_level simd_level_from_env(const char *value, simd_level best)
{
    simd_level want;
    if (value == NULL)
        return best;
    if (strcasecmp(value, "scalar") == 0)
        want = SIMD_SCALAR;
    else if (strcasecmp(value, "avx2") == 0)
        want = SIMD_AVX2;
    else if (strcasecmp(value, "avx512") == 0)
        want = SIMD_AVX512;
    else
        return best; /* the library never prints, so a typo cannot be reported here */
    return want <= best ? want : best;
}

static const simd_kernels *table_of(simd_level level)
{
    switch (level) {
    case SIMD_SCALAR: return &simd_scalar_kernels;
    case SIMD_AVX2: return &simd_avx2_kernels;
    case SIMD_AVX512: return &simd_avx512_kernels;
    }
    return NULL;
}

const simd_kernels *simd_kernels_for(simd_level level)
{
    if ((unsigned)level > (unsigned)simd_best_level())
        return NULL;
    return table_of(level);
}

simd_dist_many_fn simd_many_for(simd_dist_fn pair)
{
    static const simd_kernels *const tables[] = {&simd_scalar_kernels, &simd_avx2_kernels,
                                                 &simd_avx512_kernels};
    if (pair == NULL)
        return NULL;
    /* Comparing addresses runs nothing, so tables this CPU cannot run are
     * searched too: the answer is the pair's own sibling either way. */
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        const simd_kernels *t = tables[i];
        if (pair == t->l2sq_f32)
            return t->l2sq_f32_many;
        if (pair == t->dot_f32)
            return t->dot_f32_many;
        if (pair == t->negdot_f32)
            return t->negdot_f32_many;
        if (pair == t->l1_f32)
            return t->l1_f32_many;
        if (pair == t->cosine_f32)
            return t->cosine_f32_many;
        if (pair == t->hamming_u8)
            return t->hamming_u8_many;
    }
    return NULL;
}

/* The only mutable state of the module: written once under pthread_once,
 * read-only afterwards (pthread_once orders the write before every reader). */
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;
static const simd_kernels *chosen;

static void choose(void)
{
    chosen = table_of(simd_level_from_env(getenv("NEEDLE_SIMD"), simd_best_level()));
}

const simd_kernels *simd_get(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}
