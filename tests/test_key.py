"""The answer key as a reader gets it: compiled once, read back with pdftotext."""
import math
import re
import shutil
import subprocess
from fractions import Fraction

import pytest

from derive import cli
from derive.document.coverage import QUESTIONS, SEEDS
from derive.problems import builtins

needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
                               reason="TeX Live / poppler not installed (install.sh installs them)")


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    """The full key, compiled once for this module: (folder, text, log)."""
    out = tmp_path_factory.mktemp("key")
    assert cli.main(["key", "--out", str(out)]) == 0
    text = subprocess.run(["pdftotext", "-layout", str(out / "answer-key.pdf"), "-"],
                          capture_output=True, check=True, text=True).stdout
    return out, text.replace("\u2212", "-"), (out / "answer-key.log").read_text(encoding="latin-1")


def _shown(value: float, exact: str | None = None) -> str | None:
    """How the key prints a number, computed here independently of derive.typeset.fmt:
    a terminating fraction in full, anything else to 6 significant digits;
    None for fractions shown as fractions and for exponent notation."""
    try:
        exact_fraction = Fraction(exact) if exact else None
    except ValueError:           # an exact irrational (5*sqrt(2)/2): shown as a decimal
        exact_fraction = None
    if exact_fraction is not None and exact_fraction.denominator != 1:
        q = exact_fraction.denominator
        while q % 2 == 0:
            q //= 2
        while q % 5 == 0:
            q //= 5
        if q != 1:
            return None
        return format(exact_fraction.numerator / exact_fraction.denominator, ".12g")
    s = format(value, ".6g")
    return None if "e" in s else s


def _numbers(j: dict):
    """(name, shown) for the answers of a solution's contract JSON."""
    exact = j.get("exact", {})
    for name, v in j["values"].items():
        if isinstance(v, float) and not isinstance(v, bool):
            yield name, _shown(v, exact.get(name))
    for name, g in j["gradients"].items():
        if isinstance(g["value"], float):
            yield f"d/d{name}", _shown(g["value"], g.get("exact"))
    for name, v in j["updates"].items():
        if isinstance(v, float):
            yield f"{name}+", _shown(v)


@needs_tex
def test_computed_numbers_are_in_the_pdf(key):
    _, text, _ = key
    missing = []
    for problem in builtins():
        j = problem.solve().to_json()
        for name, shown in _numbers(j):
            if shown is not None and not re.search(rf"(?<![\d.]){re.escape(shown)}(?!\d)", text):
                missing.append((problem.id, name, shown))
    assert not missing


@needs_tex
def test_pdf_reads_clean(key):
    out, text, log = key
    assert "??" not in text
    assert "LaTeX Error" not in log and "\n! " not in log
    overfull = [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]
    assert all(w <= 3.0 for w in overfull), overfull
    # a chain of equalities shrunk to fit is fine; shrunk by more than a fifth is not
    for wide, room in re.findall(r"derive-shrink: ([\d.]+)pt into ([\d.]+)pt", log):
        assert float(wide) / float(room) < 1.2, (wide, room)
    assert (out / "answer-key.pdf").read_bytes().startswith(b"%PDF")


@needs_tex
def test_sections_in_seed_order_with_coverage_first(key):
    out, text, _ = key
    first_page = text.split("\f")[0]
    assert "Coverage at a glance" in first_page
    for seed in SEEDS:
        assert f"Seed {seed}" in first_page
    assert "outline" in first_page and "not covered: programming" in first_page
    # the errata summary closes the answers, before the appendices of worked solutions
    pages = text.split("\f")
    at = [i for i, p in enumerate(pages) if "Errata of the published solutions" in p]
    appendix = [i for i, p in enumerate(pages) if "Appendices: full worked solutions" in p]
    assert at and appendix and at[-1] < appendix[0]
    tex = (out / "answer-key.tex").read_text()
    positions = [tex.find(rf"\hypertarget{{problem:{p.id}}}") for p in builtins()]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)


