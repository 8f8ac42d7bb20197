/*
 * test_crash.c -- kill -9 at random moments. A child process writes batches
 * (upserts with payloads, payload merges and deletes, each one call) and
 * reports each acknowledged one through a pipe;
 * the parent kills it after a random delay -- during writes, during the
 * frequent checkpoints a tiny checkpoint threshold causes, during
 * compactions (explicit ones every 24 steps, and those checkpoints start
 * when a quarter of the slots are dead), or while the child is still
 * recovering -- then reopens the database and checks it
 * holds exactly the acknowledged batches, or those plus the one in flight
 * (applied whole, never half): every vector and payload as the model says.
 * Searches must match a brute-force model, payload filters (answered by
 * field indexes rebuilt on every recovery) must count and find what the
 * model says, and ndl_collection_check passes.
 *
 * A second loop does the same with collection creates and drops (the
 * catalog log): every acknowledged one must hold after reopen, the one in
 * flight either did or did not happen, whole, and no leftover stays.
 *
 * NEEDLE_CRASH_CYCLES sets the number of cycles (default 200; the catalog
 * loop runs half as many).
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "needle.h"

#define DIM 8
#define IDS 400
#define UPSERTS 12
#define DELETES 4

static char dbdir[256];

/* Batch b (1-based): upsert ids (b*7+j) % IDS with vectors and payloads
 * that depend on b, merge a key into the payload of id (b*7) % IDS, then
 * delete ids (b*13+j) % IDS -- three log records per batch. */
static void batch_vector(uint32_t b, uint64_t id, float *v)
{
    for (int j = 0; j < DIM; j++)
        v[j] = (float)sin((double)b * 0.3711 + (double)id * 1.2913 + j * 0.7) * 10.0f;
}

static void batch_payload(uint32_t b, uint64_t id, char *out, size_t cap)
{
    snprintf(out, cap, "{\"b\":%u,\"id\":%llu}", b, (unsigned long long)id);
}

/* model state after `batches` batches: present[id], vectors, payloads */
typedef struct model {
    int present[IDS];
    float vec[IDS][DIM];
    char payload[IDS][64];
} model;

/* Write s (1-based) is step (s-1) % 3 of batch (s+2)/3: 0 the upsert, 1 the
 * merge, 2 the delete; each is one acknowledged call, one log record. */
static void model_apply(model *m, uint32_t s)
{
    uint32_t b = (s + 2) / 3;
    if ((s - 1) % 3 == 0) {
        for (int j = 0; j < UPSERTS; j++) {
            uint64_t id = ((uint64_t)b * 7 + (uint64_t)j) % IDS;
            m->present[id] = 1;
            batch_vector(b, id, m->vec[id]);
            batch_payload(b, id, m->payload[id], sizeof m->payload[id]);
        }
    } else if ((s - 1) % 3 == 1) {
        uint64_t id = ((uint64_t)b * 7) % IDS;
        size_t len = strlen(m->payload[id]);
        snprintf(m->payload[id] + len - 1, sizeof m->payload[id] - len + 1, ",\"m\":%u}", b);
    } else {
        for (int j = 0; j < DELETES; j++)
            m->present[((uint64_t)b * 13 + (uint64_t)j) % IDS] = 0;
    }
}

static void model_at(model *m, uint32_t batches)
{
    memset(m, 0, sizeof *m);
    for (uint32_t b = 1; b <= batches; b++)
        model_apply(m, b);
}

static ndl_db *open_db(ndl_error *e)
{
    ndl_db_options o;
    ndl_db_options_init(&o);
    o.checkpoint_wal_bytes = 16 << 10; /* checkpoint often: kills land in them */
    ndl_db *db = NULL;
    return ndl_db_open(dbdir, &o, &db, e) == NDL_OK ? db : NULL;
}

