/*
 * wal.c -- the write-ahead log handle: appending records (and rolling to a
 * new segment file), reading them back from an LSN, deleting segments a
 * checkpoint covers, closing. Opening and recovery: wal_recover.c; group
 * commit and the batch thread: wal_sync.c. Format and invariants:
 * wal_internal.h; interface: wal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "storage/io.h"
#include "storage/sfile.h"
#include "storage/wal_internal.h"
#include "util/alloc.h"

/* Records up to this size are staged into one buffer (kept between
 * appends) and written at once; larger ones are written in pieces. */
#define STAGE_KEEP_BYTES ((size_t)1 << 20)

/* ---------------------------------------------------------------- segments */

ndl_status wal_segs_reserve(wal *w, size_t n, ndl_error *err)
{
    if (n <= w->segs_cap)
        return NDL_OK;
    size_t cap = w->segs_cap ? w->segs_cap * 2 : 8;
    while (cap < n)
        cap *= 2;
    wal_seg *p = ndl_realloc(w->segs, cap * sizeof *p);
    if (!p)
        return ndl_err(err, NDL_NOMEM, "out of memory opening the log '%s'", w->dir);
    w->segs = p;
    w->segs_cap = cap;
    return NDL_OK;
}

ndl_status wal_seg_create(wal *w, uint64_t first_lsn, int *fd_out, char **path_out,
                          ndl_error *err)
{
    *fd_out = -1;
    *path_out = NULL;
    char *path = wal_seg_path(w->dir, first_lsn);
    size_t plen = path ? strlen(path) : 0;
    char *tmp = path ? ndl_malloc(plen + 5) : NULL;
    if (!tmp) {
        ndl_free(path);
        return ndl_err(err, NDL_NOMEM, "out of memory creating a log segment in '%s'", w->dir);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    bool sync = w->opt.sync != WAL_SYNC_NONE;
    ndl_status rc = NDL_OK;
    uint8_t h[WAL_SEG_HEADER];
    wal_header_encode(h, first_lsn);
    int fd = io_open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        rc = ndl_err(err, wal_errno_status(e), "cannot create '%s': %s", tmp, strerror(e));
        goto fail;
    }
    if (io_pwrite_all(fd, h, sizeof h, 0) != 0) {
        int e = errno;
        rc = ndl_err(err, wal_errno_status(e), "cannot write '%s': %s", tmp, strerror(e));
        goto fail;
    }
    /* Reserve the segment's first blocks now (the size stays the
     * header's): group commits' fdatasyncs then write data, not new extents
     * (reserve_ahead grows it). Best effort: file systems without
     * fallocate just allocate as they go. */
    w->reserved = 0;
    if (sync) {
        uint64_t first = NDL_MIN(WAL_RESERVE_FIRST, w->opt.segment_bytes);
        if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)first) == 0)
            w->reserved = first;
    }
    if (sync && io_fdatasync(fd) != 0) {
        int e = errno;
        rc = ndl_err(err, wal_errno_status(e), "cannot sync '%s': %s", tmp, strerror(e));
        goto fail;
    }
    if (io_rename(tmp, path) != 0) {
        int e = errno;
        rc = ndl_err(err, wal_errno_status(e), "cannot rename '%s' to '%s': %s", tmp, path,
                     strerror(e));
        goto fail;
    }
    /* From here the segment exists; if its name may not be durable, records
     * written into it could vanish after being acknowledged. */
    ndl_error e;
    if (sync && (rc = sfile_sync_dir(w->dir, &e)) != NDL_OK) {
        wal_set_failure_locked(w, "%s", e.msg);
        ndl_err(err, rc, "%s (the log is read-only now)", e.msg);
        io_close(fd);
        ndl_free(tmp);
        ndl_free(path);
        return rc;
    }
    ndl_free(tmp);
    *fd_out = fd;
    *path_out = path;
    return NDL_OK;

fail:
    if (fd >= 0)
        io_close(fd);
    io_unlink(tmp);
    ndl_free(tmp);
    ndl_free(path);
    return rc;
}

