"""The Update section as a reader checks it: plain SGD written out only for
one step (after three steps W+ = W - eta dL/dW would be false), the step count
in words, and a C x H x W value shown as its matrices, not one flat row."""
from __future__ import annotations

import numpy as np

from derive import cli
from derive.problems.matrix_form import value_math

SPEC = """name: 1-D convolution
inputs:
  x: {shape: [2, 6], value: [[0.5, -1, 0.25, 2, 0.1, -0.3], [1, 0, -0.5, 0.75, 0.2, 0.4]]}
targets:
  y: {shape: [4], value: [1, 0, 0, 1]}
parameters:
  k: {shape: [1, 2, 3], value: [[[0.1, -0.2, 0.3], [0.2, 0.1, -0.1]]]}
forward:
  z: conv1d(x, k)
  s: flatten(z)
loss: sum((s - y)**2) / 2
optimizer: {rule: sgd, lr: 0.1}
"""


def solve_text(tmp_path, capsys, *extra):
    path = tmp_path / "c1.yaml"
    path.write_text(SPEC)
    assert cli.main(["solve", str(path), *extra]) == 0
    return capsys.readouterr().out


def test_one_sgd_step_is_written_out(tmp_path, capsys):
    out = solve_text(tmp_path, capsys)
    update = out[out.index("\nUpdate\n"):out.index("\nVerification\n")]
    assert "Stochastic gradient descent, one step with lr = 0.1:" in update
    assert "k+ = k - lr * dL/dk = [[[" in update
    assert "step(s)" not in out


def test_several_steps_are_not_written_as_one(tmp_path, capsys):
    out = solve_text(tmp_path, capsys, "--steps", "3")
    update = out[out.index("\nUpdate\n"):out.index("\nVerification\n")]
    assert "k - lr * dL/dk" not in update and "(after 3 steps)" in update


def test_a_three_axis_value_is_a_list_of_matrices():
    m = value_math(np.arange(12.0).reshape(2, 2, 3))
    assert m.tex.startswith(r"\left[\begin{bmatrix} 0 & 1 & 2 \\ 3 & 4 & 5 \end{bmatrix},")
    assert m.tex.count(r"\begin{bmatrix}") == 2
    assert m.text == "[[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]"


def test_shapes_are_typeset_in_the_latex_of_a_matrix_spec(tmp_path):
    """'3 x 4' is ASCII maths beside typeset matrices; the LaTeX writes 3 \\times 4."""
    import re
    from pathlib import Path
    out = tmp_path / "sa.tex"
    spec = Path(__file__).resolve().parents[1] / "examples" / "self-attention.yaml"
    assert cli.main(["solve", str(spec), "--format", "tex", "--out", str(out)]) == 0
    tex = out.read_text()
    assert not re.search(r"\d x \d", tex), re.search(r".{40}\d x \d.{10}", tex).group(0)
    assert "3 \\times 4" in tex
