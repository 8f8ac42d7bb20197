/*
 * readers.c -- the vector file readers of readers.h: format names, mapping
 * files, the checks every row gets, fvecs/bvecs and ivecs (records of
 * <int32 dim><dim values>). npy lives in read_npy.c, JSON lines in
 * read_jsonl.c.
 */
#include "cli/readers.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/readers_internal.h"

/* ------------------------------------------------------------ formats */

cli_format cli_format_parse(const char *name)
{
    if (strcmp(name, "fvecs") == 0)
        return FMT_FVECS;
    if (strcmp(name, "bvecs") == 0)
        return FMT_BVECS;
    if (strcmp(name, "npy") == 0)
        return FMT_NPY;
    if (strcmp(name, "jsonl") == 0 || strcmp(name, "ndjson") == 0)
        return FMT_JSONL;
    return FMT_UNKNOWN;
}

cli_format cli_format_of_path(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (!dot)
        return FMT_UNKNOWN;
    if (strcmp(dot, ".ivecs") == 0)
        return FMT_IVECS;
    if (strcmp(dot, ".json") == 0)
        return FMT_UNKNOWN;
    return cli_format_parse(dot + 1);
}

const char *cli_format_name(cli_format f)
{
    switch (f) {
    case FMT_FVECS: return "fvecs";
    case FMT_BVECS: return "bvecs";
    case FMT_NPY: return "npy";
    case FMT_JSONL: return "jsonl";
    case FMT_IVECS: return "ivecs";
    default: return "unknown";
    }
}

/* ------------------------------------------------------------ files */

/* Map a whole regular file read-only. Empty files are an error (nothing to
 * read), as are directories and pipes. */
