"""The HTTP API of `needle serve` as docs/HTTP.md fixes it, against a real
server: every route with good input (health, metrics, collections, points
as JSON and NDJSON, get, batch get, delete, patch, search against numpy
brute force for every metric, HNSW recall, offset, min_score, batch search,
count, scroll), keep-alive, and 8 threads writing and searching at once.

Bad input, auth, limits and timeouts: test_http_errors.py; restarts and
kill -9: test_http_durability.py.
"""
import json
import re
import threading
import time
import urllib.parse

import numpy as np
import pytest

from conftest import clustered, distances, exact_knn, recall
from server import NeedleServer, count, err, ok, read_response, scroll_all, vec

INFO_KEYS = {"name", "dimension", "metric", "index", "quantization", "fields",
             "count", "deleted", "memory_bytes", "disk_bytes", "search", "status"}


# ------------------------------------------------------------------ helpers

def points(x, ids=None, payloads=None):
    out = []
    for i, v in enumerate(x):
        p = {"id": ids[i] if ids is not None else i, "vector": vec(v)}
        if payloads is not None:
            p["payload"] = payloads[i]
        out.append(p)
    return out


def create(s, name, dim, metric="l2", index=None, status=201):
    body = {"dimension": dim, "metric": metric}
    if index is not None:
        body["index"] = index
    return ok(s.request("PUT", f"/v1/collections/{name}", body), status)


def upsert(s, name, pts, conn=None):
    r = ok(s.request("POST", f"/v1/collections/{name}/points", {"points": pts}, conn=conn))
    assert r == {"upserted": len(pts)}
    return r


def search(s, name, **body):
    r = ok(s.request("POST", f"/v1/collections/{name}/search", body))
    assert set(r) == {"results", "took_ms"}, r
    assert isinstance(r["took_ms"], (int, float)) and r["took_ms"] >= 0
    return r["results"]


def info(s, name):
    return ok(s.request("GET", f"/v1/collections/{name}"))


def path_id(i):
    return urllib.parse.quote(str(i), safe="")


def same_f32(got, want):
    """A returned vector equals the stored float32 values exactly."""
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float32)
    assert g.shape == w.shape, (g.shape, w.shape)
    assert np.array_equal(g.astype(np.float32), w), (got, want)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with NeedleServer(tmp_path_factory.mktemp("api") / "data", "--threads", "4") as s:
        yield s


# ------------------------------------------------------------------ health, collections

def test_health(srv):
    st, body = srv.request("GET", "/v1/health")
    assert st == 200 and body == {"status": "ok", "version": "0.1.0"}


def test_health_is_json(srv):
    c = srv.connection()
    c.request("GET", "/v1/health")
    r = c.getresponse()
    assert r.status == 200
    assert "json" in (r.getheader("Content-Type") or "")
    assert json.loads(r.read()) == {"status": "ok", "version": "0.1.0"}
    c.close()


def test_create_answers_the_info(srv):
    r = create(srv, "cr_default", 8, "cosine")
    assert set(r) == {"created", "collection"} and r["created"] is True
    c = r["collection"]
    assert set(c) == INFO_KEYS, c
    assert c["name"] == "cr_default" and c["dimension"] == 8 and c["metric"] == "cosine"
    # HTTP.md: default HNSW m=16, ef_construction=200, seed 100
    assert c["index"] == {"type": "hnsw", "m": 16, "ef_construction": 200, "seed": 100}
    assert c["quantization"] == {"type": "none"}
    assert c["fields"] == {}
    assert c["count"] == 0 and c["deleted"] == 0
    assert isinstance(c["memory_bytes"], int) and c["memory_bytes"] >= 0
    assert isinstance(c["disk_bytes"], int) and c["disk_bytes"] >= 0
    assert c["status"] == "ready"
    assert c["search"] == {"ef": 64, "recall": None, "sample_queries": 0}
    assert info(srv, "cr_default") == c


def test_default_ef_is_learned_from_queries(srv):
    """After 100 searches without ef, the server's background thread tunes
    the default ef on a sample of them (HTTP.md, collection info): info
    reports the ef, its recall on the sample and the sample's size, and
    explain shows searches running with it; an explicit ef still rules."""
    dim = 8
    x = clustered(1500, dim, seed=31)
    create(srv, "tuned", dim)
    upsert(srv, "tuned", points(x))
    q = clustered(150, dim, seed=32)
    assert info(srv, "tuned")["search"]["sample_queries"] == 0
    for v in q[:50]:  # an explicit ef teaches nothing
        search(srv, "tuned", vector=vec(v), k=10, ef=40)
    for v in q:
        search(srv, "tuned", vector=vec(v), k=10)
    for _ in range(600):
        s = info(srv, "tuned")["search"]
        if s["sample_queries"]:
            break
        time.sleep(0.1)
    assert s["sample_queries"] >= 100 and 64 <= s["ef"] <= 1024
    assert 0.95 <= s["recall"] <= 1 or s["ef"] == 1024
    r = ok(srv.request("POST", "/v1/collections/tuned/search",
                       {"vector": vec(q[0]), "k": 10, "explain": True}))
    assert r["explain"]["ef"] == s["ef"]
    r = ok(srv.request("POST", "/v1/collections/tuned/search",
                       {"vector": vec(q[0]), "k": 10, "ef": 33, "explain": True}))
    assert r["explain"]["ef"] == 33
    flat = create(srv, "tuned_flat", dim, index="flat")["collection"]
    assert "search" not in flat


