/*
 * wal_recover.c -- opening a write-ahead log: find the segment files, check
 * every header and record, and decide what damage means. A bad record with
 * no valid record after it, at the end of the last segment, is the torn
 * tail of an append that was never acknowledged: it is cut off (ftruncate)
 * and reported. Anything else -- damage in an older segment, damage followed
 * by valid records, damage to a record the caller knows was durable
 * (wal_options.durable_lsn), a bad header, a gap between segments -- is
 * NDL_CORRUPT naming the file and the byte offset. Format: wal_internal.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/io.h"
#include "storage/sfile.h"
#include "storage/wal_internal.h"
#include "util/alloc.h"

void wal_options_init(wal_options *o)
{
    memset(o, 0, sizeof *o);
    o->sync = WAL_SYNC_ALWAYS;
    o->segment_bytes = WAL_SEGMENT_BYTES_DEFAULT;
    o->batch_ms = WAL_BATCH_MS_DEFAULT;
    o->read_only = 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Create dir unless it exists; a new directory's name is synced into its
 * parent. */
static ndl_status ensure_dir(const wal *w, ndl_error *err)
{
    if (mkdir(w->dir, 0755) != 0) {
        if (errno == EEXIST)
            return NDL_OK;
        int e = errno;
        return ndl_err(err, wal_errno_status(e), "cannot create '%s': %s", w->dir, strerror(e));
    }
    if (w->opt.sync == WAL_SYNC_NONE)
        return NDL_OK;
    const char *slash = strrchr(w->dir, '/');
    if (!slash)
        return sfile_sync_dir(".", err);
    if (slash == w->dir)
        return sfile_sync_dir("/", err);
    char *parent = ndl_strndup(w->dir, (size_t)(slash - w->dir));
    if (!parent)
        return ndl_err(err, NDL_NOMEM, "out of memory opening the log '%s'", w->dir);
    ndl_status rc = sfile_sync_dir(parent, err);
    ndl_free(parent);
    return rc;
}

/* The first LSNs of the segment files in dir, ascending (*n = 0 and NDL_OK
 * for a missing directory). Leftover "<segment>.tmp" files of a crashed
 * segment creation are removed unless read-only. */
static ndl_status list_segments(const wal *w, uint64_t **out, size_t *n, ndl_error *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(w->dir);
    if (!d) {
        if (errno == ENOENT && w->opt.read_only)
            return NDL_OK;
        int e = errno;
        return ndl_err(err, NDL_IO, "cannot open the log directory '%s': %s", w->dir,
                       strerror(e));
    }
    ndl_status rc = NDL_OK;
    uint64_t *lsns = NULL;
    size_t cap = 0, count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t lsn;
        size_t len = strlen(de->d_name);
        if (len == WAL_NAME_LEN + 4 && strcmp(de->d_name + WAL_NAME_LEN, ".tmp") == 0 &&
            !w->opt.read_only) {
            char name[WAL_NAME_LEN + 1];
            memcpy(name, de->d_name, WAL_NAME_LEN);
            name[WAL_NAME_LEN] = 0;
            if (wal_seg_name_parse(name, &lsn)) {
                char *p = wal_seg_path(w->dir, lsn);
                size_t plen = p ? strlen(p) : 0;
                char *tmp = p ? ndl_malloc(plen + 5) : NULL;
                if (tmp) {
                    memcpy(tmp, p, plen);
                    memcpy(tmp + plen, ".tmp", 5);
                    io_unlink(tmp); /* best effort: it is ignored anyway */
                }
                ndl_free(tmp);
                ndl_free(p);
            }
            continue;
        }
        if (!wal_seg_name_parse(de->d_name, &lsn))
            continue;
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 16;
            uint64_t *p = ndl_realloc(lsns, nc * sizeof *p);
            if (!p) {
                rc = ndl_err(err, NDL_NOMEM, "out of memory opening the log '%s'", w->dir);
                break;
            }
            lsns = p;
            cap = nc;
        }
        lsns[count++] = lsn;
    }
    closedir(d);
    if (rc != NDL_OK) {
        ndl_free(lsns);
        return rc;
    }
    if (count)
        qsort(lsns, count, sizeof *lsns, cmp_u64);
    *out = lsns;
    *n = count;
    return NDL_OK;
}

