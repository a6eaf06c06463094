r"""The neural-network operations of the contract's "Tensor operations" table.

Each is one :class:`~derive.engine.tensor_op.TensorOp` registered in
:data:`~derive.engine.tensor_op.TENSOR_OPS`: its shape rule (a
:class:`ShapeError` naming the operation and the sizes), numpy forward and
vector-Jacobian product (torch's semantics, from
:mod:`derive.engine.nn_kernels`), its SymPy form and its matrix rule (from
:mod:`derive.engine.nn_exprs`), and in ``extra["derivation"]`` the textbook
lines that derive the rule, for the worked solution.

The reductions ``sum``, ``mean`` and ``max`` take an axis (``sum(X, 1)``);
with the axis omitted they take every entry and give a scalar, which is
what :mod:`derive.engine.core_ops` registers when these are absent.

>>> import numpy as np
>>> op = TENSOR_OPS["softmax"]
>>> p = op.forward((np.array([[0.0, 0.0], [1000.0, 1000.0]]),), {"axis": 1})
>>> p.tolist()
[[0.5, 0.5], [0.5, 0.5]]
>>> op.shape(((2, 3),), {"axis": None})
Traceback (most recent call last):
...
derive.engine.tensor_op.ShapeError: softmax: a 2 x 3 input needs an axis (0 or 1)
"""
from __future__ import annotations

import math

import numpy as np
import sympy

from derive.engine import exprs as X
from derive.engine import nn_kernels
from derive.engine.nn_exprs import NNExpr, bcast, tshape
from derive.engine.tensor_op import TENSOR_OPS, ShapeError, TensorOp, register

MAX_AXES = 4


def _dims(shape) -> str:
    return " x ".join(str(n) for n in shape) if shape else "scalar"


def _check_rank(name, shape):
    if len(shape) > MAX_AXES:
        raise ShapeError(f"{name}: an input of shape {_dims(shape)} has more than {MAX_AXES} axes")


def _whole(name, what, v, least):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
        raise ShapeError(f"{name}: {what} must be a whole number >= {least}, got {v}")
    return int(v)


def _axis(name, shape, axis, needed=False):
    """The axis as a non-negative int, None for every entry; checked."""
    _check_rank(name, shape)
    if axis is None:
        if needed and len(shape) > 1:
            axes = " or ".join(str(k) for k in range(len(shape)))
            raise ShapeError(f"{name}: a {_dims(shape)} input needs an axis ({axes})")
        return None
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ShapeError(f"{name}: the axis must be a whole number, got {axis}")
    if not -len(shape) <= axis < max(len(shape), 1):
        raise ShapeError(f"{name}: axis {axis} does not exist for a {_dims(shape)} input")
    return int(axis) % max(len(shape), 1)


def _reduced(shape, axis):
    if axis is None:
        return ()
    return tuple(1 if k == axis else n for k, n in enumerate(shape))


# --- softmax, log_softmax --------------------------------------------------

def _softmax_shape(name):
    def shape(shapes, p):
        (s,) = shapes
        if len(s) == 0:
            raise ShapeError(f"{name}: needs a vector or a tensor, got a scalar")
        _axis(name, s, p["axis"], needed=True)
        return tuple(s)
    return shape


def _ax(xs, p):
    return None if p["axis"] is None else _axis("", np.shape(xs[0]), p["axis"])


def _softmax_vjp(i, G, xs, out, p):
    ax = _ax(xs, p)
    return out * (G - np.sum(out * G, axis=ax, keepdims=True))


def _softmax_rule(i, G, xs, out, p):
    shape, ax = tshape(xs[0]), p["axis"]
    inner = NNExpr("sum_axis", (X.had(out, G),), _reduced(shape, ax), (ax,))
    return X.had(out, X.sub(G, bcast(inner, shape, ax)))


def _log_softmax_vjp(i, G, xs, out, p):
    ax = _ax(xs, p)
    return G - np.exp(out) * np.sum(G, axis=ax, keepdims=True)


def _log_softmax_rule(i, G, xs, out, p):
    shape, ax = tshape(xs[0]), p["axis"]
    total = bcast(NNExpr("sum_axis", (G,), _reduced(shape, ax), (ax,)), shape, ax)
    return X.sub(G, X.had(NNExpr("softmax", (xs[0],), shape, (ax,)), total))


register(TensorOp(
    name="softmax", inputs=1, params=(("axis", None),),
    shape=_softmax_shape("softmax"),
    forward=lambda xs, p: nn_kernels.softmax(xs[0], _ax(xs, p)),
    vjp=_softmax_vjp,
    symbolic=lambda xs, p: NNExpr("softmax", xs, tshape(xs[0]), (p["axis"],)),
    rule=_softmax_rule,
    doc="exp(X) / sum exp(X) along the axis (a vector needs none); max subtracted first",
    extra={"derivation": (
        r"\frac{\partial p_i}{\partial x_j} = p_i\left(\delta_{ij} - p_j\right)",
        r"\bar{x}_j = \sum_i \bar{p}_i\, p_i (\delta_{ij} - p_j) = p_j\left(\bar{p}_j - p^{\top}\bar{p}\right)"
        r"\;\Rightarrow\; \bar{x} = p \odot \left(\bar{p} - \mathbf{1}\, p^{\top} \bar{p}\right)")}))

register(TensorOp(
    name="log_softmax", inputs=1, params=(("axis", None),),
    shape=_softmax_shape("log_softmax"),
    forward=lambda xs, p: nn_kernels.log_softmax(xs[0], _ax(xs, p)),
    vjp=_log_softmax_vjp,
    symbolic=lambda xs, p: NNExpr("log_softmax", xs, tshape(xs[0]), (p["axis"],)),
    rule=_log_softmax_rule,
    doc="X - logsumexp(X) along the axis, computed as (X - max) - log sum exp(X - max)",
    extra={"derivation": (
        r"\frac{\partial \ell_i}{\partial x_j} = \delta_{ij} - p_j, \quad p = \operatorname{softmax}(x)",
        r"\bar{x} = \bar{\ell} - p\, \left(\mathbf{1}^{\top} \bar{\ell}\right)")}))


# --- reductions along an axis ----------------------------------------------

