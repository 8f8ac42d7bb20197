"""Embedded mode: libneedle in this process through ctypes (include/needle.h).

A Database keeps one open handle per collection it has touched, closed by
Database.close(). Calls borrow that handle for their duration, so that
delete_collection never frees a handle another thread is using (it answers
"busy" instead, as the server does). Requests are checked with the server's
rules (src/server/*.c) so that both modes accept and refuse the same input.
"""
import ctypes
import json
import math
import os
import threading
from array import array
from contextlib import contextmanager
from ctypes import POINTER, byref, c_char_p, c_float, c_int, c_size_t, c_void_p

from . import _capi
from ._base import ID_MAX, Collection, config_body, dumps, np
from ._capi import (NDL_EXISTS, NDL_INDEX_HNSW, NDL_NOT_FOUND, NDL_OK, NDL_PAYLOAD_MERGE,
                    ndl_collection_config, ndl_collection_info, ndl_error, ndl_id,
                    ndl_search_params)
from ._errors import NeedleError, invalid

DIM_MAX = 65536
K_MAX = 10000
EF_MAX = 65536
SCROLL_MAX = 10000
HNSW_M = (2, 128)
HNSW_EF_CONSTRUCTION = (4, 4096)
SEARCH_FIELDS = {"ef", "exact", "offset", "min_score", "with_payload", "with_vector"}
SEARCH_LATER = {"filter", "text", "text_fields", "fusion", "rerank", "nprobe"}


def open(path, fsync="always", read_only=False):  # noqa: A001 - the public name
    """Open (or create) the database directory path in this process.
    fsync: "always" (default), "batch" or "none" (docs/HTTP.md, SPEC §5).
    Only one process may have a database open: not a server at the same time."""
    return Database(path, fsync=fsync, read_only=read_only)


def _check(lib, status, err):
    if status != NDL_OK:
        code = lib.ndl_status_name(status).decode()
        raise NeedleError(code, err.msg.decode("utf-8", "replace"))


def _cname(name):
    if not isinstance(name, str) or "\0" in name:
        raise invalid(f"bad collection name {name!r}: use 1..64 of A-Z a-z 0-9 _ -")
    return name.encode("utf-8", "replace")


class _Open:
    """One open collection handle and how many calls are using it."""
    __slots__ = ("handle", "dim", "users")

    def __init__(self, handle, dim):
        self.handle = handle
        self.dim = dim
        self.users = 0


