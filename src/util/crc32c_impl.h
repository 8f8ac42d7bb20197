/*
 * crc32c_impl.h -- the two CRC32C implementations behind crc32c(), exposed so
 * tests can check them against each other. Everything else calls crc32c().
 */
#ifndef NDL_UTIL_CRC32C_IMPL_H
#define NDL_UTIL_CRC32C_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* Portable slicing-by-8 (crc32c.c). Same contract as crc32c(). */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);
/* SSE4.2 crc32 instruction (crc32c_hw.c); call only if crc32c_hw_available(). */
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len);
/* 1 if this CPU can run crc32c_hw(). */
int crc32c_hw_available(void);

#endif
