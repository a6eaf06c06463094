r"""Simple LaTeX in hand answers, converted to derive's expression syntax.

A student may write ``$-0.35 \cdot a_1$`` or ``\frac{1}{2}(y - o_1)^2``.  This
module turns such text into the plain syntax that
:func:`derive.engine.parse.parse_expr_safe` reads (``-0.35*a1``); it never evaluates
anything.  It is a small recursive-descent reader over a bounded token list:
numbers, names with sub/superscripts (``w_1`` -> ``w1``, ``w^{1}_{12}`` ->
``w1_12`` when the problem has those names), ``+ - * /``, ``\cdot``,
``\times``, ``\frac{}{}``, ``\sqrt{}``, powers, brackets, ``\left``/``\right``,
implicit multiplication and the functions ``\sigma \tanh \exp \log \ln``
``\operatorname{ReLU}``.  Anything else is refused with :class:`LatexError`.

>>> latex_to_expr(r"$-0.35 \cdot a_1$", {"a1"})
'-0.35*a1'
>>> latex_to_expr(r"\frac{1}{2}(y - o_{1})^2", {"y", "o1"})
'((1)/(2))*(y-o1)**(2)'
>>> latex_to_expr(r"\sigma(w^{2}_{11} h_1)", {"w2_11", "h1"})
'sigmoid(w2_11*h1)'
>>> latex_to_expr(r"1 - \tanh^2(z_1)", {"z1"})
'1-(tanh(z1))**(2)'
"""
from __future__ import annotations

import re

MAX_LATEX = 2000     # characters
MAX_TOKENS = 1000
MAX_DEPTH = 40

FUNCS = {"relu", "sigmoid", "tanh", "exp", "log", "sqrt", "softplus", "step"}
#: LaTeX commands that are functions, and the operation they name
COMMAND_FUNCS = {"sigma": "sigmoid", "tanh": "tanh", "exp": "exp", "log": "log", "ln": "log",
                 "sqrt": "sqrt"}
#: words inside \operatorname{} / \mathrm{} / \text{} that name an operation
WORD_FUNCS = {"relu": "relu", "sigmoid": "sigmoid", "sigm": "sigmoid", "tanh": "tanh", "softplus": "softplus",
              "step": "step", "exp": "exp", "log": "log", "ln": "log", "sqrt": "sqrt"}
SPACING = {",", ";", "!", ":", " ", "quad", "qquad", "left", "right", "big", "Big", "bigl", "bigr",
           "Bigl", "Bigr", "displaystyle"}
TIMES = {"cdot", "times", "ast"}
GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "eta", "theta", "lambda", "mu", "rho", "tau",
         "phi", "psi", "omega"}

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\d*\.\d+|\d+\.?|[A-Za-z][A-Za-z0-9]*|[{}()\[\]^_+\-*/|,]|\s+|.",
                    re.S)


class LatexError(ValueError):
    """LaTeX outside the small supported subset; the message says what."""


def looks_like_latex(text: str) -> bool:
    r"""True for text with LaTeX markers (``\``, ``$``, braces, ``_``).

    >>> looks_like_latex("(o1 - y)*a1"), looks_like_latex(r"$a_1$")
    (False, True)
    """
    return any(c in text for c in "\\${}_") or "^" in text


def latex_to_expr(text: str, names) -> str:
    """Convert simple LaTeX to expression syntax over ``names`` (a set of
    the problem's quantity names, used to read ``w_1`` as ``w1``)."""
    if len(text) > MAX_LATEX:
        raise LatexError(f"LaTeX answer is longer than {MAX_LATEX} characters")
    body = text.strip()
    if body.startswith("$$") and body.endswith("$$") and len(body) >= 4:
        body = body[2:-2]
    elif body.startswith("$") and body.endswith("$") and len(body) >= 2:
        body = body[1:-1]
    if "$" in body:
        raise LatexError("only one $...$ formula per answer")
    tokens = []
    for tok in _TOKEN.findall(body):
        if tok.isspace():
            continue
        if tok.startswith("\\") and tok[1:] in SPACING:
            continue
        tokens.append(tok)
        if len(tokens) > MAX_TOKENS:
            raise LatexError(f"LaTeX answer has more than {MAX_TOKENS} parts")
    reader = _Reader(tokens, set(names))
    out = reader.expr()
    if reader.pos != len(tokens):
        raise LatexError(f"unexpected {tokens[reader.pos]!r} in LaTeX answer")
    return out


