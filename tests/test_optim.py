"""Update rules against an independent numpy implementation of torch.optim's semantics.

The reference below is written from torch.optim's documented algorithms
(torch 2.x `_single_tensor_*` code paths), in float64, sharing no code with
derive.engine.optim.
"""
import math
import subprocess
import sys

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.cli import main
from derive.engine.graph import settle
from derive.engine.optim import RULES, Optimizer, OptimizerError
from derive.problems import load


# ---------------------------------------------------------------------------
# The independent reference: one class per torch optimiser, numpy arrays.

class RefSGD:
    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        self.lr, self.mu, self.damp, self.wd, self.nesterov = lr, momentum, dampening, weight_decay, nesterov
        self.buf = None

    def step(self, p, g):
        if self.wd:
            g = g + self.wd * p
        if self.mu:
            if self.buf is None:
                self.buf = g.copy()
            else:
                self.buf = self.mu * self.buf + (1 - self.damp) * g
            g = g + self.mu * self.buf if self.nesterov else self.buf
        return p - self.lr * g


class RefAdagrad:
    def __init__(self, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        self.lr, self.lr_decay, self.wd, self.eps = lr, lr_decay, weight_decay, eps
        self.init = initial_accumulator_value
        self.sum = None
        self.t = 0

    def step(self, p, g):
        if self.sum is None:
            self.sum = np.full_like(p, self.init)
        self.t += 1
        if self.wd:
            g = g + self.wd * p
        clr = self.lr / (1 + (self.t - 1) * self.lr_decay)
        self.sum = self.sum + g * g
        return p - clr * g / (np.sqrt(self.sum) + self.eps)


class RefRMSprop:
    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        self.lr, self.alpha, self.eps, self.wd, self.mu, self.centered = lr, alpha, eps, weight_decay, momentum, centered
        self.sq = self.gavg = self.buf = None

    def step(self, p, g):
        if self.sq is None:
            self.sq, self.gavg, self.buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
        if self.wd:
            g = g + self.wd * p
        self.sq = self.alpha * self.sq + (1 - self.alpha) * g * g
        if self.centered:
            self.gavg = self.alpha * self.gavg + (1 - self.alpha) * g
            avg = np.sqrt(self.sq - self.gavg**2) + self.eps
        else:
            avg = np.sqrt(self.sq) + self.eps
        if self.mu > 0:
            self.buf = self.mu * self.buf + g / avg
            return p - self.lr * self.buf
        return p - self.lr * g / avg


class RefAdam:
    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        self.lr, (self.b1, self.b2), self.eps, self.wd, self.amsgrad = lr, betas, eps, weight_decay, amsgrad
        self.m = self.v = self.vmax = None
        self.t = 0

    def step(self, p, g):
        if self.m is None:
            self.m, self.v, self.vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
        self.t += 1
        if self.wd:
            g = g + self.wd * p
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        bc1 = 1 - self.b1**self.t
        bc2 = 1 - self.b2**self.t
        v = self.v
        if self.amsgrad:
            self.vmax = np.maximum(self.vmax, self.v)
            v = self.vmax
        denom = np.sqrt(v) / math.sqrt(bc2) + self.eps
        return p - (self.lr / bc1) * self.m / denom


def reference(rule, hyper):
    """The reference optimiser for derive's (rule, hyper) in torch's own argument names."""
    h = {k: (v if isinstance(v, bool) else float(v)) for k, v in hyper.items()}
    if rule in ("sgd", "momentum", "nesterov"):
        return RefSGD(**h)
    if rule == "adagrad":
        return RefAdagrad(**h)
    if rule == "rmsprop":
        return RefRMSprop(**h)
    betas = (h.pop("beta1"), h.pop("beta2"))
    return RefAdam(betas=betas, **h)


def run_derive(opt, p0, grads):
    """derive's update on every coordinate, gradients given per step."""
    params = [sympy.Rational(x).limit_denominator(10**6) for x in p0]
    states = [opt.initial_state() for _ in params]
    out = []
    for t, g in enumerate(grads, start=1):
        for i, gi in enumerate(g):
            new, state = opt.update(params[i], sympy.Rational(gi).limit_denominator(10**6), states[i], t)
            # as GraphSolution does: exact while rational, else 30-digit floats
            params[i], states[i] = settle(new), {k: settle(v) for k, v in state.items()}
        out.append([float(sympy.N(x, 30)) for x in params])
    return np.array(out)


def run_reference(rule, hyper, p0, grads):
    ref = reference(rule, hyper)
    p = np.array([float(sympy.Rational(x).limit_denominator(10**6)) for x in p0])
    out = []
    for g in grads:
        g = np.array([float(sympy.Rational(x).limit_denominator(10**6)) for x in g])
        p = ref.step(p, g)
        out.append(p.copy())
    return np.array(out)


CASES = [
    ("sgd", {"lr": 0.5}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}),
    ("momentum", {"lr": 0.1}),
    ("momentum", {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.1}),
    ("nesterov", {"lr": 0.2, "momentum": 0.8}),
    ("sgd", {"lr": 0.2, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    ("adagrad", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "centered": True}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.05, "momentum": 0.5}),
    ("adam", {"lr": 0.1}),
    ("adam", {"lr": 0.1, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.1}),
    ("adam", {"lr": 0.1, "amsgrad": True}),
]

