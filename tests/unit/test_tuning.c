/*
 * test_tuning.c -- the default search ef learned from the queries
 * (src/db/ef_tuning.c), through the public API: a collection whose
 * queries are unlike its points raises its default ef until held-out
 * queries of the same kind reach the recall an untuned default misses;
 * one whose queries are like its points keeps the floor; searches with an
 * explicit ef or exact ones teach nothing; explain and info report the
 * ef; flat collections have none; the learned ef survives reopen; a
 * collection that grows by more than a fifth is tuned again. Also
 * bitmap_from_words (the fast path from bit words to a CRoaring bitmap
 * that broad numeric ranges take) against roaring_bitmap_add_many.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "needle.h"
#include "payload/bitmap_words.h"
#include "storage/sfile.h"
#include "test_rand.h"

#define DIM 24
#define N 6000

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle-test-tuning-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static ndl_db *open_db(void)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.fsync = NDL_FSYNC_NONE;
    ndl_db *db;
    ndl_error e;
    if (ndl_db_open(tmpdir, &o, &db, &e) != NDL_OK)
        fail_msg("open: %s", e.msg);
    return db;
}



/* Room for n vectors of DIM floats. */
static float *vectors(size_t n)
{
    float *v = malloc(n * DIM * sizeof *v);
    assert_non_null(v);
    return v;
}

