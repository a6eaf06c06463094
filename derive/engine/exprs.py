r"""Matrix expressions for printing: SymPy classes and three printers.

Every tensor of the matrix engine is a :class:`TensorSymbol` (its numpy shape
kept beside SymPy's two-axis shape: a vector of n entries is n x 1 for
SymPy).  Formulas are built with the constructors below (:func:`add`,
:func:`had`, :func:`matmul`, :func:`T`, :func:`outer`, :func:`fun`, ...),
never with SymPy's ``+``/``*`` on matrices, which would reorder terms and
refuse numpy broadcasting.  Each class prints itself through three hooks,
the convention shared with :mod:`derive.engine.nn_exprs`:

* ``_latex(printer)`` for :class:`TexPrinter` (ᵀ as ``^{\top}``, ⊙ as ``\odot``);
* ``_spec(printer)`` for :class:`SpecPrinter` (spec syntax: ``transpose(W) @ G``,
  ``*`` for the Hadamard product), which the spec parser reads back;
* ``_numpycode(printer)`` for :class:`NumpyPrinter` (``numpy.`` functions,
  1-D vectors, ``@``), used for values and generated code.

>>> W = TensorSymbol("W", (3, 2)); x = TensorSymbol("x", (2,)); G = TensorSymbol("dL_dh", (3,), r"\frac{\partial L}{\partial h}")
>>> h = TensorSymbol("h", (3,))
>>> e = had(G, add(1, neg(had(h, h))))
>>> latex(e)
'\\frac{\\partial L}{\\partial h} \\odot \\left(1 - h \\odot h\\right)'
>>> spec(outer(e, x)), spec(matmul(T(W), G))
('outer(dL_dh * (1 - h * h), x)', 'transpose(W) @ dL_dh')
>>> numpy_code(matmul(T(W), G))
'W.T @ dL_dh'
"""
from __future__ import annotations

import functools

import numpy as np
import sympy
from sympy import Basic, Integer, Tuple
from sympy.core.symbol import Str
from sympy.matrices.expressions import MatrixExpr, MatrixSymbol
from sympy.printing.latex import LatexPrinter
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.str import StrPrinter

# precedence of a node when printed (higher binds tighter)
P_ADD, P_NEG, P_MUL, P_POW, P_ATOM = 10, 15, 20, 30, 100


@functools.lru_cache(maxsize=200_000)
def _np_shape_of(x) -> tuple | None:
    """numpy shape of an expression (None where a foreign class does not say);
    cached, as expressions are immutable and nested ones ask again and again."""
    if isinstance(x, (int, float)) or (isinstance(x, Basic) and x.is_Number):
        return ()
    s = getattr(x, "np_shape", None)
    return tuple(s) if s is not None else None


def broadcast_shapes(*shapes) -> tuple | None:
    if any(s is None for s in shapes):
        return None
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def _sym2(shape: tuple) -> tuple:
    """SymPy's two-axis shape of a numpy shape."""
    if not shape:
        return (1, 1)
    if len(shape) == 1:
        return (shape[0], 1)
    return (int(np.prod(shape[:-1])), shape[-1])


class TExpr(MatrixExpr):
    """Base of our matrix expressions: numpy shape, precedence, printing."""

    prec = P_ATOM
    is_commutative = False

    @property
    def shape(self):
        s = self.np_shape
        return _sym2(s) if s is not None else (1, 1)

    @property
    def np_shape(self):
        return None

    def _latex(self, printer):
        raise NotImplementedError

    def _sympystr(self, printer):
        return SpecPrinter()._print(self)


class TensorSymbol(MatrixSymbol):
    r"""A named tensor: a quantity of the problem or an adjoint (``dL_dz1``).

    >>> s = TensorSymbol("dL_dz1", (4,), r"\frac{\partial L}{\partial z_{1}}")
    >>> s.np_shape, s.shape, latex(s)
    ((4,), (4, 1), '\\frac{\\partial L}{\\partial z_{1}}')
    """

    is_commutative = False

    def __new__(cls, name, shape=(), tex=None):
        shape = tuple(int(n) for n in shape)
        r, c = _sym2(shape)
        tex = tex if tex is not None else _default_tex(str(name))
        obj = Basic.__new__(cls, Str(str(name)), Integer(r), Integer(c),
                            Tuple(*[Integer(n) for n in shape]), Str(tex))
        return obj

    def __init__(self, *a, **k):
        pass

    @property
    def shape(self):
        return (self.args[1], self.args[2])

    @property
    def np_shape(self):
        return tuple(int(n) for n in self.args[3])

    @property
    def name(self):
        return self.args[0].name

    @property
    def tex(self):
        return self.args[4].name

    prec = P_ATOM

    def _latex(self, printer):
        return self.tex

    def _spec(self, printer):
        return self.name

    def _numpycode(self, printer):
        return self.name

    def _sympystr(self, printer):
        return self.name


def _default_tex(name: str) -> str:
    from derive.engine.graph import default_latex
    return default_latex(name)


def _prec_of(child, printer) -> int:
    """How tightly ``child`` binds as ``printer`` writes it."""
    own = getattr(child, "prec_for", None)
    if own is not None:
        return own(printer)
    cp = getattr(child, "prec", None)
    if cp is not None:
        return cp
    if isinstance(child, Basic) and child.is_Number and child < 0:
        return P_NEG
    if isinstance(child, Basic) and child.is_Rational and not child.is_Integer:
        return P_MUL
    return P_ATOM


