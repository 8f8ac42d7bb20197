/*
 * io.c -- thin wrappers over the POSIX calls of the durable write path, each
 * with a fault-injection check in front (see io.h). Faults are armed per
 * operation; a per-fault atomic call counter decides which calls fail, so
 * exactly `times` calls fail even when several threads race through here.
 */
#include "storage/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "util/base.h"

typedef struct fault_slot {
    _Atomic int armed;   /* f is in force */
    io_fault f;
    _Atomic long seen;   /* calls since the fault was armed */
    _Atomic long fired;  /* calls failed by injection since the last reset */
    _Atomic long calls;  /* every call since the last reset */
} fault_slot;

static fault_slot slots[IO_OP_COUNT];
static _Atomic int any_armed; /* fast path: no fault armed at all */

void io_fault_set(io_op op, io_fault f)
{
    assert(op >= 0 && op < IO_OP_COUNT);
    slots[op].f = f;
    atomic_store(&slots[op].seen, 0);
    atomic_store(&slots[op].armed, f.after >= 0);
    if (f.after >= 0)
        atomic_store(&any_armed, 1);
}

void io_fault_reset(void)
{
    atomic_store(&any_armed, 0);
    for (int i = 0; i < IO_OP_COUNT; i++) {
        atomic_store(&slots[i].armed, 0);
        slots[i].f = (io_fault){.after = -1, .times = 0, .error = 0, .short_by = 0};
        atomic_store(&slots[i].seen, 0);
        atomic_store(&slots[i].fired, 0);
        atomic_store(&slots[i].calls, 0);
    }
}

long io_fault_fired(io_op op) { return atomic_load(&slots[op].fired); }

long io_calls(io_op op) { return atomic_load(&slots[op].calls); }

/* Count a call of op; if an armed fault claims it, return the fault (its
 * error is never 0), else NULL. */
static const io_fault *fault_check(io_op op)
{
    fault_slot *s = &slots[op];
    atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed);
    if (NDL_LIKELY(!atomic_load_explicit(&any_armed, memory_order_relaxed)) ||
        !atomic_load_explicit(&s->armed, memory_order_acquire))
        return NULL;
    long n = atomic_fetch_add(&s->seen, 1);
    if (n < s->f.after || (s->f.times >= 0 && n - s->f.after >= s->f.times))
        return NULL;
    atomic_fetch_add(&s->fired, 1);
    return &s->f;
}

static int fail_with(const io_fault *f)
{
    errno = f->error ? f->error : EIO;
    return -1;
}

/* ---------------------------------------------------------------- wrappers */

/* Read on every open, from any thread (the checkpointer too): the pair is
 * swapped as one pointer. */
typedef struct open_hook_pair {
    io_open_hook fn;
    void *ctx;
} open_hook_pair;
static open_hook_pair hook_pairs[2];
static _Atomic(open_hook_pair *) open_hook;

void io_set_open_hook(io_open_hook fn, void *ctx)
{
    /* the slot not in use; a test sets the hook while no open runs it */
    open_hook_pair *p = &hook_pairs[atomic_load(&open_hook) == &hook_pairs[0]];
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&open_hook, fn ? p : NULL);
}

int io_open(const char *path, int flags, int mode)
{
    open_hook_pair *h = atomic_load(&open_hook);
    if (h)
        h->fn(path, h->ctx);
    const io_fault *f = fault_check(IO_OP_OPEN);
    if (f)
        return fail_with(f);
    int fd;
    do
        fd = open(path, flags, (mode_t)mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

static int write_loop(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) { /* cannot happen for regular files; never spin */
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int pwrite_loop(int fd, const uint8_t *p, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int io_write_all(int fd, const void *buf, size_t len)
{
    const io_fault *f = fault_check(IO_OP_WRITE);
    if (f) {
        /* a torn write: all but short_by bytes land, then the error */
        if (f->short_by > 0 && len > f->short_by && write_loop(fd, buf, len - f->short_by) != 0)
            return -1;
        return fail_with(f);
    }
    return write_loop(fd, buf, len);
}

int io_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    const io_fault *f = fault_check(IO_OP_WRITE);
    if (f) {
        if (f->short_by > 0 && len > f->short_by &&
            pwrite_loop(fd, buf, len - f->short_by, off) != 0)
            return -1;
        return fail_with(f);
    }
    return pwrite_loop(fd, buf, len, off);
}

int io_fsync(int fd)
{
    const io_fault *f = fault_check(IO_OP_FSYNC);
    return f ? fail_with(f) : fsync(fd);
}

int io_fdatasync(int fd)
{
    const io_fault *f = fault_check(IO_OP_FSYNC);
    return f ? fail_with(f) : fdatasync(fd);
}

int io_ftruncate(int fd, off_t len)
{
    const io_fault *f = fault_check(IO_OP_FTRUNCATE);
    if (f)
        return fail_with(f);
    int rc;
    do
        rc = ftruncate(fd, len);
    while (rc != 0 && errno == EINTR);
    return rc;
}

int io_rename(const char *from, const char *to)
{
    const io_fault *f = fault_check(IO_OP_RENAME);
    return f ? fail_with(f) : rename(from, to);
}

int io_unlink(const char *path)
{
    const io_fault *f = fault_check(IO_OP_UNLINK);
    return f ? fail_with(f) : unlink(path);
}

/* Not retried on EINTR: on Linux the descriptor is gone either way. */
int io_close(int fd) { return close(fd); }
