/*
 * wal.h -- a write-ahead log: a directory of segment files holding records
 * [length, type, LSN, CRC32C, payload], appended by one appender at a time,
 * made durable by group commit. The interface is deliberately narrow
 * (append -> LSN, read from LSN, truncate before LSN) so a replicated log
 * (e.g. a NATS JetStream stream) can replace it later.
 *
 * Files: DIR/wal-<first LSN as 16 hex digits>.log, each starting with a
 * 32-byte segment header (magic "NDLWAL\r\n", version, first LSN, CRC32C of
 * the header). Record: u32 payload length, u32 type, u64 LSN, u32 CRC32C of
 * (length, type, LSN, payload), u32 reserved = 0, then the payload, then
 * zero padding to 8 bytes. LSNs are consecutive from 1 (0 = "none").
 *
 * Durability (SPEC section 5):
 *   WAL_SYNC_ALWAYS: wal_commit returns only after the record is on disk
 *     (fdatasync). Concurrent committers share one fdatasync (group commit):
 *     the first waiter syncs everything appended so far, the others wait.
 *   WAL_SYNC_BATCH: wal_commit returns at once; a background thread
 *     fdatasyncs at most every 10 ms.
 *   WAL_SYNC_NONE: never fdatasync; the OS writes back when it likes.
 * After a failed write or fsync the log turns read-only for good (errors
 * name the cause): no later append or commit succeeds, because the kernel
 * may have dropped the dirty pages (fsyncgate).
 *
 * Thread safety: every function may be called from any thread; appends are
 * serialized inside.
 */
#ifndef NDL_STORAGE_WAL_H
#define NDL_STORAGE_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "util/base.h"

typedef enum wal_sync { WAL_SYNC_ALWAYS = 0, WAL_SYNC_BATCH = 1, WAL_SYNC_NONE = 2 } wal_sync;

typedef struct wal wal;

typedef struct wal_options {
    wal_sync sync;
    uint64_t segment_bytes;   /* roll to a new segment beyond this (default 64 MiB) */
    uint32_t batch_ms;        /* WAL_SYNC_BATCH interval (default 10) */
    int read_only;            /* open for wal_read only: never create, truncate or
                                 append (a torn tail is skipped, not cut off) */
    uint64_t durable_lsn;     /* records up to this LSN are known to have been
                                 whole on disk (a checkpoint covers them): damage
                                 in one of them is never a torn tail (default 0) */
    int salvage;              /* with read_only: damage anywhere ends the log
                                 there instead of failing the open (reported
                                 in wal_recovery.damage) */
} wal_options;

void wal_options_init(wal_options *o);

/* What wal_open found at the end of the log. */
typedef struct wal_recovery {
    uint64_t last_lsn;        /* last valid record (0 if none) */
    uint64_t dropped_bytes;   /* torn/corrupt tail bytes cut off (never acknowledged) */
    char dropped_file[256];   /* where, if dropped_bytes > 0 */
    uint64_t dropped_offset;
    char damage[300];         /* salvage: the damage the log was cut short at, or "" */
} wal_recovery;

/* Open (creating DIR's log if absent) and scan the log: a torn or corrupt
 * record at the very end of the last segment is the tail of an append that
 * was never acknowledged; it is cut off (ftruncate) and reported in *rec.
 * Damage anywhere else (a bad record followed by valid ones, a bad segment
 * header, a gap in LSNs between segments, a bad record with an LSN up to
 * o->durable_lsn) is NDL_CORRUPT naming the file and byte offset, and
 * nothing is cut. */
ndl_status wal_open(const char *dir, const wal_options *o, wal **out, wal_recovery *rec,
                    ndl_error *err);

/* Append one record; *lsn receives its LSN. Not yet durable: call
 * wal_commit(lsn) before acknowledging. Fails with NDL_READ_ONLY after an
 * earlier I/O failure; NDL_DISK_FULL on ENOSPC (the log stays writable: the
 * partial record is cut off, so a retry once space frees can succeed);
 * NDL_IO otherwise. */
ndl_status wal_append(wal *w, uint32_t type, const void *data, size_t len, uint64_t *lsn,
                      ndl_error *err);

/* The same for a record whose data is the concatenation of nparts pieces:
 * a record of up to 1 MiB is copied into one buffer and written at once; a
 * larger one (a batch's vectors) is written piece by piece, uncopied. */
typedef struct wal_part {
    const void *data;
    size_t len;
} wal_part;

ndl_status wal_append_parts(wal *w, uint32_t type, const wal_part *parts, size_t nparts,
                            uint64_t *lsn, ndl_error *err);

/* Make every record up to lsn durable per the sync mode (group commit). */
ndl_status wal_commit(wal *w, uint64_t lsn, ndl_error *err);

/* Call fn for every record with LSN >= from, in order; stops early when fn
 * returns non-OK (and returns that). */
typedef ndl_status (*wal_visit_fn)(void *ctx, uint64_t lsn, uint32_t type, const void *data,
                                   size_t len, ndl_error *err);
ndl_status wal_read(wal *w, uint64_t from, wal_visit_fn fn, void *ctx, ndl_error *err);

/* Delete whole segments whose records all have LSN < lsn (a checkpoint
 * covers them). The active segment is never deleted. */
ndl_status wal_truncate_before(wal *w, uint64_t lsn, ndl_error *err);
/* If every record has LSN < lsn and the active segment holds any, start a
 * new segment, so wal_truncate_before(lsn) can delete them all and the
 * next open reads no covered record. */
ndl_status wal_roll_if_covered(wal *w, uint64_t lsn, ndl_error *err);

uint64_t wal_last_lsn(const wal *w);
/* Bytes of all segments on disk (a checkpoint trigger). */
uint64_t wal_bytes(const wal *w);
/* NULL while healthy; else why the log turned read-only. */
const char *wal_failure(const wal *w);

/* Sync (unless WAL_SYNC_NONE), stop the batch thread, close files. */
ndl_status wal_close(wal *w, ndl_error *err);

#endif
