r"""Variants as Moodle XML: one Cloze (embedded answers) question per variant.

The file follows Moodle's question XML format (``question/format/xml``): a
``<question type="category">`` naming a category after the problem, then one
``<question type="cloze">`` per variant with its ``<name>``, its
``<questiontext format="html">`` (the statement, maths between ``\(`` and
``\)`` for Moodle's MathJax filter, then one embedded numerical field per
asked number, ``{1:NUMERICAL:=VALUE:TOLERANCE}``, the tolerance absolute as
Moodle reads it) and the worked key as ``<generalfeedback>``, which Moodle
shows after the attempt.

>>> from derive.problems import load
>>> from derive.document.variants import draw_variants
>>> from derive.export import Policy, collect
>>> p = load("mlp-relu-regression")
>>> items = collect(p, draw_variants(p, 1, seed=3), seed=3, policy=Policy(1e-3, 1e-9))
>>> xml = moodle_xml(p, items, Policy(1e-3, 1e-9))
>>> xml.count('<question type="cloze">'), cloze_field(0.1875, 0.0001875)
(1, '{1:NUMERICAL:=0.1875:0.0001875}')
"""
from __future__ import annotations

from lxml import etree

from derive.export.html import blocks_html, mathjax, text

#: Moodle's default penalty for a wrong try in adaptive mode (a third)
PENALTY = "0.3333333"


def number(x: float, digits: int = 17) -> str:
    """A number as Moodle's Cloze parser reads it (its ``NUMBER_REGEX``:
    digits, a point, an exponent; no ``+``, no ``inf``), to ``digits``
    significant digits (17: exact).

    >>> number(-0.175), number(1e-07), number(2.0), number(0.00035999999999999997, 12)
    ('-0.175', '1e-07', '2.0', '0.00036')
    """
    out = repr(float(x)) if digits >= 17 else f"{float(x):.{digits}g}"
    if out in ("inf", "-inf", "nan"):
        raise ValueError(f"{out} cannot be a Moodle answer")
    return out


def cloze_field(value: float, tol: float) -> str:
    """One numerical sub-question worth one mark: right within ``tol``
    (written to 12 significant digits, so 0.00036 is not 0.00035999999999999997)."""
    return f"{{1:NUMERICAL:={number(value)}:{number(tol, 12)}}}"


def category_path(problem) -> str:
    """``$course$/top/TITLE``; a ``/`` inside the title doubled, as Moodle
    escapes it in category paths."""
    name = (problem.title or problem.id).replace("/", "//")
    return f"$course$/top/{name}"


def question_html(item, policy) -> str:
    """The statement, then a table of the asked quantities with their fields."""
    rows = [f"<tr><td>{mathjax(q.tex)}</td><td>{cloze_field(q.value, q.tolerance)}</td></tr>"
            for q in item.quantities]
    return "\n".join([
        blocks_html(item.statement),
        "<h3>Your answers</h3>",
        f"<p>{text(policy.note())}</p>",
        "<table>", "<tr><th>quantity</th><th>answer</th></tr>", *rows, "</table>",
    ])


def _text_element(parent, tag: str, content: str, fmt: str | None = "html"):
    el = etree.SubElement(parent, tag, format=fmt) if fmt else etree.SubElement(parent, tag)
    etree.SubElement(el, "text").text = content
    return el


def moodle_xml(problem, items: list, policy) -> str:
    """The Moodle XML document of ``items`` (:func:`derive.export.collect`)."""
    quiz = etree.Element("quiz")
    quiz.append(etree.Comment(f" {problem.id}: {len(items)} variants, one Cloze question each "))
    cat = etree.SubElement(quiz, "question", type="category")
    _text_element(cat, "category", category_path(problem), fmt=None)
    _text_element(cat, "info", text(f"Randomised variants of {problem.title or problem.id}"))
    title = problem.title or problem.id
    for item in items:
        q = etree.SubElement(quiz, "question", type="cloze")
        _text_element(q, "name", f"{title}, variant {item.number:02d}", fmt=None)
        _text_element(q, "questiontext", question_html(item, policy))
        _text_element(q, "generalfeedback", blocks_html(item.key))
        etree.SubElement(q, "penalty").text = PENALTY
        etree.SubElement(q, "hidden").text = "0"
        etree.SubElement(q, "idnumber").text = f"{problem.id}-variant-{item.number:02d}"
    return etree.tostring(quiz, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode("utf-8")
