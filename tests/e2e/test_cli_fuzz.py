"""Damaged input files never crash the readers: valid fvecs, bvecs, npy, jsonl
and ivecs files with flipped bytes, cut ends and random garbage either load or
fail with exit 1 and a 'needle: ' message (the sanitizer build turns any
memory error into a test failure)."""
import numpy as np
import pytest

from conftest import clustered, write_bvecs, write_fvecs, write_ivecs, write_jsonl, write_npy

CASES = 12


def damaged(raw, rng):
    """Variants of raw: cut, byte flips, garbage."""
    raw = bytearray(raw)
    out = []
    for _ in range(CASES):
        b = bytearray(raw)
        how = rng.integers(0, 3)
        if how == 0:
            b = b[:rng.integers(0, len(b))]
        elif how == 1:
            for _ in range(rng.integers(1, 6)):
                b[rng.integers(0, min(len(b), 160))] = rng.integers(0, 256)
        else:
            b = bytearray(rng.integers(0, 256, size=rng.integers(1, 300)).astype(np.uint8))
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("fmt", ["fvecs", "bvecs", "npy", "jsonl"])
def test_damaged_import_files(cli, tmp_path, fmt):
    rng = np.random.default_rng({"fvecs": 1, "bvecs": 2, "npy": 3, "jsonl": 4}[fmt])
    x = clustered(20, 8)
    if fmt == "bvecs":
        x = rng.integers(0, 256, size=(20, 8)).astype(np.uint8)
    writer = {"fvecs": write_fvecs, "bvecs": write_bvecs, "npy": write_npy,
              "jsonl": write_jsonl}[fmt]
    raw = writer(tmp_path / f"ok.{fmt}", x).read_bytes()
    cli.run("create", "x", "--dim", 8, "--metric", "l2", "--index", "flat")
    for i, b in enumerate(damaged(raw, rng)):
        path = tmp_path / f"d{i}.{fmt}"
        path.write_bytes(b)
        p = cli.run("import", "x", path, code=None)
        assert p.returncode in (0, 1), p.stderr
        if p.returncode == 1:
            assert p.stderr.startswith("needle: ") and p.stderr.count("\n") >= 1


def test_damaged_truth_files(ds, tmp_path):
    rng = np.random.default_rng(5)
    raw = write_ivecs(tmp_path / "t.ivecs", ds.truth[:, :5]).read_bytes()
    for i, b in enumerate(damaged(raw, rng)):
        path = tmp_path / f"d{i}.ivecs"
        path.write_bytes(b)
        p = ds.cli.run("bench", "f", "--queries", ds.q_fvecs, "--k", 5, "--truth", path,
                       "--json", code=None)
        assert p.returncode in (0, 1), p.stderr
