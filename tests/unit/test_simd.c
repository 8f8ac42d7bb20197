/*
 * test_simd.c -- unit tests of the distance kernels (src/simd): the scalar
 * reference against double precision, every SIMD level this CPU can run
 * against the scalar reference (levels it cannot run are skipped), edge
 * values, tails that end at unmapped memory, and the dispatch rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simd/dispatch.h"
#include "simd/simd.h"
#include "util/base.h"

/* Kernels sum in different orders, so results differ by rounding:
 * |got - want| <= REL_TOL * (sum of |terms|) + ABS_TOL. ABS_TOL only matters
 * for subnormal inputs, whose products underflow to 0. */
#define REL_TOL 1e-4
#define ABS_TOL 1e-37

/* ------------------------------------------------------------- helpers */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static float rng_float(rng *r, float lo, float hi)
{
    double u = (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

enum { K_L2SQ, K_DOT, K_NEGDOT, K_L1, K_COSINE, K_F32_COUNT };
static const char *const kernel_names[K_F32_COUNT] = {"l2sq", "dot", "negdot", "l1", "cosine"};

static simd_dist_fn f32_kernel(const simd_kernels *k, int id)
{
    switch (id) {
    case K_L2SQ: return k->l2sq_f32;
    case K_DOT: return k->dot_f32;
    case K_NEGDOT: return k->negdot_f32;
    case K_L1: return k->l1_f32;
    default: return k->cosine_f32;
    }
}

/* Double-precision value of kernel `id`, and in *mag the scale its rounding
 * error is relative to (sum of |terms|; 1 for cosine, which is bounded). */
static double ref_f32(int id, const float *a, const float *b, size_t n, double *mag)
{
    double s = 0.0, m = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        switch (id) {
        case K_L2SQ: s += (x - y) * (x - y); m += (x - y) * (x - y); break;
        case K_DOT: s += x * y; m += fabs(x * y); break;
        case K_NEGDOT: s -= x * y; m += fabs(x * y); break;
        case K_L1: s += fabs(x - y); m += fabs(x - y); break;
        default: s += x * y; aa += x * x; bb += y * y; break;
        }
    }
    if (id == K_COSINE) {
        m = 1.0;
        s = (aa == 0.0 || bb == 0.0) ? 1.0 : 1.0 - s / sqrt(aa * bb);
    }
    *mag = m;
    return s;
}

static void check_close(const char *what, const char *kernel, size_t n, double got, double want,
                        double mag)
{
    double tol = REL_TOL * mag + ABS_TOL;
    if (!(fabs(got - want) <= tol)) {
        print_error("%s %s n=%zu: got %.9g, want %.9g (tolerance %.3g)\n", what, kernel, n, got,
                    want, tol);
        fail();
    }
}

/* Every f32 kernel of k against the scalar kernels on a[0..n), b[0..n). */
static void check_f32_vs_scalar(const simd_kernels *k, const float *a, const float *b, size_t n)
{
    for (int id = 0; id < K_F32_COUNT; id++) {
        double mag;
        (void)ref_f32(id, a, b, n, &mag);
        double want = f32_kernel(&simd_scalar_kernels, id)(a, b, n);
        double got = f32_kernel(k, id)(a, b, n);
        check_close(k->name, kernel_names[id], n, got, want, mag);
    }
}

/* n floats preceded by `offset` floats of slack, ending exactly at the end of
 * the allocation so an overread is an AddressSanitizer error. */
static float *vec_alloc(size_t n, size_t offset, void **block)
{
    *block = malloc((n + offset) * sizeof(float));
    assert_non_null(*block);
    return (float *)*block + offset;
}

/* The dimensions every comparison covers: all tails up to 67, then sizes of
 * real embedding models. */
static size_t test_dims[67 + 3];

static size_t dims_init(void)
{
    size_t count = 0;
    for (size_t n = 1; n <= 67; n++)
        test_dims[count++] = n;
    test_dims[count++] = 127;
    test_dims[count++] = 768;
    test_dims[count++] = 1536;
    return count;
}

static const simd_level level_scalar = SIMD_SCALAR;
static const simd_level level_avx2 = SIMD_AVX2;
static const simd_level level_avx512 = SIMD_AVX512;

/* The kernels of the level a test runs for, or a skip when the CPU lacks it. */
static const simd_kernels *level_or_skip(void **state)
{
    const simd_kernels *k = simd_kernels_for(*(const simd_level *)*state);
    if (k == NULL)
        skip();
    return k;
}

/* ------------------------------------------------------------- dispatch */

static void test_simd_get_returns_complete_table(void **state)
{
    (void)state;
    const simd_kernels *k = simd_get();
    assert_non_null(k);
    assert_non_null(k->name);
    assert_non_null(k->l2sq_f32);
    assert_non_null(k->dot_f32);
    assert_non_null(k->negdot_f32);
    assert_non_null(k->l1_f32);
    assert_non_null(k->cosine_f32);
    assert_non_null(k->hamming_u8);
    assert_non_null(k->l2sq_f32_many);
    assert_non_null(k->dot_f32_many);
    assert_non_null(k->negdot_f32_many);
    assert_non_null(k->l1_f32_many);
    assert_non_null(k->cosine_f32_many);
    assert_non_null(k->hamming_u8_many);
    assert_ptr_equal(simd_kernels_for(k->level), k);
}

static void test_simd_get_follows_env_rule(void **state)
{
    (void)state;
    simd_level want = simd_level_from_env(getenv("NEEDLE_SIMD"), simd_best_level());
    assert_int_equal(simd_get()->level, want);
}

static void *get_in_thread(void *arg)
{
    (void)arg;
    return (void *)simd_get();
}

static void test_simd_get_same_in_every_thread(void **state)
{
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, get_in_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *got;
        assert_int_equal(pthread_join(t[i], &got), 0);
        assert_ptr_equal(got, simd_get());
    }
}

