"""Checking hand answers against a worked solution.

The checker reads the recorded derivation (forward nodes, the chain-rule
``steps``, the update rule) and never derives anything again.  From it it
builds an :class:`AnswerKey`: every quantity a hand answer can name (forward
values, adjoints ``dL/dz1``, updated parameters ``w1``), its exact value, and
how it is computed from the quantities right before it.  Recomputing each
quantity from the answerer's *own* earlier values is what recognises error
carried forward and rounded intermediates; doing that with numpy over all
rows at once is what makes a class of 2,000 fast.

>>> from derive.problems import load
>>> sol = load("mlp-relu-regression").solve()
>>> res = check(sol, {"L": "0.0613", "dL/do1": 0.35, "dL/dw5": 0.105, "w5": 0.4475})
>>> [(i["name"], i["verdict"]) for i in res["items"]]  # doctest: +NORMALIZE_WHITESPACE
[('L', 'rounding'), ('dL/do1', 'incorrect'), ('dL/dw5', 'carried-forward'),
 ('w5', 'carried-forward')]
>>> res["items"][2]["message"]
'consistent with your earlier dL/do1 = 0.35 (right value: -0.105)'
"""
from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import sympy

from .answers import Batch, as_texts, decimals
from .budget import ANSWER_SECONDS, bounded, to_float
from .fmt import num_text
from .judges import NOT_GIVEN, is_not_given
from .latexin import LatexError, latex_to_expr, looks_like_latex
from .ops import OPS, op_of, step
from .parse import ExprError, ExprLimitError, number, parse_expr_safe

#: default tolerances: |given - exact| <= max(RTOL * |exact|, ATOL) is correct
RTOL = 1e-6
ATOL = 1e-9
#: a rounded answer may be off by at most this share of the value it rounds
#: (so "0" is not a rounding of 0.04, nor "1" of 0.7)
ROUNDING_MAX_REL = 0.2
VERDICTS = ("correct", "equivalent", "rounding", "carried-forward", "incorrect", "unknown-name",
            "unparseable")
#: verdicts that count as right (exit code 0)
ACCEPTED = ("correct", "equivalent", "rounding")
#: at most this many "derivative at the wrong point" variants are tried
MAX_VARIANTS = 200
#: formula comparison: random points besides the problem's own point
FORMULA_POINTS = 8
FORMULA_SEED = 20240601
#: expressions larger than this are compared at points only (no expand)
EXACT_COMPARE_OPS = 200
#: ... or whose expansion would have more terms than this (a hostile (a + b)**64)
EXPAND_TERMS = 400
#: a wrong formula's difference from the right one is factored up to this degree
FACTOR_DEGREE = 6
#: longer conditions / differences are not printed in a message
SHOWN_CHARS = 80

C, EQ, RND, CF, INC, UNK, UNP = range(7)   # verdict codes, in VERDICTS order

NUMPY_FUNCS = {name: op.numpy for name, op in OPS.items()}


class CheckError(ValueError):
    """The answers cannot be checked against this problem (not a bad answer)."""


@dataclass
class Quantity:
    """One checkable quantity: its exact value and how it is computed."""

    qid: str                 # canonical name: "z1", "dL/dz1", "w1+"
    kind: str                # given | forward | adjoint | update
    node: str
    exact: object            # sympy number
    value: float
    parents: tuple = ()      # qids the computation reads
    fn: object = None        # numpy function of the parents' values
    label: str = ""          # how messages name it


def _lambdify(symbols, expr):
    return sympy.lambdify(symbols, expr, modules=[NUMPY_FUNCS, "numpy"])


