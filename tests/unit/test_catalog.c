/*
 * test_catalog.c -- the database's catalog log (src/db/catalog.c): creates
 * and drops are logged before the directory changes; reopening finishes
 * what a crash interrupted (simulated by removing a directory or appending
 * a record through the log API with the database closed); damage is named;
 * a read-only open writes nothing; refused input logs nothing; failures
 * after the commit are cancelled, or settled by the next open.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "db/catalog.h"
#include "needle.h"
#include "storage/io.h"
#include "storage/wal.h"
#include "storage/wal_internal.h"
#include "util/alloc.h"

#define DIM 4
#define SEG1 ".catalog/wal-0000000000000001.log"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    io_fault_reset();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle-test-cat-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    io_fault_reset();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd);
}

/* tmpdir/db/<rel> ("" = the database) */
static const char *at(const char *rel)
{
    static char p[2][400];
    static int i;
    i ^= 1;
    snprintf(p[i], sizeof p[i], "%s/db%s%s", tmpdir, *rel ? "/" : "", rel);
    return p[i];
}

static int exists(const char *rel)
{
    struct stat st;
    return lstat(at(rel), &st) == 0;
}

static void rm_rf(const char *rel)
{
    char cmd[500];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", at(rel));
    assert_int_equal(system(cmd), 0);
}

static void make_dir(const char *rel)
{
    assert_int_equal(mkdir(at(rel), 0755), 0);
}

static void write_file(const char *rel, const char *text)
{
    FILE *f = fopen(at(rel), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static ndl_status try_open(int read_only, ndl_db **db, ndl_error *e)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.read_only = read_only;
    return ndl_db_open(at(""), &o, db, e);
}

static ndl_db *open_db(int read_only)
{
    ndl_db *db = NULL;
    ndl_error e;
    if (try_open(read_only, &db, &e) != NDL_OK)
        fail_msg("open: %s", e.msg);
    return db;
}

static void config(ndl_collection_config *cfg, uint32_t dim)
{
    ndl_collection_config_init(cfg);
    cfg->dimension = dim;
    cfg->hnsw_m = 8;
}

static void create(ndl_db *db, const char *name, uint32_t dim)
{
    ndl_collection_config cfg;
    config(&cfg, dim);
    ndl_error e;
    if (ndl_collection_create(db, name, &cfg, NULL, &e) != NDL_OK)
        fail_msg("create %s: %s", name, e.msg);
}

static void drop(ndl_db *db, const char *name)
{
    ndl_error e;
    if (ndl_collection_drop(db, name, &e) != NDL_OK)
        fail_msg("drop %s: %s", name, e.msg);
}

/* upsert ids 0..n-1 into name */
static void fill(ndl_db *db, const char *name, size_t n)
{
    ndl_collection *c;
    ndl_error e;
    assert_int_equal(ndl_collection_open(db, name, &c, &e), NDL_OK);
    ndl_id ids[16];
    float v[16 * DIM];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        ids[i] = ndl_id_u64(i);
        for (int j = 0; j < DIM; j++)
            v[i * DIM + j] = (float)(i * 10 + (size_t)j);
    }
    assert_int_equal(ndl_collection_upsert(c, n, ids, v, NULL, &e), NDL_OK);
    assert_int_equal(ndl_collection_close(c, &e), NDL_OK);
}

static uint64_t count_of(ndl_db *db, const char *name)
{
    ndl_collection *c;
    ndl_error e;
    if (ndl_collection_open(db, name, &c, &e) != NDL_OK)
        fail_msg("open %s: %s", name, e.msg);
    uint64_t n = ndl_collection_count(c);
    ndl_collection_close(c, NULL);
    return n;
}

/* the collection names, comma-separated */
static const char *names(ndl_db *db)
{
    static char out[512];
    char **v;
    size_t n;
    ndl_error e;
    assert_int_equal(ndl_collection_list(db, &v, &n, &e), NDL_OK);
    out[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? "," : "", v[i]);
    ndl_free(v);
    return out;
}

/* ---------------------------------------------------------------- the log, raw */

typedef struct rec {
    uint64_t lsn;
    uint32_t type;
    uint8_t data[160];
    size_t len;
} rec;

typedef struct recs {
    rec r[64];
    size_t n;
} recs;

static ndl_status keep(void *ctx, uint64_t lsn, uint32_t type, const void *data, size_t len,
                       ndl_error *err)
{
    (void)err;
    recs *rs = ctx;
    assert_true(rs->n < 64 && len <= sizeof rs->r[0].data);
    rec *r = &rs->r[rs->n++];
    r->lsn = lsn;
    r->type = type;
    memcpy(r->data, data, len);
    r->len = len;
    return NDL_OK;
}

