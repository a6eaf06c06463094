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
import functools
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import sympy

from derive.grading.answers import Batch, as_texts, decimals, significant
from derive.budget import ANSWER_SECONDS, bounded, to_float
from derive.grading.compare import (EXACT_COMPARE_OPS, EXPAND_TERMS, FORMULA_POINTS, expanded_terms, lambdify,
                      same_function)
from derive.typeset.fmt import num_text
from derive.grading.judges import NOT_GIVEN, is_not_given
from derive.grading.latex_reader import (LR_NAMES, LatexError, decimal_comma, hats, last_side, latex_to_expr, looks_like_latex,
                      node_latex_names, plain_unicode, primes)
from derive.engine.ops import OPS, op_of, step
from derive.engine.parse import ExprError, ExprLimitError, number, parse_expr_safe

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
#: a wrong formula's difference from the right one is factored up to this degree
FACTOR_DEGREE = 6
#: longer conditions / differences are not printed in a message
SHOWN_CHARS = 80

C, EQ, RND, CF, INC, UNK, UNP = range(7)   # verdict codes, in VERDICTS order
#: a rounded answer must show at least this many significant figures
MIN_SIG = 2


@dataclass(frozen=True)
class Policy:
    """What a grader accepts, beyond the tolerances.

    ``min_sig``: a rounded answer shows at least this many significant
    figures (0.5 is not a rounding of 0.571).  ``decimals``: the question
    asked for this many decimals, so an answer rounded to them is `rounding`
    however small the value (loss 0.0006845 written 0.001).  A value equal
    to another named quantity of the problem (the weight before the update,
    another gradient) is never `rounding`.  ``rounding_credit`` and
    ``carried_credit`` are the share of a question's points those verdicts
    earn in a gradebook; ``rounding_is_correct`` counts rounding in
    ``share_correct``.

    >>> Policy().describe()
    'correct within max(1e-06*|exact|, 1e-09); rounding: the right value rounded to the digits shown, at least 2 significant figures, never the value of another quantity of the problem; rounding earns full points, carried-forward none'
    """

    rtol: float = RTOL
    atol: float = ATOL
    min_sig: int = MIN_SIG
    decimals: int | None = None
    rounding_credit: float = 1.0
    carried_credit: float = 0.0
    rounding_is_correct: bool = False

    def describe(self) -> str:
        rnd = (f"rounding: the right value rounded to the digits shown, at least {self.min_sig} significant "
               "figure" + ("s" if self.min_sig != 1 else ""))
        if self.decimals is not None:
            rnd += f" (or to the {self.decimals} decimals asked)"
        rnd += ", never the value of another quantity of the problem"
        credit = lambda c: "full points" if c == 1 else ("none" if c == 0 else f"{c:g} of the points")  # noqa: E731
        return (f"correct within max({self.rtol:g}*|exact|, {self.atol:g}); {rnd}; rounding earns "
                f"{credit(self.rounding_credit)}, carried-forward {credit(self.carried_credit)}")


def _policy(policy, rtol, atol) -> Policy:
    if policy is None:
        return Policy(rtol, atol)
    if (rtol, atol) != (RTOL, ATOL) and (policy.rtol, policy.atol) == (RTOL, ATOL):
        from dataclasses import replace

        return replace(policy, rtol=rtol, atol=atol)
    return policy

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


_lambdify = lambdify


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
        self.latex_of = {n: node.latex for n, node in g.nodes.items()}
        self.aliases = learning_rate_aliases(solution.optimizer, set(g.nodes))
        kinds = {op_of(node.expr).name for node in g.nodes.values()
                 if node.expr is not None and op_of(node.expr) is not None and op_of(node.expr).name != "step"}
        self.activation = kinds.pop() if len(kinds) == 1 else None
        # \hat{y} is the prediction of target y: the last forward node before the loss
        fwd = [n for n, node in g.nodes.items() if node.kind == "forward"]
        self.predicted = {n: fwd[-1] for n, node in g.nodes.items() if node.kind == "target"} if fwd else {}

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
        key = _normal_name(hats(plain_unicode(str(name)), set(self._names), self.predicted))
        m = re.fullmatch(r"d(\w+)/d(.+)", key)
        if m and m.group(1) in ("L", "E", "J", "C", "loss", "Loss", self.loss):
            key = f"d{self.loss}/d{m.group(2)}"
        for cand in _spellings(key):
            if cand in self._names:
                return self._names[cand]
        lower = [n for n in self._names if n.lower() == key.lower()]
        if len({self._names[n] for n in lower}) == 1:      # Loss, W1: unambiguous whatever the case
            return self._names[lower[0]]
        hint = self.suggest(key)
        raise CheckError(f"{name!r} is not a quantity of this problem" + (f"; did you mean {hint}?" if hint else ""))

    def suggest(self, key: str) -> str:
        """The quantity an unknown name most likely means: a gradient written
        ``dw5``, ``grad_w5``, ``dL_dw5`` or ``delta_w5`` is dL/dw5; else the
        nearest names by spelling."""
        for pattern in (rf"d(?:{re.escape(self.loss)}|L|E|loss)_?d([A-Za-z]\w*)", r"(?:grad_?|delta_?|g_|d)([A-Za-z]\w*)",
                        r"([A-Za-z]\w*?)_?grad"):
            m = re.fullmatch(pattern, key)
            for cand in _spellings(m.group(1)) if m else ():
                grad = f"d{self.loss}/d{cand}"
                if grad in self._names:
                    return grad
        close = difflib.get_close_matches(key, list(self._names), n=3, cutoff=0.6)
        return ", ".join(close)

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
                cands.append((op.derivative(out_v, op.sympy(out_v)), "wrong-point",
                              f"the derivative of {t.via} = {op.name}({_short(arg)}) taken at its output "
                              f"{t.via} instead of its input"))
                if cnode.symbol in right.free_symbols:
                    cands.append((right.xreplace({cnode.symbol: arg_v}), "wrong-point",
                                  f"the derivative of {t.via} = {op.name}(...) written with its input "
                                  f"in place of its output ({_short(right)} with {t.via} -> {_short(arg)})"))
                cands.append((sympy.Integer(1), f"missing-derivative:{t.via}",
                              f"the derivative of {t.via} = {op.name}(...) left out of the chain"))
                for other in act:
                    onode = g.nodes[other]
                    if other != t.via and op_of(onode.expr) is op:
                        oarg = onode.expr.args[0].xreplace(nums)
                        cands.append((op.derivative(oarg, fwd[other]), "wrong-point",
                                      f"the derivative of {t.via} = {op.name}(...) taken at the point of "
                                      f"{other} instead of {t.via}"))
                right_v = right.xreplace({cnode.symbol: out_v}).xreplace(nums)
                for factor, code, desc in cands:
                    try:
                        fv = float(sympy.N(factor.xreplace(nums)))
                        rv = float(sympy.N(right_v))
                        inner_v = float(sympy.N(inner.xreplace(nums)))
                    except (TypeError, ValueError):
                        continue
                    if not math.isfinite(fv) or abs(fv - rv) <= 1e-12 * max(1, abs(rv)):
                        continue
                    rows.append((s.name, t.via, (fv - rv) * inner_v))
                    descs.append((code, desc))
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
            out = [(code, desc, vals) for (code, desc), vals in zip(descs, own)]
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
            from derive.engine.backprop import EXPAND_LIMIT_NODES

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


