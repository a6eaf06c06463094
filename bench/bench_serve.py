"""Benchmark: `derive serve` answering POST /api/check for the relu net.

    .venv/bin/python bench/bench_serve.py [--requests N]

Starts the server on 127.0.0.1 (a free port, in this process's thread, its
workers in their own processes), warms it up, then sends N check requests
one after another, each with all 29 answers of mlp-relu-regression (a third
right, a third rounded, a third wrong, so every verdict path runs), over one keep-alive
connection, and prints the median and the 95th percentile of the round
trip. In the same run it times the same check called in-process (no HTTP,
no worker) and prints the ratio: what the server adds. The target is a
median under 100 ms.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from derive.grading.verdicts import check  # noqa: E402
from derive.problems import load  # noqa: E402
from derive.serve.server import close, make_server  # noqa: E402
from derive.document.variants import answers_of  # noqa: E402

TARGET = "mlp-relu-regression"


def answers() -> dict:
    out = {}
    for k, (name, v) in enumerate(answers_of(load(TARGET).solve()).items()):
        out[name] = [repr(v), f"{v:.3f}", repr(-v if v else 1.0)][k % 3]
    return out


def percentile(xs: list, q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    n = ap.parse_args().requests
    body = json.dumps({"target": TARGET, "answers": answers()}).encode()
    server = make_server("127.0.0.1", 0, workers=2, warm=True)      # as `derive serve`
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host, port = server.server_address[:2]
        conn = http.client.HTTPConnection(host, port, timeout=30)

        def once() -> dict:
            conn.request("POST", "/api/check", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = json.loads(r.read())
            assert r.status == 200, data
            return data

        t0 = time.perf_counter()
        first = once()
        cold = time.perf_counter() - t0
        for _ in range(10):
            once()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            once()
            times.append(time.perf_counter() - t0)
        conn.close()
    finally:
        close(server)
    solution = load(TARGET).solve()
    sent = {k: str(v) for k, v in json.loads(body)["answers"].items()}
    local = []
    for _ in range(n):
        t0 = time.perf_counter()
        check(solution, sent, target=TARGET)
        local.append(time.perf_counter() - t0)
    med, p95 = statistics.median(times), percentile(times, 0.95)
    lmed = statistics.median(local)
    print(f"POST /api/check, {TARGET}, {len(sent)} answers ({first['summary']['total']} judged), {n} requests")
    print(f"  first request (sent at once: it waits for its worker's warm-up): {cold * 1000:.1f} ms")
    print(f"  median {med * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms  (target: median under 100 ms)")
    print(f"  the same check in-process: median {lmed * 1000:.1f} ms; server / in-process = {med / lmed:.2f}")


if __name__ == "__main__":
    main()
