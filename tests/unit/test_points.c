/*
 * test_points.c -- payloads on points through the public API: stored with
 * the point, canonical, returned by get and search, replaced by upsert,
 * merged or replaced by set_payload, limited in size, durable through the
 * log (replay) and through checkpoints, verified by check; bad input is
 * refused whole and changes nothing; out of memory leaves no trace.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "needle.h"
#include "util/alloc.h"

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle-test-points-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd);
}

static ndl_db *open_db(uint32_t max_payload, int checkpoint_never)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    if (max_payload)
        o.max_payload_bytes = max_payload;
    if (checkpoint_never) {
        o.checkpoint_interval_ms = 0;
        o.checkpoint_wal_bytes = 0;
    }
    ndl_db *db = NULL;
    ndl_error e;
    if (ndl_db_open(tmpdir, &o, &db, &e) != NDL_OK)
        fail_msg("open: %s", e.msg);
    return db;
}

static ndl_collection *make_coll(ndl_db *db, const char *name, ndl_index_type index)
{
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = 4;
    cfg.index = index;
    ndl_collection *c = NULL;
    ndl_error e;
    if (ndl_collection_create(db, name, &cfg, &c, &e) != NDL_OK)
        fail_msg("create: %s", e.msg);
    return c;
}

static ndl_collection *open_coll(ndl_db *db, const char *name)
{
    ndl_collection *c = NULL;
    ndl_error e;
    if (ndl_collection_open(db, name, &c, &e) != NDL_OK)
        fail_msg("open %s: %s", name, e.msg);
    return c;
}

/* The payload of id as stored ("" for none). */
static void expect_payload(ndl_collection *c, ndl_id id, const char *want)
{
    char *got = NULL;
    ndl_error e;
    float v[4];
    if (ndl_collection_get_point(c, id, v, &got, &e) != NDL_OK)
        fail_msg("get_point: %s", e.msg);
    if (!want)
        assert_null(got);
    else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
    ndl_free(got);
}

