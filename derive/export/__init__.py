"""Variants for a learning platform: Moodle XML, QTI 1.2 for Canvas, a CSV.

``derive variants TARGET --count N --seed S --export moodle|qti|csv``
writes the variants as usual and then one more file into their folder
(:data:`FILES`). Every export reads the same records (:func:`collect`): per
variant its givens, its statement and worked key (the blocks the question
sheet and the key show) and its asked quantities, each a number with the
tolerance the grading policy sets (:class:`Policy`): ``max(rtol * |value|,
atol)``, the bound ``derive check`` accepts (``derive.grading.verdicts.RTOL`` and
``ATOL`` unless the instructor gives ``--rtol``/``--atol``), widened with
``--min-sig K`` to accept answers rounded to K significant figures. The numbers are those of each
variant's ``answers.yaml``: the key solved from its ``values.yaml`` read back.

>>> from derive.problems import load
>>> from derive.document.variants import draw_variants
>>> p = load("mlp-relu-regression")
>>> [item] = collect(p, draw_variants(p, 1, seed=3), seed=3, policy=Policy(1e-3, 1e-6))
>>> q = item.quantities[0]
>>> q.name, q.tolerance == max(1e-3 * abs(q.value), 1e-6)
('z1', True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from derive.typeset import blocks as B

#: export name -> the file it writes into the variants folder
FILES = {"moodle": "variants-moodle.xml", "qti": "variants-qti.zip", "csv": "variants-answers.csv"}


@dataclass(frozen=True)
class Quantity:
    """One asked number: its answers-file ``name`` (an entry of a vector or
    matrix answer is ``NAME[i,j]``, counted from 1), how the question names
    it (``tex``), the key's value and the accepted absolute error."""

    name: str
    tex: str
    value: float
    tolerance: float


@dataclass
class VariantItem:
    """One variant as an export reads it."""

    number: int
    values: dict                      # the givens, as in values.yaml
    statement: list                   # blocks: the sheet's statement (no answer boxes)
    key: list                         # blocks: the worked solution
    quantities: list = field(default_factory=list)


@dataclass(frozen=True)
class Policy:
    """How close an answer must be: within ``max(rtol * |exact|, atol)``,
    the bound ``derive check`` accepts, and, with ``min_sig``, also any
    rounding of the exact value to ``min_sig`` significant figures (within
    half a unit of its ``min_sig``-th significant figure), which a
    platform's absolute margin can express.

    >>> Policy(1e-3, 1e-9).tolerance(-0.175), Policy(1e-3, 1e-9).tolerance(0.0)
    (0.000175, 1e-09)
    >>> Policy(1e-6, 1e-9, min_sig=4).tolerance(0.621467)     # 0.6215 is accepted
    5e-05
    """

    rtol: float
    atol: float
    min_sig: int | None = None

    def tolerance(self, value: float) -> float:
        v = abs(float(value))
        tol = max(self.rtol * v, self.atol)
        if self.min_sig and v > 0:
            tol = max(tol, 0.5 * 10.0 ** (math.floor(math.log10(v)) - self.min_sig + 1))
        return tol

    def note(self) -> str:
        """One sentence telling students how close an answer must be.

        >>> Policy(1e-3, 1e-9).note()
        'An answer is accepted within a relative error of 0.001 of the exact value (an absolute error of 1e-09 near zero).'
        >>> Policy(1e-6, 1e-9, 4).note()
        'Give at least 4 significant figures: an answer rounded to 4 significant figures is accepted.'
        """
        if self.min_sig:
            return (f"Give at least {self.min_sig} significant figures: an answer rounded to "
                    f"{self.min_sig} significant figures is accepted.")
        return (f"An answer is accepted within a relative error of {self.rtol:g} of the exact value "
                f"(an absolute error of {self.atol:g} near zero).")


def _entries(value, prefix=()):
    """(index tuple, number) of a number or a nested list, row-major."""
    if isinstance(value, list):
        for k, v in enumerate(value, start=1):
            yield from _entries(v, prefix + (k,))
    else:
        yield prefix, float(value)


def asked(solution) -> list:
    """``(name, LaTeX label, value)`` of every quantity a variant asks for:
    the question sheet's own list (:func:`derive.document.sheet.answer_entries`), in
    the answers file's names and order (a vector or matrix whole, its value
    a nested list).

    >>> from derive.problems import load
    >>> [(n, v) for n, _, v in asked(load("mlp-relu-regression").solve())][:2]
    [('z1', 0.3), ('a1', 0.3)]
    """
    from derive.document.sheet import answer_entries

    return [(e.name, e.label.tex, e.plain()) for e in answer_entries(solution)]


def quantities(solution, policy: Policy) -> list:
    """The asked numbers of a solution (:func:`asked`), vectors and
    matrices entry by entry, each with its tolerance."""
    out = []
    for name, base, value in asked(solution):
        for index, v in _entries(value):
            if index:
                sub = ",".join(map(str, index))
                out.append(Quantity(f"{name}[{sub}]", rf"\left({base}\right)_{{{sub}}}", v,
                                    policy.tolerance(v)))
            else:
                out.append(Quantity(name, base, v, policy.tolerance(v)))
    return out


def collect(problem, variants: list, seed: int, policy: Policy) -> list:
    """One :class:`VariantItem` per variant; each key solved from the
    variant's ``values.yaml`` text read back, as ``derive variants`` does."""
    from derive.document.sheet import statement_blocks
    from derive.engine.spec import read_data
    from derive.document.variants import base_of, values_text

    graph = base_of(problem)[0]
    items = []
    for v in variants:
        solution = problem.solve(read_data(values_text(problem, v, seed), "values.yaml"))
        items.append(VariantItem(v.number, v.plain_values(graph), statement_blocks(solution), solution.blocks(),
                                 quantities(solution, policy)))
    return items


def write_export(fmt: str, problem, variants: list, seed: int, out_dir, policy: Policy,
                 roster_ids: list | None = None) -> Path:
    """Write ``out_dir/FILES[fmt]`` and return its path."""
    from derive.document.render import _write_atomic

    items = collect(problem, variants, seed, policy)
    path = Path(out_dir) / FILES[fmt]
    if fmt == "moodle":
        from derive.export.moodle import moodle_xml

        _write_atomic(path, moodle_xml(problem, items, policy))
    elif fmt == "qti":
        from derive.export.qti import qti_zip

        _write_atomic(path, qti_zip(problem, items, seed, policy))
    elif fmt == "csv":
        from derive.document.variants import assign
        from derive.export.answers_csv import answers_csv

        students = None
        if roster_ids is not None:
            dealt = assign(roster_ids, len(variants), seed)
            students = [(sid, dealt[sid]) for sid in roster_ids]
        _write_atomic(path, answers_csv(items, students))
    else:
        raise ValueError(f"unknown export {fmt!r}")
    return path


__all__ = ["FILES", "Policy", "Quantity", "VariantItem", "collect", "quantities", "write_export", "asked"]
