r"""The backward pass in matrix form, as a problem's worked solution shows it.

:class:`MatrixForm` reads a vector problem's spec data into the matrix
engine (:mod:`derive.engine.matspec`), runs the matrix reverse mode and its checks,
and gives the one step list to everyone: :func:`matrix_blocks` (the worked
solution: formulas, then values), :meth:`MatrixForm.steps_json` (the JSON
``matrix_steps``), codegen.  A sum over time steps is shown as the step
contributions plus one line with the sum over t.

>>> mf = MatrixForm.from_data({"parameters": {"W": {"shape": [2, 2], "value": [[1, 2], [3, 4]]}},
...     "inputs": {"x": {"shape": [2], "value": [0.5, -0.5]}}, "targets": {"y": {"shape": [2], "value": 0}},
...     "forward": {"z": "W @ x", "h": "tanh(z)"}, "loss": "sum((h - y)**2) / 2"})
>>> [(s["name"], s["expr"]) for s in mf.steps_json()]
[('dL/dh', 'h - y'), ('dL/dz', '(h - y) * (1 - h * h)'), ('dL/dW', 'outer(dL_dz, x)')]
>>> all(c["passed"] for c in mf.checks)
True
"""
from __future__ import annotations

import re

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.engine import exprs as X
from derive.engine.reverse import Derivation, reverse
from derive.engine.matspec import DEFAULT_MAX_MEMORY, MatrixSpec, build_matrix_spec

#: a step's value is printed as a matrix up to this many entries
SHOW_ENTRIES = 16
#: JSON carries a step's value up to this many entries (CONTRACT.md)
JSON_ENTRIES = 10_000
#: an unrolled problem shows every time step up to this T, else the last two and the sums
SHOW_STEPS_T = 8
#: the matrix form and the component-wise derivation agree to this
COMPONENT_TOL = 1e-9


class MatrixForm:
    """The matrix-form derivation of one problem at one point."""

    def __init__(self, spec: MatrixSpec, leaves: dict | None = None):
        self.spec = spec
        self.graph = spec.graph
        self.leaves = dict(spec.leaves if leaves is None else leaves)
        self.values = self.graph.forward(self.leaves)
        self.derivation: Derivation = reverse(self.graph, self.values)
        self.checks = spec.checks(self.derivation, self.leaves)

    @classmethod
    def from_data(cls, data: dict, given: dict | None = None, max_memory: int = DEFAULT_MAX_MEMORY):
        return cls(build_matrix_spec(data, given, max_memory))

    @property
    def steps(self) -> list:
        return self.derivation.steps

    @property
    def loss(self) -> str:
        return self.graph.loss

    def gradient(self, name: str) -> np.ndarray:
        g = self.derivation.gradient(name)
        return np.zeros(self.graph.nodes[name].shape) if g is None else g

    def steps_json(self) -> list:
        return [s.to_json(JSON_ENTRIES) for s in self.steps]

    def compare(self, adjoint_of) -> dict:
        """The ``checks`` record: every step against the component-wise
        derivation (``adjoint_of(name)`` gives its row-major values, or None)."""
        worst, rel, n = 0.0, 0.0, 0
        for s in self.steps:
            other = adjoint_of(s.target)
            if other is None:
                continue
            b = np.asarray([float(v) for v in other], dtype=float).reshape(s.shape)
            if b.size:
                err = np.abs(s.value - b)
                worst = max(worst, float(np.max(err)))
                # relative to max(1, |g|), as the other checks: float64 keeps
                # about 16 digits of a large adjoint, not an absolute 1e-9
                rel = max(rel, float(np.max(err / np.maximum(1.0, np.abs(b)))))
            n += 1
        return {"method": "matrix-form", "max_abs_err": worst, "passed": bool(rel <= COMPONENT_TOL),
                "note": f"{n} matrix-form adjoints against the component-wise derivation"}


# ---------------------------------------------------------------------------
# Blocks


def _num(v: float) -> str:
    from derive.typeset.fmt import num_text
    return num_text(sympy.Float(float(v), 6)) if v != int(v) else str(int(v))


def value_math(a: np.ndarray) -> B.Math:
    """A value as a bmatrix / nested list, 6 significant digits."""
    a = np.asarray(a, dtype=float)
    fmt = lambda v: f"{v:.6g}".replace("e-0", "e-").replace("e+0", "e")   # noqa: E731
    tex = lambda v: (lambda s: re.sub(r"e(-?)(\d+)", r" \\times 10^{\1\2}", s))(fmt(v))  # noqa: E731
    if a.ndim == 0:
        return B.Math(tex(float(a)), fmt(float(a)))
    text = str(np.vectorize(fmt, otypes=[object])(a).tolist()).replace("'", "")
    if a.ndim > 2:      # C x H x W (or more): a list of its matrices, as numpy prints it, not one flat row
        return B.Math(r"\left[" + r",\; ".join(value_math(part).tex for part in a) + r"\right]", text)
    if a.ndim == 1:
        body = r" \\ ".join(tex(v) for v in a)
    else:
        body = r" \\ ".join(" & ".join(tex(v) for v in row) for row in a)
    return B.Math(rf"\begin{{bmatrix}} {body} \end{{bmatrix}}", text)


