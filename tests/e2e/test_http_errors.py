"""Bad input to `needle serve` (docs/HTTP.md "Errors", SPEC section 6): each
gets its status and code, a body of exactly {"error":{"code","message"}}
whose message names the problem, never a 5xx, nothing written, and the
server answers health afterwards (checked after every test). Also: auth
(401/403, both header forms, the read key on every route), 404/405,
body limits (413 by Content-Length and chunked), request timeouts (408),
features of later releases (501).
"""
import io
import json
import re
import socket
import time
import urllib.parse

import pytest

from server import NeedleServer, count, err, ok, parse_body, read_response


# ------------------------------------------------------------------ helpers

def bad(resp, *names, match=None):
    return err(resp, 400, "invalid_argument", *names, match=match)


def alive(s):
    assert s.proc is not None and s.proc.poll() is None, "the server died"
    st, body = s.request("GET", "/v1/health")
    assert st == 200 and body["status"] == "ok", (st, body)


def closed(sock, timeout=5):
    """True when the peer closes the connection within timeout."""
    sock.settimeout(timeout)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if sock.recv(65536) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def read_to_close(sock, timeout=5):
    """Every byte the peer sends until it closes the connection (a reset
    counts as closed); fails when it is still open after `timeout` s."""
    sock.settimeout(timeout)
    deadline = time.time() + timeout
    data = b""
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return data
            data += d
            assert time.time() < deadline, f"still sending after {timeout}s: {data[:200]!r}"
    except (ConnectionResetError, BrokenPipeError):
        return data
    except socket.timeout:
        raise AssertionError(f"the connection is still open after {timeout}s: {data[:200]!r}")


def pad(body, size):
    """A JSON object's text, padded with spaces before its closing brace to
    exactly `size` bytes."""
    body = body.encode() if isinstance(body, str) else body
    assert body.endswith(b"}") and len(body) <= size, (len(body), size)
    out = body[:-1] + b" " * (size - len(body)) + b"}"
    assert len(out) == size
    return out


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with NeedleServer(tmp_path_factory.mktemp("err") / "data", "--threads", "3") as s:
        # "e": dimension 4 (HNSW); "seven": dimension 7 (flat); both hold points
        ok(s.request("PUT", "/v1/collections/e", {"dimension": 4, "metric": "l2"}), 201)
        ok(s.request("PUT", "/v1/collections/seven", {"dimension": 7, "metric": "cosine", "index": "flat"}), 201)
        ok(s.request("POST", "/v1/collections/e/points",
                     {"points": [{"id": 1, "vector": [1, 2, 3, 4], "payload": {"a": 1}},
                                 {"id": "s", "vector": [4, 3, 2, 1]}]}))
        ok(s.request("POST", "/v1/collections/seven/points",
                     {"points": [{"id": i, "vector": [i, 1, 1, 1, 1, 1, 1]} for i in range(1, 4)]}))
        yield s


@pytest.fixture(autouse=True)
def still_up(srv):
    """After each test: the server is alive, answers health, and "e" still
    holds exactly its two points (no bad request wrote anything)."""
    yield
    alive(srv)
    assert count(srv, "e") == 2
    assert ok(srv.request("GET", "/v1/collections/e/points/1")) == \
        {"id": 1, "vector": [1.0, 2.0, 3.0, 4.0], "payload": {"a": 1}}


def post(s, path, raw, **kw):
    return s.request("POST", path, raw=raw if isinstance(raw, bytes) else raw.encode(), **kw)


P = "/v1/collections/e"


# ------------------------------------------------------------------ bad JSON

@pytest.mark.parametrize("path", [P + "/points", P + "/search", P + "/points/get", P + "/count",
                                  P + "/scroll", P + "/points/delete", P + "/search/batch"])
def test_bad_json_names_line_and_column(srv, path):
    body = '{\n  "k": 3,\n  oops\n}'
    msg = bad(post(srv, path, body), match=r"line\D{0,3}3\b")
    assert re.search(r"col(umn)?\D{0,3}\d+", msg, re.I), msg


def test_bad_json_in_create_and_patch(srv):
    msg = bad(srv.request("PUT", "/v1/collections/newc", raw=b'{"dimension": 4,\n"metric": }'),
              match=r"line\D{0,3}2\b")
    assert re.search(r"col(umn)?\D{0,3}\d+", msg, re.I), msg
    err(srv.request("GET", "/v1/collections/newc"), 404, "not_found")
    msg = bad(srv.request("PATCH", P + "/points/1", raw=b'{"payload": {"a": 2,}}'),
              match=r"line\D{0,3}1\b")
    assert re.search(r"col(umn)?\D{0,3}\d+", msg, re.I), msg


@pytest.mark.parametrize("raw", [b"", b" ", b"null", b"[]", b"5", b'"str"', b"{} {}", b"{} x",
                                 b"{", b"}", b'{"k":3', b"{'k':3}", b'{"k":3,}', b"\xef\xbb\xbf{}x",
                                 b'{"a":1,"a":2}'])
def test_not_one_json_object(srv, raw):
    if raw == b'{"a":1,"a":2}':
        bad(post(srv, P + "/count", raw), "a")  # an unknown field, twice
        return
    bad(post(srv, P + "/search", raw))
    bad(post(srv, P + "/points", raw))


def test_empty_body_on_create(srv):
    bad(srv.request("PUT", "/v1/collections/newc2", raw=b""))
    err(srv.request("GET", "/v1/collections/newc2"), 404, "not_found")


# ------------------------------------------------------------------ nesting

def test_nesting_100000_deep(srv):
    deep = "[" * 100000 + "]" * 100000
    for path, body in [(P + "/search", '{"vector":' + deep + "}"),
                       (P + "/points", '{"points":[{"id":9,"vector":[1,2,3,4],"payload":{"x":' + deep + "}}]}"),
                       (P + "/count", deep),
                       (P + "/scroll", '{"a":' * 100000 + "1" + "}" * 100000)]:
        bad(post(srv, path, body), match=r"nest|deep|depth")
        alive(srv)
    bad(srv.request("PUT", "/v1/collections/deep", raw=("{\"fields\":" + deep + "}").encode()),
        match=r"nest|deep|depth")
    err(srv.request("GET", "/v1/collections/deep"), 404, "not_found")
    # unterminated: 100,000 opening brackets only
    bad(post(srv, P + "/search", "[" * 100000))


