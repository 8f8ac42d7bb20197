/*
 * log_records.c -- encoding and decoding of write-ahead log records (layouts
 * in log_records.h). Decoding trusts nothing: every count is checked
 * against the bytes present before anything is read.
 */
#include "db/log_records.h"

#include <string.h>

#include "util/alloc.h"
#include "util/le.h"

#define ID_NUM_TAG 0xffffffffu
#define TEXT_NONE_TAG 0xffffffffu

void log_buf_free(log_buf *b)
{
    ndl_free(b->p);
    memset(b, 0, sizeof *b);
}

static void put(log_buf *b, const void *src, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = ndl_realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(log_buf *b, uint32_t v)
{
    uint8_t t[4];
    le_put32(t, v);
    put(b, t, 4);
}

static void put_id(log_buf *b, ndl_id id)
{
    if (id.str) {
        put_u32(b, id.len);
        put(b, id.str, id.len);
    } else {
        uint8_t t[8];
        le_put64(t, id.num);
        put_u32(b, ID_NUM_TAG);
        put(b, t, 8);
    }
}

static ndl_status finish(log_buf *b, ndl_error *err)
{
    return b->failed ? ndl_err(err, NDL_NOMEM, "out of memory for a log record") : NDL_OK;
}

static void put_text(log_buf *b, log_text t)
{
    if (!t.p) {
        put_u32(b, TEXT_NONE_TAG);
        return;
    }
    put_u32(b, t.len);
    put(b, t.p, t.len);
}

ndl_status log_encode_upsert_head(log_buf *b, size_t n, const ndl_id *ids, uint32_t dim,
                                  const log_text *payloads, ndl_error *err)
{
    put_u32(b, (uint32_t)n);
    put_u32(b, dim);
    for (size_t i = 0; i < n; i++)
        put_id(b, ids[i]);
    for (size_t i = 0; i < n; i++)
        put_text(b, payloads ? payloads[i] : (log_text){NULL, 0});
    static const uint8_t zeros[4];
    put(b, zeros, (4 - (b->len & 3)) & 3);
    return finish(b, err);
}

ndl_status log_encode_upsert(log_buf *b, size_t n, const ndl_id *ids, uint32_t dim,
                             const log_text *payloads, const float *vectors, ndl_error *err)
{
    log_encode_upsert_head(b, n, ids, dim, payloads, NULL);
    put(b, vectors, n * dim * sizeof(float));
    return finish(b, err);
}

ndl_status log_encode_payload(log_buf *b, ndl_id id, log_text payload, ndl_error *err)
{
    put_id(b, id);
    put_text(b, payload);
    return finish(b, err);
}

ndl_status log_encode_field(log_buf *b, uint32_t type, const char *name, ndl_error *err)
{
    put_u32(b, type);
    put_text(b, (log_text){name, (uint32_t)strlen(name)});
    return finish(b, err);
}

ndl_status log_encode_delete(log_buf *b, size_t n, const ndl_id *ids, ndl_error *err)
{
    put_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        put_id(b, ids[i]);
    return finish(b, err);
}

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static bool get_u32(reader *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return false;
    *v = le_get32(r->p);
    r->p += 4;
    return true;
}

static ndl_status get_ids(reader *r, size_t n, ndl_id *ids, ndl_error *err)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t tag;
        if (!get_u32(r, &tag))
            return ndl_err(err, NDL_CORRUPT, "log record: id %zu is truncated", i);
        if (tag == ID_NUM_TAG) {
            if (r->end - r->p < 8)
                return ndl_err(err, NDL_CORRUPT, "log record: id %zu is truncated", i);
            ids[i] = (ndl_id){NULL, 0, 0};
            ids[i].num = le_get64(r->p);
            r->p += 8;
        } else {
            if (tag == 0 || tag > NDL_ID_STR_MAX || (size_t)(r->end - r->p) < tag)
                return ndl_err(err, NDL_CORRUPT, "log record: id %zu has a bad length %u", i, tag);
            ids[i] = (ndl_id){(const char *)r->p, tag, 0};
            r->p += tag;
        }
    }
    return NDL_OK;
}

/* Refuse id counts the record cannot hold
 * before allocating for them. */
static ndl_status alloc_ids(reader *r, uint32_t n, log_batch *out, ndl_error *err)
{
    if ((size_t)(r->end - r->p) / 5 < n) /* the shortest id takes 5 bytes */
        return ndl_err(err, NDL_CORRUPT, "log record: %u ids do not fit in it", n);
    out->n = n;
    out->ids = ndl_malloc(((size_t)n + 1) * sizeof *out->ids);
    return out->ids ? NDL_OK : ndl_err(err, NDL_NOMEM, "out of memory replaying the log");
}

static ndl_status get_text(reader *r, log_text *t)
{
    uint32_t tag;
    if (!get_u32(r, &tag))
        return NDL_CORRUPT;
    if (tag == TEXT_NONE_TAG) {
        *t = (log_text){NULL, 0};
        return NDL_OK;
    }
    if ((size_t)(r->end - r->p) < tag)
        return NDL_CORRUPT;
    *t = (log_text){(const char *)r->p, tag};
    r->p += tag;
    return NDL_OK;
}

