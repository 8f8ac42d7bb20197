/*
 * test_wal.c -- unit tests of the write-ahead log (src/storage/wal*.c):
 * round trips of every record size, LSNs across reopen, segment rolling and
 * truncation, the exact byte format, torn tails cut at every offset, bit
 * flips and garbage lengths (NDL_CORRUPT naming file and offset, or a
 * dropped tail -- never wrong data; never a tail the caller knows durable), injected write/fsync/ENOSPC failures
 * (storage/io.h), group commit under threads, the BATCH and NONE modes,
 * read-only opens and concurrent readers.
 *
 * Every record's payload is derived from its LSN and length (fill()), and
 * the model arrays remember type and length per LSN, so each record read
 * back is compared byte for byte with what was written.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw's FTW_PHYS; the build normally defines it */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/io.h"
#include "storage/wal.h"
#include "util/crc32c.h"

#define MAX_LSN 8192
#define SEG_HEADER 32u
#define REC_HEADER 24u

static char tmpdir[64];
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

/* The model: type and payload length of every LSN written (payload bytes
 * follow from fill()). */
static uint32_t model_type[MAX_LSN + 1];
static uint32_t model_len[MAX_LSN + 1];

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    io_fault_reset();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle_wal_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static int reset_faults(void **state)
{
    (void)state;
    io_fault_reset();
    return 0;
}

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void seg_path(char *out, size_t cap, const char *dir, uint64_t first)
{
    int n = snprintf(out, cap, "%s/wal-%016llx.log", dir, (unsigned long long)first);
    assert_true(n > 0 && (size_t)n < cap);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

static uint8_t *read_raw(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_raw(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static uint64_t rec_bytes(uint64_t len) { return REC_HEADER + ((len + 7) & ~(uint64_t)7); }

/* The payload of LSN lsn: len bytes from a generator seeded by both. */
static void fill(uint8_t *buf, size_t len, uint64_t lsn)
{
    uint64_t s = lsn * 0x9E3779B97F4A7C15ull ^ (uint64_t)len;
    for (size_t i = 0; i < len; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        buf[i] = (uint8_t)((s * 0x2545F4914F6CDD1Dull) >> 56);
    }
}

static uint8_t scratch[(1u << 20) + 64];

static wal_options opts(wal_sync sync, uint64_t segment_bytes)
{
    wal_options o;
    wal_options_init(&o);
    o.sync = sync;
    if (segment_bytes)
        o.segment_bytes = segment_bytes;
    return o;
}

static wal *open_ok(const char *dir, const wal_options *o, wal_recovery *rec)
{
    wal *w = NULL;
    ndl_error err = {0, ""};
    wal_recovery r;
    ndl_status rc = wal_open(dir, o, &w, rec ? rec : &r, &err);
    if (rc != NDL_OK)
        fail_msg("wal_open(%s): %s: %s", dir, ndl_status_name(rc), err.msg);
    assert_non_null(w);
    return w;
}

static void close_ok(wal *w)
{
    ndl_error err = {0, ""};
    ndl_status rc = wal_close(w, &err);
    if (rc != NDL_OK)
        fail_msg("wal_close: %s", err.msg);
}

/* Append the record the model holds for the next LSN (type, len). */
static uint64_t append_model(wal *w, uint32_t type, uint32_t len)
{
    uint64_t want = wal_last_lsn(w) + 1;
    assert_true(want <= MAX_LSN);
    assert_true(len <= sizeof scratch);
    fill(scratch, len, want);
    uint64_t lsn = 0;
    ndl_error err = {0, ""};
    ndl_status rc = wal_append(w, type, scratch, len, &lsn, &err);
    if (rc != NDL_OK)
        fail_msg("wal_append: %s: %s", ndl_status_name(rc), err.msg);
    assert_int_equal(lsn, want);
    model_type[lsn] = type;
    model_len[lsn] = len;
    return lsn;
}

static void commit_ok(wal *w, uint64_t lsn)
{
    ndl_error err = {0, ""};
    ndl_status rc = wal_commit(w, lsn, &err);
    if (rc != NDL_OK)
        fail_msg("wal_commit(%llu): %s", (unsigned long long)lsn, err.msg);
}

typedef struct check_ctx {
    uint64_t next;     /* LSN expected next */
    uint64_t count;
    uint64_t stop_at;  /* return NDL_BUSY at this LSN (0: never) */
} check_ctx;

/* Compare a record with the model, byte for byte. */
static ndl_status check_visit(void *p, uint64_t lsn, uint32_t type, const void *data, size_t len,
                              ndl_error *err)
{
    (void)err;
    check_ctx *c = p;
    if (c->stop_at && lsn == c->stop_at)
        return NDL_BUSY;
    if (lsn != c->next)
        fail_msg("record LSN %llu where %llu was expected", (unsigned long long)lsn,
                 (unsigned long long)c->next);
    assert_true(lsn <= MAX_LSN);
    if (type != model_type[lsn] || len != model_len[lsn])
        fail_msg("record %llu: type %u len %zu, wrote type %u len %u", (unsigned long long)lsn,
                 type, len, model_type[lsn], model_len[lsn]);
    static uint8_t want[(1u << 20) + 64];
    fill(want, len, lsn);
    if (len && memcmp(data, want, len) != 0)
        fail_msg("record %llu: payload differs from what was written", (unsigned long long)lsn);
    if (len && ((uintptr_t)data & 7) != 0)
        fail_msg("record %llu: payload not 8-byte aligned", (unsigned long long)lsn);
    c->next++;
    c->count++;
    return NDL_OK;
}

/* Read from `from` and check it yields exactly [first, last]. */
static void expect_records(wal *w, uint64_t from, uint64_t first, uint64_t last)
{
    check_ctx c = {.next = first};
    ndl_error err = {0, ""};
    ndl_status rc = wal_read(w, from, check_visit, &c, &err);
    if (rc != NDL_OK)
        fail_msg("wal_read(%llu): %s", (unsigned long long)from, err.msg);
    assert_int_equal(c.next, last + 1);
    assert_int_equal(c.count, last + 1 - first);
}

/* First LSNs of the segment files in dir, ascending; returns how many. */
static size_t list_segs(const char *dir, uint64_t *firsts, size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned long long v;
        char tail[8];
        if (strlen(de->d_name) == 24 && sscanf(de->d_name, "wal-%16llx%7s", &v, tail) == 2 &&
            strcmp(tail, ".log") == 0) {
            assert_true(n < cap);
            firsts[n++] = v;
        }
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) /* insertion sort */
        for (size_t j = i; j > 0 && firsts[j - 1] > firsts[j]; j--) {
            uint64_t t = firsts[j];
            firsts[j] = firsts[j - 1];
            firsts[j - 1] = t;
        }
    return n;
}

static int count_entries(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    size_t sl = strlen(suffix);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static uint64_t dir_bytes(const char *dir)
{
    uint64_t firsts[512];
    size_t n = list_segs(dir, firsts, 512);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX];
        seg_path(p, sizeof p, dir, firsts[i]);
        total += file_size(p);
    }
    return total;
}

/* Offset of record lsn in the segment starting at first (records of the
 * model, back to back). */
static uint64_t rec_offset(uint64_t first, uint64_t lsn)
{
    uint64_t off = SEG_HEADER;
    for (uint64_t l = first; l < lsn; l++)
        off += rec_bytes(model_len[l]);
    return off;
}

/* ---------------------------------------------------------------- round trips */

static void test_wal_round_trip_all_sizes(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "sizes");
    wal_options o = opts(WAL_SYNC_ALWAYS, 0);
    wal_recovery rec;
    wal *w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, 0);
    assert_int_equal(rec.dropped_bytes, 0);
    assert_int_equal(wal_last_lsn(w), 0);
    assert_null(wal_failure(w));
    assert_int_equal(wal_bytes(w), SEG_HEADER);
    expect_records(w, 1, 1, 0); /* empty */

    static const uint32_t sizes[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 23, 24, 25,
                                     31, 32, 33, 63, 64, 65, 100, 255, 256, 257, 1000, 4095,
                                     4096, 4097, 65535, 65536, 65537, 1000000, 1u << 20};
    uint64_t bytes = SEG_HEADER, last = 0;
    for (size_t i = 0; i < NDL_ARRAY_LEN(sizes); i++) {
        last = append_model(w, (uint32_t)(i * 7 + 1), sizes[i]);
        assert_int_equal(last, i + 1);
        bytes += rec_bytes(sizes[i]);
        assert_int_equal(wal_bytes(w), bytes);
    }
    commit_ok(w, last);
    commit_ok(w, 1); /* earlier LSNs are durable too */
    expect_records(w, 1, 1, last);
    expect_records(w, 0, 1, last);
    expect_records(w, 30, 30, last);
    expect_records(w, last, last, last);
    expect_records(w, last + 1, last + 1, last); /* nothing */
    /* commit of an LSN never appended */
    ndl_error err;
    assert_int_equal(wal_commit(w, last + 1, &err), NDL_INVALID);
    close_ok(w);
    char p[PATH_MAX];
    seg_path(p, sizeof p, dir, 1);
    assert_int_equal(file_size(p), bytes);

    /* reopen: the LSNs continue */
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, last);
    assert_int_equal(rec.dropped_bytes, 0);
    assert_int_equal(wal_last_lsn(w), last);
    assert_int_equal(wal_bytes(w), bytes);
    expect_records(w, 1, 1, last);
    uint64_t l2 = append_model(w, 99, 10);
    assert_int_equal(l2, last + 1);
    commit_ok(w, l2);
    expect_records(w, 1, 1, l2);
    close_ok(w);
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, l2);
    expect_records(w, l2, l2, l2);
    close_ok(w);
    assert_int_equal(wal_close(NULL, NULL), NDL_OK);
}