static void note_dropped(wal_recovery *rec, const char *path, uint64_t off, uint64_t bytes)
{
    if (!rec)
        return;
    rec->dropped_bytes = bytes;
    rec->dropped_offset = off;
    snprintf(rec->dropped_file, sizeof rec->dropped_file, "%s", path);
}

/* Cut path to len bytes (and sync that unless WAL_SYNC_NONE). */
static ndl_status cut_tail(const wal *w, const char *path, uint64_t len, ndl_error *err)
{
    int fd = io_open(path, O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        return ndl_err(err, NDL_IO, "cannot open '%s' to cut off its torn tail: %s", path,
                       strerror(e));
    }
    ndl_status rc = NDL_OK;
    if (io_ftruncate(fd, (off_t)len) != 0 ||
        (w->opt.sync != WAL_SYNC_NONE && io_fdatasync(fd) != 0)) {
        int e = errno;
        rc = ndl_err(err, NDL_IO, "cannot cut the torn tail off '%s' at offset %llu: %s", path,
                     (unsigned long long)len, strerror(e));
    }
    io_close(fd);
    return rc;
}

typedef enum scan_end { SCAN_CLEAN, SCAN_TORN_HEADER, SCAN_TORN_TAIL } scan_end;

/* Check one segment file: its header and every record. *expect is the LSN
 * its first record must have and is advanced past its last. *valid gets
 * the bytes up to the end of the last good record. A torn tail (or a torn
 * header: a file shorter than one) is acceptable only in the last segment
 * (is_last) and only after the record with LSN durable_lsn; else it is
 * NDL_CORRUPT. */
static ndl_status scan_segment(const char *path, uint64_t first, bool is_last,
                               uint64_t durable_lsn, uint64_t *expect, uint64_t *valid,
                               uint64_t *size_out, scan_end *how, ndl_error *err)
{
    *how = SCAN_CLEAN;
    *valid = 0; /* then the end of each good record, so damage leaves the prefix */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return ndl_err(err, NDL_IO, "cannot open '%s': %s", path, strerror(e));
    }
    ndl_status rc = NDL_OK;
    wal_reader r;
    wal_reader_init(&r, fd, 0);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        rc = ndl_err(err, NDL_IO, "cannot stat '%s': %s", path, strerror(e));
        goto leave;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ndl_err(err, NDL_IO, "'%s' is not a regular file", path);
        goto leave;
    }
    uint64_t size = (uint64_t)st.st_size;
    *size_out = size;
    r.size = size;
    if (first != *expect) {
        rc = ndl_err(err, NDL_CORRUPT,
                     "'%s' starts at LSN %llu, but the segment before it ends at LSN %llu "
                     "(a gap in the log)",
                     path, (unsigned long long)first, (unsigned long long)(*expect - 1));
        goto leave;
    }
    if (size < WAL_SEG_HEADER) {
        /* The segment was being created (a crash between creating the file
         * and its header reaching the disk): it holds no record. */
        if (is_last) {
            *how = SCAN_TORN_HEADER;
            *valid = 0;
        } else {
            rc = ndl_err(err, NDL_CORRUPT,
                         "'%s', offset 0: the file is %llu bytes, shorter than a segment header",
                         path, (unsigned long long)size);
        }
        goto leave;
    }
    uint8_t h[WAL_SEG_HEADER];
    char why[128];
    wal_rec_result res = wal_reader_header(&r, h);
    if (res == WAL_REC_IOERR)
        goto io_error;
    const char *bad = wal_header_check(h, first);
    if (bad) {
        rc = ndl_err(err, NDL_CORRUPT, "'%s', offset 0: bad segment header (%s)", path, bad);
        goto leave;
    }
    uint64_t off = WAL_SEG_HEADER;
    for (;;) {
        wal_rec rec;
        res = wal_reader_next(&r, off, false, &rec, why, sizeof why);
        if (res == WAL_REC_END)
            break;
        if (res == WAL_REC_IOERR)
            goto io_error;
        if (res == WAL_REC_OK && rec.lsn != *expect) {
            snprintf(why, sizeof why, "LSN %llu where %llu was expected",
                     (unsigned long long)rec.lsn, (unsigned long long)*expect);
            res = WAL_REC_BAD;
        }
        if (res == WAL_REC_OK) {
            ++*expect;
            off = rec.next;
            *valid = off;
            continue;
        }
        /* damage at off: a torn tail only if nothing valid follows in the
         * last segment, and only if no record there was known durable (a
         * checksum cannot tell a torn append from a flipped bit) */
        if (!is_last) {
            rc = ndl_err(err, NDL_CORRUPT, "'%s', offset %llu: damaged log record (%s)", path,
                         (unsigned long long)off, why);
            goto leave;
        }
        if (*expect <= durable_lsn) {
            rc = ndl_err(err, NDL_CORRUPT,
                         "'%s', offset %llu: damaged log record (%s); records up to LSN %llu "
                         "were durable, so it is no torn append",
                         path, (unsigned long long)off, why, (unsigned long long)durable_lsn);
            goto leave;
        }
        uint64_t found;
        res = wal_reader_find_valid(&r, off, *expect, &found);
        if (res == WAL_REC_IOERR)
            goto io_error;
        if (res == WAL_REC_OK) {
            rc = ndl_err(err, NDL_CORRUPT,
                         "'%s', offset %llu: damaged log record (%s) followed by a valid one "
                         "at offset %llu",
                         path, (unsigned long long)off, why, (unsigned long long)found);
            goto leave;
        }
        *how = SCAN_TORN_TAIL;
        break;
    }
    *valid = off;
