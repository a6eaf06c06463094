"""derive variants --export moodle|qti|csv: each file parsed back and checked
field by field against the structure its platform reads, with every number
compared to the variant's answers.yaml (the key) and every tolerance to the
grading policy's max(rtol*|value|, atol).

Moodle's Cloze fields are read with Moodle's own patterns (ANSWER_REGEX and
NUMERICAL_ALTERNATIVE_REGEX of question/type/multianswer/questiontype.php),
translated to Python, so a field Moodle would not see fails here.
"""
import csv
import io
import math
import re
import zipfile
from pathlib import Path

import pytest
import yaml
from lxml import etree

from derive import cli
from derive.export import _entries
from derive.safetext import csv_uncell

RTOL, ATOL = 1e-3, 1e-9

# Moodle's Cloze grammar (qtype_multianswer), as Python regular expressions
_NUMBER = r"-?(([0-9]+[.,]?[0-9]*|[.,][0-9]+)([eE][-+]?[0-9]+)?)"
_NUMERICAL_ALT = re.compile(r"^(" + _NUMBER + r")(:" + _NUMBER + r")?$")
_ALT = r"(=|%(-?[0-9]+)%)?(.+?(?<!\\|&)(?=[~#}]|$))(#(.*?(?<!\\)(?=[~}]|$)))?"
_TYPES = (r"(NUMERICAL|NM)|(MULTICHOICE|MC)|(MULTICHOICE_V|MCV)|(MULTICHOICE_H|MCH)|"
          r"(SHORTANSWER|SA|MW)|(SHORTANSWER_C|SAC|MWC)")
ANSWER_REGEX = re.compile(r"\{([0-9]*):(" + _TYPES + r"):(" + _ALT + r"(~" + _ALT + r")*)\}")

HOSTILE_SPEC = """\
title: "Net {1:SHORTANSWER:=pwned} </text> $$x$$ / slash"
question: "Costs $$5 \\\\(not maths\\\\) <script>alert(1)</script> {2:NM:=1:0}"
inputs: {x: 0.5}
targets: {t: 0.2}
parameters: {w: 0.4, c: -0.6}
forward:
  u: tanh(w*x)
  o: c*u
loss: (o - t)**2
optimizer: {rule: momentum, lr: 0.2}
"""


def make(tmp_path, target, fmt, count=3, seed=7, extra=()):
    out = tmp_path / "v"
    argv = ["variants", str(target), "--count", str(count), "--seed", str(seed), "--out", str(out),
            "--no-pdf", "--jobs", "1", "--export", fmt, "--rtol", str(RTOL), "--atol", str(ATOL), *map(str, extra)]
    assert cli.main(argv) == 0
    return out


def key_numbers(out: Path, number: int) -> list:
    """(name, value) of every asked number of a variant, from its answers.yaml."""
    answers = yaml.safe_load((out / f"variant-{number:02d}" / "answers.yaml").read_text())
    rows = []
    for name, value in answers.items():
        for index, v in _entries(value):
            rows.append((f"{name}[{','.join(map(str, index))}]" if index else name, v))
    return rows


def policy(v):
    return max(RTOL * abs(v), ATOL)


def parse(data: bytes):
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


# -- Moodle XML ----------------------------------------------------------------------------------

def cloze_fields(html: str) -> list:
    """(value, tolerance) of every Cloze field Moodle finds, checking each is a
    one-mark numerical field with one right answer."""
    out = []
    for m in ANSWER_REGEX.finditer(html):
        assert m.group(1) == "1" and m.group(3), m.group(0)          # weight 1, NUMERICAL
        alt = re.fullmatch(_ALT, m.group(9))
        assert alt and alt.group(1) == "=" and alt.group(4) is None, m.group(0)
        num = _NUMERICAL_ALT.match(alt.group(3))
        assert num and num.group(6), m.group(0)                    # a value and an error margin
        out.append((float(num.group(1)), float(num.group(6))))
    return out


@pytest.fixture(scope="module")
def relu_moodle(tmp_path_factory):
    out = make(tmp_path_factory.mktemp("moodle"), "mlp-relu-regression", "moodle")
    return out, parse((out / "variants-moodle.xml").read_bytes())


def test_moodle_structure_field_by_field(relu_moodle):
    out, quiz = relu_moodle
    assert quiz.tag == "quiz"
    questions = quiz.findall("question")
    assert [q.get("type") for q in questions] == ["category", "cloze", "cloze", "cloze"]
    assert questions[0].findtext("category/text") == "$course$/top/Two-layer ReLU regression net, one SGD step"
    for k, q in enumerate(questions[1:], start=1):
        assert q.findtext("name/text") == f"Two-layer ReLU regression net, one SGD step, variant {k:02d}"
        assert q.find("questiontext").get("format") == "html"
        assert q.find("generalfeedback").get("format") == "html"
        assert float(q.findtext("penalty")) == pytest.approx(1 / 3, abs=1e-6)
        assert q.findtext("hidden") == "0"
        assert q.findtext("idnumber") == f"mlp-relu-regression-variant-{k:02d}"