static void test_wal_exact_byte_format(void **state)
{
    (void)state;
    char dir[PATH_MAX], p[PATH_MAX];
    path_in(dir, sizeof dir, "format");
    wal_options o = opts(WAL_SYNC_NONE, 0);
    wal *w = open_ok(dir, &o, NULL);
    uint64_t lsn;
    assert_int_equal(wal_append(w, 0x01020304u, "hello", 5, &lsn, NULL), NDL_OK);
    assert_int_equal(lsn, 1);
    assert_int_equal(wal_append(w, 7, NULL, 0, &lsn, NULL), NDL_OK);
    close_ok(w);
    seg_path(p, sizeof p, dir, 1);
    size_t len;
    uint8_t *raw = read_raw(p, &len);
    assert_int_equal(len, 32 + 32 + 24);
    /* segment header */
    static const uint8_t hdr[28] = {'N', 'D', 'L', 'W', 'A', 'L', '\r', '\n', 1, 0, 0, 0, 0, 0,
                                    0,   0,   1,   0,   0,   0,   0,    0,    0, 0, 0, 0, 0, 0};
    assert_memory_equal(raw, hdr, 28);
    uint32_t hcrc = crc32c(0, raw, 28);
    assert_int_equal(raw[28] | raw[29] << 8 | raw[30] << 16 | (uint32_t)raw[31] << 24, hcrc);
    /* record 1: length 5, type, LSN 1, CRC, reserved, "hello", 3 zero bytes */
    const uint8_t *r = raw + 32;
    static const uint8_t rh[16] = {5, 0, 0, 0, 4, 3, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(r, rh, 16);
    uint32_t crc = crc32c(crc32c(0, r, 16), "hello", 5);
    assert_int_equal(r[16] | r[17] << 8 | r[18] << 16 | (uint32_t)r[19] << 24, crc);
    static const uint8_t rest[12] = {0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o', 0, 0, 0};
    assert_memory_equal(r + 20, rest, 12);
    /* record 2: empty payload, header only */
    r = raw + 64;
    static const uint8_t rh2[16] = {0, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(r, rh2, 16);
    crc = crc32c(0, r, 16);
    assert_int_equal(r[16] | r[17] << 8 | r[18] << 16 | (uint32_t)r[19] << 24, crc);
    free(raw);
}

static void test_wal_segments_roll_and_truncate(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "roll");
    wal_options o = opts(WAL_SYNC_ALWAYS, 1024);
    wal *w = open_ok(dir, &o, NULL);
    uint64_t last = 0;
    /* every 7th record alone exceeds a segment */
    for (int i = 0; i < 120; i++)
        last = append_model(w, 1, (uint32_t)(i % 7 == 6 ? 2000 : 50 + i));
    commit_ok(w, last);
    uint64_t firsts[256];
    size_t n = list_segs(dir, firsts, 256);
    assert_true(n > 10);
    assert_int_equal(firsts[0], 1);
    assert_int_equal(wal_bytes(w), dir_bytes(dir));
    /* every segment respects the size unless one record alone exceeds it */
    for (size_t i = 0; i + 1 < n; i++) {
        char p[PATH_MAX];
        seg_path(p, sizeof p, dir, firsts[i]);
        uint64_t size = file_size(p);
        assert_int_equal(size, rec_offset(firsts[i], firsts[i + 1]));
        if (firsts[i + 1] - firsts[i] > 1)
            assert_true(size <= 1024);
    }
    expect_records(w, 1, 1, last);

    /* truncate before an LSN inside segment 3: segments 0..2 go, 3 stays */
    uint64_t cut = firsts[3] + 1;
    if (cut >= firsts[4])
        cut = firsts[3];
    assert_int_equal(wal_truncate_before(w, cut, NULL), NDL_OK);
    uint64_t after[256];
    size_t m = list_segs(dir, after, 256);
    assert_int_equal(m, n - 3);
    assert_int_equal(after[0], firsts[3]);
    assert_int_equal(wal_bytes(w), dir_bytes(dir));
    expect_records(w, 1, firsts[3], last); /* reads start at the oldest kept */
    expect_records(w, cut, cut, last);
    /* an LSN at a segment's start deletes the segments before it only */
    assert_int_equal(wal_truncate_before(w, firsts[5], NULL), NDL_OK);
    m = list_segs(dir, after, 256);
    assert_int_equal(after[0], firsts[5]);
    assert_int_equal(wal_truncate_before(w, firsts[5], NULL), NDL_OK); /* idempotent */
    assert_int_equal(list_segs(dir, after, 256), m);

    /* reopen: starts at the oldest kept segment, continues after the last */
    close_ok(w);
    wal_recovery rec;
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, last);
    expect_records(w, 1, firsts[5], last);
    /* everything covered: only the active segment stays, appends go on */
    assert_int_equal(wal_truncate_before(w, last + 1, NULL), NDL_OK);
    m = list_segs(dir, after, 256);
    assert_int_equal(m, 1);
    assert_int_equal(after[0], firsts[n - 1]);
    uint64_t l2 = append_model(w, 2, 3000);
    commit_ok(w, l2);
    expect_records(w, 1, after[0], l2);
    assert_int_equal(wal_bytes(w), dir_bytes(dir));
    close_ok(w);
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, l2);
    expect_records(w, l2, l2, l2);

    /* a checkpoint covering everything: roll, then nothing covered stays */
    size_t before_roll = list_segs(dir, after, 256);
    assert_int_equal(wal_roll_if_covered(w, l2, NULL), NDL_OK); /* l2 not covered: no roll */
    assert_int_equal(list_segs(dir, after, 256), before_roll);
    assert_int_equal(wal_roll_if_covered(w, l2 + 1, NULL), NDL_OK);
    assert_int_equal(wal_truncate_before(w, l2 + 1, NULL), NDL_OK);
    assert_int_equal(list_segs(dir, after, 256), 1);
    assert_int_equal(after[0], l2 + 1);
    char p[PATH_MAX];
    seg_path(p, sizeof p, dir, l2 + 1);
    assert_int_equal(file_size(p), 32); /* a header, no record */
    assert_int_equal(wal_roll_if_covered(w, l2 + 1, NULL), NDL_OK); /* empty: no roll */
    assert_int_equal(list_segs(dir, after, 256), 1);
    close_ok(w);
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, l2); /* the LSNs go on from where they were */
    uint64_t l3 = append_model(w, 2, 10);
    assert_int_equal(l3, l2 + 1);
    commit_ok(w, l3);
    close_ok(w);
    assert_int_equal(count_entries(dir, ".tmp"), 0);
}

