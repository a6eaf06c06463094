"""The nn operations of the contract's "Tensor operations" table.

Each operation's numpy VJP is checked three ways: against central
differences along random directions (max_vjp_error), against the full
finite-difference Jacobian on small shapes, and against an independent
implementation written here with plain loops and ``math`` (never the
package's kernels).  Each matrix rule, evaluated by running its printed numpy
code, equals the VJP.  Then torch's semantics (ties, abs at 0, floor-mode
pooling, GELU forms, slopes, large logits), shape errors, printed LaTeX and
generated helpers.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import derive.engine  # noqa: F401  (fills the registry)
from derive.engine import exprs as X
from derive.engine.nn_exprs import numpy_helpers
from derive.engine.reverse import _fit
from derive.engine.tensor_op import TENSOR_OPS, ShapeError, max_vjp_error

RNG = np.random.default_rng(7)


# --- independent implementations: loops over entries, math for functions ----

def _slices(shape, axis):
    """Index tuples of every 1-D slice along ``axis`` (None: one slice of all)."""
    if axis is None:
        yield None
        return
    others = [range(n) if k != axis else [slice(None)] for k, n in enumerate(shape)]
    yield from itertools.product(*others)


def ref_softmax(x, axis, G, log=False):
    out, grad = np.zeros(x.shape), np.zeros(x.shape)
    for idx in _slices(x.shape, axis):
        v = x.ravel() if idx is None else x[idx]
        g = G.ravel() if idx is None else G[idx]
        m = max(v)
        e = [math.exp(a - m) for a in v]
        s = sum(e)
        p = [a / s for a in e]
        n = len(v)
        if log:
            y = [v[i] - m - math.log(s) for i in range(n)]
            jac = [[(1.0 if i == j else 0.0) - p[j] for j in range(n)] for i in range(n)]
        else:
            y = p
            jac = [[p[i] * ((1.0 if i == j else 0.0) - p[j]) for j in range(n)] for i in range(n)]
        dx = [sum(g[i] * jac[i][j] for i in range(n)) for j in range(n)]
        if idx is None:
            out, grad = np.reshape(y, x.shape), np.reshape(dx, x.shape)
        else:
            out[idx], grad[idx] = y, dx
    return out, grad


def ref_reduce(x, axis, G, kind):
    """sum / mean / max along an axis (keepdims) and the gradient, by loops."""
    out_shape = () if axis is None else tuple(1 if k == axis else n for k, n in enumerate(x.shape))
    out, grad = np.zeros(out_shape), np.zeros(x.shape)
    Gf = np.asarray(G, float)
    for idx in _slices(x.shape, axis):
        cells = list(np.ndindex(x.shape)) if idx is None else \
            [tuple(i if not isinstance(i, slice) else j for i in idx) for j in range(x.shape[axis])]
        vals = [x[c] for c in cells]
        oidx = () if idx is None else tuple(0 if isinstance(i, slice) else i for i in idx)
        g = Gf[oidx]
        if kind == "sum":
            out[oidx] = sum(vals)
            for c in cells:
                grad[c] = g
        elif kind == "mean":
            out[oidx] = sum(vals) / len(vals)
            for c in cells:
                grad[c] = g / len(vals)
        else:
            m = max(vals)
            ties = [c for c in cells if x[c] == m]
            out[oidx] = m
            for c in ties:
                grad[c] = g / len(ties)
    return out, grad


def ref_conv2d(x, k, stride, pad, G=None):
    """Cross-correlation C x H x W with O x C x kh x kw by seven loops."""
    C, H, W = x.shape
    O, _, kh, kw = k.shape
    oh, ow = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    y = np.zeros((O, oh, ow))
    dx, dk = np.zeros(x.shape), np.zeros(k.shape)
    for o, i, j, c, a, b in itertools.product(range(O), range(oh), range(ow), range(C), range(kh), range(kw)):
        u, v = i * stride + a - pad, j * stride + b - pad
        if 0 <= u < H and 0 <= v < W:
            y[o, i, j] += x[c, u, v] * k[o, c, a, b]
            if G is not None:
                dk[o, c, a, b] += x[c, u, v] * G[o, i, j]
                dx[c, u, v] += k[o, c, a, b] * G[o, i, j]
    return y, dx, dk


def ref_pool(x, size, stride, G, kind):
    """Max / average pooling of H x W by loops; a max tie goes to the first in row-major order."""
    H, W = x.shape
    oh, ow = (H - size) // stride + 1, (W - size) // stride + 1
    y, dx = np.zeros((oh, ow)), np.zeros(x.shape)
    for i, j in itertools.product(range(oh), range(ow)):
        cells = [(i * stride + a, j * stride + b) for a in range(size) for b in range(size)]
        if kind == "max":
            best = cells[0]
            for c in cells:
                if x[c] > x[best]:
                    best = c
            y[i, j] = x[best]
            dx[best] += G[i, j]
        else:
            y[i, j] = sum(x[c] for c in cells) / size ** 2
            for c in cells:
                dx[c] += G[i, j] / size ** 2
    return y, dx


SCALAR_REFS = {   # f(x), f'(x) with math, torch's values at the kinks
    "abs": (abs, lambda x: 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)),
    "gelu": (lambda x: x * 0.5 * (1 + math.erf(x / math.sqrt(2))),
             lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2))) + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi)),
    "gelu_tanh": (lambda x: 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
                  lambda x: (lambda t: 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * math.sqrt(2 / math.pi)
                             * (1 + 3 * 0.044715 * x * x))(math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    "elu": (lambda x: x if x > 0 else math.exp(x) - 1, lambda x: 1.0 if x > 0 else math.exp(x)),
    "leaky_relu": (lambda x: x if x > 0 else 0.01 * x, lambda x: 1.0 if x > 0 else 0.01),
    "erf": (math.erf, lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x)),
    # the derivatives the rules print, as spec functions, and their own derivatives
    "gelu_grad": (lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2))) + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi),
                  lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi) * (2 - x * x)),
    "elu_grad": (lambda x: 1.0 if x > 0 else math.exp(x), lambda x: 0.0 if x > 0 else math.exp(x)),
    "leaky_relu_grad": (lambda x: 1.0 if x > 0 else 0.01, lambda x: 0.0),
}


def _gelu_tanh_second(x):
    """d/dx of (1 + t)/2 + x (1 - t^2) u'/2 by the product rule, term by term."""
    c, a = math.sqrt(2 / math.pi), 0.044715
    t = math.tanh(c * (x + a * x ** 3))
    du, ddu = c * (1 + 3 * a * x * x), 6 * a * c * x
    dt = (1 - t * t) * du
    return dt / 2 + (1 - t * t) * du / 2 + x * (-2 * t * dt) * du / 2 + x * (1 - t * t) * ddu / 2


