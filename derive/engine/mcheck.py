r"""Checks of the matrix-form backward pass that scale with the sizes.

* ``numpy-backprop``: an independent reverse pass over the same graph that
  reads only each operation's numpy ``forward`` and ``vjp`` (never the
  symbolic rules), compared with every step's value;
  error = max |a - b| / max(1, |b|), tolerance :data:`VJP_TOL`.
* ``finite-difference``: along :data:`DIRECTIONS` seeded random directions d
  of all parameters (and asked inputs) at once (normal entries; a matrix's
  part is an outer product of normal vectors; d of unit norm), central
  differences D(h) = (L(θ + h d) - L(θ - h d)) / 2h at h = :data:`FD_STEP`
  and h/2, extrapolated as (4 D(h/2) - D(h)) / 3, against <gradient, d>; error = |fd - <g, d>| / max(1, |<g, d>|), tolerance
  :data:`FD_TOL`.  Four forward passes per direction, whatever the sizes.

A check over its tolerance is a failure; the caller turns it into an error.

>>> from derive.engine.tgraph import TGraph
>>> from derive.engine.reverse import reverse
>>> g = TGraph()
>>> W = g.leaf("W", (2, 2), "parameter"); x = g.leaf("x", (2,), "input")
>>> L = g.define("L", g.apply("sum", g.apply("tanh", g.apply("matmul", W, x))), kind="loss")
>>> leaves = {"W": np.array([[0.1, 0.2], [0.3, -0.4]]), "x": np.array([1.0, -1.0])}
>>> d = reverse(g, g.forward(leaves))
>>> [(c["method"], c["passed"]) for c in checks(g, leaves, d)]
[('numpy-backprop', True), ('finite-difference', True)]
"""
from __future__ import annotations

import numpy as np

from derive.engine.tgraph import Apply, Const, Ref, TGraph, refs
from derive.engine.tensor_op import tensor_op

VJP_TOL = 1e-9
FD_TOL = 1e-6
FD_STEP = 1e-4
DIRECTIONS = 3


def numpy_backprop(g: TGraph, leaves: dict) -> dict:
    """dL/d(every named node) by the operations' numpy VJPs alone."""
    inner: dict = {}
    values = g.forward(leaves, keep_inner=inner)
    live = g.needs_grad()
    grads: dict = {g.loss: np.ones(())}

    def back(e, G):
        if isinstance(e, Ref):
            if e.name in live:
                grads[e.name] = grads.get(e.name, 0.0) + G
            return
        if isinstance(e, Const):
            return
        xs, out = inner[id(e)]
        op = tensor_op(e.op)
        for i, a in enumerate(e.args):
            if isinstance(a, Const):
                continue
            back(a, np.asarray(op.vjp(i, G, xs, out, e.pdict), dtype=float))

    for node in reversed(g.computed()):
        if node.name in grads and node.name in live:
            back(node.expr, np.broadcast_to(grads[node.name], node.shape).astype(float))
    return {k: np.broadcast_to(v, g.nodes[k].shape).astype(float) for k, v in grads.items() if k != g.loss}


def _direction(rng, shape: tuple) -> np.ndarray:
    """A random direction: normal entries for a vector, an outer product of
    normal vectors for a matrix (n + m draws instead of n m; still a generic
    direction for <gradient, d>)."""
    if len(shape) < 2:
        return rng.standard_normal(shape)
    out = rng.standard_normal(shape[0])
    for n in shape[1:]:
        out = np.multiply.outer(out, rng.standard_normal(n))
    return out


def _central(g: TGraph, leaves: dict, wrt: list, d: dict, h: float) -> float:
    plus = dict(leaves)
    minus = dict(leaves)
    for n in wrt:
        plus[n] = np.asarray(leaves[n], dtype=float) + h * d[n]
        minus[n] = np.asarray(leaves[n], dtype=float) - h * d[n]
    return (float(g.forward(plus)[g.loss]) - float(g.forward(minus)[g.loss])) / (2 * h)


def _richardson(g: TGraph, leaves: dict, wrt: list, d: dict) -> float:
    """The directional derivative from central differences at h and h/2,
    extrapolated (error O(h^4)): long unrolls have large higher derivatives."""
    return (4 * _central(g, leaves, wrt, d, FD_STEP / 2) - _central(g, leaves, wrt, d, FD_STEP)) / 3


#: operations with a kink, and how far their inputs are from it (an op may
#: say so itself with extra["kink"] = function of its inputs and parameters)
KINKS = {
    "relu": lambda xs, p: np.abs(xs[0]), "step": lambda xs, p: np.abs(xs[0]),
    "abs": lambda xs, p: np.abs(xs[0]), "leaky_relu": lambda xs, p: np.abs(xs[0]),
    "maximum": lambda xs, p: np.abs(xs[0] - xs[1]), "minimum": lambda xs, p: np.abs(xs[0] - xs[1]),
}

