"""The Python client (clients/python, package `needle`) in both modes.

Every test taking the `db` fixture runs twice: against a real `needle serve`
through needle.Client ("http"), and against libneedle loaded in this process
through needle.open ("embedded"). The same bodies, so both modes must accept,
refuse and answer alike.

The embedded mode loads the libneedle.so beside $NEEDLE_BIN (`make e2e`:
build-asan). An ASan-built library can only be loaded into a process started
with the ASan runtime preloaded; when this process is not, the embedded cases
are skipped here and test_in_asan_child_process runs them (`-k
embedded`) in a child python with LD_PRELOAD of that runtime and
detect_leaks=0 (CPython itself leaks by design). A release library loads
directly and everything runs in this process.
"""
import ctypes
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import (ENV, NEEDLE, ROOT, SANITIZER_MARKS, clustered, distances, exact_knn,
                      nested_not, recall)
from server import NeedleServer

CLIENT_DIR = ROOT / "clients" / "python"
sys.path.insert(0, str(CLIENT_DIR))
import needle  # noqa: E402
from needle import NeedleError  # noqa: E402
from needle import _capi  # noqa: E402  (struct layouts, the ASan check)

LIB = Path(os.environ.setdefault("NEEDLE_LIB", str(Path(NEEDLE).parent / "libneedle.so")))
LIB_IS_ASAN = LIB.exists() and b"libasan.so" in LIB.resolve().read_bytes()
IN_PROCESS = LIB.exists() and not _capi._needs_asan(str(LIB))
CHILD = os.environ.get("NEEDLE_PY_CHILD") == "1"

# Servers started from the ASan child get the parent's sanitizer settings
# back (leak checks on, no preload): only the child python needs them off.
SERVER_ENV = ({"LD_PRELOAD": os.environ.get("NEEDLE_PY_SERVER_LD_PRELOAD", ""),
               "ASAN_OPTIONS": os.environ["NEEDLE_PY_SERVER_ASAN_OPTIONS"]}
              if CHILD else None)

needs_lib = pytest.mark.skipif(
    not IN_PROCESS, reason="libneedle needs the ASan runtime preloaded: run by "
    "test_in_asan_child_process" if LIB_IS_ASAN else f"{LIB} not built")

MODES = ["http", pytest.param("embedded", marks=needs_lib)]
ID_MAX = 2**63 - 1


def serve(data, *args):
    return NeedleServer(data, *args, env=SERVER_ENV)


@pytest.fixture(params=MODES)
def db(request, tmp_path):
    """A needle.Client of a fresh server, or a needle.open()ed fresh directory."""
    if request.param == "http":
        with serve(tmp_path / "data") as s:
            client = needle.Client(s.url)
            client.mode = "http"
            yield client
            client.close()
    else:
        with needle.open(tmp_path / "data") as d:
            d.mode = "embedded"
            yield d


ANY = object()


def raises(code, fn, *args, status=ANY, **kwargs):
    """fn(...) must raise NeedleError `code` with a message (and, unless ANY,
    the HTTP status `status`; None for the embedded mode)."""
    with pytest.raises(NeedleError) as info:
        fn(*args, **kwargs)
    e = info.value
    assert e.code == code, f"expected {code}, got {e!r}"
    assert e.message
    if status is not ANY:
        assert e.status == status, repr(e)
    return e


def http_status(db, status):
    """The status an error carries in db's mode: None when embedded."""
    return status if db.mode == "http" else None


def unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def order_key(i):
    """Scroll order: integers ascending, then strings bytewise."""
    return (0, i, b"") if isinstance(i, int) else (1, 0, i.encode())


# ------------------------------------------------------------------ collections

def test_health(db):
    h = db.health()
    assert h["status"] == "ok"
    assert re.fullmatch(r"\d+\.\d+\.\d+", h["version"])


def test_create_get_list_delete_collection(db):
    c = db.create_collection("docs", 8, metric="l2", m=12, ef_construction=64)
    assert isinstance(c, needle.Collection) and c.name == "docs"
    info = c.info()
    assert info["name"] == "docs" and info["dimension"] == 8 and info["metric"] == "l2"
    assert info["index"]["type"] == "hnsw"
    assert (info["index"]["m"], info["index"]["ef_construction"]) == (12, 64)
    assert (info["count"], info["deleted"], info["status"]) == (0, 0, "ready")
    assert info["quantization"] == {"type": "none"} and info["fields"] == {}

    # The same config again is fine; another one is refused.
    assert db.create_collection("docs", 8, metric="l2", m=12, ef_construction=64).name == "docs"
    raises("already_exists", db.create_collection, "docs", 8, metric="l2",
           status=http_status(db, 409))
    raises("already_exists", db.create_collection, "docs", 9, metric="l2", m=12,
           ef_construction=64)

    flat = db.create_collection("flat", 3, metric="ip", index="flat")
    assert flat.info()["index"] == {"type": "flat"}
    cos = db.create_collection("cos", 4)  # the defaults: cosine, HNSW 16/200
    assert cos.info()["metric"] == "cosine"
    assert (cos.info()["index"]["m"], cos.info()["index"]["ef_construction"]) == (16, 200)

    assert db.get_collection("docs").info()["dimension"] == 8
    c.upsert([1, 2], [[0.0] * 8, [1.0] * 8])
    assert db.list_collections() == [{"name": "cos", "count": 0}, {"name": "docs", "count": 2},
                                     {"name": "flat", "count": 0}]

    assert db.delete_collection("docs") is None
    raises("not_found", db.get_collection, "docs", status=http_status(db, 404))
    raises("not_found", db.delete_collection, "docs")
    raises("not_found", c.count)  # a Collection of a deleted collection
    assert [x["name"] for x in db.list_collections()] == ["cos", "flat"]


def test_collection_config_errors(db):
    raises("invalid_argument", db.create_collection, "bad.name", 4, status=http_status(db, 400))
    raises("invalid_argument", db.create_collection, "bad name", 4)
    raises("invalid_argument", db.create_collection, "", 4)
    raises("invalid_argument", db.create_collection, "x" * 65, 4)
    raises("invalid_argument", db.create_collection, "d0", 0)
    raises("invalid_argument", db.create_collection, "d1", 65537)
    raises("invalid_argument", db.create_collection, "m", 4, metric="manhattan")
    raises("invalid_argument", db.create_collection, "mm", 4, m=1)
    raises("invalid_argument", db.create_collection, "u", 4, colour="red")
    raises("unsupported", db.create_collection, "q", 4, quantization={"type": "pq"},
           status=http_status(db, 501))
    raises("unsupported", db.create_collection, "ivf", 4, index="ivf")
    raises("invalid_argument", db.create_collection, "f", 4, fields={"tag": "words"})
    raises("invalid_argument", db.create_collection, "f", 4, fields={"$tag": "keyword"})
    raises("invalid_argument", db.create_collection, "f", 4, fields={"a..b": "keyword"})
    raises("invalid_argument", db.create_collection, "f", 4, fields={"tag": 3})
    raises("invalid_argument", db.create_collection, "f", 4, fields=["tag"])
    assert db.list_collections() == []
    # quantization none and empty fields are the defaults, spelled out
    c = db.create_collection("ok", 4, quantization={"type": "none"}, fields={},
                             index={"type": "hnsw", "m": 8, "seed": 7})
    assert c.info()["index"]["seed"] == 7


def test_payload_field_indexes(db):
    """docs/FILTERS.md "Payload indexes", the same in both modes: fields at
    create and added later, listed by info(), types enforced, filters
    answered, the same-config rule counting fields."""
    fields = {"cat": "keyword", "n": "int", "meta.who": "keyword"}
    c = db.create_collection("fx", 2, metric="l2", fields=fields)
    assert c.info()["fields"] == fields
    assert db.create_collection("fx", 2, metric="l2", fields=fields).info()["fields"] == fields
    raises("already_exists", db.create_collection, "fx", 2, metric="l2")
    raises("already_exists", db.create_collection, "fx", 2, metric="l2", fields={"cat": "text"})
    c.upsert([1, 2, 3], [[0, 0], [1, 0], [2, 0]],
             [{"cat": "a", "n": 1, "meta": {"who": "x"}}, {"cat": ["a", "b"], "n": 5}, {"t": "hi there"}])
    raises("invalid_argument", c.upsert, [4], [[3, 0]], [{"n": "five"}])
    raises("invalid_argument", c.set_payload, 1, {"cat": 7})
    assert c.count(filter={"cat": "a"}) == 2
    assert c.count(filter={"n": {"$gt": 1.5}}) == 1
    assert c.count(filter={"meta.who": "x"}) == 1
    assert c.add_field("t", "text") is True
    assert c.add_field("t", "text") is False
    raises("already_exists", c.add_field, "t", "keyword")
    raises("invalid_argument", c.add_field, "t", "words")
    raises("invalid_argument", c.add_field, "$t", "text")
    raises("invalid_argument", c.add_field, "cat", 5)
    raises("invalid_argument", c.add_field, "a\x00b", "int")  # a NUL: refused, not cut at it
    raises("invalid_argument", c.add_field, "n3", "int\x00")
    raises("invalid_argument", db.create_collection, "fy", 2, metric="l2", fields={"a\x00b": "int"})
    # refused alike in both modes, never sent as "1" or raised as a UnicodeEncodeError
    raises("invalid_argument", db.create_collection, "fy", 2, metric="l2", fields={1: "int"})
    raises("invalid_argument", db.create_collection, "fy", 2, metric="l2", fields={"\ud800": "int"})
    raises("invalid_argument", db.create_collection, "fy", 2, metric="l2", fields={"a": "int\ud800"})
    raises("invalid_argument", c.add_field, "\ud800", "int")
    raises("invalid_argument", c.add_field, "n3", "int\ud800")
    assert "fy" not in [x["name"] for x in db.list_collections()]
    c.upsert([9], [[9, 9]], [{"n2": 1}])
    raises("invalid_argument", c.add_field, "n2", "keyword")  # a stored 1 is no keyword
    assert c.info()["fields"] == {**fields, "t": "text"}
    assert [h["id"] for h in c.search([0, 0], k=5, filter={"t": {"$text": "HI"}})] == [3]
    ex = c.explain([0, 0], k=5, filter={"cat": "b"})
    assert ex["plan"] == "exact" and ex["estimated_matches"] == 1 and ex["matched"] == 1


