#!/usr/bin/python3
"""peer_memory.py -- memory per vector (and build time) of Debian's hnswlib,
measured exactly the way bench/lib_bench.c measures needle's.

The method (identical in both programs):
  1. load the base vectors as float32 and make the id array (before the
     baseline, so the input data is not counted);
  2. write "5" to /proc/self/clear_refs, which resets the peak-RSS mark
     VmHWM to the current RSS (Linux >= 4.0; skipped when not permitted);
  3. read VmRSS, RssAnon from /proc/self/status  -> "before";
  4. build: hnswlib.Index + init_index(max_elements=n, M, ef_construction)
     + add_items(base, ids) on --build-threads threads (needle: ndl_db_open +
     ndl_collection_create + one ndl_collection_upsert of all vectors);
  5. read VmRSS, RssAnon, VmHWM again -> "after".
  bytes_per_vector      = (VmRSS_after   - VmRSS_before)   / n
  anon_bytes_per_vector = (RssAnon_after - RssAnon_before) / n
  peak_bytes_per_vector = (VmHWM_after   - VmRSS_before)   / n   (peak during the build)

Prints one JSON line, in the shape of peers.py's lines:
  {"system":"hnswlib","event":"build","bytes_per_vector":...,"build_s":...}

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/peer_memory.py \
        --base base.bvecs --metric l2 --m 16 --ef-construction 200 --build-threads 2
"""
import argparse
import gc
import json
import os
import time

import numpy as np


def proc_status():
    """VmRSS, VmHWM, RssAnon, RssFile of this process, in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(val.split()[0]) * 1024
    return out


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def load(path):
    if path.endswith(".bvecs"):
        raw = np.fromfile(path, dtype=np.uint8)
        dim = int(raw[:4].view(np.int32)[0])
        return np.ascontiguousarray(raw.reshape(-1, dim + 4)[:, 4:]).astype(np.float32)
    if path.endswith(".fvecs"):
        raw = np.fromfile(path, dtype=np.int32)
        dim = int(raw[0])
        return np.ascontiguousarray(raw.reshape(-1, dim + 1)[:, 1:].view(np.float32))
    raise SystemExit(f"{path}: expected .fvecs or .bvecs")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True)
    p.add_argument("--metric", choices=["l2", "ip", "cosine"], default="l2")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--build-threads", type=int, default=2)
    p.add_argument("--label", default="")
    a = p.parse_args()

    import hnswlib  # imported before the baseline, like libneedle is linked in

    base = load(a.base)
    n, dim = base.shape
    ids = np.arange(n)
    gc.collect()

    hwm_reset = reset_peak()
    before = proc_status()
    idx = hnswlib.Index(space=a.metric, dim=dim)
    idx.init_index(max_elements=n, M=a.m, ef_construction=a.ef_construction, random_seed=100)
    idx.set_num_threads(a.build_threads)
    t0 = time.perf_counter()  # build time: add_items only, as peers.py and lib_bench (upsert)
    idx.add_items(base, ids)
    build_s = time.perf_counter() - t0
    after = proc_status()
    if idx.get_current_count() != n:
        raise SystemExit(f"hnswlib holds {idx.get_current_count()} of {n} vectors")

    print(json.dumps({
        "system": "hnswlib", "event": "build", "label": a.label, "index": "hnsw",
        "metric": a.metric, "n": n, "dim": dim, "m": a.m, "ef_construction": a.ef_construction,
        "build_threads": a.build_threads, "build_s": round(build_s, 3),
        "rss_before": before["VmRSS"], "rss_after": after["VmRSS"],
        "bytes_per_vector": round((after["VmRSS"] - before["VmRSS"]) / n, 1),
        "anon_bytes_per_vector": round((after["RssAnon"] - before["RssAnon"]) / n, 1),
        "peak_bytes_per_vector": round((after["VmHWM"] - before["VmRSS"]) / n, 1) if hwm_reset else None,
        "hwm_reset": hwm_reset, "version": getattr(hnswlib, "__version__", "?"),
    }), flush=True)


if __name__ == "__main__":
    main()
