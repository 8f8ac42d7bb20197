/*
 * read_npy.c -- the npy reader (NumPy's .npy format, versions 1 to 3): the
 * header is a Python dict literal; needle takes '<f4' 2-D C-order arrays and
 * says what to do about any other dtype or shape.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/readers_internal.h"
#include "cli/text.h"

/* A cursor over the npy header, a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), } */
typedef struct npy_cur {
    const char *p, *end;
} npy_cur;

static void npy_ws(npy_cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t' || *c->p == '\r'))
        c->p++;
}

static int npy_eat(npy_cur *c, char ch)
{
    npy_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int npy_str(npy_cur *c, char *out, size_t cap)
{
    npy_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 >= cap)
            return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

static int npy_word(npy_cur *c, const char *w)
{
    npy_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

/* Parse the header dict; shape must be a tuple of up to 8 non-negative ints. */
static int npy_parse_header(const char *path, const char *h, size_t hlen, char *descr,
                            size_t descr_cap, int *fortran, uint64_t *shape, int *ndim)
{
    npy_cur c = {h, h + hlen};
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    if (!npy_eat(&c, '{'))
        return cli_fail(CLI_ERR, "%s: bad npy header (expected a dict)", path);
    while (!npy_eat(&c, '}')) {
        char key[32];
        if (!npy_str(&c, key, sizeof key) || !npy_eat(&c, ':'))
            return cli_fail(CLI_ERR, "%s: bad npy header", path);
        if (strcmp(key, "descr") == 0) {
            if (!npy_str(&c, descr, descr_cap))
                return cli_fail(CLI_ERR, "%s: bad npy header (descr is not a simple dtype string)", path);
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (npy_word(&c, "True"))
                *fortran = 1;
            else if (npy_word(&c, "False"))
                *fortran = 0;
            else
                return cli_fail(CLI_ERR, "%s: bad npy header (fortran_order)", path);
            have_fortran = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!npy_eat(&c, '('))
                return cli_fail(CLI_ERR, "%s: bad npy header (shape)", path);
            *ndim = 0;
            while (!npy_eat(&c, ')')) {
                npy_ws(&c);
                if (c.p >= c.end || *c.p < '0' || *c.p > '9' || *ndim >= 8)
                    return cli_fail(CLI_ERR, "%s: bad npy header (shape)", path);
                uint64_t x = 0;
                while (c.p < c.end && *c.p >= '0' && *c.p <= '9') {
                    if (x > (UINT64_MAX - 9) / 10)
                        return cli_fail(CLI_ERR, "%s: bad npy header (shape too large)", path);
                    x = x * 10 + (uint64_t)(*c.p++ - '0');
                }
                if (c.p < c.end && *c.p == 'L')  /* Python 2 longs */
                    c.p++;
                shape[(*ndim)++] = x;
                if (!npy_eat(&c, ',')) {
                    if (!npy_eat(&c, ')'))
                        return cli_fail(CLI_ERR, "%s: bad npy header (shape)", path);
                    break;
                }
            }
            have_shape = 1;
        } else {
            char shown[80];
            return cli_fail(CLI_ERR, "%s: bad npy header (unknown key '%s')", path,
                            cli_safe_text(key, strlen(key), shown, sizeof shown));
        }
        if (!npy_eat(&c, ',')) {
            if (!npy_eat(&c, '}'))
                return cli_fail(CLI_ERR, "%s: bad npy header", path);
            break;
        }
    }
    if (!have_descr || !have_fortran || !have_shape)
        return cli_fail(CLI_ERR, "%s: bad npy header (needs descr, fortran_order and shape)", path);
    return CLI_OK;
}

int rd_load_npy(cli_vecs *v, const vec_expect *ex)
{
    const char *path = v->path;
    const unsigned char *m = v->map;
    if (v->map_len < 10 || memcmp(m, "\x93NUMPY", 6) != 0)
        return cli_fail(CLI_ERR, "%s: not an npy file (bad magic)", path);
    unsigned major = m[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)m[8] | (size_t)m[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (v->map_len < 12)
            return cli_fail(CLI_ERR, "%s: truncated npy header", path);
        hlen = (size_t)m[8] | (size_t)m[9] << 8 | (size_t)m[10] << 16 | (size_t)m[11] << 24;
        hoff = 12;
    } else {
        return cli_fail(CLI_ERR, "%s: npy format version %u is not supported", path, major);
    }
    if (hlen > v->map_len - hoff)
        return cli_fail(CLI_ERR, "%s: truncated npy header", path);
    char descr[32];
    int fortran = 0, ndim = 0;
    uint64_t shape[8];
    int rc = npy_parse_header(path, (const char *)m + hoff, hlen, descr, sizeof descr, &fortran,
                              shape, &ndim);
    if (rc != CLI_OK)
        return rc;
    if (strcmp(descr, "<f4") != 0) {
        char shown[80];
        return cli_fail(CLI_ERR,
                        "%s: dtype '%s' is not supported; needle reads little-endian float32 "
                        "('<f4'), e.g. a.astype('<f4')", path,
                        cli_safe_text(descr, strlen(descr), shown, sizeof shown));
    }
    if (fortran)
        return cli_fail(CLI_ERR, "%s: Fortran-order arrays are not supported; save a C-order array "
                        "(np.ascontiguousarray)", path);
    if (ndim != 2) {
        char s[128] = "";
        size_t o = 0;
        for (int i = 0; i < ndim && o < sizeof s; i++)
            o += (size_t)snprintf(s + o, sizeof s - o, "%s%llu", i ? ", " : "",
                                  (unsigned long long)shape[i]);
        return cli_fail(CLI_ERR, "%s: array shape (%s) is not 2-D (rows, dimension)", path, s);
    }
    if (shape[1] < NDL_DIM_MIN || shape[1] > NDL_DIM_MAX)
        return cli_fail(CLI_ERR, "%s: dimension %llu is not in %d..%d", path,
                        (unsigned long long)shape[1], NDL_DIM_MIN, NDL_DIM_MAX);
    if (shape[0] == 0)
        return cli_fail(CLI_ERR, "%s: the array has no rows", path);
    v->dim = (uint32_t)shape[1];
    if (ex->dim && v->dim != ex->dim)
        return rd_dim_mismatch(path, "row", 0, v->dim, ex);
    v->data_off = hoff + hlen;
    v->rec_size = (size_t)v->dim * 4;
    v->val_off = 0;
    size_t avail = v->map_len - v->data_off;
    if (shape[0] > avail / v->rec_size) {
        size_t full = avail / v->rec_size;
        return cli_fail(CLI_ERR,
                        "%s: truncated record %zu (shape (%llu, %u) needs %llu bytes of data; "
                        "the file has %zu)", path, full, (unsigned long long)shape[0], v->dim,
                        (unsigned long long)shape[0] * v->rec_size, avail);
    }
    v->n = (size_t)shape[0];
    if (avail != v->n * v->rec_size)
        return cli_fail(CLI_ERR, "%s: %zu unexpected bytes after the array data", path,
                        avail - v->n * v->rec_size);
    if (v->data_off % 4 != 0)
        return cli_fail(CLI_ERR, "%s: misaligned npy data offset %zu", path, v->data_off);
    for (size_t i = 0; i < v->n; i++) {
        const float *row = (const float *)(const void *)(m + v->data_off + i * v->rec_size);
        rc = rd_check_row(path, "row", i, row, v->dim, ex);
        if (rc != CLI_OK)
            return rc;
    }
    return CLI_OK;
}