/* argv[0] of this test, for the children that report their level. */
static const char *self_path;

/* The kernels a fresh process picks with NEEDLE_SIMD = value (NULL: unset):
 * this binary re-run with --print-level prints simd_get()->name. */
static void child_level(const char *value, char *name, size_t cap)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        if (value)
            setenv("NEEDLE_SIMD", value, 1);
        else
            unsetenv("NEEDLE_SIMD");
        execl("/proc/self/exe", self_path, "--print-level", (char *)NULL);
        execl(self_path, self_path, "--print-level", (char *)NULL); /* no /proc */
        _exit(127);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(fd[0], name + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    name[got] = 0;
    close(fd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *nl = strchr(name, '\n');
    if (nl)
        *nl = 0;
}

static void test_simd_env_chooses_level_at_start(void **state)
{
    (void)state;
    static const char *const values[] = {NULL,   "",     "scalar", "SCALAR", "avx2",
                                         "avx512", "auto", "sse9"};
    static const char *const names[] = {"scalar", "avx2", "avx512"};
    simd_level best = simd_best_level();
    for (size_t i = 0; i < NDL_ARRAY_LEN(values); i++) {
        char got[64];
        child_level(values[i], got, sizeof got);
        const char *want = names[simd_level_from_env(values[i], best)];
        if (strcmp(got, want) != 0) {
            print_error("NEEDLE_SIMD=%s: child chose '%s', want '%s'\n",
                        values[i] ? values[i] : "(unset)", got, want);
            fail();
        }
    }
}

static void test_simd_kernels_for_follows_cpu(void **state)
{
    (void)state;
    simd_level best = simd_best_level();
    const simd_level levels[] = {SIMD_SCALAR, SIMD_AVX2, SIMD_AVX512};
    const char *const names[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        const simd_kernels *k = simd_kernels_for(levels[i]);
        if (levels[i] > best) {
            assert_null(k);
            continue;
        }
        assert_non_null(k);
        assert_int_equal(k->level, levels[i]);
        assert_string_equal(k->name, names[i]);
    }
    assert_ptr_equal(simd_kernels_for(SIMD_SCALAR), &simd_scalar_kernels);
}

static void test_simd_kernels_for_rejects_unknown_level(void **state)
{
    (void)state;
    assert_null(simd_kernels_for((simd_level)3));
    assert_null(simd_kernels_for((simd_level)-1));
}

static void test_simd_env_forces_supported_level(void **state)
{
    (void)state;
    assert_int_equal(simd_level_from_env("scalar", SIMD_AVX2), SIMD_SCALAR);
    assert_int_equal(simd_level_from_env("scalar", SIMD_AVX512), SIMD_SCALAR);
    assert_int_equal(simd_level_from_env("avx2", SIMD_AVX512), SIMD_AVX2);
    assert_int_equal(simd_level_from_env("avx512", SIMD_AVX512), SIMD_AVX512);
    assert_int_equal(simd_level_from_env("AVX2", SIMD_AVX512), SIMD_AVX2);
    assert_int_equal(simd_level_from_env("Scalar", SIMD_AVX2), SIMD_SCALAR);
}

static void test_simd_env_unsupported_level_falls_back_to_best(void **state)
{
    (void)state;
    assert_int_equal(simd_level_from_env("avx512", SIMD_AVX2), SIMD_AVX2);
    assert_int_equal(simd_level_from_env("avx512", SIMD_SCALAR), SIMD_SCALAR);
    assert_int_equal(simd_level_from_env("avx2", SIMD_SCALAR), SIMD_SCALAR);
}

static void test_simd_env_unset_or_unknown_gives_best(void **state)
{
    (void)state;
    assert_int_equal(simd_level_from_env(NULL, SIMD_AVX2), SIMD_AVX2);
    assert_int_equal(simd_level_from_env("", SIMD_AVX512), SIMD_AVX512);
    assert_int_equal(simd_level_from_env("auto", SIMD_AVX2), SIMD_AVX2);
    assert_int_equal(simd_level_from_env("sse4", SIMD_AVX2), SIMD_AVX2);
    assert_int_equal(simd_level_from_env("avx2 ", SIMD_AVX512), SIMD_AVX512);
}

/* ------------------------------------------------------------- f32 kernels */

static void test_simd_scalar_matches_double_reference(void **state)
{
    (void)state;
    rng r = {1};
    size_t ndims = dims_init();
    static const size_t extra[] = {65536};
    for (size_t d = 0; d < ndims + 1; d++) {
        size_t n = d < ndims ? test_dims[d] : extra[0];
        void *ba, *bb;
        float *a = vec_alloc(n, 0, &ba), *b = vec_alloc(n, 0, &bb);
        for (size_t i = 0; i < n; i++) {
            a[i] = rng_float(&r, -1.0f, 1.0f);
            b[i] = rng_float(&r, -1.0f, 1.0f);
        }
        for (int id = 0; id < K_F32_COUNT; id++) {
            double mag, want = ref_f32(id, a, b, n, &mag);
            double got = f32_kernel(&simd_scalar_kernels, id)(a, b, n);
            check_close("scalar", kernel_names[id], n, got, want, mag);
        }
        free(ba);
        free(bb);
    }
}

static void test_simd_exact_on_small_integers(void **state)
{
    /* Integer inputs keep every partial sum an exact float (< 2^24), so any
     * summation order must give the exact answer. */
    const simd_kernels *k = level_or_skip(state);
    rng r = {2};
    size_t ndims = dims_init();
    for (size_t d = 0; d < ndims; d++) {
        size_t n = test_dims[d];
        void *ba, *bb;
        float *a = vec_alloc(n, 1, &ba), *b = vec_alloc(n, 1, &bb);
        for (size_t i = 0; i < n; i++) {
            a[i] = (float)((int)(rng_next(&r) % 17) - 8);
            b[i] = (float)((int)(rng_next(&r) % 17) - 8);
        }
        for (int id = 0; id < K_COSINE; id++) {
            double mag, want = ref_f32(id, a, b, n, &mag);
            double got = f32_kernel(k, id)(a, b, n);
            if (got != want) {
                print_error("%s %s n=%zu: got %.9g, want %.9g exactly\n", k->name,
                            kernel_names[id], n, got, want);
                fail();
            }
        }
        free(ba);
        free(bb);
    }
}

static void test_simd_matches_scalar_random(void **state)
{
    const simd_kernels *k = level_or_skip(state);
    rng r = {3};
    size_t ndims = dims_init();
    for (size_t d = 0; d < ndims; d++) {
        size_t n = test_dims[d];
        float *a = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
        float *b = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
        assert_non_null(a);
        assert_non_null(b);
        for (size_t i = 0; i < n; i++) {
            a[i] = rng_float(&r, -1.0f, 1.0f);
            b[i] = rng_float(&r, -1.0f, 1.0f);
        }
        check_f32_vs_scalar(k, a, b, n);
        free(a);
        free(b);
    }
}

static void test_simd_matches_scalar_unaligned(void **state)
{
    const simd_kernels *k = level_or_skip(state);
    rng r = {4};
    size_t ndims = dims_init();
    for (size_t d = 0; d < ndims; d++) {
        size_t n = test_dims[d];
        void *ba, *bb;
        /* Different misalignments for a and b: 4 and 12 bytes. */
        float *a = vec_alloc(n, 1, &ba), *b = vec_alloc(n, 3, &bb);
        for (size_t i = 0; i < n; i++) {
            a[i] = rng_float(&r, -3.0f, 2.0f);
            b[i] = rng_float(&r, -2.0f, 3.0f);
        }
        check_f32_vs_scalar(k, a, b, n);
        free(ba);
        free(bb);
    }
}

static void test_simd_matches_scalar_at_max_dimension(void **state)
{
    const simd_kernels *k = level_or_skip(state);
    rng r = {5};
    size_t n = NDL_DIM_MAX;
    void *ba, *bb;
    float *a = vec_alloc(n, 1, &ba), *b = vec_alloc(n, 1, &bb);
    for (size_t i = 0; i < n; i++) {
        a[i] = rng_float(&r, -1.0f, 1.0f);
        b[i] = rng_float(&r, -0.5f, 1.5f);
    }
    check_f32_vs_scalar(k, a, b, n);
    free(ba);
    free(bb);
}

enum { E_ZEROS, E_ONE_ZERO, E_SUBNORMAL, E_LARGE, E_NEGATIVE, E_MIXED, E_COUNT };
static const char *const edge_names[E_COUNT] = {"zeros",    "one-zero", "subnormal",
                                                "large",    "negative", "mixed"};

static void fill_edge(rng *r, int kind, float *a, float *b, size_t n)
{
    /* Large values as big as possible (~1e18) while n * (2 * scale)^2 stays
     * below FLT_MAX, so no kernel overflows to inf. */
    float big = (float)fmin(1e18, 0.5 * sqrt(1e38 / (double)n));
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
        case E_ZEROS: a[i] = 0.0f; b[i] = 0.0f; break;
        case E_ONE_ZERO: a[i] = rng_float(r, -1.0f, 1.0f); b[i] = 0.0f; break;
        case E_SUBNORMAL: /* below FLT_MIN (1.18e-38) */
            a[i] = rng_float(r, -1.0f, 1.0f) * 1e-39f;
            b[i] = rng_float(r, -1.0f, 1.0f) * 1e-39f;
            break;
        case E_LARGE: a[i] = rng_float(r, -big, big); b[i] = rng_float(r, -big, big); break;
        case E_NEGATIVE:
            a[i] = rng_float(r, -100.0f, -1.0f);
            b[i] = rng_float(r, -50.0f, -0.001f);
            break;
        default: /* huge and small values interleaved: cancellation-prone */
            a[i] = (i % 3 == 0) ? rng_float(r, -big, big) : rng_float(r, -1e-3f, 1e-3f);
            b[i] = (i % 2 == 0) ? rng_float(r, -big, big) : rng_float(r, -1e-3f, 1e-3f);
            break;
        }
    }
}

