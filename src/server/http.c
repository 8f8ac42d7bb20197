/*
 * http.c -- libmicrohttpd glue: one daemon per request thread, each with its
 * own listening socket on the same port (SO_REUSEPORT, so the kernel spreads
 * new connections evenly; one daemon with a thread pool let bursts of
 * connections land on one thread) polling its connections with epoll
 * (keep-alive), one srv_req per request,
 * the body read with its limit (413 from Content-Length before reading, or
 * as soon as a chunked body passes it) and its deadline (408), then the
 * route's answer and the metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <microhttpd.h>

#include "server/server_internal.h"

double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Split the path into percent-decoded segments. false: too many or a
 * segment that decodes to a NUL. */
static bool split_path(srv_req *r)
{
    const char *p = r->url;
    while (*p == '/')
        p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (r->nseg == SRV_MAX_SEGMENTS)
            return false;
        char *s = malloc(n + 1);
        if (!s)
            return false;
        memcpy(s, p, n);
        s[n] = '\0';
        size_t len = MHD_http_unescape(s);
        if (len != strlen(s)) {
            free(s);
            return false;
        }
        r->seg[r->nseg++] = s;
        p += n;
        while (*p == '/')
            p++;
    }
    return true;
}

static void req_free(srv_req *r)
{
    for (size_t i = 0; i < r->nseg; i++)
        free(r->seg[i]);
    free(r->body);
    sbuf_free(&r->out);
    free(r);
}

static enum MHD_Result send_answer(srv_req *r)
{
    if (r->out.failed || !r->out.p) {
        sbuf_free(&r->out);
        sbuf_puts(&r->out, "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}");
        r->status = 503;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(r->out.len, r->out.p,
                                                                MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    r->out.p = NULL; /* MHD frees it */
    r->out.len = r->out.cap = 0;
    MHD_add_response_header(resp, "Content-Type",
                            r->content_type ? r->content_type : "application/json");
    if (r->close)
        MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ok = MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp);
    metrics_request(r->route, r->status, now_seconds() - r->start);
    return ok;
}

/* Answer before the body is read (413 from Content-Length, 400 on the
 * path): MHD sends it, skips the body and closes the connection. */
static enum MHD_Result answer_early(srv_req *r)
{
    r->sent = true;
    return send_answer(r);
}

/* Whether a Content-Type value names media type `want` (case aside;
 * parameters after ';' and spaces around it allowed, nothing else). */
static bool media_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, want, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static bool body_append(srv_req *r, const char *data, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        char *p = realloc(r->body, cap + 1);
        if (!p)
            return false;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    srv *s = cls;
    srv_req *r = *con_cls;
    if (!r) { /* headers are in: set up, check what can be checked before the body */
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        r->srv = s;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->start = now_seconds();
        r->route = ROUTE_UNKNOWN;
        atomic_fetch_add(&s->inflight, 1);
        if (atomic_load(&s->stopping)) { /* after the count: srv_stop waits for us or we see it */
            reply_error(r, 503, "unavailable", "the server is shutting down");
            r->close = true;
            return answer_early(r);
        }
        if (!split_path(r)) {
            reply_error(r, 400, "invalid_argument", "bad path '%.200s'", url);
            return answer_early(r);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        /* libmicrohttpd has checked the value: digits that fit a u64 */
        unsigned long long length = cl ? strtoull(cl, NULL, 10) : 0;
        if (length > s->opt.max_body_bytes) {
            reply_error(r, 413, "payload_too_large",
                        "the body is %s bytes; the limit is %zu (--max-body-bytes)", cl,
                        s->opt.max_body_bytes);
            return answer_early(r);
        }
        if (length && !(r->body = malloc(length + 1))) { /* one buffer, the right size */
            reply_error(r, 503, "out_of_memory", "out of memory for a body of %llu bytes", length);
            return answer_early(r);
        }
        r->cap = length;
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
        r->ndjson = ct && media_type_is(ct, "application/x-ndjson");
        return MHD_YES;
    }
    if (*upload_data_size) { /* a piece of the body */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        /* MHD can queue an answer only before the body or after all of it:
         * past the limit or the deadline the rest is read and thrown away,
         * and the error is the answer; past twice the limit the connection
         * is closed (a client that does not stop is not worth reading) */
        if (r->status) {
            r->discarded += n;
            return r->discarded > s->opt.max_body_bytes ? MHD_NO : MHD_YES;
        }
        if (now_seconds() - r->start > s->opt.request_timeout_s) {
            reply_error(r, 408, "request_timeout",
                        "the body did not arrive within %u s (--request-timeout)",
                        s->opt.request_timeout_s);
            return MHD_YES;
        }
        if (r->len + n > s->opt.max_body_bytes) {
            reply_error(r, 413, "payload_too_large",
                        "the body is over the limit of %zu bytes (--max-body-bytes)",
                        s->opt.max_body_bytes);
            return MHD_YES;
        }
        if (!body_append(r, upload_data, n))
            reply_error(r, 503, "out_of_memory", "out of memory reading the body");
        return MHD_YES;
    }
    if (r->status) /* answered while the body came: now it can go out */
        return r->sent ? MHD_YES : send_answer(r);
    route_dispatch(r);
    if (!r->status)
        reply_error(r, 500, "internal", "the handler gave no answer");
    return send_answer(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn, (void)toe;
    srv *s = cls;
    if (*con_cls) {
        req_free(*con_cls);
        atomic_fetch_sub(&s->inflight, 1);
    }
    *con_cls = NULL;
}

/* Keep the URL as sent: split_path decodes each segment after splitting,
 * so "a%2Fb" is one segment "a/b" (MHD's default would decode first, and
 * split_path decoding again would turn "x%2541" into "xA"). */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    return strlen(s);
}

static void on_error_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fprintf(stderr, "needle: http: ");
    vfprintf(stderr, fmt, ap);
}

static void set_port(struct sockaddr_storage *a, uint16_t port)
{
    if (a->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)a)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)a)->sin_port = htons(port);
}