SCALAR_REFS["gelu_tanh_grad"] = (SCALAR_REFS["gelu_tanh"][1], _gelu_tanh_second)


def reference(name, xs, p, G):
    """(forward, [gradient of each input]) by the implementations above."""
    if name in ("softmax", "log_softmax"):
        y, d = ref_softmax(xs[0], p["axis"] if xs[0].ndim > 1 else None, G, log=name == "log_softmax")
        return y, [d]
    if name in ("sum", "mean", "max"):
        y, d = ref_reduce(xs[0], p["axis"], G, name)
        return y, [d]
    if name in SCALAR_REFS:
        f, df = SCALAR_REFS[name]
        x = xs[0]
        return (np.vectorize(f, otypes=[float])(x), [G * np.vectorize(df, otypes=[float])(x)])
    if name == "amax_share":
        ties = xs[0] == xs[0].max(axis=p["axis"], keepdims=True)
        return ties / ties.sum(axis=p["axis"], keepdims=True), [np.zeros(xs[0].shape)]
    if name in ("maximum", "minimum"):
        A, B = np.broadcast_arrays(*xs)
        y, dA, dB = np.zeros(A.shape), np.zeros(A.shape), np.zeros(A.shape)
        for c in np.ndindex(A.shape):
            a, b = A[c], B[c]
            win_a = (a > b) if name == "maximum" else (a < b)
            y[c] = a if win_a or a == b else b
            share = 0.5 if a == b else float(win_a)
            dA[c], dB[c] = G[c] * share, G[c] * (1 - share)
        return y, [_sum_back(dA, xs[0].shape), _sum_back(dB, xs[1].shape)]
    if name == "reshape":     # entries in row-major order, copied one by one
        sizes = tuple(p[k] for k in ("rows", "cols", "n3", "n4") if p.get(k) is not None)
        flat = [xs[0][c] for c in np.ndindex(xs[0].shape)]
        out, back = np.zeros(sizes), np.zeros(xs[0].shape)
        for n, c in enumerate(np.ndindex(sizes)):
            out[c] = flat[n]
        gflat = [G[c] for c in np.ndindex(sizes)]
        for n, c in enumerate(np.ndindex(xs[0].shape)):
            back[c] = gflat[n]
        return out, [back]
    if name == "flatten":
        flat = [xs[0][c] for c in np.ndindex(xs[0].shape)]       # row-major order
        back = np.zeros(xs[0].shape)
        for n, c in enumerate(np.ndindex(xs[0].shape)):
            back[c] = G[n]
        return np.array(flat), [back]
    if name == "conv2d":
        x, k = xs
        x3 = x if x.ndim == 3 else x[None]
        k4 = k if k.ndim == 4 else k[None, None]
        G3 = G if G.ndim == 3 else G[None]
        y, dx, dk = ref_conv2d(x3, k4, p["stride"], p["padding"], G3)
        return y.reshape(np.shape(G)), [dx.reshape(x.shape), dk.reshape(k.shape)]
    if name == "conv1d":
        x, k = xs
        x3 = (x if x.ndim == 2 else x[None])[:, None, :]
        k4 = (k if k.ndim == 3 else k[None, None])[:, :, None, :]
        G3 = (G if G.ndim == 2 else G[None])[:, None, :]
        # one row: stride and padding along the width only
        y, dx, dk = _ref_conv1d(x3, k4, p["stride"], p["padding"], G3)
        return y.reshape(np.shape(G)), [dx.reshape(x.shape), dk.reshape(k.shape)]
    if name in ("maxpool2d", "avgpool2d"):
        x = xs[0]
        s = p["size"] if p["stride"] is None else p["stride"]
        ys, ds = [], []
        for lead in np.ndindex(x.shape[:-2]):
            y, d = ref_pool(x[lead], p["size"], s, G[lead], name[:3])
            ys.append(y); ds.append(d)
        return (np.array(ys).reshape(np.shape(G)), [np.array(ds).reshape(x.shape)])
    if name in ("xcorr2d", "conv_transpose2d", "xcorr1d", "conv_transpose1d"):
        return _ref_conv_gradient(name, xs, p, G)
    if name in ("maxunpool2d", "avgunpool2d", "maxpool2d_at"):
        return _ref_unpool(name, xs, p, G)
    if name == "sum_to":
        x = xs[0]
        sizes = tuple(p[k] for k in ("rows", "cols", "n3", "n4") if p.get(k) is not None)
        back = np.zeros(x.shape)
        for c in np.ndindex(x.shape):      # each entry takes the adjoint of the entry it was summed into
            tail = c[len(c) - len(sizes):]
            back[c] = G[tuple(0 if n == 1 else i for n, i in zip(sizes, tail))]
        return _sum_back(x, sizes), [back]
    raise KeyError(name)


