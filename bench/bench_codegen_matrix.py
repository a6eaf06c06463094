"""Generated vectorised code against hand-written numpy (and torch, if this
environment has it; derive never depends on torch).

The tanh MLP with softmax and cross-entropy, W1 64 x 64, W2 10 x 64, on a
batch of 10,000 samples (x of shape (10000, 64), one-hot y): the module
``derive codegen`` writes (``batch_loss_and_gradients``: loss and gradients
summed over the batch) against the same computation written by hand with
matrix products.  All three must agree (exit code 1 if not). Goal: within 2x.
Also printed: the module's length in lines at n = 64 and n = 1024 (it does not
depend on the sizes). Run:

    .venv/bin/python bench/bench_codegen_matrix.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from derive.codegen.scalar import generate  # noqa: E402
from derive.codegen.matrix import load  # noqa: E402
from derive.problems.matrix_solution import MatrixSpecProblem  # noqa: E402

B, N, K = 10_000, 64, 10


def spec(n: int) -> dict:
    return {"name": f"tanh MLP n={n}",
            "parameters": {"W1": {"shape": [n, n], "value": 0.01}, "b1": {"shape": [n], "value": 0},
                           "W2": {"shape": [K, n], "value": 0.01}, "b2": {"shape": [K], "value": 0}},
            "inputs": {"x": {"shape": [n], "value": 0.5}},
            "targets": {"y": {"shape": [K], "value": [1] + [0] * (K - 1)}},
            "forward": {"z1": "W1 @ x + b1", "h": "tanh(z1)", "z2": "W2 @ h + b2", "p": "softmax(z2)"},
            "loss": "-sum(y * log(p))"}


def by_hand(W1, b1, W2, b2, x, y):
    z1 = x @ W1.T + b1
    h = np.tanh(z1)
    z2 = h @ W2.T + b2
    m = z2.max(axis=1, keepdims=True)
    e = np.exp(z2 - m)
    s = e.sum(axis=1, keepdims=True)
    p = e / s
    loss = -np.sum(y * (z2 - m - np.log(s)))
    dz2 = p - y
    dz1 = (dz2 @ W2) * (1 - h * h)
    return loss, {"W1": dz1.T @ x, "b1": dz1.sum(axis=0), "W2": dz2.T @ h, "b2": dz2.sum(axis=0)}


def best(f, repeat=5):
    out = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        out = min(out, time.perf_counter() - t)
    return out


def main() -> int:
    module = load(generate(MatrixSpecProblem(spec(N), "bench")))
    lines_1024 = len(generate(MatrixSpecProblem(spec(1024), "bench")).splitlines())
    rng = np.random.default_rng(0)
    vals = {"W1": rng.standard_normal((N, N)) / 8, "b1": rng.standard_normal(N) / 8,
            "W2": rng.standard_normal((K, N)) / 8, "b2": rng.standard_normal(K) / 8,
            "x": rng.standard_normal((B, N)), "y": np.eye(K)[rng.integers(0, K, B)]}
    loss, grads = module.batch_loss_and_gradients(**vals)
    ref_loss, ref = by_hand(**vals)
    ok = np.isclose(loss, ref_loss, rtol=1e-10) and all(np.allclose(grads[k], ref[k], rtol=1e-9, atol=1e-9)
                                                        for k in ref)
    t_gen = best(lambda: module.batch_loss_and_gradients(**vals))
    t_hand = best(lambda: by_hand(**vals))
    print(f"tanh MLP, softmax-CE, n = {N}, batch = {B} (best of 5)")
    print(f"  generated module   {t_gen * 1e3:8.2f} ms")
    print(f"  hand-written numpy {t_hand * 1e3:8.2f} ms    ratio {t_gen / t_hand:.2f}")
    try:
        import torch
    except ImportError:
        print("  torch: not importable here (only compared when it is)")
    else:
        tv = {k: torch.tensor(v, requires_grad=k in ("W1", "b1", "W2", "b2")) for k, v in vals.items()}

        def run_torch():
            for k in ("W1", "b1", "W2", "b2"):
                tv[k].grad = None
            z = torch.tanh(tv["x"] @ tv["W1"].T + tv["b1"]) @ tv["W2"].T + tv["b2"]
            out = -(tv["y"] * torch.log_softmax(z, dim=1)).sum()
            out.backward()

        run_torch()
        ok = ok and np.allclose(tv["W1"].grad.numpy(), ref["W1"], rtol=1e-9, atol=1e-9)
        t_torch = best(run_torch)
        print(f"  torch (CPU)        {t_torch * 1e3:8.2f} ms    ratio {t_gen / t_torch:.2f}")
    print(f"  module length: {len(generate(MatrixSpecProblem(spec(N), 'bench')).splitlines())} lines at "
          f"n = {N}, {lines_1024} at n = 1024 (without the defaults: "
          f"{len([ln for ln in generate(MatrixSpecProblem(spec(N), 'bench')).splitlines() if not ln.startswith('    ' + chr(39))])})")
    if not ok:
        print("the generated module and the hand-written code disagree")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
