"""The computation graph: named scalar nodes over earlier names.

Leaves are inputs, targets and trainable parameters; every other node is a
SymPy expression over earlier names, so insertion order is a topological
order.  Vector and matrix quantities are *groups* of scalar nodes (``W`` of
shape (2, 2) is ``W_11 W_12 W_21 W_22``), which keeps one small scalar engine
under every problem and keeps the cost of a derivation linear in the graph.

>>> g = Graph("demo")
>>> x = g.add_leaf("x", "input"); w = g.add_leaf("w", "parameter")
>>> _ = g.add("z", w * x); _ = g.add("L", g.symbol("z") ** 2, kind="loss")
>>> g.forward({"x": 2, "w": sympy.Rational(1, 10)})["L"]
1/25
"""
from __future__ import annotations

from derive.typeset.latex import default_latex  # noqa: F401  (names' LaTeX, re-exported)

import re
from dataclasses import dataclass

import sympy

from derive.engine.parse import number

LEAF_KINDS = ("input", "target", "parameter")
#: Digits of working precision where a value is not exact.
PRECISION = 30
#: exact rationals larger than this (bits of numerator or denominator) become floats
MAX_EXACT_BITS = 256
#: |values| beyond this cannot be checked in double precision: refused
MAX_MAGNITUDE = sympy.Float("1e300")


class GraphError(ValueError):
    """A graph that cannot be built or evaluated; the message names the node."""


@dataclass(frozen=True)
class Node:
    name: str
    kind: str                      # input | target | parameter | forward | loss
    symbol: sympy.Symbol
    expr: sympy.Expr | None = None  # None for leaves
    latex: str = ""


@dataclass(frozen=True)
class Group:
    """A vector or matrix quantity made of scalar nodes (row-major)."""

    name: str
    shape: tuple
    names: tuple
    kind: str
    latex: str = ""


class Graph:
    """Named scalar nodes in topological (insertion) order."""

    def __init__(self, title: str = ""):
        self.title = title
        self.nodes: dict[str, Node] = {}
        self.groups: dict[str, Group] = {}
        self.loss: str | None = None
        #: inputs whose adjoints the problem asks for (e.g. attention's s_prev)
        self.wrt_inputs: list[str] = []
        self._symbols: dict[str, sympy.Symbol] = {}
        self._consumers: dict[str, list[str]] | None = None

    # -- building ---------------------------------------------------------
    def symbol(self, name: str) -> sympy.Symbol:
        """The (real) SymPy symbol of a node."""
        if name not in self._symbols:
            self._symbols[name] = sympy.Symbol(name, real=True)
        return self._symbols[name]

    def _new(self, name, kind, expr, latex):
        if name in self.nodes:
            raise GraphError(f"{name}: defined twice")
        node = Node(name, kind, self.symbol(name), expr, latex or default_latex(name))
        self.nodes[name] = node
        self._consumers = None
        return node.symbol

    def add_leaf(self, name: str, kind: str, latex: str | None = None) -> sympy.Symbol:
        if kind not in LEAF_KINDS:
            raise GraphError(f"{name}: unknown leaf kind {kind!r}")
        return self._new(name, kind, None, latex)

    def add(self, name: str, expr, kind: str = "forward", latex: str | None = None) -> sympy.Symbol:
        """Add a node ``name = expr``; every name in ``expr`` must exist already."""
        expr = sympy.sympify(expr) if not isinstance(expr, sympy.Basic) else expr
        # a lookup by name, not a set of every symbol: building stays linear in the graph
        unknown = sorted(str(s) for s in expr.free_symbols
                         if s.name not in self.nodes or self.nodes[s.name].symbol != s)
        if unknown:
            raise GraphError(f"{name}: uses {', '.join(unknown)} before it is defined")
        sym = self._new(name, kind, expr, latex)
        if kind == "loss":
            self.loss = name
        return sym

    def add_group(self, name: str, shape: tuple, names, kind: str, latex: str | None = None):
        names = tuple(names)
        self.groups[name] = Group(name, tuple(shape), names, kind, latex or default_latex(name))

    # -- reading ----------------------------------------------------------
    def of_kind(self, *kinds: str) -> list[str]:
        return [n for n, node in self.nodes.items() if node.kind in kinds]

    @property
    def parameters(self) -> list[str]:
        return self.of_kind("parameter")

    @property
    def leaves(self) -> list[str]:
        return self.of_kind(*LEAF_KINDS)

    @property
    def computed(self) -> list[str]:
        return self.of_kind("forward", "loss")

    def consumers(self) -> dict[str, list[str]]:
        """name -> the nodes whose expressions use it, in topological order."""
        if self._consumers is None:
            cons: dict[str, list[str]] = {n: [] for n in self.nodes}
            by_symbol = {node.symbol: n for n, node in self.nodes.items()}
            for n, node in self.nodes.items():
                if node.expr is not None:
                    for s in sorted(node.expr.free_symbols, key=str):
                        cons[by_symbol[s]].append(n)
            self._consumers = cons
        return self._consumers

    def latex_names(self) -> dict:
        """symbol -> LaTeX, for SymPy's printer (``symbol_names=``)."""
        return {node.symbol: node.latex for node in self.nodes.values()}

    # -- evaluating -------------------------------------------------------
    def forward(self, leaf_values: dict) -> dict:
        """Every node's value: exact rationals where the givens allow it,
        30-digit floats where they do not."""
        missing = [n for n in self.leaves if n not in leaf_values]
        if missing:
            raise GraphError(f"no value given for {', '.join(missing)}")
        values: dict[str, sympy.Expr] = {}
        subs: dict = {}
        for name, node in self.nodes.items():
            if node.expr is None:
                v = leaf_values[name]
                v = v if isinstance(v, sympy.Basic) else number(v)
            else:
                try:
                    v = settle(node.expr.xreplace(subs), name)
                except (OverflowError, ValueError, ZeroDivisionError, MemoryError) as exc:
                    if isinstance(exc, GraphError):
                        raise
                    raise GraphError(f"{name}: value cannot be computed ({type(exc).__name__}: "
                                     f"the number is too large or undefined)") from None
            values[name] = v
            subs[node.symbol] = v
        return values


