"""weight-init against a plain numpy trainer and plain-Python gradients written here."""
import json
import math
import time

import numpy as np
import pytest

from derive.problems import load
from derive.problems.weight_init import graph_problem
from derive.engine.spec import SpecError


def forward_loss(p, x, y):
    z = [p["w1_11"] * x[0] + p["w1_12"] * x[1] + p["b1_1"], p["w1_21"] * x[0] + p["w1_22"] * x[1] + p["b1_2"]]
    h = [math.tanh(v) for v in z]
    o = 1 / (1 + math.exp(-(p["w2_11"] * h[0] + p["w2_12"] * h[1] + p["b2_1"])))
    return -(y * math.log(o) + (1 - y) * math.log(1 - o))


def fd_grads(p, x, y, eps=1e-6):
    out = {}
    for k in p:
        up, down = dict(p), dict(p)
        up[k] += eps
        down[k] -= eps
        out[k] = (forward_loss(up, x, y) - forward_loss(down, x, y)) / (2 * eps)
    return out


NAMES = ["w1_11", "w1_12", "w1_21", "w1_22", "b1_1", "b1_2", "w2_11", "w2_12", "b2_1"]


@pytest.mark.parametrize("c", [0.0, 1.0, 0.3])
def test_constant_start_gives_equal_unit_gradients(c):
    p = {k: c for k in NAMES}
    for x, y in [((0.5, -1.0), 1), ((1.3, 0.2), 0)]:
        g = fd_grads(p, x, y)
        assert g["w1_11"] == pytest.approx(g["w1_21"], abs=1e-9)
        assert g["w1_12"] == pytest.approx(g["w1_22"], abs=1e-9)
        assert g["w2_11"] == pytest.approx(g["w2_12"], abs=1e-9)
        if c == 0.0:
            assert all(abs(g[k]) < 1e-9 for k in NAMES if k != "b2_1")


def test_engine_gradients_against_finite_differences():
    p = {k: v for k, v in zip(NAMES, [0.2, -0.4, 0.7, 0.1, -0.3, 0.5, 0.9, -1.1, 0.05])}
    sol = graph_problem().solve({k: str(v) for k, v in p.items()})
    g = fd_grads(p, (0.5, -1.0), 1)
    for k in NAMES:
        assert float(sol.gradients[k]) == pytest.approx(g[k], abs=1e-8)


def test_symmetry_values():
    v = load("weight-init").solve({"epochs": 50}).values
    assert v["symmetric_gradients_equal"] is True
    assert v["zero_init_gradients_zero"] is True
    assert v["hidden_units_gap_ones"] == 0.0 and v["hidden_units_gap_zeros"] == 0.0


def plain_train(W1, b1, W2, b2, X, y, lr, epochs):
    losses = []
    for _ in range(epochs):
        H = np.tanh(X @ W1.T + b1)
        O = 1 / (1 + np.exp(-(H @ W2 + b2)))
        losses.append(-np.mean(y * np.log(O) + (1 - y) * np.log(1 - O)))
        d = (O - y) / len(y)
        dH = np.outer(d, W2) * (1 - H ** 2)
        W1, b1, W2, b2 = W1 - lr * dH.T @ X, b1 - lr * dH.sum(0), W2 - lr * H.T @ d, b2 - lr * d.sum()
    O = 1 / (1 + np.exp(-(np.tanh(X @ W1.T + b1) @ W2 + b2)))
    return losses, np.mean((O > 0.5) == (y > 0.5))


def test_experiment_against_plain_trainer():
    epochs = 300
    v = load("weight-init").solve({"epochs": epochs}).values
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (200, 2))
    y = (np.abs(X[:, 0] - X[:, 1]) < 1).astype(float)
    assert v["majority_rate"] == max(y.mean(), 1 - y.mean())
    init = np.random.default_rng(1)
    runs = [("zeros", 0.0), ("ones", 1.0)] + [(f"random_{k}", None) for k in (1, 2, 3)]
    for label, c in runs:
        if c is None:
            W1, b1, W2, b2 = init.standard_normal((2, 2)), init.standard_normal(2), init.standard_normal(2), \
                init.standard_normal(1)[0]
        else:
            W1, b1, W2, b2 = np.full((2, 2), c), np.full(2, c), np.full(2, c), c
        losses, acc = plain_train(W1, b1, W2, b2, X, y, 1.0, epochs)
        assert v[f"accuracy_{label}"] == acc
        assert v[f"final_loss_{label}"] == pytest.approx(losses[-1], rel=1e-9)


def test_deterministic_and_fast():
    problem = load("weight-init")
    problem.solve({"epochs": 10})   # the graph is derived once
    t = time.perf_counter()
    a = problem.solve()
    elapsed = time.perf_counter() - t
    b = problem.solve()
    assert json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)
    assert elapsed < 2.0
    assert all(c["passed"] for c in a.checks)


@pytest.mark.parametrize("values", [{"epochs": 0}, {"lr": -1}, {"n_samples": 10**6}, {"random_runs": 9},
                                    {"seed": 1}])
def test_bad_values_are_refused(values):
    with pytest.raises(SpecError):
        load("weight-init").solve(values)
