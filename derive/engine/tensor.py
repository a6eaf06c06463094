r"""Vectors and matrices on the scalar graph.

A shaped quantity is a *group* of scalar graph nodes, so one small scalar
engine (:mod:`derive.engine.graph`, :mod:`derive.engine.backprop`) serves every problem and
a derivation stays linear in the size of the unrolled graph.

Naming scheme (row-major, 1-based, valid for :func:`derive.engine.parse.check_name`):
component ``(i, j)`` of a quantity named ``W`` is the scalar node ``W_i_j``;
component ``i`` of a vector ``c`` is ``c_i``; a quantity may give its own
``prefix`` (the vector ``H0`` has components ``H_0_1, H_0_2``, so that its
entries read like those of ``H_1``).  Component LaTeX puts the index after the
name's own subscript: ``W_{i}`` -> ``W_{i,1,2}``, ``H_{0}`` -> ``H_{0,1}``.

A :class:`Tensor` is a shape and a row-major tuple of SymPy expressions.
Arithmetic on tensors (``+ - *``, ``@``, :func:`apply`, :func:`stack`,
:func:`dot`, :func:`total`) builds expressions only; :meth:`TensorGraph.define`
turns one into named graph nodes (and a group, so JSON shows nested lists).

>>> tg = TensorGraph("demo")
>>> W = tg.parameter("W", (2, 2)); x = tg.input("x", (2,)); y = tg.target("y", (2,))
>>> h = tg.define("h", apply("tanh", W @ x))
>>> h.names
('h_1', 'h_2')
>>> tg.graph.nodes["h_1"].expr
tanh(W_1_1*x_1 + W_1_2*x_2)
>>> _ = tg.loss("L", total((h - y) * (h - y)) / 2)
>>> tg.graph.groups["W"].names
('W_1_1', 'W_1_2', 'W_2_1', 'W_2_2')
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy

from derive.engine.graph import Graph, GraphError, default_latex, nest
from derive.engine.ops import OPS
from derive.engine.parse import check_name


def component_name(name: str, index: tuple) -> str:
    """The scalar node name of one component (1-based, row-major).

    >>> component_name("W_i", (0, 1)), component_name("c", (2,)), component_name("E", ())
    ('W_i_1_2', 'c_3', 'E')
    """
    if not index:
        return name
    return name + "_" + "_".join(str(i + 1) for i in index)


def component_latex(latex: str, index: tuple) -> str:
    r"""LaTeX of one component: the index joins the name's own subscript.

    >>> component_latex("W_{i}", (0, 1)), component_latex("U", (1, 0)), component_latex("H_{0}", (1,))
    ('W_{i,1,2}', 'U_{2,1}', 'H_{0,2}')
    >>> component_latex(r"h_{\text{prev}}", (0,))
    'h_{\\text{prev},1}'

    """
    if not index:
        return latex
    idx = ",".join(str(i + 1) for i in index)
    open_at = _trailing_subscript(latex)
    if open_at is not None:
        return f"{latex[:-1]},{idx}}}"
    return f"{latex}_{{{idx}}}"


def _trailing_subscript(latex: str):
    """Where the name's own subscript ``_{...}`` opens, if it ends the name
    (``h_{\\text{prev}}``), else None."""
    depth, start = 0, None
    for k, ch in enumerate(latex):
        if ch == "{":
            if depth == 0:
                start = k if k > 0 and latex[k - 1] == "_" else None
            depth += 1
        elif ch == "}":
            depth -= 1
    return start if latex.endswith("}") and depth == 0 else None


def _indices(shape: tuple):
    return list(itertools.product(*(range(n) for n in shape)))


def _size(shape: tuple) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


@dataclass(frozen=True)
class Tensor:
    """A shaped quantity: ``shape`` and a row-major tuple of scalar expressions.

    ``name``/``names``/``latex`` are set when the tensor is made of graph nodes.

    >>> a = Tensor((2,), tuple(sympy.symbols("a1 a2")))
    >>> (2 * a + a).exprs
    (3*a1, 3*a2)
    """

    shape: tuple
    exprs: tuple
    name: str | None = None
    names: tuple = ()
    latex: str = ""

    def __post_init__(self):
        if len(self.exprs) != _size(self.shape):
            raise GraphError(f"{self.name or 'tensor'}: {len(self.exprs)} entries for shape {self.shape}")

    @property
    def size(self) -> int:
        return len(self.exprs)

    def at(self, *index):
        """One entry (0-based indices)."""
        flat = 0
        for i, n in zip(index, self.shape):
            if not 0 <= i < n:
                raise IndexError(f"index {index} out of range for shape {self.shape}")
            flat = flat * n + i
        return self.exprs[flat]

    def row(self, i: int) -> "Tensor":
        """Row ``i`` (0-based) of a matrix, as a vector."""
        r, c = self.shape
        return Tensor((c,), self.exprs[i * c:(i + 1) * c])

    def col(self, j: int) -> "Tensor":
        """Column ``j`` (0-based) of a matrix, as a vector."""
        r, c = self.shape
        return Tensor((r,), tuple(self.exprs[i * c + j] for i in range(r)))

    @property
    def T(self) -> "Tensor":
        if len(self.shape) != 2:
            return self
        r, c = self.shape
        return Tensor((c, r), tuple(self.exprs[i * c + j] for j in range(c) for i in range(r)))

    def tolist(self):
        return nest(list(self.exprs), self.shape)

    # -- arithmetic (builds expressions only) ---------------------------
    def _zip(self, other, fn, what):
        if isinstance(other, Tensor):
            if other.shape != self.shape:
                raise GraphError(f"{what}: shapes {self.shape} and {other.shape} differ")
            return Tensor(self.shape, tuple(fn(a, b) for a, b in zip(self.exprs, other.exprs)))
        other = sympy.sympify(other)
        return Tensor(self.shape, tuple(fn(a, other) for a in self.exprs))

    def __add__(self, other):
        return self._zip(other, lambda a, b: a + b, "+")

    __radd__ = __add__

    def __sub__(self, other):
        return self._zip(other, lambda a, b: a - b, "-")

    def __rsub__(self, other):
        return self._zip(other, lambda a, b: b - a, "-")

    def __mul__(self, other):
        """Elementwise (Hadamard) product, or scaling by a scalar."""
        return self._zip(other, lambda a, b: a * b, "*")

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self._zip(other, lambda a, b: a / b, "/")

    def __neg__(self):
        return Tensor(self.shape, tuple(-a for a in self.exprs))

    def __matmul__(self, other: "Tensor"):
        """Matrix-vector, matrix-matrix, or vector-vector (dot) product."""
        if len(self.shape) == 2 and len(other.shape) == 1:
            r, c = self.shape
            if other.shape[0] != c:
                raise GraphError(f"@: a {r}x{c} matrix times a vector of {other.shape[0]}")
            return Tensor((r,), tuple(sympy.Add(*[self.exprs[i * c + j] * other.exprs[j] for j in range(c)])
                                      for i in range(r)))
        if len(self.shape) == 2 and len(other.shape) == 2:
            r, c = self.shape
            c2, k = other.shape
            if c2 != c:
                raise GraphError(f"@: shapes {self.shape} and {other.shape} do not chain")
            return Tensor((r, k), tuple(sympy.Add(*[self.exprs[i * c + j] * other.exprs[j * k + m]
                                                    for j in range(c)]) for i in range(r) for m in range(k)))
        if len(self.shape) == 1 and len(other.shape) == 1:
            return dot(self, other)
        raise GraphError(f"@: unsupported shapes {self.shape} and {other.shape}")


def tensor(values, shape: tuple | None = None) -> Tensor:
    """A constant tensor from nested lists (or a flat list with ``shape``).

    >>> tensor([[1, 2], [3, 4]]).T.exprs
    (1, 3, 2, 4)
    """
    if shape is None:
        shape, flat = _shape_of(values), _flatten(values)
    else:
        flat = list(values)
    return Tensor(tuple(shape), tuple(sympy.sympify(v) for v in flat))


def _shape_of(values) -> tuple:
    if isinstance(values, (list, tuple)):
        return (len(values),) + (_shape_of(values[0]) if values else ())
    return ()


def _flatten(values) -> list:
    if isinstance(values, (list, tuple)):
        return [x for v in values for x in _flatten(v)]
    return [values]


def apply(op: str, t: Tensor) -> Tensor:
    """An elementwise activation from the operation table (``tanh``, ``sigmoid``...).

    >>> apply("sigmoid", tensor([0, 0])).exprs
    (1/2, 1/2)
    """
    if op not in OPS:
        raise GraphError(f"unknown operation {op!r}; known: {', '.join(OPS)}")
    return Tensor(t.shape, tuple(OPS[op].sympy(e) for e in t.exprs))


def stack(*vectors: Tensor) -> Tensor:
    """Vectors one above the other, ``[h_prev; x]``.

    >>> stack(tensor([1, 2]), tensor([3])).exprs
    (1, 2, 3)
    """
    for v in vectors:
        if len(v.shape) != 1:
            raise GraphError(f"stack: expects vectors, got shape {v.shape}")
    exprs = tuple(e for v in vectors for e in v.exprs)
    return Tensor((len(exprs),), exprs)


def dot(a: Tensor, b: Tensor):
    """The scalar a . b of two vectors (a SymPy expression)."""
    if a.shape != b.shape:
        raise GraphError(f"dot: shapes {a.shape} and {b.shape} differ")
    return sympy.Add(*[x * y for x, y in zip(a.exprs, b.exprs)])


def total(t: Tensor):
    """The sum of every entry (a SymPy expression)."""
    return sympy.Add(*t.exprs)


def columns(vectors) -> Tensor:
    """Vectors side by side as the columns of a matrix.

    >>> columns([tensor([1, 2]), tensor([3, 4])]).tolist()
    [[1, 3], [2, 4]]
    """
    vectors = list(vectors)
    rows = vectors[0].shape[0]
    return Tensor((rows, len(vectors)), tuple(v.exprs[i] for i in range(rows) for v in vectors))


def rows(vectors) -> Tensor:
    """Vectors one below the other as the rows of a matrix."""
    vectors = list(vectors)
    return Tensor((len(vectors), vectors[0].shape[0]), tuple(e for v in vectors for e in v.exprs))


class TensorGraph:
    """Builds a :class:`~derive.engine.graph.Graph` from shaped quantities.

    Every declared or defined quantity is recorded in ``block_of`` (scalar
    node -> the quantity it belongs to), which :func:`block_edges` reads to see
    the graph at the level of vectors (H_1 -> H_2 -> O_2 ...).
    """

    def __init__(self, title: str = ""):
        self.graph = Graph(title)
        self.tensors: dict[str, Tensor] = {}
        #: quantity -> its kind (input, target, parameter, forward, loss)
        self.kinds: dict[str, str] = {}
        self.block_of: dict[str, str] = {}

    # -- leaves -----------------------------------------------------------
    def leaf(self, name: str, shape: tuple, kind: str, *, prefix: str | None = None,
             latex: str | None = None, group: bool = True) -> Tensor:
        """Declare an input, target or parameter of the given shape."""
        check_name(name)
        shape = tuple(shape)
        latex = latex or default_latex(name)
        base = prefix or name
        names, syms = [], []
        for idx in _indices(shape):
            n = component_name(base, idx)
            syms.append(self.graph.add_leaf(n, kind, latex=component_latex(latex, idx)))
            names.append(n)
            self.block_of[n] = name
        t = Tensor(shape, tuple(syms), name, tuple(names), latex)
        self._record(t, kind, group)
        return t

    def input(self, name, shape=(), **kw) -> Tensor:
        return self.leaf(name, shape, "input", **kw)

    def target(self, name, shape=(), **kw) -> Tensor:
        return self.leaf(name, shape, "target", **kw)

    def parameter(self, name, shape=(), **kw) -> Tensor:
        return self.leaf(name, shape, "parameter", **kw)

    # -- computed quantities ---------------------------------------------
    def define(self, name: str, value, *, kind: str = "forward", latex: str | None = None,
               group: bool = True, prefix: str | None = None) -> Tensor:
        """Named graph nodes for ``value`` (a Tensor, or a scalar expression)."""
        check_name(name)
        if not isinstance(value, Tensor):
            value = Tensor((), (sympy.sympify(value),))
        latex = latex or default_latex(name)
        base = prefix or name
        names, syms = [], []
        for idx, expr in zip(_indices(value.shape), value.exprs):
            n = component_name(base, idx)
            syms.append(self.graph.add(n, expr, kind=kind, latex=component_latex(latex, idx)))
            names.append(n)
            self.block_of[n] = name
        t = Tensor(value.shape, tuple(syms), name, tuple(names), latex)
        self._record(t, kind, group)
        return t

    def softmax(self, name: str, logits: Tensor, *, normaliser: str | None = None,
                latex: str | None = None) -> Tensor:
        """alpha_j = exp(e_j) / S with S = sum_k exp(e_k) a node of its own
        (named ``normaliser``, default ``S_<name>``)."""
        s_name = normaliser or f"S_{name}"
        S = self.define(s_name, sympy.Add(*[sympy.exp(e) for e in logits.exprs]), group=False)
        s = S.exprs[0]
        return self.define(name, Tensor(logits.shape, tuple(sympy.exp(e) / s for e in logits.exprs)),
                           latex=latex)

    def loss(self, name: str, expr, latex: str | None = None) -> sympy.Symbol:
        """The scalar loss node."""
        return self.define(name, expr, kind="loss", latex=latex, group=False).exprs[0]

    def group(self, name: str, parts, kind: str = "forward", latex: str | None = None) -> None:
        """Register several tensors as one quantity, stacked as rows
        (``H`` = the rows H_1 ... H_T), for JSON's nested lists."""
        parts = list(parts)
        names = tuple(n for p in parts for n in p.names)
        shape = (len(parts),) + parts[0].shape
        self.graph.add_group(name, shape, names, kind, latex)

    def want_adjoint(self, t: Tensor) -> None:
        """Ask for dL/d(input) too (attention's s_prev and h)."""
        for n in t.names:
            if n not in self.graph.wrt_inputs:
                self.graph.wrt_inputs.append(n)

    def _record(self, t: Tensor, kind: str, group: bool) -> None:
        if t.name in self.tensors:
            raise GraphError(f"{t.name}: defined twice")
        self.tensors[t.name] = t
        self.kinds[t.name] = kind
        if group and t.shape:
            self.graph.add_group(t.name, t.shape, t.names, kind, t.latex)