def learning_rate_aliases(optimizer, names: set) -> dict:
    """eta, lr, alpha (and the Greek letters) standing for the optimizer's
    learning rate, where unambiguous: never a name of the problem, and not
    alpha when the rule has its own alpha (RMSprop)."""
    hyper = getattr(optimizer, "hyper", {}) or {}
    lr = hyper.get("lr")
    if lr is None:
        return {}
    out = {}
    for n in LR_NAMES:
        plain = plain_unicode(n)
        if plain in names or (plain == "alpha" and "alpha" in hyper):
            continue
        out[plain] = lr if isinstance(lr, sympy.Basic) else number(lr)
    return out


def _local(expr, wrt):
    from derive.engine.backprop import local_derivative

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
    s = re.sub(r"\\(?:text|mathrm|mathbf|mathit|rm)\b", "", s)
    m = re.fullmatch(r"\\nabla_\{?\s*([^{}]+?)\s*\}?\s*(\w+)", s)      # \nabla_{w_5} L
    if m:
        s = f"d{m.group(2)}/d{m.group(1)}"
    s = re.sub(r"\s+", "", s)
    s = s.replace("{", "").replace("}", "")
    # w_5^{new}, w_5^+, w^{(new)}: the value after the update
    s = re.sub(r"\^\(?(?:new|\+|updated)\)?$", "_new", s)
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
    bare = tail.replace("(", "").replace(")", "")
    sup = (re.fullmatch(r"([A-Za-z]+)\^(\w+)_(\w+)", bare)
           or re.fullmatch(r"([A-Za-z]+)_(?P<sub>\w+)\^(?P<sup>\w+)", bare))
    if sup:
        base = sup.group(1)
        top, low = (sup.group(2), sup.group(3)) if "sup" not in sup.groupdict() else (sup["sup"], sup["sub"])
        yield head + f"{base}{top}_{low}" + suffix


# ---------------------------------------------------------------------------
# Parsing one answer


@dataclass
class Parsed:
    kind: str                   # number | formula | error
    value: float = math.nan
    decimals: int | None = None
    expr: object = None
    error: str = ""
    sig: int | None = None      # significant figures shown
    note: str | None = None     # how the text was read ("judged the last side ...")


def parse_answer(text: str, key: AnswerKey | None) -> Parsed:
    """A number (with the decimals and significant figures it shows), a
    formula over the problem's names, or an error.  Reads the notation
    students write (``LHS = ...`` chains, decimal commas, eta for the
    learning rate, primes, the problem's own LaTeX); never evaluates user
    text.

    >>> parse_answer("dL/dw5 = 0,105", None).value, parse_answer("0.50", None).sig
    (0.105, 2)
    """
    t, note = last_side(plain_unicode(str(text).strip()))
    t = _TIMES.sub("*", decimal_comma(t).strip())
    if not t:
        return Parsed("error", error="empty answer")
    if _PLAIN_NUMBER.fullmatch(t):
        # a number as written: read at once (its length is bounded by number());
        # the time budget is for formulas, and costs more than this reading
        try:
            return Parsed("number", float(number(t)), decimals(t), sig=significant(t), note=note)
        except ExprError:
            pass
    return _parse_formula(t, note, key)


_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@bounded(ANSWER_SECONDS, "reading one answer", lambda msg, *a, **k: Parsed("error", error=msg))
def _parse_formula(t: str, note, key) -> Parsed:
    """parse_answer for text that is not a plain number, under a time budget."""
    try:
        v = number(t)
        return Parsed("number", float(v), decimals(t), sig=significant(t), note=note)
    except ExprError:
        pass
    names = dict(getattr(key, "aliases", {}))
    names.update(key.symbols if key is not None else {})
    latex = looks_like_latex(t)
    if hasattr(key, "resolve"):
        t, read = _derivatives_as_values(t, key)
        if read:
            note = "; ".join(filter(None, [note, read]))
    t = primes(t, getattr(key, "activation", None), latex)
    try:
        if latex:
            try:
                expr = parse_expr_safe(t, names)
            except ExprLimitError:
                raise                  # too large as written: LaTeX reading would only hide why
            except ExprError:
                t = hats(node_latex_names(t, getattr(key, "latex_of", {})), set(names),
                         getattr(key, "predicted", None))
                expr = parse_expr_safe(latex_to_expr(t, set(names)), names)
        else:
            expr = parse_expr_safe(t, names)
    except (ExprError, LatexError) as exc:
        return Parsed("error", error=_with_hint(str(exc), key), note=note)
    if not expr.free_symbols:
        try:
            v = to_float(expr)
        except ValueError as exc:
            return Parsed("error", error=str(exc), note=note)
        return Parsed("number", v, _shown_decimals(t), note=note)
    return Parsed("formula", expr=expr, note=note)


_DERIVATIVE = re.compile(r"\\[dt]?frac\s*\{\s*(?:\\partial|d)\s*([^{}]+?)\s*\}\s*\{\s*(?:\\partial|d)\s*([^{}]+?)\s*\}"
                         r"|\bd([A-Za-z]\w*)/d([A-Za-z]\w*)")


def _derivatives_as_values(text: str, key) -> tuple:
    r"""A derivative written inside an answer (``\frac{\partial L}{\partial
    o_1} \cdot a_1``, ``dL/do1*a1``) read as the key's value of it, and a
    note saying so; unknown derivatives are left for the parser to refuse."""
    read = []

    def one(m):
        top, bottom = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        try:
            qids = key.resolve(f"d{top}/d{bottom}")
        except CheckError:
            return m.group(0)
        if len(qids) != 1:
            return m.group(0)
        q = key.quantities[key.index[qids[0]]]
        read.append(f"{q.qid} = {_exact_text(q)}")
        return f"({q.exact})"
    out = _DERIVATIVE.sub(one, text.replace("\u2202", "\\partial "))
    return out, (f"read {', '.join(read)} (the key's value)" if read else "")