static void test_wal_read_stops_when_visitor_fails(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "visit_stop");
    wal_options o = opts(WAL_SYNC_NONE, 512);
    wal *w = open_ok(dir, &o, NULL);
    for (int i = 0; i < 40; i++)
        append_model(w, 3, 40);
    check_ctx c = {.next = 5, .stop_at = 25};
    assert_int_equal(wal_read(w, 5, check_visit, &c, NULL), NDL_BUSY);
    assert_int_equal(c.next, 25);
    close_ok(w);
}

/* ---------------------------------------------------------------- torn tails */

/* Write records across segments, then cut the last segment at every byte
 * inside its last three records: reopening keeps exactly the whole records
 * before the cut. */
static void test_wal_torn_tail_every_offset(void **state)
{
    (void)state;
    char dir[PATH_MAX], p[PATH_MAX];
    path_in(dir, sizeof dir, "torn");
    wal_options o = opts(WAL_SYNC_NONE, 700);
    wal *w = open_ok(dir, &o, NULL);
    uint64_t last = 0;
    for (int i = 0; i < 30; i++)
        last = append_model(w, (uint32_t)i, (uint32_t)(i * 13 % 97));
    close_ok(w);
    uint64_t firsts[64];
    size_t n = list_segs(dir, firsts, 64);
    assert_true(n >= 2);
    uint64_t active = firsts[n - 1];
    if (last - active < 3) { /* make sure the last segment holds >= 3 records */
        w = open_ok(dir, &o, NULL);
        while (wal_last_lsn(w) - active < 3)
            last = append_model(w, 5, 9);
        close_ok(w);
    }
    seg_path(p, sizeof p, dir, active);
    size_t full_len;
    uint8_t *full = read_raw(p, &full_len);
    uint64_t start = rec_offset(active, last - 2);
    assert_int_equal(rec_offset(active, last + 1), full_len);

    static uint32_t saved_type[MAX_LSN + 1], saved_len[MAX_LSN + 1];
    memcpy(saved_type, model_type, sizeof saved_type);
    memcpy(saved_len, model_len, sizeof saved_len);
    wal_options big = opts(WAL_SYNC_NONE, 1 << 20); /* no roll while probing */
    for (uint64_t cut = start; cut <= full_len; cut++) {
        write_raw(p, full, cut);
        /* the last whole record before the cut */
        uint64_t keep = last - 3, keep_end = start;
        while (keep < last && rec_offset(active, keep + 2) <= cut) {
            keep++;
            keep_end = rec_offset(active, keep + 1);
        }
        wal_recovery rec;
        w = open_ok(dir, &big, &rec);
        assert_int_equal(rec.last_lsn, keep);
        assert_int_equal(wal_last_lsn(w), keep);
        assert_int_equal(rec.dropped_bytes, cut - keep_end);
        if (cut > keep_end) {
            assert_string_equal(rec.dropped_file, p);
            assert_int_equal(rec.dropped_offset, keep_end);
        }
        assert_int_equal(file_size(p), keep_end); /* cut off */
        expect_records(w, 1, 1, keep);
        /* new appends continue right after */
        uint64_t l = append_model(w, 77, (uint32_t)(cut % 50));
        assert_int_equal(l, keep + 1);
        expect_records(w, keep, keep, l);
        close_ok(w);
        w = open_ok(dir, &big, &rec);
        assert_int_equal(rec.last_lsn, keep + 1);
        assert_int_equal(rec.dropped_bytes, 0);
        close_ok(w);
        memcpy(model_type, saved_type, sizeof saved_type);
        memcpy(model_len, saved_len, sizeof saved_len);
    }
    assert_int_equal(list_segs(dir, firsts, 64), n);
    write_raw(p, full, full_len);
    free(full);
}

static void test_wal_torn_segment_header_recovered(void **state)
{
    (void)state;
    char dir[PATH_MAX], p[PATH_MAX], tmp[PATH_MAX];
    path_in(dir, sizeof dir, "torn_header");
    wal_options o = opts(WAL_SYNC_NONE, 0);
    wal *w = open_ok(dir, &o, NULL);
    uint64_t last = 0;
    for (int i = 0; i < 5; i++)
        last = append_model(w, 1, 20);
    close_ok(w);
    /* a crash while creating the next segment left a short file and a .tmp */
    seg_path(p, sizeof p, dir, last + 1);
    write_raw(p, (const uint8_t *)"NDLWAL", 6);
    assert_true(snprintf(tmp, sizeof tmp, "%s.tmp", p) < (int)sizeof tmp);
    write_raw(tmp, (const uint8_t *)"NDL", 3);

    /* read-only: reported, nothing changed */
    wal_options ro = o;
    ro.read_only = 1;
    wal_recovery rec;
    w = open_ok(dir, &ro, &rec);
    assert_int_equal(rec.last_lsn, last);
    assert_int_equal(rec.dropped_bytes, 6);
    assert_int_equal(rec.dropped_offset, 0);
    expect_records(w, 1, 1, last);
    close_ok(w);
    assert_int_equal(file_size(p), 6);
    assert_true(exists(tmp));

    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, last);
    assert_int_equal(rec.dropped_bytes, 6);
    assert_string_equal(rec.dropped_file, p);
    assert_false(exists(tmp));
    assert_int_equal(file_size(p), SEG_HEADER); /* written afresh */
    uint64_t l = append_model(w, 2, 30);
    assert_int_equal(l, last + 1);
    close_ok(w);
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.dropped_bytes, 0);
    expect_records(w, 1, 1, l);
    close_ok(w);
}

/* ---------------------------------------------------------------- damage */

static void expect_corrupt(const char *dir, const wal_options *o, const char *file,
                           uint64_t offset, const char *what)
{
    wal *w = (wal *)&w;
    ndl_error err = {0, ""};
    wal_recovery rec;
    ndl_status rc = wal_open(dir, o, &w, &rec, &err);
    if (rc != NDL_CORRUPT)
        fail_msg("%s: status %s (%s), expected corrupt", what, ndl_status_name(rc), err.msg);
    assert_null(w);
    assert_int_equal(err.status, NDL_CORRUPT);
    if (!strstr(err.msg, file))
        fail_msg("%s: message '%s' does not name '%s'", what, err.msg, file);
    char off[64];
    snprintf(off, sizeof off, "offset %llu", (unsigned long long)offset);
    if (!strstr(err.msg, off))
        fail_msg("%s: message '%s' does not say '%s'", what, err.msg, off);
}

/* A log of three or more segments for the damage tests; returns the
 * segment count and fills firsts[]. */
