#!/bin/sh
# bench/run.sh -- needle beside Debian's hnswlib and FAISS, in one run.
#
# Builds libneedle (release) and bench/lib_bench, then for each data set runs,
# in NEEDLE_BENCH_ROUNDS interleaved rounds (odd rounds needle first, even
# rounds the peer first, so slow drift of the machine's load hits both):
#   HNSW  m=16 ef_construction=200, 2 build threads, 1 search thread:
#         needle (bench/lib_bench) vs hnswlib (peers.py), recall@10-QPS curves;
#         hnswlib's memory per vector (bench/peer_memory.py)
#   flat  exact search, 1 thread, the first 1000 queries: one query per call
#         and one call of all 1000 (needle search_batch vs FAISS IndexFlat)
# and finally bench/compare.py, which prints a markdown report (ratios, targets,
# raw curves) and draws the recall-QPS curves as SVG.
#
# Environment (all optional):
#   NEEDLE_BENCH_QUICK=1      smoke test: 5,000-10,000 base vectors, 200 queries,
#                             few ef values, 1 round, 1 repeat; writes no docs/ files
#   NEEDLE_BENCH_DATA=DIR     data sets (default ../shared/data next to the repo)
#   NEEDLE_BENCH_DATASETS="fashion-mnist wordnet-glosses"
#   NEEDLE_BENCH_PEERS=FILE   peers.py (default ../shared/bench/peers.py)
#   NEEDLE_BENCH_ROUNDS=3     interleaved rounds
#   NEEDLE_BENCH_QUIET=45     before each step wait up to this many seconds for
#                             the machine to be quiet (other processes using less
#                             than a quarter of the CPUs over one second); 0 = no wait
#   NEEDLE_BENCH_REPEAT=3     best-of repeats inside each measurement
#   NEEDLE_BENCH_OUT=DIR      results (default build/bench, quick: build/bench-quick); raw JSON lines in
#                             DIR/raw, the report in DIR/report.md
#   NEEDLE_BENCH_SVG_DIR=DIR  where the SVG plots go (default docs, quick: DIR/)
#   NEEDLE_BENCH_LIB=FILE     use this libneedle.a and skip building
#   NEEDLE_BENCH_EF_<set>=... ef list of one data set, e.g. NEEDLE_BENCH_EF_fashion_mnist
#
# Data: the fashion-mnist split is Debian's dataset-fashion-mnist package (the
# ann-benchmarks fashion-mnist-784 split); see docs/BENCHMARKS.md.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
QUICK=${NEEDLE_BENCH_QUICK:-0}
DATA=${NEEDLE_BENCH_DATA:-$ROOT/../shared/data}
PEERS=${NEEDLE_BENCH_PEERS:-$ROOT/../shared/bench/peers.py}
DATASETS=${NEEDLE_BENCH_DATASETS:-fashion-mnist wordnet-glosses}
OUT=${NEEDLE_BENCH_OUT:-$ROOT/build/bench$(if [ "$QUICK" = 1 ]; then echo -quick; fi)}
if [ "$QUICK" = 1 ]; then
    QUIET=${NEEDLE_BENCH_QUIET:-0}
    ROUNDS=${NEEDLE_BENCH_ROUNDS:-1}
    REPEAT=${NEEDLE_BENCH_REPEAT:-1}
    SVG_DIR=${NEEDLE_BENCH_SVG_DIR:-$OUT}
else
    QUIET=${NEEDLE_BENCH_QUIET:-45}
    ROUNDS=${NEEDLE_BENCH_ROUNDS:-3}
    REPEAT=${NEEDLE_BENCH_REPEAT:-3}
    SVG_DIR=${NEEDLE_BENCH_SVG_DIR:-$ROOT/docs}
fi
M=16
EFC=200
BUILD_THREADS=2
FLAT_QUERIES=1000

# one BLAS thread everywhere (needle's batch path and FAISS's)
export OPENBLAS_NUM_THREADS=1

say() { printf '%s\n' "bench: $*" >&2; }

