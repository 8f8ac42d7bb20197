"""needle bench: --json lines exactly as in SPEC section 2, recall against
--truth ivecs or exact search (checked against numpy), QPS and latency
percentiles, --threads, the text table, and bad input."""
import json

import numpy as np
import pytest

from conftest import Cli, recall, result_ids, tree, write_fvecs, write_ivecs, write_jsonl

SPEC_KEYS = ["collection", "index", "ef", "nprobe", "k", "threads", "queries", "recall", "qps",
             "p50_us", "p95_us", "p99_us"]


def bench_json(cli, *args):
    p = cli.run("bench", *args, "--json")
    assert p.stderr == ""
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    for r in rows:
        assert list(r) == SPEC_KEYS  # the SPEC's fields, in the SPEC's order
        assert r["nprobe"] is None
        assert 0.0 <= r["recall"] <= 1.0
        assert isinstance(r["qps"], (int, float)) and r["qps"] > 0
        for key in ("p50_us", "p95_us", "p99_us"):
            assert isinstance(r[key], int) and r[key] >= 0
        assert r["p50_us"] <= r["p95_us"] <= r["p99_us"]
    return rows


def test_bench_json_one_line_per_ef(ds):
    rows = bench_json(ds.cli, "h", "--queries", ds.q_fvecs, "--k", ds.K, "--ef", "10,20,80",
                      "--truth", ds.truth_path)
    assert [r["ef"] for r in rows] == [10, 20, 80]
    for r in rows:
        assert r["collection"] == "h" and r["index"] == "hnsw"
        assert r["k"] == ds.K and r["threads"] == 1 and r["queries"] == ds.NQ
    assert rows[-1]["recall"] >= 0.9
    assert rows[0]["recall"] <= rows[-1]["recall"] + 1e-9


@pytest.mark.parametrize("ef", [16, 64])
def test_bench_recall_agrees_with_search_and_numpy(ds, ef):
    """Recall from bench (against --truth, and against exact search) equals
    the recall of `needle search` at the same ef measured with numpy."""
    lines = ds.cli.search("h", ds.q_fvecs, ds.K, "--ef", ef)
    want = recall(result_ids(lines), ds.truth[:, :ds.K].tolist())
    with_truth = bench_json(ds.cli, "h", "--queries", ds.q_fvecs, "--k", ds.K, "--ef", ef,
                            "--truth", ds.truth_path)
    computed = bench_json(ds.cli, "h", "--queries", ds.q_fvecs, "--k", ds.K, "--ef", ef)
    assert with_truth[0]["recall"] == pytest.approx(want, abs=1e-4)
    assert computed[0]["recall"] == pytest.approx(want, abs=1e-4)


def test_bench_auto_ef(ds):
    """'auto' runs the collection's default ef: the same recall as an
    explicit ef 64 (nothing learned yet: a tuning needs 100 queries)."""
    rows = bench_json(ds.cli, "h", "--queries", ds.q_fvecs, "--k", ds.K, "--ef", "auto,64",
                      "--truth", ds.truth_path)
    assert [r["ef"] for r in rows] == ["auto", 64]
    assert rows[0]["recall"] == pytest.approx(rows[1]["recall"], abs=1e-9)
    text = ds.cli.run("bench", "h", "--queries", ds.q_fvecs, "--k", ds.K, "--ef", "auto").stdout
    assert [line.split()[:2] for line in text.splitlines() if line.startswith("hnsw")] == [
        ["hnsw", "auto"]]


def test_bench_default_ef_list(ds):
    rows = bench_json(ds.cli, "h", "--queries", ds.q_fvecs, "--k", 5)
    assert [r["ef"] for r in rows] == [16, 32, 64, 128]
    # Defaults below k are raised to k, once.
    rows = bench_json(ds.cli, "h", "--queries", ds.q_fvecs, "--k", 50)
    assert [r["ef"] for r in rows] == [50, 64, 128]


def test_bench_flat_collection(ds):
    rows = bench_json(ds.cli, "f", "--queries", ds.q_fvecs, "--k", ds.K, "--truth", ds.truth_path)
    assert len(rows) == 1
    assert rows[0]["index"] == "flat" and rows[0]["ef"] is None
    assert rows[0]["recall"] == 1.0


