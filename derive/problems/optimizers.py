r"""Seed 004 Q1: the update rules of SGD, batch GD, momentum and Nesterov, and
every rule of :mod:`derive.engine.optim` side by side on the exam's network.

Every formula shown is printed from the rule derive runs, every claim about
two forms of a rule is an identity (or a non-identity) SymPy establishes
here, and every number is computed.

>>> sol = PROBLEMS[0].solve()
>>> sol.values["momentum_forms"]["constant_lr_difference"], sol.values["nesterov_forms"]["torch_minus_lookahead"]
('0', '0')
>>> sol.values["nesterov_forms"]["published_minus_standard_factor"]
'eta - rho'
"""
from __future__ import annotations

import sympy

from derive.typeset import blocks as B
from derive.engine.backprop import evaluate
from derive.engine.batch import batch_step
from derive.engine.optim import RULES, TORCH_CLASS, Optimizer, general_notation, rule_rows, shown_tex, shown_text
from derive.typeset.latex import person_order
from derive.typeset.printing import tex, text
from derive.typeset.fmt import exact_decimal
from derive.problems.base import BlocksSolution, Problem
from derive.problems._given import Given

NET = "mlp-relu-regression"
#: steps of the side-by-side comparison (``--steps K`` with K > 1 changes it)
COMPARE_STEPS = 5
#: steps of the symbolic comparisons of two forms of a rule
FORM_STEPS = 3
#: the batch of (b): the exam's instance, then two of derive's own, chosen
#: so that no ReLU argument is at its kink (finite differences stay defined)
BATCH = [{"x1": 1, "x2": 1, "y": "0.5"}, {"x1": 2, "x2": "0.5", "y": 1}, {"x1": -1, "x2": -1, "y": 0}]

R = sympy.Rational


def _sym(name, **kw):
    return sympy.Symbol(name, real=True, **kw)


ETA, RHO = _sym("eta", positive=True), _sym("rho", positive=True)
#: symbol -> (LaTeX, text)
NAMES = {ETA: (r"\eta", "lr"), RHO: (r"\rho", "rho")}


def _m(expr, names=None) -> B.Math:
    """A formula with its terms in the order a person writes them (``w_0 - \\eta g_1``)."""
    names = {**NAMES, **(names or {})}
    return B.Math(person_order(expr, symbol_names={k: v[0] for k, v in names.items()}),
                  text(expr, {k: v[1] for k, v in names.items()}))


def _row(lhs_tex, lhs_text, expr, names=None, note="") -> B.EqRow:
    return B.EqRow(B.Math(lhs_tex, lhs_text), (_m(expr, names),), note)


# ---------------------------------------------------------------------------
# (c) momentum: two forms


def momentum_forms(steps: int = FORM_STEPS) -> dict:
    """Both momentum forms over ``steps`` steps, with gradients g_1, g_2, ...
    as free symbols (the gradient each step receives) and per-step rates.

    Form A is derive's (torch's) SGD-with-momentum program, run with the
    learning rate of step t set to eta_t (what a torch scheduler does).
    Form B is the seed's second form, v <- rho v - eta g, w <- w + v.

    >>> f = momentum_forms(2)
    >>> sympy.factor(f["w_A_varying"][-1] - f["w_B_varying"][-1])
    g1*rho*(eta1 - eta2)
    """
    gs = [_sym(f"g{t}") for t in range(1, steps + 1)]
    etas = [_sym(f"eta{t}", positive=True) for t in range(1, steps + 1)]
    w0 = _sym("w0")
    torch_rule = Optimizer.from_spec({"rule": "momentum"})
    hyper = {**torch_rule.hyper, "momentum": RHO}

    def form_a(rates):
        w, state, ws, vs = w0, {"momentum_buffer": sympy.Integer(0)}, [], []
        for t, (g, eta) in enumerate(zip(gs, rates), start=1):
            prog = dict(torch_rule.program(w, g, state, t, {**hyper, "lr": eta}))
            state = {"momentum_buffer": prog["momentum_buffer"]}
            w = prog["param"]
            ws.append(sympy.expand(w))
            vs.append(sympy.expand(state["momentum_buffer"]))
        return ws, vs

    def form_b(rates):
        w, v, ws, vs = w0, sympy.Integer(0), [], []
        for g, eta in zip(gs, rates):
            v = velocity_b(v, g, eta)
            w = w + v
            ws.append(sympy.expand(w))
            vs.append(sympy.expand(v))
        return ws, vs

    wa, va = form_a([ETA] * steps)
    wb, vb = form_b([ETA] * steps)
    wav, _ = form_a(etas)
    wbv, _ = form_b(etas)
    return {"g": gs, "etas": etas, "w0": w0, "w_A": wa, "v_A": va, "w_B": wb, "v_B": vb,
            "w_A_varying": wav, "w_B_varying": wbv}


