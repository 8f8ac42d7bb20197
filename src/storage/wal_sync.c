/*
 * wal_sync.c -- when WAL records reach the disk: group commit for
 * WAL_SYNC_ALWAYS, the background thread of WAL_SYNC_BATCH, and the sticky
 * read-only state after a failed write or fsync (wal.h, invariants 3 and 4
 * in wal_internal.h).
 *
 * Group commit: a committer whose LSN is not yet synced either waits for the
 * sync in progress or, if none runs, becomes the syncer: it notes last_lsn,
 * drops the mutex, fdatasyncs the active file (everything written so far,
 * its own record and everyone else's), retakes the mutex, advances
 * synced_lsn and wakes the waiters. Appends go on meanwhile; their records
 * ride along with the next sync. A segment roll waits until no sync runs
 * and syncs the old file itself before closing it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "storage/io.h"
#include "storage/sync_stats.h"
#include "storage/wal_internal.h"

void wal_set_failure_locked(wal *w, const char *fmt, ...)
{
    if (__atomic_load_n(&w->failed, __ATOMIC_RELAXED))
        return; /* the first cause is the one worth reporting */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->failure, sizeof w->failure, fmt, ap);
    va_end(ap);
    __atomic_store_n(&w->failed, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&w->synced_cv);
}

const char *wal_failure(const wal *w)
{
    return __atomic_load_n(&w->failed, __ATOMIC_ACQUIRE) ? w->failure : NULL;
}

ndl_status wal_read_only_err(const wal *w, ndl_error *err)
{
    const char *why = wal_failure(w);
    if (!why)
        return ndl_err(err, NDL_READ_ONLY, "write-ahead log '%s' is open read-only", w->dir);
    return ndl_err(err, NDL_READ_ONLY, "write-ahead log '%s' is read-only after a failure: %s",
                   w->dir, why);
}

ndl_status wal_errno_status(int e)
{
    return (e == ENOSPC || e == EDQUOT) ? NDL_DISK_FULL : NDL_IO;
}

void wal_wait_sync_idle_locked(wal *w)
{
    while (w->syncing)
        pthread_cond_wait(&w->synced_cv, &w->mu);
}

ndl_status wal_sync_locked(wal *w, ndl_error *err)
{
    assert(!w->syncing && w->fd >= 0);
    uint64_t target = w->last_lsn;
    int fd = w->fd; /* stays open: a roll waits for !syncing before closing it */
    w->syncing = true;
    pthread_mutex_unlock(&w->mu);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = io_fdatasync(fd);
    int e = errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sync_stats_record((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    pthread_mutex_lock(&w->mu);
    w->syncing = false;
    ndl_status st = NDL_OK;
    if (rc == 0) {
        if (target > w->synced_lsn)
            w->synced_lsn = target;
    } else {
        wal_set_failure_locked(w, "cannot sync '%s': %s", w->active_path, strerror(e));
        st = ndl_err(err, wal_errno_status(e), "cannot sync '%s': %s (the log is read-only now)",
                     w->active_path, strerror(e));
    }
    pthread_cond_broadcast(&w->synced_cv);
    return st;
}

ndl_status wal_commit(wal *w, uint64_t lsn, ndl_error *err)
{
    ndl_status rc = NDL_OK;
    pthread_mutex_lock(&w->mu);
    if (lsn > w->last_lsn) {
        rc = ndl_err(err, NDL_INVALID, "commit of LSN %llu, but the log '%s' ends at %llu",
                     (unsigned long long)lsn, w->dir, (unsigned long long)w->last_lsn);
        goto leave;
    }
    if (w->opt.read_only || w->opt.sync != WAL_SYNC_ALWAYS) {
        /* BATCH and NONE answer at once; only a failure that may have lost
         * the record is worth reporting */
        if (lsn > w->synced_lsn && wal_failure(w))
            rc = wal_read_only_err(w, err);
        goto leave;
    }
    for (;;) {
        if (w->synced_lsn >= lsn)
            break;
        if (w->syncing) {
            pthread_cond_wait(&w->synced_cv, &w->mu);
            continue;
        }
        if (wal_failure(w)) {
            rc = wal_read_only_err(w, err);
            break;
        }
        if ((rc = wal_sync_locked(w, err)) != NDL_OK)
            break;
    }
leave:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---------------------------------------------------------------- batch thread */

static void *batch_main(void *arg)
{
    wal *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)w->opt.batch_ms * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&w->batch_cv, &w->mu, &ts);
        if (w->stop)
            break; /* wal_close syncs what is left */
        if (!w->syncing && !wal_failure(w) && w->synced_lsn < w->last_lsn)
            wal_sync_locked(w, NULL); /* a failure is kept in w->failure */
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

ndl_status wal_batch_start(wal *w, ndl_error *err)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int e = pthread_cond_init(&w->batch_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (e)
        return ndl_err(err, NDL_NOMEM, "cannot create the log's batch timer: %s", strerror(e));
    w->stop = false;
    e = pthread_create(&w->batch_thread, NULL, batch_main, w);
    if (e) {
        pthread_cond_destroy(&w->batch_cv);
        return ndl_err(err, NDL_NOMEM, "cannot start the log's sync thread: %s", strerror(e));
    }
    w->batch_running = true;
    return NDL_OK;
}

void wal_batch_stop(wal *w)
{
    if (!w->batch_running)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->batch_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->batch_thread, NULL);
    pthread_cond_destroy(&w->batch_cv);
    w->batch_running = false;
}