static size_t damage_fixture(const char *dir, uint64_t *firsts, uint64_t *last)
{
    wal_options o = opts(WAL_SYNC_NONE, 600);
    wal *w = open_ok(dir, &o, NULL);
    for (int i = 0; i < 24; i++)
        *last = append_model(w, (uint32_t)(i + 100), (uint32_t)((i * 37) % 150));
    close_ok(w);
    size_t n = list_segs(dir, firsts, 64);
    assert_true(n >= 3);
    assert_true(*last - firsts[n - 1] >= 1); /* two or more in the last */
    return n;
}

static void test_wal_segment_header_byte_flips(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "hdr_flip");
    uint64_t firsts[64], last = 0;
    size_t n = damage_fixture(dir, firsts, &last);
    size_t which[3] = {0, n / 2, n - 1};
    for (int s = 0; s < 3; s++) {
        char p[PATH_MAX];
        seg_path(p, sizeof p, dir, firsts[which[s]]);
        size_t len;
        uint8_t *raw = read_raw(p, &len);
        for (int byte = 0; byte < (int)SEG_HEADER; byte++) {
            for (int ro = 0; ro < 2; ro++) {
                raw[byte] ^= 0xff;
                write_raw(p, raw, len);
                raw[byte] ^= 0xff;
                wal_options o = opts(WAL_SYNC_NONE, 600);
                o.read_only = ro;
                char what[64];
                snprintf(what, sizeof what, "segment %d byte %d", s, byte);
                expect_corrupt(dir, &o, p, 0, what);
                assert_int_equal(file_size(p), len); /* nothing cut */
            }
        }
        write_raw(p, raw, len);
        free(raw);
    }
    wal_options o = opts(WAL_SYNC_NONE, 600);
    wal *w = open_ok(dir, &o, NULL);
    expect_records(w, 1, 1, last);
    close_ok(w);
}

/* Flip random bits after the headers: damage inside the last record of the
 * last segment is a torn tail (dropped, reported); anywhere else it is
 * NDL_CORRUPT naming the file and the damaged record's offset. */
static void test_wal_record_bit_flips(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "rec_flip");
    uint64_t firsts[64], last = 0;
    size_t n = damage_fixture(dir, firsts, &last);
    wal_options o = opts(WAL_SYNC_NONE, 600);
    o.read_only = 1; /* keeps the files as they are between rounds */
    for (int round = 0; round < 400; round++) {
        size_t s = round < 100 ? n - 1 : (size_t)(rng_next() % n); /* favour the tail */
        char p[PATH_MAX];
        seg_path(p, sizeof p, dir, firsts[s]);
        size_t len;
        uint8_t *raw = read_raw(p, &len);
        if (len <= SEG_HEADER) {
            free(raw);
            continue;
        }
        size_t byte = SEG_HEADER + (size_t)(rng_next() % (len - SEG_HEADER));
        uint8_t bit = (uint8_t)(1u << (rng_next() % 8));
        raw[byte] ^= bit;
        write_raw(p, raw, len);
        raw[byte] ^= bit;
        /* which record holds the byte */
        uint64_t end_lsn = s + 1 < n ? firsts[s + 1] - 1 : last;
        uint64_t hit = firsts[s];
        while (hit < end_lsn && rec_offset(firsts[s], hit + 1) <= byte)
            hit++;
        uint64_t hit_off = rec_offset(firsts[s], hit);
        char what[96];
        snprintf(what, sizeof what, "round %d: segment %zu byte %zu", round, s, byte);
        if (s == n - 1 && hit == last) {
            wal_recovery rec;
            wal *w = open_ok(dir, &o, &rec);
            assert_int_equal(rec.last_lsn, last - 1);
            assert_int_equal(rec.dropped_offset, hit_off);
            assert_int_equal(rec.dropped_bytes, len - hit_off);
            expect_records(w, 1, 1, last - 1);
            close_ok(w);
        } else {
            expect_corrupt(dir, &o, p, hit_off, what);
        }
        write_raw(p, raw, len);
        free(raw);
    }
    /* Damage found by wal_read in a log opened before the damage. */
    wal *w = open_ok(dir, &o, NULL);
    char p[PATH_MAX];
    seg_path(p, sizeof p, dir, firsts[1]);
    size_t len;
    uint8_t *raw = read_raw(p, &len);
    uint64_t off = SEG_HEADER; /* the segment's first record */
    raw[off + 2] ^= 0x10;
    write_raw(p, raw, len);
    check_ctx c = {.next = 1};
    ndl_error err;
    assert_int_equal(wal_read(w, 1, check_visit, &c, &err), NDL_CORRUPT);
    assert_int_equal(c.next, firsts[1]); /* everything before was right */
    assert_non_null(strstr(err.msg, p));
    char want[64];
    snprintf(want, sizeof want, "offset %llu", (unsigned long long)off);
    assert_non_null(strstr(err.msg, want));
    raw[off + 2] ^= 0x10;
    write_raw(p, raw, len);
    close_ok(w);
    free(raw);
}

/* A record up to wal_options.durable_lsn was whole on disk once (a
 * checkpoint covers it), so damage in it is NDL_CORRUPT even at the very
 * end of the log, and nothing is cut; past durable_lsn it is a torn tail. */
static void test_wal_durable_records_are_no_torn_tail(void **state)
{
    (void)state;
    char dir[PATH_MAX], p[PATH_MAX];
    path_in(dir, sizeof dir, "durable");
    uint64_t firsts[64], last = 0;
    size_t n = damage_fixture(dir, firsts, &last);
    seg_path(p, sizeof p, dir, firsts[n - 1]);
    size_t len;
    uint8_t *raw = read_raw(p, &len);
    uint64_t off = rec_offset(firsts[n - 1], last);
    wal_options o = opts(WAL_SYNC_NONE, 600);
    wal *w;
    for (int at = 0; at < 2; at++) { /* a payload byte, then the header's LSN */
        size_t byte = (size_t)off + (at ? 8 : REC_HEADER + 3);
        raw[byte] ^= 0x08;
        write_raw(p, raw, len);
        raw[byte] ^= 0x08;
        for (int ro = 0; ro < 2; ro++) {
            wal_options d = o;
            d.read_only = ro;
            d.durable_lsn = last;
            expect_corrupt(dir, &d, p, off, "damage in a durable last record");
            assert_int_equal(file_size(p), len); /* nothing cut */
        }
        wal_options d = o;
        d.durable_lsn = last - 1; /* the last record is not known durable: torn */
        wal_recovery rec;
        w = open_ok(dir, &d, &rec);
        assert_int_equal(rec.last_lsn, last - 1);
        assert_int_equal(rec.dropped_offset, off);
        assert_int_equal(rec.dropped_bytes, len - off);
        expect_records(w, 1, 1, last - 1);
        close_ok(w);
        write_raw(p, raw, len);
    }
    free(raw);
    w = open_ok(dir, &o, NULL);
    expect_records(w, 1, 1, last);
    close_ok(w);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_wal_garbage_length(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "garbage_len");
    uint64_t firsts[64], last = 0;
    size_t n = damage_fixture(dir, firsts, &last);
    wal_options o = opts(WAL_SYNC_NONE, 600);
    char p[PATH_MAX];
    static const uint32_t lens[] = {0xffffffffu, 0x80000000u, 0x40000001u, 0x3fffffffu,
                                    1u << 20, 601, 100000};

    /* in the last record of the last segment: a torn tail */
    seg_path(p, sizeof p, dir, firsts[n - 1]);
    size_t len;
    uint8_t *raw = read_raw(p, &len);
    uint64_t off = rec_offset(firsts[n - 1], last);
    for (size_t i = 0; i < NDL_ARRAY_LEN(lens); i++) {
        uint8_t *copy = malloc(len);
        assert_non_null(copy);
        memcpy(copy, raw, len);
        put_le32(copy + off, lens[i]);
        write_raw(p, copy, len);
        free(copy);
        wal_options ro = o;
        ro.read_only = 1;
        wal_recovery rec;
        wal *w = open_ok(dir, &ro, &rec);
        assert_int_equal(rec.last_lsn, last - 1);
        assert_int_equal(rec.dropped_offset, off);
        expect_records(w, 1, 1, last - 1);
        close_ok(w);
    }
    write_raw(p, raw, len);
    free(raw);

    /* in the middle of the log (first record of segment 1, and the one but
     * last of the last segment): corrupt */
    uint64_t targets[2][2] = {{firsts[1], firsts[1]}, {firsts[n - 1], last - 1}};
    for (int t = 0; t < 2; t++) {
        seg_path(p, sizeof p, dir, targets[t][0]);
        raw = read_raw(p, &len);
        off = rec_offset(targets[t][0], targets[t][1]);
        for (size_t i = 0; i <= NDL_ARRAY_LEN(lens); i++) {
            /* last: a length reaching exactly to the end of the file */
            uint32_t bad = i < NDL_ARRAY_LEN(lens) ? lens[i] : (uint32_t)(len - off - REC_HEADER);
            uint8_t *copy = malloc(len);
            assert_non_null(copy);
            memcpy(copy, raw, len);
            put_le32(copy + off, bad);
            write_raw(p, copy, len);
            free(copy);
            char what[64];
            snprintf(what, sizeof what, "target %d length %u", t, bad);
            expect_corrupt(dir, &o, p, off, what);
        }
        write_raw(p, raw, len);
        free(raw);
    }
    wal *w = open_ok(dir, &o, NULL);
    expect_records(w, 1, 1, last);
    close_ok(w);
}

