"""LaTeX rendering: printer forms, escaping, line breaking, figures, compiling."""
import re
import shutil
import subprocess

import jinja2
import pytest
import sympy

from derive.typeset import blocks as B
from derive import cli
from derive.typeset.latex import (DerivePrinter, bold, break_chain, escape, group_latex, latex, math_width, partial,
                          split_sum, superscript)
from derive.typeset.network import network_figure
from derive.problems import load
from derive.document.render import (LatexError, TEXT_WIDTH, blocks_to_latex_fragment, compile_pdf, make_env,
                           render_blocks, solution_document, template_dir)

needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
                               reason="TeX Live / poppler not installed (install.sh installs them)")

HOSTILE = r"Evil \input{/etc/passwd} $5 at 50% & #3 a_b {c} 2^8 ~home \\ \end{document}"


# -- the printer: exact strings for the forms that matter ---------------------------------------

def test_partial_derivative_forms():
    L, w1 = sympy.symbols("L w1", real=True)
    assert partial("L", "w_{1}") == r"\frac{\partial L}{\partial w_{1}}"
    assert latex(sympy.Derivative(L, w1)) == r"\frac{\partial L}{\partial w_{1}}"
    w = sympy.Symbol("w1_12", real=True)
    assert latex(sympy.Derivative(L, w)) == r"\frac{\partial L}{\partial w^{1}_{12}}"


def test_weight_and_group_names():
    assert latex(sympy.Symbol("w2_11", real=True)) == "w^{2}_{11}"
    assert group_latex("W") == r"\mathbf{W}"
    assert group_latex("h_prev") == r"\mathbf{h}_{\text{prev}}"
    assert group_latex("alpha") == r"\boldsymbol{\alpha}"
    assert bold("H_{t}") == r"\mathbf{H}_{t}"
    W = sympy.MatrixSymbol("W", 3, 3)
    H = sympy.MatrixSymbol("H", 3, 1)
    assert DerivePrinter().doprint(W.T * H) == r"\mathbf{W}^{\top} \mathbf{H}"
    assert DerivePrinter({H: r"\mathbf{H}_{t-1}"}).doprint(W * H) == r"\mathbf{W} \mathbf{H}_{t-1}"


def test_superscript_never_doubles():
    assert superscript("w^{1}_{11}", "+") == "{w^{1}_{11}}^{+}"
    assert superscript("w_{1}", "+") == "w_{1}^{+}"
    sol = load("mlp-tanh-sigmoid").solve()
    lhs = [r.lhs.tex for b in sol.blocks() if isinstance(b, B.Equations) for r in b.rows]
    assert "{w^{1}_{11}}^{+}" in lhs
    assert not any(re.search(r"\^\{[^{}]*\}_\{[^{}]*\}\^", t) for t in lhs)


# -- escaping -----------------------------------------------------------------------------------

def test_escape_specials_and_unicode():
    assert escape("50% & $x$ #1 a_b {c}") == r"50\% \& \$x\$ \#1 a\_b \{c\}"
    assert escape(r"\input{x}") == r"\textbackslash{}input\{x\}"
    assert escape("~ ^") == r"\textasciitilde{} \textasciicircum{}"
    assert escape("η ≈ 0.5 → σ") == r"$\eta$ $\approx$ 0.5 $\rightarrow$ $\sigma$"
    assert escape("a\n\nb\nc") == "a\n\nb c"
    assert "U+4E2D" in escape("中")


def test_templates_are_strict_and_found():
    assert (template_dir() / "base.tex.j2").is_file()
    with pytest.raises(jinja2.UndefinedError):
        make_env().from_string(r"\VAR{nothing}").render()
    assert make_env().from_string(r"\VAR{x|escape}").render(x="a&b") == r"a\&b"


# -- line breaking ------------------------------------------------------------------------------

def test_split_sum_respects_groups():
    assert split_sum(r"a + \left(b - c\right) - \frac{d - e}{2}") == ["a", r"+ \left(b - c\right)", r"- \frac{d - e}{2}"]
    assert split_sum(r"-a \cdot \left(-b\right)") == [r"-a \cdot \left(-b\right)"]


def test_break_chain_keeps_every_part_in_order_within_budget():
    parts = [" + ".join(f"w_{{{k}}} x_{{{k}}}" for k in range(30)), r"\frac{1}{2}", "0.5"]
    lines = break_chain(parts, 300.0)
    assert len(lines) > 2
    assert all(math_width(line) <= 300.0 for line in lines)
    joined = " ".join(lines)
    assert all(f"w_{{{k}}} x_{{{k}}}" in joined for k in range(30))
    assert joined.index(r"\frac{1}{2}") < joined.index("0.5")


def test_short_chain_stays_on_one_line():
    tex = render_blocks([B.Equations((B.EqRow(B.Math("z_{1}", "z1"), (B.Math("a", "a"), B.Math("0.3", "0.3"))),))])
    assert r"z_{1} &= \fitrhs{a = 0.3}" in tex


