r"""Vanishing and exploding gradients, computed.

Through an RNN the gradient reaching H_k from H_T is multiplied by

    dH_T/dH_k = prod_{j=k+1..T} diag(f'(Z_j)) W,

so its norm shrinks or grows about geometrically in T - k, depending on
the largest singular value of W (the weight scale) and on f' (at most 1 for
tanh, at most 1/4 for the sigmoid).  Along an LSTM's cell state the same
factor is dc_T/dc_k = prod_{j=k+1..T} diag(f_j): only the forget gates, with
no weight matrix and no squashing derivative, so it stays near 1 when the
forget gates are open.

Everything here is computed with plain numpy from fixed seeds (deterministic).

>>> rows = study(T=12)
>>> r = next(r for r in rows if r["label"] == "tanh, scale 0.5")
>>> r["norms"][1] < r["norms"][0] and len(r["norms"]) == 12
True
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.engine.ops import OPS

#: hidden size and random seed of the study
HIDDEN = 8
SEED = 0
#: scales of W (times an orthogonal matrix) studied, per activation
SCALES = {"tanh": (0.5, 0.9, 1.1, 1.5), "sigmoid": (1.0, 4.0, 6.0)}
#: scale of the input weights: small, so that the units work near their
#: steepest point (f' near its maximum) and W alone decides the trend
INPUT_SCALE = 0.01
#: forget-gate biases studied for the LSTM cell path
FORGET_BIASES = (0.0, 2.0, 5.0)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _weights(scale: float, rng) -> np.ndarray:
    """``scale`` times a random orthogonal matrix: every singular value and
    every |eigenvalue| of W is ``scale``, so ||W^m|| = scale^m exactly."""
    q, r = np.linalg.qr(rng.standard_normal((HIDDEN, HIDDEN)))
    return scale * q * np.sign(np.diag(r))


def rnn_jacobian_norms(act: str, scale: float, T: int, seed: int = SEED) -> list:
    """||dH_T/dH_k||_2 for T - k = 1 .. T (k = T-1 down to 0), one fixed sequence.

    H_t = f(U x_t + W H_{t-1}), with U, the inputs x_t and W drawn from
    ``seed`` (W = ``scale`` times an orthogonal matrix), H_0 = 0.
    """
    rng = np.random.default_rng(seed)
    W = _weights(scale, rng)
    U = rng.standard_normal((HIDDEN, HIDDEN)) * INPUT_SCALE
    xs = rng.standard_normal((T, HIDDEN))
    h = np.zeros(HIDDEN)
    derivs = []
    for t in range(T):
        z = U @ xs[t] + W @ h
        if act == "tanh":
            h = np.tanh(z)
            derivs.append(1.0 - h * h)
        else:
            h = _sigmoid(z)
            derivs.append(h * (1.0 - h))
    J = np.eye(HIDDEN)
    norms = []
    for j in range(T - 1, -1, -1):          # multiply in dH_j/dH_{j-1}, going back
        J = J @ (derivs[j][:, None] * W)
        norms.append(float(np.linalg.norm(J, 2)))
    return norms


def lstm_cell_path_norms(forget_bias: float, T: int, seed: int = SEED) -> list:
    """||dc_T/dc_k||_2 = max_i |prod_j f_{j,i}| for T - k = 1 .. T, along the
    cell state only (the path through c_{t-1} -> c_t), for an LSTM with
    random weights from ``seed`` and forget-gate bias ``forget_bias``."""
    rng = np.random.default_rng(seed)
    n = HIDDEN
    Wf, Wi, Wo, Wc = (rng.standard_normal((n, 2 * n)) * 0.5 for _ in range(4))
    xs = rng.standard_normal((T, n))
    h, c = np.zeros(n), np.zeros(n)
    forgets = []
    for t in range(T):
        v = np.concatenate([h, xs[t]])
        f = _sigmoid(Wf @ v + forget_bias)
        i = _sigmoid(Wi @ v)
        o = _sigmoid(Wo @ v)
        g = np.tanh(Wc @ v)
        c = f * c + i * g
        h = o * np.tanh(c)
        forgets.append(f)
    prod = np.ones(n)
    norms = []
    for j in range(T - 1, -1, -1):
        prod = prod * forgets[j]
        norms.append(float(np.max(np.abs(prod))))
    return norms


#: a derivative rule is maximised symbolically only as a polynomial in the
#: output of at most this degree (bounded work)
SUP_MAX_DEGREE = 4


@lru_cache(maxsize=None)
def derivative_sup(op: str) -> dict:
    """The supremum of f'(x) over real x for an activation of the operation
    table, from its derivative rule f' = r(y) written in the output y = f(x):
    r is maximised over the range of f (its limits at -oo and +oo).

    Returns {"sup": exact value, "at_output": y where it is reached (None if
    only approached), "range": (inf f, sup f)}.

    >>> derivative_sup("sigmoid")["sup"], derivative_sup("tanh")["sup"], derivative_sup("sigmoid")["at_output"]
    (1/4, 1, 1/2)
    """
    x, y = sympy.Symbol("x", real=True), sympy.Symbol("y", real=True)
    rule = OPS[op].derivative(x, y)
    if x in rule.free_symbols or not rule.is_polynomial(y) or sympy.degree(rule, y) > SUP_MAX_DEGREE:
        raise ValueError(f"{op}: its derivative rule {rule} is not a small polynomial in the output")
    f = OPS[op].sympy(x).rewrite(sympy.exp)
    lo, hi = sympy.limit(f, x, -sympy.oo), sympy.limit(f, x, sympy.oo)
    lo, hi = min(lo, hi), max(lo, hi)
    inside = [c for c in sympy.solve(sympy.diff(rule, y), y) if c.is_real and lo < c < hi]
    cands = [(rule.subs(y, c), c) for c in inside]
    cands += [(sympy.limit(rule, y, end, d), None) for end, d in ((lo, "+"), (hi, "-")) if end.is_finite]
    best = max(v for v, _ in cands)
    at = next((c for v, c in cands if v == best and c is not None), None)
    return {"sup": best, "at_output": at, "range": (lo, hi)}


def derivative_sup_numeric(op: str, span: float = 30.0, points: int = 600001) -> float:
    """The largest f'(x) on a fine grid of [-span, span], from the table's
    numpy form and vector-Jacobian product (an independent check of
    :func:`derivative_sup`)."""
    xs = np.linspace(-span, span, points)
    return float(np.max(OPS[op].vjp(np.ones_like(xs), xs, OPS[op].numpy(xs))))


def study(T: int = 30) -> list:
    """Every series of the study: {"label", "kind", "norms"} (norms[m-1] at T - k = m)."""
    out = []
    for act, scales in SCALES.items():
        for s in scales:
            out.append({"label": f"{act}, scale {s:g}", "kind": act,
                        "norms": rnn_jacobian_norms(act, s, T)})
    for b in FORGET_BIASES:
        out.append({"label": f"LSTM cell path, forget bias {b:g}", "kind": "lstm",
                    "norms": lstm_cell_path_norms(b, T)})
    return out


def per_step_factor(norms: list) -> float:
    """The geometric mean factor per step, (||J_{T-k}|| / ||J_1||)^(1/(T-k-1))."""
    m = len(norms)
    if m < 2 or norms[0] <= 0 or norms[-1] <= 0:
        return 0.0
    return float((norms[-1] / norms[0]) ** (1.0 / (m - 1)))


def vanishing_blocks(T: int = 30, shown=(1, 5, 10, 20, 30)) -> list:
    """The section of the worked solution: the argument, a plot and its numbers."""
    series = study(T)
    xs = list(range(1, T + 1))
    figure = B.Figure("plot", {
        "xlabel": B.Tex("$T - k$ (steps back)"), "ylabel": "spectral norm of the Jacobian", "logy": True,
        "series": [{"label": s["label"], "x": xs, "y": s["norms"]} for s in series]},
        caption=B.Tex("Spectral norm of the Jacobian of the last hidden state with respect to the state "
                      "$T - k$ steps back, for $\\tanh$ and sigmoid RNNs at several weight scales (the "
                      "recurrent matrix is the scale times an orthogonal matrix), and of the same Jacobian "
                      "along an LSTM's cell state"),
        label="fig:vanishing")
    cols = [m for m in shown if m <= T]
    header = ("series",) + tuple(B.Math(f"T - k = {m}", f"T-k={m}") for m in cols) + ("factor per step",)
    rows = []
    for s in series:
        rows.append((s["label"],) + tuple(_fmt(s["norms"][m - 1]) for m in cols)
                    + (_fmt(per_step_factor(s["norms"])),))
    tex = r"\frac{\partial H_{T}}{\partial H_{k}} = \prod_{j=k+1}^{T} \operatorname{diag}\left(f'(Z_{j})\right) W"
    sup = {op: derivative_sup(op)["sup"] for op in ("tanh", "sigmoid")}
    return [
        B.Heading("Vanishing and exploding gradients"),
        B.tex_prose("The gradient that reaches an early state $H_k$ from the error at step $T$ is multiplied "
                    "by one Jacobian per step in between:"),
        B.Equations((B.EqRow(B.Math(r"\frac{\partial H_{T}}{\partial H_{k}}", "dH_T/dH_k"),
                             (B.Math(tex.split(" = ", 1)[1], "prod_{j=k+1..T} diag(f'(Z_j)) W"),)),)),
        B.prose(B.Tex("Its norm is at most the product of $\\lVert \\operatorname{diag}(f'(Z_j)) \\rVert\\, "
                      "\\lVert W \\rVert$ over the $T - k$ steps, with "
                      f"$f' \\le {_frac_tex(sup['tanh'])}$ for $\\tanh$ and $f' \\le {_frac_tex(sup['sigmoid'])}$ "
                      "for the sigmoid $\\sigma$ (the largest values of their derivatives, $1 - y^2$ and "
                      "$y(1 - y)$, over the range of $y$): when that factor is below 1 the gradient vanishes "
                      "geometrically with $T - k$, when the weights are large enough it can explode. Along the "
                      "LSTM's cell state ($c_t = f_t \\odot c_{t-1} + i_t \\odot g_t$) the factor is "),
                B.Math(r"\frac{\partial c_{T}}{\partial c_{k}} = \prod_{j=k+1}^{T} \operatorname{diag}(f_{j})",
                       "dc_T/dc_k = prod_{j=k+1..T} diag(f_j)"),
                B.Tex(": no weight matrix and no squashing derivative, so with open forget gates it stays "
                      f"near 1. Computed for a hidden size of {HIDDEN}, random weights (numpy seed {SEED}), "
                      f"$W$ = scale times a random orthogonal matrix, input weights scaled by {INPUT_SCALE}, "
                      "random inputs, $H_0 = 0$:")),
        figure,
        B.Table(header, tuple(rows), caption="Spectral norms behind the plot, and the geometric-mean "
                                             "factor per step over the whole range", align="l" + "r" * (len(cols) + 1)),
    ]


def _fmt(x: float) -> B.Math:
    """A norm at 3 significant digits, powers of ten as ×10ⁿ."""
    s = f"{x:.3g}"
    if "e" in s:
        mant, exp = s.split("e")
        return B.Math(rf"{mant} \times 10^{{{int(exp)}}}", s)
    return B.Math(s, s)


def _frac_tex(x) -> str:
    import sympy

    q = sympy.nsimplify(x)
    return sympy.latex(q) if q.is_Rational else f"{float(x):g}"