# ---------------------------------------------------------------------------
# The graph seen at the level of quantities: which vector feeds which.


def block_edges(tg: TensorGraph, hidden=()) -> dict:
    """quantity -> the quantities it feeds directly, in graph order.

    Quantities in ``hidden`` (pre-activations such as Z_t) are looked
    through: A -> Z_t -> H_t becomes A -> H_t, as a textbook writes dH_t/dW.
    """
    hidden = set(hidden)
    g = tg.graph
    direct: dict[str, list] = {}
    for n, users in g.consumers().items():
        a = tg.block_of.get(n)
        for c in users:
            b = tg.block_of.get(c)
            if a is None or b is None or a == b:
                continue
            lst = direct.setdefault(a, [])
            if b not in lst:
                lst.append(b)

    def through(b, seen):
        if b not in hidden:
            return [b]
        out = []
        for c in direct.get(b, []):
            if c not in seen:
                for x in through(c, seen | {c}):
                    if x not in out:
                        out.append(x)
        return out

    edges = {}
    for a, bs in direct.items():
        if a in hidden:
            continue
        out = []
        for b in bs:
            for x in through(b, {b}):
                if x not in out:
                    out.append(x)
        edges[a] = out
    return edges


def block_paths(edges: dict, src: str, dst: str) -> list:
    """Every path src -> ... -> dst in the quantity graph (as lists of names)."""
    out = []

    def walk(path):
        last = path[-1]
        if last == dst:
            out.append(list(path))
            return
        for nxt in edges.get(last, []):
            walk(path + [nxt])

    walk([src])
    return out