static void test_simd_matches_scalar_edge_values(void **state)
{
    const simd_kernels *k = level_or_skip(state);
    rng r = {6};
    size_t ndims = dims_init();
    for (int kind = 0; kind < E_COUNT; kind++) {
        for (size_t d = 0; d < ndims; d++) {
            size_t n = test_dims[d];
            void *ba, *bb;
            float *a = vec_alloc(n, 1, &ba), *b = vec_alloc(n, 1, &bb);
            fill_edge(&r, kind, a, b, n);
            for (int id = 0; id < K_F32_COUNT; id++) {
                double mag;
                (void)ref_f32(id, a, b, n, &mag);
                double want = f32_kernel(&simd_scalar_kernels, id)(a, b, n);
                double got = f32_kernel(k, id)(a, b, n);
                char what[64];
                snprintf(what, sizeof what, "%s/%s", k->name, edge_names[kind]);
                assert_true(isfinite(got));
                check_close(what, kernel_names[id], n, got, want, mag);
            }
            free(ba);
            free(bb);
        }
    }
}

static void test_simd_edge_values_give_exact_results(void **state)
{
    /* What every level must return exactly, not just agree on. */
    const simd_kernels *k = level_or_skip(state);
    rng r = {7};
    size_t ndims = dims_init();
    for (size_t d = 0; d < ndims; d++) {
        size_t n = test_dims[d];
        void *ba, *bb;
        float *a = vec_alloc(n, 1, &ba), *b = vec_alloc(n, 1, &bb);
        fill_edge(&r, E_ZEROS, a, b, n);
        assert_true(k->l2sq_f32(a, b, n) == 0.0f);
        assert_true(k->dot_f32(a, b, n) == 0.0f);
        assert_true(k->l1_f32(a, b, n) == 0.0f);
        assert_true(k->cosine_f32(a, b, n) == 1.0f);
        /* Subnormal squares and products underflow to exactly 0. */
        fill_edge(&r, E_SUBNORMAL, a, b, n);
        assert_true(k->l2sq_f32(a, b, n) == 0.0f);
        assert_true(k->dot_f32(a, b, n) == 0.0f);
        assert_true(k->cosine_f32(a, b, n) == 1.0f);
        assert_true(k->l1_f32(a, b, n) > 0.0f);
        free(ba);
        free(bb);
    }
}

