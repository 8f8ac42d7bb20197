/*
 * readers_internal.h -- what the vector file readers (readers.c, read_npy.c,
 * read_jsonl.c) share: the row checks and each format's loader. Not for the
 * commands, which use readers.h.
 */
#ifndef NDL_CLI_READERS_INTERNAL_H
#define NDL_CLI_READERS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cli/readers.h"

/* Check one row of values (finite; 0/1 for hamming); what is "record",
 * "row" or "line" and idx its number, for the message. Prints the error;
 * returns an exit code. */
int rd_check_row(const char *path, const char *what, size_t idx, const float *row, uint32_t dim,
                 const vec_expect *ex);

/* Print "<path>: <what> <idx> has <got> values; <ex->dim_why>"; CLI_ERR. */
int rd_dim_mismatch(const char *path, const char *what, size_t idx, uint32_t got,
                    const vec_expect *ex);

/* Validate the mapped file in v (v->path, v->map, v->map_len set) and fill
 * the rest of v. Print the error; return an exit code. */
int rd_load_npy(cli_vecs *v, const vec_expect *ex);
int rd_load_jsonl(cli_vecs *v, const vec_expect *ex);

#endif
