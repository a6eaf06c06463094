"""The answer key and worked solutions as self-contained web pages.

The HTML renderer reads the same blocks as the LaTeX one (:mod:`derive.typeset.blocks`)
and mirrors its documents: ``templates/html/key.html.j2`` follows
``key.tex.j2``, ``solution.html.j2`` follows ``solution.tex.j2``, one partial per
block kind. Maths becomes MathML here (:mod:`derive.typeset.mathml`), figures become
inline SVG compiled from the PDF's own TikZ (:mod:`derive.document.svgfig`), the style
sheet is inlined: a page loads nothing from anywhere, and says so to the
browser with a Content-Security-Policy that forbids it.

>>> from derive.typeset import blocks as B
>>> page = render_blocks([B.Heading("Forward pass"),
...     B.Equations((B.EqRow(B.Math("z_{1}", "z1"), (B.Math("0.3", "0.3"),)),))])
>>> "<h3>Forward pass</h3>" in page and "<mn>0.3</mn>" in page
True
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from derive import __version__
from derive.typeset import blocks as B
from derive.document import render
from derive.typeset.mathml import mathml
from derive.outfile import check_file
from derive.document.render import RELATIONS, _write_atomic, safe_stem, template_dir
from derive.document.svgfig import figure_svgs

#: column letters of a LaTeX table spec, as CSS
ALIGN = {"l": "left", "c": "center", "r": "right"}


@lru_cache(maxsize=1)
def make_env() -> jinja2.Environment:
    """The Jinja2 environment of derive's web pages: ``templates/html/``,
    HTML autoescaping, undefined names are errors. Maths arrives as
    :class:`~markupsafe.Markup` (MathML made by :func:`derive.typeset.mathml.mathml`);
    the filters ``math`` (LaTeX maths) and ``markup`` (derive's own words
    with ``$...$`` maths) are the LaTeX templates' filters of the same names.

    >>> make_env().from_string("{{ x }}").render(x="<b>")
    '&lt;b&gt;'
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir() / "html")),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["math"] = lambda tex, display=False: _math(str(tex), display)
    env.filters["markup"] = markup
    return env


def markup(text) -> Markup:
    """derive's own words with ``$...$`` maths (never user text) for the page.

    >>> str(markup("a < $b$"))
    'a &lt; <math display="inline"><mrow><mi>b</mi></mrow></math>'
    """
    return Markup("".join(mathml(p) if k % 2 else str(escape(p))
                          for k, p in enumerate(str(text or "").split("$"))))


def _math(tex: str, display: bool = False) -> Markup:
    return Markup(mathml(tex, display))


def words(text) -> Markup:
    """Words for the page: derive's own words with ``$...$`` maths (a
    ``blocks.Tex``) with that maths typeset; any other text, user text above
    all, escaped whole.

    >>> str(words("a < b, $x$"))
    'a &lt; b, $x$'
    """
    tex_type = getattr(B, "Tex", None)
    if tex_type is not None and isinstance(text, tex_type):
        return markup(text)
    return escape("" if text is None else str(text))


def _question(question):
    """A problem's question stripped, keeping it ``blocks.Tex`` if it was."""
    q = question.strip()
    return type(question)(q) if type(question) is not str else q


def _cell(c) -> dict:
    if isinstance(c, B.Math):
        return {"math": _math(c.tex)}
    return {"math": None, "text": words(c)}


def _equations(b: B.Equations) -> dict:
    rows = []
    for r in b.rows:
        rows.append({"lhs": _math(r.lhs.tex), "rel": _math(RELATIONS.get(r.relation, r.relation)),
                     "rhs": [_math(m.tex) for m in r.rhs], "note": words(r.note) if r.note else ""})
    return {"kind": "equations", "rows": rows}


def _table(b: B.Table) -> dict:
    header = [_cell(c) for c in b.header]
    rows = [[_cell(c) for c in r] for r in b.rows]
    ncols = max([len(header)] + [len(r) for r in rows])
    letters = [ch for ch in b.align if ch in ALIGN]
    align = [ALIGN[ch] for ch in letters] if len(letters) == ncols else ["center"] * ncols
    return {"kind": "table", "caption": words(b.caption) if b.caption else "", "header": header, "rows": rows,
            "align": align}


def _checks(b: B.Checks) -> dict:
    # the LaTeX context already says what each check measured; only its
    # number (LaTeX) is turned into MathML
    ctx = render.block_context(b)
    for e in ctx["entries"]:
        e["value"] = _math(e["value"]) if e["value"] else ""
    return ctx


