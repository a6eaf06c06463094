"""Built-in problems and the loader for user specs.

Every module in this package that defines ``PROBLEMS`` (a list of
:class:`~derive.problem.Problem`) contributes built-ins; they are listed in
the seeds' order.

>>> ids = [p.id for p in builtins()]
>>> ids.index("mlp-tanh-sigmoid") < ids.index("mlp-relu-regression")
True
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path

from ..problem import GraphProblem, Problem
from ..spec import SpecError, read_file

SPEC_ENDINGS = (".yaml", ".yml", ".json")


@lru_cache(maxsize=None)
def _registry() -> dict:
    found: dict[str, Problem] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for problem in getattr(module, "PROBLEMS", []):
            if problem.id in found:
                raise RuntimeError(f"built-in id {problem.id!r} defined twice")
            found[problem.id] = problem
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


def builtins() -> list:
    """Every built-in problem, in the seeds' order."""
    return list(_registry().values())


def load(target: str) -> Problem:
    """A built-in by id, or a user's spec file (.yaml, .yml, .json)."""
    registry = _registry()
    if target in registry:
        return registry[target]
    if target.endswith(SPEC_ENDINGS) or Path(target).is_file():
        if not target.endswith(SPEC_ENDINGS):
            raise SpecError("", "a spec file must end in .yaml, .yml or .json")
        data = read_file(target)
        from ..vecspec import VectorSpecProblem, is_vector_spec   # specs with shapes or time steps

        kind = GraphProblem
        if is_vector_spec(data):
            from ..msolution import MatrixSpecProblem, is_small   # large ones: the matrix engine only
            kind = VectorSpecProblem if is_small(data) else MatrixSpecProblem
        return kind(data, target, id=Path(target).stem, source=target, user=True)
    raise SpecError("", f"unknown problem {target!r}; `derive list` shows the built-ins, "
                        f"or give a spec file (.yaml, .yml, .json)")


def package_spec(name: str, **kwargs) -> GraphProblem:
    """A built-in defined by a YAML spec shipped in ``specs/``: the same
    machinery a user's spec goes through."""
    from ..blocks import Tex

    path = Path(__file__).parent / "specs" / f"{name}.yaml"
    problem = GraphProblem(read_file(path), str(path), id=name, **kwargs)
    problem.question = Tex(problem.question)     # derive's own words, with $...$ maths
    return problem
