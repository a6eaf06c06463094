"""Cost of backpropagation through time: derive's node-by-node derivation
against naive ``sympy.diff`` of the fully composed loss.

A scalar RNN  h_t = tanh(u x_t + w h_{t-1}),  o_t = v h_t,
E = sum_t (o_t - y_t)^2 / 2  is unrolled for T steps.  derive builds the
graph, derives every adjoint as a named quantity (dE/dh_t in terms of
dE/dh_{t+1}) and evaluates it; the naive way composes E into one expression
in u, w, v and differentiates that.  Run:

    .venv/bin/python bench/bench_bptt.py

It prints the time of derivation plus evaluation for T = 8, 16, 32, 64, the
ratio T=64 / T=16 (linear cost gives about 4), and at T = 32 the naive time
(composing and differentiating, then evaluating the derivative at the point)
with our speed-up against both the whole naive computation and sympy.diff
alone.  Both ways must give the same dE/dw (checked; exit code 1 if not).
Each timed run starts from an empty SymPy cache, as a fresh process does.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import sympy
from sympy.core.cache import clear_cache

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from derive.engine.backprop import derive, evaluate  # noqa: E402
from derive.engine.graph import Graph  # noqa: E402

R = sympy.Rational


def values(T: int) -> dict:
    """A fixed, documented point: x_t = (t mod 3 - 1)/2, y_t = (t mod 2)/2,
    u = 0.5, w = 0.9, v = 0.8, h_0 = 0."""
    out = {"u": R(1, 2), "w": R(9, 10), "v": R(4, 5), "h0": 0}
    for t in range(1, T + 1):
        out[f"x{t}"] = R(t % 3 - 1, 2)
        out[f"y{t}"] = R(t % 2, 2)
    return out


def scalar_rnn(T: int) -> Graph:
    g = Graph(f"scalar RNN, T={T}")
    u, w, v = (g.add_leaf(p, "parameter") for p in ("u", "w", "v"))
    h = g.add_leaf("h0", "input")
    errors = []
    for t in range(1, T + 1):
        x = g.add_leaf(f"x{t}", "input")
        y = g.add_leaf(f"y{t}", "target")
        z = g.add(f"z{t}", u * x + w * h)
        h = g.add(f"h{t}", sympy.tanh(z))
        o = g.add(f"o{t}", v * h)
        errors.append(g.add(f"E{t}", (o - y) ** 2 / 2))
    g.add("E", sympy.Add(*errors), kind="loss")
    return g


def ours(T: int):
    """Build, derive and evaluate; returns (seconds, dE/dw)."""
    clear_cache()      # a fresh process has an empty SymPy cache; so does each run here
    start = time.perf_counter()
    g = scalar_rnn(T)
    d = derive(g)
    ev = evaluate(d, g.forward(values(T)))
    return time.perf_counter() - start, ev.adjoint["w"]


def naive(T: int):
    """Compose E in symbols, ``sympy.diff`` it, then evaluate the derivative at
    the point with ``lambdify`` (``subs``/``evalf`` on the composed derivative
    is far slower still).  Returns (seconds composing + differentiating,
    seconds evaluating, dE/dw)."""
    clear_cache()
    start = time.perf_counter()
    u, w, v, h0 = sympy.symbols("u w v h0", real=True)
    xs = sympy.symbols(f"x1:{T + 1}", real=True)
    ys = sympy.symbols(f"y1:{T + 1}", real=True)
    h, E = h0, sympy.Integer(0)
    for t in range(T):
        h = sympy.tanh(u * xs[t] + w * h)
        E += (v * h - ys[t]) ** 2 / 2
    dE_dw = sympy.diff(E, w)
    derived = time.perf_counter()
    syms = [u, w, v, h0, *xs, *ys]
    vals = values(T)
    grad = sympy.lambdify(syms, dE_dw, "math")(*[float(vals[str(s)]) for s in syms])
    return derived - start, time.perf_counter() - derived, grad


def best_of(fn, T, repeats=3):
    runs = [fn(T) for _ in range(repeats)]
    return min(r[0] for r in runs), runs[0][1]


def main() -> int:
    times = {}
    print("derivation + evaluation of dE/d(u, w, v), scalar tanh RNN")
    print(f"{'T':>4}  {'seconds':>9}  {'per step (ms)':>13}")
    for T in (8, 16, 32, 64):
        times[T], _ = best_of(ours, T)
        print(f"{T:>4}  {times[T]:>9.4f}  {1000 * times[T] / T:>13.3f}")
    ratio = times[64] / times[16]
    print(f"ratio T=64 / T=16: {ratio:.2f} (linear cost: 4)")
    t_diff, t_eval, g_naive = naive(32)
    t_ours, g_ours = best_of(ours, 32)
    err = abs(float(g_naive) - float(g_ours))
    t_naive = t_diff + t_eval
    print(f"T=32 naive: compose + sympy.diff {t_diff:.3f} s, evaluate (lambdify) {t_eval:.3f} s, "
          f"total {t_naive:.3f} s")
    print(f"T=32 derive: {t_ours:.4f} s; speed-up {t_naive / t_ours:.1f}x for the gradient's value, "
          f"{t_diff / t_ours:.1f}x against sympy.diff alone (same dE/dw: |difference| = {err:.2g})")
    if err > 1e-9 * max(1.0, abs(float(g_ours))):
        print("MISMATCH between the two gradients", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