def _paren(printer, child, prec: int, strict: bool = False) -> str:
    """``child`` printed, parenthesised when it binds looser than ``prec``."""
    text = printer._print(child)
    cp = _prec_of(child, printer)
    if cp < prec or (strict and cp == prec):
        if isinstance(printer, LatexPrinter):
            return rf"\left({text}\right)"
        return f"({text})"
    return text


def _sup(printer, child) -> str:
    """``child`` as the base of a superscript (ᵀ): an atom as it is, a
    fraction (an adjoint's d L / d x) or anything looser in parentheses, so
    that (dL/du)ᵀ does not read as dL/du with a ᵀ on its denominator."""
    text = _paren(printer, child, P_ATOM)
    if isinstance(printer, LatexPrinter) and text.startswith(r"\frac"):
        return rf"\left({text}\right)"
    return text


def _num(x):
    return sympy.sympify(x) if isinstance(x, (int, float)) else x


class Add_(TExpr):
    """A sum of terms in the order given (``Neg`` terms print with minus)."""

    prec = P_ADD

    @property
    def np_shape(self):
        return broadcast_shapes(*[_np_shape_of(a) for a in self.args])

    def _join(self, printer, minus):
        whole = self.np_shape if isinstance(printer, LatexPrinter) else None

        def term(x, strict=False):
            text = _paren(printer, x, P_ADD, strict)
            shape = _np_shape_of(x)
            # numpy spreads a kept axis (a row mean beside the matrix); matrix algebra writes it: R 1 1^T
            if whole and len(whole) == 2 and shape is not None and len(shape) == 2 and shape != whole:
                base = _paren(printer, x, P_MUL) if text == printer._print(x) else text
                if shape[1] == 1 < whole[1] and shape[0] == whole[0]:
                    return rf"{base} \mathbf{{1}}^{{\top}}"
                if shape[0] == 1 < whole[0] and shape[1] == whole[1]:
                    return rf"\mathbf{{1}} {base}"
            return text

        out = term(self.args[0])
        for a in self.args[1:]:
            if isinstance(a, Neg):
                out += f" - {term(a.args[0], strict=True)}"
            elif isinstance(a, Had) and _is_num(a.args[0]) and a.args[0] < 0:
                out += f" - {term(had(-a.args[0], *a.args[1:]), strict=True)}"
            elif isinstance(a, Basic) and a.is_Number and a < 0:
                out += f" - {printer._print(-a)}"
            else:
                out += f" + {term(a)}"
        return out

    def _latex(self, printer):
        return self._join(printer, "-")

    def _spec(self, printer):
        return self._join(printer, "-")

    def _numpycode(self, printer):
        return self._join(printer, "-")


class Neg(TExpr):
    prec = P_NEG

    @property
    def np_shape(self):
        return _np_shape_of(self.args[0])

    def _latex(self, printer):
        return "-" + _paren(printer, self.args[0], P_MUL)

    _spec = _numpycode = lambda self, printer: "-" + _paren(printer, self.args[0], P_MUL)


class Had(TExpr):
    """Elementwise (Hadamard) product, broadcasting as numpy; a leading number
    prints as a coefficient."""

    prec = P_MUL

    @property
    def np_shape(self):
        return broadcast_shapes(*[_np_shape_of(a) for a in self.args])

    def _parts(self, printer):
        return [_paren(printer, a, P_MUL + 1) for a in self.args]

    def _latex(self, printer):
        args = list(self.args)
        out = []
        if args and isinstance(args[0], Basic) and args[0].is_Number:
            c = args.pop(0)
            out.append(printer._print(c) + " \\, ")
        return out[0] + r" \odot ".join(_paren(printer, a, P_MUL + 1) for a in args) if out else \
            r" \odot ".join(_paren(printer, a, P_MUL + 1) for a in args)

    def _spec(self, printer):
        """``-Y / 3``, ``2 * y``, ``y / 2``: a rational coefficient as a person
        writes it (numerator in front, denominator after the product)."""
        args = list(self.args)
        if not (args and _is_num(args[0]) and args[0].is_Rational):
            return " * ".join(self._parts(printer))
        c, rest = args.pop(0), args
        body = " * ".join(_paren(printer, a, P_MUL + 1) for a in rest)
        p, q = abs(c.p), c.q
        text = body if p == 1 else f"{p} * {body}"
        if q != 1:
            text = f"{text} / {q}"
        return ("-" if c < 0 else "") + text

    def prec_for(self, printer):
        """A leading minus binds as a negation in spec text (``-Y / 3``)."""
        if isinstance(printer, SpecPrinter) and _is_num(self.args[0]) and self.args[0] < 0:
            return P_NEG
        return P_MUL

    def _numpycode(self, printer):
        return " * ".join(self._parts(printer))


class Div(TExpr):
    """Elementwise quotient ``a ⊘ b``."""

    prec = P_MUL

    @property
    def np_shape(self):
        return broadcast_shapes(_np_shape_of(self.args[0]), _np_shape_of(self.args[1]))

    def _latex(self, printer):
        return rf"{_paren(printer, self.args[0], P_MUL)} \oslash {_paren(printer, self.args[1], P_MUL + 1)}"

    def _spec(self, printer):
        return f"{_paren(printer, self.args[0], P_MUL)} / {_paren(printer, self.args[1], P_MUL + 1)}"

    _numpycode = _spec


