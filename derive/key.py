"""The answer key: every built-in's worked solution in the seeds' order, a
first page showing which seed question is answered where, and the errata of
the seeds' published solutions.

>>> from derive.problems import load
>>> tex = key_document([load("mlp-relu-regression")])
>>> "Coverage at a glance" in tex and r"\\section{Two-layer ReLU regression net" in tex
True
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .coverage import QUESTIONS, SEEDS
from .errors import UserError
from .fmt import DIGITS
from .render import TEX_HINT, _write_atomic, compile_pdf, make_env, problem_context, tex_engine

#: the fields of one erratum, as derive.errata.findings() gives them
ERRATA_FIELDS = ("seed", "question", "quantity", "written", "right", "why")


def select(only=None) -> list:
    """The built-ins of the key, in the seeds' order; ``only`` keeps the given ids."""
    from .problems import builtins

    problems = builtins()
    if not only:
        return problems
    known = {p.id for p in problems}
    unknown = [i for i in only if i not in known]
    if unknown:
        raise UserError("--only", f"unknown problem {unknown[0]!r}; `derive list` shows the built-ins")
    wanted = set(only)
    return [p for p in problems if p.id in wanted]


def errata_findings() -> list | None:
    """The errata found in the seeds' published solutions, or None while
    :mod:`derive.errata` does not exist yet."""
    try:
        module = importlib.import_module("derive.errata")
    except ModuleNotFoundError as exc:
        if exc.name == "derive.errata":
            return None
        raise
    return [{k: str(f.get(k, "") if f.get(k) is not None else "") for k in ERRATA_FIELDS}
            for f in module.findings()]


def coverage_context(sections: dict) -> list:
    """Seed by seed, each question and where the key answers it
    (``sections``: built-in id -> section number in this key)."""
    out = []
    for seed, about in SEEDS.items():
        rows = []
        for q in QUESTIONS:
            if q.seed != seed:
                continue
            rows.append({"label": q.label, "title": q.title, "id": q.id or "",
                         "section": sections.get(q.id) if q.id else None, "reason": q.reason})
        out.append({"seed": seed, "about": about, "rows": rows})
    return out


def key_document(problems: list, errata: list | None = None, *, with_errata: bool = True) -> str:
    """The LaTeX of the answer key for ``problems`` (solved here, once each)."""
    contexts = [problem_context(p, p.solve(), number=k) for k, p in enumerate(problems, start=1)]
    sections = {c["id"]: c["number"] for c in contexts}
    if with_errata and errata is None:
        errata = errata_findings()
    answered = sum(1 for q in QUESTIONS if q.id and q.id in sections)
    return make_env().get_template("key.tex.j2").render(
        version=__version__,
        digits=DIGITS,
        problems=contexts,
        coverage=coverage_context(sections),
        counts={"questions": len(QUESTIONS), "answered": answered,
                "missing": sum(1 for q in QUESTIONS if q.id and q.id not in sections),
                "uncovered": sum(1 for q in QUESTIONS if not q.id)},
        errata=errata,
    )


@dataclass
class KeyResult:
    tex: Path
    pdf: Path | None
    problems: list
    note: str = ""        # one line for the user when the PDF was not built


def write_key(out_dir="output", only=None, pdf: bool = True) -> KeyResult:
    """Write ``answer-key.tex`` and (with a TeX engine) ``answer-key.pdf``
    into ``out_dir``. The .tex is written first; the PDF replaces an earlier
    one only if pdfLaTeX succeeds (else :class:`~derive.render.LatexError`)."""
    problems = select(only)
    out = Path(out_dir)
    tex = key_document(problems)
    tex_path = out / "answer-key.tex"
    _write_atomic(tex_path, tex)
    ids = [p.id for p in problems]
    if not pdf:
        return KeyResult(tex_path, None, ids)
    if tex_engine() is None:
        return KeyResult(tex_path, None, ids,
                         f"no TeX engine (pdflatex) found, so no PDF: {TEX_HINT}, then run `derive key` again")
    pdf_path = compile_pdf(tex, out / "answer-key.pdf", name="answer-key", log_path=out / "answer-key.log")
    return KeyResult(tex_path, pdf_path, ids)
