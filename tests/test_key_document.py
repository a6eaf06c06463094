"""The answer key as a course hands it out: read back from the compiled PDF
(pdftotext), it carries no ASCII maths and no tool internals, every computed
sub-question has a boxed final answer, and the errata are the ones a TA can
trust (seed 001 Q5's IoU, the ceil-mode POOL-2, the notation remark)."""
import re
import shutil
import subprocess

import pytest

from derive import cli
from derive.document.coverage import QUESTIONS
from derive.document.key import key_document, select
from derive.document.keyparts import COMPUTED, key_parts

needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
                               reason="TeX Live / poppler not installed (install.sh installs them)")

#: ASCII maths a typeset document never shows (in prose, captions, tables)
ASCII_MATHS = [r"\w_t\b", r"_\(", r"\^", r"\|\|", r"<=", r">=", r"\d x \d", r"\dx\d", r"e-0\d", r"\w_\{",
               r"[A-Za-z]_[A-Za-z0-9]"]
#: what a course document must not mention
INTERNALS = [r"derive\.\w", r"(?i)sympy", r"\bengine\b", r"derive (check|solve|key)", r"right value:",
             r"documented in", r"operation table", r"\[0\] "]


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    out = tmp_path_factory.mktemp("key-document")
    assert cli.main(["key", "--out", str(out)]) == 0
    pdf = out / "answer-key.pdf"

    def read(mode):
        return subprocess.run(["pdftotext", mode, str(pdf), "-"], capture_output=True, check=True,
                              text=True).stdout if pdf.exists() else ""

    return out, read("-layout"), (out / "answer-key.tex").read_text(), read("-raw")


def _main_part(text: str) -> str:
    return text.split("Appendices: full worked solutions")[0]


@needs_tex
@pytest.mark.parametrize("pattern", ASCII_MATHS)
def test_no_ascii_maths_in_the_pdf(key, pattern):
    """A hit must show in both of pdftotext's readings: typeset sub- and
    superscripts come out differently in each (``w^1_{11} x_1`` is "11 x 1" in
    the layout reading, "11x1" in the raw one), ASCII maths the same in both."""
    _, text, _, raw = key
    both = {m.group(0) for m in re.finditer(pattern, text)} & {m.group(0) for m in re.finditer(pattern, raw)}
    hits = [line.strip() for line in text.splitlines() if any(h in line for h in both)]
    assert not both, hits[:5]


@needs_tex
@pytest.mark.parametrize("pattern", INTERNALS)
def test_no_tool_internals_in_the_pdf(key, pattern):
    _, text, _, _ = key
    hits = [line.strip() for line in text.splitlines() if re.search(pattern, line)]
    assert not hits, hits[:5]


def test_the_ascii_checks_would_catch_the_old_transcript():
    """The patterns above are not vacuous: each matches what the key used to print."""
    old = ["H_t = f(U I_t + W H_(t-1))", "E_t = 1/2 ||O_t - Y_t||^2", "f' <= 1", "2 x 2", "3x3", "9.41e-07"]
    assert all(any(re.search(p, s) for p in ASCII_MATHS) for s in old)
    assert re.search(INTERNALS[0], "documented in derive.problems.rnn")


@needs_tex
def test_every_computed_sub_question_has_a_boxed_answer(key):
    """Each part heading of the main part ("Seed 000 Q1(a)") is followed by its
    "Final answer" box before the next part; essays say they are outlines."""
    _, text, tex, _ = key
    main = _main_part(text)
    parts = key_parts({p.id: p.solve() for p in select()})
    heads = [f"Seed {p.seed} {p.label}" for p in parts]
    at = []
    for h in heads:
        m = re.search(rf"^\s*{re.escape(h)}\s*$", main, flags=re.M)
        assert m, f"no heading {h!r} in the main part"
        at.append(m.start())
    assert at == sorted(at), "parts out of the seeds' order"
    for k, (p, start) in enumerate(zip(parts, at)):
        body = main[start:at[k + 1] if k + 1 < len(at) else len(main)]
        wanted = "Model answer: an outline, not computed" if p.kind == "outline" else "Final answer"
        assert wanted in body, f"{p.seed} {p.label}: no {wanted!r}"
    # every question of the coverage table that a built-in answers has a computed part
    computed = {(p.seed, p.label) for p in parts if p.kind == COMPUTED}
    for q in QUESTIONS:
        if q.id and q.seed != "001":
            stem = q.label.split("(")[0].split("-")[0]
            assert any(s == q.seed and lab.split("(")[0].split("-")[0] == stem for s, lab in computed), q


@needs_tex
def test_main_part_is_short_enough_to_grade_from(key):
    _, text, _, _ = key
    pages = text.split("\f")
    first_appendix = next(i for i, p in enumerate(pages) if "Appendices: full worked solutions" in p)
    errata = next(i for i, p in enumerate(pages) if "Errata of the published solutions" in p
                  and "Severity" in p)
    assert errata - 1 <= 25, f"{errata - 1} pages of answers"       # page 1 is the coverage
    assert first_appendix > errata
    # a grading table per seed with answers
    assert len(re.findall(r"Grading table, seed \d{3}", text)) == 4


def test_errata_a_ta_can_trust():
    tex = key_document(select())
    summary = tex[tex.index(r"\section*{Errata of the published solutions}"):tex.index(r"\appendix")]
    # seed 001 Q5: 0.25 is right for the box the student used; the slip is the written size
    assert "inconsistent statement" in summary and "IoU exactly $0.25$" in tex
    assert "no simple slip explains" not in tex
    # the ceil-mode POOL-2 is an accepted alternative, beside Q7(a), not an error of Q5(a)
    assert r"Published answer, accepted:} $28 \times 28 \times 128$" in tex
    pool = summary[summary.index(r"28 \times 28 \times 128") - 400:summary.index(r"28 \times 28 \times 128")]
    assert "Q7(a)" in pool and "Q5(a)" not in pool
    # never attribute to the seed what it did not write
    assert "written 0" not in tex and r"\text{the two forms, side by side, as one answer}" in tex
    # notation and loose-but-true are named as such
    assert r"\nabla f(w_t)" in summary and "notation" in summary
    assert "loose but true" in summary and "upper bounded by 1" in summary
    assert "[0] right value" not in tex and "right value:" not in tex


def test_numbers_in_the_key_are_computed(monkeypatch):
    """Change a seed's givens and the boxed answer changes with it: nothing is typed in."""
    from derive.problems import load

    sm = load("softmax").solve({"a": [1, 1, 1, 1, 1]})
    parts = key_parts({"softmax": sm})
    (part,) = [p for p in parts if p.label == "Q7(b)"]
    assert "0.2" in part.short and "0.25" not in part.short
