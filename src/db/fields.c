/*
 * fields.c -- a collection's payload indexes (payload/field_index.h): the
 * fields declared, their type checks on writes, keeping them in step with
 * upserts and payload changes, and (re)building them from the payloads.
 *
 * The indexes live in memory only and are built from the payloads when a
 * collection opens (after its log is replayed) and after a compaction
 * renumbers slots; what is durable is the list of fields (the manifest,
 * and a LOG_FIELD record until the next checkpoint). Building reads every
 * live payload once: docs/BENCHMARKS.md has its cost.
 *
 * Locks: the list and the indexes change under write_lock and map_lock
 * (exclusive); readers (filters) hold map_lock shared.
 */
#include <string.h>

#include "db/db_internal.h"
#include "db/log_records.h"
#include "payload/json.h"
#include "payload/json_load.h"
#include "util/alloc.h"

NDL_API const char *ndl_field_type_name(ndl_field_type t) { return field_type_name((field_type)t); }

NDL_API ndl_status ndl_field_name_check(const char *name, ndl_error *err)
{
    if (!name)
        return ndl_err(err, NDL_INVALID, "a field name is required");
    return field_name_check(name, err);
}

NDL_API int ndl_field_type_from_name(const char *name)
{
    field_type t;
    return name && field_type_parse(name, &t) ? (int)t : -1;
}

static ssize_t find(const ndl_collection *c, const char *name)
{
    for (size_t i = 0; i < c->nfields; i++)
        if (strcmp(field_index_name(c->fields[i]), name) == 0)
            return (ssize_t)i;
    return -1;
}

/* The payload text as a jansson object (NULL for none); false if it does
 * not parse (stored payloads always do: they were checked on the way in). */
static bool parse(const char *text, size_t len, json_t **out)
{
    *out = NULL;
    if (!text || !len)
        return true;
    payload_json_init();
    *out = json_loadb(text, len, JSON_ALLOW_NUL, NULL);
    payload_json_alloc_failed();
    return *out != NULL;
}

ndl_status coll_fields_check_parsed(ndl_collection *c, const json_t *p, ndl_error *err)
{
    ndl_status rc = NDL_OK;
    for (size_t i = 0; p && rc == NDL_OK && i < c->nfields; i++)
        rc = field_index_check(c->fields[i], p, err);
    return rc;
}

ndl_status coll_fields_check(ndl_collection *c, const char *text, size_t len, ndl_error *err)
{
    if (!c->nfields || !text)
        return NDL_OK;
    json_t *p;
    if (!parse(text, len, &p))
        return ndl_err(err, NDL_NOMEM, "out of memory reading a payload");
    ndl_status rc = coll_fields_check_parsed(c, p, err);
    json_decref(p);
    return rc;
}

static bool indexing(const ndl_collection *c) { return c->fields_built && c->nfields; }

ndl_status coll_fields_parse(ndl_collection *c, const char *text, size_t len, json_t **out,
                             ndl_error *err)
{
    *out = NULL;
    if (indexing(c) && !parse(text, text ? len : 0, out))
        return ndl_err(err, NDL_NOMEM, "out of memory reading a payload");
    return NDL_OK;
}

ndl_status coll_fields_add_parsed(ndl_collection *c, uint32_t slot, const json_t *p,
                                  ndl_error *err)
{
    ndl_status rc = NDL_OK;
    for (size_t i = 0; indexing(c) && rc == NDL_OK && i < c->nfields; i++)
        rc = field_index_add(c->fields[i], slot, p, err);
    return rc;
}

void coll_fields_remove_parsed(ndl_collection *c, uint32_t slot, const json_t *p)
{
    for (size_t i = 0; indexing(c) && i < c->nfields; i++)
        field_index_remove(c->fields[i], slot, p);
}

/* Fresh indexes like fields[0..n) (their names and types), filled from
 * every live slot; on NDL_INVALID a stored payload does not fit (named). */
static ndl_status build(ndl_collection *c, field_index *const *like, size_t n, field_index ***out,
                        ndl_error *err)
{
    *out = NULL;
    field_index **f = ndl_calloc(n ? n : 1, sizeof *f);
    if (!f)
        return ndl_err(err, NDL_NOMEM, "out of memory for payload indexes");
    ndl_status rc = NDL_OK;
    for (size_t i = 0; rc == NDL_OK && i < n; i++)
        rc = field_index_create(field_index_name(like[i]), field_index_type(like[i]), &f[i], err);
    uint32_t slots = arena_count(&c->vectors);
    for (uint32_t s = 0; rc == NDL_OK && s < slots; s++) {
        if (bitset_test(&c->hidden, s))
            continue;
        const payload_ref *r = payload_store_ref(&c->payloads, s);
        json_t *p;
        if (!parse(r->text, r->text ? r->len : 0, &p)) {
            rc = ndl_err(err, NDL_NOMEM, "out of memory reading a payload");
            break;
        }
        for (size_t i = 0; rc == NDL_OK && i < n; i++) {
            ndl_error e;
            rc = field_index_check(f[i], p, &e);
            if (rc == NDL_INVALID) {
                ndl_id id = idmap_slot_to_id(idmap_slot(&c->ids, s));
                if (id.str)
                    ndl_err(err, rc, "stored point id \"%.*s\": %s", (int)id.len, id.str, e.msg);
                else
                    ndl_err(err, rc, "stored point id %llu: %s", (unsigned long long)id.num, e.msg);
            } else if (rc == NDL_OK) {
                rc = field_index_add(f[i], s, p, err);
            } else {
                *err = e;
            }
        }
        json_decref(p);
    }
    if (rc != NDL_OK) {
        for (size_t i = 0; i < n; i++)
            field_index_free(f[i]);
        ndl_free(f);
        return rc;
    }
    *out = f;
    return NDL_OK;
}

