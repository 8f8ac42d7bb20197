/*
 * write.c -- the write path: upsert and delete, and get.
 *
 * Every mutation is validated, appended to the write-ahead log, applied,
 * and acknowledged once the log record is durable (logged_write).
 * Applying an upsert takes three steps under the collection's write lock:
 *   1. stage: each new vector gets a fresh slot, hidden from searches;
 *   2. index: the staged slots are inserted into the ANN index, on
 *      `threads` threads (hnsw inserts are thread-safe);
 *   3. publish: under the id-map lock each id is pointed at its new slot,
 *      the replaced slot is hidden, then the new one is revealed.
 * Nothing is visible before step 3, so a failed batch leaves no trace but
 * hidden slots (reclaimed by compaction). A payload lives with its slot, so
 * an upsert replaces vector and payload together; a payload change alone
 * (ndl_collection_set_payload) swaps the slot's text under the id-map lock.
 */
#include <pthread.h>
#include <string.h>

#include "db/db_internal.h"
#include "db/log_records.h"
#include "db/vector_codec.h"
#include "payload/json.h"
#include "util/alloc.h"


/* Mark earlier duplicates of an id within the batch: the last one wins. */
static ndl_status dedupe(size_t n, const ndl_id *ids, uint8_t *skip, ndl_error *err)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    size_t *table = ndl_malloc(cap * sizeof *table);
    if (!table)
        return ndl_err(err, NDL_NOMEM, "out of memory");
    memset(table, 0xff, cap * sizeof *table);
    for (size_t i = n; i-- > 0;) {
        size_t h = ndl_id_hash(ids[i]) & (cap - 1);
        skip[i] = 0;
        while (table[h] != SIZE_MAX) {
            if (ndl_id_equal(ids[table[h]], ids[i])) {
                skip[i] = 1;
                break;
            }
            h = (h + 1) & (cap - 1);
        }
        if (!skip[i])
            table[h] = i;
    }
    ndl_free(table);
    return NDL_OK;
}

typedef struct build_job {
    vindex *ix;
    const uint32_t *slots;
    size_t n;
    _Atomic size_t next;
    _Atomic size_t done;
    _Atomic int failed;
    ndl_error first_err;
    pthread_mutex_t err_lock;
    const ndl_write_options *opts;
} build_job;

static void build_run(build_job *j, bool reporter)
{
    vindex *ix = j->ix;
    size_t report_every = NDL_MAX(j->n / 200, 64);
    for (;;) {
        if (atomic_load_explicit(&j->failed, memory_order_relaxed))
            return;
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n)
            return;
        ndl_error e;
        if (ix->m->insert(ix, j->slots[i], &e) != NDL_OK) {
            pthread_mutex_lock(&j->err_lock);
            if (!atomic_exchange(&j->failed, 1))
                j->first_err = e;
            pthread_mutex_unlock(&j->err_lock);
            return;
        }
        size_t d = atomic_fetch_add(&j->done, 1) + 1;
        if (reporter && j->opts->progress && d % report_every == 0)
            j->opts->progress(j->opts->progress_ctx, d, j->n);
    }
}

static void *build_thread(void *arg)
{
    build_run(arg, false);
    return NULL;
}