leave:
    wal_reader_free(&r);
    close(fd);
    return rc;
io_error:
    rc = ndl_err(err, r.read_errno == ENOMEM ? NDL_NOMEM : NDL_IO, "cannot read '%s': %s", path,
                 strerror(r.read_errno));
    goto leave;
}

/* Scan the listed segments into w->segs and find the end of the log;
 * repair a torn end unless read-only. */
static ndl_status recover(wal *w, const uint64_t *lsns, size_t n, wal_recovery *rec,
                          ndl_error *err)
{
    ndl_status rc = wal_segs_reserve(w, n + 1, err);
    if (rc != NDL_OK)
        return rc;
    uint64_t expect = lsns[0];
    for (size_t i = 0; i < n; i++) {
        bool is_last = i + 1 == n;
        char *path = wal_seg_path(w->dir, lsns[i]);
        if (!path)
            return ndl_err(err, NDL_NOMEM, "out of memory opening the log '%s'", w->dir);
        uint64_t valid = 0, size = 0;
        scan_end how;
        ndl_error damage;
        rc = scan_segment(path, lsns[i], is_last, w->opt.durable_lsn, &expect, &valid, &size,
                          &how, &damage);
        if (rc == NDL_CORRUPT && w->opt.salvage && w->opt.read_only) {
            /* salvage: the log ends at the damage; later segments are unreachable */
            note_dropped(rec, path, valid, size - valid);
            if (rec)
                snprintf(rec->damage, sizeof rec->damage, "%s", damage.msg);
            if (valid >= WAL_SEG_HEADER)
                w->segs[w->nsegs++] = (wal_seg){.first = lsns[i], .bytes = valid};
            ndl_free(path);
            break;
        }
        if (rc != NDL_OK && err)
            *err = damage;
        if (rc == NDL_OK && how != SCAN_CLEAN) {
            note_dropped(rec, path, valid, size - valid);
            if (how == SCAN_TORN_TAIL && !w->opt.read_only)
                rc = cut_tail(w, path, valid, err);
        }
        if (rc == NDL_OK && is_last && !w->opt.read_only) {
            if (how == SCAN_TORN_HEADER) { /* write the segment afresh */
                char *p2;
                if ((rc = wal_seg_create(w, lsns[i], &w->fd, &p2, err)) == NDL_OK) {
                    ndl_free(path);
                    path = p2;
                    valid = WAL_SEG_HEADER;
                }
            } else {
                w->fd = io_open(path, O_WRONLY | O_CLOEXEC, 0);
                if (w->fd < 0) {
                    int e = errno;
                    rc = ndl_err(err, NDL_IO, "cannot open '%s' for appending: %s", path,
                                 strerror(e));
                }
            }
        }
        if (rc != NDL_OK) {
            ndl_free(path);
            return rc;
        }
        if (how != SCAN_TORN_HEADER || !w->opt.read_only) /* read-only: nothing to read there */
            w->segs[w->nsegs++] = (wal_seg){.first = lsns[i], .bytes = valid};
        if (is_last) {
            w->active_path = path;
            path = NULL;
        }
        ndl_free(path);
    }
    w->last_lsn = expect - 1;
    return NDL_OK;
}

