#!/bin/sh
# `needle serve` against the library in-process, in one run (bench/http_bench.c):
# search QPS over HTTP with 16/32/64 keep-alive connections beside
# ndl_collection_search from as many threads as the server has; NDJSON
# ingest over HTTP beside ndl_collection_upsert_points of the same batches;
# search latency at half and a quarter of the measured peak rate (open loop).
# usage: bench/http_bench.sh [N=100000] [DIM=128] [NQ=1000] [SECONDS=10]
# env:   THREADS=2        server threads = in-process threads
#        CONNS="16 32 64" connection counts for the closed-loop search runs
#        ROUNDS=2         rounds of (in-process search, HTTP search at each CONNS)
#        BASE=F QUERIES=F METRIC=l2  a real set (.fvecs/.bvecs) instead of
#                         N generated DIM-d blobs (N, DIM, NQ are then ignored)
#        PIN=1            also compare pinned: 1 server thread on cpu 1, the
#                         load generator on cpu 0, 1 in-process thread on cpu 1
#        PERF=1           also profile the server under search load (perf)
#        QUIET=30         wait at most this long for a quiet machine before each phase
# Builds the release tree, works in /var/tmp (a real disk), prints one JSON
# line per measurement (also kept in $WORK/results.jsonl), then ratios;
# the data is removed at the end, the results and perf.txt stay.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-100000} DIM=${2:-128} NQ=${3:-1000} SECS=${4:-10}
T=${THREADS:-2} CONNS=${CONNS:-"16 32 64"} METRIC=${METRIC:-l2} ROUNDS=${ROUNDS:-2}
. "$ROOT/bench/build.sh"
bench_build http_bench
B="$ROOT/build/http_bench"
export OPENBLAS_NUM_THREADS=1
WORK=/var/tmp/needle-http-bench
rm -rf "$WORK"
mkdir -p "$WORK"
OUT="$WORK/results.jsonl"
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; true' EXIT

. "$ROOT/bench/quiet.sh"
# wait (at most $QUIET s) for the other processes on the machine to calm down
quiet() { wait_quiet; echo "{\"measure\":\"quiet\",\"before\":\"$1\",\"machine_busy\":$busy}" | tee -a "$OUT"; }
run() { "$@" | tee -a "$OUT"; }
last() { tail -n 1 "$OUT"; }
# measure CMD...: run it; if other processes took more than a quarter core
# meanwhile, wait for quiet and run it once more (both lines stay in the
# results; the last one counts)
measure() {
    run "$@"
    o=$(field "$(last)" other_cores)
    if awk -v o="${o:-0}" 'BEGIN { exit !(o > 0.25) }'; then
        quiet retry
        run "$@"
    fi
}
# the number after "KEY": in a JSON line
field() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# start_server DIR THREADS [PREFIX...]: PID and URL of a fresh `needle serve`
start_server() {
    dir=$1 threads=$2
    shift 2
    "$@" "$ROOT/build/needle" serve --data "$dir" --listen 127.0.0.1:0 --fsync none \
        --threads "$threads" >"$WORK/serve.out" 2>>"$WORK/serve.err" &
    PID=$!
    for _ in $(seq 100); do
        URL=$(sed -n 's/^listening on //p' "$WORK/serve.out")
        [ -n "$URL" ] && return 0
        sleep 0.1
    done
    echo "needle serve did not start:" >&2
    cat "$WORK/serve.err" >&2
    exit 1
}
stop_server() { kill -TERM "$PID"; wait "$PID"; PID=; }

echo "{\"measure\":\"build\",$(bench_build_json),\"threads\":$T}" | tee -a "$OUT"
if [ -z "${BASE:-}" ]; then
    run "$B" gen out="$WORK" n="$N" dim="$DIM" nq="$NQ"
    BASE="$WORK/base.fvecs" QUERIES="$WORK/query.fvecs"
fi
: "${QUERIES:?QUERIES= is needed with BASE=}"

# --- ingest: NDJSON over HTTP (4 connections, connected 1 ms apart so both
# server threads get some), then the same batches through the library
quiet ingest
start_server "$WORK/http" "$T"
run "$B" http-ingest url="$URL" name=bench base="$BASE" metric="$METRIC" batch=1000 conns=4 connect_gap_ms=1 pid="$PID"
IH=$(last)
stop_server # checkpoints: the searches below start from a saved collection
run "$B" lib-ingest dir="$WORK/lib" name=bench base="$BASE" metric="$METRIC" batch=1000 \
    callers="$T" index_threads=1 fsync=none
IL=$(last)
rm -rf "${WORK:?}/lib"
run "$B" lib-ingest dir="$WORK/lib" name=bench base="$BASE" metric="$METRIC" batch=1000 \
    callers=1 index_threads="$T" fsync=none
IL2=$(last)
rm -rf "${WORK:?}/lib"

# --- search, ROUNDS rounds: in-process on the server's data dir, then the
# server on it; fresh connections each run (which server thread gets which
# connection is decided at accept, and differs from run to run)
# common key=value arguments; $S is left unquoted below on purpose (split into words)
S="name=bench queries=$QUERIES k=10 ef=64 seconds=$SECS"
BEST=0
for r in $(seq "$ROUNDS"); do
    quiet "round$r"
    measure "$B" lib-search dir="$WORK/http" $S threads="$T" label="round$r"
    start_server "$WORK/http" "$T"
    for c in $CONNS; do
        measure "$B" http-search url="$URL" $S conns="$c" pid="$PID" label="round$r"
        q=$(field "$(last)" qps)
        BEST=$(awk -v a="$q" -v b="$BEST" 'BEGIN { print (a > b ? a : b) }')
    done
    # the same with connects 1 ms apart, which spreads them over the threads
    measure "$B" http-search url="$URL" $S conns=32 connect_gap_ms=1 pid="$PID" label="round${r}_spread"
    q=$(field "$(last)" qps)
    BEST=$(awk -v a="$q" -v b="$BEST" 'BEGIN { print (a > b ? a : b) }')
    [ "$r" = "$ROUNDS" ] || stop_server