/* every record in the catalog (the database closed) */
static void read_catalog(recs *rs)
{
    wal_options o;
    wal_options_init(&o);
    o.read_only = 1;
    wal *w;
    ndl_error e;
    if (wal_open(at(".catalog"), &o, &w, NULL, &e) != NDL_OK)
        fail_msg("wal_open: %s", e.msg);
    rs->n = 0;
    assert_int_equal(wal_read(w, 1, keep, rs, &e), NDL_OK);
    wal_close(w, NULL);
}

/* Every record of the catalog but the seals, checking that each
 * acknowledged record (CREATE, DROP, CANCEL) is followed by its SEAL. */
static void read_ops(recs *rs)
{
    read_catalog(rs);
    size_t n = 0;
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->r[i].type == CATALOG_SEAL)
            continue;
        if (i + 1 == rs->n || rs->r[i + 1].type != CATALOG_SEAL)
            fail_msg("record %llu (type %u) is not sealed", (unsigned long long)rs->r[i].lsn,
                     rs->r[i].type);
        rs->r[n++] = rs->r[i];
    }
    rs->n = n;
}

/* what a crash right after a commit leaves: the record, nothing else
 * (no seal); returns its LSN */
static uint64_t append_raw(uint32_t type, const void *data, size_t len)
{
    wal *w;
    ndl_error e;
    uint64_t lsn;
    if (wal_open(at(".catalog"), NULL, &w, NULL, &e) != NDL_OK)
        fail_msg("wal_open: %s", e.msg);
    assert_int_equal(wal_append(w, type, data, len, &lsn, &e), NDL_OK);
    assert_int_equal(wal_commit(w, lsn, &e), NDL_OK);
    assert_int_equal(wal_close(w, &e), NDL_OK);
    return lsn;
}

static size_t put32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return 4;
}

static size_t put64(uint8_t *b, uint64_t v)
{
    put32(b, (uint32_t)v);
    return 4 + put32(b + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* version, name length, name */
static size_t head(uint8_t *b, uint32_t version, const char *name)
{
    size_t n = put32(b, version);
    n += put32(b + n, (uint32_t)strlen(name));
    memcpy(b + n, name, strlen(name));
    return n + strlen(name);
}

static uint64_t append_drop(const char *name)
{
    uint8_t b[80];
    return append_raw(CATALOG_DROP, b, head(b, CATALOG_RECORD_VERSION, name));
}

static void append_cancel(uint64_t lsn)
{
    uint8_t b[16];
    size_t n = put32(b, CATALOG_RECORD_VERSION);
    append_raw(CATALOG_CANCEL, b, n + put64(b + n, lsn));
}

/* ---------------------------------------------------------------- a tree snapshot */

static char *snap;
static size_t snap_len;

static int snap_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)flag, (void)f;
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the content */
    if (S_ISREG(st->st_mode)) {
        FILE *fp = fopen(path, "rb");
        int ch;
        while (fp && (ch = fgetc(fp)) != EOF)
            h = (h ^ (uint8_t)ch) * 1099511628211ull;
        if (fp)
            fclose(fp);
    }
    char line[700];
    int n = snprintf(line, sizeof line, "%s %o %lld %lld.%09ld %llx\n", path, st->st_mode,
                     (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
                     (unsigned long long)h);
    snap = realloc(snap, snap_len + (size_t)n + 1);
    memcpy(snap + snap_len, line, (size_t)n + 1);
    snap_len += (size_t)n;
    return 0;
}

/* every path under the database with mode, size, mtime and content hash */
static char *tree(void)
{
    snap = NULL;
    snap_len = 0;
    assert_int_equal(nftw(at(""), snap_one, 16, FTW_PHYS), 0);
    return snap;
}

/* ---------------------------------------------------------------- tests */

static void test_create_and_drop_are_logged(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    ndl_collection_config cfg;
    config(&cfg, 5);
    cfg.metric = NDL_METRIC_COSINE;
    cfg.index = NDL_INDEX_FLAT;
    cfg.seed = 7;
    ndl_error e;
    assert_int_equal(ndl_collection_create(db, "a", &cfg, NULL, &e), NDL_OK);
    create(db, "b-2", DIM);
    drop(db, "a");
    assert_string_equal(names(db), "b-2"); /* .catalog is no collection */
    ndl_db_close(db, NULL);

    recs rs;
    read_catalog(&rs);
    /* each record sealed before the call returned: version 1, nothing else */
    assert_int_equal(rs.n, 6);
    for (size_t i = 1; i < rs.n; i += 2) {
        assert_int_equal(rs.r[i].type, CATALOG_SEAL);
        assert_int_equal(rs.r[i].len, 4);
        assert_int_equal(get32(rs.r[i].data), CATALOG_RECORD_VERSION);
    }
    read_ops(&rs);
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.r[0].type, CATALOG_CREATE);
    assert_int_equal(rs.r[1].type, CATALOG_CREATE);
    assert_int_equal(rs.r[2].type, CATALOG_DROP);
    /* CREATE a: version, name, dimension, metric, index, m, ef_construction, seed */
    const uint8_t *p = rs.r[0].data;
    assert_int_equal(rs.r[0].len, 4 + 4 + 1 + 5 * 4 + 8);
    assert_int_equal(get32(p), CATALOG_RECORD_VERSION);
    assert_int_equal(get32(p + 4), 1);
    assert_int_equal(p[8], 'a');
    assert_int_equal(get32(p + 9), 5);
    assert_int_equal(get32(p + 13), NDL_METRIC_COSINE);
    assert_int_equal(get32(p + 17), NDL_INDEX_FLAT);
    assert_int_equal(get32(p + 21), 8);
    assert_int_equal(get32(p + 25), cfg.hnsw_ef_construction);
    assert_int_equal(get32(p + 29), 7);
    assert_int_equal(get32(p + 33), 0);
    /* DROP a: version, name */
    assert_int_equal(rs.r[2].len, 9);
    assert_int_equal(get32(rs.r[2].data + 4), 1);
    assert_int_equal(rs.r[2].data[8], 'a');
}