def test_long_chain_is_broken_over_lines():
    long_sum = " + ".join(f"w_{{{k}}} x_{{{k}}}" for k in range(60))
    tex = render_blocks([B.Equations((B.EqRow(B.Math("z", "z"), (B.Math(long_sum, ""), B.Math("1", "1"))),))])
    body = tex[tex.index(r"\begin{align*}"):tex.index(r"\end{align*}")]
    assert body.count(r"\\*") >= 2           # continuation lines, kept on one page
    assert body.rstrip().endswith("= 1}")


# -- blocks ------------------------------------------------------------------------------------

def test_solution_blocks_show_the_question_and_the_network():
    sol = load("mlp-relu-regression").solve()
    tex = solution_document(sol)
    assert r"\textbf{Question.}" in tex
    assert tex.count(r"\begin{tikzpicture}") == 1
    # edges carry weights, read off the graph: w1 goes from x1 into the unit of a1
    fig = next(b for b in sol.blocks() if isinstance(b, B.Figure))
    assert ["x1", "a1", "w1"] in fig.data["edges"] and ["a2", "o1", "w6"] in fig.data["edges"]
    assert fig.data["layers"] == [["x1", "x2"], ["a1", "a2"], ["o1"]]


def test_network_figure_only_for_mlp_shaped_graphs():
    from derive.problems.base import GraphProblem

    not_mlp = GraphProblem({"name": "square", "inputs": {"x": 1}, "targets": {"y": 0}, "parameters": {"w": 1},
                            "forward": {"z": "w*x*x"}, "loss": "(z - y)**2"}, "t.yaml")
    assert network_figure(not_mlp.graph) is None
    assert network_figure(load("mlp-tanh-sigmoid").graph).data["layers"] == [["x1", "x2"], ["h1", "h2"], ["o"]]


def test_figure_kinds_render():
    plot = B.Figure("plot", {"xlabel": "recall", "ylabel": "precision", "logy": True,
                             "series": [{"label": "p_interp", "x": [0, 0.5, 1], "y": [1, 0.5, 0.0], "step": True}]},
                    caption="PR")
    rnn = B.Figure("unrolled-rnn", {"T": 9})
    boxes = B.Figure("boxes", {"boxes": [{"label": "G", "x": 0, "y": 0, "w": 10, "h": 10, "style": "truth"},
                                         {"label": "A", "x": 5, "y": 0, "w": 10, "h": 10, "style": "pred"}]})
    tex = render_blocks([plot, rnn, boxes])
    assert "ymode=log" in tex and "const plot" in tex
    assert "(0,1) (0.5,0.5)" in tex and "(1,0)" not in tex      # y <= 0 has no place on a log axis
    assert r"\addlegendentry{p\_interp}" in tex
    assert "$H_{9}$" in tex and r"$\cdots$" in tex and "$H_{4}$" not in tex
    assert tex.count(") rectangle (") == 2 and "dashed" in tex


def test_unknown_block_still_shows():
    class Odd:
        pass

    assert "figure" not in render_blocks([B.Prose(("plain",))])
    assert render_blocks([Odd()]).count(r"\begin{quote}") == 1


def test_jupyter_fragment():
    sol = load("mlp-relu-regression").solve()
    frag = sol._repr_latex_()
    assert frag.count(r"$$\begin{aligned}") == frag.count(r"\end{aligned}$$") >= 4
    assert r"\frac{\partial L}{\partial w_{5}}" in frag
    assert "$$" not in blocks_to_latex_fragment([B.Prose(("costs $5",))]).replace(r"\$", "")


# -- compiling ---------------------------------------------------------------------------------