static void test_simd_cosine_zero_vector_is_one(void **state)
{
    const simd_kernels *k = level_or_skip(state);
    rng r = {8};
    size_t ndims = dims_init();
    for (size_t d = 0; d < ndims; d++) {
        size_t n = test_dims[d];
        void *bz, *bx;
        float *zero = vec_alloc(n, 1, &bz), *x = vec_alloc(n, 1, &bx);
        for (size_t i = 0; i < n; i++) {
            zero[i] = (i % 2) ? -0.0f : 0.0f; /* negative zero is zero too */
            x[i] = rng_float(&r, -1.0f, 1.0f);
        }
        assert_true(k->cosine_f32(zero, x, n) == 1.0f);
        assert_true(k->cosine_f32(x, zero, n) == 1.0f);
        assert_true(k->cosine_f32(zero, zero, n) == 1.0f);
        free(bz);
        free(bx);
    }
}

static void test_simd_identical_vectors_are_at_distance_zero(void **state)
{
    const simd_kernels *k = level_or_skip(state);
    rng r = {9};
    size_t ndims = dims_init();
    for (size_t d = 0; d < ndims; d++) {
        size_t n = test_dims[d];
        void *ba, *bb;
        float *a = vec_alloc(n, 1, &ba), *b = vec_alloc(n, 0, &bb);
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] = rng_float(&r, -10.0f, 10.0f);
        if (a[0] == 0.0f)
            a[0] = b[0] = 1.0f; /* keep the norm nonzero */
        assert_true(k->l2sq_f32(a, b, n) == 0.0f);
        assert_true(k->l1_f32(a, b, n) == 0.0f);
        assert_true(fabsf(k->cosine_f32(a, b, n)) <= 1e-6f);
        assert_true(k->cosine_f32(a, b, n) >= 0.0f); /* clamped, never below 0 */
        assert_true(k->hamming_u8(a, b, n * sizeof(float)) == 0.0f);
        free(ba);
        free(bb);
    }
}

