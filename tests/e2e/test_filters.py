"""Payload filters end to end (SPEC section 4, docs/FILTERS.md) against a
real `needle serve`: every operator through search, count and scroll;
a property test against a brute-force reference written here in Python
(from docs/FILTERS.md, not from the C code); the exact-count promise at
tiny selectivities and when the planner's sample misleads it; delete by
filter (and across a restart); explain and /metrics; filtered searches
during concurrent upserts; malformed filters; `needle search --filter`."""
import http.client
import json
import math
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import Cli, clustered, nested_not, write_jsonl
from server import NeedleServer, err, ok, scroll_all

# ------------------------------------------------------------------ the reference
#
# A payload path ends in a list of outcomes: values reached, or MISSING where
# a step met an object without the key or a scalar. Array elements that are
# not objects lead nowhere (no outcome). See docs/FILTERS.md "Fields and paths".

MISSING = object()


def reach(payload, path):
    if payload is None:  # a point without a payload is missing every field
        return [MISSING]
    outs = [payload]
    for part in path.split("."):
        nxt = []
        for v in outs:
            if v is MISSING:
                nxt.append(MISSING)
            elif isinstance(v, dict):
                nxt.append(v[part] if part in v else MISSING)
            elif isinstance(v, list):
                nxt += [e[part] if part in e else MISSING for e in v if isinstance(e, dict)]
            else:
                nxt.append(MISSING)
        outs = nxt
    return outs


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def same(a, b):
    """JSON equality of scalars: types never mix (1 is not true, "3" is not 3);
    numbers by exact value (Python compares int and float exactly)."""
    if is_num(a) and is_num(b):
        return a == b
    if type(a) is not type(b):
        return False
    return a == b


_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})"
                   r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
                   r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?)?")