static float gauss(void)
{
    double u1 = ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(rnd() >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Upserts points[0..n) as ids first, first + 1, ... */
static void add_points(ndl_collection *c, const float *points, uint64_t first, size_t n)
{
    ndl_id *ids = calloc(n, sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < n; i++)
        ids[i].num = first + i;
    ndl_error e;
    if (ndl_collection_upsert(c, n, ids, points, NULL, &e) != NDL_OK)
        fail_msg("upsert: %s", e.msg);
    free(ids);
}

/* N points in 60 tight clusters, in a collection with a sparse graph (m,
 * ef_construction small) so that the walk can miss. */
static ndl_collection *make(ndl_db *db, const char *name, ndl_index_type index, uint32_t m,
                            uint32_t efc, float *points)
{
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = DIM;
    cfg.index = index;
    cfg.hnsw_m = m;
    cfg.hnsw_ef_construction = efc;
    ndl_collection *c;
    ndl_error e;
    if (ndl_collection_create(db, name, &cfg, &c, &e) != NDL_OK)
        fail_msg("create: %s", e.msg);
    float centers[60][DIM];
    for (int i = 0; i < 60; i++)
        for (int j = 0; j < DIM; j++)
            centers[i][j] = 4 * gauss();
    for (uint64_t i = 0; i < N; i++)
        for (int j = 0; j < DIM; j++)
            points[i * DIM + j] = centers[i % 60][j] + 0.3f * gauss();
    add_points(c, points, 0, N);
    return c;
}

/* Queries between the clusters (unlike the points): the mean of two
 * random points plus noise. */
static void far_queries(const float *points, float *q, size_t nq)
{
    for (size_t i = 0; i < nq; i++) {
        const float *a = points + (rnd() % N) * DIM;
        const float *b = points + (rnd() % N) * DIM;
        for (int j = 0; j < DIM; j++)
            q[i * DIM + j] = (a[j] + b[j]) / 2 + 1.5f * gauss();
    }
}

/* Queries like the points: a point plus a little noise. */
static void near_queries(const float *points, float *q, size_t nq)
{
    for (size_t i = 0; i < nq; i++) {
        const float *a = points + (rnd() % N) * DIM;
        for (int j = 0; j < DIM; j++)
            q[i * DIM + j] = a[j] + 0.1f * gauss();
    }
}

static void search_all(ndl_collection *c, const float *q, size_t nq, uint32_t ef, int exact)
{
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.ef = ef;
    p.exact = exact;
    for (size_t i = 0; i < nq; i++) {
        ndl_results *r;
        ndl_error e;
        if (ndl_collection_search(c, q + i * DIM, &p, &r, &e) != NDL_OK)
            fail_msg("search: %s", e.msg);
        ndl_results_free(r);
    }
}

static ndl_collection_info info_of(ndl_collection *c)
{
    ndl_collection_info in;
    ndl_error e;
    assert_int_equal(ndl_collection_info_get(c, &in, &e), NDL_OK);
    return in;
}

/* Waits (up to a minute: sanitizers are slow) for a tuning from at least
 * `queries` sampled queries. */
static ndl_collection_info wait_tuned(ndl_collection *c, uint32_t queries)
{
    for (int i = 0; i < 600; i++) {
        ndl_collection_info in = info_of(c);
        if (in.search_ef_queries >= queries)
            return in;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("no tuning from %u queries within a minute", queries);
    return info_of(c);
}

/* recall@10 of the default search of q against exact search. */
static double recall_default(ndl_collection *c, const float *q, size_t nq, uint32_t ef,
                             uint32_t *ef_used)
{
    ndl_search_params p, x;
    ndl_search_params_init(&p);
    ndl_search_params_init(&x);
    p.ef = ef;
    x.exact = 1;
    size_t hit = 0, den = 0;
    for (size_t i = 0; i < nq; i++) {
        ndl_results *r, *t;
        ndl_error e;
        assert_int_equal(ndl_collection_search(c, q + i * DIM, &p, &r, &e), NDL_OK);
        assert_int_equal(ndl_collection_search(c, q + i * DIM, &x, &t, &e), NDL_OK);
        ndl_explain ex;
        ndl_results_explain(r, &ex);
        *ef_used = ex.ef;
        const ndl_hit *a = ndl_results_hits(r, 0), *b = ndl_results_hits(t, 0);
        for (size_t j = 0; j < ndl_results_count(t, 0); j++) {
            den++;
            for (size_t l = 0; l < ndl_results_count(r, 0); l++)
                hit += a[l].id.num == b[j].id.num;
        }
        ndl_results_free(r);
        ndl_results_free(t);
    }
    return (double)hit / (double)den;
}

static void test_hard_queries_raise_ef(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    float *points = vectors(N), *q = vectors(600);
    ndl_collection *c = make(db, "hard", NDL_INDEX_HNSW, 8, 40, points);
    far_queries(points, q, 600);

    ndl_collection_info in = info_of(c);
    assert_int_equal(in.search_ef, NDL_HNSW_EF_DEFAULT);
    assert_int_equal(in.search_ef_queries, 0);
    assert_true(in.search_ef_recall < 0);
    /* explicit ef and exact searches teach nothing */
    search_all(c, q, 300, 64, 0);
    search_all(c, q, 300, 0, 1);
    uint32_t used = 0;
    double before = recall_default(c, q + 300 * DIM, 300, NDL_HNSW_EF_DEFAULT, &used);
    struct timespec ts = {0, 300000000};
    nanosleep(&ts, NULL);
    assert_int_equal(info_of(c).search_ef_queries, 0);
    assert_true(before < 0.95); /* the set is hard at the untuned default */
    recall_default(c, q, 1, 0, &used); /* one default search, untuned */
    assert_int_equal(used, NDL_HNSW_EF_DEFAULT);

    /* Default searches: tuned from 100 queries, again when the sample has
     * doubled, and again when it has filled (256: 200 cannot double). */
    search_all(c, q, 100, 0, 0); /* with the one above: tuned from 100 or 101 */
    in = wait_tuned(c, 100);
    search_all(c, q + 100 * DIM, 110, 0, 0);
    in = wait_tuned(c, 200); /* due at twice 100 or 101 */
    search_all(c, q + 210 * DIM, 90, 0, 0);
    in = wait_tuned(c, 256);
    assert_true(in.search_ef > NDL_HNSW_EF_DEFAULT);
    assert_true(in.search_ef <= 1024);
    assert_true(in.search_ef == 1024 || in.search_ef_recall >= 0.95f);
    /* held-out queries of the same kind, with the learned default */
    double after = recall_default(c, q + 300 * DIM, 300, 0, &used);
    assert_int_equal(used, in.search_ef);
    print_message("recall@10 of held-out queries: %.4f at ef 64, %.4f at the learned ef %u "
                  "(sample: %.4f)\n", before, after, in.search_ef, in.search_ef_recall);
    assert_true(after >= 0.93);
    assert_true(after > before + 0.02);
    /* an explicit ef still rules */
    recall_default(c, q, 1, 32, &used);
    assert_int_equal(used, 32);
    /* k above the learned ef raises it, as it raises 64 */
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = 2000;
    ndl_results *r;
    ndl_error e;
    assert_int_equal(ndl_collection_search(c, q, &p, &r, &e), NDL_OK);
    ndl_explain ex;
    ndl_results_explain(r, &ex);
    assert_int_equal(ex.ef, 2000);
    assert_int_equal(ndl_results_count(r, 0), 2000);
    ndl_results_free(r);

    assert_int_equal(ndl_collection_close(c, NULL), NDL_OK);
    assert_int_equal(ndl_db_close(db, NULL), NDL_OK);
    free(points);
    free(q);
}

static void test_easy_queries_keep_floor(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    float *points = vectors(N), *q = vectors(300);
    ndl_collection *c = make(db, "easy", NDL_INDEX_HNSW, 16, 200, points);
    near_queries(points, q, 300);
    search_all(c, q, 150, 0, 0);
    ndl_collection_info in = wait_tuned(c, 100);
    assert_int_equal(in.search_ef, NDL_HNSW_EF_DEFAULT);
    assert_true(in.search_ef_recall >= 0.95f);
    uint32_t used;
    assert_true(recall_default(c, q + 150 * DIM, 150, 0, &used) >= 0.95);
    assert_int_equal(used, NDL_HNSW_EF_DEFAULT);

    /* a flat collection has no search ef; its searches are exact */
    ndl_collection *f = make(db, "flat", NDL_INDEX_FLAT, 16, 200, points);
    search_all(f, q, 150, 0, 0);
    in = info_of(f);
    assert_int_equal(in.search_ef, 0);
    assert_int_equal(in.search_ef_queries, 0);
    assert_int_equal(ndl_collection_close(f, NULL), NDL_OK);
    assert_int_equal(ndl_collection_close(c, NULL), NDL_OK);
    assert_int_equal(ndl_db_close(db, NULL), NDL_OK);
    free(points);
    free(q);
}

/* A read-only database learns too (in memory: nothing is written). */
static void test_read_only_learns(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    float *points = vectors(N), *q = vectors(120);
    ndl_collection *c = make(db, "ro", NDL_INDEX_HNSW, 16, 100, points);
    assert_int_equal(ndl_collection_close(c, NULL), NDL_OK);
    assert_int_equal(ndl_db_close(db, NULL), NDL_OK);

    ndl_db_options o;
    ndl_db_options_init(&o);
    o.read_only = 1;
    ndl_error e;
    assert_int_equal(ndl_db_open(tmpdir, &o, &db, &e), NDL_OK);
    assert_int_equal(ndl_collection_open(db, "ro", &c, &e), NDL_OK);
    near_queries(points, q, 120);
    search_all(c, q, 120, 0, 0);
    ndl_collection_info in = wait_tuned(c, 100);
    assert_true(in.search_ef >= NDL_HNSW_EF_DEFAULT);
    assert_int_equal(ndl_collection_close(c, NULL), NDL_OK);
    assert_int_equal(ndl_db_close(db, NULL), NDL_OK);
    char path[300]; /* a read-only database learns but writes nothing */
    snprintf(path, sizeof path, "%s/ro/tuning", tmpdir);
    FILE *f = fopen(path, "rb");
    assert_null(f);
    free(points);
    free(q);
}

static ndl_collection *reopen(ndl_db **db, int read_only, const char *name)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.fsync = NDL_FSYNC_NONE;
    o.read_only = read_only;
    ndl_collection *c = NULL;
    ndl_error e;
    if (ndl_db_open(tmpdir, &o, db, &e) != NDL_OK || ndl_collection_open(*db, name, &c, &e) != NDL_OK)
        fail_msg("reopen: %s", e.msg);
    return c;
}

static void close_all(ndl_db *db, ndl_collection *c)
{
    assert_int_equal(ndl_collection_close(c, NULL), NDL_OK);
    assert_int_equal(ndl_db_close(db, NULL), NDL_OK);
}

static void assert_same_tuning(const ndl_collection_info *a, const ndl_collection_info *b)
{
    assert_int_equal(a->search_ef, b->search_ef);
    assert_int_equal(a->search_ef_queries, b->search_ef_queries);
    assert_true(fabsf(a->search_ef_recall - b->search_ef_recall) < 1e-5f);
}

/* The learned ef survives close and reopen (DATA/<name>/tuning), read-only
 * opens included; a damaged tuning file, or one whose values are out of
 * range, only means learning again. */
static void test_learned_ef_survives_reopen(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    float *points = vectors(N), *q = vectors(300);
    ndl_collection *c = make(db, "keep", NDL_INDEX_HNSW, 8, 40, points);
    far_queries(points, q, 300);
    search_all(c, q, 120, 0, 0);
    ndl_collection_info was = wait_tuned(c, 100);
    assert_true(was.search_ef > NDL_HNSW_EF_DEFAULT);
    close_all(db, c);
    char path[300];
    snprintf(path, sizeof path, "%s/keep/tuning", tmpdir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fclose(f);

    /* reopened, before any query: the learned default, and searches use it */
    c = reopen(&db, 0, "keep");
    ndl_collection_info in = info_of(c);
    assert_same_tuning(&in, &was);
    uint32_t used = 0;
    recall_default(c, q + 200 * DIM, 1, 0, &used);
    assert_int_equal(used, was.search_ef);
    close_all(db, c);
    c = reopen(&db, 1, "keep");
    in = info_of(c);
    assert_same_tuning(&in, &was);
    close_all(db, c);

    /* one flipped data byte: opens untuned, learns again, saves again */
    assert_non_null(f = fopen(path, "r+b"));
    assert_int_equal(fseek(f, 64, SEEK_SET), 0);
    int ch = fgetc(f);
    assert_int_equal(fseek(f, 64, SEEK_SET), 0);
    fputc(ch ^ 0x40, f);
    fclose(f);
    c = reopen(&db, 0, "keep");
    in = info_of(c);
    assert_int_equal(in.search_ef, NDL_HNSW_EF_DEFAULT);
    assert_int_equal(in.search_ef_queries, 0);
    search_all(c, q + 120 * DIM, 120, 0, 0);
    was = wait_tuned(c, 100);
    assert_true(was.search_ef > NDL_HNSW_EF_DEFAULT);
    close_all(db, c);
    c = reopen(&db, 0, "keep");
    in = info_of(c);
    assert_same_tuning(&in, &was);
    close_all(db, c);

    /* checksums right, values not: ef above the ceiling, then a recall
     * above 1, then no queries -- each opens untuned */
    static const uint32_t bad[][3] = {{5000, 950000, 256}, {256, 1000001, 256}, {256, 950000, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sfile_writer *w;
        assert_int_equal(sfile_create(path, SFILE_KIND('T', 'U', 'N', 'E'), 1, &w, NULL), NDL_OK);
        for (int k = 0; k < 3; k++)
            assert_int_equal(sfile_put_u32(w, bad[i][k], NULL), NDL_OK);
        assert_int_equal(sfile_put_u64(w, N, NULL), NDL_OK);
        assert_int_equal(sfile_commit(w, NULL), NDL_OK);
        c = reopen(&db, 1, "keep"); /* read-only: the file stays as written */
        in = info_of(c);
        assert_int_equal(in.search_ef, NDL_HNSW_EF_DEFAULT);
        assert_int_equal(in.search_ef_queries, 0);
        close_all(db, c);
    }
    free(points);
    free(q);
}

/* The live count the saved tuning of collection `name` was made at (the
 * file ef_tuning.c writes: u32 ef, recall, queries, then u64 live), or 0
 * when there is none. */
static uint64_t tuned_live(const char *name)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s/tuning", tmpdir, name);
    sfile_map m;
    if (sfile_map_open(path, SFILE_KIND('T', 'U', 'N', 'E'), 1, 1, &m, NULL) != NDL_OK)
        return 0;
    sfile_cursor cur;
    sfile_cursor_init(&cur, &m);
    for (int i = 0; i < 3; i++)
        sfile_get_u32(&cur);
    uint64_t live = sfile_get_u64(&cur);
    sfile_map_close(&m);
    return live;
}

/* A collection that grows by more than a fifth is tuned again at its next
 * default search (the sample is full, so only the growth can ask); growth
 * below a fifth is not a reason. */
static void test_retunes_when_live_count_moves(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    float *points = vectors(N), *q = vectors(300);
    ndl_collection *c = make(db, "grow", NDL_INDEX_HNSW, 8, 40, points);
    far_queries(points, q, 300);
    search_all(c, q, 300, 0, 0); /* fills the sample */
    wait_tuned(c, 100);
    search_all(c, q, 1, 0, 0); /* asks for the full sample's tuning, unless it ran */
    wait_tuned(c, 256);
    for (int i = 0; i < 600 && tuned_live("grow") != N; i++)
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    assert_int_equal(tuned_live("grow"), N);

    add_points(c, points, N, N / 10); /* +10%: no tuning */
    search_all(c, q, 20, 0, 0);
    nanosleep(&(struct timespec){0, 500000000}, NULL);
    assert_int_equal(tuned_live("grow"), N);

    add_points(c, points + (size_t)(N / 10) * DIM, N + N / 10, N / 5); /* +30% in all */
    uint64_t live = N + N / 10 + N / 5;
    search_all(c, q, 1, 0, 0);
    for (int i = 0; i < 600 && tuned_live("grow") != live; i++)
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    assert_int_equal(tuned_live("grow"), live);
    assert_int_equal(info_of(c).search_ef_queries, 256);
    assert_int_equal(ndl_collection_close(c, NULL), NDL_OK);
    assert_int_equal(ndl_db_close(db, NULL), NDL_OK);
    free(points);
    free(q);
}

/* bitmap_from_words against add_many, on patterns that take each kind of
 * container: empty chunks, sparse (array) and dense (bitset) ones, the
 * 4,096 / 4,097 boundary, and a last chunk cut short. */
static void check_words(const uint64_t *words, size_t nwords)
{
    roaring_bitmap_t *want = roaring_bitmap_create();
    for (size_t w = 0; w < nwords; w++)
        for (int b = 0; b < 64; b++)
            if (words[w] >> b & 1)
                roaring_bitmap_add(want, (uint32_t)(w * 64 + (size_t)b));
    roaring_bitmap_t *got = bitmap_from_words(words, nwords);
    assert_non_null(got);
    assert_true(roaring_bitmap_equals(got, want));
    assert_int_equal(roaring_bitmap_get_cardinality(got), roaring_bitmap_get_cardinality(want));
    roaring_bitmap_free(got);
    roaring_bitmap_free(want);
}

static void test_bitmap_from_words(void **state)
{
    (void)state;
    size_t nwords = 1024 * 3 + 17; /* three full chunks and a short one */
    uint64_t *w = calloc(nwords, sizeof *w);
    assert_non_null(w);
    check_words(w, nwords);         /* empty */
    check_words(w, 0);
    w[0] = 1;
    check_words(w, 1);              /* slot 0 alone */
    w[nwords - 1] = 1ull << 63;     /* the last slot */
    check_words(w, nwords);
    memset(w, 0, nwords * sizeof *w);
    for (size_t i = 0; i < 64; i++) /* chunk 1: exactly 4,096 slots (an array) */
        w[1024 + i] = ~0ull;
    for (size_t i = 0; i < 64; i++) /* chunk 2: 4,097 (a bitset) */
        w[2048 + i * 16] = ~0ull;
    w[2048 + 1] |= 1;
    check_words(w, nwords);
    for (int round = 0; round < 20; round++) { /* random densities per chunk */
        uint64_t keep = rnd();
        for (size_t i = 0; i < nwords; i++) {
            uint64_t bits = rnd();
            int chunk_kind = (int)((keep >> ((i / 1024) * 2)) & 3);
            w[i] = chunk_kind == 0 ? 0 : chunk_kind == 1 ? bits & rnd() &
                                                           rnd() & rnd() &
                                                           rnd() & rnd()
                                       : chunk_kind == 2 ? bits : ~0ull;
        }
        check_words(w, nwords - (size_t)(round % 5));
    }
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hard_queries_raise_ef, setup, teardown),
        cmocka_unit_test_setup_teardown(test_easy_queries_keep_floor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_learns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_learned_ef_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retunes_when_live_count_moves, setup, teardown),
        cmocka_unit_test(test_bitmap_from_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
