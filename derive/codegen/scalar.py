"""Generated numpy code: a problem's loss and gradients as a standalone module.

The module is written from the recorded derivation (:func:`derive.engine.backprop.derive`),
not from a fresh differentiation: the forward nodes, then one adjoint per
node in the order of the worked solution, each an assignment printed by
SymPy's :class:`~sympy.printing.numpy.NumPyPrinter` after common
subexpression elimination (:func:`sympy.cse`).  Variables carry the worked
names (``dL/dz1`` is ``dL_dz1``), so the code reads like the worked solution.

Everything is elementwise, so every value may be a numpy array (all of one
shape) and one call evaluates a whole batch of parameter sets.

>>> from derive.problems import load
>>> loss_and_gradients = compile_gradient(load("mlp-relu-regression"))
>>> loss, grads = loss_and_gradients()
>>> float(grads["w1"]), float(loss_and_gradients(w1=0.3)[1]["w5"])
(-0.175, -0.125)
"""
from __future__ import annotations

import keyword
import textwrap
import types

import numpy as np
import sympy
from sympy.codegen.ast import Assignment
from sympy.printing.codeprinter import CodePrinter
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from derive.engine.backprop import derive

#: names the generated function bodies use themselves; a user's name that
#: collides gets a suffix instead of shadowing them
RESERVED = {"np", "values", "given", "shape"}

#: numpy forms of derive's own functions, emitted only when used.  step is
#: relu's derivative and is 0 at 0 (x > 0, not x >= 0), as in PyTorch.
HELPERS = {
    "relu": ('"""max(x, 0); its derivative is step(x)."""', "return np.maximum(x, 0.0)"),
    "step": ('"""relu\'s derivative: 1.0 where x > 0, else 0.0 (so relu\'(0) = 0)."""',
             "return (x > 0).astype(float)"),
    "sigmoid": ('"""1 / (1 + exp(-x)); exp(-x) overflowing to inf (x < -709) gives exactly 0."""',
                'with np.errstate(over="ignore"):\n        return 1.0 / (1.0 + np.exp(-x))'),
    "softplus": ('"""log(1 + exp(x)), without overflow."""', "return np.logaddexp(0.0, x)"),
}


class _Printer(NumPyPrinter):
    """NumPyPrinter writing ``np.tanh`` and derive's helpers by name."""

    def __init__(self):
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False})
        self.helpers_used: set = set()

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            return "np." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)

    def _print_Assignment(self, expr):
        # ArrayPrinter's version turns scalar products into einsum calls.
        return CodePrinter._print_Assignment(self, expr)

    def _helper(self, expr):
        name = type(expr).__name__
        self.helpers_used.add(name)
        return f"{name}({self._print(expr.args[0])})"

    _print_relu = _print_step = _print_sigmoid = _print_softplus = _helper

    def _print_Mul(self, expr):
        # A step factor multiplies as the comparison itself, (z > 0): one pass
        # over the data instead of building a 0/1 float array first.  It goes
        # last so a leading minus never applies to a boolean.
        steps = [f for f in expr.args if type(f).__name__ == "step"]
        if not steps:
            return super()._print_Mul(expr)
        rest = sympy.Mul(*[f for f in expr.args if type(f).__name__ != "step"])
        conditions = "*".join(f"({self._print(s.args[0])} > 0)" for s in steps)
        if rest == 1:
            return f"1.0*{conditions}"
        return f"{self.parenthesize(rest, PRECEDENCE['Mul'])}*{conditions}"


class _Namer:
    """Python identifiers for worked names, unique and never reserved."""

    def __init__(self):
        self.used = set(RESERVED)

    def __call__(self, wanted: str) -> str:
        base = "".join(c if (c.isalnum() or c == "_") else "_" for c in wanted)
        if not base or not (base[0].isalpha()):
            base = "v_" + base
        name, k = base, 1
        while name in self.used or keyword.iskeyword(name):
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name

    def temporaries(self):
        k = 0
        while True:
            name = f"t{k}"
            k += 1
            if name not in self.used:
                self.used.add(name)
                yield sympy.Symbol(name, real=True)