def payload_of_depth(d):
    """A payload object whose nesting depth is d (an empty object is 1)."""
    return "{\"x\":" * (d - 1) + "{}" + "}" * (d - 1)


def test_nesting_limit_64(srv):
    # {"points":[{"id":..,"vector":[..],"payload":P}]}: P sits at depth 3, so
    # the body's depth is 3 + depth(P)
    ok(post(srv, "/v1/collections/seven/points",
            '{"points":[{"id":50,"vector":[1,2,3,4,5,6,7],"payload":' + payload_of_depth(61) + "}]}"))
    r = ok(srv.request("GET", "/v1/collections/seven/points/50"))
    depth, p = 0, r["payload"]
    while isinstance(p, dict):
        depth += 1
        p = p.get("x")
    assert depth == 61
    bad(post(srv, "/v1/collections/seven/points",
             '{"points":[{"id":51,"vector":[1,2,3,4,5,6,7],"payload":' + payload_of_depth(62) + "}]}"),
        match=r"nest|deep|depth")
    err(srv.request("GET", "/v1/collections/seven/points/51"), 404, "not_found")
    ok(srv.request("POST", "/v1/collections/seven/points/delete", {"ids": [50]}))


# ------------------------------------------------------------------ numbers in vectors

@pytest.mark.parametrize("num", ["NaN", "nan", "Infinity", "-Infinity", "inf", "1e999", "-1e999",
                                 "1e39", "-3.5e38", "1e400", '"1"', "null", "true", "[1]", "{}"])
def test_bad_numbers_in_vectors(srv, num):
    body = '{"points":[{"id":77,"vector":[1,2,' + num + ',4]}]}'
    bad(post(srv, P + "/points", body))
    err(srv.request("GET", P + "/points/77"), 404, "not_found")
    bad(post(srv, P + "/search", '{"vector":[1,' + num + ',3,4],"k":1}'))
    bad(post(srv, P + "/search/batch", '{"searches":[{"vector":[1,2,3,4]},{"vector":[1,' + num + ',3,4]}]}'))
    bad(post(srv, P + "/points", '{"id":77,"vector":[' + num + ',2,3,4]}\n',
             headers={"Content-Type": "application/x-ndjson"}))


def test_finite_extremes_are_fine(srv):
    ok(post(srv, "/v1/collections/seven/points",
            '{"points":[{"id":60,"vector":[3.4e38,-3.4e38,1e-45,0,-0.0,1e-300,5]}]}'))
    ok(srv.request("POST", "/v1/collections/seven/points/delete", {"ids": [60]}))


def test_non_finite_payload_numbers(srv):
    for num in ("1e999", "NaN", "Infinity"):
        bad(post(srv, P + "/points", '{"points":[{"id":78,"vector":[1,2,3,4],"payload":{"a":' + num + "}}]}"))
    err(srv.request("GET", P + "/points/78"), 404, "not_found")


# ------------------------------------------------------------------ dimensions

def test_wrong_dimension_names_both_numbers(srv):
    msg = bad(srv.request("POST", "/v1/collections/seven/points",
                          {"points": [{"id": 9, "vector": [1, 2, 3, 4, 5]}]}))
    assert re.search(r"\b5\b", msg) and re.search(r"\b7\b", msg), msg
    msg = bad(srv.request("POST", "/v1/collections/seven/search", {"vector": [1] * 9, "k": 1}))
    assert re.search(r"\b9\b", msg) and re.search(r"\b7\b", msg), msg
    msg = bad(srv.request("POST", "/v1/collections/seven/search/batch",
                          {"searches": [{"vector": [1] * 7}, {"vector": [1] * 11}]}))
    assert re.search(r"\b11\b", msg) and re.search(r"\b7\b", msg), msg
    msg = bad(srv.request("POST", "/v1/collections/seven/points",
                          raw=b'{"id":9,"vector":[1,2,3,4,5,6,7]}\n{"id":10,"vector":[1,2,3]}\n',
                          headers={"Content-Type": "application/x-ndjson"}))
    assert re.search(r"\b3\b", msg) and re.search(r"\b7\b", msg), msg
    assert count(srv, "seven") == 3
    bad(srv.request("POST", "/v1/collections/seven/points", {"points": [{"id": 9, "vector": []}]}))
    bad(srv.request("POST", "/v1/collections/seven/search", {"vector": [], "k": 1}))
    bad(srv.request("POST", "/v1/collections/seven/points", {"points": [{"id": 9}]}), "vector")
    bad(srv.request("POST", "/v1/collections/seven/points",
                    {"points": [{"id": 9, "vector": "1,2,3,4,5,6,7"}]}), "vector")
    bad(srv.request("POST", "/v1/collections/seven/search", {"k": 1}), "vector")
    assert count(srv, "seven") == 3


# ------------------------------------------------------------------ search parameters

@pytest.mark.parametrize("k", [0, -1, 10001, 10 ** 9, 10 ** 30, 1.5, "10", None, True])
def test_k_outside_1_to_10000(srv, k):
    # 10^30 is no 64-bit integer: refused by the JSON reader (line/column)
    names = () if k == 10 ** 30 else ("k",)
    bad(srv.request("POST", P + "/search", {"vector": [1, 2, 3, 4], "k": k}), *names)
    bad(srv.request("POST", P + "/search/batch", {"searches": [{"vector": [1, 2, 3, 4], "k": k}]}), *names)


def test_k_bounds_accepted(srv):
    assert len(ok(srv.request("POST", P + "/search", {"vector": [1, 2, 3, 4], "k": 10000}))["results"]) == 2
    assert len(ok(srv.request("POST", P + "/search", {"vector": [1, 2, 3, 4], "k": 1}))["results"]) == 1


@pytest.mark.parametrize("field, value", [("offset", -1), ("offset", 1.5), ("offset", 10000),
                                          ("ef", 0), ("ef", -5), ("ef", "64"), ("exact", "yes"),
                                          ("exact", 1), ("min_score", "0.5"), ("min_score", "NaN"),
                                          ("with_payload", 1), ("with_vector", "true")])
def test_bad_search_parameters(srv, field, value):
    body = {"vector": [1, 2, 3, 4], "k": 1, field: value}
    if value == "NaN":
        raw = json.dumps({"vector": [1, 2, 3, 4], "k": 1})[:-1] + ',"min_score":NaN}'
        bad(post(srv, P + "/search", raw))
        return
    bad(srv.request("POST", P + "/search", body), field)


