"""ctypes mirror of include/needle.h and the loading of libneedle.so.

The structs below copy the C layouts field by field (tests compare their
sizes and offsets with the compiler's). Option structs are always filled by
their *_init function first: it sets `version` and the defaults.
"""
import ctypes
import ctypes.util
import os
import threading
from ctypes import (POINTER, Structure, c_char, c_char_p, c_float, c_int, c_size_t, c_uint32,
                    c_uint64, c_void_p)
from pathlib import Path

from ._errors import NeedleError

c_status = c_int  # ndl_status and the other enums are ints in the C ABI

NDL_OK, NDL_NOT_FOUND, NDL_EXISTS = 0, 2, 3
NDL_INDEX_HNSW = 1
NDL_PAYLOAD_MERGE = 0
NAME_MAX = 64


class ndl_error(Structure):
    _fields_ = [("status", c_status), ("msg", c_char * 256)]


class ndl_id(Structure):
    # str is void* rather than char*: ids are not NUL-terminated (len bytes).
    _fields_ = [("str", c_void_p), ("len", c_uint32), ("num", c_uint64)]


class ndl_db_options(Structure):
    _fields_ = [("version", c_uint32), ("create_if_missing", c_int), ("read_only", c_int),
                ("fsync", c_int), ("checkpoint_wal_bytes", c_uint64),
                ("checkpoint_interval_ms", c_uint32), ("max_payload_bytes", c_uint32),
                ("salvage", c_int), ("verify_on_open", c_int)]


class ndl_collection_config(Structure):
    _fields_ = [("version", c_uint32), ("dimension", c_uint32), ("metric", c_int),
                ("index", c_int), ("hnsw_m", c_uint32), ("hnsw_ef_construction", c_uint32),
                ("seed", c_uint64)]


class ndl_collection_info(Structure):
    _fields_ = [("name", c_char * (NAME_MAX + 1)), ("config", ndl_collection_config),
                ("count", c_uint64), ("deleted", c_uint64), ("memory_bytes", c_uint64),
                ("disk_bytes", c_uint64), ("dropped_log_bytes", c_uint64),
                ("dropped_log_at", c_char * 300), ("salvaged", c_char * 512),
                ("damaged", c_char * 400), ("search_ef", c_uint32),
                ("search_ef_recall", c_float), ("search_ef_queries", c_uint32)]


class ndl_search_params(Structure):
    _fields_ = [("version", c_uint32), ("k", c_uint32), ("ef", c_uint32), ("exact", c_int),
                ("filter", c_void_p), ("filter_ctx", c_void_p), ("threads", c_uint32),
                ("with_payload", c_int), ("where", c_void_p)]


class ndl_hit(Structure):
    _fields_ = [("id", ndl_id), ("slot", c_uint32), ("distance", c_float), ("score", c_float)]


class ndl_explain(Structure):
    _fields_ = [("plan", c_char_p), ("filtered", c_int), ("estimated", c_uint64),
                ("matched", c_uint64), ("checked", c_uint64), ("visited", c_uint64),
                ("ef", c_uint32)]


STRUCTS = (ndl_error, ndl_id, ndl_db_options, ndl_collection_config, ndl_collection_info,
           ndl_search_params, ndl_hit, ndl_explain)

_p = POINTER
_err = _p(ndl_error)
_db = c_void_p    # ndl_db *
_coll = c_void_p  # ndl_collection *
_res = c_void_p   # ndl_results *
_filter = c_void_p  # ndl_filter *

