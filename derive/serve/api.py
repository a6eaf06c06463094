"""What the checking server answers, without the HTTP: requests in, JSON out.

``derive serve`` (:mod:`derive.serve.server`) hands every request that reads user
input to a worker process, which calls :func:`handle`; an input error is an
:class:`ApiError` (``WHERE: WHAT``, as the CLI prints it), answered 400.
A request body is read with the same limits as the CLI's files: at most
``spec.MAX_FILE_BYTES`` (256 KiB), JSON numbers kept as written (the digits
a student shows tell a rounded answer from a wrong one, as in an answers
file), no duplicate keys, at most ``answers.MAX_ANSWERS`` answers, and each
answer parsed by derive's own allow-list parser (bounded text, nodes,
depth and exponents) inside :func:`derive.grading.verdicts.check`. Targets are
built-in ids only: a request never names a file.

>>> req = parse_body(b'{"target": "mlp-relu-regression", "answers": {"w1": 0.1875, "dL/dw5": "-0.35*a1"}}')
>>> res = handle("check", req)
>>> [(i["name"], i["given"], i["verdict"]) for i in res["items"]]
[('w1', '0.1875', 'correct'), ('dL/dw5', '-0.35*a1', 'correct')]
>>> handle("check", parse_body(b'{"target": "nope", "answers": {"w1": 1}}'))
Traceback (most recent call last):
...
derive.serve.api.ApiError: target: unknown problem 'nope' (GET /api/problems lists them)
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path

from derive.typeset import blocks as B
from derive.grading.answers import MAX_ANSWERS, MAX_LIST, as_texts
from derive.errors import as_user_error
from derive.engine.spec import MAX_FILE_BYTES, SpecError

#: the largest request body (the CLI's limit on a values or spec file)
MAX_BODY = MAX_FILE_BYTES
#: keys a check request may have (the contract's three, and the roster's and tolerances)
CHECK_KEYS = {"target", "answers", "values", "student", "variant", "rtol", "atol"}
#: solved problems a worker keeps (by target and values)
SOLUTIONS = 32


class ApiError(ValueError):
    """Bad input: answered 400 with ``{"error": "WHERE: WHAT"}``."""

    def __init__(self, where: str, what: str):
        self.where, self.what = where, what
        super().__init__(f"{where}: {what}" if where else what)


# ---------------------------------------------------------------------------
# Reading a request


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ApiError(str(k)[:40], "key appears twice")
        out[k] = v
    return out


def _no_constant(name):
    raise ApiError("request", f"{name} is not a number JSON allows")


def parse_body(body: bytes) -> dict:
    """A request body as a JSON object, numbers kept as the text written.

    >>> parse_body(b'{"answers": {"w1": 0.10}}')
    {'answers': {'w1': '0.10'}}
    >>> parse_body(b'[1]')
    Traceback (most recent call last):
    ...
    derive.serve.api.ApiError: request: the body must be a JSON object
    """
    if len(body) > MAX_BODY:
        raise ApiError("request", f"the body is larger than {MAX_BODY // 1024} KiB")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("request", "the body is not UTF-8 text") from None
    try:
        data = json.loads(text, parse_float=str, parse_int=str, parse_constant=_no_constant,
                          object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ApiError("request", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ApiError("request", "JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError("request", "the body must be a JSON object")
    return data


def _within(part: str, where: str) -> str:
    """``where`` inside a part of the request ("answers", "values").

    >>> _within("values", "x1"), _within("values", "values.x1"), _within("answers", "")
    ('values: x1', 'values.x1', 'answers')
    """
    if not where:
        return part
    return where if where.startswith(part) else f"{part}: {where}"


def builtin_ids() -> list:
    from derive.problems import builtins

    return [p.id for p in builtins()]


def _target(req: dict) -> str:
    target = req.get("target")
    if not isinstance(target, str) or not target:
        raise ApiError("target", "give a problem id (GET /api/problems lists them)")
    if target not in builtin_ids():
        raise ApiError("target", f"unknown problem {target[:60]!r} (GET /api/problems lists them)")
    return target


def _count_numbers(value, where: str, limit: int = MAX_LIST) -> None:
    stack, n = [value], 0
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        n += 1
        if n > limit:
            raise ApiError(where, f"more than {limit} numbers")


def _answers(req: dict) -> dict:
    answers = req.get("answers")
    if not isinstance(answers, dict) or not answers:
        raise ApiError("answers", "give a mapping of quantity names to answers, such as {\"w1\": 0.1875}")
    if len(answers) > MAX_ANSWERS:
        raise ApiError("answers", f"more than {MAX_ANSWERS} answers")
    for name, value in answers.items():
        _count_numbers(value, f"answers: {name[:60]}")
    try:
        return as_texts(answers)
    except SpecError as exc:
        raise ApiError(_within("answers", exc.where), exc.what) from None


def _values(req: dict, roster=None) -> dict | None:
    student = req.get("student")
    values = req.get("values")
    number = req.get("variant")
    if number is not None:
        if roster is None:
            raise ApiError("variant", "this server has no variants (start it with --roster FILE)")
        if student is not None or values is not None:
            raise ApiError("variant", "give a variant, a student or values, not two of them")
        roster.check_target(req.get("target"), "variant")
        return roster.values_of_variant(roster.number(number))
    if student is not None:
        if roster is None:
            raise ApiError("student", "this server has no roster (start it with --roster FILE)")
        if values is not None:
            raise ApiError("values", "a student's values come from their variant; leave out values")
        roster.check_target(req.get("target"))
        return roster.values_of(student)
    if values is None:
        return None
    if not isinstance(values, dict):
        raise ApiError("values", "give a mapping of names to numbers or nested lists")
    if len(values) > MAX_ANSWERS:
        raise ApiError("values", f"more than {MAX_ANSWERS} values")
    for name, value in values.items():
        _count_numbers(value, f"values: {name[:60]}")
        if not isinstance(value, (str, list)):
            raise ApiError(f"values: {name[:60]}", "must be a number or a nested list of numbers")
    return values


def _tolerance(req: dict, name: str, default: float) -> float:
    raw = req.get(name)
    if raw is None:
        return default
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ApiError(name, "must be a number") from None
    if not (0 <= v < math.inf):
        raise ApiError(name, "must be a non-negative finite number")
    return v


# ---------------------------------------------------------------------------
# Solving (cached in the worker)

_SOLVED: "OrderedDict" = OrderedDict()


def solved(target: str, values: dict | None):
    """The solution of a built-in at ``values`` (the last few kept)."""
    from derive.problems import load

    key = (target, json.dumps(values, sort_keys=True))
    if key in _SOLVED:
        _SOLVED.move_to_end(key)
        return _SOLVED[key]
    try:
        solution = load(target).solve(values or None)
    except Exception as exc:  # noqa: BLE001
        err = as_user_error(exc)
        if err is None:
            raise
        raise ApiError(_within("values", err.where) if values else (err.where or target), err.what) from None
    _SOLVED[key] = solution
    while len(_SOLVED) > SOLUTIONS:
        _SOLVED.popitem(last=False)
    return solution


def warm(first: str | None = None) -> None:
    """Solve the gradient built-ins (``first`` before the others) and
    check one answer of each, so a worker's first real check is fast."""
    from derive.grading.verdicts import check
    from derive.problems import builtins
    from derive.document.variants import is_gradient_problem

    ids = [p.id for p in builtins() if is_gradient_problem(p)]
    for target in sorted(ids, key=lambda t: t != first)[::-1]:   # ``first`` last: its key stays cached
        try:
            check(solved(target, None), {"L": "0"})
        except Exception:  # noqa: BLE001 - a warm-up never stops a worker; the request will say
            pass


