#!/bin/sh
# Compaction time, recall and write stalls (bench/compact_bench.c).
# usage: bench/compact_bench.sh [N=50000] [fields]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DNEEDLE_TESTS=OFF >/dev/null
cmake --build "$ROOT/build" -j"$(nproc)" >/dev/null
gcc -O2 -std=gnu11 -I"$ROOT/include" "$ROOT/bench/compact_bench.c" "$ROOT/build/libneedle.a" \
    -lopenblas -ljansson -lroaring -lm -lpthread -o "$ROOT/build/compact_bench"
OPENBLAS_NUM_THREADS=1 "$ROOT/build/compact_bench" "${1:-50000}" ${2:+"$2"}
rm -rf /var/tmp/compact-bench-db
