/*
 * sfile.c -- the checksummed file container: a buffered writer that publishes
 * through "<path>.tmp" + fsync + rename + directory fsync, and a mapped reader
 * that checks the header before anyone looks at the data. Format: sfile.h.
 * Every call of the write path goes through storage/io.h, so tests can make
 * any of them fail; a failed commit removes path.tmp and leaves path as it was.
 */
#include "storage/sfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/io.h"
#include "util/alloc.h"
#include "util/le.h"

#define SFILE_MAGIC "NEEDLE\r\n"
#define SFILE_BUF_BYTES ((size_t)1 << 20)
/* Header field offsets (see the table in sfile.h). */
#define OFF_KIND 8
#define OFF_VERSION 12
#define OFF_DATA_LEN 16
#define OFF_DATA_CRC 24
#define OFF_FLAGS 28
#define OFF_HEADER_CRC 60

struct sfile_writer {
    char *path;       /* final name */
    char *tmp;        /* path + ".tmp", where the bytes go until commit */
    int fd;           /* open on tmp; -1 once closed */
    uint32_t kind;
    uint32_t version;
    uint8_t *buf;     /* SFILE_BUF_BYTES; the first 64 bytes of the file are
                         reserved for the header, written last */
    size_t buf_len;   /* bytes pending in buf */
    uint64_t data_len; /* data bytes accepted so far (excludes the header) */
    uint32_t crc;     /* CRC32C of the data so far */
    int werrno;       /* errno of the first failed write (0: none); later
                         calls report it again */
};

/* ---------------------------------------------------------------- helpers */

/* Report a failed system call on path: ENOSPC/EDQUOT mean the disk is full,
 * anything else is an I/O error. */
static ndl_status sys_err(ndl_error *err, int e, const char *what, const char *path)
{
    ndl_status st = (e == ENOSPC || e == EDQUOT) ? NDL_DISK_FULL : NDL_IO;
    return ndl_err(err, st, "cannot %s '%s': %s", what, path, strerror(e));
}

/* Four kind bytes as text when printable ("VECS"), else as hex. */
static void kind_str(uint32_t kind, char out[16])
{
    int printable = 1;
    for (int i = 0; i < 4; i++) {
        unsigned ch = (kind >> (8 * i)) & 0xff;
        if (ch < 0x20 || ch > 0x7e)
            printable = 0;
    }
    if (printable)
        snprintf(out, 16, "'%c%c%c%c'", (char)(kind & 0xff), (char)((kind >> 8) & 0xff),
                 (char)((kind >> 16) & 0xff), (char)(kind >> 24));
    else
        snprintf(out, 16, "0x%08x", (unsigned)kind);
}

/* Directory part of path ("." if it has none); caller frees. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return ndl_strndup(".", 1);
    if (slash == path)
        return ndl_strndup("/", 1);
    return ndl_strndup(path, (size_t)(slash - path));
}

static void writer_free(sfile_writer *w)
{
    if (w->fd >= 0)
        io_close(w->fd);
    ndl_free(w->buf);
    ndl_free(w->tmp);
    ndl_free(w->path);
    ndl_free(w);
}

/* ---------------------------------------------------------------- writer */

ndl_status sfile_create(const char *path, uint32_t kind, uint32_t version, sfile_writer **out,
                        ndl_error *err)
{
    *out = NULL;
    sfile_writer *w = ndl_calloc(1, sizeof *w);
    if (!w)
        return ndl_err(err, NDL_NOMEM, "out of memory writing '%s'", path);
    w->fd = -1;
    size_t plen = strlen(path);
    w->path = ndl_strndup(path, plen);
    w->tmp = ndl_malloc(plen + 5);
    w->buf = ndl_malloc(SFILE_BUF_BYTES);
    if (!w->path || !w->tmp || !w->buf) {
        writer_free(w);
        return ndl_err(err, NDL_NOMEM, "out of memory writing '%s'", path);
    }
    memcpy(w->tmp, path, plen);
    memcpy(w->tmp + plen, ".tmp", 5);
    w->kind = kind;
    w->version = version;
    w->fd = io_open(w->tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        ndl_status rc = sys_err(err, errno, "create", w->tmp);
        writer_free(w);
        return rc;
    }
    /* Reserve the header; it is written in place by sfile_commit. */
    memset(w->buf, 0, SFILE_HEADER_BYTES);
    w->buf_len = SFILE_HEADER_BYTES;
    *out = w;
    return NDL_OK;
}