static int map_file(const char *path, const unsigned char **map, size_t *len)
{
    *map = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(CLI_ERR, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return cli_fail(CLI_ERR, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cli_fail(CLI_ERR, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return cli_fail(CLI_ERR, "%s: file is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return cli_fail(CLI_ERR, "%s: cannot map: %s", path, strerror(e));
    *map = p;
    *len = (size_t)st.st_size;
    return CLI_OK;
}

static int32_t read_i32(const unsigned char *p)
{
    int32_t v;
    memcpy(&v, p, 4);  /* the formats are little-endian, as is every supported host */
    return v;
}

/* ------------------------------------------------------------ value checks */

static const char *nonfinite_name(float x)
{
    return isnan(x) ? "NaN" : x > 0 ? "Inf" : "-Inf";
}

int rd_check_row(const char *path, const char *what, size_t idx, const float *row, uint32_t dim,
                 const vec_expect *ex)
{
    for (uint32_t j = 0; j < dim; j++) {
        float x = row[j];
        if (!isfinite(x))
            return cli_fail(CLI_ERR, "%s: %s %zu has a non-finite value (%s) at position %u",
                            path, what, idx, nonfinite_name(x), j);
        if (ex->binary01 && x != 0.0f && x != 1.0f)
            return cli_fail(CLI_ERR,
                            "%s: %s %zu has value %g at position %u; metric hamming takes 0/1 values",
                            path, what, idx, (double)x, j);
    }
    return CLI_OK;
}

int rd_dim_mismatch(const char *path, const char *what, size_t idx, uint32_t got,
                    const vec_expect *ex)
{
    return cli_fail(CLI_ERR, "%s: %s %zu has %u values; %s", path, what, idx, got, ex->dim_why);
}

/* ------------------------------------------------------------ fvecs / bvecs */

static int load_xvecs(cli_vecs *v, const vec_expect *ex, size_t elem)
{
    const char *path = v->path;
    const char *kind = elem == 4 ? "fvecs" : "bvecs";
    if (v->map_len < 4)
        return cli_fail(CLI_ERR, "%s: truncated record 0 (file size %zu is shorter than a %s header)",
                        path, v->map_len, kind);
    int32_t d = read_i32(v->map);
    if (d < NDL_DIM_MIN || d > NDL_DIM_MAX)
        return cli_fail(CLI_ERR, "%s: record 0 claims dimension %d (not in %d..%d); is this an %s file?",
                        path, (int)d, NDL_DIM_MIN, NDL_DIM_MAX, kind);
    if (ex->dim && (uint32_t)d != ex->dim)
        return rd_dim_mismatch(path, "record", 0, (uint32_t)d, ex);
    size_t rec = 4 + (size_t)d * elem;
    if (v->map_len % rec != 0)
        return cli_fail(CLI_ERR, "%s: truncated record %zu (file size %zu is not a multiple of %zu)",
                        path, v->map_len / rec, v->map_len, rec);
    v->dim = (uint32_t)d;
    v->n = v->map_len / rec;
    v->data_off = 0;
    v->rec_size = rec;
    v->val_off = 4;
    float *tmp = elem == 1 ? malloc((size_t)d * sizeof *tmp) : NULL;
    if (elem == 1 && !tmp)
        return cli_fail(CLI_ERR, "out of memory");
    int rc = CLI_OK;
    for (size_t i = 0; i < v->n && rc == CLI_OK; i++) {
        const unsigned char *r = v->map + i * rec;
        int32_t di = read_i32(r);
        if (di != d) {
            rc = cli_fail(CLI_ERR,
                          "%s: record %zu claims dimension %d but record 0 has %d "
                          "(misaligned or mixed file)", path, i, (int)di, (int)d);
            break;
        }
        if (elem == 4) {
            rc = rd_check_row(path, "record", i, (const float *)(const void *)(r + 4), (uint32_t)d, ex);
        } else if (ex->binary01) {
            for (int32_t j = 0; j < d; j++)
                tmp[j] = r[4 + j];
            rc = rd_check_row(path, "record", i, tmp, (uint32_t)d, ex);
        }
    }
    free(tmp);
    return rc;
}

/* ------------------------------------------------------------ public */

int vecs_load(const char *path, cli_format fmt, const vec_expect *ex, cli_vecs *out)
{
    memset(out, 0, sizeof *out);
    out->path = path;
    if (fmt == FMT_UNKNOWN) {
        fmt = cli_format_of_path(path);
        if (fmt == FMT_UNKNOWN || fmt == FMT_IVECS)
            return cli_fail(CLI_USAGE, "cannot tell the format of '%s' from its name; use a "
                            ".fvecs, .bvecs, .npy or .jsonl file or give --format", path);
    }
    out->fmt = fmt;
    int rc = map_file(path, &out->map, &out->map_len);
    if (rc != CLI_OK)
        return rc;
    switch (fmt) {
    case FMT_FVECS: rc = load_xvecs(out, ex, 4); break;
    case FMT_BVECS: rc = load_xvecs(out, ex, 1); break;
    case FMT_NPY: rc = rd_load_npy(out, ex); break;
    case FMT_JSONL: rc = rd_load_jsonl(out, ex); break;
    default: rc = cli_fail(CLI_USAGE, "unsupported format '%s'", cli_format_name(fmt)); break;
    }
    if (fmt == FMT_JSONL && out->map) {
        munmap((void *)out->map, out->map_len);  /* everything was copied out */
        out->map = NULL;
    }
    if (rc != CLI_OK)
        vecs_free(out);
    return rc;
}

void vecs_rows(const cli_vecs *v, size_t first, size_t count, float *out)
{
    size_t d = v->dim;
    if (v->rows) {
        memcpy(out, v->rows + first * d, count * d * sizeof(float));
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const unsigned char *r = v->map + v->data_off + (first + i) * v->rec_size + v->val_off;
        if (v->fmt == FMT_BVECS) {
            for (size_t k = 0; k < d; k++)
                out[i * d + k] = r[k];
        } else {
            memcpy(out + i * d, r, d * sizeof(float));
        }
    }
}

const char *vecs_payload(const cli_vecs *v, size_t i)
{
    return v->pay_off && v->pay_off[i] ? v->pay_pool + v->pay_off[i] - 1 : NULL;
}

void vecs_free(cli_vecs *v)
{
    if (v->map)
        munmap((void *)v->map, v->map_len);
    free(v->rows);
    free(v->ids);
    free(v->pool);
    free(v->pay_off);
    free(v->pay_pool);
    memset(v, 0, sizeof *v);
}

int ivecs_load(const char *path, cli_ivecs *out)
{
    memset(out, 0, sizeof *out);
    int rc = map_file(path, &out->map, &out->map_len);
    if (rc != CLI_OK)
        return rc;
    size_t cap = 0, pos = 0;
    while (pos < out->map_len) {
        if (out->map_len - pos < 4) {
            rc = cli_fail(CLI_ERR, "%s: truncated record %zu (%zu stray bytes at the end)", path,
                          out->n, out->map_len - pos);
            break;
        }
        int32_t d = read_i32(out->map + pos);
        if (d < 0 || d > NDL_K_MAX * 100) {
            rc = cli_fail(CLI_ERR, "%s: record %zu claims %d values; is this an ivecs file?", path,
                          out->n, (int)d);
            break;
        }
        if ((size_t)d > (out->map_len - pos - 4) / 4) {
            rc = cli_fail(CLI_ERR, "%s: truncated record %zu (it claims %d values; the file "
                          "ends after %zu bytes of it)", path, out->n, (int)d,
                          out->map_len - pos - 4);
            break;
        }
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            size_t *no = realloc(out->off, nc * sizeof *no);
            if (no)
                out->off = no;
            uint32_t *nl = no ? realloc(out->len, nc * sizeof *nl) : NULL;
            if (nl)
                out->len = nl;
            if (!no || !nl) {
                rc = cli_fail(CLI_ERR, "out of memory");
                break;
            }
            cap = nc;
        }
        out->off[out->n] = pos + 4;
        out->len[out->n] = (uint32_t)d;
        out->n++;
        pos += 4 + (size_t)d * 4;
    }
    if (rc != CLI_OK)
        ivecs_free(out);
    return rc;
}

int32_t ivecs_at(const cli_ivecs *v, size_t row, size_t col)
{
    return read_i32(v->map + v->off[row] + col * 4);
}

void ivecs_free(cli_ivecs *v)
{
    if (v->map)
        munmap((void *)v->map, v->map_len);
    free(v->off);
    free(v->len);
    memset(v, 0, sizeof *v);
}
