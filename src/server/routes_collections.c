/*
 * routes_collections.c -- list, create (201 new / 200 same config / 409
 * different), get (config and stats) and delete collections.
 */
#include <string.h>

#include "server/server_internal.h"

static json_t *config_json(const ndl_collection_config *cfg)
{
    json_t *index = json_pack("{s:s}", "type", ndl_index_name(cfg->index));
    if (cfg->index == NDL_INDEX_HNSW)
        json_object_update_new(index, json_pack("{s:I,s:I,s:I}", "m", (json_int_t)cfg->hnsw_m,
                                                "ef_construction",
                                                (json_int_t)cfg->hnsw_ef_construction, "seed",
                                                (json_int_t)cfg->seed));
    return json_pack("{s:I,s:s,s:o,s:{s:s},s:{}}", "dimension", (json_int_t)cfg->dimension,
                     "metric", ndl_metric_name(cfg->metric), "index", index, "quantization",
                     "type", "none", "fields");
}

static json_t *info_json(const char *name, ndl_collection *c, ndl_error *e)
{
    ndl_collection_info info;
    if (ndl_collection_info_get(c, &info, e) != NDL_OK)
        return NULL;
    json_t *j = config_json(&info.config);
    json_object_set_new(j, "name", json_string(name));
    json_object_set_new(j, "count", json_integer((json_int_t)info.count));
    json_object_set_new(j, "deleted", json_integer((json_int_t)info.deleted));
    json_object_set_new(j, "memory_bytes", json_integer((json_int_t)info.memory_bytes));
    json_object_set_new(j, "disk_bytes", json_integer((json_int_t)info.disk_bytes));
    const char *status = info.damaged[0] ? "damaged" : "ready";
    json_object_set_new(j, "status", json_string(status));
    if (info.damaged[0])
        json_object_set_new(j, "reason", json_string(info.damaged));
    return j;
}

typedef struct list_ctx {
    json_t *arr;
} list_ctx;

static void list_one(void *ctx, const char *name, ndl_collection *c)
{
    list_ctx *l = ctx;
    json_array_append_new(l->arr, json_pack("{s:s,s:I}", "name", name, "count",
                                            (json_int_t)ndl_collection_count(c)));
}

void h_collections_list(srv_req *r)
{
    list_ctx l = {json_array()};
    registry_each(r->srv->reg, list_one, &l);
    reply_json(r, 200, json_pack("{s:o}", "collections", l.arr));
}

/* The "index" field: "hnsw", "flat", or {"type":..,"m":..,..}. */
static bool parse_index(srv_req *r, json_t *v, ndl_collection_config *cfg)
{
    static const char *const known[] = {"type", "m", "ef_construction", "seed", NULL};
    json_t *type = json_is_object(v) ? json_object_get(v, "type") : v;
    const char *name = text_of(type);
    if (name && strcmp(name, "ivf") == 0) {
        reply_error(r, 501, "unsupported", "index type 'ivf' is not supported yet");
        return false;
    }
    if (json_is_object(v) && !fields_known(r, v, known, "index"))
        return false;
    if (type) {
        if (!name) {
            reply_error(r, 400, "invalid_argument", "'index' must be \"hnsw\", \"flat\" or an object with a 'type'");
            return false;
        }
        ndl_error e;
        if (ndl_index_parse(name, &cfg->index, &e) != NDL_OK) {
            reply_error(r, 400, "invalid_argument", "index: %s", e.msg);
            return false;
        }
    }
    if (!json_is_object(v))
        return true;
    uint32_t seed = (uint32_t)cfg->seed;
    bool ok = get_u32(r, v, "index", "m", NDL_HNSW_M_MIN, NDL_HNSW_M_MAX, &cfg->hnsw_m) &&
              get_u32(r, v, "index", "ef_construction", NDL_HNSW_EF_CONSTRUCTION_MIN,
                      NDL_HNSW_EF_CONSTRUCTION_MAX, &cfg->hnsw_ef_construction) &&
              get_u32(r, v, "index", "seed", 0, UINT32_MAX, &seed);
    cfg->seed = seed;
    return ok;
}

