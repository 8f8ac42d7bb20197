/*
 * test_verify.c -- the vectors a collection opens from are mapped unread and
 * verified afterwards (src/db/verifier.c, vectors_file.h):
 *   - a collection of three chunks (two full, one partial) round-trips:
 *     reopen, verify, append into the partial chunk (mapped privately: the
 *     file does not change), checkpoint (which compares the old records
 *     with their CRCs as it copies), reopen again;
 *   - the background thread finds a flipped bit without being asked, and
 *     the collection then answers NDL_CORRUPT naming file and chunk;
 *   - with the thread held off, a checkpoint and a compaction find the flip
 *     themselves, and refuse to copy it under a fresh checksum;
 *   - verify_on_open refuses the open instead;
 *   - check reads the file on disk again and names a damaged chunk;
 *   - a version 1 file (no chunk CRCs) still opens, verified in full.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "db/db_internal.h" /* coll_verifier_hold */
#include "needle.h"
#include "storage/sfile.h"

#define DIM 4
#define NPOINTS (2 * ARENA_CHUNK_SLOTS + 500) /* two full chunks and a partial one */

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle-test-verify-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    coll_verifier_hold(false);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd);
}

static const char *path_of(const char *sub)
{
    static char p[400];
    snprintf(p, sizeof p, "%s/%s", tmpdir, sub);
    return p;
}

static ndl_db *open_db(const char *sub, int verify_on_open)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.checkpoint_interval_ms = 0;
    o.verify_on_open = verify_on_open;
    ndl_db *db = NULL;
    ndl_error e;
    if (ndl_db_open(path_of(sub), &o, &db, &e) != NDL_OK)
        fail_msg("open: %s", e.msg);
    return db;
}

static float coord(uint64_t id, uint32_t j) { return (float)((id * 7919 + j * 104729) % 1000) / 100.0f; }

static void upsert_range(ndl_collection *c, uint64_t from, uint64_t to)
{
    enum { BATCH = 4096 };
    static ndl_id ids[BATCH];
    static float v[BATCH * DIM];
    for (uint64_t at = from; at < to; at += BATCH) {
        size_t n = (size_t)(to - at < BATCH ? to - at : BATCH);
        for (size_t i = 0; i < n; i++) {
            ids[i] = ndl_id_u64(at + i);
            for (uint32_t j = 0; j < DIM; j++)
                v[i * DIM + j] = coord(at + i, j);
        }
        ndl_error e;
        if (ndl_collection_upsert(c, n, ids, v, NULL, &e) != NDL_OK)
            fail_msg("upsert: %s", e.msg);
    }
}

static void expect_points(ndl_collection *c, uint64_t n)
{
    assert_int_equal(ndl_collection_count(c), n);
    for (uint64_t id = 0; id < n; id++) {
        float v[DIM];
        assert_int_equal(ndl_collection_get(c, ndl_id_u64(id), v, NULL), NDL_OK);
        for (uint32_t j = 0; j < DIM; j++)
            if (v[j] != coord(id, j))
                fail_msg("point %llu reads back another vector", (unsigned long long)id);
    }
}

/* A flat collection `name` in database sub holding points 0..NPOINTS-1,
 * checkpointed and closed. */
static void build(const char *sub, const char *name)
{
    ndl_db *db = open_db(sub, 0);
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = DIM;
    cfg.index = NDL_INDEX_FLAT;
    ndl_collection *c;
    ndl_error e;
    if (ndl_collection_create(db, name, &cfg, &c, &e) != NDL_OK)
        fail_msg("create: %s", e.msg);
    upsert_range(c, 0, NPOINTS);
    assert_int_equal(ndl_collection_close(c, &e), NDL_OK);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
}

/* Path of the (one) vectors file of sub/name. */
static void vectors_path(const char *sub, const char *name, char *out, size_t cap)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%.200s/%.40s/%.40s", tmpdir, sub, name);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, "vectors.", 8) == 0) {
            snprintf(out, cap, "%s/%.60s", dir, de->d_name);
            found++;
        }
    closedir(d);
    assert_int_equal(found, 1);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Flip a bit of the vector of slot in the vectors file of sub/name. */