# ---------------------------------------------------------------------------
# The operations


def check_request(req: dict, roster=None) -> dict:
    """``POST /api/check``: the JSON of ``derive check --format json``."""
    from derive.grading.verdicts import ATOL, RTOL, check

    unknown = sorted(set(req) - CHECK_KEYS)
    if unknown:
        raise ApiError(str(unknown[0])[:40], f"unknown key (a check request has {', '.join(sorted(CHECK_KEYS))})")
    target = _target(req)
    answers = _answers(req)
    values = _values(req, roster)
    rtol, atol = _tolerance(req, "rtol", RTOL), _tolerance(req, "atol", ATOL)
    solution = solved(target, values)
    try:
        result = check(solution, answers, rtol, atol, target=target)
    except Exception as exc:  # noqa: BLE001
        err = as_user_error(exc)
        if err is None:
            raise
        raise ApiError(_within("answers", err.where), err.what) from None
    if req.get("student") is not None:
        result["variant"] = roster.variant_of(req["student"])
    elif req.get("variant") is not None:
        result["variant"] = roster.number(req["variant"])
    return result


def _quantities(solution, math) -> list:
    """The asked quantities: answers-file name, LaTeX, shape."""
    from derive.export import asked
    from derive.document.variants import is_gradient_problem

    if not is_gradient_problem(solution.problem):
        return [{"name": name, "latex": None, "mathml": None, "shape": _shape(v)}
                for name, v in solution.to_json().get("values", {}).items()]
    return [{"name": name, "latex": tex, "mathml": math(tex, False), "shape": _shape(value)}
            for name, tex, value in asked(solution)]


