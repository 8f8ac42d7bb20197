/*
 * filter_candidates.h -- the slots a filter may match, from the payload
 * indexes of the fields it names (field_index.h): the planner's estimate,
 * and the whole answer when every field it needs is indexed.
 */
#ifndef NDL_PAYLOAD_FILTER_CANDIDATES_H
#define NDL_PAYLOAD_FILTER_CANDIDATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

#include "payload/field_index.h"
#include "payload/filter.h"

/* Slots among 0..slots-1 that may match f, as a new bitmap (the caller
 * frees it), NULL meaning every slot; *exact: every slot given does match
 * (then no payload needs checking). Hidden slots are not taken out here.
 * Out of memory gives NULL and *exact false (check every payload). Call
 * with the indexes' lock held (shared). */
roaring_bitmap_t *filter_candidates(const filter *f, field_index *const *fields, size_t nfields,
                                    uint32_t slots, bool *exact);

#endif
