"""Precision/recall down a ranking, 11-point interpolated AP, all-point AP, mAP.

Everything is exact rational arithmetic: recall 3/10 is compared with the
recall level 3/10, not with a float that may sit just above or below it.

>>> table = pr_table([True, False, True], 4)
>>> [(r.precision, r.recall) for r in table]
[(1, 1/4), (1/2, 1/4), (2/3, 1/2)]
>>> ap11(table), ap_all_points(table)
(5/11, 5/12)
"""
from __future__ import annotations

import operator
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.typeset.fmt import exact_string, num_tex, num_text
from derive.problems.base import BlocksSolution, Problem
from derive.engine.spec import SpecError
from derive.problems._given import Given
from derive.problems._show import approx_math, num_math

#: longest ranking accepted (the worked solution tabulates every rank)
MAX_RANKING = 5000
#: the 11 recall levels of Pascal VOC 2007: 0, 1/10, ..., 1 (exact)
LEVELS = tuple(sympy.Rational(k, 10) for k in range(11))


@dataclass(frozen=True)
class Row:
    rank: int
    correct: bool
    tp: int
    fp: int
    precision: sympy.Rational
    recall: sympy.Rational


def pr_table(ranking, n_positives: int) -> list:
    """Precision and recall after each of the ranked predictions."""
    rows, tp = [], 0
    for k, correct in enumerate(ranking, start=1):
        tp += bool(correct)
        rows.append(Row(k, bool(correct), tp, k - tp, sympy.Rational(tp, k), sympy.Rational(tp, n_positives)))
    return rows


def envelope(table) -> list:
    """env[k] = the largest precision at rank k + 1 or below (the interpolated curve)."""
    env, best = [sympy.Integer(0)] * len(table), sympy.Integer(0)
    for k in range(len(table) - 1, -1, -1):
        best = max(best, table[k].precision)
        env[k] = best
    return env


def interpolated_precision(table, r, strict: bool = False, env=None):
    """max of precision over the rows with recall >= r (> r if ``strict``); 0 if none.
    Recall never decreases down the ranking, so this is the envelope at the
    first row that reaches r.

    >>> t = pr_table([True, True], 2)
    >>> interpolated_precision(t, sympy.Rational(1, 2)), interpolated_precision(t, 1, strict=True)
    (1, 0)
    """
    recalls = [row.recall for row in table]
    k = bisect_right(recalls, r) if strict else bisect_left(recalls, r)
    env = envelope(table) if env is None else env
    return env[k] if k < len(table) else sympy.Integer(0)


def ap11(table, strict: bool = False):
    """Pascal VOC 2007: the mean of p_interp over the recall levels 0, 0.1, ..., 1."""
    env = envelope(table)
    return sum((interpolated_precision(table, r, strict, env) for r in LEVELS), sympy.Integer(0)) / 11


def recall_steps(table) -> list:
    """(r_i, p_interp(r_i)) at each recall the ranking reaches, in order."""
    env, out = envelope(table), []
    for k, row in enumerate(table):
        if row.recall > (table[k - 1].recall if k else 0):
            out.append((row.recall, env[k]))
    return out


def ap_all_points(table):
    """VOC 2010 onwards: the area under the interpolated precision-recall curve,
    sum over recall steps of (r_i - r_{i-1}) * p_interp(r_i)."""
    area, previous = sympy.Integer(0), sympy.Integer(0)
    for r, p in recall_steps(table):
        area += (r - previous) * p
        previous = r
    return area


# -- the interpolation rule as an answer ----------------------------------------

#: the relations an answer's rule may put between r' and r
RELATIONS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_FLIP = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}
_SPELLINGS = ((r"\geq", ">="), (r"\ge", ">="), ("\u2265", ">="), ("=>", ">="), (r"\leq", "<="),
              (r"\le", "<="), ("\u2264", "<="), ("=<", "<="), (r"\gt", ">"), (r"\lt", "<"),
              (r"\tilde{r}", "r'"), (r"\tilde r", "r'"), ("r~", "r'"), ("r^{\\prime}", "r'"),
              ("r^\\prime", "r'"), ("r\u2032", "r'"), ("r\u2019", "r'"), ("{", " "), ("}", " "), ("$", " "))


