"""Randomised variants of a gradient problem: fresh numbers, same derivation.

Numbers are drawn reproducibly from ``(seed, variant number)``, so variant 3
of seed 7 is the same whatever ``--count`` is.  Each draw is kept only if it
makes a good exercise (the rules are :data:`RULES`, checked on a float
forward pass before the exact solve):

* short decimals a person can compute with: every given is a multiple of 0.1
  in [-1, 1] (biases, names starting with ``b``, in [-0.5, 0.5]); inputs and
  weights are never 0;
* no activation at a kink: every relu argument is at least 0.05 away from 0;
* no dead unit: every relu argument is positive (a dead unit would make half
  of the backward pass trivially zero);
* no saturation: every sigmoid/tanh argument is within [-2.5, 2.5];
* something to learn: the loss is at least 1e-4 and some gradient is at least
  1e-3 in size.

The derivation is reused for every variant (derived once per problem).

>>> from derive.problems import load
>>> vs = draw_variants(load("mlp-relu-regression"), count=2, seed=1)
>>> [sorted(v.values)[:3] for v in vs]
[['b1', 'b2', 'b3'], ['b1', 'b2', 'b3']]
>>> vs[0].values == draw_variants(load("mlp-relu-regression"), count=1, seed=1)[0].values
True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from .errors import UserError
from .numeric import numpy_forward
from .ops import op_of

MAX_TRIES = 2000

RULES = {
    "grid": 0.1,
    "range": 1.0,
    "bias_range": 0.5,
    "kink_margin": 0.05,
    "saturation": 2.5,
    "min_loss": 1e-4,
    "min_gradient": 1e-3,
}


@dataclass
class Variant:
    number: int          # 1-based
    values: dict         # leaf name -> sympy Rational (the variant's givens)

    def plain_values(self) -> dict:
        """name -> float or short decimal, as written to ``values.yaml``."""
        return {k: _plain(v) for k, v in self.values.items()}


def _plain(v):
    f = float(v)
    return int(f) if f == int(f) else float(f"{f:.10g}")


def _draw(rng, name: str, kind: str) -> sympy.Rational:
    grid = RULES["grid"]
    limit = RULES["bias_range"] if (kind == "parameter" and name.startswith("b")) else RULES["range"]
    steps = int(round(limit / grid))
    choices = list(range(-steps, steps + 1))
    if kind == "target":
        pass
    elif not (kind == "parameter" and name.startswith("b")):
        choices.remove(0)
    k = int(rng.choice(choices))
    return sympy.Rational(k, int(round(1 / grid)))


def _activation_args(graph, values: dict):
    """(op name, float argument) for every relu/sigmoid/tanh application."""
    env = {graph.nodes[n].symbol: float(v) for n, v in values.items()}
    for name in graph.computed:
        for sub in sympy.preorder_traversal(graph.nodes[name].expr):
            op = op_of(sub)
            if op is not None and op.name in ("relu", "step", "sigmoid", "tanh"):
                arg = sub.args[0]
                yield op.name, float(arg.xreplace(env)) if arg.free_symbols else float(arg)


def acceptable(problem, leaves: dict) -> bool:
    """Whether a draw satisfies :data:`RULES` (float forward pass)."""
    from .numeric import numpy_backprop

    graph = problem.graph
    floats = {k: float(v) for k, v in leaves.items()}
    values, _, _, _ = numpy_forward(graph, floats)
    with np.errstate(all="ignore"):
        loss = float(values[graph.loss])
        if not np.isfinite(loss) or loss < RULES["min_loss"]:
            return False
        for op, x in _activation_args(graph, values):
            if op in ("relu", "step"):
                if x < RULES["kink_margin"]:
                    return False
            elif abs(x) > RULES["saturation"]:
                return False
        grads = numpy_backprop(graph, floats)
    return max(abs(float(g)) for g in grads.values()) >= RULES["min_gradient"]


def draw_variants(problem, count: int, seed: int) -> list:
    """``count`` variants of a gradient problem, reproducible from ``seed``."""
    if not hasattr(problem, "graph"):
        raise UserError(problem.id, "variants need a gradient problem (a network with parameters)")
    if count < 1:
        raise UserError("--count", "must be at least 1")
    graph = problem.graph
    base = dict(problem.spec.values)
    out = []
    for i in range(1, count + 1):
        rng = np.random.default_rng([int(seed), i])
        for _ in range(MAX_TRIES):
            leaves = dict(base)
            for name in graph.leaves:
                leaves[name] = _draw(rng, name, graph.nodes[name].kind)
            if acceptable(problem, leaves):
                out.append(Variant(i, leaves))
                break
        else:
            raise UserError(problem.id, f"no draw out of {MAX_TRIES} satisfies the variant rules "
                                        f"(no kink, no dead or saturated unit, a non-zero gradient)")
    return out


def answers_of(solution) -> dict:
    """The key's answers in the answers-file names ``derive check`` reads:
    forward quantities, the loss, ``dL/dNAME`` and updated parameters."""
    js = solution.to_json()
    g = solution.graph
    out: dict = {}
    for name in g.computed:
        if name in js["values"]:
            out[name] = js["values"][name]
    for name, grp in g.groups.items():
        if grp.kind in ("forward", "loss") and name in js["values"]:
            out[name] = js["values"][name]
    for p, entry in js["gradients"].items():
        out[f"d{g.loss}/d{p}"] = entry["value"]
    for p, v in js["updates"].items():
        out[p] = v
    return out
