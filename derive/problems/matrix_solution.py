r"""A vector problem solved by the matrix engine alone (no scalar lowering).

Above the small-problem size (:data:`SMALL_ENTRIES`) a vector spec is solved
here: the forward pass, the matrix-form backward pass and its checks, the
update rule (torch.optim's program, applied entrywise in numpy) and the JSON
of the contract.  Work and memory grow with the entries (numpy), never with
the number of symbolic steps.

>>> from derive.engine.matspec import build_matrix_spec
>>> import numpy as np
>>> data = {"parameters": {"W": {"shape": [40, 40], "value": 0.01}},
...         "inputs": {"x": {"shape": [40], "value": 1}}, "forward": {"h": "tanh(W @ x)"},
...         "loss": "sum(h**2) / 2", "optimizer": {"rule": "sgd", "lr": 0.5}}
>>> sol = MatrixSolution(_Stub("net"), build_matrix_spec(data), {})
>>> [c["passed"] for c in sol.checks]
[True, True]
>>> h = np.tanh(0.4); bool(np.isclose(sol.to_json()["gradients"]["W"]["value"][0][0], h * (1 - h * h)))
True
"""
from __future__ import annotations

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.engine import exprs as X
from derive.engine.matspec import MatrixSpec, _array
from derive.problems.matrix_form import MatrixForm, matrix_blocks, value_math
from derive.engine.numeric import VerificationError
from derive.engine.optim import Optimizer, OptimizerError
from derive.problems.base import Solution, update_blocks
from derive.engine.spec import SpecError

#: vector specs with at most this many entries (all named quantities) and
#: T <= 64 are also derived component by component
SMALL_ENTRIES = 400
#: a quantity's value is shown in the worked solution up to this many entries
SHOW_ENTRIES = 16


#: the memory limit a user may raise (--max-memory, bytes; None: the default);
#: time is bounded per phase by derive.budget (--time-limit, DERIVE_TIME_LIMIT)
LIMITS = {"max_memory": None}


def is_small(data: dict) -> bool:
    """Whether a vector spec is small enough to be derived component by
    component too: every leaf has its value, T <= 64, and the declared leaves
    times the steps stay under :data:`SMALL_ENTRIES` entries."""
    unroll = data.get("unroll")
    T = unroll.get("T", 1) if isinstance(unroll, dict) else 1
    if not isinstance(T, int) or T > 64 or not _scalar_functions_only(data):
        return False
    total = 0
    for section in ("inputs", "targets", "parameters"):
        block = data.get(section)
        if not isinstance(block, dict):
            continue
        for raw in block.values():
            if not isinstance(raw, dict):
                total += 1
                continue
            if "value" not in raw:
                return False
            shape = raw.get("shape")
            if shape is None:
                shape = list(np.shape(raw["value"])) if isinstance(raw["value"], list) else []
            size = 1
            for n in shape if isinstance(shape, list) else []:
                size *= T if n == "T" else (n if isinstance(n, int) and not isinstance(n, bool) else 1)
            total += size
    return total * max(1, T) <= SMALL_ENTRIES


def _scalar_functions_only(data: dict) -> bool:
    """Whether every function a spec calls is one the component-wise builder
    knows (softmax along an axis, convolution, ... are the matrix engine's)."""
    import ast

    from derive.engine.tensor_op import TENSOR_OPS
    from derive.engine.ops import OPS
    from derive.engine.parse import ExprError, parse_tree
    from derive.problems.vector_spec import FUNCTIONS
    texts = [data.get("loss")]
    for block in (data.get("forward"), (data.get("unroll") or {}).get("equations")
                  if isinstance(data.get("unroll"), dict) else None):
        if isinstance(block, dict):
            texts += list(block.values())
    for text in texts:
        if not isinstance(text, str):
            continue
        try:
            tree = parse_tree(text)
        except ExprError:
            continue                      # the component-wise builder words the refusal
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                if not isinstance(node.func, ast.Name):
                    continue
                if node.func.id not in OPS and node.func.id not in FUNCTIONS and node.func.id in TENSOR_OPS:
                    return False          # (a name unknown to both is refused by the component builder)
                if node.func.id in ("softmax", "sum", "mean") and len(node.args) > 1:
                    return False          # along an axis
    return True


