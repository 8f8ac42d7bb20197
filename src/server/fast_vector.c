/*
 * fast_vector.c -- the search body's "vector" read without jansson.
 *
 * jansson builds a tree with one allocation per number: for a 128-d search
 * body that is about 45 us, a third of the search itself
 * (docs/BENCHMARKS.md, HTTP server). This reads the top-level "vector"
 * array of a body straight into floats (payload/json_number.c) and copies
 * the body without it (the array cut down to a 0) for jansson to parse:
 * a few dozen bytes instead of a DOM of numbers, or, as it did before, a
 * kilobyte of blanks read through jansson's stream a byte at a time.
 * Anything it does not expect -- an escape in a key, a number outside
 * JSON's grammar or beyond what jansson reads (an integer outside int64, a
 * real that overflows a double), a value that is not an array of numbers --
 * makes it give up, and the body goes the ordinary way, which finds and
 * names any error. If the copy does not parse, the caller parses the body
 * itself, so that the error names the line and column the client sent.
 */
#include <stdlib.h>
#include <string.h>

#include "payload/json_number.h"
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

bool fast_vector(const char *body, size_t len, fast_vec *fv)
{
    memset(fv, 0, sizeof *fv);
    if (!body || len == 0)
        return false;
    const char *end = body + len;
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
    const char *vstart = p;
    p++;
    size_t cap = 0;
    for (bool first = true;; first = false) {
        p = ws(p, end);
        if (p < end && *p == ']' && first)
            break;
        double d;
        if (!(p = json_read_number(p, end, &d)))
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
    /* the rest for jansson: the body with the array cut down to a 0 */
    size_t head = (size_t)(vstart - body) + 1, tail = (size_t)(end - p);
    if (!(fv->rest = malloc(head + tail)))
        goto fail;
    memcpy(fv->rest, body, head);
    fv->rest[head - 1] = '0';
    memcpy(fv->rest + head, p, tail);
    fv->rest_len = head + tail;
    return true;
fail:
    fast_vector_free(fv);
    return false;
}

void fast_vector_free(fast_vec *fv)
{
    free(fv->v);
    free(fv->rest);
    memset(fv, 0, sizeof *fv);
}
