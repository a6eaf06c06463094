r"""Vectors and matrices on the scalar graph.

A shaped quantity is a *group* of scalar graph nodes, so one small scalar
engine (:mod:`derive.graph`, :mod:`derive.backprop`) serves every problem and
a derivation stays linear in the size of the unrolled graph.

Naming scheme (row-major, 1-based, valid for :func:`derive.parse.check_name`):
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

from .graph import Graph, GraphError, default_latex, nest
from .ops import OPS
from .parse import check_name


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
    """Builds a :class:`~derive.graph.Graph` from shaped quantities.

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
    from .backprop import local_derivative

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


__all__ = ["of_kind", "TensorProblem", "TensorModel", "TensorSolution", "Dim", "matrix_math", "Tensor", "TensorGraph", "tensor", "apply", "stack", "dot", "total", "columns", "rows",
           "component_name", "component_latex", "block_edges", "block_paths", "jacobian"]


# ---------------------------------------------------------------------------
# Problems over shaped quantities: sizes (T, n, ...) as problem parameters.

from . import blocks as B  # noqa: E402  (problem layer, above the builder)
from .fmt import num_tex, num_text  # noqa: E402
from .numeric import VerificationError  # noqa: E402
from .optim import Optimizer, OptimizerError  # noqa: E402
from .parse import ExprError, number  # noqa: E402
from .problem import GraphSolution, Problem  # noqa: E402
from .spec import SpecError  # noqa: E402

#: graphs with at most this many derivation steps are also shown component by component
COMPONENT_STEPS_LIMIT = 90


@dataclass(frozen=True)
class Dim:
    """A size the user may set (``--set T=5``): name, default, allowed range."""

    name: str
    default: int
    low: int
    high: int
    about: str = ""


def matrix_math(values, shape: tuple) -> B.Math:
    """A vector or matrix of numbers as Math (bmatrix / nested list).

    >>> matrix_math([sympy.Rational(1, 2), 1], (2,)).text
    '[0.5, 1]'
    """
    values = list(values)
    if not shape:
        return B.Math(num_tex(values[0]), num_text(values[0]))
    text = str(nest([num_text(v) for v in values], shape)).replace("'", "")
    if len(shape) == 1:
        body = r" \\ ".join(num_tex(v) for v in values)
    else:
        r, c = shape[0], _size(shape[1:])
        body = r" \\ ".join(" & ".join(num_tex(v) for v in values[i * c:(i + 1) * c]) for i in range(r))
    return B.Math(rf"\begin{{bmatrix}} {body} \end{{bmatrix}}", text)


def shape_text(shape: tuple) -> str:
    return " x ".join(str(n) for n in shape) if shape else "scalar"


def shape_math(shape: tuple):
    """A shape as a table cell: ``2 \\times 4`` typeset, ``scalar`` in words."""
    if not shape:
        return "scalar"
    return B.Math(r" \times ".join(str(n) for n in shape), shape_text(shape))


class TensorModel:
    """What a problem builds for one choice of sizes: the graph (``tg``) and
    the model's own parts of the worked solution.  Subclasses override the
    hooks; each receives the :class:`TensorSolution`."""

    def __init__(self, tg: TensorGraph, dims: dict):
        self.tg = tg
        self.dims = dims

    def equations(self) -> list:
        """The forward pass in matrix notation (EqRows)."""
        return []

    def notation(self) -> list:
        """Prose blocks saying what the equations' notation means (sizes,
        stacking order, elementwise operations), for a question sheet that
        stands alone; empty if the equations' own notes say enough."""
        return []

    def intro_blocks(self, sol) -> list:
        return []

    def matrix_blocks(self, sol) -> list:
        """The backward pass in matrix form, and anything else the question asks."""
        return []

    def extra_checks(self, sol) -> list:
        """More ``checks`` records (e.g. the matrix form against the components)."""
        return []

    def extra_json(self, sol) -> dict:
        return {}

    def matrix_data(self) -> dict | None:
        """The problem as vector-spec data, for the matrix-form backward pass
        (:mod:`derive.mform`); None where the problem has none."""
        return None


