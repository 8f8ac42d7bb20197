"""A real `needle serve` for end-to-end tests: started on a free port
(`--listen 127.0.0.1:0`; the server prints `listening on http://HOST:PORT`
as its first stdout line), with a tiny JSON-over-HTTP client from the
standard library, and the assertions the HTTP tests share.

    with NeedleServer(tmp_path / "data", "--api-key", "k") as s:
        status, body = s.request("GET", "/v1/health")

Sanitizer reports in the server's stderr fail the test at stop().
"""
import http.client
import json
import queue
import re
import signal
import socket
import subprocess
import threading

import numpy as np

from conftest import ENV, NEEDLE, SANITIZER_MARKS


class Answer(tuple):
    """(status, body) as a plain tuple, with the response's headers (names
    lower-cased) in .headers."""

    def __new__(cls, status, body, headers=None):
        self = super().__new__(cls, (status, body))
        self.headers = dict(headers or {})
        return self


def parse_body(text):
    """A response body: parsed JSON, or the text when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_response(f, timeout=10):
    """One HTTP/1.1 response with a Content-Length, read from a socket or
    from a binary buffered reader (sock.makefile("rb"), which keeps what
    follows for the next pipelined answer). Returns an Answer, or None when
    the connection closed (or was reset) before any answer; a socket that
    stays silent for `timeout` seconds raises socket.timeout."""
    if isinstance(f, socket.socket):
        f.settimeout(timeout)
        f = f.makefile("rb")
    try:
        line = f.readline()
    except (ConnectionResetError, BrokenPipeError):
        return None
    if not line:
        return None
    status = int(line.split()[1])
    headers = {}
    while True:
        line = f.readline().decode("latin-1").strip()
        if not line:
            break
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers["content-length"]))
    return Answer(status, parse_body(body.decode("utf-8", "replace")), headers)


class NeedleServer:
    def __init__(self, data, *args, env=None, stop_timeout=60):
        """stop_timeout: how long the `with` block's exit waits for the
        server to exit after SIGTERM (it fails the test beyond)."""
        self.data = str(data)
        self.args = [str(a) for a in args]
        self.env = dict(ENV, **(env or {}))
        self.stop_timeout = stop_timeout
        self.proc = None
        self.port = None
        self.stdout_lines = []
        self.stderr_lines = []

    def start(self, timeout=30):
        """Start and wait up to `timeout` seconds for the address line."""
        cmd = [NEEDLE, "serve", "--data", self.data, "--listen", "127.0.0.1:0"] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=self.env)
        first = queue.Queue()
        self._out = threading.Thread(target=self._drain_stdout, args=(first,), daemon=True)
        self._err = threading.Thread(target=self._drain_stderr, daemon=True)
        self._out.start()
        self._err.start()
        try:
            line = first.get(timeout=timeout)
        except queue.Empty:
            line = None
        if not (line or "").startswith("listening on http://"):
            self.proc.kill()
            self.proc.wait()
            self._out.join(5)
            self._err.join(5)
            self.proc = None
            what = f"no address line within {timeout}s" if line is None else repr(line)
            raise RuntimeError(f"server did not start: {what}\n{''.join(self.stderr_lines)}")
        self.port = int(line.strip().rsplit(":", 1)[1])
        return self

    def _drain_stdout(self, first):
        """The first line (or "" at EOF) goes to `first`; the rest is kept."""
        line = self.proc.stdout.readline()
        first.put(line)
        for line in self.proc.stdout:
            self.stdout_lines.append(line)

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stop with sig; returns the exit status (-9 for SIGKILL). Fails
        when the server is still running `timeout` seconds after sig."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server did not exit within {timeout}s of {sig!r}")
        finally:
            self._out.join(10)
            self._err.join(10)
            self.proc = None
        text = "".join(self.stderr_lines)
        for mark in SANITIZER_MARKS:
            assert mark not in text, f"sanitizer report from the server:\n{text}"
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        """SIGTERM, exit 0 within stop_timeout; nothing to do when the
        block stopped the server itself."""
        if self.proc is None:
            return
        rc = self.stop(signal.SIGTERM, timeout=self.stop_timeout)
        if exc[0] is None:
            assert rc == 0, f"server exited {rc}:\n{''.join(self.stderr_lines)}"

    def connection(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def raw_socket(self, timeout=10):
        """A plain TCP connection to the server, for hand-made requests."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=None, key=None, conn=None):
        """One request. body: a JSON-able object; raw: bytes sent as is.
        Returns an Answer: (status, parsed JSON body or the text when not
        JSON), with .headers."""
        h = {"Content-Type": "application/json"}
        if key:
            h["Authorization"] = f"Bearer {key}"
        h.update(headers or {})
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            text = r.read().decode("utf-8", "replace")
        finally:
            if own:
                conn.close()
        return Answer(r.status, parse_body(text), ((k.lower(), v) for k, v in r.getheaders()))


# ------------------------------------------------------------------ shared assertions

def ok(resp, status=200):
    """A success answer with `status`; returns its body."""
    st, body = resp
    assert st == status, f"HTTP {st} (expected {status}): {body}"
    return body


def err(resp, status, code, *names, match=None):
    """An error answer: exactly {"error":{"code","message"}}, a non-empty
    message naming each of `names` (case-insensitive substrings) and
    matching the regex `match` (case-insensitive). Returns the message."""
    st, body = resp
    assert st == status, f"HTTP {st} (expected {status}): {body}"
    assert isinstance(body, dict) and set(body) == {"error"}, body
    e = body["error"]
    assert isinstance(e, dict) and set(e) == {"code", "message"}, body
    assert e["code"] == code, body
    assert isinstance(e["message"], str) and e["message"].strip(), body
    for n in names:
        assert str(n).lower() in e["message"].lower(), f"{n!r} not named in {e['message']!r}"
    if match:
        assert re.search(match, e["message"], re.I), f"{match!r} does not match {e['message']!r}"
    return e["message"]


def vec(v):
    """A vector as JSON floats, rounded to float32 first."""
    return [float(a) for a in np.asarray(v, dtype=np.float32)]


def count(s, name, key=None):
    r = ok(s.request("POST", f"/v1/collections/{name}/count", {}, key=key))
    assert set(r) == {"count"}, r
    return r["count"]


def scroll_all(s, name, limit=100, **flags):
    """Every point by scroll pages of `limit`: (points, number of pages).
    Each page is {points, next_cursor}, at most `limit` points, and only the
    last one has no cursor (or is empty)."""
    got, cursor, pages = [], None, 0
    while True:
        body = {"limit": limit, "cursor": cursor}
        body.update(flags)
        r = ok(s.request("POST", f"/v1/collections/{name}/scroll", body))
        assert set(r) == {"points", "next_cursor"}, r
        assert len(r["points"]) <= limit
        got.extend(r["points"])
        pages += 1
        assert pages < 1000
        if r["next_cursor"] is None:
            return got, pages
        assert r["points"], "an empty page with a cursor"
        cursor = r["next_cursor"]
