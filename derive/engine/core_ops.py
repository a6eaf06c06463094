r"""The core tensor operations: arithmetic with numpy broadcasting, ``@``,
transpose, stack, the elementwise functions of :mod:`derive.engine.ops`, and the
sum and mean of every entry.

Each record keeps its numpy forward and VJP (read by the independent check)
beside its symbolic form and its matrix-level adjoint rule (read by the
worked solution); the two never share code.  A rule returns the adjoint in
the shape numpy's broadcasting gives the output; the reverse mode sums it
back over broadcast axes (:func:`derive.engine.reverse`), as the numpy VJPs
here do themselves.

>>> import numpy as np
>>> from derive.engine.tensor_op import TENSOR_OPS, max_vjp_error
>>> bool(max_vjp_error(TENSOR_OPS["matmul"], [np.ones((3, 2)), np.arange(2.0)], {}) < 1e-8)
True
>>> from derive.engine.exprs import TensorSymbol, spec
>>> W, x, G = TensorSymbol("W", (3, 2)), TensorSymbol("x", (2,)), TensorSymbol("G", (3,))
>>> spec(TENSOR_OPS["matmul"].rule(0, G, (W, x), None, {})), spec(TENSOR_OPS["matmul"].rule(1, G, (W, x), None, {}))
('outer(G, x)', 'transpose(W) @ G')
"""
from __future__ import annotations

import numpy as np
import sympy

