"""The seed 004 Q2 exam problem end to end (numbers computed independently below)."""
import sympy

from derive.problems import load


def test_relu_regression_exam_numbers():
    sol = load("mlp-relu-regression").solve()
    # Independent hand computation in exact arithmetic (not from the seed's key).
    R = sympy.Rational
    w1, w2, w3, w4, w5, w6 = R(1, 10), R(2, 10), R(-2, 10), R(-1, 10), R(5, 10), R(3, 10)
    x1 = x2 = 1
    y = R(1, 2)
    z1 = w1 * x1 + w2 * x2
    z2 = w3 * x1 + w4 * x2
    a1, a2 = max(z1, 0), max(z2, 0)
    o1 = w5 * a1 + w6 * a2
    d_o = o1 - y
    assert sol.forward["L"] == (y - o1) ** 2 / 2
    assert sol.gradients["w5"] == d_o * a1
    assert sol.gradients["w1"] == d_o * w5 * (1 if z1 > 0 else 0) * x1
    assert sol.gradients["w3"] == 0
    assert sol.updates["w1"] == w1 - R(1, 2) * d_o * w5 * x1
    assert sol.updates["w1"] == R(3, 16)
    assert sol.updates["b3"] == -R(1, 2) * d_o
    assert all(c["passed"] for c in sol.checks)