GRADS = [[0.5, -0.25, 0.0], [-1.0, 0.125, 0.0], [0.75, 0.5, 0.3], [2.0, -0.5, -0.1]]


@pytest.mark.parametrize("rule,spec", CASES)
def test_rules_match_reference(rule, spec):
    opt = Optimizer.from_spec({"rule": rule, **spec})
    p0 = [0.1, -0.2, 0.3]
    ours = run_derive(opt, p0, GRADS)
    ref = run_reference(rule, opt.hyper, p0, GRADS)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)


@settings(max_examples=40, deadline=None)
@given(rule=st.sampled_from(sorted(RULES)),
       lr=st.sampled_from(["0.01", "0.1", "0.5"]),
       wd=st.sampled_from(["0", "0.1"]),
       grads=st.lists(st.lists(st.integers(-20, 20).map(lambda k: k / 8), min_size=2, max_size=2),
                      min_size=1, max_size=4))
def test_rules_match_reference_random(rule, lr, wd, grads):
    opt = Optimizer.from_spec({"rule": rule, "lr": lr, "weight_decay": wd})
    p0 = [0.25, -0.5]
    np.testing.assert_allclose(run_derive(opt, p0, grads), run_reference(rule, opt.hyper, p0, grads),
                               rtol=1e-11, atol=1e-13)


def test_defaults_are_torchs():
    # torch 2.x signatures, written out here rather than read from derive
    def floats(rule):
        return {k: (v if isinstance(v, bool) else float(v)) for k, v in Optimizer.from_spec({"rule": rule}).hyper.items()}

    assert floats("sgd") == {"lr": 1e-3, "momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": False}
    assert floats("momentum")["momentum"] == 0.9 and floats("nesterov")["nesterov"] is True
    assert floats("adagrad") == {"lr": 1e-2, "lr_decay": 0, "weight_decay": 0, "initial_accumulator_value": 0,
                                 "eps": 1e-10}
    assert floats("rmsprop") == {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0, "momentum": 0,
                                 "centered": False}
    assert floats("adam") == {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0,
                              "amsgrad": False}
    assert Optimizer.from_spec({"rule": "adam"}).torch_call() == (
        "torch.optim.Adam(params, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, amsgrad=False)")


def test_first_momentum_step_is_the_gradient_even_with_dampening():
    opt = Optimizer.from_spec({"rule": "sgd", "lr": 1, "momentum": 0.9, "dampening": 0.5})
    g = sympy.Rational(3, 4)
    p1, s1 = opt.update(sympy.Integer(0), g, opt.initial_state(), 1)
    assert s1["momentum_buffer"] == g and p1 == -g
    p2, s2 = opt.update(p1, g, s1, 2)
    assert s2["momentum_buffer"] == sympy.Rational(9, 10) * g + sympy.Rational(1, 2) * g


def test_adam_eps_outside_the_square_root_and_step_size():
    # With v = g^2 exactly after one step, torch's first Adam step is lr * g / (|g| + eps * ...):
    # denom = |g| + eps, step = lr * m / (1 - beta1) / denom = lr * g / (|g| + eps).
    opt = Optimizer.from_spec({"rule": "adam", "lr": 0.1, "eps": 0.5})
    p1, _ = opt.update(sympy.Integer(1), sympy.Integer(2), opt.initial_state(), 1)
    assert sympy.nsimplify(p1) == 1 - sympy.Rational(1, 10) * 2 / (2 + sympy.Rational(1, 2))


def test_symbolic_program_is_the_numeric_one():
    opt = Optimizer.from_spec({"rule": "adam", "lr": 0.1, "weight_decay": 0.01})
    hyper, numbers = opt.symbolic_hyper()
    p, g, m, v = sympy.symbols("p g m v", real=True)
    prog = opt.program(p, g, {"exp_avg": m, "exp_avg_sq": v}, 3, hyper)
    vals = {p: sympy.Rational(1, 3), g: sympy.Rational(-2, 5), m: sympy.Rational(1, 7), v: sympy.Rational(1, 11)}
    new_p, new_s = opt.update(vals[p], vals[g], {"exp_avg": vals[m], "exp_avg_sq": vals[v]}, 3)
    by_target = dict(prog)
    assert [t for t, _ in prog] == ["grad", "exp_avg", "exp_avg_sq", "param"]
    assert sympy.N(by_target["param"].xreplace({**numbers, **vals}) - new_p, 40) == 0
    assert by_target["exp_avg"].xreplace({**numbers, **vals}) == new_s["exp_avg"]