def test_moodle_numbers_are_the_keys_with_the_policys_tolerance(relu_moodle):
    out, quiz = relu_moodle
    for k, q in enumerate(quiz.findall("question[@type='cloze']"), start=1):
        fields = cloze_fields(q.findtext("questiontext/text"))
        key = key_numbers(out, k)
        assert len(fields) == len(key) == 29
        for (value, tol), (name, expected) in zip(fields, key):
            assert value == expected, name
            assert tol == pytest.approx(policy(expected), rel=1e-11), name


def test_moodle_statement_and_feedback_are_typeset(relu_moodle):
    out, quiz = relu_moodle
    values = yaml.safe_load((out / "variant-01" / "values.yaml").read_text())
    q = quiz.find("question[@type='cloze']")
    text = q.findtext("questiontext/text")
    # the givens of this variant, typeset for the MathJax filter
    assert rf"<td>\(w_{{1}}\)</td><td>parameter</td><td>\({values['w1']:g}\)</td>" in text
    assert text.count(r"\(") == text.count(r"\)") > 29
    assert re.search(r"<td>\\\([^<]*\\partial w_\{1\}[^<]*\\\)</td><td>\{1:NUMERICAL:=", text)
    feedback = q.findtext("generalfeedback/text")
    answers = yaml.safe_load((out / "variant-01" / "answers.yaml").read_text())
    assert "<h3>Backward pass" in feedback and r"\[\begin{aligned}" in feedback
    assert f"{answers['L']:g}" in feedback
    assert not cloze_fields(feedback)


def test_moodle_vectors_entry_by_entry(tmp_path):
    out = make(tmp_path, "rnn-bptt", "moodle", count=1)
    quiz = parse((out / "variants-moodle.xml").read_bytes())
    text = quiz.findtext("question[@type='cloze']/questiontext/text")
    fields = cloze_fields(text)
    key = key_numbers(out, 1)
    assert len(fields) == len(key) > 19
    assert [v for v, _ in fields] == [v for _, v in key]
    assert re.search(r"\\left\((\\mathbf\{)?Z\}?\\right\)_\{1,2\}", text)     # Z's entry (1, 2)


def test_moodle_user_text_cannot_inject(tmp_path):
    spec = tmp_path / "hostile.yaml"
    spec.write_text(HOSTILE_SPEC)
    out = make(tmp_path, spec, "moodle", count=1)
    quiz = parse((out / "variants-moodle.xml").read_bytes())
    q = quiz.find("question[@type='cloze']")
    text = q.findtext("questiontext/text")
    feedback = q.findtext("generalfeedback/text")
    assert len(cloze_fields(text)) == len(key_numbers(out, 1))     # no field from the title or question
    assert not cloze_fields(feedback)
    both = text + feedback                  # the question is in the statement, the key or both
    assert "<script>" not in both and "&lt;script&gt;" in both
    assert "$$" not in both and r"\(not" not in both
    assert quiz.findtext("question[@type='category']/category/text").endswith("slash")
    assert "//" in quiz.findtext("question[@type='category']/category/text")
    assert q.findtext("name/text").startswith("Net {1:SHORTANSWER:=pwned} </text>")


# -- QTI -----------------------------------------------------------------------------------------

QTI = "{http://www.imsglobal.org/xsd/ims_qtiasiv1p2}"
CP = "{http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1}"
CANVAS = "{http://canvas.instructure.com/xsd/cccv1p0}"


@pytest.fixture(scope="module")
def relu_qti(tmp_path_factory):
    out = make(tmp_path_factory.mktemp("qti"), "mlp-relu-regression", "qti")
    return out, zipfile.ZipFile(out / "variants-qti.zip")


def test_qti_manifest_references_resolve(relu_qti):
    out, zf = relu_qti
    names = set(zf.namelist())
    manifest = parse(zf.read("imsmanifest.xml"))
    assert manifest.tag == CP + "manifest"
    assert manifest.findtext(f"{CP}metadata/{CP}schema") == "IMS Content"
    resources = manifest.findall(f"{CP}resources/{CP}resource")
    ids = {r.get("identifier") for r in resources}
    hrefs = {f.get("href") for r in resources for f in r.findall(f"{CP}file")}
    assert hrefs == names - {"imsmanifest.xml"}
    for r in resources:
        for dep in r.findall(f"{CP}dependency"):
            assert dep.get("identifierref") in ids
        if r.get("href"):
            assert r.get("href") in names
    quizzes = [r for r in resources if r.get("type") == "imsqti_xmlv1p2"]
    assert len(quizzes) == 3


