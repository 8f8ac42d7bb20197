/*
 * db_internal.h -- the engine's private structures: a database (directory,
 * lock, registry of open collections) and a collection (config, vector arena,
 * id map, deleted set, indexes, locks). Shared by the files of src/db/.
 *
 * On-disk layout of a collection (details in docs/DESIGN.md):
 *   DATA/<name>/MANIFEST        sfile "MANI": config + generation + counts
 *   DATA/<name>/vectors.<gen>   sfile "VECS": slot-ordered vector records and
 *                               their chunk CRCs (vectors_file.h)
 *   DATA/<name>/ids.<gen>       sfile "IDS ": per-slot id or deleted mark
 *   DATA/<name>/graph.<gen>     sfile "HNSW": the HNSW graph (hnsw only)
 *   DATA/<name>/payloads.<gen>  sfile "PAYL": per-slot payload texts
 *   DATA/<name>/wal/            the write-ahead log (storage/wal.h): records
 *                               after the manifest's checkpoint LSN
 * A checkpoint writes generation gen+1 files (from a snapshot, while writes
 * go on), then publishes a new MANIFEST by atomic rename, then removes
 * generation gen files and the log segments the new one covers.
 */
#ifndef NDL_DB_INTERNAL_H
#define NDL_DB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "db/idmap.h"
#include "db/log_records.h"
#include "db/vectors_file.h"
#include "index/index.h"
#include "payload/field_index.h"
#include "payload/store.h"
#include "storage/arena.h"
#include "storage/wal.h"
#include "util/base.h"
#include "util/bitset.h"

#define DB_MARKER_FILE "NEEDLE_DB"
#define DB_LOCK_FILE "LOCK"
#define COLL_MANIFEST "MANIFEST"
#define MANIFEST_VERSION 4   /* 2 adds the checkpoint LSN, 3 the file set, 4 the indexed
                                fields; 1..3 still read */
#define IDS_VERSION 1

/* The default search ef, learned from the queries (ef_tuning.c). */
#define TUNE_TARGET_RECALL 0.95  /* recall@10 the default ef aims for */
#define TUNE_EF_MAX 1024         /* the most it raises the default to */
typedef struct ef_tuner {
    pthread_mutex_t lock;          /* guards all but ef */
    float *sample;                 /* cap queries of dimension floats */
    uint32_t cap, n;
    uint64_t offered;              /* default-ef queries seen since open */
    uint64_t rng;
    bool pending;                  /* the background thread is asked to tune */
    _Atomic uint32_t ef;           /* the default ef (NDL_HNSW_EF_DEFAULT until tuned) */
    float recall;                  /* the sample's recall@10 at ef */
    uint32_t queries;              /* sample size of the last tuning; 0: none yet */
    uint64_t live_at, offered_at;  /* live points and offered at the last tuning */
} ef_tuner;

struct ndl_collection {
    ndl_db *db;
    char name[NDL_NAME_MAX + 1];
    char *dir;                     /* DATA/<name> */
    ndl_collection_config cfg;
    int refs;                      /* guarded by db->lock */
    ndl_collection *next;          /* db registry list */

    index_space space;
    vec_arena vectors;             /* one record per slot */
    vectors_seal seal;             /* checksums of the vectors mapped at open,
                                      not yet all verified (vectors_file.h) */
    pthread_t verifier;            /* verifies them after open (verifier_running) */
    bool verifier_running;
    atomic_bool verifier_stop;
    idmap ids;                     /* guarded by map_lock (table); slots lock-free */
    payload_store payloads;        /* texts replaced under map_lock (write) */
    bitset hidden;                 /* slot not visible: deleted, replaced or not yet inserted */
    vindex *flat;                   /* exact search, always present */
    vindex *ann;                    /* HNSW, or NULL for flat collections */
    field_index **fields;          /* payload indexes (fields.c), in the order added;
                                      changed under write_lock + map_lock, read under map_lock */
    size_t nfields;
    bool fields_built;             /* filled from the payloads (not while opening or
                                      after a compaction's swap, until rebuilt) */

    pthread_mutex_t checkpoint_lock; /* one checkpoint or compaction at a time; taken
                                      before write_lock */
    pthread_mutex_t write_lock;    /* one writer: upsert, delete; a checkpoint's
                                      snapshot and publish; a compaction's
                                      snapshot, catch-up and swap */
    pthread_rwlock_t swap_lock;    /* readers (search, get, info) hold it for a whole
                                      read; compaction takes it to swap structures */
    pthread_rwlock_t map_lock;     /* id table: readers get/lookup, writers apply */
    _Atomic uint64_t live;         /* points visible */
    uint64_t generation;           /* of the files on disk; written under write_lock,
                                      atomically (info reads it without) */
    uint32_t file_slots;           /* slots in that generation's files; write_lock */
    bool dirty;                    /* changes since the last checkpoint; write_lock */
    atomic_bool checkpoint_asked;  /* the size trigger woke the checkpointer */