def ap11_under(table, relation: str):
    """11-point AP when p_interp(r) is the max of p(r') over the rows whose
    recall r' stands in ``relation`` to r (0 if none): '>=' is VOC 2007's.

    >>> t = pr_table([True, False, True], 2)
    >>> ap11_under(t, ">="), ap11_under(t, ">")
    (28/33, 25/33)
    """
    return sum((_p_under(table, r, relation) for r in LEVELS), sympy.Integer(0)) / 11


def _p_under(table, r, relation):
    cmp = RELATIONS[relation]
    return max((row.precision for row in table if cmp(row.recall, r)), default=sympy.Integer(0))


def rule_relation(text: str) -> str | None:
    r"""The relation of r' to r that a written rule uses ('max{r' > r} p(r')'
    -> '>'), or None if the text has none.

    >>> rule_relation("max{r' > r} p(r')"), rule_relation(r"\max_{\tilde r \ge r} p(\tilde r)")
    ('>', '>=')
    >>> rule_relation("max over r <= r' of p"), rule_relation("the best precision")
    ('>=', None)
    """
    t = str(text)
    for a, b in _SPELLINGS:
        t = t.replace(a, b)
    m = re.search(r"(?<![A-Za-z0-9_'])r'\s*(>=|<=|>|<)\s*r(?![A-Za-z0-9_'])", t)
    if m:
        return m.group(1)
    m = re.search(r"(?<![A-Za-z0-9_'])r\s*(>=|<=|>|<)\s*r'", t)
    return _FLIP[m.group(1)] if m else None


class InterpolationRule:
    """The answer quantity ``p_interp_rule``: a written interpolation rule,
    judged by the AP it gives on this problem's ranking (for ``derive check``).

    >>> rule = InterpolationRule(pr_table([True, False, True], 2))
    >>> rule.judge("max{r' >= r} p(r')")
    ('correct', '')
    >>> rule.judge("max{r' > r} p(r')")[1]
    "under this rule AP11 = 25/33 (0.757576) on this ranking, not 28/33 (0.848485): p_interp(r) is 2/3 instead of 1 at r = 0.5; at r = 1 no recall r' > r exists, so p_interp(1) = 0 instead of 2/3"
    """

    def __init__(self, table, where: str = "this ranking"):
        self.table = table
        self.ap = ap11_under(table, ">=")
        self.where = where
        self.expected = f"max of p(r') over r' >= r (AP11 = {exact_string(self.ap)} on {where})"

    def judge(self, text) -> tuple:
        rel = rule_relation(text if isinstance(text, str) else str(text))
        if rel is None:
            return "unparseable", "no relation between r' and r found; write the rule as max{r' >= r} p(r')"
        if rel == ">=":
            return "correct", ""
        ap = ap11_under(self.table, rel)
        out = [f"under this rule AP11 = {exact_string(ap)} ({num_text(sympy.Float(ap, 15))}) on {self.where}, "
               f"not {exact_string(self.ap)} ({num_text(sympy.Float(self.ap, 15))})"]
        empty, changed = [], {}
        for r in LEVELS:
            mine, right = _p_under(self.table, r, rel), _p_under(self.table, r, ">=")
            if not any(RELATIONS[rel](row.recall, r) for row in self.table):
                empty.append((r, right))
            elif mine != right:
                changed.setdefault((mine, right), []).append(r)
        for (mine, right), levels in changed.items():
            out.append(f"p_interp(r) is {exact_string(mine)} instead of {exact_string(right)} at r = "
                       + ", ".join(num_text(r) for r in levels))
        if empty:
            levels = ", ".join(num_text(r) for r, _ in empty)
            right = ", ".join(sorted({exact_string(p) for _, p in empty}))
            out.append(f"at r = {levels} no recall r' {rel} r exists, so p_interp({levels}) = 0 instead of {right}")
        return "incorrect", out[0] + ": " + "; ".join(out[1:]) if len(out) > 1 else out[0]


# -- independent implementations (the checks) ---------------------------------

def _ap11_fractions(ranking, n_positives: int) -> Fraction:
    """A second exact implementation: one sweep from the bottom of the ranking
    keeps the running maximum of precision, then each level reads it off."""
    tp = np.cumsum(np.array(ranking, dtype=np.int64))
    precision = [Fraction(int(t), k + 1) for k, t in enumerate(tp)]
    recall = [Fraction(int(t), n_positives) for t in tp]
    best_from = [Fraction(0)] * (len(precision) + 1)
    for k in range(len(precision) - 1, -1, -1):
        best_from[k] = max(best_from[k + 1], precision[k])
    total = Fraction(0)
    for level in (Fraction(k, 10) for k in range(11)):
        first = next((k for k, r in enumerate(recall) if r >= level), len(recall))
        total += best_from[first]
    return total / 11


