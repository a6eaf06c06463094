"""focal-loss against plain math written here."""
import math

import pytest

from derive.problems import load
from derive.engine.spec import SpecError


def fl(p, g):
    return -((1 - p) ** g) * math.log(p)


def test_points_and_ratios():
    v = load("focal-loss").solve().values
    for tag, p in (("well", 0.9), ("bad", 0.1)):
        assert v[f"fl_{tag}"] == pytest.approx(fl(p, 2), rel=1e-14)
        assert v[f"ce_{tag}"] == pytest.approx(-math.log(p), rel=1e-14)
        assert v[f"ratio_{tag}"] == pytest.approx((1 - p) ** 2, rel=1e-14)
    assert v["ratio_well"] < v["ratio_bad"] < 1


def test_table_matches_math():
    v = load("focal-loss").solve().values
    for p, row in zip(v["table_p"], v["table"]):
        for g, got in zip(v["table_gamma"], row):
            assert got == pytest.approx(fl(p, g), rel=1e-13)
    # gamma = 0 column is cross-entropy
    assert [row[0] for row in v["table"]] == pytest.approx([-math.log(p) for p in v["table_p"]], rel=1e-14)


def test_derivative_formula_against_finite_differences():
    sol = load("focal-loss").solve({"gamma": "0.5", "p_well": "0.8"})
    p, g, h = 0.8, 0.5, 1e-6
    fd = (fl(p + h, g) - fl(p - h, g)) / (2 * h)
    expr = g * (1 - p) ** (g - 1) * math.log(p) - (1 - p) ** g / p
    assert expr == pytest.approx(fd, rel=1e-6)
    assert sol.values["dFL/dp"] == "gamma*(1 - p)**(gamma - 1)*log(p) - (1 - p)**gamma/p"
    assert all(c["passed"] for c in sol.checks)


@pytest.mark.parametrize("values", [{"gamma": -1}, {"p_well": 1}, {"p_bad": 0}, {"p_bad": [0.1]}, {"alpha": 1}])
def test_bad_values_are_refused(values):
    with pytest.raises(SpecError):
        load("focal-loss").solve(values)