class Database:
    """A needle database directory opened in this process (see open())."""

    def __init__(self, path, fsync="always", read_only=False):
        self._lib = lib = _capi.load()
        self.path = os.fspath(path)
        self.read_only = bool(read_only)
        self._lock = threading.Lock()
        self._open = {}  # name -> _Open
        self._db = None
        err = ndl_error()
        opts = _capi.ndl_db_options()
        lib.ndl_db_options_init(byref(opts))
        opts.read_only = int(self.read_only)
        mode = c_int()
        if not isinstance(fsync, str):
            raise invalid(f"fsync must be 'always', 'batch' or 'none', not {fsync!r}")
        _check(lib, lib.ndl_fsync_parse(fsync.encode(), byref(mode), byref(err)), err)
        opts.fsync = mode.value
        db = c_void_p()
        _check(lib, lib.ndl_db_open(os.fsencode(path), byref(opts), byref(db), byref(err)), err)
        self._db = db

    def __repr__(self):
        return f"<needle.Database {self.path!r}{'' if self._db else ' closed'}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # nothing to report to at garbage collection
            pass

    def close(self):
        """Close every collection (saving it) and the database. Idempotent.
        Calls still running in other threads are the caller's error."""
        with self._lock:
            if self._db is None:
                return
            lib, err, first = self._lib, ndl_error(), None
            for o in self._open.values():
                st = lib.ndl_collection_close(o.handle, byref(err))
                if st != NDL_OK and first is None:
                    first = (st, err.msg)
            self._open.clear()
            st = lib.ndl_db_close(self._db, byref(err))
            self._db = None
            if st != NDL_OK and first is None:
                first = (st, err.msg)
        if first:
            raise NeedleError(lib.ndl_status_name(first[0]).decode(),
                              first[1].decode("utf-8", "replace"))

    # --- handles

    def _open_locked(self, name):
        """The _Open of name, opening it if needed. Holds self._lock."""
        if self._db is None:
            raise NeedleError("unavailable", f"database {self.path!r} is closed")
        o = self._open.get(name)
        if o is None:
            lib, err, h = self._lib, ndl_error(), c_void_p()
            _check(lib, lib.ndl_collection_open(self._db, _cname(name), byref(h), byref(err)),
                   err)
            o = self._open[name] = _Open(h, _info(lib, h).config.dimension)
        return o

    @contextmanager
    def _use(self, name):
        with self._lock:
            o = self._open_locked(name)
            o.users += 1
        try:
            yield o
        finally:
            with self._lock:
                o.users -= 1

    # --- the database (the same methods as Client)

    def health(self):
        return {"status": "ok", "version": self._lib.ndl_version().decode()}

    def create_collection(self, name, dimension, metric="cosine", index="hnsw", m=16,
                          ef_construction=200, **extra):
        """As Client.create_collection: an existing collection with the same
        config is returned, one with another config raises already_exists."""
        cfg = _parse_config(self._lib, config_body(dimension, metric, index, m,
                                                   ef_construction, extra))
        lib, err, h = self._lib, ndl_error(), c_void_p()
        with self._lock:
            if self._db is None:
                raise NeedleError("unavailable", f"database {self.path!r} is closed")
            st = lib.ndl_collection_create(self._db, _cname(name), byref(cfg), byref(h),
                                           byref(err))
            if st == NDL_OK:
                self._open[name] = _Open(h, cfg.dimension)
            elif st == NDL_EXISTS:
                now = _info(lib, self._open_locked(name).handle).config
                if not _same_config(now, cfg):
                    raise NeedleError("already_exists", f"collection '{name}' already exists "
                                      "with a different config")
            else:
                _check(lib, st, err)
        return EmbeddedCollection(self, name)

    def get_collection(self, name):
        """The collection; NeedleError not_found when it does not exist."""
        with self._lock:
            self._open_locked(name)
        return EmbeddedCollection(self, name)

    def list_collections(self):
        """[{"name": ..., "count": ...}], sorted by name."""
        lib, err = self._lib, ndl_error()
        names_p, n = POINTER(c_char_p)(), c_size_t()
        with self._lock:
            if self._db is None:
                raise NeedleError("unavailable", f"database {self.path!r} is closed")
            _check(lib, lib.ndl_collection_list(self._db, byref(names_p), byref(n), byref(err)),
                   err)
        try:
            names = [names_p[i].decode("utf-8") for i in range(n.value)]
        finally:
            lib.ndl_free(ctypes.cast(names_p, c_void_p))
        out = []
        for name in names:
            try:
                with self._use(name) as o:
                    out.append({"name": name, "count": lib.ndl_collection_count(o.handle)})
            except NeedleError as e:
                if e.code != "not_found":  # dropped meanwhile by another thread
                    raise
        return out

    def delete_collection(self, name):
        """Delete a collection and its files; not_found when absent, busy while
        another thread is using it."""
        lib, err = self._lib, ndl_error()
        with self._lock:
            if self._db is None:
                raise NeedleError("unavailable", f"database {self.path!r} is closed")
            o = self._open.get(name)
            if o is not None:
                if o.users:
                    raise NeedleError("busy", f"collection '{name}' is in use by another thread")
                del self._open[name]
                # The library drops only closed collections.
                _check(lib, lib.ndl_collection_close(o.handle, byref(err)), err)
            _check(lib, lib.ndl_collection_drop(self._db, _cname(name), byref(err)), err)