static ndl_status get_payloads(reader *r, const uint8_t *start, log_batch *out, ndl_error *err)
{
    if ((size_t)(r->end - r->p) / 4 < out->n) /* the shortest payload takes 4 bytes */
        return ndl_err(err, NDL_CORRUPT, "log record: %zu payloads do not fit in it", out->n);
    out->payloads = ndl_malloc((out->n + 1) * sizeof *out->payloads);
    if (!out->payloads)
        return ndl_err(err, NDL_NOMEM, "out of memory replaying the log");
    for (size_t i = 0; i < out->n; i++)
        if (get_text(r, &out->payloads[i]) != NDL_OK)
            return ndl_err(err, NDL_CORRUPT, "log record: payload %zu is truncated", i);
    size_t pad = (4 - ((size_t)(r->p - start) & 3)) & 3;
    if ((size_t)(r->end - r->p) < pad)
        return ndl_err(err, NDL_CORRUPT, "log record: padding is truncated");
    for (size_t i = 0; i < pad; i++)
        if (r->p[i])
            return ndl_err(err, NDL_CORRUPT, "log record: padding is not zero");
    r->p += pad;
    return NDL_OK;
}

ndl_status log_decode_upsert(const void *data, size_t len, uint32_t type, uint32_t expected_dim,
                             log_batch *out, ndl_error *err)
{
    memset(out, 0, sizeof *out);
    reader r = {data, (const uint8_t *)data + len};
    uint32_t n, dim;
    if (!get_u32(&r, &n) || !get_u32(&r, &dim))
        return ndl_err(err, NDL_CORRUPT, "log record: upsert header is truncated");
    if (dim != expected_dim)
        return ndl_err(err, NDL_CORRUPT, "log record: dimension %u, collection has %u", dim,
                       expected_dim);
    ndl_status rc = alloc_ids(&r, n, out, err);
    if (rc == NDL_OK)
        rc = get_ids(&r, n, out->ids, err);
    if (rc == NDL_OK && type == LOG_UPSERT_P)
        rc = get_payloads(&r, data, out, err);
    if (rc == NDL_OK && (size_t)(r.end - r.p) != (size_t)n * dim * sizeof(float))
        rc = ndl_err(err, NDL_CORRUPT, "log record: %zu vector bytes for %u x %u floats",
                     (size_t)(r.end - r.p), n, dim);
    if (rc == NDL_OK) {
        if (((uintptr_t)r.p & (sizeof(float) - 1)) == 0) {
            out->vectors = (const float *)(const void *)r.p;
        } else if (n) {
            out->owned = ndl_malloc((size_t)n * dim * sizeof(float));
            if (!out->owned)
                rc = ndl_err(err, NDL_NOMEM, "out of memory replaying the log");
            else
                memcpy(out->owned, r.p, (size_t)n * dim * sizeof(float));
            out->vectors = out->owned;
        }
    }
    if (rc != NDL_OK)
        log_batch_free(out);
    return rc;
}

ndl_status log_decode_delete(const void *data, size_t len, log_batch *out, ndl_error *err)
{
    memset(out, 0, sizeof *out);
    reader r = {data, (const uint8_t *)data + len};
    uint32_t n;
    if (!get_u32(&r, &n))
        return ndl_err(err, NDL_CORRUPT, "log record: delete header is truncated");
    ndl_status rc = alloc_ids(&r, n, out, err);
    if (rc == NDL_OK)
        rc = get_ids(&r, n, out->ids, err);
    if (rc == NDL_OK && r.p != r.end)
        rc = ndl_err(err, NDL_CORRUPT, "log record: trailing bytes after %u ids", n);
    if (rc != NDL_OK)
        log_batch_free(out);
    return rc;
}

ndl_status log_decode_payload(const void *data, size_t len, ndl_id *id, log_text *payload,
                              ndl_error *err)
{
    reader r = {data, (const uint8_t *)data + len};
    ndl_status rc = get_ids(&r, 1, id, err);
    if (rc != NDL_OK)
        return rc;
    if (get_text(&r, payload) != NDL_OK)
        return ndl_err(err, NDL_CORRUPT, "log record: payload is truncated");
    if (r.p != r.end)
        return ndl_err(err, NDL_CORRUPT, "log record: trailing bytes after the payload");
    return NDL_OK;
}

ndl_status log_decode_field(const void *data, size_t len, uint32_t *type, const char **name,
                            size_t *name_len, ndl_error *err)
{
    reader r = {data, (const uint8_t *)data + len};
    log_text t;
    if (!get_u32(&r, type) || get_text(&r, &t) != NDL_OK || !t.p || r.p != r.end)
        return ndl_err(err, NDL_CORRUPT, "log record: a field record is malformed");
    *name = t.p;
    *name_len = t.len;
    return NDL_OK;
}

void log_batch_free(log_batch *b)
{
    ndl_free(b->ids);
    ndl_free(b->payloads);
    ndl_free(b->owned);
    memset(b, 0, sizeof *b);
}