def jacobian(tg: TensorGraph, forward: dict, out: str, wrt: str, hidden=()) -> "list[list[float]]":
    """d out / d wrt as a float matrix (rows: out's components, columns:
    wrt's), at the forward values, through the quantities in ``hidden``.

    Computed from each node's local derivatives (the table's rules), so it is
    an independent view of the same chain rule the derivation records.
    """
    from derive.engine.backprop import local_derivative

    g = tg.graph
    subs = {g.nodes[n].symbol: v for n, v in forward.items()}
    wrt_t, out_t = tg.tensors[wrt], tg.tensors[out]
    hidden = set(hidden)
    memo: dict = {}

    def d(node: str, leaf: str) -> float:
        """d node / d leaf through hidden quantities only."""
        key = (node, leaf)
        if key in memo:
            return memo[key]
        expr = g.nodes[node].expr
        total_ = 0.0
        for s in expr.free_symbols:
            name = s.name
            if name == leaf:
                part = 1.0
            elif tg.block_of.get(name) in hidden:
                part = d(name, leaf)
            else:
                continue
            if part:
                local = local_derivative(expr, s, g.nodes[node].symbol).xreplace(subs)
                total_ += float(local) * part
        memo[key] = total_
        return total_

    return [[d(o, w) for w in wrt_t.names] for o in out_t.names]


def of_kind(tg: TensorGraph, *kinds: str) -> list:
    """The quantities of the given kinds, in declaration order."""
    return [t for n, t in tg.tensors.items() if tg.kinds[n] in kinds]


__all__ = ["of_kind", "Tensor", "TensorGraph", "tensor", "apply", "stack", "dot", "total", "columns", "rows",
           "component_name", "component_latex", "block_edges", "block_paths", "jacobian"]