def index_letter(spec) -> str:
    """The letter of the unrolled index as the problem writes it (``unroll.index``,
    one lower-case letter; attention's annotations use j), else t."""
    idx = ((spec.data or {}).get("unroll") or {}).get("index", "t") if isinstance(spec.data, dict) else "t"
    return idx if isinstance(idx, str) and re.fullmatch(r"[a-z]", idx) else "t"


def _at(k: int, t0: int, tex: bool, idx: str = "t") -> str:
    d = k - t0
    if d == 0:
        return idx
    return f"{idx}{d:+d}" if tex else f"({idx}{d:+d})"


def _indexed(tex: str, idx: str) -> str:
    from derive.engine.tensor import _trailing_subscript
    if _trailing_subscript(tex) is not None:
        return f"{tex[:-1]},{idx}}}"
    return f"{tex}_{{{idx}}}"


def _step_of(g, aux: dict, name: str):
    node = g.nodes.get(name)
    if node is not None:
        return node.step
    return aux.get(name)


def _relabel(g, expr, t0: int, aux: dict | None = None, idx: str = "t"):
    """``expr`` from time step t0 written with a symbolic t (Z_3 -> Z_t,
    H_2 -> H_{t-1}, row 3 of I -> I_t), for the recursion and the sums over t."""
    L = g.nodes[g.loss]
    aux = aux or {}
    mapping = {}
    prefix = f"d{L.name}_d"
    for a in sympy.preorder_traversal(expr):
        if isinstance(a, X.TensorSymbol):
            adj = a.name.startswith(prefix)
            step = _step_of(g, aux, a.name[len(prefix):] if adj else a.name)
            if step is None:
                continue
            seq, k = step
            name, tex = f"{seq}_{_at(k, t0, False, idx)}", _indexed(X._default_tex(seq), _at(k, t0, True, idx))
            if adj:
                name, tex = f"d{L.name}_d{name}", rf"\frac{{\partial {L.symbol.tex}}}{{\partial {tex}}}"
            mapping[a] = X.TensorSymbol(name, a.np_shape, tex)
        elif isinstance(a, (X.Row, X.Col)) and isinstance(a.args[0], X.TensorSymbol):
            k, base = int(a.args[1]) + 1, a.args[0]
            mapping[a] = X.TensorSymbol(f"{base.name}_{_at(k, t0, False, idx)}", a.np_shape,
                                        _indexed(base.tex, _at(k, t0, True, idx)))
        elif isinstance(a, X.Slice) and int(a.args[3]) and isinstance(a.args[0], X.TensorSymbol):
            k, base = int(a.args[1]) + 1, a.args[0]
            mapping[a] = X.TensorSymbol(f"{base.name}[{_at(k, t0, False, idx)}]", a.np_shape,
                                        rf"\left[{base.tex}\right]_{{{_at(k, t0, True, idx)}}}")
    return expr.xreplace(mapping)


def _time_sum(g, step, aux=None, idx: str = "t"):
    """(LaTeX, text) of sum_t of a step whose parts come from every time step
    of one sequence, or None."""
    steps = [g.nodes[c].step for c, _ in step.parts]
    if len(step.parts) < 2 or any(s is None for s in steps) or len({s[0] for s in steps}) != 1:
        return None
    ts = sorted(s[1] for s in steps)
    if ts != list(range(1, len(ts) + 1)):
        return None
    t0 = 2
    part = dict(zip([s[1] for s in steps], [e for _, e in step.parts]))[t0]
    term = _relabel(g, part, t0, aux, idx)
    return (rf"\sum_{{{idx}=1}}^{{{ts[-1]}}} {X._paren(X.TexPrinter(), term, X.P_ADD + 1)}",
            f"sum_({idx}=1..{ts[-1]}) {X._paren(X.SpecPrinter(), term, X.P_ADD + 1)}")