def _reduce_shape(name):
    def shape(shapes, p):
        (s,) = shapes
        return _reduced(s, _axis(name, s, p["axis"]))
    return shape


def _bcast_G(G, xs, p):
    return np.broadcast_to(np.reshape(G, _reduced(np.shape(xs[0]), _ax(xs, p))), np.shape(xs[0]))


def _count(shape, ax):
    return int(np.prod(shape)) if ax is None else shape[ax]


def _bcast_rule(G, A, ax):
    return bcast(G, tshape(A), ax)


register(TensorOp(
    name="sum", inputs=1, params=(("axis", None),),
    shape=_reduce_shape("sum"),
    forward=lambda xs, p: (np.sum(xs[0]) if p["axis"] is None
                           else np.sum(xs[0], axis=_ax(xs, p), keepdims=True)),
    vjp=lambda i, G, xs, out, p: np.array(_bcast_G(G, xs, p), dtype=float),
    symbolic=lambda xs, p: (X.sum_all(xs[0]) if p["axis"] is None else
                            NNExpr("sum_axis", xs, _reduced(tshape(xs[0]), p["axis"]), (p["axis"],))),
    # of every entry: the scalar G, which the reverse mode spreads (and simplifies with)
    rule=lambda i, G, xs, out, p: G if p["axis"] is None else _bcast_rule(G, xs[0], p["axis"]),
    doc="sum(X, axis): sums along the axis keeping it with size 1; sum(X): every entry",
    extra={"derivation": (r"\bar{X} = \bar{s}\,\mathbf{1}^{\top} \text{ for } s = X\mathbf{1}",)}))

register(TensorOp(
    name="mean", inputs=1, params=(("axis", None),),
    shape=_reduce_shape("mean"),
    forward=lambda xs, p: (np.mean(xs[0]) if p["axis"] is None
                           else np.mean(xs[0], axis=_ax(xs, p), keepdims=True)),
    vjp=lambda i, G, xs, out, p: _bcast_G(G, xs, p) / _count(np.shape(xs[0]), _ax(xs, p)),
    symbolic=lambda xs, p: (X.sum_all(xs[0], mean=True) if p["axis"] is None else
                            NNExpr("mean_axis", xs, _reduced(tshape(xs[0]), p["axis"]), (p["axis"],))),
    rule=lambda i, G, xs, out, p: (
        X.had(sympy.Rational(1, _count(tshape(xs[0]), None)), G) if p["axis"] is None
        else bcast(G, tshape(xs[0]), p["axis"], _count(tshape(xs[0]), p["axis"]))),
    doc="mean(X, axis): the mean along the axis keeping it with size 1; mean(X): of every entry",
    extra={"derivation": (r"\bar{X} = \frac{1}{n}\,\bar{m}\,\mathbf{1}^{\top} \text{ for } m = \frac{1}{n} X\mathbf{1}",)}))


def _max_vjp(i, G, xs, out, p):
    ax = _ax(xs, p)
    return nn_kernels.amax_share(xs[0], ax) * _bcast_G(G, xs, p)


def _max_rule(i, G, xs, out, p):
    A, ax = xs[0], p["axis"]
    return X.had(NNExpr("amax_share", (A, out), tshape(A), (ax,)), _bcast_rule(G, A, ax))


register(TensorOp(
    name="max", inputs=1, params=(("axis", None),),
    shape=_reduce_shape("max"),
    forward=lambda xs, p: (np.max(xs[0]) if p["axis"] is None
                           else np.max(xs[0], axis=_ax(xs, p), keepdims=True)),
    vjp=_max_vjp,
    symbolic=lambda xs, p: NNExpr("max_axis", xs, _reduced(tshape(xs[0]), p["axis"]), (p["axis"],)),
    rule=_max_rule,
    doc="max(X, axis): the largest entry along the axis, kept with size 1; ties share the gradient (torch.amax)",
    extra={"derivation": (
        r"\bar{X}_{ij} = \bar{m}_i\, \frac{[X_{ij} = m_i]}{\#\{k : X_{ik} = m_i\}}",),
        "kink": lambda xs, p: nn_kernels.top_gap(xs[0], _ax(xs, p))}))


# --- entrywise operations ----------------------------------------------------

def _broadcast_shape(name, shapes):
    for s in shapes:
        _check_rank(name, s)
    try:
        return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise ShapeError(f"{name}: shapes {_dims(shapes[0])} and {_dims(shapes[1])} "
                         "do not broadcast") from None


def _pair_rule(share):
    def rule(i, G, xs, out, p):
        A, B = xs if i == 0 else (xs[1], xs[0])
        local = NNExpr(share, (A, B), tshape(out) if tshape(out) else tshape(A), ())
        return X.sum_to(X.had(G, local), tshape(xs[i]))
    return rule


def _maximum_vjp(sign):
    def vjp(i, G, xs, out, p):
        A, B = xs if i == 0 else (xs[1], xs[0])
        share = (1 + sign * np.sign(np.asarray(A, float) - np.asarray(B, float))) / 2
        return nn_kernels.sum_to(G * share, np.shape(xs[i]))
    return vjp


for _name, _sign, _share, _np_fn, _word in (("maximum", 1, "max_share", np.maximum, "larger"),
                                            ("minimum", -1, "min_share", np.minimum, "smaller")):
    register(TensorOp(
        name=_name, inputs=2,
        shape=lambda shapes, p, _n=_name: _broadcast_shape(_n, shapes),
        forward=lambda xs, p, _f=_np_fn: _f(xs[0], xs[1]).astype(float),
        vjp=_maximum_vjp(_sign),
        symbolic=lambda xs, p, _n=_name: NNExpr(_n, xs, np.broadcast_shapes(tshape(xs[0]), tshape(xs[1])), ()),
        rule=_pair_rule(_share),
        doc=f"{_name}(A, B): the {_word} entry, broadcasting; a tie sends half the gradient to each side",
        extra={"derivation": (
            rf"\frac{{\partial \{_name[:3]}(a, b)}}{{\partial a}} = \tfrac{{1}}{{2}}\left(1 {'+' if _sign > 0 else '-'} "
            r"\operatorname{sign}(a - b)\right)",), "elementwise": True}))


