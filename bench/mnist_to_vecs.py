#!/usr/bin/python3
"""mnist_to_vecs.py -- make the fashion-mnist benchmark set from the IDX files.

Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist;
`dpkg -L dataset-fashion-mnist` shows where it puts them) and the upstream
repository (github.com/zalandoresearch/fashion-mnist, data/fashion) ship
train-images-idx3-ubyte.gz (60,000 images) and t10k-images-idx3-ubyte.gz
(10,000). This writes, as in the ann-benchmarks fashion-mnist-784 split:

  OUT/base.bvecs         the 60,000 training images, 784 uint8 each
  OUT/query.bvecs        the 10,000 test images
  OUT/groundtruth.ivecs  exact l2 top-100 of each query (numpy, float64)

    /usr/bin/python3 bench/mnist_to_vecs.py --dir /usr/share/... --out data/fashion-mnist
    NEEDLE_BENCH_DATA=data make bench      # (with wordnet-glosses absent it is skipped)
"""
import argparse
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare import exact_truth, write_ivecs  # noqa: E402


def find(root, stem):
    for dirpath, _, files in os.walk(root):
        for name in (stem, stem + ".gz"):
            if name in files:
                return os.path.join(dirpath, name)
    raise SystemExit(f"{stem}(.gz) not found under {root}")


def read_idx_images(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = np.frombuffer(data[:16], dtype=">u4")
    if magic != 2051:
        raise SystemExit(f"{path}: not an IDX3 image file (magic {magic})")
    return np.frombuffer(data[16:16 + n * rows * cols], dtype=np.uint8).reshape(n, rows * cols)


def write_bvecs(path, x):
    n, d = x.shape
    rec = np.empty((n, 4 + d), dtype=np.uint8)
    rec[:, :4] = np.frombuffer(np.array([d], dtype="<i4").tobytes(), dtype=np.uint8)
    rec[:, 4:] = x
    rec.tofile(path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", help="folder searched (recursively) for the two IDX files")
    p.add_argument("--train", help="train-images-idx3-ubyte[.gz] (instead of --dir)")
    p.add_argument("--test", help="t10k-images-idx3-ubyte[.gz] (instead of --dir)")
    p.add_argument("--out", required=True)
    p.add_argument("--truth-k", type=int, default=100)
    a = p.parse_args()
    train = a.train or (a.dir and find(a.dir, "train-images-idx3-ubyte"))
    test = a.test or (a.dir and find(a.dir, "t10k-images-idx3-ubyte"))
    if not train or not test:
        raise SystemExit("give --dir, or --train and --test")
    base, queries = read_idx_images(train), read_idx_images(test)
    os.makedirs(a.out, exist_ok=True)
    write_bvecs(os.path.join(a.out, "base.bvecs"), base)
    write_bvecs(os.path.join(a.out, "query.bvecs"), queries)
    print(f"mnist_to_vecs: {len(base)} base, {len(queries)} queries; computing the exact top-{a.truth_k}",
          file=sys.stderr)
    write_ivecs(os.path.join(a.out, "groundtruth.ivecs"), exact_truth(base, queries, "l2", a.truth_k))


if __name__ == "__main__":
    main()
