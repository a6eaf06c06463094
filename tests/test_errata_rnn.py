"""Errata of seed 001 Q1-Q2 (the time-unrolled RNN, vanishing gradients) and
seed 003 1.b (the LSTM block), found by `derive check` on the transcribed
answers in examples/seed-answers/.

Every number a finding states is recomputed here with plain numpy from the
problem's givens (BPTT written out step by step, the sigmoid's derivative on
a grid), never copied from the seeds or taken from derive's results."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from derive.grading.answers import Batch, read_answers
from derive.grading.verdicts import check, check_batch
from derive.document.errata import findings
from derive.grading.judges import FormulaError, read_formula, read_path_sum
from derive.problems import load

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "examples" / "seed-answers"


def found(seed, question, quantity, written=""):
    """The one finding for a quantity (of those whose written text starts so:
    Q1(c) answers dE_3/dU twice, as a path sum and as a formula)."""
    hits = [f for f in findings() if (f["seed"], f["question"], f["quantity"]) == (seed, question, quantity)
            and f["written"].startswith(written)]
    assert len(hits) == 1, hits
    return hits[0]


def matrices(text: str) -> list:
    """The [[a, b], [c, d]] matrices a message prints, as numpy arrays."""
    return [np.array(json.loads(m)) for m in re.findall(r"\[\[[^\[\]]*(?:\], \[[^\[\]]*)*\]\]", text)]


# -- an independent RNN: forward pass and BPTT in plain numpy -------------------


@pytest.fixture(scope="module")
def rnn():
    sol = load("rnn-bptt").solve()
    v = sol.to_json()["values"]
    g = {k: np.array(v[k], dtype=float) for k in ("U", "W", "V", "I", "H0", "Y")}
    H, O = [g["H0"]], [None]
    for t in range(1, 4):
        H.append(np.tanh(g["U"] @ g["I"][t - 1] + g["W"] @ H[t - 1]))
        O.append(g["V"] @ H[t])
    g.update(H=H, O=O, sol=sol)
    return g


def step_terms(r, s: int, P: str) -> dict:
    """dE_s/dP split by the step k where the path enters the recurrence:
    {k: the contribution}, from the error of step s alone."""
    err = r["O"][s] - r["Y"][s - 1]
    back = r["V"].T @ err                          # dE_s/dH_s
    out = {}
    for k in range(s, 0, -1):
        delta = back * (1 - r["H"][k] ** 2)        # dE_s/dZ_k along the chain
        out[k] = np.outer(delta, r["H"][k - 1] if P == "W" else r["I"][k - 1])
        back = r["W"].T @ delta
    return out


def step_gradient(r, s: int, P: str) -> np.ndarray:
    if P == "V":
        return np.outer(r["O"][s] - r["Y"][s - 1], r["H"][s])
    return sum(step_terms(r, s, P).values())


def test_independent_bptt_agrees_with_derive(rnn):
    parts = rnn["sol"].to_json()["partial_gradients"]
    for s in (2, 3):
        for P in "WUV":
            assert np.allclose(parts[f"dE_{s}/d{P}"], step_gradient(rnn, s, P), atol=1e-12)


# -- Q1(c): the sum over k stops at 2 ------------------------------------------------


@pytest.mark.parametrize("P", ["W", "U"])
def test_q1c_sum_misses_the_direct_term(rnn, P):
    f = found("001", "Q1(c)", f"dE_3/d{P}", written="\\sum")
    assert f["verdict"] == "incorrect"
    assert f["written"].startswith(r"\sum_{k=0}^2") and r"\prod_{j=k+1}^3" in f["written"]
    assert f["right"].startswith("sum_{k=1..3}")
    assert f"misses the path k = 3: {P} -> H_3 -> O_3 -> E_3" in f["why"]
    assert "the term k = 0 is zero: dH_0/d" + P + " = 0 (H_0 is given)" in f["why"]
    written, right = matrices(f["why"])
    terms = step_terms(rnn, 3, P)
    # the sum as written holds the paths entering at k = 1, 2 (k = 0 adds nothing)
    assert np.allclose(written, terms[1] + terms[2], rtol=1e-5, atol=1e-8)
    assert np.allclose(right, step_gradient(rnn, 3, P), rtol=1e-5, atol=1e-8)
    assert not np.allclose(written, right, rtol=1e-3)


def test_q1c_check_json_lists_the_paths(rnn):
    items = {i["name"]: i for i in check(rnn["sol"], read_answers(SEEDS / "seed001-q1bc-paths.yaml"))["items"]}
    assert items["dE_3/dW"]["paths"]["missing"] == ["k = 3: W -> H_3 -> O_3 -> E_3"]
    assert items["dE_3/dW"]["paths"]["extra"] == []
    # (b): k = 0..2 with the product to 2 has every path of E_2; k = 0 is zero
    assert items["dE_2/dW"]["verdict"] == "equivalent" and items["dE_2/dW"]["paths"]["missing"] == []


def test_q1a_general_forms_are_not_errata(rnn):
    result = check(rnn["sol"], read_answers(SEEDS / "seed001-q1a-paths.yaml"))
    verdicts = {i["name"]: i["verdict"] for i in result["items"]}
    assert verdicts["dE/dW"] == verdicts["dE_3/dV"] == "correct"
    assert verdicts["dE_3/dW"] == verdicts["dE_1/dU"] == "equivalent"
    assert not [f for f in findings() if f["question"] == "Q1(a)"]


# -- Q1(b), Q1(c): (O_t - Ô_t) . H_t written for dE_t/dU ------------------------------------


@pytest.mark.parametrize("s,question", [(2, "Q1(b)"), (3, "Q1(c)")])
def test_q1bc_formula_is_dE_dV(rnn, s, question):
    f = found("001", question, f"dE_{s}/dU", written="(O_")
    assert f["verdict"] == "incorrect"
    assert f["written"] == rf"(O_{s} - \hat{{O}}_{s}) \cdot H_{s}"
    assert f["why"].startswith(f"this is dE_{s}/dV, not dE_{s}/dU")
    outer = np.outer(rnn["O"][s] - rnn["Y"][s - 1], rnn["H"][s])
    assert np.allclose(outer, step_gradient(rnn, s, "V"), atol=1e-12)
    (given,) = matrices(f["why"])
    assert np.allclose(given, outer, rtol=1e-5, atol=1e-8)
    (right,) = matrices(f["right"])
    assert np.allclose(right, step_gradient(rnn, s, "U"), rtol=1e-5, atol=1e-8)


def test_q1a_formulas_for_dV_are_right(rnn):
    result = check(rnn["sol"], read_answers(SEEDS / "seed001-q1a-formulas.yaml"))
    assert [i["verdict"] for i in result["items"]] == ["correct"] * 3


def test_formula_judged_at_other_points_too(rnn):
    # O_2 - Y_2 scaled to hit dE_2/dV's first entry at the problem's point only
    # is not dE_2/dV; the plain outer product is, in either spelling
    sol = rnn["sol"]
    assert check(sol, {"dE_2/dV": "(O_2 - Y_2) * H_2"})["items"][0]["verdict"] == "correct"
    item = check(sol, {"dE_2/dV": "(Y_2 - O_2) * H_2"})["items"][0]
    assert item["verdict"] == "incorrect" and "sign error" in item["message"]
    item = check(sol, {"dE_2/dV": "(O_2 - Y_2) * H_1"})["items"][0]
    assert item["verdict"] == "incorrect"


# -- Q2(a): the sigmoid's derivative is at most 1/4 --------------------------------------


def test_q2a_sigmoid_bound():
    f = found("001", "Q2(a)", "sigmoid_derivative_max")
    assert f["written"] == "1" and f["verdict"] == "incorrect"
    assert f["right"] == "1/4"
    x = np.linspace(-20, 20, 400001)
    s = 1 / (1 + np.exp(-x))
    assert abs(np.max(s * (1 - s)) - 1 / 4) < 1e-12
    # 1 is tanh's bound, which the diagnosis names
    assert abs(np.max(1 - np.tanh(x) ** 2) - 1) < 1e-12
    assert "this is the value of tanh_derivative_max" in f["why"]


def test_derivative_bounds_in_json_and_checked():
    data = load("rnn-bptt").solve().to_json()["vanishing"]
    assert data == {"sigmoid_derivative_max": 0.25, "tanh_derivative_max": 1.0}
    sol = load("rnn-bptt").solve()
    res = check(sol, {"sigmoid_derivative_max": "0.25", "tanh_derivative_max": "1"})
    assert [i["verdict"] for i in res["items"]] == ["correct", "correct"]


# -- seed 003 1.b: the LSTM's missing equations -------------------------------------------


@pytest.mark.parametrize("q,head", [("g", "g = tanh("), ("c", "c = "), ("h", "h = ")])
def test_lstm_missing_equations(q, head):
    f = found("003", "1.b", q)
    assert f["written"] == "not given" and f["verdict"] == "incorrect"
    assert f["right"].startswith(head)
    assert "not given" in f["why"]


def test_lstm_published_gates_are_right():
    sol = load("lstm-cell").solve()
    items = {i["name"]: i for i in check(sol, read_answers(SEEDS / "seed003-1b-lstm.yaml"))["items"]}
    assert [items[q]["verdict"] for q in "ifo"] == ["correct"] * 3
    assert not [f for f in findings() if f["seed"] == "003" and f["quantity"] in ("i", "f", "o")]


def test_lstm_right_forms_evaluate_to_an_independent_cell():
    """derive's forms (the errata's 'right'), read as formulas, give the
    numbers of an LSTM cell written here in numpy."""
    sol = load("lstm-cell").solve()
    v = {k: np.array(x, dtype=float) for k, x in sol.to_json()["values"].items()}
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    stacked = np.concatenate([v["h_prev"], v["x"]])
    i, f, o = (sig(v[f"W_{q}"] @ stacked + v[f"b_{q}"]) for q in "ifo")
    g = np.tanh(v["W_c"] @ stacked + v["b_c"])
    c = f * v["c_prev"] + i * g
    want = {"g": g, "c": c, "h": o * np.tanh(c)}
    tg = sol.model.tg
    subs = {tg.graph.nodes[n].symbol: val for n, val in sol.forward.items()}
    for q in ("g", "c", "h"):
        form = found("003", "1.b", q)["right"].split(" = ", 1)[1]
        t = read_formula(form, tg.tensors, tg.tensors[q].shape)
        got = np.array([float(e.xreplace(subs)) for e in t.exprs])
        assert np.allclose(got, want[q], atol=1e-12)


@pytest.mark.parametrize("text,verdict", [
    (r"\tanh(W_c [h_{t-1}, x_t] + b_c)", "correct"),
    (r"\sigma(W_c [h_{t-1}, x_t] + b_c)", "incorrect"),
    (r"\tanh(W_c [x_t, h_{t-1}] + b_c)", "incorrect"),
    (r"\tanh(W_q [h_{t-1}, x_t] + b_c)", "unparseable"),
])
def test_lstm_candidate_formulas(text, verdict):
    item = check(load("lstm-cell").solve(), {"g": text})["items"][0]
    assert item["verdict"] == verdict, item


def test_wrong_gate_named():
    item = check(load("lstm-cell").solve(), {"i": r"\sigma(W_f [h_{t-1}, x_t] + b_f)"})["items"][0]
    assert item["verdict"] == "incorrect" and "this is derive's f" in item["message"]


# -- the readers and the marker ---------------------------------------------------------


def test_path_sum_reader_text_and_latex_agree(rnn):
    sol = rnn["sol"]
    form = sol.judges["dE_3/dW"].form             # derive's own text form is an answer too
    assert check(sol, {"dE_3/dW": form})["items"][0]["verdict"] == "correct"
    # dH_k/dW under a sum over k is one step; without a sum dH_3/dW is every path
    assert check(sol, {"dE_3/dW": "dE_3/dO_3 * dO_3/dH_3 * dH_3/dW"})["items"][0]["verdict"] == "correct"
    twice = form + " + sum_{k=3..3} dE_3/dO_3 * dO_3/dH_3 * dH_k/dW"
    item = check(sol, {"dE_3/dW": twice})["items"][0]
    assert item["verdict"] == "incorrect" and item["paths"]["extra"] == ["k = 3: W -> H_3 -> O_3 -> E_3"]
    item = check(sol, {"dE_3/dW": "dE_3/dO_3 * dO_2/dH_2"})["items"][0]
    assert item["verdict"] == "incorrect" and "do not chain" in item["message"]
    with pytest.raises(FormulaError):
        read_path_sum(r"\sum_{k=0}^{3} \frac{\partial E_3}{\partial O_3} \int")


def test_not_given_marker_on_a_key_quantity():
    item = check(load("mlp-relu-regression").solve(), {"w1": "Not given", "dL/dw5": "0"})["items"][0]
    assert item["verdict"] == "incorrect" and item["given"] == "not given"
    assert item["message"].startswith("not given in the answer")


def test_batch_with_judged_answers(rnn):
    rows = [{"dE_3/dW": "sum_{k=1..3} dE_3/dO_3 * dO_3/dH_3 * prod_{j=k+1..3} dH_j/dH_(j-1) * dH_k/dW",
             "E_1": "0.117"},
            {"E_1": "0.5", "dE_3/dW": "sum_{k=2..3} dE_3/dO_3 * dO_3/dH_3 * prod_{j=k+1..3} dH_j/dH_(j-1) * dH_k/dW"}]
    res = check_batch(rnn["sol"], Batch(["a", "b"], ["dE_3/dW", "E_1"], rows))
    got = [[(i["name"], i["verdict"]) for i in r["items"]] for r in res["rows"]]
    assert got == [[("dE_3/dW", "correct"), ("E_1", "rounding")],
                   [("E_1", "incorrect"), ("dE_3/dW", "incorrect")]]


def test_cli_exit_code_and_json():
    out = subprocess.run([sys.executable, "-m", "derive", "check", "rnn-bptt",
                          str(SEEDS / "seed001-q2a-vanishing.yaml"), "--format", "json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1, out.stderr
    item = json.loads(out.stdout)["items"][0]
    assert item["verdict"] == "incorrect" and item["form"] == "1/4"
