r"""LaTeX and PDF from blocks: Jinja2 templates, and a safe pdfLaTeX run.

Every renderer reads the same blocks (:mod:`derive.typeset.blocks`); this one turns
each block into a small plain-data context (:func:`block_context`) and hands it
to the template partial of its kind (``templates/partials/<kind>.tex.j2``).
Maths arrives already printed; prose is escaped by the templates' ``escape``
filter; nothing is recomputed here.

>>> from derive.typeset import blocks as B
>>> tex = render_blocks([B.Heading("Forward pass"),
...     B.Equations((B.EqRow(B.Math("z_{1}", "z1"), (B.Math("0.3", "0.3"),)),))])
>>> print(tex.strip().splitlines()[0])
\subsection*{Forward pass}
>>> "z_{1} &= \\fitrhs{0.3}" in tex
True
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import jinja2

from derive.typeset import blocks as B
from derive.errors import UserError
from derive.outfile import check_file
from derive.typeset.latex import CONTINUE, break_chain, escape, math_unicode, math_width

#: seconds one pdfLaTeX run may take before it is stopped
LATEX_TIMEOUT = 180
#: pdfLaTeX runs at most this many times (cross-references settle in two)
MAX_RUNS = 3
#: text width of the documents in points (A4, 11pt, 2 cm margins)
TEXT_WIDTH = 483.0
#: how to get a TeX engine, said in one line when there is none
TEX_HINT = ("install TeX Live (./install.sh does it, or: apt-get install texlive-latex-base "
            "texlive-latex-recommended texlive-pictures lmodern)")


class LatexError(UserError):
    """pdfLaTeX failed: ``where`` is the .tex line, ``what`` the first error."""


class NoTexError(UserError):
    """No TeX engine on this machine."""


# ---------------------------------------------------------------------------
# Templates


def template_dir() -> Path:
    """``templates/`` of a checkout, else ``derive/templates`` of a wheel."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "templates", here / "templates"):
        if (candidate / "base.tex.j2").is_file():
            return candidate
    raise FileNotFoundError("derive's LaTeX templates are missing (neither templates/ nor derive/templates/)")


