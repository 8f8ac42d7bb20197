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
from ctypes import POINTER, byref, c_char_p, c_float, c_int, c_size_t, c_uint64, c_void_p

from . import _capi
from ._base import Collection, Store, check_id, check_int, dumps, is_bool, name_error, np
from ._capi import (FIELD_NAME_MAX, NDL_EXISTS, NDL_INDEX_HNSW, NDL_NOT_FOUND, NDL_OK,
                    NDL_PAYLOAD_MERGE,
                    ndl_collection_config, ndl_collection_info, ndl_error, ndl_explain, ndl_id,
                    ndl_search_params)
from ._errors import NeedleError, invalid

DIM_MAX = 65536
K_MAX = 10000
EF_MAX = 65536
SCROLL_MAX = 10000
HNSW_M = (2, 128)
HNSW_EF_CONSTRUCTION = (4, 4096)
SEARCH_FIELDS = {"ef", "exact", "offset", "min_score", "with_payload", "with_vector"}
SEARCH_LATER = {"text", "text_fields", "fusion", "rerank", "nprobe"}


def open(path, fsync="always", read_only=False):  # noqa: A001 - the public name
    """Open (or create) the database directory path in this process.
    fsync: "always" (default), "batch" or "none" (docs/HTTP.md, SPEC §5).
    Only one process may have a database open: not a server at the same time."""
    return Database(path, fsync=fsync, read_only=read_only)


def _error(lib, status, msg):
    """The NeedleError of a libneedle status and its ndl_error message."""
    return NeedleError(lib.ndl_status_name(status).decode(), msg.decode("utf-8", "replace"))


def _check(lib, status, err):
    if status != NDL_OK:
        raise _error(lib, status, err.msg)


def _cname(lib, name):
    """name as the library's bytes, checked first as the server does."""
    if not isinstance(name, str) or "\0" in name:
        raise name_error(name)
    b = name.encode("utf-8", "replace")
    if not lib.ndl_name_valid(b):
        raise name_error(name)
    return b


class _Open:
    """One open collection handle and how many calls are using it."""
    __slots__ = ("handle", "dim", "users")

    def __init__(self, handle, dim):
        self.handle = handle
        self.dim = dim
        self.users = 0


