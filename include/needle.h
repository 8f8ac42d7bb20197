/*
 * needle.h -- the one public header of libneedle, an embeddable vector database.
 *
 * A database is a directory holding collections. A collection holds vectors of
 * one dimension and one metric, each with an id (u64 or UTF-8 string), and an
 * index (exact "flat" or HNSW) over them. See docs/DESIGN.md for the design and
 * the on-disk formats.
 *
 * Conventions
 *   - Every fallible function returns an ndl_status. NDL_OK is 0.
 *   - Every such function takes an optional, caller-owned `ndl_error *err`
 *     (may be NULL). On failure it receives the status and a message that
 *     names the problem ("vector has 127 values; collection 'sift' has
 *     dimension 128"). There is no global or per-handle "last error".
 *   - Output handles are set to NULL on failure. Closing or freeing NULL is a
 *     harmless no-op.
 *   - The library never calls exit() or abort() and never prints, except
 *     through callbacks the caller installs.
 *
 * Thread safety
 *   - ndl_db: open/close from one thread. Collection create/open/drop/list may
 *     be called from many threads at once.
 *   - ndl_collection: every function may be called from many threads at once.
 *     Searches run concurrently with each other and with one or more writers
 *     (upsert/delete); a search sees each point either entirely before or
 *     entirely after a concurrent write to it. Closing a collection while
 *     other threads use it is the caller's error.
 *   - ndl_results: owned by the caller; not shared.
 *   - ndl_filter: immutable once parsed; any number of threads may use one
 *     filter at once, with any collections. Payload indexes
 *     (ndl_collection_add_field) are built while searches go on; writes to
 *     that collection wait for the build.
 *
 * ABI: same major version = binary compatible. Option structs begin with a
 * `version` field set by their *_init() function so fields can be added.
 */
#ifndef NEEDLE_H
#define NEEDLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define NDL_API __attribute__((visibility("default")))
#else
#define NDL_API
#endif

#define NDL_VERSION_MAJOR 0
#define NDL_VERSION_MINOR 1
#define NDL_VERSION_PATCH 0
#define NDL_VERSION_STRING "0.1.0"

/* Returns the library version string, e.g. "0.1.0". Static storage. */
NDL_API const char *ndl_version(void);

/* ---------------------------------------------------------------- status */

/* X(NAME, value, code name (as in HTTP error bodies), message) */
#define NDL_STATUS_MAP(X)                                                      \
    X(OK,          0,  "ok",               "ok")                               \
    X(INVALID,     1,  "invalid_argument", "invalid argument")                 \
    X(NOT_FOUND,   2,  "not_found",        "not found")                        \
    X(EXISTS,      3,  "already_exists",   "already exists")                   \
    X(NOMEM,       4,  "out_of_memory",    "out of memory")                    \
    X(IO,          5,  "io_error",         "I/O error")                        \
    X(CORRUPT,     6,  "corrupt",          "data is corrupt")                  \
    X(READ_ONLY,   7,  "read_only",        "read-only")                        \
    X(DISK_FULL,   8,  "disk_full",        "disk full")                        \
    X(BUSY,        9,  "busy",             "busy")                             \
    X(UNSUPPORTED, 10, "unsupported",      "not supported")                    \
    X(INTERNAL,    11, "internal",         "internal error")

typedef enum ndl_status {
#define NDL_STATUS_ENUM_(name, value, code, msg) NDL_##name = value,
    NDL_STATUS_MAP(NDL_STATUS_ENUM_)
#undef NDL_STATUS_ENUM_
} ndl_status;

/* Stable snake_case code name of a status ("invalid_argument"); "unknown" for
 * values outside the table. Static storage. */
NDL_API const char *ndl_status_name(ndl_status s);
/* Short human message of a status ("invalid argument"). Static storage. */
NDL_API const char *ndl_status_str(ndl_status s);

/* Caller-owned error detail. Functions fill it only on failure. */
typedef struct ndl_error {
    ndl_status status;
    char msg[256];
} ndl_error;

/* ---------------------------------------------------------------- enums */

typedef enum ndl_metric {
    NDL_METRIC_L2 = 0,      /* distance = Euclidean (not squared) */
    NDL_METRIC_COSINE = 1,  /* distance = 1 - cos; zero vectors have cos = 0 */
    NDL_METRIC_IP = 2,      /* distance = -dot */
    NDL_METRIC_L1 = 3,      /* distance = sum |a-b| */
    NDL_METRIC_HAMMING = 4  /* distance = differing bits; vectors given as 0/1 floats */
} ndl_metric;