class Pow_(TExpr):
    """Elementwise power with a constant exponent."""

    prec = P_POW

    @property
    def np_shape(self):
        return _np_shape_of(self.args[0])

    def _latex(self, printer):
        base = _paren(printer, self.args[0], P_ATOM)
        if _np_shape_of(self.args[0]):
            return rf"{base}^{{\odot {printer._print(self.args[1])}}}"
        return rf"{base}^{{{printer._print(self.args[1])}}}"

    def _spec(self, printer):
        return f"{_paren(printer, self.args[0], P_ATOM)}**{_paren(printer, self.args[1], P_ATOM)}"

    _numpycode = _spec


class MatMul_(TExpr):
    """The matrix product ``a @ b`` with numpy's rules for 1-D operands."""

    prec = P_MUL

    @property
    def np_shape(self):
        a, b = _np_shape_of(self.args[0]), _np_shape_of(self.args[1])
        if a is None or b is None:
            return None
        return tuple(a[:-1]) + tuple(b[:-2] + b[-1:] if len(b) >= 2 else ())

    def _latex(self, printer):
        return f"{_paren(printer, self.args[0], P_MUL, strict=True)} {_paren(printer, self.args[1], P_MUL, strict=True)}"

    def _spec(self, printer):
        return f"{_paren(printer, self.args[0], P_MUL, strict=True)} @ {_paren(printer, self.args[1], P_MUL, strict=True)}"

    _numpycode = _spec


class Outer(TExpr):
    r"""``a b^{\top}`` of two vectors (numpy's ``outer``)."""

    prec = P_MUL

    @property
    def np_shape(self):
        a, b = _np_shape_of(self.args[0]), _np_shape_of(self.args[1])
        return None if a is None or b is None else (a[0], b[0])

    def _latex(self, printer):
        return rf"{_paren(printer, self.args[0], P_MUL, strict=True)} {_sup(printer, self.args[1])}^{{\top}}"

    def _spec(self, printer):
        return f"outer({printer._print(self.args[0])}, {printer._print(self.args[1])})"

    def _numpycode(self, printer):
        return f"numpy.outer({printer._print(self.args[0])}, {printer._print(self.args[1])})"


class Transpose_(TExpr):
    prec = P_ATOM

    @property
    def np_shape(self):
        s = _np_shape_of(self.args[0])
        return None if s is None else tuple(reversed(s))

    def _latex(self, printer):
        return rf"{_sup(printer, self.args[0])}^{{\top}}"

    def _spec(self, printer):
        return f"transpose({printer._print(self.args[0])})"

    def _numpycode(self, printer):
        return f"{_paren(printer, self.args[0], P_ATOM)}.T"


#: LaTeX and numpy of the elementwise functions of derive.engine.ops
FUN_TEX = {"tanh": r"\tanh", "exp": r"\exp", "log": r"\log", "sigmoid": r"\sigma",
           "relu": r"\operatorname{ReLU}", "step": r"\operatorname{step}",
           "softplus": r"\operatorname{softplus}", "sqrt": r"\sqrt"}
FUN_NP = {"tanh": "numpy.tanh", "exp": "numpy.exp", "log": "numpy.log", "sqrt": "numpy.sqrt",
          "sigmoid": "_sigmoid", "relu": "_relu", "step": "_step", "softplus": "_softplus"}


class Fun(TExpr):
    """An elementwise function of the operation table, ``tanh(X)``."""

    prec = P_ATOM

    @property
    def np_shape(self):
        return _np_shape_of(self.args[1])

    @property
    def fname(self):
        return self.args[0].name

    def _latex(self, printer):
        arg = printer._print(self.args[1])
        if self.fname == "sqrt":
            return rf"\sqrt{{{arg}}}"
        name = FUN_TEX.get(self.fname) or r"\operatorname{%s}" % self.fname
        return rf"{name}\left({arg}\right)"

    def _spec(self, printer):
        return f"{self.fname}({printer._print(self.args[1])})"

    def _numpycode(self, printer):
        return f"{FUN_NP.get(self.fname, 'numpy.' + self.fname)}({printer._print(self.args[1])})"


class SumAll(TExpr):
    """The sum (``mean=1``: the mean) of every entry: a scalar."""

    prec = P_ATOM

    @property
    def np_shape(self):
        return ()

    @property
    def is_mean(self):
        return bool(self.args[1])

    def _latex(self, printer):
        if self.is_mean:
            return rf"\operatorname{{mean}}\left({printer._print(self.args[0])}\right)"
        return rf"\textstyle\sum \left({printer._print(self.args[0])}\right)"

    def _spec(self, printer):
        return f"{'mean' if self.is_mean else 'sum'}({printer._print(self.args[0])})"

    def _numpycode(self, printer):
        return f"numpy.{'mean' if self.is_mean else 'sum'}({printer._print(self.args[0])})"


