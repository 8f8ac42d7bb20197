"""needle import: every format, ids, creation from options, and every kind of
bad input -- each rejected before anything is written (the collection is not
created, an existing one keeps its count)."""
import json

import numpy as np
import pytest

from conftest import (clustered, parse_search, tree, write_bvecs, write_fvecs, write_jsonl,
                      write_npy)

N, DIM = 300, 8


def base(n=N, dim=DIM, seed=1):
    return clustered(n, dim, seed=seed)


def write(fmt, path, x):
    return {"fvecs": write_fvecs, "npy": write_npy, "jsonl": write_jsonl,
            "bvecs": write_bvecs}[fmt](path, x)


def nearest_self(cli, name, path, x, k=3):
    """Searching with the base rows themselves finds each row first."""
    lines = cli.search(name, path, k, "--exact")
    assert len(lines) == len(x)
    for i, obj in enumerate(lines):
        assert obj["results"][0]["id"] == i
        assert obj["results"][0]["distance"] == pytest.approx(0.0, abs=1e-3)
    return lines


# ------------------------------------------------------------------ good input

@pytest.mark.parametrize("fmt", ["fvecs", "npy", "jsonl", "bvecs"])
def test_import_each_format(cli, tmp_path, fmt):
    x = base()
    if fmt == "bvecs":
        x = np.random.default_rng(3).integers(0, 256, size=(N, DIM)).astype(np.uint8)
    path = write(fmt, tmp_path / f"base.{fmt}", x)
    p = cli.run("import", "v", path, "--metric", "l2", "--index", "flat")
    assert p.stdout.startswith(f"imported {N} vectors into 'v' in ")
    assert p.stderr == ""  # no progress bar when not on a terminal
    info = cli.info("v")
    assert info["count"] == N and info["dimension"] == DIM and info["metric"] == "l2"
    nearest_self(cli, "v", path, x)


def test_import_format_option_overrides_extension(cli, tmp_path):
    x = base()
    path = write_fvecs(tmp_path / "vectors.bin", x)
    cli.fail("import", "v", path, "--metric", "l2", code=2, match="cannot tell the format")
    cli.run("import", "v", path, "--metric", "l2", "--format", "fvecs", "--index", "flat")
    assert cli.count("v") == N
    cli.fail("import", "v", path, "--format", "parquet", code=2, match="unknown format 'parquet'")


def test_import_creates_hnsw_with_options(cli, tmp_path):
    x = base()
    path = write_fvecs(tmp_path / "b.fvecs", x)
    cli.run("import", "h", path, "--dim", DIM, "--metric", "cosine", "--m", 6,
            "--ef-construction", 40, "--threads", 2, "--batch", 64)
    info = cli.info("h")
    assert info["count"] == N and info["metric"] == "cosine"
    assert info["index"] == {"type": "hnsw", "m": 6, "ef_construction": 40}


def test_import_into_existing_collection(cli, tmp_path):
    cli.run("create", "e", "--dim", DIM, "--metric", "l2", "--index", "flat")
    x = base()
    path = write_fvecs(tmp_path / "b.fvecs", x)
    cli.run("import", "e", path, "--batch", 7)
    assert cli.count("e") == N
    # Same ids again (0..n-1): replaced, not added.
    y = base(seed=9)
    path2 = write_fvecs(tmp_path / "c.fvecs", y)
    cli.run("import", "e", path2, "--dim", DIM, "--metric", "l2")
    assert cli.count("e") == N
    nearest_self(cli, "e", path2, y)


def test_import_adds_across_processes(cli, tmp_path):
    x = base(n=200)
    write_jsonl(tmp_path / "a.jsonl", x[:100], ids=list(range(100)))
    write_jsonl(tmp_path / "b.jsonl", x[100:], ids=list(range(100, 200)))
    cli.run("import", "p", tmp_path / "a.jsonl", "--metric", "l2", "--index", "flat")
    cli.run("import", "p", tmp_path / "b.jsonl")
    assert cli.count("p") == 200
    write_fvecs(tmp_path / "q.fvecs", x)
    nearest_self(cli, "p", tmp_path / "q.fvecs", x)


