/*
 * catalog.c -- the catalog log (formats and replay rules in catalog.h):
 * encoding and defensive decoding of its records, replay on open, and
 * collection create/drop as "log, commit, then change the directory".
 *
 * The catalog always syncs its records, whatever the database's fsync
 * mode: create and drop sync the directory anyway, and a record that could
 * lag the directory on disk would let replay undo an acknowledged drop
 * (CREATE durable, DROP not: the next open would recreate the collection
 * empty).
 *
 * Truncation: only catalog_open deletes log segments, after replay has
 * brought every record into the directory and synced it. At run time a
 * drop may return once its record is durable even if syncing the renamed
 * directory failed, so "applied" is only certain after a replay.
 */
#include "db/catalog.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db_internal.h"
#include "storage/io.h"
#include "storage/sfile.h"
#include "util/alloc.h"
#include "util/le.h"

/* Records are ~100 bytes: small segments keep the fallocate'd reserve small
 * and let truncation free space. */
#define CATALOG_SEGMENT_BYTES ((uint64_t)64 << 10)
#define CATALOG_RECORD_MAX 128

struct catalog {
    wal *log;
    char *dir;                        /* DATA/.catalog, for messages */
    char failure[256];                /* non-empty: creates and drops refused until reopened */
    char doubt[NDL_NAME_MAX + 1];     /* a collection whose directory may disagree with the log */
    wal_recovery recovered;           /* what the open found at the log's end */
};

/* ---------------------------------------------------------------- records */

typedef struct rec_buf {
    uint8_t b[CATALOG_RECORD_MAX];
    size_t len;
} rec_buf;

static void put_u32(rec_buf *r, uint32_t v)
{
    le_put32(r->b + r->len, v);
    r->len += 4;
}

static void put_u64(rec_buf *r, uint64_t v)
{
    put_u32(r, (uint32_t)v);
    put_u32(r, (uint32_t)(v >> 32));
}

/* version and name: the head of CREATE and DROP (name is valid: <= 64 bytes) */
static void put_head(rec_buf *r, const char *name)
{
    size_t n = strlen(name);
    r->len = 0;
    put_u32(r, CATALOG_RECORD_VERSION);
    put_u32(r, (uint32_t)n);
    memcpy(r->b + r->len, name, n);
    r->len += n;
}

static void encode_create(rec_buf *r, const char *name, const ndl_collection_config *cfg)
{
    put_head(r, name);
    put_u32(r, cfg->dimension);
    put_u32(r, (uint32_t)cfg->metric);
    put_u32(r, (uint32_t)cfg->index);
    put_u32(r, cfg->hnsw_m);
    put_u32(r, cfg->hnsw_ef_construction);
    put_u64(r, cfg->seed);
}

/* A decoded record. */
typedef struct catalog_rec {
    uint64_t lsn;
    uint32_t type;
    bool cancelled;
    char name[NDL_NAME_MAX + 1];       /* CREATE, DROP */
    ndl_collection_config cfg;         /* CREATE */
    uint64_t target;                   /* CANCEL: the LSN it cancels */
} catalog_rec;

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static bool get_u32(reader *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return false;
    *v = le_get32(r->p);
    r->p += 4;
    return true;
}

static bool get_u64(reader *r, uint64_t *v)
{
    if (r->end - r->p < 8)
        return false;
    *v = le_get64(r->p);
    r->p += 8;
    return true;
}

static bool get_name(reader *r, char *name, char *why, size_t whylen)
{
    uint32_t n;
    if (!get_u32(r, &n)) {
        snprintf(why, whylen, "the name length is truncated");
        return false;
    }
    if (n == 0 || n > NDL_NAME_MAX || (size_t)(r->end - r->p) < n) {
        snprintf(why, whylen, "bad name length %u", n);
        return false;
    }
    memcpy(name, r->p, n);
    name[n] = 0;
    r->p += n;
    if (!ndl_name_valid(name)) {
        snprintf(why, whylen, "bad collection name '%s'", name);
        return false;
    }
    return true;
}