static void test_replay_creates_missing_collection(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    ndl_collection_config cfg;
    config(&cfg, 6);
    cfg.metric = NDL_METRIC_L1;
    cfg.seed = 99;
    assert_int_equal(ndl_collection_create(db, "x", &cfg, NULL, NULL), NDL_OK);
    ndl_db_close(db, NULL);
    rm_rf("x"); /* a crash between the commit and the directory */

    db = open_db(0);
    assert_string_equal(names(db), "x");
    ndl_collection *c;
    ndl_error e;
    assert_int_equal(ndl_collection_open(db, "x", &c, &e), NDL_OK);
    ndl_collection_info info;
    assert_int_equal(ndl_collection_info_get(c, &info, &e), NDL_OK);
    assert_int_equal(info.config.dimension, 6);
    assert_int_equal(info.config.metric, NDL_METRIC_L1);
    assert_int_equal(info.config.index, NDL_INDEX_HNSW);
    assert_int_equal(info.config.hnsw_m, 8);
    assert_int_equal(info.config.seed, 99);
    assert_int_equal(info.count, 0);
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);
}

static void test_replay_uses_last_live_record_of_each_name(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    create(db, "x", 4);
    drop(db, "x");
    create(db, "x", 7); /* the last record wins: dimension 7 */
    create(db, "y", 4);
    drop(db, "y");
    create(db, "z", 4);
    fill(db, "z", 3);
    ndl_db_close(db, NULL);
    append_cancel(append_drop("z")); /* the drop of z failed and was cancelled */
    rm_rf("x");

    db = open_db(0);
    assert_string_equal(names(db), "x,z"); /* y stays dropped, z stays */
    assert_int_equal(count_of(db, "z"), 3);
    ndl_collection *c;
    ndl_collection_info info;
    assert_int_equal(ndl_collection_open(db, "x", &c, NULL), NDL_OK);
    assert_int_equal(ndl_collection_info_get(c, &info, NULL), NDL_OK);
    assert_int_equal(info.config.dimension, 7);
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);

    /* nothing left to do: another open changes nothing */
    char *before = tree();
    db = open_db(0);
    ndl_db_close(db, NULL);
    char *after = tree();
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_replay_finishes_drop(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    create(db, "x", DIM);
    fill(db, "x", 5);
    create(db, "y", DIM);
    create(db, "keep", DIM);
    ndl_db_close(db, NULL);
    append_drop("x"); /* crashed after the commit, before the rename */
    append_drop("y"); /* crashed after the rename, during the removal */
    assert_int_equal(rename(at("y"), at(".dropped-y")), 0);
    assert_int_equal(unlink(at(".dropped-y/MANIFEST")), 0);

    db = open_db(0);
    assert_string_equal(names(db), "keep");
    assert_false(exists("x"));
    assert_false(exists(".dropped-x"));
    assert_false(exists(".dropped-y"));
    ndl_db_close(db, NULL);
}

