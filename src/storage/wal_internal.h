/*
 * wal_internal.h -- what the WAL's files share: the on-disk format
 * (wal_format.c), the handle (wal.c: open, append, read, truncate, close)
 * and the durability machinery (wal_sync.c: group commit, the batch thread,
 * the sticky failure). Interface and format overview: wal.h.
 *
 * Segment header, 32 bytes:
 *   offset size field
 *   0      8    magic "NDLWAL\r\n"
 *   8      4    format version (u32 LE, 1)
 *   12     4    reserved, 0
 *   16     8    LSN of the segment's first record (u64 LE; = the file name's)
 *   24     4    reserved, 0
 *   28     4    CRC32C of bytes 0..27
 *
 * Record, 8-byte aligned, at offset 32 and after:
 *   0      4    payload length (u32 LE)
 *   4      4    type (u32 LE)
 *   8      8    LSN (u64 LE)
 *   16     4    CRC32C of bytes 0..15, then the payload
 *   20     4    reserved, 0
 *   24     len  payload
 *   ...         zero padding to a multiple of 8
 * A record is valid iff it lies wholly inside the file, its reserved field
 * and padding are zero and the CRC matches. Its LSN must then be the one
 * after the previous record's (the segment header's first LSN for the
 * first record).
 *
 * Invariants of an open log (w->mu guards every field unless noted):
 *  1. segs[] ascend by first LSN without gaps: the records of segs[i] are
 *     [segs[i].first, segs[i+1].first); the last segment is the active one
 *     and holds [its first, last_lsn].
 *  2. The active file is exactly `end` bytes: every record below end is
 *     whole; a failed append cuts its partial record off or turns the log
 *     read-only (then the file may hold a torn tail, cut at the next open).
 *  3. synced_lsn <= last_lsn; records up to synced_lsn are on disk. At most
 *     one thread runs fdatasync on the active file (`syncing`), without mu.
 *  4. Once `failed` is set it stays set; failure[] is written before.
 */
#ifndef NDL_STORAGE_WAL_INTERNAL_H
#define NDL_STORAGE_WAL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/wal.h"
#include "util/le.h"

#define WAL_MAGIC "NDLWAL\r\n"
#define WAL_VERSION 1u
#define WAL_SEG_HEADER 32u
#define WAL_REC_HEADER 24u
/* Largest payload of one record: bounds what a damaged length field can make
 * a reader allocate (besides the file size). */
#define WAL_RECORD_MAX ((uint32_t)1 << 30)
#define WAL_SEGMENT_BYTES_DEFAULT ((uint64_t)64 << 20)
#define WAL_RESERVE_FIRST ((uint64_t)4 << 20) /* a new segment's first allocation */
#define WAL_BATCH_MS_DEFAULT 10u
#define WAL_NAME_LEN 24 /* "wal-" + 16 hex digits + ".log" */

/* Bytes a record with a len-byte payload takes in the file. */
static inline uint64_t wal_rec_bytes(uint64_t len)
{
    return WAL_REC_HEADER + ((len + 7) & ~(uint64_t)7);
}

/* ---------------------------------------------------------------- format (wal_format.c) */

void wal_header_encode(uint8_t h[WAL_SEG_HEADER], uint64_t first_lsn);
/* NULL if h is a valid header of a segment starting at first_lsn, else what
 * is wrong with it (static text). */
const char *wal_header_check(const uint8_t h[WAL_SEG_HEADER], uint64_t first_lsn);
/* Just the 24-byte header of a record whose data (len bytes in all) is the
 * concatenation of parts; the checksum covers them. */
void wal_rec_header(uint8_t h[WAL_REC_HEADER], uint32_t type, uint64_t lsn,
                    const wal_part *parts, size_t nparts, uint32_t len);

/* "DIR/wal-<16 hex>.log" (ndl_malloc'd; NULL when out of memory). */
char *wal_seg_path(const char *dir, uint64_t first_lsn);
/* Parse a segment file name; true and *lsn if it is one. */
bool wal_seg_name_parse(const char *name, uint64_t *lsn);

/* Reads the records of one segment file through a window buffer (pread), so
 * damaged lengths cost no allocation beyond the file's own size. */
typedef struct wal_reader {
    int fd;
    uint64_t size;      /* bytes of the file to consider */
    uint8_t *buf;       /* window: file bytes [woff, woff + wlen) */
    size_t cap;
    uint64_t woff;
    size_t wlen;
    uint8_t *big;       /* payload of a record too large for the window */
    size_t big_cap;
    int read_errno;     /* set when a read failed (WAL_REC_IOERR) */
} wal_reader;