@lru_cache(maxsize=1)
def make_env() -> jinja2.Environment:
    r"""The one Jinja2 environment of every LaTeX document derive writes:
    LaTeX-safe delimiters (``\VAR{...}``, ``\BLOCK{...}``, comments ``\#{ ... #}``),
    undefined names are errors, prose goes through the ``escape`` filter.

    >>> make_env().from_string(r"\VAR{x|escape} \BLOCK{if y}yes\BLOCK{endif}").render(x="50%", y=1)
    '50\\% yes'
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="#}",
        line_comment_prefix="%#",
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["escape"] = escape
    env.filters["math"] = math_unicode
    env.filters["markup"] = markup
    return env


def markup(text: str) -> str:
    r"""derive's own words with ``$...$`` maths as LaTeX: the words escaped,
    the maths kept (never for user text, which is always escaped whole).

    >>> markup("50% of $x_1$")
    '50\\% of $x_1$'
    """
    out = []
    for k, piece in enumerate(str(text).split("$")):
        out.append(f"${math_unicode(piece)}$" if k % 2 else escape(piece))
    return "".join(out)


# ---------------------------------------------------------------------------
# Blocks -> template contexts (plain data; layout decisions, no maths)

#: relations an EqRow may name, as LaTeX
RELATIONS = {"=": "=", "<-": r"\leftarrow", ":=": r"\coloneqq", "~": r"\approx", "≈": r"\approx",
             "->": r"\rightarrow", "<=": r"\leq", ">=": r"\geq", "!=": r"\neq"}
#: a table longer than this is folded into side-by-side halves or split
TABLE_ROWS = 26
PIECE_ROWS = 30
#: at most this many points of a (non-staircase) curve are drawn
MAX_POINTS = 600


def _cell(c) -> dict:
    if isinstance(c, B.Math):
        return {"math": True, "tex": c.tex}
    return {"math": False, "text": "" if c is None else str(c), "markup": isinstance(c, B.Tex)}


def _words(text) -> str:
    """Words for a template slot that expects LaTeX: :class:`~derive.typeset.blocks.Tex`
    typeset, anything else escaped."""
    return markup(text) if isinstance(text, B.Tex) else escape(text)


def _equations(b: B.Equations) -> dict:
    lhs_widths = [math_width(r.lhs.tex) for r in b.rows] or [0.0]
    rel_width = 18.0
    budget = TEXT_WIDTH - max(lhs_widths) - rel_width - 12.0
    rows = []
    for r in b.rows:
        parts = [math_unicode(m.tex) for m in r.rhs]
        note = ""
        if r.note:
            note = _words(r.note)
            budget_note = budget - 6.0 * len(note) - 12.0
        lines = break_chain(parts, max(budget, 120.0)) if parts else [""]
        if note and math_width(lines[-1]) > budget_note:
            lines.append("")          # the note gets a line of its own
        out_lines = []
        for k, line in enumerate(lines):
            cont = line.startswith(CONTINUE)
            rel = RELATIONS.get(r.relation, math_unicode(r.relation)) if k == 0 else ("" if cont or not line else "=")
            out_lines.append({"rel": rel, "tex": line})
        rows.append({"lhs": math_unicode(r.lhs.tex), "lines": out_lines, "note": note})
    return {"kind": "equations", "rows": rows}


def _table(b: B.Table) -> dict:
    header = [_cell(c) for c in b.header]
    rows = [[_cell(c) for c in r] for r in b.rows]
    ncols = max([len(header)] + [len(r) for r in rows])
    header += [_cell("")] * (ncols - len(header))
    rows = [r + [_cell("")] * (ncols - len(r)) for r in rows]
    align = b.align if b.align and len(re.sub(r"[^lcr]", "", b.align)) == ncols else "c" * ncols
    # a long, narrow table reads better folded into two halves side by side
    folds = 2 if len(rows) > TABLE_ROWS and ncols <= 4 else 1
    # pieces of at most PIECE_ROWS rows: a piece never needs more than half a
    # page, so the caption above rarely ends a page alone
    per_piece = min(math.ceil(len(rows) / folds), PIECE_ROWS)
    pieces = []
    chunk = folds * per_piece
    for part in _by_height(rows, chunk) if folds == 1 else [rows[s:s + chunk] for s in range(0, max(len(rows), 1), chunk)]:
        halves = [part[k * per_piece:(k + 1) * per_piece] for k in range(folds)]
        halves = [h for h in halves if h] or [[]]
        n = max(len(h) for h in halves)
        merged = []
        for i in range(n):
            row = []
            for k, h in enumerate(halves):
                row += h[i] if i < len(h) else [_cell("")] * ncols
            merged.append(row)
        spec = "@{\\hspace{2.5em}}".join([align] * len(halves))
        pieces.append({"align": spec, "header": header * len(halves), "rows": merged})
    return {"kind": "table", "caption": _words(b.caption), "pieces": pieces}


#: a table whose rows hold matrices comes in pieces of at most this many lines:
#: a piece that does not fit moves whole to the next page, and a smaller one
#: leaves less of a page empty
PIECE_LINES = 12


def _row_lines(row: list) -> int:
    """How many text lines a table row takes: a matrix cell as many as its rows."""
    tall = 1
    for c in row:
        tex = c.get("tex", "") if c.get("math") else ""
        if "matrix}" in tex:
            tall = max(tall, tex.count(r"\\") + 1)
    return tall


def _by_height(rows: list, chunk: int) -> list:
    r"""``rows`` in runs of at most ``chunk`` rows and, where rows are tall
    (matrices), of at most :data:`PIECE_LINES` lines.

    >>> cell = lambda k: {"math": True, "tex": r"\begin{bmatrix}" + r" \\ ".join("1" * k) + r"\end{bmatrix}"}
    >>> [len(p) for p in _by_height([[cell(4)]] * 6, 30)]
    [3, 3]
    >>> [len(p) for p in _by_height([[cell(2)]] * 3 + [[cell(3)], [cell(2)], [cell(3)]], 30)]
    [3, 3]
    >>> [len(p) for p in _by_height([[cell(1)]] * 6, 30)]
    [6]
    """
    heights = [_row_lines(r) for r in rows]
    tall = any(h > 1 for h in heights)
    # pieces of about equal height (no lone last row), none above PIECE_LINES
    limit = math.ceil(sum(heights) / math.ceil(sum(heights) / PIECE_LINES)) if tall else PIECE_LINES
    pieces, run, lines = [], [], 0
    for r, h in zip(rows, heights):
        over = lines + h - limit        # a row goes where the run ends nearer the even height
        if run and (len(run) >= chunk or (tall and (lines + h > PIECE_LINES or over > 0 and over > limit - lines))):
            pieces.append(run)
            run, lines = [], 0
        run.append(r)
        lines += h
    return pieces + [run]


def _checks(b: B.Checks) -> dict:
    items = []
    for c in b.items:
        c = dict(c)
        err_key = next((k for k in ("max_abs_err", "max_rel_err", "max_err", "err") if k in c), None)
        err = c.get(err_key) if err_key else None
        items.append({
            "method": _words(check_words(str(c.get("method", "check")))),
            "measure": err_key.replace("_", " ").replace("err", "error") if err_key else "",
            "value": _sci(err) if isinstance(err, (int, float)) and not isinstance(err, bool) else "",
            "passed": c.get("passed"),
            "note": str(c.get("note", "") or ""),
        })
    return {"kind": "checks", "entries": items}


#: how a check's method reads in a document (the JSON keeps its identifier)
CHECK_WORDS = {"numpy-backprop": "independent numpy backpropagation",
               "finite-difference": "central finite differences",
               "matrix-form": "matrix form, recomputed in numpy",
               "path-sum": "path sums of the general form",
               "path-sum-total": "path sums, totalled over the steps",
               "numpy-backprop-vs-engine": "hand-written numpy gradients against the symbolic ones",
               "sympy-shift-invariance": "shift invariance, proved symbolically",
               "numpy-log1p": "numpy, through log1p (accurate near $p = 0$ and $p = 1$)",
               "gamma-0-equals-ce": "$\\gamma = 0$ against the cross-entropy",
               "numpy-voc2010-area": "the VOC 2010 devkit's area, in numpy",
               "numpy-fc-vs-conv": "numpy: fully connected layer against its convolution",
               "softmax-jacobian": "the softmax Jacobian",
               "m times the mean gradient = summed gradient (exact)":
                   "$m$ times the mean gradient equals the summed gradient (exact)",
               "sum step with rate lr = mean step with rate m lr (exact)":
                   "a sum step with rate $\\eta$ equals a mean step with rate $m \\eta$ (exact)",
               "momentum forms A and B: equal for constant lr, different for changing lr (symbolic, 3 steps)":
                   "momentum forms A and B: equal for a constant $\\eta$, different for a changing one "
                   "(symbolic, 3 steps)",
               "torch nesterov = lookahead form at theta + rho v (symbolic, 3 steps); published lookahead differs":
                   "torch's Nesterov equals the lookahead form at $\\theta_t + \\rho v_t$ (symbolic, 3 steps); "
                   "the published lookahead differs",
               "torch nesterov = lookahead form on the exam network":
                   "torch's Nesterov equals the lookahead form on the exam network"}


def check_words(method: str) -> str:
    """A check's method as words: ``numpy-backprop`` -> ``independent numpy backpropagation``;
    derive's own words, with ``$...$`` maths where they name a formula (a :class:`~derive.typeset.blocks.Tex`)."""
    words = method.replace("-", " ").replace("engine", "symbolic derivation").replace("sympy ", "symbolic ")
    return B.Tex(CHECK_WORDS[method]) if method in CHECK_WORDS else words


