/*
 * db.c -- the database: a directory marked by a NEEDLE_DB file, locked by one
 * process at a time (flock on LOCK), with a registry of open collections so
 * each collection is loaded once and reference counted. Creates and drops
 * go through the catalog log (catalog.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/catalog.h"
#include "db/db_internal.h"
#include "storage/sfile.h"
#include "util/alloc.h"

#define DB_MARKER_KIND SFILE_KIND('N', 'D', 'D', 'B')
#define DB_MARKER_VERSION 1

char *db_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = ndl_malloc(la + lb + 2);
    if (p) {
        memcpy(p, a, la);
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

static bool dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return false;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = false;
            break;
        }
    closedir(d);
    return empty;
}

static ndl_status write_marker(const char *marker, ndl_error *err)
{
    sfile_writer *w;
    ndl_status rc = sfile_create(marker, DB_MARKER_KIND, DB_MARKER_VERSION, &w, err);
    if (rc != NDL_OK)
        return rc;
    static const char text[] = "needle database\n";
    rc = sfile_write(w, text, sizeof text - 1, err);
    if (rc != NDL_OK) {
        sfile_abort(w);
        return rc;
    }
    return sfile_commit(w, err);
}

static ndl_status check_or_make_marker(const char *path, const ndl_db_options *o, ndl_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT)
            return ndl_err(err, NDL_IO, "cannot access '%s': %s", path, strerror(errno));
        if (!o->create_if_missing || o->read_only)
            return ndl_err(err, NDL_NOT_FOUND, "database '%s' does not exist", path);
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return ndl_err(err, NDL_IO, "cannot create '%s': %s", path, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        return ndl_err(err, NDL_INVALID, "'%s' is not a directory", path);
    }
    char *marker = db_path_join(path, DB_MARKER_FILE);
    if (!marker)
        return ndl_err(err, NDL_NOMEM, "out of memory");
    ndl_status rc;
    sfile_map m;
    ndl_error e2;
    rc = sfile_map_open(marker, DB_MARKER_KIND, DB_MARKER_VERSION, 1, &m, &e2);
    if (rc == NDL_OK) {
        sfile_map_close(&m);
    } else if (rc == NDL_NOT_FOUND) {
        if (!dir_is_empty(path))
            rc = ndl_err(err, NDL_INVALID,
                         "'%s' is not a needle database (it is not empty and has no %s file)",
                         path, DB_MARKER_FILE);
        else if (o->read_only || !o->create_if_missing)
            rc = ndl_err(err, NDL_NOT_FOUND, "database '%s' does not exist", path);
        else
            rc = write_marker(marker, err);
    } else if (err) { /* NDL_CORRUPT (naming the marker), NDL_UNSUPPORTED, NDL_IO */
        *err = e2;
    }
    ndl_free(marker);
    return rc;
}