def _with_hint(msg: str, key) -> str:
    """An unknown name in a formula: the nearest quantity by spelling."""
    m = re.search(r"unknown name '(\w+)'", msg)
    if m and key is not None and hasattr(key, "suggest"):
        hint = key.suggest(m.group(1))
        if hint:
            return f"{msg}; did you mean {hint}?"
    return msg


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
    sig: np.ndarray          # significant figures shown (-1: exact / unknown)
    formula_verdict: np.ndarray   # -1, or a verdict code decided for a formula cell
    cells: list = field(default_factory=list)    # per row: [(name, text, qids | None, parsed list | error)]


def check_table(key: AnswerKey, rows: list, rtol=RTOL, atol=ATOL, policy: Policy | None = None) -> list:
    """Check many answer mappings ({name: text}) at once; one result per row
    (items in each row's own order)."""
    policy = _policy(policy, rtol, atol)
    rtol, atol = policy.rtol, policy.atol
    nq = len(key.quantities)
    n = len(rows)
    given = np.full((n, nq), np.nan)
    dec = np.full((n, nq), -1, dtype=np.int64)
    sig = np.full((n, nq), -1, dtype=np.int64)
    fverd = np.full((n, nq), -1, dtype=np.int64)
    cells = []
    parse_cache: dict = {}
    formula_cache: dict = {}
    resolved: dict = {}
    point = None
    for r, answers in enumerate(rows):
        row_cells = []
        for name, text in answers.items():
            qids = resolved.get(name)
            if qids is None:
                try:
                    qids = resolved[name] = key.resolve(name)
                except CheckError as exc:
                    qids = resolved[name] = str(exc)
            if isinstance(qids, str):
                row_cells.append((name, text, None, qids))
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
                        sig[r, i] = -1 if p.sig is None else p.sig
                elif p.kind == "formula":
                    fk = (qid, str(p.expr))
                    if fk not in formula_cache:
                        point = point or key.point()
                        formula_cache[fk] = judge_formula(key, qid, p.expr, point, rtol, atol)
                    code, _msg, value, _fc = formula_cache[fk]
                    given[r, i] = value
                    fverd[r, i] = code
            row_cells.append((name, text, qids, parsed))
        cells.append(row_cells)
    table = _Table(given, dec, sig, fverd, cells)
    verdict, detail = _verdicts(key, table, policy)
    return _items(key, table, verdict, detail, formula_cache, rtol, atol)


def _flatten(text):
    if isinstance(text, list):
        out = []
        for t in text:
            out.extend(_flatten(t))
        return out
    return [text]


def _verdicts(key: AnswerKey, tb: _Table, policy: Policy):
    """Verdict codes (rows x quantities, -1 where not given) and, per cell,
    which rule decided it.  `rounding` (any of its ways) needs the digits
    the policy asks for and is never given to a value that is another
    named quantity of the problem (``named``)."""
    rtol, atol = policy.rtol, policy.atol
    G, D = tb.given, tb.dec
    enough_sig = (tb.sig < 0) | (tb.sig >= policy.min_sig)
    named = _named_values(key, G, rtol, atol)
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
            # the digits shown suffice: enough significant figures, or the decimals the question asked
            shown_ok = enough_sig[:, i] | ((D[:, i] >= policy.decimals) if policy.decimals is not None else False)
            may_round = shown_ok & ~named[:, i]
            rounded = (diff <= hu) & small & may_round
            if policy.decimals is not None:
                # rounded to the decimals the question asked: passes however small the value
                asked = _half_ulp(np.array(policy.decimals))
                rounded |= (D[:, i] >= policy.decimals) & (diff <= asked) & ~named[:, i]
            # truncated: |given| below |exact|, same sign, within one unit of the last digit
            truncated = ((diff < ulp * (1 - 1e-6)) & small & (np.abs(col) < np.abs(e[i])) & (col * e[i] >= 0)
                         & may_round)
            r = rec[:, i]
            rdiff = np.abs(col - r)
            own_ok = ((rdiff <= _tol(r, rtol, atol)) | ((rdiff <= hu) & (rdiff <= ROUNDING_MAX_REL * np.abs(r))))
            own_ok &= (up_bad | up_rnd)
            chain_ok = np.zeros(n, dtype=bool)
            for _how, vals in chains:
                cd = np.abs(col - vals[i])
                chain_ok |= ((cd <= _tol(vals[i], rtol, atol)) | (cd <= hu)) & small & may_round
            v = np.full(n, INC)
            h = np.zeros(n, dtype=np.int64)
            v[chain_ok] = RND; h[chain_ok] = 3
            v[truncated] = RND; h[truncated] = 2
            own_rnd = own_ok & up_rnd & ~up_bad & may_round
            v[own_rnd] = RND; h[own_rnd] = 4
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


def _named_values(key: AnswerKey, G: np.ndarray, rtol, atol) -> np.ndarray:
    """rows x quantities: the given value is, within tolerance, the value of
    another named quantity of the problem (a parameter before its update, a
    forward value, a gradient, an update), other than 0 and other than the
    right value itself.  Inputs and targets are left out: 1 and 0.5 are too
    common to mean anything."""
    params = set(key.graph.parameters)
    pool = np.array([q.value for q in key.quantities
                     if (q.kind != "given" or q.node in params) and q.value != 0 and math.isfinite(q.value)])
    out = np.zeros(G.shape, dtype=bool)
    if pool.size == 0:
        return out
    tol = np.maximum(rtol * np.abs(pool), atol)
    with np.errstate(invalid="ignore"):
        for i in range(G.shape[1]):
            col = G[:, i]
            if np.all(np.isnan(col)):
                continue
            others = np.abs(pool - key.exact[i]) > np.maximum(rtol * abs(key.exact[i]), atol)
            hit = np.abs(col[:, None] - pool[None, :]) <= tol[None, :]
            out[:, i] = np.any(hit & others[None, :], axis=1)
    return out


# ---------------------------------------------------------------------------
# Messages


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    return f"{v:.6g}"


def _exact_text(q: Quantity) -> str:
    """The exact value as a key prints it (kept on the quantity: a class
    prints it thousands of times)."""
    text = getattr(q, "_text", None)
    if text is None:
        try:
            text = num_text(q.exact)
        except (TypeError, ValueError):
            text = _fmt(q.value)
        q._text = text
    return text


#: diagnoses in the order they are preferred when several fit equally well
#: (a named, specific mistake before a coincidence of values)
DIAGNOSIS_ORDER = ("not-updated", "missing-lr", "wrong-direction", "step-only", "sign", "missing-derivative",
                   "missing-factor", "swapped-with", "wrong-point", "extra-factor", "value-of")