class TensorProblem(Problem):
    """A built-in over vectors and matrices whose sizes are parameters.

    ``build(**dims)`` returns a :class:`TensorModel`; ``values(**dims)``
    returns the default givens, ``{quantity: nested list}`` (a documented,
    deterministic rule, so every size has reproducible numbers).  ``solve``
    accepts sizes, whole quantities (nested lists), single components
    (``U_1_2``) and the update rule's hyper-parameters (``lr``).
    """

    def __init__(self, *, id: str, title: str, source: str, question, order: tuple, dims: tuple,
                 build, values, optimizer: dict, max_nodes: int = 6000, leaf_dims: dict | None = None,
                 matrix_spec=None):
        #: leaf -> the size names of its axes (sizes follow the values: a U of 2 x 3 means d = 3)
        self.leaf_dims = dict(leaf_dims or {})
        #: (**dims) -> the problem as vector-spec data: sizes beyond the component-wise range go
        #: to the matrix engine alone
        self.matrix_spec = matrix_spec
        self.id, self.title, self.source, self.order = id, title, source, order
        self._question = question
        self.dims = tuple(dims)
        self.build = build
        self.default_values = values
        self.optimizer = Optimizer.from_spec(optimizer)
        self.max_nodes = max_nodes
        self._models: dict = {}

    @property
    def question(self) -> str:
        return self._question(**self.default_dims()) if callable(self._question) else self._question

    def default_dims(self) -> dict:
        return {d.name: d.default for d in self.dims}

    def model(self, **dims) -> TensorModel:
        key = tuple(sorted(dims.items()))
        if key not in self._models:
            model = self.build(**dims)
            if len(model.tg.graph.nodes) > self.max_nodes:
                raise SpecError("values", f"these sizes give {len(model.tg.graph.nodes)} scalar nodes; "
                                          f"at most {self.max_nodes} are allowed")
            self._models = {key: model}   # one size at a time is enough, and bounds memory
        return self._models[key]

    def solve(self, values: dict | None = None, steps: int = 1) -> "TensorSolution":
        if steps < 1:
            raise SpecError("--steps", "must be at least 1")
        given = dict(values or {})
        dims = self.default_dims()
        large = False
        inferred = self._dims_from_values(given)
        for d in self.dims:
            if d.name in given:
                high = 10**9 if self.matrix_spec else d.high       # beyond d.high: bounded by memory
                dims[d.name] = _int_in(f"values.{d.name}", given.pop(d.name), d.low, high)
                if d.name in inferred and inferred[d.name][0] != dims[d.name]:
                    n, src = inferred[d.name]
                    raise SpecError(f"values.{src}", f"has {d.name} = {n}, but {d.name} = {dims[d.name]} is given")
            elif d.name in inferred:
                dims[d.name] = inferred[d.name][0]
            large = large or dims[d.name] > d.high
        if large and self.matrix_spec is not None:
            return self._solve_matrix(dims, given, steps)
        for d in self.dims:
            if dims[d.name] > d.high:
                raise SpecError(f"values.{d.name}", f"must be a whole number from {d.low} to {d.high}")
        model = self.model(**dims)
        leaves, optimizer = self._leaves(model, dims, given)
        instance = _Instance(self, model, dims)
        return TensorSolution(instance, leaves, optimizer, steps)

    def _dims_from_values(self, given: dict) -> dict:
        """size name -> (size, quantity) read off the shapes of given quantities;
        two quantities that disagree are refused in one line naming both."""
        out: dict = {}
        for name, raw in given.items():
            axes = self.leaf_dims.get(name)
            if axes is None or not isinstance(raw, list):
                continue
            got = _shape_of(raw)
            if len(got) != len(axes):
                continue            # the shape check names it
            for dim, n in zip(axes, got):
                if not isinstance(dim, str):
                    continue
                if dim in out and out[dim][0] != n:
                    m, src = out[dim]
                    raise SpecError(f"values.{name}", f"is {' x '.join(map(str, got))}, so {dim} = {n}, "
                                                      f"but {src} has {dim} = {m}")
                out[dim] = (n, name)
        return out

    def _room(self, dims: dict) -> None:
        """Refuse sizes whose givens alone pass the memory limit, before making them."""
        from .matspec import DEFAULT_MAX_MEMORY, memory_words
        from .msolution import LIMITS
        limit = LIMITS["max_memory"] or DEFAULT_MAX_MEMORY
        need = 0
        for name, axes in self.leaf_dims.items():
            size = 1
            for a in axes:
                size *= dims.get(a, 1) if isinstance(a, str) else sum(dims.values())
            need += 16 * size + 100 * size      # a value, its adjoint, and the exact default it starts from
        steps = max([dims[d] for d in dims if d.startswith("T")] + [1])
        need += steps * 4096 * 8            # the unrolled nodes
        if need > limit:
            worst = max(self.dims, key=lambda d: dims[d.name] / max(1, d.default))
            raise SpecError(f"values.{worst.name}", f"{dims[worst.name]} would need about {memory_words(need)} "
                                                    f"of memory; the limit is {memory_words(limit)} "
                                                    "(raise it with --max-memory MB)")

    def _solve_matrix(self, dims: dict, given: dict, steps: int):
        """Sizes beyond the component-wise range: the matrix engine alone."""
        import numpy as np

        from .matspec import build_matrix_spec
        from .msolution import LIMITS, MatrixSolution, apply_given
        from .matspec import DEFAULT_MAX_MEMORY
        self._room(dims)
        defaults = self.default_values(**dims)
        arrays = {k: np.asarray([[float(x) for x in row] for row in v] if v and isinstance(v[0], list)
                                else [float(x) for x in v], dtype=float) for k, v in defaults.items()}
        limit = LIMITS["max_memory"] or DEFAULT_MAX_MEMORY
        try:
            spec = build_matrix_spec(self.matrix_spec(**dims), arrays, limit)
        except SpecError as exc:           # the built-in's sizes are values, not spec fields
            raise SpecError(f"values.{exc.where.split('.')[-1]}" if exc.where.startswith("unroll.")
                            else exc.where, exc.what) from None
        leaves, optimizer = apply_given(spec, self.optimizer, given)
        problem = _Stub(self, dims)
        return MatrixSolution(problem, spec, leaves, optimizer, steps)

    def _leaves(self, model: TensorModel, dims: dict, given: dict):
        tg = model.tg
        defaults = self.default_values(**dims)
        leaves: dict = {}
        for t in of_kind(tg, "input", "target", "parameter"):
            leaves.update(_flat_values(t, defaults[t.name], f"{self.id}.{t.name}"))
        hyper = {}
        for name, raw in given.items():
            where = f"values.{name}"
            if name in tg.tensors and tg.kinds[name] in ("input", "target", "parameter"):
                leaves.update(_flat_values(tg.tensors[name], raw, where))
            elif name in leaves:
                leaves[name] = _number(where, raw)
            elif name in self.optimizer.hyper:
                hyper[name] = raw
            else:
                known = [d.name for d in self.dims] + [t.name for t in of_kind(tg, "input", "target", "parameter")]
                raise SpecError(where, "unknown name; known: " + ", ".join(known + list(self.optimizer.hyper)))
        optimizer = self.optimizer
        if hyper:
            try:
                optimizer = optimizer.with_hyper(**hyper)
            except OptimizerError as exc:
                raise SpecError("values", str(exc)) from None
        return leaves, optimizer


