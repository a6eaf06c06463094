"""interpolated-ap against a plain-Python computation written here."""
from fractions import Fraction

import pytest

from derive.problems import load
from derive.problems.interpolated_ap import ap11_voc_devkit
from derive.engine.spec import SpecError

SEED_RANKING = [True, True, False, False, False, True, True, False, False, True]


def reference(ranking, n_pos):
    """Precision/recall, VOC 2007 11-point AP and VOC 2010 all-point AP, exact."""
    prec, rec, tp = [], [], 0
    for k, c in enumerate(ranking, 1):
        tp += c
        prec.append(Fraction(tp, k))
        rec.append(Fraction(tp, n_pos))
    ap = Fraction(0)
    for k in range(11):
        ok = [p for p, r in zip(prec, rec) if r >= Fraction(k, 10)]
        ap += max(ok) if ok else 0
    ap /= 11
    area, last = Fraction(0), Fraction(0)
    for r in sorted(set(rec)):
        area += (r - last) * max(p for p, q in zip(prec, rec) if q >= r)
        last = r
    return prec, rec, ap, area


def test_seed_ranking_matches_reference():
    sol = load("interpolated-ap").solve()
    prec, rec, ap, area = reference(SEED_RANKING, 5)
    assert sol.values["precision"] == [float(p) for p in prec]
    assert sol.values["recall"] == [float(r) for r in rec]
    assert sol.extra["exact"]["ap11"] == f"{ap.numerator}/{ap.denominator}"
    assert sol.values["ap11"] == pytest.approx(float(ap), abs=1e-15)
    assert sol.values["ap_all"] == pytest.approx(float(area), abs=1e-15)
    assert all(c["passed"] for c in sol.checks) and len(sol.checks) == 3


def test_seed001_published_value_is_not_the_rounded_ap():
    # seed 001 writes 0.752: 4/7 rounded to 0.57 and the result truncated
    ap = reference(SEED_RANKING, 5)[2]
    assert abs(float(ap) - 0.752) > 0.0005
    assert round(float(ap), 3) == 0.753


def test_strict_inequality_of_seed003_changes_the_answer():
    sol = load("interpolated-ap").solve()
    prec, rec, _, _ = reference(SEED_RANKING, 5)
    strict = Fraction(0)
    for k in range(11):
        ok = [p for p, r in zip(prec, rec) if r > Fraction(k, 10)]
        strict += max(ok) if ok else 0
    assert sol.values["ap11_strict"] == pytest.approx(float(strict / 11))
    assert sol.values["ap11_strict"] != sol.values["ap11"]


def test_recall_exactly_on_a_level_counts():
    # 10 instances: recall 3/10 sits on the level 0.3, which np.arange puts above 0.3
    ranking = [True, True, True, False, False, True] + [False] * 4
    sol = load("interpolated-ap").solve({"ranking": ranking, "n_positives": 10})
    ap = reference(ranking, 10)[2]
    assert sol.values["ap11"] == pytest.approx(float(ap), abs=1e-15)
    assert ap11_voc_devkit(ranking, 10) < float(ap) - 1e-3


def test_overrides_from_set_strings_and_ints():
    sol = load("interpolated-ap").solve({"ranking": [1, 0, 1], "n_positives": "2"})
    prec, rec, ap, _ = reference([True, False, True], 2)
    assert sol.values["ap11"] == pytest.approx(float(ap))


@pytest.mark.parametrize("values", [
    {"ranking": [1, 2]}, {"ranking": []}, {"ranking": "TTF"}, {"n_positives": 0},
    {"n_positives": 2.5}, {"n_positives": 2}, {"rankings": [1]},
])
def test_bad_values_are_refused(values):
    with pytest.raises(SpecError):
        load("interpolated-ap").solve(values)


def test_figure_is_a_monotone_staircase():
    sol = load("interpolated-ap").solve()
    fig = [b for b in sol.blocks() if type(b).__name__ == "Figure"][0]
    series = fig.data["series"][0]
    assert fig.data["step"] is True
    assert all(a >= b for a, b in zip(series["y"], series["y"][1:]))
    assert series["x"][-1] == 1.0