typedef enum ndl_index_type {
    NDL_INDEX_FLAT = 0, /* exact search */
    NDL_INDEX_HNSW = 1
} ndl_index_type;

/* Parse "l2", "cosine", ... Returns NDL_OK or NDL_INVALID (naming the
 * accepted values in err). */
NDL_API ndl_status ndl_metric_parse(const char *s, ndl_metric *out, ndl_error *err);
NDL_API const char *ndl_metric_name(ndl_metric m);
NDL_API ndl_status ndl_index_parse(const char *s, ndl_index_type *out, ndl_error *err);
NDL_API const char *ndl_index_name(ndl_index_type t);

/* ---------------------------------------------------------------- limits */

#define NDL_DIM_MIN 1
#define NDL_DIM_MAX 65536
#define NDL_K_MIN 1
#define NDL_K_MAX 10000
#define NDL_ID_STR_MAX 256          /* bytes of a string id */
#define NDL_PAYLOAD_BYTES_DEFAULT 65536   /* default limit of one point's payload */
#define NDL_PAYLOAD_BYTES_MAX (16 << 20)  /* highest limit a database accepts */
#define NDL_NAME_MAX 64             /* collection names: [A-Za-z0-9_-]{1,64} */

#define NDL_HNSW_M_DEFAULT 16
#define NDL_HNSW_M_MIN 2
#define NDL_HNSW_M_MAX 128
#define NDL_HNSW_EF_CONSTRUCTION_DEFAULT 200
#define NDL_HNSW_EF_CONSTRUCTION_MIN 4
#define NDL_HNSW_EF_CONSTRUCTION_MAX 4096
#define NDL_HNSW_EF_DEFAULT 64      /* search ef when none is given, until the collection
                                       learns a larger one from its queries
                                       (ndl_collection_info.search_ef); raised to k */
#define NDL_HNSW_EF_MIN 1
#define NDL_HNSW_EF_MAX 65536
#define NDL_HNSW_SEED_DEFAULT 100

/* ---------------------------------------------------------------- ids */

/* A point id: a u64 (str == NULL) or a UTF-8 string of 1..256 bytes
 * (str != NULL, len bytes, need not be NUL-terminated). */
typedef struct ndl_id {
    const char *str;
    uint32_t len;
    uint64_t num;
} ndl_id;

/* Convenience constructors. ndl_id_str borrows s (NUL-terminated). */
NDL_API ndl_id ndl_id_u64(uint64_t num);
NDL_API ndl_id ndl_id_str(const char *s);

/* ---------------------------------------------------------------- database */

typedef struct ndl_db ndl_db;
typedef struct ndl_collection ndl_collection;
typedef struct ndl_filter ndl_filter; /* a parsed payload filter (ndl_filter_parse) */

/* When a write is acknowledged (SPEC section 5). Every mutation is first
 * appended to the collection's write-ahead log. */
typedef enum ndl_fsync {
    NDL_FSYNC_ALWAYS = 0, /* return after the log record is on disk (fdatasync);
                             concurrent writers share one fdatasync */
    NDL_FSYNC_BATCH = 1,  /* return at once; the log is fdatasynced every 10 ms */
    NDL_FSYNC_NONE = 2    /* never fdatasync; the OS writes back (survives a
                             process crash, not a power loss) */
} ndl_fsync;

NDL_API ndl_status ndl_fsync_parse(const char *s, ndl_fsync *out, ndl_error *err);
NDL_API const char *ndl_fsync_name(ndl_fsync f);

typedef struct ndl_db_options {
    uint32_t version;
    int create_if_missing;  /* default 1: create the database (directory and marker) if absent or empty */
    int read_only;          /* default 0. Every database, read-only too, runs one
                               background thread: it checkpoints (not when
                               read-only) and tunes collections' default search
                               ef (ndl_collection_info.search_ef; saved
                               with the collection when not read-only) */
    ndl_fsync fsync;        /* default NDL_FSYNC_ALWAYS */
    uint64_t checkpoint_wal_bytes; /* checkpoint a collection (on the background
                                      thread) once its log exceeds this
                                      (default 256 MiB; 0 = only on close/flush) */
    uint32_t checkpoint_interval_ms; /* a background thread checkpoints collections
                                        with changes this often (default 60000;
                                        0 = never) */
    uint32_t max_payload_bytes; /* limit of one point's payload, as canonical
                                   JSON text (default 65536; 2..NDL_PAYLOAD_BYTES_MAX) */
    int salvage;            /* default 0. 1 = open damaged collections anyway,
                               read-only: replay the log up to the first damaged
                               record, rebuild a damaged graph from the vectors;
                               implies read_only (docs/DESIGN.md, salvage) */
    int verify_on_open;     /* default 0: a collection opens without reading its
                               vectors; a background thread then verifies their
                               checksums (ndl_collection_verify). 1 = verify
                               them before ndl_collection_open returns, refusing
                               a damaged file (for short-lived processes such as
                               the CLI; costs a read of every vector) */
} ndl_db_options;

