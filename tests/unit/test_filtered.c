/*
 * test_filtered.c -- filtered search, count, scroll and delete through the
 * public API, with and without payload indexes: exactly min(k, matching)
 * results at tiny selectivities on both plans (the walk forced in a child
 * process through NEEDLE_FILTER_WALK_PER_EF), indexed and unindexed fields
 * answering alike, the planner's choice and explain, type checks on
 * indexed fields, indexes surviving reopen and compaction, and concurrent
 * upserts beside filtered searches.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "needle.h"

#define DIM 16
#define N 3000

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle-test-filtered-XXXXXX");
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
    o.create_if_missing = 1;
    o.fsync = NDL_FSYNC_NONE;
    ndl_db *db;
    ndl_error e;
    if (ndl_db_open(tmpdir, &o, &db, &e) != NDL_OK)
        fail_msg("open: %s", e.msg);
    return db;
}

static float vec_of(uint64_t id, int j) { return (float)sin((double)id * 0.731 + j * 1.37); }

/* Point i's tag: "one" for 1 point, "three" for 3, "dozen" for 12, then
 * "half" or "rest". */
static const char *tag_of(uint64_t i)
{
    if (i == 1234)
        return "one";
    if (i % 1000 == 17)
        return "three";
    if (i % 250 == 3)
        return "dozen";
    return i % 2 ? "half" : "rest";
}

/* t (indexed keyword), u (the same, not indexed), n (indexed int: i) */
static ndl_collection *make(ndl_db *db, const char *name, bool indexed)
{
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = DIM;
    cfg.hnsw_m = 8;
    cfg.hnsw_ef_construction = 64;
    ndl_collection *c;
    ndl_error e;
    assert_int_equal(ndl_collection_create(db, name, &cfg, &c, &e), NDL_OK);
    if (indexed) {
        assert_int_equal(ndl_collection_add_field(c, "t", NDL_FIELD_KEYWORD, &e), NDL_OK);
        assert_int_equal(ndl_collection_add_field(c, "n", NDL_FIELD_INT, &e), NDL_OK);
    }
    static ndl_id ids[N];
    static float v[N * DIM];
    static char text[N][64];
    static const char *payloads[N];
    for (uint64_t i = 0; i < N; i++) {
        ids[i] = ndl_id_u64(i);
        for (int j = 0; j < DIM; j++)
            v[i * DIM + (uint64_t)j] = vec_of(i, j);
        snprintf(text[i], sizeof text[i], "{\"t\":\"%s\",\"u\":\"%s\",\"n\":%llu}", tag_of(i),
                 tag_of(i), (unsigned long long)i);
        payloads[i] = text[i];
    }
    assert_int_equal(ndl_collection_upsert_points(c, N, ids, v, payloads, NULL, &e), NDL_OK);
    return c;
}

static ndl_filter *parse(const char *json)
{
    ndl_filter *f;
    ndl_error e;
    if (ndl_filter_parse(json, strlen(json), &f, &e) != NDL_OK)
        fail_msg("%s: %s", json, e.msg);
    return f;
}

static uint64_t count_of(ndl_collection *c, const char *json)
{
    ndl_filter *f = parse(json);
    uint64_t n;
    assert_int_equal(ndl_collection_count_where(c, f, &n, NULL), NDL_OK);
    ndl_filter_free(f);
    return n;
}

/* Search with filter json: exactly min(k, matching) hits, each matching
 * (checked on the tag through get_point); returns the plan. */
static const char *search_checked(ndl_collection *c, const char *json, const char *tag,
                                  uint32_t k, int exact, ndl_explain *ex)
{
    ndl_filter *f = parse(json);
    uint64_t matching;
    assert_int_equal(ndl_collection_count_where(c, f, &matching, NULL), NDL_OK);
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = k;
    p.exact = exact;
    p.where = f;
    float q[DIM];
    for (int j = 0; j < DIM; j++)
        q[j] = vec_of(77, j);
    ndl_results *r;
    ndl_error e;
    if (ndl_collection_search(c, q, &p, &r, &e) != NDL_OK)
        fail_msg("%s: %s", json, e.msg);
    size_t n = ndl_results_count(r, 0);
    if (n != (matching < k ? matching : k))
        fail_msg("%s, k=%u: %zu results, %llu matching", json, k, n, (unsigned long long)matching);
    for (size_t i = 0; tag && i < n; i++) {
        char *pl;
        assert_int_equal(ndl_collection_get_point(c, ndl_results_hits(r, 0)[i].id, NULL, &pl, NULL),
                         NDL_OK);
        char want[32];
        snprintf(want, sizeof want, "\"t\":\"%s\"", tag);
        if (!strstr(pl, want))
            fail_msg("%s: hit %s does not match", json, pl);
        ndl_free(pl);
    }
    ndl_results_explain(r, ex);
    ndl_results_free(r);
    ndl_filter_free(f);
    return ex->plan;
}

