#!/usr/bin/python3
"""compare.py -- turn a bench/run.sh results directory into a markdown report.

Reads DIR/raw/<dataset>__r<round>__<tool>.jsonl (JSON lines of
bench/lib_bench, peers.py and bench/peer_memory.py), DIR/meta.json and
DIR/failures.txt, and prints to stdout:

  * the summary: needle / peer ratios against the targets
      HNSW QPS at recall@10 = 0.95 (needle / hnswlib)        >= 1.2
      needle's curve at or above hnswlib's, recall 0.90-0.99  every point
      HNSW build time, 2 build threads (needle / hnswlib)    <= 1.0
      memory per vector (needle / hnswlib)                   <= 1.0
      flat, one query per call (needle / FAISS IndexFlat)    >= 3.0
      flat, 1000 queries in one call (needle / FAISS)        >= 1.0
  * per data set: QPS at recall 0.90, 0.91, ..., 0.99, builds, memory, flat
    numbers and the raw recall-QPS points of every round.

QPS at a given recall: each round's points are reduced to their Pareto
frontier (no point both slower and less accurate than another), then
interpolated linearly in recall and geometrically in QPS between the two
frontier points around the target. Across rounds the best value of each
system is taken (each round is itself best-of --repeat), and the per-round
ratios are listed too. A target recall below a curve's first point gets that
point's QPS marked ">=" (the system is at least that fast there); one above
its last point is "not reached".

With --svg-dir, also writes <dir>/bench-<dataset>.svg: recall-QPS curves of
both systems (every round), plain SVG, no plotting library.

    /usr/bin/python3 bench/compare.py --results build/bench [--svg-dir docs]
"""
import argparse
import glob
import json
import math
import os
import statistics
import sys

TARGETS = [round(0.90 + 0.01 * i, 2) for i in range(10)]
HEADLINE = 0.95


# ---------------------------------------------------------------- loading

