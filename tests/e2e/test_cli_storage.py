"""Storage through the CLI: `needle info` reports live and deleted points,
memory and disk bytes; `needle compact` reclaims replaced points and prints
before/after; the read commands take --salvage (a healthy collection opens
with it exactly as without, and nothing is written)."""
import json
import re

import numpy as np
import pytest

from conftest import parse_search, tree, write_fvecs, write_jsonl

DIM = 4
N = 200        # points of collection 'x'
REPLACED = 40  # re-imported once: below the 64 dead slots that compact by themselves


def vectors(n, shift=0.0):
    i = np.arange(n, dtype=np.float32)[:, None]
    return np.hstack([i, i % 7 + shift, np.ones_like(i), -(i % 3)]).astype(np.float32)


@pytest.fixture
def replaced(cli, tmp_path):
    """Collection 'x' (hnsw, l2): N points with payloads, the first REPLACED
    of them replaced by a second import (new vectors and payloads)."""
    write_jsonl(tmp_path / "a.jsonl", vectors(N), payloads=[{"v": 1, "i": i} for i in range(N)])
    cli.run("import", "x", tmp_path / "a.jsonl", "--metric", "l2")
    write_jsonl(tmp_path / "b.jsonl", vectors(REPLACED, shift=10),
                payloads=[{"v": 2} for _ in range(REPLACED)])
    cli.run("import", "x", tmp_path / "b.jsonl")
    return "x"


def sizes(info):
    return {k: info[k] for k in ("count", "deleted", "memory_bytes", "disk_bytes")}


# ------------------------------------------------------------------ info

def test_info_reports_live_deleted_memory_and_disk(cli, replaced):
    info = cli.info("x")
    assert info["count"] == N and info["deleted"] == REPLACED
    assert info["memory_bytes"] >= (N + REPLACED) * DIM * 4
    assert info["disk_bytes"] >= (N + REPLACED) * DIM * 4
    text = cli.run("info", "x").stdout
    assert f"count:         {N}\n" in text
    assert f"deleted:       {REPLACED}\n" in text
    assert re.search(rf"^memory: +\S+ \S+ \({info['memory_bytes']} bytes\)$", text, re.M)
    assert re.search(rf"^disk: +\S+ \S+ \({info['disk_bytes']} bytes\)$", text, re.M)


# ------------------------------------------------------------------ compact

def test_compact_reclaims_replaced_points(cli, tmp_path, replaced):
    before = cli.info("x")
    out = json.loads(cli.run("compact", "x", "--json").stdout)
    assert list(out) == ["name", "before", "after"] and out["name"] == "x"
    assert out["before"] == sizes(before)
    after = out["after"]
    assert after["count"] == N and after["deleted"] == 0
    assert after["disk_bytes"] < before["disk_bytes"]
    assert after["memory_bytes"] < before["memory_bytes"]
    # A new process sees the compacted files.
    info = cli.info("x")
    assert info["count"] == N and info["deleted"] == 0
    assert info["disk_bytes"] == after["disk_bytes"]
    # Every point keeps its newest vector and payload.
    got = [json.loads(o) for o in cli.run("get", "x", 0, REPLACED - 1, REPLACED, N - 1)
           .stdout.splitlines()]
    assert [g["payload"] for g in got] == [{"v": 2}, {"v": 2}, {"v": 1, "i": REPLACED},
                                           {"v": 1, "i": N - 1}]
    assert got[0]["vector"] == vectors(1, shift=10)[0].tolist()
    assert got[2]["vector"] == vectors(REPLACED + 1)[REPLACED].tolist()
    # The graph still finds every point (exact and hnsw agree on the top hit).
    q = write_fvecs(tmp_path / "q.fvecs", np.vstack([vectors(REPLACED, 10), vectors(N)[REPLACED:]]))
    for extra in ((), ("--exact",)):
        lines = cli.search("x", q, 1, "--with-payload", *extra)
        assert [o["results"][0]["id"] for o in lines] == list(range(N))
        assert lines[0]["results"][0]["payload"] == {"v": 2}
    cli.run("check", "x")


def test_compact_text_output(cli, replaced):
    text = cli.run("compact", "x").stdout
    lines = text.splitlines()
    assert lines[0] == "compacted:     x"
    assert lines[1] == f"count:         {N} -> {N}"
    assert lines[2] == f"deleted:       {REPLACED} -> 0"
    info = cli.info("x")
    assert re.fullmatch(r"memory: +\S+ \S+ -> \S+ \S+ \(\d+ -> \d+ bytes\)", lines[3])
    m = re.fullmatch(r"disk: +\S+ \S+ -> \S+ \S+ \((\d+) -> (\d+) bytes\)", lines[4])
    assert m and int(m[2]) == info["disk_bytes"] < int(m[1])
    assert len(lines) == 5


