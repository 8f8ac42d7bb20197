/*
 * payload_ingest_bench.c -- points/s of upserts with payloads, with and
 * without payload indexes: what checking payloads against the indexed
 * fields' types and indexing them adds to a write.
 *
 * A flat collection of 16-d vectors (so the index costs little and the
 * payload path shows), fsync none, 200 upserts of 1,000 points with
 * payloads like {"tag":"t17","n":4217,"title":"w17 x3 some more words
 * here","other":{"a":[1,2,3],"b":"zz"}}; with "fields", tag (keyword), n
 * (int) and title (text) are indexed first. Prints one line:
 *   fields 0|1: N points/s
 *
 * usage: payload_ingest_bench [fields]   (DIR /var/tmp/payload-ingest-db)
 * Build against a release libneedle.a:
 *   gcc -O2 -std=gnu11 -Iinclude bench/payload_ingest_bench.c build/libneedle.a \
 *       -lopenblas -ljansson -lroaring -lm -lpthread -o build/payload_ingest_bench
 * To compare two commits, link the same file against each one's libneedle.a
 * and alternate the runs (docs/BENCHMARKS.md, Write path).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#include "needle.h"

#define DIR "/var/tmp/payload-ingest-db"
#define DIM 16
#define BATCH 1000
#define BATCHES 200

static void check(ndl_status rc, const ndl_error *e, const char *what)
{
    if (rc != NDL_OK) {
        fprintf(stderr, "payload_ingest_bench: %s: %s\n", what, e->msg);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int fields = argc > 1 && strcmp(argv[1], "fields") == 0;
    if (argc > 2 || (argc > 1 && !fields)) {
        fprintf(stderr, "usage: payload_ingest_bench [fields]\n");
        return 2;
    }
    if (system("rm -rf " DIR) != 0)
        return 1;
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.fsync = NDL_FSYNC_NONE;
    ndl_db *db;
    ndl_error e;
    check(ndl_db_open(DIR, &o, &db, &e), &e, "open");
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = DIM;
    cfg.index = NDL_INDEX_FLAT;
    ndl_collection *c;
    check(ndl_collection_create(db, "c", &cfg, &c, &e), &e, "create");
    if (fields) {
        check(ndl_collection_add_field(c, "tag", NDL_FIELD_KEYWORD, &e), &e, "field tag");
        check(ndl_collection_add_field(c, "n", NDL_FIELD_INT, &e), &e, "field n");
        check(ndl_collection_add_field(c, "title", NDL_FIELD_TEXT, &e), &e, "field title");
    }
    float *v = malloc(sizeof *v * DIM * BATCH);
    ndl_id *ids = malloc(sizeof *ids * BATCH);
    char *text = malloc((size_t)BATCH * 160);
    const char **payloads = malloc(sizeof *payloads * BATCH);
    if (!v || !ids || !text || !payloads)
        return 1;
    uint64_t rng = 1;
    double busy = 0;
    for (uint32_t b = 0; b < BATCHES; b++) {
        for (uint32_t i = 0; i < BATCH; i++) { /* made outside the timed call */
            uint32_t k = b * BATCH + i;
            ids[i] = ndl_id_u64(k);
            for (int j = 0; j < DIM; j++)
                v[i * DIM + j] = (float)(bench_xorshift(&rng) >> 40) / (float)(1u << 24);
            payloads[i] = text + (size_t)i * 160;
            snprintf(text + (size_t)i * 160, 160,
                     "{\"tag\":\"t%u\",\"n\":%u,\"title\":\"w%u x%u some more words here\","
                     "\"other\":{\"a\":[1,2,3],\"b\":\"zz\"}}",
                     k % 100, k, k % 50, k % 7);
        }
        double t0 = bench_now();
        check(ndl_collection_upsert_points(c, BATCH, ids, v, payloads, NULL, &e), &e, "upsert");
        busy += bench_now() - t0;
    }
    printf("fields %d: %.0f points/s\n", fields, (double)BATCH * BATCHES / busy);
    check(ndl_db_close(db, &e), &e, "close");
    free(v);
    free(ids);
    free(text);
    free(payloads);
    return system("rm -rf " DIR) == 0 ? 0 : 1;
}