static void test_upsert_get_and_canonical_form(void **state)
{
    (void)state;
    ndl_db *db = open_db(0, 0);
    ndl_collection *c = make_coll(db, "p1", NDL_INDEX_HNSW);
    ndl_id ids[3] = {ndl_id_u64(1), ndl_id_str("doc-2"), ndl_id_u64(3)};
    float v[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
    const char *payloads[3] = {"{ \"city\" : \"Paris\", \"n\": 1e2, \"t\":[true,null] }", NULL,
                               "{\"s\":\"caf\\u00e9 \\/\"}"};
    ndl_error e;
    assert_int_equal(ndl_collection_upsert_points(c, 3, ids, v, payloads, NULL, &e), NDL_OK);
    expect_payload(c, ids[0], "{\"city\":\"Paris\",\"n\":100.0,\"t\":[true,null]}");
    expect_payload(c, ids[1], NULL);
    expect_payload(c, ids[2], "{\"s\":\"caf\xc3\xa9 /\"}");
    /* vector and payload skip independently */
    char *p = NULL;
    assert_int_equal(ndl_collection_get_point(c, ids[0], NULL, &p, &e), NDL_OK);
    assert_non_null(p);
    ndl_free(p);
    /* absent id */
    p = (char *)1;
    assert_int_equal(ndl_collection_get_point(c, ndl_id_u64(99), NULL, &p, &e), NDL_NOT_FOUND);
    assert_null(p);
    assert_non_null(strstr(e.msg, "99"));
    /* upsert without payloads replaces the payload with none */
    assert_int_equal(ndl_collection_upsert(c, 1, ids, v, NULL, &e), NDL_OK);
    expect_payload(c, ids[0], NULL);
    /* within one batch the last of a repeated id wins, payload included */
    ndl_id twice[2] = {ndl_id_u64(7), ndl_id_u64(7)};
    const char *pl[2] = {"{\"v\":1}", "{\"v\":2}"};
    assert_int_equal(ndl_collection_upsert_points(c, 2, twice, v, pl, NULL, &e), NDL_OK);
    expect_payload(c, twice[0], "{\"v\":2}");
    /* nesting deeper than 64 */
    char deep[200];
    memset(deep, '[', 100);
    memcpy(deep, "{\"a\":", 5);
    deep[100] = 0;
    const char *deep1 = deep;
    assert_int_equal(ndl_collection_upsert_points(c, 1, twice, v, &deep1, NULL, &e), NDL_INVALID);
    if (!strstr(e.msg, "deeper"))
        fail_msg("%s", e.msg);
    expect_payload(c, twice[0], "{\"v\":2}");
    ndl_db_close(db, NULL);
}

static void test_search_returns_payloads(void **state)
{
    (void)state;
    ndl_db *db = open_db(0, 0);
    for (int index = 0; index <= 1; index++) {
        ndl_collection *c = make_coll(db, index ? "s_hnsw" : "s_flat",
                                      index ? NDL_INDEX_HNSW : NDL_INDEX_FLAT);
        enum { N = 50 };
        ndl_id ids[N];
        float v[N * 4];
        char texts[N][32];
        const char *payloads[N];
        for (int i = 0; i < N; i++) {
            ids[i] = ndl_id_u64((uint64_t)i);
            for (int j = 0; j < 4; j++)
                v[i * 4 + j] = (float)(i * (j + 1) % 17);
            snprintf(texts[i], sizeof texts[i], "{\"i\":%d}", i);
            payloads[i] = i % 5 ? texts[i] : NULL;
        }
        ndl_error e;
        assert_int_equal(ndl_collection_upsert_points(c, N, ids, v, payloads, NULL, &e), NDL_OK);
        ndl_search_params p;
        ndl_search_params_init(&p);
        p.k = 10;
        ndl_results *r = NULL;
        /* without with_payload: none */
        assert_int_equal(ndl_collection_search(c, v + 4 * 7, &p, &r, &e), NDL_OK);
        assert_null(ndl_results_payload(r, 0, 0));
        ndl_results_free(r);
        p.with_payload = 1;
        assert_int_equal(ndl_collection_search_batch(c, 2, v + 4 * 7, &p, &r, &e), NDL_OK);
        for (size_t q = 0; q < 2; q++) {
            const ndl_hit *h = ndl_results_hits(r, q);
            assert_int_equal(ndl_results_count(r, q), 10);
            for (size_t i = 0; i < 10; i++) {
                const char *got = ndl_results_payload(r, q, i);
                if (h[i].id.num % 5 == 0) {
                    assert_null(got);
                } else {
                    assert_non_null(got);
                    assert_string_equal(got, texts[h[i].id.num]);
                }
            }
        }
        assert_null(ndl_results_payload(r, 0, 10)); /* out of range */
        assert_null(ndl_results_payload(r, 2, 0));
        ndl_results_free(r);
        ndl_collection_close(c, NULL);
    }
    ndl_db_close(db, NULL);
}

static void test_set_payload_merge_and_replace(void **state)
{
    (void)state;
    ndl_db *db = open_db(0, 0);
    ndl_collection *c = make_coll(db, "m1", NDL_INDEX_HNSW);
    ndl_id id = ndl_id_str("a");
    float v[4] = {1, 2, 3, 4};
    const char *pl = "{\"x\":1,\"y\":{\"z\":2}}";
    ndl_error e;
    assert_int_equal(ndl_collection_upsert_points(c, 1, &id, v, &pl, NULL, &e), NDL_OK);
    assert_int_equal(ndl_collection_set_payload(c, id, "{\"y\":3,\"w\":null}", NDL_PAYLOAD_MERGE, &e),
                     NDL_OK);
    expect_payload(c, id, "{\"x\":1,\"y\":3,\"w\":null}");
    assert_int_equal(ndl_collection_set_payload(c, id, "{\"only\":true}", NDL_PAYLOAD_REPLACE, &e),
                     NDL_OK);
    expect_payload(c, id, "{\"only\":true}");
    assert_int_equal(ndl_collection_set_payload(c, id, NULL, NDL_PAYLOAD_REPLACE, &e), NDL_OK);
    expect_payload(c, id, NULL);
    /* a merge into no payload starts from {} */
    assert_int_equal(ndl_collection_set_payload(c, id, "{\"k\":\"v\"}", NDL_PAYLOAD_MERGE, &e), NDL_OK);
    expect_payload(c, id, "{\"k\":\"v\"}");
    /* the vector is untouched */
    float got[4];
    assert_int_equal(ndl_collection_get(c, id, got, &e), NDL_OK);
    assert_memory_equal(got, v, sizeof v);
    /* errors: absent id, bad json, merge without json, bad mode, bad id */
    assert_int_equal(ndl_collection_set_payload(c, ndl_id_str("nope"), "{}", NDL_PAYLOAD_MERGE, &e),
                     NDL_NOT_FOUND);
    assert_non_null(strstr(e.msg, "nope"));
    assert_int_equal(ndl_collection_set_payload(c, id, "{\"k\":", NDL_PAYLOAD_MERGE, &e), NDL_INVALID);
    assert_int_equal(ndl_collection_set_payload(c, id, "[1]", NDL_PAYLOAD_REPLACE, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "object"));
    assert_int_equal(ndl_collection_set_payload(c, id, NULL, NDL_PAYLOAD_MERGE, &e), NDL_INVALID);
    assert_int_equal(ndl_collection_set_payload(c, id, "{}", (ndl_payload_mode)7, &e), NDL_INVALID);
    assert_int_equal(ndl_collection_set_payload(c, ndl_id_str(""), "{}", NDL_PAYLOAD_MERGE, &e),
                     NDL_INVALID);
    expect_payload(c, id, "{\"k\":\"v\"}");
    ndl_db_close(db, NULL);
}

static void test_limit_and_bad_payloads_write_nothing(void **state)
{
    (void)state;
    ndl_error e;
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.max_payload_bytes = 1;
    ndl_db *bad = NULL;
    assert_int_equal(ndl_db_open(tmpdir, &o, &bad, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "max_payload_bytes"));
    o.max_payload_bytes = NDL_PAYLOAD_BYTES_MAX + 1;
    assert_int_equal(ndl_db_open(tmpdir, &o, &bad, &e), NDL_INVALID);

    ndl_db *db = open_db(32, 0);
    ndl_collection *c = make_coll(db, "lim", NDL_INDEX_FLAT);
    ndl_id ids[2] = {ndl_id_u64(1), ndl_id_u64(2)};
    float v[8] = {0};
    const char *ok[2] = {"{\"a\":1}", "{\"b\":2}"};
    assert_int_equal(ndl_collection_upsert_points(c, 2, ids, v, ok, NULL, &e), NDL_OK);
    const char *cases[][2] = {
        {"{\"a\":2}", "{\"long\":\"0123456789012345678901234567890\"}"}, /* too large */
        {"{\"a\":2}", "{\"a\":1,\"a\":2}"},                             /* duplicate key */
        {"{\"a\":2}", "[1,2]"},                                         /* not an object */
        {"{\"a\":2}", "{\"a\":NaN}"},                                   /* not JSON */
        {"{\"a\":2}", "{\"a\":\"\xff\"}"},                              /* bad UTF-8 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(ndl_collection_upsert_points(c, 2, ids, v, cases[i], NULL, &e),
                         NDL_INVALID);
        assert_non_null(strstr(e.msg, "point 1"));
        expect_payload(c, ids[0], "{\"a\":1}"); /* the good first point was not written */
        expect_payload(c, ids[1], "{\"b\":2}");
    }
    assert_int_equal(ndl_collection_upsert_points(c, 2, ids, v, cases[0], NULL, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "limit is 32"));
    /* a merge that grows past the limit is refused and changes nothing */
    assert_int_equal(ndl_collection_set_payload(c, ids[0], "{\"more\":\"0123456789012345\"}",
                                                NDL_PAYLOAD_MERGE, &e),
                     NDL_INVALID);
    assert_non_null(strstr(e.msg, "limit"));
    expect_payload(c, ids[0], "{\"a\":1}");
    assert_int_equal(ndl_collection_count(c), 2);
    ndl_db_close(db, NULL);
}

/* Payloads come back identical from log replay (no checkpoint) and from a
 * checkpoint (PAYL file), including merges, deletes and replacements. */
static void test_payloads_survive_reopen(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        const char *name = round ? "dur_ckpt" : "dur_log";
        ndl_db *db = open_db(0, 1);
        ndl_collection *c = make_coll(db, name, NDL_INDEX_HNSW);
        enum { N = 300 };
        ndl_id ids[N];
        float v[N * 4];
        char texts[N][40];
        const char *payloads[N];
        for (int i = 0; i < N; i++) {
            ids[i] = ndl_id_u64((uint64_t)i);
            for (int j = 0; j < 4; j++)
                v[i * 4 + j] = (float)((i * 31 + j * 7) % 23);
            snprintf(texts[i], sizeof texts[i], "{\"i\":%d,\"tag\":\"t%d\"}", i, i % 3);
            payloads[i] = i % 4 ? texts[i] : NULL;
        }
        ndl_error e;
        assert_int_equal(ndl_collection_upsert_points(c, N, ids, v, payloads, NULL, &e), NDL_OK);
        ndl_id gone[2] = {ids[5], ids[6]};
        assert_int_equal(ndl_collection_delete(c, 2, gone, NULL, &e), NDL_OK);
        assert_int_equal(ndl_collection_set_payload(c, ids[7], "{\"tag\":\"new\"}", NDL_PAYLOAD_MERGE,
                                                    &e),
                         NDL_OK);
        const char *again = "{\"again\":1}";
        assert_int_equal(ndl_collection_upsert_points(c, 1, &ids[9], v, &again, NULL, &e), NDL_OK);
        if (round)
            assert_int_equal(ndl_collection_flush(c, &e), NDL_OK);
        ndl_db_close(db, NULL);

        db = open_db(0, 1);
        c = open_coll(db, name);
        assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
        assert_int_equal(ndl_collection_count(c), N - 2);
        for (int i = 0; i < N; i++) {
            if (i == 5 || i == 6)
                continue;
            if (i == 7)
                expect_payload(c, ids[i], "{\"i\":7,\"tag\":\"new\"}");
            else if (i == 9)
                expect_payload(c, ids[i], again);
            else
                expect_payload(c, ids[i], payloads[i]);
        }
        /* a change after reopen of a payload that came from the mapped file */
        assert_int_equal(ndl_collection_set_payload(c, ids[1], "{\"x\":0}", NDL_PAYLOAD_MERGE, &e),
                         NDL_OK);
        expect_payload(c, ids[1], "{\"i\":1,\"tag\":\"t1\",\"x\":0}");
        ndl_collection_info info;
        assert_int_equal(ndl_collection_info_get(c, &info, &e), NDL_OK);
        assert_true(info.memory_bytes > 0);
        ndl_db_close(db, NULL);
    }
}

