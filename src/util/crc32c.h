/* crc32c.h -- CRC32C (Castagnoli), hardware-accelerated with SSE4.2 when the
 * CPU has it (crc32c_hw.c), a slicing table otherwise (crc32c.c). */
#ifndef NDL_UTIL_CRC32C_H
#define NDL_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over len bytes. crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