def _int_in(where: str, raw, low: int, high: int) -> int:
    try:
        v = number(raw)
    except ExprError as exc:
        raise SpecError(where, str(exc)) from None
    if not v.is_Integer or not low <= int(v) <= high:
        raise SpecError(where, f"must be a whole number from {low} to {high}")
    return int(v)


def _number(where: str, raw):
    if isinstance(raw, (list, dict)):
        raise SpecError(where, "expected a number")
    if isinstance(raw, sympy.Basic) and raw.is_Rational:   # a built-in's exact default
        return raw
    try:
        return number(raw)
    except ExprError as exc:
        raise SpecError(where, str(exc)) from None


def _flat_values(t: Tensor, raw, where: str) -> dict:
    """Scalar node -> number from a nested list of ``t``'s shape."""
    if not t.shape:
        return {t.names[0]: _number(where, raw)}
    got = _shape_of(raw) if isinstance(raw, list) else ()
    flat = _flatten(raw) if isinstance(raw, list) else []
    if got != t.shape or len(flat) != t.size:
        raise SpecError(where, f"expected a {shape_text(t.shape)} nested list (row-major), got "
                               f"{shape_text(got) if got else repr(raw)[:40]}")
    return {n: _number(f"{where}[{k}]", v) for k, (n, v) in enumerate(zip(t.names, flat))}


