/*
 * read_jsonl.c -- the JSON lines reader: one {"id":..,"vector":[..],
 * "payload":{..}} object per line, parsed by a small strict JSON parser
 * (RFC 8259 grammar, UTF-8 checked, nesting limited to JSON_MAX_DEPTH) so
 * every error names its line and column. Payloads kept for import are then
 * held to the library's own payload rules (payload/json.h) and stored in
 * their canonical form, so a file that loads is one the library accepts.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/readers_internal.h"
#include "cli/text.h"
#include "payload/json.h"

#define JSON_MAX_DEPTH 64

typedef struct jp {
    const char *p, *end;    /* rest of the current line */
    const char *start;      /* the line's first byte, for columns */
    char msg[400];          /* first error, empty if none */
} jp;

static int jp_fail(jp *j, const char *fmt, ...) CLI_PRINTF(2, 3);
static int jp_fail(jp *j, const char *fmt, ...)
{
    if (!j->msg[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->msg, sizeof j->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void jp_ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static int jp_syntax(jp *j, const char *expected)
{
    if (j->p >= j->end)
        return jp_fail(j, "invalid JSON: expected %s at column %zu, found end of line", expected,
                       (size_t)(j->p - j->start) + 1);
    char found[8];
    cli_safe_text(j->p, 1, found, sizeof found);
    return jp_fail(j, "invalid JSON: expected %s at column %zu, found '%s'", expected,
                   (size_t)(j->p - j->start) + 1, found);
}

static void put_utf8(char *out, size_t cap, size_t *n, uint32_t cp)
{
    unsigned char b[4];
    size_t k;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    for (size_t i = 0; i < k; i++) {
        if (out && *n < cap)
            out[*n] = (char)b[i];
        (*n)++;
    }
}

static int hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* Parse a string at j->p (which is '"'). Unescaped bytes go to out (up to
 * cap; out may be NULL); *len gets the full unescaped length. */
static int jp_string(jp *j, char *out, size_t cap, size_t *len)
{
    size_t n = 0;
    j->p++;
    for (;;) {
        if (j->p >= j->end)
            return jp_fail(j, "invalid JSON: unterminated string");
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20)
            return jp_fail(j, "invalid JSON: control character in a string at column %zu",
                           (size_t)(j->p - j->start) + 1);
        if (c == '\\') {
            if (j->end - j->p < 2)
                return jp_fail(j, "invalid JSON: unterminated string");
            char e = j->p[1];
            j->p += 2;
            char simple = 0;
            switch (e) {
            case '"': simple = '"'; break;
            case '\\': simple = '\\'; break;
            case '/': simple = '/'; break;
            case 'b': simple = '\b'; break;
            case 'f': simple = '\f'; break;
            case 'n': simple = '\n'; break;
            case 'r': simple = '\r'; break;
            case 't': simple = '\t'; break;
            case 'u': break;
            default: {
                char shown[8];
                return jp_fail(j, "invalid JSON: bad escape '\\%s' at column %zu",
                               cli_safe_text(&e, 1, shown, sizeof shown),
                               (size_t)(j->p - j->start) - 1);
            }
            }
            if (simple) {
                if (out && n < cap)
                    out[n] = simple;
                n++;
                continue;
            }
            uint32_t cp;
            if (j->end - j->p < 4 || !hex4(j->p, &cp))
                return jp_fail(j, "invalid JSON: bad \\u escape at column %zu",
                               (size_t)(j->p - j->start) - 1);
            j->p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || !hex4(j->p + 2, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return jp_fail(j, "invalid JSON: unpaired surrogate in \\u escape");
                j->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return jp_fail(j, "invalid JSON: unpaired surrogate in \\u escape");
            }
            put_utf8(out, cap, &n, cp);
            continue;
        }
        size_t k = cli_utf8_seq((const unsigned char *)j->p, (const unsigned char *)j->end);
        if (k == 0)
            return jp_fail(j, "invalid UTF-8 in a string at column %zu",
                           (size_t)(j->p - j->start) + 1);
        for (size_t i = 0; i < k; i++) {
            if (out && n < cap)
                out[n] = j->p[i];
            n++;
        }
        j->p += k;
    }
    *len = n;
    return 0;
}

/* Scan a JSON number; returns its length (0 if none). */
static size_t jp_number_len(const jp *j)
{
    const char *p = j->p, *e = j->end;
    if (p < e && *p == '-')
        p++;
    if (p >= e || *p < '0' || *p > '9')
        return 0;
    if (*p == '0')
        p++;
    else
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return 0;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return 0;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    return (size_t)(p - j->p);
}

static int jp_nonfinite_word(const jp *j)
{
    const char *p = j->p;
    size_t left = (size_t)(j->end - p);
    if (left && *p == '-') {
        p++;
        left--;
    }
    return (left >= 3 && memcmp(p, "NaN", 3) == 0) || (left >= 3 && memcmp(p, "nan", 3) == 0) ||
           (left >= 3 && memcmp(p, "Inf", 3) == 0) || (left >= 3 && memcmp(p, "inf", 3) == 0);
}

/* Validate and skip any JSON value (used for "payload"). */
static int jp_skip(jp *j, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return jp_fail(j, "JSON nested deeper than %d", JSON_MAX_DEPTH);
    jp_ws(j);
    if (j->p >= j->end)
        return jp_syntax(j, "a value");
    char c = *j->p;
    size_t len;
    if (c == '"')
        return jp_string(j, NULL, 0, &len);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        jp_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }
        for (;;) {
            jp_ws(j);
            if (c == '{') {
                if (j->p >= j->end || *j->p != '"')
                    return jp_syntax(j, "a key string");
                if (jp_string(j, NULL, 0, &len) < 0)
                    return -1;
                jp_ws(j);
                if (j->p >= j->end || *j->p != ':')
                    return jp_syntax(j, "':'");
                j->p++;
            }
            if (jp_skip(j, depth + 1) < 0)
                return -1;
            jp_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == close) {
                j->p++;
                return 0;
            }
            return jp_syntax(j, c == '{' ? "',' or '}'" : "',' or ']'");
        }
    }
    static const char *const words[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
            j->p += n;
            return 0;
        }
    }
    len = jp_number_len(j);
    if (len == 0)
        return jp_syntax(j, "a value");
    j->p += len;
    return 0;
}

