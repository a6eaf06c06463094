"""Errata that need formula- and rule-valued answers: seed 004 Q1(c), Q1(d)
(update rules) and seed 003 2.c (the interpolation rule of mAP).

Each finding is pinned against an independent computation written here in
plain Python (no derive code): the algorithms are run step by step on
numbers, and the AP under each rule is computed with fractions."""
from __future__ import annotations

import csv
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import sympy

from derive.grading.answers import Batch, read_answers
from derive.grading.verdicts import Formula, check, check_batch
from derive.document.errata import findings
from derive.engine.parse import parse_expr_safe
from derive.problems import load

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "examples" / "seed-answers"


@pytest.fixture(scope="module")
def optimizers():
    return load("optimizers").solve()


@pytest.fixture(scope="module")
def q1(optimizers):
    return {i["name"]: i for i in check(optimizers, read_answers(SEEDS / "seed004-q1.yaml"))["items"]}


def found(seed, quantity):
    hits = [f for f in findings() if f["seed"] == seed and f["quantity"] == quantity]
    assert len(hits) == 1, hits
    return hits[0]


def value_of(text: str, **numbers) -> float:
    """A formula string of a finding, evaluated at the test's own numbers."""
    names = {k: sympy.Symbol(k, real=True) for k in numbers}
    expr = parse_expr_safe(text, names)
    return float(expr.xreplace({names[k]: v for k, v in numbers.items()}))


# -- plain-Python optimisers on L(w) = a (w - c)^2 / 2 ---------------------------

A, C, W0 = 1.7, 0.4, 2.0


def grad(w):
    return A * (w - C)


def nesterov_torch(lr, rho, steps):
    """torch.optim.SGD(nesterov=True) as its documentation writes it."""
    p, buf, out = W0, None, []
    for _ in range(steps):
        g = grad(p)
        buf = g if buf is None else rho * buf + g
        p = p - lr * (g + rho * buf)
        out.append(p)
    return out


def nesterov_lookahead(lr, rho, coeff, steps):
    """theta, v with the gradient taken at theta + coeff * v."""
    theta, v, out = W0, 0.0, []
    for _ in range(steps):
        v = rho * v - lr * grad(theta + coeff * v)
        theta = theta + v
        out.append((theta, v))
    return out


def test_nesterov_lookahead_is_theta_plus_rho_v_independently():
    lr, rho = 0.1, 0.9
    torch_p = nesterov_torch(lr, rho, 4)
    right = nesterov_lookahead(lr, rho, rho, 4)
    published = nesterov_lookahead(lr, rho, lr, 4)
    # torch's iterate is the lookahead point theta + rho v of the rho form ...
    assert all(abs(p - (th + rho * v)) < 1e-12 for p, (th, v) in zip(torch_p, right))
    # ... and the published (eta) form is another algorithm unless eta = rho
    # (the same first step, as v_0 = 0)
    assert published[0] == right[0] and abs(published[1][0] - right[1][0]) > 1e-4


def test_nesterov_published_lookahead_is_an_erratum(q1):
    item = q1["nesterov_lookahead"]
    assert item["given"] == "theta_t + eta*v_t" and item["verdict"] == "incorrect"
    assert "only when eta = rho" in item["message"]
    f = found("004", "nesterov_lookahead")
    assert f["question"] == "Q1(d)" and f["written"] == "theta_t + eta*v_t"
    # the right form, evaluated at the test's numbers, is theta + rho v
    assert value_of(f["right"], theta=0.7, v=-0.3, rho=0.9) == pytest.approx(0.7 + 0.9 * -0.3)
    assert "only when eta = rho" in f["why"]


@pytest.mark.parametrize("text,verdict", [
    ("theta + rho*v", "correct"), ("v*rho + theta", "correct"), (r"$\theta_t + \rho v_t$", "correct"),
    ("x_t + momentum*v_t", "correct"), ("rho*(v + theta/rho)", "equivalent"),
    ("theta + eta*v", "incorrect"), ("theta", "incorrect"), ("theta + nu*v", "unparseable")])
def test_nesterov_lookahead_answers(optimizers, text, verdict):
    item = check(optimizers, {"nesterov_lookahead": text})["items"][0]
    assert item["verdict"] == verdict, item


