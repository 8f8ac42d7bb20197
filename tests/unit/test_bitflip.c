/*
 * test_bitflip.c -- bit flips in every file of a database: the marker
 * NEEDLE_DB, the catalog log (.catalog/wal-*), and each collection's
 * MANIFEST, vectors.<gen>, ids.<gen>, graph.<gen>, payloads.<gen> and log
 * segments (wal/wal-*). There is no tombstone file: deletes live in the
 * ids file (dead slots) and in log records, both covered. Each flip must be
 * detected with a clean error naming the damaged file, or be a torn tail
 * DESIGN.md allows; never a crash, a hang, or a point read back with
 * another vector or payload.
 *
 * The database: collection "x" is created first and dropped last, so the
 * catalog holds CREATE x, CREATE h, CREATE f, DROP x, each followed by its
 * SEAL. "h" is HNSW/l2, "f"
 * flat/cosine; both mix u64 and string ids and hold payloads (from upserts
 * and from set_payload merges and replacements), deletes and replaced
 * points. Two images of it are damaged, each restored from memory between
 * cases:
 *   - "crash": the files as kill -9 would leave them (every write is
 *     synced) after a checkpoint (ndl_collection_flush) and four more
 *     logged writes, so the logs hold records before and after the
 *     checkpoint LSN;
 *   - "closed": the same database after ndl_db_close (a second checkpoint
 *     covering every log record).
 *
 * Per file: one bit of every header byte (the 64-byte sfile header, a log
 * segment's 32-byte header and every 24-byte record header), then
 * NEEDLE_BITFLIP_CASES (default 24) random flips anywhere in the file (one
 * bit, or a random mask of one byte) from seed NEEDLE_BITFLIP_SEED
 * (default 0x5eed). After each flip the database is reopened and read; the
 * outcomes allowed:
 *   - refused: the database open (marker, catalog) or the collection open
 *     fails with NDL_CORRUPT naming the file, and the file is as it was (a
 *     refusal repairs nothing);
 *   - damaged after open: a vector's bytes, which opening maps unread; the
 *     verification after open (ndl_collection_verify, run before any read)
 *     finds it, naming the file and chunk, and then every read, write,
 *     flush and check answers NDL_CORRUPT, and closing saves nothing (the
 *     file is as it was). With verify_on_open the same damage is refused;
 *   - log tail dropped: in the crash image, damage in the last record of a
 *     collection's log (which no checkpoint covers) is a torn tail: cut
 *     off, reported (dropped_log_bytes/at), and the collection is the
 *     pristine one minus that last write, also after another reopen. A
 *     checksum cannot tell a torn append from a flipped bit; in the closed
 *     image the checkpoint covers that record, so the same damage is
 *     refused;
 *   - catalog tail dropped: damage in the catalog's last record (the SEAL
 *     of DROP x) is cut off the same way and ndl_db_info reports the cut
 *     (bytes, file and offset); nothing else changes (x stays dropped:
 *     damage in DROP x itself is followed by its seal, so it is refused);
 *   - unnoticed: every point, payload, count and search equals the
 *     pristine state (bytes no reader uses; today every byte is under a
 *     checksum, so this does not occur).
 * Every collection that opens must pass ndl_collection_check and equal
 * the pristine model (vectors and payloads as ndl_collection_get_point
 * returned them, brute-force distances), so damage must never reach a
 * reader. A failure, a sanitizer report or a hang (SIGALRM) prints the
 * case: image, file, offset, mask and seed.
 *
 * The files live in /dev/shm when it exists: the cases reopen the database
 * thousands of times, and fsync on a disk would dominate the run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "needle.h"
#include "storage/sfile.h"        /* SFILE_HEADER_BYTES */
#include "storage/wal_internal.h" /* WAL_SEG_HEADER, WAL_REC_HEADER, wal_rec_bytes */

#define NCOLL 2
#define KEYS 100   /* id universe per collection: keys 0..99 */
#define MAX_DIM 8
#define MAX_PAYLOAD 96
#define MAX_FILES 32
#define K 10
#define NQUERIES 4
#define CASE_SECONDS 30 /* a case taking longer is a hang */
#define X_DIM 3         /* collection "x", created first and dropped last */

/* ---------------------------------------------------------------- the data */

typedef struct coll_spec {
    const char *name;
    uint32_t dim;
    ndl_metric metric;
    ndl_index_type index;
    const char *str_prefix; /* key k with k % 4 == 3 has string id "<prefix><k>" */
    uint64_t num_base;      /* the others have u64 id num_base + k */
} coll_spec;

static const coll_spec SPECS[NCOLL] = {
    {"h", 8, NDL_METRIC_L2, NDL_INDEX_HNSW, "h-", 0},
    {"f", 5, NDL_METRIC_COSINE, NDL_INDEX_FLAT, "doc-", 1000},
};

/* The writes, in order; each is one call and one log record. The flush
 * comes after step FLUSH_AFTER; the last step is an upsert. */
enum { UPSERT, UPSERT_BARE, DELETE, SET_PAYLOAD };

typedef struct step {
    int kind;
    int n;
    int keys[16];
    const char *json;      /* SET_PAYLOAD */
    ndl_payload_mode mode; /* SET_PAYLOAD */
} step;

static const step STEPS[] = {
    {.kind = UPSERT},      /* 0: keys 0..39 with payloads, filled in by step_keys() */
    {.kind = UPSERT_BARE}, /* 1: keys 40..79 without */
    {.kind = DELETE, .n = 8, .keys = {3, 10, 17, 24, 31, 45, 52, 66}},
    {.kind = SET_PAYLOAD, .n = 1, .keys = {6}, .json = "{\"note\":\"merged\",\"k\":null}",
     .mode = NDL_PAYLOAD_MERGE},
    {.kind = UPSERT, .n = 12, .keys = {10, 20, 30, 40, 50, 60, 80, 81, 82, 83, 84, 85}},
    /* flush */
    {.kind = UPSERT, .n = 13, .keys = {86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 0, 1, 2}},
    {.kind = SET_PAYLOAD, .n = 1, .keys = {87}, .json = "{\"replaced\":[true,1.5]}",
     .mode = NDL_PAYLOAD_REPLACE},
    {.kind = DELETE, .n = 4, .keys = {1, 90, 7, 99}}, /* 99 was never written */
    {.kind = UPSERT, .n = 6, .keys = {96, 97, 98, 5, 6, 3}},
};
#define NSTEPS ((int)(sizeof STEPS / sizeof STEPS[0]))
#define FLUSH_AFTER 5

