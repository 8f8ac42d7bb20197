/*
 * checkpointer.c -- the database's background thread that checkpoints
 * collections with changes every checkpoint_interval_ms, so the log stays
 * short (fast reopen) even for a process that never closes. Size-triggered
 * checkpoints happen on the write path (log.c); this is the time trigger.
 */
#include <errno.h>
#include <time.h>

#include "db/db_internal.h"
#include "util/alloc.h"

/* Checkpoint every open collection that has changes. Each is pinned with a
 * reference (so a concurrent close cannot free it) and checkpointed without
 * the registry lock (so opens and closes of others are not held up). */
static void checkpoint_all(ndl_db *db)
{
    pthread_mutex_lock(&db->lock);
    size_t n = 0;
    for (ndl_collection *c = db->open; c; c = c->next)
        n++;
    ndl_collection **pinned = n ? ndl_malloc(n * sizeof *pinned) : NULL;
    size_t k = 0;
    for (ndl_collection *c = db->open; pinned && c; c = c->next) {
        c->refs++;
        pinned[k++] = c;
    }
    pthread_mutex_unlock(&db->lock);
    for (size_t i = 0; i < k; i++) {
        coll_checkpoint(pinned[i], NULL); /* failure: the log keeps everything */
        ndl_collection_close(pinned[i], NULL);
    }
    ndl_free(pinned);
}

static void *checkpointer_main(void *arg)
{
    ndl_db *db = arg;
    pthread_mutex_lock(&db->lock);
    while (!db->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)db->checkpoint_interval_ms * 1000000u;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        int rc = 0;
        while (!db->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&db->stop_cond, &db->lock, &until);
        if (db->stopping)
            break;
        pthread_mutex_unlock(&db->lock);
        checkpoint_all(db);
        pthread_mutex_lock(&db->lock);
    }
    pthread_mutex_unlock(&db->lock);
    return NULL;
}

void db_checkpointer_start(ndl_db *db)
{
    if (db->checkpoint_interval_ms == 0)
        return;
    db->checkpointer_running = pthread_create(&db->checkpointer, NULL, checkpointer_main, db) == 0;
}

void db_checkpointer_stop(ndl_db *db)
{
    if (!db->checkpointer_running)
        return;
    pthread_mutex_lock(&db->lock);
    db->stopping = true;
    pthread_cond_signal(&db->stop_cond);
    pthread_mutex_unlock(&db->lock);
    pthread_join(db->checkpointer, NULL);
    db->checkpointer_running = false;
}
