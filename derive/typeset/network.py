"""The drawing of a small layered network, read off its graph.

:func:`network_figure` recognises the shape of a multilayer perceptron in a
:class:`~derive.engine.graph.Graph`: each unit is a weighted sum of earlier units
(``z = w1*x1 + w2*x2 + b``), optionally followed by an activation of that sum
alone (``a = relu(z)``), which is drawn as the same unit. Edges carry the
weight's name. Graphs of any other shape, or too large to draw legibly, give
None: the figure is generated from the graph or not at all.

>>> from derive.problems import load
>>> fig = network_figure(load("mlp-relu-regression").graph)
>>> fig.data["layers"]
[['x1', 'x2'], ['a1', 'a2'], ['o1']]
>>> fig.data["edges"][:2]
[['x1', 'a1', 'w1'], ['x2', 'a1', 'w2']]
"""
from __future__ import annotations

import sympy

from derive.typeset.blocks import Figure

#: the largest network drawn: units in one layer, and edges in all
MAX_LAYER = 6
MAX_EDGES = 40
#: past this many edges the weight labels would pile up unreadably
MAX_LABELLED_EDGES = 12


def _weighted_sum(expr, params: set, units: set):
    """[(weight, source), ...] and the bias parameters of ``expr`` if it is a
    weighted sum of units (each term a parameter times a unit, or a lone
    parameter), else None."""
    edges, biases = [], []
    for term in sympy.Add.make_args(expr):
        factors = sympy.Mul.make_args(term)
        ws = [f for f in factors if f in params]
        srcs = [f for f in factors if f in units]
        if len(factors) == 1 and ws:
            biases.append(ws[0])
        elif len(factors) == 2 and len(ws) == 1 and len(srcs) == 1:
            edges.append((ws[0], srcs[0]))
        else:
            return None
    return (edges, biases) if edges else None


def network_figure(graph) -> Figure | None:
    """The layered drawing of an MLP-shaped graph, or None."""
    nodes = graph.nodes
    params = {nodes[n].symbol for n in graph.parameters}
    by_symbol = {node.symbol: n for n, node in nodes.items()}
    inputs = graph.of_kind("input")
    if not inputs:
        return None
    unit_of = {n: n for n in inputs}          # node name -> the unit drawn for it
    layer = {n: 0 for n in inputs}
    edges, biases = [], []
    sums = {}                                  # weighted-sum node -> its unit
    for n in graph.of_kind("forward"):
        expr = nodes[n].expr
        free = expr.free_symbols
        units = {nodes[u].symbol for u in unit_of}
        shape = _weighted_sum(expr, params, units)
        if shape is not None:
            terms, bs = shape
            unit_of[n] = n
            sums[n] = n
            layer[n] = 1 + max(layer[unit_of[by_symbol[s]]] for _, s in terms)
            edges += [[unit_of[by_symbol[s]], n, by_symbol[w]] for w, s in terms]
            biases += [by_symbol[b] for b in bs]
            continue
        # an activation of one weighted sum, used by nothing else: the same unit
        if len(free) == 1 and expr.args and len(expr.args) == 1:
            (src,) = free
            name = by_symbol.get(src)
            if name in sums and graph.consumers()[name] == [n]:
                old = sums.pop(name)
                unit_of[n] = n
                layer[n] = layer.pop(old)
                for e in edges:
                    e[0] = n if e[0] == old else e[0]
                    e[1] = n if e[1] == old else e[1]
                del unit_of[old]
                unit_of[name] = n
                continue
        return None
    drawn = [u for u in dict.fromkeys(unit_of.values())]
    depth = max(layer[u] for u in drawn)
    layers = [[u for u in drawn if layer[u] == k] for k in range(depth + 1)]
    if depth < 1 or any(len(ly) > MAX_LAYER for ly in layers) or len(edges) > MAX_EDGES:
        return None
    latex = {u: nodes[u].latex for u in drawn}
    latex.update({w: nodes[w].latex for _, _, w in edges})
    if len(edges) > MAX_LABELLED_EDGES:
        for e in edges:
            e[2] = ""
        caption = "The network (too many edges to label: the weights are in the givens)."
    else:
        caption = "The network; each edge carries its weight."
    if biases:
        caption += " The biases are not drawn."
    return Figure("network", {"layers": layers, "edges": edges, "latex": latex}, caption=caption)
