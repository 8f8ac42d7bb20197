"""Payloads through the CLI: import keeps each JSON line's "payload" (stored
in canonical form), search --with-payload and get print it verbatim, it
survives restarts (every command is a new process), and a bad payload
anywhere in a file fails the import naming the file and line before
anything is written."""
import json

import numpy as np
import pytest

from conftest import parse_search, tree, write_fvecs, write_jsonl

DIM = 4


def vec(i):
    return [float(i), float(i % 7), 1.0, -float(i % 3)]


def line(i, payload_text=None, id_text=None):
    """One JSON line with the payload given as raw text (None: no key)."""
    pid = id_text if id_text is not None else str(i)
    pay = "" if payload_text is None else ', "payload": ' + payload_text
    return '{"id": ' + pid + ', "vector": ' + json.dumps(vec(i)) + pay + "}"


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def all_points(cli, name, n, tmp_path, *extra):
    """{id: payload} of every point, by an exact search for point 0 with k = n."""
    q = write_fvecs(tmp_path / "q0.fvecs", np.array([vec(0)], np.float32))
    lines = cli.search(name, q, n, "--exact", "--with-payload", *extra)
    return {r["id"]: r["payload"] for r in lines[0]["results"]}


def raw_results(cli, name, tmp_path, k):
    q = write_fvecs(tmp_path / "q0.fvecs", np.array([vec(0)], np.float32))
    return cli.run("search", name, "--queries", q, "--k", k, "--exact", "--with-payload").stdout


# (raw text in the file, canonical text stored and printed)
CANONICAL = [
    ('{ "b" : 1e2 , "a" : [ 1 , 2.50 , -0 ] }', '{"b":100.0,"a":[1,2.5,0]}'),
    ('{"s": "\\u00e9t\\u00e9 \\/ \\ud83d\\ude00", "t": "tab\\there"}',
     '{"s":"été / 😀","t":"tab\\there"}'),
    ('{"nested": {"deep": [true, false, null, {"z": {}}]}, "empty": []}',
     '{"nested":{"deep":[true,false,null,{"z":{}}]},"empty":[]}'),
    ('{"big": 9223372036854775807, "neg": -9223372036854775808, "r": 0.1, "e": 1E-7}',
     '{"big":9223372036854775807,"neg":-9223372036854775808,"r":0.1,"e":1e-7}'),
    ('{}', '{}'),
    ('{"ctl": "\\u0001\\n", "q": "\\"x\\\\"}', '{"ctl":"\\u0001\\n","q":"\\"x\\\\"}'),
]


@pytest.fixture
def stored(cli, tmp_path):
    """Collection 'p' (hnsw, l2) from a file mixing canonical-able payloads,
    null and absent payloads; returns {id: canonical text or None}."""
    lines, want = [], {}
    for i, (raw, canon) in enumerate(CANONICAL):
        lines.append(line(i, raw))
        want[i] = canon
    n = len(CANONICAL)
    lines.append(line(n, "null"))
    lines.append(line(n + 1))
    lines.append(line(n + 2, '{"id": "s"}', id_text='"str-id"'))
    want.update({n: None, n + 1: None, "str-id": '{"id":"s"}'})
    write_lines(tmp_path / "p.jsonl", lines)
    cli.run("import", "p", tmp_path / "p.jsonl", "--metric", "l2", "--batch", 3)
    return want


# ------------------------------------------------------------------ good input

def test_search_with_payload_prints_canonical_payloads(cli, tmp_path, stored):
    out = raw_results(cli, "p", tmp_path, 100)
    results = parse_search(out, payload=True)[0]["results"]
    assert len(results) == len(stored)
    for r in results:
        canon = stored[r["id"]]
        assert r["payload"] == (None if canon is None else json.loads(canon))
        # printed verbatim: the canonical text itself stands in the output
        text = canon if canon is not None else "null"
        assert f',"payload":{text}}}' in out
    assert "1e2" not in out and " " not in out.replace("été / 😀", "")


