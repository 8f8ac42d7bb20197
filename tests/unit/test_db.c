/*
 * test_db.c -- the public API end to end inside one process: databases,
 * collections, upsert/get/delete, search plans and recall, persistence,
 * every metric, bad input, concurrency and out-of-memory paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "needle.h"
#include "util/alloc.h"

/* ---------------------------------------------------------------- helpers */

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle-test-db-XXXXXX");
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

static char *data_path(const char *sub)
{
    static char p[400];
    snprintf(p, sizeof p, "%s/%s", tmpdir, sub);
    return p;
}

static uint64_t rng_state = 42;
static float frand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / (float)0x1000000 - 0.5f;
}

/* clustered data: n points of dim d around `clusters` centres */
static float *make_data(size_t n, uint32_t d, int clusters)
{
    float *centres = malloc((size_t)clusters * d * sizeof(float));
    float *v = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < (size_t)clusters * d; i++)
        centres[i] = frand() * 10;
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % (size_t)clusters);
        for (uint32_t j = 0; j < d; j++)
            v[i * d + j] = centres[(size_t)c * d + j] + frand();
    }
    free(centres);
    return v;
}

static ndl_db *open_db(const char *sub)
{
    ndl_db *db = NULL;
    ndl_error e;
    ndl_status rc = ndl_db_open(data_path(sub), NULL, &db, &e);
    if (rc != NDL_OK)
        fail_msg("open: %s", e.msg);
    return db;
}

static ndl_collection *make_coll(ndl_db *db, const char *name, uint32_t dim, ndl_metric m,
                                 ndl_index_type t)
{
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = dim;
    cfg.metric = m;
    cfg.index = t;
    ndl_collection *c = NULL;
    ndl_error e;
    if (ndl_collection_create(db, name, &cfg, &c, &e) != NDL_OK)
        fail_msg("create: %s", e.msg);
    return c;
}

static void upsert_seq(ndl_collection *c, const float *v, size_t n, uint64_t first_id,
                       uint32_t threads)
{
    ndl_id *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = ndl_id_u64(first_id + i);
    ndl_write_options o;
    ndl_write_options_init(&o);
    o.threads = threads;
    ndl_error e;
    if (ndl_collection_upsert(c, n, ids, v, &o, &e) != NDL_OK)
        fail_msg("upsert: %s", e.msg);
    free(ids);
}

static float l2sq(const float *a, const float *b, uint32_t d)
{
    float s = 0;
    for (uint32_t j = 0; j < d; j++)
        s += (a[j] - b[j]) * (a[j] - b[j]);
    return s;
}

/* brute-force top-k ids (l2) among ids [0,n) whose bit in `skip` is clear */
static void brute_topk(const float *base, size_t n, uint32_t d, const float *q, uint32_t k,
                       const uint8_t *skip, uint64_t *out)
{
    float *best = malloc(k * sizeof *best);
    for (uint32_t i = 0; i < k; i++) {
        best[i] = INFINITY;
        out[i] = UINT64_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i])
            continue;
        float dd = l2sq(base + i * d, q, d);
        if (dd >= best[k - 1])
            continue;
        uint32_t p = k - 1;
        while (p > 0 && best[p - 1] > dd) {
            best[p] = best[p - 1];
            out[p] = out[p - 1];
            p--;
        }
        best[p] = dd;
        out[p] = i;
    }
    free(best);
}

static double recall_at_k(ndl_collection *c, const float *base, size_t n, uint32_t d,
                          const float *queries, size_t nq, uint32_t k, const uint8_t *skip,
                          const char *expect_plan)
{
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = k;
    p.ef = 128; /* hnswlib reaches ~0.95 at ef=64 on such data; leave margin */
    size_t hits = 0;
    uint64_t *truth = malloc(k * sizeof *truth);
    for (size_t qi = 0; qi < nq; qi++) {
        ndl_results *r = NULL;
        ndl_error e;
        assert_int_equal(ndl_collection_search(c, queries + qi * d, &p, &r, &e), NDL_OK);
        assert_string_equal(ndl_results_plan(r), expect_plan);
        if (strcmp(expect_plan, "hnsw") == 0) /* the graph ran, not a scan */
            assert_true(ndl_results_visited(r) < n);
        brute_topk(base, n, d, queries + qi * d, k, skip, truth);
        const ndl_hit *h = ndl_results_hits(r, 0);
        for (size_t i = 0; i < ndl_results_count(r, 0); i++)
            for (uint32_t j = 0; j < k; j++)
                if (h[i].id.num == truth[j])
                    hits++;
        ndl_results_free(r);
    }
    free(truth);
    return (double)hits / (double)(nq * k);
}

