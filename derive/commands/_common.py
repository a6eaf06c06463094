"""Helpers shared by the commands: loading targets and values, writing files."""
from __future__ import annotations

import json
import os

from derive.errors import UserError, as_user_error, in_file
from derive.outfile import write
from derive.engine.parse import ExprError, number
from derive.safetext import shorten
from derive.engine.spec import MAX_INT_DIGITS, SpecError, read_file


def load_target(target: str):
    """A built-in or a spec file; input errors name the file."""
    from derive.problems import SPEC_ENDINGS, builtins, load

    if not target.endswith(SPEC_ENDINGS) and target not in {p.id for p in builtins()}:
        if os.path.lexists(target):
            raise UserError(target, "a spec file must end in .yaml, .yml or .json")
        raise UserError("", f"unknown problem {shorten(target, 60)!r}; `derive list` shows the built-ins, "
                            "or give a spec file (.yaml, .yml, .json)")
    try:
        return load(target)
    except Exception as exc:  # noqa: BLE001
        if as_user_error(exc) is None:
            raise
        if target.endswith(SPEC_ENDINGS):
            raise in_file(target, exc) from None
        raise as_user_error(exc) from None


#: nesting of a JSON list given with --set (a matrix sequence needs 3 or 4)
MAX_SET_DEPTH = 8


def parse_set(items) -> dict:
    """``--set NAME=VALUE`` items (VALUE a number or a JSON list)."""
    out = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UserError("--set", f"expected NAME=VALUE, got {shorten(item, 60)!r}")
        raw = raw.strip()
        where = f"--set {shorten(name, 60)}"
        if raw.startswith("["):
            depth = 0
            for ch in raw:
                depth += (ch == "[") - (ch == "]")
                if depth > MAX_SET_DEPTH:
                    raise UserError(where, f"a list nested deeper than {MAX_SET_DEPTH} levels")
            try:
                out[name] = json.loads(raw, parse_int=_whole)
            except json.JSONDecodeError as exc:
                raise UserError(where, f"not a JSON list ({exc.msg})") from None
            except SpecError as exc:
                raise UserError(where, exc.what) from None
        else:
            try:
                number(raw)
            except ExprError as exc:
                raise UserError(where, str(exc)) from None
            out[name] = raw
    return out


def _whole(digits: str) -> int:
    if len(digits) > MAX_INT_DIGITS:
        raise SpecError("", f"an integer of {len(digits)} digits; at most {MAX_INT_DIGITS} are allowed")
    return int(digits)


def whole_number(flag: str, low: int, high: int | None = None):
    """An argparse type: a whole number from ``low`` to ``high`` (the
    documented maximum), refused as ``FLAG: ...`` otherwise."""
    def conv(text):
        t = text.strip()
        if not t.lstrip("+-").isdigit() or len(t) > 30:
            raise UserError(flag, f"expected a whole number, got {shorten(text, 40)!r}")
        value = int(t)
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise UserError(flag, f"must be {bound}, got {value}")
        return value
    return conv


def read_values(path: str | None, sets) -> dict:
    """The ``--values`` file merged with ``--set`` overrides."""
    values: dict = {}
    if path:
        from derive.engine.matspec import DEFAULT_MAX_MEMORY
        from derive.problems.matrix_solution import LIMITS
        limit = LIMITS["max_memory"] or DEFAULT_MAX_MEMORY    # large problems take their numbers from here
        try:
            data = read_file(path, limit)     # (large problems: raise it with --max-memory MB)
        except SpecError as exc:
            raise in_file(path, exc) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise UserError(path, "a values file must be a mapping of names to numbers or lists")
        values.update(data)
    values.update(parse_set(sets))
    return values


def emit(text: str, out: str | None) -> None:
    """Print, or write to --out."""
    if out:
        write(out, text if text.endswith("\n") else text + "\n")
    else:
        print(text)


def add_time_limit_flags(p, answers: bool = False):
    """--time-limit (and, for commands that judge answers, --answer-time-limit):
    every time-out message names these flags (derive.budget.how_to_raise)."""
    from derive.budget import ANSWER_FLAG, ANSWER_SECONDS, FLAG
    p.add_argument(FLAG, metavar="SECONDS", type=float,
                   help="seconds each phase of the work may take (the same as DERIVE_TIME_LIMIT)")
    if answers:
        p.add_argument(ANSWER_FLAG, metavar="SECONDS", type=float,
                       help=f"seconds judging one answer may take (default {ANSWER_SECONDS}; "
                            "the same as DERIVE_ANSWER_TIME_LIMIT)")


def apply_time_limits(args):
    """The time-limit flags given, as the variables derive.budget reads (child
    processes of --jobs inherit them)."""
    from derive.budget import ANSWER_ENV, ANSWER_FLAG, ENV, FLAG
    for flag, env in ((FLAG, ENV), (ANSWER_FLAG, ANSWER_ENV)):
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value is None:
            continue
        if not 0 < value < 1e6:
            raise UserError(flag, "must be a positive number of seconds (below 1000000)")
        os.environ[env] = repr(float(value))
