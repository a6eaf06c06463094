r"""One record per tensor operation: everything about it in one place.

A :class:`TensorOp` holds, for an operation as a spec writes it
(``softmax(S, 1)``, ``W @ x``, ``conv2d(X, K, 1, 0)``):

* ``shape``: the output shape from the input shapes and parameters, or a
  :class:`ShapeError` whose message names the operation and the sizes;
* ``forward``: numpy float64, torch's semantics, numerically stable forms;
* ``vjp``: the numpy vector-Jacobian product for one input, given the
  upstream adjoint ``G`` (shape of the output): the gradient with respect to
  that input, already summed over any broadcast axes (shape of that input).
  The independent numeric check reads ``forward`` and ``vjp`` only;
* ``symbolic``: the forward as a SymPy matrix expression over the inputs'
  symbols (for printing: LaTeX, spec syntax, numpy code);
* ``rule``: the matrix-level adjoint of one input as a SymPy matrix
  expression over the upstream adjoint's symbol, the inputs' and the output's
  symbols: matmul gives ``G * B.T`` and ``A.T * G``.  The worked solution,
  ``matrix_steps`` and codegen print this; they never recompute it.

Rules are data: :data:`TENSOR_OPS` maps a name to its record, filled by
:func:`register`; a missing rule is an error that names the operation.

>>> import numpy as np
>>> op = TensorOp(name="double", inputs=1, params=(),
...               shape=lambda shapes, p: shapes[0],
...               forward=lambda xs, p: 2 * xs[0],
...               vjp=lambda i, G, xs, out, p: 2 * G)
>>> op.shape(((2, 3),), {})
(2, 3)
>>> float(max_vjp_error(op, [np.ones((2, 3))], {}))  < 1e-8
True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

Shape = tuple  # tuple[int, ...]; () is a scalar


class ShapeError(ValueError):
    """Inputs whose shapes an operation cannot take; the message names both."""


class MissingRule(LookupError):
    """An operation without the rule asked for (the message names it)."""


@dataclass(frozen=True)
class TensorOp:
    name: str
    inputs: int                                   # tensor arguments, in order
    params: tuple = ()                            # ((name, default), ...): trailing non-tensor arguments
    shape: Callable[[tuple, dict], Shape] = None
    forward: Callable[[tuple, dict], np.ndarray] = None
    vjp: Callable[[int, np.ndarray, tuple, np.ndarray, dict], np.ndarray] = None
    symbolic: Callable[[tuple, dict], Any] | None = None
    rule: Callable[[int, Any, tuple, Any, dict], Any] | None = None
    doc: str = ""                                 # one line for the reference
    extra: dict = field(default_factory=dict)     # e.g. a textbook form of the rule

    def params_of(self, given: tuple) -> dict:
        """Trailing arguments by name, defaults filled in.

        >>> TensorOp("conv2d", 2, (("stride", 1), ("padding", 0))).params_of((2,))
        {'stride': 2, 'padding': 0}
        """
        if len(given) > len(self.params):
            raise ShapeError(f"{self.name}: takes {self.inputs} tensor arguments and at most "
                             f"{len(self.params)} more, got {self.inputs + len(given)}")
        out = {name: default for name, default in self.params}
        for (name, _), value in zip(self.params, given):
            out[name] = value
        return out

    def adjoint(self, i: int, upstream, inputs: tuple, output, params: dict):
        """The symbolic adjoint of input ``i``, or :class:`MissingRule`."""
        if self.rule is None:
            raise MissingRule(f"no matrix rule for {self.name}")
        return self.rule(i, upstream, inputs, output, params)


TENSOR_OPS: dict[str, TensorOp] = {}


def register(op: TensorOp) -> TensorOp:
    """Add ``op`` to :data:`TENSOR_OPS` (one name, one record)."""
    if op.name in TENSOR_OPS:
        raise ValueError(f"tensor operation {op.name} registered twice")
    TENSOR_OPS[op.name] = op
    return op


def tensor_op(name: str) -> TensorOp:
    """The record of ``name``, or :class:`MissingRule` naming it."""
    try:
        return TENSOR_OPS[name]
    except KeyError:
        raise MissingRule(f"unknown tensor operation {name}") from None


def max_vjp_error(op: TensorOp, xs: list, params: dict, seed: int = 0, h: float = 1e-6) -> float:
    """Largest relative error of ``op.vjp`` against central differences.

    For each input, <G, d out> along a random direction d of that input
    against <vjp(G), d>, relative to max(1, |<vjp(G), d>|).
    """
    rng = np.random.default_rng(seed)
    xs = [np.asarray(x, dtype=float) for x in xs]
    out = op.forward(tuple(xs), params)
    G = rng.standard_normal(np.shape(out))
    worst = 0.0
    for i, x in enumerate(xs):
        d = rng.standard_normal(x.shape)
        plus = list(xs); plus[i] = x + h * d
        minus = list(xs); minus[i] = x - h * d
        fd = np.sum(G * (op.forward(tuple(plus), params) - op.forward(tuple(minus), params))) / (2 * h)
        an = np.sum(op.vjp(i, G, tuple(xs), out, params) * d)
        worst = max(worst, abs(fd - an) / max(1.0, abs(an)))
    return worst
