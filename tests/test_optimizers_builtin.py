"""The `optimizers` built-in (seed 004 Q1), against independent computations."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from derive.typeset import blocks as B
from derive.cli import main
from derive.problems import load

_spec = importlib.util.spec_from_file_location("ref_optim", Path(__file__).with_name("test_optim.py"))
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

NAMES = ["w1", "w2", "w3", "w4", "w5", "w6", "b1", "b2", "b3"]
START = np.array([0.1, 0.2, -0.2, -0.1, 0.5, 0.3, 0.0, 0.0, 0.0])


def net_grads(w, x1, x2, y):
    """The exam network's loss and gradient, by hand in numpy."""
    w1, w2, w3, w4, w5, w6, b1, b2, b3 = w
    z1, z2 = w1 * x1 + w2 * x2 + b1, w3 * x1 + w4 * x2 + b2
    a1, a2 = max(z1, 0.0), max(z2, 0.0)
    d_o = w5 * a1 + w6 * a2 + b3 - y
    d1, d2 = d_o * w5 * (z1 > 0), d_o * w6 * (z2 > 0)
    return np.array([d1 * x1, d1 * x2, d2 * x1, d2 * x2, d_o * a1, d_o * a2, d1, d2, d_o]), 0.5 * d_o**2


@pytest.fixture(scope="module")
def sol():
    return load("optimizers").solve()


def test_listed_with_seed_order():
    p = load("optimizers")
    assert (p.id, p.source, p.order) == ("optimizers", "seed 004, Q1", (4, 1))


def test_json_ready_and_deterministic(sol):
    a = json.dumps(sol.to_json(), sort_keys=True)
    b = json.dumps(load("optimizers").solve().to_json(), sort_keys=True)
    assert a == b
    assert all(c["passed"] for c in sol.checks)


def test_sgd_one_sample(sol):
    g, _ = net_grads(START, 1, 1, 0.5)
    np.testing.assert_allclose([sol.values["sgd"]["updates"][n] for n in NAMES], START - 0.5 * g, rtol=1e-14)


