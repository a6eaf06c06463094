r"""Judging answers that are not plain numbers: vector formulas and sums over paths.

Two kinds of written answer appear in the seeds' keys besides numbers:

* **Vector and matrix formulas** such as ``\sigma(w_{i}[h_{t-1}, x_{t}] + b_{i})``
  or ``(O_2 - \hat{O}_2) \cdot H_2``.  :func:`read_formula` reads them (plain
  syntax or simple LaTeX; never evaluated) into a
  :class:`~derive.engine.tensor.Tensor` of SymPy expressions over a problem's
  quantities.  ``[a, b]`` and ``[a; b]`` stack vectors; a matrix next to a
  vector multiplies it; ``\odot`` is elementwise.  A product of two vectors
  (``*``, ``\cdot``, or side by side) is read by the shape the answer must
  have: a matrix -> the outer product u v^T (the chain rule's dE/dO . dO/dV),
  a vector -> elementwise, a scalar -> the dot product.
* **Sums over paths of Jacobian products**, the general form of BPTT:
  ``\sum_{k=0}^{3} \frac{\partial E_3}{\partial O_3} \frac{\partial O_3}{\partial H_3}
  \frac{\partial H_3}{\partial H_k} \frac{\partial H_k}{\partial W}`` (or derive's own
  text form ``sum_{k=1..3} dE_3/dO_3 * ... * dH_k/dW``).  :func:`read_path_sum`
  reads the terms; :func:`judge_paths` expands every index range and compares
  the paths the terms stand for with the paths of the unrolled graph.

  Reading rules (those of derive's general form): a factor dA/dB stands for
  every path from B to A (the total derivative), except dX_k/dP with P a
  parameter, X a recurrent quantity (H_k -> H_(k+1)) and k a summation index:
  that one is the Jacobian of one step, H_(k-1) held fixed.  ``\prod_{j=a}^{b}``
  applies to the one Jacobian after it; an empty product (a > b) is the
  identity.  Factors may come in any order as long as they chain.

>>> from derive.engine.tensor import tensor
>>> t = read_formula("(o - y) * h", {"o": tensor(sympy.symbols("o1 o2")), "y": tensor([0, 1]),
...                                  "h": tensor(sympy.symbols("h1 h2 h3"))}, want=(2, 3))
>>> t.shape, t.at(1, 2)
((2, 3), h3*(o2 - 1))
>>> [t.binders for t in read_path_sum(r"\sum_{k=0}^3 \frac{\partial E_3}{\partial H_k}")]
[(('k', '0', '3'),)]
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import sympy

from derive.grading.compare import same_function
from derive.grading.latex_reader import last_side, plain_unicode
from derive.engine.ops import OPS
from derive.engine.tensor import Tensor, block_paths

MAX_TEXT = 2000
MAX_TOKENS = 600
MAX_DEPTH = 30
MAX_EXPONENT = 64
#: at most this many index assignments are expanded in one path sum
MAX_ASSIGNMENTS = 20000
#: the answer text that says a quantity is missing from a written answer
NOT_GIVEN = "not given"


class FormulaError(ValueError):
    """A written answer outside what these readers accept; the message says what."""


def is_not_given(text) -> bool:
    """True for the answers-file marker of a quantity the answer leaves out.

    >>> is_not_given("Not given"), is_not_given("0")
    (True, False)
    """
    return isinstance(text, str) and " ".join(text.split()).lower() == NOT_GIVEN


# ---------------------------------------------------------------------------
# Vector and matrix formulas

_FTOKEN = re.compile(
    r"\\(?:hat|tilde|bar)\s*(?:\{\s*[A-Za-z]+\s*\}|[A-Za-z])(?:_(?:\{[^{}]*\}|[A-Za-z0-9]))?"  # \hat{O}_2
    r"|[A-Za-z][A-Za-z0-9]*(?:_(?:\{[^{}]*\}|[A-Za-z0-9]+))*"                                 # h_{t-1}, W_i
    r"|\d*\.\d+|\d+"
    r"|\\[A-Za-z]+|\\[,;:! ]|\*\*|[-+*/@()\[\],;^{}\u00b7\u2299\u2212]|\s+|.", re.S)
_SKIP = {r"\left", r"\right", r"\,", r"\;", r"\:", r"\!", r"\ ", r"\big", r"\Big", r"\bigl", r"\bigr", "$"}
_TIMES = {"*", r"\cdot", r"\times", "\u00b7", "@"}
_HADAMARD = {r"\odot", "\u2299", r"\circ"}
_FUNCS = {r"\sigma": "sigmoid", r"\tanh": "tanh", r"\exp": "exp", r"\log": "log", r"\ln": "log"}


def written_name(tok: str) -> str:
    r"""A name as written, normalised: braces and spaces out, a hat, tilde or
    bar after the letter (``\hat{O}_2`` -> ``Ohat_2``, ``h_{t-1}`` -> ``h_t-1``).

    >>> written_name(r"\hat{O}_{2}"), written_name("h_{t-1}"), written_name("W_i")
    ('Ohat_2', 'h_t-1', 'W_i')
    """
    m = re.match(r"\\(hat|tilde|bar)\s*\{?\s*([A-Za-z]+)\s*\}?(.*)$", tok, re.S)
    if m:
        tok = m.group(2) + m.group(1) + m.group(3)
    return re.sub(r"[{}\s]", "", tok)


def _tokens(text: str) -> list:
    if not isinstance(text, str):
        raise FormulaError("expected a formula")
    if len(text) > MAX_TEXT:
        raise FormulaError(f"formula is longer than {MAX_TEXT} characters")
    out = []
    for tok in _FTOKEN.findall(text.strip().strip("$")):
        if tok.isspace() or tok in _SKIP:
            continue
        out.append("-" if tok == "\u2212" else tok)
        if len(out) > MAX_TOKENS:
            raise FormulaError(f"formula has more than {MAX_TOKENS} parts")
    return out


def read_formula(text: str, tensors: dict, want: tuple | None = None, resolve=None) -> Tensor:
    """A written vector/matrix formula as a Tensor over ``tensors`` (name ->
    Tensor).  ``resolve(written) -> name or None`` maps other spellings
    (``w_i`` -> ``W_i``); ``want`` is the shape the answer must have, which
    decides what a product of two vectors means (module docstring)."""
    reader = _FormulaReader(_tokens(text), tensors, resolve)
    out = reader.expr(want)
    if reader.pos != len(reader.t):
        raise FormulaError(f"unexpected {reader.t[reader.pos]!r}")
    return out


def _scalar(v) -> Tensor:
    return Tensor((), (sympy.sympify(v),))


class _FormulaReader:
    def __init__(self, tokens, tensors, resolve):
        self.t, self.pos, self.depth = tokens, 0, 0
        self.tensors, self.resolve = tensors, resolve

    def peek(self):
        return self.t[self.pos] if self.pos < len(self.t) else None

    def take(self, expected=None):
        tok = self.peek()
        if tok is None:
            raise FormulaError("the formula ends too early")
        if expected is not None and tok != expected:
            raise FormulaError(f"expected {expected!r}, found {tok!r}")
        self.pos += 1
        return tok

    def expr(self, want):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormulaError(f"formula is nested deeper than {MAX_DEPTH} levels")
        out = self.term(want)
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term(want)
            out = _add(out, rhs, op)
        self.depth -= 1
        return out

    def term(self, want):
        out = self.unary(want)
        while True:
            tok = self.peek()
            if tok in _TIMES or tok in _HADAMARD or tok == "/":
                self.take()
                rhs = self.unary(None)
                out = _divide(out, rhs) if tok == "/" else _product(out, rhs, want, tok in _HADAMARD, tok == "@")
            elif tok is not None and self._starts_atom(tok):
                out = _product(out, self.unary(None), want, False, False)
            else:
                return out

    def _starts_atom(self, tok):
        return tok in ("(", "[", "{") or tok[0].isalnum() or tok[0] == "." or (
            tok.startswith("\\") and tok not in _TIMES and tok not in _HADAMARD)

    def unary(self, want):
        if self.peek() in ("-", "+"):
            sign = self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FormulaError(f"formula is nested deeper than {MAX_DEPTH} levels")
            inner = self.unary(want)
            self.depth -= 1
            return Tensor(inner.shape, tuple(-e for e in inner.exprs)) if sign == "-" else inner
        return self.power(want)

    def power(self, want):
        base = self.atom(want)
        while self.peek() in ("^", "**"):
            self.take()
            tok = self.peek()
            if tok == "{":
                self.take()
                inner = self.take()
                self.take("}")
            else:
                inner = self.take()
            if inner in ("T", r"\top", r"\intercal"):
                base = _transpose(base)
            elif re.fullmatch(r"\d+", inner) and int(inner) <= MAX_EXPONENT:
                base = Tensor(base.shape, tuple(e ** int(inner) for e in base.exprs))
            else:
                raise FormulaError(f"unsupported power {inner!r} (a whole number up to {MAX_EXPONENT}, or T)")
        return base

    def atom(self, want):
        tok = self.take()
        if tok in ("(", "{"):
            inner = self.expr(want)
            self.take(")" if tok == "(" else "}")
            return inner
        if tok == "[":
            parts = [self.expr(None)]
            while self.peek() in (",", ";"):
                self.take()
                parts.append(self.expr(None))
            self.take("]")
            return _stack(parts)
        if tok == "stack" and self.peek() == "(":
            # the spec language's stack(a, b): the vector [a; b]
            self.take("(")
            parts = [self.expr(None)]
            while self.peek() == ",":
                self.take()
                parts.append(self.expr(None))
            self.take(")")
            return _stack(parts)
        if re.fullmatch(r"\d*\.\d+|\d+", tok):
            return _scalar(sympy.Rational(tok))
        if tok in _FUNCS or tok.lower() in OPS or tok in ("tanh", "exp", "log"):
            name = _FUNCS.get(tok, tok.lower())
            arg = self.atom(want)
            fn = OPS[name].sympy if name in OPS else getattr(sympy, name)
            return Tensor(arg.shape, tuple(fn(e) for e in arg.exprs))
        if tok.startswith("\\") and not tok.startswith(("\\hat", "\\tilde", "\\bar")):
            raise FormulaError(f"{tok} is not supported in a formula")
        return self.name(tok)

    def name(self, tok):
        written = written_name(tok)
        if written in self.tensors:
            return self.tensors[written]
        found = self.resolve(written) if self.resolve else None
        if found is not None:
            return self.tensors[found]
        raise FormulaError(f"{written!r} is not a quantity of this problem; known: "
                           f"{', '.join(sorted(self.tensors))}")


def _add(a: Tensor, b: Tensor, op: str) -> Tensor:
    if not b.shape:                                  # a number added to every entry
        return a + b.exprs[0] if op == "+" else a - b.exprs[0]
    if not a.shape:
        return b + a.exprs[0] if op == "+" else -b + a.exprs[0]
    if a.shape != b.shape:
        raise FormulaError(f"{op}: shapes {_shape(a)} and {_shape(b)} differ")
    return a + b if op == "+" else a - b


def _divide(a: Tensor, b: Tensor) -> Tensor:
    if b.shape:
        raise FormulaError("division by a vector or matrix")
    return a / b.exprs[0]


def _transpose(t: Tensor) -> Tensor:
    if len(t.shape) == 1:
        return Tensor((1, t.shape[0]), t.exprs)        # a row
    return t.T


def _stack(parts) -> Tensor:
    exprs = []
    for p in parts:
        if len(p.shape) > 1:
            raise FormulaError("[a, b] stacks vectors and numbers only")
        exprs.extend(p.exprs)
    return Tensor((len(exprs),), tuple(exprs))


def _product(a: Tensor, b: Tensor, want, hadamard: bool, matmul: bool) -> Tensor:
    if not a.shape or not b.shape:
        return a * b.exprs[0] if not b.shape else b * a.exprs[0]
    if hadamard:
        if a.shape != b.shape:
            raise FormulaError(f"elementwise product of shapes {_shape(a)} and {_shape(b)}")
        return a * b
    if len(a.shape) == 2 or len(b.shape) == 2:
        if len(a.shape) == 1:                        # a column times a row: the outer product
            if b.shape[0] != 1:
                raise FormulaError(f"a vector times a {_shape(b)} matrix")
            a = Tensor((a.shape[0], 1), a.exprs)
        try:
            return a @ b
        except Exception as exc:                     # GraphError: shapes do not chain
            raise FormulaError(str(exc)) from None
    if a.shape != b.shape and (want is None or len(want) != 2):
        raise FormulaError(f"product of vectors of {a.shape[0]} and {b.shape[0]} entries")
    if matmul or (want is not None and len(want) == 0):
        return _scalar(sympy.Add(*[x * y for x, y in zip(a.exprs, b.exprs)]))
    if want is not None and len(want) == 2:
        return Tensor((a.shape[0], b.shape[0]), tuple(x * y for x in a.exprs for y in b.exprs))
    return a * b


def _shape(t: Tensor) -> str:
    return " x ".join(map(str, t.shape)) if t.shape else "scalar"


# ---------------------------------------------------------------------------
# Sums over paths of Jacobian products

_BLOCK = r"[A-Za-z]+(?:_\{[^{}]*\}|_\([^()]*\)|_[A-Za-z0-9]+)?"
_RANGE_TEX = r"_\{?\s*([a-z])\s*=\s*([^{}^]+?)\s*\}?\s*\^\s*(\{[^{}]*\}|[A-Za-z0-9])"
_PTOKEN = re.compile(
    rf"(?P<sum>\\sum{_RANGE_TEX})|(?P<prod>\\prod{_RANGE_TEX})"
    r"|(?P<tsum>sum_\{\s*([a-z])\s*=\s*([^.{}]+?)\s*\.\.\s*([^{}]+?)\s*\})"
    r"|(?P<tprod>prod_\{\s*([a-z])\s*=\s*([^.{}]+?)\s*\.\.\s*([^{}]+?)\s*\})"
    rf"|(?P<frac>\\[dt]?frac\s*\{{\s*(?:\\partial|\u2202)\s*({_BLOCK})\s*\}}\s*\{{\s*(?:\\partial|\u2202)\s*({_BLOCK})\s*\}})"
    rf"|(?P<ratio>(?:\u2202|d)({_BLOCK})\s*/\s*(?:\u2202|d)({_BLOCK}))"
    r"|(?P<sep>\\cdot|\\times|\\left|\\right|\\[,;:! ]|[*()$\u00b7]|\s+)"
    r"|(?P<plus>\+)", re.S)


@dataclass(frozen=True)
class Jacobian:
    """One written factor dA/dB (names as written, indices as text), or a
    product over ``over`` = (j, lo, hi) of such a factor."""

    num: str
    den: str
    over: tuple | None = None


@dataclass(frozen=True)
class PathTerm:
    """One term of a written sum: its summation ranges (outermost first)
    and its Jacobian factors."""

    binders: tuple
    factors: tuple


def looks_like_path_sum(text) -> bool:
    r"""True for a written chain rule (``\partial``, ``d.../d...``, a sum over k).

    >>> looks_like_path_sum(r"\frac{\partial E}{\partial W}"), looks_like_path_sum("(o - y)*h")
    (True, False)
    """
    return isinstance(text, str) and bool(
        re.search(r"\\partial|\u2202|\\sum|\\prod|\bsum_\{|\bd[A-Za-z]+(?:_\S+?)?\s*/\s*d[A-Za-z]", text))


def _index_text(raw: str) -> str:
    return re.sub(r"[{}()\s]", "", raw)


def read_path_sum(text: str) -> list:
    """The terms of a written sum of Jacobian products (FormulaError if it
    is not one)."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise FormulaError("expected a written chain rule of at most 2000 characters")
    terms, binders, factors, pending = [], [], [], None
    pos = 0
    body = text.strip()
    while pos < len(body):
        m = _PTOKEN.match(body, pos)
        if m is None:
            raise FormulaError(f"cannot read {body[pos:pos + 20]!r} in a chain rule (expected "
                               r"\sum, \prod, \frac{\partial A}{\partial B}, dA/dB, \cdot, +)")
        pos = m.end()
        kind = m.lastgroup
        g = [x for x in m.groups() if x is not None]
        if kind in ("sum", "tsum"):
            if factors or pending:
                raise FormulaError("a sum must come before the factors it sums")
            binders.append((g[1], _index_text(g[2]), _index_text(g[3])))
        elif kind in ("prod", "tprod"):
            if pending:
                raise FormulaError(r"two \prod in a row")
            pending = (g[1], _index_text(g[2]), _index_text(g[3]))
        elif kind in ("frac", "ratio"):
            factors.append(Jacobian(written_name(_index_text_name(g[1])), written_name(_index_text_name(g[2])), pending))
            pending = None
        elif kind == "plus":
            terms.append(_term(binders, factors, pending))
            binders, factors, pending = [], [], None
    terms.append(_term(binders, factors, pending))
    return terms