def test_bench_exact_row(ds):
    rows = bench_json(ds.cli, "h", "--queries", ds.q_jsonl, "--k", ds.K, "--ef", 32, "--exact",
                      "--truth", ds.truth_path)
    assert [(r["index"], r["ef"]) for r in rows] == [("hnsw", 32), ("flat", None)]
    assert rows[1]["recall"] == 1.0


def test_bench_threads(ds):
    rows = bench_json(ds.cli, "h", "--queries", ds.q_fvecs, "--k", ds.K, "--ef", 64,
                      "--threads", 2, "--truth", ds.truth_path)
    assert rows[0]["threads"] == 2 and rows[0]["queries"] == ds.NQ
    one = bench_json(ds.cli, "h", "--queries", ds.q_fvecs, "--k", ds.K, "--ef", 64,
                     "--truth", ds.truth_path)
    assert rows[0]["recall"] == one[0]["recall"]


def test_bench_truth_with_wrong_ids_gives_low_recall(ds, tmp_path):
    wrong = np.roll(ds.truth[:, :ds.K], 1, axis=0)  # every query gets another's neighbours
    path = write_ivecs(tmp_path / "wrong.ivecs", wrong)
    rows = bench_json(ds.cli, "f", "--queries", ds.q_fvecs, "--k", ds.K, "--truth", path)
    assert rows[0]["recall"] < 0.5


def test_bench_text_table(ds):
    p = ds.cli.run("bench", "h", "--queries", ds.q_fvecs, "--k", ds.K, "--ef", "16,64")
    assert p.stderr == ""  # no progress bar when not on a terminal
    lines = p.stdout.splitlines()
    assert lines[0].startswith("collection 'h': hnsw, 2000 vectors, dimension 32, metric l2")
    assert "50 queries, k=10, 1 thread, recall against exact search" in lines[1]
    assert lines[2].split() == ["index", "ef", "recall", "qps", "p50_us", "p95_us", "p99_us"]
    rows = [line.split() for line in lines[3:]]
    assert [(r[0], r[1]) for r in rows] == [("hnsw", "16"), ("hnsw", "64")]
    assert all(0 <= float(r[2]) <= 1 for r in rows)


def test_bench_writes_nothing(ds):
    bench_json(ds.cli, "h", "--queries", ds.q_fvecs, "--k", 3, "--ef", 8)
    assert tree(ds.cli.data) == ds.tree


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("args, code, match", [
    (["--k", 0], 2, r"--k must be in 1\.\.10000, got 0"),
    (["--k", 10001], 2, r"--k must be in 1\.\.10000, got 10001"),
    (["--k", 10, "--ef", "16,5"], 2, r"--ef 5 is less than --k 10 \(ef must be >= k\)"),
    (["--k", 10, "--ef", "16,,32"], 2, r"--ef: '16,,32' is not a comma-separated list"),
    (["--k", 10, "--ef", "16,x"], 2, r"--ef: 'x' is not a whole number"),
    (["--k", 10, "--ef", "16,"], 2, r"--ef: '16,' is not a comma-separated list of numbers or 'auto'"),
    (["--k", 10, "--ef", ","], 2, r"--ef: ',' is not a comma-separated list of numbers or 'auto'"),
    (["--k", 10, "--ef", "Auto"], 2, r"--ef: 'Auto' is not a whole number"),
    (["--k", 10, "--threads", 0], 2, r"--threads must be in 1\.\.1024, got 0"),
    (["--k", 10, "--nprobe", "4"], 2, r"--nprobe is not supported yet"),
    (["--k", 10, "--plot", "p.svg"], 2, r"--plot is not supported yet"),
    ([], 2, r"'bench' needs --k"),
])
def test_bench_bad_options(ds, args, code, match):
    p = ds.cli.fail("bench", "h", "--queries", ds.q_fvecs, *args, code=code, match=match)
    assert p.stdout == ""