_STEP_CODES = ("not-updated", "missing-lr", "wrong-direction", "step-only")


def _rank(code: str) -> int:
    return DIAGNOSIS_ORDER.index(code.split(":")[0])


class _Diagnoser:
    """The one best-supported mistake behind a wrong number, as (code,
    sentence), or ("", ""): a value matching a mistake model within the
    tolerance beats one matching only to the digits shown (and such a match
    is said to be one); among equals, DIAGNOSIS_ORDER decides.  Cached per
    value."""

    def __init__(self, key: AnswerKey, rtol, atol):
        self.key = key
        self.rtol, self.atol = rtol, atol
        self.cache: dict = {}
        self._factors: dict = {}
        self._model_cache: dict = {}
        self.params = set(key.graph.parameters)
        self.param_pos = {p: k for k, p in enumerate(key.graph.parameters)}

    def _model_table(self, q: Quantity, models: list, e: float):
        """The models as arrays (those equal to the right value left out)
        and each one's preference (rank, nearness, order)."""
        keep = [(k, m) for k, m in enumerate(models)
                if math.isfinite(m[1]) and abs(m[1] - e) > max(self.rtol * abs(e), self.atol)]
        codes = [m[0] for _, m in keep]
        values = np.array([m[1] for _, m in keep], dtype=float)
        sentences = [m[2] for _, m in keep]
        order = [(_rank(m[0]), self._near(q, m[0]), k) for k, m in keep]
        return codes, values, sentences, order

    def tier(self, a, b, dec, sig=None):
        """0: a equals b within tolerance; 1: a is b rounded to the digits
        shown (at least 2 significant figures); None: neither."""
        if abs(a - b) <= max(self.rtol * abs(b), self.atol):
            return 0
        if dec is not None and dec >= 0 and (sig is None or sig >= MIN_SIG):
            if abs(a - b) <= 0.5 * 10.0 ** -dec * (1 + 1e-9) and abs(a - b) <= ROUNDING_MAX_REL * abs(b):
                return 1
        return None

    def __call__(self, i: int, g: float, dec, own_row, sig=None, rec=None) -> tuple:
        """``rec``: quantity i computed from the row's own earlier values;
        when they deviate, the mistake models are tried on it too (a sign
        flipped on top of a value carried from an earlier mistake)."""
        key = self.key
        q = key.quantities[i]
        # an update's models read the gradient: the key's, and (own pass)
        # the answerer's own
        extra = ()
        if q.kind == "update":
            gi = key.index[q.parents[1]]
            extra = (key.quantities[gi].value,)
        carried = rec is not None and math.isfinite(rec) and abs(rec - q.value) > max(self.rtol * abs(q.value), self.atol)
        ck = (i, g, dec, sig, extra) + ((rec, tuple(own_row)) if carried else ())
        if ck not in self.cache:
            found = []
            bases = [(0, q.value, None)] + ([(1, float(rec), own_row)] if carried else [])
            for base, e, vals in bases:
                # the key's own values before the answerer's: a named swap of the key's
                # values is more telling than a sign on a value carried from a mistake
                if base == 0:
                    mk = (i, extra)
                    if mk not in self._model_cache:
                        self._model_cache[mk] = self._model_table(q, list(self._models(i, extra, e, None)), e)
                    table = self._model_cache[mk]
                else:
                    table = self._model_table(q, list(self._models(i, extra, e, vals)), e)
                codes, values, sentences, order = table
                if not codes:
                    continue
                diff = np.abs(g - values)
                t0 = diff <= np.maximum(self.rtol * np.abs(values), self.atol)
                t1 = np.zeros_like(t0)
                if dec is not None and dec >= 0 and (sig is None or sig >= MIN_SIG):
                    t1 = (diff <= 0.5 * 10.0 ** -dec * (1 + 1e-9)) & (diff <= ROUNDING_MAX_REL * np.abs(values))
                if not (t0.any() or t1.any()):
                    continue
                for t, mask in ((0, t0), (1, t1 & ~t0)):
                    for k in np.flatnonzero(mask):
                        sentence = sentences[k]
                        if base:
                            sentence += f" (from your own earlier values, which give {_fmt(e)})"
                        # an update step's own mistakes do not depend on where its gradient came from
                        pref = 0 if codes[k] in _STEP_CODES else base
                        found.append((t, pref) + order[k] + (codes[k], float(values[k]), sentence))
            if not found:
                self.cache[ck] = ("", "")
            else:
                t, _b, _r, _n, _k, code, value, sentence = min(found, key=lambda f: f[:5])
                if t == 1:
                    sentence += f" (matches {_fmt(value)} to the digits shown only)"
                self.cache[ck] = (code, sentence)
        return self.cache[ck]

    def _models(self, i: int, extra, e: float, vals=None):
        """(code, value, sentence) of every mistake model for quantity i
        whose right value is ``e`` (the key's, or the one the answerer's own
        earlier values ``vals`` give)."""
        key = self.key
        q = key.quantities[i]
        if e != 0:
            yield "sign", -e, "sign error: this is minus the right value"
            yield "extra-factor:2", 2 * e, "twice the right value (an extra factor of 2)"
            yield "missing-factor:2", e / 2, "half the right value (a factor of 2 is missing)"
        if q.kind == "update":
            p0 = key.quantities[key.index[q.node]].value
            grad = extra[0] if vals is None else float(vals[key.index[q.parents[1]]])
            new_own = float(q.fn(p0, grad))
            if vals is None:
                yield "not-updated", p0, f"this is {q.node} before the update: the update was not applied"
            if grad != 0 and key.solution.optimizer.rule == "sgd":
                yield ("missing-lr", p0 - grad,
                       f"the learning rate is missing ({q.node} - d{key.loss}/d{q.node})")
            if grad != 0 and p0 != 0:      # from 0, going the wrong way is just the sign
                yield ("wrong-direction", 2 * p0 - new_own,
                       f"the step went with the gradient instead of against it ({q.node} + lr * d{key.loss}/d{q.node})")
                if p0 != 0:
                    yield ("step-only", new_own - p0,
                           f"this is the step only; the old value {q.node} = {_fmt(p0)} is not added")
        if q.kind == "adjoint" and e != 0:
            for name, fv, via in self.chain_factors(q.qid):
                if via is not None:
                    if vals is not None:     # (on the key's values the variants cover this)
                        yield (f"missing-derivative:{via}", e / fv,
                               f"the derivative factor {name} of {via} is missing")
                    continue
                if vals is not None and name in key.index:
                    fv = float(vals[key.index[name]])
                if fv not in (0.0, 1.0, -1.0) and math.isfinite(fv):
                    yield (f"missing-factor:{name}", e / fv,
                           f"the factor {name} = {_fmt(fv)} of the chain rule is missing")
        if vals is None:
            for code, desc, variant in key.variants():
                yield code, float(variant[i]), desc
        params = self.params
        for j, o in enumerate(key.quantities):
            if j == i:
                continue
            ov = o.value if vals is None else float(vals[j])
            if (o.kind == q.kind and o.kind != "given" and (o.node in params) == (q.node in params)
                    and (vals is None or q.kind == "update")):
                yield f"swapped-with:{o.node}", ov, f"this is the value of {o.label}: {o.node} and {q.node} exchanged"
            elif ov != 0 and (o.kind != "given" or o.node in params) and vals is None:
                yield f"value-of:{o.qid}", ov, f"this is the value of {o.label}"

    def _near(self, q: Quantity, code: str) -> int:
        """Among exchanged quantities, the nearest parameter first (w2 and
        w3 are the labels most easily exchanged)."""
        if not code.startswith("swapped-with:"):
            return 0
        pos = self.param_pos
        other = code.split(":", 1)[1]
        if q.node in pos and other in pos:
            return abs(pos[q.node] - pos[other])
        return len(pos)

    def chain_factors(self, qid: str) -> list:
        """(name, value, activation) of the factors of an adjoint's
        chain-rule product (dL/dw5 = (o1 - y) * a1: a1), value not 0 or 1;
        ``activation`` names the node whose derivative the factor is
        (1 - h1**2: h1), None for a named factor."""
        if qid not in self._factors:
            out = []
            g = self.key.graph
            chain = self.key.forms(qid).get("chain")
            point = self.key.point()
            if chain is not None:
                for f in sympy.Mul.make_args(chain):
                    acts = sorted(n for n in map(str, f.free_symbols) if n in g.nodes and g.nodes[n].expr is not None
                                  and op_of(g.nodes[n].expr) is not None)
                    if not f.is_Symbol and not acts:
                        continue
                    try:
                        fv = float(f.xreplace(point))
                    except (TypeError, ValueError):
                        continue
                    if math.isfinite(fv) and abs(fv) not in (0.0, 1.0):
                        out.append((str(f), fv, None if f.is_Symbol else acts[0]))
            self._factors[qid] = out
        return self._factors[qid]


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
            codes, msgs, dcodes = [], [], []
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
                    _c, fmsg, _v, fcode = formula_cache[(qid, str(p.expr))]
                    msgs.append(fmsg)
                    if fcode:
                        dcodes.append(fcode)
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
                    # an earlier wrong answer (not only rounding) changes what this one should be
                    up_bad = any(bad[r, key.index[x]] for x in q.parents)
                    dcode, d = diag(i, float(g), p.decimals, own[r], p.sig, float(rec[r, i]) if up_bad else None)
                    msgs.append(f"right value: {_exact_text(q)}" + (f"; {d}" if d else ""))
                    if dcode:
                        dcodes.append(dcode)
            code = _worst(codes)
            if len(qids) == 1:
                message = msgs[0]
            else:
                # entries counted from 1, as a person counts them
                wrong = [f"[{k + 1}] {m}" for k, (c, m) in enumerate(zip(codes, msgs)) if c not in (C, EQ)]
                message = "; ".join(wrong[:6]) + (" ..." if len(wrong) > 6 else "")
            notes = sorted({p.note for p in parsed if getattr(p, "note", None)})
            if notes:
                message = "; ".join([message] + notes) if message else "; ".join(notes)
            item = _item(name, given_text, exp_out, VERDICTS[code], message,
                         Counter(dcodes).most_common(1)[0][0] if dcodes and code == INC else None)
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
    from derive.engine.graph import nest

    return nest(list(flat), tuple(shape))