static int write_step(ndl_collection *c, uint32_t s)
{
    uint32_t b = (s + 2) / 3;
    if ((s - 1) % 3 == 0) {
        ndl_id ids[UPSERTS];
        float v[UPSERTS * DIM];
        char texts[UPSERTS][64];
        const char *payloads[UPSERTS];
        for (int j = 0; j < UPSERTS; j++) {
            ids[j] = ndl_id_u64(((uint64_t)b * 7 + (uint64_t)j) % IDS);
            batch_vector(b, ids[j].num, v + j * DIM);
            batch_payload(b, ids[j].num, texts[j], sizeof texts[j]);
            payloads[j] = texts[j];
        }
        return ndl_collection_upsert_points(c, UPSERTS, ids, v, payloads, NULL, NULL) == NDL_OK
                   ? 0
                   : -1;
    }
    if ((s - 1) % 3 == 1) {
        char patch[32];
        snprintf(patch, sizeof patch, "{\"m\":%u}", b);
        return ndl_collection_set_payload(c, ndl_id_u64(((uint64_t)b * 7) % IDS), patch,
                                          NDL_PAYLOAD_MERGE, NULL) == NDL_OK
                   ? 0
                   : -1;
    }
    ndl_id del[DELETES];
    for (int j = 0; j < DELETES; j++)
        del[j] = ndl_id_u64(((uint64_t)b * 13 + (uint64_t)j) % IDS);
    return ndl_collection_delete(c, DELETES, del, NULL, NULL) == NDL_OK ? 0 : -1;
}

/* The child: open (recover), then write batches from `first` on forever,
 * reporting each acknowledged one. */
static void child(uint32_t first, int fd)
{
    ndl_error e;
    ndl_db *db = open_db(&e);
    if (!db)
        _exit(3);
    ndl_collection *c;
    if (ndl_collection_open(db, "c", &c, &e) != NDL_OK)
        _exit(4);
    for (uint32_t b = first;; b++) {
        if (write_step(c, b) != 0)
            _exit(5);
        if (write(fd, &b, sizeof b) != sizeof b)
            _exit(6);
        /* an explicit compaction (and the checkpoint after it) every 24
         * steps, so kills land in compactions too, not only in those the
         * checkpoints start by themselves */
        if (b % 24 == 0 && ndl_collection_compact(c, NULL) != NDL_OK)
            _exit(7);
    }
}

/* The payload indexes answer as the model: counts of {"b":{"$gte":x}} and
 * {"m":{"$exists":true}}, and a filtered search holding exactly
 * min(k, matching) points, all matching. */
static int filters_match(ndl_collection *c, const model *m, char *why, size_t whylen)
{
    const char *bounds[] = {"0", "5", "20", "60", "200", "1000"};
    for (size_t t = 0; t <= sizeof bounds / sizeof *bounds; t++) {
        char json[64];
        unsigned x = t < sizeof bounds / sizeof *bounds ? (unsigned)atoi(bounds[t]) : 0;
        if (t < sizeof bounds / sizeof *bounds)
            snprintf(json, sizeof json, "{\"b\":{\"$gte\":%u}}", x);
        else
            snprintf(json, sizeof json, "{\"m\":{\"$exists\":true}}");
        uint64_t want = 0;
        for (int i = 0; i < IDS; i++) {
            unsigned b = 0;
            if (!m->present[i])
                continue;
            if (t < sizeof bounds / sizeof *bounds)
                want += sscanf(m->payload[i], "{\"b\":%u", &b) == 1 && b >= x;
            else
                want += strstr(m->payload[i], ",\"m\":") != NULL;
        }
        ndl_filter *f;
        uint64_t got = 0;
        if (ndl_filter_parse(json, strlen(json), &f, NULL) != NDL_OK ||
            ndl_collection_count_where(c, f, &got, NULL) != NDL_OK) {
            snprintf(why, whylen, "filter %s failed", json);
            return 0;
        }
        ndl_search_params p;
        ndl_search_params_init(&p);
        p.k = 5;
        p.where = f;
        ndl_results *r = NULL;
        float q[DIM] = {0};
        ndl_status st = ndl_collection_search(c, q, &p, &r, NULL);
        size_t n = st == NDL_OK ? ndl_results_count(r, 0) : 0;
        int all_match = st == NDL_OK;
        for (size_t i = 0; all_match && i < n; i++) {
            uint64_t id = ndl_results_hits(r, 0)[i].id.num;
            unsigned b = 0;
            all_match = id < IDS && m->present[id] &&
                        (t < sizeof bounds / sizeof *bounds
                             ? sscanf(m->payload[id], "{\"b\":%u", &b) == 1 && b >= x
                             : strstr(m->payload[id], ",\"m\":") != NULL);
        }
        ndl_results_free(r);
        ndl_filter_free(f);
        if (got != want || n != (want < 5 ? want : 5) || !all_match) {
            snprintf(why, whylen, "filter %s: count %llu (model %llu), search %zu results%s", json,
                     (unsigned long long)got, (unsigned long long)want, n,
                     all_match ? "" : " not all matching");
            return 0;
        }
    }
    return 1;
}

