/*
 * io.h -- the file-system calls every durable write goes through (WAL,
 * checkpoint files, manifest), so tests can inject failures: a failing or
 * short write, a failing fsync, rename or ftruncate, ENOSPC. Reads and
 * mappings do not go through here (damage on read is tested with real
 * damaged files).
 *
 * Each call behaves like its POSIX namesake (returns -1 and sets errno on
 * failure) except io_write_all, which loops over short writes.
 */
#ifndef NDL_STORAGE_IO_H
#define NDL_STORAGE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int io_open(const char *path, int flags, int mode);
/* Write all len bytes at the file offset (write loop); -1 with errno on the
 * first failure (bytes before it may have been written). */
int io_write_all(int fd, const void *buf, size_t len);
/* Write all len bytes at offset off (pwrite loop). */
int io_pwrite_all(int fd, const void *buf, size_t len, off_t off);
int io_fsync(int fd);
int io_fdatasync(int fd);
int io_ftruncate(int fd, off_t len);
int io_rename(const char *from, const char *to);
int io_unlink(const char *path);
int io_close(int fd);

/* ---- fault injection (tests only; not thread-safe to configure) */

typedef enum io_op {
    IO_OP_OPEN,
    IO_OP_WRITE,     /* io_write_all and io_pwrite_all */
    IO_OP_FSYNC,     /* io_fsync and io_fdatasync */
    IO_OP_FTRUNCATE,
    IO_OP_RENAME,
    IO_OP_UNLINK,
    IO_OP_COUNT
} io_op;

typedef struct io_fault {
    long after;      /* calls of this op that still succeed; then it fails (-1 = never) */
    long times;      /* how many calls fail once triggered (-1 = all after) */
    int error;       /* errno to fail with (EIO, ENOSPC, ...) */
    size_t short_by; /* IO_OP_WRITE only: if > 0, the failing write first writes
                        all but short_by bytes, then fails (a torn write) */
} io_fault;

/* Arm a fault for op; io_fault_reset clears every fault. Calls are counted
 * atomically, so a fault fires once even with several threads writing. */
void io_fault_set(io_op op, io_fault f);
void io_fault_reset(void);
/* How many calls of op have failed by injection since the last reset. */
long io_fault_fired(io_op op);
/* How many calls of op were made since the last reset (failed or not);
 * counted whether or not a fault is armed (tests count fsyncs with it). */
long io_calls(io_op op);
/* Call fn(path, ctx) at the start of every io_open (NULL: none); a test
 * parks a checkpoint on a chosen file this way. */
typedef void (*io_open_hook)(const char *path, void *ctx);
void io_set_open_hook(io_open_hook fn, void *ctx);

#endif
