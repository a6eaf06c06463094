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

from derive.engine.reverse import reverse  # noqa: E402
from derive.problems.matrix_solution import MatrixSpecProblem  # noqa: E402
from derive.engine.spec import read_file  # noqa: E402


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


def solve_time(data, values, repeat: int = 3) -> tuple:
    """(solve, backward pass alone, JSON) in seconds, best of ``repeat``."""
    best = [float("inf")] * 3
    for _ in range(repeat):
        start = time.perf_counter()
        problem = MatrixSpecProblem(data, "bench")
        sol = problem.solve(values)
        solved = time.perf_counter()
        sol.to_json()
        done = time.perf_counter()
        if not all(c["passed"] for c in sol.checks):
            print("check failed:", sol.checks)
            sys.exit(1)
        leaves = dict(sol.leaves)
        forward = problem.spec.graph.forward(leaves)
        t0 = time.perf_counter()
        reverse(problem.spec.graph, forward)
        backward = time.perf_counter() - t0
        best = [min(b, t) for b, t in zip(best, (solved - start, backward, done - solved))]
    return tuple(best)


def table(label: str, sizes, make, base_name: str, expected=None):
    print(f"{label:>6} {'solve s':>9} {'ratio':>7} {'backward s':>11} {'ratio':>7} {'JSON s':>8}"
          + (f" {'expected':>9}" if expected else ""))
    base = None
    for size in sizes:
        t = solve_time(*make(size), repeat=1 if size >= 1000 and expected else 3)
        base = base or t
        line = (f"{size:>6} {t[0]:>9.3f} {t[0] / base[0]:>7.2f} {t[1]:>11.3f} {t[1] / base[1]:>7.2f} "
                f"{t[2]:>8.3f}")
        print(line + (f" {expected(size):>9.1f}" if expected else ""))


def main() -> int:
    print("tanh MLP with softmax-CE, W1 n x n; ratios to n = 16 (goal: 3 at n = 1024). 'solve' is")
    print("derive solve without printing: forward, matrix backward pass, both checks, one SGD step;")
    print("'backward' the matrix-form backward pass alone (symbolic rules and their values).")
    table("n", (16, 64, 256, 1024), mlp, "n=16")
    print("\nRNN of examples/rnn-bptt.yaml unrolled for T steps; ratios to T = 16 (linear: T/16)")
    table("T", (16, 100, 1000), rnn, "T=16", expected=lambda T: T / 16)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