def momentum_on_quadratic(steps: int = FORM_STEPS, varying: bool = False) -> list:
    """w_t(A) - w_t(B) on L = a w^2 / 2, where each gradient depends on where
    the form has got to: zero for a constant rate (the induction closes)."""
    a, w0 = _sym("a", positive=True), _sym("w0")
    rates = [_sym(f"eta{t}", positive=True) for t in range(1, steps + 1)] if varying else [ETA] * steps
    torch_rule = Optimizer.from_spec({"rule": "momentum"})
    hyper = {**torch_rule.hyper, "momentum": RHO}
    wa, state = w0, {"momentum_buffer": sympy.Integer(0)}
    wb, vb = w0, sympy.Integer(0)
    out = []
    for t, eta in enumerate(rates, start=1):
        prog = dict(torch_rule.program(wa, a * wa, state, t, {**hyper, "lr": eta}))
        wa, state = prog["param"], {"momentum_buffer": prog["momentum_buffer"]}
        vb = RHO * vb - eta * a * wb
        wb = wb + vb
        out.append(sympy.expand(wa - wb))
    return out


def velocity_b(v, g, eta):
    """Form B's (and the lookahead form's) velocity: v <- rho v - eta g."""
    return RHO * v - eta * g


def lookahead_point(theta, v, coeff=RHO):
    """Where Nesterov takes the gradient: theta + rho v (the published form
    has eta for ``coeff``); torch's nesterov is checked to agree with it."""
    return theta + coeff * v


# ---------------------------------------------------------------------------
# (d) Nesterov: the lookahead form, the published form, torch's form


def nesterov_forms(steps: int = FORM_STEPS) -> dict:
    """On L = a (w - c)^2 / 2: the lookahead (Sutskever) form, the published
    form (lookahead point theta + eta v) and torch's form (derive's nesterov
    program), symbolically.

    >>> f = nesterov_forms(2)
    >>> [sympy.expand(p - th) for p, th in zip(f["torch"], f["theta"])] == [sympy.expand(RHO * v) for v in f["v"]]
    True
    """
    a, c, w0 = _sym("a", positive=True), _sym("c"), _sym("w0")

    def grad(w):
        return a * (w - c)

    def lookahead(point_coeff):
        theta, v, thetas, vs = w0, sympy.Integer(0), [], []
        for _ in range(steps):
            v = velocity_b(v, grad(lookahead_point(theta, v, point_coeff)), ETA)
            theta = theta + v
            thetas.append(sympy.expand(theta))
            vs.append(sympy.expand(v))
        return thetas, vs

    theta, v = lookahead(RHO)
    published, _ = lookahead(ETA)
    rule = Optimizer.from_spec({"rule": "nesterov"})
    hyper = {**rule.hyper, "lr": ETA, "momentum": RHO}
    p, state, ps = w0, {"momentum_buffer": sympy.Integer(0)}, []
    for t in range(1, steps + 1):
        prog = dict(rule.program(p, grad(p), state, t, hyper))
        p, state = prog["param"], {"momentum_buffer": prog["momentum_buffer"]}
        ps.append(sympy.expand(p))
    return {"a": a, "c": c, "w0": w0, "theta": theta, "v": v, "published": published, "torch": ps}


def nesterov_on_network(problem, steps: int, lr, rho) -> list:
    """The exam network: torch's nesterov trajectory (GraphSolution) against the
    lookahead form run with the engine's gradients at the lookahead points.
    Returns max |p_t - (theta_t + rho v_t)| and max |p_t - theta_t| per step."""
    graph, derivation = problem.graph, problem.derivation
    params = graph.parameters
    leaves = dict(problem.spec.values)

    def grads_at(point):
        fwd = graph.forward(dict(leaves, **point))
        ev = evaluate(derivation, fwd)
        return {q: ev.adjoint.get(q, sympy.Integer(0)) for q in params}

    theta = {q: leaves[q] for q in params}
    v = {q: sympy.Integer(0) for q in params}
    rule = Optimizer.from_spec({"rule": "nesterov", "lr": lr, "momentum": rho})
    p = dict(theta)
    state = {q: rule.initial_state() for q in params}
    rows = []
    for t in range(1, steps + 1):
        g = grads_at({q: theta[q] + rule.hyper["momentum"] * v[q] for q in params})
        v = {q: rule.hyper["momentum"] * v[q] - rule.lr * g[q] for q in params}
        theta = {q: theta[q] + v[q] for q in params}
        gp = grads_at(p)
        for q in params:
            p[q], state[q] = rule.update(p[q], gp[q], state[q], t)
        agree = max(abs(float(p[q] - theta[q] - rule.hyper["momentum"] * v[q])) for q in params)
        apart = max(abs(float(p[q] - theta[q])) for q in params)
        rows.append((t, agree, apart))
    return rows


# ---------------------------------------------------------------------------