def test_k_plus_offset_over_10000(srv):
    bad(srv.request("POST", P + "/search", {"vector": [1, 2, 3, 4], "k": 10000, "offset": 1}))
    bad(srv.request("POST", P + "/search", {"vector": [1, 2, 3, 4], "k": 5000, "offset": 5001}))
    ok(srv.request("POST", P + "/search", {"vector": [1, 2, 3, 4], "k": 5000, "offset": 5000}))


def test_ef_below_k_plus_offset(srv):
    """HTTP.md: ef >= k + offset."""
    bad(srv.request("POST", P + "/search", {"vector": [1, 2, 3, 4], "k": 5, "ef": 2}), "ef")
    bad(srv.request("POST", P + "/search", {"vector": [1, 2, 3, 4], "k": 3, "offset": 3, "ef": 5}), "ef")
    ok(srv.request("POST", P + "/search", {"vector": [1, 2, 3, 4], "k": 3, "offset": 3, "ef": 6}))


def test_search_batch_sizes(srv):
    bad(srv.request("POST", P + "/search/batch", {"searches": []}))
    bad(srv.request("POST", P + "/search/batch",
                    {"searches": [{"vector": [1, 2, 3, 4], "k": 1}] * 1025}))
    bad(srv.request("POST", P + "/search/batch", {}), "searches")
    bad(srv.request("POST", P + "/search/batch", {"searches": {"vector": [1, 2, 3, 4]}}), "searches")
    bad(srv.request("POST", P + "/search/batch", {"searches": [5]}))


# ------------------------------------------------------------------ UTF-8

INVALID_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"a\x80b", b"\xf8\x88\x80\x80\x80",
                b"\xf4\x90\x80\x80"]


@pytest.mark.parametrize("seq", INVALID_UTF8)
def test_invalid_utf8_in_strings(srv, seq):
    bad(post(srv, P + "/points", b'{"points":[{"id":80,"vector":[1,2,3,4],"payload":{"s":"x' + seq + b'"}}]}'),
        match=r"utf|decode")
    bad(post(srv, P + "/points", b'{"points":[{"id":80,"vector":[1,2,3,4],"payload":{"k' + seq + b'":1}}]}'),
        match=r"utf|decode")
    bad(post(srv, P + "/points", b'{"points":[{"id":"i' + seq + b'","vector":[1,2,3,4]}]}'), match=r"utf|decode")
    bad(post(srv, P + "/points/get", b'{"ids":["' + seq + b'"]}'), match=r"utf|decode")
    bad(srv.request("PATCH", P + "/points/1", raw=b'{"payload":{"s":"' + seq + b'"}}'), match=r"utf|decode")
    bad(post(srv, P + "/points", b'{"id":80,"vector":[1,2,3,4],"payload":{"s":"' + seq + b'"}}\n',
             headers={"Content-Type": "application/x-ndjson"}), match=r"utf|decode")
    err(srv.request("GET", P + "/points/80"), 404, "not_found")


def test_lone_surrogate_escape(srv):
    bad(post(srv, P + "/points", b'{"points":[{"id":81,"vector":[1,2,3,4],"payload":{"s":"\\ud800"}}]}'))
    bad(post(srv, P + "/points", b'{"points":[{"id":"\\udc00x","vector":[1,2,3,4]}]}'))
    err(srv.request("GET", P + "/points/81"), 404, "not_found")


def test_invalid_utf8_in_path(srv):
    bad(srv.request("GET", "/v1/collections/%FF"))
    bad(srv.request("GET", P + "/points/%FF"), match=r"utf|decode")
    bad(srv.request("GET", P + "/points/a%C0%AFb"), match=r"utf|decode")
    bad(srv.request("PATCH", P + "/points/%ED%A0%80", {"payload": {}}), match=r"utf|decode")


def test_valid_utf8_everywhere(srv):
    sid = "ü✓𝄞\u0080\u07ff\uffff"
    ok(srv.request("POST", "/v1/collections/seven/points",
                   {"points": [{"id": sid, "vector": [1] * 7, "payload": {sid: sid}}]}))
    r = ok(srv.request("GET", "/v1/collections/seven/points/" + urllib.parse.quote(sid, safe="")))
    assert r["id"] == sid and r["payload"] == {sid: sid}
    ok(srv.request("POST", "/v1/collections/seven/points/delete", {"ids": [sid]}))


# ------------------------------------------------------------------ names