@needs_tex
def test_hostile_prose_renders_literally(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "evil.yaml"
    spec.write_text(
        "name: 'Evil \\input{/etc/passwd} 100% & #1'\n"
        f"question: '{HOSTILE}'\n"
        "inputs: {x: 2}\ntargets: {y: 1}\nparameters: {w: 0.5}\nforward: {z: w*x}\n"
        "loss: (z - y)**2 / 2\noptimizer: {rule: sgd, lr: 0.1}\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["solve", str(spec), "--format", "pdf"]) == 0
    assert cli.main(["solve", str(spec), "--format", "tex"]) == 0
    assert "wrote output/evil.tex" in capsys.readouterr().out
    text = subprocess.run(["pdftotext", str(tmp_path / "output" / "evil.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    assert HOSTILE in flat
    assert r"Evil \input{/etc/passwd} 100% & #1" in flat
    assert "root:" not in text


@needs_tex
def test_failed_compile_keeps_the_earlier_pdf(tmp_path):
    target = tmp_path / "doc.pdf"
    target.write_bytes(b"%PDF good")
    bad = "\\documentclass{article}\n\\begin{document}\nfine\n\\nosuchmacro\n\\end{document}\n"
    with pytest.raises(LatexError) as err:
        compile_pdf(bad, target, name="doc")
    assert str(err.value) == "LaTeX: doc.tex line 4: Undefined control sequence (near '\\\\nosuchmacro')"
    assert target.read_bytes() == b"%PDF good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.pdf"]


@needs_tex
def test_no_shell_escape_and_paranoid_reading(tmp_path):
    outside = tmp_path.parent / "derive-secret.txt"
    outside.write_text("SECRET")
    doc = ("\\documentclass{article}\n\\begin{document}\n"
           f"\\immediate\\write18{{touch {tmp_path}/pwned}}\n"
           f"\\input{{{outside}}}\n\\end{{document}}\n")
    with pytest.raises(LatexError):
        compile_pdf(doc, tmp_path / "x.pdf", name="x")
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "x.pdf").exists()


def test_width_of_text_is_the_documents():
    assert 480 < TEXT_WIDTH < 490


def test_long_curves_are_sampled_keeping_their_ends():
    xs = list(range(5000))
    tex = render_blocks([B.Figure("plot", {"xlabel": "t", "ylabel": "v", "logy": False,
                                           "series": [{"label": "s", "x": xs, "y": [x * 2 for x in xs]}]})])
    coords = re.search(r"coordinates \{(.*?)\};", tex).group(1).split()
    assert coords[0] == "(0,0)" and coords[-1] == "(4999,9998)" and len(coords) <= 601


def test_long_tables_fold_then_split():
    from derive.document.render import block_context

    narrow = block_context(B.Table(("a", "b", "c"), tuple((str(i), "x", "y") for i in range(60))))
    assert len(narrow["pieces"]) == 1 and len(narrow["pieces"][0]["rows"]) == 30
    assert len(narrow["pieces"][0]["header"]) == 6           # two halves side by side
    wide = block_context(B.Table(tuple("abcde"), tuple((str(i),) * 5 for i in range(100))))
    assert [len(p["rows"]) for p in wide["pieces"]] == [30, 30, 30, 10]
    assert [r[0]["text"] for p in wide["pieces"] for r in p["rows"]] == [str(i) for i in range(100)]


class _Blocks:
    """A stand-in solution holding any blocks (what future problems may emit)."""

    def __init__(self, blocks):
        self._blocks = blocks
        self.problem = type("P", (), {"id": "stress", "title": "Stress", "source": "", "question": ""})()

    def blocks(self):
        return self._blocks


@needs_tex
def test_every_kind_of_block_compiles_without_overflow(tmp_path):
    wide = r"\begin{bmatrix}" + r" \\ ".join(" & ".join(f"0.{i}{j}1234" for j in range(14)) for i in range(3)) \
        + r"\end{bmatrix}"
    long_sum = " + ".join(rf"\left(w_{{{k}}} - x_{{{k}}}\right)^{{2}}" for k in range(40))
    blocks = [
        B.Heading("All kinds", 1), B.prose("Prose with maths ", B.Math(r"\sigma(z)", "sigma(z)"), " and 100% & #."),
        B.Figure("unrolled-rnn", {"T": 8}),
        B.Figure("boxes", {"boxes": [{"label": "G", "x": 0, "y": 0, "w": 4, "h": 3, "style": "truth"},
                                     {"label": "P", "x": 1, "y": 1, "w": 4, "h": 3, "style": "pred"}]}),
        B.Figure("plot", {"xlabel": "T - k", "ylabel": "norm", "logy": True,
                          "series": [{"label": "tanh", "x": list(range(1, 30)), "y": [0.5 ** k for k in range(1, 30)]}]}),
        B.Equations((B.EqRow(B.Math(r"\mathbf{W}", "W"), (B.Math(wide, ""), B.Math("1", "1")), note="50% & more"),
                     B.EqRow(B.Math("E", "E"), (B.Math(long_sum, ""),), relation="<-"))),
        B.Table(tuple("abcde"), tuple((str(i), B.Math(f"{i / 7:.4f}", ""), "x", "y", "z") for i in range(70)),
                caption="a long table"),
        B.Checks(({"method": "numpy", "max_abs_err": 1e-3, "passed": False},
                  {"method": "finite-difference", "max_rel_err": 0.0, "passed": None, "note": "at a ReLU kink"})),
    ]
    compile_pdf(solution_document(_Blocks(blocks)), tmp_path / "s.pdf", name="s", log_path=tmp_path / "s.log")
    log = (tmp_path / "s.log").read_text(encoding="latin-1")
    assert "Overfull" not in log
    text = subprocess.run(["pdftotext", str(tmp_path / "s.pdf"), "-"], capture_output=True, text=True).stdout
    assert "FAILED" in text and "not applicable (at a ReLU kink)" in text and "100% & #." in text
