/*
 * verifier.c -- verifying the vectors a collection was opened from, after
 * the open: opening maps them unread (a million vectors open in a fraction
 * of a second), and a background thread then reads them once against their
 * chunk checksums (vectors_file.h). Until it is through, a flipped bit in
 * a vector could be served by a search; it is never copied into a new
 * checkpoint or compaction (those compare as they copy). A mismatch makes
 * the collection answer NDL_CORRUPT to every read and write, naming the
 * file and chunk; the files and the log stay as they are for needle check
 * and --salvage.
 */
#include "db/db_internal.h"

/* Bytes per step: the thread checks for a close between steps. */
#define VERIFY_STEP_BYTES ((size_t)8 << 20)

ndl_status coll_check_intact(ndl_collection *c, ndl_error *err)
{
    if (atomic_load_explicit(&c->seal.state, memory_order_acquire) != SEAL_DAMAGED)
        return NDL_OK; /* the common case: one load */
    return ndl_err(err, NDL_CORRUPT, "collection '%s' is damaged: %s", c->name, c->seal.damage);
}

static void *verifier_main(void *arg)
{
    ndl_collection *c = arg;
    while (!atomic_load(&c->verifier_stop) && vectors_seal_pending(&c->seal))
        if (vectors_seal_verify(&c->seal, VERIFY_STEP_BYTES, NULL) != NDL_OK)
            break; /* the seal is damaged: every read and write says so */
    return NULL;
}

static atomic_bool held; /* test hook: coll_verifier_hold */

void coll_verifier_hold(bool hold) { atomic_store(&held, hold); }

void coll_verifier_start(ndl_collection *c)
{
    if (!vectors_seal_pending(&c->seal) || c->verifier_running || atomic_load(&held))
        return;
    /* without the thread, ndl_collection_verify, checkpoints and
     * compactions still verify */
    c->verifier_running = pthread_create(&c->verifier, NULL, verifier_main, c) == 0;
}

NDL_API ndl_status ndl_collection_verify(ndl_collection *c, ndl_error *err)
{
    ndl_status rc = vectors_seal_verify(&c->seal, SIZE_MAX, err);
    if (rc != NDL_OK)
        return coll_check_intact(c, err);
    return NDL_OK;
}