def _index_text_name(raw: str) -> str:
    """H_(j-1) and H_{j-1} alike."""
    return re.sub(r"_\((.*)\)$", r"_{\1}", raw.strip())


def _term(binders, factors, pending) -> PathTerm:
    if pending:
        raise FormulaError(r"\prod with no Jacobian after it")
    if not factors:
        raise FormulaError("a term with no Jacobian factor")
    return PathTerm(tuple(binders), tuple(factors))


def _int(expr: str, env: dict) -> int:
    """An index expression ("k+1", "j-1", "3") under the bound indices."""
    if not re.fullmatch(r"[+-]?\w+(?:[+-]\w+)*", expr or ""):
        raise FormulaError(f"index {expr!r} is not a sum of indices and whole numbers")
    total = 0
    for sign, part in re.findall(r"([+-]?)(\w+)", expr):
        if part.isdigit():
            v = int(part)
        elif part in env:
            v = env[part]
        else:
            raise FormulaError(f"index {part!r} is not bound by a sum or product")
        total += -v if sign == "-" else v
    return total


def _assignments(binders: tuple, env: dict):
    if not binders:
        yield dict(env)
        return
    var, lo, hi = binders[0]
    for v in range(_int(lo, env), _int(hi, env) + 1):
        yield from _assignments(binders[1:], {**env, var: v})


