"""Cost of the matrix engine as the sizes grow: a derivation works on shapes,
so its symbolic work is the same at every size and only numpy's arithmetic
grows.

* A tanh MLP with softmax and cross-entropy, W1 n x n, n = 16, 64, 256, 1024
  (W2 10 x n), its numbers in a ``--values`` JSON file (1M entries at
  n = 1024, 23 MB).  Goal: ``derive solve`` at n = 1024 in at most 3x its time
  at n = 16.
* The RNN of examples/rnn-bptt.yaml unrolled for T = 16, 100, 1000 (I and Y
  from the values file): the ratio to T = 16 against 1000/16 = 62.5 (linear
  in T).

Two tables for each:

* ``command``: the whole command a user runs, ``derive solve SPEC --values
  FILE`` in a fresh process (start-up, reading the values, forward pass,
  matrix-form backward pass, the numpy-VJP check, finite differences along 3
  directions, one SGD step, the printed solution), best of 3.  This is the
  goal's measure.
* ``in process``: ``MatrixSpecProblem(...).solve(values)`` alone, the
  backward pass alone, and ``to_json``.  At n = 16 a solve is a few
  milliseconds of Python, so its ratio shows how the arithmetic on 1M entries
  (each pass over W1 about 1 ms) compares with that fixed work, not the
  derivation: the backward pass's ratio stays small.

Every run must pass its checks (exit code 1 if not). Run:

    .venv/bin/python bench/bench_matrix.py
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from derive.engine.reverse import reverse  # noqa: E402
from derive.problems.matrix_solution import MatrixSpecProblem  # noqa: E402
from derive.engine.spec import read_file  # noqa: E402

DERIVE = [sys.executable, "-m", "derive"]


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


def command_time(data, values, folder: Path, repeat: int = 3) -> float:
    """Best wall time of ``derive solve SPEC --values FILE`` in a fresh process."""
    spec, vals = folder / "spec.yaml", folder / "values.json"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    vals.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in values.items()}))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run = subprocess.run(DERIVE + ["solve", str(spec), "--values", str(vals)], cwd=ROOT,
                             capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        if run.returncode != 0 or "passed" not in run.stdout or "FAILED" in run.stdout:
            print("derive solve failed:", run.returncode, run.stderr.strip() or run.stdout[-400:])
            sys.exit(1)
    return best


def solve_time(data, values, repeat: int = 3) -> tuple:
    """(solve, backward pass alone, JSON) in seconds in this process, best of ``repeat``."""
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


def table(label: str, sizes, make, expected=None):
    print(f"{label:>6} {'command s':>10} {'ratio':>6} | {'in process':>10} {'ratio':>6} "
          f"{'backward s':>11} {'ratio':>6} {'JSON s':>7}" + (f" | {'expected':>8}" if expected else ""))
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            data, values = make(size)
            c = command_time(data, values, Path(tmp))
            t = solve_time(data, values, repeat=1 if size >= 1000 and expected else 3)
            base = base or (c,) + t
            line = (f"{size:>6} {c:>10.3f} {c / base[0]:>6.2f} | {t[0]:>10.3f} {t[0] / base[1]:>6.2f} "
                    f"{t[1]:>11.3f} {t[1] / base[2]:>6.2f} {t[2]:>7.3f}")
            print(line + (f" | {expected(size):>8.1f}" if expected else ""), flush=True)


def main() -> int:
    print("tanh MLP with softmax-CE, W1 n x n; ratios to n = 16 (goal: command ratio <= 3 at n = 1024).")
    print("'command': derive solve SPEC --values FILE in a fresh process, best of 3; 'in process': the")
    print("solve alone (forward, matrix backward pass, both checks, one SGD step); 'backward': the")
    print("matrix-form backward pass alone (symbolic rules and their values).")
    table("n", (16, 64, 256, 1024), mlp)
    print("\nRNN of examples/rnn-bptt.yaml unrolled for T steps; ratios to T = 16 (linear: T/16)")
    table("T", (16, 100, 1000), rnn, expected=lambda T: T / 16)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