static int step_keys(int s, int *keys)
{
    if (s < 2) {
        for (int i = 0; i < 40; i++)
            keys[i] = s * 40 + i;
        return 40;
    }
    memcpy(keys, STEPS[s].keys, sizeof STEPS[s].keys);
    return STEPS[s].n;
}

typedef struct key_id {
    char str[32];
    ndl_id id;
} key_id;

static void key_id_of(int c, int k, key_id *out)
{
    if (k % 4 == 3) {
        snprintf(out->str, sizeof out->str, "%s%d", SPECS[c].str_prefix, k);
        out->id = ndl_id_str(out->str);
    } else {
        out->id = ndl_id_u64(SPECS[c].num_base + (uint64_t)k);
    }
}

/* key of a hit's id, or -1 if it is none of ours */
static int key_of(int c, ndl_id id)
{
    if (!id.str) {
        uint64_t k = id.num - SPECS[c].num_base;
        return id.num >= SPECS[c].num_base && k < KEYS && k % 4 != 3 ? (int)k : -1;
    }
    size_t pl = strlen(SPECS[c].str_prefix);
    if (id.len <= pl || id.len > pl + 3 || memcmp(id.str, SPECS[c].str_prefix, pl) != 0)
        return -1;
    int k = 0;
    for (uint32_t i = (uint32_t)pl; i < id.len; i++) {
        if (id.str[i] < '0' || id.str[i] > '9')
            return -1;
        k = k * 10 + (id.str[i] - '0');
    }
    return k < KEYS && k % 4 == 3 ? k : -1;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* a value in [-1, 1) from a hash of its coordinates */
static float unit_of(uint64_t h) { return (float)((double)(h >> 11) / 9007199254740992.0 * 2 - 1); }

static void vec_of(int c, int k, int s, float *v)
{
    for (uint32_t j = 0; j < SPECS[c].dim; j++)
        v[j] = unit_of(mix64((uint64_t)c << 48 ^ (uint64_t)k << 24 ^ (uint64_t)s << 8 ^ j));
}

/* The payload an upsert in step s gives key k of collection c, or NULL
 * (one in five points has none). */
static const char *payload_of(int c, int k, int s, char *buf, size_t cap)
{
    if ((k + s) % 5 == 0)
        return NULL;
    snprintf(buf, cap, "{\"k\":%d, \"step\":%d, \"tag\":\"%s%d\", \"w\":[%d,true,{\"z\":null}]}",
             k, s, SPECS[c].str_prefix, k * 7 + s, k % 3);
    return buf;
}

/* ---------------------------------------------------------------- the model */

/* What the collection returns for each key: present or not, the vector and
 * the payload ndl_collection_get_point gave (cosine vectors unit length, as
 * stored; payloads canonical). */
typedef struct model {
    int present[KEYS];
    float vec[KEYS][MAX_DIM];
    char payload[KEYS][MAX_PAYLOAD]; /* "" = none */
    uint64_t live;
} model;

/* Read key k: NDL_OK (vector and payload, "" for none) or NDL_NOT_FOUND. */
static ndl_status read_point(ndl_collection *coll, int c, int k, float *v, char *payload)
{
    key_id ki;
    key_id_of(c, k, &ki);
    char *p = NULL;
    ndl_status st = ndl_collection_get_point(coll, ki.id, v, &p, NULL);
    payload[0] = 0;
    if (st == NDL_OK && p && snprintf(payload, MAX_PAYLOAD, "%s", p) >= MAX_PAYLOAD)
        snprintf(payload, MAX_PAYLOAD, "(a payload of %zu bytes)", strlen(p));
    ndl_free(p);
    return st;
}

static void model_take(ndl_collection *coll, int c, model *m)
{
    memset(m, 0, sizeof *m);
    for (int k = 0; k < KEYS; k++) {
        ndl_status st = read_point(coll, c, k, m->vec[k], m->payload[k]);
        assert_true(st == NDL_OK || st == NDL_NOT_FOUND);
        assert_true(m->payload[k][0] != '(');
        m->present[k] = st == NDL_OK;
        m->live += (uint64_t)m->present[k];
    }
    assert_int_equal(ndl_collection_count(coll), m->live);
}

static float query_of(int c, int q, uint32_t j)
{
    return unit_of(mix64(0xABCDull << 40 ^ (uint64_t)c << 32 ^ (uint64_t)q << 16 ^ j));
}

/* reported distance of model vector v to query q (SPEC section 1) */
static double model_distance(int c, const float *q, const float *v)
{
    uint32_t dim = SPECS[c].dim;
    double s = 0, qq = 0;
    for (uint32_t j = 0; j < dim; j++) {
        if (SPECS[c].metric == NDL_METRIC_L2)
            s += ((double)q[j] - v[j]) * ((double)q[j] - v[j]);
        else
            s += (double)q[j] * v[j], qq += (double)q[j] * q[j];
    }
    return SPECS[c].metric == NDL_METRIC_L2 ? sqrt(s) : 1 - s / sqrt(qq);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Do the hits of one search (with payloads) equal brute force over m?
 * Ties may come in any order, so each hit's distance must be its own
 * model distance and the model's i-th smallest. */
static int hits_match(int c, const model *m, const float *q, const ndl_results *r, char *why,
                      size_t whylen)
{
    double bf[KEYS];
    size_t n = 0;
    for (int k = 0; k < KEYS; k++)
        if (m->present[k])
            bf[n++] = model_distance(c, q, m->vec[k]);
    qsort(bf, n, sizeof bf[0], cmp_double);
    size_t want = n < K ? n : K;
    if (ndl_results_count(r, 0) != want) {
        snprintf(why, whylen, "%s search returned %zu hits, brute force %zu",
                 ndl_results_plan(r), ndl_results_count(r, 0), want);
        return 0;
    }
    const ndl_hit *h = ndl_results_hits(r, 0);
    int seen[KEYS] = {0};
    for (size_t i = 0; i < want; i++) {
        int k = key_of(c, h[i].id);
        if (k < 0 || !m->present[k] || seen[k]++) {
            snprintf(why, whylen, "%s search hit %zu is not a live point (or repeated)",
                     ndl_results_plan(r), i);
            return 0;
        }
        double d = model_distance(c, q, m->vec[k]);
        if (fabs(h[i].distance - d) > 1e-4 || fabs(h[i].distance - bf[i]) > 1e-4) {
            snprintf(why, whylen, "%s search hit %zu (key %d) at distance %g; model %g, rank %g",
                     ndl_results_plan(r), i, k, (double)h[i].distance, d, bf[i]);
            return 0;
        }
        const char *p = ndl_results_payload(r, 0, i);
        if (strcmp(p ? p : "", m->payload[k]) != 0) {
            snprintf(why, whylen, "%s search hit %zu (key %d) carries another payload",
                     ndl_results_plan(r), i, k);
            return 0;
        }
    }
    return 1;
}

/* Does the open collection hold exactly model m? Count, every key (present
 * with the same vector and payload, or absent), exact and default-plan
 * searches. */
static int state_matches(ndl_collection *coll, int c, const model *m, char *why, size_t whylen)
{
    if (ndl_collection_count(coll) != m->live) {
        snprintf(why, whylen, "count %llu, model %llu",
                 (unsigned long long)ndl_collection_count(coll), (unsigned long long)m->live);
        return 0;
    }
    for (int k = 0; k < KEYS; k++) {
        float v[MAX_DIM];
        char payload[MAX_PAYLOAD];
        ndl_status st = read_point(coll, c, k, v, payload);
        if ((st == NDL_OK) != m->present[k]) {
            snprintf(why, whylen, "key %d: get says %s, model %s", k, ndl_status_name(st),
                     m->present[k] ? "present" : "absent");
            return 0;
        }
        if (st == NDL_OK && memcmp(v, m->vec[k], SPECS[c].dim * sizeof(float)) != 0) {
            snprintf(why, whylen, "key %d reads back another vector", k);
            return 0;
        }
        if (st == NDL_OK && strcmp(payload, m->payload[k]) != 0) {
            snprintf(why, whylen, "key %d reads back payload %.60s; model %.60s", k, payload,
                     m->payload[k]);
            return 0;
        }
    }
    for (int q = 0; q < NQUERIES; q++) {
        float qv[MAX_DIM];
        for (uint32_t j = 0; j < SPECS[c].dim; j++)
            qv[j] = query_of(c, q, j);
        for (int exact = 0; exact < 2; exact++) {
            ndl_search_params p;
            ndl_search_params_init(&p);
            p.k = K;
            p.ef = 512; /* more than the points: HNSW finds them all */
            p.exact = exact;
            p.with_payload = 1;
            ndl_results *r;
            ndl_error e;
            if (ndl_collection_search(coll, qv, &p, &r, &e) != NDL_OK) {
                snprintf(why, whylen, "search failed: %.150s", e.msg);
                return 0;
            }
            int ok = hits_match(c, m, qv, r, why, whylen);
            ndl_results_free(r);
            if (!ok)
                return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- images */

typedef enum file_kind { F_MARKER, F_CATALOG, F_COLL } file_kind;

typedef struct pfile {
    char rel[128];      /* path below the database directory */
    uint8_t *bytes;
    size_t len;
    file_kind kind;
    int coll;           /* F_COLL: index in SPECS */
    int is_wal;         /* a log segment (a collection's or the catalog's) */
    size_t nrecs;
    size_t rec_off[64]; /* log segments: offset of every record */
    size_t last_rec;    /* log segments: offset of the last record */
} pfile;

typedef struct image {
    const char *name;
    int covers_log;     /* the checkpoints cover every log record */
    pfile files[MAX_FILES];
    size_t nfiles;
    model full[NCOLL];  /* after every step */
    model prev[NCOLL];  /* before the last step */
} image;

static char tmpdir[128], builddir[192], workdir[192];
static image crash_img, closed_img;
static uint64_t seed = 0x5eed;
static int random_cases = 24;
static char current_case[512]; /* for the hang and sanitizer reports */

static int coll_of(const char *rel)
{
    for (int c = 0; c < NCOLL; c++) {
        size_t l = strlen(SPECS[c].name);
        if (strncmp(rel, SPECS[c].name, l) == 0 && rel[l] == '/')
            return c;
    }
    return -1;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read '%s': %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    assert_true(n >= 0);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* out = a "/" b (just b when a is empty); fails the test if it does not fit */
static void join(char *out, size_t cap, const char *a, const char *b)
{
    int n = *a ? snprintf(out, cap, "%s/%s", a, b) : snprintf(out, cap, "%s", b);
    if (n < 0 || (size_t)n >= cap)
        fail_msg("path too long: %s/%s", a, b);
}

/* Record offsets of a log segment (all records valid: it is pristine). */
static void parse_wal(pfile *f)
{
    size_t off = WAL_SEG_HEADER;
    f->nrecs = 0;
    while (off < f->len) {
        assert_true(f->nrecs < NDL_ARRAY_LEN(f->rec_off));
        f->rec_off[f->nrecs++] = off;
        off += (size_t)wal_rec_bytes(le_get32(f->bytes + off));
    }
    assert_int_equal(off, f->len);
    /* no record (a segment rolled at a clean close): nothing is a tail */
    f->last_rec = f->nrecs ? f->rec_off[f->nrecs - 1] : f->len;
}

/* Call fn for every entry below root/rel but LOCK (empty, flock only):
 * files, and directories after what they hold; sub is the path below root. */
typedef void (*walk_fn)(void *ctx, const char *sub, const char *full, int is_dir);

static void walk(const char *root, const char *rel, walk_fn fn, void *ctx)
{
    char dir[512];
    join(dir, sizeof dir, root, rel);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strcmp(de->d_name, "LOCK") == 0)
            continue;
        char sub[sizeof crash_img.files[0].rel], full[700];
        join(sub, sizeof sub, rel, de->d_name);
        join(full, sizeof full, root, sub);
        struct stat st;
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            walk(root, sub, fn, ctx);
        fn(ctx, sub, full, S_ISDIR(st.st_mode));
    }
    closedir(d);
}

/* walk_fn: read a file into the image ctx. */
static void collect_one(void *ctx, const char *sub, const char *full, int is_dir)
{
    image *im = ctx;
    if (is_dir)
        return;
    assert_true(im->nfiles < MAX_FILES);
    pfile *f = &im->files[im->nfiles++];
    snprintf(f->rel, sizeof f->rel, "%s", sub);
    f->bytes = slurp(full, &f->len);
    f->coll = coll_of(sub);
    f->kind = strcmp(sub, "NEEDLE_DB") == 0           ? F_MARKER
              : strncmp(sub, ".catalog/", 9) == 0 ? F_CATALOG
                                                      : F_COLL;
    assert_true(f->kind != F_COLL || f->coll >= 0);
    f->is_wal = f->kind == F_CATALOG || strstr(sub, "/wal/") != NULL;
    if (f->is_wal)
        parse_wal(f);
}

static void image_free(image *im)
{
    for (size_t i = 0; i < im->nfiles; i++)
        free(im->files[i].bytes);
    im->nfiles = 0;
}

/* Make path hold b: rewritten only if it differs, in place. */
static void write_file(const char *path, const uint8_t *b, size_t len)
{
    static uint8_t cur[1 << 16];
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        fail_msg("cannot write '%s': %s", path, strerror(errno));
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    if ((size_t)st.st_size == len && len <= sizeof cur &&
        pread(fd, cur, len, 0) == (ssize_t)len && memcmp(cur, b, len) == 0) {
        close(fd);
        return;
    }
    for (size_t done = 0; done < len;) {
        ssize_t n = pwrite(fd, b + done, len - done, (off_t)done);
        assert_true(n > 0);
        done += (size_t)n;
    }
    assert_int_equal(ftruncate(fd, (off_t)len), 0);
    close(fd);
}

/* Does im hold a file at rel, or below it (a directory)? */
static int image_has(const image *im, const char *rel, int as_dir)
{
    size_t l = strlen(rel);
    for (size_t i = 0; i < im->nfiles; i++)
        if (as_dir ? strncmp(im->files[i].rel, rel, l) == 0 && im->files[i].rel[l] == '/'
                   : strcmp(im->files[i].rel, rel) == 0)
            return 1;
    return 0;
}

/* walk_fn: remove what the image ctx does not hold (new checkpoint
 * generations, a recreated log segment, a collection brought back). */
static void remove_one(void *ctx, const char *sub, const char *full, int is_dir)
{
    if (image_has(ctx, sub, is_dir))
        return;
    if (is_dir)
        rmdir(full);
    else
        unlink(full);
}

static void mkdirs_for(const image *im)
{
    for (size_t i = 0; i < im->nfiles; i++) {
        char p[700];
        join(p, sizeof p, workdir, im->files[i].rel);
        for (char *s = strchr(p + strlen(workdir) + 1, '/'); s; s = strchr(s + 1, '/')) {
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST)
                fail_msg("cannot create '%s': %s", p, strerror(errno));
            *s = '/';
        }
    }
}

/* Make workdir hold exactly im. */
static void restore(const image *im)
{
    walk(workdir, "", remove_one, (void *)im);
    mkdirs_for(im);
    for (size_t i = 0; i < im->nfiles; i++) {
        char p[700];
        join(p, sizeof p, workdir, im->files[i].rel);
        write_file(p, im->files[i].bytes, im->files[i].len);
    }
}

/* ---------------------------------------------------------------- building */

/* The database a test has open, closed by the teardown if the test fails
 * midway (its lock would refuse every later case). */
static ndl_db *live_db;
/* ndl_db_options.verify_on_open for the next opens (default 0: the vectors
 * are verified after open) */
static int verify_on_open;

static ndl_db *db_open_at(const char *path, ndl_error *e)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.checkpoint_interval_ms = 0; /* no background checkpoint moves files */
    o.verify_on_open = verify_on_open;
    ndl_db *db = NULL;
    if (ndl_db_open(path, &o, &db, e) != NDL_OK)
        return NULL;
    live_db = db;
    return db;
}

static ndl_status db_close(ndl_db *db, ndl_error *e)
{
    live_db = NULL;
    return ndl_db_close(db, e);
}

static int close_live_db(void **state)
{
    (void)state;
    if (live_db)
        db_close(live_db, NULL);
    return 0;
}

static void run_step(ndl_collection *coll, int c, int s)
{
    const step *st = &STEPS[s];
    int keys[40];
    int n = step_keys(s, keys);
    key_id ki[40];
    ndl_id ids[40];
    float v[40 * MAX_DIM];
    char texts[40][MAX_PAYLOAD];
    const char *payloads[40];
    uint32_t dim = SPECS[c].dim;
    for (int i = 0; i < n; i++) {
        key_id_of(c, keys[i], &ki[i]);
        ids[i] = ki[i].id;
        vec_of(c, keys[i], s, v + (size_t)i * dim);
        payloads[i] = payload_of(c, keys[i], s, texts[i], sizeof texts[i]);
    }
    ndl_error e;
    ndl_status rc = st->kind == DELETE ? ndl_collection_delete(coll, (size_t)n, ids, NULL, &e)
                    : st->kind == SET_PAYLOAD
                        ? ndl_collection_set_payload(coll, ids[0], st->json, st->mode, &e)
                    : st->kind == UPSERT_BARE
                        ? ndl_collection_upsert(coll, (size_t)n, ids, v, NULL, &e)
                        : ndl_collection_upsert_points(coll, (size_t)n, ids, v, payloads, NULL, &e);
    if (rc != NDL_OK)
        fail_msg("step %d of '%s': %s", s, SPECS[c].name, e.msg);
}

static const pfile *find_file(const image *im, const char *prefix)
{
    for (size_t i = 0; i < im->nfiles; i++)
        if (strncmp(im->files[i].rel, prefix, strlen(prefix)) == 0)
            return &im->files[i];
    fail_msg("image %s has no file %s*", im->name, prefix);
    return NULL;
}

/* Build the database, then capture both images: "crash" while it is open
 * (every write is fsynced: a kill -9 would leave exactly these files),
 * "closed" after ndl_db_close. */
static void build_images(void)
{
    ndl_error e;
    ndl_db *db = db_open_at(builddir, &e);
    if (!db)
        fail_msg("open: %s", e.msg);
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = X_DIM;
    cfg.index = NDL_INDEX_FLAT;
    if (ndl_collection_create(db, "x", &cfg, NULL, &e) != NDL_OK)
        fail_msg("create x: %s", e.msg);
    ndl_collection *coll[NCOLL];
    for (int c = 0; c < NCOLL; c++) {
        ndl_collection_config_init(&cfg);
        cfg.dimension = SPECS[c].dim;
        cfg.metric = SPECS[c].metric;
        cfg.index = SPECS[c].index;
        cfg.hnsw_m = 6;
        cfg.hnsw_ef_construction = 40;
        if (ndl_collection_create(db, SPECS[c].name, &cfg, &coll[c], &e) != NDL_OK)
            fail_msg("create: %s", e.msg);
        for (int s = 0; s < NSTEPS; s++) {
            if (s == NSTEPS - 1)
                model_take(coll[c], c, &crash_img.prev[c]);
            run_step(coll[c], c, s);
            if (s + 1 == FLUSH_AFTER && ndl_collection_flush(coll[c], &e) != NDL_OK)
                fail_msg("flush: %s", e.msg);
        }
        model_take(coll[c], c, &crash_img.full[c]);
        closed_img.full[c] = crash_img.full[c];
        closed_img.prev[c] = crash_img.prev[c];
    }
    if (ndl_collection_drop(db, "x", &e) != NDL_OK)
        fail_msg("drop x: %s", e.msg);
    walk(builddir, "", collect_one, &crash_img);
    assert_int_equal(db_close(db, &e), NDL_OK);
    walk(builddir, "", collect_one, &closed_img);
    crash_img.name = "crash";
    closed_img.name = "closed";
    closed_img.covers_log = 1;
    /* every kind of file is there to be damaged, and nothing else */
    static const char *const want[] = {
        "NEEDLE_DB",   ".catalog/wal-", "h/MANIFEST", "h/vectors.", "h/ids.",
        "h/graph.",    "h/payloads.",   "h/wal/wal-", "f/MANIFEST", "f/vectors.",
        "f/ids.",      "f/payloads.",   "f/wal/wal-"};
    for (int i = 0; i < 2; i++) {
        image *im = i ? &closed_img : &crash_img;
        for (size_t w = 0; w < NDL_ARRAY_LEN(want); w++)
            find_file(im, want[w]);
        assert_int_equal(im->nfiles, NDL_ARRAY_LEN(want));
        /* CREATE x, CREATE h, CREATE f, DROP x, each sealed */
        assert_int_equal(find_file(im, ".catalog/")->nrecs, 8);
        /* the checkpoint after step FLUSH_AFTER rolled the log (nothing was
         * logged after its snapshot), so the crash image's logs hold the
         * steps after it; a clean close leaves one empty segment */
        assert_int_equal(find_file(im, "h/wal/")->nrecs, i ? 0 : NSTEPS - FLUSH_AFTER);
        assert_int_equal(find_file(im, "f/wal/")->nrecs, i ? 0 : NSTEPS - FLUSH_AFTER);
    }
}

/* ---------------------------------------------------------------- one case */

enum { OUT_REFUSED, OUT_DAMAGED, OUT_LOG_TAIL, OUT_CATALOG_TAIL, OUT_UNNOTICED, OUT_N };
static const char *const OUT_NAMES[OUT_N] = {"refused at open", "damaged after open",
                                             "log tail dropped", "catalog tail dropped",
                                             "unnoticed, data intact"};

static int names_file(const char *msg, const pfile *f)
{
    return strstr(msg, f->rel) != NULL;
}

/* A refused open must leave the damaged file exactly as it was. */
static void assert_untouched(const pfile *f, size_t off, uint8_t mask)
{
    char p[700];
    join(p, sizeof p, workdir, f->rel);
    size_t len;
    uint8_t *b = slurp(p, &len);
    int same = len == f->len && b[off] == (uint8_t)(f->bytes[off] ^ mask) &&
               memcmp(b, f->bytes, off) == 0 &&
               memcmp(b + off + 1, f->bytes + off + 1, len - off - 1) == 0;
    free(b);
    if (!same)
        fail_msg("%s: the open was refused, but the file changed (%zu bytes now)", current_case,
                 len);
}

/* x was dropped, acknowledged: no damage may bring it back */
static void assert_x_gone(ndl_db *db)
{
    ndl_collection *x;
    ndl_error e;
    ndl_status st = ndl_collection_open(db, "x", &x, &e);
    if (st == NDL_OK)
        ndl_collection_close(x, NULL);
    if (st != NDL_NOT_FOUND)
        fail_msg("%s: the dropped x opens with %s", current_case, ndl_status_name(st));
}

/* The vectors of coll were found damaged after open (e says how): every
 * read, write and save must answer NDL_CORRUPT naming the file, and close
 * must leave the files as they were. */
static void assert_damaged(ndl_collection *coll, int c, const pfile *f, size_t off, uint8_t mask,
                           const ndl_error *why)
{
    if (why->status != NDL_CORRUPT || !names_file(why->msg, f) || !strstr(f->rel, "/vectors.") ||
        !strstr(why->msg, "chunk"))
        fail_msg("%s: verify of '%s' says %s: %s", current_case, SPECS[c].name,
                 ndl_status_name(why->status), why->msg);
    float qv[MAX_DIM] = {0};
    key_id ki;
    key_id_of(c, 0, &ki);
    ndl_search_params p;
    ndl_search_params_init(&p);
    ndl_results *r = NULL;
    ndl_error e;
    ndl_status st[5];
    const char *what[5] = {"search", "get", "upsert", "flush", "check"};
    st[0] = ndl_collection_search(coll, qv, &p, &r, &e);
    ndl_results_free(r);
    st[1] = ndl_collection_get(coll, ki.id, qv, &e);
    st[2] = ndl_collection_upsert(coll, 1, &ki.id, qv, NULL, &e);
    st[3] = ndl_collection_flush(coll, &e);
    st[4] = ndl_collection_check(coll, &e);
    for (int i = 0; i < 5; i++)
        if (st[i] != NDL_CORRUPT)
            fail_msg("%s: '%s' is damaged, but %s answers %s", current_case, SPECS[c].name,
                     what[i], ndl_status_name(st[i]));
    if (!names_file(e.msg, f))
        fail_msg("%s: check of the damaged '%s' says: %s", current_case, SPECS[c].name, e.msg);
    ndl_collection_info info;
    assert_int_equal(ndl_collection_info_get(coll, &info, NULL), NDL_OK);
    if (!names_file(info.damaged, f))
        fail_msg("%s: info of the damaged '%s' says \"%s\"", current_case, SPECS[c].name,
                 info.damaged);
    /* nothing is saved: the flipped bit is not written under a new CRC */
    assert_int_equal(ndl_collection_close(coll, &e), NDL_CORRUPT);
    assert_untouched(f, off, mask);
}

/* Open collection c and hold it against the model: the pristine state
 * (want), or, on the first open (prior < 0) after damage in c's last log
 * record, the state before the last write. prior: the outcome of the open
 * before this one, or -1. Returns the outcome for c. */
static int check_collection(ndl_db *db, const image *im, int c, const pfile *f, size_t off,
                            uint8_t mask, int prior)
{
    int mine = f->kind == F_COLL && f->coll == c;
    const model *want = prior == OUT_LOG_TAIL && mine ? &im->prev[c] : &im->full[c];
    ndl_collection *coll;
    ndl_error e;
    ndl_status st = ndl_collection_open(db, SPECS[c].name, &coll, &e);
    if (st != NDL_OK) {
        if (prior >= 0 || !mine || st != NDL_CORRUPT || !names_file(e.msg, f))
            fail_msg("%s: opening '%s' failed with %s: %s", current_case, SPECS[c].name,
                     ndl_status_name(st), e.msg);
        assert_untouched(f, off, mask);
        return OUT_REFUSED;
    }
    /* the vectors are verified after open (by a thread); wait for that here */
    if (ndl_collection_verify(coll, &e) != NDL_OK) {
        if (prior >= 0 || !mine)
            fail_msg("%s: '%s' is damaged: %s", current_case, SPECS[c].name, e.msg);
        assert_damaged(coll, c, f, off, mask, &e);
        return OUT_DAMAGED;
    }
    /* read everything before check: damage must not crash a read */
    char why_full[200] = "", why_prev[200] = "";
    int same_full = state_matches(coll, c, want, why_full, sizeof why_full);
    int same_prev = !same_full && state_matches(coll, c, &im->prev[c], why_prev, sizeof why_prev);
    ndl_collection_info info;
    assert_int_equal(ndl_collection_info_get(coll, &info, NULL), NDL_OK);
    st = ndl_collection_check(coll, &e);
    if (st != NDL_OK)
        fail_msg("%s: '%s' opened, but check says %s: %s", current_case, SPECS[c].name,
                 ndl_status_name(st), e.msg);
    if (info.dropped_log_bytes == 0) {
        if (!same_full)
            fail_msg("%s: undetected damage changed '%s': %s", current_case, SPECS[c].name,
                     why_full);
        return OUT_UNNOTICED;
    }
    /* DESIGN.md, Recovery: a torn or corrupt record at the very end of the
     * last segment, after what the checkpoint covers, is cut off and
     * reported; nothing else may go */
    if (prior >= 0 || !mine || !f->is_wal || off < f->last_rec || im->covers_log)
        fail_msg("%s: a log tail of '%s' was dropped (%s) for damage outside its last record",
                 current_case, SPECS[c].name, info.dropped_log_at);
    char at[200];
    snprintf(at, sizeof at, "%s at byte %zu", f->rel, f->last_rec);
    if (info.dropped_log_bytes != f->len - f->last_rec || !strstr(info.dropped_log_at, at))
        fail_msg("%s: dropped %llu bytes at %s; expected %zu at %s", current_case,
                 (unsigned long long)info.dropped_log_bytes, info.dropped_log_at,
                 f->len - f->last_rec, at);
    if (!same_prev)
        fail_msg("%s: the last record was dropped but '%s' is not the pristine one minus the "
                 "last write: %s",
                 current_case, SPECS[c].name, why_prev);
    return OUT_LOG_TAIL;
}

/* Open the damaged database, read it and classify what happened; fail
 * the test on anything DESIGN.md does not allow. off: the damaged byte;
 * prior: as for check_collection. */
static int open_and_read(const image *im, const pfile *f, size_t off, uint8_t mask, int prior)
{
    ndl_error e;
    ndl_db *db = db_open_at(workdir, &e);
    if (!db) {
        if (prior >= 0 || f->kind == F_COLL || e.status != NDL_CORRUPT || !names_file(e.msg, f))
            fail_msg("%s: database open failed with %s: %s", current_case,
                     ndl_status_name(e.status), e.msg);
        assert_untouched(f, off, mask);
        return OUT_REFUSED;
    }
    int out = OUT_UNNOTICED;
    for (int c = 0; c < NCOLL; c++) {
        if (f->kind == F_COLL && f->coll != c)
            continue; /* the other collection does not care */
        int o = check_collection(db, im, c, f, off, mask, prior);
        if (o != OUT_UNNOTICED)
            out = o;
    }
    assert_x_gone(db);
    ndl_db_info info;
    assert_int_equal(ndl_db_info_get(db, &info, NULL), NDL_OK);
    if (info.dropped_catalog_bytes || prior == OUT_CATALOG_TAIL) {
        /* the catalog's last record (the seal of DROP x) was cut off as a
         * torn tail, and the first open said so */
        char p[700];
        join(p, sizeof p, workdir, f->rel);
        struct stat st;
        if (f->kind != F_CATALOG || off < f->last_rec || stat(p, &st) != 0 ||
            (size_t)st.st_size != f->last_rec)
            fail_msg("%s: a catalog tail was cut, but not the last record", current_case);
        char at[200];
        snprintf(at, sizeof at, "%s at byte %zu", f->rel, f->last_rec);
        if (prior < 0 && (info.dropped_catalog_bytes != f->len - f->last_rec ||
                          !strstr(info.dropped_catalog_at, at)))
            fail_msg("%s: the catalog's cut tail is reported as %llu bytes at \"%s\"",
                     current_case, (unsigned long long)info.dropped_catalog_bytes,
                     info.dropped_catalog_at);
        if (prior >= 0 && info.dropped_catalog_bytes)
            fail_msg("%s: the catalog's tail is cut again", current_case);
        out = OUT_CATALOG_TAIL;
    }
    if (db_close(db, &e) != NDL_OK)
        fail_msg("%s: close failed: %s", current_case, e.msg);
    return out;
}

static int run_case(const image *im, const pfile *f, size_t off, uint8_t mask)
{
    int out = open_and_read(im, f, off, mask, -1);
    /* a repair is for good: another open finds the same state, cleanly */
    if (out == OUT_LOG_TAIL || out == OUT_CATALOG_TAIL) {
        int again = open_and_read(im, f, off, mask, out);
        if (again != (out == OUT_CATALOG_TAIL ? OUT_CATALOG_TAIL : OUT_UNNOTICED))
            fail_msg("%s: after the repair, another open: %s", current_case, OUT_NAMES[again]);
    }
    return out;
}

/* Flip the bits of mask in byte off of f's copy in workdir (which holds
 * the pristine bytes). */
static void poke(const pfile *f, size_t off, uint8_t mask)
{
    char p[700];
    join(p, sizeof p, workdir, f->rel);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    uint8_t b = f->bytes[off] ^ mask;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

/* Damage file f of im at off with mask, run the case, restore the files.
 * workdir must hold im. */
static int flip_case(const image *im, const pfile *f, size_t off, uint8_t mask, int *tally)
{
    snprintf(current_case, sizeof current_case,
             "image %s, file %s (%zu bytes), byte %zu ^= 0x%02x (NEEDLE_BITFLIP_SEED=0x%llx)",
             im->name, f->rel, f->len, off, mask, (unsigned long long)seed);
    poke(f, off, mask);
    alarm(CASE_SECONDS);
    int out = run_case(im, f, off, mask);
    alarm(0);
    assert_true(out >= 0 && out < OUT_N);
    tally[out]++;
    restore(im);
    return out;
}

/* ---------------------------------------------------------------- reports */

extern void __asan_set_death_callback(void (*cb)(void)) __attribute__((weak));

static void say_case(void)
{
    static const char head[] = "\nbitflip case: ";
    ssize_t r = write(2, head, sizeof head - 1);
    r = write(2, current_case, strlen(current_case));
    r = write(2, "\n", 1);
    (void)r;
}

static void on_signal(int sig)
{
    if (sig == SIGALRM) {
        static const char msg[] = "\nbitflip: a case hangs (no answer in 30 s)";
        ssize_t r = write(2, msg, sizeof msg - 1);
        (void)r;
    }
    say_case();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int group_setup(void **state)
{
    (void)state;
    const char *env = getenv("NEEDLE_BITFLIP_CASES");
    if (env)
        random_cases = atoi(env);
    env = getenv("NEEDLE_BITFLIP_SEED");
    if (env)
        seed = strtoull(env, NULL, 0);
    /* tmpfs when there is one: fsync is free there (see the top) */
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
                               access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/needle-bitflip-XXXXXX", base);
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(builddir, sizeof builddir, "%s/build", tmpdir);
    snprintf(workdir, sizeof workdir, "%s/work", tmpdir);
    if (mkdir(workdir, 0755) != 0)
        return -1;
    signal(SIGALRM, on_signal);
    if (__asan_set_death_callback) {
        __asan_set_death_callback(say_case);
    } else { /* no sanitizer: report crashes ourselves */
        signal(SIGSEGV, on_signal);
        signal(SIGBUS, on_signal);
        signal(SIGABRT, on_signal);
    }
    build_images();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    image_free(&crash_img);
    image_free(&closed_img);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd);
}

static void print_tally(const image *im, const char *what, const int *tally)
{
    int total = 0;
    for (int i = 0; i < OUT_N; i++)
        total += tally[i];
    print_message("  %s image, %s: %d cases:", im->name, what, total);
    for (int i = 0; i < OUT_N; i++)
        print_message(" %d %s%s", tally[i], OUT_NAMES[i], i + 1 < OUT_N ? "," : "\n");
}

/* ---------------------------------------------------------------- tests */

/* One bit of every header byte of every file: the sfile header, or a log
 * segment's header and each of its record headers. The bit rotates with
 * the offset and the file, so every bit position of every field is hit. */
static void header_sweep(const image *im)
{
    int tally[OUT_N] = {0};
    restore(im);
    for (size_t i = 0; i < im->nfiles; i++) {
        const pfile *f = &im->files[i];
        size_t nh = f->is_wal ? WAL_SEG_HEADER : SFILE_HEADER_BYTES;
        assert_true(f->len >= nh);
        for (size_t r = 0; r <= (f->is_wal ? f->nrecs : 0); r++) {
            size_t base = r == 0 ? 0 : f->rec_off[r - 1];
            size_t n = r == 0 ? nh : WAL_REC_HEADER;
            for (size_t off = base; off < base + n; off++)
                flip_case(im, f, off, (uint8_t)(1u << (off + i) % 8), tally);
        }
    }
    print_tally(im, "one bit of every header byte", tally);
    assert_true(tally[OUT_REFUSED] > 0);
    assert_int_equal(tally[OUT_UNNOTICED], 0); /* every header byte is checked */
}

/* random_cases flips per file: one bit, or a random mask of one byte. */
static void random_sweep(const image *im)
{
    int tally[OUT_N] = {0};
    restore(im);
    uint64_t rs = mix64(seed ^ (uint64_t)im->covers_log);
    for (size_t i = 0; i < im->nfiles; i++) {
        const pfile *f = &im->files[i];
        for (int n = 0; n < random_cases; n++) {
            rs = mix64(rs);
            size_t off = (size_t)(rs % f->len);
            uint8_t mask = (uint8_t)(n & 1 ? 1u << (rs >> 32) % 8 : 1 + (rs >> 40) % 255);
            flip_case(im, f, off, mask, tally);
        }
    }
    print_tally(im, "random flips", tally);
}

/* The sweeps as tests; the image comes as the test's state (see main). */
static void test_headers(void **state) { header_sweep(*state); }
static void test_random(void **state) { random_sweep(*state); }

/* One flip of file `prefix` of im at off (relative to its last log record
 * if from_last) must have outcome want. */
static void one_case(const image *im, const char *prefix, int from_last, size_t off,
                     uint8_t mask, int want)
{
    const pfile *f = find_file(im, prefix);
    int tally[OUT_N] = {0};
    restore(im);
    int out = flip_case(im, f, (from_last ? f->last_rec : 0) + off, mask, tally);
    if (out != want)
        fail_msg("%s: %s; expected %s", current_case, OUT_NAMES[out], OUT_NAMES[want]);
}

/* The cases DESIGN.md spells out, one each. */
static void test_named_cases(void **state)
{
    (void)state;
    /* the last log record, not covered by the checkpoint: a torn tail */
    one_case(&crash_img, "h/wal/", 1, WAL_REC_HEADER, 0x01, OUT_LOG_TAIL);
    one_case(&crash_img, "f/wal/", 1, 8, 0x80, OUT_LOG_TAIL); /* its LSN */
    /* a clean close leaves one empty segment: its header damaged is
     * refused (a covered record damaged is refused too: test_wal.c,
     * test_wal_durable_records_are_no_torn_tail) */
    one_case(&closed_img, "h/wal/", 0, 9, 0x01, OUT_REFUSED);
    /* any record but the last: refused */
    one_case(&crash_img, "h/wal/", 0, WAL_SEG_HEADER + WAL_REC_HEADER, 0x04, OUT_REFUSED);
    /* a vector's exponent bit: found by the verification after open, and
     * then every read and write of the collection says so, nothing is
     * saved (the vectors' CRC used to be checked by check only, so it was
     * served, and the next checkpoint rewrote it under a fresh CRC) */
    size_t vec4 = SFILE_HEADER_BYTES + 4 * SPECS[0].dim * 4 + 3;
    one_case(&crash_img, "h/vectors.", 0, vec4, 0x40, OUT_DAMAGED);
    one_case(&closed_img, "f/vectors.", 0, SFILE_HEADER_BYTES + 1, 0x10, OUT_DAMAGED);
    /* ... refused at open when the database verifies there (the CLI) */
    verify_on_open = 1;
    one_case(&crash_img, "h/vectors.", 0, vec4, 0x40, OUT_REFUSED);
    verify_on_open = 0;
    /* the chunk checksums, and the trailer guarding them: refused at open */
    const pfile *v = find_file(&closed_img, "h/vectors.");
    one_case(&closed_img, "h/vectors.", 0, v->len - 13, 0x08, OUT_REFUSED);
    one_case(&closed_img, "h/vectors.", 0, v->len - 8, 0x01, OUT_REFUSED);
    /* a payload byte, an id byte, a manifest field, a graph link */
    one_case(&crash_img, "h/payloads.", 0, 0, 0, OUT_UNNOTICED); /* mask 0: the control */
    const pfile *p = find_file(&crash_img, "f/payloads.");
    one_case(&crash_img, "f/payloads.", 0, p->len - 2, 0x20, OUT_REFUSED);
    one_case(&closed_img, "h/ids.", 0, SFILE_HEADER_BYTES + 8 + 16 * 5, 0x01, OUT_REFUSED);
    one_case(&crash_img, "f/MANIFEST", 0, SFILE_HEADER_BYTES, 0x02, OUT_REFUSED);
    one_case(&crash_img, "h/graph.", 0, find_file(&crash_img, "h/graph.")->len - 4, 0x01,
             OUT_REFUSED);
    /* the marker and the catalog: the database does not open */
    one_case(&crash_img, "NEEDLE_DB", 0, 0, 0x01, OUT_REFUSED);
    one_case(&crash_img, ".catalog/", 0, WAL_SEG_HEADER + WAL_REC_HEADER + 4, 0x01,
             OUT_REFUSED);
    /* the catalog's last record (the seal of DROP x): a torn tail, cut */
    const pfile *cat = find_file(&closed_img, ".catalog/");
    one_case(&closed_img, ".catalog/", 0, cat->last_rec + WAL_REC_HEADER, 0x01,
             OUT_CATALOG_TAIL);
    /* DROP x itself, followed by its seal: refused, x stays dropped */
    one_case(&closed_img, ".catalog/", 0, cat->rec_off[cat->nrecs - 2] + WAL_REC_HEADER + 8,
             0x01, OUT_REFUSED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_named_cases, close_live_db),
        {"crash image, headers", test_headers, NULL, close_live_db, &crash_img},
        {"crash image, random flips", test_random, NULL, close_live_db, &crash_img},
        {"closed image, headers", test_headers, NULL, close_live_db, &closed_img},
        {"closed image, random flips", test_random, NULL, close_live_db, &closed_img},
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