@dataclass
class PathVerdict:
    verdict: str            # correct | equivalent | incorrect | unparseable
    message: str
    paths: dict             # missing / extra / empty: lists of text
    answer: Counter = None  # the paths the answer stands for (tuples), with multiplicity


def _block(written: str, env: dict, blocks: set) -> str:
    """A written name with its index evaluated: H_{k} with k = 2 -> H_2;
    H_0 is the given H0."""
    m = re.fullmatch(r"([A-Za-z]+)_(.+)", written)
    name = written
    if m and not m.group(2).isdigit():
        name = f"{m.group(1)}_{_int(m.group(2), env)}"
    for cand in (name, name.replace("_", "")):
        if cand in blocks:
            return cand
    raise FormulaError(f"{name} is not a quantity of this unrolled graph")


def judge_paths(text: str, edges: dict, param: str, loss: str, recurrent: set, givens: set,
                implicit: dict | None = None) -> PathVerdict:
    """Compare the paths a written sum stands for with those of the graph
    (``edges``: quantity -> quantities it feeds) from ``param`` to ``loss``.
    ``implicit`` maps a block (E_t) to the loss it feeds with local
    derivative 1, so dE_t/dW may stand for dE/dE_t dE_t/dW."""
    try:
        terms = read_path_sum(text)
    except FormulaError as exc:
        return PathVerdict("unparseable", str(exc), {})
    blocks = set(edges) | {b for bs in edges.values() for b in bs}
    answer: Counter = Counter()
    empty = []
    try:
        for term in terms:
            count = 0
            for env in _assignments(term.binders, {}):
                count += 1
                if count > MAX_ASSIGNMENTS:
                    raise FormulaError(f"more than {MAX_ASSIGNMENTS} index values")
                paths, why = _term_paths(term, env, edges, blocks, param, loss, recurrent, givens, implicit or {})
                label = ", ".join(f"{k} = {v}" for k, v in env.items())
                if not paths:
                    empty.append(f"the term {label + ' ' if label else ''}is zero: {why}")
                answer.update(tuple(p) for p in paths)
    except FormulaError as exc:
        return PathVerdict("incorrect", str(exc), {})
    right = Counter(tuple(p) for p in block_paths(edges, param, loss))
    missing = sorted((right - answer).elements(), key=len)
    extra = sorted((answer - right).elements(), key=len)
    var = next((t.binders[0][0] for t in terms if t.binders), "k")
    show = {"missing": [_entry(p, recurrent, var) + path_text(p) for p in missing],
            "extra": [_entry(p, recurrent, var) + path_text(p) for p in extra], "empty": empty}
    notes = []
    if missing:
        notes.append("misses the path" + ("s " if len(missing) > 1 else " ") + "; ".join(show["missing"]))
    if extra:
        notes.append("counts " + "; ".join(show["extra"]) + " more often than the graph has it")
    notes += empty
    if not missing and not extra:
        if empty:
            return PathVerdict("equivalent", "the same paths as the unrolled graph; " + "; ".join(empty),
                               show, answer)
        return PathVerdict("correct", "", show, answer)
    return PathVerdict("incorrect", "; ".join(notes), show, answer)