def _recursion_rows(mf) -> list:
    """The backward pass of one time step with a symbolic t (from step T - 1,
    which has every kind of contribution), e.g. dE/dH_t = V^T (O_t - Y_t) +
    W^T dE/dZ_(t+1)."""
    g, T = mf.graph, mf.spec.T
    idx = index_letter(mf.spec)
    t0 = T - 1 if T >= 2 else T
    rows = []
    aux = mf.derivation.aux_steps
    for s in mf.steps:
        step = _step_of(g, aux, s.target)
        if step is None or step[1] != t0:
            continue
        seq = step[0]
        L = g.nodes[g.loss]
        lhs = X.TensorSymbol(f"d{L.name}_d{seq}_t", s.shape,
                             rf"\frac{{\partial {L.symbol.tex}}}{{\partial {_indexed(X._default_tex(seq), idx)}}}")
        rhs = _relabel(g, s.expr, t0, aux, idx)
        # no note: a step's note names its own time step, not the symbolic one
        rows.append(B.EqRow(B.Math(lhs.tex, f"d{L.name}/d{seq}_{idx}"), (B.Math(X.latex(rhs), X.spec(rhs)),)))
    return rows


def _note(step):
    """A step's note: typeset in documents when it is a formula, as written otherwise."""
    if step.note_tex:
        return B.Tex(f"${step.note_tex}$", plain=step.note)
    return step.note


def matrix_blocks(mf: MatrixForm, heading: str = "Backward pass in matrix form") -> list:
    """The worked solution's part: every adjoint as a matrix formula, then
    its value."""
    g = mf.graph
    out = [B.Heading(heading),
           B.prose("Reverse mode over the named quantities: each adjoint from the matrix rule of the "
                   "operations that read it (matrix products give ", B.Math(r"G B^{\top}", "G B^T"),
                   " and ", B.Math(r"A^{\top} G", "A^T G"), ", elementwise functions ",
                   B.Math(r"G \odot f'", "G * f'"), "), summed over consumers; ",
                   B.Math(r"\odot", "*"), " is the elementwise product.")]
    T = mf.spec.T
    idx = index_letter(mf.spec)
    if T:
        rows = _recursion_rows(mf)
        if rows:
            out.append(B.prose(B.Tex(f"One step of the backward pass, for ${idx} = {T}$ down to 1 (a term "
                                     f"with step ${T + 1}$ is absent at ${idx} = {T}$):")))
            out.append(B.Equations(tuple(rows)))
            out.append(B.prose("Every step, and the gradients:"))
    shown = []
    for s in mf.steps:
        node = g.nodes.get(s.target)
        if T and T > SHOW_STEPS_T and node is not None and node.step is not None and node.step[1] < T - 1:
            continue
        shown.append(s)
    rows = []
    for s in shown:
        note = _note(s)
        summed = _time_sum(g, s, mf.derivation.aux_steps, idx)
        rhs = [B.Math(s.latex, s.spec)]
        if summed is not None and len(s.parts) > 3:
            rhs = [B.Math(summed[0], summed[1])]
        elif summed is not None:
            rhs.insert(0, B.Math(summed[0], summed[1]))
        rows.append(B.EqRow(B.Math(s.lhs_latex, s.name), tuple(rhs), note))
    if T and T > SHOW_STEPS_T:
        out.append(B.prose(B.Tex(f"Steps ${idx} = {T - 1}$ and ${T}$ are shown; every earlier step has the same "
                                 f"form with ${idx}$ in place of the step number (the recursion runs back to "
                                 f"${idx} = 1$).")))
    out.append(B.Equations(tuple(rows)))
    out += _derivation_blocks(g)
    out.append(B.Heading("Values", 3))
    vals = []
    for s in shown:
        if s.value.size <= SHOW_ENTRIES:
            vals.append(B.EqRow(B.Math(s.lhs_latex, s.name), (value_math(s.value),)))
        else:
            vals.append(B.EqRow(B.Math(s.lhs_latex, s.name),
                                (B.Math(r" \times ".join(map(str, s.shape)) + r"\text{ matrix, norm } "
                                        + f"{np.linalg.norm(s.value):.4g}",
                                        f"{' x '.join(map(str, s.shape))}, norm {np.linalg.norm(s.value):.4g}"),)))
    out.append(B.Equations(tuple(vals)))
    return out


def _derivation_blocks(g) -> list:
    """Where the rules of the tensor operations used come from (softmax,
    convolution, pooling ...): their textbook lines, once per operation."""
    from derive.engine.nn_ops import textbook_derivations
    from derive.engine.tgraph import Apply
    from derive.typeset.plaintext import to_text
    used = []

    def walk(e):        # in the order a reader meets them: forward lines, inner calls first
        if isinstance(e, Apply):
            for a in e.args:
                walk(a)
            used.append(e.op)

    for n in g.computed():
        walk(n.expr)
    rows = []
    for name, lines in textbook_derivations(used):
        for k, line in enumerate(lines):
            lhs, _, rhs = line.partition(" = ")
            rows.append(B.EqRow(B.Math(lhs, to_text(lhs)), (B.Math(rhs, to_text(rhs)),), name if k == 0 else ""))
    if not rows:
        return []
    return [B.prose("Where these rules come from (the textbook derivation of each operation's rule):"),
            B.Equations(tuple(rows))]