class Optimizers(Problem):
    id = "optimizers"
    title = "Update rules: SGD, batch GD, momentum, Nesterov, Adagrad, RMSprop, Adam"
    source = "seed 004, Q1"
    order = (4, 1)
    question = B.Tex(
        "Write the update rules for a parameter $w_i$ in a neural network with loss $L$ when the following "
        "algorithms are used: (a) stochastic gradient descent using one sample $(x_1, y_1)$; (b) batch "
        "gradient descent using $m$ samples $(x_1, y_1), \\ldots, (x_m, y_m)$; (c) stochastic gradient descent "
        "with momentum using 1 sample; (d) stochastic gradient descent with Nesterov accelerated momentum "
        "using 1 sample. Then compare a few steps of SGD, momentum, Nesterov, Adagrad, RMSprop and Adam "
        "on the network of seed 004 Q2.")

    DEFAULTS = {"lr": "0.1"}

    def solve(self, values=None, steps: int = 1) -> BlocksSolution:
        from derive.problems import load

        given = Given(values, self.DEFAULTS)
        lr = given.number("lr", lo=0, hi=10, strict_lo=True)
        k = steps if steps > 1 else COMPARE_STEPS
        net = load(NET)
        blocks, vals, checks = [], {}, []
        self._sgd(net, blocks, vals)
        self._batch(net, blocks, vals, checks)
        self._momentum(blocks, vals, checks)
        self._nesterov(net, blocks, vals, checks)
        self._compare(net, lr, k, blocks, vals, checks)
        formulas = named_formulas()
        self._named(formulas, blocks, vals)
        blocks += [B.Heading("Verification"),
                   B.prose("The batch gradients against numpy backpropagation and finite differences; the "
                           "identities above, established symbolically and in exact arithmetic:"),
                   B.Checks(tuple(checks))]
        sol = BlocksSolution(self, vals, blocks, checks)
        sol.judges = formulas      # derive check judges these names as formulas
        return sol

    # (a) ----------------------------------------------------------------
    def _sgd(self, net, out, vals):
        out.append(B.Heading("(a) Stochastic gradient descent, one sample"))
        out.append(B.prose("With one sample ", B.Math("(x_{1}, y_{1})", "(x1, y1)"),
                           " the gradient of that sample's loss moves every parameter against it:"))
        out.append(B.Equations((B.EqRow(B.Math(r"w_{i}", "w_i"), (B.Math(
            r"w_{i} - \eta \, \frac{\partial L\left(f(x_{1}; \theta), y_{1}\right)}{\partial w_{i}}",
            "w_i - lr * dL(f(x1; theta), y1)/dw_i"),), relation="<-"),)))
        rows = rule_rows(Optimizer.from_spec({"rule": "sgd", "lr": 0.5}), sympy.Symbol("t"), general_notation())
        out.append(B.prose("which is torch.optim.SGD's rule with momentum 0: ", rows[-1].lhs, " = ",
                           rows[-1].rhs[0], ". On the exam network of Q2 (learning rate 0.5):"))
        sol = net.solve()
        trows = tuple((B.Math(net.graph.nodes[p].latex, p), B.Math(shown_tex(sol.leaves[p]), shown_text(sol.leaves[p])),
                       B.Math(shown_tex(sol.gradients[p]), shown_text(sol.gradients[p])),
                       B.Math(shown_tex(sol.updates[p]), shown_text(sol.updates[p]))) for p in net.graph.parameters)
        out.append(B.Table(("parameter", "before", B.Math(r"\partial L / \partial w", "dL/dw"), "after"), trows,
                           caption="One SGD step on the exam's instance (seed 004 Q2)"))
        vals["sgd"] = {"lr": 0.5, "updates": {p: float(sol.updates[p]) for p in net.graph.parameters}}

    # (b) ----------------------------------------------------------------
    def _batch(self, net, out, vals, checks):
        out.append(B.Heading(B.Tex("(b) Batch gradient descent, $m$ samples")))
        out.append(B.tex_prose("The seed writes the gradient of the summed loss; code (PyTorch's MSELoss by default) "
                               "usually takes the mean. With $j$ the sample index (the seed's answer uses $i$ for "
                               "both the parameter and the sample):"))
        out.append(B.Equations((
            B.EqRow(B.Math("w_{i}", "w_i"), (B.Math(
                r"w_{i} - \eta \, \frac{\partial}{\partial w_{i}} \sum_{j=1}^{m} L\left(f(x_{j}; \theta), y_{j}\right)",
                "w_i - lr * d/dw_i sum_j L(f(x_j; theta), y_j)"),), "sum", "<-"),
            B.EqRow(B.Math("w_{i}", "w_i"), (B.Math(
                r"w_{i} - \eta \, \frac{\partial}{\partial w_{i}} \frac{1}{m} \sum_{j=1}^{m} L\left(f(x_{j}; \theta), y_{j}\right)",
                "w_i - lr * d/dw_i (1/m) sum_j L(f(x_j; theta), y_j)"),), "mean", "<-"))))
        out.append(B.prose("The derivative is linear, so both are the per-sample gradients added up (divided by ",
                           B.Math("m", "m"), " for the mean): the sum with rate ", B.Math(r"\eta", "lr"), " is the mean with rate ",
                           B.Math(r"m \eta", "m*lr"), ". The step of the summed form grows with the batch size. "
                           "The batch is one graph of ", B.Math("m", "m"), " copies of the network sharing its "
                           "parameters, differentiated like any other graph and checked numerically."))
        params = {p: net.spec.values[p] for p in net.graph.parameters}
        lr = R(1, 2)
        b = batch_step(net.graph, params, BATCH, lr)
        m = b.m
        header = ("parameter",) + tuple(f"sample {j}" for j in range(1, m + 1)) + (
            B.Math(r"\partial \sum / \partial w", "d(sum)/dw"), B.Math(r"\partial \, \mathrm{mean} / \partial w", "d(mean)/dw"),
            "after (sum)", "after (mean)")
        cols = [[g[p] for g in b.per_sample] + [b.sum_grads[p], b.mean_grads[p], b.update_sum[p], b.update_mean[p]]
                for p in net.graph.parameters]
        # one style per column: a column with a repeating decimal (-41/120) is shown all in decimals
        decimal = [any(isinstance(c, sympy.Rational) and exact_decimal(c) is None for c in col)
                   for col in zip(*cols)]
        trows = []
        for p, cells in zip(net.graph.parameters, cols):
            trows.append((B.Math(net.graph.nodes[p].latex, p),) + tuple(
                B.Math(shown_tex(sympy.Float(c, 30)), shown_text(sympy.Float(c, 30))) if dec
                else B.Math(shown_tex(c), shown_text(c)) for c, dec in zip(cells, decimal)))
        samples = "; ".join(", ".join(f"${net.graph.nodes[k].latex if k in net.graph.nodes else k} = {v}$"
                                      for k, v in s.items()) for s in BATCH)
        out.append(B.Table(header, tuple(trows),
                           caption=B.Tex(f"$m = {m}$ samples ({samples}; the first is the exam's), "
                                         "learning rate 0.5" + ("; a column with a repeating decimal is "
                                                                "rounded to 6 significant digits" if any(decimal)
                                                                else ""))))
        # the identities, checked exactly
        sum_err = max(abs(b.sum_grads[p] - sum(g[p] for g in b.per_sample)) for p in params)
        mean_err = max(abs(m * b.mean_grads[p] - b.sum_grads[p]) for p in params)
        rate_err = max(abs(b.update_sum[p] - (params[p] - m * lr * b.mean_grads[p])) for p in params)
        checks += b.checks
        checks += [
            {"method": "batch gradient = sum of per-sample gradients (exact)", "max_abs_err": float(sum_err),
             "passed": bool(sum_err == 0)},
            {"method": "m times the mean gradient = summed gradient (exact)", "max_abs_err": float(mean_err),
             "passed": bool(mean_err == 0)},
            {"method": "sum step with rate lr = mean step with rate m lr (exact)", "max_abs_err": float(rate_err),
             "passed": bool(rate_err == 0)}]
        vals["batch"] = {"m": m, "lr": float(lr), "samples": [{k: float(sympy.Rational(str(v))) for k, v in s.items()}
                                                               for s in BATCH],
                         "per_sample_losses": [float(x) for x in b.losses],
                         "per_sample_gradients": [{p: float(g[p]) for p in params} for g in b.per_sample],
                         "sum_gradients": {p: float(b.sum_grads[p]) for p in params},
                         "mean_gradients": {p: float(b.mean_grads[p]) for p in params},
                         "updates_sum": {p: float(b.update_sum[p]) for p in params},
                         "updates_mean": {p: float(b.update_mean[p]) for p in params}}

    # (c) ----------------------------------------------------------------
    def _momentum(self, out, vals, checks):
        out.append(B.Heading("(c) SGD with momentum: two forms"))
        out.append(B.prose("The seed gives two forms side by side, with ", B.Math("g_{t}", "g_t"),
                           " the gradient of the sample's loss at ", B.Math("w_{t}", "w_t"), " and ",
                           B.Math("v_{0} = 0", "v_0 = 0"), ":"))
        out.append(B.Equations((
            B.EqRow(B.Math("v_{t+1}", "v_(t+1)"), (B.Math(r"\rho v_{t} + g_{t}", "rho*v_t + g_t"),), "form A", "<-"),
            B.EqRow(B.Math("w_{t+1}", "w_(t+1)"), (B.Math(r"w_{t} - \eta v_{t+1}", "w_t - lr*v_(t+1)"),), "form A", "<-"),
            B.EqRow(B.Math("v_{t+1}", "v_(t+1)"), (B.Math(r"\rho v_{t} - \eta g_{t}", "rho*v_t - lr*g_t"),), "form B", "<-"),
            B.EqRow(B.Math("w_{t+1}", "w_(t+1)"), (B.Math(r"w_{t} + v_{t+1}", "w_t + v_(t+1)"),), "form B", "<-"))))
        out.append(B.tex_prose("Form A is torch.optim.SGD with momentum $\\rho$, whose buffer starts at the first "
                               "gradient (the same as $v_0 = 0$ here, without dampening). "
                               f"Running both forms for {FORM_STEPS} steps with the gradients as symbols "
                               "$g_1, g_2, g_3$ and a constant rate gives:"))
        f = momentum_forms()
        names = {f["w0"]: ("w_{0}", "w0"), **{g: (f"g_{{{i}}}", f"g{i}") for i, g in enumerate(f["g"], 1)},
                 **{e: (rf"\eta_{{{i}}}", f"lr{i}") for i, e in enumerate(f["etas"], 1)}}
        rows = []
        for t in range(FORM_STEPS):
            rows.append(_row(f"w^{{A}}_{{{t + 1}}}", f"wA_{t + 1}", f["w_A"][t], names))
            rows.append(_row(f"w^{{B}}_{{{t + 1}}}", f"wB_{t + 1}", f["w_B"][t], names))
        out.append(B.Equations(tuple(rows)))
        const_diff = [sympy.expand(a - b) for a, b in zip(f["w_A"], f["w_B"])]
        scale = [sympy.expand(vb + ETA * va) for va, vb in zip(f["v_A"], f["v_B"])]
        quad = momentum_on_quadratic()
        quad_var = momentum_on_quadratic(varying=True)
        out.append(B.prose("Every difference ", B.Math(r"w^{A}_{t} - w^{B}_{t}", "wA_t - wB_t"), " expands to ",
                           B.Math(tex(const_diff[-1]), text(const_diff[-1])), ", and ",
                           B.Math(r"v^{B}_{t} = -\eta \, v^{A}_{t}", "vB_t = -lr*vA_t"),
                           " at every step: with a constant rate the forms are one algorithm whose velocities "
                           "differ by the factor ", B.Math(r"-\eta", "-lr"), ". Since the iterates agree, so do the "
                           "gradients computed at them (on ", B.Math(r"L = \tfrac12 a w^2", "L = a w^2/2"),
                           ", where each gradient depends on the iterate, the differences are again ",
                           B.Math(", ".join(tex(d) for d in quad), ", ".join(text(d) for d in quad)),
                           "). With a rate that changes between steps "
                           "(", B.Math(r"\eta_{1}, \eta_{2}, \eta_{3}", "lr1, lr2, lr3"),
                           ", as a torch scheduler does) they are different algorithms:"))
        var = [sympy.factor(a - b) for a, b in zip(f["w_A_varying"], f["w_B_varying"])]
        out.append(B.Equations(tuple(_row(f"w^{{A}}_{{{t + 1}}} - w^{{B}}_{{{t + 1}}}", f"wA_{t + 1} - wB_{t + 1}",
                                          var[t], names) for t in range(FORM_STEPS))))
        out.append(B.prose("Form A applies the current rate to the whole accumulated velocity; form B applied each "
                           "gradient's rate when it arrived. They coincide exactly when the rate is constant "
                           "(or when the momentum is 0). torch.optim.SGD is form A; the torch documentation notes the difference "
                           "from the form B of Sutskever et al."))
        ok = all(d == 0 for d in const_diff + scale + quad) and all(d != 0 for d in var[1:] + quad_var[1:])
        checks.append({"method": "momentum forms A and B: equal for constant lr, different for changing lr "
                                 "(symbolic, 3 steps)", "max_abs_err": 0.0, "passed": bool(ok)})
        vals["momentum_forms"] = {"steps": FORM_STEPS,
                                  "w_A": [str(x) for x in f["w_A"]], "w_B": [str(x) for x in f["w_B"]],
                                  "constant_lr_difference": str(const_diff[-1]),
                                  "velocity_relation": "v_B = -eta * v_A",
                                  "varying_lr_difference": [str(x) for x in var],
                                  "quadratic_constant_lr_difference": [str(x) for x in quad],
                                  "quadratic_varying_lr_difference": [str(x) for x in quad_var]}

    # (d) ----------------------------------------------------------------
    def _nesterov(self, net, out, vals, checks):
        out.append(B.Heading("(d) Nesterov accelerated momentum: lookahead form and torch's form"))
        out.append(B.prose("The lookahead form evaluates the gradient where momentum alone would carry the "
                           "parameters, ", B.Math(r"\tilde{\theta}_{t} = \theta_{t} + \rho v_{t}", "theta~_t = theta_t + rho*v_t"),
                           ":"))
        out.append(B.Equations((
            B.EqRow(B.Math("v_{t+1}", "v_(t+1)"), (B.Math(r"\rho v_{t} - \eta \nabla L(\theta_{t} + \rho v_{t})",
                                                          "rho*v_t - lr*grad L(theta_t + rho*v_t)"),), "lookahead", "<-"),
            B.EqRow(B.Math(r"\theta_{t+1}", "theta_(t+1)"), (B.Math(r"\theta_{t} + v_{t+1}", "theta_t + v_(t+1)"),),
                    "lookahead", "<-"),
            B.EqRow(B.Math("b_{t+1}", "b_(t+1)"), (B.Math(r"\rho b_{t} + \nabla L(p_{t})", "rho*b_t + grad L(p_t)"),),
                    "torch", "<-"),
            B.EqRow(B.Math("p_{t+1}", "p_(t+1)"), (B.Math(r"p_{t} - \eta \left(\nabla L(p_{t}) + \rho b_{t+1}\right)",
                                                          "p_t - lr*(grad L(p_t) + rho*b_(t+1))"),), "torch", "<-"))))
        f = nesterov_forms()
        names = {f["a"]: ("a", "a"), f["c"]: ("c", "c"), f["w0"]: (r"\theta_{0}", "theta0")}
        torch_vs_theta = [sympy.factor(p - th) for p, th in zip(f["torch"], f["theta"])]
        torch_vs_look = [sympy.expand(p - th - RHO * v) for p, th, v in zip(f["torch"], f["theta"], f["v"])]
        published = [sympy.factor(pb - th) for pb, th in zip(f["published"], f["theta"])]
        out.append(B.tex_prose(f"Both run for {FORM_STEPS} steps on $L = \\tfrac12 a (w - c)^2$ (torch's form as "
                               "torch.optim.SGD with nesterov=True runs it), starting from the same point with zero "
                               "velocity:"))
        rows = []
        for t in range(FORM_STEPS):
            rows.append(_row(rf"p_{{{t + 1}}} - \theta_{{{t + 1}}}", f"p_{t + 1} - theta_{t + 1}", torch_vs_theta[t], names))
        for t in range(FORM_STEPS):
            rows.append(_row(rf"p_{{{t + 1}}} - (\theta_{{{t + 1}}} + \rho v_{{{t + 1}}})",
                             f"p_{t + 1} - (theta_{t + 1} + rho*v_{t + 1})", torch_vs_look[t], names))
        out.append(B.Equations(tuple(rows)))
        out.append(B.prose("So torch's form is the same algorithm with its variable p standing for the lookahead "
                           "point ", B.Math(r"\theta + \rho v", "theta + rho*v"), ", not for ", B.Math(r"\theta", "theta"),
                           ": the two coincide at the start (", B.Math("v_{0} = 0", "v_0 = 0"), ") and differ by ",
                           B.Math(r"\rho v_{t}", "rho*v_t"), " afterwards (", B.Math(r"b = -v / \eta", "b = -v/lr"),
                           "). On the exam network (", B.Math(r"\eta = 0.1,\ \rho = 0.9", "lr 0.1, rho 0.9"),
                           ", gradients at the lookahead points):"))
        net_rows = nesterov_on_network(net, FORM_STEPS, R(1, 10), R(9, 10))
        out.append(B.Table(("step", B.Math(r"\max |p_{t} - (\theta_{t} + \rho v_{t})|", "max|p_t - (theta_t + rho v_t)|"),
                            B.Math(r"\max |p_{t} - \theta_{t}|", "max|p_t - theta_t|")),
                           tuple((str(t), _sci_math(agree), _sci_math(apart)) for t, agree, apart in net_rows)))
        out.append(B.prose("The seed's first form puts the lookahead at ", B.Math(r"\theta_{t} + \eta v_{t}",
                           "theta_t + lr*v_t"), " (the learning rate ", B.Math(r"\eta", "eta"), " where the momentum ",
                           B.Math(r"\rho", "rho"), " belongs). Its iterates minus the lookahead form's:"))
        factor = _common_factor(published[1])
        out.append(B.Equations(tuple(_row(rf"\theta^{{\mathrm{{pub}}}}_{{{t + 1}}} - \theta_{{{t + 1}}}",
                                          f"theta_pub_{t + 1} - theta_{t + 1}", published[t], names)
                                     for t in range(FORM_STEPS))))
        out.append(B.prose("Zero at step 1 (", B.Math("v_0 = 0", "v_0 = 0"), "), then a multiple of ", _m(factor),
                           ": the published form is Nesterov only when ", B.Math(r"\eta = \rho", "lr = rho"), "."))
        ok = (all(d == 0 for d in torch_vs_look) and all(d != 0 for d in torch_vs_theta)
              and published[0] == 0 and all(d != 0 for d in published[1:]))
        net_err = max(agree for _, agree, _ in net_rows)
        checks += [{"method": "torch nesterov = lookahead form at theta + rho v (symbolic, 3 steps); "
                              "published lookahead differs", "max_abs_err": 0.0, "passed": bool(ok)},
                   {"method": "torch nesterov = lookahead form on the exam network", "max_abs_err": net_err,
                    "passed": bool(net_err < 1e-20)}]
        vals["nesterov_forms"] = {
            "steps": FORM_STEPS, "loss": "a*(w - c)**2/2",
            "torch_minus_theta": [str(x) for x in torch_vs_theta],
            "torch_minus_lookahead": str(sympy.Add(*torch_vs_look)),
            "published_minus_standard": [str(x) for x in published],
            "published_minus_standard_factor": str(factor),
            "network": [{"step": t, "max_abs_p_minus_lookahead": agree, "max_abs_p_minus_theta": apart}
                        for t, agree, apart in net_rows]}

    # named formulas ----------------------------------------------------
    def _named(self, formulas, out, vals):
        out.append(B.Heading("The rules as named formulas, for checking hand answers"))
        out.append(B.tex_prose("A hand-written rule is compared with these as a formula (exactly, and at random "
                               "points): $g$ is the gradient of the sample's loss with respect to the parameter, "
                               "$v_{t+1}$ the new velocity, and by the chain rule "
                               "$g = \\frac{\\partial L}{\\partial f} \\nabla f$, with $f$ the network's output. "
                               "An answer may also write $\\alpha$ for $\\eta$, $\\mu$ for $\\rho$, and $w$, "
                               "$\\theta$ or $x$ for the parameter."))
        out.append(B.Table(("name", "formula", "what it is"),
                           tuple((name.replace("_", " "), _m(f.expr, FORMULA_NAMES), _about(f.about))
                                 for name, f in formulas.items()),
                           align="llp{0.45\\linewidth}"))
        for name, f in formulas.items():
            vals[name] = str(f.expr)

    # comparison ---------------------------------------------------------
    def _compare(self, net, lr, k, out, vals, checks):
        from derive.problems.base import GraphProblem

        out.append(B.Heading("Every rule on the exam network"))
        at = len(out)
        runs = {}
        for rule in RULES:
            problem = GraphProblem(dict(net.data, optimizer={"rule": rule, "lr": lr}), NET, id=NET)
            sol = problem.solve(steps=k)
            final = problem.graph.forward(dict(sol.leaves, **sol.updates))[problem.graph.loss]
            runs[rule] = (sol, list(sol.trajectory.losses) + [final])
        rules = list(RULES)
        out.insert(at, B.prose(f"{k} steps of each rule from the exam's initial weights on its single example, all "
                               f"with learning rate {shown_text(lr)}; " + _hyper_words(runs, rules) + ":"))
        out.append(B.Table(("step",) + tuple(rules),
                           tuple((str(t),) + tuple(B.Math(shown_tex(runs[r][1][t]), shown_text(runs[r][1][t]))
                                                   for r in rules) for t in range(k + 1)),
                           caption="The loss after each step (step 0: the start)"))
        params = net.graph.parameters
        out.append(B.Table(("parameter", "start") + tuple(rules),
                           tuple((B.Math(net.graph.nodes[p].latex, p), B.Math(shown_tex(net.spec.values[p]),
                                                                             shown_text(net.spec.values[p])))
                                 + tuple(B.Math(shown_tex(runs[r][0].updates[p]), shown_text(runs[r][0].updates[p]))
                                         for r in rules) for p in params),
                           caption=f"The parameters after {k} steps"))
        logy = all(float(x) > 0 for r in rules for x in runs[r][1])
        out.append(B.Figure("plot", {"xlabel": "step", "ylabel": "loss", "logy": logy,
                                     "series": [{"label": r, "x": list(range(k + 1)),
                                                 "y": [float(x) for x in runs[r][1]], "marks": True}
                                                for r in rules]},
                            caption=f"loss per step of each rule, learning rate {shown_text(lr)}",
                            label="fig:optimizers-loss"))
        rms = runs["rmsprop"][0].optimizer.hyper
        out.append(B.tex_prose("RMSprop's first step has no bias correction: from $v_0 = 0$, "
                               "$v_1 = (1 - \\alpha) g^2$, so each parameter with a non-zero gradient moves by about "
                               "$\\eta / \\sqrt{1 - \\alpha} = "
                               f"{shown_tex(lr / sympy.sqrt(1 - rms['alpha']))}$ at once; Adam's bias correction makes "
                               f"its first step about $\\eta = {shown_tex(lr)}$; Adagrad's first step is also about "
                               "$\\eta$."))
        vals["comparison"] = {
            "lr": float(lr), "steps": k, "network": NET,
            "rules": {r: {"torch": runs[r][0].optimizer.torch_call(),
                          "loss": [float(x) for x in runs[r][1]],
                          "params": [{p: float(tp[p]) for p in params} for tp in runs[r][0].trajectory.params]}
                      for r in rules}}


