#!/usr/bin/python3
"""FAISS HNSW searched with an ID selector, on the points, payloads and
filters of bench/filtered_bench.c (same hash, same filter names), for
bench/filtered.sh to compare with needle in the same run.

  filtered_faiss.py labels BASE OUT.i32 [--clusters 100]
      k-means cluster of each base row (int32 per row), for the
      "cluster_far" filter, correlated with the vectors
  filtered_faiss.py run BASE QUERIES [--metric l2|cosine] [--k 10]
      [--labels F --far C] [--nq N] [--efs 16,32,...] [--filters a,b]
      per filter and efSearch: recall@k against the exact filtered answer
      (numpy), whether every query got min(k, matching) results, QPS on
      one thread; one JSON line each

Debian's python3-faiss 1.7.3: SearchParametersHNSW(sel=IDSelectorBatch);
its efSearch is taken from index.hnsw (the parameter's is ignored), so
both are set."""
import argparse
import json
import sys
import time

import faiss
import numpy as np

TAGS = [("p50", 0.5), ("p10", 0.1), ("p1", 0.01), ("p01", 0.001), ("p001", 0.0001)]


def read_vecs(path):
    raw = np.fromfile(path, dtype=np.uint8)
    d = int(raw[:4].view(np.int32)[0])
    if path.endswith(".bvecs"):
        rec = 4 + d
        return raw.reshape(-1, rec)[:, 4:].astype(np.float32)
    return raw.view(np.float32).reshape(-1, d + 1)[:, 1:].copy()


def u(rows, salt):
    """splitmix64 of (row, salt) -> [0, 1), as filtered_bench.c computes it."""
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + \
            np.uint64(salt) * np.uint64(0xD1B54A32D192ED03)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / 9007199254740992.0


def filters(n, labels, far):
    rows = np.arange(n, dtype=np.uint64)
    a, r = u(rows, 1), np.floor(u(rows, 2) * 1e6)
    out = {}
    for tag, share in TAGS:
        out["sel_" + tag] = np.nonzero(a < share)[0]
    for tag, share in TAGS:
        out["r_" + tag] = np.nonzero(r < int(share * 1e6))[0]
    if labels is not None:
        out["cluster_far"] = np.nonzero(labels == far)[0]
    return out


def exact(xb, q, ids, k, ip):
    """The k nearest of xb[ids] to each query, as sorted id sets."""
    sub = xb[ids]
    res = []
    for s in range(0, len(q), 256):
        qq = q[s:s + 256]
        if ip:
            d = -(qq @ sub.T)
        else:
            d = (qq * qq).sum(1)[:, None] - 2 * qq @ sub.T + (sub * sub).sum(1)[None, :]
        kk = min(k, len(ids))
        if kk == 0:
            res += [set() for _ in qq]
            continue
        part = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        res += [set(ids[p].tolist()) for p in part]
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("base")
    ap.add_argument("queries_or_out")
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--metric", default="l2")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--labels")
    ap.add_argument("--far", type=int, default=0)
    ap.add_argument("--nq", type=int, default=0)
    ap.add_argument("--efs", default="16,32,64,128,256,512,1024,2048")
    ap.add_argument("--filters", default="all")
    a = ap.parse_args()
    xb = read_vecs(a.base)
    if a.mode == "labels":
        km = faiss.Kmeans(xb.shape[1], a.clusters, niter=10, seed=1)
        km.train(xb)
        _, lab = km.index.search(xb, 1)
        lab.astype(np.int32).ravel().tofile(a.queries_or_out)
        sizes = np.bincount(lab.ravel(), minlength=a.clusters)
        median = int(np.argsort(sizes)[len(sizes) // 2])  # the "far" filter's cluster
        print(json.dumps({"measure": "labels", "clusters": a.clusters,
                          "smallest": int(sizes.min()), "largest": int(sizes.max()),
                          "median_cluster": median, "median_size": int(sizes[median])}))
        return
    q = read_vecs(a.queries_or_out)
    if a.nq:
        q = q[:a.nq]
    ip = a.metric == "cosine"
    if ip:
        xb /= np.maximum(np.linalg.norm(xb, axis=1, keepdims=True), 1e-30)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
    labels = np.fromfile(a.labels, dtype=np.int32) if a.labels else None
    faiss.omp_set_num_threads(2)
    index = faiss.IndexHNSWFlat(xb.shape[1], 16, faiss.METRIC_INNER_PRODUCT if ip else faiss.METRIC_L2)
    index.hnsw.efConstruction = 200
    t0 = time.time()
    index.add(xb)
    print(json.dumps({"measure": "faiss_build", "n": len(xb), "seconds": round(time.time() - t0, 2)}))
    faiss.omp_set_num_threads(1)
    for name, ids in filters(len(xb), labels, a.far).items():
        if a.filters != "all" and name not in a.filters.split(","):
            continue
        ids = ids.astype(np.int64)
        truth = exact(xb, q, ids, a.k, ip)
        want = min(a.k, len(ids))
        sel = faiss.IDSelectorBatch(len(ids), faiss.swig_ptr(ids))
        for ef in [int(e) for e in a.efs.split(",")]:
            if ef < a.k:
                continue
            # 1.7.3 reads efSearch from the index, not from the parameters
            index.hnsw.efSearch = ef
            p = faiss.SearchParametersHNSW(sel=sel, efSearch=ef)
            runs, t0 = 0, time.time()
            while True:  # at least one pass, at least 1 s
                _, I = index.search(q, a.k, params=p)
                runs += 1
                if time.time() - t0 >= 1.0:
                    break
            el = time.time() - t0
            found = sum(len(truth[i] & set(I[i][I[i] >= 0].tolist())) for i in range(len(q)))
            wrong = int(((I >= 0).sum(1) != want).sum())
            den = sum(len(t) for t in truth)
            print(json.dumps({"measure": "faiss_search", "filter": name, "ef": ef,
                              "matching": int(len(ids)), "recall": round(found / den if den else 1.0, 4),
                              "queries_with_wrong_count": wrong,
                              "qps": round(runs * len(q) / el)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