static void flip_vector(const char *sub, const char *name, uint32_t slot)
{
    char p[512];
    vectors_path(sub, name, p, sizeof p);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    long off = SFILE_HEADER_BYTES + (long)slot * DIM * 4 + 2;
    fseek(f, off, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(ch ^ 0x10, f);
    fclose(f);
}

static ndl_collection *open_coll(ndl_db *db, const char *name)
{
    ndl_collection *c;
    ndl_error e;
    if (ndl_collection_open(db, name, &c, &e) != NDL_OK)
        fail_msg("open '%s': %s", name, e.msg);
    return c;
}

static void test_three_chunks_round_trip(void **state)
{
    (void)state;
    build("rt", "v");
    char vp[512];
    vectors_path("rt", "v", vp, sizeof vp);
    size_t len0;
    uint8_t *before = slurp(vp, &len0);

    ndl_db *db = open_db("rt", 0);
    ndl_collection *c = open_coll(db, "v");
    ndl_error e;
    assert_int_equal(ndl_collection_verify(c, &e), NDL_OK);
    expect_points(c, NPOINTS);
    /* appends fill the partial third chunk, which is the file mapped
     * privately: the file must not change */
    upsert_range(c, NPOINTS, NPOINTS + 700);
    size_t len1;
    uint8_t *after = slurp(vp, &len1);
    assert_int_equal(len1, len0);
    assert_memory_equal(after, before, len0);
    free(after);
    free(before);
    expect_points(c, NPOINTS + 700);
    assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
    assert_int_equal(ndl_collection_close(c, &e), NDL_OK); /* a checkpoint */
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);

    for (int verify_on_open = 0; verify_on_open < 2; verify_on_open++) {
        db = open_db("rt", verify_on_open);
        c = open_coll(db, "v");
        expect_points(c, NPOINTS + 700);
        assert_int_equal(ndl_collection_verify(c, &e), NDL_OK);
        assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
        ndl_collection_info info;
        assert_int_equal(ndl_collection_info_get(c, &info, &e), NDL_OK);
        assert_string_equal(info.damaged, "");
        assert_int_equal(ndl_collection_close(c, &e), NDL_OK);
        assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    }
}

static void test_background_thread_finds_a_flip(void **state)
{
    (void)state;
    build("bg", "v");
    flip_vector("bg", "v", ARENA_CHUNK_SLOTS + 17);
    ndl_db *db = open_db("bg", 0);
    ndl_collection *c = open_coll(db, "v"); /* mapped, not read */
    ndl_collection_info info;
    ndl_error e;
    /* nothing asks: the thread finds it (a 30 s bound: a hang is a failure) */
    for (int i = 0; i < 3000; i++) {
        assert_int_equal(ndl_collection_info_get(c, &info, &e), NDL_OK);
        if (info.damaged[0])
            break;
        usleep(10000);
    }
    if (!strstr(info.damaged, "chunk 1 (slots 65536..131071)"))
        fail_msg("info.damaged: \"%s\"", info.damaged);
    float q[DIM] = {0};
    ndl_results *r = NULL;
    assert_int_equal(ndl_collection_search(c, q, NULL, &r, &e), NDL_CORRUPT);
    assert_null(r);
    assert_non_null(strstr(e.msg, "collection 'v' is damaged"));
    assert_non_null(strstr(e.msg, "vectors."));
    ndl_id id = ndl_id_u64(1);
    assert_int_equal(ndl_collection_upsert(c, 1, &id, q, NULL, &e), NDL_CORRUPT);
    assert_int_equal(ndl_collection_delete(c, 1, &id, NULL, &e), NDL_CORRUPT);
    assert_int_equal(ndl_collection_verify(c, &e), NDL_CORRUPT);
    assert_int_equal(ndl_collection_close(c, &e), NDL_CORRUPT);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    /* another collection of the database is not affected */
    db = open_db("bg", 0);
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = DIM;
    assert_int_equal(ndl_collection_create(db, "w", &cfg, &c, &e), NDL_OK);
    upsert_range(c, 0, 10);
    assert_int_equal(ndl_collection_close(c, &e), NDL_OK);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
}

/* The vectors file of sub/name is unchanged (same name, same bytes). */
static void expect_same_file(const char *sub, const char *name, const char *path,
                             const uint8_t *bytes, size_t len)
{
    char now[512];
    vectors_path(sub, name, now, sizeof now);
    assert_string_equal(now, path);
    size_t n;
    uint8_t *b = slurp(now, &n);
    assert_int_equal(n, len);
    assert_memory_equal(b, bytes, len);
    free(b);
}

static void test_checkpoint_refuses_to_copy_a_flip(void **state)
{
    (void)state;
    build("ck", "v");
    flip_vector("ck", "v", 5);
    char vp[512];
    vectors_path("ck", "v", vp, sizeof vp);
    size_t len;
    uint8_t *damaged = slurp(vp, &len);
    coll_verifier_hold(true);
    ndl_db *db = open_db("ck", 0);
    ndl_collection *c = open_coll(db, "v");
    ndl_id id = ndl_id_u64(NPOINTS + 1);
    float v[DIM] = {1, 2, 3, 4};
    ndl_error e;
    assert_int_equal(ndl_collection_upsert(c, 1, &id, v, NULL, &e), NDL_OK);
    assert_int_equal(ndl_collection_flush(c, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, "chunk 0 (slots 0..65535)"));
    expect_same_file("ck", "v", vp, damaged, len); /* no new generation */
    assert_int_equal(ndl_collection_get(c, id, v, &e), NDL_CORRUPT);
    assert_int_equal(ndl_collection_close(c, &e), NDL_CORRUPT);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    coll_verifier_hold(false);
    /* the acknowledged upsert is in the log; the damage is still found */
    db = open_db("ck", 1);
    assert_int_equal(ndl_collection_open(db, "v", &c, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, vp));
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    expect_same_file("ck", "v", vp, damaged, len);
    free(damaged);
}