static void exact_counts_on(ndl_collection *c)
{
    const char *tags[] = {"one", "three", "dozen", "half"};
    for (size_t t = 0; t < 4; t++)
        for (int field = 0; field < 2; field++) {
            char json[64];
            snprintf(json, sizeof json, "{\"%s\":\"%s\"}", field ? "u" : "t", tags[t]);
            uint32_t ks[] = {1, 2, 10, 50};
            for (size_t k = 0; k < 4; k++) {
                ndl_explain ex;
                search_checked(c, json, tags[t], ks[k], 0, &ex);
                search_checked(c, json, tags[t], ks[k], 1, &ex);
            }
        }
    ndl_explain ex;
    search_checked(c, "{\"t\":\"none\"}", NULL, 10, 0, &ex); /* 0 matching: [] */
    search_checked(c, "{\"n\":{\"$gte\":2995}}", NULL, 10, 0, &ex);
}

static void test_exact_counts_both_plans(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    ndl_collection *c = make(db, "counts", true);
    /* the child first: the variable is read once per process, at the first
     * filtered search, and a fork copies what the parent read */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the walk, whatever the estimate (read once per process) */
        setenv("NEEDLE_FILTER_WALK_PER_EF", "0", 1);
        exact_counts_on(c);
        ndl_explain ex;
        search_checked(c, "{\"t\":\"three\"}", "three", 10, 0, &ex);
        _exit(strcmp(ex.plan, "hnsw") == 0 ? 0 : 9);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    exact_counts_on(c); /* the planner's choice */
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
}