class Database(Store):
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
            raise _error(lib, *first)

    # --- handles

    def _live_db(self):
        """The open ndl_db handle; unavailable once closed. Holds self._lock."""
        if self._db is None:
            raise NeedleError("unavailable", f"database {self.path!r} is closed")
        return self._db

    def _open_locked(self, name):
        """The _Open of name, opening it if needed. Holds self._lock."""
        db = self._live_db()
        o = self._open.get(name)
        if o is None:
            lib, err, h = self._lib, ndl_error(), c_void_p()
            _check(lib, lib.ndl_collection_open(db, _cname(lib, name), byref(h), byref(err)),
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

    # --- the database (see Store)

    def health(self):
        return {"status": "ok", "version": self._lib.ndl_version().decode()}

    def _create_collection(self, name, body):
        lib, err, h = self._lib, ndl_error(), c_void_p()
        cname = _cname(lib, name)  # the name first, then the config, as the server
        cfg = _parse_config(lib, body)
        with self._lock:
            st = lib.ndl_collection_create(self._live_db(), cname, byref(cfg), byref(h),
                                           byref(err))
            fields = body.get("fields") or {}
            if st == NDL_OK:
                self._open[name] = _Open(h, cfg.dimension)
                for fname, t in fields.items():  # an empty collection: nothing to build
                    _check(lib, lib.ndl_collection_add_field(
                        h, _utf8(fname), lib.ndl_field_type_from_name(_utf8(t)), byref(err)), err)
            elif st == NDL_EXISTS:
                handle = self._open_locked(name).handle
                now = _info(lib, handle).config
                if not _same_config(now, cfg) or _fields_of(lib, handle) != fields:
                    raise NeedleError("already_exists", f"collection '{name}' already exists "
                                      "with a different config")
            else:
                _check(lib, st, err)
        return EmbeddedCollection(self, name)

    def get_collection(self, name):
        with self._lock:
            self._open_locked(name)
        return EmbeddedCollection(self, name)

    def list_collections(self):
        lib, err = self._lib, ndl_error()
        names_p, n = POINTER(c_char_p)(), c_size_t()
        with self._lock:
            _check(lib, lib.ndl_collection_list(self._live_db(), byref(names_p), byref(n),
                                                byref(err)), err)
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
        lib, err = self._lib, ndl_error()
        cname = _cname(lib, name)
        with self._lock:
            db = self._live_db()
            o = self._open.get(name)
            if o is not None:
                if o.users:
                    raise NeedleError("busy", f"collection '{name}' is in use by another thread")
                del self._open[name]
                # The library drops only closed collections.
                _check(lib, lib.ndl_collection_close(o.handle, byref(err)), err)
            _check(lib, lib.ndl_collection_drop(db, cname, byref(err)), err)


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
#
# A field given as None is JSON null over HTTP, which the server refuses
# wherever it reads a number or a bool: so does this mode.

def _int_field(obj, key, lo, hi, where=None, default=None):
    """obj[key] as an int in lo..hi (default when absent), as the server's get_u32."""
    if key not in obj:
        return default
    return check_int(obj[key], lo, hi, f"{where}: '{key}'" if where else f"'{key}'")


def _bool(v, key):
    if is_bool(v) and getattr(v, "ndim", 0) == 0:
        return bool(v)
    raise invalid(f"'{key}' must be true or false")


def _bool_field(obj, key, default):
    return _bool(obj[key], key) if key in obj else default


def _unknown_fields(obj, known, where):
    for key in obj:
        if key not in known:
            raise invalid(f"{where}: unknown field '{key}'")


def _parse_config(lib, body):
    """A collection config dict (docs/HTTP.md) as ndl_collection_config."""
    _unknown_fields(body, ("dimension", "metric", "index", "quantization", "fields"),
                    "collection config")
    cfg, err = ndl_collection_config(), ndl_error()
    lib.ndl_collection_config_init(byref(cfg))
    cfg.dimension = _int_field(body, "dimension", 1, DIM_MAX)
    metric = body.get("metric")
    m = c_int()
    if not isinstance(metric, str) or lib.ndl_metric_parse(metric.encode(), byref(m),
                                                          byref(err)) != NDL_OK:
        raise invalid("'metric' must be one of l2, cosine, ip, l1, hamming")
    cfg.metric = m.value
    if "quantization" in body:
        q = body["quantization"]
        t = q.get("type") if isinstance(q, dict) else q
        if isinstance(t, str) and t != "none":
            raise NeedleError("unsupported", f"quantization '{t}' is not supported yet")
        if isinstance(q, dict):
            _unknown_fields(q, ("type",), "quantization")
        if not isinstance(t, str):
            raise invalid("'quantization' must be {\"type\":\"none\"}")
    if "fields" in body:
        _check_fields(lib, body["fields"])
    if "index" in body:
        _parse_index(lib, body["index"], cfg)
    return cfg


def _check_fields(lib, fields):
    """The "fields" of a create, as the server checks them."""
    if not isinstance(fields, dict):
        raise invalid("'fields' must be an object of field name: type")
    err = ndl_error()
    for name, t in fields.items():
        if lib.ndl_field_name_check(_utf8(name), byref(err)) != NDL_OK:
            raise invalid(f"fields: {err.msg.decode('utf-8', 'replace')}")
        if not isinstance(t, str) or lib.ndl_field_type_from_name(_utf8(t)) < 0:
            raise invalid(f"fields: '{name[:100]}' needs a type: keyword, int, float, bool, "
                          "date or text")


def _fields_of(lib, handle):
    """{name: type} of the collection's indexed fields."""
    out, err = {}, ndl_error()
    buf, t = ctypes.create_string_buffer(FIELD_NAME_MAX + 1), c_int()
    for i in range(lib.ndl_collection_field_count(handle)):
        _check(lib, lib.ndl_collection_field_get(handle, i, buf, byref(t), byref(err)), err)
        out[buf.value.decode("utf-8")] = lib.ndl_field_type_name(t.value).decode()
    return out


def _utf8(s):
    if "\0" in s:
        raise invalid("field names and types cannot hold NUL")
    return s.encode("utf-8")


def _parse_index(lib, ix, cfg):
    """The "index" field: "hnsw", "flat" or {"type", "m", "ef_construction", "seed"}."""
    has_type = not isinstance(ix, dict) or "type" in ix
    t = ix.get("type") if isinstance(ix, dict) else ix
    if t == "ivf":
        raise NeedleError("unsupported", "index type 'ivf' is not supported yet")
    if isinstance(ix, dict):
        _unknown_fields(ix, ("type", "m", "ef_construction", "seed"), "index")
    if has_type:
        if not isinstance(t, str):
            raise invalid("'index' must be \"hnsw\", \"flat\" or an object with a 'type'")
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
    k = check_int(k, 1, K_MAX, f"{where}: 'k'")
    ef = _int_field(options, "ef", 1, EF_MAX, where, default=0)  # 0: the library's default
    offset = _int_field(options, "offset", 0, K_MAX - 1, where, default=0)
    if k + offset > K_MAX:
        raise invalid(f"{where}: k + offset is {k + offset}; at most {K_MAX}")
    min_score = None
    if "min_score" in options:
        min_score = options["min_score"]
        if is_bool(min_score) or not _is_number(min_score):
            raise invalid("'min_score' must be a number")
        try:
            min_score = float(min_score)
        except OverflowError:  # an int beyond any double: JSON cannot carry it either
            raise invalid("'min_score' is out of the float range") from None
        if not math.isfinite(min_score):
            raise invalid("'min_score' must be a finite number")
    return (k, ef, _bool_field(options, "exact", False), offset, min_score,
            _bool_field(options, "with_payload", True),
            _bool_field(options, "with_vector", False))


# ------------------------------------------------------------------ ids and vectors

def _set_id(dst, x, keep, where):
    """Fill ndl_id dst from x (int or str); keep holds the string buffers."""
    x = check_id(x, where)
    if isinstance(x, int):
        dst.str = None
        dst.num = x
        return
    try:
        b = x.encode("utf-8")
    except UnicodeEncodeError as e:
        raise invalid(f"{where}: the string id is not valid UTF-8: {e}") from None
    buf = ctypes.create_string_buffer(b)  # never NULL, even for "": NULL means an int id
    keep.append(buf)
    dst.str = ctypes.addressof(buf)
    dst.len = len(b)


def _c_ids(ids, where):
    """ids as an ndl_id array (and the buffers it points into); where(i)
    names id i in errors."""
    arr, keep = (ndl_id * len(ids))(), []
    for i, x in enumerate(ids):
        _set_id(arr[i], x, keep, where(i))
    return arr, keep


def _c_id(x, where="id"):
    cid, keep = ndl_id(), []
    _set_id(cid, x, keep, where)
    return cid, keep


def _py_id(cid):
    if cid.str:
        return ctypes.string_at(cid.str, cid.len).decode("utf-8")
    return cid.num


def _is_number(x):
    return (isinstance(x, (int, float)) or
            (np is not None and isinstance(x, (np.integer, np.floating)))) and not is_bool(x)


_PLAIN_NUMBERS = {float, int}


def _check_numbers(row, where):
    """Every value of a list row a number: bools, strings, None, complex
    numbers... are not (the server's 'vector value j is not a number')."""
    if set(map(type, row)) <= _PLAIN_NUMBERS:
        return
    for j, x in enumerate(row):
        if not _is_number(x):
            raise invalid(f"{where}: vector value {j} is not a number")


def _bad_value(x, where, j):
    """The error of value j of a vector that is no finite float32."""
    try:
        finite = math.isfinite(x)
    except OverflowError:  # an int beyond any double
        finite = True
    what = "out of the float range" if finite else f"{x}: NaN and Inf have no JSON form"
    return invalid(f"{where}: vector value {j} is {what}")


def _overflow(rows, where):
    """The error of the first value of rows that no float can hold."""
    for i, row in enumerate(rows):
        for j, x in enumerate(row):
            try:
                float(x)
            except OverflowError:
                return _bad_value(x, where(i), j)
    return invalid("a vector value is out of the float range")  # pragma: no cover


def _matrix(rows, dim, where):
    """Rows (from vector_rows) of dim floats as one contiguous float32 block:
    (address, rows, the object owning the memory). Values must be finite
    float32 numbers, as the server requires. where(i) names row i."""
    if np is not None and isinstance(rows, np.ndarray):
        if rows.shape[1] != dim:
            raise invalid(f"{where(0)}: vector has {rows.shape[1]} values; "
                          f"the collection has dimension {dim}")
    else:
        for i, row in enumerate(rows):
            if len(row) != dim:
                raise invalid(f"{where(i)}: vector has {len(row)} values; the collection has "
                              f"dimension {dim}")
            if isinstance(row, (list, tuple)):
                _check_numbers(row, where(i))
    if np is not None:  # one conversion of all the rows
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                a = np.ascontiguousarray(rows, dtype=np.float32)
        except OverflowError:
            raise _overflow(rows, where) from None
        bad = ~np.isfinite(a)
        if bad.any():
            i, j = (int(x) for x in np.argwhere(bad)[0])
            raise _bad_value(rows[i][j], where(i), j)
        return a.ctypes.data, a.shape[0], a
    buf = array("f")
    for i, row in enumerate(rows):
        try:
            buf.fromlist(row if isinstance(row, list) else list(row))
        except OverflowError:
            raise _overflow([row], lambda _: where(i)) from None
    if not all(map(math.isfinite, buf)):
        i, j = divmod(next(n for n, x in enumerate(buf) if not math.isfinite(x)), dim)
        raise _bad_value(rows[i][j], where(i), j)
    return buf.buffer_info()[0], len(rows), buf


def _payload(text):
    return json.loads(text.decode("utf-8")) if text else None


@contextmanager
def _parsed_filter(lib, f, where):
    """The ndl_filter * of a checked filter (_base.Filter; None: NULL, no
    filter) for the duration of the block. A bad filter raises with the
    server's message: where, then libneedle's ("filter.price: ...")."""
    if f is None:
        yield None
        return
    handle, err = c_void_p(), ndl_error()
    st = lib.ndl_filter_parse(f.text, len(f.text), byref(handle), byref(err))
    if st != NDL_OK:
        raise NeedleError(lib.ndl_status_name(st).decode(),
                          f"{where}: " + err.msg.decode("utf-8", "replace"))
    try:
        yield handle
    finally:
        lib.ndl_filter_free(handle)


def _explain_dict(lib, res):
    """The server's "explain" object of a search's results."""
    ex = ndl_explain()
    lib.ndl_results_explain(res, byref(ex))
    out = {"plan": ex.plan.decode(), "filtered": bool(ex.filtered)}
    if ex.filtered:
        out.update(estimated_matches=ex.estimated, matched=ex.matched,
                   filter_checks=ex.checked)
    out["visited"] = ex.visited
    if ex.ef:
        out["ef"] = ex.ef
    return out


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
            fields = _fields_of(lib, o.handle)
        cfg = info.config
        index = {"type": lib.ndl_index_name(cfg.index).decode()}
        if cfg.index == NDL_INDEX_HNSW:
            index.update(m=cfg.hnsw_m, ef_construction=cfg.hnsw_ef_construction, seed=cfg.seed)
        out = {"name": self.name, "dimension": cfg.dimension,
               "metric": lib.ndl_metric_name(cfg.metric).decode(), "index": index,
               "quantization": {"type": "none"}, "fields": fields,
               "count": info.count,
               "deleted": info.deleted, "memory_bytes": info.memory_bytes,
               "disk_bytes": info.disk_bytes}
        if cfg.index == NDL_INDEX_HNSW:
            tuned = info.search_ef_queries > 0
            out["search"] = {"ef": info.search_ef,
                             "recall": round(info.search_ef_recall, 4) if tuned else None,
                             "sample_queries": info.search_ef_queries}
        out["status"] = "damaged" if info.damaged else "ready"
        if info.damaged:
            out["reason"] = info.damaged.decode("utf-8", "replace")
        return out

    def _upsert(self, ids, rows, payloads):
        lib, err = self._lib, ndl_error()
        cids, keep = _c_ids(ids, lambda i: f"point {i}")
        texts = None
        if payloads is not None:
            texts = (c_char_p * len(ids))(*[
                None if p is None else dumps(p, f"point {i}: payload")
                for i, p in enumerate(payloads)])
        with self.db._use(self.name) as o:
            addr, n, owner = _matrix(rows, o.dim, lambda i: f"point {i}")
            st = lib.ndl_collection_upsert_points(o.handle, n, cids, addr, texts, None,
                                                  byref(err))
        _check(lib, st, err)
        return n

    def _search(self, vector, k, f, options):
        return self._run_search([vector], k, f, options, single=True)[0]

    def _explain(self, vector, k, f, options):
        return self._run_search([vector], k, f, options, single=True, explain=True)

    def _search_batch(self, rows, k, f, options):
        return self._run_search(rows, k, f, options, single=False)

    def _run_search(self, rows, k, f, options, single, explain=False):
        """The hit lists of rows; with explain, how the (single) search ran."""
        lib, err = self._lib, ndl_error()
        where = "search" if single else "searches[0]"
        k, ef, exact, offset, min_score, with_payload, with_vector = _search_options(
            k, options, where)
        p = ndl_search_params()
        lib.ndl_search_params_init(byref(p))
        p.k, p.ef, p.exact, p.with_payload = k + offset, ef, int(exact), int(with_payload)
        res = c_void_p()
        with _parsed_filter(lib, f, where) as handle, self.db._use(self.name) as o:
            p.where = handle
            name = (lambda i: "search") if single else (lambda i: f"searches[{i}]")
            addr, nq, owner = _matrix(rows, o.dim, name)
            if single:  # the call the server makes, so both modes give the same numbers
                st = lib.ndl_collection_search(o.handle, addr, byref(p), byref(res), byref(err))
            else:
                p.threads = max(1, min(nq, os.cpu_count() or 1))
                st = lib.ndl_collection_search_batch(o.handle, nq, addr, byref(p), byref(res),
                                                     byref(err))
            _check(lib, st, err)
            try:
                if explain:
                    return _explain_dict(lib, res)
                return [self._hits(o, res, q, offset, min_score, with_payload, with_vector)
                        for q in range(nq)]
            finally:
                lib.ndl_results_free(res)

    def _hits(self, o, res, q, offset, min_score, with_payload, with_vector):
        """The hits of query q of res, as the server writes them."""
        lib = self._lib
        buf = (c_float * o.dim)() if with_vector else None
        hits, n = lib.ndl_results_hits(res, q), lib.ndl_results_count(res, q)
        found = []
        for i in range(offset, n):
            h = hits[i]
            if min_score is not None and h.score < min_score:
                continue
            hit = {"id": _py_id(h.id), "score": h.score, "distance": h.distance}
            if with_payload:
                hit["payload"] = _payload(lib.ndl_results_payload(res, q, i))
            if with_vector:  # None if the point was deleted meanwhile
                st = lib.ndl_collection_get_point(o.handle, h.id, buf, None, None)
                hit["vector"] = buf[:] if st == NDL_OK else None
            found.append(hit)
        return found

    def _read_points(self, o, cids, n, with_vector, with_payload):
        """The points of cids[0:n] that exist, in that order."""
        lib, err = self._lib, ndl_error()
        buf = (c_float * o.dim)() if with_vector else None
        text = c_void_p()
        points = []
        for i in range(n):
            st = lib.ndl_collection_get_point(o.handle, cids[i], buf,
                                              byref(text) if with_payload else None, byref(err))
            if st == NDL_NOT_FOUND:
                continue
            _check(lib, st, err)
            point = {"id": _py_id(cids[i])}
            if with_vector:
                point["vector"] = buf[:]
            if with_payload:
                try:
                    point["payload"] = _payload(ctypes.string_at(text.value)
                                                if text.value else None)
                finally:
                    lib.ndl_free(text)
                    text.value = None
            points.append(point)
        return points

    def _get(self, ids, with_vector, with_payload):
        with_vector = _bool(with_vector, "with_vector")
        with_payload = _bool(with_payload, "with_payload")
        # All checked before any is read, as the server does.
        cids, keep = _c_ids(ids, lambda i: f"ids[{i}]")
        with self.db._use(self.name) as o:
            return self._read_points(o, cids, len(ids), with_vector, with_payload)

    def _delete(self, ids):
        lib, err = self._lib, ndl_error()
        cids, keep = _c_ids(ids, lambda i: f"ids[{i}]")
        deleted = c_size_t()
        with self.db._use(self.name) as o:
            st = lib.ndl_collection_delete(o.handle, len(ids), cids, byref(deleted), byref(err))
        _check(lib, st, err)
        return deleted.value

    def _delete_where(self, f):
        lib, err = self._lib, ndl_error()
        deleted = c_size_t()
        with _parsed_filter(lib, f, "points/delete") as handle, self.db._use(self.name) as o:
            st = lib.ndl_collection_delete_where(o.handle, handle, byref(deleted), byref(err))
        _check(lib, st, err)
        return deleted.value

    def _add_field(self, name, type):  # noqa: A002
        lib, err = self._lib, ndl_error()
        cname = _utf8(name)
        if lib.ndl_field_name_check(cname, byref(err)) != NDL_OK:
            raise invalid(err.msg.decode("utf-8", "replace"))
        t = lib.ndl_field_type_from_name(_utf8(type))
        if t < 0:
            raise invalid("field: 'type' must be keyword, int, float, bool, date or text")
        with self.db._use(self.name) as o:
            before = lib.ndl_collection_field_count(o.handle)
            _check(lib, lib.ndl_collection_add_field(o.handle, cname, t, byref(err)), err)
            return lib.ndl_collection_field_count(o.handle) > before

    def _set_payload(self, id, payload):
        lib, err = self._lib, ndl_error()
        cid, keep = _c_id(id)
        with self.db._use(self.name) as o:
            st = lib.ndl_collection_set_payload(o.handle, cid, dumps(payload, "payload"),
                                                NDL_PAYLOAD_MERGE, byref(err))
        _check(lib, st, err)

    def _count(self, f):
        lib, err = self._lib, ndl_error()
        with _parsed_filter(lib, f, "count") as handle, self.db._use(self.name) as o:
            if handle is None:
                return lib.ndl_collection_count(o.handle)
            n = c_uint64()
            _check(lib, lib.ndl_collection_count_where(o.handle, handle, byref(n), byref(err)),
                   err)
            return n.value

    def _scroll(self, limit, cursor, with_payload, with_vector, f):
        lib, err = self._lib, ndl_error()
        with _parsed_filter(lib, f, "scroll") as handle:  # first, as the server reads it
            limit = check_int(limit, 1, SCROLL_MAX, "'limit'")
            with_vector = _bool(with_vector, "with_vector")
            with_payload = _bool(with_payload, "with_payload")
            after, keep = _c_id(cursor, "cursor") if cursor is not None else (None, None)
            after = None if after is None else byref(after)
            ids_p, n = POINTER(ndl_id)(), c_size_t()
            with self.db._use(self.name) as o:
                if handle is None:  # the call of libraries without filters too
                    st = lib.ndl_collection_scroll(o.handle, after, limit, byref(ids_p),
                                                   byref(n), byref(err))
                else:
                    st = lib.ndl_collection_scroll_where(o.handle, handle, after, limit,
                                                         byref(ids_p), byref(n), byref(err))
                _check(lib, st, err)
                try:
                    # A point deleted since the page was taken is left out, as
                    # by the server; the cursor is the page's last id all the same.
                    points = self._read_points(o, ids_p, n.value, with_vector, with_payload)
                    last = _py_id(ids_p[n.value - 1]) if n.value == limit else None
                finally:
                    lib.ndl_free(ctypes.cast(ids_p, c_void_p))
        return points, last
