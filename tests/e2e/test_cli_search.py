"""needle search: the output format, recall against numpy brute force,
distances and scores of every metric (SPEC section 1), --output files, and
every bad input rejected with exit 1 or 2, a message naming the problem and
nothing written."""
import json

import numpy as np
import pytest

from conftest import (Cli, distances, parse_search, read_ivecs, recall, result_ids,
                      tree, write_bvecs, write_fvecs, write_jsonl, write_npy)


def assert_exact(lines, d, k):
    """Each query found k ids whose true distances (d: numpy, queries x base)
    are the k smallest: exact up to the order of ties."""
    for i, obj in enumerate(lines):
        ids = [r["id"] for r in obj["results"]]
        assert len(ids) == k and len(set(ids)) == k
        np.testing.assert_allclose(d[i, ids], np.sort(d[i])[:k], rtol=1e-4, atol=1e-4)


def check_sorted(lines):
    for obj in lines:
        d = [r["distance"] for r in obj["results"]]
        s = [r["score"] for r in obj["results"]]
        assert d == sorted(d)
        assert s == sorted(s, reverse=True)


# ------------------------------------------------------------------ good input

def test_search_output_format(ds):
    p = ds.cli.run("search", "h", "--queries", ds.q_fvecs, "--k", ds.K)
    assert p.stderr == ""
    assert p.stdout.endswith("\n") and len(p.stdout.splitlines()) == ds.NQ
    lines = parse_search(p.stdout)  # keys exactly query/results and id/score/distance
    for obj in lines:
        assert len(obj["results"]) == ds.K
        assert all(isinstance(r["id"], int) for r in obj["results"])
    check_sorted(lines)


@pytest.mark.parametrize("ef, want", [(None, 0.90), (128, 0.95)])
def test_search_hnsw_recall_against_numpy(ds, ef, want):
    extra = ["--ef", ef] if ef else []
    lines = ds.cli.search("h", ds.q_fvecs, ds.K, *extra)
    r = recall(result_ids(lines), ds.truth[:, :ds.K].tolist())
    assert r >= want, f"recall@{ds.K} {r:.3f} at ef={ef}"


@pytest.mark.parametrize("name, extra", [("f", []), ("h", ["--exact"])])
def test_search_exact_matches_numpy(ds, name, extra):
    lines = ds.cli.search(name, ds.q_fvecs, ds.K, *extra)
    assert_exact(lines, distances(ds.base, ds.queries, "l2"), ds.K)
    want = np.sort(distances(ds.base, ds.queries, "l2"), axis=1)[:, :ds.K]
    got = np.array([[r["distance"] for r in o["results"]] for o in lines])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("path", ["q_npy", "q_jsonl"])
def test_search_query_formats(ds, path):
    a = ds.cli.run("search", "f", "--queries", ds.q_fvecs, "--k", 5).stdout
    b = ds.cli.run("search", "f", "--queries", getattr(ds, path), "--k", 5).stdout
    assert a == b


def test_search_bvecs_queries(cli, tmp_path):
    x = np.random.default_rng(1).integers(0, 256, size=(100, 8)).astype(np.uint8)
    write_bvecs(tmp_path / "b.bvecs", x)
    cli.run("import", "b", tmp_path / "b.bvecs", "--metric", "l1", "--index", "flat")
    lines = cli.search("b", tmp_path / "b.bvecs", 1)
    assert [o["results"][0]["id"] for o in lines] == list(range(100))
    assert all(o["results"][0]["distance"] == 0 for o in lines)


def test_search_threads_give_the_same_answer(ds):
    args = ["search", "h", "--queries", ds.q_fvecs, "--k", ds.K, "--ef", 40]
    one = ds.cli.run(*args, "--threads", 1).stdout
    two = ds.cli.run(*args, "--threads", 2).stdout
    assert one == two


def test_search_k_larger_than_collection(cli, tmp_path):
    x = np.eye(5, dtype=np.float32)
    write_fvecs(tmp_path / "e.fvecs", x)
    cli.run("import", "e", tmp_path / "e.fvecs", "--metric", "l2")
    for k in (5, 10000):
        lines = cli.search("e", tmp_path / "e.fvecs", k, "--ef", max(k, 64))
        assert all(len(o["results"]) == 5 for o in lines)


