r"""Vector specs read straight into the matrix engine's tensor graph.

The same spec format as :mod:`derive.problems.vector_spec` (``{shape, value}`` leaves, an
``unroll`` section for time), read into a
:class:`~derive.engine.tgraph.TGraph` of named tensors with numpy float64
values, so the cost of building does not depend on the sizes.  Expressions
are walked from their checked ``ast`` (:func:`derive.engine.parse.parse_tree`, no
eval): numbers, names, ``+ - * / **`` (elementwise, broadcasting as numpy),
``@``, indexing a sequence by the time step (``H[t-1]``), numpy's slicing of
any other quantity (``a[0:4]``, ``G[:, 0:1]``, ``H[:, 2]``), and calls of any
registered tensor operation (:data:`~derive.engine.tensor_op.TENSOR_OPS`),
``op(tensor, ..., number, ...)``: its tensor arguments, then its numeric
parameters in order (``softmax(S, 1)``, ``leaky_relu(x, 0.1)``).

A leaf may give its shape and no value (``W: {shape: [1024, 1024]}``); its
numbers then come from ``--values``.  The only bound on sizes is memory
(:data:`DEFAULT_MAX_MEMORY`, raised with ``--max-memory``).

>>> m = build_matrix_spec({"parameters": {"W": {"shape": [2, 2], "value": [[1, 2], [3, 4]]}},
...                        "inputs": {"x": {"shape": [2], "value": [0.5, -0.5]}},
...                        "forward": {"h": "tanh(W @ x)"}, "loss": "sum(h**2) / 2"})
>>> [(s.name, s.spec) for s in m.derive().steps]
[('dL/dh', 'h'), ('dL/dW', 'outer(h * (1 - h * h), x)')]
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

import numpy as np
import sympy

import derive.engine  # noqa: F401  (fills the operation registry)
from derive.engine import exprs as X
from derive.engine.mcheck import checks as matrix_checks
from derive.engine.reverse import Derivation, reverse
from derive.engine.tensor_op import TENSOR_OPS, MissingRule, ShapeError
from derive.engine.tgraph import Apply, Const, GraphBuildError, Ref, TGraph
from derive.engine.parse import ExprError, MAX_EXPONENT, check_name, parse_tree
from derive.engine.spec import SpecError

#: bytes the forward values and adjoints may take, unless --max-memory says more
DEFAULT_MAX_MEMORY = 2 * 1024**3
#: bytes one node of the graph takes besides its numbers (Python objects, its step)
NODE_BYTES = 4096
#: the most axes a leaf may have (C x H x W maps, C_out x C_in x k x k kernels)
MAX_AXES = 4
#: reserved: the generated code's module name and the time step
RESERVED = {"numpy", "t", "T"}
SECTIONS = (("inputs", "input"), ("targets", "target"), ("parameters", "parameter"))


def memory_words(n: int) -> str:
    mb = n / 1024**2
    return f"{mb:,.0f} MB" if mb >= 10 else f"{mb:.3g} MB"


@dataclass
class MatrixSpec:
    """A spec read into the matrix engine: graph, leaf values, rows to show."""

    graph: TGraph
    leaves: dict                 # name -> numpy array
    T: int | None = None
    data: dict = field(default_factory=dict)
    sequences: frozenset = frozenset()     # leaves declared [T, ...]: indexed by the step (I[t])

    def forward(self, leaves: dict | None = None) -> dict:
        return self.graph.forward(self.leaves if leaves is None else leaves)

    def derive(self, leaves: dict | None = None) -> Derivation:
        return reverse(self.graph, self.forward(leaves))

    def checks(self, derivation: Derivation, leaves: dict | None = None) -> list:
        return matrix_checks(self.graph, self.leaves if leaves is None else leaves, derivation)

    def equations(self) -> list:
        """(name, node) of every computed node, in order, for the forward pass."""
        return [(n.name, n) for n in self.graph.computed()]


class _Walker:
    """The allow-list walk of one expression into graph expressions."""

    def __init__(self, build: "_MBuild", where: str, text: str = ""):
        self.b, self.where, self.text = build, where, text.strip()

    def visit(self, node):
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"{type(node).__name__.lower()} is not allowed in an expression")
        return method(node)

    def visit_Expression(self, node):
        return self.visit(node.body)

    def visit_Constant(self, node):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ExprError(f"{v!r} is not a number")
        if not np.isfinite(v):
            raise ExprError("numbers must be finite")
        return Const(sympy.nsimplify(v) if isinstance(v, float) and abs(v) < 1e15 else sympy.sympify(v))

    def visit_Name(self, node):
        return self.b.lookup(node.id)

    def visit_Subscript(self, node):
        """A sequence's step (``H[t-1]``, ``I[t]``, ``E[2]``: one index, counted
        from 1) or numpy's slicing of any other quantity (``a[0:4]``,
        ``G[:, 0:1]``, ``H[:, 2]``: counted from 0)."""
        text = self.source(node)
        sl, value = node.slice, node.value
        name = value.id if isinstance(value, ast.Name) else None
        if name is not None and self.b.is_sequence(name):
            if not isinstance(sl, (ast.Slice, ast.Tuple)):
                return self.b.index(name, sl, text)
            if not self.b.this_step(name):      # inside the unroll, a bare name is this step's value
                raise ExprError(f"{text}: {name} is a sequence: index it by the step ({name}[t], {name}[t-1]), "
                                f"then slice that step ({name}[t][0:2])")
        x = self.visit(value)
        if isinstance(x, Const):
            raise ExprError(f"{text}: only a quantity can be indexed, not a number")
        index = []
        for part in (sl.elts if isinstance(sl, ast.Tuple) else [sl]):
            if isinstance(part, ast.Slice):
                if part.step is not None and _number_of(part.step) != 1:
                    raise ExprError(f"{text}: a slice's step must be 1 (start:stop)")
                index.append(tuple(None if b is None else self.bound(b, text) for b in (part.lower, part.upper)))
            else:
                index.append(self.bound(part, text))
        try:
            return self.b.apply("slice", x, index=tuple(index))
        except ExprError as exc:
            raise ExprError(f"{text}: {exc}") from None

    def bound(self, node, text) -> int:
        """A slice's bound or an index: a whole number, as numpy takes it."""
        v = _number_of(node)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if any(isinstance(n, ast.Name) and n.id in ("t", "T") for n in ast.walk(node)):
            raise ExprError(f"{text}: only sequences are indexed by the step (inputs and targets declared with "
                            "shape [T, ...], and the unroll's equations); other quantities take numpy's "
                            "whole-number indices and slices, as x[0] or x[0:2]")
        raise ExprError(f"{text}: an index or a slice's bound is a whole number (counted from 0, a negative "
                        "one from the end, as numpy), as x[0], x[0:2], X[:, -1]")

    def source(self, node) -> str:
        """The user's text of ``node`` as written (for messages)."""
        seg = ast.get_source_segment(self.text, node) if self.text else None
        return seg if seg is not None else ast.unparse(node)

    def visit_UnaryOp(self, node):
        x = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            if isinstance(x, Const):
                return Const(-x.value)
            return self.b.apply("neg", x)
        if isinstance(node.op, ast.UAdd):
            return x
        raise ExprError("only + and - may stand before a value")

    def visit_BinOp(self, node):
        ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.MatMult: "matmul"}
        if isinstance(node.op, ast.Pow):
            e = _number_of(node.right)
            if e is None:
                raise ExprError("a power's exponent must be a number (elementwise X**2)")
            if abs(e) > MAX_EXPONENT:
                raise ExprError(f"exponent {e} is larger than {MAX_EXPONENT} in absolute value")
            base = self.visit(node.left)
            if isinstance(base, Const):
                return Const(base.value ** e)
            return self.b.apply("pow", base, exponent=e)
        name = ops.get(type(node.op))
        if name is None:
            raise ExprError(f"operator {type(node.op).__name__} is not allowed")
        a, b = self.visit(node.left), self.visit(node.right)
        if isinstance(a, Const) and isinstance(b, Const) and name != "matmul":
            if name == "div" and b.value == 0:
                raise ExprError("division by zero")
            return Const({"add": a.value + b.value, "sub": a.value - b.value, "mul": a.value * b.value,
                          "div": a.value / b.value if name == "div" else 0}[name])
        if name == "div" and isinstance(b, Const) and b.value == 0:
            raise ExprError("division by zero")
        return self.b.apply(name, a, b)

    def visit_Call(self, node):
        if not isinstance(node.func, ast.Name):
            raise ExprError("only the tensor operations may be called (no attributes or subscripts)")
        fname = node.func.id
        if "__" in fname:
            raise ExprError(f"name {fname!r} is not allowed (dunder names are refused)")
        op = TENSOR_OPS.get(fname)
        if op is None or fname in HIDDEN:
            raise ExprError(f"unknown function {fname!r}; known: {', '.join(spec_functions())}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExprError(f"{fname}() takes positional arguments only")
        n_tensor = len(node.args) if op.inputs < 0 else op.inputs
        if op.inputs < 0:   # variadic: the numbers at the end, if any, are parameters
            while n_tensor and op.params and _number_of(node.args[n_tensor - 1]) is not None \
                    and len(node.args) - n_tensor < len(op.params):
                n_tensor -= 1
            if n_tensor == 0:
                raise ExprError(f"{fname}() needs at least one tensor")
        elif len(node.args) < n_tensor:
            raise ExprError(f"{fname}() takes {n_tensor} tensor argument{'s' * (n_tensor != 1)}, "
                            f"got {len(node.args)}")
        # the sum (mean) of a sequence: one term per step
        if fname in ("sum", "mean") and len(node.args) == 1 and isinstance(node.args[0], ast.Name) \
                and self.b.whole_sequence(node.args[0].id):
            steps = self.b.steps_of(node.args[0].id)
            entries = len(steps) * (int(np.prod(steps[0].shape)) if steps[0].shape else 1)
            steps = [self.b.apply("sum", s) if s.shape else s for s in steps]
            total = self.b.apply("add_n", *steps) if len(steps) > 1 else steps[0]
            return total if fname == "sum" else self.b.apply("div", total, Const(sympy.Integer(entries)))
        tensors = [self.visit(a) for a in node.args[:n_tensor]]
        params = []
        for a in node.args[n_tensor:]:
            v = _number_of(a)
            if v is None and self.b.t is not None:     # a step index: col(h, t-1)
                try:
                    v = time_index(a, self.b.t, self.b.T, f"{fname}()")
                except ExprError:
                    v = None
            if v is None:
                raise ExprError(f"{fname}(): after the tensor argument{'s' * (n_tensor != 1)} come numbers "
                                f"({', '.join(p for p, _ in op.params) or 'none'})")
            params.append(v)
        try:
            pdict = op.params_of(tuple(params))
        except ShapeError as exc:
            raise ExprError(str(exc)) from None
        return self.b.apply(fname, *tensors, **pdict)


def _number_of(node):
    """A literal number (with an optional minus), else None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        v = node.value
        if isinstance(v, float):
            return sign * v if not float(v).is_integer() else sign * int(v)
        return sign * v
    return None


#: operations a spec writes as operators or subscripts, never by name
HIDDEN = frozenset({"row", "slice", "neg", "add", "sub", "mul", "div", "pow", "matmul"})


def spec_functions() -> list:
    return sorted(n for n in TENSOR_OPS if n not in HIDDEN)


class _MBuild:
    def __init__(self, data: dict, given: dict, max_memory: int):
        self.data, self.given, self.max_memory = data, given, max_memory
        self.g = TGraph(str(data.get("name") or data.get("title") or "spec")[:200])
        self.leaves: dict = {}
        self.names: dict = {}          # name -> Ref (or Const) visible in expressions
        self.seq_leaf: set = set()     # leaves declared [T, ...]
        self.seq_steps: dict = {}      # unrolled name -> {t: Ref}
        self.seq_initial: dict = {}
        self.t: int | None = None
        self.pending: set = set()
        self.later: set = set()
        self.bytes = 0
        self.missing: list = []

    # -- expressions ------------------------------------------------------------
    def apply(self, name, *args, **params):
        try:
            e = self.g.apply(name, *args, **params)
        except ShapeError as exc:
            raise ExprError(str(exc)) from None
        self._spend(int(np.prod(e.shape, dtype=object)) if e.shape else 1)   # object: no int64 wrap-around
        return e

    def _spend(self, entries: int):
        self.bytes += 8 * entries * 2 + NODE_BYTES     # a value, its adjoint, and the node itself
        if self.bytes > self.max_memory:
            raise ExprError(f"the values and adjoints need more than {memory_words(self.max_memory)} of "
                            "memory (raise it with --max-memory MB)")

    def _room(self, where, entries: int):
        try:
            self._spend(entries)
        except ExprError as exc:
            raise SpecError(where, str(exc)) from None

    def lookup(self, name):
        if "__" in name:
            raise ExprError(f"name {name!r} is not allowed (dunder names are refused)")
        if name in self.pending:
            raise ExprError(f"{name!r} is used before it is defined in step t "
                            f"(write {name}[t-1] for the previous step)")
        if self.t is not None and name in self.seq_steps and self.t in self.seq_steps[name]:
            return self.seq_steps[name][self.t]
        if name in self.names:
            return self.names[name]
        if name in self.seq_steps and self.t is None:
            return self.stacked(name)
        if name in TENSOR_OPS and TENSOR_OPS[name].inputs == 0 and not TENSOR_OPS[name].params:   # pi
            return Const(TENSOR_OPS[name].symbolic((), {}))
        if name in TENSOR_OPS:
            raise ExprError(f"{name!r} is a function and must be called, as {name}(...)")
        err = ExprError(f"unknown name {name!r}")
        err.unknown_name = name
        raise err

    def is_sequence(self, name) -> bool:
        """A leaf declared [T, ...] or an equation of the unroll: indexed by the step."""
        return name in self.seq_leaf or name in self.seq_steps

    def this_step(self, name) -> bool:
        """Whether ``name`` is a sequence already computed in the current step t."""
        return self.t is not None and self.t in self.seq_steps.get(name, {}) and name not in self.pending

    def whole_sequence(self, name) -> bool:
        return self.t is None and name in self.seq_steps

    def steps_of(self, name) -> list:
        s = self.seq_steps[name]
        return [s[t] for t in sorted(s)]

    def stacked(self, name):
        """A sequence used whole after the unroll: its steps stacked into one
        named quantity (a vector of scalars, or T rows)."""
        steps = self.steps_of(name)
        if steps[0].shape:
            raise ExprError(f"{name!r} is a sequence of {' x '.join(map(str, steps[0].shape))} quantities; "
                            f"after the unroll use one step ({name}[T]) or sum({name})")
        ref = self.g.define(name, self.apply("stack", *steps))
        self.names[name] = ref
        return ref

    def index(self, name, node, text):
        k = time_index(node, self.t, self.T, text)
        at = f" at t = {self.t}" if self.t is not None else ""
        if name in self.seq_leaf:
            if not 1 <= k <= self.T:
                raise ExprError(f"{text}{at} is step {k}, outside 1..{self.T}")
            return self.apply("row", self.names[name], index=k - 1)
        if name not in self.seq_steps:
            raise ExprError(f"{text}: only sequences can be indexed (inputs and targets declared "
                            "with shape [T, ...], and the unroll's equations)")
        if self.t is not None and (k > self.t or (k == self.t and name in self.pending)):
            raise ExprError(f"{text}{at} refers to step {k}, which is computed later (a cycle across time)"
                            if k > self.t else f"{text} is used before it is defined in step t "
                            f"(write {name}[t-1] for the previous step)")
        if k == 0:
            if name not in self.seq_initial:
                raise ExprError(f"{text}{at} needs the initial state {name}[0]: give it as unroll.initial.{name}")
            return self.seq_initial[name]
        if not 1 <= k <= self.T or k not in self.seq_steps[name]:
            raise ExprError(f"{text}{at} is step {k}, outside 0..{self.T}")
        return self.seq_steps[name][k]

    def expr(self, where, text):
        try:
            if isinstance(text, (int, float)) and not isinstance(text, bool):
                return Const(sympy.sympify(text))
            return _Walker(self, where, text).visit(parse_tree(text))
        except ExprError as exc:
            name = getattr(exc, "unknown_name", None)
            if name is not None and name in self.later:
                raise SpecError(where, f"{name!r} is used before it is defined (a right side may use only "
                                       "names defined above it)") from None
            raise SpecError(where, str(exc)) from None
        except RecursionError:
            raise SpecError(where, "expression is too deeply nested") from None

    def define(self, where, name, e, kind="forward", step=None, tex=None):
        if isinstance(e, Const):
            raise SpecError(where, "must depend on a quantity, not only numbers")
        try:
            return self.g.define(name, e, kind=kind, step=step, tex=tex)
        except GraphBuildError as exc:
            raise SpecError(where, str(exc)) from None

    # -- the spec -----------------------------------------------------------------
    def run(self) -> MatrixSpec:
        data = self.data
        unroll = data.get("unroll")
        self.T = _T(unroll)
        for section, kind in SECTIONS:
            block = data.get(section) or {}
            if not isinstance(block, dict):
                raise SpecError(section, "must be a mapping of names to numbers or {shape, value}")
            for name, raw in block.items():
                where = f"{section}.{name}"
                self._name(where, name)
                shape, value, seq = _leaf(where, raw, self.T, self.given.get(name),
                                          lambda entries, where=where: self._room(where, entries))
                if value is None:
                    self.missing.append(name)
                self.names[name] = self.g.leaf(name, shape, kind)
                self.leaves[name] = value
                if seq:
                    self.seq_leaf.add(name)
        forward = data.get("forward") or {}
        if not isinstance(forward, dict):
            raise SpecError("forward", "must be a mapping of names to expressions (name: text)")
        loss_name = data.get("loss_name", "L")
        self.later = {str(n) for n in forward} | {loss_name}
        if unroll:
            self._unroll(unroll)
        for name, text in forward.items():
            where = f"forward.{name}"
            self._name(where, name)
            if name in self.names or name == loss_name:
                raise SpecError(where, "name defined twice")
            self.later.discard(name)
            self.names[name] = self.define(where, name, self.expr(where, text))
        self.later.discard(loss_name)
        e = self.expr("loss", data.get("loss"))
        if getattr(e, "shape", ()) != ():
            raise SpecError("loss", f"must be a scalar, got shape {' x '.join(map(str, e.shape))} "
                                    "(sum(...) or mean(...) makes one)")
        self.define("loss", loss_name, e, kind="loss")
        for name in data.get("input_gradients") or []:
            if name in self.g.nodes and self.g.nodes[name].kind == "input":
                self.g.wanted_inputs.append(name)
        return MatrixSpec(self.g, self.leaves, self.T, data, frozenset(self.seq_leaf))

    def _name(self, where, name):
        try:
            check_name(name)
        except ExprError as exc:
            raise SpecError(where, str(exc)) from None
        if name in RESERVED or name in TENSOR_OPS:
            raise SpecError(where, f"name {name!r} is reserved")

    def _unroll(self, unroll):
        eqs, initial = unroll.get("equations") or {}, unroll.get("initial") or {}
        for where, part in (("unroll.equations", eqs), ("unroll.initial", initial)):
            if not isinstance(part, dict):
                raise SpecError(where, "must be a mapping of names to expressions (name: text)")
        for name in eqs:
            self._name(f"unroll.equations.{name}", name)
            if name in self.names or name in self.later:
                raise SpecError(f"unroll.equations.{name}", "name defined twice")
            self.seq_steps[name] = {}
        for name, text in initial.items():
            where = f"unroll.initial.{name}"
            if name not in eqs:
                raise SpecError(where, f"{str(name)[:40]!r} is not one of the unroll's equations")
            self.pending = set(eqs)
            self.seq_initial[name] = self.expr(where, text)
            self.pending = set()
        before = self.bytes
        for t in range(1, self.T + 1):
            if t == 2:      # every step costs what the first did: refuse a bomb before building it
                need = before + self.T * (self.bytes - before)
                if need > self.max_memory:
                    raise SpecError("unroll.T", f"{self.T} steps would need {memory_words(need)} of memory for "
                                                f"the values and adjoints; the limit is {memory_words(self.max_memory)}"
                                                " (raise it with --max-memory MB)")
            self.t, self.pending = t, set(eqs)
            for name, text in eqs.items():
                where = f"unroll.equations.{name}"
                e = self.expr(where, text)
                init = self.seq_initial.get(name)
                if t == 1 and init is not None and getattr(init, "shape", ()) != e.shape:
                    raise SpecError(f"unroll.initial.{name}", f"has shape {init.shape} but {name} has shape {e.shape}")
                first = self.seq_steps[name].get(1)
                if first is not None and first.shape != e.shape:
                    raise SpecError(where, f"has shape {first.shape} at t = 1 but {e.shape} at t = {t}")
                if isinstance(e, Ref) and not isinstance(e, Apply):
                    e = self.apply("add", e, Const(sympy.Integer(0)))
                self.seq_steps[name][t] = self.define(where, f"{name}_{t}", e, step=(name, t))
                self.pending.discard(name)
        self.t, self.pending = None, set()


def _T(unroll):
    if unroll is None:
        return None
    if not isinstance(unroll, dict) or "T" not in unroll:
        raise SpecError("unroll", "must be a mapping with T, equations and (optionally) initial")
    T = unroll["T"]
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise SpecError("unroll.T", f"must be a whole number, at least 1, got {str(T)[:40]}")
    return T


def time_index(node, t, T, text) -> int:
    """The step an index names (t, T, whole numbers, + and - of them), as the
    scalar and matrix front ends both read it."""
    def value(n):
        if isinstance(n, ast.Constant) and isinstance(n.value, int) and not isinstance(n.value, bool):
            if abs(n.value) > 10**9:
                raise ExprError(f"{text}: index is too large")
            return n.value
        if isinstance(n, ast.Name) and n.id == "t":
            if t is None:
                raise ExprError(f"{text}: t is the step of the unroll; outside it write a number such as 1 or T")
            return t
        if isinstance(n, ast.Name) and n.id == "T" and T is not None:
            return T
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            a, b = value(n.left), value(n.right)
            return a + b if isinstance(n.op, ast.Add) else a - b
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -value(n.operand)
        raise ExprError(f"{text}: an index is t, T, a whole number, or + and - of them (t-1)")

    return value(node)


def _leaf(where, raw, T, given, room=lambda entries: None):
    """(shape, numpy value, declared over time) of one leaf; ``given`` (from
    --values) replaces the spec's value and may stand for it.  ``room(entries)``
    refuses a size over the memory limit before anything is allocated."""
    if not isinstance(raw, dict):
        if isinstance(raw, list):
            raise SpecError(where, "a vector or matrix is declared as {shape: [2, 3], value: [[...], [...]]}")
        room(1)
        return (), _array(where, given if given is not None else raw, ()), False
    for key in raw:
        if key not in ("shape", "value"):
            raise SpecError(f"{where}.{str(key)[:40]}", "unknown field; known: shape, value")
    raw_shape = raw.get("shape")
    seq = isinstance(raw_shape, list) and raw_shape[:1] == ["T"]
    if raw_shape is None:
        v = raw.get("value", given)
        if not isinstance(v, list):
            raise SpecError(f"{where}.shape", "missing: give the shape, as [2] or [2, 3]")
        raw_shape = list(np.shape(v))
    if not isinstance(raw_shape, list) or not 0 < len(raw_shape) <= MAX_AXES + (1 if seq else 0):
        raise SpecError(f"{where}.shape", f"must be a list of 1 to {MAX_AXES} sizes, as [2] or [2, 3]")
    shape = []
    for k, n in enumerate(raw_shape):
        if n == "T" and k == 0:
            if T is None:
                raise SpecError(f"{where}.shape", "T is the number of time steps: the spec needs an unroll section")
            n = T
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SpecError(f"{where}.shape", f"sizes must be whole numbers, at least 1, got {str(n)[:40]}")
        shape.append(n)
    shape = tuple(shape)
    room(int(np.prod(shape, dtype=object)))
    value = given if given is not None else raw.get("value")
    if value is None:       # a shape only: the numbers come from --values
        return shape, None, seq
    return shape, _array(f"{where}.value" if given is None else f"values.{where.split('.')[-1]}", value, shape), seq


def _array(where, raw, shape):
    try:
        a = np.asarray(raw, dtype=float)
    except SpecError:        # a time limit that struck here
        raise
    except (TypeError, ValueError):
        raise SpecError(where, "not numbers (a number, or nested lists of numbers)") from None
    if a.ndim == 0:
        a = np.full(shape, float(a))
    if a.shape != tuple(shape):
        raise SpecError(where, f"has shape {' x '.join(map(str, a.shape)) or 'scalar'}, expected "
                               f"{' x '.join(map(str, shape)) or 'scalar'}")
    if not np.all(np.isfinite(a)):
        raise SpecError(where, "numbers must be finite")
    return a


def build_matrix_spec(data: dict, given: dict | None = None, max_memory: int = DEFAULT_MAX_MEMORY) -> MatrixSpec:
    """Read spec data (with ``--values`` numbers in ``given``) into a tensor graph."""
    return _MBuild(data, dict(given or {}), max_memory).run()


__all__ = ["DEFAULT_MAX_MEMORY", "MatrixSpec", "build_matrix_spec", "spec_functions"]