static void test_wal_missing_segment_is_a_gap(void **state)
{
    (void)state;
    char dir[PATH_MAX], p[PATH_MAX], next[PATH_MAX];
    path_in(dir, sizeof dir, "gap");
    uint64_t firsts[64], last = 0;
    size_t n = damage_fixture(dir, firsts, &last);
    (void)n;
    seg_path(p, sizeof p, dir, firsts[1]);
    seg_path(next, sizeof next, dir, firsts[2]);
    size_t len;
    uint8_t *raw = read_raw(p, &len);
    assert_int_equal(unlink(p), 0);
    wal_options o = opts(WAL_SYNC_NONE, 600);
    wal *w = (wal *)&w;
    ndl_error err;
    assert_int_equal(wal_open(dir, &o, &w, NULL, &err), NDL_CORRUPT);
    assert_null(w);
    assert_non_null(strstr(err.msg, next));
    assert_non_null(strstr(err.msg, "gap"));
    /* the oldest segment missing is fine (a truncation) */
    write_raw(p, raw, len);
    seg_path(next, sizeof next, dir, firsts[0]);
    assert_int_equal(unlink(next), 0);
    w = open_ok(dir, &o, NULL);
    expect_records(w, 1, firsts[1], last);
    close_ok(w);
    free(raw);
}

/* ---------------------------------------------------------------- injected faults */

static void test_wal_write_failure_turns_read_only(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "fault_write");
    wal_options o = opts(WAL_SYNC_ALWAYS, 0);
    wal *w = open_ok(dir, &o, NULL);
    uint64_t last = 0;
    for (int i = 0; i < 5; i++)
        last = append_model(w, 1, 100);
    commit_ok(w, last);
    uint64_t bytes = wal_bytes(w);

    io_fault_set(IO_OP_WRITE, (io_fault){.after = 0, .times = 1, .error = EIO});
    uint64_t lsn = 99;
    ndl_error err;
    assert_int_equal(wal_append(w, 1, scratch, 100, &lsn, &err), NDL_IO);
    assert_int_equal(lsn, 0);
    char p[PATH_MAX];
    seg_path(p, sizeof p, dir, 1);
    assert_non_null(strstr(err.msg, p));
    assert_non_null(strstr(err.msg, strerror(EIO)));
    assert_non_null(wal_failure(w));
    assert_non_null(strstr(wal_failure(w), strerror(EIO)));
    io_fault_reset();
    /* read-only for good, even with the disk healthy again */
    assert_int_equal(wal_append(w, 1, scratch, 100, &lsn, &err), NDL_READ_ONLY);
    assert_non_null(strstr(err.msg, wal_failure(w)));
    assert_int_equal(wal_last_lsn(w), last);
    assert_int_equal(wal_bytes(w), bytes);
    commit_ok(w, last); /* already durable */
    expect_records(w, 1, 1, last);
    close_ok(w);
    wal_recovery rec;
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, last);
    assert_null(wal_failure(w));
    expect_records(w, 1, 1, last);
    commit_ok(w, append_model(w, 1, 3));
    close_ok(w);
}

static void test_wal_short_write_leaves_torn_tail(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "fault_short");
    wal_options o = opts(WAL_SYNC_ALWAYS, 0);
    wal *w = open_ok(dir, &o, NULL);
    uint64_t last = 0;
    for (int i = 0; i < 4; i++)
        last = append_model(w, 2, 64);
    commit_ok(w, last);
    uint64_t end = wal_bytes(w);
    io_fault_set(IO_OP_WRITE, (io_fault){.after = 0, .times = 1, .error = EIO, .short_by = 10});
    uint64_t lsn;
    ndl_error err;
    fill(scratch, 100, last + 1);
    assert_int_equal(wal_append(w, 2, scratch, 100, &lsn, &err), NDL_IO);
    assert_non_null(wal_failure(w));
    io_fault_reset();
    close_ok(w);
    char p[PATH_MAX];
    seg_path(p, sizeof p, dir, 1);
    assert_int_equal(file_size(p), end + rec_bytes(100) - 10); /* the torn record is there */
    wal_recovery rec;
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, last);
    assert_int_equal(rec.dropped_bytes, rec_bytes(100) - 10);
    assert_int_equal(rec.dropped_offset, end);
    assert_int_equal(file_size(p), end);
    expect_records(w, 1, 1, last);
    uint64_t l = append_model(w, 2, 100);
    assert_int_equal(l, last + 1);
    commit_ok(w, l);
    close_ok(w);
}

static void test_wal_fsync_failure_turns_read_only(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "fault_fsync");
    wal_options o = opts(WAL_SYNC_ALWAYS, 0);
    wal *w = open_ok(dir, &o, NULL);
    uint64_t committed = 0;
    for (int i = 0; i < 3; i++)
        committed = append_model(w, 3, 200);
    commit_ok(w, committed);
    uint64_t l4 = append_model(w, 3, 200);
    io_fault_set(IO_OP_FSYNC, (io_fault){.after = 0, .times = 1, .error = EIO});
    ndl_error err;
    assert_int_equal(wal_commit(w, l4, &err), NDL_IO);
    assert_int_equal(io_fault_fired(IO_OP_FSYNC), 1);
    assert_non_null(strstr(err.msg, "cannot sync"));
    assert_non_null(strstr(err.msg, strerror(EIO)));
    const char *why = wal_failure(w);
    assert_non_null(why);
    assert_non_null(strstr(why, "cannot sync"));
    io_fault_reset();
    /* never retried: the kernel may have dropped the pages (fsyncgate) */
    assert_int_equal(wal_commit(w, l4, &err), NDL_READ_ONLY);
    assert_non_null(strstr(err.msg, why));
    uint64_t lsn;
    assert_int_equal(wal_append(w, 3, scratch, 10, &lsn, &err), NDL_READ_ONLY);
    assert_int_equal(wal_commit(w, committed, &err), NDL_OK); /* synced before */
    assert_int_equal(io_calls(IO_OP_FSYNC), 0);
    close_ok(w); /* no sync attempted on close either */
    assert_int_equal(io_calls(IO_OP_FSYNC), 0);
    wal_recovery rec;
    w = open_ok(dir, &o, &rec);
    assert_true(rec.last_lsn >= committed);
    expect_records(w, 1, 1, rec.last_lsn);
    close_ok(w);
}

