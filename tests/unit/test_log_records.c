/*
 * test_log_records.c -- the write-ahead log's record payloads (db/log_records):
 * round trips of upserts and deletes with u64 and string ids, and decoding
 * that refuses every malformed payload with NDL_CORRUPT (a record whose CRC
 * matches can still be wrong if a bug wrote it) without reading past it or
 * allocating for counts it cannot hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "db/log_records.h"
#include "util/alloc.h"

static void encode_sample(log_buf *b, uint32_t dim)
{
    ndl_id ids[3] = {ndl_id_u64(7), ndl_id_str("doc-1"), ndl_id_u64(UINT64_MAX)};
    float v[3 * 4];
    for (int i = 0; i < 12; i++)
        v[i] = (float)i * 0.5f - 2.0f;
    assert_int_equal(log_encode_upsert(b, 3, ids, dim, NULL, v, NULL), NDL_OK);
}

static void test_upsert_round_trip(void **state)
{
    (void)state;
    log_buf b = {0};
    encode_sample(&b, 4);
    log_batch out;
    assert_int_equal(log_decode_upsert(b.p, b.len, LOG_UPSERT_P, 4, &out, NULL), NDL_OK);
    assert_int_equal(out.n, 3);
    assert_null(out.ids[0].str);
    assert_int_equal(out.ids[0].num, 7);
    assert_int_equal(out.ids[1].len, 5);
    assert_memory_equal(out.ids[1].str, "doc-1", 5);
    assert_true(out.ids[2].num == UINT64_MAX);
    for (int i = 0; i < 12; i++)
        assert_true(out.vectors[i] == (float)i * 0.5f - 2.0f);
    log_batch_free(&out);
    log_buf_free(&b);
}

static void test_delete_round_trip(void **state)
{
    (void)state;
    ndl_id ids[2] = {ndl_id_str("x"), ndl_id_u64(0)};
    log_buf b = {0};
    assert_int_equal(log_encode_delete(&b, 2, ids, NULL), NDL_OK);
    log_batch out;
    assert_int_equal(log_decode_delete(b.p, b.len, &out, NULL), NDL_OK);
    assert_int_equal(out.n, 2);
    assert_memory_equal(out.ids[0].str, "x", 1);
    assert_int_equal(out.ids[1].num, 0);
    log_batch_free(&out);
    log_buf_free(&b);
}

static void test_every_truncation_is_refused(void **state)
{
    (void)state;
    log_buf b = {0};
    encode_sample(&b, 4);
    for (size_t len = 0; len < b.len; len++) {
        log_batch out;
        ndl_error e;
        assert_int_equal(log_decode_upsert(b.p, len, LOG_UPSERT_P, 4, &out, &e), NDL_CORRUPT);
        assert_non_null(strstr(e.msg, "log record"));
    }
    log_buf_free(&b);
}

static void test_bad_fields_are_refused(void **state)
{
    (void)state;
    log_buf b = {0};
    encode_sample(&b, 4);
    log_batch out;
    ndl_error e;
    /* another dimension than the collection's */
    assert_int_equal(log_decode_upsert(b.p, b.len, LOG_UPSERT_P, 5, &out, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, "dimension"));
    /* a count the record cannot hold: refused before any allocation */
    uint8_t *p = ndl_malloc(b.len);
    memcpy(p, b.p, b.len);
    uint32_t huge = 0x7fffffff;
    memcpy(p, &huge, 4);
    ndl_alloc_fail_after(0); /* any allocation would fail the test's expectation */
    assert_int_equal(log_decode_upsert(p, b.len, LOG_UPSERT_P, 4, &out, &e), NDL_CORRUPT);
    ndl_alloc_fail_after(-1);
    /* a string id longer than the limit */
    memcpy(p, b.p, b.len);
    uint32_t bad_len = NDL_ID_STR_MAX + 1;
    memcpy(p + 8 + 12, &bad_len, 4); /* second id's tag: after n, dim and id 1 */
    assert_int_equal(log_decode_upsert(p, b.len, LOG_UPSERT_P, 4, &out, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, "bad length"));
    /* trailing bytes after a delete */
    ndl_id one = ndl_id_u64(1);
    log_buf d = {0};
    assert_int_equal(log_encode_delete(&d, 1, &one, NULL), NDL_OK);
    uint8_t longer[64];
    memcpy(longer, d.p, d.len);
    longer[d.len] = 0;
    assert_int_equal(log_decode_delete(longer, d.len + 1, &out, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, "trailing"));
    log_buf_free(&d);
    ndl_free(p);
    log_buf_free(&b);
}

static void test_encode_out_of_memory(void **state)
{
    (void)state;
    log_buf b = {0};
    ndl_alloc_fail_after(0);
    ndl_error e;
    ndl_id id = ndl_id_u64(1);
    float v[4] = {0};
    assert_int_equal(log_encode_upsert(&b, 1, &id, 4, NULL, v, &e), NDL_NOMEM);
    ndl_alloc_fail_after(-1);
    log_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsert_round_trip),
        cmocka_unit_test(test_delete_round_trip),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_bad_fields_are_refused),
        cmocka_unit_test(test_encode_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