# ---------------------------------------------------------------------------
# Named formulas: what `derive check optimizers ANSWERS` compares a hand answer with

W, THETA, V, V_NEXT, G = (_sym(n) for n in ("w", "theta", "v", "v_next", "g"))
GRAD_F, DL_DF = _sym("grad_f"), _sym("dL_df")
#: a step after the first (torch's first momentum step copies the gradient)
LATER = sympy.Symbol("t", integer=True, positive=True)
#: the chain rule for a network with scalar output f: dL/dw = dL/df * df/dw
CHAIN = {G: DL_DF * GRAD_F}
FORMULA_NAMES = {W: ("w_{t}", "w"), THETA: (r"\theta_{t}", "theta"), V: ("v_{t}", "v"),
                 V_NEXT: ("v_{t+1}", "v_next"), G: ("g", "g"), GRAD_F: (r"\nabla f", "grad_f"),
                 DL_DF: (r"\partial L / \partial f", "dL_df")}


def _answer_names(param) -> dict:
    """The names an answer may use: the seed's own letters as aliases."""
    names = {"eta": ETA, "lr": ETA, "alpha": ETA, "rho": RHO, "momentum": RHO, "mu": RHO,
             "v": V, "v_t": V, "v_next": V_NEXT, "v_new": V_NEXT, "v_t1": V_NEXT,
             "g": G, "g_t": G, "g_NAG": G, "g_nag": G, "grad_f": GRAD_F, "dL_df": DL_DF}
    names.update({n: param for n in ("w", "w_t", "w_i", "theta", "theta_t", "x", "x_t")})
    return names