class Ones(TExpr):
    r"""A tensor of ones of a given shape (``\mathbf{1}``)."""

    @property
    def np_shape(self):
        return tuple(int(n) for n in self.args[0])

    def _latex(self, printer):
        return r"\mathbf{1}"

    def _spec(self, printer):
        return f"ones({', '.join(str(n) for n in self.np_shape)})"

    def _numpycode(self, printer):
        return f"numpy.ones({self.np_shape!r})"


class SumTo(TExpr):
    """``X`` summed over the axes numpy broadcast to reach its shape: the
    adjoint of a broadcast input (a bias over a batch: the column sums)."""

    prec = P_ATOM

    @property
    def np_shape(self):
        return tuple(int(n) for n in self.args[1])

    def summed_axes(self):
        """The axes of the operand summed over (numbered in the operand), or None
        if its shape is not known."""
        src = _np_shape_of(self.args[0])
        if src is None:
            return None
        dst, lead = self.np_shape, len(src) - len(self.np_shape)
        return tuple(range(lead)) + tuple(lead + k for k, n in enumerate(dst) if n == 1 and src[lead + k] != 1)

    def _latex(self, printer):
        r"""The sum over the broadcast axes as a person writes it: for a
        matrix G, the column sums G^T 1 (a bias over the rows), 1^T G, the
        row sums G 1; otherwise a sum labelled with the axes."""
        x, axes = self.args[0], self.summed_axes()
        one = r"\mathbf{1}"
        strict = isinstance(x, (Had, Div))      # (G ⊙ E) 1, not G ⊙ E 1
        if axes is not None and len(_np_shape_of(x)) == 2 and axes:
            if axes == (0,):
                return (rf"{one}^{{\top}} {_paren(printer, x, P_MUL, strict)}" if len(self.np_shape) == 2
                        else rf"{_sup(printer, x)}^{{\top}} {one}")
            if axes == (1,):
                return rf"{_paren(printer, x, P_MUL, strict)} {one}"
            return rf"{one}^{{\top}} {_paren(printer, x, P_MUL, strict)} {one}"
        if not axes:
            where = r"\text{broadcast axes}"
        else:
            where = rf"\text{{{'axes' if len(axes) > 1 else 'axis'} }} {', '.join(map(str, axes))}"
        return rf"\textstyle\sum_{{{where}}} \left({printer._print(x)}\right)"

    def _spec(self, printer):
        axes, src = self.summed_axes(), _np_shape_of(self.args[0])
        if axes is not None and len(axes) == 1 and len(src) == len(self.np_shape):
            return f"sum({printer._print(self.args[0])}, {axes[0]})"     # numpy's keepdims, as the spec's sum
        return f"sum_to({printer._print(self.args[0])}, {', '.join(str(n) for n in self.np_shape)})"

    def _numpycode(self, printer):
        return f"_sum_to({printer._print(self.args[0])}, {self.np_shape!r})"


class Stack(TExpr):
    """Vectors (and scalars) one above the other: ``[a; b]``."""

    @property
    def np_shape(self):
        sizes = [_np_shape_of(a) for a in self.args]
        if any(s is None for s in sizes):
            return None
        return (sum(s[0] if s else 1 for s in sizes),)

    def _latex(self, printer):
        return r"\begin{bmatrix} " + r" \\ ".join(printer._print(a) for a in self.args) + r" \end{bmatrix}"

    def _spec(self, printer):
        return f"stack({', '.join(printer._print(a) for a in self.args)})"

    def _numpycode(self, printer):
        return f"numpy.concatenate([numpy.atleast_1d({'), numpy.atleast_1d('.join(printer._print(a) for a in self.args)})])"


class Slice(TExpr):
    """Entries ``start .. stop-1`` (0-based) of a vector: the adjoint of one
    block of a stack; a block of one entry is that entry (a scalar) when
    ``scalar`` is 1."""

    @property
    def np_shape(self):
        start, stop, scalar = (int(a) for a in self.args[1:4])
        return () if scalar else (stop - start,)

    def _latex(self, printer):
        start, stop, scalar = (int(a) for a in self.args[1:4])
        idx = f"{start + 1}" if scalar else f"{start + 1}:{stop}"
        return rf"\left[{printer._print(self.args[0])}\right]_{{{idx}}}"

    def _numpycode(self, printer):     # numpy's slicing, which the spec syntax shares
        start, stop, scalar = (int(a) for a in self.args[1:4])
        inner = _paren(printer, self.args[0], P_ATOM)
        return f"{inner}[{start}]" if scalar else f"{inner}[{start}:{stop}]"

    _spec = _numpycode


class Row(TExpr):
    """Step ``index + 1`` of a sequence declared [T, ...]: ``I_{t}``."""

    @property
    def np_shape(self):
        s = _np_shape_of(self.args[0])
        return None if s is None else tuple(s[1:])

    def _latex(self, printer):
        from derive.engine.tensor import component_latex
        k = int(self.args[1]) + 1
        if isinstance(self.args[0], TensorSymbol):
            return component_latex(self.args[0].tex, (k - 1,))
        return rf"\left[{printer._print(self.args[0])}\right]_{{{k}}}"

    def _spec(self, printer):
        if isinstance(self.args[0], TensorSymbol):       # a sequence's step, as the spec writes it
            return f"{self.args[0].name}[{int(self.args[1]) + 1}]"
        return f"row({printer._print(self.args[0])}, {int(self.args[1])})"

    def _numpycode(self, printer):
        return f"{_paren(printer, self.args[0], P_ATOM)}[{int(self.args[1])}]"