NDL_API void ndl_db_options_init(ndl_db_options *o);

/* Open (or create) the database directory `path`.
 * Returns: NDL_OK; NDL_NOT_FOUND if absent and !create_if_missing;
 *   NDL_INVALID if the directory exists, is not empty and is not a needle
 *   database, or for a bad option; NDL_BUSY if another process has it
 *   open; NDL_IO on file-system errors; NDL_CORRUPT on a damaged marker
 *   or catalog log (naming the file and offset, or the record);
 *   NDL_UNSUPPORTED for a marker or catalog record newer than this build.
 * Unless read-only, opening finishes the creates and drops a crash
 *   interrupted (docs/DESIGN.md, the catalog log).
 * Ownership: *out is owned by the caller; release with ndl_db_close().
 * opts may be NULL for defaults. */
NDL_API ndl_status ndl_db_open(const char *path, const ndl_db_options *opts,
                               ndl_db **out, ndl_error *err);

/* Close the database, closing (and saving) every collection still open.
 * NULL is a no-op. Returns NDL_OK or the first save error. */
NDL_API ndl_status ndl_db_close(ndl_db *db, ndl_error *err);

typedef struct ndl_db_info {
    /* What ndl_db_open found at the end of the catalog log (the log of
     * collection creates and drops): a torn or corrupt last record -- a
     * create or drop that was never acknowledged, so the collection is as
     * before it -- is cut off and reported here; 0 and "" if the log ended
     * cleanly. */
    uint64_t dropped_catalog_bytes;
    char dropped_catalog_at[300]; /* "file at byte offset" */
} ndl_db_info;

/* Facts about an open database. Returns NDL_OK. Thread-safe. */
NDL_API ndl_status ndl_db_info_get(ndl_db *db, ndl_db_info *out, ndl_error *err);

/* ---------------------------------------------------------------- collections */

typedef struct ndl_collection_config {
    uint32_t version;
    uint32_t dimension;          /* 1..65536; required */
    ndl_metric metric;           /* default l2 */
    ndl_index_type index;        /* default hnsw */
    uint32_t hnsw_m;             /* default 16 */
    uint32_t hnsw_ef_construction; /* default 200 */
    uint64_t seed;               /* HNSW level generator seed, default 100 */
} ndl_collection_config;

NDL_API void ndl_collection_config_init(ndl_collection_config *c);

/* Returns 1 if name matches [A-Za-z0-9_-]{1,64}, else 0. */
NDL_API int ndl_name_valid(const char *name);

/* Create collection `name` and return an open handle.
 * Returns: NDL_OK; NDL_INVALID (bad name, dimension, metric/index values or
 *   HNSW parameters, each named); NDL_EXISTS; NDL_READ_ONLY (database open
 *   read-only, or creates refused after a catalog log failure until
 *   reopened); NDL_DISK_FULL; NDL_IO.
 * Durable when it returns NDL_OK: logged, committed, then created.
 * Ownership: *out belongs to the database; release with
 *   ndl_collection_close() (the db keeps it until then). out may be NULL. */
NDL_API ndl_status ndl_collection_create(ndl_db *db, const char *name,
                                         const ndl_collection_config *cfg,
                                         ndl_collection **out, ndl_error *err);

/* Open an existing collection: maps its vectors without reading them (a
 * background thread then verifies their checksums, see
 * ndl_collection_verify; with ndl_db_options.verify_on_open they are
 * verified before this returns), loads its ids, payloads and index and
 * replays its log.
 * Opening the same name twice returns the same handle with a second
 * reference; each open needs one close.
 * Returns: NDL_OK; NDL_NOT_FOUND; NDL_INVALID (bad name); NDL_CORRUPT (names
 *   the damaged file); NDL_IO (also while a failed drop of it is in doubt,
 *   until the database is reopened). */
NDL_API ndl_status ndl_collection_open(ndl_db *db, const char *name,
                                       ndl_collection **out, ndl_error *err);