    wal *log;                      /* NULL only while loading */
    uint64_t applied_lsn;          /* last log record applied; write_lock */
    uint64_t checkpoint_lsn;       /* last record the files on disk cover; write_lock */
    wal_recovery recovered;        /* what opening the log found (a dropped torn tail) */
    char failure[256];             /* non-empty: writes refused (why); write_lock */
    char salvaged[512];            /* salvage open: what was skipped or rebuilt */
    ef_tuner tuner;                /* the default search ef (HNSW) */
};

struct ndl_db {
    char *path;
    int lock_fd;
    bool read_only;
    bool salvage;         /* open damaged collections read-only (implies read_only) */
    bool verify_on_open;  /* verify vector checksums before an open returns */
    ndl_fsync fsync;
    uint64_t checkpoint_wal_bytes;
    uint32_t max_payload_bytes;
    pthread_mutex_t lock;          /* registry */
    ndl_collection *open;          /* open collections */
    struct catalog *catalog;       /* the create/drop log (catalog.h) */

    /* background checkpoints (checkpointer.c) */
    uint32_t checkpoint_interval_ms;
    pthread_t checkpointer;
    bool checkpointer_running;
    bool stopping;                 /* guarded by lock */
    bool checkpoint_requested;     /* a log outgrew checkpoint_wal_bytes; lock */
    bool tune_requested;           /* a collection's ef tuner is due; lock */
    pthread_cond_t stop_cond;      /* wakes the checkpointer: stopping or a request */
};

/* collection.c */
ndl_status coll_create_files(ndl_db *db, const char *name, const ndl_collection_config *cfg,
                             ndl_error *err);
ndl_status coll_load(ndl_db *db, const char *name, ndl_collection **out, ndl_error *err);
ndl_status coll_checkpoint(ndl_collection *c, ndl_error *err);
void coll_free(ndl_collection *c);
ndl_status coll_check_config(const ndl_collection_config *cfg, ndl_error *err);

/* write.c: apply a validated mutation (live or replayed); write_lock held.
 * trees: NULL, or per point the payload already parsed (NULL: none), so the
 * payload indexes need not parse the text again. */
ndl_status coll_apply_upsert(ndl_collection *c, size_t n, const ndl_id *ids, const float *vectors,
                             const log_text *payloads, json_t *const *trees,
                             const ndl_write_options *opts, ndl_error *err);
ndl_status coll_apply_payload(ndl_collection *c, ndl_id id, log_text payload, ndl_error *err);
ndl_status coll_apply_delete(ndl_collection *c, size_t n, const ndl_id *ids, size_t *deleted,
                             ndl_error *err);
/* Insert slots into index ix (a collection's HNSW index, or a compaction's
 * new one) on opts->threads threads; no-op for NULL (flat). */
ndl_status coll_index_slots(vindex *ix, const uint32_t *slots, size_t n,
                            const ndl_write_options *opts, ndl_error *err);

/* compact.c: reclaim dead slots (checkpoint_lock held, write_lock not:
 * it takes it for its snapshot and its catch-up and swap). Due when at
 * least COMPACT_MIN_DEAD slots and 1/COMPACT_DEAD_DIVISOR of all slots are
 * dead. */
#define COMPACT_MIN_DEAD 64
#define COMPACT_DEAD_DIVISOR 4
bool coll_compaction_due(const ndl_collection *c);
ndl_status coll_compact(ndl_collection *c, ndl_error *err);
/* Test hook: fn(c, ctx) runs in every compaction between its snapshot and
 * its copy, with no lock held (so it may write to c). NULL: none. */
void coll_compact_set_hook(void (*fn)(ndl_collection *, void *), void *ctx);
/* Test hooks: how many catch-up rounds run without the lock (-1: the
 * default), and how many slots the last compaction in this process took
 * in each phase of its catch-up: [0] without the lock, [1] in slices under
 * it, [2] in the final step. */
void coll_compact_set_unlocked_rounds(int rounds);
void coll_compact_last_takes(uint32_t out[3]);

/* verifier.c: NDL_OK, or NDL_CORRUPT once the vectors were found damaged
 * after open (every read and write then answers it) */
ndl_status coll_check_intact(ndl_collection *c, ndl_error *err);
/* verifier.c: verify the vectors mapped at open on a background thread */
void coll_verifier_start(ndl_collection *c);
/* Test hook: while held, opens start no verifier thread (so a test can see
 * what checkpoints and compactions verify on their own). */
void coll_verifier_hold(bool hold);

/* collection.c: append to c->salvaged ("; "-separated) */
void coll_note_salvage(ndl_collection *c, const char *fmt, ...) NDL_PRINTF(2, 3);

/* log.c: the collection's write-ahead log */
ndl_status coll_log_open(ndl_collection *c, ndl_error *err);   /* open + replay */
ndl_status coll_check_writable(ndl_collection *c, ndl_error *err);