class AnswerKey:
    """Every answerable quantity of a gradient problem's solution, in
    computation order, read from its recorded derivation.

    >>> from derive.problems import load
    >>> key = AnswerKey(load("mlp-relu-regression").solve())
    >>> key.resolve("dE/dw_1"), key.resolve("w1_new"), key.resolve("loss")
    (('dL/dw1',), ('w1+',), ('L',))
    """

    def __init__(self, solution):
        self.solution = solution
        g = self.graph = solution.graph
        d = self.derivation = solution.derivation
        ev = solution.evaluation
        self.loss = g.loss
        self.quantities: list[Quantity] = []
        self.symbols = {n: node.symbol for n, node in g.nodes.items()}
        sym_to_name = {node.symbol: n for n, node in g.nodes.items()}
        params = set(g.parameters)

        for n, node in g.nodes.items():
            v = solution.forward[n]
            if node.expr is None:
                label = f"{n} before the update" if n in params else n
                self._add(Quantity(n, "given", n, v, float(v), label=label))
            else:
                syms = sorted(node.expr.free_symbols, key=str)
                self._add(Quantity(n, "forward", n, v, float(v), tuple(sym_to_name[s] for s in syms),
                                   _lambdify(syms, node.expr), n))
        adj_of = {}
        for s in d.steps:
            v = ev.adjoint[s.node]
            adj_of[s.symbol] = s.name
            if not s.terms:
                self._add(Quantity(s.name, "adjoint", s.node, v, float(v), label=s.name))
                continue
            syms = sorted(s.expr.free_symbols, key=str)
            parents = tuple(adj_of[x] if x in adj_of else sym_to_name[x] for x in syms)
            self._add(Quantity(s.name, "adjoint", s.node, v, float(v), parents, _lambdify(syms, s.expr),
                               s.name))
        for p in g.parameters:
            if p not in d.by_node:  # does not reach the loss: gradient 0
                name = f"d{self.loss}/d{p}"
                self._add(Quantity(name, "adjoint", p, sympy.Integer(0), 0.0, label=name))
        P, G = sympy.Symbol("P", real=True), sympy.Symbol("G", real=True)
        self.update_expr, _ = solution.optimizer.update(P, G, solution.optimizer.initial_state(), 1)
        self._P, self._G = P, G
        fn = _lambdify([P, G], self.update_expr)
        for p in g.parameters:
            v = solution.updates[p]
            self._add(Quantity(f"{p}+", "update", p, v, float(v), (p, f"d{self.loss}/d{p}"), fn,
                               f"{p} after the update"))
        self.index = {q.qid: i for i, q in enumerate(self.quantities)}
        self.exact = np.array([q.value for q in self.quantities])
        self._names = self._answer_names()
        self._variants = None
        self._chains = None

    def _add(self, q: Quantity):
        self.quantities.append(q)

    # -- names ----------------------------------------------------------
    def _answer_names(self) -> dict:
        """Every spelling a hand answer may use -> tuple of qids."""
        g = self.graph
        names: dict = {}
        params = set(g.parameters)
        adj = {q.node: q.qid for q in self.quantities if q.kind == "adjoint"}
        for n in g.nodes:
            if n in params:
                for alias in (n, f"{n}_new", f"{n}+", f"{n}'"):
                    names[alias] = (f"{n}+",)
            else:
                names[n] = (n,)
            if n in adj:
                names[f"d{self.loss}/d{n}"] = (adj[n],)
        names["loss"] = (self.loss,)
        for grp in g.groups.values():
            if grp.kind == "parameter":
                for alias in (grp.name, f"{grp.name}_new", f"{grp.name}+"):
                    names[alias] = tuple(f"{n}+" for n in grp.names)
            else:
                names[grp.name] = tuple(grp.names)
            if all(n in adj for n in grp.names):
                names[f"d{self.loss}/d{grp.name}"] = tuple(adj[n] for n in grp.names)
        return names

    def shape_of(self, name: str):
        for grp in self.graph.groups.values():
            if name == grp.name:
                return grp.shape
        return None

    def resolve(self, name: str) -> tuple:
        """The qids an answer's name stands for; CheckError if unknown."""
        key = _normal_name(name)
        m = re.fullmatch(r"d(\w+)/d(.+)", key)
        if m and m.group(1) in ("L", "E", "J", "C", "loss", self.loss):
            key = f"d{self.loss}/d{m.group(2)}"
        for cand in _spellings(key):
            if cand in self._names:
                return self._names[cand]
        close = difflib.get_close_matches(key, list(self._names), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CheckError(f"{name!r} is not a quantity of this problem{hint}")

    def group_shape(self, name: str):
        key = _normal_name(name)
        m = re.fullmatch(r"d(\w+)/d(.+)", key)
        base = m.group(2) if m else re.sub(r"(_new|\+)$", "", key)
        return self.shape_of(base)

    # -- recomputation from the answerer's own values ---------------------
    def own_values(self, given: np.ndarray):
        """(own, recomputed): ``given`` is rows x quantities with NaN where
        nothing was given.  recomputed[:, q] is q computed from the row's own
        values of its parents; own is the given value where there is one,
        else the recomputed one."""
        n = given.shape[0]
        own = np.empty_like(given)
        rec = np.empty_like(given)
        with np.errstate(all="ignore"):
            for i, q in enumerate(self.quantities):
                if q.fn is None:
                    rec[:, i] = q.value
                else:
                    args = [own[:, self.index[p]] for p in q.parents]
                    rec[:, i] = np.broadcast_to(np.asarray(q.fn(*args), dtype=float), (n,))
                col = given[:, i]
                own[:, i] = np.where(np.isnan(col), rec[:, i], col)
        return own, rec

    def variants(self) -> list:
        """Mistake models: (description, values of every quantity) when one
        activation's derivative is taken at the wrong point or left out."""
        if self._variants is not None:
            return self._variants
        g = self.graph
        fwd = self.solution.forward
        nums = {g.nodes[n].symbol: v for n, v in fwd.items()}
        act = [n for n, node in g.nodes.items() if node.expr is not None and op_of(node.expr) is not None
               and op_of(node.expr).name != "step"]
        rows, descs = [], []
        for s in self.derivation.steps:
            for t in s.terms:
                if t.via not in act:
                    continue
                cnode = g.nodes[t.via]
                op = op_of(cnode.expr)
                arg = cnode.expr.args[0]
                inner = _local(arg, g.nodes[s.node].symbol)
                right = op.derivative(arg, cnode.symbol)
                cands = []
                arg_v, out_v = arg.xreplace(nums), fwd[t.via]
                cands.append((op.derivative(out_v, op.sympy(out_v)),
                              f"the derivative of {t.via} = {op.name}({_short(arg)}) taken at its output "
                              f"{t.via} instead of its input"))
                if cnode.symbol in right.free_symbols:
                    cands.append((right.xreplace({cnode.symbol: arg_v}),
                                  f"the derivative of {t.via} = {op.name}(...) written with its input "
                                  f"in place of its output ({_short(right)} with {t.via} -> {_short(arg)})"))
                cands.append((sympy.Integer(1),
                              f"the derivative of {t.via} = {op.name}(...) left out of the chain"))
                for other in act:
                    onode = g.nodes[other]
                    if other != t.via and op_of(onode.expr) is op:
                        oarg = onode.expr.args[0].xreplace(nums)
                        cands.append((op.derivative(oarg, fwd[other]),
                                      f"the derivative of {t.via} = {op.name}(...) taken at the point of "
                                      f"{other} instead of {t.via}"))
                right_v = right.xreplace({cnode.symbol: out_v}).xreplace(nums)
                for factor, desc in cands:
                    try:
                        fv = float(sympy.N(factor.xreplace(nums)))
                        rv = float(sympy.N(right_v))
                        inner_v = float(sympy.N(inner.xreplace(nums)))
                    except (TypeError, ValueError):
                        continue
                    if not math.isfinite(fv) or abs(fv - rv) <= 1e-12 * max(1, abs(rv)):
                        continue
                    rows.append((s.name, t.via, (fv - rv) * inner_v))
                    descs.append(desc)
                    if len(rows) >= MAX_VARIANTS:
                        break
        out = []
        if rows:
            given = np.full((len(rows), len(self.quantities)), np.nan)
            ev = self.solution.evaluation
            for r, (name, via, delta) in enumerate(rows):
                i = self.index[name]
                q = self.quantities[i]
                up = float(ev.adjoint[via])
                given[r, i] = q.value + up * delta
            own, _ = self.own_values(given)
            out = list(zip(descs, own))
        self._variants = out
        return out

    def rounded_chains(self) -> list:
        """The key recomputed with every intermediate rounded as a key
        prints it: (how, values), for 2-4 significant digits / decimals."""
        if self._chains is not None:
            return self._chains
        out = []
        for how, k in (("decimals", 2), ("decimals", 3), ("significant digits", 2),
                       ("significant digits", 3), ("significant digits", 4)):
            # raw[i]: quantity i computed from rounded earlier values, itself
            # unrounded (an answer may show it to any precision)
            vals = np.empty(len(self.quantities))
            raw = np.empty(len(self.quantities))
            with np.errstate(all="ignore"):
                for i, q in enumerate(self.quantities):
                    v = q.value if q.fn is None else float(q.fn(*[vals[self.index[p]] for p in q.parents]))
                    raw[i] = v
                    vals[i] = v if q.kind == "given" else _round(v, how, k)
            out.append((f"intermediates rounded to {k} {how}", raw))
        self._chains = out
        return out

    # -- formulas ---------------------------------------------------------
    def forms(self, qid: str) -> dict:
        """The key's formulas for a quantity: 'general' (in the givens),
        'chain' (in forward names), 'step' (upstream adjoints as numbers)."""
        q = self.quantities[self.index[qid]]
        g, d = self.graph, self.derivation
        out = {}
        if q.kind == "given":
            out["general"] = g.nodes[q.node].symbol
        elif q.kind == "forward":
            out["step"] = g.nodes[q.node].expr
            out["general"] = self.expand_forward(g.nodes[q.node].symbol)
        elif q.kind == "adjoint":
            step_ = d.by_node.get(q.node)
            if step_ is None:
                return {"general": sympy.Integer(0)}
            ups = {t.upstream: self.solution.evaluation.adjoint[t.via] for t in step_.terms}
            out["step"] = step_.expr.xreplace(ups) if step_.terms else sympy.Integer(1)
            chain = d.in_forward_names(q.node)
            if chain is not None:
                out["chain"] = chain
            gen = d.expanded(q.node)
            if gen is not None:
                out["general"] = gen
        else:
            p = g.nodes[q.node].symbol
            grad = self.quantities[self.index[f"d{self.loss}/d{q.node}"]]
            out["step"] = self.update_expr.xreplace({self._P: p, self._G: grad.exact})
            gforms = self.forms(grad.qid)
            for name in ("chain", "general"):
                if name in gforms:
                    out[name] = self.update_expr.xreplace({self._P: p, self._G: gforms[name]})
        return out

    def expand_forward(self, expr):
        """``expr`` with every forward name replaced by its definition in the
        givens (None if the graph is too large to expand)."""
        if not hasattr(self, "_fwd_sub"):
            from .backprop import EXPAND_LIMIT_NODES

            sub = {}
            if len(self.graph.nodes) <= EXPAND_LIMIT_NODES:
                for node in self.graph.nodes.values():
                    if node.expr is not None:
                        sub[node.symbol] = node.expr.xreplace(sub)
                self._fwd_sub = sub
            else:
                self._fwd_sub = None
        if self._fwd_sub is None:
            return None
        return expr.xreplace(self._fwd_sub)

    def point(self) -> dict:
        return {self.graph.nodes[n].symbol: v for n, v in self.solution.forward.items()}


def _local(expr, wrt):
    from .backprop import local_derivative

    return local_derivative(expr, wrt)


def _short(expr) -> str:
    s = str(expr)
    return s if len(s) <= 30 else s[:27] + "..."


def _round(v: float, how: str, k: int) -> float:
    if not math.isfinite(v) or v == 0:
        return v
    if how == "decimals":
        return round(v, k)
    return round(v, k - 1 - int(math.floor(math.log10(abs(v)))))


_SUBSCRIPT = re.compile(r"_\{?(\w+?)\}?$")


def _normal_name(name: str) -> str:
    r"""Spacing, $...$, \partial and braces out of an answer's name."""
    s = str(name).strip().strip("$").replace("∂", "d").replace("\\partial", "d")
    m = re.fullmatch(r"\\frac\{\s*d\s*(\w+)\s*\}\{\s*d\s*(.+?)\s*\}", s)
    if m:
        s = f"d{m.group(1)}/d{m.group(2)}"
    s = re.sub(r"\s+", "", s)
    s = s.replace("{", "").replace("}", "")
    return s


def _spellings(key: str):
    """The name as given, then with LaTeX-style subscripts joined (w_1 -> w1)."""
    yield key
    m = re.fullmatch(r"(d\w+/d)(.+)", key)
    head, tail = (m.group(1), m.group(2)) if m else ("", key)
    suffix = ""
    for end in ("_new", "+", "'"):
        if tail.endswith(end) and len(tail) > len(end):
            tail, suffix = tail[: -len(end)], end
            break
    joined = re.sub(r"([A-Za-z])_(\d+)", r"\1\2", tail)
    if joined != tail:
        yield head + joined + suffix
    sup = re.fullmatch(r"([A-Za-z]+)\^(\w+)_(\w+)", tail)
    if sup:
        yield head + f"{sup.group(1)}{sup.group(2)}_{sup.group(3)}" + suffix


# ---------------------------------------------------------------------------
# Parsing one answer


@dataclass
class Parsed:
    kind: str                   # number | formula | error
    value: float = math.nan
    decimals: int | None = None
    expr: object = None
    error: str = ""


@bounded(ANSWER_SECONDS, "reading one answer", lambda msg, *a, **k: Parsed("error", error=msg))
def parse_answer(text: str, key: AnswerKey | None) -> Parsed:
    """A number (with the decimals it shows), a formula over the problem's
    names, or an error.  Never evaluates user text."""
    t = _TIMES.sub("*", str(text).strip().replace("\u2212", "-").replace("\u00d7", "*"))
    if not t:
        return Parsed("error", error="empty answer")
    try:
        v = number(t)
        return Parsed("number", float(v), decimals(t))
    except ExprError:
        pass
    names = key.symbols if key is not None else {}
    try:
        if looks_like_latex(t):
            try:
                expr = parse_expr_safe(t, names)
            except ExprLimitError:
                raise                  # too large as written: LaTeX reading would only hide why
            except ExprError:
                expr = parse_expr_safe(latex_to_expr(t, set(names)), names)
        else:
            expr = parse_expr_safe(t, names)
    except (ExprError, LatexError) as exc:
        return Parsed("error", error=str(exc))
    if not expr.free_symbols:
        try:
            v = to_float(expr)
        except ValueError as exc:
            return Parsed("error", error=str(exc))
        return Parsed("number", v, _shown_decimals(t))
    return Parsed("formula", expr=expr)


#: "5 x 5 x 32" as written in tables: an x between spaced numbers is a product
_TIMES = re.compile(r"(?<=[\d)])\s+x\s+(?=[\d(])")


def _shown_decimals(text: str):
    """Decimals of arithmetic written with numbers (".5 * .35"): the most shown."""
    found = [decimals(m) for m in re.findall(r"\d*\.\d+|\d+", text)]
    found = [d for d in found if d is not None]
    return max(found) if found else None


# ---------------------------------------------------------------------------
# Verdicts, vectorised over rows


def _tol(e, rtol, atol):
    return np.maximum(rtol * np.abs(e), atol)


def _half_ulp(dec):
    return 0.5 * np.power(10.0, -dec.astype(float)) * (1 + 1e-9)


@dataclass
class _Table:
    """Answers of many rows laid out for numpy: rows x quantities."""

    given: np.ndarray
    dec: np.ndarray          # decimals shown (-1: exact / unknown)
    formula_verdict: np.ndarray   # -1, or a verdict code decided for a formula cell
    cells: list = field(default_factory=list)    # per row: [(name, text, qids | None, parsed list | error)]


def check_table(key: AnswerKey, rows: list, rtol=RTOL, atol=ATOL) -> list:
    """Check many answer mappings ({name: text}) at once; one result per row
    (items in each row's own order)."""
    nq = len(key.quantities)
    n = len(rows)
    given = np.full((n, nq), np.nan)
    dec = np.full((n, nq), -1, dtype=np.int64)
    fverd = np.full((n, nq), -1, dtype=np.int64)
    cells = []
    parse_cache: dict = {}
    formula_cache: dict = {}
    point = None
    for r, answers in enumerate(rows):
        row_cells = []
        for name, text in answers.items():
            try:
                qids = key.resolve(name)
            except CheckError as exc:
                row_cells.append((name, text, None, str(exc)))
                continue
            texts = _flatten(text)
            if len(qids) > 1 and not isinstance(text, list) or len(texts) != len(qids):
                shape = key.group_shape(name)
                row_cells.append((name, text, qids, f"expected {len(qids)} numbers"
                                  + (f" (shape {'x'.join(map(str, shape))})" if shape else "")))
                continue
            parsed = []
            for qid, t in zip(qids, texts):
                ck = (t,)
                p = parse_cache.get(ck)
                if p is None:
                    p = parse_cache[ck] = parse_answer(t, key)
                parsed.append(p)
                i = key.index[qid]
                if p.kind == "number":
                    if np.isnan(given[r, i]):
                        given[r, i] = p.value
                        dec[r, i] = -1 if p.decimals is None else p.decimals
                elif p.kind == "formula":
                    fk = (qid, str(p.expr))
                    if fk not in formula_cache:
                        point = point or key.point()
                        formula_cache[fk] = judge_formula(key, qid, p.expr, point, rtol, atol)
                    code, _msg, value = formula_cache[fk]
                    given[r, i] = value
                    fverd[r, i] = code
            row_cells.append((name, text, qids, parsed))
        cells.append(row_cells)
    table = _Table(given, dec, fverd, cells)
    verdict, detail = _verdicts(key, table, rtol, atol)
    return _items(key, table, verdict, detail, formula_cache, rtol, atol)


def _flatten(text):
    if isinstance(text, list):
        out = []
        for t in text:
            out.extend(_flatten(t))
        return out
    return [text]


def _verdicts(key: AnswerKey, tb: _Table, rtol, atol):
    """Verdict codes (rows x quantities, -1 where not given) and, per cell,
    which rule decided it."""
    G, D = tb.given, tb.dec
    own, rec = key.own_values(G)
    e = key.exact
    n, nq = G.shape
    verdict = np.full((n, nq), -1, dtype=np.int64)
    how = np.zeros((n, nq), dtype=np.int64)   # 1 rounded, 2 truncated, 3 rounded chain, 4 own chain
    bad = np.zeros((n, nq), dtype=bool)       # own value deviates because of a wrong answer
    rnd = np.zeros((n, nq), dtype=bool)       # ... because of a rounded answer
    chains = key.rounded_chains()
    with np.errstate(all="ignore"):
        for i, q in enumerate(key.quantities):
            col = G[:, i]
            has = ~np.isnan(col)
            pidx = [key.index[p] for p in q.parents]
            up_bad = np.any(bad[:, pidx], axis=1) if pidx else np.zeros(n, dtype=bool)
            up_rnd = np.any(rnd[:, pidx], axis=1) if pidx else np.zeros(n, dtype=bool)
            diff = np.abs(col - e[i])
            hu = np.where(D[:, i] >= 0, _half_ulp(np.maximum(D[:, i], 0)), -1.0)
            ulp = np.where(D[:, i] >= 0, 2 * hu, -1.0)
            small = diff <= ROUNDING_MAX_REL * abs(e[i])
            correct = diff <= _tol(e[i], rtol, atol)
            rounded = (diff <= hu) & small
            # truncated: |given| below |exact|, same sign, within one unit of the last digit
            truncated = (diff < ulp * (1 - 1e-6)) & small & (np.abs(col) < np.abs(e[i])) & (col * e[i] >= 0)
            r = rec[:, i]
            rdiff = np.abs(col - r)
            own_ok = ((rdiff <= _tol(r, rtol, atol)) | ((rdiff <= hu) & (rdiff <= ROUNDING_MAX_REL * np.abs(r))))
            own_ok &= (up_bad | up_rnd)
            chain_ok = np.zeros(n, dtype=bool)
            for _how, vals in chains:
                cd = np.abs(col - vals[i])
                chain_ok |= ((cd <= _tol(vals[i], rtol, atol)) | (cd <= hu)) & small
            v = np.full(n, INC)
            h = np.zeros(n, dtype=np.int64)
            v[chain_ok] = RND; h[chain_ok] = 3
            v[truncated] = RND; h[truncated] = 2
            v[own_ok & up_rnd & ~up_bad] = RND; h[own_ok & up_rnd & ~up_bad] = 4
            v[own_ok & up_bad] = CF; h[own_ok & up_bad] = 4
            v[rounded] = RND; h[rounded] = 1
            v[correct] = C; h[correct] = 0
            fv = tb.formula_verdict[:, i]
            isf = fv >= 0
            v = np.where(isf, fv, v)
            h = np.where(isf, 0, h)
            verdict[:, i] = np.where(has, v, -1)
            how[:, i] = np.where(has, h, 0)
            dev = np.abs(own[:, i] - e[i]) > _tol(e[i], rtol, atol)
            given_bad = has & ((verdict[:, i] == INC) | (verdict[:, i] == CF))
            given_rnd = has & (verdict[:, i] == RND) & dev
            bad[:, i] = given_bad | (~has & up_bad & dev)
            rnd[:, i] = given_rnd | (~has & up_rnd & dev)
    return verdict, (how, own, rec, bad, rnd)


# ---------------------------------------------------------------------------
# Messages


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    return f"{v:.6g}"


def _exact_text(q: Quantity) -> str:
    try:
        return num_text(q.exact)
    except (TypeError, ValueError):
        return _fmt(q.value)


class _Diagnoser:
    """Names the likely mistake behind a wrong number (cached per value)."""

    def __init__(self, key: AnswerKey, rtol, atol):
        self.key = key
        self.rtol, self.atol = rtol, atol
        self.cache: dict = {}

    def close(self, a, b, dec):
        tol = max(self.rtol * abs(b), self.atol)
        if dec is not None and dec >= 0:
            tol = max(tol, 0.5 * 10.0 ** -dec * (1 + 1e-9))
            tol = min(tol, max(ROUNDING_MAX_REL * abs(b), self.rtol * abs(b), self.atol))
        return abs(a - b) <= tol

    def __call__(self, i: int, g: float, dec, own_row) -> str:
        key = self.key
        q = key.quantities[i]
        extra = ()
        if q.kind == "update":
            gi = key.index[q.parents[1]]
            extra = (float(own_row[gi]),)
        ck = (i, g, dec, extra)
        if ck in self.cache:
            return self.cache[ck]
        e = q.value
        found = []
        if e != 0 and self.close(g, -e, dec):
            found.append("sign error: this is minus the right value")
        if e != 0 and self.close(g, 2 * e, dec):
            found.append("twice the right value (an extra factor of 2, e.g. d/do (y-o)^2 without the 1/2)")
        if e != 0 and self.close(g, e / 2, dec):
            found.append("half the right value (a factor of 2 is missing)")
        if q.kind == "update":
            p0 = key.quantities[key.index[q.node]].value
            grad = extra[0]
            new_own = float(q.fn(p0, grad))
            lr_sgd = key.solution.optimizer.rule == "sgd"
            if lr_sgd and self.close(g, p0 - grad, dec) and grad != 0:
                found.append(f"the learning rate is missing ({q.node} - d{key.loss}/d{q.node})")
            if grad != 0 and self.close(g, 2 * p0 - new_own, dec):
                found.append("the step went with the gradient instead of against it "
                             f"({q.node} + lr * d{key.loss}/d{q.node})")
            if grad != 0 and self.close(g, new_own - p0, dec) and p0 != 0:
                found.append(f"this is the step only; the old value {q.node} = {_fmt(p0)} is not added")
        for desc, vals in key.variants():
            if abs(vals[i] - e) > max(self.rtol * abs(e), self.atol) and self.close(g, vals[i], dec):
                found.append(desc)
                break
        others = self._same_value(i, g, dec, same_kind_only=bool(found))
        if others:
            found.append(f"this is the value of {others}")
        msg = "; ".join(found)
        self.cache[ck] = msg
        return msg

    def _same_value(self, i: int, g: float, dec, same_kind_only=False) -> str:
        key = self.key
        q = key.quantities[i]
        if g == 0 or same_kind_only:
            # zero is the value of many things; only same-kind ones are worth naming
            pool = [j for j, o in enumerate(key.quantities) if o.kind == q.kind]
        else:
            pool = range(len(key.quantities))
        hits = [j for j in pool if j != i and key.quantities[j].value != q.value
                and (key.quantities[j].value != 0 or g == 0)
                and self.close(g, key.quantities[j].value, dec)]
        if not hits:
            return ""
        params = self.key.graph.parameters
        pos = {p: k for k, p in enumerate(params)}

        def rank(j):
            o = key.quantities[j]
            # same kind first; among parameters' quantities, nearest parameter
            # first (w2 and w3 are the labels most easily exchanged)
            if o.kind != q.kind:
                return (2, j)
            if q.node in pos and o.node in pos:
                return (0, abs(pos[o.node] - pos[q.node]), j)
            return (1, abs(j - i))
        order = sorted(hits, key=rank)
        first = key.quantities[order[0]].label
        more = [key.quantities[j].label for j in order[1:4]]
        return first + (f" (also of {', '.join(more)})" if more else "")


def _sources(key: AnswerKey, r: int, i: int, has, verdict, bad_or_rnd, names_of) -> list:
    """The row's given answers upstream of quantity i that explain its
    deviation (nearest first)."""
    out, seen = [], set()
    stack = list(key.quantities[i].parents)
    while stack:
        p = stack.pop(0)
        if p in seen:
            continue
        seen.add(p)
        j = key.index[p]
        if not bad_or_rnd[r, j]:
            continue
        if has[r, j]:
            out.append(names_of.get(p, p))
        else:
            stack.extend(key.quantities[j].parents)
    return out


def _items(key: AnswerKey, tb: _Table, verdict, detail, formula_cache, rtol, atol) -> list:
    how, own, rec, bad, rnd = detail
    has = ~np.isnan(tb.given)
    diag = _Diagnoser(key, rtol, atol)
    chains = key.rounded_chains()
    results = []
    for r, row_cells in enumerate(tb.cells):
        names_of = {}
        for name, _t, qids, _p in row_cells:
            if qids and len(qids) == 1:
                names_of.setdefault(qids[0], name)
        items = []
        for name, text, qids, parsed in row_cells:
            given_text = _text_of(text)
            if qids is None:
                items.append(_item(name, given_text, None, "unknown-name", parsed))
                continue
            expected = [key.quantities[key.index[q]].value for q in qids]
            shape = key.group_shape(name) if len(qids) > 1 else None
            exp_out = _nest(expected, shape) if shape else (expected[0] if len(expected) == 1 else expected)
            if isinstance(parsed, str):
                items.append(_item(name, given_text, exp_out, "unparseable", parsed))
                continue
            codes, msgs = [], []
            for qid, p in zip(qids, parsed):
                i = key.index[qid]
                q = key.quantities[i]
                if p.kind == "error":
                    codes.append(UNP)
                    msgs.append(p.error)
                    continue
                code = int(verdict[r, i])
                if p.kind == "formula":
                    codes.append(code)
                    msgs.append(formula_cache[(qid, str(p.expr))][1])
                    continue
                codes.append(code)
                g = tb.given[r, i]
                h = int(how[r, i])
                if code == C:
                    msgs.append("")
                elif code == RND and h == 1:
                    msgs.append(f"{_exact_text(q)} rounded to {p.decimals} decimal{'s' if p.decimals != 1 else ''}")
                elif code == RND and h == 2:
                    msgs.append(f"{_exact_text(q)} truncated, not rounded (rounded: "
                                f"{_fmt(round(q.value, p.decimals))})")
                elif code == RND and h == 3:
                    desc = next((d for d, vals in chains
                                 if abs(g - vals[i]) <= max(0.5 * 10.0 ** -(p.decimals or 0), rtol * abs(vals[i]), atol)),
                                "rounded intermediates")
                    msgs.append(f"consistent with the key's {desc} (exact: {_exact_text(q)})")
                elif code in (RND, CF):
                    src = _sources(key, r, i, has, verdict, bad | rnd, names_of)
                    what = "rounded" if code == RND else "earlier"
                    dep = ", ".join(f"{s} = {_given_of(row_cells, s)}" for s in src) or "earlier answers"
                    msgs.append(f"consistent with your {what} {dep} (right value: {_exact_text(q)})")
                else:
                    d = diag(i, float(g), p.decimals, own[r])
                    msgs.append(f"right value: {_exact_text(q)}" + (f"; {d}" if d else ""))
            code = _worst(codes)
            if len(qids) == 1:
                message = msgs[0]
            else:
                wrong = [f"[{k}] {m}" for k, (c, m) in enumerate(zip(codes, msgs)) if c not in (C, EQ)]
                message = "; ".join(wrong[:6]) + (" ..." if len(wrong) > 6 else "")
            item = _item(name, given_text, exp_out, VERDICTS[code], message)
            if len(qids) == 1 and parsed[0].kind == "formula":
                forms = key.forms(qids[0])
                shown = forms.get("chain", forms.get("step", forms.get("general")))
                if shown is not None:
                    item["formula"] = str(shown)
            items.append(item)
        results.append(items)
    return results


def _given_of(row_cells, name):
    for n, t, _q, _p in row_cells:
        if n == name:
            return _text_of(t)
    return "?"


def _worst(codes) -> int:
    for c in (UNP, INC, CF, RND, EQ, C):
        if c in codes:
            return c
    return C


def _text_of(text) -> str:
    if isinstance(text, list):
        return "[" + ", ".join(_text_of(t) for t in text) + "]"
    return str(text)


def _nest(flat, shape):
    from .graph import nest

    return nest(list(flat), tuple(shape))


def _item(name, given, expected, verdict, message) -> dict:
    return {"name": name, "given": given, "expected": expected, "verdict": verdict, "message": message}


# ---------------------------------------------------------------------------
# Formulas


@bounded(ANSWER_SECONDS, "judging one formula", lambda msg, *a, **k: (UNP, msg, 0.0))
def judge_formula(key: AnswerKey, qid: str, expr, point: dict, rtol=RTOL, atol=ATOL):
    """(verdict code, message, value at the problem's point) for a formula
    answer, compared with the key's forms of the quantity as functions."""
    q = key.quantities[key.index[qid]]
    try:
        value = to_float(expr.xreplace(point))
    except ValueError:
        value = math.nan
    forms = key.forms(qid)
    structural = any(expr == f for f in forms.values() if f is not None)
    general = forms.get("general")
    if general is not None:
        mine = key.expand_forward(expr)
        if mine is not None and same_function(mine, general, key):
            return (C if structural else EQ), ("" if structural else f"equal to {_short(forms.get('chain', general))}"), value
    for name in ("step", "chain"):
        f = forms.get(name)
        if f is not None and same_function(expr, f, key):
            how = "the key's step with upstream values" if name == "step" else "the key's formula"
            return (C if structural else EQ), ("" if structural else f"equal to {how} {_short(f)}"), value
    ok_here = math.isfinite(value) and abs(value - q.value) <= max(rtol * abs(q.value), atol)
    msg = f"not the same formula as {_short(forms.get('chain', forms.get('step', general)))}"
    if general is not None and general.has(step):
        relaxed = general.replace(step, lambda a: sympy.Integer(1))
        mine = key.expand_forward(expr)
        if mine is not None and same_function(mine, relaxed, key):
            msg += ("; it agrees only where the ReLU units are active: the factor step(...) "
                    "(relu's derivative) is missing")
    if ok_here:
        msg += "; it gives the right number at the problem's point, but not elsewhere"
    elif math.isfinite(value):
        msg += f"; at the problem's point it gives {_fmt(value)}, the right value is {_exact_text(q)}"
    return INC, msg, value


def expanded_terms(expr, cap: int = 10**6) -> int:
    """An upper bound on the terms of ``sympy.expand(expr)``, found without
    expanding (capped at ``cap``): sums add, products multiply, a power of a
    sum of k terms to n has at most C(n + k - 1, n).

    >>> a, b, c = sympy.symbols("a b c")
    >>> expanded_terms((a + b) ** 3), expanded_terms((a + b) * (a + c) + c), expanded_terms((a + b + c) ** 64)
    (4, 5, 2145)
    """
    if expr.is_Add:
        return min(cap, sum(expanded_terms(x, cap) for x in expr.args))
    if expr.is_Mul:
        out = 1
        for x in expr.args:
            out = min(cap, out * expanded_terms(x, cap))
        return out
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 0:
        k = expanded_terms(expr.base, cap)
        return min(cap, math.comb(int(expr.exp) + k - 1, int(expr.exp))) if k > 1 else 1
    return 1


def same_function(a, b, key: AnswerKey | None) -> bool:
    """a == b as functions: exact where cheap, else at the problem's point
    (if there is a ``key``) and FORMULA_POINTS seeded random points (finite
    at >= 3 of them)."""
    if a == b:
        return True
    diff = a - b
    if sympy.count_ops(diff) <= EXACT_COMPARE_OPS and expanded_terms(diff) <= EXPAND_TERMS:
        try:
            if sympy.expand(diff) == 0:
                return True
        except (TypeError, ValueError, RecursionError):
            pass
    syms = sorted(a.free_symbols | b.free_symbols, key=str)
    if not syms:
        try:
            return abs(to_float(diff)) <= 1e-12 * max(1.0, abs(to_float(b)))
        except ValueError:
            return False
    here = key.point() if key is not None else {}
    rng = np.random.default_rng(FORMULA_SEED)
    cols = []
    for s in syms:
        base = float(here.get(s, 0.5))
        r = rng.uniform(-1.5, 1.5, FORMULA_POINTS)
        r = np.where(np.abs(r) < 0.05, r + 0.3, r)
        cols.append(np.concatenate([[base], r]))
    with np.errstate(all="ignore"):
        try:
            va = np.broadcast_to(np.asarray(_lambdify(syms, a)(*cols), dtype=float), cols[0].shape)
            vb = np.broadcast_to(np.asarray(_lambdify(syms, b)(*cols), dtype=float), cols[0].shape)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            return False
    fin = np.isfinite(va) & np.isfinite(vb)
    if np.any(np.isfinite(va) != np.isfinite(vb)) or fin.sum() < 3:
        return False
    return bool(np.all(np.abs(va[fin] - vb[fin]) <= 1e-9 * np.maximum(1.0, np.abs(vb[fin]))))


# ---------------------------------------------------------------------------
# Problems without gradients (AP, conv arithmetic, ...): answers in `values`


@dataclass
class Formula:
    """A formula-valued quantity of a problem without gradients (an update
    rule, say): the right expression over declared real symbols.  ``names``
    maps every name an answer may use to its symbol (aliases allowed);
    ``defs`` says what a symbol stands for in terms of others (the chain
    rule's g = dL_df*grad_f), substituted on both sides before comparing;
    ``about`` says what the quantity is, ahead of a diagnosis.

    A solution offers these as ``solution.judges`` (name -> an object with
    ``expected`` and ``judge(text) -> (verdict, message)``).

    >>> th, v, rho, eta = (sympy.Symbol(n, real=True) for n in ("theta", "v", "rho", "eta"))
    >>> f = Formula(th + rho * v, {"theta": th, "v": v, "rho": rho, "eta": eta})
    >>> f.judge("theta + eta*v")
    ('incorrect', 'equal to rho*v + theta only when eta = rho (or v = 0); answer minus right form: v*(eta - rho)')
    >>> f.judge("v*rho + theta"), f.judge("rho*(v + theta/rho)")[0], f.judge("theta + mu*v")[0]
    (('correct', ''), 'equivalent', 'unparseable')
    """

    expr: object
    names: dict
    defs: dict = field(default_factory=dict)
    about: str = ""

    @property
    def expected(self) -> str:
        return str(self.expr)

    def judge(self, text) -> tuple:
        from types import SimpleNamespace

        t = _text_of(text)
        p = parse_answer(t, SimpleNamespace(symbols=self.names))
        if p.kind == "error":
            return "unparseable", f"{p.error}; a formula in {', '.join(sorted(self.names))}"
        if p.kind == "formula":
            mine = p.expr
        else:
            try:
                mine = number(t)
            except ExprError:
                mine = sympy.Float(p.value)
        if mine == self.expr:
            return "correct", ""
        a, b = mine.xreplace(self.defs), self.expr.xreplace(self.defs)
        where = "".join(f" ({s} = {e})" for s, e in sorted(self.defs.items(), key=str)
                        if s in self.expr.free_symbols)
        if same_function(a, b, None):
            return "equivalent", f"equal to {self.expected}{where}"
        head = f"{self.about}: " if self.about else ""
        return "incorrect", head + _only_when(a, b, f"{self.expected}{where}")


def _only_when(mine, right, shown: str) -> str:
    """Where a wrong formula agrees with the right one: the factors of
    their difference, each solved for a symbol it is linear in.  Factoring
    is tried only on small polynomials, and long conditions are left out
    (then no 'only when' is claimed)."""
    diff = mine - right
    plain = f"not the same function as {shown}"
    if sympy.count_ops(diff) > EXACT_COMPARE_OPS or expanded_terms(diff) > EXPAND_TERMS:
        return f"{plain} (compared at {FORMULA_POINTS} seeded random points)"
    diff = sympy.expand(diff)
    try:
        small = sympy.Poly(diff, *sorted(diff.free_symbols, key=str)).total_degree() <= FACTOR_DEGREE
    except (sympy.PolynomialError, sympy.GeneratorsNeeded):
        small = False
    if small:
        diff = sympy.factor(diff)
    main, minor = [], []
    for fac in sympy.Mul.make_args(diff):
        if fac.is_Pow and fac.exp.is_negative:
            continue                       # a denominator never makes the difference vanish
        base = fac.base if fac.is_Pow else fac
        if not base.free_symbols or base.is_positive:
            continue                       # a non-zero constant or a positive symbol (a rate)
        (minor if base.is_Symbol else main).append(_solved(base))
    if any(len(c) > SHOWN_CHARS for c in main):
        out = plain
    elif main or minor:
        when = " or ".join(main or minor) + (f" (or {' or '.join(minor)})" if main and minor else "")
        out = f"equal to {shown} only when {when}"
    else:
        out = f"never equal to {shown}"
    text = str(diff)
    return out if mine == 0 or len(text) > SHOWN_CHARS else f"{out}; answer minus right form: {text}"


def _solved(expr) -> str:
    """'eta = rho' for eta - rho: expr = 0 solved for a symbol it is linear
    in (the simplest solution; by name on ties), else 'expr = 0'."""
    found = []
    for s in sorted(expr.free_symbols, key=str):
        try:
            poly = sympy.Poly(expr, s)
        except sympy.PolynomialError:
            continue
        if poly.degree() == 1:
            a, b = poly.all_coeffs()
            sol = sympy.factor(-b / a)
            found.append((sympy.count_ops(sol), str(s), f"{s} = {sol}"))
    return min(found)[2] if found else f"{expr} = 0"


def check_values(solution, rows: list, rtol=RTOL, atol=ATOL) -> list:
    """Check answers against a solution's ``values`` (numbers, lists, text),
    and formula- or rule-valued ones against its ``judges``."""
    answer_values = getattr(solution, "answer_values", None)     # a large vector problem's numbers
    values = answer_values() if answer_values else solution.to_json().get("values", {})
    judges = getattr(solution, "judges", None) or {}
    results = []
    for answers in rows:
        items = []
        own = _own_numbers(answers)
        for name, text in answers.items():
            key = _normal_name(name)
            if _judged(judges, key, text) or (is_not_given(text) and key in values):
                items.append(_judged_item(solution, judges, name, text))
                continue
            if key not in values:
                close = difflib.get_close_matches(key, list(values), n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                items.append(_item(name, _text_of(text), None, "unknown-name",
                                   f"{name!r} is not a quantity of this problem{hint}; "
                                   f"known: {', '.join(list(values)[:12])}"))
                continue
            items.append(_judge_value(name, text, values[key], values, rtol, atol, solution.problem.id, own))
        results.append(items)
    return results


def _judge_value(name, text, expected, values, rtol, atol, solution_id=None, own=None) -> dict:
    given_text = _text_of(text)
    if isinstance(expected, str):
        code, msg = _judge_text(given_text, expected)
        return _item(name, given_text, expected, VERDICTS[code], msg)
    exp_flat = _flatten(expected) if isinstance(expected, list) else [expected]
    texts = _flatten(text) if isinstance(text, list) else _split_dims(str(text), len(exp_flat))
    if len(texts) != len(exp_flat):
        if isinstance(text, list) and isinstance(expected, list) and _shape(text) != _shape(expected):
            what = f"expected shape {_shape_text(expected)}, found {_shape_text(text)}"
        else:
            what = f"expected {len(exp_flat)} entries, found {len(texts)}"
        return _item(name, given_text, expected, "incorrect", what)
    codes, msgs = [], []
    others = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for k, (t, e) in enumerate(zip(texts, exp_flat)):
        if isinstance(e, str):
            code, msg = _judge_text(t, e)
            codes.append(code)
            msgs.append(msg)
            continue
        p = parse_answer(t, None)
        if p.kind != "number":
            codes.append(UNP)
            msgs.append(p.error or "expected a number")
            continue
        if isinstance(e, bool) or not isinstance(e, (int, float)):
            code, msg = _judge_text(t, str(e))
            codes.append(code)
            msgs.append(msg)
            continue
        e = float(e)
        g = p.value
        diff = abs(g - e)
        small = diff <= ROUNDING_MAX_REL * abs(e)
        if diff <= max(rtol * abs(e), atol):
            codes.append(C); msgs.append("")
        elif p.decimals is not None and diff <= 0.5 * 10.0 ** -p.decimals * (1 + 1e-9) and small:
            codes.append(RND); msgs.append(f"{_fmt(e)} rounded to {p.decimals} decimals")
        elif (p.decimals is not None and diff < 10.0 ** -p.decimals * (1 - 1e-6) and small
              and abs(g) < abs(e) and g * e >= 0):
            codes.append(RND)
            msgs.append(f"{_fmt(e)} truncated, not rounded (rounded: {_fmt(round(e, p.decimals))})")
        else:
            codes.append(INC)
            found = []
            if e != 0 and abs(g + e) <= max(rtol * abs(e), atol):
                found.append("sign error")
            same = [k2 for k2, v in others.items() if k2 != name and v != e
                    and abs(g - v) <= max(rtol * abs(v), atol, 0.5 * 10.0 ** -(p.decimals or 0) if small else 0)]
            if same:
                found.append(f"this is the value of {same[0]}")
            msgs.append(f"right value: {_fmt(e)}" + (f"; {'; '.join(found)}" if found else ""))
    code = _worst(codes)
    if len(codes) == 1:
        message = msgs[0]
    else:
        message = "; ".join(f"[{k}] {m}" for k, (c, m) in enumerate(zip(codes, msgs)) if c != C)
        if code == INC:
            same = [k2 for k2, v in values.items() if k2 != name and isinstance(v, list)
                    and _flatten(v) != exp_flat and _same_numbers(texts, _flatten(v))]
            if same:
                message += f"; this is the value of {same[0]}"
    relation = RELATIONS.get(solution_id, {}).get(name) if solution_id else None
    if code == INC and relation is not None and own is not None:
        parents, fn, how = relation
        if all(p in own for p in parents):
            try:
                mine = float(fn(*[own[p] for p in parents]))
            except (TypeError, ValueError, ZeroDivisionError):
                mine = math.nan
            p = parse_answer(texts[0], None) if len(texts) == 1 else None
            if p is not None and p.kind == "number" and p.decimals is not None and math.isfinite(mine):
                ulp = 10.0 ** -p.decimals
                d = abs(p.value - mine)
                src = ", ".join(parents)
                if d <= ulp / 2 * (1 + 1e-9) or (d < ulp * (1 - 1e-6) and abs(p.value) < abs(mine)):
                    kind = "rounded" if d <= ulp / 2 * (1 + 1e-9) else "truncated, not rounded"
                    return _item(name, given_text, expected, "rounding",
                                 f"{how} of your rounded {src} gives {_fmt(mine)} ({kind}); "
                                 f"exact: {_fmt(float(expected))} ({_fmt(round(float(expected), p.decimals))} "
                                 f"to {p.decimals} decimals)")
    return _item(name, given_text, expected, VERDICTS[code], message)


#: Problems without a step list: how an answer follows from the answerer's
#: own earlier answers (name -> (earlier names, function, what it is)), so
#: that an answer carried from rounded intermediates is recognised.
RELATIONS = {
    "interpolated-ap": {"ap11": (("p_interp",), lambda p: sum(p) / len(p), "the mean")},
}


def _own_numbers(answers: dict) -> dict:
    out = {}
    for name, text in answers.items():
        flat = _flatten(text) if isinstance(text, list) else [text]
        nums = [parse_answer(t, None) for t in flat]
        if all(p.kind == "number" for p in nums):
            vals = [p.value for p in nums]
            out[_normal_name(name)] = vals if isinstance(text, list) else vals[0]
    return out


def _shape(v):
    if isinstance(v, list):
        return (len(v),) + (_shape(v[0]) if v and all(isinstance(x, list) for x in v) else ())
    return ()


def _shape_text(v) -> str:
    return " x ".join(str(n) for n in _shape(v))


def _same_numbers(texts, flat) -> bool:
    if len(texts) != len(flat):
        return False
    for t, v in zip(texts, flat):
        p = parse_answer(t, None)
        if p.kind != "number" or isinstance(v, (str, bool)) or abs(p.value - float(v)) > 1e-9 * max(1, abs(v)):
            return False
    return True


def _judge_text(given: str, expected: str):
    """A text answer (a formula in the solution's own letters, or a word):
    equal text is correct, an equal expression is equivalent."""
    if _norm_text(given) == _norm_text(expected):
        return C, ""
    ids = set(re.findall(r"[A-Za-z][A-Za-z0-9_]*", expected))
    names = {n: sympy.Symbol(n, real=True) for n in ids if "__" not in n}
    try:
        a = parse_expr_safe(given.replace("\u00d7", "*"), names)
        b = parse_expr_safe(expected, names)
    except ExprError:
        return INC, f"right answer: {expected}"
    try:
        same = a == b or (sympy.count_ops(a - b) <= EXACT_COMPARE_OPS and sympy.expand(a - b) == 0)
    except (TypeError, ValueError):
        same = False
    if same:
        return EQ, f"equal to {expected}"
    return INC, f"right answer: {expected}"


def _split_dims(text: str, n: int) -> list:
    """'9x9', '9 × 9', '(9, 9)' as a list of numbers when n > 1."""
    if n <= 1:
        return [text]
    parts = [p for p in re.split(r"\s*(?:[x×*,]|\s)\s*", text.strip("()[] ")) if p]
    return parts


def _norm_text(s: str) -> str:
    return re.sub(r"\s+", "", str(s)).lower()


# ---------------------------------------------------------------------------
# Public entry points


def summary_of(items: list) -> dict:
    counts = Counter(i["verdict"] for i in items)
    out = {v: counts.get(v, 0) for v in VERDICTS}
    out["total"] = len(items)
    return out


def check_rows(solution, rows: list, rtol=RTOL, atol=ATOL) -> list:
    """Item lists for many answer mappings (the work of a class CSV)."""
    rows = [as_texts(r) for r in rows]
    if hasattr(solution, "derivation") and hasattr(solution, "evaluation"):
        key = answer_key(solution)
        judges = getattr(solution, "judges", None) or {}
        if not judges and not any(is_not_given(t) for r in rows for t in r.values()):
            return check_table(key, rows, rtol, atol)
        # answers a judge takes (path sums, vector formulas) or marked "not
        # given" are judged one by one; the rest go through the table at once
        aside = [{n: t for n, t in r.items() if _judged(judges, _normal_name(n), t) or is_not_given(t)}
                 for r in rows]
        table = check_table(key, [{n: t for n, t in r.items() if n not in a} for r, a in zip(rows, aside)],
                            rtol, atol)
        out, seen = [], {}      # a class gives the same answer text many times: judge it once

        def judged(n, t):
            ck = (n, repr(t))
            if ck not in seen:
                seen[ck] = _judged_item(solution, judges, n, t, key)
            return dict(seen[ck])

        for r, a, items in zip(rows, aside, table):
            by_name = iter(items)
            out.append([judged(n, t) if n in a else next(by_name) for n, t in r.items()])
        return out
    return check_values(solution, rows, rtol, atol)


def _judged(judges: dict, key: str, text) -> bool:
    """Does a judge take this answer?  (A judge with ``accepts`` may leave
    numbers to the usual key, as dE/dW's judge leaves all but path sums.)"""
    j = judges.get(key)
    return j is not None and (not hasattr(j, "accepts") or j.accepts(text))


@bounded(ANSWER_SECONDS, "judging one answer",
         lambda msg, solution, judges, name, text, key=None: _item(name, _text_of(text), None, "unparseable", msg))
def _judged_item(solution, judges: dict, name: str, text, key: AnswerKey | None = None) -> dict:
    """The item of an answer a judge decides, or of one marked "not given"
    (incorrect: the answer leaves out a quantity the question asks for).
    A judge's ``judge(text)`` returns (verdict, message) or (verdict,
    message, extra fields); ``form`` in the item is derive's form of the
    quantity, which the errata show as what is right."""
    norm = _normal_name(name)
    j = judges.get(norm)
    if is_not_given(text):
        if j is not None:
            expected = j.expected
        elif key is not None:
            try:
                qids = key.resolve(name)
            except CheckError as exc:
                return _item(name, _text_of(text), None, "unknown-name", str(exc))
            vals = [key.quantities[key.index[q]].value for q in qids]
            shape = key.group_shape(name) if len(qids) > 1 else None
            expected = _nest(vals, shape) if shape else (vals[0] if len(vals) == 1 else vals)
        else:
            expected = solution.to_json().get("values", {}).get(norm)
        form = getattr(j, "form", None) or _text_of(expected)
        has = f"derive has {form}" if form.startswith(f"{norm} =") else f"derive's {norm} is {form}"
        item = _item(name, NOT_GIVEN, expected, "incorrect", f"not given in the answer; {has}")
        item["form"] = form
        return item
    res = j.judge(text)
    extra = dict(res[2]) if len(res) > 2 else {}
    item = _item(name, _text_of(text), extra.pop("expected", j.expected), res[0], res[1])
    item.update(extra)
    return item


_KEYS: dict = {}


def answer_key(solution) -> AnswerKey:
    """The (cached) AnswerKey of a solution object."""
    k = id(solution)
    if k not in _KEYS or _KEYS[k][0] is not solution:
        _KEYS.clear()
        _KEYS[k] = (solution, AnswerKey(solution))
    return _KEYS[k][1]


def check(solution, answers: dict, rtol=RTOL, atol=ATOL, target: str | None = None) -> dict:
    """Check one answerer's answers; the contract's JSON object."""
    items = check_rows(solution, [answers], rtol, atol)[0]
    return {"target": target or solution.problem.id, "items": items, "summary": summary_of(items)}


def check_batch(solution, batch: Batch, rtol=RTOL, atol=ATOL, target: str | None = None) -> dict:
    """Check a class: one result per row under ``rows``, and a summary per question."""
    results = check_rows(solution, batch.rows, rtol, atol)
    rows = [{"id": i, "items": items, "summary": summary_of(items)} for i, items in zip(batch.ids, results)]
    all_items = [it for items in results for it in items]
    return {"target": target or solution.problem.id, "rows": rows, "summary": summary_of(all_items),
            "questions": question_summary(batch.columns, results)}


def question_summary(columns: list, results: list) -> dict:
    """Per question: how many answered, the share accepted, verdict counts
    and the most common wrong answers with what they are."""
    out = {}
    by_name: dict = {c: [] for c in columns}
    for items in results:
        for it in items:
            by_name.setdefault(it["name"], []).append(it)
    for name, items in by_name.items():
        counts = Counter(i["verdict"] for i in items)
        ok = sum(counts.get(v, 0) for v in ACCEPTED)
        wrong = Counter()
        what = {}
        for it in items:
            if it["verdict"] in ("incorrect", "carried-forward", "unparseable"):
                g = _canonical_given(it["given"])
                wrong[g] += 1
                what.setdefault(g, (it["verdict"], it["message"]))
        common = [{"given": g, "count": c, "verdict": what[g][0], "message": what[g][1]}
                  for g, c in sorted(wrong.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
        out[name] = {"answered": len(items), "share_correct": round(ok / len(items), 4) if items else None,
                     "verdicts": {v: counts.get(v, 0) for v in VERDICTS}, "common_wrong": common}
    return out


def _canonical_given(g: str) -> str:
    try:
        return _fmt(float(number(g)))
    except (ExprError, TypeError, ValueError):
        return g


def exit_code(result: dict) -> int:
    """0 when every answer is accepted (correct, equivalent, rounding), else 1."""
    rows = result.get("rows")
    items = [it for r in rows for it in r["items"]] if rows is not None else result["items"]
    return 0 if all(it["verdict"] in ACCEPTED for it in items) else 1