ndl_status coll_index_slots(vindex *ix, const uint32_t *slots, size_t n,
                            const ndl_write_options *opts, ndl_error *err)
{
    if (!ix || n == 0) {
        if (opts->progress && n)
            opts->progress(opts->progress_ctx, n, n);
        return NDL_OK;
    }
    build_job j = {.ix = ix, .slots = slots, .n = n, .opts = opts};
    pthread_mutex_init(&j.err_lock, NULL);
    uint32_t threads = NDL_MAX(1u, NDL_MIN(opts->threads, 256u));
    if (n < 2 * threads)
        threads = 1;
    pthread_t tid[256];
    uint32_t started = 0;
    for (uint32_t t = 1; t < threads; t++)
        if (pthread_create(&tid[started], NULL, build_thread, &j) == 0)
            started++;
    build_run(&j, true);
    /* the reporter may finish early; keep reporting while others work */
    for (uint32_t t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    if (opts->progress && !j.failed)
        opts->progress(opts->progress_ctx, n, n);
    pthread_mutex_destroy(&j.err_lock);
    if (j.failed) {
        if (err)
            *err = j.first_err;
        return j.first_err.status;
    }
    return NDL_OK;
}

/* Step 1: give each kept point a hidden slot holding its encoded vector. */
static ndl_status stage(ndl_collection *c, size_t n, const ndl_id *ids, const float *vectors,
                        const log_text *payloads, const uint8_t *skip, uint32_t *slots,
                        size_t *staged, ndl_error *err)
{
    size_t dim = c->space.dim;
    *staged = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip[i])
            continue;
        uint32_t slot;
        void *rec;
        ndl_status rc = arena_reserve(&c->vectors, &slot, &rec, err);
        if (rc != NDL_OK)
            return rc;
        /* the payload record first: if it fails, nothing of the slot is
         * published and the next reserve reuses it */
        log_text t = payloads ? payloads[i] : (log_text){NULL, 0};
        if ((rc = payload_store_append(&c->payloads, slot, t.p, t.len, err)) != NDL_OK)
            return rc;
        bitset_set(&c->hidden, slot);
        codec_encode(&c->space, vectors + i * dim, rec);
        rc = idmap_set_slot(&c->ids, slot, ids[i], err);
        if (rc != NDL_OK) /* keep the id arena in step with the vectors */
            idmap_set_slot(&c->ids, slot, ndl_id_u64(0), NULL);
        arena_publish(&c->vectors, slot + 1);
        if (rc != NDL_OK)
            return rc;
        slots[(*staged)++] = slot;
    }
    return NDL_OK;
}

/* Step 3: point ids at their new slots; hide replaced slots. */
static ndl_status publish(ndl_collection *c, size_t n, const ndl_id *ids, const uint8_t *skip,
                          const uint32_t *slots, json_t *const *parsed, uint32_t *replaced,
                          size_t *nreplaced, ndl_error *err)
{
    ndl_status rc = NDL_OK;
    size_t k = 0;
    *nreplaced = 0;
    pthread_rwlock_wrlock(&c->map_lock);
    for (size_t i = 0; i < n && rc == NDL_OK; i++) {
        if (skip[i])
            continue;
        uint32_t old;
        rc = idmap_put(&c->ids, ids[i], slots[k], &old, err);
        if (rc != NDL_OK)
            break;
        if (old != IDMAP_EMPTY) {
            bitset_set(&c->hidden, old); /* hide the old before showing the new */
            replaced[(*nreplaced)++] = old;
        } else {
            atomic_fetch_add(&c->live, 1);
        }
        if (rc == NDL_OK) /* indexed before it shows */
            rc = coll_fields_add_parsed(c, slots[k], parsed ? parsed[k] : NULL, err);
        bitset_clear(&c->hidden, slots[k]);
        k++;
    }
    pthread_rwlock_unlock(&c->map_lock);
    return rc;
}

/* Apply an upsert (already validated and logged). Deterministic: replaying
 * the same batch on the same state gives the same slots and graph links
 * (with one index thread). Caller holds write_lock. */
