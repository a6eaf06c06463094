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


@needs_tex
def test_ranges_are_dashes_not_two_hyphens(key):
    """An escaped "--" prints as two hyphens ("Q2.4--2.5", "precision--recall"); a range is an en dash."""
    _, text, _, _ = key
    hits = [line.strip() for line in text.splitlines() if "--" in line]
    assert not hits, hits[:5]


@needs_tex
def test_every_question_but_the_programming_ones_is_answered_in_the_coverage_table(key):
    """A coverage row finds its part whatever dash its range is written with (Q2.4-2.5 against Q2.4–2.5)."""
    _, text, _, _ = key
    uncovered = [line.strip() for line in text.splitlines() if "not covered" in line]
    assert uncovered and all(line.endswith("not covered: programming") for line in uncovered), uncovered


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


# ---------------------------------------------------------------------------
# Layout: no page of the key is left near-empty by a drawing, a table or a
# verification block that did not fit

#: a page (not the last of a part) is filled to at least this share of its text height
MIN_FILL = 0.7
#: what opens a part of the key on a fresh page (the page before it may end short)
PART_OPENINGS = ("Seed 000:", "Errata of the published solutions", "Appendices: full worked solutions")


def page_lines(pdf) -> list:
    """Each page's text lines, top to bottom, as (bottom y, text), from
    pdftotext's word boxes (the page number in the foot left out), and each
    page's height."""
    xml = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, check=True,
                         text=True).stdout
    pages = []
    for page in xml.split("<page ")[1:]:
        height = float(re.search(r'height="([\d.]+)"', page).group(1))
        words = [(float(y1), w) for y1, w in re.findall(r'yMax="([\d.]+)">([^<]*)<', page)]
        body = [(y, w) for y, w in words if y < height - 50]           # 2 cm margin: the foot is below it
        lines = {}
        for y, w in body:
            lines.setdefault(round(y), []).append(w)
        pages.append((height, [(y, " ".join(ws)) for y, ws in sorted(lines.items())]))
    return pages


def near_empty_pages(pages) -> list:
    """Pages whose text stops above MIN_FILL of the text height, other than the
    last page of the document and the page before a part that opens a page."""
    out = []
    for k, (height, lines) in enumerate(pages[:-1]):
        following = pages[k + 1][1]
        if following and following[0][1].startswith(PART_OPENINGS):
            continue
        bottom = lines[-1][0] if lines else 0.0
        if bottom < MIN_FILL * (height - 57):
            out.append((k + 1, round(bottom / (height - 57), 2), following[0][1] if following else ""))
    return out


@needs_tex
def test_no_page_of_the_key_is_near_empty(key):
    """A drawing too tall for the rest of a page floats to the next one while
    the text goes on (the attention diagram of seed 003 1.c used to leave half
    of a page empty), tall tables come in pieces, a verification list breaks
    between its rows."""
    out, _, _, _ = key
    pages = page_lines(out / "answer-key.pdf")
    assert len(pages) > 30
    assert not near_empty_pages(pages), near_empty_pages(pages)


@needs_tex
def test_the_last_page_is_more_than_a_verification_block(key):
    out, _, _, _ = key
    _, last = page_lines(out / "answer-key.pdf")[-1]
    texts = [t for _, t in last]
    before = texts[:next((i for i, t in enumerate(texts) if t == "Verification"), len(texts))]
    assert before, texts


def test_the_layout_check_finds_a_half_empty_page():
    """near_empty_pages is not vacuous: the page the attention diagram used to leave half empty."""
    full = (842.0, [(100.0 + 12 * i, "text") for i in range(55)])
    half = (842.0, [(100.0 + 12 * i, "text") for i in range(25)])
    figure_next = (842.0, [(80.0, "yi"), (700.0, "Attention in an encoder-decoder translator")])
    assert near_empty_pages([full, half, figure_next, full]) == [(2, 0.49, "yi")]
    appendices = (842.0, [(80.0, "Appendices: full worked solutions")])
    assert near_empty_pages([full, half, appendices]) == []


