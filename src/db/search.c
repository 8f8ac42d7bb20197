/*
 * search.c -- the read path: parameter checks, query encoding, the plan
 * (exact scan or HNSW), conversion of internal distances to reported
 * distances and scores (SPEC section 1), and the results object.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "db/vector_codec.h"
#include "util/alloc.h"

struct ndl_results {
    size_t nq;
    size_t *counts;      /* hits per query */
    size_t *offsets;     /* first hit of each query in hits */
    ndl_hit *hits;
    char *strings;       /* copies of string ids */
    char *payloads;      /* with_payload: copies of the hits' payloads, NUL-terminated */
    size_t *payload_at;  /* per hit (indexed like hits): offset in payloads or SIZE_MAX */
    const char *plan;
    uint64_t visited;
    uint32_t ef;
    int filtered;
    uint64_t estimated, matched, checked;
};

static ndl_status check_params(ndl_collection *c, const ndl_search_params *p, uint32_t *ef,
                               ndl_error *err)
{
    if (p->k < NDL_K_MIN || p->k > NDL_K_MAX)
        return ndl_err(err, NDL_INVALID, "k must be between %d and %d (got %u)", NDL_K_MIN,
                       NDL_K_MAX, p->k);
    *ef = p->ef ? p->ef : NDL_MAX(atomic_load(&c->tuner.ef), p->k);
    if (p->ef && p->ef < p->k)
        return ndl_err(err, NDL_INVALID, "ef (%u) must be at least k (%u)", p->ef, p->k);
    if (*ef > NDL_HNSW_EF_MAX)
        return ndl_err(err, NDL_INVALID, "ef must be at most %d (got %u)", NDL_HNSW_EF_MAX, *ef);
    return NDL_OK;
}

/* Reported distance and score from an internal distance. */
static void report(ndl_metric metric, float d, ndl_hit *h)
{
    switch (metric) {
    case NDL_METRIC_L2:
        h->distance = sqrtf(d > 0 ? d : 0);
        h->score = 1.0f / (1.0f + h->distance);
        break;
    case NDL_METRIC_COSINE: /* internal = -cos */
        h->distance = 1.0f + d;
        h->score = -d;
        break;
    case NDL_METRIC_IP: /* internal = -dot */
        h->distance = d;
        h->score = -d;
        break;
    default: /* l1, hamming */
        h->distance = d;
        h->score = 1.0f / (1.0f + d);
    }
}

static ndl_results *results_alloc(size_t nq, size_t k)
{
    ndl_results *r = ndl_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->nq = nq;
    r->counts = ndl_calloc(nq, sizeof *r->counts);
    r->offsets = ndl_calloc(nq, sizeof *r->offsets);
    r->hits = ndl_malloc(nq * k * sizeof *r->hits);
    if (!r->counts || !r->offsets || !r->hits) {
        ndl_results_free(r);
        return NULL;
    }
    for (size_t i = 0; i < nq; i++)
        r->offsets[i] = i * k;
    return r;
}

/* Fill the public hits of query qi from internal hits; string ids are copied
 * afterwards by finish_strings. */
static void fill_hits(ndl_collection *c, ndl_results *r, size_t qi, const index_hit *in,
                      size_t n)
{
    ndl_hit *out = r->hits + r->offsets[qi];
    for (size_t i = 0; i < n; i++) {
        out[i].slot = in[i].slot;
        out[i].id = idmap_slot_to_id(idmap_slot(&c->ids, in[i].slot));
        report(c->cfg.metric, in[i].dist, &out[i]);
    }
    r->counts[qi] = n;
}

/* Copy string ids into the results so they outlive slot reuse. */
static ndl_status finish_strings(ndl_results *r, ndl_error *err)
{
    size_t bytes = 0;
    for (size_t q = 0; q < r->nq; q++)
        for (size_t i = 0; i < r->counts[q]; i++)
            if (r->hits[r->offsets[q] + i].id.str)
                bytes += r->hits[r->offsets[q] + i].id.len + 1;
    if (!bytes)
        return NDL_OK;
    r->strings = ndl_malloc(bytes);
    if (!r->strings)
        return ndl_err(err, NDL_NOMEM, "out of memory for result ids");
    char *s = r->strings;
    for (size_t q = 0; q < r->nq; q++)
        for (size_t i = 0; i < r->counts[q]; i++) {
            ndl_id *id = &r->hits[r->offsets[q] + i].id;
            if (!id->str)
                continue;
            memcpy(s, id->str, id->len);
            s[id->len] = 0;
            id->str = s;
            s += id->len + 1;
        }
    return NDL_OK;
}