/* Growable arrays of the jsonl loader. */
typedef struct jl_state {
    float *rows;
    size_t rows_cap;      /* floats */
    ndl_id *ids;
    unsigned char *is_str;  /* per row: id is a string at pool offset ids[i].num */
    size_t ids_cap, is_str_cap;  /* rows */
    char *pool;
    size_t pool_len, pool_cap;
    size_t *pay_off;        /* per row: 1 + offset in pay_pool, 0 for no payload */
    size_t pay_off_cap;     /* rows */
    char *pay_pool;         /* canonical payloads, each NUL-terminated */
    size_t pay_len, pay_cap;
} jl_state;

static void jl_free(jl_state *st)
{
    free(st->rows);
    free(st->ids);
    free(st->is_str);
    free(st->pool);
    free(st->pay_off);
    free(st->pay_pool);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Parse "vector": [numbers], appending to st->rows at row `row`. Returns the
 * value count, or -1. */
static long jp_vector(jp *j, jl_state *st, size_t row, uint32_t want)
{
    jp_ws(j);
    if (j->p >= j->end || *j->p != '[')
        return jp_syntax(j, "'[' (vector is an array of numbers)");
    j->p++;
    size_t base = row * (size_t)want;  /* want is 0 only for the first row */
    size_t cnt = 0;
    jp_ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return 0;
    }
    for (;;) {
        jp_ws(j);
        if (jp_nonfinite_word(j))
            return jp_fail(j, "vector value at position %zu is NaN or Infinity; only finite "
                           "numbers are allowed", cnt);
        size_t len = jp_number_len(j);
        if (len == 0)
            return jp_syntax(j, "a number");
        char buf[64];
        char *num = buf, *big = NULL;
        if (len >= sizeof buf) {
            big = malloc(len + 1);
            if (!big)
                return jp_fail(j, "out of memory");
            num = big;
        }
        memcpy(num, j->p, len);
        num[len] = '\0';
        float x = strtof(num, NULL);
        free(big);
        j->p += len;
        if (!isfinite(x))
            return jp_fail(j, "vector value at position %zu is out of float range (non-finite)",
                           cnt);
        if (cnt >= NDL_DIM_MAX)
            return jp_fail(j, "vector has more than %d values", NDL_DIM_MAX);
        size_t at = base + cnt;
        if (grow((void **)&st->rows, &st->rows_cap, at + 1, sizeof(float)) < 0)
            return jp_fail(j, "out of memory");
        st->rows[at] = x;
        cnt++;
        jp_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            break;
        }
        return jp_syntax(j, "',' or ']'");
    }
    return (long)cnt;
}