def test_collection_name_with_a_slash_is_refused(db):
    """SPEC §3: a bad name is 400, also one holding a '/' (sent as %2F)."""
    raises("invalid_argument", db.create_collection, "bad/name", 4, status=http_status(db, 400))
    raises("invalid_argument", db.get_collection, "a/b", status=http_status(db, 400))


# ------------------------------------------------------------------ points

def test_upsert_int_and_str_ids_with_payloads(db):
    c = db.create_collection("p", 3, metric="l2")
    ids = [0, 7, ID_MAX, "a", "ünï-cødé", "123", "x" * 256]
    vectors = [[float(i), 0.5, -1.25] for i in range(len(ids))]
    payloads = [{"n": 0}, None, {"big": ID_MAX, "neg": -5}, {"nested": {"l": [1, "two", None]}},
                {"text": "ünï €"}, {"digits": True}, {}]
    assert c.upsert(ids, vectors, payloads) == len(ids)
    assert c.count() == len(ids)
    got = c.get(ids, with_vector=True)
    assert [p["id"] for p in got] == ids  # ids come back as given: 123 != "123"
    assert [p["vector"] for p in got] == vectors
    assert [p["payload"] for p in got] == payloads

    # Upserting an id again replaces its vector and its payload (None: none).
    assert c.upsert([7, "a"], [[9, 9, 9], [8, 8, 8]], [{"new": 1}, None]) == 2
    assert c.count() == len(ids)
    assert c.get(7, with_vector=True) == {"id": 7, "vector": [9.0, 9.0, 9.0],
                                          "payload": {"new": 1}}
    assert c.get("a") == {"id": "a", "payload": None}
    # no payloads at all; an empty upsert
    assert c.upsert([100], [[1, 2, 3]]) == 1
    assert c.get(100)["payload"] is None
    assert c.upsert([], []) == 0
    assert c.count() == len(ids) + 1


def test_upsert_errors_write_nothing(db):
    c = db.create_collection("e", 3, metric="l2")
    st = http_status(db, 400)
    raises("invalid_argument", c.upsert, [1, 2], [[1, 2, 3], [1, 2]], status=st)
    raises("invalid_argument", c.upsert, [1], [[1, 2, 3, 4]], status=st)
    raises("invalid_argument", c.upsert, [1], [[1, float("nan"), 3]])
    raises("invalid_argument", c.upsert, [1], [[1, float("inf"), 3]])
    e = raises("invalid_argument", c.upsert, [1], [[1, 1e39, 3]], status=st)  # not a float32
    assert e.message == "point 0: vector value 1 is out of the float range"  # the server's
    raises("invalid_argument", c.upsert, [-1], [[1, 2, 3]])
    raises("invalid_argument", c.upsert, [ID_MAX + 1], [[1, 2, 3]])
    raises("invalid_argument", c.upsert, [""], [[1, 2, 3]], status=st)
    raises("invalid_argument", c.upsert, ["x" * 257], [[1, 2, 3]], status=st)
    raises("invalid_argument", c.upsert, [1.5], [[1, 2, 3]])
    raises("invalid_argument", c.upsert, [1], [[1, 2, 3]], [[1, 2]])  # payload not a dict
    raises("invalid_argument", c.upsert, [1], [[1, 2, 3]], [{"x": float("nan")}])
    raises("invalid_argument", c.upsert, [1, 2], [[1, 2, 3]])
    raises("invalid_argument", c.upsert, [1], [[1, 2, 3]], [None, None])
    raises("invalid_argument", c.upsert, 5, [[1, 2, 3]])
    # a bad point anywhere in a batch: nothing of the batch is written
    raises("invalid_argument", c.upsert, [1, 2, 3], [[1, 2, 3], [4, 5, 6], [7, 8]])
    assert c.count() == 0


def gen(values):
    """values one at a time: an iterable with no len()."""
    yield from values


# Input both modes must refuse with invalid_argument: over HTTP the server
# (400) or the client before sending (status None), embedded the client or
# libneedle. Each is (what, call on a collection of dimension 3 holding
# point 1).
BAD_INPUT = [
    ("bool in a vector", lambda c: c.upsert([2], [[True, 0, 0]])),
    ("np.bool_ in a vector", lambda c: c.upsert([2], [[np.bool_(True), 0.0, 0.0]])),
    ("numpy bool array", lambda c: c.upsert([2], np.array([[True, False, True]]))),
    ("numpy bool row", lambda c: c.upsert([2], [np.array([True, False, True])])),
    ("str in a vector", lambda c: c.upsert([2], [["1", 0, 0]])),
    ("None in a vector", lambda c: c.upsert([2], [[None, 0, 0]])),
    ("numpy str array", lambda c: c.upsert([2], np.array([["1", "2", "3"]]))),
    ("numpy complex array", lambda c: c.upsert([2], np.array([[1 + 1j, 2, 3]]))),
    ("complex in a vector", lambda c: c.upsert([2], [[1 + 1j, 2, 3]])),
    ("numpy object array", lambda c: c.upsert([2], np.array([[1, 2, 3]], dtype=object))),
    ("dict as a vector", lambda c: c.upsert([2], [{0: 1.0, 1: 2.0, 2: 3.0}])),
    ("set as a vector", lambda c: c.upsert([2], [{1.0, 2.0, 3.0}])),
    ("str as a vector", lambda c: c.upsert([2], ["abc"])),
    ("number as a vector", lambda c: c.upsert([2], [5])),
    ("10**400 in a vector", lambda c: c.upsert([2], [[10**400, 0, 0]])),
    ("1e39 in a numpy vector", lambda c: c.upsert([2], np.array([[1e39, 0, 0]]))),
    ("search: bool in the vector", lambda c: c.search([True, 0, 0])),
    ("search: numpy bool vector", lambda c: c.search(np.array([True, False, True]))),
    ("search: numpy complex vector", lambda c: c.search(np.array([1j, 0, 0]))),
    ("search: numpy str vector", lambda c: c.search(np.array(["1", "0", "0"]))),
    ("search: dict as the vector", lambda c: c.search({0: 1, 1: 0, 2: 0})),
    ("search: set as the vector", lambda c: c.search({1, 2, 3})),
    ("search: None as the vector", lambda c: c.search(None)),
    ("search: 10**400 in the vector", lambda c: c.search([10**400, 0, 0])),
    ("search: 1e39 in the vector", lambda c: c.search([1e39, 0, 0])),
    ("search_batch: bool in a vector", lambda c: c.search_batch([[1, 0, 0], [0, False, 0]])),
    ("search_batch: numpy bool array", lambda c: c.search_batch(np.ones((2, 3), dtype=bool))),
    ("min_score 10**400", lambda c: c.search([1, 0, 0], min_score=10**400)),
    ("min_score bool", lambda c: c.search([1, 0, 0], min_score=True)),
    ("min_score str", lambda c: c.search([1, 0, 0], min_score="0.5")),
    ("k bool", lambda c: c.search([1, 0, 0], k=True)),
    ("k np.bool_", lambda c: c.search([1, 0, 0], k=np.bool_(True))),
    ("k float", lambda c: c.search([1, 0, 0], k=1.0)),
    ("ef np.bool_", lambda c: c.search([1, 0, 0], k=1, ef=np.bool_(True))),
    ("limit np.bool_", lambda c: c.scroll(limit=np.bool_(True))),
    ("limit bool", lambda c: c.scroll(limit=True)),
    ("exact 1", lambda c: c.search([1, 0, 0], exact=1)),
    ("upsert: NUL in a string id", lambda c: c.upsert(["a\0b"], [[1, 0, 0]])),
    ("get: NUL in a string id", lambda c: c.get(["a\0b"])),
    ("delete: NUL in a string id", lambda c: c.delete("a\0b")),
    ("set_payload: NUL in a string id", lambda c: c.set_payload("a\0b", {"x": 1})),
    ("scroll: NUL in the cursor", lambda c: c.scroll(cursor="a\0")),
    ("upsert: np.bool_ id", lambda c: c.upsert([np.bool_(True)], [[1, 0, 0]])),
    ("upsert: bool id", lambda c: c.upsert([False], [[1, 0, 0]])),
    ("upsert: numpy bool ids", lambda c: c.upsert(np.array([True]), [[1, 0, 0]])),
    ("get: np.bool_ id", lambda c: c.get([np.bool_(True)])),
    ("get: 0-d float array", lambda c: c.get(np.array(1.5))),
    ("delete: np.bool_ id", lambda c: c.delete(np.bool_(True))),
    ("set_payload: bool id", lambda c: c.set_payload(True, {"x": 1})),
    ("set_payload: id over 2^63-1", lambda c: c.set_payload(ID_MAX + 1, {"x": 1})),
    ("set_payload: empty string id", lambda c: c.set_payload("", {"x": 1})),
    ("set_payload: lone surrogate id", lambda c: c.set_payload("\ud800", {"x": 1})),
    ("scroll: bool cursor", lambda c: c.scroll(cursor=True)),
    ("ids as a set", lambda c: c.get({1, 2})),
    ("ids as a dict", lambda c: c.delete({1: 2})),
    ("payloads as a dict", lambda c: c.upsert([2], [[1, 0, 0]], {"a": 1})),
    ("payload key int", lambda c: c.upsert([2], [[1, 0, 0]], [{1: "x"}])),
    ("payload key None, nested", lambda c: c.upsert([2], [[1, 0, 0]], [{"a": [{None: 1}]}])),
    ("set_payload key float", lambda c: c.set_payload(1, {1.5: "x"})),
    ("set_payload key bool, nested", lambda c: c.set_payload(1, {"a": {True: 1}})),
    ("search: filter a list", lambda c: c.search([1, 0, 0], filter=[{"keep": 1}])),
    ("search: filter a str", lambda c: c.search([1, 0, 0], filter='{"keep": 1}')),
    ("search: filter NaN", lambda c: c.search([1, 0, 0], filter={"keep": float("nan")})),
    ("search: filter key int", lambda c: c.search([1, 0, 0], filter={"$or": [{1: 1}]})),
    ("search: unknown operator", lambda c: c.search([1, 0, 0], filter={"keep": {"$x": 1}})),
    ("search: explain option", lambda c: c.search([1, 0, 0], explain=True)),
    ("search_batch: filter a tuple", lambda c: c.search_batch([[1, 0, 0]], filter=("a", 1))),
    ("search_batch: bad filter", lambda c: c.search_batch([[1, 0, 0]], filter={"$and": []})),
    ("explain: bad filter", lambda c: c.explain([1, 0, 0], filter={"keep": []})),
    ("count: filter a list", lambda c: c.count(filter=[])),
    ("count: bad filter", lambda c: c.count(filter={"keep": {"$in": 1}})),
    ("scroll: filter a set", lambda c: c.scroll(filter={"keep"})),
    ("scroll: bad filter", lambda c: c.scroll(filter={"": 1})),
    ("delete: neither ids nor filter", lambda c: c.delete()),
    ("delete: ids and filter", lambda c: c.delete([1], filter={"keep": 1})),
    ("delete: ids and filter {}", lambda c: c.delete(1, filter={})),
    ("delete: filter a list", lambda c: c.delete(filter=[{"keep": 1}])),
    ("delete: filter as ids", lambda c: c.delete({"keep": 1})),
    ("delete: bad filter", lambda c: c.delete(filter={"keep": {"$gt": [1]}})),
    ("delete: filter too deep", lambda c: c.delete(filter=nested_not(70))),
]


