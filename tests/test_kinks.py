"""Finite differences across a kink or a tie see the other side's derivative:
the matrix check must say "not applicable" there (naming the operation and
torch's rule), not call a right gradient wrong, and must still run where no
perturbed value reaches the kink."""
from __future__ import annotations

import numpy as np
import pytest

from derive.engine.numeric import VerificationError
from derive.problems.matrix_solution import MatrixSpecProblem

A = [[1, 1, 0, 2], [0, 0, 2, 1], [3, 1, 1, 1], [1, 3, 1, 1]]     # ties in windows (0,0), (1,0), (1,1)


def solve(forward: dict, loss: str, leaves: dict):
    data = {"name": "ties", **leaves, "targets": {"y": 0.5}, "forward": forward, "loss": loss}
    return MatrixSpecProblem(data, "ties").solve(None)


def fd(sol):
    return next(c for c in sol.checks if c["method"] == "finite-difference")


def first_max_grad(a, upstream):
    """dL/dA of sum(upstream * maxpool2d(A, 2)) by loops: each window's upstream to its first maximum."""
    a = np.asarray(a, float)
    out = np.zeros_like(a)
    for i in range(a.shape[0] // 2):
        for j in range(a.shape[1] // 2):
            win = a[2 * i:2 * i + 2, 2 * j:2 * j + 2].reshape(-1)
            k = int(np.argmax(win))         # numpy's argmax: the first maximum in row-major order
            out[2 * i + k // 2, 2 * j + k % 2] += upstream[i, j]
    return out


def test_a_tie_in_max_pooling_of_a_parameter_is_not_a_failure():
    sol = solve({"P": "maxpool2d(A, 2)", "s": "sum(flatten(P))"}, "(s - y)**2 / 2",
                {"parameters": {"A": {"shape": [4, 4], "value": A}}})
    check = fd(sol)
    assert check["passed"] is None and "maxpool2d" in check["note"] and "first maximum" in check["note"]
    assert next(c for c in sol.checks if c["method"] == "numpy-backprop")["passed"] is True
    s = float(np.asarray(A, float).reshape(2, 2, 2, 2).max(axis=(1, 3)).sum())   # the window maxima of A
    want = first_max_grad(A, np.full((2, 2), s - 0.5))
    assert np.allclose(np.asarray(sol.mf.derivation.gradient("A"), float), want)


def test_a_tie_in_max_along_an_axis_is_named():
    rows = [[2, 2, 1], [0, 1, 3]]
    sol = solve({"m": "max(A, 1)", "s": "sum(m)"}, "(s - y)**2 / 2",
                {"parameters": {"A": {"shape": [2, 3], "value": rows}}})
    check = fd(sol)
    assert check["passed"] is None and "max" in check["note"] and "shares" in check["note"]
    g = np.asarray(sol.mf.derivation.gradient("A"), float)
    upstream = (2 + 3) - 0.5
    assert np.allclose(g, upstream * np.array([[0.5, 0.5, 0], [0, 0, 1]]))   # torch.amax: a tie shared


def test_a_tie_that_no_perturbed_value_reaches_still_gets_finite_differences():
    sol = solve({"P": "maxpool2d(X, 2)", "s": "sum(w * flatten(P))"}, "(s - y)**2 / 2",
                {"inputs": {"X": {"shape": [4, 4], "value": A}},
                 "parameters": {"w": {"shape": [4], "value": [0.5, -0.25, 0.75, 1]}}})
    check = fd(sol)
    assert check["passed"] is True and check["max_rel_err"] < 1e-8


def test_no_tie_keeps_the_finite_difference_check():
    sol = solve({"P": "maxpool2d(A, 2)", "s": "sum(flatten(P))"}, "(s - y)**2 / 2",
                {"parameters": {"A": {"shape": [4, 4], "value": [[1, 2, 0, 5], [0, 0, 2, 1], [4, 1, 1, 2],
                                                                  [1, 3, 1, 7]]}}})
    assert fd(sol)["passed"] is True


def test_a_failed_check_reads_as_a_sentence(monkeypatch):
    import derive.engine.matspec as matspec
    real = matspec.matrix_checks

    def broken(*args, **kwargs):
        out = real(*args, **kwargs)
        return [dict(c, passed=False, max_rel_err=1.44) if c["method"] == "finite-difference" else c
                for c in out]
    monkeypatch.setattr(matspec, "matrix_checks", broken)
    with pytest.raises(VerificationError) as exc:
        solve({"h": "tanh(w @ x)"}, "(h - y)**2 / 2",
              {"parameters": {"w": {"shape": [2], "value": [0.5, -0.5]}},
               "inputs": {"x": {"shape": [2], "value": [1, 2]}}})
    text = str(exc.value)
    assert "the finite-difference check failed: max rel err 1.44 (3 random directions" in text
    assert "{" not in text and "'passed'" not in text
