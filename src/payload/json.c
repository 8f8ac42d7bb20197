/* json.c -- payload validation, canonical text and merge over jansson, and
 * the checked load they share with filters (json_load.h). */
#include "payload/json.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "payload/json_load.h"
#include "payload/json_print.h"
#include "payload/json_scan.h"
#include "util/alloc.h"
#include "util/base.h"
#include "util/utf8.h"

/* Strict RFC 8259 plus: any top-level value (so the type error is ours),
 * duplicate keys refused, \u0000 allowed inside string values. */
#define PAYLOAD_PARSE_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

/* Every jansson allocation goes through ndl_malloc, so OOM injection reaches
 * it. But jansson 2.14 must not see a failed allocation: its lexer ignores a
 * failed growth of its token buffer and later aborts on assert(c == d)
 * (akheron/jansson#362, open upstream). So a failure is noted in a per-thread
 * flag and retried with plain malloc; the operation then completes inside
 * jansson, and we free its result and answer NDL_NOMEM. Under real
 * exhaustion, where malloc fails too, jansson gets NULL, as without the hook. */
static _Thread_local bool alloc_failed;

static void *hook_malloc(size_t n)
{
    void *p = ndl_malloc(n);
    if (NDL_UNLIKELY(!p)) {
        alloc_failed = true;
        p = malloc(n ? n : 1);
    }
    return p;
}

static void init_once(void) { json_set_alloc_funcs(hook_malloc, ndl_free); }

void payload_json_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
}

bool payload_json_alloc_failed(void)
{
    bool failed = alloc_failed;
    alloc_failed = false;
    return failed;
}

ndl_status json_load_object(const char *what, ndl_status bad, const char *s, size_t len, json_t **out,
                            ndl_error *err)
{
    *out = NULL;
    if (!s && len)
        return ndl_err(err, NDL_INVALID, "%s text is missing (NULL with length %zu)", what, len);
    if (len == 0 || json_blank(s, len))
        return ndl_err(err, bad, "%s is empty; it must be a JSON object", what);
    size_t at, line, col;
    if (!utf8_valid(s, len, &at)) {
        json_line_col(s, at, &line, &col);
        return ndl_err(err, bad, "%s is not valid UTF-8: byte 0x%02X at line %zu column %zu (byte offset %zu)",
                       what, (unsigned char)s[at], line, col, at);
    }
    if (!json_depth_within(s, len, PAYLOAD_MAX_DEPTH, &at)) {
        json_line_col(s, at, &line, &col);
        return ndl_err(err, bad, "%s nests deeper than %d levels (line %zu column %zu, byte offset %zu)", what,
                       PAYLOAD_MAX_DEPTH, line, col, at);
    }
    payload_json_init();
    json_error_t je;
    alloc_failed = false;
    json_t *v = json_loadb(s, len, PAYLOAD_PARSE_FLAGS, &je);
    if (payload_json_alloc_failed() || (!v && json_error_code(&je) == json_error_out_of_memory)) {
        json_decref(v);
        return ndl_err(err, NDL_NOMEM, "out of memory parsing the %s (%zu bytes)", what, len);
    }
    if (!v) {
        const char *kind = "is not valid JSON";
        switch (json_error_code(&je)) {
        case json_error_duplicate_key: kind = "has a duplicate key"; break;
        case json_error_numeric_overflow: kind = "has a number out of range (integers must fit in 64 bits)"; break;
        case json_error_null_byte_in_key: kind = "has \\u0000 in a key"; break;
        default: break;
        }
        return ndl_err(err, bad, "%s %s at line %d column %d: %s", what, kind, je.line, je.column, je.text);
    }
    if (!json_is_object(v)) {
        ndl_status st = ndl_err(err, bad, "%s must be a JSON object, got %s", what, json_type_phrase(v));
        json_decref(v);
        return st;
    }
    *out = v;
    return NDL_OK;
}

static ndl_status check_size(const char *what, size_t len, size_t max_bytes, ndl_error *err)
{
    if (len > max_bytes)
        return ndl_err(err, NDL_INVALID, "%s is %zu bytes; the limit is %zu", what, len, max_bytes);
    return NDL_OK;
}

ndl_status payload_validate(const char *json, size_t len, size_t max_bytes, ndl_error *err)
{
    ndl_status s = check_size("payload", len, max_bytes, err);
    if (s != NDL_OK)
        return s;
    json_t *v;
    s = json_load_object("payload", NDL_INVALID, json, len, &v, err);
    json_decref(v);
    return s;
}

/* Canonical text of a parsed object; checks max_bytes (SIZE_MAX: none). */
static ndl_status print_checked(const char *what, const json_t *v, size_t hint, size_t max_bytes, char **out,
                                size_t *out_len, ndl_error *err)
{
    char *text;
    size_t n;
    ndl_status s = json_print_compact(v, hint, &text, &n, err);
    if (s != NDL_OK)
        return s;
    if (n > max_bytes) {
        ndl_free(text);
        return check_size(what, n, max_bytes, err);
    }
    *out = text;
    *out_len = n;
    return NDL_OK;
}

ndl_status payload_canonical(const char *json, size_t len, char **out, size_t *out_len, ndl_error *err)
{
    json_t *v;
    ndl_status s = json_load_object("payload", NDL_INVALID, json, len, &v, err);
    if (s != NDL_OK)
        return s;
    s = print_checked("payload", v, len, SIZE_MAX, out, out_len, err);
    json_decref(v);
    return s;
}

ndl_status payload_prepare(const char *json, size_t len, size_t max_bytes, char **out, size_t *out_len,
                           ndl_error *err)
{
    return payload_prepare_tree(json, len, max_bytes, out, out_len, NULL, err);
}

ndl_status payload_prepare_tree(const char *json, size_t len, size_t max_bytes, char **out,
                                size_t *out_len, json_t **tree, ndl_error *err)
{
    if (tree)
        *tree = NULL;
    ndl_status s = check_size("payload", len, max_bytes, err);
    if (s != NDL_OK)
        return s;
    json_t *v;
    s = json_load_object("payload", NDL_INVALID, json, len, &v, err);
    if (s != NDL_OK)
        return s;
    s = print_checked("canonical payload", v, len, max_bytes, out, out_len, err);
    if (s == NDL_OK && tree)
        *tree = v;
    else
        json_decref(v);
    return s;
}

ndl_status payload_merge(const char *stored, size_t stored_len, const char *patch, size_t patch_len,
                         size_t max_bytes, char **out, size_t *out_len, ndl_error *err)
{
    json_t *base = NULL, *upd = NULL;
    ndl_status s;
    if (!stored || stored_len == 0) {
        payload_json_init();
        alloc_failed = false;
        base = json_object();
        if (payload_json_alloc_failed() || !base) {
            json_decref(base);
            return ndl_err(err, NDL_NOMEM, "out of memory merging a payload");
        }
    } else {
        s = json_load_object("stored payload", NDL_CORRUPT, stored, stored_len, &base, err);
        if (s != NDL_OK)
            return s;
    }
    s = json_load_object("payload", NDL_INVALID, patch, patch_len, &upd, err);
    if (s != NDL_OK)
        goto done;
    /* Both are objects within the depth limit; a top-level merge keeps it. */
    alloc_failed = false;
    if (json_object_update(base, upd) != 0 || payload_json_alloc_failed()) {
        s = ndl_err(err, NDL_NOMEM, "out of memory merging a payload");
        goto done;
    }
    s = print_checked("merged payload", base, stored_len + patch_len, max_bytes, out, out_len, err);
done:
    json_decref(upd);
    json_decref(base);
    return s;
}
