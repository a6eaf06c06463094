"""Randomised variants of a gradient problem: fresh numbers, same derivation.

Numbers are drawn reproducibly from ``(seed, variant number)``, so variant 3
of seed 7 is the same whatever ``--count`` is.  Every given (scalar, or entry
of a vector/matrix group) is drawn on its own, and a draw is kept only if it
makes a good exercise.  The rules (:data:`RULES`, listed for one problem by
:func:`describe`):

* short decimals a person can compute with: every given is a multiple of 0.1;
  weights and inputs lie in [-1, 1] and are never 0; biases (parameters
  named ``b``, ``b1``, ``b_i``, ``bias...``) lie in [-0.5, 0.5];
* targets keep the kind of their given value: a 0/1 label stays a 0/1 label
  (a one-hot vector stays one-hot, its hot position drawn), a target given in
  [0, 1] is drawn in [0, 1], any other in [-1, 1];
* an input given as all zeros (an initial state such as ``H0``) stays zero;
  no two inputs are equal (equal inputs give their weights equal gradients);
* no activation at a kink, and each relu unit keeps the state it has at
  the problem's own values: every relu argument is at least 0.05 where the
  problem's is positive (or zero) and at most -0.05 where it is negative.
  A problem built around a dead unit (the exam's relu net, z2 < 0, so
  dL/dw3 = dL/dw4 = dL/db2 = dL/dw6 = 0) keeps it, which is its teaching
  point; ``all_active=True`` (``derive variants --all-active``) asks for
  every unit active instead;
* no saturation: every sigmoid, tanh and softplus argument lies in
  [-2.5, 2.5] and every exp argument in [-5, 5]; log and sqrt arguments are
  at least 0.05;
* something to learn, in numbers a person reads: the loss is at least
  0.01 and the gradient of every parameter that reaches the loss is at
  least 0.001 in size (a loss of 0.0007 with gradients of 1e-5 teaches
  nothing), except the gradients a kept dead unit makes exactly 0; and no
  two parameters have the same gradient (so swapping two answers is
  caught).

Candidates are drawn and tested in batches of :data:`BATCH` with the numpy
forward and backward passes of :mod:`derive.engine.numeric` (which work on arrays);
the first acceptable candidate of a batch is the variant.  The symbolic
derivation is reused for every variant (derived once per problem).  Spec
problems and the vector/matrix built-ins (at their default sizes) both work:
vector and matrix givens are written to ``values.yaml`` as nested lists.

:func:`write_variants` writes a set (``derive variants``): each variant's
values, question sheet, key and answers, in worker processes; a class
roster deals the variants out (:func:`assign`) and :func:`check_class`
checks a class CSV against each student's own variant.

>>> from derive.problems import load
>>> p = load("mlp-relu-regression")
>>> vs = draw_variants(p, count=2, seed=1)
>>> [v.number for v in vs], sorted(vs[0].values)[:3]
([1, 2], ['b1', 'b2', 'b3'])
>>> vs[1].values == draw_variants(p, count=5, seed=1)[1].values
True
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.budget import SPEC_SOLVE_SECONDS, TimeLimitExceeded, limit
from derive.errors import UserError
from derive.typeset.fmt import num_tex, num_text
from derive.engine.graph import nest
from derive.engine.numeric import numpy_backprop, numpy_forward
from derive.engine.ops import op_of
from derive.document.sheet import answer_entries, answers_of, leaf_groups
from derive.outfile import check_folder
from derive.safetext import CsvError, csv_cell, csv_rows, csv_uncell, shorten

#: the drawing rules; all numbers are in units of ``grid``
RULES = {
    "grid": 0.1,
    "range": 1.0,            # weights, inputs, targets: [-range, range]
    "bias_range": 0.5,       # biases: [-bias_range, bias_range]
    "kink_margin": 0.05,     # |relu argument| at least this (on the side the problem's own values put it)
    "saturation": 2.5,       # |sigmoid, tanh, softplus argument| at most this
    "exp_limit": 5.0,        # |exp argument| at most this
    "domain_margin": 0.05,   # log and sqrt arguments at least this
    "min_loss": 0.01,
    "min_gradient": 1e-3,    # every reachable |gradient| at least this (bar a kept dead unit's zeros)
    "min_gradient_gap": 1e-6,  # every difference of two reachable gradients at least this
}
#: candidates drawn and tested at once (part of the reproducible sequence)
BATCH = 64
#: candidates tried for one variant before giving up
MAX_TRIES = 64 * BATCH
#: float slack in the rule comparisons (values are exact multiples of 0.01...)
EPS = 1e-9

_BIAS = re.compile(r"(b|bias)(\d+|_\w+)?")
_SATURATING = ("sigmoid", "tanh", "softplus")


@dataclass(frozen=True)
class Variant:
    """One variant: its 1-based ``number`` and its givens (leaf name -> exact
    rational)."""

    number: int
    values: dict

    def plain_values(self, graph=None) -> dict:
        """The givens as written to ``values.yaml``: short decimals, and
        nested lists for the vector/matrix groups of ``graph``.

        >>> Variant(1, {"x": sympy.Rational(3, 10), "w": sympy.Integer(-1)}).plain_values()
        {'x': 0.3, 'w': -1}
        """
        flat = {k: _plain(v) for k, v in self.values.items()}
        if graph is None:
            return flat
        out: dict = {}
        done = set()
        groups = leaf_groups(graph)
        for name in graph.leaves:
            if name in done or name not in flat:
                continue
            grp = groups.get(name)
            if grp is not None and all(n in flat for n in grp.names):
                out[grp.name] = nest([flat[n] for n in grp.names], grp.shape)
                done.update(grp.names)
            else:
                out[name] = flat[name]
        return out


def _plain(v):
    f = float(v)
    return int(f) if f == int(f) else float(f"{f:.10g}")


def is_bias(name: str) -> bool:
    """Whether a parameter is drawn as a bias (by its name).

    >>> [is_bias(n) for n in ("b", "b1", "b_i", "bias2", "beta", "w1")]
    [True, True, True, True, False, False]
    """
    return _BIAS.fullmatch(name) is not None


# ---------------------------------------------------------------------------
# How each given is drawn


#: vector/matrix built-in -> (graph, default givens), solved once
_BASES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def is_gradient_problem(problem) -> bool:
    """A problem built on a graph: a spec (GraphProblem) or a vector/matrix
    built-in (TensorProblem, at its default sizes)."""
    return (hasattr(problem, "graph") and hasattr(problem, "spec")) or hasattr(problem, "default_dims")


def base_of(problem):
    """``(graph, default givens by scalar leaf)`` of a gradient problem (a
    vector/matrix built-in is solved once at its default sizes, which also
    derives it); UserError for a problem without gradients."""
    if hasattr(problem, "graph") and hasattr(problem, "spec"):
        return problem.graph, dict(problem.spec.values)
    if hasattr(problem, "default_dims"):
        if problem not in _BASES:
            solution = problem.solve()
            _BASES[problem] = (solution.graph, dict(solution.leaves))
        return _BASES[problem][0], dict(_BASES[problem][1])
    raise UserError(problem.id, "variants need a gradient problem (a network with parameters); "
                                "`derive list` shows the built-ins")


@dataclass(frozen=True)
class _Draw:
    """How one set of leaves is drawn: ``names`` share one rule."""

    names: tuple
    how: str          # "grid" | "zero" | "binary" | "onehot"
    low: int = 0      # grid steps, inclusive
    high: int = 0
    nonzero: bool = False

    def describe(self) -> str:
        g = RULES["grid"]
        if self.how == "zero":
            return "0 (given as zero)"
        if self.how == "binary":
            return "0 or 1 (a label)"
        if self.how == "onehot":
            return "one-hot (the position of the 1 drawn)"
        text = f"multiple of {g:g} in [{self.low * g:g}, {self.high * g:g}]"
        return text + (", not 0" if self.nonzero else "")


def _steps(limit: float) -> int:
    return int(round(limit / RULES["grid"]))


def draw_plan(problem) -> list:
    """How each given of ``problem`` is drawn: a list of rules, each for a
    leaf or a whole group, in graph order."""
    graph, base = base_of(problem)
    groups = leaf_groups(graph)
    plan, seen = [], set()
    for name in graph.leaves:
        if name in seen:
            continue
        kind = graph.nodes[name].kind
        grp = groups.get(name)
        names = tuple(grp.names) if grp is not None else (name,)
        seen.update(names)
        given = [float(base[n]) for n in names if n in base]
        r, b = _steps(RULES["range"]), _steps(RULES["bias_range"])
        if kind == "parameter":
            plan.append(_Draw(names, "grid", -b, b) if is_bias(grp.name if grp else name)
                        else _Draw(names, "grid", -r, r, nonzero=True))
        elif kind == "input":
            if given and all(v == 0 for v in given):
                plan.append(_Draw(names, "zero"))
            else:
                plan.append(_Draw(names, "grid", -r, r, nonzero=True))
        else:  # target
            if given and all(v in (0.0, 1.0) for v in given):
                onehot = len(names) > 1 and sum(given) == 1
                plan.append(_Draw(names, "onehot" if onehot else "binary"))
            elif given and all(0 <= v <= 1 for v in given):
                plan.append(_Draw(names, "grid", 0, r))
            else:
                plan.append(_Draw(names, "grid", -r, r))
    return plan


def _draw_batch(rng, plan: list, n: int) -> dict:
    """name -> int array of grid steps (n candidates)."""
    out = {}
    for rule in plan:
        k = len(rule.names)
        if rule.how == "zero":
            block = np.zeros((n, k), dtype=np.int64)
        elif rule.how == "binary":
            block = rng.integers(0, 2, size=(n, k)) * _steps(1.0)
        elif rule.how == "onehot":
            block = np.zeros((n, k), dtype=np.int64)
            block[np.arange(n), rng.integers(0, k, size=n)] = _steps(1.0)
        else:
            choices = np.arange(rule.low, rule.high + 1)
            if rule.nonzero:
                choices = choices[choices != 0]
            block = choices[rng.integers(0, len(choices), size=(n, k))]
        for j, name in enumerate(rule.names):
            out[name] = block[:, j]
    return out


# ---------------------------------------------------------------------------
# Which candidates make a good exercise


def _activation_sites(graph) -> list:
    """(node, sub-expression, op name) of every application the rules look at."""
    sites = []
    for name in graph.computed:
        for sub in sympy.preorder_traversal(graph.nodes[name].expr):
            op = op_of(sub)
            if op is not None:
                sites.append((name, sub, op.name))
            elif sub.is_Pow and sub.exp == sympy.Rational(1, 2):
                sites.append((name, sub, "sqrt"))
    return sites


def _reaching(graph) -> list:
    """The parameters, and the inputs whose adjoints the problem asks for
    (``wrt_inputs``), that have a path to the loss: their gradients are not
    structurally 0."""
    cons = graph.consumers()
    reach = {graph.loss}
    for name in reversed(list(graph.nodes)):
        if any(c in reach for c in cons[name]):
            reach.add(name)
    asked = graph.parameters + [n for n in graph.wrt_inputs if n not in graph.parameters]
    return [p for p in asked if p in reach]


@dataclass(frozen=True)
class UnitPattern:
    """What a problem's own values fix for all its variants: the relu
    applications that are dead there (their indices among
    :func:`_activation_sites`), and the parameters whose gradient that makes
    exactly 0 (exempt from the gradient-size rules)."""

    dead: frozenset = frozenset()
    zero: frozenset = frozenset()


def unit_pattern(problem, all_active: bool = False) -> UnitPattern:
    """The dead relu units of ``problem`` at its own values (none if
    ``all_active``).

    >>> from derive.problems import load
    >>> pat = unit_pattern(load("mlp-relu-regression"))
    >>> len(pat.dead), sorted(pat.zero)
    (1, ['b2', 'w3', 'w4', 'w6'])
    >>> unit_pattern(load("mlp-relu-regression"), all_active=True)
    UnitPattern(dead=frozenset(), zero=frozenset())
    """
    if all_active:
        return UnitPattern()
    graph, base = base_of(problem)
    leaves = {k: np.array([float(base[k])]) for k in graph.leaves}
    with np.errstate(all="ignore"):
        _, _, caches, _ = numpy_forward(graph, leaves)
        dead = frozenset(k for k, (node, sub, op) in enumerate(_activation_sites(graph))
                         if op in ("relu", "step") and float(np.ravel(caches[node][sub.args[0]])[0]) < 0)
        if not dead:
            return UnitPattern()
        grads = numpy_backprop(graph, leaves, _reaching(graph))
    zero = frozenset(p for p, g in grads.items() if float(np.ravel(g)[0]) == 0.0)
    if zero >= set(grads):        # dead units that leave nothing to learn are not a teaching point
        return UnitPattern()
    return UnitPattern(dead, zero)


def accept_mask(graph, leaves: dict, pattern: UnitPattern = UnitPattern()) -> np.ndarray:
    """Which candidates satisfy :data:`RULES`: ``leaves`` maps every leaf to
    an array of candidate values (floats); ``pattern`` says which relu units
    stay dead (default: none); returns a boolean array.

    >>> from derive.problems import load
    >>> p = load("mlp-relu-regression")
    >>> given = {k: np.array([float(v)] * 3) for k, v in p.spec.values.items()}
    >>> given["x1"] = np.array([0.8] * 3)     # the exam's x1 = x2 = 1 are equal
    >>> given["x2"] = np.array([0.5] * 3)
    >>> given["y"] = np.array([0.9] * 3)      # a loss worth computing
    >>> given["w3"] = np.array([-0.2, 0.4, -0.2])   # z2 = w3 x1 + w4 x2: dead, alive, dead
    >>> given["w4"] = np.array([-0.1, -0.1, 0.3])   # (the third z2 = -0.01: at the kink)
    >>> accept_mask(p.graph, given, unit_pattern(p)).tolist()
    [True, False, False]
    >>> accept_mask(p.graph, given).tolist()        # every unit active
    [False, True, False]
    """
    n = len(next(iter(leaves.values())))
    ok = np.ones(n, dtype=bool)
    margin = RULES["kink_margin"] - EPS
    with np.errstate(all="ignore"):
        values, _, caches, _ = numpy_forward(graph, leaves)
        loss = np.broadcast_to(np.asarray(values[graph.loss], dtype=float), (n,))
        ok &= np.isfinite(loss) & (loss >= RULES["min_loss"])
        for k, (node, sub, op) in enumerate(_activation_sites(graph)):
            arg = sub.base if op == "sqrt" else sub.args[0]
            x = np.broadcast_to(np.asarray(caches[node][arg], dtype=float), (n,))
            if op in ("relu", "step"):
                ok &= (x <= -margin) if k in pattern.dead else (x >= margin)
            elif op in _SATURATING:
                ok &= np.abs(x) <= RULES["saturation"] + EPS
            elif op == "exp":
                ok &= np.abs(x) <= RULES["exp_limit"] + EPS
            elif op in ("log", "sqrt"):
                ok &= x >= RULES["domain_margin"] - EPS
        inputs = [n_ for n_ in graph.of_kind("input")
                  if np.any(np.asarray(leaves[n_]) != 0)]
        for i, a in enumerate(inputs):
            for b in inputs[i + 1:]:
                ok &= np.asarray(leaves[a]) != np.asarray(leaves[b])
        if not ok.any():
            return ok
        asked = [p for p in _reaching(graph) if p not in pattern.zero]
        grads = [np.broadcast_to(np.asarray(g, dtype=float), (n,))
                 for g in numpy_backprop(graph, leaves, asked).values()]
        for i, g in enumerate(grads):
            ok &= np.isfinite(g) & (np.abs(g) >= RULES["min_gradient"] - EPS)
            for h in grads[i + 1:]:
                ok &= np.abs(g - h) >= RULES["min_gradient_gap"]
    return ok


def acceptable(graph, leaves: dict, pattern: UnitPattern = UnitPattern()) -> bool:
    """Whether one draw (leaf name -> number) satisfies :data:`RULES`."""
    return bool(accept_mask(graph, {k: np.array([float(v)]) for k, v in leaves.items()}, pattern)[0])


def draw_variants(problem, count: int, seed: int, all_active: bool = False) -> list:
    """``count`` variants of a gradient problem, reproducible from ``seed``
    (``all_active``: no relu unit dead, even where the problem's own values
    have one)."""
    if count < 1:
        raise UserError("--count", "must be at least 1")
    if seed < 0:
        raise UserError("--seed", "must be 0 or more")
    graph, _ = base_of(problem)
    plan = draw_plan(problem)
    pattern = unit_pattern(problem, all_active)
    grid = int(round(1 / RULES["grid"]))
    out = []
    for i in range(1, count + 1):
        rng = np.random.default_rng([int(seed), i])
        for _ in range(MAX_TRIES // BATCH):
            steps = _draw_batch(rng, plan, BATCH)
            mask = accept_mask(graph, {k: v / grid for k, v in steps.items()}, pattern)
            if mask.any():
                j = int(np.argmax(mask))
                leaves = {name: sympy.Rational(int(steps[name][j]), grid) for name in graph.leaves}
                out.append(Variant(i, leaves))
                break
        else:
            raise UserError(problem.id, f"no draw out of {MAX_TRIES} satisfies the variant rules "
                                        f"(no kink, no dead or saturated unit, non-zero gradients)")
    return out


def describe(problem, all_active: bool = False) -> list:
    """The drawing rules as they apply to ``problem``: one line per given
    (or group), then the acceptance rules that matter for its graph.

    >>> describe(__import__("derive.problems", fromlist=["load"]).load("mlp-relu-regression"))[0]
    'x1: multiple of 0.1 in [-1, 1], not 0'
    """
    graph, _ = base_of(problem)
    groups = leaf_groups(graph)
    lines = []
    for rule in draw_plan(problem):
        grp = groups.get(rule.names[0])
        lines.append(f"{grp.name if grp else rule.names[0]}: {rule.describe()}")
    ops = {op for _, _, op in _activation_sites(graph)}
    if ops & {"relu", "step"}:
        pattern = unit_pattern(problem, all_active)
        if pattern.dead:
            lines.append(f"every relu argument at least {RULES['kink_margin']:g} from 0, on the side of 0 the "
                         f"problem's own values put it (no kink; {len(pattern.dead)} dead unit(s) kept, so "
                         f"the gradients of {', '.join(sorted(pattern.zero))} stay 0)")
        else:
            lines.append(f"every relu argument at least {RULES['kink_margin']:g} (no kink, no dead unit)")
    if ops & set(_SATURATING):
        names = "/".join(o for o in _SATURATING if o in ops)
        lines.append(f"every {names} argument in [-{RULES['saturation']:g}, {RULES['saturation']:g}] (no saturation)")
    if "exp" in ops:
        lines.append(f"every exp argument in [-{RULES['exp_limit']:g}, {RULES['exp_limit']:g}]")
    if ops & {"log", "sqrt"}:
        lines.append(f"every log/sqrt argument at least {RULES['domain_margin']:g}")
    if len(graph.of_kind("input")) > 1:
        lines.append("no two (non-zero) inputs equal")
    lines.append(f"loss at least {RULES['min_loss']:g}; every gradient at least {RULES['min_gradient']:g} in size, "
                 "no two gradients equal")
    return lines


# ---------------------------------------------------------------------------
# What a variant's files hold


def _yaml_number(v) -> str:
    """A float as YAML reads it back (a ``.`` before any exponent)."""
    if isinstance(v, bool):
        raise TypeError(v)
    if isinstance(v, int):
        return str(v)
    text = repr(float(v))
    if "e" in text and "." not in text.split("e")[0]:
        mant, exp = text.split("e")
        text = f"{mant}.0e{exp}"
    return text


def _yaml_value(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    return _yaml_number(v)


def _yaml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_/+']*", k) else json.dumps(k)


def yaml_text(mapping: dict, comments=()) -> str:
    """A flat YAML mapping of numbers and nested lists, in the given order.

    >>> print(yaml_text({"x1": 0.3, "W": [[1, -0.5]]}, ["a comment"]), end="")
    # a comment
    x1: 0.3
    W: [[1, -0.5]]
    """
    lines = [f"# {c}" for c in comments]
    lines += [f"{_yaml_key(k)}: {_yaml_value(v)}" for k, v in mapping.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# A class roster


def read_roster_ids(path) -> list:
    """The student ids of a CSV with an ``id`` column (in file order);
    UserError for a missing file, a missing column, an empty or repeated id."""
    rows = _csv_rows(path)
    header = [h.strip() for h in next(rows, (1, []))[1]]
    if "id" not in header:
        raise UserError(f"{path}: line 1", "a roster needs an 'id' column")
    col = header.index("id")
    ids, seen = [], {}
    for lineno, row in rows:
        if not any(c.strip() for c in row):
            continue
        if len(row) <= col or not row[col].strip():
            raise UserError(f"{path}: line {lineno}", "no id")
        sid = row[col].strip()
        if sid in seen:
            raise UserError(f"{path}: line {lineno}", f"id {shorten(sid, 60)!r} appears twice "
                                                      f"(first on line {seen[sid]})")
        seen[sid] = lineno
        ids.append(sid)
    if not ids:
        raise UserError(str(path), "the roster has no students")
    return ids


def _csv_rows(path):
    """(line, cells) of a roster CSV: a regular file, bounded cells."""
    from derive.engine.spec import SpecError, read_text

    try:
        text = read_text(path, 32 * 1024 * 1024)
    except SpecError as exc:
        raise UserError(f"{path}: {exc.where}" if exc.where else str(path), exc.what) from None
    try:
        yield from csv_rows(text)
    except CsvError as exc:
        raise UserError(f"{path}: {exc.where}", exc.what) from None


def assign(ids: list, count: int, seed: int) -> dict:
    """Each student's variant: ids are ordered by the SHA-256 of
    ``"SEED:ID"`` and dealt out in that order, variant 1, 2, ..., count, 1,
    2, ... So every variant has the same number of students (give or take
    one), the result does not depend on the order of the roster's rows, and
    neighbours in the roster get unrelated variants.

    >>> a = assign(["ann", "bob", "cy", "di"], 2, 7)
    >>> sorted(a.values()), a == assign(["di", "cy", "bob", "ann"], 2, 7)
    ([1, 1, 2, 2], True)
    """
    order = sorted(ids, key=lambda s: (hashlib.sha256(f"{seed}:{s}".encode()).hexdigest(), s))
    return {sid: k % count + 1 for k, sid in enumerate(order)}


def roster_text(ids: list, assignment: dict) -> str:
    """``roster.csv``: ``id,variant`` in the roster's order."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "variant"])
    for sid in ids:      # an id a spreadsheet would run as a formula is written as text
        w.writerow([csv_cell(sid), assignment[sid]])
    return buf.getvalue()