def test_create_full_config_and_flat(srv):
    body = {"dimension": 3, "metric": "ip",
            "index": {"type": "hnsw", "m": 8, "ef_construction": 50, "seed": 7},
            "quantization": {"type": "none"}, "fields": {}}
    r = ok(srv.request("PUT", "/v1/collections/cr_full", body), 201)
    assert r["collection"]["index"] == {"type": "hnsw", "m": 8, "ef_construction": 50, "seed": 7}
    assert r["collection"]["metric"] == "ip" and r["collection"]["dimension"] == 3
    # the same body again: 200, created false, same info
    r2 = ok(srv.request("PUT", "/v1/collections/cr_full", body), 200)
    assert r2["created"] is False and r2["collection"] == r["collection"]
    r = create(srv, "cr_flat", 5, "l1", index="flat")
    assert r["collection"]["index"]["type"] == "flat"
    assert r["collection"]["metric"] == "l1"
    r = create(srv, "cr_flat2", 5, "hamming", index={"type": "flat"})
    assert r["collection"]["index"]["type"] == "flat"
    r = create(srv, "cr_hnsw_str", 5, "l2", index="hnsw")
    assert r["collection"]["index"] == {"type": "hnsw", "m": 16, "ef_construction": 200, "seed": 100}


def test_create_again_same_config_200_different_409(srv):
    create(srv, "cr_again", 4, "l2", index={"type": "hnsw", "m": 12, "ef_construction": 64})
    r = create(srv, "cr_again", 4, "l2", index={"type": "hnsw", "m": 12, "ef_construction": 64},
               status=200)
    assert r["created"] is False and r["collection"]["name"] == "cr_again"
    for body in ({"dimension": 5, "metric": "l2"},
                 {"dimension": 4, "metric": "cosine",
                  "index": {"type": "hnsw", "m": 12, "ef_construction": 64}},
                 {"dimension": 4, "metric": "l2",
                  "index": {"type": "hnsw", "m": 16, "ef_construction": 64}},
                 {"dimension": 4, "metric": "l2", "index": "flat"}):
        err(srv.request("PUT", "/v1/collections/cr_again", body), 409, "already_exists")
    # nothing changed
    c = info(srv, "cr_again")
    assert (c["dimension"], c["metric"], c["index"]["m"]) == (4, "l2", 12)


def test_create_again_with_defaults_spelled_out_is_the_same(srv):
    create(srv, "cr_defaults", 4, "l2")
    r = ok(srv.request("PUT", "/v1/collections/cr_defaults",
                       {"dimension": 4, "metric": "l2",
                        "index": {"type": "hnsw", "m": 16, "ef_construction": 200},
                        "quantization": {"type": "none"}, "fields": {}}), 200)
    assert r["created"] is False


def test_name_of_64_chars_and_every_allowed_character(srv):
    name = ("Az09_-" * 11)[:64]
    assert len(name) == 64
    create(srv, name, 2)
    assert info(srv, name)["name"] == name


def test_list_sorted_with_counts(srv):
    names = ["ls_b", "ls_a", "ls_C", "ls_a-1", "ls_a_0"]
    for i, n in enumerate(names):
        create(srv, n, 2, index="flat")
        if i:
            upsert(srv, n, points(np.ones((i, 2)), ids=list(range(i))))
    body = ok(srv.request("GET", "/v1/collections"))
    assert set(body) == {"collections"}
    cols = body["collections"]
    got = [c["name"] for c in cols]
    assert got == sorted(got, key=lambda s: s.encode()), got
    for c in cols:
        assert set(c) == {"name", "count"}, c
    mine = {c["name"]: c["count"] for c in cols if c["name"].startswith("ls_")}
    assert mine == {n: i for i, n in enumerate(names)}


def test_info_counts_and_delete_collection(srv):
    create(srv, "del_me", 3, index="flat")
    upsert(srv, "del_me", points(np.eye(3) + 1, ids=[1, 2, "x"]))
    upsert(srv, "del_me", points(np.eye(3)[:2], ids=[10, 11]))
    assert ok(srv.request("POST", "/v1/collections/del_me/points/delete", {"ids": [1, 10]})) == {"deleted": 2}
    c = info(srv, "del_me")
    # 5 slots written, 3 live: the 2 deleted ones stay counted until a
    # compaction, which needs far more dead slots than this
    assert c["count"] == 3
    assert c["deleted"] == 2
    assert c["disk_bytes"] > 0 and c["memory_bytes"] > 0
    assert ok(srv.request("DELETE", "/v1/collections/del_me")) == {"deleted": True}
    err(srv.request("GET", "/v1/collections/del_me"), 404, "not_found")
    err(srv.request("DELETE", "/v1/collections/del_me"), 404, "not_found")
    err(srv.request("POST", "/v1/collections/del_me/points",
                    {"points": [{"id": 1, "vector": [1, 2, 3]}]}), 404, "not_found")
    err(srv.request("POST", "/v1/collections/del_me/search", {"vector": [1, 2, 3]}), 404, "not_found")
    err(srv.request("POST", "/v1/collections/del_me/count", {}), 404, "not_found")
    err(srv.request("GET", "/v1/collections/del_me/points/2"), 404, "not_found")
    names = [c["name"] for c in ok(srv.request("GET", "/v1/collections"))["collections"]]
    assert "del_me" not in names
    # the name is free again, with another config
    r = create(srv, "del_me", 7, "cosine")
    assert r["collection"]["count"] == 0 and r["collection"]["dimension"] == 7