def _sci(x: float) -> str:
    r"""A float in LaTeX at 3 significant digits: ``1.39 \times 10^{-17}``."""
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return r"\infty" if x > 0 else r"-\infty"
    s = f"{x:.3g}"
    if "e" in s:
        mant, exp = s.split("e")
        return rf"{mant} \times 10^{{{int(exp)}}}"
    return s


def _num(x) -> str:
    """A coordinate for TikZ/pgfplots: short, deterministic."""
    x = float(x)
    s = f"{x:.6g}"
    return "0" if s in ("-0", "0") else s


def _plot(data: dict) -> dict:
    series = []
    logy = bool(data.get("logy"))
    for s in data.get("series", []):
        pts = []
        for x, y in zip(s.get("x", []), s.get("y", [])):
            if x is None or y is None:
                continue
            x, y = float(x), float(y)
            if not (math.isfinite(x) and math.isfinite(y)) or (logy and y <= 0):
                continue
            pts.append(f"({_num(x)},{_num(y)})")
        step = bool(s.get("step", False))
        if len(pts) > MAX_POINTS and not step:
            # a curve drawn from MAX_POINTS samples looks the same and keeps TeX's memory small
            stride = math.ceil(len(pts) / MAX_POINTS)
            pts = pts[::stride] + ([pts[-1]] if (len(pts) - 1) % stride else [])
        # marks, where asked, come from the cycle list: each curve its own
        opts = ["const plot", "no markers"] if step else (["mark size=1.6pt", "mark options={solid}"]
                                                          if s.get("marks") else ["no markers"])
        series.append({"label": _words(s.get("label", "")), "width": len(B.plain(s.get("label", ""))),
                       "options": ", ".join(["thick"] + opts),
                       "coords": " ".join(pts), "ys": ys_of(pts)})
    yticks = _log_ticks([y for s in series for y in s.pop("ys")]) if logy else []
    wide = max((s.pop("width") for s in series), default=0) > 14 or len(series) > 6
    # labels and legends as the key's other words: built-in text with $...$ maths typeset, the rest escaped
    return {"xlabel": _words(data.get("xlabel", "")), "ylabel": _words(data.get("ylabel", "")),
            "logy": logy, "series": series, "yticks": yticks, "legend_below": wide}


