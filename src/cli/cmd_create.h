/*
 * cmd_create.h -- the collection-config options shared by `needle create`
 * and `needle import` (which creates a collection when given --metric).
 */
#ifndef NDL_CLI_CMD_CREATE_H
#define NDL_CLI_CMD_CREATE_H

#include <stddef.h>

#include "cli/args.h"
#include "needle.h"

/* Options as given (NULL when absent). */
typedef struct create_opts {
    const cli_opt *dim, *metric, *index, *m, *ef_construction, *nlist, *quantization, *field;
} create_opts;

/* Check the options and fill cfg (defaults for what is absent). Prints a
 * usage error and returns CLI_USAGE on a bad or unsupported value. */
int create_opts_parse(const create_opts *in, ndl_collection_config *cfg);

/* "dimension 128, metric l2, index hnsw (m=16, ef_construction=200)" */
void create_describe(const ndl_collection_config *cfg, char *buf, size_t size);

#endif