def momentum_two_steps(g1, g2, eta1, eta2, rho):
    """w_2 of form A (torch: buf = rho buf + g, w -= lr buf) minus form B
    (v = rho v - lr g, w += v), from the same w_0 with gradients g1, g2."""
    wa, buf = W0, 0.0
    wb, v = W0, 0.0
    for g, eta in ((g1, eta1), (g2, eta2)):
        buf = rho * buf + g
        wa -= eta * buf
        v = rho * v - eta * g
        wb += v
    return wa - wb


def test_momentum_forms_differ_for_changing_rates_independently():
    assert momentum_two_steps(0.3, -1.1, 0.5, 0.5, 0.9) == pytest.approx(0, abs=1e-15)
    assert abs(momentum_two_steps(0.3, -1.1, 0.5, 0.2, 0.9)) > 0.05
    f = found("004", "momentum_a_minus_b")
    assert f["written"] == "0" and f["verdict"] == "incorrect" and f["question"] == "Q1(c)"
    for nums in ((0.3, -1.1, 0.5, 0.2, 0.9), (-2.0, 0.7, 0.01, 0.3, 0.5)):
        g1, g2, eta1, eta2, rho = nums
        assert value_of(f["right"], g1=g1, g2=g2, eta1=eta1, eta2=eta2, rho=rho) == pytest.approx(
            momentum_two_steps(*nums), rel=1e-12)
    assert "only when eta1 = eta2" in f["why"]


def test_momentum_velocity_with_the_gradient_of_f(q1, optimizers):
    # On the exam network (seed 004 Q2) the gradient of the output o1 with
    # respect to w5 is a1, the loss's is (o1 - y) a1: equal only if o1 - y = 1.
    z1 = 0.1 * 1 + 0.2 * 1
    a1 = max(z1, 0.0)
    o1 = 0.5 * a1 + 0.3 * max(-0.2 - 0.1, 0.0)
    dl_df = o1 - 0.5
    assert dl_df != 1 and abs(dl_df * a1 - a1) > 0.1
    item = q1["momentum_velocity_a"]
    assert item["verdict"] == "incorrect" and "only when dL_df = 1" in item["message"]
    f = found("004", "momentum_velocity_a")
    assert f["written"] == "rho*v_t + grad_f" and f["question"] == "Q1(c)"
    assert value_of(f["right"], g=dl_df * a1, rho=0.9, v=0.2) == pytest.approx(0.9 * 0.2 + dl_df * a1)
    # the chain rule written out is the same rule
    again = check(optimizers, {"momentum_velocity_a": "rho*v + dL_df*grad_f", "momentum_param_a": "w - lr*v_next"})
    assert [i["verdict"] for i in again["items"]] == ["equivalent", "correct"]


def test_seed004_q1_other_rules_are_right(q1):
    right = {"sgd_update", "momentum_param_a", "momentum_velocity_b", "momentum_param_b", "nesterov_velocity",
             "nesterov_param"}
    assert {n for n, i in q1.items() if i["verdict"] == "correct"} == right
    assert {f["quantity"] for f in findings() if f["seed"] == "004" and f["question"].startswith("Q1")} == {
        "momentum_velocity_a", "momentum_a_minus_b", "nesterov_lookahead"}


