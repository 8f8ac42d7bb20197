/*
 * search_common.h -- what `needle search` and `needle bench` share: loading
 * the common argument checks, and loading a query file checked against a
 * collection's dimension and metric.
 */
#ifndef NDL_CLI_SEARCH_COMMON_H
#define NDL_CLI_SEARCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "cli/args.h"
#include "needle.h"

/* Load every query of path (format from its extension) as nq * dim floats
 * (*out, caller frees). Each must have the collection's dimension and finite
 * values. Prints the error and returns an exit code. */
int load_queries(ndl_collection *c, const char *name, const char *path, float **out, size_t *nq,
                 uint32_t *dim);

/* The checks search and bench share after parsing: a valid collection NAME
 * (returned in *name), --queries and --k given, and no --nprobe (ivf is not
 * there yet). Prints a usage error naming `command` and returns its exit
 * code, or CLI_OK. */
int query_args_check(const char *command, const char *const *pos, size_t npos,
                     const cli_opt *queries, const cli_opt *k, const cli_opt *nprobe,
                     const char **name);

#endif