static void test_torn_tail_is_dropped(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    create(db, "a", DIM);
    ndl_db_close(db, NULL);
    struct stat st;
    assert_int_equal(stat(at(SEG1), &st), 0);
    off_t before_b = st.st_size;
    db = open_db(0);
    create(db, "b", DIM);
    ndl_db_close(db, NULL);
    /* tear CREATE b (a crash before its commit returned: no seal either);
     * b's directory is there and stays */
    assert_int_equal(truncate(at(SEG1), before_b + 30), 0);
    db = open_db(0);
    assert_string_equal(names(db), "a,b");
    create(db, "c", DIM);
    ndl_db_close(db, NULL);
    recs rs;
    read_ops(&rs);
    assert_int_equal(rs.n, 2); /* CREATE a, then CREATE c where b's was cut off */
    assert_int_equal(rs.r[1].lsn, 3);
    assert_int_equal(rs.r[1].data[8], 'c');

    /* garbage after the last record: the tail of an append never acknowledged */
    int fd = open(at(SEG1), O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\x40\0\0\0garbage-garbage-garbage", 28), 28);
    close(fd);
    db = open_db(0);
    assert_string_equal(names(db), "a,b,c");
    ndl_db_close(db, NULL);
}

static void test_corrupt_middle_record_is_named(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    create(db, "a", DIM);
    create(db, "b", DIM);
    create(db, "c", DIM);
    ndl_db_close(db, NULL);
    /* flip a payload byte of record 1 (segment header 32 + record header 24) */
    int fd = open(at(SEG1), O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, 32 + 24 + 8), 1);
    byte ^= 0x20;
    assert_int_equal(pwrite(fd, &byte, 1, 32 + 24 + 8), 1);
    close(fd);
    char *before = tree();
    for (int ro = 0; ro <= 1; ro++) {
        ndl_db *d2 = NULL;
        ndl_error e;
        assert_int_equal(try_open(ro, &d2, &e), NDL_CORRUPT);
        assert_null(d2);
        assert_non_null(strstr(e.msg, SEG1));
        assert_non_null(strstr(e.msg, "offset 32"));
    }
    char *after = tree();
    assert_string_equal(before, after); /* refused, nothing touched */
    free(before);
    free(after);
}

/* A bit flipped in an acknowledged record -- even the last create or drop
 * -- is damage followed by its seal: refused, never cut as a torn tail.
 * Cutting the last CREATE x here would let the older DROP x win and remove
 * x with its points. A flip in the seal itself is cut and loses nothing. */
static void test_flipped_last_record_is_refused(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    create(db, "x", DIM);
    drop(db, "x");
    ndl_db_close(db, NULL);
    struct stat st;
    assert_int_equal(stat(at(SEG1), &st), 0);
    off_t create_at = st.st_size; /* the second CREATE x starts here */
    db = open_db(0);
    create(db, "x", DIM);
    fill(db, "x", 4);
    ndl_db_close(db, NULL);
    assert_int_equal(stat(at(SEG1), &st), 0);
    off_t len = st.st_size;
    recs rs;
    read_catalog(&rs);
    assert_int_equal(rs.r[rs.n - 1].type, CATALOG_SEAL);
    off_t seal_at = len - (off_t)wal_rec_bytes(rs.r[rs.n - 1].len);

    /* the name inside CREATE x (after the record header, version and length) */
    int fd = open(at(SEG1), O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, create_at + WAL_REC_HEADER + 8), 1);
    byte ^= 0x01;
    assert_int_equal(pwrite(fd, &byte, 1, create_at + WAL_REC_HEADER + 8), 1);
    char *before = tree();
    ndl_db *d2 = NULL;
    ndl_error e;
    assert_int_equal(try_open(0, &d2, &e), NDL_CORRUPT);
    assert_null(d2);
    assert_non_null(strstr(e.msg, SEG1));
    char *after = tree();
    assert_string_equal(before, after); /* x and its points are untouched */
    free(before);
    free(after);
    byte ^= 0x01; /* repaired */
    assert_int_equal(pwrite(fd, &byte, 1, create_at + WAL_REC_HEADER + 8), 1);

    /* the seal: cut as a torn tail, reported, x keeps its points */
    assert_int_equal(pread(fd, &byte, 1, seal_at + WAL_REC_HEADER), 1);
    byte ^= 0x04;
    assert_int_equal(pwrite(fd, &byte, 1, seal_at + WAL_REC_HEADER), 1);
    close(fd);
    db = open_db(0);
    ndl_db_info info;
    assert_int_equal(ndl_db_info_get(db, &info, NULL), NDL_OK);
    assert_int_equal(info.dropped_catalog_bytes, (uint64_t)(len - seal_at));
    assert_string_equal(names(db), "x");
    assert_int_equal(count_of(db, "x"), 4);
    ndl_db_close(db, NULL);
    assert_int_equal(stat(at(SEG1), &st), 0);
    assert_int_equal(st.st_size, seal_at);
}

