/*
 * log.c -- a collection and its write-ahead log: opening the log and
 * replaying what the last checkpoint does not cover (recovery), the
 * cancel record for a write that failed to apply, the read-only state after
 * a log failure, and the size trigger for checkpoints.
 *
 * Replay runs two passes over the records after the checkpoint LSN: the
 * first collects cancelled LSNs, the second applies the rest through the
 * same functions live writes use, so recovery is the original writes again.
 */
#include <stdio.h>
#include <string.h>

#include "db/db_internal.h"
#include "db/log_records.h"
#include "util/alloc.h"

typedef struct replay {
    ndl_collection *c;
    uint64_t *cancelled;
    size_t ncancelled, cap;
    ndl_write_options opts;
} replay;

static ndl_status collect_cancels(void *ctx, uint64_t lsn, uint32_t type, const void *data,
                                  size_t len, ndl_error *err)
{
    replay *r = ctx;
    if (lsn <= r->c->checkpoint_lsn || type != LOG_CANCEL)
        return NDL_OK;
    if (len != 8)
        return ndl_err(err, NDL_CORRUPT, "log record %llu: a cancel record of %zu bytes",
                       (unsigned long long)lsn, len);
    if (r->ncancelled == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        uint64_t *p = ndl_realloc(r->cancelled, cap * sizeof *p);
        if (!p)
            return ndl_err(err, NDL_NOMEM, "out of memory replaying the log");
        r->cancelled = p;
        r->cap = cap;
    }
    memcpy(&r->cancelled[r->ncancelled++], data, 8);
    return NDL_OK;
}

static bool is_cancelled(const replay *r, uint64_t lsn)
{
    for (size_t i = 0; i < r->ncancelled; i++)
        if (r->cancelled[i] == lsn)
            return true;
    return false;
}

static ndl_status apply_record(void *ctx, uint64_t lsn, uint32_t type, const void *data,
                               size_t len, ndl_error *err)
{
    replay *r = ctx;
    ndl_collection *c = r->c;
    if (lsn <= c->checkpoint_lsn || type == LOG_CANCEL || is_cancelled(r, lsn)) {
        c->applied_lsn = NDL_MAX(c->applied_lsn, lsn);
        return NDL_OK;
    }
    log_batch b = {0};
    ndl_status rc;
    ndl_error e;
    if (type == LOG_UPSERT || type == LOG_UPSERT_P) {
        rc = log_decode_upsert(data, len, type, c->space.dim, &b, &e);
        if (rc == NDL_OK)
            rc = coll_apply_upsert(c, b.n, b.ids, b.vectors, b.payloads, NULL, &r->opts, &e);
    } else if (type == LOG_DELETE) {
        size_t deleted;
        rc = log_decode_delete(data, len, &b, &e);
        if (rc == NDL_OK)
            rc = coll_apply_delete(c, b.n, b.ids, &deleted, &e);
    } else if (type == LOG_PAYLOAD) {
        ndl_id id;
        log_text t;
        rc = log_decode_payload(data, len, &id, &t, &e);
        if (rc == NDL_OK && (rc = coll_apply_payload(c, id, t, &e)) == NDL_NOT_FOUND)
            rc = NDL_CORRUPT; /* logged only for a point that existed */
    } else if (type == LOG_FIELD) {
        uint32_t ft;
        const char *name;
        size_t nlen;
        char buf[FIELD_NAME_BUF];
        rc = log_decode_field(data, len, &ft, &name, &nlen, &e);
        if (rc == NDL_OK && (nlen >= sizeof buf || ft >= FIELD_TYPES))
            rc = ndl_err(&e, NDL_CORRUPT, "a field record names type %u, %zu bytes", ft, nlen);
        if (rc == NDL_OK) {
            memcpy(buf, name, nlen);
            buf[nlen] = '\0';
            rc = coll_apply_field(c, buf, (field_type)ft, &e);
            if (rc != NDL_OK && rc != NDL_NOMEM) /* a bad name or a clash was never logged */
                rc = e.status = NDL_CORRUPT;
        }
    } else {
        return ndl_err(err, NDL_CORRUPT, "log of '%s': record %llu has unknown type %u", c->name,
                       (unsigned long long)lsn, type);
    }
    log_batch_free(&b);
    if (rc != NDL_OK)
        return ndl_err(err, rc, "log of '%s', record %llu: %s", c->name, (unsigned long long)lsn,
                       e.msg);
    c->applied_lsn = lsn;
    return NDL_OK;
}

