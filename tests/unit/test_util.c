/*
 * test_util.c -- unit tests of src/util: the distance heaps, the slot bitset,
 * allocation fault injection, status names and error formatting, and CRC32C
 * (known vectors, incremental use, hardware against software).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/alloc.h"
#include "util/base.h"
#include "util/bitset.h"
#include "util/crc32c.h"
#include "util/crc32c_impl.h"
#include "util/heap.h"

/* Small deterministic generator (xorshift64*), so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static int cmp_dist(const void *a, const void *b)
{
    const dist_slot *x = a, *y = b;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* ---------------------------------------------------------------- heaps */

static void test_util_maxheap_keeps_best_k(void **state)
{
    (void)state;
    enum { N = 5000 };
    static dist_slot all[N];
    for (uint32_t k = 1; k <= 300; k += 37) {
        dist_slot *store = malloc(k * sizeof *store);
        assert_non_null(store);
        dheap h;
        dheap_init(&h, store, k);
        for (uint32_t i = 0; i < N; i++) {
            /* Distinct distances so "the best k" is unambiguous. */
            all[i].dist = (float)(rng_next() % 1000) + (float)i / (float)N;
            all[i].slot = i;
            maxheap_offer(&h, all[i].dist, i);
        }
        assert_int_equal(h.n, k);
        qsort(all, N, sizeof *all, cmp_dist);
        /* The root is the worst of the kept k. */
        assert_true(h.v[0].dist == all[k - 1].dist);
        uint32_t n = maxheap_drain_sorted(&h, store);
        assert_int_equal(n, k);
        assert_int_equal(h.n, 0);
        for (uint32_t i = 0; i < k; i++) {
            assert_true(store[i].dist == all[i].dist);
            assert_int_equal(store[i].slot, all[i].slot);
        }
        free(store);
    }
}

static void test_util_maxheap_drain_sorted_ascending(void **state)
{
    (void)state;
    enum { N = 777 };
    dist_slot store[N], out[N];
    dheap h;
    dheap_init(&h, store, N);
    for (uint32_t i = 0; i < N; i++)
        maxheap_push(&h, (float)(rng_next() % 100), i); /* many ties */
    assert_int_equal(maxheap_drain_sorted(&h, out), N);
    for (uint32_t i = 1; i < N; i++)
        assert_true(out[i - 1].dist <= out[i].dist);
    /* Draining in place (out aliases the storage) works too. */
    dheap_init(&h, store, N);
    for (uint32_t i = 0; i < N; i++)
        maxheap_push(&h, (float)(rng_next() % 1000), i);
    assert_int_equal(maxheap_drain_sorted(&h, store), N);
    for (uint32_t i = 1; i < N; i++)
        assert_true(store[i - 1].dist <= store[i].dist);
}

static void test_util_maxheap_offer_rejects_worse(void **state)
{
    (void)state;
    dist_slot store[2];
    dheap h;
    dheap_init(&h, store, 2);
    assert_int_equal(maxheap_offer(&h, 1.0f, 1), 1);
    assert_int_equal(maxheap_offer(&h, 2.0f, 2), 1);
    assert_int_equal(maxheap_offer(&h, 3.0f, 3), 0); /* worse than both */
    assert_int_equal(maxheap_offer(&h, 2.0f, 4), 0); /* ties do not evict */
    assert_int_equal(maxheap_offer(&h, 0.5f, 5), 1);
    assert_true(h.v[0].dist == 1.0f);
}

static void test_util_minheap_pops_in_order(void **state)
{
    (void)state;
    enum { N = 1000 };
    dist_slot store[N], ref[N];
    dheap h;
    dheap_init(&h, store, N);
    for (uint32_t i = 0; i < N; i++) {
        ref[i].dist = (float)(rng_next() % 500) * 0.25f;
        ref[i].slot = i;
        minheap_push(&h, ref[i].dist, i);
    }
    qsort(ref, N, sizeof *ref, cmp_dist);
    for (uint32_t i = 0; i < N; i++) {
        assert_true(h.v[0].dist == ref[i].dist);
        minheap_pop(&h);
    }
    assert_int_equal(h.n, 0);
    /* Interleaved pushes and pops keep the root the minimum. */
    float lo = 0;
    for (uint32_t i = 0; i < 2000; i++) {
        if (h.n && (rng_next() & 1)) {
            lo = h.v[0].dist;
            minheap_pop(&h);
            for (uint32_t j = 0; j < h.n; j++)
                assert_true(h.v[j].dist >= lo);
        } else if (h.n < N) {
            minheap_push(&h, (float)(rng_next() % 100), i);
        }
    }
}

/* ---------------------------------------------------------------- bitset */