def test_absent_collection_is_404_on_every_route(srv):
    n = "/v1/collections/never_made"
    for method, path, body in [
            ("GET", n, None), ("DELETE", n, None),
            ("POST", n + "/points", {"points": [{"id": 1, "vector": [1.0]}]}),
            ("GET", n + "/points/1", None),
            ("POST", n + "/points/get", {"ids": [1]}),
            ("POST", n + "/points/delete", {"ids": [1]}),
            ("PATCH", n + "/points/1", {"payload": {"a": 1}}),
            ("POST", n + "/search", {"vector": [1.0]}),
            ("POST", n + "/search/batch", {"searches": [{"vector": [1.0]}]}),
            ("POST", n + "/count", {}),
            ("POST", n + "/scroll", {})]:
        err(srv.request(method, path, body), 404, "not_found")


# ------------------------------------------------------------------ points

PAYLOADS = [{"title": "héllo wörld ✓ 𝄞", "n": 2 ** 62, "f": 0.1, "neg": -3, "b": True,
             "z": None, "arr": [1, "two", [3.5], {"x": False}], "obj": {"deep": {"er": "x"}}},
            {}, {"s": "quote \" backslash \\ tab \t nl \n ctrl \u0001"}]


def test_upsert_and_get_points(srv):
    create(srv, "pts", 4, index="flat")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    ids = [0, 7, 2 ** 63 - 1, "alpha", "ünï cødé", "x" * 256]
    pl = PAYLOADS + [None, {"k": 1}, None]
    pts = points(x, ids)
    for p, q in zip(pts, pl):
        if q is not None:
            p["payload"] = q
    upsert(srv, "pts", pts)
    assert count(srv, "pts") == 6
    for i, (v, q) in enumerate(zip(x, pl)):
        r = ok(srv.request("GET", f"/v1/collections/pts/points/{path_id(ids[i])}"))
        assert set(r) == {"id", "vector", "payload"}, r
        assert r["id"] == ids[i] and type(r["id"]) is type(ids[i])
        same_f32(r["vector"], v)
        assert r["payload"] == q  # null when the point has none


def test_upsert_replaces_vector_and_payload(srv):
    create(srv, "repl", 2, index="flat")
    upsert(srv, "repl", [{"id": 1, "vector": [1, 2], "payload": {"a": 1}},
                         {"id": "s", "vector": [3, 4], "payload": {"b": 2}}])
    upsert(srv, "repl", [{"id": 1, "vector": [5, 6]},
                         {"id": "s", "vector": [7, 8], "payload": {"c": 3}}])
    assert count(srv, "repl") == 2
    assert ok(srv.request("GET", "/v1/collections/repl/points/1")) == \
        {"id": 1, "vector": [5.0, 6.0], "payload": None}
    assert ok(srv.request("GET", "/v1/collections/repl/points/s")) == \
        {"id": "s", "vector": [7.0, 8.0], "payload": {"c": 3}}


def test_integer_and_digit_string_ids_are_different_points(srv):
    create(srv, "digits", 2, index="flat")
    upsert(srv, "digits", [{"id": 123, "vector": [1, 1]}, {"id": "123", "vector": [2, 2]}])
    assert count(srv, "digits") == 2
    r = ok(srv.request("GET", "/v1/collections/digits/points/123"))
    assert r["id"] == 123 and r["vector"] == [1.0, 1.0]
    r = ok(srv.request("POST", "/v1/collections/digits/points/get",
                       {"ids": ["123", 123], "with_vector": True}))
    assert [(p["id"], p["vector"]) for p in r["points"]] == [("123", [2.0, 2.0]), (123, [1.0, 1.0])]


@pytest.mark.parametrize("sid", ["with space", "a+b", "é ü ✓", "q?x=1&y#frag", "per%cent",
                                 "slash/inside", "-1", "1.5", "007x", "..", "get", "delete"])
def test_string_id_percent_encoded_in_path(srv, sid):
    name = "pct"
    st, _ = srv.request("GET", f"/v1/collections/{name}")
    if st == 404:
        create(srv, name, 2, index="flat")
    upsert(srv, name, [{"id": sid, "vector": [1, 2], "payload": {"sid": sid}}])
    r = ok(srv.request("GET", f"/v1/collections/{name}/points/{path_id(sid)}"))
    assert r == {"id": sid, "vector": [1.0, 2.0], "payload": {"sid": sid}}
    assert ok(srv.request("PATCH", f"/v1/collections/{name}/points/{path_id(sid)}",
                          {"payload": {"p": 1}})) == {"updated": True}
    r = ok(srv.request("GET", f"/v1/collections/{name}/points/{path_id(sid)}"))
    assert r["payload"] == {"sid": sid, "p": 1}


def test_get_absent_point_404(srv):
    create(srv, "absent", 2, index="flat")
    upsert(srv, "absent", [{"id": 1, "vector": [1, 2]}])
    err(srv.request("GET", "/v1/collections/absent/points/2"), 404, "not_found")
    err(srv.request("GET", "/v1/collections/absent/points/nope"), 404, "not_found")
    err(srv.request("GET", "/v1/collections/absent/points/%C3%A9"), 404, "not_found")
    # "1" as a string id is not the integer 1
    r = ok(srv.request("POST", "/v1/collections/absent/points/get", {"ids": ["1"]}))
    assert r == {"points": []}


