"""Cost of the matrix engine as the sizes grow: a derivation works on shapes,
so its symbolic work is the same at every size and only numpy's arithmetic
grows.

* A tanh MLP with softmax and cross-entropy, W1 n x n, n = 16, 64, 256, 1024
  (W2 10 x n): ``derive solve`` of the spec as a large vector problem
  (forward pass, matrix-form backward pass, the numpy-VJP check, finite
  differences along 3 directions, one SGD step, the JSON), and its ratio to
  n = 16.  Goal: at most 3x at n = 1024.
* The RNN of examples/rnn-bptt.yaml unrolled for T = 16, 100, 1000: the same,
  and the ratio to T = 16 against 1000/16 = 62.5 (linear in T).

Every run must pass its checks (exit code 1 if not). Run:

    .venv/bin/python bench/bench_matrix.py
"""
from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from derive.msolution import MatrixSpecProblem  # noqa: E402
from derive.spec import read_file  # noqa: E402


def mlp(n: int):
    rng = np.random.default_rng(n)
    data = {"name": f"tanh MLP n={n}",
            "parameters": {"W1": {"shape": [n, n]}, "b1": {"shape": [n], "value": 0},
                           "W2": {"shape": [10, n]}, "b2": {"shape": [10], "value": 0}},
            "inputs": {"x": {"shape": [n]}},
            "targets": {"y": {"shape": [10], "value": [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]}},
            "forward": {"z1": "W1 @ x + b1", "h": "tanh(z1)", "z2": "W2 @ h + b2", "p": "softmax(z2)"},
            "loss": "-sum(y * log(p))", "optimizer": {"rule": "sgd", "lr": 0.1}}
    values = {"W1": rng.standard_normal((n, n)) / np.sqrt(n), "W2": rng.standard_normal((10, n)) / np.sqrt(n),
              "x": rng.standard_normal(n)}
    return data, values


def rnn(T: int):
    data = copy.deepcopy(read_file(ROOT / "examples" / "rnn-bptt.yaml"))
    rng = np.random.default_rng(T)
    data["unroll"]["T"] = T
    data["inputs"]["I"] = {"shape": ["T", 2]}
    data["targets"]["Y"] = {"shape": ["T", 2]}
    return data, {"I": rng.standard_normal((T, 2)), "Y": rng.standard_normal((T, 2)) / 2}


def solve_time(data, values, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        sol = MatrixSpecProblem(data, "bench").solve(values)
        sol.to_json()
        best = min(best, time.perf_counter() - start)
        if not all(c["passed"] for c in sol.checks):
            print("check failed:", sol.checks)
            sys.exit(1)
    return best


def main() -> int:
    print("tanh MLP with softmax-CE, W1 n x n (best of 3)")
    print(f"{'n':>6} {'seconds':>9} {'ratio to n=16':>14}")
    base = None
    for n in (16, 64, 256, 1024):
        t = solve_time(*mlp(n))
        base = base or t
        print(f"{n:>6} {t:>9.3f} {t / base:>14.2f}")
    print("\nRNN of examples/rnn-bptt.yaml unrolled for T steps (best of 3)")
    print(f"{'T':>6} {'seconds':>9} {'ratio to T=16':>14} {'T/16':>7}")
    base = None
    for T in (16, 100, 1000):
        t = solve_time(*rnn(T), repeat=1 if T >= 1000 else 3)
        base = base or t
        print(f"{T:>6} {t:>9.3f} {t / base:>14.2f} {T / 16:>7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