static void test_util_bitset_set_test_clear(void **state)
{
    (void)state;
    bitset b;
    assert_int_equal(bitset_init(&b, NULL), NDL_OK);
    const uint32_t bits[] = {0, 1, 63, 64, 65, 4095, 4096, 1u << 31, UINT32_MAX - 64,
                             UINT32_MAX - 1, UINT32_MAX};
    for (size_t i = 0; i < NDL_ARRAY_LEN(bits); i++)
        assert_false(bitset_test(&b, bits[i]));
    for (size_t i = 0; i < NDL_ARRAY_LEN(bits); i++) {
        bitset_set(&b, bits[i]);
        assert_true(bitset_test(&b, bits[i]));
    }
    /* Neighbours stay clear. */
    assert_false(bitset_test(&b, 2));
    assert_false(bitset_test(&b, 62));
    assert_false(bitset_test(&b, 66));
    assert_false(bitset_test(&b, UINT32_MAX - 2));
    for (size_t i = 0; i < NDL_ARRAY_LEN(bits); i += 2)
        bitset_clear(&b, bits[i]);
    for (size_t i = 0; i < NDL_ARRAY_LEN(bits); i++)
        assert_int_equal(bitset_test(&b, bits[i]), i % 2 == 1);
    bitset_set(&b, 63); /* setting twice is idempotent */
    assert_true(bitset_test(&b, 63));
    bitset_destroy(&b);
    assert_null(b.words);
    bitset_destroy(&b); /* twice is harmless */
}

/* ---------------------------------------------------------------- alloc */

static void test_util_alloc_fail_after_zero(void **state)
{
    (void)state;
    ndl_alloc_fail_after(0);
    assert_null(ndl_malloc(16));
    assert_null(ndl_calloc(4, 4));
    assert_null(ndl_realloc(NULL, 16));
    assert_null(ndl_aligned_alloc(64, 64));
    assert_null(ndl_strndup("abc", 3));
    ndl_alloc_fail_after(-1);
    void *p = ndl_malloc(16);
    assert_non_null(p);
    ndl_free(p);
}

static void test_util_alloc_fail_after_n(void **state)
{
    (void)state;
    ndl_alloc_fail_after(2);
    void *a = ndl_malloc(8);
    void *b = ndl_calloc(1, 8);
    void *c = ndl_malloc(8);
    ndl_alloc_fail_after(-1);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    ndl_free(a);
    ndl_free(b);
}

static void test_util_alloc_wrappers_work(void **state)
{
    (void)state;
    char *s = ndl_strndup("hello world", 5);
    assert_string_equal(s, "hello");
    ndl_free(s);
    void *p = ndl_aligned_alloc(64, 100);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    ndl_free(p);
    unsigned char *z = ndl_calloc(100, 1);
    for (int i = 0; i < 100; i++)
        assert_int_equal(z[i], 0);
    z = ndl_realloc(z, 1000);
    assert_non_null(z);
    ndl_free(z);
    assert_non_null(p = ndl_malloc(0)); /* zero-size requests still succeed */
    ndl_free(p);
    ndl_free(NULL);
}

/* ---------------------------------------------------------------- status */

static void test_util_status_names_and_messages(void **state)
{
    (void)state;
    static const struct {
        ndl_status s;
        const char *name, *msg;
    } want[] = {
#define WANT_ROW(name, value, code, msg) {NDL_##name, code, msg},
        NDL_STATUS_MAP(WANT_ROW)
#undef WANT_ROW
    };
    assert_int_equal(NDL_ARRAY_LEN(want), 12);
    for (size_t i = 0; i < NDL_ARRAY_LEN(want); i++) {
        assert_int_equal(want[i].s, (int)i); /* codes are dense from 0 */
        assert_string_equal(ndl_status_name(want[i].s), want[i].name);
        assert_string_equal(ndl_status_str(want[i].s), want[i].msg);
    }
    assert_string_equal(ndl_status_name(NDL_OK), "ok");
    assert_string_equal(ndl_status_name(NDL_INVALID), "invalid_argument");
    assert_string_equal(ndl_status_name(NDL_DISK_FULL), "disk_full");
    assert_string_equal(ndl_status_str(NDL_IO), "I/O error");
    assert_string_equal(ndl_status_name((ndl_status)12), "unknown");
    assert_string_equal(ndl_status_name((ndl_status)-1), "unknown");
    assert_string_equal(ndl_status_str((ndl_status)999), "unknown status");
    assert_string_equal(ndl_version(), NDL_VERSION_STRING);
}

