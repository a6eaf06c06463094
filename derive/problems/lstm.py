r"""``lstm-cell`` (seed 003, 1.b): the LSTM cell, its parameters and its gradients.

With v = [h_prev; x] (n + d entries):

    i = sigmoid(W_i v + b_i)   f = sigmoid(W_f v + b_f)   o = sigmoid(W_o v + b_o)
    g = tanh(W_c v + b_c)      c = f * c_prev + i * g     h = o * tanh(c)
    L = 1/2 ||h - y||^2

Default values follow one documented rule for every size n, d (1-based r, s):
(W_q)_rs = ((r + 2s + q) mod 5 - 2) / 10 with q = 0, 1, 2, 3 for i, f, o, c;
(b_q)_r = 0 except b_f = 0.5 (a forget gate that starts open);
x_s = ((s mod 3) + 1) / 4; h_prev_r = ((r mod 2) - 0.5) / 2; c_prev_r = r / 4;
y_r = ((r mod 3) - 1) / 4.

>>> from derive.problems import load
>>> sol = load("lstm-cell").solve()
>>> all(c["passed"] for c in sol.checks)
True
"""
from __future__ import annotations

import re

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.grading.judges import TensorFormula
from derive.engine.tensor import TensorGraph, apply, stack, total
from derive.problems.tensor_problem import Dim, TensorModel, TensorProblem, matrix_math, shape_math

R = sympy.Rational
TOL = 1e-9
GATES = (("i", "W_i", "b_i", "sigmoid", "input gate: how much of the candidate $g$ is written into the cell"),
         ("f", "W_f", "b_f", "sigmoid", "forget gate: how much of the old cell state $c_{\\text{prev}}$ is kept"),
         ("o", "W_o", "b_o", "sigmoid", "output gate: how much of $\\tanh(c)$ is exposed as $h$"),
         ("g", "W_c", "b_c", "tanh", "candidate: the new content proposed for the cell"))
#: what the names z_i, z_f, z_o, z_c stand for, as the key and the appendix write it
ARGS_TEX = ("$z_{i} = W_{i} [h_{\\text{prev}}; x] + b_{i}$ is the input gate's argument, $z_{f}$ and $z_{o}$ "
            "likewise, and $z_{c} = W_{c} [h_{\\text{prev}}; x] + b_{c}$ that of the candidate $g = \\tanh(z_{c})$")
#: the activations as the key writes them
ACT_TEX = {"sigmoid": (r"\sigma", "sigmoid"), "tanh": (r"\tanh", "tanh")}


def arg_name(W: str) -> str:
    """The name of an activation's argument, after its weight: ``W_c`` -> ``z_c``.
    The candidate ``g`` is written with ``W_c, b_c`` (the contract's names), so its
    argument is ``z_c = W_c [h_prev; x] + b_c``: an argument carries its weight's subscript.

    >>> [arg_name(W) for _, W, _, _, _ in GATES]
    ['z_i', 'z_f', 'z_o', 'z_c']
    """
    return "z_" + W.split("_", 1)[1]


def default_values(n: int, d: int) -> dict:
    """The documented rule (see the module docstring)."""
    out = {}
    for q, (_, W, b, _, _) in enumerate(GATES):
        out[W] = [[R((r + 2 * s + q) % 5 - 2, 10) for s in range(1, n + d + 1)] for r in range(1, n + 1)]
        out[b] = [R(1, 2) if b == "b_f" else 0 for _ in range(n)]
    out["x"] = [R(s % 3 + 1, 4) for s in range(1, d + 1)]
    out["h_prev"] = [R(2 * (r % 2) - 1, 4) for r in range(1, n + 1)]
    out["c_prev"] = [R(r, 4) for r in range(1, n + 1)]
    out["y"] = [R(r % 3 - 1, 4) for r in range(1, n + 1)]
    return out


def lstm_spec(n: int, d: int) -> dict:
    """The cell as vector-spec data for the matrix engine (values from the solution)."""
    params = {}
    for _, W, b, _, _ in GATES:
        params[W] = {"shape": [n, n + d], "value": 0}
        params[b] = {"shape": [n], "value": 0}
    forward = {}
    for gate, W, b, act, _ in GATES:
        forward[arg_name(W)] = f"{W} @ stack(h_prev, x) + {b}"
        forward[gate] = f"{act}({arg_name(W)})"
    forward.update({"c": "f * c_prev + i * g", "h": "o * tanh(c)"})
    return {"parameters": params,
            "inputs": {"x": {"shape": [d], "value": 0}, "h_prev": {"shape": [n], "value": 0},
                       "c_prev": {"shape": [n], "value": 0}},
            "targets": {"y": {"shape": [n], "value": 0}},
            "forward": forward, "loss": "sum((h - y)**2) / 2", "input_gradients": ["h_prev", "c_prev"]}


