/*
 * json_number.h -- one JSON number read as jansson reads it, without
 * jansson: for the hot paths that read long arrays of numbers (a search
 * body's vector), where a DOM with one allocation per number costs more
 * than the search.
 */
#ifndef NDL_PAYLOAD_JSON_NUMBER_H
#define NDL_PAYLOAD_JSON_NUMBER_H

#include <stddef.h>

/* Reads the number in JSON's grammar at [p, end) into *out and returns the
 * byte after it, or NULL when there is no number there or jansson would
 * refuse it: an integer (no '.', no exponent) outside int64, which jansson
 * keeps as json_integer, or a real that overflows a double. The value is
 * what jansson gives: the int64 converted to double, or strtod's correctly
 * rounded double (computed directly when that is exact, Clinger's fast
 * path: up to 15 significant digits scaled by an exact power of ten). */
const char *json_read_number(const char *p, const char *end, double *out);

#endif