ndl_status coll_log_open(ndl_collection *c, ndl_error *err)
{
    char *dir = db_path_join(c->dir, "wal");
    if (!dir)
        return ndl_err(err, NDL_NOMEM, "out of memory");
    wal_options o;
    wal_options_init(&o);
    o.sync = (wal_sync)c->db->fsync;
    o.read_only = c->db->read_only;
    o.durable_lsn = c->checkpoint_lsn; /* a damaged record the files cover is no torn tail */
    o.salvage = c->db->salvage;
    ndl_status rc = wal_open(dir, &o, &c->log, &c->recovered, err);
    ndl_free(dir);
    if (rc != NDL_OK)
        return rc;
    if (c->recovered.damage[0])
        coll_note_salvage(c, "log cut short at the damage (%s)", c->recovered.damage);
    c->applied_lsn = c->checkpoint_lsn;
    if (wal_last_lsn(c->log) < c->checkpoint_lsn && !c->db->salvage)
        return ndl_err(err, NDL_CORRUPT,
                       "log of '%s' ends at record %llu but the checkpoint covers up to %llu",
                       c->name, (unsigned long long)wal_last_lsn(c->log),
                       (unsigned long long)c->checkpoint_lsn);
    replay r = {.c = c};
    ndl_write_options_init(&r.opts);
    r.opts.threads = 1; /* one index thread: replay rebuilds the same graph */
    ndl_error e;
    rc = wal_read(c->log, c->checkpoint_lsn + 1, collect_cancels, &r, &e);
    if (rc == NDL_OK)
        rc = wal_read(c->log, c->checkpoint_lsn + 1, apply_record, &r, &e);
    ndl_free(r.cancelled);
    if (rc == NDL_CORRUPT && c->db->salvage) { /* keep what replayed before it */
        coll_note_salvage(c, "replay stopped after record %llu (%s)",
                          (unsigned long long)c->applied_lsn, e.msg);
        return NDL_OK;
    }
    if (rc != NDL_OK && err)
        *err = e;
    return rc;
}

ndl_status coll_check_writable(ndl_collection *c, ndl_error *err)
{
    ndl_status rc = coll_check_intact(c, err);
    if (rc != NDL_OK)
        return rc;
    if (c->db->read_only)
        return ndl_err(err, NDL_READ_ONLY, "collection '%s' is open read-only", c->name);
    const char *why = c->log ? wal_failure(c->log) : NULL;
    if (why)
        return ndl_err(err, NDL_READ_ONLY, "collection '%s' is read-only: %s", c->name, why);
    if (c->failure[0])
        return ndl_err(err, NDL_READ_ONLY, "collection '%s' is read-only until reopened: %s",
                       c->name, c->failure);
    return NDL_OK;
}

void coll_cancel(ndl_collection *c, uint64_t lsn, const ndl_error *why)
{
    uint64_t cancel_lsn;
    ndl_error e;
    snprintf(c->failure, sizeof c->failure, "a write failed to apply (%.200s)",
             why ? why->msg : "unknown error");
    /* best effort: if even this fails, the log is read-only now and replay
     * applies the record, which the caller was told failed -- the one case
     * where an unacknowledged write may reappear, never a half one */
    if (wal_append(c->log, LOG_CANCEL, &lsn, sizeof lsn, &cancel_lsn, &e) == NDL_OK)
        c->applied_lsn = cancel_lsn;
}

bool coll_log_over_limit(const ndl_collection *c)
{
    uint64_t limit = c->db->checkpoint_wal_bytes;
    return limit && c->log && wal_bytes(c->log) > limit;
}

void coll_maybe_checkpoint(ndl_collection *c)
{
    /* once per checkpoint, not on every write until it is done: the
     * request takes the database's registry lock */
    if (coll_log_over_limit(c) && !atomic_exchange(&c->checkpoint_asked, true))
        db_checkpoint_request(c->db); /* the background thread does it */
}