def _unary(name, fwd, grad, grad_key, doc, derivation, params=()):
    """An entrywise function: rule G (.) f'(X)."""
    def vjp(i, G, xs, out, p):
        return G * grad(xs[0], *[p[k] for k, _ in params])

    def shape(shapes, p):
        _check_rank(name, shapes[0])
        for k, _ in params:
            if isinstance(p[k], bool) or not isinstance(p[k], (int, float)):
                raise ShapeError(f"{name}: {k} must be a number, got {p[k]}")
        return tuple(shapes[0])

    register(TensorOp(
        name=name, inputs=1, params=params, shape=shape,
        forward=lambda xs, p: np.asarray(fwd(np.asarray(xs[0], float), *[p[k] for k, _ in params]), float),
        vjp=vjp,
        symbolic=lambda xs, p: NNExpr(name, xs, tshape(xs[0]), tuple(p[k] for k, _ in params)),
        rule=lambda i, G, xs, out, p: (
            sympy.Integer(0) if grad_key is None
            else X.had(G, NNExpr(grad_key, xs, tshape(xs[0]), tuple(p[k] for k, _ in params)))),
        doc=doc, extra={"derivation": derivation, "elementwise": True}))


_unary("abs", np.abs, np.sign, "sign", "abs(X): |x| entrywise; abs'(0) = 0 as torch",
       (r"\frac{d|x|}{dx} = \operatorname{sign}(x), \quad \operatorname{sign}(0) = 0",))
_unary("sign", np.sign, lambda x: np.zeros_like(x), None,
       "sign(X): -1, 0 or 1 entrywise; its gradient is 0 (torch)",
       (r"\frac{d}{dx}\operatorname{sign}(x) = 0 \text{ (also at 0, as torch)}",))
_unary("gelu", nn_kernels.gelu, nn_kernels.gelu_grad, "gelu_grad",
       "gelu(X) = x Phi(x), Phi the standard normal CDF (erf form, torch's default)",
       (r"\operatorname{GELU}(x) = x\,\Phi(x), \quad \Phi(x) = \tfrac{1}{2}\left(1 + \operatorname{erf}(x/\sqrt{2})\right)",
        r"\operatorname{GELU}'(x) = \Phi(x) + x\,\varphi(x), \quad \varphi(x) = e^{-x^2/2}/\sqrt{2\pi}"))
_unary("gelu_tanh", nn_kernels.gelu_tanh, nn_kernels.gelu_tanh_grad, "gelu_tanh_grad",
       "gelu_tanh(X): torch's gelu(approximate='tanh')",
       (r"\operatorname{GELU}_{\tanh}(x) = \tfrac{x}{2}\left(1 + \tanh u\right), \quad u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)",
        r"\operatorname{GELU}_{\tanh}'(x) = \tfrac{1}{2}(1 + \tanh u) + \tfrac{x}{2}\left(1 - \tanh^2 u\right)"
        r"\sqrt{2/\pi}\,(1 + 0.134145\,x^2)"))
_unary("elu", nn_kernels.elu, nn_kernels.elu_grad, "elu_grad",
       "elu(X, alpha): x for x > 0, alpha (e^x - 1) otherwise (alpha defaults to 1)",
       (r"\operatorname{ELU}'(x) = 1 \text{ for } x > 0, \quad \alpha e^{x} \text{ for } x \le 0",),
       params=(("alpha", 1.0),))
_unary("leaky_relu", nn_kernels.leaky_relu, nn_kernels.leaky_relu_grad, "leaky_relu_grad",
       "leaky_relu(X, slope): x for x > 0, slope * x otherwise (slope defaults to 0.01; at 0 the slope, as torch)",
       (r"\operatorname{LeakyReLU}_a'(x) = 1 \text{ for } x > 0, \quad a \text{ for } x \le 0",),
       params=(("slope", 0.01),))
_unary("erf", nn_kernels.erf, lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-x * x), "erf_grad",
       "erf(X): the error function entrywise",
       (r"\operatorname{erf}'(x) = \tfrac{2}{\sqrt{\pi}}\, e^{-x^2}",))


# The derivatives the rules print, as spec functions too (a matrix step's
# ``expr`` reads back: ``dL_dH * gelu_grad(U)``), with their own derivatives
# for the numeric checks; no matrix rule of their own (MissingRule).
for _name, _fwd, _grad, _params, _doc in (
        ("gelu_grad", nn_kernels.gelu_grad, nn_kernels.gelu_grad2, (), "gelu_grad(X) = Phi(x) + x phi(x)"),
        ("gelu_tanh_grad", nn_kernels.gelu_tanh_grad, nn_kernels.gelu_tanh_grad2, (), "the derivative of gelu_tanh"),
        ("elu_grad", nn_kernels.elu_grad, lambda x, a: np.where(x > 0, 0.0, a * np.exp(np.minimum(x, 0.0))),
         (("alpha", 1.0),), "elu_grad(X, alpha): 1 for x > 0, alpha e^x otherwise"),
        ("leaky_relu_grad", nn_kernels.leaky_relu_grad, lambda x, a: np.zeros_like(x), (("slope", 0.01),),
         "leaky_relu_grad(X, slope): 1 for x > 0, slope otherwise")):
    def _shape(shapes, p, _n=_name, _ps=_params):
        _check_rank(_n, shapes[0])
        return tuple(shapes[0])
    register(TensorOp(
        name=_name, inputs=1, params=_params, shape=_shape,
        forward=lambda xs, p, _f=_fwd, _ps=_params: np.asarray(
            _f(np.asarray(xs[0], float), *[p[k] for k, _ in _ps]), float),
        vjp=lambda i, G, xs, out, p, _g=_grad, _ps=_params: G * _g(np.asarray(xs[0], float), *[p[k] for k, _ in _ps]),
        symbolic=lambda xs, p, _n=_name, _ps=_params: NNExpr(_n, xs, tshape(xs[0]), tuple(p[k] for k, _ in _ps)),
        doc=_doc, extra={"elementwise": True}))