class MatrixSpecProblem:
    """A vector spec above the small size: read into the matrix engine only."""

    def __init__(self, data: dict, source_name: str, *, id: str | None = None, source: str = "",
                 order: tuple = (99, 0), user: bool = True):
        from derive.budget import SPEC_BUILD_SECONDS, limit
        from derive.engine.matspec import DEFAULT_MAX_MEMORY, build_matrix_spec
        self.source_name, self.user, self.order, self.source = source_name, user, order, source
        self.data = data
        title = data.get("title") or data.get("name") or id or "spec"
        self.id, self.title = id or str(title), str(title)[:200]
        self.question = str(data.get("question") or data.get("description") or "")
        with limit(SPEC_BUILD_SECONDS, "reading the spec", source_name):
            self.spec = build_matrix_spec(data, {}, LIMITS["max_memory"] or DEFAULT_MAX_MEMORY)
        try:
            self.optimizer = Optimizer.from_spec(data.get("optimizer"))
        except OptimizerError as exc:
            where, _, what = str(exc).partition(": ")
            raise SpecError(where, what) from None

    def listing(self) -> dict:
        return {"id": self.id, "title": self.title, "source": self.source}

    def solve(self, values: dict | None = None, steps: int = 1) -> "MatrixSolution":
        from derive.budget import SPEC_SOLVE_SECONDS, limit
        if steps < 1:
            raise SpecError("--steps", "must be at least 1")
        leaves, optimizer = apply_given(self.spec, self.optimizer, values or {})
        with limit(SPEC_SOLVE_SECONDS, "the backward pass and its checks", self.source_name):
            return MatrixSolution(self, self.spec, leaves, optimizer, steps)


class _Stub:
    def __init__(self, id):
        self.id = self.title = id
        self.question = ""


def apply_given(spec: MatrixSpec, optimizer: Optimizer, given: dict):
    """Leaves and optimizer with ``--values``/``--set`` applied (names checked,
    shapes checked: one line naming both)."""
    leaves = dict(spec.leaves)
    hyper = {}
    for name, raw in (given or {}).items():
        node = spec.graph.nodes.get(name)
        if node is not None and node.expr is None:
            leaves[name] = _array(f"values.{name}", raw, node.shape)
        elif name in optimizer.hyper:
            hyper[name] = raw
        else:
            known = [n.name for n in spec.graph.nodes.values() if n.expr is None] + list(optimizer.hyper)
            raise SpecError(f"values.{name}", "unknown name; known: " + ", ".join(known))
    missing = [n for n, v in leaves.items() if v is None]
    if missing:
        node = spec.graph.nodes[missing[0]]
        raise SpecError(f"{node.kind}s.{node.name}.value", "missing: a number (every entry), nested lists, "
                                                           "or the numbers in --values")
    if hyper:
        try:
            optimizer = optimizer.with_hyper(**hyper)
        except OptimizerError as exc:
            raise SpecError("values", str(exc)) from None
    return leaves, optimizer


def update_arrays(optimizer: Optimizer, params: dict, grads: dict, states: dict, t: int):
    """One step of torch.optim's program, entrywise in numpy: the program is
    written once over scalar symbols and evaluated on whole arrays (each
    target's expression is in the old state, as :meth:`Optimizer.program` inlines)."""
    names = optimizer.state_names()
    program = _program(optimizer, t)
    new_params, new_states = {}, {}
    for name, value in params.items():
        env = {"p": value, "g": grads[name], **{k: states[name].get(k, np.zeros_like(value)) for k in names}}
        out = dict(states[name])
        for target, f in program:
            v = np.broadcast_to(np.asarray(f(env["p"], env["g"], *[env[k] for k in names]), dtype=float),
                                value.shape).copy()
            if target == "param":
                new_params[name] = v
            elif target != "grad":
                out[target] = v
        new_states[name] = out
    return new_params, new_states


