"""Problems and their worked solutions.

A :class:`Problem` is anything derive can solve: a built-in or a user's spec.
Solving gives a :class:`Solution`, which knows its contract JSON
(:meth:`Solution.to_json`) and its worked solution as blocks
(:meth:`Solution.blocks`), shown in a terminal, in LaTeX and in Jupyter.

:class:`GraphProblem` is the gradient kind: a spec built into a graph,
derived once, then evaluated for any values.

>>> from derive.problems import load
>>> sol = load("mlp-relu-regression").solve()
>>> sol.updates["w1"], sol.gradients["w5"]
(3/16, -21/200)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from derive.typeset import blocks as B
from derive.engine.backprop import Derivation, Evaluation, derive, evaluate
from derive.typeset.fmt import exact_string, num_tex, num_text, paren_negative
from derive.engine.graph import GraphError, nest
from derive.typeset.latex import superscript
from derive.typeset.network import network_figure
from derive.engine.numeric import verify
from derive.engine.optim import Optimizer, OptimizerError
from derive.engine.parse import ExprError, number
from derive.typeset.printing import tex, tex_with_numbers, text, text_with_numbers
from derive.budget import SPEC_BUILD_SECONDS, SPEC_SOLVE_SECONDS
from derive.engine.spec import Spec, SpecError, build_spec, time_limit



def memo_json(method):
    """A solution's JSON is computed once (a solution does not change once
    built); callers get their own copy, free to change."""
    import copy
    import functools

    key = f"_json_memo_{method.__qualname__}"

    @functools.wraps(method)
    def wrapper(self):
        cached = self.__dict__.get(key)
        if cached is None:
            cached = self.__dict__[key] = method(self)
        return copy.deepcopy(cached)
    return wrapper

def update_blocks(optimizer, steps: int, params: list) -> list:
    """The update of every parameter, as one block list for every solution:
    plain SGD written out (W^+ = W - eta dL/dW = value), another rule by its
    value after the steps, as torch.optim computes it.  ``params``: (LaTeX,
    name, gradient LaTeX, gradient text, value as :class:`~derive.typeset.blocks.Math`)."""
    after = f"after {steps} step" + ("s" if steps != 1 else "")
    opt = optimizer
    if opt.rule == "sgd" and opt.hyper["momentum"] == 0 and opt.hyper["weight_decay"] == 0 and steps == 1:
        rows = tuple(B.EqRow(B.Math(tex + r"^{+}" if "^" not in tex else rf"{{{tex}}}^{{+}}", name + "+"),
                             (B.Math(rf"{tex} - \eta \, {grad_tex}", f"{name} - lr * {grad_text}"), value))
                     for tex, name, grad_tex, grad_text, value in params)
        return [B.prose("Stochastic gradient descent, one step with ",
                        B.Math(rf"\eta = {num_tex(opt.lr)}", f"lr = {num_text(opt.lr)}"), ":"),
                B.Equations(rows)]
    return [B.prose(f"{opt.describe()}, as torch.optim computes it:"),
            B.Equations(tuple(B.EqRow(B.Math(tex, name), (value,), after)
                              for tex, name, _, _, value in params))]


class Problem:
    """Base of every problem: an id, a title, where it comes from, a question."""

    id: str = ""
    title: str = ""
    source: str = ""
    question: str = ""
    #: (seed number, position) for ordering the key like the seeds
    order: tuple = (99, 0)

    def solve(self, values: dict | None = None, steps: int = 1) -> "Solution":
        raise NotImplementedError

    def listing(self) -> dict:
        return {"id": self.id, "title": self.title, "source": self.source}


class Solution:
    """A worked solution: contract JSON plus blocks for every renderer."""

    problem: Problem

    def to_json(self) -> dict:
        raise NotImplementedError

    def numbers(self) -> dict:
        """The JSON's numbers (values, gradient values, updates, checks), what
        the answer key reads; a solution whose JSON prints expressions gives
        them without that text, which costs most of its JSON."""
        return self.to_json()

    def blocks(self) -> list:
        raise NotImplementedError

    def to_text(self) -> str:
        head = [B.Heading(f"{self.problem.title} [{self.problem.id}]", 1)]
        return B.to_text(head + self.blocks())

    def _repr_latex_(self) -> str:
        from derive.document.render import blocks_to_latex_fragment

        return blocks_to_latex_fragment(self.blocks())


class BlocksSolution(Solution):
    """A solution with no gradient (conv arithmetic, AP, ...): answers in
    ``values`` (JSON-ready: floats, nested lists, strings), the worked
    solution in ``blocks_list``, independent checks in ``checks``."""

    def __init__(self, problem: Problem, values: dict, blocks_list: list, checks: list | None = None,
                 extra: dict | None = None):
        self.problem = problem
        self.values = values
        self.blocks_list = blocks_list
        self.checks = checks or []
        self.extra = extra or {}

    def to_json(self) -> dict:
        out = {"id": self.problem.id, "title": self.problem.title, "values": self.values,
               "gradients": {}, "updates": {}, "checks": self.checks}
        out.update(self.extra)
        return out

    def blocks(self) -> list:
        out = []
        if self.problem.question:
            out.append(B.prose(B.question_text(self.problem.question)))
        return out + list(self.blocks_list)


# ---------------------------------------------------------------------------
# Gradient problems: a spec, a graph, a derivation.


def apply_values(spec: Spec, given: dict | None, where: str = "values"):
    """Leaf values and optimiser with ``given`` overrides (names checked)."""
    leaves = dict(spec.values)
    optimizer = spec.optimizer
    hyper = {}
    for name, raw in (given or {}).items():
        if name in leaves:
            if isinstance(raw, (list, dict)):
                raise SpecError(f"{where}.{name}", "expected a number")
            try:
                leaves[name] = number(raw)
            except ExprError as exc:
                raise SpecError(f"{where}.{name}", str(exc)) from None
        elif name in optimizer.hyper:
            hyper[name] = raw
        else:
            raise SpecError(f"{where}.{name}", "unknown name; known: " + ", ".join(list(leaves) + list(optimizer.hyper)))
    if hyper:
        try:
            optimizer = optimizer.with_hyper(**hyper)
        except OptimizerError as exc:
            raise SpecError(where, str(exc)) from None
    return leaves, optimizer


class GraphProblem(Problem):
    """A problem given as a spec (built-in YAML or a user's file)."""

    def __init__(self, data: dict, source_name: str, *, id: str | None = None, source: str = "",
                 order: tuple = (99, 0), user: bool = False):
        self.data = data
        self.source_name = source_name
        self.user = user
        with time_limit(SPEC_BUILD_SECONDS, source_name, "building the spec") if user else _nullcontext():
            self.spec = build_spec(data, source_name)
        self.id = id or self.spec.title
        self.title = self.spec.title
        self.source = source
        self.question = self.spec.question
        self.order = order
        self._derivation: Derivation | None = None

    @property
    def graph(self):
        return self.spec.graph

    @property
    def derivation(self) -> Derivation:
        if self._derivation is None:
            self._derivation = derive(self.spec.graph)
        return self._derivation

    def solve(self, values: dict | None = None, steps: int = 1) -> "GraphSolution":
        if steps < 1:
            raise SpecError("--steps", "must be at least 1")
        leaves, optimizer = apply_values(self.spec, values)
        guard = time_limit(SPEC_SOLVE_SECONDS, self.source_name, "deriving and checking the spec") if self.user else _nullcontext()
        with guard:
            try:
                return GraphSolution(self, leaves, optimizer, steps)
            except GraphError as exc:
                node, sep, what = str(exc).partition(": ")
                if sep and node in self.graph.nodes:  # name the field: forward.o, or loss
                    field = "loss" if node == self.graph.loss else f"forward.{node}"
                    raise SpecError(field, what) from None
                raise SpecError("forward", str(exc)) from None


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@dataclass
class Trajectory:
    """Parameters (and optimiser state) after each of K update steps."""

    params: list = field(default_factory=list)   # list of dicts, index 0 = start
    losses: list = field(default_factory=list)   # loss before each step


class GraphSolution(Solution):
    def __init__(self, problem: GraphProblem, leaves: dict, optimizer: Optimizer, steps: int = 1):
        self.problem = problem
        self.graph = problem.graph
        self.derivation = problem.derivation
        self.leaves = leaves
        self.optimizer = optimizer
        self.steps = steps
        self.forward = self.graph.forward(leaves)
        self.evaluation: Evaluation = evaluate(self.derivation, self.forward)
        self.gradients = {p: self.evaluation.adjoint.get(p, sympy.Integer(0)) for p in self.graph.parameters}
        #: adjoints of the inputs the problem asks about (graph.wrt_inputs), verified like gradients
        self.input_gradients = {n: self.evaluation.adjoint.get(n, sympy.Integer(0)) for n in self.graph.wrt_inputs}
        self.checks = verify(self.graph, self.forward_leaves(), {**self.gradients, **self.input_gradients})
        self.trajectory = self._run(steps)
        self.updates = self.trajectory.params[-1]

    def forward_leaves(self) -> dict:
        return {n: self.forward[n] for n in self.graph.leaves}

    def _run(self, steps: int) -> Trajectory:
        traj = Trajectory()
        params = {p: self.leaves[p] for p in self.graph.parameters}
        states = {p: self.optimizer.initial_state() for p in params}
        traj.params.append(dict(params))
        grads = self.gradients
        loss = self.forward[self.graph.loss]
        for t in range(1, steps + 1):
            if t > 1:
                leaves = dict(self.leaves, **params)
                fwd = self.graph.forward(leaves)
                ev = evaluate(self.derivation, fwd)
                grads = {p: ev.adjoint.get(p, sympy.Integer(0)) for p in params}
                loss = fwd[self.graph.loss]
            traj.losses.append(loss)
            new = {}
            for p in params:
                value, states[p] = self.optimizer.update(params[p], grads[p], states[p], t)
                new[p] = _settle(value)
                states[p] = {k: _settle(v) for k, v in states[p].items()}
            params = new
            traj.params.append(dict(params))
        return traj

    # -- names ----------------------------------------------------------
    def _names_tex(self) -> dict:
        names = self.graph.latex_names()
        names.update(self.derivation.adjoint_latex())
        return names

    def _names_text(self) -> dict:
        return {s.symbol: s.name for s in self.derivation.steps}

    def _numbers(self) -> dict:
        nums = {self.graph.nodes[n].symbol: v for n, v in self.forward.items()}
        for s in self.derivation.steps:
            nums[s.symbol] = self.evaluation.adjoint[s.node]
        return nums

    # -- JSON -----------------------------------------------------------
    def _group_values(self, scalar: dict) -> dict:
        """name -> float, or nested lists for vector/matrix groups."""
        out = {}
        grouped = set()
        for g in self.graph.groups.values():
            if all(n in scalar for n in g.names):
                out[g.name] = nest([float(scalar[n]) for n in g.names], g.shape)
                grouped.update(g.names)
        for n, v in scalar.items():
            if n not in grouped:
                out[n] = float(v)
        return out

    @memo_json
    def numbers(self) -> dict:
        grads = {p: {"value": float(v)} for p, v in self.gradients.items()}
        out = {"values": self._group_values(self.forward), "loss": float(self.forward[self.graph.loss]),
               "gradients": self._group_entries(grads, ("value",)), "updates": self._group_values(self.updates),
               "checks": self.checks, "optimizer": self._optimizer_json(), "exact": self._exact_json()}
        if self.input_gradients:
            out["input_gradients"] = self._group_values(self.input_gradients)
        return out

    def _optimizer_json(self) -> dict:
        return {"rule": self.optimizer.rule,
                **{k: (v if isinstance(v, bool) else float(v)) for k, v in self.optimizer.hyper.items()}}

    def _exact_json(self) -> dict:
        return {n: exact_string(v) for n, v in self.forward.items() if exact_string(v)}

    @memo_json
    def to_json(self) -> dict:
        names_text = self._names_text()
        grads = {}
        for p, v in self.gradients.items():
            step = self.derivation.by_node.get(p)
            expanded = self.derivation.expanded(p) if step else sympy.Integer(0)
            chain = self.derivation.in_forward_names(p) if step else sympy.Integer(0)
            if expanded is not None:
                shown, form, shown_names = expanded, "expanded", names_text
            elif chain is not None:
                shown, form, shown_names = chain, "chain", names_text
            else:  # too large to expand: in terms of the named adjoints
                shown, form = step.expr, "adjoints"
                shown_names = {s.symbol: s.name.replace("/", "_") for s in self.derivation.steps}
            entry = {"value": float(v),
                     "expr": text(shown, shown_names),
                     "form": form,
                     "latex": tex(shown, self._names_tex())}
            if chain is not None:
                entry["chain"] = text(chain, names_text)
            if exact_string(v):
                entry["exact"] = exact_string(v)
            grads[p] = entry
        out = {
            "id": self.problem.id,
            "title": self.problem.title,
            "values": self._group_values(self.forward),
            "loss": float(self.forward[self.graph.loss]),
            "gradients": self._group_entries(grads),
            "updates": self._group_values(self.updates),
            "checks": self.checks,
            "optimizer": self._optimizer_json(),
            "steps": self.steps,
            "adjoints": {s.name: float(self.evaluation.adjoint[s.node]) for s in self.derivation.steps},
            "exact": self._exact_json(),
        }
        if self.input_gradients:
            out["input_gradients"] = self._group_values(self.input_gradients)
        if self.steps > 1:
            out["losses"] = [float(x) for x in self.trajectory.losses]
        return out

    def _group_entries(self, grads: dict, keys: tuple = ("value", "expr", "latex")) -> dict:
        out = {}
        grouped = set()
        for g in self.graph.groups.values():
            if g.kind == "parameter" and all(n in grads for n in g.names):
                out[g.name] = {k: nest([grads[n][k] for n in g.names], g.shape) for k in keys}
                grouped.update(g.names)
        for n, e in grads.items():
            if n not in grouped:
                out[n] = e
        return out

    # -- worked solution ------------------------------------------------
    def blocks(self) -> list:
        g = self.graph
        names = self._names_tex()
        names_text = self._names_text()
        nums = self._numbers()
        out: list = []
        if self.problem.question:
            out.append(B.prose(B.question_text(self.problem.question)))
        figure = network_figure(g)     # MLP-shaped graphs small enough to draw
        if figure is not None:
            out.append(figure)
        out.append(B.Heading("Given"))
        rows = []
        for kind, label in (("input", "input"), ("target", "target"), ("parameter", "parameter")):
            for n in g.of_kind(kind):
                v = self.leaves[n]
                rows.append((B.Math(g.nodes[n].latex, n), label, B.Math(num_tex(v), num_text(v))))
        out.append(B.Table(("quantity", "kind", "value"), tuple(rows), align="llr"))
        out.append(B.rule_prose(self.optimizer))

        out.append(B.Heading("Forward pass"))
        eqs = []
        for n in g.computed:
            node = g.nodes[n]
            eqs.append(self._chain_row(node.symbol, node.expr, self.forward[n], names, nums, names_text))
        out.append(B.Equations(tuple(eqs)))

        out.append(B.Heading("Backward pass (chain rule, node by node)"))
        rows = []
        adj_tex = self.derivation.adjoint_latex()
        for s in self.derivation.steps[1:]:
            rows.append(self._step_row(s, names, nums, names_text, adj_tex))
        out.append(B.Equations(tuple(rows)))

        out.append(B.Heading("Gradients"))
        grows = []
        for p in g.parameters:
            step = self.derivation.by_node.get(p)
            chain = self.derivation.in_forward_names(p) if step else None
            lhs = B.Math(adj_tex[step.symbol] if step else rf"\frac{{\partial {g.nodes[g.loss].latex}}}{{\partial {g.nodes[p].latex}}}",
                         f"d{g.loss}/d{p}")
            rhs = []
            if chain is not None:
                rhs.append(B.Math(tex(chain, names), text(chain, names_text)))
            v = self.gradients[p]
            rhs.append(B.Math(num_tex(v), num_text(v)))
            grows.append(B.EqRow(lhs, tuple(rhs)))
        out.append(B.Equations(tuple(grows)))

        out.append(B.Heading("Update"))
        out += self._update_blocks(names, names_text)

        out.append(B.Heading("Verification"))
        out.append(B.prose("Symbolic gradients against an independent numpy backprop and central "
                           "finite differences at the given point:"))
        out.append(B.Checks(tuple(self.checks)))
        return out

    def _chain_row(self, sym, expr, value, names, nums, names_text, note=""):
        rhs = [B.Math(tex(expr, names), text(expr, names_text))]
        subs = {s: nums[s] for s in expr.free_symbols if s in nums}
        if subs and not expr.is_Symbol:
            rhs.append(B.Math(tex_with_numbers(expr, subs), text_with_numbers(expr, subs)))
        rhs.append(B.Math(num_tex(value), num_text(value)))
        return B.EqRow(B.Math(names.get(sym, str(sym)), names_text.get(sym, str(sym))), tuple(rhs), note)

    def _step_row(self, s, names, nums, names_text, adj_tex):
        g = self.graph
        loss_tex = g.nodes[g.loss].latex
        chain_tex = []
        chain_txt = []
        for t in s.terms:
            via_tex = g.nodes[t.via].latex
            local_tex = rf"\frac{{\partial {via_tex}}}{{\partial {g.nodes[s.node].latex}}}"
            if t.via == g.loss:
                chain_tex.append(local_tex)
                chain_txt.append(f"d{t.via}/d{s.node}")
            else:
                chain_tex.append(adj_tex[t.upstream] + " " + local_tex)
                chain_txt.append(f"{names_text[t.upstream]} * d{t.via}/d{s.node}")
        rhs = []
        if not (len(s.terms) == 1 and s.terms[0].via == g.loss):
            rhs.append(B.Math(" + ".join(chain_tex), " + ".join(chain_txt)))
        expr = s.expr.xreplace({self.derivation.by_node[g.loss].symbol: sympy.Integer(1)})
        rhs.append(B.Math(tex(expr, names), text(expr, names_text)))
        subs = {x: nums[x] for x in expr.free_symbols if x in nums}
        if subs and not expr.is_Symbol:
            rhs.append(B.Math(tex_with_numbers(expr, subs), text_with_numbers(expr, subs)))
        v = self.evaluation.adjoint[s.node]
        rhs.append(B.Math(num_tex(v), num_text(v)))
        return B.EqRow(B.Math(adj_tex[s.symbol], s.name), tuple(rhs))

    def _update_blocks(self, names, names_text) -> list:
        g = self.graph
        out = []
        opt = self.optimizer
        rows = []
        if opt.rule == "sgd" and opt.hyper["momentum"] == 0 and opt.hyper["weight_decay"] == 0:
            lr = opt.lr
            for p in g.parameters:
                node = g.nodes[p]
                step = self.derivation.by_node.get(p)
                grad_tex = adj_tex_of(self.derivation, g, p)
                grad_txt = f"d{g.loss}/d{p}"
                v0, gv, new = self.leaves[p], self.gradients[p], self.trajectory.params[1][p]
                chain = self.derivation.in_forward_names(p) if step else None
                general = ()
                if chain is not None:
                    neg = -chain
                    if neg.could_extract_minus_sign():      # w - eta w_5 x_1 (o_1 - y), not w + eta (-w_5 ...)
                        body, body_txt = tex(chain, names), text(chain, names_text)
                        if isinstance(chain, sympy.Add):
                            body, body_txt = rf"\left({body}\right)", f"({body_txt})"
                        general = (B.Math(rf"{node.latex} - \eta \, {body}", f"{p} - lr * {body_txt}"),)
                    else:
                        general = (B.Math(rf"{node.latex} + \eta \left({tex(neg, names)}\right)",
                                          f"{p} + lr * ({text(neg, names_text)})"),)
                rows.append(B.EqRow(
                    B.Math(superscript(node.latex, "+"), p + "+"),
                    (B.Math(rf"{node.latex} - \eta \, {grad_tex}", f"{p} - lr * {grad_txt}"),) + general + (
                     B.Math(rf"{num_tex(v0)} - {num_tex(lr)} \cdot {_paren_tex(gv)}",
                            f"{num_text(v0)} - {num_text(lr)} * {_paren_txt(gv)}"),
                     B.Math(num_tex(new), num_text(new)))))
                del step
            out.append(B.prose(r"Stochastic gradient descent, one step: each parameter moves against its gradient, ",
                               B.Math(r"w \leftarrow w - \eta \, \partial L / \partial w", "w <- w - lr * dL/dw"),
                               "."))
            out.append(B.Equations(tuple(rows)))
        else:
            out += self._stateful_update_blocks()
        if self.steps > 1 and rows:
            header = ("parameter", "start") + tuple(f"after step {k}" for k in range(1, self.steps + 1))
            trows = [(B.Math(g.nodes[p].latex, p),) + tuple(
                B.Math(num_tex(tp[p]), num_text(tp[p])) for tp in self.trajectory.params) for p in g.parameters]
            out.append(B.Table(header, tuple(trows), caption=f"{self.steps} steps on the same example"))
        return out

    def _stateful_update_blocks(self) -> list:
        """Any rule but plain SGD: the rule with its state, symbolically, then
        step 1 worked for every parameter, then the numbers of each step."""
        from derive.engine.graph import settle
        from derive.engine.optim import STATE, general_notation, parameter_notation, rule_rows, shown_tex, shown_text, trace

        g, opt = self.graph, self.optimizer
        loss_tex = g.nodes[g.loss].latex
        out = [B.prose(f"{opt.describe()}, computed as {opt.torch_call()} computes it. Each parameter ",
                       B.Math(r"\theta", "theta"), " is updated on its own; ",
                       B.Math("g_{t}", "g_t"), f" is d{g.loss}/dtheta at the parameters after t - 1 steps and t "
                       "counts the steps (torch's state['step']).")]
        t = sympy.Symbol("t", positive=True, integer=True)
        rows = rule_rows(opt, t, general_notation())
        start = opt.initial_state()
        if opt.rule in ("sgd", "momentum", "nesterov") and start:
            # torch creates the buffer at the first step as the gradient itself (no dampening)
            first = [B.EqRow(r.lhs, r.rhs, "step 1") for r in rule_rows(opt, 1, general_notation("1", "0"))
                     if r.lhs.text == "b_1"]
            at = next(i for i, r in enumerate(rows) if r.lhs.text == "b_t")
            rows = rows[:at] + first + [B.EqRow(r.lhs, r.rhs, "t > 1" if r.lhs.text == "b_t" else "")
                                        for r in rows[at:]]
            start = {}
        out.append(B.Equations(tuple(rows)))
        if start:
            parts = ["Before the first step: "]
            for i, (k, v) in enumerate(start.items()):
                parts += ["; " if i else "", B.Math(f"{STATE[k][0]}_{{0}} = {num_tex(v)}", f"{STATE[k][1]}_0 = {num_text(v)}"),
                          f" ({STATE[k][2]})"]
            out.append(B.prose(*parts, "."))

        def gradients(params):
            fwd = self.graph.forward(dict(self.leaves, **params))
            ev = evaluate(self.derivation, fwd)
            return {p: ev.adjoint.get(p, sympy.Integer(0)) for p in params}, fwd[g.loss]

        run = trace(opt, {p: self.leaves[p] for p in g.parameters}, gradients, self.steps,
                    settle=lambda v: settle(sympy.sympify(v), "update"))
        first = run[0]
        out.append(B.Heading("Step 1, parameter by parameter", 3))
        rows = []
        for p in g.parameters:
            node = g.nodes[p]
            note = parameter_notation(node.latex, p, rf"\frac{{\partial {loss_tex}}}{{\partial {node.latex}}}",
                                      f"d{g.loss}/d{p}", 1)
            numbers = {"param": first.params[p], "grad": first.grads[p], "state": first.state[p]}
            rows += rule_rows(opt, 1, note, numbers, first.values[p])
        out.append(B.Equations(tuple(rows)))

        if self.steps > 1:
            targets = [k for k in first.values[g.parameters[0]] if k != "param"]
            for rec in run:
                notation = general_notation(str(rec.t), str(rec.t - 1))
                header = ("parameter", B.Math(notation.theta_old[0], notation.theta_old[1]),
                          B.Math(notation.grad[0], notation.grad[1]))
                header += tuple(B.Math(*(notation.grad_decayed if k == "grad" else notation.state(k, True)))
                                for k in targets)
                header += (B.Math(notation.theta_new[0], notation.theta_new[1]),)
                trows = []
                for p in g.parameters:
                    cells = [rec.params[p], rec.grads[p]] + [rec.values[p][k] for k in targets] + [rec.values[p]["param"]]
                    trows.append((B.Math(g.nodes[p].latex, p),) + tuple(B.Math(shown_tex(v), shown_text(v)) for v in cells))
                out.append(B.Table(header, tuple(trows), caption=f"step {rec.t} (loss before it: {shown_text(rec.loss)})"))
        header = ("parameter", "start") + tuple(f"after step {k}" for k in range(1, self.steps + 1))
        trows = [(B.Math(g.nodes[p].latex, p),) + tuple(
            B.Math(shown_tex(tp[p]), shown_text(tp[p])) for tp in self.trajectory.params) for p in g.parameters]
        out.append(B.Table(header, tuple(trows), caption=f"the parameters over {self.steps} step(s)"))
        return out


def adj_tex_of(derivation, g, p) -> str:
    loss = g.nodes[g.loss].latex
    return rf"\frac{{\partial {loss}}}{{\partial {g.nodes[p].latex}}}"


def _paren_tex(v) -> str:
    return paren_negative(num_tex(v), tex=True)


def _paren_txt(v) -> str:
    return paren_negative(num_text(v), tex=False)


def _settle(v):
    from derive.engine.graph import settle

    return settle(sympy.sympify(v), "update")