static ndl_status writer_flush(sfile_writer *w, ndl_error *err)
{
    if (io_write_all(w->fd, w->buf, w->buf_len) != 0) {
        w->werrno = errno;
        return sys_err(err, w->werrno, "write", w->tmp);
    }
    w->buf_len = 0;
    return NDL_OK;
}

static ndl_status writer_failed(const sfile_writer *w, ndl_error *err)
{
    return sys_err(err, w->werrno, "write", w->tmp);
}

ndl_status sfile_write(sfile_writer *w, const void *data, size_t len, ndl_error *err)
{
    if (w->werrno)
        return writer_failed(w, err);
    if (len == 0)
        return NDL_OK;
    const uint8_t *p = data;
    w->crc = crc32c(w->crc, p, len);
    w->data_len += len;
    if (len <= SFILE_BUF_BYTES - w->buf_len) {
        memcpy(w->buf + w->buf_len, p, len);
        w->buf_len += len;
        return NDL_OK;
    }
    /* Top up the buffer, flush it, then write big remainders straight
     * through instead of copying them. */
    size_t take = SFILE_BUF_BYTES - w->buf_len;
    memcpy(w->buf + w->buf_len, p, take);
    w->buf_len += take;
    p += take;
    len -= take;
    ndl_status rc = writer_flush(w, err);
    if (rc != NDL_OK)
        return rc;
    if (len >= SFILE_BUF_BYTES) {
        if (io_write_all(w->fd, p, len) != 0) {
            w->werrno = errno;
            return sys_err(err, w->werrno, "write", w->tmp);
        }
        return NDL_OK;
    }
    memcpy(w->buf, p, len);
    w->buf_len = len;
    return NDL_OK;
}

ndl_status sfile_pad(sfile_writer *w, size_t align, ndl_error *err)
{
    static const uint8_t zeros[64];
    if (align <= 1)
        return NDL_OK;
    size_t pad = (size_t)((align - w->data_len % align) % align);
    while (pad > 0) {
        size_t n = NDL_MIN(pad, sizeof zeros);
        ndl_status rc = sfile_write(w, zeros, n, err);
        if (rc != NDL_OK)
            return rc;
        pad -= n;
    }
    return NDL_OK;
}

uint64_t sfile_written(const sfile_writer *w) { return w->data_len; }

ndl_status sfile_put_u32(sfile_writer *w, uint32_t v, ndl_error *err)
{
    uint8_t b[4];
    le_put32(b, v);
    return sfile_write(w, b, 4, err);
}

ndl_status sfile_put_u64(sfile_writer *w, uint64_t v, ndl_error *err)
{
    uint8_t b[8];
    le_put64(b, v);
    return sfile_write(w, b, 8, err);
}

static void header_build(uint8_t h[SFILE_HEADER_BYTES], uint32_t kind, uint32_t version,
                         uint64_t data_len, uint32_t data_crc)
{
    memset(h, 0, SFILE_HEADER_BYTES);
    memcpy(h, SFILE_MAGIC, 8);
    le_put32(h + OFF_KIND, kind);
    le_put32(h + OFF_VERSION, version);
    le_put64(h + OFF_DATA_LEN, data_len);
    le_put32(h + OFF_DATA_CRC, data_crc);
    le_put32(h + OFF_FLAGS, 0);
    le_put32(h + OFF_HEADER_CRC, crc32c(0, h, OFF_HEADER_CRC));
}