/* Save pending changes so the collection reopens without rebuilding (a
 * checkpoint). Writers and searches go on while the files are written;
 * writers pause only while it copies its snapshot (the hidden set, payload
 * records and graph links, at memory speed). Checkpoints and compactions
 * run one at a time. A read-only database: NDL_OK, nothing written.
 * Returns NDL_OK, NDL_IO, NDL_DISK_FULL. */
NDL_API ndl_status ndl_collection_flush(ndl_collection *c, ndl_error *err);

/* Drop one reference; the last one saves and frees the collection.
 * NULL is a no-op. Returns NDL_OK or a save error. */
NDL_API ndl_status ndl_collection_close(ndl_collection *c, ndl_error *err);

/* Delete collection `name` and its files. It must not be open.
 * Durable when it returns NDL_OK (logged and committed first).
 * Returns: NDL_OK; NDL_NOT_FOUND; NDL_BUSY (still open); NDL_INVALID;
 *   NDL_READ_ONLY (as for create); NDL_DISK_FULL; NDL_IO. */
NDL_API ndl_status ndl_collection_drop(ndl_db *db, const char *name, ndl_error *err);

/* List collection names, sorted. *names is one allocation holding the array
 * and the strings; free it with ndl_free(). */
NDL_API ndl_status ndl_collection_list(ndl_db *db, char ***names, size_t *count,
                                       ndl_error *err);

typedef struct ndl_collection_info {
    char name[NDL_NAME_MAX + 1];
    ndl_collection_config config;
    uint64_t count;          /* live points */
    uint64_t deleted;        /* tombstoned slots not yet reclaimed */
    uint64_t memory_bytes;   /* heap + resident-capable mappings of this collection */
    uint64_t disk_bytes;     /* bytes of its files, log included */
    /* What the last open found at the end of the write-ahead log: a torn or
     * corrupt tail (an append that was never acknowledged) is cut off and
     * reported here; dropped_log_bytes == 0 when the log ended cleanly. */
    uint64_t dropped_log_bytes;
    char dropped_log_at[300]; /* "file at byte offset", or "" */
    /* Opened with ndl_db_options.salvage: what was damaged and what that
     * cost ("log cut short at ...", "graph rebuilt from the vectors: ...",
     * "payloads lost: ..."), "; "-separated; "" if nothing was. */
    char salvaged[512];
    /* Non-empty once the vectors were found damaged after open (by the
     * background verification, a checkpoint or a compaction): what and
     * where; every read and write then answers NDL_CORRUPT. */
    char damaged[400];
    /* HNSW: the ef a search without one uses. It starts at
     * NDL_HNSW_EF_DEFAULT and is then learned from the collection's own
     * queries: the background thread measures the recall@10 of a sample
     * of the queries searched with the default ef against exact search,
     * and makes the smallest ef reaching 0.95 the default (64..1024).
     * The last tuning is saved with the collection (a writable database)
     * and holds again after reopen. 0 for flat collections. */
    uint32_t search_ef;
    float search_ef_recall;      /* that sample's recall@10 at search_ef; -1 until tuned */
    uint32_t search_ef_queries;  /* queries in that sample; 0 until tuned */
} ndl_collection_info;

NDL_API ndl_status ndl_collection_info_get(ndl_collection *c, ndl_collection_info *out,
                                           ndl_error *err);

/* ---------------------------------------------------------------- payload indexes */

/* Types of a payload field index (SPEC section 3, `fields`). */
typedef enum ndl_field_type {
    NDL_FIELD_KEYWORD = 0, /* strings: $eq, $in (arrays of strings: any element) */
    NDL_FIELD_INT = 1,     /* integers: $eq, $in, ranges */
    NDL_FIELD_FLOAT = 2,   /* numbers: $eq, $in, ranges */
    NDL_FIELD_BOOL = 3,    /* true / false */
    NDL_FIELD_DATE = 4,    /* ISO-8601 strings: ranges as instants */
    NDL_FIELD_TEXT = 5     /* strings: $text (their words) */
} ndl_field_type;

/* NDL_OK if name can be a field: 1..256 bytes, dotted for nested fields
 * with no empty part, not starting with '$'; else NDL_INVALID saying why. */
NDL_API ndl_status ndl_field_name_check(const char *name, ndl_error *err);

/* "keyword", "int", ... and back (-1 for an unknown name). */
NDL_API const char *ndl_field_type_name(ndl_field_type t);
NDL_API int ndl_field_type_from_name(const char *name);

