"""Problems over vectors and matrices: sizes (T, n, ...) as problem
parameters, the model a built-in or a vector spec describes, and the solution
that shows its quantities as vectors and matrices.  The graph itself is built
by :mod:`derive.engine.tensor`."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import sympy

from derive.engine.graph import Graph, GraphError, default_latex, nest
from derive.engine.ops import OPS
from derive.engine.tensor import Tensor, TensorGraph, _flatten, _shape_of, _size, of_kind, rows

from derive.typeset import blocks as B
from derive.typeset.blocks import shape_math, shape_text  # noqa: F401  (lstm reads shape_math here)
from derive.typeset.fmt import num_tex, num_text
from derive.engine.numeric import VerificationError
from derive.engine.optim import Optimizer, OptimizerError
from derive.engine.parse import ExprError, number
from derive.problems.base import GraphSolution, Problem, memo_json, update_blocks
from derive.engine.spec import SpecError

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
        (:mod:`derive.problems.matrix_form`); None where the problem has none."""
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
        from derive.engine.matspec import DEFAULT_MAX_MEMORY, memory_words
        from derive.problems.matrix_solution import LIMITS
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

        from derive.engine.matspec import build_matrix_spec
        from derive.problems.matrix_solution import LIMITS, MatrixSolution, apply_given
        from derive.engine.matspec import DEFAULT_MAX_MEMORY
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
            from derive.engine.backprop import derive

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

                from derive.engine.matspec import build_matrix_spec
                from derive.problems.matrix_form import MatrixForm
                tg = self.model.tg
                given = {t.name: np.array([float(self.leaves[n]) for n in t.names], dtype=float).reshape(t.shape)
                         for t in of_kind(tg, "input", "target", "parameter")}
                self._matrix_form = MatrixForm(build_matrix_spec(data, given))
        return self._matrix_form

    def matrix_form_blocks(self) -> list:
        """The backward pass in matrix form as blocks (formulas, then values)."""
        from derive.problems.matrix_form import matrix_blocks
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
    @memo_json
    def numbers(self) -> dict:
        return {**super().numbers(), "dims": dict(self.dims), **self.model.extra_json(self)}

    @memo_json
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
        loss = self.graph.loss
        out = update_blocks(opt, self.steps, [
            (t.latex, t.name, self.grad_tex(t.name), f"d{loss}/d{t.name}",
             matrix_math([self.updates[n] for n in t.names], t.shape)) for t in params])
        if self.steps > 1:
            out.append(B.prose("Loss before each step: ",
                               ", ".join(num_text(v) for v in self.trajectory.losses), "."))
        return out
