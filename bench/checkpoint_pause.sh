#!/bin/sh
# How long a checkpoint, or a compaction (MODE compact), holds up writers (bench/checkpoint_pause.c).
# usage: bench/checkpoint_pause.sh [N=200000] [DIM=128] [ROUNDS=5] [MODE=checkpoint|compact]
# Builds the release library, then runs on a fresh directory under /var/tmp
# (a real disk, not tmpfs). Prints one JSON line.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DNEEDLE_TESTS=OFF >/dev/null
cmake --build "$ROOT/build" -j"$(nproc)" >/dev/null
BIN="$ROOT/build/checkpoint_pause"
gcc -O2 -std=c11 -Wall -Wextra -I"$ROOT/include" "$ROOT/bench/checkpoint_pause.c" \
    "$ROOT/build/libneedle.a" -lopenblas -ljansson -lroaring -lm -lpthread -o "$BIN"
DIR=/var/tmp/needle-checkpoint-pause
rm -rf "$DIR"
OPENBLAS_NUM_THREADS=1 "$BIN" "$DIR" "${1:-200000}" "${2:-128}" "${3:-5}" "${4:-checkpoint}"
rm -rf "$DIR"
