r"""Numpy kernels of the neural-network operations, torch's semantics.

Each function here uses only ``numpy`` as ``np`` and the other kernels,
because two readers take it:
:mod:`derive.engine.nn_ops` calls it
for the forward values and vector-Jacobian products, and generated code
(:func:`derive.engine.nn_exprs.numpy_helpers`) copies its source (and that
of the kernels it calls), so a
standalone numpy module computes exactly what the worked solution shows.

Layouts: images are ``(N, C, H, W)`` inside the kernels; callers add or drop
the batch and channel axes.  Pooling works on the last two axes.

>>> import numpy as np
>>> X = np.arange(16.0).reshape(1, 1, 4, 4); K = np.ones((1, 1, 2, 2))
>>> conv2d(X, K, 2, 0)[0, 0]
array([[10., 18.],
       [42., 50.]])
>>> maxpool2d(np.array([[1.0, 3.0], [3.0, 0.0]]), 2, 2)
array([[3.]])
"""
from __future__ import annotations

import numpy as np


def softmax(X, axis):
    """exp(X) / sum exp(X) along ``axis`` (None: every entry), max subtracted first."""
    Z = X - np.max(X, axis=axis, keepdims=True)
    E = np.exp(Z)
    return E / np.sum(E, axis=axis, keepdims=True)


def log_softmax(X, axis):
    """X - logsumexp(X) along ``axis``: finite for logits of any size."""
    M = np.max(X, axis=axis, keepdims=True)
    Z = X - M
    return Z - np.log(np.sum(np.exp(Z), axis=axis, keepdims=True))


def erf(X):
    """The error function entrywise, vectorised: the rational approximations of
    Cephes (ndtr.c), within 2 ulp of ``math.erf`` (tests/test_nn_ops.py)."""
    T = (9.60497373987051638749E0, 9.00260197203842689217E1, 2.23200534594684319226E3,
         7.00332514112805075473E3, 5.55923013010394962768E4)
    U = (3.35617141647503099647E1, 5.21357949780152679795E2, 4.59432382970980127987E3,
         2.26290000613890934246E4, 4.92673942608635921086E4)
    P = (2.46196981473530512524E-10, 5.64189564831068821977E-1, 7.46321056442269912687E0,
         4.86371970985681366614E1, 1.96520832956077098242E2, 5.26445194995477358631E2,
         9.34528527171957607540E2, 1.02755188689515710272E3, 5.57535335369399327526E2)
    Q = (1.32281951154744992508E1, 8.67072140885989742329E1, 3.54937778887819891062E2,
         9.75708501743205489753E2, 1.82390916687909736289E3, 2.24633760818710981792E3,
         1.65666309194161350182E3, 5.57535340817727675546E2)

    def poly(x, c, monic):      # Horner, in place; a monic polynomial's leading 1 implied
        y = x + c[0] if monic else np.full_like(x, c[0])
        for a in c[1:]:
            np.multiply(y, x, out=y)
            np.add(y, a, out=y)
        return y

    x = np.atleast_1d(np.asarray(X, dtype=float))
    ax = np.abs(x)
    out = np.empty_like(ax)
    small = ax < 1.0                            # erf = x T(x^2) / U(x^2)
    z = x[small] * x[small]
    out[small] = x[small] * poly(z, T, False) / poly(z, U, True)
    mid = ~small & (ax < 8.0)                   # erf = sign(x) (1 - erfc(|x|))
    a = ax[mid]
    out[mid] = np.sign(x[mid]) * (1.0 - np.exp(-a * a) * poly(a, P, False) / poly(a, Q, True))
    rest = ~small & ~mid                        # erfc(8) < 1e-28: erf is +-1 in double (NaN stays NaN)
    out[rest] = np.sign(x[rest])
    return out.reshape(np.shape(X))


def gelu(X):
    """x Phi(x), Phi the standard normal CDF (torch's default, erf form)."""
    return 0.5 * X * (1.0 + erf(X / np.sqrt(2.0)))


def gelu_grad(X):
    """gelu'(x) = Phi(x) + x phi(x)."""
    Phi = 0.5 * (1.0 + erf(X / np.sqrt(2.0)))
    return Phi + X * np.exp(-0.5 * X * X) / np.sqrt(2.0 * np.pi)


def gelu_grad2(X):
    """gelu''(x) = phi(x) (2 - x^2)."""
    return np.exp(-0.5 * X * X) / np.sqrt(2.0 * np.pi) * (2.0 - X * X)


def gelu_tanh(X):
    """torch's gelu(approximate='tanh'): x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))."""
    return 0.5 * X * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (X + 0.044715 * X ** 3)))