def _item(name, given, expected, verdict, message, code=None) -> dict:
    """One answer's record.  ``code`` names the diagnosed mistake (stable:
    ``sign``, ``not-updated``, ``missing-lr``, ``missing-factor:2``,
    ``swapped-with:w3``, ``wrong-point``, ...) or is None."""
    return {"name": name, "given": given, "expected": expected, "verdict": verdict, "message": message,
            "code": code}


# ---------------------------------------------------------------------------
# Formulas


@bounded(ANSWER_SECONDS, "judging one formula", lambda msg, *a, **k: (UNP, msg, 0.0, None))
def judge_formula(key: AnswerKey, qid: str, expr, point: dict, rtol=RTOL, atol=ATOL):
    """(verdict code, message, value at the problem's point, diagnosis code)
    for a formula answer, compared with the key's forms of the quantity as
    functions; a wrong formula gets the same diagnoses as a number (sign,
    a missing factor, a missing derivative factor, another quantity's rule)."""
    q = key.quantities[key.index[qid]]
    try:
        value = to_float(expr.xreplace(point))
    except ValueError:
        value = math.nan
    forms = key.forms(qid)
    structural = any(expr == f for f in forms.values() if f is not None)
    general = forms.get("general")
    shown = forms.get("chain", general)
    if general is not None:
        mine = key.expand_forward(expr)
        if mine is not None and same_function(mine, general, key):
            return (C if structural else EQ), ("" if structural else f"equal to {shown}"), value, None
    for name in ("step", "chain"):
        f = forms.get(name)
        if f is not None and same_function(expr, f, key):
            how = "the key's step with upstream values" if name == "step" else "the key's formula"
            return (C if structural else EQ), ("" if structural else f"equal to {how} {f}"), value, None
    ok_here = math.isfinite(value) and abs(value - q.value) <= max(rtol * abs(q.value), atol)
    msg = f"not the same formula as {forms.get('chain', forms.get('step', general))}"
    code, why = _formula_diagnosis(key, q, expr)
    if why:
        msg += f"; {why}"
    elif general is not None and general.has(step):
        relaxed = general.replace(step, lambda a: sympy.Integer(1))
        mine = key.expand_forward(expr)
        if mine is not None and same_function(mine, relaxed, key):
            code = "missing-derivative:relu"
            msg += ("; it agrees only where the ReLU units are active: the factor step(...) "
                    "(relu's derivative) is missing")
    if ok_here:
        msg += "; it gives the right number at the problem's point, but not elsewhere"
    elif math.isfinite(value):
        msg += f"; at the problem's point it gives {_fmt(value)}, the right value is {_exact_text(q)}"
    return INC, msg, value, code