static void test_indexed_and_unindexed_agree(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    ndl_collection *c = make(db, "agree", true);
    const char *pairs[][2] = {
        {"{\"t\":\"half\"}", "{\"u\":\"half\"}"},
        {"{\"t\":{\"$ne\":\"half\"}}", "{\"u\":{\"$ne\":\"half\"}}"},
        {"{\"t\":{\"$in\":[\"one\",\"dozen\"]}}", "{\"u\":{\"$in\":[\"one\",\"dozen\"]}}"},
        {"{\"t\":{\"$nin\":[\"half\",\"rest\"]}}", "{\"u\":{\"$nin\":[\"half\",\"rest\"]}}"},
        {"{\"$or\":[{\"t\":\"one\"},{\"n\":{\"$lt\":10}}]}", "{\"$or\":[{\"u\":\"one\"},{\"n\":{\"$lt\":10}}]}"},
        {"{\"$and\":[{\"t\":\"half\"},{\"u\":\"half\"},{\"n\":{\"$gt\":100}}]}", "{\"$and\":[{\"u\":\"half\"},{\"n\":{\"$gt\":100}}]}"},
        {"{\"$not\":{\"t\":\"rest\"}}", "{\"$not\":{\"u\":\"rest\"}}"},
        {"{\"t\":{\"$exists\":false}}", "{\"u\":{\"$exists\":false}}"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        uint64_t a = count_of(c, pairs[i][0]), b = count_of(c, pairs[i][1]);
        if (a != b)
            fail_msg("%s counts %llu, %s counts %llu", pairs[i][0], (unsigned long long)a,
                     pairs[i][1], (unsigned long long)b);
        /* and the same pages through scroll */
        ndl_filter *fa = parse(pairs[i][0]), *fb = parse(pairs[i][1]);
        ndl_id *ia, *ib;
        size_t na, nb;
        assert_int_equal(ndl_collection_scroll_where(c, fa, NULL, 10000, &ia, &na, NULL), NDL_OK);
        assert_int_equal(ndl_collection_scroll_where(c, fb, NULL, 10000, &ib, &nb, NULL), NDL_OK);
        assert_int_equal(na, a);
        assert_int_equal(nb, b);
        for (size_t j = 0; j < na; j++)
            assert_int_equal(ia[j].num, ib[j].num);
        ndl_free(ia);
        ndl_free(ib);
        ndl_filter_free(fa);
        ndl_filter_free(fb);
    }
    assert_int_equal(count_of(c, "{\"t\":\"one\"}"), 1);
    assert_int_equal(count_of(c, "{\"t\":\"three\"}"), 3);
    assert_int_equal(count_of(c, "{\"n\":{\"$gte\":100,\"$lt\":200}}"), 100);
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
}

static void test_planner_and_explain(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    ndl_collection *c = make(db, "plan", true);
    ndl_explain ex;
    assert_string_equal(search_checked(c, "{\"t\":\"dozen\"}", "dozen", 10, 0, &ex), "exact");
    assert_int_equal(ex.filtered, 1);
    assert_int_equal(ex.estimated, 12);
    assert_int_equal(ex.matched, 12);
    /* half of 3,000: scanning 1,500 costs less than a walk's ~1,000 visits */
    assert_string_equal(search_checked(c, "{\"t\":\"half\"}", "half", 10, 0, &ex), "exact");
    assert_true(ex.estimated > 1400 && ex.estimated < 1600);
    /* nearly all: the walk */
    assert_string_equal(search_checked(c, "{\"t\":{\"$in\":[\"half\",\"rest\"]}}", NULL, 10, 0, &ex),
                        "hnsw");
    assert_true(ex.estimated > 2900);
    assert_true(ex.visited > 0);
    /* unindexed: a sampled estimate, every point it meets parsed */
    search_checked(c, "{\"u\":\"half\"}", "half", 10, 0, &ex);
    assert_true(ex.estimated > 1000 && ex.estimated < 2000);
    assert_true(ex.checked > 0);
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
}

static void test_types_are_enforced(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    ndl_collection *c = make(db, "types", true);
    ndl_error e;
    float v[DIM] = {0};
    ndl_id id = ndl_id_u64(5);
    const char *bad = "{\"n\":\"five\"}";
    assert_int_equal(ndl_collection_upsert_points(c, 1, &id, v, &bad, NULL, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "'n'"));
    assert_non_null(strstr(e.msg, "int"));
    assert_int_equal(ndl_collection_set_payload(c, id, "{\"t\":7}", NDL_PAYLOAD_MERGE, &e),
                     NDL_INVALID);
    assert_non_null(strstr(e.msg, "'t'"));
    assert_int_equal(count_of(c, "{\"n\":5}"), 1); /* nothing changed */
    /* a field whose stored values do not fit: named, not added */
    assert_int_equal(ndl_collection_add_field(c, "u", NDL_FIELD_INT, &e), NDL_INVALID);
    assert_non_null(strstr(e.msg, "'u'"));
    assert_non_null(strstr(e.msg, "point id"));
    assert_int_equal(ndl_collection_field_count(c), 2);
    assert_int_equal(ndl_collection_add_field(c, "t", NDL_FIELD_KEYWORD, &e), NDL_OK); /* again */
    assert_int_equal(ndl_collection_field_count(c), 2);
    assert_int_equal(ndl_collection_add_field(c, "t", NDL_FIELD_TEXT, &e), NDL_EXISTS);
    assert_int_equal(ndl_collection_add_field(c, "a..b", NDL_FIELD_TEXT, &e), NDL_INVALID);
    assert_int_equal(ndl_collection_add_field(c, "$x", NDL_FIELD_TEXT, &e), NDL_INVALID);
    assert_int_equal(ndl_collection_add_field(c, "u", (ndl_field_type)42, &e), NDL_INVALID);
    assert_int_equal(ndl_field_type_from_name("date"), NDL_FIELD_DATE);
    assert_int_equal(ndl_field_type_from_name("dates"), -1);
    assert_string_equal(ndl_field_type_name(NDL_FIELD_BOOL), "bool");
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
}

static void test_indexes_survive_reopen_and_compaction(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    ndl_collection *c = make(db, "durable", true);
    ndl_error e;
    /* a field added after the data, then changes the log alone holds */
    assert_int_equal(ndl_collection_add_field(c, "u", NDL_FIELD_KEYWORD, &e), NDL_OK);
    assert_int_equal(ndl_collection_set_payload(c, ndl_id_u64(1234), "{\"t\":\"moved\"}",
                                                NDL_PAYLOAD_MERGE, &e),
                     NDL_OK);
    ndl_id gone[100];
    for (int i = 0; i < 100; i++)
        gone[i] = ndl_id_u64((uint64_t)i * 2); /* 100 "rest" points */
    assert_int_equal(ndl_collection_delete(c, 100, gone, NULL, &e), NDL_OK);
    uint64_t half = count_of(c, "{\"t\":\"half\"}"), rest = count_of(c, "{\"t\":\"rest\"}");
    for (int round = 0; round < 3; round++) {
        if (round == 2) /* renumbers slots: the indexes are rebuilt */
            assert_int_equal(ndl_collection_compact(c, &e), NDL_OK);
        assert_int_equal(ndl_collection_field_count(c), 3);
        char name[NDL_FIELD_NAME_MAX + 1];
        ndl_field_type t;
        assert_int_equal(ndl_collection_field_get(c, 2, name, &t, &e), NDL_OK);
        assert_string_equal(name, "u");
        assert_int_equal(t, NDL_FIELD_KEYWORD);
        assert_int_equal(count_of(c, "{\"t\":\"one\"}"), 0);
        assert_int_equal(count_of(c, "{\"t\":\"moved\"}"), 1);
        assert_int_equal(count_of(c, "{\"u\":\"one\"}"), 1);
        assert_int_equal(count_of(c, "{\"t\":\"half\"}"), half);
        assert_int_equal(count_of(c, "{\"t\":\"rest\"}"), rest);
        assert_int_equal(count_of(c, "{\"n\":{\"$lt\":200}}"), 100);
        ndl_explain ex;
        search_checked(c, "{\"t\":\"moved\"}", "moved", 5, 0, &ex);
        /* round 0 closes without a checkpoint of the field (the log has
         * it), round 1 after one (the manifest has it) */
        if (round == 1)
            assert_int_equal(ndl_collection_flush(c, &e), NDL_OK);
        assert_int_equal(ndl_collection_close(c, &e), NDL_OK);
        assert_int_equal(ndl_db_close(db, &e), NDL_OK);
        db = open_db();
        assert_int_equal(ndl_collection_open(db, "durable", &c, &e), NDL_OK);
    }
    /* delete by filter: exactly the matching points */
    ndl_filter *f = parse("{\"t\":\"dozen\"}");
    size_t deleted;
    assert_int_equal(ndl_collection_delete_where(c, f, &deleted, &e), NDL_OK);
    assert_int_equal(deleted, 12);
    assert_int_equal(count_of(c, "{\"t\":\"dozen\"}"), 0);
    assert_int_equal(count_of(c, "{\"u\":\"dozen\"}"), 0);
    assert_int_equal(count_of(c, "{\"t\":\"half\"}"), half);
    ndl_filter_free(f);
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
}

typedef struct race {
    ndl_collection *c;
    _Atomic int stop;
    _Atomic int failures;
} race;

static void *writer(void *arg)
{
    race *r = arg;
    float v[DIM];
    for (uint64_t round = 0; !r->stop && round < 400; round++) {
        ndl_id ids[8];
        const char *pl[8];
        float vs[8 * DIM];
        for (int i = 0; i < 8; i++) {
            uint64_t id = 10000 + (round * 8 + (uint64_t)i) % 300;
            ids[i] = ndl_id_u64(id);
            for (int j = 0; j < DIM; j++)
                vs[i * DIM + j] = vec_of(id + round, j);
            pl[i] = round % 2 ? "{\"t\":\"churn\",\"n\":1}" : "{\"t\":\"other\",\"n\":2}";
        }
        (void)v;
        if (ndl_collection_upsert_points(r->c, 8, ids, vs, pl, NULL, NULL) != NDL_OK)
            r->failures++;
    }
    return NULL;
}

static void *reader(void *arg)
{
    race *r = arg;
    ndl_filter *f = parse("{\"t\":\"three\"}"); /* points the writer never touches */
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = 10;
    p.where = f;
    float q[DIM];
    for (int j = 0; j < DIM; j++)
        q[j] = vec_of(5, j);
    while (!r->stop) {
        ndl_results *res;
        if (ndl_collection_search(r->c, q, &p, &res, NULL) != NDL_OK) {
            r->failures++;
            continue;
        }
        size_t n = ndl_results_count(res, 0);
        for (size_t i = 0; i < n; i++)
            if (ndl_results_hits(res, 0)[i].id.num % 1000 != 17)
                r->failures++;
        if (n != 3)
            r->failures++;
        ndl_results_free(res);
        uint64_t cnt;
        if (ndl_collection_count_where(r->c, f, &cnt, NULL) != NDL_OK || cnt != 3)
            r->failures++;
    }
    ndl_filter_free(f);
    return NULL;
}

static void test_concurrent_upserts_and_filtered_searches(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    race r = {.c = make(db, "race", true)};
    pthread_t w, rd[2];
    pthread_create(&rd[0], NULL, reader, &r);
    pthread_create(&rd[1], NULL, reader, &r);
    pthread_create(&w, NULL, writer, &r);
    pthread_join(w, NULL);
    r.stop = 1;
    pthread_join(rd[0], NULL);
    pthread_join(rd[1], NULL);
    assert_int_equal(r.failures, 0);
    /* the writer's last round decides every churned point's tag */
    assert_int_equal(count_of(r.c, "{\"t\":\"churn\"}") + count_of(r.c, "{\"t\":\"other\"}"), 300);
    ndl_collection_close(r.c, NULL);
    ndl_db_close(db, NULL);
}

/* Replaced and deleted points stay in the indexes' bitmaps (hidden) until
 * a compaction: counts, scrolls and deletes by filter skip them, on an
 * exact bitmap and on candidates checked on their payloads alike. */
static void test_replaced_and_deleted_are_skipped(void **state)
{
    (void)state;
    ndl_db *db = open_db();
    ndl_collection *c = make(db, "replaced", true);
    ndl_error e;
    static ndl_id ids[100];
    static float v[100 * DIM];
    static char text[100][64];
    static const char *payloads[100];
    for (uint64_t i = 0; i < 100; i++) { /* ids 0..99 upserted again, as "moved" */
        ids[i] = ndl_id_u64(i);
        for (int j = 0; j < DIM; j++)
            v[i * DIM + (uint64_t)j] = vec_of(i, j);
        snprintf(text[i], sizeof text[i], "{\"t\":\"moved\",\"u\":\"moved\",\"n\":%llu}",
                 (unsigned long long)i);
        payloads[i] = text[i];
    }
    assert_int_equal(ndl_collection_upsert_points(c, 100, ids, v, payloads, NULL, &e), NDL_OK);
    for (uint64_t i = 0; i < 50; i++)
        ids[i] = ndl_id_u64(100 + i);
    assert_int_equal(ndl_collection_delete(c, 50, ids, NULL, &e), NDL_OK);
    uint64_t half = 0;
    for (uint64_t i = 150; i < N; i++)
        half += strcmp(tag_of(i), "half") == 0;
    assert_int_equal(count_of(c, "{\"t\":\"moved\"}"), 100);
    assert_int_equal(count_of(c, "{\"$and\":[{\"t\":\"moved\"},{\"u\":\"moved\"}]}"), 100);
    assert_int_equal(count_of(c, "{\"t\":\"half\"}"), half);
    assert_int_equal(count_of(c, "{\"u\":\"half\"}"), half);
    assert_int_equal(count_of(c, "{\"$and\":[{\"t\":\"half\"},{\"u\":\"half\"}]}"), half);
    assert_int_equal(count_of(c, "{\"n\":{\"$lt\":200}}"), 150);
    ndl_filter *f = parse("{\"$and\":[{\"n\":{\"$lt\":200}},{\"u\":{\"$ne\":\"moved\"}}]}");
    size_t deleted;
    assert_int_equal(ndl_collection_delete_where(c, f, &deleted, &e), NDL_OK);
    assert_int_equal(deleted, 50); /* ids 150..199 */
    assert_int_equal(count_of(c, "{\"n\":{\"$lt\":200}}"), 100);
    assert_int_equal(ndl_collection_count(c), N - 100);
    ndl_filter_free(f);
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_counts_both_plans),
        cmocka_unit_test(test_indexed_and_unindexed_agree),
        cmocka_unit_test(test_planner_and_explain),
        cmocka_unit_test(test_types_are_enforced),
        cmocka_unit_test(test_indexes_survive_reopen_and_compaction),
        cmocka_unit_test(test_replaced_and_deleted_are_skipped),
        cmocka_unit_test(test_concurrent_upserts_and_filtered_searches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
