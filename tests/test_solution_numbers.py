"""``Solution.numbers()`` (what the answer key reads: the JSON's numbers
without the expressions' text) holds exactly the numbers of ``to_json()``."""
from __future__ import annotations

import pytest

from derive.problems import load


@pytest.mark.parametrize("target", ["rnn-bptt", "lstm-cell", "bahdanau-attention", "mlp-tanh-sigmoid",
                                    "mlp-relu-regression", "interpolated-ap"])
def test_numbers_are_the_jsons_numbers(target):
    sol = load(target).solve()
    full, nums = sol.to_json(), sol.numbers()
    for key in ("values", "updates", "checks", "exact", "dims", "partial_gradients", "optimizer", "loss"):
        if key in full:
            assert nums[key] == full[key], key
    assert set(nums["gradients"]) == set(full["gradients"])
    for name, entry in full["gradients"].items():
        assert nums["gradients"][name]["value"] == entry["value"], name
        assert "expr" not in nums["gradients"][name] or "expr" in entry


def test_numbers_leave_out_the_expression_text():
    sol = load("lstm-cell").solve()
    assert all(set(e) == {"value"} for e in sol.numbers()["gradients"].values())
    assert all("latex" in e for e in sol.to_json()["gradients"].values())
