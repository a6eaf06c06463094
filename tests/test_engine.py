"""The engine (issue 2): operation rules, the MLPs against independent
computations, exact arithmetic, random graphs, spec errors and the CLI contract.

Every expected number here is computed in the test itself (plain numpy,
fractions or mpmath through SymPy), never copied from the seeds.
"""
from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from derive.engine.backprop import derive, evaluate, local_derivative
from derive.cli import main
from derive.engine.graph import Graph
from derive.engine.numeric import finite_differences, numpy_backprop
from derive.engine.ops import OPS, relu, sigmoid, step
from derive.engine.parse import number
from derive.problems import load
from derive.engine.spec import SpecError, load_spec_text

X = sympy.Symbol("x", real=True)
Y = sympy.Symbol("y", real=True)
#: points where every operation is defined and smooth (log and sqrt need x > 0)
POINTS = [0.3, 0.7, 1.9, 3.1]
SIGNED = [-2.3, -0.4, 0.35, 1.6]


def points_for(name):
    return POINTS if name in ("log", "sqrt") else SIGNED


# -- every operation's rule against finite differences --------------------------


@pytest.mark.parametrize("name", sorted(OPS))
def test_symbolic_rule_against_finite_differences(name):
    op = OPS[name]
    out = sympy.Symbol("out", real=True)
    rule = local_derivative(op.sympy(X), X, out)
    h = sympy.Rational(1, 10**12)
    for p in points_for(name):
        x0 = sympy.Rational(str(p))
        value = rule.xreplace({out: op.sympy(x0), X: x0}).evalf(40)
        # central difference at 40 digits: error ~ h^2, far below the tolerance
        fd = ((op.sympy(x0 + h) - op.sympy(x0 - h)) / (2 * h)).evalf(40)
        assert abs(value - fd) < 1e-20, (name, p, value, fd)


@pytest.mark.parametrize("name", sorted(OPS))
def test_numpy_rule_against_finite_differences(name):
    op = OPS[name]
    x = np.array(points_for(name))
    y = op.numpy(x)
    vjp = op.vjp(np.ones_like(x), x, y)
    h = 1e-6
    fd = (op.numpy(x + h) - op.numpy(x - h)) / (2 * h)
    np.testing.assert_allclose(vjp, fd, rtol=1e-7, atol=1e-9)
    # and the symbolic rule agrees with the numpy one
    out = sympy.Symbol("out", real=True)
    rule = local_derivative(op.sympy(X), X, out)
    for xi, yi, gi in zip(x, y, vjp):
        assert float(rule.xreplace({X: sympy.Float(xi), out: sympy.Float(yi)})) == pytest.approx(gi, rel=1e-12,
                                                                                              abs=1e-15)


@pytest.mark.parametrize("expr, at", [
    (X + 3 * Y, {X: 0.7, Y: -1.2}), (X - Y, {X: 0.7, Y: -1.2}), (X * Y, {X: 0.7, Y: -1.2}),
    (X / Y, {X: 0.7, Y: -1.2}), (X ** 3, {X: -0.8, Y: 1}), (X ** Y, {X: 1.3, Y: 0.6}),
    (Y ** X, {X: 1.3, Y: 0.6}), (sympy.sqrt(X * Y), {X: 1.5, Y: 0.4}),
    (sigmoid(X * Y) * sympy.tanh(X), {X: 0.5, Y: -1.1}),
])
def test_arithmetic_rules_against_finite_differences(expr, at):
    h = sympy.Rational(1, 10**12)
    for wrt in (X, Y):
        if wrt not in expr.free_symbols:
            continue
        point = {s: sympy.Rational(str(v)) for s, v in at.items()}
        rule = local_derivative(expr, wrt).xreplace(point).evalf(40)
        plus = expr.xreplace({**point, wrt: point[wrt] + h})
        minus = expr.xreplace({**point, wrt: point[wrt] - h})
        fd = ((plus - minus) / (2 * h)).evalf(40)
        assert abs(rule - fd) < 1e-18, (expr, wrt)