register(TensorOp(
    name="amax_share", inputs=1, params=(("axis", None),),
    shape=lambda shapes, p: (_axis("amax_share", shapes[0], p["axis"]), tuple(shapes[0]))[1],
    forward=lambda xs, p: nn_kernels.amax_share(np.asarray(xs[0], float), _ax(xs, p)),
    vjp=lambda i, G, xs, out, p: np.zeros(np.shape(xs[0])),
    symbolic=lambda xs, p: NNExpr("amax_share", (xs[0], xs[0]), tshape(xs[0]), (p["axis"],)),
    doc="amax_share(X, axis): each entry's share of max(X, axis)'s gradient (1/ties at a maximum, else 0)",
    extra={"kink": lambda xs, p: nn_kernels.top_gap(xs[0], _ax(xs, p))}))

register(TensorOp(
    name="pi", inputs=0, shape=lambda shapes, p: (),
    forward=lambda xs, p: np.float64(np.pi),
    vjp=lambda i, G, xs, out, p: None,
    symbolic=lambda xs, p: sympy.pi,
    doc="pi: the constant"))


# --- shapes ----------------------------------------------------------------

_RESHAPE_PARAMS = (("rows", None), ("cols", None), ("n3", None), ("n4", None))


def _sizes(p) -> tuple:
    return tuple(p[k] for k, _ in _RESHAPE_PARAMS if p.get(k) is not None)


def _reshape_shape(shapes, p):
    (s,) = shapes
    _check_rank("reshape", s)
    if p.get("rows") is None:
        raise ShapeError("reshape: needs the sizes, reshape(X, n) or reshape(X, rows, cols) (up to four)")
    sizes = tuple(_whole("reshape", "a size", n, 1) for n in _sizes(p))
    if int(np.prod(sizes)) != int(np.prod(s)):
        raise ShapeError(f"reshape: {_dims(s)} has {int(np.prod(s))} entries, "
                         f"{_dims(sizes)} needs {int(np.prod(sizes))}")
    return sizes


def _ones_shape(shapes, p):
    if p.get("rows") is None:
        raise ShapeError("ones: needs the sizes, ones(n) or ones(rows, cols) (up to four)")
    return tuple(_whole("ones", "a size", n, 1) for n in _sizes(p))


register(TensorOp(
    name="ones", inputs=0, params=_RESHAPE_PARAMS, shape=_ones_shape,
    forward=lambda xs, p: np.ones(_sizes(p)),
    vjp=lambda i, G, xs, out, p: None,
    symbolic=lambda xs, p: X.ones(_sizes(p)),
    doc="ones(rows, cols): a tensor of ones (numpy's ones); c * ones(...) is the adjoint of a mean "
        "that nothing else shapes"))

register(TensorOp(
    name="reshape", inputs=1, params=_RESHAPE_PARAMS,
    shape=_reshape_shape,
    forward=lambda xs, p: np.reshape(xs[0], _sizes(p)).astype(float),
    vjp=lambda i, G, xs, out, p: np.reshape(G, np.shape(xs[0])),
    symbolic=lambda xs, p: NNExpr("reshape", xs, _sizes(p), ()),
    rule=lambda i, G, xs, out, p: NNExpr("reshape", (G,), tshape(xs[0]), ()),
    doc="reshape(X, rows, cols): the entries in row-major order (numpy's reshape); up to four sizes",
    extra={"derivation": (r"\bar{X} = \operatorname{reshape}(\bar{Y}, \text{shape of } X)",)}))

register(TensorOp(
    name="flatten", inputs=1,
    shape=lambda shapes, p: (_check_rank("flatten", shapes[0]) or int(np.prod(shapes[0])),),
    forward=lambda xs, p: np.ravel(xs[0]).astype(float),
    vjp=lambda i, G, xs, out, p: np.reshape(G, np.shape(xs[0])),
    symbolic=lambda xs, p: NNExpr("flatten", xs, (sympy.Mul(*tshape(xs[0])),), ()),
    rule=lambda i, G, xs, out, p: NNExpr("reshape", (G,), tshape(xs[0]), ()),
    doc="flatten(X): the entries as one vector, row-major (numpy's ravel)",
    extra={"derivation": (r"\bar{X} = \operatorname{reshape}(\bar{y}, \text{shape of } X)",)}))


def _sum_to_shape(shapes, p):
    (s,) = shapes
    _check_rank("sum_to", s)
    sizes = tuple(_whole("sum_to", "a size", n, 1) for n in _sizes(p))
    if not sizes:
        raise ShapeError("sum_to: needs the sizes to sum down to, sum_to(X, rows, cols) (up to four)")
    fits = len(sizes) <= len(s) and all(n in (1, m) for n, m in zip(sizes, tuple(s)[len(s) - len(sizes):]))
    if not fits:
        raise ShapeError(f"sum_to: {_dims(s)} does not sum down to {_dims(sizes)} (numpy's broadcasting, reversed)")
    return sizes


register(TensorOp(
    name="sum_to", inputs=1, params=_RESHAPE_PARAMS,
    shape=_sum_to_shape,
    forward=lambda xs, p: nn_kernels.sum_to(np.asarray(xs[0], float), _sizes(p)),
    vjp=lambda i, G, xs, out, p: np.broadcast_to(np.asarray(G, float), np.shape(xs[0])).copy(),
    symbolic=lambda xs, p: X.sum_to(xs[0], _sizes(p)),
    rule=lambda i, G, xs, out, p: X.had(G, X.ones(tshape(xs[0]))),
    doc="sum_to(X, rows, cols): X summed over the axes that broadcasting would add or stretch to reach "
        "X's shape from rows x cols (torch's sum_to_size): the gradient of a broadcast bias",
    extra={"derivation": (r"\bar{X} = \bar{Y} \text{ broadcast back to the shape of } X",)}))


# --- convolution -------------------------------------------------------------
# The spec's layouts: conv2d takes X as H x W with K k x k, X as C x H x W with
# K C_out x C_in x k x k, or a batch N x C x H x W; conv1d the same one axis
# down (nn_kernels.conv2d_any and friends put them into (N, C, H, W)).