class _Reader:
    def __init__(self, tokens, names):
        self.t = tokens
        self.pos = 0
        self.names = names
        self.depth = 0

    def peek(self, k=0):
        i = self.pos + k
        return self.t[i] if i < len(self.t) else None

    def take(self, expected=None):
        tok = self.peek()
        if tok is None:
            raise LatexError("LaTeX answer ends too early")
        if expected is not None and tok != expected:
            raise LatexError(f"expected {expected!r} in LaTeX answer, found {tok!r}")
        self.pos += 1
        return tok

    def _enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise LatexError(f"LaTeX answer is nested deeper than {MAX_DEPTH} levels")

    # expr := term (('+'|'-') term)*
    def expr(self):
        self._enter()
        parts = [self.term()]
        while self.peek() in ("+", "-"):
            parts.append(self.take())
            parts.append(self.term())
        self.depth -= 1
        return "".join(parts)

    # term := factor (('*'|'/'|\cdot|implicit) factor)*
    def term(self):
        out = self.factor()
        while True:
            tok = self.peek()
            if tok in ("*", "/"):
                self.take()
                out += tok + self.factor()
            elif tok is not None and tok.startswith("\\") and tok[1:] in TIMES:
                self.take()
                out += "*" + self.factor()
            elif tok is not None and self._starts_atom(tok):
                out += "*" + self.factor()
            else:
                return out

    def _starts_atom(self, tok):
        if tok in ("(", "{", "[") or tok[0].isdigit() or tok[0] == "." or tok[0].isalpha():
            return True
        return tok.startswith("\\") and tok[1:] not in TIMES

    def factor(self):
        if self.peek() in ("-", "+"):
            sign = self.take()
            inner = self.factor()
            return inner if sign == "+" else "-" + inner
        base = self.atom()
        if self.peek() == "^":
            self.take()
            base += "**(" + self.script_expr() + ")"
        return base

    def script_expr(self):
        """A super/subscript: a braced group or a single token."""
        tok = self.peek()
        if tok == "{":
            self.take()
            inner = self.expr()
            self.take("}")
            return inner
        if tok is not None and (tok[0].isdigit() or tok[0].isalpha()):
            self.take()
            if tok[0].isalpha():
                return self._name_or_letters(tok)
            return tok[0] if len(tok) > 1 and tok[0].isdigit() and not tok.endswith(".") else tok
        if tok == "-":
            self.take()
            return "-" + self.script_expr()
        raise LatexError(f"unexpected {tok!r} after ^")

    def script_text(self):
        """The raw text of a subscript or superscript (for names)."""
        tok = self.take()
        if tok != "{":
            return tok
        depth, parts = 1, []
        while True:
            tok = self.take()
            if tok == "{":
                depth += 1
                continue
            if tok == "}":
                depth -= 1
                if depth == 0:
                    return "".join(parts)
                continue
            if tok.startswith("\\"):
                if tok[1:] in ("text", "mathrm", "mathit", "rm"):
                    continue
                if tok[1:] in ("prime",):
                    parts.append("'")
                    continue
                raise LatexError(f"{tok} inside a subscript is not supported")
            parts.append(tok)
            if len(parts) > 40:
                raise LatexError("subscript is too long")

    def group(self):
        self.take("{")
        inner = self.expr()
        self.take("}")
        return inner

    def argument(self):
        """A function's argument: (..), {..}, [..] or one atom."""
        tok = self.peek()
        if tok in ("(", "{", "["):
            return self.atom()
        return "(" + self.factor() + ")"

    def atom(self):
        tok = self.peek()
        if tok is None:
            raise LatexError("LaTeX answer ends too early")
        if tok in ("(", "["):
            self.take()
            inner = self.expr()
            self.take(")" if tok == "(" else "]")
            return "(" + inner + ")"
        if tok == "{":
            return "(" + self.group() + ")"
        if tok[0].isdigit() or tok[0] == ".":
            self.take()
            return tok
        if tok.startswith("\\"):
            return self.command()
        if tok[0].isalpha():
            self.take()
            return self.name(tok)
        raise LatexError(f"unexpected {tok!r} in LaTeX answer")

    def command(self):
        tok = self.take()
        cmd = tok[1:]
        if cmd in ("frac", "dfrac", "tfrac"):
            num = self.group()
            den = self.group()
            return f"(({num})/({den}))"
        if cmd in ("operatorname", "mathrm", "text", "textrm", "mathit"):
            word = self.script_text()
            key = word.lower()
            if key in WORD_FUNCS:
                return WORD_FUNCS[key] + self._call_arg()
            return self.name(word)
        if cmd == "sqrt":
            if self.peek() == "[":
                raise LatexError(r"\sqrt[n]{} (an n-th root) is not supported")
            return "sqrt" + self._call_arg()
        if cmd in COMMAND_FUNCS:
            if self.peek() == "^":          # \tanh^2(z) is (tanh(z))^2
                self.take()
                power = self.script_expr()
                return f"({COMMAND_FUNCS[cmd]}{self._call_arg()})**({power})"
            return COMMAND_FUNCS[cmd] + self._call_arg()
        if cmd in GREEK:
            return self.name(cmd)
        if cmd == "partial":
            raise LatexError(r"a derivative (\partial) cannot stand inside an answer; give its value or formula")
        raise LatexError(f"LaTeX command {tok} is not supported")

    def _call_arg(self):
        arg = self.argument()
        return arg if arg.startswith("(") and _balanced_outer(arg) else "(" + arg + ")"

    def name(self, base):
        """A name, possibly with sub/superscripts that are part of it."""
        save = self.pos
        scripts = {}
        for _ in range(2):
            tok = self.peek()
            if tok in ("_", "^") and tok not in scripts:
                self.take()
                scripts[tok] = self.script_text()
            else:
                break
        sub, sup = scripts.get("_"), scripts.get("^")
        if sup is not None and sub is not None:
            for c in (f"{base}{sup}_{sub}", f"{base}_{sup}_{sub}"):
                if c in self.names:
                    return c
        if sup is not None:
            # The superscript is a power, not part of the name: read again
            # with the subscript only (if it comes first).
            self.pos = save
            sub = None
            if self.peek() == "_":
                self.take()
                sub = self.script_text()
        if sub is not None:
            for c in (f"{base}{sub}", f"{base}_{sub}"):
                if c in self.names:
                    return c
            return f"{base}{sub}" if sub.isdigit() else f"{base}_{sub}"
        if base.lower() in WORD_FUNCS and base not in self.names and self.peek() in ("(", "{", "["):
            return WORD_FUNCS[base.lower()] + self._call_arg()
        return self._name_or_letters(base)

    def _name_or_letters(self, word):
        if word in self.names or not word.isalpha() or len(word) == 1:
            return word
        # "ab" in LaTeX is a times b when both are names of the problem
        if all(ch in self.names for ch in word):
            return "*".join(word)
        return word