/* Index payload field `name` (dotted for nested fields: "meta.author") as
 * type t, built now from the stored payloads (online: searches go on;
 * writes wait until it is built) and kept up to date by every upsert,
 * payload change and delete. From then on a payload whose value there
 * has another type is refused (NDL_INVALID naming the field). Logged like
 * a write, so it survives a crash once this returns.
 * Returns NDL_OK (also when the field is already indexed with this type);
 * NDL_EXISTS (indexed with another type); NDL_INVALID (bad name, or a
 * stored payload whose value has another type: named, nothing changes);
 * NDL_NOMEM; NDL_DISK_FULL; NDL_IO; NDL_READ_ONLY. */
NDL_API ndl_status ndl_collection_add_field(ndl_collection *c, const char *name,
                                            ndl_field_type t, ndl_error *err);

/* The indexed fields: how many, and the i-th (in the order added) into
 * name (at least NDL_FIELD_NAME_MAX + 1 bytes) and *t. */
#define NDL_FIELD_NAME_MAX 256
NDL_API size_t ndl_collection_field_count(ndl_collection *c);
NDL_API ndl_status ndl_collection_field_get(ndl_collection *c, size_t i, char *name,
                                            ndl_field_type *t, ndl_error *err);

/* Verify every checksum and invariant of an open collection: every chunk
 * CRC of the current vectors file (read again from disk: it may have
 * changed since it was opened), the vectors mapped at open (what
 * ndl_collection_verify does; damage there makes the collection damaged),
 * every log record, ids <-> slots both ways, the live count, every live
 * point's payload (a JSON object within the limit), and the HNSW graph
 * (links in range, levels, entry point). Blocks writers of c while it
 * runs; searches continue.
 * Returns NDL_OK or NDL_CORRUPT naming the first problem (file and offset
 * or chunk where there is one, or "collection ... is damaged"); NDL_IO.
 * Damage that keeps a collection from opening is reported by
 * ndl_collection_open itself. */
NDL_API ndl_status ndl_collection_check(ndl_collection *c, ndl_error *err);

/* Finish, in the calling thread, verifying the checksums of the vectors the
 * collection was opened from (the background verifier's work; see
 * ndl_db_options.verify_on_open). Until that is done a flipped bit in a
 * vector can be served by a read (checkpoints and compactions compare as
 * they copy, so it is never saved again).
 * Returns NDL_OK once every vector is verified; NDL_CORRUPT naming the file
 * and chunk if one is damaged: the collection then answers NDL_CORRUPT to
 * every read, write and checkpoint (its files and log stay as they are for
 * needle check and --salvage). Thread-safe; blocks for a read of the
 * vectors not yet verified. */
NDL_API ndl_status ndl_collection_verify(ndl_collection *c, ndl_error *err);

/* Reclaim the slots of deleted and replaced points now: their vectors, ids,
 * payloads and graph nodes leave memory, then a checkpoint rewrites the
 * files without them (disk). Checkpoints also compact by themselves once at
 * least a quarter of the slots (and 64 or more) are dead. Online: searches
 * and gets continue (they see the collection before or after, never a mix);
 * writes continue too, waiting only for a snapshot at the start and, at
 * the end, for what they wrote meanwhile to be added to the copy and, when
 * the collection has payload indexes, for those to be renumbered for the
 * new slots (a pass over their entries; if memory runs out for that, they
 * are rebuilt from the payloads instead, and filters check payloads until
 * that is done, or until the next open if it fails too). Needs
 * extra memory while it runs: a copy of the graph (dead nodes included)
 * and the new vectors, ids and graph. Returns NDL_OK, NDL_NOMEM (nothing
 * changed), NDL_READ_ONLY, NDL_CORRUPT (the vectors mapped at open are
 * damaged: nothing is copied), or a checkpoint error (NDL_IO,
 * NDL_DISK_FULL: memory is compacted, the files are not yet). */
NDL_API ndl_status ndl_collection_compact(ndl_collection *c, ndl_error *err);

/* Durations of the write-ahead logs' fdatasync calls (group commits) in
 * this process, as a histogram: bucket[i] counts syncs that took at most
 * le[i] seconds (cumulative, as Prometheus wants); count is all of them,
 * sum_seconds their total. Thread-safe; counters only grow. */
