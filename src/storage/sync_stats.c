/*
 * sync_stats.c -- see sync_stats.h.
 */
#include "storage/sync_stats.h"

#include <stdatomic.h>

#include "needle.h"

static const double bounds[NDL_FSYNC_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                 0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
static _Atomic uint64_t counts[NDL_FSYNC_BUCKETS + 1]; /* per bucket, the last: above all */
static _Atomic uint64_t total_ns;

void sync_stats_record(double seconds)
{
    size_t i = 0;
    while (i < NDL_FSYNC_BUCKETS && seconds > bounds[i])
        i++;
    atomic_fetch_add_explicit(&counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&total_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
}

NDL_API void ndl_fsync_stats_get(ndl_fsync_stats *out)
{
    uint64_t run = 0;
    for (size_t i = 0; i < NDL_FSYNC_BUCKETS; i++) {
        run += atomic_load_explicit(&counts[i], memory_order_relaxed);
        out->le[i] = bounds[i];
        out->bucket[i] = run;
    }
    out->count = run + atomic_load_explicit(&counts[NDL_FSYNC_BUCKETS], memory_order_relaxed);
    out->sum_seconds = (double)atomic_load_explicit(&total_ns, memory_order_relaxed) * 1e-9;
}
