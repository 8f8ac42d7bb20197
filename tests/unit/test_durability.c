/*
 * test_durability.c -- the collection's write path under failing I/O
 * (through the injectable layer, storage/io.h) and damaged files:
 *   - a failed fsync fails the write and turns the collection read-only
 *     with the reason; reads continue; reopening has every acknowledged write;
 *   - ENOSPC fails the write with disk_full, writes nothing, reads continue,
 *     and writes succeed again once "space frees";
 *   - a failing checkpoint loses nothing (the log still has it);
 *   - damaged manifest, ids, graph and log files are refused with the file
 *     named, while other collections of the database keep opening;
 *   - --salvage opens them read-only anyway where it can: the log up to the
 *     damage, the graph rebuilt from the vectors, payloads dropped; it says
 *     what it cost and writes nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "needle.h"
#include "storage/io.h"
#include "util/alloc.h"

#define DIM 6

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle-test-dur-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    io_fault_reset();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd);
}

/* a failed test must not leave a fault armed for the next */
static int reset_faults(void **state)
{
    (void)state;
    io_fault_reset();
    return 0;
}

static const char *path_of(const char *sub)
{
    static char p[400];
    snprintf(p, sizeof p, "%s/%s", tmpdir, sub);
    return p;
}

static ndl_db *open_db(const char *sub)
{
    ndl_db *db = NULL;
    ndl_error e;
    if (ndl_db_open(path_of(sub), NULL, &db, &e) != NDL_OK)
        fail_msg("open: %s", e.msg);
    return db;
}

static ndl_collection *create(ndl_db *db, const char *name)
{
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = DIM;
    cfg.hnsw_m = 8;
    ndl_collection *c;
    ndl_error e;
    if (ndl_collection_create(db, name, &cfg, &c, &e) != NDL_OK)
        fail_msg("create: %s", e.msg);
    return c;
}

static void vec_of(uint64_t id, float *v)
{
    for (int j = 0; j < DIM; j++)
        v[j] = (float)((id * 31 + (uint64_t)j * 7) % 97) / 7.0f;
}

/* upsert ids [first, first+n) */
static ndl_status put(ndl_collection *c, uint64_t first, size_t n, ndl_error *e)
{
    ndl_id ids[64];
    float v[64 * DIM];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        ids[i] = ndl_id_u64(first + i);
        vec_of(first + i, v + i * DIM);
    }
    return ndl_collection_upsert(c, n, ids, v, NULL, e);
}

static void expect_present(ndl_collection *c, uint64_t first, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v[DIM], want[DIM];
        ndl_error e;
        if (ndl_collection_get(c, ndl_id_u64(first + i), v, &e) != NDL_OK)
            fail_msg("id %llu missing: %s", (unsigned long long)(first + i), e.msg);
        vec_of(first + i, want);
        assert_memory_equal(v, want, sizeof v);
    }
}

static void expect_search_works(ndl_collection *c)
{
    float q[DIM];
    vec_of(3, q);
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = 1;
    ndl_results *r;
    assert_int_equal(ndl_collection_search(c, q, &p, &r, NULL), NDL_OK);
    assert_int_equal(ndl_results_count(r, 0), 1);
    assert_true(ndl_results_hits(r, 0)[0].distance == 0.0f);
    ndl_results_free(r);
}

static void test_fsync_failure_turns_read_only(void **state)
{
    (void)state;
    ndl_db *db = open_db("fsync");
    ndl_collection *c = create(db, "c");
    ndl_error e;
    assert_int_equal(put(c, 0, 20, &e), NDL_OK);
    io_fault_set(IO_OP_FSYNC, (io_fault){.after = 0, .times = 1, .error = EIO});
    ndl_status st = put(c, 100, 5, &e);
    assert_int_not_equal(st, NDL_OK); /* never acknowledged after a failed fsync */
    io_fault_reset();
    /* the disk works again, but the log may have lost pages: stay read-only */
    st = put(c, 200, 5, &e);
    assert_int_equal(st, NDL_READ_ONLY);
    assert_non_null(strstr(e.msg, "read-only"));
    expect_search_works(c);
    expect_present(c, 0, 20);
    ndl_db_close(db, NULL);
    /* reopened: every acknowledged write is there, and writes work again */
    db = open_db("fsync");
    assert_int_equal(ndl_collection_open(db, "c", &c, &e), NDL_OK);
    expect_present(c, 0, 20);
    assert_int_equal(put(c, 300, 5, &e), NDL_OK);
    assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
    ndl_db_close(db, NULL);
}

