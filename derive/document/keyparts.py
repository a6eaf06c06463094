r"""The answer key's first part: every sub-question of the seeds, answer first.

Each :class:`Part` is one sub-question in the seed's own numbering (Seed 000
Q1(a), ...): the question restated with typeset maths, the final answer (a
list of display-maths lines, boxed by the template), what else a grader
accepts and with which tolerance, the few steps a grader needs (blocks picked
from the problem's own worked solution, never recomputed here), one line of
verification, and the appendix section holding the full derivation.

Texts here are written with ``$...$`` maths (:func:`derive.typeset.blocks.tex_prose`);
they are the key's own words, never user input. Every number comes from a
solution (``sol[id]``): nothing below is a typed-in result.

>>> from derive.problems import load
>>> parts = key_parts({"softmax": load("softmax").solve()})
>>> [(p.seed, p.label) for p in parts if p.problem == "softmax"]
[('004', 'Q7(b)')]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import re

import sympy

from derive.typeset import blocks as B
from derive.typeset.fmt import num_tex
from derive.document.render import check_words
from derive.problems.lstm import ARGS_TEX

#: what a part is: computed by derive, a checked choice, or an outline
COMPUTED, CHOICE, OUTLINE = "computed", "choice", "outline"


@dataclass
class Part:
    seed: str
    label: str
    question: str                       # $...$ markup
    answer: list = field(default_factory=list)     # display-maths lines (LaTeX)
    short: str = ""                     # the grading table's answer ($...$ markup)
    accept: str = ""                    # accepted alternatives ($...$ markup)
    tolerance: str = ""
    marks: str = ""
    steps: list = field(default_factory=list)      # blocks
    verify: str = ""                    # $...$ markup
    problem: str | None = None          # the appendix section's built-in
    instance: str = ""                  # when derive chose the numbers
    kind: str = COMPUTED
    words: str = ""                     # an answer in words (choice / outline), $...$ markup

    @property
    def anchor(self) -> str:
        return "part:" + self.seed + ":" + "".join(c for c in self.label if c.isalnum() or c == ".")


# ---------------------------------------------------------------------------
# Small helpers: numbers, matrices, picking blocks out of a worked solution


def n(x) -> str:
    """A number as LaTeX, exact where the value is exact."""
    if isinstance(x, sympy.Basic):
        return num_tex(x)
    if isinstance(x, int):
        return str(x)
    return num_tex(sympy.Float(float(x), 15))


def ex(sol, name, fallback):
    """The exact value of ``name`` if the solution has one (``58/77``), else the float."""
    exact = sol.numbers().get("exact", {}).get(name)
    if isinstance(exact, str):
        try:
            return sympy.Rational(exact)
        except (TypeError, ValueError):
            pass
    return fallback


def mat(v) -> str:
    """A vector (a column) or a matrix as a bmatrix."""
    if v and isinstance(v[0], list):
        rows = [" & ".join(n(x) for x in r) for r in v]
    else:
        rows = [n(x) for x in v]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def section(blocks, heading: str) -> list:
    """The blocks under the heading that starts with ``heading`` (up to the next one)."""
    out, inside = [], False
    for b in blocks:
        if isinstance(b, B.Heading):
            if inside and b.level <= 2:
                break
            if b.text.startswith(heading):
                inside = True
                continue
        if inside:
            out.append(b)
    return out


def rows(blocks, *lhs, keep_values: bool = True) -> B.Equations:
    """The equation rows whose left side is one of ``lhs`` (LaTeX), in that order."""
    found = {}
    for b in blocks:
        if isinstance(b, B.Equations):
            for r in b.rows:
                found.setdefault(r.lhs.tex, r)
    picked = []
    for key in lhs:
        if key in found:
            r = found[key]
            picked.append(r if keep_values else B.EqRow(r.lhs, r.rhs[:1], r.note, r.relation))
    return B.Equations(tuple(picked))


def eq_lines(eqs: B.Equations, last_only: bool = False, first_only: bool = False) -> list:
    """Answer lines ``lhs = rhs`` from equation rows."""
    out = []
    for r in eqs.rows:
        rhs = r.rhs[-1:] if last_only else (r.rhs[:1] if first_only else r.rhs)
        rel = {"<-": r"\leftarrow"}.get(r.relation, "=")
        out.append(f"{r.lhs.tex} {rel} " + " = ".join(m.tex for m in rhs))
    return out


def checks_line(sol, letter: str) -> str:
    """One line: the independent checks and their largest errors."""
    items = []
    passed = True
    for c in sol.numbers().get("checks", []):
        passed = passed and c.get("passed") is not False
        if len(items) >= 3:
            continue
        err = next((c[k] for k in ("max_abs_err", "max_rel_err") if k in c), None)
        what = check_words(c["method"])
        if isinstance(err, (int, float)):
            kind = "relative" if "max_rel_err" in c else "absolute"
            items.append(f"{what} (largest {kind} difference ${_sci(err)}$)")
        else:
            items.append(what)
    verdict = "agree" if passed else "DISAGREE"
    return f"Checked against {', '.join(items)}: they {verdict}. Full derivation and every check: Appendix {letter}."


def _sci(x: float) -> str:
    if x == 0:
        return "0"
    s = f"{x:.2g}"
    if "e" in s:
        mant, exp = s.split("e")
        return (rf"10^{{{int(exp)}}}" if mant == "1" else rf"{mant} \times 10^{{{int(exp)}}}")
    return s


# ---------------------------------------------------------------------------
# The parts, seed by seed


def _seed000(sol, app) -> list:
    out = []
    if "rnn-bptt" in sol:
        s = sol["rnn-bptt"]
        j = s.numbers()
        bl = s.blocks()
        g, pg = j["gradients"], j["partial_gradients"]
        general = section(bl, "General form")
        matrix = matrix_steps(bl, ("W", "U", "V"))
        inst = ("The seed gives no numbers: derive chooses $f = \\tanh$, sizes $d = n = k = 2$ and small "
                "weights and inputs (listed in Appendix " + app["rnn-bptt"] + "), and evaluates the general form there.")
        q_common = ("A recurrent network is unrolled over $T = 3$ steps: $H_t = f(U I_t + W H_{t-1})$, "
                    "$O_t = V H_t$, with errors $E_t$ of the outputs and total error $E = \\sum_t E_t$ "
                    "($E_t = \\tfrac12 \\lVert O_t - Y_t \\rVert^2$). ")
        verify = checks_line(s, app["rnn-bptt"])
        for label, which, tex_e, key in (("Q1(a)", "", "E", None), ("Q1(b)", "2", "E_{2}", "dE_2"),
                                         ("Q1(c)", "3", "E_{3}", "dE_3")):
            sym = (rf"\frac{{\partial {tex_e}}}{{\partial W}}", rf"\frac{{\partial {tex_e}}}{{\partial U}}",
                   rf"\frac{{\partial {tex_e}}}{{\partial V}}")
            per_step = (rf"\frac{{\partial E_{{t}}}}{{\partial {p}}}" for p in "WUV")
            general_rows = rows(general, *((tuple(per_step) if key is None else ()) + sym))
            lines = eq_lines(general_rows)
            if key is None:
                vals = [g["W"]["value"], g["U"]["value"], g["V"]["value"]]
            else:
                vals = [pg[f"{key}/dW"], pg[f"{key}/dU"], pg[f"{key}/dV"]]
            lines += [f"{sy} = {mat(v)}" for sy, v in zip(sym, vals)]
            steps = []
            if key is None and matrix:
                steps = [B.tex_prose("In matrix form (backpropagation through time, "
                                     "$Z_t = U I_t + W H_{t-1}$):")] + matrix
            elif key is not None:
                steps = [B.tex_prose(f"The same recursion started at $t = {which}$ with only $O_{which} - Y_{which}$: "
                                     f"$\\delta_{which} = V^\\top (O_{which} - Y_{which}) \\odot f'(Z_{which})$, "
                                     f"$\\delta_{{t}} = W^\\top \\delta_{{t+1}} \\odot f'(Z_t)$ for $t < {which}$; "
                                     f"$\\partial {tex_e} / \\partial W = \\sum_{{t \\le {which}}} \\delta_t H_{{t-1}}^\\top$, "
                                     f"$\\partial {tex_e} / \\partial U = \\sum_{{t \\le {which}}} \\delta_t I_t^\\top$, "
                                     f"$\\partial {tex_e} / \\partial V = (O_{which} - Y_{which}) H_{which}^\\top$.")]
            what = "E" if key is None else f"E_{which}"
            out.append(Part(
                "000", label,
                q_common + f"Compute $\\partial {what}/\\partial W$, $\\partial {what}/\\partial U$, "
                f"$\\partial {what}/\\partial V$.",
                answer=lines,
                short=f"$\\partial {what}/\\partial W, U, V$: the sums over paths (general form); numbers for the instance",
                accept=("the general form in any equivalent notation (Jacobian products or the "
                        "$\\delta$ recursion)"),
                tolerance="numbers: relative $10^{-3}$ (the instance is derive's)",
                marks="3 (for Q1 in all)" if label == "Q1(a)" else "",
                steps=steps, verify=verify, problem="rnn-bptt", instance=inst))
        vt = [b for b in section(bl, "Vanishing") if isinstance(b, B.Table)]
        factor = rows(section(bl, "Vanishing"), r"\frac{\partial H_{T}}{\partial H_{k}}", keep_values=False)
        out.append(Part(
            "000", "Q2(a)",
            "Why do recurrent models suffer from the vanishing gradient problem, and how can it be solved?",
            answer=eq_lines(factor) + [r"\lVert \operatorname{diag}(f'(Z_j)) \rVert \le "
                                       + n(j["vanishing"]["tanh_derivative_max"]) + r"\ (\tanh),\quad \le "
                                       + n(j["vanishing"]["sigmoid_derivative_max"]) + r"\ (\sigma)"],
            short="product of $T - k$ Jacobians $\\operatorname{diag}(f') W$ shrinks geometrically; "
                  "LSTM/GRU gating, clipping, careful initialisation",
            accept="any of: gated cells (LSTM, GRU) with an additive cell path; gradient clipping "
                   "(for exploding); orthogonal/identity initialisation; ReLU-type activations; "
                   "truncated BPTT or skip connections",
            tolerance="reasoning, not a number", marks="1",
            words=("The error at step $T$ reaches $H_k$ through one Jacobian $\\operatorname{diag}(f'(Z_j))\\,W$ "
                   "per step in between. Its norm is at most $\\lVert \\operatorname{diag}(f') \\rVert "
                   "\\lVert W \\rVert$ per step; with $\\tanh$ or $\\sigma$ the first factor is at most the "
                   "bound above, so unless $\\lVert W \\rVert$ compensates the product falls geometrically in "
                   "$T - k$ (and explodes when it exceeds 1). The LSTM's cell path "
                   "$c_t = f_t \\odot c_{t-1} + i_t \\odot g_t$ has Jacobian $\\operatorname{diag}(f_t)$: no "
                   "weight matrix and no squashing derivative, so with open forget gates the gradient survives. "
                   "Measured factors per step (norm of $\\partial H_T / \\partial H_k$): see the table."),
            steps=vt[:1], verify=verify, problem="rnn-bptt"))
    out.append(Part(
        "000", "Q2(b)",
        "Training data repeat words (``The the the use use black color ball''), with 10 time steps. "
        "(i) Relate the problem to vanishing gradients. (ii) Which change to the architecture or training helps?",
        kind=OUTLINE, short="outline (not computed)",
        words=("(i) The repeated tokens push the informative words apart: with 10 steps the word that decides "
               "the next one (``black'', ``blue'', ...) is several steps back behind filler, so its gradient must "
               "cross more Jacobians and is attenuated; the data make short-range copying (predict the repeated "
               "word) easy and long-range dependencies hard. (ii) A gated recurrent unit (LSTM or GRU) whose "
               "forget gate can keep the relevant word; attention over all steps; a bidirectional encoder; "
               "gradient clipping if gradients explode."),
        marks="2"))
    if "interpolated-ap" in sol:
        s = sol["interpolated-ap"]
        v = s.numbers()["values"]
        ap = ex(s, "ap11", v["ap11"])
        ap_all = ex(s, "ap_all", v["ap_all"])
        bl = s.blocks()
        out.append(Part(
            "000", "Q3",
            "Ten ranked detections of ``Roses'' are correct at ranks "
            + ", ".join(str(k + 1) for k, t in enumerate(v["ranking"]) if t)
            + f" (and wrong at the others); the test set holds {v['n_positives']} roses. "
              "Compute the 11-point interpolated AP (Pascal VOC 2007).",
            answer=[r"\mathrm{AP}_{11} = " + n(ap) + (r" \approx " + n(float(ap)) if n(ap) != n(float(ap)) else "")],
            short=f"$\\mathrm{{AP}}_{{11}} = {n(ap)} \\approx {n(float(ap))}$",
            accept=("the mean of precisions rounded to 2 or 3 decimals (e.g. $0.752$ or $0.753$); "
                    "not the all-point AP $" + n(ap_all) + r" \approx " + n(float(ap_all)) + "$ of VOC 2010"),
            tolerance="absolute $0.002$", marks="3",
            steps=[rows(section(bl, "11-point"), r"p_{\text{interp}}(r)", r"\mathrm{AP}_{11}")]
            + [b for b in section(bl, "11-point") if isinstance(b, B.Table)][:1],
            verify=checks_line(s, app["interpolated-ap"]), problem="interpolated-ap"))
    if "focal-loss" in sol:
        s = sol["focal-loss"]
        v = s.numbers()["values"]
        bl = s.blocks()
        out.append(Part(
            "000", "Q4",
            "The focal loss is $\\mathrm{FL}(p) = -(1 - p)^{\\gamma} \\log p$. What is it at $\\gamma = 0$, "
            "compared with the cross-entropy? What happens, in general, to correctly and incorrectly classified points?",
            answer=eq_lines(rows(section(bl, "$\\gamma = 0$") or section(bl, "gamma = 0"),
                                 r"\mathrm{FL}(p)\big|_{\gamma = 0}"))
            + eq_lines(rows(section(bl, "The modulating"), r"\frac{\mathrm{FL}(p)}{\mathrm{CE}(p)}")),
            short="$\\gamma = 0$: FL = CE; easy points ($p \\to 1$) down-weighted by $(1-p)^\\gamma$, hard ones almost not",
            accept="natural or base-2 logarithm; ``FL reduces to CE''",
            tolerance="reasoning; numbers to 3 significant digits", marks="2",
            words=(f"At $\\gamma = 0$ the weight $(1-p)^0 = 1$: the focal loss is the cross-entropy. For $\\gamma > 0$ "
                   f"a well-classified point ($p = {n(v['p_well'])}$, $\\gamma = {n(v['gamma'])}$) keeps "
                   f"${n(v['ratio_well'])}$ of its cross-entropy (${n(v['fl_well'])}$ instead of ${n(v['ce_well'])}$), "
                   f"a misclassified one ($p = {n(v['p_bad'])}$) keeps ${n(v['ratio_bad'])}$ "
                   f"(${n(v['fl_bad'])}$ instead of ${n(v['ce_bad'])}$): training concentrates on the hard points."),
            verify=checks_line(s, app["focal-loss"]), problem="focal-loss"))
    if "iou-vs-l2" in sol:
        s = sol["iou-vs-l2"]
        v = s.numbers()["values"]
        ious = [ex(s, f"iou_{k}", v[f"iou_{k}"]) for k in "abc"]

        def box(b):
            return "(" + ", ".join(n(x) for x in b) + ")"

        out.append(Part(
            "000", "Q5",
            "Show that two predicted boxes can have the same $L_2$ distance to the ground truth but different IoU, "
            "and explain why.",
            answer=[r"G = " + box(v["box_gt"]) + r",\quad " + ",\\quad ".join(
                f"{k} = {box(v['box_' + k.lower()])}" for k in "ABC")],
            short="same $L_2 = " + n(v["l2_a"]) + "$, IoU " + ", ".join("$" + n(x) + "$" for x in ious),
            accept="any pair of boxes with equal $L_2$ and different IoU, correctly computed",
            tolerance="IoU to 3 decimals", marks="2",
            words=("Boxes as $(c_x, c_y, w, h)$. All three predictions are at $L_2$ distance $" + n(v["l2_a"])
                   + "$ from $G$, with IoU " + ", ".join("$" + n(x) + "$" for x in ious)
                   + ". $L_2$ adds coordinate errors as if they were independent and ignores the box's size; "
                     "IoU depends on how the error moves the overlap relative to the boxes' areas, so a shift "
                     "along one axis, a shift along both, or a change of width cost differently."),
            verify=checks_line(s, app["iou-vs-l2"]), problem="iou-vs-l2",
            instance="The seed gives no boxes: derive chooses $G$ and three predictions at equal distance."))
    if "transposed-conv" in sol:
        s = sol["transposed-conv"]
        v = s.numbers()["values"]
        bl = s.blocks()
        size = rows(section(bl, "(a)"), "o")
        out.append(Part(
            "000", "Q6(a)",
            "A $3 \\times 3$ input of ones goes through a transposed convolution with a $7 \\times 7$ filter of "
            "ones, stride 1, no padding. What is the size of the result?",
            answer=eq_lines(size) + [r"\text{output } " + r" \times ".join(str(x) for x in v["output_shape"])],
            short="$" + r" \times ".join(str(x) for x in v["output_shape"]) + "$",
            accept="$o = (i - 1)s - 2P + k$ stated", tolerance="exact", marks="1",
            verify=checks_line(s, app["transposed-conv"]), problem="transposed-conv"))
        out.append(Part(
            "000", "Q6(b)",
            "Write the 2-D transposed convolution of a $2 \\times 2$ input with a $2 \\times 2$ kernel as a "
            "matrix product.",
            answer=eq_lines(rows(section(bl, "(b)"), r"C^{\top} \operatorname{vec}(X)")),
            short="$\\operatorname{vec}(Y) = C^\\top \\operatorname{vec}(X)$, $C^\\top$ of size "
                  + r"$" + r" \times ".join(str(x) for x in v["matrix_shape"]) + "$",
            accept="column-major vectorisation with the matching permuted matrix",
            tolerance="exact (symbolic)", marks="1",
            steps=[rows(section(bl, "(b)"), "X", "K", r"C \; (4 \times 9)")],
            verify=checks_line(s, app["transposed-conv"]), problem="transposed-conv"))
    return out


def matrix_steps(blocks, params=()) -> list:
    """The grader's steps of a vector problem: the backward pass in matrix form
    as the matrix engine derives it (formulas; for an unrolled problem the
    recursion of one time step and the gradients as sums over t), without
    the component-by-component steps, which stay in the appendix."""
    sec = section(blocks, "Backward pass in matrix form")
    formulas, values = [], []
    seen_values = False
    for b in sec:
        if isinstance(b, B.Heading):
            seen_values = True
        elif isinstance(b, B.Equations):
            (values if seen_values else formulas).append(b)
    if not formulas:
        return []
    wanted = {rf"\frac{{\partial {loss}}}{{\partial {p}}}" for p in params for loss in ("E", "L")}
    if len(formulas) >= 2:          # unrolled: one time step, then every step and the gradients
        recursion = [b for b in sec if isinstance(b, B.Prose)][1:2]
        sums = tuple(r for r in formulas[-1].rows if r.lhs.tex in wanted)
        return recursion + [formulas[0], B.Equations(sums)]
    return [formulas[0]]


def matrix_values(blocks, params) -> list:
    """The values rows of the matrix form for the parameters ``params`` (LaTeX names)."""
    sec = section(blocks, "Backward pass in matrix form")
    wanted = {rf"\frac{{\partial L}}{{\partial {p}}}" for p in params}
    rows_ = []
    seen_values = False
    for b in sec:
        if isinstance(b, B.Heading):
            seen_values = True
        elif seen_values and isinstance(b, B.Equations):
            rows_ += [r for r in b.rows if r.lhs.tex in wanted]
    return rows_


def matrix_rows(blocks) -> list:
    for b in blocks:
        if isinstance(b, B.Equations):
            return list(b.rows)
    return []


def _seed002(sol, app) -> list:
    out = []
    if "rnn-bptt" in sol:
        s = sol["rnn-bptt"]
        out.append(Part(
            "002", "Q1.1",
            "Explain the exploding gradient and how it is similar to the vanishing gradient.",
            short="the same product of Jacobians: factor per step $> 1$ explodes, $< 1$ vanishes",
            words=("Both come from the product $\\prod_j \\operatorname{diag}(f'(Z_j))\\,W$ that carries the "
                   "gradient back through time (or depth): when the factor per step is below 1 the product "
                   "shrinks geometrically (vanishing), above 1 it grows geometrically (exploding: huge, unstable "
                   "updates, NaNs). The computed factors per step are in the table of Seed 000 Q2(a): for "
                   "$\\tanh$ with $W$ scaled beyond 1 the norm grows with the distance. Remedies: clipping "
                   "for exploding, gating or careful initialisation for vanishing."),
            tolerance="reasoning", verify=checks_line(s, app["rnn-bptt"]), problem="rnn-bptt"))
    out.append(Part(
        "002", "Q1.2", "Why is the sigmoid used less often than ReLU? Drawbacks of the sigmoid and how ReLU overcomes them.",
        kind=OUTLINE, short="outline (not computed)",
        words=("Sigmoid: saturates (derivative $\\sigma(1-\\sigma) \\le 1/4$, near 0 for large $|z|$), so "
               "gradients vanish through layers; outputs not centred at 0 (all-positive inputs to the next layer "
               "make weight updates zig-zag); the exponential is costlier. ReLU: derivative 1 for $z > 0$ (no "
               "saturation on that side), sparse activations, cheap; its drawback is dead units ($z < 0$ always), "
               "eased by leaky ReLU.")))
    if "mlp-tanh-sigmoid" in sol:
        s = sol["mlp-tanh-sigmoid"]
        bl = s.blocks()
        grads = section(bl, "Gradients")
        lines = []
        for r in matrix_rows(grads):
            # dL/dw = expression: the rule is w <- w - eta * expression
            w = re.search(r"\\partial ([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}$", r.lhs.tex).group(1)
            lines.append(rf"{w} \leftarrow {w} - \eta\, {r.rhs[0].tex}")
        out.append(Part(
            "002", "Q1.3",
            "Two inputs, two $\\tanh$ hidden units, one sigmoid output, squared-error loss $L = \\tfrac12 (y - o)^2$; "
            "weights $w^1_{11}, w^1_{12}, w^1_{21}, w^1_{22}$ (into the hidden units) and $w^2_{11}, w^2_{12}$ "
            "(into the output). Derive the update rule of each of the six weights.",
            answer=lines + [r"\text{with } z_i = w^1_{i1} x_1 + w^1_{i2} x_2,\ h_i = \tanh z_i,\ "
                            r"u = w^2_{11} h_1 + w^2_{12} h_2,\ o = \sigma(u)"],
            short="$w \\leftarrow w - \\eta\\,\\partial L/\\partial w$ with the six gradients shown",
            accept=("the sign written as $w + \\eta (y - o) \\cdots$; the loss without $\\tfrac12$ "
                    "(every gradient doubled); $\\sigma'(u)$ written $o(1-o)$ and $\\tanh'$ as $1 - h^2$"),
            tolerance="symbolic; at the instance, relative $10^{-3}$", marks="",
            steps=[B.tex_prose("The gradients, evaluated at derive's instance:")] + grads,
            verify=checks_line(s, app["mlp-tanh-sigmoid"]), problem="mlp-tanh-sigmoid",
            instance=("The seed gives no numbers: derive evaluates the rules at an instance of its choice "
                      "(Appendix " + app["mlp-tanh-sigmoid"] + ").")))
    if "weight-init" in sol:
        s = sol["weight-init"]
        v = s.numbers()["values"]
        out.append(Part(
            "002", "Q1.4",
            "All weights zero, all ones, or random: which may do well for binary classification? Why? "
            "Demonstrate with an experiment.",
            answer=[r"\text{random initialisation}"],
            short="random (zeros and ones keep the hidden units identical)",
            accept="random with small variance (Xavier/He) named", tolerance="reasoning", marks="",
            words=("Constant initialisations make the hidden units identical: they get identical gradients and "
                   "stay equal for ever (all zeros is worse: $\\tanh(0) = 0$ blocks the first layer's gradient). "
                   f"In derive's experiment the training accuracy was ${n(v['accuracy_zeros'])}$ from zeros, "
                   f"${n(v['accuracy_ones'])}$ from ones (the majority rate is ${n(v['majority_rate'])}$) and "
                   f"${n(v['accuracy_random_1'])}$ from a random start."),
            verify=checks_line(s, app["weight-init"]), problem="weight-init"))
    if "conv-arithmetic" in sol:
        s = sol["conv-arithmetic"]
        bl = s.blocks()
        conv = rows(section(bl, "Output size of a convolution"), r"H_{\text{out}}", r"W_{\text{out}}")
        pool = rows(section(bl, "Output size of max pooling"), r"H_{\text{out}}", r"W_{\text{out}}")
        ap = app["conv-arithmetic"]
        out.append(Part(
            "002", "Q2.1",
            "A $J \\times K$ layer, an $M \\times N$ filter, stride $s$, zero-padding $P$: the size of the output?",
            answer=eq_lines(conv) + [r"\text{depth: the number of filters}"],
            short="$(\\lfloor (J + 2P - M)/s \\rfloor + 1) \\times (\\lfloor (K + 2P - N)/s \\rfloor + 1)$",
            accept="without the floor when $s$ divides the numerator; ceil named as a framework option",
            tolerance="exact", verify=checks_line(s, ap), problem="conv-arithmetic"))
        out.append(Part(
            "002", "Q2.2",
            "Max pooling with filter size $F$ and stride $s$ on a $J \\times K$ layer: the size of the output?",
            answer=eq_lines(pool), short="$(\\lfloor (J - F)/s \\rfloor + 1) \\times (\\lfloor (K - F)/s \\rfloor + 1)$",
            accept="ceil mode named as an alternative", tolerance="exact",
            verify=checks_line(s, ap), problem="conv-arithmetic"))
        fc = [b for b in section(bl, "Fully connected") if isinstance(b, B.Table)]
        out.append(Part(
            "002", "Q2.3",
            "Can fully connected layers be represented by convolution layers? If so, how?",
            answer=[r"\text{Yes: an FC layer with } n \text{ units on a } C \times H \times W \text{ input is a "
                    r"convolution with } n \text{ filters of size } C \times H \times W"],
            short="yes: $n$ filters covering the whole input; later FC layers are $1 \\times 1$ convolutions",
            tolerance="reasoning", steps=fc[:1],
            words=("Each output unit of the FC layer is a weighted sum of every input entry; a filter as large as "
                   "the input, with no padding and stride 1, has exactly one position and computes the same sum. "
                   "The following FC layers then act on a $1 \\times 1 \\times n$ map: $1 \\times 1$ convolutions."),
            verify=checks_line(s, ap), problem="conv-arithmetic"))
    out.append(Part("002", "Q2.4–2.5", "Reading: ResNet's skip connections; the triplet loss (not to attempt).",
                    kind=OUTLINE, short="not to attempt",
                    words=("Skip connections let a block learn a residual $F(x)$ added to $x$, so gradients flow "
                           "through the identity path and very deep networks train. The triplet loss "
                           "$\\max(0, \\lVert a - p \\rVert^2 - \\lVert a - n \\rVert^2 + m)$ learns an embedding "
                           "from few examples per identity.")))
    return out


def _seed003(sol, app) -> list:
    out = []
    if "rnn-bptt" in sol:
        s = sol["rnn-bptt"]
        out.append(Part(
            "003", "1.a", "Pros and cons of LSTMs over RNNs.",
            short="pro: additive cell path keeps gradients; con: 4 times the parameters and compute",
            words=("Pros: the cell path $c_t = f_t \\odot c_{t-1} + i_t \\odot g_t$ carries gradients over many "
                   "steps (its Jacobian is $\\operatorname{diag}(f_t)$, no weight matrix), so long-range "
                   "dependencies are learnt; gates decide what to keep and expose. Cons: four weight matrices "
                   "instead of one (about four times the parameters and compute), slower, more to tune. The "
                   "measured factors per step of the RNN and of the LSTM cell path are in Seed 000 Q2(a)."),
            tolerance="reasoning", marks="5", verify=checks_line(s, app["rnn-bptt"]), problem="rnn-bptt"))
    if "lstm-cell" in sol:
        s = sol["lstm-cell"]
        j = s.numbers()
        ldims = j["dims"] if isinstance(j.get("dims"), dict) else {}
        bl = s.blocks()
        fwd = section(bl, "Forward pass")
        eqs = rows(fwd, "i", "f", "o", "g", "c", "h")
        comp = section(bl, "Components")
        tables = [b for b in comp if isinstance(b, B.Table)]
        matrix = matrix_steps(bl)
        out.append(Part(
            "003", "1.b",
            "List the components an LSTM block adds, and describe their function with equations, learnable "
            "parameters and activations.",
            answer=eq_lines(eqs, first_only=True)
            + [r"\text{parameters } W_i, W_f, W_o, W_c \text{ acting on } [h_{\text{prev}}; x],\ "
               r"b_i, b_f, b_o, b_c;\ \text{activations } \sigma \text{ (gates)}, \tanh \text{ (candidate, output)}"],
            short="three $\\sigma$ gates $i, f, o$, candidate $g$ ($\\tanh$), cell $c$, output $h$; "
                  "$W_\\ast$, $b_\\ast$",
            accept="the seed's notation $w_i [h_{t-1}, x_t]$; separate input and recurrent matrices",
            tolerance="equations and roles; numbers relative $10^{-3}$", marks="10",
            steps=tables[:1] + [B.tex_prose("Gradients of $L = \\tfrac12 \\lVert h - y \\rVert^2$ in matrix form, where "
                                            + ARGS_TEX + ":")]
            + matrix + [B.tex_prose("Their values at derive's instance:"),
                        B.Equations(tuple(matrix_values(bl, ("W_{i}", "W_{f}", "W_{o}", "W_{c}"))))],
            verify=checks_line(s, app["lstm-cell"]), problem="lstm-cell",
            instance=f"The numbers are derive's: sizes $n = {ldims.get('n', 2)}$, $d = {ldims.get('d', 2)}$ and small "
                     "weights (Appendix "
                     + app["lstm-cell"] + ")."))
    if "bahdanau-attention" in sol:
        s = sol["bahdanau-attention"]
        j = s.numbers()
        dims = j["dims"] if isinstance(j.get("dims"), dict) else {}
        bl = s.blocks()
        fwd = rows(section(bl, "Forward pass"), "u_{j}", "e_{j}", r"\alpha_{j}", "c")
        matrix = matrix_steps(bl, ("v", "W", "V"))
        jac = rows(section(bl, "The softmax Jacobian"), r"\frac{\partial \alpha_{j}}{\partial e_{k}}")
        steps = []
        try:
            from derive.typeset.diagrams import attention_figure        # the encoder-decoder block diagram the question asks for
            steps.append(attention_figure(dims.get("Tx", 3)))
        except ImportError:
            pass
        # the matrix form names the argument of tanh; say what it is where it is used
        named = any("a_{u," in r.lhs.tex for e in matrix if isinstance(e, B.Equations) for r in e.rows)
        lead = ("Gradients of $L = \\tfrac12 \\lVert c - y \\rVert^2$ in matrix form, with the softmax Jacobian"
                + (" ($a_{u,j} = W s_{\\text{prev}} + V h_{j}$, the argument of $\\tanh$)" if named else "") + ":")
        steps += ([B.tex_prose(lead)] + matrix + [jac]
                  + [B.tex_prose("Their values at derive's instance:"),
                     B.Equations(tuple(matrix_values(bl, ("v", "W", "V"))))])
        out.append(Part(
            "003", "1.c",
            "What is attention? With a block diagram, show how attention is used for neural machine translation; "
            "describe the attention component with its equations and learnable parameters.",
            answer=eq_lines(fwd, last_only=True)      # alpha_j as the softmax itself, not through its normaliser S
            + [r"s_i = f(s_{i-1}, y_{i-1}, c_i),\quad p(y_i \mid y_{<i}, x) = g(y_{i-1}, s_i, c_i)",
               r"\text{learnable: } v,\ W,\ V \text{ (with the encoder and decoder)}"],
            short="$e_j = v^\\top \\tanh(W s_{i-1} + V h_j)$, $\\alpha = \\operatorname{softmax}(e)$, "
                  "$c_i = \\sum_j \\alpha_j h_j$; learnable $v, W, V$",
            accept="the seed's $e_{ij}$, $\\alpha_{ij}$ with the decoder index $i$; dot-product scores named "
                   "as Luong's variant",
            tolerance="equations; numbers relative $10^{-3}$", marks="10",
            words=("Attention lets the decoder, at each output word $i$, weigh every encoder annotation $h_j$ by "
                   "its relevance to the previous decoder state $s_{i-1}$ and read a context vector $c_i$ from "
                   "them, instead of one fixed summary of the sentence."),
            steps=steps, verify=checks_line(s, app["bahdanau-attention"]), problem="bahdanau-attention",
            instance=f"The numbers are derive's: $T_x = {dims.get('Tx', 3)}$ annotations of size {dims.get('p', 2)}, "
                     "one decoder step, so the "
                     "worked lines drop the index $i$ and write $s_{\\text{prev}}$ for $s_{i-1}$ (Appendix "
                     + app["bahdanau-attention"] + ")."))
    for label, q, words in (
            ("2.a", "Why are R-CNN and its variants more accurate but slower than YOLO or SSD?",
             "R-CNN classifies about 2000 region proposals per image (selective search, a CNN pass per region; "
             "Fast/Faster R-CNN share the convolutions but still run a second stage per proposal); YOLO and SSD "
             "predict boxes and classes in one pass over a fixed grid of anchors. Two stages refine each box "
             "(higher accuracy, especially for small objects) at the cost of speed."),
            ("2.b", "The RoI-pool layer.",
             "RoI pooling crops each proposal from the shared feature map and max-pools it into a fixed grid "
             "(e.g. $7 \\times 7$) so that fully connected layers can follow; quantisation of the box to the "
             "grid loses alignment (RoIAlign interpolates instead).")):
        out.append(Part("003", label, q, kind=OUTLINE, short="outline (not computed)", words=words, marks="10"))
    if "interpolated-ap" in sol:
        s = sol["interpolated-ap"]
        bl = s.blocks()
        out.append(Part(
            "003", "2.c", "Define mAP.",
            answer=eq_lines(rows(section(bl, "11-point"), r"p_{\text{interp}}(r)", r"\mathrm{AP}_{11}"), first_only=True)
            + [r"\mathrm{mAP} = \frac{1}{C} \sum_{c=1}^{C} \mathrm{AP}_c"],
            short="mean over classes of the AP (area under the interpolated precision–recall curve)",
            accept="all-point AP (VOC 2010+) or COCO's mean over IoU thresholds, if named",
            tolerance="definition", words=("The interpolation takes the best precision at any recall "
                                           "$\\tilde r \\ge r$ (not $> r$)."),
            verify=checks_line(s, app["interpolated-ap"]), problem="interpolated-ap"))
    for label, q, words in (
            ("3.a", "A loss for semantic segmentation.",
             "Per-pixel cross-entropy over the classes, averaged over pixels (optionally class-weighted); Dice or "
             "IoU losses for unbalanced classes."),
            ("3.b", "Upsampling and skip connections in FCNs.",
             "Transposed convolutions (learnt upsampling) bring the coarse score map back to the input "
             "resolution; skip connections add the finer maps of earlier layers (FCN-16s, FCN-8s) to recover "
             "boundaries lost by pooling.")):
        out.append(Part("003", label, q, kind=OUTLINE, short="outline (not computed)", words=words))
    return out


def _seed004(sol, app) -> list:
    out = []
    if "optimizers" in sol:
        s = sol["optimizers"]
        bl = s.blocks()
        ap = app["optimizers"]
        verify = checks_line(s, ap)
        out.append(Part(
            "004", "Q1(a)", "The update rule for a parameter $w_i$ with loss $L$: stochastic gradient descent, one "
                            "sample $(x_1, y_1)$.",
            answer=[f"{r.lhs.tex} \\leftarrow {r.rhs[0].tex}" for r in matrix_rows(section(bl, "(a)"))],
            short="$w_i \\leftarrow w_i - \\eta\\, \\partial L(f(x_1; \\theta), y_1)/\\partial w_i$",
            tolerance="symbolic", marks="8 (for Q1 in all)", verify=verify, problem="optimizers"))
        b_rows = rows(section(bl, "(b)"), "w_{i}")
        batch = matrix_rows(section(bl, "(b)"))
        out.append(Part(
            "004", "Q1(b)", "Batch gradient descent with $m$ samples $(x_1, y_1), \\ldots, (x_m, y_m)$.",
            answer=[r"w_{i} \leftarrow " + r.rhs[0].tex + (rf"\quad\text{{({r.note})}}" if r.note else "")
                    for r in batch] or eq_lines(b_rows),
            short="$w_i \\leftarrow w_i - \\eta\\, \\partial/\\partial w_i \\sum_j L_j$ (or the mean)",
            accept="the sum or the mean over the batch (the mean only rescales $\\eta$)",
            tolerance="symbolic", verify=verify, problem="optimizers"))
        mom = matrix_rows(section(bl, "(c)"))
        out.append(Part(
            "004", "Q1(c)", "Stochastic gradient descent with momentum, one sample.",
            answer=[f"{r.lhs.tex} \\leftarrow {r.rhs[0].tex}" + (rf"\quad\text{{({r.note})}}" if r.note else "")
                    for r in mom],
            short="$v_{t+1} = \\rho v_t + g_t$, $w_{t+1} = w_t - \\eta v_{t+1}$ (or $v_{t+1} = \\rho v_t - \\eta g_t$, "
                  "$w_{t+1} = w_t + v_{t+1}$)",
            accept="either form: with a constant $\\eta$ they give the same iterates ($v^B = -\\eta v^A$); "
                   "$\\nabla f(w_t)$ for the loss gradient $g_t$",
            tolerance="symbolic", verify=verify, problem="optimizers"))
        nes = matrix_rows(section(bl, "(d)"))
        out.append(Part(
            "004", "Q1(d)", "Stochastic gradient descent with Nesterov accelerated momentum, one sample.",
            answer=[f"{r.lhs.tex} \\leftarrow {r.rhs[0].tex}" + (rf"\quad\text{{({r.note})}}" if r.note else "")
                    for r in nes],
            short="$v_{t+1} = \\rho v_t - \\eta \\nabla L(\\theta_t + \\rho v_t)$, $\\theta_{t+1} = \\theta_t + v_{t+1}$",
            accept="the lookahead form or torch's equivalent form (shown together)",
            tolerance="symbolic; the lookahead uses $\\rho$, not $\\eta$", verify=verify, problem="optimizers"))
    if "mlp-relu-regression" in sol:
        s = sol["mlp-relu-regression"]
        j = s.numbers()
        v, g, u = j["values"], j["gradients"], j["updates"]
        params = list(g)
        table = B.Table(
            ("parameter", "before", B.Math(r"\partial L / \partial \cdot", "dL/d."), "after"),
            tuple((B.Math(_param_tex(p), p), B.Math(n(ex(s, p, v[p])), ""),
                   B.Math(n(sympy.Rational(g[p]["exact"]) if g[p].get("exact") else g[p]["value"]), ""),
                   B.Math(n(u[p]), "")) for p in params),
            caption="One SGD step: each parameter before, its gradient, after", align="lrrr")
        bl = s.blocks()
        fwd = section(bl, "Forward pass")
        out.append(Part(
            "004", "Q2",
            "A regression net: inputs $x_1, x_2$; hidden ReLU units $h_1$ with $a_1 = \\mathrm{ReLU}(z_1)$, "
            "$z_1 = w_1 x_1 + w_2 x_2 + b_1$, and $h_2$ with $a_2 = \\mathrm{ReLU}(z_2)$, "
            "$z_2 = w_3 x_1 + w_4 x_2 + b_2$; linear output $o_1 = w_5 a_1 + w_6 a_2 + b_3$; "
            "$L = \\tfrac12 (y - o_1)^2$. One SGD step ($\\eta = " + n(j["optimizer"].get("lr", 0.5))
            + "$) on $x_1 = " + n(ex(s, "x1", v["x1"])) + "$, $x_2 = " + n(ex(s, "x2", v["x2"])) + "$, $y = "
            + n(ex(s, "y", v["y"])) + "$ from the exam's weights.",
            answer=[", ".join(f"{_param_tex(p)}^{{+}} = {n(u[p])}" for p in params[:5]),
                    ", ".join(f"{_param_tex(p)}^{{+}} = {n(u[p])}" for p in params[5:]),
                    rf"L = {n(ex(s, 'L', v['L']))},\quad o_1 = {n(ex(s, 'o1', v['o1']))}"],
            short="$" + ", ".join(f"{_param_tex(p)}^{{+}} = {n(u[p])}" for p in params) + "$",
            accept="gradients with the sign of $-(y - o_1)$ written out", tolerance="exact (3 significant digits)",
            marks="15", steps=[rows(fwd, "z_{1}", "a_{1}", "z_{2}", "a_{2}", "o_{1}", "L"), table,
                               B.tex_prose("$h_2$ is dead ($z_2 < 0$, and $\\mathrm{ReLU}'(z) = 0$ for $z \\le 0$): "
                                           "$w_3$, $w_4$, $b_2$ do not move, and neither does $w_6$ ($a_2 = 0$).")],
            verify=checks_line(s, app["mlp-relu-regression"]), problem="mlp-relu-regression"))
    out.append(Part(
        "004", "Q3", "Which techniques reduce overfitting? Justify. (Dropout; Adam.)", kind=CHOICE,
        short="Dropout (yes); Adam (no)", marks="4",
        words=("Dropout, yes: it randomly removes units during training, so no unit can rely on particular "
               "others (an ensemble of thinned networks), a regulariser. Adam, no: an optimiser changes how fast "
               "the training loss falls, not what the model can fit. The published tick (Dropout) is right.")))
    for label, q, ans, why in (
            ("Q4(a)", "Training loss much lower than validation loss: what helps? (fewer layers; lower dropout "
                      "probability; larger L2 weight; larger hidden layers)",
             "fewer layers; increase the L2 weight",
             "Overfitting: reduce capacity (fewer layers) or regularise more (a larger L2 weight). Lowering dropout "
             "or enlarging layers makes it worse. The published answer ticks only the L2 weight and leaves "
             "``fewer layers'' blank (its mark is unreadable): both should be accepted."),
            ("Q4(b)", "The purpose of batch normalization?",
             "speeding up training by reducing internal covariate shift",
             "Batch normalization normalises each layer's inputs over the batch so that training is faster and "
             "more stable at larger learning rates; that is its stated purpose (Ioffe and Szegedy). Its noise "
             "has a mild regularising side effect, but it is not the purpose: the published tick "
             "(``regularizing the model'') is doubtful; accept the covariate-shift answer, and give the "
             "published one partial credit at most."),
            ("Q4(c)", "How does Adagrad adjust the learning rate?",
             "per weight, from the history of that weight's gradients",
             "Adagrad divides the rate of each weight by $\\sqrt{\\sum_\\tau g_\\tau^2} + \\epsilon$, the "
             "accumulated squares of its own gradients. The published tick is right."),
            ("Q4(d)", "Which method takes the future gradient into account in its momentum?",
             "Nesterov accelerated momentum",
             "Nesterov evaluates the gradient at the lookahead point $\\theta_t + \\rho v_t$. Right as published."),
            ("Q4(e)", "Which method combines momentum with adaptive learning rates?", "Adam",
             "Adam keeps a running mean of the gradients (momentum) and of their squares (RMSprop's per-weight "
             "scaling). Right as published."),
            ("Q4(f)", "The role of activation functions?", "to add non-linearity",
             "Without a non-linearity a stack of layers is one linear map. Right as published."),
    ):
        out.append(Part("004", label, q, kind=CHOICE, short=ans, words=why,
                        marks="1" if label == "Q4(f)" else "2"))
    if "conv-arithmetic" in sol:
        s = sol["conv-arithmetic"]
        v = s.numbers()["values"]
        bl = s.blocks()
        rf = [b for b in section(bl, "Receptive field") if isinstance(b, B.Table)]
        ap = app["conv-arithmetic"]
        out.append(Part(
            "004", "Q5(a)",
            "An RGB image of $256 \\times 256$; two $3 \\times 3$ convolutions (stride 1, 32 maps), then a "
            "$3 \\times 3$ pooling with stride 2. The receptive field of one pooling unit?",
            answer=[rf"{v['receptive_field']} \times {v['receptive_field']} \ ({{\times}}\, 3 \text{{ channels}})"],
            short=f"${v['receptive_field']} \\times {v['receptive_field']}$",
            accept=f"${v['receptive_field']} \\times {v['receptive_field']} \\times 3$", tolerance="exact",
            steps=rf[:1], verify=checks_line(s, ap), problem="conv-arithmetic"))
        table = [b for b in section(bl, "The CNN's shapes") if isinstance(b, B.Table)]

        def shape(key):
            return r" \times ".join(str(x) for x in v[key])

        out.append(Part(
            "004", "Q7(a)",
            "For each layer of the CNN (INPUT $128 \\times 128 \\times 3$, CONV-7-32, POOL-2, CONV-5-64, CONV-3-128, "
            "POOL-2, FC-10, OUTPUT-4; padding 0, stride 1, pooling stride $K$) give the activation shape and the "
            "numbers of weights and biases.",
            answer=[rf"\text{{POOL-2 (second)}}\colon {shape('pool2_shape')},\quad \text{{FC-10 weights}}\colon "
                    rf"{n(v['fc1_weights'])}",
                    rf"\text{{total}}\colon {n(v['total_weights'])} \text{{ weights}} + {n(v['total_biases'])} "
                    rf"\text{{ biases}} = {n(v['total_parameters'])}"],
            short=f"table; POOL-2 ${shape('pool2_shape')}$, total ${n(v['total_parameters'])}$",
            accept=(f"ceil-mode pooling: POOL-2 ${shape('ceil_pool2_shape')}$, FC-10 weights "
                    f"${n(v['ceil_fc1_weights'])}$, total ${n(v['ceil_total_parameters'])}$ (carried consistently)"),
            tolerance="exact", marks="14 (for Q7 in all)", steps=table[:1],
            verify=checks_line(s, ap), problem="conv-arithmetic"))
    out.append(Part(
        "004", "Q6", "Which statements about visualising CNNs do you agree with?", kind=CHOICE,
        short="activation maps at any layer; deeper layers compute more complex features",
        words=("Agree: visualising activation maps is informative at any layer; deeper layers compute more complex "
               "features. Disagree: weight visualisation is informative only for the first layer (deeper filters "
               "act on abstract channels); earlier layers are not the more complex ones. The statement on the "
               "class-score gradient is cut off in the seed (saliency maps are useful), so it is not graded here. "
               "The published ticks agree.")))
    if "softmax" in sol:
        s = sol["softmax"]
        v = s.numbers()["values"]
        bl = s.blocks()
        out.append(Part(
            "004", "Q7(b)", "The activation after the last FC layer, and its value on $a = ("
            + ", ".join(n(x) for x in v["a"]) + ")$.",
            answer=eq_lines(rows(section(bl, "The activation"), r"\operatorname{softmax}(a)_i"))
            + eq_lines(B.Equations(tuple(matrix_rows(section(bl, "On the given"))))),
            short="softmax; $(" + ", ".join(n(x) for x in v["softmax"]) + ")$",
            tolerance="exact", verify=checks_line(s, app["softmax"]), problem="softmax"))
    out.append(Part(
        "004", "Q7(c)", "A friend's network trained on a million Himalayan bird images: how can it help?",
        kind=OUTLINE, short="transfer learning (fine-tuning)",
        words=("Transfer learning: keep the trained convolutional layers as a feature extractor, replace the last "
               "layer by a new 4-way output and train it (and possibly fine-tune the upper layers with a small "
               "learning rate) on the pond-bird data.")))
    return out


def _param_tex(name: str) -> str:
    return name[0] + "_{" + name[1:] + "}" if name[1:].isdigit() else name


def key_parts(solutions: dict, appendix: dict | None = None) -> list:
    """Every part, in the seeds' order, for the built-ins solved in ``solutions``
    (id -> solution); ``appendix`` maps ids to their appendix letters."""
    app = {pid: (appendix or {}).get(pid, "") for pid in solutions}
    return _seed000(solutions, app) + _seed002(solutions, app) + _seed003(solutions, app) + _seed004(solutions, app)
