/*
 * crc32c_hw.c -- CRC32C with the SSE4.2 crc32 instruction, 8 bytes per step.
 * The only file built with -msse4.2; crc32c() calls it only after checking
 * the CPU (crc32c.c). Off x86-64 it is a plain alias of the software version.
 */
#include "util/crc32c_impl.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    /* Align so the 8-byte loads never straddle a cache line. */
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

#else

uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    return crc32c_sw(crc, data, len);
}

#endif