static void test_wal_disk_full_append_recovers(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "fault_enospc");
    wal_options o = opts(WAL_SYNC_ALWAYS, 0);
    wal *w = open_ok(dir, &o, NULL);
    uint64_t last = 0;
    for (int i = 0; i < 3; i++)
        last = append_model(w, 4, 300);
    commit_ok(w, last);
    uint64_t bytes = wal_bytes(w);
    char p[PATH_MAX];
    seg_path(p, sizeof p, dir, 1);
    /* a partial record lands, then ENOSPC: it is cut off again */
    for (int short_by = 0; short_by < 2; short_by++) {
        io_fault_set(IO_OP_WRITE, (io_fault){.after = 0, .times = 1, .error = ENOSPC,
                                             .short_by = short_by ? 17 : 0});
        uint64_t lsn = 5;
        ndl_error err;
        assert_int_equal(wal_append(w, 4, scratch, 300, &lsn, &err), NDL_DISK_FULL);
        assert_int_equal(lsn, 0);
        assert_non_null(strstr(err.msg, p));
        assert_non_null(strstr(err.msg, strerror(ENOSPC)));
        assert_null(wal_failure(w)); /* still writable */
        assert_int_equal(file_size(p), bytes);
        assert_int_equal(wal_bytes(w), bytes);
        assert_int_equal(wal_last_lsn(w), last);
    }
    io_fault_reset();
    uint64_t l = append_model(w, 4, 300);
    assert_int_equal(l, last + 1); /* the failed appends took no LSN */
    commit_ok(w, l);
    close_ok(w);
    wal_recovery rec;
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, l);
    assert_int_equal(rec.dropped_bytes, 0);
    expect_records(w, 1, 1, l);

    /* ENOSPC and the cut-off fails too: read-only */
    io_fault_set(IO_OP_WRITE, (io_fault){.after = 0, .times = 1, .error = ENOSPC, .short_by = 5});
    io_fault_set(IO_OP_FTRUNCATE, (io_fault){.after = 0, .times = 1, .error = EIO});
    uint64_t lsn;
    ndl_error err;
    assert_int_equal(wal_append(w, 4, scratch, 300, &lsn, &err), NDL_DISK_FULL);
    assert_non_null(wal_failure(w));
    io_fault_reset();
    assert_int_equal(wal_append(w, 4, scratch, 300, &lsn, &err), NDL_READ_ONLY);
    close_ok(w);
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, l);
    assert_int_equal(rec.dropped_bytes, rec_bytes(300) - 5);
    close_ok(w);
}

/* The two parts test_wal_large_record_write_fails appends. */
#define BIG_PART 700000

static ndl_status check_big(void *ctx, uint64_t lsn, uint32_t type, const void *data, size_t len,
                            ndl_error *err)
{
    (void)err;
    int *seen = ctx;
    const uint8_t *d = data;
    assert_int_equal(lsn, 1);
    assert_int_equal(type, 4);
    assert_int_equal(len, 2 * BIG_PART);
    assert_memory_equal(d, scratch, BIG_PART);
    assert_memory_equal(d + BIG_PART, scratch + 64, BIG_PART);
    (*seen)++;
    return NDL_OK;
}

/* A record over 1 MiB is written in pieces (header, parts, padding), not
 * staged: a write failing after the header (or after the first part)
 * landed cuts the partial record off again, takes no LSN, and the log
 * stays writable. */
static void test_wal_large_record_write_fails(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "fault_large");
    wal_options o = opts(WAL_SYNC_ALWAYS, (uint64_t)64 << 20);
    wal *w = open_ok(dir, &o, NULL);
    for (size_t i = 0; i < sizeof scratch; i++)
        scratch[i] = (uint8_t)(i * 131 + 7);
    wal_part parts[2] = {{scratch, BIG_PART}, {scratch + 64, BIG_PART}};
    char p[PATH_MAX];
    seg_path(p, sizeof p, dir, 1);
    uint64_t before = file_size(p);
    uint64_t lsn;
    ndl_error err;
    for (long after = 1; after <= 2; after++) { /* header landed; then part 1 too */
        io_fault_set(IO_OP_WRITE, (io_fault){.after = after, .times = 1, .error = ENOSPC});
        assert_int_equal(wal_append_parts(w, 4, parts, 2, &lsn, &err), NDL_DISK_FULL);
        assert_int_equal(io_fault_fired(IO_OP_WRITE), 1);
        io_fault_reset();
        assert_null(wal_failure(w));
        assert_int_equal(file_size(p), before);
        assert_int_equal(wal_last_lsn(w), 0);
    }
    assert_int_equal(wal_append_parts(w, 4, parts, 2, &lsn, &err), NDL_OK);
    assert_int_equal(lsn, 1);
    commit_ok(w, lsn);
    close_ok(w);
    wal_recovery rec;
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, 1);
    assert_int_equal(rec.dropped_bytes, 0);
    int seen = 0;
    assert_int_equal(wal_read(w, 1, check_big, &seen, &err), NDL_OK);
    assert_int_equal(seen, 1);
    close_ok(w);
}

static void test_wal_roll_failures(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "fault_roll");
    wal_options o = opts(WAL_SYNC_ALWAYS, 256);
    wal *w = open_ok(dir, &o, NULL);
    uint64_t last = append_model(w, 1, 150); /* fills the first segment */
    commit_ok(w, last);
    /* creating the next segment hits ENOSPC: nothing changes, no .tmp */
    io_fault_set(IO_OP_WRITE, (io_fault){.after = 0, .times = 1, .error = ENOSPC});
    uint64_t lsn;
    ndl_error err;
    assert_int_equal(wal_append(w, 1, scratch, 150, &lsn, &err), NDL_DISK_FULL);
    assert_null(wal_failure(w));
    assert_int_equal(count_entries(dir, ".tmp"), 0);
    uint64_t firsts[8];
    assert_int_equal(list_segs(dir, firsts, 8), 1);
    io_fault_reset();
    last = append_model(w, 1, 150);
    commit_ok(w, last);
    assert_int_equal(list_segs(dir, firsts, 8), 2);
    /* the old segment's sync fails while rolling: read-only */
    uint64_t l = append_model(w, 1, 150); /* not yet synced */
    (void)l;
    io_fault_set(IO_OP_FSYNC, (io_fault){.after = 0, .times = 1, .error = EIO});
    assert_int_equal(wal_append(w, 1, scratch, 150, &lsn, &err), NDL_IO);
    assert_non_null(wal_failure(w));
    io_fault_reset();
    assert_int_equal(wal_commit(w, l, &err), NDL_READ_ONLY);
    close_ok(w);
    wal_recovery rec;
    w = open_ok(dir, &o, &rec);
    assert_true(rec.last_lsn >= last);
    expect_records(w, 1, 1, rec.last_lsn);
    close_ok(w);
}