static void test_util_err_formats(void **state)
{
    (void)state;
    ndl_error e;
    memset(&e, 0, sizeof e);
    assert_int_equal(ndl_err(&e, NDL_INVALID, "vector has %d values; '%s' has dimension %u", 127,
                             "sift", 128u),
                     NDL_INVALID);
    assert_int_equal(e.status, NDL_INVALID);
    assert_string_equal(e.msg, "vector has 127 values; 'sift' has dimension 128");
    /* A NULL err is allowed; the status still comes back. */
    assert_int_equal(ndl_err(NULL, NDL_IO, "ignored %s", "x"), NDL_IO);
    /* Long messages are truncated and stay terminated. */
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(ndl_err(&e, NDL_CORRUPT, "%s", big), NDL_CORRUPT);
    assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
    assert_int_equal(e.status, NDL_CORRUPT);
}

/* ---------------------------------------------------------------- crc32c */

/* Bit-at-a-time reference, independent of the table. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void test_util_crc32c_known_vectors(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(0, "", 0), 0);
    assert_int_equal(crc32c(0x12345678u, NULL, 0), 0x12345678u);
    /* RFC 3720 (iSCSI) B.4 test patterns. */
    uint8_t buf[48];
    memset(buf, 0, 32);
    assert_int_equal(crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    assert_int_equal(crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(crc32c(0, buf, 32), 0x113FDB5Cu);
    static const uint8_t iscsi[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(crc32c(0, iscsi, sizeof iscsi), 0xD9963A56u);
}

static void test_util_crc32c_matches_bitwise_reference(void **state)
{
    (void)state;
    uint8_t buf[1031];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rng_next();
    /* Every length and several misalignments exercise head, body and tail. */
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += (n < 80 ? 1 : 97)) {
            uint32_t want = crc_ref(0, buf + off, n);
            assert_int_equal(crc32c_sw(0, buf + off, n), want);
            assert_int_equal(crc32c(0, buf + off, n), want);
        }
}

static void test_util_crc32c_incremental_equals_oneshot(void **state)
{
    (void)state;
    enum { N = 4096 };
    static uint8_t buf[N];
    for (size_t i = 0; i < N; i++)
        buf[i] = (uint8_t)rng_next();
    uint32_t whole = crc32c(0, buf, N);
    for (int round = 0; round < 200; round++) {
        /* Split at up to 5 random points. */
        size_t cuts[7] = {0};
        int nc = 1 + (int)(rng_next() % 5);
        for (int i = 1; i <= nc; i++)
            cuts[i] = rng_next() % (N + 1);
        cuts[nc + 1] = N;
        for (int i = 1; i <= nc + 1; i++) /* insertion sort */
            for (int j = i; j > 0 && cuts[j] < cuts[j - 1]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        uint32_t c = 0, s = 0;
        for (int i = 0; i <= nc; i++) {
            c = crc32c(c, buf + cuts[i], cuts[i + 1] - cuts[i]);
            s = crc32c_sw(s, buf + cuts[i], cuts[i + 1] - cuts[i]);
        }
        assert_int_equal(c, whole);
        assert_int_equal(s, whole);
    }
}

static void test_util_crc32c_hw_matches_sw(void **state)
{
    (void)state;
    if (!crc32c_hw_available())
        skip();
    enum { N = 70000 };
    uint8_t *buf = malloc(N);
    assert_non_null(buf);
    for (size_t i = 0; i < N; i++)
        buf[i] = (uint8_t)rng_next();
    for (int round = 0; round < 500; round++) {
        size_t off = rng_next() % 64;
        size_t n = round < 100 ? (size_t)round : rng_next() % (N - off);
        uint32_t seed = round & 1 ? (uint32_t)rng_next() : 0;
        assert_int_equal(crc32c_hw(seed, buf + off, n), crc32c_sw(seed, buf + off, n));
    }
    assert_int_equal(crc32c_hw(0, "123456789", 9), 0xE3069283u);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_util_maxheap_keeps_best_k),
        cmocka_unit_test(test_util_maxheap_drain_sorted_ascending),
        cmocka_unit_test(test_util_maxheap_offer_rejects_worse),
        cmocka_unit_test(test_util_minheap_pops_in_order),
        cmocka_unit_test(test_util_bitset_set_test_clear),
        cmocka_unit_test(test_util_alloc_fail_after_zero),
        cmocka_unit_test(test_util_alloc_fail_after_n),
        cmocka_unit_test(test_util_alloc_wrappers_work),
        cmocka_unit_test(test_util_status_names_and_messages),
        cmocka_unit_test(test_util_err_formats),
        cmocka_unit_test(test_util_crc32c_known_vectors),
        cmocka_unit_test(test_util_crc32c_matches_bitwise_reference),
        cmocka_unit_test(test_util_crc32c_incremental_equals_oneshot),
        cmocka_unit_test(test_util_crc32c_hw_matches_sw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
