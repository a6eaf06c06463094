"""The matrix form as a user sees it: exact LaTeX of the forms that matter
(softmax with cross-entropy gives p - y, the RNN delta recursion from the
built-in and from the example spec, the LSTM cell, attention), JSON
matrix_steps, large problems solved by the matrix engine alone, and the
limits a user can raise."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from derive.cli import main
from derive.problems.matrix_form import MatrixForm, matrix_blocks
from derive.problems import load
from derive.engine.spec import read_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
F = r"\frac{\partial %s}{\partial %s}"


def latex_steps(mf) -> dict:
    return {s.name: s.latex for s in mf.steps}


def test_mlp_softmax_cross_entropy_gives_p_minus_y():
    sol = load(str(EXAMPLES / "mlp-softmax-ce.yaml")).solve()
    tex = latex_steps(sol.matrix_form)
    assert tex["dL/dz2"] == "p - y"
    assert tex["dL/dh"] == r"W_{2}^{\top} \left(p - y\right)"
    assert tex["dL/dz1"] == F % ("L", "h") + r" \odot \left(1 - h \odot h\right)"
    assert tex["dL/dW1"] == F % ("L", "z_{1}") + r" x^{\top}"
    assert tex["dL/dW2"] == r"\left(p - y\right) h^{\top}"
    assert "dL/dp" not in tex                                   # softmax and CE taken together
    methods = {c["method"]: c for c in sol.checks}
    assert methods["softmax-cross-entropy"]["passed"] and methods["matrix-form"]["passed"]


def recursion(text_blocks) -> list:
    from derive.typeset import blocks as B
    for b in text_blocks:
        if isinstance(b, B.Equations):
            return [(r.lhs.tex, r.rhs[0].tex) for r in b.rows]
    return []


RNN_RECURSION = [
    (F % ("E", "e_{t}"), "1"),
    (F % ("E", "O_{t}"), "O_{t} - Y_{t}"),
    (F % ("E", "H_{t}"), r"V^{\top} \left(O_{t} - Y_{t}\right) + W^{\top} " + F % ("E", "Z_{t+1}")),
    (F % ("E", "Z_{t}"), F % ("E", "H_{t}") + r" \odot \left(1 - H_{t} \odot H_{t}\right)"),
]


@pytest.mark.parametrize("target", ["rnn-bptt", str(EXAMPLES / "rnn-bptt.yaml")])
def test_rnn_delta_recursion_from_the_engine(target):
    sol = load(target).solve()
    blocks = matrix_blocks(sol.matrix_form)
    assert recursion(blocks) == RNN_RECURSION
    steps = {s.name: s for s in sol.matrix_form.steps}
    from derive.problems.matrix_form import _time_sum
    tex, text = _time_sum(sol.matrix_form.graph, steps["dE/dW"])
    assert tex == r"\sum_{t=1}^{3} " + F % ("E", "Z_{t}") + r" H_{t-1}^{\top}"
    assert text == "sum_(t=1..3) outer(dE_dZ_t, H_(t-1))"
    assert {c["method"]: c["passed"] for c in sol.checks}["matrix-form"]


def test_lstm_cell_matrix_form():
    tex = latex_steps(load("lstm-cell").solve().matrix_form)
    assert tex["dL/dc"] == r"\left(h - y\right) \odot o \odot \left(1 - \tanh\left(c\right) \odot \tanh\left(c\right)\right)"
    assert tex["dL/dz_f"] == F % ("L", "f") + r" \odot f \odot \left(1 - f\right)"
    assert tex["dL/dc_prev"] == F % ("L", "c") + r" \odot f"
    assert tex["dL/dW_i"] == F % ("L", "z_{i}") + r" \begin{bmatrix} h_{\text{prev}} \\ x \end{bmatrix}^{\top}"
    assert tex["dL/dh_prev"].startswith(r"\left[W_{i}^{\top} " + F % ("L", "z_{i}") + " + ")
    assert tex["dL/dh_prev"].endswith(r"\right]_{1:2}")


def test_attention_matrix_form():
    mf = load("bahdanau-attention").solve().matrix_form
    tex = latex_steps(mf)
    assert tex["dL/dc"] == "c - y"
    assert tex["dL/dalpha"] == r"h^{\top} \left(c - y\right)"
    assert tex["dL/de"] == r"\alpha \odot \left(" + F % ("L", r"\alpha") + r" - \mathbf{1} \left(\alpha^{\top} " \
        + F % ("L", r"\alpha") + r"\right)\right)"      # softmax's rule: p (.) (G - 1 (p^T G))
    # the annotations' index is j, as in the seed and the forward pass (e_j, u_j, h_j)
    assert recursion(matrix_blocks(mf))[1] == (F % ("L", "u_{j}"), F % ("L", "e_{j}") + r" \odot v")


def test_json_matrix_steps_follow_the_contract():
    out = load(str(EXAMPLES / "mlp-softmax-ce.yaml")).solve().to_json()
    first = out["matrix_steps"][0]
    assert set(first) == {"name", "expr", "latex", "shape", "value"}
    assert (first["name"], first["expr"], first["shape"]) == ("dL/dz2", "p - y", [2])
    w1 = next(s for s in out["matrix_steps"] if s["name"] == "dL/dW1")
    np.testing.assert_allclose(w1["value"], out["gradients"]["W1"]["value"], rtol=1e-12)


def mlp(n: int, extra: dict | None = None) -> dict:
    rng = np.random.default_rng(n)
    data = {"name": f"tanh MLP n={n}",
            "parameters": {"W1": {"shape": [n, n], "value": (rng.standard_normal((n, n)) / np.sqrt(n)).tolist()},
                           "b1": {"shape": [n], "value": 0},
                           "W2": {"shape": [4, n], "value": (rng.standard_normal((4, n)) / np.sqrt(n)).tolist()}},
            "inputs": {"x": {"shape": [n], "value": rng.standard_normal(n).tolist()}},
            "targets": {"y": {"shape": [4], "value": [0, 1, 0, 0]}},
            "forward": {"z1": "W1 @ x + b1", "h": "tanh(z1)", "z2": "W2 @ h", "p": "softmax(z2)"},
            "loss": "-sum(y * log(p))", "optimizer": {"rule": "adam", "lr": 0.01}}
    data.update(extra or {})
    return data


def test_large_mlp_solves_fast_in_matrix_form(tmp_path):
    """n = 256: the spec declares W1 by its shape, the numbers come with the values."""
    data = mlp(256)
    values = {"W1": data["parameters"]["W1"].pop("value")}
    path = tmp_path / "mlp256.yaml"
    path.write_text(yaml.safe_dump(sort_keys=False, data=data))
    start = time.perf_counter()
    sol = load(str(path)).solve(values)
    elapsed = time.perf_counter() - start
    assert elapsed < 20                               # the scalar engine was refused at n = 64
    assert all(c["passed"] for c in sol.checks)
    x = np.array(mlp(256)["inputs"]["x"]["value"])
    W1 = np.array(mlp(256)["parameters"]["W1"]["value"])
    W2 = np.array(mlp(256)["parameters"]["W2"]["value"])
    h = np.tanh(W1 @ x)
    z2 = W2 @ h
    p = np.exp(z2 - z2.max()); p /= p.sum()
    dz1 = (W2.T @ (p - [0, 1, 0, 0])) * (1 - h * h)
    np.testing.assert_allclose(sol.gradient("W1"), np.outer(dz1, x), rtol=1e-10, atol=1e-14)
    out = sol.to_json()
    # torch.optim.Adam's first step: lr * g / (|g| + eps), as the bias corrections cancel
    g = np.outer(dz1, x)
    np.testing.assert_allclose(W1 - np.array(out["updates"]["W1"]), 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-9)
    assert "W1 @ x + b1" in sol.to_text() and "dL/dz2 = p - y" in sol.to_text()


def test_shape_only_leaf_takes_its_numbers_from_values(tmp_path, capsys):
    data = mlp(40)
    data["parameters"]["W1"] = {"shape": [40, 40]}
    spec = tmp_path / "net.yaml"
    spec.write_text(yaml.safe_dump(sort_keys=False, data=data))
    assert main(["solve", str(spec), "--format", "json"]) == 2
    assert "parameters.W1.value: missing: a number (every entry), nested lists, or the numbers in --values" \
        in capsys.readouterr().err
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(sort_keys=False, data={"W1": (np.eye(40) * 0.1).tolist()}))
    assert main(["solve", str(spec), "--values", str(values), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert np.shape(out["values"]["W1"]) == (40, 40) and out["values"]["W1"][0][0] == 0.1


def test_memory_limit_names_itself_and_its_flag(tmp_path, capsys):
    spec = tmp_path / "big.yaml"
    data = mlp(100)
    data["parameters"]["W1"] = {"shape": [100, 100], "value": 0.01}
    spec.write_text(yaml.safe_dump(sort_keys=False, data=data))
    assert main(["solve", str(spec), "--max-memory", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("derive: error: ") and "--max-memory" in err and len(err.splitlines()) == 1
    assert main(["solve", str(spec), "--max-memory", "64", "--format", "json"]) == 0


def test_long_rnn_spec_is_linear_in_T(tmp_path):
    data = read_file(EXAMPLES / "rnn-bptt.yaml")
    rng = np.random.default_rng(0)
    data["unroll"]["T"] = 300
    data["inputs"]["I"]["value"] = rng.standard_normal((300, 2)).tolist()
    data["targets"]["Y"]["value"] = rng.standard_normal((300, 2)).tolist()
    mf = MatrixForm.from_data(data)
    assert all(c["passed"] for c in mf.checks)
    assert len(mf.steps) == 4 * 300 + 3


def test_builtin_sizes_follow_the_values(capsys):
    sol = load("rnn-bptt").solve({"U": [[0.1, 0.2, 0.3], [0.1, -0.2, 0.3]]})
    assert sol.dims["d"] == 3 and all(c["passed"] for c in sol.checks)
    assert main(["solve", "rnn-bptt", "--set", "U=[[0.1,0.2,0.3],[0.1,0.2,0.3]]",
                 "--set", "W=[[1,2,3],[1,2,3],[1,2,3]]"]) == 2
    assert capsys.readouterr().err == \
        "derive: error: rnn-bptt: values.W: is 3 x 3, so n = 3, but U has n = 2\n"


def test_builtin_beyond_its_component_range_goes_to_the_matrix_engine():
    sol = load("rnn-bptt").solve({"T": 120})
    out = sol.to_json()
    assert all(c["passed"] for c in out["checks"]) and len(out["matrix_steps"]) == 4 * 120 + 3
    text = sol.to_text()
    assert "dE/dH_t = transpose(V) @ (O_t - Y_t) + transpose(W) @ dE_dZ_(t+1)" in text
    assert "Backward pass, component by component" not in text


# -- matrix form = component-wise derivation = numpy VJP = finite differences --

from hypothesis import given, settings, strategies as st  # noqa: E402

ACTS = ["tanh", "sigmoid", "relu", "softplus", "exp"]


@st.composite
def small_specs(draw):
    n, m = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    vals = st.floats(-1, 1, allow_nan=False).map(lambda v: round(v, 2))
    mat = lambda r, c: [[draw(vals) for _ in range(c)] for _ in range(r)]  # noqa: E731
    forward = {"z": "W @ x + b"}
    cur = "z"
    for k in range(draw(st.integers(1, 3))):
        act = draw(st.sampled_from(ACTS))
        kind = draw(st.sampled_from(["act", "mix", "square"]))
        if kind == "act":
            forward[f"h{k}"] = f"{act}({cur})"
        elif kind == "mix":
            forward[f"h{k}"] = f"{act}(V @ {cur}) * {cur} + 0.5 * b"
        else:
            forward[f"h{k}"] = f"{cur}**2 / 2 - {cur}"
        cur = f"h{k}"
    return {"parameters": {"W": {"shape": [n, m], "value": mat(n, m)},
                           "b": {"shape": [n], "value": [draw(vals) for _ in range(n)]},
                           "V": {"shape": [n, n], "value": mat(n, n)}},
            "inputs": {"x": {"shape": [m], "value": [draw(vals) for _ in range(m)]}},
            "forward": forward, "loss": f"sum({cur} * {cur}) / 2", "input_gradients": ["x"]}


@settings(max_examples=25, deadline=None)
@given(small_specs())
def test_matrix_form_equals_the_component_wise_derivation(data):
    from derive.problems.vector_spec import VectorSpecProblem
    sol = VectorSpecProblem(data, "random.yaml").solve()
    checks = {c["method"]: c for c in sol.checks}
    assert checks["matrix-form"]["passed"] and checks["numpy-backprop"]["passed"]
    for s in sol.matrix_form.steps:
        if s.target in sol.model.tg.tensors:
            comp = np.array([float(v) for v in sol.adjoint_of(s.target)]).reshape(s.shape)
            np.testing.assert_allclose(s.value, comp, rtol=1e-10, atol=1e-12)
    assert all(c["passed"] is not False for c in sol.matrix_form.checks)   # None: at a relu kink


LARGE = Path(__file__).resolve().parent / "large_specs"


@pytest.mark.parametrize("name", sorted(p.name for p in LARGE.iterdir()))
def test_specs_the_old_caps_refused_now_solve(name, capsys):
    """Refused by the scalar engine's caps (6000 nodes, 4096 entries, 20,000
    operations per expression) before issue 13; the matrix engine solves them."""
    assert main(["solve", str(LARGE / name), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert all(c["passed"] for c in out["checks"]) and out["matrix_steps"]