def test_points_get_batch(srv):
    create(srv, "pget", 3, index="flat")
    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    ids = [5, 1, "b", "a", 3]
    upsert(srv, "pget", points(x, ids, payloads=[{"i": i} for i in range(5)]))
    ask = [3, "zz", "a", 99, 5, "b"]
    r = ok(srv.request("POST", "/v1/collections/pget/points/get",
                       {"ids": ask, "with_vector": True, "with_payload": True}))
    assert set(r) == {"points"}
    got = r["points"]
    assert [p["id"] for p in got] == [3, "a", 5, "b"]
    for p in got:
        assert set(p) == {"id", "vector", "payload"}
        i = ids.index(p["id"])
        same_f32(p["vector"], x[i])
        assert p["payload"] == {"i": i}
    r = ok(srv.request("POST", "/v1/collections/pget/points/get",
                       {"ids": [1, "b"], "with_vector": False, "with_payload": True}))
    assert r == {"points": [{"id": 1, "payload": {"i": 1}}, {"id": "b", "payload": {"i": 2}}]}
    r = ok(srv.request("POST", "/v1/collections/pget/points/get",
                       {"ids": [1], "with_vector": True, "with_payload": False}))
    assert r == {"points": [{"id": 1, "vector": [3.0, 4.0, 5.0]}]}
    r = ok(srv.request("POST", "/v1/collections/pget/points/get",
                       {"ids": [1], "with_vector": False, "with_payload": False}))
    assert r == {"points": [{"id": 1}]}
    r = ok(srv.request("POST", "/v1/collections/pget/points/get", {"ids": []}))
    assert r == {"points": []}
    r = ok(srv.request("POST", "/v1/collections/pget/points/get", {"ids": [1000, "nope"]}))
    assert r == {"points": []}


def test_points_delete_counts_existing(srv):
    create(srv, "pdel", 2, index="flat")
    upsert(srv, "pdel", points(np.ones((5, 2)), ids=[1, 2, 3, "a", "b"]))
    r = ok(srv.request("POST", "/v1/collections/pdel/points/delete", {"ids": [1, "a", 77, "zz"]}))
    assert r == {"deleted": 2}
    assert count(srv, "pdel") == 3
    err(srv.request("GET", "/v1/collections/pdel/points/1"), 404, "not_found")
    err(srv.request("GET", "/v1/collections/pdel/points/a"), 404, "not_found")
    r = ok(srv.request("POST", "/v1/collections/pdel/points/delete", {"ids": [1, "a"]}))
    assert r == {"deleted": 0}
    r = ok(srv.request("POST", "/v1/collections/pdel/points/delete", {"ids": []}))
    assert r == {"deleted": 0}
    # a deleted id can come back
    upsert(srv, "pdel", [{"id": 1, "vector": [9, 9]}])
    assert ok(srv.request("GET", "/v1/collections/pdel/points/1"))["vector"] == [9.0, 9.0]
    assert count(srv, "pdel") == 4


def test_patch_merges_top_level_keys(srv):
    create(srv, "patch", 2, index="flat")
    upsert(srv, "patch", [{"id": 1, "vector": [1, 2],
                           "payload": {"a": 1, "b": {"x": 1, "y": 2}, "c": [1, 2]}},
                          {"id": 2, "vector": [3, 4]}])
    r = ok(srv.request("PATCH", "/v1/collections/patch/points/1",
                       {"payload": {"b": {"z": 3}, "d": "new", "c": None}}))
    assert r == {"updated": True}
    # b replaced whole (not deep-merged), a kept, d added, c stored as null
    # (HTTP.md: a null does not remove the key); vector untouched
    assert ok(srv.request("GET", "/v1/collections/patch/points/1")) == \
        {"id": 1, "vector": [1.0, 2.0], "payload": {"a": 1, "b": {"z": 3}, "c": None, "d": "new"}}
    # a point without payload gets one
    assert ok(srv.request("PATCH", "/v1/collections/patch/points/2",
                          {"payload": {"k": "v"}})) == {"updated": True}
    assert ok(srv.request("GET", "/v1/collections/patch/points/2")) == \
        {"id": 2, "vector": [3.0, 4.0], "payload": {"k": "v"}}
    # an empty patch changes nothing
    assert ok(srv.request("PATCH", "/v1/collections/patch/points/2",
                          {"payload": {}})) == {"updated": True}
    assert ok(srv.request("GET", "/v1/collections/patch/points/2"))["payload"] == {"k": "v"}
    # absent point: 404, and nothing created
    err(srv.request("PATCH", "/v1/collections/patch/points/3", {"payload": {"a": 1}}), 404, "not_found")
    err(srv.request("PATCH", "/v1/collections/patch/points/nope", {"payload": {"a": 1}}), 404, "not_found")
    assert count(srv, "patch") == 2


def test_patch_exact_merge_result(srv):
    create(srv, "patch2", 2, index="flat")
    upsert(srv, "patch2", [{"id": "p", "vector": [1, 2], "payload": {"a": 1, "b": {"x": 1}}}])
    ok(srv.request("PATCH", "/v1/collections/patch2/points/p", {"payload": {"b": 2, "c": 3}}))
    assert ok(srv.request("GET", "/v1/collections/patch2/points/p"))["payload"] == {"a": 1, "b": 2, "c": 3}


# ------------------------------------------------------------------ NDJSON

def ndjson(s, name, text, headers=None):
    h = {"Content-Type": "application/x-ndjson"}
    h.update(headers or {})
    return s.request("POST", f"/v1/collections/{name}/points",
                     raw=text.encode() if isinstance(text, str) else text, headers=h)


