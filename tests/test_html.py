"""The key as a web page, read back as a parser (and a person's eye) sees it."""
import re
import shutil
from html.parser import HTMLParser

import pytest

from derive.typeset import blocks as B
from derive import cli
from derive.document.html import render_blocks
from derive.typeset.mathml import mathml
from derive.problems import load

needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftocairo") is None,
                               reason="TeX Live / poppler not installed (install.sh installs them)")


class Page(HTMLParser):
    """Tags, attributes and text of a page."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text = [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("svg-cache")


@pytest.fixture(scope="module")
def relu_page(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("html") / "relu.html"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DERIVE_CACHE", str(cache))
        assert cli.main(["solve", "mlp-relu-regression", "--format", "html", "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def test_mathml_escapes_user_text():
    out = mathml(r"\text{<script>alert(1)</script> & x}")
    assert "<script>" not in out and "&lt;script&gt;" in out and "&amp;" in out


def test_mathml_spacing_as_tex():
    # a sign after an opening parenthesis is unary; flat fences do not stretch
    out = mathml(r"\left(-0.2\right)")
    assert '<mo lspace="0" rspace="0">−</mo>' in out
    assert out.count('stretchy="false"') == 2
    assert 'stretchy="true"' in mathml(r"\left[\begin{matrix}1\\2\end{matrix}\right]")
    assert "<mi>ReLU</mi>" in mathml(r"\operatorname{ReLU}{\left(z\right)}")


def test_prose_and_captions_are_escaped():
    page = render_blocks([B.Heading("<b>x</b>"), B.prose("a < b & <i>c</i>", B.Math("x", "x")),
                          B.Table(("<th>",), (("<td>",),), caption="<cap>")])
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<i>" not in page and "&lt;th&gt;" in page and "&lt;cap&gt;" in page


@needs_tex
def test_solution_page_is_self_contained_and_shows_the_computed_answers(relu_page):
    page = Page(relu_page)
    refs = [v for tag, k, v in page.attrs if k in ("src", "href") and not v.startswith("#")]
    assert refs == [], refs                      # nothing is loaded: no file, no URL
    assert not re.search(r"https?://", relu_page.replace("http://www.w3.org/2000/svg", "")
                         .replace("http://www.w3.org/1999/xlink", ""))
    assert page.tags.count("math") > 50 and "svg" in page.tags
    assert "default-src 'none'" in relu_page      # and the browser is told so
    text = "".join(page.text).replace("\u2212", "-")
    solution = load("mlp-relu-regression").solve().to_json()
    for name, g in solution["gradients"].items():
        assert format(g["value"], ".6g") in text, name
    for name, v in solution["updates"].items():
        assert format(v, ".6g") in text, name


@needs_tex
def test_key_page_has_every_problem_and_figure_and_is_deterministic(tmp_path, cache, monkeypatch):
    from derive.document.key import select

    monkeypatch.setenv("DERIVE_CACHE", str(cache))
    ids = ["mlp-relu-regression", "interpolated-ap"]
    args = ["key", "--format", "html"] + [a for i in ids for a in ("--only", i)]
    assert cli.main(args + ["--out", str(tmp_path / "a")]) == 0
    first = (tmp_path / "a" / "answer-key.html").read_text(encoding="utf-8")
    # a second build from a fresh cache compiles the figures again: same bytes
    monkeypatch.setenv("DERIVE_CACHE", str(tmp_path / "fresh"))
    assert cli.main(args + ["--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "answer-key.html").read_text(encoding="utf-8") == first
    page = Page(first)
    figures = sum(isinstance(b, B.Figure) for p in select(ids) for b in p.solve().blocks())
    assert page.tags.count("svg") == figures >= 2
    # each figure's glyph ids are its own, so two figures never share glyphs
    ids_seen = re.findall(r'\bid="([^"]+)"', first)
    assert len(ids_seen) == len(set(ids_seen))
    for problem_id in ids:
        assert f'id="problem-{problem_id}"' in first
    assert "Coverage at a glance" in first and "Errata of the published solutions" in first


def test_hostile_title_is_escaped(tmp_path, cache, monkeypatch):
    monkeypatch.setenv("DERIVE_CACHE", str(cache))
    spec = tmp_path / "net.yaml"
    spec.write_text("name: <script>alert(1)</script>\ninputs: {x: 1}\ntargets: {y: 0}\n"
                    "parameters: {w: 0.5}\nforward:\n  o: w*x\nloss: (o - y)**2\n", encoding="utf-8")
    assert cli.main(["solve", str(spec), "--format", "html", "--out", str(tmp_path / "p.html")]) == 0
    page = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_preview_of_a_latex_number_shows_it_without_dollars():
    from derive.serve.api import handle

    out = handle("preview", {"target": "mlp-relu-regression", "text": r"$-\frac{7}{40}$"})
    assert out["kind"] == "number" and out["latex"] == r"-\frac{7}{40}" and "$" not in out["mathml"]
    assert "<mfrac>" in out["mathml"]


def test_sums_and_max_take_limits_below_in_a_display():
    assert "<munderover><mo movablelimits=\"true\">∑</mo>" in mathml(r"\sum_{j=1}^{m} x_{j}")
    assert "<munder><mo movablelimits=\"true\"" in mathml(r"\max_{x} p")
    assert "<msub><mi>x</mi>" in mathml(r"x_{j}")       # an ordinary subscript stays one


def test_derives_own_words_have_their_maths_typeset_and_user_text_is_escaped(monkeypatch):
    tex = getattr(B, "Tex", None)
    if tex is None:       # blocks.Tex (typeset prose) is not in this build: the same class shape
        tex = type("Tex", (str,), {"__slots__": ()})
        monkeypatch.setattr(B, "Tex", tex, raising=False)
    page = render_blocks([B.Heading(tex("Step $t = 3$")), B.Heading("plain $t$ <b>"),
                          B.Table((tex("$x_{1}$"),), (("a",),), caption=tex("with $n = 2$ & more"))])
    assert "<h3>Step <math" in page and "plain $t$ &lt;b&gt;" in page
    assert "<th" in page and "<msub><mi>x</mi>" in page and "&amp; more" in page
