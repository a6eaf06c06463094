r"""Vectorised numpy code from the matrix-form step list.

``derive codegen`` of a vector problem writes a module whose lines are the
worked solution's: the forward pass, then one assignment per matrix step
(``dL_dz1 = (transpose(W2) @ dL_dh) * ...`` printed as numpy), so its length
does not depend on the sizes.  Every quantity may carry leading batch axes
(``x`` of shape (B, n)): ``loss_and_gradients(**values)`` gives per-sample
losses and gradients (shape batch + the parameter's), and
``batch_loss_and_gradients(**values)`` the sums over the batch, computed
without forming per-sample gradients (a sum of outer products is one matrix
product).  softmax and log-softmax are the stable forms (the maximum
subtracted), so a loss stays finite where ``exp`` alone overflows.

>>> from derive.engine.matspec import build_matrix_spec
>>> from derive.problems.matrix_form import MatrixForm
>>> mf = MatrixForm(build_matrix_spec({"parameters": {"W": {"shape": [2, 2], "value": [[1, 2], [3, 4]]}},
...     "inputs": {"x": {"shape": [2], "value": [0.5, -0.5]}}, "forward": {"h": "tanh(W @ x)"},
...     "loss": "sum(h**2) / 2"}))
>>> m = load(generate(mf, "demo"))
>>> import numpy as np
>>> loss, grads = m.loss_and_gradients()
>>> bool(np.allclose(grads["W"], mf.gradient("W")))
True
>>> X = np.random.default_rng(0).standard_normal((5, 2))
>>> per = m.loss_and_gradients(x=X)[1]["W"]; tot = m.batch_loss_and_gradients(x=X)[1]["W"]
>>> per.shape, bool(np.allclose(per.sum(axis=0), tot))
((5, 2, 2), True)
"""
from __future__ import annotations

import types

import numpy as np
from sympy import Basic

from derive.engine import exprs as X
from derive.engine.exprs import _np_shape_of

HELPERS = '''
def _expand(x, k, K):
    """x with sample ndim k, broadcast against sample ndim K (leading batch axes kept)."""
    x = numpy.asarray(x, dtype=float)
    if K == k:
        return x
    return x.reshape(x.shape[:x.ndim - k] + (1,) * (K - k) + x.shape[x.ndim - k:])


def _mv(A, x):
    if A.ndim == 2:
        return x @ A.T
    return numpy.einsum("...ij,...j->...i", A, x)


def _vm(x, A):
    if A.ndim == 2:
        return x @ A
    return numpy.einsum("...i,...ij->...j", x, A)


def _outer(a, b):
    return a[..., :, None] * b[..., None, :]


def _outer_sum(a, b, batch=()):
    """sum over the batch (shape ``batch``) of outer(a, b): one matrix product.
    A factor without batch axes is the same for every sample and counts once
    per sample."""
    batch = numpy.broadcast_shapes(a.shape[:-1], b.shape[:-1], tuple(batch))
    if not batch:
        return numpy.outer(a, b)
    a = numpy.broadcast_to(a, batch + a.shape[-1:])
    b = numpy.broadcast_to(b, batch + b.shape[-1:])
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


def _bsum(x, k, batch=()):
    """x summed over the batch (shape ``batch``; x's own axes are the last k).
    A term without batch axes is the same for every sample and counts once
    per sample."""
    x = numpy.asarray(x, dtype=float)
    lead = numpy.broadcast_shapes(x.shape[:x.ndim - k], tuple(batch))
    x = numpy.broadcast_to(x, lead + x.shape[x.ndim - k:])
    return x.sum(axis=tuple(range(len(lead)))) if lead else x


def _ssum(x, k):
    """the sum of every entry of each sample (the last k axes)."""
    return numpy.sum(x, axis=tuple(range(-k, 0))) if k else x


def _smean(x, k):
    return numpy.mean(x, axis=tuple(range(-k, 0))) if k else x


def _sum_to(x, shape, k):
    """x (sample ndim k) summed over the sample axes broadcast to reach shape."""
    x = numpy.asarray(x, dtype=float)
    lead = k - len(shape)
    axes = tuple(range(x.ndim - k, x.ndim - k + lead))
    axes += tuple(x.ndim - len(shape) + i for i, n in enumerate(shape) if n == 1)
    out = x.sum(axis=axes, keepdims=True) if axes else x
    return out.reshape(out.shape[:x.ndim - k] + tuple(shape))


def _stack(*parts):
    parts = [numpy.asarray(p, dtype=float)[..., None] if s else numpy.asarray(p, dtype=float)
             for p, s in parts]
    batch = numpy.broadcast_shapes(*[p.shape[:-1] for p in parts])
    return numpy.concatenate([numpy.broadcast_to(p, batch + p.shape[-1:]) for p in parts], axis=-1)


def _pad(g, k, shape, widths):
    """g (sample ndim k, reshaped to ``shape``: the axes a slice's index dropped put back) among zeros."""
    g = numpy.asarray(g, dtype=float)
    batch = g.shape[:g.ndim - k]
    return numpy.pad(g.reshape(batch + tuple(shape)), ((0, 0),) * len(batch) + tuple(widths))


def _concat(axis, k, *parts):
    """Blocks (sample ndim k) side by side along a sample axis, batches broadcast."""
    parts = [numpy.asarray(p, dtype=float) for p in parts]
    batch = numpy.broadcast_shapes(*[p.shape[:p.ndim - k] for p in parts])
    return numpy.concatenate([numpy.broadcast_to(p, batch + p.shape[p.ndim - k:]) for p in parts], axis=axis - k)


def _sigmoid(x):
    e = numpy.exp(-numpy.abs(x))
    return numpy.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _relu(x):
    return numpy.maximum(x, 0.0)


def _step(x):
    return (numpy.asarray(x) > 0).astype(float)


def _softplus(x):
    return numpy.logaddexp(0.0, x)


def _softmax(x):
    e = numpy.exp(x - numpy.max(x, axis=-1, keepdims=True))
    return e / numpy.sum(e, axis=-1, keepdims=True)


def _log_softmax(x):
    m = numpy.max(x, axis=-1, keepdims=True)
    return x - m - numpy.log(numpy.sum(numpy.exp(x - m), axis=-1, keepdims=True))
'''


