/* utf8.h -- strict UTF-8 validation (no overlongs, no surrogates, <= U+10FFFF). */
#ifndef NDL_UTIL_UTF8_H
#define NDL_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True if s[0..len) is valid UTF-8; else *bad_at (may be NULL) gets the
 * offset of the first invalid byte. */
bool utf8_valid(const char *s, size_t len, size_t *bad_at);

#endif
