"""Durability through `needle serve` (SPEC section 5, docs/HTTP.md): SIGTERM
finishes, checkpoints and exits 0 within 30 s, and a restart on the same
directory serves everything; kill -9 in the middle of a stream of upserts
and deletes loses no acknowledged write and leaves no batch half-written;
`needle check` passes on the directory once the server has exited.
"""
import signal
import threading
import time

import numpy as np

from conftest import Cli, clustered
from server import NeedleServer, count, err, ok, scroll_all, vec


def serve(data, *args):
    """A server on data for a `with` block, whose exit is SIGTERM and exit
    status 0 within 30 s (SPEC section 5)."""
    return NeedleServer(data, *args, stop_timeout=30)


def check_ok(data):
    p = Cli(data).run("check")  # exit 0 asserted by Cli.run
    for line in p.stdout.splitlines():
        assert line.endswith(": ok"), p.stdout
    return p


def every_point(s, name):
    """Every point with vector and payload, by scroll pages of 97."""
    return scroll_all(s, name, 97, with_payload=True, with_vector=True)[0]


def snapshot(s):
    """Everything a client can see: the collection list, each config and
    count, and every point with vector and payload."""
    cols = ok(s.request("GET", "/v1/collections"))["collections"]
    out = {"list": cols}
    for c in cols:
        info = ok(s.request("GET", f"/v1/collections/{c['name']}"))
        conf = {k: info[k] for k in ("name", "dimension", "metric", "index", "quantization",
                                     "fields", "count", "status")}
        out[c["name"]] = (conf, every_point(s, c["name"]))
    return out


# ------------------------------------------------------------------ SIGTERM

def populate(s):
    rng = np.random.default_rng(4)
    h = clustered(400, 8, seed=41)
    ok(s.request("PUT", "/v1/collections/h",
                 {"dimension": 8, "metric": "l2", "index": {"type": "hnsw", "m": 8, "ef_construction": 40}}), 201)
    ids = [i if i % 3 else f"s{i}" for i in range(400)]
    for lo in range(0, 400, 100):
        ok(s.request("POST", "/v1/collections/h/points",
                     {"points": [{"id": ids[i], "vector": vec(h[i]),
                                  "payload": {"i": i, "tag": "é✓" * (i % 4)} if i % 5 else None}
                                 for i in range(lo, lo + 100)]}))
    ok(s.request("POST", "/v1/collections/h/points/delete", {"ids": ids[:40:2]}))
    ok(s.request("PATCH", "/v1/collections/h/points/7", {"payload": {"patched": True}}))
    ok(s.request("PUT", "/v1/collections/f", {"dimension": 5, "metric": "cosine", "index": "flat"}), 201)
    f = rng.normal(size=(50, 5)).astype(np.float32)
    lines = "\n".join('{"id":%d,"vector":%s}' % (i, vec(f[i])) for i in range(50)) + "\n"
    ok(s.request("POST", "/v1/collections/f/points", raw=lines.encode(),
                 headers={"Content-Type": "application/x-ndjson"}))
    ok(s.request("PUT", "/v1/collections/empty", {"dimension": 3, "metric": "ip"}), 201)
    ok(s.request("PUT", "/v1/collections/gone", {"dimension": 3, "metric": "ip"}), 201)
    ok(s.request("POST", "/v1/collections/gone/points", {"points": [{"id": 1, "vector": [1, 2, 3]}]}))
    ok(s.request("DELETE", "/v1/collections/gone"))
    return h, ids