/* ---------------------------------------------------------------- database */

static void test_db_open_creates_and_reopens(void **state)
{
    (void)state;
    ndl_db *db = open_db("a");
    struct stat st;
    assert_int_equal(stat(data_path("a/NEEDLE_DB"), &st), 0);
    assert_int_equal(ndl_db_close(db, NULL), NDL_OK);
    db = open_db("a");
    assert_non_null(db);
    ndl_db_close(db, NULL);
    assert_int_equal(ndl_db_close(NULL, NULL), NDL_OK);
}

static void test_db_open_rejects_foreign_directory(void **state)
{
    (void)state;
    mkdir(data_path("foreign"), 0755);
    FILE *f = fopen(data_path("foreign/photo.jpg"), "w");
    fputs("x", f);
    fclose(f);
    ndl_db *db = (ndl_db *)1;
    ndl_error e;
    assert_int_equal(ndl_db_open(data_path("foreign"), NULL, &db, &e), NDL_INVALID);
    assert_null(db);
    assert_non_null(strstr(e.msg, "not a needle database"));
}

static void test_db_open_rejects_unknown_options_version(void **state)
{
    (void)state;
    ndl_db_options o;
    ndl_db_options_init(&o);
    assert_int_equal(o.version, 1);
    ndl_db *db = (ndl_db *)1;
    ndl_error e;
    for (uint32_t v = 0; v < 3; v += 2) { /* 0: never initialised; 2: a newer header */
        o.version = v;
        assert_int_equal(ndl_db_open(data_path("opts"), &o, &db, &e), NDL_INVALID);
        assert_null(db);
        assert_non_null(strstr(e.msg, "ndl_db_options_init"));
    }
    struct stat st;
    assert_int_equal(stat(data_path("opts"), &st), -1); /* nothing created */
}

static void test_db_open_missing_without_create(void **state)
{
    (void)state;
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.create_if_missing = 0;
    ndl_db *db;
    ndl_error e;
    assert_int_equal(ndl_db_open(data_path("nope"), &o, &db, &e), NDL_NOT_FOUND);
    /* an existing empty directory is not a database either, and stays empty */
    assert_int_equal(mkdir(data_path("empty"), 0755), 0);
    assert_int_equal(ndl_db_open(data_path("empty"), &o, &db, &e), NDL_NOT_FOUND);
    struct stat st;
    assert_int_not_equal(stat(data_path("empty/NEEDLE_DB"), &st), 0);
}

static void test_db_second_open_is_busy(void **state)
{
    (void)state;
    ndl_db *db = open_db("busy");
    ndl_db *db2;
    ndl_error e;
    assert_int_equal(ndl_db_open(data_path("busy"), NULL, &db2, &e), NDL_BUSY);
    assert_non_null(strstr(e.msg, "in use"));
    ndl_db_close(db, NULL);
}

static void test_db_status_names(void **state)
{
    (void)state;
    assert_string_equal(ndl_status_name(NDL_INVALID), "invalid_argument");
    assert_string_equal(ndl_status_name(NDL_NOT_FOUND), "not_found");
    assert_string_equal(ndl_status_str(NDL_CORRUPT), "data is corrupt");
    assert_string_equal(ndl_status_name((ndl_status)999), "unknown");
    ndl_metric m;
    assert_int_equal(ndl_metric_parse("cosine", &m, NULL), NDL_OK);
    assert_int_equal(m, NDL_METRIC_COSINE);
    ndl_error e;
    assert_int_equal(ndl_metric_parse("manhattan", &m, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "manhattan"));
    ndl_index_type t;
    assert_int_equal(ndl_index_parse("annoy", &t, &e), NDL_INVALID);
    assert_int_equal(ndl_index_parse("hnsw", &t, &e), NDL_OK);
    assert_string_equal(ndl_metric_name(NDL_METRIC_HAMMING), "hamming");
}

/* ---------------------------------------------------------------- collections */