[ -f "$PEERS" ] || { say "peers.py not found at $PEERS (set NEEDLE_BENCH_PEERS)"; exit 1; }
[ -d "$DATA" ] || { say "data directory $DATA not found (set NEEDLE_BENCH_DATA)"; exit 1; }
$PY -c 'import numpy, hnswlib, faiss' 2>/dev/null || {
    say "needs Debian's python3-numpy python3-hnswlib python3-faiss for $PY (make bench-deps)"; exit 1; }

# ---------------------------------------------------------------- build
if [ -n "${NEEDLE_BENCH_LIB:-}" ]; then
    LIB=$NEEDLE_BENCH_LIB
else
    say "building libneedle (make build)"
    make --no-print-directory -C "$ROOT" build >&2
    LIB=$ROOT/build/libneedle.a
fi
mkdir -p "$OUT/raw" "$OUT/data"
BIN=$OUT/lib_bench
say "compiling $BIN"
# shellcheck disable=SC2046
gcc -O2 -std=c11 -Wall -Wextra -I"$ROOT/include" "$ROOT/bench/lib_bench.c" "$LIB" \
    $(pkg-config --libs openblas) -ljansson -lroaring -lpthread -lm -o "$BIN"

rm -f "$OUT"/raw/*.jsonl "$OUT"/raw/*.log "$OUT/failures.txt" "$OUT/quiet.log"
: > "$OUT/failures.txt"

# ---------------------------------------------------------------- meta
{
    printf '{"date":"%s",' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf '"commit":"%s",' "$(git --no-optional-locks -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    printf '"src_diff":"%s",' "$(git --no-optional-locks -C "$ROOT" diff HEAD -- src include 2>/dev/null | sha1sum | cut -c1-12)"
    printf '"cpu":"%s",' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    printf '"cores":%s,' "$(nproc)"
    printf '"loadavg_start":"%s",' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '"hnswlib":"%s",' "$(dpkg-query -W -f '${Version}' python3-hnswlib 2>/dev/null || echo '?')"
    printf '"faiss":"%s",' "$(dpkg-query -W -f '${Version}' python3-faiss 2>/dev/null || echo '?')"
    printf '"openblas":"%s",' "$(pkg-config --modversion openblas 2>/dev/null || echo '?')"
    printf '"quick":%s,"rounds":%s,"repeat":%s,"m":%s,"ef_construction":%s,"build_threads":%s}\n' \
        "$([ "$QUICK" = 1 ] && echo true || echo false)" "$ROUNDS" "$REPEAT" "$M" "$EFC" "$BUILD_THREADS"
} > "$OUT/meta.json"

. "$ROOT/bench/quiet.sh" # cpu_busy, wait_quiet

# quiet_step NAME: wait_quiet (at most $QUIET s, none when 0) until other
# processes use less than a quarter of the CPUs; the busy fraction seen is
# logged to quiet.log.
quiet_step() {
    [ "$QUIET" -gt 0 ] || return 0
    wait_quiet
    printf '%s\tbusy %s\twaited %ss\tload %s\n' "$1" "$busy" "$waited" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/quiet.log"
}

# run NAME CMD...: JSON lines to raw/NAME.jsonl, stderr to raw/NAME.log; a
# failure (crash, error exit) is recorded and the run goes on.
run() {
    name=$1; shift
    quiet_step "$name"
    say "$name"
    if "$@" > "$OUT/raw/$name.jsonl" 2> "$OUT/raw/$name.log"; then
        :
    else
        rc=$?
        say "FAILED ($rc): $name -- see $OUT/raw/$name.log"
        printf '%s\texit %s\t%s\n' "$name" "$rc" "$*" >> "$OUT/failures.txt"
    fi
}

# first_of FILE...: the first of the files that exists (empty if none)
first_of() {
    for f in "$@"; do
        if [ -e "$f" ]; then printf '%s\n' "$f"; return 0; fi
    done
}

# ---------------------------------------------------------------- data sets
for ds in $DATASETS; do
    src=$DATA/$ds
    [ -d "$src" ] || { say "skipping $ds: $src not found"; continue; }
    base=$(first_of "$src"/base.fvecs "$src"/base.bvecs)
    query=$(first_of "$src"/query.fvecs "$src"/query.bvecs)
    truth=$src/groundtruth.ivecs
    if [ -z "$base" ] || [ -z "$query" ]; then say "skipping $ds: no base/query files"; continue; fi
    case $ds in
        wordnet*) metric=cosine
                  ef=64,96,128,192,256,384,512,768,1024,1536,2048,3072,4096,6144
                  qef=16,64,128,256,512,1024 ;;
        *)        metric=l2
                  ef=10,12,16,20,24,32,48,64,96,128
                  qef=10,16,32,64,128 ;;
    esac
    var=NEEDLE_BENCH_EF_$(printf '%s' "$ds" | tr -c 'A-Za-z0-9\n' '_')
    eval "ef=\${$var:-$ef}"
    if [ "$QUICK" = 1 ]; then
        case $ds in wordnet*) nb=10000 ;; *) nb=5000 ;; esac
        nq=200; fq=200; ef=$qef
    else
        nb=0; nq=0; fq=$FLAT_QUERIES
    fi
    tflag=""; [ -f "$truth" ] && tflag="--truth $truth"
    # shellcheck disable=SC2086
    $PY bench/prepare.py --base "$base" --queries "$query" $tflag --metric $metric \
        --n-base $nb --n-queries $nq --out "$OUT/data/$ds/hnsw"
    # shellcheck disable=SC2086
    $PY bench/prepare.py --base "$base" --queries "$query" $tflag --metric $metric \
        --n-base $nb --n-queries $fq --out "$OUT/data/$ds/flat"
    H=$OUT/data/$ds/hnsw; F=$OUT/data/$ds/flat
    hb=$(first_of "$H"/base.fvecs "$H"/base.bvecs); hq=$(first_of "$H"/query.fvecs "$H"/query.bvecs)
    fb=$(first_of "$F"/base.fvecs "$F"/base.bvecs); fqf=$(first_of "$F"/query.fvecs "$F"/query.bvecs)

    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        needle_hnsw() {
            run "${ds}__r${r}__needle-hnsw" "$BIN" --base "$hb" --queries "$hq" \
                --truth "$H/groundtruth.ivecs" --metric $metric --index hnsw --m $M \
                --ef-construction $EFC --ef "$ef" --build-threads $BUILD_THREADS \
                --repeat "$REPEAT" --label "r$r"
        }
        peer_hnsw() {
            run "${ds}__r${r}__hnswlib" $PY "$PEERS" --base "$hb" --queries "$hq" \
                --truth "$H/groundtruth.ivecs" --metric $metric --systems hnswlib --m $M \
                --ef-construction $EFC --ef "$ef" --threads 1 --build-threads $BUILD_THREADS \
                --repeat "$REPEAT"
            run "${ds}__r${r}__hnswlib-mem" $PY bench/peer_memory.py --base "$hb" \
                --metric $metric --m $M --ef-construction $EFC \
                --build-threads $BUILD_THREADS --label "r$r"
        }
        needle_flat() {
            run "${ds}__r${r}__needle-flat" "$BIN" --base "$fb" --queries "$fqf" \
                --truth "$F/groundtruth.ivecs" --metric $metric --index flat \
                --flat-modes single,batch --batch-threads 1 --repeat "$REPEAT" --label "r$r"
        }
        peer_flat() {
            run "${ds}__r${r}__faiss-flat" $PY "$PEERS" --base "$fb" --queries "$fqf" \
                --truth "$F/groundtruth.ivecs" --metric $metric --systems faiss-flat \
                --threads 1 --repeat "$REPEAT"
        }
        if [ $((r % 2)) = 1 ]; then
            needle_hnsw; peer_hnsw; needle_flat; peer_flat
        else
            peer_hnsw; needle_hnsw; peer_flat; needle_flat
        fi
        r=$((r + 1))
    done
done

sed -i 's/}$/,"loadavg_end":"'"$(cut -d' ' -f1-3 /proc/loadavg)"'"}/' "$OUT/meta.json"

# ---------------------------------------------------------------- report
mkdir -p "$SVG_DIR"
$PY bench/compare.py --results "$OUT" --svg-dir "$SVG_DIR" > "$OUT/report.md"
cat "$OUT/report.md"
if [ -s "$OUT/failures.txt" ]; then
    say "some steps failed:"; cat "$OUT/failures.txt" >&2
    exit 1
fi