static void test_simd_cosine_of_parallel_vectors_is_zero(void **state)
{
    /* b = c * a rounds, so the computed cosine often exceeds 1 slightly; the
     * kernels clamp, so the distance is never negative. */
    const simd_kernels *k = level_or_skip(state);
    rng r = {13};
    size_t ndims = dims_init();
    for (size_t d = 0; d < ndims; d++) {
        size_t n = test_dims[d];
        void *ba, *bb;
        float *a = vec_alloc(n, 1, &ba), *b = vec_alloc(n, 1, &bb);
        for (int t = 0; t < 20; t++) {
            float c = 1.0f + 0.37f * (float)t;
            for (size_t i = 0; i < n; i++) {
                a[i] = rng_float(&r, 0.1f, 1.0f);
                b[i] = a[i] * c;
            }
            float dist = k->cosine_f32(a, b, n);
            assert_true(dist >= 0.0f && dist <= 1e-6f);
        }
        free(ba);
        free(bb);
    }
}

static void test_simd_opposite_vectors_have_cosine_two(void **state)
{
    const simd_kernels *k = level_or_skip(state);
    rng r = {10};
    size_t ndims = dims_init();
    for (size_t d = 0; d < ndims; d++) {
        size_t n = test_dims[d];
        void *ba, *bb;
        float *a = vec_alloc(n, 1, &ba), *b = vec_alloc(n, 1, &bb);
        for (size_t i = 0; i < n; i++) {
            a[i] = rng_float(&r, 0.5f, 2.0f);
            b[i] = -a[i];
        }
        float c = k->cosine_f32(a, b, n);
        assert_true(c <= 2.0f && c >= 2.0f - 1e-6f);
        free(ba);
        free(bb);
    }
}

