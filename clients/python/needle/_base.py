"""What the HTTP and the embedded mode share: the database and collection
interfaces (with their defaults and docstrings), the collection config body,
and the checks of ids, integers, vectors, payloads and filters made before
any work is sent, so that both modes refuse the same input with the same
code."""
import json
import operator
from array import array
from collections.abc import Mapping, Set

from ._errors import invalid

try:  # numpy is optional: arrays are accepted when it is there
    import numpy as np
except ImportError:  # pragma: no cover - exercised only without numpy
    np = None

ID_MAX = 2**63 - 1  # integer ids are 0..2^63-1 in both modes (docs/HTTP.md)
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 200  # the defaults of create_collection
_NOT_A_LIST = (str, bytes, bytearray, Mapping, Set)


def json_default(o):
    """numpy arrays and scalars, array.array: as plain lists and numbers."""
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def dumps(obj, what="body"):
    """Compact JSON as UTF-8 bytes; NaN/Inf, lone surrogates and types JSON
    has no form for are the caller's error (invalid_argument)."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                          default=json_default)
        return text.encode("utf-8")
    except (ValueError, TypeError) as e:  # UnicodeEncodeError is a ValueError
        if "Out of range float" in str(e):
            e = "NaN and Inf have no JSON form"
        raise invalid(f"{what}: {e}") from None


def name_error(name):
    """The error of a bad collection name (the server's message)."""
    return invalid(f"bad collection name {name!r}: use 1..64 of A-Z a-z 0-9 _ -")


# ------------------------------------------------------------------ integers and ids

def is_bool(v):
    """True/False, numpy bools and bool arrays: neither numbers nor ids here
    (in JSON they are true and false, which the server refuses)."""
    return isinstance(v, bool) or (np is not None and (
        isinstance(v, np.bool_) or (isinstance(v, np.ndarray) and v.dtype.kind == "b")))


def _index(v):
    """v as a Python int when it is an integer (int, numpy integer, 0-d
    integer array), else None. Bools are no integers here."""
    if is_bool(v):
        return None
    try:
        return operator.index(v)
    except TypeError:
        return None


def check_int(v, lo, hi, what):
    """v as an int in lo..hi, with the messages of the server's get_u32.
    None, bools, floats and strings are refused. what names the field."""
    n = _index(v)
    if n is None:
        raise invalid(f"{what} must be an integer in {lo}..{hi}")
    if not lo <= n <= hi:
        raise invalid(f"{what} is {n}; it must be in {lo}..{hi}")
    return n


def check_id(x, where="id"):
    """x as an id: an int 0..ID_MAX or a str without NUL (JSON bodies cannot
    carry one to the server). A string's length and UTF-8 are checked by
    libneedle, which the server calls too: the same messages either way."""
    if isinstance(x, str):
        if "\0" in x:
            raise invalid(f"{where}: a string id cannot hold NUL (\\0)")
        return x
    n = _index(x)
    if n is None or not 0 <= n <= ID_MAX:
        raise invalid(f"{where}: an id must be an integer 0..{ID_MAX} or a string")
    return n


def is_single_id(ids):
    """An id (int, str, numpy integer, 0-d array) rather than a collection
    of them."""
    if np is not None and isinstance(ids, np.ndarray):
        return ids.ndim == 0
    return isinstance(ids, (str, bytes)) or not _iterable(ids)


def single_id(x):
    """A 0-d numpy array as its Python value; anything else as it is."""
    if np is not None and isinstance(x, np.ndarray):
        return x.item()
    return x


def _iterable(x):
    try:
        iter(x)
    except TypeError:
        return False
    return True


def as_list(x, what):
    """x's items as a list: a list as it is, a numpy array by tolist() (plain
    ints, floats and strs), any other iterable (a generator...) read once.
    Strings, bytes, dicts and sets are refused: they are no list of ids,
    vectors or payloads."""
    if isinstance(x, list):
        return x
    if np is not None and isinstance(x, np.ndarray):
        if x.ndim == 0:
            raise invalid(f"{what} must be a list, not a 0-d array")
        return x.tolist()
    if isinstance(x, _NOT_A_LIST) or not _iterable(x):
        raise invalid(f"{what} must be a list, not {type(x).__name__}")
    return list(x)


# ------------------------------------------------------------------ vectors

def _check_kind(a, where):
    """A numpy array of numbers: float, signed or unsigned integer. Bools,
    complex numbers, strings and objects are refused."""
    if a.dtype.kind not in "fiu":
        raise invalid(f"{where}: vector values must be numbers, not numpy {a.dtype}")


def one_vector(row, where):
    """One vector: a 1-D numpy array of numbers, a list, tuple or array.array
    (whose values are checked by the server, or by the embedded mode), any
    other iterable read into a list. Strings, dicts and sets are refused."""
    if isinstance(row, (list, tuple)):
        return row
    if np is not None and isinstance(row, np.ndarray):
        if row.ndim != 1:
            raise invalid(f"{where}: 'vector' must be a 1-D array, not {row.ndim}-D")
        _check_kind(row, where)
        return row
    if isinstance(row, array) and row.typecode not in ("u", "w"):
        return row
    if isinstance(row, _NOT_A_LIST) or isinstance(row, array) or not _iterable(row):
        raise invalid(f"{where}: 'vector' must be an array of numbers")
    return list(row)


def vector_rows(vectors, where):
    """Vectors: a 2-D numpy array of numbers (as it is) or any iterable of
    vectors (a list of one_vector rows). where(i) names vector i."""
    if np is not None and isinstance(vectors, np.ndarray):
        if vectors.ndim != 2:
            raise invalid(f"vectors must be a 2-D array of shape (n, dimension), "
                          f"not {vectors.ndim}-D")
        _check_kind(vectors, "vectors")
        return vectors
    return [one_vector(row, where(i)) for i, row in enumerate(as_list(vectors, "vectors"))]


# ------------------------------------------------------------------ payloads and points

def check_payload(p, where):
    """A payload: a dict whose keys are strings, at any depth (json.dumps
    would turn 1, 1.5, True or None into a string key silently)."""
    if not isinstance(p, dict):
        raise invalid(f"{where} must be a dict, not {type(p).__name__}")
    _check_keys(p, where, 0)


def _check_keys(obj, where, depth):
    if depth > 64:  # deeper than any body may be: refused as such (or as circular)
        return
    values = obj
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, str):
                raise invalid(f"{where}: keys must be strings, not {type(k).__name__} {k!r}")
        values = obj.values()
    for v in values:
        if isinstance(v, (dict, list, tuple)):
            _check_keys(v, where, depth + 1)


