r"""Matrix expressions of the neural-network operations and their rules.

One class, :class:`NNExpr` (an :class:`~derive.engine.exprs.TExpr`), stands
for every such operation (softmax along an axis, a convolution, the gradient
routed through a max-pool ...): a key, the operands, the parameters and the
output's numpy shape.  How each key prints is data in :data:`FORMS`, one
entry per key with its LaTeX (the textbook form: a conv layer's dL/dK is
``X \star G``), its spec syntax and its numpy code, found by the printers of
:mod:`derive.engine.exprs` through the hooks ``_latex``, ``_spec`` and
``_numpycode``; rules combine them with that module's constructors
(``had``, ``sub``, ...).

The numpy code calls the kernels of :mod:`derive.engine.nn_kernels` as
``nn_<kernel>``; :func:`numpy_helpers` returns their source for a standalone
module, so generated code computes what the worked solution shows.

>>> S = X.TensorSymbol("S", (3, 4))
>>> P = NNExpr("softmax", (S,), (3, 4), (1,))
>>> X.latex(P), X.spec(P), X.numpy_code(P)
('\\operatorname{softmax}\\left(S, 1\\right)', 'softmax(S, 1)', 'nn_softmax(S, 1)')
"""
from __future__ import annotations

import inspect
import re

import numpy as np
import sympy
from sympy import Tuple
from sympy.core.symbol import Str

from derive.engine import exprs as X
from derive.engine import nn_kernels

_NONE = Str("none")


def _to_sympy(v):
    if v is None:
        return _NONE
    if isinstance(v, (tuple, list)):
        return Tuple(*[_to_sympy(x) for x in v])
    if isinstance(v, sympy.Basic):
        return v
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"NNExpr parameter {v!r} is not a number")
    return sympy.Integer(int(v)) if isinstance(v, (int, np.integer)) else sympy.Float(float(v))


def _to_python(v):
    if v == _NONE:
        return None
    if isinstance(v, Tuple):
        return tuple(_to_python(x) for x in v)
    if isinstance(v, sympy.Integer):
        return int(v)
    if isinstance(v, sympy.Float):
        return float(v)
    return v


def tshape(x) -> tuple:
    """The numpy shape of a SymPy operand (a scalar expression: ()).

    >>> tshape(X.TensorSymbol("x", (3,))), tshape(sympy.Symbol("a")), tshape(X.TensorSymbol("K", (2, 1, 3, 3)))
    ((3,), (), (2, 1, 3, 3))
    """
    s = X._np_shape_of(x)
    return tuple(s) if s is not None else ()


_PREC = {"Add": X.P_ADD, "Mul": X.P_MUL, "Func": X.P_ATOM}


class NNExpr(X.TExpr):
    """One neural-network operation (or rule helper) as a matrix expression.

    ``key`` selects the printed forms in :data:`FORMS`; ``operands`` are
    SymPy expressions; ``shape`` the output's numpy shape; ``params`` plain
    numbers (or None, or tuples of them).
    """

    def __new__(cls, key, operands, shape, params=()):
        key = key.name if isinstance(key, Str) else key   # SymPy rebuilds from args
        if key not in FORMS:
            raise KeyError(f"no printed forms for tensor operation {key}")
        return X.TExpr.__new__(cls, Str(key), Tuple(*operands),
                               Tuple(*[sympy.sympify(n) for n in shape]),
                               Tuple(*[_to_sympy(p) for p in params]))

    def doit(self, **hints):
        # a printed rule stays as written: nothing here evaluates further
        return self

    @property
    def key(self) -> str:
        return self.args[0].name

    @property
    def operands(self) -> tuple:
        return self.args[1].args

    @property
    def np_shape(self) -> tuple:
        return tuple(int(n) if n.is_Integer else n for n in self.args[2])

    tshape = np_shape

    @property
    def params(self) -> tuple:
        return tuple(_to_python(p) for p in self.args[3])

    @property
    def prec(self) -> int:
        """How tightly the printed form binds (the printers parenthesise by it)."""
        rank = FORMS[self.key].get("precedence", "Func")
        return _PREC[rank(self) if callable(rank) else rank]

    def prec_for(self, printer) -> int:
        """How tightly the form ``printer`` writes binds: the LaTeX of a sum
        along an axis is a product (X 1), its spec and numpy text a call."""
        if isinstance(printer, X.LatexPrinter):
            return self.prec
        rank = FORMS[self.key].get("text_precedence", "Func")
        rank = rank(self, printer) if callable(rank) else rank
        return rank if isinstance(rank, int) else _PREC[rank]

    def _latex(self, printer):
        return FORMS[self.key]["latex"](printer, self)

    def _spec(self, printer):
        return FORMS[self.key]["spec"](printer, self)

    def _numpycode(self, printer):
        return FORMS[self.key]["numpy"](printer, self)

    def _batchcode(self, printer):
        """numpy for values with leading batch axes (generated code): axes
        counted from the end, operands aligned on their sample axes."""
        return FORMS[self.key].get("batch", FORMS[self.key]["numpy"])(printer, self)

    def _batchsumcode(self, printer):
        """numpy for this gradient summed over the batch without forming it per
        sample, or None where the batch form is simply summed."""
        form = FORMS[self.key].get("batch_sum")
        return form(printer, self) if form else None


