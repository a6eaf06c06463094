"""derive: worked, verified solutions of neural-network maths.

>>> import derive
>>> sol = derive.solve("mlp-relu-regression")
>>> float(sol.updates["w1"])
0.1875
>>> derive.check("mlp-relu-regression", {"w1": "0.1875", "w5": "0.5"})["summary"]["incorrect"]
1
"""
from __future__ import annotations

__version__ = "0.1.0"


def load(target: str):
    """A built-in problem by id, or a spec file (.yaml, .yml, .json)."""
    from derive.problems import load as _load

    return _load(target)


def solve(target: str, values: dict | None = None, steps: int = 1):
    """Load and solve in one call; returns a Solution."""
    return load(target).solve(values, steps=steps)


def builtins():
    """Every built-in problem, in the seeds' order."""
    from derive.problems import builtins as _builtins

    return _builtins()


def check(target, answers, values: dict | None = None, **options):
    """Check hand answers as ``derive check`` does; returns its records (a
    dict a notebook shows as a table).  The options are those of
    :func:`derive.grading.verdicts.check_answers`."""
    from .grading.verdicts import check_answers

    return check_answers(target, answers, values, **options)


__all__ = ["load", "solve", "builtins", "check", "__version__"]
