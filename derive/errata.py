"""Errata of the seeds' published answers, found by checking them.

The seeds' own answers are transcribed, as written, into answers files under
``examples/seed-answers/`` (``index.yaml`` says which problem each answers).
:func:`findings` runs the checker on each of them: what is "right" comes from
derive's solution and "why" from the checker's diagnosis, never typed in.

>>> f = [x for x in findings() if x["seed"] == "004" and x["quantity"] == "w3"][0]
>>> f["written"], f["right"], f["verdict"]
('.2875', '-0.2', 'incorrect')
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from .answers import read_answers
from .check import _exact_text, answer_key, check, CheckError
from .spec import read_file

#: verdicts that are errata (a plain rounding to the digits shown is not)
ERRATA_VERDICTS = ("incorrect", "carried-forward", "unparseable", "unknown-name")


def answers_dir() -> Path | None:
    """examples/seed-answers in a checkout, or the copy inside a wheel."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "examples" / "seed-answers", here / "seed_answers"):
        if (cand / "index.yaml").is_file():
            return cand
    return None


def entries() -> list:
    """The index: one dict per answers file (file, target, seed, question,
    and optionally values: a values file for the problem's givens, and
    questions: quantity name -> the part of the question it answers)."""
    d = answers_dir()
    if d is None:
        return []
    return [dict(e, path=str(d / e["file"])) for e in read_file(d / "index.yaml")]


def check_entry(entry: dict) -> dict | None:
    """The check result of one transcribed answers file (None if its
    problem is not built in yet)."""
    from .problems import load

    try:
        problem = load(entry["target"])
    except Exception:  # noqa: BLE001 - a built-in still being written
        return None
    values = read_file(Path(entry["path"]).parent / entry["values"]) if entry.get("values") else None
    solution = problem.solve(values)
    return check(solution, read_answers(entry["path"]), target=entry["target"]), solution


@lru_cache(maxsize=1)
def _findings() -> tuple:
    out = []
    for entry in entries():
        got = check_entry(entry)
        if got is None:
            continue
        result, solution = got
        for item in result["items"]:
            if not _is_erratum(item):
                continue
            # an entry answering several parts may label each quantity's part
            question = (entry.get("questions") or {}).get(item["name"], entry["question"])
            out.append({"seed": entry["seed"], "question": question, "target": entry["target"],
                        "quantity": item["name"], "written": item["given"],
                        "right": _right(solution, item), "why": _why(item["message"]),
                        "verdict": item["verdict"]})
    return tuple(out)


def findings() -> list:
    """Every mistake found in the seeds' transcribed answers, in index order:
    dicts with seed, question, target, quantity, written, right, why, verdict."""
    return [dict(f) for f in _findings()]


def _is_erratum(item) -> bool:
    if item["verdict"] in ERRATA_VERDICTS:
        return True
    # a rounding that is not simply the exact value rounded to the digits shown
    return item["verdict"] == "rounding" and "truncated" in item["message"]


def _right(solution, item) -> str:
    if item.get("form"):           # a judge's (or a "not given" item's) form of the quantity
        return item["form"]
    if hasattr(solution, "derivation"):
        try:
            key = answer_key(solution)
            qs = [key.quantities[key.index[q]] for q in key.resolve(item["name"])]
            return ", ".join(_exact_text(q) for q in qs)
        except CheckError:
            pass
    return _compact(item["expected"])


def _compact(v) -> str:
    if isinstance(v, list):
        if all(not isinstance(x, list) for x in v) and all(isinstance(x, int) for x in v) and len(v) > 1:
            return " x ".join(str(x) for x in v)
        return "[" + ", ".join(_compact(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _why(message: str) -> str:
    if message.startswith("not given in the answer"):
        return "not given in the published answer, which the question asks for"
    why = re.sub(r"^right value: [^;]*;?\s*", "", message).strip()
    return why or "no simple slip explains the written value; derive's value is computed from the givens"
