/*
 * routes_system.c -- GET /v1/health and GET /metrics.
 */
#include "server/server_internal.h"

void h_health(srv_req *r)
{
    sbuf_printf(&r->out, "{\"status\":\"ok\",\"version\":\"%s\"}", ndl_version());
    reply_buf(r, 200);
}

void h_metrics(srv_req *r)
{
    metrics_render(r->srv, &r->out);
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    reply_buf(r, 200);
}