typedef struct wal_rec {
    uint64_t off;       /* where the record starts */
    uint64_t next;      /* where the next one starts */
    uint64_t lsn;
    uint32_t type;
    uint32_t len;
    const uint8_t *data; /* payload (valid until the next reader call);
                            NULL unless asked for */
} wal_rec;

typedef enum wal_rec_result { WAL_REC_OK, WAL_REC_END, WAL_REC_BAD, WAL_REC_IOERR } wal_rec_result;

void wal_reader_init(wal_reader *r, int fd, uint64_t size);
void wal_reader_free(wal_reader *r);
/* Read and check the 32-byte segment header into h. WAL_REC_BAD if the
 * file is shorter. */
wal_rec_result wal_reader_header(wal_reader *r, uint8_t h[WAL_SEG_HEADER]);
/* Decode the record at off (8-aligned, >= 32). WAL_REC_END exactly at the
 * end; WAL_REC_BAD with why[] filled if the bytes there are no valid record;
 * WAL_REC_IOERR on a read error or out of memory (read_errno). want_data
 * makes rec->data point at the payload. */
wal_rec_result wal_reader_next(wal_reader *r, uint64_t off, bool want_data, wal_rec *rec,
                               char *why, size_t why_cap);
/* After damage at bad_off, is there a valid record with an LSN >= min_lsn
 * further on? (Then the damage is not a torn tail.) *found_off receives its
 * offset. WAL_REC_OK if found, WAL_REC_END if not, WAL_REC_IOERR. */
wal_rec_result wal_reader_find_valid(wal_reader *r, uint64_t bad_off, uint64_t min_lsn,
                                     uint64_t *found_off);

/* ---------------------------------------------------------------- the handle (wal.c) */

typedef struct wal_seg {
    uint64_t first;     /* LSN of its first record (also in its name) */
    uint64_t bytes;     /* valid bytes: the file size, except a torn tail left
                           in place by a read-only open */
} wal_seg;

struct wal {
    char *dir;
    wal_options opt;
    pthread_mutex_t mu;
    pthread_cond_t synced_cv;   /* a sync ended, synced_lsn moved or failure set */
    pthread_cond_t batch_cv;    /* wakes the batch thread to stop */
    wal_seg *segs;              /* invariant 1 */
    size_t nsegs, segs_cap;
    int fd;                     /* active segment for writing; -1 if read-only */
    char *active_path;          /* path of segs[nsegs-1] */
    uint64_t end;               /* invariant 2 */
    uint64_t reserved;          /* bytes of the active segment allocated ahead
                                   (fallocate: WAL_RESERVE_FIRST, then all); under mu */
    uint64_t last_lsn;          /* written under mu with __atomic (wal_last_lsn reads it bare) */
    uint64_t synced_lsn;        /* invariant 3 */
    bool syncing;
    uint64_t total_bytes;       /* sum of segs[].bytes; __atomic like last_lsn */
    uint8_t *stage;             /* one encoded record on its way to the file */
    size_t stage_cap;
    int failed;                 /* invariant 4; __atomic (wal_failure reads it bare) */
    char failure[256];
    pthread_t batch_thread;
    bool batch_running;
    bool stop;
};

/* Create the segment file for first_lsn holding just its header (through
 * "<name>.tmp" and a rename; file and directory synced unless
 * WAL_SYNC_NONE). *fd_out: the new file open for writing. A failure before
 * the rename leaves nothing behind and the log healthy; a failure after it
 * turns the log read-only. Caller holds mu (or owns w alone). */
ndl_status wal_seg_create(wal *w, uint64_t first_lsn, int *fd_out, char **path_out,
                          ndl_error *err);
/* Room for n segments in segs[]. */
ndl_status wal_segs_reserve(wal *w, size_t n, ndl_error *err);
/* Free everything of a handle (no syncing; the batch thread must be stopped). */
void wal_free(wal *w);

/* ---------------------------------------------------------------- durability (wal_sync.c) */

/* Record why the log turned read-only (first failure wins). Caller holds mu. */
void wal_set_failure_locked(wal *w, const char *fmt, ...) NDL_PRINTF(2, 3);
/* NDL_READ_ONLY naming the earlier failure. */
ndl_status wal_read_only_err(const wal *w, ndl_error *err);
/* Status for a failed system call: NDL_DISK_FULL for ENOSPC/EDQUOT, else NDL_IO. */
ndl_status wal_errno_status(int e);
/* fdatasync the active file up to last_lsn, with mu released during the
 * call. Caller holds mu, and no other sync runs (syncing is false).
 * On failure the log turns read-only. */
ndl_status wal_sync_locked(wal *w, ndl_error *err);
/* Wait (holding mu) until no sync runs. */
void wal_wait_sync_idle_locked(wal *w);
ndl_status wal_batch_start(wal *w, ndl_error *err);
void wal_batch_stop(wal *w);

#endif