def _as_chw(A, spatial):
    """A 1-D or 2-D map as C x 1 x W (C x H x W) for the loop references."""
    A = A if A.ndim == spatial + 1 else A[None]
    return A[:, None, :] if spatial == 1 else A


def _ref_conv_gradient(name, xs, p, G):
    """xcorr (dL/dK of a conv) and conv_transpose (dL/dX) through the seven
    loops of ref_conv2d: xcorr(X, D) is the dk of conv(X, .) under upstream D,
    conv_transpose(D, K) the dx of conv(., K) under D; their VJPs are the conv's
    forward and its other gradient."""
    spatial = 1 if name.endswith("1d") else 2
    s, pad = p["stride"], p["padding"]
    ref = _ref_conv1d if spatial == 1 else (lambda x, k, st, pd, g: ref_conv2d(x, k, st, pd, g))

    def kernel4(K):
        K = K if K.ndim == spatial + 2 else K[None, None]
        return K[:, :, None, :] if spatial == 1 else K

    if name.startswith("xcorr"):
        X, D = xs
        out_shape = TENSOR_OPS[name].shape((X.shape, D.shape), p)
        x3, d3 = _as_chw(X, spatial), _as_chw(D, spatial)
        _, _, dk = ref(x3, kernel4(np.zeros(out_shape)), s, pad, d3)
        Wbar = kernel4(G)
        y, dx, _ = ref(x3, Wbar, s, pad, d3)      # dx: conv_transpose(D, Wbar); y: conv(X, Wbar)
        return dk.reshape(out_shape), [dx.reshape(X.shape), y.reshape(D.shape)]
    D, K = xs
    out_shape = TENSOR_OPS[name].shape((D.shape, K.shape), p)
    d3, k4 = _as_chw(D, spatial), kernel4(K)
    zero = _as_chw(np.zeros(out_shape), spatial)
    _, dx, _ = ref(zero, k4, s, pad, d3)
    ybar = _as_chw(G, spatial)
    y, _, dk = ref(ybar, k4, s, pad, d3)            # y: conv(Ybar, K); dk: xcorr(Ybar, D)
    return dx.reshape(out_shape), [y.reshape(D.shape), dk.reshape(K.shape)]


def _ref_unpool(name, xs, p, G):
    """The gradients of pooling by the loops of ref_pool, map by map."""
    A, X = xs
    s = p["size"] if p["stride"] is None else p["stride"]
    outs, backs = [], []
    for lead in np.ndindex(X.shape[:-2]):
        if name == "maxpool2d_at":          # A: the values read at X's first maxima
            H, W = X.shape[-2:]
            oh, ow = (H - p["size"]) // s + 1, (W - p["size"]) // s + 1
            y = np.zeros((oh, ow))
            for i, j in itertools.product(range(oh), range(ow)):
                one = np.zeros((oh, ow)); one[i, j] = 1.0
                y[i, j] = np.sum(ref_pool(X[lead], p["size"], s, one, "max")[1] * A[lead])
            outs.append(y)
            backs.append(ref_pool(X[lead], p["size"], s, G[lead], "max")[1])
        else:
            kind = name[:3]
            outs.append(ref_pool(X[lead], p["size"], s, A[lead], kind)[1])
            if kind == "avg":
                backs.append(ref_pool(G[lead], p["size"], s, np.zeros(A[lead].shape), "avg")[0])
            else:
                back = np.zeros(A[lead].shape)
                for i, j in itertools.product(*map(range, A[lead].shape)):
                    one = np.zeros(A[lead].shape); one[i, j] = 1.0
                    back[i, j] = np.sum(ref_pool(X[lead], p["size"], s, one, "max")[1] * G[lead])
                backs.append(back)
    out_shape = X.shape if name != "maxpool2d_at" else G.shape
    return np.array(outs).reshape(out_shape), [np.array(backs).reshape(A.shape), np.zeros(X.shape)]


def _ref_conv1d(x, k, stride, pad, G):
    C, _, L = x.shape
    O, _, _, kw = k.shape
    ol = (L + 2 * pad - kw) // stride + 1
    y, dx, dk = np.zeros((O, 1, ol)), np.zeros(x.shape), np.zeros(k.shape)
    for o, j, c, b in itertools.product(range(O), range(ol), range(C), range(kw)):
        v = j * stride + b - pad
        if 0 <= v < L:
            y[o, 0, j] += x[c, 0, v] * k[o, c, 0, b]
            dk[o, c, 0, b] += x[c, 0, v] * G[o, 0, j]
            dx[c, 0, v] += k[o, c, 0, b] * G[o, 0, j]
    return y, dx, dk


def _sum_back(g, shape):
    """Sum a broadcast gradient back to ``shape`` by loops over the output."""
    out = np.zeros(shape)
    nd = len(shape)
    for c in np.ndindex(g.shape):
        tail = c[len(c) - nd:] if nd else ()
        out[tuple(0 if shape[i] == 1 else tail[i] for i in range(nd))] += g[c]
    return out