ndl_status coll_apply_upsert(ndl_collection *c, size_t n, const ndl_id *ids, const float *vectors,
                             const log_text *payloads, json_t *const *trees,
                             const ndl_write_options *opts, ndl_error *err)
{
    ndl_status rc = NDL_OK;
    uint8_t *skip = ndl_malloc(n);
    uint32_t *slots = ndl_malloc(n * sizeof *slots);
    uint32_t *replaced = ndl_malloc(n * sizeof *replaced);
    if (!skip || !slots || !replaced) {
        rc = ndl_err(err, NDL_NOMEM, "out of memory for a batch of %zu points", n);
        goto leave;
    }
    if ((rc = dedupe(n, ids, skip, err)) != NDL_OK)
        goto leave;
    size_t staged = 0, nreplaced = 0;
    rc = stage(c, n, ids, vectors, payloads, skip, slots, &staged, err);
    if (staged)
        c->dirty = true;
    if (rc == NDL_OK)
        rc = coll_index_slots(c->ann, slots, staged, opts, err);
    json_t **parsed = NULL; /* the staged payloads for the indexes, read before map_lock */
    if (rc == NDL_OK && staged && c->fields_built && c->nfields) {
        if (!(parsed = ndl_calloc(staged, sizeof *parsed)))
            rc = ndl_err(err, NDL_NOMEM, "out of memory for a batch of %zu points", n);
        for (size_t k = 0, i = 0; rc == NDL_OK && k < staged; i++) {
            if (skip[i])
                continue;
            log_text t = payloads ? payloads[i] : (log_text){NULL, 0};
            if (trees) /* parsed when the text was made canonical */
                parsed[k++] = trees[i] ? json_incref(trees[i]) : NULL;
            else
                rc = coll_fields_parse(c, t.p, t.len, &parsed[k++], err);
        }
    }
    if (rc == NDL_OK)
        rc = publish(c, n, ids, skip, slots, parsed, replaced, &nreplaced, err);
    for (size_t k = 0; parsed && k < staged; k++)
        json_decref(parsed[k]);
    ndl_free(parsed);
    for (size_t i = 0; c->ann && i < nreplaced; i++)
        c->ann->m->remove(c->ann, replaced[i]);
leave:
    ndl_free(skip);
    ndl_free(slots);
    ndl_free(replaced);
    return rc;
}

/* Apply a delete. Caller holds write_lock. */
ndl_status coll_apply_delete(ndl_collection *c, size_t n, const ndl_id *ids, size_t *deleted,
                             ndl_error *err)
{
    *deleted = 0;
    uint32_t *gone = ndl_malloc((n ? n : 1) * sizeof *gone);
    if (!gone)
        return ndl_err(err, NDL_NOMEM, "out of memory");
    size_t ngone = 0;
    pthread_rwlock_wrlock(&c->map_lock);
    for (size_t i = 0; i < n; i++) {
        uint32_t slot = idmap_remove(&c->ids, ids[i]);
        if (slot == IDMAP_EMPTY)
            continue;
        bitset_set(&c->hidden, slot);
        atomic_fetch_sub(&c->live, 1);
        gone[ngone++] = slot;
    }
    pthread_rwlock_unlock(&c->map_lock);
    for (size_t i = 0; c->ann && i < ngone; i++)
        c->ann->m->remove(c->ann, gone[i]);
    if (ngone)
        c->dirty = true;
    ndl_free(gone);
    *deleted = ngone;
    return NDL_OK;
}

/* Apply a payload change (live or replayed): id must exist. Caller holds
 * write_lock; readers of the old text are excluded by map_lock. */
ndl_status coll_apply_payload(ndl_collection *c, ndl_id id, log_text payload, ndl_error *err)
{
    /* the old and new texts as the indexes read them, before map_lock
     * (write_lock held: no one else moves the id or changes its text) */
    uint32_t slot = idmap_find(&c->ids, id);
    if (slot == IDMAP_EMPTY)
        return ndl_err(err, NDL_NOT_FOUND, "the point whose payload changes is absent");
    const payload_ref *r = payload_store_ref(&c->payloads, slot);
    json_t *was = NULL, *now = NULL;
    ndl_status rc = coll_fields_parse(c, r->text, r->text ? r->len : 0, &was, err);
    if (rc == NDL_OK)
        rc = coll_fields_parse(c, payload.p, payload.len, &now, err);
    if (rc == NDL_OK) {
        pthread_rwlock_wrlock(&c->map_lock);
        coll_fields_remove_parsed(c, slot, was);
        rc = payload_store_replace(&c->payloads, slot, payload.p, payload.len, err);
        ndl_status rf = coll_fields_add_parsed(c, slot, rc == NDL_OK ? now : was, err);
        if (rc == NDL_OK)
            rc = rf;
        pthread_rwlock_unlock(&c->map_lock);
    }
    json_decref(was);
    json_decref(now);
    if (rc == NDL_OK)
        c->dirty = true;
    return rc;
}

