"""HTTP mode: a client of `needle serve` (docs/HTTP.md) on the standard
library's http.client, one keep-alive connection per thread."""
import http.client
import json
import re
import socket
import threading
import weakref
from array import array
from urllib.parse import quote, urlsplit

from ._base import Collection, Store, check_id, dumps, name_error, np
from ._errors import NeedleError, invalid

BATCH_SEARCH_MAX = 1024  # searches per /search/batch request (docs/HTTP.md)


class _Closer:
    """Closes a thread's connection when that thread's threading.local
    storage is released, that is when the thread ends."""
    __slots__ = ("conn",)

    def __init__(self, conn):
        self.conn = conn

    def __del__(self):
        try:
            self.conn.close()
        except Exception:  # at interpreter exit, say: nothing to report to
            pass


class Client(Store):
    """A needle server. Thread-safe: each thread gets its own connection.

        client = needle.Client("http://127.0.0.1:6400", api_key="...")
        docs = client.create_collection("docs", 384)

    A path after HOST:PORT (a server behind a proxy) prefixes every route.
    """

    def __init__(self, url="http://127.0.0.1:6400", api_key=None, timeout=60):
        try:
            parts = urlsplit(url)
            port = parts.port  # ValueError for a port that is no number or out of range
        except (TypeError, ValueError, AttributeError) as e:
            raise invalid(f"url {url!r}: {e}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid(f"url {url!r}: expected http://HOST:PORT or https://HOST:PORT")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port
        self._prefix = parts.path.rstrip("/")  # a server behind a proxy path
        self._headers = {"Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._local = threading.local()
        self._lock = threading.Lock()
        # Every live thread's connection, for close(). A thread's connection
        # lives in its threading.local: when the thread ends, it is closed
        # (_Closer) and leaves this set.
        self._conns = weakref.WeakSet()

    def __repr__(self):
        return f"<needle.Client {self.url}>"

    # --- connections

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
            self._local.closer = _Closer(conn)
            self._local.used = False
            with self._lock:
                self._conns.add(conn)
        return conn

    def _drop_connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = self._local.closer = None
            with self._lock:
                self._conns.discard(conn)

    def close(self):
        """Close every thread's connection (a later call opens a new one)."""
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _send(self, method, path, data, content_type):
        """One request: (status, Content-Type, body bytes) of the answer."""
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = content_type
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
            return resp.status, resp.getheader("Content-Type"), raw

    def request(self, method, path, body=None, content_type="application/json"):
        """One request to any route (path after the URL's own path). body:
        bytes are sent as they are, with content_type (such as
        "application/x-ndjson"); anything else is sent as JSON. Returns the
        parsed JSON answer, or the text of an answer that is not JSON (GET
        /metrics); an error status raises NeedleError."""
        if body is None or isinstance(body, (bytes, bytearray)):
            data = body
        else:
            data, content_type = dumps(body), "application/json"
        status, ctype, raw = self._send(method, path, data, content_type)
        if _is_json(ctype):
            return _answer(status, raw)
        if not 200 <= status < 300:
            _answer(status, raw)  # raises
        return raw.decode("utf-8", "replace")

    def _call(self, method, path, body=None):
        """A request of the API: the JSON object answered."""
        status, ctype, raw = self._send(method, path, None if body is None else dumps(body),
                                        "application/json")
        return _answer(status, raw)

    # --- the database (see Store)

    def health(self):
        return self._call("GET", "/v1/health")

    def _create_collection(self, name, body):
        self._call("PUT", _collection_path(name), body)
        return HttpCollection(self, name)

    def get_collection(self, name):
        self._call("GET", _collection_path(name))
        return HttpCollection(self, name)

    def list_collections(self):
        return self._call("GET", "/v1/collections")["collections"]

    def delete_collection(self, name):
        self._call("DELETE", _collection_path(name))


def _is_json(ctype):
    return ctype is None or ctype.split(";")[0].strip().lower() == "application/json"


def _answer(status, raw):
    """The JSON object of a 2xx answer; NeedleError for any other (with the
    server's code, or one from the status for an answer not from needle)."""
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
    except ValueError:
        body = None
    if 200 <= status < 300:
        if not isinstance(body, dict):
            raise NeedleError("internal", f"the server answered {status} without a JSON body",
                              status)
        return body
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and "code" in err:
        raise NeedleError(err["code"], err.get("message", ""), status)
    text = raw[:200].decode("utf-8", "replace")
    raise NeedleError.from_status(status, f"HTTP {status}: {text}")


def _segment(text):
    """text as one path segment, '/' included, percent-encoded: the server
    decodes it once (docs/HTTP.md)."""
    return quote(text, safe="", errors="strict")


def _collection_path(name):
    try:  # a bad name is 400 from the server; one with no path form is refused here
        if isinstance(name, str) and name:  # "" would change the route
            return "/v1/collections/" + _segment(name)
    except UnicodeEncodeError:  # a lone surrogate
        pass
    raise name_error(name)


def _f32(values):
    """Numbers as the float32 values the server holds, as Python floats: the
    same values the embedded mode returns (the server writes 9 significant
    digits, and integers for whole numbers). A null (a non-finite score)
    stays None."""
    try:
        return array("f", values).tolist()
    except TypeError:
        return [None if x is None else array("f", [x])[0] for x in values]


def _hits(hits):
    """Scores, distances and vectors of hits as float32 values, converted in
    one go."""
    flat = []
    for h in hits:
        flat += (h["score"], h["distance"])
        if h.get("vector") is not None:
            flat += h["vector"]
    flat = _f32(flat)
    at = 0
    for h in hits:
        h["score"], h["distance"] = flat[at], flat[at + 1]
        at += 2
        if h.get("vector") is not None:
            n = len(h["vector"])
            h["vector"] = flat[at:at + n]
            at += n
    return hits


def _points(points):
    for p in points:
        if "vector" in p:
            p["vector"] = _f32(p["vector"])
    return points


def _rows(vectors):
    """Vectors as JSON-ready rows (a numpy array becomes lists in one go)."""
    if np is not None and isinstance(vectors, np.ndarray):
        return vectors.tolist()
    return vectors


def _path_id(id):
    """An id as a path segment. The server reads a segment of decimal digits
    as an integer id, whatever its length (over 2^63-1: 400), and any other
    segment as a string id (docs/HTTP.md): a string id of digits has no path."""
    id = check_id(id)
    if isinstance(id, int):
        return str(id)
    if not id:
        raise invalid("id: string id is empty")
    if id.isascii() and id.isdigit():
        # PATCH would change point 123 instead of point "123".
        raise NeedleError("unsupported", f"string id {id!r} is all digits: the HTTP API "
                          "cannot address it in PATCH .../points/{id}")
    try:
        return _segment(id)
    except UnicodeEncodeError as e:
        raise invalid(f"id: the string id is not valid UTF-8: {e}") from None


def _with_filter(body, f):
    """body with "filter" when there is one (f: a checked _base.Filter)."""
    if f is not None:
        body["filter"] = f.obj
    return body


def _search_body(vector, k, f, options):
    return _with_filter(dict(options, vector=vector, k=k), f)


_SEARCH_INDEX = re.compile(r"^searches\[(\d+)\]")


class HttpCollection(Collection):
    """A collection of a needle server; see Collection for the methods."""

    def __init__(self, client, name):
        super().__init__(name)
        self.client = client
        self._path = _collection_path(name)

    def _post(self, route, body):
        return self.client._call("POST", self._path + route, body)

    def _add_field(self, name, type):  # noqa: A002
        answer = self.client._call("PUT", f"{self._path}/fields/{quote(name, safe='')}",
                                   {"type": type})
        return answer["created"]

    def info(self):
        return self.client._call("GET", self._path)

    def _upsert(self, ids, rows, payloads):
        rows = _rows(rows)
        if payloads is None:
            points = [{"id": i, "vector": v} for i, v in zip(ids, rows)]
        else:
            points = [{"id": i, "vector": v} if p is None else
                      {"id": i, "vector": v, "payload": p}
                      for i, v, p in zip(ids, rows, payloads)]
        return self._post("/points", {"points": points})["upserted"]

    def _search(self, vector, k, f, options):
        return _hits(self._post("/search", _search_body(vector, k, f, options))["results"])

    def _explain(self, vector, k, f, options):
        body = _search_body(vector, k, f, options)
        body["explain"] = True
        return self._post("/search", body)["explain"]

    def _search_batch(self, rows, k, f, options):
        rows = _rows(rows)
        results = []
        # Searches only read, so a long batch may go as several requests;
        # an error names its search by its index in the whole batch.
        for start in range(0, len(rows), BATCH_SEARCH_MAX):
            searches = [_search_body(v, k, f, options)
                        for v in rows[start:start + BATCH_SEARCH_MAX]]
            try:
                answer = self._post("/search/batch", {"searches": searches})
            except NeedleError as e:
                if not start:
                    raise
                message = _SEARCH_INDEX.sub(lambda m: f"searches[{int(m[1]) + start}]",
                                            e.message)
                raise NeedleError(e.code, message, e.status) from None
            results += [_hits(hits) for hits in answer["results"]]
        return results

    def _get(self, ids, with_vector, with_payload):
        body = {"ids": ids, "with_vector": with_vector, "with_payload": with_payload}
        return _points(self._post("/points/get", body)["points"])

    def _delete(self, ids):
        return self._post("/points/delete", {"ids": ids})["deleted"]

    def _delete_where(self, f):
        return self._post("/points/delete", {"filter": f.obj})["deleted"]

    def _set_payload(self, id, payload):
        self.client._call("PATCH", f"{self._path}/points/{_path_id(id)}",
                          {"payload": payload})

    def _count(self, f):
        return self._post("/count", _with_filter({}, f))["count"]

    def _scroll(self, limit, cursor, with_payload, with_vector, f):
        body = {"limit": limit, "cursor": cursor, "with_payload": with_payload,
                "with_vector": with_vector}
        answer = self._post("/scroll", _with_filter(body, f))
        return _points(answer["points"]), answer["next_cursor"]
