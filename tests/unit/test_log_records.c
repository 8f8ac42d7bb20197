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

static void test_payloads_round_trip_and_truncation(void **state)
{
    (void)state;
    ndl_id ids[3] = {ndl_id_u64(1), ndl_id_str("p"), ndl_id_u64(3)};
    log_text texts[3] = {{"{\"a\":1}", 7}, {NULL, 0}, {"{}", 2}};
    float v[3 * 2] = {1, 2, 3, 4, 5, 6};
    log_buf b = {0};
    assert_int_equal(log_encode_upsert(&b, 3, ids, 2, texts, v, NULL), NDL_OK);
    log_batch out;
    assert_int_equal(log_decode_upsert(b.p, b.len, LOG_UPSERT_P, 2, &out, NULL), NDL_OK);
    assert_non_null(out.payloads);
    assert_int_equal(out.payloads[0].len, 7);
    assert_memory_equal(out.payloads[0].p, "{\"a\":1}", 7);
    assert_null(out.payloads[1].p);
    assert_memory_equal(out.payloads[2].p, "{}", 2);
    assert_memory_equal(out.vectors, v, sizeof v);
    log_batch_free(&out);
    for (size_t len = 0; len < b.len; len++) {
        ndl_error e;
        assert_int_equal(log_decode_upsert(b.p, len, LOG_UPSERT_P, 2, &out, &e), NDL_CORRUPT);
    }
    /* non-zero padding is damage */
    size_t head = b.len - sizeof v;
    if (head % 4 == 0 && b.p[head - 1] == 0) {
        b.p[head - 1] = 1;
        ndl_error e;
        assert_int_equal(log_decode_upsert(b.p, b.len, LOG_UPSERT_P, 2, &out, &e), NDL_CORRUPT);
    }
    log_buf_free(&b);

    /* a payload record */
    assert_int_equal(log_encode_payload(&b, ids[1], texts[0], NULL), NDL_OK);
    ndl_id id;
    log_text t;
    assert_int_equal(log_decode_payload(b.p, b.len, &id, &t, NULL), NDL_OK);
    assert_memory_equal(id.str, "p", 1);
    assert_int_equal(t.len, 7);
    for (size_t len = 0; len < b.len; len++)
        assert_int_equal(log_decode_payload(b.p, len, &id, &t, NULL), NDL_CORRUPT);
    log_buf_free(&b);
    assert_int_equal(log_encode_payload(&b, ids[0], (log_text){NULL, 0}, NULL), NDL_OK);
    assert_int_equal(log_decode_payload(b.p, b.len, &id, &t, NULL), NDL_OK);
    assert_null(t.p);
    log_buf_free(&b);
}

/* Records written before payloads existed (LOG_UPSERT: no payloads, no
 * padding) still replay. */
static void test_legacy_upsert_decodes(void **state)
{
    (void)state;
    uint8_t rec[4 + 4 + 12 + 8];
    uint32_t n = 1, dim = 2, tag = 0xffffffffu;
    uint64_t num = 42;
    float v[2] = {0.5f, -1.0f};
    memcpy(rec, &n, 4);
    memcpy(rec + 4, &dim, 4);
    memcpy(rec + 8, &tag, 4);
    memcpy(rec + 12, &num, 8);
    memcpy(rec + 20, v, 8);
    log_batch out;
    assert_int_equal(log_decode_upsert(rec, sizeof rec, LOG_UPSERT, 2, &out, NULL), NDL_OK);
    assert_null(out.payloads);
    assert_int_equal(out.ids[0].num, 42);
    assert_true(out.vectors[1] == -1.0f);
    log_batch_free(&out);
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
        cmocka_unit_test(test_payloads_round_trip_and_truncation),
        cmocka_unit_test(test_legacy_upsert_decodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