def _conv_layout(name, xs_shape, ks_shape, spatial):
    """(batch?, channels?) of a conv's operands, or a ShapeError."""
    xn, kn = len(xs_shape), len(ks_shape)
    if xn == spatial and kn == spatial:
        return False, False
    if kn == spatial + 2 and xn in (spatial + 1, spatial + 2):
        c_in = xs_shape[-spatial - 1]
        if ks_shape[1] != c_in:
            raise ShapeError(f"{name}: the kernel {_dims(ks_shape)} expects {ks_shape[1]} input channels, "
                             f"the input {_dims(xs_shape)} has {c_in}")
        return xn == spatial + 2, True
    ex = "H x W with K k x k, or C x H x W with K C_out x C_in x k x k" if spatial == 2 else \
        "L with k of length k, or C x L with k C_out x C_in x k"
    raise ShapeError(f"{name}: input {_dims(xs_shape)} and kernel {_dims(ks_shape)} do not fit ({ex})")


def _conv_args(name, shapes, p):
    """The two operands' shapes, the stride and the padding, checked."""
    a, b = (tuple(s) for s in shapes)
    for s in (a, b):
        _check_rank(name, s)
    return a, b, _whole(name, "stride", p["stride"], 1), _whole(name, "padding", p["padding"], 0)


