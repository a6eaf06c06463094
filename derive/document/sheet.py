r"""A variant's question sheet and key, as a student and a grader read them.

The question sheet stands alone: the problem in typeset maths (the model's
equations, the conventions a student needs such as the LSTM's stacking
order, the drawing), this variant's numbers, the update rule, and one box
per asked quantity with room for working. It names no tool, no file format
and no seed: how answers are collected and checked is in the instructor's
note (:func:`instructor_note`). The key opens with the same quantities and
their values, then the worked solution.

The asked quantities (:func:`answer_entries`) are exactly the answers file's
(:func:`answers_of`): the forward quantities and the loss, the backward
pass's adjoints, the gradients, the parameters after the update, and any
per-step gradients the problem asks for (rnn-bptt's dE_2/dW, ...).

>>> from derive.problems import load
>>> sol = load("mlp-relu-regression").solve()
>>> [e.name for e in answer_entries(sol)][:6]
['z1', 'a1', 'z2', 'a2', 'o1', 'L']
>>> answers_of(sol)["dL/dw5"]
-0.105
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sympy

from derive.typeset import blocks as B
from derive.typeset.fmt import num_tex, num_text
from derive.engine.graph import nest
from derive.typeset.latex import default_latex, group_latex, superscript


@dataclass(frozen=True)
class Entry:
    """One asked quantity: its answers-file ``name``, its typeset ``label``,
    its exact ``values`` (row-major) and ``shape`` (``()`` for a scalar)."""

    name: str
    label: B.Math
    values: tuple
    shape: tuple

    def plain(self):
        """The value as the answers file holds it (a float or nested lists)."""
        flat = [float(v) for v in self.values]
        return flat[0] if not self.shape else nest(flat, self.shape)

    def value_math(self) -> B.Math:
        if not self.shape:
            return B.Math(num_tex(self.values[0]), num_text(self.values[0]))
        from derive.problems.tensor_problem import matrix_math

        return matrix_math(self.values, self.shape)


def leaf_groups(graph) -> dict:
    """scalar leaf name -> the (input, target or parameter) group holding it."""
    out = {}
    for grp in graph.groups.values():
        if grp.kind in ("input", "target", "parameter"):
            for n in grp.names:
                out.setdefault(n, grp)
    return out


def _quantity_tex(solution, name: str) -> str:
    """The LaTeX of a node or a group (a tensor problem's own spelling first)."""
    model = getattr(solution, "model", None)
    tensors = getattr(getattr(model, "tg", None), "tensors", {})
    if name in tensors:
        return tensors[name].latex
    g = solution.graph
    if name in g.nodes:
        return g.nodes[name].latex
    # a tensor problem's equations write its stacked quantities plain (Z, H), a spec's in bold
    return default_latex(name) if tensors else group_latex(name)


def _grad_label(loss_tex: str, wrt_tex: str, loss: str, wrt: str) -> B.Math:
    return B.Math(rf"\frac{{\partial {loss_tex}}}{{\partial {wrt_tex}}}", f"d{loss}/d{wrt}")


def answer_entries(solution) -> list:
    """The asked quantities of a solution, in the order a student finds
    them; one entry per vector/matrix group where the whole group is asked."""
    g = solution.graph
    d = solution.derivation
    loss = g.loss
    loss_tex = _quantity_tex(solution, loss)
    member: dict = {}
    for grp in g.groups.values():
        for n in grp.names:
            member.setdefault(n, grp)
    out: list = []

    def section(names, available, value_of, name_of, label_of):
        done: set = set()
        for n in names:
            grp = member.get(n)
            if grp is not None and all(available(m) for m in grp.names):
                if grp.name not in done:
                    done.add(grp.name)
                    out.append(Entry(name_of(grp.name), label_of(grp.name),
                                     tuple(value_of(m) for m in grp.names), tuple(grp.shape)))
            else:
                out.append(Entry(name_of(n), label_of(n), (value_of(n),), ()))

    computed = set(g.computed)
    section(g.computed, lambda x: x in computed, lambda x: solution.forward[x], lambda x: x,
            lambda x: B.Math(_quantity_tex(solution, x), x))
    adjoint = solution.evaluation.adjoint
    grad = lambda x: _grad_label(loss_tex, _quantity_tex(solution, x), loss, x)  # noqa: E731
    backward = [s.node for s in d.steps if s.node in computed and s.node != loss]
    section(backward, lambda x: x in computed and x in d.by_node, lambda x: adjoint[x],
            lambda x: f"d{loss}/d{x}", grad)
    wanted = set(g.wrt_inputs)
    section([n for n in g.wrt_inputs if n in d.by_node], lambda x: x in wanted and x in d.by_node,
            lambda x: adjoint[x], lambda x: f"d{loss}/d{x}", grad)
    params = set(g.parameters)
    section(g.parameters, lambda x: x in params, lambda x: solution.gradients[x], lambda x: f"d{loss}/d{x}", grad)
    out += _step_gradient_entries(solution)
    section(g.parameters, lambda x: x in params, lambda x: solution.updates[x], lambda x: x,
            lambda x: B.Math(superscript(_quantity_tex(solution, x), "+"), f"{x}+"))
    return out


def _step_gradient_entries(solution) -> list:
    """Gradients of one step's error that a problem asks for besides the
    total's (rnn-bptt: dE_2/dW, ...), from its model's ``partial_gradients``."""
    model = getattr(solution, "model", None)
    if not hasattr(model, "partial_gradients"):
        return []
    out = []
    for loss, grads in model.partial_gradients(solution).items():
        loss_tex = re.sub(r"_(\w+)$", r"_{\1}", loss)
        for p, vals in grads.items():
            shape = tuple(model.tg.tensors[p].shape)
            out.append(Entry(f"d{loss}/d{p}", _grad_label(loss_tex, _quantity_tex(solution, p), loss, p),
                             tuple(vals), shape))
    return out


def answers_of(solution) -> dict:
    """The key's answers in the answers-file names ``derive check`` reads:
    forward quantities and the loss, the backward pass's adjoints
    ``dL/dNAME`` (with those of the inputs the problem asks about), the
    gradients (and the per-step gradients a problem asks for), and the
    parameters after the update (bare names). Vector/matrix groups are
    nested lists.

    >>> from derive.problems import load
    >>> a = answers_of(load("mlp-relu-regression").solve())
    >>> a["L"], a["dL/dw5"], a["w1"]
    (0.06125, -0.105, 0.1875)
    """
    return {e.name: e.plain() for e in answer_entries(solution)}


# ---------------------------------------------------------------------------
# The statement

#: what a student needs to know about each activation a graph uses
ACTIVATIONS = {
    "relu": (r"\operatorname{ReLU}(z) = \max(0, z)", r"\operatorname{ReLU}'(0) = 0"),
    "step": (r"\operatorname{step}(z) = 1 \text{ if } z > 0 \text{, else } 0", ""),
    "sigmoid": (r"\sigma(z) = \operatorname{sigmoid}(z) = \frac{1}{1 + e^{-z}}", ""),
    "softplus": (r"\operatorname{softplus}(z) = \ln(1 + e^{z})", ""),
}


def _graph_equations(solution) -> list:
    from derive.typeset.printing import tex

    g = solution.graph
    names = g.latex_names()
    return [B.EqRow(B.Math(g.nodes[n].latex, n), (B.Math(tex(g.nodes[n].expr, names), str(g.nodes[n].expr)),))
            for n in g.computed]


def activation_ops(graph) -> set:
    """The names of the elementwise operations a graph applies.

    >>> from derive.problems import load
    >>> sorted(activation_ops(load("mlp-relu-regression").graph))
    ['relu']
    """
    from derive.engine.ops import op_of

    return {op.name for n in graph.computed for sub in sympy.preorder_traversal(graph.nodes[n].expr)
            if (op := op_of(sub)) is not None}


def model_blocks(solution) -> list:
    """The model's equations (no numbers) and the notation they use."""
    model = getattr(solution, "model", None)
    if model is not None and model.equations():
        # the equations as the key writes them; their plain-text notes only
        # where the model has no typeset notation and they hold no maths
        notes = list(model.notation()) if hasattr(model, "notation") else []
        rows = [B.EqRow(r.lhs, r.rhs, "" if notes or re.search(r"[\^_|<>]", r.note) else r.note,
                        r.relation) for r in model.equations()]
    else:
        rows = _graph_equations(solution)
        notes = []
    out = [B.Heading("The model"), B.Equations(tuple(rows))]
    defs = [ACTIVATIONS[op] for op in sorted(activation_ops(solution.graph)) if op in ACTIVATIONS]
    if defs and not notes:
        parts: list = ["with "]
        for k, (d, extra) in enumerate(defs):
            parts += [", " if 0 < k < len(defs) - 1 else (" and " if k else ""), B.Math(d, d)]
            if extra:
                parts += [" (", B.Math(extra, extra), ")"]
        parts.append(".")
        notes.append(B.Prose(tuple(parts)))
    return out + notes


def givens_blocks(solution) -> list:
    """This variant's numbers: a table of scalars and one of vectors/matrices."""
    from derive.problems.tensor_problem import matrix_math

    g = solution.graph
    groups = leaf_groups(g)
    scalars, tensors, seen = [], [], set()
    kinds = {"input": "input", "target": "target", "parameter": "parameter"}
    for kind in ("input", "target", "parameter"):
        for n in g.of_kind(kind):
            grp = groups.get(n)
            if grp is None:
                v = solution.leaves[n]
                scalars.append((B.Math(g.nodes[n].latex, n), kinds[kind], B.Math(num_tex(v), num_text(v))))
            elif grp.name not in seen:
                seen.add(grp.name)
                vals = [solution.leaves[x] for x in grp.names]
                tensors.append((B.Math(_quantity_tex(solution, grp.name), grp.name), kinds[kind],
                                matrix_math(vals, tuple(grp.shape))))
    out = [B.Heading("Your values")]
    if scalars:
        out.append(B.Table(("quantity", "kind", "value"), tuple(scalars), align="llr"))
    if tensors:
        out.append(B.Table(("quantity", "kind", "value"), tuple(tensors), align="llc"))
    return out


def _hyper_tex(v) -> str:
    r"""A hyper-parameter: a small one as a power of ten (:math:`10^{-8}`, not 0.00000001).

    >>> _hyper_tex(sympy.Rational(1, 10**8)), _hyper_tex(sympy.Rational(3, 10**5)), _hyper_tex(sympy.Rational(9, 10))
    ('10^{-8}', '3 \\times 10^{-5}', '0.9')
    """
    f = float(v)
    if f == 0 or abs(f) >= 1e-3:
        return num_tex(v)
    mant, exp = f"{f:.3g}".split("e")
    return f"10^{{{int(exp)}}}" if mant == "1" else rf"{mant} \times 10^{{{int(exp)}}}"


def update_blocks(solution) -> list:
    """The update rule, typeset, with its hyper-parameters' values."""
    from derive.engine.optim import HYPER_TEX, parameter_notation, rule_rows

    opt = solution.optimizer
    # g is the textbook's gradient, unless the network has a g of its own (the LSTM's candidate)
    names = set(solution.graph.groups) | set(solution.graph.nodes)
    loss = solution.graph.nodes[solution.graph.loss]
    grad = (("g", "g") if "g" not in names
            else (rf"\frac{{\partial {loss.latex}}}{{\partial \theta}}", f"d{loss.name}/dtheta"))
    rows = rule_rows(opt, 1, parameter_notation(r"\theta", "theta", grad[0], grad[1], 1))
    hyper, numbers = opt.symbolic_hyper()
    values = [B.Math(rf"{HYPER_TEX[k][0]} = {_hyper_tex(numbers[s])}", f"{k} = {numbers[s]}")
              for k, s in hyper.items() if isinstance(s, sympy.Symbol) and s in numbers]
    parts: list = ["One step of this rule for every parameter ", B.Math(r"\theta", "theta"),
                   ", where ", B.Math(*grad), " is the gradient of the loss with respect to ",
                   B.Math(r"\theta", "theta"), " and ", B.Math(r"\theta^{+}", "theta+"),
                   " the parameter after the update"]
    for k, v in enumerate(values):
        parts += [", with " if k == 0 else (" and " if k == len(values) - 1 else ", "), v]
    if opt.state_names():
        parts.append(", every state starting at 0")
    if len(rows) == 1:      # one line (SGD): in the sentence, so it cannot be parted from it by a page break
        r = rows[0]
        parts += [": ", B.Math(f"{r.lhs.tex} = {r.rhs[0].tex}", f"{r.lhs.text} = {r.rhs[0].text}"), "."]
        return [B.Heading("Update rule"), B.Prose(tuple(parts))]
    parts.append(":")
    return [B.Heading("Update rule"), B.Prose(tuple(parts)), B.Equations(tuple(rows))]


def statement_blocks(solution) -> list:
    """Everything of the question sheet above the answer boxes."""
    from derive.typeset.network import network_figure

    g = solution.graph
    loss_tex = _quantity_tex(solution, g.loss)
    entries = answer_entries(solution)
    steps = [e for e in entries if re.fullmatch(r"d\w+_\d+/d.+", e.name) and not e.name.startswith(f"d{g.loss}/")]
    intro: list = ["Work through one training step of the network defined below, at your own values: the forward "
                   "pass and the loss ", B.Math(loss_tex, g.loss), ", the backward pass by the chain rule "
                   "(the derivative of ", B.Math(loss_tex, g.loss), " with respect to every intermediate "
                   "quantity), the gradient with respect to every parameter"]
    if steps:
        losses = sorted({e.name[1:].split("/")[0] for e in steps})
        intro += [", the gradients of the single-step errors "]
        for k, loss in enumerate(losses):
            intro += [" and " if k == len(losses) - 1 and k else (", " if k else ""),
                      B.Math(re.sub(r"_(\w+)$", r"_{\1}", loss), loss)]
        intro += [" alone"]
    intro += [", and every parameter after one update. Write each answer in its box (vectors and "
              "matrices in full, numbers to at least four significant digits)."]
    out: list = [B.Prose(tuple(intro))]
    figure = network_figure(g)
    if figure is not None:
        out.append(figure)
    elif getattr(solution, "model", None) is not None and "T" in getattr(solution, "dims", {}):
        T = solution.dims["T"]
        out.append(B.Figure("unrolled-rnn", {"T": T}))
    out += model_blocks(solution)
    out += givens_blocks(solution)
    out += update_blocks(solution)
    return out


def answer_rows(entries: list) -> list:
    """The answer boxes: each quantity with a box tall enough for its value
    (one line for a number, one per row for a vector or matrix)."""
    rows = []
    for e in entries:
        lines = 1 if not e.shape else (e.shape[0] if len(e.shape) > 1 else e.shape[0])
        rows.append({"tex": e.label.tex, "height": f"{2.4 + 1.8 * max(lines - 1, 0):.1f}"})
    return rows


def key_rows(entries: list) -> list:
    r"""The key's answer table: (quantity, value) in the question's order,
    a derivative written inline (:math:`\partial L / \partial w_{1}`) to fit a table row."""
    inline = re.compile(r"\\frac\{(\\partial [^{}]*(?:\{[^{}]*\}[^{}]*)*)\}\{(\\partial [^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
    return [(B.Math(inline.sub(r"\1 / \2", e.label.tex), e.label.text), e.value_math()) for e in entries]


def key_answer_blocks(entries: list) -> list:
    """The key's answers in the question's order: a (folded) table when
    every quantity is a number, else one equation per quantity, which can
    break across pages where a table of matrices could not."""
    if all(not e.shape for e in entries):
        return [B.Table(("quantity", "value"), tuple(key_rows(entries)), align="ll")]
    return [B.Equations(tuple(B.EqRow(e.label, (e.value_math(),)) for e in entries))]


def instructor_note(problem, count: int, seed: int, entries: list, rules: list, target: str,
                    options: str = "") -> str:
    """``instructor-note.md``: what the question sheets leave out on
    purpose: how the set was made, how to collect and check answers."""
    lines = [f"# {problem.title or problem.id}: {count} variants (instructor's note)", "",
             "Not for students: the question sheets carry no seed, no tool names and no file formats.", "",
             "## How this set was made", "",
             f"    derive variants {target} --count {count} --seed {seed}{options}", "",
             "The same command gives the same files. Each variant's numbers were drawn by these rules:", ""]
    lines += [f"- {r}" for r in rules]
    lines += ["", "## Collecting and checking answers", "",
              "Each student answers the boxes of their sheet. To check them with derive, type the answers "
              "into a YAML file, one `name: value` line per box (a vector or matrix as a nested list, "
              "e.g. `[[0.1, 0.2], [0.3, 0.4]]`), with these names:", "",
              "| name | quantity on the sheet |", "|---|---|"]
    lines += [f"| `{e.name}` | {e.label.text} |" for e in entries]
    lines += ["", "and run, for variant NN:", "",
              f"    derive check {target} answers.yaml --values variant-NN/values.yaml", "",
              "`variant-NN/answers.yaml` holds the key's answers in the same names; `roster.csv` (with "
              "`--roster`) says which student has which variant, and a class CSV (an `id` column, then one "
              "column per name) is checked against each student's own variant with:", "",
              f"    derive check {target} answers.csv --variants .", ""]
    return "\n".join(lines)
