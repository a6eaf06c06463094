r"""Vector specs: vectors, matrices and time steps in a spec file, lowered
onto :mod:`derive.engine.tensor` (a :class:`~derive.engine.tensor.TensorGraph` of scalar
nodes), so a user's architecture gets everything the built-ins get.

A spec is a vector spec when a leaf is declared with a shape
(``W: {shape: [2, 3], value: [[...], [...]]}``) or when it has an ``unroll``
section.  Expressions use the scalar allow-list (:func:`derive.engine.parse.parse_tree`)
plus ``@`` (matrix product), the functions of :data:`FUNCTIONS` and, on
sequences only, indexing by the time step (``H[t-1]``, ``I[t]``, ``E[2]``).
``* / ** + -`` are elementwise; a scalar combines with any shape.

>>> spec = build_vector_spec({
...     "inputs": {"x": {"shape": [2], "value": [1, 2]}},
...     "targets": {"y": 0},
...     "parameters": {"w": {"shape": [2], "value": 0.5}},
...     "forward": {"h": "tanh(w @ x)"},
...     "loss": "(h - y)**2 / 2"}, "demo.yaml")
>>> spec.tg.graph.nodes["h"].expr
tanh(w_1*x_1 + w_2*x_2)
>>> spec.values["w"]
[1/2, 1/2]
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

import sympy

from derive.typeset import blocks as B
from derive.typeset.fmt import num_tex
from derive.engine.graph import GraphError, default_latex
from derive.engine.ops import OPS
from derive.engine.optim import Optimizer, OptimizerError
from derive.engine.matspec import time_index as index_of
from derive.engine.parse import (_OPERATOR_NAMES, ExprError, _Builder, arithmetic, called_function, check_name, number, parse_tree,
                    too_large)
from derive.engine.spec import KNOWN_KEYS, SpecError, _reaches_parameter, time_limit, title_and_question
from derive.engine.tensor import Tensor, TensorGraph, _size, _trailing_subscript, apply, stack, total
from derive.problems.tensor_problem import TensorModel, TensorProblem, TensorSolution

#: time steps of one unroll
MAX_T = 64
#: size of one axis, entries of one quantity, scalar nodes of the whole graph
MAX_DIM = 256
MAX_ENTRIES = 4096
MAX_NODES = 6000
#: scalar multiply-adds one expression, and the whole spec, may build
MAX_WORK = 20_000
MAX_TOTAL_WORK = 50_000
#: seconds for building a vector spec, and for solving it
BUILD_SECONDS = 30
SOLVE_SECONDS = 60

SECTIONS = (("inputs", "input"), ("targets", "target"), ("parameters", "parameter"))
VECTOR_KEYS = KNOWN_KEYS | {"unroll", "input_gradients"}
UNROLL_KEYS = ("T", "initial", "equations")

#: functions of vector expressions besides the elementwise operation table
FUNCTIONS = {
    "sum": "the sum of every entry (a scalar)",
    "mean": "the mean of every entry (a scalar)",
    "softmax": "exp(v_j) / sum_k exp(v_k) of a vector, with the sum a node of its own",
    "stack": "vectors (or scalars) one above the other: stack(h_prev, x)",
    "transpose": "the transpose of a matrix",
}
RESERVED = {"t", "T"}


def is_vector_spec(data) -> bool:
    """Whether parsed spec data uses shapes or time steps.

    >>> is_vector_spec({"parameters": {"w": 0.1}}), is_vector_spec({"parameters": {"W": {"shape": [2]}}})
    (False, True)
    """
    if not isinstance(data, dict):
        return False
    if "unroll" in data:
        return True
    return any(isinstance(block, dict) and any(isinstance(v, dict) for v in block.values())
               for block in (data.get(s) for s, _ in SECTIONS))


def shape_words(shape: tuple) -> str:
    return " x ".join(str(n) for n in shape) if shape else "scalar"


def _shape(value) -> tuple:
    return value.shape if isinstance(value, Tensor) else ()


# ---------------------------------------------------------------------------
# Expressions over scalars and tensors


@dataclass
class Sequence:
    """A quantity indexed by the time step: a leaf declared [T, ...] (``rows``)
    or an unrolled equation (``steps``, with ``initial`` as step 0)."""

    name: str
    leaf: Tensor | None = None
    steps: dict = field(default_factory=dict)
    initial: object = None


class Scope:
    """What names mean where an expression is read: leaves, forward
    quantities, sequences and (inside the unroll) the current step ``t``."""

    def __init__(self, T: int | None):
        self.T = T
        self.t: int | None = None
        self.names: dict = {}
        self.sequences: dict[str, Sequence] = {}
        self.pending: set = set()      # unrolled names not yet defined at step t
        self.later: set = set()        # forward names not defined yet
        self.work = 0


class _TensorBuilder(_Builder):
    """The allow-list walker of :mod:`derive.engine.parse`, over scalars and
    :class:`~derive.engine.tensor.Tensor` values, with shapes checked at every step."""

    def __init__(self, scope: Scope, define_aux):
        super().__init__({}, {name: op.sympy for name, op in OPS.items()})
        self.scope = scope
        self.define_aux = define_aux     # (suffix, value) -> a named Tensor (softmax's normaliser)
        self.shape_of: dict = {}
        self.work = 0

    def visit(self, node):
        value = super().visit(node)
        self.shape_of[node] = _shape(value)
        return value

    def _spend(self, amount: int):
        self.work += amount
        if self.work > MAX_WORK:
            raise ExprError(f"expression needs more than {MAX_WORK} scalar operations")
        if self.scope.work + self.work > MAX_TOTAL_WORK:
            raise ExprError(f"the spec needs more than {MAX_TOTAL_WORK} scalar operations in all")

    # -- names and sequences ----------------------------------------------
    def visit_Name(self, node):
        name = node.id
        if "__" in name:
            raise ExprError(f"name {name!r} is not allowed (dunder names are refused)")
        if name in self.funcs or name in FUNCTIONS:
            raise ExprError(f"{name!r} is a function and must be called, as {name}(...)")
        sc = self.scope
        if name in sc.pending:
            raise ExprError(f"{name!r} is used before it is defined in step t "
                            f"(write {name}[t-1] for the previous step)")
        seq = sc.sequences.get(name)
        if sc.t is not None and seq is not None and sc.t in seq.steps:
            return seq.steps[sc.t]          # defined above in this step
        if name in sc.names:
            return sc.names[name]
        if name in sc.later:
            err = ExprError(f"unknown name {name!r}")
            err.unknown_name = name
            raise err
        if name in RESERVED and sc.T is not None:
            raise ExprError(f"{name!r} may appear only inside an index such as H[t-1]")
        err = ExprError(f"unknown name {name!r}")
        err.unknown_name = name
        raise err

    def visit_Subscript(self, node):
        if not isinstance(node.value, ast.Name):
            raise ExprError("only a sequence's name may be indexed, as H[t-1]")
        name = node.value.id
        sc = self.scope
        text = f"{name}[{ast.unparse(node.slice)}]"
        if name not in sc.sequences:
            raise ExprError(f"{text}: only sequences can be indexed (inputs and targets declared "
                            "with shape [T, ...], and the unroll's equations)")
        k = _index(node.slice, sc, text)
        seq = sc.sequences[name]
        at = f" at t = {sc.t}" if sc.t is not None else ""
        if seq.leaf is not None:
            if not 1 <= k <= sc.T:
                raise ExprError(f"{text}{at} is step {k}, outside 1..{sc.T}")
            return _row(seq.leaf, k - 1)
        if sc.t is not None and k > sc.t:
            raise ExprError(f"{text}{at} refers to step {k}, which is computed later "
                            "(a cycle across time)")
        if sc.t is not None and k == sc.t and name in sc.pending:
            raise ExprError(f"{text} is used before it is defined in step t "
                            f"(write {name}[t-1] for the previous step)")
        if k == 0:
            if seq.initial is None:
                raise ExprError(f"{text}{at} needs the initial state {name}[0]: "
                                f"give it as unroll.initial.{name}")
            return seq.initial
        if not 1 <= k <= sc.T:
            raise ExprError(f"{text}{at} is step {k}, outside 0..{sc.T}")
        return seq.steps[k]

    # -- arithmetic -----------------------------------------------------------
    def visit_UnaryOp(self, node):
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            self._spend(len(_exprs(operand)))
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        return super().visit_UnaryOp(node)

    def visit_BinOp(self, node):
        if isinstance(node.op, (ast.Add, ast.Sub)):
            terms = []       # a long sum walked as a list, as the scalar parser does
            while isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
                terms.append((node.op, node.right))
                node = node.left
            value = self.visit(node)
            for op, right in reversed(terms):
                value = self._binary(op, value, self.visit(right))
            return value
        return self._binary(node.op, self.visit(node.left), self.visit(node.right))

    def _binary(self, op, a, b):
        if isinstance(op, ast.MatMult):
            return self._matmul(a, b)
        symbol = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}.get(type(op))
        if symbol is None:
            name = type(op).__name__
            raise ExprError(f"operator {_OPERATOR_NAMES.get(name, name)} is not allowed")
        sa, sb = _shape(a), _shape(b)
        if sa and sb and sa != sb:
            hint = " (* is elementwise; use @ for a matrix product)" if symbol == "*" else ""
            raise ExprError(f"{symbol} of shapes {shape_words(sa)} and {shape_words(sb)}: both sides need "
                            f"the same shape, or one a scalar{hint}")
        shape = sa or sb
        xs = _exprs(a) if sa else [a] * _size(shape)
        ys = _exprs(b) if sb else [b] * _size(shape)
        self._spend(len(xs))
        out = [_scalar_op(symbol, x, y) for x, y in zip(xs, ys)]
        return Tensor(shape, tuple(out)) if shape else out[0]

    def _matmul(self, a, b):
        sa, sb = _shape(a), _shape(b)
        if not sa or not sb:
            raise ExprError("@ needs a vector or matrix on both sides (use * to scale by a scalar)")
        if sa[-1] != sb[0]:
            raise ExprError(f"@ of shapes {shape_words(sa)} and {shape_words(sb)}: "
                            f"the inner sizes {sa[-1]} and {sb[0]} differ")
        self._spend(_size(sa) * (sb[1] if len(sb) == 2 else 1))
        if len(sa) == 1 and len(sb) == 2:        # v @ M = M^T v
            return b.T @ a
        return a @ b

    # -- functions ------------------------------------------------------------
    def visit_Call(self, node):
        fname = called_function(node, set(self.funcs) | set(FUNCTIONS))
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExprError(f"{fname}() takes positional arguments only")
        if fname == "stack":
            if not node.args:
                raise ExprError("stack() needs at least one vector")
            parts = [self.visit(a) for a in node.args]
            for p in parts:
                if len(_shape(p)) > 1:
                    raise ExprError(f"stack() takes vectors and scalars, not a {shape_words(_shape(p))} matrix")
            vectors = [p if isinstance(p, Tensor) else Tensor((1,), (p,)) for p in parts]
            out = stack(*vectors)
            if out.size > MAX_ENTRIES:
                raise ExprError(f"stack() gives {out.size} entries; at most {MAX_ENTRIES}")
            return out
        if len(node.args) != 1:
            raise ExprError(f"{fname}() takes exactly one argument")
        x = self.visit(node.args[0])
        if fname in self.funcs:
            self._spend(len(_exprs(x)))
            with too_large(fname):
                return apply(fname, x) if isinstance(x, Tensor) else self.funcs[fname](x)
        if fname in ("sum", "mean"):
            if not isinstance(x, Tensor):
                return x
            self._spend(x.size)
            return total(x) if fname == "sum" else total(x) / x.size
        if fname == "transpose":
            if len(_shape(x)) != 2:
                raise ExprError(f"transpose() needs a matrix, got {shape_words(_shape(x))}")
            return x.T
        # softmax
        if len(_shape(x)) != 1:
            raise ExprError(f"softmax() needs a vector, got {shape_words(_shape(x))}")
        self._spend(2 * x.size)
        S = self.define_aux("S", sympy.Add(*[sympy.exp(e) for e in x.exprs])).exprs[0]
        return Tensor(x.shape, tuple(sympy.exp(e) / S for e in x.exprs))


def _exprs(value) -> list:
    return list(value.exprs) if isinstance(value, Tensor) else [value]


def _row(t: Tensor, i: int):
    """Step ``i`` (0-based) of a sequence leaf: its row, or its entry."""
    if len(t.shape) == 1:
        return t.exprs[i]
    size = _size(t.shape[1:])
    return Tensor(t.shape[1:], t.exprs[i * size:(i + 1) * size])


def _scalar_op(symbol, x, y):
    return arithmetic(symbol, x, y)     # the checks and size bounds of every expression


def _index(node, scope: Scope, text: str) -> int:
    """The step an index names: t, T, whole numbers, + and - of them (the
    matrix front end's reading, with this unroll's t and T)."""
    return index_of(node, scope.t, scope.T, text)


# ---------------------------------------------------------------------------
# Display: the spec's equations in matrix notation


class _Tex:
    """LaTeX of a checked expression tree, in the notation of the spec (shapes
    from the builder decide between a product and a Hadamard product)."""

    FUNCS = {"tanh": r"\tanh", "exp": r"\exp", "log": r"\log", "sigmoid": r"\sigma"}

    def __init__(self, shape_of: dict, step_names: set, in_unroll: bool):
        self.shape_of = shape_of
        self.step_names = step_names
        self.in_unroll = in_unroll

    def __call__(self, node) -> str:
        return getattr(self, "tex_" + type(node).__name__)(node)

    def _wrap(self, node, kinds=(ast.Add, ast.Sub)):
        inner = self(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, kinds):
            return rf"\left({inner}\right)"
        if isinstance(node, ast.UnaryOp) and kinds is not None:
            return rf"\left({inner}\right)"
        return inner

    def tex_Expression(self, node):
        return self(node.body)

    def tex_Constant(self, node):
        return num_tex(number(node.value if isinstance(node.value, int) else repr(node.value)))

    def tex_Name(self, node):
        tex = default_latex(node.id)
        return _subscript(tex, "t") if self.in_unroll and node.id in self.step_names else tex

    def tex_Subscript(self, node):
        return _subscript(default_latex(node.value.id), ast.unparse(node.slice).replace(" ", ""))

    def tex_UnaryOp(self, node):
        return "-" + self._wrap(node.operand)

    def tex_BinOp(self, node):
        op = node.op
        if isinstance(op, (ast.Add, ast.Sub)):
            right = self._wrap(node.right) if isinstance(op, ast.Sub) else self(node.right)
            return f"{self(node.left)} {'+' if isinstance(op, ast.Add) else '-'} {right}"
        if isinstance(op, ast.Div):
            return rf"\frac{{{self(node.left)}}}{{{self(node.right)}}}"
        if isinstance(op, ast.Pow):
            base = self(node.left)
            if not isinstance(node.left, (ast.Name, ast.Constant, ast.Subscript)):
                base = rf"\left({base}\right)"
            return f"{{{base}}}^{{{self(node.right)}}}"
        a, b = self._wrap(node.left), self._wrap(node.right)
        if isinstance(op, ast.Mult) and self.shape_of.get(node.left) and self.shape_of.get(node.right):
            return rf"{a} \odot {b}"
        return rf"{a} \, {b}"

    def tex_Call(self, node):
        f = node.func.id
        args = [self(a) for a in node.args]
        if f == "stack":
            return r"\left[" + "; ".join(args) + r"\right]"
        if f == "transpose":
            return rf"{{{self._wrap(node.args[0], (ast.BinOp,))}}}^{{\top}}"
        if f == "sum":
            return rf"\textstyle\sum \left({args[0]}\right)"
        if f == "sqrt":
            return rf"\sqrt{{{args[0]}}}"
        name = self.FUNCS.get(f, rf"\operatorname{{{f}}}")
        return rf"{name}\left({args[0]}\right)"


def _subscript(tex: str, index: str) -> str:
    if _trailing_subscript(tex) is not None:
        return f"{tex[:-1]},{index}}}"
    return f"{tex}_{{{index}}}"


# ---------------------------------------------------------------------------
# Building


@dataclass
class VectorSpec:
    """A vector spec lowered onto a TensorGraph."""

    tg: TensorGraph
    values: dict                 # leaf quantity -> number or nested list of numbers
    optimizer: Optimizer
    title: str
    question: str
    fields: dict                 # scalar node -> the spec field that defines it
    equations: list              # EqRows of the forward pass in matrix notation
    T: int | None = None
    raw: dict = field(default_factory=dict)


class _Build:
    def __init__(self, data: dict, source: str):
        self.data = data
        self.source = source
        self.fields: dict = {}
        self.rows: list = []

    # -- leaves -------------------------------------------------------------
    def run(self) -> VectorSpec:
        data = self.data
        for key in data:
            if key not in VECTOR_KEYS:
                raise SpecError(str(key)[:40], f"unknown field; known: {', '.join(sorted(VECTOR_KEYS))}")
        title, question = title_and_question(data, self.source)
        unroll = self._unroll_header(data.get("unroll"))
        T = unroll["T"] if unroll else None
        self.scope = Scope(T)
        self.tg = TensorGraph(title[:200])
        values: dict = {}
        for section, kind in SECTIONS:
            block = data.get(section) or {}
            if section == "parameters" and not block:
                raise SpecError("parameters", "at least one trainable parameter is needed")
            if not isinstance(block, dict):
                raise SpecError(section, "must be a mapping of names to numbers or {shape, value}")
            for name, raw in block.items():
                where = f"{section}.{name}"
                self._name(where, name)
                shape, value = _leaf(where, raw, T)
                self._room(where, _size(shape))
                t = self._graph(where, lambda: self.tg.leaf(name, shape, kind))
                values[name] = value
                self.scope.names[name] = t if shape else t.exprs[0]
                if shape and shape[0] == T and unroll and _declared_T(raw):
                    self.scope.sequences[name] = Sequence(name, leaf=t)
        forward = data.get("forward") or {}
        if not isinstance(forward, dict):
            raise SpecError("forward", "must be a mapping of names to expressions, in order")
        loss_name = data.get("loss_name", "L")
        self._name("loss_name", loss_name)
        self.scope.later = {str(n) for n in forward} | {loss_name}
        if unroll:
            self._unroll(unroll)
        for name, text in forward.items():
            where = f"forward.{name}"
            self._name(where, name)
            if name in self.scope.names or name == loss_name:
                raise SpecError(where, "name defined twice")
            self.scope.later.discard(name)
            value, tree, builder = self._expr(where, text, name)
            self.scope.names[name] = self._define(where, name, value)
            self._row(name, tree, builder, in_unroll=False)
        if "loss" not in data or data["loss"] in (None, ""):
            raise SpecError("loss", "missing: the spec needs a loss expression")
        self.scope.later.discard(loss_name)
        loss, tree, builder = self._expr("loss", data["loss"], loss_name)
        if isinstance(loss, Tensor):
            raise SpecError("loss", f"must be a scalar, got shape {shape_words(loss.shape)} "
                                    "(sum(...) or mean(...) makes one)")
        loss = sympy.sympify(loss)
        if not loss.free_symbols:
            raise SpecError("loss", "does not depend on any quantity")
        if not _reaches_parameter(self.tg.graph, loss):
            raise SpecError("loss", "does not depend on any parameter, so there is no gradient to derive")
        self._room("loss", 1)
        self._graph("loss", lambda: self.tg.loss(loss_name, loss))
        self.fields[loss_name] = "loss"
        self._row(loss_name, tree, builder, in_unroll=False)
        self._input_gradients(data.get("input_gradients"))
        try:
            optimizer = Optimizer.from_spec(data.get("optimizer"))
        except OptimizerError as exc:
            where, _, what = str(exc).partition(": ")
            raise SpecError(where, what) from None
        if not optimizer.lr > 0:
            raise SpecError("optimizer.lr", f"the learning rate must be positive, got {optimizer.lr}")
        return VectorSpec(self.tg, values, optimizer, title[:200], question, self.fields, self.rows, T, data)

    def _name(self, where, name):
        try:
            check_name(name)
        except ExprError as exc:
            raise SpecError(where, str(exc)) from None
        if name in FUNCTIONS:
            raise SpecError(where, f"name {name!r} is the name of a function")
        if name in RESERVED and self.scope_T_known():
            raise SpecError(where, f"name {name!r} is reserved for the time step (t = 1..T)")

    def scope_T_known(self) -> bool:
        return "unroll" in self.data

    def _room(self, where, size: int):
        if len(self.tg.graph.nodes) + size > MAX_NODES:
            raise SpecError(where, f"the graph would have more than {MAX_NODES} scalar nodes")

    def _graph(self, where, build):
        """Run a TensorGraph call; a clash of names becomes a refusal of ``where``."""
        try:
            return build()
        except (GraphError, ExprError) as exc:
            node, sep, what = str(exc).partition(": ")
            if what == "defined twice":
                raise SpecError(where, f"{node} is defined twice (a vector's entries are named "
                                       f"like W_1_2, a step's like H_3)") from None
            raise SpecError(where, str(exc)) from None

    def _expr(self, where, text, target: str):
        aux = {"k": 0}

        def define_aux(prefix, value):
            aux["k"] += 1
            name = f"{prefix}_{target}" + (f"_{aux['k']}" if aux["k"] > 1 else "")
            self._room(where, 1)
            t = self._graph(where, lambda: self.tg.define(name, value, group=False))
            self.fields.update({n: where for n in t.names})
            return t

        builder = _TensorBuilder(self.scope, define_aux)
        try:
            if isinstance(text, (int, float)) and not isinstance(text, bool):
                return number(text), ast.Expression(ast.Constant(text)), builder
            tree = parse_tree(text)
            value = builder.visit(tree)
        except ExprError as exc:
            name = getattr(exc, "unknown_name", None)
            if name is not None and name in self.scope.later:
                itself = name == target or where.endswith(f".{name}")
                raise SpecError(where, f"{name!r} is used {'in its own definition' if itself else 'before it is defined'}"
                                       " (a right side may use only names defined above it)") from None
            raise SpecError(where, str(exc)) from None
        except GraphError as exc:
            raise SpecError(where, str(exc)) from None
        except RecursionError:
            raise SpecError(where, "expression is too deeply nested") from None
        self.scope.work += builder.work
        return value, tree, builder

    def _define(self, where, name, value, **kw):
        size = len(_exprs(value))
        if size > MAX_ENTRIES:
            raise SpecError(where, f"the value has {size} entries; at most {MAX_ENTRIES} in one quantity")
        self._room(where, size)
        t = self._graph(where, lambda: self.tg.define(name, value, **kw))
        self.fields.update({n: where for n in t.names})
        return t if t.shape else t.exprs[0]

    def _row(self, name, tree, builder, in_unroll: bool, note: str = ""):
        tex = _Tex(builder.shape_of, set(self.scope.sequences), in_unroll)
        lhs = _subscript(default_latex(name), "t") if in_unroll else default_latex(name)
        try:
            rhs_tex = tex(tree)
            text = ast.unparse(tree)
        except (AttributeError, RecursionError, ValueError):   # display only; the maths is built already
            return
        self.rows.append(B.EqRow(B.Math(lhs, f"{name}_t" if in_unroll else name),
                                 (B.Math(rhs_tex, text),), note))

    # -- time -----------------------------------------------------------------
    def _unroll_header(self, raw):
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise SpecError("unroll", "must be a mapping with T, equations and (optionally) initial")
        for key in raw:
            if key not in UNROLL_KEYS:
                raise SpecError(f"unroll.{str(key)[:40]}", f"unknown field; known: {', '.join(UNROLL_KEYS)}")
        if "T" not in raw:
            raise SpecError("unroll.T", "missing: the number of time steps")
        T = raw["T"]
        if isinstance(T, bool) or not isinstance(T, int) or not 1 <= T <= MAX_T:
            raise SpecError("unroll.T", f"must be a whole number from 1 to {MAX_T}, got {str(T)[:40]}")
        eqs = raw.get("equations")
        if not isinstance(eqs, dict) or not eqs:
            raise SpecError("unroll.equations", "must be a mapping of names to expressions, in order")
        initial = raw.get("initial") or {}
        if not isinstance(initial, dict):
            raise SpecError("unroll.initial", "must be a mapping of unrolled names to initial values, as {H: H0}")
        return {"T": T, "equations": eqs, "initial": initial}

    def _unroll(self, unroll):
        sc, T = self.scope, unroll["T"]
        eqs, initial = unroll["equations"], unroll["initial"]
        for name in eqs:
            where = f"unroll.equations.{name}"
            self._name(where, name)
            if name in sc.names or name in sc.later:
                raise SpecError(where, "name defined twice")
        for name, text in initial.items():
            where = f"unroll.initial.{name}"
            if name not in eqs:
                raise SpecError(where, f"{str(name)[:40]!r} is not one of the unroll's equations")
        for name in eqs:
            sc.sequences[name] = Sequence(name)
        for name, text in initial.items():
            where = f"unroll.initial.{name}"
            saved, sc.pending = sc.pending, set(eqs)       # an initial state reads the leaves only
            sc.sequences[name].initial = self._expr(where, text, f"{name}_0")[0]
            sc.pending = saved
        shapes: dict = {}
        nodes0, work0 = len(self.tg.graph.nodes), sc.work
        for t in range(1, T + 1):
            if t == 2:    # every step costs what the first did: refuse a bomb before building it
                nodes = len(self.tg.graph.nodes) + (T - 1) * (len(self.tg.graph.nodes) - nodes0)
                if nodes > MAX_NODES:
                    raise SpecError("unroll.T", f"{T} steps would give {nodes} scalar nodes; "
                                                f"at most {MAX_NODES} are allowed")
                if T * (sc.work - work0) > MAX_TOTAL_WORK:
                    raise SpecError("unroll.T", f"{T} steps would need {T * (sc.work - work0)} scalar "
                                                f"operations; at most {MAX_TOTAL_WORK} are allowed")
            sc.t = t
            sc.pending = set(eqs)
            for name, text in eqs.items():
                where = f"unroll.equations.{name}"
                value, tree, builder = self._expr(where, text, f"{name}_{t}")
                shape = _shape(value)
                init = sc.sequences[name].initial
                if t == 1 and init is not None and _shape(init) != shape:
                    raise SpecError(f"unroll.initial.{name}", f"has shape {shape_words(_shape(init))} but "
                                                              f"{name} has shape {shape_words(shape)}")
                if shapes.setdefault(name, shape) != shape:
                    raise SpecError(where, f"has shape {shape_words(shapes[name])} at t = 1 but "
                                           f"{shape_words(shape)} at t = {t}")
                sc.sequences[name].steps[t] = self._define(where, f"{name}_{t}", value, group=False)
                sc.pending.discard(name)
                if t == 1:
                    self._row(name, tree, builder, in_unroll=True, note=B.Tex(f"$t = 1, \\ldots, {T}$", plain=f"t = 1 .. {T}"))
        sc.t, sc.pending = None, set()
        for name in eqs:
            steps = [sc.sequences[name].steps[t] for t in range(1, T + 1)]
            parts = [s if isinstance(s, Tensor) else self.tg.tensors[f"{name}_{t}"]
                     for t, s in enumerate(steps, 1)]
            self.tg.group(name, parts)
            shape = (T,) + parts[0].shape
            sc.names[name] = Tensor(shape, tuple(e for p in parts for e in p.exprs), name,
                                    tuple(n for p in parts for n in p.names))

    def _input_gradients(self, raw):
        if raw is None:
            return
        if not isinstance(raw, list):
            raise SpecError("input_gradients", "must be a list of input names, as [h_prev, x]")
        for name in raw:
            t = self.tg.tensors.get(name) if isinstance(name, str) else None
            if t is None or self.tg.kinds[name] != "input":
                raise SpecError("input_gradients", f"{str(name)[:40]!r} is not a declared input")
            self.tg.want_adjoint(t)


def _declared_T(raw) -> bool:
    return isinstance(raw, dict) and isinstance(raw.get("shape"), list) and raw["shape"][:1] == ["T"]


def _leaf(where: str, raw, T: int | None):
    """(shape, value) of one declared leaf; the shape is checked, and its size
    bounded, before any value is read."""
    if not isinstance(raw, dict):
        if isinstance(raw, list):
            raise SpecError(where, "a vector or matrix is declared as {shape: [2, 3], value: [[...], [...]]}")
        try:
            return (), number(raw)
        except ExprError as exc:
            raise SpecError(where, f"not a numeric value ({exc})") from None
    for key in raw:
        if key not in ("shape", "value"):
            raise SpecError(f"{where}.{str(key)[:40]}", "unknown field; known: shape, value")
    if "value" not in raw:
        raise SpecError(f"{where}.value", "missing: a number (every entry) or nested lists")
    value = raw["value"]
    if "shape" in raw:
        shape = _check_shape(f"{where}.shape", raw["shape"], T)
    elif isinstance(value, list):
        shape = _check_shape(f"{where}.value", _shape_of_list(value), T)
    else:
        raise SpecError(f"{where}.shape", "missing: give the shape, as [2] or [2, 3]")
    return shape, _values(f"{where}.value", value, shape)


def _shape_of_list(value) -> list:
    out, cur = [], value
    while isinstance(cur, list) and len(out) < 4:
        out.append(len(cur))
        cur = cur[0] if cur else None
    return out


def _check_shape(where: str, raw, T: int | None) -> tuple:
    if not isinstance(raw, list):
        raise SpecError(where, "must be a list of sizes, as [2] or [2, 3]")
    if len(raw) > 3 or (len(raw) == 3 and raw[0] != "T"):
        raise SpecError(where, "at most 2 axes (a vector or a matrix), after an optional leading T")
    shape, size = [], 1
    for k, n in enumerate(raw):
        if n == "T" and k == 0:
            if T is None:
                raise SpecError(where, "T is the number of time steps: the spec needs an unroll section")
            n = T
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_DIM:
            raise SpecError(where, f"sizes must be whole numbers from 1 to {MAX_DIM}, got {str(n)[:40]}")
        size *= n
        shape.append(n)
    if size > MAX_ENTRIES:
        raise SpecError(where, f"{shape_words(tuple(shape))} is {size} entries; at most {MAX_ENTRIES} "
                               "in one quantity")
    return tuple(shape)


def _values(where: str, raw, shape: tuple):
    """One number (every entry) or nested lists of exactly ``shape``."""
    def one(w, v):
        try:
            return number(v)
        except ExprError as exc:
            raise SpecError(w, f"not a numeric value ({exc})") from None

    if not isinstance(raw, list):
        v = one(where, raw)
        return v if not shape else _fill(v, shape)

    def walk(w, v, dims):
        if not dims:
            if isinstance(v, list):
                raise SpecError(w, f"expected a number; the shape is {shape_words(shape)}")
            return one(w, v)
        if not isinstance(v, list) or len(v) != dims[0]:
            got = f"a list of {len(v)}" if isinstance(v, list) else "a number"
            raise SpecError(w, f"expected a list of {dims[0]} for shape {shape_words(shape)}, got {got}")
        return [walk(f"{w}[{i}]", x, dims[1:]) for i, x in enumerate(v)]

    if not shape:
        raise SpecError(where, "a scalar's value is one number")
    return walk(where, raw, shape)


def _fill(v, shape):
    if len(shape) == 1:
        return [v] * shape[0]
    return [_fill(v, shape[1:]) for _ in range(shape[0])]


def build_vector_spec(data: dict, source: str = "spec") -> VectorSpec:
    """Lower parsed vector-spec data onto a TensorGraph; SpecError names the field."""
    return _Build(data, source).run()


# ---------------------------------------------------------------------------
# As a problem


class SpecModel(TensorModel):
    """A vector spec's graph, with its equations for the worked solution."""

    def __init__(self, spec: VectorSpec):
        super().__init__(spec.tg, {})
        self.spec = spec

    def equations(self):
        return list(self.spec.equations)

    def matrix_data(self) -> dict:
        return self.spec.raw


