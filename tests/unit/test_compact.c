/*
 * test_compact.c -- online maintenance: compaction and checkpoints.
 * Compaction: deleted and replaced points leave memory and disk, every live
 * point keeps its vector and payload, the index stays correct (recall
 * against exact search, ndl_collection_check), it survives reopen,
 * checkpoints compact by themselves when a quarter is dead, it runs while
 * other threads search and write, and running out of memory halfway
 * changes nothing. Checkpoints: writes, payload replacements and searches
 * go on while one writes its files; the files hold the snapshot, and
 * reopening (files + log) gives back every write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <unistd.h>

#include "db/db_internal.h" /* coll_compact_set_hook */
#include "needle.h"
#include "storage/io.h"
#include "util/alloc.h"

#define DIM 16
#define N 3000

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle-test-compact-XXXXXX");
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

static ndl_db *open_db(void)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.checkpoint_interval_ms = 0;
    o.checkpoint_wal_bytes = 0;
    o.fsync = NDL_FSYNC_NONE;
    ndl_db *db = NULL;
    ndl_error e;
    if (ndl_db_open(tmpdir, &o, &db, &e) != NDL_OK)
        fail_msg("open: %s", e.msg);
    return db;
}

/* An HNSW collection of DIM dimensions, m = 8 (ef_construction 0: default). */
static ndl_collection *create_hnsw(ndl_db *db, const char *name, uint32_t ef_construction)
{
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = DIM;
    cfg.hnsw_m = 8;
    if (ef_construction)
        cfg.hnsw_ef_construction = ef_construction;
    ndl_collection *c;
    ndl_error e;
    if (ndl_collection_create(db, name, &cfg, &c, &e) != NDL_OK)
        fail_msg("create %s: %s", name, e.msg);
    return c;
}

/* The model: which ids are live, with which vector and payload. Ids
 * alternate between u64 and string kinds. */
typedef struct model {
    int live[N];
    float vec[N][DIM];
    char payload[N][48];
    int has_payload[N];
} model;

static model M;

static ndl_id id_of(int i, char *buf)
{
    if (i % 2)
        return ndl_id_u64((uint64_t)i);
    snprintf(buf, 24, "s-%d", i);
    return ndl_id_str(buf);
}

static void fill(int i, int version)
{
    for (int j = 0; j < DIM; j++)
        M.vec[i][j] = (float)((i * 131 + j * 17 + version * 7919) % 1000) / 100.0f;
    M.has_payload[i] = (i + version) % 3 != 0;
    snprintf(M.payload[i], sizeof M.payload[i], "{\"i\":%d,\"v\":%d}", i, version);
}

/* Upsert ids [from, to) at `version`. */
static void upsert_range(ndl_collection *c, int from, int to, int version)
{
    int n = to - from;
    ndl_id *ids = malloc((size_t)n * sizeof *ids);
    char (*bufs)[24] = malloc((size_t)n * 24);
    float *v = malloc((size_t)n * DIM * sizeof(float));
    const char **pl = malloc((size_t)n * sizeof *pl);
    for (int k = 0; k < n; k++) {
        int i = from + k;
        fill(i, version);
        M.live[i] = 1;
        ids[k] = id_of(i, bufs[k]);
        memcpy(v + (size_t)k * DIM, M.vec[i], sizeof M.vec[i]);
        pl[k] = M.has_payload[i] ? M.payload[i] : NULL;
    }
    ndl_error e;
    if (ndl_collection_upsert_points(c, (size_t)n, ids, v, pl, NULL, &e) != NDL_OK)
        fail_msg("upsert: %s", e.msg);
    free(ids);
    free(bufs);
    free(v);
    free(pl);
}

static void delete_every(ndl_collection *c, int step, int offset)
{
    ndl_id ids[N];
    char bufs[N][24];
    size_t n = 0;
    for (int i = offset; i < N; i += step) {
        ids[n] = id_of(i, bufs[n]);
        n++;
        M.live[i] = 0;
    }
    ndl_error e;
    if (ndl_collection_delete(c, n, ids, NULL, &e) != NDL_OK)
        fail_msg("delete: %s", e.msg);
}