@pytest.mark.parametrize("what,call", BAD_INPUT, ids=[w for w, _ in BAD_INPUT])
def test_bad_input_same_code_in_both_modes(db, what, call):
    c = db.create_collection("bad", 3, metric="l2")
    c.upsert([1], [[1, 0, 0]], [{"keep": 1}])
    e = raises("invalid_argument", call, c)
    if db.mode == "embedded":
        assert e.status is None
    else:
        assert e.status in (None, 400)
    assert c.count() == 1 and c.get(1) == {"id": 1, "payload": {"keep": 1}}  # nothing written


NONE_OPTIONS = [
    ("search k", "k", lambda c: c.search([1, 0, 0], k=None)),
    ("search ef", "ef", lambda c: c.search([1, 0, 0], ef=None)),
    ("search offset", "offset", lambda c: c.search([1, 0, 0], offset=None)),
    ("search exact", "exact", lambda c: c.search([1, 0, 0], exact=None)),
    ("search min_score", "min_score", lambda c: c.search([1, 0, 0], min_score=None)),
    ("search with_payload", "with_payload", lambda c: c.search([1, 0, 0], with_payload=None)),
    ("search with_vector", "with_vector", lambda c: c.search([1, 0, 0], with_vector=None)),
    ("search_batch ef", "ef", lambda c: c.search_batch([[1, 0, 0]], ef=None)),
    ("search_batch k", "k", lambda c: c.search_batch([[1, 0, 0]], k=None)),
    ("get with_vector", "with_vector", lambda c: c.get([1], with_vector=None)),
    ("get with_payload", "with_payload", lambda c: c.get(1, with_payload=None)),
    ("scroll limit", "limit", lambda c: c.scroll(limit=None)),
    ("scroll with_payload", "with_payload", lambda c: c.scroll(with_payload=None)),
    ("scroll with_vector", "with_vector", lambda c: c.scroll(with_vector=None)),
    ("create dimension", "dimension", lambda c: c.db.create_collection("n1", None)),
    ("create metric", "metric", lambda c: c.db.create_collection("n2", 3, metric=None)),
    ("create index", "index", lambda c: c.db.create_collection("n3", 3, index=None)),
    ("create index type", "index",
     lambda c: c.db.create_collection("n4", 3, index={"type": None})),
    ("create index m", "m", lambda c: c.db.create_collection("n5", 3, index={"m": None})),
    ("create quantization", "quantization",
     lambda c: c.db.create_collection("n6", 3, quantization=None)),
    ("create fields", "fields", lambda c: c.db.create_collection("n7", 3, fields=None)),
]


@pytest.mark.parametrize("what,field,call", NONE_OPTIONS,
                         ids=[w for w, _, _ in NONE_OPTIONS])
def test_none_options_are_refused(db, what, field, call):
    """None is JSON null over HTTP, which the server refuses (400) for a
    number or a bool: the embedded mode refuses it too, never a default."""
    c = db.create_collection("none", 3, metric="l2")
    c.upsert([1], [[1, 0, 0]])
    c.db = db
    e = raises("invalid_argument", call, c, status=http_status(db, 400))
    assert f"'{field}'" in e.message  # the field named, as the server does
    assert [x["name"] for x in db.list_collections()] == ["none"]
    # cursor=None is the first page, not an error
    assert c.scroll(cursor=None) == ([{"id": 1, "payload": None}], None)


def test_config_refuses_ignored_hnsw_settings(db):
    """m and ef_construction would mean nothing next to a flat index or an
    index dict: refused rather than dropped."""
    raises("invalid_argument", db.create_collection, "f", 4, index="flat", m=8, status=None)
    raises("invalid_argument", db.create_collection, "f", 4, index="flat", ef_construction=50)
    raises("invalid_argument", db.create_collection, "f", 4, index={"type": "hnsw"}, m=8)
    assert db.list_collections() == []
    assert db.create_collection("f", 4, index="flat").info()["index"] == {"type": "flat"}
    info = db.create_collection("h", 4, m=8).info()["index"]
    assert (info["m"], info["ef_construction"]) == (8, 200)
    info = db.create_collection("d", 4, index={"type": "hnsw", "ef_construction": 50}).info()
    assert (info["index"]["m"], info["index"]["ef_construction"]) == (16, 50)


def test_iterables_and_0d_arrays(db):
    """Any iterable goes where a list does (read once); a 0-d numpy array is
    one id."""
    from array import array
    c = db.create_collection("it", 3, metric="l2")
    assert c.upsert(gen([1, "b"]), gen([gen([1, 0, 0]), (0, 1, 0)]),
                    gen([{"g": 1}, None])) == 2
    assert c.upsert((i for i in [3]), [array("d", [0, 0, 1])]) == 1
    assert c.get(gen([1, "b", 3]), with_vector=True) == [
        {"id": 1, "vector": [1.0, 0.0, 0.0], "payload": {"g": 1}},
        {"id": "b", "vector": [0.0, 1.0, 0.0], "payload": None},
        {"id": 3, "vector": [0.0, 0.0, 1.0], "payload": None}]
    assert [h["id"] for h in c.search(gen([0, 0.9, 0]), k=1)] == ["b"]
    assert [[h["id"] for h in hits] for hits in
            c.search_batch(gen([(1, 0, 0), array("f", [0, 0, 1])]), k=1)] == [[1], [3]]
    assert c.get(np.array(1)) == {"id": 1, "payload": {"g": 1}}
    assert c.get(np.array("b")) == {"id": "b", "payload": None}
    c.set_payload(np.array(3), {"z": 0})
    assert c.get(3)["payload"] == {"z": 0}
    assert c.delete(np.array(1)) == 1 and c.delete(gen(["b"])) == 1
    assert c.count() == 1