def test_search_without_flag_is_unchanged(cli, tmp_path, stored):
    """The output of a collection with payloads equals, byte for byte, that of
    the same vectors without payloads."""
    plain = [line(i) for i in range(len(CANONICAL) + 2)] + [line(len(CANONICAL) + 2,
                                                                  id_text='"str-id"')]
    write_lines(tmp_path / "plain.jsonl", plain)
    cli.run("import", "plain", tmp_path / "plain.jsonl", "--metric", "l2", "--batch", 3)
    q = write_fvecs(tmp_path / "q.fvecs", np.array([vec(i) for i in range(5)], np.float32))
    a = cli.run("search", "p", "--queries", q, "--k", 5, "--exact").stdout
    b = cli.run("search", "plain", "--queries", q, "--k", 5, "--exact").stdout
    assert a == b and "payload" not in a
    parse_search(a)


def test_payloads_survive_restarts_and_replacement(cli, tmp_path, stored):
    n = len(CANONICAL)
    # A second import (a new process: the collection reopens from disk)
    # replaces id 0's payload, drops id 1's (no payload key), adds one to a
    # point that had none and adds a new point.
    write_lines(tmp_path / "more.jsonl", [
        line(0, '{"v": 2}'), line(1), line(n + 1, '{"now": "set"}'), line(50, '{"new": true}')])
    cli.run("import", "p", tmp_path / "more.jsonl")
    want = {k: (None if v is None else json.loads(v)) for k, v in stored.items()}
    want.update({0: {"v": 2}, 1: None, n + 1: {"now": "set"}, 50: {"new": True}})
    assert all_points(cli, "p", 100, tmp_path) == want
    cli.run("check", "p")
    assert all_points(cli, "p", 100, tmp_path) == want


def test_search_with_payload_hnsw_and_output_file(cli, tmp_path, stored):
    q = write_fvecs(tmp_path / "q.fvecs", np.array([vec(i) for i in range(3)], np.float32))
    out = tmp_path / "r.jsonl"
    p = cli.run("search", "p", "--queries", q, "--k", 1, "--with-payload", "--output", out)
    assert p.stdout == ""
    lines = parse_search(out.read_text(), payload=True)
    assert [o["results"][0]["payload"] for o in lines] == [json.loads(c) for _, c in CANONICAL[:3]]


def test_with_payload_on_points_without_any(cli, tmp_path):
    x = np.eye(3, dtype=np.float32)
    write_fvecs(tmp_path / "b.fvecs", x)
    cli.run("import", "f", tmp_path / "b.fvecs", "--metric", "l2", "--index", "flat")
    lines = cli.search("f", tmp_path / "b.fvecs", 3, "--with-payload")
    assert all(r["payload"] is None for o in lines for r in o["results"])


def test_query_files_may_carry_any_payload(cli, tmp_path, stored):
    """Query lines are vectors; their "payload" is checked as JSON and ignored."""
    (tmp_path / "q.jsonl").write_text(
        json.dumps({"vector": vec(0), "payload": [1, "not an object"]}) + "\n")
    lines = cli.search("p", tmp_path / "q.jsonl", 1)
    assert lines[0]["results"][0]["id"] == 0