/* Allocate the rest of the active segment once writes pass its first
 * WAL_RESERVE_FIRST bytes, so that an fdatasync seldom has new extents to
 * record, while a collection that writes little holds 4 MiB of log, not a
 * whole segment (every collection has a log). Growing in doubling steps
 * instead (8, 16, 32 MiB) cost 15-25% of 4 KiB appends at fsync=always
 * (bench/wal_bench.c, docs/DESIGN.md); one step did not. Best effort.
 * Caller holds mu. */
static void reserve_ahead(wal *w, uint64_t need)
{
    if (w->opt.sync == WAL_SYNC_NONE || need <= w->reserved)
        return;
    uint64_t want = NDL_MAX(w->opt.segment_bytes, need);
    /* tried once per segment: a file system without fallocate (or a full
     * disk, which the write itself will report) gets no retry per append */
    (void)fallocate(w->fd, FALLOC_FL_KEEP_SIZE, (off_t)w->reserved, (off_t)(want - w->reserved));
    w->reserved = want;
}

/* Switch to a new segment starting after last_lsn. Caller holds mu and no
 * sync runs. The old file is synced first (unless WAL_SYNC_NONE): group
 * commit only ever syncs the active file. */
static ndl_status roll_locked(wal *w, ndl_error *err)
{
    assert(!w->syncing);
    ndl_status rc = wal_segs_reserve(w, w->nsegs + 1, err);
    if (rc != NDL_OK)
        return rc;
    if (w->opt.sync != WAL_SYNC_NONE && w->synced_lsn < w->last_lsn) {
        if (io_fdatasync(w->fd) != 0) {
            int e = errno;
            wal_set_failure_locked(w, "cannot sync '%s': %s", w->active_path, strerror(e));
            return ndl_err(err, wal_errno_status(e),
                           "cannot sync '%s': %s (the log is read-only now)", w->active_path,
                           strerror(e));
        }
        w->synced_lsn = w->last_lsn;
        pthread_cond_broadcast(&w->synced_cv);
    }
    int fd;
    char *path;
    if ((rc = wal_seg_create(w, w->last_lsn + 1, &fd, &path, err)) != NDL_OK)
        return rc;
    io_close(w->fd); /* synced above, or WAL_SYNC_NONE */
    w->fd = fd;
    ndl_free(w->active_path);
    w->active_path = path;
    w->segs[w->nsegs++] = (wal_seg){.first = w->last_lsn + 1, .bytes = WAL_SEG_HEADER};
    w->end = WAL_SEG_HEADER;
    __atomic_store_n(&w->total_bytes, w->total_bytes + WAL_SEG_HEADER, __ATOMIC_RELAXED);
    return NDL_OK;
}

/* ---------------------------------------------------------------- append */

/* Write a record at the end of the active segment: staged into one write
 * when small, else header, parts and padding written in place (no copy of
 * a large batch). Caller holds mu. Returns 0 or -1 with errno. */
static int write_record(wal *w, uint32_t type, uint64_t lsn, const wal_part *parts,
                        size_t nparts, size_t len)
{
    uint64_t total = wal_rec_bytes(len);
    uint8_t hdr[WAL_REC_HEADER];
    wal_rec_header(hdr, type, lsn, parts, nparts, (uint32_t)len);
    if (total <= STAGE_KEEP_BYTES) {
        if (w->stage_cap < total) {
            uint8_t *p = ndl_realloc(w->stage, (size_t)total);
            if (!p) {
                errno = ENOMEM;
                return -1;
            }
            w->stage = p;
            w->stage_cap = (size_t)total;
        }
        memcpy(w->stage, hdr, WAL_REC_HEADER);
        size_t at = WAL_REC_HEADER;
        for (size_t i = 0; i < nparts; i++) {
            if (parts[i].len)
                memcpy(w->stage + at, parts[i].data, parts[i].len);
            at += parts[i].len;
        }
        memset(w->stage + at, 0, (size_t)total - at);
        return io_pwrite_all(w->fd, w->stage, (size_t)total, (off_t)w->end);
    }
    off_t at = (off_t)w->end;
    if (io_pwrite_all(w->fd, hdr, WAL_REC_HEADER, at) != 0)
        return -1;
    at += WAL_REC_HEADER;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].len && io_pwrite_all(w->fd, parts[i].data, parts[i].len, at) != 0)
            return -1;
        at += (off_t)parts[i].len;
    }
    static const uint8_t zeros[8];
    size_t pad = (size_t)(total - WAL_REC_HEADER - len);
    return pad ? io_pwrite_all(w->fd, zeros, pad, at) : 0;
}

