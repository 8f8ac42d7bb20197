/*
 * cmd_help.c -- `needle help [COMMAND]` and the help text of every command
 * (also printed by `needle COMMAND --help`).
 */
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"

typedef struct help_text {
    const char *name;
    const char *text;
} help_text;

static const char overview[] =
    "usage: needle COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  create   create a collection\n"
    "  import   bulk-load vectors from fvecs, bvecs, npy or JSON lines\n"
    "  search   k-nearest-neighbour search for a file of queries\n"
    "  get      print points (vector and payload) by id\n"
    "  bench    recall@k, QPS and latency percentiles\n"
    "  info     list collections, or show one\n"
    "  drop     delete a collection\n"
    "  check    verify checksums and invariants\n"
    "  compact  reclaim the space of deleted and replaced points now\n"
    "  serve    HTTP/JSON server (docs/HTTP.md)\n"
    "  help     show help for a command\n"
    "\n"
    "Every command takes --data DIR (default " CLI_DEFAULT_DATA ").\n"
    "Exit status: 0 success, 1 runtime error, 2 usage error.\n"
    "import and bench draw a progress bar on stderr when it and stdout are a terminal.\n"
    "info, search, get, bench and check take --salvage: open damaged collections\n"
    "anyway, read-only (the log is replayed up to its first damaged record, a\n"
    "damaged graph is rebuilt from the vectors, damaged payloads are dropped), to\n"
    "read out what is left.\n"
    "See 'needle help COMMAND' for a command's options.\n";