from derive.engine.ops import OPS
from derive.engine import exprs as X
from derive.engine.tensor_op import TENSOR_OPS, ShapeError, TensorOp, register


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` over the axes numpy broadcast ``shape`` along (numeric VJPs)."""
    g = np.asarray(g, dtype=float)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g.reshape(shape)


def _bshape(name):
    def shape(shapes, p):
        try:
            return tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            raise ShapeError(f"{name} of shapes {_words(shapes[0])} and {_words(shapes[1])}: they do not "
                             "broadcast (equal sizes, or 1, from the last axis)"
                             + (" (* is elementwise; use @ for a matrix product)" if name == "*" else "")) from None
    return shape


def _words(shape):
    return " x ".join(str(n) for n in shape) if shape else "scalar"


def _same(shapes, p):
    return tuple(shapes[0])


def _binary(name, symbol, forward, vjp0, vjp1, sym, rule0, rule1, doc):
    register(TensorOp(
        name=name, inputs=2, shape=_bshape(symbol), forward=lambda xs, p: forward(*xs),
        vjp=lambda i, G, xs, out, p: unbroadcast((vjp0 if i == 0 else vjp1)(G, *xs, out), np.shape(xs[i])),
        symbolic=lambda s, p: sym(*s), rule=lambda i, G, s, out, p: (rule0 if i == 0 else rule1)(G, *s, out),
        doc=doc, extra={"elementwise": True}))


_binary("add", "+", lambda a, b: a + b, lambda G, a, b, o: G, lambda G, a, b, o: G,
        X.add, lambda G, a, b, o: G, lambda G, a, b, o: G, "a + b, broadcasting as numpy")
_binary("sub", "-", lambda a, b: a - b, lambda G, a, b, o: G, lambda G, a, b, o: -G,
        X.sub, lambda G, a, b, o: G, lambda G, a, b, o: X.neg(G), "a - b")
_binary("mul", "*", lambda a, b: a * b, lambda G, a, b, o: G * b, lambda G, a, b, o: G * a,
        X.had, lambda G, a, b, o: X.had(G, b), lambda G, a, b, o: X.had(G, a),
        "elementwise (Hadamard) product a ⊙ b")
_binary("div", "/", lambda a, b: a / b, lambda G, a, b, o: G / b, lambda G, a, b, o: -G * a / (b * b),
        X.div, lambda G, a, b, o: X.div(G, b),
        lambda G, a, b, o: X.neg(X.div(X.had(G, a), X.square(b))), "elementwise quotient a ⊘ b")


def _pow_shape(shapes, p):
    return tuple(shapes[0])


register(TensorOp(
    name="pow", inputs=1, params=(("exponent", 2),), shape=_pow_shape,
    forward=lambda xs, p: np.power(xs[0], float(p["exponent"])),
    vjp=lambda i, G, xs, out, p: G * float(p["exponent"]) * np.power(xs[0], float(p["exponent"]) - 1),
    symbolic=lambda s, p: X.power(s[0], p["exponent"]),
    rule=lambda i, G, s, out, p: X.had(p["exponent"], G, X.power(s[0], p["exponent"] - 1)),
    doc="X**p, elementwise, p a constant", extra={"elementwise": True}))

register(TensorOp(
    name="neg", inputs=1, shape=_same, forward=lambda xs, p: -xs[0],
    vjp=lambda i, G, xs, out, p: -G, symbolic=lambda s, p: X.neg(s[0]),
    rule=lambda i, G, s, out, p: X.neg(G), doc="-X", extra={"elementwise": True}))


# -- matrix product -----------------------------------------------------------

def _matmul_shape(shapes, p):
    a, b = shapes
    if not a or not b or len(a) > 2 or len(b) > 2:
        raise ShapeError("@ needs a vector or matrix on both sides (use * to scale by a scalar), got "
                         f"{_words(a)} and {_words(b)}")
    inner_b = b[0]
    if a[-1] != inner_b:
        raise ShapeError(f"@ of shapes {_words(a)} and {_words(b)}: the inner sizes {a[-1]} and {inner_b} differ")
    return tuple(a[:-1]) + tuple(b[1:])


def _matmul_vjp(i, G, xs, out, p):
    A, B = xs
    G = np.asarray(G, dtype=float)
    if i == 0:
        if A.ndim == 1:
            return B @ G if B.ndim == 2 else G * B
        return np.outer(G, B) if B.ndim == 1 else G @ B.T
    if B.ndim == 1:
        return A.T @ G if A.ndim == 2 else G * A
    return np.outer(A, G) if A.ndim == 1 else A.T @ G


def _matmul_rule(i, G, s, out, p):
    A, B = s
    na, nb = len(X._np_shape_of(A) or (0, 0)), len(X._np_shape_of(B) or (0, 0))
    if i == 0:
        if na == 1:
            return X.matmul(B, G) if nb == 2 else X.had(G, B)
        return X.outer(G, B) if nb == 1 else X.matmul(G, X.T(B))
    if nb == 1:
        return X.matmul(X.T(A), G) if na == 2 else X.had(G, A)
    return X.outer(A, G) if na == 1 else X.matmul(X.T(A), G)


register(TensorOp(
    name="matmul", inputs=2, shape=_matmul_shape, forward=lambda xs, p: xs[0] @ xs[1],
    vjp=_matmul_vjp, symbolic=lambda s, p: X.matmul(*s), rule=_matmul_rule,
    doc="A @ B: matrix-vector, matrix-matrix, dot, vector-matrix; adjoints G Bᵀ and Aᵀ G"))


def _outer_shape(shapes, p):
    a, b = shapes
    if len(a) != 1 or len(b) != 1:
        raise ShapeError(f"outer() takes two vectors, got {_words(a)} and {_words(b)}")
    return (a[0], b[0])


register(TensorOp(
    name="outer", inputs=2, shape=_outer_shape, forward=lambda xs, p: np.outer(xs[0], xs[1]),
    vjp=lambda i, G, xs, out, p: G @ xs[1] if i == 0 else G.T @ xs[0],
    symbolic=lambda s, p: X.outer(*s),
    rule=lambda i, G, s, out, p: X.matmul(G, s[1]) if i == 0 else X.matmul(X.T(G), s[0]),
    doc="a bᵀ of two vectors"))


def _transpose_shape(shapes, p):
    if len(shapes[0]) != 2:
        raise ShapeError(f"transpose() needs a matrix, got {_words(shapes[0])}")
    return tuple(reversed(shapes[0]))


register(TensorOp(
    name="transpose", inputs=1, shape=_transpose_shape, forward=lambda xs, p: xs[0].T,
    vjp=lambda i, G, xs, out, p: np.asarray(G).T, symbolic=lambda s, p: X.T(s[0]),
    rule=lambda i, G, s, out, p: X.T(G), doc="Xᵀ of a matrix"))


def _add_n_shape(shapes, p):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError("add_n of shapes " + ", ".join(_words(s) for s in shapes) + ": they do not broadcast") from None


register(TensorOp(
    name="add_n", inputs=-1, shape=_add_n_shape, forward=lambda xs, p: sum(xs[1:], xs[0]),
    vjp=lambda i, G, xs, out, p: unbroadcast(G, np.shape(xs[i])), symbolic=lambda s, p: X.add(*s),
    rule=lambda i, G, s, out, p: G, doc="the sum of its arguments (sum(e) of a scalar sequence: e_1 + ... + e_T)",
    extra={"elementwise": True}))


# -- stacking and indexing ------------------------------------------------------

def _stack_shape(shapes, p):
    for s in shapes:
        if len(s) > 1:
            raise ShapeError(f"stack() takes vectors and scalars, not a {_words(s)} matrix")
    return (sum(s[0] if s else 1 for s in shapes),)


def _offsets(shapes):
    out, k = [], 0
    for s in shapes:
        n = s[0] if s else 1
        out.append((k, k + n, not s))
        k += n
    return out


def _stack_vjp(i, G, xs, out, p):
    start, stop, scalar = _offsets([np.shape(x) for x in xs])[i]
    return np.asarray(G)[start] if scalar else np.asarray(G)[start:stop]


def _stack_rule(i, G, s, out, p):
    start, stop, scalar = _offsets([X._np_shape_of(x) for x in s])[i]
    return X.slice_(G, start, stop, scalar)


register(TensorOp(
    name="stack", inputs=-1, shape=_stack_shape,
    forward=lambda xs, p: np.concatenate([np.atleast_1d(x) for x in xs]),
    vjp=_stack_vjp, symbolic=lambda s, p: X.stack_(*s), rule=_stack_rule,
    doc="vectors (or scalars) one above the other: stack(h_prev, x); the adjoint of a block is its slice"))


def _rows_shape(shapes, p):
    s = shapes[0]
    if len(s) != 1 or not 0 <= p["start"] < p["stop"] <= s[0]:
        raise ShapeError(f"rows(v, start, stop) needs a vector and 0 <= start < stop <= {s[0] if s else 0}")
    return (p["stop"] - p["start"],)


def _rows_vjp(i, G, xs, out, p):
    g = np.zeros(np.shape(xs[0]))
    g[p["start"]:p["stop"]] = G
    return g


register(TensorOp(
    name="rows", inputs=1, params=(("start", 0), ("stop", 1)), shape=_rows_shape,
    forward=lambda xs, p: np.asarray(xs[0])[p["start"]:p["stop"]], vjp=_rows_vjp,
    symbolic=lambda s, p: X.slice_(s[0], p["start"], p["stop"]),
    doc="entries start .. stop-1 (0-based) of a vector"))


def _entry_shape(shapes, p):
    s = shapes[0]
    if len(s) != 1 or not 0 <= p["index"] < s[0]:
        raise ShapeError(f"entry(v, index) needs a vector and 0 <= index < {s[0] if s else 0}")
    return ()


register(TensorOp(
    name="entry", inputs=1, params=(("index", 0),), shape=_entry_shape,
    forward=lambda xs, p: np.asarray(xs[0])[p["index"]],
    vjp=lambda i, G, xs, out, p: _rows_vjp(i, G, xs, out, {"start": p["index"], "stop": p["index"] + 1}),
    symbolic=lambda s, p: X.slice_(s[0], p["index"], p["index"] + 1, True),
    doc="entry index (0-based) of a vector"))


def _row_shape(shapes, p):
    s = shapes[0]
    if not s or not 0 <= p["index"] < s[0]:
        raise ShapeError(f"row(X, index) needs 0 <= index < {s[0] if s else 0}")
    return tuple(s[1:])


register(TensorOp(
    name="row", inputs=1, params=(("index", 0),), shape=_row_shape,
    forward=lambda xs, p: np.asarray(xs[0])[p["index"]],
    vjp=lambda i, G, xs, out, p: _row_vjp(G, xs[0], p["index"]),
    symbolic=lambda s, p: X.row_(s[0], p["index"]),
    rule=lambda i, G, s, out, p: _place(G, (p["index"],), X._np_shape_of(s[0])),
    doc="step t of a sequence declared [T, ...]: row index (0-based)"))


def _col_shape(shapes, p):
    s = shapes[0]
    if len(s) != 2 or not 0 <= p["index"] < s[1]:
        raise ShapeError(f"col(X, index) needs a matrix and 0 <= index < {s[1] if len(s) == 2 else 0}")
    return (s[0],)


def _col_vjp(G, x, index):
    g = np.zeros(np.shape(x))
    g[:, index] = G
    return g


register(TensorOp(
    name="col", inputs=1, params=(("index", 0),), shape=_col_shape,
    forward=lambda xs, p: np.asarray(xs[0])[:, p["index"]],
    vjp=lambda i, G, xs, out, p: _col_vjp(G, xs[0], p["index"]),
    symbolic=lambda s, p: X.col_(s[0], p["index"]),
    rule=lambda i, G, s, out, p: _place(G, ((0, X._np_shape_of(s[0])[0]), p["index"]), X._np_shape_of(s[0])),
    doc="column index (0-based) of a matrix: col(h, t-1) is h_t"))


def _row_vjp(G, x, index):
    g = np.zeros(np.shape(x))
    g[index] = G
    return g


# -- numpy's slicing: X[0:4], G[:, 0:1], H[:, 2] and its adjoint, pad ----------------

def full_index(index, shape) -> tuple:
    """``index`` (per axis ``(start, stop)`` or a whole number, numpy's
    negative numbers allowed, trailing axes left out) checked against
    ``shape`` and normalised: 0 <= start < stop <= n, 0 <= i < n.  Bounds out
    of the axis are refused (numpy would clip them silently).

    >>> full_index(((0, 1),), (3, 2)), full_index(((-2, None), 1), (4, 3))
    (((0, 1), (0, 2)), ((2, 4), 1))
    """
    index = tuple(index)
    if len(index) > len(shape):
        raise ShapeError(f"{len(index)} indices for a quantity of shape {_words(shape)}")
    out = []
    for k, (r, n) in enumerate(zip(index + ((None, None),) * (len(shape) - len(index)), shape)):
        if isinstance(r, tuple):
            a, b = r
            a = 0 if a is None else a
            b = n if b is None else b
            for v in (a, b):
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not -n <= v <= n:
                    raise ShapeError(f"axis {k} has {n} entries: a slice's bounds are whole numbers "
                                     f"from {-n} to {n}, got {v}")
            a, b = int(a) % n if a < 0 else int(a), int(b) + n if b < 0 else int(b)
            if a >= b:
                raise ShapeError(f"axis {k}: the slice {r[0] if r[0] is not None else ''}:"
                                 f"{r[1] if r[1] is not None else ''} selects nothing")
            out.append((a, b))
        else:
            if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not -n <= r < n:
                raise ShapeError(f"axis {k} has {n} entries: an index is a whole number from {-n} to {n - 1}, "
                                 f"got {r}")
            out.append(int(r) % n)
    return tuple(out)


def _np_index(index) -> tuple:
    return tuple(r if isinstance(r, int) else slice(*r) for r in index)


def _index_shape(shapes, p):
    return tuple(r[1] - r[0] for r in full_index(p["index"], shapes[0]) if not isinstance(r, int))


def _index_vjp(i, G, xs, out, p):
    g = np.zeros(np.shape(xs[0]))
    g[_np_index(full_index(p["index"], np.shape(xs[0])))] = G
    return g


def _place(G, index, shape):
    """The adjoint of ``X[index]``: G put back among zeros of X's shape."""
    index = full_index(index, shape)
    widths = [(r, n - r - 1) if isinstance(r, int) else (r[0], n - r[1]) for r, n in zip(index, shape)]
    return X.pad(G, widths, tuple(k for k, r in enumerate(index) if isinstance(r, int)))


register(TensorOp(
    name="slice", inputs=1, params=(("index", ()),), shape=_index_shape,
    forward=lambda xs, p: np.asarray(xs[0])[_np_index(full_index(p["index"], np.shape(xs[0])))],
    vjp=_index_vjp,
    symbolic=lambda s, p: X.index_(s[0], full_index(p["index"], X._np_shape_of(s[0])), X._np_shape_of(s[0])),
    rule=lambda i, G, s, out, p: _place(G, p["index"], X._np_shape_of(s[0])),
    doc="numpy's slicing X[0:4], G[:, 0:1], H[:, 2] (written as a subscript): start:stop per axis, "
        "an index drops its axis; its adjoint is the upstream among zeros, pad(...)",
    extra={"derivation": (r"Y = X_{I} \;\Rightarrow\; \bar{X}_{I} = \bar{Y},\ \bar{X} = 0 \text{ outside } I"
                          r" \text{ (the block taken, put back among zeros)}",)}))

def _concat_axis(shapes, p) -> int:
    nd = len(shapes[0])
    axis = p["axis"]
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -nd <= axis < max(nd, 1):
        raise ShapeError(f"concat: axis {axis} does not exist for {_words(shapes[0])} blocks")
    return int(axis) % nd


def _concat_shape(shapes, p):
    if any(not s for s in shapes) or len({len(s) for s in shapes}) != 1:
        raise ShapeError("concat() takes blocks with the same number of axes (not scalars), got "
                         + ", ".join(_words(s) for s in shapes))
    ax = _concat_axis(shapes, p)
    if len({tuple(n for k, n in enumerate(s) if k != ax) for s in shapes}) != 1:
        raise ShapeError(f"concat along axis {ax}: the blocks " + ", ".join(_words(s) for s in shapes)
                         + " differ in another axis")
    out = list(shapes[0])
    out[ax] = sum(s[ax] for s in shapes)
    return tuple(out)


def _concat_span(shapes, p, i) -> tuple:
    """(axis, start, stop) of block i along the axis."""
    ax = _concat_axis(shapes, p)
    start = sum(s[ax] for s in shapes[:i])
    return ax, start, start + shapes[i][ax]


def _concat_vjp(i, G, xs, out, p):
    ax, a, b = _concat_span([np.shape(x) for x in xs], p, i)
    return np.asarray(G)[(slice(None),) * ax + (slice(a, b),)]


def _concat_rule(i, G, s, out, p):
    shapes = [X._np_shape_of(x) for x in s]
    ax, a, b = _concat_span(shapes, p, i)
    full = _concat_shape(shapes, p)
    return X.index_(G, tuple((a, b) if k == ax else (0, n) for k, n in enumerate(full)), full)


register(TensorOp(
    name="concat", inputs=-1, params=(("axis", 0),), shape=_concat_shape,
    forward=lambda xs, p: np.concatenate([np.asarray(x, dtype=float) for x in xs], axis=_concat_axis(
        [np.shape(x) for x in xs], p)),
    vjp=_concat_vjp, symbolic=lambda s, p: X.concat(s, _concat_axis([X._np_shape_of(x) for x in s], p)),
    rule=_concat_rule,
    doc="concat(A, B, ..., axis): blocks side by side along the axis (numpy's concatenate; axis 0 by default); "
        "the adjoint of a block is its slice of the upstream",
    extra={"derivation": (r"Y = \begin{bmatrix} A & B \end{bmatrix} \;\Rightarrow\; "
                          r"\begin{bmatrix} \bar{A} & \bar{B} \end{bmatrix} = \bar{Y}",)}))

_PAD_PARAMS = tuple((f"w{k}", None) for k in range(8))


def _widths(p) -> tuple:
    given = [p[f"w{k}"] for k in range(8) if p.get(f"w{k}") is not None]
    return tuple(zip(given[0::2], given[1::2]))


def _pad_shape(shapes, p):
    (s,) = shapes
    given = [p[f"w{k}"] for k in range(8) if p.get(f"w{k}") is not None]
    if not s or len(given) != 2 * len(s):
        raise ShapeError(f"pad(X, before, after, ...) takes two numbers per axis of X (zeros before and after), "
                         f"{2 * len(s)} for a {_words(s)} quantity, got {len(given)}")
    for v in given:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= 10**6:
            raise ShapeError(f"pad: the numbers of zeros are whole numbers from 0 to 1000000, got {v}")
    return tuple(n + a + b for n, (a, b) in zip(s, _widths(p)))


def _pad_vjp(i, G, xs, out, p):
    shape = np.shape(xs[0])
    return np.asarray(G)[tuple(slice(a, a + n) for n, (a, _) in zip(shape, _widths(p)))]


register(TensorOp(
    name="pad", inputs=1, params=_PAD_PARAMS, shape=_pad_shape,
    forward=lambda xs, p: np.pad(np.asarray(xs[0], dtype=float), _widths(p)),
    vjp=_pad_vjp,
    symbolic=lambda s, p: X.pad(s[0], _widths(p)),
    rule=lambda i, G, s, out, p: X.index_(G, tuple((a, a + n) for n, (a, _) in zip(X._np_shape_of(s[0]), _widths(p))),
                                          tuple(n + a + b for n, (a, b) in zip(X._np_shape_of(s[0]), _widths(p)))),
    doc="pad(X, before0, after0, before1, after1, ...): X among zeros, numpy's pad; the adjoint of a slice",
    extra={"derivation": (r"\bar{X} = \bar{Y}_{I}, \text{ the block of } Y \text{ that } X \text{ fills}",)}))


# -- elementwise functions of the scalar table ------------------------------------

#: adjoint of Y = f(X) written, where a person does, in the output Y
_FUN_RULES = {
    "tanh": lambda G, x, y: X.had(G, X.sub(1, X.had(y, y))),
    "sigmoid": lambda G, x, y: X.had(G, y, X.sub(1, y)),
    "exp": lambda G, x, y: X.had(G, y),
    "log": lambda G, x, y: X.div(G, x),
    "sqrt": lambda G, x, y: X.div(G, X.had(2, y)),
    "relu": lambda G, x, y: X.had(G, X.fun("step", x)),
    "step": lambda G, x, y: sympy.Integer(0),
    "softplus": lambda G, x, y: X.had(G, X.fun("sigmoid", x)),
}


def _elementwise(name):
    op = OPS[name]
    register(TensorOp(
        name=name, inputs=1, shape=_same,
        forward=lambda xs, p: np.asarray(op.numpy(np.asarray(xs[0], dtype=float)), dtype=float),
        vjp=lambda i, G, xs, out, p: op.vjp(G, xs[0], out),
        symbolic=lambda s, p: X.fun(name, s[0]),
        rule=lambda i, G, s, out, p: _FUN_RULES[name](G, s[0], out),
        doc=op.description, extra={"elementwise": True}))


for _name in OPS:
    _elementwise(_name)


# -- the sum and mean of every entry ---------------------------------------------

SUM_ALL = TensorOp(
    name="sum", inputs=1, params=(("axis", None),), shape=lambda shapes, p: (),
    forward=lambda xs, p: np.sum(xs[0]),
    vjp=lambda i, G, xs, out, p: np.broadcast_to(G, np.shape(xs[0])).astype(float),
    symbolic=lambda s, p: X.sum_all(s[0]), rule=lambda i, G, s, out, p: G,
    doc="the sum of every entry (a scalar)")

MEAN_ALL = TensorOp(
    name="mean", inputs=1, params=(("axis", None),), shape=lambda shapes, p: (),
    forward=lambda xs, p: np.mean(xs[0]),
    vjp=lambda i, G, xs, out, p: np.broadcast_to(G / max(1, np.size(xs[0])), np.shape(xs[0])).astype(float),
    symbolic=lambda s, p: X.sum_all(s[0], mean=True),
    rule=lambda i, G, s, out, p: X.had(sympy.Rational(1, _size(X._np_shape_of(s[0]))), G),
    doc="the mean of every entry (a scalar)")


def _softmax_shape(shapes, p):
    if len(shapes[0]) != 1 or p.get("axis") not in (None, 0):
        raise ShapeError(f"softmax of a {_words(shapes[0])} quantity: only vectors here")
    return tuple(shapes[0])


def _np_softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


SOFTMAX_V = TensorOp(
    name="softmax", inputs=1, params=(("axis", None),), shape=_softmax_shape,
    forward=lambda xs, p: _np_softmax(np.asarray(xs[0], dtype=float)),
    vjp=lambda i, G, xs, out, p: out * (G - np.sum(G * out)),
    symbolic=lambda s, p: X.call("softmax", s[0]),
    rule=lambda i, G, s, out, p: X.had(out, X.sub(G, X.sum_all(X.had(G, out)))),
    doc="exp(v_j) / sum_k exp(v_k) of a vector (stable: the maximum subtracted)")

LOG_SOFTMAX_V = TensorOp(
    name="log_softmax", inputs=1, params=(("axis", None),), shape=_softmax_shape,
    forward=lambda xs, p: np.asarray(xs[0], dtype=float) - np.max(xs[0])
    - np.log(np.sum(np.exp(np.asarray(xs[0], dtype=float) - np.max(xs[0])))),
    vjp=lambda i, G, xs, out, p: G - np.exp(out) * np.sum(G),
    symbolic=lambda s, p: X.call("log_softmax", s[0]),
    rule=lambda i, G, s, out, p: X.sub(G, X.had(X.call("softmax", s[0]), X.sum_all(G))),
    doc="log(softmax(v)) of a vector, as log-sum-exp")


def _size(shape):
    return int(np.prod(shape)) if shape else 1


def register_fallbacks() -> None:
    """sum and mean of every entry, softmax of a vector, unless the nn
    operations (which take an axis) registered them already."""
    for op in (SUM_ALL, MEAN_ALL, SOFTMAX_V, LOG_SOFTMAX_V):
        if op.name not in TENSOR_OPS:
            register(op)


#: operations whose rule returns the output's (broadcast) shape; the reverse
#: mode sums over the broadcast axes (an op may say so with extra["elementwise"])
def broadcasts(op: TensorOp) -> bool:
    return bool(op.extra.get("elementwise"))