static void test_db_collection_lifecycle(void **state)
{
    (void)state;
    ndl_db *db = open_db("life");
    ndl_collection *c = make_coll(db, "docs", 8, NDL_METRIC_L2, NDL_INDEX_HNSW);
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = 8;
    ndl_error e;
    assert_int_equal(ndl_collection_create(db, "docs", &cfg, NULL, &e), NDL_EXISTS);
    assert_int_equal(ndl_collection_drop(db, "docs", &e), NDL_BUSY);
    make_coll(db, "alpha", 4, NDL_METRIC_COSINE, NDL_INDEX_FLAT);
    char **names;
    size_t n;
    assert_int_equal(ndl_collection_list(db, &names, &n, &e), NDL_OK);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "alpha");
    assert_string_equal(names[1], "docs");
    ndl_free(names);
    ndl_collection_close(c, NULL);
    assert_int_equal(ndl_collection_drop(db, "docs", &e), NDL_OK);
    assert_int_equal(ndl_collection_open(db, "docs", &c, &e), NDL_NOT_FOUND);
    assert_null(c);
    assert_int_equal(ndl_collection_drop(db, "docs", &e), NDL_NOT_FOUND);
    ndl_db_close(db, NULL);
}

static void test_db_collection_bad_config(void **state)
{
    (void)state;
    ndl_db *db = open_db("badcfg");
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    ndl_error e;
    cfg.dimension = 0;
    assert_int_equal(ndl_collection_create(db, "x", &cfg, NULL, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "dimension"));
    cfg.dimension = 65537;
    assert_int_equal(ndl_collection_create(db, "x", &cfg, NULL, &e), NDL_INVALID);
    cfg.dimension = 4;
    cfg.hnsw_m = 1;
    assert_int_equal(ndl_collection_create(db, "x", &cfg, NULL, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "m 1"));
    cfg.hnsw_m = 16;
    static const char *const bad[] = {"", "a b", "../etc", "x/y", "é",
        "a1234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(ndl_collection_create(db, bad[i], &cfg, NULL, &e), NDL_INVALID);
        assert_non_null(strstr(e.msg, "bad collection name"));
    }
    char **names;
    size_t n;
    ndl_collection_list(db, &names, &n, NULL);
    assert_int_equal(n, 0); /* nothing half-created */
    ndl_free(names);
    ndl_db_close(db, NULL);
}

/* ---------------------------------------------------------------- writes */

