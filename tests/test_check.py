"""derive check: verdicts, carried-forward, rounding, formulas, diagnoses,
the class CSV, the CLI, and the seeds' own answers (errata).

Expected numbers come from plain Python written here (the MLP of seed 004
computed by hand-coded forward/backward passes), never from the seeds."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from derive.grading.answers import Batch, read_answers_text, read_batch_text
from derive.grading.verdicts import ACCEPTED, Policy, check, check_batch, exit_code
from derive.problems import load

ROOT = Path(__file__).resolve().parent.parent


def relu_net(w1=0.1, w2=0.2, w3=-0.2, w4=-0.1, w5=0.5, w6=0.3, b1=0.0, b2=0.0, b3=0.0,
             x1=1.0, x2=1.0, y=0.5, lr=0.5, do1=None):
    """Seed 004's network, forward and backward, in plain Python."""
    z1 = w1 * x1 + w2 * x2 + b1
    a1 = max(z1, 0.0)
    z2 = w3 * x1 + w4 * x2 + b2
    a2 = max(z2, 0.0)
    o1 = w5 * a1 + w6 * a2 + b3
    L = (y - o1) ** 2 / 2
    do1 = (o1 - y) if do1 is None else do1
    da1, da2 = do1 * w5, do1 * w6
    dz1 = da1 * (1.0 if z1 > 0 else 0.0)
    dz2 = da2 * (1.0 if z2 > 0 else 0.0)
    g = {"w1": dz1 * x1, "w2": dz1 * x2, "w3": dz2 * x1, "w4": dz2 * x2, "w5": do1 * a1, "w6": do1 * a2,
         "b1": dz1, "b2": dz2, "b3": do1}
    start = {"w1": w1, "w2": w2, "w3": w3, "w4": w4, "w5": w5, "w6": w6, "b1": b1, "b2": b2, "b3": b3}
    new = {p: start[p] - lr * g[p] for p in g}
    return {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "o1": o1, "L": L, "do1": do1, "da1": da1, "dz1": dz1,
            "g": g, "new": new}


@pytest.fixture(scope="module")
def relu_sol():
    return load("mlp-relu-regression").solve()


@pytest.fixture(scope="module")
def tanh_sol():
    return load("mlp-tanh-sigmoid").solve()


def verdicts(result):
    return {i["name"]: i["verdict"] for i in result["items"]}


def item(result, name):
    return next(i for i in result["items"] if i["name"] == name)


# -- numbers ---------------------------------------------------------------

def test_right_answers_are_correct_and_exit_0(relu_sol):
    ref = relu_net()
    answers = {"z1": ref["z1"], "a1": ref["a1"], "o1": ref["o1"], "loss": ref["L"],
               "dL/do1": ref["do1"], "dL/dz1": ref["dz1"]}
    answers.update({f"dL/d{p}": v for p, v in ref["g"].items()})
    answers.update({p: v for p, v in ref["new"].items()})
    res = check(relu_sol, answers)
    assert set(verdicts(res).values()) == {"correct"}
    assert res["summary"]["correct"] == len(answers)
    assert exit_code(res) == 0
    for it in res["items"]:
        assert isinstance(it["expected"], float)


def test_aliases_for_names(relu_sol):
    ref = relu_net()
    res = check(relu_sol, {"w1_new": ref["new"]["w1"], "w1+": ref["new"]["w1"], "dE/dw_1": ref["g"]["w1"],
                           "$w_5$": ref["new"]["w5"], r"\frac{\partial L}{\partial w_6}": ref["g"]["w6"]})
    assert set(verdicts(res).values()) == {"correct"}


def test_wrong_value_is_incorrect_with_expected_from_plain_python(relu_sol):
    ref = relu_net()
    res = check(relu_sol, {"w3": 0.5})
    it = item(res, "w3")
    assert it["verdict"] == "incorrect"
    assert it["expected"] == pytest.approx(ref["new"]["w3"])
    assert exit_code(res) == 1


