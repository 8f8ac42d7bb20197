#!/usr/bin/python3
"""prepare.py -- cut a benchmark data set down for bench/run.sh.

Writes OUT/base.<ext>, OUT/query.<ext> and OUT/groundtruth.ivecs:

  * base: the first --n-base records of --base (all when 0 or larger);
  * queries: the first --n-queries records of --queries (all when 0);
  * truth: the matching rows of --truth when the base is complete, otherwise
    the exact top-K neighbours recomputed with numpy in float64.

Records are copied byte for byte (.fvecs stays .fvecs, .bvecs stays .bvecs),
so needle (bench/lib_bench.c) and the peers (peers.py, peer_memory.py) read
the very same files. Files that would be whole copies are symlinked instead.

    /usr/bin/python3 bench/prepare.py --base B --queries Q --truth T \
        --metric l2|cosine|ip --n-base 0 --n-queries 1000 --out DIR
"""
import argparse
import os
import sys

import numpy as np


def record_layout(path):
    """(dim, bytes per record, element dtype) of a .fvecs/.bvecs/.ivecs file."""
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) < 4:
        raise SystemExit(f"{path}: empty")
    dim = int(np.frombuffer(head, dtype="<i4")[0])
    if path.endswith(".bvecs"):
        return dim, 4 + dim, np.uint8
    if path.endswith(".fvecs"):
        return dim, 4 + 4 * dim, np.float32
    if path.endswith(".ivecs"):
        return dim, 4 + 4 * dim, np.int32
    raise SystemExit(f"{path}: expected .fvecs, .bvecs or .ivecs")


def count_records(path):
    _, rec, _ = record_layout(path)
    size = os.path.getsize(path)
    if size % rec:
        raise SystemExit(f"{path}: size is not a whole number of records")
    return size // rec


def read_rows(path, n):
    """First n records as a 2-D array of the file's element type."""
    dim, rec, dtype = record_layout(path)
    raw = np.fromfile(path, dtype=np.uint8, count=n * rec).reshape(n, rec)
    return np.ascontiguousarray(raw[:, 4:]).view(dtype).reshape(n, dim)


def copy_head(src, dst, n):
    """Write the first n records of src to dst (symlink when n is all of it)."""
    if os.path.lexists(dst):
        os.remove(dst)
    if n >= count_records(src):
        os.symlink(os.path.abspath(src), dst)
        return
    _, rec, _ = record_layout(src)
    with open(src, "rb") as f, open(dst, "wb") as g:
        g.write(f.read(n * rec))


def write_ivecs(path, ids):
    ids = np.ascontiguousarray(ids, dtype="<i4")
    n, k = ids.shape
    out = np.empty((n, k + 1), dtype="<i4")
    out[:, 0] = k
    out[:, 1:] = ids
    if os.path.lexists(path):
        os.remove(path)
    out.tofile(path)


def exact_truth(base, queries, metric, k, block=256):
    """Top-k ids (nearest first) by brute force in float64."""
    b = base.astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "cosine":
        b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-300)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-300)
    bn = (b * b).sum(axis=1)
    k = min(k, len(b))
    out = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), block):
        qs = q[s:s + block]
        dots = qs @ b.T
        if metric == "l2":
            d = bn[None, :] - 2.0 * dots  # + |q|^2, constant per row
        else:
            d = -dots
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        rows = np.arange(len(qs))[:, None]
        order = np.argsort(d[rows, part], axis=1, kind="stable")
        out[s:s + block] = part[rows, order]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--truth", help=".ivecs ground truth of the full base (rows = queries)")
    p.add_argument("--metric", choices=["l2", "cosine", "ip"], default="l2")
    p.add_argument("--n-base", type=int, default=0)
    p.add_argument("--n-queries", type=int, default=0)
    p.add_argument("--truth-k", type=int, default=100)
    p.add_argument("--out", required=True)
    a = p.parse_args()

    os.makedirs(a.out, exist_ok=True)
    nb_all, nq_all = count_records(a.base), count_records(a.queries)
    nb = nb_all if a.n_base <= 0 else min(a.n_base, nb_all)
    nq = nq_all if a.n_queries <= 0 else min(a.n_queries, nq_all)
    ext_b = os.path.splitext(a.base)[1]
    ext_q = os.path.splitext(a.queries)[1]
    base_out = os.path.join(a.out, "base" + ext_b)
    query_out = os.path.join(a.out, "query" + ext_q)
    truth_out = os.path.join(a.out, "groundtruth.ivecs")
    copy_head(a.base, base_out, nb)
    copy_head(a.queries, query_out, nq)
    if a.truth and nb == nb_all:
        if count_records(a.truth) < nq:
            raise SystemExit(f"{a.truth}: fewer rows than queries")
        copy_head(a.truth, truth_out, nq)
        how = "sliced from " + a.truth
    else:
        ids = exact_truth(read_rows(a.base, nb), read_rows(a.queries, nq), a.metric, a.truth_k)
        write_ivecs(truth_out, ids)
        how = "recomputed exactly (numpy, float64)"
    print(f"prepare: {a.out}: base {nb}/{nb_all}, queries {nq}/{nq_all}, truth {how}", file=sys.stderr)


if __name__ == "__main__":
    main()
