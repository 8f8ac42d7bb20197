/*
 * test_storage.c -- unit tests of src/storage: the sfile container (round
 * trips, atomic publication, detection of every header bit flip, data damage
 * and truncation, error mapping) and the vector arena (chunking, pointer
 * stability, adopting a file mapping, limits).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw's FTW_PHYS; the build normally defines it */
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/arena.h"
#include "storage/sfile.h"
#include "util/alloc.h"

#define KIND_TEST SFILE_KIND('T', 'E', 'S', 'T')
#define KIND_VECS SFILE_KIND('V', 'E', 'C', 'S')
#define KIND_HNSW SFILE_KIND('H', 'N', 'S', 'W')

/* One scratch directory per group run, removed at the end. */
static char tmpdir[64];

static uint64_t rng_state = 0x243F6A8885A308D3ull;

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
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle_storage_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* path of name inside the scratch directory (static buffer per call site). */
static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
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

/* Write an sfile holding len pseudo-random bytes (returned if out != NULL). */
static void make_file(const char *path, uint32_t kind, uint32_t version, size_t len,
                      uint8_t **out)
{
    uint8_t *data = malloc(len ? len : 1);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)rng_next();
    sfile_writer *w;
    ndl_error err;
    assert_int_equal(sfile_create(path, kind, version, &w, &err), NDL_OK);
    assert_int_equal(sfile_write(w, data, len, &err), NDL_OK);
    assert_int_equal(sfile_commit(w, &err), NDL_OK);
    if (out)
        *out = data;
    else
        free(data);
}

/* ---------------------------------------------------------------- sfile */

static void test_storage_sfile_round_trip(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in(path, sizeof path, "round.sf");
    ndl_error err;
    sfile_writer *w;
    assert_int_equal(sfile_create(path, KIND_TEST, 3, &w, &err), NDL_OK);
    assert_non_null(w);

    /* Little-endian fields, a 3 MiB blob (larger than the writer's buffer, so
     * it goes straight through), small writes, padding. */
    uint8_t le[12] = {0x78, 0x56, 0x34, 0x12, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01};
    assert_int_equal(sfile_write(w, le, sizeof le, &err), NDL_OK);
    assert_int_equal(sfile_written(w), 12);
    size_t blob_len = 3u << 20;
    uint8_t *blob = malloc(blob_len);
    assert_non_null(blob);
    for (size_t i = 0; i < blob_len; i++)
        blob[i] = (uint8_t)rng_next();
    assert_int_equal(sfile_write(w, blob, blob_len, &err), NDL_OK);
    assert_int_equal(sfile_write(w, "abc", 3, &err), NDL_OK);
    assert_int_equal(sfile_write(w, "", 0, &err), NDL_OK);
    assert_int_equal(sfile_pad(w, 64, &err), NDL_OK);
    uint64_t at_pad = sfile_written(w);
    assert_int_equal(at_pad % 64, 0);
    assert_true(at_pad >= 12 + blob_len + 3 && at_pad < 12 + blob_len + 3 + 64);
    assert_int_equal(sfile_pad(w, 64, &err), NDL_OK); /* already aligned */
    assert_int_equal(sfile_pad(w, 0, &err), NDL_OK);
    assert_int_equal(sfile_pad(w, 1, &err), NDL_OK);
    assert_int_equal(sfile_written(w), at_pad);
    /* Many small writes that cross the buffer boundary. */
    for (uint32_t i = 0; i < 300000; i++) {
        uint8_t b[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), (uint8_t)(i >> 24)};
        assert_int_equal(sfile_write(w, b, 4, NULL), NDL_OK);
    }
    assert_int_equal(sfile_write(w, "z", 1, &err), NDL_OK);
    assert_int_equal(sfile_pad(w, 8, &err), NDL_OK);
    uint64_t total = sfile_written(w);
    assert_int_equal(total, at_pad + 1200000 + 8);
    assert_int_equal(sfile_commit(w, &err), NDL_OK);

    sfile_map m;
    assert_int_equal(sfile_map_open(path, KIND_TEST, 3, 1, &m, &err), NDL_OK);
    assert_int_equal(m.version, 3);
    assert_int_equal(m.data_len, total);
    assert_int_equal(m.len, SFILE_HEADER_BYTES + total);
    assert_ptr_equal(m.data, (const uint8_t *)m.base + 64);
    assert_int_equal((uintptr_t)m.data % 64, 0);
    assert_int_equal(sfile_verify(&m, path, &err), NDL_OK);

    sfile_cursor c;
    sfile_cursor_init(&c, &m);
    assert_int_equal(sfile_get_u32(&c), 0x12345678u);
    assert_int_equal(sfile_get_u64(&c), 0x0123456789abcdefull);
    const uint8_t *got = sfile_get_bytes(&c, blob_len);
    assert_non_null(got);
    assert_memory_equal(got, blob, blob_len);
    assert_memory_equal(sfile_get_bytes(&c, 3), "abc", 3);
    sfile_cursor_align(&c, &m, 64);
    assert_int_equal(c.p - m.data, at_pad);
    for (uint32_t i = 0; i < 300000; i++)
        if (sfile_get_u32(&c) != i)
            fail_msg("u32 %u read back wrong", i);
    assert_memory_equal(sfile_get_bytes(&c, 1), "z", 1);
    sfile_cursor_align(&c, &m, 8);
    assert_ptr_equal(c.p, c.end);
    assert_false(c.overrun);
    assert_non_null(sfile_get_bytes(&c, 0));
    /* Reading past the end: zeros, NULL, and the flag stays set. */
    assert_int_equal(sfile_get_u32(&c), 0);
    assert_true(c.overrun);
    assert_int_equal(sfile_get_u64(&c), 0);
    assert_null(sfile_get_bytes(&c, 1));
    assert_null(sfile_get_bytes(&c, 0));
    sfile_map_close(&m);
    assert_null(m.base);
    sfile_map_close(&m); /* closing twice is harmless */
    free(blob);
}

