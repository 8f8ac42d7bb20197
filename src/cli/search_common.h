/*
 * search_common.h -- what `needle search` and `needle bench` share: loading
 * a query file checked against a collection's dimension and metric.
 */
#ifndef NDL_CLI_SEARCH_COMMON_H
#define NDL_CLI_SEARCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "needle.h"

/* Load every query of path (format from its extension) as nq * dim floats
 * (*out, caller frees). Each must have the collection's dimension and finite
 * values. Prints the error and returns an exit code. */
int load_queries(ndl_collection *c, const char *name, const char *path, float **out, size_t *nq,
                 uint32_t *dim);

#endif
