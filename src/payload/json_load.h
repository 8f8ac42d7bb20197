/*
 * json_load.h -- a JSON object text to a jansson value, with every check
 * and message of the payload rules (json.h): UTF-8, nesting depth checked
 * before jansson recurses, strict JSON with line and column, duplicate
 * keys, number ranges, an object at the top. For modules that already use
 * jansson (filters); implemented in json.c, next to the allocation hook.
 */
#ifndef NDL_PAYLOAD_JSON_LOAD_H
#define NDL_PAYLOAD_JSON_LOAD_H

#include <stddef.h>

#include <jansson.h>

#include "util/base.h"

/* Parses s[0..len) into *out (release with json_decref). `what` starts the
 * messages ("payload", "filter": "filter is not valid JSON at line 1 column
 * 8: ..."); a rule broken gives `bad` (NDL_INVALID, or NDL_CORRUPT for
 * stored text), memory running out NDL_NOMEM; *out is NULL then. */
ndl_status json_load_object(const char *what, ndl_status bad, const char *s, size_t len, json_t **out,
                            ndl_error *err);

#endif