def bcast(G, shape, axis, n=None):
    """A reduced adjoint spread back along its axis (divided by ``n``, the
    length of the axis, for a mean); a constant stays a constant times ones,
    so that ``-mean(sum(Y * P, 1))`` gives ``-Y / 3``, not ones times Y."""
    if isinstance(G, X.Neg):
        return X.neg(bcast(G.args[0], shape, axis, n))
    c = G if isinstance(G, sympy.Basic) and G.is_Number else X._ones_coeff(G)
    if c is not None:
        return X.had(c / (n or 1), X.ones(shape))
    return NNExpr("bcast", (G,), shape, (axis,) if n is None else (axis, n))


# --- printing helpers ------------------------------------------------------

def _lat(pr, x) -> str:
    """LaTeX of an operand, in parentheses unless it is a single symbol or call."""
    return X._paren(pr, x, X.P_ATOM)


_txt = _lat   # the same rule for spec and numpy text (X._paren knows the printer)


def _np(pr, name: str) -> str:
    return "numpy." + name


def _num(v) -> str:
    """A parameter as a reader writes it: 2, 0.01, 1.5."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 1e15 else repr(v)
    return repr(v) if isinstance(v, float) else str(v)


def _call(name, pr, e, params=None):
    """``name(op1, op2, p1, p2)`` with operands printed by ``pr``."""
    ps = e.params if params is None else params
    parts = [pr._print(x) for x in e.operands] + [_num(p) for p in ps if p is not None]
    return f"{name}({', '.join(parts)})"


def _pool_args(e) -> tuple:
    """(size, stride) as a reader writes them: the stride left out where it is the size."""
    size, stride = e.params[0], e.params[1]
    return (size,) if stride == size else (size, stride)


def _lcall(name, pr, e, params=None):
    ps = e.params if params is None else params
    parts = [pr._print(x) for x in e.operands] + [_num(p) for p in ps if p is not None]
    return rf"{name}\left({', '.join(parts)}\right)"


_ONE = r"\mathbf{1}"


def _axis_of(e):
    """(ndim of the reduced operand, axis or None) for reductions/broadcasts."""
    return len(tshape(e.operands[0])) if e.key != "bcast" else len(e.tshape), e.params[0]


def _lat_sum(pr, e):
    r"""Sum along an axis as matrix algebra: X 1 (rows), 1^T X (columns),
    a^T b for the sum of a vector product a (.) b."""
    A = e.operands[0]
    nd, axis = _axis_of(e)
    if nd == 1 and isinstance(A, X.Had) and len(A.args) == 2:
        a, b = A.args
        return rf"{X._sup(pr, a)}^{{\top}} {_lat(pr, b)}"
    x = _lat(pr, A)
    if nd <= 1:
        return rf"{_ONE}^{{\top}} {x}"
    if nd == 2:
        return {None: rf"{_ONE}^{{\top}} {x} {_ONE}", 0: rf"{_ONE}^{{\top}} {x}", 1: rf"{x} {_ONE}"}[axis]
    where = "" if axis is None else rf"_{{\text{{axis }} {axis}}}"
    return rf"\textstyle\sum{where} {x}"


def _lat_bcast(pr, e):
    r"""A reduced quantity spread back along its axis: 1 y (vector), Y 1^T (rows)."""
    Y = e.operands[0]
    nd, axis = _axis_of(e)
    # a scalar factor keeps its parentheses (1 (p^T G)); matrix products associate
    y = _lat(pr, Y) if nd <= 1 else X._paren(pr, Y, X.P_MUL)
    scale = rf"\frac{{1}}{{{sympy.latex(e.params[1])}}} " if len(e.params) > 1 else ""
    if nd <= 1:
        return rf"{scale}{_ONE} {y}"
    if nd == 2:
        return scale + {None: rf"{_ONE} {y} {_ONE}^{{\top}}", 0: rf"{_ONE} {y}", 1: rf"{y} {_ONE}^{{\top}}"}[axis]
    return scale + y


def _mean_of(e):
    """The operand of a mean spread back whose upstream is a sum along the same
    axis keeping it (sum(G, 1) / n): G, printed as mean(G, 1); else None."""
    y = e.operands[0]
    if len(e.params) > 1 and isinstance(y, X.SumTo) and e.params[0] is not None:
        src = tshape(y.args[0])
        if len(src) == len(e.tshape) and y.summed_axes() == (e.params[0],):
            return y.args[0]
    return None


def _txt_bcast(pr, e):
    inner = _mean_of(e)
    if inner is not None:
        return f"mean({pr._print(inner)}, {e.params[0]})"
    y = pr._print(e.operands[0])
    return f"{_txt(pr, e.operands[0])}/{e.params[1]}" if len(e.params) > 1 else y


def _axis_kw(axis):
    return "" if axis is None else f", axis={axis}, keepdims=True"


def _np_reduce(fn):
    return lambda pr, e: f"{_np(pr, fn)}({pr._print(e.operands[0])}{_axis_kw(e.params[0])})"


def _np_bcast(pr, e):
    shape = e.tshape
    y = pr._print(e.operands[0])
    if all(isinstance(n, int) for n in shape):
        y = f"{_np(pr, 'broadcast_to')}({y}, {tuple(shape)!r})"
    return f"{y}/{e.params[1]}" if len(e.params) > 1 else y


def _mean_factor(e) -> str:
    shape, axis = tshape(e.operands[0]), e.params[0]
    n = sympy.Integer(1)
    for k, m in enumerate(shape):
        if axis is None or k == axis:
            n = n * m
    return sympy.latex(n)


def _lat_conv(pr, e):
    A, K = e.operands
    s, p = e.params
    body = rf"{_lat(pr, A)} \star {_lat(pr, K)}"
    if s == 1 and p == 0:
        return body
    return rf"\left({body}\right)_{{s={s},\,p={p}}}"


def _lat_pad(x, p):
    return x if p == 0 else rf"\operatorname{{pad}}_{{{p}}}\left({x}\right)"


def _lat_dil(x, s):
    return x if s == 1 else rf"\operatorname{{dil}}_{{{s}}}\left({x}\right)"


def _lat_conv_dk(pr, e):
    r"""dL/dK = pad_p(X) \star dil_s(G): the input cross-correlated with delta."""
    A, G = e.operands[:2]
    s, p = e.params[0], e.params[1]
    x = _lat_pad(pr._print(A), p) if p else _lat(pr, A)
    g = _lat_dil(pr._print(G), s) if s != 1 else _lat(pr, G)
    return rf"{x} \star {g}"


def _lat_conv_dx(pr, e):
    r"""dL/dX = crop_p(pad_{k-1}(dil_s G) \star rot180(K)): the full convolution
    of delta with the flipped kernel."""
    G, K = e.operands[:2]
    s, p, k = e.params[0], e.params[1], tshape(K)[-1]
    g = _lat_dil(pr._print(G), s)
    body = rf"\operatorname{{pad}}_{{{k - 1}}}\left({g}\right) \star \operatorname{{rot}}_{{180}}\left({pr._print(K)}\right)"
    if k == 1:
        body = rf"{_lat(pr, G) if s == 1 else g} \star {_lat(pr, K)}"
    return body if p == 0 else rf"\operatorname{{crop}}_{{{p}}}\left({body}\right)"


def _lat_pool(name):
    def form(pr, e):
        size, stride = e.params[0], e.params[1]
        sub = str(size) if stride == size else rf"{size},\,s={stride}"
        return rf"\operatorname{{{name}}}_{{{sub}}}\left({pr._print(e.operands[0])}\right)"
    return form


def _lat_pool_grad(name):
    def form(pr, e):
        G, A = e.operands
        size, stride = e.params[0], e.params[1]
        sub = str(size) if stride == size else rf"{size},\,s={stride}"
        if name == "avg":
            return (rf"\frac{{1}}{{{size * size}}} \operatorname{{spread}}_{{{sub}}}"
                    rf"\left({pr._print(G)}\right)")
        return rf"\operatorname{{route}}_{{{sub}}}\left({pr._print(G)};\, \arg\max {_lat(pr, A)}\right)"
    return form


def _lat_pool_at(pr, e):
    r"""Y gathered at the first maxima of X's windows: gather_2(Y; argmax X)."""
    Y, A = e.operands
    size, stride = e.params[0], e.params[1]
    sub = str(size) if stride == size else rf"{size},\,s={stride}"
    return rf"\operatorname{{gather}}_{{{sub}}}\left({pr._print(Y)};\, \arg\max {_lat(pr, A)}\right)"