static void expect_model(ndl_collection *c);

/* Close db (the last checkpoint), reopen it and expect the model in name. */
static void expect_model_after_reopen(ndl_db *db, const char *name)
{
    ndl_error e;
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    db = open_db();
    ndl_collection *c;
    assert_int_equal(ndl_collection_open(db, name, &c, &e), NDL_OK);
    expect_model(c);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
}

/* Every id as the model says; search recall against exact >= 0.9; check. */
static void expect_model(ndl_collection *c)
{
    uint64_t live = 0;
    for (int i = 0; i < N; i++) {
        char buf[24];
        float v[DIM];
        char *pl = NULL;
        ndl_status rc = ndl_collection_get_point(c, id_of(i, buf), v, &pl, NULL);
        if ((rc == NDL_OK) != (M.live[i] != 0))
            fail_msg("id %d: present %d, model %d", i, rc == NDL_OK, M.live[i]);
        if (rc == NDL_OK) {
            live++;
            assert_memory_equal(v, M.vec[i], sizeof v);
            if (M.has_payload[i]) {
                assert_non_null(pl);
                assert_string_equal(pl, M.payload[i]);
            } else {
                assert_null(pl);
            }
        }
        ndl_free(pl);
    }
    assert_int_equal(ndl_collection_count(c), live);
    ndl_error e;
    if (ndl_collection_check(c, &e) != NDL_OK)
        fail_msg("check: %s", e.msg);
    ndl_search_params p, x;
    ndl_search_params_init(&p);
    p.k = 10;
    p.ef = 64;
    x = p;
    x.exact = 1;
    size_t hit = 0, total = 0;
    for (int i = 0; i < N; i += 97) {
        ndl_results *a, *b;
        assert_int_equal(ndl_collection_search(c, M.vec[i], &p, &a, NULL), NDL_OK);
        assert_int_equal(ndl_collection_search(c, M.vec[i], &x, &b, NULL), NDL_OK);
        assert_int_equal(ndl_results_count(a, 0), ndl_results_count(b, 0));
        for (size_t j = 0; j < ndl_results_count(b, 0); j++) {
            total++;
            for (size_t k = 0; k < ndl_results_count(a, 0); k++)
                if (ndl_results_hits(a, 0)[k].distance == ndl_results_hits(b, 0)[j].distance) {
                    hit++;
                    break;
                }
        }
        ndl_results_free(a);
        ndl_results_free(b);
    }
    assert_true(total > 0);
    if ((double)hit / (double)total < 0.9)
        fail_msg("recall %.3f after compaction", (double)hit / (double)total);
}

static void test_compact_reclaims_and_keeps_everything(void **state)
{
    (void)state;
    memset(&M, 0, sizeof M);
    for (int index = 0; index <= 1; index++) {
        const char *name = index ? "hnsw" : "flat";
        ndl_db *db = open_db();
        ndl_collection_config cfg;
        ndl_collection_config_init(&cfg);
        cfg.dimension = DIM;
        cfg.index = index ? NDL_INDEX_HNSW : NDL_INDEX_FLAT;
        cfg.hnsw_m = 8;
        cfg.hnsw_ef_construction = 64;
        ndl_collection *c;
        ndl_error e;
        assert_int_equal(ndl_collection_create(db, name, &cfg, &c, &e), NDL_OK);
        memset(&M, 0, sizeof M);
        upsert_range(c, 0, N, 0);
        assert_int_equal(ndl_collection_flush(c, &e), NDL_OK);
        delete_every(c, 5, 0);           /* 20% deleted */
        delete_every(c, 5, 1);           /* 40% */
        upsert_range(c, 1000, 1600, 1);  /* replaced: old slots dead */
        ndl_collection_info before, after;
        assert_int_equal(ndl_collection_info_get(c, &before, &e), NDL_OK);
        assert_true(before.deleted > 0);
        assert_int_equal(ndl_collection_compact(c, &e), NDL_OK);
        assert_int_equal(ndl_collection_info_get(c, &after, &e), NDL_OK);
        assert_int_equal(after.deleted, 0);
        assert_int_equal(after.count, before.count);
        if (after.memory_bytes >= before.memory_bytes || after.disk_bytes >= before.disk_bytes)
            fail_msg("%s: memory %llu -> %llu, disk %llu -> %llu", name,
                     (unsigned long long)before.memory_bytes, (unsigned long long)after.memory_bytes,
                     (unsigned long long)before.disk_bytes, (unsigned long long)after.disk_bytes);
        expect_model(c);
        /* writes after compaction land on the new slots */
        upsert_range(c, 0, 50, 2);
        delete_every(c, 7, 3);
        expect_model(c);
        expect_model_after_reopen(db, name);
    }
}