def _balanced_outer(s: str) -> bool:
    """True when the first '(' of s closes at its last character."""
    depth = 0
    for i, ch in enumerate(s):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0 and i != len(s) - 1:
                return False
    return True


# ---------------------------------------------------------------------------
# Notation students write, rewritten before reading (plain text or LaTeX)

#: names a hand answer may give the learning rate
LR_NAMES = ("eta", "lr", "alpha", "\u03b7", "\u03b1")
_UNICODE = {"\u03b7": "eta", "\u03b1": "alpha", "\u03c3": "sigmoid", "\u2032": "'", "\u2212": "-",
            "\u00d7": "*", "\u22c5": "*", "\u00b7": "*"}


def last_side(text: str):
    r"""The last side of ``LHS = ... = value`` and a note saying so (None
    when there is no ``=``).  ``==``, ``<=`` and ``>=`` are not sides.

    >>> last_side(r"c_t = f_t \odot c_{t-1} + i_t \odot g_t")
    ('f_t \\odot c_{t-1} + i_t \\odot g_t', 'judged the last side of the chain: f_t \\odot c_{t-1} + i_t \\odot g_t')
    >>> last_side(r"w_1 \leftarrow 0.1875")[0], last_side("0.5")
    ('0.1875', ('0.5', None))
    """
    t = str(text)
    parts = re.split(r"(?<![<>=!:])=(?!=)|:=|\\(?:long)?leftarrow\b|\\gets\b|\u2190", t)
    if len(parts) < 2 or any(ch in side for side in parts[:-1] for ch in "`#%&~@"):
        return t, None                                 # not a chain of sides (TeX trickery stays whole)
    last = parts[-1].strip().rstrip("$").strip()
    if not last:
        return t, None
    if t.strip().startswith("$") and not last.startswith("$"):
        last = last                                    # the $ of the left side stays behind
    return last, f"judged the last side of the chain: {last}"


def decimal_comma(text: str) -> str:
    """``0,3`` -> ``0.3`` for an answer that is one number (a list or a
    call's arguments keep their commas).

    >>> decimal_comma("0,3"), decimal_comma("-1,25e-3"), decimal_comma("max(0,3)")
    ('0.3', '-1.25e-3', 'max(0,3)')
    """
    t = text.strip()
    if re.fullmatch(r"[+-]?\d+,\d+(?:[eE][+-]?\d+)?", t):
        return t.replace(",", ".")
    return text


def plain_unicode(text: str) -> str:
    """Greek letters and typographic signs students type, as derive's names."""
    return "".join(_UNICODE.get(ch, ch) for ch in text)