BAD_NAMES = ["a.b", "x" * 65, "a%20b", "a%2Fb", "%C3%A9", "..", ".", "a b".replace(" ", "%09"),
             "a%00b", "a:b", "a~b", "a%2Eb", "%40x"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_collection_names(srv, name):
    base = "/v1/collections/" + name
    m = r"name|path"
    bad(srv.request("PUT", base, {"dimension": 4, "metric": "l2"}), match=m)
    bad(srv.request("GET", base), match=m)
    bad(srv.request("DELETE", base), match=m)
    bad(srv.request("POST", base + "/points", {"points": [{"id": 1, "vector": [1, 2, 3, 4]}]}), match=m)
    bad(srv.request("POST", base + "/search", {"vector": [1, 2, 3, 4]}), match=m)
    bad(srv.request("POST", base + "/count", {}), match=m)
    names = [c["name"] for c in ok(srv.request("GET", "/v1/collections"))["collections"]]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", n) for n in names), names


def test_name_64_is_fine_65_is_not(srv):
    ok(srv.request("PUT", "/v1/collections/" + "n" * 64, {"dimension": 2, "metric": "l2"}), 201)
    ok(srv.request("DELETE", "/v1/collections/" + "n" * 64))
    bad(srv.request("PUT", "/v1/collections/" + "n" * 65, {"dimension": 2, "metric": "l2"}), match=r"name")


# ------------------------------------------------------------------ create config

@pytest.mark.parametrize("body, name", [
    ({"metric": "l2"}, "dimension"),
    ({"dimension": 4}, "metric"),
    ({"dimension": 0, "metric": "l2"}, "dimension"),
    ({"dimension": -4, "metric": "l2"}, "dimension"),
    ({"dimension": 65537, "metric": "l2"}, "dimension"),
    ({"dimension": 2 ** 40, "metric": "l2"}, "dimension"),
    ({"dimension": 4.5, "metric": "l2"}, "dimension"),
    ({"dimension": "4", "metric": "l2"}, "dimension"),
    ({"dimension": 4, "metric": "euclid"}, "metric"),
    ({"dimension": 4, "metric": 3}, "metric"),
    ({"dimension": 4, "metric": "l2", "index": "tree"}, "index"),
    ({"dimension": 4, "metric": "l2", "index": {"type": "tree"}}, "index"),
    ({"dimension": 4, "metric": "l2", "index": 5}, "index"),
    ({"dimension": 4, "metric": "l2", "index": {"type": "hnsw", "m": 0}}, "m"),
    ({"dimension": 4, "metric": "l2", "index": {"type": "hnsw", "m": "16"}}, "m"),
    ({"dimension": 4, "metric": "l2", "index": {"type": "hnsw", "ef_construction": -1}}, "ef_construction"),
    ({"dimension": 4, "metric": "l2", "quantization": 7}, "quantization"),
    ({"dimension": 4, "metric": "l2", "fields": []}, "fields"),
])
def test_bad_create_config(srv, body, name):
    bad(srv.request("PUT", "/v1/collections/cfg", body), name)
    err(srv.request("GET", "/v1/collections/cfg"), 404, "not_found")


def test_unknown_quantization_type(srv):
    """HTTP.md: a quantization.type other than none is 501 `unsupported`
    naming it, an unknown name too; nothing created."""
    err(srv.request("PUT", "/v1/collections/cfg",
                    {"dimension": 4, "metric": "l2", "quantization": {"type": "bogus"}}),
        501, "unsupported", "bogus")
    err(srv.request("GET", "/v1/collections/cfg"), 404, "not_found")


# ------------------------------------------------------------------ ids

BAD_IDS = ["", "x" * 300, "x" * 257, "é" * 129, -1, -(2 ** 63), 2 ** 63, 2 ** 64, 10 ** 30, 1.5, 1.0,
           1e3, {"a": 1}, [1], None, True, "a\u0000b"]


@pytest.mark.parametrize("bid", BAD_IDS, ids=lambda v: repr(v)[:20])
def test_bad_ids(srv, bid):
    raw_id = json.dumps(bid)
    if bid == 1e3:
        raw_id = "1e3"
    if bid == 1.0:
        raw_id = "1.0"
    bad(post(srv, P + "/points", '{"points":[{"id":' + raw_id + ',"vector":[1,2,3,4]}]}'), "id")
    bad(post(srv, P + "/points", '{"id":' + raw_id + ',"vector":[1,2,3,4]}\n',
             headers={"Content-Type": "application/x-ndjson"}), "id")
    bad(post(srv, P + "/points/get", '{"ids":[1,' + raw_id + "]}"), "id")
    bad(post(srv, P + "/points/delete", '{"ids":[' + raw_id + ",1]}"), "id")
    assert count(srv, "e") == 2


def test_good_id_bounds(srv):
    for gid in ["x" * 256, "é" * 128, 0, 2 ** 63 - 1, "0", " "]:
        ok(srv.request("POST", P + "/points", {"points": [{"id": gid, "vector": [1, 2, 3, 4]}]}))
        r = ok(srv.request("POST", P + "/points/get", {"ids": [gid]}))
        assert [p["id"] for p in r["points"]] == [gid]
        assert ok(srv.request("POST", P + "/points/delete", {"ids": [gid]})) == {"deleted": 1}


def test_digit_ids_in_path_over_2_63(srv):
    """HTTP.md: a segment of decimal digits only is an integer id; integer
    ids are 0..2^63-1, so a larger one is a bad id (400), not a string."""
    bad(srv.request("GET", P + "/points/9223372036854775808"), "id")
    bad(srv.request("GET", P + "/points/99999999999999999999"), "id")
    bad(srv.request("PATCH", P + "/points/18446744073709551616", {"payload": {}}), "id")


def test_bad_ids_in_path(srv):
    bad(srv.request("GET", P + "/points/" + "x" * 300), "id")
    bad(srv.request("GET", P + "/points/" + "x" * 257), "id")
    bad(srv.request("GET", P + "/points/a%00b"), match=r"id|path")
    bad(srv.request("PATCH", P + "/points/" + "x" * 300, {"payload": {}}), "id")
    # a path segment that is not only digits is a string id: these are absent
    for seg in ["-1", "1.5", "+1", "1e3", "0x10"]:
        err(srv.request("GET", P + "/points/" + seg), 404, "not_found")
    err(srv.request("GET", P + "/points/9223372036854775807"), 404, "not_found")


def test_ids_must_be_an_array(srv):
    bad(srv.request("POST", P + "/points/get", {"ids": 1}), "ids")
    bad(srv.request("POST", P + "/points/get", {}), "ids")
    bad(srv.request("POST", P + "/points/delete", {"ids": "1"}), "ids")
    bad(srv.request("POST", P + "/points/delete", {}), "ids")
    bad(srv.request("POST", P + "/points", {}), "points")
    bad(srv.request("POST", P + "/points", {"points": {"id": 1, "vector": [1, 2, 3, 4]}}), "points")
    bad(srv.request("POST", P + "/points", {"points": [5]}))
    bad(srv.request("PATCH", P + "/points/1", {}), "payload")
    bad(srv.request("PATCH", P + "/points/1", {"payload": [1]}), "payload")
    bad(srv.request("PATCH", P + "/points/1", {"payload": "x"}), "payload")
    bad(srv.request("POST", P + "/points", {"points": [{"id": 5, "vector": [1, 2, 3, 4], "payload": [1]}]}),
        "payload")
    bad(srv.request("POST", P + "/points", {"points": [{"id": 5, "vector": [1, 2, 3, 4], "payload": 3}]}),
        "payload")


# ------------------------------------------------------------------ unknown fields

@pytest.mark.parametrize("method, path, body, field", [
    ("PUT", "/v1/collections/uf", {"dimension": 4, "metric": "l2", "bogus_a": 1}, "bogus_a"),
    ("PUT", "/v1/collections/uf", {"dimension": 4, "metric": "l2",
                                   "index": {"type": "hnsw", "bogus_b": 1}}, "bogus_b"),
    ("PUT", "/v1/collections/uf", {"dimension": 4, "metric": "l2",
                                   "quantization": {"type": "none", "bogus_q": 1}}, "bogus_q"),
    ("POST", P + "/points", {"points": [{"id": 5, "vector": [1, 2, 3, 4]}], "bogus_c": 1}, "bogus_c"),
    ("POST", P + "/points", {"points": [{"id": 5, "vector": [1, 2, 3, 4], "bogus_d": 1}]}, "bogus_d"),
    ("POST", P + "/points/get", {"ids": [1], "bogus_e": 1}, "bogus_e"),
    ("POST", P + "/points/delete", {"ids": [1], "bogus_f": 1}, "bogus_f"),
    ("PATCH", P + "/points/1", {"payload": {"z": 1}, "bogus_g": 1}, "bogus_g"),
    ("POST", P + "/search", {"vector": [1, 2, 3, 4], "bogus_h": 1}, "bogus_h"),
    ("POST", P + "/search", {"vector": [1, 2, 3, 4], "limit": 3}, "limit"),
    ("POST", P + "/search/batch", {"searches": [{"vector": [1, 2, 3, 4]}], "bogus_i": 1}, "bogus_i"),
    ("POST", P + "/search/batch", {"searches": [{"vector": [1, 2, 3, 4], "bogus_j": 1}]}, "bogus_j"),
    ("POST", P + "/count", {"bogus_k": 1}, "bogus_k"),
    ("POST", P + "/scroll", {"limit": 5, "bogus_l": 1}, "bogus_l"),
])
def test_unknown_fields(srv, method, path, body, field):
    try:
        bad(srv.request(method, path, body), field)
    finally:
        st, _ = srv.request("GET", "/v1/collections/uf")
        if st == 200:
            srv.request("DELETE", "/v1/collections/uf")
        assert st == 404, "the collection was created"
    err(srv.request("GET", P + "/points/5"), 404, "not_found")
    r = ok(srv.request("GET", P + "/points/1"))
    assert r["payload"] == {"a": 1}


def test_unknown_field_in_ndjson_line(srv):
    bad(srv.request("POST", P + "/points", raw=b'{"id":5,"vector":[1,2,3,4],"bogus_m":1}\n',
                    headers={"Content-Type": "application/x-ndjson"}), "bogus_m")


def test_scroll_bad_arguments(srv):
    for body in ({"limit": 0}, {"limit": -1}, {"limit": "5"}, {"limit": 1.5},
                 {"with_payload": "yes"}, {"with_vector": 0}, {"cursor": {"a": 1}},
                 {"cursor": 1.5}, {"cursor": -1}, {"cursor": ""}):
        bad(srv.request("POST", P + "/scroll", body))


# ------------------------------------------------------------------ later features: 501

@pytest.mark.parametrize("field, value", [("text", "machine learning"),
                                          ("text_fields", ["title"]), ("fusion", {"method": "rrf"}),
                                          ("rerank", {"method": "mmr", "lambda": 0.7}), ("nprobe", 8)])
def test_search_features_not_yet_supported(srv, field, value):
    body = {"vector": [1, 2, 3, 4], "k": 3, field: value}
    err(srv.request("POST", P + "/search", body), 501, "unsupported", field)
    err(srv.request("POST", P + "/search/batch", {"searches": [body]}), 501, "unsupported", field)


def test_text_search_without_vector_is_unsupported(srv):
    err(srv.request("POST", P + "/search", {"text": "hello", "k": 3}), 501, "unsupported", "text")


@pytest.mark.parametrize("extra, name", [
    ({"quantization": {"type": "pq"}}, "pq"),
    ({"quantization": {"type": "int8"}}, "int8"),
    ({"quantization": {"type": "fp16"}}, "fp16"),
    ({"quantization": {"type": "binary"}}, "binary"),
    ({"index": "ivf"}, "ivf"),
    ({"index": {"type": "ivf", "nlist": 16}}, "ivf"),
])
def test_create_features_not_yet_supported(srv, extra, name):
    body = {"dimension": 4, "metric": "l2"}
    body.update(extra)
    err(srv.request("PUT", "/v1/collections/later", body), 501, "unsupported", name)
    err(srv.request("GET", "/v1/collections/later"), 404, "not_found")


@pytest.mark.parametrize("method, path, body, named", [
    ("POST", P + "/count", {"filter": {"a": {"$bogus": 1}}}, "'$bogus'"),
    ("POST", P + "/scroll", {"filter": {"$or": []}}, "filter.$or"),
    ("POST", P + "/points/delete", {"filter": {"a": {"$in": 5}}}, "filter.a.$in"),
    ("POST", P + "/points/delete", {"filter": []}, "'filter' must be an object"),
    ("POST", P + "/points/delete", {"filter": None}, "'filter' must be an object"),
    ("POST", P + "/points/delete", {"filter": {}, "ids": [1]}, "not both"),
    ("POST", P + "/search", {"vector": [1, 0, 0, 0], "filter": {"a": [1, 2]}}, "filter.a"),
])
def test_bad_filters_are_named(srv, method, path, body, named):
    """docs/FILTERS.md: a malformed filter is a 400 naming the operator and
    where it is; nothing is deleted (the still_up fixture counts)."""
    err(srv.request(method, path, body), 400, "invalid_argument", named)


# ------------------------------------------------------------------ routes

@pytest.mark.parametrize("method, path", [
    ("POST", "/v1/health"), ("DELETE", "/v1/health"), ("PUT", "/metrics"), ("POST", "/metrics"),
    ("POST", "/v1/collections"), ("DELETE", "/v1/collections"), ("PUT", "/v1/collections"),
    ("POST", P), ("PATCH", P),
    ("GET", P + "/points"), ("PUT", P + "/points"), ("DELETE", P + "/points"),
    ("PUT", P + "/points/1"), ("POST", P + "/points/1"), ("DELETE", P + "/points/1"),
    ("PUT", P + "/points/get"), ("PUT", P + "/points/delete"),
    ("GET", P + "/search"), ("PUT", P + "/search"), ("GET", P + "/search/batch"),
    ("GET", P + "/count"), ("DELETE", P + "/count"), ("GET", P + "/scroll"),
])
def test_wrong_method_405(srv, method, path):
    err(srv.request(method, path, {} if method in ("POST", "PUT", "PATCH") else None),
        405, "method_not_allowed")


def test_get_on_points_get_and_delete(srv):
    """GET .../points/get is GET .../points/{id} with the string id "get"
    (HTTP.md: a segment not all digits is a string id): 404 while no such
    point exists (test_http_api.py stores and reads points "get" and
    "delete" this way)."""
    for sid in ("get", "delete"):
        err(srv.request("GET", P + "/points/" + sid), 404, "not_found", sid)


@pytest.mark.parametrize("path", ["/", "/v1", "/v1/", "/v2/health", "/v1/healthz", "/v1/nothing",
                                  "/v1/collections/e/nothing", "/v1/collections/e/points/1/extra",
                                  "/metrics/x", "/v1/collections/e/search/other",
                                  "/v1/collections/e/count/x", "/health", "/V1/health"])
def test_unknown_path_404(srv, path):
    for method in ("GET", "POST"):
        err(srv.request(method, path, {} if method == "POST" else None), 404, "not_found")


def test_query_string_is_not_part_of_the_path(srv):
    assert ok(srv.request("GET", "/v1/health?x=1"))["status"] == "ok"


def test_later_routes_are_501(srv):
    """HTTP.md: the SPEC routes of later releases answer 501 `unsupported`."""
    for method, path, body, word in [("POST", P + "/recommend", {"positive": [1]}, "recommend"),
                                     ("POST", P + "/clusters/train", {"k": 4}, "clusters"),
                                     ("GET", P + "/clusters", None, "clusters"),
                                     ("POST", P + "/snapshots", {}, "snapshots"),
                                     ("GET", P + "/snapshots", None, "snapshots")]:
        err(srv.request(method, path, body), 501, "unsupported", word)


# ------------------------------------------------------------------ auth

KEY, RKEY = "sEcReT-api-key-0123456789", "read-only-key-987"


@pytest.fixture(scope="module")
def auth(tmp_path_factory):
    with NeedleServer(tmp_path_factory.mktemp("auth") / "data", "--api-key", KEY, "--read-key", RKEY,
                      "--threads", "2") as s:
        ok(s.request("PUT", "/v1/collections/a", {"dimension": 2, "metric": "l2", "index": "flat"},
                     key=KEY), 201)
        ok(s.request("POST", "/v1/collections/a/points",
                     {"points": [{"id": 1, "vector": [1, 2], "payload": {"p": 1}},
                                 {"id": 2, "vector": [3, 4]}]}, key=KEY))
        yield s


A = "/v1/collections/a"
READS = [("GET", "/metrics", None), ("GET", "/v1/collections", None), ("GET", A, None),
         ("GET", A + "/points/1", None), ("POST", A + "/points/get", {"ids": [1, 2]}),
         ("POST", A + "/search", {"vector": [1, 2], "k": 2}),
         ("POST", A + "/search/batch", {"searches": [{"vector": [1, 2], "k": 1}]}),
         ("POST", A + "/count", {}), ("POST", A + "/scroll", {"limit": 10})]
WRITES = [("PUT", "/v1/collections/a2", {"dimension": 2, "metric": "l2"}),
          ("PUT", A, {"dimension": 2, "metric": "l2", "index": "flat"}),
          ("DELETE", A, None),
          ("POST", A + "/points", {"points": [{"id": 3, "vector": [5, 6]}]}),
          ("POST", A + "/points/delete", {"ids": [1]}),
          ("PATCH", A + "/points/1", {"payload": {"p": 2}})]


def auth_state(s):
    cols = ok(s.request("GET", "/v1/collections", key=KEY))
    pts = ok(s.request("POST", A + "/points/get", {"ids": [1, 2, 3], "with_vector": True}, key=KEY))
    return cols, pts


def test_health_open_without_key(auth):
    assert ok(auth.request("GET", "/v1/health")) == {"status": "ok", "version": "0.1.0"}
    assert ok(auth.request("GET", "/v1/health", headers={"Authorization": "Bearer wrong"}))["status"] == "ok"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"api-key": "wrong"},
                                     {"Authorization": "Bearer "}, {"Authorization": "Bearer"},
                                     {"Authorization": KEY}, {"Authorization": "Basic " + KEY},
                                     {"Authorization": "Bearer " + KEY[:-1]},
                                     {"Authorization": "Bearer " + KEY + "x"},
                                     {"api-key": KEY[:-1]}, {"api-key": ""},
                                     {"Authorization": "Bearer " + KEY.upper()}],
                         ids=lambda h: repr(h)[:40])
