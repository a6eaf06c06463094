"""The package's layout follows the pipeline: a module imports only from its
own layer or the layers below, and no modules import each other in a circle.

Layers, bottom up: typeset (how things are written), engine (graphs,
derivations, numbers), grading (reading and judging answers), problems (the
built-ins and spec problems), document and codegen (what is produced), export,
serve, commands.  Top-level helpers (errors, budget, safetext, outfile, cli)
sit outside the layers.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "derive"
LAYER = {"typeset": 0, "engine": 1, "grading": 2, "problems": 3, "document": 4, "codegen": 4,
         "export": 5, "serve": 6, "commands": 7}
# Imports inside a function that reach up, each for a stated reason.
ALLOWED_UP = {
    ("derive.grading.verdicts", "derive.problems"): "derive.check(target, ...) loads a problem by its id",
    ("derive.problems.base", "derive.document.render"): "a solution's notebook view (_repr_latex_) is the document's LaTeX",
}


def modules():
    out = {}
    for p in ROOT.rglob("*.py"):
        name = ".".join(p.relative_to(ROOT.parent).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        tree = ast.parse(p.read_text(encoding="utf-8"))
        top, lazy = set(), set()
        for node in ast.walk(tree):
            names = set()
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("derive"):
                names = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                names = {a.name for a in node.names if a.name.startswith("derive")}
            (top if node in tree.body else lazy).update(names)
        out[name] = (top, lazy)
    return out


def layer(module: str):
    parts = module.split(".")
    return LAYER.get(parts[1]) if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYER) else None


def test_no_module_imports_upward():
    mods = modules()
    up = set()
    for m, (top, lazy) in mods.items():
        for t in top | lazy:
            if t in mods and layer(m) is not None and layer(t) is not None and layer(t) > layer(m):
                up.add((m, t, "top" if t in top else "lazy"))
    assert not {u for u in up if u[2] == "top"}, "a module-level import reaches a higher layer"
    assert {(m, t) for m, t, _ in up} <= set(ALLOWED_UP), sorted(up)


def test_no_import_circles():
    mods = modules()
    graph = {m: {t for t in top if t in mods and t != m and not t == m.rsplit(".", 1)[0]}
             for m, (top, _) in mods.items()}
    # a package's __init__ importing its own submodules is not a circle
    graph = {m: {t for t in ts if not (t.startswith(m + "."))} for m, ts in graph.items()}
    seen, stack, circles = {}, [], []

    def visit(v):
        seen[v] = "open"
        stack.append(v)
        for w in graph[v]:
            if seen.get(w) == "open":
                circles.append(stack[stack.index(w):] + [w])
            elif w not in seen:
                visit(w)
        stack.pop()
        seen[v] = "done"

    for v in sorted(graph):
        if v not in seen:
            visit(v)
    assert not circles, circles


def test_no_module_writes_another_modules_private_names():
    """Another module's private dict (exprs._EVAL_GLOBALS) is reached only
    through its registration function (exprs.register_numpy)."""
    offenders = []
    for p in ROOT.rglob("*.py"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("_EVAL_GLOBALS", "HELPERS") \
                    and isinstance(node.value, ast.Name) and node.value.id in ("X", "exprs"):
                offenders.append((p.name, node.lineno, node.attr))
    assert not offenders, offenders
