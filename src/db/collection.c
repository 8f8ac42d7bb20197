/*
 * collection.c -- a collection's life: config checks, creation, loading a
 * checkpoint (vectors mapped, ids and graph read, nothing rebuilt), writing a
 * checkpoint (new generation files, then MANIFEST by atomic rename, then the
 * old generation removed), and the read-only accessors.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db_internal.h"
#include "storage/sfile.h"
#include "util/alloc.h"
#include "util/le.h"

#define MANI_KIND SFILE_KIND('M', 'A', 'N', 'I')
#define IDS_KIND SFILE_KIND('I', 'D', 'S', ' ')

/* ids file record state */
enum { SLOT_DEAD = 0, SLOT_U64 = 1, SLOT_STR = 2 };

ndl_status coll_check_config(const ndl_collection_config *cfg, ndl_error *err)
{
    if (cfg->dimension < NDL_DIM_MIN || cfg->dimension > NDL_DIM_MAX)
        return ndl_err(err, NDL_INVALID, "dimension %u is out of range %d..%d", cfg->dimension,
                       NDL_DIM_MIN, NDL_DIM_MAX);
    if ((unsigned)cfg->metric > NDL_METRIC_HAMMING)
        return ndl_err(err, NDL_INVALID, "unknown metric %d", (int)cfg->metric);
    if ((unsigned)cfg->index > NDL_INDEX_HNSW)
        return ndl_err(err, NDL_INVALID, "unknown index type %d", (int)cfg->index);
    if (cfg->index == NDL_INDEX_HNSW) {
        if (cfg->hnsw_m < NDL_HNSW_M_MIN || cfg->hnsw_m > NDL_HNSW_M_MAX)
            return ndl_err(err, NDL_INVALID, "m %u is out of range %d..%d", cfg->hnsw_m,
                           NDL_HNSW_M_MIN, NDL_HNSW_M_MAX);
        if (cfg->hnsw_ef_construction < NDL_HNSW_EF_CONSTRUCTION_MIN ||
            cfg->hnsw_ef_construction > NDL_HNSW_EF_CONSTRUCTION_MAX)
            return ndl_err(err, NDL_INVALID, "ef_construction %u is out of range %d..%d",
                           cfg->hnsw_ef_construction, NDL_HNSW_EF_CONSTRUCTION_MIN,
                           NDL_HNSW_EF_CONSTRUCTION_MAX);
    }
    return NDL_OK;
}

static char *gen_path(const char *dir, const char *base, uint64_t gen)
{
    size_t n = strlen(dir) + strlen(base) + 32;
    char *p = ndl_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s.%llu", dir, base, (unsigned long long)gen);
    return p;
}

/* ---------------------------------------------------------------- manifest
 * MANIFEST data (version 3), little-endian u32/u64 fields in this order:
 *   dimension, metric, index, hnsw_m, hnsw_ef_construction, seed (u64),
 *   generation (u64; 0 = no data files yet), slots (u32), live (u64),
 *   checkpoint LSN (u64; from version 2: the last log record the files cover),
 *   files (u32; from version 3: which optional files the generation has,
 *   MANI_HAS_PAYLOADS = payloads.<gen>; unknown bits are refused),
 *   fields (u32; from version 4: the indexed payload fields), then per
 *   field its type (u32), name length (u32) and name
 */
#define MANI_HAS_PAYLOADS 1u

typedef struct field_def {
    char name[FIELD_NAME_BUF];
    field_type type;
} field_def;

typedef struct manifest {
    ndl_collection_config cfg;
    uint64_t generation;
    uint32_t slots;
    uint64_t live;
    uint64_t lsn;
    uint32_t files;
    field_def *fields; /* read: ndl_malloc'd (free with ndl_free); write: borrowed */
    uint32_t nfields;
} manifest;