/* A validated mutation on its way through the log. */
typedef struct mutation {
    uint32_t type;
    wal_part parts[2];          /* the log record */
    size_t nparts;
    size_t n;
    const ndl_id *ids;
    const float *vectors;
    const log_text *payloads;
    json_t *const *trees;       /* LOG_UPSERT_P: payloads parsed, or NULL */
    const ndl_write_options *opts;
    size_t deleted;             /* out: LOG_DELETE */
} mutation;

static ndl_status apply(ndl_collection *c, mutation *m, ndl_error *err)
{
    switch (m->type) {
    case LOG_UPSERT_P:
        return coll_apply_upsert(c, m->n, m->ids, m->vectors, m->payloads, m->trees, m->opts,
                                 err);
    case LOG_DELETE:
        return coll_apply_delete(c, m->n, m->ids, &m->deleted, err);
    default:
        return coll_apply_payload(c, m->ids[0], m->payloads[0], err);
    }
}

/* Append m to the log, then apply it; caller holds write_lock. The record
 * goes to the log before anything changes in memory; if applying then
 * fails (out of memory), a cancel record tells replay to skip it and the
 * collection turns read-only until reopened, so memory and log never
 * disagree. *lsn: what to commit before acknowledging. */
static ndl_status log_and_apply(ndl_collection *c, mutation *m, uint64_t *lsn, ndl_error *err)
{
    ndl_status rc = wal_append_parts(c->log, m->type, m->parts, m->nparts, lsn, err);
    if (rc != NDL_OK)
        return rc;
    rc = apply(c, m, err);
    if (rc == NDL_OK)
        c->applied_lsn = *lsn;
    else
        coll_cancel(c, *lsn, err);
    return rc;
}

/* Wait until the record at lsn is as durable as the fsync mode promises. */
static ndl_status acknowledge(ndl_collection *c, uint64_t lsn, ndl_error *err)
{
    ndl_status rc = wal_commit(c->log, lsn, err);
    if (rc == NDL_OK)
        coll_maybe_checkpoint(c);
    return rc;
}

/* Every payload of m against the indexed fields' types (write_lock held:
 * the fields cannot change meanwhile). */
static ndl_status check_fields(ndl_collection *c, const mutation *m, ndl_error *err)
{
    if (!c->nfields || !m->payloads || (m->type != LOG_UPSERT_P && m->type != LOG_PAYLOAD))
        return NDL_OK;
    for (size_t i = 0; i < m->n; i++) {
        ndl_error e;
        if ((m->trees ? coll_fields_check_parsed(c, m->trees[i], &e)
                      : coll_fields_check(c, m->payloads[i].p, m->payloads[i].len, &e)) != NDL_OK)
            return m->type == LOG_PAYLOAD ? ndl_err(err, e.status, "%s", e.msg)
                                          : ndl_err(err, e.status, "point %zu: %s", i, e.msg);
    }
    return NDL_OK;
}

static ndl_status logged_write(ndl_collection *c, mutation *m, ndl_error *err)
{
    uint64_t lsn = 0;
    pthread_mutex_lock(&c->write_lock);
    ndl_status rc = coll_check_writable(c, err);
    if (rc == NDL_OK)
        rc = check_fields(c, m, err);
    if (rc == NDL_OK)
        rc = log_and_apply(c, m, &lsn, err);
    pthread_mutex_unlock(&c->write_lock);
    return rc == NDL_OK ? acknowledge(c, lsn, err) : rc;
}

