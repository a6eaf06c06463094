"""A worked solution as a list of plain blocks, read by every renderer.

Problems produce blocks (prose, equation chains, tables, figures, checks);
the terminal renderer (:func:`to_text`) and the LaTeX templates read the same
list, so the key, the terminal and a notebook always show the same thing.
Maths travels as :class:`Math` holding both its LaTeX (from SymPy's printer)
and its plain-text form; prose is plain text that renderers escape.

>>> print(to_text([Heading("Forward pass"), Equations((EqRow(Math("z_{1}", "z1"),
...     (Math("0.3", "0.3"),)),))]))
Forward pass
------------
  z1 = 0.3
"""
from __future__ import annotations

from dataclasses import dataclass, field


class Tex(str):
    r"""derive's own words with ``$...$`` maths, for headings, captions, notes and
    table cells (renderers typeset the maths). Never built from user text,
    which stays a plain ``str`` and is escaped whole. ``plain`` is how a
    terminal shows it, when a rough reading of the LaTeX would not do.

    >>> Tex("$T = 3$ steps") == "$T = 3$ steps"
    True
    >>> plain(Tex("$a_{n} = W_{n} v$", plain="a_n = W_n @ v"))
    'a_n = W_n @ v'
    """

    def __new__(cls, text: str, plain: str | None = None):
        obj = super().__new__(cls, text)
        obj.plain_text = plain
        return obj


@dataclass(frozen=True)
class Math:
    tex: str
    text: str


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Prose:
    """A paragraph: a tuple of str (escaped by renderers) and Math parts."""

    parts: tuple


@dataclass(frozen=True)
class EqRow:
    """``lhs = rhs[0] = rhs[1] = ...``, optionally with a short note."""

    lhs: Math
    rhs: tuple
    note: str = ""
    relation: str = "="


@dataclass(frozen=True)
class Equations:
    rows: tuple


@dataclass(frozen=True)
class Table:
    header: tuple                # str or Math cells
    rows: tuple                  # tuples of str or Math cells
    caption: str = ""
    align: str = ""              # LaTeX column spec, e.g. "lrr"; default all centred


@dataclass(frozen=True)
class Figure:
    """A generated figure: ``kind`` selects the template, ``data`` is plain data.

    Kinds and their data (all numbers are plain floats, computed):

    * ``plot``: ``{"xlabel": str, "ylabel": str, "logy": bool,
      "series": [{"label": str, "x": [float], "y": [float]}]}``
      (optionally ``"step": True`` for a staircase such as a PR curve);
    * ``network``: ``{"layers": [[name, ...], ...], "edges": [[src, dst, label], ...],
      "latex": {name: latex}}``: a layered drawing of a graph;
    * ``unrolled-rnn``: ``{"T": int}``;
    * ``boxes``: ``{"boxes": [{"label": str, "x": float, "y": float, "w": float,
      "h": float, "style": "truth"|"pred"}]}``.
    """

    kind: str
    data: dict = field(hash=False, compare=False, default_factory=dict)
    caption: str = ""
    label: str = ""


@dataclass(frozen=True)
class Checks:
    """The verification line: the contract's ``checks`` records."""

    items: tuple


#: an update rule's name in words, and its hyper-parameters as letters
RULE_WORDS = {"sgd": "stochastic gradient descent", "momentum": "SGD with momentum",
              "nesterov": "SGD with Nesterov momentum", "adagrad": "Adagrad", "rmsprop": "RMSprop", "adam": "Adam"}
HYPER_TEX = {"lr": r"\eta", "momentum": r"\mu", "alpha": r"\alpha", "beta1": r"\beta_1", "beta2": r"\beta_2",
             "eps": r"\epsilon", "weight_decay": r"\lambda", "dampening": r"\tau", "lr_decay": r"\text{lr decay}",
             "initial_accumulator_value": r"G_0"}


def rule_prose(optimizer) -> Prose:
    """``Update rule: stochastic gradient descent, η = 0.5.`` from an optimizer's
    ``describe()`` (the rule and the hyper-parameters that differ from torch's defaults)."""
    import re

    text = optimizer.describe()
    m = re.fullmatch(r"(\w+) \((.*)\)", text)
    if not m:
        return Prose(("Update rule: ", text, "."))
    parts = ["Update rule: " + RULE_WORDS.get(m.group(1), m.group(1))]
    for item in filter(None, m.group(2).split(", ")):
        key, _, value = item.partition("=")
        if key in HYPER_TEX and re.fullmatch(r"-?[\d.]+(e-?\d+)?", value):
            import sympy

            from derive.typeset.fmt import num_tex

            parts += [", ", Math(f"{HYPER_TEX[key]} = {num_tex(sympy.Float(value, 15))}", item)]
        else:
            parts.append(f", {item}")
    return Prose(tuple(parts) + (".",))