def _k(e) -> int:
    s = _np_shape_of(e)
    return len(s) if s is not None else 0


class BatchPrinter(X.NumpyPrinter):
    """numpy with leading batch axes: every matrix product and sum written
    for stacked samples; elementwise operands aligned on their sample axes."""

    def __init__(self):
        super().__init__()
        self.printmethod = "_batchcode"     # NumPyPrinter sets its own in __init__; our _print_ methods decide
        self.named: dict = {}               # an earlier step's expression -> its variable (dL_dz2)

    def name(self, expr, variable: str) -> None:
        """From now on ``expr`` prints as ``variable``: a step written in place
        where the worked solution uses it (``p - y``) is computed once."""
        if isinstance(expr, Basic) and not (expr.is_Atom or isinstance(expr, X.TensorSymbol)):
            self.named.setdefault(expr, variable)

    def _print(self, expr, **kwargs):
        variable = self.named.get(expr) if isinstance(expr, Basic) else None
        return variable if variable is not None else super()._print(expr, **kwargs)

    def emptyPrinter(self, expr):
        hook = getattr(expr, "_numpycode", None)       # another module's class: its per-sample form
        return hook(self) if hook else super().emptyPrinter(expr)

    def _operand(self, e, K):
        k = _k(e)
        text = self._print(e)
        return text if k == K or (isinstance(e, Basic) and e.is_Number) else f"_expand({text}, {k}, {K})"

    def _print_TensorSymbol(self, e):
        return e.name

    def _print_Add_(self, e):
        K = _k(e)
        out = self._operand(e.args[0], K)
        for a in e.args[1:]:
            if isinstance(a, X.Neg):
                out += f" - ({self._operand(a.args[0], K)})"
            else:
                out += f" + {self._operand(a, K)}"
        return f"({out})"

    def _print_Neg(self, e):
        return f"(-{self._print(e.args[0])})"

    def _print_Had(self, e):
        K = _k(e)
        return "(" + " * ".join(self._operand(a, K) for a in e.args) + ")"

    def _print_Div(self, e):
        K = _k(e)
        return f"({self._operand(e.args[0], K)} / {self._operand(e.args[1], K)})"

    def _print_Pow_(self, e):
        return f"({self._print(e.args[0])} ** {self._print(e.args[1])})"

    def _print_MatMul_(self, e):
        a, b = e.args
        ka, kb = _k(a), _k(b)
        A, Bt = self._print(a), self._print(b)
        if ka == 2 and kb == 1:
            return f"_mv({A}, {Bt})"
        if ka == 1 and kb == 2:
            return f"_vm({A}, {Bt})"
        if ka == 1 and kb == 1:
            return f"numpy.sum({A} * {Bt}, axis=-1)"
        return f"({A} @ {Bt})"

    def _print_Outer(self, e):
        return f"_outer({self._print(e.args[0])}, {self._print(e.args[1])})"

    def _print_Transpose_(self, e):
        return f"numpy.swapaxes({self._print(e.args[0])}, -1, -2)"

    def _print_Fun(self, e):
        return f"{X.FUN_NP.get(e.fname, 'numpy.' + e.fname)}({self._print(e.args[1])})"

    def _print_SumAll(self, e):
        return f"_{'smean' if e.is_mean else 'ssum'}({self._print(e.args[0])}, {_k(e.args[0])})"

    def _print_Ones(self, e):
        return f"numpy.ones({e.np_shape!r})"

    def _print_SumTo(self, e):
        return f"_sum_to({self._print(e.args[0])}, {e.np_shape!r}, {_k(e.args[0])})"

    def _print_Stack(self, e):
        return "_stack(" + ", ".join(f"({self._print(a)}, {int(_k(a) == 0)})" for a in e.args) + ")"

    def _print_Slice(self, e):
        start, stop, scalar = (int(a) for a in e.args[1:4])
        inner = self._print(e.args[0])
        return f"{inner}[..., {start}]" if scalar else f"{inner}[..., {start}:{stop}]"

    def _print_Row(self, e):
        k = _k(e.args[0])
        return f"{self._print(e.args[0])}[(Ellipsis, {int(e.args[1])}) + (slice(None),) * {k - 1}]"

    def _print_Col(self, e):
        return f"{self._print(e.args[0])}[..., :, {int(e.args[1])}]"

    def _print_Index(self, e):
        parts = [str(r) if isinstance(r, int) else (":" if r == (0, n) else f"{r[0]}:{r[1]}")
                 for r, n in zip(e.index, e.in_shape)]
        return f"({self._print(e.args[0])})[..., {', '.join(parts)}]"

    def _print_Concat(self, e):
        return f"_concat({e.axis}, {_k(e)}, {', '.join(self._print(a) for a in e.parts)})"

    def _print_Pad(self, e):
        return f"_pad({self._print(e.args[0])}, {_k(e.args[0])}, {e.inner_shape!r}, {e.widths!r})"

    def _print_Call(self, e):
        return f"_{e.fname}({', '.join(self._print(a) for a in e.args[1:])})"