#: block type -> its HTML context (figures, which need their SVG, aside)
BUILDERS = {
    B.Heading: lambda b: {"kind": "heading", "text": words(b.text), "level": b.level},
    B.Prose: lambda b: {"kind": "prose", "parts": [_cell(p) for p in b.parts]},
    B.Equations: _equations,
    B.EqRow: lambda b: _equations(B.Equations((b,))),
    B.Table: _table,
    B.Checks: _checks,
}


def block_context(b, svg=None) -> dict:
    """The HTML template context of one block: ``{"kind": ..., ...}``; a
    figure's drawing is ``svg``; a block of a type this renderer does not
    know still shows, as its plain-text rendering."""
    if isinstance(b, B.Figure):
        return {"kind": "figure", "svg": Markup(svg) if svg else None,
                "caption": words(b.caption) if b.caption else "", "text": B.to_text([b]),
                "label": getattr(B, "plain", str)(b.caption) if b.caption else B.to_text([b])}
    build = BUILDERS.get(type(b))
    return build(b) if build else {"kind": "verbatim", "text": B.to_text([b])}


def _contexts(blocks, question: str = "") -> list:
    """Contexts of a problem's blocks; the restated question (the first
    paragraph, when it is the problem's question) gets a kind of its own,
    as in the LaTeX key."""
    blocks = list(blocks)
    out = []
    if question and blocks and isinstance(blocks[0], B.Prose) and blocks[0].parts == (question.strip(),):
        out.append({"kind": "question", "text": words(_question(question))})
        blocks = blocks[1:]
    figures = [b for b in blocks if isinstance(b, B.Figure)]
    svgs = dict(zip(map(id, figures), figure_svgs(figures)))
    return out + [block_context(b, svgs.get(id(b))) for b in blocks]


def render_blocks(blocks, question: str = "") -> str:
    """The HTML of a list of blocks (a fragment, no page around it)."""
    return make_env().get_template("partials/blocks.html.j2").render(blocks=_contexts(blocks, question))


def figure_html(figure: B.Figure) -> str:
    """One figure block as HTML: its drawing as inline SVG, and its caption
    (the checking page shows a question's figure with this)."""
    (svg,) = figure_svgs([figure])
    return make_env().get_template("partials/figure.html.j2").render(b=block_context(figure, svg))


def problem_context(problem, solution, number: int | None = None, appendix: bool = False) -> dict:
    """What the section template of one problem needs: the LaTeX key's
    context of the problem, with the blocks as HTML; in the key's appendix
    the question is left out, as in the PDF (the answers restate it)."""
    ctx = dict(render.problem_context(problem, solution, number, **({"appendix": True} if appendix else {})))
    blocks, question = solution.blocks(), problem.question or ""
    if appendix and question and blocks and isinstance(blocks[0], B.Prose) and blocks[0].parts == (question.strip(),):
        blocks, question = blocks[1:], ""
    ctx["anchor"] = "problem-" + safe_stem(problem.id)
    ctx["blocks"] = _contexts(blocks, question)
    return ctx


def solution_document(solution, title: str | None = None) -> str:
    """A self-contained web page with the worked solution of one problem
    (``title``: the page's title, default the problem's)."""
    problem = solution.problem
    return make_env().get_template("solution.html.j2").render(
        title=title or problem.title or problem.id, version=__version__,
        problem=problem_context(problem, solution))


def key_document(problems: list, errata: list | None = None, *, with_errata: bool = True) -> str:
    """The answer key for ``problems`` as one self-contained web page: the
    context of the LaTeX key (:func:`derive.document.key.key_context`), with every
    block as HTML, through templates that mirror the LaTeX ones."""
    from derive.document.key import key_context

    ctx = key_context(problems, errata, with_errata=with_errata, block_contexts=_contexts,
                      problem_context=problem_context)
    anchors = {c["id"]: c["anchor"] for c in ctx["problems"]}
    for seed in ctx["coverage"]:
        for row in seed["rows"]:
            row["appendix"] = anchors.get(row["id"], "")
    return make_env().get_template("key.html.j2").render(title="Answer key", **ctx)


def write_key(out_dir="output", only=None) -> Path:
    """``derive key --format html``: ``DIR/answer-key.html``."""
    from derive.document.key import select

    path = check_file(Path(out_dir) / "answer-key.html")
    _write_atomic(path, key_document(select(only)))
    return path


def write_solution(solution, out: str | None = None) -> Path:
    """``derive solve --format html``: one problem's page, at ``out`` or
    ``output/<id>.html``."""
    path = check_file(Path(out) if out else Path("output") / f"{safe_stem(solution.problem.id)}.html")
    _write_atomic(path, solution_document(solution))
    return path
