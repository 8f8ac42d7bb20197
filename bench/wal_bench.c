/*
 * wal_bench.c -- appends per second of the write-ahead log (src/storage/wal.h)
 * for 1 and 8 threads, each sync mode, 512-byte and 4 KiB records. Every
 * thread loops append + commit, as a writer acknowledging each record does.
 *
 * Build (after `make build`):
 *   cc -O2 -D_GNU_SOURCE -Isrc -Iinclude bench/wal_bench.c build/libneedle.a \
 *      -lopenblas -ljansson -lroaring -lpthread -lm -o build/wal_bench
 * Run:  build/wal_bench [DIR [SECONDS]]   (DIR: where the logs go, default /tmp;
 *       put it on the disk you care about -- fdatasync cost is the point)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#include "storage/io.h"
#include "storage/wal.h"

typedef struct worker {
    wal *w;
    size_t len;
    double seconds;
    unsigned long count;
    int failed;
} worker;

static void *worker_main(void *p)
{
    worker *k = p;
    unsigned char *buf = malloc(k->len);
    if (!buf) {
        k->failed = 1;
        return NULL;
    }
    memset(buf, 0xa5, k->len);
    double stop = bench_now() + k->seconds;
    while (bench_now() < stop) {
        for (int i = 0; i < 16; i++) { /* check the clock every 16 appends */
            uint64_t lsn;
            ndl_error err;
            if (wal_append(k->w, 1, buf, k->len, &lsn, &err) != NDL_OK ||
                wal_commit(k->w, lsn, &err) != NDL_OK) {
                fprintf(stderr, "wal_bench: %s\n", err.msg);
                k->failed = 1;
                free(buf);
                return NULL;
            }
            k->count++;
        }
    }
    free(buf);
    return NULL;
}

static void rm_log(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "wal_bench: cannot remove %s\n", dir);
}

static int run(const char *base, wal_sync sync, int threads, size_t len, double seconds)
{
    static const char *names[] = {"always", "batch", "none"};
    char dir[512];
    snprintf(dir, sizeof dir, "%s/wal_bench_%d", base, (int)getpid());
    rm_log(dir);
    wal_options o;
    wal_options_init(&o);
    o.sync = sync;
    wal *w;
    ndl_error err;
    if (wal_open(dir, &o, &w, NULL, &err) != NDL_OK) {
        fprintf(stderr, "wal_bench: %s\n", err.msg);
        return 1;
    }
    worker k[64];
    pthread_t t[64];
    long syncs0 = io_calls(IO_OP_FSYNC);
    double t0 = bench_now();
    for (int i = 0; i < threads; i++) {
        k[i] = (worker){.w = w, .len = len, .seconds = seconds};
        pthread_create(&t[i], NULL, worker_main, &k[i]);
    }
    unsigned long total = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += k[i].count;
        failed |= k[i].failed;
    }
    double dt = bench_now() - t0;
    long syncs = io_calls(IO_OP_FSYNC) - syncs0;
    uint64_t bytes = wal_bytes(w);
    wal_close(w, NULL);
    rm_log(dir);
    if (failed)
        return 1;
    printf("%-7s %2d thread%s %5zu B  %10.0f appends/s  %8.1f MB/s  %8ld fdatasyncs  "
           "(%.1f commits/sync)\n",
           names[sync], threads, threads == 1 ? " " : "s", len, (double)total / dt,
           (double)bytes / dt / 1e6, syncs, syncs ? (double)total / (double)syncs : 0.0);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp";
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    static const wal_sync modes[] = {WAL_SYNC_ALWAYS, WAL_SYNC_BATCH, WAL_SYNC_NONE};
    static const int threads[] = {1, 8};
    static const size_t lens[] = {512, 4096};
    for (size_t m = 0; m < 3; m++)
        for (size_t t = 0; t < 2; t++)
            for (size_t l = 0; l < 2; l++)
                if (run(base, modes[m], threads[t], lens[l], seconds) != 0)
                    return 1;
    return 0;
}
