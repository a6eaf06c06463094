"""Grading a TA can trust (issue 14): one named test per case found.

Every expected number is computed here from the networks' definitions (the
relu net of seed 004 Q2 and the tanh/sigmoid net of seed 002 Q1.3 at their
default values), never copied from a key.
"""
from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

import derive
from derive.grading.answers import read_batch_text
from derive.grading.verdicts import Policy, check, check_batch, learning_rate_aliases
from derive.cli import main
from derive.problems import load
from derive.engine.spec import SpecError

ROOT = Path(__file__).resolve().parent.parent


def relu_values(y=0.5):
    w = dict(w1=0.1, w2=0.2, w3=-0.2, w4=-0.1, w5=0.5, w6=0.3)
    z1, z2 = w["w1"] + w["w2"], w["w3"] + w["w4"]
    a1, a2 = max(z1, 0), max(z2, 0)
    o1 = w["w5"] * a1 + w["w6"] * a2
    do1 = o1 - y
    dz1 = do1 * w["w5"] * (z1 > 0)
    g = {"w1": dz1, "w2": dz1, "w5": do1 * a1, "w6": do1 * a2}
    return {"w": w, "o1": o1, "L": (y - o1) ** 2 / 2, "do1": do1, "da1": do1 * w["w5"], "dz1": dz1, "g": g,
            "new": {k: w[k] - 0.5 * g[k] for k in g}}


def tanh_values():
    x1, x2, y = 0.5, -1.0, 1.0
    w11, w12, w21, w22, v1, v2 = 0.2, -0.3, 0.4, 0.1, 0.6, -0.5
    h1, h2 = math.tanh(w11 * x1 + w12 * x2), math.tanh(w21 * x1 + w22 * x2)
    o = 1 / (1 + math.exp(-(v1 * h1 + v2 * h2)))
    du = (o - y) * o * (1 - o)
    return {"w2_11": v1, "w2_11+": v1 - 0.5 * du * h1, "dw2_11": du * h1}


@pytest.fixture(scope="module")
def relu():
    return load("mlp-relu-regression").solve()


@pytest.fixture(scope="module")
def tanh_sol():
    return load("mlp-tanh-sigmoid").solve()


def one(sol, name, text, **kw):
    return check(sol, {name: text}, **kw)["items"][0]


# -- wrong answers accepted as rounding -------------------------------------

def test_unupdated_weight_is_not_rounding(relu, tanh_sol):
    v = tanh_values()
    assert round(v["w2_11+"], 1) == v["w2_11"]          # 0.6 *is* 0.621... rounded to 1 decimal
    it = one(tanh_sol, "w2_11", "0.6")
    assert (it["verdict"], it["code"]) == ("incorrect", "not-updated")
    it = one(relu, "w5", "0.5")                          # 0.5525 truncated: also the old w5
    assert (it["verdict"], it["code"]) == ("incorrect", "not-updated")


def test_ap_from_wrong_interpolated_list_is_carried_forward():
    sol = load("interpolated-ap").solve()
    wrong = [1.0] * 5 + [0.5] * 6                        # 0.5 where the max over later recall is 4/7
    mine = sum(wrong) / 11
    items = {i["name"]: i for i in check(sol, {"p_interp": wrong, "ap11": f"{mine:.2f}"})["items"]}
    assert items["p_interp"]["verdict"] == "incorrect"
    assert items["ap11"]["verdict"] == "carried-forward", items["ap11"]
    right = [1.0] * 5 + [4 / 7] * 4 + [0.5] * 2
    good = {i["name"]: i for i in check(sol, {"p_interp": [f"{p:.2f}" for p in right],
                                              "ap11": f"{sum(round(p, 2) for p in right) / 11:.3f}"})["items"]}
    assert good["ap11"]["verdict"] in ("correct", "rounding")


def test_one_significant_figure_is_not_rounding(relu):
    sol = load("interpolated-ap").solve()
    prec = sol.to_json()["values"]["precision"]
    assert abs(prec[6] - 4 / 7) < 1e-12
    written = [f"{p:.2f}" for p in prec]
    written[6] = "0.5"                                   # 4/7 = 0.571 "truncated"
    it = check(sol, {"precision": written})["items"][0]
    assert it["verdict"] == "incorrect" and "truncated" not in it["message"]
    assert one(relu, "L", "0.06")["verdict"] == "incorrect"            # 0.06125 to one figure
    assert one(relu, "L", "0.061")["verdict"] == "rounding"
    assert one(relu, "L", "0.06", policy=Policy(min_sig=1))["verdict"] == "rounding"