def _term_paths(term, env, edges, blocks, param, loss, recurrent, givens, implicit):
    """The graph paths one term stands for at one index assignment, and
    why there are none (when there are none)."""
    jac = []
    for f in term.factors:
        if f.over is None:
            jac.append((f, env))
            continue
        var, lo, hi = f.over
        lo_v, hi_v = _int(lo, env), _int(hi, env)
        if hi_v - lo_v > MAX_ASSIGNMENTS:
            raise FormulaError(f"a product over more than {MAX_ASSIGNMENTS} index values")
        for j in range(hi_v, lo_v - 1, -1):
            jac.append((f, {**env, var: j}))
    factors = []
    for f, e in jac:
        a, b = _block(f.num, e, blocks), _block(f.den, e, blocks)
        idx_vars = set(re.findall(r"[a-z]", f.num.split("_", 1)[1])) if "_" in f.num else set()
        one_step = (b == param and re.sub(r"_\d+$", "", a) in recurrent and bool(idx_vars & set(term_vars(term))))
        factors.append((a, b, one_step, f))
    # chain from the top (a numerator that is no factor's denominator) down to the parameter
    dens = Counter(b for a, b, _, _ in factors if a != b)
    tops = [x for x in factors if x[0] != x[1] and dens[x[0]] == 0] or factors[:1]
    top = tops[0][0]
    order, cur, left = [], top, list(factors)
    while left:
        # an identity dH_3/dH_3 (k = 3) first: it does not move along the chain
        nxt = sorted((x for x in left if x[0] == cur), key=lambda x: x[0] != x[1])
        if not nxt:
            raise FormulaError(f"the factors do not chain: nothing continues from {cur} "
                               f"({', '.join(f'd{a}/d{b}' for a, b, _, _ in left)} left)")
        order.append(nxt[0])
        left.remove(nxt[0])
        cur = nxt[0][1]
    if cur != param:
        raise FormulaError(f"the chain ends at {shown_block(cur)}, not at {param}")
    paths = [[top]]
    if top != loss:
        if implicit.get(top) != loss:
            raise FormulaError(f"the chain starts at {shown_block(top)}, not at {loss}")
        paths = [[loss, top]]
    for a, b, one_step, _f in order:
        if a == b:
            continue
        if one_step:
            segs = [[a, b]] if a in edges.get(b, []) else []
        else:
            segs = [list(reversed(p)) for p in block_paths(edges, b, a)]
        if not segs:
            A, Bn = shown_block(a), shown_block(b)
            reason = f"{A} is given" if a in givens else f"{Bn} does not reach {A}" + (" in one step" if one_step else "")
            return [], f"d{A}/d{Bn} = 0 ({reason})"
        paths = [p + s[1:] for p in paths for s in segs]
    return [list(reversed(p)) for p in paths], ""


