"""softmax against plain math written here."""
import math

import pytest

from derive.problems import load
from derive.engine.spec import SpecError


def plain_softmax(a):
    e = [math.exp(x) for x in a]
    return [x / sum(e) for x in e]


def test_equal_entries_give_uniform():
    sol = load("softmax").solve()
    assert sol.values["activation"] == "softmax"
    assert sol.values["softmax"] == plain_softmax([0.3] * 4) == [0.25] * 4
    assert sol.extra["exact"]["softmax"] == ["1/4"] * 4
    assert all(c["passed"] for c in sol.checks)


@pytest.mark.parametrize("a", [[1, 2, 3], [-2.5, 0, 0.5, 7], [5, 5]])
def test_other_vectors(a):
    v = load("softmax").solve({"a": a}).values
    assert v["softmax"] == pytest.approx(plain_softmax(a), abs=1e-15)


def test_large_entries_do_not_overflow():
    v = load("softmax").solve({"a": [1000, 1000, 999]}).values
    e = math.exp(-1)
    assert v["softmax"] == pytest.approx([1 / (2 + e), 1 / (2 + e), e / (2 + e)], rel=1e-14)


@pytest.mark.parametrize("values", [{"a": [1]}, {"a": 3}, {"a": ["x", 1]}, {"b": [1, 2]}])
def test_bad_values_are_refused(values):
    with pytest.raises(SpecError):
        load("softmax").solve(values)