static void test_disk_full_then_space_frees(void **state)
{
    (void)state;
    ndl_db *db = open_db("full");
    ndl_collection *c = create(db, "c");
    ndl_error e;
    assert_int_equal(put(c, 0, 20, &e), NDL_OK);
    uint64_t before = ndl_collection_count(c);
    io_fault_set(IO_OP_WRITE, (io_fault){.after = 0, .times = -1, .error = ENOSPC, .short_by = 3});
    for (int i = 0; i < 3; i++) {
        ndl_status st = put(c, 100, 10, &e);
        if (st != NDL_DISK_FULL || !strstr(e.msg, "No space left"))
            fail_msg("expected disk_full naming ENOSPC, got %s: %s", ndl_status_name(st), e.msg);
    }
    assert_int_equal(ndl_collection_count(c), before); /* nothing half */
    expect_search_works(c);                             /* reads continue */
    io_fault_reset();                                   /* space frees */
    assert_int_equal(put(c, 100, 10, &e), NDL_OK);
    assert_int_equal(ndl_collection_count(c), before + 10);
    ndl_db_close(db, NULL);
    db = open_db("full");
    assert_int_equal(ndl_collection_open(db, "c", &c, &e), NDL_OK);
    expect_present(c, 0, 20);
    expect_present(c, 100, 10);
    assert_int_equal(ndl_collection_count(c), before + 10);
    ndl_db_close(db, NULL);
}

static void test_failing_checkpoint_loses_nothing(void **state)
{
    (void)state;
    ndl_db *db = open_db("ckpt");
    ndl_collection *c = create(db, "c");
    ndl_error e;
    assert_int_equal(put(c, 0, 30, &e), NDL_OK);
    io_fault_set(IO_OP_RENAME, (io_fault){.after = 0, .times = -1, .error = EIO});
    assert_int_not_equal(ndl_collection_flush(c, &e), NDL_OK);
    assert_int_not_equal(ndl_db_close(db, &e), NDL_OK); /* close's checkpoint fails too */
    io_fault_reset();
    db = open_db("ckpt");
    assert_int_equal(ndl_collection_open(db, "c", &c, &e), NDL_OK); /* replayed from the log */
    expect_present(c, 0, 30);
    assert_int_equal(ndl_collection_count(c), 30);
    assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
    ndl_db_close(db, NULL);
}

/* Flip one byte of DIR/<coll>/<file> at offset (from the end if negative). */
static void flip(const char *db, const char *coll, const char *file, long off)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s/%s", path_of(db), coll, file);
    FILE *f = fopen(p, "r+b");
    if (!f)
        fail_msg("cannot open %s", p);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long at = off < 0 ? size + off : off;
    fseek(f, at, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(ch ^ 0x10, f);
    fclose(f);
}

static void test_damage_is_named_and_isolated(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        long off;
    } cases[] = {{"MANIFEST", 70}, {"ids.1", 80}, {"graph.1", 100}, {"MANIFEST", 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sub[32];
        snprintf(sub, sizeof sub, "dmg%zu", i);
        ndl_db *db = open_db(sub);
        ndl_collection *a = create(db, "a"), *b = create(db, "b");
        ndl_error e;
        assert_int_equal(put(a, 0, 40, &e), NDL_OK);
        assert_int_equal(put(b, 0, 40, &e), NDL_OK);
        assert_int_equal(ndl_db_close(db, &e), NDL_OK);
        flip(sub, "a", cases[i].file, cases[i].off);
        db = open_db(sub);
        ndl_collection *c;
        ndl_status st = ndl_collection_open(db, "a", &c, &e);
        assert_int_equal(st, NDL_CORRUPT);
        if (!strstr(e.msg, cases[i].file))
            fail_msg("message does not name %s: %s", cases[i].file, e.msg);
        assert_int_equal(ndl_collection_open(db, "b", &c, &e), NDL_OK); /* others serve */
        expect_present(c, 0, 40);
        ndl_db_close(db, NULL);
    }
}

