/*
 * catalog.h -- the database's catalog log: every collection create and drop
 * is a record in a write-ahead log (storage/wal.h) in DATA/.catalog/,
 * committed before the directory changes, so a crash between the two is
 * finished on the next open instead of leaving the directory to guess.
 * The leading dot keeps the name out of the collection namespace
 * ([A-Za-z0-9_-]{1,64}), so ndl_collection_list never sees it.
 *
 * Records (payload little-endian; each starts with a u32 record version,
 * CATALOG_RECORD_VERSION; a newer one is NDL_UNSUPPORTED):
 *   CATALOG_CREATE: u32 version, u32 name length (1..64), name bytes,
 *                   u32 dimension, u32 metric, u32 index, u32 hnsw_m,
 *                   u32 hnsw_ef_construction, u64 seed
 *   CATALOG_DROP:   u32 version, u32 name length, name bytes
 *   CATALOG_CANCEL: u32 version, u64 LSN -- the create or drop at that LSN
 *                   failed to apply, was reported as failed, and must be
 *                   ignored on replay
 *   CATALOG_SEAL:   u32 version -- committed after each record above, before
 *                   the call returns, so an acknowledged record is never the
 *                   log's last: damage in it is refused, not cut as a torn
 *                   tail; replay ignores seals
 *
 * Replay (catalog_open): the last record of each name that is not
 * cancelled says what the directory must hold: CREATE -> DATA/<name>
 * exists (created from the record's config if missing), DROP -> it does not
 * (a leftover is renamed away and removed). Names without records (older
 * databases, or records truncated after they were applied) are left alone.
 *
 * catalog_create, catalog_drop and catalog_check_open expect db->lock held
 * (they run under the registry lock, one create or drop at a time);
 * catalog_open, catalog_close and catalog_recovered run before and after
 * the database is shared.
 */
#ifndef NDL_DB_CATALOG_H
#define NDL_DB_CATALOG_H

#include "storage/wal.h"
#include "util/base.h"

#define CATALOG_DIR ".catalog"
#define CATALOG_RECORD_VERSION 1
#define CATALOG_NEW_PREFIX ".new-"         /* a create being built (collection.c) */
#define CATALOG_DROPPED_PREFIX ".dropped-" /* a drop being removed */

enum { CATALOG_CREATE = 1, CATALOG_DROP = 2, CATALOG_CANCEL = 3, CATALOG_SEAL = 4 };

typedef struct catalog catalog;

/* Open db's catalog and check every record (damage in the middle of the
 * log: NDL_CORRUPT naming the file and offset; a torn tail is cut off).
 * Unless db->read_only: remove leftover .new-* and .dropped-* directories
 * of interrupted creates and drops, bring the directory in line with the
 * log, sync it, and delete the log segments that are now all applied.
 * Read-only: checks only, writes nothing. Needs db->path and db->read_only. */
ndl_status catalog_open(ndl_db *db, catalog **out, ndl_error *err);
ndl_status catalog_close(catalog *cat, ndl_error *err);
/* What catalog_open found at the end of the log (a torn tail cut off). */
const wal_recovery *catalog_recovered(const catalog *cat);

/* Log, commit, then create DATA/<name> (validated name and config, a
 * writable database, no such directory yet). A failure after the commit
 * appends a CANCEL so the record is not replayed. */
ndl_status catalog_create(ndl_db *db, const char *name, const ndl_collection_config *cfg,
                          ndl_error *err);

/* Log, commit, then rename DATA/<name> to DATA/.dropped-<name>, sync
 * DATA, and remove the tree (an existing collection that is not open). */
ndl_status catalog_drop(ndl_db *db, const char *name, ndl_error *err);

/* NDL_OK unless the directory of `name` may disagree with the log until
 * the database is reopened (a failed drop whose cancel could not be
 * logged): then opening it is refused, so nothing is written to a
 * collection the next open may remove. */
ndl_status catalog_check_open(const catalog *cat, const char *name, ndl_error *err);

#endif
