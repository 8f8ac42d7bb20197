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

const char *json_type_phrase(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
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

/* The decimal digits of q (0 < q < 10^9) into d; returns how many. */
static int digits_of(uint32_t q, char d[9])
{
    char rev[9];
    int n = 0;
    for (; q; q /= 10)
        rev[n++] = (char)('0' + q % 10);
    for (int i = 0; i < n; i++)
        d[i] = rev[n - 1 - i];
    return n;
}

size_t json_format_float9(float f, char *buf)
{
    if (!isfinite(f))
        return 0;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    uint32_t m = bits & 0x7fffff, biased = (bits >> 23) & 0xff;
    if (biased == 0)                       /* zero or subnormal: rare, snprintf */
        return (size_t)snprintf(buf, 32, "%.9g", (double)f);
    m |= 0x800000;
    int e2 = (int)biased - 150;            /* |f| = m * 2^e2 */
    typedef unsigned __int128 u128;
    u128 n;                                /* |f| = n * 10^e10, exactly */
    int e10;
    if (e2 >= 0) {
        n = (u128)m << e2;                 /* m < 2^24, e2 <= 104: fits */
        e10 = 0;
    } else if (e2 >= -44) {                /* m * 5^44 < 2^127 */
        n = m;
        for (int i = 0; i < -e2; i++)
            n *= 5;
        e10 = e2;
    } else {
        return (size_t)snprintf(buf, 32, "%.9g", (double)f);
    }
    int nd = 1; /* decimal digits of n */
    u128 p10 = 10;
    while (nd < 39 && n >= p10) {
        nd++;
        p10 *= 10;
    }
    uint32_t q;
    if (nd > 9) { /* round to nine digits, ties to even (the exact value decides) */
        u128 div = 1;
        for (int i = 0; i < nd - 9; i++)
            div *= 10;
        u128 quo = n / div, rem = n - quo * div, half = div / 2;
        if (rem > half || (rem == half && (quo & 1)))
            quo++;
        e10 += nd - 9;
        if (quo == 1000000000u) { /* 999999999.5 -> 1000000000: one digit more */
            quo = 100000000u;
            e10++;
        }
        q = (uint32_t)quo;
        nd = 9;
    } else {
        q = (uint32_t)n;
    }
    char d[9];
    nd = digits_of(q, d);
    int x = nd - 1 + e10; /* the leading digit's power of ten */
    while (nd > 1 && d[nd - 1] == '0')
        nd--;           /* %g drops trailing zeros of the fraction */
    char *o = buf;
    if (bits >> 31)
        *o++ = '-';
    if (x < -4 || x >= 9) { /* d.ddde+XX */
        *o++ = d[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, d + 1, (size_t)(nd - 1));
            o += nd - 1;
        }
        *o++ = 'e';
        *o++ = x < 0 ? '-' : '+';
        int ax = x < 0 ? -x : x;
        if (ax >= 10)
            *o++ = (char)('0' + ax / 10);
        else
            *o++ = '0';
        *o++ = (char)('0' + ax % 10);
    } else if (x >= 0) { /* ddd.ddd, whole digits kept even when zero */
        for (int i = 0; i <= x; i++)
            *o++ = i < nd ? d[i] : '0';
        if (nd > x + 1) {
            *o++ = '.';
            memcpy(o, d + x + 1, (size_t)(nd - x - 1));
            o += nd - x - 1;
        }
    } else { /* 0.000ddd */
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -x - 1; i++)
            *o++ = '0';
        memcpy(o, d, (size_t)nd);
        o += nd;
    }
    *o = '\0';
    return (size_t)(o - buf);
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
