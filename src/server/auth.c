/*
 * auth.c -- SPEC section 7: which role the request's key grants. The api key
 * may do everything, the read key only reads; keys come as
 * "Authorization: Bearer <key>" or "api-key: <key>".
 */
#include <microhttpd.h>
#include <string.h>
#include <strings.h>

#include "server/server_internal.h"

/* Compares every byte whatever the contents, so the time taken does not
 * tell how much of a guess was right (only the length of the given key). */
static bool same_key(const char *given, size_t n, const char *key)
{
    size_t k = strlen(key);
    unsigned char diff = (unsigned char)(n != k);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(given[i] ^ key[i % (k ? k : 1)]);
    return diff == 0 && k > 0;
}

srv_role auth_role(srv_req *r)
{
    /* a bearer token, else the api-key header (an Authorization of another
     * scheme, e.g. Basic for a proxy, does not hide it) */
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    const char *given = h && strncasecmp(h, "Bearer ", 7) == 0
                            ? h + 7
                            : MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "api-key");
    if (!given)
        return ROLE_NONE;
    size_t n = strlen(given);
    if (same_key(given, n, r->srv->opt.api_key))
        return ROLE_ADMIN;
    if (r->srv->opt.read_key && same_key(given, n, r->srv->opt.read_key))
        return ROLE_READ;
    return ROLE_NONE;
}