def _conv_shape(name, spatial):
    def shape(shapes, p):
        xs, ks, stride, pad = _conv_args(name, shapes, p)
        batch, chans = _conv_layout(name, xs, ks, spatial)
        sizes_in, sizes_k = xs[-spatial:], ks[-spatial:]
        out = []
        for n, k in zip(sizes_in, sizes_k):
            if k > n + 2 * pad:
                raise ShapeError(f"{name}: kernel {_dims(sizes_k)} larger than the input "
                                 f"{_dims(sizes_in)} with padding {pad}")
            out.append((n + 2 * pad - k) // stride + 1)
        lead = xs[:1] if batch else ()
        return lead + ((ks[0],) if chans else ()) + tuple(out)
    return shape


def _remainders(x_shape, k_shape, stride, pad, spatial):
    """Rows (columns) of the input a floor-mode stride leaves out of every
    window: the output padding that brings conv_transpose back to the input."""
    return tuple((n + 2 * pad - k) % stride for n, k in zip(tuple(x_shape)[-spatial:], tuple(k_shape)[-spatial:]))


def _conv_rule(name, spatial):
    """dL/dK = xcorr(X, G): the input cross-correlated with delta; dL/dX =
    conv_transpose(G, K): delta fully convolved with the flipped kernel."""
    d = name[-2:]

    def rule(i, G, xs, out, p):
        A, K = xs
        s, pad = p["stride"], p["padding"]
        if i == 1:
            return NNExpr(f"xcorr{d}", (A, G), tshape(K), (s, pad) + tshape(K)[-spatial:])
        return NNExpr(f"conv_transpose{d}", (G, K), tshape(A),
                      (s, pad) + _remainders(tshape(A), tshape(K), s, pad, spatial))
    return rule


_CONV_DERIVATION = (
    r"Y_{o,i,j} = \sum_{c,a,b} X_{c,\,si+a,\,sj+b}\, K_{o,c,a,b} \;\Rightarrow\;"
    r"\frac{\partial L}{\partial K_{o,c,a,b}} = \sum_{i,j} X_{c,\,si+a,\,sj+b}\, \delta_{o,i,j}"
    r" = \left(X_c \star \delta_o\right)_{a,b}",
    r"\frac{\partial L}{\partial X_{c,u,v}} = \sum_{o,i,j:\, si+a=u,\, sj+b=v} \delta_{o,i,j}\, K_{o,c,a,b}"
    r" = \sum_o \left(\operatorname{pad}_{k-1}(\delta_o) \star \operatorname{rot}_{180}(K_{o,c})\right)_{u,v}"
    r"\ \ (s = 1,\ p = 0)")

#: the same for one spatial axis (a sequence of C channels, a kernel of k taps)
_CONV1D_DERIVATION = (
    r"Y_{o,i} = \sum_{c,a} X_{c,\,si+a}\, K_{o,c,a} \;\Rightarrow\;"
    r"\frac{\partial L}{\partial K_{o,c,a}} = \sum_{i} X_{c,\,si+a}\, \delta_{o,i}"
    r" = \left(X_c \star \delta_o\right)_{a}",
    r"\frac{\partial L}{\partial X_{c,u}} = \sum_{o,i:\, si+a=u} \delta_{o,i}\, K_{o,c,a}"
    r" = \sum_o \left(\operatorname{pad}_{k-1}(\delta_o) \star \operatorname{flip}(K_{o,c})\right)_{u}"
    r"\ \ (s = 1,\ p = 0)")


# The gradients of a convolution are operations of their own, so that a
# matrix step's expr reads back as spec syntax: xcorr2d(X, G) is dL/dK and
# conv_transpose2d(G, K) is dL/dX; each one's gradients are the other two.

def _fl(A):
    return np.asarray(A, dtype=float)


_XCORR = {2: lambda X, G, s, p, ks: nn_kernels.xcorr2d_any(_fl(X), _fl(G), s, p, *ks),
          1: lambda X, G, s, p, ks: nn_kernels.xcorr1d_any(_fl(X), _fl(G), s, p, *ks)}
_TRANSPOSE = {2: lambda G, K, s, p, rs: nn_kernels.conv_transpose2d_any(_fl(G), _fl(K), s, p, *rs),
              1: lambda G, K, s, p, rs: nn_kernels.conv_transpose1d_any(_fl(G), _fl(K), s, p, *rs)}
_CONV = {2: lambda X, K, s, p: nn_kernels.conv2d_any(_fl(X), _fl(K), s, p),
         1: lambda X, K, s, p: nn_kernels.conv1d_any(_fl(X), _fl(K), s, p)}
_SIZE_PARAMS = {2: ("rows", "cols"), 1: ("size",)}
_OUT_PAD_PARAMS = {2: ("output_padding", "output_padding_cols"), 1: ("output_padding",)}

for _name, _spatial in (("conv2d", 2), ("conv1d", 1)):
    register(TensorOp(
        name=_name, inputs=2, params=(("stride", 1), ("padding", 0)),
        shape=_conv_shape(_name, _spatial),
        forward=lambda xs, p, _s=_spatial: _CONV[_s](xs[0], xs[1], p["stride"], p["padding"]),
        vjp=lambda i, G, xs, out, p, _s=_spatial: (
            _XCORR[_s](xs[0], G, p["stride"], p["padding"], np.shape(xs[1])[-_s:]) if i == 1
            else _TRANSPOSE[_s](G, xs[1], p["stride"], p["padding"],
                                _remainders(np.shape(xs[0]), np.shape(xs[1]), p["stride"], p["padding"], _s))),
        symbolic=lambda xs, p, _n=_name: NNExpr(_n, xs, _out_shape(_n, xs, p), (p["stride"], p["padding"])),
        rule=_conv_rule(_name, _spatial),
        doc=f"{_name}(X, K, stride, padding): cross-correlation as torch's {_name} (stride 1, padding 0 by default)",
        extra={"derivation": _CONV_DERIVATION if _spatial == 2 else _CONV1D_DERIVATION}))


def _layout(name, a, b, spatial, what):
    """Check the ranks of the two operands of xcorr / conv_transpose."""
    ok = {"xcorr": ((spatial, spatial), (spatial + 1, spatial + 1), (spatial + 2, spatial + 2)),
          "transpose": ((spatial, spatial), (spatial + 1, spatial + 2), (spatial + 2, spatial + 2))}[what]
    if (len(a), len(b)) not in ok:
        ex = {"xcorr": "the input and delta with the same number of axes",
              "transpose": "delta with a kernel of as many axes, or C_out x ... with C_out x C_in x ..."}[what]
        raise ShapeError(f"{name}: {_dims(a)} and {_dims(b)} do not fit ({ex})")


def _xcorr_shape(name, spatial):
    def shape(shapes, p):
        xs, gs, stride, pad = _conv_args(name, shapes, p)
        _layout(name, xs, gs, spatial, "xcorr")
        if len(xs) == spatial + 2 and xs[0] != gs[0]:
            raise ShapeError(f"{name}: the input has {xs[0]} images, delta {gs[0]}")
        given = [p.get(k) for k in _SIZE_PARAMS[spatial]]
        if spatial == 2 and given[1] is None:
            given[1] = given[0]         # one size: a square kernel
        sizes = []
        for n, m, k in zip(xs[-spatial:], gs[-spatial:], given):
            full = n + 2 * pad - stride * (m - 1)
            k = full if k is None else _whole(name, "the kernel size", k, 1)
            if full < 1 or not full - stride < k <= full:
                raise ShapeError(f"{name}: a kernel of size {k} does not give {m} outputs from {n} "
                                 f"with stride {stride} and padding {pad}")
            sizes.append(k)
        return tuple(sizes) if len(xs) == spatial else (gs[-spatial - 1], xs[-spatial - 1]) + tuple(sizes)
    return shape


def _transpose_shape(name, spatial):
    def shape(shapes, p):
        gs, ks, stride, pad = _conv_args(name, shapes, p)
        _layout(name, gs, ks, spatial, "transpose")
        if len(ks) > spatial and ks[0] != gs[-spatial - 1]:
            raise ShapeError(f"{name}: the kernel {_dims(ks)} expects {ks[0]} channels of delta, "
                             f"{_dims(gs)} has {gs[-spatial - 1]}")
        extra = [p.get(k) for k in _OUT_PAD_PARAMS[spatial]]
        if spatial == 2 and extra[1] is None:
            extra[1] = extra[0]
        sizes = []
        for m, k, e in zip(gs[-spatial:], ks[-spatial:], extra):
            e = _whole(name, "output_padding", e, 0)
            if e >= stride:
                raise ShapeError(f"{name}: output_padding must be smaller than the stride, "
                                 f"got {e} with stride {stride}")
            n = (m - 1) * stride - 2 * pad + k + e
            if n < 1:
                raise ShapeError(f"{name}: {_dims(gs)} with a kernel of {k}, stride {stride} and padding {pad} "
                                 "gives no output")
            sizes.append(n)
        lead = gs[:1] if len(gs) == spatial + 2 else ()
        return lead + ((ks[1],) if len(ks) > spatial else ()) + tuple(sizes)
    return shape


def _shape_of(x) -> tuple:
    return tuple(np.shape(x)) if isinstance(x, np.ndarray) else tshape(x)


def _resolved(op_name, xs, p, spatial) -> tuple:
    """The parameters of xcorr / conv_transpose with every default filled in:
    stride, padding, then the kernel size (output padding) of each axis."""
    op = TENSOR_OPS[op_name]
    shape = op.shape(tuple(_shape_of(x) for x in xs), op.params_of(tuple(p.get(k) for k, _ in op.params)))
    if op_name.startswith("xcorr"):
        return (p["stride"], p["padding"]) + tuple(shape[-spatial:])
    gs, ks = _shape_of(xs[0]), _shape_of(xs[1])
    return (p["stride"], p["padding"]) + tuple(
        n - ((m - 1) * p["stride"] - 2 * p["padding"] + k)
        for n, m, k in zip(shape[-spatial:], gs[-spatial:], ks[-spatial:]))


for _d, _spatial in (("2d", 2), ("1d", 1)):
    _xn, _tn = f"xcorr{_d}", f"conv_transpose{_d}"
    register(TensorOp(
        name=_xn, inputs=2,
        params=(("stride", 1), ("padding", 0)) + tuple((k, None) for k in _SIZE_PARAMS[_spatial]),
        shape=_xcorr_shape(_xn, _spatial),
        forward=lambda xs, p, _n=_xn, _s=_spatial: _XCORR[_s](
            xs[0], xs[1], p["stride"], p["padding"], _resolved(_n, xs, p, _s)[2:]),
        vjp=lambda i, G, xs, out, p, _s=_spatial: (
            _TRANSPOSE[_s](xs[1], G, p["stride"], p["padding"],
                           _remainders(np.shape(xs[0]), np.shape(G), p["stride"], p["padding"], _s)) if i == 0
            else _CONV[_s](xs[0], G, p["stride"], p["padding"])),
        symbolic=lambda xs, p, _n=_xn, _s=_spatial: NNExpr(_n, xs, _out_shape(_n, xs, p),
                                                          _resolved(_n, xs, p, _s)),
        rule=lambda i, G, xs, out, p, _s=_spatial, _d=_d: (
            NNExpr(f"conv_transpose{_d}", (xs[1], G), tshape(xs[0]),
                   (p["stride"], p["padding"]) + _remainders(tshape(xs[0]), tshape(G), p["stride"], p["padding"], _s))
            if i == 0 else NNExpr(f"conv{_d}", (xs[0], G), tshape(xs[1]), (p["stride"], p["padding"]))),
        doc=f"{_xn}(X, G, stride, padding): X (padded) cross-correlated with G (dilated by the stride), every "
            f"channel of X with every channel of G: the gradient of conv{_d}(X, K) with respect to K when G is "
            f"its output's adjoint (torch.nn.grad.conv{_d}_weight); the kernel is the largest that fits unless "
            "its size is given",
        extra={"derivation": (r"\frac{\partial L}{\partial K} = X \star \delta",)}))
    register(TensorOp(
        name=_tn, inputs=2,
        params=(("stride", 1), ("padding", 0)) + tuple((k, 0 if k == "output_padding" else None)
                                                       for k in _OUT_PAD_PARAMS[_spatial]),
        shape=_transpose_shape(_tn, _spatial),
        forward=lambda xs, p, _n=_tn, _s=_spatial: _TRANSPOSE[_s](
            xs[0], xs[1], p["stride"], p["padding"], _resolved(_n, xs, p, _s)[2:]),
        vjp=lambda i, G, xs, out, p, _s=_spatial: (
            _CONV[_s](G, xs[1], p["stride"], p["padding"]) if i == 0
            else _XCORR[_s](G, xs[0], p["stride"], p["padding"], np.shape(xs[1])[-_s:])),
        symbolic=lambda xs, p, _n=_tn, _s=_spatial: NNExpr(_n, xs, _out_shape(_n, xs, p),
                                                          _resolved(_n, xs, p, _s)),
        rule=lambda i, G, xs, out, p, _s=_spatial, _d=_d: (
            NNExpr(f"conv{_d}", (G, xs[1]), tshape(xs[0]), (p["stride"], p["padding"])) if i == 0
            else NNExpr(f"xcorr{_d}", (G, xs[0]), tshape(xs[1]),
                        (p["stride"], p["padding"]) + tshape(xs[1])[-_s:])),
        doc=f"{_tn}(G, K, stride, padding, output_padding): as torch's {_tn}, G (dilated by the stride) fully "
            f"convolved with the flipped K, cropped by the padding: the gradient of conv{_d}(X, K) with respect "
            "to X (output_padding: the rows a floor-mode stride left out of every window)",
        extra={"derivation": (r"\frac{\partial L}{\partial X} = \operatorname{pad}_{k-1}(\delta) \star "
                              + (r"\operatorname{rot}_{180}(K)" if _spatial == 2 else r"\operatorname{flip}(K)"),)}))


def _out_shape(name, xs, p):
    """The output shape of a registered op from SymPy operands (their tshape)."""
    op = TENSOR_OPS[name]
    return op.shape(tuple(tshape(x) for x in xs), op.params_of(tuple(p[k] for k, _ in op.params)))


# --- pooling -----------------------------------------------------------------

def _pool_params(name, p):
    size = _whole(name, "size", p["size"], 1)
    stride = size if p["stride"] is None else _whole(name, "stride", p["stride"], 1)
    return size, stride


def _pool_shape(name):
    def shape(shapes, p):
        (s,) = shapes
        _check_rank(name, s)
        if len(s) < 2:
            raise ShapeError(f"{name}: needs an H x W map (or C x H x W), got {_dims(s)}")
        size, stride = _pool_params(name, p)
        if size > s[-2] or size > s[-1]:
            raise ShapeError(f"{name}: window {size} x {size} larger than the input {s[-2]} x {s[-1]}")
        return tuple(s[:-2]) + ((s[-2] - size) // stride + 1, (s[-1] - size) // stride + 1)
    return shape


for _name, _fwd, _unpool, _what, _deriv in (
        ("maxpool2d", nn_kernels.maxpool2d, "maxunpool2d",
         "the largest entry of each window; a tie's gradient goes to the first maximal entry (row-major)",
         r"\frac{\partial L}{\partial X_{u,v}} = \sum_{(i,j):\ (u,v) = \arg\max W_{ij}} \delta_{i,j}"
         r" \quad (\text{the first maximum of window } W_{ij} \text{ in row-major order})"),
        ("avgpool2d", nn_kernels.avgpool2d, "avgunpool2d",
         "the mean of each window",
         r"\frac{\partial L}{\partial X_{u,v}} = \frac{1}{k^2}\sum_{(i,j):\ (u,v) \in W_{ij}} \delta_{i,j}")):
    register(TensorOp(
        name=_name, inputs=1, params=(("size", None), ("stride", None)),
        shape=_pool_shape(_name),
        forward=lambda xs, p, _f=_fwd, _n=_name: _f(np.asarray(xs[0], float), *_pool_params(_n, p)),
        vjp=lambda i, G, xs, out, p, _u=_unpool, _n=_name: getattr(nn_kernels, _u)(
            np.asarray(G, float), np.asarray(xs[0], float), *_pool_params(_n, p)),
        symbolic=lambda xs, p, _n=_name: NNExpr(_n, xs, _out_shape(_n, xs, p), _pool_params(_n, p)),
        rule=lambda i, G, xs, out, p, _u=_unpool, _n=_name: NNExpr(_u, (G, xs[0]), tshape(xs[0]),
                                                                   _pool_params(_n, p)),
        doc=f"{_name}(X, size, stride): {_what}; floor mode, stride defaults to size",
        extra={"derivation": (_deriv,), **({"kink": lambda xs, p, _n=_name: nn_kernels.window_gap(
            xs[0], *_pool_params(_n, p))} if _name == "maxpool2d" else {})}))


# The gradients of pooling, operations of their own (a matrix step's expr
# reads back): maxunpool2d(G, X, size) routes each entry of G to the first
# maximum of its window of X; avgunpool2d(G, X, size) spreads it evenly.

def _unpool_shape(name):
    pooled = _pool_shape(name)

    def shape(shapes, p):
        gs, xs = (tuple(s) for s in shapes)
        want = pooled((xs,), p)
        if gs != want:
            raise ShapeError(f"{name}: pooling {_dims(xs)} gives {_dims(want)}, the upstream is {_dims(gs)}")
        return xs
    return shape


def _unpool_rule(name):
    def rule(i, G, xs, out, p):
        if i == 1:
            return sympy.Integer(0)       # the input only says where (max) or how large (average)
        if name == "avgunpool2d":
            return NNExpr("avgpool2d", (G,), tshape(xs[0]), _pool_params(name, p))
        return NNExpr("maxpool2d_at", (G, xs[1]), tshape(xs[0]), _pool_params(name, p))
    return rule


register(TensorOp(
    name="maxunpool2d", inputs=2, params=(("size", None), ("stride", None)),
    shape=_unpool_shape("maxunpool2d"),
    forward=lambda xs, p: nn_kernels.maxunpool2d(_fl(xs[0]), _fl(xs[1]), *_pool_params("maxunpool2d", p)),
    vjp=lambda i, G, xs, out, p: (
        nn_kernels.maxpool2d_at(_fl(G), _fl(xs[1]), *_pool_params("maxunpool2d", p)) if i == 0
        else np.zeros(np.shape(xs[1]))),
    symbolic=lambda xs, p: NNExpr("maxunpool2d", xs, tshape(xs[1]), _pool_params("maxunpool2d", p)),
    rule=_unpool_rule("maxunpool2d"),
    doc="maxunpool2d(G, X, size, stride): each entry of G routed to the first maximum (row-major) of its "
        "window of X, overlapping windows adding up: the gradient of maxpool2d(X, size, stride) when G is "
        "its output's adjoint",
    extra={"derivation": (r"\frac{\partial L}{\partial X} = \operatorname{route}(\delta;\ \arg\max X)",),
           "kink": lambda xs, p: nn_kernels.window_gap(xs[1], *_pool_params("maxunpool2d", p))}))

def _at_shape(shapes, p):
    ys, xs = (tuple(s) for s in shapes)
    if ys != xs:
        raise ShapeError(f"maxpool2d_at: the values {_dims(ys)} and the map {_dims(xs)} differ in shape")
    return _pool_shape("maxpool2d_at")((xs,), p)


register(TensorOp(
    name="maxpool2d_at", inputs=2, params=(("size", None), ("stride", None)),
    shape=_at_shape,
    forward=lambda xs, p: nn_kernels.maxpool2d_at(_fl(xs[0]), _fl(xs[1]), *_pool_params("maxpool2d_at", p)),
    vjp=lambda i, G, xs, out, p: (
        nn_kernels.maxunpool2d(_fl(G), _fl(xs[1]), *_pool_params("maxpool2d_at", p)) if i == 0
        else np.zeros(np.shape(xs[1]))),
    symbolic=lambda xs, p: NNExpr("maxpool2d_at", xs, _out_shape("maxpool2d_at", xs, p),
                                  _pool_params("maxpool2d_at", p)),
    rule=lambda i, G, xs, out, p: (NNExpr("maxunpool2d", (G, xs[1]), tshape(xs[1]), _pool_params("maxpool2d_at", p))
                                   if i == 0 else sympy.Integer(0)),
    doc="maxpool2d_at(Y, X, size, stride): each window's entry of Y where X has the window's first maximum "
        "(maxpool2d(X) is maxpool2d_at(X, X)): the gradient of maxunpool2d(G, X) with respect to G",
    extra={"derivation": (r"\frac{\partial L}{\partial G} = \operatorname{gather}(\bar{Y};\ \arg\max X)"
                          r" \quad (\text{maxunpool2d is linear in } G)",),
           "kink": lambda xs, p: nn_kernels.window_gap(xs[1], *_pool_params("maxpool2d_at", p))}))

register(TensorOp(
    name="avgunpool2d", inputs=2, params=(("size", None), ("stride", None)),
    shape=_unpool_shape("avgunpool2d"),
    forward=lambda xs, p: nn_kernels.avgunpool2d(_fl(xs[0]), _fl(xs[1]), *_pool_params("avgunpool2d", p)),
    vjp=lambda i, G, xs, out, p: (
        nn_kernels.avgpool2d(_fl(G), *_pool_params("avgunpool2d", p)) if i == 0 else np.zeros(np.shape(xs[1]))),
    symbolic=lambda xs, p: NNExpr("avgunpool2d", xs, tshape(xs[1]), _pool_params("avgunpool2d", p)),
    rule=_unpool_rule("avgunpool2d"),
    doc="avgunpool2d(G, X, size, stride): each entry of G spread evenly over its window (X gives the "
        "shape): the gradient of avgpool2d(X, size, stride) when G is its output's adjoint",
    extra={"derivation": (r"\frac{\partial L}{\partial X} = \tfrac{1}{k^2}\operatorname{spread}(\delta)",)}))


# the kernels by the names the printed numpy calls them (matrix steps are
# evaluated by running that code: derive.engine.exprs.evaluate)
for _n, _f in vars(nn_kernels).items():
    if callable(_f) and not _n.startswith("_") and getattr(_f, "__module__", "") == nn_kernels.__name__:
        X.register_numpy("nn_" + _n, _f)


#: rules a worked solution states without a derivation (the reference has them)
SELF_EVIDENT = ("sum", "mean", "reshape", "flatten")


def textbook_derivations(op_names) -> list:
    r"""(operation, LaTeX lines) of the textbook derivation of each operation
    named, once each, in the order given, for a worked solution to show
    beside the matrix steps that use the rules.

    >>> [(n, len(lines)) for n, lines in textbook_derivations(["conv2d", "relu", "sum", "softmax", "conv2d"])]
    [('conv2d', 2), ('softmax', 2)]
    """
    out, seen = [], set(SELF_EVIDENT)
    for name in op_names:
        op = TENSOR_OPS.get(name)
        lines = op.extra.get("derivation") if op is not None else None
        if lines and name not in seen:
            seen.add(name)
            out.append((name, tuple(lines)))
    return out
