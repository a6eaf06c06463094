"""End to end: the CNN and the self-attention block of ``examples/``, read by
derive's spec front end into the matrix engine and derived there, against
plain numpy implementations written here (the forward pass and a
hand-written backward pass, with loops for the convolution and pooling;
nothing from derive).  The loss and every parameter's gradient must agree."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from derive.mform import MatrixForm

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def leaves(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    out = {}
    for section in ("inputs", "targets", "parameters"):
        for name, raw in data[section].items():
            out[name] = np.broadcast_to(np.asarray(raw["value"], float), raw["shape"]).copy()
    return out


# --- the CNN ----------------------------------------------------------------

def cnn_reference(v: dict):
    X, K, b, W, c, y = (v[k] for k in ("X", "K", "b", "W", "c", "y"))
    C_out, C_in, k, _ = K.shape
    n = X.shape[1] - k + 1
    Z = np.zeros((C_out, n, n))
    for o, i, j, ci, a, bb in itertools.product(range(C_out), range(n), range(n), range(C_in), range(k), range(k)):
        Z[o, i, j] += X[ci, i + a, j + bb] * K[o, ci, a, bb]
    Z += b
    A = np.where(Z > 0, Z, 0.0)
    m = n // 2
    P, where = np.zeros((C_out, m, m)), {}
    for o, i, j in itertools.product(range(C_out), range(m), range(m)):
        cells = [(o, 2 * i + a, 2 * j + bb) for a in range(2) for bb in range(2)]
        best = cells[0]
        for cell in cells:
            if A[cell] > A[best]:
                best = cell
        P[o, i, j], where[o, i, j] = A[best], best
    f = P.reshape(-1)
    o_ = W @ f + c
    e = np.exp(o_ - o_.max())
    p = e / e.sum()
    L = -float(np.sum(y * np.log(p)))
    # backward, step by step: dL/dp = -y/p through the softmax Jacobian
    dp = -y / p
    do = np.array([sum(dp[i] * p[i] * ((i == j) - p[j]) for i in range(len(p))) for j in range(len(p))])
    grads = {"W": np.outer(do, f), "c": do}
    dP = (W.T @ do).reshape(P.shape)
    dA = np.zeros(A.shape)
    for idx, cell in where.items():
        dA[cell] += dP[idx]
    dZ = dA * (Z > 0)
    grads["b"] = dZ.sum(axis=(1, 2), keepdims=True)
    dK = np.zeros(K.shape)
    for o, ci, a, bb, i, j in itertools.product(range(C_out), range(C_in), range(k), range(k), range(n), range(n)):
        dK[o, ci, a, bb] += X[ci, i + a, j + bb] * dZ[o, i, j]
    grads["K"] = dK
    return L, grads


# --- the self-attention block ---------------------------------------------------

def _gelu(u):
    return u * 0.5 * (1 + np.vectorize(math.erf)(u / math.sqrt(2)))


def _gelu_grad(u):
    return 0.5 * (1 + np.vectorize(math.erf)(u / math.sqrt(2))) + u * np.exp(-u * u / 2) / math.sqrt(2 * math.pi)


def attention_reference(v: dict):
    X, Y = v["X"], v["Y"]
    Wq, Wk, Wv, g, beta, W1, b1, W2, b2 = (v[k] for k in ("W_q", "W_k", "W_v", "gamma", "beta",
                                                           "W_1", "b_1", "W_2", "b_2"))
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    S = Q @ K.T / 2
    E = np.exp(S - S.max(axis=1, keepdims=True))
    A = E / E.sum(axis=1, keepdims=True)
    R = X + A @ V
    d = R.shape[1]
    D = R - R.mean(axis=1, keepdims=True)
    var = (D ** 2).mean(axis=1, keepdims=True)
    s = np.sqrt(var + 1e-5)
    N = g * D / s + beta
    U = N @ W1 + b1
    H = _gelu(U)
    O = H @ W2 + b2
    L = float(np.sum((O - Y) ** 2) / 2)
    dO = O - Y
    grads = {"W_2": H.T @ dO, "b_2": dO.sum(axis=0)}
    dU = (dO @ W2.T) * _gelu_grad(U)
    grads["W_1"], grads["b_1"] = N.T @ dU, dU.sum(axis=0)
    dN = dU @ W1.T
    grads["gamma"], grads["beta"] = (dN * D / s).sum(axis=0), dN.sum(axis=0)
    ds = np.sum(dN * g * D, axis=1, keepdims=True) * (-1 / s ** 2)
    dvar = ds / (2 * s)
    dD = dN * g / s + dvar * 2 * D / d
    dR = dD - dD.mean(axis=1, keepdims=True)
    dA, dV = dR @ V.T, A.T @ dR
    dS = A * (dA - np.sum(dA * A, axis=1, keepdims=True))
    dQ, dK = dS @ K / 2, dS.T @ Q / 2
    grads["W_q"], grads["W_k"], grads["W_v"] = X.T @ dQ, X.T @ dK, X.T @ dV
    return L, grads


def solve(path: Path) -> dict:
    """The example read by derive's spec front end into the matrix engine and
    derived there: loss, gradients, checks and matrix steps."""
    mf = MatrixForm.from_data(yaml.safe_load(path.read_text()))
    grads = {n: mf.gradient(n) for n, node in mf.graph.nodes.items() if node.kind == "parameter"}
    return {"loss": float(mf.values[mf.loss]), "gradients": grads, "checks": mf.checks,
            "matrix_steps": mf.steps_json()}


@pytest.mark.parametrize("example,reference", [("cnn.yaml", cnn_reference),
                                               ("self-attention.yaml", attention_reference)])
def test_example_derived_by_the_matrix_engine_matches_plain_numpy(example, reference):
    path = EXAMPLES / example
    out = solve(path)
    L, grads = reference(leaves(path))
    assert out["loss"] == pytest.approx(L, rel=1e-12)
    assert set(out["gradients"]) == set(grads)
    for name, g in grads.items():
        np.testing.assert_allclose(out["gradients"][name], g, rtol=1e-10, atol=1e-12, err_msg=name)
    assert {c["method"] for c in out["checks"]} >= {"numpy-backprop", "finite-difference"}
    assert all(c["passed"] for c in out["checks"])


def test_cnn_matrix_steps_show_conv_and_pool_rules():
    steps = {s["name"]: s for s in solve(EXAMPLES / "cnn.yaml")["matrix_steps"]}
    assert steps["dL/do"]["expr"] == "p - y"                 # softmax with cross-entropy
    assert steps["dL/dK"]["expr"] == "conv2d_grad_kernel(X, dL_dZ, K, 1, 0)"
    assert steps["dL/dK"]["latex"] == r"X \star \frac{\partial L}{\partial Z}"
    assert steps["dL/dA"]["latex"].startswith(r"\operatorname{route}_{2}")
    assert steps["dL/dP"]["expr"] == "reshape(dL_df, 2, 2, 2)"


def test_attention_matrix_steps_show_row_wise_softmax_and_layer_norm():
    steps = {s["name"]: s for s in solve(EXAMPLES / "self-attention.yaml")["matrix_steps"]}
    assert steps["dL/dS"]["expr"] == "A * (dL_dA - sum(A * dL_dA, 1))"
    assert steps["dL/dS"]["latex"] == (r"A \odot \left(\frac{\partial L}{\partial A} - \left(A \odot "
                                       r"\frac{\partial L}{\partial A}\right) \mathbf{1} \mathbf{1}^{\top}\right)")


def test_a_spec_mixing_the_operations_matches_its_numpy_vjps_and_finite_differences():
    """conv1d with stride and padding, leaky_relu with a slope, elu, the constant pi, avgpool2d,
    maximum / minimum / abs, max along an axis: read from spec text, derived, checked."""
    data = {"inputs": {"x": {"shape": [2, 9], "value": [[0.1 * i - 0.3 * j for i in range(9)] for j in range(2)]},
                       "M": {"shape": [4, 5], "value": [[((i * 7 + j * 3) % 5) / 4 - 0.4 for j in range(5)]
                                                        for i in range(4)]}},
            "parameters": {"k": {"shape": [3, 2, 3], "value": [[[0.1 * (a - b + c) for c in range(3)] for b in range(2)]
                                                               for a in range(3)]},
                           "w": {"shape": [5], "value": [0.5, -0.2, 0.3, 0.1, -0.4]}},
            "forward": {"y": "conv1d(x, k, 2, 1)", "a": "leaky_relu(y, 0.1) + elu(y) * pi",
                        "P": "avgpool2d(M * w, 2, 1)", "q": "maximum(abs(P), 0.1) - minimum(P, 0)",
                        "m": "max(a, 1)"},
            "loss": "sum(m) + sum(mean(q, 0))"}
    mf = MatrixForm.from_data(data)
    x, M, k, w = (np.asarray(data[s][n]["value"], float) for s, n in
                  (("inputs", "x"), ("inputs", "M"), ("parameters", "k"), ("parameters", "w")))
    # the forward pass by hand: conv1d as loops, pooling as window means
    xp = np.pad(x, ((0, 0), (1, 1)))
    y = np.array([[sum(xp[c, 2 * j + b] * k[o, c, b] for c in range(2) for b in range(3)) for j in range(5)]
                  for o in range(3)])
    a = np.where(y > 0, y, 0.1 * y) + np.where(y > 0, y, np.exp(y) - 1) * math.pi
    Mw = M * w
    P = np.array([[Mw[i:i + 2, j:j + 2].mean() for j in range(4)] for i in range(3)])
    q = np.maximum(np.abs(P), 0.1) - np.minimum(P, 0)
    assert float(mf.values[mf.loss]) == pytest.approx(a.max(axis=1).sum() + q.mean(axis=0).sum(), rel=1e-13)
    assert all(c["passed"] for c in mf.checks) and len(mf.checks) >= 2
    step = {s.name: s for s in mf.steps}
    assert step["dL/dy"].spec == "dL_da * (leaky_relu_grad(y, 0.1) + pi * elu_grad(y, 1))"
    assert step["dL/dk"].latex == (r"\operatorname{pad}_{1}\left(x\right) \star "
                                   r"\operatorname{dil}_{2}\left(\frac{\partial L}{\partial y}\right)")
