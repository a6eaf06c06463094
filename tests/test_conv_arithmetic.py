"""conv-arithmetic against plain-Python arithmetic written here."""
import math

import numpy as np
import pytest
import sympy

from derive.problems import load
from derive.problems.conv_arithmetic import CONV_H, POOL_H, J, M, P, F, s, pool_size, receptive_field
from derive.engine.spec import SpecError


def plain_table(layers, h, w, c, ceil=False):
    """(shape, weights, biases) per layer, by hand-written integer arithmetic."""
    out, flat = [], None
    for spec in layers:
        parts = spec.split("-")
        if parts[0] == "CONV":
            k, n = int(parts[1]), int(parts[2])
            weights = k * k * c * n
            h, w, c = h - k + 1, w - k + 1, n
            out.append(((h, w, c), weights, n))
        elif parts[0] == "POOL":
            k = int(parts[1])
            div = (lambda a: -(-(a - k) // k) + 1) if ceil else (lambda a: (a - k) // k + 1)
            h, w = div(h), div(w)
            out.append(((h, w, c), 0, 0))
        else:
            n = int(parts[1])
            fan = flat if flat is not None else h * w * c
            out.append(((n,), fan * n, n))
            flat = n
    return out


LAYERS = ["CONV-7-32", "POOL-2", "CONV-5-64", "CONV-3-128", "POOL-2", "FC-10", "OUTPUT-4"]
NAMES = ["conv1", "pool1", "conv2", "conv3", "pool2", "fc1", "output"]


def test_table_matches_plain_arithmetic():
    v = load("conv-arithmetic").solve().values
    for name, (shape, weights, biases) in zip(NAMES, plain_table(LAYERS, 128, 128, 3)):
        assert tuple(v[f"{name}_shape"]) == shape
        assert v[f"{name}_weights"] == weights
        assert v[f"{name}_biases"] == biases
    assert v["total_parameters"] == sum(wt + b for _, wt, b in plain_table(LAYERS, 128, 128, 3))


def test_seed004_published_table_errors():
    """Seed 004 Q7 writes 28 x 28 x 128 after the second POOL-2 and 28*28*128*10 FC-10 weights;
    flooring 55/2 gives 27, so both are wrong under PyTorch's convention (right only in ceil mode)."""
    v = load("conv-arithmetic").solve().values
    assert v["pool2_shape"] == [27, 27, 128] != [28, 28, 128]
    assert v["fc1_weights"] == 27 * 27 * 128 * 10 != 28 * 28 * 128 * 10
    assert v["ceil_pool2_shape"] == [28, 28, 128]
    assert v["ceil_fc1_weights"] == 28 * 28 * 128 * 10
    ceil = plain_table(LAYERS, 128, 128, 3, ceil=True)
    assert v["ceil_total_parameters"] == sum(wt + b for _, wt, b in ceil)
    # the entries the seed gets right
    assert v["conv1_shape"] == [122, 122, 32] and v["conv1_weights"] == 7 * 7 * 3 * 32
    assert v["conv3_shape"] == [55, 55, 128] and v["output_weights"] == 10 * 4


def test_receptive_field_seed004_q5a_by_brute_force():
    # brute force in 2-D: mark the input pixels one pooling unit depends on
    layers = [(3, 1), (3, 1), (3, 2)]
    need = np.zeros((1, 1), dtype=bool)
    need[0, 0] = True
    for k, st in reversed(layers):
        below = np.zeros(((need.shape[0] - 1) * st + k, (need.shape[1] - 1) * st + k), dtype=bool)
        for i, j in zip(*np.nonzero(need)):
            below[i * st:i * st + k, j * st:j * st + k] = True
        need = below
    v = load("conv-arithmetic").solve().values
    assert v["receptive_field"] == need.shape[0] == need.shape[1] == int(need.sum() ** 0.5)
    assert receptive_field(layers)[-1][0] == need.shape[0]


@pytest.mark.parametrize("j,m,st,p", [(7, 3, 2, 0), (8, 3, 2, 1), (32, 5, 3, 2), (5, 5, 1, 0)])
def test_conv_formula_matches_window_count(j, m, st, p):
    windows = len(range(0, j + 2 * p - m + 1, st))
    assert int(CONV_H.subs({J: j, M: m, s: st, P: p})) == windows
    assert int(POOL_H.subs({J: j, F: m, s: st})) == len(range(0, j - m + 1, st))


@pytest.mark.parametrize("n,k,st", [(55, 2, 2), (10, 5, 2), (10, 1, 4), (7, 3, 3), (6, 2, 2)])
def test_ceil_mode_rule(n, k, st):
    out = math.ceil((n - k) / st) + 1
    if (out - 1) * st >= n:
        out -= 1
    assert pool_size(n, k, st, ceil_mode=True) == out


def test_formulas_are_symbolic_with_floor():
    v = load("conv-arithmetic").solve().values
    assert v["conv_output_height"] == "floor((J + 2*P - M)/s) + 1"
    assert "floor" in v["pool_output_height"]
    assert isinstance(CONV_H.atoms(sympy.floor).pop(), sympy.floor)


def test_all_checks_pass_and_fc_conv_is_numeric():
    sol = load("conv-arithmetic").solve()
    assert {c["method"] for c in sol.checks} >= {"numpy-window-enumeration", "numpy-fc-vs-conv"}
    assert all(c["passed"] for c in sol.checks)


def test_override_layers():
    layers = ["CONV-3-8", "POOL-2", "CONV-3-16", "FC-5"]
    v = load("conv-arithmetic").solve({"layers": layers, "input": [32, 30, 1]}).values
    for name, (shape, weights, _) in zip(["conv1", "pool1", "conv2", "fc1"], plain_table(layers, 32, 30, 1)):
        assert tuple(v[f"{name}_shape"]) == shape and v[f"{name}_weights"] == weights


@pytest.mark.parametrize("values", [
    {"layers": ["CONV-3"]}, {"layers": ["FC-10", "POOL-2"]}, {"layers": []}, {"input": [0, 4, 3]},
    {"input": [4, 4]}, {"layers": ["CONV-9-2"], "input": [4, 4, 1]}, {"rf_layers": [[3]]}, {"foo": 1},
    {"input": [4.5, 4, 3]},
])
def test_bad_values_are_refused(values):
    with pytest.raises(SpecError):
        load("conv-arithmetic").solve(values)
