/*
 * body.c -- reading request bodies: one JSON object per body, checked for
 * depth before jansson (which recurses) sees it, and typed field readers
 * whose errors name the field. Every failure is answered here (400, or 501
 * for a field of a later release), so handlers just return.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db/idmap.h"
#include "payload/json_scan.h"
#include "server/server_internal.h"

json_t *parse_object(srv_req *r, const char *text, size_t len, const char *what,
                     bool empty_ok)
{
    if (len == 0 || json_blank(text, len)) {
        if (empty_ok)
            return json_object();
        reply_error(r, 400, "invalid_argument", "%s: a JSON object is needed", what);
        return NULL;
    }
    size_t at;
    if (!json_depth_within(text, len, SRV_MAX_DEPTH, &at)) {
        size_t line, col;
        json_line_col(text, at, &line, &col);
        reply_error(r, 400, "invalid_argument",
                    "%s nests deeper than %d levels at line %zu column %zu", what,
                    SRV_MAX_DEPTH, line, col);
        return NULL;
    }
    json_error_t e;
    /* ALLOW_NUL: a payload string may hold \u0000 (the library keeps it);
     * strings read as names go through text_of, which refuses it */
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (!v) {
        reply_error(r, 400, "invalid_argument", "%s is not valid JSON: %s at line %d column %d",
                    what, e.text, e.line, e.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        reply_error(r, 400, "invalid_argument", "%s must be a JSON object", what);
        return NULL;
    }
    return v;
}

json_t *body_object(srv_req *r, bool empty_ok)
{
    return parse_object(r, r->body, r->len, "body", empty_ok);
}

static bool listed(const char *key, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(key, *list) == 0)
            return true;
    return false;
}

const char *text_of(json_t *v)
{
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

bool fields_not_yet(srv_req *r, json_t *obj, const char *const *later, const char *where)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (listed(key, later)) {
            reply_error(r, 501, "unsupported", "%s: '%s' is not supported yet", where, key);
            return false;
        }
    }
    return true;
}

bool fields_known(srv_req *r, json_t *obj, const char *const *allowed, const char *where)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!listed(key, allowed)) {
            reply_error(r, 400, "invalid_argument", "%s: unknown field '%s'", where, key);
            return false;
        }
    }
    return true;
}

bool get_bool(srv_req *r, json_t *obj, const char *where, const char *key, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    if (!json_is_boolean(v)) {
        reply_error(r, 400, "invalid_argument", "%s: '%s' must be true or false", where, key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

bool get_filter(srv_req *r, json_t *obj, const char *where, ndl_filter **out)
{
    *out = NULL;
    json_t *v = json_object_get(obj, "filter");
    if (!v || json_is_null(v))
        return true;
    if (!json_is_object(v)) {
        reply_error(r, 400, "invalid_argument", "%s: 'filter' must be an object", where);
        return false;
    }
    /* the library parses filters from text (needle.h is all the server
     * knows); a filter is small, and this is once per request */
    char *text = json_dumps(v, JSON_COMPACT);
    if (!text) {
        reply_error(r, 503, "out_of_memory", "%s: out of memory for the filter", where);
        return false;
    }
    ndl_error e;
    ndl_status rc = ndl_filter_parse(text, strlen(text), out, &e);
    free(text);
    if (rc != NDL_OK) {
        reply_error(r, rc == NDL_NOMEM ? 503 : 400, ndl_status_name(rc), "%s: %s", where, e.msg);
        return false;
    }
    return true;
}

bool get_u32(srv_req *r, json_t *obj, const char *where, const char *key, uint32_t min,
             uint32_t max, uint32_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
        json_integer_value(v) > (json_int_t)max) {
        if (json_is_integer(v))
            reply_error(r, 400, "invalid_argument", "%s: '%s' is %lld; it must be in %u..%u",
                        where, key, (long long)json_integer_value(v), min, max);
        else
            reply_error(r, 400, "invalid_argument", "%s: '%s' must be an integer in %u..%u",
                        where, key, min, max);
        return false;
    }
    *out = (uint32_t)json_integer_value(v);
    return true;
}

bool get_double(srv_req *r, json_t *obj, const char *where, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    if (!json_is_number(v)) {
        reply_error(r, 400, "invalid_argument", "%s: '%s' must be a number", where, key);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

bool parse_id(srv_req *r, json_t *v, ndl_id *out, const char *where)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = ndl_id_u64((uint64_t)json_integer_value(v));
        return true;
    }
    if (json_is_string(v)) {
        ndl_id id = {.str = json_string_value(v), .len = (uint32_t)json_string_length(v)};
        if (!text_of(v)) {
            reply_error(r, 400, "invalid_argument", "%s: a string id must not hold \\u0000",
                        where);
            return false;
        }
        ndl_error e;
        if (json_string_length(v) > NDL_ID_STR_MAX || idmap_check_id(id, &e) != NDL_OK) {
            reply_error(r, 400, "invalid_argument", "%s: %s", where,
                        json_string_length(v) > NDL_ID_STR_MAX ? "string id is too long" : e.msg);
            return false;
        }
        *out = id;
        return true;
    }
    reply_error(r, 400, "invalid_argument",
                "%s: an id must be an integer 0..9223372036854775807 or a string", where);
    return false;
}

bool path_id(srv_req *r, const char *seg, ndl_id *out)
{
    size_t n = strlen(seg);
    /* as `needle get` reads ids: digits without a leading zero ("0" alone
     * is 0) are an integer id; "007" is the string "007" */
    bool digits = n > 0 && (n == 1 || seg[0] != '0');
    for (size_t i = 0; digits && i < n; i++)
        digits = seg[i] >= '0' && seg[i] <= '9';
    if (digits) {
        unsigned long long v = n <= 19 ? strtoull(seg, NULL, 10) : ULLONG_MAX;
        if (v > (unsigned long long)INT64_MAX) { /* as ids in JSON bodies */
            reply_error(r, 400, "invalid_argument",
                        "id %.40s in the path is over 9223372036854775807", seg);
            return false;
        }
        *out = ndl_id_u64(v);
        return true;
    }
    ndl_id id = {.str = seg, .len = (uint32_t)NDL_MIN(n, (size_t)UINT32_MAX)};
    ndl_error e;
    if (n > NDL_ID_STR_MAX || idmap_check_id(id, &e) != NDL_OK) {
        reply_error(r, 400, "invalid_argument", "bad id in the path: %s",
                    n > NDL_ID_STR_MAX ? "string id is too long" : e.msg);
        return false;
    }
    *out = id;
    return true;
}

bool parse_vector(srv_req *r, json_t *v, uint32_t dim, float *out, const char *where)
{
    if (!json_is_array(v)) {
        reply_error(r, 400, "invalid_argument", "%s: 'vector' must be an array of numbers",
                    where);
        return false;
    }
    size_t n = json_array_size(v);
    if (n != dim) {
        reply_error(r, 400, "invalid_argument", "%s: vector has %zu values; the collection has dimension %u",
                    where, n, dim);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        double d = json_is_number(x) ? json_number_value(x) : NAN;
        float f = (float)d;
        if (!json_is_number(x) || !isfinite(f)) {
            reply_error(r, 400, "invalid_argument", "%s: vector value %zu is %s", where, i,
                        json_is_number(x) ? "out of the float range" : "not a number");
            return false;
        }
        out[i] = f;
    }
    return true;
}

bool name_ok(srv_req *r, const char *name)
{
    if (ndl_name_valid(name))
        return true;
    reply_error(r, 400, "invalid_argument",
                "bad collection name '%.80s': use 1..64 of A-Z a-z 0-9 _ -", name);
    return false;
}