def test_search_batch_over_1024_searches(db):
    """Over HTTP a batch goes as requests of at most 1024 searches; answers
    and errors are those of one batch (an error names its search by its
    index in the whole batch)."""
    base = clustered(50, 4, seed=31)
    c = db.create_collection("big_batch", 4, metric="l2")
    c.upsert(list(range(50)), base)
    queries = np.concatenate([base] * 42)  # 2100 searches: three requests
    found = c.search_batch(queries, k=2, exact=True, with_payload=False)
    assert len(found) == 2100
    assert [hits[0]["id"] for hits in found] == list(range(50)) * 42
    assert found[2099] == c.search(queries[2099], k=2, exact=True, with_payload=False)

    rows = queries.tolist()
    rows[1027] = rows[1027][:3]
    e = raises("invalid_argument", c.search_batch, rows, k=2, status=http_status(db, 400))
    assert e.message == "searches[1027]: vector has 3 values; the collection has dimension 4"
    rows = queries.tolist()
    rows[2050][1] = 1e39
    e = raises("invalid_argument", c.search_batch, rows, k=2)
    assert e.message == "searches[2050]: vector value 1 is out of the float range"
    e = raises("invalid_argument", c.search_batch, queries, k=0)
    assert e.message.startswith("searches[0]: 'k'")