#: derivative of an activation, written with a prime, as an expression of
#: its argument X (plain syntax; LaTeX answers get the LaTeX form)
PRIME_PLAIN = {"relu": "step({x})", "tanh": "(1 - tanh({x})**2)",
               "sigmoid": "(sigmoid({x})*(1 - sigmoid({x})))", "exp": "exp({x})"}
PRIME_LATEX = {"relu": r"\operatorname{step}({x})", "tanh": r"(1 - \tanh({x})^2)",
               "sigmoid": r"(\sigma({x})(1 - \sigma({x})))", "exp": r"\exp({x})"}
_PRIME_NAMES = {"relu": "relu", "ReLU": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "sigma": "sigmoid",
                "sigm": "sigmoid", "exp": "exp", "f": "f", "g": "g"}
_PRIME = re.compile(r"(\\operatorname\{)?\\?(relu|ReLU|tanh|sigmoid|sigma|sigm|exp|f|g)\}?\s*(?:'|\^\{?\\prime\}?)\s*"
                    r"(?=[({\[])")


def primes(text: str, activation: str | None = None, latex: bool = False) -> str:
    r"""``relu'(z1)``, ``\tanh'(z)``, ``\sigma'(z)``: an activation's derivative
    written with a prime, as the expression it stands for.  ``f'`` (and
    ``g'``) mean the problem's own activation when it has one kind.

    >>> primes("relu'(z1)*w5")
    'step(z1)*w5'
    >>> primes("f'(u)", "sigmoid")
    '(sigmoid(u)*(1 - sigmoid(u)))'
    """
    out, pos = [], 0
    table = PRIME_LATEX if latex else PRIME_PLAIN
    for _ in range(50):
        m = _PRIME.search(text, pos)
        if m is None:
            break
        fn = _PRIME_NAMES[m.group(2)]
        if fn in ("f", "g"):
            fn = activation
        if fn not in table:
            out.append(text[pos:m.end()])
            pos = m.end()
            continue
        arg_end = _closing(text, m.end())
        if arg_end is None:
            break
        arg = text[m.end() + 1:arg_end]
        out.append(text[pos:m.start()])
        out.append(table[fn].replace("{x}", arg))
        pos = arg_end + 1
    out.append(text[pos:])
    return "".join(out)


def _closing(text: str, start: int):
    """Index of the bracket closing the one at ``start`` (None if unbalanced)."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    opener = text[start]
    closer, depth = pairs[opener], 0
    for i in range(start, len(text)):
        if text[i] == opener:
            depth += 1
        elif text[i] == closer:
            depth -= 1
            if depth == 0:
                return i
    return None


def _latex_key(s: str) -> str:
    return re.sub(r"\s+|\\mathrm|\\mathit|\{|\}", "", s)


def node_latex_names(text: str, latex_of: dict) -> str:
    r"""A problem's own LaTeX for its quantities (``\hat{y}``, ``w^{(1)}_{11}``)
    replaced by their names.  ``latex_of`` maps name -> LaTeX; the longest
    forms are replaced first, and only forms with a command or a script.

    >>> node_latex_names(r"(\hat{y} - y) \cdot h_1", {"yhat": r"\hat{y}", "y": "y"})
    '(yhat - y) \\cdot h_1'
    """
    forms = sorted(((lx, n) for n, lx in latex_of.items() if lx and any(c in lx for c in "\\^")),
                   key=lambda p: -len(p[0]))
    for lx, n in forms:
        pattern = r"\s*".join(re.escape(ch) if ch not in "{}" else "\\" + ch + "?" for ch in lx if not ch.isspace())
        text = re.sub(pattern + r"(?![A-Za-z0-9])", n, text)
    return text


def hats(text: str, names, predicted: dict | None = None) -> str:
    r"""``\hat{y}``, ``\hat y``, ``\tilde{c}``: the name with the mark as a
    suffix or prefix when the problem has it (``y_hat``, ``yhat``); else,
    for a target, the network's output that predicts it (``predicted``:
    target -> output; seed 004 writes the prediction \hat{y}); else the bare
    letter.

    >>> hats(r"(\hat{y} - y)", {"y", "o1"}, {"y": "o1"})
    '(o1 - y)'
    >>> hats(r"\hat{y} - y", {"y", "yhat"})
    'yhat - y'
    """
    def one(m):
        mark, base = m.group(1), m.group(2) or m.group(3)
        for c in (f"{base}_{mark}", f"{base}{mark}", f"{mark}{base}", f"{mark}_{base}"):
            if c in names:
                return c
        if mark in ("hat", "widehat") and base in (predicted or {}):
            return predicted[base]
        return base
    return re.sub(r"\\(hat|tilde|bar|widehat)\s*(?:\{\s*([A-Za-z]+)\s*\}|([A-Za-z]))", one, text)