static void test_wal_truncate_unlink_failure(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "fault_unlink");
    wal_options o = opts(WAL_SYNC_NONE, 256);
    wal *w = open_ok(dir, &o, NULL);
    uint64_t last = 0;
    for (int i = 0; i < 10; i++)
        last = append_model(w, 1, 150);
    uint64_t firsts[32];
    size_t n = list_segs(dir, firsts, 32);
    assert_int_equal(n, 10);
    io_fault_set(IO_OP_UNLINK, (io_fault){.after = 2, .times = 1, .error = EACCES});
    ndl_error err;
    assert_int_equal(wal_truncate_before(w, last, &err), NDL_IO);
    assert_non_null(strstr(err.msg, strerror(EACCES)));
    io_fault_reset();
    assert_int_equal(list_segs(dir, firsts, 32), 8); /* the oldest two went */
    assert_int_equal(wal_bytes(w), dir_bytes(dir));
    expect_records(w, 1, 3, last);
    assert_int_equal(wal_truncate_before(w, last, &err), NDL_OK);
    assert_int_equal(list_segs(dir, firsts, 32), 1);
    assert_int_equal(wal_bytes(w), dir_bytes(dir));
    close_ok(w);
}

/* ---------------------------------------------------------------- group commit */

#define GC_THREADS 8
#define GC_RECORDS 200

typedef struct gc_thread {
    wal *w;
    int id;
    int rounds;
    pthread_barrier_t *barrier; /* NULL: run freely */
    uint64_t lsns[GC_RECORDS];
    int failed;
} gc_thread;

/* Payload: thread id and sequence number, so every record is attributable. */
static void *gc_main(void *p)
{
    gc_thread *t = p;
    for (int i = 0; i < t->rounds; i++) {
        uint32_t payload[8] = {(uint32_t)t->id, (uint32_t)i, 0xabcdef01u};
        uint64_t lsn;
        if (wal_append(t->w, 9, payload, sizeof payload, &lsn, NULL) != NDL_OK)
            t->failed = 1;
        if (t->barrier)
            pthread_barrier_wait(t->barrier);
        if (wal_commit(t->w, lsn, NULL) != NDL_OK)
            t->failed = 1;
        t->lsns[i] = lsn;
    }
    return NULL;
}

typedef struct gc_check {
    int seen[GC_THREADS][GC_RECORDS];
    const gc_thread *threads;
    uint64_t count;
} gc_check;

static ndl_status gc_visit(void *p, uint64_t lsn, uint32_t type, const void *data, size_t len,
                           ndl_error *err)
{
    (void)err;
    gc_check *c = p;
    assert_int_equal(type, 9);
    assert_int_equal(len, 32);
    uint32_t v[8];
    memcpy(v, data, sizeof v);
    assert_true(v[0] < GC_THREADS && v[1] < GC_RECORDS);
    assert_int_equal(v[2], 0xabcdef01u);
    assert_int_equal(c->threads[v[0]].lsns[v[1]], lsn); /* where its writer was told */
    c->seen[v[0]][v[1]]++;
    c->count++;
    return NDL_OK;
}

static long run_group_commit(const char *name, int rounds, int with_barrier)
{
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, name);
    wal_options o = opts(WAL_SYNC_ALWAYS, 0);
    wal *w = open_ok(dir, &o, NULL);
    long syncs_before = io_calls(IO_OP_FSYNC);
    static gc_thread t[GC_THREADS];
    pthread_t tid[GC_THREADS];
    pthread_barrier_t barrier;
    if (with_barrier)
        assert_int_equal(pthread_barrier_init(&barrier, NULL, GC_THREADS), 0);
    for (int i = 0; i < GC_THREADS; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].w = w;
        t[i].id = i;
        t[i].rounds = rounds;
        t[i].barrier = with_barrier ? &barrier : NULL;
        assert_int_equal(pthread_create(&tid[i], NULL, gc_main, &t[i]), 0);
    }
    for (int i = 0; i < GC_THREADS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_false(t[i].failed);
    }
    long syncs = io_calls(IO_OP_FSYNC) - syncs_before;
    if (with_barrier)
        pthread_barrier_destroy(&barrier);
    uint64_t total = (uint64_t)GC_THREADS * (uint64_t)rounds;
    assert_int_equal(wal_last_lsn(w), total);
    close_ok(w);
    wal_recovery rec;
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, total);
    static gc_check c;
    memset(&c, 0, sizeof c);
    c.threads = t;
    assert_int_equal(wal_read(w, 1, gc_visit, &c, NULL), NDL_OK);
    assert_int_equal(c.count, total); /* every LSN once, each where its writer was told */
    for (int i = 0; i < GC_THREADS; i++)
        for (int j = 0; j < rounds; j++)
            assert_int_equal(c.seen[i][j], 1);
    close_ok(w);
    return syncs;
}

static void test_wal_group_commit_threads(void **state)
{
    (void)state;
    long commits = (long)GC_THREADS * GC_RECORDS;
    long syncs = run_group_commit("group_free", GC_RECORDS, 0);
    print_message("group commit: %ld fdatasyncs for %ld commits (%.2f commits per sync)\n",
                  syncs, commits, syncs ? (double)commits / (double)syncs : 0.0);
    assert_true(syncs >= 1 && syncs <= commits);
}

/* Rounds of: every thread appends, a barrier, every thread commits. The
 * first committer of a round syncs all eight records; the others find
 * them synced or wait for that sync -- one fdatasync per round. */
static void test_wal_group_commit_shares_one_sync(void **state)
{
    (void)state;
    int rounds = 40;
    long syncs = run_group_commit("group_barrier", rounds, 1);
    print_message("group commit with barrier: %ld fdatasyncs for %d commits\n", syncs,
                  rounds * GC_THREADS);
    assert_true(syncs <= rounds);
}

static void test_wal_group_commit_failure_reaches_waiters(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "group_fail");
    wal_options o = opts(WAL_SYNC_ALWAYS, 0);
    wal *w = open_ok(dir, &o, NULL);
    io_fault_set(IO_OP_FSYNC, (io_fault){.after = 20, .times = -1, .error = EIO});
    static gc_thread t[GC_THREADS];
    pthread_t tid[GC_THREADS];
    for (int i = 0; i < GC_THREADS; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].w = w;
        t[i].id = i;
        t[i].rounds = 50;
        assert_int_equal(pthread_create(&tid[i], NULL, gc_main, &t[i]), 0);
    }
    for (int i = 0; i < GC_THREADS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_true(t[i].failed); /* nobody hangs; everyone hears of it */
    }
    assert_int_equal(io_fault_fired(IO_OP_FSYNC), 1); /* never retried */
    assert_non_null(wal_failure(w));
    io_fault_reset();
    close_ok(w);
}

/* ---------------------------------------------------------------- BATCH, NONE */

static void test_wal_batch_mode(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "batch");
    wal_options o = opts(WAL_SYNC_BATCH, 4096);
    o.batch_ms = 2;
    wal *w = open_ok(dir, &o, NULL);
    long before = io_calls(IO_OP_FSYNC);
    uint64_t last = 0;
    for (int i = 0; i < 300; i++) {
        last = append_model(w, 5, (uint32_t)(i % 200));
        commit_ok(w, last); /* returns at once */
    }
    /* the background thread syncs within a few milliseconds */
    for (int i = 0; i < 5000 && io_calls(IO_OP_FSYNC) == before; i++)
        usleep(1000);
    assert_true(io_calls(IO_OP_FSYNC) > before);
    close_ok(w);
    wal_recovery rec;
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, last);
    assert_int_equal(rec.dropped_bytes, 0);
    expect_records(w, 1, 1, last);

    /* a failed background sync turns the log read-only */
    io_fault_set(IO_OP_FSYNC, (io_fault){.after = 0, .times = -1, .error = EIO});
    uint64_t l = append_model(w, 5, 8);
    for (int i = 0; i < 5000 && !wal_failure(w); i++)
        usleep(1000);
    assert_non_null(wal_failure(w));
    ndl_error err;
    assert_int_equal(wal_commit(w, l, &err), NDL_READ_ONLY);
    uint64_t lsn;
    assert_int_equal(wal_append(w, 5, scratch, 8, &lsn, &err), NDL_READ_ONLY);
    io_fault_reset();
    close_ok(w);
}

