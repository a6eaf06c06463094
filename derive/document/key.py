"""The answer key: every built-in's worked solution in the seeds' order, a
first page showing which seed question is answered where, and the errata of
the seeds' published solutions.

>>> from derive.problems import load
>>> tex = key_document([load("mlp-relu-regression")])
>>> "Coverage at a glance" in tex and r"\\hyperlink{part:004:Q2}{answer}" in tex
True
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from derive import __version__
from derive.document.coverage import CHOICE, QUESTIONS, SEEDS
from derive.errors import UserError
from derive.typeset.fmt import DIGITS
from derive.typeset.latex import math_width
from derive.document.render import TEX_HINT, _contexts, _write_atomic, compile_pdf, make_env, problem_context, tex_engine

#: written + right of an erratum narrower than this (pt) share one line of the summary
INLINE_ERRATUM = 300.0
#: the fields of one erratum, as derive.document.errata.findings() gives them
ERRATA_FIELDS = ("seed", "question", "quantity", "written", "right", "why")


def select(only=None) -> list:
    """The built-ins of the key, in the seeds' order; ``only`` keeps the given ids."""
    from derive.problems import builtins

    problems = builtins()
    if not only:
        return problems
    known = {p.id for p in problems}
    unknown = [i for i in only if i not in known]
    if unknown:
        raise UserError("--only", f"unknown problem {unknown[0]!r}; `derive list` shows the built-ins")
    wanted = set(only)
    return [p for p in problems if p.id in wanted]


def errata_findings(solved: dict | None = None) -> list | None:
    """The errata found in the seeds' published solutions, or None while
    :mod:`derive.document.errata` does not exist yet (``solved``: the
    solutions the key already has, by id)."""
    try:
        module = importlib.import_module("derive.document.errata")
    except ModuleNotFoundError as exc:
        if exc.name == "derive.document.errata":
            return None
        raise
    return [{k: str(f.get(k, "") if f.get(k) is not None else "") for k in ERRATA_FIELDS}
            for f in module.findings(solved)]


def coverage_context(sections: dict, anchors: dict | None = None) -> list:
    """Seed by seed, each question and where the key answers it
    (``sections``: built-in id -> appendix letter in this key; ``anchors``:
    (seed, label) -> the anchor of its answer in the first part)."""
    anchors = anchors or {}
    out = []
    for seed, about in SEEDS.items():
        rows = []
        for q in QUESTIONS:
            if q.seed != seed:
                continue
            # seed 001 answers seed 000: its rows point at seed 000's answers
            where = [a for (s, label), a in anchors.items()
                     if s == ("000" if seed == "001" else seed) and _same_question(q.label, label)]
            rows.append({"label": q.label, "title": q.title, "id": q.id or "",
                         "section": sections.get(q.id) if q.id else None, "reason": q.reason,
                         "anchor": where[0] if where else None,
                         "answered": bool(where) and (q.id is not None or q.reason == CHOICE)})
        out.append({"seed": seed, "about": about, "rows": rows})
    return out


def _same_question(coverage_label: str, part_label: str) -> bool:
    """Does a coverage row (``Q1(a)-(c)``, ``1(a)-(c)``, ``Q2.4-2.5``) cover a part (``Q1(a)``)?"""
    a, b = (label.lstrip("Q").split("(")[0].replace("\u2013", "-").split("-")[0]    # a range: - or an en dash
            for label in (coverage_label, part_label))
    return a == b