static void test_storage_sfile_cursor_overrun_partial(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in(path, sizeof path, "partial.sf");
    make_file(path, KIND_TEST, 1, 6, NULL);
    sfile_map m;
    assert_int_equal(sfile_map_open(path, KIND_TEST, 1, 1, &m, NULL), NDL_OK);
    sfile_cursor c;
    sfile_cursor_init(&c, &m);
    assert_int_equal(sfile_get_u64(&c), 0); /* 8 > 6 */
    assert_true(c.overrun);
    /* Even a read that would fit fails once overrun is set. */
    assert_int_equal(sfile_get_u32(&c), 0);
    sfile_cursor_init(&c, &m);
    sfile_get_u32(&c);
    sfile_cursor_align(&c, &m, 16); /* pad beyond the end */
    assert_true(c.overrun);
    assert_null(sfile_get_bytes(&c, 1));
    sfile_map_close(&m);
    /* A zeroed map gives an empty cursor. */
    sfile_map z;
    memset(&z, 0, sizeof z);
    sfile_cursor_init(&c, &z);
    sfile_cursor_align(&c, &z, 8);
    assert_false(c.overrun);
    assert_int_equal(sfile_get_u32(&c), 0);
    assert_true(c.overrun);
}

static void test_storage_sfile_empty_data_is_valid(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in(path, sizeof path, "empty.sf");
    make_file(path, KIND_TEST, 0, 0, NULL);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 64);
    sfile_map m;
    ndl_error err;
    assert_int_equal(sfile_map_open(path, KIND_TEST, 0, 1, &m, &err), NDL_OK);
    assert_int_equal(m.data_len, 0);
    assert_int_equal(m.version, 0);
    sfile_cursor c;
    sfile_cursor_init(&c, &m);
    assert_int_equal(sfile_get_u32(&c), 0);
    assert_true(c.overrun);
    sfile_map_close(&m);
}