static void test_checkpoint_compacts_when_due(void **state)
{
    (void)state;
    memset(&M, 0, sizeof M);
    ndl_db *db = open_db();
    ndl_collection *c = create_hnsw(db, "auto", 0);
    ndl_error e;
    upsert_range(c, 0, 400, 0);
    delete_every(c, 10, 0); /* 40 dead of 400: not due (fewer than 64) */
    assert_int_equal(ndl_collection_flush(c, &e), NDL_OK);
    ndl_collection_info info;
    assert_int_equal(ndl_collection_info_get(c, &info, &e), NDL_OK);
    assert_int_equal(info.deleted, 40);
    delete_every(c, 10, 1); /* 80 dead of 400: not a quarter */
    assert_int_equal(ndl_collection_flush(c, &e), NDL_OK);
    assert_int_equal(ndl_collection_info_get(c, &info, &e), NDL_OK);
    assert_int_equal(info.deleted, 80);
    delete_every(c, 10, 2); /* 120 of 400: due */
    assert_int_equal(ndl_collection_flush(c, &e), NDL_OK);
    assert_int_equal(ndl_collection_info_get(c, &info, &e), NDL_OK);
    assert_int_equal(info.deleted, 0);
    assert_int_equal(info.count, 280);
    for (int i = 400; i < N; i++)
        M.live[i] = 0;
    ndl_db_close(db, NULL);
}

/* Searches and writes from other threads while compactions run. */
typedef struct race {
    ndl_collection *c;
    atomic_int stop;
    atomic_int searches;
    int bad;
} race;

static void *searcher(void *arg)
{
    race *r = arg;
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = 5;
    p.with_payload = 1;
    float q[DIM] = {1, 2, 3};
    while (!atomic_load(&r->stop)) {
        ndl_results *res;
        if (ndl_collection_search(r->c, q, &p, &res, NULL) != NDL_OK) {
            r->bad = 1;
            break;
        }
        for (size_t i = 0; i < ndl_results_count(res, 0); i++) {
            const ndl_hit *h = &ndl_results_hits(res, 0)[i];
            /* ids in this test are u64 below 100000 or "s-<n>" strings */
            if (h->id.str ? strncmp(h->id.str, "s-", 2) != 0 : h->id.num >= 100000)
                r->bad = 2;
        }
        ndl_results_free(res);
        atomic_fetch_add(&r->searches, 1);
    }
    return NULL;
}

static void *writer(void *arg)
{
    race *r = arg;
    float v[DIM] = {0};
    for (uint64_t i = 0; !atomic_load(&r->stop); i++) {
        ndl_id id = ndl_id_u64(50000 + i % 500);
        v[0] = (float)i;
        const char *pl = "{\"w\":1}";
        if (ndl_collection_upsert_points(r->c, 1, &id, v, &pl, NULL, NULL) != NDL_OK) {
            r->bad = 3;
            break;
        }
    }
    return NULL;
}

static void test_compact_while_searching_and_writing(void **state)
{
    (void)state;
    memset(&M, 0, sizeof M);
    ndl_db *db = open_db();
    ndl_collection *c = create_hnsw(db, "race", 32);
    ndl_error e;
    upsert_range(c, 0, 1500, 0);
    race r = {.c = c};
    pthread_t t[3];
    pthread_create(&t[0], NULL, searcher, &r);
    pthread_create(&t[1], NULL, searcher, &r);
    pthread_create(&t[2], NULL, writer, &r);
    for (int round = 0; round < 6; round++) {
        delete_every(c, 4, round % 4);
        upsert_range(c, 0, 300, round + 1);
        assert_int_equal(ndl_collection_compact(c, &e), NDL_OK);
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r.bad, 0);
    assert_true(atomic_load(&r.searches) > 0);
    assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
    ndl_db_close(db, NULL);
}