# name: (restype, argtypes)
_PROTOTYPES = {
    "ndl_version": (c_char_p, []),
    "ndl_status_name": (c_char_p, [c_status]),
    "ndl_metric_parse": (c_status, [c_char_p, _p(c_int), _err]),
    "ndl_metric_name": (c_char_p, [c_int]),
    "ndl_index_parse": (c_status, [c_char_p, _p(c_int), _err]),
    "ndl_index_name": (c_char_p, [c_int]),
    "ndl_fsync_parse": (c_status, [c_char_p, _p(c_int), _err]),
    "ndl_name_valid": (c_int, [c_char_p]),
    "ndl_db_options_init": (None, [_p(ndl_db_options)]),
    "ndl_db_open": (c_status, [c_char_p, _p(ndl_db_options), _p(_db), _err]),
    "ndl_db_close": (c_status, [_db, _err]),
    "ndl_collection_config_init": (None, [_p(ndl_collection_config)]),
    "ndl_collection_create": (c_status, [_db, c_char_p, _p(ndl_collection_config), _p(_coll),
                                         _err]),
    "ndl_collection_open": (c_status, [_db, c_char_p, _p(_coll), _err]),
    "ndl_collection_close": (c_status, [_coll, _err]),
    "ndl_collection_drop": (c_status, [_db, c_char_p, _err]),
    "ndl_collection_list": (c_status, [_db, _p(_p(c_char_p)), _p(c_size_t), _err]),
    "ndl_collection_info_get": (c_status, [_coll, _p(ndl_collection_info), _err]),
    "ndl_free": (None, [c_void_p]),
    "ndl_collection_upsert_points": (c_status, [_coll, c_size_t, _p(ndl_id), c_void_p,
                                                _p(c_char_p), c_void_p, _err]),
    "ndl_collection_set_payload": (c_status, [_coll, ndl_id, c_char_p, c_int, _err]),
    "ndl_collection_delete": (c_status, [_coll, c_size_t, _p(ndl_id), _p(c_size_t), _err]),
    "ndl_collection_get_point": (c_status, [_coll, ndl_id, c_void_p, _p(c_void_p), _err]),
    "ndl_collection_scroll": (c_status, [_coll, _p(ndl_id), c_size_t, _p(_p(ndl_id)),
                                         _p(c_size_t), _err]),
    "ndl_collection_count": (c_uint64, [_coll]),
    "ndl_search_params_init": (None, [_p(ndl_search_params)]),
    "ndl_collection_search": (c_status, [_coll, c_void_p, _p(ndl_search_params), _p(_res),
                                         _err]),
    "ndl_collection_search_batch": (c_status, [_coll, c_size_t, c_void_p,
                                               _p(ndl_search_params), _p(_res), _err]),
    "ndl_results_count": (c_size_t, [_res, c_size_t]),
    "ndl_results_hits": (_p(ndl_hit), [_res, c_size_t]),
    "ndl_results_payload": (c_char_p, [_res, c_size_t, c_size_t]),
    "ndl_results_free": (None, [_res]),
    "ndl_filter_parse": (c_status, [c_char_p, c_size_t, _p(_filter), _err]),
    "ndl_filter_free": (None, [_filter]),
    "ndl_collection_count_where": (c_status, [_coll, _filter, _p(c_uint64), _err]),
    "ndl_collection_scroll_where": (c_status, [_coll, _filter, _p(ndl_id), c_size_t,
                                               _p(_p(ndl_id)), _p(c_size_t), _err]),
    "ndl_collection_delete_where": (c_status, [_coll, _filter, _p(c_size_t), _err]),
    "ndl_results_explain": (None, [_res, _p(ndl_explain)]),
    "ndl_field_name_check": (c_status, [c_char_p, _err]),
    "ndl_field_type_from_name": (c_int, [c_char_p]),
    "ndl_field_type_name": (c_char_p, [c_int]),
    "ndl_collection_add_field": (c_status, [_coll, c_char_p, c_int, _err]),
    "ndl_collection_field_count": (c_size_t, [_coll]),
    "ndl_collection_field_get": (c_status, [_coll, c_size_t, c_char_p, _p(c_int), _err]),
}
# Added after 0.1.0 shipped; an older library simply lacks them, and calling
# one then raises unsupported (filters and explain; the rest works).
_OPTIONAL = {"ndl_collection_scroll", "ndl_filter_parse", "ndl_filter_free",
             "ndl_collection_count_where", "ndl_collection_scroll_where",
             "ndl_collection_delete_where", "ndl_results_explain", "ndl_field_name_check",
             "ndl_field_type_from_name", "ndl_field_type_name", "ndl_collection_add_field",
             "ndl_collection_field_count", "ndl_collection_field_get"}
FIELD_NAME_MAX = 256

_lib = None
_lib_lock = threading.Lock()


def find_library():
    """$NEEDLE_LIB, else build/libneedle.so of the source tree this package
    sits in (searching upwards), else the system's libneedle."""
    env = os.environ.get("NEEDLE_LIB")
    if env:
        return env
    for d in Path(__file__).resolve().parents:
        cand = d / "build" / "libneedle.so"
        if cand.exists():
            return str(cand)
    return ctypes.util.find_library("needle")


def _needs_asan(path):
    """Whether the library links the AddressSanitizer runtime (a build with
    NEEDLE_SANITIZE=ON) while this process does not have it loaded. Loading
    it then would not fail: ASan would end the whole process."""
    try:
        with open(os.path.realpath(path), "rb") as f:
            if b"libasan.so" not in f.read():
                return False
        with open("/proc/self/maps") as f:
            return "libasan" not in f.read()
    except OSError:
        return False


def _missing(path, name):
    """Stands in for function name, which the library at path lacks."""
    def call(*args):
        raise NeedleError("unsupported", f"{path} has no {name}: rebuild it")
    return call


def load():
    """The loaded library, with every prototype declared (once per process)."""
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        path = find_library()
        if not path:
            raise NeedleError("unavailable", "libneedle.so not found: build it (make) or set "
                              "NEEDLE_LIB=/path/to/libneedle.so")
        if _needs_asan(path):
            raise NeedleError("unavailable", f"{path} is built with AddressSanitizer: run "
                              "Python with LD_PRELOAD=$(gcc -print-file-name=libasan.so) "
                              "ASAN_OPTIONS=detect_leaks=0, or use a release build")
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            raise NeedleError("unavailable", f"cannot load {path}: {e}") from None
        for name, (restype, argtypes) in _PROTOTYPES.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                if name in _OPTIONAL:
                    setattr(lib, name, _missing(path, name))
                    continue
                raise NeedleError("unavailable", f"{path} has no {name}: rebuild it") from None
            fn.restype = restype
            fn.argtypes = argtypes
        lib.path = path
        _lib = lib
        return lib