def test_ndjson_upsert_skips_blank_lines(srv):
    create(srv, "nd", 3, index="flat")
    lines = [json.dumps({"id": i, "vector": [i, i + 1, i + 2], "payload": {"i": i}}) for i in range(5)]
    lines.append(json.dumps({"id": "str", "vector": [0.5, 0.25, 0.125]}))
    text = "\n" + lines[0] + "\n\n" + "\n".join(lines[1:4]) + "\n   \n\n" + "\n".join(lines[4:]) + "\n\n"
    r = ok(ndjson(srv, "nd", text))
    assert r == {"upserted": 6}
    assert count(srv, "nd") == 6
    assert ok(srv.request("GET", "/v1/collections/nd/points/3")) == \
        {"id": 3, "vector": [3.0, 4.0, 5.0], "payload": {"i": 3}}
    assert ok(srv.request("GET", "/v1/collections/nd/points/str"))["vector"] == [0.5, 0.25, 0.125]


def test_ndjson_without_trailing_newline_and_crlf(srv):
    create(srv, "nd2", 2, index="flat")
    r = ok(ndjson(srv, "nd2", '{"id":1,"vector":[1,2]}\r\n{"id":2,"vector":[3,4]}'))
    assert r == {"upserted": 2}
    assert count(srv, "nd2") == 2


def test_ndjson_content_type_with_charset(srv):
    create(srv, "nd3", 2, index="flat")
    r = ok(ndjson(srv, "nd3", '{"id":1,"vector":[1,2]}\n',
                  headers={"Content-Type": "application/x-ndjson; charset=utf-8"}))
    assert r == {"upserted": 1}


@pytest.mark.parametrize("bad", ['{"id":3,"vector":[1,2,3]',            # bad JSON
                                 '{"id":3,"vector":[1,2]}',               # wrong dimension
                                 '{"id":3,"vector":[1,2,3],"oops":1}',    # unknown field
                                 '[1,2,3]',                               # not an object
                                 '{"id":-3,"vector":[1,2,3]}'])           # bad id
def test_ndjson_bad_line_names_it_and_writes_nothing(srv, bad):
    name = "ndbad"
    st, _ = srv.request("GET", f"/v1/collections/{name}")
    if st == 404:
        create(srv, name, 3, index="flat")
    before = count(srv, name)
    text = ('{"id":100,"vector":[1,2,3]}\n{"id":101,"vector":[4,5,6]}\n' + bad +
            '\n{"id":102,"vector":[7,8,9]}\n')
    msg = err(ndjson(srv, name, text), 400, "invalid_argument")
    assert re.search(r"line\D{0,3}3\b", msg), msg
    assert count(srv, name) == before
    err(srv.request("GET", f"/v1/collections/{name}/points/100"), 404, "not_found")
    err(srv.request("GET", f"/v1/collections/{name}/points/102"), 404, "not_found")


def test_json_upsert_is_atomic(srv):
    create(srv, "atomic", 2, index="flat")
    pts = [{"id": 1, "vector": [1, 2]}, {"id": 2, "vector": [3, 4]}, {"id": 3, "vector": [5]}]
    err(srv.request("POST", "/v1/collections/atomic/points", {"points": pts}), 400, "invalid_argument")
    assert count(srv, "atomic") == 0


# ------------------------------------------------------------------ search

N_EX, DIM_EX = 300, 16


@pytest.fixture(scope="module")
def exact_data():
    rng = np.random.default_rng(5)
    base = rng.normal(size=(N_EX, DIM_EX)).astype(np.float32)
    q = rng.normal(size=(6, DIM_EX)).astype(np.float32)
    return base, q


def hamming_data():
    rng = np.random.default_rng(8)
    base = (rng.random((200, 64)) > 0.5).astype(np.float32)
    q = (rng.random((5, 64)) > 0.5).astype(np.float32)
    return base, q


def score_of(metric, d):
    if metric == "cosine":
        return 1.0 - d
    if metric == "ip":
        return -d
    return 1.0 / (1.0 + d)


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip", "l1", "hamming"])
@pytest.mark.parametrize("index", ["hnsw", "flat"])
def test_exact_search_matches_numpy(srv, exact_data, metric, index):
    name = f"ex_{metric}_{index}"
    if metric == "hamming":
        base, q = hamming_data()
        d = (q[:, None, :] != base[None, :, :]).sum(-1).astype(np.float64)
    else:
        base, q = exact_data
        d = distances(base, q, metric)
    create(srv, name, base.shape[1], metric,
           index={"type": "hnsw", "m": 8, "ef_construction": 40} if index == "hnsw" else "flat")
    for lo in range(0, len(base), 100):
        upsert(srv, name, points(base[lo:lo + 100], ids=list(range(lo, min(lo + 100, len(base))))))
    k = 10
    for i in range(len(q)):
        hits = search(srv, name, vector=vec(q[i]), k=k, exact=True,
                      with_payload=False, with_vector=False)
        assert len(hits) == k
        for h in hits:
            assert set(h) == {"id", "score", "distance"}, h
        ids = [h["id"] for h in hits]
        dist = [h["distance"] for h in hits]
        sc = [h["score"] for h in hits]
        assert len(set(ids)) == k
        assert dist == sorted(dist) and sc == sorted(sc, reverse=True)
        # the k smallest true distances, up to the order of ties
        np.testing.assert_allclose(d[i, ids], np.sort(d[i])[:k], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dist, d[i, ids], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(sc, [score_of(metric, a) for a in d[i, ids]], rtol=1e-4, atol=1e-4)
        if metric != "hamming":  # no ties in continuous data: the very ids
            assert ids == np.argsort(d[i], kind="stable")[:k].tolist()


def test_search_results_with_payload_and_vector(srv):
    create(srv, "sv", 3, index="flat")
    x = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]], dtype=np.float32)
    upsert(srv, "sv", points(x, ids=[0, "one", 2, "three"],
                             payloads=[{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}]))
    hits = search(srv, "sv", vector=[0, 0, 0], k=4, with_payload=True, with_vector=True)
    assert [h["id"] for h in hits] == [0, "one", 2, "three"]
    for h, v, j in zip(hits, x, range(4)):
        assert set(h) == {"id", "score", "distance", "payload", "vector"}
        same_f32(h["vector"], v)
        assert h["payload"] == {"i": j}
    assert [h["distance"] for h in hits] == pytest.approx([0, 1, 2, 3])
    assert [h["score"] for h in hits] == pytest.approx([1, 0.5, 1 / 3, 0.25])
    hits = search(srv, "sv", vector=[0, 0, 0], k=2, with_payload=False, with_vector=True)
    assert [set(h) for h in hits] == [{"id", "score", "distance", "vector"}] * 2
    hits = search(srv, "sv", vector=[0, 0, 0], k=2, with_payload=True, with_vector=False)
    assert [set(h) for h in hits] == [{"id", "score", "distance", "payload"}] * 2
    # k larger than the collection: every point once
    hits = search(srv, "sv", vector=[0, 0, 0], k=10000)
    assert [(type(h["id"]), h["id"]) for h in hits] == \
        [(int, 0), (str, "one"), (int, 2), (str, "three")]


