/*
 * server.h -- `needle serve`: the HTTP/JSON API (docs/HTTP.md) over one open
 * database, one libmicrohttpd daemon per request thread on a shared port.
 * The CLI (cmd_serve.c)
 * starts it, waits for SIGTERM/SIGINT and stops it.
 */
#ifndef NDL_SERVER_H
#define NDL_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "needle.h"

typedef struct srv_options {
    const char *host;          /* numeric IPv4 or IPv6 address; default 127.0.0.1 */
    uint16_t port;             /* 0: a free port (srv_port says which) */
    const char *api_key;       /* NULL: no auth */
    const char *read_key;      /* NULL: none */
    unsigned threads;          /* request threads, >= 1 */
    size_t max_body_bytes;     /* larger bodies get 413 */
    unsigned request_timeout_s;/* slow bodies get 408, idle connections close */
} srv_options;

typedef struct srv srv;

/* Open every collection of db and start listening. The db stays the
 * caller's and must outlive the server. Errors: NDL_IO (cannot listen,
 * message says why), NDL_NOMEM, or an open error of a collection. */
ndl_status srv_start(ndl_db *db, const srv_options *o, srv **out, ndl_error *err);
/* The port listened on. */
uint16_t srv_port(const srv *s);
/* Stop accepting, finish the requests in flight, close every collection
 * (each checkpoints). Returns the first close error. NULL: no-op. */
ndl_status srv_stop(srv *s, ndl_error *err);

#endif