def ys_of(coords: list) -> list:
    """The y values of ``(x,y)`` coordinate strings."""
    return [float(c[1:-1].split(",")[1]) for c in coords]


#: a log axis shows at most about this many ticks (a tick per decade up to it)
MAX_LOG_TICKS = 12


def _log_ticks(ys: list) -> list:
    r"""Ticks of a log axis: every decade from below the smallest value to
    above the largest, every second (third...) decade when there are more
    than :data:`MAX_LOG_TICKS` decades. As exponents (pgfplots' ``10^{k}``).

    >>> _log_ticks([0.5, 3e-7])
    [-7, -6, -5, -4, -3, -2, -1, 0]
    >>> _log_ticks([1e4, 1e-20])[:3], len(_log_ticks([1e4, 1e-20])) <= MAX_LOG_TICKS + 1
    ([-20, -18, -16], True)
    """
    ys = [y for y in ys if y > 0 and math.isfinite(y)]
    if not ys:
        return []
    lo, hi = math.floor(math.log10(min(ys)) + 1e-12), math.ceil(math.log10(max(ys)) - 1e-12)
    hi = max(hi, lo + 1)
    step = max(1, math.ceil((hi - lo) / MAX_LOG_TICKS))
    lo = step * math.floor(lo / step)
    return list(range(lo, hi + step, step)) if (hi - lo) % step else list(range(lo, hi + 1, step))


def _network(data: dict) -> dict:
    layers = data.get("layers", [])
    tex = data.get("latex", {})
    xsep, ysep = 4.4, 1.8
    nodes, ids = [], {}
    for k, layer in enumerate(layers):
        for i, name in enumerate(layer):
            node_id = f"n{len(ids)}"
            ids[name] = node_id
            y = ((len(layer) - 1) / 2 - i) * ysep
            nodes.append({"id": node_id, "x": _num(k * xsep), "y": _num(y),
                          "tex": tex.get(name), "text": str(name), "input": k == 0})
    edges = []
    for src, dst, label in data.get("edges", []):
        if src in ids and dst in ids:
            edges.append({"src": ids[src], "dst": ids[dst], "tex": tex.get(label) if label else None,
                          "text": str(label or "")})
    return {"nodes": nodes, "edges": edges}


