#!/bin/sh
# ingest_grid.sh -- the write-path ingest grid of docs/BENCHMARKS.md:
# d in {128, 784} x batch in {1, 1000} x writers in {1, 8} x fsync in
# {always, batch, none}, ROUNDS rounds. Each round runs every cell once; the
# three fsync modes of one (d, batch, writers) run back to back, in an order
# that rotates from round to round, so load on the machine hits them alike.
# Each run upserts fresh random vectors into an HNSW collection (m=16,
# ef_construction=200, THREADS index threads per call) that already holds
# BASE_N random vectors (built once per d, copied for each run, so every
# cell inserts at about the same graph size: an insert into a graph of a
# few thousand nodes is much cheaper than into one of 20,000, and cells
# that start empty and run for a fixed time would compare different sizes),
# for SECONDS_PER_RUN seconds or until MAX_VECTORS are handed out, whichever
# comes first (a batch under way then finishes, so 8 writers x 1000 x d=784
# runs longer). Before each group of three runs it waits up to QUIET
# seconds for other processes to use under a quarter of the CPUs and
# records the busy fraction it saw ("busy_before").
#
#   bench/ingest_grid.sh [ingest_bench binary] [raw output file]
#
# Prints a markdown table (per cell: median vectors/s over the rounds, with
# min-max, and always/none with its per-round values), the ratio target
# (8 writers: fsync always >= 0.5 x fsync none), then one JSON line per cell
# ("ingest_cell"). The raw file gets one JSON line per run.
#
# Environment: ROUNDS (3), SECONDS_PER_RUN (3), MAX_VECTORS (20000),
# BASE_N (20000; 0 = start from an empty collection), QUIET (30),
# THREADS (1), DIMS ("128 784"), BATCHES ("1 1000"), WRITERS ("1 8"),
# FSYNCS ("always batch none"), DIR (/var/tmp/needle-ingest-grid, the
# scratch database, removed by each run: put it on the disk you want to
# measure, not tmpfs), PY (/usr/bin/python3, for the table), TABLE_ONLY=1
# (only print the table of an existing raw file).
# With the defaults the grid takes about 8 minutes on 2 cores (the two
# bases included), more while it waits for a quiet machine.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/build-rel/bench/ingest_bench}
RAW=${2:-ingest_grid.jsonl}
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-3}
MAXV=${MAX_VECTORS:-20000}
BASE_N=${BASE_N:-20000}
QUIET=${QUIET:-30}
THREADS=${THREADS:-1}
DIMS=${DIMS:-"128 784"}
BATCHES=${BATCHES:-"1 1000"}
WRITERS=${WRITERS:-"1 8"}
FSYNCS=${FSYNCS:-"always batch none"}
DIR=${DIR:-/var/tmp/needle-ingest-grid}
PY=${PY:-/usr/bin/python3}
# needle links OpenBLAS; keep its thread pool from competing for the 2 cores
export OPENBLAS_NUM_THREADS=1

if [ "${TABLE_ONLY:-0}" != 1 ]; then
mkdir -p "$DIR"
FS=$(df -T "$DIR" | awk 'NR==2 {print $2}')
echo "scratch: $DIR on $FS" >&2
rm -rf "$DIR"
: > "$RAW"
start=$(date +%s)

. "$ROOT/bench/quiet.sh"

# one prebuilt collection of BASE_N vectors per dimension (2 index threads)
if [ "$BASE_N" -gt 0 ]; then
    for d in $DIMS; do
        "$BIN" build --dim "$d" --n "$BASE_N" --threads 2 --fsync none --dir "$DIR-base-$d" \
            2>/dev/null | sed "s/^{/{\"fs\":\"$FS\",/" >> "$RAW"
        echo "base for d=$d: $(tail -1 "$RAW")" >&2
    done
