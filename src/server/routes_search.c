/*
 * routes_search.c -- POST .../search and .../search/batch (SPEC section 4):
 * nearest neighbours of a vector with k, ef, exact, offset, min_score, a
 * payload filter, explain and what each hit carries. Fields of later
 * releases (text, fusion, rerank, nprobe) are refused by name, never
 * ignored.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

typedef struct search_req {
    float *vector;
    ndl_search_params p;
    uint32_t k, offset;
    double min_score;
    bool has_min_score;
    int with_vector;
    int explain;
    ndl_filter *where;     /* the search's filter, or NULL; freed by the handler */
    ndl_explain ex;        /* how it ran, when explain */
    const fast_vec *fast;  /* the vector, read already (the parsed rest holds 0 there) */
} search_req;

/* Read one search object into q (q->vector: dim floats, the caller's). */
static bool parse_search(srv_req *r, json_t *s, uint32_t dim, search_req *q, const char *where)
{
    static const char *const known[] = {"vector", "k", "ef", "exact", "offset", "min_score",
                                        "with_payload", "with_vector", "filter", "explain",
                                        "text", "text_fields", "fusion", "rerank", "nprobe",
                                        NULL};
    static const char *const later[] = {"text", "text_fields", "fusion", "rerank", "nprobe",
                                        NULL};
    if (!json_is_object(s)) {
        reply_error(r, 400, "invalid_argument", "%s must be an object", where);
        return false;
    }
    if (!fields_known(r, s, known, where) || !fields_not_yet(r, s, later, where))
        return false;
    ndl_search_params_init(&q->p);
    q->k = 10;
    q->offset = 0;
    q->with_vector = 0;
    q->p.with_payload = 1;
    int exact = 0;
    if (!get_u32(r, s, where, "k", 1, 10000, &q->k) ||
        !get_u32(r, s, where, "ef", 1, NDL_HNSW_EF_MAX, &q->p.ef) ||
        !get_u32(r, s, where, "offset", 0, 9999, &q->offset) ||
        !get_bool(r, s, where, "exact", &exact) ||
        !get_bool(r, s, where, "with_payload", &q->p.with_payload) ||
        !get_bool(r, s, where, "with_vector", &q->with_vector) ||
        !get_bool(r, s, where, "explain", &q->explain))
        return false;
    q->has_min_score = json_object_get(s, "min_score") != NULL;
    if (q->has_min_score && !get_double(r, s, where, "min_score", &q->min_score))
        return false;
    if (q->k + q->offset > 10000) {
        reply_error(r, 400, "invalid_argument", "%s: k + offset is %u; at most 10000", where,
                    q->k + q->offset);
        return false;
    }
    if (q->p.ef && q->p.ef < q->k + q->offset) { /* the library would name only the sum */
        reply_error(r, 400, "invalid_argument", "%s: 'ef' (%u) must be at least k + offset (%u)",
                    where, q->p.ef, q->k + q->offset);
        return false;
    }
    json_t *v = json_object_get(s, "vector");
    if (!v) {
        reply_error(r, 400, "invalid_argument", "%s: 'vector' is required", where);
        return false;
    }
    q->p.k = q->k + q->offset;
    q->p.exact = exact;
    if (!get_filter(r, s, where, &q->where)) /* the handler frees it */
        return false;
    q->p.where = q->where;
    if (q->fast) { /* as parse_vector would check it */
        if (q->fast->n != dim) {
            reply_error(r, 400, "invalid_argument",
                        "%s: vector has %zu values; the collection has dimension %u", where,
                        q->fast->n, dim);
            return false;
        }
        for (uint32_t i = 0; i < dim; i++) {
            if (!isfinite(q->fast->v[i])) {
                reply_error(r, 400, "invalid_argument", "%s: vector value %u is out of the float range",
                            where, i);
                return false;
            }
            q->vector[i] = q->fast->v[i];
        }
        return true;
    }
    return parse_vector(r, v, dim, q->vector, where);
}

/* Run q and write its hits as a JSON array. */
static bool run_search(srv_req *r, ndl_collection *c, uint32_t dim, search_req *q, float *scratch)
{
    ndl_results *res;
    ndl_error e;
    if (ndl_collection_search(c, q->vector, &q->p, &res, &e) != NDL_OK) {
        reply_lib(r, &e);
        return false;
    }
    ndl_results_explain(res, &q->ex);
    metrics_search(q->ex.plan, q->ex.filtered);
    const ndl_hit *h = ndl_results_hits(res, 0);
    size_t n = ndl_results_count(res, 0);
    sbuf_put(&r->out, "[", 1);
    bool first = true;
    for (size_t i = q->offset; i < n; i++) {
        if (q->has_min_score && h[i].score < q->min_score)
            continue;
        if (!first)
            sbuf_put(&r->out, ",", 1);
        first = false;
        sbuf_puts(&r->out, "{\"id\":");
        sbuf_id(&r->out, h[i].id);
        sbuf_puts(&r->out, ",\"score\":");
        sbuf_score(&r->out, h[i].score);
        sbuf_puts(&r->out, ",\"distance\":");
        sbuf_score(&r->out, h[i].distance);
        if (q->p.with_payload) {
            const char *pl = ndl_results_payload(res, 0, i);
            sbuf_puts(&r->out, ",\"payload\":");
            sbuf_puts(&r->out, pl ? pl : "null");
        }
        if (q->with_vector) {
            sbuf_puts(&r->out, ",\"vector\":");
            if (ndl_collection_get(c, h[i].id, scratch, NULL) == NDL_OK) {
                sbuf_vector(&r->out, scratch, dim);
            } else {
                sbuf_puts(&r->out, "null"); /* deleted since the search */
            }
        }
        sbuf_put(&r->out, "}", 1);
    }
    sbuf_put(&r->out, "]", 1);
    ndl_results_free(res);
    return true;
}