static void test_damaged_log_record_is_named(void **state)
{
    (void)state;
    ndl_db *db = open_db("wal");
    ndl_collection *c = create(db, "c");
    ndl_error e;
    /* three records, then "crash": copy the files while the log holds them */
    assert_int_equal(put(c, 0, 10, &e), NDL_OK);
    assert_int_equal(put(c, 10, 10, &e), NDL_OK);
    assert_int_equal(put(c, 20, 10, &e), NDL_OK);
    char dir[400], cmd[900];
    snprintf(dir, sizeof dir, "%s", path_of("wal")); /* path_of reuses one buffer */
    snprintf(cmd, sizeof cmd, "cp -r '%s/c' '%s/copy'", dir, dir);
    assert_int_equal(system(cmd), 0);
    ndl_db_close(db, NULL);
    /* damage the first record's payload: valid records follow, so this is
     * not a torn tail but damage, refused with the file and offset */
    flip("wal", "copy/wal", "wal-0000000000000001.log", 32 + 24 + 8);
    db = open_db("wal");
    ndl_status st = ndl_collection_open(db, "copy", &c, &e);
    assert_int_equal(st, NDL_CORRUPT);
    if (!strstr(e.msg, "wal-0000000000000001.log"))
        fail_msg("message does not name the log file: %s", e.msg);
    ndl_db_close(db, NULL);
}

/* A crash leaves the log with a torn last record: reopening cuts it off,
 * keeps every earlier record, and says what it dropped. */