def gradient_graph(problem_or_graph):
    """The graph code is generated from, or None when there is no gradient
    (a problem without a loss).  A problem over vectors and matrices
    (:class:`~derive.problems.tensor_problem.TensorProblem`) gives the graph at its default sizes.

    >>> from derive.problems import load
    >>> gradient_graph(load("lstm-cell")).loss, gradient_graph(load("conv-arithmetic")) is None
    ('L', True)
    """
    if _is_tensor_problem(problem_or_graph):
        return problem_or_graph.model(**problem_or_graph.default_dims()).tg.graph
    if getattr(problem_or_graph, "spec", None) is not None and hasattr(problem_or_graph.spec, "graph") \
            and hasattr(problem_or_graph.spec.graph, "computed") and callable(problem_or_graph.spec.graph.computed):
        return problem_or_graph.spec.graph        # a large vector spec: the matrix engine's graph
    graph = getattr(problem_or_graph, "graph", problem_or_graph)
    if not hasattr(graph, "nodes") or getattr(graph, "loss", None) is None:
        return None
    return graph


def matrix_form_of(problem):
    """The matrix-form derivation of a vector problem (at its own values), or None."""
    from derive.problems.matrix_solution import MatrixSpecProblem
    if isinstance(problem, MatrixSpecProblem):
        from derive.problems.matrix_form import MatrixForm
        leaves = {n: (np.zeros(problem.spec.graph.nodes[n].shape) if v is None else v)
                  for n, v in problem.spec.leaves.items()}
        return MatrixForm(problem.spec, leaves)
    if _is_tensor_problem(problem) and problem.model(**problem.default_dims()).matrix_data() is not None:
        return problem.solve().matrix_form
    return None


def _is_tensor_problem(obj) -> bool:
    from derive.problems.tensor_problem import TensorProblem

    return isinstance(obj, TensorProblem)


def _source(problem_or_graph):
    """(graph, derivation, defaults, id, question) of a problem or a bare graph."""
    if _is_tensor_problem(problem_or_graph):
        # sizes at their defaults; the givens are the problem's own values
        problem = problem_or_graph
        dims = problem.default_dims()
        model = problem.model(**dims)
        if not hasattr(model, "_derivation"):
            model._derivation = derive(model.tg.graph)
        leaves, _ = problem._leaves(model, dims, {})
        return model.tg.graph, model._derivation, leaves, problem.id
    graph = getattr(problem_or_graph, "graph", problem_or_graph)
    if not hasattr(graph, "nodes") or getattr(graph, "loss", None) is None:
        raise TypeError("codegen needs a gradient problem or a graph with a loss")
    derivation = getattr(problem_or_graph, "derivation", None) or derive(graph)
    spec = getattr(problem_or_graph, "spec", None)
    defaults = dict(getattr(spec, "values", None) or {})
    ident = getattr(problem_or_graph, "id", "") if problem_or_graph is not graph else ""
    return graph, derivation, defaults, ident or graph.title


def _doc_text(text: str, width: int = 76, indent: str = "") -> str:
    """User prose made safe inside a triple-quoted docstring."""
    clean = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    clean = clean.replace("\\", "\\\\").replace('"', '\\"')
    return textwrap.fill(clean, width, initial_indent=indent, subsequent_indent=indent)


def _py_number(value) -> str:
    return repr(float(value))


def _nested(values: list, shape: tuple) -> str:
    if len(shape) <= 1:
        return "[" + ", ".join(values) + "]"
    size = len(values) // shape[0]
    return "[" + ", ".join(_nested(values[i * size:(i + 1) * size], shape[1:])
                           for i in range(shape[0])) + "]"


def _needed(assignments: list, outputs: set) -> list:
    """Only the assignments the outputs depend on (dead code removed)."""
    need = set(outputs)
    kept = []
    for sym, rhs in reversed(assignments):
        if sym in need:
            kept.append((sym, rhs))
            need |= rhs.free_symbols
    return kept[::-1]