def appendix_letter(k: int) -> str:
    """A, B, ..., Z, AA, ...: the appendix sections' numbering (as LaTeX's \\Alph)."""
    return chr(ord("A") + k - 1) if k <= 26 else appendix_letter((k - 1) // 26) + chr(ord("A") + (k - 1) % 26)


def _part_context(part, errata_here: list, contexts=_contexts) -> dict:
    return {"seed": part.seed, "label": part.label, "anchor": part.anchor, "question": part.question,
            "answer": part.answer, "short": part.short, "accept": part.accept, "tolerance": part.tolerance,
            "marks": part.marks, "steps": contexts(part.steps), "verify": part.verify,
            "instance": part.instance, "kind": part.kind, "words": part.words,
            "errata": _grouped([e for e in errata_here if not e["accepted"]]),
            "accepted": [e for e in errata_here if e["accepted"]]}


def _grouped(errata: list) -> list:
    """Errata of one question that share their reason, as one entry with
    several written/right pairs (seed 004 Q2's four swapped values)."""
    out, at = [], {}
    for e in errata:
        key = (e["severity"], e["why"], e["seed"])
        if key not in at:
            at[key] = dict(e, pairs=[])
            out.append(at[key])
        at[key]["pairs"].append(e)
    return out


def key_document(problems: list, errata: list | None = None, *, with_errata: bool = True) -> str:
    """The LaTeX of the answer key for ``problems`` (solved here, once each):
    the seeds' questions answered first (:mod:`derive.document.keyparts`), then each
    problem's full worked solution as an appendix."""
    return make_env().get_template("key.tex.j2").render(**key_context(problems, errata, with_errata=with_errata))


def key_context(problems: list, errata: list | None = None, *, with_errata: bool = True,
                block_contexts=_contexts, problem_context=problem_context) -> dict:
    """What the key's template needs. ``block_contexts(blocks)`` and
    ``problem_context(problem, solution, number, appendix)`` turn blocks into
    a renderer's block contexts: LaTeX's by default, the web page's
    (:mod:`derive.document.html`) for ``derive key --format html``."""
    from derive.document.keyparts import key_parts

    solutions = {p.id: p.solve() for p in problems}
    letters = {p.id: appendix_letter(k) for k, p in enumerate(problems, start=1)}
    contexts = [problem_context(p, solutions[p.id], number=k, appendix=True)
                for k, p in enumerate(problems, start=1)]
    for c in contexts:
        c["letter"] = letters[c["id"]]
    printed = None
    if with_errata and errata is None:
        found = errata_findings(solutions)
        errata = found
        if found is not None:
            from derive.document.errata import key_errata

            printed = key_errata(solutions)
    elif errata:
        printed = [{"seed": e["seed"], "question": e["question"], "part": (e["seed"], e["question"]),
                    "quantity": e.get("quantity", ""), "severity": e.get("severity", "wrong value"),
                    "written": None, "written_text": e["written"], "right": None, "right_text": e["right"],
                    "why": e.get("why", ""), "why_text": True, "accepted": False} for e in errata]
    parts = key_parts(solutions, letters)
    by_part = {}
    anchors = {(p.seed, p.label): p.anchor for p in parts}
    for e in printed or []:
        e["anchor"] = anchors.get(tuple(e["part"]))
        # written and right on one line when both are short (estimated printed width, pt)
        shown = [e[k] if e.get(k) is not None else e.get(k + "_text", "") for k in ("written", "right")]
        e["inline"] = sum(math_width(t) for t in shown) < INLINE_ERRATUM and "matrix" not in "".join(shown)
        by_part.setdefault(tuple(e["part"]), []).append(e)
    placed = {(p.seed, p.label) for p in parts}
    part_contexts = [_part_context(p, by_part.get((p.seed, p.label), []), block_contexts) for p in parts]
    seeds = []
    for seed, about in SEEDS.items():
        mine = [c for c in part_contexts if c["seed"] == seed]
        if mine:
            seeds.append({"seed": seed, "about": about, "parts": mine})
    unplaced = [e for e in printed or [] if tuple(e["part"]) not in placed]
    return dict(
        version=__version__,
        digits=DIGITS,
        problems=contexts,
        seeds=seeds,
        coverage=coverage_context({c["id"]: c["letter"] for c in contexts}, anchors),
        counts={"questions": len(QUESTIONS),
                "answered": sum(1 for q in QUESTIONS if q.id and q.id in letters),
                "missing": sum(1 for q in QUESTIONS if q.id and q.id not in letters),
                "uncovered": sum(1 for q in QUESTIONS if not q.id)},
        errata=None if printed is None and errata is None else (printed or []),
        unplaced=unplaced,
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
    one only if pdfLaTeX succeeds (else :class:`~derive.document.render.LatexError`)."""
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