static void test_simd_negdot_is_minus_dot(void **state)
{
    const simd_kernels *k = level_or_skip(state);
    rng r = {11};
    size_t ndims = dims_init();
    for (size_t d = 0; d < ndims; d++) {
        size_t n = test_dims[d];
        void *ba, *bb;
        float *a = vec_alloc(n, 1, &ba), *b = vec_alloc(n, 1, &bb);
        for (size_t i = 0; i < n; i++) {
            a[i] = rng_float(&r, -1.0f, 1.0f);
            b[i] = rng_float(&r, -1.0f, 1.0f);
        }
        assert_true(k->negdot_f32(a, b, n) == -k->dot_f32(a, b, n));
        free(ba);
        free(bb);
    }
}

/* ------------------------------------------------------------- hamming */

static uint64_t ref_hamming(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t count = 0;
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++)
            count += ((a[i] >> bit) & 1u) != ((b[i] >> bit) & 1u);
    return count;
}

static void test_simd_hamming_matches_bit_reference(void **state)
{
    const simd_kernels *k = level_or_skip(state);
    rng r = {12};
    /* 1..67 covers every byte tail; the rest the 32/64/128-byte loops. */
    size_t sizes[67 + 12];
    size_t count = 0;
    for (size_t n = 1; n <= 67; n++)
        sizes[count++] = n;
    static const size_t more[] = {96, 127, 128, 129, 191, 192, 193, 255, 256, 1000, 4096, 8192};
    for (size_t i = 0; i < NDL_ARRAY_LEN(more); i++)
        sizes[count++] = more[i];
    for (size_t s = 0; s < count; s++) {
        size_t n = sizes[s];
        uint8_t *ba = malloc(n + 1), *bb = malloc(n + 3);
        assert_non_null(ba);
        assert_non_null(bb);
        uint8_t *a = ba + 1, *b = bb + 3; /* odd addresses, ending at the block end */
        for (size_t i = 0; i < n; i++) {
            a[i] = (uint8_t)rng_next(&r);
            b[i] = (uint8_t)rng_next(&r);
        }
        float got = k->hamming_u8(a, b, n);
        uint64_t want = ref_hamming(a, b, n);
        if (got != (float)want) {
            print_error("%s hamming n=%zu: got %.0f, want %llu\n", k->name, n, (double)got,
                        (unsigned long long)want);
            fail();
        }
        /* All bits differ, then none. */
        memset(a, 0xff, n);
        memset(b, 0x00, n);
        assert_true(k->hamming_u8(a, b, n) == (float)(8 * n));
        assert_true(k->hamming_u8(a, a, n) == 0.0f);
        free(ba);
        free(bb);
    }
}

/* ------------------------------------------------------------- many */

enum { K_HAMMING = K_F32_COUNT, K_ALL_COUNT };

static simd_dist_many_fn many_kernel(const simd_kernels *k, int id)
{
    switch (id) {
    case K_L2SQ: return k->l2sq_f32_many;
    case K_DOT: return k->dot_f32_many;
    case K_NEGDOT: return k->negdot_f32_many;
    case K_L1: return k->l1_f32_many;
    case K_COSINE: return k->cosine_f32_many;
    default: return k->hamming_u8_many;
    }
}

static simd_dist_fn pair_kernel(const simd_kernels *k, int id)
{
    return id == K_HAMMING ? k->hamming_u8 : f32_kernel(k, id);
}

/* count records of n elements, `pad` bytes apart beyond their size, in a
 * block that ends with the last record (overreads are ASan errors): the many
 * kernel must return what the pair kernel returns for each, bit for bit. */