/* Keep the payload text [at, j->p) of row `row` (null: no payload). It must
 * pass payload_prepare and fit max bytes as given and once canonical (the
 * library checks both); its canonical text goes to the pool. */
static int jp_payload(jp *j, jl_state *st, size_t row, const char *at, uint32_t max)
{
    size_t len = (size_t)(j->p - at);
    if (len == 4 && memcmp(at, "null", 4) == 0)
        return 0;
    if (len > max)
        return jp_fail(j, "payload is %zu bytes; the limit is %u (--max-payload-bytes)", len, max);
    char *canon;
    size_t clen;
    ndl_error err = {0};
    ndl_status s = payload_prepare(at, len, SIZE_MAX, &canon, &clen, &err);
    if (s != NDL_OK)
        return jp_fail(j, "%s (the payload starts at column %zu)", err.msg,
                       (size_t)(at - j->start) + 1);
    if (clen > max) {
        ndl_free(canon);
        return jp_fail(j, "payload is %zu bytes in canonical form; the limit is %u "
                       "(--max-payload-bytes)", clen, max);
    }
    if (grow((void **)&st->pay_pool, &st->pay_cap, st->pay_len + clen + 1, 1) < 0) {
        ndl_free(canon);
        return jp_fail(j, "out of memory");
    }
    memcpy(st->pay_pool + st->pay_len, canon, clen + 1);
    ndl_free(canon);
    st->pay_off[row] = st->pay_len + 1;
    st->pay_len += clen + 1;
    return 0;
}

/* Parse one line's object into row `row`. *dim is the file's dimension so
 * far (0 before the first row). */
static int jp_line(jp *j, jl_state *st, size_t row, uint32_t *dim, const vec_expect *ex,
                   size_t first_line, int *has_id)
{
    int seen_id = 0, seen_vec = 0, seen_payload = 0;
    jp_ws(j);
    if (j->p >= j->end || *j->p != '{')
        return jp_syntax(j, "'{' (each line is one JSON object)");
    j->p++;
    jp_ws(j);
    if (j->p < j->end && *j->p == '}')
        return jp_fail(j, "missing \"vector\"");
    if (grow((void **)&st->ids, &st->ids_cap, row + 1, sizeof(ndl_id)) < 0 ||
        grow((void **)&st->is_str, &st->is_str_cap, row + 1, 1) < 0 ||
        (ex->max_payload_bytes &&
         grow((void **)&st->pay_off, &st->pay_off_cap, row + 1, sizeof(size_t)) < 0))
        return jp_fail(j, "out of memory");
    st->ids[row] = ndl_id_u64(row);
    st->is_str[row] = 0;
    if (ex->max_payload_bytes)
        st->pay_off[row] = 0;
    for (;;) {
        jp_ws(j);
        if (j->p >= j->end || *j->p != '"')
            return jp_syntax(j, "a key string");
        char key[16];
        size_t klen;
        if (jp_string(j, key, sizeof key - 1, &klen) < 0)
            return -1;
        key[klen < sizeof key - 1 ? klen : sizeof key - 1] = '\0';
        jp_ws(j);
        if (j->p >= j->end || *j->p != ':')
            return jp_syntax(j, "':'");
        j->p++;
        jp_ws(j);
        int *seen = NULL;
        if (klen == 2 && memcmp(key, "id", 2) == 0)
            seen = &seen_id;
        else if (klen == 6 && memcmp(key, "vector", 6) == 0)
            seen = &seen_vec;
        else if (klen == 7 && memcmp(key, "payload", 7) == 0)
            seen = &seen_payload;
        else {
            char shown[40];
            cli_safe_text(key, klen < sizeof key - 1 ? klen : sizeof key - 1, shown, sizeof shown);
            return jp_fail(j, "unknown key \"%s%s\" (a line holds \"id\", \"vector\" and "
                           "optionally \"payload\")", shown, klen >= sizeof key - 1 ? "..." : "");
        }
        if (*seen)
            return jp_fail(j, "duplicate key \"%s\"", key);
        *seen = 1;
        if (seen == &seen_payload) {
            const char *at = j->p;
            if (jp_skip(j, 1) < 0 ||
                (ex->max_payload_bytes && jp_payload(j, st, row, at, ex->max_payload_bytes) < 0))
                return -1;
        } else if (seen == &seen_id) {
            if (j->p < j->end && *j->p == '"') {
                size_t len;
                if (grow((void **)&st->pool, &st->pool_cap, st->pool_len + NDL_ID_STR_MAX + 4, 1) < 0)
                    return jp_fail(j, "out of memory");
                if (jp_string(j, st->pool + st->pool_len, NDL_ID_STR_MAX, &len) < 0)
                    return -1;
                if (len == 0)
                    return jp_fail(j, "id is an empty string");
                if (len > NDL_ID_STR_MAX)
                    return jp_fail(j, "id is %zu bytes long; string ids hold at most %d bytes",
                                   len, NDL_ID_STR_MAX);
                st->ids[row].num = st->pool_len;  /* turned into a pointer at the end */
                st->ids[row].len = (uint32_t)len;
                st->is_str[row] = 1;
                st->pool_len += len;
            } else {
                size_t len = jp_number_len(j);
                if (len == 0)
                    return jp_syntax(j, "an id (a non-negative integer or a string)");
                uint64_t v = 0;
                for (size_t i = 0; i < len; i++) {
                    char c = j->p[i];
                    if (c < '0' || c > '9')
                        return jp_fail(j, "id %.*s is not a non-negative integer (ids are "
                                       "unsigned 64-bit integers or strings)", (int)len, j->p);
                    if (v > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
                        return jp_fail(j, "id %.*s does not fit in 64 bits", (int)len, j->p);
                    v = v * 10 + (uint64_t)(c - '0');
                }
                st->ids[row].num = v;
                j->p += len;
            }
        } else {
            long cnt = jp_vector(j, st, row, *dim);
            if (cnt < 0)
                return -1;
            if (cnt == 0)
                return jp_fail(j, "vector is empty");
            if (*dim == 0) {
                if (ex->dim && (uint32_t)cnt != ex->dim)
                    return jp_fail(j, "vector has %ld values; %s", cnt, ex->dim_why);
                *dim = (uint32_t)cnt;
            } else if ((uint32_t)cnt != *dim) {
                if (ex->dim)
                    return jp_fail(j, "vector has %ld values; %s", cnt, ex->dim_why);
                return jp_fail(j, "vector has %ld values; line %zu has %u", cnt, first_line, *dim);
            }
        }
        jp_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            break;
        }
        return jp_syntax(j, "',' or '}'");
    }
    jp_ws(j);
    if (j->p != j->end)
        return jp_fail(j, "unexpected text after the object at column %zu",
                       (size_t)(j->p - j->start) + 1);
    if (!seen_vec)
        return jp_fail(j, "missing \"vector\"");
    if (!seen_id && ex->need_ids)
        return jp_fail(j, "missing \"id\"");
    if (seen_id)
        *has_id = 1;
    return 0;
}

