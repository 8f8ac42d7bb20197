"""Payload field indexes over HTTP (SPEC section 3 `fields`, docs/FILTERS.md
"Payload indexes"): declared at create or added with PUT .../fields/{field},
listed by GET, type-checked on upsert and PATCH (400 naming the field),
answering filters exactly as payload checks do, and surviving a restart
and a kill -9 in the middle of writes.
"""
import random
import signal
import threading

import numpy as np

from conftest import clustered
from server import NeedleServer, err, ok, vec

C = "/v1/collections"
FIELDS = {"cat": "keyword", "price": "float", "year": "int", "ok": "bool",
          "when": "date", "title": "text", "meta.author": "keyword"}


def fcount(s, name, flt):
    return ok(s.request("POST", f"{C}/{name}/count", {"filter": flt}))["count"]


def test_create_with_fields_same_config_and_errors(tmp_path):
    with NeedleServer(tmp_path / "d") as s:
        body = {"dimension": 4, "metric": "l2", "fields": FIELDS}
        made = ok(s.request("PUT", f"{C}/a", body), 201)
        assert made["collection"]["fields"] == FIELDS
        assert ok(s.request("GET", f"{C}/a"))["fields"] == FIELDS
        assert ok(s.request("PUT", f"{C}/a", body))["created"] is False  # same config: 200
        err(s.request("PUT", f"{C}/a", {"dimension": 4, "metric": "l2"}), 409, "already_exists")
        err(s.request("PUT", f"{C}/a", {**body, "fields": {**FIELDS, "cat": "text"}}), 409,
            "already_exists")
        for bad, named in [({"x": "number"}, "'x'"), ({"$x": "int"}, "$"), ({"a..b": "int"}, "empty part"),
                           ({"": "int"}, "1..256"), ({"x": 5}, "'x'"), ([], "object")]:
            err(s.request("PUT", f"{C}/b", {"dimension": 4, "metric": "l2", "fields": bad}), 400,
                "invalid_argument", named)
            err(s.request("GET", f"{C}/b"), 404, "not_found")  # nothing made


def test_put_field_route(tmp_path):
    with NeedleServer(tmp_path / "d") as s:
        ok(s.request("PUT", f"{C}/a", {"dimension": 2, "metric": "l2"}), 201)
        ok(s.request("POST", f"{C}/a/points", {"points": [
            {"id": 1, "vector": [0, 0], "payload": {"tag": "x", "n": 1}},
            {"id": 2, "vector": [1, 0], "payload": {"tag": "y", "n": "two"}},
            {"id": 3, "vector": [2, 0]}]}))
        assert ok(s.request("PUT", f"{C}/a/fields/tag", {"type": "keyword"}), 201) == \
            {"created": True, "field": "tag", "type": "keyword"}
        assert ok(s.request("PUT", f"{C}/a/fields/tag", {"type": "keyword"}))["created"] is False
        err(s.request("PUT", f"{C}/a/fields/tag", {"type": "int"}), 409, "already_exists", "keyword")
        # a stored payload that does not fit: named, nothing added
        err(s.request("PUT", f"{C}/a/fields/n", {"type": "int"}), 400, "invalid_argument",
            "point id 2", "'n'")
        assert ok(s.request("GET", f"{C}/a"))["fields"] == {"tag": "keyword"}
        err(s.request("PUT", f"{C}/a/fields/n", {"type": "integer"}), 400, "invalid_argument", "type")
        err(s.request("PUT", f"{C}/a/fields/n", {}), 400, "invalid_argument", "type")
        err(s.request("PUT", f"{C}/a/fields/n", {"type": "int", "x": 1}), 400, "invalid_argument", "'x'")
        err(s.request("PUT", f"{C}/a/fields/$n", {"type": "int"}), 400, "invalid_argument", "$")
        err(s.request("PUT", f"{C}/nope/fields/n", {"type": "int"}), 404, "not_found")
        assert fcount(s, "a", {"tag": "x"}) == 1
        assert fcount(s, "a", {"tag": {"$exists": False}}) == 1