def _days(y, m, d):
    """Days from 1970-01-01 of a proleptic Gregorian date."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def instant(s):
    """Milliseconds since the epoch of an ISO-8601 date string of the forms
    docs/FILTERS.md accepts; None for anything else."""
    if not isinstance(s, str):
        return None
    m = _DATE.fullmatch(s)
    if not m:
        return None
    y, mo, d = int(m[1]), int(m[2]), int(m[3])
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    mdays = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not 1 <= mo <= 12 or not 1 <= d <= mdays[mo - 1]:
        return None
    hh, mm, ss = (int(x) if x else 0 for x in (m[4], m[5], m[6]))
    if hh > 23 or mm > 59 or ss > 59:
        return None
    ms = int((m[7] or "").ljust(3, "0")[:3])
    off = 0
    if m[9]:
        oh, om = int(m[10]), int(m[11])
        if oh > 23 or om > 59:
            return None
        off = (oh * 60 + om) * (1 if m[9] == "+" else -1)
    return ((_days(y, mo, d) * 24 + hh) * 60 + mm - off) * 60000 + ss * 1000 + ms


_CMP = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
        "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b}


def _range_one(e, op, v):
    if is_num(v):
        return is_num(e) and _CMP[op](e, v)
    d = instant(v)
    if d is not None:  # a date operand compares instants, with date values only
        de = instant(e)
        return de is not None and _CMP[op](de, d)
    return isinstance(e, str) and _CMP[op](e, v)  # code point order = UTF-8 byte order


def words(s):
    return set(re.findall(rb"[A-Za-z0-9\x80-\xff]+", s.encode("utf-8").lower()))


def _values(outs):
    """The values reached (an array value as its elements)."""
    for o in outs:
        if o is MISSING:
            continue
        if isinstance(o, list):
            yield from o
        else:
            yield o


def _eq(outs, v):
    if v is None and any(o is MISSING for o in outs):
        return True
    return any(same(e, v) for e in _values(outs))


def _text(outs, q):
    need = words(q)
    for o in outs:
        if isinstance(o, str):
            have = words(o)
        elif isinstance(o, list):
            have = set().union(*[words(e) for e in o if isinstance(e, str)])
        else:
            continue
        if need <= have:
            return True
    return False


def match_ops(outs, ops):
    for op, v in ops.items():
        if op == "$eq":
            ok_ = _eq(outs, v)
        elif op == "$ne":
            ok_ = not _eq(outs, v)
        elif op in _CMP:
            ok_ = any(_range_one(e, op, v) for e in _values(outs))
        elif op == "$in":
            ok_ = any(_eq(outs, x) for x in v)
        elif op == "$nin":
            ok_ = not any(_eq(outs, x) for x in v)
        elif op == "$exists":
            ok_ = any(o is not MISSING for o in outs) == v
        elif op == "$text":
            ok_ = _text(outs, v)
        elif op == "$not":
            ok_ = not match_ops(outs, v)
        else:
            raise AssertionError(op)
        if not ok_:
            return False
    return True


def matches(flt, payload):
    for key, v in flt.items():
        if key == "$and":
            ok_ = all(matches(f, payload) for f in v)
        elif key == "$or":
            ok_ = any(matches(f, payload) for f in v)
        elif key == "$not":
            ok_ = not matches(v, payload)
        elif isinstance(v, dict):
            ok_ = match_ops(reach(payload, key), v)
        else:
            ok_ = _eq(reach(payload, key), v)
        if not ok_:
            return False
    return True


def order_key(i):
    """Scroll order: integers ascending, then strings bytewise."""
    return (0, i, b"") if isinstance(i, int) else (1, 0, i.encode())


# ------------------------------------------------------------------ HTTP helpers

class Http:
    """Requests to one server on one keep-alive connection."""

    def __init__(self, s, name):
        self.s = s
        self.p = f"/v1/collections/{name}"
        self.conn = s.connection()

    def post(self, route, body):
        try:
            return self.s.request("POST", self.p + route, body, conn=self.conn)
        except (http.client.HTTPException, OSError):
            # the server closes connections idle for --request-timeout (30 s):
            # that request never reached it, so send it again on a new one
            self.conn.close()
            self.conn = self.s.connection()
            return self.s.request("POST", self.p + route, body, conn=self.conn)

    def create(self, dim, **index):
        ok(self.s.request("PUT", self.p, {"dimension": dim, "metric": "l2",
                                          "index": dict({"type": "hnsw"}, **index)}), 201)

    def upsert(self, ids, vectors, payloads, chunk=2000):
        for at in range(0, len(ids), chunk):
            pts = [{"id": i, "vector": [float(x) for x in v], "payload": p}
                   for i, v, p in zip(ids[at:at + chunk], vectors[at:at + chunk],
                                      payloads[at:at + chunk])]
            ok(self.post("/points", {"points": pts}))

    def count(self, flt=None):
        return ok(self.post("/count", {} if flt is None else {"filter": flt}))["count"]

    def scroll_ids(self, flt, limit):
        """Every matching id through scroll pages of `limit`."""
        got, cursor = [], None
        while True:
            r = ok(self.post("/scroll", {"filter": flt, "limit": limit, "cursor": cursor,
                                         "with_payload": False}))
            assert len(r["points"]) <= limit
            got += [p["id"] for p in r["points"]]
            if r["next_cursor"] is None:
                return got
            assert r["next_cursor"] == got[-1]
            cursor = r["next_cursor"]

    def search(self, vector, k, flt=None, **opts):
        body = dict(opts, vector=[float(x) for x in vector], k=k)
        if flt is not None:
            body["filter"] = flt
        return ok(self.post("/search", body))

    def ids(self, vector, k, flt=None, **opts):
        return [h["id"] for h in self.search(vector, k, flt, **opts)["results"]]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with NeedleServer(tmp_path_factory.mktemp("filters") / "data") as s:
        yield s


# ------------------------------------------------------------------ every operator

OPS_POINTS = {
    1: {"cat": "tech", "price": 5, "tags": ["a", "b"], "in_stock": True,
        "meta": {"author": "ann", "rank": 1}, "published": "2024-01-15",
        "title": "Hello, Vector-Database world!", "note": None},
    2: {"cat": "tech", "price": 15.5, "tags": ["b", "c"], "in_stock": False,
        "meta": {"author": "bob"}, "published": "2024-03-01T10:30:00+02:00",
        "title": "vector search"},
    3: {"cat": "food", "price": 100, "tags": [], "meta": "flat",
        "published": "2023-12-31T23:59:59.999Z", "title": ["Café", "naïve DB"],
        "note": [1, None]},
    4: {"cat": "Tech", "price": "15.5", "tags": "a", "count": 3, "big": 9007199254740993,
        "published": "2024-1-1", "authors": [{"name": "ann", "age": 30}, {"name": "bob"}]},
    5: {"cat": "tech", "price": 1e2, "in_stock": 1, "big": 9007199254740992,
        "authors": [{"age": 41}, 7, [{"name": "zed"}]], "meta": {"rank": [2, 3]}},
    "s6": {"cat": "", "tags": ["é", "e"], "count": "3", "published": "2024-02-29T00:00",
           "authors": []},
    "s7": {},
    "s8": None,
}

OPS_CASES = [  # filter, the ids that match
    ({}, [1, 2, 3, 4, 5, "s6", "s7", "s8"]),
    ({"cat": "tech"}, [1, 2, 5]),                          # $eq implied; bytewise (not "Tech")
    ({"cat": {"$eq": "Tech"}}, [4]),
    ({"cat": {"$ne": "tech"}}, [3, 4, "s6", "s7", "s8"]),  # $ne: also without the field
    ({"cat": ""}, ["s6"]),
    ({"price": 100}, [3, 5]),                              # 100 and 1e2 are equal
    ({"price": 15.5}, [2]),                                # not the string "15.5"
    ({"price": "15.5"}, [4]),
    ({"price": {"$gt": 5}}, [2, 3, 5]),
    ({"price": {"$gte": 5, "$lt": 100}}, [1, 2]),
    ({"price": {"$lte": 15.5}}, [1, 2]),
    ({"price": {"$gte": "1"}}, [4]),                       # a string operand: strings only
    ({"big": 9007199254740993}, [4]),                      # not rounded to 2^53
    ({"big": {"$gt": 9007199254740992}}, [4]),
    ({"count": 3}, [4]),
    ({"count": "3"}, ["s6"]),
    ({"in_stock": True}, [1]),                             # 1 is no bool
    ({"in_stock": 1}, [5]),
    ({"in_stock": {"$ne": True}}, [2, 3, 4, 5, "s6", "s7", "s8"]),
    ({"tags": "a"}, [1, 4]),                               # array: any element; scalar too
    ({"tags": {"$in": ["c", "é"]}}, [2, "s6"]),
    ({"tags": {"$in": []}}, []),
    ({"tags": {"$nin": ["a"]}}, [2, 3, 5, "s6", "s7", "s8"]),
    ({"tags": {"$nin": []}}, [1, 2, 3, 4, 5, "s6", "s7", "s8"]),
    ({"tags": {"$gt": "a", "$lt": "b"}}, [1]),             # each operator on its own
    ({"tags": {"$gt": "a", "$lt": "c"}}, [1, 2]),
    ({"tags": {"$exists": True}}, [1, 2, 3, 4, "s6"]),     # [] exists
    ({"tags": {"$exists": False}}, [5, "s7", "s8"]),
    ({"meta.author": "ann"}, [1]),                         # dotted paths
    ({"meta.author": {"$exists": True}}, [1, 2]),
    ({"meta.rank": {"$gte": 3}}, [5]),
    ({"meta.rank": {"$in": [1, 2]}}, [1, 5]),
    ({"meta.nope": None}, [1, 2, 3, 4, 5, "s6", "s7", "s8"]),  # missing, also under "flat"
    ({"note": None}, [1, 2, 3, 4, 5, "s6", "s7", "s8"]),   # null, an array holding null, missing
    ({"note": {"$ne": None}}, []),
    ({"note": {"$exists": True}}, [1, 3]),
    ({"authors.name": "bob"}, [4]),                        # through an array of objects
    ({"authors.age": {"$gt": 35}}, [5]),
    ({"authors.name": {"$exists": True}}, [4]),            # 7 and [..] lead nowhere
    ({"authors.name": None}, [1, 2, 3, 5, "s7", "s8"]),    # not "s6": [] leads nowhere
    ({"published": {"$gte": "2024-01-01"}}, [1, 2, "s6"]),  # dates: instants; 2024-1-1 is none
    ({"published": {"$lt": "2024-01-01T00:00:00Z"}}, [3]),
    ({"published": {"$gte": "2024-03-01T08:30Z", "$lte": "2024-03-01T08:30:00.000+00:00"}}, [2]),
    ({"published": {"$gt": "2024-02-28T23:00:00-01:00"}}, [2]),  # s6's instant: not after
    ({"published": {"$gte": "2024-02-28T23:00:00-01:00", "$lt": "2024-03-01"}}, ["s6"]),
    ({"published": {"$gte": "2024-02"}}, [2, 4, "s6"]),   # not a date: bytewise
    ({"published": "2024-01-15"}, [1]),                    # $eq: strings, byte for byte
    ({"published": "2024-01-15T00:00:00Z"}, []),
    ({"title": {"$text": "vector DATABASE"}}, [1]),        # every word, any case, any order
    ({"title": {"$text": "hello, WORLD!"}}, [1]),
    ({"title": {"$text": "vector"}}, [1, 2]),
    ({"title": {"$text": "vect"}}, []),                    # whole words
    ({"title": {"$text": "café db"}}, [3]),                # an array: all its strings
    ({"title": {"$text": "CAFÉ"}}, []),                    # only ASCII folds
    ({"price": {"$not": {"$gt": 20}}}, [1, 2, 4, "s6", "s7", "s8"]),
    ({"$and": [{"cat": "tech"}, {"price": {"$lt": 20}}]}, [1, 2]),
    ({"$or": [{"cat": "food"}, {"tags": "c"}]}, [2, 3]),
    ({"$not": {"cat": "tech"}}, [3, 4, "s6", "s7", "s8"]),
    ({"$not": {}}, []),
    ({"cat": "tech", "$or": [{"price": 5}, {"price": {"$gt": 50}}]}, [1, 5]),
    ({"$or": [{"$and": [{"cat": "tech"}, {"$not": {"tags": "a"}}]},
              {"$not": {"$or": [{"meta": {"$exists": True}}, {"cat": {"$exists": True}}]}}]},
     [2, 5, "s7", "s8"]),
]


@pytest.fixture(scope="module")
def ops(srv):
    h = Http(srv, "ops")
    h.create(3, m=8, ef_construction=32)
    ids = list(OPS_POINTS)
    vecs = [[i, (i * 7) % 5, (i * 3) % 4] for i in range(len(ids))]
    h.upsert(ids, vecs, list(OPS_POINTS.values()))
    return h


@pytest.mark.parametrize("flt, want", OPS_CASES, ids=[json.dumps(f) for f, _ in OPS_CASES])
def test_every_operator(ops, flt, want):
    # the reference agrees with these hand-written answers first
    assert [i for i, p in OPS_POINTS.items() if matches(flt, p)] == want
    want = sorted(want, key=order_key)
    assert ops.count(flt) == len(want)
    assert ops.scroll_ids(flt, limit=3) == want
    q = [0.5, 1, 1]
    for exact in (True, False):
        for k in (2, 20):
            hits = ops.search(q, k, flt, exact=exact)["results"]
            assert len(hits) == min(k, len(want))
            assert {h["id"] for h in hits} <= set(want)
            assert all(h["payload"] == OPS_POINTS[h["id"]] for h in hits)


# ------------------------------------------------------------------ property test

KEYWORDS = ["a", "b", "c", "ab", "B", "é", ""]
VOCAB = ["vector", "Database", "search", "hello", "WORLD", "naïve", "café", "CAFÉ", "db", "2"]
SEPS = [" ", ", ", "-", "_", "! ", "  "]


def rand_date(rng):
    if rng.random() < 0.12:
        return rng.choice(["2024-02-30", "2024-1-1", "2024-03-01T10", "2023-02-29",
                           "2024-03-01T24:00", "2024-03-01T10:00:60", "2024-03-01T10:00+24:00",
                           "2024-03-01x", "not a date", "2024-03-01T10:00:00.", "0000-01-01",
                           "9999-12-31T23:59:59.999999999-23:59", "2000-02-29", "2024-02-29"])
    ms = 1709251200000 + rng.randrange(-5, 5) * 86400000 + rng.randrange(0, 86400) * 1000
    off = rng.choice([0, 0, 120, -330, 60 * 23 + 59, -60 * 23 - 59])
    t = time.gmtime((ms + off * 60000) // 1000)
    day = time.strftime("%Y-%m-%d", t)
    form = rng.randrange(5)
    if form == 0:
        return day
    sep = rng.choice("TTt ")
    s = day + sep + time.strftime("%H:%M", t)
    if form >= 2:
        s += time.strftime(":%S", t)
    if form >= 3:
        s += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
    if off == 0:
        zone = rng.choice(["Z", "z", "+00:00", "-0000", ""])
    else:
        zone = "%s%02d%s%02d" % ("+" if off > 0 else "-", abs(off) // 60, rng.choice([":", ""]),
                                 abs(off) % 60)
    return s + zone


def rand_title(rng):
    return rng.choice(["", "(", "..."]) + "".join(
        rng.choice(VOCAB) + rng.choice(SEPS) for _ in range(rng.randint(1, 3)))


def rand_number(rng):
    return rng.choice([rng.randint(-3, 12), rng.randint(-3, 12), round(rng.uniform(-3, 12), 2),
                       7.0, 0, 0.0, 2**53 + 1, 2**53, -2**63, 2**63 - 1, 1e300])


def rand_scalar(rng):
    return rng.choice([rng.choice(KEYWORDS), rand_number(rng), rng.random() < 0.5, None])


def some(rng, fields):
    """A dict of those of fields (name: (chance, make)) that come up."""
    return {k: make() for k, (p, make) in fields.items() if rng.random() < p}


def rand_payload(rng):
    if rng.random() < 0.03:
        return None
    p = some(rng, {
        "kw": (0.85, lambda: rng.choice(KEYWORDS) if rng.random() < 0.9 else rand_scalar(rng)),
        "n": (0.8, lambda: rand_number(rng) if rng.random() < 0.85
              else rng.choice(["3", True, None, "x"])),
        "ok": (0.6, lambda: rng.choice([True, False, True, None, 1, "true"])),
        "d": (0.7, lambda: rand_date(rng) if rng.random() < 0.92 else rand_number(rng)),
        "tags": (0.7, lambda: [rng.choice(KEYWORDS) if rng.random() < 0.9 else rand_scalar(rng)
                               for _ in range(rng.randint(0, 3))]
                 if rng.random() < 0.85 else rand_scalar(rng)),
        "meta": (0.6, lambda: rand_meta(rng) if rng.random() < 0.85 else rand_scalar(rng)),
        "authors": (0.4, lambda: [rand_author(rng) for _ in range(rng.randint(0, 2))]),
        "title": (0.5, lambda: rand_title(rng) if rng.random() < 0.75
                  else [rand_title(rng) for _ in range(rng.randint(0, 2))]),
        "note": (0.3, lambda: rand_scalar(rng)),
    })
    keys = list(p)
    rng.shuffle(keys)  # key order is no matter
    return {k: p[k] for k in keys}


def rand_meta(rng):
    return some(rng, {
        "author": (0.8, lambda: rng.choice(KEYWORDS)),
        "rank": (0.7, lambda: rng.randint(0, 5) if rng.random() < 0.8
                 else [rng.randint(0, 5) for _ in range(rng.randint(0, 3))]),
        "deep": (0.4, lambda: some(rng, {"v": (0.8, lambda: rand_scalar(rng))}))})


def rand_author(rng):
    if rng.random() < 0.1:
        return rng.choice([7, "ann", None, [{"name": "ann"}]])  # leads nowhere
    return some(rng, {"name": (0.8, lambda: rng.choice(KEYWORDS)),
                      "age": (0.7, lambda: rng.randint(18, 60))})


# paths of filters, the common ones more often
PATHS = (["kw", "n", "tags", "meta.author", "authors.name", "d", "title"] * 3 +
         ["ok", "meta", "meta.rank", "meta.deep.v", "meta.deep", "authors", "authors.age",
          "note", "nope", "kw.sub", "meta.nope.deeper"])
TEXTUAL = {"title", "tags", "kw", "authors.name"}


def value_pools(payloads):
    """Every scalar each path reaches in the data, for operands that match."""
    pools = {}
    for path in set(PATHS):
        pools[path] = [e for p in payloads for e in _values(reach(p, path))
                       if not isinstance(e, (dict, list))]
    return pools


def rand_operand(rng, path, ranged=False, pools=None):
    """A scalar operand: one of the data (pools) or one of the kind the path holds."""
    if pools and pools[path] and rng.random() < 0.5:
        v = rng.choice(pools[path])
    elif rng.random() < 0.15:
        v = rand_scalar(rng)
    elif path == "d":
        v = rand_date(rng) if rng.random() < 0.85 else rng.choice(["2024-03", "2024-02-29T"])
    elif path == "authors.age":
        v = rng.randint(15, 65)
    elif path in ("n", "meta.rank", "meta.deep.v"):
        v = rand_number(rng)
    elif path == "title":
        v = rng.choice(VOCAB)
    else:
        v = rng.choice(KEYWORDS)
    if ranged and (v is None or isinstance(v, bool)):  # ranges take numbers and strings
        v = rng.choice([rng.choice(KEYWORDS), rand_number(rng)])
    return v


FIELD_OPS = ["$eq", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$in", "$nin",
             "$exists", "$text", "$not"]


def rand_ops(rng, path, depth, pools):
    ops = {}
    for _ in range(1 if rng.random() < 0.75 else 2):
        op = rng.choice(FIELD_OPS)
        if op == "$text" and path not in TEXTUAL and rng.random() < 0.8:
            op = "$exists"
        if op in ("$eq", "$ne"):
            ops[op] = rand_operand(rng, path, pools=pools)
        elif op in _CMP:
            ops[op] = rand_operand(rng, path, ranged=True, pools=pools)
        elif op in ("$in", "$nin"):
            ops[op] = [rand_operand(rng, path, pools=pools) for _ in range(rng.randint(0, 4))]
        elif op == "$exists":
            ops[op] = rng.random() < 0.5
        elif op == "$text":
            ops[op] = rng.choice(["", " "]) + rng.choice(SEPS).join(
                rng.choice(VOCAB + [w.upper() for w in VOCAB]) for _ in range(rng.randint(1, 2)))
        elif depth < 2:
            ops[op] = rand_ops(rng, path, depth + 1, pools)
    return ops or {"$exists": True}


def rand_filter(rng, pools, depth=0):
    f = {}
    for _ in range(rng.choice([1, 1, 1, 1, 1, 2, 2, 3]) if depth < 3 else 1):
        r = rng.random()
        if r < 0.15 and depth < 3:
            f[rng.choice(["$and", "$or", "$or"])] = [rand_filter(rng, pools, depth + 1)
                                                     for _ in range(rng.randint(1, 3))]
        elif r < 0.22 and depth < 3:
            f["$not"] = rand_filter(rng, pools, depth + 1)
        else:
            path = rng.choice(PATHS)
            if rng.random() < 0.25:
                f[path] = rand_operand(rng, path, pools=pools)  # $eq implied
            else:
                f[path] = rand_ops(rng, path, 0, pools)
    return f


N_POINTS, DIM, N_FILTERS, GROUP = 200, 8, 2000, 50


def test_random_filters_match_the_reference(srv):
    """Thousands of random filters over a few hundred random payloads: the
    server's count, scroll (every page), exact and planned searches against
    the reference above. Two threads share the work (the server runs each
    connection on its own thread)."""
    rng = random.Random(20240301)
    ids = list(range(N_POINTS - 25)) + [f"s{i}" for i in range(25)]
    payloads = [rand_payload(rng) for _ in ids]
    vectors = clustered(len(ids), DIM, seed=7)
    h = Http(srv, "prop")
    h.create(DIM, m=8, ef_construction=64)
    h.upsert(ids, vectors, payloads)
    # some points replaced (new payload and vector) and some deleted: their
    # old slots stay behind, hidden, until a compaction
    again = rng.sample(range(len(ids)), 30)
    for j in again:
        payloads[j] = rand_payload(rng)
    vectors[again] = clustered(30, DIM, seed=9)
    h.upsert([ids[j] for j in again], vectors[again], [payloads[j] for j in again])
    gone = set(rng.sample(range(len(ids)), 15))
    ok(h.post("/points/delete", {"ids": [ids[j] for j in gone]}))
    keep = [j for j in range(len(ids)) if j not in gone]
    ids, payloads, vectors = [ids[j] for j in keep], [payloads[j] for j in keep], vectors[keep]

    pools = value_pools(payloads)
    # every filter as the JSON text the server reads
    filters = [json.loads(json.dumps(rand_filter(rng, pools))) for _ in range(N_FILTERS)]
    queries = clustered(N_FILTERS, DIM, seed=8)
    vec64 = vectors.astype(np.float64)
    cases = []
    for i, f in enumerate(filters):
        match = [j for j, p in enumerate(payloads) if matches(f, p)]
        m = len(match)
        # scroll pages of `limit` (at most about 3 pages); searches with k
        # smaller than the matches (ef = k: the HNSW walk when many match) or
        # bigger, one exact and one as planned
        limit = max(rng.choice([1, 2, 7, 50, 1000]), math.ceil((m + 1) / 3))
        small, big = rng.randint(1, max(1, min(8, m - 1))), m + rng.randint(1, 20)
        kinds = [(rng.choice([small, big]), {"exact": True}),
                 rng.choice([(small, {"ef": small}), (small, {"ef": small}), (big, {})])]
        cases.append((f, match, limit, kinds, queries[i]))

    def run(group):
        """The checks of a group of cases; returns the plans that ran."""
        c = Http(srv, "prop")
        plans, searches, want = [], [], []
        for f, match, limit, kinds, q in group:
            assert c.count(f) == len(match), f
            assert c.scroll_ids(f, limit) == sorted((ids[j] for j in match), key=order_key), f
            for k, opts in kinds:
                searches.append(dict(opts, vector=[float(x) for x in q], k=k, filter=f,
                                     with_payload=False, explain=True))
                want.append((f, k, opts, match, q))
        r = ok(c.post("/search/batch", {"searches": searches}))
        assert len(r["results"]) == len(r["explain"]) == len(searches)
        for hits, ex, (f, k, opts, match, q) in zip(r["results"], r["explain"], want):
            m = len(match)
            got = [x["id"] for x in hits]
            assert len(got) == min(k, m), (f, k, opts, ex)  # exactly min(k, matching)
            assert len(set(got)) == len(got)
            pos = {ids[j]: n for n, j in enumerate(match)}
            assert all(i in pos for i in got), (f, got)     # every hit matches
            assert ex["filtered"] is True
            plans.append(ex["plan"])
            if ex["plan"] == "exact":
                assert ex["matched"] == m, (f, ex)           # an exact scan checks every point
            if opts.get("exact"):
                assert ex["plan"] == "exact"
                # the true nearest matching points (ties aside): the same distances
                d = np.sqrt(((vec64[match] - q) ** 2).sum(1))
                dist = np.array([x["distance"] for x in hits])
                np.testing.assert_allclose(dist, np.sort(d)[:len(got)], rtol=1e-4, atol=1e-4)
                np.testing.assert_allclose(dist, d[[pos[i] for i in got]], rtol=1e-4, atol=1e-4)
        c.conn.close()
        return plans

    with ThreadPoolExecutor(2) as pool:
        groups = [cases[g:g + GROUP] for g in range(0, N_FILTERS, GROUP)]
        plans = [p for ps in pool.map(run, groups) for p in ps]
    # the data and the grammar make filters of every selectivity, and both plans run
    sizes = np.array([len(match) for _, match, _, _, _ in cases])
    assert (sizes == 0).mean() > 0.05 and (sizes == len(ids)).mean() > 0.02
    assert ((sizes > 0) & (sizes < 20)).mean() > 0.1 and (sizes > len(ids) / 2).mean() > 0.1
    assert plans.count("hnsw") > N_FILTERS * 0.1, plans.count("hnsw")


# ------------------------------------------------------------------ the exact-count promise

@pytest.fixture(scope="module")
def thousands(srv):
    """2,000 points; the planner samples about 1 in 7 of them."""
    h = Http(srv, "tiny")
    h.create(4, m=8, ef_construction=32)
    h.vectors = clustered(2000, 4, seed=3)
    h.upsert(list(range(2000)), h.vectors, [{"i": i, "grp": i % 10} for i in range(2000)])
    return h


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("flt, k, want", [
    ({"i": 1234}, 10, [1234]),
    ({"i": 1234}, 1, [1234]),
    ({"i": -1}, 10, []),
    ({"i": {"$in": [5, 999, 1998]}}, 10, [5, 999, 1998]),
    ({"$and": [{"grp": 3}, {"i": {"$lt": 40}}]}, 10, [3, 13, 23, 33]),
])
def test_tiny_selectivity_exact_counts(thousands, exact, flt, k, want):
    for q in thousands.vectors[[0, 1234, 1998]]:
        r = thousands.search(q, k, flt, exact=exact, explain=True)
        got = [x["id"] for x in r["results"]]
        assert sorted(got) == want                       # every matching point, nothing else
        d = [x["distance"] for x in r["results"]]
        assert d == sorted(d)
        assert r["explain"]["filtered"] is True
    assert thousands.count(flt) == len(want)


def test_hnsw_plan_finds_every_match_when_the_sample_misleads(srv):
    """The planner estimates from every (slots / 256)-th slot. A filter that
    matches exactly those slots looks like it matches everything, so the
    HNSW walk runs (est > 20 * ef), though fewer points match than k: the
    walk must still widen to every one of them (SPEC: exactly min(k, matching))."""
    n, sample = 6000, 256
    step = n // sample
    h = Http(srv, "misled")
    h.create(4, m=8, ef_construction=24)
    vectors = clustered(n, 4, seed=5)
    h.upsert(list(range(n)), vectors, [{"s": i % step == step // 2} for i in range(n)])
    match = [i for i in range(n) if i % step == step // 2]
    k = len(match) + 20
    assert 20 * k < n
    for q in vectors[[0, 3000]]:
        r = h.search(q, k, {"s": True}, ef=k, explain=True)
        ex = r["explain"]
        assert ex["plan"] == "hnsw" and ex["estimated_matches"] == n, (
            f"{ex}: the planner's sample (WHERE_SAMPLE) changed; update this test")
        assert sorted(x["id"] for x in r["results"]) == match
        small = h.search(q, 10, {"s": True}, ef=10)["results"]
        assert len(small) == 10 and all(x["id"] in set(match) for x in small)
    assert h.count({"s": True}) == len(match)


# ------------------------------------------------------------------ delete by filter

def test_delete_by_filter_survives_restart(tmp_path):
    rng = random.Random(5)
    ids = list(range(300))
    payloads = [{"grp": rng.choice(KEYWORDS), "n": rng.randint(0, 9)} for _ in ids]
    flt = {"$or": [{"grp": "a"}, {"n": {"$gte": 7}}]}
    gone = [i for i in ids if matches(flt, payloads[i])]
    kept = [i for i in ids if i not in set(gone)]
    assert 0 < len(gone) < 300
    with NeedleServer(tmp_path / "data") as s:
        h = Http(s, "del")
        h.create(4, m=8, ef_construction=32)
        h.upsert(ids, clustered(300, 4, seed=1), payloads)
        assert h.count() == 300 and h.count(flt) == len(gone)
        # a bad filter, or ids with it, deletes nothing
        err(h.post("/points/delete", {"filter": {"$or": [flt, {"n": {"$gte": []}}]}}), 400,
            "invalid_argument", "points/delete: filter.$or[1].n.$gte")
        err(h.post("/points/delete", {"filter": flt, "ids": [1]}), 400, "invalid_argument",
            "not both")
        err(h.post("/points/delete", {"filter": None}), 400, "invalid_argument", "'filter'")
        err(h.post("/points/delete", {"filter": None, "ids": None}), 400, "invalid_argument",
            "'filter'")
        assert h.count() == 300
        # null beside the other key counts as absent (clients send both keys)
        assert ok(h.post("/points/delete", {"filter": None, "ids": [kept[0]]})) == {"deleted": 1}
        assert ok(h.post("/points/delete", {"ids": None, "filter": flt})) == {"deleted": len(gone)}
        kept = kept[1:]
        assert ok(h.post("/points/delete", {"filter": flt})) == {"deleted": 0}
        assert h.count() == len(kept) and h.count(flt) == 0
        assert [p["id"] for p in scroll_all(s, "del", limit=50)[0]] == kept
    with NeedleServer(tmp_path / "data") as s:  # the same data directory, restarted
        h = Http(s, "del")
        assert h.count() == len(kept) and h.count(flt) == 0
        assert [p["id"] for p in scroll_all(s, "del", limit=1000)[0]] == kept
        assert set(h.ids([0, 0, 0, 0], 300, exact=True)) == set(kept)
        assert set(h.ids([0, 0, 0, 0], 300)) <= set(kept)
        assert ok(h.post("/points/delete", {"filter": {}})) == {"deleted": len(kept)}
        assert h.count() == 0
    with NeedleServer(tmp_path / "data") as s:
        assert Http(s, "del").count() == 0


# ------------------------------------------------------------------ explain and /metrics

def searches_metric(s):
    text = ok(s.request("GET", "/metrics"))
    return {(m[1], m[2]): int(m[3]) for m in re.finditer(
        r'^needle_searches_total\{plan="(\w+)",filtered="(\w+)"\} (\d+)$', text, re.M)}


def test_explain_and_metrics(ops, srv):
    before = searches_metric(srv)
    assert set(before) == {(p, f) for p in ("hnsw", "exact") for f in ("true", "false")}
    q = [0, 0, 0]
    r = ops.search(q, 3, explain=True)
    assert r["explain"] == {"plan": "hnsw", "filtered": False, "visited": r["explain"]["visited"],
                            "ef": 64}
    assert r["explain"]["visited"] > 0
    assert ops.search(q, 3, exact=True, explain=True)["explain"] == {
        "plan": "exact", "filtered": False, "visited": 0}
    assert "explain" not in ops.search(q, 3) and "explain" not in ops.search(q, 3, explain=False)
    flt = {"cat": "tech"}
    want = [i for i, p in OPS_POINTS.items() if matches(flt, p)]
    ex = ops.search(q, 2, flt, explain=True)["explain"]
    assert ex["plan"] == "exact" and ex["filtered"] is True  # 3 of 8: a scan is cheaper
    assert ex["matched"] == len(want) and ex["estimated_matches"] == len(want)
    assert ex["filter_checks"] >= len(OPS_POINTS) and ex["visited"] == 0
    assert set(ex) == {"plan", "filtered", "estimated_matches", "matched", "filter_checks",
                       "visited"}
    # search/batch: one entry per search, null where not asked
    r = ok(ops.post("/search/batch", {"searches": [
        {"vector": q, "k": 2, "filter": flt, "explain": True}, {"vector": q, "k": 2},
        {"vector": q, "k": 1, "filter": {}, "exact": True, "explain": True}]}))
    assert r["explain"][0] == ex and r["explain"][1] is None
    assert r["explain"][2]["plan"] == "exact" and r["explain"][2]["matched"] == len(OPS_POINTS)
    r = ok(ops.post("/search/batch", {"searches": [{"vector": q, "k": 2, "filter": flt}]}))
    assert "explain" not in r
    err(ops.post("/search", {"vector": q, "explain": 1}), 400, "invalid_argument", "'explain'")
    after = searches_metric(srv)
    assert after[("hnsw", "false")] == before[("hnsw", "false")] + 4
    assert after[("exact", "false")] == before[("exact", "false")] + 1
    assert after[("exact", "true")] == before[("exact", "true")] + 4
    assert after[("hnsw", "true")] == before[("hnsw", "true")]


# ------------------------------------------------------------------ concurrency

def test_filtered_searches_during_concurrent_upserts(tmp_path):
    """Writers replace, and delete by filter, only "churn" points; searchers
    filter for "stable" ones, which no write touches: exactly min(k, the
    stable ones that match) hits, through the HNSW walk (many match, small
    ef) and the exact scan; and for churn ones (whatever matches at that
    moment, but only matching points)."""
    dim, n_stable, n_churn = 8, 800, 600
    base = clustered(n_stable + 1000, dim, seed=13)
    with NeedleServer(tmp_path / "data", "--threads", 4) as s:
        h = Http(s, "conc")
        h.create(dim, m=8, ef_construction=32)
        h.upsert(list(range(n_stable)), base[:n_stable],
                 [{"grp": "stable", "i": i} for i in range(n_stable)])
        h.upsert(list(range(n_stable, n_stable + n_churn)), base[n_stable:n_stable + n_churn],
                 [{"grp": "churn", "gen": 0}] * n_churn)
        stable, few = {"grp": "stable"}, {"grp": "stable", "i": {"$lt": 50}}
        stop = threading.Event()
        errors, plans, done = [], [], {"searches": 0, "writes": 0}

        def writer(t):
            w = Http(s, "conc")
            rng = random.Random(t)
            try:
                while not stop.is_set():
                    lo = rng.randrange(n_stable, n_stable + 1000, 10)
                    gen = rng.randint(1, 3)
                    w.upsert(list(range(lo, lo + 10)), base[lo:lo + 10] + rng.random(),
                             [{"grp": "churn", "gen": gen}] * 10)
                    if rng.random() < 0.2:
                        ok(w.post("/points/delete", {"filter": {"grp": "churn",
                                                                "gen": rng.randint(1, 3)}}))
                    done["writes"] += 1
            except Exception as e:  # reported by the main thread
                errors.append(e)

        def searcher(t):
            r_ = Http(s, "conc")
            rng = random.Random(100 + t)
            try:
                while not stop.is_set():
                    q = base[rng.randrange(len(base))]
                    for flt, k, opts, want in ((stable, 10, {"ef": 10}, 10),
                                               (stable, 10, {"exact": True}, 10),
                                               (few, 10, {}, 10), (few, 80, {}, 50)):
                        r = r_.search(q, k, flt, explain=True, **opts)
                        hits = r["results"]
                        plans.append(r["explain"]["plan"])
                        assert len(hits) == want, (flt, k, opts, r["explain"], len(hits))
                        assert all(x["payload"]["grp"] == "stable" and
                                   matches(flt, x["payload"]) for x in hits)
                    gen = rng.randint(1, 3)
                    churn = {"grp": "churn", "gen": {"$gte": gen}}
                    hits = r_.search(q, 20, churn, ef=20)["results"]
                    assert all(matches(churn, x["payload"]) for x in hits)
                    assert r_.count(stable) == n_stable
                    done["searches"] += 1
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(2)]
        threads += [threading.Thread(target=searcher, args=(t,)) for t in range(2)]
        for t in threads:
            t.start()
        time.sleep(6)
        stop.set()
        for t in threads:
            t.join(60)
        assert not errors, errors[0]
        assert done["searches"] > 5 and done["writes"] > 10, done
        assert "hnsw" in plans and "exact" in plans
        assert h.count(stable) == n_stable
        assert sorted(h.ids(base[0], 1000, stable, exact=True)) == list(range(n_stable))


# ------------------------------------------------------------------ malformed filters

BAD_FILTERS = [  # filter, what the message names (docs/FILTERS.md "Errors")
    ([], "'filter' must be an object"),
    ("tech", "'filter' must be an object"),
    (5, "'filter' must be an object"),
    ({"$regex": "a"}, "filter: unknown operator '$regex'"),
    ({"$gt": 5}, "unknown operator '$gt' here"),
    ({"$nor": [{}]}, "'$nor'"),
    ({"$or": []}, "filter.$or: needs a non-empty array of filters"),
    ({"$and": {}}, "filter.$and:"),
    ({"$and": [1]}, "filter.$and[0]: must be a filter object (got a number)"),
    ({"$and": [{}] * 1025}, "filter.$and: has 1025 filters; at most 1024"),
    ({"$not": []}, "filter.$not: must be a filter object (got an array)"),
    ({"": 1}, "filter: a field name is empty"),
    ({"a..b": 1}, "field 'a..b' has an empty part between dots"),
    ({"tags": ["a", "b"]}, "filter.tags: an array cannot be compared whole"),
    ({"price": {}}, "filter.price: needs at least one operator"),
    ({"meta": {"author": "john"}}, "filter.meta: 'author' is not an operator"),
    ({"price": {"$foo": 1}}, "filter.price: unknown operator '$foo'"),
    ({"price": {"$gt": 1, "$elemMatch": {}}}, "'$elemMatch'"),
    ({"a": {"$eq": [1]}}, "filter.a.$eq: must be a string, number, bool or null"),
    ({"a": {"$ne": {}}}, "filter.a.$ne:"),
    ({"$and": [{}, {"price": {"$gte": []}}]}, "filter.$and[1].price.$gte: needs a number"),
    ({"p": {"$lt": True}}, "filter.p.$lt: needs a number or a string"),
    ({"p": {"$lte": None}}, "filter.p.$lte:"),
    ({"tags": {"$in": "a"}}, "filter.tags.$in: needs an array of values (got a string)"),
    ({"tags": {"$nin": [1, {}]}}, "filter.tags.$nin[1]: must be a string, number, bool or null"),
    ({"tags": {"$in": list(range(10001))}}, "filter.tags.$in: has 10001 values; at most 10000"),
    ({"t": {"$exists": 1}}, "filter.t.$exists: needs true or false (got a number)"),
    ({"t": {"$text": 5}}, "filter.t.$text: needs a string of words"),
    ({"t": {"$text": " - "}}, "filter.t.$text: has no words to look for"),
    ({"a": {"$not": 5}}, "filter.a.$not: needs an object of operators"),
    ({"a": {"$not": {"b": 1}}}, "filter.a.$not:"),
    ({"$or": [{"a": 1}, {"b": {"$in": [1, [2]]}}]}, "filter.$or[1].b.$in[1]:"),
]


@pytest.mark.parametrize("flt, named", BAD_FILTERS, ids=[n for _, n in BAD_FILTERS])
def test_malformed_filters_are_refused_and_change_nothing(ops, flt, named):
    q = [0, 0, 0]
    calls = [("/search", {"vector": q, "filter": flt}, "search: "),
             ("/search/batch", {"searches": [{"vector": q}, {"vector": q, "filter": flt}]},
              "searches[1]: "),
             ("/count", {"filter": flt}, "count: "),
             ("/scroll", {"filter": flt, "limit": 5}, "scroll: "),
             ("/points/delete", {"filter": flt}, "points/delete: ")]
    for route, body, where in calls:
        msg = err(ops.post(route, body), 400, "invalid_argument", named)
        assert msg.startswith(where), msg
    assert ops.count() == len(OPS_POINTS)


def test_filter_nesting_limit(ops):
    """At most 64 levels of filter objects; a body adds its own level, so
    the deepest filter a search body carries is refused by the body's
    nesting limit or by the filter's, always as a 400 naming the depth."""
    assert ops.count(nested_not(40)) == 0
    err(ops.post("/count", {"filter": nested_not(70)}), 400, "invalid_argument",
        match=r"deeper than 64|nest")
    assert ops.count() == len(OPS_POINTS)


