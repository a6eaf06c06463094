r"""A worked solution's blocks as an HTML fragment for a learning platform.

Moodle's MathJax filter and Canvas typeset maths written between ``\(``
and ``\)`` (inline) or ``\[`` and ``\]`` (display), so maths travels as
the LaTeX of SymPy's printer inside those delimiters; the ``math``
argument swaps in another typesetter (the checking server passes MathML).
Prose is plain text and is escaped: HTML special characters, braces (so
that no prose can open a Moodle Cloze field ``{1:NUMERICAL:...}``) and
maths delimiters (so a dollar sign in a question is not typeset).

>>> from derive.typeset import blocks as B
>>> print(blocks_html([B.prose("If ", B.Math("x_{1}", "x1"), " < 2 {1:NM:=3}")]))
<p>If \(x_{1}\) &lt; 2 &#123;1:NM:=3&#125;</p>
>>> print(blocks_html([B.Equations((B.EqRow(B.Math("z", "z"), (B.Math("a", "a"), B.Math("0.3", "0.3"))),))]))
<p>\[\begin{aligned}z &amp;= a = 0.3\end{aligned}\]</p>
"""
from __future__ import annotations

import html

from derive.typeset import blocks as B
from derive.document.render import RELATIONS, _mathjax_text


def mathjax(tex: str, display: bool = False) -> str:
    r"""Maths for MathJax: ``\(tex\)`` or ``\[tex\]``, HTML-escaped."""
    body = html.escape(tex, quote=False)
    return rf"\[{body}\]" if display else rf"\({body}\)"


def text(s: str) -> str:
    r"""Prose as HTML that neither a browser, MathJax nor Moodle's Cloze
    parser reads as markup.

    >>> text(r"costs $$5 \(or\) <b>")
    'costs $<span></span>$5 \\<span></span>(or\\<span></span>) &lt;b&gt;'
    """
    out = html.escape(str(s), quote=False).replace("{", "&#123;").replace("}", "&#125;")
    # MathJax does not match a delimiter across an element boundary
    for delim in ("$$", "\\(", "\\)", "\\[", "\\]"):
        out = out.replace(delim, delim[0] + "<span></span>" + delim[1])
    return out


def _cell(c, math) -> str:
    return math(c.tex) if isinstance(c, B.Math) else text(str(c))


def blocks_html(blocks, math=mathjax, figure=None) -> str:
    """The HTML of ``blocks``. ``math(tex, display)`` typesets maths;
    ``figure(block)`` returns the HTML of a figure (default: none; the
    statement gives every number a drawing carries)."""
    out = []
    for b in blocks:
        if isinstance(b, B.Heading):
            tag = "h3" if b.level <= 2 else "h4"
            out.append(f"<{tag}>{text(b.text)}</{tag}>")
        elif isinstance(b, B.Prose):
            out.append("<p>" + "".join(_cell(p, math) for p in b.parts) + "</p>")
        elif isinstance(b, B.Equations):
            rows = []
            for r in b.rows:
                row = f"{r.lhs.tex} &{RELATIONS.get(r.relation, r.relation)} " + " = ".join(m.tex for m in r.rhs)
                if r.note:
                    row += rf" \quad \text{{({_mathjax_text(r.note)})}}"
                rows.append(row)
            out.append("<p>" + math(r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}", True) + "</p>")
        elif isinstance(b, B.Table):
            lines = ["<table>"]
            if b.caption:
                lines.append(f"<caption>{text(b.caption)}</caption>")
            lines.append("<tr>" + "".join(f"<th>{_cell(c, math)}</th>" for c in b.header) + "</tr>")
            lines += ["<tr>" + "".join(f"<td>{_cell(c, math)}</td>" for c in r) + "</tr>" for r in b.rows]
            lines.append("</table>")
            out.append("\n".join(lines))
        elif isinstance(b, B.Figure):
            if figure is not None:
                out.append(figure(b))
        elif isinstance(b, B.Checks):
            out.append("<p>" + "<br>".join(text(line.strip()) for line in B.to_text([b]).splitlines()) + "</p>")
    return "\n".join(out)