static ndl_status check_ids(size_t n, const ndl_id *ids, const char *what, ndl_error *err)
{
    if (!ids)
        return ndl_err(err, NDL_INVALID, "ids are required");
    if (n > UINT32_MAX)
        return ndl_err(err, NDL_INVALID, "batch of %zu %s is too large", n, what);
    for (size_t i = 0; i < n; i++) {
        ndl_error e;
        if (idmap_check_id(ids[i], &e) != NDL_OK)
            return ndl_err(err, NDL_INVALID, "%s %zu: %s", what, i, e.msg);
    }
    return NDL_OK;
}

/* Canonical texts of the batch's payloads (texts[i].p NULL for none), each
 * checked against the limit; when the collection has payload indexes, also
 * the parsed objects (*trees), so that checking and indexing them parses
 * nothing again. The caller frees both with free_payloads. */
static ndl_status prepare_payloads(ndl_collection *c, size_t n, const char *const *payloads,
                                   log_text **out, json_t ***trees, ndl_error *err)
{
    *out = NULL;
    *trees = NULL;
    if (!payloads)
        return NDL_OK;
    pthread_rwlock_rdlock(&c->map_lock); /* guards nfields */
    bool indexed = c->nfields > 0;
    pthread_rwlock_unlock(&c->map_lock);
    log_text *t = *out = ndl_calloc(n ? n : 1, sizeof *t);
    if (!t || (indexed && !(*trees = ndl_calloc(n ? n : 1, sizeof **trees))))
        return ndl_err(err, NDL_NOMEM, "out of memory for %zu payloads", n);
    for (size_t i = 0; i < n; i++) {
        if (!payloads[i])
            continue;
        char *canon;
        size_t len;
        ndl_error e;
        ndl_status rc = payload_prepare_tree(payloads[i], strlen(payloads[i]),
                                             c->db->max_payload_bytes, &canon, &len,
                                             *trees ? &(*trees)[i] : NULL, &e);
        if (rc != NDL_OK)
            return ndl_err(err, rc, "point %zu: %s", i, e.msg);
        t[i] = (log_text){canon, (uint32_t)len};
    }
    return NDL_OK;
}

static void free_payloads(log_text *t, json_t **trees, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        ndl_free((void *)t[i].p);
    for (size_t i = 0; trees && i < n; i++)
        json_decref(trees[i]);
    ndl_free(t);
    ndl_free(trees);
}

NDL_API ndl_status ndl_collection_upsert_points(ndl_collection *c, size_t n, const ndl_id *ids,
                                                const float *vectors,
                                                const char *const *payloads,
                                                const ndl_write_options *opts, ndl_error *err)
{
    ndl_write_options defaults;
    if (!opts) {
        ndl_write_options_init(&defaults);
        opts = &defaults;
    }
    ndl_status rc = coll_check_writable(c, err);
    if (rc != NDL_OK || n == 0)
        return rc;
    if (!vectors)
        return ndl_err(err, NDL_INVALID, "vectors are required");
    if ((rc = check_ids(n, ids, "point", err)) != NDL_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = codec_check(&c->space, vectors + i * c->space.dim, "vector", i, err)) != NDL_OK)
            return rc;
    log_text *texts = NULL;
    json_t **trees = NULL;
    log_buf head = {0};
    rc = prepare_payloads(c, n, payloads, &texts, &trees, err);
    if (rc == NDL_OK)
        rc = log_encode_upsert_head(&head, n, ids, c->space.dim, texts, err);
    if (rc == NDL_OK) {
        mutation m = {.type = LOG_UPSERT_P,
                      .parts = {{head.p, head.len}, {vectors, n * c->space.dim * sizeof(float)}},
                      .nparts = 2, .n = n, .ids = ids, .vectors = vectors, .payloads = texts,
                      .trees = trees, .opts = opts};
        rc = logged_write(c, &m, err);
    }
    log_buf_free(&head);
    free_payloads(texts, trees, n);
    return rc;
}