static void test_wal_none_mode_never_syncs(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "none");
    wal_options o = opts(WAL_SYNC_NONE, 2048);
    io_fault_reset();
    wal *w = open_ok(dir, &o, NULL);
    uint64_t last = 0;
    for (int i = 0; i < 300; i++) {
        last = append_model(w, 6, (uint32_t)(i * 3 % 300));
        commit_ok(w, last);
    }
    assert_int_equal(wal_truncate_before(w, 100, NULL), NDL_OK);
    close_ok(w);
    assert_int_equal(io_calls(IO_OP_FSYNC), 0); /* not the segments, not the directory */
    wal_recovery rec;
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, last);
    uint64_t firsts[64];
    list_segs(dir, firsts, 64);
    expect_records(w, 1, firsts[0], last);
    assert_true(firsts[0] <= 100);
    close_ok(w);
}

/* ---------------------------------------------------------------- read-only, readers */

static void test_wal_read_only_open(void **state)
{
    (void)state;
    char dir[PATH_MAX], p[PATH_MAX];
    path_in(dir, sizeof dir, "readonly");
    wal_options o = opts(WAL_SYNC_NONE, 0);
    o.read_only = 1;
    /* a missing log reads as empty and is not created */
    wal_recovery rec;
    wal *w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, 0);
    expect_records(w, 1, 1, 0);
    close_ok(w);
    assert_false(exists(dir));

    o.read_only = 0;
    w = open_ok(dir, &o, NULL);
    uint64_t last = 0;
    for (int i = 0; i < 6; i++)
        last = append_model(w, 8, 40);
    close_ok(w);
    seg_path(p, sizeof p, dir, 1);
    uint64_t size = file_size(p);
    /* tear the last record */
    assert_int_equal(truncate(p, (off_t)(size - 5)), 0);
    o.read_only = 1;
    w = open_ok(dir, &o, &rec);
    assert_int_equal(rec.last_lsn, last - 1);
    assert_int_equal(rec.dropped_bytes, rec_bytes(40) - 5);
    assert_int_equal(file_size(p), size - 5); /* skipped, not cut */
    expect_records(w, 1, 1, last - 1);
    uint64_t lsn;
    ndl_error err;
    assert_int_equal(wal_append(w, 8, scratch, 1, &lsn, &err), NDL_READ_ONLY);
    assert_int_equal(wal_truncate_before(w, 3, &err), NDL_READ_ONLY);
    assert_int_equal(wal_commit(w, last - 1, &err), NDL_OK);
    assert_null(wal_failure(w));
    close_ok(w);
    assert_int_equal(file_size(p), size - 5);
}

typedef struct reader_ctx {
    wal *w;
    _Atomic int stop;
    int rounds;
} reader_ctx;

static void *reader_main(void *p)
{
    reader_ctx *r = p;
    while (!atomic_load(&r->stop)) {
        check_ctx c = {.next = 1};
        ndl_error err;
        if (wal_read(r->w, 1, check_visit, &c, &err) != NDL_OK)
            fail_msg("concurrent wal_read: %s", err.msg);
        r->rounds++;
    }
    return NULL;
}

/* Readers see a whole prefix of the log while an appender rolls segments. */
static void test_wal_read_while_appending(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    path_in(dir, sizeof dir, "concurrent");
    wal_options o = opts(WAL_SYNC_NONE, 8192);
    wal *w = open_ok(dir, &o, NULL);
    /* the model must be filled before a reader may look: write it first */
    for (uint64_t l = 1; l <= 3000; l++) {
        model_type[l] = 11;
        model_len[l] = (uint32_t)(l * 31 % 500);
    }
    reader_ctx r = {.w = w, .stop = 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
    for (uint64_t l = 1; l <= 3000; l++) {
        fill(scratch, model_len[l], l);
        uint64_t lsn;
        assert_int_equal(wal_append(w, 11, scratch, model_len[l], &lsn, NULL), NDL_OK);
        assert_int_equal(lsn, l);
    }
    atomic_store(&r.stop, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(r.rounds > 0);
    expect_records(w, 1, 1, 3000);
    close_ok(w);
}

/* The active segment reserves 4 MiB of blocks when created and the rest of
 * its size once writes pass that (wal.c, reserve_ahead): an idle log holds
 * 4 MiB of disk, a busy one its whole segment. Skipped where the file
 * system does not allocate ahead (no fallocate). */
static void test_wal_reserves_ahead_in_one_step(void **state)
{
    (void)state;
    char dir[PATH_MAX], seg[PATH_MAX];
    path_in(dir, sizeof dir, "reserve");
    assert_int_equal(mkdir(dir, 0755), 0);
    wal_options o = opts(WAL_SYNC_ALWAYS, 64u << 20);
    wal *w = open_ok(dir, &o, NULL);
    seg_path(seg, sizeof seg, dir, 1);
    struct stat st;
    assert_int_equal(stat(seg, &st), 0);
    uint64_t held = (uint64_t)st.st_blocks * 512;
    if (held < (4u << 20)) {
        close_ok(w);
        skip(); /* no fallocate here */
    }
    assert_true(held < (8u << 20)); /* not the whole 64 MiB segment */
    assert_int_equal((uint64_t)st.st_size, SEG_HEADER);
    /* reopened, an idle log written once keeps its first step */
    close_ok(w);
    w = open_ok(dir, &o, NULL);
    uint64_t lsn = append_model(w, 1, 100);
    commit_ok(w, lsn);
    assert_int_equal(stat(seg, &st), 0);
    assert_true((uint64_t)st.st_blocks * 512 < (8u << 20));
    for (int i = 0; i < 80; i++) /* 5 MiB: past the first reserve */
        lsn = append_model(w, 1, 64u << 10);
    commit_ok(w, lsn);
    assert_int_equal(stat(seg, &st), 0);
    assert_true((uint64_t)st.st_blocks * 512 >= (64u << 20));
    assert_true((uint64_t)st.st_size < (6u << 20)); /* the size is what was written */
    close_ok(w);
    w = open_ok(dir, &o, NULL); /* and every record reads back */
    expect_records(w, 1, 1, lsn);
    close_ok(w);
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset_faults, reset_faults)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_wal_round_trip_all_sizes),
        T(test_wal_exact_byte_format),
        T(test_wal_segments_roll_and_truncate),
        T(test_wal_read_stops_when_visitor_fails),
        T(test_wal_torn_tail_every_offset),
        T(test_wal_torn_segment_header_recovered),
        T(test_wal_segment_header_byte_flips),
        T(test_wal_record_bit_flips),
        T(test_wal_durable_records_are_no_torn_tail),
        T(test_wal_garbage_length),
        T(test_wal_missing_segment_is_a_gap),
        T(test_wal_write_failure_turns_read_only),
        T(test_wal_short_write_leaves_torn_tail),
        T(test_wal_fsync_failure_turns_read_only),
        T(test_wal_disk_full_append_recovers),
        T(test_wal_large_record_write_fails),
        T(test_wal_roll_failures),
        T(test_wal_truncate_unlink_failure),
        T(test_wal_group_commit_threads),
        T(test_wal_group_commit_shares_one_sync),
        T(test_wal_group_commit_failure_reaches_waiters),
        T(test_wal_batch_mode),
        T(test_wal_none_mode_never_syncs),
        T(test_wal_read_only_open),
        T(test_wal_read_while_appending),
        T(test_wal_reserves_ahead_in_one_step),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
