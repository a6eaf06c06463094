r"""LaTeX for derive's notation: a SymPy printer, prose escaping, line breaking.

* :class:`DerivePrinter` extends SymPy's ``LatexPrinter`` with the notation a
  worked solution uses: quantities by their names (``w1_12`` is
  :math:`w^{1}_{12}`), derivatives as fractions of partials, groups (vectors
  and matrices) in bold, transposes as ``^{\top}``.
* :func:`escape` makes user prose safe to typeset (it is never interpreted).
* :func:`math_width` estimates how wide a piece of maths is, so
  :func:`break_chain` can lay a long chain of equalities over several lines;
  the templates still measure each line and shrink one that does not fit.

>>> import sympy
>>> w, x, L = sympy.symbols("w1 x1 L", real=True)
>>> latex(sympy.Derivative(L, w))
'\\frac{\\partial L}{\\partial w_{1}}'
>>> partial("L", "w^{1}_{12}")
'\\frac{\\partial L}{\\partial w^{1}_{12}}'
>>> escape("50% of $x_1 & {y}")
'50\\% of \\$x\\_1 \\& \\{y\\}'
"""
from __future__ import annotations

import re

import sympy
from pylatex.utils import escape_latex

from derive.safetext import visible
from derive.typeset.printing import PersonOrder, person_terms
from sympy.printing.latex import LatexPrinter


# ---------------------------------------------------------------------------
# The printer


def partial(of_tex: str, wrt_tex: str) -> str:
    r"""The partial derivative of one quantity by another, as a fraction.

    >>> partial("E_{2}", r"\mathbf{W}")
    '\\frac{\\partial E_{2}}{\\partial \\mathbf{W}}'
    """
    return rf"\frac{{\partial {of_tex}}}{{\partial {wrt_tex}}}"


def bold(tex: str) -> str:
    r"""A vector or matrix name in bold (Greek letters with ``\boldsymbol``).

    >>> bold("W"), bold(r"\alpha"), bold(r"h_{\text{prev}}")
    ('\\mathbf{W}', '\\boldsymbol{\\alpha}', '\\mathbf{h}_{\\text{prev}}')
    """
    m = re.fullmatch(r"(\\[A-Za-z]+|[A-Za-z]+)(.*)", tex, re.S)
    if not m:
        return rf"\mathbf{{{tex}}}"
    head, rest = m.groups()
    if head.startswith("\\"):
        return rf"\boldsymbol{{{head}}}{rest}"
    return rf"\mathbf{{{head}}}{rest}"


def group_latex(name: str) -> str:
    r"""The LaTeX of a group (vector or matrix) quantity: its name in bold.

    >>> group_latex("W_i"), group_latex("s_prev"), group_latex("alpha")
    ('\\mathbf{W}_{i}', '\\mathbf{s}_{\\text{prev}}', '\\boldsymbol{\\alpha}')
    """
    return bold(default_latex(name))


def superscript(base: str, sup: str) -> str:
    r"""``base`` with a superscript, braced so that a base which already has
    one (``w^{1}_{11}``) does not become a double superscript.

    >>> superscript("w^{1}_{11}", "+"), superscript("w_{1}", "+"), superscript("x", "2")
    ('{w^{1}_{11}}^{+}', 'w_{1}^{+}', 'x^{2}')
    """
    return f"{{{base}}}^{{{sup}}}" if "^" in base else f"{base}^{{{sup}}}"


class DerivePrinter(PersonOrder, LatexPrinter):
    r"""SymPy's LaTeX printer with derive's names and notation.

    ``names`` maps symbols (or MatrixSymbols) to their LaTeX; unnamed symbols
    go through :func:`derive.engine.graph.default_latex`, unnamed MatrixSymbols
    through :func:`group_latex`.

    >>> import sympy
    >>> W = sympy.MatrixSymbol("W", 2, 2); h = sympy.MatrixSymbol("h_prev", 2, 1)
    >>> DerivePrinter().doprint(W.T * h)
    '\\mathbf{W}^{\\top} \\mathbf{h}_{\\text{prev}}'
    >>> DerivePrinter().doprint(sympy.Symbol("w2_12", real=True) * sympy.Symbol("h1", real=True))
    'h_{1} w^{2}_{12}'
    """

    printmethod = "_latex"

    def __init__(self, names: dict | None = None, **settings):
        super().__init__(settings)
        self._names = dict(names or {})

    def _print_Symbol(self, expr, style="plain"):
        if expr in self._names:
            return self._names[expr]
        return default_latex(expr.name)

    def _print_MatrixSymbol(self, expr, style="plain"):
        if expr in self._names:
            return self._names[expr]
        return group_latex(expr.name)

    def _print_Derivative(self, expr):
        of = self._print(expr.expr)
        if len(expr.variable_count) == 1 and expr.variable_count[0][1] == 1:
            return partial(of, self._print(expr.variable_count[0][0]))
        return super()._print_Derivative(expr)

    def _print_Transpose(self, expr):
        base = self._print(expr.arg)
        if not (expr.arg.is_Symbol or isinstance(expr.arg, sympy.MatrixSymbol)):
            base = rf"\left({base}\right)"
        return superscript(base, r"\top")

    def _print_HadamardProduct(self, expr):
        return r" \odot ".join(self.parenthesize(a, 50) for a in expr.args)