class LSTMModel(TensorModel):
    def matrix_data(self) -> dict:
        return lstm_spec(**self.dims)

    def __init__(self, n: int, d: int):
        tg = TensorGraph("LSTM cell")
        Ws, bs = {}, {}
        for gate, W, b, _, _ in GATES:
            Ws[gate] = tg.parameter(W, (n, n + d))
            bs[gate] = tg.parameter(b, (n,))
        x = tg.input("x", (d,))
        h_prev = tg.input("h_prev", (n,))
        c_prev = tg.input("c_prev", (n,))
        y = tg.target("y", (n,))
        v = stack(h_prev, x)
        acts = {}
        for gate, W, _, act, _ in GATES:
            z = tg.define(arg_name(W), Ws[gate] @ v + bs[gate])
            acts[gate] = tg.define(gate, apply(act, z))
        c = tg.define("c", acts["f"] * c_prev + acts["i"] * acts["g"])
        h = tg.define("h", acts["o"] * apply("tanh", c))
        tg.loss("L", total((h - y) * (h - y)) / 2)
        tg.want_adjoint(c_prev)
        tg.want_adjoint(h_prev)
        super().__init__(tg, {"n": n, "d": d})

    def equations(self):
        rows = []
        for gate, W, b, act, _ in GATES:
            Wt = W.replace("_", "_{") + "}"
            bt = b.replace("_", "_{") + "}"
            fn = r"\sigma" if act == "sigmoid" else r"\tanh"
            rows.append(B.EqRow(B.Math(gate, gate),
                                (B.Math(rf"{fn}\left({Wt} [h_{{\text{{prev}}}}; x] + {bt}\right)",
                                        f"{act}({W} [h_prev; x] + {b})"),)))
        rows.append(B.EqRow(B.Math("c", "c"), (B.Math(r"f \odot c_{\text{prev}} + i \odot g", "f * c_prev + i * g"),)))
        rows.append(B.EqRow(B.Math("h", "h"), (B.Math(r"o \odot \tanh(c)", "o * tanh(c)"),)))
        rows.append(B.EqRow(B.Math("L", "L"), (B.Math(r"\tfrac{1}{2} \lVert h - y \rVert^{2}", "1/2 ||h - y||^2"),)))
        return rows

    def notation(self):
        n, d = self.dims["n"], self.dims["d"]
        hx = r"[h_{\text{prev}}; x]"
        return [B.prose(
            "Here ", B.Math(hx, "[h_prev; x]"), " stacks the previous hidden state on top of the input: a "
            "vector of ", B.Math(f"n + d = {n + d}", f"n + d = {n + d}"), " entries, ",
            B.Math(r"h_{\text{prev}}", "h_prev"), " first (", B.Math(f"n = {n}", f"n = {n}"),
            ", the hidden size) and ", B.Math("x", "x"), " after it (", B.Math(f"d = {d}", f"d = {d}"),
            ", the input size); so the first ", B.Math("n", "n"), " columns of each ",
            B.Math(r"W_{i}, W_{f}, W_{o}, W_{c}", "W_i, W_f, W_o, W_c"), " multiply ",
            B.Math(r"h_{\text{prev}}", "h_prev"), " and the last ", B.Math("d", "d"), " multiply ",
            B.Math("x", "x"), ". ", B.Math(r"\sigma(z) = 1 / (1 + e^{-z})", "sigma(z) = 1/(1 + exp(-z))"),
            " and ", B.Math(r"\tanh", "tanh"), " act on each entry, ", B.Math(r"\odot", "*"),
            " is the entrywise product, and ", B.Math("g", "g"), " is the candidate cell state. ",
            B.Math(r"z_{i}, z_{f}, z_{o}, z_{c}", "z_i, z_f, z_o, z_c"), " are the activations' arguments: ",
            B.Math(r"z_{i} = W_{i} [h_{\text{prev}}; x] + b_{i}", "z_i = W_i [h_prev; x] + b_i"),
            " and so on, with ", B.Math(r"g = \tanh(z_{c})", "g = tanh(z_c)"), " and ",
            B.Math(r"z_{c} = W_{c} [h_{\text{prev}}; x] + b_{c}", "z_c = W_c [h_prev; x] + b_c"),
            " (subscript ", B.Math("c", "c"), ": the candidate cell content).")]

    def intro_blocks(self, sol):
        n, d = self.dims["n"], self.dims["d"]
        rows = []
        for gate, W, b, act, role in GATES:
            rows.append((B.Math(gate, gate), B.Math(*ACT_TEX[act]), B.Tex(role)))
        rows.append((B.Math("c", "c"), "(none: a weighted sum)",
                     B.Tex("cell state: $c = f \\odot c_{\\text{prev}} + i \\odot g$, the additive memory path")))
        rows.append((B.Math("h", "h"), B.Tex("$\\tanh$ on $c$"),
                     B.Tex("hidden state / output: $h = o \\odot \\tanh(c)$")))
        prow = []
        total_count = 0
        for t in (self.tg.tensors[name] for _, W, b, _, _ in GATES for name in (W, b)):
            count = t.size
            total_count += count
            prow.append((B.Math(t.latex, t.name), shape_math(t.shape), str(count)))
        prow.append(("total", "", str(total_count)))
        return [
            B.Heading("Components of the cell"),
            B.tex_prose("Besides the RNN's hidden state $h$, the LSTM keeps a cell state $c$ and three gates "
                        "($\\sigma$, values in $(0, 1)$, applied elementwise); the candidate $g$ uses $\\tanh$. "
                        "Every gate reads the stacked vector $[h_{\\text{prev}}; x]$ of " + str(n + d) + " entries: "
                        + ARGS_TEX + "."),
            B.Table(("component", "activation", "function"), tuple(rows), align="lll"),
            B.Table(("learnable parameter", "shape", "count"), tuple(prow), align="llr",
                    caption=B.Tex(f"$4 n (n + d) + 4 n = {4 * n * (n + d) + 4 * n}$ with $n = {n}$ (hidden), "
                                  f"$d = {d}$ (input)")),
        ]

    # the backward pass in matrix form comes from the matrix engine (matrix_data above)