def test_wrong_types_are_refused_and_change_nothing(tmp_path):
    with NeedleServer(tmp_path / "d") as s:
        ok(s.request("PUT", f"{C}/a", {"dimension": 2, "metric": "l2", "fields": FIELDS}), 201)
        ok(s.request("POST", f"{C}/a/points", {"points": [
            {"id": 1, "vector": [0, 0], "payload": {"cat": ["a", "b"], "price": 3, "year": 2020,
                                                     "when": "2024-01-01", "title": None}}]}))
        for payload, named in [({"price": "cheap"}, "'price'"), ({"year": 2020.5}, "'year'"),
                               ({"ok": "yes"}, "'ok'"), ({"when": "yesterday"}, "'when'"),
                               ({"cat": [1]}, "'cat'"), ({"meta": {"author": 7}}, "'meta.author'"),
                               ({"title": {"a": 1}}, "'title'")]:
            err(s.request("POST", f"{C}/a/points", {"points": [
                {"id": 2, "vector": [1, 1]}, {"id": 3, "vector": [1, 1], "payload": payload}]}),
                400, "invalid_argument", named, "point 1")
            err(s.request("PATCH", f"{C}/a/points/1", {"payload": payload}), 400, "invalid_argument", named)
        line = '{"id":9,"vector":[1,1],"payload":{"year":"x"}}\n'
        err(s.request("POST", f"{C}/a/points", raw=line.encode(),
                      headers={"Content-Type": "application/x-ndjson"}), 400, "invalid_argument", "'year'")
        assert ok(s.request("POST", f"{C}/a/count", {}))["count"] == 1
        assert ok(s.request("GET", f"{C}/a/points/1"))["payload"]["price"] == 3


def random_payload(rng):
    p = {}
    if rng.random() < 0.9:
        v = rng.choice(["red", "green", "blue", "x", ["red", "x"], None])
        p["a"], p["b"] = v, v  # a indexed, b the same values unindexed
    if rng.random() < 0.9:
        n = rng.choice([rng.randint(-5, 5), None])
        p["n"], p["m"] = n, n
    if rng.random() < 0.5:
        p["d"] = rng.choice(["2024-01-01", "2024-06-01T12:00:00+02:00", "2023-12-31T23:59:59Z"])
    return p


def test_indexed_filters_answer_like_payload_checks(tmp_path):
    rng = random.Random(7)
    x = clustered(600, 8, seed=3)
    with NeedleServer(tmp_path / "d") as s:
        ok(s.request("PUT", f"{C}/a", {"dimension": 8, "metric": "l2",
                                        "fields": {"a": "keyword", "n": "int", "d": "date"}}), 201)
        pts = [{"id": i, "vector": vec(x[i]), "payload": random_payload(rng)} for i in range(600)]
        ok(s.request("POST", f"{C}/a/points", {"points": pts}))
        pairs = []
        for v in ["red", "x", None]:
            pairs += [({"a": v}, {"b": v}), ({"a": {"$ne": v}}, {"b": {"$ne": v}})]
        pairs += [({"a": {"$in": ["red", None]}}, {"b": {"$in": ["red", None]}}),
                  ({"a": {"$nin": ["x"]}}, {"b": {"$nin": ["x"]}}),
                  ({"a": {"$exists": False}}, {"b": {"$exists": False}}),
                  ({"n": {"$gte": 0, "$lt": 3}}, {"m": {"$gte": 0, "$lt": 3}}),
                  ({"n": {"$gt": 1.5}}, {"m": {"$gt": 1.5}}),
                  ({"$or": [{"a": "blue"}, {"n": {"$lte": -4}}]}, {"$or": [{"b": "blue"}, {"m": {"$lte": -4}}]}),
                  ({"$not": {"a": "red", "n": 1}}, {"$not": {"b": "red", "m": 1}})]
        for idx, raw in pairs:
            assert fcount(s, "a", idx) == fcount(s, "a", raw), (idx, raw)
            q = vec(x[rng.randrange(600)])
            r1 = ok(s.request("POST", f"{C}/a/search", {"vector": q, "k": 7, "exact": True, "filter": idx}))
            r2 = ok(s.request("POST", f"{C}/a/search", {"vector": q, "k": 7, "exact": True, "filter": raw}))
            assert [h["id"] for h in r1["results"]] == [h["id"] for h in r2["results"]], (idx, raw)
        # dates as instants: 2024-06-01T12:00+02:00 is 10:00Z
        assert fcount(s, "a", {"d": {"$gte": "2024-06-01T10:00:00Z"}}) == \
            sum(p["payload"].get("d") == "2024-06-01T12:00:00+02:00" for p in pts)
        ex = ok(s.request("POST", f"{C}/a/search", {"vector": vec(x[0]), "k": 5, "explain": True,
                                                     "filter": {"a": "blue", "n": 2}}))["explain"]
        assert ex["plan"] == "exact" and ex["filtered"] is True
        assert ex["estimated_matches"] == ex["matched"] == fcount(s, "a", {"a": "blue", "n": 2})


class Writer(threading.Thread):
    """Upserts points {"w": tid, "k": k} one batch at a time, keeping the
    acknowledged ks, until stopped or the server goes away."""

    def __init__(self, s, tid):
        super().__init__(daemon=True)
        self.s, self.tid, self.acked, self.stop = s, tid, [], False

    def run(self):
        k = 0
        conn = self.s.connection(timeout=10)
        while not self.stop:
            body = {"points": [{"id": f"{self.tid}-{k}-{j}", "vector": [float(k), float(j), 1.0],
                                "payload": {"w": self.tid, "k": k, "tag": "t%d" % (k % 3)}}
                               for j in range(5)]}
            try:
                st, _ = self.s.request("POST", f"{C}/kf/points", body, conn=conn)
            except Exception:
                return
            if st != 200:
                return
            self.acked.append(k)
            k += 1