def latex(expr, names: dict | None = None) -> str:
    r"""LaTeX of ``expr`` with derive's names and notation.

    >>> import sympy
    >>> latex(sympy.Symbol("w1_11", real=True) + sympy.Symbol("b1", real=True))
    'b_{1} + w^{1}_{11}'
    """
    return DerivePrinter(names).doprint(expr)


# ---------------------------------------------------------------------------
# Prose

#: characters pdfLaTeX does not know, with a text form and a maths form
UNICODE = {
    "≈": (r"$\approx$", r"\approx "), "≠": (r"$\neq$", r"\neq "), "≤": (r"$\leq$", r"\leq "),
    "≥": (r"$\geq$", r"\geq "), "×": (r"$\times$", r"\times "), "·": (r"$\cdot$", r"\cdot "),
    "−": (r"$-$", "-"), "→": (r"$\rightarrow$", r"\rightarrow "), "←": (r"$\leftarrow$", r"\leftarrow "),
    "⇒": (r"$\Rightarrow$", r"\Rightarrow "), "∑": (r"$\sum$", r"\sum "), "∏": (r"$\prod$", r"\prod "),
    "∂": (r"$\partial$", r"\partial "), "√": (r"$\surd$", r"\surd "), "∞": (r"$\infty$", r"\infty "),
    "±": (r"$\pm$", r"\pm "), "∈": (r"$\in$", r"\in "), "⊙": (r"$\odot$", r"\odot "),
    "‖": (r"$\|$", r"\| "), "²": (r"$^{2}$", "^{2}"), "³": (r"$^{3}$", "^{3}"), "ᵀ": (r"$^{\top}$", r"^{\top}"),
    "✓": (r"$\checkmark$", r"\checkmark "), "…": (r"\ldots{}", r"\ldots "), "–": ("--", "-"),
    "—": ("---", "-"), "‘": ("`", "`"), "’": ("'", "'"), "“": ("``", "``"), "”": ("''", "''"),
    "\u00a0": ("~", r"\ "),
}
_GREEK = "αβγδεζηθικλμνξπρστυφχψω"
_GREEK_NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
                "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
                "omega"]
UNICODE.update({c: (rf"$\{n}$", rf"\{n} ") for c, n in zip(_GREEK, _GREEK_NAMES)})


def _unicode_text(ch: str) -> str:
    if ch in UNICODE:
        return UNICODE[ch][0]
    if ord(ch) <= 0x17F:      # Latin-1 and Latin Extended-A: T1 fonts have them
        return ch
    return rf"\texttt{{[U+{ord(ch):04X}]}}"


def escape(text) -> str:
    r"""Plain text made safe for LaTeX: every special character printed as
    itself, nothing interpreted. Blank lines separate paragraphs; other line
    breaks are spaces.

    >>> escape(r"\input{/etc/passwd} ~ ^ # _")
    '\\textbackslash{}input\\{/etc/passwd\\} \\textasciitilde{} \\textasciicircum{} \\# \\_'
    >>> escape("a-b -- c")
    'a-b {-}{-} c'
    >>> escape("η ≈ 0.5")
    '$\\eta$ $\\approx$ 0.5'
    """
    # control characters are shown as visible escapes, never given to TeX
    paragraphs = re.split(r"\n\s*\n", visible(text, keep_lines=True))
    out = []
    for para in paragraphs:
        para = re.sub(r"\s+", " ", para)
        pieces, run = [], []
        for ch in para:
            if ord(ch) < 128:
                run.append(ch)
                continue
            if run:
                pieces.append(escape_latex("".join(run)))
                run = []
            pieces.append(_unicode_text(ch))
        if run:
            pieces.append(escape_latex("".join(run)))
        # pylatex writes "-" as "{-}" (no dash ligatures); a lone hyphen needs no braces
        # and "^" as an accent; \textasciicircum is the character itself
        text = re.sub(r"(?<!\{-\})\{-\}(?!\{-\})", "-", "".join(pieces))
        out.append(text.replace(r"\^{}", r"\textasciicircum{}"))
    return "\n\n".join(out)