NDL_API ndl_status ndl_collection_upsert(ndl_collection *c, size_t n, const ndl_id *ids,
                                         const float *vectors, const ndl_write_options *opts,
                                         ndl_error *err)
{
    return ndl_collection_upsert_points(c, n, ids, vectors, NULL, opts, err);
}

NDL_API ndl_status ndl_collection_delete(ndl_collection *c, size_t n, const ndl_id *ids,
                                         size_t *deleted, ndl_error *err)
{
    size_t dummy;
    if (!deleted)
        deleted = &dummy;
    *deleted = 0;
    ndl_status rc = coll_check_writable(c, err);
    if (rc != NDL_OK || n == 0)
        return rc;
    if ((rc = check_ids(n, ids, "id", err)) != NDL_OK)
        return rc;
    log_buf rec = {0};
    rc = log_encode_delete(&rec, n, ids, err);
    if (rc == NDL_OK) {
        mutation m = {.type = LOG_DELETE, .parts = {{rec.p, rec.len}}, .nparts = 1, .n = n,
                      .ids = ids};
        rc = logged_write(c, &m, err);
        *deleted = m.deleted;
    }
    log_buf_free(&rec);
    return rc;
}

ndl_status coll_field_logged(ndl_collection *c, const char *name, field_type t, ndl_error *err)
{
    uint64_t lsn = 0;
    field_index *fi = NULL;
    log_buf rec = {0};
    pthread_mutex_lock(&c->write_lock);
    ndl_status rc = coll_check_writable(c, err);
    if (rc == NDL_OK) /* built (and every stored payload checked) before it is logged */
        rc = coll_field_prepare(c, name, t, &fi, err);
    if (rc == NDL_OK && fi)
        rc = log_encode_field(&rec, (uint32_t)t, name, err);
    if (rc == NDL_OK && fi) {
        wal_part part = {rec.p, rec.len};
        rc = wal_append_parts(c->log, LOG_FIELD, &part, 1, &lsn, err);
    }
    if (rc == NDL_OK && fi) {
        rc = coll_field_install(c, fi, err);
        if (rc == NDL_OK) {
            fi = NULL;
            c->applied_lsn = lsn;
        } else {
            coll_cancel(c, lsn, err);
        }
    }
    pthread_mutex_unlock(&c->write_lock);
    field_index_free(fi);
    log_buf_free(&rec);
    return rc == NDL_OK && lsn ? acknowledge(c, lsn, err) : rc;
}

ndl_status coll_delete_chosen(ndl_collection *c, coll_chooser choose, void *ctx,
                              size_t *deleted, ndl_error *err)
{
    *deleted = 0;
    const ndl_id *ids = NULL; /* the chooser's (ctx owns them) */
    size_t n = 0;
    uint64_t lsn = 0;
    log_buf rec = {0};
    pthread_mutex_lock(&c->write_lock); /* no write between choosing and deleting */
    ndl_status rc = coll_check_writable(c, err);
    if (rc == NDL_OK)
        rc = choose(c, ctx, &ids, &n, err);
    if (rc == NDL_OK && n)
        rc = log_encode_delete(&rec, n, ids, err);
    if (rc == NDL_OK && n) {
        mutation m = {.type = LOG_DELETE, .parts = {{rec.p, rec.len}}, .nparts = 1, .n = n,
                      .ids = ids};
        rc = log_and_apply(c, &m, &lsn, err);
        *deleted = m.deleted;
    }
    pthread_mutex_unlock(&c->write_lock);
    log_buf_free(&rec);
    return rc == NDL_OK && n ? acknowledge(c, lsn, err) : rc;
}

static ndl_status not_found(ndl_collection *c, ndl_id id, ndl_error *err)
{
    if (id.str)
        return ndl_err(err, NDL_NOT_FOUND, "no point with id \"%.*s\" in '%s'", (int)id.len,
                       id.str, c->name);
    return ndl_err(err, NDL_NOT_FOUND, "no point with id %llu in '%s'",
                   (unsigned long long)id.num, c->name);
}

