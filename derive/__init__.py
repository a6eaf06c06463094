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
    from .problems import load as _load

    return _load(target)


def solve(target: str, values: dict | None = None, steps: int = 1):
    """Load and solve in one call; returns a Solution."""
    return load(target).solve(values, steps=steps)


def builtins():
    """Every built-in problem, in the seeds' order."""
    from .problems import builtins as _builtins

    return _builtins()


def __getattr__(name):
    # ``derive.check`` is the module derive/check.py, made callable: calling
    # it checks hand answers (derive.check.check_answers).  Imported on first
    # use so ``import derive`` stays light.
    if name == "check":
        import importlib

        return importlib.import_module(".check", __name__)
    raise AttributeError(f"module 'derive' has no attribute {name!r}")


__all__ = ["load", "solve", "builtins", "check", "__version__"]