def math_unicode(tex: str) -> str:
    r"""Maths with stray Unicode symbols replaced by their LaTeX commands.

    >>> math_unicode("a ≈ β")
    'a \\approx  \\beta '
    """
    if tex.isascii():
        return tex
    return "".join(UNICODE[c][1] if c in UNICODE else c for c in tex)


# ---------------------------------------------------------------------------
# How wide is a piece of maths?  (points at 11pt, display style; an estimate
# used only to decide where to break lines: the templates measure for real.)

_CMD_WIDTH = {
    "cdot": 7.8, "times": 13.5, "pm": 13.5, "odot": 13.5, "circ": 10.0,
    "leftarrow": 17.0, "rightarrow": 17.0, "gets": 17.0, "to": 17.0, "approx": 14.8, "neq": 14.8,
    "leq": 14.8, "geq": 14.8, "coloneqq": 17.0, "mapsto": 17.0, "in": 12.5,
    "sum": 17.0, "prod": 17.0, "int": 10.0, "partial": 6.5, "infty": 11.0, "nabla": 9.0,
    "top": 8.6, "ldots": 15.0, "cdots": 15.0, "dots": 15.0, "|": 5.5, "lVert": 5.5, "rVert": 5.5,
    ",": 1.8, ";": 3.1, ":": 2.4, "!": -1.8, " ": 3.7, "quad": 11.0, "qquad": 22.0,
    "{": 5.5, "}": 5.5, "%": 9.0, "$": 5.5, "&": 8.5, "#": 9.0, "_": 4.0,
    "langle": 4.3, "rangle": 4.3, "lfloor": 4.9, "rfloor": 4.9, "lceil": 4.9, "rceil": 4.9,
    "max": 20.0, "min": 18.0, "log": 15.0, "ln": 10.0, "exp": 18.0, "tanh": 23.0, "sin": 14.0,
    "cos": 16.0, "sqrt": 9.0, "checkmark": 9.0, "mid": 8.4, "colon": 3.0, "surd": 9.0,
}
_WRAPPERS = {"operatorname", "mathrm", "text", "mathbf", "boldsymbol", "bm", "mathit", "mathcal",
             "mathsf", "mathtt", "textrm", "textbf", "textit", "emph", "mathbb", "hat", "tilde",
             "bar", "vec", "overline", "widehat", "dot", "ddot", "underline", "displaystyle",
             "textstyle", "mathnormal", "operatornamewithlimits"}
_SIZES = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "middle"}
_CHAR_WIDTH = {".": 3.0, ",": 3.0, ";": 3.0, ":": 3.0, "(": 4.3, ")": 4.3, "[": 3.0, "]": 3.0,
               "|": 3.0, "/": 5.5, "'": 3.0, "!": 3.0, "*": 5.5}
_BIN = {"+": 14.9, "-": 14.9, "=": 14.8, "<": 14.8, ">": 14.8}


def braced_group(tex: str, i: int) -> tuple[str, int]:
    """The braced group (or single token) starting at ``tex[i]``."""
    while i < len(tex) and tex[i] == " ":
        i += 1
    if i >= len(tex):
        return "", i
    if tex[i] == "{":
        depth = 0
        for j in range(i, len(tex)):
            if tex[j] == "{" and (j == 0 or tex[j - 1] != "\\"):
                depth += 1
            elif tex[j] == "}" and tex[j - 1] != "\\":
                depth -= 1
                if depth == 0:
                    return tex[i + 1:j], j + 1
        return tex[i + 1:], len(tex)
    if tex[i] == "\\":
        m = re.match(r"\\([A-Za-z]+|.)", tex[i:])
        return m.group(0), i + len(m.group(0))
    return tex[i], i + 1


def _environment_width(body: str) -> float:
    rows = [r for r in re.split(r"\\\\", body) if r.strip()]
    cols: list[float] = []
    for row in rows:
        for k, cell in enumerate(_split_cells(row)):
            w = math_width(cell)
            if k < len(cols):
                cols[k] = max(cols[k], w)
            else:
                cols.append(w)
    return sum(cols) + 11.0 * max(len(cols) - 1, 0) + 12.0