def test_import_jsonl_string_ids_and_payloads(cli, tmp_path):
    x = base(n=5, dim=4)
    ids = ["alpha", "zürich-ü", 'quote"back\\slash', "tab\tnew\nline", "x" * 256]
    payloads = [{"a": 1}, {"nested": {"deep": [1, 2, {"z": None}]}}, {}, None, {"é": "ü"}]
    write_jsonl(tmp_path / "s.jsonl", x, ids=ids, payloads=payloads)
    cli.run("import", "s", tmp_path / "s.jsonl", "--metric", "l2", "--index", "flat")
    assert cli.count("s") == 5
    write_fvecs(tmp_path / "q.fvecs", x)
    lines = cli.search("s", tmp_path / "q.fvecs", 1, "--with-payload")
    assert [obj["results"][0]["id"] for obj in lines] == ids
    assert [obj["results"][0]["payload"] for obj in lines] == payloads


def test_import_jsonl_mixed_ids_escapes_and_blank_lines(cli, tmp_path):
    text = ('{"id": 7, "vector": [1, 2.5, -3e-1]}\n'
            '\n'
            '  {"vector":[0,0,1E2],"id":"\\u00e9t\\u00e9 \\ud83d\\ude00","payload":{"k":"v"}}  \r\n'
            '{"id": 18446744073709551615, "vector": [4, 5, 6]}\n')
    (tmp_path / "m.jsonl").write_text(text)
    cli.run("import", "m", tmp_path / "m.jsonl", "--metric", "l2", "--index", "flat")
    assert cli.count("m") == 3
    write_fvecs(tmp_path / "q.fvecs", np.array([[0, 0, 100], [4, 5, 6], [1, 2.5, -0.3]], np.float32))
    lines = cli.search("m", tmp_path / "q.fvecs", 1)
    assert [o["results"][0]["id"] for o in lines] == ["été 😀", 18446744073709551615, 7]


def test_import_repeated_id_keeps_the_last_vector(cli, tmp_path):
    x = np.array([[0, 0], [5, 5], [9, 9], [1, 1]], np.float32)
    write_jsonl(tmp_path / "r.jsonl", x, ids=[1, 2, 1, "1"])  # "1" is not 1
    # --batch 2 puts the repeats in different writes, too.
    for batch in (10, 2):
        cli.run("import", f"r{batch}", tmp_path / "r.jsonl", "--metric", "l2", "--index", "flat",
                "--batch", batch)
        assert cli.count(f"r{batch}") == 3
        write_fvecs(tmp_path / "q.fvecs", np.array([[9, 9], [0, 0]], np.float32))
        lines = cli.search(f"r{batch}", tmp_path / "q.fvecs", 1)
        assert lines[0]["results"][0]["id"] == 1 and lines[0]["results"][0]["distance"] == 0
        assert lines[1]["results"][0]["id"] == "1"  # id 1's first vector is gone


def test_import_largest_dimension(cli, tmp_path):
    x = np.random.default_rng(2).normal(size=(3, 65536)).astype(np.float32)
    write_npy(tmp_path / "big.npy", x)
    cli.run("import", "big", tmp_path / "big.npy", "--metric", "ip", "--index", "flat")
    assert cli.info("big")["dimension"] == 65536 and cli.count("big") == 3
    write_npy(tmp_path / "over.npy", np.zeros((2, 65537), np.float32))
    cli.fail("import", "over", tmp_path / "over.npy", "--metric", "l2", code=1,
             match=r"over.npy: dimension 65537 is not in 1\.\.65536")
    assert cli.names() == ["big"]


def test_import_hamming_binary_vectors(cli, tmp_path):
    x = (np.random.default_rng(5).random((50, 16)) > 0.5).astype(np.float32)
    write_fvecs(tmp_path / "h.fvecs", x)
    cli.run("import", "ham", tmp_path / "h.fvecs", "--metric", "hamming", "--index", "flat")
    lines = cli.search("ham", tmp_path / "h.fvecs", 1)
    assert all(o["results"][0]["distance"] == 0 for o in lines)


# ------------------------------------------------------------------ bad input

def assert_untouched(cli, name, count=None):
    if getattr(cli, "before", None) is not None:
        assert tree(cli.data) == cli.before, "a failed command changed the database files"
    if count is None:
        assert name not in cli.names()
    else:
        assert cli.count(name) == count