static void test_db_upsert_get_delete_ids(void **state)
{
    (void)state;
    ndl_db *db = open_db("ids");
    ndl_collection *c = make_coll(db, "c", 3, NDL_METRIC_L2, NDL_INDEX_HNSW);
    float v[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    ndl_id ids[3] = {ndl_id_u64(7), ndl_id_str("seven"), ndl_id_u64(1ull << 63)};
    ndl_error e;
    assert_int_equal(ndl_collection_upsert(c, 3, ids, v, NULL, &e), NDL_OK);
    assert_int_equal(ndl_collection_count(c), 3);
    float out[3];
    assert_int_equal(ndl_collection_get(c, ndl_id_str("seven"), out, &e), NDL_OK);
    assert_true(out[0] == 4 && out[2] == 6);
    assert_int_equal(ndl_collection_get(c, ndl_id_u64(1ull << 63), out, &e), NDL_OK);
    assert_true(out[0] == 7);
    /* u64 7 and string "7" are different ids */
    assert_int_equal(ndl_collection_get(c, ndl_id_str("7"), out, &e), NDL_NOT_FOUND);
    assert_non_null(strstr(e.msg, "\"7\""));
    /* replace */
    float v2[3] = {-1, -1, -1};
    assert_int_equal(ndl_collection_upsert(c, 1, ids, v2, NULL, &e), NDL_OK);
    assert_int_equal(ndl_collection_count(c), 3);
    assert_int_equal(ndl_collection_get(c, ids[0], out, &e), NDL_OK);
    assert_true(out[0] == -1);
    /* search never returns the replaced vector */
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = 10;
    ndl_results *r;
    assert_int_equal(ndl_collection_search(c, v, &p, &r, &e), NDL_OK);
    assert_int_equal(ndl_results_count(r, 0), 3);
    int seen7 = 0;
    for (size_t i = 0; i < 3; i++) {
        const ndl_hit *h = &ndl_results_hits(r, 0)[i];
        if (!h->id.str && h->id.num == 7)
            seen7++;
        if (h->id.str)
            assert_memory_equal(h->id.str, "seven", 5);
    }
    assert_int_equal(seen7, 1);
    ndl_results_free(r);
    size_t del;
    ndl_id gone[2] = {ndl_id_str("seven"), ndl_id_u64(12345)};
    assert_int_equal(ndl_collection_delete(c, 2, gone, &del, &e), NDL_OK);
    assert_int_equal(del, 1);
    assert_int_equal(ndl_collection_count(c), 2);
    assert_int_equal(ndl_collection_get(c, ndl_id_str("seven"), out, &e), NDL_NOT_FOUND);
    ndl_db_close(db, NULL);
}

static void test_db_upsert_duplicate_in_batch_keeps_last(void **state)
{
    (void)state;
    ndl_db *db = open_db("dup");
    ndl_collection *c = make_coll(db, "c", 2, NDL_METRIC_L2, NDL_INDEX_FLAT);
    float v[6] = {1, 1, 2, 2, 3, 3};
    ndl_id ids[3] = {ndl_id_u64(1), ndl_id_u64(2), ndl_id_u64(1)};
    assert_int_equal(ndl_collection_upsert(c, 3, ids, v, NULL, NULL), NDL_OK);
    assert_int_equal(ndl_collection_count(c), 2);
    float out[2];
    ndl_collection_get(c, ndl_id_u64(1), out, NULL);
    assert_true(out[0] == 3);
    ndl_db_close(db, NULL);
}

static void test_db_upsert_rejects_bad_input_and_writes_nothing(void **state)
{
    (void)state;
    ndl_db *db = open_db("bad");
    ndl_collection *c = make_coll(db, "c", 2, NDL_METRIC_L2, NDL_INDEX_HNSW);
    float v[4] = {1, 2, 3, NAN};
    ndl_id ids[2] = {ndl_id_u64(1), ndl_id_u64(2)};
    ndl_error e;
    assert_int_equal(ndl_collection_upsert(c, 2, ids, v, NULL, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "vector 1"));
    assert_non_null(strstr(e.msg, "NaN"));
    v[3] = INFINITY;
    assert_int_equal(ndl_collection_upsert(c, 2, ids, v, NULL, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "Inf"));
    v[3] = 4;
    char longid[300];
    memset(longid, 'x', sizeof longid - 1);
    longid[299] = 0;
    ids[1] = ndl_id_str(longid);
    assert_int_equal(ndl_collection_upsert(c, 2, ids, v, NULL, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "256"));
    ids[1] = ndl_id_str("\xff\xfe");
    assert_int_equal(ndl_collection_upsert(c, 2, ids, v, NULL, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "UTF-8"));
    ids[1] = ndl_id_str("");
    assert_int_equal(ndl_collection_upsert(c, 2, ids, v, NULL, &e), NDL_INVALID);
    assert_int_equal(ndl_collection_count(c), 0);
    ndl_db_close(db, NULL);
}

static void test_db_upsert_out_of_memory_is_clean(void **state)
{
    (void)state;
    ndl_db *db = open_db("oom");
    ndl_collection *c = make_coll(db, "c", 4, NDL_METRIC_L2, NDL_INDEX_HNSW);
    float *v = make_data(200, 4, 5);
    upsert_seq(c, v, 100, 0, 1);
    ndl_id ids[100];
    for (int i = 0; i < 100; i++)
        ids[i] = ndl_id_u64(1000 + (uint64_t)i);
    /* fail at increasing depths: every failure is an error, never a crash,
     * and the count only ever moves by whole batches */
    for (long n = 0; n < 40; n += 3) {
        uint64_t before = ndl_collection_count(c);
        ndl_alloc_fail_after(n);
        ndl_error e;
        ndl_status rc = ndl_collection_upsert(c, 100, ids, v + 400, NULL, &e);
        ndl_alloc_fail_after(-1);
        uint64_t after = ndl_collection_count(c);
        if (rc == NDL_OK)
            assert_true(after == before || after == before + 100);
        else
            assert_int_equal(after, before);
    }
    free(v);
    ndl_db_close(db, NULL);
}

/* ---------------------------------------------------------------- search */

static void test_db_search_params_validated(void **state)
{
    (void)state;
    ndl_db *db = open_db("params");
    ndl_collection *c = make_coll(db, "c", 2, NDL_METRIC_L2, NDL_INDEX_HNSW);
    float q[2] = {0, 0};
    ndl_search_params p;
    ndl_search_params_init(&p);
    ndl_results *r = (ndl_results *)1;
    ndl_error e;
    p.k = 0;
    assert_int_equal(ndl_collection_search(c, q, &p, &r, &e), NDL_INVALID);
    assert_null(r);
    assert_non_null(strstr(e.msg, "k must be between 1 and 10000"));
    p.k = 10001;
    assert_int_equal(ndl_collection_search(c, q, &p, &r, &e), NDL_INVALID);
    p.k = 10;
    p.ef = 5;
    assert_int_equal(ndl_collection_search(c, q, &p, &r, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "ef (5) must be at least k (10)"));
    p.ef = 0;
    q[1] = NAN;
    assert_int_equal(ndl_collection_search(c, q, &p, &r, &e), NDL_INVALID);
    q[1] = 0;
    assert_int_equal(ndl_collection_search(c, q, &p, &r, &e), NDL_OK);
    assert_int_equal(ndl_results_count(r, 0), 0); /* empty collection */
    ndl_results_free(r);
    ndl_db_close(db, NULL);
}

static void test_db_search_recall_hnsw_and_flat(void **state)
{
    (void)state;
    const size_t n = 4000, nq = 50;
    const uint32_t d = 16;
    float *base = make_data(n, d, 40);
    float *queries = make_data(nq, d, 40);
    ndl_db *db = open_db("recall");
    ndl_collection *h = make_coll(db, "h", d, NDL_METRIC_L2, NDL_INDEX_HNSW);
    ndl_collection *f = make_coll(db, "f", d, NDL_METRIC_L2, NDL_INDEX_FLAT);
    upsert_seq(h, base, n, 0, 2);
    upsert_seq(f, base, n, 0, 1);
    assert_true(recall_at_k(h, base, n, d, queries, nq, 10, NULL, "hnsw") >= 0.95);
    assert_true(recall_at_k(f, base, n, d, queries, nq, 10, NULL, "exact") >= 0.999);
    /* exact:true on an HNSW collection runs the exact plan */
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.exact = 1;
    ndl_results *r;
    assert_int_equal(ndl_collection_search(h, queries, &p, &r, NULL), NDL_OK);
    assert_string_equal(ndl_results_plan(r), "exact");
    ndl_results_free(r);
    free(base);
    free(queries);
    ndl_db_close(db, NULL);
}

static void test_db_search_batch_exact_matches_single(void **state)
{
    (void)state;
    const size_t n = 3000, nq = 20;
    const uint32_t d = 12;
    float *base = make_data(n, d, 30);
    float *queries = make_data(nq, d, 30);
    static const ndl_metric metrics[] = {NDL_METRIC_L2, NDL_METRIC_COSINE, NDL_METRIC_IP,
                                         NDL_METRIC_L1};
    ndl_db *db = open_db("batch");
    for (size_t mi = 0; mi < 4; mi++) {
        char name[16];
        snprintf(name, sizeof name, "m%zu", mi);
        ndl_collection *c = make_coll(db, name, d, metrics[mi], NDL_INDEX_FLAT);
        upsert_seq(c, base, n, 0, 1);
        ndl_search_params p;
        ndl_search_params_init(&p);
        p.k = 5;
        p.threads = 2;
        ndl_results *rb;
        assert_int_equal(ndl_collection_search_batch(c, nq, queries, &p, &rb, NULL), NDL_OK);
        assert_int_equal(ndl_results_queries(rb), nq);
        for (size_t qi = 0; qi < nq; qi++) {
            ndl_results *r1;
            assert_int_equal(ndl_collection_search(c, queries + qi * d, &p, &r1, NULL), NDL_OK);
            assert_int_equal(ndl_results_count(r1, 0), ndl_results_count(rb, qi));
            for (size_t i = 0; i < ndl_results_count(r1, 0); i++) {
                float a = ndl_results_hits(r1, 0)[i].distance;
                float b = ndl_results_hits(rb, qi)[i].distance;
                assert_true(fabsf(a - b) <= 1e-3f * (1 + fabsf(a)));
            }
            ndl_results_free(r1);
        }
        ndl_results_free(rb);
    }
    free(base);
    free(queries);
    ndl_db_close(db, NULL);
}

static int allow_mod(void *ctx, uint32_t slot)
{
    return slot % *(uint32_t *)ctx == 0;
}

static void test_db_search_filter_returns_min_k_matches(void **state)
{
    (void)state;
    const size_t n = 3000;
    const uint32_t d = 8;
    float *base = make_data(n, d, 20);
    ndl_db *db = open_db("filter");
    ndl_collection *c = make_coll(db, "c", d, NDL_METRIC_L2, NDL_INDEX_HNSW);
    upsert_seq(c, base, n, 0, 1);
    static const uint32_t mods[] = {2, 10, 100, 1000};
    for (size_t i = 0; i < 4; i++) {
        uint32_t mod = mods[i];
        ndl_search_params p;
        ndl_search_params_init(&p);
        p.k = 10;
        p.filter = allow_mod;
        p.filter_ctx = &mod;
        ndl_results *r;
        assert_int_equal(ndl_collection_search(c, base, &p, &r, NULL), NDL_OK);
        size_t matches = (n + mod - 1) / mod;
        assert_int_equal(ndl_results_count(r, 0), matches < 10 ? matches : 10);
        for (size_t j = 0; j < ndl_results_count(r, 0); j++)
            assert_int_equal(ndl_results_hits(r, 0)[j].slot % mod, 0);
        ndl_results_free(r);
    }
    free(base);
    ndl_db_close(db, NULL);
}

static void test_db_search_after_delete_and_upsert_keeps_recall(void **state)
{
    (void)state;
    const size_t n = 4000, nq = 40;
    const uint32_t d = 16;
    float *base = make_data(n, d, 40);
    float *queries = make_data(nq, d, 40);
    ndl_db *db = open_db("churn");
    ndl_collection *c = make_coll(db, "c", d, NDL_METRIC_L2, NDL_INDEX_HNSW);
    upsert_seq(c, base, n, 0, 2);
    uint8_t *skip = calloc(n, 1);
    ndl_id *ids = malloc(n * sizeof *ids);
    size_t nd = 0;
    for (size_t i = 0; i < n; i++)
        if (i % 10 < 3) {
            ids[nd++] = ndl_id_u64(i);
            skip[i] = 1;
        }
    size_t del;
    assert_int_equal(ndl_collection_delete(c, nd, ids, &del, NULL), NDL_OK);
    assert_int_equal(del, nd);
    assert_true(recall_at_k(c, base, n, d, queries, nq, 10, skip, "hnsw") >= 0.95);
    /* upsert a third of the survivors with new vectors */
    float *fresh = make_data(n, d, 40);
    size_t nu = 0;
    for (size_t i = 0; i < n; i++)
        if (!skip[i] && i % 3 == 0) {
            memcpy(base + i * d, fresh + i * d, d * sizeof(float));
            ids[nu] = ndl_id_u64(i);
            memcpy(fresh + nu * d, base + i * d, d * sizeof(float));
            nu++;
        }
    assert_int_equal(ndl_collection_upsert(c, nu, ids, fresh, NULL, NULL), NDL_OK);
    assert_int_equal(ndl_collection_count(c), n - nd);
    assert_true(recall_at_k(c, base, n, d, queries, nq, 10, skip, "hnsw") >= 0.95);
    free(fresh);
    free(ids);
    free(skip);
    free(base);
    free(queries);
    ndl_db_close(db, NULL);
}

static void test_db_metrics_report_spec_distances(void **state)
{
    (void)state;
    ndl_db *db = open_db("metrics");
    ndl_error e;
    float v[4] = {1, 0, 0, 0, };
    float q[4] = {0, 2, 0, 0};
    ndl_id id = ndl_id_u64(1);
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = 1;
    struct { ndl_metric m; float dist, score; } cases[] = {
        {NDL_METRIC_L2, sqrtf(5), 1 / (1 + sqrtf(5))},
        {NDL_METRIC_COSINE, 1, 0},
        {NDL_METRIC_IP, 0, 0},
        {NDL_METRIC_L1, 3, 0.25f},
    };
    for (size_t i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "m%zu", i);
        ndl_collection *c = make_coll(db, name, 4, cases[i].m, NDL_INDEX_FLAT);
        assert_int_equal(ndl_collection_upsert(c, 1, &id, v, NULL, &e), NDL_OK);
        ndl_results *r;
        assert_int_equal(ndl_collection_search(c, q, &p, &r, &e), NDL_OK);
        const ndl_hit *h = ndl_results_hits(r, 0);
        assert_true(fabsf(h->distance - cases[i].dist) < 1e-5f);
        assert_true(fabsf(h->score - cases[i].score) < 1e-5f);
        ndl_results_free(r);
    }
    /* cosine with a zero vector: distance 1, score 0 */
    ndl_collection *cz = make_coll(db, "zero", 4, NDL_METRIC_COSINE, NDL_INDEX_HNSW);
    float z[4] = {0, 0, 0, 0};
    assert_int_equal(ndl_collection_upsert(cz, 1, &id, z, NULL, &e), NDL_OK);
    ndl_results *r;
    assert_int_equal(ndl_collection_search(cz, q, &p, &r, &e), NDL_OK);
    assert_true(fabsf(ndl_results_hits(r, 0)->distance - 1) < 1e-6f);
    ndl_results_free(r);
    /* hamming: 0/1 floats, distance = differing bits */
    ndl_collection *ch = make_coll(db, "ham", 12, NDL_METRIC_HAMMING, NDL_INDEX_HNSW);
    float hb[12] = {1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1};
    float hq[12] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1};
    assert_int_equal(ndl_collection_upsert(ch, 1, &id, hb, NULL, &e), NDL_OK);
    assert_int_equal(ndl_collection_search(ch, hq, &p, &r, &e), NDL_OK);
    assert_true(ndl_results_hits(r, 0)->distance == 2.0f);
    ndl_results_free(r);
    float back[12];
    assert_int_equal(ndl_collection_get(ch, id, back, &e), NDL_OK);
    assert_memory_equal(back, hb, sizeof hb);
    hb[3] = 0.5f;
    assert_int_equal(ndl_collection_upsert(ch, 1, &id, hb, NULL, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "0 or 1"));
    ndl_db_close(db, NULL);
}