/* Writes while a compaction copies (compact.c, step 2), all in the
 * model: new points (some deleted again), replacements and deletes of
 * points live in the snapshot, payload replacements. CATCH_FEW writes
 * fewer than 64 new slots, which the catch-up under the lock takes alone;
 * CATCH_UNLOCKED more, which the rounds without the lock take first;
 * CATCH_SLICED many more with no unlocked round, so the slices under the
 * lock take them (several batches). */
enum { CATCH_UNLOCKED, CATCH_FEW, CATCH_SLICED };
typedef struct during {
    int calls;
    int mode;
} during;

static void write_during_copy(ndl_collection *c, void *ctx)
{
    during *d = ctx;
    d->calls++;
    int few = d->mode == CATCH_FEW;
    int added = few ? 20 : d->mode == CATCH_SLICED ? 700 : 100, replaced = few ? 10 : 60;
    upsert_range(c, 2000, 2000 + added, 1); /* new */
    upsert_range(c, 0, replaced, 2);        /* replaced (some were dead: back) */
    ndl_id ids[80];
    char bufs[80][24];
    size_t n = 0;
    for (int i = 100; i < 160; i++) { /* deleted (live, or dead already) */
        int k = i < 150 ? i : 2005 + (i - 150); /* and new ones, deleted again */
        ids[n] = id_of(k, bufs[n]);
        M.live[k] = 0;
        n++;
    }
    ndl_error e;
    if (ndl_collection_delete(c, n, ids, NULL, &e) != NDL_OK)
        fail_msg("delete: %s", e.msg);
    for (int i = 202; i < 232; i += 3) { /* payloads replaced (i % 3 == 1: live) */
        char buf[24];
        snprintf(M.payload[i], sizeof M.payload[i], "{\"i\":%d,\"during\":true}", i);
        M.has_payload[i] = 1;
        if (ndl_collection_set_payload(c, id_of(i, buf), M.payload[i], NDL_PAYLOAD_REPLACE,
                                       &e) != NDL_OK)
            fail_msg("set_payload: %s", e.msg);
    }
}

static void compact_beside_writes(int mode)
{
    memset(&M, 0, sizeof M);
    ndl_db *db = open_db();
    static const char *const names[] = {"during", "during-few", "during-sliced"};
    const char *name = names[mode];
    ndl_collection *c = create_hnsw(db, name, 64);
    ndl_error e;
    upsert_range(c, 0, 1600, 0);
    delete_every(c, 3, 0); /* a third dead: ids 0, 3, 6, ... */
    during d = {.mode = mode};
    coll_compact_set_hook(write_during_copy, &d);
    coll_compact_set_unlocked_rounds(mode == CATCH_SLICED ? 0 : -1);
    ndl_status rc = ndl_collection_compact(c, &e);
    coll_compact_set_unlocked_rounds(-1);
    coll_compact_set_hook(NULL, NULL);
    if (rc != NDL_OK)
        fail_msg("compact: %s", e.msg);
    assert_int_equal(d.calls, 1);
    ndl_collection_info info;
    assert_int_equal(ndl_collection_info_get(c, &info, &e), NDL_OK);
    /* what died during the copy stays until the next compaction */
    assert_true(info.deleted > 0 && info.deleted < 200);
    /* each phase of the catch-up took what it is for */
    uint32_t took[3];
    coll_compact_last_takes(took);
    assert_int_equal(took[0] >= 100, mode == CATCH_UNLOCKED);
    assert_int_equal(took[1] >= 600, mode == CATCH_SLICED);
    assert_int_equal(took[2] > 0, mode == CATCH_FEW);
    assert_true(took[2] < 64);
    expect_model(c);
    /* every live point is found by its own vector through the graph (ids
     * i, i + 1000, i + 2000 share vectors: among the first 8 at distance 0) */
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = 8;
    for (int i = 0; i < N; i++) {
        if (!M.live[i])
            continue;
        ndl_results *r;
        assert_int_equal(ndl_collection_search(c, M.vec[i], &p, &r, NULL), NDL_OK);
        char buf[24];
        ndl_id want = id_of(i, buf);
        bool found = false;
        for (size_t h = 0; h < ndl_results_count(r, 0); h++)
            found |= ndl_results_hits(r, 0)[h].distance == 0 &&
                     ndl_id_equal(ndl_results_hits(r, 0)[h].id, want);
        if (!found)
            fail_msg("live id %d is not found by its own vector", i);
        ndl_results_free(r);
    }
    upsert_range(c, 2100, 2200, 3); /* writes after it */
    assert_int_equal(ndl_collection_compact(c, &e), NDL_OK);
    expect_model(c);
    expect_model_after_reopen(db, name);
}