def _info(lib, handle):
    info, err = ndl_collection_info(), ndl_error()
    _check(lib, lib.ndl_collection_info_get(handle, byref(info), byref(err)), err)
    return info


def _same_config(a, b):
    """The server's rule: m, ef_construction and seed count for HNSW only."""
    return (a.dimension == b.dimension and a.metric == b.metric and a.index == b.index and
            (a.index != NDL_INDEX_HNSW or
             (a.hnsw_m == b.hnsw_m and a.hnsw_ef_construction == b.hnsw_ef_construction and
              a.seed == b.seed)))


# ------------------------------------------------------------------ request checks

def _int_field(obj, key, lo, hi, where=None):
    """obj[key] as an int in lo..hi (None when absent), as the server's get_u32."""
    v = obj.get(key)
    if v is None:
        return None
    pre = f"{where}: " if where else ""
    if isinstance(v, bool) or not hasattr(v, "__index__"):
        raise invalid(f"{pre}'{key}' must be an integer in {lo}..{hi}")
    v = v.__index__()
    if not lo <= v <= hi:
        raise invalid(f"{pre}'{key}' is {v}; it must be in {lo}..{hi}")
    return v


def _bool_field(v, key, default):
    if v is None:
        return default
    if isinstance(v, bool) or (np is not None and isinstance(v, np.bool_)):
        return bool(v)
    raise invalid(f"'{key}' must be true or false")


def _parse_config(lib, body):
    """A collection config dict (docs/HTTP.md) as ndl_collection_config."""
    known = {"dimension", "metric", "index", "quantization", "fields"}
    for key in body:
        if key not in known:
            raise invalid(f"collection config: unknown field '{key}'")
    cfg, err = ndl_collection_config(), ndl_error()
    lib.ndl_collection_config_init(byref(cfg))
    cfg.dimension = _int_field(body, "dimension", 1, DIM_MAX)
    metric = body.get("metric")
    m = c_int()
    if not isinstance(metric, str) or lib.ndl_metric_parse(metric.encode(), byref(m),
                                                          byref(err)) != NDL_OK:
        raise invalid("'metric' must be one of l2, cosine, ip, l1, hamming")
    cfg.metric = m.value
    q = body.get("quantization")
    if q is not None:
        t = q.get("type") if isinstance(q, dict) else q
        if not isinstance(t, str):
            raise invalid("'quantization' must be {\"type\":\"none\"}")
        if t != "none":
            raise NeedleError("unsupported", f"quantization '{t}' is not supported yet")
    fields = body.get("fields")
    if fields is not None and not isinstance(fields, dict):
        raise invalid("'fields' must be an object")
    if fields:
        raise NeedleError("unsupported", "payload field indexes ('fields') are not supported yet")
    ix = body.get("index")
    if ix is not None:
        _parse_index(lib, ix, cfg)
    return cfg


def _parse_index(lib, ix, cfg):
    if isinstance(ix, dict):
        for key in ix:
            if key not in ("type", "m", "ef_construction", "seed"):
                raise invalid(f"index: unknown field '{key}'")
    t = ix.get("type") if isinstance(ix, dict) else ix
    if t is not None:
        if not isinstance(t, str):
            raise invalid("'index' must be \"hnsw\", \"flat\" or an object with a 'type'")
        if t == "ivf":
            raise NeedleError("unsupported", "index type 'ivf' is not supported yet")
        kind, err = c_int(), ndl_error()
        if lib.ndl_index_parse(t.encode(), byref(kind), byref(err)) != NDL_OK:
            raise invalid("index: " + err.msg.decode("utf-8", "replace"))
        cfg.index = kind.value
    if isinstance(ix, dict):
        for key, field, (lo, hi) in (("m", "hnsw_m", HNSW_M),
                                     ("ef_construction", "hnsw_ef_construction",
                                      HNSW_EF_CONSTRUCTION),
                                     ("seed", "seed", (0, 2**32 - 1))):
            v = _int_field(ix, key, lo, hi)
            if v is not None:
                setattr(cfg, field, v)