static void check_many(const simd_kernels *k, int id, rng *r, size_t n, size_t pad, size_t count)
{
    size_t elem = id == K_HAMMING ? 1 : sizeof(float);
    size_t bytes = n * elem, stride = bytes + pad;
    size_t total = count ? (count - 1) * stride + bytes : 0;
    unsigned char *block = malloc(total ? total : 1);
    unsigned char *q = malloc(bytes);
    float *out = malloc((count + 1) * sizeof *out);
    assert_true(block && q && out);
    for (size_t i = 0; i < total; i++)
        block[i] = (unsigned char)rng_next(r);
    for (size_t i = 0; i < bytes; i++)
        q[i] = (unsigned char)rng_next(r);
    if (id != K_HAMMING) { /* finite floats in [-1, 1), stored at any alignment */
        for (size_t c = 0; c < count; c++)
            for (size_t i = 0; i < n; i++) {
                float f = rng_float(r, -1.0f, 1.0f);
                memcpy(block + c * stride + i * sizeof f, &f, sizeof f);
            }
        for (size_t i = 0; i < n; i++) {
            float f = rng_float(r, -1.0f, 1.0f);
            memcpy(q + i * sizeof f, &f, sizeof f);
        }
    }
    out[count] = 12345.0f; /* not written */
    many_kernel(k, id)(q, block, stride, count, n, out);
    assert_true(out[count] == 12345.0f);
    /* The pair kernel on separate copies. */
    float *qa = malloc(bytes + sizeof(float)), *xa = malloc(bytes + sizeof(float));
    assert_true(qa && xa);
    memcpy(qa, q, bytes);
    for (size_t c = 0; c < count; c++) {
        memcpy(xa, block + c * stride, bytes);
        float want = pair_kernel(k, id)(qa, xa, n);
        if (memcmp(&out[c], &want, sizeof want) != 0) {
            print_error("%s %s many n=%zu stride=%zu count=%zu: record %zu got %.9g, pair %.9g\n",
                        k->name, id == K_HAMMING ? "hamming" : kernel_names[id], n, stride,
                        count, c, (double)out[c], (double)want);
            fail();
        }
    }
    free(qa);
    free(xa);
    free(block);
    free(q);
    free(out);
}

static void test_simd_many_equals_pair(void **state)
{
    const simd_kernels *k = level_or_skip(state);
    rng r = {14};
    size_t ndims = dims_init();
    /* Float records stay float-aligned (as the arena keeps them); byte
     * records (hamming) may start anywhere. */
    static const size_t f32_pads[] = {0, 4, 12, 64};
    static const size_t u8_pads[] = {0, 1, 5, 64};
    static const size_t counts[] = {0, 1, 3, 64, 67};
    for (int id = 0; id < K_ALL_COUNT; id++)
        for (size_t d = 0; d < ndims; d++)
            for (size_t p = 0; p < 4; p++)
                for (size_t c = 0; c < NDL_ARRAY_LEN(counts); c++) {
                    /* keep the long dimensions quick */
                    if (test_dims[d] > 67 && counts[c] > 3)
                        continue;
                    check_many(k, id, &r, test_dims[d], id == K_HAMMING ? u8_pads[p] : f32_pads[p],
                               counts[c]);
                }
}

static void test_simd_many_for_finds_sibling(void **state)
{
    (void)state;
    /* every table, runnable here or not: only addresses are compared */
    const simd_kernels *tables[] = {&simd_scalar_kernels, &simd_avx2_kernels,
                                    &simd_avx512_kernels};
    for (size_t t = 0; t < NDL_ARRAY_LEN(tables); t++)
        for (int id = 0; id < K_ALL_COUNT; id++)
            assert_ptr_equal(simd_many_for(pair_kernel(tables[t], id)),
                             many_kernel(tables[t], id));
    assert_null(simd_many_for(NULL));
    assert_null(simd_many_for((simd_dist_fn)(void *)test_simd_many_for_finds_sibling));
}

/* ------------------------------------------------------------- tails */