class Filter:
    """A payload filter (docs/FILTERS.md) checked once for both modes: the
    dict (sent in HTTP bodies) and its JSON text (parsed by libneedle in
    embedded mode)."""
    __slots__ = ("obj", "text")

    def __init__(self, obj, text):
        self.obj = obj
        self.text = text


def check_filter(f, where, required=False):
    """A filter argument as a Filter, or None for no filter (None, unless
    required). It must be a dict whose keys are strings, at any depth, that
    JSON can carry; its operators are checked by libneedle (the server's
    parser, in both modes). where names the request, as the server does
    ("search", "searches[0]", "count", "scroll", "points/delete")."""
    if f is None and not required:
        return None
    if not isinstance(f, dict):
        what = "None" if f is None else type(f).__name__
        raise invalid(f"{where}: 'filter' must be a dict (a JSON object), not {what}")
    _check_keys(f, f"{where}: filter", 0)
    return Filter(f, dumps(f, f"{where}: filter"))


def no_explain(options, where):
    """'explain' is Collection.explain(), not an option of search (whose
    answer is a list of hits, with no place for it)."""
    if "explain" in options:
        raise invalid(f"{where}: 'explain' is not a search option here: "
                      "Collection.explain() runs a search and returns how it ran")


def check_points(ids, vectors, payloads):
    """An upsert's ids (a list), vectors (vector_rows) and payloads (None or
    a list of dicts and Nones), of equal lengths."""
    if is_single_id(ids):
        raise invalid("upsert takes a list of ids (and a list of vectors)")
    ids = as_list(ids, "ids")
    rows = vector_rows(vectors, lambda i: f"point {i}")
    if len(rows) != len(ids):
        raise invalid(f"{len(ids)} ids but {len(rows)} vectors")
    if payloads is not None:
        payloads = as_list(payloads, "payloads")
        if len(payloads) != len(ids):
            raise invalid(f"{len(ids)} ids but {len(payloads)} payloads")
        for i, p in enumerate(payloads):
            if p is not None:
                if not isinstance(p, dict):
                    raise invalid(f"point {i}: 'payload' must be a dict or None, "
                                  f"not {type(p).__name__}")
                check_payload(p, f"point {i}: payload")
    return ids, rows, payloads


