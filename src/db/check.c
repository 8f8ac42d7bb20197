/*
 * check.c -- ndl_collection_check: re-verify everything a collection is
 * made of, beyond what opening it checks: every chunk CRC of the current
 * vectors file (read again: it may have changed since),
 * every log record's CRC, ids <-> slots both ways, the live count, every
 * live point's payload (valid JSON object within the limit), and the
 * graph's invariants. It also finishes the verification of the vectors
 * mapped at open (verifier.c), so damage found there turns the collection
 * damaged as the background thread would.
 */
#include <stdio.h>
#include <string.h>

#include "db/db_internal.h"
#include "payload/json.h"

static ndl_status check_vectors_file(ndl_collection *c, ndl_error *err)
{
    if (c->generation == 0)
        return NDL_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/vectors.%llu", c->dir, (unsigned long long)c->generation);
    ndl_status rc = vectors_file_check(path, c->vectors.rec_bytes, c->file_slots, err);
    /* the file the collection opened from: its mapped records are verified
     * too, so ndl_collection_verify below does not read them again */
    if (rc == NDL_OK && c->seal.path && strcmp(c->seal.path, path) == 0)
        vectors_seal_settle(&c->seal);
    return rc;
}

static ndl_status count_record(void *ctx, uint64_t lsn, uint32_t type, const void *data,
                               size_t len, ndl_error *err)
{
    (void)lsn, (void)type, (void)data, (void)len, (void)err;
    (*(uint64_t *)ctx)++;
    return NDL_OK;
}

static ndl_status check_ids(ndl_collection *c, ndl_error *err)
{
    uint32_t slots = arena_count(&c->vectors);
    uint64_t visible = 0;
    for (uint32_t s = 0; s < slots; s++) {
        if (bitset_test(&c->hidden, s))
            continue;
        visible++;
        ndl_id id = idmap_slot_to_id(idmap_slot(&c->ids, s));
        uint32_t back = idmap_find(&c->ids, id);
        if (back != s)
            return ndl_err(err, NDL_CORRUPT, "'%s': slot %u holds an id that maps to slot %u",
                           c->name, s, back);
    }
    if (visible != atomic_load(&c->live))
        return ndl_err(err, NDL_CORRUPT, "'%s': %llu visible slots but a live count of %llu",
                       c->name, (unsigned long long)visible,
                       (unsigned long long)atomic_load(&c->live));
    if ((uint64_t)c->ids.live != visible)
        return ndl_err(err, NDL_CORRUPT, "'%s': the id table holds %llu ids for %llu points",
                       c->name, (unsigned long long)(uint64_t)c->ids.live,
                       (unsigned long long)visible);
    return NDL_OK;
}

static ndl_status check_payloads(ndl_collection *c, ndl_error *err)
{
    uint32_t slots = arena_count(&c->vectors);
    if (payload_store_count(&c->payloads) != slots)
        return ndl_err(err, NDL_CORRUPT, "'%s': %u payload records for %u slots", c->name,
                       payload_store_count(&c->payloads), slots);
    for (uint32_t s = 0; s < slots; s++) {
        const payload_ref *p = payload_store_ref(&c->payloads, s);
        ndl_error e;
        if (!p->text || bitset_test(&c->hidden, s) ||
            payload_validate(p->text, p->len, NDL_PAYLOAD_BYTES_MAX, &e) == NDL_OK)
            continue;
        if (e.status == NDL_NOMEM)
            return ndl_err(err, NDL_NOMEM, "%s", e.msg);
        ndl_id id = idmap_slot_to_id(idmap_slot(&c->ids, s));
        if (id.str)
            return ndl_err(err, NDL_CORRUPT, "'%s': point \"%.*s\" (slot %u): %s", c->name,
                           (int)id.len, id.str, s, e.msg);
        return ndl_err(err, NDL_CORRUPT, "'%s': point %llu (slot %u): %s", c->name,
                       (unsigned long long)id.num, s, e.msg);
    }
    return NDL_OK;
}

NDL_API ndl_status ndl_collection_check(ndl_collection *c, ndl_error *err)
{
    pthread_mutex_lock(&c->write_lock);
    pthread_rwlock_rdlock(&c->map_lock);
    ndl_status rc = check_vectors_file(c, err);
    if (rc == NDL_OK)
        rc = ndl_collection_verify(c, err);
    uint64_t records = 0;
    if (rc == NDL_OK)
        rc = wal_read(c->log, 1, count_record, &records, err);
    if (rc == NDL_OK)
        rc = check_ids(c, err);
    if (rc == NDL_OK)
        rc = check_payloads(c, err);
    if (rc == NDL_OK && c->ann && c->ann->m->check)
        rc = c->ann->m->check(c->ann, err);
    pthread_rwlock_unlock(&c->map_lock);
    pthread_mutex_unlock(&c->write_lock);
    return rc;
}