static void test_compact_takes_writes_during_its_copy(void **state)
{
    (void)state;
    compact_beside_writes(CATCH_UNLOCKED);
}

static void test_compact_takes_a_few_writes_under_the_lock(void **state)
{
    (void)state;
    compact_beside_writes(CATCH_FEW);
}

static void test_compact_catches_up_in_slices(void **state)
{
    (void)state;
    compact_beside_writes(CATCH_SLICED);
}

static void test_compact_out_of_memory_changes_nothing(void **state)
{
    (void)state;
    memset(&M, 0, sizeof M);
    ndl_db *db = open_db();
    ndl_collection *c = create_hnsw(db, "oom", 0);
    ndl_error e;
    upsert_range(c, 0, 300, 0);
    delete_every(c, 2, 0);
    int done = 0;
    for (int k = 0; k < 2000 && !done; k += 3) {
        ndl_alloc_fail_after(k);
        ndl_status rc = ndl_collection_compact(c, &e);
        ndl_alloc_fail_after(-1);
        if (rc == NDL_OK) {
            done = 1;
            break;
        }
        assert_int_equal(rc, NDL_NOMEM);
        for (int i = 300; i < N; i++)
            M.live[i] = 0;
        expect_model(c);
    }
    assert_true(done);
    for (int i = 300; i < N; i++)
        M.live[i] = 0;
    expect_model(c);
    ndl_db_close(db, NULL);
}

/* Points on a closed curve (a 2-D ellipse inside DIM dimensions: the
 * hardest shape for a graph, every point has two real neighbours), every
 * one replaced or deleted again and again, compacted every 100 steps: each
 * live point must stay its own nearest neighbour through the graph at the
 * default ef. Compaction that only dropped the links to removed nodes
 * failed this (the graph thinned into broken chains). */
static void ring_vector(uint32_t b, uint32_t id, float *v)
{
    for (int j = 0; j < DIM; j++)
        v[j] = (float)sin((double)b * 0.3711 + (double)id * 1.2913 + j * 0.7) * 10.0f;
}

static void test_compact_keeps_graph_searchable(void **state)
{
    (void)state;
    enum { RING = 400 };
    static float vec[RING][DIM];
    static int live[RING];
    memset(live, 0, sizeof live);
    ndl_db *db = open_db();
    ndl_collection *c = create_hnsw(db, "ring", 32);
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = 1;
    for (uint32_t step = 1; step <= 1500; step++) {
        uint32_t b = step;
        ndl_id ids[12];
        float v[12 * DIM];
        for (int j = 0; j < 12; j++) {
            uint32_t id = (b * 7 + (uint32_t)j) % RING;
            ids[j] = ndl_id_u64(id);
            ring_vector(b, id, v + j * DIM);
            memcpy(vec[id], v + j * DIM, sizeof vec[id]);
            live[id] = 1;
        }
        assert_int_equal(ndl_collection_upsert(c, 12, ids, v, NULL, NULL), NDL_OK);
        ndl_id del[4];
        for (int j = 0; j < 4; j++) {
            del[j] = ndl_id_u64((b * 13 + (uint32_t)j) % RING);
            live[del[j].num] = 0;
        }
        assert_int_equal(ndl_collection_delete(c, 4, del, NULL, NULL), NDL_OK);
        if (step % 100)
            continue;
        assert_int_equal(ndl_collection_compact(c, NULL), NDL_OK);
        for (int i = 0; i < RING; i++) {
            if (!live[i])
                continue;
            ndl_results *r;
            assert_int_equal(ndl_collection_search(c, vec[i], &p, &r, NULL), NDL_OK);
            int found = ndl_results_count(r, 0) == 1 && ndl_results_hits(r, 0)[0].distance == 0;
            ndl_results_free(r);
            if (!found)
                fail_msg("step %u: live point %d is not its own nearest neighbour", step, i);
        }
    }
    ndl_db_close(db, NULL);
}