def gelu_tanh_grad(X):
    """d/dx of gelu_tanh: (1 + t)/2 + x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2."""
    c = np.sqrt(2.0 / np.pi)
    t = np.tanh(c * (X + 0.044715 * X ** 3))
    return 0.5 * (1.0 + t) + 0.5 * X * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * X * X)


def gelu_tanh_grad2(X):
    """The second derivative of gelu_tanh: (1 - t^2)(u' - x t u'^2 + x u''/2)."""
    c = np.sqrt(2.0 / np.pi)
    t = np.tanh(c * (X + 0.044715 * X ** 3))
    du = c * (1.0 + 3 * 0.044715 * X * X)
    return (1.0 - t * t) * (du - X * t * du * du + 0.5 * X * 6 * 0.044715 * c * X)


def elu(X, alpha):
    """x for x > 0, alpha (e^x - 1) otherwise (expm1: exact near 0)."""
    return np.where(X > 0, X, alpha * np.expm1(np.minimum(X, 0.0)))


def elu_grad(X, alpha):
    """1 for x > 0, alpha e^x for x <= 0 (torch takes the second branch at 0)."""
    return np.where(X > 0, 1.0, alpha * np.exp(np.minimum(X, 0.0)))


def leaky_relu(X, slope):
    """x for x > 0, slope * x otherwise."""
    return np.where(X > 0, X, slope * X)


def leaky_relu_grad(X, slope):
    """1 for x > 0, slope for x <= 0 (torch: the slope at 0)."""
    return np.where(X > 0, 1.0, slope)


def amax_share(X, axis):
    """The gradient share of each entry in max(X, axis): 1/(number of ties) at
    every maximal entry, 0 elsewhere (torch.amax)."""
    tie = (X == np.max(X, axis=axis, keepdims=True)).astype(float)
    return tie / np.sum(tie, axis=axis, keepdims=True)


def sum_to(G, shape):
    """Sum G over the axes numpy broadcasting added or stretched, back to ``shape``."""
    G = np.asarray(G, dtype=float)
    while G.ndim > len(shape):
        G = G.sum(axis=0)
    for k, n in enumerate(shape):
        if n == 1 and G.shape[k] != 1:
            G = G.sum(axis=k, keepdims=True)
    return G