static void test_storage_sfile_header_layout(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in(path, sizeof path, "layout.sf");
    uint8_t *data;
    make_file(path, KIND_VECS, 0x01020304u, 100, &data);
    size_t len;
    uint8_t *raw = read_raw(path, &len);
    assert_int_equal(len, 164);
    static const uint8_t want[24] = {'N', 'E', 'E', 'D', 'L', 'E', '\r', '\n', 'V', 'E',
                                     'C', 'S', 4, 3, 2, 1, 100, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(raw, want, 24);
    uint32_t dcrc = crc32c(0, data, 100);
    uint8_t le[4] = {(uint8_t)dcrc, (uint8_t)(dcrc >> 8), (uint8_t)(dcrc >> 16),
                     (uint8_t)(dcrc >> 24)};
    assert_memory_equal(raw + 24, le, 4);
    for (int i = 28; i < 60; i++)
        assert_int_equal(raw[i], 0); /* flags and reserved */
    uint32_t hcrc = crc32c(0, raw, 60);
    assert_int_equal(raw[60] | raw[61] << 8 | raw[62] << 16 | (uint32_t)raw[63] << 24, hcrc);
    assert_memory_equal(raw + 64, data, 100);
    free(raw);
    free(data);
}

static void test_storage_sfile_tmp_removed_after_commit(void **state)
{
    (void)state;
    char path[PATH_MAX], tmp[PATH_MAX];
    path_in(path, sizeof path, "commit.sf");
    path_in(tmp, sizeof tmp, "commit.sf.tmp");
    sfile_writer *w;
    assert_int_equal(sfile_create(path, KIND_TEST, 1, &w, NULL), NDL_OK);
    assert_true(exists(tmp));
    assert_false(exists(path));
    assert_int_equal(sfile_write(w, "data", 4, NULL), NDL_OK);
    assert_int_equal(sfile_commit(w, NULL), NDL_OK);
    assert_false(exists(tmp));
    assert_true(exists(path));
    /* Rewriting replaces the old file atomically. */
    make_file(path, KIND_TEST, 2, 10, NULL);
    sfile_map m;
    assert_int_equal(sfile_map_open(path, KIND_TEST, 2, 1, &m, NULL), NDL_OK);
    assert_int_equal(m.version, 2);
    assert_int_equal(m.data_len, 10);
    sfile_map_close(&m);
    assert_false(exists(tmp));
}

static void test_storage_sfile_tmp_removed_after_abort(void **state)
{
    (void)state;
    char path[PATH_MAX], tmp[PATH_MAX];
    path_in(path, sizeof path, "abort.sf");
    path_in(tmp, sizeof tmp, "abort.sf.tmp");
    sfile_writer *w;
    assert_int_equal(sfile_create(path, KIND_TEST, 1, &w, NULL), NDL_OK);
    assert_int_equal(sfile_write(w, "data", 4, NULL), NDL_OK);
    assert_true(exists(tmp));
    sfile_abort(w);
    assert_false(exists(tmp));
    assert_false(exists(path));
    sfile_abort(NULL);
    /* Abort leaves an existing file untouched. */
    make_file(path, KIND_TEST, 1, 5, NULL);
    assert_int_equal(sfile_create(path, KIND_TEST, 2, &w, NULL), NDL_OK);
    sfile_abort(w);
    sfile_map m;
    assert_int_equal(sfile_map_open(path, KIND_TEST, 2, 1, &m, NULL), NDL_OK);
    assert_int_equal(m.version, 1);
    sfile_map_close(&m);
}

static void test_storage_sfile_every_header_bit_flip_detected(void **state)
{
    (void)state;
    char path[PATH_MAX], bad[PATH_MAX];
    path_in(path, sizeof path, "flip.sf");
    path_in(bad, sizeof bad, "flip_bad.sf");
    make_file(path, KIND_VECS, 2, 256, NULL);
    size_t len;
    uint8_t *raw = read_raw(path, &len);
    for (int bit = 0; bit < SFILE_HEADER_BYTES * 8; bit++) {
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        write_raw(bad, raw, len);
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        for (int verify = 0; verify < 2; verify++) {
            sfile_map m;
            ndl_error err = {0, ""};
            ndl_status rc = sfile_map_open(bad, KIND_VECS, 2, verify, &m, &err);
            if (rc != NDL_CORRUPT && rc != NDL_UNSUPPORTED)
                fail_msg("bit %d (verify %d): status %s", bit, verify, ndl_status_name(rc));
            assert_int_equal(err.status, rc);
            assert_non_null(strstr(err.msg, bad));
            assert_null(m.base);
            sfile_map_close(&m);
        }
    }
    /* The pristine bytes still open. */
    write_raw(bad, raw, len);
    sfile_map m;
    assert_int_equal(sfile_map_open(bad, KIND_VECS, 2, 1, &m, NULL), NDL_OK);
    sfile_map_close(&m);
    free(raw);
}

static void test_storage_sfile_specific_header_errors(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in(path, sizeof path, "hdr.sf");
    make_file(path, KIND_VECS, 1, 32, NULL);
    size_t len;
    uint8_t *raw = read_raw(path, &len);
    sfile_map m;
    ndl_error err;

    raw[0] = 'X'; /* magic */
    write_raw(path, raw, len);
    assert_int_equal(sfile_map_open(path, KIND_VECS, 1, 0, &m, &err), NDL_CORRUPT);
    assert_non_null(strstr(err.msg, "is not a needle file"));
    raw[0] = 'N';

    raw[40] ^= 1; /* reserved byte, covered by the header checksum */
    write_raw(path, raw, len);
    assert_int_equal(sfile_map_open(path, KIND_VECS, 1, 0, &m, &err), NDL_CORRUPT);
    assert_non_null(strstr(err.msg, "header checksum mismatch"));
    raw[40] ^= 1;

    write_raw(path, raw, len);
    assert_int_equal(sfile_map_open(path, KIND_VECS, 1, 0, &m, &err), NDL_OK);
    sfile_map_close(&m);
    free(raw);
}

static void test_storage_sfile_newer_version_unsupported(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in(path, sizeof path, "newer.sf");
    make_file(path, KIND_TEST, 3, 8, NULL);
    sfile_map m;
    ndl_error err;
    assert_int_equal(sfile_map_open(path, KIND_TEST, 2, 1, &m, &err), NDL_UNSUPPORTED);
    assert_int_equal(err.status, NDL_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "format version 3 is newer than this build supports (max 2)"));
    assert_non_null(strstr(err.msg, path));
    assert_null(m.base);
    assert_int_equal(sfile_map_open(path, KIND_TEST, 3, 1, &m, &err), NDL_OK);
    sfile_map_close(&m);
}