/* ---------------------------------------------------------------- checkpoints */

/* Parks the thread that opens a graph file while armed, until released. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int armed, parked, released;
} park = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static void park_on_graph(const char *path, void *ctx)
{
    (void)ctx;
    if (!strstr(path, "/graph."))
        return;
    pthread_mutex_lock(&park.mu);
    if (park.armed) {
        park.armed = 0;
        park.parked = 1;
        pthread_cond_broadcast(&park.cv);
        while (!park.released)
            pthread_cond_wait(&park.cv, &park.mu);
    }
    pthread_mutex_unlock(&park.mu);
}

typedef struct flush_job {
    ndl_collection *c;
    ndl_status rc;
    ndl_error e;
} flush_job;

static void *flush_main(void *arg)
{
    flush_job *j = arg;
    j->rc = ndl_collection_flush(j->c, &j->e);
    return NULL;
}

/* Start a checkpoint of job->c on another thread; return once it is
 * parked on opening its graph file. */
static pthread_t start_parked_checkpoint(flush_job *job)
{
    park.armed = 1;
    park.parked = park.released = 0;
    io_set_open_hook(park_on_graph, NULL);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flush_main, job), 0);
    pthread_mutex_lock(&park.mu);
    while (!park.parked)
        pthread_cond_wait(&park.cv, &park.mu);
    pthread_mutex_unlock(&park.mu);
    return t;
}

static void finish_parked_checkpoint(pthread_t t)
{
    pthread_mutex_lock(&park.mu);
    park.released = 1;
    pthread_cond_broadcast(&park.cv);
    pthread_mutex_unlock(&park.mu);
    pthread_join(t, NULL);
    io_set_open_hook(NULL, NULL);
}

/* The bytes of the one file in tmpdir/name whose name starts with prefix. */
static char *read_generation_file(const char *name, const char *prefix, size_t *len)
{
    char dir[400], path[700];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, prefix, strlen(prefix)) && !strstr(de->d_name, ".tmp")) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            found++;
        }
    closedir(d);
    assert_int_equal(found, 1); /* the old generation is gone */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*len + 1);
    assert_int_equal(fread(b, 1, *len, f), *len);
    b[*len] = 0;
    fclose(f);
    return b;
}

static int contains(const char *hay, size_t len, const char *needle)
{
    return memmem(hay, len, needle, strlen(needle)) != NULL;
}

/* A checkpoint parked in the middle of writing its files (between the
 * payloads and the graph) holds up no writer or reader: upserts, deletes,
 * payload replacements and searches all finish meanwhile. Its files hold
 * the collection as of its snapshot (old payload texts, still referenced
 * by the snapshot after being replaced, are written intact); reopening
 * replays the rest from the log. */