def _rnn(data: dict) -> dict:
    T = max(1, int(data.get("T", 3)))
    steps = list(range(1, T + 1)) if T <= 5 else [1, 2, 3, None, T]
    cells = []
    for k, t in enumerate(steps):
        cells.append({"t": t, "x": _num(2.4 * (k + 1))})
    return {"cells": cells, "T": T}


#: the look of each prediction box in turn (ground truth: solid blue): colour and dash both
#: differ, so two boxes can be told apart in grey print too
PRED_STYLES = ("predA", "predB", "predC", "predD")
#: a box label's size in cm (one capital letter in \footnotesize, with its padding)
LABEL_SIZE = (0.42, 0.42)


def _label_spots(x0, y0, x1, y1) -> list:
    """Where a box's label may go, in order of preference: just outside the
    box, beside a corner or an edge (centre of the label, TikZ anchor)."""
    w, h = LABEL_SIZE
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    return [((x0 + w / 2, y1 + h / 2), "south west"), ((x1 - w / 2, y1 + h / 2), "south east"),
            ((x1 + w / 2, y1 - h / 2), "north west"), ((x0 - w / 2, y1 - h / 2), "north east"),
            ((x1 + w / 2, y0 + h / 2), "south west"), ((x0 - w / 2, y0 + h / 2), "south east"),
            ((x0 + w / 2, y0 - h / 2), "north west"), ((x1 - w / 2, y0 - h / 2), "north east"),
            ((mx, y1 + h / 2), "south"), ((x1 + w / 2, my), "west"), ((mx, y0 - h / 2), "north"),
            ((x0 - w / 2, my), "east")]


def _inside(px, py, box, pad=0.0) -> bool:
    return box[0] - pad < px < box[2] + pad and box[1] - pad < py < box[3] + pad


