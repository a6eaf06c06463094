"""iou-vs-l2 against plain-Python geometry written here."""
import math
from fractions import Fraction

import pytest

from derive.problems import load
from derive.engine.spec import SpecError


def box_iou(a, b):
    """(cx, cy, w, h) boxes, exact with Fractions."""
    a, b = [Fraction(v) for v in a], [Fraction(v) for v in b]
    ix = max(Fraction(0), min(a[0] + a[2] / 2, b[0] + b[2] / 2) - max(a[0] - a[2] / 2, b[0] - b[2] / 2))
    iy = max(Fraction(0), min(a[1] + a[3] / 2, b[1] + b[3] / 2) - max(a[1] - a[3] / 2, b[1] - b[3] / 2))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_same_l2_different_iou():
    sol = load("iou-vs-l2").solve()
    v = sol.values
    gt = v["box_gt"]
    for tag in "abc":
        box = v[f"box_{tag}"]
        assert v[f"l2_{tag}"] == pytest.approx(math.dist(gt, box), abs=1e-15)
        assert v[f"iou_{tag}"] == pytest.approx(float(box_iou(gt, box)), abs=1e-15)
    assert v["l2_a"] == v["l2_b"] == v["l2_c"]
    assert len({v["iou_a"], v["iou_b"], v["iou_c"]}) == 3
    assert sol.extra["exact"]["iou_b"] == str(box_iou(gt, v["box_b"]))
    assert all(c["passed"] for c in sol.checks)


def test_scale_example():
    v = load("iou-vs-l2").solve({"scale": 4}).values
    assert v["l2_big"] == v["l2_b"]
    assert v["iou_big"] == pytest.approx(float(box_iou(v["box_big_gt"], v["box_big"])))
    assert v["iou_big"] > v["iou_b"]


def test_overrides_with_fractional_coordinates():
    v = load("iou-vs-l2").solve({"box_a": [11.5, 10.25, 10, 9.5]}).values
    assert v["iou_a"] == pytest.approx(float(box_iou(v["box_gt"], [11.5, 10.25, 10, 9.5])), abs=1e-15)


def test_seed001_second_box_cannot_have_that_intersection():
    """Seed 001: box centred (8, 14) 'of size (4 x 6)' against a ground truth of area 100 centred
    (10, 10): it writes IoU = 4*8 / (100 + 60 - 32). A 4 x 6 box has area 24 (not 60) and cannot
    overlap anything by more than 24 (not 32)."""
    assert 4 * 6 == 24 < 4 * 8
    # with the ground truth 10 x 10 (area 100, the union's first term), either orientation:
    gt = (10, 10, 10, 10)
    assert box_iou(gt, (8, 14, 4, 6)) == Fraction(4, 27)
    assert box_iou(gt, (8, 14, 6, 4)) == Fraction(9, 53)
    assert Fraction(32, 128) not in (Fraction(4, 27), Fraction(9, 53))
    # the centre distance it computes is right
    assert math.dist((10, 10), (8, 14)) == pytest.approx(2 * math.sqrt(5))


@pytest.mark.parametrize("values", [{"box_a": [1, 2, 3]}, {"box_b": [1, 1, 0, 1]}, {"box_c": "x"},
                                    {"scale": 0}, {"box_d": [1, 1, 1, 1]}])
def test_bad_values_are_refused(values):
    with pytest.raises(SpecError):
        load("iou-vs-l2").solve(values)