done
# what a request costs before any search: the empty route, then a search body
# to a collection that does not exist (read and parsed, then 404)
quiet costs
measure "$B" http-get url="$URL" path=/v1/health conns=16 seconds="$SECS" pid="$PID" label=health
measure "$B" http-search url="$URL" $S name=absent expect=404 conns=16 pid="$PID" label=parse_only
# open loop below saturation: half and a quarter of the best closed-loop rate;
# connects 1 ms apart so they spread over the server threads (a burst can
# land on one thread: then half the best rate is that thread's saturation)
HALF=$(awk -v b="$BEST" 'BEGIN { printf "%.0f", b / 2 }')
QUART=$(awk -v b="$BEST" 'BEGIN { printf "%.0f", b / 4 }')
measure "$B" http-search url="$URL" $S conns=64 rate="$HALF" connect_gap_ms=1 pid="$PID" label=open_half_peak
measure "$B" http-search url="$URL" $S conns=64 rate="$QUART" connect_gap_ms=1 pid="$PID" label=open_quarter_peak
if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    perf record -F 999 -g -o "$WORK/perf.data" -p "$PID" -- sleep "$SECS" >/dev/null 2>&1 &
    PERFPID=$!
    run "$B" http-search url="$URL" $S conns=32 warmup=0 pid="$PID" label=under_perf
    wait "$PERFPID" || true
    { perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null
      perf report -i "$WORK/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null
    } | grep '%' | grep -v '^#' >"$WORK/perf.txt" || true
    echo "perf profile of the server: $WORK/perf.txt" >&2
fi
stop_server
# in-process with a jansson parse of the whole body before each search (the
# server's path before fdcc172; it now reads the vector with fast_vector.c)
measure "$B" lib-search dir="$WORK/http" $S threads="$T" json=1 label=with_json_parse
run "$B" lib-json queries="$QUERIES"

# each HTTP run against the in-process run of its own round (the machine's
# speed drifts between rounds); a run with errors or unexpected statuses
# does not count as throughput: the script then fails at its end
/usr/bin/python3 - "$OUT" <<'PY' | tee -a "$OUT"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
lib = {r["label"]: r["qps"] for r in rows if r["measure"] == "search_lib" and r.get("json") == 0}
bad = [r for r in rows if r["measure"].endswith("_http")
       and (r.get("errors") or r.get("unexpected_status"))]
for r in bad:
    print(json.dumps({"measure": "invalid_run", "label": r.get("label"), "conns": r.get("conns"),
                      "errors": r.get("errors"), "unexpected_status": r.get("unexpected_status")}))
groups = {}
for r in rows:
    if r["measure"] != "search_http" or not r.get("label", "").startswith("round") or r.get("rate"):
        continue
    rnd = r["label"].split("_")[0]
    key = (r["conns"], r["label"].endswith("_spread"))
    groups.setdefault(key, []).append(round(r["qps"] / lib[rnd], 3))
for (conns, spread), rs in sorted(groups.items()):
    print(json.dumps({"measure": "ratio", "what": "search_qps_same_round", "conns": conns,
                      "spread_connects": spread, "ratios": rs, "min": min(rs),
                      "median": statistics.median(rs)}))
PY
echo "{\"measure\":\"ratio\",\"what\":\"ingest_vectors_per_s\",\"http\":$(field "$IH" vectors_per_s),\"lib_same_threads\":$(field "$IL" vectors_per_s),\"ratio\":$(ratio "$(field "$IH" vectors_per_s)" "$(field "$IL" vectors_per_s)"),\"lib_index_threads\":$(field "$IL2" vectors_per_s),\"ratio_to_index_threads\":$(ratio "$(field "$IH" vectors_per_s)" "$(field "$IL2" vectors_per_s)")}" | tee -a "$OUT"

# --- pinned: one core for the server (or the library), the other for the load generator
if [ "${PIN:-0}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
    quiet pinned
    measure taskset -c 1 "$B" lib-search dir="$WORK/http" $S threads=1 label=pinned_cpu1
    P1=$(last)
    start_server "$WORK/http" 1 taskset -c 1
    measure taskset -c 0 "$B" http-search url="$URL" $S conns=16 pid="$PID" label=pinned_server_cpu1_client_cpu0
    P2=$(last)
    measure taskset -c 0 "$B" http-get url="$URL" path=/v1/health conns=16 seconds="$SECS" pid="$PID" label=pinned_health
    measure taskset -c 0 "$B" http-search url="$URL" $S name=absent expect=404 conns=16 pid="$PID" label=pinned_parse_only
    stop_server
    echo "{\"measure\":\"ratio\",\"what\":\"search_qps_pinned_1_thread\",\"http\":$(field "$P2" qps),\"lib\":$(field "$P1" qps),\"ratio\":$(ratio "$(field "$P2" qps)" "$(field "$P1" qps)")}" | tee -a "$OUT"
fi
rm -rf "$WORK/http" "$WORK/base.fvecs" "$WORK/query.fvecs" # keep the results and the profile
echo "results: $OUT" >&2
if grep -q '"invalid_run"' "$OUT"; then
    echo "http_bench: some HTTP runs had errors or unexpected statuses (invalid_run lines)" >&2
    exit 1
fi