def test_sigterm_then_restart_serves_everything(tmp_path):
    data = tmp_path / "data"
    with serve(data) as s:
        h, ids = populate(s)
        before = snapshot(s)
        q = clustered(5, 8, seed=42)
        exact_before = [ok(s.request("POST", "/v1/collections/h/search",
                                     {"vector": vec(v), "k": 10, "exact": True}))["results"] for v in q]
    assert [c["name"] for c in before["list"]] == ["empty", "f", "h"]
    assert before["h"][0]["count"] == 380
    check_ok(data)

    with serve(data) as s:
        after = snapshot(s)
        assert after == before
        exact_after = [ok(s.request("POST", "/v1/collections/h/search",
                                    {"vector": vec(v), "k": 10, "exact": True}))["results"] for v in q]
        assert exact_after == exact_before
        # the graph came back too: HNSW finds each live point itself
        live = [(i, x) for i, x in zip(ids, h) if i not in set(ids[:40:2])]
        hits = ok(s.request("POST", "/v1/collections/h/search/batch",
                            {"searches": [{"vector": vec(x), "k": 1, "ef": 64} for _, x in live[::5]]}))
        found = sum(r[0]["id"] == i for r, (i, _) in zip(hits["results"], live[::5]))
        assert found >= 0.95 * len(live[::5])
        assert ok(s.request("GET", "/v1/collections/h/points/7"))["payload"] == {"i": 7, "tag": "é✓" * 3, "patched": True}
        err(s.request("GET", "/v1/collections/gone"), 404, "not_found", "gone")
        # write again after the restart, then a second cycle
        ok(s.request("POST", "/v1/collections/empty/points", {"points": [{"id": "z", "vector": [1, 0, 0]}]}))
        assert ok(s.request("POST", "/v1/collections/h/points/delete", {"ids": [1, 5]})) == {"deleted": 2}
        before2 = snapshot(s)
    check_ok(data)
    with serve(data) as s:
        assert snapshot(s) == before2
        assert before2["empty"][0]["count"] == 1 and before2["h"][0]["count"] == 378


def test_sigint_exits_0(tmp_path):
    with serve(tmp_path / "data") as s:
        ok(s.request("PUT", "/v1/collections/c", {"dimension": 2, "metric": "l2"}), 201)
        ok(s.request("POST", "/v1/collections/c/points", {"points": [{"id": 1, "vector": [1, 2]}]}))
        assert s.stop(signal.SIGINT, timeout=30) == 0
    check_ok(tmp_path / "data")
    with serve(tmp_path / "data") as s:
        assert ok(s.request("GET", "/v1/collections/c/points/1"))["vector"] == [1.0, 2.0]


# ------------------------------------------------------------------ write streams

DIM = 8