/* The daemons share the port with SO_REUSEPORT, which would also let a
 * second server bind it silently: make sure nobody holds it first. */
static bool port_free(const struct sockaddr_storage *a)
{
    int fd = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    socklen_t len = a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
    int one = 1; /* as MHD does: a restart may bind over TIME_WAIT, not over a listener */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool ok = bind(fd, (const struct sockaddr *)a, len) == 0;
    close(fd);
    return ok;
}

ndl_status srv_start(ndl_db *db, const srv_options *o, srv **out, ndl_error *err)
{
    *out = NULL;
    srv *s = calloc(1, sizeof *s);
    if (!s) {
        err->status = NDL_NOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return NDL_NOMEM;
    }
    s->opt = *o;
    ndl_status rc = registry_open(db, &s->reg, err);
    if (rc != NDL_OK) {
        free(s);
        return rc;
    }
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    const char *host = o->host ? o->host : "127.0.0.1";
    /* TURBO: optimistic reads on keep-alive connections and no shutdown()
     * before close (fewer syscalls per request; docs/BENCHMARKS.md) */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(o->port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(o->port);
        flags |= MHD_USE_IPv6;
    } else {
        registry_close(s->reg, NULL);
        free(s);
        err->status = NDL_INVALID;
        snprintf(err->msg, sizeof err->msg, "cannot listen on '%s': not a numeric IPv4 or IPv6 address",
                 host);
        return NDL_INVALID;
    }
    unsigned n = o->threads ? o->threads : 1;
    uint16_t port = o->port;
    if (port != 0 && !port_free(&addr)) {
        registry_close(s->reg, NULL);
        free(s);
        err->status = NDL_IO;
        snprintf(err->msg, sizeof err->msg, "cannot listen on %s:%u: the port is in use", host,
                 port);
        return NDL_IO;
    }
    s->daemons = calloc(n, sizeof *s->daemons);
    for (unsigned i = 0; s->daemons && i < n; i++) {
        set_port(&addr, port);
        s->daemons[i] = MHD_start_daemon(
            flags, port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_error_log, s,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)o->request_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
            MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE,
            n > 1 ? 1u : 0u, MHD_OPTION_END);
        if (!s->daemons[i])
            break;
        s->ndaemons++;
        if (i == 0) { /* port 0 picked one: the others join it */
            const union MHD_DaemonInfo *info =
                MHD_get_daemon_info(s->daemons[0], MHD_DAEMON_INFO_BIND_PORT);
            port = info ? info->port : port;
        }
    }
    if (s->ndaemons < n) {
        for (unsigned i = 0; i < s->ndaemons; i++)
            MHD_stop_daemon(s->daemons[i]);
        free(s->daemons);
        registry_close(s->reg, NULL);
        free(s);
        err->status = NDL_IO;
        snprintf(err->msg, sizeof err->msg, "cannot listen on %s:%u (in use, or not allowed)",
                 host, o->port);
        return NDL_IO;
    }
    s->port = port;
    *out = s;
    return NDL_OK;
}

uint16_t srv_port(const srv *s) { return s->port; }

ndl_status srv_stop(srv *s, ndl_error *err)
{
    if (!s)
        return NDL_OK;
    /* stop accepting; requests that come on open connections from now on
     * get 503 (not applied); those under way finish and their answers go
     * out before the connections close */
    atomic_store(&s->stopping, true);
    for (unsigned i = 0; i < s->ndaemons; i++) {
        MHD_socket ls = MHD_quiesce_daemon(s->daemons[i]);
        if (ls != MHD_INVALID_SOCKET)
            close(ls);
    }
    /* let the requests under way finish and their answers go out */
    for (int i = 0; i < 3000 && atomic_load(&s->inflight) > 0; i++)
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    for (unsigned i = 0; i < s->ndaemons; i++)
        MHD_stop_daemon(s->daemons[i]);
    free(s->daemons);
    ndl_error first = {.status = NDL_OK};
    registry_close(s->reg, &first);
    free(s);
    if (first.status != NDL_OK && err)
        *err = first;
    return first.status;
}