ndl_status wal_append(wal *w, uint32_t type, const void *data, size_t len, uint64_t *lsn,
                      ndl_error *err)
{
    wal_part part = {data, len};
    return wal_append_parts(w, type, &part, 1, lsn, err);
}

ndl_status wal_append_parts(wal *w, uint32_t type, const wal_part *parts, size_t nparts,
                            uint64_t *lsn, ndl_error *err)
{
    *lsn = 0;
    if (w->opt.read_only)
        return wal_read_only_err(w, err);
    size_t len = 0;
    for (size_t i = 0; i < nparts; i++)
        len += parts[i].len < (size_t)WAL_RECORD_MAX + 1 ? parts[i].len : (size_t)WAL_RECORD_MAX + 1;
    if (len > WAL_RECORD_MAX)
        return ndl_err(err, NDL_INVALID, "log record of %zu bytes exceeds the limit of %u", len,
                       (unsigned)WAL_RECORD_MAX);
    uint64_t total = wal_rec_bytes(len);
    ndl_status rc = NDL_OK;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (wal_failure(w)) {
            rc = wal_read_only_err(w, err);
            goto leave;
        }
        if (w->end <= WAL_SEG_HEADER || w->end + total <= w->opt.segment_bytes)
            break;
        if (w->syncing) { /* a roll closes the file the syncer works on */
            pthread_cond_wait(&w->synced_cv, &w->mu);
            continue; /* someone else may have rolled meanwhile */
        }
        if ((rc = roll_locked(w, err)) != NDL_OK)
            goto leave;
    }
    reserve_ahead(w, w->end + total);
    uint64_t my_lsn = w->last_lsn + 1;
    if (write_record(w, type, my_lsn, parts, nparts, len) != 0) {
        int e = errno;
        if (e == ENOMEM) {
            rc = ndl_err(err, NDL_NOMEM, "out of memory appending %zu bytes to the log", len);
            goto leave;
        }
        if (e == ENOSPC || e == EDQUOT) {
            /* cut the partial record off: the file ends where it did and a
             * later append can succeed once there is room */
            if (io_ftruncate(w->fd, (off_t)w->end) == 0) {
                rc = ndl_err(err, NDL_DISK_FULL, "cannot append to '%s': %s", w->active_path,
                             strerror(e));
                goto leave;
            }
            int e2 = errno;
            wal_set_failure_locked(w, "cannot cut a partial record off '%s' at offset %llu: %s",
                                   w->active_path, (unsigned long long)w->end, strerror(e2));
            rc = ndl_err(err, NDL_DISK_FULL,
                         "cannot append to '%s': %s; cutting the partial record off failed: "
                         "%s (the log is read-only now)",
                         w->active_path, strerror(e), strerror(e2));
            goto leave;
        }
        wal_set_failure_locked(w, "cannot write '%s': %s", w->active_path, strerror(e));
        rc = ndl_err(err, NDL_IO, "cannot write '%s': %s (the log is read-only now)",
                     w->active_path, strerror(e));
        goto leave;
    }
    w->end += total;
    w->segs[w->nsegs - 1].bytes = w->end;
    __atomic_store_n(&w->total_bytes, w->total_bytes + total, __ATOMIC_RELAXED);
    __atomic_store_n(&w->last_lsn, my_lsn, __ATOMIC_RELEASE);
    *lsn = my_lsn;
leave:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---------------------------------------------------------------- read */

typedef struct read_seg {
    int fd;
    uint64_t first, bytes;
    char *path;
} read_seg;

static void read_segs_free(read_seg *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i].fd >= 0)
            close(s[i].fd);
        ndl_free(s[i].path);
    }
    ndl_free(s);
}