def _overlaps(a, b) -> bool:
    """Two rectangles (x0, y0, x1, y1) share area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _boxes(data: dict) -> dict:
    """Boxes scaled to at most 6 cm, each prediction in its own colour and
    dash, each label outside its own box, inside no other box and clear of
    the other labels and of every box edge (the first such spot of
    :func:`_label_spots`; the least crowded one if none is clear)."""
    boxes = [b for b in data.get("boxes", []) if all(k in b for k in ("x", "y", "w", "h"))]
    if not boxes:
        return {"boxes": [], "scale": "1"}
    x0 = min(float(b["x"]) for b in boxes)
    y0 = min(float(b["y"]) for b in boxes)
    x1 = max(float(b["x"]) + float(b["w"]) for b in boxes)
    y1 = max(float(b["y"]) + float(b["h"]) for b in boxes)
    extent = max(x1 - x0, y1 - y0) or 1.0
    scale = 6.0 / extent     # the drawing is at most 6 cm across
    rects = [(float(b["x"]) * scale, float(b["y"]) * scale, (float(b["x"]) + float(b["w"])) * scale,
              (float(b["y"]) + float(b["h"])) * scale) for b in boxes]
    w, h = LABEL_SIZE
    placed: list = []
    out = []
    preds = 0
    for k, (b, r) in enumerate(zip(boxes, rects)):
        if b.get("style") == "pred":
            style = PRED_STYLES[preds % len(PRED_STYLES)]
            preds += 1
        else:
            style = "truth"
        box = {"x0": _num(r[0]), "y0": _num(r[1]), "x1": _num(r[2]), "y1": _num(r[3]),
               "label": str(b.get("label", "")), "style": style}

        def cost(spot):
            (cx, cy), _ = spot
            lab = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            c = 4 * sum(_inside(cx, cy, o) for j, o in enumerate(rects) if j != k)       # inside another box
            c += 4 * sum(_overlaps(lab, p) for p in placed)                              # on another label
            # crossing another box's edge: the label overlaps the box but is not inside it
            c += sum(_overlaps(lab, o) and not (o[0] <= lab[0] and lab[2] <= o[2] and o[1] <= lab[1]
                                                 and lab[3] <= o[3]) for j, o in enumerate(rects) if j != k)
            return c

        spots = _label_spots(*r)
        best = min(range(len(spots)), key=lambda i: (cost(spots[i]), i))
        (cx, cy), anchor = spots[best]
        placed.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        box.update({"lx": _num(cx), "ly": _num(cy), "anchor": "center"})
        out.append(box)
    return {"boxes": out, "scale": _num(scale)}


def _attention(data: dict) -> dict:
    """Columns of the attention diagram: source positions 1..Tx (1, 2, dots,
    Tx when Tx > 3), each with its x coordinate."""
    Tx = max(1, int(data.get("Tx", 3)))
    labels = [str(j) for j in range(1, Tx + 1)] if Tx <= 3 else ["1", "2", None, "T_{x}"]
    cols = [{"j": j, "x": _num(2.1 * k)} for k, j in enumerate(labels)]
    return {"cols": cols, "right": _num(2.1 * (len(cols) - 1)), "mid": _num(1.05 * (len(cols) - 1))}


_FIGURES = {"plot": _plot, "network": _network, "unrolled-rnn": _rnn, "boxes": _boxes, "attention": _attention}


def block_context(b) -> dict:
    """The template context of one block: ``{"kind": ..., ...}``."""
    if isinstance(b, B.Heading):
        return {"kind": "heading", "text": _words(b.text), "level": b.level}
    if isinstance(b, B.Prose):
        return {"kind": "prose", "parts": [_cell(p) for p in b.parts]}
    if isinstance(b, B.Equations):
        return _equations(b)
    if isinstance(b, B.EqRow):
        return _equations(B.Equations((b,)))
    if isinstance(b, B.Table):
        return _table(b)
    if isinstance(b, B.Checks):
        return _checks(b)
    if isinstance(b, B.Figure) and b.kind in _FIGURES:
        ctx = _FIGURES[b.kind](b.data or {})
        return {"kind": "figure-" + b.kind, "caption": _words(b.caption) if b.caption else "", "fig": ctx}
    # anything else still shows, as its plain-text rendering
    return {"kind": "verbatim", "text": B.to_text([b])}


def _contexts(blocks, question: str = "") -> list:
    blocks = list(blocks)
    out = []
    if question and blocks and isinstance(blocks[0], B.Prose) and blocks[0].parts == (question.strip(),):
        out.append({"kind": "question", "text": _words(B.question_text(question))})
        blocks = blocks[1:]
    return out + [block_context(b) for b in blocks]


def render_blocks(blocks, question: str = "") -> str:
    """The LaTeX body of a list of blocks (no preamble)."""
    return make_env().get_template("partials/blocks.tex.j2").render(blocks=_contexts(blocks, question))


def problem_context(problem, solution, number: int | None = None, appendix: bool = False) -> dict:
    """What the section template of one problem needs; in the key's appendix
    the question is left out (the first part restates it, typeset)."""
    blocks = solution.blocks()
    question = problem.question or ""
    if appendix and question and blocks and isinstance(blocks[0], B.Prose) and blocks[0].parts == (question.strip(),):
        blocks, question = blocks[1:], ""
    return {
        "id": problem.id,
        "title": problem.title or problem.id,
        "source": problem.source or "",
        "number": number,
        "letter": None,
        "blocks": _contexts(blocks, question),
    }


def solution_document(solution) -> str:
    """A standalone LaTeX document with the worked solution of one problem."""
    problem = solution.problem
    return make_env().get_template("solution.tex.j2").render(
        title=problem.title or problem.id, problem=problem_context(problem, solution))


# ---------------------------------------------------------------------------
# Jupyter


def blocks_to_latex_fragment(blocks) -> str:
    r"""Blocks as LaTeX a notebook renders (MathJax): maths in ``$...$`` and
    ``$$\begin{aligned}...\end{aligned}$$``, prose as plain text.

    >>> from derive.typeset import blocks as B
    >>> print(blocks_to_latex_fragment([B.Equations((B.EqRow(B.Math("z_{1}", "z1"),
    ...     (B.Math("w_{1} x_{1}", "w1*x1"), B.Math("0.3", "0.3"))),))]))
    $$\begin{aligned}z_{1} &= w_{1} x_{1} = 0.3\end{aligned}$$
    """
    out = []
    for b in blocks:
        if isinstance(b, B.Heading):
            out.append("$$" + _mathjax_words(b.text, r"\textbf") + "$$")
        elif isinstance(b, B.Prose):
            out.append("".join(f"${p.tex}$" if isinstance(p, B.Math) else _prose_words(p) for p in b.parts))
        elif isinstance(b, B.Equations):
            rows = []
            for r in b.rows:
                rel = RELATIONS.get(r.relation, r.relation)
                row = f"{r.lhs.tex} &{rel} " + " = ".join(m.tex for m in r.rhs)
                if r.note:
                    row += r" \quad \text{(}" + _mathjax_words(r.note) + r"\text{)}"
                rows.append(row)
            out.append(r"$$\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$$")
        elif isinstance(b, B.Table):
            ncols = max([len(b.header)] + [len(r) for r in b.rows])

            def cell(c):
                return c.tex if isinstance(c, B.Math) else _mathjax_words(c)

            lines = [" & ".join(cell(c) for c in b.header) + r" \\ \hline"]
            lines += [" & ".join(cell(c) for c in r) + r" \\" for r in b.rows]
            out.append(rf"$$\begin{{array}}{{{'l' * ncols}}}" + " ".join(lines) + r"\end{array}$$")
        else:
            out.append(_plain(B.to_text([b])))
    return "\n\n".join(out)


def _plain(text: str) -> str:
    # MathJax would start maths at a dollar sign of prose
    return text.replace("\\", "\\\\").replace("$", r"\$")


def _prose_words(text) -> str:
    """Prose for MathJax: a :class:`~derive.typeset.blocks.Tex`'s maths kept as ``$...$``, words escaped."""
    if not isinstance(text, B.Tex):
        return _plain(str(text))
    return "".join(f"${p}$" if k % 2 else _plain(p) for k, p in enumerate(str(text).split("$")))