CASES = [
    ("softmax", [(5,)], {}), ("softmax", [(3, 4)], {"axis": 1}), ("softmax", [(3, 4)], {"axis": 0}),
    ("softmax", [(2, 3, 4)], {"axis": 2}),
    ("log_softmax", [(5,)], {}), ("log_softmax", [(3, 4)], {"axis": 1}), ("log_softmax", [(3, 4)], {"axis": 0}),
    ("sum", [(3, 4)], {"axis": 1}), ("sum", [(3, 4)], {"axis": 0}), ("sum", [(3, 4)], {}),
    ("sum", [(2, 3, 2)], {"axis": 1}),
    ("mean", [(3, 4)], {"axis": 1}), ("mean", [(3, 4)], {}), ("mean", [(2, 3, 4)], {"axis": 0}),
    ("max", [(3, 4)], {"axis": 1}), ("max", [(3, 4)], {"axis": 0}), ("max", [(3, 4)], {}), ("max", [(5,)], {}),
    ("maximum", [(3, 4), (3, 4)], {}), ("maximum", [(3, 4), (4,)], {}), ("minimum", [(3, 4), (3, 1)], {}),
    ("minimum", [(4,), ()], {}),
    ("abs", [(3, 4)], {}), ("gelu", [(3, 4)], {}), ("gelu_tanh", [(3, 4)], {}), ("elu", [(3, 4)], {}),
    ("leaky_relu", [(3, 4)], {}), ("erf", [(3, 4)], {}),
    ("gelu_grad", [(3, 4)], {}), ("gelu_tanh_grad", [(3, 4)], {}), ("elu_grad", [(5,)], {}),
    ("leaky_relu_grad", [(5,)], {}), ("amax_share", [(3, 4)], {"axis": 1}),
    ("reshape", [(3, 4)], {"rows": 2, "cols": 6}), ("reshape", [(2, 3, 2)], {"rows": 3, "cols": 4}),
    ("flatten", [(2, 3, 4)], {}), ("reshape", [(6, 4)], {"rows": 2, "cols": 3, "n3": 4}),
    ("conv2d", [(5, 5), (3, 3)], {}), ("conv2d", [(2, 6, 5), (3, 2, 3, 2)], {"stride": 2, "padding": 1}),
    ("conv2d", [(1, 4, 4), (2, 1, 1, 1)], {}),
    ("conv1d", [(7,), (3,)], {}), ("conv1d", [(2, 9), (3, 2, 3)], {"stride": 2, "padding": 1}),
    ("maxpool2d", [(4, 4)], {"size": 2}), ("maxpool2d", [(2, 5, 5)], {"size": 3, "stride": 1}),
    ("maxpool2d", [(2, 2, 7, 6)], {"size": 2, "stride": 3}),
    ("avgpool2d", [(4, 4)], {"size": 2}), ("avgpool2d", [(2, 5, 5)], {"size": 3, "stride": 1}),
    # the gradients of convolution and pooling, operations of their own
    ("xcorr2d", [(5, 5), (3, 3)], {}), ("xcorr2d", [(2, 6, 5), (3, 3, 3)], {"stride": 2, "padding": 1}),
    ("xcorr2d", [(2, 6, 5), (3, 3, 3)], {"stride": 2, "padding": 1, "rows": 3, "cols": 2}),
    ("conv_transpose2d", [(3, 3), (3, 3)], {}),
    ("conv_transpose2d", [(3, 3, 3), (3, 2, 3, 2)], {"stride": 2, "padding": 1, "output_padding": 1,
                                                     "output_padding_cols": 0}),
    ("xcorr1d", [(7,), (5,)], {}), ("xcorr1d", [(2, 9), (3, 5)], {"stride": 2, "padding": 1}),
    ("conv_transpose1d", [(5,), (3,)], {}),
    ("conv_transpose1d", [(3, 5), (3, 2, 3)], {"stride": 2, "padding": 1, "output_padding": 1}),
    ("maxunpool2d", [(2, 2), (4, 4)], {"size": 2}), ("maxunpool2d", [(2, 3, 3), (2, 5, 5)], {"size": 3, "stride": 1}),
    ("maxpool2d_at", [(5, 5), (5, 5)], {"size": 2}), ("maxpool2d_at", [(2, 5, 5), (2, 5, 5)], {"size": 3, "stride": 1}),
    ("avgunpool2d", [(2, 2), (4, 4)], {"size": 2}), ("avgunpool2d", [(2, 3, 3), (2, 5, 5)], {"size": 3, "stride": 1}),
    ("sum_to", [(3, 4)], {"rows": 4}), ("sum_to", [(2, 3, 4)], {"rows": 2, "cols": 1, "n3": 4}),
]
IDS = [f"{n}-{'-'.join('x'.join(map(str, s)) or 'scalar' for s in sh)}-{p}" for n, sh, p in CASES]


def _setup(name, shapes, params, rng=RNG):
    op = TENSOR_OPS[name]
    p = op.params_of(()); p.update(params)
    xs = [rng.standard_normal(s) for s in shapes]
    out = op.forward(tuple(xs), p)
    G = rng.standard_normal(np.shape(out))
    return op, p, xs, out, G


@pytest.mark.parametrize("name,shapes,params", CASES, ids=IDS)
def test_vjp_against_central_differences(name, shapes, params):
    op, p, xs, out, G = _setup(name, shapes, params)
    assert tuple(op.shape(tuple(shapes), p)) == np.shape(out)
    assert max_vjp_error(op, xs, p) < 1e-7