def settle(value, where: str = "") -> sympy.Expr:
    """A computed number, kept exact if rational, else a 30-digit float.

    Raises GraphError for values that are not finite real numbers.
    """
    if not (value.is_Rational or value.is_Float):
        _check_magnitudes(value, where)
    out = value if (value.is_Rational or value.is_Float) else value.evalf(PRECISION)
    if out in (sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise GraphError(f"{where}: value is infinite or undefined ({out}; a division by zero?)")
    if not out.is_Number or out.is_real is False:
        raise GraphError(f"{where}: value is not a finite real number ({sympy.N(out, 6)})")
    if out.is_Rational and max(abs(out.p), out.q).bit_length() > MAX_EXACT_BITS:
        # Exact values that keep growing (repeated squaring) would cost
        # unbounded time and memory; past this size a 30-digit float serves.
        out = out.evalf(PRECISION)
    if abs(out) > MAX_MAGNITUDE:
        raise GraphError(f"{where}: value is too large to evaluate (about {sympy.N(out, 3)})")
    return out


def _check_magnitudes(expr, where: str):
    """Evaluate ``expr`` bottom-up in double precision and refuse any part
    beyond MAX_MAGNITUDE before the whole is evaluated at 30 digits:
    exp(exp(exp(x))) would otherwise run for minutes."""
    if expr.is_Number or not expr.args:
        return expr
    out = expr.func(*[_check_magnitudes(a, where) for a in expr.args]).evalf(15)
    if out.is_Float and abs(out) > MAX_MAGNITUDE:
        raise GraphError(f"{where}: value is too large to evaluate (a part of it is about {sympy.N(out, 3)})")
    return out


def nest(flat: list, shape: tuple):
    """Row-major nesting of a flat list.

    >>> nest([1, 2, 3, 4], (2, 2))
    [[1, 2], [3, 4]]
    """
    if len(shape) <= 1:
        return list(flat)
    step = len(flat) // shape[0]
    return [nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]
