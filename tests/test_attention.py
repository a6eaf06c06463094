"""bahdanau-attention against finite differences of an independent numpy forward."""
import numpy as np

from derive.problems import load


def numpy_attention(v, W, V, s_prev, h, y):
    e = np.array([v @ np.tanh(W @ s_prev + V @ h[:, j]) for j in range(h.shape[1])])
    alpha = np.exp(e - e.max())
    alpha /= alpha.sum()
    c = h @ alpha
    return 0.5 * np.sum((c - y) ** 2), alpha


def central(fn, X, eps=1e-6):
    g = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += eps
        Xm[idx] -= eps
        g[idx] = (fn(Xp) - fn(Xm)) / (2 * eps)
    return g


def test_gradients_of_parameters_and_inputs_match_finite_differences():
    sol = load("bahdanau-attention").solve({"Tx": 4})
    D = sol.dims
    val = lambda n: np.array([float(x) for x in sol.value_of(n)])  # noqa: E731
    args = {"v": val("v"), "W": val("W").reshape(D["a"], D["m"]), "V": val("V").reshape(D["a"], D["p"]),
            "s_prev": val("s_prev"), "h": val("h").reshape(D["p"], D["Tx"]), "y": val("y")}
    loss, alpha = numpy_attention(**args)
    assert abs(loss - float(sol.forward["L"])) < 1e-12
    assert np.allclose(alpha, val("alpha"), atol=1e-14)
    data = sol.to_json()
    for name in ("v", "W", "V", "s_prev", "h"):
        ref = central(lambda X: numpy_attention(**dict(args, **{name: X}))[0], args[name])
        got = data["gradients"][name]["value"] if name in data["gradients"] else data["input_gradients"][name]
        assert np.allclose(np.array(got), ref, atol=1e-8), name
    assert all(c["passed"] for c in sol.checks)
    assert "softmax-jacobian" in {c["method"] for c in sol.checks}


def test_softmax_jacobian_step_is_written_out():
    sol = load("bahdanau-attention").solve()
    text = sol.to_text()
    assert "dalpha_j/de_k = alpha_j (delta_jk - alpha_k) = (diag(alpha) - alpha alpha^T)_jk" in text
    a = np.array([float(x) for x in sol.value_of("alpha")])
    J = np.diag(a) - np.outer(a, a)
    dalpha = np.array([float(x) for x in sol.adjoint_of("alpha")])
    de = np.array([float(x) for x in sol.adjoint_of("e")])
    assert np.allclose(J @ dalpha, de, atol=1e-14)
    assert np.allclose(J.sum(axis=0), 0, atol=1e-15)      # rows of a softmax Jacobian sum to 0