def _shape(value) -> list:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def problem_request(target: str, student=None, roster=None, variant=None) -> dict:
    """``GET /api/problem/ID``: the question as the checking page shows it."""
    from derive.export.html import blocks_html
    from derive.document.html import figure_html
    from derive.typeset.mathml import mathml
    from derive.document.sheet import statement_blocks
    from derive.document.variants import is_gradient_problem

    target = _target({"target": target})
    ask = {"target": target, **({"student": student} if student is not None else {}),
           **({"variant": variant} if variant is not None else {})}
    values = _values(ask, roster) if student is not None or variant is not None else None
    solution = solved(target, values)
    problem = solution.problem
    if is_gradient_problem(problem):
        statement = statement_blocks(solution)
    else:
        statement = [B.prose(problem.question.strip())] if problem.question else []
    out = {"id": problem.id, "title": problem.title, "source": problem.source,
           "question": problem.question, "statement_html": blocks_html(statement, math=mathml, figure=figure_html),
           "quantities": _quantities(solution, mathml)}
    if student is not None:
        out["student"], out["variant"] = student, roster.variant_of(student)
    elif variant is not None:
        out["variant"] = roster.number(variant)
    return out


def preview_request(req: dict) -> dict:
    """``POST /api/preview``: how derive reads one typed answer, typeset:
    ``{"kind": "number"|"formula"|"error", "latex", "mathml", "error"}``."""
    from derive.grading.verdicts import answer_key, parse_answer
    from derive.typeset.mathml import mathml
    from derive.engine.parse import MAX_TEXT
    from derive.typeset.printing import tex

    target = _target(req)
    text = req.get("text")
    if not isinstance(text, str):
        raise ApiError("text", "give the answer as text")
    if len(text) > MAX_TEXT:
        raise ApiError("text", f"longer than {MAX_TEXT} characters")
    solution = solved(target, None)
    key = answer_key(solution) if hasattr(solution, "graph") else None
    parsed = parse_answer(text, key)
    if parsed.kind == "error":
        return {"kind": "error", "latex": None, "mathml": None, "error": parsed.error}
    if parsed.kind == "number" or key is None:
        latex = text.strip()
        # a number typed as $-\frac{7}{40}$ shows without its dollars
        for d in ("$$", "$"):
            if len(latex) >= 2 * len(d) and latex.startswith(d) and latex.endswith(d):
                latex = latex[len(d):-len(d)].strip()
                break
    else:
        names = {key.symbols[n]: node.latex for n, node in solution.graph.nodes.items()}
        latex = tex(parsed.expr, names)
    return {"kind": parsed.kind, "latex": latex, "mathml": mathml(latex), "error": None}


def handle(op: str, payload, roster=None) -> dict:
    """Run one operation (``check``, ``problem``, ``preview``) on parsed input."""
    if op == "check":
        return check_request(payload, roster)
    if op == "problem":
        return problem_request(payload["target"], payload.get("student"), roster, payload.get("variant"))
    if op == "preview":
        return preview_request(payload)
    raise ValueError(f"unknown operation {op!r}")


# ---------------------------------------------------------------------------
# A class roster: a student id selects their own variant


class Roster:
    """``roster.csv`` written by ``derive variants --roster`` and the
    variants beside it: a student id -> their variant's values."""

    def __init__(self, path):
        from derive.document.variants import read_roster

        self.path = Path(path)
        self.ids = read_roster(self.path)
        self._target = None

    @property
    def target(self) -> str | None:
        """The built-in the variants are of: the one whose givens have the
        names of the first variant's ``values.yaml`` (None if none has)."""
        if self._target is None:
            from derive.problems import builtins
            from derive.document.variants import Variant, base_of, is_gradient_problem

            names = set(self.values_of(next(iter(self.ids))))
            for p in builtins():
                if is_gradient_problem(p):
                    graph, base = base_of(p)
                    if set(Variant(0, base).plain_values(graph)) == names:
                        self._target = p.id
                        break
            else:
                self._target = ""
        return self._target or None

    def check_target(self, target: str, where: str = "student") -> None:
        if self.target is not None and target != self.target:
            raise ApiError(where, f"the roster's variants are of {self.target}, not {target}")

    def number(self, raw) -> int:
        """A variant's number as a request gives it (1, "3", "#3"), checked
        against the variants the roster deals out."""
        text = str(raw).strip().lstrip("#") if isinstance(raw, (int, str)) and not isinstance(raw, bool) else ""
        if not text.isdigit() or len(text) > 6:
            raise ApiError("variant", "give a variant's number (1, 2, ...)")
        n, top = int(text), max(self.ids.values())
        if not 1 <= n <= top:
            raise ApiError("variant", f"there are variants 1 to {top}")
        return n

    def variant_of(self, student) -> int:
        if not isinstance(student, str) or student.strip() not in self.ids:
            raise ApiError("student", "not on the roster")
        return self.ids[student.strip()]

    def values_of(self, student) -> dict:
        from derive.engine.spec import read_file
        from derive.document.variants import variant_dir

        return self.values_of_variant(self.variant_of(student))

    def values_of_variant(self, number: int) -> dict:
        from derive.engine.spec import read_file
        from derive.document.variants import variant_dir

        path = variant_dir(self.path.parent, number) / "values.yaml"
        try:
            values = read_file(path)
        except SpecError as exc:
            raise ApiError("student", f"variant {number}: {path.name}: {exc.what}") from None
        if not isinstance(values, dict):
            raise ApiError("student", f"variant {number}: values.yaml is not a mapping")
        return values