def _dims(shape) -> str:
    return r" \times ".join(sympy.latex(n) for n in shape)


def _elementwise(latex_fmt, spec_fmt, numpy_fmt):
    """Forms of an entrywise function of one operand; formats see the operand
    as {x} (parenthesised where needed), parameters as {p0}, numpy as {np}."""
    def fill(fmt, pr, e, wrap):
        # {x} where the operand stands in a product, {xr} inside a call's parentheses
        x, xr = wrap(pr, e.operands[0]), pr._print(e.operands[0])
        ps = {f"p{k}": _num(v) for k, v in enumerate(e.params)}
        # {a}: the parameter as a subscript, left out at 1 (ELU's default alpha)
        a = "" if not e.params or e.params[0] == 1 else f"_{{{ps['p0']}}}"
        return fmt.format(x=x, xr=xr, np="numpy", a=a, **ps)
    return {"latex": lambda pr, e: fill(latex_fmt, pr, e, _lat),
            "spec": lambda pr, e: fill(spec_fmt, pr, e, _txt),
            "numpy": lambda pr, e: fill(numpy_fmt, pr, e, _txt)}


def _two(latex_fmt, spec_fmt, numpy_fmt):
    """Forms of an entrywise function of two operands {ar}, {br} (or their difference {d})."""
    def fill(fmt, pr, e, wrap):
        A, B = e.operands
        ar, br = pr._print(A), pr._print(B)
        # {d}: the difference a - b, as a person writes it (a - 0 is a)
        d = ar if isinstance(B, sympy.Number) and B == 0 else \
            f"{X._paren(pr, A, X.P_ADD)} - {X._paren(pr, B, X.P_ADD, strict=True)}"
        return fmt.format(ar=ar, br=br, d=d, np="numpy")
    return {"latex": lambda pr, e: fill(latex_fmt, pr, e, _lat),
            "spec": lambda pr, e: fill(spec_fmt, pr, e, _txt),
            "numpy": lambda pr, e: fill(numpy_fmt, pr, e, _txt)}