def test_relu_kink_and_exact_constants():
    assert local_derivative(relu(X), X).xreplace({X: 0}) == 0        # relu'(0) = 0
    assert step(0) == 0 and step(sympy.Rational(1, 10**9)) == 1 and step(-1) == 0
    assert relu(0) == 0 and relu(sympy.Rational(-1, 3)) == 0
    assert sigmoid(0) == sympy.Rational(1, 2) and sigmoid(0).is_Rational
    assert OPS["relu"].vjp(np.array([1.0]), np.array([0.0]), np.array([0.0]))[0] == 0.0
    assert OPS["step"].numpy(np.array([0.0]))[0] == 0.0


# -- the tanh/sigmoid MLP against a plain-numpy implementation -------------------


def mlp_tanh_sigmoid_by_hand(v):
    """Forward and backward of seed 002's net, written out in plain numpy."""
    x = np.array([v["x1"], v["x2"]])
    W1 = np.array([[v["w1_11"], v["w1_12"]], [v["w1_21"], v["w1_22"]]])
    w2 = np.array([v["w2_11"], v["w2_12"]])
    h = np.tanh(W1 @ x)
    u = w2 @ h
    o = 1 / (1 + math.exp(-u))
    loss = 0.5 * (v["y"] - o) ** 2
    du = (o - v["y"]) * o * (1 - o)
    dw2 = du * h
    dz = du * w2 * (1 - h ** 2)
    dW1 = np.outer(dz, x)
    grads = {"w2_11": dw2[0], "w2_12": dw2[1], "w1_11": dW1[0, 0], "w1_12": dW1[0, 1],
             "w1_21": dW1[1, 0], "w1_22": dW1[1, 1]}
    return loss, grads


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tanh_sigmoid_mlp_against_plain_numpy(seed):
    problem = load("mlp-tanh-sigmoid")
    rng = np.random.default_rng(seed)
    given_values = None
    if seed:
        given_values = {n: round(float(rng.normal(0, 0.8)), 4) for n in
                        ["x1", "x2", "w1_11", "w1_12", "w1_21", "w1_22", "w2_11", "w2_12"]}
        given_values["y"] = round(float(rng.uniform(0, 1)), 4)
    sol = problem.solve(given_values)
    v = {n: float(sol.forward[n]) for n in problem.graph.leaves}
    loss, grads = mlp_tanh_sigmoid_by_hand(v)
    assert float(sol.forward["L"]) == pytest.approx(loss, rel=1e-13)
    lr = float(sol.optimizer.lr)
    for p, g in grads.items():
        assert float(sol.gradients[p]) == pytest.approx(g, rel=1e-12, abs=1e-15), p
        assert float(sol.updates[p]) == pytest.approx(v[p] - lr * g, rel=1e-12, abs=1e-15), p


# -- exact arithmetic ------------------------------------------------------------


def test_short_decimals_stay_exact():
    assert number(0.1) == sympy.Rational(1, 10) and number("0.1875") == sympy.Rational(3, 16)
    spec = load_spec_text("inputs: {x: 0.1}\nparameters: {w: 0.2}\nforward: {o: w + x}\nloss: o**2\n", "t.yaml")
    assert spec.values["x"] == sympy.Rational(1, 10)
    assert spec.graph.forward(spec.values)["o"] == sympy.Rational(3, 10)   # not 0.30000000000000004


def test_relu_regression_update_is_exact():
    sol = load("mlp-relu-regression").solve()
    F = Fraction
    # the exam's network, by hand in fractions
    x1 = x2 = F(1)
    y = F(1, 2)
    w1, w2, w3, w4, w5, w6 = F(1, 10), F(2, 10), F(-2, 10), F(-1, 10), F(5, 10), F(3, 10)
    z1, z2 = w1 * x1 + w2 * x2, w3 * x1 + w4 * x2
    a1, a2 = max(z1, F(0)), max(z2, F(0))
    o1 = w5 * a1 + w6 * a2
    d_o1 = o1 - y
    g_w1 = d_o1 * w5 * (1 if z1 > 0 else 0) * x1
    new_w1 = w1 - F(1, 2) * g_w1
    assert sol.updates["w1"] == sympy.Rational(new_w1.numerator, new_w1.denominator)
    assert sol.updates["w1"].is_Rational and str(sol.updates["w1"]) == f"{new_w1.numerator}/{new_w1.denominator}"
    data = sol.to_json()
    assert data["gradients"]["w1"]["exact"] == f"{g_w1.numerator}/{g_w1.denominator}"
    assert data["updates"]["w1"] == float(new_w1)


