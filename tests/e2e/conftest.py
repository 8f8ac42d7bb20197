"""Shared helpers of the needle end-to-end tests: running the binary, writing
the vector file formats (fvecs, bvecs, npy, jsonl, ivecs), small clustered
data sets and exact nearest neighbours in numpy.

The binary is $NEEDLE_BIN (default build/needle); `make e2e` points it at the
ASan+UBSan build. Standard library + numpy only.
"""
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
NEEDLE = os.environ.get("NEEDLE_BIN", str(ROOT / "build" / "needle"))

ENV = dict(os.environ)
ENV.setdefault("OPENBLAS_NUM_THREADS", "1")
# Sanitizer reports must not hide behind exit status 1 (our runtime-error code).
ENV["ASAN_OPTIONS"] = (ENV.get("ASAN_OPTIONS", "detect_leaks=1") + ":exitcode=86").lstrip(":")
ENV["UBSAN_OPTIONS"] = (ENV.get("UBSAN_OPTIONS", "print_stacktrace=1") + ":exitcode=87").lstrip(":")

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def run_needle(args, data=None, timeout=300):
    cmd = [NEEDLE] + [str(a) for a in args]
    if data is not None:
        cmd += ["--data", str(data)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, f"sanitizer report from {cmd}:\n{p.stderr}"
    return p


class Cli:
    """The needle program bound to one data directory."""

    def __init__(self, data):
        self.data = Path(data)

    def run(self, *args, code=0, data=True):
        """Run needle; code=None accepts any exit status."""
        p = run_needle(args, self.data if data else None)
        assert code is None or p.returncode == code, (
            f"needle {' '.join(map(str, args))}: exit {p.returncode}, expected {code}\n"
            f"stdout: {p.stdout[:2000]}\nstderr: {p.stderr[:2000]}")
        return p

    def fail(self, *args, code, match, data=True):
        """Run expecting failure: exit `code`, one 'needle: ' line matching `match`."""
        p = self.run(*args, code=code, data=data)
        assert p.stderr.startswith("needle: "), p.stderr
        assert re.search(match, p.stderr), f"{match!r} not in stderr: {p.stderr!r}"
        return p

    def info(self, name=None):
        args = ["info"] + ([name] if name else []) + ["--json"]
        return json.loads(self.run(*args).stdout)

    def names(self):
        if not self.data.exists():
            return []
        return [c["name"] for c in self.info()["collections"]]

    def count(self, name):
        return self.info(name)["count"]

    def search(self, name, queries, k, *extra):
        p = self.run("search", name, "--queries", queries, "--k", k, *extra)
        return parse_search(p.stdout, payload="--with-payload" in extra)


def parse_search(text, payload=False):
    """Search output lines; every result has exactly id/score/distance, plus
    payload when asked for."""
    keys = {"id", "score", "distance"} | ({"payload"} if payload else set())
    lines = [json.loads(line) for line in text.splitlines()]
    for i, obj in enumerate(lines):
        assert set(obj) == {"query", "results"}
        assert obj["query"] == i
        for r in obj["results"]:
            assert set(r) == keys
    return lines


@pytest.fixture
def cli(tmp_path):
    return Cli(tmp_path / "db")


def nested_not(levels):
    """The filter {"$not":{"$not":...{}}}: `levels` filter objects deep
    (docs/FILTERS.md allows 64)."""
    f = {}
    for _ in range(levels - 1):
        f = {"$not": f}
    return f


def tree(path):
    """Every file under path with its size and content hash: equal trees mean
    a command wrote nothing. None when path does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    out = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        out[rel] = "dir" if p.is_dir() else (p.stat().st_size,
                                             hashlib.sha1(p.read_bytes()).hexdigest())
    return out


# ------------------------------------------------------------------ data

def clustered(n, dim, seed=0, clusters=20, spread=0.3):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 1.0, size=(clusters, dim))
    which = rng.integers(0, clusters, size=n)
    return (centers[which] + rng.normal(0.0, spread, size=(n, dim))).astype(np.float32)


def write_fvecs(path, x):
    x = np.ascontiguousarray(x, dtype="<f4")
    rec = np.empty((x.shape[0], x.shape[1] + 1), dtype="<f4")
    rec[:, 0] = np.array([x.shape[1]], dtype="<i4").view("<f4")[0]
    rec[:, 1:] = x
    rec.tofile(str(path))
    return path


def write_ivecs(path, ids):
    ids = np.ascontiguousarray(ids, dtype="<i4")
    rec = np.empty((ids.shape[0], ids.shape[1] + 1), dtype="<i4")
    rec[:, 0] = ids.shape[1]
    rec[:, 1:] = ids
    rec.tofile(str(path))
    return path


def read_ivecs(path):
    raw = np.fromfile(str(path), dtype="<i4")
    rows, i = [], 0
    while i < len(raw):
        d = raw[i]
        rows.append(raw[i + 1:i + 1 + d].tolist())
        i += 1 + d
    return rows


def write_bvecs(path, x):
    x = np.ascontiguousarray(x, dtype=np.uint8)
    n, d = x.shape
    with open(path, "wb") as f:
        for row in x:
            f.write(np.int32(d).tobytes())
            f.write(row.tobytes())
    return path


def write_npy(path, x):
    np.save(str(path), x)
    return path


def write_jsonl(path, vectors, ids=None, payloads=None):
    with open(path, "w", encoding="utf-8") as f:
        for i, v in enumerate(vectors):
            obj = {"id": ids[i] if ids is not None else i, "vector": [float(a) for a in v]}
            if payloads is not None:
                obj["payload"] = payloads[i]
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return path


def distances(base, queries, metric):
    b = base.astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "l2":
        d2 = (q * q).sum(1)[:, None] - 2 * q @ b.T + (b * b).sum(1)[None, :]
        return np.sqrt(np.maximum(d2, 0))
    if metric == "cosine":
        bn = b / np.linalg.norm(b, axis=1, keepdims=True)
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        return 1.0 - qn @ bn.T
    if metric == "ip":
        return -(q @ b.T)
    if metric == "l1":
        return np.abs(q[:, None, :] - b[None, :, :]).sum(-1)
    raise ValueError(metric)


def exact_knn(base, queries, k, metric="l2"):
    d = distances(base, queries, metric)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def recall(found, truth):
    """Mean fraction of each truth row present in the found row."""
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth))
    return hits / sum(len(t) for t in truth)


def result_ids(lines):
    return [[r["id"] for r in obj["results"]] for obj in lines]


# ------------------------------------------------------------------ shared data set

class Dataset:
    """One database built once per test session and only read afterwards:
    'h' (HNSW, l2) and 'f' (flat, l2) over the same BASE_N x DIM base, plus
    query files in several formats and the numpy ground truth."""
    N, DIM, NQ, K = 2000, 32, 50, 10


@pytest.fixture(scope="session")
def ds(tmp_path_factory):
    d = Dataset()
    root = tmp_path_factory.mktemp("dataset")
    d.root = root
    d.base = clustered(d.N, d.DIM, seed=11)
    d.queries = clustered(d.NQ, d.DIM, seed=12)
    d.base_path = write_fvecs(root / "base.fvecs", d.base)
    d.q_fvecs = write_fvecs(root / "q.fvecs", d.queries)
    d.q_npy = write_npy(root / "q.npy", d.queries)
    d.q_jsonl = root / "q.jsonl"
    with open(d.q_jsonl, "w") as f:  # query lines need no id
        for v in d.queries:
            f.write(json.dumps({"vector": [float(a) for a in v]}) + "\n")
    d.truth = exact_knn(d.base, d.queries, 100)
    d.truth_path = write_ivecs(root / "truth.ivecs", d.truth)
    d.cli = Cli(root / "db")
    # Small graph parameters keep the build fast under ASan.
    d.cli.run("import", "h", d.base_path, "--metric", "l2", "--m", 12,
              "--ef-construction", 100, "--threads", 2)
    d.cli.run("import", "f", d.base_path, "--metric", "l2", "--index", "flat")
    d.tree = tree(d.cli.data)
    return d