def _xcorr_default(e) -> tuple:
    """The kernel sizes xcorr takes when none are given: the largest that fit."""
    X, G = e.operands[:2]
    s, p = e.params[0], e.params[1]
    n = len(e.params) - 2
    return tuple(a + 2 * p - s * (b - 1) for a, b in zip(tshape(X)[-n:], tshape(G)[-n:]))


def _spec_trimmed(name, defaults):
    """``name(A, B, stride, padding, ...)`` with the trailing arguments a
    reader would leave out: sizes (output paddings) at their defaults, one
    number where rows and columns agree, then padding 0 and stride 1."""
    def form(pr, e):
        s, p, rest = e.params[0], e.params[1], list(e.params[2:])
        if tuple(rest) == tuple(defaults(e)):
            rest = []
        elif len(rest) == 2 and rest[0] == rest[1]:
            rest = rest[:1]
        args = [s, p] + rest
        if not rest:
            while args and args[-1] == (0 if len(args) == 2 else 1):
                args.pop()
        return f"{name}({', '.join([pr._print(x) for x in e.operands] + [_num(a) for a in args])})"
    return form


def _spec_unpool(name):
    """``maxunpool2d(G, X, size)``, the stride written only where it is not the size."""
    def form(pr, e):
        size, stride = e.params
        return _call(name, pr, e, (size,) if stride == size else (size, stride))
    return form


