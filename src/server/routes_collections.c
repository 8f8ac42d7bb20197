/*
 * routes_collections.c -- list, create (201 new / 200 same config / 409
 * different), get (config and stats) and delete collections, and add a
 * payload index to one (PUT .../fields/{field}).
 */
#include <math.h>
#include <string.h>

#include "server/server_internal.h"

/* {"name":"type",...} of c's indexed fields. */
static json_t *fields_json(ndl_collection *c)
{
    json_t *f = json_object();
    for (size_t i = 0, n = ndl_collection_field_count(c); f && i < n; i++) {
        char name[NDL_FIELD_NAME_MAX + 1];
        ndl_field_type t;
        if (ndl_collection_field_get(c, i, name, &t, NULL) == NDL_OK)
            json_object_set_new(f, name, json_string(ndl_field_type_name(t)));
    }
    return f;
}

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
    json_object_set_new(j, "fields", fields_json(c));
    json_object_set_new(j, "name", json_string(name));
    json_object_set_new(j, "count", json_integer((json_int_t)info.count));
    json_object_set_new(j, "deleted", json_integer((json_int_t)info.deleted));
    json_object_set_new(j, "memory_bytes", json_integer((json_int_t)info.memory_bytes));
    json_object_set_new(j, "disk_bytes", json_integer((json_int_t)info.disk_bytes));
    if (info.config.index == NDL_INDEX_HNSW) /* the default ef, learned from the queries */
        json_object_set_new(j, "search", json_pack("{s:I,s:o,s:I}", "ef", (json_int_t)info.search_ef,
                                                   "recall", info.search_ef_queries
                                                                 ? json_real(round(info.search_ef_recall * 1e4) / 1e4)
                                                                 : json_null(),
                                                   "sample_queries",
                                                   (json_int_t)info.search_ef_queries));
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

#define FIELD_TYPES "keyword, int, float, bool, date or text"

/* v as an ndl_field_type, or -1 when it is not a string naming one. */
static int field_type_of(json_t *v)
{
    const char *t = text_of(v);
    return t ? ndl_field_type_from_name(t) : -1;
}

/* The "fields" of a create: {"name":"type",...}, each checked. */
static bool parse_fields(srv_req *r, json_t *f)
{
    if (!f)
        return true;
    if (!json_is_object(f)) {
        reply_error(r, 400, "invalid_argument", "'fields' must be an object of field name: type");
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach(f, key, v)
    {
        ndl_error e;
        if (ndl_field_name_check(key, &e) != NDL_OK) {
            reply_error(r, 400, "invalid_argument", "fields: %s", e.msg);
            return false;
        }
        if (field_type_of(v) < 0) {
            reply_error(r, 400, "invalid_argument", "fields: '%.100s' needs a type: " FIELD_TYPES,
                        key);
            return false;
        }
    }
    return true;
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
    if (!parse_fields(r, json_object_get(body, "fields")))
        return false;
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

/* c indexes exactly the fields f names, with their types. */
static bool same_fields(ndl_collection *c, json_t *f)
{
    size_t n = ndl_collection_field_count(c);
    if (n != (f ? json_object_size(f) : 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        char name[NDL_FIELD_NAME_MAX + 1];
        ndl_field_type t;
        const char *want = ndl_collection_field_get(c, i, name, &t, NULL) == NDL_OK
                               ? text_of(json_object_get(f, name))
                               : NULL;
        if (!want || strcmp(want, ndl_field_type_name(t)) != 0)
            return false;
    }
    return true;
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
    json_t *fields = json_object_get(body, "fields");
    ndl_error e;
    ndl_status st = registry_create(r->srv->reg, name, &cfg, &e);
    ndl_collection *c = st == NDL_OK || st == NDL_EXISTS ? registry_get(r, name) : NULL;
    if (st != NDL_OK && st != NDL_EXISTS)
        reply_lib(r, &e);
    if (!c) {
        json_decref(body);
        return;
    }
    const char *key;
    json_t *v;
    if (st == NDL_OK && fields) { /* a new, empty collection: building costs nothing */
        json_object_foreach(fields, key, v)
        {
            if (ndl_collection_add_field(c, key, (ndl_field_type)field_type_of(v),
                                         &e) != NDL_OK) {
                reply_lib(r, &e);
                registry_put(r, name);
                json_decref(body);
                return;
            }
        }
    }
    json_t *info = info_json(name, c, &e);
    ndl_collection_info now;
    bool same = st == NDL_OK ||
                (ndl_collection_info_get(c, &now, NULL) == NDL_OK && same_config(&now.config, &cfg) &&
                 same_fields(c, fields));
    registry_put(r, name);
    json_decref(body);
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

void h_field_put(srv_req *r)
{
    const char *name = r->seg[2], *field = r->seg[4];
    json_t *body = body_object(r, false);
    static const char *const known[] = {"type", NULL};
    int type = field_type_of(json_object_get(body, "type")); /* -1 without a body */
    ndl_error e;
    ndl_collection *c = NULL;
    if (!body || !fields_known(r, body, known, "field")) {
        /* answered */
    } else if (ndl_field_name_check(field, &e) != NDL_OK) {
        reply_error(r, 400, "invalid_argument", "%s", e.msg);
    } else if (type < 0) {
        reply_error(r, 400, "invalid_argument",
                    "field: 'type' must be " FIELD_TYPES);
    } else if ((c = registry_get(r, name))) {
        size_t before = ndl_collection_field_count(c);
        if (ndl_collection_add_field(c, field, (ndl_field_type)type, &e) != NDL_OK) {
            reply_lib(r, &e);
        } else {
            bool created = ndl_collection_field_count(c) > before;
            reply_json(r, created ? 201 : 200,
                       json_pack("{s:b,s:s,s:s}", "created", created, "field", field, "type",
                                 ndl_field_type_name((ndl_field_type)type)));
        }
        registry_put(r, name);
    }
    json_decref(body);
}