/* Does the collection hold exactly model m? Checks count, every id, the
 * payload indexes and an exact search against brute force. */
static int matches(ndl_collection *c, const model *m, char *why, size_t whylen)
{
    uint64_t live = 0;
    for (int i = 0; i < IDS; i++)
        live += (uint64_t)m->present[i];
    if (ndl_collection_count(c) != live) {
        snprintf(why, whylen, "count %llu, model %llu",
                 (unsigned long long)ndl_collection_count(c), (unsigned long long)live);
        return 0;
    }
    for (int i = 0; i < IDS; i++) {
        float v[DIM];
        char *payload = NULL;
        ndl_status st = ndl_collection_get_point(c, ndl_id_u64((uint64_t)i), v, &payload, NULL);
        int same_payload = st != NDL_OK || (payload && strcmp(payload, m->payload[i]) == 0);
        if (!same_payload)
            snprintf(why, whylen, "id %d has payload %s, model %s", i, payload ? payload : "none",
                     m->payload[i]);
        ndl_free(payload);
        if (!same_payload)
            return 0;
        if ((st == NDL_OK) != (m->present[i] != 0)) {
            snprintf(why, whylen, "id %d present=%d, model %d", i, st == NDL_OK, m->present[i]);
            return 0;
        }
        if (st == NDL_OK && memcmp(v, m->vec[i], sizeof v) != 0) {
            snprintf(why, whylen, "id %d has another vector", i);
            return 0;
        }
    }
    ndl_error e;
    if (ndl_collection_check(c, &e) != NDL_OK) {
        snprintf(why, whylen, "check: %.140s", e.msg);
        return 0;
    }
    if (!filters_match(c, m, why, whylen))
        return 0;
    /* nearest live id to a stored vector is that id (distance 0), via HNSW */
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = 1;
    for (int i = 0; i < IDS; i += 37) {
        if (!m->present[i])
            continue;
        ndl_results *r;
        if (ndl_collection_search(c, m->vec[i], &p, &r, NULL) != NDL_OK)
            return 0;
        int ok = ndl_results_count(r, 0) == 1 && ndl_results_hits(r, 0)[0].distance == 0.0f;
        ndl_results_free(r);
        if (!ok) {
            snprintf(why, whylen, "search for id %d's vector did not find it", i);
            return 0;
        }
    }
    return 1;
}

/* Point dbdir at an empty /tmp/needle-crash-<tag><pid>, put the command
 * that removes it in rm; returns the cycles to run (NEEDLE_CRASH_CYCLES,
 * default 200, divided by div). */
static int start_loop(const char *tag, int div, char *rm, size_t rmlen)
{
    const char *env = getenv("NEEDLE_CRASH_CYCLES");
    snprintf(dbdir, sizeof dbdir, "/tmp/needle-crash-%s%d", tag, (int)getpid());
    snprintf(rm, rmlen, "rm -rf %s", dbdir);
    assert_int_equal(system(rm), 0);
    return (env ? atoi(env) : 200) / div;
}