def test_missing_or_wrong_key_401(auth, headers):
    before = auth_state(auth)
    for method, path, body in READS + WRITES:
        err(auth.request(method, path, body, headers=headers), 401, "unauthenticated")
    assert auth_state(auth) == before


@pytest.mark.parametrize("form", ["bearer", "api-key"])
def test_read_key_reads(auth, form):
    h = {"Authorization": f"Bearer {RKEY}"} if form == "bearer" else {"api-key": RKEY}
    for method, path, body in READS:
        st, b = auth.request(method, path, body, headers=h)
        assert st == 200, (method, path, st, b)
    assert ok(auth.request("POST", A + "/count", {}, headers=h)) == {"count": 2}
    hits = ok(auth.request("POST", A + "/search", {"vector": [1, 2], "k": 1}, headers=h))["results"]
    assert hits[0]["id"] == 1
    assert ok(auth.request("GET", A + "/points/1", headers=h)) == {"id": 1, "vector": [1.0, 2.0], "payload": {"p": 1}}


@pytest.mark.parametrize("form", ["bearer", "api-key"])
def test_read_key_on_every_write_403(auth, form):
    h = {"Authorization": f"Bearer {RKEY}"} if form == "bearer" else {"api-key": RKEY}
    before = auth_state(auth)
    for method, path, body in WRITES:
        err(auth.request(method, path, body, headers=h), 403, "permission_denied")
    # NDJSON upsert too
    err(auth.request("POST", A + "/points", raw=b'{"id":9,"vector":[1,1]}\n',
                     headers=dict(h, **{"Content-Type": "application/x-ndjson"})), 403, "permission_denied")
    assert auth_state(auth) == before
    err(auth.request("GET", "/v1/collections/a2", key=KEY), 404, "not_found")


