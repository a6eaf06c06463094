"""The one error a user sees: where, and what.

Every input error of every layer (spec, expression, values, optimiser, graph)
is turned into a :class:`UserError` at the edge, printed by the CLI as one
line ``derive: error: WHERE: WHAT`` with exit code 2.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input: ``where`` (file, field or line) and ``what`` went wrong."""

    def __init__(self, where: str, what: str):
        self.where = where
        self.what = what
        super().__init__(f"{where}: {what}" if where else what)


def in_file(path: str, exc: Exception) -> UserError:
    """Prefix an input error with the file it came from."""
    err = as_user_error(exc) or UserError("", str(exc))
    where = f"{path}: {err.where}" if err.where else path
    return UserError(where, err.what)


def as_user_error(exc: Exception) -> UserError | None:
    """The UserError for a known input error, else None (a real bug)."""
    from derive.engine.graph import GraphError
    from derive.engine.numeric import VerificationError
    from derive.engine.optim import OptimizerError
    from derive.engine.parse import ExprError
    from derive.engine.spec import SpecError

    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, SpecError):
        return UserError(exc.where, exc.what)
    if isinstance(exc, (ExprError, GraphError, OptimizerError)):
        msg = " ".join(str(exc).split())
        where, sep, what = msg.partition(": ")
        return UserError(where, what) if sep and " " not in where else UserError("", msg)
    if isinstance(exc, VerificationError):
        return UserError("verification", " ".join(str(exc).split()))
    return None