ndl_status sfile_commit(sfile_writer *w, ndl_error *err)
{
    ndl_status rc = NDL_OK;
    char *dir = NULL;
    uint8_t h[SFILE_HEADER_BYTES];
    int e;
    if (w->werrno) {
        rc = writer_failed(w, err);
        goto fail;
    }
    if ((rc = writer_flush(w, err)) != NDL_OK)
        goto fail;
    header_build(h, w->kind, w->version, w->data_len, w->crc);
    if (io_pwrite_all(w->fd, h, sizeof h, 0) != 0) {
        rc = sys_err(err, errno, "write", w->tmp);
        goto fail;
    }
    if (io_fdatasync(w->fd) != 0) {
        rc = sys_err(err, errno, "sync", w->tmp);
        goto fail;
    }
    /* close() can report deferred write errors (NFS); it closes either way. */
    e = io_close(w->fd) != 0 ? errno : 0;
    w->fd = -1;
    if (e && e != EINTR) {
        rc = sys_err(err, e, "close", w->tmp);
        goto fail;
    }
    if (!(dir = dir_of(w->path))) {
        rc = ndl_err(err, NDL_NOMEM, "out of memory writing '%s'", w->path);
        goto fail;
    }
    if (io_rename(w->tmp, w->path) != 0) {
        e = errno;
        rc = ndl_err(err, (e == ENOSPC || e == EDQUOT) ? NDL_DISK_FULL : NDL_IO,
                     "cannot rename '%s' to '%s': %s", w->tmp, w->path, strerror(e));
        goto fail;
    }
    /* The new file is in place; only its durability is left to secure. */
    rc = sfile_sync_dir(dir, err);
    ndl_free(dir);
    writer_free(w);
    return rc;

fail:
    ndl_free(dir);
    io_unlink(w->tmp);
    writer_free(w);
    return rc;
}

void sfile_abort(sfile_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0) {
        io_close(w->fd);
        w->fd = -1;
    }
    io_unlink(w->tmp);
    writer_free(w);
}

ndl_status sfile_sync_dir(const char *dir, ndl_error *err)
{
    int fd = io_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return ndl_err(err, NDL_IO, "cannot open directory '%s': %s", dir, strerror(errno));
    ndl_status rc = NDL_OK;
    /* Some file systems cannot fsync a directory (EINVAL); they have nothing
     * to flush that we could ask for. */
    if (io_fsync(fd) != 0 && errno != EINVAL)
        rc = ndl_err(err, NDL_IO, "cannot sync directory '%s': %s", dir, strerror(errno));
    io_close(fd);
    return rc;
}

/* ---------------------------------------------------------------- reader */

/* Check the header of a mapped file of len bytes (len >= 64). */
static ndl_status header_check(const char *path, const uint8_t *h, size_t len, uint32_t kind,
                               uint32_t max_version, ndl_error *err)
{
    if (memcmp(h, SFILE_MAGIC, 8) != 0)
        return ndl_err(err, NDL_CORRUPT, "'%s' is not a needle file (bad magic)", path);
    /* The checksum goes before the field checks, so a damaged kind or version
     * is reported as damage rather than as a different file. */
    if (le_get32(h + OFF_HEADER_CRC) != crc32c(0, h, OFF_HEADER_CRC))
        return ndl_err(err, NDL_CORRUPT, "'%s': header checksum mismatch", path);
    uint32_t found = le_get32(h + OFF_KIND);
    if (found != kind) {
        char want[16], got[16];
        kind_str(kind, want);
        kind_str(found, got);
        return ndl_err(err, NDL_CORRUPT, "'%s' holds kind %s; expected kind %s", path, got,
                       want);
    }
    uint32_t version = le_get32(h + OFF_VERSION);
    if (version > max_version)
        return ndl_err(err, NDL_UNSUPPORTED,
                       "'%s': format version %u is newer than this build supports (max %u)",
                       path, (unsigned)version, (unsigned)max_version);
    uint64_t data_len = le_get64(h + OFF_DATA_LEN);
    if (data_len > (uint64_t)(len - SFILE_HEADER_BYTES))
        return ndl_err(err, NDL_CORRUPT,
                       "'%s' is truncated: header says %llu data bytes, file has %llu", path,
                       (unsigned long long)data_len,
                       (unsigned long long)(len - SFILE_HEADER_BYTES));
    return NDL_OK;
}