/* ---------------------------------------------------------------- persistence */

static void test_db_persists_and_reopens_without_rebuild(void **state)
{
    (void)state;
    const size_t n = 3000, nq = 30;
    const uint32_t d = 16;
    float *base = make_data(n, d, 30);
    float *queries = make_data(nq, d, 30);
    ndl_db *db = open_db("persist");
    ndl_collection *c = make_coll(db, "c", d, NDL_METRIC_L2, NDL_INDEX_HNSW);
    upsert_seq(c, base, n, 0, 2);
    ndl_id s = ndl_id_str("named");
    assert_int_equal(ndl_collection_upsert(c, 1, &s, base, NULL, NULL), NDL_OK);
    ndl_id gone = ndl_id_u64(5);
    ndl_collection_delete(c, 1, &gone, NULL, NULL);
    ndl_search_params p;
    ndl_search_params_init(&p);
    ndl_results *before;
    assert_int_equal(ndl_collection_search_batch(c, nq, queries, &p, &before, NULL), NDL_OK);
    ndl_collection_info info;
    ndl_collection_info_get(c, &info, NULL);
    assert_int_equal(info.count, n);
    assert_int_equal(info.deleted, 1);
    assert_int_equal(ndl_db_close(db, NULL), NDL_OK);

    db = open_db("persist");
    ndl_error e;
    assert_int_equal(ndl_collection_open(db, "c", &c, &e), NDL_OK);
    assert_int_equal(ndl_collection_count(c), n);
    float out[16];
    assert_int_equal(ndl_collection_get(c, s, out, NULL), NDL_OK);
    assert_int_equal(ndl_collection_get(c, gone, out, NULL), NDL_NOT_FOUND);
    ndl_results *after;
    assert_int_equal(ndl_collection_search_batch(c, nq, queries, &p, &after, NULL), NDL_OK);
    assert_string_equal(ndl_results_plan(after), "hnsw");
    for (size_t qi = 0; qi < nq; qi++) {
        assert_int_equal(ndl_results_count(before, qi), ndl_results_count(after, qi));
        for (size_t i = 0; i < ndl_results_count(after, qi); i++)
            assert_int_equal(ndl_results_hits(before, qi)[i].slot,
                             ndl_results_hits(after, qi)[i].slot);
    }
    ndl_collection_info_get(c, &info, NULL);
    assert_true(info.disk_bytes > n * d * sizeof(float));
    assert_true(info.memory_bytes > 0);
    ndl_results_free(before);
    ndl_results_free(after);
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
    free(base);
    free(queries);
}