NDL_API ndl_status ndl_db_open(const char *path, const ndl_db_options *opts, ndl_db **out,
                               ndl_error *err)
{
    *out = NULL;
    ndl_db_options defaults;
    if (opts)
        defaults = *opts;
    else
        ndl_db_options_init(&defaults);
    if (defaults.salvage)
        defaults.read_only = 1; /* salvage never writes */
    opts = &defaults;
    if (!path || !*path)
        return ndl_err(err, NDL_INVALID, "database path is empty");
    /* the only layout so far; a later one will read the fields of older ones */
    if (opts->version != 1)
        return ndl_err(err, NDL_INVALID,
                       "ndl_db_options version %u is not one this build knows (1): fill it "
                       "with ndl_db_options_init()",
                       opts->version);
    if ((unsigned)opts->fsync > NDL_FSYNC_NONE)
        return ndl_err(err, NDL_INVALID, "unknown fsync mode %d", (int)opts->fsync);
    if (opts->max_payload_bytes < 2 || opts->max_payload_bytes > NDL_PAYLOAD_BYTES_MAX)
        return ndl_err(err, NDL_INVALID, "max_payload_bytes %u is out of range 2..%d",
                       opts->max_payload_bytes, NDL_PAYLOAD_BYTES_MAX);
    ndl_status rc = check_or_make_marker(path, opts, err);
    if (rc != NDL_OK)
        return rc;

    ndl_db *db = ndl_calloc(1, sizeof *db);
    if (!db || !(db->path = ndl_strndup(path, strlen(path)))) {
        ndl_free(db);
        return ndl_err(err, NDL_NOMEM, "out of memory");
    }
    db->salvage = opts->salvage != 0;
    db->verify_on_open = opts->verify_on_open != 0;
    db->read_only = opts->read_only != 0;
    db->fsync = opts->fsync;
    db->checkpoint_wal_bytes = opts->checkpoint_wal_bytes;
    db->max_payload_bytes = opts->max_payload_bytes;
    char *lock = db_path_join(path, DB_LOCK_FILE);
    db->lock_fd = lock ? open(lock, (db->read_only ? O_RDONLY : O_RDWR) | O_CREAT | O_CLOEXEC, 0644)
                       : -1;
    if (db->lock_fd < 0 && db->read_only && lock)
        db->lock_fd = open(lock, O_RDONLY | O_CLOEXEC);
    ndl_free(lock);
    if (db->lock_fd < 0) {
        rc = ndl_err(err, NDL_IO, "cannot open lock file in '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (flock(db->lock_fd, (db->read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        rc = ndl_err(err, NDL_BUSY, "database '%s' is in use by another process", path);
        goto fail;
    }
    if ((rc = catalog_open(db, &db->catalog, err)) != NDL_OK)
        goto fail;
    pthread_mutex_init(&db->lock, NULL);
    pthread_cond_init(&db->stop_cond, NULL);
    db->checkpoint_interval_ms = opts->checkpoint_interval_ms;
    db_checkpointer_start(db);
    *out = db;
    return NDL_OK;
fail:
    if (db->lock_fd >= 0)
        close(db->lock_fd);
    ndl_free(db->path);
    ndl_free(db);
    return rc;
}

NDL_API ndl_status ndl_db_close(ndl_db *db, ndl_error *err)
{
    if (!db)
        return NDL_OK;
    ndl_status first = NDL_OK;
    db_checkpointer_stop(db);
    while (db->open) {
        ndl_collection *c = db->open;
        db->open = c->next;
        ndl_status rc = db->read_only ? NDL_OK : coll_checkpoint(c, err);
        if (first == NDL_OK)
            first = rc;
        coll_free(c);
    }
    ndl_error e;
    ndl_status rc = catalog_close(db->catalog, &e);
    if (first == NDL_OK && rc != NDL_OK) {
        first = rc;
        if (err)
            *err = e;
    }
    pthread_mutex_destroy(&db->lock);
    pthread_cond_destroy(&db->stop_cond);
    close(db->lock_fd);
    ndl_free(db->path);
    ndl_free(db);
    return first;
}

NDL_API ndl_status ndl_db_info_get(ndl_db *db, ndl_db_info *out, ndl_error *err)
{
    (void)err;
    memset(out, 0, sizeof *out);
    const wal_recovery *r = catalog_recovered(db->catalog); /* fixed after open */
    out->dropped_catalog_bytes = r->dropped_bytes;
    if (r->dropped_bytes)
        snprintf(out->dropped_catalog_at, sizeof out->dropped_catalog_at, "%s at byte %llu",
                 r->dropped_file, (unsigned long long)r->dropped_offset);
    return NDL_OK;
}

static ndl_status check_name(const char *name, ndl_error *err)
{
    if (!ndl_name_valid(name))
        return ndl_err(err, NDL_INVALID,
                       "bad collection name '%.80s': use 1 to 64 of A-Z a-z 0-9 _ -",
                       name ? name : "");
    return NDL_OK;
}

static ndl_collection *registry_find(ndl_db *db, const char *name)
{
    for (ndl_collection *c = db->open; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* Does DATA/<name> exist (as anything, for create; as a directory, for drop)? */
static bool coll_dir_exists(const ndl_db *db, const char *name, bool need_dir)
{
    char *dir = db_path_join(db->path, name);
    struct stat st;
    bool found = dir && stat(dir, &st) == 0 && (!need_dir || S_ISDIR(st.st_mode));
    ndl_free(dir);
    return found;
}

NDL_API ndl_status ndl_collection_create(ndl_db *db, const char *name,
                                         const ndl_collection_config *cfg, ndl_collection **out,
                                         ndl_error *err)
{
    if (out)
        *out = NULL;
    ndl_status rc = check_name(name, err);
    if (rc != NDL_OK)
        return rc;
    if (!cfg)
        return ndl_err(err, NDL_INVALID, "collection config is missing");
    if ((rc = coll_check_config(cfg, err)) != NDL_OK)
        return rc;
    if (db->read_only)
        return ndl_err(err, NDL_READ_ONLY, "database '%s' is open read-only", db->path);
    pthread_mutex_lock(&db->lock);
    if (coll_dir_exists(db, name, false)) /* before logging: a refused create logs nothing */
        rc = ndl_err(err, NDL_EXISTS, "collection '%s' already exists", name);
    else
        rc = catalog_create(db, name, cfg, err);
    pthread_mutex_unlock(&db->lock);
    if (rc != NDL_OK || !out)
        return rc;
    return ndl_collection_open(db, name, out, err);
}

NDL_API ndl_status ndl_collection_open(ndl_db *db, const char *name, ndl_collection **out,
                                       ndl_error *err)
{
    *out = NULL;
    ndl_status rc = check_name(name, err);
    if (rc != NDL_OK)
        return rc;
    pthread_mutex_lock(&db->lock);
    ndl_collection *c = registry_find(db, name);
    if (c) {
        c->refs++;
    } else if ((rc = catalog_check_open(db->catalog, name, err)) == NDL_OK &&
               (rc = coll_load(db, name, &c, err)) == NDL_OK) {
        c->refs = 1;
        c->next = db->open;
        db->open = c;
    }
    pthread_mutex_unlock(&db->lock);
    if (rc == NDL_OK)
        *out = c;
    return rc;
}

NDL_API ndl_status ndl_collection_close(ndl_collection *c, ndl_error *err)
{
    if (!c)
        return NDL_OK;
    ndl_db *db = c->db;
    pthread_mutex_lock(&db->lock);
    if (--c->refs > 0) {
        pthread_mutex_unlock(&db->lock);
        return NDL_OK;
    }
    for (ndl_collection **p = &db->open; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    pthread_mutex_unlock(&db->lock);
    ndl_status rc = db->read_only ? NDL_OK : coll_checkpoint(c, err);
    coll_free(c);
    return rc;
}

NDL_API ndl_status ndl_collection_drop(ndl_db *db, const char *name, ndl_error *err)
{
    ndl_status rc = check_name(name, err);
    if (rc != NDL_OK)
        return rc;
    if (db->read_only)
        return ndl_err(err, NDL_READ_ONLY, "database '%s' is open read-only", db->path);
    pthread_mutex_lock(&db->lock);
    if (registry_find(db, name))
        rc = ndl_err(err, NDL_BUSY, "collection '%s' is open", name);
    else if (!coll_dir_exists(db, name, true))
        rc = ndl_err(err, NDL_NOT_FOUND, "collection '%s' does not exist", name);
    else
        rc = catalog_drop(db, name, err);
    pthread_mutex_unlock(&db->lock);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

NDL_API ndl_status ndl_collection_list(ndl_db *db, char ***names, size_t *count, ndl_error *err)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(db->path);
    if (!d)
        return ndl_err(err, NDL_IO, "cannot list '%s': %s", db->path, strerror(errno));
    size_t n = 0, cap = 16, bytes = 0;
    char **tmp = ndl_malloc(cap * sizeof *tmp);
    struct dirent *e;
    ndl_status rc = NDL_OK;
    while (tmp && (e = readdir(d))) {
        if (!ndl_name_valid(e->d_name))
            continue;
        char *dir = db_path_join(db->path, e->d_name);
        char *man = dir ? db_path_join(dir, COLL_MANIFEST) : NULL;
        struct stat st;
        bool is_coll = man && stat(man, &st) == 0;
        ndl_free(man);
        ndl_free(dir);
        if (!is_coll)
            continue;
        if (n == cap) {
            char **t2 = ndl_realloc(tmp, 2 * cap * sizeof *tmp);
            if (!t2)
                break;
            tmp = t2;
            cap *= 2;
        }
        tmp[n] = ndl_strndup(e->d_name, strlen(e->d_name));
        if (!tmp[n])
            break;
        bytes += strlen(tmp[n]) + 1;
        n++;
    }
    closedir(d);
    char **outv = tmp ? ndl_malloc((n + 1) * sizeof(char *) + bytes) : NULL;
    if (!outv) {
        rc = ndl_err(err, NDL_NOMEM, "out of memory listing collections");
    } else {
        qsort(tmp, n, sizeof *tmp, cmp_str);
        char *s = (char *)(outv + n + 1);
        for (size_t i = 0; i < n; i++) {
            size_t l = strlen(tmp[i]) + 1;
            memcpy(s, tmp[i], l);
            outv[i] = s;
            s += l;
        }
        outv[n] = NULL;
        *names = outv;
        *count = n;
    }
    for (size_t i = 0; tmp && i < n; i++)
        ndl_free(tmp[i]);
    ndl_free(tmp);
    return rc;
}
