/*
 * checkpointer.c -- the database's background thread. It checkpoints
 * collections with changes every checkpoint_interval_ms, so the log stays
 * short (fast reopen) even for a process that never closes, and those whose
 * log outgrew checkpoint_wal_bytes when a writer asks (log.c), so no writer
 * waits for a checkpoint. It also tunes a collection's default search ef
 * when its query sample asks (ef_tuning.c), so no search waits for that.
 * A read-only database runs it for the tunings alone.
 */
#include <errno.h>
#include <time.h>

#include "db/db_internal.h"
#include "util/alloc.h"

/* Run `work` on each open collection `wanted` picks (under the registry
 * lock). Each is pinned with a reference (so a concurrent close cannot free
 * it) and worked on without the registry lock (so opens and closes of
 * others are not held up). */
static void each_open(ndl_db *db, bool (*wanted)(ndl_collection *c, bool arg), bool arg,
                      void (*work)(ndl_collection *c))
{
    pthread_mutex_lock(&db->lock);
    size_t n = 0;
    for (ndl_collection *c = db->open; c; c = c->next)
        n++;
    ndl_collection **pinned = n ? ndl_malloc(n * sizeof *pinned) : NULL;
    size_t k = 0;
    for (ndl_collection *c = db->open; pinned && c; c = c->next)
        if (wanted(c, arg)) {
            c->refs++;
            pinned[k++] = c;
        }
    pthread_mutex_unlock(&db->lock);
    for (size_t i = 0; i < k; i++) {
        work(pinned[i]);
        ndl_collection_close(pinned[i], NULL);
    }
    ndl_free(pinned);
}

/* Collections with changes: all of them, or only those whose log outgrew
 * checkpoint_wal_bytes. */
static bool wants_checkpoint(ndl_collection *c, bool only_large)
{
    /* from here on a write that finds the log too long asks again */
    atomic_store(&c->checkpoint_asked, false);
    return !only_large || coll_log_over_limit(c);
}

static void checkpoint_one(ndl_collection *c)
{
    coll_checkpoint(c, NULL); /* failure: the log keeps everything */
}

static bool wants_tuning(ndl_collection *c, bool unused)
{
    (void)unused;
    return tuner_pending(c);
}

static void deadline_after(struct timespec *t, uint32_t ms)
{
    clock_gettime(CLOCK_REALTIME, t);
    uint64_t ns = (uint64_t)t->tv_nsec + (uint64_t)ms * 1000000u;
    t->tv_sec += (time_t)(ns / 1000000000u);
    t->tv_nsec = (long)(ns % 1000000000u);
}

static void *checkpointer_main(void *arg)
{
    ndl_db *db = arg;
    pthread_mutex_lock(&db->lock);
    struct timespec until;
    deadline_after(&until, db->checkpoint_interval_ms);
    while (!db->stopping) {
        int rc = 0;
        bool timers = db->checkpoint_interval_ms && !db->read_only;
        while (!db->stopping && !db->checkpoint_requested && !db->tune_requested &&
               rc != ETIMEDOUT)
            rc = timers ? pthread_cond_timedwait(&db->stop_cond, &db->lock, &until)
                        : pthread_cond_wait(&db->stop_cond, &db->lock);
        if (db->stopping)
            break;
        bool timed = rc == ETIMEDOUT;
        bool checkpoint = (timed || db->checkpoint_requested) && !db->read_only;
        bool tune = db->tune_requested;
        db->checkpoint_requested = db->tune_requested = false;
        pthread_mutex_unlock(&db->lock);
        if (tune)
            each_open(db, wants_tuning, false, tuner_run);
        if (checkpoint)
            each_open(db, wants_checkpoint, !timed, checkpoint_one);
        pthread_mutex_lock(&db->lock);
        if (timed)
            deadline_after(&until, db->checkpoint_interval_ms);
    }
    pthread_mutex_unlock(&db->lock);
    return NULL;
}

void db_checkpointer_start(ndl_db *db)
{
    db->checkpointer_running = pthread_create(&db->checkpointer, NULL, checkpointer_main, db) == 0;
}

void db_checkpoint_request(ndl_db *db)
{
    pthread_mutex_lock(&db->lock);
    db->checkpoint_requested = true;
    pthread_cond_signal(&db->stop_cond);
    pthread_mutex_unlock(&db->lock);
}

void db_background_request(ndl_db *db)
{
    pthread_mutex_lock(&db->lock);
    db->tune_requested = true;
    pthread_cond_signal(&db->stop_cond);
    pthread_mutex_unlock(&db->lock);
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
