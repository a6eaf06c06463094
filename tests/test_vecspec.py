"""Vector specs (derive/problems/vector_spec.py): the built-ins rewritten as specs in
examples/ give the built-ins' results, and the syntax (shapes, @, stack,
softmax, transpose, sum/mean, unrolling with H[t-1]) computes what an
independent plain-numpy implementation written here computes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sympy

from derive.cli import main
from derive.problems import load
from derive.problems.attention import default_values as attention_values
from derive.problems.lstm import default_values as lstm_values
from derive.problems.rnn import default_values as rnn_values
from derive.engine.spec import SpecError, read_file
from derive.problems.vector_spec import VectorSpecProblem, build_vector_spec, is_vector_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def as_array(values, shape=None):
    a = np.array([float(v) for v in values])
    return a.reshape(shape) if shape else a


def transpose_h(name, array):
    """The attention spec holds the annotations as rows, the built-in as columns."""
    return array.T if name == "h" else array


# (example, built-in, the built-in's default values at its default sizes)
PAIRS = [
    ("rnn-bptt", rnn_values(3, 2, 2, 2)),
    ("lstm-cell", lstm_values(2, 2)),
    ("bahdanau-attention", attention_values(2, 2, 2, 3)),
]


@pytest.mark.parametrize("pid,defaults", PAIRS, ids=[p for p, _ in PAIRS])
def test_example_spec_reproduces_builtin(pid, defaults):
    spec_problem = load(str(EXAMPLES / f"{pid}.yaml"))
    assert isinstance(spec_problem, VectorSpecProblem)
    builtin = load(pid)
    # the givens: the spec's values are the built-in's documented defaults
    for name, value in defaults.items():
        ours = np.array(spec_problem.spec.values[name], dtype=object)
        theirs = np.array(value, dtype=object)
        assert (transpose_h(name, ours) == theirs).all(), name

    a, b = spec_problem.solve(), builtin.solve()
    assert float(a.forward[a.graph.loss]) == pytest.approx(float(b.forward[b.graph.loss]), rel=1e-14)
    params_a = [t.name for t in a.model.tg.tensors.values() if a.model.tg.kinds[t.name] == "parameter"]
    params_b = [t.name for t in b.model.tg.tensors.values() if b.model.tg.kinds[t.name] == "parameter"]
    assert sorted(params_a) == sorted(params_b)
    for p in params_b:
        shape = b.model.tg.tensors[p].shape
        assert a.model.tg.tensors[p].shape == shape
        np.testing.assert_allclose(as_array(a.adjoint_of(p)), as_array(b.adjoint_of(p)), rtol=1e-13, atol=1e-16)
        ta, tb = a.model.tg.tensors[p], b.model.tg.tensors[p]
        np.testing.assert_allclose(as_array([a.updates[n] for n in ta.names]),
                                   as_array([b.updates[n] for n in tb.names]), rtol=1e-13, atol=1e-16)
    # the adjoints of the inputs the built-in asks about
    for n in b.graph.wrt_inputs:
        quantity = b.model.tg.block_of[n]
        t = b.model.tg.tensors[quantity]
        ours = as_array(a.adjoint_of(quantity), a.model.tg.tensors[quantity].shape)
        np.testing.assert_allclose(transpose_h(quantity, ours), as_array(b.adjoint_of(quantity), t.shape),
                                   rtol=1e-13, atol=1e-16)
    assert all(c["passed"] for c in a.checks)


def test_rnn_spec_trajectory_matches_builtin_over_steps():
    a = load(str(EXAMPLES / "rnn-bptt.yaml")).solve(steps=3)
    b = load("rnn-bptt").solve(steps=3)
    np.testing.assert_allclose([float(x) for x in a.trajectory.losses],
                               [float(x) for x in b.trajectory.losses], rtol=1e-13)
    for p in ("U", "W", "V"):
        names = a.model.tg.tensors[p].names
        np.testing.assert_allclose(as_array([a.updates[n] for n in names]),
                                   as_array([b.updates[n] for n in names]), rtol=1e-13)


# -- the syntax, against plain numpy ---------------------------------------------

UNROLLED = {
    "name": "every construct",
    "parameters": {
        "W": {"shape": [3, 5], "value": [[0.3, -0.2, 0.1, 0.2, -0.1], [0.05, 0.4, -0.3, 0.1, 0.2],
                                         [-0.2, 0.1, 0.3, -0.4, 0.25]]},
        "U": {"shape": [3, 2], "value": [[0.2, 0.1], [-0.4, 0.3], [0.1, 0.2]]},
        "b": {"shape": [3], "value": 0.1},
        "q": -0.5,
    },
    "inputs": {"X": {"shape": ["T", 2], "value": [[1, -1], [0.5, 0.25], [-0.75, 1]]},
               "H0": {"shape": [3], "value": [0.1, -0.2, 0.3]}},
    "targets": {"Y": {"shape": ["T"], "value": [0.2, -0.1, 0.4]}},
    "unroll": {"T": 3, "initial": {"H": "H0"}, "equations": {
        "H": "tanh((W @ stack(H[t-1], X[t])) * q + b)",
        "o": "softmax(H) @ H",
    }},
    "loss": "mean((o - Y)**2) + sum(H[T]) / 3 + sum(transpose(U) @ H[1])",
}


def numpy_unrolled(W, U, b, q, X, H0, Y):
    """The same network in plain numpy."""
    H, outs, Hs = H0, [], []
    for t in range(3):
        H = np.tanh((W @ np.concatenate([H, X[t]])) * q + b)
        p = np.exp(H) / np.exp(H).sum()
        outs.append(p @ H)
        Hs.append(H)
    o = np.array(outs)
    return np.mean((o - Y) ** 2) + np.sum(Hs[-1]) / 3 + np.sum(U.T @ Hs[0])


def unrolled_spec():
    return json.loads(json.dumps(UNROLLED))


def point(data):
    p = {k: np.array(v["value"], dtype=float) if isinstance(v, dict) else float(v)
         for sec in ("parameters", "inputs", "targets") for k, v in data[sec].items()}
    p["b"] = np.full(3, 0.1)
    return p


def test_unrolled_spec_against_numpy_and_finite_differences():
    data = unrolled_spec()
    sol = VectorSpecProblem(data, "unrolled.yaml", id="unrolled").solve()
    values = point(data)
    assert float(sol.forward["L"]) == pytest.approx(numpy_unrolled(**values), rel=1e-12)
    h = 1e-6
    for name in ("W", "U", "b", "q"):
        base = values[name]
        grad = np.zeros_like(np.atleast_1d(base), dtype=float)
        flat = grad.reshape(-1)
        for k in range(flat.size):
            plus, minus = np.array(base, dtype=float).copy().reshape(-1), np.array(base, dtype=float).copy().reshape(-1)
            plus[k] += h
            minus[k] -= h
            shape = np.shape(base)
            flat[k] = (numpy_unrolled(**dict(values, **{name: plus.reshape(shape)}))
                       - numpy_unrolled(**dict(values, **{name: minus.reshape(shape)}))) / (2 * h)
        ours = as_array(sol.adjoint_of(name))
        np.testing.assert_allclose(ours, grad.reshape(-1), rtol=1e-7, atol=1e-9)
    # the sequences are groups: H is T x 3 in JSON, the step nodes are H_t_i
    out = sol.to_json()
    assert np.shape(out["values"]["H"]) == (3, 3) and np.shape(out["values"]["o"]) == (3,)
    assert "H_3_2" in sol.graph.nodes and "S_o_1" in sol.graph.nodes


def test_softmax_and_transpose_forward_pass_against_numpy():
    data = {"parameters": {"M": {"shape": [2, 3], "value": [[1, 2, 3], [-1, 0.5, 0]]}},
            "inputs": {"v": {"shape": [2], "value": [0.3, -0.7]}},
            "forward": {"s": "softmax(transpose(M) @ v)", "m": "v @ M"},
            "loss": "sum(s * m) + mean(M)"}
    sol = VectorSpecProblem(data, "s.yaml").solve()
    M, v = np.array([[1, 2, 3], [-1, 0.5, 0]]), np.array([0.3, -0.7])
    e = M.T @ v
    s = np.exp(e) / np.exp(e).sum()
    np.testing.assert_allclose(as_array(sol.value_of("s")), s, rtol=1e-14)
    np.testing.assert_allclose(as_array(sol.value_of("m")), v @ M, rtol=1e-14)
    assert float(sol.forward["L"]) == pytest.approx(float(s @ (v @ M) + M.mean()), rel=1e-14)
    assert "S_s" in sol.graph.nodes      # softmax's normaliser is a node of its own


def test_equations_are_shown_in_matrix_notation():
    sol = load(str(EXAMPLES / "rnn-bptt.yaml")).solve()
    rows = [r for b in sol.blocks() if type(b).__name__ == "Equations" for r in b.rows]
    texts = {r.lhs.text: r.rhs[0] for r in rows}
    assert texts["Z_t"].tex == "U \\, I_{t} + W \\, H_{t-1}"
    assert texts["Z_t"].text == "U @ I[t] + W @ H[t - 1]"
    assert texts["H_t"].tex == r"\tanh\left(Z_{t}\right)"
    lstm = load(str(EXAMPLES / "lstm-cell.yaml")).solve()
    rows = [r for b in lstm.blocks() if type(b).__name__ == "Equations" for r in b.rows]
    c = next(r for r in rows if r.lhs.text == "c")
    assert c.rhs[0].tex == r"f \odot c_{\text{prev}} + i \odot g"


def test_values_can_be_overridden_whole_or_by_entry(capsys):
    path = str(EXAMPLES / "gru-cell.yaml")
    assert main(["solve", path, "--format", "json", "--set", "b_r=[0.5, -0.5]", "--set", "W_z_1_2=0.7"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["values"]["b_r"] == [0.5, -0.5] and out["values"]["W_z"][0][1] == 0.7
    assert main(["solve", path, "--set", "b_r=[1, 2, 3]"]) == 2
    err = capsys.readouterr().err
    assert err == f"derive: error: {path}: values.b_r: expected a 2 nested list (row-major), got 3\n"


def test_json_is_deterministic(capsys):
    path = str(EXAMPLES / "bahdanau-attention.yaml")
    outs = set()
    for _ in range(2):
        assert main(["solve", path, "--format", "json"]) == 0
        outs.add(capsys.readouterr().out)
    assert len(outs) == 1


def test_which_specs_are_vector_specs():
    for name in ("mlp-relu-regression", "mlp-tanh-sigmoid"):
        assert not is_vector_spec(read_file(ROOT / "derive" / "problems" / "specs" / f"{name}.yaml"))
    for path in EXAMPLES.glob("*.yaml"):
        assert is_vector_spec(read_file(path)), path


def test_shapes_are_checked_before_anything_is_allocated():
    with pytest.raises(SpecError) as err:
        build_vector_spec({"parameters": {"W": {"shape": [10**9, 10**9], "value": 0}}, "loss": "sum(W)"})
    assert err.value.where == "parameters.W.shape"
    with pytest.raises(SpecError, match="is 65536 entries; at most 4096"):
        build_vector_spec({"parameters": {"W": {"shape": [256, 256], "value": 0}}, "loss": "sum(W)"})


def test_exact_values_stay_exact():
    data = {"parameters": {"w": {"shape": [2], "value": [0.5, 0.25]}},
            "inputs": {"x": {"shape": [2], "value": [2, 4]}},
            "forward": {"o": "w @ x"}, "loss": "(o - 1)**2 / 2"}
    sol = VectorSpecProblem(data, "exact.yaml").solve()
    assert sol.forward["L"] == sympy.Rational(1, 2)
    assert sol.adjoint_of("w") == [2, 4]
