"""Reverse-mode derivation that records each chain-rule step as plain data.

Every node's adjoint (dL/dz1, dL/da1, ...) is a named quantity with its own
symbol, defined from its consumers' adjoints and local derivatives:

    dL/dv = sum over consumers c of  dL/dc * dc/dv

Local derivatives come from the operation table's rules (``Op.derivative``),
never from ``sympy.diff`` of a composed loss, so the cost is linear in the
size of the graph and relu'(0) = 0 holds.  The result, a :class:`Derivation`,
is a list of :class:`Step` records that the renderer, the numeric checker and
the hand-answer checker all read; none of them recomputes it.

>>> from derive.engine.graph import Graph
>>> g = Graph(); x = g.add_leaf("x", "input"); w = g.add_leaf("w", "parameter")
>>> a = g.add("a", relu(w * x)); _ = g.add("L", a**2 / 2, kind="loss")
>>> d = derive(g)
>>> [s.name for s in d.steps]
['dL/dL', 'dL/da', 'dL/dw']
>>> d.by_node["w"].expr
dL/da*x*step(w*x)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from derive.engine.graph import Graph, settle
from derive.engine.ops import MissingRule, op_of, relu  # noqa: F401  (relu for the doctest)

#: graphs larger than this get no fully expanded gradient (it would be huge)
EXPAND_LIMIT_NODES = 60
#: an expansion whose printed tree would exceed this many parts is not shown
EXPAND_LIMIT_SIZE = 4000


def tree_size(expr, memo=None) -> int:
    """Parts in the printed tree of ``expr``, counted over its DAG (so an
    exponentially large print is measured in linear time).

    >>> x = sympy.Symbol("x"); e = x
    >>> for _ in range(40): e = e * (e + 1)
    >>> tree_size(e) > 10**9
    True
    """
    memo = {} if memo is None else memo
    stack = [expr]
    while stack:
        e = stack[-1]
        if e in memo:
            stack.pop()
            continue
        pending = [a for a in e.args if a not in memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        memo[e] = 1 + sum(memo[a] for a in e.args)
    return memo[expr]


@dataclass(frozen=True)
class Term:
    """One consumer's share of an adjoint: upstream adjoint times local derivative."""

    via: str                # the consumer node c
    upstream: sympy.Symbol  # the symbol of dL/dc
    local: sympy.Expr       # dc/dv, in node symbols


@dataclass(frozen=True)
class Step:
    """dL/d(node) = sum of terms; ``expr`` is that sum in adjoint and node symbols."""

    node: str
    name: str
    symbol: sympy.Symbol
    terms: tuple
    expr: sympy.Expr


def local_derivative(expr, wrt: sympy.Symbol, out: sympy.Symbol | None = None):
    """d expr / d wrt by the table's rules; ``out`` names expr's own value.

    >>> from derive.engine.ops import sigmoid
    >>> z, a = sympy.symbols("z a")
    >>> local_derivative(sigmoid(z), z, a)
    a*(1 - a)
    """
    if expr == wrt:
        return sympy.Integer(1)
    if wrt not in expr.free_symbols:
        return sympy.Integer(0)
    if expr.is_Add:
        # only the terms that contain wrt: a loss summed over T steps costs O(T), not O(T) calls per step
        return sympy.Add(*[local_derivative(a, wrt) for a in expr.args if wrt in a.free_symbols])
    if expr.is_Mul:
        total = []
        for i, factor in enumerate(expr.args):
            d = local_derivative(factor, wrt)
            if d != 0:
                total.append(sympy.Mul(*(expr.args[:i] + (d,) + expr.args[i + 1:])))
        return sympy.Add(*total)
    if expr.is_Pow:
        base, exp = expr.args
        if wrt not in exp.free_symbols:
            return exp * base ** (exp - 1) * local_derivative(base, wrt)
        return expr * (local_derivative(exp, wrt) * sympy.log(base)
                       + exp * local_derivative(base, wrt) / base)
    op = op_of(expr)
    if op is None:
        raise MissingRule(expr)
    (arg,) = expr.args
    y = out if out is not None else expr
    return op.derivative(arg, y) * local_derivative(arg, wrt)


def adjoint_name(loss: str, node: str) -> str:
    return f"d{loss}/d{node}"


