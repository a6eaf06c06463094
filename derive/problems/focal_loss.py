"""Focal loss FL(p) = -(1 - p)^gamma log p against cross-entropy.

>>> FL.subs(gamma, 0) == CE
True
>>> RATIO
(1 - p)**gamma
"""
from __future__ import annotations

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.typeset.fmt import exact_string, num_text
from derive.problems.base import BlocksSolution, Problem
from derive.engine.spec import SpecError
from derive.problems._given import Given
from derive.problems._show import approx_math, num_math

#: the probability the model gives the true class (p_t in Lin et al.), and the focusing parameter
p = sympy.Symbol("p", positive=True)
gamma = sympy.Symbol("gamma", nonnegative=True)
CE = -sympy.log(p)
FL = -(1 - p) ** gamma * sympy.log(p)
#: FL / CE: SymPy cancels the common log p itself
RATIO = FL / CE
DFL = sympy.powsimp(sympy.diff(FL, p), force=True)
NAMES = {gamma: r"\gamma"}

TABLE_P = ("0.05", "0.1", "0.25", "0.5", "0.75", "0.9", "0.99")
TABLE_GAMMA = ("0", "0.5", "1", "2", "5")


def _value(expr, pv, gv):
    """An exact number where the expression allows it, else a 30-digit float."""
    v = expr.subs({p: pv, gamma: gv})
    return v if v.is_Rational else v.evalf(30)


def focal_numpy(pv, gv):
    """Independent numpy form: log of p via log1p of (p - 1), the weight via exp of gamma log1p(-p)."""
    pv = np.asarray(pv, dtype=float)
    return -np.exp(gv * np.log1p(-pv)) * np.log1p(pv - 1.0)


_m = num_math