ndl_status sfile_map_open(const char *path, uint32_t kind, uint32_t max_version, int verify_data,
                          sfile_map *out, ndl_error *err)
{
    ndl_status rc = NDL_OK;
    void *base = MAP_FAILED;
    size_t len = 0;
    memset(out, 0, sizeof *out);

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return ndl_err(err, NDL_NOT_FOUND, "'%s' does not exist", path);
        return ndl_err(err, NDL_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = ndl_err(err, NDL_IO, "cannot stat '%s': %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ndl_err(err, NDL_IO, "'%s' is not a regular file", path);
        goto done;
    }
    if (st.st_size < SFILE_HEADER_BYTES) {
        rc = ndl_err(err, NDL_CORRUPT, "'%s' is truncated (%lld bytes; header needs %d)", path,
                     (long long)st.st_size, SFILE_HEADER_BYTES);
        goto done;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = ndl_err(err, NDL_UNSUPPORTED, "'%s' is too large to map", path);
        goto done;
    }
    len = (size_t)st.st_size;
    base = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = ndl_err(err, errno == ENOMEM ? NDL_NOMEM : NDL_IO, "cannot map '%s': %s", path,
                     strerror(errno));
        goto done;
    }
    const uint8_t *h = base;
    if ((rc = header_check(path, h, len, kind, max_version, err)) != NDL_OK)
        goto done;
    out->base = base;
    out->len = len;
    out->data = h + SFILE_HEADER_BYTES;
    out->data_len = le_get64(h + OFF_DATA_LEN);
    out->version = le_get32(h + OFF_VERSION);
    out->data_crc = le_get32(h + OFF_DATA_CRC);
    if (verify_data)
        rc = sfile_verify(out, path, err);

done:
    close(fd); /* the mapping stays valid without the descriptor */
    if (rc != NDL_OK) {
        if (base != MAP_FAILED)
            munmap(base, len);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

ndl_status sfile_verify(const sfile_map *m, const char *path, ndl_error *err)
{
    uint32_t crc = crc32c(0, m->data, (size_t)m->data_len);
    if (crc != m->data_crc)
        return ndl_err(err, NDL_CORRUPT, "data checksum mismatch in '%s'",
                       path ? path : "(unnamed)");
    return NDL_OK;
}

void sfile_map_close(sfile_map *m)
{
    if (m && m->base)
        munmap(m->base, m->len);
    if (m)
        memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- cursor */

void sfile_cursor_init(sfile_cursor *c, const sfile_map *m)
{
    c->p = m->data;
    c->end = m->data ? m->data + m->data_len : NULL;
    c->overrun = 0;
}

/* Claim the next n bytes; NULL (and overrun, sticky) if fewer remain. */
static const uint8_t *cursor_take(sfile_cursor *c, size_t n)
{
    size_t left = c->p ? (size_t)(c->end - c->p) : 0;
    if (c->overrun || left < n) {
        c->overrun = 1;
        return NULL;
    }
    const uint8_t *p = c->p;
    if (n)
        c->p += n;
    return p;
}

uint32_t sfile_get_u32(sfile_cursor *c)
{
    const uint8_t *p = cursor_take(c, 4);
    return p ? le_get32(p) : 0;
}

uint64_t sfile_get_u64(sfile_cursor *c)
{
    const uint8_t *p = cursor_take(c, 8);
    return p ? le_get64(p) : 0;
}

const void *sfile_get_bytes(sfile_cursor *c, size_t len)
{
    return cursor_take(c, len);
}

void sfile_cursor_align(sfile_cursor *c, const sfile_map *m, size_t align)
{
    if (align <= 1 || c->overrun || !c->p)
        return;
    size_t off = (size_t)(c->p - m->data);
    size_t pad = (align - off % align) % align;
    if (pad)
        cursor_take(c, pad);
}