def read_roster(path) -> dict:
    """``roster.csv`` as written by ``derive variants``: id -> variant number."""
    rows = _csv_rows(path)
    header = [h.strip() for h in next(rows, (1, []))[1]]
    if "id" not in header or "variant" not in header:
        raise UserError(f"{path}: line 1", "a variants roster needs 'id' and 'variant' columns "
                                            "(the roster.csv that `derive variants --roster` writes)")
    ic, vc = header.index("id"), header.index("variant")
    out = {}
    for lineno, row in rows:
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise UserError(f"{path}: line {lineno}", f"expected {len(header)} cells, found {len(row)}")
        sid, raw = csv_uncell(row[ic].strip()), row[vc].strip()
        if not sid or sid in out:
            raise UserError(f"{path}: line {lineno}", f"missing or repeated id {shorten(sid, 60)!r}")
        if not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
            raise UserError(f"{path}: line {lineno}", f"variant must be a number from 1, got {shorten(raw, 20)!r}")
        out[sid] = int(raw)
    return out


def variant_dir(out_dir, number: int) -> Path:
    """``DIR/variant-01`` (two digits at least, more from 100 on)."""
    return Path(out_dir) / f"variant-{number:02d}"


def check_class(problem, batch, roster: dict, variants_dir, rtol, atol, target=None, policy=None) -> dict:
    """Check a class CSV with each student's own variant: the values of
    variant k are read from ``variants_dir/variant-NN/values.yaml``. The
    result is :func:`derive.grading.verdicts.check_batch`'s, each row also naming its
    ``variant``.  ``policy`` (a :class:`derive.grading.verdicts.Policy`) is the
    grader's acceptance policy, as for a class checked against one set of
    values."""
    from derive.grading.verdicts import check_rows, question_summary, summary_of
    from derive.errors import as_user_error, in_file
    from derive.engine.spec import read_file

    missing = [sid for sid in batch.ids if sid not in roster]
    if missing:
        raise UserError("--roster", f"student {missing[0]!r} of the answers is not in the roster")
    by_variant: dict = {}
    for k, sid in enumerate(batch.ids):
        by_variant.setdefault(roster[sid], []).append(k)
    results: list = [None] * len(batch.ids)
    for number in sorted(by_variant):
        path = variant_dir(variants_dir, number) / "values.yaml"
        if not path.is_file():
            raise UserError(str(path), f"no such file (variant {number} of the roster)")
        try:
            values = read_file(path) or {}
            if not isinstance(values, dict):
                raise UserError("", "a values file must be a mapping of names to numbers or lists")
            solution = problem.solve(values)
        except Exception as exc:  # noqa: BLE001
            if as_user_error(exc) is None:
                raise
            raise in_file(str(path), exc) from None
        rows = [batch.rows[k] for k in by_variant[number]]
        for k, items in zip(by_variant[number], check_rows(solution, rows, rtol, atol, policy=policy)):
            results[k] = items
    rows = [{"id": sid, "variant": roster[sid], "items": items, "summary": summary_of(items)}
            for sid, items in zip(batch.ids, results)]
    return {"target": target or problem.id, "rows": rows,
            "summary": summary_of([it for items in results for it in items]),
            "questions": question_summary(batch.columns, results, policy),
            **({"policy": policy.describe()} if policy is not None else {})}


