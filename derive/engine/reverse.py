r"""Reverse mode at the matrix level: one list of step records.

Walking the named nodes of a :class:`~derive.engine.tgraph.TGraph` from the
loss back, each operation's matrix rule (``TensorOp.rule``) turns the adjoint
of its output into the adjoint of each input; the contributions of several
consumers are summed.  Every named node that reaches the loss gets one
:class:`MatrixStep`: its name (``dL/dz1``), the matrix expression over
forward names and earlier adjoints (``dL_dh``), the shape and the value
(numpy float64, computed by running the expression's numpy code).

Simplifications a person makes: a short adjoint without adjoints in it
(``p - y``, ``O_3 - Y_3``) is written in place where it is used; softmax
followed by cross-entropy gives ``p - y`` when ``sum(y) = 1`` (checked on
the values, recorded in :attr:`Derivation.conditions`).

>>> from derive.engine.tgraph import TGraph
>>> import numpy as np
>>> g = TGraph()
>>> W = g.leaf("W", (2, 3), "parameter"); x = g.leaf("x", (3,), "input"); y = g.leaf("y", (2,), "target")
>>> z = g.define("z", g.apply("matmul", W, x))
>>> h = g.define("h", g.apply("tanh", z))
>>> L = g.define("L", g.apply("div", g.apply("sum", g.apply("pow", g.apply("sub", h, y), exponent=2)), 2), kind="loss")
>>> d = reverse(g, g.forward({"W": np.ones((2, 3)) / 4, "x": np.array([1.0, 2, 3]), "y": np.zeros(2)}))
>>> [(s.name, s.spec) for s in d.steps]
[('dL/dh', 'h - y'), ('dL/dz', '(h - y) * (1 - h * h)'), ('dL/dW', 'outer(dL_dz, x)')]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy

from derive.engine import exprs as X
from derive.engine.nn_exprs import NNExpr
from derive.engine.tgraph import Apply, Const, Ref, TGraph, refs
from derive.engine.tensor_op import tensor_op

#: an adjoint with no adjoint in it is written in place when its spec text is this short
INLINE_CHARS = 24


@dataclass
class MatrixStep:
    """One adjoint: ``name = expr = value``."""

    name: str                  # dL/dz1
    target: str                # z1
    symbol: object             # TensorSymbol dL_dz1
    expr: object               # the matrix expression
    shape: tuple
    value: np.ndarray
    note: str = ""
    parts: tuple = ()          # (consumer, expression) of each contribution, in forward order
    note_tex: str = ""         # the note as LaTeX, for documents (the note itself is spec syntax)

    @property
    def spec(self) -> str:
        return X.spec(self.expr)

    @property
    def latex(self) -> str:
        return X.latex(self.expr)

    @property
    def lhs_latex(self) -> str:
        return self.symbol.tex

    def to_json(self, max_entries: int = 10_000) -> dict:
        out = {"name": self.name, "expr": self.spec, "latex": self.latex, "shape": list(self.shape)}
        if self.value.size <= max_entries:
            out["value"] = self.value.tolist()
        return out


@dataclass
class Derivation:
    steps: list
    values: dict               # forward values and adjoints by symbol name (dL_dz1)
    conditions: list = field(default_factory=list)   # checks records of the simplifications used
    aux_steps: dict = field(default_factory=dict)    # a named part of a time step -> (its sequence, t)

    def step_of(self, target: str) -> MatrixStep | None:
        for s in self.steps:
            if s.target == target:
                return s
        return None

    def gradient(self, name: str) -> np.ndarray:
        s = self.step_of(name)
        return s.value if s is not None else None


def adjoint_name(loss: str, name: str) -> str:
    return f"d{loss}_d{name}"


def adjoint_tex(loss_tex: str, tex: str) -> str:
    return rf"\frac{{\partial {loss_tex}}}{{\partial {tex}}}"


def reverse(g: TGraph, values: dict) -> Derivation:
    """The matrix-form backward pass of ``g`` at the forward ``values``."""
    return _Reverse(g, values).run()


class _Reverse:
    def __init__(self, g: TGraph, values: dict):
        self.g = g
        self.env = dict(values)
        self.live = g.needs_grad()
        self.parts: dict = {}          # name -> [(consumer order, consumer, expr)]
        self.notes: dict = {}
        self.inline: dict = {}         # adjoint symbol name -> expression written in its place
        self.conditions: list = []
        self.adjoints: set = set()
        self.aux_names: set = set()
        self.aux_steps: dict = {}
        L = g.nodes[g.loss]
        self.L, self.Ltex = L.name, L.symbol.tex

    def run(self) -> Derivation:
        g = self.g
        steps = self.steps = []
        for node in reversed(g.computed()):
            if node.name not in self.live:
                continue
            if node.name == self.L:
                G = sympy.Integer(1)
            else:
                step = self._step(node)
                if step is None:
                    continue
                steps.append(step)
                G = self.inline.get(step.symbol.name, step.symbol)
            self._back(node.expr, G, node.symbol, node)
        leaves = [n for n in g.nodes.values() if n.expr is None and n.name in self.live]
        for node in leaves:
            step = self._step(node)
            if step is not None:
                steps.append(step)
        return Derivation(steps, self.env, self.conditions, self.aux_steps)

    def _step(self, node) -> MatrixStep | None:
        parts = sorted(self.parts.get(node.name, []), key=lambda p: p[0])
        if not parts:
            return None
        expr = _factor_common([_fit(e, node.shape) for _, _, e in parts])
        expr = _fit(expr, node.shape)
        return self._record(node.name, node.shape, node.symbol.tex, expr,
                            self.notes.get(node.name, ""), tuple((c, e) for _, c, e in parts))

    def _record(self, target, shape, tex, expr, note="", parts=()) -> MatrixStep:
        sym = X.TensorSymbol(adjoint_name(self.L, target), shape, adjoint_tex(self.Ltex, tex))
        value = np.asarray(X.evaluate(expr, self.env), dtype=float) + 0.0    # -0 (of -Y / 3 where Y is 0) is 0
        if value.shape != tuple(shape):
            value = np.broadcast_to(value, shape).copy()
        self.env[sym.name] = value
        self.adjoints.add(sym.name)
        if _closed(expr, self.adjoints):
            self.inline[sym.name] = expr
        return MatrixStep(f"d{self.L}/d{target}", target, sym, expr, tuple(shape), value, note, parts)

    def _back(self, e, G, out_sym, node):
        if isinstance(e, Ref):
            if e.name in self.live:
                self.parts.setdefault(e.name, []).append((node.order, node.name, G))
            return
        if isinstance(e, Const) or not (refs(e) & self.live):
            return
        if self._softmax_ce(e, G, node):
            return
        op = tensor_op(e.op)
        syms = tuple(self.g.symbolic(a) for a in e.args)
        for i, a in enumerate(e.args):
            if isinstance(a, Const) or not (refs(a) & self.live):
                continue
            r = _fit(op.adjoint(i, G, syms, out_sym, e.pdict), a.shape)
            if isinstance(a, Apply) and self._fanout(a) >= 2 and not isinstance(r, X.TensorSymbol) \
                    and not _closed(r, self.adjoints):
                r = self._aux(a, r, node, root=e is node.expr and op.inputs == 1 and op.extra.get("elementwise"))
            self._back(a, r, syms[i], node)

    def _fanout(self, e: Apply) -> int:
        return sum(1 for a in e.args if not isinstance(a, Const) and refs(a) & self.live)

    def _aux(self, e: Apply, expr, node, root: bool):
        """An adjoint used more than once below gets a name and a step of its
        own: a_h for the input of h's activation, u_h for other parts of h."""
        kind = 'a' if root else 'u'
        base = f"{kind}_{node.step[0]}_{node.step[1]}" if node.step else f"{kind}_{node.name}"
        name, k = base, 1
        while name in self.g.nodes or name in self.aux_names:
            k += 1
            name = f"{base}{k}"
        self.aux_names.add(name)
        if node.step and name == base:
            self.aux_steps[name] = (f"{kind}_{node.step[0]}", node.step[1])
        step = self._record(name, e.shape, X._default_tex(name), expr,
                            f"{name} = {X.spec(self.g.symbolic(e))}")
        step.note_tex = f"{X._default_tex(name)} = {X.latex(self.g.symbolic(e))}"
        self.steps.append(step)
        return step.symbol

    # -- softmax with cross-entropy ---------------------------------------------
    def _softmax_ce(self, e: Apply, G, node) -> bool:
        """-sum(y * log(p)) with p = softmax(z), or -sum(y * log_softmax(z)):
        dL/dz = p - y where sum(y) = 1 (checked on the values)."""
        if e.op != "neg" or not isinstance(e.args[0], Apply) or e.args[0].op != "sum":
            return False
        s = e.args[0]
        if s.pdict.get("axis") is not None or not isinstance(s.args[0], Apply) or s.args[0].op != "mul":
            return False
        a, b = s.args[0].args
        for y, lg in ((a, b), (b, a)):
            if not isinstance(lg, Apply) or refs(y) & self.live:
                continue
            if lg.op == "log_softmax" and lg.pdict.get("axis") in (None, 0):
                z, p_sym = lg.args[0], X.call("softmax", self.g.symbolic(lg.args[0]))
            elif lg.op == "log" and isinstance(lg.args[0], (Ref, Apply)):
                p = lg.args[0]
                pe = self.g.nodes[p.name].expr if isinstance(p, Ref) else p
                if not (isinstance(pe, Apply) and pe.op == "softmax" and pe.pdict.get("axis") in (None, 0)):
                    continue
                z, p_sym = pe.args[0], self.g.symbolic(p)
            else:
                continue
            if len(z.shape) != 1 or y.shape != z.shape:
                continue
            total = float(np.sum(self.g.evaluate(y, self.env)))
            if abs(total - 1.0) > 1e-12:
                continue
            self.conditions.append({"method": "softmax-cross-entropy", "max_abs_err": abs(total - 1.0),
                                    "passed": True,
                                    "note": f"dL/d(logits) = p - y uses sum(y) = 1 ({self.g.symbolic(y)})"})
            if isinstance(z, Ref):
                self.notes[z.name] = "softmax with cross-entropy, as sum(y) = 1"
            self._back(z, X.had(G, X.sub(p_sym, self.g.symbolic(y))), self.g.symbolic(z), node)
            return True
        return False