def test_fields_survive_restart_and_kill_9(tmp_path):
    data = tmp_path / "d"
    with NeedleServer(data) as s:
        ok(s.request("PUT", f"{C}/kf", {"dimension": 3, "metric": "l2",
                                         "fields": {"w": "int", "k": "int"}}), 201)
        ok(s.request("PUT", f"{C}/kf/fields/tag", {"type": "keyword"}), 201)
        ws = [Writer(s, t) for t in range(2)]
        for w in ws:
            w.start()
        while sum(len(w.acked) for w in ws) < 60:
            threading.Event().wait(0.02)
        assert s.stop(signal.SIGKILL) == -9
    for w in ws:
        w.stop = True
        w.join(10)
    counts = {}
    with NeedleServer(data) as s:
        assert ok(s.request("GET", f"{C}/kf"))["fields"] == {"w": "int", "k": "int", "tag": "keyword"}
        for w in ws:
            # every acknowledged batch is whole (one in flight may be there too)
            n = counts[w.tid] = fcount(s, "kf", {"w": w.tid})
            assert len(w.acked) * 5 <= n <= (len(w.acked) + 1) * 5
            for k in w.acked[::7]:
                assert fcount(s, "kf", {"w": w.tid, "k": k}) == 5
        total = ok(s.request("POST", f"{C}/kf/count", {}))["count"]
        assert sum(fcount(s, "kf", {"tag": t}) for t in ("t0", "t1", "t2")) == total
        # and a type check still holds after recovery
        err(s.request("POST", f"{C}/kf/points", {"points": [{"id": "z", "vector": [0, 0, 0],
                                                            "payload": {"k": "x"}}]}),
            400, "invalid_argument", "'k'")
    with NeedleServer(data) as s:  # after the clean stop's checkpoint: from the manifest
        assert ok(s.request("GET", f"{C}/kf"))["fields"] == {"w": "int", "k": "int", "tag": "keyword"}
        for w in ws:
            assert fcount(s, "kf", {"w": w.tid}) == counts[w.tid]


def test_field_names_with_nul_are_refused(tmp_path):
    """A name that cannot be a field is a 400 and adds nothing, whether it
    comes in a create body (a \\u0000 in a key) or in the URL (%00), and so
    is a type holding \\u0000."""
    with NeedleServer(tmp_path / "d") as s:
        err(s.request("PUT", f"{C}/b", raw=b'{"dimension":2,"metric":"l2",'
                      b'"fields":{"a\\u0000b":"int"}}'), 400, "invalid_argument")
        err(s.request("GET", f"{C}/b"), 404, "not_found")
        ok(s.request("PUT", f"{C}/a", {"dimension": 2, "metric": "l2"}), 201)
        err(s.request("PUT", f"{C}/a/fields/a%00b", {"type": "int"}), 400, "invalid_argument")
        err(s.request("PUT", f"{C}/a/fields/n", raw=b'{"type":"int\\u0000x"}'), 400,
            "invalid_argument", "type")
        assert ok(s.request("GET", f"{C}/a"))["fields"] == {}
        # a payload key may hold '/': %2F in the URL names it
        assert ok(s.request("PUT", f"{C}/a/fields/a%2Fb", {"type": "int"}), 201)["field"] == "a/b"
        assert ok(s.request("GET", f"{C}/a"))["fields"] == {"a/b": "int"}


def test_filter_strings_with_nul_match_exactly(tmp_path):
    """A filter operand holding \\u0000 survives the server's hand-over to
    libneedle: it matches the payload string with that NUL and not the
    string cut at it, indexed or not."""
    with NeedleServer(tmp_path / "d") as s:
        ok(s.request("PUT", f"{C}/a", {"dimension": 2, "metric": "l2", "fields": {"k": "keyword"}}), 201)
        ok(s.request("POST", f"{C}/a/points", {"points": [
            {"id": 1, "vector": [0, 0], "payload": {"k": "a\x00b", "u": "a\x00b"}},
            {"id": 2, "vector": [1, 0], "payload": {"k": "a", "u": "a"}}]}))
        for key in ("k", "u"):
            assert fcount(s, "a", {key: "a\x00b"}) == 1
            assert fcount(s, "a", {key: {"$in": ["a\x00b", "zz"]}}) == 1
            hits = ok(s.request("POST", f"{C}/a/search",
                                {"vector": [1, 0], "k": 2, "filter": {key: "a\x00b"}}))["results"]
            assert [h["id"] for h in hits] == [1]