# ---------------------------------------------------------------------------
# Writing a set of variants (one process per core)

#: the problem a worker process renders (set before the pool forks, or
#: loaded by the worker's initializer where processes are spawned)
_WORKER: dict = {}


def _worked_blocks(problem, solution) -> list:
    """The worked solution under a variant's key: the solution's blocks
    without the problem's own wording of the question (which speaks of the
    exam's numbers, not the variant's)."""
    question = (problem.question or "").strip()
    return [b for b in solution.blocks()
            if not (isinstance(b, B.Prose) and question and b.parts == (question,))]


def section_tex(problem, solution, number: int, sheet: str) -> str:
    """The LaTeX of one variant's sheet (``sheet`` = "question" or "key")."""
    from derive.document.render import make_env, render_blocks
    from derive.document.sheet import answer_rows, key_answer_blocks, statement_blocks

    entries = answer_entries(solution)
    ctx = {"title": problem.title or problem.id, "variant": number, "sheet": sheet}
    if sheet == "question":
        ctx.update(statement=render_blocks(statement_blocks(solution)), answers=answer_rows(entries))
    else:
        ctx.update(answers=render_blocks(key_answer_blocks(entries)),
                   worked=render_blocks(_worked_blocks(problem, solution)))
    return make_env().get_template("variants-section.tex.j2").render(**ctx)


