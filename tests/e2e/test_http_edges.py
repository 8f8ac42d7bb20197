"""Edges found in review: payload strings holding \\u0000, names that may
not, the Content-Type match, the api-key header beside another
Authorization scheme, ids in paths read as `needle get` reads them,
floats printed in their shortest form, batch searches checked before any
runs, and the serve options' usage errors."""
import re

import pytest

from conftest import run_needle
from server import NeedleServer, err, ok


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("edges") / "data"
    with NeedleServer(d, "--api-key", "K", "--read-key", "R") as s:
        ok(s.request("PUT", "/v1/collections/c", {"dimension": 2, "metric": "cosine"}, key="K"),
           201)
        yield s


def test_payload_strings_may_hold_nul(srv):
    body = '{"points":[{"id":"n","vector":[3,4],"payload":{"s":"a\\u0000b"}}]}'
    ok(srv.request("POST", "/v1/collections/c/points", raw=body.encode(), key="K"))
    pt = ok(srv.request("GET", "/v1/collections/c/points/n", key="K"))
    assert pt["payload"] == {"s": "a\x00b"}


def test_names_and_ids_may_not(srv):
    err(srv.request("PUT", "/v1/collections/d", key="K",
                    raw=b'{"dimension":2,"metric":"cosine\\u0000x"}'), 400, "invalid_argument",
        "metric")
    err(srv.request("POST", "/v1/collections/c/points", key="K",
                    raw=b'{"points":[{"id":"a\\u0000b","vector":[1,2]}]}'), 400,
        "invalid_argument", "point 0", "\\u0000")
    err(srv.request("POST", "/v1/collections/c/points", key="K",
                    raw=b'{"points":[{"id":1,"vector":[1,2],"payload":{"k\\u0000":1}}]}'), 400,
        "invalid_argument", "NUL")


def test_vectors_read_back_in_shortest_form(srv):
    ok(srv.request("POST", "/v1/collections/c/points", key="K",
                   body={"points": [{"id": 7, "vector": [3, 4]}]}))
    status, body = srv.request("GET", "/v1/collections/c/points/7", key="K")
    assert status == 200
    # the text, not just the value: 0.6, not %.9g's 0.600000024
    s = srv.connection()
    s.request("GET", "/v1/collections/c/points/7", headers={"Authorization": "Bearer K"})
    text = s.getresponse().read().decode()
    s.close()
    assert '"vector":[0.6,0.8]' in text, text


@pytest.mark.parametrize("ct, ndjson", [
    ("application/x-ndjson", True),
    ("Application/X-NDJSON ; charset=utf-8", True),
    ("application/x-ndjsonfoo", False),
    ("application/json", False),
])
def test_content_type_names_the_media_type(srv, ct, ndjson):
    body = b'{"id":"ct1","vector":[1,0]}\n{"id":"ct2","vector":[0,1]}\n'
    r = srv.request("POST", "/v1/collections/c/points", raw=body, key="K",
                    headers={"Content-Type": ct})
    if ndjson:
        assert ok(r) == {"upserted": 2}
    else:  # read as one JSON body: two objects are not one
        err(r, 400, "invalid_argument", "not valid JSON")


def test_api_key_header_beside_another_scheme(srv):
    h = {"Authorization": "Basic Zm9vOmJhcg==", "api-key": "K"}
    assert ok(srv.request("POST", "/v1/collections/c/count", {}, headers=h))["count"] >= 0
    err(srv.request("POST", "/v1/collections/c/count", {},
                    headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401, "unauthenticated")


def test_path_ids_read_as_needle_get_reads_them(srv):
    ok(srv.request("POST", "/v1/collections/c/points", key="K", body={"points": [
        {"id": "007", "vector": [1, 1], "payload": {"s": "string"}},
        {"id": 7, "vector": [1, 2], "payload": {"s": "integer"}}]}))
    assert ok(srv.request("GET", "/v1/collections/c/points/007", key="K"))["payload"] == \
        {"s": "string"}
    assert ok(srv.request("GET", "/v1/collections/c/points/7", key="K"))["payload"] == \
        {"s": "integer"}


def test_batch_is_checked_before_any_search_runs(srv):
    def searches():
        text = ok(srv.request("GET", "/metrics", key="K"))
        return sum(int(m) for m in re.findall(r"^needle_searches_total\{[^}]*\} (\d+)$", text,
                                              re.M))
    before = searches()
    good = {"vector": [1, 0], "k": 1}
    msg = err(srv.request("POST", "/v1/collections/c/search/batch", key="K",
                          body={"searches": [good, good, {"vector": [1, 0], "k": 3, "ef": 2}]}),
              400, "invalid_argument", "searches[2]")
    assert "'ef' (2) must be at least k + offset (3)" in msg
    assert searches() == before  # the two good ones did not run either
    msg = err(srv.request("POST", "/v1/collections/c/search", key="K",
                          body={"vector": [1, 0], "k": 3, "offset": 2, "ef": 4}),
              400, "invalid_argument")
    assert "'ef' (4) must be at least k + offset (5)" in msg


@pytest.mark.parametrize("args, match", [
    (["--listen", "localhost:0"], "not a numeric IPv4 or IPv6 address"),
    (["--listen", "127.0.0.1:+x"], "listen port"),
    (["--listen", "127.0.0.1:70000"], "listen port must be in 0..65535"),
    (["--max-body-bytes", "0"], "max-body-bytes must be in 1..4294967295"),
    (["--max-body-bytes", " 5"], "not a whole number"),
])
def test_serve_options_are_usage_errors(tmp_path, args, match):
    p = run_needle(["serve", *args], tmp_path / "db")
    assert p.returncode == 2, p.stderr
    assert match in p.stderr, p.stderr
    assert not (tmp_path / "db").exists()  # nothing opened


def test_a_damaged_collection_does_not_stop_the_others(tmp_path):
    """SPEC 5: damage refuses that collection; the others keep serving."""
    data = tmp_path / "data"
    with NeedleServer(data) as s:
        for name in ("good", "bad"):
            ok(s.request("PUT", f"/v1/collections/{name}", {"dimension": 2, "metric": "l2"}), 201)
            ok(s.request("POST", f"/v1/collections/{name}/points",
                         {"points": [{"id": 1, "vector": [1, 2]}]}))
    manifest = data / "bad" / "MANIFEST"
    raw = bytearray(manifest.read_bytes())
    raw[-3] ^= 0x10
    manifest.write_bytes(bytes(raw))
    with NeedleServer(data) as s:
        assert any("'bad' is not served" in line for line in s.stderr_lines), s.stderr_lines
        assert ok(s.request("POST", "/v1/collections/good/count", {})) == {"count": 1}
        err(s.request("POST", "/v1/collections/bad/count", {}), 500, "corrupt", "MANIFEST")
        err(s.request("GET", "/v1/collections/nope"), 404, "not_found")
