r"""``bahdanau-attention`` (seed 003, 1.c): additive attention and its gradients.

For source annotations h_1 .. h_Tx (the columns of ``h``, p x Tx) and the
previous decoder state s_prev (m):

    u_j = tanh(W s_prev + V h_j)   (a)       e_j = v^T u_j
    alpha = softmax(e)                       c = sum_j alpha_j h_j
    L = 1/2 ||c - y||^2

Gradients with respect to v, W, V and the inputs s_prev and h, with the
softmax Jacobian d alpha_j / d e_k = alpha_j (delta_jk - alpha_k) written out.

Default values follow one documented rule for every size (1-based r, s, j):
v_r = ((r mod 3) + 1) / 2;  W_rs = ((r + 2s) mod 5 - 2) / 5;
V_rs = ((2r + s) mod 5 - 2) / 5;  s_prev_s = ((s mod 2) - 0.5);
h_rj = ((r + 3j) mod 5 - 2) / 2;  y_r = ((r mod 3) - 1) / 2.

>>> from derive.problems import load
>>> sol = load("bahdanau-attention").solve()
>>> all(c["passed"] for c in sol.checks)
True
"""
from __future__ import annotations

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.typeset.diagrams import attention_figure
from derive.engine.tensor import Tensor, TensorGraph, apply, dot, jacobian, total
from derive.problems.tensor_problem import Dim, TensorModel, TensorProblem, matrix_math

R = sympy.Rational
TOL = 1e-9


def default_values(a: int, m: int, p: int, Tx: int) -> dict:
    """The documented rule (see the module docstring)."""
    return {
        "v": [R(r % 3 + 1, 2) for r in range(1, a + 1)],
        "W": [[R((r + 2 * s) % 5 - 2, 5) for s in range(1, m + 1)] for r in range(1, a + 1)],
        "V": [[R((2 * r + s) % 5 - 2, 5) for s in range(1, p + 1)] for r in range(1, a + 1)],
        "s_prev": [R(2 * (s % 2) - 1, 2) for s in range(1, m + 1)],
        "h": [[R((r + 3 * j) % 5 - 2, 2) for j in range(1, Tx + 1)] for r in range(1, p + 1)],
        "y": [R(r % 3 - 1, 2) for r in range(1, p + 1)],
    }


def attention_spec(a: int, m: int, p: int, Tx: int) -> dict:
    """The problem as vector-spec data for the matrix engine (values from the solution)."""
    return {
        "parameters": {"v": {"shape": [a], "value": 0}, "W": {"shape": [a, m], "value": 0},
                       "V": {"shape": [a, p], "value": 0}},
        "inputs": {"s_prev": {"shape": [m], "value": 0}, "h": {"shape": [p, Tx], "value": 0}},
        "targets": {"y": {"shape": [p], "value": 0}},
        "unroll": {"T": Tx, "index": "j", "equations": {"u": "tanh(W @ s_prev + V @ col(h, t-1))", "e": "v @ u"}},
        "forward": {"alpha": "softmax(e)", "c": "h @ alpha"},
        "loss": "sum((c - y)**2) / 2",
        "input_gradients": ["s_prev", "h"],
    }