static void test_compaction_refuses_to_copy_a_flip(void **state)
{
    (void)state;
    build("cp", "v");
    flip_vector("cp", "v", 2 * ARENA_CHUNK_SLOTS + 3); /* the partial chunk */
    coll_verifier_hold(true);
    ndl_db *db = open_db("cp", 0);
    ndl_collection *c = open_coll(db, "v");
    enum { NDEL = NPOINTS / 3 };
    ndl_id *ids = malloc(NDEL * sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < NDEL; i++)
        ids[i] = ndl_id_u64(i * 3);
    ndl_error e;
    assert_int_equal(ndl_collection_delete(c, NDEL, ids, NULL, &e), NDL_OK);
    free(ids);
    assert_int_equal(ndl_collection_compact(c, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, "chunk 2 (slots 131072..131571)"));
    ndl_collection_info info;
    assert_int_equal(ndl_collection_info_get(c, &info, &e), NDL_OK);
    assert_int_equal(info.deleted, NDEL); /* nothing was reclaimed */
    assert_int_equal(ndl_collection_close(c, &e), NDL_CORRUPT);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    coll_verifier_hold(false);
}

static void test_verify_on_open_refuses(void **state)
{
    (void)state;
    build("vo", "v");
    flip_vector("vo", "v", NPOINTS - 1);
    ndl_db *db = open_db("vo", 1);
    ndl_collection *c;
    ndl_error e;
    assert_int_equal(ndl_collection_open(db, "v", &c, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, "chunk 2"));
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
}

/* check reads the file on disk again: damage that came after the open
 * (and after the verification of what was mapped) is named by chunk. */
static void test_check_reads_the_file_again(void **state)
{
    (void)state;
    build("cf", "v");
    ndl_db *db = open_db("cf", 0);
    ndl_collection *c = open_coll(db, "v");
    ndl_error e;
    assert_int_equal(ndl_collection_verify(c, &e), NDL_OK);
    assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
    flip_vector("cf", "v", ARENA_CHUNK_SLOTS + 5);
    assert_int_equal(ndl_collection_check(c, &e), NDL_CORRUPT);
    if (!strstr(e.msg, "vectors chunk 1 (slots 65536..131071)"))
        fail_msg("check says: %s", e.msg);
    assert_int_equal(ndl_collection_close(c, &e), NDL_OK);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
}

/* Rewrite the vectors file of sub/name as format version 1 (the records
 * only, under the whole-data CRC). */
static void downgrade_to_v1(const char *sub, const char *name, uint32_t slots)
{
    char vp[512];
    vectors_path(sub, name, vp, sizeof vp);
    size_t len;
    uint8_t *b = slurp(vp, &len);
    sfile_writer *w;
    ndl_error e;
    assert_int_equal(sfile_create(vp, SFILE_KIND('V', 'E', 'C', 'S'), 1, &w, &e), NDL_OK);
    assert_int_equal(sfile_write(w, b + SFILE_HEADER_BYTES, (size_t)slots * DIM * 4, &e), NDL_OK);
    assert_int_equal(sfile_commit(w, &e), NDL_OK);
    free(b);
}

static void test_version_1_file_is_verified_at_open(void **state)
{
    (void)state;
    build("v1", "v");
    downgrade_to_v1("v1", "v", NPOINTS);
    ndl_db *db = open_db("v1", 0);
    ndl_collection *c = open_coll(db, "v");
    ndl_error e;
    assert_int_equal(ndl_collection_verify(c, &e), NDL_OK); /* nothing left to do */
    expect_points(c, NPOINTS);
    assert_int_equal(ndl_collection_check(c, &e), NDL_OK);
    assert_int_equal(ndl_collection_close(c, &e), NDL_OK); /* nothing changed: no new file */
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    flip_vector("v1", "v", 9);
    db = open_db("v1", 0);
    assert_int_equal(ndl_collection_open(db, "v", &c, &e), NDL_CORRUPT);
    assert_non_null(strstr(e.msg, "data checksum mismatch"));
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_chunks_round_trip),
        cmocka_unit_test(test_background_thread_finds_a_flip),
        cmocka_unit_test(test_checkpoint_refuses_to_copy_a_flip),
        cmocka_unit_test(test_compaction_refuses_to_copy_a_flip),
        cmocka_unit_test(test_verify_on_open_refuses),
        cmocka_unit_test(test_check_reads_the_file_again),
        cmocka_unit_test(test_version_1_file_is_verified_at_open),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
