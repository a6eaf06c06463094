r"""A graph whose nodes are named tensors.

Each named node is a leaf (input, target, parameter) or one line of the
forward pass: an expression tree of :class:`Apply` (an operation of
:data:`~derive.engine.tensor_op.TENSOR_OPS` with its parameters and output
shape), :class:`Ref` (a named node) and :class:`Const` (a number).  Shapes are
checked as the graph is built; the work of a derivation is one rule per
operation, whatever the sizes.

>>> g = TGraph("demo")
>>> W = g.leaf("W", (2, 3), "parameter"); x = g.leaf("x", (3,), "input")
>>> h = g.define("h", g.apply("tanh", g.apply("matmul", W, x)))
>>> L = g.define("L", g.apply("sum", g.apply("mul", h, h)), kind="loss")
>>> g.nodes["h"].shape, g.loss
((2,), 'L')
>>> import numpy as np
>>> v = g.forward({"W": np.ones((2, 3)), "x": np.array([1.0, 0, -1])})
>>> float(v["L"])
0.0
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy

from derive.engine import exprs as X
from derive.engine.tensor_op import ShapeError, tensor_op


@dataclass(frozen=True)
class Ref:
    name: str
    shape: tuple


@dataclass(frozen=True)
class Const:
    value: object          # a SymPy number
    shape: tuple = ()


@dataclass(frozen=True, eq=False)
class Apply:
    op: str
    args: tuple
    params: tuple          # ((name, value), ...)
    shape: tuple

    @property
    def pdict(self) -> dict:
        return dict(self.params)


@dataclass
class TNode:
    name: str
    kind: str              # input, target, parameter, forward, loss
    shape: tuple
    expr: object = None    # Apply / Ref / Const for computed nodes
    symbol: object = None  # its TensorSymbol
    step: tuple | None = None   # (sequence name, t) of an unrolled quantity
    order: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


class GraphBuildError(ValueError):
    """A shape or name problem while building (the message names it)."""


@dataclass
class TGraph:
    title: str = ""
    nodes: dict = field(default_factory=dict)
    loss: str | None = None
    wanted_inputs: list = field(default_factory=list)
    sequences: dict = field(default_factory=dict)   # name -> [node names, t = 1..T]

    # -- building -----------------------------------------------------------
    def leaf(self, name: str, shape: tuple, kind: str, tex: str | None = None) -> Ref:
        self._new(name)
        self.nodes[name] = TNode(name, kind, tuple(shape), symbol=X.TensorSymbol(name, shape, tex),
                                 order=len(self.nodes))
        return Ref(name, tuple(shape))

    def define(self, name: str, expr, kind: str = "forward", tex: str | None = None,
               step: tuple | None = None) -> Ref:
        self._new(name)
        shape = tuple(expr.shape)
        self.nodes[name] = TNode(name, kind, shape, expr, X.TensorSymbol(name, shape, tex), step,
                                 order=len(self.nodes))
        if kind == "loss":
            if shape:
                raise GraphBuildError(f"{name}: the loss must be a scalar, got shape {shape}")
            self.loss = name
        return Ref(name, shape)

    def _new(self, name):
        if name in self.nodes:
            raise GraphBuildError(f"{name}: defined twice")

    def ref(self, name: str) -> Ref:
        return Ref(name, self.nodes[name].shape)

    def apply(self, op_name: str, *args, **params) -> Apply:
        """One operation on earlier expressions; shapes checked (ShapeError)."""
        op = tensor_op(op_name)
        args = tuple(a if isinstance(a, (Ref, Const, Apply)) else Const(sympy.sympify(a)) for a in args)
        if op.inputs >= 0 and len(args) != op.inputs:
            raise ShapeError(f"{op_name}() takes {op.inputs} tensor argument{'s' * (op.inputs != 1)}, "
                             f"got {len(args)}")
        full = op.params_of(())
        full.update(params)
        shape = tuple(op.shape(tuple(a.shape for a in args), full))
        return Apply(op_name, args, tuple(full.items()), shape)

    # -- reading ------------------------------------------------------------
    def of_kind(self, *kinds) -> list:
        return [n for n in self.nodes.values() if n.kind in kinds]

    def computed(self) -> list:
        return [n for n in self.nodes.values() if n.expr is not None]

    def symbolic(self, e):
        """The SymPy matrix expression of an expression tree."""
        if isinstance(e, Ref):
            return self.nodes[e.name].symbol
        if isinstance(e, Const):
            return e.value
        op = tensor_op(e.op)
        if op.symbolic is None:
            raise ShapeError(f"no symbolic form for {e.op}")
        return op.symbolic(tuple(self.symbolic(a) for a in e.args), e.pdict)

    def forward(self, leaves: dict, keep_inner: dict | None = None) -> dict:
        """Every named node's value (numpy float64) by each operation's
        ``forward``; ``keep_inner`` (if given) receives every Apply's output."""
        values = {n: np.asarray(v, dtype=float) for n, v in leaves.items()}
        for node in self.computed():
            values[node.name] = np.asarray(self.evaluate(node.expr, values, keep_inner), dtype=float)
        return values

    def evaluate(self, e, values: dict, keep_inner: dict | None = None):
        if isinstance(e, Ref):
            return values[e.name]
        if isinstance(e, Const):
            return float(e.value)
        xs = tuple(np.asarray(self.evaluate(a, values, keep_inner), dtype=float) for a in e.args)
        out = np.asarray(tensor_op(e.op).forward(xs, e.pdict), dtype=float)
        if keep_inner is not None:
            keep_inner[id(e)] = (xs, out)
        return out

    def needs_grad(self) -> set:
        """Named nodes that depend on a parameter or a wanted input."""
        live = {n.name for n in self.of_kind("parameter")} | set(self.wanted_inputs)
        for node in self.computed():
            if _refs(node.expr) & live:
                live.add(node.name)
        return live

    def consumers(self) -> dict:
        out: dict = {n: [] for n in self.nodes}
        for node in self.computed():
            for r in sorted(_refs(node.expr)):
                out[r].append(node.name)
        return out

    def entries(self) -> int:
        return sum(n.size for n in self.nodes.values())


def _refs(e) -> set:
    if isinstance(e, Ref):
        return {e.name}
    if isinstance(e, Apply):
        out = set()
        for a in e.args:
            out |= _refs(a)
        return out
    return set()


def refs(e) -> set:
    """Names of the named nodes an expression tree reads."""
    return _refs(e)