class FocalLoss(Problem):
    id = "focal-loss"
    title = "Focal loss and cross-entropy"
    source = "seed 000, Q4"
    order = (0, 4)
    question = B.Tex(
        "The focal loss is $\\mathrm{FL}(p) = -(1 - p)^{\\gamma} \\log p$, where $p$ is the probability the "
        "model gives the true class and $\\gamma \\ge 0$ a hyper-parameter. How is it related to the "
        "cross-entropy loss when $\\gamma = 0$? In general, what does it do to the loss of well-classified and "
        "of badly-classified points?")

    DEFAULTS = {"gamma": "2", "p_well": "0.9", "p_bad": "0.1"}

    def solve(self, values=None, steps: int = 1) -> BlocksSolution:
        given = Given(values, self.DEFAULTS)
        g = given.number("gamma", lo=0, hi=20)
        pw = given.number("p_well", lo=0, hi=1, strict_lo=True)
        pb = given.number("p_bad", lo=0, hi=1, strict_lo=True)
        for name, v in (("p_well", pw), ("p_bad", pb)):
            if v == 1:
                raise SpecError(f"values.{name}", "must be below 1 (at p = 1 both losses are 0 and the ratio is undefined)")

        ratio, dfl = RATIO, DFL
        tp = [sympy.Rational(x) for x in TABLE_P]
        tg = [sympy.Rational(x) for x in TABLE_GAMMA]
        table = [[_value(FL, pv, gv) for gv in tg] for pv in tp]
        points = {}
        for tag, pv in (("well", pw), ("bad", pb)):
            points[tag] = {"fl": _value(FL, pv, g), "ce": _value(CE, pv, g), "ratio": _value(ratio, pv, g)}

        checks = self._checks(g, pw, pb, tp, tg, table, dfl, points)
        values_out = {
            "focal_loss": sympy.sstr(FL), "cross_entropy": sympy.sstr(CE),
            "ratio": sympy.sstr(ratio), "dFL/dp": sympy.sstr(dfl),
            "gamma": float(g), "p_well": float(pw), "p_bad": float(pb),
        }
        exact = {}
        for tag in ("well", "bad"):
            for key in ("fl", "ce", "ratio"):
                v = points[tag][key]
                values_out[f"{key}_{tag}"] = float(v)
                if exact_string(v):
                    exact[f"{key}_{tag}"] = exact_string(v)
        values_out["table_p"] = [float(x) for x in tp]
        values_out["table_gamma"] = [float(x) for x in tg]
        values_out["table"] = [[float(v) for v in row] for row in table]
        blocks = self._blocks(g, pw, pb, ratio, dfl, tp, tg, table, points, checks)
        return BlocksSolution(self, values_out, blocks, checks, {"exact": exact} if exact else None)

    def _checks(self, g, pw, pb, tp, tg, table, dfl, points) -> list:
        got = np.array([[float(v) for v in row] for row in table])
        ref = np.array([[focal_numpy(float(pv), float(gv)) for gv in tg] for pv in tp])
        err = float(np.max(np.abs(got - ref) / np.maximum(1.0, np.abs(ref))))
        checks = [{"method": "numpy-log1p", "quantity": "FL table", "max_rel_err": err, "passed": bool(err < 1e-12)}]
        same = sympy.expand(FL.subs(gamma, 0) - CE) == 0
        err0 = float(np.max(np.abs(focal_numpy(np.array([float(x) for x in tp]), 0.0) + np.log([float(x) for x in tp]))))
        checks.append({"method": "gamma-0-equals-ce", "quantity": "FL(gamma=0) - CE", "max_abs_err": err0,
                       "passed": bool(same and err0 < 1e-12)})
        h = 1e-6
        worst = 0.0
        for pv in (float(pw), float(pb), 0.5):
            fd = (focal_numpy(pv + h, float(g)) - focal_numpy(pv - h, float(g))) / (2 * h)
            sym = float(dfl.subs({p: sympy.Float(pv, 30), gamma: g}).evalf(30))
            worst = max(worst, abs(fd - sym) / max(1.0, abs(sym)))
        checks.append({"method": "finite-difference", "quantity": "dFL/dp", "max_rel_err": float(worst),
                       "passed": bool(worst < 1e-6)})
        return checks

    def _blocks(self, g, pw, pb, ratio, dfl, tp, tg, table, points, checks) -> list:
        out = [B.Heading(B.Tex("$\\gamma = 0$: cross-entropy"))]
        fl0 = FL.subs(gamma, 0)
        out.append(B.Equations((
            B.EqRow(B.Math(r"\mathrm{FL}(p)", "FL(p)"), (B.Math(sympy.latex(FL, symbol_names=NAMES), sympy.sstr(FL)),)),
            B.EqRow(B.Math(r"\mathrm{FL}(p)\big|_{\gamma = 0}", "FL(p) at gamma = 0"),
                    (B.Math(sympy.latex(fl0), sympy.sstr(fl0)), B.Math(r"\mathrm{CE}(p)", "CE(p)"))),
        )))
        out.append(B.tex_prose("With $\\gamma = 0$ the weight $(1 - p)^0$ is 1, so the focal loss is exactly the "
                               "cross-entropy of the true class (natural logarithm). For a binary label $y$, $p$ "
                               "stands for $p_t = p$ if $y = 1$ and $1 - p$ if $y = 0$."))
        out.append(B.Heading("The modulating factor"))
        out.append(B.Equations((
            B.EqRow(B.Math(r"\frac{\mathrm{FL}(p)}{\mathrm{CE}(p)}", "FL(p)/CE(p)"),
                    (B.Math(sympy.latex(ratio, symbol_names=NAMES), sympy.sstr(ratio)),)),
            B.EqRow(B.Math(r"\frac{d\,\mathrm{FL}}{dp}", "dFL/dp"),
                    (B.Math(sympy.latex(dfl, symbol_names=NAMES), sympy.sstr(dfl)),)),
        )))
        out.append(B.tex_prose("The factor $(1 - p)^{\\gamma}$ is at most 1 and falls towards 0 as "
                           "$p \\to 1$, faster for larger $\\gamma$: well-classified points ($p$ near 1) lose most of their loss, badly "
                           "classified points ($p$ near 0) keep almost all of it. Training is thereby focused "
                           "on the hard points instead of being dominated by the many easy ones."))
        rows = []
        for tag, pv, label in (("well", pw, "well classified"), ("bad", pb, "badly classified")):
            d = points[tag]
            rows.append((label, _m(pv), _m(d["ce"]), _m(d["fl"]), _m(d["ratio"]),
                         approx_math(1 / d["ratio"]) if d["ratio"] != 0 else B.Math(r"\infty", "inf")))
        out.append(B.Table(("point", B.Math("p", "p"), "CE", B.Tex(f"FL ($\\gamma = {num_text(g)}$)"), "FL/CE",
                            "CE/FL"), tuple(rows),
                           caption=B.Tex(f"Two points at $\\gamma = {num_text(g)}$"), align="lrrrrr"))
        out.append(B.tex_prose(
            f"At $\\gamma = {num_text(g)}$ the well-classified point's loss is divided by "
            f"{_divisor(points['well']['ratio'])}, the badly classified one's by only "
            f"{_divisor(points['bad']['ratio'])}."))
        header = (B.Math("p", "p"),) + tuple(B.Math(f"\\gamma = {x}", f"gamma = {x}") for x in TABLE_GAMMA)
        trows = tuple((_m(pv),) + tuple(_m(v) for v in row) for pv, row in zip(tp, table))
        out.append(B.Table(header, trows, caption=B.Tex("$\\mathrm{FL}(p)$ for several $\\gamma$ ($\\gamma = 0$ is the cross-entropy)"), align="r" * len(header)))
        grid = [k / 200 for k in range(2, 200)]
        series = []
        for gv in TABLE_GAMMA:
            series.append({"label": B.Tex(f"$\\gamma = {gv}$", plain=f"gamma = {gv}"), "x": grid,
                           "y": [float(v) for v in focal_numpy(np.array(grid), float(gv))]})
        out.append(B.Figure("plot", {"xlabel": B.Tex("probability of the true class $p$"), "ylabel": "loss",
                                     "logy": False, "series": series},
                            caption=B.Tex("Focal loss against $p$ for several values of its exponent $\\gamma$"), label="fig:focal-loss"))
        out.append(B.Heading("Verification"))
        out.append(B.tex_prose("The table against an independent numpy form ($\\log(1 + x)$ evaluated "
                               "accurately), $\\gamma = 0$ against "
                           "cross-entropy symbolically and numerically, and the derivative against central "
                           "differences:"))
        out.append(B.Checks(tuple(checks)))
        return out


def _divisor(ratio) -> str:
    return approx_math(1 / ratio).text if ratio != 0 else "infinity"


PROBLEMS = [FocalLoss()]