static void test_torn_log_tail_is_dropped_and_reported(void **state)
{
    (void)state;
    ndl_db *db = open_db("torn");
    ndl_collection *c = create(db, "c");
    ndl_error e;
    assert_int_equal(put(c, 0, 10, &e), NDL_OK);
    assert_int_equal(put(c, 10, 10, &e), NDL_OK);
    assert_int_equal(put(c, 20, 10, &e), NDL_OK);
    char dir[400], cmd[1400];
    snprintf(dir, sizeof dir, "%s", path_of("torn")); /* path_of reuses one buffer */
    snprintf(cmd, sizeof cmd,
             "cp -r '%s/c' '%s/copy' && truncate -s -5 '%s/copy/wal/wal-0000000000000001.log'",
             dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    ndl_db_close(db, NULL);
    db = open_db("torn");
    assert_int_equal(ndl_collection_open(db, "copy", &c, &e), NDL_OK);
    expect_present(c, 0, 20);
    assert_int_equal(ndl_collection_count(c), 20); /* the torn batch is gone, whole */
    ndl_collection_info info;
    assert_int_equal(ndl_collection_info_get(c, &info, &e), NDL_OK);
    assert_true(info.dropped_log_bytes > 0);
    assert_non_null(strstr(info.dropped_log_at, "wal-0000000000000001.log"));
    assert_int_equal(put(c, 20, 10, &e), NDL_OK); /* and writing goes on */
    assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
    ndl_db_close(db, NULL);
}

/* Out of memory while applying a logged write: the write fails, a cancel
 * record keeps replay from applying it, and the collection refuses writes
 * until reopened; after reopening the batch is absent and writes work. */
static void test_failed_apply_is_cancelled(void **state)
{
    (void)state;
    int cancelled = 0;
    for (long n = 0; n < 400 && !cancelled; n++) {
        char sub[32];
        snprintf(sub, sizeof sub, "oom%ld", n);
        ndl_db *db = open_db(sub);
        ndl_collection *c = create(db, "c");
        ndl_error e;
        assert_int_equal(put(c, 0, 10, &e), NDL_OK);
        ndl_alloc_fail_after(n);
        ndl_status st = put(c, 100, 10, &e);
        ndl_alloc_fail_after(-1);
        if (st == NDL_OK) {
            ndl_db_close(db, NULL);
            break; /* past every allocation of the write path */
        }
        assert_int_equal(st, NDL_NOMEM);
        if (put(c, 200, 1, &e) == NDL_READ_ONLY) { /* it failed after logging */
            cancelled = 1;
            assert_non_null(strstr(e.msg, "reopened"));
            ndl_db_close(db, NULL);
            db = open_db(sub);
            assert_int_equal(ndl_collection_open(db, "c", &c, &e), NDL_OK);
            expect_present(c, 0, 10);
            assert_int_equal(ndl_collection_count(c), 10); /* replay skipped it */
            assert_int_equal(put(c, 300, 5, &e), NDL_OK);
            assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
        }
        ndl_db_close(db, NULL);
    }
    assert_true(cancelled);
}

static void test_background_checkpoint_by_time(void **state)
{
    (void)state;
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.checkpoint_interval_ms = 30;
    ndl_db *db;
    ndl_error e;
    assert_int_equal(ndl_db_open(path_of("tick"), &o, &db, &e), NDL_OK);
    ndl_collection *c = create(db, "c");
    assert_int_equal(put(c, 0, 10, &e), NDL_OK);
    char p[600];
    snprintf(p, sizeof p, "%s/c/vectors.1", path_of("tick"));
    struct stat st;
    int found = 0;
    for (int i = 0; i < 200 && !found; i++) { /* up to 2 s on a loaded machine */
        found = stat(p, &st) == 0;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_true(found); /* checkpointed while open, without close or flush */
    assert_int_equal(put(c, 10, 10, &e), NDL_OK); /* writes continue after it */
    assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
    ndl_db_close(db, NULL);
}

/* A clean close checkpoints everything: the log keeps no covered record
 * (reopening reads none), its LSNs go on, and nothing is lost. */
/* Bytes of the files in dir. */
static uint64_t dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char p[1100];
        struct stat st;
        snprintf(p, sizeof p, "%.700s/%s", dir, de->d_name);
        if (de->d_name[0] != '.' && stat(p, &st) == 0)
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

/* The size trigger: a log past checkpoint_wal_bytes is checkpointed by
 * the background thread (no timer, no close, no flush), and the covered
 * segments go although writes went on meanwhile (a checkpoint rolls the
 * log at its snapshot). */
static void test_background_checkpoint_by_size(void **state)
{
    (void)state;
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.checkpoint_interval_ms = 0;
    o.checkpoint_wal_bytes = 16 << 10;
    ndl_db *db;
    ndl_error e;
    assert_int_equal(ndl_db_open(path_of("size"), &o, &db, &e), NDL_OK);
    ndl_collection *c = create(db, "c");
    for (uint64_t i = 0; i < 20; i++) /* 20 x 64 x 24 bytes of vectors: past 16 KiB */
        assert_int_equal(put(c, i * 64, 64, &e), NDL_OK);
    char wal_dir[600];
    snprintf(wal_dir, sizeof wal_dir, "%s/c/wal", path_of("size"));
    uint64_t log_bytes = UINT64_MAX;
    for (int i = 0; i < 500 && log_bytes >= (16 << 10); i++) { /* cut after the manifest */
        log_bytes = dir_bytes(wal_dir);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_true(log_bytes < (16 << 10)); /* checkpointed, covered segments gone */
    assert_int_equal(put(c, 5000, 10, &e), NDL_OK); /* writes go on */
    expect_present(c, 0, 64);
    expect_present(c, 5000, 10);
    assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
    ndl_db_close(db, NULL);
}

static void test_close_leaves_no_covered_log(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        ndl_db *db = open_db("clean");
        ndl_collection *c;
        ndl_error e;
        if (round == 0)
            c = create(db, "c");
        else
            assert_int_equal(ndl_collection_open(db, "c", &c, &e), NDL_OK);
        assert_int_equal(put(c, (uint64_t)round * 40, 40, &e), NDL_OK);
        expect_present(c, 0, 40 + (size_t)round * 40);
        assert_int_equal(ndl_db_close(db, &e), NDL_OK);
        char dir[400], cmd[1000];
        snprintf(dir, sizeof dir, "%s", path_of("clean"));
        snprintf(cmd, sizeof cmd, "test $(ls '%s/c/wal' | wc -l) = 1 && "
                 "test $(stat -c %%s '%s'/c/wal/wal-*.log) = 32", dir, dir);
        if (system(cmd) != 0)
            fail_msg("round %d: the log after a clean close is not one empty segment", round);
    }
    ndl_db *db = open_db("clean");
    ndl_collection *c;
    assert_int_equal(ndl_collection_open(db, "c", &c, NULL), NDL_OK);
    assert_int_equal(ndl_collection_count(c), 80);
    assert_int_equal(ndl_collection_check(c, NULL), NDL_OK);
    ndl_db_close(db, NULL);
}

/* ---------------------------------------------------------------- salvage */

static ndl_db *open_salvage(const char *sub)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.salvage = 1;
    ndl_db *db = NULL;
    ndl_error e;
    if (ndl_db_open(path_of(sub), &o, &db, &e) != NDL_OK)
        fail_msg("salvage open: %s", e.msg);
    return db;
}

static char *slurp(const char *db, const char *coll, const char *file, long *len)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s/%s", path_of(db), coll, file);
    FILE *f = fopen(p, "rb");
    if (!f)
        fail_msg("cannot open %s", p);
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)*len + 1);
    assert_int_equal(fread(b, 1, (size_t)*len, f), (size_t)*len);
    fclose(f);
    return b;
}