def test_batch_sum_and_mean(sol):
    b = sol.values["batch"]
    per = [net_grads(START, s["x1"], s["x2"], s["y"])[0] for s in b["samples"]]
    total = np.sum(per, axis=0)
    m = len(per)
    assert m == b["m"] == 3
    np.testing.assert_allclose([b["sum_gradients"][n] for n in NAMES], total, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose([b["mean_gradients"][n] for n in NAMES], total / m, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose([b["updates_sum"][n] for n in NAMES], START - b["lr"] * total, rtol=1e-14, atol=1e-16)
    # the summed step is the mean step with m times the rate
    np.testing.assert_allclose([b["updates_sum"][n] for n in NAMES],
                               START - (m * b["lr"]) * (total / m), rtol=1e-14, atol=1e-16)


def _momentum_a(gs, etas, rho):
    w, v, out = 0.0, 0.0, []
    for g, eta in zip(gs, etas):
        v = rho * v + g
        w = w - eta * v
        out.append(w)
    return out


def _momentum_b(gs, etas, rho):
    w, v, out = 0.0, 0.0, []
    for g, eta in zip(gs, etas):
        v = rho * v - eta * g
        w = w + v
        out.append(w)
    return out


def test_momentum_forms(sol):
    f = sol.values["momentum_forms"]
    assert f["constant_lr_difference"] == "0"
    assert f["quadratic_constant_lr_difference"] == ["0", "0", "0"]
    assert f["varying_lr_difference"][0] == "0"
    # numerically, with plain floats: equal for a constant rate, not for a changing one
    rng = np.random.default_rng(0)
    gs = rng.normal(size=3)
    np.testing.assert_allclose(_momentum_a(gs, [0.1] * 3, 0.9), _momentum_b(gs, [0.1] * 3, 0.9), rtol=1e-14)
    a, b = _momentum_a(gs, [0.1, 0.05, 0.02], 0.9), _momentum_b(gs, [0.1, 0.05, 0.02], 0.9)
    assert a[0] == b[0] and abs(a[1] - b[1]) > 1e-6
    # the printed step-2 difference, evaluated, is the numeric one
    import sympy
    expr = sympy.sympify(f["varying_lr_difference"][1])
    subs = {"g1": gs[0], "g2": gs[1], "eta1": 0.1, "eta2": 0.05, "rho": 0.9}
    assert float(expr.subs({sympy.Symbol(k): v for k, v in subs.items()})) == pytest.approx(a[1] - b[1], rel=1e-12)


def test_nesterov_forms(sol):
    f = sol.values["nesterov_forms"]
    assert f["torch_minus_lookahead"] == "0"
    assert f["published_minus_standard"][0] == "0"
    assert f["published_minus_standard_factor"] == "eta - rho"
    assert all(r["max_abs_p_minus_lookahead"] < 1e-20 < r["max_abs_p_minus_theta"] for r in f["network"])

    # independent floats on the exam network: torch's nesterov (reference) vs the lookahead form
    lr, rho = 0.1, 0.9
    torch_ref = ref.RefSGD(lr=lr, momentum=rho, nesterov=True)
    p, theta, v = START.copy(), START.copy(), np.zeros(9)
    for _ in range(3):
        g, _ = net_grads(theta + rho * v, 1, 1, 0.5)
        v = rho * v - lr * g
        theta = theta + v
        p = torch_ref.step(p, net_grads(p, 1, 1, 0.5)[0])
        np.testing.assert_allclose(p, theta + rho * v, rtol=1e-13, atol=1e-15)
    # the published lookahead (theta + lr v) is a different trajectory when lr != rho
    theta_pub, v_pub = START.copy(), np.zeros(9)
    for _ in range(2):
        g, _ = net_grads(theta_pub + lr * v_pub, 1, 1, 0.5)
        v_pub = rho * v_pub - lr * g
        theta_pub = theta_pub + v_pub
    theta, v = START.copy(), np.zeros(9)
    for _ in range(2):
        g, _ = net_grads(theta + rho * v, 1, 1, 0.5)
        v = rho * v - lr * g
        theta = theta + v
    assert np.max(np.abs(theta_pub - theta)) > 1e-4


@pytest.mark.parametrize("rule", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_comparison_against_reference(sol, rule):
    c = sol.values["comparison"]
    run = c["rules"][rule]
    opt = ref.reference(rule, _hyper(rule, c["lr"]))
    w, losses, params = START.copy(), [], [START.copy()]
    for _ in range(c["steps"]):
        g, loss = net_grads(w, 1, 1, 0.5)
        losses.append(loss)
        w = opt.step(w, g)
        params.append(w.copy())
    losses.append(net_grads(w, 1, 1, 0.5)[1])
    np.testing.assert_allclose(run["loss"], losses, rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose([[tp[n] for n in NAMES] for tp in run["params"]], params, rtol=1e-12, atol=1e-15)


def _hyper(rule, lr):
    from derive.engine.optim import Optimizer

    return Optimizer.from_spec({"rule": rule, "lr": str(lr)}).hyper


def test_plot_and_blocks(sol):
    figs = [b for b in sol.blocks() if isinstance(b, B.Figure)]
    assert len(figs) == 1 and figs[0].kind == "plot"
    series = figs[0].data["series"]
    assert [s["label"] for s in series] == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]
    for s in series:
        assert s["x"] == list(range(6)) and s["y"] == sol.values["comparison"]["rules"][s["label"]]["loss"]


def test_steps_and_values_options(capsys):
    sol = load("optimizers").solve({"lr": "0.05"}, steps=3)
    assert sol.values["comparison"]["steps"] == 3 and sol.values["comparison"]["lr"] == 0.05
    assert main(["solve", "optimizers", "--set", "lr=-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("derive: error: ") and err.count("\n") == 1 and "lr" in err