static bool get_config(reader *r, ndl_collection_config *cfg, char *why, size_t whylen)
{
    uint32_t metric, index;
    ndl_collection_config_init(cfg);
    if (!get_u32(r, &cfg->dimension) || !get_u32(r, &metric) || !get_u32(r, &index) ||
        !get_u32(r, &cfg->hnsw_m) || !get_u32(r, &cfg->hnsw_ef_construction) ||
        !get_u64(r, &cfg->seed)) {
        snprintf(why, whylen, "the collection config is truncated");
        return false;
    }
    cfg->metric = (ndl_metric)metric;
    cfg->index = (ndl_index_type)index;
    ndl_error e;
    if (coll_check_config(cfg, &e) != NDL_OK) {
        snprintf(why, whylen, "bad collection config: %.150s", e.msg);
        return false;
    }
    return true;
}

/* Decode one record; trusts nothing (every length is checked first). */
static ndl_status decode(const catalog *cat, uint64_t lsn, uint32_t type, const void *data,
                         size_t len, catalog_rec *out, ndl_error *err)
{
    memset(out, 0, sizeof *out);
    out->lsn = lsn;
    out->type = type;
    reader r = {data, (const uint8_t *)data + len};
    char why[200] = "";
    uint32_t version;
    bool ok = true;
    if (!get_u32(&r, &version)) {
        snprintf(why, sizeof why, "%zu bytes, too short for a version", len);
        ok = false;
    } else if (version > CATALOG_RECORD_VERSION) {
        return ndl_err(err, NDL_UNSUPPORTED,
                       "catalog '%s', record %llu: version %u is newer than this build "
                       "supports (max %u)",
                       cat->dir, (unsigned long long)lsn, version, CATALOG_RECORD_VERSION);
    } else if (version == 0) {
        snprintf(why, sizeof why, "version 0");
        ok = false;
    } else if (type == CATALOG_CREATE) {
        ok = get_name(&r, out->name, why, sizeof why) &&
             get_config(&r, &out->cfg, why, sizeof why);
    } else if (type == CATALOG_DROP) {
        ok = get_name(&r, out->name, why, sizeof why);
    } else if (type == CATALOG_SEAL) {
        /* the version alone */
    } else if (type == CATALOG_CANCEL) {
        if (!get_u64(&r, &out->target)) {
            snprintf(why, sizeof why, "the cancelled LSN is truncated");
            ok = false;
        } else if (out->target == 0 || out->target >= lsn) {
            snprintf(why, sizeof why, "it cancels record %llu, not an earlier one",
                     (unsigned long long)out->target);
            ok = false;
        }
    } else {
        snprintf(why, sizeof why, "unknown record type %u", type);
        ok = false;
    }
    if (ok && r.p != r.end) {
        snprintf(why, sizeof why, "%zu trailing bytes", (size_t)(r.end - r.p));
        ok = false;
    }
    if (!ok)
        return ndl_err(err, NDL_CORRUPT, "catalog '%s', record %llu: %s", cat->dir,
                       (unsigned long long)lsn, why);
    return NDL_OK;
}

/* ---------------------------------------------------------------- directories */

static char *prefixed_path(const char *root, const char *prefix, const char *name)
{
    size_t n = strlen(root) + strlen(prefix) + strlen(name) + 2;
    char *p = ndl_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", root, prefix, name);
    return p;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return path && lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Remove dir and everything in it (a collection: files plus its wal/). */
static ndl_status remove_tree(const char *dir, ndl_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return ndl_err(err, NDL_IO, "cannot open '%s': %s", dir, strerror(errno));
    struct dirent *e;
    ndl_status rc = NDL_OK;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = db_path_join(dir, e->d_name);
        if (is_dir(p)) {
            ndl_status sub = remove_tree(p, err);
            if (sub != NDL_OK)
                rc = sub;
        } else if (!p || unlink(p) != 0) {
            rc = ndl_err(err, NDL_IO, "cannot remove '%s': %s", p ? p : e->d_name, strerror(errno));
        }
        ndl_free(p);
    }
    closedir(d);
    if (rc == NDL_OK && rmdir(dir) != 0)
        rc = ndl_err(err, NDL_IO, "cannot remove '%s': %s", dir, strerror(errno));
    return rc;
}

/* Rename DATA/<name> away first, so a crash mid-delete never leaves half a
 * collection under its name. Fails only while DATA/<name> is still in
 * place: after the rename a failure leaves an invisible leftover (removed
 * on the next open) and the logged drop holds, so it is not reported. */