def _formula_diagnosis(key: AnswerKey, q: Quantity, expr) -> tuple:
    """(code, sentence) of a wrong formula: the right form with a flipped
    sign, a factor 2 too many or too few, one factor of its chain-rule
    product left out (an activation's derivative or a weight), or the right
    form of another quantity of the same kind; ("", "") if none fits."""
    forms = key.forms(q.qid)
    general = forms.get("general")
    chain = forms.get("chain")
    mine = key.expand_forward(expr)
    if general is None or mine is None:
        return "", ""
    cands = [("sign", -general, "sign error: this is minus the right formula"),
             ("extra-factor:2", 2 * general, "twice the right formula (an extra factor of 2)"),
             ("missing-factor:2", general / 2, "half the right formula (a factor of 2 is missing)")]
    if q.kind == "update":
        p = key.graph.nodes[q.node].symbol
        cands.insert(0, ("not-updated", p, f"this is {q.node} itself: the update is not applied"))
        lr = key.aliases.get("lr")
        grad = key.forms(f"d{key.loss}/d{q.node}").get("general")
        if lr is not None and grad is not None:
            cands.insert(1, ("missing-lr", p - grad, "the learning rate is missing"))
            cands.insert(2, ("wrong-direction", p + lr * grad,
                             "the step went with the gradient instead of against it"))
            mine_grad = key.quantities[key.index[f"d{key.loss}/d{q.node}"]].value
            for other in key.graph.parameters:
                og = key.quantities[key.index[f"d{key.loss}/d{other}"]]
                if other == q.node or og.value == mine_grad:
                    continue
                for form in (og.exact, key.forms(og.qid).get("general")):
                    if form is not None:
                        cands.append((f"swapped-with:{other}", p - lr * form,
                                      f"the step uses the gradient of {other}, not of {q.node}"))
    if q.kind == "adjoint":
        # an activation's derivative left out: the right form divided by it
        for n, node in key.graph.nodes.items():
            op = op_of(node.expr) if node.expr is not None else None
            if op is None or op.name == "step":
                continue
            deriv = key.expand_forward(op.derivative(node.expr.args[0], node.symbol))
            if deriv is not None and deriv != 0:
                cands.append((f"missing-derivative:{n}", general / deriv,
                              f"the derivative of {n} = {op.name}(...) is missing"))
    if chain is not None and q.kind == "adjoint":
        for f in sympy.Mul.make_args(chain):
            if not f.free_symbols:
                continue
            rest = key.expand_forward(chain / f)
            act = [n for n in map(str, f.free_symbols) if n in key.graph.nodes
                   and key.graph.nodes[n].expr is not None and op_of(key.graph.nodes[n].expr) is not None]
            if f.is_Symbol:
                cands.append((f"missing-factor:{f}", rest, f"the factor {f} of the chain rule is missing"))
            elif act or f.has(step):
                via = act[0] if act else str(sorted(f.free_symbols, key=str)[0])
                cands.append((f"missing-derivative:{via}", rest,
                              f"the derivative factor {f} is missing"))
    for o in key.quantities:
        if o.qid != q.qid and o.kind == q.kind and o.kind in ("adjoint", "update") and o.value != q.value:
            og = key.forms(o.qid).get("general")
            if og is not None:
                cands.append((f"swapped-with:{o.node}", og, f"this is the formula of {o.label}"))
    for code, form, sentence in cands:
        try:
            if same_function(mine, form, key):
                return code, sentence
        except (TypeError, ValueError):
            continue
    return "", ""


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


def check_values(solution, rows: list, rtol=RTOL, atol=ATOL, policy: Policy | None = None) -> list:
    """Check answers against a solution's ``values`` (numbers, lists, text),
    and formula- or rule-valued ones against its ``judges``.  An answer that
    follows from earlier ones (RELATIONS) is judged after them, so it knows
    whether they were right."""
    policy = _policy(policy, rtol, atol)
    rtol, atol = policy.rtol, policy.atol
    answer_values = getattr(solution, "answer_values", None)     # a large vector problem's numbers
    values = answer_values() if answer_values else solution.to_json().get("values", {})
    judges = getattr(solution, "judges", None) or {}
    related = RELATIONS.get(solution.problem.id, {})
    results = []
    for answers in rows:
        items = []
        own = _own_numbers(answers)
        verdicts = {}
        order = sorted(answers, key=lambda n: _normal_name(n) in related)
        done = {}
        for name in order:
            text = answers[name]
            key = _normal_name(name)
            if _judged(judges, key, text) or (is_not_given(text) and key in values):
                done[name] = _judged_item(solution, judges, name, text)
            elif key not in values:
                close = difflib.get_close_matches(key, list(values), n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                done[name] = _item(name, _text_of(text), None, "unknown-name",
                                   f"{name!r} is not a quantity of this problem{hint}; "
                                   f"known: {', '.join(list(values)[:12])}")
            else:
                done[name] = _judge_value(name, text, values[key], values, rtol, atol, solution.problem.id, own,
                                      policy=policy, verdicts=verdicts)
            verdicts[key] = done[name]["verdict"]
        items.extend(done[n] for n in answers)
        results.append(items)
    return results


def _judge_value(name, text, expected, values, rtol, atol, solution_id=None, own=None,
                 policy: Policy | None = None, verdicts: dict | None = None) -> dict:
    policy = _policy(policy, rtol, atol)
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
    codes, msgs, dcodes = [], [], []
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
        exact_same = [k2 for k2, v in others.items() if k2 != _normal_name(name) and v != e and v != 0
                      and abs(g - v) <= max(rtol * abs(v), atol)]
        may_round = (p.sig is None or p.sig >= policy.min_sig) and not exact_same
        asked = (policy.decimals is not None and p.decimals is not None and p.decimals >= policy.decimals
                 and diff <= 0.5 * 10.0 ** -policy.decimals * (1 + 1e-9) and not exact_same)
        if diff <= max(rtol * abs(e), atol):
            codes.append(C); msgs.append("")
        elif (p.decimals is not None and diff <= 0.5 * 10.0 ** -p.decimals * (1 + 1e-9) and small
              and may_round) or asked:
            codes.append(RND); msgs.append(f"{_fmt(e)} rounded to {p.decimals} decimals")
        elif (p.decimals is not None and diff < 10.0 ** -p.decimals * (1 - 1e-6) and small
              and abs(g) < abs(e) and g * e >= 0 and may_round):
            codes.append(RND)
            msgs.append(f"{_fmt(e)} truncated, not rounded (rounded: {_fmt(round(e, p.decimals))})")
        else:
            codes.append(INC)
            found = ""
            if e != 0 and abs(g + e) <= max(rtol * abs(e), atol):
                found, dcode = "sign error: this is minus the right value", "sign"
            elif exact_same:
                found, dcode = f"this is the value of {exact_same[0]}", f"value-of:{exact_same[0]}"
            if found:
                dcodes.append(dcode)
            msgs.append(f"right value: {_fmt(e)}" + (f"; {found}" if found else ""))
    code = _worst(codes)
    if len(codes) == 1:
        message = msgs[0]
    else:
        message = "; ".join(f"[{k + 1}] {m}" for k, (c, m) in enumerate(zip(codes, msgs)) if c != C)
        if code == INC:
            same = [k2 for k2, v in values.items() if k2 != name and isinstance(v, list)
                    and _flatten(v) != exp_flat and _same_numbers(texts, _flatten(v))]
            if same:
                message += f"; this is the value of {same[0]}"
                dcodes.append(f"value-of:{same[0]}")
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
                    wrong = [q for q in parents if (verdicts or {}).get(q) in ("incorrect", "carried-forward")]
                    if wrong:
                        # follows from the answerer's own wrong intermediates: carried forward at best
                        return _item(name, given_text, expected, "carried-forward",
                                     f"{how} of your {', '.join(wrong)} gives {_fmt(mine)} ({kind}), but your "
                                     f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} wrong; right value: "
                                     f"{_fmt(float(expected))}")
                    return _item(name, given_text, expected, "rounding",
                                 f"{how} of your rounded {src} gives {_fmt(mine)} ({kind}); "
                                 f"exact: {_fmt(float(expected))} ({_fmt(round(float(expected), p.decimals))} "
                                 f"to {p.decimals} decimals)")
    return _item(name, given_text, expected, VERDICTS[code], message,
                 dcodes[0] if dcodes and code == INC else None)


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