/* Fork fn(first, pipe) and kill -9 it after 0..80 ms (sometimes before it
 * finished recovering); returns the last step it acknowledged (first - 1
 * if none). */
static uint32_t run_and_kill(void (*fn)(uint32_t, int), uint32_t first, int cycle)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        fn(first, fds[1]);
    }
    close(fds[1]);
    struct timespec ts = {0, (long)(rand() % 80000) * 1000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status))
        fail_msg("cycle %d: child exited with %d before the kill", cycle, WEXITSTATUS(status));
    uint32_t acked = first - 1, s;
    while (read(fds[0], &s, sizeof s) == sizeof s)
        acked = s;
    close(fds[0]);
    return acked;
}

static void test_kill9_loop(void **state)
{
    (void)state;
    char cmd[300];
    int cycles = start_loop("", 1, cmd, sizeof cmd);
    ndl_error e;
    ndl_db *db = open_db(&e);
    assert_non_null(db);
    ndl_collection_config cfg;
    ndl_collection_config_init(&cfg);
    cfg.dimension = DIM;
    cfg.hnsw_m = 8;
    cfg.hnsw_ef_construction = 32;
    ndl_collection *c;
    assert_int_equal(ndl_collection_create(db, "c", &cfg, &c, &e), NDL_OK);
    /* payload indexes: rebuilt after every recovery, checked by matches() */
    assert_int_equal(ndl_collection_add_field(c, "b", NDL_FIELD_INT, &e), NDL_OK);
    assert_int_equal(ndl_collection_add_field(c, "m", NDL_FIELD_INT, &e), NDL_OK);
    assert_int_equal(ndl_collection_close(c, &e), NDL_OK);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);

    srand((unsigned)time(NULL));
    uint32_t done = 0; /* batches the database holds */
    int in_flight_seen = 0, killed_before_any = 0;
    static model m;
    for (int cycle = 0; cycle < cycles; cycle++) {
        uint32_t acked = run_and_kill(child, done + 1, cycle);
        if (acked == done)
            killed_before_any++;

        db = open_db(&e);
        if (!db)
            fail_msg("cycle %d: reopen failed: %s", cycle, e.msg);
        ndl_collection *c;
        if (ndl_collection_open(db, "c", &c, &e) != NDL_OK)
            fail_msg("cycle %d: open failed: %s", cycle, e.msg);
        char why[160] = "", why2[160] = "";
        model_at(&m, acked);
        if (matches(c, &m, why, sizeof why)) {
            done = acked;
        } else {
            model_at(&m, acked + 1); /* the unacknowledged batch, whole */
            if (!matches(c, &m, why2, sizeof why2))
                fail_msg("cycle %d: state is neither %u batches (%s) nor %u (%s)", cycle, acked,
                         why, acked + 1, why2);
            done = acked + 1;
            in_flight_seen++;
        }
        /* close without writing: the next child recovers from the same files */
        assert_int_equal(ndl_collection_close(c, &e), NDL_OK);
        assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    }
    print_message("  %d cycles, %u batches acknowledged, %d with the in-flight batch applied, "
                  "%d killed before their first batch\n",
                  cycles, done, in_flight_seen, killed_before_any);
    assert_true(done > 0);
    assert_int_equal(system(cmd), 0);
}

/* ---------------------------------------------------------------- catalog */

/* Op k (1-based) of the catalog loop: odd k creates "s<k>", even k >= 4
 * drops "s<k-3>" (k = 2 does nothing). After k ops, s<j> exists iff j is
 * odd, j <= k and j + 3 > k. */
static int side_exists(uint32_t j, uint32_t k)
{
    return (j & 1) && j <= k && j + 3 > k;
}

static void side_name(uint32_t j, char *buf, size_t len)
{
    snprintf(buf, len, "s%u", j);
}