FORMS: dict[str, dict] = {
    # softmax family: softmax(X, axis); axis None for a vector
    "softmax": {"latex": lambda pr, e: _lcall(r"\operatorname{softmax}", pr, e),
                "spec": lambda pr, e: _call("softmax", pr, e),
                "numpy": lambda pr, e: f"nn_softmax({pr._print(e.operands[0])}, {e.params[0]})"},
    "log_softmax": {"latex": lambda pr, e: _lcall(r"\operatorname{log\,softmax}", pr, e),
                    "spec": lambda pr, e: _call("log_softmax", pr, e),
                    "numpy": lambda pr, e: f"nn_log_softmax({pr._print(e.operands[0])}, {e.params[0]})"},
    # reductions keeping the axis (numpy keepdims); bcast spreads one back
    "sum_axis": {"latex": _lat_sum, "spec": lambda pr, e: _call("sum", pr, e),
                 "numpy": _np_reduce("sum"), "precedence": "Mul"},
    "mean_axis": {"latex": lambda pr, e: rf"\frac{{1}}{{{_mean_factor(e)}}} {_lat_sum(pr, e)}",
                  "spec": lambda pr, e: _call("mean", pr, e), "numpy": _np_reduce("mean"),
                  "precedence": "Mul"},
    "max_axis": {"latex": lambda pr, e: _lcall(r"\max", pr, e), "spec": lambda pr, e: _call("max", pr, e),
                 "numpy": _np_reduce("max")},
    "bcast": {"latex": _lat_bcast, "spec": _txt_bcast, "numpy": _np_bcast,
              "precedence": lambda e: "Mul" if len(e.params) > 1 or len(e.tshape) <= 2 else "Func"},
    "amax_share": {
        "latex": lambda pr, e: (rf"\frac{{\left[{pr._print(e.operands[0])} = {pr._print(e.operands[1])}\right]}}"
                                rf"{{\#\left[{pr._print(e.operands[0])} = {pr._print(e.operands[1])}\right]}}"),
        "spec": lambda pr, e: f"amax_share({pr._print(e.operands[0])}{'' if e.params[0] is None else f', {e.params[0]}'})",
        "numpy": lambda pr, e: f"nn_amax_share({pr._print(e.operands[0])}, {e.params[0]})",
        "precedence": "Func"},
    # entrywise
    "maximum": _two(r"\max\left({ar}, {br}\right)", "maximum({ar}, {br})", "{np}.maximum({ar}, {br})"),
    "minimum": _two(r"\min\left({ar}, {br}\right)", "minimum({ar}, {br})", "{np}.minimum({ar}, {br})"),
    "max_share": _two(r"\tfrac{{1}}{{2}}\left(\mathbf{{1}} + \operatorname{{sign}}\left({d}\right)\right)",
                      "(1 + sign({d}))/2", "(1 + {np}.sign({d}))/2"),
    "min_share": _two(r"\tfrac{{1}}{{2}}\left(\mathbf{{1}} - \operatorname{{sign}}\left({d}\right)\right)",
                      "(1 - sign({d}))/2", "(1 - {np}.sign({d}))/2"),
    "abs": _elementwise(r"\left|{xr}\right|", "abs({xr})", "{np}.abs({xr})"),
    "sign": _elementwise(r"\operatorname{{sign}}\left({xr}\right)", "sign({xr})", "{np}.sign({xr})"),
    "gelu": _elementwise(r"\operatorname{{GELU}}\left({xr}\right)", "gelu({xr})", "nn_gelu({xr})"),
    "gelu_grad": _elementwise(r"\Phi\left({xr}\right) + {x} \odot \varphi\left({xr}\right)",
                              "gelu_grad({xr})", "nn_gelu_grad({xr})"),
    "gelu_tanh": _elementwise(r"\operatorname{{GELU}}_{{\tanh}}\left({xr}\right)", "gelu_tanh({xr})",
                              "nn_gelu_tanh({xr})"),
    "gelu_tanh_grad": _elementwise(r"\operatorname{{GELU}}_{{\tanh}}'\left({xr}\right)", "gelu_tanh_grad({xr})",
                                   "nn_gelu_tanh_grad({xr})"),
    "elu": _elementwise(r"\operatorname{{ELU}}{a}\left({xr}\right)", "elu({xr}, {p0})", "nn_elu({xr}, {p0})"),
    "elu_grad": _elementwise(r"\operatorname{{ELU}}{a}'\left({xr}\right)",
                             "elu_grad({xr}, {p0})", "nn_elu_grad({xr}, {p0})"),
    "leaky_relu": _elementwise(r"\operatorname{{LeakyReLU}}_{{{p0}}}\left({xr}\right)", "leaky_relu({xr}, {p0})",
                               "nn_leaky_relu({xr}, {p0})"),
    "leaky_relu_grad": _elementwise(r"\operatorname{{LeakyReLU}}_{{{p0}}}'\left({xr}\right)",
                                    "leaky_relu_grad({xr}, {p0})", "nn_leaky_relu_grad({xr}, {p0})"),
    "erf": _elementwise(r"\operatorname{{erf}}\left({xr}\right)", "erf({xr})", "nn_erf({xr})"),
    "erf_grad": _elementwise(r"\frac{{2}}{{\sqrt{{\pi}}}} \exp\left(-{x} \odot {x}\right)",
                             "2/sqrt(pi)*exp(-{x}**2)", "2/{np}.sqrt({np}.pi)*{np}.exp(-{x}**2)"),
    # shapes
    "reshape": {"latex": lambda pr, e: rf"\operatorname{{reshape}}\left({pr._print(e.operands[0])}, {_dims(e.tshape)}\right)",
                "spec": lambda pr, e: f"reshape({pr._print(e.operands[0])}, {', '.join(map(str, e.tshape))})",
                "numpy": lambda pr, e: f"{_np(pr, 'reshape')}({pr._print(e.operands[0])}, {tuple(e.tshape)!r})"},
    "flatten": {"latex": lambda pr, e: rf"\operatorname{{flatten}}\left({pr._print(e.operands[0])}\right)",
                "spec": lambda pr, e: f"flatten({pr._print(e.operands[0])})",
                "numpy": lambda pr, e: f"{_np(pr, 'ravel')}({pr._print(e.operands[0])})"},
    # convolution and pooling; numpy forms call the kernels in their own layout
    "conv2d": {"latex": _lat_conv, "spec": lambda pr, e: _spec_trimmed("conv2d", lambda e: ())(pr, e),
               "numpy": lambda pr, e: _call("nn_conv2d_any", pr, e)},
    "conv1d": {"latex": _lat_conv, "spec": lambda pr, e: _spec_trimmed("conv1d", lambda e: ())(pr, e),
               "numpy": lambda pr, e: _call("nn_conv1d_any", pr, e)},
    "maxpool2d": {"latex": _lat_pool("maxpool"), "spec": lambda pr, e: _call("maxpool2d", pr, e, _pool_args(e)),
                  "numpy": lambda pr, e: _call("nn_maxpool2d", pr, e)},
    "avgpool2d": {"latex": _lat_pool("avgpool"), "spec": lambda pr, e: _call("avgpool2d", pr, e, _pool_args(e)),
                  "numpy": lambda pr, e: _call("nn_avgpool2d", pr, e)},
    # their gradients, as a textbook writes them: dL/dK = X star delta, dL/dX the
    # full convolution of delta with the flipped kernel, delta routed to the maxima
    "maxunpool2d": {"latex": _lat_pool_grad("max"), "spec": _spec_unpool("maxunpool2d"),
                    "numpy": lambda pr, e: _call("nn_maxunpool2d", pr, e)},
    "maxpool2d_at": {"latex": _lat_pool_at, "spec": _spec_unpool("maxpool2d_at"),
                     "numpy": lambda pr, e: _call("nn_maxpool2d_at", pr, e)},
    "avgunpool2d": {"latex": _lat_pool_grad("avg"), "spec": _spec_unpool("avgunpool2d"),
                    "numpy": lambda pr, e: _call("nn_avgunpool2d", pr, e), "precedence": "Mul"},
}
for _d in ("2d", "1d"):
    FORMS[f"xcorr{_d}"] = {"latex": _lat_conv_dk, "spec": _spec_trimmed(f"xcorr{_d}", _xcorr_default),
                           "numpy": lambda pr, e, _d=_d: _call(f"nn_xcorr{_d}_any", pr, e), "precedence": "Mul"}
    FORMS[f"conv_transpose{_d}"] = {
        "latex": _lat_conv_dx, "spec": _spec_trimmed(f"conv_transpose{_d}", lambda e: (0,) * (len(e.params) - 2)),
        "numpy": lambda pr, e, _d=_d: _call(f"nn_conv_transpose{_d}_any", pr, e),
        "precedence": lambda e: "Mul" if e.params[1] == 0 else "Func"}