def test_tiny_value_rounded_to_the_decimals_asked():
    y = 0.187                                            # o1 = 0.15: L = 0.037^2 / 2 = 0.0006845
    sol = load("mlp-relu-regression").solve({"y": y})
    L = relu_values(y)["L"]
    assert abs(L - 0.0006845) < 1e-12
    assert one(sol, "L", "0.001")["verdict"] == "incorrect"
    assert one(sol, "L", "0.001", policy=Policy(decimals=3))["verdict"] == "rounding"
    assert one(sol, "L", "0.002", policy=Policy(decimals=3))["verdict"] == "incorrect"


# -- diagnoses --------------------------------------------------------------

def test_not_updated_gets_one_diagnosis(relu):
    it = one(relu, "w1", "0.1")
    assert it["code"] == "not-updated"
    assert it["message"].count(";") == 1                 # "right value: ...; <one diagnosis>"
    for noise in ("half", "step only", "point of a2", "b1"):
        assert noise not in it["message"]


def test_dropped_w5_factor_is_named_not_factor_2(relu):
    v = relu_values()
    it = one(relu, "dL/dw1", repr(v["do1"]))            # dL/dw1 without w5 (= 0.5)
    assert it["code"] == "missing-factor:w5" and "factor of 2" not in it["message"]


def test_rounding_match_not_presented_as_exact(relu):
    it = one(relu, "w3", "-0.2")                         # w3 is -0.2 before and after (its gradient is 0)
    assert it["verdict"] == "correct"
    it = one(relu, "dL/da1", "-0.2")                     # -0.175: not w3 except through rounding
    assert it["verdict"] == "incorrect" and "dL/da1" not in it["message"].split(";", 1)[1]
    it = one(load("mlp-tanh-sigmoid").solve(), "w2_12", "0.62")
    assert "to the digits shown only" in it["message"]


def test_entry_ranks_are_one_based():
    sol = load("interpolated-ap").solve()
    prec = [f"{p:.3f}" for p in sol.to_json()["values"]["precision"]]
    prec[2] = "0.9"                                       # the third rank
    it = check(sol, {"precision": prec})["items"][0]
    assert it["message"].startswith("[3] ")