static void test_bad_records_are_named(void **state)
{
    (void)state;
    static const struct {
        uint32_t type, version;
        const char *name;
        int body;        /* 0: none, 1: a good config, 2: dimension 0, 3: a config cut short */
        int extra;       /* trailing bytes */
        ndl_status want;
        const char *match;
    } cases[] = {
        {CATALOG_DROP, 0, "a", 0, 0, NDL_CORRUPT, "version 0"},
        {CATALOG_DROP, 2, "a", 0, 0, NDL_UNSUPPORTED, "version 2 is newer"},
        {CATALOG_DROP, 1, "", 0, 0, NDL_CORRUPT, "bad name length 0"},
        {CATALOG_DROP, 1, "a.b", 0, 0, NDL_CORRUPT, "bad collection name 'a.b'"},
        {CATALOG_DROP, 1,
         "x123456789x123456789x123456789x123456789x123456789x123456789x1234", 0, 0, NDL_CORRUPT,
         "bad name length 65"},
        {CATALOG_DROP, 1, "a", 0, 3, NDL_CORRUPT, "3 trailing bytes"},
        {CATALOG_CREATE, 1, "a", 0, 0, NDL_CORRUPT, "config is truncated"},
        {CATALOG_CREATE, 1, "a", 3, 0, NDL_CORRUPT, "config is truncated"},
        {CATALOG_CREATE, 1, "a", 2, 0, NDL_CORRUPT, "bad collection config: dimension 0"},
        {CATALOG_CREATE, 1, "a", 1, 1, NDL_CORRUPT, "1 trailing bytes"},
        {9, 1, "a", 0, 0, NDL_CORRUPT, "unknown record type 9"},
    };
    for (size_t i = 0; i < NDL_ARRAY_LEN(cases); i++) {
        rm_rf("");
        ndl_db_close(open_db(0), NULL);
        uint8_t b[160];
        size_t n = head(b, cases[i].version, cases[i].name);
        if (cases[i].body) {
            n += put32(b + n, cases[i].body == 2 ? 0 : DIM);
            n += put32(b + n, NDL_METRIC_L2);
            n += put32(b + n, NDL_INDEX_FLAT);
            n += put32(b + n, 16);
            n += put32(b + n, 200);
            n += cases[i].body == 3 ? 0 : put64(b + n, 1);
        }
        memset(b + n, 0, (size_t)cases[i].extra);
        append_raw(cases[i].type, b, n + (size_t)cases[i].extra);
        for (int ro = 0; ro <= 1; ro++) {
            ndl_db *db = NULL;
            ndl_error e;
            ndl_status st = try_open(ro, &db, &e);
            if (st != cases[i].want || !strstr(e.msg, cases[i].match) ||
                !strstr(e.msg, "/.catalog', record 1: "))
                fail_msg("case %zu (read-only %d): %s: %s", i, ro, ndl_status_name(st), e.msg);
        }
    }
    /* truncated headers and cancels of what is not an earlier record */
    static const struct {
        uint32_t type;
        uint8_t len;
        uint64_t target;
        const char *match;
    } raw[] = {
        {CATALOG_DROP, 3, 0, "3 bytes, too short for a version"},
        {CATALOG_DROP, 6, 0, "the name length is truncated"},
        {CATALOG_CANCEL, 8, 0, "the cancelled LSN is truncated"},
        {CATALOG_CANCEL, 12, 1, "it cancels record 1, not an earlier one"},
        {CATALOG_CANCEL, 12, 0, "it cancels record 0"},
    };
    for (size_t i = 0; i < NDL_ARRAY_LEN(raw); i++) {
        rm_rf("");
        ndl_db_close(open_db(0), NULL);
        uint8_t b[16] = {0};
        put32(b, CATALOG_RECORD_VERSION);
        put64(b + 4, raw[i].target);
        append_raw(raw[i].type, b, raw[i].len);
        ndl_db *db = NULL;
        ndl_error e;
        ndl_status st = try_open(0, &db, &e);
        if (st != NDL_CORRUPT || !strstr(e.msg, raw[i].match))
            fail_msg("raw case %zu: %s: %s", i, ndl_status_name(st), e.msg);
    }
    /* a cancel of a cancel */
    rm_rf("");
    ndl_db_close(open_db(0), NULL);
    append_drop("a");
    append_cancel(1);
    append_cancel(2);
    for (int ro = 0; ro <= 1; ro++) {
        ndl_db *db = NULL;
        ndl_error e;
        assert_int_equal(try_open(ro, &db, &e), NDL_CORRUPT);
        assert_non_null(strstr(e.msg, "record 3: it cancels a cancel"));
    }
}

