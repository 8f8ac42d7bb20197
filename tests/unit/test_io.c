/*
 * test_io.c -- unit tests of src/storage/io.c: the wrappers pass through,
 * and injected faults behave as io.h says (after / times / error /
 * short_by, counted atomically across threads); and of sfile's write path
 * under injected faults: a commit failing at open, write, fsync or rename
 * reports the file and the errno text, leaves the old file intact and no
 * ".tmp" behind.
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

#include "storage/io.h"
#include "storage/sfile.h"

#define KIND_TEST SFILE_KIND('T', 'E', 'S', 'T')

static char tmpdir[64];

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
    snprintf(tmpdir, sizeof tmpdir, "/tmp/needle_io_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Every test starts and ends with no fault armed. */
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

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

static io_fault fault(long after, long times, int error, size_t short_by)
{
    return (io_fault){.after = after, .times = times, .error = error, .short_by = short_by};
}

/* ---------------------------------------------------------------- wrappers */

static void test_io_wrappers_pass_through(void **state)
{
    (void)state;
    char a[PATH_MAX], b[PATH_MAX];
    path_in(a, sizeof a, "plain_a");
    path_in(b, sizeof b, "plain_b");
    int fd = io_open(a, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(io_write_all(fd, "hello world", 11), 0);
    assert_int_equal(io_pwrite_all(fd, "HELLO", 5, 0), 0);
    assert_int_equal(io_write_all(fd, "", 0), 0);
    assert_int_equal(io_fsync(fd), 0);
    assert_int_equal(io_fdatasync(fd), 0);
    char buf[16] = {0};
    assert_int_equal(pread(fd, buf, sizeof buf, 0), 11);
    assert_memory_equal(buf, "HELLO world", 11);
    assert_int_equal(io_ftruncate(fd, 5), 0);
    assert_int_equal(io_close(fd), 0);
    assert_int_equal(file_size(a), 5);
    assert_int_equal(io_rename(a, b), 0);
    assert_false(exists(a));
    assert_int_equal(io_unlink(b), 0);
    assert_false(exists(b));
    /* Real failures come through as -1 with errno. */
    errno = 0;
    assert_int_equal(io_unlink(b), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(io_open(b, O_RDONLY, 0), -1);
    assert_int_equal(errno, ENOENT);
    /* Calls are counted; nothing was injected. */
    assert_int_equal(io_calls(IO_OP_OPEN), 2);
    assert_int_equal(io_calls(IO_OP_WRITE), 3);
    assert_int_equal(io_calls(IO_OP_FSYNC), 2);
    assert_int_equal(io_calls(IO_OP_UNLINK), 2);
    for (int op = 0; op < IO_OP_COUNT; op++)
        assert_int_equal(io_fault_fired((io_op)op), 0);
    io_fault_reset();
    assert_int_equal(io_calls(IO_OP_OPEN), 0);
}

/* ---------------------------------------------------------------- injection */

static void test_io_fault_after_and_times(void **state)
{
    (void)state;
    char a[PATH_MAX];
    path_in(a, sizeof a, "after_times");
    int fd = open(a, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    /* two calls pass, the next three fail with EIO, then all pass again */
    io_fault_set(IO_OP_FSYNC, fault(2, 3, EIO, 0));
    int want[8] = {0, 0, -1, -1, -1, 0, 0, 0};
    for (int i = 0; i < 8; i++) {
        errno = 0;
        int rc = (i & 1) ? io_fdatasync(fd) : io_fsync(fd); /* both are IO_OP_FSYNC */
        assert_int_equal(rc, want[i]);
        if (rc)
            assert_int_equal(errno, EIO);
    }
    assert_int_equal(io_fault_fired(IO_OP_FSYNC), 3);
    assert_int_equal(io_fault_fired(IO_OP_WRITE), 0);
    /* other operations are unaffected */
    assert_int_equal(io_write_all(fd, "x", 1), 0);
    assert_int_equal(io_ftruncate(fd, 0), 0);

    /* times = -1: every call after `after` fails */
    io_fault_set(IO_OP_FTRUNCATE, fault(1, -1, ENOSPC, 0));
    assert_int_equal(io_ftruncate(fd, 0), 0);
    for (int i = 0; i < 20; i++) {
        errno = 0;
        assert_int_equal(io_ftruncate(fd, 0), -1);
        assert_int_equal(errno, ENOSPC);
    }
    assert_int_equal(io_fault_fired(IO_OP_FTRUNCATE), 20);
    /* after = -1 disarms */
    io_fault_set(IO_OP_FTRUNCATE, fault(-1, -1, EIO, 0));
    assert_int_equal(io_ftruncate(fd, 0), 0);
    /* re-arming counts from the moment of arming */
    io_fault_set(IO_OP_FTRUNCATE, fault(0, 1, EROFS, 0));
    assert_int_equal(io_ftruncate(fd, 0), -1);
    assert_int_equal(errno, EROFS);
    assert_int_equal(io_ftruncate(fd, 0), 0);
    /* error 0 still fails, with EIO */
    io_fault_set(IO_OP_FSYNC, fault(0, 1, 0, 0));
    assert_int_equal(io_fsync(fd), -1);
    assert_int_equal(errno, EIO);
    io_fault_reset();
    assert_int_equal(io_fault_fired(IO_OP_FSYNC), 0);
    assert_int_equal(io_fsync(fd), 0);
    close(fd);
}

static void test_io_fault_every_op(void **state)
{
    (void)state;
    char a[PATH_MAX], b[PATH_MAX];
    path_in(a, sizeof a, "every_a");
    path_in(b, sizeof b, "every_b");
    io_fault_set(IO_OP_OPEN, fault(0, 1, EMFILE, 0));
    assert_int_equal(io_open(a, O_CREAT | O_WRONLY, 0644), -1);
    assert_int_equal(errno, EMFILE);
    assert_false(exists(a)); /* the failed call did nothing */
    int fd = io_open(a, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(io_write_all(fd, "abcdef", 6), 0);

    io_fault_set(IO_OP_FTRUNCATE, fault(0, 1, EIO, 0));
    assert_int_equal(io_ftruncate(fd, 2), -1);
    assert_int_equal(file_size(a), 6);

    io_fault_set(IO_OP_RENAME, fault(0, 1, EXDEV, 0));
    assert_int_equal(io_rename(a, b), -1);
    assert_int_equal(errno, EXDEV);
    assert_true(exists(a));
    assert_false(exists(b));

    io_fault_set(IO_OP_UNLINK, fault(0, 1, EACCES, 0));
    assert_int_equal(io_unlink(a), -1);
    assert_int_equal(errno, EACCES);
    assert_true(exists(a));
    assert_int_equal(io_unlink(a), 0);
    for (int op = IO_OP_OPEN; op <= IO_OP_UNLINK; op++)
        if (op != IO_OP_WRITE && op != IO_OP_FSYNC)
            assert_int_equal(io_fault_fired((io_op)op), 1);
    io_close(fd);
}

static void test_io_fault_short_write(void **state)
{
    (void)state;
    char a[PATH_MAX];
    path_in(a, sizeof a, "short");
    int fd = open(a, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    uint8_t buf[100];
    for (int i = 0; i < 100; i++)
        buf[i] = (uint8_t)(i + 1);

    /* write_all: 90 of 100 bytes land, then ENOSPC */
    io_fault_set(IO_OP_WRITE, fault(0, 1, ENOSPC, 10));
    errno = 0;
    assert_int_equal(io_write_all(fd, buf, 100), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(file_size(a), 90);
    uint8_t got[100];
    assert_int_equal(pread(fd, got, 100, 0), 90);
    assert_memory_equal(got, buf, 90);

    /* pwrite_all: at an offset, 97 of 100 land */
    io_fault_set(IO_OP_WRITE, fault(1, 1, EIO, 3));
    assert_int_equal(io_pwrite_all(fd, buf, 10, 0), 0); /* the one that still succeeds */
    assert_int_equal(io_pwrite_all(fd, buf, 100, 200), -1);
    assert_int_equal(errno, EIO);
    assert_int_equal(file_size(a), 297);
    assert_int_equal(pread(fd, got, 100, 200), 97);
    assert_memory_equal(got, buf, 97);

    /* short_by >= len: nothing is written */
    assert_int_equal(ftruncate(fd, 0), 0);
    io_fault_set(IO_OP_WRITE, fault(0, 2, EIO, 100));
    assert_int_equal(io_pwrite_all(fd, buf, 100, 0), -1);
    assert_int_equal(io_pwrite_all(fd, buf, 50, 0), -1);
    assert_int_equal(file_size(a), 0);
    assert_int_equal(io_fault_fired(IO_OP_WRITE), 4); /* 1 + 1 + 2 since the reset */
    /* the next write is whole again */
    assert_int_equal(io_pwrite_all(fd, buf, 100, 0), 0);
    assert_int_equal(file_size(a), 100);
    close(fd);
}

typedef struct race_ctx {
    int fd;
    int failures;
} race_ctx;

static void *race_main(void *p)
{
    race_ctx *c = p;
    for (int i = 0; i < 2000; i++)
        if (io_ftruncate(c->fd, 0) != 0)
            c->failures++;
    return NULL;
}

static void test_io_fault_counts_atomically(void **state)
{
    (void)state;
    char a[PATH_MAX];
    path_in(a, sizeof a, "race");
    int fd = open(a, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    io_fault_set(IO_OP_FTRUNCATE, fault(1000, 37, EIO, 0));
    race_ctx c[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (race_ctx){fd, 0};
        assert_int_equal(pthread_create(&t[i], NULL, race_main, &c[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        total += c[i].failures;
    }
    assert_int_equal(total, 37);
    assert_int_equal(io_fault_fired(IO_OP_FTRUNCATE), 37);
    assert_int_equal(io_calls(IO_OP_FTRUNCATE), 8000);
    close(fd);
}

/* ---------------------------------------------------------------- sfile under faults */

static void make_sfile(const char *path, uint32_t version, const char *text)
{
    sfile_writer *w;
    assert_int_equal(sfile_create(path, KIND_TEST, version, &w, NULL), NDL_OK);
    assert_int_equal(sfile_write(w, text, strlen(text), NULL), NDL_OK);
    assert_int_equal(sfile_commit(w, NULL), NDL_OK);
}

static void expect_sfile(const char *path, uint32_t version, const char *text)
{
    sfile_map m;
    ndl_error err;
    if (sfile_map_open(path, KIND_TEST, 10, 1, &m, &err) != NDL_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(m.version, version);
    assert_int_equal(m.data_len, strlen(text));
    assert_memory_equal(m.data, text, strlen(text));
    sfile_map_close(&m);
}

/* Arm one fault, try to replace path's v1 with v2, and check the failure. */
static void replace_fails(const char *name, io_op op, io_fault f, ndl_status want,
                          const char *want_text)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    path_in(path, sizeof path, name);
    assert_true(snprintf(tmp, sizeof tmp, "%s.tmp", path) < (int)sizeof tmp);
    make_sfile(path, 1, "the old contents");
    io_fault_reset();
    io_fault_set(op, f);
    sfile_writer *w = NULL;
    ndl_error err = {0, ""};
    ndl_status rc = sfile_create(path, KIND_TEST, 2, &w, &err);
    if (rc == NDL_OK) {
        rc = sfile_write(w, "the new contents", 16, &err);
        if (rc == NDL_OK)
            rc = sfile_commit(w, &err);
        else
            sfile_abort(w);
    }
    if (rc != want)
        fail_msg("%s: status %s (%s), expected %s", name, ndl_status_name(rc), err.msg,
                 ndl_status_name(want));
    assert_int_equal(io_fault_fired(op), 1);
    assert_non_null(strstr(err.msg, path)); /* names the file (path or path.tmp) */
    if (!strstr(err.msg, want_text))
        fail_msg("%s: message '%s' lacks '%s'", name, err.msg, want_text);
    io_fault_reset();
    assert_false(exists(tmp));
    expect_sfile(path, 1, "the old contents");
}

static void test_io_sfile_commit_fails_at_open(void **state)
{
    (void)state;
    replace_fails("f_open.sf", IO_OP_OPEN, fault(0, 1, EACCES, 0), NDL_IO,
                  strerror(EACCES));
}

static void test_io_sfile_commit_fails_at_write(void **state)
{
    (void)state;
    /* the data flush, then the header written in place */
    replace_fails("f_write0.sf", IO_OP_WRITE, fault(0, 1, EIO, 0), NDL_IO, strerror(EIO));
    replace_fails("f_write1.sf", IO_OP_WRITE, fault(1, 1, EIO, 0), NDL_IO, strerror(EIO));
    replace_fails("f_short.sf", IO_OP_WRITE, fault(0, 1, EIO, 7), NDL_IO, strerror(EIO));
    replace_fails("f_full.sf", IO_OP_WRITE, fault(0, 1, ENOSPC, 3), NDL_DISK_FULL,
                  strerror(ENOSPC));
    replace_fails("f_quota.sf", IO_OP_WRITE, fault(1, 1, EDQUOT, 0), NDL_DISK_FULL,
                  strerror(EDQUOT));
}

static void test_io_sfile_commit_fails_at_fsync(void **state)
{
    (void)state;
    replace_fails("f_fsync.sf", IO_OP_FSYNC, fault(0, 1, EIO, 0), NDL_IO, "cannot sync");
    replace_fails("f_fsync_full.sf", IO_OP_FSYNC, fault(0, 1, ENOSPC, 0), NDL_DISK_FULL,
                  strerror(ENOSPC));
}

static void test_io_sfile_commit_fails_at_rename(void **state)
{
    (void)state;
    replace_fails("f_rename.sf", IO_OP_RENAME, fault(0, 1, EIO, 0), NDL_IO, "cannot rename");
    replace_fails("f_rename_full.sf", IO_OP_RENAME, fault(0, 1, ENOSPC, 0), NDL_DISK_FULL,
                  strerror(ENOSPC));
}

static void test_io_sfile_dir_sync_failure_reported(void **state)
{
    (void)state;
    /* The file is synced and renamed; only the directory sync fails. The new
     * file is in place (rename is atomic) but its durability is not assured,
     * so the commit still reports the failure. */
    char path[PATH_MAX], tmp[PATH_MAX];
    path_in(path, sizeof path, "f_dirsync.sf");
    assert_true(snprintf(tmp, sizeof tmp, "%s.tmp", path) < (int)sizeof tmp);
    make_sfile(path, 1, "old");
    io_fault_set(IO_OP_FSYNC, fault(1, 1, EIO, 0));
    sfile_writer *w;
    ndl_error err;
    assert_int_equal(sfile_create(path, KIND_TEST, 2, &w, NULL), NDL_OK);
    assert_int_equal(sfile_write(w, "new", 3, NULL), NDL_OK);
    assert_int_equal(sfile_commit(w, &err), NDL_IO);
    assert_non_null(strstr(err.msg, "cannot sync directory"));
    assert_non_null(strstr(err.msg, tmpdir));
    assert_false(exists(tmp));
    expect_sfile(path, 2, "new");
}

static void test_io_sfile_abort_unlink_goes_through_io(void **state)
{
    (void)state;
    char path[PATH_MAX], tmp[PATH_MAX];
    path_in(path, sizeof path, "f_abort.sf");
    assert_true(snprintf(tmp, sizeof tmp, "%s.tmp", path) < (int)sizeof tmp);
    sfile_writer *w;
    assert_int_equal(sfile_create(path, KIND_TEST, 1, &w, NULL), NDL_OK);
    long before = io_calls(IO_OP_UNLINK);
    sfile_abort(w);
    assert_int_equal(io_calls(IO_OP_UNLINK), before + 1);
    assert_false(exists(tmp));
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset_faults, reset_faults)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_io_wrappers_pass_through),
        T(test_io_fault_after_and_times),
        T(test_io_fault_every_op),
        T(test_io_fault_short_write),
        T(test_io_fault_counts_atomically),
        T(test_io_sfile_commit_fails_at_open),
        T(test_io_sfile_commit_fails_at_write),
        T(test_io_sfile_commit_fails_at_fsync),
        T(test_io_sfile_commit_fails_at_rename),
        T(test_io_sfile_dir_sync_failure_reported),
        T(test_io_sfile_abort_unlink_goes_through_io),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