def _mathjax_words(text, command: str = r"\text") -> str:
    """Words inside display maths: each run of words in ``\\text{...}``, a
    :class:`~derive.typeset.blocks.Tex`'s maths as maths."""
    pieces = str(text).split("$") if isinstance(text, B.Tex) else [str(text)]
    return "".join(p if k % 2 else (rf"{command}{{{_mathjax_text(p)}}}" if p else "")
                   for k, p in enumerate(pieces))


def _mathjax_text(text: str) -> str:
    return re.sub(r"([\\{}$&#%_^~])", lambda m: {"\\": r"\backslash ", "~": r"\sim ", "^": r"\hat{}"}.get(
        m.group(1), "\\" + m.group(1)), text)


# ---------------------------------------------------------------------------
# Compiling


def tex_engine() -> str | None:
    """The pdfLaTeX executable, or None."""
    return shutil.which("pdflatex")


def _latex_env() -> dict:
    env = dict(os.environ)
    env.update({
        "openin_any": "p",          # no reading outside the build folder and TeX's own tree
        "openout_any": "p",
        "shell_escape": "f",
        "SOURCE_DATE_EPOCH": "0",   # the same PDF for the same .tex
        "FORCE_SOURCE_DATE": "1",
    })
    return env


_LATER_ERROR = re.compile(r"! (?=[A-Z])(?:LaTeX Error|Package|Undefined|Missing|Extra|Emergency|Text line|"
                          r"File|Paragraph|Argument|Illegal|Double|Misplaced|Too many|Use of|Dimension|"
                          r"Font|TeX capacity|Incomplete|Bad|Interruption|You can't|Display|Improper|"
                          r"Number too big|Arithmetic|Infinite glue)")