@pytest.mark.parametrize("name,shapes,params", CASES, ids=IDS)
def test_forward_and_vjp_against_independent_loops(name, shapes, params):
    op, p, xs, out, G = _setup(name, shapes, params)
    y, grads = reference(name, xs, p, G)
    np.testing.assert_allclose(out, y, rtol=1e-12, atol=1e-13)
    for i, g in enumerate(grads):
        np.testing.assert_allclose(op.vjp(i, G, tuple(xs), out, p), g, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("name,shapes,params", CASES, ids=IDS)
def test_full_jacobian_by_finite_differences(name, shapes, params):
    """Every column of the Jacobian by central differences = the VJP of each basis vector."""
    op, p, xs, out, _ = _setup(name, shapes, params)
    h = 1e-6
    for i, x in enumerate(xs):
        J_fd = np.zeros((np.size(out), x.size))
        for k in range(x.size):
            d = np.zeros(x.size); d[k] = h
            plus = list(xs); plus[i] = x + d.reshape(x.shape)
            minus = list(xs); minus[i] = x - d.reshape(x.shape)
            J_fd[:, k] = ((op.forward(tuple(plus), p) - op.forward(tuple(minus), p)) / (2 * h)).ravel()
        J_vjp = np.zeros_like(J_fd)
        for r in range(np.size(out)):
            e = np.zeros(np.size(out)); e[r] = 1.0
            J_vjp[r] = np.ravel(op.vjp(i, e.reshape(np.shape(out)), tuple(xs), out, p))
        np.testing.assert_allclose(J_vjp, J_fd, atol=2e-8)


@pytest.mark.parametrize("name,shapes,params", CASES, ids=IDS)
def test_matrix_rule_evaluates_to_the_vjp(name, shapes, params):
    """The printed rule, run as its numpy code (as matrix steps and codegen do), equals the VJP;
    the symbolic forward equals the numeric forward."""
    op, p, xs, out, G = _setup(name, shapes, params)
    syms = tuple(X.TensorSymbol(f"x{i}", s) for i, s in enumerate(shapes))
    env = {f"x{i}": x for i, x in enumerate(xs)} | {"G": G, "Y": out}
    sG, sY = X.TensorSymbol("G", np.shape(out)), X.TensorSymbol("Y", np.shape(out))
    np.testing.assert_allclose(X.evaluate(op.symbolic(syms, p), env), out, rtol=1e-14, atol=1e-15)
    if op.rule is None:       # the derivatives printed inside rules: no rule of their own
        return
    for i, s in enumerate(shapes):
        rule = _fit(op.rule(i, sG, syms, sY, p), s)   # the reverse mode sums broadcasts back
        np.testing.assert_allclose(X.evaluate(rule, env), op.vjp(i, G, tuple(xs), out, p),
                                   rtol=1e-12, atol=1e-14)


# --- torch's semantics --------------------------------------------------------

def _vjp(name, xs, params, G=None):
    op = TENSOR_OPS[name]
    p = op.params_of(()); p.update(params)
    xs = tuple(np.asarray(x, float) for x in xs)
    out = op.forward(xs, p)
    G = np.ones(np.shape(out)) if G is None else np.asarray(G, float)
    return out, [op.vjp(i, G, xs, out, p) for i in range(len(xs))]


def test_max_shares_the_gradient_among_ties_as_amax():
    out, (g,) = _vjp("max", [[[1, 3, 3], [2, 2, 2]]], {"axis": 1})
    assert out.tolist() == [[3.0], [2.0]]
    np.testing.assert_allclose(g, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    out, (g,) = _vjp("max", [[[1, 4], [4, 0]]], {})
    assert float(out) == 4.0 and g.tolist() == [[0, 0.5], [0.5, 0]]


def test_maximum_and_minimum_ties_send_half_to_each_side():
    _, (ga, gb) = _vjp("maximum", [[1.0, 2.0, 3.0], [1.0, 5.0, 0.0]], {})
    assert ga.tolist() == [0.5, 0.0, 1.0] and gb.tolist() == [0.5, 1.0, 0.0]
    _, (ga, gb) = _vjp("minimum", [[1.0, 2.0, 3.0], [1.0, 5.0, 0.0]], {})
    assert ga.tolist() == [0.5, 1.0, 0.0] and gb.tolist() == [0.5, 0.0, 1.0]
    _, (ga, gb) = _vjp("maximum", [[[0.0, 2.0], [1.0, -1.0]], 1.0], {})   # a scalar broadcast
    assert ga.tolist() == [[0, 1], [0.5, 0]] and float(gb) == 0.5 + 1 + 1


def test_abs_at_zero_has_zero_gradient():
    _, (g,) = _vjp("abs", [[-2.0, 0.0, 3.0]], {})
    assert g.tolist() == [-1.0, 0.0, 1.0]


def test_maxpool_tie_goes_to_the_first_maximum_in_row_major_order():
    x = [[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 2.0, 2.0]]
    out, (g,) = _vjp("maxpool2d", [x], {"size": 2})
    assert out.tolist() == [[1.0, 2.0]]
    assert g.tolist() == [[1, 0, 0, 1], [0, 0, 0, 0]]
    # overlapping windows (stride 1) add their shares at a shared maximum
    _, (g,) = _vjp("maxpool2d", [[[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]], {"size": 2, "stride": 1})
    assert g.tolist() == [[0, 2, 0], [0, 0, 0]]


@pytest.mark.parametrize("hw,size,stride,out", [((5, 5), 2, None, (2, 2)), ((7, 7), 3, 2, (3, 3)),
                                               ((6, 9), 4, 4, (1, 2)), ((4, 4), 4, None, (1, 1))])
def test_pooling_floor_mode_sizes(hw, size, stride, out):
    for name in ("maxpool2d", "avgpool2d"):
        op = TENSOR_OPS[name]
        assert op.shape((hw,), {"size": size, "stride": stride}) == out
        assert op.shape(((3,) + hw,), {"size": size, "stride": stride}) == (3,) + out


def test_conv2d_stride_and_padding_by_hand():
    x = np.arange(16.0).reshape(4, 4)
    out, _ = _vjp("conv2d", [x, np.ones((2, 2))], {"stride": 2})
    assert out.tolist() == [[10.0, 18.0], [42.0, 50.0]]        # 0+1+4+5, 2+3+6+7, ...
    out, _ = _vjp("conv2d", [x, np.ones((3, 3))], {"padding": 1})
    assert out.shape == (4, 4) and out[0, 0] == 0 + 1 + 4 + 5 and out[1, 1] == sum([0, 1, 2, 4, 5, 6, 8, 9, 10])
    # a kernel that is not symmetric: cross-correlation, not flipped
    out, _ = _vjp("conv2d", [x, [[1.0, 0.0], [0.0, 0.0]]], {})
    assert out.tolist() == x[:3, :3].tolist()


def test_conv_output_sizes_follow_torch():
    op = TENSOR_OPS["conv2d"]
    assert op.shape(((3, 32, 32), (16, 3, 5, 5)), {"stride": 1, "padding": 2}) == (16, 32, 32)
    assert op.shape(((3, 7, 7), (4, 3, 3, 3)), {"stride": 2, "padding": 0}) == (4, 3, 3)
    assert op.shape(((8, 3, 7, 7), (4, 3, 3, 3)), {"stride": 2, "padding": 1}) == (8, 4, 4, 4)
    assert TENSOR_OPS["conv1d"].shape(((2, 10), (5, 2, 3)), {"stride": 3, "padding": 1}) == (5, 4)


def test_gelu_erf_form_is_torch_default_and_differs_from_tanh_form():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.5])
    erf_form = TENSOR_OPS["gelu"].forward((x,), {})
    tanh_form = TENSOR_OPS["gelu_tanh"].forward((x,), {})
    for v, a, b in zip(x, erf_form, tanh_form):
        assert a == pytest.approx(v / 2 * (1 + math.erf(v / math.sqrt(2))), abs=1e-15)
        assert b == pytest.approx(v / 2 * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3))),
                                  abs=1e-15)
    assert abs(erf_form[4] - tanh_form[4]) > 1e-4       # 0.8413447 vs 0.8411920 at x = 1