static void test_simd_tails_stop_at_end_of_memory(void **state)
{
    /* Vectors end right before an inaccessible page: reading one byte too
     * many (e.g. an unmasked tail load) crashes the test. */
    const simd_kernels *k = level_or_skip(state);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    /* Pages: [a data][guard][b data][guard]. */
    unsigned char *m = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(mprotect(m + page, page, PROT_NONE), 0);
    assert_int_equal(mprotect(m + 3 * page, page, PROT_NONE), 0);
    for (size_t i = 0; i < page; i++) {
        m[i] = (unsigned char)(i * 7u);
        m[2 * page + i] = (unsigned char)(i * 13u);
    }
    unsigned char *end_a = m + page, *end_b = m + 3 * page;
    for (size_t n = 1; n <= 67; n++) {
        const float *a = (const float *)(const void *)(end_a - n * sizeof(float));
        const float *b = (const float *)(const void *)(end_b - n * sizeof(float));
        for (int id = 0; id < K_F32_COUNT; id++)
            (void)f32_kernel(k, id)(a, b, n);
    }
    for (size_t n = 1; n <= 200; n++)
        (void)k->hamming_u8(end_a - n, end_b - n, n);
    /* Many kernels: three records whose last one ends at the guard page. */
    float out[3];
    for (size_t n = 1; n <= 67; n++) {
        size_t stride = n * sizeof(float) + 4;
        for (int id = 0; id < K_F32_COUNT; id++)
            many_kernel(k, id)(end_b - n * sizeof(float), end_a - 2 * stride - n * sizeof(float),
                               stride, 3, n, out);
    }
    for (size_t n = 1; n <= 200; n++)
        k->hamming_u8_many(end_b - n, end_a - 2 * (n + 1) - n, n + 1, 3, n, out);
    assert_int_equal(munmap(m, 4 * page), 0);
}

/* ------------------------------------------------------------- main */

/* One entry per level; levels the CPU cannot run are skipped at run time. */
#define EVERY_LEVEL(f)                                                                    \
    {#f "_scalar", f, NULL, NULL, (void *)&level_scalar},                                  \
    {#f "_avx2", f, NULL, NULL, (void *)&level_avx2},                                      \
    {#f "_avx512", f, NULL, NULL, (void *)&level_avx512}
#define SIMD_LEVELS(f)                                                                    \
    {#f "_avx2", f, NULL, NULL, (void *)&level_avx2},                                      \
    {#f "_avx512", f, NULL, NULL, (void *)&level_avx512}

int main(int argc, char **argv)
{
    /* Child mode of test_simd_env_chooses_level_at_start. */
    if (argc == 2 && strcmp(argv[1], "--print-level") == 0) {
        printf("%s\n", simd_get()->name);
        return 0;
    }
    self_path = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simd_get_returns_complete_table),
        cmocka_unit_test(test_simd_get_follows_env_rule),
        cmocka_unit_test(test_simd_get_same_in_every_thread),
        cmocka_unit_test(test_simd_kernels_for_follows_cpu),
        cmocka_unit_test(test_simd_kernels_for_rejects_unknown_level),
        cmocka_unit_test(test_simd_env_forces_supported_level),
        cmocka_unit_test(test_simd_env_unsupported_level_falls_back_to_best),
        cmocka_unit_test(test_simd_env_unset_or_unknown_gives_best),
        cmocka_unit_test(test_simd_env_chooses_level_at_start),
        cmocka_unit_test(test_simd_many_for_finds_sibling),
        cmocka_unit_test(test_simd_scalar_matches_double_reference),
        EVERY_LEVEL(test_simd_exact_on_small_integers),
        SIMD_LEVELS(test_simd_matches_scalar_random),
        SIMD_LEVELS(test_simd_matches_scalar_unaligned),
        SIMD_LEVELS(test_simd_matches_scalar_at_max_dimension),
        SIMD_LEVELS(test_simd_matches_scalar_edge_values),
        EVERY_LEVEL(test_simd_edge_values_give_exact_results),
        EVERY_LEVEL(test_simd_cosine_zero_vector_is_one),
        EVERY_LEVEL(test_simd_identical_vectors_are_at_distance_zero),
        EVERY_LEVEL(test_simd_cosine_of_parallel_vectors_is_zero),
        EVERY_LEVEL(test_simd_opposite_vectors_have_cosine_two),
        EVERY_LEVEL(test_simd_negdot_is_minus_dot),
        EVERY_LEVEL(test_simd_hamming_matches_bit_reference),
        EVERY_LEVEL(test_simd_many_equals_pair),
        EVERY_LEVEL(test_simd_tails_stop_at_end_of_memory),
    };
    return cmocka_run_group_tests_name("simd", tests, NULL, NULL);
}