def test_qti_items_are_the_keys_numbers(relu_qti):
    out, zf = relu_qti
    manifest = parse(zf.read("imsmanifest.xml"))
    quizzes = [r for r in manifest.iter(CP + "resource") if r.get("type") == "imsqti_xmlv1p2"]
    for k, res in enumerate(quizzes, start=1):
        quiz_id = res.get("identifier")
        doc = parse(zf.read(res.find(CP + "file").get("href")))
        assert doc.tag == QTI + "questestinterop"
        assessment = doc.find(QTI + "assessment")
        assert assessment.get("ident") == quiz_id and assessment.get("title").endswith(f"variant {k:02d}")
        items = assessment.findall(f"{QTI}section/{QTI}item")

        def qtype(item):
            for f in item.iter(QTI + "qtimetadatafield"):
                if f.findtext(QTI + "fieldlabel") == "question_type":
                    return f.findtext(QTI + "fieldentry")

        assert qtype(items[0]) == "text_only_question"
        key = key_numbers(out, k)
        assert len(items) - 1 == len(key) == 29
        for item, (name, expected) in zip(items[1:], key):
            assert qtype(item) == "numerical_question" and item.get("title") == name
            fib = item.find(f"{QTI}presentation/{QTI}response_str/{QTI}render_fib")
            assert fib.get("fibtype") == "Decimal"
            cond = item.find(f"{QTI}resprocessing/{QTI}respcondition[@continue='No']")
            assert float(cond.findtext(f"{QTI}conditionvar/{QTI}or/{QTI}varequal")) == expected
            low = float(cond.findtext(f"{QTI}conditionvar/{QTI}or/{QTI}and/{QTI}vargte"))
            high = float(cond.findtext(f"{QTI}conditionvar/{QTI}or/{QTI}and/{QTI}varlte"))
            assert high - expected == pytest.approx(policy(expected), rel=1e-9)
            assert expected - low == pytest.approx(policy(expected), rel=1e-9)
            assert cond.findtext(QTI + "setvar") == "100"
        meta = parse(zf.read(f"{quiz_id}/assessment_meta.xml"))
        assert meta.tag == CANVAS + "quiz" and meta.get("identifier") == quiz_id
        assert float(meta.findtext(CANVAS + "points_possible")) == 29


def test_qti_zip_is_reproducible(relu_qti, tmp_path):
    out, zf = relu_qti
    again = make(tmp_path, "mlp-relu-regression", "qti")
    assert (again / "variants-qti.zip").read_bytes() == (out / "variants-qti.zip").read_bytes()


# -- CSV -----------------------------------------------------------------------------------------

def test_csv_rows_are_the_keys(tmp_path):
    out = make(tmp_path, "mlp-relu-regression", "csv")
    rows = list(csv.reader(io.StringIO((out / "variants-answers.csv").read_text())))
    key = key_numbers(out, 1)
    assert rows[0] == ["variant"] + [n for n, _ in key]
    assert len(rows) == 4
    for k, row in enumerate(rows[1:], start=1):
        assert row[0] == str(k)
        assert [float(c) for c in row[1:]] == [v for _, v in key_numbers(out, k)]


def test_csv_roster_rows_and_formula_cells(tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text('id\nann\n"=HYPERLINK(""http://x"",""y"")"\n+cmd\n-2+3\n')
    out = make(tmp_path, "mlp-relu-regression", "csv", count=2, extra=["--roster", roster])
    rows = list(csv.reader(io.StringIO((out / "variants-answers.csv").read_text())))
    dealt = {csv_uncell(k): v for k, v in csv.reader(io.StringIO((out / "roster.csv").read_text()))}
    assert rows[0][:3] == ["id", "variant", "z1"]
    assert [r[0] for r in rows[1:]] == ["ann", "'=HYPERLINK(\"http://x\",\"y\")", "'+cmd", "'-2+3"]
    for r in rows[1:]:
        sid = r[0][1:] if r[0].startswith("'") else r[0]
        assert r[1] == dealt[sid]
        assert [float(c) for c in r[2:]] == [v for _, v in key_numbers(out, int(r[1]))]
    assert any(c.startswith("-0.") for r in rows[1:] for c in r[2:])   # negative numbers stay numbers


def test_min_sig_accepts_roundings_to_that_many_figures(tmp_path):
    out = make(tmp_path, "mlp-tanh-sigmoid", "moodle", count=2, extra=["--min-sig", "4"])
    quiz = parse((out / "variants-moodle.xml").read_bytes())
    for k, q in enumerate(quiz.findall("question[@type='cloze']"), start=1):
        text = q.findtext("questiontext/text")
        assert "Give at least 4 significant figures" in text
        for (value, tol), (name, expected) in zip(cloze_fields(text), key_numbers(out, k)):
            assert value == expected
            rounded = float(f"{expected:.4g}")            # what a student writes
            assert abs(rounded - expected) <= tol, name
            assert tol >= policy(expected) * (1 - 1e-11)
            if expected:                                   # and no more than half a unit of the 4th figure
                unit = 10.0 ** (math.floor(math.log10(abs(expected))) - 3)
                assert tol <= max(policy(expected), unit / 2) * (1 + 1e-11), name