static void test_checkpoint_runs_beside_writes(void **state)
{
    (void)state;
    memset(&M, 0, sizeof M);
    ndl_db *db = open_db();
    ndl_collection *c = create_hnsw(db, "beside", 32);
    ndl_error e;
    upsert_range(c, 0, 1000, 0);
    /* ids 100..149 get payloads set after the upsert (heap copies that a
     * replacement frees) */
    char before[50][48];
    for (int i = 100; i < 150; i++) {
        char buf[24];
        snprintf(M.payload[i], sizeof M.payload[i], "{\"first\":%d}", i);
        M.has_payload[i] = 1;
        snprintf(before[i - 100], sizeof before[0], "%s", M.payload[i]);
        assert_int_equal(ndl_collection_set_payload(c, id_of(i, buf), M.payload[i],
                                                    NDL_PAYLOAD_REPLACE, &e), NDL_OK);
    }

    alarm(120); /* a writer stuck behind the checkpoint would hang: fail instead */
    flush_job job = {.c = c};
    pthread_t t = start_parked_checkpoint(&job);

    /* the checkpoint is parked: everything else goes on */
    upsert_range(c, 1000, 1400, 0);
    delete_every(c, 10, 0);
    for (int i = 100; i < 150; i++) {
        char buf[24];
        if (i % 10 == 0)
            continue; /* deleted just now */
        snprintf(M.payload[i], sizeof M.payload[i], "{\"second\":%d}", i);
        assert_int_equal(ndl_collection_set_payload(c, id_of(i, buf), M.payload[i],
                                                    NDL_PAYLOAD_REPLACE, &e), NDL_OK);
    }
    for (int i = 1400; i < N; i++)
        M.live[i] = 0;
    expect_model(c); /* gets, searches, check */

    finish_parked_checkpoint(t);
    alarm(0);
    if (job.rc != NDL_OK)
        fail_msg("checkpoint: %s", job.e.msg);

    /* the checkpoint's payload file: the texts as of its snapshot */
    size_t len;
    char *pf = read_generation_file("beside", "payloads.", &len);
    for (int i = 100; i < 150; i++) {
        if (i % 10 == 0)
            continue; /* deleted after the snapshot, not replaced */
        assert_true(contains(pf, len, before[i - 100]));
        assert_false(contains(pf, len, M.payload[i]));
    }
    free(pf);
    expect_model(c);

    /* reopen: snapshot files + the log after the snapshot */
    expect_model_after_reopen(db, "beside");
}

/* A reopen straight after the parked checkpoint, without a clean close:
 * the manifest it published plus the log must give every write. Checked by
 * copying the directory while the collection is still open (what a crash
 * leaves, minus unsynced data: fsync is always here). */
static void test_checkpoint_then_crash_copy(void **state)
{
    (void)state;
    memset(&M, 0, sizeof M);
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.checkpoint_interval_ms = 0;
    o.checkpoint_wal_bytes = 0;
    ndl_db *db;
    ndl_error e;
    assert_int_equal(ndl_db_open(tmpdir, &o, &db, &e), NDL_OK);
    ndl_collection *c = create_hnsw(db, "copied", 0);
    upsert_range(c, 0, 600, 0);

    flush_job job = {.c = c};
    pthread_t t = start_parked_checkpoint(&job);
    upsert_range(c, 600, 900, 1);
    delete_every(c, 3, 1);
    finish_parked_checkpoint(t);
    assert_int_equal(job.rc, NDL_OK);
    upsert_range(c, 0, 100, 2);

    char copy[300], cmd[700];
    snprintf(copy, sizeof copy, "/tmp/needle-test-compact-copy-XXXXXX");
    assert_non_null(mkdtemp(copy));
    snprintf(cmd, sizeof cmd, "cp -a '%s/.' '%s/'", tmpdir, copy);
    assert_int_equal(system(cmd), 0);
    ndl_db_close(db, NULL);
    /* the live one was closed cleanly; the copy was taken while it was open */
    assert_int_equal(ndl_db_open(copy, &o, &db, &e), NDL_OK);
    if (ndl_collection_open(db, "copied", &c, &e) != NDL_OK)
        fail_msg("open of the crash copy: %s", e.msg);
    for (int i = 900; i < N; i++)
        M.live[i] = 0;
    expect_model(c);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", copy);
    assert_int_equal(system(cmd), 0);
}

/* Checkpoints in a loop while a writer replaces payloads, upserts and
 * deletes and a searcher reads payloads: no lost write, no freed text read
 * (AddressSanitizer watches), and reopening gives the writer's model. */
typedef struct churn {
    ndl_collection *c;
    atomic_int stop;
    int bad;
    ndl_error e;
} churn;

