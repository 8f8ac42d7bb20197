/*
 * json_scan.h -- small iterative scans of raw JSON text that do not need a
 * parser: nesting depth (run before a recursive parser so no input can
 * exhaust the stack) and byte offset -> line:column for messages.
 */
#ifndef NDL_PAYLOAD_JSON_SCAN_H
#define NDL_PAYLOAD_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

/* Scans s[0..len) counting '{' / '[' outside strings (escapes respected) as
 * depth and '}' / ']' as leaving a level. Returns true if the depth never
 * exceeds max_depth; else false with *at = offset of the first bracket that
 * goes deeper. Text that is not JSON is scanned the same way; its syntax
 * errors are left to the parser (whose depth can never exceed the count). */
bool json_depth_within(const char *s, size_t len, unsigned max_depth, size_t *at);

/* 1-based line and column of byte offset off (<= len) in s: lines end at
 * '\n'; columns count code points (UTF-8 lead bytes), as jansson does. */
void json_line_col(const char *s, size_t off, size_t *line, size_t *col);

/* True if s[0..len) holds only JSON whitespace (space, tab, CR, LF). */
bool json_blank(const char *s, size_t len);

#endif