def document_tex(title: str, sections: list) -> str:
    """A document of variant pages (one variant or all of them)."""
    from derive.document.render import make_env

    return make_env().get_template("variants.tex.j2").render(title=title, sections=sections)


def values_text(problem, variant: Variant, seed: int) -> str:
    """``values.yaml`` of a variant (an instructor's file: it may name the seed)."""
    return yaml_text(variant.plain_values(base_of(problem)[0]),
                     [f"{problem.id}: variant {variant.number} (derive variants, seed {seed})",
                      "check answers with: derive check TARGET answers.yaml --values values.yaml"])


def make_variant(problem, number: int, values_yaml: str, out_dir, pdf: bool) -> tuple:
    """Write ``variant-NN/`` (values, answers, question and key, the key also
    as ``key.html``) and return
    ``(number, question section, key section)`` for the combined documents.
    The key is solved from ``values_yaml`` read back, as ``derive check
    --values`` reads it."""
    from derive.document.html import solution_document
    from derive.document.render import compile_pdf
    from derive.engine.spec import read_data

    folder = variant_dir(out_dir, number)
    solution = problem.solve(read_data(values_yaml, "values.yaml"))
    answers = answers_of(solution)
    question = section_tex(problem, solution, number, "question")
    key = section_tex(problem, solution, number, "key")
    title = f"{problem.title or problem.id}, variant {number}"
    _write(folder / "values.yaml", values_yaml)
    _write(folder / "answers.yaml", yaml_text(answers, [f"{problem.id}: the key's answers of variant {number}"]))
    docs = {"question": document_tex(title, [question]), "key": document_tex(title + ", key", [key])}
    for name, tex in docs.items():
        _write(folder / f"{name}.tex", tex)
        if pdf:
            compile_pdf(tex, folder / f"{name}.pdf", name=name)
    _write(folder / "key.html", solution_document(solution, title=title + ", key"))
    return number, question, key