def config_body(dimension, metric, index, m, ef_construction, extra):
    """The PUT /v1/collections/{name} body (docs/HTTP.md): both modes parse
    this same dict, so they accept and refuse the same configs."""
    if isinstance(index, dict) or index == "flat":
        given = " and ".join(k for k, v in (("m", m), ("ef_construction", ef_construction))
                             if v is not None)
        if given and isinstance(index, dict):
            raise invalid(f"{given}: give them inside the index dict")
        if given:
            raise invalid(f"{given}: settings of an HNSW index; a flat index has none")
        ix = dict(index) if isinstance(index, dict) else {"type": "flat"}
    else:
        ix = {"type": index, "m": HNSW_M if m is None else m,
              "ef_construction": HNSW_EF_CONSTRUCTION if ef_construction is None
              else ef_construction}
    body = {"dimension": dimension, "metric": metric, "index": ix}
    body.update(extra)
    fields = body.get("fields")
    if isinstance(fields, dict):  # names JSON would turn into strings, or cannot carry
        _check_keys(fields, "fields", 0)
        dumps(fields, "fields")
    return body


# ------------------------------------------------------------------ the interfaces

class Store:
    """What a Client (HTTP) and a Database (embedded) both are: a set of
    collections. Each mode implements the underscored methods."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        raise NotImplementedError

    def health(self):
        """{"status": "ok", "version": ...}"""
        raise NotImplementedError

    def create_collection(self, name, dimension, metric="cosine", index="hnsw", m=None,
                          ef_construction=None, **extra):
        """Create a collection (or find it, when it exists with the same
        config; a different config raises already_exists). index is "hnsw"
        (m 16 and ef_construction 200 unless given), "flat" (which takes
        neither) or a dict as in docs/HTTP.md (which holds them itself);
        extra are more config fields (quantization, fields)."""
        body = config_body(dimension, metric, index, m, ef_construction, extra)
        return self._create_collection(name, body)

    def get_collection(self, name):
        """The collection; NeedleError not_found when it does not exist."""
        raise NotImplementedError

    def list_collections(self):
        """[{"name": ..., "count": ...}], sorted by name."""
        raise NotImplementedError

    def delete_collection(self, name):
        """Delete a collection and its files; not_found when absent (and, in
        embedded mode, busy while another thread is using it)."""
        raise NotImplementedError


class Collection:
    """One collection, reached through a Client (HTTP) or a Database
    (embedded). Both modes have these methods and answer in the same shapes.

    A hit is {"id", "score", "distance"} plus "payload" (a dict, or None for a
    point without one; present unless with_payload=False) and "vector" (with
    with_vector=True). A point is {"id"} plus "vector" and "payload" when asked.
    """

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<needle.Collection {self.name!r}>"

    # --- the interface; each mode implements the underscored methods

    def info(self):
        """Config and statistics: dimension, metric, index, count, deleted,
        memory_bytes, disk_bytes, status, ..."""
        raise NotImplementedError

    def add_field(self, name, type):  # noqa: A002 - the HTTP body's name
        """Index payload field name (dotted for nested fields) as type:
        "keyword", "int", "float", "bool", "date" or "text" (docs/FILTERS.md).
        Built at once from the stored payloads; afterwards a payload whose
        value there has another type is refused. True if it was added, False
        if it was indexed with that type already (another type raises
        already_exists)."""
        if not isinstance(name, str) or not isinstance(type, str):
            raise invalid("field: name and type must be strings")
        dumps([name, type], "field")  # a lone surrogate: invalid_argument, both modes
        return self._add_field(name, type)

    def upsert(self, ids, vectors, payloads=None):
        """Insert or replace points, as one atomic batch. ids: ints or strs;
        vectors: a list of lists or a 2-D numpy array; payloads: None or one
        dict (or None) per point. Returns how many points were written."""
        ids, rows, payloads = check_points(ids, vectors, payloads)
        if not ids:
            return 0
        return self._upsert(ids, rows, payloads)

    def search(self, vector, k=10, filter=None, **options):
        """The k nearest points to vector, best first. filter: a dict of
        docs/FILTERS.md (only points whose payload matches; exactly
        min(k, matching points) hits). Options as in the HTTP search body:
        ef, exact, offset, min_score, with_payload, with_vector."""
        no_explain(options, "search")
        f = check_filter(filter, "search")
        return self._search(one_vector(vector, "search"), k, f, options)

    def search_batch(self, vectors, k=10, filter=None, **options):
        """search() for each of vectors (the same k, filter and options); a
        list of hit lists."""
        no_explain(options, "searches[0]")
        f = check_filter(filter, "searches[0]")
        rows = vector_rows(vectors, lambda i: f"searches[{i}]")
        if len(rows) == 0:
            return []
        return self._search_batch(rows, k, f, options)

    def explain(self, vector, k=10, filter=None, **options):
        """Run search(vector, k, filter, **options) and return how it ran
        (the hits are dropped), as the server's "explain" object:
        {"plan": "exact" or "hnsw", "filtered": bool, "visited": n}, with
        "ef" (the ef the walk ran with) for hnsw and, with a filter,
        "estimated_matches", "matched" and "filter_checks"."""
        no_explain(options, "search")
        f = check_filter(filter, "search")
        return self._explain(one_vector(vector, "search"), k, f, options)

    def get(self, ids, with_vector=False, with_payload=True):
        """Points by id, in the order asked, absent ids left out. A single id
        (not a list) returns its point or None."""
        if is_single_id(ids):
            points = self._get([single_id(ids)], with_vector, with_payload)
            return points[0] if points else None
        return self._get(as_list(ids, "ids"), with_vector, with_payload)

    def delete(self, ids=None, filter=None):
        """Delete points by id (one id or a list) or by filter (a dict of
        docs/FILTERS.md; {} deletes every point), not both. Returns how
        many existed (matched)."""
        if filter is not None:
            if ids is not None:
                raise invalid("points/delete: give 'ids' or 'filter', not both")
            return self._delete_where(check_filter(filter, "points/delete", required=True))
        if ids is None:
            raise invalid("points/delete: give 'ids' or 'filter' ({} deletes every point)")
        if isinstance(ids, dict):  # delete({"tag": "x"}): a filter given as ids
            raise invalid("ids must be a list, not dict: to delete by filter, "
                          "call delete(filter={...})")
        ids = [single_id(ids)] if is_single_id(ids) else as_list(ids, "ids")
        if not ids:
            return 0
        return self._delete(ids)

    def set_payload(self, id, payload):
        """Merge payload's top-level keys into the point's stored payload
        (a key set to None is stored as null). NeedleError not_found when
        there is no such point."""
        check_payload(payload, "payload")
        self._set_payload(single_id(id), payload)

    def count(self, filter=None):
        """Number of live points (with a filter: of those that match)."""
        return self._count(check_filter(filter, "count"))

    def scroll(self, limit=100, cursor=None, with_payload=True, with_vector=False, filter=None):
        """One page of points in id order (integers ascending, then strings
        bytewise): (points, next_cursor). Pass next_cursor back as cursor for
        the next page; it is None after the last one. With a filter, only
        matching points (a page holds up to limit of them)."""
        return self._scroll(limit, cursor, with_payload, with_vector,
                            check_filter(filter, "scroll"))
