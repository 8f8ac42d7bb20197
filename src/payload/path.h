/*
 * path.h -- where a dotted field name leads in a payload, by MongoDB's
 * rules (filter.h says them): the one walk that both filters (matching)
 * and field indexes (indexing) take, so that an index holds exactly the
 * values a filter would look at.
 */
#ifndef NDL_PAYLOAD_PATH_H
#define NDL_PAYLOAD_PATH_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

/* Called for each end of the path: a value (scalar, array or object), or
 * NULL for "missing". Return true to stop the walk. */
typedef bool (*path_visit)(void *ctx, const json_t *end);

/* Walks parts[0..nparts) from v (the payload object, or NULL for a point
 * without one). Returns true if a visit stopped it. Recursion is bounded
 * by the payload's depth. */
bool path_walk(const json_t *v, const char *const *parts, uint32_t nparts, path_visit visit,
               void *ctx);

/* A dotted name's parts, as filters and field indexes both take them. */
/* true if dotted (not empty) starts or ends with a dot or holds "..". */
bool path_has_empty_part(const char *dotted);
/* 1 + the dots of dotted. */
uint32_t path_part_count(const char *dotted);
/* Copies dotted into buf (strlen + 1 bytes), ends each part at its dot and
 * points parts[0 .. path_part_count(dotted)) at them. */
void path_split(const char *dotted, char *buf, const char **parts);

#endif