static ndl_status manifest_write(const char *dir, const manifest *m, ndl_error *err)
{
    char *path = db_path_join(dir, COLL_MANIFEST);
    if (!path)
        return ndl_err(err, NDL_NOMEM, "out of memory");
    sfile_writer *w;
    ndl_status rc = sfile_create(path, MANI_KIND, MANIFEST_VERSION, &w, err);
    ndl_free(path);
    if (rc != NDL_OK)
        return rc;
    const ndl_collection_config *c = &m->cfg;
    if ((rc = sfile_put_u32(w, c->dimension, err)) || (rc = sfile_put_u32(w, (uint32_t)c->metric, err)) ||
        (rc = sfile_put_u32(w, (uint32_t)c->index, err)) || (rc = sfile_put_u32(w, c->hnsw_m, err)) ||
        (rc = sfile_put_u32(w, c->hnsw_ef_construction, err)) || (rc = sfile_put_u64(w, c->seed, err)) ||
        (rc = sfile_put_u64(w, m->generation, err)) || (rc = sfile_put_u32(w, m->slots, err)) ||
        (rc = sfile_put_u64(w, m->live, err)) || (rc = sfile_put_u64(w, m->lsn, err)) ||
        (rc = sfile_put_u32(w, m->files, err)) || (rc = sfile_put_u32(w, m->nfields, err))) {
        sfile_abort(w);
        return rc;
    }
    for (uint32_t i = 0; i < m->nfields; i++) {
        size_t len = strlen(m->fields[i].name);
        if ((rc = sfile_put_u32(w, (uint32_t)m->fields[i].type, err)) ||
            (rc = sfile_put_u32(w, (uint32_t)len, err)) ||
            (rc = sfile_write(w, m->fields[i].name, len, err))) {
            sfile_abort(w);
            return rc;
        }
    }
    return sfile_commit(w, err);
}

static ndl_status manifest_read(const char *dir, manifest *m, ndl_error *err)
{
    char *path = db_path_join(dir, COLL_MANIFEST);
    if (!path)
        return ndl_err(err, NDL_NOMEM, "out of memory");
    sfile_map map;
    ndl_status rc = sfile_map_open(path, MANI_KIND, MANIFEST_VERSION, 1, &map, err);
    if (rc == NDL_OK) {
        sfile_cursor cur;
        sfile_cursor_init(&cur, &map);
        ndl_collection_config_init(&m->cfg);
        m->cfg.dimension = sfile_get_u32(&cur);
        m->cfg.metric = (ndl_metric)sfile_get_u32(&cur);
        m->cfg.index = (ndl_index_type)sfile_get_u32(&cur);
        m->cfg.hnsw_m = sfile_get_u32(&cur);
        m->cfg.hnsw_ef_construction = sfile_get_u32(&cur);
        m->cfg.seed = sfile_get_u64(&cur);
        m->generation = sfile_get_u64(&cur);
        m->slots = sfile_get_u32(&cur);
        m->live = sfile_get_u64(&cur);
        m->lsn = map.version >= 2 ? sfile_get_u64(&cur) : 0;
        m->files = map.version >= 3 ? sfile_get_u32(&cur) : 0;
        m->nfields = map.version >= 4 ? sfile_get_u32(&cur) : 0;
        m->fields = NULL;
        if (m->nfields > 4096 || cur.overrun) {
            cur.overrun = true;
            m->nfields = 0;
        } else if (m->nfields && !(m->fields = ndl_calloc(m->nfields, sizeof *m->fields))) {
            rc = ndl_err(err, NDL_NOMEM, "out of memory");
            m->nfields = 0;
        }
        for (uint32_t i = 0; i < m->nfields && !cur.overrun; i++) {
            uint32_t t = sfile_get_u32(&cur), len = sfile_get_u32(&cur);
            const char *name = len < FIELD_NAME_BUF ? sfile_get_bytes(&cur, len) : NULL;
            if (!name || t >= FIELD_TYPES) {
                cur.overrun = true; /* reported as too short or damaged below */
                break;
            }
            memcpy(m->fields[i].name, name, len);
            m->fields[i].name[len] = '\0';
            m->fields[i].type = (field_type)t;
        }
        ndl_error e2;
        if (rc != NDL_OK)
            ; /* out of memory, said */
        else if (cur.overrun)
            rc = ndl_err(err, NDL_CORRUPT, "'%s' is too short for a manifest, or its field list is damaged", path);
        else if (coll_check_config(&m->cfg, &e2) != NDL_OK)
            rc = ndl_err(err, NDL_CORRUPT, "'%s' holds a bad config: %s", path, e2.msg);
        else if (m->files & ~MANI_HAS_PAYLOADS)
            rc = ndl_err(err, NDL_CORRUPT, "'%s' names unknown files (0x%x)", path, m->files);
        else if (m->live > m->slots)
            rc = ndl_err(err, NDL_CORRUPT, "'%s': live count %llu exceeds slots %u", path,
                         (unsigned long long)m->live, m->slots);
        sfile_map_close(&map);
    } else if (rc == NDL_NOT_FOUND) {
        rc = ndl_err(err, NDL_NOT_FOUND, "collection directory '%s' has no manifest", dir);
    }
    ndl_free(path);
    return rc;
}