/* write.c: delete the ids choose() picks, picked under the write lock so
 * that no write comes between picking and deleting (delete by filter).
 * choose sets *ids (kept by ctx, which the caller frees) and *n. */
typedef ndl_status (*coll_chooser)(ndl_collection *c, void *ctx, const ndl_id **ids, size_t *n,
                                   ndl_error *err);
ndl_status coll_delete_chosen(ndl_collection *c, coll_chooser choose, void *ctx,
                              size_t *deleted, ndl_error *err);

/* fields.c: payload indexes. check: a payload text against every indexed
 * field's type (write_lock held; check_parsed: the same, parsed). parse: a
 * payload text as the indexes read it (*out NULL when none are kept up to
 * date; json_decref it), done before map_lock is taken; add/remove_parsed:
 * a slot's values from that (map_lock held exclusive). build: every index
 * anew from the live payloads. prepare (write_lock held): a new field's
 * index, filled when the others are; *out NULL when it exists already with
 * that type. install: publish it. logged (write.c): prepare, log
 * LOG_FIELD, install. */
ndl_status coll_fields_check(ndl_collection *c, const char *text, size_t len, ndl_error *err);
ndl_status coll_fields_check_parsed(ndl_collection *c, const json_t *p, ndl_error *err);
ndl_status coll_fields_parse(ndl_collection *c, const char *text, size_t len, json_t **out,
                             ndl_error *err);
ndl_status coll_fields_add_parsed(ndl_collection *c, uint32_t slot, const json_t *p,
                                  ndl_error *err);
void coll_fields_remove_parsed(ndl_collection *c, uint32_t slot, const json_t *p);
ndl_status coll_fields_build(ndl_collection *c, ndl_error *err);
void coll_fields_free(ndl_collection *c);
/* Compaction (write_lock held): the built indexes renumbered by remap (see
 * field_index_remapped), to be swapped in with the new slots; NULL when
 * they are not built or memory ran out (then: coll_fields_build after). */
field_index **coll_fields_remapped(ndl_collection *c, const uint32_t *remap, uint32_t slots);
void coll_fields_list_free(field_index **f, size_t n);
ndl_status coll_field_prepare(ndl_collection *c, const char *name, field_type t,
                              field_index **out, ndl_error *err);
ndl_status coll_field_install(ndl_collection *c, field_index *fi, ndl_error *err);
ndl_status coll_apply_field(ndl_collection *c, const char *name, field_type t, ndl_error *err);
ndl_status coll_field_logged(ndl_collection *c, const char *name, field_type t, ndl_error *err);

/* where.c: a payload filter made ready for one read: the candidate slots
 * from the payload indexes (NULL: every slot) and whether they all match
 * (else each is checked on its payload). prepare takes map_lock shared;
 * where_allows takes it when a payload must be read, the _locked form
 * expects it held. */
#define WHERE_SAMPLE 256 /* candidates checked to estimate how many match */
typedef struct where_plan {
    const ndl_filter *f;
    roaring_bitmap_t *cand;
    bool exact;
} where_plan;
void where_prepare(ndl_collection *c, const ndl_filter *f, where_plan *w);
void where_release(where_plan *w);
bool where_allows(ndl_collection *c, const where_plan *w, uint32_t slot);
bool where_allows_locked(ndl_collection *c, const where_plan *w, uint32_t slot);
/* Matching live points expected (exact from the bitmap, else from a
 * sample of candidates); adds the payloads checked to *checked. */
uint64_t where_estimate(ndl_collection *c, const where_plan *w, uint64_t *checked);
void coll_cancel(ndl_collection *c, uint64_t lsn, const ndl_error *why);
void coll_maybe_checkpoint(ndl_collection *c);  /* size trigger, after a write */
bool coll_log_over_limit(const ndl_collection *c); /* log > checkpoint_wal_bytes */

/* ef_tuning.c */
void tuner_init(ef_tuner *t);
void tuner_destroy(ef_tuner *t);
/* Offer nq queries searched with the default ef to the sample; asks the
 * background thread for a tuning when one is due. */
void tuner_offer(ndl_collection *c, const float *queries, size_t nq);
bool tuner_pending(ndl_collection *c);
/* Tune now (the background thread, for a pending tuner); saves the result
 * when the database is writable. */
void tuner_run(ndl_collection *c);
/* The saved tuning of an opened HNSW collection, if any (else untuned). */
void tuner_load(ndl_collection *c);
void tuner_info(ndl_collection *c, ndl_collection_info *out);
/* checkpointer.c: also wakes the background thread for tunings */
void db_background_request(ndl_db *db);
/* checkpointer.c */
void db_checkpointer_start(ndl_db *db);
void db_checkpointer_stop(ndl_db *db);
void db_checkpoint_request(ndl_db *db); /* wake it for the size trigger */

/* db.c */
char *db_path_join(const char *a, const char *b);

#endif