static void test_storage_sfile_data_bit_flips_detected(void **state)
{
    (void)state;
    char path[PATH_MAX], bad[PATH_MAX];
    path_in(path, sizeof path, "data.sf");
    path_in(bad, sizeof bad, "data_bad.sf");
    make_file(path, KIND_TEST, 1, 4000, NULL);
    size_t len;
    uint8_t *raw = read_raw(path, &len);
    for (int round = 0; round < 300; round++) {
        size_t bit = 64 * 8 + rng_next() % ((len - 64) * 8);
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        write_raw(bad, raw, len);
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sfile_map m;
        ndl_error err;
        assert_int_equal(sfile_map_open(bad, KIND_TEST, 1, 1, &m, &err), NDL_CORRUPT);
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "data checksum mismatch in '%s'", bad);
        assert_string_equal(err.msg, want);
        assert_null(m.base);
        /* Without verification the header is fine; sfile_verify catches it. */
        assert_int_equal(sfile_map_open(bad, KIND_TEST, 1, 0, &m, &err), NDL_OK);
        assert_int_equal(sfile_verify(&m, bad, &err), NDL_CORRUPT);
        assert_int_equal(sfile_verify(&m, NULL, NULL), NDL_CORRUPT);
        sfile_map_close(&m);
    }
    free(raw);
}

static void test_storage_sfile_truncation_detected(void **state)
{
    (void)state;
    char path[PATH_MAX], bad[PATH_MAX];
    path_in(path, sizeof path, "trunc.sf");
    path_in(bad, sizeof bad, "trunc_bad.sf");
    make_file(path, KIND_TEST, 1, 300, NULL);
    size_t len;
    uint8_t *raw = read_raw(path, &len);
    assert_int_equal(len, 364);
    for (size_t cut = 0; cut < len; cut++) {
        write_raw(bad, raw, cut);
        for (int verify = 0; verify < 2; verify++) {
            sfile_map m;
            ndl_error err;
            ndl_status rc = sfile_map_open(bad, KIND_TEST, 1, verify, &m, &err);
            if (rc != NDL_CORRUPT)
                fail_msg("cut at %zu: status %s", cut, ndl_status_name(rc));
            char want[PATH_MAX + 128];
            if (cut < 64)
                snprintf(want, sizeof want, "'%s' is truncated (%zu bytes; header needs 64)", bad,
                         cut);
            else
                snprintf(want, sizeof want,
                         "'%s' is truncated: header says 300 data bytes, file has %zu", bad,
                         cut - 64);
            assert_string_equal(err.msg, want);
            assert_null(m.base);
        }
    }
    /* Extra bytes after the data are tolerated (the header says how much). */
    uint8_t *longer = calloc(1, len + 10);
    assert_non_null(longer);
    memcpy(longer, raw, len);
    write_raw(bad, longer, len + 10);
    sfile_map m;
    assert_int_equal(sfile_map_open(bad, KIND_TEST, 1, 1, &m, NULL), NDL_OK);
    assert_int_equal(m.data_len, 300);
    sfile_map_close(&m);
    free(longer);
    free(raw);
}

static void test_storage_sfile_wrong_kind_detected(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in(path, sizeof path, "kind.sf");
    make_file(path, KIND_HNSW, 1, 16, NULL);
    sfile_map m;
    ndl_error err;
    assert_int_equal(sfile_map_open(path, KIND_VECS, 1, 1, &m, &err), NDL_CORRUPT);
    assert_non_null(strstr(err.msg, "'HNSW'"));
    assert_non_null(strstr(err.msg, "'VECS'"));
    assert_non_null(strstr(err.msg, path));
    assert_null(m.base);
    /* Unprintable kinds are shown in hex. */
    make_file(path, 0x00010203u, 1, 16, NULL);
    assert_int_equal(sfile_map_open(path, KIND_VECS, 1, 1, &m, &err), NDL_CORRUPT);
    assert_non_null(strstr(err.msg, "0x00010203"));
}

static void test_storage_sfile_missing_file_not_found(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in(path, sizeof path, "no_such_file.sf");
    sfile_map m;
    ndl_error err;
    assert_int_equal(sfile_map_open(path, KIND_TEST, 1, 1, &m, &err), NDL_NOT_FOUND);
    assert_int_equal(err.status, NDL_NOT_FOUND);
    assert_non_null(strstr(err.msg, path));
    assert_null(m.base);
    assert_int_equal(sfile_map_open(path, KIND_TEST, 1, 1, &m, NULL), NDL_NOT_FOUND);
}