/* Copy each hit's payload. Under map_lock, which a payload change takes
 * exclusively, so no text is freed while it is copied; a hit whose slot
 * was replaced meanwhile still has the payload it was found with. */
static ndl_status attach_payloads(ndl_collection *c, ndl_results *r, size_t k, ndl_error *err)
{
    size_t nhits = r->nq * k;
    r->payload_at = ndl_malloc((nhits ? nhits : 1) * sizeof *r->payload_at);
    if (!r->payload_at)
        return ndl_err(err, NDL_NOMEM, "out of memory for result payloads");
    ndl_status rc = NDL_OK;
    pthread_rwlock_rdlock(&c->map_lock);
    size_t bytes = 0;
    for (size_t q = 0; q < r->nq; q++)
        for (size_t i = 0; i < r->counts[q]; i++) {
            const payload_ref *p = payload_store_ref(&c->payloads, r->hits[r->offsets[q] + i].slot);
            bytes += p->text ? p->len + 1 : 0;
        }
    r->payloads = ndl_malloc(bytes ? bytes : 1);
    if (!r->payloads) {
        rc = ndl_err(err, NDL_NOMEM, "out of memory for %zu bytes of result payloads", bytes);
        goto leave;
    }
    size_t at = 0;
    for (size_t q = 0; q < r->nq; q++)
        for (size_t i = 0; i < r->counts[q]; i++) {
            size_t h = r->offsets[q] + i;
            const payload_ref *p = payload_store_ref(&c->payloads, r->hits[h].slot);
            r->payload_at[h] = p->text ? at : SIZE_MAX;
            if (!p->text)
                continue;
            memcpy(r->payloads + at, p->text, p->len);
            r->payloads[at + p->len] = 0;
            at += p->len + 1;
        }
leave:
    pthread_rwlock_unlock(&c->map_lock);
    return rc;
}

/* A search's filters as one index callback: the caller's slot filter,
 * then the payload filter (its candidate bitmap, and the payload when the
 * bitmap is not exact), counting what the payload filter saw (for
 * explain; relaxed atomics, as a batch's threads share it). */
typedef struct filter_gate {
    ndl_collection *c;
    const ndl_search_params *p;
    where_plan w;
    bool in_cand; /* every slot offered is a candidate (the exact plan's
                     scan of them): an exact bitmap needs no look-up */
    _Atomic uint64_t checked, matched;
} filter_gate;

static int gate_allows(void *ctx, uint32_t slot)
{
    filter_gate *g = ctx;
    if (g->p->filter && !g->p->filter(g->p->filter_ctx, slot))
        return 0;
    if (!g->p->where)
        return 1;
    bool ok = g->in_cand && g->w.exact ? true : where_allows(g->c, &g->w, slot);
    atomic_fetch_add_explicit(&g->checked, 1, memory_order_relaxed);
    if (ok)
        atomic_fetch_add_explicit(&g->matched, 1, memory_order_relaxed);
    return ok;
}

/* The plan for a payload filter expected to match `est` of the `live`
 * points, from a cost model measured with bench/filtered.sh (fashion-mnist,
 * 60,000 x 784, m=16; docs/BENCHMARKS.md): a walk that may keep a share s
 * of the points visits about WALK_PER_EF * ef * s^-WALK_EXPONENT nodes
 * (966 at s = 0.5, 2,646 at 0.1, 11,367 at 0.01 for ef = 64), each costing
 * about WALK_COST distances of an exact scan (random access, the heap);
 * the exact scan computes est distances over the candidates. Without
 * candidates (a filter on unindexed fields) each point met costs a payload
 * parse, which dwarfs a distance: the scan parses every live payload, the
 * walk the nodes it visits. */
#define WALK_PER_EF 10.0
#define WALK_EXPONENT 0.63
#define WALK_COST 1.8
static double walk_per_ef = WALK_PER_EF;
static pthread_once_t walk_once = PTHREAD_ONCE_INIT;

/* NEEDLE_FILTER_WALK_PER_EF overrides WALK_PER_EF: bench/filtered.sh uses
 * it to run each plan where the other would be chosen (0: always walk). */
static void walk_read_env(void)
{
    const char *e = getenv("NEEDLE_FILTER_WALK_PER_EF");
    if (e && *e)
        walk_per_ef = atof(e);
}

static bool exact_is_cheaper(uint64_t est, uint32_t ef, uint64_t live, bool candidates)
{
    pthread_once(&walk_once, walk_read_env);
    if (!live || walk_per_ef <= 0)
        return !live;
    double s = (double)NDL_MAX(est, 1u) / (double)live;
    double visits = NDL_MIN((double)live, walk_per_ef * ef * pow(s, -WALK_EXPONENT));
    if (!candidates)
        return (double)live <= visits;
    return (double)est <= visits * WALK_COST;
}

