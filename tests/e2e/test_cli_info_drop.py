"""needle info and needle drop, and persistence: every command is its own
process, so collections, their configs, vectors and HNSW graphs must come
back from --data DIR unchanged."""
import fcntl
import json
import re
import subprocess

import numpy as np
import pytest

from conftest import (ENV, NEEDLE, Cli, clustered, exact_knn, result_ids, tree, write_fvecs,
                      write_jsonl)

INFO_KEYS = ["name", "dimension", "metric", "index", "quantization", "fields", "search", "count",
             "deleted", "memory_bytes", "disk_bytes"]


def test_info_lists_collections(cli, tmp_path):
    cli.run("create", "b", "--dim", 4, "--metric", "ip", "--index", "flat")
    write_fvecs(tmp_path / "x.fvecs", clustered(30, 8))
    cli.run("import", "a", tmp_path / "x.fvecs", "--metric", "l2")
    assert cli.info() == {"collections": [{"name": "a", "count": 30}, {"name": "b", "count": 0}]}
    text = cli.run("info").stdout.splitlines()
    assert text[0].split() == ["NAME", "DIM", "METRIC", "INDEX", "COUNT"]
    assert [line.split() for line in text[1:]] == [["a", "8", "l2", "hnsw", "30"],
                                                   ["b", "4", "ip", "flat", "0"]]


def test_info_of_an_empty_database(cli):
    cli.run("create", "a", "--dim", 4, "--metric", "l2")
    cli.run("drop", "a")
    assert cli.info() == {"collections": []}
    assert cli.run("info").stdout == f"no collections in '{cli.data}'\n"


def test_info_of_one_collection(cli, tmp_path):
    write_fvecs(tmp_path / "x.fvecs", clustered(100, 16))
    cli.run("import", "c", tmp_path / "x.fvecs", "--metric", "cosine", "--m", 8,
            "--ef-construction", 50)
    info = cli.info("c")
    assert list(info) == INFO_KEYS
    assert info["name"] == "c" and info["dimension"] == 16 and info["metric"] == "cosine"
    assert info["index"] == {"type": "hnsw", "m": 8, "ef_construction": 50}
    assert info["quantization"] == {"type": "none"} and info["fields"] == {}
    assert info["count"] == 100 and info["deleted"] == 0
    assert info["memory_bytes"] >= 100 * 16 * 4
    assert info["disk_bytes"] >= 100 * 16 * 4
    # the default search ef: 64 until learned from queries (a CLI process
    # is too short-lived to learn it)
    assert info["search"] == {"ef": 64, "recall": None, "sample_queries": 0}
    text = cli.run("info", "c").stdout
    for line in ["name:          c", "dimension:     16", "metric:        cosine",
                 "index:         hnsw (m=8, ef_construction=50)", "count:         100",
                 "deleted:       0", "search ef:     64 (not yet learned from queries)"]:
        assert line + "\n" in text
    assert re.search(rf"disk: +.* \({info['disk_bytes']} bytes\)", text)


def test_info_counts_replaced_points(cli, tmp_path):
    x = clustered(50, 4)
    write_fvecs(tmp_path / "x.fvecs", x)
    cli.run("import", "r", tmp_path / "x.fvecs", "--metric", "l2", "--index", "flat")
    cli.run("import", "r", tmp_path / "x.fvecs")  # same ids 0..49 again
    info = cli.info("r")
    assert info["count"] == 50


def test_info_errors(cli):
    cli.fail("info", code=1, match=r"database '.*db' does not exist")
    assert not cli.data.exists()
    cli.run("create", "a", "--dim", 4, "--metric", "l2")
    before = tree(cli.data)
    cli.fail("info", "nope", code=1, match=r"collection 'nope' does not exist")
    cli.fail("info", "bad/name", code=2, match=r"bad collection name 'bad/name'")
    cli.fail("info", "a", "b", code=2, match=r"unexpected argument 'b'")
    assert tree(cli.data) == before


def test_drop(cli, tmp_path):
    write_fvecs(tmp_path / "x.fvecs", clustered(40, 8))
    cli.run("import", "a", tmp_path / "x.fvecs", "--metric", "l2")
    cli.run("import", "b", tmp_path / "x.fvecs", "--metric", "l2", "--index", "flat")
    p = cli.run("drop", "a")
    assert p.stdout == "dropped collection 'a'\n" and p.stderr == ""
    assert cli.names() == ["b"]
    assert not (cli.data / "a").exists()
    # The other collection is untouched and still answers.
    assert cli.count("b") == 40
    lines = cli.search("b", tmp_path / "x.fvecs", 1)
    assert [o["results"][0]["id"] for o in lines] == list(range(40))
    # The name is free again, for any config.
    cli.run("create", "a", "--dim", 3, "--metric", "ip")
    assert cli.info("a")["dimension"] == 3 and cli.count("a") == 0


def test_drop_errors(cli):
    cli.fail("drop", "a", code=1, match=r"database '.*db' does not exist")
    assert not cli.data.exists()
    cli.run("create", "a", "--dim", 4, "--metric", "l2")
    before = tree(cli.data)
    cli.fail("drop", "nope", code=1, match=r"collection 'nope' does not exist")
    cli.fail("drop", "a.b", code=2, match=r"bad collection name 'a.b'")
    cli.fail("drop", code=2, match=r"'drop' needs a collection NAME")
    assert tree(cli.data) == before
    assert cli.names() == ["a"]


