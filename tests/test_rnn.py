"""rnn-bptt against an independent numpy BPTT written here, finite differences,
and the structure of the general form."""
import numpy as np
import pytest

from derive.problems import load
from derive.problems.vanishing import lstm_cell_path_norms, rnn_jacobian_norms


def givens(sol, T, d=2, n=2, k=2):
    f = lambda name: np.array([float(v) for v in sol.value_of(name)])  # noqa: E731
    return (f("U").reshape(n, d), f("W").reshape(n, n), f("V").reshape(k, n),
            f("I").reshape(T, d), f("H0"), f("Y").reshape(T, k))


def forward(U, W, V, I, H0, Y, upto=None, only=None):
    """E (or E_only) of the RNN, plain numpy."""
    h, total = H0, 0.0
    for t in range(len(I) if upto is None else upto):
        h = np.tanh(U @ I[t] + W @ h)
        o = V @ h
        if only is None or t + 1 == only:
            total += 0.5 * np.sum((o - Y[t]) ** 2)
    return total


def bptt(U, W, V, I, H0, Y, only=None):
    """Gradients of E (or E_only) by a hand-written reverse pass."""
    T = len(I)
    hs, os_ = [H0], []
    for t in range(T):
        hs.append(np.tanh(U @ I[t] + W @ hs[-1]))
        os_.append(V @ hs[-1])
    gU, gW, gV = np.zeros_like(U), np.zeros_like(W), np.zeros_like(V)
    dh_next = np.zeros_like(H0)
    for t in reversed(range(T)):
        do = (os_[t] - Y[t]) if (only is None or t + 1 == only) else np.zeros_like(Y[t])
        gV += np.outer(do, hs[t + 1])
        dh = V.T @ do + dh_next
        dz = dh * (1 - hs[t + 1] ** 2)
        gU += np.outer(dz, I[t])
        gW += np.outer(dz, hs[t])
        dh_next = W.T @ dz
    return {"U": gU, "W": gW, "V": gV}


def fd(fn, X, eps=1e-6):
    g = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += eps
        Xm[idx] -= eps
        g[idx] = (fn(Xp) - fn(Xm)) / (2 * eps)
    return g


@pytest.mark.parametrize("T", [3, 5])
def test_gradients_match_independent_bptt(T):
    sol = load("rnn-bptt").solve({"T": T})
    U, W, V, I, H0, Y = givens(sol, T)
    ref = bptt(U, W, V, I, H0, Y)
    for p in "UWV":
        got = np.array([float(v) for v in sol.adjoint_of(p)]).reshape(ref[p].shape)
        assert np.allclose(got, ref[p], atol=1e-12), p
    assert abs(float(sol.forward["E"]) - forward(U, W, V, I, H0, Y)) < 1e-12
    assert all(c["passed"] for c in sol.checks)
    assert {c["method"] for c in sol.checks} >= {"numpy-backprop", "finite-difference", "matrix-form", "path-sum"}


def test_single_step_errors_match_finite_differences():
    sol = load("rnn-bptt").solve()
    U, W, V, I, H0, Y = givens(sol, 3)
    data = sol.to_json()["partial_gradients"]
    for s in (2, 3):
        ref = bptt(U, W, V, I, H0, Y, only=s)
        assert np.allclose(data[f"dE_{s}/dW"], fd(lambda X: forward(U, X, V, I, H0, Y, only=s), W), atol=1e-8)
        assert np.allclose(data[f"dE_{s}/dU"], ref["U"], atol=1e-12)
        assert np.allclose(data[f"dE_{s}/dV"], ref["V"], atol=1e-12)
    # seed 001 writes dE_2/dU = (O_2 - Y_2) H_2 (that is dE_2/dV's form): it is not dE_2/dU
    o2 = np.array([float(v) for v in sol.value_of("O_2")])
    h2 = np.array([float(v) for v in sol.value_of("H_2")])
    assert not np.allclose(data["dE_2/dU"], np.outer(o2 - Y[1], h2), atol=1e-3)


def test_general_form_has_the_right_index_ranges():
    text = load("rnn-bptt").solve().to_text()
    assert "dE_3/dW = sum_{k=1..3} dE_3/dO_3 * dO_3/dH_3 * prod_{j=k+1..3} dH_j/dH_(j-1) * dH_k/dW" in text
    assert "dE_2/dU = sum_{k=1..2} dE_2/dO_2 * dO_2/dH_2 * prod_{j=k+1..2} dH_j/dH_(j-1) * dH_k/dU" in text
    assert "dE_t/dW = sum_{k=1..t} dE_t/dO_t * dO_t/dH_t * prod_{j=k+1..t}" in text
    assert "dE_3/dV = dE_3/dO_3 * dO_3/dV" in text
    assert "sum_{k=0" not in text                 # H_0 is given: no path enters at k = 0
    # the expanded sum has exactly one term per entry step k = 1, 2, 3
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("dE_3/dW = sum"))
    assert line.count("dH_1/dW") + line.count("dH_2/dW") + line.count("dH_3/dW") == 3


def test_longer_sequences_show_the_matrix_form_only():
    sol = load("rnn-bptt").solve({"T": 20})
    text = sol.to_text()
    assert "Backward pass, component by component" not in text
    # the delta recursion, from the matrix engine (it replaced the hand-written textbook form)
    assert "dE/dH_t = transpose(V) @ (O_t - Y_t) + transpose(W) @ dE_dZ_(t+1)" in text
    assert "dE/dZ_t = dE_dH_t * (1 - H_t * H_t)" in text
    assert "dE/dW = sum_(t=1..20) outer(dE_dZ_t, H_(t-1))" in text
    assert np.shape(sol.to_json()["values"]["H"]) == (20, 2)


def test_default_rule_is_documented_and_reproducible():
    sol = load("rnn-bptt").solve({"T": 4})
    I = [[float(v) for v in row] for row in sol.to_json()["values"]["I"]]
    assert I == [[(((t + j) % 4) - 1.5) / 2 for j in (1, 2)] for t in (1, 2, 3, 4)]


def test_vanishing_norms_against_finite_differences():
    # independent: dH_T/dH_0 by differences of a numpy RNN with the same seeded weights
    from derive.problems.vanishing import HIDDEN, INPUT_SCALE, _weights

    T, scale = 6, 0.9
    rng = np.random.default_rng(0)
    W = _weights(scale, rng)
    U = rng.standard_normal((HIDDEN, HIDDEN)) * INPUT_SCALE
    xs = rng.standard_normal((T, HIDDEN))

    def run(h0):
        h = h0
        for t in range(T):
            h = np.tanh(U @ xs[t] + W @ h)
        return h

    eps = 1e-6
    J = np.stack([(run(eps * e) - run(-eps * e)) / (2 * eps) for e in np.eye(HIDDEN)], axis=1)
    norms = rnn_jacobian_norms("tanh", scale, T)
    assert abs(norms[-1] - np.linalg.norm(J, 2)) < 1e-7
    # tanh' <= 1 and ||W|| = scale: the norm is at most scale^(T-k)
    for m, v in enumerate(rnn_jacobian_norms("tanh", 0.5, 20), start=1):
        assert v <= 0.5 ** m * (1 + 1e-9)
    assert rnn_jacobian_norms("tanh", 1.5, 30)[-1] > 1      # explodes
    cell = lstm_cell_path_norms(5.0, 30)
    assert all(0 < b <= a <= 1 for a, b in zip(cell, cell[1:]))   # a product of gates in (0, 1)