def test_payload_size_limit_edges(cli, tmp_path):
    # {"a":"xxx..."}: 8 bytes around the string
    def sized(n):
        return '{"a":"' + "x" * (n - 8) + '"}'
    write_lines(tmp_path / "edge.jsonl", [line(0, sized(64))])
    cli.run("import", "e", tmp_path / "edge.jsonl", "--metric", "l2", "--index", "flat",
            "--max-payload-bytes", 64)
    write_lines(tmp_path / "over.jsonl", [line(1, sized(65))])
    cli.fail("import", "e", tmp_path / "over.jsonl", "--max-payload-bytes", 64, code=1,
             match=r"over.jsonl: line 1: payload is 65 bytes; the limit is 64")
    # The limit holds for the canonical text too: 1e5 is stored as 100000.0.
    write_lines(tmp_path / "canon.jsonl", [line(2, '{"a":1e5}')])
    cli.fail("import", "e", tmp_path / "canon.jsonl", "--max-payload-bytes", 10, code=1,
             match=r"canon.jsonl: line 1: payload is 14 bytes in canonical form; the limit is 10")
    assert cli.count("e") == 1
    # Over the default 65536 needs the option, which the library gets too.
    big = sized(100000)
    write_lines(tmp_path / "big.jsonl", [line(3, big)])
    cli.fail("import", "e", tmp_path / "big.jsonl", code=1,
             match=r"big.jsonl: line 1: payload is 100000 bytes; the limit is 65536 "
                   r"\(--max-payload-bytes\)")
    cli.run("import", "e", tmp_path / "big.jsonl", "--max-payload-bytes", 100000)
    assert all_points(cli, "e", 10, tmp_path)[3] == json.loads(big)
    got = cli.run("get", "e", 3, "--no-vector").stdout
    assert got == '{"id":3,"payload":' + big + "}\n"


# ------------------------------------------------------------------ bad input

BAD = [
    ("[1, 2]", r"payload must be a JSON object, got an array \(the payload starts at column \d+\)"),
    ('"text"', r"payload must be a JSON object, got a string"),
    ("3.5", r"payload must be a JSON object, got a number"),
    ("true", r"payload must be a JSON object, got a boolean"),
    ('{"a": }', r"invalid JSON: expected a value at column \d+"),
    ('{"a": 1,}', r"invalid JSON: expected a key string"),
    ('{"a": NaN}', r"invalid JSON"),
    ('{"a": 1, "a": 2}', r"payload has a duplicate key"),
    ('{"n": 9223372036854775808}', r"payload has a number out of range"),
    ('{"a": ' * 99 + "{}" + "}" * 99, r"JSON nested deeper than 64"),
    ('{"ok": "' + "x" * 100 + '"}', r"payload is 110 bytes; the limit is 100"),
]


@pytest.fixture
def existing(cli, tmp_path):
    """Collection 'x' (hnsw) holding 10 points with payloads; cli.before keeps
    the database files as they were."""
    write_lines(tmp_path / "ten.jsonl", [line(i, '{"i": %d}' % i) for i in range(10)])
    cli.run("import", "x", tmp_path / "ten.jsonl", "--metric", "l2")
    cli.before = tree(cli.data)
    return "x"


def assert_untouched(cli):
    assert tree(cli.data) == cli.before, "a failed import changed the database files"
    assert cli.count("x") == 10
    assert cli.run("get", "x", 3).stdout == '{"id":3,"vector":[3,3,1,-0],"payload":{"i":3}}\n'


@pytest.mark.parametrize("payload, match", BAD)
def test_bad_payload_on_a_late_line_writes_nothing(cli, tmp_path, existing, payload, match):
    n = 3000  # 30 batches of 100 would land before line 3000 if it were not checked first
    lines = [line(i, '{"k": %d}' % i) for i in range(n)]
    lines[n - 1] = line(n - 1, payload)
    write_lines(tmp_path / "bad.jsonl", lines)
    cli.fail("import", "x", tmp_path / "bad.jsonl", "--batch", 100, "--max-payload-bytes", 100,
             code=1, match=rf"bad.jsonl: line {n}: " + match)
    assert_untouched(cli)
    # A new collection is not created either.
    cli.fail("import", "y", tmp_path / "bad.jsonl", "--metric", "l2", "--batch", 100,
             "--max-payload-bytes", 100, code=1, match=rf"line {n}: ")
    assert cli.names() == ["x"]


