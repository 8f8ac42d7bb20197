/*
 * ef_tuning.c -- the default search ef of an HNSW collection, learned from
 * its own queries.
 *
 * How much ef a recall needs depends on where the queries lie relative to
 * the data, which only the traffic tells: queries drawn like the stored
 * vectors reach recall@10 0.95 at ef 16-64, while queries of another kind
 * (wordnet-glosses: lemma strings searched against gloss sentences) need
 * ef 512. So every search run with the default ef (ndl_search_params.ef
 * == 0) offers its query to a reservoir sample. Once the sample holds
 * TUNE_MIN queries -- and again when it has doubled or filled, when the
 * collection has grown or shrunk by a fifth, or after TUNE_AGAIN_AFTER more
 * queries -- the database's background thread measures the sample's
 * recall@10 against exact search at rising ef and makes the smallest ef
 * that reaches TUNE_TARGET_RECALL the default: never below
 * NDL_HNSW_EF_DEFAULT (a tuning never makes searches worse than an untuned
 * collection), never above TUNE_EF_MAX.
 */
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "storage/sfile.h"
#include "util/alloc.h"

#define TUNE_SAMPLE 256                 /* queries kept */
#define TUNE_SAMPLE_BYTES (8u << 20)    /* at most this much of them */
#define TUNE_MIN 100                    /* queries before the first tuning */
#define TUNE_AGAIN_AFTER 1000000        /* queries between tunings (drift) */
#define TUNE_K 10

/* The last tuning survives reopen in DATA/<name>/tuning, an sfile of kind
 * "TUNE", version 1: u32 ef, u32 recall in millionths, u32 sample queries,
 * u64 live points at the tuning. The background thread rewrites it after
 * each tuning of a writable database. It is only a head start: a missing or
 * damaged file means the collection learns again from its first queries. */
#define TUNE_FILE "tuning"
#define TUNE_KIND SFILE_KIND('T', 'U', 'N', 'E')
#define TUNE_VERSION 1

static const uint32_t ladder[] = {NDL_HNSW_EF_DEFAULT, 96, 128, 192, 256, 384, 512, 768,
                                  TUNE_EF_MAX};

void tuner_init(ef_tuner *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    t->rng = 0x9e3779b97f4a7c15u;
    atomic_init(&t->ef, NDL_HNSW_EF_DEFAULT);
}

