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
    # one matrix product over (channel, kernel row, kernel column): im2col
    return np.tensordot(win, K, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def conv2d_grad_kernel(X, G, kshape, stride, padding, per_image=False):
    """dL/dK: the cross-correlation of the (padded) input with the upstream G
    (summed over the images; ``per_image``: one kernel gradient per image)."""
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    kh, kw = kshape[2], kshape[3]
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = G.shape[2], G.shape[3]
    if per_image:
        win = np.lib.stride_tricks.sliding_window_view(Xp, (kh, kw), axis=(2, 3))
        win = win[:, :, ::sh, ::sw][:, :, :oh, :ow]
        return np.einsum("ncijab,noij->nocab", win, G, optimize=True)
    dK = np.empty((G.shape[1], X.shape[1], kh, kw))
    for a in range(kh):         # one product over (image, row, column) per kernel entry
        for b in range(kw):
            dK[:, :, a, b] = np.tensordot(G, Xp[:, :, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw],
                                          axes=([0, 2, 3], [0, 2, 3]))
    return dK


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
                np.tensordot(G, K[:, :, a, b], axes=([1], [0])).transpose(0, 3, 1, 2)
    return dXp[:, :, ph:ph + h, pw:pw + w]


# The spec's layouts into the kernels' (N, C, H, W): conv2d takes X as H x W
# with K k x k, X as C x H x W with K C_out x C_in x k x k, or a batch
# N x C x H x W; conv1d the same one axis down (a height-1 axis added).
# Its gradients are operations of their own, as a textbook writes them:
# dL/dK = xcorr2d(X, G), the input cross-correlated with delta, and
# dL/dX = conv_transpose2d(G, K), the full convolution of delta with the
# flipped kernel (torch's conv_transpose2d).
#
# Generated code (derive.codegen.matrix) gives every value leading batch axes:
# the *_batched kernels take each operand's own number of axes (kx, kg, kk),
# merge the batch into the kernels' N axis and make one call for the whole
# batch, so a conv layer costs a few array operations whatever the batch size;
# the *_any kernels are the same on values without a batch.

def pair(v):
    """A stride or padding as (rows, cols)."""
    return (v, v) if np.ndim(v) == 0 else tuple(v)


def as_images(A, k):
    """The last k axes of A (k = 2, 3, 4: H x W, C x H x W, N x C x H x W) as
    (N, C, H, W) images, the leading batch axes merged into N; and the batch."""
    batch, own = A.shape[:A.ndim - k], A.shape[A.ndim - k:]
    full = (1,) * (4 - k) + own
    return A.reshape((-1,) + full[1:]), batch


def batch_broadcast(arrays, ks, extra=()):
    """The arrays broadcast to one batch shape in front of their own axes."""
    batch = tuple(extra)
    for a, k in zip(arrays, ks):
        batch = np.broadcast_shapes(batch, a.shape[:a.ndim - k])
    return [np.broadcast_to(a, batch + a.shape[a.ndim - k:]) for a, k in zip(arrays, ks)], batch


def conv2d_batched(X, K, kx, kk, stride, padding):
    """conv2d on values with leading batch axes (X's own axes are its last
    kx, K's its last kk): the batch goes into the images' axis, one call."""
    X, K = np.asarray(X, dtype=float), np.asarray(K, dtype=float)
    if K.ndim > kk:     # a kernel that differs by sample: one sample at a time
        return per_sample(conv2d_any, (kx, kk, None, None), X, K, stride, padding)
    x4, batch = as_images(X, kx)
    Y = conv2d(x4, K.reshape((1,) * (4 - kk) + K.shape), stride, padding)    # (batch x N, O, oh, ow)
    own = ((1,) * (4 - kx) + X.shape[X.ndim - kx:])[:1] + Y.shape[1:]        # the sample's (N, O, oh, ow)
    return Y.reshape(batch + own[4 - kx:])


def conv2d_any(X, K, stride, padding):
    """conv2d on the spec's layouts: H x W and k x k, C x H x W and O x C x k x k, or a batch."""
    return conv2d_batched(X, K, np.ndim(X), np.ndim(K), stride, padding)


def xcorr2d_batched(X, G, kx, kg, stride, padding, kh=None, kw=None, summed=None):
    """dL/dK of conv2d: X (padded) cross-correlated with G (dilated by the
    stride), every input channel with every output channel: kh x kw, or
    O x C x kh x kw.  kh, kw default to the largest that fit (the kernel's
    size when the stride divides evenly).  One result per sample, or
    (``summed`` the batch's shape) their sum over the batch, a sample without
    batch axes counting once per sample."""
    X, G = np.asarray(X, dtype=float), np.asarray(G, dtype=float)
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    kh = X.shape[-2] + 2 * ph - sh * (G.shape[-2] - 1) if kh is None else kh
    kw = X.shape[-1] + 2 * pw - sw * (G.shape[-1] - 1) if kw is None else kw
    kown = (kh, kw) if kx == 2 else (G.shape[-3], X.shape[-3], kh, kw)
    (X, G), batch = batch_broadcast((X, G), (kx, kg), () if summed is None else summed)
    x4, _ = as_images(X, kx)
    g4, _ = as_images(G, kg)
    k4 = (1,) * (4 - len(kown)) + kown
    if summed is not None or not batch:
        return conv2d_grad_kernel(x4, g4, k4, stride, padding).reshape(kown)
    per = conv2d_grad_kernel(x4, g4, k4, stride, padding, per_image=True)
    per = per.reshape((int(np.prod(batch)), -1) + per.shape[1:]).sum(axis=1)   # a sample's own images summed
    return per.reshape(batch + kown)


def xcorr2d_any(X, G, stride, padding, kh=None, kw=None):
    """xcorr2d on the spec's layouts: H x W with oh x ow, C x H x W with O x oh x ow, or a batch (summed)."""
    return xcorr2d_batched(X, G, np.ndim(X), np.ndim(G), stride, padding, kh, kw)


def conv_transpose2d_batched(G, K, kg, kk, stride, padding, oph=0, opw=None):
    """dL/dX of conv2d, torch's conv_transpose2d (output_padding oph rows and
    opw columns, the rows a floor-mode stride left out): G (dilated by the
    stride) fully convolved with the flipped K, cropped by the padding."""
    G, K = np.asarray(G, dtype=float), np.asarray(K, dtype=float)
    opw = oph if opw is None else opw
    if K.ndim > kk:
        return per_sample(conv_transpose2d_any, (kg, kk, None, None, None, None), G, K, stride, padding, oph, opw)
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    g4, batch = as_images(G, kg)
    k4 = K.reshape((1,) * (4 - kk) + K.shape)
    h = (G.shape[-2] - 1) * sh - 2 * ph + k4.shape[2] + oph
    w = (G.shape[-1] - 1) * sw - 2 * pw + k4.shape[3] + opw
    dX = conv2d_grad_input(g4, k4, (g4.shape[0], k4.shape[1], h, w), stride, padding)
    own = (h, w) if kk == 2 else ((G.shape[G.ndim - kg],) if kg == 4 else ()) + (k4.shape[1], h, w)
    return dX.reshape(batch + own)


def conv_transpose2d_any(G, K, stride, padding, oph=0, opw=None):
    """conv_transpose2d on the spec's layouts: oh x ow with k x k, O x oh x ow with O x C x k x k, or a batch."""
    return conv_transpose2d_batched(G, K, np.ndim(G), np.ndim(K), stride, padding, oph, opw)


def as_rows(A):
    """A height-1 axis before the last: a 1-D signal as a 1-row image."""
    return A.reshape(A.shape[:-1] + (1, A.shape[-1]))


def no_rows(A):
    """The height-1 axis of as_rows taken out again."""
    return A.reshape(A.shape[:-2] + A.shape[-1:])


def conv1d_batched(x, k, kx, kk, stride, padding):
    """conv1d on values with leading batch axes."""
    x, k = np.asarray(x, dtype=float), np.asarray(k, dtype=float)
    return no_rows(conv2d_batched(as_rows(x), as_rows(k), kx + 1, kk + 1, (1, stride), (0, padding)))


def conv1d_any(x, k, stride, padding):
    """conv1d on the spec's layouts: L and k, C x L and O x C x k, or a batch N x C x L."""
    return conv1d_batched(x, k, np.ndim(x), np.ndim(k), stride, padding)


def xcorr1d_batched(x, G, kx, kg, stride, padding, size=None, summed=None):
    """dL/dk of conv1d: x cross-correlated with G (per sample, or summed over the batch)."""
    x, G = np.asarray(x, dtype=float), np.asarray(G, dtype=float)
    return no_rows(xcorr2d_batched(as_rows(x), as_rows(G), kx + 1, kg + 1, (1, stride), (0, padding),
                                   1, size, summed))


def xcorr1d_any(x, G, stride, padding, size=None):
    """xcorr1d on the spec's layouts."""
    return xcorr1d_batched(x, G, np.ndim(x), np.ndim(G), stride, padding, size)


def conv_transpose1d_batched(G, k, kg, kk, stride, padding, output_padding=0):
    """dL/dx of conv1d, torch's conv_transpose1d."""
    G, k = np.asarray(G, dtype=float), np.asarray(k, dtype=float)
    return no_rows(conv_transpose2d_batched(as_rows(G), as_rows(k), kg + 1, kk + 1, (1, stride), (0, padding),
                                            0, output_padding))


def conv_transpose1d_any(G, k, stride, padding, output_padding=0):
    """conv_transpose1d on the spec's layouts."""
    return conv_transpose1d_batched(G, k, np.ndim(G), np.ndim(k), stride, padding, output_padding)


def pool_window(A, a, b, size, stride, oh, ow):
    """The entries at offset (a, b) of every pooling window of A's last two
    axes, as an oh x ow view (a view: adding to it adds to A)."""
    return A[..., a:a + stride * (oh - 1) + 1:stride, b:b + stride * (ow - 1) + 1:stride]


def pool_size(X, size, stride):
    """The floor-mode output size (oh, ow) of pooling X's last two axes."""
    return (X.shape[-2] - size) // stride + 1, (X.shape[-1] - size) // stride + 1


def maxpool2d(X, size, stride):
    """Max over size x size windows of the last two axes, floor mode: the
    maximum of the size^2 strided views, one array operation each."""
    X = np.asarray(X, dtype=float)
    oh, ow = pool_size(X, size, stride)
    out = pool_window(X, 0, 0, size, stride, oh, ow).copy()
    for k in range(1, size * size):
        np.maximum(out, pool_window(X, k // size, k % size, size, stride, oh, ow), out=out)
    return out


def first_max(X, size, stride):
    """For each window entry k (row-major), where it is its window's first
    maximum: size^2 boolean oh x ow maps, one True per window (torch's tie rule)."""
    X = np.asarray(X, dtype=float)
    oh, ow = pool_size(X, size, stride)
    M = maxpool2d(X, size, stride)
    taken = np.zeros(M.shape, dtype=bool)
    hits = []
    for k in range(size * size):
        hit = pool_window(X, k // size, k % size, size, stride, oh, ow) == M
        hit &= ~taken
        taken |= hit
        hits.append(hit)
    return hits


def maxunpool2d(G, X, size, stride):
    """The gradient of maxpool2d(X): each window's upstream entry G routed to
    the window's first maximal entry of X (row-major), as torch; overlapping
    windows add up at a shared maximum."""
    X, G = np.asarray(X, dtype=float), np.asarray(G, dtype=float)
    oh, ow = pool_size(X, size, stride)
    dX = np.zeros(np.broadcast_shapes(X.shape[:-2], G.shape[:-2]) + X.shape[-2:])   # G may carry a batch X has not
    for k, hit in enumerate(first_max(X, size, stride)):
        view = pool_window(dX, k // size, k % size, size, stride, oh, ow)
        view += G * hit
    return dX


def maxpool2d_at(Y, X, size, stride):
    """Each window's entry of Y where X has the window's first maximum
    (maxpool2d(X) is maxpool2d_at(X, X)): the adjoint of maxunpool2d(., X)."""
    Y = np.asarray(Y, dtype=float)
    oh, ow = pool_size(X, size, stride)
    return sum(pool_window(Y, k // size, k % size, size, stride, oh, ow) * hit
               for k, hit in enumerate(first_max(X, size, stride)))


def top_gap(X, axis=None):
    """How far each maximum is from a tie: the largest entry minus the second
    largest along ``axis`` (every entry if None); inf where there is one entry.
    Finite differences across a tie see the other side's derivative."""
    X = np.asarray(X, dtype=float)
    if axis is None:
        X, axis = X.reshape(-1), 0
    if X.shape[axis] < 2:
        return np.full(np.delete(X.shape, axis), np.inf)
    part = -np.partition(-X, 1, axis=axis)
    return np.take(part, 0, axis=axis) - np.take(part, 1, axis=axis)


def window_gap(X, size, stride):
    """top_gap of every size x size pooling window of X's last two axes."""
    X = np.asarray(X, dtype=float)
    oh, ow = pool_size(X, size, stride)
    return top_gap(np.stack([pool_window(X, k // size, k % size, size, stride, oh, ow)
                             for k in range(size * size)]), 0)


def avgpool2d(X, size, stride):
    """Mean over size x size windows of the last two axes, floor mode."""
    X = np.asarray(X, dtype=float)
    oh, ow = pool_size(X, size, stride)
    out = pool_window(X, 0, 0, size, stride, oh, ow).copy()
    for k in range(1, size * size):
        out += pool_window(X, k // size, k % size, size, stride, oh, ow)
    return out / (size * size)


def avgunpool2d(G, X, size, stride):
    """The gradient of avgpool2d(X): each window's upstream entry spread evenly
    over its size^2 entries (X gives the shape)."""
    G = np.asarray(G, dtype=float)
    oh, ow = G.shape[-2], G.shape[-1]
    dX = np.zeros(np.broadcast_shapes(np.shape(X)[:-2], G.shape[:-2]) + np.shape(X)[-2:])
    for k in range(size * size):
        view = pool_window(dX, k // size, k % size, size, stride, oh, ow)
        view += G
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