def _resolve(tensors: dict):
    """Spellings of the seeds for lstm-cell's names: h_{t-1} -> h_prev,
    x_t / i_t -> x / i, \\tilde{c}_t (the candidate) -> g, z_g -> z_c, w_i -> W_i."""
    lower = {}
    for name in tensors:
        lower.setdefault(name.lower(), []).append(name)

    def resolve(written: str):
        w = written
        m = re.fullmatch(r"(.+)_t-1", w)
        if m:
            w = f"{m.group(1)}_prev"
        elif re.fullmatch(r"(.+)_t", w):
            w = w[:-2]
        if w.lower() in ("ctilde", "ctilde_t"):
            w = "g"
        if w.lower() == "z_g":          # the candidate's argument, named after g instead of W_c
            w = "z_c"
        if w in tensors:
            return w
        found = lower.get(w.lower(), [])
        return found[0] if len(found) == 1 else None
    return resolve


def lstm_judges(sol) -> dict:
    """derive check's judges for lstm-cell: every computed vector (z_i, i,
    ..., g, c, h) as a formula, against the equation derive's solution shows."""
    tg = sol.model.tg
    shown = {row.lhs.text: row.rhs[0].text for row in sol.model.equations()}
    resolve = _resolve(tg.tensors)
    return {name: TensorFormula(tg, name, shown[name], resolve) for name in shown
            if name in tg.tensors and tg.kinds[name] == "forward"}


class LSTMProblem(TensorProblem):
    """lstm-cell: a TensorProblem whose solutions carry ``judges``."""

    def solve(self, values=None, steps: int = 1):
        sol = super().solve(values, steps)
        if hasattr(sol, "model"):       # the component-wise solution (large sizes: the matrix engine alone)
            sol.judges = lstm_judges(sol)
        return sol


PROBLEMS = [
    LSTMProblem(
        id="lstm-cell", title="The LSTM cell: gates, parameters and gradients",
        source="seed 003, 1.b",
        question=lambda n, d: B.Tex(
            "List the components an LSTM block adds to a plain RNN and what each does, with its "
            "equation, its learnable parameters (shapes and counts) and its activation. Then, for one "
            f"cell with hidden size $n = {n}$ and input size $d = {d}$ at the values below (small numbers "
            "chosen by a fixed rule) and the loss $L = \\tfrac12 \\lVert h - y \\rVert^2$, compute the "
            "gradient of $L$ with respect to every weight matrix and bias, through the cell state."),
        order=(3, 1, 2),
        dims=(Dim("n", 2, 1, 6, "hidden size"), Dim("d", 2, 1, 6, "input size")),
        build=lambda n, d: LSTMModel(n, d),
        values=default_values,
        leaf_dims={"x": ("d",), "h_prev": ("n",), "c_prev": ("n",), "y": ("n",),
                   **{b: ("n",) for _, _, b, _, _ in GATES}, **{W: ("n", None) for _, W, _, _, _ in GATES}},
        matrix_spec=lstm_spec,
        optimizer={"rule": "sgd", "lr": 0.1},
    ),
]