static void test_storage_sfile_directory_is_not_a_file(void **state)
{
    (void)state;
    sfile_map m;
    ndl_error err;
    assert_int_equal(sfile_map_open(tmpdir, KIND_TEST, 1, 1, &m, &err), NDL_IO);
    assert_non_null(strstr(err.msg, tmpdir));
    assert_null(m.base);
}

static void test_storage_sfile_create_in_missing_dir_fails(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in(path, sizeof path, "no_such_dir/x.sf");
    sfile_writer *w = (sfile_writer *)&w; /* must be reset to NULL */
    ndl_error err;
    assert_int_equal(sfile_create(path, KIND_TEST, 1, &w, &err), NDL_IO);
    assert_null(w);
    assert_int_equal(err.status, NDL_IO);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "No such file or directory"));
}

static void test_storage_sfile_commit_into_vanished_dir_fails(void **state)
{
    (void)state;
    char dir[PATH_MAX], moved[PATH_MAX], path[PATH_MAX];
    path_in(dir, sizeof dir, "vanish");
    path_in(moved, sizeof moved, "vanish_moved");
    assert_int_equal(mkdir(dir, 0755), 0);
    path_in(path, sizeof path, "vanish/x.sf");
    sfile_writer *w;
    ndl_error err;
    assert_int_equal(sfile_create(path, KIND_TEST, 1, &w, &err), NDL_OK);
    assert_int_equal(sfile_write(w, "abc", 3, &err), NDL_OK);
    /* The directory disappears from under the writer before commit. */
    assert_int_equal(rename(dir, moved), 0);
    assert_int_equal(sfile_commit(w, &err), NDL_IO);
    assert_int_equal(err.status, NDL_IO);
    assert_non_null(strstr(err.msg, path));
    assert_false(exists(path));
}

static void test_storage_sfile_disk_full(void **state)
{
    (void)state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    /* path.tmp is a symlink to /dev/full, whose writes fail with ENOSPC. */
    char path[PATH_MAX], tmp[PATH_MAX];
    path_in(path, sizeof path, "full.sf");
    path_in(tmp, sizeof tmp, "full.sf.tmp");

    /* A write big enough to bypass the buffer fails at once ... */
    assert_int_equal(symlink("/dev/full", tmp), 0);
    sfile_writer *w;
    ndl_error err;
    assert_int_equal(sfile_create(path, KIND_TEST, 1, &w, &err), NDL_OK);
    size_t big = 3u << 20;
    uint8_t *buf = calloc(1, big);
    assert_non_null(buf);
    assert_int_equal(sfile_write(w, buf, big, &err), NDL_DISK_FULL);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "cannot write '%s': %s", tmp, strerror(ENOSPC));
    assert_string_equal(err.msg, want);
    /* ... the failure sticks ... */
    memset(&err, 0, sizeof err);
    assert_int_equal(sfile_write(w, "x", 1, &err), NDL_DISK_FULL);
    assert_string_equal(err.msg, want);
    memset(&err, 0, sizeof err);
    assert_int_equal(sfile_commit(w, &err), NDL_DISK_FULL);
    assert_string_equal(err.msg, want);
    assert_false(exists(tmp));
    assert_false(exists(path));

    /* ... and a small buffered write fails at commit. */
    assert_int_equal(symlink("/dev/full", tmp), 0);
    assert_int_equal(sfile_create(path, KIND_TEST, 1, &w, &err), NDL_OK);
    assert_int_equal(sfile_write(w, "abc", 3, &err), NDL_OK);
    assert_int_equal(sfile_commit(w, &err), NDL_DISK_FULL);
    assert_string_equal(err.msg, want);
    assert_false(exists(tmp));
    assert_false(exists(path));
    free(buf);
}

static void test_storage_sfile_create_out_of_memory(void **state)
{
    (void)state;
    char path[PATH_MAX], tmp[PATH_MAX];
    path_in(path, sizeof path, "oom.sf");
    path_in(tmp, sizeof tmp, "oom.sf.tmp");
    int failures = 0;
    for (long n = 0; n < 10; n++) {
        sfile_writer *w;
        ndl_error err;
        ndl_alloc_fail_after(n);
        ndl_status rc = sfile_create(path, KIND_TEST, 1, &w, &err);
        if (rc == NDL_OK)
            rc = sfile_commit(w, &err); /* commit allocates the directory name */
        ndl_alloc_fail_after(-1);
        if (rc != NDL_OK) {
            failures++;
            assert_int_equal(rc, NDL_NOMEM);
            assert_non_null(strstr(err.msg, path));
            assert_false(exists(tmp));
        }
    }
    assert_true(failures > 0);
    assert_true(exists(path));
}

static void test_storage_sfile_sync_dir(void **state)
{
    (void)state;
    ndl_error err;
    assert_int_equal(sfile_sync_dir(tmpdir, &err), NDL_OK);
    char path[PATH_MAX];
    path_in(path, sizeof path, "not_a_dir");
    assert_int_equal(sfile_sync_dir(path, &err), NDL_IO);
    assert_non_null(strstr(err.msg, path));
}