def test_tolerances_are_settable(relu_sol):
    ref = relu_net()
    near = ref["new"]["w1"] * (1 + 1e-4)
    assert verdicts(check(relu_sol, {"w1": repr(near)}))["w1"] == "incorrect"
    assert verdicts(check(relu_sol, {"w1": repr(near)}, rtol=1e-3))["w1"] == "correct"
    # near zero the tolerance is absolute
    assert verdicts(check(relu_sol, {"dL/dw3": "1e-12"}))["dL/dw3"] == "correct"
    assert verdicts(check(relu_sol, {"dL/dw3": "1e-5"}))["dL/dw3"] == "incorrect"
    assert verdicts(check(relu_sol, {"dL/dw3": "1e-5"}, atol=1e-4))["dL/dw3"] == "correct"


def test_rounding_to_shown_digits(relu_sol, tanh_sol):
    res = check(relu_sol, {"L": "0.0613", "o1": "0.2"})
    assert verdicts(res) == {"L": "rounding", "o1": "incorrect"}
    z1 = 0.2 * 0.5 + (-0.3) * (-1)
    res = check(tanh_sol, {"h1": f"{math.tanh(z1):.3f}"})
    assert verdicts(res)["h1"] == "rounding"


def tanh_net(round_to=None, x1=0.5, x2=-1.0):
    """Seed 002's tanh/sigmoid net at derive's documented point, in plain
    Python; with round_to, every shown intermediate is rounded as a student
    carrying 3 decimals would."""
    r = (lambda v: round(v, round_to)) if round_to else (lambda v: v)
    y = 1.0
    w = {"w1_11": 0.2, "w1_12": -0.3, "w1_21": 0.4, "w1_22": 0.1, "w2_11": 0.6, "w2_12": -0.5}
    z1 = r(w["w1_11"] * x1 + w["w1_12"] * x2)
    z2 = r(w["w1_21"] * x1 + w["w1_22"] * x2)
    h1, h2 = r(math.tanh(z1)), r(math.tanh(z2))
    u = r(w["w2_11"] * h1 + w["w2_12"] * h2)
    o = r(1 / (1 + math.exp(-u)))
    do = r(o - y)
    du = r(do * o * (1 - o))
    dw2_11 = r(du * h1)
    return {"z1": z1, "z2": z2, "h1": h1, "h2": h2, "u": u, "o": o, "dL/do": do, "dL/du": du,
            "dL/dw2_11": dw2_11, "w2_11": r(w["w2_11"] - 0.5 * dw2_11)}


def test_rounded_intermediates_carried_are_rounding_not_wrong():
    sol = load("mlp-tanh-sigmoid").solve({"x1": "0.37", "x2": "-0.81"})
    exact = tanh_net(x1=0.37, x2=-0.81)
    mine = tanh_net(round_to=2, x1=0.37, x2=-0.81)
    answers = {k: f"{v:.2f}" for k, v in mine.items()}
    # the question asked for 2 decimals: z2 = 0.07 shows one significant figure
    # only, which the default policy (--min-sig 2) would not accept
    assert verdicts(check(sol, answers))["z2"] == "incorrect"
    res = check(sol, answers, policy=Policy(decimals=2))
    v = verdicts(res)
    assert all(x in ACCEPTED for x in v.values()), res["items"]
    # at least one answer differs from the exact value rounded: it is
    # accepted only because the rounded intermediates were carried
    assert any(abs(round(exact[k], 2) - mine[k]) > 1e-12 for k in mine)


def test_key_printed_rounded_intermediate_is_rounding(relu_sol, tanh_sol):
    # o computed with u rounded to 2 decimals, as a key printing 2 decimals would show it
    exact = tanh_net()
    o_from_rounded = 1 / (1 + math.exp(-round(exact["u"], 2)))
    assert abs(round(o_from_rounded, 5) - round(exact["o"], 5)) > 1e-6
    res = check(tanh_sol, {"o": f"{o_from_rounded:.5f}"})
    assert verdicts(res)["o"] == "rounding"


# -- carried forward ---------------------------------------------------------

def test_error_carried_forward_names_the_earlier_answer(relu_sol):
    wrong_do1 = 0.35
    ref = relu_net(do1=wrong_do1)
    res = check(relu_sol, {"dL/do1": wrong_do1, "dL/dw5": ref["g"]["w5"], "w5": ref["new"]["w5"],
                           "dL/dw1": ref["g"]["w1"], "w1": 0.9})
    v = verdicts(res)
    assert v["dL/do1"] == "incorrect"
    assert v["dL/dw5"] == "carried-forward" and "dL/do1" in item(res, "dL/dw5")["message"]
    assert v["w5"] == "carried-forward" and "dL/dw5" in item(res, "w5")["message"]
    # dL/dw1 goes through dL/da1 and dL/dz1, which were not given
    assert v["dL/dw1"] == "carried-forward" and "dL/do1" in item(res, "dL/dw1")["message"]
    assert v["w1"] == "incorrect"
    assert exit_code(res) == 1


