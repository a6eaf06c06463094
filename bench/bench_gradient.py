"""Cost of the compiled gradient against the compiled forward pass.

Both functions come from ``derive codegen`` (derive/codegen/scalar.py) and are
evaluated on the same batch of 100,000 random parameter sets (numpy arrays,
fixed seed).  Reverse mode's theoretical bound on gradient/forward is a small
constant; derive aims at or under 4.  Run: ``.venv/bin/python bench/bench_gradient.py``.
"""
from __future__ import annotations

import argparse
import sys
import timeit

import numpy as np

from derive.codegen.scalar import load_module
from derive.problems import load

PROBLEMS = ("mlp-relu-regression", "mlp-tanh-sigmoid")
TARGET_RATIO = 4.0


def batch(problem, size: int, seed: int = 0) -> dict:
    """The problem's givens, with every parameter replaced by `size` random draws."""
    rng = np.random.default_rng(seed)
    values = {name: float(v) for name, v in problem.spec.values.items()}
    for p in problem.graph.parameters:
        values[p] = rng.normal(0.0, 0.5, size)
    return values


def best_times(forward, gradient, values: dict, repeat: int) -> tuple:
    """Seconds per call of each: the fastest of `repeat` calls, the two
    interleaved so that load on the machine affects both alike."""
    forward(**values), gradient(**values)  # warm-up
    t_fwd, t_grad = [], []
    for _ in range(repeat):
        t_fwd.append(timeit.timeit(lambda: forward(**values), number=1))
        t_grad.append(timeit.timeit(lambda: gradient(**values), number=1))
    return min(t_fwd), min(t_grad)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000, help="parameter sets per batch")
    ap.add_argument("--repeat", type=int, default=30, help="timed calls; the fastest counts")
    args = ap.parse_args(argv)
    worst = 0.0
    print(f"batch of {args.size:,} parameter sets, best of {args.repeat} calls")
    print(f"{'problem':<22} {'forward':>10} {'gradient':>10} {'ratio':>7}")
    for pid in PROBLEMS:
        problem = load(pid)
        module = load_module(problem)
        values = batch(problem, args.size)
        # Same batch, same run: the gradient must agree with the loss it returns.
        loss_alone = module.loss(**values)
        loss, _ = module.loss_and_gradients(**values)
        assert np.array_equal(loss, loss_alone)
        t_fwd, t_grad = best_times(module.loss, module.loss_and_gradients, values, args.repeat)
        ratio = t_grad / t_fwd
        worst = max(worst, ratio)
        print(f"{pid:<22} {t_fwd * 1e3:>8.2f}ms {t_grad * 1e3:>8.2f}ms {ratio:>7.2f}")
    print(f"worst ratio gradient/forward: {worst:.2f} (target <= {TARGET_RATIO:g})")
    return 0 if worst <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
