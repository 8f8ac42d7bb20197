"""A real `needle serve` for end-to-end tests: started on a free port
(`--listen 127.0.0.1:0`; the server prints `listening on http://HOST:PORT`
as its first stdout line), with a tiny JSON-over-HTTP client from the
standard library.

    with NeedleServer(tmp_path / "data", "--api-key", "k") as s:
        status, body = s.request("GET", "/v1/health")

Sanitizer reports in the server's stderr fail the test at stop().
"""
import http.client
import json
import os
import signal
import subprocess
import threading

from conftest import ENV, NEEDLE, SANITIZER_MARKS


class NeedleServer:
    def __init__(self, data, *args, env=None):
        self.data = str(data)
        self.args = [str(a) for a in args]
        self.env = dict(ENV, **(env or {}))
        self.proc = None
        self.port = None
        self.stderr_lines = []

    def start(self, timeout=30):
        cmd = [NEEDLE, "serve", "--data", self.data, "--listen", "127.0.0.1:0"] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=self.env)
        self._err = threading.Thread(target=self._drain_stderr, daemon=True)
        self._err.start()
        line = self.proc.stdout.readline()
        if not line.startswith("listening on http://"):
            self.proc.kill()
            self.proc.wait()
            self._err.join(5)
            raise RuntimeError(f"server did not start: {line!r}\n{''.join(self.stderr_lines)}")
        self.port = int(line.strip().rsplit(":", 1)[1])
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return self

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stop with sig; returns the exit status (-9 for SIGKILL)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError(f"server did not exit within {timeout}s of {sig}")
        finally:
            self._err.join(10)
            self.proc = None
        text = "".join(self.stderr_lines)
        for mark in SANITIZER_MARKS:
            assert mark not in text, f"sanitizer report from the server:\n{text}"
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        rc = self.stop()
        if exc[0] is None:
            assert rc == 0, f"server exited {rc}:\n{''.join(self.stderr_lines)}"

    def connection(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=None, key=None, conn=None):
        """One request. body: a JSON-able object; raw: bytes sent as is.
        Returns (status, parsed JSON body or the text when not JSON)."""
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
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text