def test_forward_error_carried_forward(relu_sol):
    z1 = 0.5  # wrong
    o1 = 0.5 * z1
    res = check(relu_sol, {"z1": z1, "a1": z1, "o1": o1, "L": (0.5 - o1) ** 2 / 2})
    assert verdicts(res) == {"z1": "incorrect", "a1": "carried-forward", "o1": "carried-forward",
                             "L": "carried-forward"}


# -- diagnoses ---------------------------------------------------------------

def test_diagnoses(relu_sol):
    ref = relu_net()
    def msg(name, value):
        return item(check(relu_sol, {name: value}), name)["message"]
    assert "sign error" in msg("dL/dw5", -ref["g"]["w5"])
    # dL/da1 = (o1 - y) * w5 with w5 = 0.5: twice the value is the missing factor w5, named as such
    assert "factor w5" in msg("dL/da1", 2 * ref["da1"])
    assert "twice" in msg("dL/do1", 2 * ref["do1"])
    assert "half" in msg("dL/da1", ref["da1"] / 2)
    assert "learning rate is missing" in msg("w1", 0.1 - ref["g"]["w1"])
    assert "with the gradient instead of against it" in msg("w5", 0.5 + 0.5 * ref["g"]["w5"])
    assert "value of w2 after the update" in msg("w3", ref["new"]["w2"])
    assert "value of w3 after the update" in msg("w2", ref["new"]["w3"])
    # the learning rate is checked against the answerer's own gradient
    res = check(relu_sol, {"dL/dw5": -0.2, "w5": 0.5 + 0.2})
    assert "learning rate is missing" in item(res, "w5")["message"]


def test_activation_derivative_at_wrong_point(tanh_sol):
    # dL/du with sigmoid'(o) instead of sigmoid'(u): o*(1-o) -> s(o)*(1-s(o))
    e = tanh_net()
    s = 1 / (1 + math.exp(-e["o"]))
    wrong = e["dL/do"] * s * (1 - s)
    res = check(tanh_sol, {"dL/du": wrong})
    it = item(res, "dL/du")
    assert it["verdict"] == "incorrect"
    assert "derivative of o" in it["message"] and "output" in it["message"]
    # with u in place of o in o*(1-o)
    res = check(tanh_sol, {"dL/du": e["dL/do"] * e["u"] * (1 - e["u"])})
    assert "input in place of its output" in item(res, "dL/du")["message"]


def test_unknown_and_unparseable(relu_sol):
    res = check(relu_sol, {"w9": 1, "dL/dz3": 1, "w1": "import os", "w2": "x1 +* 2", "o1": "$\\partial o$"})
    v = verdicts(res)
    assert v["w9"] == v["dL/dz3"] == "unknown-name"
    assert v["w1"] == v["w2"] == v["o1"] == "unparseable"
    assert "did you mean" in item(res, "dL/dz3")["message"]


# -- formulas ------------------------------------------------------------------

def test_formulas(relu_sol):
    res = check(relu_sol, {
        "dL/dw5": "(o1 - y)*a1",                         # the key's form
        "dL/dw6": "a2*o1 - a2*y",                        # same, expanded: equivalent
        "dL/db3": "b3 + w5*a1 + w6*a2 - y",              # in forward names and givens
        "o1": "w5*a1 + w6*a2 + b3",
        "dL/da1": r"$-0.35 \cdot w_5$",                  # LaTeX, upstream value as a number
        "dL/dw1": "(o1 - y)*w5*x1",                      # relu' missing: right number here only
        "dL/dw2": "(o1 - y)*w6*x2*step(z2)",             # wrong formula, wrong number
    })
    v = verdicts(res)
    assert v["dL/dw5"] == "correct"
    assert v["dL/dw6"] == "equivalent"
    assert v["dL/db3"] == "equivalent"
    assert v["o1"] == "correct"
    assert v["dL/da1"] == "correct"
    assert v["dL/dw1"] == "incorrect"
    msg = item(res, "dL/dw1")["message"]
    assert "step" in msg and "right number at the problem's point" in msg
    assert v["dL/dw2"] == "incorrect"


