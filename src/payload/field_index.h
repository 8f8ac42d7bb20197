/*
 * field_index.h -- a payload index on one field (SPEC section 3, `fields`):
 * which slots hold which values at a dotted path, so a filter on that
 * field becomes a bitmap of slots (CRoaring) instead of a parse of every
 * payload. Types: keyword (strings, exact match), int and float (numbers,
 * ranges), bool, date (ISO-8601 strings, ranges as instants), text (the
 * words of strings, for $text).
 *
 * What is indexed for a slot is what a filter's walk (path.h) reaches:
 * every value at an end of the path, every element of an array there;
 * plus whether some end is missing or null (for $eq null), whether some
 * end is present (for $exists) and whether there is more than one end
 * (text matching is per end, which the word bitmaps cannot tell apart).
 *
 * Slots only grow here: a replaced or deleted point keeps its entries
 * (the collection's hidden set excludes it) until the index is rebuilt
 * (compaction renumbers slots). A payload changed in place is removed
 * with its old text and added with the new.
 *
 * Concurrency: none inside; the collection changes an index only under
 * its map_lock (exclusive) and reads it under the same lock (shared).
 */
#ifndef NDL_PAYLOAD_FIELD_INDEX_H
#define NDL_PAYLOAD_FIELD_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <roaring/roaring.h>

#include "payload/filter.h"
#include "util/base.h"

/* roaring_bitmap_free of CRoaring 0.2 does not take NULL. */
static inline void bitmap_free(roaring_bitmap_t *b)
{
    if (b)
        roaring_bitmap_free(b);
}

typedef enum field_type {
    FIELD_KEYWORD,
    FIELD_INT,
    FIELD_FLOAT,
    FIELD_BOOL,
    FIELD_DATE,
    FIELD_TEXT,
} field_type;
#define FIELD_TYPES 6

/* "keyword", "int", ... (static storage). */
const char *field_type_name(field_type t);
/* The type named s; false for anything else. */
bool field_type_parse(const char *s, field_type *out);

/* A field name as fields and filters write it: dotted, 1..256 bytes, no
 * empty part, not starting with '$'. NDL_INVALID says why not. */
ndl_status field_name_check(const char *name, ndl_error *err);

#define FIELD_NAME_MAX 256
#define FIELD_NAME_BUF (FIELD_NAME_MAX + 1)

typedef struct field_index field_index;

/* An empty index of field `name` (checked) and type t. */
ndl_status field_index_create(const char *name, field_type t, field_index **out, ndl_error *err);
void field_index_free(field_index *fi);

const char *field_index_name(const field_index *fi);
field_type field_index_type(const field_index *fi);

/* NDL_OK if every value payload holds at this field has the field's type
 * (or is null; arrays of such values too); else NDL_INVALID naming the
 * field, its type and what was found. payload may be NULL. */
ndl_status field_index_check(const field_index *fi, const json_t *payload, ndl_error *err);

/* Records slot's values (payload: an object, or NULL). NDL_NOMEM leaves
 * the index holding part of them: the caller rebuilds or gives up. */
ndl_status field_index_add(field_index *fi, uint32_t slot, const json_t *payload, ndl_error *err);

/* Forgets slot's values, given the payload they were added from. */
void field_index_remove(field_index *fi, uint32_t slot, const json_t *payload);

size_t field_index_memory_bytes(const field_index *fi);

/* A copy of fi with its slots renumbered after a compaction: slot s becomes
 * remap[s], or is dropped when remap[s] is UINT32_MAX or s >= slots. remap
 * must keep order (s < t, both kept: remap[s] < remap[t]). Answers as an
 * index built from the kept slots' payloads at their new slots would, at
 * the cost of a pass over the entries instead of a parse of every payload.
 * NDL_NOMEM: nothing made. */
ndl_status field_index_remapped(const field_index *fi, const uint32_t *remap, uint32_t slots,
                                field_index **out, ndl_error *err);

/* The slots (among 0..slots-1) that a leaf node on this field's path
 * (CMP other than NE, IN, EXISTS, TEXT) may match, as a new bitmap the
 * caller frees; *exact tells whether they all do. NULL (and *exact false)
 * when the index cannot narrow this node (an operator or operand it does
 * not order, e.g. a range on a keyword field) or memory ran out: then
 * every slot is a candidate, to be checked on its payload. */
roaring_bitmap_t *field_index_leaf(const field_index *fi, const filter_node *n, uint32_t slots,
                                   bool *exact);

#endif