typedef struct search_job {
    ndl_collection *c;
    const ndl_search_params *p;
    index_query q;
    vindex *ix;
    const float *queries;
    size_t nq;
    const uint32_t *slots;   /* exact plan over a filter's candidates, or NULL */
    size_t nslots;
    ndl_results *r;
    _Atomic size_t next;
    _Atomic uint64_t visited;
    _Atomic int failed;
} search_job;

static void *search_worker(void *arg)
{
    search_job *j = arg;
    ndl_collection *c = j->c;
    index_hit *hits = ndl_malloc(j->q.k * sizeof *hits);
    void *enc = ndl_aligned_alloc(64, c->space.vec_bytes);
    uint64_t visited = 0;
    if (!hits || !enc) {
        atomic_store(&j->failed, 1);
        goto leave;
    }
    for (;;) {
        size_t qi = atomic_fetch_add(&j->next, 1);
        if (qi >= j->nq)
            break;
        codec_encode(&c->space, j->queries + qi * c->space.dim, enc);
        index_stats st = {0};
        size_t n = j->slots ? flat_scan_slots(&c->space, &c->vectors, j->slots, j->nslots, enc,
                                              &j->q, hits, &st.visited)
                            : j->ix->m->search(j->ix, enc, &j->q, hits, &st);
        /* The graph walk gives up early only after exhausting every node it
         * can reach; a few nodes may be unreachable (after heavy deletes),
         * so when it found fewer than k, a scan makes the count exact:
         * min(k, matching points). It costs at most what the walk did. */
        if (n < j->q.k && j->ix != c->flat && !j->slots && n < atomic_load(&c->live))
            n = c->flat->m->search(c->flat, enc, &j->q, hits, &st);
        visited += st.visited;
        fill_hits(c, j->r, qi, hits, n);
    }
leave:
    atomic_fetch_add(&j->visited, visited);
    ndl_free(hits);
    ndl_free(enc);
    return NULL;
}