def _write(path: Path, text: str) -> None:
    from derive.document.render import _write_atomic

    _write_atomic(Path(path), text)


def _bounded_variant(problem, args) -> tuple:
    """make_variant under the time budget of a spec's solve (one variant)."""
    with limit(SPEC_SOLVE_SECONDS, f"building variant {args[0]}"):
        return make_variant(problem, *args)


def _init_worker(target: str) -> None:
    if "problem" not in _WORKER:   # spawned, not forked: load the problem again
        from derive.problems import load

        _WORKER["problem"] = load(target)


def _job(args) -> tuple:
    """One variant in a worker; errors come back as data (UserError does not
    survive pickling)."""
    from derive.errors import as_user_error

    try:
        return ("ok", _bounded_variant(_WORKER["problem"], args))
    except TimeLimitExceeded as exc:
        return ("error", (exc.where or "time limit", str(exc)))
    except Exception as exc:  # noqa: BLE001
        err = as_user_error(exc)
        if err is None:
            import traceback

            return ("bug", traceback.format_exc())
        return ("error", (err.where, err.what))


def _compile_job(args) -> tuple:
    from derive.errors import as_user_error
    from derive.document.render import compile_pdf

    tex, path, name = args
    try:
        compile_pdf(tex, path, name=name)
        return ("ok", str(path))
    except Exception as exc:  # noqa: BLE001
        err = as_user_error(exc)
        if err is None:
            import traceback

            return ("bug", traceback.format_exc())
        return ("error", (err.where, err.what))