def question_text(question):
    """A problem's question stripped, keeping it :class:`Tex` (typeset) if it was."""
    q = question.strip()
    return Tex(q) if isinstance(question, Tex) else q


def shape_text(shape: tuple) -> str:
    return " x ".join(str(n) for n in shape) if shape else "scalar"


def shape_math(shape: tuple):
    """A shape as a table cell: ``2 \\times 4`` typeset, ``scalar`` in words."""
    if not shape:
        return "scalar"
    return Math(r" \times ".join(str(n) for n in shape), shape_text(shape))


def prose(*parts) -> Prose:
    return Prose(tuple(parts))


def tex_prose(text: str) -> Prose:
    r"""A paragraph of derive's own words with ``$...$`` maths (never user text:
    that stays plain and is escaped).

    >>> [type(p).__name__ for p in tex_prose("so $H_t = f(Z_t)$ holds").parts]
    ['str', 'Math', 'str']
    >>> tex_prose(r"$\frac{\partial E}{\partial W}$").parts[0].text
    '(dE)/(dW)'
    """
    parts = []
    for k, piece in enumerate(text.split("$")):
        if piece:
            parts.append(Math(piece, tex_to_text(piece)) if k % 2 else piece)
    return Prose(tuple(parts))


_TEXT_COMMANDS = (("\\tfrac12", "1/2"), ("\\frac12", "1/2"), ("\\left", ""), ("\\right", ""), ("\\partial ", "d"), ("\\partial", "d"), ("\\cdot", "*"), ("\\times", "x"),
                  ("\\le", "<="), ("\\ge", ">="), ("\\odot", "*"), ("\\top", "T"), ("\\lVert", "||"),
                  ("\\rVert", "||"), ("\\tfrac", "\\frac"))


def tex_to_text(tex: str) -> str:
    """A rough plain-text reading of a LaTeX formula, for the terminal."""
    import re

    out = tex
    for a, b in _TEXT_COMMANDS:
        out = out.replace(a, b)
    for _ in range(3):
        out = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", out)
    out = re.sub(r"\\(operatorname|mathrm|text|mathbf)\{([^{}]*)\}", r"\2", out)
    out = re.sub(r"\\([A-Za-z]+)", r"\1", out)
    return out.replace("{", "").replace("}", "").replace("\\,", " ").replace("\\", "")


def _cell_text(c) -> str:
    if isinstance(c, Math):
        return c.text
    if isinstance(c, Tex):
        return plain(c)
    return str(c)


def plain(text) -> str:
    """Words with ``$...$`` maths (a :class:`Tex`) read aloud for a terminal; other text as is."""
    if not isinstance(text, Tex):
        return str(text)
    if text.plain_text is not None:
        return text.plain_text
    return "".join(tex_to_text(p) if k % 2 else p for k, p in enumerate(str(text).split("$")))


def to_text(blocks) -> str:
    """Render blocks for a terminal (plain text, no colour)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            if out and out[-1] != "":
                out.append("")
            rule = "=" if b.level <= 1 else "-"
            out += [plain(b.text), rule * len(plain(b.text))]
        elif isinstance(b, Prose):
            out.append("".join(_cell_text(p) for p in b.parts))
        elif isinstance(b, Equations):
            for row in b.rows:
                line = f"  {row.lhs.text} {row.relation} " + " = ".join(r.text for r in row.rhs)
                if row.note:
                    line += f"    ({plain(row.note)})"
                out.append(line)
        elif isinstance(b, Table):
            cells = [[_cell_text(c) for c in b.header]] + [[_cell_text(c) for c in r] for r in b.rows]
            widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(cells[0]))]
            if b.caption:
                out.append(plain(b.caption))
            for k, r in enumerate(cells):
                out.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
                if k == 0:
                    out.append("  " + "  ".join("-" * w for w in widths))
        elif isinstance(b, Figure):
            out.append(f"[figure: {plain(b.caption) or b.kind}]")
        elif isinstance(b, Checks):
            for c in b.items:
                err = c.get("max_abs_err", c.get("max_rel_err"))
                kind = "max abs err" if "max_abs_err" in c else "max rel err"
                status = {True: "passed", False: "FAILED", None: "n/a"}[c["passed"]]
                line = f"  {c['method']}: {kind} {err:.3g}, {status}"
                if c.get("note"):
                    line += f" ({c['note']})"
                out.append(line)
    return "\n".join(out)