# ------------------------------------------------------------------ the CLI

def test_cli_search_filter(tmp_path):
    cli = Cli(tmp_path / "db")
    rng = random.Random(3)
    n, dim = 500, 6
    base = clustered(n, dim, seed=17)
    payloads = [{"cat": rng.choice(["a", "b", "c"]), "n": rng.randint(0, 99)} for _ in range(n)]
    ids = [f"p{i}" for i in range(n)]
    write_jsonl(tmp_path / "pts.jsonl", base, ids=ids, payloads=payloads)
    cli.run("import", "docs", tmp_path / "pts.jsonl", "--metric", "l2", "--m", 8,
            "--ef-construction", 32)
    queries = clustered(5, dim, seed=18)
    with open(tmp_path / "q.jsonl", "w") as f:
        for v in queries:
            f.write(json.dumps({"vector": [float(a) for a in v]}) + "\n")
    for flt, k in (({"cat": "a", "n": {"$lt": 50}}, 10), ({"n": {"$in": [1, 2, 3]}}, 10),
                   ({"cat": {"$ne": "a"}}, 5), ({"n": -1}, 3)):
        match = [i for i in range(n) if matches(flt, payloads[i])]
        for extra in ((), ("--exact",)):
            lines = cli.search("docs", tmp_path / "q.jsonl", k, "--filter", json.dumps(flt),
                               "--with-payload", *extra)
            for qi, line in enumerate(lines):
                got = [r["id"] for r in line["results"]]
                assert len(got) == min(k, len(match))
                assert all(matches(flt, r["payload"]) for r in line["results"])
                if extra:
                    d = np.sqrt(((base[match].astype(np.float64) - queries[qi]) ** 2).sum(1))
                    want = [ids[match[j]] for j in np.argsort(d, kind="stable")[:k]]
                    assert got == want
    p = cli.fail("search", "docs", "--queries", tmp_path / "q.jsonl", "--k", 3,
                 "--filter", '{"cat":{"$like":"a"}}', code=2,
                 match=r"^needle: --filter: filter\.cat: unknown operator '\$like'")
    assert p.stdout == ""
    cli.fail("search", "docs", "--queries", tmp_path / "q.jsonl", "--k", 3,
             "--filter", '{"cat":"a",}', code=2, match=r"--filter: filter is not valid JSON")
    cli.fail("search", "docs", "--queries", tmp_path / "q.jsonl", "--k", 3,
             "--filter", '["a"]', code=2, match=r"--filter: filter must be a JSON object")