@pytest.fixture
def existing(cli, tmp_path):
    """A collection 'x' of dimension 8 holding 10 points; the database files
    as they were are kept in cli.before."""
    write_fvecs(tmp_path / "ten.fvecs", base(n=10))
    cli.run("import", "x", tmp_path / "ten.fvecs", "--metric", "l2", "--index", "flat")
    cli.before = tree(cli.data)
    return "x"


def test_wrong_dimension_for_existing_collection(cli, tmp_path, existing):
    write_fvecs(tmp_path / "d7.fvecs", base(dim=7))
    cli.fail("import", "x", tmp_path / "d7.fvecs", code=1,
             match=r"d7.fvecs: record 0 has 7 values; collection 'x' has dimension 8")
    write_jsonl(tmp_path / "d9.jsonl", base(dim=9))
    cli.fail("import", "x", tmp_path / "d9.jsonl", code=1,
             match=r"line 1: vector has 9 values; collection 'x' has dimension 8")
    write_npy(tmp_path / "d4.npy", base(dim=4))
    cli.fail("import", "x", tmp_path / "d4.npy", code=1,
             match=r"row 0 has 4 values; collection 'x' has dimension 8")
    assert_untouched(cli, "x", 10)


def test_jsonl_wrong_dimension_on_a_later_line(cli, tmp_path, existing):
    x = base(n=5)
    write_jsonl(tmp_path / "ok.jsonl", x)
    lines = (tmp_path / "ok.jsonl").read_text().splitlines()
    lines[3] = json.dumps({"id": 3, "vector": [1.0] * 7})
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    cli.fail("import", "x", tmp_path / "bad.jsonl", code=1,
             match=r"bad.jsonl: line 4: vector has 7 values; collection 'x' has dimension 8")
    cli.fail("import", "new", tmp_path / "bad.jsonl", "--metric", "l2", code=1,
             match=r"line 4: vector has 7 values; line 1 has 8")
    assert_untouched(cli, "x", 10)
    assert_untouched(cli, "new")


def test_options_that_disagree_with_existing_collection(cli, tmp_path, existing):
    write_fvecs(tmp_path / "b.fvecs", base())
    cli.fail("import", "x", tmp_path / "b.fvecs", "--dim", 16, "--metric", "l2", code=1,
             match=r"collection 'x' has dimension 8; --dim is 16")
    cli.fail("import", "x", tmp_path / "b.fvecs", "--metric", "cosine", code=1,
             match=r"collection 'x' has metric l2; --metric is cosine")
    cli.fail("import", "x", tmp_path / "b.fvecs", "--metric", "l2", "--index", "hnsw", code=1,
             match=r"collection 'x' has index flat; --index is hnsw")
    assert_untouched(cli, "x", 10)


def test_dim_option_disagrees_with_file(cli, tmp_path):
    write_fvecs(tmp_path / "b.fvecs", base())
    cli.fail("import", "n", tmp_path / "b.fvecs", "--dim", 16, "--metric", "l2", code=1,
             match=r"record 0 has 8 values; --dim is 16")
    assert not cli.data.exists()


@pytest.mark.parametrize("fmt, where", [("fvecs", "record 7"), ("npy", "row 7"),
                                        ("jsonl", "line 8")])
@pytest.mark.parametrize("bad, name", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "-Inf")])
def test_non_finite_values_rejected(cli, tmp_path, fmt, where, bad, name):
    x = base()
    x[7, 3] = bad
    if fmt == "jsonl":
        # JSON has no NaN/Infinity; what a writer emits anyway must still be caught.
        write_jsonl(tmp_path / "b.jsonl", x)
        text = (tmp_path / "b.jsonl").read_text()
        assert "NaN" in text or "Infinity" in text
        match = rf"b.jsonl: line 8: vector value at position 3 is NaN or Infinity"
    else:
        write(fmt, tmp_path / f"b.{fmt}", x)
        match = rf"b.{fmt}: {where} has a non-finite value \({name}\) at position 3"
    cli.fail("import", "n", tmp_path / f"b.{fmt}", "--metric", "l2", code=1, match=match)
    assert not cli.data.exists()