def test_leaky_relu_slope_and_elu_at_zero():
    out, (g,) = _vjp("leaky_relu", [[-2.0, 0.0, 3.0]], {})
    assert out.tolist() == [-0.02, 0.0, 3.0] and g.tolist() == [0.01, 0.01, 1.0]
    out, (g,) = _vjp("leaky_relu", [[-2.0, 0.0, 3.0]], {"slope": 0.2})
    assert out.tolist() == [-0.4, 0.0, 3.0] and g.tolist() == [0.2, 0.2, 1.0]
    out, (g,) = _vjp("elu", [[-1.0, 0.0, 1.0]], {"alpha": 2.0})
    assert out.tolist() == pytest.approx([2 * (math.exp(-1) - 1), 0.0, 1.0])
    assert g.tolist() == pytest.approx([2 * math.exp(-1), 2.0, 1.0])   # torch: alpha at 0


def test_log_softmax_and_softmax_stay_finite_at_logits_of_1000():
    x = np.array([1000.0, 1000.0, 0.0])
    out, (g,) = _vjp("log_softmax", [x], {}, G=[1.0, 0.0, 0.0])
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:2], -math.log(2), rtol=1e-15)
    assert out[2] == pytest.approx(-1000 - math.log(2), rel=1e-15)
    np.testing.assert_allclose(g, [0.5, -0.5, 0.0], atol=1e-15)
    out, _ = _vjp("softmax", [[[1000.0, 0.0], [-1000.0, -1000.0]]], {"axis": 1})
    assert out.tolist() == [[1.0, 0.0], [0.5, 0.5]]


def test_erf_is_within_two_ulp_of_math_erf():
    from derive.engine.nn_kernels import erf
    x = np.concatenate([np.linspace(-9, 9, 200_001), np.geomspace(1e-300, 2, 2000), -np.geomspace(1e-300, 2, 2000),
                        [0.0, 0.9999999, 1.0, 1.0000001, 7.9999, 8.0, 8.0001, 30.0, -30.0, np.inf, -np.inf]])
    want = np.array([math.erf(v) for v in x])
    got = erf(x)
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)) < 5e-16
    assert np.isnan(erf(np.array([np.nan]))[0]) and float(erf(0.5)) == math.erf(0.5)


def test_pi_is_the_constant():
    assert TENSOR_OPS["pi"].forward((), {}) == math.pi and TENSOR_OPS["pi"].shape((), {}) == ()


# --- shape errors: one line naming the operation and the sizes ----------------

@pytest.mark.parametrize("name,shapes,params,words", [
    ("conv2d", [(3, 3), (5, 5)], {}, "conv2d: kernel 5 x 5 larger than the input 3 x 3 with padding 0"),
    ("conv2d", [(2, 6, 6), (4, 3, 3, 3)], {}, "expects 3 input channels, the input 2 x 6 x 6 has 2"),
    ("conv2d", [(6, 6), (4, 1, 3, 3)], {}, "conv2d: input 6 x 6 and kernel 4 x 1 x 3 x 3 do not fit"),
    ("conv2d", [(6, 6), (3, 3)], {"stride": 0}, "conv2d: stride must be a whole number >= 1, got 0"),
    ("conv1d", [(2,), (3,)], {}, "conv1d: kernel 3 larger than the input 2"),
    ("maxpool2d", [(3, 3)], {"size": 4}, "maxpool2d: window 4 x 4 larger than the input 3 x 3"),
    ("avgpool2d", [(5,)], {"size": 2}, "avgpool2d: needs an H x W map"),
    ("softmax", [(2, 3)], {}, "softmax: a 2 x 3 input needs an axis (0 or 1)"),
    ("sum", [(2, 3)], {"axis": 2}, "sum: axis 2 does not exist for a 2 x 3 input"),
    ("reshape", [(2, 3)], {"rows": 4, "cols": 2}, "reshape: 2 x 3 has 6 entries, 4 x 2 needs 8"),
    ("reshape", [(2, 3)], {"rows": 4}, "reshape: 2 x 3 has 6 entries, 4 needs 4"),
    ("maximum", [(2, 3), (4,)], {}, "maximum: shapes 2 x 3 and 4 do not broadcast"),
    ("flatten", [(2, 2, 2, 2, 2)], {}, "flatten: an input of shape 2 x 2 x 2 x 2 x 2 has more than 4 axes"),
])
def test_shape_errors_name_the_operation_and_sizes(name, shapes, params, words):
    op = TENSOR_OPS[name]
    p = op.params_of(()); p.update(params)
    with pytest.raises(ShapeError) as err:
        op.shape(tuple(shapes), p)
    assert words in str(err.value) and "\n" not in str(err.value)


