/* json_print.c -- compact printer over jansson values (shortest round-trip reals). */
#include "payload/json_print.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static bool sb_reserve(sbuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = ndl_realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_putc(sbuf *b, char c)
{
    if (!sb_reserve(b, 1))
        return;
    b->p[b->len++] = c;
}

size_t json_format_real(double d, char *buf)
{
    if (!isfinite(d))
        return 0;
    char dp = '.';
    const struct lconv *lc = localeconv();
    if (lc && lc->decimal_point && lc->decimal_point[0])
        dp = lc->decimal_point[0];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, 32, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) /* same locale as snprintf: reads its own output */
            break;
    }
    /* Locale-neutral decimal point; "e+300" -> "e300", "e-07" -> "e-7". */
    size_t len = 0;
    bool real_marker = false;
    for (int i = 0; i < n; i++) {
        char c = buf[i];
        if (c == dp) {
            buf[len++] = '.';
            real_marker = true;
        } else if (c == 'e') {
            buf[len++] = 'e';
            real_marker = true;
            i++;
            if (buf[i] == '-')
                buf[len++] = '-';
            else if (buf[i] != '+')
                i--;
            while (i + 1 < n - 1 && buf[i + 1] == '0') /* keep the last digit */
                i++;
        } else {
            buf[len++] = c;
        }
    }
    if (!real_marker) {
        buf[len++] = '.';
        buf[len++] = '0';
    }
    buf[len] = 0;
    return len;
}

size_t json_escape(unsigned char c, char esc[6])
{
    static const char hex[] = "0123456789abcdef";
    if (c >= 0x20 && c != '"' && c != '\\')
        return 0;
    esc[0] = '\\';
    switch (c) {
    case '"': esc[1] = '"'; return 2;
    case '\\': esc[1] = '\\'; return 2;
    case '\b': esc[1] = 'b'; return 2;
    case '\f': esc[1] = 'f'; return 2;
    case '\n': esc[1] = 'n'; return 2;
    case '\r': esc[1] = 'r'; return 2;
    case '\t': esc[1] = 't'; return 2;
    default:
        memcpy(esc + 1, "u00", 3);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        return 6;
    }
}

size_t json_format_float(float f, char *buf)
{
    if (!isfinite(f))
        return 0;
    int n = 0;
    for (int prec = 6; prec <= 9; prec++) {
        n = snprintf(buf, 32, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f)
            break;
    }
    return (size_t)n;
}

static void put_string(sbuf *b, const char *s, size_t n)
{
    sb_putc(b, '"');
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        char esc[6];
        size_t len = json_escape((unsigned char)s[i], esc);
        if (!len)
            continue;
        sb_put(b, s + run, i - run);
        run = i + 1;
        sb_put(b, esc, len);
    }
    sb_put(b, s + run, n - run);
    sb_putc(b, '"');
}

/* Returns NDL_OK or NDL_INVALID (too deep / non-finite); b->oom tells OOM. */
static ndl_status put_value(sbuf *b, const json_t *v, unsigned depth, ndl_error *err)
{
    char num[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (depth >= JSON_PRINT_MAX_DEPTH)
            return ndl_err(err, NDL_INVALID, "JSON value nests deeper than %d levels", JSON_PRINT_MAX_DEPTH);
        sb_putc(b, '{');
        bool first = true;
        for (void *it = json_object_iter((json_t *)v); it; it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                sb_putc(b, ',');
            first = false;
            put_string(b, json_object_iter_key(it), json_object_iter_key_len(it));
            sb_putc(b, ':');
            ndl_status s = put_value(b, json_object_iter_value(it), depth + 1, err);
            if (s != NDL_OK)
                return s;
        }
        sb_putc(b, '}');
        return NDL_OK;
    }
    case JSON_ARRAY: {
        if (depth >= JSON_PRINT_MAX_DEPTH)
            return ndl_err(err, NDL_INVALID, "JSON value nests deeper than %d levels", JSON_PRINT_MAX_DEPTH);
        sb_putc(b, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i)
                sb_putc(b, ',');
            ndl_status s = put_value(b, json_array_get(v, i), depth + 1, err);
            if (s != NDL_OK)
                return s;
        }
        sb_putc(b, ']');
        return NDL_OK;
    }
    case JSON_STRING:
        put_string(b, json_string_value(v), json_string_length(v));
        return NDL_OK;
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        sb_put(b, num, (size_t)n);
        return NDL_OK;
    }
    case JSON_REAL: {
        size_t n = json_format_real(json_real_value(v), num);
        if (n == 0)
            return ndl_err(err, NDL_INVALID, "JSON cannot hold the non-finite number %g", json_real_value(v));
        sb_put(b, num, n);
        return NDL_OK;
    }
    case JSON_TRUE:
        sb_put(b, "true", 4);
        return NDL_OK;
    case JSON_FALSE:
        sb_put(b, "false", 5);
        return NDL_OK;
    case JSON_NULL:
        sb_put(b, "null", 4);
        return NDL_OK;
    }
    return ndl_err(err, NDL_INTERNAL, "unknown JSON value type %d", (int)json_typeof(v));
}

ndl_status json_print_compact(const json_t *v, size_t size_hint, char **out, size_t *out_len, ndl_error *err)
{
    sbuf b = {0};
    if (size_hint && !sb_reserve(&b, size_hint)) {
        b.oom = false; /* the hint is only a hint: start small instead */
    }
    ndl_status s = put_value(&b, v, 0, err);
    if (s == NDL_OK && b.oom)
        s = ndl_err(err, NDL_NOMEM, "out of memory printing JSON (%zu bytes so far)", b.len);
    if (s == NDL_OK && !sb_reserve(&b, 0))
        s = ndl_err(err, NDL_NOMEM, "out of memory printing JSON");
    if (s != NDL_OK) {
        ndl_free(b.p);
        return s;
    }
    b.p[b.len] = 0;
    *out = b.p;
    *out_len = b.len;
    return NDL_OK;
}