static void test_db_corrupt_manifest_is_detected(void **state)
{
    (void)state;
    ndl_db *db = open_db("corrupt");
    ndl_collection *c = make_coll(db, "bad", 4, NDL_METRIC_L2, NDL_INDEX_HNSW);
    make_coll(db, "good", 4, NDL_METRIC_L2, NDL_INDEX_HNSW);
    float v[4] = {1, 2, 3, 4};
    ndl_id id = ndl_id_u64(1);
    ndl_collection_upsert(c, 1, &id, v, NULL, NULL);
    ndl_db_close(db, NULL);
    FILE *f = fopen(data_path("corrupt/bad/MANIFEST"), "r+b");
    assert_non_null(f);
    fseek(f, 70, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    db = open_db("corrupt");
    ndl_error e;
    assert_int_equal(ndl_collection_open(db, "bad", &c, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, "MANIFEST"));
    assert_int_equal(ndl_collection_open(db, "good", &c, &e), NDL_OK);
    ndl_db_close(db, NULL);
}

/* ---------------------------------------------------------------- concurrency */

typedef struct reader_arg {
    ndl_collection *c;
    const float *queries;
    uint32_t d;
    _Atomic int *stop;
    int errors;
} reader_arg;

static void *reader(void *arg)
{
    reader_arg *a = arg;
    ndl_search_params p;
    ndl_search_params_init(&p);
    for (int i = 0; !*a->stop; i++) {
        ndl_results *r;
        if (ndl_collection_search(a->c, a->queries + (size_t)(i % 10) * a->d, &p, &r, NULL))
            a->errors++;
        for (size_t j = 0; j + 1 < ndl_results_count(r, 0); j++)
            if (ndl_results_hits(r, 0)[j].distance > ndl_results_hits(r, 0)[j + 1].distance)
                a->errors++;
        ndl_results_free(r);
    }
    return NULL;
}

static void test_db_search_during_upsert(void **state)
{
    (void)state;
    const size_t n = 4000;
    const uint32_t d = 8;
    float *base = make_data(n, d, 20);
    ndl_db *db = open_db("conc");
    ndl_collection *c = make_coll(db, "c", d, NDL_METRIC_L2, NDL_INDEX_HNSW);
    _Atomic int stop = 0;
    reader_arg a = {c, base, d, &stop, 0};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, reader, &a);
    for (size_t b = 0; b < n; b += 500)
        upsert_seq(c, base + b * d, 500, b, 2);
    stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(a.errors, 0);
    assert_int_equal(ndl_collection_count(c), n);
    free(base);
    ndl_db_close(db, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_db_open_creates_and_reopens),
        cmocka_unit_test(test_db_open_rejects_foreign_directory),
        cmocka_unit_test(test_db_open_rejects_unknown_options_version),
        cmocka_unit_test(test_db_open_missing_without_create),
        cmocka_unit_test(test_db_second_open_is_busy),
        cmocka_unit_test(test_db_status_names),
        cmocka_unit_test(test_db_collection_lifecycle),
        cmocka_unit_test(test_db_collection_bad_config),
        cmocka_unit_test(test_db_upsert_get_delete_ids),
        cmocka_unit_test(test_db_upsert_duplicate_in_batch_keeps_last),
        cmocka_unit_test(test_db_upsert_rejects_bad_input_and_writes_nothing),
        cmocka_unit_test(test_db_upsert_out_of_memory_is_clean),
        cmocka_unit_test(test_db_search_params_validated),
        cmocka_unit_test(test_db_search_recall_hnsw_and_flat),
        cmocka_unit_test(test_db_search_batch_exact_matches_single),
        cmocka_unit_test(test_db_search_filter_returns_min_k_matches),
        cmocka_unit_test(test_db_search_after_delete_and_upsert_keeps_recall),
        cmocka_unit_test(test_db_metrics_report_spec_distances),
        cmocka_unit_test(test_db_persists_and_reopens_without_rebuild),
        cmocka_unit_test(test_db_corrupt_manifest_is_detected),
        cmocka_unit_test(test_db_search_during_upsert),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