void tuner_destroy(ef_tuner *t)
{
    pthread_mutex_destroy(&t->lock);
    ndl_free(t->sample);
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool tuning_due(const ef_tuner *t, uint64_t live)
{
    uint32_t need = NDL_MIN((uint32_t)TUNE_MIN, t->cap);
    if (t->pending || t->n < need || live == 0)
        return false;
    /* The first, and again as the sample fills: when it has doubled, or
     * has filled (a first tuning from 129..255 queries cannot double). */
    if (!t->queries || (t->n > t->queries && t->n >= NDL_MIN(2 * t->queries, t->cap)))
        return true;
    uint64_t lo = t->live_at - t->live_at / 5, hi = t->live_at + t->live_at / 5;
    return live < lo || live > hi || t->offered - t->offered_at >= TUNE_AGAIN_AFTER;
}

void tuner_offer(ndl_collection *c, const float *queries, size_t nq)
{
    ef_tuner *t = &c->tuner;
    if (pthread_mutex_trylock(&t->lock) != 0)
        return; /* another search is offering: a sample needs no query in particular */
    size_t dim = c->space.dim;
    if (!t->sample) {
        t->cap = (uint32_t)NDL_MAX(1u, NDL_MIN((size_t)TUNE_SAMPLE,
                                                TUNE_SAMPLE_BYTES / (dim * sizeof(float))));
        if (!(t->sample = ndl_malloc((size_t)t->cap * dim * sizeof(float)))) {
            t->cap = 0;
            pthread_mutex_unlock(&t->lock);
            return;
        }
    }
    for (size_t i = 0; i < nq; i++) {
        uint64_t at = t->offered++; /* reservoir sampling (Algorithm R) */
        uint64_t slot = at < t->cap ? at : next_rand(&t->rng) % (at + 1);
        if (slot < t->cap)
            memcpy(t->sample + slot * dim, queries + i * dim, dim * sizeof(float));
        if (t->n < t->cap)
            t->n++;
    }
    bool due = tuning_due(t, atomic_load(&c->live));
    if (due)
        t->pending = true;
    pthread_mutex_unlock(&t->lock);
    if (due)
        db_background_request(c->db);
}

bool tuner_pending(ndl_collection *c)
{
    pthread_mutex_lock(&c->tuner.lock);
    bool p = c->tuner.pending;
    pthread_mutex_unlock(&c->tuner.lock);
    return p;
}

/* recall@TUNE_K of got against truth, both nq lists of slots. */
static double recall_of(const ndl_results *truth, const ndl_results *got, size_t nq)
{
    uint64_t hit = 0, den = 0;
    for (size_t q = 0; q < nq; q++) {
        const ndl_hit *t = ndl_results_hits(truth, q), *g = ndl_results_hits(got, q);
        size_t nt = ndl_results_count(truth, q), ng = ndl_results_count(got, q);
        den += nt;
        for (size_t i = 0; i < ng; i++)
            for (size_t j = 0; j < nt; j++)
                if (g[i].slot == t[j].slot) {
                    hit++;
                    break;
                }
    }
    return den ? (double)hit / (double)den : 1.0;
}

static void tuner_save(ndl_collection *c, uint32_t ef, double recall, uint32_t queries,
                       uint64_t live);

/* Measure recall on a copy of the sample at rising ef and publish the
 * first ef that reaches the target. Runs on the background thread; the
 * searches it makes give an explicit ef, so they are not offered back. */
void tuner_run(ndl_collection *c)
{
    ef_tuner *t = &c->tuner;
    size_t dim = c->space.dim;
    pthread_mutex_lock(&t->lock);
    uint32_t nq = t->n;
    uint64_t offered = t->offered;
    float *qs = nq ? ndl_malloc((size_t)nq * dim * sizeof(float)) : NULL;
    if (qs)
        memcpy(qs, t->sample, (size_t)nq * dim * sizeof(float));
    pthread_mutex_unlock(&t->lock);

    uint64_t live = atomic_load(&c->live);
    uint32_t ef = 0;
    double recall = 0;
    ndl_search_params p;
    ndl_search_params_init(&p);
    p.k = TUNE_K;
    p.exact = 1;
    ndl_results *truth = NULL;
    if (qs && ndl_collection_search_batch(c, nq, qs, &p, &truth, NULL) == NDL_OK) {
        p.exact = 0;
        for (size_t i = 0; i < sizeof ladder / sizeof *ladder; i++) {
            ndl_results *got = NULL;
            p.ef = ladder[i];
            if (ndl_collection_search_batch(c, nq, qs, &p, &got, NULL) != NDL_OK)
                break;
            ef = ladder[i];
            recall = recall_of(truth, got, nq);
            ndl_results_free(got);
            if (recall >= TUNE_TARGET_RECALL)
                break;
        }
    }
    ndl_results_free(truth);
    ndl_free(qs);

    pthread_mutex_lock(&t->lock);
    t->pending = false;
    if (ef) { /* else out of memory or a failing collection: keep what was */
        atomic_store(&t->ef, ef);
        t->recall = (float)recall;
        t->queries = nq;
        t->live_at = live;
        t->offered_at = offered;
    }
    pthread_mutex_unlock(&t->lock);
    if (ef && !c->db->read_only)
        tuner_save(c, ef, recall, nq, live);
}

/* Best effort: a tuning that is not saved is learned again after reopen. */
static void tuner_save(ndl_collection *c, uint32_t ef, double recall, uint32_t queries,
                       uint64_t live)
{
    char *path = db_path_join(c->dir, TUNE_FILE);
    sfile_writer *w = NULL;
    if (path && sfile_create(path, TUNE_KIND, TUNE_VERSION, &w, NULL) == NDL_OK) {
        if (sfile_put_u32(w, ef, NULL) || sfile_put_u32(w, (uint32_t)(recall * 1e6 + 0.5), NULL) ||
            sfile_put_u32(w, queries, NULL) || sfile_put_u64(w, live, NULL))
            sfile_abort(w);
        else
            sfile_commit(w, NULL);
    }
    ndl_free(path);
}

void tuner_load(ndl_collection *c)
{
    ef_tuner *t = &c->tuner;
    char *path = db_path_join(c->dir, TUNE_FILE);
    sfile_map map;
    if (!path || sfile_map_open(path, TUNE_KIND, TUNE_VERSION, 1, &map, NULL) != NDL_OK) {
        ndl_free(path);
        return;
    }
    ndl_free(path);
    sfile_cursor cur;
    sfile_cursor_init(&cur, &map);
    uint32_t ef = sfile_get_u32(&cur), millionths = sfile_get_u32(&cur);
    uint32_t queries = sfile_get_u32(&cur);
    uint64_t live = sfile_get_u64(&cur);
    bool ok = !cur.overrun && ef >= NDL_HNSW_EF_DEFAULT && ef <= TUNE_EF_MAX &&
              millionths <= 1000000 && queries >= 1 && queries <= TUNE_SAMPLE;
    sfile_map_close(&map);
    if (!ok)
        return;
    pthread_mutex_lock(&t->lock);
    atomic_store(&t->ef, ef);
    t->recall = (float)millionths / 1e6f;
    t->queries = queries;
    t->live_at = live;
    pthread_mutex_unlock(&t->lock);
}

void tuner_info(ndl_collection *c, ndl_collection_info *out)
{
    pthread_mutex_lock(&c->tuner.lock);
    out->search_ef = c->ann ? atomic_load(&c->tuner.ef) : 0;
    out->search_ef_recall = c->tuner.queries ? c->tuner.recall : -1.0f;
    out->search_ef_queries = c->tuner.queries;
    pthread_mutex_unlock(&c->tuner.lock);
}