def check_rows(solution, rows: list, rtol=RTOL, atol=ATOL, policy: Policy | None = None) -> list:
    """Item lists for many answer mappings (the work of a class CSV)."""
    policy = _policy(policy, rtol, atol)
    rtol, atol = policy.rtol, policy.atol
    rows = [as_texts(r) for r in rows]
    if hasattr(solution, "derivation") and hasattr(solution, "evaluation"):
        key = answer_key(solution)
        judges = getattr(solution, "judges", None) or {}
        if not judges and not any(is_not_given(t) for r in rows for t in r.values()):
            return check_table(key, rows, rtol, atol, policy)
        # answers a judge takes (path sums, vector formulas) or marked "not
        # given" are judged one by one; the rest go through the table at once
        aside = [{n: t for n, t in r.items() if _judged(judges, _normal_name(n), t) or is_not_given(t)}
                 for r in rows]
        table = check_table(key, [{n: t for n, t in r.items() if n not in a} for r, a in zip(rows, aside)],
                            rtol, atol, policy)
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
    return check_values(solution, rows, rtol, atol, policy)


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


def check(solution, answers: dict, rtol=RTOL, atol=ATOL, target: str | None = None,
          policy: Policy | None = None) -> dict:
    """Check one answerer's answers; the contract's JSON object."""
    policy = _policy(policy, rtol, atol)
    items = check_rows(solution, [answers], policy=policy)[0]
    return {"target": target or solution.problem.id, "items": items, "summary": summary_of(items),
            "policy": policy.describe()}


def check_batch(solution, batch: Batch, rtol=RTOL, atol=ATOL, target: str | None = None,
                policy: Policy | None = None, points: dict | None = None) -> dict:
    """Check a class: one result per row under ``rows`` (with its score),
    and a summary per question.  Columns that are not quantities of the
    problem (name, email, a typo) are carried through in each row's
    ``fields`` and never graded; a typo is named in ``warnings``.  Points
    per question come from ``points``, else the CSV's points row, else 1."""
    policy = _policy(policy, rtol, atol)
    graded, warnings = classify_columns(solution, batch.columns)
    rows_in = [{n: t for n, t in r.items() if n in graded} for r in batch.rows]
    results = check_rows(solution, rows_in, policy=policy)
    pts = {q: float((points or {}).get(q, batch.points.get(q, 1.0))) for q in graded}
    for q in (points or {}):
        if q not in pts:
            warnings.append(f"--points: {q!r} is not a column of the CSV; ignored")
    carried = [c for c in batch.columns if c not in graded]
    rows = []
    for k, (sid, items) in enumerate(zip(batch.ids, results)):
        fields = dict(batch.fields[k]) if k < len(batch.fields) else {}
        fields.update({c: _text_of(batch.rows[k][c]) for c in carried if c in batch.rows[k]})
        rows.append({"id": sid, "fields": fields, "items": items, "summary": summary_of(items),
                     "score": score_of(items, pts, policy), "points": sum(pts.values())})
    all_items = [it for items in results for it in items]
    return {"target": target or solution.problem.id, "rows": rows, "summary": summary_of(all_items),
            "questions": question_summary(graded, results, policy), "points": pts,
            "columns": {"graded": graded, "carried": list(batch.meta) + carried},
            "warnings": warnings, "policy": policy.describe()}