def _with_cse(assignments: list, namer: _Namer) -> list:
    """Assignments with common subexpressions computed once, each temporary
    placed just before its first use.  A temporary that is the whole right
    side of a named assignment takes that name instead."""
    if not assignments:
        return []
    replacements, reduced = sympy.cse([rhs for _, rhs in assignments], symbols=namer.temporaries())
    temp_rhs = dict(replacements)
    alias = {}
    for (sym, _), rhs in zip(assignments, reduced):
        if rhs in temp_rhs and rhs not in alias:
            alias[rhs] = sym
    rename = {t: alias.get(t, t) for t in temp_rhs}
    order = [t for t, _ in replacements]
    position = {t: i for i, t in enumerate(order)}
    out, emitted = [], set()

    def emit_temps(expr):
        wanted, stack = set(), [expr]
        while stack:
            for s in stack.pop().free_symbols:
                if s in temp_rhs and s not in emitted and s not in wanted:
                    wanted.add(s)
                    stack.append(temp_rhs[s])
        for t in sorted(wanted, key=position.get):
            emitted.add(t)
            out.append((rename[t], temp_rhs[t].xreplace(rename)))

    for (sym, _), rhs in zip(assignments, reduced):
        emit_temps(rhs)
        if rhs in alias and alias[rhs] == sym:
            continue  # already written as the temporary's definition
        out.append((sym, rhs.xreplace(rename)))
    return out