ndl_status coll_create_files(ndl_db *db, const char *name, const ndl_collection_config *cfg,
                             ndl_error *err)
{
    char *dir = db_path_join(db->path, name);
    char *tmp = NULL;
    ndl_status rc = NDL_OK;
    struct stat st;
    if (!dir) {
        rc = ndl_err(err, NDL_NOMEM, "out of memory");
        goto leave;
    }
    if (stat(dir, &st) == 0) {
        rc = ndl_err(err, NDL_EXISTS, "collection '%s' already exists", name);
        goto leave;
    }
    /* build in a temporary directory, publish by rename: all or nothing */
    size_t n = strlen(db->path) + strlen(name) + 16;
    tmp = ndl_malloc(n);
    snprintf(tmp, n, "%s/.new-%s", db->path, name);
    char *man = db_path_join(tmp, COLL_MANIFEST);
    if (man) { /* leftovers of a crashed create */
        unlink(man);
        ndl_free(man);
    }
    rmdir(tmp);
    if (mkdir(tmp, 0755) != 0) {
        rc = ndl_err(err, NDL_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto leave;
    }
    manifest m = {.cfg = *cfg, .generation = 0, .slots = 0, .live = 0};
    m.cfg.version = 1;
    if ((rc = manifest_write(tmp, &m, err)) != NDL_OK)
        goto leave;
    if (rename(tmp, dir) != 0) {
        rc = ndl_err(err, NDL_IO, "cannot create '%s': %s", dir, strerror(errno));
        goto leave;
    }
    rc = sfile_sync_dir(db->path, err);
leave:
    ndl_free(dir);
    ndl_free(tmp);
    return rc;
}

/* ---------------------------------------------------------------- ids file
 * IDS data (version 1): slots (u32), reserved (u32), then per slot a 16-byte
 * record {u64 value, u32 length, u32 state}: state 0 = dead (deleted or
 * replaced), 1 = u64 id in value, 2 = string id of `length` bytes at offset
 * `value` in the string area that follows the records.
 */
static ndl_status ids_write(ndl_collection *c, const char *path, uint32_t slots,
                            const bitset *dead, ndl_error *err)
{
    sfile_writer *w;
    ndl_status rc = sfile_create(path, IDS_KIND, IDS_VERSION, &w, err);
    if (rc != NDL_OK)
        return rc;
    if ((rc = sfile_put_u32(w, slots, err)) || (rc = sfile_put_u32(w, 0, err)))
        goto fail;
    uint64_t str_off = 0;
    for (uint32_t s = 0; s < slots; s++) {
        const slot_id *r = idmap_slot(&c->ids, s);
        uint32_t state = bitset_test(dead, s) ? SLOT_DEAD : r->str ? SLOT_STR : SLOT_U64;
        uint64_t value = state == SLOT_STR ? str_off : state == SLOT_U64 ? r->num : 0;
        uint32_t len = state == SLOT_STR ? (uint32_t)r->num : 0;
        str_off += len;
        if ((rc = sfile_put_u64(w, value, err)) || (rc = sfile_put_u32(w, len, err)) ||
            (rc = sfile_put_u32(w, state, err)))
            goto fail;
    }
    for (uint32_t s = 0; s < slots; s++) {
        const slot_id *r = idmap_slot(&c->ids, s);
        if (r->str && !bitset_test(dead, s) &&
            (rc = sfile_write(w, r->str, (size_t)r->num, err)) != NDL_OK)
            goto fail;
    }
    return sfile_commit(w, err);
fail:
    sfile_abort(w);
    return rc;
}

static ndl_status ids_load(ndl_collection *c, const char *path, uint32_t slots, ndl_error *err)
{
    sfile_map map;
    ndl_status rc = sfile_map_open(path, IDS_KIND, IDS_VERSION, 1, &map, err);
    if (rc != NDL_OK)
        return rc;
    sfile_cursor cur;
    sfile_cursor_init(&cur, &map);
    uint32_t n = sfile_get_u32(&cur);
    sfile_get_u32(&cur);
    const uint8_t *recs = sfile_get_bytes(&cur, (size_t)n * 16);
    if (cur.overrun || n != slots) {
        rc = ndl_err(err, NDL_CORRUPT, "'%s' holds %u slots; the manifest says %u", path, n, slots);
        goto leave;
    }
    const char *strs = (const char *)cur.p;
    size_t str_len = (size_t)(cur.end - cur.p);
    uint64_t live = 0;
    for (uint32_t s = 0; s < n && rc == NDL_OK; s++) {
        const uint8_t *r = recs + (size_t)s * 16;
        uint64_t value;
        uint32_t len, state;
        value = le_get64(r);
        len = le_get32(r + 8);
        state = le_get32(r + 12);
        ndl_id id = {NULL, 0, 0};
        if (state == SLOT_U64) {
            id.num = value;
        } else if (state == SLOT_STR) {
            if (len == 0 || len > NDL_ID_STR_MAX || value > str_len || len > str_len - value) {
                rc = ndl_err(err, NDL_CORRUPT, "'%s': slot %u has a bad string id", path, s);
                break;
            }
            id.str = strs + value;
            id.len = len;
        } else if (state != SLOT_DEAD) {
            rc = ndl_err(err, NDL_CORRUPT, "'%s': slot %u has bad state %u", path, s, state);
            break;
        }
        if ((rc = idmap_set_slot(&c->ids, s, id, err)) != NDL_OK)
            break;
        if (state == SLOT_DEAD) {
            bitset_set(&c->hidden, s);
            continue;
        }
        uint32_t old;
        if ((rc = idmap_put(&c->ids, id, s, &old, err)) != NDL_OK)
            break;
        if (old != IDMAP_EMPTY)
            rc = ndl_err(err, NDL_CORRUPT, "'%s': slots %u and %u hold the same id", path, old, s);
        live++;
    }
    atomic_store(&c->live, live);
leave:
    sfile_map_close(&map);
    return rc;
}

/* ---------------------------------------------------------------- life cycle */

/* An empty HNSW index for c's config over its vectors. */
static ndl_status ann_create(ndl_collection *c, ndl_error *err)
{
    hnsw_params hp = {c->cfg.hnsw_m, c->cfg.hnsw_ef_construction, c->cfg.seed};
    return hnsw_index_create(&c->space, &c->vectors, &hp, &c->ann, err);
}

static ndl_status coll_alloc(ndl_db *db, const char *name, const ndl_collection_config *cfg,
                             ndl_collection **out, ndl_error *err)
{
    ndl_collection *c = ndl_calloc(1, sizeof *c);
    if (!c)
        return ndl_err(err, NDL_NOMEM, "out of memory");
    c->db = db;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->cfg = *cfg;
    c->dir = db_path_join(db->path, name);
    pthread_mutex_init(&c->write_lock, NULL);
    pthread_mutex_init(&c->checkpoint_lock, NULL);
    tuner_init(&c->tuner);
    pthread_rwlock_init(&c->map_lock, NULL);
    /* writer-preferring, so a compaction is not starved by a stream of
     * searches; readers never take it twice, so this cannot deadlock */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&c->swap_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    index_space_init(&c->space, cfg->metric, cfg->dimension);
    atomic_init(&c->verifier_stop, false);
    atomic_init(&c->checkpoint_asked, false);
    vectors_seal_init(&c->seal);
    ndl_status rc = NDL_OK;
    if (!c->dir)
        rc = ndl_err(err, NDL_NOMEM, "out of memory");
    if (rc == NDL_OK)
        rc = arena_init(&c->vectors, c->space.vec_bytes, err);
    if (rc == NDL_OK)
        rc = idmap_init(&c->ids, err);
    if (rc == NDL_OK)
        rc = payload_store_init(&c->payloads, err);
    if (rc == NDL_OK)
        rc = bitset_init(&c->hidden, err);
    if (rc == NDL_OK)
        rc = flat_index_create(&c->space, &c->vectors, &c->flat, err);
    if (rc == NDL_OK && cfg->index == NDL_INDEX_HNSW)
        rc = ann_create(c, err);
    if (rc != NDL_OK) {
        coll_free(c);
        return rc;
    }
    *out = c;
    return NDL_OK;
}

void coll_free(ndl_collection *c)
{
    if (!c)
        return;
    if (c->verifier_running) {
        atomic_store(&c->verifier_stop, true);
        pthread_join(c->verifier, NULL);
        c->verifier_running = false;
    }
    if (c->log)
        wal_close(c->log, NULL);
    if (c->ann)
        c->ann->m->destroy(c->ann);
    if (c->flat)
        c->flat->m->destroy(c->flat);
    coll_fields_free(c);
    bitset_destroy(&c->hidden);
    payload_store_destroy(&c->payloads);
    idmap_destroy(&c->ids);
    arena_destroy(&c->vectors);
    vectors_seal_destroy(&c->seal);
    tuner_destroy(&c->tuner);
    pthread_mutex_destroy(&c->write_lock);
    pthread_mutex_destroy(&c->checkpoint_lock);
    pthread_rwlock_destroy(&c->map_lock);
    pthread_rwlock_destroy(&c->swap_lock);
    ndl_free(c->dir);
    ndl_free(c);
}

void coll_note_salvage(ndl_collection *c, const char *fmt, ...)
{
    size_t used = strlen(c->salvaged);
    if (used && used + 3 < sizeof c->salvaged) {
        memcpy(c->salvaged + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->salvaged + used, sizeof c->salvaged - used, fmt, ap);
    va_end(ap);
}

/* A file that is damaged, missing or of an unknown version: salvage
 * rebuilds or drops what it held. */
static bool salvageable(const ndl_db *db, ndl_status rc)
{
    return db->salvage && (rc == NDL_CORRUPT || rc == NDL_UNSUPPORTED || rc == NDL_IO);
}

/* Salvage of a graph file that does not load: build the graph again from
 * the vectors as the writes did (every slot inserted, the dead ones removed
 * again), on all cores. */
static ndl_status rebuild_graph(ndl_collection *c, const ndl_error *why, ndl_error *err)
{
    coll_note_salvage(c, "graph rebuilt from the vectors (%s)", why->msg);
    c->ann->m->destroy(c->ann);
    c->ann = NULL;
    ndl_status rc = ann_create(c, err);
    uint32_t slots = arena_count(&c->vectors);
    uint32_t *all = rc == NDL_OK ? ndl_malloc((slots ? slots : 1) * sizeof *all) : NULL;
    if (rc == NDL_OK && !all)
        rc = ndl_err(err, NDL_NOMEM, "out of memory rebuilding the graph of '%s'", c->name);
    if (rc == NDL_OK) {
        for (uint32_t s = 0; s < slots; s++)
            all[s] = s;
        ndl_write_options o;
        ndl_write_options_init(&o);
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = cpus > 0 ? (uint32_t)cpus : 1;
        rc = coll_index_slots(c->ann, all, slots, &o, err);
    }
    for (uint32_t s = 0; rc == NDL_OK && s < slots; s++)
        if (bitset_test(&c->hidden, s))
            c->ann->m->remove(c->ann, s);
    ndl_free(all);
    return rc;
}

/* Salvage of a payload file that does not load: the points keep their
 * vectors and ids, without payloads. */
static ndl_status drop_payloads(ndl_collection *c, uint32_t slots, const ndl_error *why,
                                ndl_error *err)
{
    coll_note_salvage(c, "payloads lost (%s)", why->msg);
    payload_store_destroy(&c->payloads);
    ndl_status rc = payload_store_init(&c->payloads, err);
    return rc == NDL_OK ? payload_store_extend(&c->payloads, slots, err) : rc;
}

ndl_status coll_load(ndl_db *db, const char *name, ndl_collection **out, ndl_error *err)
{
    *out = NULL;
    char *dir = db_path_join(db->path, name);
    if (!dir)
        return ndl_err(err, NDL_NOMEM, "out of memory");
    struct stat st;
    if (stat(dir, &st) != 0) {
        ndl_free(dir);
        return ndl_err(err, NDL_NOT_FOUND, "collection '%s' does not exist", name);
    }
    manifest m;
    ndl_status rc = manifest_read(dir, &m, err);
    ndl_collection *c = NULL;
    if (rc == NDL_OK)
        rc = coll_alloc(db, name, &m.cfg, &c, err);
    ndl_free(dir);
    if (rc != NDL_OK)
        return rc;
    c->generation = m.generation;
    c->file_slots = m.slots;
    c->checkpoint_lsn = m.lsn;
    for (uint32_t i = 0; rc == NDL_OK && i < m.nfields; i++) { /* defined now, built after replay */
        ndl_error e;
        rc = coll_apply_field(c, m.fields[i].name, m.fields[i].type, &e);
        if (rc != NDL_OK) /* a bad name or a clash was never written */
            rc = ndl_err(err, rc == NDL_NOMEM ? rc : NDL_CORRUPT, "manifest of '%s': %s", name,
                         e.msg);
    }
    ndl_free(m.fields);
    if (m.generation > 0) {
        char *vp = gen_path(c->dir, "vectors", m.generation);
        char *ip = gen_path(c->dir, "ids", m.generation);
        char *gp = gen_path(c->dir, "graph", m.generation);
        char *pp = gen_path(c->dir, "payloads", m.generation);
        if (!vp || !ip || !gp || !pp)
            rc = ndl_err(err, NDL_NOMEM, "out of memory");
        if (rc == NDL_OK)
            rc = vectors_file_load(&c->vectors, vp, m.slots, &c->seal, err);
        if (rc == NDL_OK && db->verify_on_open)
            rc = vectors_seal_verify(&c->seal, SIZE_MAX, err);
        if (rc == NDL_OK)
            rc = ids_load(c, ip, m.slots, err);
        if (rc == NDL_OK)
            rc = (m.files & MANI_HAS_PAYLOADS)
                     ? payload_store_load(&c->payloads, pp, m.slots, err)
                     : payload_store_extend(&c->payloads, m.slots, err);
        if (salvageable(db, rc))
            rc = drop_payloads(c, m.slots, err, err);
        if (rc == NDL_OK && c->ann) {
            rc = c->ann->m->load(c->ann, gp, err);
            if (salvageable(db, rc))
                rc = rebuild_graph(c, err, err);
        }
        if (rc == NDL_OK && atomic_load(&c->live) != m.live)
            rc = ndl_err(err, NDL_CORRUPT, "'%s' lists %llu live points; the manifest says %llu",
                         ip, (unsigned long long)atomic_load(&c->live),
                         (unsigned long long)m.live);
        ndl_free(vp);
        ndl_free(ip);
        ndl_free(gp);
        ndl_free(pp);
    }
    if (rc == NDL_OK)
        rc = coll_log_open(c, err);
    if (rc == NDL_OK)
        rc = coll_fields_build(c, err);
    if (rc != NDL_OK) {
        coll_free(c);
        return rc;
    }
    if (c->ann)
        tuner_load(c);
    coll_verifier_start(c);
    *out = c;
    return NDL_OK;
}

/* Every file a checkpoint generation may have. */
static const char *const gen_bases[] = {"vectors", "ids", "graph", "payloads"};

static void remove_generation(const char *dir, uint64_t gen)
{
    for (size_t i = 0; i < NDL_ARRAY_LEN(gen_bases); i++) {
        char *p = gen_path(dir, gen_bases[i], gen);
        if (p)
            unlink(p);
        ndl_free(p);
    }
}

/* What a checkpoint writes: the collection as of one log record. Taking it
 * under write_lock costs copies of the dead set, the payload records and
 * the graph's links (memcpy speed); the files are then written without
 * write_lock. Vectors and ids of slots below `slots` never change, so they
 * are read in place. */
typedef struct snapshot {
    uint64_t gen;
    uint64_t lsn;               /* the manifest's checkpoint LSN */
    uint64_t live;
    uint32_t slots;
    bitset dead;                /* hidden slots as of lsn */
    payload_snapshot payloads;
    vindex *graph;              /* frozen clone of c->ann, or NULL */
    field_def *fields;          /* the indexed fields as of lsn */
    uint32_t nfields;
} snapshot;

static void snapshot_free(ndl_collection *c, snapshot *s)
{
    payload_store_release(&c->payloads, &s->payloads); /* write_lock held */
    if (s->graph)
        s->graph->m->destroy(s->graph);
    bitset_destroy(&s->dead);
    ndl_free(s->fields);
    s->fields = NULL;
}

static bool checkpoint_due(const ndl_collection *c)
{
    if (!c->dirty && c->checkpoint_lsn == c->applied_lsn)
        return false;
    /* after a failure keep the last good checkpoint; the log decides on reopen */
    return !c->failure[0] && !(c->log && wal_failure(c->log));
}

/* write_lock held. */
static ndl_status snapshot_take(ndl_collection *c, snapshot *s, ndl_error *err)
{
    memset(s, 0, sizeof *s);
    s->gen = c->generation + 1;
    s->lsn = c->applied_lsn;
    s->live = atomic_load(&c->live);
    s->slots = arena_count(&c->vectors);
    ndl_status rc = bitset_init(&s->dead, err);
    if (rc != NDL_OK)
        return rc;
    bitset_copy_prefix(&s->dead, &c->hidden, s->slots);
    /* every record so far is in the snapshot: a new segment now, so that
     * publishing can delete all the covered ones, even while writes go on
     * (best effort: else they go at a later checkpoint) */
    if (c->log)
        wal_roll_if_covered(c->log, s->lsn + 1, NULL);
    if (c->nfields && !(s->fields = ndl_calloc(c->nfields, sizeof *s->fields))) {
        bitset_destroy(&s->dead);
        return ndl_err(err, NDL_NOMEM, "out of memory");
    }
    s->nfields = (uint32_t)c->nfields;
    for (size_t i = 0; i < c->nfields; i++) {
        snprintf(s->fields[i].name, sizeof s->fields[i].name, "%s", field_index_name(c->fields[i]));
        s->fields[i].type = field_index_type(c->fields[i]);
    }
    rc = payload_store_snapshot(&c->payloads, s->slots, &s->payloads, err);
    if (rc == NDL_OK && c->ann && c->ann->m->clone)
        rc = c->ann->m->clone(c->ann, &s->graph, err);
    if (rc != NDL_OK)
        snapshot_free(c, s);
    return rc;
}

/* The files of generation s->gen, then the manifest naming them. */
static ndl_status snapshot_write(ndl_collection *c, const snapshot *s, ndl_error *err)
{
    char *vp = gen_path(c->dir, "vectors", s->gen);
    char *ip = gen_path(c->dir, "ids", s->gen);
    char *gp = gen_path(c->dir, "graph", s->gen);
    char *pp = gen_path(c->dir, "payloads", s->gen);
    ndl_status rc = (!vp || !ip || !gp || !pp) ? ndl_err(err, NDL_NOMEM, "out of memory") : NDL_OK;
    if (rc == NDL_OK)
        rc = vectors_file_write(&c->vectors, s->slots, &c->seal, vp, err);
    if (rc == NDL_OK)
        rc = ids_write(c, ip, s->slots, &s->dead, err);
    if (rc == NDL_OK)
        rc = payload_snapshot_write(&s->payloads, pp, &s->dead, err);
    if (rc == NDL_OK && s->graph)
        rc = s->graph->m->save(s->graph, gp, err);
    if (rc == NDL_OK) {
        manifest m = {.cfg = c->cfg, .generation = s->gen, .slots = s->slots, .live = s->live,
                      .lsn = s->lsn, .files = MANI_HAS_PAYLOADS, .fields = s->fields,
                      .nfields = s->nfields};
        rc = manifest_write(c->dir, &m, err);
    }
    ndl_free(vp);
    ndl_free(ip);
    ndl_free(gp);
    ndl_free(pp);
    return rc;
}

/* Checkpoints are serialised by checkpoint_lock (which also keeps
 * compaction, the one thing that moves slots, out); writers and readers go
 * on while the files are written. Publishing is the manifest's atomic
 * rename; only then do the old files and the covered log segments go. */
ndl_status coll_checkpoint(ndl_collection *c, ndl_error *err)
{
    /* damaged vectors are not saved again: the files and the log stay as
     * they are, for check and salvage */
    ndl_status rc = coll_check_intact(c, err);
    if (rc != NDL_OK)
        return rc;
    pthread_mutex_lock(&c->checkpoint_lock);
    pthread_mutex_lock(&c->write_lock);
    bool compact = checkpoint_due(c) && coll_compaction_due(c);
    pthread_mutex_unlock(&c->write_lock);
    if (compact)
        coll_compact(c, NULL); /* on failure: checkpoint uncompacted, retry next time */
    pthread_mutex_lock(&c->write_lock);
    bool due = checkpoint_due(c);
    snapshot s;
    rc = due ? snapshot_take(c, &s, err) : NDL_OK;
    pthread_mutex_unlock(&c->write_lock);
    if (due && rc == NDL_OK) {
        rc = snapshot_write(c, &s, err);
        pthread_mutex_lock(&c->write_lock);
        snapshot_free(c, &s);
        uint64_t old = c->generation;
        if (rc == NDL_OK) {
            __atomic_store_n(&c->generation, s.gen, __ATOMIC_RELEASE); /* info reads it unlocked */
            c->file_slots = s.slots;
            c->checkpoint_lsn = s.lsn;
            c->dirty = c->applied_lsn != s.lsn;
        }
        pthread_mutex_unlock(&c->write_lock);
        remove_generation(c->dir, rc == NDL_OK ? old : s.gen);
        if (rc == NDL_OK && c->log) { /* the files cover the log up to s.lsn */
            wal_truncate_before(c->log, s.lsn + 1, NULL);
        }
    }
    pthread_mutex_unlock(&c->checkpoint_lock);
    return rc;
}

NDL_API ndl_status ndl_collection_flush(ndl_collection *c, ndl_error *err)
{
    if (c->db->read_only)
        return NDL_OK;
    return coll_checkpoint(c, err);
}

/* ---------------------------------------------------------------- accessors */

NDL_API uint64_t ndl_collection_count(ndl_collection *c) { return atomic_load(&c->live); }

static uint64_t dir_bytes(const char *dir, uint64_t gen)
{
    uint64_t total = 0;
    struct stat st;
    char *man = db_path_join(dir, COLL_MANIFEST);
    if (man && stat(man, &st) == 0)
        total += (uint64_t)st.st_size;
    ndl_free(man);
    for (size_t i = 0; gen && i < NDL_ARRAY_LEN(gen_bases); i++) {
        char *p = gen_path(dir, gen_bases[i], gen);
        if (p && stat(p, &st) == 0)
            total += (uint64_t)st.st_size;
        ndl_free(p);
    }
    return total;
}

NDL_API ndl_status ndl_collection_info_get(ndl_collection *c, ndl_collection_info *out,
                                           ndl_error *err)
{
    (void)err;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", c->name);
    out->config = c->cfg;
    pthread_rwlock_rdlock(&c->swap_lock);
    out->count = atomic_load(&c->live);
    uint32_t slots = arena_count(&c->vectors);
    out->deleted = slots > out->count ? slots - out->count : 0;
    pthread_rwlock_rdlock(&c->map_lock);
    size_t mem = sizeof *c + arena_memory_bytes(&c->vectors) + idmap_memory_bytes(&c->ids) +
                 payload_store_memory_bytes(&c->payloads) +
                 (slots + 7) / 8 + c->flat->m->memory_bytes(c->flat);
    for (size_t i = 0; i < c->nfields; i++)
        mem += field_index_memory_bytes(c->fields[i]);
    pthread_rwlock_unlock(&c->map_lock);
    if (c->ann)
        mem += c->ann->m->memory_bytes(c->ann);
    pthread_rwlock_unlock(&c->swap_lock);
    out->memory_bytes = mem;
    /* no write_lock: info must not wait for a write (an upsert holds it
     * while it indexes); a checkpoint publishing meanwhile can make the
     * disk figure miss the files it just replaced, nothing worse */
    uint64_t gen = __atomic_load_n(&c->generation, __ATOMIC_ACQUIRE);
    out->disk_bytes = dir_bytes(c->dir, gen) + (c->log ? wal_bytes(c->log) : 0);
    out->dropped_log_bytes = c->recovered.dropped_bytes;
    snprintf(out->salvaged, sizeof out->salvaged, "%s", c->salvaged);
    tuner_info(c, out);
    if (atomic_load_explicit(&c->seal.state, memory_order_acquire) == SEAL_DAMAGED)
        snprintf(out->damaged, sizeof out->damaged, "%s", c->seal.damage);
    if (c->recovered.dropped_bytes)
        snprintf(out->dropped_log_at, sizeof out->dropped_log_at, "%s at byte %llu",
                 c->recovered.dropped_file, (unsigned long long)c->recovered.dropped_offset);
    return NDL_OK;
}

NDL_API ndl_status ndl_collection_slot_id(ndl_collection *c, uint32_t slot, ndl_id *out)
{
    if (slot >= arena_count(&c->ids.slots) || bitset_test(&c->hidden, slot))
        return NDL_NOT_FOUND;
    *out = idmap_slot_to_id(idmap_slot(&c->ids, slot));
    return NDL_OK;
}