# ---------------------------------------------------------------------------
# --steps K on the exam network against a hand-written numpy forward/backward.

def relu_net_grads(w):
    w1, w2, w3, w4, w5, w6, b1, b2, b3 = w
    x1 = x2 = 1.0
    y = 0.5
    z1 = w1 * x1 + w2 * x2 + b1
    z2 = w3 * x1 + w4 * x2 + b2
    a1, a2 = max(z1, 0.0), max(z2, 0.0)
    o1 = w5 * a1 + w6 * a2 + b3
    d_o = o1 - y
    d_z1 = d_o * w5 * (1.0 if z1 > 0 else 0.0)
    d_z2 = d_o * w6 * (1.0 if z2 > 0 else 0.0)
    return np.array([d_z1 * x1, d_z1 * x2, d_z2 * x1, d_z2 * x2, d_o * a1, d_o * a2, d_z1, d_z2, d_o]), 0.5 * d_o**2


@pytest.mark.parametrize("rule,lr", [("momentum", "0.1"), ("nesterov", "0.1"), ("adagrad", "0.1"),
                                     ("rmsprop", "0.01"), ("adam", "0.05")])
def test_steps_on_exam_network(rule, lr):
    problem = load("mlp-relu-regression")
    from derive.problems.base import GraphProblem

    data = dict(problem.data, optimizer={"rule": rule, "lr": lr})
    sol = GraphProblem(data, "test").solve(steps=4)
    names = ["w1", "w2", "w3", "w4", "w5", "w6", "b1", "b2", "b3"]
    w = np.array([float(sol.leaves[n]) for n in names])
    ref = reference(rule, sol.optimizer.hyper)
    losses = []
    for _ in range(4):
        g, loss = relu_net_grads(w)
        losses.append(loss)
        w = ref.step(w, g)
    np.testing.assert_allclose([float(sol.updates[n]) for n in names], w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose([float(x) for x in sol.trajectory.losses], losses, rtol=1e-12)


# ---------------------------------------------------------------------------
# Bad hyper-parameters through the command line: one line, exit 2.

SPEC = """inputs: {x: 1}
targets: {y: 0.5}
parameters: {w: 0.25}
forward: {o: w*x}
loss: (o - y)**2 / 2
optimizer: %s
"""

BAD = [
    ("{rule: sgd, lr: -0.1}", "optimizer.lr: learning rate must not be negative, got -0.1"),
    ("{rule: adam, beta1: 1}", "optimizer.beta1: must be in [0, 1), got 1"),
    ("{rule: adam, beta2: -0.5}", "optimizer.beta2: must be in [0, 1), got -0.5"),
    ("{rule: adam, betas: [0.9, 1.5]}", "optimizer.beta2: must be in [0, 1), got 1.5"),
    ("{rule: adam, betas: 0.9}", "optimizer.betas: must be a list of two numbers [beta1, beta2]"),
    ("{rule: momentum, momentum: 1.2}", "optimizer.momentum: must be in [0, 1), got 1.2"),
    ("{rule: rmsprop, alpha: -0.1}", "optimizer.alpha: must be in [0, 1), got -0.1"),
    ("{rule: adagrad, lr_decay: -1}", "optimizer.lr_decay: must not be negative, got -1"),
    ("{rule: sgd, weight_decay: -0.01}", "optimizer.weight_decay: must not be negative, got -0.01"),
    ("{rule: adam, eps: 0}",
     "optimizer.eps: must be positive (with eps = 0 a zero gradient divides 0 by 0), got 0"),
    ("{rule: adamw}", "optimizer.rule: unknown optimiser 'adamw'; known: sgd, momentum, nesterov, adagrad, "
                      "rmsprop, adam"),
    ("{lr: 0.1}", "optimizer.rule: missing; one of sgd, momentum, nesterov, adagrad, rmsprop, adam"),
    ("{rule: adam, beta: 0.9}", "optimizer.beta: unknown hyper-parameter for adam; "
                                "known: lr, beta1, beta2, eps, weight_decay, amsgrad"),
    ("{rule: sgd, momentum: 0.9, nesterov: 1}", "optimizer.nesterov: must be true or false"),
    ("{rule: sgd, nesterov: true}",
     "optimizer.nesterov: requires momentum > 0 and dampening = 0 (as torch.optim.SGD)"),
    ("{rule: sgd, lr: fast}", "optimizer.lr: 'fast' is not a number"),
]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("opt,message", BAD)
def test_bad_hyper_parameters_cli(tmp_path, capsys, opt, message):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC % opt)
    assert main(["solve", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"derive: error: {path}: {message}\n"


def test_bad_hyper_parameter_exit_code_of_the_console_script(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC % "{rule: adam, beta1: -0.1}")
    r = run_cli("solve", str(path))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"derive: error: {path}: optimizer.beta1: must be in [0, 1), got -0.1\n"


def test_bad_hyper_parameter_from_set(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC % "{rule: adam, lr: 0.1}")
    assert main(["solve", str(path), "--set", "beta1=1.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("derive: error: ") and err.count("\n") == 1
    assert err.endswith("optimizer.beta1: must be in [0, 1), got 1.5\n")


def test_zero_learning_rate_and_dampening_bounds():
    with pytest.raises(OptimizerError, match="the learning rate must be positive, got 0"):
        Optimizer.from_spec({"rule": "sgd", "lr": 0})
    with pytest.raises(OptimizerError, match=r"dampening: must be in \[0, 1\], got 1.5"):
        Optimizer.from_spec({"rule": "sgd", "dampening": 1.5})
    assert Optimizer.from_spec({"rule": "sgd", "momentum": 0.5, "dampening": 1}).hyper["dampening"] == 1


# ---------------------------------------------------------------------------
# The worked solution of a spec with a stateful rule.

def test_adam_spec_shows_the_rule_then_each_step():
    from derive.typeset import blocks as B
    from derive.problems.base import GraphProblem

    data = dict(load("mlp-relu-regression").data, optimizer={"rule": "adam", "lr": "0.1"})
    sol = GraphProblem(data, "spec.yaml").solve(steps=2)
    blocks = sol.blocks()
    rows = [r for b in blocks if isinstance(b, B.Equations) for r in b.rows]
    by_lhs = {r.lhs.text: r for r in rows}
    assert by_lhs["m_t"].rhs[0].tex == r"\beta_{1} m_{t-1} + g_{t} \left(1 - \beta_{1}\right)"
    assert by_lhs["v_t"].rhs[0].tex == r"\beta_{2} v_{t-1} + g_{t}^{2} \left(1 - \beta_{2}\right)"
    assert by_lhs["theta_t"].rhs[0].tex == (
        r"\theta_{t-1} - \frac{\eta m_{t}}{\left(1 - \beta_{1}^{t}\right) "
        r"\left(\epsilon + \frac{\sqrt{v_{t}}}{\sqrt{1 - \beta_{2}^{t}}}\right)}")
    # step 1 of w1, worked: the numbers are the reference's
    g, _ = relu_net_grads(np.array([0.1, 0.2, -0.2, -0.1, 0.5, 0.3, 0, 0, 0]))
    assert by_lhs["m[w1]_1"].rhs[-1].text == f"{0.1 * g[0]:g}"
    assert by_lhs["w1+"].rhs[-1].text == f"{float(sol.trajectory.params[1]['w1']):.6g}"
    tables = [b for b in blocks if isinstance(b, B.Table) and b.caption.startswith("step ")]
    assert [t.caption.split(" ")[1] for t in tables] == ["1", "2"]
    last = {r[0].text: r[-1].text for r in tables[-1].rows}
    assert last["w5"] == f"{float(sol.updates['w5']):.6g}"


def test_momentum_spec_shows_the_first_buffer():
    from derive.typeset import blocks as B
    from derive.problems.base import GraphProblem

    data = dict(load("mlp-relu-regression").data, optimizer={"rule": "momentum", "lr": "0.1", "dampening": 0.5})
    text = GraphProblem(data, "spec.yaml").solve().to_text()
    assert "b_1 = g_1    (step 1)" in text
    assert "b_t = momentum*b_(t-1) + g_t*(1 - dampening)    (t > 1)" in text
    assert "theta_t = theta_(t-1) - lr*b_t" in text
    assert "w1+ = w1 - lr*b[w1]_1 = 0.1 - 0.1*(-0.175) = 0.1175" in text
    del B


def test_trace_is_the_trajectory():
    from derive.engine.graph import settle
    from derive.engine.optim import trace
    from derive.problems.base import GraphProblem

    data = dict(load("mlp-relu-regression").data, optimizer={"rule": "rmsprop", "centered": True, "momentum": 0.5})
    sol = GraphProblem(data, "x").solve(steps=3)
    from derive.engine.backprop import evaluate

    def grads(params):
        fwd = sol.graph.forward(dict(sol.leaves, **params))
        ev = evaluate(sol.derivation, fwd)
        return {p: ev.adjoint.get(p, 0) for p in params}, fwd["L"]

    run = trace(sol.optimizer, {p: sol.leaves[p] for p in sol.graph.parameters}, grads, 3,
                settle=lambda v: settle(sympy.sympify(v)))
    assert {p: run[-1].values[p]["param"] for p in sol.graph.parameters} == sol.updates
    assert [r.loss for r in run] == sol.trajectory.losses
