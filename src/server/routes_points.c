/*
 * routes_points.c -- upsert (a JSON body or an NDJSON stream: one atomic
 * batch either way), get one or many, delete, payload merge, count, scroll.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload/json_scan.h"
#include "server/server_internal.h"

/* One upsert batch being read. */
typedef struct batch {
    size_t n, cap;
    ndl_id *ids;
    float *vectors;
    char **payloads;    /* NULL entries: no payload */
    json_t **keep;      /* the parsed points (ids borrow their strings) */
    uint32_t dim;
} batch;

static void batch_free(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->payloads[i]);
        json_decref(b->keep[i]);
    }
    free(b->ids);
    free(b->vectors);
    free(b->payloads);
    free(b->keep);
}

/* Room for at least want points (doubling, so adding one at a time is
 * linear); answers 503 when memory runs out. */
static bool batch_reserve(srv_req *r, batch *b, size_t want)
{
    if (want <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap *= 2;
    ndl_id *ids = realloc(b->ids, cap * sizeof *ids);
    if (ids)
        b->ids = ids;
    float *v = realloc(b->vectors, cap * b->dim * sizeof *v);
    if (v)
        b->vectors = v;
    char **p = realloc(b->payloads, cap * sizeof *p);
    if (p)
        b->payloads = p;
    json_t **k = realloc(b->keep, cap * sizeof *k);
    if (k)
        b->keep = k;
    if (!ids || !v || !p || !k) {
        reply_error(r, 503, "out_of_memory", "out of memory reading %zu points", cap);
        return false;
    }
    b->cap = cap;
    return true;
}

/* Add one point object (taking a reference); answers the error. */
static bool batch_add(srv_req *r, batch *b, json_t *pt, const char *where)
{
    static const char *const known[] = {"id", "vector", "payload", NULL};
    if (!json_is_object(pt)) {
        reply_error(r, 400, "invalid_argument", "%s must be an object", where);
        return false;
    }
    if (!fields_known(r, pt, known, where))
        return false;
    if (!batch_reserve(r, b, b->n + 1))
        return false;
    json_t *id = json_object_get(pt, "id"), *vec = json_object_get(pt, "vector");
    json_t *pl = json_object_get(pt, "payload");
    if (!id || !vec) {
        reply_error(r, 400, "invalid_argument", "%s needs 'id' and 'vector'", where);
        return false;
    }
    size_t i = b->n;
    if (!parse_id(r, id, &b->ids[i], where) ||
        !parse_vector(r, vec, b->dim, b->vectors + i * b->dim, where))
        return false;
    b->payloads[i] = NULL;
    if (pl && !json_is_null(pl)) {
        if (!json_is_object(pl)) {
            reply_error(r, 400, "invalid_argument", "%s: 'payload' must be an object", where);
            return false;
        }
        /* canonical text comes from the library; jansson's compact dump is its input */
        b->payloads[i] = json_dumps(pl, JSON_COMPACT | JSON_REAL_PRECISION(17));
        if (!b->payloads[i]) {
            reply_error(r, 503, "out_of_memory", "out of memory for %s's payload", where);
            return false;
        }
    }
    b->keep[i] = json_incref(pt);
    b->n++;
    return true;
}

static bool read_json_points(srv_req *r, batch *b)
{
    json_t *body = body_object(r, false);
    if (!body)
        return false;
    static const char *const known[] = {"points", NULL};
    json_t *pts = json_object_get(body, "points");
    bool ok = fields_known(r, body, known, "upsert");
    if (ok && !json_is_array(pts)) {
        reply_error(r, 400, "invalid_argument", "upsert needs 'points': an array of points");
        ok = false;
    }
    ok = ok && batch_reserve(r, b, json_array_size(pts));
    for (size_t i = 0; ok && i < json_array_size(pts); i++) {
        char where[32];
        snprintf(where, sizeof where, "point %zu", i);
        ok = batch_add(r, b, json_array_get(pts, i), where);
    }
    json_decref(body);
    return ok;
}

static bool read_ndjson_points(srv_req *r, batch *b)
{
    size_t start = 0, lineno = 0;
    bool ok = true;
    while (ok && start < r->len) {
        const char *text = r->body + start;
        const char *nl = memchr(text, '\n', r->len - start);
        size_t len = nl ? (size_t)(nl - text) : r->len - start;
        lineno++;
        start += len + 1;
        if (json_blank(text, len))
            continue;
        char where[40];
        snprintf(where, sizeof where, "line %zu", lineno);
        json_t *pt = parse_object(r, text, len, where, false);
        ok = pt && batch_add(r, b, pt, where);
        json_decref(pt);
    }
    if (ok && b->n == 0) {
        reply_error(r, 400, "invalid_argument", "the NDJSON body holds no points");
        ok = false;
    }
    return ok;
}

void h_points_upsert(srv_req *r)
{
    const char *name = r->seg[2];
    ndl_collection *c = registry_get(r, name);
    if (!c)
        return;
    ndl_error e;
    batch b = {.dim = r->dim};
    bool ok = r->ndjson ? read_ndjson_points(r, &b) : read_json_points(r, &b);
    /* a big batch indexes on as many threads as the server has (the
     * library runs one for small ones) */
    ndl_write_options wo;
    ndl_write_options_init(&wo);
    wo.threads = r->srv->opt.threads;
    if (ok && b.n > 0 &&
        ndl_collection_upsert_points(c, b.n, b.ids, b.vectors, (const char *const *)b.payloads,
                                     &wo, &e) != NDL_OK) {
        reply_lib(r, &e);
    } else if (ok) {
        sbuf_printf(&r->out, "{\"upserted\":%zu}", b.n);
        reply_buf(r, 200);
    }
    batch_free(&b);
    registry_put(r, name);
}

/* Point `id` of c as a JSON object ({"id","vector"?,"payload"?}); scratch
 * holds dim floats. Not NDL_OK (NDL_NOT_FOUND when it is gone): nothing
 * written, *e says why. */
static ndl_status write_point(srv_req *r, ndl_collection *c, ndl_id id, uint32_t dim,
                              bool with_vector, bool with_payload, float *scratch, ndl_error *e)
{
    char *payload = NULL;
    ndl_status st = ndl_collection_get_point(c, id, with_vector ? scratch : NULL,
                                             with_payload ? &payload : NULL, e);
    if (st != NDL_OK)
        return st;
    sbuf_puts(&r->out, "{\"id\":");
    sbuf_id(&r->out, id);
    if (with_vector) {
        sbuf_puts(&r->out, ",\"vector\":");
        sbuf_vector(&r->out, scratch, dim);
    }
    if (with_payload) {
        sbuf_puts(&r->out, ",\"payload\":");
        sbuf_puts(&r->out, payload ? payload : "null");
    }
    sbuf_put(&r->out, "}", 1);
    ndl_free(payload);
    return NDL_OK;
}

/* A JSON array of the points of ids that exist now (absent ones left out).
 * false after answering the error (out of memory). */
static bool write_points(srv_req *r, ndl_collection *c, const ndl_id *ids, size_t n,
                         bool with_vector, bool with_payload)
{
    float *v = malloc((r->dim ? r->dim : 1) * sizeof *v);
    if (!v) {
        reply_error(r, 503, "out_of_memory", "out of memory");
        return false;
    }
    sbuf_put(&r->out, "[", 1);
    bool first = true;
    ndl_status st = NDL_OK;
    ndl_error e;
    for (size_t i = 0; i < n && st == NDL_OK; i++) {
        size_t mark = r->out.len;
        if (!first)
            sbuf_put(&r->out, ",", 1);
        st = write_point(r, c, ids[i], r->dim, with_vector, with_payload, v, &e);
        if (st == NDL_OK) {
            first = false;
        } else if (st == NDL_NOT_FOUND) { /* gone: left out */
            r->out.len = mark;
            st = NDL_OK;
        }
    }
    sbuf_put(&r->out, "]", 1);
    free(v);
    if (st != NDL_OK)
        reply_lib(r, &e);
    return st == NDL_OK;
}

void h_point_get(srv_req *r)
{
    const char *name = r->seg[2];
    ndl_id id;
    if (!path_id(r, r->seg[4], &id))
        return;
    ndl_collection *c = registry_get(r, name);
    if (!c)
        return;
    uint32_t dim = r->dim;
    float *v = malloc((dim ? dim : 1) * sizeof *v);
    ndl_error e;
    if (!v) {
        reply_error(r, 503, "out_of_memory", "out of memory");
    } else if (write_point(r, c, id, dim, true, true, v, &e) != NDL_OK) {
        reply_lib(r, &e);
    } else {
        reply_buf(r, 200);
    }
    free(v);
    registry_put(r, name);
}

void h_point_patch(srv_req *r)
{
    const char *name = r->seg[2];
    ndl_id id;
    if (!path_id(r, r->seg[4], &id))
        return;
    json_t *body = body_object(r, false);
    static const char *const known[] = {"payload", NULL};
    if (!body || !fields_known(r, body, known, "patch")) {
        json_decref(body);
        return;
    }
    json_t *pl = json_object_get(body, "payload");
    if (!json_is_object(pl)) {
        json_decref(body);
        reply_error(r, 400, "invalid_argument", "patch needs 'payload': an object");
        return;
    }
    char *text = json_dumps(pl, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(body);
    ndl_collection *c = text ? registry_get(r, name) : NULL;
    if (!text)
        reply_error(r, 503, "out_of_memory", "out of memory");
    if (!c) {
        free(text);
        return;
    }
    ndl_error e;
    if (ndl_collection_set_payload(c, id, text, NDL_PAYLOAD_MERGE, &e) != NDL_OK) {
        reply_lib(r, &e);
    } else {
        sbuf_puts(&r->out, "{\"updated\":true}");
        reply_buf(r, 200);
    }
    free(text);
    registry_put(r, name);
}

/* {"ids":[..]} into an array (ids borrow from body). */
static ndl_id *read_ids(srv_req *r, json_t *body, size_t *n)
{
    json_t *ids = json_object_get(body, "ids");
    if (!json_is_array(ids)) {
        reply_error(r, 400, "invalid_argument", "'ids' must be an array of ids");
        return NULL;
    }
    *n = json_array_size(ids);
    ndl_id *out = malloc((*n ? *n : 1) * sizeof *out);
    if (!out) {
        reply_error(r, 503, "out_of_memory", "out of memory for %zu ids", *n);
        return NULL;
    }
    for (size_t i = 0; i < *n; i++) {
        char where[32];
        snprintf(where, sizeof where, "ids[%zu]", i);
        if (!parse_id(r, json_array_get(ids, i), &out[i], where)) {
            free(out);
            return NULL;
        }
    }
    return out;
}

void h_points_get(srv_req *r)
{
    const char *name = r->seg[2];
    json_t *body = body_object(r, false);
    static const char *const known[] = {"ids", "with_vector", "with_payload", NULL};
    int with_vector = 0, with_payload = 1;
    size_t n = 0;
    ndl_id *ids = NULL;
    ndl_collection *c = NULL;
    if (body && fields_known(r, body, known, "points/get") &&
        get_bool(r, body, "points/get", "with_vector", &with_vector) &&
        get_bool(r, body, "points/get", "with_payload", &with_payload) &&
        (ids = read_ids(r, body, &n)) &&
        (c = registry_get(r, name))) {
        sbuf_puts(&r->out, "{\"points\":");
        if (write_points(r, c, ids, n, with_vector, with_payload)) {
            sbuf_puts(&r->out, "}");
            reply_buf(r, 200);
        }
        registry_put(r, name);
    }
    free(ids);
    json_decref(body);
}

/* Delete by filter (f) or by ids, and answer how many went. */
static void delete_points(srv_req *r, const char *name, const ndl_filter *f, const ndl_id *ids,
                          size_t n)
{
    ndl_collection *c = registry_get(r, name);
    if (!c)
        return;
    size_t deleted = 0;
    ndl_error e;
    ndl_status rc = NDL_OK;
    if (f)
        rc = ndl_collection_delete_where(c, f, &deleted, &e);
    else if (n)
        rc = ndl_collection_delete(c, n, ids, &deleted, &e);
    if (rc != NDL_OK) {
        reply_lib(r, &e);
    } else {
        sbuf_printf(&r->out, "{\"deleted\":%zu}", deleted);
        reply_buf(r, 200);
    }
    registry_put(r, name);
}

void h_points_delete(srv_req *r)
{
    static const char *const known[] = {"ids", "filter", NULL};
    json_t *body = body_object(r, false);
    ndl_id *ids = NULL;
    ndl_filter *f = NULL;
    size_t n = 0;
    if (body && fields_known(r, body, known, "points/delete")) {
        /* a key with value null is as good as absent beside the other one
         * (clients send both); alone, each null gets its own 400 */
        json_t *jf = json_object_get(body, "filter"), *ji = json_object_get(body, "ids");
        bool has_filter = jf && !json_is_null(jf), has_ids = ji && !json_is_null(ji);
        if (has_filter && has_ids) {
            reply_error(r, 400, "invalid_argument",
                        "points/delete: give 'ids' or 'filter', not both");
        } else if (has_ids || !jf) {
            if ((ids = read_ids(r, body, &n)))
                delete_points(r, r->seg[2], NULL, ids, n);
        } else if (get_filter(r, body, "points/delete", &f)) {
            if (f)
                delete_points(r, r->seg[2], f, NULL, 0);
            else
                reply_error(r, 400, "invalid_argument",
                            "points/delete: 'filter' must be an object ({} deletes every point)");
        }
    }
    ndl_filter_free(f);
    free(ids);
    json_decref(body);
}

void h_count(srv_req *r)
{
    const char *name = r->seg[2];
    json_t *body = body_object(r, true);
    static const char *const known[] = {"filter", NULL};
    ndl_filter *f = NULL;
    ndl_collection *c = NULL;
    if (body && fields_known(r, body, known, "count") && get_filter(r, body, "count", &f) &&
        (c = registry_get(r, name))) {
        uint64_t n;
        ndl_error e;
        if (ndl_collection_count_where(c, f, &n, &e) != NDL_OK) {
            reply_lib(r, &e);
        } else {
            sbuf_printf(&r->out, "{\"count\":%llu}", (unsigned long long)n);
            reply_buf(r, 200);
        }
        registry_put(r, name);
    }
    ndl_filter_free(f);
    json_decref(body);
}

void h_scroll(srv_req *r)
{
    const char *name = r->seg[2];
    json_t *body = body_object(r, true);
    static const char *const known[] = {"limit", "cursor", "with_payload", "with_vector",
                                        "filter", NULL};
    uint32_t limit = 100;
    ndl_filter *f = NULL;
    int with_vector = 0, with_payload = 1;
    ndl_id after;
    json_t *cur = body ? json_object_get(body, "cursor") : NULL;
    bool has_cursor = cur && !json_is_null(cur);
    ndl_collection *c = NULL;
    if (body && fields_known(r, body, known, "scroll") &&
        get_filter(r, body, "scroll", &f) &&
        get_u32(r, body, "scroll", "limit", 1, NDL_SCROLL_MAX, &limit) &&
        get_bool(r, body, "scroll", "with_vector", &with_vector) &&
        get_bool(r, body, "scroll", "with_payload", &with_payload) &&
        (!has_cursor || parse_id(r, cur, &after, "cursor")) && (c = registry_get(r, name))) {
        ndl_id *ids;
        size_t n;
        ndl_error e;
        if (ndl_collection_scroll_where(c, f, has_cursor ? &after : NULL, limit, &ids, &n, &e) !=
            NDL_OK) {
            reply_lib(r, &e);
        } else {
            sbuf_puts(&r->out, "{\"points\":");
            if (write_points(r, c, ids, n, with_vector, with_payload)) {
                sbuf_puts(&r->out, ",\"next_cursor\":");
                if (n == limit)
                    sbuf_id(&r->out, ids[n - 1]);
                else
                    sbuf_puts(&r->out, "null");
                sbuf_put(&r->out, "}", 1);
                reply_buf(r, 200);
            }
            ndl_free(ids);
        }
        registry_put(r, name);
    }
    ndl_filter_free(f);
    json_decref(body);
}