/* Open the segments holding LSNs >= from, as they are now. Caller holds mu.
 * Open descriptors keep the files readable if wal_truncate_before deletes
 * them meanwhile; sizes fix what is read (later appends are not). */
static ndl_status read_snapshot(wal *w, uint64_t from, read_seg **out, size_t *n_out,
                                ndl_error *err)
{
    *out = NULL;
    *n_out = 0;
    size_t start = 0;
    while (start + 1 < w->nsegs && w->segs[start + 1].first <= from)
        start++;
    size_t n = w->nsegs - start;
    if (n == 0)
        return NDL_OK;
    read_seg *s = ndl_calloc(n, sizeof *s);
    if (!s)
        return ndl_err(err, NDL_NOMEM, "out of memory reading the log '%s'", w->dir);
    for (size_t i = 0; i < n; i++)
        s[i].fd = -1;
    for (size_t i = 0; i < n; i++) {
        const wal_seg *g = &w->segs[start + i];
        s[i].first = g->first;
        s[i].bytes = g->bytes;
        s[i].path = wal_seg_path(w->dir, g->first);
        if (!s[i].path) {
            read_segs_free(s, n);
            return ndl_err(err, NDL_NOMEM, "out of memory reading the log '%s'", w->dir);
        }
        s[i].fd = open(s[i].path, O_RDONLY | O_CLOEXEC);
        if (s[i].fd < 0) {
            int e = errno;
            ndl_status rc = ndl_err(err, NDL_IO, "cannot open '%s': %s", s[i].path, strerror(e));
            read_segs_free(s, n);
            return rc;
        }
    }
    *out = s;
    *n_out = n;
    return NDL_OK;
}

/* Visit the records of one segment with LSN >= from; *expect is the LSN the
 * first record must have, advanced past the last. */
static ndl_status read_segment(const read_seg *s, uint64_t from, uint64_t *expect,
                               wal_visit_fn fn, void *ctx, ndl_error *err)
{
    if (s->first != *expect)
        return ndl_err(err, NDL_CORRUPT,
                       "'%s' starts at LSN %llu, but the segment before it ends at LSN %llu",
                       s->path, (unsigned long long)s->first, (unsigned long long)(*expect - 1));
    wal_reader r;
    wal_reader_init(&r, s->fd, s->bytes);
    ndl_status rc = NDL_OK;
    uint8_t h[WAL_SEG_HEADER];
    char why[128];
    wal_rec_result res = wal_reader_header(&r, h);
    const char *bad = res == WAL_REC_OK ? wal_header_check(h, s->first)
                                        : "the file is shorter than a segment header";
    if (res == WAL_REC_IOERR)
        goto io_error;
    if (bad) {
        rc = ndl_err(err, NDL_CORRUPT, "'%s', offset 0: bad segment header (%s)", s->path, bad);
        goto leave;
    }
    uint64_t off = WAL_SEG_HEADER;
    for (;;) {
        wal_rec rec;
        /* records before `from` are checked but their payload not handed out */
        res = wal_reader_next(&r, off, *expect >= from, &rec, why, sizeof why);
        if (res == WAL_REC_END)
            break;
        if (res == WAL_REC_IOERR)
            goto io_error;
        if (res == WAL_REC_OK && rec.lsn != *expect) {
            snprintf(why, sizeof why, "LSN %llu where %llu was expected",
                     (unsigned long long)rec.lsn, (unsigned long long)*expect);
            res = WAL_REC_BAD;
        }
        if (res == WAL_REC_BAD) {
            rc = ndl_err(err, NDL_CORRUPT, "'%s', offset %llu: damaged log record (%s)", s->path,
                         (unsigned long long)off, why);
            goto leave;
        }
        if (rec.lsn >= from && (rc = fn(ctx, rec.lsn, rec.type, rec.data, rec.len, err)) != NDL_OK)
            goto leave;
        ++*expect;
        off = rec.next;
    }
leave:
    wal_reader_free(&r);
    return rc;
io_error:
    rc = ndl_err(err, r.read_errno == ENOMEM ? NDL_NOMEM : NDL_IO, "cannot read '%s': %s",
                 s->path, strerror(r.read_errno));
    wal_reader_free(&r);
    return rc;
}