static void test_read_only_open_writes_nothing(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    create(db, "x", DIM);
    create(db, "y", DIM);
    fill(db, "y", 2);
    ndl_db_close(db, NULL);
    /* pending work of every kind */
    rm_rf("x");         /* a CREATE without its directory */
    append_drop("y");   /* a DROP whose directory is still there */
    make_dir(".new-z"); /* leftovers */
    write_file(".new-z/MANIFEST", "half");
    make_dir(".dropped-w");
    int fd = open(at(SEG1), O_WRONLY | O_APPEND); /* a torn tail */
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\x10\0\0\0torn", 8), 8);
    close(fd);

    char *before = tree();
    db = open_db(1);
    assert_string_equal(names(db), "y"); /* the directory as it is */
    assert_int_equal(count_of(db, "y"), 2);
    ndl_error e;
    ndl_collection_config cfg;
    config(&cfg, DIM);
    assert_int_equal(ndl_collection_create(db, "n", &cfg, NULL, &e), NDL_READ_ONLY);
    assert_int_equal(ndl_collection_drop(db, "y", &e), NDL_READ_ONLY);
    ndl_db_close(db, NULL);
    char *after = tree();
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* writable: everything finished */
    db = open_db(0);
    assert_string_equal(names(db), "x");
    assert_false(exists(".new-z"));
    assert_false(exists(".dropped-w"));
    ndl_db_close(db, NULL);

    /* a database from before the catalog: read-only does not add one */
    rm_rf(".catalog");
    db = open_db(1);
    assert_string_equal(names(db), "x");
    ndl_db_close(db, NULL);
    assert_false(exists(".catalog"));
    db = open_db(0); /* writable does; its collections stay */
    assert_string_equal(names(db), "x");
    ndl_db_close(db, NULL);
    assert_true(exists(SEG1));
}

static void test_leftovers_are_removed(void **state)
{
    (void)state;
    ndl_db_close(open_db(0), NULL);
    make_dir(".new-a");
    write_file(".new-a/MANIFEST.tmp", "x");
    make_dir(".dropped-b");
    make_dir(".dropped-b/wal");
    write_file(".dropped-b/wal/wal-0000000000000001.log", "x");
    write_file(".dropped-b/vectors.1", "x");
    make_dir(".drop-c"); /* what drops left before the catalog */
    make_dir(".other");  /* not ours */
    make_dir(".new-bad.name");
    write_file(".dropped-file", "x");
    ndl_db *db = open_db(0);
    assert_false(exists(".new-a"));
    assert_false(exists(".dropped-b"));
    assert_false(exists(".drop-c"));
    assert_true(exists(".other"));
    assert_true(exists(".new-bad.name"));
    assert_true(exists(".dropped-file"));
    /* a leftover that appears later does not block a drop of the same name */
    create(db, "d", DIM);
    make_dir(".dropped-d");
    write_file(".dropped-d/vectors.1", "old");
    drop(db, "d");
    assert_false(exists("d"));
    assert_false(exists(".dropped-d"));
    ndl_db_close(db, NULL);
}

