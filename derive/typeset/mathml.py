r"""MathML from LaTeX, made on our side: no network, no script in the browser.

Browsers render MathML natively, so a page of derive's maths needs no
renderer at all. :func:`mathml` converts the LaTeX that derive's printer
writes with ``latex2mathml`` and serialises the element tree itself, so that
text from a user (a ``\text{...}`` in an answer, a name in a spec) is
XML-escaped: ``latex2mathml.converter.convert`` would pass ``<`` and ``&``
inside ``\text`` through raw.

>>> mathml(r"w^{1}_{12}")
'<math display="inline"><mrow><msubsup><mi>w</mi><mrow><mn>12</mn></mrow><mrow><mn>1</mn></mrow></msubsup></mrow></math>'
>>> "<script>" in mathml(r"\text{<script>}")
False
"""
from __future__ import annotations

import re
from functools import lru_cache
from xml.etree.ElementTree import Element, SubElement, tostring

from latex2mathml.converter import convert_to_element

#: the most LaTeX one call converts (a key's largest matrix is far below)
MAX_TEX = 200_000

_ENTITY = re.compile(r"&#x([0-9A-Fa-f]+);")


def _chars(text: str | None) -> str | None:
    # latex2mathml stores characters as entity strings ("&#x1D416;") and
    # unescapes the serialised tree; we decode them here and let the
    # serialiser escape instead
    if not text:
        return text
    return _ENTITY.sub(lambda m: chr(int(m.group(1), 16)), text)


#: elements taller than a line: fences around them must stretch
TALL = {"mtable", "mfrac", "msqrt", "mroot", "munderover", "munder", "mover"}
#: operators whose limits go below and above in display maths, beside them inline
BIG = {"\u2211", "\u220f", "\u22c3", "\u22c2", "max", "min", "lim", "sup", "inf", "argmax", "argmin"}
LIMITS = {"msub": "munder", "msup": "mover", "msubsup": "munderover"}
#: signs that are unary where nothing stands before them (as TeX reads ``(-0.2)``)
SIGNS = {"+", "\u2212", "-", "\u00b1"}


def _clean(el: Element) -> None:
    el.text = _chars(el.text)
    el.tail = _chars(el.tail)
    for k, v in list(el.attrib.items()):
        el.attrib[k] = _chars(v)
    previous = None
    for child in el:
        _clean(child)
        if child.tag == "mo":
            _space(child, previous)
        previous = child
    if el.tag in LIMITS and len(el) and (el[0].text or "") in BIG and el[0].tag in ("mo", "mi"):
        # \sum_{j=1}^{m}: limits under and over in a display, as TeX sets them
        el.tag = LIMITS[el.tag]
        el[0].tag = "mo"
        el[0].set("movablelimits", "true")
        if len(el[0].text) > 1:          # max, lim: a name, a thin space after it
            el[0].set("lspace", "0")
            el[0].set("rspace", "0.1667em")
    if len(el) >= 2 and el[0].get("fence") == "true" and not any(d.tag in TALL for d in el.iter()):
        # Chromium draws a stretchy parenthesis from glyph parts with wide
        # side bearings; around a flat row the plain glyph is the right one
        el[0].set("stretchy", "false")
        if el[-1].get("fence") == "true":
            el[-1].set("stretchy", "false")


def _space(mo: Element, previous: Element | None) -> None:
    """Spacing as TeX sets it, where the browser's operator table differs:
    fences hug their contents, a sign after an opening or a relation is
    unary, and an operator name (``\\operatorname{ReLU}``) is a name."""
    text = mo.text or ""
    if mo.get("fence") == "true":
        mo.set("lspace", "0")
        mo.set("rspace", "0")
    elif text in SIGNS and (previous is None or (previous.tag == "mo" and previous.get("form") != "postfix")):
        mo.set("lspace", "0")
        mo.set("rspace", "0")
    elif len(text) > 1 and text.isalpha():
        mo.tag = "mi"


_ENV = re.compile(r"\\(begin|end)\{[a-z*]+\}|\\\\|&")


def _aligned(tex: str) -> str:
    r"""Rows aligned at ``&`` (``aligned``, or bare as in LaTeX's ``align*``),
    which the converter does not know, as a two-column array.

    >>> _aligned(r"z &= a \\ h &= b"), _aligned(r"\begin{bmatrix} 1 & 2 \end{bmatrix}")
    ('\\begin{array}{rl}z &= a \\\\ h &= b\\end{array}', '\\begin{bmatrix} 1 & 2 \\end{bmatrix}')
    """
    for env, cols in (("aligned", "rl"), ("align*", "rl"), ("gathered", "c")):
        tex = tex.replace(rf"\begin{{{env}}}", rf"\begin{{array}}{{{cols}}}").replace(rf"\end{{{env}}}", r"\end{array}")
    depth, top = 0, set()
    for m in _ENV.finditer(tex):
        if m.group(1) == "begin":
            depth += 1
        elif m.group(1) == "end":
            depth -= 1
        elif depth == 0:
            top.add(m.group(0))
    if "&" in top:
        return r"\begin{array}{rl}" + tex + r"\end{array}"
    if top:
        return r"\begin{array}{l}" + tex + r"\end{array}"
    return tex


@lru_cache(maxsize=4096)
def mathml(tex: str, display: bool = False) -> str:
    r"""The MathML of ``tex`` (inline, or ``display`` for a block), as a string.

    The ``xmlns`` attribute is left out: in HTML a ``<math>`` element is
    MathML by its name. LaTeX that cannot be converted is shown as text.

    >>> mathml(r"\frac{a}{b}", display=True)
    '<math display="block"><mrow><mfrac><mrow><mi>a</mi></mrow><mrow><mi>b</mi></mrow></mfrac></mrow></math>'
    >>> mathml(r"\left( a")
    '<math display="inline"><mtext>\\left( a</mtext></math>'
    """
    tex = tex[:MAX_TEX]
    try:
        root = convert_to_element(_aligned(tex), display="block" if display else "inline")
        _clean(root)
    except Exception:  # noqa: BLE001 - any LaTeX the converter does not know still shows
        root = Element("math", {"display": "block" if display else "inline"})
        SubElement(root, "mtext").text = tex
    root.attrib.pop("xmlns", None)
    # no "\u2061" and friends of uncertain width: the serialiser writes
    # characters as they are, and the page is UTF-8
    return tostring(root, encoding="unicode", short_empty_elements=True)