def named_formulas() -> dict:
    """The rules of (a), (c) and (d) as :class:`~derive.grading.verdicts.Formula`
    quantities, each printed from the rule derive runs: torch's programs for
    SGD and form A, the step functions of form B and of the lookahead form
    (whose agreement with torch the solution establishes), and form A minus
    form B after two steps with changing rates.

    >>> f = named_formulas()
    >>> f["nesterov_lookahead"].judge("theta + eta*v")[1]
    'the lookahead point, where g_NAG is taken: equal to rho*v + theta only when eta = rho (or v = 0); answer minus right form: v*(eta - rho)'
    >>> f["momentum_velocity_a"].judge("rho*v + grad_f")[1].split(": ")[1]
    'equal to g + rho*v (g = dL_df*grad_f) only when dL_df = 1 (or grad_f = 0); answer minus right form'
    """
    from derive.grading.verdicts import Formula

    def program(rule, state, ref=None):
        opt = Optimizer.from_spec({"rule": rule})
        hyper = {**opt.hyper, "lr": ETA, **({"momentum": RHO} if opt.hyper["momentum"] else {})}
        return dict(opt.program(W, G, state, LATER, hyper, ref))

    sgd = program("sgd", {})
    mom = program("momentum", {"momentum_buffer": V},
                  ref=lambda target, expr: V_NEXT if target == "momentum_buffer" else expr)
    two = momentum_forms(2)
    gap = sympy.factor(two["w_A_varying"][1] - two["w_B_varying"][1])
    gap_names = {"rho": RHO, "momentum": RHO, "mu": RHO, "w0": two["w0"]}
    for t, (g, eta) in enumerate(zip(two["g"], two["etas"]), start=1):
        gap_names.update({f"g{t}": g, f"eta{t}": eta, f"lr{t}": eta})
    w_names, th_names = _answer_names(W), _answer_names(THETA)
    return {
        "sgd_update": Formula(sgd["param"], w_names, CHAIN, "one SGD step"),
        "momentum_velocity_a": Formula(mom["momentum_buffer"], w_names, CHAIN,
                                       "form A's velocity (torch.optim.SGD's momentum buffer)"),
        "momentum_param_a": Formula(mom["param"], w_names, CHAIN, "form A's parameter step"),
        "momentum_velocity_b": Formula(velocity_b(V, G, ETA), w_names, CHAIN, "form B's velocity"),
        "momentum_param_b": Formula(W + V_NEXT, w_names, CHAIN, "form B's parameter step"),
        "momentum_a_minus_b": Formula(gap, gap_names, {},
                                      "form A's w_2 minus form B's w_2, with rates eta1, eta2 and gradients "
                                      "g1, g2 at steps 1 and 2 (0 if they were one algorithm)"),
        "nesterov_lookahead": Formula(lookahead_point(THETA, V), th_names, CHAIN,
                                      "the lookahead point, where g_NAG is taken"),
        "nesterov_velocity": Formula(velocity_b(V, G, ETA), th_names, CHAIN,
                                     "the velocity, g the gradient at the lookahead point"),
        "nesterov_param": Formula(THETA + V_NEXT, th_names, CHAIN, "the parameter step"),
    }