@dataclass
class Derivation:
    """The whole reverse pass of a graph, as records."""

    graph: Graph
    steps: list
    by_node: dict = field(default_factory=dict)

    @property
    def loss(self) -> str:
        return self.graph.loss

    @property
    def gradients(self) -> dict:
        """parameter name -> its Step (dLoss/dparameter)."""
        return {p: self.by_node[p] for p in self.graph.parameters if p in self.by_node}

    def adjoint_latex(self) -> dict:
        r"""adjoint symbol -> \frac{\partial L}{\partial z_{1}}, for the printer."""
        loss_tex = self.graph.nodes[self.loss].latex
        return {s.symbol: rf"\frac{{\partial {loss_tex}}}{{\partial {self.graph.nodes[s.node].latex}}}"
                for s in self.steps}

    def in_forward_names(self, node: str):
        """dL/d(node) with every adjoint substituted: an expression in the
        forward quantities (a1, o1, ...) and the givens, as an update rule is
        written by hand.  None for graphs too large to expand."""
        if len(self.graph.nodes) > EXPAND_LIMIT_NODES:
            return None
        return _bounded(self._expansions(forward=False).get(node))

    def expanded(self, node: str):
        """dL/d(node) fully expanded in the problem's givens (inputs, targets,
        parameters).  None for graphs too large to expand."""
        if len(self.graph.nodes) > EXPAND_LIMIT_NODES:
            return None
        return _bounded(self._expansions(forward=True).get(node))

    def _expansions(self, forward: bool) -> dict:
        """Substituted forms of every adjoint, built only while their printed
        size stays under EXPAND_LIMIT_SIZE (sizes are estimated before an
        expression is built, so a deep graph never builds a huge tree)."""
        key = "_exp_fwd" if forward else "_exp_adj"
        cached = self.__dict__.get(key)
        if cached is not None:
            return cached
        fwd: dict = {}
        size: dict = {}     # symbol -> printed size of its substitution
        too_big = object()

        def estimate(expr):
            total = tree_size(expr)
            for sym in expr.free_symbols:
                if sym in size:
                    if size[sym] is too_big:
                        return None
                    total += expr.count(sym) * (size[sym] - 1)
            return total

        if forward:
            for name, node in self.graph.nodes.items():
                if node.expr is None:
                    continue
                est = estimate(node.expr)
                if est is None or est > EXPAND_LIMIT_SIZE:
                    size[node.symbol] = too_big
                else:
                    fwd[node.symbol] = node.expr.xreplace(fwd)
                    size[node.symbol] = est
        adj: dict = {}
        out: dict = {}
        for s in self.steps:
            if not s.terms:
                value = sympy.Integer(1)
            else:
                parts = []
                for t in s.terms:
                    up = adj.get(t.upstream)
                    est = estimate(t.local)
                    if up is None or est is None or est + tree_size(up) > EXPAND_LIMIT_SIZE:
                        parts = None
                        break
                    parts.append(up * t.local.xreplace(fwd))
                value = sympy.Add(*parts) if parts is not None else None
                if value is not None and tree_size(value) > EXPAND_LIMIT_SIZE:
                    value = None
            adj[s.symbol] = value
            out[s.node] = value
        self.__dict__[key] = out
        return out


def _bounded(expr):
    if expr is None or tree_size(expr) > EXPAND_LIMIT_SIZE:
        return None
    return expr


def derive(graph: Graph) -> Derivation:
    """The reverse pass of ``graph`` as a list of steps, loss first."""
    if graph.loss is None:
        raise ValueError("the graph has no loss")
    order = list(graph.nodes)
    consumers = graph.consumers()
    wanted = set(graph.computed) | set(graph.parameters) | set(graph.wrt_inputs)
    loss = graph.loss
    steps: list[Step] = []
    by_node: dict[str, Step] = {}
    first = Step(loss, adjoint_name(loss, loss), sympy.Symbol(adjoint_name(loss, loss), real=True),
                 (), sympy.Integer(1))
    steps.append(first)
    by_node[loss] = first
    done_leaf: set = set()

    def visit(name):
        node = graph.nodes[name]
        terms = []
        for c in consumers[name]:
            if c not in by_node:
                continue
            cnode = graph.nodes[c]
            local = local_derivative(cnode.expr, node.symbol, cnode.symbol)
            if local != 0:
                terms.append(Term(c, by_node[c].symbol, local))
        if not terms:
            return  # does not reach the loss
        label = adjoint_name(loss, name)
        sym = sympy.Symbol(label, real=True)
        expr = sympy.Add(*[t.upstream * t.local for t in terms])
        step = Step(name, label, sym, tuple(terms), expr)
        steps.append(step)
        by_node[name] = step

    # Reverse topological order over computed nodes; a leaf's step comes as
    # soon as every node that uses it has its adjoint (as a worked solution
    # writes dL/dw5 right after dL/do1).
    computed = [n for n in order if graph.nodes[n].expr is not None and n != loss]
    finished = {loss}
    pending_leaves = [n for n in order if graph.nodes[n].expr is None and n in wanted]

    rank = {n: i for i, n in enumerate(order)}
    # leaves each node uses: only these can become ready when it finishes,
    # so the reverse pass stays linear in the graph (an unrolled RNN in T)
    uses = {n: [] for n in order}
    for leaf in pending_leaves:
        for c in consumers[leaf]:
            uses[c].append(leaf)

    def flush(candidates):
        for leaf in sorted(set(candidates), key=rank.__getitem__):
            if leaf not in done_leaf and all(c in finished for c in consumers[leaf]):
                done_leaf.add(leaf)
                visit(leaf)

    flush(pending_leaves + uses[loss])
    for name in reversed(computed):
        if name in wanted:
            visit(name)
        finished.add(name)
        flush(uses[name])
    return Derivation(graph, steps, by_node)


@dataclass
class Evaluation:
    """The numbers of one worked solution: forward values, every local
    derivative's value, and every adjoint's value."""

    forward: dict
    local: dict      # (node, via) -> value of d via / d node
    adjoint: dict    # node -> value of dL/d node


def evaluate(derivation: Derivation, forward_values: dict) -> Evaluation:
    """Put numbers into the recorded steps (no re-derivation)."""
    graph = derivation.graph
    subs = {graph.nodes[n].symbol: v for n, v in forward_values.items()}
    local: dict = {}
    adjoint: dict = {}
    for s in derivation.steps:
        if not s.terms:
            adjoint[s.node] = sympy.Integer(1)
            continue
        total = sympy.Integer(0)
        for t in s.terms:
            lv = settle(t.local.xreplace(subs), f"d{t.via}/d{s.node}")
            local[(s.node, t.via)] = lv
            total += adjoint[t.via] * lv
        adjoint[s.node] = settle(total, s.name)
    return Evaluation(dict(forward_values), local, adjoint)