class VectorSpecProblem(TensorProblem):
    """A user's (or an example's) vector spec as a problem, solved like the
    built-ins over vectors and matrices.

    >>> p = VectorSpecProblem({"parameters": {"W": {"shape": [2, 2], "value": [[1, 2], [3, 4]]}},
    ...                        "inputs": {"x": {"shape": [2], "value": [0.5, -0.5]}},
    ...                        "forward": {"h": "tanh(W @ x)"}, "loss": "sum(h**2) / 2"}, "net.yaml")
    >>> sol = p.solve()
    >>> [(c["method"], c["passed"]) for c in sol.checks]
    [('numpy-backprop', True), ('finite-difference', True), ('matrix-form', True)]
    >>> import numpy as np
    >>> h = np.tanh(np.array([[1, 2], [3, 4]]) @ [0.5, -0.5])
    >>> np.allclose(sol.to_json()["gradients"]["W"]["value"], np.outer(h * (1 - h**2), [0.5, -0.5]))
    True
    """

    def __init__(self, data, source_name: str, *, id: str | None = None, source: str = "",
                 order: tuple = (99, 0), user: bool = True):
        self.source_name = source_name
        self.user = user
        with time_limit(BUILD_SECONDS, source_name, "building the spec"):
            self.spec = build_vector_spec(data, source_name)
        model = SpecModel(self.spec)
        super().__init__(id=id or self.spec.title, title=self.spec.title, source=source,
                         question=self.spec.question, order=order, dims=(), build=lambda: model,
                         values=lambda: self.spec.values, optimizer=data.get("optimizer"),
                         max_nodes=MAX_NODES)

    def solve(self, values: dict | None = None, steps: int = 1) -> TensorSolution:
        with time_limit(SOLVE_SECONDS, self.source_name, "deriving and checking the spec"):
            try:
                return super().solve(values, steps)
            except GraphError as exc:
                node, sep, what = str(exc).partition(": ")
                if sep and node in self.spec.fields:
                    raise SpecError(self.spec.fields[node], f"{node}: {what}") from None
                raise SpecError("forward", str(exc)) from None


__all__ = ["FUNCTIONS", "VectorSpec", "VectorSpecProblem", "build_vector_spec", "is_vector_spec"]