ndl_status wal_read(wal *w, uint64_t from, wal_visit_fn fn, void *ctx, ndl_error *err)
{
    read_seg *segs;
    size_t n;
    pthread_mutex_lock(&w->mu);
    ndl_status rc = read_snapshot(w, from, &segs, &n, err);
    pthread_mutex_unlock(&w->mu);
    if (rc != NDL_OK)
        return rc;
    uint64_t expect = n ? segs[0].first : 0;
    for (size_t i = 0; i < n && rc == NDL_OK; i++)
        rc = read_segment(&segs[i], from, &expect, fn, ctx, err);
    read_segs_free(segs, n);
    return rc;
}

/* ---------------------------------------------------------------- truncate */

ndl_status wal_truncate_before(wal *w, uint64_t lsn, ndl_error *err)
{
    if (w->opt.read_only)
        return wal_read_only_err(w, err);
    ndl_status rc = NDL_OK;
    pthread_mutex_lock(&w->mu);
    /* segment i holds [segs[i].first, segs[i+1].first): all below lsn iff
     * segs[i+1].first <= lsn; oldest first, so a crash midway leaves no gap */
    size_t done = 0;
    uint64_t freed = 0;
    while (done + 1 < w->nsegs && w->segs[done + 1].first <= lsn) {
        char *path = wal_seg_path(w->dir, w->segs[done].first);
        if (!path) {
            rc = ndl_err(err, NDL_NOMEM, "out of memory truncating the log '%s'", w->dir);
            break;
        }
        if (io_unlink(path) != 0 && errno != ENOENT) {
            int e = errno;
            rc = ndl_err(err, NDL_IO, "cannot delete '%s': %s", path, strerror(e));
            ndl_free(path);
            break;
        }
        ndl_free(path);
        freed += w->segs[done].bytes;
        done++;
    }
    if (done > 0) {
        memmove(w->segs, w->segs + done, (w->nsegs - done) * sizeof *w->segs);
        w->nsegs -= done;
        __atomic_store_n(&w->total_bytes, w->total_bytes - freed, __ATOMIC_RELAXED);
        if (rc == NDL_OK && w->opt.sync != WAL_SYNC_NONE)
            rc = sfile_sync_dir(w->dir, err);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

ndl_status wal_roll_if_covered(wal *w, uint64_t lsn, ndl_error *err)
{
    if (w->opt.read_only)
        return wal_read_only_err(w, err);
    ndl_status rc = NDL_OK;
    pthread_mutex_lock(&w->mu);
    wal_wait_sync_idle_locked(w);
    if (w->last_lsn < lsn && w->end > WAL_SEG_HEADER && !wal_failure(w))
        rc = roll_locked(w, err);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---------------------------------------------------------------- small getters */

uint64_t wal_last_lsn(const wal *w) { return __atomic_load_n(&w->last_lsn, __ATOMIC_ACQUIRE); }

uint64_t wal_bytes(const wal *w) { return __atomic_load_n(&w->total_bytes, __ATOMIC_RELAXED); }

/* ---------------------------------------------------------------- close */

void wal_free(wal *w)
{
    if (w->fd >= 0)
        io_close(w->fd);
    pthread_cond_destroy(&w->synced_cv);
    pthread_mutex_destroy(&w->mu);
    ndl_free(w->stage);
    ndl_free(w->segs);
    ndl_free(w->active_path);
    ndl_free(w->dir);
    ndl_free(w);
}

ndl_status wal_close(wal *w, ndl_error *err)
{
    if (!w)
        return NDL_OK;
    wal_batch_stop(w);
    ndl_status rc = NDL_OK;
    pthread_mutex_lock(&w->mu);
    wal_wait_sync_idle_locked(w);
    if (w->fd >= 0 && w->opt.sync != WAL_SYNC_NONE && !wal_failure(w) &&
        w->synced_lsn < w->last_lsn)
        rc = wal_sync_locked(w, err);
    pthread_mutex_unlock(&w->mu);
    wal_free(w);
    return rc;
}