def _entry(path, recurrent: set, var: str) -> str:
    """'k = 3: ' for a path entering the recurrence at H_3."""
    m = re.fullmatch(r"([A-Za-z]+)_(\d+)", path[1]) if len(path) > 1 else None
    return f"{var} = {m.group(2)}: " if m and m.group(1) in recurrent else ""


def shown_block(b: str) -> str:
    """H0 as H_0 (the given first state, named like the others)."""
    return re.sub(r"^([A-Za-z]+)(\d+)$", r"\1_\2", b)


def path_text(path) -> str:
    """A path as text: W -> H_3 -> O_3 -> E_3."""
    return " -> ".join(shown_block(b) for b in path)


def term_vars(term: PathTerm) -> list:
    return [b[0] for b in term.binders]


__all__ = ["read_formula", "read_path_sum", "judge_paths", "looks_like_path_sum", "is_not_given",
           "written_name", "FormulaError", "NOT_GIVEN", "PathVerdict"]


# ---------------------------------------------------------------------------
# A forward quantity of a vector/matrix problem, judged as a formula


class TensorFormula:
    """Judges a written formula for a computed quantity of a
    :class:`~derive.engine.tensor.TensorGraph` (an LSTM gate, say): entry by entry,
    after every intermediate name is replaced by its definition, so a gate
    written in one line (``\\sigma(W_i [h_prev; x] + b_i)``) equals derive's
    i = sigmoid(z_i).  ``shown`` is derive's own form of the quantity (its
    worked solution's equation), ``resolve`` maps other spellings.  Numbers
    and lists are left to the usual answer key (``accepts``)."""

    def __init__(self, tg, name: str, shown: str, resolve=None):
        self.tg, self.name, self.shown, self.resolve = tg, name, shown, resolve

    @property
    def expected(self) -> str:
        return self.form

    @property
    def form(self) -> str:
        return f"{self.name} = {self.shown}"

    def accepts(self, text) -> bool:
        from derive.engine.parse import ExprError, number

        if not isinstance(text, str):
            return False
        try:
            number(last_side(text)[0].strip().strip("$"))
            return False
        except ExprError:
            return True

    def _expand(self):
        if not hasattr(self, "_sub"):
            sub = {}
            for node in self.tg.graph.nodes.values():
                if node.expr is not None:
                    sub[node.symbol] = node.expr.xreplace(sub)
            self._sub = sub
        return self._sub

    def read(self, text: str) -> Tensor:
        t = self.tg.tensors[self.name]
        return read_formula(text, self.tg.tensors, t.shape, self.resolve)

    def judge(self, text):
        right_t = self.tg.tensors[self.name]
        text, note = last_side(plain_unicode(str(text)))
        if note and not text.startswith("$") and str(text).rstrip().endswith("$"):
            text = text.rstrip().rstrip("$")
        try:
            mine = self.read(text)
        except FormulaError as exc:
            return "unparseable", str(exc), {"form": self.form}
        verdict, msg, extra = self._judge_read(mine, right_t)
        if note:
            msg = f"{msg}; {note}" if msg else note
        return verdict, msg, extra

    def _judge_read(self, mine, right_t):
        if mine.shape != right_t.shape:
            return "incorrect", (f"a {_shape(mine)} formula; {self.name} is "
                                 f"{' x '.join(map(str, right_t.shape))}"), {"form": self.form}
        sub = self._expand()
        a = [e.xreplace(sub) for e in mine.exprs]
        b = [e.xreplace(sub) for e in right_t.exprs]
        if a == b:
            return "correct", "", {"form": self.form}
        if all(same_function(x, y, None) for x, y in zip(a, b)):
            return "equivalent", f"equal to {self.form}", {"form": self.form}
        bad = [k for k, (x, y) in enumerate(zip(a, b)) if not same_function(x, y, None)]
        msg = f"not the same function as {self.form} (entr{'y' if len(bad) == 1 else 'ies'} " \
              f"{', '.join(str(k + 1) for k in bad)})"
        extra = {"form": self.form, "code": None}
        for other, t in self.tg.tensors.items():
            if other != self.name and t.shape == right_t.shape and self.tg.kinds[other] in ("forward", "loss"):
                if all(same_function(x, e.xreplace(sub), None) for x, e in zip(a, t.exprs)):
                    msg += f"; this is derive's {other}"
                    extra["code"] = f"value-of:{other}"
                    return "incorrect", msg, extra
        # entry by entry: which term, gate or function differs
        found = {}
        for k in bad:
            why = self._explain(right_t.exprs[k], a[k])
            if why is not None:
                found.setdefault(why, []).append(k + 1)
        if found:
            parts = [f"{sentence} (entr{'y' if len(ks) == 1 else 'ies'} {', '.join(map(str, ks))})"
                     for (code, sentence), ks in found.items()]
            msg += "; " + "; ".join(parts)
            extra["code"] = next(iter(found))[0]
        return "incorrect", msg, extra

    def _names(self) -> dict:
        """symbol -> the name of the vector it is an entry of (c_1 -> c)."""
        if not hasattr(self, "_sym_names"):
            self._sym_names = {e: sympy.Symbol(n) for n, t in self.tg.tensors.items() for e in t.exprs
                               if isinstance(e, sympy.Symbol)}
        return self._sym_names

    def _explain(self, right_sym, mine_expanded):
        """(code, sentence) for one wrong entry: the entry's own equation
        (c_1 = f_1 c_prev_1 + i_1 g_1) changed in one way a student does
        (two quantities exchanged, one activation for another, a function
        left out, a term or factor left out) equals the answer; else None."""
        node = self.tg.graph.nodes.get(str(right_sym))
        body = node.expr if node is not None and node.expr is not None else right_sym
        sub = self._expand()
        names = self._names()
        show = lambda e: str(e.xreplace(names))  # noqa: E731
        for code, sentence, alt in _alternatives(body, names, show, self.tg.kinds):
            try:
                if same_function(mine_expanded, alt.xreplace(sub), None):
                    return code, sentence
            except (TypeError, ValueError):
                continue
        return None