def test_jsonl_overflowing_number_rejected(cli, tmp_path, existing):
    (tmp_path / "o.jsonl").write_text('{"id": 1, "vector": [1, 2, 3, 4, 5, 6, 7, 1e39]}\n')
    cli.fail("import", "x", tmp_path / "o.jsonl", code=1,
             match=r"line 1: vector value at position 7 is out of float range")
    assert_untouched(cli, "x", 10)


def test_truncated_fvecs(cli, tmp_path, existing):
    path = write_fvecs(tmp_path / "t.fvecs", base(n=100))
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    size = len(data) - 3
    cli.fail("import", "x", path, code=1,
             match=rf"t.fvecs: truncated record 99 \(file size {size} is not a multiple of 36\)")
    assert_untouched(cli, "x", 10)


def test_misaligned_fvecs(cli, tmp_path, existing):
    path = write_fvecs(tmp_path / "m.fvecs", base(n=100))
    raw = bytearray(path.read_bytes())
    raw[36 * 40:36 * 40 + 4] = np.int32(9).tobytes()  # record 40 claims dimension 9
    path.write_bytes(bytes(raw))
    cli.fail("import", "x", path, code=1,
             match=r"m.fvecs: record 40 claims dimension 9 but record 0 has 8")
    assert_untouched(cli, "x", 10)


def test_fvecs_with_a_nonsense_header(cli, tmp_path):
    path = tmp_path / "junk.fvecs"
    path.write_bytes(np.array([-5, 1, 2, 3], dtype="<i4").tobytes())
    cli.fail("import", "n", path, "--metric", "l2", code=1,
             match=r"junk.fvecs: record 0 claims dimension -5")
    assert not cli.data.exists()


def test_truncated_bvecs(cli, tmp_path, existing):
    x = np.random.default_rng(2).integers(0, 256, size=(50, 8)).astype(np.uint8)
    path = write_bvecs(tmp_path / "t.bvecs", x)
    data = path.read_bytes()
    path.write_bytes(data[:-1])
    cli.fail("import", "x", path, code=1,
             match=rf"t.bvecs: truncated record 49 \(file size {len(data) - 1} is not a multiple of 12\)")
    assert_untouched(cli, "x", 10)


@pytest.mark.parametrize("array, match", [
    (np.zeros((10, 8), dtype="<f8"), r"dtype '<f8' is not supported"),
    (np.zeros((10, 8), dtype=">f4"), r"dtype '>f4' is not supported"),
    (np.zeros((10, 8), dtype="<i4"), r"dtype '<i4' is not supported"),
    (np.zeros(8, dtype="<f4"), r"array shape \(8\) is not 2-D"),
    (np.zeros((2, 3, 8), dtype="<f4"), r"array shape \(2, 3, 8\) is not 2-D"),
    (np.asfortranarray(np.ones((10, 8), dtype="<f4")), r"Fortran-order arrays are not supported"),
    (np.zeros((0, 8), dtype="<f4"), r"the array has no rows"),
])
def test_unsupported_npy(cli, tmp_path, existing, array, match):
    path = write_npy(tmp_path / "a.npy", array)
    cli.fail("import", "x", path, code=1, match=r"a.npy: " + match)
    assert_untouched(cli, "x", 10)


def test_truncated_npy(cli, tmp_path, existing):
    path = write_npy(tmp_path / "t.npy", base(n=20))
    data = path.read_bytes()
    path.write_bytes(data[:-40])
    cli.fail("import", "x", path, code=1, match=r"t.npy: truncated record 18 \(shape \(20, 8\)")
    path.write_bytes(b"\x93NUMPY\x01\x00")
    cli.fail("import", "x", path, code=1, match=r"t.npy: not an npy file")
    path.write_bytes(b"PK\x03\x04 something else entirely")
    cli.fail("import", "x", path, code=1, match=r"t.npy: not an npy file \(bad magic\)")
    assert_untouched(cli, "x", 10)


def test_npy_with_trailing_bytes(cli, tmp_path, existing):
    path = write_npy(tmp_path / "t.npy", base(n=20))
    path.write_bytes(path.read_bytes() + b"\0" * 8)
    cli.fail("import", "x", path, code=1, match=r"8 unexpected bytes after the array data")
    assert_untouched(cli, "x", 10)