static ndl_status drop_dir(const char *root, const char *name, ndl_error *err)
{
    char *dir = db_path_join(root, name);
    char *gone = prefixed_path(root, CATALOG_DROPPED_PREFIX, name);
    ndl_status rc = NDL_OK;
    if (!dir || !gone) {
        rc = ndl_err(err, NDL_NOMEM, "out of memory");
        goto leave;
    }
    if (is_dir(gone)) /* an old leftover would make the rename fail */
        remove_tree(gone, NULL);
    if (io_rename(dir, gone) != 0) {
        rc = ndl_err(err, NDL_IO, "cannot drop '%s': %s", name, strerror(errno));
        goto leave;
    }
    if (sfile_sync_dir(root, NULL) == NDL_OK)
        remove_tree(gone, NULL);
leave:
    ndl_free(dir);
    ndl_free(gone);
    return rc;
}

/* Remove what interrupted creates and drops left behind: .new-<name> and
 * .dropped-<name> (and .drop-<name> of builds before the catalog). Best
 * effort: they are invisible, and drop_dir clears its own again. */
static void sweep_leftovers(const char *root)
{
    static const char *const prefixes[] = {CATALOG_NEW_PREFIX, CATALOG_DROPPED_PREFIX, ".drop-"};
    DIR *d = opendir(root);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        for (size_t i = 0; i < NDL_ARRAY_LEN(prefixes); i++) {
            size_t n = strlen(prefixes[i]);
            if (strncmp(e->d_name, prefixes[i], n) != 0 || !ndl_name_valid(e->d_name + n))
                continue;
            char *p = db_path_join(root, e->d_name);
            if (is_dir(p))
                remove_tree(p, NULL);
            ndl_free(p);
        }
    }
    closedir(d);
}

/* ---------------------------------------------------------------- replay */

typedef struct replay {
    const catalog *cat;
    catalog_rec *recs;    /* every record, in LSN order */
    size_t n, cap;
} replay;

static ndl_status collect(void *ctx, uint64_t lsn, uint32_t type, const void *data, size_t len,
                          ndl_error *err)
{
    replay *r = ctx;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        catalog_rec *p = ndl_realloc(r->recs, cap * sizeof *p);
        if (!p)
            return ndl_err(err, NDL_NOMEM, "out of memory reading the catalog '%s'", r->cat->dir);
        r->recs = p;
        r->cap = cap;
    }
    ndl_status rc = decode(r->cat, lsn, type, data, len, &r->recs[r->n], err);
    if (rc == NDL_OK)
        r->n++;
    return rc;
}

/* LSNs are consecutive, so a cancelled record is found by subtraction; one
 * older than the log's start was truncated after it was applied. */
static ndl_status mark_cancelled(const catalog *cat, replay *r, ndl_error *err)
{
    for (size_t i = 0; i < r->n; i++) {
        const catalog_rec *c = &r->recs[i];
        if (c->type != CATALOG_CANCEL || c->target < r->recs[0].lsn)
            continue;
        catalog_rec *t = &r->recs[c->target - r->recs[0].lsn];
        if (t->type != CATALOG_CREATE && t->type != CATALOG_DROP)
            return ndl_err(err, NDL_CORRUPT,
                           "catalog '%s', record %llu: it cancels a %s, not a create or drop",
                           cat->dir, (unsigned long long)c->lsn,
                           t->type == CATALOG_CANCEL ? "cancel" : "seal");
        t->cancelled = true;
    }
    return NDL_OK;
}

static int cmp_name_lsn(const void *a, const void *b)
{
    const catalog_rec *x = *(const catalog_rec *const *)a, *y = *(const catalog_rec *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->lsn > y->lsn) - (x->lsn < y->lsn);
}

static ndl_status apply_one(ndl_db *db, const catalog *cat, const catalog_rec *c, ndl_error *err)
{
    char *dir = db_path_join(db->path, c->name);
    if (!dir)
        return ndl_err(err, NDL_NOMEM, "out of memory");
    struct stat st;
    bool exists = lstat(dir, &st) == 0;
    ndl_free(dir);
    ndl_status rc = NDL_OK;
    ndl_error e;
    if (c->type == CATALOG_CREATE && !exists)
        rc = coll_create_files(db, c->name, &c->cfg, &e);
    else if (c->type == CATALOG_DROP && exists && S_ISDIR(st.st_mode))
        rc = drop_dir(db->path, c->name, &e);
    if (rc != NDL_OK)
        return ndl_err(err, rc, "cannot finish the %s of '%s' logged in '%s': %s",
                       c->type == CATALOG_CREATE ? "create" : "drop", c->name, cat->dir, e.msg);
    return NDL_OK;
}