class _Stub:
    """The problem at large sizes, as MatrixSolution reads it."""

    def __init__(self, parent, dims):
        self.id, self.title, self.source, self.order = parent.id, parent.title, parent.source, parent.order
        q = parent._question
        self.question = q(**dims) if callable(q) else q
        self.dims = dims


class _Instance:
    """The problem at one choice of sizes, as GraphSolution reads it."""

    def __init__(self, parent: TensorProblem, model: TensorModel, dims: dict):
        self.parent, self.model, self.dims = parent, model, dims
        self.id, self.title, self.source, self.order = parent.id, parent.title, parent.source, parent.order
        q = parent._question
        self.question = q(**dims) if callable(q) else q
        self.graph = model.tg.graph
        if not hasattr(model, "_derivation"):
            from .backprop import derive

            model._derivation = derive(self.graph)
        self.derivation = model._derivation


class TensorSolution(GraphSolution):
    """A GraphSolution that shows quantities as vectors and matrices."""

    def __init__(self, problem: _Instance, leaves: dict, optimizer: Optimizer, steps: int = 1):
        super().__init__(problem, leaves, optimizer, steps)
        self.model = problem.model
        self.dims = problem.dims
        extra = self.model.extra_checks(self)
        if self.matrix_form is not None:
            extra = list(extra) + [self.matrix_form.compare(self._adjoint_or_none)] + \
                [c for c in self.matrix_form.checks if c["method"] not in ("numpy-backprop", "finite-difference")]
        failed = [c for c in extra if c["passed"] is False]
        if failed:
            raise VerificationError(f"{problem.id}: {failed[0]['method']} disagrees with the "
                                    f"component-wise derivation ({failed[0]})")
        self.checks = list(self.checks) + list(extra)

    @property
    def matrix_form(self):
        """The matrix-form derivation at this solution's point (one step list
        for the worked solution, JSON ``matrix_steps`` and codegen), or None."""
        if not hasattr(self, "_matrix_form"):
            self._matrix_form = None
            data = self.model.matrix_data()
            if data is not None:
                import numpy as np

                from .matspec import build_matrix_spec
                from .mform import MatrixForm
                tg = self.model.tg
                given = {t.name: np.array([float(self.leaves[n]) for n in t.names], dtype=float).reshape(t.shape)
                         for t in of_kind(tg, "input", "target", "parameter")}
                self._matrix_form = MatrixForm(build_matrix_spec(data, given))
        return self._matrix_form

    def matrix_form_blocks(self) -> list:
        """The backward pass in matrix form as blocks (formulas, then values)."""
        from .mform import matrix_blocks
        return matrix_blocks(self.matrix_form) if self.matrix_form is not None else []

    def _adjoint_or_none(self, name: str):
        t = self.model.tg.tensors.get(name)
        return None if t is None else self.adjoint_of(name)

    # -- helpers for models ---------------------------------------------
    def value_of(self, name: str) -> list:
        """A quantity's forward values (row-major list)."""
        return [self.forward[n] for n in self.model.tg.tensors[name].names]

    def adjoint_of(self, name: str) -> list:
        """dL/d(quantity) from the derivation (0 where it does not reach L)."""
        adj = self.evaluation.adjoint
        return [adj.get(n, sympy.Integer(0)) for n in self.model.tg.tensors[name].names]

    def grad_tex(self, name: str) -> str:
        t = self.model.tg.tensors[name]
        return rf"\frac{{\partial {self.graph.nodes[self.graph.loss].latex}}}{{\partial {t.latex}}}"

    @property
    def small(self) -> bool:
        return len(self.derivation.steps) <= COMPONENT_STEPS_LIMIT

    # -- JSON -------------------------------------------------------------
    def to_json(self) -> dict:
        out = super().to_json()
        out["dims"] = dict(self.dims)
        out.update(self.model.extra_json(self))
        if self.matrix_form is not None:
            out["matrix_steps"] = self.matrix_form.steps_json()
        return out

    # -- worked solution ----------------------------------------------------
    def blocks(self) -> list:
        tg, g, m = self.model.tg, self.graph, self.model
        out: list = []
        if self.problem.question:
            out.append(B.prose(B.question_text(self.problem.question)))
        out += m.intro_blocks(self)
        out.append(B.Heading("Given"))
        rows = []
        for t in of_kind(tg, "input", "target", "parameter"):
            rows.append((B.Math(t.latex, t.name), tg.kinds[t.name], shape_math(t.shape),
                         matrix_math([self.leaves[n] for n in t.names], t.shape)))
        out.append(B.Table(("quantity", "kind", "shape", "value"), tuple(rows), align="lllr"))
        out.append(B.rule_prose(self.optimizer))

        out.append(B.Heading("Forward pass"))
        eqs = m.equations()
        if eqs:
            out.append(B.Equations(tuple(eqs)))
        rows = [(B.Math(t.latex, t.name), matrix_math(self.value_of(t.name), t.shape))
                for t in of_kind(tg, "forward", "loss")]
        out.append(B.Table(("quantity", "value"), tuple(rows), align="lr"))

        names, names_text, nums = self._names_tex(), self._names_text(), self._numbers()
        if self.small:
            out.append(B.Heading("Forward pass, component by component", 3))
            out.append(B.Equations(tuple(
                self._chain_row(g.nodes[n].symbol, g.nodes[n].expr, self.forward[n], names, nums, names_text)
                for n in g.computed)))
            out.append(B.Heading("Backward pass, component by component (chain rule, node by node)"))
            adj_tex = self.derivation.adjoint_latex()
            out.append(B.Equations(tuple(self._step_row(s, names, nums, names_text, adj_tex)
                                         for s in self.derivation.steps[1:])))
        else:
            out.append(B.prose(f"The graph has {len(g.nodes)} scalar nodes and "
                               f"{len(self.derivation.steps)} chain-rule steps; they are derived and "
                               "verified component by component, and shown below in matrix form."))
        out += self.matrix_form_blocks()
        out += m.matrix_blocks(self)

        out.append(B.Heading("Gradients"))
        grows = []
        for t in of_kind(tg, "parameter"):
            grows.append(B.EqRow(B.Math(self.grad_tex(t.name), f"d{g.loss}/d{t.name}"),
                                 (matrix_math(self.adjoint_of(t.name), t.shape),)))
        for t in of_kind(tg, "input"):
            if t.names and t.names[0] in g.wrt_inputs:
                grows.append(B.EqRow(B.Math(self.grad_tex(t.name), f"d{g.loss}/d{t.name}"),
                                     (matrix_math(self.adjoint_of(t.name), t.shape),), "an input's adjoint"))
        out.append(B.Equations(tuple(grows)))

        out.append(B.Heading("Update"))
        out += self._tensor_update_blocks()
        out.append(B.Heading("Verification"))
        own = {"numpy-backprop", "finite-difference"}
        out.append(B.prose("Symbolic gradients against an independent numpy backprop and central "
                           "finite differences at the given point"
                           + (", and the matrix form against the component-wise derivation:"
                              if any(c["method"] not in own for c in self.checks) else ":")))
        out.append(B.Checks(tuple(self.checks)))
        return out

    def _tensor_update_blocks(self) -> list:
        tg, opt = self.model.tg, self.optimizer
        params = of_kind(tg, "parameter")
        if opt.rule == "sgd" and opt.hyper["momentum"] == 0 and opt.hyper["weight_decay"] == 0:
            rows = []
            for t in params:
                rows.append(B.EqRow(
                    B.Math(t.latex + r"^{+}" if "^" not in t.latex else rf"{{{t.latex}}}^{{+}}", t.name + "+"),
                    (B.Math(rf"{t.latex} - \eta \, {self.grad_tex(t.name)}", f"{t.name} - lr * d{self.graph.loss}/d{t.name}"),
                     matrix_math([self.updates[n] for n in t.names], t.shape))))
            out = [B.prose("Stochastic gradient descent, one step with ",
                           B.Math(rf"\eta = {num_tex(opt.lr)}", f"lr = {num_text(opt.lr)}"), ":"),
                   B.Equations(tuple(rows))]
        else:
            out = [B.prose(f"{opt.describe()}, as torch.optim computes it:")]
            out.append(B.Equations(tuple(
                B.EqRow(B.Math(t.latex, t.name), (matrix_math([self.updates[n] for n in t.names], t.shape),),
                        f"after {self.steps} step(s)") for t in params)))
        if self.steps > 1:
            out.append(B.prose("Loss before each step: ",
                               ", ".join(num_text(v) for v in self.trajectory.losses), "."))
        return out
