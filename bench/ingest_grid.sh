#!/bin/sh
# ingest_grid.sh -- the write-path ingest grid of docs/BENCHMARKS.md:
# d in {128, 784} x batch in {1, 1000} x writers in {1, 8} x fsync in
# {always, batch, none}, ROUNDS rounds (each round runs every cell once; the
# order of the fsync modes rotates from round to round), then a markdown
# table of vectors/s (min–max over rounds, median) and the always/none ratio
# with 8 writers, per round.
#
#   bench/ingest_grid.sh [ingest_bench binary] [raw output file]
#
# Environment: ROUNDS (3), SECONDS_PER_RUN (3), DIMS ("128 784"),
# BATCHES ("1 1000"), WRITERS ("1 8"), FSYNCS ("always batch none"),
# DIR (/tmp/needle-ingest-grid, the scratch database, removed by each run).
# Needs python3 for the table.
set -eu
BIN=${1:-build/bench/ingest_bench}
RAW=${2:-ingest_grid.jsonl}
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-3}
DIMS=${DIMS:-"128 784"}
BATCHES=${BATCHES:-"1 1000"}
WRITERS=${WRITERS:-"1 8"}
FSYNCS=${FSYNCS:-"always batch none"}
DIR=${DIR:-/tmp/needle-ingest-grid}

: > "$RAW"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    # rotate the fsync order so no mode always runs first
    order=$FSYNCS
    i=1
    while [ "$i" -lt "$r" ]; do
        set -- $order
        first=$1
        shift
        order="$* $first"
        i=$((i + 1))
    done
    for d in $DIMS; do
        for b in $BATCHES; do
            for w in $WRITERS; do
                for f in $order; do
                    line=$("$BIN" ingest --dim "$d" --batch "$b" --writers "$w" --fsync "$f" \
                        --seconds "$SECS" --dir "$DIR")
                    echo "$line" | sed "s/^{/{\"round\":$r,/" >> "$RAW"
                    echo "round $r: $line" >&2
                done
            done
        done
    done
    r=$((r + 1))
done
rm -rf "$DIR"

python3 - "$RAW" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cells = {}
for x in rows:
    cells.setdefault((x["dim"], x["batch"], x["writers"], x["fsync"]), []).append(x)
def fmt(v):
    return f"{v:,.0f}"
print("| d | batch | writers | fsync | vectors/s (min–max) | median | vectors per run |")
print("|--:|--:|--:|---|--:|--:|--:|")
for key in sorted(cells, key=lambda k: (k[0], k[1], k[2], ["always", "batch", "none"].index(k[3]))):
    rs = [x["vectors_per_s"] for x in cells[key]]
    ns = [x["vectors"] for x in cells[key]]
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {fmt(min(rs))}–{fmt(max(rs))} "
          f"| {fmt(statistics.median(rs))} | {min(ns):,}–{max(ns):,} |")
print()
print("| d | batch | writers | always / none, per round | median |")
print("|--:|--:|--:|---|--:|")
for d in sorted({k[0] for k in cells}):
    for b in sorted({k[1] for k in cells}):
        for w in sorted({k[2] for k in cells}):
            a = {x["round"]: x["vectors_per_s"] for x in cells.get((d, b, w, "always"), [])}
            n = {x["round"]: x["vectors_per_s"] for x in cells.get((d, b, w, "none"), [])}
            ratios = [a[r] / n[r] for r in sorted(a) if r in n and n[r] > 0]
            if ratios:
                print(f"| {d} | {b} | {w} | {' / '.join(f'{q:.2f}' for q in ratios)} "
                      f"| {statistics.median(ratios):.2f} |")
EOF