def test_search_empty_collection(cli, tmp_path):
    cli.run("create", "e", "--dim", 4, "--metric", "cosine")
    write_fvecs(tmp_path / "q.fvecs", np.ones((3, 4), np.float32))
    lines = cli.search("e", tmp_path / "q.fvecs", 3)
    assert [o["results"] for o in lines] == [[], [], []]


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip", "l1"])
def test_search_distances_and_scores(cli, tmp_path, metric):
    rng = np.random.default_rng(7)
    base = rng.normal(size=(300, 16)).astype(np.float32)
    q = rng.normal(size=(20, 16)).astype(np.float32)
    write_fvecs(tmp_path / "b.fvecs", base)
    write_fvecs(tmp_path / "q.fvecs", q)
    cli.run("import", "m", tmp_path / "b.fvecs", "--metric", metric, "--index", "flat")
    lines = cli.search("m", tmp_path / "q.fvecs", 5)
    d = distances(base, q, metric)
    assert_exact(lines, d, 5)
    for i, obj in enumerate(lines):
        for r in obj["results"]:
            dist = d[i, r["id"]]
            assert r["distance"] == pytest.approx(dist, rel=1e-4, abs=1e-4)
            score = {"cosine": 1 - dist, "ip": -dist}.get(metric, 1 / (1 + dist))
            assert r["score"] == pytest.approx(score, rel=1e-4, abs=1e-4)


def test_search_hamming_distances(cli, tmp_path):
    rng = np.random.default_rng(8)
    base = (rng.random((200, 64)) > 0.5).astype(np.float32)
    q = (rng.random((10, 64)) > 0.5).astype(np.float32)
    write_fvecs(tmp_path / "b.fvecs", base)
    write_fvecs(tmp_path / "q.fvecs", q)
    cli.run("import", "hm", tmp_path / "b.fvecs", "--metric", "hamming", "--index", "flat")
    lines = cli.search("hm", tmp_path / "q.fvecs", 5)
    bits = (q[:, None, :] != base[None, :, :]).sum(-1)
    for i, obj in enumerate(lines):
        got = [r["distance"] for r in obj["results"]]
        assert got == sorted(bits[i])[:5]
        for r in obj["results"]:
            assert r["distance"] == bits[i, r["id"]]
            assert r["score"] == pytest.approx(1 / (1 + r["distance"]))


def test_search_string_ids(cli, tmp_path):
    x = np.eye(3, dtype=np.float32)
    write_jsonl(tmp_path / "s.jsonl", x, ids=["a", "b\"q", "ü"])
    cli.run("import", "s", tmp_path / "s.jsonl", "--metric", "l2", "--index", "flat")
    write_fvecs(tmp_path / "q.fvecs", x)
    lines = cli.search("s", tmp_path / "q.fvecs", 1)
    assert [o["results"][0]["id"] for o in lines] == ["a", "b\"q", "ü"]


def test_search_output_jsonl_file(ds, tmp_path):
    out = tmp_path / "r.jsonl"
    p = ds.cli.run("search", "h", "--queries", ds.q_fvecs, "--k", 3, "--output", out)
    assert p.stdout == "" and p.stderr == ""
    want = ds.cli.run("search", "h", "--queries", ds.q_fvecs, "--k", 3).stdout
    assert out.read_text() == want
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r.jsonl"]


def test_search_output_ivecs(ds, tmp_path):
    out = tmp_path / "r.ivecs"
    p = ds.cli.run("search", "f", "--queries", ds.q_fvecs, "--k", ds.K, "--output", out)
    assert p.stdout == ""
    assert read_ivecs(out) == result_ids(ds.cli.search("f", ds.q_fvecs, ds.K))


def test_search_ivecs_output_refuses_string_ids(cli, tmp_path):
    write_jsonl(tmp_path / "s.jsonl", np.eye(3, dtype=np.float32), ids=["a", "b", "c"])
    cli.run("import", "s", tmp_path / "s.jsonl", "--metric", "l2", "--index", "flat")
    write_fvecs(tmp_path / "q.fvecs", np.eye(3, dtype=np.float32))
    out = tmp_path / "out" / "r.ivecs"
    out.parent.mkdir()
    cli.fail("search", "s", "--queries", tmp_path / "q.fvecs", "--k", 1, "--output", out,
             code=1, match=r"result id \"a\" is a string; ivecs output holds integer ids only")
    assert list(out.parent.iterdir()) == []  # neither the file nor its temporary


