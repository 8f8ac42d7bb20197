/* names.c -- parsing and naming of metrics and index types, id constructors,
 * collection-name rules and option defaults: the small vocabulary of needle.h. */
#include <string.h>

#include "util/base.h"

static const char *const metric_names[] = {"l2", "cosine", "ip", "l1", "hamming"};
static const char *const index_names[] = {"flat", "hnsw"};

NDL_API ndl_status ndl_metric_parse(const char *s, ndl_metric *out, ndl_error *err)
{
    for (size_t i = 0; s && i < NDL_ARRAY_LEN(metric_names); i++)
        if (strcmp(s, metric_names[i]) == 0) {
            *out = (ndl_metric)i;
            return NDL_OK;
        }
    return ndl_err(err, NDL_INVALID, "unknown metric '%s' (expected l2, cosine, ip, l1 or hamming)",
                   s ? s : "");
}

NDL_API const char *ndl_metric_name(ndl_metric m)
{
    return (unsigned)m < NDL_ARRAY_LEN(metric_names) ? metric_names[m] : "unknown";
}

NDL_API ndl_status ndl_index_parse(const char *s, ndl_index_type *out, ndl_error *err)
{
    for (size_t i = 0; s && i < NDL_ARRAY_LEN(index_names); i++)
        if (strcmp(s, index_names[i]) == 0) {
            *out = (ndl_index_type)i;
            return NDL_OK;
        }
    if (s && strcmp(s, "ivf") == 0)
        return ndl_err(err, NDL_UNSUPPORTED, "index 'ivf' is not supported yet (use flat or hnsw)");
    return ndl_err(err, NDL_INVALID, "unknown index '%s' (expected flat or hnsw)", s ? s : "");
}

NDL_API const char *ndl_index_name(ndl_index_type t)
{
    return (unsigned)t < NDL_ARRAY_LEN(index_names) ? index_names[t] : "unknown";
}

static const char *const fsync_names[] = {"always", "batch", "none"};

NDL_API ndl_status ndl_fsync_parse(const char *s, ndl_fsync *out, ndl_error *err)
{
    for (size_t i = 0; s && i < NDL_ARRAY_LEN(fsync_names); i++)
        if (strcmp(s, fsync_names[i]) == 0) {
            *out = (ndl_fsync)i;
            return NDL_OK;
        }
    return ndl_err(err, NDL_INVALID, "unknown fsync mode '%s' (expected always, batch or none)",
                   s ? s : "");
}

NDL_API const char *ndl_fsync_name(ndl_fsync f)
{
    return (unsigned)f < NDL_ARRAY_LEN(fsync_names) ? fsync_names[f] : "unknown";
}

NDL_API ndl_id ndl_id_u64(uint64_t num)
{
    ndl_id id = {NULL, 0, num};
    return id;
}

NDL_API ndl_id ndl_id_str(const char *s)
{
    ndl_id id = {s, (uint32_t)strlen(s), 0};
    return id;
}

NDL_API int ndl_name_valid(const char *name)
{
    if (!name)
        return 0;
    size_t n = 0;
    for (; name[n]; n++) {
        char c = name[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok || n >= NDL_NAME_MAX)
            return 0;
    }
    return n >= 1;
}

NDL_API void ndl_db_options_init(ndl_db_options *o)
{
    memset(o, 0, sizeof *o);
    o->version = 1;
    o->create_if_missing = 1;
    o->fsync = NDL_FSYNC_ALWAYS;
    o->checkpoint_wal_bytes = (uint64_t)256 << 20;
    o->checkpoint_interval_ms = 60000;
    o->max_payload_bytes = NDL_PAYLOAD_BYTES_DEFAULT;
}

NDL_API void ndl_collection_config_init(ndl_collection_config *c)
{
    memset(c, 0, sizeof *c);
    c->version = 1;
    c->metric = NDL_METRIC_L2;
    c->index = NDL_INDEX_HNSW;
    c->hnsw_m = NDL_HNSW_M_DEFAULT;
    c->hnsw_ef_construction = NDL_HNSW_EF_CONSTRUCTION_DEFAULT;
    c->seed = NDL_HNSW_SEED_DEFAULT;
}

NDL_API void ndl_write_options_init(ndl_write_options *o)
{
    memset(o, 0, sizeof *o);
    o->version = 1;
    o->threads = 1;
}

NDL_API void ndl_search_params_init(ndl_search_params *p)
{
    memset(p, 0, sizeof *p);
    p->version = 1;
    p->k = 10;
    p->threads = 1;
}