def _ap11_numpy(ranking, n_positives: int, tolerance: float = 1e-12) -> float:
    """Floats, thresholds compared with a tolerance (so 0.3 counts at 0.3)."""
    hits = np.array(ranking, dtype=float)
    tp = np.cumsum(hits)
    prec = tp / np.arange(1, len(hits) + 1)
    rec = tp / n_positives
    total = 0.0
    for t in np.linspace(0.0, 1.0, 11):
        mask = rec >= t - tolerance
        total += prec[mask].max() if mask.any() else 0.0
    return total / 11


def ap11_voc_devkit(ranking, n_positives: int) -> float:
    """The VOC 2007 devkit's own loop, float thresholds from ``np.arange``
    (whose 0.30000000000000004 can miss a recall of exactly 0.3)."""
    hits = np.array(ranking, dtype=float)
    tp = np.cumsum(hits)
    prec = tp / np.arange(1, len(hits) + 1)
    rec = tp / n_positives
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        p = 0.0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
        ap += p / 11.0
    return float(ap)


def _ap_all_numpy(ranking, n_positives: int) -> float:
    """The VOC 2010 devkit's area computation (precision envelope, recall steps)."""
    tp = np.cumsum(np.array(ranking, dtype=float))
    prec = tp / np.arange(1, len(ranking) + 1)
    rec = tp / n_positives
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


# -- the problem -----------------------------------------------------------------

_m, _m_approx = num_math, approx_math


