/*
 * fast_vector.c -- the search body's "vector" read without jansson.
 *
 * jansson builds a tree with one allocation per number: for a 128-d search
 * body that is about 45 us, a third of the search itself
 * (docs/BENCHMARKS.md, HTTP server). This reads the top-level "vector"
 * array of a body straight into floats and then blanks that array in the
 * body itself (a 0, then spaces; newlines kept), so jansson parses the rest
 * with every line and column where the client put them. Anything it does
 * not expect -- an escape in a key, a number outside JSON's grammar or
 * beyond what jansson reads (an integer outside int64, a real that
 * overflows a double), a value that is not an array of numbers -- makes it
 * give up before changing anything, and the body goes the ordinary way,
 * which finds and names any error.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Past a string starting at p ('"'), or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Past one value (nested ones by bracket depth, strings skipped whole). */
static const char *skip_value(const char *p, const char *end)
{
    if (p < end && *p == '"')
        return skip_string(p, end);
    int depth = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            if (!(p = skip_string(p, end)))
                return NULL;
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (depth == 0)
                return p;
            depth--;
        } else if (c == ',' && depth == 0)
            return p;
        p++;
        if (depth == 0 && (c == '}' || c == ']'))
            return p;
    }
    return NULL;
}

/* One number in JSON's grammar into *out, read as jansson would; NULL if it
 * is not one or jansson would refuse it. */
static const char *number(const char *p, const char *end, double *out)
{
    const char *s = p;
    bool integer = true;
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (p < end && *p >= '1' && *p <= '9')
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (p < end && *p == '.') {
        integer = false;
        if (++p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = false;
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    char tmp[64];
    if ((size_t)(p - s) >= sizeof tmp)
        return NULL;
    memcpy(tmp, s, (size_t)(p - s));
    tmp[p - s] = '\0';
    errno = 0;
    if (integer) { /* jansson keeps integers as int64 */
        long long v = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            return NULL;
        *out = (double)v;
    } else if (!isfinite(*out = strtod(tmp, NULL))) {
        return NULL;
    }
    return p;
}

bool fast_vector(char *body, size_t len, fast_vec *fv)
{
    memset(fv, 0, sizeof *fv);
    if (!body || len == 0)
        return false;
    char *end = body + len;
    const char *p = ws(body, end);
    if (p >= end || *p++ != '{')
        return false;
    for (;;) {
        p = ws(p, end);
        if (p >= end || *p != '"')
            return false;
        const char *k = p + 1, *kend = skip_string(p, end);
        if (!kend || memchr(k, '\\', (size_t)(kend - 1 - k)))
            return false;
        bool is_vector = kend - 1 - k == 6 && memcmp(k, "vector", 6) == 0;
        p = ws(kend, end);
        if (p >= end || *p++ != ':')
            return false;
        p = ws(p, end);
        if (is_vector)
            break;
        if (!(p = skip_value(p, end)))
            return false;
        p = ws(p, end);
        if (p >= end || *p++ != ',')
            return false;
    }
    if (p >= end || *p != '[')
        return false;
    char *vstart = body + (p - body);
    p++;
    size_t cap = 0;
    for (bool first = true;; first = false) {
        p = ws(p, end);
        if (p < end && *p == ']' && first)
            break;
        double d;
        if (!(p = number(p, end, &d)))
            goto fail;
        if (fv->n == cap) {
            cap = cap ? cap * 2 : 256;
            float *v = cap <= NDL_DIM_MAX * 2u ? realloc(fv->v, cap * sizeof *v) : NULL;
            if (!v)
                goto fail;
            fv->v = v;
        }
        fv->v[fv->n++] = (float)d;
        p = ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == ']')
            break;
        goto fail;
    }
    p++; /* the ']' */
    *vstart = '0';
    for (char *q = vstart + 1; q < body + (p - body); q++)
        if (*q != '\n')
            *q = ' ';
    return true;
fail:
    free(fv->v);
    memset(fv, 0, sizeof *fv);
    return false;
}

void fast_vector_free(fast_vec *fv)
{
    free(fv->v);
    memset(fv, 0, sizeof *fv);
}