class Col(TExpr):
    """Column ``index + 1`` of a matrix (``h_{j}`` where column j is h_j)."""

    @property
    def np_shape(self):
        s = _np_shape_of(self.args[0])
        return None if s is None else (s[0],)

    def _latex(self, printer):
        from derive.engine.tensor import component_latex
        k = int(self.args[1])
        if isinstance(self.args[0], TensorSymbol):
            return component_latex(self.args[0].tex, (k,))
        return rf"\left[{printer._print(self.args[0])}\right]_{{:,{k + 1}}}"

    def _spec(self, printer):
        return f"col({printer._print(self.args[0])}, {int(self.args[1])})"

    def _numpycode(self, printer):
        return f"{_paren(printer, self.args[0], P_ATOM)}[:, {int(self.args[1])}]"


def col_(x, index: int):
    return Col(x, Integer(index))


def _ranges(index) -> tuple:
    """``((start, stop) or i, ...)`` as plain ints from SymPy's tuples."""
    return tuple(int(r) if not isinstance(r, Tuple) else (int(r[0]), int(r[1])) for r in index)


def index_text(index, shape) -> str:
    """numpy's subscript of a slice, as an engineer writes it: ``:`` for a
    whole axis, ``0:4`` (both bounds, counted from 0, whatever negative
    numbers the spec used), ``2`` (an index drops the axis); trailing whole
    axes left out.

    >>> index_text(((0, 3), (0, 1)), (3, 2)), index_text(((4, 8),), (8,)), index_text(((1, 5), 2), (5, 4))
    (':, 0:1', '4:8', '1:5, 2')
    >>> index_text(((0, 4),), (8,))
    '0:4'

    """
    parts = []
    for r, n in zip(index, shape):
        if isinstance(r, int):
            parts.append(str(r))
        elif r == (0, n):
            parts.append(":")
        else:
            parts.append(f"{r[0]}:{r[1]}")
    while len(parts) > 1 and parts[-1] == ":":
        parts.pop()
    return ", ".join(parts)


def _index_tex(index, shape) -> str:
    """The same selection 1-based and inclusive, as a textbook writes it:
    ``a_{1:4}``, ``G_{:,1}``, ``X_{2:5,:}``."""
    parts = []
    for r, n in zip(index, shape):
        if isinstance(r, int):
            parts.append(str(r + 1))
        elif r == (0, n):
            parts.append(":")
        elif r[1] - r[0] == 1:
            parts.append(str(r[0] + 1))
        else:
            parts.append(f"{r[0] + 1}:{r[1]}")
    return ",".join(parts)


class Index(TExpr):
    """numpy's basic slicing ``X[0:4]``, ``G[:, 0:1]``, ``H[:, 2]``: per axis
    a range ``(start, stop)`` (0-based, stop excluded) or an index, which
    drops the axis (args: operand, the ranges, the operand's shape)."""

    @property
    def index(self):
        return _ranges(self.args[1])

    @property
    def in_shape(self):
        return tuple(int(n) for n in self.args[2])

    @property
    def np_shape(self):
        return tuple(r[1] - r[0] for r in self.index if not isinstance(r, int))

    def _latex(self, printer):
        x, sub = self.args[0], _index_tex(self.index, self.in_shape)
        if isinstance(x, TensorSymbol) and "_" not in x.tex and "^" not in x.tex:
            return f"{x.tex}_{{{sub}}}"
        return rf"\left[{printer._print(x)}\right]_{{{sub}}}"

    def _spec(self, printer):
        return f"{_paren(printer, self.args[0], P_ATOM)}[{index_text(self.index, self.in_shape)}]"

    def _numpycode(self, printer):
        return f"{_paren(printer, self.args[0], P_ATOM)}[{index_text(self.index, self.in_shape)}]"


def index_(x, index, in_shape):
    """``x[index]`` (see :class:`Index`); the whole of x is x itself."""
    index = tuple(index)
    if all(not isinstance(r, int) and tuple(r) == (0, n) for r, n in zip(index, in_shape)):
        return x
    return Index(x, Tuple(*[Integer(r) if isinstance(r, int) else Tuple(Integer(r[0]), Integer(r[1]))
                            for r in index]), Tuple(*[Integer(n) for n in in_shape]))