static void *churn_writer(void *arg)
{
    churn *r = arg;
    for (int round = 1; round <= 40 && !r->bad; round++) {
        int from = (round * 37) % (N - 200);
        upsert_range(r->c, from, from + 50, round);
        for (int i = from; i < from + 50; i += 5) {
            char buf[24];
            snprintf(M.payload[i], sizeof M.payload[i], "{\"round\":%d,\"i\":%d}", round, i);
            M.has_payload[i] = 1;
            if (ndl_collection_set_payload(r->c, id_of(i, buf), M.payload[i],
                                           NDL_PAYLOAD_REPLACE, &r->e) != NDL_OK)
                r->bad = 1;
        }
        ndl_id ids[10];
        char bufs[10][24];
        for (int k = 0; k < 10; k++) {
            int i = (from + 7 * k + round) % N;
            ids[k] = id_of(i, bufs[k]);
            M.live[i] = 0;
        }
        if (ndl_collection_delete(r->c, 10, ids, NULL, &r->e) != NDL_OK)
            r->bad = 2;
    }
    atomic_store(&r->stop, 1);
    return NULL;
}

static void test_checkpoints_while_writing(void **state)
{
    (void)state;
    memset(&M, 0, sizeof M);
    ndl_db *db = open_db();
    ndl_collection *c = create_hnsw(db, "churn", 32);
    ndl_error e;
    upsert_range(c, 0, N, 0);
    churn w = {.c = c};
    race r = {.c = c};
    pthread_t tw, ts;
    pthread_create(&tw, NULL, churn_writer, &w);
    pthread_create(&ts, NULL, searcher, &r);
    int checkpoints = 0;
    while (!atomic_load(&w.stop)) {
        if (ndl_collection_flush(c, &e) != NDL_OK)
            fail_msg("checkpoint: %s", e.msg);
        checkpoints++;
    }
    pthread_join(tw, NULL);
    atomic_store(&r.stop, 1);
    pthread_join(ts, NULL);
    if (w.bad)
        fail_msg("writer: %s", w.e.msg);
    assert_int_equal(r.bad, 0);
    assert_true(checkpoints > 1);
    expect_model(c);
    expect_model_after_reopen(db, "churn");
}

/* ndl_collection_info_get must not wait for a write: an upsert holds the
 * write lock while it indexes, and the server's /metrics reads every
 * collection's info (it stalled the whole server behind one big upsert). */
typedef struct info_call {
    ndl_collection *c;
    atomic_int done;
    uint64_t count;
} info_call;

static void *call_info(void *arg)
{
    info_call *ic = arg;
    ndl_collection_info info;
    if (ndl_collection_info_get(ic->c, &info, NULL) == NDL_OK)
        ic->count = info.count;
    atomic_store(&ic->done, 1);
    return NULL;
}

static void test_info_does_not_wait_for_writes(void **state)
{
    (void)state;
    memset(&M, 0, sizeof M);
    ndl_db *db = open_db();
    ndl_collection *c = create_hnsw(db, "info-unlocked", 0);
    upsert_range(c, 0, 100, 0);
    info_call ic = {.c = c};
    pthread_mutex_lock(&c->write_lock); /* as a writer in the middle of an upsert */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_info, &ic), 0);
    for (int i = 0; i < 1000 && !atomic_load(&ic.done); i++)
        usleep(10000);
    int done = atomic_load(&ic.done);
    pthread_mutex_unlock(&c->write_lock);
    pthread_join(t, NULL);
    assert_true(done); /* within 10 s, while the lock was held */
    assert_int_equal(ic.count, 100);
    ndl_db_close(db, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_reclaims_and_keeps_everything),
        cmocka_unit_test(test_checkpoint_compacts_when_due),
        cmocka_unit_test(test_compact_while_searching_and_writing),
        cmocka_unit_test(test_compact_takes_writes_during_its_copy),
        cmocka_unit_test(test_compact_takes_a_few_writes_under_the_lock),
        cmocka_unit_test(test_compact_catches_up_in_slices),
        cmocka_unit_test(test_compact_out_of_memory_changes_nothing),
        cmocka_unit_test(test_compact_keeps_graph_searchable),
        cmocka_unit_test(test_checkpoint_runs_beside_writes),
        cmocka_unit_test(test_checkpoint_then_crash_copy),
        cmocka_unit_test(test_checkpoints_while_writing),
        cmocka_unit_test(test_info_does_not_wait_for_writes),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