def _search_options(k, options, where):
    """Validated (k, ef, exact, offset, min_score, with_payload, with_vector),
    with the server's rules and messages (src/server/routes_search.c)."""
    for key in options:
        if key in SEARCH_LATER:
            raise NeedleError("unsupported", f"{where}: '{key}' is not supported yet")
        if key not in SEARCH_FIELDS:
            raise invalid(f"{where}: unknown field '{key}'")
    if isinstance(k, bool) or not hasattr(k, "__index__") or not 1 <= k.__index__() <= K_MAX:
        raise invalid(f"{where}: 'k' must be an integer in 1..{K_MAX}")
    k = k.__index__()
    ef = _int_field(options, "ef", 1, EF_MAX, where) or 0
    offset = _int_field(options, "offset", 0, K_MAX - 1, where) or 0
    if k + offset > K_MAX:
        raise invalid(f"{where}: k + offset is {k + offset}; at most {K_MAX}")
    min_score = options.get("min_score")
    if min_score is not None:
        if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) and not (
                np is not None and isinstance(min_score, np.number)):
            raise invalid("'min_score' must be a number")
        min_score = float(min_score)
        if not math.isfinite(min_score):
            raise invalid("'min_score' must be a finite number")
    return (k, ef, _bool_field(options.get("exact"), "exact", False), offset, min_score,
            _bool_field(options.get("with_payload"), "with_payload", True),
            _bool_field(options.get("with_vector"), "with_vector", False))


# ------------------------------------------------------------------ ids and vectors

def _set_id(dst, x, keep, where):
    """Fill ndl_id dst from x (int or str); keep holds the string buffers."""
    if isinstance(x, str):
        try:
            b = x.encode("utf-8")
        except UnicodeEncodeError as e:
            raise invalid(f"{where}: the string id is not valid UTF-8: {e}") from None
        buf = ctypes.create_string_buffer(b)  # never NULL, even for "": NULL means an int id
        keep.append(buf)
        dst.str = ctypes.addressof(buf)
        dst.len = len(b)
        return
    if not isinstance(x, bool) and hasattr(x, "__index__"):
        n = x.__index__()
        if 0 <= n <= ID_MAX:
            dst.str = None
            dst.num = n
            return
    raise invalid(f"{where}: an id must be an integer 0..{ID_MAX} or a string")


def _c_ids(ids):
    arr, keep = (ndl_id * len(ids))(), []
    for i, x in enumerate(ids):
        _set_id(arr[i], x, keep, f"ids[{i}]")
    return arr, keep


def _c_id(x, where="id"):
    cid, keep = ndl_id(), []
    _set_id(cid, x, keep, where)
    return cid, keep


def _py_id(cid):
    if cid.str:
        return ctypes.string_at(cid.str, cid.len).decode("utf-8")
    return cid.num


def _matrix(vectors, dim, where):
    """Rows of dim floats as one contiguous float32 block: (address, rows,
    the object owning the memory). where(i) names row i in errors."""
    if np is not None and isinstance(vectors, np.ndarray):
        if vectors.ndim != 2:
            raise invalid(f"vectors must be a 2-D array of shape (n, {dim}), "
                          f"not {vectors.ndim}-D")
        if vectors.shape[1] != dim:
            raise invalid(f"{where(0)}: vector has {vectors.shape[1]} values; "
                          f"the collection has dimension {dim}")
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # the library refuses Inf
                a = np.ascontiguousarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise invalid(f"vectors: {e}") from None
        return a.ctypes.data, a.shape[0], a
    buf = array("f")
    rows = 0
    for i, row in enumerate(vectors):
        try:
            n = len(row)
        except TypeError:
            raise invalid(f"{where(i)}: 'vector' must be an array of numbers") from None
        if n != dim:
            raise invalid(f"{where(i)}: vector has {n} values; the collection has "
                          f"dimension {dim}")
        try:
            buf.extend(row)
        except TypeError:
            raise invalid(f"{where(i)}: vector values must be numbers") from None
        rows += 1
    return buf.buffer_info()[0], rows, buf