# how tightly the spec and numpy text binds where it is not a call
for _key in ("max_share", "min_share", "erf_grad"):
    FORMS[_key]["text_precedence"] = "Mul"
FORMS["bcast"]["text_precedence"] = lambda e, pr: (
    X.P_ATOM if isinstance(pr, X.SpecPrinter) and _mean_of(e) is not None else
    X.P_MUL if len(e.params) > 1 or not isinstance(pr, X.SpecPrinter) else X._prec_of(e.operands[0], pr))

# how tightly each compound LaTeX form binds (default: a function call)
for _key, _rank in {"max_share": "Mul", "min_share": "Mul", "gelu_grad": "Add", "erf_grad": "Mul"}.items():
    FORMS[_key]["precedence"] = _rank
for _key in ("conv2d", "conv1d"):
    FORMS[_key]["precedence"] = lambda e: "Mul" if tuple(e.params[:2]) == (1, 0) else "Func"


# --- batch forms: the same numpy with leading batch axes (derive.codegen.matrix) ----

def _k(x) -> int:
    return len(tshape(x))


def _neg_axis(axis, k):
    """An axis counted from the end (a batch in front does not move it);
    None: every sample axis."""
    return tuple(range(-k, 0)) if axis is None else axis - k


def _b_softmax(name):
    return lambda pr, e: f"nn_{name}({pr._print(e.operands[0])}, {_neg_axis(e.params[0], _k(e.operands[0]))!r})"


