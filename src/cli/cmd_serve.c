/*
 * cmd_serve.c -- `needle serve`: run the HTTP server (src/server/) on the
 * database until SIGTERM or SIGINT, then stop gracefully: no new
 * connections, the requests in flight finish, every collection checkpoints,
 * exit 0.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "server/server.h"

enum { O_DATA, O_LISTEN, O_API_KEY, O_READ_KEY, O_THREADS, O_FSYNC, O_MAX_BODY, O_TIMEOUT, O_N };

/* "HOST:PORT", "[V6]:PORT" or ":PORT" into o. */
static int parse_listen(const char *s, char *host, size_t hostlen, srv_options *o)
{
    const char *colon = strrchr(s, ':');
    if (!colon)
        return cli_fail(CLI_USAGE, "--listen: expected HOST:PORT, got '%s'", s);
    size_t n = (size_t)(colon - s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n >= hostlen)
        return cli_fail(CLI_USAGE, "--listen: host too long");
    memcpy(host, s, n);
    host[n] = '\0';
    if (n == 0)
        snprintf(host, hostlen, "127.0.0.1");
    cli_opt port_opt = {"listen port", 1, colon + 1, 1};
    uint32_t port;
    int rc = cli_opt_u32(&port_opt, 0, 65535, &port);
    if (rc != CLI_OK)
        return rc;
    unsigned char addr[16];
    if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1)
        return cli_fail(CLI_USAGE, "--listen: '%s' is not a numeric IPv4 or IPv6 address", host);
    o->host = host;
    o->port = (uint16_t)port;
    return CLI_OK;
}

int cmd_serve(int argc, char **argv)
{
    cli_opt o[O_N] = {
        [O_DATA] = {"data", 1, NULL, 0},          [O_LISTEN] = {"listen", 1, NULL, 0},
        [O_API_KEY] = {"api-key", 1, NULL, 0},    [O_READ_KEY] = {"read-key", 1, NULL, 0},
        [O_THREADS] = {"threads", 1, NULL, 0},    [O_FSYNC] = {"fsync", 1, NULL, 0},
        [O_MAX_BODY] = {"max-body-bytes", 1, NULL, 0},
        [O_TIMEOUT] = {"request-timeout", 1, NULL, 0},
    };
    size_t npos;
    int help;
    int rc = cli_parse(argc, argv, o, O_N, NULL, 0, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    srv_options so = {.threads = 0, .max_body_bytes = (size_t)64 << 20, .request_timeout_s = 30};
    char host[256];
    if ((rc = parse_listen(o[O_LISTEN].value ? o[O_LISTEN].value : "127.0.0.1:6400", host,
                           sizeof host, &so)) != CLI_OK)
        return rc;
    so.api_key = o[O_API_KEY].value;
    so.read_key = o[O_READ_KEY].value;
    if ((so.api_key && !*so.api_key) || (so.read_key && !*so.read_key))
        return cli_fail(CLI_USAGE, "--api-key and --read-key must not be empty");
    if (so.read_key && !so.api_key)
        return cli_fail(CLI_USAGE, "--read-key needs --api-key (the key for writes)");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t threads = cpus > 2 ? (uint32_t)cpus : 2, timeout = 30;
    if ((o[O_THREADS].value && (rc = cli_opt_u32(&o[O_THREADS], 1, 1024, &threads)) != CLI_OK) ||
        (o[O_TIMEOUT].value && (rc = cli_opt_u32(&o[O_TIMEOUT], 1, 3600, &timeout)) != CLI_OK))
        return rc;
    so.threads = threads;
    so.request_timeout_s = timeout;
    uint32_t max_body;
    if (o[O_MAX_BODY].value) {
        if ((rc = cli_opt_u32(&o[O_MAX_BODY], 1, UINT32_MAX, &max_body)) != CLI_OK)
            return rc;
        so.max_body_bytes = max_body;
    }
    if (o[O_FSYNC].value) {
        ndl_error e;
        if (ndl_fsync_parse(o[O_FSYNC].value, &cli_fsync_mode, &e) != NDL_OK)
            return cli_fail(CLI_USAGE, "--fsync: %s", e.msg);
    }
    /* the signals go to sigwait below, never to a request thread: block
     * them before any thread starts (threads inherit the mask) */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    const char *dir = o[O_DATA].value ? o[O_DATA].value : CLI_DEFAULT_DATA;
    ndl_db *db;
    if ((rc = cli_db_open(dir, CLI_DB_CREATE, &db)) != CLI_OK)
        return rc;
    srv *s;
    ndl_error e = {0};
    ndl_status st = srv_start(db, &so, &s, &e);
    if (st != NDL_OK) {
        rc = cli_fail_lib(st, &e);
        return cli_db_close(db, rc);
    }
    printf("listening on http://%s%s%s:%u\n", strchr(host, ':') ? "[" : "", host,
           strchr(host, ':') ? "]" : "", srv_port(s));
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "needle: %s: finishing requests, saving collections\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    if ((st = srv_stop(s, &e)) != NDL_OK)
        rc = cli_fail_lib(st, &e);
    return cli_db_close(db, rc);
}
