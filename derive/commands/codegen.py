"""``derive codegen TARGET``: a standalone numpy module for a gradient problem."""
from __future__ import annotations

from contextlib import nullcontext

from derive.budget import CODEGEN_SECONDS, limit
from derive.errors import UserError, as_user_error, in_file
from derive.outfile import check_file
from derive.commands._common import add_time_limit_flags, apply_time_limits, emit, load_target


def add_parser(sub):
    p = sub.add_parser("codegen", help="a standalone numpy module: loss_and_gradients(**values)")
    p.add_argument("target", metavar="TARGET", help="a built-in id or a spec file (.yaml, .yml, .json)")
    p.add_argument("--out", metavar="FILE", help="write the module here instead of standard output")
    add_time_limit_flags(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from derive.codegen.scalar import generate, gradient_graph

    if args.out:
        check_file(args.out)
    apply_time_limits(args)
    problem = load_target(args.target)
    user = getattr(problem, "user", False)
    guard = limit(CODEGEN_SECONDS, "generating code", args.target) if user else nullcontext()
    try:
        with guard:
            graph = gradient_graph(problem)
            text = generate(problem, command=f"derive codegen {args.target}") if graph is not None else None
    except Exception as exc:  # noqa: BLE001
        if as_user_error(exc) is None:
            raise
        raise in_file(args.target, exc) from None
    if text is None:
        raise UserError(args.target, "has no gradients to generate code for (it is not a network problem)")
    emit(text.rstrip("\n"), args.out)
    return 0