def test_api_key_both_forms_write(auth):
    for h in ({"Authorization": f"Bearer {KEY}"}, {"api-key": KEY}):
        assert ok(auth.request("POST", A + "/points", {"points": [{"id": 7, "vector": [7, 7]}]}, headers=h)) == \
            {"upserted": 1}
        assert ok(auth.request("POST", A + "/points/delete", {"ids": [7]}, headers=h)) == {"deleted": 1}
        for method, path, body in READS:
            st, b = auth.request(method, path, body, headers=h)
            assert st == 200, (method, path, st, b)
    r = ok(auth.request("PUT", "/v1/collections/a3", {"dimension": 2, "metric": "l2"},
                        headers={"api-key": KEY}), 201)
    assert r["created"] is True
    assert ok(auth.request("DELETE", "/v1/collections/a3", headers={"api-key": KEY})) == {"deleted": True}


def test_auth_before_routing_and_validation(auth):
    """A write with a bad body and the read key is still 403; with no key 401."""
    err(auth.request("POST", A + "/points", raw=b"{oops", headers={"api-key": RKEY}), 403, "permission_denied")
    err(auth.request("POST", A + "/points", raw=b"{oops"), 401, "unauthenticated")
    err(auth.request("POST", A + "/search", raw=b"{oops"), 401, "unauthenticated")
    bad(auth.request("POST", A + "/search", raw=b"{oops", headers={"api-key": RKEY}))