class Pad(TExpr):
    r"""``G`` among zeros: ``(before, after)`` zeros on each axis (numpy's
    ``pad``), after a size-1 axis is put in at each of ``inserted`` (the
    adjoint of a slice: ``G`` placed back where the slice took it from).
    LaTeX is the block matrix a textbook writes, ``[ar{Y}\; \mathbf{0}]``."""

    @property
    def widths(self):
        return tuple((int(a), int(b)) for a, b in self.args[1])

    @property
    def inserted(self):
        return tuple(int(k) for k in self.args[2])

    @property
    def inner_shape(self):
        """G's shape with the inserted axes."""
        s = list(_np_shape_of(self.args[0]) or ())
        for k in self.inserted:
            s.insert(k, 1)
        return tuple(s)

    @property
    def np_shape(self):
        return tuple(n + a + b for n, (a, b) in zip(self.inner_shape, self.widths))

    def _reshaped(self, printer):
        g = printer._print(self.args[0])
        if not self.inserted:
            return g
        return f"reshape({g}, {', '.join(map(str, self.inner_shape))})"

    def _latex(self, printer):
        shape, widths = self.np_shape, self.widths
        g = printer._print(self.args[0])
        if len(shape) == 2 and self.inserted == (0,):     # a row placed in a matrix: g as a row
            g = rf"{_sup(printer, self.args[0])}^{{\top}}" if _np_shape_of(self.args[0]) else g
        if len(shape) > 2:
            pads = ",".join(f"{a},{b}" for a, b in widths)
            return rf"\operatorname{{pad}}_{{{pads}}}\left({g}\right)"
        zero = r"\mathbf{0}"
        (r0, r1), (c0, c1) = widths[0], (widths[1] if len(shape) == 2 else (0, 0))
        cols = [c for c, w in ((zero, c0), (g, 1), (zero, c1)) if w]
        rows = [r for r, w in ((None, r0), (cols, 1), (None, r1)) if w]
        body = r" \\ ".join(" & ".join(cols) if r is cols else " & ".join([zero] * len(cols)) for r in rows)
        return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"

    def _spec(self, printer):
        return f"pad({self._reshaped(printer)}, {', '.join(f'{a}, {b}' for a, b in self.widths)})"

    def _numpycode(self, printer):
        g = printer._print(self.args[0])
        if self.inserted:
            g = f"numpy.reshape({g}, {self.inner_shape!r})"
        return f"numpy.pad({g}, {self.widths!r})"


def pad(g, widths, inserted=()):
    """``g`` among zeros (see :class:`Pad`); no zeros and no axes: g itself."""
    widths = tuple((int(a), int(b)) for a, b in widths)
    while inserted and getattr(g, "key", None) == "reshape":     # reshape(reshape(G, 3), 3, 1): G itself
        inner, want = g.operands[0], list(_np_shape_of(g) or ())
        for k in inserted:
            want.insert(k, 1)
        if tuple(want) != tuple(_np_shape_of(inner) or ()):
            break
        g, inserted = inner, ()
    if not inserted and all(w == (0, 0) for w in widths):
        return g
    return Pad(g, Tuple(*[Tuple(Integer(a), Integer(b)) for a, b in widths]),
               Tuple(*[Integer(k) for k in inserted]))


class Concat(TExpr):
    r"""Blocks side by side along an axis (numpy's ``concatenate``): the
    adjoint of slices that tile a quantity, ``[\bar{Y}_1\; \bar{Y}_2]``
    (args: the axis, then the blocks)."""

    @property
    def axis(self):
        return int(self.args[0])

    @property
    def parts(self):
        return self.args[1:]

    @property
    def np_shape(self):
        shapes = [_np_shape_of(a) for a in self.parts]
        if any(s is None for s in shapes):
            return None
        s = list(shapes[0])
        s[self.axis] = sum(t[self.axis] for t in shapes)
        return tuple(s)

    def _part_tex(self, printer, a) -> str:
        """A block; one that is a vector given the concatenated axis (a row
        or column of a matrix) is that vector, a row transposed."""
        if getattr(a, "key", None) == "reshape":
            inner, shape = a.operands[0], tuple(_np_shape_of(a) or ())
            if len(shape) == 2 and shape[self.axis] == 1 and tuple(_np_shape_of(inner) or ()) == (shape[1 - self.axis],):
                return rf"{_sup(printer, inner)}^{{\top}}" if self.axis == 0 else printer._print(inner)
        return printer._print(a)

    def _latex(self, printer):
        nd = len(self.np_shape or ())
        parts = [self._part_tex(printer, a) for a in self.parts]
        if nd == 2 or (nd == 1 and self.axis == 0):
            sep = r" & " if nd == 2 and self.axis == 1 else r" \\ "
            return rf"\begin{{bmatrix}} {sep.join(parts)} \end{{bmatrix}}"
        return rf"\operatorname{{concat}}_{{{self.axis}}}\left({', '.join(parts)}\right)"

    def _spec(self, printer):
        return f"concat({', '.join(printer._print(a) for a in self.parts)}, {self.axis})"

    def _numpycode(self, printer):
        return f"numpy.concatenate([{', '.join(printer._print(a) for a in self.parts)}], axis={self.axis})"


def concat(parts, axis: int):
    return parts[0] if len(parts) == 1 else Concat(Integer(axis), *parts)


class Call(TExpr):
    """A named function of tensors, printed as ``\\operatorname{name}(...)``,
    ``name(...)`` and the helper ``_name(...)`` (softmax of a vector)."""

    @property
    def np_shape(self):
        return _np_shape_of(self.args[1]) if self.fname in ("softmax", "log_softmax") else None

    @property
    def fname(self):
        return self.args[0].name

    def _latex(self, printer):
        inner = ", ".join(printer._print(a) for a in self.args[1:])
        return r"\operatorname{%s}\left(%s\right)" % (self.fname, inner)

    def _spec(self, printer):
        return f"{self.fname}({', '.join(printer._print(a) for a in self.args[1:])})"

    def _numpycode(self, printer):
        return f"_{self.fname}({', '.join(printer._print(a) for a in self.args[1:])})"