/* Bring the directory in line with the last live record of each name. */
static ndl_status apply_all(ndl_db *db, const catalog *cat, replay *r, ndl_error *err)
{
    if (r->n == 0)
        return NDL_OK;
    const catalog_rec **live = ndl_malloc(r->n * sizeof *live);
    if (!live)
        return ndl_err(err, NDL_NOMEM, "out of memory replaying the catalog '%s'", cat->dir);
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if ((r->recs[i].type == CATALOG_CREATE || r->recs[i].type == CATALOG_DROP) &&
            !r->recs[i].cancelled)
            live[n++] = &r->recs[i];
    qsort(live, n, sizeof *live, cmp_name_lsn);
    ndl_status rc = NDL_OK;
    for (size_t i = 0; i < n && rc == NDL_OK; i++)
        if (i + 1 == n || strcmp(live[i]->name, live[i + 1]->name) != 0)
            rc = apply_one(db, cat, live[i], err);
    ndl_free(live);
    return rc;
}

ndl_status catalog_open(ndl_db *db, catalog **out, ndl_error *err)
{
    *out = NULL;
    catalog *cat = ndl_calloc(1, sizeof *cat);
    if (!cat || !(cat->dir = db_path_join(db->path, CATALOG_DIR))) {
        ndl_free(cat);
        return ndl_err(err, NDL_NOMEM, "out of memory");
    }
    wal_options o;
    wal_options_init(&o);
    o.sync = WAL_SYNC_ALWAYS; /* why: see the top of this file */
    o.segment_bytes = CATALOG_SEGMENT_BYTES;
    o.read_only = db->read_only;
    replay r = {.cat = cat};
    ndl_status rc = wal_open(cat->dir, &o, &cat->log, &cat->recovered, err);
    if (rc == NDL_OK)
        rc = wal_read(cat->log, 1, collect, &r, err);
    if (rc == NDL_OK)
        rc = mark_cancelled(cat, &r, err);
    if (rc == NDL_OK && !db->read_only) {
        sweep_leftovers(db->path);
        if ((rc = apply_all(db, cat, &r, err)) == NDL_OK &&
            (rc = sfile_sync_dir(db->path, err)) == NDL_OK)
            rc = wal_truncate_before(cat->log, wal_last_lsn(cat->log) + 1, err);
    }
    ndl_free(r.recs);
    if (rc != NDL_OK) {
        catalog_close(cat, NULL);
        return rc;
    }
    *out = cat;
    return NDL_OK;
}

const wal_recovery *catalog_recovered(const catalog *cat) { return &cat->recovered; }

ndl_status catalog_close(catalog *cat, ndl_error *err)
{
    if (!cat)
        return NDL_OK;
    ndl_status rc = cat->log ? wal_close(cat->log, err) : NDL_OK;
    ndl_free(cat->dir);
    ndl_free(cat);
    return rc;
}

/* ---------------------------------------------------------------- create and drop */

static ndl_status check_writable(const ndl_db *db, ndl_error *err)
{
    const catalog *cat = db->catalog;
    const char *why = cat->failure[0] ? cat->failure : wal_failure(cat->log);
    if (why)
        return ndl_err(err, NDL_READ_ONLY,
                       "database '%s' cannot create or drop collections until it is reopened: %s",
                       db->path, why);
    return NDL_OK;
}

static ndl_status append_commit(catalog *cat, uint32_t type, const rec_buf *b, uint64_t *lsn,
                                ndl_error *err)
{
    ndl_status rc = wal_append(cat->log, type, b->b, b->len, lsn, err);
    return rc == NDL_OK ? wal_commit(cat->log, *lsn, err) : rc;
}

/* Append and wait until durable, then seal it (a SEAL record, committed
 * after it): an acknowledged record is never the log's last, so a flipped
 * bit in it is damage followed by a valid record, refused at open, not a
 * torn tail that replay would silently cut (which could undo a create by
 * letting an older DROP of the name win). A torn or flipped SEAL is cut and
 * loses nothing. *lsn stays 0 when nothing was appended; non-zero with an
 * error, the record's fate is unknown (a commit failed and the log is
 * read-only now). */
