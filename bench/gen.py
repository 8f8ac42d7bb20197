#!/usr/bin/python3
"""gen.py -- synthetic clustered vectors for `make demo` and tests.

Writes DIR/base.fvecs, DIR/query.fvecs and DIR/truth.ivecs (the exact top-100
neighbours of each query, computed with numpy in float64, in batches so
memory stays bounded). Needs numpy only.

    /usr/bin/python3 bench/gen.py --n 20000 --dim 64 --queries 200 --out DIR \
        [--metric l2|cosine|ip] [--seed 1] [--clusters 50] [--truth-k 100]
"""
import argparse
import os
import sys

import numpy as np


def clustered(rng, n, dim, centers, spread):
    """n points around randomly chosen centers (Gaussian blobs)."""
    which = rng.integers(0, len(centers), size=n)
    pts = centers[which] + rng.normal(0.0, spread, size=(n, dim))
    return pts.astype(np.float32)


def write_fvecs(path, x):
    x = np.ascontiguousarray(x, dtype="<f4")
    n, d = x.shape
    rec = np.empty((n, d + 1), dtype="<f4")
    rec[:, 0] = np.array([d], dtype="<i4").view("<f4")[0]
    rec[:, 1:] = x
    rec.tofile(path)


def write_ivecs(path, ids):
    ids = np.ascontiguousarray(ids, dtype="<i4")
    n, k = ids.shape
    rec = np.empty((n, k + 1), dtype="<i4")
    rec[:, 0] = k
    rec[:, 1:] = ids
    rec.tofile(path)


def exact_topk(base, queries, k, metric, max_cells=20_000_000):
    """Ids of the k nearest base rows for each query, nearest first."""
    b = base.astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "cosine":
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-30)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
    bnorm = (b * b).sum(axis=1)
    k = min(k, len(b))
    out = np.empty((len(q), k), dtype=np.int64)
    step = max(1, max_cells // max(1, len(b)))
    for s in range(0, len(q), step):
        qs = q[s:s + step]
        dots = qs @ b.T
        if metric == "l2":
            score = bnorm[None, :] - 2.0 * dots  # |q|^2 is the same for every row
        else:  # cosine (normalized) and ip: larger dot is nearer
            score = -dots
        part = np.argpartition(score, k - 1, axis=1)[:, :k]
        rows = np.arange(len(qs))[:, None]
        order = np.lexsort((part, score[rows, part]), axis=1)  # by score, then id
        out[s:s + step] = part[rows, order]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, required=True, help="base vectors")
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--queries", type=int, required=True)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--metric", choices=["l2", "cosine", "ip"], default="l2")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--clusters", type=int, default=50)
    ap.add_argument("--truth-k", type=int, default=100)
    a = ap.parse_args(argv)
    if a.n < 1 or a.dim < 1 or a.queries < 1 or a.clusters < 1 or a.truth_k < 1:
        ap.error("--n, --dim, --queries, --clusters and --truth-k must be positive")

    rng = np.random.default_rng(a.seed)
    centers = rng.normal(0.0, 1.0, size=(a.clusters, a.dim))
    spread = 0.35
    base = clustered(rng, a.n, a.dim, centers, spread)
    queries = clustered(rng, a.queries, a.dim, centers, spread)
    truth = exact_topk(base, queries, a.truth_k, a.metric)

    os.makedirs(a.out, exist_ok=True)
    write_fvecs(os.path.join(a.out, "base.fvecs"), base)
    write_fvecs(os.path.join(a.out, "query.fvecs"), queries)
    write_ivecs(os.path.join(a.out, "truth.ivecs"), truth)
    print(f"wrote {a.n} base, {a.queries} queries (dim {a.dim}, {a.metric}) and top-{truth.shape[1]} "
          f"truth to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