def test_batch_hits_carry_their_own_vectors(db):
    c = db.create_collection("bv", 3, metric="l2")
    c.upsert([1, 2, 3], [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    for hits in c.search_batch([[1, 0, 0], [0, 0, 1]], k=3, exact=True, with_vector=True):
        for h in hits:
            assert h["vector"] == c.get(h["id"], with_vector=True)["vector"]
        assert len({tuple(h["vector"]) for h in hits}) == 3


def test_numpy_input(db):
    c = db.create_collection("np", 4, metric="l2")
    x = np.arange(20, dtype=np.float64).reshape(5, 4) / 7.0  # float64: sent as float32
    ids = np.arange(10, 15, dtype=np.int64)
    assert c.upsert(ids, x) == 5
    got = c.get(np.array([14, 10]), with_vector=True)
    assert [p["id"] for p in got] == [14, 10]
    assert all(type(p["id"]) is int for p in got)
    np.testing.assert_array_equal(np.array([p["vector"] for p in got], dtype=np.float32),
                                  x[[4, 0]].astype(np.float32))
    hits = c.search(np.float32(x[2]), k=2, exact=True)
    assert hits[0]["id"] == 12 and hits[0]["distance"] == 0.0
    hits = c.search(x[3], k=np.int64(1), ef=np.int32(8), exact=np.bool_(True))
    assert [h["id"] for h in hits] == [13]
    batch = c.search_batch(x[:3].astype(np.float32), k=1, exact=True)
    assert [b[0]["id"] for b in batch] == [10, 11, 12]
    assert c.delete(np.array([10, 11])) == 2
    raises("invalid_argument", c.upsert, [1], np.zeros((1, 3)))
    raises("invalid_argument", c.search, np.zeros((1, 4)))  # one vector is 1-D


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip", "l1"])
def test_exact_search_matches_brute_force(db, metric):
    base, queries = clustered(300, 16, seed=1), clustered(20, 16, seed=2)
    c = db.create_collection("x", 16, metric=metric)
    c.upsert(list(range(300)), base)
    k = 10
    truth = distances(base, queries, metric)
    for q in range(len(queries)):
        hits = c.search(queries[q], k=k, exact=True)
        assert len(hits) == k
        d = np.array([h["distance"] for h in hits])
        # the k smallest distances, best first, each the true one of its id
        np.testing.assert_allclose(d, np.sort(truth[q])[:k], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(d, truth[q][[h["id"] for h in hits]], rtol=1e-4, atol=1e-4)
        assert list(d) == sorted(d)
        for h in hits:  # SPEC §1: scores from distances
            want = {"l2": 1 / (1 + h["distance"]), "l1": 1 / (1 + h["distance"]),
                    "cosine": 1 - h["distance"], "ip": -h["distance"]}[metric]
            assert h["score"] == pytest.approx(want, rel=1e-5, abs=1e-5)
            assert set(h) == {"id", "score", "distance", "payload"}


def test_hnsw_recall_and_flat(db):
    base, queries = clustered(2000, 32, seed=11), clustered(50, 32, seed=12)
    truth = exact_knn(base, queries, 10)
    h = db.create_collection("h", 32, metric="l2", m=12, ef_construction=100)
    f = db.create_collection("f", 32, metric="l2", index="flat")
    for c in (h, f):
        for start in range(0, 2000, 500):  # several batches
            c.upsert(list(range(start, start + 500)), base[start:start + 500])
    found = [[x["id"] for x in c_hits] for c_hits in h.search_batch(queries, k=10, ef=64)]
    assert recall(found, truth) >= 0.9
    flat = [[x["id"] for x in c_hits] for c_hits in f.search_batch(queries, k=10)]
    assert recall(flat, truth) >= 0.99  # a flat index is exact (ties aside)


def test_search_options(db):
    base = clustered(200, 8, seed=3)
    c = db.create_collection("o", 8, metric="cosine")
    c.upsert(list(range(200)), base, [{"i": i} for i in range(200)])
    q = base[5]
    full = c.search(q, k=30, exact=True)
    assert full[0]["id"] == 5 and full[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert [x["payload"] for x in full] == [{"i": x["id"]} for x in full]  # with_payload default

    paged = c.search(q, k=10, offset=10, exact=True)
    assert [x["id"] for x in paged] == [x["id"] for x in full[10:20]]
    cut = full[7]["score"]
    above = c.search(q, k=30, exact=True, min_score=cut)
    assert [x["id"] for x in above] == [x["id"] for x in full if x["score"] >= cut]
    assert all(set(x) == {"id", "score", "distance"}
               for x in c.search(q, k=5, with_payload=False))
    with_v = c.search(q, k=3, exact=True, with_vector=True)
    np.testing.assert_allclose(with_v[0]["vector"], unit(base[[5]])[0], rtol=1e-5, atol=1e-6)
    assert c.search(q, k=10, ef=10)[0]["id"] == 5

    st = http_status(db, 400)
    raises("invalid_argument", c.search, q, k=0, status=st)
    raises("invalid_argument", c.search, q, k=10001)
    raises("invalid_argument", c.search, q, k=10, ef=5)          # ef < k
    raises("invalid_argument", c.search, q, k=9000, offset=1001)  # k + offset > 10000
    raises("invalid_argument", c.search, q, k=2.5)
    raises("invalid_argument", c.search, q, exact="yes")
    raises("invalid_argument", c.search, q, colour="red")
    raises("invalid_argument", c.search, q[:7])
    raises("invalid_argument", c.search, list(q[:7]) + [float("nan")])
    assert [x["id"] for x in c.search(q, k=10, filter={"i": 3})] == [3]  # filters work
    raises("invalid_argument", c.search, q, filter={"i": {"$near": 3}}, status=st)
    raises("unsupported", c.search, q, nprobe=4, status=http_status(db, 501))


def test_search_batch(db):
    base, queries = clustered(300, 12, seed=4), clustered(7, 12, seed=5)
    c = db.create_collection("b", 12, metric="l2")
    c.upsert([f"p{i}" for i in range(300)], base)
    batch = c.search_batch(queries, k=5, exact=True, with_payload=False)
    assert len(batch) == 7
    # A batch finds the same hits with the same numbers as single searches.
    for hits, one in zip(batch, [c.search(v, k=5, exact=True, with_payload=False)
                                 for v in queries]):
        assert [h["id"] for h in hits] == [h["id"] for h in one]
        assert [h["distance"] for h in hits] == [h["distance"] for h in one]
        assert [h["score"] for h in hits] == [h["score"] for h in one]
    as_lists = c.search_batch([list(map(float, v)) for v in queries], k=5, exact=True,
                              with_payload=False)
    assert as_lists == batch
    assert c.search_batch([], k=5) == []
    raises("invalid_argument", c.search_batch, [queries[0], queries[1][:5]], k=5,
           status=http_status(db, 400))


def test_get_present_and_absent(db):
    c = db.create_collection("g", 2, metric="l2")
    c.upsert([1, 2, "123", "s"], [[1, 1], [2, 2], [3, 3], [4, 4]],
             [{"a": 1}, None, {"c": 3}, {"s": "é"}])
    got = c.get(["s", 99, 1, "nope", 123, "123", 1])
    assert got == [{"id": "s", "payload": {"s": "é"}}, {"id": 1, "payload": {"a": 1}},
                   {"id": "123", "payload": {"c": 3}}, {"id": 1, "payload": {"a": 1}}]
    assert c.get([2], with_vector=True, with_payload=False) == [{"id": 2, "vector": [2.0, 2.0]}]
    assert c.get([2], with_payload=False) == [{"id": 2}]
    assert c.get(2) == {"id": 2, "payload": None}
    assert c.get("123", with_vector=True) == {"id": "123", "vector": [3.0, 3.0],
                                              "payload": {"c": 3}}
    assert c.get(123) is None and c.get("missing") is None
    assert c.get([]) == []
    raises("invalid_argument", c.get, [-3], status=http_status(db, 400))


def test_delete_counts(db):
    c = db.create_collection("d", 2, metric="l2")
    c.upsert(list(range(10)) + ["a", "b"], [[i, i] for i in range(12)])
    assert c.delete([0, 1, 1, 77, "a", "zz"]) == 3  # how many existed
    assert c.count() == 9
    assert c.delete(5) == 1 and c.delete(5) == 0
    assert c.delete([]) == 0
    assert c.count() == 8
    assert c.get([0, 1, 5, "a"]) == []
    hits = c.search([0, 0], k=12, exact=True)
    assert {h["id"] for h in hits} == {2, 3, 4, 6, 7, 8, 9, "b"}
    assert c.info()["count"] == 8
    raises("invalid_argument", c.delete, [-1], status=http_status(db, 400))
    assert c.count() == 8


def test_set_payload_merges(db):
    c = db.create_collection("s", 2, metric="l2")
    c.upsert([1, "k", 3], [[0, 0], [1, 1], [2, 2]],
             [{"a": 1, "b": {"x": 1}, "c": "keep"}, None, {"z": 0}])
    assert c.set_payload(1, {"b": {"y": 2}, "d": [1, 2], "a": None}) is None
    # top-level keys replace whole values (no deep merge), new ones follow, null is kept
    assert c.get(1)["payload"] == {"a": None, "b": {"y": 2}, "c": "keep", "d": [1, 2]}
    assert list(c.get(1)["payload"]) == ["a", "b", "c", "d"]
    c.set_payload("k", {"new": "é"})  # a point without a payload gets one
    assert c.get("k")["payload"] == {"new": "é"}
    c.set_payload(3, {})
    assert c.get(3)["payload"] == {"z": 0}
    assert c.get(1, with_vector=True)["vector"] == [0.0, 0.0]  # the vector stays
    raises("not_found", c.set_payload, 42, {"a": 1}, status=http_status(db, 404))
    raises("not_found", c.set_payload, "ghost", {"a": 1})
    raises("invalid_argument", c.set_payload, 1, [1, 2])
    raises("invalid_argument", c.set_payload, 1, {"x": float("inf")})
    c.upsert(["9"], [[5, 5]])
    if db.mode == "http":
        # A string id of digits reads as an integer in a path (docs/HTTP.md):
        # the client refuses rather than patch point 9.
        raises("unsupported", c.set_payload, "9", {"a": 1}, status=None)
    else:
        c.set_payload("9", {"a": 1})
        assert c.get("9")["payload"] == {"a": 1}
    # Any length of digits: the server reads all of them as an integer (a
    # 400 over 2^63-1), never as a string id.
    digits = ["0", "007", "9" * 19, "1" * 20, "9" * 256]
    c.upsert(digits, [[6, 6]] * len(digits))
    for i in digits:
        if db.mode == "http":
            raises("unsupported", c.set_payload, i, {"d": i}, status=None)
        else:
            c.set_payload(i, {"d": i})
    want = [None if db.mode == "http" else {"d": i} for i in digits]
    assert [p["payload"] for p in c.get(digits)] == want
    assert c.get(7) is None  # "007" did not reach point 7 (absent) either
    # "" has no path: refused before sending (not a 405 of .../points/)
    raises("invalid_argument", c.set_payload, "", {"a": 1}, status=None)


def test_set_payload_string_ids_with_url_characters(db):
    """String ids travel percent-encoded in PATCH .../points/{id}; each must
    reach its own point, decoded exactly once."""
    c = db.create_collection("u", 2, metric="l2")
    ids = ["xA", "x%41", "50%", "a/b", "q?x=1", "h#1", "sp ace", "é", "%2F"]
    c.upsert(ids, [[1, 0]] * len(ids))
    for i in ids:
        c.set_payload(i, {"id": i})
    assert [p["payload"] for p in c.get(ids)] == [{"id": i} for i in ids]


def test_scroll_every_live_point_once_in_order(db):
    c = db.create_collection("sc", 2, metric="l2")
    ids = list(range(0, 60, 2)) + [ID_MAX, "b", "a", "ab", "é", "Z", "10", "aa"]
    c.upsert(ids, [[i, -i] for i in range(len(ids))], [{"i": i} for i in range(len(ids))])
    c.delete([4, 10, "ab", ID_MAX])
    live = sorted(set(ids) - {4, 10, "ab", ID_MAX}, key=order_key)

    seen, cursor, pages = [], None, 0
    while True:
        points, cursor = c.scroll(limit=7, cursor=cursor)
        pages += 1
        assert len(points) <= 7
        seen += points
        if cursor is None:
            break
        assert cursor == points[-1]["id"]
    assert [p["id"] for p in seen] == live
    assert pages == len(live) // 7 + 1
    assert all(p["payload"] == {"i": ids.index(p["id"])} for p in seen)
    assert "vector" not in seen[0]

    points, cursor = c.scroll(limit=len(live) + 1, with_payload=False, with_vector=True)
    assert cursor is None and len(points) == len(live)
    assert set(points[0]) == {"id", "vector"} and points[0]["vector"] == [0.0, 0.0]
    points, cursor = c.scroll(limit=3, cursor="a")  # any id works as a cursor
    assert [p["id"] for p in points] == ["aa", "b", "é"] and cursor == "é"
    assert c.scroll(limit=3, cursor="é") == ([], None)
    raises("invalid_argument", c.scroll, limit=0, status=http_status(db, 400))
    raises("invalid_argument", c.scroll, limit=10001)
    raises("invalid_argument", c.scroll, cursor=-1)


def test_errors(db):
    c = db.create_collection("err", 4, metric="l2")
    c.upsert([1], [[1, 2, 3, 4]])
    e = raises("invalid_argument", c.upsert, [2], [[1, 2, 3]], status=http_status(db, 400))
    assert "dimension" in e.message and "4" in e.message
    raises("invalid_argument", c.search, [1, 2, 3])
    raises("invalid_argument", c.search_batch, [[1, 2, 3, 4, 5]])
    gone = db.get_collection("err")
    db.delete_collection("err")
    e = raises("not_found", db.get_collection, "err", status=http_status(db, 404))
    assert "err" in e.message
    for call in (gone.info, gone.count, lambda: gone.search([1, 2, 3, 4]),
                 lambda: gone.upsert([1], [[1, 2, 3, 4]]), lambda: gone.get(1),
                 lambda: gone.delete([1]), lambda: gone.scroll()):
        with pytest.raises(NeedleError) as info:
            call()
        assert info.value.code == "not_found"
    assert str(info.value).startswith("not_found: ")


def test_concurrent_use_from_threads(db):
    """One client or database shared by threads: HTTP gives each thread its
    own connection, the embedded mode runs calls in parallel."""
    c = db.create_collection("t", 8, metric="l2")
    data = clustered(800, 8, seed=9)
    errors = []

    def work(t):
        try:
            for b in range(5):
                lo = t * 100 + b * 20
                c.upsert(list(range(lo, lo + 20)), data[lo:lo + 20])
                assert len(c.search(data[lo], k=5)) == 5
                assert c.get(lo)["id"] == lo
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert c.count() == 800


# ------------------------------------------------------------------ filters (docs/FILTERS.md)

FILTER_POINTS = [  # id, payload
    (1, {"cat": "tech", "price": 5, "tags": ["a", "b"], "meta": {"author": "ann"}}),
    (2, {"cat": "tech", "price": 15.5, "tags": ["b"], "day": "2024-03-01T10:00:00+02:00"}),
    (3, {"cat": "food", "price": 25, "tags": [], "title": "Hello, Vector-Database world!"}),
    ("s4", {"cat": "food", "price": "25", "meta": {"author": "bob"}, "day": "2024-03-01"}),
    ("s5", {"cat": None, "in_stock": True}),
    (6, None),
]


def filter_collection(db):
    c = db.create_collection("flt", 2, metric="l2")
    ids = [i for i, _ in FILTER_POINTS]
    c.upsert(ids, [[n, n % 3] for n in range(len(ids))], [p for _, p in FILTER_POINTS])
    return c


FILTER_CASES = [  # filter, the matching ids in id order
    ({}, [1, 2, 3, 6, "s4", "s5"]),
    ({"cat": "tech"}, [1, 2]),
    ({"cat": {"$ne": "tech"}}, [3, 6, "s4", "s5"]),
    ({"cat": None}, [6, "s5"]),
    ({"price": {"$gte": 5, "$lt": 25}}, [1, 2]),
    ({"price": {"$gte": "25"}}, ["s4"]),  # strings compare with strings only
    ({"tags": "b"}, [1, 2]),
    ({"tags": {"$in": ["a", "zz"]}}, [1]),
    ({"tags": {"$nin": ["b"]}}, [3, 6, "s4", "s5"]),
    ({"tags": {"$exists": True}}, [1, 2, 3]),
    ({"meta.author": "bob"}, ["s4"]),
    ({"day": {"$gte": "2024-03-01T08:00:00Z"}}, [2]),  # an instant: 10:00+02:00 is 08:00Z
    ({"day": {"$lt": "2024-03-01T08:00:00Z"}}, ["s4"]),
    ({"title": {"$text": "vector DATABASE"}}, [3]),
    ({"in_stock": True}, ["s5"]),
    ({"$or": [{"cat": "food"}, {"price": {"$lt": 10}}]}, [1, 3, "s4"]),
    ({"$and": [{"cat": "tech"}, {"$not": {"tags": "a"}}]}, [2]),
    ({"price": {"$not": {"$gt": 10}}}, [1, 6, "s4", "s5"]),
    ({"cat": "nothing"}, []),
]


@pytest.mark.parametrize("flt, want", FILTER_CASES, ids=[json.dumps(f) for f, _ in FILTER_CASES])
def test_filter_in_count_scroll_search(db, flt, want):
    c = filter_collection(db)
    assert c.count(filter=flt) == len(want)
    seen, cursor = [], None
    while True:  # pages of 2 matching points
        points, cursor = c.scroll(limit=2, cursor=cursor, filter=flt, with_payload=False)
        seen += [p["id"] for p in points]
        if cursor is None:
            break
    assert seen == want
    for exact in (True, False):
        for k in (1, 3, 10):
            hits = c.search([0, 0], k=k, filter=flt, exact=exact)
            assert len(hits) == min(k, len(want))  # exactly min(k, matching points)
            assert {h["id"] for h in hits} <= set(want)
            assert [h["payload"] for h in hits] == [dict(FILTER_POINTS)[h["id"]] for h in hits]
    batch = c.search_batch([[0, 0], [5, 2]], k=10, filter=flt, exact=True, with_payload=False)
    assert [sorted(map(str, (h["id"] for h in hits))) for hits in batch] == \
        [sorted(map(str, want))] * 2


def test_filter_none_and_empty_mean_every_point(db):
    c = filter_collection(db)
    q = [0.3, 0.1]  # no ties: an unfiltered and a filtered plan may order them apart
    assert c.search(q, k=6, filter=None) == c.search(q, k=6) == c.search(q, k=6, filter={})
    assert c.count(filter=None) == c.count(filter={}) == c.count() == 6
    assert c.scroll(filter=None) == c.scroll(filter={}) == c.scroll()


# Bad filters: the server's message, word for word, in both modes.
FILTER_ERRORS = [
    (lambda c: c.search([0, 0], filter={"$regex": "a"}),
     "search: filter: unknown operator '$regex'"),
    (lambda c: c.search([0, 0], k=2, offset=1, filter={"price": {}}),
     "search: filter.price: needs at least one operator, as in {\"$gt\":5} (got {})"),
    (lambda c: c.explain([0, 0], filter={"$and": [{}, {"price": {"$gte": []}}]}),
     "search: filter.$and[1].price.$gte: needs a number or a string (got an array)"),
    (lambda c: c.search_batch([[0, 0], [1, 1]], filter={"tags": {"$in": "a"}}),
     "searches[0]: filter.tags.$in: needs an array of values (got a string)"),
    (lambda c: c.count(filter={"t": {"$exists": 1}}),
     "count: filter.t.$exists: needs true or false (got a number)"),
    (lambda c: c.scroll(limit=5, filter={"t": {"$text": " - "}}),
     "scroll: filter.t.$text: has no words to look for (letters or digits)"),
    (lambda c: c.delete(filter={"a..b": 1}),
     "points/delete: filter: field 'a..b' has an empty part between dots"),
    (lambda c: c.delete(filter={"meta": {"author": "john"}}),
     "points/delete: filter.meta: 'author' is not an operator (no embedded-document "
     "equality: use dotted paths, as in {\"meta.author\":...})"),
]


# ids cut before " (": "embedded-document" would put the http cases under -k embedded
@pytest.mark.parametrize("call, message", FILTER_ERRORS,
                         ids=[m.split(" (")[0] for _, m in FILTER_ERRORS])
def test_filter_errors_name_the_operator(db, call, message):
    c = filter_collection(db)
    e = raises("invalid_argument", call, c, status=http_status(db, 400))
    assert e.message == message
    assert c.count() == 6


def test_filter_arguments_checked_before_sending(db):
    """Not a dict (or not JSON): refused by the client in both modes, with
    the request named as the server names it; status None."""
    c = filter_collection(db)
    for call, where in ((lambda: c.search([0, 0], filter=[]), "search"),
                        (lambda: c.explain([0, 0], filter="cat"), "search"),
                        (lambda: c.search_batch([[0, 0]], filter=1), "searches[0]"),
                        (lambda: c.count(filter=()), "count"),
                        (lambda: c.scroll(filter=True), "scroll"),
                        (lambda: c.delete(filter=[]), "points/delete")):
        e = raises("invalid_argument", call, status=None)
        assert e.message.startswith(f"{where}: 'filter' must be a dict"), e.message
    e = raises("invalid_argument", c.count, filter={"price": float("inf")}, status=None)
    assert e.message == "count: filter: NaN and Inf have no JSON form"
    e = raises("invalid_argument", c.delete, filter={"a": {2: 1}}, status=None)
    assert e.message == "points/delete: filter: keys must be strings, not int 2"
    e = raises("invalid_argument", c.delete, {"cat": "tech"}, status=None)
    assert "delete(filter=" in e.message
    assert c.count() == 6


def test_delete_by_filter(db):
    c = filter_collection(db)
    assert c.delete(filter={"cat": "food"}) == 2
    assert c.count() == 4 and c.get([3, "s4"]) == []
    assert c.delete(filter={"cat": "food"}) == 0
    raises("invalid_argument", c.delete, filter={"cat": {"$in": "tech"}})
    raises("invalid_argument", c.delete, [1], filter={"cat": "tech"}, status=None)
    raises("invalid_argument", c.delete, status=None)
    assert c.count() == 4
    assert c.delete(filter={"tags": {"$exists": False}}) == 2  # s5 and 6, without a payload
    assert [p["id"] for p in c.scroll()[0]] == [1, 2]
    assert c.delete(filter={}) == 2  # {} deletes every point
    assert c.count() == 0 and c.delete(filter={}) == 0
    assert c.delete(ids=[1]) == 0 and c.delete([]) == 0  # by ids as before


def test_explain(db):
    c = filter_collection(db)
    plain = c.explain([0, 0], k=3)
    assert set(plain) == {"plan", "filtered", "visited", "ef"}
    assert plain["plan"] == "hnsw" and plain["filtered"] is False and plain["visited"] > 0
    assert plain["ef"] == 64  # the untuned default (a tuning needs 100 queries)
    assert c.explain([0, 0], k=3, ef=7)["ef"] == 7
    assert c.explain([0, 0], k=3, exact=True) == {"plan": "exact", "filtered": False,
                                                  "visited": 0}
    ex = c.explain([0, 0], k=3, filter={"cat": "tech"}, exact=True, with_payload=False)
    assert set(ex) == {"plan", "filtered", "estimated_matches", "matched", "filter_checks",
                       "visited"}
    assert ex["plan"] == "exact" and ex["filtered"] is True
    assert ex["matched"] == 2  # an exact scan checks every point
    assert ex["filter_checks"] >= 6
    # few matching points: the planner scans them exactly
    assert c.explain([0, 0], k=1, filter={"cat": "food"})["plan"] == "exact"
    raises("invalid_argument", c.explain, [0, 0], k=0, status=http_status(db, 400))
    raises("invalid_argument", c.explain, [0, 0, 0])
    raises("invalid_argument", c.explain, [0, 0], explain=False, status=None)


# ------------------------------------------------------------------ HTTP only

def test_http_auth(tmp_path):
    with serve(tmp_path / "data", "--api-key", "admin-key", "--read-key", "read-key") as s:
        admin = needle.Client(s.url, api_key="admin-key")
        c = admin.create_collection("a", 2, metric="l2")
        c.upsert([1, 2], [[0, 0], [1, 1]])

        for client in (needle.Client(s.url), needle.Client(s.url, api_key="wrong")):
            assert client.health()["status"] == "ok"  # health is open
            raises("unauthenticated", client.list_collections, status=401)
            raises("unauthenticated", client.get_collection, "a", status=401)

        reader = needle.Client(s.url, api_key="read-key")
        rc = reader.get_collection("a")
        assert [x["name"] for x in reader.list_collections()] == ["a"]
        assert rc.count() == 2 and rc.get(1)["id"] == 1
        assert rc.search([0, 0], k=1)[0]["id"] == 1
        assert len(rc.search_batch([[0, 0], [1, 1]], k=1)) == 2
        assert len(rc.scroll()[0]) == 2
        for write in (lambda: reader.create_collection("b", 2), lambda: rc.upsert([3], [[2, 2]]),
                      lambda: rc.delete([1]), lambda: rc.set_payload(1, {"x": 1}),
                      lambda: reader.delete_collection("a")):
            with pytest.raises(NeedleError) as info:
                write()
            assert (info.value.code, info.value.status) == ("permission_denied", 403)
        assert c.count() == 2 and c.get(1)["payload"] is None
        admin.delete_collection("a")
        assert admin.list_collections() == []


def test_http_server_unreachable(tmp_path):
    with serve(tmp_path / "data") as s:
        url = s.url
    client = needle.Client(url, timeout=5)  # the server is gone: nothing listens
    e = raises("unavailable", client.health)
    assert e.status is None and url in e.message
    with pytest.raises(NeedleError) as info:
        needle.Client("ftp://example.org")
    assert info.value.code == "invalid_argument"


def test_http_keep_alive_survives_idle_close(tmp_path):
    """The server closes a connection idle for --request-timeout; the next
    call notices and sends again on a new connection."""
    with serve(tmp_path / "data", "--request-timeout", "1") as s:
        client = needle.Client(s.url)
        c = client.create_collection("k", 2, metric="l2")
        conn = client._local.conn
        c.upsert([1], [[1, 1]])
        assert client._local.conn is conn  # kept alive between calls
        time.sleep(2.5)
        assert c.upsert([2], [[2, 2]]) == 1
        assert c.count() == 2
        client.close()
        assert client.health()["status"] == "ok"  # reconnects after close()


def test_http_body_over_the_limit(tmp_path):
    """The server refuses a large body from its Content-Length and closes
    while the client still sends: the client reports that 413, not the
    broken pipe, and goes on with a new connection."""
    with serve(tmp_path / "data", "--max-body-bytes", "100000") as s:
        client = needle.Client(s.url)
        c = client.create_collection("big", 64, metric="l2")
        rows = np.random.default_rng(0).random((2000, 64))
        for n in (1000, 2000):
            raises("payload_too_large", c.upsert, list(range(n)), rows[:n], status=413)
        assert c.upsert(list(range(10)), rows[:10]) == 10
        assert c.count() == 10


def test_http_errors_carry_status_and_message(tmp_path):
    with serve(tmp_path / "data") as s:
        client = needle.Client(s.url + "/")  # a trailing slash is fine
        c = client.create_collection("e", 3, metric="l2")
        e = raises("invalid_argument", c.upsert, [1], [[1, 2]], status=400)
        assert str(e) == f"invalid_argument: {e.message} (HTTP 400)"
        # an unknown route through request(): 404 with the server's JSON error
        e = raises("not_found", client.request, "GET", "/v1/nothing", status=404)
        assert "no route" in e.message
        e = raises("method_not_allowed", client.request, "POST", "/v1/health", status=405)


class StubServer:
    """An HTTP server in this process answering with answer(handler) ->
    (status, content_type, body bytes); it records every request's path."""

    def __init__(self, answer):
        import http.server

        stub = self
        self.paths = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(n) if n else None
                stub.paths.append(self.path)
                status, ctype, body = answer(self)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_http_url_path_prefix(tmp_path):
    """Client("http://proxy/base/") sends every route under /base (a server
    behind a reverse proxy); without the prefix the proxy's non-JSON 404
    becomes not_found."""
    import http.client as hc

    with serve(tmp_path / "data") as s:
        def forward(h):
            if not h.path.startswith("/base/"):
                return 404, "text/html", b"<html>no such page</html>"
            conn = hc.HTTPConnection("127.0.0.1", s.port, timeout=30)
            headers = {k: v for k, v in h.headers.items() if k.lower() in (
                "content-type", "authorization")}
            conn.request(h.command, h.path[len("/base"):], body=h.body, headers=headers)
            r = conn.getresponse()
            out = (r.status, r.getheader("Content-Type"), r.read())
            conn.close()
            return out

        with StubServer(forward) as proxy:
            client = needle.Client(proxy.url + "/base/")
            assert client.url == proxy.url + "/base"
            assert client.health()["status"] == "ok"
            c = client.create_collection("pre", 2, metric="l2")
            c.upsert([1, "s"], [[0, 0], [1, 1]])
            c.set_payload("s", {"via": "proxy"})
            assert c.search([1, 1], k=1)[0] == {"id": "s", "score": 1.0, "distance": 0.0,
                                                "payload": {"via": "proxy"}}
            assert c.scroll() == ([{"id": 1, "payload": None},
                                   {"id": "s", "payload": {"via": "proxy"}}], None)
            assert client.list_collections() == [{"name": "pre", "count": 2}]
            assert all(p.startswith("/base/v1/") for p in proxy.paths), proxy.paths
            assert "/base/v1/collections/pre/points/s" in proxy.paths  # the PATCH
            client.close()

            e = raises("not_found", needle.Client(proxy.url).health, status=404)
            assert e.message == "HTTP 404: <html>no such page</html>"


@pytest.mark.parametrize("status,code", [(404, "not_found"), (413, "payload_too_large"),
                                         (414, "invalid_argument"),
                                         (431, "payload_too_large"), (502, "internal"),
                                         (503, "unavailable"), (505, "internal")])
def test_http_non_json_error_answers(status, code):
    """An error answer that is not needle's JSON (libmicrohttpd's own 414 and
    431, a proxy's 502) gets its code from the status (docs/HTTP.md)."""
    body = f"<html><body>{status} from elsewhere</body></html>".encode()
    with StubServer(lambda h: (status, "text/html", body)) as stub:
        client = needle.Client(stub.url)
        e = raises(code, client.health, status=status)
        assert e.message == f"HTTP {status}: {body.decode()}"
        assert str(e) == f"{code}: HTTP {status}: {body.decode()} (HTTP {status})"
        e = raises(code, client.request, "GET", "/metrics", status=status)
        assert e.message == f"HTTP {status}: {body.decode()}"
    assert NeedleError.from_status(status, "x").code == code


def test_http_answers_that_are_not_json():
    """The API's routes need a JSON object; request() returns the text of a
    2xx answer that is not JSON (as GET /metrics is)."""
    answers = {"/v1/health": (200, "text/html", b"<html>a portal</html>"),
               "/v1/collections": (200, "application/json", b"[1, 2]"),
               "/text": (200, "text/plain; charset=utf-8", "é text".encode()),
               "/json": (200, "application/json; charset=utf-8", b'{"a": 1}')}
    with StubServer(lambda h: answers[h.path]) as stub:
        client = needle.Client(stub.url)
        e = raises("internal", client.health, status=200)
        assert "without a JSON body" in e.message
        raises("internal", client.list_collections, status=200)
        assert client.request("GET", "/text") == "é text"
        assert client.request("GET", "/json") == {"a": 1}


def test_http_request_reaches_metrics_and_ndjson(tmp_path):
    with serve(tmp_path / "data") as s:
        client = needle.Client(s.url)
        c = client.create_collection("nd", 2, metric="l2")
        lines = b'{"id":1,"vector":[1,2]}\n\n{"id":"x","vector":[3,4],"payload":{"n":1}}\n'
        assert client.request("POST", "/v1/collections/nd/points", lines,
                              content_type="application/x-ndjson") == {"upserted": 2}
        assert c.get([1, "x"]) == [{"id": 1, "payload": None}, {"id": "x", "payload": {"n": 1}}]
        e = raises("invalid_argument", client.request, "POST", "/v1/collections/nd/points",
                   b"{not json}\n", content_type="application/x-ndjson", status=400)
        assert "line 1" in e.message
        metrics = client.request("GET", "/metrics")
        assert isinstance(metrics, str)
        assert 'needle_collection_points{collection="nd"} 2' in metrics
        # a dict body is JSON whatever content_type says
        assert client.request("POST", "/v1/collections/nd/count", {},
                              content_type="text/plain") == {"count": 2}


def test_http_connections_of_ended_threads_are_closed(tmp_path):
    """A thread's connection is closed and forgotten when the thread ends,
    not kept until Client.close()."""
    import gc
    import weakref

    with serve(tmp_path / "data") as s:
        client = needle.Client(s.url)
        assert client.health()["status"] == "ok"
        socks, conns = [], []

        def work():
            assert client.health()["status"] == "ok"
            socks.append(client._local.conn.sock)
            conns.append(weakref.ref(client._local.conn))

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        gc.collect()
        assert len(socks) == 6 and all(sock.fileno() == -1 for sock in socks)  # closed
        assert all(ref() is None for ref in conns)  # released
        assert list(client._conns) == [client._local.conn]  # the main thread's only
        client.close()
        assert list(client._conns) == []
        assert client.health()["status"] == "ok"


def test_http_bad_urls():
    for url in ("http://h:abc", "http://h:99999", "ftp://h", "h:6400", None, 6400,
                "http://:80"):
        with pytest.raises(NeedleError) as info:
            needle.Client(url)
        assert info.value.code == "invalid_argument" and info.value.status is None, url


def test_http_hits_as_float32():
    from needle import _http
    hits = [{"id": 1, "score": 0.1, "distance": 2.2, "vector": [0.3, 1e-3]},
            {"id": 2, "score": None, "distance": 1.5, "payload": None},
            {"id": 3, "score": 1, "distance": 0, "vector": None}]
    f = [float(np.float32(x)) for x in (0.1, 2.2, 0.3, 1e-3)]
    assert _http._hits(hits) == [
        {"id": 1, "score": f[0], "distance": f[1], "vector": f[2:]},
        {"id": 2, "score": None, "distance": 1.5, "payload": None},
        {"id": 3, "score": 1.0, "distance": 0.0, "vector": None}]


def test_missing_optional_function_is_unsupported():
    with pytest.raises(NeedleError) as info:
        _capi._missing("/x/libneedle.so", "ndl_collection_scroll")(None, None)
    assert info.value.code == "unsupported" and "ndl_collection_scroll" in info.value.message


# ------------------------------------------------------------------ embedded only

def test_ctypes_structs_match_needle_h(tmp_path):
    """Sizes and field offsets of the ctypes mirrors equal the compiler's."""
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "needle.h"',
             'int main(void) {']
    for s in _capi.STRUCTS:
        lines.append(f'printf("{s.__name__} size %zu\\n", sizeof({s.__name__}));')
        for f in s._fields_:
            lines.append(f'printf("{s.__name__} {f[0]} %zu\\n", offsetof({s.__name__}, {f[0]}));')
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run(["gcc", "-I", str(ROOT / "include"), "-o", str(exe), str(src)], check=True)
    want = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    got = []
    for s in _capi.STRUCTS:
        got.append(f"{s.__name__} size {ctypes.sizeof(s)}")
        got += [f"{s.__name__} {f[0]} {getattr(s, f[0]).offset}" for f in s._fields_]
    assert got == [w for w in want if w]


@needs_lib
def test_embedded_database_lifecycle(tmp_path):
    path = tmp_path / "data"
    with needle.open(path, fsync="batch") as d:
        c = d.create_collection("life", 2, metric="l2")
        c.upsert([1, "two"], [[1, 2], [3, 4]], [{"p": 1}, None])
    raises("unavailable", d.list_collections)  # closed
    for call in (lambda: d.create_collection("x", 2), lambda: d.get_collection("life"),
                 lambda: d.delete_collection("life")):
        raises("unavailable", call, status=None)
    d.close()  # closing twice is harmless
    with pytest.raises(NeedleError) as info:
        c.count()
    assert info.value.code == "unavailable"

    with needle.open(path, read_only=True) as ro:  # the data is still there
        rc = ro.get_collection("life")
        assert rc.count() == 2 and rc.get([1])[0]["payload"] == {"p": 1}
        raises("read_only", rc.upsert, [3], [[5, 6]])
        raises("read_only", ro.create_collection, "new", 2)
    raises("invalid_argument", needle.open, path, fsync="sometimes", status=None)
    with needle.open(path) as d:
        raises("not_found", d.get_collection, "other", status=None)


@needs_lib
def test_embedded_delete_collection_in_use_is_busy(tmp_path):
    with needle.open(tmp_path / "data") as d:
        c = d.create_collection("busy", 2, metric="l2")
        with d._use("busy"):  # what another thread's running call holds
            raises("busy", d.delete_collection, "busy")
        assert c.count() == 0
        d.delete_collection("busy")
        assert d.list_collections() == []


@needs_lib
def test_embedded_and_server_share_a_directory(tmp_path):
    """Data written in-process is served after close, and the reverse; both
    modes answer the same searches with the same numbers."""
    path = tmp_path / "data"
    base, queries = clustered(500, 16, seed=21), clustered(5, 16, seed=22)
    with needle.open(path) as d:
        c = d.create_collection("shared", 16, metric="cosine", m=8, ef_construction=50)
        c.upsert(list(range(500)), base, [{"i": i} for i in range(500)])
        c.upsert(["s1", "s2"], base[:2] + 0.5, [{"s": 1}, None])
        c.delete([7, 8])
        before = c.search_batch(queries, k=8, ef=32, with_vector=True)
        page = c.scroll(limit=50, with_vector=True)
        few, many = {"i": {"$lt": 4}}, {"$or": [{"i": {"$gte": 100}}, {"s": 1}]}
        filtered = [c.search_batch(queries, k=8, ef=8, filter=f) for f in (few, many)]
        plans = [c.explain(queries[0], k=8, ef=8, filter=f) for f in (few, many)]
        assert [p["plan"] for p in plans] == ["exact", "hnsw"]
        counted = (c.count(filter=few), c.scroll(limit=30, cursor=10, filter=many))
        info = {k: v for k, v in c.info().items() if k not in ("memory_bytes", "disk_bytes")}

    with serve(path) as s:
        with pytest.raises(NeedleError) as e:  # one process at a time
            needle.open(path)
        assert e.value.code == "busy"
        client = needle.Client(s.url)
        hc = client.get_collection("shared")
        assert hc.count() == 500
        assert {k: v for k, v in hc.info().items()
                if k not in ("memory_bytes", "disk_bytes")} == info
        assert hc.search_batch(queries, k=8, ef=32, with_vector=True) == before
        assert hc.scroll(limit=50, with_vector=True) == page
        assert [hc.search_batch(queries, k=8, ef=8, filter=f) for f in (few, many)] == filtered
        assert [hc.explain(queries[0], k=8, ef=8, filter=f) for f in (few, many)] == plans
        assert (hc.count(filter=few), hc.scroll(limit=30, cursor=10, filter=many)) == counted
        assert hc.get(["s1", 7, 499]) == [{"id": "s1", "payload": {"s": 1}},
                                         {"id": 499, "payload": {"i": 499}}]
        hc.upsert([1000, "h"], [base[3], base[4]], [{"from": "http"}, None])
        hc.set_payload("s2", {"patched": True})
        hc.delete([0])
        client.create_collection("made_by_http", 3, metric="l1")
        after = hc.search(queries[0], k=8, exact=True)

    with needle.open(path) as d:
        assert d.list_collections() == [{"name": "made_by_http", "count": 0},
                                        {"name": "shared", "count": 501}]
        c = d.get_collection("shared")
        assert c.get([1000, "h", "s2", 0]) == [{"id": 1000, "payload": {"from": "http"}},
                                               {"id": "h", "payload": None},
                                               {"id": "s2", "payload": {"patched": True}}]
        assert c.search(queries[0], k=8, exact=True) == after


@pytest.mark.skipif(not LIB_IS_ASAN, reason="the library is not built with ASan")
def test_asan_library_refused_without_runtime(tmp_path):
    """Loading an ASan library into a plain python would end the process;
    the client refuses with a NeedleError saying what to do instead."""
    code = ("import needle\n"
            "try:\n    needle.open(%r)\n"
            "except needle.NeedleError as e:\n    print(e.code, e.message)\n" % str(tmp_path / "d"))
    env = dict(os.environ, PYTHONPATH=str(CLIENT_DIR), NEEDLE_LIB=str(LIB))
    env.pop("LD_PRELOAD", None)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("unavailable ") and "LD_PRELOAD" in p.stdout


def asan_runtime():
    """The ASan runtime the library links (from ldd), else gcc's."""
    out = subprocess.run(["ldd", str(LIB)], capture_output=True, text=True).stdout
    m = re.search(r"libasan\.so\S* => (\S+)", out)
    if m:
        return m.group(1)
    return subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.skipif(IN_PROCESS or not LIB_IS_ASAN,
                    reason="the embedded tests run in this process")
def test_in_asan_child_process():
    """Every embedded test, in a python started with the ASan runtime."""
    env = dict(os.environ, LD_PRELOAD=asan_runtime(), NEEDLE_PY_CHILD="1", NEEDLE_LIB=str(LIB),
               ASAN_OPTIONS="detect_leaks=0:exitcode=86",
               NEEDLE_PY_SERVER_LD_PRELOAD=os.environ.get("LD_PRELOAD", ""),
               NEEDLE_PY_SERVER_ASAN_OPTIONS=ENV["ASAN_OPTIONS"])
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-k", "embedded", str(Path(__file__).resolve())],
                       capture_output=True, text=True, env=env, cwd=str(Path(__file__).parent),
                       timeout=1800)
    out = p.stdout + p.stderr
    for mark in SANITIZER_MARKS:
        assert mark not in out, f"sanitizer report in the embedded tests:\n{out[-20000:]}"
    assert p.returncode == 0, out[-20000:]
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, out[-5000:]


# ------------------------------------------------------------------ packaging

def test_pip_install_offline_in_a_venv(tmp_path):
    """`pip install ./clients/python` in a venv with no index reachable:
    the in-tree build backend needs nothing downloaded."""
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONPATH="")
    before = sorted(p.name for p in CLIENT_DIR.iterdir())
    p = subprocess.run([str(venv / "bin" / "pip"), "install", str(CLIENT_DIR)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert sorted(p.name for p in CLIENT_DIR.iterdir()) == before  # no build litter

    with serve(tmp_path / "data") as s:
        code = ("import needle, sys\n"
                "c = needle.Client(sys.argv[1]).create_collection('v', 2, metric='l2')\n"
                "c.upsert([1, 'b'], [[0, 0], [1, 1]])\n"
                "print(needle.__file__)\n"
                "print([h['id'] for h in c.search([0.9, 0.9], k=2)])\n")
        p = subprocess.run([str(venv / "bin" / "python"), "-c", code, s.url],
                           capture_output=True, text=True, env=env, cwd=str(tmp_path),
                           timeout=60)
    assert p.returncode == 0, p.stderr
    where, hits = p.stdout.splitlines()
    assert where.startswith(str(venv)) and json.loads(hits.replace("'", '"')) == ["b", 1]