#: how the derivative is defined at the kink, for the check's note
KINK_RULES = {
    "relu": "relu'(0) = 0", "step": "relu'(0) = 0", "leaky_relu": "leaky_relu'(0) = slope",
    "abs": "abs'(0) = 0", "maximum": "a tie gives half to each side", "minimum": "a tie gives half to each side",
    "max": "a tie in max shares the gradient equally", "amax_share": "a tie in max shares the gradient equally",
    "maxpool2d": "a tie in max-pooling goes to the first maximum",
    "maxunpool2d": "a tie in max-pooling goes to the first maximum",
    "maxpool2d_at": "a tie in max-pooling goes to the first maximum",
}


def _kink_distances(g: TGraph, leaves: dict) -> list:
    """(operation, distance of its inputs from its kink) for every kinked
    operation (relu, abs, max, max-pooling ...; for a maximum the kink is a
    tie) at the given values, in the graph's order."""
    inner: dict = {}
    g.forward(leaves, keep_inner=inner)
    live = g.needs_grad()     # a kink that no perturbed leaf reaches does not matter
    applies = []

    def walk(e):
        if isinstance(e, Apply):
            for a in e.args:
                walk(a)
            if refs(e) & live:
                applies.append(e)

    for node in g.computed():
        walk(node.expr)
    out = []
    for apply in applies:
        fn = tensor_op(apply.op).extra.get("kink") or KINKS.get(apply.op)
        if fn is not None and id(apply) in inner:
            d = np.asarray(fn(inner[id(apply)][0], apply.pdict), dtype=float)
            if d.size:
                out.append((apply.op, float(np.min(d))))
    return out


def nearest_kink(g: TGraph, leaves: dict) -> float:
    """The smallest distance of a kinked operation's input from its kink."""
    return min((d for _, d in _kink_distances(g, leaves)), default=float("inf"))


def kinks_near(g: TGraph, leaves: dict, reach: float) -> list:
    """The kinked operations with an input within ``reach`` of a kink."""
    return list(dict.fromkeys(op for op, d in _kink_distances(g, leaves) if d < reach))


def checks(g: TGraph, leaves: dict, derivation, seed: int = 0) -> list:
    """The two ``checks`` records of a matrix-form derivation."""
    ref = numpy_backprop(g, leaves)
    worst = 0.0
    for s in derivation.steps:
        if s.target not in g.nodes:     # a named part of one line: checked through the lines it feeds
            continue
        b = ref.get(s.target)
        if b is None:
            b = np.zeros(s.shape)
        worst = max(worst, float(np.max(np.abs(s.value - b) / np.maximum(1.0, np.abs(b)))) if s.value.size else 0.0)
    out = [{"method": "numpy-backprop", "max_abs_err": worst, "passed": bool(worst <= VJP_TOL),
            "note": "matrix form against the operations' numpy VJPs"}]
    wrt = [n.name for n in g.of_kind("parameter")] + list(g.wanted_inputs)
    rng = np.random.default_rng(seed)
    fd_worst = 0.0
    for _ in range(DIRECTIONS):
        d = {n: _direction(rng, g.nodes[n].shape) for n in wrt}
        norm = np.sqrt(sum(float(np.sum(v * v)) for v in d.values())) or 1.0
        d = {n: v / norm for n, v in d.items()}
        fd = _richardson(g, leaves, wrt, d)
        an = 0.0
        for n in wrt:
            grad = derivation.gradient(n)
            if grad is not None:
                an += float(np.sum(grad * d[n]))
        fd_worst = max(fd_worst, abs(fd - an) / max(1.0, abs(an)))
    scale = max([1.0] + [float(np.max(np.abs(v))) for v in leaves.values() if np.size(v)])
    near = kinks_near(g, leaves, 10 * FD_STEP * scale)
    if near:
        rules = "; ".join(dict.fromkeys(KINK_RULES.get(op, f"{op} as torch") for op in near))
        out.append({"method": "finite-difference", "max_rel_err": fd_worst, "passed": None,
                    "note": f"not applicable: an input of {', '.join(near)} is at a kink or a tie, where the "
                            f"derivative is defined as torch defines it ({rules}) and differences are not"})
        return out + list(derivation.conditions)
    out.append({"method": "finite-difference", "max_rel_err": fd_worst, "passed": bool(fd_worst <= FD_TOL),
                "note": f"{DIRECTIONS} random directions, central differences at h = {FD_STEP:g} and h/2, "
                        "extrapolated"})
    return out + list(derivation.conditions)