def _sci_math(x: float) -> B.Math:
    """A small difference at 3 significant digits, a power of ten as ×10ⁿ."""
    s = f"{x:.3g}"
    if "e" in s:
        mant, exp = s.split("e")
        return B.Math(rf"{mant} \times 10^{{{int(exp)}}}", s)
    return B.Math(s, s)


def _about(words: str) -> B.Tex:
    """A named formula's description with its letters typeset."""
    out = words
    for plain, tex_ in (("eta1, eta2", "$\\eta_1, \\eta_2$"), ("g1, g2", "$g_1, g_2$"), ("w_2", "$w_2$"),
                        ("g_NAG", "$g_{\\mathrm{NAG}}$"), (", g the gradient", ", $g$ the gradient")):
        out = out.replace(plain, tex_)
    return B.Tex(out)


def _hyper_words(runs, rules) -> str:
    """Which hyper-parameters the runs use besides the learning rate, read off the optimizers run."""
    set_ = []
    for r in rules:
        used = runs[r][0].optimizer.hyper
        # torch's defaults are those of the class: SGD's momentum is 0
        default = Optimizer.from_spec({"rule": "sgd" if TORCH_CLASS[r] == "SGD" else r}).hyper
        diff = [(f"{k} on" if v is True else f"{k} {shown_text(v)} (torch's default is {shown_text(default[k])})")
                for k, v in sorted(used.items()) if k != "lr" and k in default and v != default[k]]
        if diff:
            set_.append(f"{r} with " + ", ".join(diff))
    rest = "every other hyper-parameter at torch.optim's default"
    return "; ".join(set_ + [rest])


def _common_factor(expr):
    """The factor (eta - rho) or the like that a factored difference carries."""
    for f in sympy.Mul.make_args(expr):
        base = f.base if f.is_Pow else f
        if base.is_Add and base.free_symbols <= {ETA, RHO}:
            return base
    return expr


PROBLEMS = [Optimizers()]
