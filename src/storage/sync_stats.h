/*
 * sync_stats.h -- process-wide histogram of write-ahead log fdatasync
 * durations (the group commit's syncs), read by ndl_fsync_stats_get for
 * the server's /metrics. Lock-free: relaxed atomic counters.
 */
#ifndef NDL_STORAGE_SYNC_STATS_H
#define NDL_STORAGE_SYNC_STATS_H

void sync_stats_record(double seconds);

#endif