def _b_reduce(fn):
    def form(pr, e):
        x, k = e.operands[0], _k(e.operands[0])
        keep = "" if e.params[0] is None else ", keepdims=True"
        return f"numpy.{fn}({pr._print(x)}, axis={_neg_axis(e.params[0], k)!r}{keep})"
    return form


def _b_bcast(pr, e):
    y = e.operands[0]
    body = f"_expand({pr._print(y)}, {_k(y)}, {len(e.tshape)}) * numpy.ones({tuple(e.tshape)!r})"
    return f"({body})/{e.params[1]}" if len(e.params) > 1 else f"({body})"


def _b_two(numpy_fmt):
    def form(pr, e):
        K = len(e.tshape)
        A, B = e.operands
        ar, br = (pr._print(x) if _k(x) == K or isinstance(x, sympy.Number) else f"_expand({pr._print(x)}, {_k(x)}, {K})"
                  for x in (A, B))
        d = ar if isinstance(B, sympy.Number) and B == 0 else f"{ar} - ({br})"
        return numpy_fmt.format(ar=ar, br=br, d=d, np="numpy")
    return form


def _b_conv(kernel, summed=False):
    """Convolutions on a whole batch: the batched kernel told each operand's own
    number of axes; ``summed``: the kernel gradient summed over the batch ``_B``
    (derive.codegen.matrix's name for the batch's shape)."""
    def form(pr, e):
        args = [pr._print(x) for x in e.operands] + [str(_k(x)) for x in e.operands] \
            + [_num(p) for p in e.params] + (["_B"] if summed else [])
        return f"nn_{kernel}({', '.join(args)})"
    return form


