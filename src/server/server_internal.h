/*
 * server_internal.h -- what the pieces of the server share: one request as
 * the handlers see it, the reply helpers, the collection registry, the
 * route table and the metrics.
 */
#ifndef NDL_SERVER_INTERNAL_H
#define NDL_SERVER_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "server/server.h"

#define SRV_MAX_DEPTH 64    /* JSON nesting limit of request bodies (SPEC 6) */
#define SRV_MAX_SEGMENTS 8  /* path segments a route can have */

/* ---------------------------------------------------------------- output */

/* A growable byte buffer for answers. A failed allocation sets `failed`
 * and later appends do nothing (the answer becomes a 503). */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
} sbuf;

void sbuf_put(sbuf *b, const char *s, size_t n);
void sbuf_puts(sbuf *b, const char *s);
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_json_string(sbuf *b, const char *s, size_t n); /* quoted and escaped */
void sbuf_float(sbuf *b, float v);                        /* shortest round trip; null if not finite */
/* A computed value (score, distance) as %.9g, exact for a float in one
 * snprintf: the shortest form takes up to four snprintf/strtof rounds, 20
 * times per search, and a computed float is seldom shorter. */
void sbuf_score(sbuf *b, float v);
void sbuf_u64(sbuf *b, uint64_t v);
void sbuf_id(sbuf *b, ndl_id id);
void sbuf_vector(sbuf *b, const float *v, uint32_t dim);  /* [x,y,..] */
void sbuf_free(sbuf *b);

/* ---------------------------------------------------------------- a request */

typedef enum { ROLE_NONE, ROLE_READ, ROLE_ADMIN } srv_role;

typedef struct srv_req {
    struct srv *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    char *seg[SRV_MAX_SEGMENTS];   /* percent-decoded path segments (own copies) */
    size_t nseg;
    int route;                     /* ROUTE_* for metrics */
    uint32_t dim;                  /* of the collection registry_get lent */
    /* body */
    char *body;
    size_t len, cap;
    bool ndjson;                   /* Content-Type: application/x-ndjson */
    bool sent;                     /* the answer is queued */
    bool close;                    /* answer with Connection: close */
    size_t discarded;              /* body bytes thrown away after an early error */
    double start;                  /* seconds, monotonic */
    /* answer */
    unsigned status;
    sbuf out;
    const char *content_type;      /* default application/json */
} srv_req;