def first_error(log: str, name: str = "document") -> LatexError:
    r"""The first error of a pdfLaTeX log as one readable message.

    >>> str(first_error("(./a.tex! Undefined control sequence.\nl.7 x", "a"))
    "LaTeX: a.tex line 7: Undefined control sequence (near 'x')"
    """
    lines = log.splitlines()
    for k, line in enumerate(lines):
        # TeX starts an error line with "! ", but after other output on the
        # same line (a file being opened) the "! " comes later in it
        m = re.match(r"! ", line) or _LATER_ERROR.search(line)
        if not m:
            continue
        what = line[m.start() + 2:].strip().rstrip(".")
        where = f"{name}.tex"
        for follow in lines[k + 1:k + 12]:
            m = re.match(r"l\.(\d+) ?(.*)", follow)
            if m:
                where = f"{name}.tex line {m.group(1)}"
                near = m.group(2).strip()
                if near:
                    what += f" (near {near[-40:]!r})"
                break
        return LatexError(f"LaTeX: {where}", what)
    return LatexError(f"LaTeX: {name}.tex", "pdfLaTeX failed without an error message in its log")


def compile_pdf(tex_source: str, pdf_path, *, name: str = "document", timeout: float = LATEX_TIMEOUT,
                log_path=None) -> Path:
    """Compile ``tex_source`` in a temporary folder and move the PDF to
    ``pdf_path`` only if pdfLaTeX succeeded; a failure raises
    :class:`LatexError` and leaves any earlier ``pdf_path`` untouched.
    No shell escape, ``openin_any=p``, a timeout per run. The last run's log
    is copied to ``log_path`` if given (also after a failure)."""
    engine = tex_engine()
    if engine is None:
        raise NoTexError("pdf", f"no TeX engine (pdflatex) found; {TEX_HINT}")
    pdf_path = Path(pdf_path)
    with tempfile.TemporaryDirectory(prefix="derive-latex-") as tmp:
        src = Path(tmp) / f"{name}.tex"
        src.write_text(tex_source, encoding="utf-8")
        cmd = [engine, "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
               f"-jobname={name}", src.name]
        log = ""
        for _ in range(MAX_RUNS):
            try:
                proc = subprocess.run(cmd, cwd=tmp, env=_latex_env(), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise LatexError(f"LaTeX: {name}.tex", f"pdfLaTeX did not finish within {timeout:g} s") from None
            logfile = Path(tmp) / f"{name}.log"
            log = logfile.read_text(encoding="latin-1") if logfile.exists() else proc.stdout.decode("latin-1")
            if log_path is not None:
                _write_atomic(Path(log_path), log.encode("latin-1"))
            if proc.returncode != 0 or not (Path(tmp) / f"{name}.pdf").exists():
                raise first_error(log, name)
            if not re.search(r"Rerun to get|Label\(s\) may have changed", log):
                break
        _write_atomic(pdf_path, (Path(tmp) / f"{name}.pdf").read_bytes())
    return pdf_path


def _write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file whole or not at all (see :func:`derive.outfile.write`)."""
    from derive.outfile import write

    write(path, data)


def safe_stem(name: str) -> str:
    """A file name for an id: letters, digits, ``._-`` only.

    >>> safe_stem("my net (v2)")
    'my_net_v2'
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return stem or "solution"


def write_solution(solution, fmt: str, out: str | None = None) -> Path:
    """``derive solve --format tex|pdf``: the standalone document of one
    problem, at ``out`` or ``output/<id>.tex|pdf``."""
    stem = safe_stem(solution.problem.id)
    path = Path(out) if out else Path("output") / f"{stem}.{fmt}"
    check_file(path)              # a folder or a file in the way: refused before the PDF is built
    tex = solution_document(solution)
    if fmt == "tex":
        _write_atomic(path, tex)
    elif fmt == "pdf":
        compile_pdf(tex, path, name=stem)
    else:
        raise UserError("--format", f"unknown document format {fmt!r}")
    print(f"wrote {path}")
    return path
