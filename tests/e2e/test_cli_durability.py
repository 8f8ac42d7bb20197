"""Durability through the CLI: `needle check`, the write-ahead log surviving
kill -9 of an import (whole batches only, nothing half), damage detected and
named, and the --fsync modes.
"""
import os
import shutil
import signal
import subprocess
import time

import numpy as np

from conftest import ENV, NEEDLE, clustered, write_fvecs


def make(cli, tmp_path, n=2000, dim=16, name="c"):
    base = clustered(n, dim, seed=3)
    f = tmp_path / "base.fvecs"
    write_fvecs(f, base)
    cli.run("import", name, f, "--metric", "l2", "--threads", "2")
    return base, f


def test_check_passes_on_a_healthy_database(cli, tmp_path):
    make(cli, tmp_path)
    make(cli, tmp_path, name="d")
    p = cli.run("check")
    assert p.stdout.splitlines() == ["c: ok", "d: ok"]
    assert cli.run("check", "c").stdout == "c: ok\n"


def test_check_names_a_damaged_vectors_file(cli, tmp_path):
    _, f = make(cli, tmp_path)
    vec = sorted((cli.data / "c").glob("vectors.*"))[-1]
    raw = bytearray(vec.read_bytes())
    raw[len(raw) // 2] ^= 0x40  # inside the records: their chunk CRC sees it
    vec.write_bytes(bytes(raw))
    p = cli.fail("check", "c", code=1, match=r"vectors\.\d+")
    assert "DAMAGED" in p.stdout
    assert "chunk 0" in p.stderr + p.stdout
    # the commands that read vectors verify them at open (the library defers
    # that to a background thread), so the flipped vector is never served
    cli.fail("search", "c", "--queries", f, "--k", "3", code=1,
             match=r"vectors\.\d+', vectors chunk 0")
    cli.fail("get", "c", 0, code=1, match=r"vectors\.\d+")
    # info reads no vector: it opens without reading them
    assert "count:         2000" in cli.run("info", "c").stdout


def test_torn_catalog_tail_is_cut_and_reported(cli, tmp_path):
    """A drop whose catalog record is torn never happened: the collection
    is back as it was, and every command says the record was cut off."""
    make(cli, tmp_path, n=300)
    make(cli, tmp_path, n=300, name="d")
    # kill -9 while the DROP record was being appended: the record is torn
    # and the directory not yet removed (a drop removes it after the record
    # is on disk); a copy taken before the drop stands in for it
    shutil.copytree(cli.data / "d", tmp_path / "d-before")
    cli.run("drop", "d")
    shutil.copytree(tmp_path / "d-before", cli.data / "d")
    seg = sorted((cli.data / ".catalog").glob("wal-*.log"))[-1]
    size = seg.stat().st_size
    with open(seg, "r+b") as fh:
        fh.truncate(size - 3)
    p = cli.run("info")
    assert "torn record" in p.stderr and seg.name in p.stderr
    assert [line.split()[0] for line in p.stdout.splitlines()[1:]] == ["c", "d"]
    assert "300" in cli.run("info", "d").stdout
    assert cli.run("check").stdout.splitlines() == ["c: ok", "d: ok"]
    # read-only commands leave the log as it is (and keep reporting); the
    # first command that may write cuts it for good
    assert "torn record" in cli.run("compact", "c").stderr
    assert "torn" not in cli.run("info").stderr


def test_check_unknown_collection_and_bad_name(cli, tmp_path):
    make(cli, tmp_path)
    cli.fail("check", "nope", code=1, match="nope")
    cli.fail("check", "bad/name", code=2, match="bad collection name")


def test_bad_fsync_mode_is_a_usage_error(cli, tmp_path):
    f = tmp_path / "x.fvecs"
    write_fvecs(f, np.zeros((3, 4), np.float32))
    cli.fail("import", "c", f, "--metric", "l2", "--fsync", "sometimes", code=2,
             match="fsync mode 'sometimes'")
    assert not (cli.data / "c").exists()


def test_fsync_modes_all_persist(cli, tmp_path):
    base = clustered(500, 8, seed=4)
    f = tmp_path / "b.fvecs"
    write_fvecs(f, base)
    for i, mode in enumerate(["always", "batch", "none"]):
        cli.run("import", f"c{i}", f, "--metric", "l2", "--fsync", mode, "--batch", "100")
        assert cli.count(f"c{i}") == 500
    assert cli.run("check").stdout.count(": ok") == 3


def test_kill9_during_import_keeps_whole_batches(cli, tmp_path):
    """Kill an import at several moments; every reopen holds a whole number
    of acknowledged batches (ids 0..count-1 exactly), and check passes."""
    n, dim, batch = 20000, 32, 500
    base = clustered(n, dim, seed=5)
    f = tmp_path / "big.fvecs"
    write_fvecs(f, base)
    cli.run("create", "c", "--dim", dim, "--metric", "l2", "--m", "8", "--ef-construction", "32")
    seen = set()
    for delay in (0.3, 0.8, 1.5):
        cmd = [NEEDLE, "import", "c", str(f), "--batch", str(batch), "--threads", "1",
               "--data", str(cli.data)]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        time.sleep(delay)
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait()
        count = cli.count("c")
        assert count % batch == 0, f"count {count} is not whole batches of {batch}"
        seen.add(count)
        assert cli.run("check", "c").stdout == "c: ok\n"
        # the points that are there are the right ones (exact search: this is
        # about what was kept, and an HNSW graph of m=8 built from repeatedly
        # interrupted imports may miss a point now and then)
        q = tmp_path / "q.fvecs"
        write_fvecs(q, base[:5])
        for line, i in zip(cli.search("c", q, 1, "--exact"), range(5)):
            assert line["results"][0]["id"] == i and line["results"][0]["distance"] == 0
    assert max(seen) > 0