static ndl_status log_record(catalog *cat, uint32_t type, const rec_buf *b, uint64_t *lsn,
                             ndl_error *err)
{
    ndl_status rc = append_commit(cat, type, b, lsn, err);
    if (rc != NDL_OK)
        return rc;
    rec_buf seal = {.len = 0};
    put_u32(&seal, CATALOG_RECORD_VERSION);
    uint64_t seal_lsn;
    return append_commit(cat, CATALOG_SEAL, &seal, &seal_lsn, err);
}

/* log_record for a create or drop, once the catalog takes them */
static ndl_status log_op(const ndl_db *db, uint32_t type, const rec_buf *b, uint64_t *lsn,
                         ndl_error *err)
{
    *lsn = 0;
    ndl_status rc = check_writable(db, err);
    return rc == NDL_OK ? log_record(db->catalog, type, b, lsn, err) : rc;
}

static ndl_status log_cancel(catalog *cat, uint64_t lsn, ndl_error *err)
{
    rec_buf b = {.len = 0};
    put_u32(&b, CATALOG_RECORD_VERSION);
    put_u64(&b, lsn);
    uint64_t cancel_lsn;
    return log_record(cat, CATALOG_CANCEL, &b, &cancel_lsn, err);
}

/* The directory of `name` and the log may disagree until the next open
 * (which settles it): refuse to open it and to create or drop anything. */
static void set_doubt(catalog *cat, const char *name, const char *what, const char *why)
{
    snprintf(cat->doubt, sizeof cat->doubt, "%s", name);
    snprintf(cat->failure, sizeof cat->failure, "the %s of '%s' failed and could not be undone (%.140s)",
             what, name, why);
}

ndl_status catalog_create(ndl_db *db, const char *name, const ndl_collection_config *cfg,
                          ndl_error *err)
{
    catalog *cat = db->catalog;
    ndl_error local;
    err = err ? err : &local;
    rec_buf b;
    encode_create(&b, name, cfg);
    uint64_t lsn;
    /* a failed commit needs no undo: if the record is on disk after all,
     * the next open creates the collection, empty -- never half of one */
    ndl_status rc = log_op(db, CATALOG_CREATE, &b, &lsn, err);
    if (rc != NDL_OK)
        return rc;
    if ((rc = coll_create_files(db, name, cfg, err)) == NDL_OK)
        return NDL_OK;
    /* undo what was built, then cancel the record: the caller sees a failure */
    char *tmp = prefixed_path(db->path, CATALOG_NEW_PREFIX, name);
    char *dir = db_path_join(db->path, name);
    if (is_dir(tmp))
        remove_tree(tmp, NULL);
    if (is_dir(dir))
        remove_tree(dir, NULL);
    /* an uncancelled record (the cancel failed) only creates the collection
     * empty on the next open; a directory that could not be removed may be
     * written to and then dropped by replaying an older DROP: in doubt */
    ndl_error e;
    log_cancel(cat, lsn, &e);
    if (is_dir(dir))
        set_doubt(cat, name, "create", err->msg);
    ndl_free(tmp);
    ndl_free(dir);
    return rc;
}

ndl_status catalog_drop(ndl_db *db, const char *name, ndl_error *err)
{
    catalog *cat = db->catalog;
    ndl_error local;
    err = err ? err : &local;
    rec_buf b;
    put_head(&b, name);
    uint64_t lsn;
    ndl_status rc = log_op(db, CATALOG_DROP, &b, &lsn, err);
    if (rc != NDL_OK) {
        if (lsn) /* on disk or not: the next open decides, nothing may write to it meanwhile */
            set_doubt(cat, name, "drop", err->msg);
        return rc;
    }
    if ((rc = drop_dir(db->path, name, err)) != NDL_OK) { /* still in place: cancel */
        ndl_error e;
        if (log_cancel(cat, lsn, &e) != NDL_OK)
            set_doubt(cat, name, "drop", e.msg);
    }
    return rc;
}

ndl_status catalog_check_open(const catalog *cat, const char *name, ndl_error *err)
{
    if (cat->doubt[0] && strcmp(cat->doubt, name) == 0)
        return ndl_err(err, NDL_IO, "collection '%s' cannot be opened until the database is reopened: %s",
                       name, cat->failure);
    return NDL_OK;
}