/* "explain":{...} of one search. */
static void write_explain(sbuf *o, const ndl_explain *ex)
{
    sbuf_puts(o, "{\"plan\":");
    sbuf_json_string(o, ex->plan, strlen(ex->plan));
    sbuf_puts(o, ex->filtered ? ",\"filtered\":true" : ",\"filtered\":false");
    if (ex->filtered) {
        sbuf_puts(o, ",\"estimated_matches\":");
        sbuf_u64(o, ex->estimated);
        sbuf_puts(o, ",\"matched\":");
        sbuf_u64(o, ex->matched);
        sbuf_puts(o, ",\"filter_checks\":");
        sbuf_u64(o, ex->checked);
    }
    sbuf_puts(o, ",\"visited\":");
    sbuf_u64(o, ex->visited);
    if (ex->ef) {
        sbuf_puts(o, ",\"ef\":");
        sbuf_u64(o, ex->ef);
    }
    sbuf_put(o, "}", 1);
}

void h_search(srv_req *r)
{
    const char *name = r->seg[2];
    double t0 = now_seconds();
    fast_vec fv;
    bool fast = fast_vector(r->body, r->len, &fv);
    json_t *body = fast ? parse_object(r, fv.rest, fv.rest_len, "body", false) : NULL;
    if (!body) /* no fast path, or an error: named where the client put it */
        body = body_object(r, false);
    ndl_collection *c = body ? registry_get(r, name) : NULL;
    if (c) {
        uint32_t dim = r->dim;
        search_req q = {.fast = fast ? &fv : NULL};
        q.vector = malloc(2 * (size_t)(dim ? dim : 1) * sizeof(float));
        if (!q.vector) {
            reply_error(r, 503, "out_of_memory", "out of memory");
        } else if (parse_search(r, body, dim, &q, "search")) {
            sbuf_puts(&r->out, "{\"results\":");
            if (run_search(r, c, dim, &q, q.vector + dim)) {
                if (q.explain) {
                    sbuf_puts(&r->out, ",\"explain\":");
                    write_explain(&r->out, &q.ex);
                }
                sbuf_printf(&r->out, ",\"took_ms\":%.3f}", (now_seconds() - t0) * 1e3);
                reply_buf(r, 200);
            }
        }
        ndl_filter_free(q.where);
        free(q.vector);
        registry_put(r, name);
    }
    json_decref(body);
    if (fast)
        fast_vector_free(&fv);
}

void h_search_batch(srv_req *r)
{
    const char *name = r->seg[2];
    double t0 = now_seconds();
    json_t *body = body_object(r, false);
    static const char *const known[] = {"searches", NULL};
    if (!body || !fields_known(r, body, known, "search/batch")) {
        json_decref(body);
        return;
    }
    json_t *all = json_object_get(body, "searches");
    if (!json_is_array(all) || json_array_size(all) < 1 || json_array_size(all) > 1024) {
        reply_error(r, 400, "invalid_argument", "'searches' must be an array of 1..1024 searches");
        json_decref(body);
        return;
    }
    ndl_collection *c = registry_get(r, name);
    if (c) {
        /* every search is read and checked before any runs: a bad one
         * costs no search and is named by its place */
        size_t n = json_array_size(all);
        uint32_t dim = r->dim ? r->dim : 1;
        search_req *qs = calloc(n, sizeof *qs);
        float *vecs = malloc((n + 1) * (size_t)dim * sizeof *vecs); /* + a scratch row */
        bool ok = qs && vecs;
        if (!ok)
            reply_error(r, 503, "out_of_memory", "out of memory for %zu searches", n);
        for (size_t i = 0; ok && i < n; i++) {
            char where[40];
            snprintf(where, sizeof where, "searches[%zu]", i);
            qs[i].vector = vecs + i * dim;
            ok = parse_search(r, json_array_get(all, i), r->dim, &qs[i], where);
        }
        if (ok)
            sbuf_puts(&r->out, "{\"results\":[");
        for (size_t i = 0; ok && i < n; i++) {
            if (i)
                sbuf_put(&r->out, ",", 1);
            ok = run_search(r, c, r->dim, &qs[i], vecs + n * dim);
        }
        bool any_explain = false;
        for (size_t i = 0; ok && i < n; i++)
            any_explain |= qs[i].explain != 0;
        if (ok && any_explain) { /* one entry per search, null where not asked */
            sbuf_puts(&r->out, "],\"explain\":[");
            for (size_t i = 0; i < n; i++) {
                if (i)
                    sbuf_put(&r->out, ",", 1);
                if (qs[i].explain)
                    write_explain(&r->out, &qs[i].ex);
                else
                    sbuf_puts(&r->out, "null");
            }
        }
        if (ok) {
            sbuf_printf(&r->out, "],\"took_ms\":%.3f}", (now_seconds() - t0) * 1e3);
            reply_buf(r, 200);
        }
        for (size_t i = 0; qs && i < n; i++)
            ndl_filter_free(qs[i].where);
        free(qs);
        free(vecs);
        registry_put(r, name);
    }
    json_decref(body);
}