# -- random small graphs: symbolic = numpy backprop = finite differences ----------

SMOOTH = ["tanh", "sigmoid", "softplus", "exp", "relu", "log", "sqrt"]


@st.composite
def random_graphs(draw):
    g = Graph("random")
    leaves = [g.add_leaf("x0", "input")] + [g.add_leaf(f"p{i}", "parameter") for i in range(draw(st.integers(1, 3)))]
    values = {s.name: draw(st.integers(-12, 12)) / 8 for s in leaves}
    syms = list(leaves)
    for k in range(draw(st.integers(1, 6))):
        a, b = draw(st.sampled_from(syms)), draw(st.sampled_from(syms))
        form = draw(st.sampled_from(["op", "mul", "add", "div", "pow"]))
        if form == "op":
            name = draw(st.sampled_from(SMOOTH))
            arg = a - b / 2 + sympy.Rational(1, 7)
            expr = OPS[name].sympy(1 + arg ** 2 if name in ("log", "sqrt") else arg)
        elif form == "mul":
            expr = a * b
        elif form == "add":
            expr = a + 3 * b
        elif form == "div":
            expr = a / (1 + b ** 2)
        else:
            expr = a ** draw(st.integers(2, 3))
        syms.append(g.add(f"n{k}", expr))
    g.add("L", sum(s ** 2 for s in syms[-2:]) / 2 + syms[1], kind="loss")
    return g, values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs())
def test_random_graphs_agree(graph_and_values):
    graph, values = graph_and_values
    leaves = {n: sympy.Rational(v).limit_denominator(8) for n, v in values.items()}
    fwd = graph.forward(leaves)
    assume(all(abs(float(v)) < 1e6 for v in fwd.values()))
    ev = evaluate(derive(graph), fwd)
    symbolic = {p: float(ev.adjoint.get(p, 0)) for p in graph.parameters}
    floats = {n: float(v) for n, v in leaves.items()}
    bp = numpy_backprop(graph, floats)
    fd = finite_differences(graph, floats)
    # relu arguments at or near 0: differences are undefined there
    kinks = [float(sympy.Abs(a.args[0].xreplace({graph.symbol(n): v for n, v in fwd.items()})))
             for node in graph.nodes.values() if node.expr is not None for a in node.expr.atoms(relu)]
    for p in graph.parameters:
        scale = max(1.0, abs(symbolic[p]))
        assert abs(float(bp[p]) - symbolic[p]) <= 1e-9 * scale, p
        if all(k > 1e-4 for k in kinks):
            assert abs(float(fd[p]) - symbolic[p]) <= 1e-5 * scale, p


# -- spec errors named in issue 2 -------------------------------------------------

BASE = {"inputs": "{x: 1}", "parameters": "{w: 0.5}", "forward": "{o: w*x}", "loss": "o**2",
        "optimizer": "{rule: sgd, lr: 0.1}"}


def spec_with(**changes):
    fields = dict(BASE, **changes)
    return "".join(f"{k}: {v}\n" for k, v in fields.items() if v is not None)


@pytest.mark.parametrize("changes, where, what", [
    ({"forward": "{o: w*x, w: o}"}, "forward.w", "name defined twice"),
    ({"inputs": "{x: 1, w: 2}"}, "parameters.w", "name defined twice"),
    ({"forward": "{o: w*q}"}, "forward.o", "unknown name 'q'"),
    ({"loss": None}, "loss", "missing: the spec needs a loss expression"),
    ({"inputs": "{x: abc}"}, "inputs.x", "not a numeric value ('abc' is not a number)"),
    ({"optimizer": "{rule: lbfgs}"}, "optimizer.rule", "unknown optimiser 'lbfgs'"),
    ({"optimizer": "{rule: sgd, lr: 0}"}, "optimizer.lr", "the learning rate must be positive, got 0"),
    ({"optimizer": "{rule: sgd, lr: -1}"}, "optimizer.lr", "learning rate must not be negative"),
])
def test_spec_errors(changes, where, what):
    with pytest.raises(SpecError) as info:
        load_spec_text(spec_with(**changes), "t.yaml")
    assert info.value.where == where
    assert info.value.what.startswith(what)


