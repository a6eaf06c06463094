"""Hostile hand answers, plain and LaTeX: each gets its verdict, bounded in time.

``tests/hostile/answers-plain/cases.yaml`` and ``answers-latex/cases.yaml``
list one answer per case (code injection, number and power towers, overflow,
control characters, odd spellings of numbers, TeX primitives, ...) with the
verdict ``derive check`` must give (a list where the verdict depends on a
time limit or on notation still growing).  Every case goes through the
answers reader and :func:`derive.grading.verdicts.check` in-process, with a 2 s limit
per answer; then the whole corpus of each target goes once through the CLI
as one class CSV, which must give the same verdicts, print no control
character and no traceback.
"""
from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

import pytest
import yaml

from derive.grading.answers import read_answers_text
from derive.grading.verdicts import check
from derive.cli import main
from derive.commands.check import render_text
from derive.problems import load
from derive.safetext import MAX_CELL

HERE = Path(__file__).resolve().parent / "hostile"
CASES = [(surface, c) for surface in ("answers-plain", "answers-latex")
         for c in yaml.safe_load((HERE / surface / "cases.yaml").read_text(encoding="utf-8"))]
#: seconds one answer may take: its 2 s limit (set below) and some slack for a busy machine
ANSWER_BOUND = 6.0
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

_SOLUTIONS: dict = {}


def solution(target):
    if target not in _SOLUTIONS:
        _SOLUTIONS[target] = load(target).solve()
    return _SOLUTIONS[target]


def allowed(case) -> list:
    v = case["verdict"]
    return v if isinstance(v, list) else [v]


def test_corpus_size():
    plain = [c for s, c in CASES if s == "answers-plain"]
    latex = [c for s, c in CASES if s == "answers-latex"]
    assert len(plain) >= 150 and len(latex) >= 60
    assert len({c["case"] for _, c in CASES}) == len(CASES)


@pytest.mark.parametrize("surface, case", CASES, ids=[c["case"] for _, c in CASES])
def test_answer_verdict(surface, case, monkeypatch):
    monkeypatch.setenv("DERIVE_ANSWER_TIME_LIMIT", "2")
    sol = solution(case["target"])
    start = time.monotonic()
    answers = read_answers_text(yaml.safe_dump({case["name"]: case["answer"]}), "answers.yaml")
    result = check(sol, answers)
    elapsed = time.monotonic() - start
    assert elapsed < ANSWER_BOUND, f"took {elapsed:.1f} s"
    verdicts = [it["verdict"] for it in result["items"]] or ["not-answered"]
    assert verdicts[0] in allowed(case), (case["answer"][:80], result["items"])
    text = render_text(result)
    assert not CONTROL.search(text)
    assert len(text) < 10_000


@pytest.mark.parametrize("target", sorted({c["target"] for _, c in CASES}))
def test_corpus_through_the_cli_as_a_class(target, tmp_path, capsys, monkeypatch):
    """One CSV per target, one row per case (answers longer than a CSV cell
    may be are left to the test above)."""
    monkeypatch.setenv("DERIVE_ANSWER_TIME_LIMIT", "2")
    cases = [c for _, c in CASES if c["target"] == target and 0 < len(c["answer"].strip()) <= MAX_CELL
             and not c["answer"].strip().startswith("[")]
    columns = sorted({c["name"] for c in cases})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id"] + columns)
    for c in cases:
        w.writerow([c["case"]] + [c["answer"] if n == c["name"] else "" for n in columns])
    path = tmp_path / "class.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    code = main(["check", target, str(path), "--format", "json"])
    out, err = capsys.readouterr()
    assert code in (0, 1) and err == "", err
    rows = {r["id"]: r for r in json.loads(out)["rows"]}
    for c in cases:
        items = rows[c["case"]]["items"]
        assert items and items[0]["verdict"] in allowed(c), (c["case"], items)
    code = main(["check", target, str(path)])
    out, err = capsys.readouterr()
    assert code in (0, 1) and err == "" and not CONTROL.search(out)