ndl_status wal_open(const char *dir, const wal_options *o, wal **out, wal_recovery *rec,
                    ndl_error *err)
{
    *out = NULL;
    if (rec)
        memset(rec, 0, sizeof *rec);
    wal *w = ndl_calloc(1, sizeof *w);
    if (!w)
        return ndl_err(err, NDL_NOMEM, "out of memory opening the log '%s'", dir);
    w->fd = -1;
    if (o)
        w->opt = *o;
    else
        wal_options_init(&w->opt);
    if (w->opt.segment_bytes == 0)
        w->opt.segment_bytes = WAL_SEGMENT_BYTES_DEFAULT;
    if (w->opt.batch_ms == 0)
        w->opt.batch_ms = WAL_BATCH_MS_DEFAULT;
    if (w->opt.sync != WAL_SYNC_ALWAYS && w->opt.sync != WAL_SYNC_BATCH &&
        w->opt.sync != WAL_SYNC_NONE) {
        ndl_free(w);
        return ndl_err(err, NDL_INVALID, "unknown log sync mode %d", (int)w->opt.sync);
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->synced_cv, NULL);
    w->dir = ndl_strndup(dir, strlen(dir));
    if (!w->dir) {
        wal_free(w);
        return ndl_err(err, NDL_NOMEM, "out of memory opening the log '%s'", dir);
    }

    uint64_t *lsns = NULL;
    size_t n = 0;
    ndl_status rc = w->opt.read_only ? NDL_OK : ensure_dir(w, err);
    if (rc == NDL_OK)
        rc = list_segments(w, &lsns, &n, err);
    if (rc == NDL_OK && n > 0) {
        rc = recover(w, lsns, n, rec, err);
    } else if (rc == NDL_OK && !w->opt.read_only) { /* a new log */
        rc = wal_segs_reserve(w, 1, err);
        if (rc == NDL_OK)
            rc = wal_seg_create(w, 1, &w->fd, &w->active_path, err);
        if (rc == NDL_OK)
            w->segs[w->nsegs++] = (wal_seg){.first = 1, .bytes = WAL_SEG_HEADER};
    }
    ndl_free(lsns);
    if (rc == NDL_OK && w->nsegs > 0)
        w->end = w->segs[w->nsegs - 1].bytes;
    /* what the active segment holds reserved (wal.c, reserve_ahead): its
     * first step while it is shorter, else all of it -- so reopening an
     * idle log and writing a record does not reserve a whole segment */
    if (rc == NDL_OK && w->nsegs > 0 && !w->reserved)
        w->reserved = w->end <= WAL_RESERVE_FIRST ? WAL_RESERVE_FIRST : w->opt.segment_bytes;
    for (size_t i = 0; i < w->nsegs; i++)
        w->total_bytes += w->segs[i].bytes;
    w->synced_lsn = w->last_lsn;
    if (rc == NDL_OK && rec)
        rec->last_lsn = w->last_lsn;
    if (rc == NDL_OK && w->opt.sync == WAL_SYNC_BATCH && !w->opt.read_only)
        rc = wal_batch_start(w, err);
    if (rc != NDL_OK) {
        wal_free(w);
        return rc;
    }
    *out = w;
    return NDL_OK;
}