def test_codes_in_json_and_sentences_in_text(relu, capsys, tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("w1: 0.1\ndL/dw5: 0.105\nw6: 0.3\nb3: 0.35\n")
    assert main(["check", "mlp-relu-regression", str(f), "--format", "json"]) == 1
    items = json.loads(capsys.readouterr().out)["items"]
    assert [i["code"] for i in items] == ["not-updated", "sign", None, "missing-lr"]
    main(["check", "mlp-relu-regression", str(f)])
    out = capsys.readouterr().out
    assert "the update was not applied" in out and "sign error" in out and "learning rate is missing" in out


# -- formula diagnoses --------------------------------------------------------

@pytest.mark.parametrize("text,code", [
    ("-(o - y)*o*(1 - o)*h1", "sign"),
    ("2*(o - y)*o*(1 - o)*h1", "extra-factor:2"),
    ("(o - y)*h1", "missing-derivative:o"),
    ("(o - y)*o*(1 - o)*h2", "swapped-with:w2_12"),
])
def test_formula_diagnoses(tanh_sol, text, code):
    it = one(tanh_sol, "dL/dw2_11", text)
    assert it["verdict"] == "incorrect" and it["code"] == code, it


def test_formula_missing_tanh_derivative(tanh_sol):
    it = one(tanh_sol, "dL/dz1", "(o - y)*o*(1 - o)*w2_11")
    assert it["code"] == "missing-derivative:h1", it


def test_text_format_never_truncates_the_expected_formula(capsys, tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("dL/dw1_11: '(o - y)*x1'\n")
    main(["check", "mlp-tanh-sigmoid", str(f)])
    out = capsys.readouterr().out
    assert "not the same formula as o*w2_11*x1*(1 - h1**2)*(1 - o)*(o - y);" in out
    assert "..." not in out


@pytest.mark.parametrize("name,text,code", [
    ("i", r"\tanh(W_i [h_prev; x] + b_i)", "wrong-activation:tanh-for-sigmoid"),
    ("c", r"i \odot c_prev + f \odot g", "exchanged:f,i"),
    ("h", "o * c", "missing-function:tanh"),
])
def test_lstm_entry_by_entry(name, text, code):
    sol = load("lstm-cell").solve()
    it = one(sol, name, text)
    assert it["verdict"] == "incorrect" and it["code"] == code, it
    assert "(entries 1, 2)" in it["message"]


# -- notation ---------------------------------------------------------------

@pytest.mark.parametrize("lr", ["eta", r"\eta", "lr", "alpha", "\u03b7"])
def test_learning_rate_names(relu, lr):
    v = relu_values()
    text = f"w5 - {lr}*(o1 - y)*a1" if "\\" not in lr else f"w_5 - {lr} (o_1 - y) a_1"
    it = one(relu, "w5", text)
    assert it["verdict"] in ("correct", "equivalent"), it
    assert abs(it["expected"] - v["new"]["w5"]) < 1e-12


def test_alpha_is_not_the_learning_rate_where_ambiguous():
    class Rms:
        hyper = {"lr": 0.01, "alpha": 0.99}
    assert "alpha" not in learning_rate_aliases(Rms(), set()) and "eta" in learning_rate_aliases(Rms(), set())
    assert "eta" not in learning_rate_aliases(Rms(), {"eta"})


def test_hat_is_the_prediction(relu):
    assert one(relu, "dL/do1", r"$\hat{y} - y$")["verdict"] in ("correct", "equivalent")
    assert one(relu, r"\hat{y}", "0.15")["verdict"] == "correct"


def test_super_and_subscripts_in_either_order_as_keys(tanh_sol):
    v = tanh_values()
    for name in ("w_{11}^2", "w^{2}_{11}", "w^{(2)}_{11}", "w2_11"):
        it = one(tanh_sol, name, repr(v["w2_11+"]))
        assert it["verdict"] == "correct", (name, it)


@pytest.mark.parametrize("text", ["w5 = 0.5525", "w_5^{new} = w_5 - 0.5 * (-0.105) = 0.5525", "0,5525"])
def test_lhs_prefixes_chains_and_decimal_comma(relu, text):
    it = one(relu, "w5", text)
    assert it["verdict"] == "correct", it
    if "=" in text:
        assert "judged the last side" in it["message"]


def test_powers_of_functions_and_primes(tanh_sol, relu):
    it = one(tanh_sol, "dL/dz1", r"(o - y) o (1 - o) w^{2}_{11} (1 - \tanh^2(z_1))")
    assert it["verdict"] in ("correct", "equivalent"), it
    it = one(tanh_sol, "dL/dz1", "(o - y)*o*(1 - o)*w2_11*tanh'(z1)")
    assert it["verdict"] in ("correct", "equivalent"), it
    it = one(relu, "dL/dz1", "(o1 - y)*w5*relu'(z1)")
    assert it["verdict"] in ("correct", "equivalent"), it
    it = one(relu, "dL/dz1", "(o1 - y)*w5*f'(z1)")     # f: the net's one activation
    assert it["verdict"] in ("correct", "equivalent"), it


def test_stack_and_lstm_prefix():
    sol = load("lstm-cell").solve()
    assert one(sol, "i", r"\sigma(W_i stack(h_prev, x) + b_i)")["verdict"] in ("correct", "equivalent")
    it = one(sol, "c", r"c_t = f_t \odot c_{t-1} + i_t \odot \tilde{c}_t")
    assert it["verdict"] in ("correct", "equivalent") and "last side" in it["message"]


def test_unknown_name_suggests_by_meaning(relu):
    for name in ("dw5", "grad_w5", "dL_dw5", "delta_w5"):
        it = one(relu, name, "1")
        assert it["verdict"] == "unknown-name" and "did you mean dL/dw5?" in it["message"], it


# -- class CSVs ---------------------------------------------------------------

def run(argv, capsys):
    code = main(argv)
    c = capsys.readouterr()
    return code, c.out, c.err


def test_name_column_is_carried_not_graded(relu, tmp_path, capsys):
    f = tmp_path / "c.csv"
    f.write_text("id,name,email,w1\ns1,Ada,a@x.org,0.1875\ns2,Bob,b@x.org,0.1\n")
    code, out, err = run(["check", "mlp-relu-regression", str(f), "--format", "json"], capsys)
    res = json.loads(out)
    assert list(res["questions"]) == ["w1"] and res["rows"][0]["fields"] == {"name": "Ada", "email": "a@x.org"}
    assert res["rows"][0]["summary"]["total"] == 1 and err == ""


def test_duplicate_ids_refused(tmp_path, capsys):
    f = tmp_path / "c.csv"
    f.write_text("id,w1\ns1,0.1875\ns1,0.1\n")
    code, out, err = run(["check", "mlp-relu-regression", str(f)], capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "appears twice" in err


@pytest.mark.parametrize("text", ["", "id,w1\n"])
def test_empty_and_header_only_csv_refused(tmp_path, capsys, text):
    f = tmp_path / "c.csv"
    f.write_text(text)
    code, out, err = run(["check", "mlp-relu-regression", str(f)], capsys)
    assert code == 2 and err.startswith("derive: error:") and out == ""


def test_unknown_column_warned_in_one_line(tmp_path, capsys):
    f = tmp_path / "c.csv"
    f.write_text("id,w1,dw5\ns1,0.1875,-0.105\n")
    code, out, err = run(["check", "mlp-relu-regression", str(f)], capsys)
    assert code == 0 and err.count("\n") == 1 and "dw5" in err and "did you mean dL/dw5" in err


def test_semicolon_csv_and_case_insensitive_id(tmp_path, capsys):
    f = tmp_path / "c.csv"
    f.write_text("ID;Name;w1\ns1;Ada;0,1875\n")
    code, out, err = run(["check", "mlp-relu-regression", str(f), "--format", "json"], capsys)
    res = json.loads(out)
    assert code == 0 and res["rows"][0]["items"][0]["verdict"] == "correct"


def test_summary_split_by_verdict_and_code(relu):
    v = relu_values()
    rows = [{"w1": "0.1"}] * 12 + [{"w1": repr(v["w"]["w1"] - v["g"]["w1"])}] * 3 + [{"w1": "0.19"}] * 2
    batch = read_batch_text("id,w1\n" + "".join(f"s{k},{r['w1']}\n" for k, r in enumerate(rows)))
    q = check_batch(relu, batch)["questions"]["w1"]
    assert q["codes"] == {"not-updated": 12, "missing-lr": 3}
    assert q["common_wrong"][0]["code"] == "not-updated" and q["common_wrong"][0]["count"] == 12
    assert q["verdicts"]["rounding"] == 2
    assert q["share_correct"] == 0 and q["share_accepted"] == round(2 / 17, 4)
    q2 = check_batch(relu, batch, policy=Policy(rounding_is_correct=True))["questions"]["w1"]
    assert q2["share_correct"] == round(2 / 17, 4)


def test_text_summary_says_how_many_students(relu, tmp_path, capsys):
    f = tmp_path / "c.csv"
    f.write_text("id,w5\n" + "".join(f"s{k},0.4475\n" for k in range(12)) + "t,0.5525\n")
    v = relu_values()
    assert abs(v["w"]["w5"] - v["g"]["w5"] - 0.605) < 1e-12    # learning rate missing gives 0.605
    f.write_text("id,w5\n" + "".join(f"s{k},0.605\n" for k in range(12)) + "t,0.5525\n")
    code, out, err = run(["check", "mlp-relu-regression", str(f)], capsys)
    assert "12 students: missing learning rate (missing-lr)" in out


def test_gradebook_csv_with_points(tmp_path, capsys):
    f = tmp_path / "c.csv"
    f.write_text("id,name,w1,w5\npoints,,2,3\ns1,=cmd,0.1875,0.5\ns2,Bo,0.19,0.5525\n")
    code, out, err = run(["check", "mlp-relu-regression", str(f), "--format", "csv"], capsys)
    lines = out.splitlines()
    assert lines[0] == "id,name,score,points,w1,w1 code,w5,w5 code"
    assert lines[1] == "s1,'=cmd,2,5,correct,,incorrect,not-updated"
    assert lines[2] == "s2,Bo,5,5,rounding,,correct,"
    p = tmp_path / "points.yaml"
    p.write_text("w1: 1\nw5: 1\n")
    code, out, err = run(["check", "mlp-relu-regression", str(f), "--format", "csv", "--points", str(p),
                          "--rounding-credit", "0.5"], capsys)
    assert out.splitlines()[2] == "s2,Bo,1.5,2,rounding,,correct,"


def test_read_batch_refuses_no_id_in_one_line():
    with pytest.raises(SpecError, match="needs an 'id' column"):
        read_batch_text("student;w1\ns1;0.1\n")


# -- Python API, layering -----------------------------------------------------

def test_python_api_returns_records_and_displays():
    r = derive.check("mlp-relu-regression", {"w1": 0.1, "dL/dw5": "-0.105"})
    assert [i["code"] for i in r["items"]] == ["not-updated", None]
    html = r._repr_html_()
    assert "<table>" in html and "not-updated" not in html and "was not applied" in html
    assert r"\begin{tabular}" in r._repr_latex_()
    cls = derive.check("mlp-relu-regression", [{"w1": "0.1875"}, {"w1": "0.1"}])
    assert [row["score"] for row in cls["rows"]] == [1.0, 0.0] and "<table>" in cls._repr_html_()
    from derive.grading.verdicts import check as module_check     # the module's own functions stay importable
    assert callable(module_check)


def test_no_import_cycle_between_check_and_judges():
    def imports(path):
        tree = ast.parse(Path(path).read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imports(ROOT / "derive" / "grading" / "judges.py") if m.endswith("verdicts")}
    assert "derive.grading.judges" in imports(ROOT / "derive" / "grading" / "verdicts.py")


def test_derivative_written_inside_an_answer_and_case_of_names(relu):
    it = one(relu, "dL/dw5", r"$\frac{\partial L}{\partial o_1} \cdot a_1$")
    assert it["verdict"] in ("correct", "equivalent") and "read dL/do1 = " in it["message"]
    assert one(relu, "Loss", "0.06125")["verdict"] == "correct"


def test_example_student_file_shows_five_kinds_of_mistake(capsys):
    code, out, err = run(["check", "mlp-relu-regression", str(ROOT / "examples" / "grading" / "student-relu.yaml"),
                          "--format", "json"], capsys)
    codes = {i["code"] for i in json.loads(out)["items"] if i["code"]}
    assert {"sign", "missing-factor:w5", "not-updated", "missing-lr"} <= codes and len(codes) >= 5, codes


@pytest.mark.parametrize("name", [r"w_5^{new}", r"w_5^+", r"w_{5}^{\text{new}}", "W5", "$w_5$"])
def test_updated_weight_keys_as_students_write_them(relu, name):
    assert one(relu, name, repr(relu_values()["new"]["w5"]))["verdict"] == "correct"


@pytest.mark.parametrize("name", [r"\nabla_{w_5} L", r"\frac{\partial Loss}{\partial w_5}", "∂L/∂w5", r"\frac{dL}{dw_5}"])
def test_gradient_keys_as_students_write_them(relu, name):
    assert one(relu, name, repr(relu_values()["g"]["w5"]))["verdict"] == "correct"


def test_derivative_at_the_wrong_point_and_swapped_labels(tanh_sol, relu):
    x1, x2 = 0.5, -1.0
    h1 = math.tanh(0.2 * x1 - 0.3 * x2)
    o = 1 / (1 + math.exp(-(0.6 * h1 - 0.5 * math.tanh(0.4 * x1 + 0.1 * x2))))
    dh1 = (o - 1.0) * o * (1 - o) * 0.6
    at_output = dh1 * (1 - math.tanh(h1) ** 2)          # tanh' taken at h1 instead of z1
    it = one(tanh_sol, "dL/dz1", repr(at_output))
    assert (it["verdict"], it["code"]) == ("incorrect", "wrong-point"), it
    v = relu_values()
    it = one(relu, "w1", repr(v["new"]["w2"]))            # w2 after the update: labels exchanged
    assert it["code"] == "swapped-with:w2", it


@pytest.mark.parametrize("text,code", [("w5 - 0.5*dL/dw1", "swapped-with:w1"),
                                       ("w5 - eta*(o1 - y)*a2", "swapped-with:w6"),
                                       ("w5 - (o1 - y)*a1", "missing-lr"),
                                       ("w5", "not-updated")])
def test_update_formula_diagnoses(relu, text, code):
    it = one(relu, "w5", text)
    assert (it["verdict"], it["code"]) == ("incorrect", code), it
