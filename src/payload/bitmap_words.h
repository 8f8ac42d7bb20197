/*
 * bitmap_words.h -- a CRoaring bitmap from plain bit words (bit s of word
 * s/64 set = slot s), built at memory speed.
 *
 * Why: a broad range on a numeric field marks its slots in bit words
 * (field_index.c); handing them to roaring_bitmap_add_many one slot at a
 * time cost ~0.5 ms for 58,000 slots, more than the filtered walk it
 * serves (bench/filtered.sh, wordnet-glosses). CRoaring 0.2 has no
 * "from bitset"; its portable serialization format (RoaringFormatSpec,
 * stable across versions) does: we write each 65,536-slot chunk as a
 * bitset container (a copy of its 1,024 words) or, when it holds 4,096
 * slots or fewer, an array container, and deserialize once.
 */
#ifndef NDL_PAYLOAD_BITMAP_WORDS_H
#define NDL_PAYLOAD_BITMAP_WORDS_H

#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

/* A new bitmap of the set bits of words[0..nwords); NULL: out of memory. */
roaring_bitmap_t *bitmap_from_words(const uint64_t *words, size_t nwords);

#endif