int rd_load_jsonl(cli_vecs *v, const vec_expect *ex)
{
    const char *p = (const char *)v->map, *end = p + v->map_len;
    jl_state st = {0};
    uint32_t dim = 0;
    size_t row = 0, line = 0, first_line = 0;
    int any_id = 0, rc = CLI_OK;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        jp j = {p, le, p, ""};
        jp_ws(&j);
        if (j.p < j.end) {  /* blank lines are skipped */
            int has_id = 0;
            if (jp_line(&j, &st, row, &dim, ex, first_line ? first_line : line, &has_id) < 0) {
                rc = cli_fail(CLI_ERR, "%s: line %zu: %s", v->path, line, j.msg);
                break;
            }
            if (row == 0)
                first_line = line;
            any_id |= has_id;
            if (rd_check_row(v->path, "line", line, st.rows + row * (size_t)dim, dim, ex) != CLI_OK) {
                rc = CLI_ERR;
                break;
            }
            row++;
        }
        p = nl ? nl + 1 : end;
    }
    if (rc == CLI_OK && row == 0)
        rc = cli_fail(CLI_ERR, "%s: no vectors (the file holds only blank lines)", v->path);
    if (rc != CLI_OK) {
        jl_free(&st);
        return rc;
    }
    for (size_t i = 0; i < row; i++) {
        if (st.is_str[i]) {
            st.ids[i].str = st.pool + st.ids[i].num;
            st.ids[i].num = 0;
            v->has_str_ids = 1;
        }
    }
    v->rows = st.rows;
    v->pool = st.pool;
    if (any_id) {
        v->ids = st.ids;
        st.ids = NULL;
    }
    if (st.pay_len) {
        v->pay_off = st.pay_off;
        v->pay_pool = st.pay_pool;
        st.pay_off = NULL;
        st.pay_pool = NULL;
    }
    st.rows = NULL;
    st.pool = NULL;
    jl_free(&st);
    v->n = row;
    v->dim = dim;
    return CLI_OK;
}