def _factors(e):
    sign = 1
    while isinstance(e, X.Neg):
        sign, e = -sign, e.args[0]
    return sign, (list(e.args) if isinstance(e, X.Had) else [e])


def _factor_common(terms: list):
    """A sum whose terms share a factor, written with it outside:
    G n' + G h_prev -> G (h_prev - n); positive terms first."""
    if len(terms) < 2:
        return X.add(*terms)
    terms = _like_terms(terms)
    if len(terms) < 2:
        return X.add(*terms)
    blocks = _blocks(terms)
    if blocks is not None:
        return blocks
    if all(isinstance(t, X.Slice) for t in terms) and len({t.args[1:] for t in terms}) == 1:
        return X.Slice(X.add(*[t.args[0] for t in terms]), *terms[0].args[1:])   # [a]_k + [b]_k = [a + b]_k
    split = [_factors(t) for t in terms]
    common = [f for f in split[0][1] if not (isinstance(f, sympy.Basic) and f.is_Number)
              and all(f in fs for _, fs in split[1:])]
    if not common:
        return X.add(*terms)
    rests = []
    for sign, fs in split:
        fs = list(fs)
        for f in common:
            fs.remove(f)
        if not fs:
            return X.add(*terms)
        r = X.had(*fs)
        rests.append(r if sign > 0 else X.neg(r))
    rests.sort(key=lambda r: isinstance(r, X.Neg) or (isinstance(r, sympy.Basic) and r.is_Number and r < 0))
    return X.had(*common, X.add(*rests))