/* ---------------------------------------------------------------- arena */

static void fill_rec(uint8_t *rec, size_t n, uint32_t slot)
{
    for (size_t i = 0; i < n; i++)
        rec[i] = (uint8_t)(slot * 31u + i * 7u + (slot >> 8));
}

static int rec_ok(const uint8_t *rec, size_t n, uint32_t slot)
{
    for (size_t i = 0; i < n; i++)
        if (rec[i] != (uint8_t)(slot * 31u + i * 7u + (slot >> 8)))
            return 0;
    return 1;
}

static void append_n(vec_arena *a, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot;
        void *rec;
        assert_int_equal(arena_reserve(a, &slot, &rec, NULL), NDL_OK);
        assert_int_equal(slot, arena_count(a));
        assert_ptr_equal(rec, arena_rec(a, slot));
        fill_rec(rec, a->rec_bytes, slot);
        arena_publish(a, slot + 1);
    }
}

static void test_storage_arena_append_across_chunks(void **state)
{
    (void)state;
    vec_arena a;
    ndl_error err;
    assert_int_equal(arena_init(&a, 16, &err), NDL_OK);
    assert_int_equal(arena_count(&a), 0);
    assert_int_equal(arena_memory_bytes(&a), 0);

    /* Reserving twice without publishing hands out the same slot. */
    uint32_t s1, s2;
    void *r1, *r2;
    assert_int_equal(arena_reserve(&a, &s1, &r1, &err), NDL_OK);
    assert_int_equal(arena_reserve(&a, &s2, &r2, &err), NDL_OK);
    assert_int_equal(s1, 0);
    assert_int_equal(s2, 0);
    assert_ptr_equal(r1, r2);
    assert_int_equal(arena_count(&a), 0);

    uint32_t n = 2 * ARENA_CHUNK_SLOTS + 1000;
    const uint32_t probe[] = {0, 1, ARENA_CHUNK_SLOTS - 1, ARENA_CHUNK_SLOTS,
                              2 * ARENA_CHUNK_SLOTS, n - 1};
    void *ptr[NDL_ARRAY_LEN(probe)];
    append_n(&a, ARENA_CHUNK_SLOTS + 1);
    for (size_t i = 0; i < 4; i++)
        ptr[i] = arena_rec(&a, probe[i]);
    append_n(&a, n - (ARENA_CHUNK_SLOTS + 1));
    assert_int_equal(arena_count(&a), n);
    assert_int_equal(a.nchunks, 3);
    for (size_t i = 0; i < 4; i++)
        assert_ptr_equal(ptr[i], arena_rec(&a, probe[i])); /* never moved */
    for (uint32_t s = 0; s < n; s++) {
        const uint8_t *r = arena_rec(&a, s);
        if (!rec_ok(r, 16, s))
            fail_msg("record %u damaged", s);
        assert_int_equal((uintptr_t)r % 16, 0);
    }
    /* Records within a chunk are contiguous. */
    assert_ptr_equal((char *)arena_rec(&a, 5), (char *)arena_rec(&a, 4) + 16);
    assert_int_equal(arena_memory_bytes(&a), (size_t)n * 16);
    arena_destroy(&a);
    assert_null(a.chunks);
    arena_destroy(&a); /* twice is harmless */
}

static void test_storage_arena_alignment(void **state)
{
    (void)state;
    const size_t sizes[] = {16, 48, 64, 512, 4 * 1000};
    for (size_t k = 0; k < NDL_ARRAY_LEN(sizes); k++) {
        vec_arena a;
        assert_int_equal(arena_init(&a, sizes[k], NULL), NDL_OK);
        append_n(&a, 100);
        for (uint32_t s = 0; s < 100; s++) {
            assert_int_equal((uintptr_t)arena_rec(&a, s) % 16, 0);
            assert_true(rec_ok(arena_rec(&a, s), sizes[k], s));
        }
        arena_destroy(&a);
    }
}

/* Write an sfile of count records (rec_bytes each) and map it. */
static void make_vectors(const char *path, size_t rec_bytes, uint32_t count, sfile_map *m)
{
    sfile_writer *w;
    assert_int_equal(sfile_create(path, KIND_VECS, 1, &w, NULL), NDL_OK);
    uint8_t *rec = malloc(rec_bytes);
    assert_non_null(rec);
    for (uint32_t s = 0; s < count; s++) {
        fill_rec(rec, rec_bytes, s);
        assert_int_equal(sfile_write(w, rec, rec_bytes, NULL), NDL_OK);
    }
    free(rec);
    assert_int_equal(sfile_commit(w, NULL), NDL_OK);
    assert_int_equal(sfile_map_open(path, KIND_VECS, 1, 1, m, NULL), NDL_OK);
    assert_int_equal(m->data_len, (uint64_t)count * rec_bytes);
}