static void test_refused_input_logs_nothing(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    create(db, "a", DIM);
    fill(db, "a", 4);
    ndl_error e;
    ndl_collection_config cfg;
    config(&cfg, DIM);
    static const char *bad[] = {"a.b", "", "a/b", ".catalog", "..",
                                "x123456789x123456789x123456789x123456789x123456789x123456789x1234"};
    for (size_t i = 0; i < NDL_ARRAY_LEN(bad); i++) {
        assert_int_equal(ndl_collection_create(db, bad[i], &cfg, NULL, &e), NDL_INVALID);
        assert_non_null(strstr(e.msg, "bad collection name"));
        assert_int_equal(ndl_collection_drop(db, bad[i], &e), NDL_INVALID);
    }
    assert_int_equal(ndl_collection_create(db, NULL, &cfg, NULL, &e), NDL_INVALID);
    assert_int_equal(ndl_collection_create(db, "n", NULL, NULL, &e), NDL_INVALID);
    cfg.dimension = 0;
    assert_int_equal(ndl_collection_create(db, "n", &cfg, NULL, &e), NDL_INVALID);
    config(&cfg, DIM + 1);
    assert_int_equal(ndl_collection_create(db, "a", &cfg, NULL, &e), NDL_EXISTS);
    assert_string_equal(e.msg, "collection 'a' already exists");
    assert_int_equal(ndl_collection_drop(db, "nope", &e), NDL_NOT_FOUND);
    assert_string_equal(e.msg, "collection 'nope' does not exist");
    ndl_collection *c;
    assert_int_equal(ndl_collection_open(db, "a", &c, &e), NDL_OK);
    assert_int_equal(ndl_collection_drop(db, "a", &e), NDL_BUSY);
    assert_string_equal(e.msg, "collection 'a' is open");
    ndl_collection_close(c, NULL);
    ndl_db_close(db, NULL);

    recs rs;
    read_ops(&rs);
    assert_int_equal(rs.n, 1); /* CREATE a, nothing else */
    db = open_db(0);
    assert_string_equal(names(db), "a");
    assert_int_equal(count_of(db, "a"), 4);
    ndl_db_close(db, NULL);
}

static void test_failed_create_is_cancelled(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    ndl_error e;
    ndl_collection_config cfg;
    config(&cfg, DIM);
    /* publishing the new manifest fails: after the record was committed */
    io_fault_set(IO_OP_RENAME, (io_fault){.after = 0, .times = 1, .error = EIO});
    assert_int_equal(ndl_collection_create(db, "x", &cfg, NULL, &e), NDL_IO);
    io_fault_reset();
    assert_false(exists("x"));
    assert_false(exists(".new-x"));
    assert_string_equal(names(db), "");
    ndl_db_close(db, NULL);
    recs rs;
    read_ops(&rs);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.r[0].type, CATALOG_CREATE);
    assert_int_equal(rs.r[1].type, CATALOG_CANCEL);
    assert_int_equal(get32(rs.r[1].data + 4), 1);

    db = open_db(0);
    assert_string_equal(names(db), ""); /* replay skips the cancelled create */
    create(db, "x", DIM);               /* and the name is free */
    ndl_db_close(db, NULL);
}

static void test_failed_drop_is_cancelled(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    create(db, "x", DIM);
    fill(db, "x", 3);
    ndl_error e;
    io_fault_set(IO_OP_RENAME, (io_fault){.after = 0, .times = 1, .error = EIO});
    assert_int_equal(ndl_collection_drop(db, "x", &e), NDL_IO);
    io_fault_reset();
    assert_non_null(strstr(e.msg, "cannot drop 'x'"));
    assert_int_equal(count_of(db, "x"), 3); /* still there, still usable */
    drop(db, "x");                          /* and the catalog still works */
    create(db, "x", DIM);
    fill(db, "x", 2);
    ndl_db_close(db, NULL);
    db = open_db(0);
    assert_int_equal(count_of(db, "x"), 2);
    ndl_db_close(db, NULL);
}

static void test_log_failure_refuses_creates_and_drops(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    create(db, "a", DIM);
    ndl_error e;
    ndl_collection_config cfg;
    config(&cfg, DIM);
    /* disk full: refused, nothing written, works once space frees */
    io_fault_set(IO_OP_WRITE, (io_fault){.after = 0, .times = 1, .error = ENOSPC, .short_by = 5});
    assert_int_equal(ndl_collection_create(db, "x", &cfg, NULL, &e), NDL_DISK_FULL);
    io_fault_reset();
    assert_false(exists("x"));
    create(db, "x", DIM);
    /* a failed write: the catalog is read-only until reopened */
    io_fault_set(IO_OP_WRITE, (io_fault){.after = 0, .times = 1, .error = EIO});
    assert_int_equal(ndl_collection_create(db, "y", &cfg, NULL, &e), NDL_IO);
    io_fault_reset();
    assert_false(exists("y"));
    assert_int_equal(ndl_collection_create(db, "y", &cfg, NULL, &e), NDL_READ_ONLY);
    assert_non_null(strstr(e.msg, "cannot create or drop collections until it is reopened"));
    assert_int_equal(ndl_collection_drop(db, "a", &e), NDL_READ_ONLY);
    fill(db, "a", 2); /* collections keep working */
    ndl_db_close(db, NULL);
    db = open_db(0);
    assert_string_equal(names(db), "a,x");
    create(db, "y", DIM);
    assert_int_equal(count_of(db, "a"), 2);
    ndl_db_close(db, NULL);
}

