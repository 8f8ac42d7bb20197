/*
 * bitmap_words.c -- bit words to a CRoaring bitmap through the portable
 * serialization format (bitmap_words.h).
 *
 * The stream without run containers: cookie 12346 (u32), container count
 * (u32); per container its key (high 16 bits of its slots, u16) and
 * cardinality - 1 (u16); per container the byte offset of its data (u32);
 * then the data: an array container is its sorted low 16 bits (u16 each),
 * a bitset container (cardinality > 4096) its 1,024 words. All little
 * endian.
 */
#include "payload/bitmap_words.h"

#include <string.h>

#include "util/alloc.h"
#include "util/base.h"
#include "util/le.h"

#define CHUNK_WORDS 1024 /* 65,536 slots */
#define ARRAY_MAX 4096   /* above this a chunk is a bitset container */
#define COOKIE_NO_RUN 12346u

roaring_bitmap_t *bitmap_from_words(const uint64_t *words, size_t nwords)
{
    size_t nchunks = (nwords + CHUNK_WORDS - 1) / CHUNK_WORDS;
    uint32_t *card = ndl_malloc((nchunks ? nchunks : 1) * sizeof *card);
    if (!card)
        return NULL;
    size_t containers = 0, data = 0;
    for (size_t c = 0; c < nchunks; c++) {
        size_t end = NDL_MIN(nwords, (c + 1) * CHUNK_WORDS);
        uint32_t n = 0;
        for (size_t w = c * CHUNK_WORDS; w < end; w++)
            n += (uint32_t)__builtin_popcountll(words[w]);
        card[c] = n;
        if (n) {
            containers++;
            data += n > ARRAY_MAX ? CHUNK_WORDS * 8 : (size_t)n * 2;
        }
    }
    size_t head = 8 + containers * 8;
    uint8_t *buf = ndl_malloc(head + data);
    if (!buf) {
        ndl_free(card);
        return NULL;
    }
    le_put32(buf, COOKIE_NO_RUN);
    le_put32(buf + 4, (uint32_t)containers);
    size_t at = head, i = 0;
    for (size_t c = 0; c < nchunks; c++) {
        if (!card[c])
            continue;
        le_put16(buf + 8 + i * 4, (uint16_t)c);
        le_put16(buf + 10 + i * 4, (uint16_t)(card[c] - 1));
        le_put32(buf + 8 + containers * 4 + i * 4, (uint32_t)at);
        size_t first = c * CHUNK_WORDS, end = NDL_MIN(nwords, first + CHUNK_WORDS);
        if (card[c] > ARRAY_MAX) {
            memset(buf + at, 0, CHUNK_WORDS * 8);
            for (size_t w = first; w < end; w++)
                le_put64(buf + at + (w - first) * 8, words[w]);
            at += CHUNK_WORDS * 8;
        } else {
            for (size_t w = first; w < end; w++)
                for (uint64_t m = words[w]; m; m &= m - 1) {
                    le_put16(buf + at, (uint16_t)((w - first) * 64 + (unsigned)__builtin_ctzll(m)));
                    at += 2;
                }
        }
        i++;
    }
    roaring_bitmap_t *b = roaring_bitmap_portable_deserialize((const char *)buf);
    ndl_free(buf);
    ndl_free(card);
    return b;
}