_PROGRAMS: dict = {}


def _program(optimizer: Optimizer, t: int) -> list:
    """[(target, numpy function of p, g, state...)] of one step, made once per rule and step."""
    key = (optimizer.rule, tuple(sorted((k, repr(v)) for k, v in optimizer.hyper.items())), t)
    if key not in _PROGRAMS:
        p, g = sympy.symbols("p g", real=True)
        names = optimizer.state_names()
        syms = [sympy.Symbol(k, real=True) for k in names]
        program = optimizer.program(p, g, dict(zip(names, syms)), t)
        _PROGRAMS[key] = [(target, sympy.lambdify([p, g] + syms, expr, modules="numpy"))
                          for target, expr in program]
    return _PROGRAMS[key]


class MatrixSolution(Solution):
    """The worked solution of a vector problem from the matrix engine."""

    def __init__(self, problem, spec: MatrixSpec, leaves: dict, optimizer: Optimizer | None = None,
                 steps: int = 1):
        self.problem = problem
        self.spec = spec
        self.graph = spec.graph
        self.optimizer = optimizer or Optimizer.from_spec(spec.data.get("optimizer"))
        self.steps = steps
        self.leaves = {**spec.leaves, **leaves}
        self.mf = MatrixForm(spec, self.leaves)
        self.values = self.mf.values
        self.checks = list(self.mf.checks)
        failed = [c for c in self.checks if c["passed"] is False]
        if failed:
            c = failed[0]
            err = ", ".join(f"{k.replace('_', ' ')} {c[k]:.3g}" for k in ("max_abs_err", "max_rel_err") if k in c)
            raise VerificationError(f"{problem.id}: the {c['method']} check failed: {err}"
                                    + (f" ({c['note']})" if c.get("note") else ""))
        self.losses, self.updates = self._run(steps)

    @property
    def matrix_form(self) -> MatrixForm:
        return self.mf

    def _run(self, steps: int):
        from derive.problems.matrix_form import MatrixForm as _MF
        params = {n.name: np.asarray(self.leaves[n.name], dtype=float) for n in self.graph.of_kind("parameter")}
        states = {n: {} for n in params}
        grads = {n: self.mf.gradient(n) for n in params}
        losses = []
        loss = float(self.values[self.graph.loss])
        for t in range(1, steps + 1):
            if t > 1:
                mf = _MF(self.spec, {**self.leaves, **params})
                grads = {n: mf.gradient(n) for n in params}
                loss = float(mf.values[self.graph.loss])
            losses.append(loss)
            params, states = update_arrays(self.optimizer, params, grads, states, t)
        return losses, params

    def gradient(self, name: str) -> np.ndarray:
        return self.mf.gradient(name)

    # -- JSON ---------------------------------------------------------------
    def to_json(self) -> dict:
        g = self.graph
        grads = {}
        for n in g.of_kind("parameter"):
            step = self.mf.derivation.step_of(n.name)
            grads[n.name] = {"value": self.gradient(n.name).tolist(),
                             "expr": step.spec if step else "0", "latex": step.latex if step else "0",
                             "form": "matrix"}
        values = {name: np.asarray(v).tolist() for name, v in self.values.items() if name in g.nodes}
        for seq, names in self._sequences().items():     # an unrolled quantity also as one array, T first
            if seq not in values:
                values[seq] = [values[n] for n in names]
        out = {
            "id": self.problem.id,
            "title": self.problem.title,
            "values": values,
            "loss": float(self.values[g.loss]),
            "gradients": grads,
            "updates": {n: v.tolist() for n, v in self.updates.items()},
            "checks": self.checks,
            "optimizer": {"rule": self.optimizer.rule,
                          **{k: (v if isinstance(v, bool) else float(v)) for k, v in self.optimizer.hyper.items()}},
            "steps": self.steps,
            "matrix_steps": self.mf.steps_json(),
        }
        if g.wanted_inputs:
            out["input_gradients"] = {n: self.gradient(n).tolist() for n in g.wanted_inputs}
        if self.steps > 1:
            out["losses"] = self.losses
        return out

    def matrix_form_blocks(self) -> list:
        """The backward pass in matrix form as blocks (formulas, then values)."""
        return matrix_blocks(self.mf)

    def _sequences(self) -> dict:
        seqs: dict = {}
        for n in self.graph.computed():
            if n.step is not None:
                seqs.setdefault(n.step[0], []).append(n.name)
        return seqs

    def answer_values(self) -> dict:
        """What ``derive check`` compares answers with: every named quantity,
        every adjoint by its step name (dL/dW1), each parameter after the update
        (W1_new, W1+ and the bare name, as the contract reads hand answers)."""
        out = {name: np.asarray(v).tolist() for name, v in self.values.items() if name in self.graph.nodes}
        for s in self.mf.steps:
            out[s.name] = s.value.tolist()
        for name, v in self.updates.items():
            out[name] = out[f"{name}_new"] = out[f"{name}+"] = v.tolist()
        return out

    # -- worked solution -------------------------------------------------------
    def blocks(self) -> list:
        g = self.graph
        out: list = []
        if self.problem.question:
            out.append(B.prose(self.problem.question.strip()))
        out.append(B.Heading("Given"))
        rows = []
        for kind in ("input", "target", "parameter"):
            for n in g.of_kind(kind):
                rows.append((B.Math(n.symbol.tex, n.name), kind, B.shape_math(n.shape), _value(self.values[n.name])))
        out.append(B.Table(("quantity", "kind", "shape", "value"), tuple(rows), align="lllr"))
        out.append(B.rule_prose(self.optimizer))
        out.append(B.Heading("Forward pass"))
        eqs = []
        for n in g.computed():
            sym = g.symbolic(n.expr)
            eqs.append(B.EqRow(B.Math(n.symbol.tex, n.name), (B.Math(X.latex(sym), X.spec(sym)),)))
        if len(eqs) > 40:
            eqs = eqs[:20] + eqs[-20:]
        out.append(B.Equations(tuple(eqs)))
        vrows = [(B.Math(n.symbol.tex, n.name), B.shape_math(n.shape), _value(self.values[n.name]))
                 for n in g.computed()]
        if len(vrows) > 40:
            vrows = vrows[:20] + vrows[-20:]
        out.append(B.Table(("quantity", "shape", "value"), tuple(vrows), align="llr"))
        out.append(B.prose(f"The graph has {len(g.nodes)} named quantities with "
                           f"{g.entries()} entries in all; the backward pass is derived in matrix form "
                           "(one rule per operation, whatever the sizes)."))
        out += self.matrix_form_blocks()
        out.append(B.Heading("Update"))
        loss = g.nodes[g.loss]
        out += update_blocks(self.optimizer, self.steps, [
            (g.nodes[n].symbol.tex, n, rf"\frac{{\partial {loss.symbol.tex}}}{{\partial {g.nodes[n].symbol.tex}}}",
             f"d{g.loss}/d{n}", _value(v)) for n, v in self.updates.items()])
        out.append(B.Heading("Verification"))
        out.append(B.prose("The matrix form against an independent numpy backprop (the operations' own "
                           "vector-Jacobian products) and central finite differences along random "
                           "directions:"))
        out.append(B.Checks(tuple(self.checks)))
        return out


def _value(v) -> B.Math:
    v = np.asarray(v, dtype=float)
    if v.size <= SHOW_ENTRIES:
        return value_math(v)
    return B.Math(rf"\text{{norm {np.linalg.norm(v):.4g}}}", f"norm {np.linalg.norm(v):.4g}")