def call(name: str, *args):
    return Call(Str(name), *args)


# ---------------------------------------------------------------------------
# Constructors: light simplification a person would do


def _is_num(x, v=None) -> bool:
    ok = isinstance(x, Basic) and x.is_Number
    return ok and (v is None or x == v)


def add(*terms):
    """A sum, flattening nested sums and dropping zeros.

    >>> a, b = TensorSymbol("a", (2,)), TensorSymbol("b", (2,))
    >>> spec(add(a, neg(b), 0))
    'a - b'
    """
    flat = []
    for t in terms:
        t = _num(t)
        if isinstance(t, Add_):
            flat.extend(t.args)
        elif not _is_num(t, 0):
            flat.append(t)
    if not flat:
        return Integer(0)
    if all(_is_num(t) for t in flat):
        return sympy.Add(*flat)
    shape = broadcast_shapes(*[_np_shape_of(t) for t in flat])
    if shape is not None and any(_np_shape_of(t) == shape and _ones_coeff(t) is None for t in flat):
        # y + (1/15) ones: the constant broadcasts as a number does
        flat = [t if _ones_coeff(t) is None else _ones_coeff(t) for t in flat]
    return flat[0] if len(flat) == 1 else Add_(*flat)


def _ones_coeff(x):
    """c where ``x`` is ones times a number c, else None."""
    if isinstance(x, Ones):
        return Integer(1)
    if isinstance(x, Had) and len(x.args) == 2 and _is_num(x.args[0]) and isinstance(x.args[1], Ones):
        return x.args[0]
    return None


def neg(x):
    x = _num(x)
    if _is_num(x):
        return -x
    if isinstance(x, Neg):
        return x.args[0]
    if isinstance(x, Had) and _is_num(x.args[0]):
        return had(-x.args[0], *x.args[1:])
    return Neg(x)


def sub(a, b):
    return add(a, neg(b))


def had(*factors):
    """An elementwise product: nested products and numbers collected, ones
    dropped, a negation pulled out front.

    >>> a = TensorSymbol("a", (2,))
    >>> spec(had(sympy.Rational(1, 2), a, 2)), spec(had(neg(a), a))
    ('a', '-a * a')
    """
    coeff, flat = Integer(1), []
    for f in factors:
        f = _num(f)
        if isinstance(f, Neg):
            coeff, f = -coeff, f.args[0]
        if isinstance(f, Had):
            for g in f.args:
                if _is_num(g):
                    coeff *= g
                else:
                    flat.append(g)
        elif _is_num(f):
            coeff *= f
        else:
            flat.append(f)
    if coeff == 0:
        return Integer(0)
    if coeff != 1:      # 2 * (G/4 spread) * D is G * D / 2: a mean's 1/n joins the number beside it
        for k, f in enumerate(flat):
            if getattr(f, "key", None) == "bcast" and len(f.params) == 2:
                coeff /= f.params[1]
                flat[k] = type(f)("bcast", tuple(f.operands), _np_shape_of(f), (f.params[0],))
    shape = broadcast_shapes(*[_np_shape_of(f) for f in flat]) if flat else ()
    if shape is not None:   # ones are redundant beside a factor of the full shape
        full = [f for f in flat if not isinstance(f, Ones)]
        if any(_np_shape_of(f) == shape for f in full):
            flat = full
    if not flat:
        return coeff
    body = flat[0] if len(flat) == 1 else Had(*flat)
    if coeff == 1:
        return body
    if coeff == -1:
        return Neg(body)
    return Had(coeff, *flat)


def div(a, b):
    a, b = _num(a), _num(b)
    if _is_num(b):
        return had(1 / b, a)
    if _is_num(a, 0):
        return Integer(0)
    if isinstance(a, Neg):      # -a / b, not (-a) / b
        return neg(Div(a.args[0], b))
    return Div(a, b)


def power(x, p):
    p = _num(p)
    if p == 1:
        return x
    if p == 0:
        return Integer(1)
    return Pow_(x, p)


def matmul(a, b):
    if _is_num(a, 0) or _is_num(b, 0):
        return Integer(0)
    return MatMul_(a, b)


def T(x):
    if isinstance(x, Transpose_):
        return x.args[0]
    if isinstance(x, Outer):
        return Outer(x.args[1], x.args[0])
    s = _np_shape_of(x)
    if s is not None and len(s) <= 1:
        return x        # numpy: a vector's transpose is itself
    if isinstance(x, MatMul_) and any(isinstance(a, Transpose_) for a in x.args):
        a, b = x.args   # (Q^T G)^T = G^T Q: as a person writes it, with fewer transposes
        return matmul(T(b), T(a))
    return Transpose_(x)


def square(x):
    """x ⊙ x, with sqrt(z) ⊙ sqrt(z) written z (z >= 0 wherever sqrt(z) is defined):
    layer norm's d(u / sqrt(var + eps)) reads (var + eps), not a product of roots."""
    if isinstance(x, Fun) and x.fname == "sqrt":
        return x.args[1]
    return had(x, x)


def outer(a, b):
    return Outer(a, b)


def fun(name: str, x):
    return Fun(Str(name), x)


def sum_all(x, mean: bool = False):
    if _np_shape_of(x) == () and not mean:
        return x
    return SumAll(x, Integer(int(mean)))


