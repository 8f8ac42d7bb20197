/*
 * json_print.h -- compact JSON text of a jansson value, with reals in their
 * shortest round-trip form (jansson's own json_dumps always prints 17
 * significant digits: 0.1 -> 0.10000000000000001). Internal to the payload
 * module and to other modules that already use jansson.
 */
#ifndef NDL_PAYLOAD_JSON_PRINT_H
#define NDL_PAYLOAD_JSON_PRINT_H

#include <stddef.h>

#include <jansson.h>

#include "util/base.h"

/* Deepest value json_print_compact prints (it recurses once per level). */
#define JSON_PRINT_MAX_DEPTH 256

/* Compact text of v (any JSON type) into *out (ndl_malloc'd, NUL-terminated,
 * *out_len without the NUL). size_hint: expected length, 0 if unknown.
 * NDL_NOMEM on allocation failure; NDL_INVALID for a value deeper than
 * JSON_PRINT_MAX_DEPTH or a non-finite real. Nothing is allocated on failure. */
ndl_status json_print_compact(const json_t *v, size_t size_hint, char **out, size_t *out_len, ndl_error *err);

/* Writes the JSON text of a finite double into buf (at least 32 bytes): the
 * shortest of %.15g, %.16g, %.17g that reads back to exactly d, with '.'
 * as decimal point whatever the locale, "e-7" rather than "e-07", and ".0"
 * appended when the text would otherwise read back as an integer.
 * Returns the length, or 0 if d is not finite. Costs up to three
 * snprintf+strtod pairs (~21 MB/s of output for float32-valued doubles, which
 * need 17 digits): fine for payloads; print float32 values with
 * json_format_float. */
size_t json_format_real(double d, char *buf);

/* Writes the shortest text (%.6g to %.9g) that reads back to exactly f into
 * buf (at least 32 bytes): 0.6f -> "0.6", not %.9g's "0.600000024".
 * Returns the length, or 0 if f is not finite (write null). */
size_t json_format_float(float f, char *buf);

/* Writes exactly what snprintf(buf, 32, "%.9g", (double)f) writes (nine
 * significant digits: enough to read back to f, in one pass) and returns
 * its length, or 0 if f is not finite (write null). Computed in integers
 * for the floats whose exact decimal value fits 128 bits (|f| >= 2^-21 or
 * so, and every larger float), snprintf otherwise: scores and distances,
 * printed 20 times per search answer, cost a quarter of what glibc's
 * printf takes. */
size_t json_format_float9(float f, char *buf);

/* The JSON escape of byte c into esc: its length (2 or 6), or 0 when c
 * stands for itself in a JSON string (any byte >= 0x20 but '"' and '\\'). */
size_t json_escape(unsigned char c, char esc[6]);

/* The type of v for messages: "an object", "an array", "a string",
 * "a number", "a boolean" or "null". */
const char *json_type_phrase(const json_t *v);

#endif