/* Answers. reply_error formats the message; reply_lib maps a library status. */
void reply_json(srv_req *r, unsigned status, json_t *body); /* takes body */
void reply_buf(srv_req *r, unsigned status);                 /* r->out is the body */
void reply_error(srv_req *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void reply_lib(srv_req *r, const ndl_error *e);

/* ---------------------------------------------------------------- request bodies */

/* Parse the body as one JSON object (depth, UTF-8, syntax checked; errors
 * answered). NULL after answering. An empty body is {} when empty_ok. */
json_t *body_object(srv_req *r, bool empty_ok);
/* The same for text[0..len), named `what` in messages ("line 3"). */
json_t *parse_object(srv_req *r, const char *text, size_t len, const char *what,
                     bool empty_ok);
/* Answer 400 and return false if obj has a key not in allowed (NULL-ended).
 * `where` names the object in the message ("search", "point 3"). */
bool fields_known(srv_req *r, json_t *obj, const char *const *allowed, const char *where);
/* Answer 501 and return false if obj has one of the keys of later. */
bool fields_not_yet(srv_req *r, json_t *obj, const char *const *later, const char *where);
/* Readers of typed fields: absent -> *out unchanged, true; wrong type or
 * range -> 400 answered, naming `where` ("search", "searches[3]") and
 * the key; false. */
bool get_bool(srv_req *r, json_t *obj, const char *where, const char *key, int *out);
/* obj's "filter" (absent or null: *out NULL) parsed by the library; the
 * caller frees it with ndl_filter_free. */
bool get_filter(srv_req *r, json_t *obj, const char *where, ndl_filter **out);
bool get_u32(srv_req *r, json_t *obj, const char *where, const char *key, uint32_t min,
             uint32_t max, uint32_t *out);
bool get_double(srv_req *r, json_t *obj, const char *where, const char *key, double *out);
/* The text of a JSON string without \u0000 in it, else NULL (the bodies
 * are parsed with JSON_ALLOW_NUL for payloads' sake). */
const char *text_of(json_t *v);
/* A valid collection name, else 400 answered. */
bool name_ok(srv_req *r, const char *name);
/* A JSON id (integer >= 0 or string); the string is borrowed from v. */
bool parse_id(srv_req *r, json_t *v, ndl_id *out, const char *where);
/* An id from a path segment: digits only -> u64, else the string. */
bool path_id(srv_req *r, const char *seg, ndl_id *out);
/* A vector of exactly dim finite numbers into out. */
bool parse_vector(srv_req *r, json_t *v, uint32_t dim, float *out, const char *where);

/* fast_vector.c: a search body's top-level "vector" array read without
 * jansson into v; on true, rest holds the body with that array cut down to
 * a 0 (for jansson to parse the rest). false (nothing kept) on anything
 * unexpected: parse the body as usual. */
typedef struct fast_vec {
    float *v;
    size_t n;
    char *rest;
    size_t rest_len;
} fast_vec;
bool fast_vector(const char *body, size_t len, fast_vec *fv);
void fast_vector_free(fast_vec *fv);

/* ---------------------------------------------------------------- collections */

/* The open collections, by name (registry.c says how the lock is used). A
 * handler borrows one for its length (registry_get ... registry_put); a
 * drop waits until none is borrowed. */
typedef struct registry registry;
ndl_status registry_open(ndl_db *db, registry **out, ndl_error *err);
void registry_close(registry *g, ndl_error *first_err);
/* NULL after answering 404; sets r->dim. */
ndl_collection *registry_get(srv_req *r, const char *name);
void registry_put(srv_req *r, const char *name);
ndl_status registry_create(registry *g, const char *name, const ndl_collection_config *cfg,
                           ndl_error *err);
ndl_status registry_drop(registry *g, const char *name, ndl_error *err);
/* Call fn for every open collection (name order), each borrowed for the
 * call, without the registry lock held. */
void registry_each(registry *g, void (*fn)(void *ctx, const char *name, ndl_collection *c),
                   void *ctx);

/* ---------------------------------------------------------------- routes */

enum {
    ROUTE_HEALTH, ROUTE_METRICS, ROUTE_COLLECTIONS, ROUTE_COLLECTION, ROUTE_POINTS,
    ROUTE_POINT, ROUTE_POINTS_GET, ROUTE_POINTS_DELETE, ROUTE_SEARCH, ROUTE_SEARCH_BATCH,
    ROUTE_COUNT, ROUTE_SCROLL, ROUTE_FIELD, ROUTE_LATER, ROUTE_UNKNOWN, ROUTE_N
};
extern const char *const route_names[ROUTE_N];

/* The role r's key grants (auth.c); ROLE_NONE without a valid key. */
srv_role auth_role(srv_req *r);

/* Find and run the handler of r (auth checked first). */
void route_dispatch(srv_req *r);

/* Handlers (routes_*.c). */
void h_health(srv_req *r);
void h_metrics(srv_req *r);
void h_collections_list(srv_req *r);
void h_collection_put(srv_req *r);
void h_collection_get(srv_req *r);
void h_collection_delete(srv_req *r);
void h_field_put(srv_req *r);
void h_points_upsert(srv_req *r);
void h_point_get(srv_req *r);
void h_point_patch(srv_req *r);
void h_points_get(srv_req *r);
void h_points_delete(srv_req *r);
void h_search(srv_req *r);
void h_search_batch(srv_req *r);
void h_count(srv_req *r);
void h_scroll(srv_req *r);


/* ---------------------------------------------------------------- metrics */

void metrics_request(int route, unsigned status, double seconds);
void metrics_search(const char *plan, int filtered);
void metrics_render(struct srv *s, sbuf *out);

/* ---------------------------------------------------------------- the server */

struct srv {
    registry *reg;
    srv_options opt;
    struct MHD_Daemon **daemons;  /* one per request thread, sharing the port */
    unsigned ndaemons;
    uint16_t port;
    atomic_int inflight;   /* requests begun and not completed */
    atomic_bool stopping;  /* srv_stop began: new requests get 503 */
};

double now_seconds(void);

#endif