#: activations a student may write one for another
_ACTIVATIONS = ("sigmoid", "tanh", "relu")


def _alternatives(body, names: dict, show, kinds: dict):
    """(code, sentence, changed equation) for the mistakes tried on one
    entry's equation, most specific first (two gates exchanged before a
    gate and a given)."""
    syms = sorted((s for s in body.free_symbols if s in names), key=str)
    pairs = [(s1, s2) for k, s1 in enumerate(syms) for s2 in syms[k + 1:] if names[s1] != names[s2]]
    given = lambda s: kinds.get(str(names[s])) != "forward"  # noqa: E731
    for s1, s2 in sorted(pairs, key=lambda p: given(p[0]) + given(p[1])):
        n1, n2 = str(names[s1]), str(names[s2])
        yield (f"exchanged:{n1},{n2}", f"{n1} and {n2} exchanged", body.xreplace({s1: s2, s2: s1}))
    apps = sorted(body.atoms(sympy.Function), key=str)
    for app in apps:
        fname = app.func.__name__
        if fname in _ACTIVATIONS:
            for other in _ACTIVATIONS:
                if other != fname:
                    yield (f"wrong-activation:{other}-for-{fname}", f"{other} in place of {fname} in {show(app)}",
                           body.xreplace({app: OPS[other].sympy(*app.args)}))
        if len(app.args) == 1:
            yield (f"missing-function:{fname}", f"{show(app)} written without its {fname}: {show(app.args[0])}",
                   body.xreplace({app: app.args[0]}))
    if body.is_Add:
        for term in body.args:
            yield f"missing-term:{show(term)}", f"the term {show(term)} is missing", body - term
    if body.is_Mul:
        for fac in body.args:
            if fac.free_symbols:
                yield f"missing-factor:{show(fac)}", f"the factor {show(fac)} is missing", body / fac
    if body.is_Add:
        for term in body.args:
            yield f"sign:{show(term)}", f"the sign of {show(term)} is flipped", body - 2 * term


__all__ += ["TensorFormula"]