static int side_op(ndl_db *db, uint32_t k)
{
    char name[16];
    if (k & 1) {
        ndl_collection_config cfg;
        ndl_collection_config_init(&cfg);
        cfg.dimension = DIM;
        side_name(k, name, sizeof name);
        return ndl_collection_create(db, name, &cfg, NULL, NULL) == NDL_OK ? 0 : -1;
    }
    if (k < 4)
        return 0;
    side_name(k - 3, name, sizeof name);
    return ndl_collection_drop(db, name, NULL) == NDL_OK ? 0 : -1;
}

static void side_child(uint32_t first, int fd)
{
    ndl_error e;
    ndl_db *db = open_db(&e);
    if (!db)
        _exit(3);
    for (uint32_t k = first;; k++) {
        if (side_op(db, k) != 0)
            _exit(5);
        if (write(fd, &k, sizeof k) != sizeof k)
            _exit(6);
    }
}

/* Does the database hold exactly the side collections of k ops, each
 * whole (it opens), and no .new-/.dropped- leftover? */
static int side_matches(ndl_db *db, uint32_t k, char *why, size_t whylen)
{
    char **names;
    size_t n, want = 0;
    if (ndl_collection_list(db, &names, &n, NULL) != NDL_OK)
        return 0;
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        unsigned j;
        ndl_collection *c;
        if (sscanf(names[i], "s%u", &j) != 1 || !side_exists(j, k)) {
            snprintf(why, whylen, "'%.100s' exists", names[i]);
            ok = 0;
        } else if (ndl_collection_open(db, names[i], &c, NULL) != NDL_OK) {
            snprintf(why, whylen, "'%.100s' does not open", names[i]);
            ok = 0;
        } else {
            ndl_collection_close(c, NULL);
        }
    }
    for (uint32_t j = 1; j <= k; j++)
        want += (size_t)side_exists(j, k);
    if (ok && n != want) {
        snprintf(why, whylen, "%zu collections, %zu expected", n, want);
        ok = 0;
    }
    ndl_free(names);
    DIR *d = opendir(dbdir);
    struct dirent *de;
    while (ok && d && (de = readdir(d)))
        if (!strncmp(de->d_name, ".new-", 5) || !strncmp(de->d_name, ".dropped-", 9)) {
            snprintf(why, whylen, "leftover '%.100s'", de->d_name);
            ok = 0;
        }
    if (d)
        closedir(d);
    return ok;
}

static void test_kill9_catalog_loop(void **state)
{
    (void)state;
    char cmd[300];
    int cycles = start_loop("cat-", 2, cmd, sizeof cmd);
    ndl_error e;
    ndl_db *db = open_db(&e);
    assert_non_null(db);
    assert_int_equal(ndl_db_close(db, &e), NDL_OK);

    uint32_t done = 0; /* ops the database holds */
    int in_flight_seen = 0;
    for (int cycle = 0; cycle < cycles; cycle++) {
        uint32_t acked = run_and_kill(side_child, done + 1, cycle);
        db = open_db(&e);
        if (!db)
            fail_msg("cycle %d: reopen failed: %s", cycle, e.msg);
        char why[160] = "", why2[160] = "";
        if (side_matches(db, acked, why, sizeof why)) {
            done = acked;
        } else if (side_matches(db, acked + 1, why2, sizeof why2)) {
            done = acked + 1; /* the op in flight, whole */
            in_flight_seen++;
        } else {
            fail_msg("cycle %d: state is neither %u ops (%s) nor %u (%s)", cycle, acked, why,
                     acked + 1, why2);
        }
        assert_int_equal(ndl_db_close(db, &e), NDL_OK);
    }
    print_message("  %d cycles, %u creates/drops acknowledged, %d with the in-flight one applied\n",
                  cycles, done, in_flight_seen);
    assert_true(done > 0);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_loop),
        cmocka_unit_test(test_kill9_catalog_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