def test_bench_ef_on_a_flat_collection(ds):
    ds.cli.fail("bench", "f", "--queries", ds.q_fvecs, "--k", 5, "--ef", 16, code=2,
                match=r"--ef applies to hnsw collections; 'f' uses index flat")


def test_bench_unknown_collection_and_bad_name(ds):
    ds.cli.fail("bench", "nope", "--queries", ds.q_fvecs, "--k", 5, code=1,
                match=r"collection 'nope' does not exist")
    ds.cli.fail("bench", "no pe", "--queries", ds.q_fvecs, "--k", 5, code=2,
                match=r"bad collection name 'no pe'")
    ds.cli.fail("bench", "--queries", ds.q_fvecs, "--k", 5, code=2,
                match=r"'bench' needs a collection NAME")


def test_bench_bad_truth_files(ds, tmp_path):
    write_ivecs(tmp_path / "rows.ivecs", ds.truth[:10, :ds.K])
    write_ivecs(tmp_path / "short.ivecs", ds.truth[:, :5])
    neg = ds.truth[:, :ds.K].copy()
    neg[3, 2] = -7
    write_ivecs(tmp_path / "neg.ivecs", neg)
    raw = write_ivecs(tmp_path / "t.ivecs", ds.truth[:, :ds.K]).read_bytes()
    (tmp_path / "t.ivecs").write_bytes(raw[:-6])
    cases = [
        ("rows.ivecs", r"rows.ivecs has 10 rows; .*q.fvecs has 50 queries"),
        ("short.ivecs", r"short.ivecs: row 0 has 5 ids; --k is 10"),
        ("neg.ivecs", r"neg.ivecs: row 3 holds the negative id -7"),
        ("t.ivecs", r"t.ivecs: truncated record 49"),
        ("missing.ivecs", r"missing.ivecs: No such file or directory"),
    ]
    for fname, match in cases:
        p = ds.cli.fail("bench", "h", "--queries", ds.q_fvecs, "--k", ds.K, "--json",
                        "--truth", tmp_path / fname, code=1, match=match)
        assert p.stdout == ""


def test_bench_bad_queries(ds, tmp_path):
    bad = ds.queries.copy()
    bad[1, 0] = np.inf
    write_fvecs(tmp_path / "inf.fvecs", bad)
    write_fvecs(tmp_path / "d8.fvecs", ds.queries[:, :8])
    ds.cli.fail("bench", "h", "--queries", tmp_path / "inf.fvecs", "--k", 5, code=1,
                match=r"inf.fvecs: record 1 has a non-finite value \(Inf\) at position 0")
    ds.cli.fail("bench", "h", "--queries", tmp_path / "d8.fvecs", "--k", 5, code=1,
                match=r"d8.fvecs: record 0 has 8 values; collection 'h' has dimension 32")


def test_bench_string_ids_against_ivecs_truth(cli, tmp_path):
    x = np.eye(4, dtype=np.float32)
    write_jsonl(tmp_path / "s.jsonl", x, ids=["a", "b", "c", "d"])
    cli.run("import", "s", tmp_path / "s.jsonl", "--metric", "l2", "--index", "flat")
    write_fvecs(tmp_path / "q.fvecs", x)
    write_ivecs(tmp_path / "t.ivecs", np.arange(4).reshape(4, 1))
    cli.fail("bench", "s", "--queries", tmp_path / "q.fvecs", "--k", 1, "--truth",
             tmp_path / "t.ivecs", code=1, match=r"--truth holds integer ids, but the collection "
             r"returned the string id \"[abcd]\"")
    # Without --truth the exact answer is the reference, string ids or not.
    rows = bench_json(cli, "s", "--queries", tmp_path / "q.fvecs", "--k", 1)
    assert rows[0]["recall"] == 1.0


def test_bench_without_database(tmp_path):
    cli = Cli(tmp_path / "db")
    write_fvecs(tmp_path / "q.fvecs", np.ones((1, 4), np.float32))
    cli.fail("bench", "x", "--queries", tmp_path / "q.fvecs", "--k", 1, code=1,
             match=r"does not exist")
    assert not cli.data.exists()