static void test_out_of_memory_leaves_no_trace(void **state)
{
    (void)state;
    ndl_db *db = open_db(0, 1);
    ndl_collection *c = make_coll(db, "oom", NDL_INDEX_HNSW);
    ndl_id ids[3] = {ndl_id_u64(1), ndl_id_u64(2), ndl_id_u64(3)};
    float v[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const char *pl[3] = {"{\"a\":1}", "{\"b\":[1,2,3]}", "{\"c\":\"x\"}"};
    ndl_error e;
    /* fail the k-th allocation for growing k: each attempt either succeeds
     * whole or fails with NDL_NOMEM; after any failure the collection may
     * turn read-only (a write that failed to apply) -- then reopen */
    int succeeded = 0;
    for (int k = 0; k < 400 && !succeeded; k++) {
        ndl_alloc_fail_after(k);
        ndl_status rc = ndl_collection_upsert_points(c, 3, ids, v, pl, NULL, &e);
        ndl_alloc_fail_after(-1);
        if (rc == NDL_OK) {
            succeeded = 1;
            break;
        }
        assert_true(rc == NDL_NOMEM || rc == NDL_READ_ONLY);
        if (ndl_collection_count(c) != 0)
            fail_msg("a failed upsert left %llu points", (unsigned long long)ndl_collection_count(c));
        if (rc == NDL_READ_ONLY || (ndl_collection_upsert(c, 0, NULL, NULL, NULL, &e) != NDL_OK)) {
            ndl_db_close(db, NULL);
            db = open_db(0, 1);
            c = open_coll(db, "oom");
            assert_int_equal(ndl_collection_count(c), 0);
        }
    }
    assert_true(succeeded);
    for (int i = 0; i < 3; i++)
        expect_payload(c, ids[i], pl[i]);
    ndl_db_close(db, NULL);
    db = open_db(0, 1);
    c = open_coll(db, "oom");
    for (int i = 0; i < 3; i++)
        expect_payload(c, ids[i], pl[i]);
    assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
    ndl_db_close(db, NULL);
}

/* Scroll: every live id exactly once, in id order (u64 ascending, then
 * strings bytewise, a prefix first), page by page, across deletes,
 * replacements and a compaction between pages; bad limits and cursors. */
static int id_before(ndl_id a, ndl_id b)
{
    if (!a.str != !b.str)
        return !a.str;
    if (!a.str)
        return a.num < b.num;
    size_t n = a.len < b.len ? a.len : b.len;
    int c = memcmp(a.str, b.str, n);
    return c ? c < 0 : a.len < b.len;
}

static int same_id(ndl_id a, ndl_id b) { return !id_before(a, b) && !id_before(b, a); }

static void test_scroll_in_id_order(void **state)
{
    (void)state;
    ndl_db *db = open_db(0, 1);
    ndl_collection *c = make_coll(db, "scroll", NDL_INDEX_HNSW);
    enum { N = 300 };
    static char names[N][16];
    ndl_id ids[N];
    float vecs[N * 4];
    int live[N];
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0) { /* strings, some prefixes of others: "s1" < "s10" */
            snprintf(names[i], sizeof names[i], "s%d", i);
            ids[i] = ndl_id_str(names[i]);
        } else {
            ids[i] = ndl_id_u64((uint64_t)(N - i) * 7 + (uint64_t)(i % 2) * 100000);
        }
        for (int j = 0; j < 4; j++)
            vecs[i * 4 + j] = (float)(i + j);
        live[i] = 1;
    }
    ndl_error e;
    assert_int_equal(ndl_collection_upsert(c, N, ids, vecs, NULL, &e), NDL_OK);
    ndl_id dels[N];
    size_t nd = 0;
    for (int i = 0; i < N; i += 5) {
        dels[nd++] = ids[i];
        live[i] = 0;
    }
    assert_int_equal(ndl_collection_delete(c, nd, dels, NULL, &e), NDL_OK);
    assert_int_equal(ndl_collection_upsert(c, 10, ids + 1, vecs, NULL, &e), NDL_OK); /* replaced */
    for (int i = 1; i <= 10; i++)
        live[i] = 1; /* ... or back */

    int seen[N] = {0};
    size_t total = 0, pages = 0;
    ndl_id last = {0};
    char last_str[16];
    int have_last = 0;
    for (;;) {
        ndl_id *page;
        size_t n;
        assert_int_equal(ndl_collection_scroll(c, have_last ? &last : NULL, 7, &page, &n, &e),
                         NDL_OK);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                assert_true(id_before(page[i - 1], page[i]));
            if (have_last)
                assert_true(id_before(last, page[i]));
            int k = -1;
            for (int j = 0; j < N && k < 0; j++)
                if (same_id(ids[j], page[i]))
                    k = j;
            assert_true(k >= 0 && live[k]);
            assert_int_equal(seen[k]++, 0);
        }
        total += n;
        pages++;
        if (n > 0) {
            last = page[n - 1];
            if (last.str) {
                snprintf(last_str, sizeof last_str, "%.*s", (int)last.len, last.str);
                last.str = last_str;
            }
            have_last = 1;
        }
        ndl_free(page);
        if (n < 7)
            break;
        if (pages == 5) /* slots renumbered between pages: the cursor holds */
            assert_int_equal(ndl_collection_compact(c, &e), NDL_OK);
    }
    assert_int_equal(total, ndl_collection_count(c));
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], live[i]);

    /* bad input */
    ndl_id *page;
    size_t n;
    assert_int_equal(ndl_collection_scroll(c, NULL, 0, &page, &n, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "limit 0"));
    assert_null(page);
    assert_int_equal(ndl_collection_scroll(c, NULL, NDL_SCROLL_MAX + 1, &page, &n, &e),
                     NDL_INVALID);
    ndl_id empty = {.str = "", .len = 0};
    assert_int_equal(ndl_collection_scroll(c, &empty, 5, &page, &n, &e), NDL_INVALID);
    /* past the end: an empty page */
    ndl_id end = ndl_id_str("zzzz");
    assert_int_equal(ndl_collection_scroll(c, &end, 5, &page, &n, &e), NDL_OK);
    assert_int_equal(n, 0);
    ndl_free(page);
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
}

