/*
 * tokens.h -- the words of a text, as $text matches them (and as a later
 * inverted index will store them): a token is a maximal run of bytes that
 * are ASCII letters, ASCII digits or any byte >= 0x80 (so UTF-8 letters stay
 * inside words); every other byte separates. ASCII letters compare
 * lower-cased; other bytes compare as they are (no Unicode case folding or
 * stemming yet: full BM25 analysis comes later).
 *
 * Spans point into the caller's text; nothing is allocated.
 */
#ifndef NDL_PAYLOAD_TOKENS_H
#define NDL_PAYLOAD_TOKENS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct token_span {
    size_t start; /* offset in the text */
    size_t len;   /* > 0 */
} token_span;

/* The first token of s[*pos..len) into *tok, *pos moved past it; false when
 * no token is left. Start with *pos = 0:
 *   for (size_t pos = 0; token_next(s, len, &pos, &t);) ... */
bool token_next(const char *s, size_t len, size_t *pos, token_span *tok);

/* Number of tokens in s[0..len). */
size_t token_count(const char *s, size_t len);

/* The folded (ASCII lower-cased) form of s[0..n) into dst[0..n). */
void token_fold(char *dst, const char *src, size_t n);

/* True if the token s[0..n) equals the already folded token folded[0..m). */
bool token_equal_folded(const char *s, size_t n, const char *folded, size_t m);

#endif