def classify_columns(solution, columns: list) -> tuple:
    """(graded columns, warnings): a column is graded when it names a
    quantity of the problem; the others are named in one warning each."""
    graded, warnings = [], []
    judges = getattr(solution, "judges", None) or {}
    if hasattr(solution, "derivation") and hasattr(solution, "evaluation"):
        key = answer_key(solution)
        for c in columns:
            try:
                key.resolve(c)
                graded.append(c)
            except CheckError as exc:
                if _normal_name(c) in judges:
                    graded.append(c)
                else:
                    warnings.append(f"column {c!r}: {exc} (carried through, not graded)")
        return graded, warnings
    values = solution.to_json().get("values", {})
    for c in columns:
        key = _normal_name(c)
        if key in values or key in judges:
            graded.append(c)
        else:
            close = difflib.get_close_matches(key, list(values), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            warnings.append(f"column {c!r} is not a quantity of this problem{hint} (carried through, not graded)")
    return graded, warnings


def credit_of(verdict: str, policy: Policy) -> float:
    """The share of a question's points a verdict earns under a policy."""
    if verdict in ("correct", "equivalent"):
        return 1.0
    if verdict == "rounding":
        return policy.rounding_credit
    if verdict == "carried-forward":
        return policy.carried_credit
    return 0.0


def score_of(items: list, points: dict, policy: Policy) -> float:
    """Points earned by one answerer (unanswered questions earn none)."""
    return round(sum(points.get(it["name"], 1.0) * credit_of(it["verdict"], policy) for it in items), 6)


#: what a diagnosis code means, as a class summary says it
CODE_PHRASES = {"sign": "sign error", "not-updated": "weight not updated", "missing-lr": "missing learning rate",
                "wrong-direction": "step taken with the gradient, not against it",
                "step-only": "the step only (old value not added)", "missing-factor": "missing factor {}",
                "extra-factor": "extra factor {}", "missing-derivative": "derivative of {} missing",
                "swapped-with": "exchanged with {}", "wrong-point": "derivative taken at the wrong point",
                "value-of": "the value of {}"}


def code_phrase(code: str) -> str:
    """A diagnosis code in words.

    >>> code_phrase("missing-lr"), code_phrase("swapped-with:w3")
    ('missing learning rate', 'exchanged with w3')
    """
    head, _, arg = code.partition(":")
    return CODE_PHRASES.get(head, head).format(arg)


def question_summary(columns: list, results: list, policy: Policy | None = None) -> dict:
    """Per question: how many answered, the share correct (rounding counted
    only when the policy says so) and accepted, counts per verdict and per
    diagnosis code, and the most common wrong answers with what they are."""
    policy = policy or Policy()
    right = ("correct", "equivalent") + (("rounding",) if policy.rounding_is_correct else ())
    out = {}
    by_name: dict = {c: [] for c in columns}
    for items in results:
        for it in items:
            by_name.setdefault(it["name"], []).append(it)
    for name, items in by_name.items():
        counts = Counter(i["verdict"] for i in items)
        codes = Counter(i.get("code") for i in items if i.get("code"))
        wrong = Counter()
        what = {}
        for it in items:
            if it["verdict"] in ("incorrect", "carried-forward", "unparseable"):
                g = (it["verdict"], it.get("code") or "", _canonical_given(it["given"]))
                wrong[g] += 1
                what.setdefault(g, it["message"])
        common = [{"given": g[2], "count": c, "verdict": g[0], "code": g[1] or None, "message": what[g]}
                  for g, c in sorted(wrong.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
        n = len(items)
        out[name] = {"answered": n,
                     "share_correct": round(sum(counts.get(v, 0) for v in right) / n, 4) if n else None,
                     "share_accepted": round(sum(counts.get(v, 0) for v in ACCEPTED) / n, 4) if n else None,
                     "verdicts": {v: counts.get(v, 0) for v in VERDICTS},
                     "codes": dict(sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))),
                     "common_wrong": common}
    return out


@functools.lru_cache(maxsize=4096)
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


# ---------------------------------------------------------------------------
# The Python API: derive.check(target, answers, ...)


class CheckReport(dict):
    """The JSON object of ``derive check`` (a dict), shown in a notebook as
    a table: one row per answer (or, for a class, per question)."""

    def _rows(self):
        if "rows" in self:
            return (("question", "answered", "accepted", "diagnoses"),
                    [(n, q["answered"], "-" if q["share_accepted"] is None else f"{100 * q['share_accepted']:.0f}%",
                      "; ".join(f"{c} x{k}" for c, k in q["codes"].items()))
                     for n, q in self["questions"].items()])
        return (("answer", "given", "expected", "verdict", "note"),
                [(it["name"], it["given"], _shown_value(it["expected"]), it["verdict"], it["message"])
                 for it in self["items"]])

    def _repr_html_(self) -> str:
        import html

        colours = {"correct": "#1a7f37", "equivalent": "#1a7f37", "rounding": "#0969da",
                   "carried-forward": "#9a6700", "incorrect": "#cf222e"}
        head, rows = self._rows()
        out = [f"<p><b>derive check {html.escape(str(self['target']))}</b></p>", "<table>",
               "<tr>" + "".join(f'<th style="text-align:left">{html.escape(h)}</th>' for h in head) + "</tr>"]
        for r in rows:
            cells = []
            for h, c in zip(head, r):
                style = f' style="color:{colours.get(str(c), "#8250df")}"' if h == "verdict" else ""
                cells.append(f"<td{style}>{html.escape(str(c))}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        s = self["summary"]
        out.append("</table>")
        out.append(f"<p>{sum(s[v] for v in ACCEPTED)}/{s['total']} accepted</p>")
        return "\n".join(out)

    def _repr_latex_(self) -> str:
        from derive.typeset.latex import escape as escape_latex

        head, rows = self._rows()
        spec = "l" * (len(head) - 1) + "p{6cm}"
        lines = [r"\begin{tabular}{" + spec + "}", " & ".join(escape_latex(h) for h in head) + r" \\ \hline"]
        lines += [" & ".join(escape_latex(str(c)) for c in r) + r" \\" for r in rows]
        lines.append(r"\end{tabular}")
        return "\n".join(lines)


def _shown_value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return "[" + ", ".join(_shown_value(x) for x in v) + "]"
    return _fmt(v) if isinstance(v, float) else str(v)


def check_answers(target, answers, values: dict | None = None, *, rtol: float = RTOL, atol: float = ATOL,
                  min_sig: int = MIN_SIG, decimals: int | None = None, points: dict | None = None,
                  policy: Policy | None = None) -> CheckReport:
    """Check hand answers from Python, as ``derive check`` does; this is
    ``derive.check(...)``.  ``target``: a built-in id, a spec file, a
    loaded problem or a solution; ``answers``: a mapping of names to
    answers, a list of mappings or a Batch (a class), or the path of an
    answers file (.yaml, .json, .csv).  Returns the records of
    ``derive check --format json`` (a dict that a notebook shows as a table).

    >>> import derive
    >>> r = derive.check("mlp-relu-regression", {"w1": 0.1, "dL/dw5": "-0.105"})
    >>> [(i["name"], i["verdict"], i["code"]) for i in r["items"]]
    [('w1', 'incorrect', 'not-updated'), ('dL/dw5', 'correct', None)]
    """
    from pathlib import Path

    from derive.grading.answers import read_answers

    if hasattr(target, "problem") and hasattr(target, "to_json"):
        solution, tid = target, target.problem.id
    else:
        problem = target if hasattr(target, "solve") else None
        if problem is None:
            from derive.problems import load

            problem = load(str(target))
        solution, tid = problem.solve(values or None), getattr(problem, "id", str(target))
    policy = policy or Policy(rtol, atol, min_sig, decimals)
    if isinstance(answers, (str, Path)):
        answers = read_answers(answers)
    if isinstance(answers, list):
        answers = Batch([str(k + 1) for k in range(len(answers))],
                        list(dict.fromkeys(n for a in answers for n in a)), [as_texts(a) for a in answers])
    if isinstance(answers, Batch):
        return CheckReport(check_batch(solution, answers, target=tid, policy=policy, points=points))
    return CheckReport(check(solution, answers, target=tid, policy=policy))