static const help_text helps[] = {
    {"serve",
     "usage: needle serve [options]\n"
     "\n"
     "Serve the database over HTTP/JSON (routes in docs/HTTP.md) until SIGTERM or\n"
     "SIGINT, then finish the requests under way, save every collection, exit 0.\n"
     "The first line on stdout is 'listening on http://HOST:PORT'.\n"
     "\n"
     "  --listen HOST:PORT       address (default 127.0.0.1:6400; port 0: any free one)\n"
     "  --api-key K              every route but /v1/health needs this key (or --read-key)\n"
     "  --read-key K             a key for reads only (search, get, count, scroll)\n"
     "  --threads N              request threads (default: cores, at least 2)\n"
     "  --fsync MODE             always (default), batch or none\n"
     "  --max-body-bytes N       larger bodies get 413 (default 67108864)\n"
     "  --request-timeout S      bodies slower than this get 408 (default 30)\n"
     "  --data DIR               database directory (default " CLI_DEFAULT_DATA ")\n"},
    {"create",
     "usage: needle create NAME --dim D --metric M [options]\n"
     "\n"
     "Create collection NAME ([A-Za-z0-9_-], 1 to 64 characters).\n"
     "\n"
     "  --dim D               vector dimension, 1..65536 (required)\n"
     "  --metric M            l2, cosine, ip, l1 or hamming (required)\n"
     "  --index flat|hnsw     index type (default hnsw)\n"
     "  --m M                 HNSW links per node, 2..128 (default 16)\n"
     "  --ef-construction E   HNSW build candidate list, 4..4096 (default 200)\n"
     "  --quantization none   vector storage (only 'none' so far)\n"
     "  --data DIR            database directory (default " CLI_DEFAULT_DATA ")\n"},
    {"import",
     "usage: needle import NAME FILE [options]\n"
     "\n"
     "Load the vectors of FILE into collection NAME, creating it when --metric\n"
     "is given and it does not exist. FILE is checked completely before\n"
     "anything is written: if any record is bad, nothing changes.\n"
     "fvecs, bvecs and npy rows get ids 0..n-1. JSON lines hold one\n"
     "{\"id\": <integer or string>, \"vector\": [..], \"payload\": {..}} per line;\n"
     "\"payload\" is optional and must be a JSON object (null or absent: none).\n"
     "Payloads are stored in canonical form (no insignificant whitespace, keys in\n"
     "the order given, 1e2 becomes 100.0); every payload is checked, size included,\n"
     "before anything is written. A repeated id replaces the point and its payload.\n"
     "\n"
     "  --format F            fvecs, bvecs, npy or jsonl (default: from the file name)\n"
     "  --dim D               expected dimension (default: the file's)\n"
     "  --metric M            metric for a new collection (creates it if absent)\n"
     "  --index flat|hnsw     index of a new collection (default hnsw)\n"
     "  --m M                 HNSW links per node of a new collection (default 16)\n"
     "  --ef-construction E   HNSW build candidate list of a new collection (default 200)\n"
     "  --threads N           index build threads (default: number of CPUs)\n"
     "  --batch N             vectors per write (default 10000)\n"
     "  --fsync MODE          always (default: each batch is on disk before the next),\n"
     "                        batch (synced every 10 ms) or none (the OS decides)\n"
     "  --max-payload-bytes N limit of one payload in this import, as given and in\n"
     "                        canonical form, 2..16777216 (default 65536)\n"
     "  --data DIR            database directory (default " CLI_DEFAULT_DATA ")\n"},
    {"search",
     "usage: needle search NAME --queries FILE --k K [options]\n"
     "\n"
     "Search the k nearest neighbours of every vector in FILE (fvecs, bvecs,\n"
     "npy or JSON lines) and print one JSON line per query:\n"
     "  {\"query\":i,\"results\":[{\"id\":..,\"score\":..,\"distance\":..}]}\n"
     "With --with-payload every result also has \"payload\": the stored JSON object\n"
     "(canonical form, as printed by 'needle get'), or null for a point without one.\n"
     "\n"
     "  --queries FILE        query vectors (required)\n"
     "  --k K                 neighbours per query, 1..10000 (required)\n"
     "  --ef E                HNSW candidate list, >= k (default: the collection's,\n"
     "                        64 until learned from queries; see 'needle info')\n"
     "  --exact               exhaustive search (ground truth)\n"
     "  --filter JSON         only points whose payload matches, e.g.\n"
     "                        '{\"category\":\"tech\",\"price\":{\"$lt\":100}}'\n"
     "                        (docs/FILTERS.md); exactly min(k, matching) results\n"
     "  --threads N           search threads (default: number of CPUs)\n"
     "  --output FILE         write there instead of stdout; FILE.ivecs gets the\n"
     "                        result ids as ivecs (integer ids below 2^31)\n"
     "  --with-payload        add each result's payload (not with ivecs output)\n"
     "  --salvage             open damaged collections anyway, read-only\n"
     "  --data DIR            database directory (default " CLI_DEFAULT_DATA ")\n"},
    {"bench",
     "usage: needle bench NAME --queries FILE --k K [options]\n"
     "\n"
     "Measure recall@k, queries per second and p50/p95/p99 latency for each\n"
     "search setting. Recall is against --truth, or against exact search when\n"
     "--truth is absent.\n"
     "\n"
     "  --queries FILE        query vectors (required)\n"
     "  --k K                 neighbours per query, 1..10000 (required)\n"
     "  --truth FILE.ivecs    true neighbour ids, at least k per query\n"
     "  --ef LIST             comma-separated HNSW ef values and 'auto' (the\n"
     "                        collection's default ef; default 16,32,64,128)\n"
     "  --exact               add a row for exact search\n"
     "  --threads T           query threads (default 1)\n"
     "  --json                one JSON object per setting instead of a table\n"
     "  --salvage             open damaged collections anyway, read-only\n"
     "  --data DIR            database directory (default " CLI_DEFAULT_DATA ")\n"},
    {"get",
     "usage: needle get NAME ID [ID...] [options]\n"
     "\n"
     "Print one JSON line per ID found in collection NAME:\n"
     "  {\"id\":..,\"vector\":[..],\"payload\":{..}}\n"
     "\"vector\" is as stored (cosine vectors are unit length, hamming ones 0/1);\n"
     "\"payload\" is the stored JSON object (canonical form) or null for a point\n"
     "without one. An ID written as a plain decimal number (no sign, no leading\n"
     "zero) that fits in 64 bits is an integer id; anything else is a string id.\n"
     "Every ID is looked up: each absent one is reported on stderr\n"
     "(\"no point with id ...\") and the exit status is then 1.\n"
     "\n"
     "  --no-vector           leave \"vector\" out\n"
     "  --string-ids          every ID is a string id (for string ids like \"42\")\n"
     "  --salvage             open damaged collections anyway, read-only\n"
     "  --data DIR            database directory (default " CLI_DEFAULT_DATA ")\n"},
    {"info",
     "usage: needle info [NAME] [--json]\n"
     "\n"
     "Without NAME, list the collections with their counts. With NAME, show its\n"
     "configuration, count (live points), deleted points (replaced or deleted,\n"
     "not yet reclaimed: see 'needle compact'), memory and disk bytes.\n"
     "\n"
     "  --json                print JSON\n"
     "  --salvage             open damaged collections anyway, read-only\n"
     "  --data DIR            database directory (default " CLI_DEFAULT_DATA ")\n"},
    {"drop",
     "usage: needle drop NAME\n"
     "\n"
     "Delete collection NAME and its files.\n"
     "\n"
     "  --data DIR            database directory (default " CLI_DEFAULT_DATA ")\n"},
    {"check",
     "usage: needle check [NAME]\n"
     "\n"
     "Verify every checksum and invariant of collection NAME (default: all):\n"
     "manifest, vectors, ids, payload and graph files, every write-ahead log\n"
     "record, ids <-> slots, counts and graph links. Prints one line per\n"
     "collection; exits 1 naming the damage when any is found. Opens the database\n"
     "read-only.\n"
     "\n"
     "  --salvage             open damaged collections anyway, read-only; one that\n"
     "                        opens only so says SALVAGED and what that costs (exit 1)\n"
     "  --data DIR            database directory (default " CLI_DEFAULT_DATA ")\n"},
    {"compact",
     "usage: needle compact NAME [--json]\n"
     "\n"
     "Reclaim the slots of deleted and replaced points of collection NAME now:\n"
     "their vectors, ids, payloads and graph nodes leave memory, then a checkpoint\n"
     "rewrites the files without them. Prints the count (live points), deleted\n"
     "points, memory and disk bytes before and after. Checkpoints also compact by\n"
     "themselves once a quarter of the slots (and at least 64) are dead.\n"
     "\n"
     "  --json                {\"name\":..,\"before\":{\"count\":..,\"deleted\":..,\n"
     "                        \"memory_bytes\":..,\"disk_bytes\":..},\"after\":{..}}\n"
     "  --data DIR            database directory (default " CLI_DEFAULT_DATA ")\n"},
    {"help",
     "usage: needle help [COMMAND]\n"
     "\n"
     "Show the list of commands, or the options of COMMAND.\n"},
};

int cli_print_help(FILE *f, const char *command)
{
    if (!command) {
        fputs(overview, f);
        return 0;
    }
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        if (strcmp(helps[i].name, command) == 0) {
            fputs(helps[i].text, f);
            return 0;
        }
    }
    return -1;
}

int cmd_help(int argc, char **argv)
{
    cli_opt opts[] = {{"data", 1, NULL, 0}};
    const char *pos[1];
    size_t npos;
    int help;
    int rc = cli_parse(argc, argv, opts, 1, pos, 1, &npos, &help);
    if (rc != CLI_OK || help)
        return rc;
    if (npos == 0) {
        cli_print_help(stdout, NULL);
        return CLI_OK;
    }
    if (cli_print_help(stdout, pos[0]) != 0)
        return cli_fail(CLI_USAGE, "unknown command '%s' (see 'needle help')", pos[0]);
    return CLI_OK;
}