static void test_drop_in_doubt_is_settled_on_reopen(void **state)
{
    (void)state;
    ndl_db *db = open_db(0);
    create(db, "x", DIM);
    create(db, "y", DIM);
    fill(db, "y", 2);
    ndl_error e;
    /* the commit of DROP x fails: the record may be on disk or not */
    io_fault_set(IO_OP_FSYNC, (io_fault){.after = 0, .times = 1, .error = EIO});
    assert_int_not_equal(ndl_collection_drop(db, "x", &e), NDL_OK);
    io_fault_reset();
    ndl_collection *c;
    assert_int_equal(ndl_collection_open(db, "x", &c, &e), NDL_IO); /* nothing may write to it */
    assert_non_null(strstr(e.msg, "until the database is reopened"));
    assert_int_equal(count_of(db, "y"), 2); /* the others open */
    ndl_db_close(db, NULL);
    db = open_db(0);
    assert_string_equal(names(db), "y"); /* the record was written: the drop is finished */
    ndl_db_close(db, NULL);

    /* the rename fails, and so does logging the cancel */
    db = open_db(0);
    io_fault_set(IO_OP_RENAME, (io_fault){.after = 0, .times = 1, .error = EIO});
    io_fault_set(IO_OP_WRITE, (io_fault){.after = 1, .times = 1, .error = EIO});
    assert_int_equal(ndl_collection_drop(db, "y", &e), NDL_IO);
    io_fault_reset();
    assert_int_equal(ndl_collection_open(db, "y", &c, &e), NDL_IO);
    ndl_collection_config cfg;
    config(&cfg, DIM);
    assert_int_equal(ndl_collection_create(db, "z", &cfg, NULL, &e), NDL_READ_ONLY);
    assert_non_null(strstr(e.msg, "the drop of 'y' failed and could not be undone"));
    ndl_db_close(db, NULL);
    db = open_db(0);
    assert_string_equal(names(db), ""); /* the committed drop is finished */
    ndl_db_close(db, NULL);
}

static void test_applied_segments_are_deleted_on_open(void **state)
{
    (void)state;
    ndl_db_close(open_db(0), NULL);
    /* many records in small segments */
    wal_options o;
    wal_options_init(&o);
    o.segment_bytes = 1024;
    wal *w;
    ndl_error e;
    assert_int_equal(wal_open(at(".catalog"), &o, &w, NULL, &e), NDL_OK);
    for (int i = 0; i < 100; i++) {
        uint8_t b[32];
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        uint64_t lsn;
        assert_int_equal(wal_append(w, CATALOG_DROP, b, head(b, 1, name), &lsn, &e), NDL_OK);
    }
    assert_int_equal(wal_close(w, &e), NDL_OK);
    assert_true(exists(".catalog/wal-0000000000000001.log"));

    ndl_db *db = open_db(0);
    create(db, "a", DIM);
    ndl_db_close(db, NULL);
    assert_false(exists(".catalog/wal-0000000000000001.log"));
    recs rs;
    read_catalog(&rs);
    assert_true(rs.n >= 2 && rs.n < 30); /* the active segment only, then CREATE a, SEAL */
    assert_int_equal(rs.r[rs.n - 1].type, CATALOG_SEAL);
    rs.n--;
    assert_int_equal(rs.r[rs.n - 1].lsn, 101);
    assert_int_equal(rs.r[rs.n - 1].type, CATALOG_CREATE);
    db = open_db(0);
    assert_string_equal(names(db), "a");
    ndl_db_close(db, NULL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_create_and_drop_are_logged),
        T(test_flipped_last_record_is_refused),
        T(test_replay_creates_missing_collection),
        T(test_replay_uses_last_live_record_of_each_name),
        T(test_replay_finishes_drop),
        T(test_torn_tail_is_dropped),
        T(test_corrupt_middle_record_is_named),
        T(test_bad_records_are_named),
        T(test_read_only_open_writes_nothing),
        T(test_leftovers_are_removed),
        T(test_refused_input_logs_nothing),
        T(test_failed_create_is_cancelled),
        T(test_failed_drop_is_cancelled),
        T(test_log_failure_refuses_creates_and_drops),
        T(test_drop_in_doubt_is_settled_on_reopen),
        T(test_applied_segments_are_deleted_on_open),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