static void expect_salvaged(ndl_collection *c, const char *what)
{
    ndl_collection_info info;
    assert_int_equal(ndl_collection_info_get(c, &info, NULL), NDL_OK);
    if (!strstr(info.salvaged, what))
        fail_msg("salvage note '%s' does not say '%s'", info.salvaged, what);
    ndl_error e;
    assert_int_equal(put(c, 1000, 1, &e), NDL_READ_ONLY); /* salvage never writes */
}

/* Every stored vector is its own nearest neighbour through the graph. */
static void expect_graph_finds_all(ndl_collection *c, uint64_t from, uint64_t to)
{
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = 1;
    for (uint64_t i = from; i < to; i++) {
        float q[DIM];
        vec_of(i, q);
        ndl_results *r;
        assert_int_equal(ndl_collection_search(c, q, &p, &r, NULL), NDL_OK);
        assert_int_equal(ndl_results_count(r, 0), 1);
        assert_true(ndl_results_hits(r, 0)[0].distance == 0.0f);
        assert_string_equal(ndl_results_plan(r), "hnsw");
        ndl_results_free(r);
    }
}

/* Damage in the middle of the log: refused normally; salvage replays the
 * records before it, says where it stopped, and leaves the file as it was. */
static void test_salvage_log_up_to_damage(void **state)
{
    (void)state;
    ndl_db *db = open_db("slog");
    ndl_collection *c = create(db, "c");
    create(db, "other");
    ndl_error e;
    for (uint64_t b = 0; b < 4; b++)
        assert_int_equal(put(c, b * 10, 10, &e), NDL_OK);
    char dir[400], cmd[900];
    snprintf(dir, sizeof dir, "%s", path_of("slog"));
    snprintf(cmd, sizeof cmd, "cp -r '%s/c' '%s/copy'", dir, dir);
    assert_int_equal(system(cmd), 0);
    ndl_db_close(db, NULL);
    /* the second record: after the 32-byte segment header and the first
     * record (24-byte header + its length, padded to 8) */
    long len;
    char *seg = slurp("slog", "copy/wal", "wal-0000000000000001.log", &len);
    uint32_t first_len;
    memcpy(&first_len, seg + 32, 4);
    free(seg);
    long second = 32 + (long)((24 + first_len + 7) / 8 * 8);
    flip("slog", "copy/wal", "wal-0000000000000001.log", second + 24 + 4);
    char *before = slurp("slog", "copy/wal", "wal-0000000000000001.log", &len);

    db = open_db("slog");
    assert_int_equal(ndl_collection_open(db, "copy", &c, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, "wal-0000000000000001.log"));
    ndl_db_close(db, NULL);

    db = open_salvage("slog");
    assert_int_equal(ndl_collection_open(db, "copy", &c, &e), NDL_OK);
    assert_int_equal(ndl_collection_count(c), 10); /* the first batch, before the damage */
    expect_present(c, 0, 10);
    expect_search_works(c);
    expect_salvaged(c, "log cut short");
    assert_int_equal(ndl_collection_open(db, "other", &c, &e), NDL_OK);
    ndl_db_close(db, NULL);
    long len2;
    char *after = slurp("slog", "copy/wal", "wal-0000000000000001.log", &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(before, after, (size_t)len);
    free(before);
    free(after);
}

/* A damaged graph file: salvage rebuilds the graph from the vectors. */
static void test_salvage_rebuilds_graph(void **state)
{
    (void)state;
    ndl_db *db = open_db("sgraph");
    ndl_collection *c = create(db, "c");
    ndl_error e;
    assert_int_equal(put(c, 0, 60, &e), NDL_OK);
    ndl_id gone = ndl_id_u64(7);
    assert_int_equal(ndl_collection_delete(c, 1, &gone, NULL, &e), NDL_OK);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    flip("sgraph", "c", "graph.1", 100);
    db = open_salvage("sgraph");
    assert_int_equal(ndl_collection_open(db, "c", &c, &e), NDL_OK);
    expect_salvaged(c, "graph rebuilt");
    assert_int_equal(ndl_collection_count(c), 59);
    float v[DIM];
    assert_int_equal(ndl_collection_get(c, gone, v, &e), NDL_NOT_FOUND);
    expect_present(c, 0, 7);
    expect_present(c, 8, 52);
    assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
    /* every live point reachable through the rebuilt graph */
    expect_graph_finds_all(c, 0, 7);
    expect_graph_finds_all(c, 8, 60);
    ndl_db_close(db, NULL);
}

/* A damaged payload file: salvage keeps the points, without payloads. */
static void test_salvage_drops_damaged_payloads(void **state)
{
    (void)state;
    ndl_db *db = open_db("spayl");
    ndl_collection *c = create(db, "c");
    ndl_error e;
    ndl_id ids[3] = {ndl_id_u64(1), ndl_id_u64(2), ndl_id_u64(3)};
    float v[3 * DIM];
    for (int i = 0; i < 3; i++)
        vec_of((uint64_t)i + 1, v + i * DIM);
    const char *pl[3] = {"{\"a\":1}", "{\"b\":2}", NULL};
    assert_int_equal(ndl_collection_upsert_points(c, 3, ids, v, pl, NULL, &e), NDL_OK);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    flip("spayl", "c", "payloads.1", -3);
    db = open_db("spayl");
    assert_int_equal(ndl_collection_open(db, "c", &c, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, "payloads.1"));
    ndl_db_close(db, NULL);
    db = open_salvage("spayl");
    assert_int_equal(ndl_collection_open(db, "c", &c, &e), NDL_OK);
    expect_salvaged(c, "payloads lost");
    expect_present(c, 1, 3);
    char *payload = (char *)"unset";
    assert_int_equal(ndl_collection_get_point(c, ids[0], NULL, &payload, &e), NDL_OK);
    assert_null(payload);
    ndl_db_close(db, NULL);
}

/* What salvage cannot rebuild (the ids, the manifest) stays a clean error;
 * on a healthy collection salvage notes nothing and is read-only. */
static void test_salvage_limits(void **state)
{
    (void)state;
    ndl_db *db = open_db("slim");
    ndl_collection *c = create(db, "c");
    create(db, "ok");
    ndl_error e;
    assert_int_equal(put(c, 0, 20, &e), NDL_OK);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    flip("slim", "c", "ids.1", 80);
    db = open_salvage("slim");
    assert_int_equal(ndl_collection_open(db, "c", &c, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, "ids.1"));
    assert_int_equal(ndl_collection_open(db, "ok", &c, &e), NDL_OK);
    ndl_collection_info info;
    assert_int_equal(ndl_collection_info_get(c, &info, &e), NDL_OK);
    assert_string_equal(info.salvaged, "");
    assert_int_equal(put(c, 0, 1, &e), NDL_READ_ONLY);
    ndl_collection *made;
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = DIM;
    assert_int_equal(ndl_collection_create(db, "new", &cfg, &made, &e), NDL_READ_ONLY);
    ndl_db_close(db, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fsync_failure_turns_read_only, reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(test_disk_full_then_space_frees, reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(test_failing_checkpoint_loses_nothing, reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(test_damage_is_named_and_isolated, reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(test_damaged_log_record_is_named, reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(test_torn_log_tail_is_dropped_and_reported, reset_faults,
                                        reset_faults),
        cmocka_unit_test_setup_teardown(test_failed_apply_is_cancelled, reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(test_background_checkpoint_by_time, reset_faults,
                                        reset_faults),
        cmocka_unit_test(test_background_checkpoint_by_size),
        cmocka_unit_test(test_close_leaves_no_covered_log),
        cmocka_unit_test(test_salvage_log_up_to_damage),
        cmocka_unit_test(test_salvage_rebuilds_graph),
        cmocka_unit_test(test_salvage_drops_damaged_payloads),
        cmocka_unit_test(test_salvage_limits),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
