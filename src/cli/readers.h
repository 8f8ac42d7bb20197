/*
 * readers.h -- reading vector files for import, search and bench: fvecs,
 * bvecs, npy (little-endian float32, C order, 2-D) and JSON lines
 * ({"id":..,"vector":[..],"payload":{..}}), plus ivecs ground-truth files.
 * A file is validated completely when loaded, so a caller can check
 * everything before writing anything; every error names the file and the
 * record or line at fault.
 */
#ifndef NDL_CLI_READERS_H
#define NDL_CLI_READERS_H

#include <stddef.h>
#include <stdint.h>

#include "needle.h"

typedef enum cli_format {
    FMT_UNKNOWN = 0,
    FMT_FVECS,
    FMT_BVECS,
    FMT_NPY,
    FMT_JSONL,
    FMT_IVECS
} cli_format;

/* "fvecs", "bvecs", "npy", "jsonl" (also "ndjson"); FMT_UNKNOWN otherwise. */
cli_format cli_format_parse(const char *name);
/* By file extension; FMT_UNKNOWN if it tells nothing. */
cli_format cli_format_of_path(const char *path);
const char *cli_format_name(cli_format f);

/* What the loaded vectors must satisfy besides being well-formed. */
typedef struct vec_expect {
    uint32_t dim;         /* 0: any; else every row must have this many values */
    const char *dim_why;  /* says where dim comes from: "collection 'x' has dimension 128" */
    int binary01;         /* metric hamming: every value must be 0 or 1 */
    int need_ids;         /* jsonl: every line must carry "id" (import) */
    uint32_t max_payload_bytes; /* jsonl: keep each line's "payload", which must be
                                   a payload the library accepts (a JSON object,
                                   payload/json.h) of at most this many bytes as
                                   given and once canonical; 0: payloads are only
                                   checked to be JSON, then skipped (queries) */
} vec_expect;

/* A validated vector file. Binary formats stay mapped and are converted a
 * batch at a time; JSON lines are parsed into memory. */
typedef struct cli_vecs {
    cli_format fmt;
    const char *path;           /* borrowed from the caller */
    size_t n;                   /* rows */
    uint32_t dim;
    const unsigned char *map;   /* mapped file (binary formats) */
    size_t map_len;
    size_t data_off;            /* first record */
    size_t rec_size;            /* bytes per record */
    size_t val_off;             /* values inside a record */
    float *rows;                /* jsonl: n * dim floats */
    ndl_id *ids;                /* jsonl: one per row (NULL when the lines carry none) */
    char *pool;                 /* jsonl: bytes of the string ids */
    int has_str_ids;            /* some id is a string */
    size_t *pay_off;            /* jsonl: per row, 1 + offset of its payload in
                                   pay_pool, 0 for none; NULL when no line has one */
    char *pay_pool;             /* jsonl: canonical payload texts, each NUL-terminated */
} cli_vecs;

/* Load and validate path. fmt FMT_UNKNOWN means "from the extension".
 * Prints the error ("needle: base.fvecs: truncated record 17 (...)") and
 * returns CLI_ERR (CLI_USAGE when the format cannot be told); CLI_OK else. */
int vecs_load(const char *path, cli_format fmt, const vec_expect *ex, cli_vecs *out);
/* Copy rows [first, first+count) as floats into out (count * dim). */
void vecs_rows(const cli_vecs *v, size_t first, size_t count, float *out);
/* Canonical payload text of row i (NUL-terminated), or NULL for none. */
const char *vecs_payload(const cli_vecs *v, size_t i);
void vecs_free(cli_vecs *v);

/* An ivecs file (rows of int32, lengths may differ). */
typedef struct cli_ivecs {
    size_t n;
    const unsigned char *map;
    size_t map_len;
    size_t *off;     /* byte offset of row i's first value */
    uint32_t *len;   /* values in row i */
} cli_ivecs;

int ivecs_load(const char *path, cli_ivecs *out);
int32_t ivecs_at(const cli_ivecs *v, size_t row, size_t col);
void ivecs_free(cli_ivecs *v);

#endif