# --- printed rules ------------------------------------------------------------

def test_softmax_rule_latex():
    p, G, z = X.TensorSymbol("p", (4,)), X.TensorSymbol("G", (4,)), X.TensorSymbol("z", (4,))
    rule = TENSOR_OPS["softmax"].rule(0, G, (z,), p, {"axis": None})
    assert X.latex(rule) == r"p \odot \left(G - \mathbf{1} \left(p^{\top} G\right)\right)"
    P, G2, S = X.TensorSymbol("P", (3, 5)), X.TensorSymbol("G", (3, 5)), X.TensorSymbol("S", (3, 5))
    rule = TENSOR_OPS["softmax"].rule(0, G2, (S,), P, {"axis": 1})
    assert X.latex(rule) == r"P \odot \left(G - \left(P \odot G\right) \mathbf{1} \mathbf{1}^{\top}\right)"
    assert X.spec(TENSOR_OPS["softmax"].symbolic((S,), {"axis": 1})) == "softmax(S, 1)"


def test_conv2d_rules_latex():
    x, k = X.TensorSymbol("X", (2, 6, 6)), X.TensorSymbol("K", (3, 2, 3, 3))
    d = X.TensorSymbol("delta", (3, 4, 4), r"\delta")
    y = X.TensorSymbol("Y", (3, 4, 4))
    op, p = TENSOR_OPS["conv2d"], {"stride": 1, "padding": 0}
    assert X.latex(op.symbolic((x, k), p)) == r"X \star K"
    assert X.latex(op.rule(1, d, (x, k), y, p)) == r"X \star \delta"
    assert X.latex(op.rule(0, d, (x, k), y, p)) == \
        r"\operatorname{pad}_{2}\left(\delta\right) \star \operatorname{rot}_{180}\left(K\right)"
    d2 = X.TensorSymbol("delta", (3, 3, 3), r"\delta")
    p2 = {"stride": 2, "padding": 1}
    assert X.latex(op.rule(1, d2, (x, k), y, p2)) == \
        r"\operatorname{pad}_{1}\left(X\right) \star \operatorname{dil}_{2}\left(\delta\right)"
    assert X.spec(op.symbolic((x, k), p2)) == "conv2d(X, K, 2, 1)"


def test_reduction_and_activation_rules_latex():
    S, G = X.TensorSymbol("S", (3, 4)), X.TensorSymbol("G", (3, 1))
    assert X.latex(TENSOR_OPS["mean"].rule(0, G, (S,), None, {"axis": 1})) == r"\frac{1}{4} G \mathbf{1}^{\top}"
    assert X.latex(TENSOR_OPS["sum"].symbolic((S,), {"axis": 1})) == r"S \mathbf{1}"
    x, g = X.TensorSymbol("x", (3,)), X.TensorSymbol("G", (3,))
    assert X.latex(TENSOR_OPS["gelu"].rule(0, g, (x,), None, {})) == \
        r"G \odot \left(\Phi\left(x\right) + x \odot \varphi\left(x\right)\right)"
    assert X.latex(TENSOR_OPS["abs"].rule(0, g, (x,), None, {})) == r"G \odot \operatorname{sign}\left(x\right)"


def test_every_operation_carries_its_derivation_and_doc():
    from derive.engine import nn_ops
    names = [n for n, op in TENSOR_OPS.items() if op.forward and op.rule and
             getattr(op.forward, "__module__", "") == nn_ops.__name__]
    assert {"softmax", "conv2d", "maxpool2d", "gelu"} <= set(names)
    for n in names:
        op = TENSOR_OPS[n]
        assert op.doc and op.extra.get("derivation"), n


# --- generated code: the kernels copied into a standalone module -------------

def test_numpy_helpers_run_standalone():
    x, k = RNG.standard_normal((2, 9)), RNG.standard_normal((3, 2, 3))
    code = "nn_conv1d_any(x, k, 2, 1), nn_gelu(x), nn_softmax(x, 1)"
    scope = {"numpy": np}
    exec(numpy_helpers(code), scope)   # noqa: S102 - our own kernels' source
    y, g, s = eval(code, scope | {"x": x, "k": k})   # noqa: S307
    op = TENSOR_OPS["conv1d"]
    np.testing.assert_array_equal(y, op.forward((x, k), {"stride": 2, "padding": 1}))
    np.testing.assert_array_equal(g, TENSOR_OPS["gelu"].forward((x,), {}))
    np.testing.assert_array_equal(s, TENSOR_OPS["softmax"].forward((x,), {"axis": 1}))
    assert "def nn_conv2d_grad_input" not in numpy_helpers("nn_conv1d_any(x, k, 1, 0)")


# --- property-based: random shapes for convolution and pooling ----------------

@settings(max_examples=40, deadline=None)
@given(c_in=st.integers(1, 2), c_out=st.integers(1, 2), h=st.integers(1, 7), w=st.integers(1, 7),
       kh=st.integers(1, 3), kw=st.integers(1, 3), stride=st.integers(1, 3), pad=st.integers(0, 2),
       seed=st.integers(0, 2 ** 16))