class AttentionModel(TensorModel):
    def matrix_data(self) -> dict:
        return attention_spec(**self.dims)

    def __init__(self, a: int, m: int, p: int, Tx: int):
        tg = TensorGraph("Bahdanau attention")
        v = tg.parameter("v", (a,))
        W = tg.parameter("W", (a, m))
        V = tg.parameter("V", (a, p))
        s_prev = tg.input("s_prev", (m,))
        h = tg.input("h", (p, Tx))
        y = tg.target("y", (p,))
        Ws = W @ s_prev
        es = []
        for j in range(Tx):
            u = tg.define(f"u_{j + 1}", apply("tanh", Ws + V @ h.col(j)))
            es.append(dot(v, u))
        e = tg.define("e", Tensor((Tx,), tuple(es)))
        alpha = tg.softmax("alpha", e, normaliser="S")
        ctx = sum((h.col(j) * alpha.exprs[j] for j in range(1, Tx)), h.col(0) * alpha.exprs[0])
        c = tg.define("c", ctx)
        tg.loss("L", total((c - y) * (c - y)) / 2)
        tg.want_adjoint(s_prev)
        tg.want_adjoint(h)
        super().__init__(tg, {"a": a, "m": m, "p": p, "Tx": Tx})

    def equations(self):
        Tx = self.dims["Tx"]
        return [
            B.EqRow(B.Math("u_{j}", "u_j"), (B.Math(r"\tanh\left(W s_{\text{prev}} + V h_{j}\right)",
                                                    "tanh(W s_prev + V h_j)"),),
                    B.Tex(f"$j = 1, \\ldots, {Tx}$", plain=f"j = 1 .. {Tx}")),
            B.EqRow(B.Math("e_{j}", "e_j"), (B.Math(r"v^{\top} u_{j}", "v^T u_j"),)),
            B.EqRow(B.Math(r"\alpha_{j}", "alpha_j"), (B.Math(r"\frac{\exp(e_{j})}{S}", "exp(e_j) / S"),
                                                       B.Math(rf"\frac{{\exp(e_{{j}})}}{{\sum_{{k=1}}^{{{Tx}}} \exp(e_{{k}})}}",
                                                              f"exp(e_j) / sum_{{k=1..{Tx}}} exp(e_k)")),
                    B.Tex("softmax, $S$ its normaliser", plain="softmax, S its normaliser")),
            B.EqRow(B.Math("c", "c"), (B.Math(rf"\sum_{{j=1}}^{{{Tx}}} \alpha_{{j}} h_{{j}}", f"sum_{{j=1..{Tx}}} alpha_j h_j"),)),
            B.EqRow(B.Math("L", "L"), (B.Math(r"\tfrac{1}{2} \lVert c - y \rVert^{2}", "1/2 ||c - y||^2"),)),
        ]

    def intro_blocks(self, sol):
        D = self.dims
        return [B.tex_prose(
            "In translation, the decoder producing word $i$ looks at every annotation $h_j$ of the source "
            "sentence (the encoder's states), scores it against its previous state $s_{\\text{prev}}$ with a "
            "small network ($e_j$), turns the scores into weights that sum to 1 "
            "($\\alpha = \\operatorname{softmax}(e)$), and reads the context $c = \\sum_j \\alpha_j h_j$, which "
            "feeds the next decoder state $s_i = f(s_{\\text{prev}}, y_{\\text{prev}}, c)$ "
            f"and the output. Learnable: $v$ ({D['a']}), $W$ (${D['a']} \\times {D['m']}$), "
            f"$V$ (${D['a']} \\times {D['p']}$), {D['a'] * (1 + D['m'] + D['p'])} numbers in all. "
            "Entry by entry below, $h$ is the matrix whose column $j$ is $h_j$, so $h_{k,j}$ is entry $k$ of "
            "$h_j$, while $u_{j,k}$ is entry $k$ of the vector $u_j$."),
            attention_figure(D["Tx"])]

    # -- the softmax Jacobian (the rest of the matrix form comes from the matrix engine) ----
    def softmax_jacobian(self, sol) -> np.ndarray:
        alpha = np.array([float(t) for t in sol.value_of("alpha")])
        return np.diag(alpha) - np.outer(alpha, alpha)

    def extra_checks(self, sol):
        graph_J = np.array(jacobian(self.tg, sol.forward, "alpha", "e", hidden=["S"]))
        jerr = float(np.max(np.abs(graph_J - self.softmax_jacobian(sol))))
        return [{"method": "softmax-jacobian", "max_abs_err": float(f"{jerr:.3g}"), "passed": bool(jerr <= TOL),
                 "note": "the softmax Jacobian against the graph's own local derivatives through the normaliser"}]

    def matrix_blocks(self, sol):
        J = self.softmax_jacobian(sol)
        Tx = self.dims["Tx"]
        rows = [
            B.EqRow(B.Math(r"\frac{\partial \alpha_{j}}{\partial e_{k}}", "dalpha_j/de_k"),
                    (B.Math(r"\alpha_{j} (\delta_{jk} - \alpha_{k})", "alpha_j (delta_jk - alpha_k)"),
                     B.Math(r"\left(\operatorname{diag}(\alpha) - \alpha \alpha^{\top}\right)_{jk}",
                            "(diag(alpha) - alpha alpha^T)_jk"),
                     matrix_math(J.ravel().tolist(), J.shape)), "the softmax Jacobian"),
            B.EqRow(B.Math(r"\frac{\partial L}{\partial e_{k}}", "dL/de_k"),
                    (B.Math(rf"\sum_{{j=1}}^{{{Tx}}} \frac{{\partial L}}{{\partial \alpha_{{j}}}} \alpha_{{j}} (\delta_{{jk}} - \alpha_{{k}})",
                            f"sum_{{j=1..{Tx}}} dL/dalpha_j alpha_j (delta_jk - alpha_k)"),
                     B.Math(r"\alpha_{k} \left(\frac{\partial L}{\partial \alpha_{k}} - \sum_{j} \alpha_{j} \frac{\partial L}{\partial \alpha_{j}}\right)",
                            "alpha_k (dL/dalpha_k - sum_j alpha_j dL/dalpha_j)"),
                     matrix_math(sol.adjoint_of("e"), (Tx,)))),
        ]
        return [B.Heading("The softmax Jacobian"),
                B.tex_prose("The rule the matrix form uses for $\\alpha = \\operatorname{softmax}(e)$, entry by "
                            "entry; it agrees with the Jacobian the graph's own local derivatives give through the "
                            "normaliser $S$."),
                B.Equations(tuple(rows))]


PROBLEMS = [
    TensorProblem(
        id="bahdanau-attention", title="Bahdanau (additive) attention and its gradients",
        source="seed 003, 1.c",
        question=lambda a, m, p, Tx: B.Tex(
            "Describe the attention used in neural machine translation (Bahdanau et al.) with its "
            "equations and learnable parameters: scores $e_j = v^\\top \\tanh(W s_{\\text{prev}} + V h_j)$, "
            "weights $\\alpha = \\operatorname{softmax}(e)$, context $c = \\sum_j \\alpha_j h_j$. With the loss "
            "$L = \\tfrac12 \\lVert c - y \\rVert^2$, "
            f"$T_x = {Tx}$ annotations $h_j$ of size $p = {p}$, a decoder state $s_{{\\text{{prev}}}}$ of size "
            f"$m = {m}$ and attention size $a = {a}$, at the values below (small numbers chosen by a fixed "
            "rule), compute the gradients of $L$ with respect to $v$, $W$, $V$, $s_{\\text{prev}}$ and $h$, "
            "writing out the softmax Jacobian step."),
        order=(3, 1, 3),
        dims=(Dim("a", 2, 1, 6, "attention size"), Dim("m", 2, 1, 6, "decoder state size"),
              Dim("p", 2, 1, 6, "annotation size"), Dim("Tx", 3, 1, 12, "source length")),
        build=lambda a, m, p, Tx: AttentionModel(a, m, p, Tx),
        values=default_values,
        leaf_dims={"v": ("a",), "W": ("a", "m"), "V": ("a", "p"), "s_prev": ("m",), "h": ("p", "Tx"),
                   "y": ("p",)},
        matrix_spec=attention_spec,
        optimizer={"rule": "sgd", "lr": 0.1},
    ),
]