def test_payload_with_invalid_utf8(cli, tmp_path, existing):
    good = line(0, '{"a": 1}').encode()
    bad = line(1, '{"a": "ab\xffcd"}').encode("latin-1")
    (tmp_path / "u.jsonl").write_bytes(good + b"\n" + bad + b"\n")
    cli.fail("import", "x", tmp_path / "u.jsonl", code=1,
             match=r"u.jsonl: line 2: invalid UTF-8 in a string at column \d+")
    # Overlong encodings and surrogates are invalid too.
    for seq in (b"\xc0\xaf", b"\xed\xa0\x80"):
        bad = line(1, '{"a": "@"}').encode().replace(b"@", seq)
        (tmp_path / "u.jsonl").write_bytes(good + b"\n" + bad + b"\n")
        cli.fail("import", "x", tmp_path / "u.jsonl", code=1, match=r"line 2: invalid UTF-8")
    assert_untouched(cli)


def test_bad_payload_on_line_50000(cli, tmp_path, existing):
    n = 50000
    text = "".join('{"id":%d,"vector":[%d,1,2,3],"payload":{"n":%d}}\n' % (i, i, i)
                   for i in range(n - 1))
    last = '{"id":%d,"vector":[1,1,2,3],"payload":{"n":[1,2}}' % (n - 1)
    (tmp_path / "big.jsonl").write_text(text + last + "\n")
    col = last.index("2}") + 2
    cli.fail("import", "x", tmp_path / "big.jsonl", "--batch", 1000, code=1,
             match=rf"big.jsonl: line 50000: invalid JSON: expected ',' or '\]' at column {col}")
    assert_untouched(cli)


@pytest.mark.parametrize("value, match", [
    (0, r"--max-payload-bytes must be in 2\.\.16777216, got 0"),
    (1, r"--max-payload-bytes must be in 2\.\.16777216, got 1"),
    (16777217, r"--max-payload-bytes must be in 2\.\.16777216, got 16777217"),
    ("abc", r"--max-payload-bytes: 'abc' is not a whole number"),
    ("-5", r"--max-payload-bytes must be in 2\.\.16777216, got -5"),
])
def test_bad_max_payload_bytes(cli, tmp_path, value, match):
    write_lines(tmp_path / "a.jsonl", [line(0, '{"a": 1}')])
    cli.fail("import", "a", tmp_path / "a.jsonl", "--metric", "l2", "--max-payload-bytes", value,
             code=2, match=match)
    assert not cli.data.exists()


def test_with_payload_refuses_ivecs_output(cli, tmp_path, stored):
    q = write_fvecs(tmp_path / "q.fvecs", np.array([vec(0)], np.float32))
    cli.fail("search", "p", "--queries", q, "--k", 1, "--with-payload", "--output",
             tmp_path / "r.ivecs", code=2, match=r"--with-payload does not go with ivecs output")
    assert not (tmp_path / "r.ivecs").exists()


# ------------------------------------------------------------------ get

def test_get_prints_points_in_argument_order(cli, tmp_path, stored):
    n = len(CANONICAL)
    p = cli.run("get", "p", 1, "str-id", 0, n, n + 1, "--no-vector")
    assert p.stdout.splitlines() == [
        '{"id":1,"payload":' + CANONICAL[1][1] + "}",
        '{"id":"str-id","payload":{"id":"s"}}',
        '{"id":0,"payload":' + CANONICAL[0][1] + "}",
        '{"id":%d,"payload":null}' % n,
        '{"id":%d,"payload":null}' % (n + 1),
    ]
    assert p.stderr == ""


def test_get_prints_vector_and_payload(cli, tmp_path):
    write_jsonl(tmp_path / "v.jsonl", np.array([[0.5, -2, 3e-3, 1e6], [1, 1, 1, 1]], np.float32),
                ids=["v", 7], payloads=[{"k": "v"}, None])
    cli.run("import", "v", tmp_path / "v.jsonl", "--metric", "l2", "--index", "flat")
    out = cli.run("get", "v", "v", 7).stdout.splitlines()
    got = [json.loads(o) for o in out]
    assert [list(g) for g in got] == [["id", "vector", "payload"]] * 2
    assert got == [{"id": "v", "vector": [0.5, -2, 0.003, 1e6], "payload": {"k": "v"}},
                   {"id": 7, "vector": [1, 1, 1, 1], "payload": None}]
    assert cli.run("get", "v", 7, "--no-vector").stdout == '{"id":7,"payload":null}\n'