def test_conv2d_random_shapes(c_in, c_out, h, w, kh, kw, stride, pad, seed):
    op, p = TENSOR_OPS["conv2d"], {"stride": stride, "padding": pad}
    shapes = ((c_in, h, w), (c_out, c_in, kh, kw))
    if kh > h + 2 * pad or kw > w + 2 * pad:
        with pytest.raises(ShapeError):
            op.shape(shapes, p)
        return
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(s) for s in shapes]
    out = op.forward(tuple(xs), p)
    assert out.shape == op.shape(shapes, p)
    G = rng.standard_normal(out.shape)
    y, dx, dk = ref_conv2d(xs[0], xs[1], stride, pad, G)
    np.testing.assert_allclose(out, y, atol=1e-12)
    np.testing.assert_allclose(op.vjp(0, G, tuple(xs), out, p), dx, atol=1e-12)
    np.testing.assert_allclose(op.vjp(1, G, tuple(xs), out, p), dk, atol=1e-12)
    assert max_vjp_error(op, xs, p) < 1e-7


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 3), h=st.integers(1, 8), w=st.integers(1, 8), size=st.integers(1, 4),
       stride=st.one_of(st.none(), st.integers(1, 3)), kind=st.sampled_from(["maxpool2d", "avgpool2d"]),
       ties=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_pooling_random_shapes(c, h, w, size, stride, kind, ties, seed):
    op, p = TENSOR_OPS[kind], {"size": size, "stride": stride}
    if size > h or size > w:
        with pytest.raises(ShapeError):
            op.shape(((c, h, w),), p)
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, (c, h, w)).astype(float) if ties else rng.standard_normal((c, h, w))
    out = op.forward((x,), p)
    assert out.shape == op.shape(((c, h, w),), p)
    G = rng.standard_normal(out.shape)
    y, (dx,) = reference(kind, [x], p, G)
    np.testing.assert_allclose(out, y, atol=1e-12)
    np.testing.assert_allclose(op.vjp(0, G, (x,), out, p), dx, atol=1e-12)


# --- property-based: random graphs of these operations through the reverse mode ----

def _nn_step(g, step, cur, W, n, m):
    """One random layer on an n x m tensor, giving n x m again."""
    ap = g.apply
    return {
        "softmax0": lambda: ap("softmax", cur, axis=0), "softmax1": lambda: ap("softmax", cur, axis=1),
        "log_softmax1": lambda: ap("log_softmax", cur, axis=1),
        "centre1": lambda: ap("sub", cur, ap("mean", cur, axis=1)),
        "scale0": lambda: ap("div", cur, ap("add", ap("sum", ap("mul", cur, cur), axis=0), 1)),
        "max1": lambda: ap("mul", cur, ap("max", cur, axis=1)),
        "max_all": lambda: ap("add", cur, ap("max", cur)),
        "maximum": lambda: ap("maximum", cur, W), "minimum": lambda: ap("minimum", W, cur),
        "abs": lambda: ap("abs", cur), "gelu": lambda: ap("gelu", cur), "gelu_tanh": lambda: ap("gelu_tanh", cur),
        "elu": lambda: ap("elu", cur, alpha=0.7), "leaky": lambda: ap("leaky_relu", cur, slope=0.1),
        "erf": lambda: ap("erf", cur),
        "reshape": lambda: ap("reshape", ap("flatten", ap("reshape", cur, rows=m, cols=n)), rows=n, cols=m),
    }[step]()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), m=st.integers(2, 4),
       steps=st.lists(st.sampled_from(["softmax0", "softmax1", "log_softmax1", "centre1", "scale0", "max1",
                                       "max_all", "maximum", "minimum", "abs", "gelu", "gelu_tanh", "elu",
                                       "leaky", "erf", "reshape"]), min_size=1, max_size=4),
       seed=st.integers(0, 2 ** 16))
def test_random_graphs_matrix_form_equals_numpy_vjp_and_finite_differences(n, m, steps, seed):
    from derive.engine.mcheck import FD_STEP, checks, nearest_kink, numpy_backprop
    from derive.engine.reverse import reverse
    from derive.engine.tgraph import TGraph
    rng = np.random.default_rng(seed)
    g = TGraph("nn")
    W = g.leaf("W", (n, m), "parameter"); b = g.leaf("b", (m,), "parameter")
    C = g.leaf("C", (n, m), "target")
    cur = g.define("z", g.apply("add", W, b))          # a bias broadcast over the rows
    for k, step in enumerate(steps):
        cur = g.define(f"h{k}", _nn_step(g, step, cur, W, n, m))
    g.define("L", g.apply("sum", g.apply("mul", cur, C)), kind="loss")
    leaves = {"W": rng.standard_normal((n, m)), "b": rng.standard_normal(m), "C": rng.standard_normal((n, m))}
    d = reverse(g, g.forward(leaves))
    ref = numpy_backprop(g, leaves)
    for s in d.steps:
        if s.target in g.nodes:
            np.testing.assert_allclose(s.value, ref[s.target], rtol=1e-10, atol=1e-12)
    cs = {c["method"]: c for c in checks(g, leaves, d)}
    assert cs["numpy-backprop"]["passed"] is True
    # finite differences, unless a kinked input sits at its kink (abs of a row centred to 0, ...):
    # within the differences' reach, 10 steps scaled by the largest leaf (mcheck.checks)
    scale = max([1.0] + [float(np.max(np.abs(v))) for v in leaves.values()])
    assert cs["finite-difference"]["passed"] is True or (
        cs["finite-difference"]["passed"] is None and nearest_kink(g, leaves) < 10 * FD_STEP * scale), cs


def test_one_dimensional_convolutions_derive_with_one_index_per_axis():
    """conv1d's textbook lines index a sequence (X_{c, si+a}, K_{o,c,a}) and flip the kernel; the 2-D
    lines (K_{o,c,a,b}, rot_180) are conv2d's."""
    from derive.engine.nn_ops import textbook_derivations
    lines = dict(textbook_derivations(["conv1d", "conv_transpose1d", "conv2d", "conv_transpose2d"]))
    for name in ("conv1d", "conv_transpose1d"):
        text = " ".join(lines[name])
        assert r"\operatorname{flip}" in text and "rot" not in text and "a,b" not in text, name
    assert "K_{o,c,a}" in lines["conv1d"][0]
    for name in ("conv2d", "conv_transpose2d"):
        assert r"\operatorname{rot}_{180}" in " ".join(lines[name]), name
