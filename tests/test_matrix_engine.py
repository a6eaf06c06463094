"""The matrix-level engine: every core operation's rule against central
differences and its numpy VJP; reverse mode on random small tensor graphs
against the independent numpy backprop and finite differences."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import derive.engine  # noqa: F401  (fills the registry)
from derive.engine import exprs as X
from derive.engine.mcheck import checks, numpy_backprop
from derive.engine.reverse import reverse
from derive.engine.tensor_op import TENSOR_OPS, max_vjp_error
from derive.engine.tgraph import TGraph

RNG = np.random.default_rng(1)

CASES = {
    "add": ([(3, 2), (2,)], {}), "sub": ([(3, 2), (3, 1)], {}), "mul": ([(3, 2), (2,)], {}),
    "div": ([(3, 2), (3, 2)], {}), "pow": ([(3, 2)], {"exponent": 3}), "neg": ([(4,)], {}),
    "matmul": ([(3, 2), (2, 4)], {}), "outer": ([(3,), (2,)], {}), "transpose": ([(3, 2)], {}),
    "stack": ([(3,), (), (2,)], {}), "rows": ([(4,)], {"start": 1, "stop": 3}),
    "entry": ([(4,)], {"index": 2}), "row": ([(4, 2)], {"index": 1}),
    "sum": ([(3, 2)], {}), "mean": ([(3, 2)], {}),
}


@pytest.mark.parametrize("name", sorted(set(CASES) | {"relu", "sigmoid", "tanh", "exp", "log", "sqrt",
                                                       "softplus"}))
def test_numpy_vjp_against_central_differences(name):
    shapes, params = CASES.get(name, ([(3, 2)], {}))
    xs = [RNG.random(s) + 0.5 for s in shapes]
    op = TENSOR_OPS[name]
    full = op.params_of(()); full.update(params)
    assert max_vjp_error(op, xs, full) < 1e-7


@pytest.mark.parametrize("a,b", [((3, 2), (2,)), ((3, 2), (2, 4)), ((2,), (2,)), ((2,), (2, 3))])
def test_matmul_rule_matches_vjp_for_every_case(a, b):
    """The symbolic rule, evaluated, equals the numpy VJP (vector and matrix cases)."""
    A, B = RNG.standard_normal(a), RNG.standard_normal(b)
    op = TENSOR_OPS["matmul"]
    out = A @ B
    G = RNG.standard_normal(np.shape(out))
    sA, sB, sG = X.TensorSymbol("A", a), X.TensorSymbol("B", b), X.TensorSymbol("G", np.shape(out))
    for i in (0, 1):
        rule = op.rule(i, sG, (sA, sB), None, {})
        got = X.evaluate(rule, {"A": A, "B": B, "G": G})
        np.testing.assert_allclose(got, op.vjp(i, G, (A, B), out, {}), rtol=1e-12)


def test_matmul_latex_has_top_and_odot():
    W, x = X.TensorSymbol("W", (3, 2)), X.TensorSymbol("x", (2,))
    G = X.TensorSymbol("dL_dh", (3,), r"\frac{\partial L}{\partial h}")
    h = X.TensorSymbol("h", (3,))
    assert X.latex(X.matmul(X.T(W), G)) == r"W^{\top} \frac{\partial L}{\partial h}"
    assert X.latex(X.outer(X.had(G, X.sub(1, X.had(h, h))), x)) == \
        r"\left(\frac{\partial L}{\partial h} \odot \left(1 - h \odot h\right)\right) x^{\top}"


UNARY = ["tanh", "sigmoid", "relu", "exp", "softplus"]
BINARY = ["add", "sub", "mul"]


@st.composite
def graphs(draw):
    """A random small graph: vectors and matrices, matmul, elementwise ops,
    broadcasting, named intermediate nodes, one scalar loss."""
    n, m = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    g = TGraph("random")
    leaves = {"W": RNG.standard_normal((n, m)) / 2, "x": RNG.standard_normal(m), "b": RNG.standard_normal(n) / 2,
              "V": RNG.standard_normal((n, n)) / 2}
    W = g.leaf("W", (n, m), "parameter"); b = g.leaf("b", (n,), "parameter")
    V = g.leaf("V", (n, n), "parameter"); x = g.leaf("x", (m,), "input")
    cur = g.define("z", g.apply("add", g.apply("matmul", W, x), b))
    pool = [cur, b]
    for k in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["unary", "binary", "matmul"]))
        if kind == "unary":
            e = g.apply(draw(st.sampled_from(UNARY)), cur)
        elif kind == "binary":
            e = g.apply(draw(st.sampled_from(BINARY)), cur, draw(st.sampled_from(pool)))
        else:
            e = g.apply("matmul", V, cur)
        cur = g.define(f"h{k}", e) if draw(st.booleans()) else g.define(f"h{k}", g.apply("tanh", e))
        pool.append(cur)
    g.define("L", g.apply("sum", g.apply("pow", cur, exponent=2)), kind="loss")
    if draw(st.booleans()):
        g.wanted_inputs.append("x")
    return g, leaves


@settings(max_examples=40, deadline=None)
@given(graphs())
def test_matrix_form_equals_numpy_vjp_and_finite_differences(case):
    g, leaves = case
    d = reverse(g, g.forward(leaves))
    ref = numpy_backprop(g, leaves)
    for s in d.steps:
        if s.target in g.nodes:      # named parts of a line (a_h) feed the steps checked here
            np.testing.assert_allclose(s.value, ref[s.target], rtol=1e-10, atol=1e-12)
    assert all(c["passed"] is not False for c in checks(g, leaves, d))     # None: at a relu kink
    for name in ("W", "b", "V"):
        assert d.step_of(name) is not None or not np.any(ref.get(name, 0))


def test_softmax_cross_entropy_gives_p_minus_y():
    g = TGraph()
    W = g.leaf("W", (3, 2), "parameter"); x = g.leaf("x", (2,), "input"); y = g.leaf("y", (3,), "target")
    z = g.define("z", g.apply("matmul", W, x))
    p = g.define("p", g.apply("softmax", z))
    g.define("L", g.apply("neg", g.apply("sum", g.apply("mul", y, g.apply("log", p)))), kind="loss")
    leaves = {"W": RNG.standard_normal((3, 2)), "x": RNG.standard_normal(2), "y": np.array([0.0, 1.0, 0.0])}
    d = reverse(g, g.forward(leaves))
    assert [(s.name, s.spec) for s in d.steps] == [("dL/dz", "p - y"), ("dL/dW", "outer(p - y, x)")]
    cs = checks(g, leaves, d)
    assert [c["method"] for c in cs] == ["numpy-backprop", "finite-difference", "softmax-cross-entropy"]
    assert all(c["passed"] for c in cs)
    leaves["y"] = np.array([0.5, 1.0, 0.0])      # sum(y) != 1: no shortcut, still correct
    d = reverse(g, g.forward(leaves))
    assert d.step_of("p") is not None and all(c["passed"] for c in checks(g, leaves, d))


def test_bias_broadcast_over_a_batch_sums_the_rows():
    g = TGraph()
    X_ = g.leaf("X", (5, 3), "input"); W = g.leaf("W", (3, 2), "parameter"); b = g.leaf("b", (2,), "parameter")
    h = g.define("h", g.apply("tanh", g.apply("add", g.apply("matmul", X_, W), b)))
    g.define("L", g.apply("mean", g.apply("mul", h, h)), kind="loss")
    leaves = {"X": RNG.standard_normal((5, 3)), "W": RNG.standard_normal((3, 2)), "b": RNG.standard_normal(2)}
    d = reverse(g, g.forward(leaves))
    assert d.step_of("a_h").spec == "dL_dh * (1 - h * h)"      # the activation's input, named once
    assert d.step_of("b").spec == "sum_to(dL_da_h, 2)"
    assert d.step_of("W").spec == "transpose(X) @ dL_da_h"
    assert all(c["passed"] for c in checks(g, leaves, d))


def test_sum_over_broadcast_axes_is_labelled_by_its_axes_not_as_a_batch():
    """A bias broadcast over the rows of a matrix, down its columns, or over a
    feature map's rows and columns: its adjoint prints as the sum over those
    axes (no spec has a batch axis, so none is called one)."""
    g = TGraph()
    X_ = g.leaf("X", (4, 3), "input"); W = g.leaf("W", (3, 2), "parameter")
    b = g.leaf("b", (2,), "parameter"); c = g.leaf("c", (4, 1), "parameter"); e = g.leaf("e", (1, 2), "parameter")
    M = g.leaf("M", (2, 3, 3), "input"); f = g.leaf("f", (2, 1, 1), "parameter")
    z = g.define("z", g.apply("add", g.apply("add", g.apply("add", g.apply("matmul", X_, W), b), c), e))
    h = g.define("h", g.apply("tanh", z))
    m = g.define("m", g.apply("tanh", g.apply("add", M, f)))
    g.define("L", g.apply("add", g.apply("sum", g.apply("mul", h, h)), g.apply("sum", g.apply("mul", m, m))),
             kind="loss")
    leaves = {n: RNG.standard_normal(s) for n, s in
              (("X", (4, 3)), ("W", (3, 2)), ("b", (2,)), ("c", (4, 1)), ("e", (1, 2)), ("M", (2, 3, 3)),
               ("f", (2, 1, 1)))}
    d = reverse(g, g.forward(leaves))
    dz = r"\frac{\partial L}{\partial z}"
    assert d.step_of("b").latex == r"\left(" + dz + r"\right)^{\top} \mathbf{1}"   # the column sums, (dL/dz)ᵀ 1
    assert d.step_of("c").latex == dz + r" \mathbf{1}"                  # the row sums
    assert d.step_of("e").latex == r"\mathbf{1}^{\top} " + dz
    assert d.step_of("m").spec == "2 * m"           # the two contributions of m * m counted once
    assert d.step_of("f").latex == (r"\textstyle\sum_{\text{axes } 1, 2} \left(\frac{\partial L}{\partial m} \odot "
                                    r"\left(1 - m \odot m\right)\right)")
    assert "batch" not in "".join(s.latex for s in d.steps)
    assert all(c["passed"] for c in checks(g, leaves, d))
