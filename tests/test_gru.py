"""The GRU of examples/gru-cell.yaml (the tutorial in docs/tutorial-gru.md) against a GRU
written here in plain numpy, forward and backward by hand, and against
finite differences of that forward pass; the generated code agrees too."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from derive.cli import main
from derive.codegen.scalar import compile_gradient
from derive.problems import load
from derive.engine.spec import read_file

SPEC = Path(__file__).resolve().parents[1] / "examples" / "gru-cell.yaml"
PARAMS = ("W_r", "b_r", "W_z", "b_z", "W_n", "b_n")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def gru_forward(W_r, b_r, W_z, b_z, W_n, b_n, x, h_prev, y):
    v = np.concatenate([h_prev, x])
    r = sigmoid(W_r @ v + b_r)
    z = sigmoid(W_z @ v + b_z)
    n = np.tanh(W_n @ np.concatenate([r * h_prev, x]) + b_n)
    h = (1 - z) * n + z * h_prev
    return 0.5 * np.sum((h - y) ** 2), (v, r, z, n, h)


def gru_backward(W_r, b_r, W_z, b_z, W_n, b_n, x, h_prev, y):
    """Reverse mode by hand: each line is one chain-rule step of the GRU."""
    loss, (v, r, z, n, h) = gru_forward(W_r, b_r, W_z, b_z, W_n, b_n, x, h_prev, y)
    k = len(h_prev)
    u = np.concatenate([r * h_prev, x])         # the candidate's input
    dh = h - y
    dn = dh * (1 - z)
    dz = dh * (h_prev - n)
    dan = dn * (1 - n ** 2)                      # through tanh
    du = W_n.T @ dan
    dr = du[:k] * h_prev
    daz = dz * z * (1 - z)                       # through sigmoid
    dar = dr * r * (1 - r)
    dv = W_r.T @ dar + W_z.T @ daz
    dh_prev = dh * z + du[:k] * r + dv[:k]
    grads = {"W_n": np.outer(dan, u), "b_n": dan, "W_z": np.outer(daz, v), "b_z": daz,
             "W_r": np.outer(dar, v), "b_r": dar}
    return loss, grads, dh_prev


def givens():
    data = read_file(SPEC)
    out = {}
    for section in ("parameters", "inputs", "targets"):
        for name, decl in data[section].items():
            shape = tuple(decl["shape"])
            out[name] = np.broadcast_to(np.array(decl["value"], dtype=float), shape).copy()
    return out


def test_spec_against_hand_written_numpy_gru():
    sol = load(str(SPEC)).solve()
    values = givens()
    loss, grads, dh_prev = gru_backward(**values)
    assert float(sol.forward["L"]) == pytest.approx(loss, rel=1e-14)
    for p in PARAMS:
        ours = np.array([float(v) for v in sol.adjoint_of(p)]).reshape(values[p].shape)
        np.testing.assert_allclose(ours, grads[p], rtol=1e-12, atol=1e-16)
        lr = float(sol.optimizer.lr)
        upd = np.array([float(sol.updates[n]) for n in sol.model.tg.tensors[p].names]).reshape(values[p].shape)
        np.testing.assert_allclose(upd, values[p] - lr * grads[p], rtol=1e-12, atol=1e-16)
    ours = np.array([float(v) for v in sol.adjoint_of("h_prev")])
    np.testing.assert_allclose(ours, dh_prev, rtol=1e-12, atol=1e-16)
    # the matrix form is checked against the component-wise derivation too
    assert [c["method"] for c in sol.checks] == ["numpy-backprop", "finite-difference", "matrix-form"]
    assert all(c["passed"] for c in sol.checks)


def test_matrix_steps_against_hand_written_numpy_gru():
    """Every adjoint of the matrix-form backward pass, as JSON gives it,
    against the hand-written reverse mode above."""
    values = givens()
    loss, grads, dh_prev = gru_backward(**values)
    v, r, z, n, h = gru_forward(**values)[1]
    y, h_prev = values["y"], values["h_prev"]
    dh = h - y
    dn = dh * (1 - z)
    dan = dn * (1 - n ** 2)
    du = values["W_n"].T @ dan
    dr = du[:2] * h_prev
    expected = {"dL/dh": dh, "dL/dn": dn, "dL/dz": dh * (h_prev - n), "dL/da_n": dan, "dL/dr": dr,
                "dL/dv": values["W_r"].T @ (dr * r * (1 - r)) + values["W_z"].T @ (dh * (h_prev - n) * z * (1 - z)),
                "dL/dh_prev": dh_prev, **{f"dL/d{p}": grads[p] for p in PARAMS}}
    steps = {s["name"]: s for s in load(str(SPEC)).solve().to_json()["matrix_steps"]}
    for name, want in expected.items():
        np.testing.assert_allclose(steps[name]["value"], want, rtol=1e-12, atol=1e-16)
    assert steps["dL/dz"]["expr"] == "(h - y) * (h_prev - n)"
    assert steps["dL/dW_n"]["expr"] == "outer(dL_da_n, stack(r * h_prev, x))"


def test_hand_written_backward_against_finite_differences():
    # the reference itself is checked, so the comparison above means something
    values = givens()
    _, grads, dh_prev = gru_backward(**values)
    eps = 1e-6
    for name, expected in list(grads.items()) + [("h_prev", dh_prev)]:
        fd = np.zeros_like(values[name])
        for idx in np.ndindex(values[name].shape):
            plus = {k: v.copy() for k, v in values.items()}
            minus = {k: v.copy() for k, v in values.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            fd[idx] = (gru_forward(**plus)[0] - gru_forward(**minus)[0]) / (2 * eps)
        np.testing.assert_allclose(expected, fd, rtol=1e-6, atol=1e-10)


def test_at_random_points(capsys):
    rng = np.random.default_rng(11)
    for _ in range(3):
        values = {k: rng.normal(0, 0.8, v.shape) for k, v in givens().items()}
        sets = []
        for k, v in values.items():
            sets += ["--set", f"{k}={json.dumps(np.round(v, 4).tolist())}"]
        assert main(["solve", str(SPEC), "--format", "json"] + sets) == 0
        out = json.loads(capsys.readouterr().out)
        rounded = {k: np.round(v, 4) for k, v in values.items()}
        loss, grads, _ = gru_backward(**rounded)
        assert out["loss"] == pytest.approx(loss, rel=1e-12)
        for p in PARAMS:
            np.testing.assert_allclose(np.array(out["gradients"][p]["value"]), grads[p], rtol=1e-10, atol=1e-14)


def test_generated_code_against_hand_written_gru_batched():
    f = compile_gradient(load(str(SPEC)))
    rng = np.random.default_rng(5)
    batch = 7
    values = {k: rng.normal(0, 0.8, (batch,) + v.shape) for k, v in givens().items()}
    loss, grads = f(**values)
    assert loss.shape == (batch,)
    for i in range(batch):
        one = {k: v[i] for k, v in values.items()}
        l_ref, g_ref, _ = gru_backward(**one)
        assert loss[i] == pytest.approx(l_ref, rel=1e-12)
        for p in PARAMS:
            np.testing.assert_allclose(grads[p][i], g_ref[p], rtol=1e-10, atol=1e-14)


# -- the tutorial (docs/tutorial-gru.md) quotes what the commands print today -------------------

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial-gru.md"


def tutorial_sessions():
    import re

    text = TUTORIAL.read_text(encoding="utf-8")
    section = text[text.index("<!-- section: gru-tutorial -->"):text.index("<!-- section: end -->")]
    sessions = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        for part in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = part.partition("\n")
            sessions.append((command, output.rstrip("\n").split("\n") if output.strip() else []))
    return sessions


def assert_quoted(expected: list, actual: list):
    """The quoted lines are in the output, in order; a run of lines between two
    ``...`` is contiguous there."""
    chunks, cur = [], []
    for line in expected:
        if line == "...":
            chunks.append(cur)
            cur = []
        else:
            cur.append(line)
    chunks.append(cur)
    at = 0
    for chunk in (c for c in chunks if c):
        for k in range(at, len(actual) - len(chunk) + 1):
            if actual[k:k + len(chunk)] == chunk:
                at = k + len(chunk)
                break
        else:
            raise AssertionError(f"not in the output (in this order): {chunk[0]!r}")


def test_tutorial_outputs_are_what_the_commands_print(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    shutil.copytree(SPEC.parent, tmp_path / "examples")
    sessions = tutorial_sessions()
    assert [c.split()[0] for c, _ in sessions] == ["derive", "derive", "derive", "python"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for command, expected in sessions:
        argv = command.replace("derive ", f"{sys.executable} -m derive ", 1) if command.startswith("derive ") \
            else command
        argv = argv.replace("| python ", f"| {sys.executable} ").replace("$ python ", "")
        if argv.startswith("python "):
            argv = f"{sys.executable} " + argv[len("python "):]
        proc = subprocess.run(argv, shell=True, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
        assert proc.returncode == 0 and proc.stderr == "", (command, proc.stderr)
        assert_quoted(expected, proc.stdout.rstrip("\n").split("\n") if expected else [])