NDL_API ndl_status ndl_collection_search_batch(ndl_collection *c, size_t nq, const float *queries,
                                               const ndl_search_params *p, ndl_results **out,
                                               ndl_error *err)
{
    *out = NULL;
    ndl_search_params defaults;
    if (!p) {
        ndl_search_params_init(&defaults);
        p = &defaults;
    }
    uint32_t ef = 0;
    ndl_status rc = coll_check_intact(c, err);
    if (rc == NDL_OK)
        rc = check_params(c, p, &ef, err);
    if (rc != NDL_OK)
        return rc;
    if (nq && !queries)
        return ndl_err(err, NDL_INVALID, "queries are missing");
    for (size_t i = 0; i < nq; i++)
        if ((rc = codec_check(&c->space, queries + i * c->space.dim, "query", i, err)) != NDL_OK)
            return rc;
    ndl_results *r = results_alloc(nq, p->k);
    if (!r)
        return ndl_err(err, NDL_NOMEM, "out of memory for %zu x %u results", nq, p->k);
    pthread_rwlock_rdlock(&c->swap_lock); /* structures stay put (compaction) */

    filter_gate gate = {.c = c, .p = p};
    uint64_t checked = 0;
    bool exact = p->exact || !c->ann;
    uint32_t *cand_slots = NULL; /* the exact plan's candidates, ascending */
    size_t ncand = 0;
    if (p->where) {
        r->filtered = 1;
        where_prepare(c, p->where, &gate.w);
        r->estimated = where_estimate(c, &gate.w, &checked);
        if (!exact)
            exact = exact_is_cheaper(r->estimated, ef, atomic_load(&c->live), gate.w.cand != NULL);
        if (exact && gate.w.cand) {
            ncand = roaring_bitmap_get_cardinality(gate.w.cand);
            if ((cand_slots = ndl_malloc((ncand ? ncand : 1) * sizeof *cand_slots))) {
                roaring_bitmap_to_uint32_array(gate.w.cand, cand_slots);
                gate.in_cand = true;
            } else {
                ncand = 0; /* out of memory: the full scan, checking each slot */
            }
        }
    }
    index_query q = {.k = p->k, .ef = ef, .deleted = &c->hidden, .allow = p->filter,
                     .allow_ctx = p->filter_ctx};
    if (p->where) {
        q.allow = gate_allows;
        q.allow_ctx = &gate;
    }
    uint32_t threads = NDL_MAX(1u, NDL_MIN(p->threads, 256u));
    r->plan = exact ? "exact" : "hnsw";
    r->ef = exact ? 0 : ef;

    if (exact && nq > 1 && c->space.metric != NDL_METRIC_HAMMING && !cand_slots) {
        /* many exact queries: BLAS on encoded queries */
        size_t vb = c->space.vec_bytes;
        char *enc = ndl_malloc(nq * vb);
        index_hit *hits = ndl_malloc(nq * p->k * sizeof *hits);
        size_t *counts = ndl_malloc(nq * sizeof *counts);
        if (!enc || !hits || !counts) {
            rc = ndl_err(err, NDL_NOMEM, "out of memory for a batch of %zu queries", nq);
        } else {
            for (size_t i = 0; i < nq; i++)
                codec_encode(&c->space, queries + i * c->space.dim, enc + i * vb);
            rc = flat_search_batch(&c->space, &c->vectors, nq, enc, &q, threads, hits, counts, err);
            for (size_t i = 0; rc == NDL_OK && i < nq; i++)
                fill_hits(c, r, i, hits + i * p->k, counts[i]);
        }
        ndl_free(enc);
        ndl_free(hits);
        ndl_free(counts);
    } else {
        search_job j = {.c = c, .p = p, .q = q, .ix = exact ? c->flat : c->ann,
                        .queries = queries, .nq = nq, .r = r, .slots = cand_slots,
                        .nslots = ncand};
        if (threads > nq)
            threads = (uint32_t)NDL_MAX(nq, 1u);
        pthread_t tid[256];
        uint32_t started = 0;
        for (uint32_t t = 1; t < threads; t++)
            if (pthread_create(&tid[started], NULL, search_worker, &j) == 0)
                started++;
        search_worker(&j);
        for (uint32_t t = 0; t < started; t++)
            pthread_join(tid[t], NULL);
        if (j.failed)
            rc = ndl_err(err, NDL_NOMEM, "out of memory during search");
        r->visited = exact ? 0 : atomic_load(&j.visited);
    }
    ndl_free(cand_slots);
    if (p->where)
        where_release(&gate.w);
    r->checked = checked + atomic_load(&gate.checked);
    r->matched = atomic_load(&gate.matched);
    if (rc == NDL_OK)
        rc = finish_strings(r, err);
    if (rc == NDL_OK && p->with_payload)
        rc = attach_payloads(c, r, p->k, err);
    pthread_rwlock_unlock(&c->swap_lock);
    if (rc != NDL_OK) {
        ndl_results_free(r);
        return rc;
    }
    if (!p->ef && !p->exact && c->ann)
        tuner_offer(c, queries, nq);
    *out = r;
    return NDL_OK;
}

NDL_API ndl_status ndl_collection_search(ndl_collection *c, const float *query,
                                         const ndl_search_params *p, ndl_results **out,
                                         ndl_error *err)
{
    ndl_search_params one;
    if (p) {
        one = *p;
        one.threads = 1;
        p = &one;
    }
    return ndl_collection_search_batch(c, 1, query, p, out, err);
}

NDL_API size_t ndl_results_queries(const ndl_results *r) { return r ? r->nq : 0; }

NDL_API size_t ndl_results_count(const ndl_results *r, size_t query)
{
    return r && query < r->nq ? r->counts[query] : 0;
}

NDL_API const ndl_hit *ndl_results_hits(const ndl_results *r, size_t query)
{
    return r && query < r->nq ? r->hits + r->offsets[query] : NULL;
}

NDL_API const char *ndl_results_plan(const ndl_results *r) { return r ? r->plan : ""; }

NDL_API uint64_t ndl_results_visited(const ndl_results *r) { return r ? r->visited : 0; }

NDL_API void ndl_results_explain(const ndl_results *r, ndl_explain *out)
{
    memset(out, 0, sizeof *out);
    out->plan = r ? r->plan : "";
    if (!r)
        return;
    out->filtered = r->filtered;
    out->estimated = r->estimated;
    out->matched = r->matched;
    out->checked = r->checked;
    out->visited = r->visited;
    out->ef = r->ef;
}

NDL_API const char *ndl_results_payload(const ndl_results *r, size_t query, size_t i)
{
    if (!r || !r->payload_at || query >= r->nq || i >= r->counts[query])
        return NULL;
    size_t at = r->payload_at[r->offsets[query] + i];
    return at == SIZE_MAX ? NULL : r->payloads + at;
}

NDL_API void ndl_results_free(ndl_results *r)
{
    if (!r)
        return;
    ndl_free(r->counts);
    ndl_free(r->offsets);
    ndl_free(r->hits);
    ndl_free(r->strings);
    ndl_free(r->payloads);
    ndl_free(r->payload_at);
    ndl_free(r);
}