def test_get_vectors_as_stored(cli, tmp_path):
    """Cosine vectors come back unit length, hamming ones as 0/1."""
    write_jsonl(tmp_path / "c.jsonl", np.array([[3, 4]], np.float32))
    cli.run("import", "c", tmp_path / "c.jsonl", "--metric", "cosine", "--index", "flat")
    got = json.loads(cli.run("get", "c", 0).stdout)["vector"]
    assert got == pytest.approx([0.6, 0.8], abs=1e-6)
    bits = np.array([[1, 0, 1, 1, 0, 0, 0, 1, 1]], np.float32)
    write_jsonl(tmp_path / "h.jsonl", bits)
    cli.run("import", "h", tmp_path / "h.jsonl", "--metric", "hamming", "--index", "flat")
    assert json.loads(cli.run("get", "h", 0).stdout)["vector"] == bits[0].tolist()


def test_get_string_and_number_ids(cli, tmp_path):
    x = np.eye(4, dtype=np.float32)
    ids = [42, "42", "007", "18446744073709551616"]
    write_jsonl(tmp_path / "s.jsonl", x, ids=ids, payloads=[{"i": i} for i in range(4)])
    cli.run("import", "s", tmp_path / "s.jsonl", "--metric", "l2", "--index", "flat")
    # Plain decimals are numbers; a leading zero or more than 64 bits make a string.
    out = cli.run("get", "s", "42", "007", "18446744073709551616",
                  "--no-vector").stdout.splitlines()
    assert [json.loads(o) for o in out] == [{"id": 42, "payload": {"i": 0}},
                                            {"id": "007", "payload": {"i": 2}},
                                            {"id": "18446744073709551616", "payload": {"i": 3}}]
    out = cli.run("get", "s", "42", "--string-ids", "--no-vector").stdout
    assert json.loads(out) == {"id": "42", "payload": {"i": 1}}


def test_get_absent_ids(cli, tmp_path, stored):
    p = cli.fail("get", "p", 0, 999, "nope", "tab\there", 1, code=1,
                 match=r"^needle: no point with id 999 in 'p'\n"
                       r"needle: no point with id \"nope\" in 'p'\n"
                       r"needle: no point with id \"tab\\x09here\" in 'p'\n$")
    assert [json.loads(o)["id"] for o in p.stdout.splitlines()] == [0, 1]
    p = cli.fail("get", "p", 0, "--string-ids", code=1, match=r"no point with id \"0\" in 'p'")
    assert p.stdout == ""


def test_get_bad_arguments(cli, tmp_path, stored):
    cli.fail("get", "p", code=2, match=r"'get' needs at least one ID")
    cli.fail("get", code=2, match=r"'get' needs a collection NAME")
    cli.fail("get", "p", "", code=2, match=r"an ID is empty")
    cli.fail("get", "p", "y" * 257, code=2, match=r"is 257 bytes long; string ids hold at most 256")
    cli.fail("get", "bad name", 1, code=2, match=r"bad collection name")
    cli.fail("get", "p", 1, "--with-payload", code=2, match=r"unknown option '--with-payload'")
    cli.fail("get", "p", 1, "--no-vector=1", code=2, match=r"--no-vector")
    cli.fail("get", "q", 1, code=1, match=r"collection 'q' does not exist")
    assert "get" in cli.run("help", data=False).stdout
    assert "--string-ids" in cli.run("help", "get", data=False).stdout
    assert "--no-vector" in cli.run("get", "--help", data=False).stdout


def test_get_without_database(cli):
    cli.fail("get", "p", 1, code=1, match=r"database .* does not exist")
    assert not cli.data.exists()