static bool parse_config(srv_req *r, json_t *body, ndl_collection_config *cfg)
{
    static const char *const known[] = {"dimension", "metric", "index", "quantization",
                                        "fields", NULL};
    if (!fields_known(r, body, known, "collection config"))
        return false;
    ndl_collection_config_init(cfg);
    cfg->dimension = 0;
    if (!json_object_get(body, "dimension") || !json_object_get(body, "metric")) {
        reply_error(r, 400, "invalid_argument", "collection config needs 'dimension' and 'metric'");
        return false;
    }
    if (!get_u32(r, body, "collection config", "dimension", 1, NDL_DIM_MAX, &cfg->dimension))
        return false;
    const char *metric = text_of(json_object_get(body, "metric"));
    ndl_error e;
    if (!metric || ndl_metric_parse(metric, &cfg->metric, &e) != NDL_OK) {
        reply_error(r, 400, "invalid_argument", "'metric' must be one of l2, cosine, ip, l1, hamming");
        return false;
    }
    json_t *q = json_object_get(body, "quantization");
    if (q) {
        static const char *const qknown[] = {"type", NULL};
        const char *t = text_of(json_is_object(q) ? json_object_get(q, "type") : q);
        if (t && strcmp(t, "none") != 0) {
            reply_error(r, 501, "unsupported", "quantization '%.40s' is not supported yet", t);
            return false;
        }
        if (json_is_object(q) && !fields_known(r, q, qknown, "quantization"))
            return false;
        if (!t) {
            reply_error(r, 400, "invalid_argument", "'quantization' must be {\"type\":\"none\"}");
            return false;
        }
    }
    json_t *f = json_object_get(body, "fields");
    if (f && !json_is_object(f)) {
        reply_error(r, 400, "invalid_argument", "'fields' must be an object");
        return false;
    }
    if (f && json_object_size(f) > 0) {
        reply_error(r, 501, "unsupported", "payload field indexes ('fields') are not supported yet");
        return false;
    }
    json_t *ix = json_object_get(body, "index");
    return !ix || parse_index(r, ix, cfg);
}

static bool same_config(const ndl_collection_config *a, const ndl_collection_config *b)
{
    return a->dimension == b->dimension && a->metric == b->metric && a->index == b->index &&
           (a->index != NDL_INDEX_HNSW ||
            (a->hnsw_m == b->hnsw_m && a->hnsw_ef_construction == b->hnsw_ef_construction &&
             a->seed == b->seed));
}

void h_collection_put(srv_req *r)
{
    const char *name = r->seg[2];
    if (!name_ok(r, name))
        return;
    json_t *body = body_object(r, false);
    ndl_collection_config cfg;
    if (!body || !parse_config(r, body, &cfg)) {
        json_decref(body);
        return;
    }
    json_decref(body);
    ndl_error e;
    ndl_status st = registry_create(r->srv->reg, name, &cfg, &e);
    if (st != NDL_OK && st != NDL_EXISTS) {
        reply_lib(r, &e);
        return;
    }
    ndl_collection *c = registry_get(r, name);
    if (!c)
        return;
    json_t *info = info_json(name, c, &e);
    ndl_collection_info now;
    bool same = st == NDL_OK ||
                (ndl_collection_info_get(c, &now, NULL) == NDL_OK && same_config(&now.config, &cfg));
    registry_put(r, name);
    if (!info) {
        reply_lib(r, &e);
    } else if (!same) {
        json_decref(info);
        reply_error(r, 409, "already_exists",
                    "collection '%s' already exists with a different config", name);
    } else {
        reply_json(r, st == NDL_OK ? 201 : 200,
                   json_pack("{s:b,s:o}", "created", st == NDL_OK, "collection", info));
    }
}

void h_collection_get(srv_req *r)
{
    const char *name = r->seg[2];
    ndl_collection *c = registry_get(r, name);
    if (!c)
        return;
    ndl_error e;
    json_t *info = info_json(name, c, &e);
    registry_put(r, name);
    if (info)
        reply_json(r, 200, info);
    else
        reply_lib(r, &e);
}

void h_collection_delete(srv_req *r)
{
    const char *name = r->seg[2];
    if (!name_ok(r, name))
        return;
    ndl_error e;
    if (registry_drop(r->srv->reg, name, &e) != NDL_OK) {
        reply_lib(r, &e);
        return;
    }
    sbuf_puts(&r->out, "{\"deleted\":true}");
    reply_buf(r, 200);
}