def _like_terms(terms: list) -> list:
    """Equal terms counted once with their coefficients added:
    y/2 + y/2 -> y, y + y -> 2 * y (the contributions of y * y)."""
    order, coeff = [], {}
    for t in terms:
        sign, fs = _factors(t)
        c = sympy.Integer(sign)
        if fs and isinstance(fs[0], sympy.Basic) and fs[0].is_Number:
            c, fs = c * fs[0], fs[1:]
        body = X.had(*fs) if fs else sympy.Integer(1)
        if body not in coeff:
            order.append(body)
            coeff[body] = sympy.Integer(0)
        coeff[body] += c
    kept = [X.had(coeff[b], b) for b in order if coeff[b] != 0]
    # nothing merged, or everything cancelled (a - a: left as written, the rules below need a shape)
    return terms if len(order) == len(terms) or not kept else kept


def _blocks(terms: list):
    """Blocks padded along one axis that tile the whole (the adjoints of
    a[0:4] and a[4:8], of G[:, 0:1] and G[:, 1:2], of the rows h[0], h[1],
    h[2]) are the blocks side by side: stack(g, h) for a vector,
    concat(g, h, 1) for columns; other terms are added after them."""
    pads = [t for t in terms if isinstance(t, X.Pad)]
    rest = [t for t in terms if not isinstance(t, X.Pad)]
    if len(pads) < 2 or len({t.np_shape for t in pads}) != 1:
        return None
    axes = {k for t in pads for k, w in enumerate(t.widths) if w != (0, 0)}
    if len(axes) != 1:
        return None
    (ax,) = axes
    spans = sorted(((t.widths[ax][0], t.np_shape[ax] - t.widths[ax][1], t) for t in pads), key=lambda s: s[0])
    at = 0
    for start, stop, _ in spans:
        if start != at:
            return None
        at = stop
    if at != pads[0].np_shape[ax]:
        return None
    parts = [t.args[0] if not t.inserted else NNExpr("reshape", (t.args[0],), t.inner_shape, ())
             for _, _, t in spans]
    joined = X.stack_(*parts) if len(pads[0].np_shape) == 1 else X.concat(parts, ax)
    return X.add(joined, *rest)


def _fit(r, shape: tuple):
    """An adjoint in its input's shape: summed over broadcast axes, or a
    scalar spread over every entry."""
    s = X._np_shape_of(r)
    if s is None or tuple(s) == tuple(shape):
        return r
    if s == () and shape:
        return X.had(r, X.ones(shape))
    return X.sum_to(r, shape)


def _closed(expr, adjoints: set) -> bool:
    """A difference or a copy of forward quantities (``p - y``, ``O_3 - Y_3``,
    ``1``), with no adjoint inside and short: written in place."""
    def ok(a):
        if isinstance(a, X.TensorSymbol):
            return a.name not in adjoints
        if isinstance(a, X.Row):
            return ok(a.args[0])
        if isinstance(a, (sympy.Number, X.Ones)):
            return True
        if isinstance(a, X.Had) and X._ones_coeff(a) is not None:     # a constant: (1/2) ones
            return True
        return isinstance(a, (X.Add_, X.Neg)) and all(ok(b) for b in a.args)

    return ok(expr) and len(X.spec(expr)) <= INLINE_CHARS