def test_check_command_on_seed004_q1():
    run = subprocess.run([sys.executable, "-m", "derive", "check", "optimizers", str(SEEDS / "seed004-q1.yaml")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1, run.stderr
    line = next(x for x in run.stdout.splitlines() if x.strip().startswith("nesterov_lookahead"))
    assert "incorrect" in line and "only when eta = rho" in line


def test_formula_answers_in_a_class_csv(optimizers, tmp_path):
    path = tmp_path / "class.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "nesterov_lookahead", "momentum_a_minus_b"])
        w.writerow(["s1", "theta + rho*v", "rho*g1*(eta1 - eta2)"])
        w.writerow(["s2", "theta + eta*v", "0"])
    res = check_batch(optimizers, read_answers(path))
    assert isinstance(read_answers(path), Batch)
    assert [[i["verdict"] for i in r["items"]] for r in res["rows"]] == [["correct", "correct"],
                                                                         ["incorrect", "incorrect"]]
    assert res["questions"]["nesterov_lookahead"]["share_correct"] == 0.5


def test_formula_difference_solved_for_the_simplest_symbol():
    x, y = sympy.Symbol("x", real=True), sympy.Symbol("y", real=True)
    f = Formula(x * y, {"x": x, "y": y})
    verdict, msg = f.judge("x*y**2")           # minus x*y: x*y*(y - 1)
    assert verdict == "incorrect" and "only when y = 1 (or x = 0 or y = 0)" in msg
    assert f.judge("y*x")[0] == "correct" and f.judge("x*y + 1")[1].startswith("never equal")


# -- seed 003 2.c: the interpolation rule ------------------------------------------

RANKING = [True, True, False, False, False, True, True, False, False, True]   # seed 000 Q3
POSITIVES = 5


def ap11_fractions(strict: bool) -> Fraction:
    tp, prec, rec = 0, [], []
    for k, hit in enumerate(RANKING, start=1):
        tp += hit
        prec.append(Fraction(tp, k))
        rec.append(Fraction(tp, POSITIVES))
    total = Fraction(0)
    for level in (Fraction(k, 10) for k in range(11)):
        ok = [p for p, r in zip(prec, rec) if (r > level if strict else r >= level)]
        total += max(ok, default=Fraction(0))
    return total / 11


def test_seed003_strict_rule_is_an_erratum():
    right, strict = ap11_fractions(False), ap11_fractions(True)
    assert right != strict
    f = found("003", "p_interp_rule")
    assert f["question"] == "2.c" and f["verdict"] == "incorrect"
    assert f["written"] == "max{r' > r} p(r')"
    assert "r' >= r" in f["right"] and f"{right.numerator}/{right.denominator}" in f["right"]
    assert "seed 000" in f["right"]
    assert f"AP11 = {strict.numerator}/{strict.denominator}" in f["why"]
    assert "at r = 1 no recall r' > r exists" in f["why"]


@pytest.mark.parametrize("text,verdict", [
    ("max{r' >= r} p(r')", "correct"), (r"\max_{\tilde r \ge r} p(\tilde r)", "correct"),
    ("max over r <= r' of p(r')", "correct"), ("max_{r' ≥ r} p(r')", "correct"),
    ("max{r' > r} p(r')", "incorrect"), ("max over r < r'", "incorrect"), ("max{r' <= r} p(r')", "incorrect"),
    ("the best precision", "unparseable")])
def test_interpolation_rules(text, verdict):
    sol = load("interpolated-ap").solve()
    item = check(sol, {"p_interp_rule": text})["items"][0]
    assert item["verdict"] == verdict, item


def test_rule_on_another_ranking_is_computed_for_it():
    sol = load("interpolated-ap").solve({"ranking": [1, 0, 1], "n_positives": 2})
    item = check(sol, {"p_interp_rule": "max{r' > r} p(r')"})["items"][0]
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1: levels 0..0.4 give 1 under
    # both rules; 0.5 gives 1 (>=) or 2/3 (>); 0.6..0.9 give 2/3; 1 gives 2/3 or 0
    right = (Fraction(6) + 5 * Fraction(2, 3)) / 11
    strict = (Fraction(5) + 5 * Fraction(2, 3)) / 11
    assert f"{right.numerator}/{right.denominator} on this ranking" in item["expected"]
    assert f"AP11 = {strict.numerator}/{strict.denominator}" in item["message"]


def test_errata_render_in_the_key():
    from derive.document.key import key_document

    tex = key_document([])
    start = tex.index("Errata of the published solutions")
    errata = tex[start:]
    # each with its severity and the published and right forms typeset
    assert r"\tilde\theta = \theta_t + \eta v_t" in errata and r"\theta_{t} + \rho v_{t}" in errata
    assert r"\max_{r' > r} p(r')" in errata and r"\max_{r' \ge r} p(r')" in errata
    assert "wrong formula" in errata and "notation" in errata
    assert "Seed 003, 2.c" in errata and "Seed 004, Q1(d)" in errata


def test_hostile_formula_answers_are_bounded(optimizers):
    import time

    for text in ("(theta + v + rho + eta)**64", "*".join(["(theta + v)"] * 60)):
        t0 = time.perf_counter()
        item = check(optimizers, {"nesterov_lookahead": text})["items"][0]
        assert item["verdict"] == "incorrect" and time.perf_counter() - t0 < 5
        assert "not the same function" in item["message"]