def test_missing_file(cli, tmp_path, existing):
    cli.fail("import", "x", tmp_path / "nope.fvecs", code=1,
             match=r"nope.fvecs: No such file or directory")
    cli.fail("import", "y", tmp_path / "nope.fvecs", "--metric", "l2", code=1,
             match=r"nope.fvecs: No such file or directory")
    assert_untouched(cli, "x", 10)
    assert_untouched(cli, "y")


def test_missing_file_creates_no_database(cli, tmp_path):
    cli.fail("import", "y", tmp_path / "nope.npy", "--metric", "l2", code=1, match="nope.npy")
    assert not cli.data.exists()


def test_empty_file(cli, tmp_path):
    (tmp_path / "e.fvecs").write_bytes(b"")
    cli.fail("import", "y", tmp_path / "e.fvecs", "--metric", "l2", code=1, match="e.fvecs: file is empty")
    (tmp_path / "e.jsonl").write_text("\n  \n")
    cli.fail("import", "y", tmp_path / "e.jsonl", "--metric", "l2", code=1, match="e.jsonl: no vectors")
    assert not cli.data.exists()


@pytest.mark.parametrize("line, match", [
    ('{"id": 1, "vector": [1,2,3,4,5,6,7,8]', r"line 2: invalid JSON: expected ',' or '}'"),
    ('{"id": 1, "vec": [1,2,3,4,5,6,7,8]}', r'line 2: unknown key "vec"'),
    ('{"vector": [1,2,3,4,5,6,7,8]}', r'line 2: missing "id"'),
    ('{"id": 1}', r'line 2: missing "vector"'),
    ('{"id": 1, "id": 2, "vector": [1,2,3,4,5,6,7,8]}', r'line 2: duplicate key "id"'),
    ('{"id": -1, "vector": [1,2,3,4,5,6,7,8]}', r"line 2: id -1 is not a non-negative integer"),
    ('{"id": 1.5, "vector": [1,2,3,4,5,6,7,8]}', r"line 2: id 1.5 is not a non-negative integer"),
    ('{"id": 18446744073709551616, "vector": [1,2,3,4,5,6,7,8]}',
     r"line 2: id 18446744073709551616 does not fit in 64 bits"),
    ('{"id": "", "vector": [1,2,3,4,5,6,7,8]}', r"line 2: id is an empty string"),
    ('{"id": "' + "y" * 257 + '", "vector": [1,2,3,4,5,6,7,8]}',
     r"line 2: id is 257 bytes long; string ids hold at most 256"),
    ('{"id": true, "vector": [1,2,3,4,5,6,7,8]}', r"line 2: invalid JSON: expected an id"),
    ('{"id": 1, "vector": [1,2,3,4,5,6,7,"8"]}', r"line 2: invalid JSON: expected a number"),
    ('{"id": 1, "vector": [1,2,3,4,5,6,7,08]}', r"line 2: invalid JSON"),
    ('{"id": 1, "vector": []}', r"line 2: vector is empty"),
    ('{"id": 1, "vector": [1,2,3,4,5,6,7,8]} trailing', r"line 2: unexpected text after the object"),
    ('[1,2,3,4,5,6,7,8]', r"line 2: invalid JSON: expected '\{'"),
    ('{"id": "a\\qb", "vector": [1,2,3,4,5,6,7,8]}', r"line 2: invalid JSON: bad escape '\\q'"),
    ('{"id": "a\\\x01b", "vector": [1,2,3,4,5,6,7,8]}',
     r"line 2: invalid JSON: bad escape '\\\\x01'"),
    ('{"ke\\u0002y": 1, "id": 1, "vector": [1,2,3,4,5,6,7,8]}',
     r'line 2: unknown key "ke\\x02y"'),
    ('{"id": 1, "v\x02": [1,2,3,4,5,6,7,8]}', r"line 2: invalid JSON: control character"),
    ('{"id": "\\ud800", "vector": [1,2,3,4,5,6,7,8]}', r"line 2: invalid JSON: unpaired surrogate"),
    ('{"id": 1, "vector": [1,2,3,4,5,6,7,8], "payload": {"a": [1,}}', r"line 2: invalid JSON"),
    ('{"id": 1, "vector": [1,2,3,4,5,6,7,8], "payload": ' + "[" * 70 + "]" * 70 + "}",
     r"line 2: JSON nested deeper than 64"),
])
def test_bad_jsonl_lines(cli, tmp_path, existing, line, match):
    good = '{"id": 0, "vector": [0,0,0,0,0,0,0,0]}'
    (tmp_path / "b.jsonl").write_text(good + "\n" + line + "\n" + good + "\n")
    cli.fail("import", "x", tmp_path / "b.jsonl", code=1, match=r"b.jsonl: " + match)
    assert_untouched(cli, "x", 10)