static void check_adopt_then_append(uint32_t count, uint32_t more)
{
    char path[PATH_MAX];
    path_in(path, sizeof path, "vectors.sf");
    const size_t rb = 32;
    sfile_map m;
    make_vectors(path, rb, count, &m);
    vec_arena a;
    ndl_error err;
    assert_int_equal(arena_init(&a, rb, &err), NDL_OK);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(arena_adopt_mapping(&a, m.base, m.len, m.data, count, fd, &err), NDL_OK);
    close(fd); /* the arena keeps its mappings, not the descriptor */
    assert_int_equal(arena_count(&a), count);
    uint32_t nfull = count / ARENA_CHUNK_SLOTS;
    for (uint32_t c = 0; c < nfull; c++) {
        assert_int_equal(a.chunk_mapped[c], 1);
        assert_ptr_equal(a.chunks[c], m.data + (size_t)c * ARENA_CHUNK_SLOTS * rb);
    }
    if (count % ARENA_CHUNK_SLOTS) {
        /* the tail is a private mapping of the file: writable, and the file's
         * shared mapping is not it */
        assert_int_equal(a.chunk_mapped[nfull], 0);
        assert_non_null(a.tail_region);
        uintptr_t tail = (uintptr_t)a.chunks[nfull], base = (uintptr_t)m.base;
        assert_true(tail < base || tail >= base + m.len);
    }
    assert_int_equal(arena_memory_bytes(&a), (size_t)count * rb);
    void *first = count ? arena_rec(&a, 0) : NULL;
    append_n(&a, more);
    assert_int_equal(arena_count(&a), count + more);
    if (count)
        assert_ptr_equal(first, arena_rec(&a, 0));
    for (uint32_t s = 0; s < count + more; s++) {
        const uint8_t *r = arena_rec(&a, s);
        if (!rec_ok(r, rb, s))
            fail_msg("record %u damaged (adopted %u)", s, count);
        assert_int_equal((uintptr_t)r % 16, 0);
    }
    size_t mem = arena_memory_bytes(&a);
    assert_int_equal(mem, (size_t)(count + more) * rb);
    /* the appends (which wrote into the privately mapped tail) left the file
     * as it was */
    size_t flen;
    uint8_t *file = read_raw(path, &flen);
    assert_int_equal(flen, SFILE_HEADER_BYTES + (size_t)count * rb);
    for (uint32_t s = 0; s < count; s++)
        if (!rec_ok(file + SFILE_HEADER_BYTES + (size_t)s * rb, rb, s))
            fail_msg("file record %u changed by the appends", s);
    free(file);
    /* The arena owns the mapping now: destroy unmaps it (ASan would flag a
     * double unmap only indirectly, so just drop our copy). */
    arena_destroy(&a);
}

static void test_storage_arena_adopt_partial_then_append(void **state)
{
    (void)state;
    check_adopt_then_append(ARENA_CHUNK_SLOTS + 1234, ARENA_CHUNK_SLOTS);
}

static void test_storage_arena_adopt_exact_chunks_then_append(void **state)
{
    (void)state;
    check_adopt_then_append(ARENA_CHUNK_SLOTS, 10);
}

static void test_storage_arena_adopt_small_and_empty(void **state)
{
    (void)state;
    check_adopt_then_append(7, 100);
    check_adopt_then_append(0, 3);
}

static void test_storage_arena_adopt_errors(void **state)
{
    (void)state;
    char path[PATH_MAX];
    path_in(path, sizeof path, "adopt_err.sf");
    sfile_map m;
    make_vectors(path, 16, 10, &m);
    vec_arena a;
    ndl_error err;
    assert_int_equal(arena_init(&a, 16, &err), NDL_OK);
    /* More records than the mapping holds. */
    assert_int_equal(arena_adopt_mapping(&a, m.base, m.len, m.data, 11, -1, &err), NDL_CORRUPT);
    assert_int_equal(arena_count(&a), 0);
    assert_null(a.map);
    /* A non-empty arena refuses. */
    append_n(&a, 1);
    assert_int_equal(arena_adopt_mapping(&a, m.base, m.len, m.data, 10, -1, &err), NDL_INTERNAL);
    assert_int_equal(arena_count(&a), 1);
    arena_destroy(&a);
    /* Out of memory for the tail chunk's table is not possible (the table is
     * made at init), but init itself can fail cleanly. */
    ndl_alloc_fail_after(1);
    assert_int_equal(arena_init(&a, 16, &err), NDL_NOMEM);
    ndl_alloc_fail_after(-1);
    arena_destroy(&a);
    /* The mapping stayed ours through every failure. */
    sfile_cursor c;
    sfile_cursor_init(&c, &m);
    assert_true(rec_ok(sfile_get_bytes(&c, 16), 16, 0));
    sfile_map_close(&m);
}