def test_every_builtin_answers_a_seed_question():
    covered = {q.id for q in QUESTIONS if q.id}
    assert {p.id for p in builtins()} <= covered
    assert all(q.reason for q in QUESTIONS if q.id is None)


def test_key_tex_is_deterministic(tmp_path, capsys):
    assert cli.main(["key", "--out", str(tmp_path / "a"), "--no-pdf"]) == 0
    assert cli.main(["key", "--out", str(tmp_path / "b"), "--no-pdf"]) == 0
    a = (tmp_path / "a" / "answer-key.tex").read_bytes()
    assert a == (tmp_path / "b" / "answer-key.tex").read_bytes()
    assert not (tmp_path / "a" / "answer-key.pdf").exists()
    assert "wrote" in capsys.readouterr().out


def test_only_and_unknown_id(tmp_path, capsys):
    assert cli.main(["key", "--out", str(tmp_path), "--no-pdf", "--only", "mlp-relu-regression"]) == 0
    tex = (tmp_path / "answer-key.tex").read_text()
    assert tex.count(r"\section*{Appendix ") == 1 and "mlp-relu-regression" in tex
    assert r"\begin{finalanswer}{Final answer}" in tex      # seed 004 Q2, answered first
    assert "(not in this key)" in tex
    assert cli.main(["key", "--out", str(tmp_path / "x"), "--only", "no-such-problem"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("derive: error: --only:")
    assert not (tmp_path / "x").exists()


def test_without_tex_the_key_still_writes_its_tex(tmp_path, monkeypatch, capsys):
    import derive.document.key

    monkeypatch.setattr(derive.document.key, "tex_engine", lambda: None)
    assert cli.main(["key", "--out", str(tmp_path), "--only", "mlp-relu-regression"]) == 0
    assert (tmp_path / "answer-key.tex").exists() and not (tmp_path / "answer-key.pdf").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pdflatex" in err[0] and "install" in err[0]


@needs_tex
def test_latex_failure_in_the_key_keeps_the_good_pdf(tmp_path, monkeypatch, capsys):
    import derive.document.key

    good = b"%PDF-1.5 an earlier good key"
    (tmp_path / "answer-key.pdf").write_bytes(good)
    real = derive.document.key.key_document
    monkeypatch.setattr(derive.document.key, "key_document",
                        lambda *a, **k: real(*a, **k).replace(r"\end{document}", r"\undefinedmacro" + "\n\\end{document}"))
    assert cli.main(["key", "--out", str(tmp_path), "--only", "mlp-relu-regression"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert re.match(r"derive: error: LaTeX: answer-key\.tex line \d+: Undefined control sequence", err[0])
    assert (tmp_path / "answer-key.pdf").read_bytes() == good
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_errata_section_without_the_module(monkeypatch):
    import derive.document.key

    monkeypatch.setattr(derive.document.key, "errata_findings", lambda solved=None: None)
    tex = derive.document.key.key_document(builtins()[:1])
    assert "Errata are not yet available" in tex


def test_errata_rendered_literally():
    from derive.document.key import key_document

    finding = {"seed": "004", "question": "Q2", "quantity": "w3", "written": ".2 + 0.5 * .175 = .2875",
               "right": "-0.2", "why": "sign of w3 lost & 50% of #1 {x}_y"}
    tex = key_document(builtins()[:1], errata=[finding])
    assert r"sign of w3 lost \& 50\% of \#1 \{x\}\_y" in tex
    assert r"\texttt{.2 + 0.5 * .175 = .2875}" in tex


def test_errata_findings_shape():
    from derive.document.key import ERRATA_FIELDS, errata_findings

    found = errata_findings()
    if found is None:       # derive.document.errata not written yet: the key says so
        return
    assert all(set(f) == set(ERRATA_FIELDS) for f in found)
    assert all(isinstance(v, str) for f in found for v in f.values())


def test_numbers_helper_is_independent():
    assert _shown(0.1875, "3/16") == "0.1875"
    assert _shown(58 / 77, "58/77") is None
    assert _shown(0.103778183520324) == "0.103778"
    assert math.isclose(float(_shown(-0.175, "-7/40")), -0.175)