def test_search_k_defaults_to_10(srv):
    create(srv, "sk10", 2, index="flat")
    upsert(srv, "sk10", [{"id": i, "vector": [i, 0]} for i in range(15)])
    hits = search(srv, "sk10", vector=[0, 0])
    assert [h["id"] for h in hits] == list(range(10))


def test_search_empty_collection(srv):
    create(srv, "sempty", 3)
    assert search(srv, "sempty", vector=[1, 2, 3], k=5) == []
    assert search(srv, "sempty", vector=[1, 2, 3], k=5, exact=True) == []


def test_search_offset_and_min_score(srv, exact_data):
    base, q = exact_data
    create(srv, "soff", DIM_EX, "cosine", index="flat")
    upsert(srv, "soff", points(base, ids=list(range(N_EX))))
    for i in range(3):
        full = search(srv, "soff", vector=vec(q[i]), k=20, exact=True, with_payload=False)
        part = search(srv, "soff", vector=vec(q[i]), k=5, offset=7, exact=True, with_payload=False)
        assert [h["id"] for h in part] == [h["id"] for h in full[7:12]]
        assert [h["distance"] for h in part] == pytest.approx([h["distance"] for h in full[7:12]])
        # offset past the end: nothing
        assert search(srv, "soff", vector=vec(q[i]), k=10, offset=N_EX, exact=True) == []
        # min_score between the 5th and 6th hit keeps exactly 5
        cut = (full[4]["score"] + full[5]["score"]) / 2
        ms = search(srv, "soff", vector=vec(q[i]), k=20, min_score=cut, exact=True, with_payload=False)
        assert [h["id"] for h in ms] == [h["id"] for h in full[:5]]
        assert all(h["score"] >= cut for h in ms)
        assert search(srv, "soff", vector=vec(q[i]), k=20, min_score=2.0, exact=True) == []
        # min_score with the HNSW path too
        ms = search(srv, "soff", vector=vec(q[i]), k=20, min_score=cut, with_payload=False)
        assert all(h["score"] >= cut for h in ms)


@pytest.fixture(scope="module")
def hnsw_set(srv):
    base = clustered(1500, 16, seed=21)
    q = clustered(30, 16, seed=22)
    create(srv, "hn", 16, "l2", index={"type": "hnsw", "m": 12, "ef_construction": 100})
    for lo in range(0, len(base), 500):
        upsert(srv, "hn", points(base[lo:lo + 500], ids=list(range(lo, lo + 500))))
    return base, q


def test_hnsw_recall(srv, hnsw_set):
    base, q = hnsw_set
    truth = exact_knn(base, q, 10, "l2").tolist()
    found = [[h["id"] for h in search(srv, "hn", vector=vec(v), k=10, ef=64, with_payload=False)]
             for v in q]
    assert all(len(f) == 10 for f in found)
    r = recall(found, truth)
    assert r >= 0.9, f"recall@10 {r:.3f}"
    found = [[h["id"] for h in search(srv, "hn", vector=vec(v), k=10, with_payload=False)]
             for v in q]
    r = recall(found, truth)
    assert r >= 0.9, f"recall@10 at the default ef {r:.3f}"


def test_search_batch(srv, hnsw_set):
    base, q = hnsw_set
    searches = [{"vector": vec(q[0]), "k": 3, "with_payload": False},
                {"vector": vec(q[1]), "k": 5, "exact": True, "with_payload": False},
                {"vector": vec(q[2]), "k": 2, "offset": 1, "with_vector": True, "with_payload": False}]
    r = ok(srv.request("POST", "/v1/collections/hn/search/batch", {"searches": searches}))
    assert set(r) == {"results", "took_ms"} and r["took_ms"] >= 0
    assert len(r["results"]) == 3
    for got, s in zip(r["results"], searches):
        one = search(srv, "hn", **s)
        assert got == one
    assert [len(x) for x in r["results"]] == [3, 5, 2]
    assert all("vector" in h for h in r["results"][2])


def test_search_batch_of_1024(srv):
    create(srv, "b1024", 2, index="flat")
    upsert(srv, "b1024", [{"id": i, "vector": [i, 0]} for i in range(10)])
    r = ok(srv.request("POST", "/v1/collections/b1024/search/batch",
                       {"searches": [{"vector": [i % 10, 0], "k": 1} for i in range(1024)]}))
    assert [x[0]["id"] for x in r["results"]] == [i % 10 for i in range(1024)]