def test_compact_with_nothing_to_reclaim(cli, tmp_path):
    write_fvecs(tmp_path / "a.fvecs", vectors(10))
    cli.run("import", "f", tmp_path / "a.fvecs", "--metric", "l2", "--index", "flat")
    out = json.loads(cli.run("compact", "f", "--json").stdout)
    assert out["before"]["count"] == out["after"]["count"] == 10
    assert out["before"]["deleted"] == out["after"]["deleted"] == 0
    cli.run("create", "empty", "--dim", 3, "--metric", "ip")
    out = json.loads(cli.run("compact", "empty", "--json").stdout)
    assert out["after"]["count"] == 0 and out["after"]["deleted"] == 0


def test_compact_unknown_collection(cli, replaced):
    before = tree(cli.data)
    cli.fail("compact", "nope", code=1, match=r"collection 'nope' does not exist")
    assert tree(cli.data) == before
    assert cli.names() == ["x"]


def test_compact_bad_arguments(cli, tmp_path):
    cli.fail("compact", code=2, match=r"'compact' needs a collection NAME")
    cli.fail("compact", "bad/name", code=2, match=r"bad collection name")
    cli.fail("compact", "x", "y", code=2, match=r"unexpected argument 'y'")
    # compact writes: it has no --salvage
    cli.fail("compact", "x", "--salvage", code=2, match=r"unknown option '--salvage'")
    cli.fail("compact", "x", code=1, match=r"database .* does not exist")
    assert not cli.data.exists()
    help_text = cli.run("help", "compact", data=False).stdout
    assert help_text.startswith("usage: needle compact NAME")
    assert "compact" in cli.run("help", data=False).stdout


# ------------------------------------------------------------------ salvage

def read_commands(tmp_path):
    """Every read command, each as (args...) on collection 'x'."""
    q = write_fvecs(tmp_path / "q.fvecs", vectors(5))
    return [
        ("info",), ("info", "--json"), ("info", "x"), ("info", "x", "--json"),
        ("search", "x", "--queries", q, "--k", 3, "--with-payload"),
        ("search", "x", "--queries", q, "--k", 3, "--exact"),
        ("get", "x", 0, 1, 199),
        ("check",), ("check", "x"),
    ]


def test_salvage_on_a_healthy_collection_changes_nothing(cli, tmp_path, replaced):
    files = tree(cli.data)
    for args in read_commands(tmp_path):
        plain = cli.run(*args)
        salvaged = cli.run(*args, "--salvage")
        assert salvaged.stdout == plain.stdout, args
        assert salvaged.stderr == "", args
    q = tmp_path / "q.fvecs"
    out = cli.run("bench", "x", "--queries", q, "--k", 3, "--ef", 16, "--json",
                  "--salvage").stdout
    assert json.loads(out)["collection"] == "x" and json.loads(out)["recall"] > 0.5
    assert tree(cli.data) == files, "a --salvage command wrote to the database"


def test_salvage_is_only_on_read_commands(cli, tmp_path):
    write_fvecs(tmp_path / "a.fvecs", vectors(3))
    for args in [("create", "y", "--dim", 4, "--metric", "l2"),
                 ("import", "y", tmp_path / "a.fvecs", "--metric", "l2"),
                 ("drop", "y"), ("compact", "y")]:
        cli.fail(*args, "--salvage", code=2, match=r"unknown option '--salvage'")
    assert not cli.data.exists()
    # A missing database stays missing under --salvage too.
    cli.fail("info", "--salvage", code=1, match=r"database .* does not exist")
    assert not cli.data.exists()
    for command in ("info", "search", "get", "bench", "check"):
        assert "--salvage" in cli.run("help", command, data=False).stdout, command
    assert "--salvage" in cli.run("help", data=False).stdout


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_salvage_opens_a_damaged_graph(cli, tmp_path, replaced):
    """A damaged graph file: refused with the file named; --salvage opens it
    read-only, rebuilds the graph from the vectors, says so on every command
    (stderr) and in info, finds every point, and writes nothing."""
    graphs = sorted((cli.data / "x").glob("graph.*"))
    assert len(graphs) == 1
    flip_byte(graphs[0], 100)
    cli.fail("info", "x", code=1, match=re.escape(graphs[0].name))
    files = tree(cli.data)
    p = cli.run("info", "x", "--salvage")
    assert re.search(r"^salvaged: +graph rebuilt from the vectors \(.*damaged", p.stdout, re.M)
    assert "opened by salvage, read-only" in p.stderr
    info = json.loads(cli.run("info", "x", "--json", "--salvage").stdout)
    assert info["count"] == N and "graph rebuilt" in info["salvaged"]
    q = write_fvecs(tmp_path / "all.fvecs", vectors(N)[REPLACED:])
    hits = parse_search(cli.run("search", "x", "--queries", q, "--k", 1, "--salvage").stdout)
    assert [h["results"][0]["id"] for h in hits] == list(range(REPLACED, N))
    # check does not call a salvaged collection ok: it says what salvage costs
    p = cli.fail("check", "x", "--salvage", code=1, match="is damaged")
    assert p.stdout.startswith("x: SALVAGED: graph rebuilt from the vectors")
    cli.fail("import", "x", tmp_path / "a.jsonl", code=1, match=re.escape(graphs[0].name))
    assert tree(cli.data) == files, "salvage wrote to the database"