static void test_storage_arena_init_rejects_bad_sizes(void **state)
{
    (void)state;
    vec_arena a;
    ndl_error err;
    assert_int_equal(arena_init(&a, 0, &err), NDL_INVALID);
    arena_destroy(&a);
    assert_int_equal(arena_init(&a, SIZE_MAX / 2, &err), NDL_INVALID);
    arena_destroy(&a);
}

static void test_storage_arena_full(void **state)
{
    (void)state;
    vec_arena a;
    ndl_error err;
    assert_int_equal(arena_init(&a, 16, &err), NDL_OK);
    /* Pretend the arena holds 2^32-2 records (white box: no need to write
     * 64 GiB); the last slot lands in the last chunk. */
    atomic_store(&a.count, UINT32_MAX - 1);
    uint32_t slot;
    void *rec;
    assert_int_equal(arena_reserve(&a, &slot, &rec, &err), NDL_OK);
    assert_int_equal(slot, UINT32_MAX - 1);
    assert_non_null(a.chunks[ARENA_MAX_CHUNKS - 1]);
    fill_rec(rec, 16, slot);
    arena_publish(&a, UINT32_MAX);
    assert_true(rec_ok(arena_rec(&a, UINT32_MAX - 1), 16, UINT32_MAX - 1));
    assert_int_equal(arena_reserve(&a, &slot, &rec, &err), NDL_NOMEM);
    assert_int_equal(err.status, NDL_NOMEM);
    assert_string_equal(err.msg, "arena is full (4294967295 slots)");
    arena_destroy(&a);
}

/* A reader checking published records while the writer appends. */
typedef struct reader_ctx {
    vec_arena *a;
    uint32_t target;
    int bad;
} reader_ctx;

static void *reader_main(void *p)
{
    reader_ctx *r = p;
    uint32_t n;
    do {
        n = arena_count(r->a);
        if (n > 0 && !rec_ok(arena_rec(r->a, n - 1), r->a->rec_bytes, n - 1))
            r->bad = 1;
        if (n > 1 && !rec_ok(arena_rec(r->a, n / 2), r->a->rec_bytes, n / 2))
            r->bad = 1;
    } while (n < r->target);
    return NULL;
}

static void test_storage_arena_readers_see_published_records(void **state)
{
    (void)state;
    vec_arena a;
    assert_int_equal(arena_init(&a, 64, NULL), NDL_OK);
    reader_ctx r = {&a, ARENA_CHUNK_SLOTS + 5000, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
    append_n(&a, r.target);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_false(r.bad);
    arena_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storage_sfile_round_trip),
        cmocka_unit_test(test_storage_sfile_cursor_overrun_partial),
        cmocka_unit_test(test_storage_sfile_empty_data_is_valid),
        cmocka_unit_test(test_storage_sfile_header_layout),
        cmocka_unit_test(test_storage_sfile_tmp_removed_after_commit),
        cmocka_unit_test(test_storage_sfile_tmp_removed_after_abort),
        cmocka_unit_test(test_storage_sfile_every_header_bit_flip_detected),
        cmocka_unit_test(test_storage_sfile_specific_header_errors),
        cmocka_unit_test(test_storage_sfile_newer_version_unsupported),
        cmocka_unit_test(test_storage_sfile_data_bit_flips_detected),
        cmocka_unit_test(test_storage_sfile_truncation_detected),
        cmocka_unit_test(test_storage_sfile_wrong_kind_detected),
        cmocka_unit_test(test_storage_sfile_missing_file_not_found),
        cmocka_unit_test(test_storage_sfile_directory_is_not_a_file),
        cmocka_unit_test(test_storage_sfile_create_in_missing_dir_fails),
        cmocka_unit_test(test_storage_sfile_commit_into_vanished_dir_fails),
        cmocka_unit_test(test_storage_sfile_disk_full),
        cmocka_unit_test(test_storage_sfile_create_out_of_memory),
        cmocka_unit_test(test_storage_sfile_sync_dir),
        cmocka_unit_test(test_storage_arena_append_across_chunks),
        cmocka_unit_test(test_storage_arena_alignment),
        cmocka_unit_test(test_storage_arena_adopt_partial_then_append),
        cmocka_unit_test(test_storage_arena_adopt_exact_chunks_then_append),
        cmocka_unit_test(test_storage_arena_adopt_small_and_empty),
        cmocka_unit_test(test_storage_arena_adopt_errors),
        cmocka_unit_test(test_storage_arena_init_rejects_bad_sizes),
        cmocka_unit_test(test_storage_arena_full),
        cmocka_unit_test(test_storage_arena_readers_see_published_records),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
