/*
 * router.c -- method + path -> handler, with who may call it. Paths are
 * matched by segments ("{}" matches any one); a known path with another
 * method is 405, an unknown one 404.
 */
#include <string.h>

#include "server/server_internal.h"

typedef struct route {
    const char *method;
    const char *pattern; /* segments after the leading '/', '/'-separated */
    int id;
    srv_role needs;      /* ROLE_NONE: open (health) */
    void (*run)(srv_req *r);
} route;

const char *const route_names[ROUTE_N] = {
    [ROUTE_HEALTH] = "/v1/health",
    [ROUTE_METRICS] = "/metrics",
    [ROUTE_COLLECTIONS] = "/v1/collections",
    [ROUTE_COLLECTION] = "/v1/collections/{name}",
    [ROUTE_POINTS] = "/v1/collections/{name}/points",
    [ROUTE_POINT] = "/v1/collections/{name}/points/{id}",
    [ROUTE_POINTS_GET] = "/v1/collections/{name}/points/get",
    [ROUTE_POINTS_DELETE] = "/v1/collections/{name}/points/delete",
    [ROUTE_SEARCH] = "/v1/collections/{name}/search",
    [ROUTE_SEARCH_BATCH] = "/v1/collections/{name}/search/batch",
    [ROUTE_COUNT] = "/v1/collections/{name}/count",
    [ROUTE_SCROLL] = "/v1/collections/{name}/scroll",
    [ROUTE_FIELD] = "/v1/collections/{name}/fields/{field}",
    [ROUTE_LATER] = "(not supported yet)",
    [ROUTE_UNKNOWN] = "(unknown)",
};

static void h_later(srv_req *r)
{
    reply_error(r, 501, "unsupported", "%s %s is not supported yet", r->method, r->url);
}

/* More specific patterns first: points/get before points/{id}. */
static const route routes[] = {
    {"GET", "v1/health", ROUTE_HEALTH, ROLE_NONE, h_health},
    {"GET", "metrics", ROUTE_METRICS, ROLE_READ, h_metrics},
    {"GET", "v1/collections", ROUTE_COLLECTIONS, ROLE_READ, h_collections_list},
    {"PUT", "v1/collections/{}", ROUTE_COLLECTION, ROLE_ADMIN, h_collection_put},
    {"GET", "v1/collections/{}", ROUTE_COLLECTION, ROLE_READ, h_collection_get},
    {"DELETE", "v1/collections/{}", ROUTE_COLLECTION, ROLE_ADMIN, h_collection_delete},
    {"POST", "v1/collections/{}/points", ROUTE_POINTS, ROLE_ADMIN, h_points_upsert},
    {"POST", "v1/collections/{}/points/get", ROUTE_POINTS_GET, ROLE_READ, h_points_get},
    {"POST", "v1/collections/{}/points/delete", ROUTE_POINTS_DELETE, ROLE_ADMIN, h_points_delete},
    {"GET", "v1/collections/{}/points/{}", ROUTE_POINT, ROLE_READ, h_point_get},
    {"PATCH", "v1/collections/{}/points/{}", ROUTE_POINT, ROLE_ADMIN, h_point_patch},
    {"POST", "v1/collections/{}/search", ROUTE_SEARCH, ROLE_READ, h_search},
    {"POST", "v1/collections/{}/search/batch", ROUTE_SEARCH_BATCH, ROLE_READ, h_search_batch},
    {"POST", "v1/collections/{}/count", ROUTE_COUNT, ROLE_READ, h_count},
    {"POST", "v1/collections/{}/scroll", ROUTE_SCROLL, ROLE_READ, h_scroll},
    {"PUT", "v1/collections/{}/fields/{}", ROUTE_FIELD, ROLE_ADMIN, h_field_put},
    /* SPEC routes of later releases: a clear 501 */
    {"POST", "v1/collections/{}/recommend", ROUTE_LATER, ROLE_READ, h_later},
    {"POST", "v1/collections/{}/clusters/train", ROUTE_LATER, ROLE_ADMIN, h_later},
    {"GET", "v1/collections/{}/clusters", ROUTE_LATER, ROLE_READ, h_later},
    {"GET", "v1/collections/{}/clusters/{}", ROUTE_LATER, ROLE_READ, h_later},
    {"GET", "v1/collections/{}/clusters/{}/centroid", ROUTE_LATER, ROLE_READ, h_later},
    {"POST", "v1/collections/{}/clusters/rebalance", ROUTE_LATER, ROLE_ADMIN, h_later},
    {"POST", "v1/collections/{}/clusters/merge", ROUTE_LATER, ROLE_ADMIN, h_later},
    {"POST", "v1/collections/{}/clusters/split", ROUTE_LATER, ROLE_ADMIN, h_later},
    {"POST", "v1/collections/{}/snapshots", ROUTE_LATER, ROLE_ADMIN, h_later},
    {"GET", "v1/collections/{}/snapshots", ROUTE_LATER, ROLE_ADMIN, h_later},
    {"POST", "v1/collections/{}/snapshots/restore", ROUTE_LATER, ROLE_ADMIN, h_later},
};

static bool matches(const char *pattern, srv_req *r)
{
    size_t i = 0;
    const char *p = pattern;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (i >= r->nseg)
            return false;
        if (!(n == 2 && p[0] == '{' && p[1] == '}') &&
            (strlen(r->seg[i]) != n || memcmp(r->seg[i], p, n) != 0))
            return false;
        i++;
        p += n + (end ? 1 : 0);
    }
    return i == r->nseg;
}

void route_dispatch(srv_req *r)
{
    const route *hit = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0] && !hit; i++) {
        if (!matches(routes[i].pattern, r))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, r->method) == 0)
            hit = &routes[i];
    }
    if (!hit) {
        r->route = ROUTE_UNKNOWN;
        if (path_known)
            reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s", r->method,
                        r->url);
        else
            reply_error(r, 404, "not_found", "no route %s %s", r->method, r->url);
        return;
    }
    r->route = hit->id;
    if (hit->needs != ROLE_NONE && r->srv->opt.api_key) {
        srv_role have = auth_role(r);
        if (have == ROLE_NONE) {
            reply_error(r, 401, "unauthenticated",
                        "a valid key is required: 'Authorization: Bearer <key>' or 'api-key: <key>'");
            return;
        }
        if (have < hit->needs) {
            reply_error(r, 403, "permission_denied", "the read key cannot %s %s", r->method,
                        route_names[hit->id]);
            return;
        }
    }
    hit->run(r);
}
