"""HTTP mode: a client of `needle serve` (docs/HTTP.md) on the standard
library's http.client, one keep-alive connection per thread."""
import http.client
import json
import socket
import threading
from array import array
from urllib.parse import quote, urlsplit

from ._base import ID_MAX, Collection, config_body, dumps, np
from ._errors import NeedleError, invalid

BATCH_SEARCH_MAX = 1024  # searches per /search/batch request (docs/HTTP.md)


class Client:
    """A needle server. Thread-safe: each thread gets its own connection.

        client = needle.Client("http://127.0.0.1:6400", api_key="...")
        docs = client.create_collection("docs", 384)
    """

    def __init__(self, url="http://127.0.0.1:6400", api_key=None, timeout=60):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid(f"url {url!r}: expected http://HOST:PORT or https://HOST:PORT")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")  # a server behind a proxy path
        self._headers = {"Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns = set()  # every thread's connection, for close()

    def __repr__(self):
        return f"<needle.Client {self.url}>"

    # --- connections

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
            self._local.used = False
            with self._lock:
                self._conns.add(conn)
        return conn

    def _drop_connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._lock:
                self._conns.discard(conn)

    def close(self):
        """Close every thread's connection (a later call opens a new one)."""
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method, path, body=None):
        """One request; the parsed JSON answer, or NeedleError."""
        data = None if body is None else dumps(body)
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            conn = self._connection()
            reused = self._local.used
            sent = None
            try:
                conn.request(method, self._prefix + path, body=data, headers=headers)
            except ConnectionError as e:
                # The server may have refused the body early (413) and closed:
                # its answer can still be read.
                sent = e
            except (OSError, http.client.HTTPException) as e:
                self._drop_connection()
                raise NeedleError("unavailable", f"{self.url}: {e}") from None
            try:
                if sent and conn.sock is None:  # not even connected
                    raise sent
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self._drop_connection()
                # The server closes idle keep-alive connections; a request on
                # one it closed never reached it, so send it once more on a
                # fresh connection.
                if reused and attempt == 0 and (sent or isinstance(e, ConnectionError)):
                    continue
                if isinstance(e, socket.timeout):
                    e = f"no answer within {self.timeout} s"
                raise NeedleError("unavailable", f"{self.url}: {sent or e}") from None
            self._local.used = True
            if resp.will_close or sent:
                self._drop_connection()
            return _answer(resp.status, raw)

    # --- the database

    def health(self):
        """{"status": "ok", "version": ...}"""
        return self.request("GET", "/v1/health")

    def create_collection(self, name, dimension, metric="cosine", index="hnsw", m=16,
                          ef_construction=200, **extra):
        """Create a collection (or find it, when it exists with the same
        config; a different config raises already_exists). index is "hnsw",
        "flat" or a dict as in docs/HTTP.md; extra are more config fields
        (quantization, fields)."""
        body = config_body(dimension, metric, index, m, ef_construction, extra)
        self.request("PUT", _collection_path(name), body)
        return HttpCollection(self, name)

    def get_collection(self, name):
        """The collection; NeedleError not_found when it does not exist."""
        self.request("GET", _collection_path(name))
        return HttpCollection(self, name)

    def list_collections(self):
        """[{"name": ..., "count": ...}], sorted by name."""
        return self.request("GET", "/v1/collections")["collections"]

    def delete_collection(self, name):
        """Delete a collection and its files; not_found when absent."""
        self.request("DELETE", _collection_path(name))


def _answer(status, raw):
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
    except ValueError:
        body = None
    if 200 <= status < 300:
        if body is None:
            raise NeedleError("internal", f"the server answered {status} without a JSON body",
                              status)
        return body
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and "code" in err:
        raise NeedleError(err["code"], err.get("message", ""), status)
    text = raw[:200].decode("utf-8", "replace")
    raise NeedleError.from_status(status, f"HTTP {status}: {text}")


def _collection_path(name):
    if not isinstance(name, str) or not name:  # no path form: the route would change
        raise invalid(f"bad collection name {name!r}: use 1..64 of A-Z a-z 0-9 _ -")
    # Quoted whole, '/' included: one path segment, which the server decodes
    # and checks (a bad name is 400).
    return "/v1/collections/" + quote(name, safe="")


