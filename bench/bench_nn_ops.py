"""Cost of the nn operations: a CNN's matrix-form derivation as the image
grows, and the vectorised erf (GELU's kernel) against math.erf per entry.

The CNN is the one of ``examples/cnn.yaml`` (conv2d 3 x 3 with 2 -> 4
channels, ReLU, 2 x 2 max-pooling, flatten, a linear layer with softmax
cross-entropy) on a 2 x H x H input.  For H = 8, 16, 32, 64 it times building
the tensor graph, the forward pass, the matrix reverse mode and its two
checks (numpy VJPs, directional finite differences); the derivation is one
rule per operation whatever the size, so the time should grow with the
numpy work only.  Run:

    .venv/bin/python bench/bench_nn_ops.py

It prints each time, the ratio H=64 / H=8 against the ratio of entries
(64), and the erf speed-up on 10^6 entries.  Every check must pass and erf
must agree with math.erf to 2 ulp (exit code 1 if not).
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import derive.engine  # noqa: E402,F401
from derive.engine import nn_kernels  # noqa: E402
from derive.engine.mcheck import checks  # noqa: E402
from derive.engine.reverse import reverse  # noqa: E402
from derive.engine.tgraph import TGraph  # noqa: E402


def cnn(H: int, rng) -> tuple:
    g = TGraph("cnn")
    X = g.leaf("X", (2, H, H), "input"); y = g.leaf("y", (3,), "target")
    K = g.leaf("K", (4, 2, 3, 3), "parameter"); b = g.leaf("b", (4, 1, 1), "parameter")
    n = 4 * ((H - 2) // 2) ** 2
    W = g.leaf("W", (3, n), "parameter"); c = g.leaf("c", (3,), "parameter")
    Z = g.define("Z", g.apply("add", g.apply("conv2d", X, K), b))
    P = g.define("P", g.apply("maxpool2d", g.define("A", g.apply("relu", Z)), size=2))
    o = g.define("o", g.apply("add", g.apply("matmul", W, g.define("f", g.apply("flatten", P))), c))
    p = g.define("p", g.apply("softmax", o))
    g.define("L", g.apply("neg", g.apply("sum", g.apply("mul", y, g.apply("log", p)))), kind="loss")
    leaves = {"X": rng.standard_normal((2, H, H)), "y": np.array([0.0, 1.0, 0.0]),
              "K": rng.standard_normal((4, 2, 3, 3)) / 3, "b": np.zeros((4, 1, 1)),
              "W": rng.standard_normal((3, n)) / math.sqrt(n), "c": np.zeros(3)}
    return g, leaves


def time_cnn(H: int, repeat: int = 3) -> tuple:
    best, ok = float("inf"), True
    for r in range(repeat):
        rng = np.random.default_rng(r)
        t = time.perf_counter()
        g, leaves = cnn(H, rng)
        d = reverse(g, g.forward(leaves))
        cs = checks(g, leaves, d)
        best = min(best, time.perf_counter() - t)
        ok = ok and all(c["passed"] for c in cs)
    return best, ok


def main() -> int:
    ok = True
    times = {}
    for H in (8, 16, 32, 64):
        times[H], passed = time_cnn(H)
        ok = ok and passed
        print(f"CNN 2 x {H} x {H}: {times[H] * 1000:8.1f} ms  (graph, forward, reverse, both checks)"
              f"{'' if passed else '  CHECK FAILED'}")
    print(f"ratio H=64 / H=8: {times[64] / times[8]:.1f} (entries grow 64x)")

    x = np.random.default_rng(0).standard_normal(1_000_000)
    per_entry = np.vectorize(math.erf, otypes=[float])
    t_ours = t_ref = float("inf")
    for _ in range(3):      # best of three, alternating, on a shared machine
        t = time.perf_counter(); ours = nn_kernels.erf(x); t_ours = min(t_ours, time.perf_counter() - t)
        t = time.perf_counter(); ref = per_entry(x); t_ref = min(t_ref, time.perf_counter() - t)
    err = float(np.max(np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-300)))
    ok = ok and err < 5e-16
    print(f"erf on 10^6 entries: {t_ours * 1000:.0f} ms vectorised, {t_ref * 1000:.0f} ms math.erf per entry "
          f"(np.vectorize), speed-up {t_ref / t_ours:.1f}x, max relative difference {err:.1e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