@needs_tex
def test_figure_captions_stay_with_their_figures_and_tables_with_their_captions(key):
    """Figures float with their caption inside them; a table's caption, or a
    line leading in to equations or a table, is never the last line of a page
    (LaTeX's invitation to break before a list is off)."""
    out, _, tex, _ = key
    assert r"\@beginparpenalty=\@M" in tex
    # a paragraph ends as a paragraph: the verification line is never run into the text before it
    assert not re.search(r"(?<!\\par)(?<!\n)\n\{\\small\\textit\{Verification", tex)
    for m in re.finditer(r"\\begin\{figure\}\[htbp\](.*?)\\end\{figure\}", tex, re.S):
        assert r"\begin{minipage}{\linewidth}" in m.group(1)
        assert r"\derivecaption" in m.group(1) or "caption" not in m.group(1)
    captions = re.findall(r"\{\\small\\itshape ([A-Z][^{}$]{12,40})", tex)
    pages = page_lines(out / "answer-key.pdf")
    for _, lines in pages:
        if lines:
            last = lines[-1][1]
            assert not any(last.startswith(c[:25]) for c in captions), last
            # a lead-in ("... in matrix form:", "... against the independent checks:") stays with what it leads to
            assert not last.rstrip().endswith(":"), last


def questions_left_at_a_page_foot(pages) -> list:
    """Pages whose last lines hold a sub-question's heading or statement, its
    answer box on the next page."""
    out = []
    for k, (_, lines) in enumerate(pages):
        tail = [t for _, t in lines[-3:]]
        if any(t.startswith("Question.") for t in tail) or (tail and re.match(r"Seed \d{3} \S+$", tail[-1])):
            out.append((k + 1, tail[-1]))
    return out


@needs_tex
def test_a_question_never_ends_a_page_without_its_answer(key):
    """The statement is glued to its boxed answer (seed 003 3.b and seed 004
    Q1(b) used to end a page, their boxes on the next)."""
    out, _, _, _ = key
    pages = page_lines(out / "answer-key.pdf")
    assert not questions_left_at_a_page_foot(pages), questions_left_at_a_page_foot(pages)


def test_the_question_check_finds_a_question_at_a_page_foot():
    page = (842.0, [(700.0, "Seed 003 3.b"), (730.0, "Question. Upsampling and skip connections in FCNs.")])
    box = (842.0, [(80.0, "Model answer: an outline, not computed")])
    assert questions_left_at_a_page_foot([page, box]) == [(1, "Question. Upsampling and skip connections in FCNs.")]


# ---------------------------------------------------------------------------
# The LSTM's notation: every name beside W_q carries q (the candidate g = tanh(z_c),
# z_c = W_c [h_prev; x] + b_c), in the key, in `solve --format tex` and on a variant sheet

LSTM_CLASH = re.compile(r"z_\{?g\}?")


def test_the_lstm_notation_is_one_notation_everywhere(key, tmp_path):
    _, _, tex, _ = key
    assert not LSTM_CLASH.search(tex)
    # the key says what z_c is, beside the gradients that use it
    assert r"z_{c} = W_{c} [h_{\text{prev}}; x] + b_{c}" in tex and r"\partial z_{c}" in tex
    assert cli.main(["solve", "lstm-cell", "--format", "tex", "--out", str(tmp_path / "l.tex")]) == 0
    solved = (tmp_path / "l.tex").read_text()
    assert not LSTM_CLASH.search(solved) and r"\partial z_{c}" in solved
    assert cli.main(["variants", "lstm-cell", "--count", "1", "--seed", "3", "--out", str(tmp_path / "v"),
                     "--no-pdf"]) == 0
    sheets = [p.read_text() for p in (tmp_path / "v").rglob("*.tex")]
    assert sheets and not any(LSTM_CLASH.search(s) for s in sheets)
    assert any(r"z_{c} = W_{c}" in s for s in sheets)
    assert LSTM_CLASH.search(r"\frac{\partial L}{\partial z_{g}}")      # the check would see the old name


def test_a_hand_answer_may_still_name_the_candidates_argument_z_g():
    from derive.problems.lstm import _resolve
    resolve = _resolve({"z_c": None, "g": None, "W_c": None})
    assert resolve("z_g") == "z_c" and resolve("z_c") == "z_c" and resolve("ctilde_t") == "g"
