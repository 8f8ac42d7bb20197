/*
 * text.h -- UTF-8 helpers of the CLI: checking one sequence (the JSON lines
 * reader) and making untrusted bytes (file contents, ids) safe to show in an
 * error message.
 */
#ifndef NDL_CLI_TEXT_H
#define NDL_CLI_TEXT_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at p (p < end), or 0 if invalid. */
size_t cli_utf8_seq(const unsigned char *p, const unsigned char *end);

/* Copy n bytes of s into out (cap >= 8) for an error message and return out:
 * valid UTF-8 stays, control characters and invalid bytes become \xHH, and a
 * text too long for out ends in "...". */
const char *cli_safe_text(const char *s, size_t n, char *out, size_t cap);

#endif