def _result(status, payload):
    if status == "error":
        raise UserError(*payload)
    if status == "bug":
        raise RuntimeError("a variant worker failed:\n" + payload)
    return payload


@dataclass
class VariantsResult:
    out: Path
    variants: list
    pdf: bool
    note: str = ""        # one line for the user when no PDF was built


def write_variants(problem, count: int, seed: int, out_dir, *, pdf: bool = True, jobs: int = 1,
                   roster_ids: list | None = None, target: str | None = None, progress=None,
                   all_active: bool = False) -> VariantsResult:
    """Draw ``count`` variants and write them under ``out_dir`` with ``jobs``
    worker processes: ``variant-NN/`` each, ``all-questions`` and
    ``all-keys`` (.tex, .pdf), ``instructor-note.md`` (how the set was
    made, how to collect and check answers: what the student's sheets
    leave out), and ``roster.csv`` if ``roster_ids``.
    ``progress(done, total[, label])`` is called as variants (then the
    combined PDFs, labelled) finish. Every input
    error is raised before anything is written."""
    import concurrent.futures as cf
    import multiprocessing as mp

    from derive.document.render import TEX_HINT, tex_engine

    if jobs < 1:
        raise UserError("--jobs", "must be at least 1")
    out = check_folder(out_dir)
    with limit(SPEC_SOLVE_SECONDS, "drawing the variants"):
        variants = draw_variants(problem, count, seed, all_active)
    note = ""
    if pdf and tex_engine() is None:
        pdf, note = False, f"no TeX engine (pdflatex) found, so no PDFs: {TEX_HINT}"
    jobs_list = [(v.number, values_text(problem, v, seed), str(out), pdf) for v in variants]
    done: dict = {}
    workers = min(jobs, len(jobs_list))
    _WORKER["problem"] = problem
    with limit(SPEC_SOLVE_SECONDS, "deriving the problem"):
        base_of(problem)          # derived once, before the workers fork
    if workers == 1:
        for args in jobs_list:
            number, question, key = _bounded_variant(problem, args)
            done[number] = (question, key)
            if progress:
                progress(len(done), len(jobs_list))
        pool = None
    else:
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else methods[0])
        pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                      initargs=(target or problem.id,))
    try:
        if pool is not None:
            futures = [pool.submit(_job, args) for args in jobs_list]
            for fut in cf.as_completed(futures):
                number, question, key = _result(*fut.result())
                done[number] = (question, key)
                if progress:
                    progress(len(done), len(jobs_list))
        numbers = sorted(done)
        title = problem.title or problem.id
        combined = {"all-questions": document_tex(f"{title}: {count} variants",
                                                  [done[k][0] for k in numbers]),
                    "all-keys": document_tex(f"{title}: keys of {count} variants",
                                             [done[k][1] for k in numbers])}
        for name, tex in combined.items():
            _write(out / f"{name}.tex", tex)
        if pdf:
            tasks = [(tex, str(out / f"{name}.pdf"), name) for name, tex in combined.items()]
            if progress:
                progress(0, len(tasks), "combined PDFs")
            results = pool.map(_compile_job, tasks) if pool is not None else map(_compile_job, tasks)
            for k, (status, payload) in enumerate(results, start=1):
                _result(status, payload)
                if progress:
                    progress(k, len(tasks), "combined PDFs")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        _WORKER.pop("problem", None)
    from derive.document.sheet import instructor_note

    _write(out / "instructor-note.md", instructor_note(problem, count, seed, answer_entries(problem.solve()),
                                                       describe(problem, all_active), target or problem.id,
                                                       " --all-active" if all_active else ""))
    if roster_ids is not None:
        _write(out / "roster.csv", roster_text(roster_ids, assign(roster_ids, count, seed)))
    return VariantsResult(out, variants, pdf, note)


__all__ = ["RULES", "Variant", "draw_variants", "draw_plan", "accept_mask", "acceptable", "describe",
           "answers_of", "yaml_text", "unit_pattern", "assign", "read_roster_ids", "read_roster",
           "roster_text", "variant_dir", "check_class", "write_variants"]