class InterpolatedAP(Problem):
    id = "interpolated-ap"
    title = "Precision/recall table and 11-point interpolated AP"
    source = "seed 000, Q3; seed 003, 2.c"
    order = (0, 3)
    question = (
        "A detector's predictions of one class over a test set, ranked by confidence, are each "
        "marked correct or not; the test set holds a known number of instances of the class. "
        "Tabulate precision and recall after each prediction, compute the 11-point interpolated "
        "average precision of the Pascal VOC 2007 protocol (exactly, and as a decimal), compare it "
        "with the all-point AP of later VOC years, draw the interpolated precision-recall curve, "
        "and define mAP.")

    #: seed 000 Q3: is each ranked prediction correct; 5 roses in the test split
    RANKING = [True, True, False, False, False, True, True, False, False, True]
    N_POSITIVES = 5

    def solve(self, values=None, steps: int = 1) -> BlocksSolution:
        given = Given(values, {"ranking": self.RANKING, "n_positives": self.N_POSITIVES})
        ranking = _ranking(given.get("ranking"))
        n_pos = given.integer("n_positives", lo=1, hi=10**6)
        if sum(ranking) > n_pos:
            raise SpecError("values.n_positives", f"the ranking has {sum(ranking)} correct predictions, "
                                                  f"more than the {n_pos} instances")
        table = pr_table(ranking, n_pos)
        p_levels = [interpolated_precision(table, r) for r in LEVELS]
        ap = ap11(table)
        ap_strict = ap11(table, strict=True)
        ap_all = ap_all_points(table)
        devkit = ap11_voc_devkit(ranking, n_pos)

        checks = []
        frac = _ap11_fractions(ranking, n_pos)
        ours = Fraction(int(ap.p), int(ap.q))
        checks.append({"method": "fractions-reverse-sweep", "quantity": "ap11",
                       "max_abs_err": float(abs(frac - ours)), "passed": bool(frac == ours)})
        err = abs(_ap11_numpy(ranking, n_pos) - float(ap))
        checks.append({"method": "numpy-float", "quantity": "ap11", "max_abs_err": float(err), "passed": bool(err < 1e-12)})
        err = abs(_ap_all_numpy(ranking, n_pos) - float(ap_all))
        checks.append({"method": "numpy-voc2010-area", "quantity": "ap_all", "max_abs_err": float(err),
                       "passed": bool(err < 1e-12)})

        values_out = {
            "ranking": ranking,
            "n_positives": n_pos,
            "tp": [r.tp for r in table],
            "fp": [r.fp for r in table],
            "precision": [float(r.precision) for r in table],
            "recall": [float(r.recall) for r in table],
            "recall_levels": [float(r) for r in LEVELS],
            "p_interp": [float(p) for p in p_levels],
            "ap11": float(ap),
            "ap_all": float(ap_all),
            "ap11_strict": float(ap_strict),
        }
        exact = {"ap11": exact_string(ap), "ap_all": exact_string(ap_all), "ap11_strict": exact_string(ap_strict),
                 "precision": [exact_string(r.precision) for r in table],
                 "recall": [exact_string(r.recall) for r in table],
                 "p_interp": [exact_string(p) for p in p_levels]}
        seed000 = ranking == self.RANKING and n_pos == self.N_POSITIVES
        rule = InterpolationRule(table, "seed 000's Q3 ranking" if seed000 else "this ranking")
        values_out["p_interp_rule"] = rule.expected
        blocks = self._blocks(ranking, n_pos, table, p_levels, ap, ap_all, ap_strict, devkit, checks)
        sol = BlocksSolution(self, values_out, blocks, checks, {"exact": exact})
        sol.judges = {"p_interp_rule": rule}     # derive check judges a written rule by its AP
        return sol

    def _blocks(self, ranking, n_pos, table, p_levels, ap, ap_all, ap_strict, devkit, checks):
        out = [B.prose("Given: ", str(len(ranking)), " ranked predictions, correct at ranks ",
                       ", ".join(str(r.rank) for r in table if r.correct) or "none",
                       "; ", str(n_pos), " instances in the test set.")]
        out.append(B.Heading("Precision and recall down the ranking"))
        out.append(B.prose(B.Tex("After the top $k$ predictions, with $TP$ of them correct: "),
                           B.Math(r"\text{precision} = \frac{TP}{TP + FP} = \frac{TP}{k}",
                                  "precision = TP/(TP + FP) = TP/k"),
                           " and ",
                           B.Math(rf"\text{{recall}} = \frac{{TP}}{{TP + FN}} = \frac{{TP}}{{{n_pos}}}",
                                  f"recall = TP/(TP + FN) = TP/{n_pos}"), "."))
        rows = tuple((str(r.rank), "yes" if r.correct else "no", str(r.tp), str(r.fp),
                      _m_approx(r.precision), _m(r.recall)) for r in table)
        out.append(B.Table((B.Tex("rank $k$"), "correct", "TP", "FP", "precision", "recall"), rows, align="rcrrll"))

        out.append(B.Heading("11-point interpolated AP (Pascal VOC 2007)"))
        out.append(B.Equations((
            B.EqRow(B.Math(r"p_{\text{interp}}(r)", "p_interp(r)"),
                    (B.Math(r"\max_{\tilde r \,:\, \tilde r \ge r} p(\tilde r)", "max of p(r~) over r~ >= r"),),
                    B.Tex("0 if no recall reaches $r$")),
            B.EqRow(B.Math(r"\mathrm{AP}_{11}", "AP11"),
                    (B.Math(r"\frac{1}{11} \sum_{r \in \{0, 0.1, \ldots, 1\}} p_{\text{interp}}(r)",
                            "1/11 * sum of p_interp(r) for r in {0, 0.1, ..., 1}"),)),
        )))
        out.append(B.prose("The levels are compared with the recalls as exact fractions, so a recall of "
                           "exactly 0.3 counts at the level 0.3."))
        lrows = []
        for r, p in zip(LEVELS, p_levels):
            at = [str(row.rank) for row in table if row.recall >= r and row.precision == p]
            shown = ", ".join(at[:6]) + (f", ... ({len(at)} ranks)" if len(at) > 6 else "")
            lrows.append((_m(r), _m_approx(p), shown if at else "none reaches r"))
        out.append(B.Table((B.Tex("level $r$"), B.Math(r"p_{\text{interp}}(r)", "p_interp(r)"),
                            "max attained at rank(s)"), tuple(lrows), align="lll"))
        groups = []
        for p in sorted(set(p_levels), reverse=True):
            groups.append((p_levels.count(p), p))
        sum_tex = " + ".join(rf"{c} \cdot {num_tex(p)}" for c, p in groups)
        sum_txt = " + ".join(f"{c}*{num_text(p)}" for c, p in groups)
        out.append(B.Equations((B.EqRow(B.Math(r"\mathrm{AP}_{11}", "AP11"), (
            B.Math(rf"\frac{{1}}{{11}}\left({sum_tex}\right)", f"1/11 * ({sum_txt})"),
            _m_approx(ap))),)))
        same = abs(devkit - float(ap)) < 1e-12
        above = [repr(float(t)) for k, t in enumerate(np.arange(0.0, 1.1, 0.1)) if float(t) > k / 10]
        out.append(B.prose(
            "The VOC 2007 devkit steps its thresholds 0, 0.1, ..., 1 in floating point, so that ",
            ", ".join(above), " lie a rounding error above their level; on this ranking "
            "that loop gives ", num_text(sympy.Float(devkit, 15)), ", ",
            "the same value." if same else "a different value: a recall equal to a level was missed."))

        out.append(B.Heading("All-point AP (VOC 2010 onwards)"))
        terms_tex, terms_txt, prev = [], [], sympy.Integer(0)
        for r, p in recall_steps(table):
            terms_tex.append(rf"({num_tex(r)} - {num_tex(prev)}) \cdot {num_tex(p)}")
            terms_txt.append(f"({num_text(r)} - {num_text(prev)})*{num_text(p)}")
            prev = r
        out.append(B.prose("The area under the interpolated curve: each step up in recall is weighted by "
                           "the interpolated precision there."))
        out.append(B.Equations((B.EqRow(B.Math(r"\mathrm{AP}_{\text{all}}", "AP_all"), (
            B.Math(r"\sum_i (r_i - r_{i-1})\, p_{\text{interp}}(r_i)", "sum_i (r_i - r_{i-1}) * p_interp(r_i)"),
            B.Math(" + ".join(terms_tex), " + ".join(terms_txt)),
            _m_approx(ap_all))),)))

        out.append(B.Figure("plot", _pr_plot(table), caption="Precision-recall: each rank's point and the "
                            "interpolated (monotone) curve", label="fig:interpolated-ap"))

        out.append(B.Heading("mAP"))
        out.append(B.prose(
            "mAP is mean Average Precision: the AP of each class ", B.Math("c", "c"), " (computed as above from "
            "that class's ranked detections) averaged over the ", B.Math("C", "C"), " classes, ",
            B.Math(r"\mathrm{mAP} = \frac{1}{C} \sum_{c=1}^{C} \mathrm{AP}_c",
                   "mAP = 1/C * sum over classes c of AP_c"),
            " (COCO also averages over IoU thresholds 0.5, 0.55, ..., 0.95). The interpolation takes the "
            "maximum over recalls at least ", B.Math("r", "r"), ", ",
            B.Math(r"\tilde r \ge r", "r~ >= r"), ", not strictly greater: with ",
            B.Math(r"\tilde r > r", "r~ > r"),
            " the point whose recall equals the level is left out and the level 1 has nothing to take the "
            "maximum over; on this ranking that rule would give ", _m_approx(ap_strict), " instead of ",
            _m_approx(ap), "."))
        out.append(B.Heading("Verification"))
        out.append(B.prose("The same AP from a second exact implementation (Python fractions, one reverse "
                           "sweep), from numpy floats with tolerant thresholds, and the all-point AP from the "
                           "VOC 2010 devkit's area computation:"))
        out.append(B.Checks(tuple(checks)))
        return out