def _f32(values):
    """Numbers as the float32 values the server holds, as Python floats: the
    same values the embedded mode returns (the server writes 9 significant
    digits, and integers for whole numbers)."""
    try:
        return array("f", values).tolist()
    except TypeError:  # a null (a non-finite score): leave the answer as it is
        return values


def _hits(hits):
    for h in hits:
        h["score"], h["distance"] = _f32([h["score"], h["distance"]])
        if h.get("vector") is not None:
            h["vector"] = _f32(h["vector"])
    return hits


def _points(points):
    for p in points:
        if "vector" in p:
            p["vector"] = _f32(p["vector"])
    return points


def _rows(vectors):
    """Vectors as JSON-ready rows (numpy arrays become lists in one go)."""
    if np is not None and isinstance(vectors, np.ndarray):
        return vectors.tolist()
    return vectors


def _vector(vector):
    if np is not None and isinstance(vector, np.ndarray):
        return vector.tolist()
    return vector


def _path_id(id):
    """An id as a path segment, which the server reads as an integer when it
    is 1..19 decimal digits and as a string otherwise (docs/HTTP.md)."""
    if isinstance(id, str):
        if id.isascii() and id.isdigit() and len(id) <= 19:
            # PATCH would change point 123 instead of point "123".
            raise NeedleError("unsupported", f"string id {id!r} is all digits: the HTTP API "
                              "cannot address it in PATCH .../points/{id}")
        return quote(id, safe="")
    if hasattr(id, "__index__") and not isinstance(id, bool):
        n = id.__index__()
        if 0 <= n <= ID_MAX:
            return str(n)
    raise invalid(f"bad id {id!r}: an id is an integer 0..{ID_MAX} or a string")


class HttpCollection(Collection):
    """A collection of a needle server; see Collection for the methods."""

    def __init__(self, client, name):
        super().__init__(name)
        self.client = client
        self._path = _collection_path(name)

    def _post(self, route, body):
        return self.client.request("POST", self._path + route, body)

    def info(self):
        return self.client.request("GET", self._path)

    def _upsert(self, ids, vectors, payloads):
        rows = _rows(vectors)
        if payloads is None:
            points = [{"id": i, "vector": v} for i, v in zip(ids, rows)]
        else:
            points = [{"id": i, "vector": v} if p is None else
                      {"id": i, "vector": v, "payload": p}
                      for i, v, p in zip(ids, rows, payloads)]
        return self._post("/points", {"points": points})["upserted"]

    def search(self, vector, k=10, **options):
        body = dict(options, vector=_vector(vector), k=k)
        return _hits(self._post("/search", body)["results"])

    def _search_batch(self, vectors, k, options):
        rows = _rows(vectors)
        results = []
        # Searches only read, so a long batch may go as several requests.
        for start in range(0, len(rows), BATCH_SEARCH_MAX):
            chunk = rows[start:start + BATCH_SEARCH_MAX]
            searches = [dict(options, vector=_vector(v), k=k) for v in chunk]
            answer = self._post("/search/batch", {"searches": searches})
            results += [_hits(hits) for hits in answer["results"]]
        return results

    def _get(self, ids, with_vector, with_payload):
        body = {"ids": ids, "with_vector": with_vector, "with_payload": with_payload}
        return _points(self._post("/points/get", body)["points"])

    def _delete(self, ids):
        return self._post("/points/delete", {"ids": ids})["deleted"]

    def _set_payload(self, id, payload):
        self.client.request("PATCH", f"{self._path}/points/{_path_id(id)}",
                            {"payload": payload})

    def count(self):
        return self._post("/count", {})["count"]

    def scroll(self, limit=100, cursor=None, with_payload=True, with_vector=False):
        body = {"limit": limit, "cursor": cursor, "with_payload": with_payload,
                "with_vector": with_vector}
        answer = self._post("/scroll", body)
        return _points(answer["points"]), answer["next_cursor"]