@pytest.mark.parametrize("text", ["__import__('os').system('echo hi')", "().__class__.__bases__",
                                  "w.__class__", "[w][0]", "(lambda: w)()"])
def test_code_injection_is_refused(text):
    with pytest.raises(SpecError) as info:
        load_spec_text(spec_with(forward="{o: " + json.dumps(text) + "}"), "t.yaml")
    assert info.value.where == "forward.o"


# -- the CLI contract ---------------------------------------------------------------


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json_shape(capsys):
    code, out, err = run(capsys, "list", "--format", "json")
    assert code == 0 and err == ""
    rows = json.loads(out)
    assert all(set(r) >= {"id", "title", "source"} for r in rows)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) and {"mlp-relu-regression", "mlp-tanh-sigmoid"} <= set(ids)
    code, text, _ = run(capsys, "list")
    assert code == 0 and all(i in text for i in ids)


def test_solve_json_shape(capsys):
    code, out, err = run(capsys, "solve", "mlp-tanh-sigmoid", "--format", "json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert {"id", "title", "values", "loss", "gradients", "updates", "checks"} <= set(data)
    problem = load("mlp-tanh-sigmoid")
    assert set(data["values"]) == set(problem.graph.nodes)        # every named quantity, loss included
    assert set(data["gradients"]) == set(data["updates"]) == set(problem.graph.parameters)
    for entry in data["gradients"].values():
        assert isinstance(entry["value"], float) and isinstance(entry["expr"], str)
        assert isinstance(entry["latex"], str)
    assert data["loss"] == data["values"]["L"]
    assert [c["method"] for c in data["checks"]] == ["numpy-backprop", "finite-difference"]
    assert all(c["passed"] is True for c in data["checks"])
    # the expression in sympy syntax evaluates to the value it stands beside
    names = {n: sympy.Symbol(n, real=True) for n in problem.graph.nodes}
    from derive.engine.parse import parse_expr_safe

    for p, entry in data["gradients"].items():
        expr = parse_expr_safe(entry["expr"], names)
        at = {names[n]: sympy.Rational(str(v)) if isinstance(v, float) else v
              for n, v in data["values"].items() if n in problem.graph.leaves}
        assert float(expr.xreplace(at).evalf(30)) == pytest.approx(entry["value"], rel=1e-12, abs=1e-15), p


def test_set_and_values(capsys, tmp_path):
    code, out, _ = run(capsys, "solve", "mlp-relu-regression", "--format", "json", "--set", "w1=0.3")
    with_set = json.loads(out)
    # independent: z1 = 0.3 + 0.2 = 0.5 exactly
    assert with_set["values"]["w1"] == 0.3 and with_set["values"]["z1"] == 0.5
    values = tmp_path / "values.yaml"
    values.write_text("w1: 0.3\nw2: 0.7\n")
    code, out, _ = run(capsys, "solve", "mlp-relu-regression", "--format", "json", "--values", str(values),
                       "--set", "w2=0.2")
    with_file = json.loads(out)
    assert code == 0 and with_file == with_set                   # --set overrides the file
    code, out, _ = run(capsys, "solve", "mlp-relu-regression", "--format", "json", "--set", "lr=0.1")
    data = json.loads(out)
    g = data["gradients"]["w5"]["value"]
    assert data["updates"]["w5"] == pytest.approx(0.5 - 0.1 * g, rel=1e-15)
    code, out, err = run(capsys, "solve", "mlp-relu-regression", "--set", "nope=1")
    assert code == 2 and out == "" and err.startswith("derive: error: ") and err.count("\n") == 1
    code, out, err = run(capsys, "solve", "mlp-relu-regression", "--set", "w1")
    assert code == 2 and err == "derive: error: --set: expected NAME=VALUE, got 'w1'\n"


def test_repr_latex_is_a_string():
    import derive

    latex = derive.solve("mlp-relu-regression")._repr_latex_()
    assert isinstance(latex, str) and latex.strip()