#define NDL_FSYNC_BUCKETS 12
typedef struct ndl_fsync_stats {
    uint64_t count;
    double sum_seconds;
    double le[NDL_FSYNC_BUCKETS];
    uint64_t bucket[NDL_FSYNC_BUCKETS];
} ndl_fsync_stats;
NDL_API void ndl_fsync_stats_get(ndl_fsync_stats *out);

/* Frees memory the library handed to the caller (lists, ...). NULL no-op. */
NDL_API void ndl_free(void *p);

/* ---------------------------------------------------------------- writes */

/* Progress callback for long operations: done of total units. Called from
 * the calling thread; the return value is reserved (return 0). */
typedef int (*ndl_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct ndl_write_options {
    uint32_t version;
    uint32_t threads;          /* index build threads for this call; default 1 */
    ndl_progress_fn progress;  /* optional */
    void *progress_ctx;
} ndl_write_options;

NDL_API void ndl_write_options_init(ndl_write_options *o);

/* Insert or replace n points (an existing id gets the new vector and the
 * new payload: a point upserted without a payload has none afterwards).
 * vectors holds n * dimension floats, row-major (for hamming: 0/1 values).
 * payloads is NULL (no payloads) or n entries, each NULL (no payload) or a
 * NUL-terminated JSON object text: strict RFC 8259 JSON, valid UTF-8, no
 * duplicate keys, nested at most 64 deep, integers within int64, at most
 * the database's max_payload_bytes once stored (payloads are stored as
 * compact canonical text: insignificant whitespace dropped, keys in the
 * order given).
 * Validation happens for the whole batch before anything is applied: on
 * NDL_INVALID (NaN/Inf values, bad or duplicate-length ids, non-0/1 hamming
 * values, a bad or oversized payload -- the message names the point and the
 * problem) nothing is written. A search running meanwhile sees an id's old
 * vector and payload or its new ones, never a mix and never both.
 * Within one batch a repeated id keeps its last vector and payload.
 * Durability: the batch is one write-ahead log record, appended before
 * anything changes; the call returns once that record is as durable as the
 * database's fsync mode promises (NDL_FSYNC_ALWAYS: on disk). After a crash
 * the whole batch is there or none of it. Searches may see the batch a
 * moment before it is durable.
 * opts may be NULL. Returns NDL_OK, NDL_INVALID, NDL_NOMEM, NDL_DISK_FULL
 * (nothing written; retry once space frees), NDL_IO, NDL_READ_ONLY (read-only
 * database, or the collection's log failed an fsync: the message says why;
 * no later write succeeds until it is reopened).
 * Thread safety: any number of threads may upsert and delete at once (they
 * apply one at a time and share log syncs) while others search.
 * Ownership: ids, vectors and payloads are borrowed for the call. */
NDL_API ndl_status ndl_collection_upsert_points(ndl_collection *c, size_t n, const ndl_id *ids,
                                                const float *vectors,
                                                const char *const *payloads,
                                                const ndl_write_options *opts, ndl_error *err);

/* ndl_collection_upsert_points without payloads. */
NDL_API ndl_status ndl_collection_upsert(ndl_collection *c, size_t n, const ndl_id *ids,
                                         const float *vectors,
                                         const ndl_write_options *opts, ndl_error *err);

typedef enum ndl_payload_mode {
    NDL_PAYLOAD_MERGE = 0,   /* top-level keys of json replace or join the stored ones */
    NDL_PAYLOAD_REPLACE = 1  /* json becomes the whole payload (NULL: remove it) */
} ndl_payload_mode;

/* Change the payload of an existing point, keeping its vector. MERGE
 * (PATCH .../points/{id}): every top-level key of json replaces the stored
 * key of that name (whole value, no deep merge) or is added after the
 * stored keys; a value of null is stored as null. The result must fit
 * max_payload_bytes. Logged and acknowledged like an upsert.
 * Returns NDL_OK, NDL_NOT_FOUND (no such id), NDL_INVALID (bad json, or too
 * large after the merge), NDL_DISK_FULL, NDL_IO, NDL_READ_ONLY. */
NDL_API ndl_status ndl_collection_set_payload(ndl_collection *c, ndl_id id, const char *json,
                                              ndl_payload_mode mode, ndl_error *err);

/* Delete n ids; absent ids are skipped. *deleted (may be NULL) receives how
 * many were present. Logged and acknowledged like an upsert (one record).
 * Returns NDL_OK, NDL_INVALID (bad id), NDL_DISK_FULL, NDL_IO, NDL_READ_ONLY. */
NDL_API ndl_status ndl_collection_delete(ndl_collection *c, size_t n, const ndl_id *ids,
                                         size_t *deleted, ndl_error *err);

/* Delete every live point that matches f (required: delete all with a
 * filter of {}), as of the call: one log record, like a delete of those
 * ids; points written during the call may stay. *deleted as above.
 * Returns as ndl_collection_delete, and NDL_NOMEM. */
NDL_API ndl_status ndl_collection_delete_where(ndl_collection *c, const ndl_filter *f,
                                               size_t *deleted, ndl_error *err);

/* Read one point: its vector into vector_out (dimension floats; for cosine
 * the unit-normalized vector, as stored; for hamming 0/1 values) and/or its
 * payload into *payload_out (canonical JSON, NUL-terminated, allocated: free
 * with ndl_free; NULL when the point has no payload). Either output may be
 * NULL to skip it; both come from the same version of the point.
 * Returns NDL_OK, NDL_NOT_FOUND, NDL_INVALID (bad id), NDL_NOMEM,
 * NDL_CORRUPT (the vectors were found damaged after open). */
NDL_API ndl_status ndl_collection_get_point(ndl_collection *c, ndl_id id, float *vector_out,
                                            char **payload_out, ndl_error *err);

/* The live points a page at a time, in id order: u64 ids ascending, then
 * string ids bytewise (a prefix first). Returns up to `limit` (1..
 * NDL_SCROLL_MAX) ids greater than *after (NULL: from the first), as of
 * this call: pass the last id of a page as `after` to get the next; fewer
 * than limit (0 at the end) means no more. A cursor stays valid across
 * writes and compactions (points written meanwhile above it show up).
 * Read each point with ndl_collection_get_point (it may be gone by then).
 * A point replaced during the call is in the page once (its id does not
 * move). Returns NDL_OK, NDL_INVALID (bad limit or cursor id), NDL_NOMEM,
 * NDL_CORRUPT (the vectors were found damaged after open).
 * Ownership: *ids_out is one allocation holding the ids and their strings;
 * free it with ndl_free(). Cost: one pass over the live ids per page. */
#define NDL_SCROLL_MAX 10000
NDL_API ndl_status ndl_collection_scroll(ndl_collection *c, const ndl_id *after, size_t limit,
                                         ndl_id **ids_out, size_t *n_out, ndl_error *err);

/* ndl_collection_scroll over the points that match f (NULL: all): a page
 * holds up to `limit` matching ids above *after, so paging with the last
 * id of each page walks every matching point once. */
NDL_API ndl_status ndl_collection_scroll_where(ndl_collection *c, const ndl_filter *f,
                                               const ndl_id *after, size_t limit,
                                               ndl_id **ids_out, size_t *n_out,
                                               ndl_error *err);

/* ndl_collection_get_point for the vector alone. */
NDL_API ndl_status ndl_collection_get(ndl_collection *c, ndl_id id, float *out,
                                      ndl_error *err);

/* Number of live points. */
NDL_API uint64_t ndl_collection_count(ndl_collection *c);

/* Number of live points that match f (NULL: all of them), as of the call.
 * Returns NDL_OK or NDL_CORRUPT (vectors found damaged); short of memory
 * for the indexes' candidates it checks every payload instead. */
NDL_API ndl_status ndl_collection_count_where(ndl_collection *c, const ndl_filter *f,
                                              uint64_t *out, ndl_error *err);

/* ---------------------------------------------------------------- search */

/* A payload filter (SPEC section 4; the language in docs/FILTERS.md),
 * parsed once: json is a JSON object such as {"category":"tech",
 * "price":{"$lt":100}}. A filter is not tied to a collection; one filter
 * may be used by any number of searches, counts, scrolls and deletes at
 * once, from any threads. Fields that are not indexed are evaluated on the
 * stored payloads (correct, but each check parses the payload).
 * Returns NDL_OK; NDL_INVALID naming the operator and where it is
 * ("filter.$and[1].price: '$gte' needs a number or a string"); NDL_NOMEM.
 * Ownership: *out is the caller's; free with ndl_filter_free(). */

NDL_API ndl_status ndl_filter_parse(const char *json, size_t len, ndl_filter **out,
                                    ndl_error *err);
NDL_API void ndl_filter_free(ndl_filter *f);

/* Filter over internal ids (dense slots): return nonzero to allow slot.
 * Called from the searching thread during index traversal; must be
 * thread-safe if the same filter is used by concurrent searches. Use
 * ndl_collection_slot_id() to learn the external id of a slot. */
typedef int (*ndl_filter_fn)(void *ctx, uint32_t slot);

typedef struct ndl_search_params {
    uint32_t version;
    uint32_t k;          /* 1..10000; default 10 */
    uint32_t ef;         /* HNSW candidate list; must be >= k. 0 = the collection's
                            default, max(k, search_ef of ndl_collection_info):
                            64 until learned from the queries searched with it */
    int exact;           /* nonzero forces exhaustive search */
    ndl_filter_fn filter;  /* optional */
    void *filter_ctx;
    uint32_t threads;    /* batch search threads; default 1 */
    int with_payload;    /* nonzero: results carry each hit's payload */
    const ndl_filter *where; /* optional payload filter (with or without `filter`:
                                a point must pass both) */
} ndl_search_params;

NDL_API void ndl_search_params_init(ndl_search_params *p);

typedef struct ndl_hit {
    ndl_id id;          /* str points into the results object */
    uint32_t slot;      /* internal id at the time of the search (compaction
                           renumbers slots) */
    float distance;     /* raw distance, SPEC section 1 */
    float score;        /* higher is more similar */
} ndl_hit;

typedef struct ndl_results ndl_results;

/* Search the k nearest points to query (dimension floats).
 * With a filter (`where` and/or `filter`), returns exactly min(k, matching
 * live points) hits: the plan (ndl_results_explain) is an exact scan of
 * the matching points when few match, else the HNSW walk checking each
 * point it meets, which widens until it holds k matching ones.
 * Returns: NDL_OK; NDL_INVALID (k out of 1..10000, ef < k, NaN/Inf query).
 * Ownership: *out is the caller's; free with ndl_results_free(). */
NDL_API ndl_status ndl_collection_search(ndl_collection *c, const float *query,
                                         const ndl_search_params *p,
                                         ndl_results **out, ndl_error *err);

/* Search nq queries (nq * dimension floats) at once on p->threads threads;
 * exact search of many queries uses OpenBLAS sgemm. needle splits the work
 * across its own threads, so run with OPENBLAS_NUM_THREADS=1 (or call
 * openblas_set_num_threads(1)) to keep OpenBLAS from oversubscribing the
 * cores. The results object holds nq lists. Thread safety as search. */
NDL_API ndl_status ndl_collection_search_batch(ndl_collection *c, size_t nq,
                                               const float *queries,
                                               const ndl_search_params *p,
                                               ndl_results **out, ndl_error *err);

NDL_API size_t ndl_results_queries(const ndl_results *r);
NDL_API size_t ndl_results_count(const ndl_results *r, size_t query);
/* Hits of one query, best first; valid until ndl_results_free(). */
NDL_API const ndl_hit *ndl_results_hits(const ndl_results *r, size_t query);
/* Which plan ran ("hnsw" or "exact") and how many graph nodes were visited
 * (0 for exact), summed over queries. */
NDL_API const char *ndl_results_plan(const ndl_results *r);
/* Payload (canonical JSON, NUL-terminated) of hit i of query q when the
 * search asked with_payload, else NULL; NULL also for a point without one.
 * Valid until ndl_results_free(). */
NDL_API const char *ndl_results_payload(const ndl_results *r, size_t query, size_t i);
NDL_API uint64_t ndl_results_visited(const ndl_results *r);

/* How a search ran (summed over the queries of a batch). */
typedef struct ndl_explain {
    const char *plan;        /* "hnsw" or "exact" (static storage) */
    int filtered;            /* a `where` filter took part */
    uint64_t estimated;      /* matching points the planner expected (filtered only) */
    uint64_t matched;        /* points found matching: every one for an exact
                                scan, those the walk met for hnsw */
    uint64_t checked;        /* points the filter was checked on */
    uint64_t visited;        /* graph nodes whose distance was computed (hnsw) */
    uint32_t ef;             /* the ef the search ran with (hnsw) */
} ndl_explain;
NDL_API void ndl_results_explain(const ndl_results *r, ndl_explain *out);
NDL_API void ndl_results_free(ndl_results *r);

/* External id of an internal slot, for filter callbacks. Slots are
 * renumbered by compaction, so a slot means something only inside the
 * search that handed it out (a filter callback); a string id points into
 * the collection and is valid for that long too; copy it.
 * Returns NDL_OK or NDL_NOT_FOUND (free or deleted slot). */
NDL_API ndl_status ndl_collection_slot_id(ndl_collection *c, uint32_t slot, ndl_id *out);

#ifdef __cplusplus
}
#endif
#endif /* NEEDLE_H */