void coll_fields_list_free(field_index **f, size_t n)
{
    for (size_t i = 0; f && i < n; i++)
        field_index_free(f[i]);
    ndl_free(f);
}

ndl_status coll_fields_build(ndl_collection *c, ndl_error *err)
{
    field_index **f;
    ndl_status rc = build(c, c->fields, c->nfields, &f, err);
    if (rc != NDL_OK)
        return rc;
    pthread_rwlock_wrlock(&c->map_lock);
    field_index **old = c->fields;
    c->fields = f;
    c->fields_built = true;
    pthread_rwlock_unlock(&c->map_lock);
    coll_fields_list_free(old, c->nfields);
    return NDL_OK;
}

field_index **coll_fields_remapped(ndl_collection *c, const uint32_t *remap, uint32_t slots)
{
    if (!c->fields_built || !c->nfields)
        return NULL;
    field_index **f = ndl_calloc(c->nfields, sizeof *f);
    for (size_t i = 0; f && i < c->nfields; i++)
        if (field_index_remapped(c->fields[i], remap, slots, &f[i], NULL) != NDL_OK) {
            coll_fields_list_free(f, c->nfields);
            return NULL;
        }
    return f;
}

void coll_fields_free(ndl_collection *c)
{
    coll_fields_list_free(c->fields, c->nfields);
    c->fields = NULL;
    c->nfields = 0;
}

ndl_status coll_field_prepare(ndl_collection *c, const char *name, field_type t,
                              field_index **out, ndl_error *err)
{
    *out = NULL;
    ssize_t at = find(c, name);
    if (at >= 0) {
        if (field_index_type(c->fields[at]) == t)
            return NDL_OK;
        return ndl_err(err, NDL_EXISTS, "field '%s' is already indexed as %s", name,
                       field_type_name(field_index_type(c->fields[at])));
    }
    field_index *fi;
    ndl_status rc = field_index_create(name, t, &fi, err);
    if (rc != NDL_OK || !c->fields_built)
        return rc == NDL_OK ? (*out = fi, NDL_OK) : rc;
    field_index **one; /* filled before anyone sees it */
    rc = build(c, &fi, 1, &one, err);
    field_index_free(fi);
    if (rc != NDL_OK)
        return rc;
    *out = one[0];
    ndl_free(one);
    return NDL_OK;
}

ndl_status coll_field_install(ndl_collection *c, field_index *fi, ndl_error *err)
{
    field_index **grown = ndl_malloc((c->nfields + 1) * sizeof *grown);
    if (!grown)
        return ndl_err(err, NDL_NOMEM, "out of memory for field '%s'", field_index_name(fi));
    if (c->nfields)
        memcpy(grown, c->fields, c->nfields * sizeof *grown);
    grown[c->nfields] = fi;
    pthread_rwlock_wrlock(&c->map_lock);
    field_index **old = c->fields;
    c->fields = grown;
    c->nfields++;
    pthread_rwlock_unlock(&c->map_lock);
    ndl_free(old);
    c->dirty = true;
    return NDL_OK;
}

ndl_status coll_apply_field(ndl_collection *c, const char *name, field_type t, ndl_error *err)
{
    field_index *fi;
    ndl_status rc = coll_field_prepare(c, name, t, &fi, err);
    if (rc == NDL_OK && fi && (rc = coll_field_install(c, fi, err)) != NDL_OK)
        field_index_free(fi);
    return rc;
}

NDL_API ndl_status ndl_collection_add_field(ndl_collection *c, const char *name,
                                            ndl_field_type t, ndl_error *err)
{
    if (!name)
        return ndl_err(err, NDL_INVALID, "a field name is required");
    ndl_status rc = field_name_check(name, err);
    if (rc != NDL_OK)
        return rc;
    if ((unsigned)t >= FIELD_TYPES)
        return ndl_err(err, NDL_INVALID, "field '%s': unknown type %d", name, (int)t);
    return coll_field_logged(c, name, (field_type)t, err);
}

NDL_API size_t ndl_collection_field_count(ndl_collection *c)
{
    pthread_rwlock_rdlock(&c->map_lock);
    size_t n = c->nfields;
    pthread_rwlock_unlock(&c->map_lock);
    return n;
}

NDL_API ndl_status ndl_collection_field_get(ndl_collection *c, size_t i, char *name,
                                            ndl_field_type *t, ndl_error *err)
{
    ndl_status rc = NDL_OK;
    pthread_rwlock_rdlock(&c->map_lock);
    if (i >= c->nfields) {
        rc = ndl_err(err, NDL_NOT_FOUND, "collection '%s' has %zu indexed fields, not %zu", c->name,
                     c->nfields, i + 1);
    } else {
        snprintf(name, NDL_FIELD_NAME_MAX + 1, "%s", field_index_name(c->fields[i]));
        *t = (ndl_field_type)field_index_type(c->fields[i]);
    }
    pthread_rwlock_unlock(&c->map_lock);
    return rc;
}
