"""The output activation of a K-class classifier: softmax, and its value on a vector.

>>> softmax_exact([sympy.Rational(3, 10)] * 4)
[1/4, 1/4, 1/4, 1/4]
"""
from __future__ import annotations

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.typeset.fmt import exact_string
from derive.problems.base import BlocksSolution, Problem
from derive.problems._given import Given
from derive.problems._show import approx_math, num_math

K_SYMBOLIC = 4


def softmax_exact(a) -> list:
    """exp(a_i) / sum_j exp(a_j), exact where SymPy can cancel (equal entries
    give 1/K), else exact expressions. The largest entry is factored out first
    so that a later evalf never meets huge exponentials."""
    top = max(a)
    exps = [sympy.exp(v - top) for v in a]
    total = sum(exps)
    return [sympy.cancel(e / total) if len(a) <= 8 else e / total for e in exps]


def _settle(v):
    return v if v.is_Rational else v.evalf(30)


class Softmax(Problem):
    id = "softmax"
    title = "Softmax after the last layer of a classifier"
    source = "seed 004, Q7(b)"
    order = (4, 7, 2)
    question = (
        "A CNN classifies images into 4 classes. Which activation goes after its last fully connected "
        "layer? What does it give on a vector whose entries are all equal, such as a = (0.3, 0.3, 0.3, 0.3)?")

    DEFAULTS = {"a": ["0.3", "0.3", "0.3", "0.3"]}

    def solve(self, values=None, steps: int = 1) -> BlocksSolution:
        given = Given(values, self.DEFAULTS)
        a = given.numbers("a", min_length=2, max_length=100, lo=-10**4, hi=10**4)
        out = [_settle(v) for v in softmax_exact(a)]

        ref = np.exp(np.array([float(v) for v in a]) - max(float(v) for v in a))
        ref /= ref.sum()
        err = float(np.max(np.abs(ref - np.array([float(v) for v in out]))))
        total_err = abs(float(sum(out)) - 1.0)
        checks = [{"method": "numpy-stable-softmax", "quantity": "softmax(a)", "max_abs_err": err,
                   "passed": bool(err < 1e-12)},
                  {"method": "sums-to-one", "quantity": "sum of softmax(a)", "max_abs_err": total_err,
                   "passed": bool(total_err < 1e-12)}]

        t, c = sympy.symbols("t c", real=True)
        syms = sympy.symbols(f"a1:{K_SYMBOLIC + 1}", real=True)
        general = sympy.exp(syms[0]) / sum(sympy.exp(s) for s in syms)
        equal = general.subs({s: t for s in syms})
        unevaluated = sympy.Mul(sympy.exp(t), sympy.Pow(sympy.Add(*[sympy.exp(t)] * K_SYMBOLIC, evaluate=False), -1,
                                                        evaluate=False), evaluate=False)
        shifted = general.subs({s: s + c for s in syms}, simultaneous=True)
        cancelled = sympy.cancel(sympy.expand(shifted, power_exp=True))
        shift_ok = sympy.expand(cancelled - general) == 0

        values_out = {"activation": "softmax", "a": [float(v) for v in a], "softmax": [float(v) for v in out],
                      "softmax_formula": "exp(a_i)/sum_j exp(a_j)"}
        exact = [exact_string(v) for v in out]
        extra = {"exact": {"softmax": exact}} if all(exact) else None

        blocks = [B.Heading("The activation")]
        blocks.append(B.tex_prose(
            "A $K$-class classifier ends in a layer of $K$ units whose outputs should be a probability "
            "distribution over the classes, and the cross-entropy loss expects one; softmax turns any real "
            "vector into one (entries in $(0, 1)$, summing to 1), keeping their order. In the seed's network it "
            "acts on the 4 class scores of the OUTPUT layer that follows FC-10."))
        blocks.append(B.Equations((B.EqRow(B.Math(r"\operatorname{softmax}(a)_i", "softmax(a)_i"),
                                           (B.Math(r"\frac{e^{a_i}}{\sum_{j=1}^{K} e^{a_j}}",
                                                   "exp(a_i) / sum_j exp(a_j)"),)),)))
        blocks.append(B.Heading("On the given vector"))
        vec_tex = r"\left(" + ", ".join(num_math(v).tex for v in a) + r"\right)"
        vec_txt = "(" + ", ".join(num_math(v).text for v in a) + ")"
        res_tex = r"\left(" + ", ".join(approx_math(v).tex for v in out) + r"\right)"
        res_txt = "(" + ", ".join(approx_math(v).text for v in out) + ")"
        blocks.append(B.Equations((B.EqRow(B.Math(rf"\operatorname{{softmax}}{vec_tex}", f"softmax{vec_txt}"),
                                           (B.Math(res_tex, res_txt),)),)))
        blocks.append(B.Heading("The general fact"))
        blocks.append(B.tex_prose(f"With every entry equal to $t$, for $K = {K_SYMBOLIC}$:"))
        blocks.append(B.Equations((
            B.EqRow(B.Math(r"\operatorname{softmax}(t, \ldots, t)_1", "softmax(t, ..., t)_1"),
                    (B.Math(sympy.latex(unevaluated), sympy.sstr(unevaluated)),
                     B.Math(sympy.latex(equal), sympy.sstr(equal)))),
            B.EqRow(B.Math(r"\operatorname{softmax}(a + c\mathbf{1})_1", "softmax(a + c)_1"),
                    (B.Math(sympy.latex(shifted), sympy.sstr(shifted)),
                     B.Math(sympy.latex(cancelled), sympy.sstr(cancelled)))),
        )))
        blocks.append(B.tex_prose(
            "Softmax depends only on the differences between the entries: adding the same constant to every "
            "entry cancels between numerator and denominator"
            + (" (checked symbolically above)" if shift_ok else "")
            + ". So equal inputs always give the uniform distribution $1/K$, whatever their common value: "
              "the network is saying it cannot tell the classes apart."))
        blocks.append(B.Heading("Verification"))
        blocks.append(B.prose("Against a numpy softmax (largest entry subtracted first), and the sum of the "
                              "outputs:"))
        checks.append({"method": "sympy-shift-invariance", "quantity": "softmax(a + c) - softmax(a)",
                       "max_abs_err": 0.0 if shift_ok else 1.0, "passed": bool(shift_ok)})
        blocks.append(B.Checks(tuple(checks)))
        return BlocksSolution(self, values_out, blocks, checks, extra)


PROBLEMS = [Softmax()]