def test_count(srv):
    create(srv, "cnt", 2, index="flat")
    assert count(srv, "cnt") == 0
    upsert(srv, "cnt", points(np.ones((50, 2)), ids=list(range(50))))
    upsert(srv, "cnt", points(np.ones((5, 2)), ids=list(range(45, 50)) ))  # overwrites
    assert count(srv, "cnt") == 50
    ok(srv.request("POST", "/v1/collections/cnt/points/delete", {"ids": list(range(10))}))
    assert count(srv, "cnt") == 40
    assert info(srv, "cnt")["count"] == 40


# ------------------------------------------------------------------ scroll

def test_scroll_everything_in_id_order(srv):
    create(srv, "scr", 2, index="flat")
    ints = [5, 0, 2 ** 63 - 1, 100, 3, 64, 2 ** 40, 99, 1000, 7]
    strs = ["b", "a", "B", "ä", "aa", "123", "0", "~", "zz", "a b", "é", "€"]
    ids = ints + strs
    upsert(srv, "scr", points(np.arange(len(ids) * 2).reshape(-1, 2), ids=ids,
                              payloads=[{"id": str(i)} for i in ids]))
    ok(srv.request("POST", "/v1/collections/scr/points/delete", {"ids": [100, "aa", "~"]}))
    live_ints = sorted(i for i in ints if i != 100)
    live_strs = sorted((s for s in strs if s not in ("aa", "~")), key=lambda s: s.encode())
    want = live_ints + live_strs
    for limit in (1, 3, 4, 100):
        got, pages = scroll_all(srv, "scr", limit, with_payload=True, with_vector=False)
        assert [p["id"] for p in got] == want, f"limit {limit}"
        for p in got:
            assert set(p) == {"id", "payload"}
            assert p["payload"] == {"id": str(p["id"])}
        assert pages >= -(-len(want) // limit)
    got, _ = scroll_all(srv, "scr", 5, with_payload=False, with_vector=True)
    for p in got:
        assert set(p) == {"id", "vector"}
        j = ids.index(p["id"])
        assert p["vector"] == [2.0 * j, 2.0 * j + 1]


def test_scroll_large_collection_every_id_once(srv):
    create(srv, "scr2", 2, index={"type": "hnsw", "m": 8, "ef_construction": 32})
    rng = np.random.default_rng(3)
    ints = rng.choice(10 ** 6, size=400, replace=False).tolist()
    strs = [f"s{v:05d}" for v in rng.choice(10 ** 5, size=100, replace=False).tolist()]
    ids = ints + strs
    upsert(srv, "scr2", points(rng.normal(size=(len(ids), 2)), ids=ids))
    gone = ints[:50] + strs[:10]
    assert ok(srv.request("POST", "/v1/collections/scr2/points/delete", {"ids": gone})) == {"deleted": 60}
    got, _ = scroll_all(srv, "scr2", 37, with_payload=False)
    want = sorted(ints[50:]) + sorted(strs[10:])
    assert [p["id"] for p in got] == want


def test_scroll_empty_collection(srv):
    create(srv, "scr_empty", 2)
    r = ok(srv.request("POST", "/v1/collections/scr_empty/scroll", {"limit": 10, "cursor": None}))
    assert r == {"points": [], "next_cursor": None}


# ------------------------------------------------------------------ keep-alive

def test_keep_alive_many_requests_on_one_connection(srv):
    create(srv, "ka", 2, index="flat")
    conn = srv.connection()
    conn.connect()
    sock = conn.sock
    for i in range(150):
        r = ok(srv.request("POST", "/v1/collections/ka/points",
                           {"points": [{"id": i, "vector": [i, 1]}]}, conn=conn))
        assert r == {"upserted": 1}
        assert conn.sock is sock, f"connection closed after request {i}"
        ok(srv.request("GET", f"/v1/collections/ka/points/{i}", conn=conn))
        hits = ok(srv.request("POST", "/v1/collections/ka/search",
                              {"vector": [i, 1], "k": 1}, conn=conn))["results"]
        assert hits[0]["id"] == i
        assert conn.sock is sock
    # errors keep the connection too
    err(srv.request("GET", "/v1/collections/ka/points/99999", conn=conn), 404, "not_found")
    err(srv.request("POST", "/v1/collections/ka/search", {"vector": [1]}, conn=conn), 400, "invalid_argument")
    assert ok(srv.request("GET", "/v1/health", conn=conn))["status"] == "ok"
    assert conn.sock is sock
    conn.close()


def test_pipelined_requests(srv):
    """Two requests written back to back before reading: both answered in order."""
    s = srv.raw_socket(timeout=30)
    req = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    req2 = b"GET /v1/collections/nope_pipe HTTP/1.1\r\nHost: x\r\n\r\n"
    s.sendall(req + req2)
    f = s.makefile("rb")
    assert read_response(f) == (200, {"status": "ok", "version": "0.1.0"})
    err(read_response(f), 404, "not_found", "nope_pipe")
    s.close()


# ------------------------------------------------------------------ metrics

def metric_lines(text):
    return [l for l in text.splitlines() if l and not l.startswith("#")]


def labels_of(line):
    m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
    assert m, f"not a Prometheus sample: {line!r}"
    name, _, lab, value = m.groups()
    d = dict(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', lab or ""))
    return name, d, float(value)


def test_metrics(srv, hnsw_set):
    base, q = hnsw_set
    create(srv, "met", 2, index="flat")
    upsert(srv, "met", [{"id": i, "vector": [i, 0]} for i in range(17)])
    search(srv, "hn", vector=vec(q[0]), k=3)
    search(srv, "hn", vector=vec(q[0]), k=3, exact=True)
    srv.request("GET", "/v1/collections/met/points/12345")  # a 404
    c = srv.connection()
    c.request("GET", "/metrics")
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    assert r.status == 200
    assert (r.getheader("Content-Type") or "").startswith("text/plain")
    samples = [labels_of(l) for l in metric_lines(text)]
    assert samples
    for name, _, _ in samples:
        assert name.startswith("needle_"), name
    for l in text.splitlines():
        if l.startswith("# TYPE ") or l.startswith("# HELP "):
            assert l.split()[2].startswith("needle_"), l

    def find(name, **want):
        out = []
        for n, lab, v in samples:
            if n == name and all(re.search(p, lab.get(k, "")) for k, p in want.items()):
                out.append(v)
        return out

    # request counts by route and status
    reqs = [(lab, v) for n, lab, v in samples if n == "needle_http_requests_total"]
    assert any("search" in " ".join(lab.values()) and "200" in lab.values() and v >= 2
               for lab, v in reqs), reqs
    assert any("404" in lab.values() for lab, v in reqs), reqs
    # latency histogram
    buckets = [(lab, v) for n, lab, v in samples if n == "needle_http_request_duration_seconds_bucket"]
    assert buckets and any(lab.get("le") == "+Inf" and v >= 1 for lab, v in buckets)
    assert find("needle_http_request_duration_seconds_count")
    assert find("needle_http_request_duration_seconds_sum")
    # searches by plan
    assert sum(find("needle_searches_total", plan="^hnsw$")) >= 1
    assert sum(find("needle_searches_total", plan="^exact$")) >= 1
    # points per collection
    assert find("needle_collection_points", collection="^met$") == [17.0]
    assert find("needle_collection_points", collection="^hn$") == [1500.0]
    # WAL fsync latency: a histogram or a summary, with at least one fsync
    fs = [n for n, _, _ in samples if n.startswith("needle_wal_fsync_duration_seconds")]
    assert fs, "no needle_wal_fsync_duration_seconds"
    assert sum(find("needle_wal_fsync_duration_seconds_count")) >= 1
    # process memory
    rss = find("needle_process_resident_memory_bytes")
    assert len(rss) == 1 and rss[0] > 1e6


def test_metrics_counts_grow(srv):
    def total(text):
        return sum(v for n, lab, v in map(labels_of, metric_lines(text))
                   if n == "needle_http_requests_total" and "200" in lab.values()
                   and "health" in " ".join(lab.values()))
    a = total(ok(srv.request("GET", "/metrics")))
    for _ in range(5):
        srv.request("GET", "/v1/health")
    b = total(ok(srv.request("GET", "/metrics")))
    assert b - a >= 5


# ------------------------------------------------------------------ concurrency

def test_concurrent_upserts_and_searches(srv):
    dim, threads, batches, per = 8, 8, 12, 10
    create(srv, "conc", dim, "l2", index={"type": "hnsw", "m": 8, "ef_construction": 40})
    rng = np.random.default_rng(99)
    data = {t: rng.normal(size=(batches * per, dim)).astype(np.float32) for t in range(threads)}
    errors = []

    def work(t):
        try:
            conn = srv.connection()
            for b in range(batches):
                lo = b * per
                ids = [t * 100000 + lo + j if j % 2 == 0 else f"t{t}-{lo + j}" for j in range(per)]
                pts = points(data[t][lo:lo + per], ids, payloads=[{"t": t, "j": lo + j} for j in range(per)])
                st, body = srv.request("POST", "/v1/collections/conc/points", {"points": pts}, conn=conn)
                assert st == 200 and body == {"upserted": per}, (st, body)
                st, body = srv.request("POST", "/v1/collections/conc/search",
                                       {"vector": vec(data[t][lo]), "k": 5, "exact": b % 2 == 0},
                                       conn=conn)
                assert st == 200, body
                # its own point was just written: an exact search finds it at distance 0
                if b % 2 == 0:
                    assert body["results"][0]["distance"] == pytest.approx(0, abs=1e-5), body
                st, body = srv.request("POST", "/v1/collections/conc/count", {}, conn=conn)
                assert st == 200
            conn.close()
        except BaseException as e:  # noqa: B902 (re-raised in the main thread)
            errors.append((t, repr(e)))

    ths = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(120)
    assert not errors, errors
    assert count(srv, "conc") == threads * batches * per
    for t in range(threads):
        ids = [t * 100000 + j if j % 2 == 0 else f"t{t}-{j}" for j in range(batches * per)]
        got = ok(srv.request("POST", "/v1/collections/conc/points/get",
                             {"ids": ids, "with_vector": True, "with_payload": True}))["points"]
        assert [p["id"] for p in got] == ids
        for j, p in enumerate(got):
            same_f32(p["vector"], data[t][j])
            assert p["payload"] == {"t": t, "j": j}
    # the graph serves every point: each is its own nearest neighbour
    hits = ok(srv.request("POST", "/v1/collections/conc/search/batch",
                          {"searches": [{"vector": vec(data[t][j]), "k": 1, "ef": 64}
                                        for t in range(threads) for j in range(0, batches * per, 7)]}))
    want = [t * 100000 + j if j % 2 == 0 else f"t{t}-{j}"
            for t in range(threads) for j in range(0, batches * per, 7)]
    got = [r[0]["id"] for r in hits["results"]]
    assert sum(a == b for a, b in zip(got, want)) >= 0.95 * len(want)