def load(results):
    runs = []  # (dataset, round, tool, [records])
    for path in sorted(glob.glob(os.path.join(results, "raw", "*.jsonl"))):
        name = os.path.basename(path)[:-len(".jsonl")]
        parts = name.split("__")
        if len(parts) != 3 or not parts[1].startswith("r"):
            continue
        ds, rnd, tool = parts[0], int(parts[1][1:]), parts[2]
        recs = []
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        recs.append(json.loads(line))
                    except ValueError:
                        pass
        runs.append((ds, rnd, tool, recs))
    meta = {}
    try:
        with open(os.path.join(results, "meta.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        pass
    failures = []
    try:
        with open(os.path.join(results, "failures.txt")) as f:
            failures = [l.rstrip("\n") for l in f if l.strip()]
    except OSError:
        pass
    return runs, meta, failures


class Data:
    def __init__(self):
        self.curves = {}  # system -> round -> [(ef, recall, qps)]
        self.build = {}   # system -> round -> build_s (the build of the search run)
        self.extra_build = {}  # round -> hnswlib build_s of peer_memory.py
        self.mem = {}     # system -> round -> record
        self.flat = {}    # (system, mode) -> round -> record
        self.notes = []


def organize(runs):
    out = {}
    for ds, rnd, tool, recs in runs:
        d = out.setdefault(ds, Data())
        for r in recs:
            sysname = r.get("system")
            if tool == "needle-hnsw":
                if r.get("event") == "build":
                    d.build.setdefault("needle", {})[rnd] = r["build_s"]
                    d.mem.setdefault("needle", {})[rnd] = r
                    if r.get("count") != r.get("n"):
                        d.notes.append(f"round {rnd}: needle's collection holds {r.get('count')} "
                                       f"points after upserting {r.get('n')}")
                elif "ef" in r:
                    d.curves.setdefault("needle", {}).setdefault(rnd, []).append(
                        (r["ef"], r["recall"], r["qps"]))
            elif tool == "hnswlib" and sysname == "hnswlib" and "ef" in r:
                d.curves.setdefault("hnswlib", {}).setdefault(rnd, []).append(
                    (r["ef"], r["recall"], r["qps"]))
                d.build.setdefault("hnswlib", {})[rnd] = r["build_s"]
            elif tool == "hnswlib-mem" and r.get("event") == "build":
                d.mem.setdefault("hnswlib", {})[rnd] = r
                d.extra_build[rnd] = r["build_s"]
            elif tool in ("needle-flat", "faiss-flat") and r.get("index") == "flat" and "mode" in r:
                key = ("needle" if tool == "needle-flat" else "faiss", r["mode"])
                d.flat.setdefault(key, {})[rnd] = r
            elif tool == "needle-flat" and r.get("event") == "build" and r.get("count") != r.get("n"):
                d.notes.append(f"round {rnd}: needle's flat collection holds {r.get('count')} "
                               f"points after upserting {r.get('n')}")
    return out


# ---------------------------------------------------------------- curves

def frontier(points):
    """Pareto frontier of (ef, recall, qps): recall ascending, qps descending."""
    pts = sorted(points, key=lambda p: (p[1], p[2]))
    keep = []
    best_qps = -1.0
    for ef, rec, qps in reversed(pts):
        if qps > best_qps:
            keep.append((rec, qps))
            best_qps = qps
    keep.reverse()
    return keep


def qps_at(points, target):
    """(qps, flag): flag '' interpolated, '>=' curve starts above target,
    None when the target recall is not reached."""
    f = frontier(points)
    if not f or f[-1][0] < target:
        return None, None
    if f[0][0] >= target:
        return f[0][1], ">="
    for (r1, q1), (r2, q2) in zip(f, f[1:]):
        if r1 < target <= r2:
            t = (target - r1) / (r2 - r1)
            return math.exp(math.log(q1) + t * (math.log(q2) - math.log(q1))), ""
    return None, None


def merged(curves_by_round):
    """One curve per system from all rounds: per ef, the mean recall and the
    best QPS (noise from other processes only ever slows a run down)."""
    by_ef = {}
    for pts in curves_by_round.values():
        for ef, rec, qps in pts:
            by_ef.setdefault(ef, []).append((rec, qps))
    return [(ef, sum(r for r, _ in v) / len(v), max(q for _, q in v)) for ef, v in sorted(by_ef.items())]


def best_at(curves_by_round, target):
    """(qps, flag) of the merged curve at the target recall."""
    return qps_at(merged(curves_by_round), target)


# ---------------------------------------------------------------- formatting

def fq(q, flag=""):
    if q is None:
        return "not reached"
    return f"{flag or ''}{q:,.0f}"


def fr(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}x"


def verdict(ok):
    return "–" if ok is None else ("**yes**" if ok else "**no**")


def table(rows, header):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------- summary

def summarize(ds, d):
    """Rows of the summary table and a dict of computed values."""
    rows = []
    n_cur, h_cur = d.curves.get("needle", {}), d.curves.get("hnswlib", {})
    # HNSW QPS at 0.95
    qn, fn_ = best_at(n_cur, HEADLINE)
    qh, fh = best_at(h_cur, HEADLINE)
    ratio = qn / qh if qn and qh else None
    exact = ratio is not None and not fn_ and not fh
    rows.append([ds, f"HNSW QPS at recall@10 = {HEADLINE}", fq(qn, fn_), f"hnswlib {fq(qh, fh)}",
                 fr(ratio) + ("" if exact or ratio is None else " (bound)"), ">= 1.2x",
                 verdict(None if ratio is None else ratio >= 1.2)])
    # whole curve
    worst, where, ok, missing = None, None, None, []
    if n_cur and h_cur:
        ok = True
        for t in TARGETS:
            a, fa = best_at(n_cur, t)
            b, fb = best_at(h_cur, t)
            if b is None:
                continue  # hnswlib does not reach it: needle is not below
            if a is None:
                ok = False
                missing.append(f"{t:.2f}")
                continue
            rt = a / b
            if worst is None or rt < worst:
                worst, where = rt, t
            if rt < 1.0:
                ok = False
    desc = "–"
    if worst is not None:
        desc = f"lowest {fr(worst)} (at {where:.2f})"
    if missing:
        desc += f"; needle does not reach {', '.join(missing)}"
    rows.append([ds, "needle's curve >= hnswlib's at recall 0.90..0.99", "", "", desc,
                 ">= 1.0x at every point", verdict(ok)])
    # build
    bn = min(d.build.get("needle", {}).values(), default=None)
    bh = min(list(d.build.get("hnswlib", {}).values()) + list(d.extra_build.values()), default=None)
    ratio_b = bn / bh if bn and bh else None
    rows.append([ds, f"HNSW build time, 2 threads (s, fastest build)", f"{bn:.1f}" if bn else "–",
                 f"hnswlib {bh:.1f}" if bh else "–", fr(ratio_b), "<= 1.0x",
                 verdict(None if ratio_b is None else ratio_b <= 1.0)])
    # memory
    mn = [r["bytes_per_vector"] for r in d.mem.get("needle", {}).values()]
    mh = [r["bytes_per_vector"] for r in d.mem.get("hnswlib", {}).values()]
    mn = statistics.median(mn) if mn else None
    mh = statistics.median(mh) if mh else None
    ratio_m = mn / mh if mn and mh else None
    rows.append([ds, "HNSW memory (bytes per vector, RSS growth)", f"{mn:,.0f}" if mn else "–",
                 f"hnswlib {mh:,.0f}" if mh else "–", fr(ratio_m), "<= 1.0x",
                 verdict(None if ratio_m is None else ratio_m <= 1.0)])
    # flat
    nqb = next((r.get("queries") for r in d.flat.get(("needle", "batch"), {}).values()), None) or "all"
    for mode, label, target in (("single", "flat exact, 1 query per call (QPS)", 3.0),
                                ("batch", f"flat exact, {nqb} queries per call, 1 thread (QPS)", 1.0)):
        a = max((r["qps"] for r in d.flat.get(("needle", mode), {}).values()), default=None)
        b = max((r["qps"] for r in d.flat.get(("faiss", mode), {}).values()), default=None)
        rt = a / b if a and b else None
        rows.append([ds, label, fq(a), f"FAISS {fq(b)}", fr(rt), f">= {target:g}x",
                     verdict(None if rt is None else rt >= target)])
    return rows


# ---------------------------------------------------------------- details

def details(ds, d):
    out = [f"### {ds}", ""]
    n_cur, h_cur = d.curves.get("needle", {}), d.curves.get("hnswlib", {})
    rounds = sorted(set(n_cur) | set(h_cur))
    if n_cur or h_cur:
        out += ["QPS at recall@10, interpolated on each system's merged curve (per ef: best QPS "
                "of all rounds, mean recall); \"per round\" = the same ratio from each round's "
                "own curves (needle round i / hnswlib round i):", ""]
        rows = []
        for t in TARGETS:
            a, fa = best_at(n_cur, t)
            b, fb = best_at(h_cur, t)
            per = []
            for r in rounds:
                x, _ = qps_at(n_cur.get(r, []), t)
                y, _ = qps_at(h_cur.get(r, []), t)
                per.append(f"{x / y:.2f}" if x and y else "–")
            rows.append([f"{t:.2f}", fq(a, fa), fq(b, fb), fr(a / b if a and b else None),
                         " / ".join(per)])
        out += [table(rows, ["recall", "needle QPS", "hnswlib QPS", "ratio", "per round"]), ""]

    if d.build or d.mem:
        rows = []
        for sysname in ("needle", "hnswlib"):
            for r in rounds or sorted(d.mem.get(sysname, {})):
                b = d.build.get(sysname, {}).get(r)
                m = d.mem.get(sysname, {}).get(r, {})
                eb = d.extra_build.get(r) if sysname == "hnswlib" else None
                rows.append([sysname, r, f"{b:.2f}" if b is not None else "–",
                             f"{eb:.2f}" if eb is not None else "–",
                             f"{m['bytes_per_vector']:,.0f}" if m else "–",
                             f"{m['anon_bytes_per_vector']:,.0f}" if m else "–",
                             f"{m['peak_bytes_per_vector']:,.0f}" if m and m.get("peak_bytes_per_vector") is not None else "–",
                             m.get("n", "–") if m else "–"])
        out += ["Builds (m=16, ef_construction=200, 2 build threads) and memory growth "
                "per vector (VmRSS, RssAnon, peak VmHWM; see the method in docs/BENCHMARKS.md). "
                "hnswlib builds twice per round, in peers.py and in peer_memory.py (which "
                "gives the memory); the summary compares needle's fastest build with the fastest "
                "of all of hnswlib's:", ""]
        out += [table(rows, ["system", "round", "build s", "build s (memory run)", "bytes/vector RSS",
                             "anon", "peak", "n"]), ""]

    if d.flat:
        rows = []
        for (sysname, mode), per in sorted(d.flat.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            for r, rec in sorted(per.items()):
                extra = ""
                if "p50_us" in rec:
                    extra = f"p50 {rec['p50_us']:.0f} µs, p99 {rec['p99_us']:.0f} µs"
                nq = rec.get("queries") or d.flat.get(("needle", mode), {}).get(r, {}).get("queries", "–")
                rows.append([mode, sysname, r, nq, f"{rec['qps']:,.1f}",
                             f"{rec['recall']:.4f}", extra])
        out += ["Flat (exact) search, one thread:", "",
                table(rows, ["mode", "system", "round", "queries", "QPS", "recall@10", "latency"]), ""]
        for mode in ("single", "batch"):
            for r, rec in d.flat.get(("needle", mode), {}).items():
                peer = d.flat.get(("faiss", mode), {}).get(r)
                if rec["recall"] < 0.999 or (peer and rec["recall"] + 0.002 < peer["recall"]):
                    d.notes.append(f"round {r}: needle's exact {mode} search has recall "
                                   f"{rec['recall']:.4f}" + (f" (FAISS {peer['recall']:.4f})" if peer else "")
                                   + " -- exact search should be ~1.0")

    if rounds:
        out += ["Raw recall-QPS points (ef: recall @ QPS):", ""]
        rows = []
        for sysname, cur in (("needle", n_cur), ("hnswlib", h_cur)):
            for r in sorted(cur):
                for ef, rec, qps in sorted(cur[r]):
                    rows.append([sysname, r, ef, f"{rec:.4f}", f"{qps:,.1f}"])
        out += [table(rows, ["system", "round", "ef", "recall@10", "QPS"]), ""]
    if d.notes:
        out += ["**Problems seen:**", ""] + [f"- {n}" for n in d.notes] + [""]
    return out


# ---------------------------------------------------------------- SVG

COLORS = {"needle": "#c0392b", "hnswlib": "#2471a3"}


def svg_plot(ds, d, path):
    series = []  # (system, label, points, is_merged)
    for sysname in ("needle", "hnswlib"):
        cur = d.curves.get(sysname, {})
        if not cur:
            continue
        m = sorted((rec, qps) for _, rec, qps in merged(cur) if qps > 0)
        series.append((sysname, f"{sysname} (best of {len(cur)} round{'s' if len(cur) > 1 else ''})", m, True))
        for r, pts in sorted(cur.items()):
            series.append((sysname, None, sorted((rec, qps) for _, rec, qps in pts if qps > 0), False))
    if not series:
        return False
    W, H, L, R, T, B = 680, 440, 70, 20, 40, 50
    recs = [x for _, _, p, _ in series for x, _ in p]
    x0 = min(max(math.floor(min(recs) * 20) / 20, 0.80), 0.90)
    x1 = 1.0
    qpss = [y for _, _, p, _ in series for x, y in p if x >= x0] or [y for _, _, p, _ in series for _, y in p]
    nice = [m * 10 ** e for e in range(-1, 9) for m in (1, 2, 5)]
    y0 = max(v for v in nice if v <= min(qpss))
    y1 = min(v for v in nice if v >= max(qpss))

    def X(v):
        return L + (v - x0) / (x1 - x0) * (W - L - R)

    def Y(v):
        return H - B - (math.log10(v) - math.log10(y0)) / (math.log10(y1) - math.log10(y0)) * (H - T - B)

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<defs><clipPath id="plot"><rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}"/>'
         f'</clipPath></defs>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{ds}: recall@10 vs QPS '
         f'(HNSW m=16, ef_construction=200, 1 search thread)</text>']
    # grid and ticks
    steps = 20 if x1 - x0 <= 0.3 else 10
    i = 0
    while True:
        v = round(math.ceil(x0 * steps - 1e-9) / steps + i / steps, 4)
        if v > x1 + 1e-9:
            break
        s.append(f'<line x1="{X(v):.1f}" y1="{T}" x2="{X(v):.1f}" y2="{H - B}" stroke="#e5e5e5"/>')
        s.append(f'<text x="{X(v):.1f}" y="{H - B + 16}" text-anchor="middle">{v:.2f}</text>')
        i += 1
    dec = 10 ** math.floor(math.log10(y0))
    while dec <= y1 * 1.0001:
        for m in (1, 2, 5):
            v = dec * m
            if y0 <= v <= y1 * 1.0001:
                s.append(f'<line x1="{L}" y1="{Y(v):.1f}" x2="{W - R}" y2="{Y(v):.1f}" '
                         f'stroke="{"#d0d0d0" if m == 1 else "#eeeeee"}"/>')
                s.append(f'<text x="{L - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
        dec *= 10
    s.append(f'<line x1="{X(HEADLINE):.1f}" y1="{T}" x2="{X(HEADLINE):.1f}" y2="{H - B}" '
             f'stroke="#777" stroke-dasharray="4 3"/>')
    s.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#333"/>')
    s.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">recall@10</text>')
    s.append(f'<text x="16" y="{(T + H - B) / 2}" text-anchor="middle" '
             f'transform="rotate(-90 16 {(T + H - B) / 2})">queries per second (log)</text>')
    s.append('<g clip-path="url(#plot)">')
    for sysname, label, p, is_merged in series:
        if is_merged:
            pts = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in p)
            s.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS[sysname]}" stroke-width="2"/>')
            for x, y in p:
                s.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3" fill="{COLORS[sysname]}"/>')
        else:  # single rounds: faint open dots
            for x, y in p:
                s.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="2.2" fill="none" '
                         f'stroke="{COLORS[sysname]}" stroke-opacity="0.45"/>')
    s.append('</g>')
    # legend
    ly = T + 14
    for sysname, label, _, is_merged in series:
        if not is_merged:
            continue
        s.append(f'<line x1="{L + 12}" y1="{ly}" x2="{L + 40}" y2="{ly}" stroke="{COLORS[sysname]}" '
                 f'stroke-width="2"/>')
        s.append(f'<text x="{L + 46}" y="{ly + 4}">{label}</text>')
        ly += 16
    s.append(f'<text x="{L + 12}" y="{ly + 4}" fill="#555">open dots: single rounds; '
             f'dashed line: recall {HEADLINE}</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")
    return True


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", required=True, help="bench/run.sh output directory")
    p.add_argument("--svg-dir", help="write bench-<dataset>.svg here")
    a = p.parse_args()

    runs, meta, failures = load(a.results)
    if not runs:
        raise SystemExit(f"compare: no results in {a.results}/raw")
    data = organize(runs)
    order = [ds for ds in ("fashion-mnist", "wordnet-glosses") if ds in data] + \
            sorted(ds for ds in data if ds not in ("fashion-mnist", "wordnet-glosses"))

    out = ["# needle vs hnswlib / FAISS", ""]
    if meta:
        out += [f"Run {meta.get('date', '?')}, needle {meta.get('commit', '?')}"
                + (f" (uncommitted src/include diff sha1 {meta['src_diff']})" if "dirty" in meta.get("commit", "") and meta.get("src_diff") else "")
                + ", "
                f"{meta.get('cpu', '?')} ({meta.get('cores', '?')} cores), load average "
                f"{meta.get('loadavg_start', '?')} at start, {meta.get('loadavg_end', '?')} at end. "
                f"hnswlib {meta.get('hnswlib', '?')}, FAISS {meta.get('faiss', '?')}, "
                f"OpenBLAS {meta.get('openblas', '?')}. {meta.get('rounds', '?')} interleaved "
                f"round(s), each measurement best of {meta.get('repeat', '?')}"
                + (". **QUICK MODE (subsets; not comparable figures)**" if meta.get("quick") else "")
                + ".", ""]
    rows = []
    for ds in order:
        rows += summarize(ds, data[ds])
    out += ["## Summary", "",
            table(rows, ["data set", "measure", "needle", "peer", "needle / peer", "target", "met"]), ""]
    if failures:
        out += ["**Failed steps** (see raw/*.log):", ""] + [f"- `{f}`" for f in failures] + [""]
    out += ["## Details", ""]
    for ds in order:
        out += details(ds, data[ds])
        if a.svg_dir:
            path = os.path.join(a.svg_dir, f"bench-{ds}.svg")
            if svg_plot(ds, data[ds], path):
                out += [f"Plot: `{path}`", ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