def test_formula_equal_only_at_the_point_is_incorrect(tanh_sol):
    # h1 = tanh(z1); 'z1 - z1**3/3' is not tanh, but close at small z1
    res = check(tanh_sol, {"h1": "(exp(2*z1) - 1)/(exp(2*z1) + 1)", "h2": "z2 - z2**3/3",
                           "u": "w2_11*tanh(w1_11*x1 + w1_12*x2) + w2_12*h2"})
    assert verdicts(res) == {"h1": "equivalent", "h2": "incorrect", "u": "equivalent"}


# -- reading answers -----------------------------------------------------------

def test_yaml_keeps_digits_as_written():
    got = read_answers_text("w1: 0.570\nw2: .5\nw3: '1/3'\nw4:\n", "a.yaml")
    assert got == {"w1": "0.570", "w2": ".5", "w3": "1/3"}
    got = read_answers_text('{"w1": 0.570, "W": [[1, 2.50]]}', "a.json")
    assert got == {"w1": "0.570", "W": [["1", "2.50"]]}


def test_csv_batch_matches_single_checks(relu_sol):
    ref = relu_net()
    text = ("id,z1,dL/do1,dL/dw5,w5\n"
            f"ann,{ref['z1']},{ref['do1']},{ref['g']['w5']},{ref['new']['w5']}\n"
            f"bob,0.3,0.35,0.105,0.4475\n"
            f"cy,0.30,-0.35,,0.6\n")
    batch = read_batch_text(text)
    out = check_batch(relu_sol, batch)
    assert [r["id"] for r in out["rows"]] == ["ann", "bob", "cy"]
    for row, answers in zip(out["rows"], batch.rows):
        assert row["items"] == check(relu_sol, answers)["items"]
    q = out["questions"]["dL/do1"]
    assert q["answered"] == 3 and q["share_correct"] == pytest.approx(2 / 3, abs=1e-4)
    assert q["common_wrong"][0]["given"] == "0.35" and "sign" in q["common_wrong"][0]["message"]
    assert out["questions"]["dL/dw5"]["answered"] == 2
    assert exit_code(out) == 1


# -- the CLI -------------------------------------------------------------------

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "derive", "check", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_cli_json_text_and_exit_codes(tmp_path):
    ref = relu_net()
    good = tmp_path / "good.yaml"
    good.write_text(f"w1: {ref['new']['w1']}\ndL/dw5: {ref['g']['w5']}\n")
    r = run_cli("mlp-relu-regression", str(good), "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["target"] == "mlp-relu-regression"
    assert set(data["items"][0]) >= {"name", "given", "expected", "verdict", "message"}
    assert data["summary"]["correct"] == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("w1: 0.5\n")
    r = run_cli("mlp-relu-regression", str(bad))
    assert r.returncode == 1 and "incorrect" in r.stdout and "\x1b[" not in r.stdout
    r = run_cli("mlp-relu-regression", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and r.stderr.startswith("derive: error:") and "Traceback" not in r.stderr
    dup = tmp_path / "dup.yaml"
    dup.write_text("w1: 1\nw1: 2\n")
    r = run_cli("mlp-relu-regression", str(dup))
    assert r.returncode == 2 and "twice" in r.stderr
    r = run_cli("mlp-relu-regression", str(good), "--rtol", "-1")
    assert r.returncode == 2


def test_cli_values_file_and_csv(tmp_path):
    ref = relu_net(w1=0.3)
    values = tmp_path / "v.yaml"
    values.write_text("w1: 0.3\n")
    ans = tmp_path / "a.yaml"
    ans.write_text(f"w1: {ref['new']['w1']}\nz1: {ref['z1']}\n")
    r = run_cli("mlp-relu-regression", str(ans), "--values", str(values), "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    csv = tmp_path / "class.csv"
    csv.write_text("id,w1,z1\na,0.1875,0.3\nb,0.5,0.3\n")
    r = run_cli("mlp-relu-regression", str(csv), "--format", "json")
    data = json.loads(r.stdout)
    assert r.returncode == 1 and [row["id"] for row in data["rows"]] == ["a", "b"]
    r = run_cli("mlp-relu-regression", str(csv))
    assert "Per question" in r.stdout and "Per student" in r.stdout
