"""The key's figures: boxes told apart with their labels clear, log axes with a
tick per decade or so, one colour per curve, the attention diagram, and every
figure's caption kept on the page of its body."""
import re
import shutil
import subprocess

import pytest

from derive.typeset import blocks as B
from derive.typeset.diagrams import attention_figure
from derive.problems import load
from derive.document.render import _boxes, _log_ticks, _plot, compile_pdf, render_blocks, solution_document, template_dir

needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex (install.sh installs it)")


def _figures(blocks, kind):
    return [b for b in blocks if isinstance(b, B.Figure) and b.kind == kind]


def test_iou_boxes_each_their_own_look_and_labels_outside_the_other_boxes():
    (fig,) = _figures(load("iou-vs-l2").solve().blocks(), "boxes")
    ctx = _boxes(fig.data)
    styles = [b["style"] for b in ctx["boxes"]]
    assert len(set(styles)) == len(styles) == 4                      # G, A, B, C: four looks
    rects = [tuple(float(b[k]) for k in ("x0", "y0", "x1", "y1")) for b in ctx["boxes"]]
    labels = [(float(b["lx"]), float(b["ly"])) for b in ctx["boxes"]]
    for k, (x, y) in enumerate(labels):
        for j, (x0, y0, x1, y1) in enumerate(rects):
            assert not (x0 < x < x1 and y0 < y < y1), (ctx["boxes"][k]["label"], "inside", ctx["boxes"][j]["label"])
    for a in range(len(labels)):                                         # labels apart
        for b in range(a + 1, len(labels)):
            assert max(abs(labels[a][0] - labels[b][0]), abs(labels[a][1] - labels[b][1])) >= 0.42


def test_iou_table_fractions_are_written_inline():
    blocks = load("iou-vs-l2").solve().blocks()
    table = next(b for b in blocks if isinstance(b, B.Table) and "IoU" in b.header)
    ious = [row[-1].tex for row in table.rows if isinstance(row[-1], B.Math)]
    assert ious and not any(r"\frac" in t for t in ious) and "1/3" in ious[0]


def test_log_axes_have_a_tick_every_decade_or_two():
    assert _log_ticks([3.0, 2e-3]) == [-3, -2, -1, 0, 1]
    (fig,) = _figures(load("rnn-bptt").solve().blocks(), "plot")
    ctx = _plot(fig.data)
    ticks = ctx["yticks"]
    assert len(ticks) >= 8 and all(b - a <= 2 for a, b in zip(ticks, ticks[1:]))
    ys = [float(c.split(",")[1].rstrip(")")) for s in ctx["series"] for c in s["coords"].split()]
    assert 10 ** ticks[0] <= min(ys) and max(ys) <= 10 ** ticks[-1]
    assert ctx["legend_below"]          # ten long labels: legend under the plot, in two columns


def test_no_two_curves_share_a_colour():
    base = (template_dir() / "base.tex.j2").read_text()
    cycle = base[base.index(r"\pgfplotscreateplotcyclelist{derive}"):]
    cycle = cycle[:cycle.index("}}") + 2]
    entries = re.findall(r"\{([^{}]+)\}", cycle)[1:]
    colours = [e.split(",")[0].strip() for e in entries]
    dashes = [e.split(",")[1].strip() for e in entries]
    assert len(colours) >= 12 and len(set(colours)) == len(colours)
    (vanishing,) = _figures(load("rnn-bptt").solve().blocks(), "plot")
    assert len(vanishing.data["series"]) <= len(colours)
    assert len(set(zip(colours, dashes))) == len(entries)


def test_the_attention_problem_draws_its_block_diagram():
    (fig,) = _figures(load("bahdanau-attention").solve().blocks(), "attention")
    tex = render_blocks([fig])
    for name in (r"$h_{1}$", r"$e_{i1}$", r"$\alpha_{i1}$", r"$s_{i-1}$", r"$s_{i}$", r"c_{i} = \sum_{j}",
                 r"$y_{i-1}$", "softmax over"):
        assert name in tex, name
    long = render_blocks([attention_figure(7)])
    assert r"$h_{T_{x}}$" in long and r"$h_{3}$" not in long and r"\cdots" in long


@needs_tex
def test_figures_compile_and_keep_their_captions(tmp_path):
    sol = load("bahdanau-attention").solve()
    compile_pdf(solution_document(sol), tmp_path / "a.pdf", name="a", log_path=tmp_path / "a.log")
    assert "Overfull" not in (tmp_path / "a.log").read_text(encoding="latin-1")
    # every figure (body and caption) sits in one unbreakable minipage
    for kind in ("figure-plot", "figure-boxes", "figure-attention", "figure-network", "figure-unrolled-rnn"):
        text = (template_dir() / "partials" / f"{kind}.tex.j2").read_text()
        assert r"\begin{minipage}{\linewidth}" in text and text.index(r"\derivecaption") < text.index(r"\end{minipage}"), kind
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(tmp_path / "a.pdf"), "-"], capture_output=True, text=True).stdout
        assert "softmax over j" in text
