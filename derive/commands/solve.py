"""``derive solve TARGET``: the worked solution of one problem or spec."""
from __future__ import annotations

import json
import warnings

import numpy as np

from derive.budget import MAX_STEPS, SPEC_SOLVE_SECONDS, limit
from derive.errors import UserError, as_user_error, in_file
from derive.outfile import check_file
from derive.commands._common import (add_time_limit_flags, apply_time_limits, emit, load_target, read_values,
                                      whole_number)


def add_parser(sub):
    p = sub.add_parser("solve", help="the worked solution of one problem or spec file")
    p.add_argument("target", metavar="TARGET", help="a built-in id or a spec file (.yaml, .yml, .json)")
    p.add_argument("--values", metavar="FILE", help="YAML/JSON mapping of names to numbers")
    p.add_argument("--set", metavar="NAME=VALUE", action="append", default=[], help="override one value")
    p.add_argument("--format", choices=["text", "json", "tex", "pdf", "html"], default="text")
    p.add_argument("--out", metavar="PATH", help="write here instead of standard output")
    p.add_argument("--steps", type=whole_number("--steps", 1, MAX_STEPS), default=1, metavar="K",
                   help=f"update steps to apply (default 1, at most {MAX_STEPS})")
    add_limit_flags(p)
    p.set_defaults(run=run)


def add_limit_flags(p):
    p.add_argument("--max-memory", metavar="MB", type=float,
                   help="memory the values and adjoints of a vector problem may take (default 2048)")
    add_time_limit_flags(p)


def set_limits(args):
    """--max-memory for the matrix engine; --time-limit as DERIVE_TIME_LIMIT (derive.budget)."""
    if getattr(args, "max_memory", None) is not None:
        from derive.problems.matrix_solution import LIMITS          # (imported only when asked: it is the matrix engine's)
        if not args.max_memory > 0:
            raise UserError("--max-memory", "must be a positive number of megabytes")
        LIMITS["max_memory"] = int(args.max_memory * 1024**2)
    apply_time_limits(args)


def solve(args, problem=None):
    problem = problem or load_target(args.target)
    values = read_values(args.values, args.set)
    try:
        # Overflow in the numeric checks is detected and reported as one
        # refusal; numpy's own warnings would only add lines to stderr.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return problem.solve(values or None, steps=args.steps)
    except Exception as exc:  # noqa: BLE001
        if as_user_error(exc) is None:
            raise
        where = args.values or args.target
        raise in_file(where, exc) from None


def run(args) -> int:
    if args.out:
        check_file(args.out)      # before any work: a folder or a file in the way is refused now
    set_limits(args)
    problem = load_target(args.target)
    # everything done, printing included, is bounded in time: a built-in too
    # takes user values (--set T=64) and --steps
    what = "the spec" if getattr(problem, "user", False) else "the problem"
    with limit(SPEC_SOLVE_SECONDS, f"solving {what}", args.target):
        solution = solve(args, problem)
        if args.format == "json":
            emit(json.dumps(solution.to_json(), indent=2), args.out)
        elif args.format == "html":
            from derive.document.html import write_solution as write_html

            print(f"wrote {write_html(solution, args.out)}")
        elif args.format in ("tex", "pdf"):
            from derive.document.render import write_solution

            write_solution(solution, args.format, args.out)
        else:
            emit(solution.to_text(), args.out)
    return 0