# ------------------------------------------------------------------ body limit

LIMIT = 1024  # the server's minimum; test_max_body_bytes_1000 asks for 1000


def test_max_body_bytes_1000(tmp_path):
    """The issue's own example: a server with --max-body-bytes 1000 (HTTP.md
    names no minimum)."""
    with NeedleServer(tmp_path / "data", "--max-body-bytes", "1000") as s:
        ok(s.request("PUT", "/v1/collections/m", {"dimension": 4, "metric": "l2", "index": "flat"}), 201)
        ok(s.request("POST", "/v1/collections/m/points", raw=upsert_body(3, 1000)))
        err(s.request("POST", "/v1/collections/m/points", raw=upsert_body(3, 1001, start=10)),
            413, "payload_too_large")
        assert count(s, "m") == 3


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    with NeedleServer(tmp_path_factory.mktemp("small") / "data", "--max-body-bytes", LIMIT,
                      "--threads", "2") as s:
        ok(s.request("PUT", "/v1/collections/m", {"dimension": 4, "metric": "l2", "index": "flat"}), 201)
        yield s


def upsert_body(n, size=None, start=0):
    """A valid upsert of n points, padded with spaces to `size` bytes."""
    body = json.dumps({"points": [{"id": start + i, "vector": [i, 1, 2, 3]} for i in range(n)]}).encode()
    return body if size is None else pad(body, size)


def test_body_at_the_limit_is_fine(small):
    assert ok(small.request("POST", "/v1/collections/m/points", raw=upsert_body(3, LIMIT, start=500))) == \
        {"upserted": 3}
    ok(small.request("POST", "/v1/collections/m/points/delete", {"ids": [500, 501, 502]}))
    assert count(small, "m") == 0


def test_body_over_the_limit_413(small):
    err(small.request("POST", "/v1/collections/m/points", raw=upsert_body(3, LIMIT + 1)),
        413, "payload_too_large")
    err(small.request("POST", "/v1/collections/m/points", raw=upsert_body(40)), 413, "payload_too_large")
    err(small.request("POST", "/v1/collections/m/search",
                      raw=json.dumps({"vector": [1, 2, 3, 4], "k": 1, "ef": 64}).encode() + b" " * 2000),
        413, "payload_too_large")
    alive(small)
    assert count(small, "m") == 0


def test_content_length_over_limit_answered_before_the_body(small):
    s = small.raw_socket()
    s.sendall(b"POST /v1/collections/m/points HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 50000000\r\n\r\n" + b"{" + b" " * 100)
    r = read_response(s, timeout=10)
    assert r is not None, "no answer before the body"
    err(r, 413, "payload_too_large")
    assert closed(s), "the connection stays open after a 413"
    s.close()
    alive(small)
    assert count(small, "m") == 0


@pytest.mark.parametrize("value, status, title", [
    (b"99999999999999999999999", 413, "Request content too large"),   # over 2^64
    (b"abc", 400, "Request malformed"),
], ids=["over-2^64", "not-a-number"])
def test_unreadable_content_length_value(small, value, status, title):
    """A Content-Length libmicrohttpd cannot read as a 64-bit number is
    refused by the library before needle sees the request: the library's
    own short HTML answer (not JSON), Connection: close, and the connection
    closed. Two things left unpinned here: HTTP.md's list of the library's
    own answers names only 414, 431 and 505, and libmicrohttpd 0.9.75 sends
    the status line and headers twice for these, so the declared body
    begins with the repeated headers."""
    s = small.raw_socket()
    s.sendall(b"POST /v1/collections/m/count HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: " + value + b"\r\n\r\n{}")
    data = read_to_close(s)
    s.close()
    r = read_response(io.BytesIO(data))
    assert r is not None, "closed without an answer"
    assert r[0] == status, data
    assert r.headers["connection"] == "close", data
    assert isinstance(r[1], str), data
    text = data.decode("latin-1")
    assert f"<title>{title}</title>" in text and "<b>Content-Length</b> header" in text, data
    alive(small)
    assert count(small, "m") == 0


def test_content_length_of_2_64_minus_1(small):
    """A Content-Length that is a 64-bit number, however large, reaches
    needle: its JSON 413, before the body."""
    s = small.raw_socket()
    s.sendall(b"POST /v1/collections/m/count HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 18446744073709551615\r\n\r\n{}")
    r = read_response(s, timeout=10)
    assert r is not None, "no answer before the body"
    err(r, 413, "payload_too_large", "18446744073709551615")
    assert closed(s), "the connection stays open after a 413"
    s.close()
    alive(small)