def _pr_plot(table) -> dict:
    points_x = [float(r.recall) for r in table]
    points_y = [float(r.precision) for r in table]
    xs, ys, prev = [], [], sympy.Integer(0)
    for r, p in recall_steps(table):
        xs += [float(prev), float(r)]
        ys += [float(p), float(p)]
        prev = r
    return {"xlabel": "recall", "ylabel": "precision", "logy": False, "step": True,
            "series": [{"label": "interpolated precision", "x": xs, "y": ys, "step": True},
                       {"label": "precision at each rank", "x": points_x, "y": points_y, "step": False,
                        "marks": True}]}


def _ranking(raw) -> list:
    where = "values.ranking"
    if not isinstance(raw, (list, tuple)) or not raw:
        raise SpecError(where, "expected a non-empty list of true/false (or 1/0), one per ranked prediction")
    if len(raw) > MAX_RANKING:
        raise SpecError(where, f"more than {MAX_RANKING} predictions")
    out = []
    for k, item in enumerate(raw):
        if isinstance(item, bool):
            out.append(item)
        elif isinstance(item, int) and item in (0, 1):
            out.append(bool(item))
        elif isinstance(item, str) and item.strip().lower() in ("true", "false", "1", "0"):
            out.append(item.strip().lower() in ("true", "1"))
        else:
            raise SpecError(f"{where}[{k}]", f"expected true/false or 1/0, got {item!r}")
    return out


PROBLEMS = [InterpolatedAP()]
