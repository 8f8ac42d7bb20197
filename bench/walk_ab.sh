#!/bin/sh
# bench/walk_ab.sh -- the HNSW search walk of this tree against a baseline
# commit's, beside hnswlib, in alternating rounds on one data set.
#
# usage: bench/walk_ab.sh BASE_COMMIT [ROUNDS]
#
# Builds the baseline (a git worktree in $WORK/base) and this tree (release,
# $ROOT/build), imports the data set once with this tree's needle (m=16,
# ef_construction=200, 2 threads), then per round: the baseline's
# `needle bench` at ef EF three times, this tree's three times, and hnswlib
# (../shared/bench/peers.py, best of 3) -- each round's best QPS per system,
# and at the end the median over rounds and the ratios. Both needles search
# the same collection, so the walk is all that differs (the baseline must
# read this tree's files). The machine is shared: only the same-run ratios
# mean anything.
#
# Environment: SET=wordnet-glosses (or fashion-mnist), EF=512,
# DATA=../shared/data, WORK=/var/tmp/needle-walk-ab, PEERS=peers.py path.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${1:?usage: bench/walk_ab.sh BASE_COMMIT [ROUNDS]}
ROUNDS=${2:-4}
SET=${SET:-wordnet-glosses}
EF=${EF:-512}
DATA=${DATA:-$ROOT/../shared/data}
WORK=${WORK:-/var/tmp/needle-walk-ab}
PEERS=${PEERS:-$ROOT/../shared/bench/peers.py}
PY=/usr/bin/python3
case $SET in
wordnet-glosses) METRIC=cosine EXT=fvecs ;;
fashion-mnist) METRIC=l2 EXT=bvecs ;;
*) echo "walk_ab: unknown SET $SET" >&2; exit 2 ;;
esac
D=$DATA/$SET
export OPENBLAS_NUM_THREADS=1

mkdir -p "$WORK"
rm -rf "$WORK/base" "$WORK/db" "$WORK/runs.txt"
git -C "$ROOT" worktree prune
git -C "$ROOT" worktree add -q --detach "$WORK/base" "$BASE"
trap 'git -C "$ROOT" worktree remove --force "$WORK/base"' EXIT
for tree in "$WORK/base" "$ROOT"; do
    cmake -S "$tree" -B "$tree/build" -DCMAKE_BUILD_TYPE=Release -DNEEDLE_TESTS=OFF >/dev/null
    cmake --build "$tree/build" -j"$(nproc)" >/dev/null
done
"$ROOT/build/needle" import ab "$D/base.$EXT" --metric "$METRIC" --m 16 --ef-construction 200 \
    --threads 2 --data "$WORK/db" >&2

for r in $(seq "$ROUNDS"); do
    for who in base this; do
        bin=$WORK/base/build/needle
        [ "$who" = this ] && bin=$ROOT/build/needle
        "$bin" bench ab --queries "$D/query.$EXT" --truth "$D/groundtruth.ivecs" --k 10 \
            --ef "$EF,$EF,$EF" --data "$WORK/db" --json | sed "s/^/$r $who /"
    done
    $PY "$PEERS" --base "$D/base.$EXT" --queries "$D/query.$EXT" --truth "$D/groundtruth.ivecs" \
        --metric "$METRIC" --systems hnswlib --m 16 --ef-construction 200 --ef "$EF" \
        --build-threads 2 --repeat 3 | sed "s/^/$r hnswlib /"
done | tee "$WORK/runs.txt" | $PY -c '
import collections, json, statistics, sys
best = collections.defaultdict(dict)
for line in sys.stdin:
    r, who, js = line.split(" ", 2)
    o = json.loads(js)
    best[who][r] = max(best[who].get(r, 0), o["qps"])
    if who == "hnswlib":
        print("round %s: " % r + ", ".join("%s %.0f" % (w, best[w][r]) for w in best), flush=True)
med = {w: statistics.median(v.values()) for w, v in best.items()}
print("median QPS: " + ", ".join("%s %.0f" % (w, q) for w, q in med.items()))
print("this/base %.2fx, this/hnswlib %.2fx, base/hnswlib %.2fx" % (
    med["this"] / med["base"], med["this"] / med["hnswlib"], med["base"] / med["hnswlib"]))
'