def chunked(s, path, body, chunk=100, timeout=30):
    c = s.connection(timeout=timeout)
    parts = (body[i:i + chunk] for i in range(0, len(body), chunk))
    try:
        c.request("POST", path, body=parts, encode_chunked=True,
                  headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        r = c.getresponse()
        return r.status, parse_body(r.read().decode())
    finally:
        c.close()


def test_chunked_body_under_the_limit(small):
    assert ok(chunked(small, "/v1/collections/m/points", upsert_body(5, start=100), chunk=37)) == {"upserted": 5}
    ok(small.request("POST", "/v1/collections/m/points/delete", {"ids": list(range(100, 105))}))
    assert ok(chunked(small, "/v1/collections/m/count", pad(b"{}", LIMIT))) == {"count": 0}


def test_chunked_body_over_the_limit_413(small):
    body = upsert_body(3, LIMIT + 1)
    err(chunked(small, "/v1/collections/m/points", body), 413, "payload_too_large")
    body = upsert_body(3, int(LIMIT * 1.8))
    err(chunked(small, "/v1/collections/m/points", body, chunk=64), 413, "payload_too_large")
    alive(small)
    assert count(small, "m") == 0


def test_chunked_body_far_over_the_limit(small):
    """More than twice the limit: HTTP.md says the client is disconnected
    instead of answered; promptly (a client timeout is no disconnect)."""
    body = upsert_body(3, LIMIT * 50)
    t0 = time.time()
    with pytest.raises(ConnectionError):  # reset, broken pipe, or closed before an answer
        chunked(small, "/v1/collections/m/points", body, chunk=500, timeout=10)
    assert time.time() - t0 < 10
    alive(small)
    assert count(small, "m") == 0


# ------------------------------------------------------------------ request timeout

@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    with NeedleServer(tmp_path_factory.mktemp("slow") / "data", "--request-timeout", "1",
                      "--threads", "2") as s:
        ok(s.request("PUT", "/v1/collections/t", {"dimension": 2, "metric": "l2", "index": "flat"}), 201)
        yield s


def test_slow_body_closed_as_idle(slow):
    """Nothing received for longer than --request-timeout in the middle of
    a body: HTTP.md closes an idle connection (no 408: the body never
    ended while the connection was open)."""
    body = pad(b'{"points":[{"id":1,"vector":[1,2]}]}', 100)
    s = slow.raw_socket()
    s.sendall(b"POST /v1/collections/t/points HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100\r\n\r\n" + body[:10])
    time.sleep(2.5)
    try:
        s.sendall(body[10:])
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = read_response(s, timeout=10)
    assert r is None, f"answered instead of closed as idle: {r!r}"
    s.close()
    # the late body wrote nothing
    assert count(slow, "t") == 0
    # a request sent normally afterwards, on a new connection, works
    assert ok(slow.request("POST", "/v1/collections/t/points", raw=body)) == {"upserted": 1}
    assert count(slow, "t") == 1
    ok(slow.request("POST", "/v1/collections/t/points/delete", {"ids": [1]}))


def test_trickled_body_408(slow):
    """HTTP.md: a body still arriving --request-timeout seconds after its
    request began is thrown away and answered 408 once it ends (never idle
    for a whole second here, so the connection is not closed as idle)."""
    body = pad(b'{"points":[{"id":2,"vector":[1,2]}]}', 100)
    s = slow.raw_socket()
    s.sendall(b"POST /v1/collections/t/points HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100\r\n\r\n" + body[:10])
    for i in range(10):
        time.sleep(0.25)
        s.sendall(body[10 + i:11 + i])
    s.sendall(body[20:])
    r = read_response(s, timeout=10)
    s.close()
    assert r is not None, "closed instead of a 408"
    err(r, 408, "request_timeout")
    assert count(slow, "t") == 0
    assert ok(slow.request("POST", "/v1/collections/t/count", {})) == {"count": 0}


def test_slow_chunked_body_closed_as_idle(slow):
    """As test_slow_body_closed_as_idle, with a chunked body."""
    s = slow.raw_socket()
    s.sendall(b"POST /v1/collections/t/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"1\r\n{\r\n")
    time.sleep(2.5)
    try:
        s.sendall(b"1\r\n}\r\n0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = read_response(s, timeout=10)
    assert r is None, f"answered instead of closed as idle: {r!r}"
    s.close()
    assert count(slow, "t") == 0


def test_idle_connection_closed(slow):
    s = slow.raw_socket()
    t0 = time.time()
    assert closed(s, timeout=8), "an idle connection stays open past --request-timeout"
    assert time.time() - t0 >= 0.5
    s.close()
    # idle after a request on a keep-alive connection: closed too
    c = slow.connection()
    ok(slow.request("GET", "/v1/health", conn=c))
    sock = c.sock
    assert closed(sock, timeout=8)
    c.close()
    assert ok(slow.request("GET", "/v1/health"))["status"] == "ok"


def test_half_sent_headers_do_not_block_others(slow):
    s = slow.raw_socket()
    s.sendall(b"POST /v1/collections/t/count HTTP/1.1\r\nHost: x\r\n")
    for _ in range(5):
        assert ok(slow.request("POST", "/v1/collections/t/count", {})) == {"count": 0}
    s.close()


# ------------------------------------------------------------------ HTTP-level oddities

def test_garbage_request_line(srv):
    """Answered with a 4xx (505 for an unknown HTTP version), closed, or
    left waiting; the server stays up either way."""
    for junk in (b"HELLO\r\n\r\n", b"GET\r\n\r\n", b"\x00\x01\x02\r\n\r\n",
                 b"GET /v1/health HTTP/9.9\r\n\r\n", b"GET " + b"/x" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"y" * 100000 + b"\r\n\r\n",
                 b"GET /v1/health HTTP/1.1\r\nno colon here\r\n\r\n"):
        s = srv.raw_socket()
        try:
            s.sendall(junk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            r = read_response(s, timeout=3)
        except socket.timeout:
            r = None
        assert r is None or r[0] < 500 or r[0] == 505, (junk[:30], r)
        s.close()
        alive(srv)


@pytest.mark.parametrize("what, req, want", [
    ("long url", b"GET /v1/collections/" + b"x" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("huge header", b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 100000 + b"\r\n\r\n", 431),
    ("http version", b"GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n", 505),
], ids=["long-url", "huge-header", "http-version"])
def test_http_level_errors(srv, what, req, want):
    """HTTP.md, the one exception to JSON errors: what libmicrohttpd refuses
    before a request reaches needle (URI or headers over its memory limit,
    an unknown HTTP version) gets its own short HTML answer with the right
    status; the server stays up and the connection is not reused."""
    s = srv.raw_socket()
    try:
        s.sendall(req)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = read_response(s, timeout=10)
    s.close()
    assert r is not None, "no answer"
    assert r[0] == want, f"{what}: {r!r}"
    alive(srv)


def test_client_disconnect_mid_body(srv):
    for _ in range(5):
        s = srv.raw_socket()
        s.sendall(b"POST /v1/collections/e/points HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
                  b'{"points":[{"id":900,"vector":[1,2,3,4]}')
        s.close()
    alive(srv)
    err(srv.request("GET", P + "/points/900"), 404, "not_found")


def test_content_type_does_not_matter_for_json(srv):
    for ct in ("application/x-www-form-urlencoded", "text/plain", "application/octet-stream"):
        assert ok(srv.request("POST", P + "/count", {}, headers={"Content-Type": ct})) == {"count": 2}
    c = srv.connection()
    c.request("POST", P + "/count", body=b"{}")  # no Content-Type at all
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read()) == {"count": 2}
    c.close()