def test_jsonl_invalid_utf8(cli, tmp_path, existing):
    (tmp_path / "u.jsonl").write_bytes(b'{"id": "ab\xff", "vector": [0,0,0,0,0,0,0,0]}\n')
    cli.fail("import", "x", tmp_path / "u.jsonl", code=1, match=r"line 1: invalid UTF-8")
    assert_untouched(cli, "x", 10)


def test_hamming_needs_binary_values(cli, tmp_path):
    x = np.zeros((5, 8), np.float32)
    x[2, 1] = 0.5
    write_fvecs(tmp_path / "h.fvecs", x)
    cli.fail("import", "h", tmp_path / "h.fvecs", "--metric", "hamming", code=1,
             match=r"record 2 has value 0.5 at position 1; metric hamming takes 0/1 values")
    assert not cli.data.exists()


def test_import_into_missing_collection_without_metric(cli, tmp_path, existing):
    write_fvecs(tmp_path / "b.fvecs", base())
    cli.fail("import", "other", tmp_path / "b.fvecs", code=1,
             match=r"collection 'other' does not exist; give --metric")
    cli.fail("import", "other", tmp_path / "b.fvecs", "--dim", DIM, code=1,
             match=r"collection 'other' does not exist")
    assert cli.names() == ["x"]
    assert tree(cli.data) == cli.before


def test_import_without_database(cli, tmp_path):
    write_fvecs(tmp_path / "b.fvecs", base())
    cli.fail("import", "x", tmp_path / "b.fvecs", code=1, match=r"database .* does not exist")
    assert not cli.data.exists()


def test_import_into_directory_that_is_not_a_database(cli, tmp_path):
    write_fvecs(tmp_path / "b.fvecs", base())
    cli.data.mkdir()
    (cli.data / "other.txt").write_text("x")
    cli.fail("import", "x", tmp_path / "b.fvecs", "--metric", "l2", code=1,
             match=r"is not a needle database")
    assert sorted(p.name for p in cli.data.iterdir()) == ["other.txt"]


@pytest.mark.parametrize("args, match", [
    (["--threads", "0"], r"--threads must be in 1\.\.1024, got 0"),
    (["--batch", "abc"], r"--batch: 'abc' is not a whole number"),
    (["--batch", "0"], r"--batch must be in"),
    (["--metric", "manhattan"], r"--metric: .*manhattan"),
    (["--metric", "l2", "--index", "ivf"], r"--index ivf is not supported yet"),
    (["--format", "csv"], r"--format csv is not supported yet"),
])
def test_import_bad_options(cli, tmp_path, args, match):
    write_fvecs(tmp_path / "b.fvecs", base())
    cli.fail("import", "x", tmp_path / "b.fvecs", *args, code=2, match=match)
    assert not cli.data.exists()


def test_import_bad_name_and_missing_args(cli, tmp_path):
    write_fvecs(tmp_path / "b.fvecs", base())
    cli.fail("import", "no/slash", tmp_path / "b.fvecs", "--metric", "l2", code=2,
             match=r"bad collection name 'no/slash'")
    cli.fail("import", "x", code=2, match=r"'import' needs a FILE")
    cli.fail("import", code=2, match=r"'import' needs a collection NAME")
    assert not cli.data.exists()


def test_search_after_failed_import_sees_old_data(cli, tmp_path, existing):
    """A rejected file leaves the stored vectors as they were."""
    ten = base(n=10)
    bad = base(n=10, seed=4)
    bad[9, 0] = np.nan
    write_fvecs(tmp_path / "bad.fvecs", bad)
    cli.fail("import", "x", tmp_path / "bad.fvecs", code=1, match="record 9")
    write_fvecs(tmp_path / "q.fvecs", ten)
    lines = parse_search(cli.run("search", "x", "--queries", tmp_path / "q.fvecs", "--k", 1).stdout)
    assert all(o["results"][0]["distance"] == pytest.approx(0, abs=1e-4) for o in lines)