NDL_API ndl_status ndl_collection_set_payload(ndl_collection *c, ndl_id id, const char *json,
                                              ndl_payload_mode mode, ndl_error *err)
{
    ndl_status rc = coll_check_writable(c, err);
    if (rc != NDL_OK)
        return rc;
    if ((rc = idmap_check_id(id, err)) != NDL_OK)
        return rc;
    if ((unsigned)mode > NDL_PAYLOAD_REPLACE)
        return ndl_err(err, NDL_INVALID, "unknown payload mode %d", (int)mode);
    if (!json && mode == NDL_PAYLOAD_MERGE)
        return ndl_err(err, NDL_INVALID, "a payload merge needs a JSON object");
    uint64_t lsn = 0;
    char *text = NULL;
    size_t len = 0;
    log_buf rec = {0};
    /* a replacement needs nothing stored: parse it before taking the lock */
    if (mode == NDL_PAYLOAD_REPLACE && json &&
        (rc = payload_prepare(json, strlen(json), c->db->max_payload_bytes, &text, &len, err)) !=
            NDL_OK)
        return rc;
    pthread_mutex_lock(&c->write_lock);
    uint32_t slot = idmap_find(&c->ids, id);
    rc = coll_check_writable(c, err);
    if (rc == NDL_OK && slot == IDMAP_EMPTY)
        rc = not_found(c, id, err);
    if (rc == NDL_OK && mode == NDL_PAYLOAD_MERGE) { /* the result depends on what is stored */
        const payload_ref *cur = payload_store_ref(&c->payloads, slot);
        rc = payload_merge(cur->text, cur->len, json, strlen(json), c->db->max_payload_bytes,
                           &text, &len, err);
    }
    log_text t = {text, (uint32_t)len};
    if (rc == NDL_OK)
        rc = log_encode_payload(&rec, id, t, err);
    if (rc == NDL_OK) {
        mutation m = {.type = LOG_PAYLOAD, .parts = {{rec.p, rec.len}}, .nparts = 1, .n = 1,
                      .ids = &id, .payloads = &t};
        rc = check_fields(c, &m, err);
        if (rc == NDL_OK)
            rc = log_and_apply(c, &m, &lsn, err);
    }
    pthread_mutex_unlock(&c->write_lock);
    log_buf_free(&rec);
    ndl_free(text);
    return rc == NDL_OK ? acknowledge(c, lsn, err) : rc;
}

NDL_API ndl_status ndl_collection_get_point(ndl_collection *c, ndl_id id, float *vector_out,
                                            char **payload_out, ndl_error *err)
{
    if (payload_out)
        *payload_out = NULL;
    ndl_status rc = coll_check_intact(c, err);
    if (rc == NDL_OK)
        rc = idmap_check_id(id, err);
    if (rc != NDL_OK)
        return rc;
    pthread_rwlock_rdlock(&c->swap_lock);
    pthread_rwlock_rdlock(&c->map_lock);
    uint32_t slot = idmap_find(&c->ids, id);
    if (slot == IDMAP_EMPTY) {
        rc = not_found(c, id, err);
    } else {
        if (vector_out)
            codec_decode(&c->space, arena_rec(&c->vectors, slot), vector_out);
        const payload_ref *p = payload_store_ref(&c->payloads, slot);
        if (payload_out && p->text) {
            *payload_out = ndl_strndup(p->text, p->len);
            if (!*payload_out)
                rc = ndl_err(err, NDL_NOMEM, "out of memory for a payload of %u bytes", p->len);
        }
    }
    pthread_rwlock_unlock(&c->map_lock);
    pthread_rwlock_unlock(&c->swap_lock);
    return rc;
}

NDL_API ndl_status ndl_collection_get(ndl_collection *c, ndl_id id, float *out, ndl_error *err)
{
    return ndl_collection_get_point(c, id, out, NULL, err);
}
