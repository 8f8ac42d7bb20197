"""What the HTTP and the embedded mode share: the Collection interface, the
collection config body and the checks made before any work is sent."""
import json

from ._errors import invalid

try:  # numpy is optional: arrays are accepted when it is there
    import numpy as np
except ImportError:  # pragma: no cover - exercised only without numpy
    np = None

ID_MAX = 2**63 - 1  # integer ids are 0..2^63-1 in both modes (docs/HTTP.md)


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


def is_single_id(ids):
    """An id (int, str, numpy integer) rather than a sequence of them."""
    return isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__")


def config_body(dimension, metric, index, m, ef_construction, extra):
    """The PUT /v1/collections/{name} body (docs/HTTP.md): both modes parse
    this same dict, so they accept and refuse the same configs."""
    if isinstance(index, dict):
        ix = dict(index)
    elif index == "flat":
        ix = {"type": "flat"}  # m and ef_construction mean nothing to a flat index
    else:
        ix = {"type": index, "m": m, "ef_construction": ef_construction}
    body = {"dimension": dimension, "metric": metric, "index": ix}
    body.update(extra)
    return body


def check_points(ids, vectors, payloads):
    """Lengths and payload types of an upsert; returns ids as a list."""
    if is_single_id(ids):
        raise invalid("upsert takes a list of ids (and a list of vectors)")
    ids = list(ids)
    if len(vectors) != len(ids):
        raise invalid(f"{len(ids)} ids but {len(vectors)} vectors")
    if payloads is not None:
        if len(payloads) != len(ids):
            raise invalid(f"{len(ids)} ids but {len(payloads)} payloads")
        for i, p in enumerate(payloads):
            if p is not None and not isinstance(p, dict):
                raise invalid(f"point {i}: 'payload' must be a dict or None, "
                              f"not {type(p).__name__}")
    return ids


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

    def upsert(self, ids, vectors, payloads=None):
        """Insert or replace points, as one atomic batch. ids: ints or strs;
        vectors: a list of lists or a 2-D numpy array; payloads: None or one
        dict (or None) per point. Returns how many points were written."""
        ids = check_points(ids, vectors, payloads)
        if not ids:
            return 0
        return self._upsert(ids, vectors, payloads)

    def search(self, vector, k=10, **options):
        """The k nearest points to vector, best first. Options as in the HTTP
        search body: ef, exact, offset, min_score, with_payload, with_vector."""
        raise NotImplementedError

    def search_batch(self, vectors, k=10, **options):
        """search() for each of vectors; a list of hit lists."""
        if len(vectors) == 0:
            return []
        return self._search_batch(vectors, k, options)

    def get(self, ids, with_vector=False, with_payload=True):
        """Points by id, in the order asked, absent ids left out. A single id
        (not a list) returns its point or None."""
        if is_single_id(ids):
            points = self._get([ids], with_vector, with_payload)
            return points[0] if points else None
        return self._get(list(ids), with_vector, with_payload)

    def delete(self, ids):
        """Delete points (one id or a list); returns how many existed."""
        ids = [ids] if is_single_id(ids) else list(ids)
        if not ids:
            return 0
        return self._delete(ids)

    def set_payload(self, id, payload):
        """Merge payload's top-level keys into the point's stored payload
        (a key set to None is stored as null). NeedleError not_found when
        there is no such point."""
        if not isinstance(payload, dict):
            raise invalid(f"payload must be a dict, not {type(payload).__name__}")
        self._set_payload(id, payload)

    def count(self):
        """Number of live points."""
        raise NotImplementedError

    def scroll(self, limit=100, cursor=None, with_payload=True, with_vector=False):
        """One page of points in id order (integers ascending, then strings
        bytewise): (points, next_cursor). Pass next_cursor back as cursor for
        the next page; it is None after the last one."""
        raise NotImplementedError