def generate(problem_or_graph, command: str | None = None) -> str:
    """The source text of a standalone numpy module for a gradient problem.

    The text depends only on the problem, so it is byte-identical across runs.

    >>> from derive.problems import load
    >>> text = generate(load("mlp-relu-regression"))
    >>> "    dL_dz1 = dL_da1*(z1 > 0)" in text.splitlines()
    True
    """
    mf = matrix_form_of(problem_or_graph)
    if mf is not None:            # a vector problem: vectorised numpy from the matrix-form steps
        from derive.codegen.matrix import generate as generate_vectorised
        return generate_vectorised(mf, command, getattr(problem_or_graph, "title", ""))
    graph, derivation, defaults, ident = _source(problem_or_graph)
    namer = _Namer()
    printer = _Printer()

    # Leaves are passed by name; a grouped leaf (a vector or matrix) as one array.
    grouped_leaf = {}
    groups = [g for g in graph.groups.values() if all(n in graph.nodes for n in g.names)]
    leaf_groups = [g for g in groups if all(graph.nodes[n].expr is None for n in g.names)]
    for g in leaf_groups:
        for k, n in enumerate(g.names):
            grouped_leaf[n] = (g, k)
    arguments = []  # (given name, shape or None), in the graph's order
    for n in graph.leaves:
        if n in grouped_leaf:
            g = grouped_leaf[n][0]
            if (g.name, g.shape) not in arguments:
                arguments.append((g.name, g.shape))
        else:
            arguments.append((n, None))

    sym = {}  # original symbol -> generated symbol
    for name, node in graph.nodes.items():
        sym[node.symbol] = sympy.Symbol(namer(name), real=True)
    loss_step = derivation.by_node[graph.loss]
    for s in derivation.steps[1:]:
        sym[s.symbol] = sympy.Symbol(namer(s.name.replace("/", "_")), real=True)
    ones = {loss_step.symbol: sympy.Integer(1)}

    forward = [(sym[node.symbol], node.expr.xreplace(ones).xreplace(sym))
               for node in graph.nodes.values() if node.expr is not None]
    backward = [(sym[s.symbol], s.expr.xreplace(ones).xreplace(sym)) for s in derivation.steps[1:]]
    loss_sym = sym[graph.nodes[graph.loss].symbol]
    grads = {p: (sym[derivation.by_node[p].symbol] if p in derivation.by_node else sympy.Integer(0))
             for p in graph.parameters}

    def body(assignments, outputs):
        kept = _needed(assignments, outputs)
        return _with_cse(kept, namer)

    loss_body = body(forward, {loss_sym})
    grad_body = body(forward + backward, {loss_sym} | {g for g in grads.values() if g.is_Symbol})
    forward_syms = {s for s, _ in forward}

    def unpack_lines():
        lines = ["given, shape = _givens(values)"]
        for name, shape in arguments:
            if shape is None:
                lines.append(f"{sym[graph.nodes[name].symbol]} = given[{name!r}]")
            else:
                g = graph.groups[name]
                for k, n in enumerate(g.names):
                    index = ", ".join(str(int(i)) for i in np.unravel_index(k, g.shape))
                    lines.append(f"{sym[graph.nodes[n].symbol]} = given[{name!r}][..., {index}]")
        return lines

    def assign_lines(assignments, outputs, split_backward):
        lines = []
        last_forward = max((i for i, (lhs, _) in enumerate(assignments) if lhs in forward_syms), default=-1)
        for i, (lhs, rhs) in enumerate(assignments):
            lines.append(printer.doprint(Assignment(lhs, rhs)))
            if split_backward and i == last_forward:
                lines.append(f"# backward pass: the adjoint d{graph.loss}/d(node) of each node, in reverse")
            if dead_after[i]:
                lines.append("del " + ", ".join(sorted(str(s) for s in dead_after[i])))
        return lines

    def liveness(assignments, outputs):
        """dead_after[i]: computed arrays last used by assignment i.  Freeing
        them at once keeps a batch's peak memory low, and with it the cost
        of fresh pages that the allocator would otherwise fault in."""
        computed = {lhs for lhs, _ in assignments}
        last_use = {}
        for i, (_, rhs) in enumerate(assignments):
            for s in rhs.free_symbols:
                if s in computed:
                    last_use[s] = i
        dead = [set() for _ in assignments]
        for s, i in last_use.items():
            if s not in outputs:
                dead[i].add(s)
        return dead

    def grad_expr(p, g):
        if g.is_Symbol:
            return str(g)
        return f"np.full(shape, {_py_number(g)})"

    grad_items = []
    grouped_param = {}
    for g in groups:
        if g.kind == "parameter" and all(n in graph.parameters for n in g.names):
            for n in g.names:
                grouped_param[n] = g
    seen = set()
    for p in graph.parameters:
        if p in grouped_param:
            g = grouped_param[p]
            if g.name in seen:
                continue
            seen.add(g.name)
            parts = ", ".join(grad_expr(n, grads[n]) for n in g.names)
            grad_items.append(f"{g.name!r}: _group(shape, {g.shape!r}, {parts}),")
        else:
            grad_items.append(f"{p!r}: {grad_expr(p, grads[p])},")

    # -- the module text ------------------------------------------------
    title = graph.title or ident
    cmd = command or f"derive codegen {ident}"
    kinds = []
    for kind, label in (("input", "inputs"), ("target", "targets"), ("parameter", "parameters")):
        names = []
        for name, shape in arguments:
            first = graph.groups[name].names[0] if shape is not None else name
            if graph.nodes[first].kind == kind:
                names.append(name + (" " + "x".join(map(str, shape)) if shape else ""))
        if names:
            kinds.append(f"{label} {', '.join(names)}")
    doc = [f'"""Loss and gradients of "{_doc_text(title, 10**6)}" ({_doc_text(ident, 10**6)}).', ""]
    doc += textwrap.wrap(
        f"Generated by `{_doc_text(cmd, 10**6)}` from derive's recorded derivation: the forward "
        f"pass, then the adjoint of every node in reverse ({graph.loss}'s adjoint dL/dz is the "
        "variable dL_dz), with common subexpressions computed once. numpy is its only dependency.",
        76)
    doc += ["", "    loss_and_gradients(**values) -> (loss, {parameter: gradient})",
            "    loss(**values) -> loss", ""]
    doc += textwrap.wrap(
        f"Values are named as in the problem ({'; '.join(kinds)}); a name left out takes the "
        "problem's given value (DEFAULTS). Every value may be a number or a numpy array: arrays "
        "of one shape evaluate a whole batch at once, and each gradient then has that shape"
        + (" (a vector or matrix value has its own shape last)." if leaf_groups else "."), 76)
    doc += ["", "Forward pass:"]
    for node in graph.nodes.values():
        if node.expr is not None:
            doc.append(f"    {node.name} = {sympy.sstr(node.expr)}")
    doc.append('"""')

    L = list(doc)
    L += ["import numpy as np", "", ""]
    L.append(f"NAMES = {tuple(name for name, _ in arguments)!r}")
    L.append(f"PARAMETERS = {tuple(dict.fromkeys(grouped_param[p].name if p in grouped_param else p for p in graph.parameters))!r}")
    L.append(f"SHAPES = {{{', '.join(f'{name!r}: {shape!r}' for name, shape in arguments if shape)}}}")
    default_items = []
    for name, shape in arguments:
        if shape is None:
            if name in defaults:
                default_items.append(f"    {name!r}: {_py_number(defaults[name])},")
        elif all(n in defaults for n in graph.groups[name].names):
            flat = [_py_number(defaults[n]) for n in graph.groups[name].names]
            default_items.append(f"    {name!r}: {_nested(flat, shape)},")
    L += ["DEFAULTS = {"] + default_items + ["}"] if default_items else ["DEFAULTS = {}"]
    L += ["", ""]

    grad_outputs = {loss_sym} | {g for g in grads.values() if g.is_Symbol}
    dead_after = liveness(grad_body, grad_outputs)
    body_lines_grad = unpack_lines() + ["# forward pass"] + assign_lines(grad_body, grad_outputs, True)
    dead_after = liveness(loss_body, {loss_sym})
    body_lines_loss = unpack_lines() + assign_lines(loss_body, {loss_sym}, False)
    for name in sorted(printer.helpers_used):
        doc_line, ret = HELPERS[name]
        L += [f"def {name}(x):", f"    {doc_line}", f"    {ret}", "", ""]

    L += ["def _givens(values):",
          '    """The values as float arrays (givens filled in) and their common batch shape."""',
          "    unknown = sorted(set(values) - set(NAMES))",
          "    if unknown:",
          "        raise TypeError(f\"unknown value {unknown[0]!r}; known: {', '.join(NAMES)}\")",
          "    given, shapes = {}, []",
          "    for name in NAMES:",
          "        if name not in values and name not in DEFAULTS:",
          "            raise TypeError(f\"no value given for {name!r}\")",
          "        value = np.asarray(values[name] if name in values else DEFAULTS[name], dtype=float)",
          "        own = SHAPES.get(name, ())",
          "        if value.shape[value.ndim - len(own):] != own:",
          "            raise ValueError(f\"{name} must have shape {own} (after any batch axes), not {value.shape}\")",
          "        given[name] = value",
          "        shapes.append(value.shape[:value.ndim - len(own)])",
          "    return given, np.broadcast_shapes(*shapes)",
          "", ""]
    if grouped_param:
        L += ["def _group(shape, own, *elements):",
              '    """Row-major elements of a vector or matrix gradient as one array, batch axes first."""',
              "    stacked = np.stack(np.broadcast_arrays(*[np.broadcast_to(e, shape) for e in elements]), axis=-1)",
              "    return stacked.reshape(shape + own)",
              "", ""]
    L += ["def loss(**values):",
          f'    """The loss {graph.loss} at the given values (the forward pass only)."""']
    L += ["    " + line for line in body_lines_loss]
    L += [f"    return {loss_sym}", "", ""]
    L += ["def loss_and_gradients(**values):",
          f'    """The loss {graph.loss} and its gradient with respect to every parameter."""']
    L += ["    " + line for line in body_lines_grad]
    L += [f"    return {loss_sym}, {{"] + ["        " + item for item in grad_items] + ["    }"]
    return "\n".join(L) + "\n"


def load_module(problem_or_graph) -> types.ModuleType:
    """The generated module, compiled and loaded (not written to disk).

    The text executed is derive's own output: names are validated
    identifiers and numbers are printed by SymPy; user prose appears only
    inside the escaped docstring.
    """
    text = generate(problem_or_graph)
    ident = getattr(problem_or_graph, "id", "") or "graph"
    module = types.ModuleType(f"derive_generated_{ident}".replace("-", "_"))
    exec(compile(text, f"<derive codegen {ident}>", "exec"), module.__dict__)  # noqa: S102
    return module


def compile_gradient(problem_or_graph):
    """``loss_and_gradients(**values) -> (loss, {param: gradient})`` as a callable.

    >>> from derive.problems import load
    >>> f = compile_gradient(load("mlp-tanh-sigmoid"))
    >>> sorted(f()[1])[:2]
    ['w1_11', 'w1_12']
    """
    return load_module(problem_or_graph).loss_and_gradients


def compile_loss(problem_or_graph):
    """``loss(**values)``: the generated forward pass alone (for benchmarks)."""
    return load_module(problem_or_graph).loss


__all__ = ["generate", "gradient_graph", "load_module", "compile_gradient", "compile_loss"]