def ones(shape):
    return Ones(Tuple(*[Integer(n) for n in shape]))


def sum_to(x, shape):
    if isinstance(x, Neg):      # the sum of -G is minus the sum of G
        return neg(sum_to(x.args[0], shape))
    s = _np_shape_of(x)
    if s is not None and tuple(s) == tuple(shape):
        return x
    if not shape and s is not None:
        return sum_all(x)
    return SumTo(x, Tuple(*[Integer(n) for n in shape]))


def stack_(*xs):
    return Stack(*xs)


def row_(x, index: int):
    return Row(x, Integer(index))


def slice_(x, start: int, stop: int, scalar: bool = False):
    return Slice(x, Integer(start), Integer(stop), Integer(int(scalar)))


# ---------------------------------------------------------------------------
# Printers


class TexPrinter(LatexPrinter):
    r"""SymPy's LaTeX printer with ᵀ as ``^{\top}`` and ⊙ as ``\odot``."""

    def _print_Transpose(self, expr):
        return rf"{_sup(self, expr.arg)}^{{\top}}"

    def _print_HadamardProduct(self, expr):
        return r" \odot ".join(self.parenthesize(a, 1000) for a in expr.args)

    def _print_HadamardPower(self, expr):
        return rf"{self.parenthesize(expr.base, 1000)}^{{\odot {self._print(expr.exp)}}}"


class SpecPrinter(StrPrinter):
    """Spec syntax, which the spec parser reads back."""

    printmethod = "_spec"

    def _print_Transpose(self, expr):
        return f"transpose({self._print(expr.arg)})"

    def _print_MatMul(self, expr):
        return " @ ".join(self.parenthesize(a, 1000) for a in expr.args)

    def _print_HadamardProduct(self, expr):
        return " * ".join(self.parenthesize(a, 1000) for a in expr.args)

    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"

    def _print_Float(self, expr):
        return repr(float(expr))


class NumpyPrinter(NumPyPrinter):
    """numpy code: ``numpy.`` functions, vectors 1-D, ``@`` for products."""

    def __init__(self, settings=None):
        super().__init__(settings or {"fully_qualified_modules": True})

    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"

    def _print_Integer(self, expr):
        return str(expr.p)


def latex(expr) -> str:
    return TexPrinter().doprint(expr)


def spec(expr) -> str:
    return SpecPrinter().doprint(expr)


def numpy_code(expr) -> str:
    return NumpyPrinter().doprint(expr)


def _sigmoid(x):
    x = np.asarray(x, dtype=float)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sum_to(x, shape):
    x = np.asarray(x, dtype=float)
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    out = x.sum(axis=axes, keepdims=False) if axes else x
    return out.reshape(shape)


def _softmax(x):
    x = np.asarray(x, dtype=float)
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def _log_softmax(x):
    x = np.asarray(x, dtype=float)
    m = np.max(x)
    return x - m - np.log(np.sum(np.exp(x - m)))


#: the helpers the numpy code of a step calls besides numpy (codegen writes batched ones)
HELPERS = {
    "_sigmoid": _sigmoid,
    "_relu": lambda x: np.maximum(x, 0.0),
    "_step": lambda x: (np.asarray(x) > 0).astype(float),
    "_softplus": lambda x: np.logaddexp(0.0, x),
    "_sum_to": _sum_to,
    "_softmax": _softmax,
    "_log_softmax": _log_softmax,
}

_EVAL_GLOBALS = {"numpy": np, "__builtins__": {}, **HELPERS}


def register_numpy(name: str, fn) -> None:
    """Make ``fn`` callable as ``name`` in the numpy code of matrix steps (what
    :func:`evaluate` runs): the hook through which a module defining further
    operations (:mod:`derive.engine.nn_ops`) adds the kernels its printed code
    calls.  A name is registered once; registering it again for another
    function is an error, so no module silently replaces another's helper.

    >>> register_numpy("_demo_twice", lambda x: 2 * x)
    >>> evaluate(call("demo_twice", TensorSymbol("a", (2,))), {"a": np.array([1.0, 2.0])}).tolist()
    [2.0, 4.0]
    >>> register_numpy("_relu", abs)
    Traceback (most recent call last):
    ...
    ValueError: numpy helper '_relu' is already registered for another function
    """
    if not name.isidentifier() or name == "numpy":
        raise ValueError(f"numpy helper name {name!r} is not a plain identifier")
    if HELPERS.get(name, fn) is not fn:
        raise ValueError(f"numpy helper {name!r} is already registered for another function")
    HELPERS[name] = fn
    _EVAL_GLOBALS[name] = fn


def evaluate(expr, env: dict):
    """The value of ``expr`` (numpy float64) given the arrays named in ``env``,
    by running its numpy code: the same text codegen writes out.

    >>> a = TensorSymbol("a", (2,))
    >>> evaluate(outer(a, a), {"a": np.array([1.0, 2.0])}).tolist()
    [[1.0, 2.0], [2.0, 4.0]]
    """
    code = numpy_code(expr)
    # env is read as the locals (not copied: a long unroll has thousands of names)
    return np.asarray(eval(compile(code, "<matrix step>", "eval"), _EVAL_GLOBALS, env), dtype=float)  # noqa: S307 - our printer's output over checked names
