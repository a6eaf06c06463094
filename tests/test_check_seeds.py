"""The seeds' own answers, transcribed in examples/seed-answers/, checked:
each finding is pinned, with the right value computed here independently."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from derive.grading.answers import read_answers
from derive.grading.verdicts import check
from derive.document.errata import findings
from derive.problems import load

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "examples" / "seed-answers"


def relu_reference():
    """Seed 004 Q2's network in plain Python: every quantity by its answer name."""
    w = {"w1": 0.1, "w2": 0.2, "w3": -0.2, "w4": -0.1, "w5": 0.5, "w6": 0.3, "b1": 0.0, "b2": 0.0, "b3": 0.0}
    x1 = x2 = 1.0
    y, lr = 0.5, 0.5
    z1 = w["w1"] * x1 + w["w2"] * x2 + w["b1"]
    z2 = w["w3"] * x1 + w["w4"] * x2 + w["b2"]
    a1, a2 = max(z1, 0), max(z2, 0)
    o1 = w["w5"] * a1 + w["w6"] * a2 + w["b3"]
    do1 = o1 - y
    da1, da2 = do1 * w["w5"], do1 * w["w6"]
    dz1, dz2 = da1 * (z1 > 0), da2 * (z2 > 0)
    g = {"w1": dz1 * x1, "w2": dz1 * x2, "w3": dz2 * x1, "w4": dz2 * x2, "w5": do1 * a1, "w6": do1 * a2,
         "b1": dz1, "b2": dz2, "b3": do1}
    out = {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "o1": o1, "L": (y - o1) ** 2 / 2, "dL/do1": do1,
           "dL/da1": da1, "dL/da2": da2, "dL/dz1": dz1, "dL/dz2": dz2}
    out.update({f"dL/d{p}": v for p, v in g.items()})
    out.update({p: w[p] - lr * g[p] for p in w})
    return out


def by_quantity(seed, question_prefix):
    return {f["quantity"]: f for f in findings() if f["seed"] == seed and f["question"].startswith(question_prefix)}


def test_seed004_q2_every_written_answer_against_plain_python():
    ref = relu_reference()
    written = yaml.safe_load((SEEDS / "seed004-q2.yaml").read_text())
    wrong = {k for k, v in written.items() if abs(float(v) - ref[k]) > 1e-12}
    sol = load("mlp-relu-regression").solve()
    res = check(sol, read_answers(SEEDS / "seed004-q2.yaml"))
    flagged = {i["name"] for i in res["items"] if i["verdict"] != "correct"}
    assert flagged == wrong == {"dL/dw2", "dL/dw3", "w2", "w3", "b3"}
    assert set(by_quantity("004", "Q2")) == wrong


def test_seed004_q2_findings_pinned():
    ref = relu_reference()
    f = by_quantity("004", "Q2")
    assert f["w3"]["written"] == ".2875" and f["w3"]["verdict"] == "incorrect"
    assert float(f["w3"]["right"]) == pytest.approx(ref["w3"]) == -0.2
    assert "value of w2 after the update" in f["w3"]["why"]
    assert float(f["w2"]["right"]) == pytest.approx(ref["w2"])
    assert "value of w3 after the update" in f["w2"]["why"]
    assert float(f["dL/dw3"]["right"]) == pytest.approx(ref["dL/dw3"]) == 0
    assert "value of dL/dw2" in f["dL/dw3"]["why"]
    assert float(f["dL/dw2"]["right"]) == pytest.approx(ref["dL/dw2"])
    assert "value of dL/dw3" in f["dL/dw2"]["why"]
    assert f["b3"]["written"] == "-.175" and float(f["b3"]["right"]) == pytest.approx(ref["b3"])
    assert "sign error" in f["b3"]["why"]


def test_seed004_q7_table_findings_pinned():
    f = by_quantity("004", "Q5")
    conv3 = 57 - 3 + 1
    pooled = conv3 // 2                      # PyTorch's floor
    assert set(f) == {"pool2_shape", "fc1_weights"}
    assert f["pool2_shape"]["right"] == f"{pooled} x {pooled} x 128"
    assert int(f["fc1_weights"]["right"]) == pooled * pooled * 128 * 10
    assert "ceil" in f["fc1_weights"]["why"]


def ap11(ranking, positives):
    tp = fp = 0
    prec, rec = [], []
    for hit in ranking:
        tp += hit
        fp += not hit
        prec.append(tp / (tp + fp))
        rec.append(tp / positives)
    levels = [k / 10 for k in range(11)]
    interp = [max([p for p, r in zip(prec, rec) if r >= lv - 1e-12], default=0.0) for lv in levels]
    return sum(interp) / 11, interp


def test_seed001_ap_is_a_truncated_rounded_chain():
    ranking = [True, True, False, False, False, True, True, False, False, True]
    exact, interp = ap11(ranking, 5)
    student = sum(round(p, 2) for p in interp) / 11
    f = by_quantity("001", "Q3")
    assert set(f) == {"ap11"}
    assert f["ap11"]["verdict"] == "rounding"
    assert float(f["ap11"]["right"]) == pytest.approx(exact, abs=5e-7)
    assert f"{student:.6f}" in f["ap11"]["why"] and "truncated" in f["ap11"]["why"]
    assert 0.752 == pytest.approx(int(student * 1000) / 1000)


def test_seed001_transposed_conv_matrix_has_a_missing_row():
    f = by_quantity("001", "Q6")
    assert set(f) == {"matrix"}
    rows = (2 + 2 - 1) ** 2                  # one row per output pixel of a 3 x 3 result
    assert f"expected shape {rows} x 4, found 8 x 4" in f["matrix"]["why"]


def test_seed001_iou_of_the_written_boxes():
    # (cx, cy, w, h) boxes as written; IoU computed here from corners
    gt, b2 = (10, 10, 10, 10), (8, 14, 4, 6)

    def corners(b):
        return b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = corners(gt), corners(b2)
    inter = max(0, min(ax2, bx2) - max(ax1, bx1)) * max(0, min(ay2, by2) - max(ay1, by1))
    iou = inter / (gt[2] * gt[3] + b2[2] * b2[3] - inter)
    f = by_quantity("001", "Q5")
    assert f["iou_a"]["written"] == "0.25" and f["iou_a"]["verdict"] == "incorrect"
    assert float(f["iou_a"]["right"]) == pytest.approx(iou, abs=5e-7)


def test_seed004_softmax_is_right():
    assert by_quantity("004", "Q7(b)") == {}
    sol = load("softmax").solve()
    res = check(sol, read_answers(SEEDS / "seed004-q7b-softmax.yaml"))
    assert {i["verdict"] for i in res["items"]} == {"correct"}