def _batch_sum(printer: BatchPrinter, expr, k: int) -> str:
    """A parameter's gradient summed over the batch: sums of outer products
    become matrix products, everything else is summed over the leading axes."""
    if expr in printer.named:
        return f"_bsum({printer.named[expr]}, {k}, _B)"
    terms = list(expr.args) if isinstance(expr, X.Add_) else [expr]
    out = []
    for t in terms:
        sign = ""
        if isinstance(t, X.Neg):
            sign, t = "-", t.args[0]
        summed = getattr(t, "_batchsumcode", None)
        summed = summed(printer) if summed else None
        if isinstance(t, X.Outer):
            out.append(f"{sign}_outer_sum({printer._print(t.args[0])}, {printer._print(t.args[1])}, _B)")
        elif summed:        # a kernel that sums over the batch itself (a conv layer's dL/dK)
            out.append(f"{sign}{summed}")
        else:
            out.append(f"{sign}_bsum({printer._print(t)}, {k}, _B)")
    return " + ".join(out).replace("+ -", "- ")


def generate(mf, command: str | None = None, title: str = "") -> str:
    """The module's source, from the matrix form's graph and steps."""
    from derive.codegen.scalar import _doc_text
    g = mf.graph
    p = BatchPrinter()
    leaves = [n for n in g.nodes.values() if n.expr is None]
    params = [n.name for n in g.of_kind("parameter")]
    L = ['"""' + _doc_text(f"{title or g.title}: loss and gradients, vectorised numpy generated by derive"
                           + (f" ({command})" if command else "") + "."),
         "",
         "The lines are the worked solution's backward pass in matrix form (dL_dz1 is dL/dz1).",
         "Every value may carry leading batch axes (x of shape (B, n)): loss_and_gradients",
         "gives per-sample losses and gradients, batch_loss_and_gradients their sums over",
         "the batch (without forming per-sample gradients)."]
    for c in mf.derivation.conditions:
        L.append(_doc_text(f"It assumes, as the derivation did: {c.get('note', c['method'])}."))
    L += ['"""', "import numpy", ""]
    L += HELPERS.strip("\n").split("\n") + ["", ""]
    L.append("NAMES = (" + "".join(f"{n.name!r}, " for n in leaves) + ")")
    L.append("SHAPES = {" + ", ".join(f"{n.name!r}: {n.shape!r}" for n in leaves) + "}")
    L.append("DEFAULTS = {")
    for n in leaves:
        v = mf.leaves.get(n.name)
        if v is not None and np.size(v) <= 10_000:
            L.append(f"    {n.name!r}: numpy.array({np.asarray(v).tolist()!r}),")
    L += ["}", "", ""]
    L += ["def _givens(values):",
          '    """The values as float arrays (givens filled in), shapes checked after any batch axes."""',
          "    unknown = sorted(set(values) - set(NAMES))",
          "    if unknown:",
          "        raise TypeError(f\"unknown value {unknown[0]!r}; known: {', '.join(NAMES)}\")",
          "    given = {}",
          "    for name in NAMES:",
          "        if name not in values and name not in DEFAULTS:",
          "            raise TypeError(f\"no value given for {name!r}\")",
          "        value = numpy.asarray(values[name] if name in values else DEFAULTS[name], dtype=float)",
          "        own = SHAPES[name]",
          "        if value.shape[value.ndim - len(own):] != own:",
          "            raise ValueError(f\"{name} must have shape {own} (after any batch axes), not {value.shape}\")",
          "        given[name] = value",
          "    return given",
          "", ""]
    args = ", ".join(n.name for n in leaves)
    L.append(f"def _forward({args}):")
    for node in g.computed():
        L.append(f"    {node.name} = {p.doprint(g.symbolic(node.expr))}")
    L.append(f"    return {{{', '.join(repr(n.name) + ': ' + n.name for n in g.computed())}}}")
    L += ["", ""]
    for summed in (False, True):
        fname = "batch_loss_and_gradients" if summed else "loss_and_gradients"
        L.append(f"def {fname}(**values):")
        doc = ("Loss summed over the batch and gradients summed over the batch."
               if summed else "Per-sample loss and gradients (leading batch axes kept).")
        L.append(f'    """{doc}"""')
        L.append("    _g = _givens(values)")
        for n in leaves:
            L.append(f"    {n.name} = _g[{n.name!r}]")
        L.append(f"    _f = _forward({args})")
        for node in g.computed():
            L.append(f"    {node.name} = _f[{node.name!r}]")
        if summed:   # the batch's shape: that of the per-sample loss
            L.append(f"    _B = numpy.shape({g.loss})")
        last = {}
        for s in mf.steps:
            if s.target in params:
                last[s.target] = s
        p.named = {}
        for s in mf.steps:
            if summed and s.target in last and last[s.target] is s:
                L.append(f"    {s.symbol.name} = {_batch_sum(p, s.expr, len(s.shape))}")
            else:
                L.append(f"    {s.symbol.name} = {p.doprint(s.expr)}")
                p.name(s.expr, s.symbol.name)
        loss = g.loss
        L.append(f"    loss = {'numpy.sum(' + loss + ')' if summed else loss}")
        grads = ", ".join(f"{n!r}: {_adj(mf, n)}" for n in params)
        L.append(f"    return loss, {{{grads}}}")
        L += ["", ""]
    L.append("def loss(**values):")
    L.append('    """The loss alone (per sample): the forward pass only."""')
    L.append("    _g = _givens(values)")
    L.append(f"    return _forward({', '.join(f'_g[{n.name!r}]' for n in leaves)})[{g.loss!r}]")
    text = "\n".join(L) + "\n"
    from derive.engine.nn_exprs import numpy_helpers     # the nn kernels this code calls (conv2d, softmax(S, 1))
    extra = numpy_helpers(text)
    return text.replace("\n\nNAMES = (", "\n" + extra + "\n\nNAMES = (", 1) if extra else text


def _adj(mf, name: str) -> str:
    step = mf.derivation.step_of(name)
    shape = mf.graph.nodes[name].shape
    return step.symbol.name if step else f"numpy.zeros({shape!r})"


def load(source: str) -> types.ModuleType:
    """The generated module, imported from its source."""
    module = types.ModuleType("derive_generated")
    exec(compile(source, "<derive codegen>", "exec"), module.__dict__)  # noqa: S102 - our own printer's output
    return module


__all__ = ["generate", "load"]