def point_vec(tid, n):
    """The vector of thread tid's n-th point: exact in float32."""
    return [float(tid), float(n % 1000), float(n // 1000)] + [((n * 7 + j * 3) % 17) / 4.0 for j in range(DIM - 3)]


def point_id(tid, n):
    return tid * 1_000_000 + n if n % 2 else f"w{tid}-{n}"


class _Refused(Exception):
    pass


class Writer(threading.Thread):
    """Upserts batches of `per` points on its own keep-alive connection and
    now and then deletes two points of an earlier batch; records what was
    acknowledged (answered 200) and what was in flight when it stopped:
    unanswered (the connection closed), or refused with a 503 while the
    server shuts down (`refused`)."""

    def __init__(self, s, name, tid, per=16):
        super().__init__(daemon=True)
        self.s, self.name, self.tid, self.per = s, name, tid, per
        self.acked = []          # lists of point numbers, one per acknowledged batch
        self.deleted = set()     # point numbers whose delete was acknowledged
        self.in_flight = None    # ("upsert", numbers) or ("delete", numbers)
        self.error = None
        self.refused = None      # (status, body) of a 503 answer
        self.halt = threading.Event()

    def answered(self, st, r, want):
        if st == 503 and isinstance(r, dict) and set(r) == {"error"} and r["error"].get("message"):
            self.refused = (st, r)
            raise _Refused()
        assert st == 200 and r == want, (st, r)

    def run(self):
        conn = self.s.connection(timeout=30)
        n = 0
        try:
            while not self.halt.is_set():
                nums = list(range(n, n + self.per))
                n += self.per
                body = {"points": [{"id": point_id(self.tid, k), "vector": point_vec(self.tid, k),
                                    "payload": {"t": self.tid, "n": k, "s": "x" * (k % 50)}}
                                   for k in nums]}
                self.in_flight = ("upsert", nums)
                st, r = self.s.request("POST", f"/v1/collections/{self.name}/points", body, conn=conn)
                self.answered(st, r, {"upserted": self.per})
                self.acked.append(nums)
                self.in_flight = None
                if len(self.acked) % 3 == 0:
                    victims = [self.acked[-2][1], self.acked[-2][4]]
                    self.in_flight = ("delete", victims)
                    st, r = self.s.request("POST", f"/v1/collections/{self.name}/points/delete",
                                           {"ids": [point_id(self.tid, k) for k in victims]}, conn=conn)
                    self.answered(st, r, {"deleted": 2})
                    self.deleted.update(victims)
                    self.in_flight = None
        except _Refused:
            pass
        except Exception as e:  # an AssertionError: a wrong answer; others: the server went away
            self.error = e
        finally:
            conn.close()


def verify_writers(s, name, writers, extra=0):
    """Every acknowledged upsert is there with its vector and payload (unless
    an acknowledged delete removed it); every acknowledged delete stuck; the
    batch in flight is all there or not at all."""
    expected = 0  # points of these writers (the collection also holds `extra` others)
    for w in writers:
        acked = [k for b in w.acked for k in b]
        maybe = set(w.in_flight[1]) if w.in_flight and w.in_flight[0] == "delete" else set()
        present = [k for k in acked if k not in w.deleted and k not in maybe]
        ids = [point_id(w.tid, k) for k in present]
        got = ok(s.request("POST", f"/v1/collections/{name}/points/get",
                           {"ids": ids, "with_vector": True, "with_payload": True}))["points"]
        assert [p["id"] for p in got] == ids, f"writer {w.tid}: acknowledged points missing"
        for k, p in zip(present, got):
            assert p["vector"] == point_vec(w.tid, k), (w.tid, k)
            assert p["payload"] == {"t": w.tid, "n": k, "s": "x" * (k % 50)}, (w.tid, k)
        gone = ok(s.request("POST", f"/v1/collections/{name}/points/get",
                            {"ids": [point_id(w.tid, k) for k in w.deleted]}))["points"]
        if w.in_flight and w.in_flight[0] == "delete":
            gone = [p for p in gone if p["id"] not in {point_id(w.tid, k) for k in w.in_flight[1]}]
        assert gone == [], f"writer {w.tid}: acknowledged deletes undone: {gone}"
        expected += len(present)
        if w.in_flight and w.in_flight[0] == "upsert":
            nums = w.in_flight[1]
            got = ok(s.request("POST", f"/v1/collections/{name}/points/get",
                               {"ids": [point_id(w.tid, k) for k in nums], "with_vector": True}))["points"]
            assert len(got) in (0, len(nums)), f"writer {w.tid}: half a batch ({len(got)} of {len(nums)})"
            for p in got:
                k = nums[[point_id(w.tid, j) for j in nums].index(p["id"])]
                assert p["vector"] == point_vec(w.tid, k)
            expected += len(got)
        elif w.in_flight and w.in_flight[0] == "delete":
            # an unanswered delete: both points gone or both there, intact
            nums = w.in_flight[1]
            left = ok(s.request("POST", f"/v1/collections/{name}/points/get",
                                {"ids": [point_id(w.tid, k) for k in nums], "with_vector": True}))["points"]
            assert len(left) in (0, len(nums)), f"writer {w.tid}: half a delete"
            for k, p in zip(nums, left):
                assert p["vector"] == point_vec(w.tid, k)
            expected += len(left)
    # nothing else is there
    assert count(s, name) == expected + extra
    return expected


def start_writers(s, name, n, first=0):
    """n writers with thread ids first, first+1, ..., started."""
    ws = [Writer(s, name, t) for t in range(first, first + n)]
    for w in ws:
        w.start()
    return ws


def stop_writers(ws, refusals=False):
    """Halt the writers and wait for them: each has ended, none saw a wrong
    answer (an AssertionError; a connection the server dropped is fine),
    and none was refused with a 503 unless `refusals` (SIGTERM)."""
    for w in ws:
        w.halt.set()
    for w in ws:
        w.join(30)
        assert not w.is_alive(), f"writer {w.tid} still running"
        assert not isinstance(w.error, AssertionError), w.error
        assert refusals or w.refused is None, w.refused


def wait_acked(ws, batches, limit=60):
    t0 = time.time()
    while sum(len(w.acked) for w in ws) < batches:
        assert time.time() - t0 < limit, "the writers made no progress"
        for w in ws:
            assert w.error is None or not w.is_alive(), w.error
            if w.error is not None or w.refused is not None:
                raise AssertionError(f"writer {w.tid} failed early: {w.error!r} {w.refused}")
        time.sleep(0.02)


def test_learned_ef_survives_restart(tmp_path):
    """The default ef learned from the queries (HTTP.md, collection info) is
    saved with the collection: after SIGTERM and a restart, info shows the
    same tuning before any query and searches run with it; check passes."""
    data = tmp_path / "data"
    x = clustered(3000, 12, seed=51)
    q = clustered(150, 12, seed=52, spread=2.0)
    with serve(data) as s:
        ok(s.request("PUT", "/v1/collections/t", {"dimension": 12, "metric": "l2",
                                                  "index": {"type": "hnsw", "m": 4,
                                                            "ef_construction": 8}}), 201)
        ok(s.request("POST", "/v1/collections/t/points",
                     {"points": [{"id": i, "vector": vec(v)} for i, v in enumerate(x)]}))
        for v in q:
            ok(s.request("POST", "/v1/collections/t/search", {"vector": vec(v), "k": 10}))
        for _ in range(600):
            tuned = ok(s.request("GET", "/v1/collections/t"))["search"]
            if tuned["sample_queries"]:
                break
            time.sleep(0.1)
        assert tuned["sample_queries"] >= 100
    check_ok(data)
    assert (data / "t" / "tuning").exists()
    with serve(data) as s:
        assert ok(s.request("GET", "/v1/collections/t"))["search"] == tuned
        r = ok(s.request("POST", "/v1/collections/t/search",
                         {"vector": vec(q[0]), "k": 10, "explain": True}))
        assert r["explain"]["ef"] == tuned["ef"]


def test_kill_9_loses_no_acknowledged_write(tmp_path):
    data = tmp_path / "data"
    with serve(data) as s:
        ok(s.request("PUT", "/v1/collections/k", {"dimension": DIM, "metric": "l2",
                                                  "index": {"type": "hnsw", "m": 8, "ef_construction": 32}}), 201)
        ok(s.request("PUT", "/v1/collections/kf", {"dimension": DIM, "metric": "l1", "index": "flat"}), 201)
        ws = start_writers(s, "k", 3) + start_writers(s, "kf", 1, first=9)
        wait_acked(ws, 150)
        assert s.stop(signal.SIGKILL) == -9
    stop_writers(ws)
    assert sum(len(w.acked) for w in ws) >= 150
    check_ok(data)  # after kill -9: a torn tail is no damage

    with serve(data) as s:
        n_k = verify_writers(s, "k", ws[:3])
        n_kf = verify_writers(s, "kf", ws[3:])
        assert n_k > 0 and n_kf > 0
        # searchable after recovery: an exact search finds an acknowledged point
        w = ws[0]
        k = w.acked[0][0]
        hits = ok(s.request("POST", "/v1/collections/k/search",
                            {"vector": point_vec(w.tid, k), "k": 1, "exact": True}))["results"]
        assert hits[0]["distance"] == 0
        # and writable
        ok(s.request("POST", "/v1/collections/k/points",
                     {"points": [{"id": "after", "vector": [0.5] * DIM}]}))
    check_ok(data)
    with serve(data) as s:
        assert ok(s.request("GET", "/v1/collections/k/points/after"))["vector"] == [0.5] * DIM
        verify_writers(s, "kf", ws[3:])


def test_kill_9_twice_in_a_row(tmp_path):
    """A crash, a restart that writes more, and a second crash."""
    data = tmp_path / "data"
    with serve(data) as s:
        ok(s.request("PUT", "/v1/collections/k", {"dimension": DIM, "metric": "l2",
                                                  "index": {"type": "hnsw", "m": 8, "ef_construction": 32}}), 201)
        ws = start_writers(s, "k", 2)
        wait_acked(ws, 20)
        assert s.stop(signal.SIGKILL) == -9
    stop_writers(ws)
    with serve(data) as s:
        first = verify_writers(s, "k", ws)
        settled = writers_points(s, "k", ws)  # as the first recovery left them
        assert len(settled) == first
        ws2 = start_writers(s, "k", 2, first=5)
        wait_acked(ws2, 20)
        assert s.stop(signal.SIGKILL) == -9
    stop_writers(ws2)
    check_ok(data)
    with serve(data) as s:
        # the first writers' points, as the first recovery settled them
        assert writers_points(s, "k", ws) == settled
        verify_writers(s, "k", ws2, extra=first)
    check_ok(data)


def writers_points(s, name, ws):
    """Every point the writers ever sent (acknowledged or not) that is there,
    with vector and payload."""
    ids = []
    for w in ws:
        sent = [k for b in w.acked for k in b] + (w.in_flight[1] if w.in_flight and w.in_flight[0] == "upsert" else [])
        ids += [point_id(w.tid, k) for k in sent]
    return ok(s.request("POST", f"/v1/collections/{name}/points/get",
                        {"ids": ids, "with_vector": True, "with_payload": True}))["points"]


def test_sigterm_during_a_write_stream(tmp_path):
    """SIGTERM while writers stream: exit 0 within 30 s, every acknowledged
    write there after a restart, and check passes."""
    data = tmp_path / "data"
    with serve(data) as s:
        ok(s.request("PUT", "/v1/collections/k", {"dimension": DIM, "metric": "l2",
                                                  "index": {"type": "hnsw", "m": 8, "ef_construction": 32}}), 201)
        ws = start_writers(s, "k", 3)
        wait_acked(ws, 30)
    stop_writers(ws, refusals=True)
    check_ok(data)
    with serve(data) as s:
        verify_writers(s, "k", ws)


def test_sigterm_answers_every_request_it_applied(tmp_path):
    """HTTP.md: SIGTERM finishes the requests in flight. A write the server
    applied must have had its answer sent: an upsert that is on disk after
    the restart while its client saw the connection close without an answer
    was applied but not answered. Several rounds, as it is a race."""
    data = tmp_path / "data"
    dropped = []
    for rnd in range(4):
        with serve(data) as s:
            if rnd == 0:
                ok(s.request("PUT", "/v1/collections/k", {"dimension": DIM, "metric": "l2"}), 201)
            ws = start_writers(s, "k", 3, first=10 * rnd)
            wait_acked(ws, 30 + 20 * rnd)
        stop_writers(ws, refusals=True)
        with serve(data) as s:
            for w in ws:
                if w.in_flight and w.in_flight[0] == "upsert":
                    got = ok(s.request("POST", "/v1/collections/k/points/get",
                                       {"ids": [point_id(w.tid, k) for k in w.in_flight[1]]}))["points"]
                    if got:
                        dropped.append((rnd, w.tid, w.refused or repr(w.error)))
    assert not dropped, ("upserts applied but never answered, or answered with an error "
                         f"(round, writer, what the client saw): {dropped}")


def test_fsync_batch_kill_9_stays_consistent(tmp_path):
    """--fsync batch answers before the fsync: the last few ms may be lost
    on kill -9, but what is there is whole and correct, and check passes."""
    data = tmp_path / "data"
    with serve(data, "--fsync", "batch") as s:
        ok(s.request("PUT", "/v1/collections/b", {"dimension": DIM, "metric": "l2", "index": "flat"}), 201)
        ws = start_writers(s, "b", 2)
        wait_acked(ws, 30)
        assert s.stop(signal.SIGKILL) == -9
    stop_writers(ws)
    check_ok(data)
    with serve(data, "--fsync", "batch") as s:
        pts = every_point(s, "b")
        by = {}
        for p in pts:
            by.setdefault(p["payload"]["t"], []).append(p)
        for w in ws:
            for p in by.get(w.tid, []):
                k = p["payload"]["n"]
                assert p["id"] == point_id(w.tid, k)
                assert p["vector"] == point_vec(w.tid, k)
                assert p["payload"] == {"t": w.tid, "n": k, "s": "x" * (k % 50)}
            # whole batches only (deletes aside): batch numbers present are a prefix
            nums = sorted(p["payload"]["n"] for p in by.get(w.tid, []))
            batches = {k // w.per for k in nums}
            assert batches == set(range(len(batches))), f"writer {w.tid}: batches {sorted(batches)}"