FORMS["softmax"]["batch"] = _b_softmax("softmax")
FORMS["log_softmax"]["batch"] = _b_softmax("log_softmax")
for _key, _fn in (("sum_axis", "sum"), ("mean_axis", "mean"), ("max_axis", "max")):
    FORMS[_key]["batch"] = _b_reduce(_fn)
FORMS["amax_share"]["batch"] = lambda pr, e: (f"nn_amax_share({pr._print(e.operands[0])}, "
                                              f"{_neg_axis(e.params[0], _k(e.operands[0]))!r})")
FORMS["bcast"]["batch"] = _b_bcast
FORMS["maximum"]["batch"] = _b_two("{np}.maximum({ar}, {br})")
FORMS["minimum"]["batch"] = _b_two("{np}.minimum({ar}, {br})")
FORMS["max_share"]["batch"] = _b_two("(1 + {np}.sign({d}))/2")
FORMS["min_share"]["batch"] = _b_two("(1 - {np}.sign({d}))/2")
FORMS["reshape"]["batch"] = lambda pr, e: (f"nn_reshape_tail({pr._print(e.operands[0])}, "
                                           f"{_k(e.operands[0])}, {tuple(e.tshape)!r})")
FORMS["flatten"]["batch"] = FORMS["reshape"]["batch"]
for _d in ("1d", "2d"):
    FORMS[f"conv{_d}"]["batch"] = _b_conv(f"conv{_d}_batched")
    FORMS[f"xcorr{_d}"]["batch"] = _b_conv(f"xcorr{_d}_batched")
    FORMS[f"xcorr{_d}"]["batch_sum"] = _b_conv(f"xcorr{_d}_batched", summed=True)
    FORMS[f"conv_transpose{_d}"]["batch"] = _b_conv(f"conv_transpose{_d}_batched")


# --- kernels for generated code ---------------------------------------------

def _helper_sources() -> dict:
    """``nn_<name>`` -> source, for every kernel."""
    out = {}
    kernels = [n for n, fn in inspect.getmembers(nn_kernels, inspect.isfunction)
               if fn.__module__ == nn_kernels.__name__ and not n.startswith("_")]
    calls = re.compile(r"(?<![\w.])(" + "|".join(kernels) + r")(?=[(,)])")
    for name in kernels:    # def erf( -> def nn_erf(, a call erf( -> nn_erf(, passed per_sample(erf, -> (nn_erf,
        src = calls.sub(r"nn_\1", inspect.getsource(getattr(nn_kernels, name)))
        out["nn_" + name] = re.sub(r"\bnp\.", "numpy.", src)
    return out


def numpy_helpers(code: str) -> str:
    """Source of the ``nn_*`` functions that numpy ``code`` calls (and those
    they call), for a standalone generated module that imports ``numpy``.

    >>> print(numpy_helpers("y = nn_erf(x)"))  # doctest: +ELLIPSIS
    def nn_erf(X):
    ...
    """
    sources = _helper_sources()
    wanted, todo = [], [code]
    while todo:
        text = todo.pop()
        for name in re.findall(r"\bnn_\w+", text):   # called, or passed (nn_per_sample(nn_conv2d_any, ...))
            if name in sources and name not in wanted:
                wanted.append(name)
                todo.append(sources[name])
    return "\n\n".join(sources[n].rstrip() + "\n" for n in sorted(wanted))