/* Scroll beside a writer replacing points: every pass sees every live id
 * exactly once (a replaced point moves to a new slot; a scan of the slots
 * could miss it in both). */
typedef struct churn {
    ndl_collection *c;
    atomic_int stop;
    int bad;
} churn;

static void *replace_loop(void *arg)
{
    churn *ch = arg;
    ndl_id ids[20];
    float v[20 * 4];
    for (int i = 0; i < 20; i++)
        ids[i] = ndl_id_u64((uint64_t)i);
    for (uint32_t round = 0; !atomic_load(&ch->stop); round++) {
        for (int j = 0; j < 20 * 4; j++)
            v[j] = (float)(round + (uint32_t)j);
        if (ndl_collection_upsert(ch->c, 20, ids, v, NULL, NULL) != NDL_OK)
            ch->bad = 1;
    }
    return NULL;
}

static void test_scroll_beside_replacements(void **state)
{
    (void)state;
    ndl_db *db = open_db(0, 1);
    ndl_collection *c = make_coll(db, "scroll-churn", NDL_INDEX_FLAT);
    enum { N = 500 };
    ndl_id ids[N];
    float v[N * 4];
    for (int i = 0; i < N; i++) {
        ids[i] = ndl_id_u64((uint64_t)i);
        for (int j = 0; j < 4; j++)
            v[i * 4 + j] = (float)(i * j);
    }
    ndl_error e;
    assert_int_equal(ndl_collection_upsert(c, N, ids, v, NULL, &e), NDL_OK);
    churn ch = {.c = c};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, replace_loop, &ch), 0);
    for (int pass = 0; pass < 20; pass++) {
        int seen[N] = {0};
        ndl_id last = {0};
        int have_last = 0;
        for (;;) {
            ndl_id *page;
            size_t n;
            assert_int_equal(
                ndl_collection_scroll(c, have_last ? &last : NULL, 10, &page, &n, &e), NDL_OK);
            for (size_t i = 0; i < n; i++) {
                assert_null(page[i].str);
                assert_true(page[i].num < N);
                seen[page[i].num]++;
            }
            if (n)
                last = page[n - 1];
            have_last = n > 0;
            ndl_free(page);
            if (n < 10)
                break;
        }
        for (int i = 0; i < N; i++)
            if (seen[i] != 1)
                fail_msg("pass %d: id %d seen %d times", pass, i, seen[i]);
    }
    atomic_store(&ch.stop, 1);
    pthread_join(t, NULL);
    assert_int_equal(ch.bad, 0);
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsert_get_and_canonical_form),
        cmocka_unit_test(test_search_returns_payloads),
        cmocka_unit_test(test_set_payload_merge_and_replace),
        cmocka_unit_test(test_limit_and_bad_payloads_write_nothing),
        cmocka_unit_test(test_payloads_survive_reopen),
        cmocka_unit_test(test_out_of_memory_leaves_no_trace),
        cmocka_unit_test(test_scroll_in_id_order),
        cmocka_unit_test(test_scroll_beside_replacements),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