def _one_vector(vector, dim, where):
    if np is not None and isinstance(vector, np.ndarray):
        if vector.ndim != 1:
            raise invalid(f"{where}: 'vector' must be a 1-D array")
        vector = vector.reshape(1, -1)
    else:
        vector = [vector]
    return _matrix(vector, dim, lambda i: where)


def _payload(text):
    return json.loads(text.decode("utf-8")) if text else None


# ------------------------------------------------------------------ collections

class EmbeddedCollection(Collection):
    """A collection of a Database opened in this process; see Collection."""

    def __init__(self, db, name):
        super().__init__(name)
        self.db = db
        self._lib = db._lib

    def info(self):
        lib = self._lib
        with self.db._use(self.name) as o:
            info = _info(lib, o.handle)
        cfg = info.config
        index = {"type": lib.ndl_index_name(cfg.index).decode()}
        if cfg.index == NDL_INDEX_HNSW:
            index.update(m=cfg.hnsw_m, ef_construction=cfg.hnsw_ef_construction, seed=cfg.seed)
        out = {"name": self.name, "dimension": cfg.dimension,
               "metric": lib.ndl_metric_name(cfg.metric).decode(), "index": index,
               "quantization": {"type": "none"}, "fields": {}, "count": info.count,
               "deleted": info.deleted, "memory_bytes": info.memory_bytes,
               "disk_bytes": info.disk_bytes,
               "status": "damaged" if info.damaged else "ready"}
        if info.damaged:
            out["reason"] = info.damaged.decode("utf-8", "replace")
        return out

    def _upsert(self, ids, vectors, payloads):
        lib, err = self._lib, ndl_error()
        cids, keep = _c_ids(ids)
        texts = None
        if payloads is not None:
            texts = (c_char_p * len(ids))(*[
                None if p is None else dumps(p, f"point {i}: payload")
                for i, p in enumerate(payloads)])
        with self.db._use(self.name) as o:
            addr, n, owner = _matrix(vectors, o.dim, lambda i: f"point {i}")
            st = lib.ndl_collection_upsert_points(o.handle, n, cids, addr, texts, None,
                                                  byref(err))
        _check(lib, st, err)
        return n

    def search(self, vector, k=10, **options):
        return self._run_search(vector, k, options, single=True)[0]

    def _search_batch(self, vectors, k, options):
        return self._run_search(vectors, k, options, single=False)

    def _run_search(self, vectors, k, options, single):
        lib, err = self._lib, ndl_error()
        where = "search" if single else "searches[0]"
        k, ef, exact, offset, min_score, with_payload, with_vector = _search_options(
            k, options, where)
        p = ndl_search_params()
        lib.ndl_search_params_init(byref(p))
        p.k, p.ef, p.exact, p.with_payload = k + offset, ef, int(exact), int(with_payload)
        res = c_void_p()
        with self.db._use(self.name) as o:
            if single:
                addr, nq, owner = _one_vector(vectors, o.dim, "search")
            else:
                addr, nq, owner = _matrix(vectors, o.dim, lambda i: f"searches[{i}]")
            if single:  # the call the server makes, so both modes give the same numbers
                st = lib.ndl_collection_search(o.handle, addr, byref(p), byref(res), byref(err))
            else:
                p.threads = max(1, min(nq, os.cpu_count() or 1))
                st = lib.ndl_collection_search_batch(o.handle, nq, addr, byref(p), byref(res),
                                                     byref(err))
            _check(lib, st, err)
            try:
                out = []
                for q in range(nq):
                    hits, n = lib.ndl_results_hits(res, q), lib.ndl_results_count(res, q)
                    found = []
                    for i in range(offset, n):
                        h = hits[i]
                        if min_score is not None and h.score < min_score:
                            continue
                        hit = {"id": _py_id(h.id), "score": h.score, "distance": h.distance}
                        if with_payload:
                            hit["payload"] = _payload(lib.ndl_results_payload(res, q, i))
                        if with_vector:
                            hit["vector"] = self._vector(o, h.id)
                        found.append(hit)
                    out.append(found)
            finally:
                lib.ndl_results_free(res)
        return out

    def _vector(self, o, cid):
        """The stored vector of id cid, None if it was deleted meanwhile."""
        buf = (c_float * o.dim)()
        st = self._lib.ndl_collection_get_point(o.handle, cid, buf, None, None)
        return list(buf) if st == NDL_OK else None

    def _get(self, ids, with_vector, with_payload):
        lib, err = self._lib, ndl_error()
        cids, keep = _c_ids(ids)  # all checked before any is read, as the server does
        points = []
        with self.db._use(self.name) as o:
            buf = (c_float * o.dim)() if with_vector else None
            text = c_void_p()
            for i, x in enumerate(ids):
                st = lib.ndl_collection_get_point(o.handle, cids[i], buf,
                                                  byref(text) if with_payload else None,
                                                  byref(err))
                if st == NDL_NOT_FOUND:
                    continue
                _check(lib, st, err)
                point = {"id": _py_id(cids[i])}
                if with_vector:
                    point["vector"] = list(buf)
                if with_payload:
                    try:
                        point["payload"] = _payload(ctypes.string_at(text.value)
                                                    if text.value else None)
                    finally:
                        lib.ndl_free(text)
                        text.value = None
                points.append(point)
        return points

    def _delete(self, ids):
        lib, err = self._lib, ndl_error()
        cids, keep = _c_ids(ids)
        deleted = c_size_t()
        with self.db._use(self.name) as o:
            st = lib.ndl_collection_delete(o.handle, len(ids), cids, byref(deleted), byref(err))
        _check(lib, st, err)
        return deleted.value

    def _set_payload(self, id, payload):
        lib, err = self._lib, ndl_error()
        cid, keep = _c_id(id)
        with self.db._use(self.name) as o:
            st = lib.ndl_collection_set_payload(o.handle, cid, dumps(payload, "payload"),
                                                NDL_PAYLOAD_MERGE, byref(err))
        _check(lib, st, err)

    def count(self):
        with self.db._use(self.name) as o:
            return self._lib.ndl_collection_count(o.handle)

    def scroll(self, limit=100, cursor=None, with_payload=True, with_vector=False):
        lib, err = self._lib, ndl_error()
        if not hasattr(lib, "ndl_collection_scroll"):
            raise NeedleError("unsupported", f"{lib.path} has no ndl_collection_scroll: "
                              "rebuild it")
        limit = _int_field({"limit": limit}, "limit", 1, SCROLL_MAX)
        with_payload = _bool_field(with_payload, "with_payload", True)
        with_vector = _bool_field(with_vector, "with_vector", False)
        after, keep = _c_id(cursor, "cursor") if cursor is not None else (None, None)
        after_p = byref(after) if after is not None else None
        ids_p, n = POINTER(ndl_id)(), c_size_t()
        with self.db._use(self.name) as o:
            _check(lib, lib.ndl_collection_scroll(o.handle, after_p, limit, byref(ids_p),
                                                  byref(n), byref(err)), err)
        try:
            ids = [_py_id(ids_p[i]) for i in range(n.value)]
        finally:
            lib.ndl_free(ctypes.cast(ids_p, c_void_p))
        # A point deleted since the page was taken is left out, as by the server.
        points = self._get(ids, with_vector, with_payload) if ids else []
        return points, (ids[-1] if len(ids) == limit else None)
