/*
 * reply.c -- building answers: a byte buffer with JSON writers for the hot
 * paths (search hits and points are written directly, payloads spliced in as
 * their stored canonical text), and the error body of SPEC section 6.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload/json_print.h"
#include "server/server_internal.h"

static bool grow(sbuf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void sbuf_put(sbuf *b, const char *s, size_t n)
{
    if (!grow(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sbuf_puts(sbuf *b, const char *s) { sbuf_put(b, s, strlen(s)); }

void sbuf_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sbuf_put(b, tmp, (size_t)n);
        return;
    }
    if (!grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sbuf_json_string(sbuf *b, const char *s, size_t n)
{
    sbuf_put(b, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        char esc[6];
        size_t len = json_escape((unsigned char)s[i], esc);
        if (!len)
            continue;
        sbuf_put(b, s + run, i - run);
        run = i + 1;
        sbuf_put(b, esc, len);
    }
    sbuf_put(b, s + run, n - run);
    sbuf_put(b, "\"", 1);
}

void sbuf_score(sbuf *b, float v)
{
    if (!isfinite(v)) {
        sbuf_put(b, "null", 4);
        return;
    }
    char tmp[32];
    sbuf_put(b, tmp, json_format_float9(v, tmp)); /* %.9g: exact for a float */
}

void sbuf_float(sbuf *b, float v)
{
    char tmp[32];
    size_t n = json_format_float(v, tmp);
    if (n)
        sbuf_put(b, tmp, n);
    else
        sbuf_put(b, "null", 4);
}

void sbuf_vector(sbuf *b, const float *v, uint32_t dim)
{
    sbuf_put(b, "[", 1);
    for (uint32_t j = 0; j < dim; j++) {
        if (j)
            sbuf_put(b, ",", 1);
        sbuf_float(b, v[j]);
    }
    sbuf_put(b, "]", 1);
}

void sbuf_u64(sbuf *b, uint64_t v)
{
    char tmp[20];
    size_t n = sizeof tmp;
    do
        tmp[--n] = (char)('0' + v % 10);
    while (v /= 10);
    sbuf_put(b, tmp + n, sizeof tmp - n);
}

void sbuf_id(sbuf *b, ndl_id id)
{
    if (id.str)
        sbuf_json_string(b, id.str, id.len);
    else
        sbuf_u64(b, id.num);
}

void sbuf_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- answers */

void reply_buf(srv_req *r, unsigned status)
{
    if (r->out.failed) {
        sbuf_free(&r->out);
        reply_error(r, 503, "out_of_memory", "out of memory building the answer");
        return;
    }
    r->status = status;
}

void reply_json(srv_req *r, unsigned status, json_t *body)
{
    sbuf_free(&r->out);
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(body);
    if (!text) {
        r->out.failed = true;
        reply_buf(r, status);
        return;
    }
    sbuf_puts(&r->out, text);
    free(text);
    reply_buf(r, status);
}

void reply_error(srv_req *r, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sbuf_free(&r->out);
    sbuf_puts(&r->out, "{\"error\":{\"code\":");
    sbuf_json_string(&r->out, code, strlen(code));
    sbuf_puts(&r->out, ",\"message\":");
    sbuf_json_string(&r->out, msg, strlen(msg));
    sbuf_puts(&r->out, "}}");
    r->status = status; /* a failed buffer here is answered by http.c */
}

static unsigned status_of(ndl_status s)
{
    switch (s) {
    case NDL_OK: return 200;
    case NDL_INVALID: return 400;
    case NDL_NOT_FOUND: return 404;
    case NDL_EXISTS: return 409;
    case NDL_BUSY: return 409;
    case NDL_NOMEM: return 503;
    case NDL_READ_ONLY: return 503;
    case NDL_DISK_FULL: return 507;
    case NDL_UNSUPPORTED: return 501;
    default: return 500;
    }
}

void reply_lib(srv_req *r, const ndl_error *e)
{
    reply_error(r, status_of(e->status), ndl_status_name(e->status), "%s", e->msg);
}
