"""The operation table: one entry per operation, everything about it in one place.

Each entry holds the operation's SymPy form, its derivative rule (as data, in
terms of the input ``x`` and the output ``y``), its numpy form, its numpy
vector-Jacobian product and its LaTeX name.  The symbolic derivation
(:mod:`derive.engine.backprop`) reads ``derivative``; the independent numeric check
(:mod:`derive.engine.numeric`) reads ``numpy`` and ``vjp``.  The two never share code,
which is what makes the check worth having.

>>> from derive.engine.ops import OPS, relu, step
>>> relu(sympy.Rational(-1, 2)), step(0)
(0, 0)
>>> OPS["sigmoid"].derivative(sympy.Symbol("z"), sympy.Symbol("a"))
a*(1 - a)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy
from sympy import Function


class DeriveFunction(Function):
    """Base of our own activation functions: real-valued, printed by name."""

    is_real = True

    @classmethod
    def _op_name(cls) -> str:
        return cls.__name__

    def _latex(self, printer, exp=None):
        arg = printer._print(self.args[0])
        name = OPS[self._op_name()].latex_name
        # a symbol (sigma) as itself, a word (ReLU) upright
        head = name if name.startswith("\\") else rf"\operatorname{{{name}}}"
        body = rf"{head}\left({arg}\right)"
        if exp is not None:
            return rf"{body}^{{{exp}}}"
        return body

    def _sympystr(self, printer):
        return f"{self._op_name()}({printer._print(self.args[0])})"

    def fdiff(self, argindex=1):
        # Keeps sympy.diff consistent with our table (used only for display
        # helpers, never by the derivation itself).
        return OPS[self._op_name()].derivative(self.args[0], self)


class relu(DeriveFunction):
    """max(x, 0) with relu'(0) = 0, as in PyTorch."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return x if x > 0 else sympy.Integer(0)
        return None

    def _eval_evalf(self, prec):
        v = self.args[0].evalf(prec)
        if v.is_Number:
            return v if v > 0 else sympy.Float(0, prec)
        return None


class step(DeriveFunction):
    """The derivative of relu: 1 for x > 0, else 0 (so step(0) = 0)."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sympy.Integer(1) if x > 0 else sympy.Integer(0)
        return None

    def _eval_evalf(self, prec):
        v = self.args[0].evalf(prec)
        if v.is_Number:
            return sympy.Float(1 if v > 0 else 0, prec)
        return None


class sigmoid(DeriveFunction):
    """1 / (1 + exp(-x))."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.Rational(1, 2)
        return None

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sympy.exp(-x))

    def _eval_evalf(self, prec):
        return (1 / (1 + sympy.exp(-self.args[0]))).evalf(prec)


class softplus(DeriveFunction):
    """log(1 + exp(x))."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.log(2)
        return None

    def _eval_rewrite_as_log(self, x, **kwargs):
        return sympy.log(1 + sympy.exp(x))

    def _eval_evalf(self, prec):
        return sympy.log(1 + sympy.exp(self.args[0])).evalf(prec)


def _np_sigmoid(x):
    x = np.asarray(x, dtype=float)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


@dataclass(frozen=True)
class Op:
    """Everything about one elementwise operation.

    ``derivative(x, y)`` is dy/dx in terms of the input x and the output y
    (so the worked solution can write ``a (1 - a)`` for a sigmoid).
    ``vjp(g, x, y)`` is the numpy vector-Jacobian product g * dy/dx.
    """

    name: str
    sympy: Callable
    derivative: Callable
    numpy: Callable
    vjp: Callable
    latex_name: str
    description: str


OPS: dict[str, Op] = {}


def defop(name, sympy_form, derivative, numpy_form, vjp, latex_name, description):
    OPS[name] = Op(name, sympy_form, derivative, numpy_form, vjp, latex_name, description)


defop("relu", relu, lambda x, y: step(x), lambda x: np.maximum(x, 0.0),
      lambda g, x, y: g * (np.asarray(x) > 0), "ReLU", "max(x, 0); relu'(0) = 0")
defop("step", step, lambda x, y: sympy.Integer(0), lambda x: (np.asarray(x) > 0).astype(float),
      lambda g, x, y: np.zeros_like(np.asarray(g, dtype=float)), "step", "1 if x > 0 else 0")
defop("sigmoid", sigmoid, lambda x, y: y * (1 - y), _np_sigmoid,
      lambda g, x, y: g * y * (1.0 - y), r"\sigma", "1/(1+exp(-x))")
defop("tanh", sympy.tanh, lambda x, y: 1 - y**2, np.tanh,
      lambda g, x, y: g * (1.0 - y * y), "tanh", "hyperbolic tangent")
defop("exp", sympy.exp, lambda x, y: y, np.exp, lambda g, x, y: g * y, "exp", "e^x")
defop("log", sympy.log, lambda x, y: 1 / x, np.log, lambda g, x, y: g / x, "log", "natural logarithm")
defop("sqrt", sympy.sqrt, lambda x, y: 1 / (2 * y), np.sqrt,
      lambda g, x, y: g / (2.0 * y), "sqrt", "square root")
defop("softplus", softplus, lambda x, y: sigmoid(x), lambda x: np.logaddexp(0.0, x),
      lambda g, x, y: g * _np_sigmoid(x), "softplus", "log(1 + exp(x))")

#: SymPy function class -> table entry, for walking expression trees.
#: sqrt is a Pow in SymPy and is handled with the power rule.
BY_CLASS: dict[type, Op] = {
    op.sympy: op for op in OPS.values() if isinstance(op.sympy, type)
}


def op_of(expr) -> Op | None:
    """The table entry of a function application, or None for arithmetic.

    >>> op_of(sympy.tanh(sympy.Symbol('x'))).name
    'tanh'
    """
    return BY_CLASS.get(type(expr))


class MissingRule(LookupError):
    """Raised for an operation that has no entry in the table."""

    def __init__(self, expr):
        super().__init__(f"no derivative rule for operation {type(expr).__name__!r} in {expr}")