def test_search_output_into_missing_directory(ds, tmp_path):
    out = tmp_path / "nope" / "r.jsonl"
    ds.cli.fail("search", "h", "--queries", ds.q_fvecs, "--k", 3, "--output", out, code=1,
                match=r"nope/r.jsonl: No such file or directory")


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("args, code, match", [
    (["--k", 0], 2, r"--k must be in 1\.\.10000, got 0"),
    (["--k", 10001], 2, r"--k must be in 1\.\.10000, got 10001"),
    (["--k", -1], 2, r"--k must be in 1\.\.10000, got -1"),
    (["--k", "ten"], 2, r"--k: 'ten' is not a whole number"),
    (["--k", 10, "--ef", 5], 2, r"--ef 5 is less than --k 10 \(ef must be >= k\)"),
    (["--k", 10, "--ef", 0], 2, r"--ef must be in 1\.\.65536, got 0"),
    (["--k", 10, "--threads", 0], 2, r"--threads must be in 1\.\.1024, got 0"),
    (["--k", 10, "--filter", '{"a":{"$gt":[1]}}'], 2,
     r"--filter: filter\.a\.\$gt: needs a number or a string \(got an array\)"),
    (["--k", 10, "--filter", '{"a":'], 2, r"--filter: filter"),
    (["--k", 10, "--nprobe", 4], 2, r"--nprobe is not supported yet"),
    ([], 2, r"'search' needs --k"),
])
def test_search_bad_options(ds, args, code, match):
    p = ds.cli.fail("search", "h", "--queries", ds.q_fvecs, *args, code=code, match=match)
    assert p.stdout == ""
    assert tree(ds.cli.data) == ds.tree


def test_search_missing_arguments(ds):
    ds.cli.fail("search", "h", "--k", 3, code=2, match=r"'search' needs --queries FILE")
    ds.cli.fail("search", "--queries", ds.q_fvecs, "--k", 3, code=2,
                match=r"'search' needs a collection NAME")


@pytest.mark.parametrize("name", ["a b", "x/y", "n" * 65, "..", "é"])
def test_search_bad_collection_name(ds, name):
    ds.cli.fail("search", name, "--queries", ds.q_fvecs, "--k", 3, code=2,
                match=r"bad collection name")


def test_search_unknown_collection(ds):
    p = ds.cli.fail("search", "nope", "--queries", ds.q_fvecs, "--k", 3, code=1,
                    match=r"collection 'nope' does not exist")
    assert p.stdout == ""
    assert tree(ds.cli.data) == ds.tree


def test_search_bad_query_files(ds, tmp_path):
    bad = ds.queries.copy()
    bad[4, 2] = np.nan
    write_fvecs(tmp_path / "nan.fvecs", bad)
    bad[4, 2] = np.inf
    write_npy(tmp_path / "inf.npy", bad)
    write_fvecs(tmp_path / "d16.fvecs", ds.queries[:, :16])
    raw = (write_fvecs(tmp_path / "t.fvecs", ds.queries)).read_bytes()
    (tmp_path / "t.fvecs").write_bytes(raw[:-5])
    (tmp_path / "q.txt").write_text("1 2 3\n")
    cases = [
        ("nan.fvecs", 1, r"nan.fvecs: record 4 has a non-finite value \(NaN\) at position 2"),
        ("inf.npy", 1, r"inf.npy: row 4 has a non-finite value \(Inf\) at position 2"),
        ("d16.fvecs", 1, r"d16.fvecs: record 0 has 16 values; collection 'h' has dimension 32"),
        ("t.fvecs", 1, r"t.fvecs: truncated record 49"),
        ("missing.fvecs", 1, r"missing.fvecs: No such file or directory"),
        ("q.txt", 2, r"cannot tell the format of .*q.txt"),
    ]
    for fname, code, match in cases:
        p = ds.cli.fail("search", "h", "--queries", tmp_path / fname, "--k", 3, code=code,
                        match=match)
        assert p.stdout == ""
    assert tree(ds.cli.data) == ds.tree


def test_search_without_database(tmp_path):
    cli = Cli(tmp_path / "db")
    write_fvecs(tmp_path / "q.fvecs", np.ones((1, 4), np.float32))
    cli.fail("search", "x", "--queries", tmp_path / "q.fvecs", "--k", 1, code=1,
             match=r"database .*db' does not exist")
    assert not cli.data.exists()


def test_search_in_a_directory_that_is_not_a_database(tmp_path):
    cli = Cli(tmp_path / "db")
    cli.data.mkdir()
    (cli.data / "x").write_text("not needle")
    write_fvecs(tmp_path / "q.fvecs", np.ones((1, 4), np.float32))
    cli.fail("search", "x", "--queries", tmp_path / "q.fvecs", "--k", 1, code=1,
             match=r"is not a needle database")
    assert sorted(p.name for p in cli.data.iterdir()) == ["x"]


def test_search_output_is_valid_json_for_odd_ids(cli, tmp_path):
    ids = ["tab\there", "nl\nthere", "ctl\x01", 'q"uote', "back\\slash", "emoji 😀"]
    x = np.eye(6, dtype=np.float32)
    write_jsonl(tmp_path / "s.jsonl", x, ids=ids)
    cli.run("import", "s", tmp_path / "s.jsonl", "--metric", "l2", "--index", "flat")
    write_fvecs(tmp_path / "q.fvecs", x)
    out = cli.run("search", "s", "--queries", tmp_path / "q.fvecs", "--k", 1).stdout
    got = [json.loads(line)["results"][0]["id"] for line in out.splitlines()]
    assert got == ids