@pytest.mark.parametrize("args", [
    ["drop", "a"],
    ["info"],
    ["info", "a"],
    ["search", "a", "--queries", "QUERIES", "--k", 1],
    ["bench", "a", "--queries", "QUERIES", "--k", 1],
    ["import", "a", "QUERIES"],
])
def test_empty_directory_is_no_database_and_stays_empty(tmp_path, args):
    cli = Cli(tmp_path / "db")
    cli.data.mkdir()
    q = write_fvecs(tmp_path / "q.fvecs", np.ones((2, 4), np.float32))
    args = [q if a == "QUERIES" else a for a in args]
    cli.fail(*args, code=1, match=r"database '.*db' does not exist")
    assert list(cli.data.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["create", "a", "--dim", 4, "--metric", "l2"],
    ["import", "a", "QUERIES", "--metric", "l2"],
    ["import", "a", "QUERIES"],
    ["drop", "a"],
    ["info"],
    ["info", "a"],
    ["search", "a", "--queries", "QUERIES", "--k", 1],
    ["bench", "a", "--queries", "QUERIES", "--k", 1],
])
def test_directory_that_is_not_a_database(tmp_path, args):
    cli = Cli(tmp_path / "db")
    cli.data.mkdir()
    (cli.data / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    q = write_fvecs(tmp_path / "q.fvecs", np.ones((2, 4), np.float32))
    args = [q if a == "QUERIES" else a for a in args]
    cli.fail(*args, code=1, match=r"db' is not a needle database")
    assert [p.name for p in cli.data.iterdir()] == ["photo.jpg"]


def test_data_path_is_a_file(tmp_path):
    cli = Cli(tmp_path / "file")
    cli.data.write_text("x")
    cli.fail("create", "a", "--dim", 4, "--metric", "l2", code=1, match=r"file' is not a directory")
    assert cli.data.read_text() == "x"


def test_database_in_use_by_another_process(cli, tmp_path):
    cli.run("create", "a", "--dim", 4, "--metric", "l2")
    write_fvecs(tmp_path / "x.fvecs", np.ones((3, 4), np.float32))
    before = tree(cli.data)
    with open(cli.data / "LOCK") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        cli.fail("import", "a", tmp_path / "x.fvecs", code=1, match=r"is in use by another process")
        cli.fail("drop", "a", code=1, match=r"is in use by another process")
    assert tree(cli.data) == before
    assert cli.count("a") == 0


def test_default_data_directory(tmp_path):
    """Without --data the database is ./needle-data."""
    p = subprocess.run([NEEDLE, "create", "d", "--dim", "2", "--metric", "l1"], cwd=tmp_path,
                       capture_output=True, text=True, env=ENV)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "needle-data").is_dir()
    assert Cli(tmp_path / "needle-data").names() == ["d"]


# ------------------------------------------------------------------ persistence

def test_collection_survives_across_processes(cli, tmp_path):
    base = clustered(1000, 16, seed=21)
    queries = clustered(20, 16, seed=22)
    write_fvecs(tmp_path / "b.fvecs", base)
    write_fvecs(tmp_path / "q.fvecs", queries)
    cli.run("create", "p", "--dim", 16, "--metric", "l2", "--m", 8, "--ef-construction", 60)
    cli.run("import", "p", tmp_path / "b.fvecs", "--threads", 2)
    first = cli.run("search", "p", "--queries", tmp_path / "q.fvecs", "--k", 5).stdout
    files = tree(cli.data)
    # Reading does not rewrite anything, and a reopened graph answers the same.
    again = cli.run("search", "p", "--queries", tmp_path / "q.fvecs", "--k", 5).stdout
    assert again == first
    assert tree(cli.data) == files
    info = cli.info("p")
    assert info["count"] == 1000
    assert info["index"] == {"type": "hnsw", "m": 8, "ef_construction": 60}
    # More points in a later process add to what is there.
    extra = clustered(10, 16, seed=23) + 100.0
    write_jsonl(tmp_path / "more.jsonl", extra, ids=list(range(1000, 1010)))
    cli.run("import", "p", tmp_path / "more.jsonl")
    assert cli.count("p") == 1010
    write_fvecs(tmp_path / "m.fvecs", extra)
    found = [o["results"][0]["id"] for o in cli.search("p", tmp_path / "m.fvecs", 1)]
    assert found == list(range(1000, 1010))
    # The old points are still there: exact search finds the same neighbours.
    exact = cli.search("p", tmp_path / "q.fvecs", 5, "--exact")
    assert result_ids(exact) == exact_knn(base, queries, 5).tolist()


def test_upsert_replaces_across_processes(cli, tmp_path):
    x = clustered(20, 4, seed=1)
    y = clustered(20, 4, seed=2) + 50.0
    write_fvecs(tmp_path / "x.fvecs", x)
    write_fvecs(tmp_path / "y.fvecs", y)
    cli.run("import", "u", tmp_path / "x.fvecs", "--metric", "l2")
    cli.run("import", "u", tmp_path / "y.fvecs")
    assert cli.count("u") == 20
    lines = cli.search("u", tmp_path / "y.fvecs", 1)
    assert [o["results"][0]["id"] for o in lines] == list(range(20))
    assert all(o["results"][0]["distance"] == pytest.approx(0, abs=1e-4) for o in lines)
    # The old vectors are gone: searching for them finds the new ones, far away.
    lines = cli.search("u", tmp_path / "x.fvecs", 1)
    assert all(o["results"][0]["distance"] > 10 for o in lines)


def test_info_json_is_one_line(cli):
    cli.run("create", "j", "--dim", 4, "--metric", "l2")
    out = cli.run("info", "j", "--json").stdout
    assert out.count("\n") == 1 and json.loads(out)["name"] == "j"
