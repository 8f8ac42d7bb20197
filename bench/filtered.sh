#!/bin/sh
# Filtered search, needle against FAISS HNSW with an ID selector, in one run,
# on the same points, payloads and filters (bench/filtered_bench.c says which:
# a keyword and an int range each keeping 50%, 10%, 1%, 0.1% and 0.01% of
# the points, and one k-means cluster, a filter correlated with the vectors).
# Per filter: recall@10 against the exact filtered answer, whether every
# query got exactly min(k, matching) results, QPS on one thread, the plan.
# usage: bench/filtered.sh ["SET ..."]   (default "fashion-mnist wordnet-glosses")
# env:   NQ=500  queries per set
#        WARM=500  held-out queries (after the first NQ) searched first with
#        the default ef: the traffic a collection learns its default ef from
#        SECONDS_PER_RUN=2  timed seconds per needle run (filter and ef); a
#        FAISS run is timed for at least 1 s (whole passes over the queries)
#        DATA=../shared/data (or any folder with the same layout; fashion-mnist
#        is also `apt-get install dataset-fashion-mnist`, converted by
#        bench/mnist_to_vecs.py)
# Results: one JSON line per measurement in /var/tmp/needle-filtered/results.jsonl,
# then per filter the needle / FAISS QPS ratio at the same recall.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-$ROOT/../shared/data}
SETS=${1:-"fashion-mnist wordnet-glosses"}
NQ=${NQ:-500} SECS=${SECONDS_PER_RUN:-2} WARM=${WARM:-500}
. "$ROOT/bench/build.sh"
bench_build filtered_bench
B="$ROOT/build/filtered_bench"
export OPENBLAS_NUM_THREADS=1
WORK=/var/tmp/needle-filtered
rm -rf "$WORK"
mkdir -p "$WORK"
OUT="$WORK/results.jsonl"
echo "{\"measure\":\"build_info\",$(bench_build_json)}" | tee -a "$OUT"
for set in $SETS; do
    case $set in
    fashion-mnist) base=$DATA/$set/base.bvecs query=$DATA/$set/query.bvecs metric=l2 ;;
    wordnet-glosses) base=$DATA/$set/base.fvecs query=$DATA/$set/query.fvecs metric=cosine ;;
    *) base=$DATA/$set/base.fvecs query=$DATA/$set/query.fvecs metric=l2 ;;
    esac
    /usr/bin/python3 "$ROOT/bench/filtered_faiss.py" labels "$base" "$WORK/$set.labels" | tee "$WORK/labels.json"
    far=$(sed -n 's/.*"median_cluster": \([0-9]*\).*/\1/p' "$WORK/labels.json")
    "$B" build dir="$WORK/$set" base="$base" metric="$metric" labels="$WORK/$set.labels" |
        sed "s/^{/{\"set\":\"$set\",/" | tee -a "$OUT"
    # the default plan, then each plan forced (0: always the walk; 1e9: always the scan)
    "$B" run dir="$WORK/$set" queries="$query" nq="$NQ" labels=1 far_cluster="$far" \
        warm="$WARM" efs=0,32,128,512 seconds="$SECS" | sed "s/^{/{\"set\":\"$set\",\"planner\":\"default\",/" | tee -a "$OUT"
    for walk in 0 1e9; do
        NEEDLE_FILTER_WALK_PER_EF=$walk "$B" run dir="$WORK/$set" queries="$query" nq="$NQ" \
            labels=1 far_cluster="$far" warm="$WARM" efs=0 seconds="$SECS" |
            sed "s/^{/{\"set\":\"$set\",\"planner\":\"walk_per_ef=$walk\",/" | tee -a "$OUT"
    done
    /usr/bin/python3 "$ROOT/bench/filtered_faiss.py" run "$base" "$query" --metric "$metric" \
        --labels "$WORK/$set.labels" --far "$far" --nq "$NQ" |
        sed "s/^{/{\"set\": \"$set\", /" | tee -a "$OUT"
    rm -rf "${WORK:?}/$set"
done
/usr/bin/python3 - "$OUT" <<'PY' | tee -a "$OUT"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for r in rows:
    if r["measure"] != "search" or r.get("planner") != "default" or r["ef"] != 0:
        continue
    peers = [p for p in rows if p["measure"] == "faiss_search" and p["set"] == r["set"]
             and p["filter"] == r["filter"]]
    # FAISS at needle's recall or above (strict), and within 0.005 below it
    strict = [p for p in peers if p["recall"] >= r["recall"]]
    near = [p for p in peers if p["recall"] >= r["recall"] - 0.005]
    best = max(strict, key=lambda p: p["qps"]) if strict else max(peers, key=lambda p: p["recall"])
    best_near = max(near, key=lambda p: p["qps"]) if near else best
    print(json.dumps({"measure": "ratio", "set": r["set"], "filter": r["filter"],
                      "matching": r["matching"], "plan": r["plan"], "needle_recall": r["recall"],
                      "needle_wrong_counts": r["queries_with_wrong_count"], "needle_qps": r["qps"],
                      "faiss_ef": best["ef"], "faiss_recall": best["recall"],
                      "faiss_wrong_counts": best["queries_with_wrong_count"],
                      "faiss_qps": best["qps"], "faiss_reaches_recall": bool(strict),
                      "qps_ratio": round(r["qps"] / best["qps"], 2),
                      "faiss_ef_within_0005": best_near["ef"],
                      "qps_ratio_within_0005": round(r["qps"] / best_near["qps"], 2)}))
PY
echo "results: $OUT" >&2