def conv2d(X, K, stride, padding):
    """Cross-correlation as torch.nn.functional.conv2d: X (N, C, H, W), K (O, C, kh, kw).

    ``stride`` and ``padding`` are ints or (rows, cols) pairs (zero padding)."""
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    kh, kw = K.shape[2], K.shape[3]
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(Xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return np.einsum("ncijab,ocab->noij", win, K, optimize=True)


def conv2d_grad_kernel(X, G, kshape, stride, padding):
    """dL/dK: the cross-correlation of the (padded) input with the upstream G."""
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    kh, kw = kshape[2], kshape[3]
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(Xp, (kh, kw), axis=(2, 3))
    win = win[:, :, ::sh, ::sw][:, :, :G.shape[2], :G.shape[3]]
    return np.einsum("ncijab,noij->ocab", win, G, optimize=True)


def conv2d_grad_input(G, K, xshape, stride, padding):
    """dL/dX: the full convolution of G (dilated by the stride) with the flipped
    kernel, cropped by the padding; written as one strided add per kernel entry."""
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    n, c, h, w = xshape
    kh, kw = K.shape[2], K.shape[3]
    oh, ow = G.shape[2], G.shape[3]
    dXp = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    for a in range(kh):
        for b in range(kw):
            dXp[:, :, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw] += \
                np.einsum("noij,oc->ncij", G, K[:, :, a, b])
    return dXp[:, :, ph:ph + h, pw:pw + w]


# The spec's layouts into the kernels' (N, C, H, W): conv2d takes X as H x W
# with K k x k, X as C x H x W with K C_out x C_in x k x k, or a batch
# N x C x H x W; conv1d the same one axis down (a height-1 axis added).

def conv2d_any(X, K, stride, padding):
    """conv2d on the spec's layouts: H x W and k x k, C x H x W and O x C x k x k, or a batch."""
    x4 = X.reshape((1,) * (4 - X.ndim) + X.shape)
    k4 = K.reshape((1,) * (4 - K.ndim) + K.shape)
    Y = conv2d(x4, k4, stride, padding)
    return Y[0, 0] if X.ndim == 2 else (Y[0] if X.ndim == 3 else Y)


def conv2d_any_grad_kernel(X, G, K, stride, padding):
    """dL/dK on the spec's layouts (K gives the kernel's shape)."""
    x4 = X.reshape((1,) * (4 - X.ndim) + X.shape)
    g4 = G.reshape((1,) * (4 - G.ndim) + G.shape)
    k4 = (1,) * (4 - K.ndim) + K.shape
    return conv2d_grad_kernel(x4, g4, k4, stride, padding).reshape(K.shape)


def conv2d_any_grad_input(G, K, X, stride, padding):
    """dL/dX on the spec's layouts (X gives the input's shape)."""
    g4 = G.reshape((1,) * (4 - G.ndim) + G.shape)
    k4 = K.reshape((1,) * (4 - K.ndim) + K.shape)
    x4 = (1,) * (4 - X.ndim) + X.shape
    return conv2d_grad_input(g4, k4, x4, stride, padding).reshape(X.shape)


def conv1d_any(x, k, stride, padding):
    """conv1d on the spec's layouts: L and k, C x L and O x C x k, or a batch N x C x L."""
    def rows(A):    # a height-1 axis before the last
        return A.reshape(A.shape[:-1] + (1, A.shape[-1]))
    Y = conv2d_any(rows(x), rows(k), (1, stride), (0, padding))
    return Y.reshape(Y.shape[:-2] + Y.shape[-1:])


def conv1d_any_grad_kernel(x, G, k, stride, padding):
    """dL/dk of conv1d on the spec's layouts."""
    def rows(A):
        return A.reshape(A.shape[:-1] + (1, A.shape[-1]))
    return conv2d_any_grad_kernel(rows(x), rows(G), rows(k), (1, stride), (0, padding)).reshape(k.shape)


def conv1d_any_grad_input(G, k, x, stride, padding):
    """dL/dx of conv1d on the spec's layouts."""
    def rows(A):
        return A.reshape(A.shape[:-1] + (1, A.shape[-1]))
    return conv2d_any_grad_input(rows(G), rows(k), rows(x), (1, stride), (0, padding)).reshape(x.shape)


def maxpool2d(X, size, stride):
    """Max over size x size windows of the last two axes, floor mode."""
    win = np.lib.stride_tricks.sliding_window_view(X, (size, size), axis=(-2, -1))
    return win[..., ::stride, ::stride, :, :].max(axis=(-2, -1))


def maxpool2d_grad(X, G, size, stride):
    """Route each window's upstream entry to its first maximal entry (row-major)."""
    win = np.lib.stride_tricks.sliding_window_view(X, (size, size), axis=(-2, -1))
    win = win[..., ::stride, ::stride, :, :]
    oh, ow = win.shape[-4], win.shape[-3]
    lead = X.shape[:-2]
    first = win.reshape(lead + (oh, ow, size * size)).argmax(axis=-1)
    rows = np.arange(oh)[:, None] * stride + first // size
    cols = np.arange(ow)[None, :] * stride + first % size
    hw = X.shape[-2] * X.shape[-1]
    flat = (rows * X.shape[-1] + cols).reshape(-1, oh * ow)
    flat = flat + np.arange(flat.shape[0])[:, None] * hw    # each map its own block of entries
    # one bincount for every map: overlapping windows add up at a shared maximum
    dX = np.bincount(flat.ravel(), weights=np.asarray(G, float).ravel(), minlength=flat.shape[0] * hw)
    return dX.reshape(X.shape)


def avgpool2d(X, size, stride):
    """Mean over size x size windows of the last two axes, floor mode."""
    win = np.lib.stride_tricks.sliding_window_view(X, (size, size), axis=(-2, -1))
    return win[..., ::stride, ::stride, :, :].mean(axis=(-2, -1))


def avgpool2d_grad(X, G, size, stride):
    """Spread each window's upstream entry evenly over its size^2 entries."""
    dX = np.zeros(X.shape)
    oh, ow = G.shape[-2], G.shape[-1]
    for a in range(size):
        for b in range(size):
            dX[..., a:a + stride * (oh - 1) + 1:stride, b:b + stride * (ow - 1) + 1:stride] += G
    return dX / (size * size)


def reshape_tail(X, k, shape):
    """The last k axes of X reshaped to ``shape`` (leading batch axes kept)."""
    X = np.asarray(X, dtype=float)
    return X.reshape(X.shape[:X.ndim - k] + tuple(shape))


def per_sample(fn, ks, *args):
    """fn on each sample of arrays with leading batch axes, results stacked;
    ``ks`` gives each argument's sample ndim (None: a parameter passed as is)."""
    arrays = [np.asarray(a, dtype=float) if k is not None else a for a, k in zip(args, ks)]
    batch = ()
    for a, k in zip(arrays, ks):
        if k is not None and a.ndim > k:
            batch = np.broadcast_shapes(batch, a.shape[:a.ndim - k])
    if not batch:
        return fn(*arrays)
    arrays = [np.broadcast_to(a, batch + a.shape[a.ndim - k:]) if k is not None else a for a, k in zip(arrays, ks)]
    out = np.array([fn(*[a[i] if k is not None else a for a, k in zip(arrays, ks)]) for i in np.ndindex(batch)])
    return out.reshape(batch + out.shape[1:])
