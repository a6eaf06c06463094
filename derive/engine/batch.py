"""Batch gradient descent: one network, m samples, shared parameters.

:func:`batch_graph` copies a one-sample graph m times (sample i's inputs,
targets and forward nodes get the suffix ``_s{i}``; the parameters are
shared) and adds the batch loss, the sum of the m per-sample losses (seed 004
Q1(b) writes the update with this sum) or their mean (what
``torch.nn.MSELoss()`` and most code use).  The engine then derives the batch
gradient like any other graph, so it is computed, not assumed to be the sum
of the per-sample gradients; :func:`batch_step` checks that it is.

>>> from derive.problems import load
>>> net = load("mlp-relu-regression").graph
>>> b = batch_step(net, {"w1": 0.1, "w2": 0.2, "w3": -0.2, "w4": -0.1, "w5": 0.5, "w6": 0.3,
...                      "b1": 0, "b2": 0, "b3": 0},
...                [{"x1": 1, "x2": 1, "y": 0.5}, {"x1": 2, "x2": 0.5, "y": 1}], lr=0.5)
>>> b.m, b.sum_grads["b3"], b.mean_grads["b3"]
(2, -6/5, -3/5)
>>> b.sum_grads["b3"] == sum(g["b3"] for g in b.per_sample)
True
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy

from derive.engine.backprop import derive, evaluate
from derive.engine.graph import Graph
from derive.engine.numeric import verify
from derive.engine.parse import number


def batch_graph(graph: Graph, m: int, reduction: str = "sum") -> Graph:
    """m copies of a one-sample ``graph`` sharing its parameters; the loss is
    the sum (``reduction="sum"``) or the mean (``"mean"``) of the m losses."""
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', not {reduction!r}")
    out = Graph(f"{graph.title}, batch of {m} ({reduction})")
    params = graph.parameters
    for p in params:
        out.add_leaf(p, "parameter", graph.nodes[p].latex)
    losses = []
    for i in range(1, m + 1):
        rename = {graph.nodes[p].symbol: out.symbol(p) for p in params}
        for name, node in graph.nodes.items():
            if node.kind == "parameter":
                continue
            new = f"{name}_s{i}"
            latex = rf"{node.latex}^{{({i})}}" if "^" not in node.latex else rf"{{{node.latex}}}^{{({i})}}"
            if node.expr is None:
                out.add_leaf(new, node.kind, latex)
            else:
                out.add(new, node.expr.xreplace(rename), latex=latex)
            rename[node.symbol] = out.symbol(new)
        losses.append(out.symbol(f"{graph.loss}_s{i}"))
    total = sympy.Add(*losses)
    out.add(graph.loss, total if reduction == "sum" else total / m, kind="loss",
            latex=graph.nodes[graph.loss].latex)
    return out


def batch_leaves(graph: Graph, params: dict, samples: list) -> dict:
    """Leaf values of :func:`batch_graph`: the parameters and each sample's givens."""
    leaves = {p: number(params[p]) if not isinstance(params[p], sympy.Basic) else params[p]
              for p in graph.parameters}
    for i, sample in enumerate(samples, start=1):
        for name, v in sample.items():
            leaves[f"{name}_s{i}"] = v if isinstance(v, sympy.Basic) else number(v)
    return leaves


@dataclass
class BatchStep:
    """One step of batch gradient descent, both ways."""

    m: int
    losses: list             # per-sample losses
    per_sample: list         # per-sample gradients {param: value}
    sum_grads: dict          # gradient of the summed loss, derived on the batch graph
    mean_grads: dict         # gradient of the mean loss, derived on its own batch graph
    update_sum: dict         # w - lr * d(sum)/dw
    update_mean: dict        # w - lr * d(mean)/dw
    checks: list             # numeric checks of both batch gradients


def batch_step(graph: Graph, params: dict, samples: list, lr) -> BatchStep:
    """Derive the batch gradient of the summed and of the mean loss and
    take one step of each; checks every gradient numerically."""
    m = len(samples)
    lr = lr if isinstance(lr, sympy.Basic) else number(lr)
    single = derive(graph)
    losses, per_sample = [], []
    for sample in samples:
        leaves = {p: params[p] for p in graph.parameters}
        leaves.update(sample)
        fwd = graph.forward({k: v if isinstance(v, sympy.Basic) else number(v) for k, v in leaves.items()})
        ev = evaluate(single, fwd)
        per_sample.append({p: ev.adjoint.get(p, sympy.Integer(0)) for p in graph.parameters})
        losses.append(fwd[graph.loss])
    grads, checks = {}, []
    for reduction in ("sum", "mean"):
        bg = batch_graph(graph, m, reduction)
        leaves = batch_leaves(bg, params, samples)
        ev = evaluate(derive(bg), bg.forward(leaves))
        grads[reduction] = {p: ev.adjoint.get(p, sympy.Integer(0)) for p in bg.parameters}
        for c in verify(bg, leaves, grads[reduction]):
            checks.append(dict(c, method=f"{c['method']} ({reduction} loss)"))
    start = {p: (params[p] if isinstance(params[p], sympy.Basic) else number(params[p])) for p in graph.parameters}
    return BatchStep(m, losses, per_sample, grads["sum"], grads["mean"],
                     {p: start[p] - lr * grads["sum"][p] for p in start},
                     {p: start[p] - lr * grads["mean"][p] for p in start}, checks)