def _split_cells(row: str) -> list[str]:
    cells, depth, start = [], 0, 0
    for j, ch in enumerate(row):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "&" and depth == 0 and (j == 0 or row[j - 1] != "\\"):
            cells.append(row[start:j])
            start = j + 1
    cells.append(row[start:])
    return cells


def math_width(tex: str, scale: float = 1.0) -> float:
    r"""Estimated width in points (11pt type, display style) of maths ``tex``.

    >>> round(math_width(r"\frac{\partial L}{\partial w_{1}}"))
    22
    >>> math_width("a + b") > math_width("a")
    True
    """
    width = 0.0
    i = 0
    n = len(tex)
    while i < n:
        ch = tex[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", tex[i:])
            name = m.group(1)
            i += len(m.group(0))
            if name in ("frac", "dfrac", "tfrac"):
                num, i = braced_group(tex, i)
                den, i = braced_group(tex, i)
                f = 0.75 if name == "tfrac" else 1.0
                width += max(math_width(num, scale * f), math_width(den, scale * f)) + 2.4 * scale
            elif name == "begin":
                env, i = braced_group(tex, i)
                if env == "array":
                    _, i = braced_group(tex, i)
                end = tex.find(rf"\end{{{env}}}", i)
                end = n if end < 0 else end
                width += _environment_width(tex[i:end]) * scale
                i = end + len(rf"\end{{{env}}}")
            elif name in _SIZES:
                if tex.startswith(".", i):
                    i += 1
                    continue
                m2 = re.match(r"\\[A-Za-z]+|\\.|.", tex[i:])
                if m2:
                    i += len(m2.group(0))
                width += 4.3 * scale
            elif name in _WRAPPERS:
                arg, i = braced_group(tex, i)
                width += math_width(arg, scale) * (1.1 if name.startswith("text") or name in ("mathrm", "operatorname") else 1.0)
            elif name == "sqrt":
                if tex.startswith("[", i):
                    i = tex.find("]", i) + 1
                arg, i = braced_group(tex, i)
                width += math_width(arg, scale) + 9.0 * scale
            elif name in _CMD_WIDTH:
                width += _CMD_WIDTH[name] * scale
            else:                 # Greek letters and other single symbols
                width += 6.0 * scale
        elif ch in "^_":
            arg, i = braced_group(tex, i + 1)
            w = math_width(arg, scale * 0.7)
            # a sub- and superscript on the same base stack: count the wider
            if i < n and tex[i] in "^_" and tex[i] != ch:
                arg2, i = braced_group(tex, i + 1)
                w = max(w, math_width(arg2, scale * 0.7))
            width += w + 0.5 * scale
        elif ch in "{}":
            i += 1
        elif ch == " ":
            i += 1
        elif ch in _BIN:
            width += (_BIN[ch] if scale >= 1.0 else 8.6) * scale
            i += 1
        elif ch.isdigit():
            width += 5.5 * scale
            i += 1
        elif ch.isalpha():
            width += (8.5 if ch in "mwMW" else 6.0 if ch.isupper() else 5.3) * scale
            i += 1
        else:
            width += _CHAR_WIDTH.get(ch, 5.5) * scale
            i += 1
    return width


# ---------------------------------------------------------------------------
# Breaking a chain of equalities over lines

_LEFT = re.compile(r"\\(left|begin)(?![A-Za-z])")
_RIGHT = re.compile(r"\\(right|end)(?![A-Za-z])")


def split_sum(tex: str) -> list[str]:
    r"""Split maths at its top-level ``+`` and ``-`` (never inside braces or
    ``\left ... \right``); each later piece keeps its sign.

    >>> split_sum(r"a + \left(b - c\right) - d_{1-2}")
    ['a', '+ \\left(b - c\\right)', '- d_{1-2}']
    """
    pieces, depth, start, i = [], 0, 0, 0
    while i < len(tex):
        ch = tex[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", tex[i:])
            word = m.group(0)
            if _LEFT.fullmatch(word):
                depth += 1
            elif _RIGHT.fullmatch(word):
                depth -= 1
            i += len(word)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch in "+-" and depth == 0 and tex[:i].strip() and not re.search(r"[+\-=(&,{]\s*$|\\[A-Za-z]+\s*$", tex[:i]):
            pieces.append(tex[start:i].strip())
            start = i
        i += 1
    pieces.append(tex[start:].strip())
    return [p for p in pieces if p]


#: how a continuation line (the rest of a sum) starts
CONTINUE = r"\quad {} "


def break_chain(parts: list[str], budget: float, first_budget: float | None = None) -> list[str]:
    r"""Lay the right-hand sides of ``lhs = p1 = p2 = ...`` out as lines no
    wider than ``budget`` points (estimated): whole parts share a line while
    they fit; a part too wide on its own is split at its top-level ``+``/``-``
    (continuation lines start with ``\quad``). Each returned line follows an
    ``=`` except the continuation lines, which start with ``\quad``.

    >>> break_chain(["a", "b"], 100)
    ['a = b']
    >>> break_chain(["a + b + c", "d"], 30)
    ['a', '\\quad {} + b', '\\quad {} + c', 'd']
    """
    eq = _BIN["="]
    lines: list[str] = []
    current, width = "", 0.0
    for part in parts:
        w = math_width(part)
        limit = first_budget if (first_budget is not None and not lines) else budget
        if current and width + eq + w <= limit:
            current, width = f"{current} = {part}", width + eq + w
            continue
        if current:
            lines.append(current)
            current, width = "", 0.0
        if w <= budget:
            current, width = part, w
            continue
        # too wide alone: greedy over its terms, continuation lines indented
        chunk, cw = "", 0.0
        for k, term in enumerate(split_sum(part)):
            tw = math_width(term)
            if chunk and cw + tw > budget - 11.0:
                lines.append(chunk)
                chunk, cw = CONTINUE + term, 11.0 + tw
            else:
                chunk, cw = (f"{chunk} {term}" if chunk else term), cw + tw
        current, width = chunk, cw
    if current:
        lines.append(current)
    return lines


def person_order(expr, names: dict | None = None, symbol_names: dict | None = None) -> str:
    r"""LaTeX of a sum with its terms in the order a person writes them
    (:func:`derive.typeset.printing.person_terms`): the terms with a plus sign
    first (in a weighted sum, its bias last), then those with a minus sign,
    so ``w - \eta g`` and not ``- \eta g + w``.

    >>> import sympy
    >>> w, eta, g = sympy.symbols("w eta g")
    >>> person_order(w - eta * g)
    'w - \\eta g'
    >>> person_order(g + sympy.Symbol("rho") * sympy.Symbol("v"), {"v": "v_t"})
    'g + \\rho v_{t}'
    """
    import sympy

    symbols = {s: sympy.Symbol(t) for s, t in ((sympy.Symbol(k), v) for k, v in (names or {}).items())}
    expr = expr.xreplace(symbols) if symbols else expr
    def show(e):
        return sympy.latex(e, symbol_names=symbol_names or {})

    if not isinstance(expr, sympy.Add):
        return show(expr)
    out = ""
    for k, t in enumerate(person_terms(list(sympy.Add.make_args(expr)))):
        if t.could_extract_minus_sign():
            out += " - " + show(-t)
        else:
            out += (" + " if k else "") + show(t)
    return out.lstrip(" +") if not out.startswith(" - ") else "-" + out[3:]


def default_latex(name: str) -> str:
    r"""How a quantity name is written in LaTeX.

    >>> default_latex("w1"), default_latex("w1_12"), default_latex("h_prev"), default_latex("W_i")
    ('w_{1}', 'w^{1}_{12}', 'h_{\\text{prev}}', 'W_{i}')
    """
    m = re.fullmatch(r"([A-Za-z]+)(\d+)_(\d+)", name)
    if m:
        return f"{_letters(m.group(1))}^{{{m.group(2)}}}_{{{m.group(3)}}}"
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", name)
    if m:
        return f"{_letters(m.group(1))}_{{{m.group(2)}}}"
    parts = name.split("_")
    if len(parts) >= 2 and all(parts):
        head = _letters(parts[0])
        sub = ",".join(p if (p.isdigit() or len(p) == 1) else rf"\text{{{p}}}" for p in parts[1:])
        return f"{head}_{{{sub}}}"
    return _letters(name)


_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "eta", "theta", "lambda", "mu", "rho",
          "sigma", "tau", "phi", "psi", "omega"}


def _letters(s: str) -> str:
    if s in _GREEK:
        return "\\" + s
    if len(s) == 1:
        return s
    if s == "loss":
        return r"\mathcal{L}"
    return rf"\mathrm{{{s}}}"