fi
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
                wait_quiet
                for f in $order; do
                    reuse=0
                    if [ "$BASE_N" -gt 0 ]; then
                        rm -rf "$DIR"
                        cp -a "$DIR-base-$d" "$DIR"
                        sync # the copy's writeback must not overlap the run
                        reuse=1
                    fi
                    line=$("$BIN" ingest --dim "$d" --batch "$b" --writers "$w" --fsync "$f" \
                        --seconds "$SECS" --max-vectors "$MAXV" --threads "$THREADS" \
                        --reuse "$reuse" --dir "$DIR")
                    echo "$line" | sed "s/^{/{\"round\":$r,\"fs\":\"$FS\",\"busy_before\":$busy,/" >> "$RAW"
                    echo "round $r: $line" >&2
                done
            done
        done
    done
    r=$((r + 1))
done
rm -rf "$DIR"
for d in $DIMS; do rm -rf "$DIR-base-$d"; done
echo "grid took $(( $(date +%s) - start )) s; runs in $RAW" >&2
fi

"$PY" - "$RAW" <<'EOF'
import json, statistics, sys
rows = [x for x in (json.loads(l) for l in open(sys.argv[1]) if l.strip())
        if x["bench"] == "ingest"]
cells = {}
for x in rows:
    cells.setdefault((x["dim"], x["batch"], x["writers"], x["fsync"]), []).append(x)
med = statistics.median
modes = ["always", "batch", "none"]
def fmt(v):
    return f"{v:,.0f}"
def rate(key):
    xs = [x["vectors_per_s"] for x in cells.get(key, [])]
    if not xs:
        return "–"
    return f"**{fmt(med(xs))}** ({fmt(min(xs))}–{fmt(max(xs))})" if len(xs) > 1 else fmt(xs[0])
def ratios(d, b, w):
    a = {x["round"]: x["vectors_per_s"] for x in cells.get((d, b, w, "always"), [])}
    n = {x["round"]: x["vectors_per_s"] for x in cells.get((d, b, w, "none"), [])}
    return [a[r] / n[r] for r in sorted(a) if r in n and n[r] > 0]
groups = sorted({k[:3] for k in cells})
base = sorted({x["count_before"] for x in rows})
busy = [x["busy_before"] for x in rows]
print(f"vectors/s, median over rounds (min–max); {len(rows)} runs on {rows[0]['fs']}, "
      f"collections holding {', '.join(map(str, base))} vectors before each run; "
      f"CPUs busy before a group: median {statistics.median(busy):.2f}, max {max(busy):.2f}")
print()
print("| d | batch | writers | fsync always | fsync batch | fsync none | always / none (per round) |")
print("|--:|--:|--:|--:|--:|--:|--:|")
summary = []
for d, b, w in groups:
    rs = ratios(d, b, w)
    rtxt = f"**{med(rs):.2f}** ({' / '.join(f'{q:.2f}' for q in rs)})" if rs else "–"
    print(f"| {d} | {b} | {w} | " + " | ".join(rate((d, b, w, m)) for m in modes) + f" | {rtxt} |")
    for m in modes:
        xs = cells.get((d, b, w, m), [])
        if xs:
            v = [x["vectors_per_s"] for x in xs]
            summary.append({"bench": "ingest_cell", "dim": d, "batch": b, "writers": w,
                            "fsync": m, "runs": len(v), "median_vectors_per_s": round(med(v), 1),
                            "min": round(min(v), 1), "max": round(max(v), 1),
                            "vectors_per_run": [x["vectors"] for x in xs],
                            "always_over_none": round(med(rs), 3) if rs else None})
print()
print("Target: with 8 writers, fsync always >= 0.5 x fsync none")
print()
for d, b, w in groups:
    rs = ratios(d, b, w)
    if w == 8 and rs:
        print(f"- d={d}, batch {b}: {med(rs):.2f} -> {'met' if med(rs) >= 0.5 else 'MISSED'}")
print()
for s in summary:
    print(json.dumps(s))
EOF
