"""Built-in problems and the loader for user specs.

Every module in this package that defines ``PROBLEMS`` (a list of
:class:`~derive.problems.base.Problem`) contributes built-ins; they are listed in
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

from derive.problems.base import GraphProblem, Problem
from derive.engine.spec import SpecError, read_file

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


def tensor_only(data: dict) -> bool:
    """Whether a vector spec uses what only the matrix engine reads: a leaf of
    more than two axes (after a leading T), an operation of the tensor table
    that the component-wise front end lacks (``conv2d``, ``gelu``, ``pi``),
    an axis (``softmax(S, 1)``, ``sum(X, 0)``), or numpy's slicing (``a[0:4]``;
    a sequence's step ``H[t-1]`` both front ends read).

    >>> tensor_only({"forward": {"A": "softmax(S, 1)"}}), tensor_only({"forward": {"h": "tanh(W @ x)"}})
    (True, False)
    >>> tensor_only({"forward": {"h": "a[0:4] * sigmoid(a[4:8])"}})
    True
    >>> tensor_only({"inputs": {"I": {"shape": ["T", 2]}}, "unroll": {"T": 2, "equations": {"h": "tanh(I[t])"}}})
    False
    """
    import ast

    from derive.engine.tensor_op import TENSOR_OPS
    from derive.engine.ops import OPS
    from derive.engine.parse import ExprError, parse_tree
    from derive.problems.vector_spec import FUNCTIONS
    for section in ("inputs", "targets", "parameters"):
        block = data.get(section)
        for raw in (block.values() if isinstance(block, dict) else ()):
            shape = raw.get("shape") if isinstance(raw, dict) else None
            if isinstance(shape, list) and len(shape) - (shape[:1] == ["T"]) > 2:
                return True
    texts, todo = [], [data.get("forward"), data.get("loss"), data.get("unroll")]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    component_wise = set(FUNCTIONS) | set(OPS)
    sequences = set((data.get("unroll") or {}).get("equations") or {}) if isinstance(data.get("unroll"), dict) else set()
    for section in ("inputs", "targets", "parameters"):
        block = data.get(section)
        for name, raw in (block.items() if isinstance(block, dict) else ()):
            if isinstance(raw, dict) and isinstance(raw.get("shape"), list) and raw["shape"][:1] == ["T"]:
                sequences.add(name)
    for text in texts:
        try:
            tree = parse_tree(text)      # the checked parser; a bad expression is the front end's to report
        except ExprError:
            continue
        for node in ast.walk(tree):
            # numpy's slicing (a[0:4], G[:, 0], (W @ x)[1]): anything but a sequence's step H[t-1]
            if isinstance(node, ast.Subscript) and (
                    isinstance(node.slice, (ast.Slice, ast.Tuple)) or not isinstance(node.value, ast.Name)
                    or node.value.id not in sequences):
                return True
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in TENSOR_OPS:
                name = node.func.id
                if name not in component_wise or (name != "stack" and len(node.args) > 1):
                    return True
            if isinstance(node, ast.Name) and TENSOR_OPS.get(node.id) is not None and TENSOR_OPS[node.id].inputs == 0:
                return True
    return False


def load(target: str) -> Problem:
    """A built-in by id, or a user's spec file (.yaml, .yml, .json)."""
    registry = _registry()
    if target in registry:
        return registry[target]
    if target.endswith(SPEC_ENDINGS) or Path(target).is_file():
        if not target.endswith(SPEC_ENDINGS):
            raise SpecError("", "a spec file must end in .yaml, .yml or .json")
        data = read_file(target)
        from derive.problems.vector_spec import VectorSpecProblem, is_vector_spec   # specs with shapes or time steps

        kind = GraphProblem
        if is_vector_spec(data):
            from derive.problems.matrix_solution import MatrixSpecProblem, is_small   # large ones: the matrix engine only
            kind = VectorSpecProblem if is_small(data) and not tensor_only(data) else MatrixSpecProblem
        return kind(data, target, id=Path(target).stem, source=target, user=True)
    raise SpecError("", f"unknown problem {target!r}; `derive list` shows the built-ins, "
                        f"or give a spec file (.yaml, .yml, .json)")


def package_spec(name: str, **kwargs) -> GraphProblem:
    """A built-in defined by a YAML spec shipped in ``specs/``: the same
    machinery a user's spec goes through."""
    from derive.typeset.blocks import Tex

    path = Path(__file__).parent / "specs" / f"{name}.yaml"
    problem = GraphProblem(read_file(path), str(path), id=name, **kwargs)
    problem.question = Tex(problem.question)     # derive's own words, with $...$ maths
    return problem
